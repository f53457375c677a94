"""Plots of sweeps like the paper's figures 4 and 5, and its table 4 of gains.

- :func:`sweep_rows`: the measured layer of each network of a sweep (the static convolution behind the
  varied one, the dense layer, ...) with its swept parameter and δ (latency per MAC, ns).
- :func:`plot_sweep`: latency against MACs, and δ against the swept parameter, coloured by alignment class
  (odd / even / divisible by 4), reference vs SIMD by marker and line; PNG (matplotlib) and interactive
  HTML (Plotly).
- :func:`gains_table`: per target and layer type, δ of the reference and SIMD kernels and the gain
  G = δ_reference / δ_simd, overall and per alignment class (G_odd, G_even, G_%4).

All take layer rows as a pandas DataFrame (from :meth:`costmodel.store.MeasurementStore.layers`).
"""

from __future__ import annotations

from pathlib import Path

from costmodel import features as F

ALIGNMENT_COLOURS = {"odd": "#d62728", "even": "#ff7f0e", "%4": "#2ca02c", "": "#7f7f7f"}
VARIANT_STYLE = {"simd": ("o", "-"), "reference": ("x", "--")}

#: per sweep: the op of the layer the sweep is about, and its swept parameter
SWEEP_LAYERS = {
    "conv": ("CONV_2D", "in_channels"),
    "dense": ("FULLY_CONNECTED", "input_length"),
    "dwconv": ("DEPTHWISE_CONV_2D", "in_channels"),
    "pool": (("MAX_POOL_2D", "AVERAGE_POOL_2D"), "in_channels"),
    "add": ("ADD", "channels"),
}
LAYER_TYPES = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "dwconv", "FULLY_CONNECTED": "dense",
               "MAX_POOL_2D": "pool", "AVERAGE_POOL_2D": "pool", "ADD": "add"}


def sweep_rows(layers, sweep: str):
    """The rows of the layer a sweep is about, with ``parameter`` (the swept value), ``delta_ns`` and
    ``alignment`` columns, and ``group`` (the fixed parameters)."""
    import pandas as pd

    if sweep not in SWEEP_LAYERS:
        raise ValueError(f"no plot for sweep {sweep!r}; sweeps: {', '.join(SWEEP_LAYERS)}")
    ops, parameter = SWEEP_LAYERS[sweep]
    ops = (ops,) if isinstance(ops, str) else ops
    df = layers[(layers["sweep"] == sweep) & (layers["op"].isin(ops)) & (layers["macs"] > 0)].copy()
    if sweep == "conv":  # the static convolution: the second layer of a two-layer network
        df = df[df["layer_index"] == df.groupby("measurement_id")["layer_index"].transform("max")]
        df = df[df["layer_index"] > 0]
    if df.empty:
        return df.assign(parameter=pd.Series(dtype=int), delta_ns=pd.Series(dtype=float), group="")
    if parameter == "channels":
        df["parameter"] = [F.output_shape(r)[-1] for r in df.to_dict("records")]
        df["alignment"] = [F.alignment_class(int(c)) for c in df["parameter"]]
    else:
        df["parameter"] = df[parameter].astype(int)
    df["delta_ns"] = df["latency_s"] / df["macs"] * 1e9

    def group(r) -> str:
        out = F.output_shape(r)
        bits = [f"{r['op']}"]
        if r.get("kernel_h"):
            bits.append(f"k{r['kernel_h']} s{r['stride_h']}")
        if sweep == "dense":
            bits.append(f"units {r['out_channels']}")
        elif len(out) >= 4:
            bits.append(f"out {out[1]}x{out[2]}x{out[3]}" if sweep == "conv" else f"{out[1]}x{out[2]}")
        return " ".join(bits)

    df["group"] = [group(r) for r in df.to_dict("records")]
    return df.sort_values(["group", "runtime_variant", "parameter"])


def plot_sweep(layers, sweep: str, target: str, out_dir: str | Path, *, max_groups: int = 6) -> list[Path]:
    """Write ``<sweep>-<target>.png`` and ``.html`` (latency vs MACs, δ vs parameter); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    df = sweep_rows(layers[layers["target"] == target], sweep)
    if df.empty:
        return []
    groups = list(df.groupby("group").size().sort_values(ascending=False).index[:max_groups])
    df = df[df["group"].isin(groups)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{sweep}-{target}"
    parameter = SWEEP_LAYERS[sweep][1].replace("_", " ")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for (variant, align), part in df.groupby(["runtime_variant", "alignment"]):
        marker, _ = VARIANT_STYLE.get(variant, ("s", ":"))
        ax1.scatter(part["macs"], part["latency_s"] * 1e3, c=ALIGNMENT_COLOURS.get(align, "#7f7f7f"), marker=marker,
                    s=22, label=f"{variant}, {align}")
    for (variant, grp), part in df.groupby(["runtime_variant", "group"]):
        _, line = VARIANT_STYLE.get(variant, ("s", ":"))
        ax2.plot(part["parameter"], part["delta_ns"], line, color="#bbbbbb", linewidth=0.8, zorder=1)
        for align, pts in part.groupby("alignment"):
            marker, _ = VARIANT_STYLE.get(variant, ("s", ":"))
            ax2.scatter(pts["parameter"], pts["delta_ns"], c=ALIGNMENT_COLOURS.get(align, "#7f7f7f"), marker=marker,
                        s=22, zorder=2)
    ax1.set_xlabel("MACs")
    ax1.set_ylabel("latency (ms)")
    ax1.set_title(f"{sweep} sweep on {target}: latency vs MACs")
    ax1.legend(fontsize=8)
    ax2.set_xlabel(parameter)
    ax2.set_ylabel("δ = latency / MAC (ns)")
    ax2.set_title("δ vs " + parameter + " (o simd, x reference)")
    fig.tight_layout()
    png = out_dir / f"{stem}.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)

    pfig = make_subplots(rows=1, cols=2, subplot_titles=("latency vs MACs", f"δ vs {parameter}"))
    for (variant, align, grp), part in df.groupby(["runtime_variant", "alignment", "group"]):
        marker = "circle" if variant == "simd" else "x"
        name = f"{variant} {align} {grp}"
        text = [f"{m}: {p}={v}" for m, p, v in zip(part["model_name"], [parameter] * len(part), part["parameter"])]
        pfig.add_trace(go.Scatter(x=part["macs"], y=part["latency_s"] * 1e3, mode="markers", name=name, text=text,
                                  marker={"color": ALIGNMENT_COLOURS.get(align), "symbol": marker},
                                  legendgroup=name), row=1, col=1)
        pfig.add_trace(go.Scatter(x=part["parameter"], y=part["delta_ns"], mode="markers", name=name, text=text,
                                  marker={"color": ALIGNMENT_COLOURS.get(align), "symbol": marker},
                                  legendgroup=name, showlegend=False), row=1, col=2)
    pfig.update_xaxes(title_text="MACs", row=1, col=1)
    pfig.update_yaxes(title_text="latency (ms)", row=1, col=1)
    pfig.update_xaxes(title_text=parameter, row=1, col=2)
    pfig.update_yaxes(title_text="δ (ns per MAC)", row=1, col=2)
    pfig.update_layout(title=f"{sweep} sweep on {target}", height=520)
    html = out_dir / f"{stem}.html"
    pfig.write_html(html, include_plotlyjs=True, full_html=True)  # self-contained: no network needed
    return [png, html]


def gains_table(layers):
    """The paper's table 4 from sweep rows measured with both runtime variants: per target and layer type,
    median δ (ns/MAC) of each variant, and the median gain δ_reference / δ_simd of the same layer, overall and
    per alignment class of its decisive input dimension."""
    import numpy as np
    import pandas as pd

    df = layers[(layers["macs"] > 0) & layers["op"].isin(list(LAYER_TYPES))].copy()
    if df.empty:
        return pd.DataFrame()
    df["delta_ns"] = df["latency_s"] / df["macs"] * 1e9
    df["type"] = df["op"].map(LAYER_TYPES)
    keys = ["target", "model_name", "layer_index"]
    ref = df[df["runtime_variant"] == "reference"].set_index(keys)
    simd = df[df["runtime_variant"] == "simd"].set_index(keys)
    joined = ref[["delta_ns", "type", "alignment"]].join(simd[["delta_ns"]].rename(columns={"delta_ns": "delta_ns_simd"}),
                                                         how="inner")
    records = []
    for (target, kind), part in joined.reset_index().groupby(["target", "type"]):
        gain = part["delta_ns"] / part["delta_ns_simd"]
        rec = {"target": target, "layer": kind, "n": len(part), "delta_reference_ns": float(np.median(part["delta_ns"])),
               "delta_simd_ns": float(np.median(part["delta_ns_simd"])), "G": float(np.median(gain))}
        for align, name in (("odd", "G_odd"), ("even", "G_even"), ("%4", "G_%4")):
            sel = part["alignment"] == align
            rec[name] = float(np.median(gain[sel])) if sel.any() else None
        records.append(rec)
    return pd.DataFrame(records)


def alignment_deltas(layers, *, by=("target", "runtime_variant", "op")):
    """Median δ (ns/MAC) by alignment class of the decisive input dimension, per target, variant and op: what
    the table's alignment effects are in the measurements."""
    import pandas as pd

    df = layers[(layers["macs"] > 0) & (layers["alignment"] != "")].copy()
    if df.empty:
        return pd.DataFrame()
    df["delta_ns"] = df["latency_s"] / df["macs"] * 1e9
    pivot = df.pivot_table(index=list(by), columns="alignment", values="delta_ns", aggfunc="median")
    return pivot.reset_index()
