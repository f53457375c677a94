"""``measure-agent``: the measurement service of a lab bench, and its client commands."""

from __future__ import annotations

import dataclasses
import enum
import json as jsonlib
import os
import re
import signal
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel.boards import CatalogueError, catalogue, get_board
from costmodel.console import (CliError, print_json, run_app, stderr, stdout, table, thousands, user_errors,
                               versioned, working)
from costmodel.convert import KERAS_SUFFIXES, Quantization, check_keras_file, model_file_bytes
from measure_agent.measurement import DEFAULT_REPETITIONS, MAX_REPETITIONS

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Measurement agent: boards, firmware builds, on-device latency and energy.")

TOKEN_ENV = "MEASURE_AGENT_TOKEN"
UINT64_FIELDS = {"clock_hz", "total_cycles", "plan_bytes", "arena_bytes", "flash_bytes", "ram_bytes", "macs", "cycles",
                 "params", "weight_bytes", "overhead_cycles", "input_seed"}
MAX_SEED = 2**64 - 1

AgentOption = Annotated[Optional[str], typer.Option(help="HOST:PORT of an agent; default: a local agent with one "
                                                         "virtual board of the target.")]
TokenOption = Annotated[Optional[str], typer.Option(help=f"Bearer token for --agent (or ${TOKEN_ENV}).")]
TlsOption = Annotated[Optional[Path], typer.Option(help="Root certificate of the agent's TLS.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")]


@app.callback()
def _root() -> None:
    """Measurement agent for Arm Cortex-M boards, real and virtual."""


@app.command("targets")
def targets_command(
    json: Annotated[bool, typer.Option("--json", help="Print JSON (with each number's source).")] = False,
) -> None:
    """List the board catalogue."""
    boards = list(catalogue().values())
    if json:
        print_json(versioned({"boards": [dataclasses.asdict(b) for b in boards]}))
        return
    rows = [[b.name, b.mcu, b.core, b.fpu, "yes" if b.dsp else "no", f"{b.default_clock_hz / 1e6:g} MHz",
             f"{b.flash.size // 1024} KiB", f"{b.sram.size // 1024} KiB", b.flash_wait_states, b.flash_accelerator,
             f"{b.power_mw:g} mW ({b.power_kind})", ", ".join(b.runtime_variants())] for b in boards]
    stdout.print(table("board catalogue", ["target", "MCU", "core", "FPU", "DSP", "clock", "flash", "SRAM", "WS",
                                            "accelerator", "power", "runtime variants"],
                       rows, right_align=("clock", "flash", "SRAM", "WS", "power")))


@app.command("build")
def build_command(
    target: Annotated[str, typer.Option(help="Board from the catalogue.")],
    variant: Annotated[str, typer.Option(help="Runtime variant: simd or reference.")] = "",
    float_abi: Annotated[str, typer.Option(help="hard or soft.")] = "",
    opt: Annotated[str, typer.Option(help="Optimisation level: -Os, -O2 or -O3 (default -O2).")] = "",
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build (or find cached) the firmware for a target and print its flash and RAM use."""
    from measure_agent.firmware_build import FirmwareBuildError, build_firmware
    from measure_agent.settings import FirmwareSettings, SettingsError

    with user_errors(CatalogueError, SettingsError, FirmwareBuildError):
        board = get_board(target)
        image = build_firmware(board, FirmwareSettings.for_board(board, variant, float_abi, opt))
    info = {"target": board.name, "elf": str(image.elf), "flash_bytes": image.flash_bytes,
            "ram_bytes": image.ram_bytes, "model_ram_bytes": image.model_ram_bytes, "build_id": image.build_id}
    if json:
        print_json(versioned(info))
    else:
        stdout.print(table(f"firmware for {board.name}", ["", "value"], [[k, v] for k, v in info.items()]))


@app.command("serve")
def serve_command(
    config: Annotated[Path, typer.Option(help="The bench's configuration file (bench.toml).")],
) -> None:
    """Run the agent for the boards named in the configuration until interrupted."""
    from measure_agent.config import ConfigError, load_config
    from measure_agent.journal import JournalError
    from measure_agent.service import serve

    with user_errors(ConfigError, JournalError, OSError):
        cfg = load_config(config)
        if not cfg.clients:
            raise CliError(f"{config}: no [clients] tokens configured; every call needs a bearer token")
        server, agent, port = serve(cfg)
    workers = "one worker process per board" if cfg.workers == "process" else "boards in the agent's process"
    count = len(agent.pool.workers)
    stderr.print(f"measure-agent: serving {count} board{'s' if count != 1 else ''} on port {port} "
                 f"({'TLS' if cfg.tls_cert else 'plaintext'}, {workers}), journal {cfg.journal}", markup=False)
    for problem in agent.health().problems:
        stderr.print(f"measure-agent: board offline: {problem}", markup=False)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=5).wait()
    agent.close()


@app.command("doctor")
def doctor_command(
    config: Annotated[Path, typer.Option(help="The bench's configuration file (bench.toml).")],
    board: Annotated[Optional[list[str]], typer.Option(
        "--board", metavar="ID", help="Check only this board (its id; may be given more than once).")] = None,
    json: JsonOption = False,
) -> None:
    """Check every board of a bench: port, hello, firmware build, clock, a tiny model bit-exact, the energy
    monitor. Exit code 1 when any check fails."""
    from measure_agent.config import ConfigError, load_config
    from measure_agent.doctor import FAIL, WARN, bench_verdict, check_bench

    with user_errors(ConfigError):
        cfg = load_config(config)
        boards = list(cfg.boards)
        if board:
            known = {b.id for b in boards}
            unknown = [b for b in board if b not in known]
            if unknown:
                raise CliError(f"--board {unknown[0]}: no such board in {config} (boards: "
                               f"{', '.join(sorted(known))})")
            boards = [b for b in boards if b.id in board]

    def progress(spec) -> None:
        stderr.print(f"measure-agent doctor: checking {spec.id} ({spec.kind} {spec.target})", markup=False)

    reports = check_bench(boards, progress=progress)
    verdict = bench_verdict(reports)
    if json:
        print_json(versioned({"config": str(config), "verdict": verdict, "boards": [r.to_dict() for r in reports]}))
    else:
        for i, report in enumerate(reports):
            if i:
                stdout.print()
            rows = [[c.name, c.verdict, c.detail, c.advice] for c in report.checks]
            stdout.print(table(f"{report.board_id} ({report.kind} {report.target}): {report.verdict}",
                               ["check", "verdict", "result", "what to do"], rows, wrap=("result", "what to do")))
        failed = [r.board_id for r in reports if r.verdict == FAIL]
        stdout.print(f"doctor: {len(reports)} board{'s' if len(reports) != 1 else ''} checked, "
                     + (f"{len(failed)} failing ({', '.join(failed)})" if failed else "none failing")
                     + (", warnings above" if verdict == WARN else ""), markup=False)
    if verdict == FAIL:
        raise SystemExit(1)


def model_bytes(path: Path, quantization: str | None = None, max_bytes: int | None = None) -> bytes:
    """The .tflite bytes of a model file, as ``costmodel analyze`` reads it: a .tflite (size and header checked
    before it is read) or a Keras model converted first. CliError naming the file otherwise."""
    from costmodel.errors import ModelError

    try:
        if path.suffix.lower() in KERAS_SUFFIXES:
            check_keras_file(path)  # a bad file is said before the note on conversion
            with working(f"converting {path.name} to .tflite ({quantization or 'int8'}) with TensorFlow; this takes "
                         "half a minute"):
                return model_file_bytes(path, quantization, max_bytes=max_bytes)
        return model_file_bytes(path, quantization, max_bytes=max_bytes)
    except ModelError as exc:
        raise CliError(f"{path}: {exc}") from None


# ------------------------------------------------------------ results for people and programs
def _result_dict(result, model: str | None = None) -> dict:
    """A result as the JSON document ``measure --json``/``--save`` and ``result`` write (schema_version 1):
    the result's fields, and per layer also delta (latency per MAC, ns; null for a layer without MACs)."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(result, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    data.pop("outputs", None)
    # proto3 JSON writes 64-bit integers as strings; readers of this file want numbers
    for record in [data, *data.get("layers", [])]:
        for key in UINT64_FIELDS & record.keys():
            record[key] = int(record[key])
    for record, layer in zip(data.get("layers", []), result.layers):
        record["delta_ns_per_mac"] = layer.latency_s / layer.macs * 1e9 if layer.macs else None
    if model is not None:
        data["model"] = model
    return versioned(data)


def _render_result(result, model_name: str) -> None:
    rows = []
    for layer in result.layers:
        delta = layer.latency_s / layer.macs * 1e9 if layer.macs else None
        rows.append([layer.index, layer.op, thousands(layer.macs), thousands(layer.cycles),
                     f"{layer.latency_s * 1e3:.3f}",
                     f"{layer.energy_j * 1e6:.2f}{'*' if layer.energy_source == 'monitor-spread' else ''}",
                     f"{delta:.2f}" if delta is not None else "-"])
    if result.overhead_cycles:
        rows.append(["", "(between layers)", "", thousands(result.overhead_cycles),
                     f"{result.overhead_latency_s * 1e3:.3f}", f"{result.overhead_energy_j * 1e6:.2f}", ""])
    stdout.print(table(
        f"{model_name} on {result.target} ({result.board_kind}, {result.runtime_variant}, "
        f"{result.float_abi}-float, {result.opt_level}, {result.clock_hz / 1e6:g} MHz)",
        ["#", "op", "MACs", "cycles", "latency ms", "energy uJ", "delta ns/MAC"], rows,
        right_align=("#", "MACs", "cycles", "latency ms", "energy uJ", "delta ns/MAC")))
    inputs = "given inputs" if result.inputs_source == "given" else f"random inputs, seed {result.input_seed}"
    stdout.print(f"total: {thousands(result.total_cycles)} cycles, {result.latency_s * 1e3:.3f} ms, "
                 f"{result.energy_j * 1e6:.1f} uJ (energy from {_energy_origin(result)}); plan "
                 f"{result.plan_bytes} B in {result.placement or 'sram'}, arena {result.arena_bytes} B, firmware flash "
                 f"{result.flash_bytes} B"
                 f"{' (ops ' + ','.join(result.firmware_ops) + ')' if result.firmware_ops else ''}; "
                 f"{inputs}; request {result.request_id}", markup=False)


def _energy_origin(result) -> str:
    """Where the energy came from, as the total line says it."""
    if result.energy_source != "monitor" or not result.energy_monitor:
        return result.energy_source
    if not result.energy_sample_rate_hz:
        return f"monitor {result.energy_monitor}"
    spread = sum(layer.energy_source == "monitor-spread" for layer in result.layers)
    return (f"monitor {result.energy_monitor} at {result.energy_sample_rate_hz / 1e3:g} kHz, "
            f"{result.energy_edges_seen}/{result.energy_edges_expected} edges"
            + (f"; * {spread} layers not resolvable at this rate, spread by cycles" if spread else ""))


def _check_save(path: Path | None) -> None:
    """Refuse a --save path that cannot be written, before anything is measured."""
    if path is None:
        return
    if path.is_dir():
        raise CliError(f"--save {path}: is a directory; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise CliError(f"--save {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CliError(f"--save {path}: not writable")


def _save(path: Path, payload: dict) -> None:
    """Write the result atomically; if that fails after all, the result goes to stdout rather than being lost."""
    text = jsonlib.dumps(payload, indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        print(text, end="")
        raise CliError(f"--save {path}: {exc.strerror}; the result is printed on stdout instead") from None


def _output(result, model_label: str, model_name: str, save: Path | None, json: bool) -> None:
    payload = _result_dict(result, model_label)
    if save is not None:
        _save(save, payload)
    if json:
        print_json(payload)
    else:
        _render_result(result, model_name)
        if save is not None:
            stderr.print(f"saved {save}", markup=False)


# ------------------------------------------------------------ inputs
def _input_tensors(path: Path, data: bytes) -> list:
    """The model's inputs from a .npy (one input) or .npz (one array per input, by name or in order) file,
    checked against the model: shape (the batch dimension may be left out) and type (float samples for an
    int8 input are quantized with the input's scale and zero point)."""
    import numpy as np

    from costmodel.errors import ModelError
    from costmodel.graph import NUMPY_TYPES
    from costmodel.tflite import read_model
    from protos import agent_pb2 as pb

    try:
        graph = read_model(data)
    except ModelError as exc:
        raise CliError(f"--inputs: the model cannot be read: {exc}") from None
    specs = [graph.tensors[i] for i in graph.inputs]
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CliError(f"--inputs {path}: not a readable .npy or .npz file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        arrays = [loaded]
    else:
        with loaded:
            names, wanted = loaded.files, [s.name for s in specs]
            try:  # by the inputs' names, else in the file's order (arr_0, arr_1, ... of numpy.savez)
                order = wanted if set(wanted) <= set(names) else sorted(names, key=lambda n: (len(n), n))
                arrays = [loaded[n] for n in order]
            except (OSError, ValueError, EOFError) as exc:
                raise CliError(f"--inputs {path}: not a readable .npz file ({exc})") from None
    if len(arrays) != len(specs):
        raise CliError(f"--inputs {path}: the model has {len(specs)} inputs, the file {len(arrays)} arrays")
    tensors = []
    for i, (array, spec) in enumerate(zip(arrays, specs)):
        shape = [int(d) for d in spec.shape]
        dtype = np.dtype(NUMPY_TYPES.get(spec.dtype, np.float32))
        where = f"--inputs {path}: input {i} ({spec.name!r}, {spec.dtype} {shape})"
        if array.dtype.kind not in "biuf":
            raise CliError(f"{where}: the array holds {array.dtype}, not numbers")
        if array.size != int(np.prod(shape)):
            raise CliError(f"{where}: the array has shape {list(array.shape)}")
        array = array.reshape(shape)
        if array.dtype != dtype:
            if dtype.kind in "iu" and array.dtype.kind == "f" and spec.quant is not None:
                scale, zero = float(spec.quant.scale.reshape(-1)[0]), int(spec.quant.zero_point.reshape(-1)[0])
                info = np.iinfo(dtype)
                array = np.clip(np.round(array / scale) + zero, info.min, info.max)
            elif dtype.kind in "iu" and array.dtype.kind in "iu":
                info = np.iinfo(dtype)
                if array.size and (array.min() < info.min or array.max() > info.max):
                    raise CliError(f"{where}: values from {array.min()} to {array.max()} do not fit {spec.dtype}")
            elif dtype.kind != "f":
                raise CliError(f"{where}: the array holds {array.dtype}")
            array = array.astype(dtype)
        if dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise CliError(f"{where}: the array has NaN or infinite values")
        tensors.append(pb.Tensor(shape=shape, dtype=spec.dtype, data=np.ascontiguousarray(array).tobytes()))
    return tensors


# ------------------------------------------------------------ agents
class _agent_client:
    """A client of the given agent, or of a local agent started for this command."""

    def __init__(self, address, token, tls_root, target=None):
        self.address, self.token, self.tls_root, self.target = address, token, tls_root, target
        self._server = self._agent = self._tmp = None
        self.local = not address

    def __enter__(self):
        from measure_agent.client import AgentClient

        def retrying(message: str) -> None:
            stderr.print(f"measure-agent: {message}", markup=False)

        if self.address:
            token = self.token or os.environ.get(TOKEN_ENV)
            if not token:
                raise CliError(f"--agent needs --token or ${TOKEN_ENV}")
            self.client = AgentClient(self.address, token, self.tls_root, on_retry=retrying)
        else:
            from measure_agent.service import local_config, serve

            self._tmp = tempfile.TemporaryDirectory(prefix="measure-agent-")
            cfg = local_config(self.target, Path(self._tmp.name) / "journal.sqlite", workers="thread")
            self._server, self._agent, port = serve(cfg)
            self.client = AgentClient(f"127.0.0.1:{port}", cfg.clients["local"], on_retry=retrying)
        return self.client

    def __exit__(self, *exc):
        self.client.close()
        if self._server is not None:
            self._server.stop(grace=1).wait()
            self._agent.close()
            self._tmp.cleanup()


def _remote(agent: str | None, token: str | None, tls_root: Path | None) -> _agent_client:
    if not agent:
        raise CliError("--agent HOST:PORT is required (the agent to ask)")
    return _agent_client(agent, token, tls_root)


class Placement(str, enum.Enum):
    """Where a measured model's constants live (measure --placement)."""

    flash = "flash"
    sram = "sram"


def parse_hz(text: str) -> int:
    """A frequency: ``80MHz``, ``32.768kHz``, ``4000000`` (Hz); CliError otherwise."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(hz|khz|mhz)?\s*", text.lower())
    if not match:
        raise CliError(f"--clock must be a frequency such as 80MHz or 4000000, not {text!r}")
    hz = float(match.group(1)) * {"hz": 1, "khz": 1e3, "mhz": 1e6, None: 1}[match.group(2)]
    if hz < 1 or hz != int(hz):
        raise CliError(f"--clock must be a whole number of hertz, not {text!r}")
    return int(hz)


@app.command("measure")
def measure_command(
    model: Annotated[Path, typer.Argument(help="A .tflite model, or a Keras model (.keras/.h5) to convert first.")],
    target: Annotated[str, typer.Option(help="Board from the catalogue.")] = "NUCLEO-L4R5ZI",
    agent: AgentOption = None,
    token: TokenOption = None,
    tls_root: TlsOption = None,
    variant: Annotated[str, typer.Option(help="Runtime variant: simd or reference (default: best for the core).")] = "",
    float_abi: Annotated[str, typer.Option(help="hard or soft.")] = "",
    opt: Annotated[str, typer.Option(help="-Os, -O2 or -O3.")] = "",
    repetitions: Annotated[int, typer.Option(help=f"Runs (1 to {MAX_REPETITIONS}); per-layer cycles are the minimum.",
                                             min=1, max=MAX_REPETITIONS)] = DEFAULT_REPETITIONS,
    quantization: Annotated[Optional[Quantization], typer.Option(
        help="For Keras models: int8 (default), float32 or dynamic.")] = None,
    inputs: Annotated[Optional[Path], typer.Option(help="The model's inputs: a .npy (one input) or .npz (an array "
                                                        "per input, by name or in order).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the random inputs (default 0: the same inputs on "
                                                     "every run).", min=0, max=MAX_SEED)] = None,
    request_id: Annotated[Optional[str], typer.Option(help="Request id (default: a new one). The same id and "
                                                           "request give the stored result, never a second run.")] = None,
    placement: Annotated[Placement, typer.Option(
        help="Where the model's constants (weights, biases) live: flash, as deployed (the firmware programs the "
             "plan into a flash slot), or sram.")] = Placement.flash,
    clock: Annotated[Optional[str], typer.Option(help="Core clock the firmware sets up, e.g. 80MHz (default: the "
                                                      "catalogue's), within the board's range.")] = None,
    ops: Annotated[str, typer.Option(help="Ops of the firmware image: all (one image for every model), model (only "
                                          "the model's, as a deployment registers them) or plan op kinds, "
                                          "comma-separated (e.g. CONV_S8,FC_S8).")] = "all",
    save: Annotated[Optional[Path], typer.Option(help="Also save the JSON result to this file.")] = None,
    json: JsonOption = False,
) -> None:
    """Measure a model on a board: per-layer MACs, cycles, latency, energy and delta (latency per MAC)."""
    from measure_agent.client import AgentError
    from measure_agent.config import DEFAULT_MAX_MODEL_BYTES
    from measure_agent.service import MAX_REQUEST_ID

    with user_errors(CatalogueError, AgentError, OSError):
        _check_save(save)
        if inputs is not None and seed is not None:
            raise CliError("--inputs and --seed exclude each other (--seed draws random inputs)")
        if request_id is not None and not (0 < len(request_id) <= MAX_REQUEST_ID and request_id.isprintable()):
            raise CliError(f"--request-id must be 1 to {MAX_REQUEST_ID} printable characters")
        board = get_board(target)
        clock_hz = parse_hz(clock) if clock is not None else 0
        rid = request_id or uuid.uuid4().hex
        quant = quantization.value if quantization else None
        connection = _agent_client(agent, token, tls_root, board.name)
        if connection.local:  # a bad model file fails before a local agent is started
            data = model_bytes(model, quant, DEFAULT_MAX_MODEL_BYTES)
        with connection as client:
            if not connection.local:
                limit = client.max_model_bytes() or DEFAULT_MAX_MODEL_BYTES  # fails fast on a wrong address
                data = model_bytes(model, quant, limit)
                stderr.print(f"request {rid} (if the answer is lost: measure-agent result {rid} --agent {agent})",
                             markup=False)
            tensors = _input_tensors(inputs, data) if inputs is not None else []
            with stderr.status(f"measuring {model.name} on {board.name}") as status:
                def on_event(event):
                    from protos import agent_pb2 as pb

                    status.update(f"{model.name} on {board.name}: "
                                  f"{pb.MeasureEvent.Stage.Name(event.stage).lower()} {event.message}")

                result = client.measure(data, board.name, runtime_variant=variant, float_abi=float_abi,
                                        opt_level=opt, repetitions=repetitions, inputs=tensors,
                                        input_seed=seed or 0, request_id=rid, placement=placement.value,
                                        clock_hz=clock_hz, ops=ops, on_event=on_event)
        _output(result, str(model), model.name, save, json)


@app.command("result")
def result_command(
    request_id: Annotated[str, typer.Argument(help="The request id of a measurement this client asked for.")],
    agent: Annotated[Optional[str], typer.Option(help="HOST:PORT of the agent.")] = None,
    token: TokenOption = None,
    tls_root: TlsOption = None,
    save: Annotated[Optional[Path], typer.Option(help="Also save the JSON result to this file.")] = None,
    json: JsonOption = False,
) -> None:
    """A measurement's result by request id, from the agent's journal (e.g. after a lost connection)."""
    from measure_agent.client import AgentError

    with user_errors(AgentError, OSError):
        _check_save(save)
        with _remote(agent, token, tls_root) as client:
            result = client.result(request_id)
        _output(result, None, result.request_id, save, json)


@app.command("boards")
def boards_command(
    agent: Annotated[Optional[str], typer.Option(help="HOST:PORT of the agent.")] = None,
    token: TokenOption = None,
    tls_root: TlsOption = None,
    json: JsonOption = False,
) -> None:
    """The boards of an agent and their state (an offline board with the reason)."""
    from google.protobuf.json_format import MessageToDict

    from measure_agent.client import AgentError

    with user_errors(AgentError, OSError):
        with _remote(agent, token, tls_root) as client:
            boards = client.boards()
    if json:
        print_json(versioned({"boards": [MessageToDict(b, preserving_proto_field_name=True,
                                                       always_print_fields_with_no_presence=True) for b in boards]}))
        return
    rows = [[b.board_id, b.target, b.kind, b.state + (f": {b.state_reason}" if b.state_reason else ""),
             b.queue_length, b.energy_source] for b in boards]
    stdout.print(table(f"boards of {agent}", ["board", "target", "kind", "state", "queue", "energy"], rows,
                       right_align=("queue",)))


@app.command("health")
def health_command(
    agent: Annotated[Optional[str], typer.Option(help="HOST:PORT of the agent.")] = None,
    token: TokenOption = None,
    tls_root: TlsOption = None,
    json: JsonOption = False,
) -> None:
    """Whether an agent serves, its boards online, requests done and failed, its limits and problems."""
    from google.protobuf.json_format import MessageToDict

    from measure_agent.client import AgentError

    with user_errors(AgentError, OSError):
        with _remote(agent, token, tls_root) as client:
            health = client.health()
    if json:
        data = MessageToDict(health, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        for key in ("requests_done", "requests_failed", "max_model_bytes"):
            data[key] = int(data[key])
        print_json(versioned(data))
        return
    rows = [["serving", "yes" if health.serving else "no"], ["agent version", health.agent_version],
            ["boards online", f"{health.boards_online} of {health.boards}"], ["queued", health.queued],
            ["requests done", health.requests_done], ["requests failed", health.requests_failed],
            ["max model bytes", health.max_model_bytes]]
    rows += [["problem", p] for p in health.problems]
    stdout.print(table(f"agent {agent}", ["", "value"], rows))


@app.command("validate")
def validate_command(
    model: Annotated[Path, typer.Argument(help="A .tflite classifier with one input and one output.")],
    data: Annotated[Path, typer.Option(help="Dataset .npz with arrays x (samples first) and y (labels: integers, "
                                            "or one-hot rows).")],
    target: Annotated[str, typer.Option(help="Board from the catalogue.")] = "NUCLEO-L4R5ZI",
    port: Annotated[Optional[str], typer.Option(help="Serial port of a real board (default: a virtual board).")] = None,
    flash_command: Annotated[Optional[str], typer.Option(help="For --port: flashing command, arguments separated "
                                                              "by spaces, {elf}/{bin} replaced; never run by a shell.")] = None,
    variant: Annotated[str, typer.Option(help="Runtime variant: simd or reference.")] = "",
    float_abi: Annotated[str, typer.Option(help="hard or soft.")] = "",
    opt: Annotated[str, typer.Option(help="-Os, -O2 (default) or -O3.")] = "",
    limit: Annotated[int, typer.Option(help="Use at most this many samples (0: all).", min=0)] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """On-device accuracy vs the host interpreter's, and their agreement (the paper's stage F)."""
    from rich.progress import Progress

    from measure_agent.backends import BoardSpec, make_backend
    from measure_agent.errors import MeasureError
    from measure_agent.settings import FirmwareSettings, SettingsError
    from measure_agent.validation import check_dataset, load_dataset, validate

    with user_errors(CatalogueError, MeasureError, SettingsError, OSError):
        board = get_board(target)
        settings = FirmwareSettings.for_board(board, variant, float_abi, opt)
        blob = model_bytes(model)
        x, y = load_dataset(data)
        if limit:
            x, y = x[:limit], y[:limit]
        check_dataset(blob, x, y, data)
        spec = BoardSpec(id=port or "validate", kind="serial" if port else "virtual", target=board.name,
                         port=port, flash_command=tuple((flash_command or "").split()))
        backend = make_backend(spec)
        try:
            with Progress(console=stderr, transient=True) as bar:
                task = bar.add_task(f"{model.name} on {board.name}", total=len(x))
                report = validate(backend, blob, x, y, settings, lambda done, total: bar.update(task, completed=done))
        finally:
            backend.close()
    if json:
        print_json(versioned(dataclasses.asdict(report)))
        return
    rows = [["samples", report.samples], ["on-device accuracy", f"{report.board_accuracy:.2%}"],
            ["host interpreter accuracy", f"{report.host_accuracy:.2%}"],
            ["same prediction", f"{report.agreement:.2%}"], ["bit-identical outputs", f"{report.identical_outputs:.2%}"],
            ["max output difference", f"{report.max_abs_difference:.6g}"]]
    stdout.print(table(f"{model.name} on {board.name} ({spec.kind})", ["", "value"], rows))


def main() -> None:
    # gRPC's core logs a failed bind (and such) on stderr, besides the one-line error said here
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    run_app(app)


if __name__ == "__main__":
    main()
