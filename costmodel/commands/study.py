"""``costmodel study``: the paper's experiments with one command (stages A-F), into one HTML report.

For each model (the built-in LeNet-5 and ResNet-20, and any ``.tflite`` / Keras model given) and board, every
configuration of :mod:`costmodel.study.configs` (float without and with FPU, dynamic-range, int8 with reference
and SIMD kernels, each at -Os and -O3) is measured through agents (a local agent with virtual boards by default,
``--agent`` for a bench) with the weights in flash, as deployed; results go to the measurement store, and a
measurement the store holds already is reused (request ids are content hashes of model and settings and, on
local virtual boards, of the firmware build and the timing model, so rows of older code are not reused). A model
that does not fit a board is "oversized" by the agent's fit verdict. The sweeps of ``costmodel sweep`` run on the
same boards with both kernel variants. Stage C is the host interpreter's accuracy on the dataset, stage F the
int8 model on a virtual board of the first target (``measure_agent.validation``).

The library half (numbers, findings, report) is :mod:`costmodel.study`; this module drives the agents.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from costmodel.boards import CatalogueError, get_board
from costmodel.console import CliError, print_json, stderr, stdout, table, user_errors

DEFAULT_TARGETS = "NUCLEO-L496ZG,DISCO-F469NI,NUCLEO-F767ZI"
DEFAULT_SWEEPS = "dense,conv,dwconv"
#: runs estimated above this many cycles are measured once (virtual boards are deterministic), others 3 times
LONG_RUN_CYCLES = 300e6
STATE_VERSION = 1


def study_cache() -> Path:
    """``study/`` under the project's one cache root: the prepared models and the state between runs."""
    from measure_agent.firmware_build.cache import cache_root

    return cache_root() / "study"


# --- what is measured -------------------------------------------------------------------------------------------


@dataclass
class Planned:
    """One measurement of the study: a run (model x board x configuration) or a sweep network."""

    job: object                  # measure_agent.agents.MeasureJob
    kind: str                    # "run" or "sweep"
    run: dict | None = None
    spec: object = None          # sweep NetSpec
    sha: str = ""
    estimate: float = 0.0        # estimated cycles (longest first)


@dataclass
class Timer:
    stages: dict = field(default_factory=dict)
    _start: float = field(default_factory=time.monotonic)

    def lap(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.stages[name] = round(self.stages.get(name, 0.0) + now - since, 1)
        return now

    @property
    def total(self) -> float:
        return round(time.monotonic() - self._start, 1)


def _salt(board, settings, local: bool) -> str:
    """What else a measurement depends on: on local virtual boards, the firmware build id and the timing
    model's version (a request id of other code is another id); on a bench's agent, nothing known here."""
    if not local:
        return ""
    from measure_agent.firmware_build.firmware import firmware_recipe
    from measure_agent.vboard import MODEL_VERSION

    return f"{firmware_recipe(board, settings).build_id}/{MODEL_VERSION}"


def _request_id(model: bytes, target: str, variant: str, abi: str, opt: str, placement: str, reps: int,
                salt: str) -> str:
    from measure_agent.results import request_id_for

    rid = request_id_for(model, target, variant, abi, opt, placement, reps)
    if not salt:
        return rid
    return "s-" + hashlib.sha256(f"{rid}/{salt}".encode()).hexdigest()[:30]


# --- state kept between runs (oversized verdicts, stage C and F results) --------------------------------------


class State:
    """A JSON file in the cache: what the store cannot hold (fit verdicts of models that were not measured,
    accuracies), keyed by content, so a second study reuses them."""

    def __init__(self, path: Path):
        self.path = path
        try:
            d = json.loads(path.read_text())
            self.data = d if d.get("version") == STATE_VERSION else {}
        except (OSError, ValueError):
            self.data = {}
        self.data.setdefault("version", STATE_VERSION)
        for k in ("verdicts", "host", "board"):
            self.data.setdefault(k, {})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


# --- the models ---------------------------------------------------------------------------------------------------


def _convert_sweeps(specs: list[dict], cache: str) -> int:
    from costmodel.sweeps import NetSpec, convert_all

    convert_all([NetSpec.from_dict(d) for d in specs], cache, workers=1)
    return len(specs)


def prepare_models(paths: list[Path], builtin: bool, epochs: int, data: str | None,
                   say: Callable[[str], None], sweep_specs: list | None = None) -> list:
    """The study's models as :class:`~costmodel.study.models.PreparedModel`, and the sweeps' networks converted
    into their cache (TensorFlow in one child process, only when something is not cached yet)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from costmodel.study import models as M

    requests, tflites = [], []
    if builtin:
        requests += [{"name": n, "kind": "builtin", "epochs": M.DEFAULT_EPOCHS[n] if epochs < 0 else epochs}
                     for n in M.BUILTIN]
    for p in paths:
        if p.suffix.lower() == ".tflite":
            tflites.append(p)
        else:
            requests.append({"name": p.stem, "kind": "keras", "path": str(p.resolve())})
    prepared = []
    cache = study_cache() / "models"
    cached = _cached_models(requests, data, cache)
    specs = []
    if sweep_specs:
        from costmodel.commands.sweep import model_cache

        sweep_cache = model_cache()
        specs = [s.to_dict() for s in sweep_specs if not (sweep_cache / f"{s.content_hash}.tflite").exists()]
    if cached is not None and not specs:
        prepared = cached
    elif requests or specs:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
            if cached is None and requests:
                say(f"preparing {len(requests)} model(s) with TensorFlow (trained and converted once, then cached)")
                prepared = [M.PreparedModel.from_dict(d)
                            for d in ex.submit(M.prepare, requests, data, str(cache)).result()]
            else:
                prepared = cached or []
            if specs:
                say(f"converting {len(specs)} sweep networks with TensorFlow (cached by content)")
                ex.submit(_convert_sweeps, specs, str(sweep_cache)).result()
    by_name = {m.name: m for m in prepared}
    out = [by_name[r["name"]] for r in requests if r["kind"] == "builtin"]
    out += [by_name[Path(r["path"]).stem] for r in requests if r["kind"] == "keras"]
    out += [M.user_tflite(p) for p in tflites]
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise CliError(f"two models have the same name ({', '.join(sorted(n for n in names if names.count(n) > 1))}); "
                       "rename one file")
    return out


def _cached_models(requests: list[dict], data: str | None, cache: Path) -> list | None:
    """The prepared models when every one is in the cache already (no TensorFlow needed), else None."""
    from costmodel.study import models as M
    from costmodel.datasets import load_dataset

    if not requests:
        return []
    fingerprint = load_dataset(data).fingerprint
    out = []
    for req in requests:
        if req["kind"] != "builtin":
            return None
        found = M.cached(cache / f"{req['name']}-{M.cache_key(req['name'], fingerprint, req['epochs'], req.get('seed', 0))}")
        if found is None:
            return None
        out.append(found)
    return out


def describe_files(model) -> dict:
    """Per quantization: sha256, .tflite bytes, MACs, parameters, weight bytes, the plan's bytes and arena, layers."""
    from costmodel.analysis import analyze
    from costmodel.tflite import read_model
    from measure_agent.plan import UnsupportedOpError, compile_plan

    out = {}
    for q, path in model.files.items():
        data = Path(path).read_bytes()
        graph = read_model(data, name=model.name)
        a = analyze(graph)
        info = {"sha256": hashlib.sha256(data).hexdigest(), "tflite_bytes": len(data), "macs": int(a.total_macs),
                "params": int(a.total_params), "weight_bytes": int(a.weight_bytes), "path": str(path),
                "layers": [{"index": layer.index, "name": layer.name, "op": layer.op, "macs": int(layer.macs)}
                           for layer in a.layers]}
        try:
            plan = compile_plan(graph)
            info.update(plan_bytes=len(plan.blob), arena_bytes=int(plan.arena_bytes))
        except UnsupportedOpError as exc:
            info.update(plan_bytes=0, arena_bytes=0, unsupported=str(exc))
        out[q] = info
    return out


def host_accuracy(model_bytes: bytes, x, y) -> float:
    """Stage C: accuracy of a .tflite on the host's TFLite interpreter (its optimised kernels)."""
    import numpy as np

    from measure_agent.plan.reference import Reference

    return float(np.mean(Reference(model_bytes, resolver="BUILTIN").classify(x) == np.asarray(y)))


# --- the study ----------------------------------------------------------------------------------------------------


@dataclass
class Options:
    models: list[Path]
    targets: list[str]
    agents: list[str]
    token: str | None
    tls_root: str | None
    store: str
    out: Path
    data: str | None
    builtin: bool
    epochs: int
    configs: list[str]
    opts: list[str]
    repetitions: int
    sweeps: list[str]
    sweep_size: str
    sweep_opt: str
    validate_samples: int
    validate_target: str
    validate_port: str | None
    accuracy_samples: int
    boards: int


def _reps(options: Options, macs: int, key: str) -> int:
    from costmodel.study.configs import ROUGH_CYCLES_PER_MAC

    if options.repetitions:
        return options.repetitions
    return 1 if macs * ROUGH_CYCLES_PER_MAC[key] > LONG_RUN_CYCLES else 3


def run_study(options: Options, say: Callable[[str], None] = lambda s: None,
              progress: Callable[[int, int], None] = lambda done, total: None) -> dict:
    """Run the study and write the report; returns the report's data (also written as JSON)."""
    from costmodel.store import open_store
    from costmodel.study import configs as C
    from costmodel.datasets import load_dataset
    from costmodel.study.models import fit_to_input
    from costmodel.study.report import write_outputs
    from costmodel.study.results import StudyInputs, compute
    from measure_agent.agents import MeasureJob
    from measure_agent.settings import FirmwareSettings

    timer = Timer()
    t = time.monotonic()
    local = not options.agents
    boards = [get_board(n) for n in options.targets]
    state = State(study_cache() / "state.json")
    dataset = load_dataset(options.data)
    t = timer.lap("dataset", t)

    sweep_specs = []
    if options.sweeps:
        from costmodel.sweeps import sweep

        sweep_specs = [s for name in options.sweeps for s in sweep(name, options.sweep_size)]
    models = prepare_models(options.models, options.builtin, options.epochs, options.data, say, sweep_specs)
    t = timer.lap("models (build, train, convert; sweep networks)", t)
    described = {m.name: describe_files(m) for m in models}
    t = timer.lap("analysis (stage A)", t)

    # stage C: host accuracy of every file
    accuracy: dict = {}
    n_acc = options.accuracy_samples or len(dataset.x_test)
    for m in models:
        acc = {"host": {}, "samples": 0, "board": [], "trained": m.trained, "problems": []}
        try:
            x = fit_to_input(dataset.x_test[:n_acc], m.input_shape)
            y = dataset.y_test[:n_acc]
        except ValueError as exc:
            acc["problems"].append(f"dataset {dataset.name}: {exc}")
            accuracy[m.name] = acc
            continue
        acc["samples"] = int(len(x))
        for q, info in described[m.name].items():
            key = f"{info['sha256']}/{dataset.fingerprint}/{len(x)}"
            if key not in state.data["host"]:
                try:
                    state.data["host"][key] = host_accuracy(Path(info["path"]).read_bytes(), x, y)
                except (ValueError, RuntimeError) as exc:
                    acc["problems"].append(f"{q}: {exc}")
                    continue
            acc["host"][q] = state.data["host"][key]
        accuracy[m.name] = acc
    state.save()
    t = timer.lap("host accuracy (stage C)", t)

    # the runs
    say("planning the measurements")
    planned: list[Planned] = []
    runs: list[dict] = []
    settings_cache: dict = {}

    def settings_for(board, variant, abi, opt):
        key = (board.name, variant, abi, opt)
        if key not in settings_cache:
            s = FirmwareSettings.for_board(board, variant, abi, opt)
            settings_cache[key] = (s, _salt(board, s, local))
        return settings_cache[key]

    for m in models:
        for board in boards:
            for key in options.configs:
                cfg = C.BY_KEY[key]
                for opt in options.opts:
                    run = {"model": m.name, "board": board.name, "config": key, "opt": opt, "status": "", "reason": ""}
                    runs.append(run)
                    info = described[m.name].get(cfg.quantization)
                    why = cfg.applies(board)
                    if info is None:
                        run.update(status="n/a", reason=f"no {cfg.quantization} model ({m.note or m.origin})")
                        continue
                    if why:
                        run.update(status="n/a", reason=why)
                        continue
                    if info.get("unsupported"):
                        run.update(status="unsupported", reason=info["unsupported"])
                        continue
                    abi = cfg.float_abi_on(board)
                    run["float_abi"] = abi
                    settings, salt = settings_for(board, cfg.variant, abi, opt)
                    reps = _reps(options, info["macs"], key)
                    data = Path(info["path"]).read_bytes()
                    rid = _request_id(data, board.name, cfg.variant, abi, settings.opt_level, "flash", reps,
                                      salt)
                    run.update(measurement_id=rid, repetitions=reps)
                    job = MeasureJob(data, board.name, runtime_variant=cfg.variant, float_abi=abi,
                                     opt_level=settings.opt_level, placement="flash", repetitions=reps, request_id=rid)
                    est = info["macs"] * C.ROUGH_CYCLES_PER_MAC[key] * reps
                    planned.append(Planned(job, "run", run=run, sha=info["sha256"], estimate=est))

    sweep_ids: list[str] = []
    if sweep_specs:
        from costmodel.commands.sweep import model_cache
        from costmodel.sweeps import tflite_bytes

        cache = model_cache()
        for spec in sweep_specs:
            data = tflite_bytes(spec, cache)
            sha = hashlib.sha256(data).hexdigest()
            for board in boards:
                for variant in board.runtime_variants():
                    settings, salt = settings_for(board, variant, C.best_float_abi(board), options.sweep_opt)
                    rid = _request_id(data, board.name, variant, settings.float_abi, settings.opt_level, "flash", 0,
                                      salt)
                    job = MeasureJob(data, board.name, runtime_variant=variant, float_abi=settings.float_abi,
                                     opt_level=settings.opt_level, placement="flash", request_id=rid)
                    planned.append(Planned(job, "sweep", spec=spec, sha=sha, estimate=0))
                    sweep_ids.append(rid)
    t = timer.lap("planning", t)

    db = open_store(options.store)
    try:
        done = db.measured_ids(p.job.request_id for p in planned)
        todo = []
        counts = {"planned": len(planned), "reused": 0, "measured": 0, "oversized": 0, "failed": 0}
        for p in planned:
            rid = p.job.request_id
            if rid in done:
                counts["reused"] += 1
                if p.run is not None:
                    p.run["status"] = "reused"
                continue
            verdict = state.data["verdicts"].get(rid)
            if verdict and p.run is not None:  # the fit verdict of an earlier run (same model, settings, code)
                p.run.update(status=verdict["status"], reason=verdict["reason"])
                counts["oversized"] += 1
                continue
            todo.append(p)
        todo.sort(key=lambda p: -p.estimate)
        say(f"{len(planned)} measurements: {counts['reused']} in the store already, "
            f"{len(planned) - len(todo) - counts['reused']} known not to fit, {len(todo)} to measure")
        errors: list[str] = []
        if todo:
            _measure(options, todo, db, state, counts, errors, progress)
        state.save()
        t = timer.lap("measuring (stages D, E)", t)

        # stage F
        validations = _validate(options, models, described, dataset, state, say)
        for name, rows in validations.items():
            accuracy.setdefault(name, {"host": {}, "board": []})["board"] = rows
        state.save()
        t = timer.lap("on-board accuracy (stage F)", t)

        ids = [r["measurement_id"] for r in runs if r.get("measurement_id") and r["status"] in ("measured", "reused")]
        model_rows = db.models(measurement_id=ids) if ids else None
        layer_rows = db.layers(measurement_id=ids) if ids else None
        sweep_layers = db.layers(measurement_id=sweep_ids) if sweep_ids else None
        sweep_models = db.models(measurement_id=sweep_ids) if sweep_ids else None
        store_url = db.display_url
    finally:
        db.close()

    predictions = _predict(models, described, boards, sweep_layers, sweep_models, options)
    t = timer.lap("predictions (learned cost model)", t)

    inputs = StudyInputs(
        models=[{**m.to_dict(), "files": described[m.name]} for m in models],
        boards=[{"name": b.name, "core": b.core, "mcu": b.mcu, "clock_hz": int(b.default_clock_hz),
                 "power_w": float(b.power_mw) * 1e-3, "power_source": _power_source(b),
                 "flash_bytes": int(b.flash.size), "sram_bytes": int(b.sram.size)} for b in boards],
        runs=runs, model_rows=model_rows, layer_rows=layer_rows, sweep_layers=sweep_layers, accuracy=accuracy,
        predictions=predictions,
        meta={"command": options_command(options), "targets": [b.name for b in boards],
              "agents": options.agents or ["local agent with virtual boards"], "store": store_url,
              "dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint,
                          "train": int(len(dataset.x_train)), "test": int(len(dataset.x_test))},
              "configs": options.configs, "opt_levels": options.opts, "sweeps": options.sweeps,
              "sweep_size": options.sweep_size, "sweep_opt": options.sweep_opt, "counts": counts,
              "errors": errors[:50], "timing_model": _timing_model(), "local": local,
              "repetitions": options.repetitions or f"auto: 3, or 1 where a run is estimated above "
                                                     f"{LONG_RUN_CYCLES / 1e6:.0f} M cycles",
              "written": time.strftime("%Y-%m-%d %H:%M:%S")})
    data = compute(inputs)
    timer.lap("results", t)
    data["meta"]["seconds"] = dict(timer.stages)
    data["meta"]["seconds"]["total"] = timer.total
    write_outputs(data, options.out)
    data["meta"]["seconds"]["total"] = timer.total
    return data


def _timing_model() -> str:
    try:
        from measure_agent.vboard import MODEL_VERSION

        return MODEL_VERSION
    except ImportError:  # pragma: no cover
        return ""


def _power_source(board) -> str:
    """Where the catalogue's inference power comes from (the paper's measurement, or a datasheet's typical current)."""
    src = board.sources.get("power_mw", "")
    return f"{board.power_kind}: {src}" if src else board.power_kind


def options_command(o: Options) -> str:
    parts = ["costmodel study", *map(str, o.models), "--targets", ",".join(o.targets)]
    parts += [f"--agent {a}" for a in o.agents]
    if o.data:
        parts += ["--data", o.data]
    return " ".join(parts)


def _measure(options: Options, todo: list[Planned], db, state: State, counts: dict, errors: list,
             progress: Callable[[int, int], None]) -> None:
    from costmodel.commands.sweep import open_pool
    from measure_agent.results import result_rows

    by_id = {p.job.request_id: p for p in todo}
    done = [0]

    def on_result(outcome) -> None:
        p = by_id[outcome.job.request_id]
        done[0] += 1
        progress(done[0], len(todo))
        if outcome.ok:
            r = outcome.result
            if p.kind == "run":
                spec = {"study": 1, "model": p.run["model"], "config": p.run["config"], "opt": p.run["opt"],
                        "firmware_flash_bytes": int(r.flash_bytes), "firmware_ram_bytes": int(r.ram_bytes)}
                model_row, rows = result_rows(r, model_name=f"{p.run['model']}:{p.run['config']}{p.run['opt']}",
                                              sweep="study", spec=spec, model_sha256=p.sha, source=outcome.agent)
                p.run["status"] = "measured"
            else:
                model_row, rows = result_rows(r, model_name=p.spec.name, sweep=p.spec.sweep, spec=p.spec.to_dict(),
                                              model_sha256=p.sha, source=outcome.agent)
            db.add(model_row, rows)
            counts["measured"] += 1
            return
        text = outcome.error or "no result"
        oversized = "FAILED_PRECONDITION" in text or "does not fit" in text
        if p.run is not None:
            reason = text.split("FAILED_PRECONDITION:", 1)[-1].strip() if oversized else text
            p.run.update(status="oversized" if oversized else "failed", reason=reason)
            if oversized:
                state.data["verdicts"][p.job.request_id] = {"status": "oversized", "reason": reason}
        counts["oversized" if oversized else "failed"] += 1
        if not oversized:
            errors.append(f"{p.run['model'] + ' ' + p.run['config'] + ' ' + p.run['opt'] if p.run else p.spec.name} "
                          f"on {p.job.target}: {text}")

    pool = open_pool(options.agents, options.token, options.tls_root, options.targets, options.boards)
    try:
        pool.measure_many([p.job for p in todo], on_result=on_result)
    finally:
        pool.close()


def _validate(options: Options, models, described, dataset, state: State, say) -> dict:
    """Stage F: the int8 model with the SIMD kernels (and the reference kernels) on a board of the validation
    target, sample by sample against the host's reference interpreter."""
    from dataclasses import asdict

    from costmodel.study.configs import best_float_abi
    from costmodel.study.models import fit_to_input
    from measure_agent.backends import BoardSpec, make_backend
    from measure_agent.errors import MeasureError
    from measure_agent.settings import FirmwareSettings

    out: dict = {}
    if options.validate_samples <= 0 or not options.validate_target:
        return out
    board = get_board(options.validate_target)
    opt = options.opts[-1]
    wanted = [(k, v) for k, v in (("int8-simd", "simd"), ("int8-ref", "reference")) if k in options.configs
              and v in board.runtime_variants()]
    jobs = []
    for m in models:
        info = described[m.name].get("int8")
        if info is None or info.get("unsupported"):
            continue
        try:
            x = fit_to_input(dataset.x_test[:options.validate_samples], m.input_shape)
        except ValueError:
            continue
        y = dataset.y_test[:options.validate_samples]
        for key, variant in wanted[:1] if info["macs"] > 5e6 else wanted:
            settings = FirmwareSettings.for_board(board, variant, best_float_abi(board), opt)
            salt = _salt(board, settings, not options.validate_port)
            skey = f"{info['sha256']}/{board.name}/{settings.label()}/{salt}/{dataset.fingerprint}/{len(x)}" \
                   f"/{options.validate_port or 'virtual'}"
            jobs.append((m, info, key, settings, skey, x, y))
    if not jobs:
        return out
    todo = [j for j in jobs if j[4] not in state.data["board"]]
    if todo:
        say(f"stage F: {len(todo)} int8 model(s) sample by sample on {board.name} "
            f"({'port ' + options.validate_port if options.validate_port else 'virtual board'})")
        from measure_agent.validation import validate

        spec = BoardSpec(id=f"study-validate-{board.name.lower()}", kind="serial" if options.validate_port else "virtual",
                         target=board.name, port=options.validate_port)
        backend = make_backend(spec)
        try:
            for m, info, key, settings, skey, x, y in todo:
                start = time.monotonic()
                try:
                    report = validate(backend, Path(info["path"]).read_bytes(), x, y, settings)
                    rec = {k: float(v) if not isinstance(v, int) else v for k, v in asdict(report).items()}
                except MeasureError as exc:
                    rec = {"error": str(exc)}
                rec.update(seconds=round(time.monotonic() - start, 1), board_kind=backend.kind,
                           board_model_version=getattr(backend, "model_version", "") or "")
                state.data["board"][skey] = rec
                state.save()
        finally:
            backend.close()
    for m, info, key, settings, skey, x, y in jobs:
        rec = dict(state.data["board"][skey])
        if "error" in rec:
            continue
        from costmodel.study.configs import config_id

        out.setdefault(m.name, []).append({**rec, "board": board.name, "config_id": config_id(key, settings.opt_level),
                                           "kind": "port " + options.validate_port if options.validate_port else
                                           "virtual"})
    return out


def _predict(models, described, boards, sweep_layers, sweep_models, options: Options) -> dict:
    """The learned cost model, fitted on the study's sweeps, predicting the int8 models at the sweeps' settings
    (a prediction is labelled as one: source, rows, uncertainty)."""
    out: dict = {}
    if sweep_layers is None or not len(sweep_layers):
        return out
    from costmodel.errors import ModelError
    from costmodel.latency_model import CostModelError, LatencyModel
    from costmodel.study.configs import best_float_abi, config_id
    from costmodel.tflite import read_model

    try:
        lm = LatencyModel().fit(sweep_layers, models=sweep_models)
    except (CostModelError, ValueError) as exc:
        return {"error": str(exc)}
    for m in models:
        info = described[m.name].get("int8")
        if not info or info.get("unsupported"):
            continue
        graph = read_model(Path(info["path"]).read_bytes(), name=m.name)
        for board in boards:
            for key, variant in (("int8-simd", "simd"), ("int8-ref", "reference")):
                if variant not in board.runtime_variants() or key not in options.configs:
                    continue
                try:
                    p = lm.predict_model(graph, target=board.name, runtime_variant=variant, float_abi=best_float_abi(board),
                                         opt_level=options.sweep_opt, placement="flash")
                except (CostModelError, ModelError, ValueError, KeyError) as exc:
                    out[(m.name, board.name, config_id(key, options.sweep_opt))] = {"error": str(exc)}
                    continue
                sources: dict[str, int] = {}
                for layer in p.layers:
                    sources[layer.source] = sources.get(layer.source, 0) + 1
                out[(m.name, board.name, config_id(key, options.sweep_opt))] = {
                    "latency_s": float(p.latency_s), "uncertainty": float(p.uncertainty_s / p.latency_s)
                    if p.latency_s else None,
                    "provenance": f"predicted by the learned cost model from {lm.n_rows_} sweep layer rows (layers: "
                                  + ", ".join(f"{n} {s}" for s, n in sorted(sources.items())) + ")"}
    return {k: v for k, v in out.items() if "error" not in v}


# --- the command ------------------------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]


def register(app: typer.Typer) -> None:
    @app.command("study")
    def study_command(
        models: Annotated[Optional[list[Path]], typer.Argument(
            help="Models to add to the built-in LeNet-5 and ResNet-20: .tflite (measured as they are) or .keras/.h5 "
                 "(converted to float32, dynamic-range and int8).")] = None,
        targets: Annotated[str, typer.Option(help="Boards from the catalogue, comma-separated.")] = DEFAULT_TARGETS,
        agent: Annotated[Optional[list[str]], typer.Option(
            help="HOST:PORT or TOKEN@HOST:PORT of a bench's agent (repeatable); default: a local agent with virtual "
                 "boards.")] = None,
        token: Annotated[Optional[str], typer.Option(help="Bearer token for --agent (or $MEASURE_AGENT_TOKEN).")] = None,
        tls_root: Annotated[Optional[str], typer.Option(help="Root certificate of the agents' TLS.")] = None,
        store: Annotated[Optional[str], typer.Option(help="Store: SQLite path or postgresql:// URL (default "
                                                          "$MCU_NAS_STORE or measurements.sqlite).")] = None,
        out: Annotated[Path, typer.Option(help="Folder for study.html and the CSV/JSON of every number.")] = Path(
            "out/study"),
        data: Annotated[Optional[str], typer.Option(
            help="Dataset .npz (x_train, y_train, x_test, y_test; or x, y) for the accuracy columns and the training "
                 "of the built-in models; default: scikit-learn's digits, resized to each model's input.")] = None,
        builtin: Annotated[bool, typer.Option("--builtin/--no-builtin", help="Include LeNet-5 and ResNet-20.")] = True,
        epochs: Annotated[int, typer.Option(help="Training epochs of the built-in models (-1: LeNet-5 4, "
                                                 "ResNet-20 3; 0: untrained).")] = -1,
        configs: Annotated[str, typer.Option(help="Configurations, comma-separated: float-soft, float-fpu, dynamic, "
                                                  "int8-ref, int8-simd.")] = "float-soft,float-fpu,dynamic,int8-ref,"
                                                                             "int8-simd",
        opt: Annotated[str, typer.Option(help="Optimisation levels, comma-separated.")] = "-Os,-O3",
        repetitions: Annotated[int, typer.Option(help="Runs per measurement (0: 3, or 1 for runs estimated above "
                                                      "300 M cycles).", min=0, max=100)] = 0,
        sweeps: Annotated[str, typer.Option(help="Layer sweeps on the same boards, comma-separated, or none.")] =
        DEFAULT_SWEEPS,
        sweep_size: Annotated[str, typer.Option(help="small or full.")] = "small",
        sweep_opt: Annotated[str, typer.Option(help="Optimisation level of the sweeps (default: the study's -O3 "
                                                    "builds, no extra firmware).")] = "-O3",
        validate_samples: Annotated[int, typer.Option(help="Stage F: test samples run on the board (0: skip).",
                                                      min=0)] = 50,
        validate_target: Annotated[Optional[str], typer.Option(help="Stage F board (default: the first target).")] = None,
        validate_port: Annotated[Optional[str], typer.Option(
            help="Stage F on a real board at this serial port (default: a virtual board).")] = None,
        accuracy_samples: Annotated[int, typer.Option(help="Stage C: test samples (0: all).", min=0)] = 0,
        boards: Annotated[int, typer.Option(help="Virtual boards per target of the local agent.", min=1)] = 1,
        json: Annotated[bool, typer.Option("--json", help="Print the findings and the summary as JSON.")] = False,
    ) -> None:
        """The paper's experiments: models x boards x configurations, through agents, into one HTML report."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from costmodel.commands import default_store
        from costmodel.study.configs import BY_KEY, OPT_LEVELS as _OPTS
        from costmodel.datasets import DatasetError
        from costmodel.store import StoreError
        from costmodel.errors import ModelError
        from measure_agent.client import AgentError
        from measure_agent.settings import OPT_LEVELS, SettingsError

        with user_errors(CatalogueError, StoreError, SettingsError, AgentError, DatasetError, ModelError, ValueError,
                         OSError):
            names = _split(targets)
            if not names:
                raise CliError("--targets names no board")
            board_names = list(dict.fromkeys(get_board(n).name for n in names))
            keys = _split(configs)
            unknown = [k for k in keys if k not in BY_KEY]
            if unknown or not keys:
                raise CliError(f"unknown configuration {', '.join(unknown) or '(none)'}; configurations: "
                               f"{', '.join(BY_KEY)}")
            opts = [o if o.startswith("-") else "-" + o for o in _split(opt)]
            bad = [o for o in opts if o not in OPT_LEVELS]
            if bad or not opts:
                raise CliError(f"--opt: {', '.join(bad) or '(none)'} is not one of {', '.join(OPT_LEVELS)}")
            sweep_opt_ = sweep_opt if sweep_opt.startswith("-") else "-" + sweep_opt
            if sweep_opt_ not in OPT_LEVELS:
                raise CliError(f"--sweep-opt must be one of {', '.join(OPT_LEVELS)}")
            from costmodel.sweeps import SWEEPS

            chosen = [] if sweeps.strip().lower() in ("", "none") else _split(sweeps)
            unknown = [s for s in chosen if s not in SWEEPS]
            if unknown:
                raise CliError(f"unknown sweep {', '.join(unknown)}; sweeps: {', '.join(SWEEPS)} (or none)")
            if sweep_size not in ("small", "full"):
                raise CliError("--sweep-size must be small or full")
            for p in models or []:
                if p.suffix.lower() not in (".tflite", ".keras", ".h5"):
                    raise CliError(f"{p}: a model is a .tflite, .keras or .h5 file")
                if not p.is_file():
                    raise CliError(f"{p}: no such file")
            if not builtin and not models:
                raise CliError("no models: give model files or leave out --no-builtin")
            vt = get_board(validate_target).name if validate_target else board_names[0]
            if data and data != "digits":
                from costmodel.datasets import load_npz

                load_npz(data)  # a bad dataset is said before anything runs
            options = Options(list(models or []), board_names, list(agent or []), token, tls_root,
                              store or default_store(), out, data, builtin, epochs, keys, opts, repetitions, chosen,
                              sweep_size, sweep_opt_, validate_samples, vt, validate_port, accuracy_samples, boards)
            del _OPTS
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=stderr, transient=True) as bar:
                task = bar.add_task("measuring", total=None, visible=False)

                def say(text: str) -> None:
                    bar.console.print(text, markup=False, highlight=False)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total, visible=True)

                result = run_study(options, say, progress)
        _print_summary(result, json, out)


def _print_summary(data: dict, as_json: bool, out: Path) -> None:
    meta = data["meta"]
    if as_json:
        print_json({"report": str(out / "study.html"), "seconds": meta["seconds"], "counts": meta["counts"],
                    "findings": data["findings"], "errors": meta["errors"]})
        return
    rows = [[f["verdict"], f["key"], f["paper"][:40], f["here"][:70]] for f in data["findings"]]
    stdout.print(table("the paper's findings, from the numbers (claims and details: the report)",
                       ["verdict", "finding", "paper", "this study"], rows))
    c = meta["counts"]
    stdout.print(f"measurements: {c['planned']} planned, {c['reused']} from the store, {c['measured']} measured, "
                 f"{c['oversized']} oversized, {c['failed']} failed; {meta['seconds']['total']:.0f} s")
    stdout.print(f"report: {out / 'study.html'}")
    for e in meta["errors"][:10]:
        stderr.print(f"failed: {e}", markup=False, highlight=False)
