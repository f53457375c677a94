"""``costmodel``: analyse models for Cortex-M targets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel.analysis import ModelAnalysis, analyze
from costmodel.boards import CatalogueError, get_board
from costmodel.console import CliError, human_bytes, print_json, stdout, table, thousands, user_errors
from costmodel.errors import ModelError
from costmodel.tflite import read_model

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Cost model for neural networks on Arm Cortex-M: analyse models, query latency tables.")

KERAS_SUFFIXES = (".keras", ".h5")


@app.callback()
def _root() -> None:
    """Cost model for neural networks on Arm Cortex-M."""


def load_graph(path: Path, quantization: str = "int8"):
    """Read a .tflite model, or convert a Keras model first; errors name the file."""
    try:
        if path.suffix.lower() in KERAS_SUFFIXES:
            if not path.exists():
                raise ModelError("no such file")
            from costmodel.convert import keras_to_tflite, load_keras

            try:
                model = load_keras(path)
            except Exception as exc:  # Keras raises many kinds for a bad file
                raise ModelError(f"cannot load Keras model: {str(exc).splitlines()[0]}") from None
            return read_model(keras_to_tflite(model, quantization), name=path.stem)
        return read_model(path)
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
    if result.fits is not None:
        f = result.fits
        verdict = "fits" if f["fits"] else "OVERSIZED"
        summary.append([f"on {result.target}", f"{verdict} (flash {human_bytes(f['flash_needed'])} of "
                        f"{human_bytes(f['flash_available'])}, RAM {human_bytes(f['ram_needed'])} of "
                        f"{human_bytes(f['ram_available'])})"])
    stdout.print(table("model", ["", "value"], summary))


@app.command("analyze")
def analyze_command(
    model: Annotated[Path, typer.Argument(help="A .tflite model, or a Keras model (.keras/.h5) to convert first.")],
    target: Annotated[Optional[str], typer.Option(help="Board from the catalogue: check flash and RAM fit.")] = None,
    quantization: Annotated[str, typer.Option(help="For Keras models: int8, float32 or dynamic.")] = "int8",
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Per-layer MACs, parameters, memory and alignment features; totals, peak RAM, flash."""
    with user_errors(CatalogueError):
        board = get_board(target) if target else None
        graph = load_graph(model, quantization)
        try:
            result = analyze(graph, board)
        except ModelError as exc:
            raise CliError(f"{model}: {exc}") from None
    if json:
        print_json(result.to_dict())
    else:
        _render(result)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
