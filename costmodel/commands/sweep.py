"""``costmodel sweep``: measure benchmark networks on boards, through agents, into the measurement store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Callable, Optional, Sequence

import typer

from costmodel.boards import CatalogueError, get_board
from costmodel.console import CliError, print_json, stderr, stdout, table, user_errors


@dataclass
class SweepReport:
    planned: int = 0
    skipped: int = 0
    measured: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list = None

    def to_dict(self) -> dict:
        return {"planned": self.planned, "already_measured": self.skipped, "measured": self.measured,
                "failed": self.failed, "seconds": round(self.seconds, 1), "errors": self.errors or []}


def model_cache():
    from measure_agent.firmware_build import cache_dir

    return cache_dir("sweep-models")


def plan_jobs(specs, targets: Sequence[str], variants: Sequence[str], *, float_abi: str = "", opt_level: str = "",
              placement: str = "", repetitions: int = 0, cache=None,
              on_convert: Callable[[int, int], None] | None = None, workers: int = 1) -> list:
    """One :class:`~measure_agent.agents.MeasureJob` per network x target x runtime variant (a variant the board
    cannot run is left out); ``tag`` = (spec, sha256)."""
    import hashlib

    from costmodel.sweeps import tflite_bytes
    from measure_agent.agents import MeasureJob

    from costmodel.sweeps import convert_all

    cache = model_cache() if cache is None else cache
    jobs = []
    specs = list(specs)
    if workers > 1:
        convert_all(specs, cache, workers, on_convert)
    for n, spec in enumerate(specs):
        data = tflite_bytes(spec, cache)
        sha = hashlib.sha256(data).hexdigest()
        for target in targets:
            board = get_board(target)
            for variant in variants or [""]:
                if variant and variant not in board.runtime_variants():
                    continue
                jobs.append(MeasureJob(data, board.name, runtime_variant=variant, float_abi=float_abi,
                                       opt_level=opt_level, placement=placement, repetitions=repetitions,
                                       tag=(spec, sha)))
        if on_convert and workers <= 1:
            on_convert(n + 1, len(specs))
    return jobs


def run_jobs(jobs, store, pool, *, source: str = "", on_progress: Callable[[object], None] | None = None
             ) -> SweepReport:
    """Measure the jobs whose ids the store lacks; store each result as it arrives (resumable)."""
    from measure_agent.results import result_rows

    report = SweepReport(errors=[])
    start = time.monotonic()
    report.planned = len(jobs)
    done = store.measured_ids(j.request_id for j in jobs)
    todo = [j for j in jobs if j.request_id not in done]
    report.skipped = len(jobs) - len(todo)

    def on_result(outcome) -> None:
        spec, sha = outcome.job.tag
        if outcome.ok:
            model_row, rows = result_rows(outcome.result, model_name=spec.name, sweep=spec.sweep,
                                          spec=spec.to_dict(), model_sha256=sha, source=source or outcome.agent)
            store.add(model_row, rows)
            report.measured += 1
        else:
            report.failed += 1
            report.errors.append(f"{spec.name} on {outcome.job.target} {outcome.job.runtime_variant}: {outcome.error}")
        if on_progress:
            on_progress(outcome)

    pool.measure_many(todo, on_result=on_result)
    report.seconds = time.monotonic() - start
    return report


def open_pool(agents: Sequence[str], token: Optional[str], tls_root, targets: Sequence[str], boards: int):
    from measure_agent.agents import AgentAddress, AgentPool

    if agents:
        import os

        token = token or os.environ.get("MEASURE_AGENT_TOKEN")
        try:
            addresses = [AgentAddress.parse(a, token, str(tls_root) if tls_root else None) for a in agents]
        except ValueError as exc:
            raise CliError(str(exc)) from None
        pool = AgentPool(addresses)
        missing = [t for t in targets if t.lower() not in pool.boards()]
        if missing:
            pool.close()
            raise CliError(f"no agent answers with a board of {', '.join(missing)}")
        return pool
    return AgentPool.local(list(targets), boards_per_target=boards)


def register(app: typer.Typer) -> None:
    @app.command("sweep")
    def sweep_command(
        names: Annotated[Optional[list[str]], typer.Argument(
            help="Sweeps: dense, conv, dwconv, pool, add, random (default: all).")] = None,
        target: Annotated[list[str], typer.Option(help="Board from the catalogue (repeatable).")] = ["NUCLEO-L496ZG"],
        variant: Annotated[Optional[list[str]], typer.Option(
            help="Runtime variant simd/reference (repeatable; default: the board's default).")] = None,
        size: Annotated[str, typer.Option(help="small (a few dozen networks) or full (for fitting).")] = "small",
        quantization: Annotated[list[str], typer.Option(help="int8, float32 or dynamic (repeatable).")] = ["int8"],
        store: Annotated[Optional[str], typer.Option(help="Store: SQLite path or postgresql:// URL "
                                                          "(default $MCU_NAS_STORE or measurements.sqlite).")] = None,
        agent: Annotated[Optional[list[str]], typer.Option(
            help="HOST:PORT or TOKEN@HOST:PORT of an agent (repeatable); default: a local agent with virtual "
                 "boards.")] = None,
        token: Annotated[Optional[str], typer.Option(help="Bearer token for --agent (or $MEASURE_AGENT_TOKEN).")] = None,
        tls_root: Annotated[Optional[str], typer.Option(help="Root certificate of the agents' TLS.")] = None,
        boards: Annotated[int, typer.Option(help="Virtual boards per target of the local agent.")] = 2,
        float_abi: Annotated[str, typer.Option(help="hard or soft.")] = "",
        opt: Annotated[str, typer.Option(help="-Os, -O2 or -O3.")] = "",
        placement: Annotated[str, typer.Option(help="Where weights live: flash or sram (default: the agent's).")] = "",
        repetitions: Annotated[int, typer.Option(help="Runs per model (0: the agent's default).")] = 0,
        limit: Annotated[int, typer.Option(help="Measure at most this many networks per sweep (0: all).")] = 0,
        jobs: Annotated[int, typer.Option(help="Processes converting networks (TensorFlow, seconds each).")] = 1,
        json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Measure benchmark networks (one hyper-parameter varied) into the store; resumable."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from costmodel.commands import default_store
        from costmodel.store import StoreError, open_store
        from costmodel.sweeps import SWEEPS, sweep
        from measure_agent.client import AgentError
        from measure_agent.settings import FirmwareSettings, SettingsError

        with user_errors(CatalogueError, StoreError, SettingsError, AgentError, ValueError, OSError):
            chosen = list(names or SWEEPS)
            unknown = [n for n in chosen if n not in SWEEPS]
            if unknown:
                raise CliError(f"unknown sweep {', '.join(unknown)}; sweeps: {', '.join(SWEEPS)}")
            if size not in ("small", "full"):
                raise CliError("--size must be small or full")
            board_names = [get_board(t).name for t in target]
            for name in board_names:  # check the settings before anything runs
                for v in variant or [""]:
                    FirmwareSettings.for_board(get_board(name), v, float_abi, opt)
            specs = []
            for n in chosen:
                nets = sweep(n, size)
                specs += nets[:limit] if limit else nets
            specs = [s.with_quantization(q) for q in quantization for s in specs]
            db = open_store(store or default_store())
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=stderr, transient=True) as bar:
                task = bar.add_task("converting", total=len(specs))
                planned = plan_jobs(specs, board_names, variant or [], float_abi=float_abi, opt_level=opt,
                                    placement=placement, repetitions=repetitions, workers=jobs,
                                    on_convert=lambda done, total: bar.update(task, completed=done))
                bar.update(task, description="measuring", completed=0,
                           total=len(planned) - len(db.measured_ids(j.request_id for j in planned)))
                pool = open_pool(agent or [], token, tls_root, board_names, boards)
                try:
                    report = run_jobs(planned, db, pool, on_progress=lambda o: bar.advance(task))
                finally:
                    pool.close()
            counts = db.counts()
            db.close()
        summary = {**report.to_dict(), "store": store or default_store(), "store_rows": counts}
        if json:
            print_json(summary)
        else:
            rows = [["networks x targets x variants", report.planned], ["already in the store", report.skipped],
                    ["measured now", report.measured], ["failed", report.failed],
                    ["time", f"{report.seconds:.0f} s"], ["store", f"{summary['store']} ({counts['models']} models, "
                                                                   f"{counts['layers']} layer rows)"]]
            stdout.print(table("sweep", ["", "value"], rows))
            for e in report.errors[:10]:
                stderr.print(f"failed: {e}")
        if report.failed and not report.measured and not report.skipped:
            raise SystemExit(1)
