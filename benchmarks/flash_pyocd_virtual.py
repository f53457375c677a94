"""pyOCD flashing the virtual NUCLEO-F767ZI through its debug port (``measure_agent/vboard/swd.py``): per firmware
image the bytes in flash, the wall time of the whole flash (probe discovery, connect under reset, pyOCD's
built-in STM32F767 flash algorithm on the virtual core and FLASH controller, the agent's read-back verify,
reset), the sectors erased, and the build id the chip says in its hello when it boots from its flash alone.

    python benchmarks/flash_pyocd_virtual.py
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costmodel.boards import get_board  # noqa: E402
from measure_agent.firmware_build import build_firmware  # noqa: E402
from measure_agent.flashing import PyOcdFlasher, PyOcdSettings  # noqa: E402
from measure_agent.vboard.swd import VirtualDebugProbe, booted_build_id  # noqa: E402


def main() -> None:
    from pyocd.probe import aggregator

    logging.getLogger("pyocd").setLevel(logging.CRITICAL)  # (the model has no FLASH_OPTCR: a dual-bank warning)
    board = get_board("NUCLEO-F767ZI")
    print(f"{'runtime':8} {'bytes':>7} {'wall s':>7} {'erased':>6}  hello = image")
    for runtime in ("stub", "nn"):
        probe = VirtualDebugProbe(board, serial="VB-F767")

        class Attached:
            get_all_connected_probes = classmethod(lambda cls, unique_id=None, is_explicit=False: [probe])
            get_probe_with_id = classmethod(lambda cls, unique_id, is_explicit=False: None)

        aggregator.PROBE_CLASSES = {"vboard": Attached}
        image = build_firmware(board, runtime=runtime)
        flasher = PyOcdFlasher("f767", PyOcdSettings(target=board.pyocd_target, probe="VB-F767", cpuid=board.cpuid))
        start = time.perf_counter()
        flasher.flash(image)
        wall = time.perf_counter() - start
        said = booted_build_id(probe.flash)
        print(f"{runtime:8} {image.flash_bytes:7d} {wall:7.2f} {probe.flash.erases:6d}  {said == image.build_id}")


if __name__ == "__main__":
    main()
