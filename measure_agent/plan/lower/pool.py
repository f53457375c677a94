"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 and float32."""

from __future__ import annotations

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.lower.registry import (Unsupported, dtypes, fused_activation, io, lowering,
                                               pad_before, quant)



@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D")
def lower_pool(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    opts = op.options
    act = fused_activation(op)
    if len(x.shape) != 4 or len(out.shape) != 4:
        raise Unsupported("pool tensors must be 4-D")
    fw, fh = int(opts["filter_width"]), int(opts["filter_height"])
    sw, sh = int(opts.get("stride_w", 1)), int(opts.get("stride_h", 1))
    padding = opts.get("padding", "SAME")
    geometry = dict(stride_w=sw, stride_h=sh, pad_w=pad_before(x.shape[2], fw, sw, 1, padding, out.shape[2]),
                    pad_h=pad_before(x.shape[1], fh, sh, 1, padding, out.shape[1]), filter_w=fw, filter_h=fh)
    pool = "avgpool" if op.type == "AVERAGE_POOL_2D" else "maxpool"
    if x.dtype == out.dtype and x.dtype in ("int8", "int16"):
        if quant(x) != quant(out):
            raise Unsupported(f"{x.dtype} pooling needs equal input and output quantization")
        s_out, zp_out = quant(out)
        if x.dtype == "int16":
            if zp_out:
                raise Unsupported("16x8 activations must have zero point 0")
            lo, hi = Q.activation_range_int16(act, s_out)
            suffix = "s16"
        else:
            lo, hi = Q.activation_range_int8(act, s_out, zp_out)
            suffix = "s8"
        kernel = K.avgpool_s8() if (pool, suffix) == ("avgpool", "s8") else K.reference_only(f"{pool}_{suffix}_ref")
        b.emit(op, f"{pool.upper()}_{suffix.upper()}", [b.tensor(x.index)], b.tensor(out.index), kernel=kernel,
               **geometry, act_min=lo, act_max=hi)
        return
    if x.dtype == "float32" and out.dtype == "float32":
        lo, hi = Q.activation_range_float(act)
        b.emit(op, f"{pool.upper()}_F32", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only(f"{pool}_f32_ref"), **geometry, act_min=Q.float_bits(lo),
               act_max=Q.float_bits(hi))
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")
