"""Shared fixtures: the real models in ../shared/models and small synthetic Keras models."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = Path(os.environ.get("MCU_NAS_SHARED_MODELS", REPO.parent / "shared" / "models"))

@contextlib.contextmanager
def serving(cfg):
    """A real agent serving ``cfg`` (gRPC on loopback) and a client of it; both stopped at the end."""
    from measure_agent.client import AgentClient
    from measure_agent.service import serve

    server, agent, port = serve(cfg)
    client = AgentClient(f"127.0.0.1:{port}", cfg.clients["local"], retry_for_s=5)
    try:
        yield client
    finally:
        client.close()
        server.stop(grace=1).wait()
        agent.close()


def _test_model_cache() -> Path:
    from measure_agent.firmware_build import cache_dir

    return cache_dir("test-models")


def shared_model(name: str) -> Path:
    """Path of a model in ../shared/models; skips the test when that folder is not beside the repo."""
    path = SHARED_MODELS / name
    if not path.exists():
        pytest.skip(f"{path} not found: the real MLPerf Tiny models live in ../shared/models on the bench")
    return path


@pytest.fixture(scope="session")
def kws_model() -> Path:
    return shared_model("kws_ref_model.tflite")


@pytest.fixture(scope="session")
def kws_float_model() -> Path:
    return shared_model("kws_ref_model_float32.tflite")


@pytest.fixture(scope="session")
def ad_model() -> Path:
    return shared_model("ad01_int8.tflite")


def cached_tflite(key: str, build) -> bytes:
    """Bytes of a converted model, cached on disk by ``key`` (conversion with TensorFlow is slow)."""
    cache = _test_model_cache()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / (hashlib.sha256(key.encode()).hexdigest()[:20] + ".tflite")
    if not path.exists():
        data = build()
        tmp = path.with_suffix(".tmp%d" % os.getpid())
        tmp.write_bytes(data)
        tmp.replace(path)
    return path.read_bytes()
