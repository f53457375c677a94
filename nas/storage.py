"""Where studies live: any Optuna RDB URL (SQLite by default, PostgreSQL to scale out), and what a study is.

A study remembers what it searches (space, dataset, objectives, budgets, target) in its user attributes, so
a second ``nas search`` with the same ``--study`` and ``--storage`` joins it (or resumes it) and is
refused, before anything is written, when its options describe another search. Trials of a worker that
died are failed after the heartbeat's grace period and run again (Optuna's heartbeat and retry callback).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import optuna

DEFAULT_STORAGE = "sqlite:///nas-studies.sqlite"
#: seconds between heartbeats of a running trial, and after which a silent trial is failed and retried
HEARTBEAT_S = 10
GRACE_S = 60
META_KEY = "nas"
#: what must agree between the workers of one study
IDENTITY = ("space", "dataset", "dataset_fingerprint", "objectives", "budgets", "target")


class StorageError(RuntimeError):
    """A storage URL that cannot be opened, or a study that is another search."""


def normalise(url: str) -> str:
    """An Optuna RDB URL: a bare path becomes ``sqlite:///path``; ``postgresql://`` uses psycopg 3."""
    text = str(url).strip()
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser()}"
    return text


def new_sqlite_files(*urls: str) -> list[Path]:
    """The SQLite files of ``urls`` that do not exist yet (so a command that fails can remove what it created)."""
    out = []
    for url in urls:
        norm = normalise(url)
        if norm.startswith("sqlite:///"):
            path = Path(norm[len("sqlite:///"):]).expanduser()
            if not path.exists():
                out.append(path)
    return out


def remove_files(paths: list[Path]) -> None:
    """Remove SQLite files (and their journals) that a failed command created."""
    for path in paths:
        for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
            p.unlink(missing_ok=True)


def display(url: str) -> str:
    """The URL without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(normalise(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (only for messages)
        return url


def open_storage(url: str, *, heartbeat: bool = True) -> optuna.storages.BaseStorage:
    """The RDB storage at ``url`` (with Optuna's cache of finished trials in front, as Optuna does for a URL);
    StorageError with one line when it cannot be opened."""
    import sqlalchemy

    norm = normalise(url)
    if norm.startswith("sqlite:///"):
        folder = Path(norm[len("sqlite:///"):]).expanduser().parent
        if not folder.is_dir():
            raise StorageError(f"cannot open the storage {display(url)}: no folder {folder}")
    engine_kwargs = {"pool_pre_ping": True} if not norm.startswith("sqlite") else \
        {"connect_args": {"timeout": 60}}
    for attempt in range(4):
        try:
            storage = _rdb(norm, engine_kwargs, heartbeat)
            break
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            # two workers creating Optuna's tables in a new database at the same moment: the other one won
            if attempt == 3 or "already exists" not in str(exc):
                raise StorageError(f"cannot open the storage {display(url)}: {_reason(exc)}") from None
            time.sleep(0.5 + attempt)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, RuntimeError) as exc:
            raise StorageError(f"cannot open the storage {display(url)}: {_reason(exc)}") from None
    if norm.startswith("sqlite"):
        fast_sqlite(storage.engine)
    return optuna.storages._CachedStorage(storage)


def _rdb(url: str, engine_kwargs: dict, heartbeat: bool) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        kwargs: dict[str, Any] = {}
        if heartbeat:
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)
            kwargs = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S,
                      "heartbeat_stale_trial_callback": retry}
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return (" ".join(str(cause).split()) or type(cause).__name__)[:300]


def fast_sqlite(engine) -> None:
    """Write-ahead log and no fsync per commit (a trial writes each parameter and attribute on its own): safe
    against a crash of the search, and many times faster on slow disks. Several processes on one host may share
    the file; workers on several machines use PostgreSQL."""
    import sqlalchemy

    def pragmas(connection, record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", pragmas)
    engine.dispose()


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def study_meta(storage: optuna.storages.BaseStorage, name: str) -> dict | None:
    """The search a stored study is (its ``nas`` user attribute), None if there is no such study."""
    for s in storage.get_all_studies():
        if s.study_name == name:
            return dict(s.user_attrs.get(META_KEY) or {})
    return None


def trial_count(storage: optuna.storages.BaseStorage, name: str) -> int:
    study_id = storage.get_study_id_from_name(name)
    return len(storage.get_all_trials(study_id, deepcopy=False))


def check_join(name: str, stored: dict, wanted: dict) -> None:
    """StorageError naming the first difference between a stored study and the search asked for."""
    if not stored:
        return  # a study another worker has just created and not described yet
    for key in IDENTITY:
        if stored.get(key) != wanted.get(key):
            raise StorageError(f"study {name!r} is a search with {key} {stored.get(key)!r}, not {wanted.get(key)!r}; "
                               "give the same options to join it, or another --study")


def load_study(url: str, name: str) -> optuna.Study:
    """An existing study (for reports); StorageError if there is none (a SQLite file that does not exist is
    not created: opening it would leave an empty Optuna database behind)."""
    norm = normalise(url)
    if norm.startswith("sqlite:///") and not Path(norm[len("sqlite:///"):]).expanduser().is_file():
        raise StorageError(f"no study {name!r} in {display(url)}: no such file")
    storage = open_storage(url, heartbeat=False)
    if name not in study_names(storage):
        known = study_names(storage)
        raise StorageError(f"no study {name!r} in {display(url)}" + (f" (studies: {', '.join(known)})" if known else ""))
    return optuna.load_study(study_name=name, storage=storage)
