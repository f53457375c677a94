"""LatencyModel on synthetic rows whose cycles follow a known law: the δ table recovers it, the regressor fills in,
the estimator keeps scikit-learn's conventions, files round-trip, alternatives find the aligned neighbour."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from costmodel.features import _prod

from costmodel import LatencyModel, load_model
from costmodel.features import LayerSpec, table_key, work_terms
from costmodel.latency_model import CostModelError, ModelFileError, UnknownKeyError, _fitted_directions

CONTEXT = {"target": "NUCLEO-L496ZG", "clock_hz": 80_000_000, "runtime_variant": "simd", "float_abi": "hard",
           "opt_level": "-O2", "placement": "sram", "board_kind": "virtual", "board_model_version": "test-1",
           "runtime": "nn", "firmware_build_id": "fw1"}


def law(row: dict) -> float:
    """Cycles of a synthetic runtime: unaligned input channels cost 1.6x per MAC and extra per column."""
    t = work_terms(row)
    if row["op"] == "CONV_2D":
        aligned = row["in_channels"] % 4 == 0
        return 2000 + t["macs"] * (1.0 if aligned else 1.6) + 30 * t["outputs"] + (2 if aligned else 9) * t["columns"] \
            + 240 * t["passes"]
    if row["op"] == "FULLY_CONNECTED":
        return 300 + (t["quad_macs"] + t["row_macs"]) * (1.2 if row["input_length"] % 4 == 0 else 1.9) + \
            100 * t["quads"] + 25 * t["row_outputs"] + 2 * t["inputs"]
    return 100 + 3 * t["outputs"]


def conv_row(c, f, hw=12, k=3, s=1, **extra) -> dict:
    row = LayerSpec("CONV_2D", in_channels=c, out_channels=f, in_h=hw, in_w=hw, kernel_h=k, kernel_w=k,
                    stride_h=s, stride_w=s).row()
    row.update(kernel="conv2d_s8_simd", layer_index=extra.pop("layer_index", 0), **CONTEXT, **extra)
    return row


def dense_row(n, u) -> dict:
    row = LayerSpec("FULLY_CONNECTED", input_length=n, out_channels=u).row()
    row.update(kernel="fully_connected_s8_simd", layer_index=0, **CONTEXT)
    return row


def measured(rows, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        r = dict(r)
        r["cycles"] = int(law(r) * (1 + noise * rng.standard_normal()))
        r["latency_s"] = r["cycles"] / CONTEXT["clock_hz"]
        r["energy_j"] = r["latency_s"] * 0.045
        r["energy_source"] = "power-model"
        out.append(r)
    return out


def training_rows():
    rows = [conv_row(c, f, hw) for c in range(1, 25) for f in (7, 8, 10, 16) for hw in (8, 12, 16)]
    rows += [dense_row(n, u) for n in range(1, 65) for u in (7, 16, 32)]
    return measured(rows, noise=0.001)


@pytest.fixture(scope="module")
def fitted():
    return LatencyModel(n_estimators=60).fit(training_rows())


def test_table_recovers_the_law(fitted):
    for row in [conv_row(13, 9, 10), conv_row(20, 12, 14), dense_row(77, 12)]:
        p = fitted.predict_layers([row])[0]
        assert p.source == "table"
        assert p.cycles == pytest.approx(law(row), rel=0.01)
        assert 0.0 < p.uncertainty < 0.05
    frame = fitted.table(target="NUCLEO-L496ZG", op="CONV_2D")
    by_residue = frame.groupby("in_residue")["delta_cycles_per_mac"].median()
    assert by_residue[0] == pytest.approx(1.0, rel=0.05) and by_residue[3] == pytest.approx(1.6, rel=0.05)


def test_regressor_fills_in_a_key_without_rows(fitted):
    row = conv_row(12, 8, 12, k=5)  # kernel size 5 was never measured
    p = fitted.predict_layers([row])[0]
    assert p.source == "regressor" and p.uncertainty > 0
    assert p.cycles > 0


def valid_taps(row: dict) -> int:
    """Taps inside the input, Σ over the output positions, by brute force (TFLite SAME: half the pad before)."""
    (_, ih, iw, _), (_, oh, ow, _) = row["input_shapes"][0], row["output_shape"]
    k = row["kernel_h"]
    ph, pw = max((oh - 1) + k - ih, 0) // 2, max((ow - 1) + k - iw, 0) // 2
    return sum(0 <= y - ph + dy < ih and 0 <= x - pw + dx < iw
               for y in range(oh) for x in range(ow) for dy in range(k) for dx in range(k))


def test_padding_is_not_work_for_a_kernel_that_skips_it():
    """The reference convolution never visits the taps in the padding: a 7x7 kernel on a 4x4 input runs 16 of
    its 49 taps. Fitted on 8..16-pixel inputs, the table still predicts the 4x4 one (the analysis' MACs would
    predict it ~2-3x too slow)."""
    def ref_law(row):
        pairs = (row["out_channels"] + 1) // 2
        return 1500 + 1.3 * valid_taps(row) * row["in_channels"] * 2 * pairs + 25 * _prod(row["output_shape"]) \
            + 40 * row["output_shape"][1] * row["output_shape"][2]

    def ref_row(c, f, hw):
        return {**conv_row(c, f, hw, k=7), "kernel": "conv2d_s8_ref"}

    rows = [ref_row(c, f, hw) for c in (3, 7, 11, 15, 19) for f in (5, 8, 13) for hw in (8, 10, 12, 16)]
    rows = [{**r, "cycles": ref_law(r), "latency_s": ref_law(r) / 80e6} for r in rows]
    model = LatencyModel(n_estimators=20).fit(rows)
    small = ref_row(15, 17, 4)
    p = model.predict_layers([small])[0]
    assert p.source == "table" and p.cycles == pytest.approx(ref_law(small), rel=0.01)


def test_a_key_with_about_as_many_rows_as_terms_goes_to_the_regressor(fitted):
    # rows of one key (k5, in%4=0, odd filters) varying in input channels and filters: as many directions as rows
    rows = training_rows() + measured([conv_row(c, f, 12, k=5) for c, f in ((4, 5), (8, 9), (12, 7), (16, 13),
                                                                            (20, 11), (24, 9))])
    model = LatencyModel(n_estimators=20, min_rows=6, min_dof=3).fit(rows)
    entry = next(e for k, e in next(iter(model.contexts_.values())).table.items() if k[2] == 5)
    assert entry.n == 6 and entry.n - _fitted_directions(entry) < 3
    assert model.predict_layers([conv_row(28, 7, 12, k=5)])[0].source == "regressor"
    assert LatencyModel(n_estimators=20, min_dof=0).fit(rows).predict_layers([conv_row(28, 7, 12, k=5)])[0].source \
        == "table"


def test_unknown_target_and_op_are_clear_errors(fitted):
    bare = {k: v for k, v in conv_row(4, 4).items() if k not in CONTEXT}  # no context of its own
    with pytest.raises(UnknownKeyError, match="no measurements for target=NUCLEO-F767ZI"):
        fitted.predict_layers([bare], target="NUCLEO-F767ZI")
    assert fitted.predict_layers([bare], target="NUCLEO-L496ZG")[0].source == "table"
    row = {**conv_row(4, 4), "op": "SOFTMAX", "kernel": ""}
    with pytest.raises(UnknownKeyError, match="SOFTMAX"):
        fitted.predict_layers([row])


def test_sklearn_conventions():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    model = LatencyModel(min_rows=4)
    assert model.get_params()["min_rows"] == 4
    assert model.set_params(min_rows=8).min_rows == 8
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict([conv_row(4, 4)])
    rows = training_rows()
    assert model.fit(rows) is model
    assert hasattr(model, "contexts_") and model.n_rows_ == len(rows)
    assert model.score(rows) > 0.999
    with pytest.raises(CostModelError, match="no measured rows"):
        LatencyModel().fit([{"op": "CONV_2D"}])


def test_partial_fit_equals_a_full_fit_of_the_table():
    rows = training_rows()
    full = LatencyModel(n_estimators=20).fit(rows)
    part = LatencyModel(n_estimators=20).fit(rows[::2]).partial_fit(rows[1::2])
    a, b = full.table(), part.table()
    assert list(a["key"]) == list(b["key"])
    np.testing.assert_allclose(a["delta_cycles_per_mac"], b["delta_cycles_per_mac"], rtol=1e-6)
    assert part.n_rows_ == full.n_rows_


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "model.json")
    data = json.loads(path.read_text())
    assert data["format"] == "mcu-nas-latency-model" and data["version"] == 3
    loaded = load_model(path)
    rows = [conv_row(13, 9, 10), conv_row(12, 8, 12, k=5), dense_row(30, 12)]
    np.testing.assert_allclose(loaded.predict(rows), fitted.predict(rows), rtol=1e-9)
    assert [p.source for p in loaded.predict_layers(rows)] == ["table", "regressor", "table"]


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(bad)
    bad.write_text(json.dumps({"format": "mcu-nas-latency-model", "version": 99}))
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(bad)
    # version 1 had other work terms (the analysis' MACs for every kernel): its statistics cannot be reused
    bad.write_text(json.dumps({"format": "mcu-nas-latency-model", "version": 1, "params": {}, "contexts": []}))
    with pytest.raises(ModelFileError, match="version 1.*refit"):
        load_model(bad)
    # version 2 had the SIMD convolution's pixel pair terms (columns, border, border_taps, weights)
    bad.write_text(json.dumps({"format": "mcu-nas-latency-model", "version": 2, "params": {}, "contexts": []}))
    with pytest.raises(ModelFileError, match="version 2.*refit"):
        load_model(bad)
    bad.write_text(json.dumps({"format": "mcu-nas-latency-model", "version": 3, "params": {}, "contexts": [{}]}))
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(bad)
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ModelFileError, match="not a latency model"):
        load_model(bad)


def test_contexts_never_mix(fitted):
    rows = training_rows()
    newer = [{**r, "board_model_version": "test-2", "cycles": r["cycles"] * 2, "latency_s": r["latency_s"] * 2,
              "measured_at": time.time()} for r in rows]
    model = LatencyModel(n_estimators=20).fit(rows + newer)
    row = {k: v for k, v in conv_row(13, 9, 10).items() if k not in CONTEXT}
    assert len(model.contexts()) == 2
    new = model.predict_layers([row])[0].cycles  # the most recently measured context by default
    old = model.predict_layers([row], board_model_version="test-1")[0].cycles
    assert new == pytest.approx(2 * old, rel=0.01)


def test_layer_alternatives_find_the_aligned_neighbour(fitted):
    spec = LayerSpec("CONV_2D", in_channels=15, out_channels=8, in_h=12, in_w=12, kernel_h=3, kernel_w=3)
    alts = fitted.alternatives(spec, target="NUCLEO-L496ZG")
    best = alts[0]
    assert (best.parameter, best.old, best.new) == ("in_channels", 15, 16)
    expected = 1 - law(conv_row(16, 8)) / law(conv_row(15, 8))
    assert best.gain == pytest.approx(expected, abs=0.02)
    assert best.macs_after >= best.macs_before
    assert fitted.is_inferior(spec, target="NUCLEO-L496ZG", threshold=0.1)
    aligned = spec.with_(in_channels=16)
    assert not fitted.is_inferior(aligned, target="NUCLEO-L496ZG", threshold=0.05)


def test_predict_model_from_an_analysis_is_fast(fitted):
    from costmodel.analysis import LayerAnalysis, ModelAnalysis

    layers = []
    for i, (c, f) in enumerate([(3, 15), (15, 16), (16, 12), (12, 24), (24, 20)]):
        r = conv_row(c, f)
        layers.append(LayerAnalysis(index=i, name=f"conv{i}", op="CONV_2D", input_shapes=r["input_shapes"],
                                    output_shapes=[r["output_shape"]], dtype="int8", macs=r["macs"], params=r["params"],
                                    weight_bytes=r["weight_bytes"], activation_bytes=0,
                                    features={"in_channels": c, "filters": f, "kernel": [3, 3], "stride": [1, 1],
                                              "padding": "SAME", "alignment": "odd"}))
    analysis = ModelAnalysis("m", layers, 0, 0, 0, 0, 0, 0)
    first = fitted.predict_model(analysis, target="NUCLEO-L496ZG")
    assert first.latency_s == pytest.approx(sum(p.latency_s for p in first.layers) + first.overhead_s)
    assert first.energy_j == pytest.approx(first.latency_s * 0.045, rel=1e-6) and first.energy_source == "power-model"
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        fitted.predict_model(analysis, target="NUCLEO-L496ZG")
    per_model = (time.perf_counter() - start) / n
    assert per_model < 1e-3, f"{per_model * 1e6:.0f} us per model"
    d = first.to_dict()
    assert {"latency_s", "energy_j", "layers", "target", "clock_hz", "total_cycles"} <= d.keys()
    assert {"index", "op", "macs", "cycles", "latency_s", "energy_j", "kernel", "features", "source",
            "uncertainty"} <= d["layers"][0].keys()


def test_a_term_seen_in_fewer_than_three_rows_is_not_fitted():
    """A term non-zero in only two rows would be fitted to those rows' residuals and extrapolate them: it keeps
    the coarser key's coefficient (0 without one) until MIN_TERM_ROWS rows carry it."""
    from costmodel.latency_model import MIN_TERM_ROWS, TableEntry, _Stats

    def entry(rows_with_term: int, prior: TableEntry | None = None) -> TableEntry:
        e = TableEntry(("X",), ("const", "macs", "border"), _Stats(3))
        for macs in range(1000, 21000, 1000):
            e.stats.add(np.array([1.0, macs, 0.0]), 1000 + 2 * macs, macs)
        for i in range(rows_with_term):  # rows with 9 border taps, 400 cycles each
            macs = 3000 + 500 * i
            e.stats.add(np.array([1.0, macs, 9.0]), 1000 + 2 * macs + 9 * 400, macs)
        e.refit(prior)
        return e

    assert MIN_TERM_ROWS == 3
    thin = entry(2)
    assert thin.coefficient("border") == 0.0
    assert thin.predict(np.array([1.0, 5000, 100])) == pytest.approx(11_000, rel=0.05)
    prior = TableEntry(("P",), ("const", "macs", "border"), _Stats(3))
    prior.coef = np.array([900.0, 2.1, 5.0])
    assert entry(2, prior).coefficient("border") == 5.0
    supported = entry(3)
    assert supported.coefficient("border") == pytest.approx(400, rel=0.02)


def test_unseen_keys_take_the_pooled_fit_where_it_beats_the_trees_on_held_out_keys():
    """When the pooled per-(op, kernel) fit already explains every key, the trees (judged on whole keys held out)
    add nothing, and a key never measured is predicted by the pooled fit: exactly, here."""
    def linear(row):
        t = work_terms(row)
        return 2000 + t["macs"] + 30 * t["outputs"] + 2 * t["columns"] + 240 * t["passes"]

    rows = []
    for r in [conv_row(c, f, hw, k=k) for c in range(1, 17) for f in (7, 8, 16) for hw in (8, 12) for k in (1, 3)]:
        r["cycles"] = int(linear(r))
        r["latency_s"] = r["cycles"] / CONTEXT["clock_hz"]
        rows.append(r)
    model = LatencyModel(n_estimators=40).fit(rows)
    (ctx,) = model.contexts_.values()
    assert "CONV_2D" in ctx.regressor_base_ops
    row = conv_row(12, 8, 12, k=5)
    p = model.predict_layers([row])[0]
    assert p.source == "regressor"
    assert p.cycles == pytest.approx(linear(row), rel=0.01)
