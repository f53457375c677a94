"""The measured-half commands on bad input: one clear line, exit code 2, nothing written; and their normal
output on a small synthetic store."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from costmodel.cli import app
from costmodel.latency_model import FILE_VERSION
from costmodel.store import open_store
from costmodel.sweeps import NetSpec, conv, tflite_bytes
from measure_agent.firmware_build import cache_dir
from tests.test_costmodel_latency_model import training_rows

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    store = tmp / "store.sqlite"
    rows = training_rows()
    with open_store(store) as db:
        i = 0
        while i < len(rows):  # models of 1 to 4 layers, overhead 100 + 10 per layer
            k = 1 + i % 4
            part = [{**r, "layer_index": j} for j, r in enumerate(rows[i:i + k])]
            cycles = sum(r["cycles"] for r in part)
            model = {**part[0], "measurement_id": f"m{i}", "n_layers": len(part),
                     "total_cycles": cycles + 100 + 10 * len(part), "layer_cycles": cycles}
            db.add(model, [{**r, "measurement_id": f"m{i}"} for r in part])
            i += k
    model_file = tmp / "model.json"
    out = runner.invoke(app, ["fit", "--store", str(store), "--out", str(model_file)])
    assert out.exit_code == 0, out.output
    tflite = tmp / "net.tflite"
    tflite.write_bytes(tflite_bytes(NetSpec("cli-net", (12, 12, 3), (conv(15, 3), conv(8, 3))), cache_dir("test-models")))
    return {"tmp": tmp, "store": store, "model": model_file, "tflite": tflite}


def one_line_error(out, *needles):
    assert out.exit_code == 2, out.output
    text = out.output.strip()
    assert text.startswith("error:") and len(text.splitlines()) == 1, text
    for needle in needles:
        assert needle in text, text


def test_fit_and_predict(files):
    out = runner.invoke(app, ["predict", str(files["tflite"]), "--target", "NUCLEO-L496ZG", "--model-file",
                              str(files["model"])])
    assert out.exit_code == 0, out.output
    assert "total:" in out.output and "table CONV_2D" in out.output
    out = runner.invoke(app, ["predict", str(files["tflite"]), "--target", "NUCLEO-L496ZG", "--model-file",
                              str(files["model"]), "--json"])
    data = json.loads(out.stdout)
    assert data["layers"][1]["source"] == "table"
    assert data["layers"][1]["key"] == "CONV_2D/conv2d_s8_simd k3x3 s1 in%4=3 out=%4"
    assert data["target"] == "NUCLEO-L496ZG" and len(data["layers"]) == 2
    assert data["latency_s"] == pytest.approx(sum(l["latency_s"] for l in data["layers"]) + data["overhead_s"])
    assert data["overhead_cycles"] == pytest.approx(120, abs=2)
    # without a model file: fitted from the store, and it says so
    out = runner.invoke(app, ["predict", str(files["tflite"]), "--target", "NUCLEO-L496ZG", "--store",
                              str(files["store"])])
    assert out.exit_code == 0 and "fitted a latency model from" in out.output
    out = runner.invoke(app, ["table", "--model-file", str(files["model"]), "--op", "FULLY_CONNECTED"])
    assert out.exit_code == 0 and "δ table" in out.output
    out = runner.invoke(app, ["table", "--model-file", str(files["model"]), "--op", "FULLY_CONNECTED", "--json"])
    assert all(e["key"].startswith("FULLY_CONNECTED/") and "in%16=" in e["key"] for e in json.loads(out.stdout))


def test_fit_errors_write_nothing(files, tmp_path):
    out_file = tmp_path / "m.json"
    empty = tmp_path / "empty.sqlite"
    open_store(empty).close()
    one_line_error(runner.invoke(app, ["fit", "--store", str(empty), "--out", str(out_file)]), "no measurements")
    one_line_error(runner.invoke(app, ["fit", "--store", str(files["store"]), "--target", "NUCLEO-F767ZI", "--out",
                                       str(out_file)]), "no measurements for NUCLEO-F767ZI", "NUCLEO-L496ZG")
    one_line_error(runner.invoke(app, ["fit", "--store", str(tmp_path / "missing.sqlite"), "--out", str(out_file)]),
                   "no measurement store")
    assert not out_file.exists() and not (tmp_path / "missing.sqlite").exists()


def test_predict_errors(files, tmp_path):
    base = ["predict", str(files["tflite"]), "--target"]
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "mcu-nas-latency-model", "version": 1, "params": {}, "contexts": [{"context"')
    one_line_error(runner.invoke(app, base + ["NUCLEO-L496ZG", "--model-file", str(corrupt)]), "corrupt")
    future = tmp_path / "future.json"
    data = json.loads(files["model"].read_text())
    data["version"] = FILE_VERSION + 1
    future.write_text(json.dumps(data))
    one_line_error(runner.invoke(app, base + ["NUCLEO-L496ZG", "--model-file", str(future)]),
                   f"version {FILE_VERSION + 1}")
    one_line_error(runner.invoke(app, base + ["NUCLEO-F767ZI", "--model-file", str(files["model"])]),
                   "no measurements for", "NUCLEO-F767ZI")
    one_line_error(runner.invoke(app, base + ["NO-SUCH-BOARD", "--model-file", str(files["model"])]), "NO-SUCH-BOARD")
    one_line_error(runner.invoke(app, base + ["NUCLEO-L496ZG", "--model-file", str(files["model"]), "--variant",
                                              "turbo"]), "runtime_variant=turbo")
    one_line_error(runner.invoke(app, base + ["NUCLEO-L496ZG", "--store", str(tmp_path / "none.sqlite")]),
                   "no latency model", "costmodel sweep", "costmodel fit")
    assert not (tmp_path / "none.sqlite").exists()
    bad_model = tmp_path / "bad.tflite"
    bad_model.write_bytes(b"garbage")
    one_line_error(runner.invoke(app, ["predict", str(bad_model), "--target", "NUCLEO-L496ZG", "--model-file",
                                       str(files["model"])]), "bad.tflite")


def test_data_errors(files, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("hello,world\n1,2\n")
    store = tmp_path / "s.sqlite"
    one_line_error(runner.invoke(app, ["data", "import", str(bad), "--store", str(store)]), "missing target")
    one_line_error(runner.invoke(app, ["data", "import", str(tmp_path / "nope.parquet"), "--store", str(store)]),
                   "no such file")
    one_line_error(runner.invoke(app, ["data", "export", str(tmp_path / "x.txt"), "--store", str(files["store"])]),
                   ".csv or .parquet")
    out = tmp_path / "rows.csv"
    assert runner.invoke(app, ["data", "export", str(out), "--store", str(files["store"])]).exit_code == 0
    assert runner.invoke(app, ["data", "import", str(out), "--store", str(store)]).exit_code == 0
    assert open_store(store).counts()["layers"] == len(training_rows())


def test_suggest_on_the_synthetic_table(files):
    out = runner.invoke(app, ["suggest", str(files["tflite"]), "--target", "NUCLEO-L496ZG", "--model-file",
                              str(files["model"]), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    best = data["alternatives"][0]
    assert (best["parameter"], best["old"], best["new"]) == ("filters", 15, 16) and data["known_inferior"]
