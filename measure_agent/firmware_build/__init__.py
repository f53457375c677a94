"""Building what runs the models: the measurement firmware (arm-none-eabi-gcc) and the host shell (gcc).

=================  =================================================================================
``flags``          the one table of compiler and linker flags
``board_config``   ``board_config.h`` from the catalogue board and its family
``linker``         the linker script (flash, SRAM, stack, model RAM region)
``sources``        the firmware source tree and the executor (nn runtime or stub)
``toolchain``      compiler version, parallel compiles, :class:`FirmwareBuildError`
``cache``          the one cache root (``$MCU_NAS_CACHE`` or ``~/.cache/mcu-nas``), atomic installs
``firmware``       :func:`build_firmware`, :func:`build_matrix`, :class:`FirmwareImage`
``host``           :func:`build_host_shell`
=================  =================================================================================

The ELF reader (sizes of a build, loading on the virtual board) is :mod:`measure_agent.elf`.
"""

from .cache import cache_dir
from .firmware import FirmwareImage, build_firmware, build_matrix, format_build_report
from .host import build_host_shell
from .sources import resolve_runtime
from .toolchain import FirmwareBuildError

__all__ = [
    "build_firmware",
    "build_matrix",
    "build_host_shell",
    "FirmwareImage",
    "FirmwareBuildError",
    "format_build_report",
    "cache_dir",
    "resolve_runtime",
]
