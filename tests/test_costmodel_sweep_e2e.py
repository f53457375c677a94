"""End to end on a virtual board: a sweep measured through the agent pool into the store (resumable), a fit, and
``costmodel suggest`` on a model with an unaligned layer: the better parametrization it proposes is measured, and
the measured gain agrees with the predicted one within the stated uncertainty. Also: the pool fails over to a
second agent with the same request id.

The unaligned layer is a depthwise convolution of 15 channels between a convolution of 15 filters and a pointwise
one that consumes them: the SIMD
depthwise kernel runs channels in groups of four, the remainder on a slower path (on the NUCLEO-L496ZG 15
channels take 2.1 x the cycles of 16). A convolution consuming 15 channels no longer makes the point: the SIMD
conv kernel's padded rows run 15 input channels within 1 % of 16."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costmodel import LatencyModel, analyze, open_store
from costmodel.commands.sweep import plan_jobs, run_jobs
from costmodel.sweeps import NetSpec, conv, dwconv, tflite_bytes
from measure_agent.agents import AgentAddress, AgentPool, MeasureJob
from measure_agent.firmware_build import cache_dir

TARGET = "NUCLEO-L496ZG"
CACHE = cache_dir("test-models")
UNALIGNED, BETTER = 15, 16   # filters of the first layer = channels of the depthwise one


def net(c: int) -> NetSpec:
    return NetSpec(f"e2e-d{c}", (12, 12, 3), (conv(c, 3), dwconv(3), conv(8, 1)), "dwconv", {"channels": c})


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    store = open_store(tmp / "measurements.sqlite")
    specs = [net(c) for c in range(1, 25) if c not in (UNALIGNED, BETTER)]  # the two we check are never fitted
    jobs = plan_jobs(specs, [TARGET], ["simd"], cache=CACHE)
    with AgentPool.local([TARGET], boards_per_target=2) as pool:
        first = run_jobs(jobs, store, pool)
        again = run_jobs(jobs, store, pool)  # resumable: nothing is measured twice
        checks = pool.measure_many([MeasureJob(tflite_bytes(net(c), CACHE), TARGET, runtime_variant="simd")
                                    for c in (UNALIGNED, BETTER)])
    model = LatencyModel(min_rows=4).fit(store)
    path = model.save(tmp / "latency-model.json")
    return {"store": store, "first": first, "again": again, "checks": checks, "model": model, "path": path,
            "tmp": tmp}


def test_sweep_is_stored_and_resumable(bench):
    first, again = bench["first"], bench["again"]
    assert first.failed == 0 and first.measured == 22
    assert again.measured == 0 and again.skipped == 22
    layers = bench["store"].layers()
    assert len(layers) == 66 and set(layers["kernel"]) == {"conv2d_s8_simd", "depthwise_conv2d_s8_simd"}
    assert set(layers["board_kind"]) == {"virtual"} and all(layers["board_model_version"] != "")
    assert layers["firmware_build_id"].nunique() == 1


def test_suggest_proposes_the_aligned_parametrization_and_measuring_confirms_it(bench):
    model = bench["model"]
    data = tflite_bytes(net(UNALIGNED), CACHE)
    alts = model.alternatives(analyze(data), target=TARGET, runtime_variant="simd")
    best = alts[0]
    assert (best.layer_index, best.parameter, best.old, best.new) == (0, "filters", UNALIGNED, BETTER)
    assert best.macs_after > best.macs_before and best.gain > 0.05
    assert model.is_inferior(analyze(data), target=TARGET, runtime_variant="simd")
    unaligned, better = (o.result for o in bench["checks"])
    measured_gain = (unaligned.latency_s - better.latency_s) / unaligned.latency_s
    print(f"suggest: predicted {best.gain:.2%} ± {best.gain_uncertainty:.2%}, measured {measured_gain:.2%}")
    assert abs(measured_gain - best.gain) <= max(2 * best.gain_uncertainty, 0.005)
    # the whole-model predictions of both agree with the measurements too
    for c, result in ((UNALIGNED, unaligned), (BETTER, better)):
        p = model.predict_model(analyze(tflite_bytes(net(c), CACHE)), target=TARGET, runtime_variant="simd")
        assert p.latency_s == pytest.approx(result.latency_s, rel=max(0.03, 2 * p.uncertainty))


def test_cli_on_the_measured_store(bench, tmp_path):
    from costmodel.cli import app
    from measure_agent.results import result_dict

    runner = CliRunner()
    model_path = tmp_path / "unaligned.tflite"
    model_path.write_bytes(tflite_bytes(net(UNALIGNED), CACHE))
    out = runner.invoke(app, ["suggest", str(model_path), "--target", TARGET, "--model-file", str(bench["path"])])
    assert out.exit_code == 0, out.output
    assert "is known-inferior" in out.output
    out = runner.invoke(app, ["suggest", str(model_path), "--target", TARGET, "--model-file", str(bench["path"]),
                              "--json"])
    best = json.loads(out.stdout)["alternatives"][0]
    assert (best["layer_index"], best["parameter"], best["old"], best["new"]) == (0, "filters", 15, 16)

    out = runner.invoke(app, ["predict", str(model_path), "--target", TARGET, "--model-file", str(bench["path"]),
                              "--json"])
    assert out.exit_code == 0, out.output
    predicted = json.loads(out.stdout)
    measured = result_dict(bench["checks"][0].result)
    assert set(measured) - {"outputs"} <= set(predicted)  # the same keys as measure-agent measure --json
    assert set(measured["layers"][0]) <= set(predicted["layers"][0])
    assert {"source", "uncertainty"} <= set(predicted["layers"][0])
    assert predicted["latency_s"] == pytest.approx(measured["latency_s"], rel=0.03)

    store_url = str(bench["tmp"] / "measurements.sqlite")
    out = runner.invoke(app, ["table", "--model-file", str(bench["path"]), "--target", TARGET, "--json"])
    assert out.exit_code == 0, out.output
    entries = json.loads(out.stdout)
    # the SIMD depthwise kernel's alignment effect, as measured (latency / MAC), whether or not this small sweep has
    # rows enough to use a key's fitted coefficients
    depthwise = {e["in_residue"]: e["effective_delta_ns_per_mac"] for e in entries if e["op"] == "DEPTHWISE_CONV_2D"}
    assert len(depthwise) == 4 and all(depthwise[0] < depthwise[r] for r in (1, 2, 3)), depthwise
    out = runner.invoke(app, ["score", "--store", store_url, "--model-file", str(bench["path"]), "--json"])
    assert out.exit_code == 0, out.output
    score = json.loads(out.stdout)
    assert score["layers"]["median"] < 1.0 and score["models"]["n"] == 22

    export = tmp_path / "rows.parquet"
    out = runner.invoke(app, ["data", "export", str(export), "--store", store_url])
    assert out.exit_code == 0 and export.exists()
    out = runner.invoke(app, ["plot", "--store", store_url, "--out", str(tmp_path / "plots"), "--sweep", "dwconv"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "plots" / f"dwconv-{TARGET}.png").stat().st_size > 10_000
    assert (tmp_path / "plots" / f"dwconv-{TARGET}.html").exists()


def test_pool_fails_over_with_the_same_request_id(tmp_path):
    from measure_agent.service import local_config, serve

    agents = []
    for name in ("a", "b"):
        cfg = local_config(TARGET, tmp_path / f"journal-{name}.sqlite")
        server, agent, port = serve(cfg)
        agents.append((server, agent, AgentAddress(f"127.0.0.1:{port}", cfg.clients["local"])))
    (server_a, agent_a, addr_a), (server_b, agent_b, addr_b) = agents
    pool = AgentPool([addr_a, addr_b], retry_for_s=1.0)
    try:
        server_a.stop(grace=0).wait()  # agent a goes away after the pool has seen it
        jobs = [MeasureJob(tflite_bytes(net(c), CACHE), TARGET, runtime_variant="simd") for c in (4, 5)]
        outcomes = pool.measure_many(jobs)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        assert {o.agent for o in outcomes} == {addr_b.address}
        from measure_agent.client import AgentClient

        with AgentClient(addr_b.address, addr_b.token) as client:
            for job, o in zip(jobs, outcomes):
                assert o.result.request_id == job.request_id
                assert client.result(job.request_id).total_cycles == o.result.total_cycles  # journaled by b
        again = pool.measure(jobs[0])  # the agent answers a request id it has done from its journal
        assert again.ok and again.result.SerializeToString() == outcomes[0].result.SerializeToString()
        bad = pool.measure(MeasureJob(b"not a model", TARGET))
        assert not bad.ok and bad.attempts == 1 and "INVALID_ARGUMENT" in bad.error
    finally:
        pool.close()
        for server, agent, _ in agents:
            server.stop(grace=0).wait()
            agent.close()


def test_sweep_command_through_a_remote_agent(tmp_path):
    from costmodel.cli import app
    from measure_agent.service import local_config, serve

    cfg = local_config(TARGET, tmp_path / "journal.sqlite")
    server, agent, port = serve(cfg)
    store = tmp_path / "remote.sqlite"
    runner = CliRunner()
    try:
        args = ["sweep", "dense", "--limit", "3", "--target", TARGET, "--store", str(store), "--json"]
        out = runner.invoke(app, args + ["--agent", f"{cfg.clients['local']}@127.0.0.1:{port}"])
        assert out.exit_code == 0, out.output
        summary = json.loads(out.stdout)
        assert summary["measured"] == 3 and summary["store_rows"] == {"models": 3, "layers": 3}
        out = runner.invoke(app, args + ["--agent", f"127.0.0.1:{port}", "--token", cfg.clients["local"]])
        assert json.loads(out.stdout)["already_measured"] == 3
        out = runner.invoke(app, ["sweep", "dense", "--limit", "1", "--target", "NUCLEO-F767ZI", "--store",
                                  str(store), "--agent", f"{cfg.clients['local']}@127.0.0.1:{port}"])
        assert out.exit_code == 2 and "no agent answers with a board of NUCLEO-F767ZI" in out.output
    finally:
        server.stop(grace=0).wait()
        agent.close()
