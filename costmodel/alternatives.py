"""Known-inferior parametrizations: nearby layer parametrizations the δ table predicts faster while keeping at
least the same MACs (or parameters), as in the paper's "add a filter to the previous layer and get faster".

Used through :meth:`costmodel.latency_model.LatencyModel.alternatives` and ``is_inferior``.

In a model, a layer's filters (convolution) or units (dense) change by ±1..``max_step``; the change runs
through the layers that pass channels on (depthwise convolution, pooling, activations, global pooling,
flatten) to the layer that consumes them (a convolution's input channels, a dense layer's input length),
whose latency changes too. A change that would reach the model's output (its classes) or a layer with
two inputs (ADD, MUL, CONCATENATION) is not proposed. Kernel sizes 1/3/5/7 are tried for convolutions
with SAME padding (the output shape stays). The gain is the predicted latency saved over the affected
layers, relative to the whole model; its uncertainty combines the affected layers' uncertainties (those
of one table key are correlated, so they largely cancel between before and after).

For a single layer (:class:`~costmodel.features.LayerSpec` or a layer row), its input channels / length,
output channels, kernel size and stride change, and the gain is relative to that layer alone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping

from costmodel import features as F
from costmodel.analysis import ELEMENTWISE_MAC_OPS, ModelAnalysis

PASS_THROUGH = {"RELU", "RELU6", "LOGISTIC", "TANH", "QUANTIZE", "DEQUANTIZE", "PAD", "PADV2"}
KERNEL_SIZES = (1, 3, 5, 7)


@dataclass(frozen=True)
class Alternative:
    """One faster parametrization. ``gain`` and ``gain_uncertainty`` are relative (of the model's predicted
    latency, or of the layer's for a single layer); ``layer_gain`` relative to the affected layers."""

    layer_index: int
    layer_name: str
    parameter: str             # "filters", "units", "in_channels", "input_length", "kernel", "stride"
    old: int
    new: int
    affected: tuple[int, ...]
    latency_before_s: float
    latency_after_s: float
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    gain_s: float
    gain: float
    gain_uncertainty: float
    layer_gain: float
    sources: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        where = f"layer {self.layer_index}" + (f" ({self.layer_name})" if self.layer_name else "")
        return (f"{where}: {self.parameter} {self.old} -> {self.new}: {self.gain * 100:+.1f} % "
                f"(± {self.gain_uncertainty * 100:.1f} %) faster, MACs {self.macs_before:,} -> {self.macs_after:,}")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _has_bias(row: Mapping, weights: int) -> bool:
    return int(row.get("params") or 0) > weights


def _producer(row: dict, new_out: int) -> dict | None:
    """``row`` with ``new_out`` filters / units."""
    op = row["op"]
    out = F.output_shape(row)
    r = dict(row)
    if op == "CONV_2D":
        c, kh, kw, oc = int(row["in_channels"]), int(row["kernel_h"]), int(row["kernel_w"]), int(row["out_channels"])
        bias = _has_bias(row, kh * kw * c * oc)
        r["out_channels"] = new_out
        r["output_shape"] = out[:-1] + [new_out]
        r["macs"] = _prod(out[1:-1]) * new_out * kh * kw * c
        r["params"] = kh * kw * c * new_out + (new_out if bias else 0)
    elif op == "FULLY_CONNECTED":
        n, u = int(row["input_length"]), int(row["out_channels"])
        bias = _has_bias(row, n * u)
        batch = int(row["macs"]) // (n * u) if n * u else 1
        r["out_channels"] = new_out
        r["output_shape"] = out[:-1] + [new_out]
        r["macs"] = batch * n * new_out
        r["params"] = n * new_out + (new_out if bias else 0)
    else:
        return None
    r["weight_bytes"] = r["params"]  # int8 weights; int32 biases counted as one byte each is close enough here
    return r


def _consume(row: dict, new_in: list[int]) -> tuple[dict, list[int] | None] | None:
    """``row`` fed by an input of shape ``new_in``: (new row, new output shape or None when it absorbs the
    change), or None when the change cannot pass this layer."""
    op = row["op"]
    ins = F.input_shapes(row)
    if len(ins) != 1:
        return None
    out = F.output_shape(row)
    c = int(new_in[-1])
    r = dict(row)
    r["input_shapes"] = [list(new_in)]
    if op == "CONV_2D":
        kh, kw, oc, old_c = int(row["kernel_h"]), int(row["kernel_w"]), int(row["out_channels"]), int(row["in_channels"])
        bias = _has_bias(row, kh * kw * old_c * oc)
        r["in_channels"], r["alignment"] = c, F.alignment_class(c)
        r["macs"] = _prod(out[1:-1]) * oc * kh * kw * c
        r["params"] = kh * kw * c * oc + (oc if bias else 0)
        return r, None
    if op == "FULLY_CONNECTED":
        n_old, u = int(row["input_length"]), int(row["out_channels"])
        n = _prod(new_in[1:]) if len(new_in) > 1 else c
        bias = _has_bias(row, n_old * u)
        batch = int(row["macs"]) // (n_old * u) if n_old * u else 1
        r["input_length"], r["alignment"] = n, F.alignment_class(n)
        r["macs"] = batch * n * u
        r["params"] = n * u + (u if bias else 0)
        return r, None
    if op == "DEPTHWISE_CONV_2D":
        kh, kw, dm = int(row["kernel_h"]), int(row["kernel_w"]), int(row["depth_multiplier"] or 1)
        oc = c * dm
        bias = _has_bias(row, kh * kw * int(row["out_channels"]))
        r.update(in_channels=c, out_channels=oc, alignment=F.alignment_class(c), output_shape=out[:-1] + [oc],
                 macs=_prod(out[1:-1]) * oc * kh * kw, params=kh * kw * oc + (oc if bias else 0))
        return r, r["output_shape"]
    if op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        kh, kw = int(row["kernel_h"]), int(row["kernel_w"])
        r.update(in_channels=c, out_channels=c, alignment=F.alignment_class(c), output_shape=out[:-1] + [c],
                 macs=_prod(out[1:-1]) * c * kh * kw)
        return r, r["output_shape"]
    if op == "MEAN":
        r.update(output_shape=out[:-1] + [c], macs=_prod(new_in))
        return r, r["output_shape"]
    if op in ("RESHAPE", "SQUEEZE"):
        old_in = ins[0]
        if len(out) == 2 and _prod(out) == _prod(old_in):  # flatten
            new_out = [out[0], _prod(new_in) // out[0]]
        elif out and old_in and out[-1] == old_in[-1]:
            new_out = out[:-1] + [c]
        else:
            return None
        r["output_shape"] = new_out
        return r, new_out
    if op in PASS_THROUGH or op in ELEMENTWISE_MAC_OPS:
        if op in ("ADD", "SUB", "MUL"):
            return None
        new_out = out[:-1] + [c]
        r["output_shape"] = new_out
        r["macs"] = _prod(new_out) if op in ELEMENTWISE_MAC_OPS else 0
        return r, new_out
    return None


def _change_chain(rows: list[dict], i: int, new_out: int) -> list[tuple[int, dict]] | None:
    """The rows that change when layer ``i`` gets ``new_out`` output channels, or None if it cannot be done."""
    first = _producer(rows[i], new_out)
    if first is None:
        return None
    changed = [(i, first)]
    shape = F.output_shape(first)
    for j in range(i + 1, len(rows)):
        ins = F.input_shapes(rows[j])
        if not ins or ins[0] != F.output_shape(rows[j - 1]):
            return None  # not a chain (a branch or a layer fed by something else)
        step = _consume(rows[j], shape)
        if step is None:
            return None
        r, shape = step
        changed.append((j, r))
        if shape is None:
            return changed
    return None  # reached the model's output: its size is the task's, not ours to change


def _kernel_change(row: dict, k: int) -> dict | None:
    if row["op"] not in ("CONV_2D", "DEPTHWISE_CONV_2D") or str(row.get("padding", "")).upper() != "SAME":
        return None
    spec = F.LayerSpec.from_row(row).with_(kernel_h=k, kernel_w=k)
    new = spec.row()
    if new["output_shape"] != F.output_shape(row):
        return None
    out = dict(row)
    out.update({key: new[key] for key in ("kernel_h", "kernel_w", "macs", "params", "weight_bytes")})
    return out


def _gain_sd(model, ctx, before: list, after: list) -> float:
    """Standard deviation (s) of (before - after): per key signed sums (correlated), keys independent."""
    net: dict[str, float] = defaultdict(float)
    for p in before:
        net[p.key] += p.uncertainty_s
    for p in after:
        net[p.key] -= p.uncertainty_s
    # identical keys cancel only to the extent their terms are alike; keep a floor of the larger side's floor
    floor = model.uncertainty_floor * max(sum(p.latency_s for p in before), sum(p.latency_s for p in after))
    return max(math.sqrt(sum(v * v for v in net.values())), floor)


def _capacity_ok(keep: str, macs0, macs1, params0, params1) -> bool:
    if keep == "macs":
        return macs1 >= macs0
    if keep == "params":
        return params1 >= params0
    raise ValueError("keep must be 'macs' or 'params'")


def find_alternatives(model, model_or_layer, *, target, max_step: int, keep: str, threshold, settings: dict) -> list:
    if isinstance(model_or_layer, (F.LayerSpec, Mapping)):
        return _layer_alternatives(model, model_or_layer, target, max_step, keep, threshold, settings)
    analysis = model._as_analysis(model_or_layer)
    ctx = model._context(target or analysis.target, settings)
    rows = [F.layer_row(layer) for layer in analysis.layers]
    base = [model._predict_row(ctx, r) for r in rows]
    total = model._combine(analysis.name, ctx, base).latency_s
    found = []
    for i, row in enumerate(rows):
        candidates = []
        if row["op"] in ("CONV_2D", "FULLY_CONNECTED"):
            old = int(row["out_channels"])
            name = "filters" if row["op"] == "CONV_2D" else "units"
            for step in range(-max_step, max_step + 1):
                if step and old + step >= 1:
                    chain = _change_chain(rows, i, old + step)
                    if chain:
                        candidates.append((name, old, old + step, chain))
        if row["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            for k in KERNEL_SIZES:
                if k != int(row["kernel_h"]) or k != int(row["kernel_w"]):
                    new = _kernel_change(row, k)
                    if new is not None:
                        candidates.append(("kernel", int(row["kernel_h"]), k, [(i, new)]))
        for parameter, old, new, chain in candidates:
            idx = [j for j, _ in chain]
            before = [base[j] for j in idx]
            try:
                after = [model._predict_row(ctx, r) for _, r in chain]
            except ValueError:  # a key this context cannot predict
                continue
            macs0, macs1 = sum(rows[j]["macs"] for j in idx), sum(r["macs"] for _, r in chain)
            params0, params1 = sum(rows[j]["params"] for j in idx), sum(r["params"] for _, r in chain)
            if not _capacity_ok(keep, macs0, macs1, params0, params1):
                continue
            t0, t1 = sum(p.latency_s for p in before), sum(p.latency_s for p in after)
            if t1 >= t0:
                continue
            gain = (t0 - t1) / total
            if threshold is not None and gain < threshold:
                continue
            sd = _gain_sd(model, ctx, before, after)
            found.append(Alternative(
                layer_index=analysis.layers[i].index, layer_name=analysis.layers[i].name, parameter=parameter,
                old=old, new=new, affected=tuple(analysis.layers[j].index for j in idx), latency_before_s=t0,
                latency_after_s=t1, macs_before=macs0, macs_after=macs1, params_before=params0, params_after=params1,
                gain_s=t0 - t1, gain=gain, gain_uncertainty=sd / total, layer_gain=(t0 - t1) / t0,
                sources=tuple(sorted({p.source for p in before + after}))))
    return sorted(found, key=lambda a: -a.gain)


def _layer_alternatives(model, layer, target, max_step, keep, threshold, settings) -> list:
    spec = layer if isinstance(layer, F.LayerSpec) else F.LayerSpec.from_row(layer)
    given = {} if isinstance(layer, F.LayerSpec) else {k: layer.get(k) for k in F.CONTEXT_COLUMNS
                                                         if layer.get(k) not in (None, "", 0)}
    ctx = model._context(given.pop("target", target), {**settings, **given})
    row0 = spec.row()
    p0 = model._predict_row(ctx, row0)
    variants: list[tuple[str, int, int, F.LayerSpec]] = []
    dense = spec.op == "FULLY_CONNECTED"
    for step in range(-max_step, max_step + 1):
        if not step:
            continue
        if dense:
            variants.append(("input_length", spec.input_length, spec.input_length + step,
                             spec.with_(input_length=spec.input_length + step)))
        else:
            variants.append(("in_channels", spec.in_channels, spec.in_channels + step,
                             spec.with_(in_channels=spec.in_channels + step)))
        if spec.op in ("CONV_2D", "FULLY_CONNECTED"):
            variants.append(("filters" if not dense else "units", spec.out_channels, spec.out_channels + step,
                             spec.with_(out_channels=spec.out_channels + step)))
    if not dense:
        for k in KERNEL_SIZES:
            if k != spec.kernel_h:
                variants.append(("kernel", spec.kernel_h, k, spec.with_(kernel_h=k, kernel_w=k)))
        for s in (1, 2):
            if s != spec.stride_h:
                variants.append(("stride", spec.stride_h, s, spec.with_(stride_h=s, stride_w=s)))
    found = []
    for parameter, old, new, alt in variants:
        if not alt.valid():
            continue
        row1 = alt.row()
        if not _capacity_ok(keep, row0["macs"], row1["macs"], row0["params"], row1["params"]):
            continue
        try:
            p1 = model._predict_row(ctx, row1)
        except ValueError:
            continue
        if p1.latency_s >= p0.latency_s:
            continue
        gain = (p0.latency_s - p1.latency_s) / p0.latency_s
        if threshold is not None and gain < threshold:
            continue
        sd = _gain_sd(model, ctx, [p0], [p1])
        found.append(Alternative(
            layer_index=0, layer_name="", parameter=parameter, old=old, new=new, affected=(0,),
            latency_before_s=p0.latency_s, latency_after_s=p1.latency_s, macs_before=row0["macs"],
            macs_after=row1["macs"], params_before=row0["params"], params_after=row1["params"],
            gain_s=p0.latency_s - p1.latency_s, gain=gain, gain_uncertainty=sd / p0.latency_s, layer_gain=gain,
            sources=tuple(sorted({p0.source, p1.source}))))
    return sorted(found, key=lambda a: -a.gain)
