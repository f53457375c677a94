"""Virtual board: cycle-approximate Cortex-M simulator (Unicorn + a native C cycle model).

Requires the C extension ``measure_agent.vboard._cyclemodel`` (sources in ``native/``, one file per
job: decoder, per-core timing, flash wait states, blocks and hooks, PPB, UART, Python types; README.md
has the map); build it with ``.venv/bin/pip install -e /work/main --no-deps --no-build-isolation -q``.
"""

from .board import MODEL_VERSION, StopReason, VirtualBoard, VirtualBoardFault, run_elf_mips
from measure_agent.elf import ElfError, ElfImage, parse_elf
from .peripherals import FlashMemory
from .pty import PtyBridge

__all__ = [
    "MODEL_VERSION",
    "VirtualBoard",
    "VirtualBoardFault",
    "StopReason",
    "PtyBridge",
    "FlashMemory",
    "run_elf_mips",
    "parse_elf",
    "ElfImage",
    "ElfError",
]
