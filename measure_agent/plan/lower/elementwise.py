"""ADD, SUB and MUL with 4-D broadcasting: int8, 16x8 (ADD, SUB) and float32.

An int8 / int16 SUB is the ADD kernel with the second input's multiplier negated (exact: the two roundings
of the reference's rescaling are symmetric about zero), so it runs ADD_S8 / ADD_S16.
"""

from __future__ import annotations

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.lower.registry import Unsupported, fused_activation, io, lowering, quant, shape4

LEFT_SHIFT = {"int8": 20, "int16": 15}


@lowering("ADD", "MUL", "SUB", constant_first_input=True)
def lower_binary(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    y = g.tensors[op.inputs[1]]
    act = fused_activation(op)
    if x.is_constant and y.is_constant:
        raise Unsupported("both inputs are constant")
    if x.is_constant and op.type != "SUB":  # ADD and MUL commute: keep the activation first
        x, y = y, x
    if len(x.shape) > 4 or len(y.shape) > 4 or len(out.shape) > 4:
        raise Unsupported("rank > 4")
    o4, a4, b4 = shape4(out.shape), shape4(x.shape), shape4(y.shape)
    for d in range(4):
        for s in (a4, b4):
            if s[d] not in (1, o4[d]):
                raise Unsupported("shapes do not broadcast to the output")
    ins = [b.tensor(x.index), b.tensor(y.index)]
    name = op.type.lower()
    if x.dtype == y.dtype == out.dtype and x.dtype in LEFT_SHIFT and op.type in ("ADD", "SUB"):
        s1, z1 = quant(x)
        s2, z2 = quant(y)
        so, zo = quant(out)
        int16 = x.dtype == "int16"
        if int16 and (z1 or z2 or zo):
            raise Unsupported("16x8 tensors must have zero point 0")
        lo, hi = (Q.activation_range_int16(act, so) if int16 else Q.activation_range_int8(act, so, zo))
        p = Q.add_multipliers(s1, s2, so, LEFT_SHIFT[x.dtype], subtract=op.type == "SUB")
        kind = "ADD_S16" if int16 else "ADD_S8"
        b.emit(op, kind, ins, b.tensor(out.index), kernel=K.add(x.dtype), a_offset=-z1, b_offset=-z2,
               out_zp=zo, a_mult=p["m1"], a_shift=p["s1"], b_mult=p["m2"], b_shift=p["s2"], out_mult=p["mo"],
               out_shift=p["so"], left_shift=p["left_shift"], act_min=lo, act_max=hi)
        return
    if x.dtype == y.dtype == out.dtype == "int8" and op.type == "MUL":
        s1, z1 = quant(x)
        s2, z2 = quant(y)
        so, zo = quant(out)
        lo, hi = Q.activation_range_int8(act, so, zo)
        m, s = Q.mul_multiplier(s1, s2, so)
        b.emit(op, "MUL_S8", ins, b.tensor(out.index), kernel=K.reference_only("mul_s8_ref"), a_offset=-z1,
               b_offset=-z2, out_zp=zo, out_mult=m, out_shift=s, act_min=lo, act_max=hi)
        return
    if x.dtype == y.dtype == out.dtype == "float32":
        lo, hi = Q.activation_range_float(act)
        b.emit(op, f"{op.type}_F32", ins, b.tensor(out.index), kernel=K.reference_only(f"{name}_f32_ref"),
               act_min=Q.float_bits(lo), act_max=Q.float_bits(hi))
        return
    raise Unsupported(f"dtypes {x.dtype}, {y.dtype} -> {out.dtype}")
