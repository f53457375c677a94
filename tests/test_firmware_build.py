"""The build package: settings defaults and the build matrix, the generated board data per family, the
one cache root, the one ELF reader; then ARM firmware builds of every catalogue board with its default
settings (cached by content hash under $MCU_NAS_CACHE/firmware or ~/.cache/mcu-nas/firmware), and the
firmware on the virtual board through its PTY with BoardLink over pyserial."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from costmodel.boards import catalogue, get_board, parse_catalogue
from measure_agent.firmware_build import (
    FirmwareBuildError,
    build_firmware,
    build_host_shell,
    build_matrix,
    cache_dir,
    format_build_report,
    resolve_runtime,
)
from measure_agent.firmware_build import cache as build_cache
from measure_agent.firmware_build import firmware as fw
from measure_agent.firmware_build import flags
from measure_agent.firmware_build.board_config import board_config_header, uart_brr
from measure_agent.firmware_build.linker import MAX_SLOTS, flash_slots, linker_script, usable_slots
from measure_agent.elf import ElfError, parse_elf
from measure_agent.settings import FLOAT_ABIS, OPT_LEVELS, VARIANTS, FirmwareSettings, SettingsError

needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")

BOARDS = sorted(catalogue())
# The virtual board's strict memory hook (v. 2026-11-23 21:05) returns wrong data for some flash reads
# (an aligned LDRH of a string constant in newlib's memcpy tail reads 0x0003): run without it until fixed.
STRICT = False


@pytest.fixture
def fake_compiler(monkeypatch):
    """Build recipes (and ids) without arm-none-eabi-gcc: a fixed compiler version."""
    monkeypatch.setattr(fw, "compiler_version", lambda cc: f"{cc} (fake) 1.0")


# ------------------------------------------------------------------ settings

@pytest.mark.parametrize("name", BOARDS)
def test_build_default_is_the_measurement_default(fake_compiler, name):
    board = get_board(name)
    assert fw.firmware_recipe(board).settings == FirmwareSettings.for_board(board)
    assert fw.firmware_recipe(board, runtime="stub").settings.opt_level == FirmwareSettings.for_board(board).opt_level


@pytest.mark.parametrize("name", BOARDS)
def test_build_matrix_covers_every_combination_once(monkeypatch, name):
    board = get_board(name)
    built = []
    monkeypatch.setattr(fw, "build_firmware", lambda b, settings, **kw: built.append((b, settings, kw)) or settings)
    images = build_matrix(name, runtime="stub")
    valid = set()
    for v in VARIANTS:
        for a in FLOAT_ABIS:
            for o in OPT_LEVELS:
                try:
                    valid.add(FirmwareSettings.for_board(board, v, a, o))
                except SettingsError:
                    pass
    settings = [s for _b, s, _kw in built]
    assert len(settings) == len(set(settings)) == len(valid)
    assert set(settings) == valid and images == settings
    assert len(valid) == len(board.runtime_variants()) * len(board.float_abis()) * len(OPT_LEVELS)
    assert all(b is board and kw == {"runtime": "stub"} for b, _s, kw in built)


def test_invalid_combinations_are_clear_errors():
    g0, f1, l4 = get_board("NUCLEO-G071RB"), get_board("NUCLEO-F103RB"), get_board("NUCLEO-L4R5ZI")
    with pytest.raises(SettingsError, match="DSP"):
        FirmwareSettings.for_board(g0, "simd")
    with pytest.raises(SettingsError, match="FPU"):
        FirmwareSettings.for_board(f1, "reference", "hard")
    with pytest.raises(SettingsError, match="optimisation level"):
        FirmwareSettings.for_board(l4, opt_level="-O1")
    # settings made without for_board are checked against the board before anything is built
    with pytest.raises(SettingsError, match="DSP"):
        build_firmware(f1, FirmwareSettings("simd", "soft", "-O2"))
    with pytest.raises(SettingsError, match="FPU"):
        build_firmware("NUCLEO-F103RB", FirmwareSettings("reference", "hard", "-O2"))
    with pytest.raises(TypeError, match="FirmwareSettings"):
        build_firmware(l4, "simd")
    with pytest.raises(FirmwareBuildError, match="runtime"):
        build_firmware(l4, runtime="fast")


# ------------------------------------------------------------------ generated board data

def _defines(header: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (\w+) (.+)$", header, re.M))


def _init_writes(header: str) -> list[tuple[int, int, int]]:
    return [tuple(int(x, 16) for x in m)
            for m in re.findall(r"\{0x([0-9A-F]{8})u, 0x([0-9A-F]{8})u, 0x([0-9A-F]{8})u\}", header)]


# One board per family: FLASH_ACR address, LATENCY mask, accelerator bits, ICACHE_CR (L5 only), UART BRR at
# the UART's PCLK at the catalogue clock (F1 APB1 36 MHz, F4 APB1 45 MHz, F7 APB1 54 MHz, G0 64 MHz, L4 80 MHz,
# L5 110 MHz: USART f / 115200, LPUART 256 f / 115200, rounded), and the UART clock/pin writes (address, clear mask, set value) from the reference manuals.
FAMILY_FACTS = {
    "NUCLEO-F103RB": ("STM32F1", 0x40022000, 0x7, 0x10, None, 313, [  # RM0008; USART2 PA2/PA3, CRL
        (0x40021018, 0x5, 0x5), (0x4002101C, 1 << 17, 1 << 17), (0x40010800, 0xF00, 0xB00),
        (0x40010800, 0xF000, 0x4000)]),
    "DISCO-F469NI": ("STM32F4", 0x40023C00, 0xF, 0x700, None, 391, [  # RM0386; USART3 PB10/PB11 AF7
        (0x40023830, 0x2, 0x2), (0x40023840, 1 << 18, 1 << 18), (0x40020400, 0x300000, 0x200000),
        (0x40020400, 0xC00000, 0x800000), (0x40020424, 0xF00, 0x700), (0x40020424, 0xF000, 0x7000)]),
    "NUCLEO-F767ZI": ("STM32F7", 0x40023C00, 0xF, 0x0, None, 469, [  # RM0410; USART3 PD8/PD9 AF7
        (0x40023830, 0x8, 0x8), (0x40023840, 1 << 18, 1 << 18), (0x40020C00, 0x30000, 0x20000),
        (0x40020C00, 0xC0000, 0x80000), (0x40020C24, 0xF, 0x7), (0x40020C24, 0xF0, 0x70)]),
    "NUCLEO-G071RB": ("STM32G0", 0x40022000, 0x7, 0x300, None, 556, [  # RM0444; USART2 PA2/PA3 AF1
        (0x40021034, 0x1, 0x1), (0x4002103C, 1 << 17, 1 << 17), (0x50000000, 0x30, 0x20),
        (0x50000000, 0xC0, 0x80), (0x50000020, 0xF00, 0x100), (0x50000020, 0xF000, 0x1000)]),
    "NUCLEO-L496ZG": ("STM32L4", 0x40022000, 0xF, 0x700, None, 177778, [  # RM0351; LPUART1 PG7/PG8 AF8, VDDIO2
        (0x40021058, 1 << 28, 1 << 28), (0x40007004, 0x200, 0x200), (0x4002104C, 0x40, 0x40),
        (0x4002105C, 0x1, 0x1), (0x48001800, 0xC000, 0x8000), (0x48001800, 0x30000, 0x20000),
        (0x48001820, 0xF0000000, 0x80000000), (0x48001824, 0xF, 0x8)]),
    "NUCLEO-L552ZE-Q": ("STM32L5", 0x40022000, 0xF, 0x0, 0x40030400, 244444, [  # RM0438; non-secure GPIOG
        (0x40021058, 1 << 28, 1 << 28), (0x40007004, 0x200, 0x200), (0x4002104C, 0x40, 0x40),
        (0x4002105C, 0x1, 0x1), (0x42021800, 0xC000, 0x8000), (0x42021800, 0x30000, 0x20000),
        (0x42021820, 0xF0000000, 0x80000000), (0x42021824, 0xF, 0x8)]),
}


# The energy pin (boards.toml energy_gpio, an Arduino-header D7): its port's clock, the pin low through BSRR
# (bit n + 16), then output mode: MODER 0b01 (RM0351 8.5.1, RM0386/RM0410 GPIOx_MODER, RM0444 7.4.1, RM0438
# 9.4.1), F1 CRH MODE = 0b10 / CNF = 0b00, output push-pull 2 MHz (RM0008 9.2.2); BSRR at 0x18 (0x10 on the F1).
ENERGY_PIN_WRITES = {
    "NUCLEO-F103RB": [(0x40021018, 0x4, 0x4), (0x40010810, 0xFFFFFFFF, 1 << 24), (0x40010804, 0xF, 0x2)],   # PA8
    "DISCO-F469NI": [(0x40023830, 0x40, 0x40), (0x40021818, 0xFFFFFFFF, 1 << 27),                         # PG11
                     (0x40021800, 0xC00000, 0x400000)],
    "NUCLEO-F767ZI": [(0x40023830, 0x20, 0x20), (0x40021418, 0xFFFFFFFF, 1 << 29),                        # PF13
                      (0x40021400, 0xC000000, 0x4000000)],
    "NUCLEO-G071RB": [(0x40021034, 0x1, 0x1), (0x50000018, 0xFFFFFFFF, 1 << 24), (0x50000000, 0x30000, 0x10000)],
    "NUCLEO-L496ZG": [(0x4002104C, 0x20, 0x20), (0x48001418, 0xFFFFFFFF, 1 << 29),                        # PF13
                      (0x48001400, 0xC000000, 0x4000000)],
    "NUCLEO-L552ZE-Q": [(0x4002104C, 0x20, 0x20), (0x42021418, 0xFFFFFFFF, 1 << 29),                      # PF13
                        (0x42021400, 0xC000000, 0x4000000)],
}


@pytest.mark.parametrize("name", sorted(FAMILY_FACTS))
def test_board_config_family_facts(name):
    family, acr, mask, accel, icache_cr, brr, writes = FAMILY_FACTS[name]
    board = get_board(name)
    header = board_config_header(board)
    d = _defines(header)
    assert board.family.name == family and d[f"BOARD_FAMILY_{family}"] == "1"
    assert d["BOARD_FLASH_ACR"] == f"0x{acr:08X}u" and d["BOARD_FLASH_ACR_LATENCY_MASK"] == f"0x{mask:X}u"
    assert d["BOARD_FLASH_ACR_ACCEL_BITS"] == f"0x{accel:X}u"
    assert d.get("BOARD_ICACHE_CR") == (None if icache_cr is None else f"0x{icache_cr:08X}u")
    assert uart_brr(board) == brr and "BOARD_UART_BRR" not in d  # the firmware computes BRR from its clock
    assert d["BOARD_FLASH_WAIT_STATES"] == f"{board.flash_wait_states}u"
    assert _init_writes(header) == writes + ENERGY_PIN_WRITES[name]
    pin = board.energy_gpio
    bsrr = ENERGY_PIN_WRITES[name][1][0]
    assert d["BOARD_ENERGY_GPIO_BSRR"] == f"0x{bsrr:08X}u"
    assert d["BOARD_ENERGY_GPIO_SET"] == f"0x{1 << pin.number:08X}u"
    assert d["BOARD_ENERGY_GPIO_RESET"] == f"0x{1 << (pin.number + 16):08X}u"
    assert "UNTESTED ON HARDWARE" in header and header.endswith("}\n#endif\n")


def test_generated_board_data():
    l4 = get_board("NUCLEO-L496ZG")
    assert uart_brr(l4, clock_hz=4_000_000) == 8889  # LPUART: 256 * 4 MHz / 115200 (the reset clock)
    assert uart_brr(get_board("DISCO-F469NI"), clock_hz=16_000_000) == 139  # USART: 16 MHz / 115200
    h = board_config_header(l4)
    assert "#define BOARD_FLASH_WAIT_STATES 4u" in h and "#define BOARD_UART_KIND_V2 1" in h
    assert "#define BOARD_FLASH_ACR 0x40022000u" in h and "#define BOARD_FLASH_ACR_ACCEL_BITS 0x700u" in h
    f7 = board_config_header(get_board("NUCLEO-F767ZI"))
    assert "#define BOARD_CORE_M7 1" in f7 and "#define BOARD_ICACHE_BYTES 16384" in f7
    ld = linker_script(l4, 8192)
    assert "ORIGIN = 0x20000000, LENGTH = 327680" in ld and "__model_ram_start" in ld


def test_family_fact_changes_header_and_build_id(fake_compiler):
    boards_text = resources.files("costmodel").joinpath("data/boards.toml").read_text()
    families_text = resources.files("costmodel").joinpath("data/families.toml").read_text()
    head, l4_block = families_text.split("[families.STM32L4]", 1)
    changed_block = l4_block.replace("flash_acr_latency_mask = 0xF", "flash_acr_latency_mask = 0x7", 1)
    assert changed_block != l4_block
    changed = parse_catalogue(boards_text, head + "[families.STM32L4]" + changed_block)
    shipped = catalogue()
    for name, board in changed.items():
        before, after = board_config_header(shipped[name]), board_config_header(board)
        if board.family.name != "STM32L4":
            assert after == before
            assert fw.firmware_recipe(board).build_id == fw.firmware_recipe(shipped[name]).build_id
            continue
        diff = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
        assert diff == [("#define BOARD_FLASH_ACR_LATENCY_MASK 0xFu", "#define BOARD_FLASH_ACR_LATENCY_MASK 0x7u")]
        assert fw.firmware_recipe(board).build_id != fw.firmware_recipe(shipped[name]).build_id


def test_one_flags_table(fake_compiler):
    from measure_agent.plan import host as plan_host

    assert set(flags.RUNTIME_SEMANTICS) <= set(plan_host.CFLAGS)  # the host runtime computes what the board does
    for name in BOARDS:
        board = get_board(name)
        for settings in fw.matrix_settings(board):
            cflags = fw.firmware_recipe(board, settings, runtime="stub").cflags
            assert f"-mcpu={board.core}" in cflags and settings.opt_level in cflags
            assert ("-mfloat-abi=hard" in cflags) == (settings.float_abi == "hard")
            assert set(flags.RUNTIME_SEMANTICS) <= set(cflags)
    assert set(flags.RUNTIME_SEMANTICS) <= set(flags.host_shell_cflags("stub"))


# ------------------------------------------------------------------ cache root

def test_cache_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MCU_NAS_CACHE", str(tmp_path))
    assert {"firmware", "host-shell", "host-runtime", "test-models", "test-programs"} <= set(build_cache.KINDS)
    for kind in build_cache.KINDS:
        assert cache_dir(kind) == tmp_path / kind
        assert cache_dir(kind, tmp_path / "elsewhere") == tmp_path / "elsewhere"
    monkeypatch.delenv("MCU_NAS_CACHE")
    for kind in build_cache.KINDS:
        assert cache_dir(kind) == Path.home() / ".cache" / "mcu-nas" / kind
    with pytest.raises(ValueError, match="kind"):
        cache_dir("objects")
    # the host runtime library of measure_agent/plan/host.py (its folder is fixed at import)
    env = {**os.environ, "MCU_NAS_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", "from measure_agent.plan import host; print(host.CACHE)"],
                         capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert Path(out) == tmp_path / "host-runtime"


def test_staged_install_is_atomic(tmp_path):
    final = tmp_path / "firmware" / "entry"
    with pytest.raises(RuntimeError):
        with build_cache.staged(final) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("compiler died")
    assert not final.exists() and list(final.parent.iterdir()) == []
    with build_cache.staged(final) as tmp:
        (tmp / "a").write_text("first")
    with build_cache.staged(final) as tmp:  # same key built again: the first one stays
        (tmp / "a").write_text("second")
    assert (final / "a").read_text() == "first" and [p.name for p in final.parent.iterdir()] == ["entry"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_host_shell_lives_under_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("MCU_NAS_CACHE", str(tmp_path))
    exe = build_host_shell("stub")
    assert exe.is_file() and exe.parent.parent == tmp_path / "host-shell"
    assert build_host_shell("stub") == exe


@needs_gcc
def test_firmware_lives_under_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("MCU_NAS_CACHE", str(tmp_path))
    board = get_board("NUCLEO-G071RB")
    image = build_firmware(board, runtime="stub")
    assert image.path.is_file() and image.path.parent.parent == tmp_path / "firmware" and not image.cached
    assert image.path.parent.name == f"NUCLEO-G071RB-reference-soft-O2-{image.build_id}"
    again = build_firmware(board, FirmwareSettings.for_board(board), runtime="stub")
    assert again.cached and again == image and again.settings == FirmwareSettings.for_board(board)


# ------------------------------------------------------------------ the ELF reader

def _tiny_elf() -> bytes:
    """ELF header, one PT_LOAD, .text, .bss, .symtab, .strtab, .shstrtab; section headers last."""
    text = b"\x00\xbe\x00\xbf" * 2
    strtab = b"\0start\0"
    shstr = b"\0.text\0.bss\0.symtab\0.strtab\0.shstrtab\0"
    name = {n: shstr.index(n.encode() + b"\0") for n in (".text", ".bss", ".symtab", ".strtab", ".shstrtab")}
    symtab = bytes(16) + struct.pack("<IIIBBH", 1, 0x08000001, 0, 0x12, 0, 1)
    off_text = 52 + 32
    off_sym = off_text + len(text)
    off_str = off_sym + len(symtab)
    off_shstr = off_str + len(strtab)
    shoff = off_shstr + len(shstr)
    ehdr = b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack(
        "<HHIIIIIHHHHHH", 2, 40, 1, 0x08000001, 52, shoff, 0x05000200, 52, 32, 1, 40, 6, 5)
    phdr = struct.pack("<8I", 1, off_text, 0x08000000, 0x08000000, len(text), len(text), 5, 4)
    shdrs = [bytes(40),
             struct.pack("<10I", name[".text"], 1, 6, 0x08000000, off_text, len(text), 0, 0, 4, 0),
             struct.pack("<10I", name[".bss"], 8, 3, 0x20000000, off_sym, 64, 0, 0, 4, 0),
             struct.pack("<10I", name[".symtab"], 2, 0, 0, off_sym, len(symtab), 4, 1, 4, 16),
             struct.pack("<10I", name[".strtab"], 3, 0, 0, off_str, len(strtab), 0, 0, 1, 0),
             struct.pack("<10I", name[".shstrtab"], 3, 0, 0, off_shstr, len(shstr), 0, 0, 1, 0)]
    return ehdr + phdr + text + symtab + strtab + shstr + b"".join(shdrs)


def test_elf_reader_reads_segments_sections_symbols():
    image = parse_elf(_tiny_elf())
    assert image.entry == 0x08000001 and image.symbols == {"start": 0x08000001}
    (seg,) = image.segments
    assert (seg.paddr, seg.vaddr, seg.data, seg.memsz) == (0x08000000, 0x08000000, b"\x00\xbe\x00\xbf" * 2, 8)
    assert [s.name for s in image.sections] == ["", ".text", ".bss", ".symtab", ".strtab", ".shstrtab"]
    text, bss = image.section(".text"), image.section(".bss")
    assert text.alloc and not text.writable and not text.nobits and (text.addr, text.size) == (0x08000000, 8)
    assert bss.alloc and bss.writable and bss.nobits and (bss.addr, bss.size) == (0x20000000, 64)


def test_elf_reader_rejects_truncated_files():
    blob = _tiny_elf()
    for n in range(len(blob)):
        with pytest.raises(ElfError):
            parse_elf(blob[:n])


def _patched(blob: bytes, offset: int, fmt: str, *values) -> bytes:
    out = bytearray(blob)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


_SHOFF = 52 + 32 + 8 + 32 + 7 + 38  # of _tiny_elf(): after the header, phdr, .text, .symtab and string tables
MALFORMED = {
    "64-bit": (4, "<B", 2),
    "big-endian": (5, "<B", 2),
    "not Arm": (18, "<H", 62),
    "program header entries": (42, "<H", 16),                            # e_phentsize
    "section header entries": (46, "<H", 20),                            # e_shentsize
    "program header table": (44, "<H", 60000),                           # e_phnum
    "section header table": (48, "<H", 60000),                           # e_shnum
    "section past the end": (_SHOFF + 40 + 20, "<I", 1 << 20),          # .text sh_size
    "segment past the end": (52 + 16, "<II", 1 << 20, 1 << 20),         # p_filesz, p_memsz
    "segment filesz > memsz": (52 + 20, "<I", 4),                        # p_memsz
    "symtab link": (_SHOFF + 3 * 40 + 24, "<I", 1),                      # sh_link -> .text
    "symtab entries": (_SHOFF + 3 * 40 + 36, "<I", 8),                   # sh_entsize
    "section names": (50, "<H", 1),                                      # e_shstrndx -> .text
    "name offset": (_SHOFF + 40, "<I", 1000),                            # .text sh_name
    "symbol name": (52 + 32 + 8 + 16, "<I", 7),                          # 'start' st_name -> end of .strtab
}


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_elf_reader_rejects_malformed_files(what):
    blob = _tiny_elf()
    assert struct.unpack_from("<I", blob, 0x20)[0] == _SHOFF
    offset, fmt, *values = MALFORMED[what]
    with pytest.raises(ElfError):
        parse_elf(_patched(blob, offset, fmt, *values))


def test_elf_reader_fuzz_raises_only_elf_error():
    rng = np.random.default_rng(7)
    for n in (0, 3, 51, 52, 100, 400):
        with pytest.raises(ElfError):
            parse_elf(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
    blob = _tiny_elf()
    for _ in range(3000):
        data = bytearray(blob)
        for pos in rng.integers(16, len(blob), rng.integers(1, 5)):
            data[pos] = int(rng.integers(0, 256))
        try:
            parse_elf(bytes(data))
        except ElfError:
            pass


# ------------------------------------------------------------------ real builds

@pytest.fixture(scope="module")
def images():
    return {name: build_firmware(name) for name in BOARDS}


@needs_gcc
@pytest.mark.parametrize("name", BOARDS)
def test_builds_for_every_board(images, name):
    board = get_board(name)
    img = images[name]
    assert img.path.exists()
    assert img.settings == FirmwareSettings.for_board(board)
    assert img.variant == ("simd" if board.dsp else "reference")
    assert img.float_abi == ("hard" if board.fpu != "none" else "soft")
    assert 4096 < img.flash_bytes < board.flash.size
    assert 0 < img.ram_bytes and img.ram_bytes + img.model_ram_bytes <= board.sram.size
    assert img.model_ram_bytes >= board.sram.size // 3  # most SRAM is left to the model
    elf = parse_elf(img.path)
    vectors = elf.section(".isr_vector")
    assert vectors.addr == board.flash.base
    data = img.path.read_bytes()
    # initial SP = top of SRAM, reset vector is a Thumb address in flash
    sp, reset = struct.unpack_from("<II", data, vectors.offset)
    assert sp == board.sram.end and reset & 1 and board.flash.contains(reset & ~1)
    assert elf.symbols["__model_ram_end"] - elf.symbols["__model_ram_start"] == img.model_ram_bytes
    # the loadable segments are what a flasher writes: all of flash_bytes, at flash addresses
    assert sum(len(s.data) for s in elf.segments if board.flash.contains(s.paddr)) == img.flash_bytes
    report = format_build_report(img)
    assert name in report and f"{img.flash_bytes} bytes" in report and "model ram" in report
    for cut in (len(data) // 2, len(data) - 1):
        with pytest.raises(ElfError):
            parse_elf(data[:cut])


@pytest.mark.parametrize("name", BOARDS)
def test_flash_slot_grid_and_controller_in_the_generated_files(name):
    """The slot grid tiles the flash with whole erase units (at most 32 slots of at least flash/32 bytes); the
    controller's facts and the grid reach board_config.h; the linker script copies .ramfunc to SRAM and puts
    the slots after the image."""
    board = get_board(name)
    slots = flash_slots(board)
    assert 1 <= len(slots) <= MAX_SLOTS
    assert slots[0].base == board.flash.base and slots[-1].end == board.flash.end
    assert all(a.end == b.base for a, b in zip(slots, slots[1:]))
    assert all(sum(u[1] for u in s.units) == s.size >= board.flash.size // MAX_SLOTS for s in slots)
    units = [(g.base + i * g.bytes, g.bytes) for g in board.erase_units for i in range(g.count)]
    assert [(u[0], u[1]) for s in slots for u in s.units] == units
    ctl = board.family.flash_ctl
    h = board_config_header(board)
    assert f"#define BOARD_FLASHCTL_STYLE_{ctl.style.upper().replace('-', '_')} 1" in h
    assert f"#define BOARD_FLASHCTL_KEYR 0x{ctl.base + ctl.keyr:08X}u" in h
    assert f"#define BOARD_FLASH_PROGRAM_BYTES {ctl.program_bytes}u" in h and f"#define BOARD_FLASH_NSLOTS {len(slots)}u" in h
    assert f"#define BOARD_FLASH_ENDURANCE {ctl.endurance}u" in h and ctl.endurance == 10000
    ld = linker_script(board, 8192)
    assert "*(.ramfunc .ramfunc.*)" in ld and "__flash_slots_start = " in ld
    assert usable_slots(board, slots[3].base - 1) == slots[3:]


@needs_gcc
@pytest.mark.parametrize("name", BOARDS)
def test_built_image_places_slots_after_it_and_flash_routines_in_sram(images, name):
    board = get_board(name)
    elf = parse_elf(images[name].path)
    end, start = elf.symbols["__flash_image_end"], elf.symbols["__flash_slots_start"]
    assert end == board.flash.base + images[name].flash_bytes
    assert start == usable_slots(board, end)[0].base and start - end < max(s.size for s in flash_slots(board))
    for routine in ("fl_program", "fl_erase", "fl_wait"):  # run from SRAM while the flash is busy
        found = [a for s, a in elf.symbols.items() if s == routine or s.startswith(routine + ".")]  # (clones)
        assert found and all(board.sram.contains(a & ~1) for a in found), routine
    assert not board.sram.contains(elf.symbols["hal_flash_program"] & ~1)


@needs_gcc
def test_cached_rebuild_is_instant(images):
    name = BOARDS[0]
    again = build_firmware(name)
    assert again.cached and again.build_id == images[name].build_id and again.path == images[name].path


# ------------------------------------------------------------------ on the virtual board

def _vboard():
    return pytest.importorskip("measure_agent.vboard")


def _open_link(vb_mod, board, image):
    from measure_agent.serial_link import BoardLink, open_serial

    try:
        vb = vb_mod.VirtualBoard(board, str(image.path), strict=STRICT)
    except TypeError:
        vb = vb_mod.VirtualBoard(board, str(image.path))
    bridge = vb_mod.PtyBridge(vb)
    port = open_serial(bridge.path)
    return bridge, port, BoardLink(port, timeout=10.0)


@needs_gcc
@pytest.mark.parametrize("name", ["NUCLEO-G071RB", "NUCLEO-L4R5ZI"])
def test_stub_firmware_on_virtual_board(name):
    vb_mod = _vboard()
    board = get_board(name)
    image = build_firmware(board, FirmwareSettings.for_board(board, opt_level="-Os"), runtime="stub")
    bridge, port, link = _open_link(vb_mod, board, image)
    try:
        h = link.hello()
        assert (h.target, h.core, h.runtime, h.opt_level) == (name, board.core, "stub", "-Os")
        assert h.default_clock_hz == board.default_clock_hz and h.model_ram_bytes == image.model_ram_bytes
        assert h.build_id == image.build_id and h.cycle_counter in ("dwt", "systick")
        plan = b"STUB" + struct.pack("<5I", 4, 8, 64, 20, 0)
        link.upload_plan(plan)
        link.set_input(0, bytes(range(8)))
        r = link.run(3)
        assert len(r.layer_cycles) == 4 and all(c > 0 for c in r.layer_cycles)
        assert r.layer_cycles == sorted(r.layer_cycles)  # layer l busy-loops (l+1) * work
        assert link.read_output(0) == bytes((i % 8 + 4) for i in range(64))
        link.write_raw(b"\x00\xa5\x5a\x01\x02garbage" + bytes(range(200)))
        assert link.echo(b"after garbage") == b"after garbage"
    finally:
        port.close()
        bridge.close()
    assert bridge.error is None


@needs_gcc
@pytest.mark.parametrize("name", ["NUCLEO-L4R5ZI", "NUCLEO-F767ZI", "NUCLEO-L552ZE-Q"])
def test_real_model_on_virtual_board(kws_model, name):
    vb_mod = _vboard()
    from costmodel.tflite import read_model
    from measure_agent.plan import compile_plan
    from measure_agent.plan.host import run_on_host

    if resolve_runtime("auto") != "nn":
        pytest.skip("firmware/runtime/executor.c not present")
    board = get_board(name)
    image = build_firmware(board)
    plan = compile_plan(read_model(kws_model))
    x = np.random.default_rng(1).integers(-128, 128, size=plan.inputs[0].shape, dtype=np.int8)
    bridge, port, link = _open_link(vb_mod, board, image)
    try:
        h = link.hello()
        assert h.runtime == "nn" and h.runtime_variant == "simd" and h.float_abi == "hard"
        info = link.upload_plan(plan.blob)
        assert info.num_layers == len(plan.layers)
        link.set_input(0, x.tobytes())
        r = link.run(2)
        out = link.read_output(0)
    finally:
        port.close()
        bridge.close()
    assert len(r.layer_cycles) == len(plan.layers) and all(c > 0 for c in r.layer_cycles)
    latency_ms = r.total / board.default_clock_hz * 1e3
    # MLPerf Tiny TFLM reference on NUCLEO-L4R5ZI: 181.9 ms at 120 MHz; the SIMD kernels run it in 19.4 ms on the
    # 216 MHz NUCLEO-F767ZI (a sanity range for the timer, not a speed goal)
    assert 10 < latency_ms < 1000
    assert out == run_on_host(plan, [x], "simd")[0].tobytes()
