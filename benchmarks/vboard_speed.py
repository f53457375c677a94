"""Virtual board speed: simulated MIPS with the cycle model on vs. bare Unicorn (no hooks).

Kernel: an int8 dot product (C, arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb) called in a loop,
a few million instructions, running from flash on NUCLEO-L496ZG (ART accelerator, 4 wait states).

    .venv/bin/python benchmarks/vboard_speed.py [--board NUCLEO-L496ZG] [--reps 400] [--elf FILE --input FILE]

With --elf FILE [--input FILE] it runs that ELF with raw UART input over the in-process API
(measure_agent.vboard.run_elf_mips) and reports its MIPS instead. With --kws it builds the project
firmware for the board (measure_agent.firmware_build), uploads the MLPerf Tiny KWS plan
(../shared/models/kws_ref_model.tflite) over the real protocol through the PtyBridge, and times one
inference with and without the cycle-model hooks.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unicorn import UC_ARCH_ARM, UC_MODE_THUMB, UC_PROT_ALL, Uc  # noqa: E402

from measure_agent.firmware_build import cache_dir  # noqa: E402
from unicorn import arm_const as A  # noqa: E402

from costmodel.boards import get_board  # noqa: E402
from measure_agent.vboard import StopReason, VirtualBoard, run_elf_mips  # noqa: E402

KERNEL_C = r"""
#include <stdint.h>
#define N 1024
int8_t a[N], b[N];
volatile int32_t sink;

__attribute__((noinline)) int32_t dot(const int8_t *x, const int8_t *y, int n) {
    int32_t acc = 0;
    for (int i = 0; i < n; i++) acc += (int32_t)x[i] * (int32_t)y[i];
    return acc;
}

void start(void) {
    for (int i = 0; i < N; i++) { a[i] = (int8_t)(i * 7); b[i] = (int8_t)(i * 13 + 1); }
    for (int r = 0; r < REPS; r++) sink = dot(a, b, N);
    __asm__ volatile ("bkpt #0");
    for (;;) ;
}

extern uint32_t _estack;
__attribute__((section(".vectors"), used)) const void *vectors[2] = { &_estack, (void *)start };
"""

LDS = """
MEMORY {{ FLASH (rx) : ORIGIN = 0x{fb:08x}, LENGTH = {fs}
          RAM (rwx) : ORIGIN = 0x{rb:08x}, LENGTH = {rs} }}
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {{
  .vectors : {{ KEEP(*(.vectors)) }} > FLASH
  .text : {{ *(.text*) *(.rodata*) }} > FLASH
  .bss (NOLOAD) : {{ *(.bss*) *(COMMON) *(.data*) }} > RAM
}}
"""


def build_kernel(board, reps: int) -> bytes:
    lds = LDS.format(fb=board.flash.base, fs=board.flash.size, rb=board.sram.base, rs=board.sram.size)
    key = hashlib.sha256((KERNEL_C + lds + str(reps)).encode()).hexdigest()[:16]
    cache = cache_dir("test-programs") / "vboard-bench"
    cache.mkdir(parents=True, exist_ok=True)
    elf = cache / f"dot_{key}.elf"
    if not elf.exists():
        with tempfile.TemporaryDirectory() as d:
            Path(d, "k.c").write_text(KERNEL_C)
            Path(d, "k.ld").write_text(lds)
            subprocess.run(["arm-none-eabi-gcc", "-O2", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft",
                            f"-DREPS={reps}", "-nostdlib", "-nostartfiles", "-ffreestanding", "-T", "k.ld",
                            "k.c", "-o", str(elf)], cwd=d, check=True)
    return elf.read_bytes()


def bare_unicorn_seconds(board, vb_template: VirtualBoard) -> float:
    """Same memory contents, no hooks at all: plain Unicorn until the BKPT."""
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
    uc.ctl_set_cpu_model(A.UC_CPU_ARM_CORTEX_M4)
    for base, size, buf in vb_template._buffers:
        uc.mem_map(base, size, UC_PROT_ALL)
        uc.mem_write(base, bytes(buf))
    sp, pc = struct.unpack("<II", bytes(vb_template._buffers[0][2][:8]))
    uc.reg_write(A.UC_ARM_REG_SP, sp)
    # find the bkpt: stop there
    flash = bytes(vb_template._buffers[0][2])
    until = board.flash.base + flash.index(b"\x00\xbe")
    t0 = time.perf_counter()
    uc.emu_start(pc | 1, until)
    return time.perf_counter() - t0


def kws(board, strict: bool) -> None:
    import numpy as np
    from unicorn.unicorn_py3.unicorn import uclib

    from costmodel.tflite import read_model
    from measure_agent.firmware_build import build_firmware
    from measure_agent.plan import compile_plan
    from measure_agent.serial_link import BoardLink, open_serial
    from measure_agent.settings import FirmwareSettings
    from measure_agent.vboard import PtyBridge

    model = ROOT.parent / "shared" / "models" / "kws_ref_model.tflite"
    settings = FirmwareSettings.for_board(board, opt_level="-Os")
    plan = compile_plan(read_model(model), settings.variant)
    x = np.random.default_rng(1).integers(-128, 128, size=plan.inputs[0].shape, dtype=np.int8)
    image = build_firmware(board, settings)
    best: dict[bool, float] = {}
    n = cycles = None
    for hooks in (True, False, True, False):
        vb = VirtualBoard(board, str(image.path), strict=strict)
        bridge = PtyBridge(vb)
        port = open_serial(bridge.path)
        try:
            link = BoardLink(port, timeout=30.0)
            link.hello()
            link.upload_plan(plan.blob)
            link.set_input(0, x.tobytes())
            if not hooks:
                for h in vb._native_hooks:
                    uclib.uc_hook_del(vb.uc._uch, h)
            i0 = vb.instructions
            t0 = time.perf_counter()
            r = link.run(1)
            dt = time.perf_counter() - t0
            if hooks:
                n, cycles = vb.instructions - i0, r.total
        finally:
            port.close()
            bridge.close()
        best[hooks] = min(best.get(hooks, dt), dt)
    print(f"KWS on {board.name} (strict={strict}): {n} instructions, {cycles} cycles "
          f"({cycles / board.default_clock_hz * 1e3:.1f} ms at {board.default_clock_hz / 1e6:.0f} MHz)")
    print(f"cycle model on : {best[True]:.3f} s {n / best[True] / 1e6:8.1f} MIPS")
    print(f"no hooks       : {best[False]:.3f} s {n / best[False] / 1e6:8.1f} MIPS   ratio {best[False] / best[True]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--board", default="NUCLEO-L496ZG")
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--elf")
    ap.add_argument("--input")
    ap.add_argument("--kws", action="store_true")
    ap.add_argument("--strict", action="store_true", help="with --kws: strict memory checks")
    args = ap.parse_args()
    board = get_board(args.board)
    if args.kws:
        kws(board, args.strict)
        return
    if args.elf:
        data = Path(args.input).read_bytes() if args.input else b""
        r = run_elf_mips(board, args.elf, data)
        print(f"{args.elf} on {board.name}: {r['instructions']} instructions, {r['cycles']} cycles, "
              f"{r['wall_s']:.3f} s -> {r['mips']:.1f} MIPS with the cycle model; without hooks "
              f"{r['bare_mips']:.1f} MIPS (ratio {r['ratio']:.2f})")
        return
    elf = build_kernel(board, args.reps)
    times = {}
    for strict in (False, True):
        best = None
        for _ in range(3):
            vb = VirtualBoard(board, elf, strict=strict)
            t0 = time.perf_counter()
            reason = vb.run(timeout_s=600)
            dt = time.perf_counter() - t0
            assert reason is StopReason.BKPT, reason
            best = dt if best is None else min(best, dt)
        times[strict] = (best, vb.instructions, vb.cycles)
    n = times[False][1]
    t_bare = min(bare_unicorn_seconds(board, VirtualBoard(board, elf)) for _ in range(3))
    print(f"board {board.name} ({board.core}, {board.flash_accelerator}, {board.flash_wait_states} WS)")
    print(f"kernel: int8 dot product x{args.reps}, {n} instructions (best of 3 runs each)")
    for strict, label in ((False, "cycle model (strict=False)"), (True, "cycle model (strict=True) ")):
        t, ni, cyc = times[strict]
        print(f"{label}: {t:.3f} s {ni / t / 1e6:8.1f} MIPS  {cyc} cycles (CPI {cyc / ni:.3f})  "
              f"ratio to bare {t_bare / t:.2f}")
    print(f"bare unicorn, no hooks     : {t_bare:.3f} s {n / t_bare / 1e6:8.1f} MIPS")


if __name__ == "__main__":
    main()
