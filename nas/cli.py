"""``nas``: architecture searches measured on (virtual) boards, reports, and the paper's stages B and C.

    nas search --study NAME [--storage URL] [--trials N] [--target BOARD] [--space cnn|dscnn] [--data D.npz]
    nas report NAME [--storage URL] --out report.html
    nas convert MODEL.keras                 float32, dynamic-range and full int8: size of each
    nas evaluate MODEL --data D.npz         host accuracy of each (a .tflite: of that one)
    nas spaces                              the search spaces this installation knows

Bad input (an unknown space, sampler or objective, a dataset with wrong keys or shapes, an unreachable
agent, a storage that cannot be opened) is one line on stderr and exit code 2, before the study is touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel.console import (CliError, error_line, print_json, run_app, stderr, stdout, table, user_errors,
                               versioned)

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Neural architecture search by on-device latency and energy.")

TOKEN_ENV = "MEASURE_AGENT_TOKEN"
DEFAULT_TARGET = "NUCLEO-L496ZG"


@app.callback()
def _root() -> None:
    """Neural architecture search for Arm Cortex-M."""


def _input_errors():
    from costmodel.boards import CatalogueError
    from nas.adapter import LabError
    from nas.datasets import DatasetError
    from nas.objectives import ObjectiveError
    from nas.samplers import SamplerError
    from nas.spaces import SpaceError
    from nas.storage import StorageError

    return (CatalogueError, DatasetError, ObjectiveError, SamplerError, SpaceError, StorageError, LabError)


@contextlib.contextmanager
def _remove_on_error(created: list[Path]):
    """Remove the SQLite files in ``created`` (new ones) when the block fails: bad input leaves nothing behind."""
    from nas import storage as storage_mod

    try:
        yield
    except BaseException:
        storage_mod.remove_files(created)
        raise


def _token(token: str | None, token_file: Path | None) -> str | None:
    if token_file is not None:
        try:
            text = token_file.read_text().strip()
        except OSError as exc:
            raise CliError(f"--token-file {token_file}: {exc.strerror}") from None
        if not text:
            raise CliError(f"--token-file {token_file} is empty")
        return text
    return token or os.environ.get(TOKEN_ENV)


class _Progress:
    """A progress bar of the study's trials on a terminal, one line per trial otherwise (both on stderr)."""

    def __init__(self, total: int, done: int, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.quiet = quiet
        self.counts = {"measured": 0, "pruned": 0, "failed": 0, "repaired": 0}
        self.bar = None
        if stderr.is_terminal and not quiet:
            self.bar = Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.description}"), console=stderr, transient=False)
            self.task = self.bar.add_task("", total=total, completed=done)
            self.bar.start()

    def __call__(self, info: dict) -> None:
        outcome = info.get("outcome", "")
        if outcome in self.counts:
            self.counts[outcome] += 1
        if info.get("repaired"):
            self.counts["repaired"] += 1
        line = _trial_line(info)
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
            self.bar.update(self.task, advance=1 if outcome != "interrupted" else 0,
                            description=" ".join(f"{k} {v}" for k, v in self.counts.items()))
        elif not self.quiet:
            stderr.print(line, markup=False, highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _trial_line(info: dict) -> str:
    n, outcome = info.get("number"), info.get("outcome", "")
    if outcome == "measured":
        parts = [f"trial {n}: measured {info['latency_s'] * 1e3:.3g} ms, {info['energy_j'] * 1e3:.3g} mJ"]
        if info.get("predicted_s"):
            parts.append(f"(predicted {info['predicted_s'] * 1e3:.3g} ms)")
        if info.get("accuracy") is not None:
            parts.append(f"accuracy {info['accuracy'] * 100:.1f} %")
        if info.get("cached"):
            parts.append("[measurement from the store]")
        if info.get("repaired"):
            parts.append("[repaired]")
        return " ".join(parts)
    if outcome == "pruned":
        return f"trial {n}: pruned by {info.get('rule')}: {info.get('reason', '')}"
    if outcome == "failed":
        return f"trial {n}: failed: {info.get('error', '')}"
    return f"trial {n}: {outcome}"


@app.command("search")
def search_command(
    study: Annotated[str, typer.Option(help="Study name (a new one is created; an existing one is joined/resumed).")],
    storage: Annotated[str, typer.Option(help="Optuna RDB URL: sqlite:///file.db (default) or "
                                              "postgresql://user@host/db for many workers.")] = "",
    trials: Annotated[int, typer.Option(min=1, help="Trials of the study in total (a resume stops at the same count).")
                      ] = 40,
    target: Annotated[str, typer.Option(help="Board from the catalogue (measure-agent targets).")] = DEFAULT_TARGET,
    space: Annotated[str, typer.Option(help="Search space: cnn, dscnn, or one of --space-module.")] = "cnn",
    space_module: Annotated[Optional[str], typer.Option(help="A module or .py file with more search spaces.")] = None,
    data: Annotated[str, typer.Option(help="Dataset: digits (offline default) or an .npz with x_train, y_train, "
                                           "x_test, y_test.")] = "digits",
    objectives: Annotated[str, typer.Option(help="Comma-separated: accuracy, latency, energy, ram, flash.")
                          ] = "accuracy,latency",
    max_latency: Annotated[Optional[str], typer.Option(help="Latency budget, e.g. 5ms.")] = None,
    max_energy: Annotated[Optional[str], typer.Option(help="Energy budget per inference, e.g. 0.2mJ.")] = None,
    max_flash: Annotated[Optional[str], typer.Option(help="Budget of the model's plan in flash, e.g. 64KiB.")] = None,
    max_ram: Annotated[Optional[str], typer.Option(help="Budget of the model's arena in RAM, e.g. 32KiB.")] = None,
    sampler: Annotated[str, typer.Option(help="tpe, nsga2, nsga3, gp, random or qmc.")] = "tpe",
    seed: Annotated[int, typer.Option(help="Seed of the sampler and of the candidates' weights.")] = 0,
    cost_model: Annotated[bool, typer.Option("--cost-model/--no-cost-model",
                                             help="Prune and repair by the learned cost model.")] = True,
    reuse: Annotated[bool, typer.Option("--reuse/--no-reuse",
                                        help="Reuse the measurement of an architecture measured before.")] = True,
    inferior: Annotated[str, typer.Option(help="Known-inferior candidates: repair, prune or off.")] = "repair",
    confidence: Annotated[float, typer.Option(min=0.0, help="Standard deviations a prediction must clear to prune.")
                          ] = 2.0,
    capacity: Annotated[str, typer.Option(help="Capacity an alternative must keep: macs or params.")] = "macs",
    dominated: Annotated[bool, typer.Option("--dominated/--no-dominated",
                                            help="Prune a candidate a measured trial dominates even at its best "
                                                 "(with accuracy: trained before it is measured).")] = True,
    dominated_confidence: Annotated[float, typer.Option(min=0.0, help="Standard deviations the dominated rule's "
                                                                      "optimistic reading takes.")] = 3.0,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs of the survivors.")] = 3,
    jobs: Annotated[int, typer.Option(min=1, help="Trials in flight (and TensorFlow worker processes).")] = 2,
    agent: Annotated[Optional[list[str]], typer.Option(help="HOST:PORT or TOKEN@HOST:PORT of an agent (repeat); "
                                                            "default: a local agent with virtual boards.")] = None,
    token: Annotated[Optional[str], typer.Option(help=f"Bearer token of the agents (or ${TOKEN_ENV}).")] = None,
    token_file: Annotated[Optional[Path], typer.Option(help="A file holding the agents' bearer token.")] = None,
    tls_root: Annotated[Optional[Path], typer.Option(help="Root certificate of the agents' TLS.")] = None,
    boards: Annotated[int, typer.Option(min=1, help="Virtual boards of the local agent.")] = 1,
    store: Annotated[Optional[str], typer.Option(help="Measurement store: SQLite path or postgresql:// URL "
                                                      "(default $MCU_NAS_STORE or measurements.sqlite).")] = None,
    placement: Annotated[str, typer.Option(help="Where the weights live on the board: flash or sram (default: "
                                                "the runtime's).")] = "",
    report: Annotated[Optional[Path], typer.Option(help="Write the HTML report here at the end.")] = None,
    validate_front: Annotated[int, typer.Option(min=0, help="Validate the final front on a virtual board with this "
                                                            "many test samples (0: no).")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
    quiet: Annotated[bool, typer.Option(help="No line per trial.")] = False,
) -> None:
    """Search a space of models for a target, measured on boards, pruned and repaired by the cost model."""
    from nas import storage as storage_mod
    from nas.adapter import Lab, default_store_url
    from nas.datasets import load
    from nas.objectives import Budgets, parse_objectives
    from nas.samplers import check_sampler
    from nas.search import Search, SearchConfig, SearchError, counted
    from nas.spaces import get_space

    storage = storage or storage_mod.DEFAULT_STORAGE
    created = storage_mod.new_sqlite_files(storage, store or default_store_url())
    with user_errors(*_input_errors()), _remove_on_error(created):
        objs = parse_objectives(objectives)
        budgets = Budgets.parse(max_latency, max_energy, max_flash, max_ram)
        check_sampler(sampler, len(objs))
        if inferior not in ("repair", "prune", "off"):
            raise CliError(f"--inferior must be repair, prune or off, not {inferior!r}")
        if capacity not in ("macs", "params"):
            raise CliError(f"--capacity must be macs or params, not {capacity!r}")
        if placement not in ("", "flash", "sram"):
            raise CliError(f"--placement must be flash or sram, not {placement!r}")
        from costmodel.boards import get_board

        board = get_board(target)
        search_space = get_space(space, space_module)
        dataset = load(data)
        config = SearchConfig(study=study, storage=storage, trials=trials, target=board.name, space=search_space,
                              space_module=space_module, dataset=dataset,
                              dataset_spec=None if data == "digits" else str(Path(data).resolve()), objectives=objs,
                              budgets=budgets, sampler=sampler, seed=seed, cost_model_rules=cost_model,
                              reuse=reuse, inferior=inferior, confidence=confidence, capacity=capacity,
                              dominated=dominated, dominated_confidence=dominated_confidence, epochs=epochs,
                              jobs=jobs)
        rdb = storage_mod.open_storage(storage)
        stored = storage_mod.study_meta(rdb, study)
        if stored:
            storage_mod.check_join(study, stored, config.identity())
        elif stored is not None and storage_mod.trial_count(rdb, study):
            raise CliError(f"study {study!r} exists and is not a nas search; choose another --study")
        token_text = _token(token, token_file)
        lab = Lab(board.name, store or default_store_url(), agents=agent or (), token=token_text,
                  tls_root=str(tls_root) if tls_root else None, boards=boards, placement=placement)
    search = None
    progress = None
    try:
        search = Search(config, lab)
        opened = search.open_study(rdb)
        done = sum(1 for t in opened.get_trials(deepcopy=False) if counted(t))
        if not quiet:
            where = f"{len(agent)} agent(s)" if agent else f"a local agent with {boards} virtual board(s)"
            stderr.print(f"nas: study {study!r} in {storage_mod.display(storage)}: {done} of {trials} trials done; "
                         f"{dataset.describe()}; measuring on {board.name} through {where}", markup=False)
        progress = _Progress(trials, done, quiet)
        search.on_trial = progress
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            summary = search.run()
        except SearchError as exc:
            progress.close()
            error_line(exc)
            raise SystemExit(1) from None
        progress.close()
        if validate_front:
            from nas.validate import validate_front as run_validation

            summary.front = run_validation(search, summary.front, validate_front)
        if report is not None:
            from nas.report import write_report

            write_report(opened, report)
    except KeyboardInterrupt:
        if progress is not None:
            progress.close()
        error_line("interrupted: the study is saved; run the same command again to resume")
        raise SystemExit(130) from None
    finally:
        if search is not None:
            search.close()
        lab.close()
    if json:
        print_json(versioned(summary.to_dict()))
    elif not quiet:
        _print_summary(summary, config)
        if report is not None:
            stderr.print(f"nas: wrote {report}", markup=False)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _print_summary(summary, config) -> None:
    d = summary.to_dict()
    rows = [[k, v] for k, v in sorted(d["outcomes"].items())]
    rows += [[f"rule {k}", v] for k, v in sorted(d["rules"].items())]
    rows += [["measurements", d["measurements"]], ["measurements found in the store", d["measurements_from_store"]],
             ["trained", d["trained"]], ["candidates per minute (after start-up)", d["candidates_per_minute"]],
             ["seconds (of which start-up)", f"{d['seconds']} ({d['startup_seconds']})"]]
    stdout.print(table(f"study {config.study}: this worker's {d['trials_this_worker']} trials", ["", "count"], rows))
    names = [o.name for o in config.objectives]
    front_rows = []
    for f in d["pareto_front"]:
        front_rows.append([f["trial"], *[o.show(f["values"][o.name]) for o in config.objectives],
                           " ".join(f"{k}={v}" for k, v in f["params"].items())])
    stdout.print(table("Pareto front", ["trial", *names, "parameters"], front_rows, right_align=["trial", *names]))


@app.command("report")
def report_command(
    study: Annotated[str, typer.Argument(help="The study to report.")],
    storage: Annotated[str, typer.Option(help="Optuna RDB URL of the study.")] = "",
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    json: Annotated[bool, typer.Option("--json", help="Print the report's figures as JSON on stdout.")] = False,
) -> None:
    """Write one self-contained HTML report of a study: front, cost-model error, rules, per-layer latency."""
    from nas import storage as storage_mod
    from nas.report import report_data, write_report

    with user_errors(*_input_errors(), OSError):
        s = storage_mod.load_study(storage or storage_mod.DEFAULT_STORAGE, study)
        data = write_report(s, out)
    if json:
        print_json(versioned(report_data(s, summary_only=True) | {"out": str(out)}))
    else:
        stderr.print(f"nas: wrote {out} ({data['trials']} trials)", markup=False)


@app.command("spaces")
def spaces_command(
    space_module: Annotated[Optional[str], typer.Option(help="A module or .py file with more search spaces.")] = None,
    json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The search spaces this installation knows."""
    from nas import spaces

    with user_errors(spaces.SpaceError):
        if space_module:
            spaces.load_module(space_module)
    rows = [[n, spaces.get_space(n).description or type(spaces.get_space(n)).__doc__.splitlines()[0]]
            for n in spaces.names()]
    if json:
        print_json(versioned({"spaces": [{"name": n, "description": d} for n, d in rows]}))
        return
    stdout.print(table("search spaces", ["name", "description"], rows))


@app.command("convert")
def convert_command(
    model: Annotated[Path, typer.Argument(help="A Keras model (.keras or .h5).")],
    out: Annotated[Optional[Path], typer.Option(help="Folder for the three .tflite files (default: none written).")
                   ] = None,
    data: Annotated[Optional[str], typer.Option(help="Calibrate int8 on x_train of this dataset (digits or .npz); "
                                                     "default: random inputs.")] = None,
    json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The paper's stage C: the model as float32, dynamic-range and full int8, and the size of each."""
    from nas.datasets import load

    with user_errors(*_input_errors()):
        keras_model = _load_keras(model)
        dataset = load(data) if data else None
    converted = _convert_three(model, keras_model, dataset)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for c in converted:
            (out / f"{model.stem}-{c.quantization}.tflite").write_bytes(c.tflite)
    base = converted[0].bytes
    if json:
        print_json(versioned({"model": str(model), "formats": [{"quantization": c.quantization, "bytes": c.bytes,
                                                                  "relative": c.bytes / base} for c in converted]}))
        return
    stdout.print(table(f"{model.name}: converted", ["quantization", "bytes", "of float32"],
                       [[c.quantization, f"{c.bytes:,}", f"{c.bytes / base:.1%}"] for c in converted],
                       right_align=["bytes", "of float32"]))


def _load_keras(path: Path):
    from costmodel.convert import check_keras_file, check_static_inputs, load_keras
    from costmodel.errors import ModelError

    try:
        check_keras_file(path)
        try:
            model = load_keras(path)
        except Exception as exc:  # noqa: BLE001 (Keras raises many kinds for a bad file)
            raise ModelError(f"cannot load the Keras model: {str(exc).strip().splitlines()[0][:300]}") from None
        check_static_inputs(model)
        return model
    except ModelError as exc:
        raise CliError(f"{path}: {exc}") from None


def _convert_three(path: Path, keras_model, dataset):
    from costmodel.convert import converter_message
    from nas.evaluate import convert_three_ways

    try:
        return convert_three_ways(keras_model, dataset.x_train if dataset is not None else None)
    except Exception as exc:  # noqa: BLE001 (ConverterError, ValueError, ...)
        error_line(f"{path}: TensorFlow cannot convert it: {converter_message(exc)}")
        raise SystemExit(2) from None


@app.command("evaluate")
def evaluate_command(
    model: Annotated[Path, typer.Argument(help="A Keras model (.keras/.h5: evaluated as float32, dynamic-range and "
                                               "int8) or a .tflite.")],
    data: Annotated[str, typer.Option(help="Dataset: digits or an .npz with x_test, y_test (and x_train).")],
    json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The paper's stage B: host accuracy of the model in each format, with the TFLite interpreter."""
    from costmodel.convert import KERAS_SUFFIXES
    from costmodel.errors import ModelError
    from costmodel.tflite import read_model_file
    from nas.datasets import load
    from nas.evaluate import Converted, accuracy

    with user_errors(*_input_errors()):
        dataset = load(data)
        if model.suffix.lower() in KERAS_SUFFIXES:
            converted = _convert_three(model, _load_keras(model), dataset)
        else:
            try:
                converted = [Converted("as given", read_model_file(model))]
            except ModelError as exc:
                raise CliError(f"{model}: {exc}") from None
        results = []
        for c in converted:
            try:
                results.append((c, accuracy(c.tflite, dataset.x_test, dataset.y_test)))
            except ValueError as exc:
                raise CliError(f"{model} ({c.quantization}) on {dataset.name}: {exc}") from None
    if json:
        print_json(versioned({"model": str(model), "dataset": dataset.name, "samples": len(dataset.x_test),
                              "formats": [{"quantization": c.quantization, "bytes": c.bytes, "accuracy": a}
                                          for c, a in results]}))
        return
    stdout.print(table(f"{model.name} on {dataset.name} ({len(dataset.x_test)} test samples, host interpreter)",
                       ["quantization", "bytes", "accuracy"],
                       [[c.quantization, f"{c.bytes:,}", f"{a:.2%}"] for c, a in results],
                       right_align=["bytes", "accuracy"]))


def main() -> None:
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    run_app(app)


if __name__ == "__main__":
    main()
