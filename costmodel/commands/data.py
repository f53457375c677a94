"""``costmodel data export/import`` (CSV, Parquet) and ``costmodel plot``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel.console import CliError, print_json, stderr, stdout, table, user_errors


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                           help="Move the measurement store's rows in and out as CSV or Parquet.")
    app.add_typer(data_app, name="data")

    @data_app.command("export")
    def export_command(
        out: Annotated[Path, typer.Argument(help="Output file: .csv or .parquet.")],
        store: Annotated[Optional[str], typer.Option(help="Store: SQLite path or postgresql:// URL.")] = None,
        what: Annotated[str, typer.Option(help="layers (one row per layer) or models.")] = "layers",
        target: Annotated[Optional[str], typer.Option(help="Only rows of this target.")] = None,
        sweep: Annotated[Optional[str], typer.Option(help="Only rows of this sweep.")] = None,
    ) -> None:
        """Write the store's layer (or model) rows to a CSV or Parquet file."""
        from costmodel.commands import default_store
        from costmodel.store import StoreError, open_store

        with user_errors(StoreError, OSError):
            if what not in ("layers", "models"):
                raise CliError("--what must be layers or models")
            if out.suffix.lower() not in (".csv", ".parquet"):
                raise CliError(f"{out}: use a .csv or .parquet file")
            url = store or default_store()
            if "://" not in url and not Path(url).exists():
                raise CliError(f"no measurement store at {url}")
            with open_store(url, create=False) as db:
                n = db.export(out, what, **{k: v for k, v in (("target", target), ("sweep", sweep)) if v})
        stderr.print(f"wrote {n} {what} rows to {out}")

    @data_app.command("import")
    def import_command(
        file: Annotated[Path, typer.Argument(help="A .csv or .parquet file of layer (or model) rows.")],
        store: Annotated[Optional[str], typer.Option(help="Store: SQLite path or postgresql:// URL.")] = None,
        what: Annotated[str, typer.Option(help="layers or models.")] = "layers",
    ) -> None:
        """Append rows from a file (e.g. a published per-layer table); rows already stored are skipped. Layer rows
        need target, op, macs, clock_hz and cycles or latency_s."""
        from costmodel.commands import default_store
        from costmodel.store import StoreError, open_store, read_frame

        with user_errors(StoreError, OSError):
            if what not in ("layers", "models"):
                raise CliError("--what must be layers or models")
            read_frame(file)  # a bad file fails before the store is created
            with open_store(store or default_store()) as db:
                n = db.import_file(file, what)
        stderr.print(f"added {n} {what} rows from {file}")

    @app.command("plot")
    def plot_command(
        out: Annotated[Path, typer.Option(help="Folder for the PNG and HTML files.")] = Path("plots"),
        store: Annotated[Optional[str], typer.Option(help="Store: SQLite path or postgresql:// URL.")] = None,
        target: Annotated[Optional[list[str]], typer.Option(help="Targets (default: all in the store).")] = None,
        sweep: Annotated[Optional[list[str]], typer.Option(help="Sweeps (default: conv, dense, dwconv, pool, add).")] = None,
        json: Annotated[bool, typer.Option("--json", help="Print the gains table as JSON.")] = False,
    ) -> None:
        """Latency vs MACs and δ vs the swept parameter by alignment class (figures 4/5), and the gains table."""
        from costmodel.commands import default_store
        from costmodel.plots import SWEEP_LAYERS, gains_table, plot_sweep
        from costmodel.store import StoreError, open_store

        with user_errors(StoreError, OSError, ValueError):
            url = store or default_store()
            if "://" not in url and not Path(url).exists():
                raise CliError(f"no measurement store at {url}")
            with open_store(url, create=False) as db:
                layers = db.layers()
            if layers.empty:
                raise CliError(f"store {url} has no measurements")
            targets = target or sorted(layers["target"].unique())
            written = []
            for t in targets:
                for s in sweep or SWEEP_LAYERS:
                    written += plot_sweep(layers, s, t, out)
            gains = gains_table(layers[layers["target"].isin(targets)])
            if not gains.empty:
                gains.to_csv(out / "gains.csv", index=False)
                written.append(out / "gains.csv")
        if json:
            print_json({"files": [str(p) for p in written], "gains": gains.to_dict("records")})
            return
        for p in written:
            stderr.print(f"wrote {p}")
        if not gains.empty:
            def g(v):
                return "-" if v is None or v != v else f"{v:.2f}x"

            rows = [[r["target"], r["layer"], r["n"], f"{r['delta_reference_ns']:.1f}", f"{r['delta_simd_ns']:.1f}",
                     g(r["G"]), g(r["G_odd"]), g(r["G_even"]), g(r["G_%4"])] for r in gains.to_dict("records")]
            stdout.print(table("gains of the SIMD kernels (δ reference / δ simd, median over the sweep layers)",
                               ["target", "layer", "n", "δ ref ns/MAC", "δ simd ns/MAC", "G", "G odd", "G even", "G %4"],
                               rows, right_align=("n", "δ ref ns/MAC", "δ simd ns/MAC", "G", "G odd", "G even", "G %4")))
        elif not written:
            raise CliError("nothing to plot: the store has no sweep rows for these targets")
