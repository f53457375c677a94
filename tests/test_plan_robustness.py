"""Malformed plans must give an error status from nn_load (never a crash); unsupported ops a clear error."""

from __future__ import annotations

import ctypes
import struct

import numpy as np
import pytest

from costmodel.graph import Graph, Op, Quantization, Tensor
from costmodel.tflite import read_model
from measure_agent.plan import UnsupportedOpError, compile_plan
from measure_agent.plan.builder import fnv1a
from measure_agent.plan.format import HEADER_BYTES, MAGIC, TENSOR_BYTES, VERSION
from measure_agent.plan.host import HostRuntime, load_library, load_status, run_on_host
from tests.testmodels import model_path

NN_OK, BAD_PLAN, VERSION, ARENA, UNSUPPORTED, BAD_INDEX, BAD_SIZE, NOT_LOADED = range(8)
VARIANTS = ("reference", "simd")


@pytest.fixture(scope="module")
def plan():
    return compile_plan(read_model(model_path("cnn", "int8", shape=(16, 16, 3))))


def _reseal(blob: bytearray) -> bytes:
    """Recompute the checksum so that corruption reaches the structural checks."""
    struct.pack_into("<I", blob, 60, fnv1a(bytes(blob[HEADER_BYTES:])))
    return bytes(blob)


def test_valid_plan_loads(plan):
    for v in VARIANTS:
        assert load_status(plan.blob, v) == NN_OK


@pytest.mark.parametrize("variant", VARIANTS)
def test_truncated_plans(plan, variant):
    blob = plan.blob
    cuts = sorted(set([0, 1, 3, 4, 8, 63, 64, 65, 100] + list(range(0, len(blob), max(1, len(blob) // 40)))))
    for n in cuts:
        if n < len(blob):
            assert load_status(blob[:n], variant) != NN_OK, n


@pytest.mark.parametrize("variant", VARIANTS)
def test_random_bytes(variant):
    rng = np.random.default_rng(0)
    for n in (0, 1, 16, 63, 64, 65, 200, 4096):
        for _ in range(5):
            blob = bytearray(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            assert load_status(bytes(blob), variant) != NN_OK
            if n >= 64:  # a random body behind a plausible header
                struct.pack_into("<IHHI", blob, 0, MAGIC, VERSION, HEADER_BYTES, n)
                assert load_status(_reseal(blob), variant) != NN_OK


def test_header_errors(plan):
    blob = bytearray(plan.blob)
    bad = bytearray(blob)
    bad[0] ^= 0xFF
    assert load_status(bytes(bad)) == BAD_PLAN
    bad = bytearray(blob)
    struct.pack_into("<H", bad, 4, 99)
    assert load_status(bytes(bad)) == VERSION
    bad = bytearray(blob)
    bad[-1] ^= 0x55  # checksum mismatch
    assert load_status(bytes(bad)) == BAD_PLAN
    assert load_status(plan.blob, arena_bytes=plan.arena_bytes - 16) == ARENA


def test_bad_offsets_and_ids(plan):
    blob = bytearray(plan.blob)
    tensors_off = struct.unpack_from("<I", blob, 28)[0]
    num_tensors = struct.unpack_from("<H", blob, 20)[0]
    for i in range(num_tensors):
        bad = bytearray(blob)
        struct.pack_into("<I", bad, tensors_off + i * TENSOR_BYTES + 4, 0x7FFFFFF0)  # offset
        assert load_status(_reseal(bad)) in (BAD_SIZE, BAD_PLAN)
        bad = bytearray(blob)
        struct.pack_into("<I", bad, tensors_off + i * TENSOR_BYTES + 8, 0xFFFFFFFF)  # bytes
        assert load_status(_reseal(bad)) in (BAD_SIZE, BAD_PLAN)
    ids_off, num_ids = struct.unpack_from("<II", blob, 36)
    for i in range(num_ids):
        bad = bytearray(blob)
        struct.pack_into("<H", bad, ids_off + 2 * i, num_tensors + 3)
        assert load_status(_reseal(bad)) != NN_OK
    ops_off = struct.unpack_from("<I", blob, 32)[0]
    bad = bytearray(blob)
    struct.pack_into("<H", bad, ops_off, 999)  # unknown op kind
    assert load_status(_reseal(bad)) == UNSUPPORTED
    for field in (28, 32, 36, 44, 52):  # table offsets beyond the blob
        bad = bytearray(blob)
        struct.pack_into("<I", bad, field, len(blob) + 4)
        assert load_status(_reseal(bad)) != NN_OK


@pytest.mark.parametrize("variant", VARIANTS)
def test_fuzzed_plans_never_crash(plan, variant):
    """Byte corruption anywhere in the tables (checksum fixed up): load fails or the plan runs safely."""
    rng = np.random.default_rng(1)
    blob = bytearray(plan.blob)
    const_off = struct.unpack_from("<I", blob, 52)[0]
    x = [rng.integers(-128, 128, size=plan.inputs[0].shape, dtype=np.int8)]
    loaded = 0
    for _ in range(300):
        bad = bytearray(blob)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(HEADER_BYTES, const_off))
            bad[pos] = int(rng.integers(0, 256))
        rt = HostRuntime(_reseal(bad), variant)
        if rt.status == NN_OK:
            loaded += 1
            lib = rt.lib
            assert lib.nn_run(None, None) == NN_OK
    assert loaded < 300


def test_api_errors(plan):
    lib = load_library("reference")
    assert load_status(b"\0" * 10) != NN_OK
    assert lib.nn_run(None, None) == NOT_LOADED
    assert lib.nn_num_layers() == 0
    rt = HostRuntime(plan.blob)
    rt.check()
    ptr = ctypes.POINTER(ctypes.c_uint8)()
    n = ctypes.c_uint32()
    assert lib.nn_input(5, ctypes.byref(ptr), ctypes.byref(n)) == BAD_INDEX
    assert lib.nn_output(5, ctypes.byref(ptr), ctypes.byref(n)) == BAD_INDEX
    assert lib.nn_num_layers() == len(plan.layers)
    cycles = (ctypes.c_uint32 * len(plan.layers))()
    counter = ctypes.CFUNCTYPE(ctypes.c_uint32)(lambda: 0)
    assert lib.nn_run(ctypes.cast(counter, ctypes.c_void_p), cycles) == NN_OK


def test_plan_metadata(plan):
    assert plan.blob[:4] == b"NNPL"
    assert plan.arena_bytes % 16 == 0 and plan.arena_bytes > 0
    assert [layer.op_type for layer in plan.layers][0] == "CONV_2D"
    assert plan.inputs[0].dtype == "int8" and plan.inputs[0].scale is not None
    out = run_on_host(plan, [np.zeros(plan.inputs[0].shape, np.int8)])
    assert out[0].shape == tuple(plan.outputs[0].shape)


def _tiny_graph(op_type: str, dtype: str = "float32", **options) -> Graph:
    q = Quantization(np.array([0.1], np.float32), np.array([0], np.int64)) if dtype != "float32" else None
    tensors = [Tensor(0, "x", (1, 4), dtype, None, q), Tensor(1, "y_out", (1, 4), dtype, None, q)]
    return Graph(tensors, [Op(0, op_type, [0], [1], options)], [0], [1])


def test_unsupported_op_names_op_and_layer():
    with pytest.raises(UnsupportedOpError) as e:
        compile_plan(_tiny_graph("EXP"))
    msg = str(e.value)
    assert "EXP" in msg and "layer 0" in msg and "y_out" in msg
    assert e.value.op_type == "EXP" and e.value.layer == 0


def test_unsupported_dtype_combination():
    with pytest.raises(UnsupportedOpError) as e:
        compile_plan(_tiny_graph("LOGISTIC", "int16"))
    assert "LOGISTIC" in str(e.value) and "int16" in str(e.value)
