"""The bench doctor (``measure-agent doctor``): per board of a bench, the checks a lab runs before trusting it.

Each board gets the same rows, in order, each with a verdict (``ok``, ``warn``, ``FAIL``, or ``skip`` when a
check it needs failed) and, when not ok, what to do:

``port``      the serial port opens (virtual board: the simulator starts with the agent's firmware)
``hello``     the firmware answers HELLO: protocol version, cycle counter, build id, target
``firmware``  the build id is the one the agent builds for the board's default settings (else: which to flash)
``clock``     real board: cycles counted over timed runs of the tiny model against the host's wall time;
              virtual board: the clock is simulated and the wall-time check does not apply
``model``     a tiny model (``examples/lenet_int8.tflite``) passes the fit check and runs bit-exact against the
              TFLite interpreter (plan in SRAM: the doctor never programs the board's flash slots)
``energy``    the energy monitor answers a start/stop; a tracing monitor (RocketLogger, PPK2, Joulescope, Otii)
              also sees the energy pin's edges of one run of the tiny model, (layers + 1) per run, at the
              layer boundaries the DWT cycle counts predict; without a monitor, energy is the power model (warn)

Nothing is flashed: a board running other firmware is told which image to flash (the agent itself flashes
it with ``flash_command`` or pyOCD (``flash``) before its first measurement).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from measure_agent.backends import Backend, BoardSpec, make_backend

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
CHECKS = ("port", "hello", "firmware", "clock", "model", "energy")
#: the tiny model every board runs (9 layers: conv, pool, fully connected, softmax; 1.6 M cycles on an M4)
TINY_MODEL = Path(__file__).resolve().parents[1] / "examples" / "lenet_int8.tflite"
#: a real board's counted clock may differ this much from the clock latencies are reported at
CLOCK_TOLERANCE = 0.10
#: board time the timed runs of the clock check aim at (seconds): host jitter stays far below the tolerance
CLOCK_WINDOW_S = 0.3
MAX_CLOCK_RUNS = 1000


@dataclass
class Check:
    name: str
    verdict: str
    detail: str
    advice: str = ""


@dataclass
class BoardReport:
    board_id: str
    kind: str
    target: str
    checks: list[Check] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        verdicts = {c.verdict for c in self.checks}
        return FAIL if FAIL in verdicts else WARN if WARN in verdicts else OK

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict:
        return {"board_id": self.board_id, "kind": self.kind, "target": self.target, "verdict": self.verdict,
                "checks": [asdict(c) for c in self.checks]}


def _mhz(hz: float) -> str:
    return f"{hz / 1e6:.3g} MHz"


def clock_check(cycles: float, wall_s: float, clock_hz: int, reset_clock_hz: int,
                tolerance: float = CLOCK_TOLERANCE) -> Check:
    """A real board's clock: ``cycles`` counted by the board in ``wall_s`` seconds of host time, against
    the clock latencies are reported at (``clock_hz``) and the board's reset clock."""
    if wall_s <= 0 or cycles <= 0:
        return Check("clock", FAIL, f"no usable timing ({cycles:.0f} cycles in {wall_s * 1e3:.1f} ms)",
                     "run the doctor again; if it persists the board's cycle counter does not count")
    counted = cycles / wall_s
    where = f"{cycles:,.0f} cycles in {wall_s * 1e3:.1f} ms host time: {_mhz(counted)}"
    if abs(counted / clock_hz - 1) <= tolerance:
        return Check("clock", OK, f"{where}, latencies are reported at {_mhz(clock_hz)} (within "
                                  f"{tolerance:.0%})")
    if reset_clock_hz and abs(counted / reset_clock_hz - 1) <= max(tolerance, 0.25):
        return Check("clock", FAIL, f"{where}, not the {_mhz(clock_hz)} latencies are reported at: the board is "
                                    f"still at its reset clock ({_mhz(reset_clock_hz)})",
                     f"the firmware left the clock tree at reset: cycles still count at the target's wait states, "
                     f"but wall time runs {clock_hz / reset_clock_hz:.0f}x longer and UART and flash timing are "
                     f"not a deployment's; the board runs a firmware older than the clock set-up (its HELLO "
                     f"would say so otherwise): flash the agent's, which sets up the {_mhz(clock_hz)} clock")
    return Check("clock", FAIL, f"{where}, expected {_mhz(clock_hz)} (off by {counted / clock_hz - 1:+.0%})",
                 "the clock set-up differs from the catalogue's: check the board's oscillator (HSE crystal or "
                 "ST-LINK MCO) and PLL settings against costmodel/data/clocks.toml, and that nothing else loads "
                 "the host")


# ------------------------------------------------------------ the checks of one board
class _Doctor:
    def __init__(self, spec: BoardSpec, model: Path):
        self.spec, self.model = spec, model
        self.report = BoardReport(spec.id, spec.kind, spec.target)
        self.backend: Backend | None = None
        self.link = None
        self.hello = None
        self.image = None
        self.image_error = ""
        self._serial = None

    def add(self, name: str, verdict: str, detail: str, advice: str = "") -> bool:
        self.report.checks.append(Check(name, verdict, detail, advice))
        return verdict != FAIL

    def _missing(self, names) -> list[str]:
        done = {c.name for c in self.report.checks}
        return [n for n in names if n not in done]

    def skip(self, names, why: str) -> None:
        for name in names:
            self.add(name, SKIP, f"not run: {why}")

    def run(self) -> BoardReport:
        from measure_agent.settings import FirmwareSettings

        try:
            self.backend = make_backend(self.spec)
            self.settings = FirmwareSettings.for_board(self.backend.board)
            try:
                self.image = self.backend.firmware(self.settings)
            except Exception as exc:  # noqa: BLE001 (a missing toolchain, a failing build: said in its row)
                self.image_error = str(exc) or type(exc).__name__
            try:
                if self._port() and self._hello():
                    self._firmware()
                    self._model_and_clock()
                else:
                    self.skip(self._missing(CHECKS[:-1]), "the hello check failed"
                              if self.report.checks[-1].name == "hello" else "the port did not open")
            except Exception as exc:  # noqa: BLE001 (one board's surprise is that board's FAIL, not the bench's)
                missing = self._missing(CHECKS[:-1]) or ["model"]
                self.add(missing[0], FAIL, f"internal error: {type(exc).__name__}: {exc}",
                         "report it with this output; the other checks of the board were not run")
                self.skip(missing[1:], "the check before it stopped")
            self._energy()
        finally:
            self._close()
        return self.report

    def _close(self) -> None:
        if self._serial is not None:  # a real board's port, opened by the doctor
            try:
                self._serial.close()
            except OSError:
                pass
        if self.backend is not None:  # a virtual board's simulator and pty, the monitor's port
            self.backend.release()

    # -------------------------------------------------------- 1. port
    def _port(self) -> bool:
        from measure_agent.serial_link import BoardLink, BoardLinkError, open_serial

        spec = self.spec
        if spec.kind == "virtual":
            if self.image is None:
                return self.add("port", FAIL, f"the simulator needs the firmware, whose build failed: "
                                              f"{self.image_error}",
                                "fix the firmware build first: `measure-agent build --target "
                                f"{spec.target}` says why (arm-none-eabi-gcc must be on PATH)")
            try:
                self.link = self.backend.link(self.image)  # starts the simulator on a pty, loads the ELF
            except Exception as exc:  # noqa: BLE001
                return self.add("port", FAIL, f"the virtual board did not start: {type(exc).__name__}: {exc}",
                                "run `measure-agent measure examples/lenet_int8.tflite --target "
                                f"{spec.target}` for the full error; the simulator or its firmware is broken")
            return self.add("port", OK, f"simulator started behind a pseudo-terminal (timing model "
                                        f"{self.backend.model_version})")
        reason = self.backend.check_available()
        if reason:
            advice = ("add your user to the port's group (`sudo usermod -aG dialout $USER`, then log in again)"
                      if "permission" in reason else
                      f"plug the board in, or correct port = {spec.port!r} of board {spec.id!r} in bench.toml "
                      f"(`ls /dev/serial/by-id/` names the ST-LINK's port)")
            return self.add("port", FAIL, reason, advice)
        try:
            self._serial = open_serial(spec.port, spec.baud)
        except OSError as exc:  # (serial.SerialException is an OSError)
            return self.add("port", FAIL, f"cannot open {spec.port}: {exc}",
                            "close whatever else holds the port (a terminal, another agent: `fuser "
                            f"{spec.port}`), or unplug and plug the board in")
        self.link = BoardLink(self._serial, timeout=2.0, run_timeout=600.0)
        try:
            self.link.drain(quiet=0.1)
        except (OSError, BoardLinkError):
            pass
        return self.add("port", OK, f"{spec.port} opened at {spec.baud} baud")

    # -------------------------------------------------------- 2. hello
    def _hello(self) -> bool:
        from measure_agent.protocol import PROTOCOL_VERSION
        from measure_agent.serial_link import BoardLinkError

        try:
            hello = self.link.info if self.spec.kind == "virtual" else self.link.hello()
        except (BoardLinkError, OSError) as exc:
            return self.add("hello", FAIL, f"no answer to HELLO: {exc}",
                            f"the board does not run the measurement firmware, or at another baud than "
                            f"{self.spec.baud}: flash {self._elf_hint()} and press reset; a garbled BOOT frame "
                            "means the board's reset clock differs from the catalogue's")
        self.hello = hello
        what = (f"protocol v{hello.protocol_version}, cycle counter {hello.cycle_counter}, build {hello.build_id} "
                f"({hello.target}, {hello.runtime} {hello.runtime_variant} {hello.float_abi}-float "
                f"{hello.opt_level})")
        if hello.protocol_version != PROTOCOL_VERSION:
            return self.add("hello", FAIL, f"{what}: the agent speaks protocol v{PROTOCOL_VERSION}",
                            f"flash the agent's firmware: {self._elf_hint()}")
        if hello.target != self.spec.target:
            return self.add("hello", FAIL, f"{what}: bench.toml says {self.spec.target}",
                            f"correct target of board {self.spec.id!r} in bench.toml, or plug the "
                            f"{self.spec.target} into {self.spec.port}")
        core = self.backend.board.core
        if hello.cycle_counter == "systick" and core != "cortex-m0plus":
            return self.add("hello", WARN, f"{what}: {core} has a DWT cycle counter, the firmware did not "
                                           "enable it", "cycles come from SysTick; check the DWT/DWT_LAR "
                                                        "sequence of the board bring-up")
        return self.add("hello", OK, what)

    def _elf_hint(self) -> str:
        if self.image is None:
            return f"the image of `measure-agent build --target {self.spec.target}`"
        return f"{self.image.elf} (build {self.image.build_id})"

    # -------------------------------------------------------- 3. firmware build id
    def _firmware(self) -> None:
        running = self.hello.build_id
        if self.image is None:
            self.add("firmware", FAIL, f"the board runs build {running}; the agent's build failed: "
                                       f"{self.image_error}",
                     f"fix the firmware build: `measure-agent build --target {self.spec.target}` says why")
            return
        mine = f"build {self.image.build_id} ({self.settings.label()}, runtime {self.image.runtime})"
        if running == self.image.build_id:
            where = "the simulator runs" if self.spec.kind == "virtual" else "the board runs"
            self.add("firmware", OK, f"{where} the agent's {mine}")
        elif self.spec.flash_command:
            self.add("firmware", WARN, f"the board runs build {running}, the agent's is {mine}",
                     f"nothing to do: the agent flashes {self.image.elf} with flash_command "
                     f"({self.spec.flash_command[0]}) before its first measurement")
        elif self.spec.flash:
            self.add("firmware", WARN, f"the board runs build {running}, the agent's is {mine}",
                     f"nothing to do: the agent flashes {self.image.elf} with pyOCD (target "
                     f"{self.spec.flash['target']}) before its first measurement")
        else:
            self.add("firmware", FAIL, f"the board runs build {running}, the agent's is {mine}",
                     f"flash {self.image.elf} (st-flash, OpenOCD or STM32CubeProgrammer), or set flash_command "
                     f"or flash = {{ tool = \"pyocd\" }} of board {self.spec.id!r} in bench.toml so the agent "
                     f"flashes it")

    # -------------------------------------------------------- 4. clock and 5. the tiny model
    def _model_and_clock(self) -> None:
        from costmodel.graph import NUMPY_TYPES
        from measure_agent.errors import MeasureError
        from measure_agent.fit import fit
        from measure_agent.measurement import compile_model
        from measure_agent.plan.reference import Reference
        from measure_agent.serial_link import BoardLinkError

        hello = self.hello
        if hello.runtime != "nn":
            self.add("clock", SKIP, f"not run: the firmware links the {hello.runtime!r} runtime, which cannot run "
                                    "the tiny model")
            self.add("model", WARN, f"the firmware links the {hello.runtime!r} runtime, not the model runtime nn",
                     "set runtime = \"auto\" (or \"nn\") for the board in bench.toml to measure models")
            return
        try:
            blob = self.model.read_bytes()
            plan = compile_model(blob).plan
        except (OSError, MeasureError) as exc:
            self.add("clock", SKIP, "not run: no tiny model")
            self.add("model", FAIL, f"the tiny model {self.model} cannot be used: {exc}",
                     "restore examples/lenet_int8.tflite (`git checkout examples/lenet_int8.tflite`)")
            return
        if self.image is not None:
            verdict = fit(plan, self.image, "sram", self.backend.board)
            if not verdict.fits:
                self.add("clock", SKIP, "not run: the tiny model does not fit")
                self.add("model", FAIL, verdict.reason, "the board's RAM is smaller than the catalogue says, or "
                                                        "the firmware's static RAM grew: check `measure-agent build`")
                return
        rng = np.random.default_rng(0)
        xs = []
        for spec in plan.inputs:
            dtype = np.dtype(NUMPY_TYPES[spec.dtype])
            info = np.iinfo(dtype)
            xs.append(rng.integers(info.min, info.max, size=spec.shape, endpoint=True, dtype=dtype))
        name = self.model.name
        try:
            self.link.prepare(plan.blob, [x.tobytes() for x in xs], "sram")
            first = self.link.run(1)
            outputs = self.link.read_outputs()
        except (BoardLinkError, OSError) as exc:
            self.add("clock", SKIP, "not run: the tiny model did not run")
            self.add("model", FAIL, f"{name} did not run: {exc}",
                     "the board resets or faults on a model: run `measure-agent measure "
                     f"{self.model} --target {self.spec.target}` on a virtual board to compare, then reflash")
            return
        expected = Reference(blob).run(xs)
        got = [np.frombuffer(data, dtype=ref.dtype).reshape(ref.shape) for data, ref in zip(outputs, expected)]
        same = len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected))
        board = self.backend.board
        self._clock()
        ms = board.cycles_to_seconds(first.total) * 1e3
        cycles = f"{len(plan.layers)} layers, {first.total:,} cycles ({ms:.2f} ms at {_mhz(board.default_clock_hz)})"
        if self.image is None or hello.build_id != self.image.build_id:
            cycles += f"; on the board's build {hello.build_id}, not the agent's"
        if same:
            self.add("model", OK, f"{name} bit-exact with the TFLite interpreter: {cycles}")
        else:
            worst = max(int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)))) if a.shape == b.shape else -1
                        for a, b in zip(got, expected))
            self.add("model", FAIL, f"{name} differs from the TFLite interpreter (largest difference {worst}): "
                                    f"{cycles}",
                     "the board's firmware computes wrong results: flash the agent's build "
                     f"({self._elf_hint()}); if it persists, report it with `measure-agent validate`")

    def _clock(self) -> None:
        from measure_agent.serial_link import BoardLinkError

        hello = self.hello
        if hello.cycle_counter == "host-ns":
            self.add("clock", OK, "the host build of the shell counts nanoseconds; the wall-time check does not apply")
            return
        if hello.core_clock_hz != hello.default_clock_hz:
            self.add("clock", FAIL, f"the firmware says the core runs at {_mhz(hello.core_clock_hz)}, not the "
                                    f"{_mhz(hello.default_clock_hz)} latencies are reported at: its clock set-up "
                                    "failed (a bounded wait on an oscillator, the PLL, the regulator or the switch "
                                    "timed out) and it stayed at the reset clock",
                     "check the board's clock source against costmodel/data/clocks.toml (HSE bypass needs the "
                     "ST-LINK MCO bridged to OSC_IN) and flash the agent's firmware")
            return
        if self.spec.kind == "virtual":
            self.add("clock", OK, f"simulated: the firmware's clock set-up ran on the virtual board's RCC / PWR "
                                  f"models to {_mhz(hello.core_clock_hz)}; the wall-time check does not apply")
            return
        def timed(runs: int, per_run_s: float):
            start = time.monotonic()
            result = self.link.run(runs, timeout=max(60.0, 20 * runs * per_run_s))
            return result, time.monotonic() - start

        try:
            one, wall_one = timed(1, 60.0)
            runs = max(2, min(MAX_CLOCK_RUNS, math.ceil(CLOCK_WINDOW_S / max(wall_one, 1e-3))))
            for _ in range(3):  # wall_one holds the link's overhead too: grow the runs until they fill the window
                many, wall_many = timed(runs, wall_one)
                board_s = wall_many - wall_one
                if board_s >= CLOCK_WINDOW_S / 2 or runs >= MAX_CLOCK_RUNS:
                    break
                per_run = max(board_s / (runs - 1), 1e-5)
                runs = min(MAX_CLOCK_RUNS, max(runs + 1, math.ceil(CLOCK_WINDOW_S / per_run) + 1))
        except (BoardLinkError, OSError) as exc:
            self.add("clock", FAIL, f"the timed runs failed: {exc}",
                     "the board answered one run but not more: check its power supply and the USB cable")
            return
        # both calls pay the same link overhead: the difference is (runs - 1) runs of board time
        typical = (many.total + many.max_total) / 2  # (total: the fastest run's)
        cycles = many.first_total + (runs - 1) * typical - one.total
        check = clock_check(cycles, wall_many - wall_one, hello.default_clock_hz, self.backend.board.reset_clock_hz)
        check.detail = f"{runs - 1} runs of the tiny model: {check.detail}"
        self.report.checks.append(check)

    # -------------------------------------------------------- 6. energy
    def _energy(self) -> None:
        from measure_agent.energy import MonitorError

        board = self.backend.board if self.backend is not None else None
        monitor = self.backend.monitor if self.backend is not None else None
        if monitor is None:
            power = f"{board.power_mw:g} mW ({board.power_kind})" if board else "the catalogue power"
            if self.spec.kind == "virtual":
                advice = ("give the virtual board a simulated monitor, energy_monitor = { kind = \"ppk2\" } (or "
                          "rocketlogger, joulescope, otii), in bench.toml")
            else:
                advice = (f"for measured energy add energy_monitor = {{ kind = \"command\", start = [...], "
                          f"stop = [...] }} to board {self.spec.id!r} in bench.toml")
            self.add("energy", WARN, f"not configured: energy is modelled, per layer its time x {power}", advice)
            return
        if monitor.kind != "command":
            self._traced_energy(monitor)
            return
        argv = f"{' '.join(monitor.start_command)} / {' '.join(monitor.stop_command)}" \
            if hasattr(monitor, "start_command") else type(monitor).__name__
        try:
            monitor.start()
            joules = monitor.stop()
        except MonitorError as exc:
            self.add("energy", FAIL, f"the monitor ({argv}) failed: {exc}",
                     "run its start and stop commands by hand; stop must print the joules since start on stdout")
            return
        if not math.isfinite(joules) or joules < 0:
            self.add("energy", WARN, f"the monitor ({argv}) answered start/stop with {joules!r} J",
                     "stop must print the energy since start in joules, a number >= 0")
            return
        self.add("energy", OK, f"the monitor ({argv}) answered start/stop: {joules:.6g} J")


    def _traced_energy(self, monitor) -> None:
        """A tracing monitor: one run of the tiny model (loaded by the model check) while it records."""
        from measure_agent.energy import MonitorError
        from measure_agent.monitors import layer_energy
        from measure_agent.serial_link import BoardLinkError

        board = self.backend.board
        pin = board.energy_gpio
        what = f"{monitor.kind}"
        model_row = next((c for c in self.report.checks if c.name == "model"), None)
        if model_row is None or model_row.verdict != OK:
            self.add("energy", SKIP, f"not run: the {what} monitor's edge check runs the tiny model, which did not "
                                     f"pass")
            return
        if pin is None:
            self.add("energy", FAIL, f"{board.name} has no energy_gpio in the catalogue: the {what} monitor sees "
                                     f"no layer edges", "add energy_gpio (a free header pin) to its boards.toml block")
            return
        try:
            monitor.start()
            cycles = self.link.run(1)
            trace = monitor.stop()
            traced = layer_energy(trace, cycles.layer_cycles, cycles.total, 1, board.default_clock_hz)
        except MonitorError as exc:
            wiring = f"wire the board's energy pin {pin} (Arduino D7) to the monitor's digital input"
            self.add("energy", FAIL, f"the {what} monitor: {exc}",
                     wiring if "edge" in str(exc) else f"check the {what} is connected and powered; {wiring}")
            return
        except (BoardLinkError, OSError) as exc:
            self.add("energy", FAIL, f"the tiny model did not run while the {what} monitor recorded: {exc}")
            return
        resolved = sum(layer.resolved for layer in traced.layers)
        per_sample = board.default_clock_hz / traced.sample_rate_hz
        detail = (f"{what} at {traced.sample_rate_hz / 1e3:g} kHz answered and saw {traced.edges_seen} of "
                  f"{traced.edges_expected} edges of {pin} ({len(traced.layers)} layers + 1, one run), at the layer "
                  f"boundaries of the cycle counts within {traced.boundary_error_cycles:.0f} cycles "
                  f"({traced.boundary_error_cycles / per_sample:.2f} samples); {resolved} of {len(traced.layers)} "
                  f"layers resolvable (the others too short, or too near another boundary, at this rate); "
                  f"{traced.run_j * 1e6:.1f} uJ per run")
        if traced.edges_seen < traced.edges_expected:
            detail += "; edges closer than a sample cancel in pairs"
        self.add("energy", OK, detail)


def check_board(spec: BoardSpec, model: Path = TINY_MODEL) -> BoardReport:
    """Every check of one board (never raises for a board's fault: it is a FAIL row)."""
    return _Doctor(spec, Path(model)).run()


def check_bench(boards, model: Path = TINY_MODEL, progress=lambda spec: None) -> list[BoardReport]:
    """The reports of ``boards`` (BoardSpecs), one after the other."""
    reports = []
    for spec in boards:
        progress(spec)
        reports.append(check_board(spec, model))
    return reports


def bench_verdict(reports: list[BoardReport]) -> str:
    verdicts = {r.verdict for r in reports}
    return FAIL if FAIL in verdicts else WARN if WARN in verdicts else OK


