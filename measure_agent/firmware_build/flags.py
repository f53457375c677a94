"""The one table of compiler and linker flags: firmware (arm-none-eabi-gcc), host shell and host runtime (gcc).

Nothing else in the build defines a flag; ``firmware.py`` and ``host.py`` only add paths (include
directories, the linker script, the map file, sources, outputs) and the build id.
"""

from __future__ import annotations

from costmodel.boards import Board
from measure_agent.settings import FirmwareSettings

FIRMWARE_CC = "arm-none-eabi-gcc"
HOST_CC = "gcc"

# -mcpu per core (it sets -mtune to the same core: GCC schedules for the M7's dual-issue pipeline, the M33's
# and the M4's three stages), and the FPU of the cores that have one (hard float ABI only): the M4 has FPv4-SP,
# the M33 FPv5-SP, the M7 FPv5 with double precision (STM32F76x/F77x/H7) or single precision only (F74x/F75x),
# as the board's `fpu` says
MCPU = {
    "cortex-m0plus": "cortex-m0plus",
    "cortex-m3": "cortex-m3",
    "cortex-m4": "cortex-m4",
    "cortex-m7": "cortex-m7",
    "cortex-m33": "cortex-m33",
}
FPU = {"cortex-m4": "fpv4-sp-d16", "cortex-m7": "fpv5-d16", "cortex-m33": "fpv5-sp-d16"}
FPU_SINGLE_ONLY = {"cortex-m7": "fpv5-sp-d16"}
# the core as a macro of every firmware source (NN_CORE_M7, ...): a kernel can pick an instruction order for one
# core's pipeline (the M7 dual-issues a load with a multiply-accumulate; the M4 and M33 pipeline adjacent loads)
CORE_MACRO = {"cortex-m0plus": "M0PLUS", "cortex-m3": "M3", "cortex-m4": "M4", "cortex-m7": "M7",
              "cortex-m33": "M33"}

# Same arithmetic semantics on the board and on the host (plan/host.py, the host shell), so the board
# computes bit for bit what the host checks: no FMA contraction, IEEE floats, wrapping signed ints.
RUNTIME_SEMANTICS = ("-ffp-contract=off", "-fno-fast-math", "-fwrapv")
DEBUG = ("-g",)
C_STANDARD = "-std=gnu11"
WARNINGS = ("-Wall", "-Wextra", "-Wno-unused-parameter")
SECTIONS = ("-ffunction-sections", "-fdata-sections", "-fno-common")  # with --gc-sections at link time

# the executor the shell links against: the model runtime, or the toy stub (firmware/shell/stub)
RUNTIME_DEFINES = {
    "nn": ('-DFW_RUNTIME="nn"',),
    "stub": ('-DFW_RUNTIME="stub"', "-DSHELL_STUB_EXECUTOR=1"),
    "fc_only": ('-DFW_RUNTIME="fc_only"',),
}

LINK_SPECS = ("--specs=nano.specs", "--specs=nosys.specs", "-nostartfiles")
LINK_LIBS = ("-lm",)

# host shell (firmware/shell on the host, UART on stdin/stdout)
HOST_SHELL_OPT = "-O2"
HOST_SHELL_DEFINES = ('-DFW_VARIANT="reference"', '-DFW_FLOAT_ABI="host"', f'-DFW_OPT="{HOST_SHELL_OPT}"',
                      "-DSHELL_MAX_LAYERS=4096u")

# host runtime: the shared library of measure_agent/plan/host.py
HOST_RUNTIME_FLAGS = ("-O2", "-std=c11", "-fPIC", "-shared", "-Wall", "-Wextra", *RUNTIME_SEMANTICS)


def cpu_flags(core: str, float_abi: str, fpu: str = "") -> list[str]:
    """Instruction set, core and float ABI: for compiling and for linking (multilib selection). ``fpu``: the
    board's FPU (``sp`` / ``dp``; default: the core's widest)."""
    flags = ["-mthumb", f"-mcpu={MCPU[core]}"]
    if float_abi == "hard":
        unit = FPU_SINGLE_ONLY.get(core, FPU[core]) if fpu == "sp" else FPU[core]
        flags += [f"-mfpu={unit}", "-mfloat-abi=hard"]
    else:
        flags += ["-mfloat-abi=soft"]
    return flags


def shell_max_layers(board: Board) -> int:
    """Layer table size of the shell (per-layer cycle counts): smaller on small SRAMs."""
    return 256 if board.sram.size >= 64 * 1024 else 64


def firmware_cflags(board: Board, settings: FirmwareSettings, runtime: str,
                    extra_cflags: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Compiler flags of every firmware source (without the build id and include directories)."""
    return [
        *cpu_flags(board.core, settings.float_abi, board.fpu), settings.opt_level, *DEBUG, C_STANDARD,
        *RUNTIME_SEMANTICS, *WARNINGS, *SECTIONS, f"-DNN_CORE_{CORE_MACRO[board.core]}=1",
        f'-DFW_VARIANT="{settings.variant}"', f'-DFW_FLOAT_ABI="{settings.float_abi}"',
        f'-DFW_OPT="{settings.opt_level}"', f"-DSHELL_MAX_LAYERS={shell_max_layers(board)}u",
        *RUNTIME_DEFINES[runtime], *(["-DNN_SIMD=1"] if settings.variant == "simd" else []),
        *op_set_defines(settings.ops), *extra_cflags,
    ]


def op_set_defines(ops: tuple[str, ...]) -> list[str]:
    """An image of only these plan op kinds (firmware/runtime/ops/op_table.c); none: every op."""
    return ["-DNN_OPS_SELECTED=1", *(f"-DNN_WITH_{kind}=1" for kind in ops)] if ops else []


def firmware_ldflags(board: Board, settings: FirmwareSettings, script: str, mapfile: str) -> list[str]:
    """Linker flags before the objects (``script``: the linker script, ``mapfile``: where the map goes)."""
    return [*cpu_flags(board.core, settings.float_abi, board.fpu), settings.opt_level, *LINK_SPECS, f"-T{script}",
            "-Wl,--gc-sections", f"-Wl,-Map={mapfile}", "-Wl,--no-warn-rwx-segments"]


def host_shell_cflags(runtime: str) -> list[str]:
    """Compiler flags of the host shell (without the build id and include directories)."""
    return [HOST_SHELL_OPT, *DEBUG, C_STANDARD, *RUNTIME_SEMANTICS, *WARNINGS, *RUNTIME_DEFINES[runtime],
            *HOST_SHELL_DEFINES]
