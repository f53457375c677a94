"""``board_config.h``: the catalogue facts of a board (boards.toml) and of its family (families.toml) as C."""

from __future__ import annotations

from costmodel.boards import Board
from costmodel.clocks import ClockPlan, clock_plan

from .flags import CORE_MACRO as _CORE_MACRO
from .linker import code_tcm

UART_BAUD = 115200


def _set(addr: int, bits: int) -> tuple[int, int, int]:
    return (addr, bits, bits)


def uart_init_writes(board: Board) -> list[tuple[int, int, int]]:
    """Register writes (address, clear mask, set value) that clock the board's debug UART and route its
    pins, from the family's RCC/GPIO layout (families.toml) and the board's pins (boards.toml).
    UNTESTED ON HARDWARE: from the ST reference manuals and the Nucleo/Discovery user manuals."""
    fam, uart = board.family, board.uart
    gpio = fam.gpio
    ports = sorted({uart.tx.port, uart.rx.port})
    writes = []
    if fam.power_enable and fam.vddio2 and 6 in ports:  # port G is powered from VDDIO2 (L4/L5)
        writes += [_set(fam.power_enable[0], 1 << fam.power_enable[1]), _set(fam.vddio2[0], 1 << fam.vddio2[1])]
    port_bits = sum(1 << (gpio.first_bit + p) for p in ports)
    if fam.afio_enable:
        port_bits |= 1 << fam.afio_enable[1] if fam.afio_enable[0] == gpio.rcc_enable else 0
    writes.append(_set(gpio.rcc_enable, port_bits))
    if fam.afio_enable and fam.afio_enable[0] != gpio.rcc_enable:
        writes.append(_set(fam.afio_enable[0], 1 << fam.afio_enable[1]))
    reg, bit = fam.uart_clocks[uart.name]
    writes.append(_set(reg, 1 << bit))
    if gpio.layout == "f1":
        # CRL/CRH: 4 bits per pin; TX alternate-function push-pull 50 MHz (0xB), RX floating input (0x4)
        for pin, mode in ((uart.tx, 0xB), (uart.rx, 0x4)):
            reg = gpio.port_base(pin.port) + (0x0 if pin.number < 8 else 0x4)
            shift = 4 * (pin.number % 8)
            writes.append((reg, 0xF << shift, mode << shift))
        return writes
    for pin in (uart.tx, uart.rx):  # MODER: alternate function (0b10)
        writes.append((gpio.port_base(pin.port), 0b11 << (2 * pin.number), 0b10 << (2 * pin.number)))
    for pin in (uart.tx, uart.rx):  # AFRL/AFRH
        reg = gpio.port_base(pin.port) + (0x20 if pin.number < 8 else 0x24)
        shift = 4 * (pin.number % 8)
        writes.append((reg, 0xF << shift, uart.af << shift))
    return writes


def energy_gpio_init_writes(board: Board) -> list[tuple[int, int, int]]:
    """Register writes that make the board's energy pin (boards.toml ``energy_gpio``) a push-pull output, low:
    its port's clock, then the mode (F1 CRL/CRH 0b0010: output 2 MHz push-pull, RM0008 9.2.1; MODER 0b01,
    output type and pull-up/down left at their reset values: push-pull, none). UNTESTED ON HARDWARE."""
    pin, fam = board.energy_gpio, board.family
    if pin is None:
        return []
    gpio = fam.gpio
    writes = []
    if fam.power_enable and fam.vddio2 and pin.port == 6:  # port G is powered from VDDIO2 (L4/L5)
        writes += [_set(fam.power_enable[0], 1 << fam.power_enable[1]), _set(fam.vddio2[0], 1 << fam.vddio2[1])]
    writes.append(_set(gpio.rcc_enable, 1 << (gpio.first_bit + pin.port)))
    base = gpio.port_base(pin.port)
    writes.append((base + gpio.bsrr_offset, 0xFFFFFFFF, 1 << (pin.number + 16)))  # low before it drives
    if gpio.layout == "f1":
        reg, shift = base + (0x0 if pin.number < 8 else 0x4), 4 * (pin.number % 8)
        writes.append((reg, 0xF << shift, 0x2 << shift))
    else:
        writes.append((base, 0b11 << (2 * pin.number), 0b01 << (2 * pin.number)))
    return writes


def energy_gpio_lines(board: Board) -> list[str]:
    """``BOARD_ENERGY_GPIO_*``: the BSRR address and the set / reset words of the energy pin."""
    pin = board.energy_gpio
    if pin is None:
        return ["/* no energy_gpio in the catalogue: layers are not marked */"]
    bsrr = board.family.gpio.port_base(pin.port) + board.family.gpio.bsrr_offset
    return [f"/* energy pin {pin}: toggled at every layer boundary (boards.toml energy_gpio): UNTESTED ON HARDWARE */",
            f'#define BOARD_ENERGY_GPIO_NAME "{pin}"',
            f"#define BOARD_ENERGY_GPIO_BSRR 0x{bsrr:08X}u",
            f"#define BOARD_ENERGY_GPIO_SET 0x{1 << pin.number:08X}u",
            f"#define BOARD_ENERGY_GPIO_RESET 0x{1 << (pin.number + 16):08X}u"]


def uart_brr(board: Board, baud: int = UART_BAUD, clock_hz: int | None = None) -> int:
    """Baud divisor at the UART's kernel clock ``clock_hz`` (default: its PCLK at the catalogue clock):
    USART f/baud (16x oversampling), LPUART 256*f/baud; the firmware computes the same at run time."""
    if clock_hz is None:
        plan = clock_plan(board)
        clock_hz = plan.pclk(plan.layout.uart_bus[board.uart.name])
    if board.uart.name.upper().startswith("LPUART"):
        return (256 * clock_hz + baud // 2) // baud
    return (clock_hz + baud // 2) // baud


def clock_config_lines(plan: ClockPlan, uart: str) -> list[str]:
    """The clock tree's register values (costmodel.clocks.clock_plan) as C macros for firmware/board/clock.c.
    UNTESTED ON HARDWARE: from the ST reference manuals; they run on the virtual board's RCC / PWR models."""
    lay = plan.layout
    rcc, osc = lay.rcc, lay.osc[plan.source]
    psrc_mask, psrc_value = plan.pllcfgr_fields()
    presc_mask, presc_value = plan.prescaler_fields()
    step_value = plan.prescaler_fields(hpre=2)[1] if plan.ahb_step else presc_value
    uart_div = plan.hz // plan.pclk(lay.uart_bus[uart])
    lines = [
        f"/* clock tree (costmodel/data/clocks.toml): {plan.source}{' bypass' if plan.bypass else ''} "
        f"{plan.source_hz / 1e6:g} MHz / M {plan.m} x N {plan.n} / R {plan.r} = {plan.hz / 1e6:g} MHz "
        f"(VCO {plan.vco_hz / 1e6:g} MHz), voltage {plan.level}, {plan.wait_states} wait states; "
        "UNTESTED ON HARDWARE */",
        f"#define BOARD_CLOCK_HZ {plan.hz}u",
        f"#define BOARD_CLK_CR 0x{rcc + lay.cr:08X}u",
        f"#define BOARD_CLK_CFGR 0x{rcc + lay.cfgr:08X}u",
        f"#define BOARD_CLK_PLLCFGR 0x{rcc + lay.pllcfgr:08X}u",
        f"#define BOARD_CLK_OSC_ON {_bit(osc.on)}",
        f"#define BOARD_CLK_OSC_BYP {_bit(osc.byp) if plan.bypass else '0u'}",
        f"#define BOARD_CLK_OSC_RDY {_bit(osc.rdy)}",
        f"#define BOARD_CLK_PLL_ON {_bit(lay.pll_on)}",
        f"#define BOARD_CLK_PLL_RDY {_bit(lay.pll_rdy)}",
        f"#define BOARD_CLK_PLLCFGR_MASK 0x{psrc_mask:08X}u",
        f"#define BOARD_CLK_PLLCFGR_VALUE 0x{psrc_value:08X}u",
        f"#define BOARD_CLK_PRESC_MASK 0x{presc_mask:08X}u",
        f"#define BOARD_CLK_PRESC_VALUE 0x{presc_value:08X}u",
        f"#define BOARD_CLK_PRESC_SWITCH 0x{step_value:08X}u",
        f"#define BOARD_CLK_SW_MASK 0x{lay.sw.mask:X}u",
        f"#define BOARD_CLK_SW_PLL 0x{lay.sw_codes['PLL'] << lay.sw.shift:X}u",
        f"#define BOARD_CLK_SW_RESET 0x{lay.sw_codes[lay.reset_source] << lay.sw.shift:X}u",
        f"#define BOARD_CLK_SWS_MASK 0x{lay.sws.mask:X}u",
        f"#define BOARD_CLK_SWS_PLL 0x{lay.sw_codes['PLL'] << lay.sws.shift:X}u",
        f"#define BOARD_CLK_PWR_ENR 0x{lay.pwr_enable[0]:08X}u",
        f"#define BOARD_CLK_PWR_EN {_bit(lay.pwr_enable[1])}",
        f"#define BOARD_UART_PCLK_DIV {uart_div}u",
    ]
    v, pwr = lay.voltage, lay.pwr
    if v["style"] == "vos":
        code = next(int(c) for c, name in v["levels"].items() if plan.level.startswith(name))
        if code != int(v["reset_vos"]):
            shift, bits = v["vos"]
            lines += [f"#define BOARD_CLK_VOS_CR 0x{pwr + v['cr']:08X}u",
                      f"#define BOARD_CLK_VOS_MASK 0x{((1 << bits) - 1) << shift:X}u",
                      f"#define BOARD_CLK_VOS_VALUE 0x{code << shift:X}u",
                      f"#define BOARD_CLK_VOSF_SR 0x{pwr + v['sr']:08X}u",
                      f"#define BOARD_CLK_VOSF {_bit(v['vosf'])}"]
        if plan.level.endswith("-boost"):
            off, bit = v["boost"]
            lines += [f"#define BOARD_CLK_BOOST_CR 0x{pwr + off:08X}u", f"#define BOARD_CLK_BOOST_BIT {_bit(bit)}"]
    elif v["style"] == "overdrive" and plan.level.endswith("-overdrive"):
        lines += [f"#define BOARD_CLK_OD_CR 0x{pwr + v['cr']:08X}u", f"#define BOARD_CLK_ODEN {_bit(v['oden'])}",
                  f"#define BOARD_CLK_ODSWEN {_bit(v['odswen'])}", f"#define BOARD_CLK_OD_CSR 0x{pwr + v['csr']:08X}u",
                  f"#define BOARD_CLK_ODRDY {_bit(v['odrdy'])}", f"#define BOARD_CLK_ODSWRDY {_bit(v['odswrdy'])}"]
    return lines




def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.upper())


def _bit(n: int) -> str:
    return f"(1u << {n})" if n >= 0 else "0u"


def flash_config_lines(board: Board) -> list[str]:
    """The flash controller (families.toml flash_ctl), the erase units and the slot grid as C macros.
    UNTESTED ON HARDWARE: from the ST reference manuals; they run on the virtual board's FLASH model."""
    from .linker import MAX_SLOTS, flash_slots

    ctl, slots = board.family.flash_ctl, flash_slots(board)
    if ctl is None or not slots:
        return ["/* no flash controller / layout in the catalogue: plans live in SRAM only */",
                "#define BOARD_FLASH_NSLOTS 0u"]
    b = ctl.base
    lines = [
        "/* FLASH controller (families.toml flash_ctl) and erase units (boards.toml flash_layout):",
        "   UNTESTED ON HARDWARE */",
        f"#define BOARD_FLASHCTL_STYLE_{ctl.style.upper().replace('-', '_')} 1",
        f"#define BOARD_FLASHCTL_KEYR 0x{b + ctl.keyr:08X}u",
        f"#define BOARD_FLASHCTL_SR 0x{b + ctl.sr:08X}u",
        f"#define BOARD_FLASHCTL_CR 0x{b + ctl.cr:08X}u",
    ]
    if ctl.ar >= 0:
        lines.append(f"#define BOARD_FLASHCTL_AR 0x{b + ctl.ar:08X}u")
    lines += [
        f"#define BOARD_FLASHCTL_KEY1 0x{ctl.keys[0]:08X}u",
        f"#define BOARD_FLASHCTL_KEY2 0x{ctl.keys[1]:08X}u",
        f"#define BOARD_FLASHCTL_SR_BUSY 0x{ctl.sr_busy:X}u",
        f"#define BOARD_FLASHCTL_SR_EOP 0x{ctl.sr_eop:X}u",
        f"#define BOARD_FLASHCTL_SR_ERRORS 0x{ctl.sr_errors:X}u",
        f"#define BOARD_FLASHCTL_CR_PG {_bit(ctl.cr_pg)}",
        f"#define BOARD_FLASHCTL_CR_ERASE {_bit(ctl.cr_erase)}",
        f"#define BOARD_FLASHCTL_CR_STRT {_bit(ctl.cr_strt)}",
        f"#define BOARD_FLASHCTL_CR_LOCK {_bit(ctl.cr_lock)}",
        f"#define BOARD_FLASHCTL_CR_BANK {_bit(ctl.cr_bank)}",
        f"#define BOARD_FLASHCTL_NUMBER_SHIFT {ctl.number_shift}u",
        f"#define BOARD_FLASHCTL_NUMBER_MASK 0x{ctl.number_mask:X}u",
        f"#define BOARD_FLASHCTL_PSIZE_BITS {f'({ctl.psize}u << {ctl.psize_shift})' if ctl.psize_shift >= 0 else '0u'}",
        f"#define BOARD_FLASHCTL_PSIZE_MASK {f'(3u << {ctl.psize_shift})' if ctl.psize_shift >= 0 else '0u'}",
        f"#define BOARD_FLASHCTL_ACR_ICRST {_bit(ctl.acr_icrst)}",
        f"#define BOARD_FLASHCTL_ACR_DCRST {_bit(ctl.acr_dcrst)}",
        f"#define BOARD_FLASHCTL_ACR_DCEN {_bit(ctl.acr_dcen)}",
        f"#define BOARD_FLASH_PROGRAM_BYTES {ctl.program_bytes}u",
        f"#define BOARD_FLASH_ENDURANCE {ctl.endurance}u",
        f"#define BOARD_FLASH_MAX_SLOTS {MAX_SLOTS}u",
        f"#define BOARD_FLASH_NUNIT_GROUPS {len(board.erase_units)}u",
        "/* erase units {base, bytes, count, first number, bank} */",
        "#define BOARD_FLASH_UNITS { \\",
        *[f"    {{0x{u.base:08X}u, {u.bytes}u, {u.count}u, {u.number}u, {u.bank}u}}, \\" for u in board.erase_units],
        "}",
        f"#define BOARD_FLASH_NSLOTS {len(slots)}u",
        "/* the slot grid {base, bytes}: linker.py flash_slots(); usable from __flash_slots_start */",
        "#define BOARD_FLASH_SLOTS { \\",
        *[f"    {{0x{s.base:08X}u, {s.size}u}}, \\" for s in slots],
        "}",
    ]
    return lines


def board_config_header(board: Board, *, baud: int = UART_BAUD, clock_hz: int | None = None) -> str:
    """The generated ``board_config.h``: catalogue facts + per-family register data; the clock tree brings
    the core to ``clock_hz`` (default: the catalogue clock)."""
    fam = board.family
    plan = clock_plan(board, clock_hz)
    writes = uart_init_writes(board) + energy_gpio_init_writes(board)
    accel_bits = fam.accelerator_bits.get(board.flash_accelerator, 0)
    lines = [
        f"/* Generated by measure_agent/firmware_build/board_config.py from costmodel/data/boards.toml and "
        f"families.toml: {board.name}. */",
        "#ifndef BOARD_CONFIG_H", "#define BOARD_CONFIG_H",
        f'#define BOARD_NAME "{board.name}"',
        f'#define BOARD_MCU "{board.mcu}"',
        f'#define BOARD_CORE "{board.core}"',
        f"#define BOARD_ID_{_ident(board.name)} 1",
        f"#define BOARD_FAMILY_{fam.name} 1",
        f"#define BOARD_CORE_{_CORE_MACRO[board.core]} 1",
        f"#define BOARD_DEFAULT_CLOCK_HZ {plan.hz}u",  # the clock latencies are reported at
        f"#define BOARD_RESET_CLOCK_HZ {board.reset_clock_hz}u",
        f"#define BOARD_FLASH_BASE 0x{board.flash.base:08X}u",
        f"#define BOARD_FLASH_SIZE {board.flash.size}u",
        f"#define BOARD_SRAM_BASE 0x{board.sram.base:08X}u",
        f"#define BOARD_SRAM_SIZE {board.sram.size}u",
        f"#define BOARD_FLASH_WAIT_STATES {plan.wait_states}u",
        f"#define BOARD_FLASH_ACCELERATOR_{board.flash_accelerator.upper()} 1",
        f"#define BOARD_ICACHE_BYTES {board.icache_bytes}",
        f"#define BOARD_DCACHE_BYTES {board.dcache_bytes}",
        f"#define BOARD_FLASH_ACR 0x{fam.flash_acr:08X}u",
        f"#define BOARD_FLASH_ACR_LATENCY_MASK 0x{fam.flash_acr_latency_mask:X}u",
        f"#define BOARD_FLASH_ACR_ACCEL_BITS 0x{accel_bits:X}u",
    ]
    if code_tcm(board) is not None:  # the hot kernels run from it (linker.py CODE_TCM_KERNELS)
        lines.append(f"#define BOARD_CODE_TCM_BASE 0x{code_tcm(board).base:08X}u")
    if fam.icache_cr is not None and board.icache_bytes:
        lines.append(f"#define BOARD_ICACHE_CR 0x{fam.icache_cr:08X}u")
    lines += [
        f"#define BOARD_UART_BASE 0x{board.uart.base:08X}u",
        f'#define BOARD_UART_NAME "{board.uart.name}"',
        f"#define BOARD_UART_KIND_{'V1' if board.uart.kind == 'stm32-usart-v1' else 'V2'} 1",
        f"#define BOARD_UART_BAUD {baud}u",
        *(["#define BOARD_UART_LPUART 1"] if board.uart.name.upper().startswith("LPUART") else []),
        "/* UART and energy-pin clock/pin register writes {address, clear mask, set value}: UNTESTED ON HARDWARE */",
        "#define BOARD_INIT_WRITES { \\",
    ]
    lines += [f"    {{0x{a:08X}u, 0x{m:08X}u, 0x{v:08X}u}}, \\" for a, m, v in writes]
    lines += ["}"]
    lines += energy_gpio_lines(board)
    lines += clock_config_lines(plan, board.uart.name)
    lines += flash_config_lines(board)
    lines += ["#endif", ""]
    return "\n".join(lines)
