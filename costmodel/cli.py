"""``costmodel``: analyse models for Cortex-M targets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel.analysis import ModelAnalysis, analyze
from costmodel.boards import CatalogueError, get_board
from costmodel.console import (CliError, human_bytes, print_json, run_app, stdout, table, thousands, user_errors,
                               versioned, working)
from costmodel.convert import KERAS_SUFFIXES, Quantization, check_keras_file, model_file_bytes
from costmodel.errors import ModelError
from costmodel.tflite import MAX_MODEL_FILE_BYTES, read_model

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Cost model for neural networks on Arm Cortex-M: analyse models, query latency tables.")



@app.callback()
def _root() -> None:
    """Cost model for neural networks on Arm Cortex-M."""


def model_bytes(path: Path, quantization: str | None = None, max_bytes: int = MAX_MODEL_FILE_BYTES) -> bytes:
    """The .tflite bytes of a model file (a Keras model converted first, with a note while TensorFlow works);
    CliError naming the file for anything that is not a usable model. The same inputs for every command."""
    try:
        if path.suffix.lower() in KERAS_SUFFIXES:
            check_keras_file(path)  # a bad file is said before the note on conversion
            with working(f"converting {path.name} to .tflite ({quantization or 'int8'}) with TensorFlow; this takes "
                         "half a minute"):
                return model_file_bytes(path, quantization, max_bytes=max_bytes)
        return model_file_bytes(path, quantization, max_bytes=max_bytes)
    except ModelError as exc:
        raise CliError(f"{path}: {exc}") from None


def load_graph(path: Path, quantization: str | None = "int8", max_bytes: int = MAX_MODEL_FILE_BYTES):
    """Read a .tflite model, or convert a Keras model first (``quantization`` applies to it only); errors name
    the file."""
    keras = path.suffix.lower() in KERAS_SUFFIXES
    data = model_bytes(path, quantization if keras else None, max_bytes)
    try:
        return read_model(data, name=path.stem)
    except ModelError as exc:
        raise CliError(f"{path}: {exc}") from None


def _render(result: ModelAnalysis) -> None:
    rows = []
    for layer in result.layers:
        shape = "x".join(map(str, layer.output_shapes[0][1:])) if layer.output_shapes else ""
        rows.append([layer.index, layer.op, shape, thousands(layer.macs), thousands(layer.params),
                     human_bytes(layer.weight_bytes), human_bytes(layer.activation_bytes),
                     layer.alignment or "-"])
    stdout.print(table(f"{result.name}: per layer",
                       ["#", "op", "output", "MACs", "params", "weights", "activations", "align"],
                       rows, right_align=("#", "MACs", "params", "weights", "activations")))
    summary = [["MACs", thousands(result.total_macs)], ["parameters", thousands(result.total_params)],
               ["weights", human_bytes(result.weight_bytes)], ["peak RAM (arena)", human_bytes(result.peak_ram_bytes)],
               ["flash estimate", human_bytes(result.flash_bytes)]]
    runtime = getattr(result, "runtime", None) or {}
    if runtime.get("arena"):
        a = runtime["arena"]
        summary.append(["arena parts", f"{human_bytes(a['tensors'])} tensors + {human_bytes(a['scratch'])} scratch "
                        f"+ {human_bytes(a['layer_state'])} state"])
    notes = [f"the runtime cannot run layer {u['index']} ({u['op']}): {u['reason']}"
             for u in runtime.get("unsupported", [])]
    if result.fits is not None:
        f = result.fits
        if f.get("fits") is None:  # undecided: the runtime cannot run it, or no firmware to size it
            summary.append([f"on {result.target}", "unknown"])
            notes.append(f"{result.target}: {f.get('problem', '')}")
        else:
            summary.append([f"on {result.target}", f"{'fits' if f['fits'] else 'OVERSIZED'} (plan in "
                            f"{f.get('placement', 'flash')})"])
            notes.append(f.get("reason") or "")
    stdout.print(table("model", ["", "value"], summary))
    for note in notes:
        stdout.print(note, markup=False, highlight=False)


def _runtime_view(graph, result: ModelAnalysis, board, placement: str) -> None:
    """What the measurement firmware makes of the model (the agent's own code, so the two agree): which layers
    its runtime can run, its real arena (the peak RAM shown), and with a target the agent's fit verdict."""
    from measure_agent.fit import runtime_support, target_verdict
    from measure_agent.plan import UnsupportedOpError, compile_plan

    runtime: dict = {"unsupported": [{"index": i, "op": op, "reason": why}
                                     for i, op, why in runtime_support(graph) if why]}
    runtime["supported"] = not runtime["unsupported"]
    result.tensor_arena_bytes = result.peak_ram_bytes
    try:
        plan = compile_plan(graph)
        scratch = (plan.scratch_bytes + 15) & ~15
        runtime["arena"] = {"total": plan.arena_bytes, "scratch": scratch, "layer_state": plan.state_bytes,
                            "tensors": plan.arena_bytes - plan.state_bytes - scratch}
        result.peak_ram_bytes = plan.arena_bytes  # what the firmware needs: tensors + scratch + layer state
    except UnsupportedOpError as exc:
        if exc.malformed:  # what the measurement refuses as malformed, the analysis refuses too
            raise ModelError(exc.describe()) from None
        runtime["supported"] = False
        runtime.setdefault("problem", str(exc))
    result.runtime = runtime
    if board is not None:
        result.fits = target_verdict(graph, board, placement)


@app.command("analyze")
def analyze_command(
    model: Annotated[Path, typer.Argument(help="A .tflite model, or a Keras model (.keras/.h5) to convert first.")],
    target: Annotated[Optional[str], typer.Option(help="Board from the catalogue: check flash and RAM fit.")] = None,
    quantization: Annotated[Optional[Quantization], typer.Option(
        help="For Keras models: int8 (default), float32 or dynamic.")] = None,
    max_model_bytes: Annotated[int, typer.Option(help="Refuse model files larger than this (checked before "
                                                      "reading).", min=1)] = MAX_MODEL_FILE_BYTES,
    placement: Annotated[str, typer.Option(help="With --target: where the constants live, flash (as deployed) or "
                                                "sram; the verdict is the measurement agent's.")] = "flash",
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Per-layer MACs, parameters, memory and alignment features; totals, peak RAM, flash."""
    with user_errors(CatalogueError):
        board = get_board(target) if target else None
        if placement not in ("flash", "sram"):
            raise CliError(f"--placement must be flash or sram, not {placement!r}")
        data = model_bytes(model, quantization.value if quantization else None, max_model_bytes)
        try:
            graph = read_model(data, name=model.stem)
            result = analyze(graph, board)
            _runtime_view(graph, result, board, placement)
        except ModelError as exc:
            raise CliError(f"{model}: {exc}") from None
    if json:
        d = result.to_dict()
        d["runtime"], d["tensor_arena_bytes"] = result.runtime, result.tensor_arena_bytes
        print_json(versioned(d))
    else:
        _render(result)


from costmodel.commands import register as _register_measured_commands  # noqa: E402  (sweep, fit, predict, ...)

_register_measured_commands(app)

from costmodel.commands import study as _study_command  # noqa: E402  (the paper's experiments, one report)

_study_command.register(app)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
