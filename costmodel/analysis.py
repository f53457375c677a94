"""The analytical half of the cost model: per-layer MACs, parameters, memory and alignment features.

MAC convention (one multiply-accumulate, or one comparable elementary step, per count):

============================  ===============================================================
op                            MACs
============================  ===============================================================
CONV_2D                       out_h * out_w * out_c * k_h * k_w * (in_c / groups)
DEPTHWISE_CONV_2D             out_h * out_w * out_c * k_h * k_w   (out_c = in_c * multiplier)
FULLY_CONNECTED               batch * units * input_length
AVERAGE_POOL_2D, MAX_POOL_2D  out_h * out_w * c * k_h * k_w  (one add / compare per window element)
MEAN                          input elements (one add each)
ADD, SUB, MUL                 output elements
SOFTMAX, LOGISTIC, TANH,
RELU, RELU6                   output elements
RESHAPE, PAD, CONCATENATION,
QUANTIZE, DEQUANTIZE, others  0 (data movement only)
============================  ===============================================================

Padding does not reduce the count (the kernels run the padded positions too, as TFLite's do).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from costmodel.boards import Board
from costmodel.errors import ModelError
from costmodel.graph import Graph, Op
from costmodel.memory import plan_arena

# Bytes of the measurement firmware's own code and state that a deployed model adds to; a
# conservative estimate for the runtime (kernels, executor, start-up) at -Os on Armv7E-M.
RUNTIME_FLASH_BYTES = 32 * 1024
RUNTIME_RAM_BYTES = 4 * 1024
# Per-tensor and per-op metadata in the model plan.
TENSOR_META_BYTES = 32
OP_META_BYTES = 48

# Constant inputs that describe a shape, axis or padding: they are not parameters.
SHAPE_INPUTS = {"RESHAPE": (1,), "PAD": (1,), "PADV2": (1,), "MEAN": (1,), "SQUEEZE": (1,), "EXPAND_DIMS": (1,)}
# Ops whose cost this module can describe; anything else is reported, not silently counted as free.
ANALYZABLE_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6", "MEAN", "PAD", "PADV2",
    "CONCATENATION", "QUANTIZE", "DEQUANTIZE",
})
ANALYZABLE_DTYPES = frozenset({"int8", "uint8", "int16", "int32", "int64", "float32", "float16", "bool"})
ELEMENTWISE_MAC_OPS = ("ADD", "SUB", "MUL", "SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6")


def alignment_class(n: int) -> str:
    """The paper's alignment classes of a channel count or input length: '%4', 'even' or 'odd'."""
    if n % 4 == 0:
        return "%4"
    return "even" if n % 2 == 0 else "odd"


@dataclass
class LayerAnalysis:
    index: int
    name: str
    op: str
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    dtype: str
    macs: int
    params: int
    weight_bytes: int
    activation_bytes: int
    features: dict = field(default_factory=dict)

    @property
    def alignment(self) -> str | None:
        """Alignment class of the dimension the paper found decisive for this layer type."""
        return self.features.get("alignment")


@dataclass
class ModelAnalysis:
    name: str
    layers: list[LayerAnalysis]
    total_macs: int
    total_params: int
    weight_bytes: int
    peak_ram_bytes: int
    flash_bytes: int
    io_bytes: int
    target: str | None = None
    fits: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _shape(graph: Graph, t: int) -> list[int]:
    return list(graph.tensors[t].shape)


def _spatial(graph: Graph, op: Op) -> dict:
    o = op.options
    return {"stride": [o.get("stride_h", 1), o.get("stride_w", 1)], "padding": o.get("padding", "SAME")}


def _layer_macs_and_features(graph: Graph, op: Op) -> tuple[int, dict]:
    """MACs and alignment features of one op (see the module docstring for the convention)."""
    t = graph.tensors
    out = t[op.outputs[0]] if op.outputs else None
    if op.type == "CONV_2D":
        _, out_h, out_w, out_c = out.shape
        filt = t[op.inputs[1]]
        k_h, k_w, filt_in_c = filt.shape[1], filt.shape[2], filt.shape[3]
        in_c = t[op.inputs[0]].shape[-1]
        features = {"in_channels": in_c, "filters": out_c, "kernel": [k_h, k_w],
                    "groups": in_c // filt_in_c if filt_in_c else 1,
                    "in_channels_mod2": in_c % 2, "in_channels_mod4": in_c % 4,
                    "alignment": alignment_class(in_c), **_spatial(graph, op)}
        return out_h * out_w * out_c * k_h * k_w * filt_in_c, features
    if op.type == "DEPTHWISE_CONV_2D":
        _, out_h, out_w, out_c = out.shape
        filt = t[op.inputs[1]]
        k_h, k_w = filt.shape[1], filt.shape[2]
        in_c = t[op.inputs[0]].shape[-1]
        features = {"in_channels": in_c, "depth_multiplier": op.options.get("depth_multiplier", 1),
                    "kernel": [k_h, k_w], "in_channels_mod2": in_c % 2, "in_channels_mod4": in_c % 4,
                    "alignment": alignment_class(in_c), **_spatial(graph, op)}
        return out_h * out_w * out_c * k_h * k_w, features
    if op.type == "FULLY_CONNECTED":
        units, in_len = t[op.inputs[1]].shape[-2:]
        batch = t[op.inputs[0]].size // in_len if in_len else 0
        features = {"input_length": in_len, "units": units, "input_length_mod2": in_len % 2,
                    "input_length_mod4": in_len % 4, "input_length_mod16": in_len % 16,
                    "alignment": alignment_class(in_len)}
        return batch * units * in_len, features
    if op.type in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        k_h, k_w = op.options.get("filter_height", 1), op.options.get("filter_width", 1)
        c = out.shape[-1]
        features = {"channels": c, "kernel": [k_h, k_w], "alignment": alignment_class(c), **_spatial(graph, op)}
        return out.size * k_h * k_w, features
    if op.type == "MEAN":
        return t[op.inputs[0]].size, {}
    if op.type in ELEMENTWISE_MAC_OPS:
        return out.size, {"elements": out.size}
    return 0, {}


class UnsupportedByAnalysis(ModelError):
    """A well-formed model with an op or tensor type the analysis cannot describe (any other
    :class:`ModelError` of the analysis says the model is corrupt)."""


def check_supported(graph: Graph) -> None:
    """Raise :class:`UnsupportedByAnalysis` naming the first op or tensor type the analysis cannot describe,
    :class:`ModelError` for a corrupt model."""
    if not graph.ops:
        raise ModelError("model has no operators")
    for op in graph.ops:
        if op.type not in ANALYZABLE_OPS:
            raise UnsupportedByAnalysis(f"unsupported op {op.type} at layer {op.index} ({graph.op_name(op)})")
        if not op.outputs or op.outputs[0] < 0:
            raise ModelError(f"layer {op.index} ({op.type}) has no output tensor: corrupt model")
        for t in op.inputs + op.outputs:
            if t >= 0 and any(d < 0 for d in graph.tensors[t].shape):
                raise ModelError(f"tensor {t} of layer {op.index} ({op.type}) has a negative dimension "
                                 f"{list(graph.tensors[t].shape)}: corrupt model")
            q = graph.tensors[t].quant if t >= 0 else None
            if q is not None and np.any((q.zero_point < -(1 << 31)) | (q.zero_point >= 1 << 31)):
                raise ModelError(f"tensor {t} ({graph.tensors[t].name!r}) of layer {op.index} ({op.type}) has a zero "
                                 "point beyond 32 bits: corrupt model")
            if t >= 0 and graph.tensors[t].nbytes >= 1 << 32:
                raise ModelError(f"tensor {t} of layer {op.index} ({op.type}) has {graph.tensors[t].nbytes} bytes "
                                 f"(shape {list(graph.tensors[t].shape)}), more than 4 GiB: corrupt model")
        for t in op.inputs + op.outputs:
            if t >= 0 and graph.tensors[t].dtype not in ANALYZABLE_DTYPES:
                raise UnsupportedByAnalysis(f"unsupported tensor type {graph.tensors[t].dtype} at layer "
                                            f"{op.index} ({graph.op_name(op)})")


def analyze(graph: Graph, board: Board | None = None) -> ModelAnalysis:
    """Analyse ``graph``; with ``board``, also say whether it fits the board's flash and RAM."""
    check_supported(graph)
    counted: set[int] = set()
    layers = []
    for op in graph.ops:
        try:
            macs, features = _layer_macs_and_features(graph, op)
        except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError) as exc:
            if isinstance(exc, ModelError):
                raise
            # the tensors of a corrupt model do not have the ranks or sizes the op needs
            raise ModelError(f"layer {op.index} ({op.type}): its tensors do not fit the op ({exc}): corrupt model") \
                from None
        params = weight_bytes = activation_bytes = 0
        for position, i in enumerate(op.inputs):
            if i < 0:
                continue
            tensor = graph.tensors[i]
            if not tensor.is_constant:
                activation_bytes += tensor.nbytes
            elif position not in SHAPE_INPUTS.get(op.type, ()) and i not in counted:
                params += tensor.size
                weight_bytes += tensor.nbytes
                counted.add(i)
        activation_bytes += sum(graph.tensors[o].nbytes for o in op.outputs)
        dtypes = [graph.tensors[i].dtype for i in op.inputs if i >= 0 and not graph.tensors[i].is_constant]
        layers.append(LayerAnalysis(
            index=op.index, name=graph.op_name(op), op=op.type,
            input_shapes=[_shape(graph, i) for i in op.inputs if i >= 0 and not graph.tensors[i].is_constant],
            output_shapes=[_shape(graph, o) for o in op.outputs],
            dtype=dtypes[0] if dtypes else graph.tensors[op.outputs[0]].dtype,
            macs=int(macs), params=int(params), weight_bytes=int(weight_bytes),
            activation_bytes=int(activation_bytes), features=features))
    arena = plan_arena(graph)
    constant_bytes = sum(t.nbytes for t in graph.tensors if t.is_constant)
    flash = (constant_bytes + TENSOR_META_BYTES * len(graph.tensors) + OP_META_BYTES * len(graph.ops)
             + RUNTIME_FLASH_BYTES)
    result = ModelAnalysis(
        name=graph.name, layers=layers,
        total_macs=sum(layer.macs for layer in layers), total_params=sum(layer.params for layer in layers),
        weight_bytes=sum(layer.weight_bytes for layer in layers), peak_ram_bytes=arena.size,
        flash_bytes=flash,
        io_bytes=sum(graph.tensors[i].nbytes for i in graph.inputs + graph.outputs))
    if board is not None:
        ram = arena.size + RUNTIME_RAM_BYTES
        result.target = board.name
        result.fits = {
            "flash": flash <= board.flash.size, "ram": ram <= board.sram.size,
            "flash_needed": flash, "flash_available": board.flash.size,
            "ram_needed": ram, "ram_available": board.sram.size,
        }
        result.fits["fits"] = result.fits["flash"] and result.fits["ram"]
    return result
