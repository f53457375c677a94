"""``costmodel fit``, ``score``, ``table``, ``predict``, ``suggest``: the latency model from the command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel.boards import CatalogueError
from costmodel.console import CliError, print_json, stderr, stdout, table, thousands, user_errors

MODEL_FILE_HELP = "A fitted latency model (costmodel fit --out); default $MCU_NAS_LATENCY_MODEL, else fitted from the store."


def _errors():
    from costmodel.errors import ModelError
    from costmodel.latency_model import CostModelError
    from costmodel.store import StoreError

    return (CatalogueError, CostModelError, StoreError, ModelError, OSError)


def _store_url(store: Optional[str]) -> str:
    from costmodel.commands import default_store

    return store or default_store()


def _fit_from_store(url: str, target: Optional[str] = None, min_rows: int = 6):
    from costmodel.latency_model import LatencyModel
    from costmodel.store import open_store

    if "://" not in url and not Path(url).exists():
        raise CliError(f"no measurement store at {url}: measure with `costmodel sweep --target BOARD` first")
    with open_store(url, create=False) as db:
        layers = db.layers(target=target) if target else db.layers()
        models = db.models(target=target) if target else db.models()
    if layers.empty:
        what = f" for {target}" if target else ""
        known = ""
        if target:
            with open_store(url, create=False) as db:
                targets = db.targets()
            known = f" (it has: {', '.join(targets)})" if targets else " (it is empty)"
        raise CliError(f"store {url} has no measurements{what}{known}; run `costmodel sweep --target "
                       f"{target or 'BOARD'} --store {url}`")
    return LatencyModel(min_rows=min_rows).fit(layers, models=models)


def load_latency_model(model_file: Optional[Path], store: Optional[str], target: Optional[str] = None):
    """The model of ``--model-file`` (or $MCU_NAS_LATENCY_MODEL), else one fitted from the store now."""
    from costmodel.commands import MODEL_ENV
    from costmodel.latency_model import load_model

    path = model_file or (Path(os.environ[MODEL_ENV]) if os.environ.get(MODEL_ENV) else None)
    if path is not None:
        return load_model(path)
    url = _store_url(store)
    if "://" not in url and not Path(url).exists():
        raise CliError(f"no latency model: give --model-file F, or measure with `costmodel sweep --target "
                       f"{target or 'BOARD'}` (store {url}) and fit with `costmodel fit --out latency-model.json`")
    model = _fit_from_store(url, target)
    stderr.print(f"fitted a latency model from {url} ({model.n_rows_} layer rows); save one with `costmodel fit "
                 f"--out F` to skip this")
    return model


def _settings(variant: str, float_abi: str, opt: str, placement: str) -> dict:
    s = {"runtime_variant": variant, "float_abi": float_abi, "opt_level": opt, "placement": placement}
    if opt and not opt.startswith("-"):
        s["opt_level"] = "-" + opt
    return {k: v for k, v in s.items() if v}


def _load_analysis(model: Path, quantization: str = "int8"):
    from costmodel.analysis import analyze
    from costmodel.cli import load_graph
    from costmodel.errors import ModelError

    graph = load_graph(model, quantization)
    try:
        return analyze(graph)
    except ModelError as exc:
        raise CliError(f"{model}: {exc}") from None


def _source_text(p) -> str:
    return f"table {p.key} (n={p.n_rows})" if p.source == "table" else f"regressor ({p.key})"


def register(app: typer.Typer) -> None:
    @app.command("fit")
    def fit_command(
        out: Annotated[Path, typer.Option(help="Write the fitted model here (JSON).")],
        store: Annotated[Optional[str], typer.Option(help="Store: SQLite path or postgresql:// URL.")] = None,
        target: Annotated[Optional[str], typer.Option(help="Only rows of this target.")] = None,
        min_rows: Annotated[int, typer.Option(help="Rows a table key needs before the table predicts it.")] = 6,
        json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Fit the δ table and regressor from the store's measurements; write them to a model file."""
        with user_errors(*_errors()):
            if target:
                from costmodel.boards import get_board

                try:
                    target = get_board(target).name
                except CatalogueError:
                    pass  # rows of a board outside the catalogue (imported from another lab) may be fitted too
            model = _fit_from_store(_store_url(store), target, min_rows)
            model.save(out)
        contexts = model.contexts()
        if json:
            print_json({"out": str(out), "rows": model.n_rows_, "contexts": contexts})
            return
        rows = [[c["target"], c["runtime_variant"], c["float_abi"], c["opt_level"], c["placement"] or "-",
                 c["board_kind"] + (f" {c['board_model_version']}" if c["board_model_version"] else ""),
                 c["firmware_build_id"][:12], c["n_rows"], c["keys"], "yes" if c["regressor"] else "no"]
                for c in contexts]
        stdout.print(table(f"latency model: {model.n_rows_} layer rows -> {out}",
                           ["target", "variant", "float", "opt", "placement", "board", "firmware", "rows", "keys",
                            "regressor"], rows, right_align=("rows", "keys")))

    @app.command("score")
    def score_command(
        model_file: Annotated[Optional[Path], typer.Option(help=MODEL_FILE_HELP)] = None,
        store: Annotated[Optional[str], typer.Option(help="Store with the measurements to score on.")] = None,
        target: Annotated[Optional[str], typer.Option(help="Only rows of this target.")] = None,
        sweep: Annotated[Optional[str], typer.Option(help="Only rows of this sweep (e.g. random).")] = None,
        json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Errors of a latency model on measured layers and whole models: R², median / p95 / p99 APE."""
        from costmodel.store import open_store

        with user_errors(*_errors()):
            model = load_latency_model(model_file, store, target)
            url = _store_url(store)
            with open_store(url, create=False) as db:
                filters = {k: v for k, v in (("target", target), ("sweep", sweep)) if v}
                layers, models = db.layers(**filters), db.models(**filters)
            if layers.empty:
                raise CliError(f"store {url} has no measurements for {filters or 'scoring'}")
            result = {"r2": model.score(layers), **model.errors(layers, models)}
        if json:
            print_json(result)
            return
        rows = [["R² (layer latency)", f"{result['r2']:.5f}"]]
        for name, s in [("layers", result["layers"]), *[(f"layers, {k}", v) for k, v in result["by_source"].items()],
                        ("whole models", result.get("models", {"n": 0}))]:
            if s.get("n"):
                rows.append([name, f"n={s['n']}: median {s['median']:.2f} %, p95 {s['p95']:.2f} %, p99 "
                                   f"{s['p99']:.2f} %, within ±5 %: {s['within_5pct']:.1%}"])
        stdout.print(table("absolute percentage error of latency", ["", "value"], rows))

    @app.command("table")
    def table_command(
        model_file: Annotated[Optional[Path], typer.Option(help=MODEL_FILE_HELP)] = None,
        store: Annotated[Optional[str], typer.Option(help="Store to fit from when no model file is given.")] = None,
        target: Annotated[Optional[str], typer.Option(help="Board.")] = None,
        variant: Annotated[str, typer.Option(help="Runtime variant.")] = "",
        op: Annotated[Optional[str], typer.Option(help="Only this op, e.g. CONV_2D.")] = None,
        json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """The δ table: per key the rows, per-layer overhead, δ per MAC, other terms, spread, effective δ."""
        with user_errors(*_errors()):
            model = load_latency_model(model_file, store, target)
            settings = {"runtime_variant": variant} if variant else {}
            frame = model.table(target=target, op=op.upper() if op else None, **settings)
        if json:
            print_json(model.table_json(target=target, op=op.upper() if op else None, **settings))
            return
        if frame.empty:
            raise SystemExit("no table entries for that selection")
        for ctx_values, group in frame.groupby(["target", "runtime_variant", "float_abi", "opt_level", "placement",
                                                "board_model_version", "firmware_build_id"], sort=True):
            t, v, fa, o, pl, bmv, fw = ctx_values
            clock = int(group["clock_hz"].iloc[0])
            terms = [c for c in group.columns if c.startswith("cycles_per_")]
            rows = [[r["key"], r["n"], thousands(r["overhead_cycles"]), f"{r['delta_ns_per_mac']:.2f}",
                     _num(r["effective_delta_ns_per_mac"], "{:.2f}"),
                     # the kernel's other work terms (which ones depends on the kernel: features.KERNEL_TERMS)
                     ", ".join(f"{c[len('cycles_per_'):]} {r[c]:.2f}" for c in terms if r[c] and r[c] == r[c]),
                     _num(None if r["spread"] is None else r["spread"] * 100, "{:.2f} %"),
                     "" if r["usable"] else "regressor"] for r in group.to_dict("records")]
            stdout.print(table(f"δ table: {t} {v} {fa}-float {opt_text(o)} {clock / 1e6:g} MHz, placement "
                               f"{pl or '-'}, board model {bmv or 'real'}, firmware {fw[:12]}",
                               ["key", "n", "overhead cyc", "δ ns/MAC", "eff. δ ns/MAC", "cycles per other term",
                                "spread", "note"], rows,
                               right_align=("n", "overhead cyc", "δ ns/MAC", "eff. δ ns/MAC", "spread")))

    @app.command("predict")
    def predict_command(
        model: Annotated[Path, typer.Argument(help="A .tflite model (or .keras/.h5, converted first).")],
        target: Annotated[str, typer.Option(help="Board from the catalogue.")],
        model_file: Annotated[Optional[Path], typer.Option(help=MODEL_FILE_HELP)] = None,
        store: Annotated[Optional[str], typer.Option(help="Store to fit from when no model file is given.")] = None,
        variant: Annotated[str, typer.Option(help="Runtime variant (default: the board's).")] = "",
        float_abi: Annotated[str, typer.Option(help="hard or soft.")] = "",
        opt: Annotated[str, typer.Option(help="-Os, -O2 or -O3.")] = "",
        placement: Annotated[str, typer.Option(help="flash or sram.")] = "",
        quantization: Annotated[str, typer.Option(help="For Keras models: int8, float32 or dynamic.")] = "int8",
        json: Annotated[bool, typer.Option("--json", help="Print JSON (the schema of measure-agent measure "
                                                          "--json, plus source and uncertainty).")] = False,
    ) -> None:
        """Predicted per-layer and total latency and energy, with each prediction's source and uncertainty."""
        from costmodel.boards import get_board

        with user_errors(*_errors()):
            board_name = get_board(target).name
            analysis = _load_analysis(model, quantization)
            lm = load_latency_model(model_file, store, board_name)
            pred = lm.predict_model(analysis, target=board_name, **_settings(variant, float_abi, opt, placement))
        if json:
            from measure_agent.results import measure_schema

            payload = measure_schema(pred.to_dict())
            payload["model"] = str(model)
            print_json(payload)
            return
        c = pred.context
        rows = []
        for layer, p in zip(analysis.layers, pred.layers):
            delta = p.latency_s / p.macs * 1e9 if p.macs else None
            rows.append([p.index, p.op, thousands(p.macs), thousands(layer.params), layer.alignment or "-",
                         f"{p.latency_s * 1e3:.3f}", f"± {p.uncertainty * 100:.1f} %",
                         f"{p.energy_j * 1e6:.2f}" if p.energy_j is not None else "-",
                         f"{delta:.2f}" if delta is not None else "-", _source_text(p)])
        stdout.print(table(
            f"{analysis.name} predicted on {c['target']} ({c['board_kind']}, {c['runtime_variant']}, {c['float_abi']}-"
            f"float, {c['opt_level']}, {int(c['clock_hz']) / 1e6:g} MHz, placement {c['placement'] or '-'})",
            ["#", "op", "MACs", "params", "align", "latency ms", "±", "energy uJ", "δ ns/MAC", "source"], rows,
            right_align=("#", "MACs", "params", "latency ms", "±", "energy uJ", "δ ns/MAC")))
        energy = f"{pred.energy_j * 1e6:.1f} uJ (energy from {pred.energy_source})" if pred.energy_j is not None \
            else "energy unknown"
        stdout.print(f"total: {pred.latency_s * 1e3:.3f} ms ± {pred.uncertainty * 100:.1f} % (model-level overhead "
                     f"{pred.overhead_s * 1e6:.1f} us), {energy}")

    @app.command("suggest")
    def suggest_command(
        model: Annotated[Path, typer.Argument(help="A .tflite model (or .keras/.h5).")],
        target: Annotated[str, typer.Option(help="Board from the catalogue.")],
        model_file: Annotated[Optional[Path], typer.Option(help=MODEL_FILE_HELP)] = None,
        store: Annotated[Optional[str], typer.Option(help="Store to fit from when no model file is given.")] = None,
        variant: Annotated[str, typer.Option(help="Runtime variant (default: the board's).")] = "",
        float_abi: Annotated[str, typer.Option(help="hard or soft.")] = "",
        opt: Annotated[str, typer.Option(help="-Os, -O2 or -O3.")] = "",
        placement: Annotated[str, typer.Option(help="flash or sram.")] = "",
        threshold: Annotated[float, typer.Option(help="Smallest gain to show, as a fraction of the model's latency.")] = 0.005,
        keep: Annotated[str, typer.Option(help="Keep at least the same 'macs' or 'params'.")] = "macs",
        max_step: Annotated[int, typer.Option(help="Change channels / filters / units by up to this much.")] = 4,
        top: Annotated[int, typer.Option(help="Show at most this many alternatives.")] = 10,
        json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Faster parametrizations with at least the same MACs: is this model known-inferior?"""
        from costmodel.boards import get_board

        with user_errors(*_errors(), ValueError):
            if keep not in ("macs", "params"):
                raise CliError("--keep must be macs or params")
            board_name = get_board(target).name
            analysis = _load_analysis(model)
            lm = load_latency_model(model_file, store, board_name)
            settings = _settings(variant, float_abi, opt, placement)
            pred = lm.predict_model(analysis, target=board_name, **settings)
            alts = lm.alternatives(analysis, target=board_name, max_step=max_step, keep=keep, threshold=threshold,
                                   **settings)
            inferior = lm.is_inferior(analysis, target=board_name, max_step=max_step, keep=keep, **settings)
        if json:
            print_json({"model": str(model), "latency_s": pred.latency_s, "uncertainty": pred.uncertainty,
                        "known_inferior": inferior, "threshold": lm.inferior_threshold,
                        "alternatives": [a.to_dict() for a in alts[:top]]})
            return
        if not alts:
            stdout.print(f"{analysis.name}: no faster parametrization with at least the same {keep} found "
                         f"(predicted {pred.latency_s * 1e3:.3f} ms on {board_name})")
            return
        rows = [[a.layer_index, analysis.layers[a.layer_index].op if a.layer_index < len(analysis.layers) else "",
                 f"{a.parameter} {a.old} -> {a.new}", ", ".join(map(str, a.affected)),
                 f"{a.latency_before_s * 1e3:.3f} -> {a.latency_after_s * 1e3:.3f}",
                 f"{a.gain * 100:.1f} % ± {a.gain_uncertainty * 100:.1f} %", f"{a.layer_gain * 100:.1f} %",
                 f"{thousands(a.macs_before)} -> {thousands(a.macs_after)}", "/".join(a.sources)]
                for a in alts[:top]]
        stdout.print(table(f"{analysis.name} on {board_name}: predicted {pred.latency_s * 1e3:.3f} ms; faster "
                           f"parametrizations with at least the same {keep}",
                           ["#", "op", "change", "affected layers", "their latency ms", "model gain", "layer gain",
                            "MACs", "source"], rows, right_align=("#",)))
        verdict = "known-inferior" if inferior else "not known-inferior"
        stdout.print(f"{analysis.name} is {verdict} (threshold {lm.inferior_threshold * 100:.1f} % of the model's "
                     f"latency, beyond one standard deviation)")


def _num(value, fmt: str) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return fmt.format(value)


def opt_text(o: str) -> str:
    return o or "-"
