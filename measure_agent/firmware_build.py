"""Build the measurement firmware (and the host build of its shell).

``build_firmware(board, variant, float_abi, opt)`` compiles the shell (``firmware/shell``), the board
layer (``firmware/board``) and the model runtime (every ``.c`` under ``firmware/runtime`` and
``firmware/kernels``) with arm-none-eabi-gcc into one ELF per target x runtime variant x float ABI x
optimisation level. The linker script and ``board_config.h`` are generated from the board catalogue.
Builds are cached by a content hash of sources, flags, board facts and compiler version under
``$MCU_NAS_CACHE/firmware`` (default ``~/.cache/mcu-nas/firmware``).

``build_host_shell()`` builds the same protocol code for the host (UART on stdin/stdout) for fast
end-to-end protocol tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from costmodel.boards import Board, get_board

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
SHELL_DIR = FIRMWARE_DIR / "shell"
BOARD_DIR = FIRMWARE_DIR / "board"
RUNTIME_DIR = FIRMWARE_DIR / "runtime"
KERNELS_DIR = FIRMWARE_DIR / "kernels"

BUILD_FORMAT = 1          # bump when the build recipe changes in a way the hash would not see
UART_BAUD = 115200
VARIANTS = ("reference", "simd")
FLOAT_ABIS = ("hard", "soft")
OPT_LEVELS = ("-Os", "-O2", "-O3")
# Same arithmetic semantics as the runtime's host build (measure_agent/plan/host.py), so the board
# computes bit for bit what the host checks: no FMA contraction, IEEE floats, wrapping signed ints.
RUNTIME_SEMANTICS = ("-ffp-contract=off", "-fno-fast-math", "-fwrapv")

CPU_FLAGS = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus"],
    "cortex-m3": ["-mcpu=cortex-m3"],
    "cortex-m4": ["-mcpu=cortex-m4"],
    "cortex-m7": ["-mcpu=cortex-m7"],
    "cortex-m33": ["-mcpu=cortex-m33"],
}
FPU_FLAGS = {"cortex-m4": "fpv4-sp-d16", "cortex-m7": "fpv5-d16", "cortex-m33": "fpv5-sp-d16"}

# Per STM32 family: FLASH ACR address, LATENCY field mask, accelerator enable bits per catalogue
# `flash_accelerator`, and extra cache controllers. From the ST reference manuals; UNTESTED ON HARDWARE.
FAMILIES: dict[str, dict] = {
    # RM0008 3.3.3 / 3.3.3 FLASH_ACR @0x4002 2000: LATENCY[2:0], HLFCYA bit 3, PRFTBE bit 4 (on at reset)
    "STM32F1": {"acr": 0x40022000, "latency_mask": 0x7, "accel": {"prefetch": 1 << 4}},
    # RM0386 3.8.1 FLASH_ACR @0x4002 3C00: LATENCY[3:0], PRFTEN 8, ICEN 9, DCEN 10
    "STM32F4": {"acr": 0x40023C00, "latency_mask": 0xF, "accel": {"art": (1 << 8) | (1 << 9) | (1 << 10)}},
    # RM0410 3.7.1 FLASH_ACR @0x4002 3C00: LATENCY[3:0], PRFTEN 8, ARTEN 9 (ART only on the ITCM path;
    # the firmware runs from AXIM 0x0800 0000, so the Cortex-M7 L1 caches are the accelerator)
    "STM32F7": {"acr": 0x40023C00, "latency_mask": 0xF, "accel": {"cache": 0}},
    # RM0444 3.7.1 FLASH_ACR @0x4002 2000: LATENCY[2:0], PRFTEN 8, ICEN 9
    "STM32G0": {"acr": 0x40022000, "latency_mask": 0x7, "accel": {"prefetch": (1 << 8) | (1 << 9)}},
    # RM0351 / RM0432 3.7.1 FLASH_ACR @0x4002 2000: LATENCY[2:0] / [3:0], PRFTEN 8, ICEN 9, DCEN 10
    "STM32L4": {"acr": 0x40022000, "latency_mask": 0xF, "accel": {"art": (1 << 8) | (1 << 9) | (1 << 10)}},
    # RM0438 6.9.1 FLASH_ACR @0x4002 2000 (non-secure): LATENCY[3:0]; ch. 8 ICACHE_CR @0x4003 0400 EN bit 0
    "STM32L5": {"acr": 0x40022000, "latency_mask": 0xF, "accel": {"cache": 0}, "icache_cr": 0x40030400},
}


def _moder(port: int, pin: int, mode: int = 0b10) -> tuple[int, int, int]:
    return (port + 0x00, 0b11 << (2 * pin), mode << (2 * pin))


def _af(port: int, pin: int, af: int) -> tuple[int, int, int]:
    reg = port + (0x20 if pin < 8 else 0x24)
    shift = 4 * (pin % 8)
    return (reg, 0xF << shift, af << shift)


def _set(addr: int, bits: int) -> tuple[int, int, int]:
    return (addr, bits, bits)


_L4_LPUART1_PG7_PG8 = [
    # RM0351/RM0432/RM0438: RCC @0x4002 1000: APB1ENR1 +0x58 PWREN bit 28; PWR_CR2 @0x4000 7004 IOSV
    # bit 9 (VDDIO2 valid: port G pins PG2..PG15); AHB2ENR +0x4C GPIOGEN bit 6; APB1ENR2 +0x5C
    # LPUART1EN bit 0. LPUART1 clock = PCLK1 (CCIPR LPUART1SEL = 00 at reset). PG7 TX / PG8 RX, AF8.
    _set(0x40021058, 1 << 28),
    _set(0x40007004, 1 << 9),
    _set(0x4002104C, 1 << 6),
    _set(0x4002105C, 1 << 0),
]

# Register writes (address, clear mask, set value) that clock and route each board's debug UART.
# UNTESTED ON HARDWARE: from the ST reference manuals and the Nucleo/Discovery user manuals.
UART_INIT_WRITES: dict[str, list[tuple[int, int, int]]] = {
    "NUCLEO-L496ZG": _L4_LPUART1_PG7_PG8 + [
        _moder(0x48001800, 7), _moder(0x48001800, 8), _af(0x48001800, 7, 8), _af(0x48001800, 8, 8)],
    "NUCLEO-L4R5ZI": _L4_LPUART1_PG7_PG8 + [
        _moder(0x48001800, 7), _moder(0x48001800, 8), _af(0x48001800, 7, 8), _af(0x48001800, 8, 8)],
    # RM0438: GPIOG (non-secure) @0x4202 1800
    "NUCLEO-L552ZE-Q": _L4_LPUART1_PG7_PG8 + [
        _moder(0x42021800, 7), _moder(0x42021800, 8), _af(0x42021800, 7, 8), _af(0x42021800, 8, 8)],
    # RM0386: RCC @0x4002 3800 AHB1ENR +0x30 GPIOBEN bit 1, APB1ENR +0x40 USART3EN bit 18;
    # UM1932: USART3 PB10 TX / PB11 RX, AF7; GPIOB @0x4002 0400
    "DISCO-F469NI": [
        _set(0x40023830, 1 << 1), _set(0x40023840, 1 << 18),
        _moder(0x40020400, 10), _moder(0x40020400, 11), _af(0x40020400, 10, 7), _af(0x40020400, 11, 7)],
    # RM0410: RCC @0x4002 3800 AHB1ENR +0x30 GPIODEN bit 3, APB1ENR +0x40 USART3EN bit 18;
    # UM1974: USART3 PD8 TX / PD9 RX, AF7; GPIOD @0x4002 0C00
    "NUCLEO-F767ZI": [
        _set(0x40023830, 1 << 3), _set(0x40023840, 1 << 18),
        _moder(0x40020C00, 8), _moder(0x40020C00, 9), _af(0x40020C00, 8, 7), _af(0x40020C00, 9, 7)],
    # RM0444: RCC @0x4002 1000 IOPENR +0x34 GPIOAEN bit 0, APBENR1 +0x3C USART2EN bit 17;
    # UM2324: USART2 PA2 TX / PA3 RX, AF1; GPIOA @0x5000 0000
    "NUCLEO-G071RB": [
        _set(0x40021034, 1 << 0), _set(0x4002103C, 1 << 17),
        _moder(0x50000000, 2), _moder(0x50000000, 3), _af(0x50000000, 2, 1), _af(0x50000000, 3, 1)],
    # RM0008: RCC @0x4002 1000 APB2ENR +0x18 IOPAEN bit 2 | AFIOEN bit 0, APB1ENR +0x1C USART2EN bit 17;
    # GPIOA_CRL @0x4001 0800: PA2 = AF push-pull 50 MHz (0xB), PA3 = floating input (0x4)
    "NUCLEO-F103RB": [
        _set(0x40021018, (1 << 2) | (1 << 0)), _set(0x4002101C, 1 << 17),
        (0x40010800, 0xF << 8, 0xB << 8), (0x40010800, 0xF << 12, 0x4 << 12)],
}


class FirmwareBuildError(RuntimeError):
    """The firmware cannot be built (bad combination, missing toolchain, compiler error)."""


@dataclass(frozen=True)
class FirmwareImage:
    path: Path                 # the ELF
    flash_bytes: int           # code + read-only data + .data initialisers
    ram_bytes: int             # .data + .bss + stack (static RAM of the shell/runtime)
    model_ram_bytes: int       # the single model RAM region (plan + arena)
    build_id: str
    board: str = ""
    variant: str = ""
    float_abi: str = ""
    opt: str = ""
    runtime: str = ""          # "nn" (firmware/runtime) or "stub"
    stack_bytes: int = 0
    flash_total: int = 0
    sram_total: int = 0
    sections: dict = field(default_factory=dict, compare=False)
    cached: bool = field(default=False, compare=False)

    @property
    def elf(self) -> Path:
        return self.path

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        d.pop("cached")
        return d


# ---------------------------------------------------------------- helpers

def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("MCU_NAS_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "mcu-nas") / "firmware"


@lru_cache(maxsize=None)
def _compiler_version(cc: str) -> str:
    exe = shutil.which(cc)
    if exe is None:
        raise FirmwareBuildError(f"{cc} not found on PATH (install gcc-arm-none-eabi + libnewlib-arm-none-eabi)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0] if out else cc


def _family(board: Board) -> str:
    fam = board.mcu[:7].upper()
    if fam not in FAMILIES:
        raise FirmwareBuildError(f"{board.name}: no flash/clock data for MCU family {fam} ({board.mcu})")
    return fam


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.upper())


def uart_brr(board: Board, baud: int = UART_BAUD) -> int:
    """Baud divisor at the reset clock: USART f/baud (16x oversampling), LPUART 256*f/baud."""
    if board.uart.name.upper().startswith("LPUART"):
        return (256 * board.reset_clock_hz + baud // 2) // baud
    return (board.reset_clock_hz + baud // 2) // baud


def stack_bytes_for(board: Board) -> int:
    return 8192 if board.sram.size >= 64 * 1024 else 3072


def board_config_header(board: Board, *, baud: int = UART_BAUD) -> str:
    """The generated ``board_config.h``: catalogue facts + per-family register data."""
    fam = _family(board)
    fdata = FAMILIES[fam]
    writes = UART_INIT_WRITES.get(board.name)
    if writes is None:
        raise FirmwareBuildError(f"{board.name}: no UART pin/clock data (add it to UART_INIT_WRITES)")
    core = {"cortex-m0plus": "M0PLUS", "cortex-m3": "M3", "cortex-m4": "M4", "cortex-m7": "M7",
            "cortex-m33": "M33"}[board.core]
    accel_bits = fdata["accel"].get(board.flash_accelerator, 0)
    lines = [
        f"/* Generated by measure_agent/firmware_build.py from costmodel/data/boards.toml: {board.name}. */",
        "#ifndef BOARD_CONFIG_H", "#define BOARD_CONFIG_H",
        f'#define BOARD_NAME "{board.name}"',
        f'#define BOARD_MCU "{board.mcu}"',
        f'#define BOARD_CORE "{board.core}"',
        f"#define BOARD_ID_{_ident(board.name)} 1",
        f"#define BOARD_FAMILY_{fam} 1",
        f"#define BOARD_CORE_{core} 1",
        f"#define BOARD_DEFAULT_CLOCK_HZ {board.default_clock_hz}u",
        f"#define BOARD_RESET_CLOCK_HZ {board.reset_clock_hz}u",
        f"#define BOARD_FLASH_BASE 0x{board.flash.base:08X}u",
        f"#define BOARD_FLASH_SIZE {board.flash.size}u",
        f"#define BOARD_SRAM_BASE 0x{board.sram.base:08X}u",
        f"#define BOARD_SRAM_SIZE {board.sram.size}u",
        f"#define BOARD_FLASH_WAIT_STATES {board.flash_wait_states}u",
        f"#define BOARD_FLASH_ACCELERATOR_{board.flash_accelerator.upper()} 1",
        f"#define BOARD_ICACHE_BYTES {board.icache_bytes}",
        f"#define BOARD_DCACHE_BYTES {board.dcache_bytes}",
        f"#define BOARD_FLASH_ACR 0x{fdata['acr']:08X}u",
        f"#define BOARD_FLASH_ACR_LATENCY_MASK 0x{fdata['latency_mask']:X}u",
        f"#define BOARD_FLASH_ACR_ACCEL_BITS 0x{accel_bits:X}u",
    ]
    if "icache_cr" in fdata and board.icache_bytes:
        lines.append(f"#define BOARD_ICACHE_CR 0x{fdata['icache_cr']:08X}u")
    lines += [
        f"#define BOARD_UART_BASE 0x{board.uart.base:08X}u",
        f'#define BOARD_UART_NAME "{board.uart.name}"',
        f"#define BOARD_UART_KIND_{'V1' if board.uart.kind == 'stm32-usart-v1' else 'V2'} 1",
        f"#define BOARD_UART_BAUD {baud}u",
        f"#define BOARD_UART_BRR {uart_brr(board, baud)}u",
        "/* UART clock/pin register writes {address, clear mask, set value}: UNTESTED ON HARDWARE */",
        "#define BOARD_INIT_WRITES { \\",
    ]
    lines += [f"    {{0x{a:08X}u, 0x{m:08X}u, 0x{v:08X}u}}, \\" for a, m, v in writes]
    lines += ["}", "#endif", ""]
    return "\n".join(lines)


def linker_script(board: Board, stack_bytes: int) -> str:
    """GNU ld script: code in flash, .data/.bss at the bottom of SRAM, stack at the top, and
    everything in between is the model RAM region (``__model_ram_start`` .. ``__model_ram_end``)."""
    return f"""/* Generated by measure_agent/firmware_build.py for {board.name} ({board.mcu}). */
ENTRY(Reset_Handler)

MEMORY
{{
  FLASH (rx)  : ORIGIN = 0x{board.flash.base:08X}, LENGTH = {board.flash.size}
  RAM   (rwx) : ORIGIN = 0x{board.sram.base:08X}, LENGTH = {board.sram.size}
}}

__stack_size = {stack_bytes};
__stack_top = ORIGIN(RAM) + LENGTH(RAM);
__stack_limit = __stack_top - __stack_size;

SECTIONS
{{
  .isr_vector : {{ . = ALIGN(4); KEEP(*(.isr_vector)) . = ALIGN(4); }} > FLASH
  .text : {{
    *(.text .text.*)
    *(.rodata .rodata.*)
    KEEP(*(.init)) KEEP(*(.fini))
    . = ALIGN(4);
  }} > FLASH
  .ARM.extab : {{ *(.ARM.extab* .gnu.linkonce.armextab.*) }} > FLASH
  .ARM.exidx : {{ __exidx_start = .; *(.ARM.exidx* .gnu.linkonce.armexidx.*) __exidx_end = .; }} > FLASH
  .preinit_array : {{ PROVIDE_HIDDEN(__preinit_array_start = .); KEEP(*(.preinit_array*)) PROVIDE_HIDDEN(__preinit_array_end = .); }} > FLASH
  .init_array : {{ PROVIDE_HIDDEN(__init_array_start = .); KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array*)) PROVIDE_HIDDEN(__init_array_end = .); }} > FLASH
  .fini_array : {{ PROVIDE_HIDDEN(__fini_array_start = .); KEEP(*(.fini_array*)) PROVIDE_HIDDEN(__fini_array_end = .); }} > FLASH

  _sidata = LOADADDR(.data);
  .data : {{ . = ALIGN(4); _sdata = .; *(.data .data.*) . = ALIGN(4); _edata = .; }} > RAM AT > FLASH
  .bss (NOLOAD) : {{ . = ALIGN(4); _sbss = .; *(.bss .bss.*) *(COMMON) . = ALIGN(4); _ebss = .; }} > RAM

  . = ALIGN(16);
  __model_ram_start = .;
  __model_ram_end = __stack_limit & ~15;
  end = .; _end = .;

  ASSERT(__model_ram_end >= __model_ram_start + 1024, "no room left for the model RAM region")
  /DISCARD/ : {{ *(.ARM.attributes.discard) }}
}}
"""


def cpu_flags(board: Board, float_abi: str) -> list[str]:
    flags = ["-mthumb", *CPU_FLAGS[board.core]]
    if float_abi == "hard":
        flags += [f"-mfpu={FPU_FLAGS[board.core]}", "-mfloat-abi=hard"]
    else:
        flags += ["-mfloat-abi=soft"]
    return flags


def resolve_runtime(runtime: str = "auto") -> str:
    if runtime == "auto":
        return "nn" if (RUNTIME_DIR / "executor.c").exists() else "stub"
    if runtime not in ("nn", "stub"):
        raise FirmwareBuildError(f"runtime must be auto, nn or stub, not {runtime!r}")
    if runtime == "nn" and not (RUNTIME_DIR / "executor.c").exists():
        raise FirmwareBuildError("runtime 'nn' requested but firmware/runtime/executor.c does not exist")
    return runtime


def _runtime_sources(runtime: str) -> tuple[list[Path], list[Path], list[str]]:
    """(sources, include dirs, defines) of the executor."""
    if runtime == "nn":
        srcs = sorted(RUNTIME_DIR.rglob("*.c")) + sorted(KERNELS_DIR.rglob("*.c"))
        return srcs, [RUNTIME_DIR, KERNELS_DIR], ['-DFW_RUNTIME="nn"']
    # the stub implements the runtime's own interface header, firmware/runtime/executor.h
    return [SHELL_DIR / "stub" / "stub_executor.c"], [RUNTIME_DIR], [
        '-DFW_RUNTIME="stub"', "-DSHELL_STUB_EXECUTOR=1"]


def _hash_files(h, paths: list[Path]) -> None:
    for p in sorted(set(paths)):
        h.update(str(p.relative_to(FIRMWARE_DIR)).encode() + b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")


def _headers(dirs: list[Path]) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        if d.exists():
            out += [p for p in d.rglob("*.h")]
    return out


def _compile_all(cc: str, sources: list[Path], flags: list[str], objdir: Path, jobs: int | None) -> list[Path]:
    objs = []
    cmds = []
    for i, src in enumerate(sources):
        obj = objdir / f"{i:03d}_{src.stem}.o"
        objs.append(obj)
        cmds.append([cc, *flags, "-c", str(src), "-o", str(obj)])

    def run(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        return cmd, r

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        for cmd, r in pool.map(run, cmds):
            if r.returncode != 0:
                raise FirmwareBuildError(f"compile failed: {' '.join(cmd)}\n{r.stderr.strip()}")
    return objs


def _install(tmp: Path, final: Path) -> Path:
    try:
        os.replace(tmp, final)
    except OSError:  # another process built the same key first
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---------------------------------------------------------------- ELF32 reading

SHF_WRITE, SHF_ALLOC = 0x1, 0x2
SHT_NOBITS, SHT_SYMTAB = 8, 2


def read_elf(path: str | os.PathLike) -> tuple[dict[str, tuple[int, int, int, int]], dict[str, int]]:
    """Sections {name: (type, flags, addr, size)} and symbols {name: value} of a little-endian ELF32."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise FirmwareBuildError(f"{path}: not a little-endian ELF32 file")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    raw = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = raw[shstrndx][4]

    def cstr(off: int) -> str:
        return data[off:data.index(b"\0", off)].decode()

    sections = {}
    symbols: dict[str, int] = {}
    for name, typ, flags, addr, off, size, link, _info, _al, entsize in raw:
        sname = cstr(strtab_off + name)
        sections[sname] = (typ, flags, addr, size)
        if typ == SHT_SYMTAB:
            stroff = raw[link][4]
            for k in range(size // (entsize or 16)):
                st_name, st_value = struct.unpack_from("<II", data, off + k * 16)
                if st_name:
                    symbols[cstr(stroff + st_name)] = st_value
    return sections, symbols


def elf_sizes(path: str | os.PathLike, stack_bytes: int) -> dict:
    sections, symbols = read_elf(path)
    flash = sum(s for _n, (t, f, _a, s) in sections.items() if f & SHF_ALLOC and t != SHT_NOBITS)
    static_ram = sum(s for _n, (t, f, _a, s) in sections.items() if f & SHF_ALLOC and f & SHF_WRITE)
    model = symbols.get("__model_ram_end", 0) - symbols.get("__model_ram_start", 0)
    return {
        "flash_bytes": flash,
        "ram_bytes": static_ram + stack_bytes,
        "model_ram_bytes": max(model, 0),
        "sections": {n: s for n, (t, f, _a, s) in sections.items() if f & SHF_ALLOC and s},
    }


# ---------------------------------------------------------------- builds

def build_firmware(board: Board | str, variant: str | None = None, float_abi: str | None = None,
                   opt: str = "-Os", *, runtime: str = "auto", cache_dir: str | os.PathLike | None = None,
                   force: bool = False, jobs: int | None = None, extra_cflags: tuple[str, ...] = ()) -> FirmwareImage:
    """Build (or fetch from the cache) the firmware ELF for one target x variant x float ABI x opt.

    ``variant`` defaults to 'simd' where the core has the DSP extension, else 'reference';
    ``float_abi`` defaults to 'hard' where the core has an FPU, else 'soft'.
    """
    if isinstance(board, str):
        board = get_board(board)
    if isinstance(opt, str) and opt in {o.lstrip("-") for o in OPT_LEVELS}:
        opt = "-" + opt
    variant = variant or ("simd" if board.simd else "reference")
    float_abi = float_abi or ("hard" if board.fpu != "none" else "soft")
    if variant not in VARIANTS:
        raise FirmwareBuildError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if variant not in board.runtime_variants():
        raise FirmwareBuildError(
            f"{board.name}: the simd runtime variant needs the DSP extension (Armv7E-M/Armv8-M Mainline DSP); "
            f"{board.core} has none. Available: {', '.join(board.runtime_variants())}")
    if float_abi not in FLOAT_ABIS:
        raise FirmwareBuildError(f"float_abi must be one of {', '.join(FLOAT_ABIS)}, not {float_abi!r}")
    if float_abi not in board.float_abis():
        raise FirmwareBuildError(f"{board.name}: hard-float needs an FPU; {board.core} on {board.mcu} has none")
    if opt not in OPT_LEVELS:
        raise FirmwareBuildError(f"opt must be one of {', '.join(OPT_LEVELS)}, not {opt!r}")
    runtime = resolve_runtime(runtime)
    cc = "arm-none-eabi-gcc"
    compiler = _compiler_version(cc)

    stack = stack_bytes_for(board)
    header = board_config_header(board)
    ldscript = linker_script(board, stack)
    rt_sources, rt_includes, rt_defines = _runtime_sources(runtime)
    sources = sorted(SHELL_DIR.glob("*.c")) + sorted(BOARD_DIR.glob("*.c")) + rt_sources
    max_layers = 256 if board.sram.size >= 64 * 1024 else 64
    base_flags = [
        *cpu_flags(board, float_abi), opt, "-g", "-std=gnu11", *RUNTIME_SEMANTICS, "-Wall", "-Wextra", "-Wno-unused-parameter",
        "-ffunction-sections", "-fdata-sections", "-fno-common",
        f'-DFW_VARIANT="{variant}"', f'-DFW_FLOAT_ABI="{float_abi}"', f'-DFW_OPT="{opt}"',
        f"-DSHELL_MAX_LAYERS={max_layers}u", *rt_defines, *(["-DNN_SIMD=1"] if variant == "simd" else []),
        *extra_cflags,
    ]
    h = hashlib.sha256()
    h.update(json.dumps({"format": BUILD_FORMAT, "compiler": compiler, "flags": base_flags, "runtime": runtime,
                         "board": {k: v for k, v in dataclasses.asdict(board).items() if k != "sources"}},
                        sort_keys=True, default=str).encode())
    h.update(header.encode())
    h.update(ldscript.encode())
    _hash_files(h, sources + _headers([SHELL_DIR, BOARD_DIR, *rt_includes]))
    key = h.hexdigest()
    build_id = key[:16]
    root = cache_root(cache_dir)
    final = root / f"{board.name}-{variant}-{float_abi}-{opt.lstrip('-')}-{build_id}"
    meta = final / "image.json"
    if meta.exists() and not force:
        d = json.loads(meta.read_text())
        d["path"] = final / "firmware.elf"
        return FirmwareImage(**d, cached=True)

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        gen = tmp / "gen"
        gen.mkdir()
        (gen / "board_config.h").write_text(header)
        (tmp / "link.ld").write_text(ldscript)
        objdir = tmp / "obj"
        objdir.mkdir()
        includes = [f"-I{d}" for d in (gen, SHELL_DIR, BOARD_DIR, *rt_includes)]
        cflags = [*base_flags, f'-DFW_BUILD_ID="{build_id}"', *includes]
        objs = _compile_all(cc, sources, cflags, objdir, jobs)
        elf = tmp / "firmware.elf"
        link = [cc, *cpu_flags(board, float_abi), opt, "--specs=nano.specs", "--specs=nosys.specs", "-nostartfiles",
                f"-T{tmp / 'link.ld'}", "-Wl,--gc-sections", f"-Wl,-Map={tmp / 'firmware.map'}",
                "-Wl,--no-warn-rwx-segments", *map(str, objs), "-lm", "-o", str(elf)]
        r = subprocess.run(link, capture_output=True, text=True)
        if r.returncode != 0:
            raise FirmwareBuildError(f"link failed for {board.name}:\n{r.stderr.strip()}")
        sizes = elf_sizes(elf, stack)
        image = FirmwareImage(
            path=final / "firmware.elf", build_id=build_id, board=board.name, variant=variant,
            float_abi=float_abi, opt=opt, runtime=runtime, stack_bytes=stack,
            flash_total=board.flash.size, sram_total=board.sram.size, **sizes)
        if image.flash_bytes > board.flash.size:
            raise FirmwareBuildError(f"{board.name}: image of {image.flash_bytes} bytes exceeds flash")
        shutil.rmtree(objdir, ignore_errors=True)
        (tmp / "image.json").write_text(json.dumps(image.to_json(), indent=2))
        _install(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return image


def build_matrix(board: Board | str, **kw) -> list[FirmwareImage]:
    """Every variant x float ABI x opt level the board supports."""
    if isinstance(board, str):
        board = get_board(board)
    return [build_firmware(board, v, a, o, **kw)
            for v in board.runtime_variants() for a in board.float_abis() for o in OPT_LEVELS]


def format_build_report(image: FirmwareImage) -> str:
    """Human-readable summary for ``measure-agent build``."""
    def kib(n: int) -> str:
        return f"{n / 1024:.1f} KiB"

    flash_pct = f" ({100 * image.flash_bytes / image.flash_total:.1f} % of {kib(image.flash_total)})" \
        if image.flash_total else ""
    ram_pct = f" ({100 * image.ram_bytes / image.sram_total:.1f} % of {kib(image.sram_total)})" \
        if image.sram_total else ""
    lines = [
        f"firmware  {image.board}  variant={image.variant}  float-abi={image.float_abi}  opt={image.opt}"
        f"  runtime={image.runtime}",
        f"  elf        {image.path}{'  (cached)' if image.cached else ''}",
        f"  build id   {image.build_id}",
        f"  flash      {image.flash_bytes} bytes = {kib(image.flash_bytes)}{flash_pct}",
        f"  ram        {image.ram_bytes} bytes = {kib(image.ram_bytes)}{ram_pct}"
        f" (.data+.bss + {image.stack_bytes} B stack)",
        f"  model ram  {image.model_ram_bytes} bytes = {kib(image.model_ram_bytes)} (plan + arena)",
    ]
    if image.runtime == "stub":
        lines.append("  WARNING: built with the stub executor (firmware/runtime/executor.c missing)")
    return "\n".join(lines)


def build_host_shell(runtime: str = "auto", *, cache_dir: str | os.PathLike | None = None,
                     cc: str = "gcc", force: bool = False) -> Path:
    """Host executable of the shell: the protocol on stdin/stdout (``--timeout-ms``, ``--model-ram``)."""
    runtime = resolve_runtime(runtime)
    compiler = _compiler_version(cc)
    rt_sources, rt_includes, rt_defines = _runtime_sources(runtime)
    sources = sorted(SHELL_DIR.glob("*.c")) + [SHELL_DIR / "host" / "hal_host.c"] + rt_sources
    flags = ["-O2", "-g", "-std=gnu11", *RUNTIME_SEMANTICS, "-Wall", "-Wextra", "-Wno-unused-parameter", *rt_defines,
             '-DFW_VARIANT="reference"', '-DFW_FLOAT_ABI="host"', '-DFW_OPT="-O2"', "-DSHELL_MAX_LAYERS=4096u"]
    h = hashlib.sha256()
    h.update(json.dumps({"format": BUILD_FORMAT, "compiler": compiler, "flags": flags}).encode())
    _hash_files(h, sources + _headers([SHELL_DIR, *rt_includes]))
    key = h.hexdigest()[:16]
    root = cache_root(cache_dir)
    final = root / f"host-shell-{runtime}-{key}"
    exe = final / "shell_host"
    if exe.exists() and not force:
        return exe
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        cmd = [cc, *flags, f'-DFW_BUILD_ID="{key}"', f"-I{SHELL_DIR}", *[f"-I{d}" for d in rt_includes],
               *map(str, sources), "-lm", "-o", str(tmp / "shell_host")]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise FirmwareBuildError(f"host shell build failed:\n{r.stderr.strip()}")
        _install(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return exe


def main(argv: list[str] | None = None) -> int:
    """``python -m measure_agent.firmware_build TARGET [--variant V] [--float-abi A] [--opt O] [--all]``"""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m measure_agent.firmware_build", description=main.__doc__)
    ap.add_argument("target")
    ap.add_argument("--variant", choices=VARIANTS)
    ap.add_argument("--float-abi", choices=FLOAT_ABIS)
    ap.add_argument("--opt", default="-Os")
    ap.add_argument("--runtime", default="auto", choices=("auto", "nn", "stub"))
    ap.add_argument("--all", action="store_true", help="every variant x float ABI x opt level of the target")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        images = (build_matrix(args.target, runtime=args.runtime) if args.all else
                  [build_firmware(args.target, args.variant, args.float_abi, args.opt, runtime=args.runtime)])
    except (FirmwareBuildError, ValueError) as exc:
        print(f"error: {exc}")
        return 1
    for img in images:
        print(json.dumps(img.to_json()) if args.json else format_build_report(img))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
