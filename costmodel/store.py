"""The measurement store: per-layer and per-model measurements that anyone can append to and read.

A SQLite file by default (a path, or ``sqlite:///path``); a PostgreSQL URL (``postgresql://user@host/db``,
driven by psycopg) for a lab's shared store. Two tables, created on first use (schema version in
``store_meta``):

``model_measurements`` (one row per measured model)
    ``measurement_id`` (primary key: the agent request id, or an import's content hash), ``model_sha256``,
    ``model_name``, ``sweep`` (the sweep that generated it, or ``""``), ``spec`` (JSON of its generator
    parameters), the context columns (:data:`costmodel.features.CONTEXT_COLUMNS`), ``board_id``,
    ``repetitions``, ``n_layers``, ``total_macs``, ``total_cycles``, ``layer_cycles`` (sum over its
    layers: the difference to ``total_cycles`` is the model-level overhead), ``latency_s``, ``energy_j``,
    ``energy_source``, ``plan_bytes``, ``arena_bytes``, ``measured_at`` (Unix seconds), ``source`` (agent
    address, or the imported file)
``layer_measurements`` (one row per layer; primary key ``measurement_id, layer_index``)
    ``measurement_id``, ``model_name``, ``sweep``, the context columns, the layer columns and the measured
    columns of :mod:`costmodel.features` (shapes as JSON text), ``measured_at``, ``source``

Appending a measurement whose id is stored already does nothing (:meth:`MeasurementStore.add` returns
False): sweeps are resumable and two writers never duplicate a row. ``export``/``import_file`` move the
layer (or model) table as CSV or Parquet, so per-layer tables of another tool or lab can be fitted too;
an imported file needs at least ``target``, ``op``, ``macs`` and ``cycles`` or ``latency_s`` (with
``clock_hz``) per row.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from costmodel.features import CONTEXT_COLUMNS, FLOAT_COLUMNS, INT_COLUMNS, LAYER_COLUMNS, MEASURED_COLUMNS

SCHEMA_VERSION = 1
DEFAULT_STORE = "measurements.sqlite"

MODEL_COLUMNS = ("measurement_id", "model_sha256", "model_name", "sweep", "spec", *CONTEXT_COLUMNS, "board_id",
                 "repetitions", "n_layers", "total_macs", "total_cycles", "layer_cycles", "latency_s", "energy_j",
                 "energy_source", "plan_bytes", "arena_bytes", "measured_at", "source")
ROW_COLUMNS = ("measurement_id", "model_name", "sweep", *CONTEXT_COLUMNS, *LAYER_COLUMNS, *MEASURED_COLUMNS,
               "measured_at", "source")
_MODEL_INTS = frozenset({"clock_hz", "repetitions", "n_layers", "total_macs", "total_cycles", "layer_cycles",
                         "plan_bytes", "arena_bytes"})
_MODEL_FLOATS = frozenset({"latency_s", "energy_j", "measured_at"})
_ROW_FLOATS = FLOAT_COLUMNS | {"measured_at"}
REQUIRED_IMPORT = ("target", "op", "macs")


class StoreError(ValueError):
    """The store cannot be opened, or a file to import is not a measurement table."""


def normalise_url(url: str | Path) -> str:
    """A SQLAlchemy URL for a path, ``sqlite:///...`` or ``postgresql://...`` (psycopg driver)."""
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser()}"


def _tables(sa):
    meta = sa.MetaData()

    def col(name: str, ints, floats, **kw):
        kind = sa.BigInteger if name in ints else sa.Double if name in floats else sa.Text
        return sa.Column(name, kind, **kw)

    models = sa.Table("model_measurements", meta,
                      *[col(c, _MODEL_INTS, _MODEL_FLOATS, primary_key=(c == "measurement_id"))
                        for c in MODEL_COLUMNS])
    layers = sa.Table("layer_measurements", meta,
                      *[col(c, INT_COLUMNS, _ROW_FLOATS, primary_key=c in ("measurement_id", "layer_index"))
                        for c in ROW_COLUMNS],
                      sa.Index("ix_layer_context", "target", "runtime_variant", "op"))
    store_meta = sa.Table("store_meta", meta, sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text))
    return meta, models, layers, store_meta


def _clean(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0 if kind in ("int", "float") else ""
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def _record(row: Mapping, columns: Iterable[str], ints, floats) -> dict:
    return {c: _clean(row.get(c), "int" if c in ints else "float" if c in floats else "str") for c in columns}


class MeasurementStore:
    """A measurement store at ``url`` (see the module docstring). Safe to share between processes."""

    def __init__(self, url: str | Path = DEFAULT_STORE, *, create: bool = True):
        import sqlalchemy as sa

        self.url = normalise_url(url)
        self._sa = sa
        if self.url.startswith("sqlite:///") and not create:
            path = Path(self.url[len("sqlite:///"):])
            if not path.exists():
                raise StoreError(f"no measurement store at {path}")
        try:
            self.engine = sa.create_engine(self.url, future=True)
            self._meta, self.models_table, self.layers_table, self.meta_table = _tables(sa)
            with self.engine.begin() as conn:
                self._meta.create_all(conn)
                version = conn.execute(sa.select(self.meta_table.c.value).where(
                    self.meta_table.c.key == "schema_version")).scalar()
                if version is None:
                    conn.execute(self.meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                elif int(version) != SCHEMA_VERSION:
                    raise StoreError(f"store {self.display_url} has schema version {version}, this version reads "
                                     f"{SCHEMA_VERSION}")
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the measurement store {self.display_url}: "
                             f"{str(exc.orig if getattr(exc, 'orig', None) else exc).splitlines()[0]}") from None
        except ModuleNotFoundError as exc:
            raise StoreError(f"cannot open {self.display_url}: {exc}") from None

    @property
    def display_url(self) -> str:
        """The URL without a password."""
        try:
            return self._sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - only for messages
            return self.url

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> MeasurementStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------------------------

    def add(self, model: Mapping, layers: Iterable[Mapping]) -> bool:
        """Append one measured model and its layers in one transaction; False if its id is stored already."""
        sa = self._sa
        record = _record(model, MODEL_COLUMNS, _MODEL_INTS, _MODEL_FLOATS)
        if not record["measurement_id"]:
            raise StoreError("a measurement needs a measurement_id")
        record["measured_at"] = record["measured_at"] or time.time()
        rows = []
        for layer in layers:
            row = {c: layer.get(c, model.get(c)) for c in ROW_COLUMNS}
            row["measurement_id"] = record["measurement_id"]
            row["measured_at"] = row.get("measured_at") or record["measured_at"]
            rows.append(_record(row, ROW_COLUMNS, INT_COLUMNS, _ROW_FLOATS))
        try:
            with self.engine.begin() as conn:
                if self._exists(conn, record["measurement_id"]):
                    return False
                conn.execute(self.models_table.insert(), [record])
                if rows:
                    conn.execute(self.layers_table.insert(), rows)
        except sa.exc.IntegrityError:  # another writer stored it between our check and insert
            return False
        return True

    def add_layers(self, rows: Iterable[Mapping], source: str = "") -> int:
        """Append layer rows without model rows (imports of per-layer tables); returns rows added."""
        sa = self._sa
        records = []
        for row in rows:
            rec = _record({**row, "source": row.get("source") or source}, ROW_COLUMNS, INT_COLUMNS, _ROW_FLOATS)
            if not rec["measurement_id"]:
                digest = hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:24]
                rec["measurement_id"] = f"import-{digest}"
            rec["measured_at"] = rec["measured_at"] or time.time()
            records.append(rec)
        added = 0
        with self.engine.begin() as conn:
            existing = self._existing_pairs(conn, {r["measurement_id"] for r in records})
            fresh = [r for r in records if (r["measurement_id"], r["layer_index"]) not in existing]
            seen = set()
            unique = []
            for r in fresh:
                k = (r["measurement_id"], r["layer_index"])
                if k not in seen:
                    seen.add(k)
                    unique.append(r)
            if unique:
                conn.execute(self.layers_table.insert(), unique)
                added = len(unique)
        return added

    def add_models(self, rows: Iterable[Mapping], source: str = "") -> int:
        """Append model rows (imports); rows whose id is stored already are skipped."""
        records = [_record({**r, "source": r.get("source") or source}, MODEL_COLUMNS, _MODEL_INTS, _MODEL_FLOATS)
                   for r in rows]
        with self.engine.begin() as conn:
            known = self.measured_ids([r["measurement_id"] for r in records], conn)
            fresh = list({r["measurement_id"]: r for r in records if r["measurement_id"] not in known}.values())
            if fresh:
                conn.execute(self.models_table.insert(), fresh)
        return len(fresh)

    # --- reading ---------------------------------------------------------------------------------------------

    def _exists(self, conn, measurement_id: str) -> bool:
        t = self.models_table
        return conn.execute(self._sa.select(t.c.measurement_id).where(t.c.measurement_id == measurement_id)
                            ).first() is not None

    def _existing_pairs(self, conn, ids: set[str]) -> set[tuple[str, int]]:
        t = self.layers_table
        found: set[tuple[str, int]] = set()
        ids = sorted(ids)
        for i in range(0, len(ids), 500):
            q = self._sa.select(t.c.measurement_id, t.c.layer_index).where(t.c.measurement_id.in_(ids[i:i + 500]))
            found.update((a, int(b)) for a, b in conn.execute(q))
        return found

    def has(self, measurement_id: str) -> bool:
        with self.engine.connect() as conn:
            return self._exists(conn, measurement_id)

    def measured_ids(self, ids: Iterable[str], conn=None) -> set[str]:
        """Which of ``ids`` are stored (as model measurements)."""
        ids = sorted(set(ids))
        t = self.models_table
        found: set[str] = set()

        def run(c):
            for i in range(0, len(ids), 500):
                found.update(r[0] for r in c.execute(self._sa.select(t.c.measurement_id).where(
                    t.c.measurement_id.in_(ids[i:i + 500]))))

        if conn is not None:
            run(conn)
        else:
            with self.engine.connect() as c:
                run(c)
        return found

    def _select(self, table, filters: Mapping[str, Any]):
        q = self._sa.select(table)
        for key, value in filters.items():
            if value is None or value == "":
                continue
            if key not in table.c:
                raise StoreError(f"unknown column {key!r} to filter on")
            column = table.c[key]
            q = q.where(column.in_(list(value)) if isinstance(value, (list, tuple, set)) else column == value)
        return q

    def layers(self, **filters):
        """Layer rows as a pandas DataFrame (columns :data:`ROW_COLUMNS`), filtered by column values."""
        import pandas as pd

        with self.engine.connect() as conn:
            result = conn.execute(self._select(self.layers_table, filters))
            return pd.DataFrame([tuple(r) for r in result.fetchall()], columns=list(result.keys()))

    def models(self, **filters):
        """Model rows as a pandas DataFrame (columns :data:`MODEL_COLUMNS`)."""
        import pandas as pd

        with self.engine.connect() as conn:
            result = conn.execute(self._select(self.models_table, filters))
            return pd.DataFrame([tuple(r) for r in result.fetchall()], columns=list(result.keys()))

    def counts(self) -> dict[str, int]:
        sa = self._sa
        with self.engine.connect() as conn:
            return {"models": conn.execute(sa.select(sa.func.count()).select_from(self.models_table)).scalar_one(),
                    "layers": conn.execute(sa.select(sa.func.count()).select_from(self.layers_table)).scalar_one()}

    def targets(self) -> list[str]:
        t = self.layers_table
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(self._sa.select(t.c.target).distinct()))

    # --- files -----------------------------------------------------------------------------------------------

    def export(self, path: str | Path, what: str = "layers", **filters) -> int:
        """Write the layer (or model) table to ``path`` (.csv or .parquet); returns the rows written."""
        path = Path(path)
        frame = self.layers(**filters) if what == "layers" else self.models(**filters)
        write_frame(frame, path)
        return len(frame)

    def import_file(self, path: str | Path, what: str = "layers") -> int:
        """Append the rows of a .csv or .parquet file (layer rows, or model rows); returns rows added."""
        frame = read_frame(path)
        rows = frame.to_dict("records")
        if what == "models":
            missing = [c for c in ("measurement_id", "target") if c not in frame.columns]
            if missing:
                raise StoreError(f"{path}: not a model table (no column {', '.join(missing)})")
            return self.add_models(rows, source=f"import:{Path(path).name}")
        rows = [normalise_layer_row(r, f"{path}: row {i + 1}") for i, r in enumerate(rows)]
        return self.add_layers(rows, source=f"import:{Path(path).name}")


def normalise_layer_row(row: Mapping, where: str = "row") -> dict:
    """Fill in what a per-layer table of another tool may lack: cycles from latency x clock (or the
    reverse), an empty kernel, layer index 0. StoreError when the row cannot be a measurement."""
    out = {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
    missing = [c for c in REQUIRED_IMPORT if c not in out or out[c] in ("", None)]
    if missing:
        raise StoreError(f"{where}: missing {', '.join(missing)} (a layer row needs target, op, macs and cycles or "
                         f"latency_s with clock_hz)")
    cycles, latency, clock = out.get("cycles"), out.get("latency_s"), out.get("clock_hz")
    if not cycles and latency and clock:
        out["cycles"] = int(round(float(latency) * float(clock)))
    elif cycles and not latency and clock:
        out["latency_s"] = float(cycles) / float(clock)
    if not out.get("cycles") and not out.get("latency_s"):
        raise StoreError(f"{where}: no cycles or latency_s")
    if not out.get("clock_hz"):
        raise StoreError(f"{where}: no clock_hz")
    out.setdefault("layer_index", 0)
    return out


def read_frame(path: str | Path):
    """A DataFrame from a .csv or .parquet file; StoreError with the file name on failure."""
    import pandas as pd

    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many kinds for a bad file
        raise StoreError(f"{path}: cannot read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None
    raise StoreError(f"{path}: use a .csv or .parquet file")


def write_frame(frame, path: str | Path) -> None:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise StoreError(f"{path}: use a .csv or .parquet file")
    tmp = path.with_name(path.name + ".tmp")
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    tmp.replace(path)


def open_store(url: str | Path | None = None, *, create: bool = True) -> MeasurementStore:
    """The store at ``url`` (default ``measurements.sqlite`` in the working folder)."""
    return MeasurementStore(url or DEFAULT_STORE, create=create)
