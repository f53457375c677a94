"""A client-side pool of measurement agents: measure many models through one or more agents in parallel.

Interface (stable; sweeps and the search use it)::

    with AgentPool.local(["NUCLEO-L496ZG", "NUCLEO-F767ZI"], boards_per_target=2) as pool:   # virtual boards
        outcomes = pool.measure_many([MeasureJob(model_bytes, "NUCLEO-L496ZG", runtime_variant="simd"), ...],
                                     on_result=lambda outcome: ...)
    pool = AgentPool(["bench-a:50051", "bench-b:50051"], token="...")                        # real benches

- A job goes to the agent with a board of its target whose load (requests this pool has in flight there, or the
  queue length the agent reports, whichever is larger) per board of that target is lowest; the pool keeps as
  many requests in flight as the agents have boards.
- Every job has a request id fixed before it is sent (:func:`measure_agent.results.request_id_for`: a hash of
  the model and settings, unless the job names one): a retry after a dropped connection, and a failover to
  another agent when one stops answering, use the same id, so the agent's journal answers a request it has
  done and nothing is measured twice.
- Errors of the model itself (malformed, unsupported op, does not fit, too large) are not retried: the job's
  :class:`Outcome` carries the one-line error. An unreachable agent, or a board that stopped answering, sends
  the job to the next agent (and that agent is avoided for ``down_for_s``).
- ``on_result`` is called once per job, from one thread at a time (callers need no locking), in completion order.
- Without agents, :meth:`AgentPool.local` starts a loopback agent with virtual boards (journal in a temporary
  folder) and stops it on :meth:`close`.
"""

from __future__ import annotations

import inspect
import secrets
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import grpc

from measure_agent.client import AgentClient, AgentError
from measure_agent.results import request_id_for

#: Error kinds of the agent (``measure_agent.errors``) that are the model's own: not retried anywhere.
MODEL_ERRORS = ("invalid", "unsupported", "does_not_fit", "too_large", "conflict")
#: Status codes of transport errors after which a job moves to another agent (the client retried them already).
FAILOVER = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)


@dataclass(frozen=True)
class AgentAddress:
    """An agent: ``HOST:PORT``, its bearer token and optionally the root certificate of its TLS."""

    address: str
    token: str
    root_certificate: str | None = None

    @classmethod
    def parse(cls, text: str, token: str | None = None, root_certificate: str | None = None) -> AgentAddress:
        """``HOST:PORT`` or ``TOKEN@HOST:PORT`` (the token of ``--agent``, else ``token``)."""
        if "@" in text:
            tok, address = text.rsplit("@", 1)
        else:
            tok, address = token or "", text
        if not address or ":" not in address:
            raise ValueError(f"agent {text!r}: expected HOST:PORT or TOKEN@HOST:PORT")
        if not tok:
            raise ValueError(f"agent {address}: no token (give TOKEN@HOST:PORT or --token)")
        return cls(address, tok, root_certificate)


@dataclass
class MeasureJob:
    """One model to measure with its settings; ``tag`` is the caller's (e.g. the sweep spec)."""

    model: bytes
    target: str
    runtime_variant: str = ""
    float_abi: str = ""
    opt_level: str = ""
    placement: str = ""
    repetitions: int = 0
    request_id: str = ""
    tag: Any = None

    def __post_init__(self):
        if not self.request_id:
            self.request_id = request_id_for(self.model, self.target, self.runtime_variant, self.float_abi,
                                             self.opt_level, self.placement, self.repetitions)


@dataclass
class Outcome:
    """What became of a job: ``result`` (a ``MeasureResult``) or ``error`` (one line), where and after how many tries."""

    job: MeasureJob
    result: Any = None
    error: str | None = None
    agent: str = ""
    attempts: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class _Agent:
    address: AgentAddress
    client: AgentClient
    boards: dict[str, int] = field(default_factory=dict)      # target (lower case) -> boards
    reported: dict[str, int] = field(default_factory=dict)    # target -> queue length the agent reported
    in_flight: dict[str, int] = field(default_factory=dict)   # target -> requests of this pool
    down_until: float = 0.0
    refreshed: float = 0.0
    error: str = ""


class NoAgentError(RuntimeError):
    """No agent of the pool has a board of the job's target."""


class AgentPool:
    """Measure many models through agents (see the module docstring)."""

    def __init__(self, agents: Sequence[AgentAddress | str] = (), *, token: str | None = None,
                 retry_for_s: float = 20.0, down_for_s: float = 30.0, refresh_s: float = 2.0):
        self._agents: list[_Agent] = []
        self._lock = threading.Lock()
        self._callback_lock = threading.Lock()
        self._local = None
        self.down_for_s, self.refresh_s = down_for_s, refresh_s
        for a in agents:
            address = a if isinstance(a, AgentAddress) else AgentAddress.parse(a, token)
            self._add(address, retry_for_s)

    def _add(self, address: AgentAddress, retry_for_s: float) -> None:
        client = AgentClient(address.address, address.token, address.root_certificate, retry_for_s=retry_for_s)
        agent = _Agent(address, client)
        self._agents.append(agent)
        try:
            self._refresh(agent, force=True)
        except AgentError as exc:
            agent.down_until = time.monotonic() + self.down_for_s
            agent.error = str(exc)

    @classmethod
    def local(cls, targets: Sequence[str], boards_per_target: int = 1, **kw) -> AgentPool:
        """A pool of one loopback agent with ``boards_per_target`` virtual boards of each target."""
        from measure_agent.backends import BoardSpec
        from measure_agent.config import AgentConfig
        from measure_agent.service import serve

        tmp = tempfile.TemporaryDirectory(prefix="agent-pool-")
        boards = tuple(BoardSpec(id=f"vb-{t.lower()}-{i}", kind="virtual", target=t)
                       for t in dict.fromkeys(targets) for i in range(boards_per_target))
        token = secrets.token_hex(16)
        cfg = AgentConfig(listen="127.0.0.1:0", journal=Path(tmp.name) / "journal.sqlite", clients={"pool": token},
                          boards=boards)
        server, agent, port = serve(cfg)
        pool = cls([AgentAddress(f"127.0.0.1:{port}", token)], **kw)
        pool._local = (server, agent, tmp)
        return pool

    def close(self) -> None:
        for a in self._agents:
            a.client.close()
        if self._local is not None:
            server, agent, tmp = self._local
            server.stop(grace=1).wait()
            agent.close()
            tmp.cleanup()
            self._local = None

    def __enter__(self) -> AgentPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- state ---------------------------------------------------------------------------------------------------

    def _refresh(self, agent: _Agent, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - agent.refreshed < self.refresh_s:
            return
        boards = agent.client.boards()
        counts: dict[str, int] = {}
        queued: dict[str, int] = {}
        for b in boards:
            if b.state == "offline":
                continue
            t = b.target.lower()
            counts[t] = counts.get(t, 0) + 1
            queued[t] = queued.get(t, 0) + int(b.queue_length)
        agent.boards, agent.reported, agent.refreshed = counts, queued, now

    def boards(self) -> dict[str, int]:
        """Boards per target over the agents that answer."""
        out: dict[str, int] = {}
        for a in self._agents:
            for t, n in a.boards.items():
                out[t] = out.get(t, 0) + n
        return out

    @property
    def capacity(self) -> int:
        return max(1, sum(self.boards().values()))

    def _pick(self, target: str, exclude: set[int]) -> _Agent:
        t = target.lower()
        now = time.monotonic()
        with self._lock:
            live = [a for i, a in enumerate(self._agents) if t in a.boards and i not in exclude and a.down_until <= now]
            if not live:  # all down or excluded: try the ones that are down rather than give up
                live = [a for i, a in enumerate(self._agents) if t in a.boards and i not in exclude]
            if not live:
                known = sorted(self.boards())
                raise NoAgentError(f"no agent has a board of {target}" + (f" (targets: {', '.join(known)})"
                                                                          if known else " (no agent answers)"))
            best = min(live, key=lambda a: max(a.in_flight.get(t, 0), a.reported.get(t, 0)) / a.boards[t])
            best.in_flight[t] = best.in_flight.get(t, 0) + 1
            return best

    def _release(self, agent: _Agent, target: str) -> None:
        with self._lock:
            t = target.lower()
            agent.in_flight[t] = max(0, agent.in_flight.get(t, 0) - 1)

    # --- measuring -----------------------------------------------------------------------------------------------

    def _send(self, agent: _Agent, job: MeasureJob):
        kwargs = dict(runtime_variant=job.runtime_variant, float_abi=job.float_abi, opt_level=job.opt_level,
                      repetitions=job.repetitions, request_id=job.request_id)
        if job.placement:
            if "placement" not in inspect.signature(agent.client.measure).parameters:
                raise ValueError("this agent client cannot send a placement yet")
            kwargs["placement"] = job.placement
        return agent.client.measure(job.model, job.target, **kwargs)

    def measure(self, job: MeasureJob) -> Outcome:
        """Measure one job (with failover); never raises for a measurement error: see :attr:`Outcome.error`."""
        start = time.monotonic()
        tried: set[int] = set()
        outcome = Outcome(job)
        while True:
            try:
                agent = self._pick(job.target, tried)
            except NoAgentError as exc:
                outcome.error = outcome.error or str(exc)
                break
            index = self._agents.index(agent)
            outcome.attempts += 1
            outcome.agent = agent.address.address
            try:
                outcome.result = self._send(agent, job)
                outcome.error = None
                try:
                    self._refresh(agent)
                except AgentError:
                    pass
                break
            except AgentError as exc:
                outcome.error = f"{agent.address.address}: {exc}"
                kind = getattr(exc, "kind", "")
                if kind in MODEL_ERRORS or (not kind and exc.code not in FAILOVER):
                    break  # the model's own error: the same everywhere
                if kind != "no_board":  # unreachable, or its board stopped answering: avoid it for a while
                    agent.down_until = time.monotonic() + self.down_for_s
                tried.add(index)
            except ValueError as exc:
                outcome.error = str(exc)
                break
            finally:
                self._release(agent, job.target)
        outcome.seconds = time.monotonic() - start
        return outcome

    def measure_many(self, jobs: Iterable[MeasureJob], *, on_result: Callable[[Outcome], None] | None = None,
                     max_in_flight: int | None = None) -> list[Outcome]:
        """Measure ``jobs`` in parallel (as many in flight as there are boards, or ``max_in_flight``); returns the
        outcomes in the order of ``jobs``."""
        jobs = list(jobs)
        workers = max(1, min(max_in_flight or self.capacity, len(jobs) or 1))

        def run(job: MeasureJob) -> Outcome:
            outcome = self.measure(job)
            if on_result is not None:
                with self._callback_lock:
                    on_result(outcome)
            return outcome

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agent-pool") as ex:
            return list(ex.map(run, jobs))
