"""Compile a model graph (costmodel IR) into the firmware's binary plan (see FORMAT.md).

The plan carries everything the executor needs and nothing it must compute with floats at run time for
int8 models: per-channel requantization multipliers and shifts, activation ranges, paddings, and arena
offsets from :func:`costmodel.memory.plan_arena`, plus one shared scratch region (the largest im2col /
input-expansion buffer any layer needs) folded into the arena size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

import numpy as np

from costmodel.graph import Graph, Op, Tensor
from costmodel.memory import plan_arena
from measure_agent.plan import quantize as Q

MAGIC = 0x4C504E4E
VERSION = 1
HEADER_BYTES = 64
TENSOR_BYTES = 32
OP_BYTES = 20
NONE = 0xFFFF
MAX_OP_INPUTS = 16
MAX_TAPS = 32768        # products per int32 accumulator (with |bias| <= 2^30 no overflow is possible)
MAX_BIAS = 1 << 30
CONST_ALIGN = 8
ARENA_ALIGN = 16

DTYPES = {"int8": 1, "int16": 2, "int32": 3, "float32": 4, "uint8": 5}
DTYPE_SIZE = {"int8": 1, "int16": 2, "int32": 4, "float32": 4, "uint8": 1}
LOC_ARENA, LOC_CONST = 0, 1

OP_KINDS = {
    "CONV_S8": 1, "DWCONV_S8": 2, "FC_S8": 3, "AVGPOOL_S8": 4, "MAXPOOL_S8": 5, "ADD_S8": 6, "MUL_S8": 7,
    "SOFTMAX_S8": 8, "LOGISTIC_S8": 9, "REQUANT_S8": 10, "MEAN_S8": 11, "QUANTIZE_F32_S8": 12,
    "DEQUANTIZE_S8_F32": 13, "COPY": 20, "PAD": 21, "CONCAT": 22, "CONV_F32": 30, "DWCONV_F32": 31,
    "FC_F32": 32, "AVGPOOL_F32": 33, "MAXPOOL_F32": 34, "ADD_F32": 35, "MUL_F32": 36, "SOFTMAX_F32": 37,
    "LOGISTIC_F32": 38, "CLAMP_F32": 39, "MEAN_F32": 40, "FC_HYBRID": 50, "CONV_HYBRID": 51,
}

SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD",
                 "MUL", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SOFTMAX", "LOGISTIC", "RELU", "RELU6",
                 "RELU_N1_TO_1", "MEAN", "PAD", "CONCATENATION", "QUANTIZE", "DEQUANTIZE")


class UnsupportedOpError(ValueError):
    """The graph contains an op (or an op/dtype combination) the runtime has no kernel for."""

    def __init__(self, op_type: str, layer: int, name: str, reason: str = ""):
        self.op_type = op_type
        self.layer = layer
        self.layer_name = name
        detail = f": {reason}" if reason else ""
        super().__init__(f"unsupported op {op_type} at layer {layer} (output '{name}'){detail}")


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None
    bytes: int


@dataclass
class Layer:
    name: str
    op_type: str
    kind: str


@dataclass
class Plan:
    blob: bytes
    arena_bytes: int
    layers: list[Layer]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    scratch_bytes: int = 0
    const_bytes: int = 0


def fnv1a(data: bytes) -> int:
    """FNV-1a 32 (the plan checksum; the executor computes the same over bytes [64, total))."""
    h = 2166136261
    for b in memoryview(data):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def _pad_info(in_size: int, filter_size: int, stride: int, dilation: int, padding: str, out_size: int) -> int:
    eff = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        expected = (in_size + stride - 1) // stride
    else:
        expected = (in_size - eff + stride) // stride
    if expected != out_size:
        raise ValueError(f"output size {out_size} does not match {padding} padding (expected {expected})")
    total = max(0, (out_size - 1) * stride + eff - in_size)
    return total // 2


def _shape4(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    s = tuple(int(v) for v in shape)
    return (1,) * (4 - len(s)) + s


class _Builder:
    def __init__(self, graph: Graph):
        self.g = graph
        self.arena = plan_arena(graph)
        self.tensor_ids: dict[int, int] = {}
        self.entries: list[bytes] = []
        self.const = bytearray()
        self.ids: list[int] = []
        self.params: list[int] = []
        self.ops: list[bytes] = []
        self.layers: list[Layer] = []
        self.scratch = 0
        self.layer = 0

    # ---- tensors ----
    def _entry(self, dtype: str, loc: int, shape: tuple[int, ...], offset: int, nbytes: int, zp: int,
               scale: float) -> int:
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype}")
        if len(shape) > 4:
            raise ValueError(f"rank {len(shape)} > 4")
        dims = [int(d) for d in shape]
        if any(d < 1 or d > 0xFFFF for d in dims):
            raise ValueError(f"dimension out of range in {shape}")
        dims4 = dims + [0] * (4 - len(dims))
        e = struct.pack("<BBBBIIif4HI", DTYPES[dtype], loc, len(dims), 0, offset, nbytes, int(zp), float(scale),
                        *dims4, 0)
        assert len(e) == TENSOR_BYTES
        self.entries.append(e)
        if len(self.entries) >= NONE:
            raise ValueError("too many tensors")
        return len(self.entries) - 1

    def add_const(self, data: np.ndarray, dtype: str, shape: tuple[int, ...] | None = None, zp: int = 0,
                  scale: float = 0.0) -> int:
        arr = np.ascontiguousarray(np.asarray(data).astype(dtype, copy=False))
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        while len(self.const) % CONST_ALIGN:
            self.const.append(0)
        off = len(self.const)
        self.const += raw
        shape = tuple(arr.shape) if shape is None else shape
        if len(shape) == 0:
            shape = (1,)
        return self._entry(dtype, LOC_CONST, shape, off, len(raw), zp, scale)

    def tensor(self, t_index: int) -> int:
        if t_index < 0:
            return NONE
        if t_index in self.tensor_ids:
            return self.tensor_ids[t_index]
        t = self.g.tensors[t_index]
        zp, scale = 0, 0.0
        if t.quant is not None and t.quant.scale.size >= 1 and not t.quant.per_channel:
            zp, scale = int(t.quant.zero_point.reshape(-1)[0]), float(t.quant.scale.reshape(-1)[0])
        shape = tuple(t.shape) if t.shape else (1,)
        if t.is_constant:
            tid = self.add_const(np.asarray(t.data).reshape(shape), t.dtype, shape, zp, scale)
        else:
            if t_index not in self.arena.offsets:
                raise ValueError(f"tensor {t.name} has no arena offset")
            nbytes = int(np.prod(shape)) * DTYPE_SIZE[t.dtype]
            tid = self._entry(t.dtype, LOC_ARENA, shape, self.arena.offsets[t_index], nbytes, zp, scale)
        self.tensor_ids[t_index] = tid
        return tid

    # ---- ops ----
    def emit(self, op: Op, kind: str, inputs: list[int], output: int, params: list[int], scratch: int = 0) -> None:
        if len(inputs) > MAX_OP_INPUTS:
            raise UnsupportedOpError(op.type, op.index, self.g.op_name(op), f"more than {MAX_OP_INPUTS} inputs")
        start = len(self.ids)
        self.ids.extend(inputs + [output])
        pstart = len(self.params)
        self.params.extend(int(p) for p in params)
        self.ops.append(struct.pack("<HBBIIII", OP_KINDS[kind], len(inputs), 1, start, pstart, len(params),
                                    int(scratch)))
        self.scratch = max(self.scratch, int(scratch))
        self.layers.append(Layer(self.g.op_name(op), op.type, kind))


def _q(t: Tensor) -> tuple[float, int]:
    if t.quant is None or t.quant.scale.size == 0:
        raise ValueError(f"tensor {t.name} is not quantized")
    return float(t.quant.scale.reshape(-1)[0]), int(t.quant.zero_point.reshape(-1)[0])


def fold_constant_dequantize(graph: Graph) -> Graph:
    """A copy of ``graph`` where DEQUANTIZE ops of constant tensors (float16 or int8 weights stored for a
    float model) are evaluated at compile time, so their consumers see float32 constants."""
    folded: dict[int, np.ndarray] = {}
    keep = []
    for op in graph.ops:
        src = graph.tensors[op.inputs[0]] if op.inputs else None
        if op.type == "DEQUANTIZE" and src is not None and src.is_constant and len(op.outputs) == 1:
            data = np.asarray(src.data)
            if src.dtype == "float16":
                value = data.astype(np.float32)
            elif src.dtype in ("int8", "uint8", "int16") and src.quant is not None:
                q = src.quant
                shape = [1] * data.ndim
                if q.scale.size > 1:
                    shape[q.axis] = -1
                scale = np.asarray(q.scale, np.float64).reshape(shape)
                zp = np.asarray(q.zero_point, np.float64).reshape(shape)
                value = (scale * (data.astype(np.float64) - zp)).astype(np.float32)
            else:
                keep.append(op)
                continue
            folded[op.outputs[0]] = value.reshape(graph.tensors[op.outputs[0]].shape)
        else:
            keep.append(op)
    if not folded:
        return graph
    tensors = [replace(t, data=folded[t.index], quant=None) if t.index in folded else t for t in graph.tensors]
    return replace(graph, tensors=tensors, ops=keep)


def compile_plan(graph: Graph) -> Plan:
    """Compile ``graph`` into a plan. Raises :class:`UnsupportedOpError` for ops the runtime cannot run."""
    graph = fold_constant_dequantize(graph)
    b = _Builder(graph)
    g = graph
    for op in g.ops:
        name = g.op_name(op)
        try:
            _compile_op(b, g, op)
        except UnsupportedOpError:
            raise
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise UnsupportedOpError(op.type, op.index, name, str(e)) from e

    for t in list(g.inputs) + list(g.outputs):
        b.tensor(t)
    io_ids = [b.tensor(t) for t in g.inputs] + [b.tensor(t) for t in g.outputs]
    ids = io_ids + b.ids
    # op id ranges were recorded relative to b.ids; shift by the io prefix
    ops = []
    for e in b.ops:
        kind, n_in, n_out, start, pstart, np_, scratch = struct.unpack("<HBBIIII", e)
        ops.append(struct.pack("<HBBIIII", kind, n_in, n_out, start + len(io_ids), pstart, np_, scratch))

    scratch_off = (b.arena.size + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN
    arena_bytes = scratch_off + (b.scratch + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN

    def align(n: int, a: int) -> int:
        return (n + a - 1) // a * a

    tensors_off = HEADER_BYTES
    ops_off = tensors_off + TENSOR_BYTES * len(b.entries)
    params_off = ops_off + OP_BYTES * len(ops)
    ids_off = params_off + 4 * len(b.params)
    const_off = align(ids_off + 2 * len(ids), CONST_ALIGN)
    total = const_off + len(b.const)
    body = bytearray()
    body += b"".join(b.entries)
    body += b"".join(ops)
    body += struct.pack(f"<{len(b.params)}i", *b.params)
    body += struct.pack(f"<{len(ids)}H", *ids)
    body += b"\0" * (const_off - HEADER_BYTES - len(body))
    body += bytes(b.const)
    assert HEADER_BYTES + len(body) == total
    if len(b.entries) >= NONE or len(g.ops) > 0xFFFF:
        raise ValueError("plan too large")
    checksum = fnv1a(bytes(body))
    header = struct.pack("<IHHIIIHHHHIIIIIIIII", MAGIC, VERSION, HEADER_BYTES, total, arena_bytes, scratch_off,
                         len(b.entries), len(ops), len(g.inputs), len(g.outputs), tensors_off, ops_off, ids_off,
                         len(ids), params_off, len(b.params), const_off, len(b.const), checksum)
    assert len(header) == HEADER_BYTES
    blob = header + bytes(body)

    def info(t_index: int) -> TensorInfo:
        t = g.tensors[t_index]
        scale, zp = (None, None)
        if t.quant is not None and t.quant.scale.size == 1:
            scale, zp = float(t.quant.scale[0]), int(t.quant.zero_point[0])
        return TensorInfo(t.name, tuple(t.shape), t.dtype, scale, zp, t.nbytes)

    return Plan(blob=blob, arena_bytes=arena_bytes, layers=b.layers, inputs=[info(t) for t in g.inputs],
                outputs=[info(t) for t in g.outputs], scratch_bytes=b.scratch, const_bytes=len(b.const))


def _check_bias(g: Graph, bias_i: int) -> None:
    if bias_i >= 0 and g.tensors[bias_i].is_constant and g.tensors[bias_i].dtype == "int32":
        if np.any(np.abs(np.asarray(g.tensors[bias_i].data, np.int64)) > MAX_BIAS):
            raise ValueError("int32 bias beyond +-2^30 (the runtime's accumulator bound)")


def _requant_arrays(b: _Builder, mults: np.ndarray, shifts: np.ndarray) -> tuple[int, int]:
    return b.add_const(mults.astype(np.int32), "int32"), b.add_const(shifts.astype(np.int32), "int32")


def _compile_op(b: _Builder, g: Graph, op: Op) -> None:
    name = g.op_name(op)
    T = g.tensors
    t = op.type
    if t not in SUPPORTED_OPS:
        raise UnsupportedOpError(t, op.index, name)
    if len(op.outputs) != 1:
        raise UnsupportedOpError(t, op.index, name, "ops must have exactly one output")
    out = T[op.outputs[0]]
    x = T[op.inputs[0]]
    opts = op.options
    act = opts.get("fused_activation_function", "NONE")

    def unsupported(reason: str):
        return UnsupportedOpError(t, op.index, name, reason)

    def dtypes() -> str:
        return f"{x.dtype} -> {out.dtype}"

    if x.is_constant and t not in ("DEQUANTIZE", "QUANTIZE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "ADD", "MUL"):
        raise unsupported("constant first input")

    if t in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = T[op.inputs[1]]
        bias_i = op.input(2)
        if not w.is_constant:
            raise unsupported("non-constant filter")
        if len(x.shape) != 4 or len(out.shape) != 4 or len(w.shape) != 4:
            raise unsupported("conv tensors must be 4-D")
        dw = t == "DEPTHWISE_CONV_2D"
        sw, sh = int(opts.get("stride_w", 1)), int(opts.get("stride_h", 1))
        dlw, dlh = int(opts.get("dilation_w_factor", 1)), int(opts.get("dilation_h_factor", 1))
        kh, kw = w.shape[1], w.shape[2]
        pad_h = _pad_info(x.shape[1], kh, sh, dlh, opts.get("padding", "SAME"), out.shape[1])
        pad_w = _pad_info(x.shape[2], kw, sw, dlw, opts.get("padding", "SAME"), out.shape[2])
        geo = [sw, sh, pad_w, pad_h, dlw, dlh]
        dm = out.shape[3] // x.shape[3] if dw else 1
        if dw and x.shape[3] * dm != out.shape[3]:
            raise unsupported("output channels are not a multiple of input channels")
        oc = out.shape[3]
        taps = kh * kw * (1 if dw else x.shape[3])
        if taps > MAX_TAPS:
            raise unsupported(f"{taps} taps per output (the runtime's limit is {MAX_TAPS})")
        if x.dtype == "int8" and w.dtype == "int8" and out.dtype == "int8":
            s_in, zp_in = _q(x)
            s_out, zp_out = _q(out)
            if np.any(w.quant.zero_point != 0):
                raise unsupported("asymmetric weights")
            mults, shifts = Q.conv_multipliers(s_in, w.quant.scale, s_out, oc)
            lo, hi = Q.activation_range_int8(act, s_out, zp_out)
            if bias_i >= 0 and T[bias_i].dtype != "int32":
                raise unsupported(f"bias dtype {T[bias_i].dtype}")
            _check_bias(g, bias_i)
            bias = b.tensor(bias_i)
            mi, si = _requant_arrays(b, mults, shifts)
            params = geo + [-zp_in, zp_out, lo, hi] + ([dm] if dw else [])
            scratch = 0 if dw else 2 * 2 * kh * kw * x.shape[3]
            b.emit(op, "DWCONV_S8" if dw else "CONV_S8", [b.tensor(x.index), b.tensor(w.index), bias, mi, si],
                   b.tensor(out.index), params, scratch)
            return
        if x.dtype == "float32" and out.dtype == "float32" and w.dtype == "float32":
            lo, hi = Q.activation_range_float(act)
            params = geo + [Q.float_bits(lo), Q.float_bits(hi)] + ([dm] if dw else [])
            b.emit(op, "DWCONV_F32" if dw else "CONV_F32", [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i)],
                   b.tensor(out.index), params)
            return
        if x.dtype == "float32" and out.dtype == "float32" and w.dtype == "int8" and not dw:
            if np.any(w.quant.zero_point != 0):
                raise unsupported("asymmetric weights")
            per_channel = int(w.quant.scale.size > 1)
            lo, hi = Q.activation_range_float(act)
            scales = b.add_const(np.asarray(w.quant.scale, dtype=np.float32).reshape(-1), "float32")
            params = geo + [Q.float_bits(lo), Q.float_bits(hi), per_channel]
            b.emit(op, "CONV_HYBRID", [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i), scales],
                   b.tensor(out.index), params, int(np.prod(x.shape)))
            return
        raise unsupported(f"dtypes {dtypes()} with {w.dtype} weights")

    if t == "FULLY_CONNECTED":
        w = T[op.inputs[1]]
        bias_i = op.input(2)
        if not w.is_constant or len(w.shape) != 2:
            raise unsupported("weights must be a constant 2-D tensor")
        in_len, units = w.shape[1], w.shape[0]
        if in_len > MAX_TAPS:
            raise unsupported(f"input length {in_len} (the runtime's limit is {MAX_TAPS})")
        if x.size % in_len != 0 or (x.size // in_len) * units != out.size:
            raise unsupported("input size does not match weights")
        if x.dtype == "int8" and w.dtype == "int8" and out.dtype == "int8":
            s_in, zp_in = _q(x)
            s_out, zp_out = _q(out)
            if np.any(w.quant.zero_point != 0):
                raise unsupported("asymmetric weights")
            if bias_i >= 0 and T[bias_i].dtype != "int32":
                raise unsupported(f"bias dtype {T[bias_i].dtype}")
            _check_bias(g, bias_i)
            mults, shifts = Q.conv_multipliers(s_in, w.quant.scale, s_out, units)
            lo, hi = Q.activation_range_int8(act, s_out, zp_out)
            mi, si = _requant_arrays(b, mults, shifts)
            b.emit(op, "FC_S8", [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i), mi, si],
                   b.tensor(out.index), [-zp_in, zp_out, lo, hi], 2 * in_len)
            return
        if x.dtype == "float32" and out.dtype == "float32" and w.dtype == "float32":
            lo, hi = Q.activation_range_float(act)
            b.emit(op, "FC_F32", [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i)], b.tensor(out.index),
                   [Q.float_bits(lo), Q.float_bits(hi)])
            return
        if x.dtype == "float32" and out.dtype == "float32" and w.dtype == "int8":
            if np.any(w.quant.zero_point != 0):
                raise unsupported("asymmetric weights")
            lo, hi = Q.activation_range_float(act)
            per_channel = int(w.quant.scale.size > 1)
            scales = b.add_const(np.asarray(w.quant.scale, dtype=np.float32).reshape(-1), "float32")
            asym = int(bool(opts.get("asymmetric_quantize_inputs", False)))
            b.emit(op, "FC_HYBRID", [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i), scales],
                   b.tensor(out.index), [per_channel, asym, Q.float_bits(lo), Q.float_bits(hi)], in_len)
            return
        raise unsupported(f"dtypes {dtypes()} with {w.dtype} weights")

    if t in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        if len(x.shape) != 4 or len(out.shape) != 4:
            raise unsupported("pool tensors must be 4-D")
        fw, fh = int(opts["filter_width"]), int(opts["filter_height"])
        sw, sh = int(opts.get("stride_w", 1)), int(opts.get("stride_h", 1))
        pad_h = _pad_info(x.shape[1], fh, sh, 1, opts.get("padding", "SAME"), out.shape[1])
        pad_w = _pad_info(x.shape[2], fw, sw, 1, opts.get("padding", "SAME"), out.shape[2])
        geo = [sw, sh, pad_w, pad_h, fw, fh]
        avg = t == "AVERAGE_POOL_2D"
        if x.dtype == "int8" and out.dtype == "int8":
            if _q(x) != _q(out):
                raise unsupported("int8 pooling needs equal input and output quantization")
            s_out, zp_out = _q(out)
            lo, hi = Q.activation_range_int8(act, s_out, zp_out)
            b.emit(op, "AVGPOOL_S8" if avg else "MAXPOOL_S8", [b.tensor(x.index)], b.tensor(out.index), geo + [lo, hi])
            return
        if x.dtype == "float32" and out.dtype == "float32":
            lo, hi = Q.activation_range_float(act)
            b.emit(op, "AVGPOOL_F32" if avg else "MAXPOOL_F32", [b.tensor(x.index)], b.tensor(out.index),
                   geo + [Q.float_bits(lo), Q.float_bits(hi)])
            return
        raise unsupported(f"dtypes {dtypes()}")

    if t in ("ADD", "MUL"):
        y = T[op.inputs[1]]
        if x.is_constant:  # both ops commute: keep the activation first
            if y.is_constant:
                raise unsupported("both inputs are constant")
            x, y = y, x
        if len(x.shape) > 4 or len(y.shape) > 4 or len(out.shape) > 4:
            raise unsupported("rank > 4")
        o4, a4, b4 = _shape4(out.shape), _shape4(x.shape), _shape4(y.shape)
        for d in range(4):
            for s in (a4, b4):
                if s[d] not in (1, o4[d]):
                    raise unsupported("shapes do not broadcast to the output")
        ins = [b.tensor(x.index), b.tensor(y.index)]
        if x.dtype == y.dtype == out.dtype == "int8":
            s1, z1 = _q(x)
            s2, z2 = _q(y)
            so, zo = _q(out)
            lo, hi = Q.activation_range_int8(act, so, zo)
            if t == "ADD":
                p = Q.add_params(s1, s2, so)
                params = [-z1, -z2, zo, p["m1"], p["s1"], p["m2"], p["s2"], p["mo"], p["so"], p["left_shift"], lo, hi]
                b.emit(op, "ADD_S8", ins, b.tensor(out.index), params)
            else:
                m, s = Q.mul_multiplier(s1, s2, so)
                b.emit(op, "MUL_S8", ins, b.tensor(out.index), [-z1, -z2, zo, m, s, lo, hi])
            return
        if x.dtype == y.dtype == out.dtype == "float32":
            lo, hi = Q.activation_range_float(act)
            b.emit(op, t + "_F32", ins, b.tensor(out.index), [Q.float_bits(lo), Q.float_bits(hi)])
            return
        raise unsupported(f"dtypes {x.dtype}, {y.dtype} -> {out.dtype}")

    if t in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        if x.dtype != out.dtype or x.nbytes != out.nbytes:
            raise unsupported("reshape changes the size")
        b.emit(op, "COPY", [b.tensor(x.index)], b.tensor(out.index), [])
        return

    if t == "SOFTMAX":
        beta = float(opts.get("beta", 1.0))
        if x.dtype == "int8" and out.dtype == "int8":
            s_in, _ = _q(x)
            s_out, zp_out = _q(out)
            if zp_out != -128 or abs(s_out - 1.0 / 256) > 1e-9:
                raise unsupported("int8 softmax output must have scale 1/256 and zero point -128")
            if x.shape[-1] > 256:
                raise unsupported("int8 softmax depth > 256")
            m, sh, diff_min = Q.softmax_params(s_in, beta)
            b.emit(op, "SOFTMAX_S8", [b.tensor(x.index)], b.tensor(out.index), [m, sh, diff_min])
            return
        if x.dtype == "float32" and out.dtype == "float32":
            b.emit(op, "SOFTMAX_F32", [b.tensor(x.index)], b.tensor(out.index), [Q.float_bits(beta)])
            return
        raise unsupported(f"dtypes {dtypes()}")

    if t == "LOGISTIC":
        if x.dtype == "int8" and out.dtype == "int8":
            s_in, zp_in = _q(x)
            s_out, zp_out = _q(out)
            if zp_out != -128 or abs(s_out - 1.0 / 256) > 1e-9:
                raise unsupported("int8 logistic output must have scale 1/256 and zero point -128")
            m, sh, radius = Q.logistic_params(s_in)
            b.emit(op, "LOGISTIC_S8", [b.tensor(x.index)], b.tensor(out.index), [zp_in, radius, m, sh])
            return
        if x.dtype == "float32" and out.dtype == "float32":
            b.emit(op, "LOGISTIC_F32", [b.tensor(x.index)], b.tensor(out.index), [])
            return
        raise unsupported(f"dtypes {dtypes()}")

    if t in ("RELU", "RELU6", "RELU_N1_TO_1"):
        if x.dtype == "int8" and out.dtype == "int8":
            s_in, zp_in = _q(x)
            s_out, zp_out = _q(out)
            lo, hi = Q.activation_range_int8(t, s_out, zp_out)
            m, s = Q.quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
            b.emit(op, "REQUANT_S8", [b.tensor(x.index)], b.tensor(out.index), [zp_in, zp_out, m, s, lo, hi])
            return
        if x.dtype == "float32" and out.dtype == "float32":
            lo, hi = Q.activation_range_float(t)
            b.emit(op, "CLAMP_F32", [b.tensor(x.index)], b.tensor(out.index), [Q.float_bits(lo), Q.float_bits(hi)])
            return
        raise unsupported(f"dtypes {dtypes()}")

    if t == "MEAN":
        axes_t = T[op.inputs[1]]
        if not axes_t.is_constant:
            raise unsupported("non-constant axes")
        axes = sorted(int(a) % len(x.shape) for a in np.asarray(axes_t.data).reshape(-1))
        if len(x.shape) != 4 or axes != [1, 2]:
            raise unsupported(f"only the mean over height and width of a 4-D tensor is supported (axes {axes})")
        if x.dtype == "int8" and out.dtype == "int8":
            s_in, zp_in = _q(x)
            s_out, zp_out = _q(out)
            m, s = Q.mean_params(s_in, s_out, x.shape[1] * x.shape[2])
            b.emit(op, "MEAN_S8", [b.tensor(x.index)], b.tensor(out.index), [zp_in, zp_out, m, s])
            return
        if x.dtype == "float32" and out.dtype == "float32":
            b.emit(op, "MEAN_F32", [b.tensor(x.index)], b.tensor(out.index), [])
            return
        raise unsupported(f"dtypes {dtypes()}")

    if t == "PAD":
        pads_t = T[op.inputs[1]]
        if not pads_t.is_constant:
            raise unsupported("non-constant paddings")
        pads = np.asarray(pads_t.data).reshape(-1, 2)
        if len(x.shape) > 4 or pads.shape[0] != len(x.shape) or np.any(pads < 0):
            raise unsupported("paddings do not match the input rank")
        before = [0] * (4 - len(x.shape)) + [int(v) for v in pads[:, 0]]
        if x.dtype == "int8" and out.dtype == "int8":
            if _q(x) != _q(out):
                raise unsupported("int8 pad needs equal input and output quantization")
            pad_value = _q(out)[1] & 0xFF
        elif x.dtype == "float32" and out.dtype == "float32":
            pad_value = Q.float_bits(0.0)
        else:
            raise unsupported(f"dtypes {dtypes()}")
        b.emit(op, "PAD", [b.tensor(x.index)], b.tensor(out.index), before + [pad_value])
        return

    if t == "CONCATENATION":
        if act != "NONE":
            raise unsupported(f"fused activation {act}")
        axis = int(opts.get("axis", 0))
        rank = len(out.shape)
        if rank > 4:
            raise unsupported("rank > 4")
        axis = axis % rank
        ins = [T[i] for i in op.inputs]
        for i in ins:
            if i.dtype != out.dtype or len(i.shape) != rank:
                raise unsupported("inputs differ in dtype or rank from the output")
            if out.dtype == "int8" and _q(i) != _q(out):
                raise unsupported("int8 inputs must share the output quantization")
            if out.dtype not in ("int8", "float32"):
                raise unsupported(f"dtype {out.dtype}")
        b.emit(op, "CONCAT", [b.tensor(i.index) for i in ins], b.tensor(out.index), [axis + 4 - rank])
        return

    if t == "QUANTIZE":
        if x.dtype == "float32" and out.dtype == "int8":
            s_out, zp_out = _q(out)
            b.emit(op, "QUANTIZE_F32_S8", [b.tensor(x.index)], b.tensor(out.index), [Q.float_bits(s_out), zp_out])
            return
        if x.dtype == "int8" and out.dtype == "int8":
            s_in, zp_in = _q(x)
            s_out, zp_out = _q(out)
            m, s = Q.quantize_multiplier(float(s_in) / float(s_out))
            b.emit(op, "REQUANT_S8", [b.tensor(x.index)], b.tensor(out.index), [zp_in, zp_out, m, s, -128, 127])
            return
        raise unsupported(f"dtypes {dtypes()}")

    if t == "DEQUANTIZE":
        if x.dtype == "int8" and out.dtype == "float32":
            s_in, zp_in = _q(x)
            b.emit(op, "DEQUANTIZE_S8_F32", [b.tensor(x.index)], b.tensor(out.index), [Q.float_bits(s_in), zp_in])
            return
        raise unsupported(f"dtypes {dtypes()}")

    raise unsupported("no kernel")
