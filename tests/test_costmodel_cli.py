"""`costmodel analyze` on bad input: huge files refused before they are read, corrupt models and Keras
models TensorFlow cannot convert are one line and exit 2, options mean what they say, JSON is versioned and
tables fit the terminal. (The cost model's other commands are tested in tests/test_costmodel_commands.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, _test_model_cache

LENET = REPO / "examples" / "lenet_int8.tflite"


def analyze(*args, env=None, memory_limit: int | None = None, timeout=600):
    # the address-space limit through util-linux's prlimit, not a preexec_fn: running Python between fork and
    # exec in a test process that has gRPC's event engine running can abort the child (gRPC's fork handlers)
    limit = ["prlimit", f"--as={memory_limit}"] if memory_limit else []
    return subprocess.run([*limit, sys.executable, "-m", "costmodel.cli", "analyze", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _clean_error(result, needle: str) -> None:
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def keras_file(folder: Path, kind: str) -> Path:
    """A small Keras model saved as ``folder/<kind>.keras`` (built once, cached with the test models):
    ``tiny`` (a convolution and a dense layer), ``lstm``, ``dynamic`` (input (None, None, 3))."""
    cache = _test_model_cache()
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / f"keras-{kind}-v1.keras"
    if not cached.exists():
        from costmodel.convert import quiet

        with quiet():
            import keras
        if kind == "tiny":
            x = inp = keras.Input((8, 8, 3))
            x = keras.layers.Conv2D(4, 3, activation="relu")(x)
            x = keras.layers.Flatten()(x)
            out = keras.layers.Dense(3)(x)
        elif kind == "lstm":
            x = inp = keras.Input((10, 4), batch_size=1)
            out = keras.layers.Dense(2)(keras.layers.LSTM(8)(x))
        else:
            x = inp = keras.Input((None, None, 3))
            out = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))
        tmp = cached.with_name(f"{cached.stem}.{os.getpid()}.keras")
        keras.Model(inp, out).save(tmp)
        tmp.replace(cached)
    path = Path(folder) / f"{kind}.keras"
    shutil.copy(cached, path)
    return path


def test_huge_file_is_refused_before_it_is_read(tmp_path):
    """Item 5: a 3 GB file is refused by its size (naming the limit) at once and within 1.5 GB of address space;
    a large file without the TFLite header by its header."""
    huge = tmp_path / "huge.tflite"
    with open(huge, "wb") as f:
        f.write(b"\x1c\0\0\0TFL3")
        f.truncate(3 * 1024**3)
    started = time.monotonic()
    result = analyze(str(huge), memory_limit=1536 * 1024**2)
    _clean_error(result, "more than the limit of 268435456 bytes")
    headless = tmp_path / "zeros.tflite"
    with open(headless, "wb") as f:
        f.truncate(200 * 1024**2)
    _clean_error(analyze(str(headless), memory_limit=1536 * 1024**2), "not a TFLite flatbuffer")
    assert time.monotonic() - started < 20
    _clean_error(analyze(str(huge), "--max-model-bytes", "1000"), "more than the limit of 1000 bytes")
    _clean_error(analyze(str(tmp_path)), "is a directory")
    (tmp_path / "empty.tflite").write_bytes(b"")
    _clean_error(analyze(str(tmp_path / "empty.tflite")), "file is empty")


def test_corrupt_lenet_is_a_clear_error(tmp_path):
    """Item 6: byte 62768 of the LeNet example set to 115 used to crash the analysis (AttributeError)."""
    data = bytearray(LENET.read_bytes())
    data[62768] = 115
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(data))
    _clean_error(analyze(str(bad)), "no output tensor")


def test_options_mean_what_they_say():
    """Item 7: an unknown --quantization is a usage error; --quantization for a .tflite is refused, not ignored."""
    result = analyze(str(LENET), "--quantization", "foo")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "foo" in result.stderr
    _clean_error(analyze(str(LENET), "--quantization", "float32"), "applies to Keras models")


def test_bad_keras_files(tmp_path):
    """Item 7: an empty, a corrupt and a non-Keras .keras/.h5 say what they are (not "File not found")."""
    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "corrupt.keras").write_bytes(b"garbage" * 10)
    (tmp_path / "corrupt.h5").write_bytes(b"garbage" * 10)
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("readme.txt", "not a model")
    for name, needle in [("empty.keras", "file is empty"), ("corrupt.keras", "not a Keras model"),
                         ("corrupt.h5", "not a Keras model"), ("other.keras", "has no config.json"),
                         ("missing.keras", "No such file")]:
        result = analyze(str(tmp_path / name))
        _clean_error(result, needle)
        assert "File not found" not in result.stderr


@pytest.mark.slow
def test_keras_models_tensorflow_cannot_convert(tmp_path):
    """Item 7: an LSTM (TensorFlow's int8 converter fails, or crashes, on it) and a model with unknown input
    dimensions are one line each, after a note that conversion is under way."""
    lstm = analyze(str(keras_file(tmp_path, "lstm")))
    assert lstm.returncode == 2 and "Traceback" not in lstm.stderr, lstm.stderr
    lines = lstm.stderr.strip().splitlines()
    assert lines[0].startswith("converting lstm.keras") and len(lines) == 2 and "TensorFlow" in lines[1]
    dynamic = analyze(str(keras_file(tmp_path, "dynamic")))
    assert dynamic.returncode == 2 and "unknown dimensions" in dynamic.stderr and "Traceback" not in dynamic.stderr
    assert "BytesRequired" not in dynamic.stderr


def test_analyze_json_is_versioned_and_tables_fit(tmp_path, kws_model):
    """Item 17: the JSON carries its schema version; the tables fit an 80-column terminal."""
    data = json.loads(analyze(str(kws_model), "--json").stdout)
    assert data["schema_version"] == 1 and data["total_macs"] == 2_664_780
    result = analyze(str(kws_model), "--target", "NUCLEO-L4R5ZI", env={"COLUMNS": "80"})
    assert result.returncode == 0
    assert "DEPTHWISE_CONV_2D" in result.stdout and "2,664,780" in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout


def _reshape_out_of_size(tmp_path) -> Path:
    """LeNet with its flatten RESHAPE's output made 401 elements long (its input has 400): malformed."""
    import struct

    from costmodel.tflite import _Buf, read_model

    data = bytearray(LENET.read_bytes())
    graph = read_model(bytes(data))
    names = [t.name for t in graph.tensors]
    out = graph.tensors[next(op for op in graph.ops if op.type == "RESHAPE").outputs[0]]
    buf = _Buf(bytes(data))
    tensor = list(buf.tables(next(iter(buf.tables(buf.deref(0), 2))), 0))[names.index(out.name)]
    start, count = buf.vector(tensor, 0)
    assert struct.unpack_from(f"<{count}i", data, start) == (1, 400)
    struct.pack_into("<i", data, start + 4, 401)
    path = tmp_path / "reshape401.tflite"
    path.write_bytes(bytes(data))
    return path


def test_analyze_and_measure_call_the_same_models_malformed(tmp_path):
    """Item 12/13 consistency (found by the fuzz benchmark): a zero point out of range and a reshape that changes
    the size were "the runtime cannot run" notes with exit 0 in ``analyze`` (and UNIMPLEMENTED at the agent for
    the reshape) while the measurement called the first malformed: both now say "malformed model at layer"."""
    from measure_agent.errors import InvalidModel
    from measure_agent.measurement import compile_model

    zero_point = bytearray(LENET.read_bytes())
    zero_point[63410] = 69
    (tmp_path / "zp.tflite").write_bytes(bytes(zero_point))
    cases = {tmp_path / "zp.tflite": "malformed model at layer 5 (FULLY_CONNECTED): tensor",
             _reshape_out_of_size(tmp_path): "malformed model at layer 4 (RESHAPE): a reshape keeps type and size"}
    for path, needle in cases.items():
        for args in ((str(path),), (str(path), "--target", "NUCLEO-L4R5ZI")):
            _clean_error(analyze(*args), needle)
        with pytest.raises(InvalidModel, match=needle.replace("(", r"\(").replace(")", r"\)")):
            compile_model(path.read_bytes())
