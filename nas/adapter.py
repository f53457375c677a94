"""The search's one view of the lab: the fit verdict, the learned cost model, the measurement store and agents.

Everything the search uses of ``costmodel`` (``LatencyModel``, ``MeasurementStore``) and ``measure_agent``
(``AgentPool``, ``results``, ``fit``, ``validation``) goes through this module, in the search's own small types
(:class:`Verdict`, :class:`Prediction`, :class:`Repair`, :class:`Measurement`), so a change of those
interfaces touches this file only. Stand-ins for what those interfaces do not offer yet are marked
``STAND-IN``.

- :class:`FitCheck`: does a candidate fit the target with its weights where the runtime puts them, and can
  the runtime run every layer (``measure_agent.fit``: the agent's own verdict).
- :class:`CostModel`: a ``LatencyModel`` fitted on the store's measurements of the target, updated by a
  learner thread after every measurement (``partial_fit`` on a copy, swapped in) and refitted from the store
  every few measurements (rows of other workers included): predictions with per-layer sources and
  uncertainty, and faster parametrizations at the same or higher capacity (``alternatives``).
- :class:`Lab`: measurements through one or more agents (``AgentPool``: balanced by queue length, failover
  with the same request id), or a local agent with a virtual board; every result goes into the store, and
  a model measured before (same bytes and settings: the same request id) is read back instead.
"""

from __future__ import annotations

import copy
import json
import math
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from costmodel.boards import CatalogueError, get_board


class LabError(RuntimeError):
    """The store, the agents or the target cannot be used; one line for the user."""


# --- the fit verdict --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Whether a candidate fits the target (``fits`` None: undecided, e.g. no firmware build to size it), and
    whether the runtime can run it (``unsupported``: the first layer it cannot, with the reason)."""

    fits: bool | None
    reason: str
    unsupported: str = ""
    flash_needed: int = 0
    ram_needed: int = 0
    plan_bytes: int = 0
    arena_bytes: int = 0
    placement: str = ""
    rule: str = ""              # "flash", "ram" or "layers" when it does not fit
    flash_available: int = 0
    ram_available: int = 0

    def excess(self) -> float:
        """How far it is over the board (relative; 1.0 when too many layers): Optuna's constraint value."""
        over = [(n - a) / a for n, a in ((self.flash_needed, self.flash_available), (self.ram_needed,
                                                                                    self.ram_available)) if a]
        return max([o for o in over if o > 0] or [1.0])


class FitCheck:
    """The agent's fit verdict for one target and placement, with the firmware image sized once."""

    def __init__(self, target: str, placement: str | None = None):
        from measure_agent.fit import check_placement

        self.board = get_board(target)
        self.placement = check_placement(placement)
        self._image = None
        self._image_problem = ""
        self._lock = threading.Lock()

    def _firmware(self):
        with self._lock:
            if self._image is None and not self._image_problem:
                from measure_agent.firmware_build import FirmwareBuildError, build_firmware
                from measure_agent.settings import FirmwareSettings

                try:
                    self._image = build_firmware(self.board, FirmwareSettings.for_board(self.board))
                except (FirmwareBuildError, OSError) as exc:
                    self._image_problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return self._image

    def warm(self) -> None:
        """Build (or find) the firmware to size candidates against, ahead of the first candidate."""
        self._firmware()

    def check(self, graph) -> Verdict:
        from measure_agent.fit import fit, runtime_support
        from measure_agent.plan import UnsupportedOpError, compile_plan

        for index, op, why in runtime_support(graph):
            if why:
                return Verdict(None, f"the runtime cannot run layer {index} ({op}): {why}",
                               unsupported=f"layer {index} ({op}): {why}", placement=self.placement)
        try:
            plan = compile_plan(graph)
        except UnsupportedOpError as exc:
            return Verdict(None, f"the runtime cannot run it: {exc}", unsupported=str(exc), placement=self.placement)
        image = self._firmware()
        if image is None:
            return Verdict(None, f"cannot size the firmware of {self.board.name}: {self._image_problem}",
                           plan_bytes=len(plan.blob), arena_bytes=plan.arena_bytes, placement=self.placement)
        v = fit(plan, image, self.placement, self.board)
        rule = "" if v.fits else "flash" if not v.flash else "ram" if not v.ram else "layers"
        return Verdict(v.fits, v.reason, "", v.flash_needed, v.ram_needed, v.plan_bytes, v.arena_bytes, v.placement,
                       rule, v.flash_available, v.ram_available)


# --- the learned cost model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """A candidate's predicted latency and energy (one standard deviation each) and where the numbers come from."""

    latency_s: float
    latency_sd_s: float
    energy_j: float | None
    energy_sd_j: float | None
    energy_source: str
    sources: dict[str, int]          # per-layer source ("table", "regressor") -> layers
    layers: list[dict]               # per layer: index, name, op, latency_s, source, uncertainty
    model_version: str               # which fit: "<measurements> measurements, <rows> layer rows"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def model_measurements(self) -> int:
        """How many measurements the model that made this prediction had learned (0: not known)."""
        head = self.model_version.split(" ", 1)[0]
        return int(head) if head.isdigit() else 0


@dataclass(frozen=True)
class Repair:
    """A faster parametrization of one layer at the same or higher capacity (cost model's alternative)."""

    layer: str                       # the layer's name in the .tflite graph
    parameter: str                   # "filters", "units" or "kernel"
    old: int
    new: int
    gain: float                      # predicted latency saved, relative to the model
    gain_sd: float
    description: str


class CostModel:
    """A ``LatencyModel`` of one target, learned from the measurement store as the search goes.

    ``add`` hands a new measurement (already in the store) to a learner thread, so a trial never waits for
    the fit: the learner updates a copy of the model (``partial_fit``: the δ table's statistics) and swaps it
    in, and every ``refit_every`` measurements fits a new one on all the store's rows of the target (other
    workers' too, and the regressor). Predictions use the model in place at the time."""

    def __init__(self, store, target: str, *, refit_every: int = 8, min_measurements: int = 4,
                 background: bool = True):
        self.store = store
        self.target = target
        self.refit_every = refit_every
        self.min_measurements = min_measurements
        self.background = background
        self._model = None
        self._since_refit = 0
        self.measurements = 0
        self.rows = 0
        self.fits = 0
        self._learned: set[str] = set()  # measurement ids in the model in place (a refit reads the store)
        self._queue: queue.Queue = queue.Queue()
        self._learner: threading.Thread | None = None
        self._refit()

    @property
    def ready(self) -> bool:
        return self._model is not None and self.measurements >= self.min_measurements

    @property
    def version(self) -> str:
        return f"{self.measurements} measurements, {self.rows} layer rows"

    def _refit(self) -> None:
        """Fit a new model on every measurement of the target in the store and put it in place."""
        from costmodel.latency_model import CostModelError, LatencyModel

        layers = self.store.layers(target=self.target)
        models = self.store.models(target=self.target)
        self._since_refit = 0
        if layers.empty:
            return
        try:
            model = LatencyModel().fit(layers, models=models)
        except CostModelError:
            return
        self._model, self.measurements, self.rows = model, len(models), len(layers)
        self._learned = set(models["measurement_id"]) if "measurement_id" in models else set()
        self.fits += 1

    def _learn(self, batch: list[tuple[dict, list[dict]]]) -> None:
        # a refit reads the whole store, so it may have learned a measurement still queued here (another trial
        # thread or worker added it to the store meanwhile): learning it again would count its rows twice
        batch = [b for b in batch if b[0].get("measurement_id") not in self._learned]
        if not batch:
            return
        self._since_refit += len(batch)
        if self._model is None or self._since_refit >= self.refit_every:
            self._refit()  # the batch is in the store already
            return
        model = copy.deepcopy(self._model)
        model.partial_fit([r for _, rows in batch for r in rows], models=[m for m, _ in batch])
        self._model = model
        self._learned.update(m.get("measurement_id") for m, _ in batch)
        self.measurements += len(batch)
        self.rows += sum(len(rows) for _, rows in batch)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while True:  # what arrived meanwhile is learned in one go
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is None for b in batch)
            work = [b for b in batch if b is not None]
            try:
                if work:
                    self._learn(work)
            except Exception:  # noqa: BLE001 (the model in place stays; the next refit tries again)
                pass
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    def add(self, model_row: dict, layer_rows: list[dict]) -> None:
        """Learn from one new measurement (already in the store)."""
        if not self.background:
            self._learn([(model_row, layer_rows)])
            return
        if self._learner is None:
            self._learner = threading.Thread(target=self._run, daemon=True, name="nas-cost-model")
            self._learner.start()
        self._queue.put((model_row, layer_rows))

    def wait(self) -> None:
        """Until every measurement handed over has been learned."""
        self._queue.join()

    def close(self) -> None:
        if self._learner is not None:
            self._queue.put(None)
            self._learner.join(timeout=30)
            self._learner = None

    def predict(self, analysis) -> Prediction | None:
        """The candidate's prediction, or None where the model cannot predict it yet."""
        from costmodel.latency_model import CostModelError

        model, version = self._model, self.version
        if model is None or not self.ready:
            return None
        try:
            p = model.predict_model(analysis, target=self.target)
        except (CostModelError, ValueError, KeyError):
            return None
        sources: dict[str, int] = {}
        for layer in p.layers:
            sources[layer.source] = sources.get(layer.source, 0) + 1
        layers = [{"index": x.index, "name": x.name, "op": x.op, "latency_s": x.latency_s, "source": x.source,
                   "uncertainty": x.uncertainty} for x in p.layers]
        rel = p.uncertainty
        energy_sd = p.energy_j * rel if p.energy_j is not None else None
        return Prediction(p.latency_s, p.uncertainty_s, p.energy_j, energy_sd, p.energy_source, sources, layers,
                          version)

    def repairs(self, analysis, *, keep: str = "macs", confidence: float = 2.0, threshold: float = 0.02
                ) -> list[Repair]:
        """Faster parametrizations whose gain, less ``confidence`` standard deviations, is at least
        ``threshold`` of the model's latency; best first. The known-inferior test of the cost model."""
        from costmodel.latency_model import CostModelError

        model = self._model
        if model is None or not self.ready:
            return []
        try:
            found = model.alternatives(analysis, target=self.target, keep=keep)
        except (CostModelError, ValueError, KeyError):
            return []
        return [Repair(a.layer_name, a.parameter, int(a.old), int(a.new), float(a.gain), float(a.gain_uncertainty),
                       a.describe())
                for a in found if a.gain - confidence * a.gain_uncertainty >= threshold]


# --- the measurement store and agents ----------------------------------------------------------------------------


@dataclass
class Measurement:
    """One measured candidate: whole-model numbers, provenance and per-layer results."""

    request_id: str
    latency_s: float
    energy_j: float
    energy_source: str
    total_cycles: int
    board_id: str
    board_kind: str
    board_model_version: str
    firmware_build_id: str
    arena_bytes: int
    plan_bytes: int
    layers: list[dict] = field(default_factory=list)
    agent: str = ""
    cached: bool = False
    seconds: float = 0.0

    @property
    def provenance(self) -> str:
        if self.board_kind == "virtual":
            return f"virtual board {self.board_id} (timing model {self.board_model_version or '?'})"
        return f"real board {self.board_id}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MeasureFailure:
    """A measurement that did not happen: ``model_error`` when the model itself is the reason (the same on every
    agent), else the agents could not do it (unreachable, board stopped answering)."""

    message: str
    model_error: bool


#: gRPC status names in AgentPool's error text for an error of the model itself. STAND-IN: ``Outcome`` carries
#: the error as text only; with its kind (``AgentError.kind``) this would be ``kind in agents.MODEL_ERRORS``.
_MODEL_STATUSES = ("INVALID_ARGUMENT", "UNIMPLEMENTED", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED")


def default_store_url() -> str:
    from costmodel.commands import default_store

    return default_store()


def open_store(url: str):
    """The measurement store at ``url`` (SQLite path or URL, PostgreSQL URL); LabError if it cannot be opened."""
    from costmodel.store import MeasurementStore, StoreError

    for attempt in range(4):
        try:
            store = MeasurementStore(url)
            break
        except StoreError as exc:
            # two workers creating the store's tables in a new database at the same moment: the other one won
            if attempt == 3 or not any(s in str(exc) for s in ("already exists", "duplicate key")):
                raise LabError(str(exc)) from None
            time.sleep(0.5 + attempt)
    if store.url.startswith("sqlite"):
        from nas.storage import fast_sqlite

        fast_sqlite(store.engine)
    return store


def _measurement_from_rows(model: dict, layers: list[dict], cached: bool) -> Measurement:
    per_layer = [{"index": int(r["layer_index"]), "name": r["layer_name"], "op": r["op"], "kernel": r["kernel"],
                  "macs": int(r["macs"]), "cycles": int(r["cycles"]), "latency_s": float(r["latency_s"]),
                  "energy_j": float(r["energy_j"])} for r in sorted(layers, key=lambda r: int(r["layer_index"]))]
    return Measurement(model["measurement_id"], float(model["latency_s"]), float(model["energy_j"]),
                       model["energy_source"], int(model["total_cycles"]), model["board_id"], model["board_kind"],
                       model["board_model_version"], model["firmware_build_id"], int(model["arena_bytes"]),
                       int(model["plan_bytes"]), per_layer, model.get("source", ""), cached)


class Lab:
    """Agents (or a local agent with a virtual board) and the measurement store, for one target."""

    def __init__(self, target: str, store_url: str, agents: Sequence[str] = (), token: str | None = None,
                 tls_root: str | None = None, boards: int = 1, runtime_variant: str = "",
                 placement: str = ""):
        from measure_agent.agents import AgentAddress, AgentPool

        try:
            self.board = get_board(target)
        except CatalogueError as exc:
            raise LabError(str(exc)) from None
        self.target = self.board.name
        self.runtime_variant, self.placement = runtime_variant, placement
        self.store = open_store(store_url)
        self.local = not agents
        try:
            if agents:
                addresses = [AgentAddress.parse(a, token, tls_root) for a in agents]
                self.pool = AgentPool(addresses, retry_for_s=5.0, down_for_s=30.0)
            else:
                self.pool = AgentPool.local([self.target], boards_per_target=boards)
        except ValueError as exc:
            self.store.close()
            raise LabError(str(exc)) from None
        live = self.pool.boards().get(self.target.lower(), 0)
        if not live:
            problems = "; ".join(f"{address}: {error}" for address, error, _ in self._agent_status() if error) or \
                f"no agent has a board of {self.target} (boards: {', '.join(sorted(self.pool.boards())) or 'none'})"
            self.close()
            raise LabError(f"cannot measure on {self.target}: {problems}")

    def _agent_status(self) -> list[tuple[str, str, bool]]:
        """Per agent: address, why it could not be reached ("" if it could), whether it is up with a board of the
        target. STAND-IN: AgentPool has no public per-agent status yet; this reads its private ``_agents``."""
        now = time.monotonic()
        return [(a.address.address, a.error, self.target.lower() in a.boards and a.down_until <= now)
                for a in getattr(self.pool, "_agents", [])]

    @property
    def boards(self) -> int:
        return self.pool.boards().get(self.target.lower(), 0)

    def close(self) -> None:
        self.pool.close()
        self.store.close()

    def request_id(self, model: bytes) -> str:
        from measure_agent.results import request_id_for

        return request_id_for(model, self.target, self.runtime_variant, "", "", self.placement, 0)

    def architecture_id(self, digest: str) -> str:
        """The name of an architecture (``nas.architecture.architecture_digest``) measured with this lab's
        settings: as a request id names a model, settings included."""
        from measure_agent.results import request_id_for

        return "a-" + request_id_for(digest.encode(), self.target, self.runtime_variant, "", "", self.placement, 0)[2:]

    def known_architectures(self) -> dict[str, str]:
        """Architecture id -> measurement id of the store's measurements that recorded their architecture (the
        search's own, in their ``spec``); the id holds the target and settings."""
        out: dict[str, str] = {}
        for row in self.store.models(sweep="nas").to_dict("records"):
            try:
                arch = json.loads(row.get("spec") or "{}").get("architecture")
            except (TypeError, ValueError, AttributeError):
                continue
            if isinstance(arch, str):
                out.setdefault(arch, row["measurement_id"])
        return out

    def stored(self, model: bytes) -> Measurement | None:
        """The store's measurement of exactly this model and settings, if any (measured before)."""
        return self.recall(self.request_id(model))

    def recall(self, rid: str) -> Measurement | None:
        """The store's measurement ``rid``, if it is there."""
        if not self.store.has(rid):
            return None
        models = self.store.models(measurement_id=rid).to_dict("records")
        layers = self.store.layers(measurement_id=rid).to_dict("records")
        return _measurement_from_rows(models[0], layers, cached=True) if models else None

    def measure(self, model: bytes, *, name: str = "", spec: dict | None = None
                ) -> tuple[Measurement | None, MeasureFailure | None, tuple[dict, list[dict]] | None]:
        """Measure ``model`` on an agent: ``(measurement, None, rows)`` or ``(None, failure, None)``; the rows
        (model row, layer rows) are in the store already."""
        import hashlib

        from measure_agent.agents import MeasureJob
        from measure_agent.results import result_rows

        job = MeasureJob(model, self.target, runtime_variant=self.runtime_variant, placement=self.placement,
                         request_id=self.request_id(model))
        outcome = self.pool.measure(job)
        if not outcome.ok:
            text = outcome.error or "no result"
            return None, MeasureFailure(text, any(s in text for s in _MODEL_STATUSES)), None
        model_row, layer_rows = result_rows(outcome.result, model_name=name, sweep="nas", spec=spec,
                                            model_sha256=hashlib.sha256(model).hexdigest(), source=outcome.agent)
        self.store.add(model_row, layer_rows)
        m = _measurement_from_rows(model_row, layer_rows, cached=False)
        m.agent, m.seconds = outcome.agent, outcome.seconds
        return m, None, (model_row, layer_rows)

    def live_agents(self) -> int:
        """Agents with a board of the target that are not marked down."""
        return sum(1 for _, _, up in self._agent_status() if up)


def spec_json(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# --- on-board validation (the paper's stage F) -------------------------------------------------------------------


def validate_on_board(model: bytes, x, y, target: str) -> dict:
    """Accuracy of a trained int8 model on a virtual board of ``target`` and on the host interpreter, sample by
    sample (``measure_agent.validation``): {samples, board_accuracy, host_accuracy, agreement, ...}."""
    from measure_agent.backends import BoardSpec, make_backend
    from measure_agent.errors import MeasureError
    from measure_agent.settings import FirmwareSettings
    from measure_agent.validation import validate

    board = get_board(target)
    backend = make_backend(BoardSpec(id=f"validate-{board.name.lower()}", kind="virtual", target=board.name))
    try:
        report = validate(backend, model, x, y, FirmwareSettings.for_board(board))
    except MeasureError as exc:
        raise LabError(f"on-board validation on {board.name}: {exc}") from None
    finally:
        backend.close()
    return asdict(report)
