"""``measure-agent``: the measurement service of a lab bench, and its client commands."""

from __future__ import annotations

import dataclasses
import json as jsonlib
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel.boards import CatalogueError, catalogue, get_board
from costmodel.console import CliError, print_json, stderr, stdout, table, thousands, user_errors

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Measurement agent: boards, firmware builds, on-device latency and energy.")

TOKEN_ENV = "MEASURE_AGENT_TOKEN"
UINT64_FIELDS = {"clock_hz", "total_cycles", "plan_bytes", "arena_bytes", "flash_bytes", "ram_bytes", "macs", "cycles",
                 "params", "weight_bytes"}


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
        print_json([dataclasses.asdict(b) for b in boards])
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
        print_json(info)
    else:
        stdout.print(table(f"firmware for {board.name}", ["", "value"], [[k, v] for k, v in info.items()]))


@app.command("serve")
def serve_command(
    config: Annotated[Path, typer.Option(help="The bench's configuration file (bench.toml).")],
) -> None:
    """Run the agent for the boards named in the configuration until interrupted."""
    from measure_agent.config import ConfigError, load_config
    from measure_agent.service import serve

    with user_errors(ConfigError, OSError):
        cfg = load_config(config)
        if not cfg.clients:
            raise CliError(f"{config}: no [clients] tokens configured; every call needs a bearer token")
        server, agent, port = serve(cfg)
    stderr.print(f"measure-agent: serving {len(agent.pool.workers)} boards on port {port} "
                 f"({'TLS' if cfg.tls_cert else 'plaintext'}), journal {cfg.journal}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=5).wait()
    agent.close()


def _result_dict(result) -> dict:
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(result, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    data.pop("outputs", None)
    # proto3 JSON writes 64-bit integers as strings; readers of this file want numbers
    for record in [data, *data.get("layers", [])]:
        for key in UINT64_FIELDS & record.keys():
            record[key] = int(record[key])
    return data


def _render_result(result, model_name: str) -> None:
    rows = []
    for layer in result.layers:
        delta = layer.latency_s / layer.macs * 1e9 if layer.macs else None
        rows.append([layer.index, layer.op, thousands(layer.macs), thousands(layer.cycles),
                     f"{layer.latency_s * 1e3:.3f}", f"{layer.energy_j * 1e6:.2f}",
                     f"{delta:.2f}" if delta is not None else "-"])
    stdout.print(table(
        f"{model_name} on {result.target} ({result.board_kind}, {result.runtime_variant}, "
        f"{result.float_abi}-float, {result.opt_level}, {result.clock_hz / 1e6:g} MHz)",
        ["#", "op", "MACs", "cycles", "latency ms", "energy uJ", "delta ns/MAC"], rows,
        right_align=("#", "MACs", "cycles", "latency ms", "energy uJ", "delta ns/MAC")))
    stdout.print(f"total: {thousands(result.total_cycles)} cycles, {result.latency_s * 1e3:.3f} ms, "
                 f"{result.energy_j * 1e6:.1f} uJ (energy from {result.energy_source}); plan "
                 f"{result.plan_bytes} B, arena {result.arena_bytes} B, firmware flash {result.flash_bytes} B")


@app.command("measure")
def measure_command(
    model: Annotated[Path, typer.Argument(help="A .tflite model.")],
    target: Annotated[str, typer.Option(help="Board from the catalogue.")] = "NUCLEO-L4R5ZI",
    agent: Annotated[Optional[str], typer.Option(help="HOST:PORT of an agent; default: a local agent with "
                                                      "one virtual board of the target.")] = None,
    token: Annotated[Optional[str], typer.Option(help=f"Bearer token for --agent (or ${TOKEN_ENV}).")] = None,
    tls_root: Annotated[Optional[Path], typer.Option(help="Root certificate of the agent's TLS.")] = None,
    variant: Annotated[str, typer.Option(help="Runtime variant: simd or reference (default: best for the core).")] = "",
    float_abi: Annotated[str, typer.Option(help="hard or soft.")] = "",
    opt: Annotated[str, typer.Option(help="-Os, -O2 or -O3.")] = "",
    repetitions: Annotated[int, typer.Option(help="Runs; per-layer cycles are the minimum.")] = 3,
    save: Annotated[Optional[Path], typer.Option(help="Also save the JSON result to this file.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
) -> None:
    """Measure a model on a board: per-layer MACs, cycles, latency, energy and delta (latency per MAC)."""
    from measure_agent.client import AgentClient, AgentError

    with user_errors(CatalogueError, AgentError, OSError):
        board = get_board(target)
        data = model.read_bytes()
        with _agent_client(agent, token, tls_root, board.name) as client:
            with stderr.status(f"measuring {model.name} on {board.name}") as status:
                def on_event(event):
                    from protos import agent_pb2 as pb

                    status.update(f"{model.name} on {board.name}: "
                                  f"{pb.MeasureEvent.Stage.Name(event.stage).lower()} {event.message}")

                result = client.measure(data, board.name, runtime_variant=variant, float_abi=float_abi,
                                        opt_level=opt, repetitions=repetitions, on_event=on_event)
    payload = _result_dict(result)
    payload["model"] = str(model)
    if save is not None:
        save.write_text(jsonlib.dumps(payload, indent=2) + "\n")
    if json:
        print_json(payload)
    else:
        _render_result(result, model.name)
        if save is not None:
            stderr.print(f"saved {save}")


@app.command("validate")
def validate_command(
    model: Annotated[Path, typer.Argument(help="A .tflite classifier with one input and one output.")],
    data: Annotated[Path, typer.Option(help="Dataset .npz with arrays x (samples first) and y (labels).")],
    target: Annotated[str, typer.Option(help="Board from the catalogue.")] = "NUCLEO-L4R5ZI",
    port: Annotated[Optional[str], typer.Option(help="Serial port of a real board (default: a virtual board).")] = None,
    flash_command: Annotated[Optional[str], typer.Option(help="For --port: flashing command, arguments separated "
                                                              "by spaces, {elf}/{bin} replaced; never run by a shell.")] = None,
    variant: Annotated[str, typer.Option(help="Runtime variant: simd or reference.")] = "",
    float_abi: Annotated[str, typer.Option(help="hard or soft.")] = "",
    opt: Annotated[str, typer.Option(help="-Os, -O2 (default) or -O3.")] = "",
    limit: Annotated[int, typer.Option(help="Use at most this many samples (0: all).")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """On-device accuracy vs the host interpreter's, and their agreement (the paper's stage F)."""
    from rich.progress import Progress

    from measure_agent.backends import BoardSpec, make_backend
    from measure_agent.errors import MeasureError
    from measure_agent.settings import FirmwareSettings, SettingsError
    from measure_agent.validation import load_dataset, validate

    with user_errors(CatalogueError, MeasureError, SettingsError, OSError):
        board = get_board(target)
        settings = FirmwareSettings.for_board(board, variant, float_abi, opt)
        spec = BoardSpec(id=port or "validate", kind="serial" if port else "virtual", target=board.name,
                         port=port, flash_command=tuple((flash_command or "").split()))
        backend = make_backend(spec)
        x, y = load_dataset(data)
        if limit:
            x, y = x[:limit], y[:limit]
        try:
            with Progress(console=stderr, transient=True) as bar:
                task = bar.add_task(f"{model.name} on {board.name}", total=len(x))
                report = validate(backend, model.read_bytes(), x, y, settings,
                                  lambda done, total: bar.update(task, completed=done))
        finally:
            backend.close()
    if json:
        print_json(dataclasses.asdict(report))
        return
    rows = [["samples", report.samples], ["on-device accuracy", f"{report.board_accuracy:.2%}"],
            ["host interpreter accuracy", f"{report.host_accuracy:.2%}"],
            ["same prediction", f"{report.agreement:.2%}"], ["bit-identical outputs", f"{report.identical_outputs:.2%}"],
            ["max output difference", f"{report.max_abs_difference:.6g}"]]
    stdout.print(table(f"{model.name} on {board.name} ({spec.kind})", ["", "value"], rows))


class _agent_client:
    """A client of the given agent, or of a local agent started for this command."""

    def __init__(self, address, token, tls_root, target):
        self.address, self.token, self.tls_root, self.target = address, token, tls_root, target
        self._server = self._agent = self._tmp = None

    def __enter__(self):
        from measure_agent.client import AgentClient

        if self.address:
            token = self.token or os.environ.get(TOKEN_ENV)
            if not token:
                raise CliError(f"--agent needs --token or ${TOKEN_ENV}")
            self.client = AgentClient(self.address, token, self.tls_root)
        else:
            from measure_agent.service import local_config, serve

            self._tmp = tempfile.TemporaryDirectory(prefix="measure-agent-")
            cfg = local_config(self.target, Path(self._tmp.name) / "journal.sqlite")
            self._server, self._agent, port = serve(cfg)
            self.client = AgentClient(f"127.0.0.1:{port}", cfg.clients["local"])
        return self.client

    def __exit__(self, *exc):
        self.client.close()
        if self._server is not None:
            self._server.stop(grace=1).wait()
            self._agent.close()
            self._tmp.cleanup()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
