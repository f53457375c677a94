"""Putting a firmware image on a real board: a :class:`Flasher` per board, an external command or pyOCD.

``bench.toml`` says how a serial board is flashed: ``flash_command`` (st-flash, OpenOCD, any program; run
without a shell, ``{elf}`` / ``{bin}`` replaced by the image's paths) or ``flash = { tool = "pyocd", ... }``
(pyOCD's Python API: the probe by its serial number, the pyOCD target type, the SWD clock). Every failure is a
:class:`FlashError` whose message is one line naming the board (and the probe); the backend puts the board
offline with it.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

#: the SWD clock pyOCD uses unless bench.toml says otherwise (Hz); ST-LINK/V2-1 and V3 both run it
DEFAULT_SWD_HZ = 4_000_000
#: an external flash command taking longer than this is stopped (seconds)
COMMAND_TIMEOUT_S = 120.0
#: the implementer and part number fields of the SCB CPUID register (Armv7-M ARM B3.2.3): the core, not its revision
CPUID_CORE_MASK = 0xFF00FFF0
CPUID_ADDRESS = 0xE000ED00


class FlashError(Exception):
    """The image could not be put on the board; the message is one line naming the board."""


class Flasher(ABC):
    """Puts a firmware image (``image.elf``, its ``.bin`` beside it) on one board and restarts it."""

    def __init__(self, board_id: str):
        self.board_id = board_id

    @abstractmethod
    def flash(self, image) -> None:
        """Program ``image`` and let the board run it; raises :class:`FlashError`."""

    def _fail(self, what: str) -> FlashError:
        return FlashError(f"flashing {self.board_id} failed: {what}")


def binary_of(elf: Path) -> Path:
    """The raw binary beside the ELF (made with objcopy on first use)."""
    binary = elf.with_suffix(".bin")
    if not binary.exists():
        subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)], check=True)
    return binary


class CommandFlasher(Flasher):
    """An external program (``st-flash``, ``openocd``, ...): ``{elf}`` and ``{bin}`` in its arguments."""

    def __init__(self, board_id: str, argv: tuple[str, ...], timeout_s: float = COMMAND_TIMEOUT_S):
        super().__init__(board_id)
        self.argv = tuple(argv)
        self.timeout_s = timeout_s

    def flash(self, image) -> None:
        elf = Path(image.elf)
        binary = binary_of(elf) if any("{bin}" in a for a in self.argv) else elf.with_suffix(".bin")
        argv = [a.replace("{elf}", str(elf)).replace("{bin}", str(binary)) for a in self.argv]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise self._fail(f"{argv[0]} did not finish in {self.timeout_s:g} s") from None
        except OSError as exc:
            raise self._fail(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            said = " ".join((done.stderr.strip() or done.stdout.strip()).split())[:300]
            raise self._fail(f"{argv[0]} exited {done.returncode}" + (f": {said}" if said else ""))


@dataclass(frozen=True)
class PyOcdSettings:
    """``flash = { tool = "pyocd", probe = "...", target = "...", frequency = ... }`` of one board."""

    target: str                   # pyOCD target type (built-in or from an installed CMSIS pack)
    probe: str = ""               # the probe's serial number (pyOCD's unique id); "" when one probe is attached
    frequency: int = DEFAULT_SWD_HZ
    cpuid: int = 0                # the core the catalogue says the board has (0: not checked)


class PyOcdFlasher(Flasher):
    """pyOCD's Python API: choose the probe, open a session on the target, program the ELF, verify, reset and run.

    ``api`` is the pyOCD surface used (:class:`PyOcdApi`); tests give another one.
    """

    def __init__(self, board_id: str, settings: PyOcdSettings, api: PyOcdApi | None = None):
        super().__init__(board_id)
        self.settings = settings
        self.api = api or PyOcdApi()

    def _fail(self, what: str, serial: str = "") -> FlashError:
        serial = serial or self.settings.probe
        probe = f" (probe {serial})" if serial else ""
        return FlashError(f"flashing {self.board_id}{probe} with pyOCD failed: {what}")

    def _probes(self, unique_id: str | None) -> list:
        try:
            return self.api.probes(unique_id)
        except Exception as exc:  # noqa: BLE001 (a USB back end's error, whatever its type)
            raise self._fail(f"cannot list debug probes: {_one_line(exc)}") from None

    def choose_probe(self):
        """The one attached probe the settings name; FlashError naming the serials found otherwise."""
        wanted = self.settings.probe
        found = self._probes(wanted or None)
        if len(found) == 1:
            return found[0]
        if not found:
            others = [] if not wanted else [p.unique_id for p in self._probes(None)]
            seen = f"; attached: {', '.join(others)}" if others else "; none is attached"
            raise self._fail(f"no debug probe with serial {wanted}{seen}" if wanted else "no debug probe is attached")
        serials = ", ".join(p.unique_id for p in found)
        if wanted:
            raise self._fail(f"serial {wanted} matches several probes ({serials}): give the whole serial")
        raise self._fail(f"several probes are attached ({serials}) and the board names none: set flash.probe")

    def session_options(self) -> dict:
        """pyOCD session options: the target type, the SWD clock, no progress bar (on the agent's stdout)."""
        return {"target_override": self.settings.target, "frequency": self.settings.frequency,
                "hide_programming_progress": True}

    def flash(self, image) -> None:
        from pyocd.core import exceptions

        elf = Path(image.elf)
        probe = self.choose_probe()
        serial = probe.unique_id
        options = self.session_options()
        step = "connecting to the target"
        try:
            with self.api.session(probe, options) as session:
                target = session.board.target
                self._check_core(target, serial)
                step = "programming"
                self.api.program(session, elf)
                step = "verifying"
                self._verify(target, elf, serial)
                step = "resetting"
                target.reset()
        except FlashError:
            raise
        except exceptions.TargetSupportError as exc:
            raise self._fail(f"pyOCD does not know target {self.settings.target!r} ({_one_line(exc)}); "
                             f"install its pack: pyocd pack install {self.settings.target}", serial) from None
        except exceptions.FlashFailure as exc:  # (its text has the address and the algorithm's result code)
            raise self._fail(f"{step}: {_one_line(exc)}", serial) from None
        except exceptions.Error as exc:  # probe, transfer, timeout: the probe or the SWD line
            raise self._fail(f"{step}: {type(exc).__name__}: {_one_line(exc)}", serial) from None
        except (OSError, ValueError) as exc:
            raise self._fail(f"{step}: {_one_line(exc)}", serial) from None

    def _check_core(self, target, serial: str) -> None:
        """The core behind the probe is the one the board's catalogue entry has (a probe on another board)."""
        if not self.settings.cpuid:
            return
        cpuid = target.read32(CPUID_ADDRESS)
        if cpuid & CPUID_CORE_MASK != self.settings.cpuid & CPUID_CORE_MASK:
            raise self._fail(f"target mismatch: the probe's core has CPUID 0x{cpuid:08X}, the board's catalogue "
                             f"entry a core with CPUID 0x{self.settings.cpuid:08X}; is the probe on this board?",
                             serial)

    def _verify(self, target, elf: Path, serial: str) -> None:
        """Read every loaded segment back and compare it with the ELF's bytes."""
        from measure_agent.elf import parse_elf

        for segment in parse_elf(elf).segments:
            if not segment.data:
                continue
            back = bytes(target.read_memory_block8(segment.paddr, len(segment.data)))
            if back != segment.data:
                first = next(i for i, (a, b) in enumerate(zip(back, segment.data)) if a != b)
                raise self._fail(f"verify: 0x{segment.paddr + first:08x} reads 0x{back[first]:02x}, the image "
                                 f"has 0x{segment.data[first]:02x}", serial)


class PyOcdApi:
    """The part of pyOCD the flasher calls: list probes, open a session, program a file."""

    def probes(self, unique_id: str | None) -> list:
        from pyocd.core.helpers import ConnectHelper

        return ConnectHelper.get_all_connected_probes(blocking=False, unique_id=unique_id, print_wait_message=False)

    def session(self, probe, options: dict):
        from pyocd.core.session import Session

        return Session(probe, auto_open=True, options=options)

    def program(self, session, elf: Path) -> None:
        from pyocd.flash.file_programmer import FileProgrammer

        FileProgrammer(session).program(str(elf), file_format="elf")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def make_flasher(board_id: str, flash_command: tuple[str, ...], flash: dict | None, cpuid: int = 0) -> Flasher | None:
    """The board's flasher from its configuration (``flash_command`` or the ``flash`` table); None without one."""
    if flash:
        return PyOcdFlasher(board_id, PyOcdSettings(target=flash["target"], probe=flash.get("probe") or "",
                                                    frequency=flash.get("frequency", DEFAULT_SWD_HZ), cpuid=cpuid))
    if flash_command:
        return CommandFlasher(board_id, flash_command)
    return None
