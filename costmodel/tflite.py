"""Read a .tflite flatbuffer into the graph IR.

The reader walks the flatbuffer directly (field ids from TFLite's public ``schema.fbs``) and checks
every offset, so a truncated or corrupted file gives a :class:`ModelError`, never a crash.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import numpy as np

from costmodel.errors import ModelError
from costmodel.fold import fold_constant_dequantize, fold_static_shapes
from costmodel.graph import NUMPY_TYPES, Graph, Op, Quantization, Tensor


TENSOR_TYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
    7: "int16", 8: "complex64", 9: "int8", 10: "float64",
}

# Builtin operator codes this project knows by name (TFLite schema enum BuiltinOperator).
BUILTIN_CODES = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU",
    21: "RELU6", 22: "RESHAPE", 25: "SOFTMAX", 28: "TANH", 34: "PAD", 40: "MEAN", 41: "SUB",
    43: "SQUEEZE", 45: "STRIDED_SLICE", 53: "CAST", 60: "PADV2", 70: "EXPAND_DIMS", 77: "SHAPE",
    83: "PACK", 114: "QUANTIZE", 126: "BATCH_MATMUL",
}

_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}

# Options table layout per op: (field name, field id, kind). Kinds: b=bool, i=int32, f=float32,
# pad / act = enums, ivec = vector of int32.
_OPTIONS = {
    "CONV_2D": [("padding", 0, "pad"), ("stride_w", 1, "i"), ("stride_h", 2, "i"),
                ("fused_activation_function", 3, "act"), ("dilation_w_factor", 4, "i"),
                ("dilation_h_factor", 5, "i")],
    "DEPTHWISE_CONV_2D": [("padding", 0, "pad"), ("stride_w", 1, "i"), ("stride_h", 2, "i"),
                          ("depth_multiplier", 3, "i"), ("fused_activation_function", 4, "act"),
                          ("dilation_w_factor", 5, "i"), ("dilation_h_factor", 6, "i")],
    "FULLY_CONNECTED": [("fused_activation_function", 0, "act"), ("weights_format", 1, "b8"),
                        ("keep_num_dims", 2, "b"), ("asymmetric_quantize_inputs", 3, "b")],
    "AVERAGE_POOL_2D": [("padding", 0, "pad"), ("stride_w", 1, "i"), ("stride_h", 2, "i"),
                        ("filter_width", 3, "i"), ("filter_height", 4, "i"),
                        ("fused_activation_function", 5, "act")],
    "ADD": [("fused_activation_function", 0, "act")],
    "SUB": [("fused_activation_function", 0, "act")],
    "MUL": [("fused_activation_function", 0, "act")],
    "RESHAPE": [("new_shape", 0, "ivec")],
    "SOFTMAX": [("beta", 0, "f")],
    "CONCATENATION": [("axis", 0, "i"), ("fused_activation_function", 1, "act")],
    "MEAN": [("keep_dims", 0, "b")],
    "STRIDED_SLICE": [("begin_mask", 0, "i"), ("end_mask", 1, "i"), ("ellipsis_mask", 2, "i"),
                      ("new_axis_mask", 3, "i"), ("shrink_axis_mask", 4, "i"), ("offset", 5, "b")],
    "PACK": [("values_count", 0, "i"), ("axis", 1, "i")],
    "SQUEEZE": [("squeeze_dims", 0, "ivec")],
}
_OPTIONS["MAX_POOL_2D"] = _OPTIONS["AVERAGE_POOL_2D"]
_DEFAULTS = {"stride_w": 0, "stride_h": 0, "dilation_w_factor": 1, "dilation_h_factor": 1,
             "depth_multiplier": 0, "beta": 0.0, "fused_activation_function": "NONE", "padding": "SAME"}


def builtin_name(code: int) -> str:
    """Name of a builtin operator code, e.g. 3 -> 'CONV_2D'."""
    if code in BUILTIN_CODES:
        return BUILTIN_CODES[code]
    try:  # the full enum, for naming ops this project does not otherwise know
        from ai_edge_litert.schema_py_generated import BuiltinOperator

        for name, value in vars(BuiltinOperator).items():
            if value == code and not name.startswith("_"):
                return name
    except ImportError:
        pass
    return f"BUILTIN_{code}"


class _Buf:
    """Bounds-checked access to flatbuffer tables."""

    def __init__(self, data: bytes):
        self.data = data
        self.n = len(data)

    def _check(self, pos: int, size: int) -> None:
        if pos < 0 or pos + size > self.n:
            raise ModelError(f"offset {pos} (+{size}) is outside the file ({self.n} bytes): truncated or corrupt")

    def u8(self, pos: int) -> int:
        self._check(pos, 1)
        return self.data[pos]

    def u16(self, pos: int) -> int:
        self._check(pos, 2)
        return struct.unpack_from("<H", self.data, pos)[0]

    def i32(self, pos: int) -> int:
        self._check(pos, 4)
        return struct.unpack_from("<i", self.data, pos)[0]

    def u32(self, pos: int) -> int:
        self._check(pos, 4)
        return struct.unpack_from("<I", self.data, pos)[0]

    def field(self, table: int, fid: int) -> int | None:
        """Absolute position of field ``fid`` of the table at ``table``, or None if absent."""
        vtable = table - self.i32(table)
        vsize = self.u16(vtable)
        voff = 4 + 2 * fid
        if voff + 2 > vsize:
            return None
        off = self.u16(vtable + voff)
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def table(self, table: int, fid: int) -> int | None:
        pos = self.field(table, fid)
        return None if pos is None else self.deref(pos)

    def scalar(self, table: int, fid: int, fmt: str, default):
        pos = self.field(table, fid)
        if pos is None:
            return default
        size = struct.calcsize("<" + fmt)
        self._check(pos, size)
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def vector(self, table: int, fid: int) -> tuple[int, int] | None:
        """(position of first element, length) of a vector field."""
        pos = self.table(table, fid)
        if pos is None:
            return None
        return pos + 4, self.u32(pos)

    def tables(self, table: int, fid: int) -> list[int]:
        vec = self.vector(table, fid)
        if vec is None:
            return []
        start, length = vec
        self._check(start, 4 * length)
        return [self.deref(start + 4 * i) for i in range(length)]

    def array(self, table: int, fid: int, dtype) -> np.ndarray:
        vec = self.vector(table, fid)
        if vec is None:
            return np.zeros(0, dtype=dtype)
        start, length = vec
        itemsize = np.dtype(dtype).itemsize
        self._check(start, itemsize * length)
        return np.frombuffer(self.data, dtype=np.dtype(dtype).newbyteorder("<"), count=length, offset=start).copy()

    def string(self, table: int, fid: int) -> str:
        raw = self.array(table, fid, np.uint8)
        return raw.tobytes().decode("utf-8", errors="replace")


def _options(buf: _Buf, op_table: int, op_type: str) -> dict:
    spec = _OPTIONS.get(op_type)
    if spec is None:
        return {}
    table = buf.table(op_table, 4)
    empty = {"b": False, "ivec": []}
    options = {name: _DEFAULTS.get(name, empty.get(kind, 0)) for name, _, kind in spec}
    if table is None:
        return options
    for name, fid, kind in spec:
        if kind == "i":
            options[name] = buf.scalar(table, fid, "i", options[name])
        elif kind == "f":
            options[name] = buf.scalar(table, fid, "f", options[name])
        elif kind in ("b", "b8"):
            options[name] = buf.scalar(table, fid, "B", 0)
            if kind == "b":
                options[name] = bool(options[name])
        elif kind == "pad":
            options[name] = _PADDING.get(buf.scalar(table, fid, "b", 0), "SAME")
        elif kind == "act":
            options[name] = _ACTIVATION.get(buf.scalar(table, fid, "b", 0), "NONE")
        elif kind == "ivec":
            options[name] = [int(v) for v in buf.array(table, fid, np.int32)]
    return options


def _quantization(buf: _Buf, tensor_table: int) -> Quantization | None:
    q = buf.table(tensor_table, 4)
    if q is None:
        return None
    scale = buf.array(q, 2, np.float32)
    zero_point = buf.array(q, 3, np.int64)
    if scale.size == 0:
        return None
    if zero_point.size == 0:
        zero_point = np.zeros(scale.size, dtype=np.int64)
    if zero_point.size != scale.size:
        raise ModelError("quantization has different numbers of scales and zero points")
    return Quantization(scale=scale, zero_point=zero_point, axis=buf.scalar(q, 6, "i", 0))


def parse_tflite(data: bytes, name: str = "model") -> Graph:
    """Parse .tflite bytes into a :class:`Graph` (the first subgraph), before any folding."""
    if len(data) < 8:
        raise ModelError("file is too short to be a TFLite flatbuffer")
    if data[4:8] != b"TFL3":
        raise ModelError("not a TFLite flatbuffer (missing the 'TFL3' identifier)")
    buf = _Buf(data)
    try:
        model = buf.deref(0)
        opcodes = []
        for oc in buf.tables(model, 1):
            code = max(buf.scalar(oc, 0, "b", 0), buf.scalar(oc, 3, "i", 0))
            opcodes.append((code, buf.string(oc, 1), buf.scalar(oc, 2, "i", 1)))
        buffers = []
        for b in buf.tables(model, 4):
            offset, size = buf.scalar(b, 1, "Q", 0), buf.scalar(b, 2, "Q", 0)
            if offset > 1:
                if offset + size > len(data):
                    raise ModelError("a weight buffer points past the end of the file")
                buffers.append(np.frombuffer(data, np.uint8, count=size, offset=offset))
            else:
                buffers.append(buf.array(b, 0, np.uint8))
        subgraphs = buf.tables(model, 2)
        if not subgraphs:
            raise ModelError("model has no subgraph")
        sg = subgraphs[0]
        tensors = []
        for i, t in enumerate(buf.tables(sg, 0)):
            type_code = buf.scalar(t, 1, "b", 0)
            dtype = TENSOR_TYPES.get(type_code, f"type{type_code}")
            shape = tuple(int(d) for d in buf.array(t, 0, np.int32))
            data_arr = None
            bidx = buf.scalar(t, 2, "I", 0)
            if bidx >= len(buffers):
                raise ModelError(f"tensor {i} refers to buffer {bidx}, but the model has {len(buffers)}")
            raw = buffers[bidx] if bidx else None
            if raw is not None and raw.size:
                if dtype not in NUMPY_TYPES:
                    raise ModelError(f"tensor {i} has constant data of unsupported type {dtype}")
                np_type = np.dtype(NUMPY_TYPES[dtype])
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                if raw.size != count * np_type.itemsize:
                    raise ModelError(f"tensor {i}: buffer has {raw.size} bytes, shape {shape} needs "
                                     f"{count * np_type.itemsize}")
                data_arr = raw.view(np_type.newbyteorder("<")).astype(np_type).reshape(shape)
            tensors.append(Tensor(i, buf.string(t, 3) or f"tensor{i}", shape, dtype, data_arr,
                                  _quantization(buf, t)))
        ops = []
        for i, o in enumerate(buf.tables(sg, 3)):
            opcode_index = buf.scalar(o, 0, "I", 0)
            if opcode_index >= len(opcodes):
                raise ModelError(f"operator {i} uses opcode {opcode_index}, but the model has {len(opcodes)}")
            code, custom, version = opcodes[opcode_index]
            op_type = f"CUSTOM:{custom}" if code == 32 else builtin_name(code)
            inputs = [int(x) for x in buf.array(o, 1, np.int32)]
            outputs = [int(x) for x in buf.array(o, 2, np.int32)]
            for t in inputs + outputs:
                if t >= len(tensors) or t < -1:
                    raise ModelError(f"operator {i} ({op_type}) refers to tensor {t}, model has {len(tensors)}")
            ops.append(Op(i, op_type, inputs, outputs, _options(buf, o, op_type), version))
        graph_inputs = [int(x) for x in buf.array(sg, 1, np.int32)]
        graph_outputs = [int(x) for x in buf.array(sg, 2, np.int32)]
        for t in graph_inputs + graph_outputs:
            if not 0 <= t < len(tensors):
                raise ModelError(f"model input/output refers to tensor {t}, model has {len(tensors)}")
    except (struct.error, RecursionError, OverflowError, MemoryError) as exc:
        raise ModelError(f"corrupt flatbuffer ({exc})") from None
    return Graph(tensors, ops, graph_inputs, graph_outputs, name)


#: the largest .tflite file read by default: far above any model for a microcontroller, far below
#: what would take a machine's memory (a flatbuffer cannot exceed 2 GiB anyway)
MAX_MODEL_FILE_BYTES = 256 * 1024 * 1024
TFLITE_IDENTIFIER = b"TFL3"


def read_model_file(path: str | Path, max_bytes: int = MAX_MODEL_FILE_BYTES) -> bytes:
    """The bytes of a .tflite file, after checking its size and header without reading the rest:
    ModelError for a missing, empty, oversized or non-TFLite file."""
    path = Path(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ModelError("is a directory, not a model file")
        if not stat.S_ISREG(info.st_mode):
            raise ModelError("not a regular file")
        if info.st_size > max_bytes:
            raise ModelError(f"file is {info.st_size} bytes, more than the limit of {max_bytes} bytes for a model")
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelError("file is too short to be a TFLite flatbuffer" if head else "file is empty")
            if head[4:8] != TFLITE_IDENTIFIER:
                raise ModelError("not a TFLite flatbuffer (missing the 'TFL3' identifier)")
            return head + f.read(max_bytes - len(head))
    except OSError as exc:
        raise ModelError(f"cannot read: {exc.strerror}") from None


def read_model(source: str | Path | bytes, name: str | None = None, max_bytes: int = MAX_MODEL_FILE_BYTES) -> Graph:
    """Read a .tflite model (path or bytes) and fold what is known statically: shape arithmetic and
    DEQUANTIZE ops of constant weights (:mod:`costmodel.fold`). A path is checked (size at most
    ``max_bytes``, TFLite header) before it is read."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        data = read_model_file(path, max_bytes)
        name = name or path.stem
    else:
        data = bytes(source)
    return fold_constant_dequantize(fold_static_shapes(parse_tflite(data, name or "model")))
