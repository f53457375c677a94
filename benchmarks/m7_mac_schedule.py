"""Micro-benchmark: the SIMD conv's 2x4 word step (MAC2X4_STEP in firmware/kernels/conv2d_s8_simd.c: 6 LDR +
8 SMLAD = 16 MACs), eight steps as the unrolled loop body, in three instruction orders, on the virtual Cortex-M7
(NUCLEO-F767ZI), M4 (NUCLEO-L4R5ZI) and M33 (NUCLEO-L552ZE-Q); code and data in SRAM (zero wait state).

    .venv/bin/python benchmarks/m7_mac_schedule.py

* kernel order: the kernel's (loads grouped: on the M4/M33 adjacent loads pipeline, TRM 3.3.2);
* M7 order in one step: each LDR next to an SMLAD that does not read it, within the step (a drop-in macro);
* M7 order across steps: software-pipelined, the next step's first weight and column word loaded during this
  step's last multiplies (the last step reads one step past the data).

The vboard's M7 pairing rule (measure_agent/vboard/README.md): two adjacent instructions issue together unless
both access memory, both multiply or the second reads the first's result; a load's result read by the next
instruction stalls one cycle. The three orders compute the same products into the same accumulators (checked
here by a symbolic run); registers: r0 the data base, w0 r1, w1 r2, c0 r3, c1 r4, accumulators r5 r8 r9 r10 r11
r12 lr (a13 shares r5 with a00, never adjacent: r6/r7 hold the CYCCNT samples).
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "vboard_asm"))

from asmtool import run_measure  # noqa: E402
from costmodel.boards import get_board  # noqa: E402

A00, A01, A02, A03, A10, A11, A12, A13 = "r5", "r8", "r9", "r10", "r11", "r12", "lr", "r5"
STEPS, MACS = 8, 8 * 16
TARGETS = ("NUCLEO-F767ZI", "NUCLEO-L4R5ZI", "NUCLEO-L552ZE-Q")
SETUP = ("    ldr r0, =0x20001000\n" + "".join(f"    movs r{i}, #0\n" for i in (1, 2, 3, 4, 5))
         + "".join(f"    mov {r}, r5\n" for r in ("r8", "r9", "r10", "r11", "r12", "lr")))


def kernel_step(w: int, c: int) -> str:
    return f"""
    ldr r1, [r0, #{w}]
    ldr r2, [r0, #{w + 4}]
    ldr r3, [r0, #{c}]
    ldr r4, [r0, #{c + 4}]
    smlad {A00}, r1, r3, {A00}
    smlad {A10}, r2, r3, {A10}
    smlad {A01}, r1, r4, {A01}
    smlad {A11}, r2, r4, {A11}
    ldr r3, [r0, #{c + 8}]
    ldr r4, [r0, #{c + 12}]
    smlad {A02}, r1, r3, {A02}
    smlad {A12}, r2, r3, {A12}
    smlad {A03}, r1, r4, {A03}
    smlad {A13}, r2, r4, {A13}
"""


def m7_step(w: int, c: int) -> str:
    return f"""
    ldr r1, [r0, #{w}]
    ldr r3, [r0, #{c}]
    ldr r2, [r0, #{w + 4}]
    smlad {A00}, r1, r3, {A00}
    ldr r4, [r0, #{c + 4}]
    smlad {A10}, r2, r3, {A10}
    smlad {A01}, r1, r4, {A01}
    ldr r3, [r0, #{c + 8}]
    smlad {A11}, r2, r4, {A11}
    ldr r4, [r0, #{c + 12}]
    smlad {A02}, r1, r3, {A02}
    smlad {A12}, r2, r3, {A12}
    smlad {A03}, r1, r4, {A03}
    smlad {A13}, r2, r4, {A13}
"""


def m7_pipelined_step(w: int, c: int, last: bool) -> str:
    """w0 (r1) and c0 (r3) of this step are loaded already; the step loads the next step's."""
    middle = f"""
    smlad {A03}, r1, r4, {A03}
""" if last else f"""
    ldr r3, [r0, #{c + 16}]
    smlad {A03}, r1, r4, {A03}
    ldr r1, [r0, #{w + 8}]
"""
    return f"""
    ldr r2, [r0, #{w + 4}]
    smlad {A00}, r1, r3, {A00}
    ldr r4, [r0, #{c + 4}]
    smlad {A10}, r2, r3, {A10}
    ldr r3, [r0, #{c + 8}]
    smlad {A01}, r1, r4, {A01}
    smlad {A11}, r2, r4, {A11}
    ldr r4, [r0, #{c + 12}]
    smlad {A02}, r1, r3, {A02}
    smlad {A12}, r2, r3, {A12}{middle}
    smlad {A13}, r2, r4, {A13}
"""


def orders() -> dict[str, str]:
    return {
        "kernel order": "".join(kernel_step(8 * i, 16 * i) for i in range(STEPS)),
        "M7 order in one step": "".join(m7_step(8 * i, 16 * i) for i in range(STEPS)),
        "M7 order across steps": "    ldr r1, [r0, #0]\n    ldr r3, [r0, #0]\n"
                                 + "".join(m7_pipelined_step(8 * i, 16 * i, i == STEPS - 1) for i in range(STEPS)),
    }


def products(seq: str, mem: dict[int, int]) -> list[tuple[str, int, int]]:
    """Every (accumulator, operand, operand) SMLAD of ``seq`` (LDR/SMLAD only), the loads from ``mem``."""
    regs: dict[str, int] = {}
    out = []
    for line in seq.strip().splitlines():
        if m := re.match(r"\s*ldr (\w+), \[r0, #(\d+)\]", line):
            regs[m.group(1)] = mem[int(m.group(2))]
        elif m := re.match(r"\s*smlad (\w+), (\w+), (\w+), (\w+)", line):
            out.append((m.group(1), regs.get(m.group(2), 0), regs.get(m.group(3), 0)))
    return sorted(out)


def main() -> int:
    seqs = orders()
    mem = {o: random.Random(0).getrandbits(32) ^ o for o in range(0, 1024, 4)}
    want = products(seqs["kernel order"], mem)
    assert all(products(s, mem) == want for s in seqs.values()), "the orders compute different products"
    print(f"{STEPS} word steps ({MACS} MACs): cycles (cycles/MAC)\n")
    print("| board | core | " + " | ".join(seqs) + " |")
    print("|---|---|" + "---:|" * len(seqs))
    for target in TARGETS:
        board = get_board(target)
        empty, _ = run_measure(board, "", setup=SETUP)
        cells = []
        for seq in seqs.values():
            cycles = run_measure(board, seq, setup=SETUP)[0] - empty
            cells.append(f"{cycles} ({cycles / MACS:.3f})")
        print(f"| {target} | {board.core} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
