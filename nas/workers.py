"""TensorFlow's side of the search, in worker processes: build a candidate from a trial, convert it, train it.

The search process never imports TensorFlow. Each worker (``python -m nas.workers FD``) is a fresh
interpreter that keeps TensorFlow loaded, so a candidate costs its conversion, not an import; a crash of
TensorFlow (its converter can segfault on some layers) fails one candidate and the worker is started again.

A candidate is built in the worker by the search space's ``build(trial, ...)`` on a :class:`RemoteTrial`:
each ``suggest_*`` call is answered by the real Optuna trial in the search process, so the sampler sees a
define-by-run space as usual. Untrained candidates are seeded (the same architecture gives the same bytes,
so a measurement is found again by its request id) and cached on disk by space, parameters and versions.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Iterator

#: a worker silent this long on one job is killed (the job fails)
JOB_TIMEOUT_S = 600.0
START_TIMEOUT_S = 300.0
#: free TensorFlow's graphs after this many jobs
CLEAR_EVERY = 40
CACHE_FORMAT = 3  # 2: known layers lowered to TensorFlow ops before conversion; 3: random biases


class WorkerError(RuntimeError):
    """A job that failed in a worker: ``stage`` is "build", "convert", "train" or "worker" (it crashed)."""

    def __init__(self, message: str, stage: str):
        super().__init__(message)
        self.stage = stage


@dataclass
class Built:
    """An untrained candidate: its parameters, int8 .tflite and which parameter sets which layer."""

    params: dict
    tflite: bytes
    tunables: dict[str, dict[str, str]]
    seconds: dict[str, float] = field(default_factory=dict)
    cached: bool = False


@dataclass
class Trained:
    accuracy: float                  # int8 model on the host interpreter, test split
    float_accuracy: float            # the trained Keras model, test split
    tflite: bytes                    # the trained int8 model
    seconds: dict[str, float] = field(default_factory=dict)


# --- the worker process -----------------------------------------------------------------------------------------


class RemoteTrial:
    """The trial a space builds from in a worker: its ``suggest_*`` calls are answered by the search process."""

    def __init__(self, conn: Connection, number: int):
        self._conn = conn
        self.number = number
        self.params: dict[str, Any] = {}

    def _ask(self, method: str, name: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send(("suggest", method, name, args, kwargs))
        kind, value = self._conn.recv()
        if kind == "error":
            raise ValueError(value)
        self.params[name] = value
        return value

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._ask("suggest_int", name, low, high, step=step, log=log)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return self._ask("suggest_float", name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices):
        return self._ask("suggest_categorical", name, list(choices))


class _RecordingFixedTrial:
    """``optuna.trial.FixedTrial`` that keeps the parameters the space asked for (a replay)."""

    def __init__(self, params: dict):
        import optuna

        self._trial = optuna.trial.FixedTrial(params)
        self.number = 0
        self.params: dict[str, Any] = {}

    def __getattr__(self, name: str):
        attr = getattr(self._trial, name)
        if not name.startswith("suggest_"):
            return attr

        def suggest(param: str, *args, **kwargs):
            value = attr(param, *args, **kwargs)
            self.params[param] = value
            return value

        return suggest


class _Session:
    """One worker's state: the space, the dataset (for training) and the candidate cache."""

    def __init__(self, init: dict):
        from costmodel.convert import quiet
        from nas import convert, spaces

        with quiet():
            import keras
            import tensorflow as tf

        self.keras, self.tf, self.convert = keras, tf, convert
        self.space = spaces.get_space(init["space"], init.get("space_module"))
        self.input_shape = tuple(init["input_shape"])
        self.classes = int(init["classes"])
        self.dataset_spec = init.get("dataset")
        self.seed = int(init.get("seed", 0))
        self._dataset = None
        self.cache = Path(init["cache"]) if init.get("cache") else None
        try:
            source = inspect.getsource(type(self.space))
        except (OSError, TypeError):
            source = ""
        self.version = json.dumps([CACHE_FORMAT, self.space.name, type(self.space).__qualname__,
                                   hashlib.sha256(source.encode()).hexdigest(), tf.__version__, keras.__version__,
                                   list(self.input_shape), self.classes, convert.UNTRAINED_SAMPLES])
        self.jobs = 0

    @property
    def dataset(self):
        if self._dataset is None:
            from nas.datasets import load

            self._dataset = load(self.dataset_spec)
        return self._dataset

    def _tick(self) -> None:
        self.jobs += 1
        if self.jobs % CLEAR_EVERY == 0:
            self.convert.clear()

    def _key(self, params: dict) -> str:
        text = json.dumps([self.version, sorted(params.items())], default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def build(self, trial) -> dict:
        from costmodel.convert import converter_message, quiet

        t0 = time.perf_counter()
        self.keras.utils.set_random_seed(self.seed)
        try:
            with quiet():
                model, tunables = self.space.candidate(trial, self.input_shape, self.classes)
        except ValueError as exc:  # a suggest that Optuna refused, or a layer that cannot be built
            raise WorkerError(f"cannot build the candidate: {exc}", "build") from None
        except Exception as exc:  # noqa: BLE001 (a user's space can raise anything)
            raise WorkerError(f"cannot build the candidate: {type(exc).__name__}: {exc}", "build") from None
        t1 = time.perf_counter()
        key = self._key(trial.params)
        path = self.cache / f"{key}.tflite" if self.cache else None
        cached = path is not None and path.exists()
        if cached:
            data = path.read_bytes()
        else:
            try:
                data = self.convert.untrained_tflite(model, self.seed)
            except Exception as exc:  # noqa: BLE001 (ConverterError, RuntimeError, ValueError, ...)
                raise WorkerError(f"TensorFlow cannot convert it to int8 .tflite: {converter_message(exc)}",
                                  "convert") from None
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}")
                tmp.write_bytes(data)
                tmp.replace(path)
        t2 = time.perf_counter()
        self._tick()
        return {"params": dict(trial.params), "tflite": data, "tunables": tunables, "cached": cached,
                "seconds": {"build": t1 - t0, "convert": t2 - t1}}

    def train(self, params: dict, epochs: int, batch_size: int, learning_rate: float) -> dict:
        import numpy as np

        from costmodel.convert import converter_message, quiet
        from nas.evaluate import accuracy

        d = self.dataset
        keras = self.keras
        t0 = time.perf_counter()
        keras.utils.set_random_seed(self.seed)
        try:
            with quiet():
                model = self.space.replay(params, self.input_shape, self.classes)
        except Exception as exc:  # noqa: BLE001
            raise WorkerError(f"cannot build the candidate: {type(exc).__name__}: {exc}", "build") from None
        t1 = time.perf_counter()
        try:
            with quiet():
                model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                              loss="sparse_categorical_crossentropy")
                model.fit(d.x_train, d.y_train, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
                probs = np.asarray(model(d.x_test, training=False))
        except Exception as exc:  # noqa: BLE001
            raise WorkerError(f"training failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                              "train") from None
        float_accuracy = float(np.mean(probs.argmax(axis=-1) == d.y_test))
        t2 = time.perf_counter()
        try:
            data = self.convert.to_tflite(model, "int8", self.convert.data_representative(d.x_train))
        except Exception as exc:  # noqa: BLE001
            raise WorkerError(f"TensorFlow cannot convert the trained model: {converter_message(exc)}",
                              "convert") from None
        t3 = time.perf_counter()
        acc = accuracy(data, d.x_test, d.y_test)
        t4 = time.perf_counter()
        self._tick()
        return {"accuracy": acc, "float_accuracy": float_accuracy, "tflite": data,
                "seconds": {"build": t1 - t0, "train": t2 - t1, "convert": t3 - t2, "evaluate": t4 - t3}}


def serve(conn: Connection) -> None:
    """The worker's loop: one ``init``, then jobs one at a time until ``stop`` or the search goes away."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the search, which stops its workers
    try:
        kind, init = conn.recv()
        try:
            session = _Session(init)
        except Exception as exc:  # noqa: BLE001 (reported to the search, which stops with it)
            conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
            return
        conn.send(("ready", {"tensorflow": session.tf.__version__}))
        while True:
            message = conn.recv()
            op = message[0]
            if op == "stop":
                break
            try:
                if op == "build":
                    number, params = message[1], message[2]
                    trial = RemoteTrial(conn, number) if params is None else _RecordingFixedTrial(params)
                    conn.send(("done", session.build(trial)))
                elif op == "train":
                    conn.send(("done", session.train(*message[1:])))
                else:
                    conn.send(("failed", f"unknown worker command {op!r}", "worker"))
            except WorkerError as exc:
                conn.send(("failed", str(exc), exc.stage))
    except (EOFError, OSError, BrokenPipeError):
        pass


def _die_with_parent() -> None:
    """Linux: the worker gets SIGKILL when the search dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# --- the search's side ----------------------------------------------------------------------------------------


class TFWorker:
    """One worker process and the exchange with it (one job at a time)."""

    def __init__(self, init: dict, threads: int = 1):
        self.init = init
        self.threads = threads
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._ready = False
        self._spawn()

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_NUM_INTRAOP_THREADS": str(self.threads),
               "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(self.threads),
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))}
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "nas.workers", str(theirs.fileno())],
                                          pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                          close_fds=True)
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send(("init", self.init))
        self._ready = False

    def _receive(self, timeout: float):
        if not self._conn.poll(timeout):
            raise WorkerError(self._restart(f"sent nothing for {timeout:.0f} s"), "worker")
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            raise WorkerError(self._restart("stopped"), "worker") from None

    def _restart(self, why: str) -> str:
        proc = self._proc
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            code = proc.returncode
        name = ""
        if code is not None and code < 0:
            try:
                name = f" ({signal.Signals(-code).name})"
            except ValueError:
                name = f" (signal {-code})"
        self._conn.close()
        self.restarts += 1
        self._spawn()
        return f"the TensorFlow worker {why}{name}; it has been restarted"

    def wait_ready(self) -> None:
        if self._ready:
            return
        reply = self._receive(START_TIMEOUT_S)
        if reply[0] == "fatal":
            raise WorkerError(f"the TensorFlow worker cannot start: {reply[1]}", "worker")
        self._ready = True

    def _job(self, message: tuple, trial=None, timeout: float = JOB_TIMEOUT_S):
        self.wait_ready()
        try:
            self._conn.send(message)
        except (OSError, ValueError):
            raise WorkerError(self._restart("stopped"), "worker") from None
        while True:
            reply = self._receive(timeout)
            if reply[0] == "suggest":
                _, method, name, args, kwargs = reply
                try:
                    self._conn.send(("value", getattr(trial, method)(name, *args, **kwargs)))
                except Exception as exc:  # noqa: BLE001 (Optuna's refusal goes back to the space)
                    self._conn.send(("error", f"{type(exc).__name__}: {exc}"))
                continue
            if reply[0] == "done":
                return reply[1]
            raise WorkerError(reply[1], reply[2])

    def build(self, trial) -> Built:
        """Build ``trial``'s candidate (its suggestions answered here) and convert it untrained to int8."""
        return Built(**self._job(("build", trial.number, None), trial))

    def replay(self, params: dict) -> Built:
        """The untrained candidate of fixed ``params`` (a repaired parametrization)."""
        return Built(**self._job(("build", 0, dict(params))))

    def train(self, params: dict, epochs: int, batch_size: int = 32, learning_rate: float = 3e-3) -> Trained:
        return Trained(**self._job(("train", dict(params), int(epochs), int(batch_size), float(learning_rate))))

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            self._conn.send(("stop",))
        except (OSError, ValueError):
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self._conn.close()
        self._proc = None


class TFWorkers:
    """A pool of :class:`TFWorker` processes; :meth:`worker` lends one to a trial."""

    def __init__(self, processes: int, init: dict):
        threads = max(1, (os.cpu_count() or 1) // max(1, processes))
        self._all = [TFWorker(init, threads) for _ in range(max(1, processes))]
        self._idle: queue.Queue[TFWorker] = queue.Queue()
        for w in self._all:
            self._idle.put(w)
        self._lock = threading.Lock()

    def wait_ready(self) -> None:
        for w in self._all:
            w.wait_ready()

    @contextmanager
    def worker(self) -> Iterator[TFWorker]:
        w = self._idle.get()
        try:
            yield w
        finally:
            self._idle.put(w)

    @property
    def restarts(self) -> int:
        return sum(w.restarts for w in self._all)

    def close(self) -> None:
        for w in self._all:
            w.close()


def candidate_cache() -> Path:
    """Where untrained candidates are kept (under the project's one cache root)."""
    from measure_agent.firmware_build.cache import cache_root

    return cache_root() / "nas-candidates"


def main(argv: list[str]) -> int:
    """``python -m nas.workers FD``: FD is this worker's end of the search's socket pair."""
    serve(Connection(int(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
