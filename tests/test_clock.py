"""Clock trees: the plan the firmware build computes (PLL M/N/R, prescalers, wait states, derived here by hand
from the reference manuals), the firmware's own clock set-up on the virtual board's RCC / PWR models for every
catalogue board (HELLO reports the catalogue clock, ECHO works at the configured baud), and broken sequences the
models catch: switching SYSCLK to a PLL that is not running, raising the clock before the flash wait states or
the voltage level, reconfiguring a running PLL, a UART divisor left at the reset clock.

The broken sequences are bare Thumb programs (tests/vboard_asm) writing the RCC / PWR / FLASH registers as a
clock set-up does (RM0432 for the NUCLEO-L4R5ZI, RM0386 for the DISCO-F469NI, RM0008 for the NUCLEO-F103RB)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "vboard_asm"))
from asmtool import build  # noqa: E402

from costmodel.boards import catalogue, get_board  # noqa: E402
from costmodel.clocks import clock_plan  # noqa: E402
from measure_agent.firmware_build.board_config import board_config_header, uart_brr  # noqa: E402

needs_as = pytest.mark.skipif(shutil.which("arm-none-eabi-as") is None, reason="needs arm-none-eabi binutils")
needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")

L4R5 = get_board("NUCLEO-L4R5ZI")
F469 = get_board("DISCO-F469NI")
F103 = get_board("NUCLEO-F103RB")

# ------------------------------------------------------------------ the plan, by hand from the RMs
# board: (source, M, N, R, PLL config register value, APB prescalers, wait states, UART BRR)
#   L4 / L4+ / L5 PLLCFGR (RM0351 / RM0432 / RM0438 6.4.4 / 9.8.4): PLLSRC[1:0] = 10 (HSI16), PLLM = M - 1 at
#     bit 4, PLLN at bit 8, PLLREN bit 24, PLLR = R / 2 - 1 at bit 25
#   G0 PLLCFGR (RM0444 5.4.4): PLLSRC = 10, PLLM = M - 1 at 4, PLLN at 8, PLLREN 28, PLLR = R - 1 at 29
#   F4 / F7 PLLCFGR (RM0386 6.3.2, RM0410 5.3.2): PLLM at 0, PLLN at 6, PLLP = P / 2 - 1 at 16, PLLSRC bit 22
#     (0 = HSI), PLLQ at 24 (VCO / Q <= 48 MHz)
#   F1 CFGR (RM0008 7.3.2): PLLSRC bit 16 (1 = HSE), PLLXTPRE bit 17 (0 = / 1), PLLMUL = x - 2 at bit 18
PLANS = {
    # 16 MHz / 1 * 15 = 240 MHz VCO / 2 = 120 MHz: 0x2 | 15 << 8 | 1 << 24
    "NUCLEO-L4R5ZI": ("HSI", 1, 15, 2, 0x01000F02, {"APB1": 1, "APB2": 1}, 5, 266667),  # 256 * 120e6 / 115200
    # 16 / 1 * 10 = 160 / 2 = 80 MHz
    "NUCLEO-L496ZG": ("HSI", 1, 10, 2, 0x01000A02, {"APB1": 1, "APB2": 1}, 4, 177778),
    # 16 / 4 * 55 = 220 / 2 = 110 MHz (16 / 1 has no integer N for 110 MHz within the VCO range): 3 << 4 | 55 << 8
    "NUCLEO-L552ZE-Q": ("HSI", 4, 55, 2, 0x01003732, {"APB1": 1, "APB2": 1}, 5, 244444),
    # 16 / 1 * 8 = 128 / 2 = 64 MHz: 0x2 | 8 << 8 | 1 << 28 | 1 << 29
    "NUCLEO-G071RB": ("HSI", 1, 8, 2, 0x30000802, {"APB1": 1}, 2, 556),  # 64e6 / 115200
    # 16 / 8 = 2 MHz * 180 = 360 / 2 = 180 MHz, Q = 8 (45 MHz): 8 | 180 << 6 | 8 << 24; APB1 <= 45, APB2 <= 90
    "DISCO-F469NI": ("HSI", 8, 180, 2, 0x08002D08, {"APB1": 4, "APB2": 2}, 5, 391),  # 45e6 / 115200
    # 16 / 8 * 216 = 432 / 2 = 216 MHz, Q = 9 (48 MHz); APB1 <= 54, APB2 <= 108
    "NUCLEO-F767ZI": ("HSI", 8, 216, 2, 0x09003608, {"APB1": 4, "APB2": 2}, 7, 469),  # 54e6 / 115200
    # HSE 8 MHz (ST-LINK MCO, bypass) * 9 = 72 MHz: 1 << 16 | 7 << 18; APB1 <= 36 MHz
    "NUCLEO-F103RB": ("HSE", 1, 9, 1, 0x001D0000, {"APB1": 2, "APB2": 1}, 2, 313),  # 36e6 / 115200
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_clock_plan_by_hand(name):
    source, m, n, r, pllcfgr, ppre, ws, brr = PLANS[name]
    board = get_board(name)
    plan = clock_plan(board)
    assert (plan.source, plan.m, plan.n, plan.r, plan.ppre) == (source, m, n, r, ppre)
    assert plan.pllcfgr_fields()[1] == pllcfgr
    assert plan.wait_states == ws == board.flash_wait_states  # the catalogue's wait states at its clock
    assert uart_brr(board) == brr
    header = board_config_header(board)
    assert f"#define BOARD_CLK_PLLCFGR_VALUE 0x{pllcfgr:08X}u" in header
    assert f"#define BOARD_CLOCK_HZ {board.default_clock_hz}u" in header


def test_clock_plan_voltage_and_steps():
    h = board_config_header(L4R5)  # RM0432 5.4.6: PWR_CR5 0x4000 7080, R1MODE bit 8 cleared = boost
    assert "#define BOARD_CLK_BOOST_CR 0x40007080u" in h and "#define BOARD_CLK_BOOST_BIT (1u << 8)" in h
    assert "#define BOARD_CLK_PRESC_SWITCH 0x00000080u" in h  # HPRE = 1000 (/2) through the switch
    h = board_config_header(get_board("NUCLEO-L552ZE-Q"))  # RM0438: PWR_CR1.VOS = 00 (range 0), SR2.VOSF bit 10
    assert "#define BOARD_CLK_VOS_VALUE 0x0u" in h and "#define BOARD_CLK_VOSF (1u << 10)" in h
    h = board_config_header(F469)  # RM0386 5.4.1: PWR_CR ODEN 16, ODSWEN 17; CFGR PPRE1 101 (/4), PPRE2 100 (/2)
    assert "#define BOARD_CLK_ODEN (1u << 16)" in h and "#define BOARD_CLK_PRESC_VALUE 0x00009400u" in h
    h = board_config_header(F103)  # RM0008 7.3.1: HSEON 16, HSEBYP 18
    assert "#define BOARD_CLK_OSC_BYP (1u << 18)" in h and "#define BOARD_CLK_OSC_RDY (1u << 17)" in h
    assert "BOARD_CLK_VOS_CR" not in board_config_header(get_board("NUCLEO-L496ZG"))  # range 1 is the reset level


def test_clock_facts_agree_with_the_family_catalogue():
    from costmodel.clocks import clock_layout

    for board in catalogue().values():
        lay = clock_layout(board)
        if board.family.power_enable is not None:  # the PWR clock enable the UART bring-up uses too
            assert lay.pwr_enable == board.family.power_enable
        assert lay.osc[lay.reset_source].hz == board.reset_clock_hz  # the reset clock is the reset source's
        assert board.uart.name in lay.uart_bus
        plan = clock_plan(board)
        assert {"source", "ws_max_hz"} <= set(plan.sources), board.name  # every number says where it is from


def test_clock_request_within_range():
    plan = clock_plan(L4R5, 80_000_000)  # 16 / 1 * 10 / 2
    assert (plan.m, plan.n, plan.r, plan.wait_states, plan.ahb_step) == (1, 10, 2, 3, False)
    from costmodel.boards import CatalogueError

    with pytest.raises(CatalogueError, match="outside the board's range"):
        clock_plan(L4R5, 130_000_000)


# ------------------------------------------------------------------ the firmware on the virtual board
@needs_gcc
@pytest.mark.parametrize("name", sorted(catalogue()))
def test_firmware_clock_setup_on_virtual_board(name):
    from measure_agent.backends import BoardSpec, VirtualBackend
    from measure_agent.settings import FirmwareSettings

    board = get_board(name)
    backend = VirtualBackend(BoardSpec(id=f"clock-{name}", kind="virtual", target=name))
    try:
        link = backend.link(backend.firmware(FirmwareSettings.for_board(board)))
        assert link.info.core_clock_hz == board.default_clock_hz  # the HELLO says the clock the core runs at
        clock = backend._vb.peripherals.clock
        plan = clock_plan(board)
        assert (clock.source, clock.hclk) == ("PLL", board.default_clock_hz)
        assert clock.pclk == (plan.pclk("APB1"), plan.pclk("APB2") if "APB2" in plan.ppre else plan.pclk("APB1"))
        assert backend._vb.peripherals.flash_ctl.wait_states == board.flash_wait_states
        payload = bytes(range(256)) * 2  # a real round trip through the pty: the model garbles a wrong BRR
        assert link.echo(payload) == payload
    finally:
        backend.close()


@needs_gcc
def test_a_measurement_can_ask_for_another_clock():
    """A request's clock_hz: the firmware sets up 80 MHz on the L4R5 (PLL 16 / 1 x 10 / 2, 3 wait states by
    RM0432 Table 12, range 1 boost: 0 WS to 20 MHz, +1 every 20 MHz), the hello says so, the result's latencies
    are at 80 MHz, and the same model takes fewer cycles than at 120 MHz (5 wait states on its flash reads)."""
    from measure_agent.backends import BoardSpec, VirtualBackend
    from measure_agent.errors import InvalidModel
    from measure_agent.measurement import measure
    from protos import agent_pb2 as pb

    model = (Path(__file__).resolve().parents[1] / "examples" / "lenet_int8.tflite").read_bytes()
    backend = VirtualBackend(BoardSpec(id="clock-request", kind="virtual", target=L4R5.name))
    try:
        at = {hz: measure(backend, pb.MeasureRequest(request_id=f"c{hz}", model=model, repetitions=1,
                                                     clock_hz=hz))
              for hz in (0, 80_000_000)}
        assert backend._vb.peripherals.clock.hclk == 80_000_000
        assert backend._vb.peripherals.flash_ctl.wait_states == 3
        slow, fast = at[80_000_000], at[0]
        assert (slow.clock_hz, fast.clock_hz) == (80_000_000, 120_000_000)
        assert slow.latency_s == pytest.approx(slow.total_cycles / 80e6)
        assert all(layer.latency_s == pytest.approx(layer.cycles / 80e6) for layer in slow.layers)
        assert slow.total_cycles < fast.total_cycles
        assert [o.data for o in slow.outputs] == [o.data for o in fast.outputs]
        assert slow.firmware_build_id != fast.firmware_build_id  # a firmware of its own per clock
        with pytest.raises(InvalidModel, match="clock 200 MHz outside the board's range 4-120 MHz"):
            measure(backend, pb.MeasureRequest(request_id="c-bad", model=model, clock_hz=200_000_000))
    finally:
        backend.close()


# ------------------------------------------------------------------ broken sequences (bare programs)
RCC, PWR, ACR = 0x40021000, 0x40007000, 0x40022000  # L4+ (RM0432)

L4R5_PREP = f"""
    ldr r0, =0x{ACR:08x}
    ldr r1, [r0]
    movs r2, #0xF
    bics r1, r2
    orrs r1, r3             @ r3: the latency this program programs
    str r1, [r0]
    ldr r0, =0x40021058     @ RCC_APB1ENR1.PWREN
    ldr r1, [r0]
    ldr r2, =0x10000000
    orrs r1, r2
    str r1, [r0]
    ldr r0, =0x{RCC:08x}
    ldr r1, [r0]            @ RCC_CR.HSION, wait HSIRDY
    ldr r2, =0x100
    orrs r1, r2
    str r1, [r0]
1:  ldr r1, [r0]
    ldr r2, =0x400
    tst r1, r2
    beq 1b
    ldr r1, =0x01000F02     @ PLLCFGR: HSI16 / 1 * 15 / 2 = 120 MHz, PLLREN
    str r1, [r0, #0x0C]
"""
BOOST = f"""
    ldr r4, =0x{PWR + 0x80:08x}  @ PWR_CR5.R1MODE = 0: range 1 boost
    ldr r1, [r4]
    ldr r2, =0x100
    bics r1, r2
    str r1, [r4]
"""
PLL_ON = """
    ldr r1, [r0]            @ PLLON, wait PLLRDY
    ldr r2, =0x01000000
    orrs r1, r2
    str r1, [r0]
2:  ldr r1, [r0]
    ldr r2, =0x02000000
    tst r1, r2
    beq 2b
"""
SWITCH = """
    ldr r1, [r0, #8]        @ CFGR.SW = 11 (PLL), then a bounded wait for SWS = 11
    movs r2, #3
    orrs r1, r2
    str r1, [r0, #8]
    movs r5, #0
    ldr r4, =20000
3:  ldr r1, [r0, #8]
    movs r2, #0xC
    ands r1, r2
    cmp r1, #0xC
    beq 4f
    subs r4, #1
    bne 3b
    b 5f
4:  movs r5, #1
5:
"""


def _program(body: str, latency: int, board=L4R5, where: str = "sram"):
    from measure_agent.vboard import VirtualBoard

    return VirtualBoard(board, build(board, f"    movs r3, #{latency}\n" + body + "\n    bkpt #0\n    .ltorg\n",
                                     where=where))


def _run(vb):
    from measure_agent.vboard import StopReason

    assert vb.run(timeout_s=5.0) is StopReason.BKPT


@needs_as
def test_right_sequence_reaches_120_mhz():
    vb = _program(L4R5_PREP + BOOST + PLL_ON + SWITCH, latency=5)
    _run(vb)
    assert vb.reg("r5") == 1 and (vb.peripherals.clock.source, vb.peripherals.clock.hclk) == ("PLL", 120_000_000)
    assert vb.peripherals.clock.level == "range1-boost"


@needs_as
def test_switch_to_a_pll_that_is_not_running_times_out():
    vb = _program(L4R5_PREP + BOOST + SWITCH, latency=5)  # SW = PLL without PLLON: SWS never follows
    _run(vb)
    clock = vb.peripherals.clock
    assert vb.reg("r5") == 0 and (clock.source, clock.hclk) == ("MSI", 4_000_000)
    assert clock.note == "CFGR.SW selects the PLL, which is off: SWS stays MSI"


@needs_as
def test_raising_the_clock_before_the_wait_states_faults():
    from measure_agent.vboard import VirtualBoardFault

    # running from flash, as a firmware does: the first fetch after the switch reads the flash too fast
    vb = _program(L4R5_PREP + BOOST + PLL_ON + SWITCH, latency=0, where="flash")  # LATENCY 0 (its reset value)
    with pytest.raises(VirtualBoardFault, match="clock set-up error") as exc:
        vb.run(timeout_s=5.0)
    # RM0432 Table 12, range 1 boost: 0 WS up to 20 MHz, 5 WS for 100 < HCLK <= 120 MHz
    assert "HCLK 120 MHz with FLASH_ACR.LATENCY = 0" in str(exc.value)
    assert "at most 20 MHz at 0 wait states (5 needed)" in str(exc.value)


@needs_as
def test_too_few_wait_states_fail_only_when_the_flash_is_read():
    """As on silicon: code in SRAM (a debugger's flash algorithm, say) runs on at 120 MHz with LATENCY 0; the
    first read of the flash is what goes wrong."""
    from measure_agent.vboard import VirtualBoardFault

    _run(_program(L4R5_PREP + BOOST + PLL_ON + SWITCH, latency=0))  # all in SRAM: reaches its BKPT
    read_flash = "    ldr r1, =0x08000000\n    ldr r1, [r1]\n"
    with pytest.raises(VirtualBoardFault, match="HCLK 120 MHz with FLASH_ACR.LATENCY = 0"):
        _program(L4R5_PREP + BOOST + PLL_ON + SWITCH + read_flash, latency=0).run(timeout_s=5.0)
    _run(_program(L4R5_PREP + BOOST + PLL_ON + SWITCH + read_flash, latency=5))  # the right latency: fine


@needs_as
def test_raising_the_clock_before_the_voltage_level_faults():
    from measure_agent.vboard import VirtualBoardFault

    vb = _program(L4R5_PREP + PLL_ON + SWITCH, latency=5)  # no boost: range 1 normal allows 80 MHz
    with pytest.raises(VirtualBoardFault, match="above the 80 MHz the voltage level range1 allows"):
        vb.run(timeout_s=5.0)


@needs_as
def test_reconfiguring_a_running_pll_faults():
    from measure_agent.vboard import VirtualBoardFault

    vb = _program(L4R5_PREP + PLL_ON + "    ldr r1, =0x01000A02\n    str r1, [r0, #0x0C]\n", latency=5)
    with pytest.raises(VirtualBoardFault, match="PLLCFGR written while PLLON is set"):
        vb.run(timeout_s=5.0)


@needs_as
def test_uart_divisor_must_follow_the_clock():
    from measure_agent.vboard import VirtualBoardFault

    send = """
    ldr r0, =0x40008000     @ LPUART1: BRR +0x0C, TDR +0x28
    ldr r1, ={brr}
    str r1, [r0, #0x0C]
    movs r1, #0x5A
    str r1, [r0, #0x28]
"""
    vb = _program(L4R5_PREP + BOOST + PLL_ON + SWITCH + send.format(brr=266667), latency=5)
    _run(vb)
    assert vb.uart_read() == b"\x5a"  # 256 * 120 MHz / 266667 = 115200 baud
    vb = _program(L4R5_PREP + BOOST + PLL_ON + SWITCH + send.format(brr=8889), latency=5)  # the reset clock's
    with pytest.raises(VirtualBoardFault, match="UART baud rate mismatch") as exc:
        vb.run(timeout_s=5.0)
    # 256 * 120e6 / 8889 = 3 455 957 baud, 30x the host's
    assert "BRR = 8889 at a 120 MHz kernel clock is 3455957 baud" in str(exc.value)
    assert vb.uart_read() == b""


@needs_as
def test_f4_needs_over_drive_above_168_mhz():
    from measure_agent.vboard import VirtualBoardFault

    # RM0386: HSI 16 MHz / 8 * 180 / 2 = 180 MHz, 5 wait states, APB1 /4, APB2 /2, no over-drive
    body = """
    ldr r0, =0x40023C00     @ FLASH_ACR.LATENCY = 5
    movs r1, #5
    str r1, [r0]
    ldr r0, =0x40023800
    ldr r1, =0x08002D08     @ PLLCFGR
    str r1, [r0, #4]
    ldr r1, [r0]
    ldr r2, =0x01000000
    orrs r1, r2
    str r1, [r0]
1:  ldr r1, [r0]
    ldr r2, =0x02000000
    tst r1, r2
    beq 1b
    ldr r1, =0x9402         @ CFGR: PPRE2 /2, PPRE1 /4, SW = PLL
    str r1, [r0, #8]
2:  ldr r1, [r0, #8]
    b 2b
"""
    vb = _program(body, latency=5, board=F469)
    with pytest.raises(VirtualBoardFault, match="above the 168 MHz the voltage level scale1 allows"):
        vb.run(timeout_s=5.0)


@needs_as
def test_f103_hse_needs_the_bypass_on_a_nucleo():
    # UM1724: no crystal is fitted, OSC_IN carries the ST-LINK's 8 MHz MCO: HSERDY only with HSEBYP (RM0008 7.3.1)
    body = """
    ldr r0, =0x40021000
    ldr r1, [r0]
    orrs r1, r3             @ r3 = HSEBYP or 0
    str r1, [r0]
    ldr r2, =0x10000        @ HSEON
    orrs r1, r2
    str r1, [r0]
    movs r5, #0
    ldr r4, =5000
1:  ldr r1, [r0]
    ldr r2, =0x20000        @ HSERDY
    tst r1, r2
    bne 2f
    subs r4, #1
    bne 1b
    b 3f
2:  movs r5, #1
3:
"""
    for byp, ready in ((0, 0), (1, 1)):
        vb = _program(f"    ldr r3, ={byp << 18}\n" + body, latency=0, board=F103)
        _run(vb)
        assert vb.reg("r5") == ready


@needs_as
def test_flash_erase_takes_its_datasheet_time_at_the_running_clock():
    # DS12023: page erase 22 ms typ; at 120 MHz that is 2.64 M core cycles (88 000 at the 4 MHz reset clock)
    erase = """
    ldr r0, =0x40022000
    ldr r1, =0x45670123     @ KEYR sequence (RM0432 3.3.5)
    str r1, [r0, #0x08]
    ldr r1, =0xCDEF89AB
    str r1, [r0, #0x08]
    ldr r1, =(2 | (64 << 3))            @ PER, PNB 64 (bank 1)
    str r1, [r0, #0x14]
    ldr r1, =(2 | (64 << 3) | (1 << 16))
    str r1, [r0, #0x14]
6:  ldr r1, [r0, #0x10]     @ wait while BSY
    ldr r2, =0x10000
    tst r1, r2
    bne 6b
"""
    vb = _program(L4R5_PREP + BOOST + PLL_ON + SWITCH + erase, latency=5)
    _run(vb)
    assert vb.peripherals.clock.hclk == 120_000_000
    assert vb.peripherals.flash_ctl.stall_cycles == pytest.approx(22e-3 * 120e6, rel=0.01)


@needs_gcc
def test_firmware_reports_a_failed_clock_setup(monkeypatch):
    """A PLL that cannot lock (its input outside the VCO input range, as with a dead oscillator): the firmware's
    bounded wait on PLLRDY times out, the core stays at its reset clock with the UART divisor of that clock,
    HELLO says so, and the agent refuses the board."""
    from measure_agent import backends
    from measure_agent.errors import MeasureError
    from measure_agent.settings import FirmwareSettings
    from measure_agent.serial_link import BoardLink, open_serial
    from measure_agent.vboard import PtyBridge, VirtualBoard, peripherals

    real = peripherals.clock_tree_config

    def dead_pll(board):
        cfg, oscs = real(board)
        return {**cfg, "vco_in_hi": 1}, oscs

    monkeypatch.setattr(peripherals, "clock_tree_config", dead_pll)
    image = backends.VirtualBackend(backends.BoardSpec(id="x", kind="virtual", target=L4R5.name)).firmware(
        FirmwareSettings.for_board(L4R5))
    vb = VirtualBoard(L4R5, image.elf)
    bridge = PtyBridge(vb)
    serial = open_serial(bridge.path)
    try:
        link = BoardLink(serial, timeout=5.0)
        hello = link.hello()
        assert (hello.core_clock_hz, hello.default_clock_hz) == (L4R5.reset_clock_hz, L4R5.default_clock_hz)
        assert link.echo(b"at 4 MHz") == b"at 4 MHz"  # BRR of the clock that runs: 256 * 4 MHz / 115200
        clock = vb.peripherals.clock
        assert (clock.source, clock.hclk) == ("MSI", 4_000_000)
        assert "outside the VCO input range" in clock.note
    finally:
        serial.close()
        bridge.close()
    backend = backends.VirtualBackend(backends.BoardSpec(id="y", kind="virtual", target=L4R5.name))
    try:
        with pytest.raises(MeasureError, match="clock set-up failed, the core runs at 4 MHz, not 120 MHz "
                                               r"\(virtual board: the PLL cannot lock: the PLL input is outside"):
            backend.link(image)
    finally:
        backend.close()


@needs_gcc
def test_doctor_names_a_failed_clock_setup(monkeypatch):
    """A serial board (a simulator behind a pty) whose PLL cannot lock: the doctor's clock row fails from the
    HELLO's core clock, before any wall-time run."""
    from measure_agent.backends import BoardSpec
    from measure_agent.doctor import FAIL, OK, check_board
    from measure_agent.firmware_build import build_firmware
    from measure_agent.vboard import PtyBridge, VirtualBoard, peripherals

    real = peripherals.clock_tree_config
    monkeypatch.setattr(peripherals, "clock_tree_config", lambda b: ({**real(b)[0], "vco_in_hi": 1}, real(b)[1]))
    image = build_firmware(L4R5)
    with PtyBridge(VirtualBoard(L4R5, Path(image.elf)), run_timeout_s=120) as bridge:
        report = check_board(BoardSpec(id="sim", kind="serial", target=L4R5.name, port=bridge.path))
    checks = {c.name: c for c in report.checks}
    assert checks["hello"].verdict == OK
    assert checks["clock"].verdict == FAIL and "core runs at 4 MHz, not the 120 MHz" in checks["clock"].detail
    assert "clocks.toml" in checks["clock"].advice


def test_measure_clock_option_parses_frequencies():
    from costmodel.console import CliError
    from measure_agent.cli import parse_hz

    assert (parse_hz("80MHz"), parse_hz("32.768kHz"), parse_hz("4000000"), parse_hz(" 110 mhz")) == (
        80_000_000, 32_768, 4_000_000, 110_000_000)
    for bad in ("fast", "80 GHz", "0.5Hz", "-80MHz"):
        with pytest.raises(CliError, match="--clock must be"):
            parse_hz(bad)
