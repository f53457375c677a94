"""The measurement agent end to end: real gRPC over a loopback socket, the real serial backend talking to
the firmware ELF on the virtual board through a pseudo-terminal, and the SQLite journal file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from measure_agent.client import AgentClient, AgentError
from measure_agent.config import AgentConfig
from measure_agent.journal import DONE, Journal
from measure_agent.plan.reference import Reference
from measure_agent.service import local_config, serve
from protos import agent_pb2 as pb
from tests.conftest import REPO, cached_tflite

TARGET = "NUCLEO-L4R5ZI"


def small_model() -> bytes:
    def build():
        from costmodel.convert import keras_to_tflite, quiet

        with quiet():
            import keras
        x = inp = keras.Input((8, 8, 3), batch_size=1)
        x = keras.layers.Conv2D(8, 3, activation="relu")(x)
        x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(5, bias_initializer="ones")(x)
        x = keras.layers.Softmax()(x)
        return keras_to_tflite(keras.Model(inp, x), "int8")

    return cached_tflite("agent-small-v1", build)


def exp_model() -> bytes:
    def build():
        from costmodel.convert import keras_to_tflite, quiet

        with quiet():
            import keras
        inp = keras.Input((8,), batch_size=1)
        return keras_to_tflite(keras.Model(inp, keras.ops.exp(keras.layers.Dense(4)(inp))), "float32")

    return cached_tflite("agent-exp-v1", build)


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    journal = tmp_path_factory.mktemp("agent") / "journal.sqlite"
    cfg = local_config(TARGET, journal, count=1)
    server, agent, port = serve(cfg)
    client = AgentClient(f"127.0.0.1:{port}", cfg.clients["local"], retry_for_s=5)
    yield agent, client, cfg, port
    client.close()
    server.stop(grace=1).wait()
    agent.close()


def test_measure_over_socket_matches_interpreter(agent):
    _, client, cfg, _ = agent
    model = small_model()
    x = np.random.default_rng(3).integers(-128, 127, size=(1, 8, 8, 3), dtype=np.int8)
    events = []
    result = client.measure(model, TARGET, request_id="exact-1", repetitions=2, on_event=events.append,
                            inputs=[pb.Tensor(shape=[1, 8, 8, 3], dtype="int8", data=x.tobytes())])
    stages = [e.stage for e in events]
    assert stages[0] == pb.MeasureEvent.QUEUED and stages[-1] == pb.MeasureEvent.DONE
    assert pb.MeasureEvent.RUNNING in stages
    assert result.board_kind == "virtual" and result.target == TARGET
    assert [layer.op for layer in result.layers][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    assert all(layer.cycles > 0 for layer in result.layers)
    assert result.layers[0].macs == 6 * 6 * 8 * 27
    assert result.total_cycles >= sum(layer.cycles for layer in result.layers) * 0.99
    assert result.latency_s == pytest.approx(result.total_cycles / 120e6)
    assert result.energy_source == "power-model"
    assert result.energy_j == pytest.approx(43.6e-3 * result.latency_s)
    (expected,) = Reference(model).run([x])
    board_out = np.frombuffer(result.outputs[0].data, dtype=np.int8).reshape(expected.shape)
    np.testing.assert_array_equal(board_out, expected)
    entry = Journal(cfg.journal).get("local", "exact-1")
    assert entry.state == DONE and pb.MeasureResult.FromString(entry.result) == result


def test_same_request_id_is_measured_once(agent):
    service, client, cfg, _ = agent
    model = small_model()
    first = client.measure(model, TARGET, request_id="once-1", repetitions=1)
    done_before = client.health().requests_done
    again = client.measure(model, TARGET, request_id="once-1", repetitions=1)
    assert again == first
    assert client.result("once-1") == first
    assert client.health().requests_done == done_before


def test_list_boards_and_health(agent):
    _, client, _, _ = agent
    (board,) = client.boards()
    assert board.target == TARGET and board.kind == "virtual" and "simd" in board.runtime_variants
    assert client.health().serving


@pytest.mark.parametrize("token", ["", "wrong-token-0123456789"])
def test_unauthenticated(agent, token):
    _, _, _, port = agent
    with AgentClient(f"127.0.0.1:{port}", token, retry_for_s=0) as bad:
        with pytest.raises(AgentError) as err:
            bad.boards()
        assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(AgentError) as err:
            bad.measure(small_model(), TARGET)
        assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(AgentError) as err:  # the streaming RPC goes through the same interceptor
            bad.measure(small_model(), TARGET, on_event=lambda event: None)
        assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(AgentError) as err:
            bad.result("any-request")
        assert err.value.code == grpc.StatusCode.UNAUTHENTICATED and "bearer token" in err.value.message


def test_bad_requests_get_clear_statuses(agent, kws_model):
    _, client, _, _ = agent
    good = small_model()
    cases = [
        (good[:len(good) // 3], TARGET, grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
        (np.random.default_rng(0).bytes(5000), TARGET, grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
        (exp_model(), TARGET, grpc.StatusCode.UNIMPLEMENTED, "EXP"),
        (good, "NUCLEO-F767ZI", grpc.StatusCode.UNAVAILABLE, "no board of target"),
        (b"\0" * (5 * 1024 * 1024), TARGET, grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
    ]
    for model, target, code, needle in cases:
        with pytest.raises(AgentError) as err:
            client.measure(model, target)
        assert err.value.code == code, err.value
        assert needle in err.value.message
    # the agent still serves
    assert client.measure(good, TARGET, repetitions=1).total_cycles > 0


def test_model_that_does_not_fit_the_board(tmp_path, ad_model):
    cfg = local_config("NUCLEO-G071RB", tmp_path / "j.sqlite")
    server, agent, port = serve(cfg)
    try:
        with AgentClient(f"127.0.0.1:{port}", cfg.clients["local"], retry_for_s=0) as client:
            with pytest.raises(AgentError) as err:
                client.measure(ad_model.read_bytes(), "NUCLEO-G071RB")
            assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
            assert "bytes" in err.value.message or "KiB" in err.value.message  # the sizes
    finally:
        server.stop(grace=1).wait()
        agent.close()


def test_garbage_on_the_serial_line(agent):
    service, client, _, _ = agent
    model = small_model()
    client.measure(model, TARGET, repetitions=1)
    (worker,) = service.pool.workers.values()
    worker.control("inject_line_noise", np.random.default_rng(5).bytes(300) + b"\xa5\x5a\x01")
    result = client.measure(model, TARGET, repetitions=1)
    assert result.total_cycles > 0


def test_hung_board_is_recovered(agent):
    service, client, _, _ = agent
    model = small_model()
    client.measure(model, TARGET, repetitions=1)
    (worker,) = service.pool.workers.values()
    worker.control("freeze")
    with pytest.raises(AgentError) as err:
        client.measure(model, TARGET, repetitions=1, request_id="hung-1")
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert client.measure(model, TARGET, repetitions=1).total_cycles > 0
    # a transient failure may be retried under the same id
    assert client.measure(model, TARGET, repetitions=1, request_id="hung-1").total_cycles > 0


def _serve_subprocess(config: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "measure_agent.cli", "serve", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    line = proc.stderr.readline()
    assert "serving" in line, line + proc.stderr.read()
    return proc


def test_agent_killed_between_request_and_result(tmp_path):
    token = "t" * 32
    config = tmp_path / "bench.toml"
    port = 50000 + os.getpid() % 10000
    config.write_text(f'[agent]\nlisten = "127.0.0.1:{port}"\njournal = "journal.sqlite"\n'
                      f'[clients]\nci = "{token}"\n[[boards]]\nkind = "virtual"\ntarget = "{TARGET}"\n')
    model = small_model()
    proc = _serve_subprocess(config)
    try:
        running = threading.Event()
        errors = []

        def send():
            with AgentClient(f"127.0.0.1:{port}", token, retry_for_s=0) as client:
                try:
                    client.measure(model, TARGET, request_id="survive-1", repetitions=1,
                                   on_event=lambda e: running.set() if e.stage >= pb.MeasureEvent.BUILDING else None)
                except AgentError as exc:
                    errors.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        assert running.wait(120)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        sender.join(30)
        assert errors and errors[0].code == grpc.StatusCode.UNAVAILABLE
        assert Journal(tmp_path / "journal.sqlite").get("ci", "survive-1").state in ("queued", "running")
        proc = _serve_subprocess(config)
        with AgentClient(f"127.0.0.1:{port}", token, retry_for_s=60) as client:
            result = client.measure(model, TARGET, request_id="survive-1", repetitions=1)
            assert result.request_id == "survive-1" and result.total_cycles > 0
            assert client.result("survive-1") == result
    finally:
        proc.kill()
        proc.wait()


def test_tls_with_server_certificate(tmp_path):
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available to make a test certificate")
    key, cert = tmp_path / "server.key", tmp_path / "server.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    cfg = local_config(TARGET, tmp_path / "j.sqlite")
    cfg = AgentConfig(listen="localhost:0", journal=cfg.journal, clients=cfg.clients, boards=cfg.boards,
                      tls_cert=cert, tls_key=key)
    server, agent, port = serve(cfg)
    try:
        with AgentClient(f"localhost:{port}", cfg.clients["local"], root_certificate=cert, retry_for_s=0) as client:
            assert client.boards()[0].target == TARGET
        with AgentClient(f"localhost:{port}", cfg.clients["local"], retry_for_s=0) as plaintext:
            with pytest.raises(AgentError) as err:
                plaintext.boards()
            assert err.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace=1).wait()
        agent.close()


def test_journaled_request_for_a_board_no_longer_configured(tmp_path):
    from measure_agent.service import _without_model, request_digest

    journal = Journal(tmp_path / "j.sqlite")
    orphan = pb.MeasureRequest(request_id="orphan-1", model=small_model(), target="NUCLEO-F767ZI")
    digest, model_digest = request_digest(orphan)
    journal.accept("local", "orphan-1", digest, model_digest, orphan.model, _without_model(orphan))
    journal.close()
    cfg = local_config(TARGET, tmp_path / "j.sqlite")
    server, agent, port = serve(cfg)  # starts although the request cannot be placed
    try:
        with AgentClient(f"127.0.0.1:{port}", cfg.clients["local"], retry_for_s=0) as client:
            with pytest.raises(AgentError) as err:
                client.result("orphan-1")
            assert err.value.code == grpc.StatusCode.UNAVAILABLE and "NUCLEO-F767ZI" in err.value.message
    finally:
        server.stop(grace=1).wait()
        agent.close()
