"""The measurement store: append (idempotent by measurement id), read, export/import CSV and Parquet, imports of
another lab's per-layer tables; the same on a real PostgreSQL server started for the test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from costmodel.store import MeasurementStore, StoreError, normalise_url, open_store
from tests.postgres import postgres_server

CONTEXT = {"target": "NUCLEO-L496ZG", "clock_hz": 80_000_000, "runtime_variant": "simd", "float_abi": "hard",
           "opt_level": "-O2", "placement": "sram", "board_kind": "virtual", "board_model_version": "v1",
           "runtime": "nn", "firmware_build_id": "abc"}


def measurement(mid: str, n_layers: int = 2):
    layers = [{"layer_index": i, "layer_name": f"l{i}", "op": "CONV_2D", "kernel": "conv2d_s8_simd", "dtype": "int8",
               "input_shapes": [[1, 8, 8, 3 + i]], "output_shape": [1, 8, 8, 4], "alignment": "odd",
               "in_channels": 3 + i, "out_channels": 4, "kernel_h": 3, "kernel_w": 3, "stride_h": 1, "stride_w": 1,
               "padding": "SAME", "depth_multiplier": 0, "input_length": 0, "macs": 1000 * (i + 1), "params": 10,
               "weight_bytes": 10, "cycles": 5000 * (i + 1), "latency_s": 5000 * (i + 1) / 80e6, "energy_j": 1e-6,
               "energy_source": "power-model"} for i in range(n_layers)]
    model = {"measurement_id": mid, "model_sha256": "ff", "model_name": f"net-{mid}", "sweep": "conv", "spec": {},
             **CONTEXT, "board_id": "vb-0", "repetitions": 3, "n_layers": n_layers, "total_macs": 3000,
             "total_cycles": 15100, "layer_cycles": 15000, "latency_s": 15100 / 80e6, "energy_j": 2e-6,
             "energy_source": "power-model", "plan_bytes": 100, "arena_bytes": 64}
    return model, [{**CONTEXT, **layer, "model_name": model["model_name"], "sweep": "conv"} for layer in layers]


def exercise(store: MeasurementStore, tmp_path: Path) -> None:
    assert store.add(*measurement("a")) is True
    assert store.add(*measurement("a")) is False  # idempotent: resumable sweeps, concurrent writers
    assert store.add(*measurement("b", 3)) is True
    assert store.counts() == {"models": 2, "layers": 5}
    assert store.measured_ids(["a", "b", "c"]) == {"a", "b"}
    layers = store.layers(target="NUCLEO-L496ZG")
    assert len(layers) == 5 and set(layers["measurement_id"]) == {"a", "b"}
    assert layers["cycles"].dtype.kind == "i" and layers["input_shapes"].iloc[0].startswith("[[")
    assert len(store.layers(measurement_id="b")) == 3
    assert store.models()["layer_cycles"].sum() == 15000 * 2

    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"layers{suffix}"
        assert store.export(out) == 5
        other = open_store(tmp_path / f"copy{suffix}.sqlite")
        assert other.import_file(out) == 5
        assert other.import_file(out) == 0  # rows already stored are skipped
        back = other.layers().sort_values(["measurement_id", "layer_index"]).reset_index(drop=True)
        orig = store.layers().sort_values(["measurement_id", "layer_index"]).reset_index(drop=True)
        assert back.drop(columns=["source"]).equals(orig.drop(columns=["source"]))
        models = tmp_path / f"models{suffix}"
        store.export(models, "models")
        assert other.import_file(models, "models") == 2
        other.close()
    with pytest.raises(StoreError, match="unknown column"):
        store.layers(colour="red")


def test_sqlite_store(tmp_path):
    with open_store(tmp_path / "m.sqlite") as store:
        exercise(store, tmp_path)
    with pytest.raises(StoreError, match="no measurement store"):
        MeasurementStore(tmp_path / "missing.sqlite", create=False)


def test_import_of_a_published_per_layer_table(tmp_path):
    """Another tool's table: latency only (no cycles), no kernel, no ids: cycles come from latency x clock."""
    csv = tmp_path / "published.csv"
    csv.write_text("target,clock_hz,runtime_variant,op,in_channels,out_channels,kernel_h,kernel_w,stride_h,stride_w,"
                   "input_shapes,output_shape,macs,latency_s\n"
                   "NUCLEO-L496ZG,80000000,simd,CONV_2D,15,8,3,3,1,1,\"[[1,12,12,15]]\",\"[1,12,12,8]\",155520,0.0117\n"
                   "NUCLEO-L496ZG,80000000,simd,CONV_2D,16,8,3,3,1,1,\"[[1,12,12,16]]\",\"[1,12,12,8]\",165888,0.0071\n")
    with open_store(tmp_path / "s.sqlite") as store:
        assert store.import_file(csv) == 2
        assert store.import_file(csv) == 0
        rows = store.layers()
        assert sorted(rows["cycles"]) == [568000, 936000]
        assert all(rows["measurement_id"].str.startswith("import-"))
    bad = tmp_path / "bad.csv"
    bad.write_text("target,op\nX,CONV_2D\n")
    with open_store(tmp_path / "s2.sqlite") as store, pytest.raises(StoreError, match="missing macs"):
        store.import_file(bad)
    with pytest.raises(StoreError, match="use a .csv or .parquet"):
        open_store(tmp_path / "s3.sqlite").import_file(tmp_path / "x.txt")


def test_urls():
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("a/b.sqlite") == "sqlite:///a/b.sqlite"
    assert normalise_url("sqlite:///x") == "sqlite:///x"


# --- PostgreSQL ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away PostgreSQL server's URL."""
    with postgres_server("mcu-nas-pg-") as url:
        yield url


def test_postgresql_store(postgres_url, tmp_path):
    store = open_store(postgres_url)
    try:
        exercise(store, tmp_path)
        # a second writer (another process of the lab) sees the rows and cannot duplicate them
        other = open_store(postgres_url)
        assert other.add(*measurement("a")) is False
        assert other.counts()["models"] == 2
        other.close()
    finally:
        store.close()


def test_postgresql_url_errors_are_one_line(postgres_url):
    bad = postgres_url.replace("/postgres", "/no_such_db")
    start = time.monotonic()
    with pytest.raises(StoreError, match="cannot open the measurement store") as info:
        open_store(bad)
    assert "\n" not in str(info.value) and time.monotonic() - start < 30
