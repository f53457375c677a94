"""The study's report: one self-contained HTML file (Plotly's JavaScript inlined once; no network needed to open
it), and every number as CSV and JSON next to it.

``study.html``  the findings (the paper's number next to this study's, and the verdict), then memory (table 1),
                latency (figure 2), speed-ups (table 2), latency ratios against MAC ratios (table 3), energy
                against latency (section 4.2), the Pareto front across boards (figure 3), per-layer latency and
                δ of every configuration, the sweeps (figures 4 and 5, table 4), on-board accuracy (stage F),
                and every run with its provenance
``study.json``  all of it as data
``*.csv``       runs, layers, memory, fit, speedups, ratios, energy, pareto, sweeps, findings, accuracy
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from costmodel.study.configs import CONFIGS, OPT_LEVELS, config_id

BOARD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
ALIGNMENT_COLOURS = {"odd": "#d62728", "even": "#ff7f0e", "%4": "#2ca02c", "": "#7f7f7f"}
VERDICT_COLOURS = {"reproduced": "#d9f2d9", "same direction": "#fff3cd", "not reproduced": "#f8d7da",
                   "not tested": "#e9ecef"}
#: the plots every report has (``plot-<key>``); the per-model layer plots and the sweeps' plots come on top
PLOTS = ("findings", "memory", "latency", "speedup", "ratio", "energy", "pareto")

CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1500px}h1{margin-bottom:4px}
h2{margin-top:36px;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}.plot{min-height:320px}small,.note{color:#555}
.note{max-width:1000px}details{margin:6px 0}summary{cursor:pointer;font-weight:600}.over{color:#a00}"""


def _fmt(v: Any, digits: int = 3, scale: float = 1.0) -> str:
    if hasattr(v, "item") and not isinstance(v, str):  # numpy scalars (rows of the store)
        v = v.item()
    if isinstance(v, bool):
        return str(v)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, (int, float)):
        x = v * scale
        if isinstance(v, int) and scale == 1.0:
            return f"{x:,}"
        return f"{x:,.{digits}f}" if abs(x) < 1e6 else f"{x:,.0f}"
    return str(v)


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None, cls: str = "") -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            if isinstance(c, tuple):  # (html, attributes)
                cells.append(f"<td {c[1]}>{c[0]}</td>")
            else:
                cells.append(f"<td class='n'>{html.escape(str(c))}</td>" if i in numeric else
                             f"<td>{html.escape(str(c))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='{cls}'><tr>{head}</tr>{''.join(body)}</table>"


def _board_colour(data: dict, board: str) -> str:
    names = [b["name"] for b in data["boards"]]
    return BOARD_COLOURS[names.index(board) % len(BOARD_COLOURS)] if board in names else "#777"


def _short(board: str) -> str:
    return board.replace("NUCLEO-", "").replace("DISCO-", "")


def _title(data: dict, model: str) -> str:
    return next((m.get("title") or m["name"] for m in data["models"] if m["name"] == model), model)


# --- figures -------------------------------------------------------------------------------------------------------


def fig_findings(data: dict):
    import plotly.graph_objects as go

    rows = [f for f in data["findings"] if f.get("numbers") and f["numbers"].get("here")]
    fig = go.Figure()
    labels = []
    for f in rows:
        n = f["numbers"]
        name = f"{f['key']} ({n['unit']})"
        labels.append(name)
        fig.add_trace(go.Scatter(x=n["paper"], y=[name, name], mode="lines+markers", name="paper",
                                 line={"color": "#555", "width": 10}, marker={"size": 10, "color": "#555"},
                                 legendgroup="paper", showlegend=len(labels) == 1,
                                 hovertext=f"paper: {f['paper']}"))
        fig.add_trace(go.Scatter(x=n["here"], y=[name, name], mode="lines+markers", name="this study",
                                 line={"color": "#1f77b4", "width": 4}, marker={"size": 9, "symbol": "diamond"},
                                 legendgroup="here", showlegend=len(labels) == 1,
                                 hovertext=f"here: {f['here']} ({f['verdict']})"))
        if n.get("paper_O") and n.get("here_O"):
            name_o = f"{f['key']} O ({n['unit']})"
            labels.append(name_o)
            fig.add_trace(go.Scatter(x=n["paper_O"], y=[name_o, name_o], mode="lines+markers", showlegend=False,
                                     line={"color": "#555", "width": 10}, marker={"size": 10, "color": "#555"},
                                     legendgroup="paper"))
            fig.add_trace(go.Scatter(x=n["here_O"], y=[name_o, name_o], mode="lines+markers", showlegend=False,
                                     line={"color": "#1f77b4", "width": 4}, marker={"size": 9, "symbol": "diamond"},
                                     legendgroup="here"))
    fig.update_xaxes(type="log", title_text="value (log scale): ratio x or percent")
    fig.update_layout(title="The paper's numbers (grey) next to this study's (blue)",
                      height=max(320, 150 + 40 * len(labels)), margin={"l": 220})
    return fig


def fig_memory(data: dict):
    import plotly.graph_objects as go

    fig = go.Figure()
    for q, colour in (("float32", "#1f77b4"), ("dynamic", "#ff7f0e"), ("int8", "#2ca02c")):
        rows = [r for r in data["memory"] if r["quantization"] == q]
        fig.add_trace(go.Bar(x=[_title(data, r["model"]) for r in rows], y=[r["tflite_bytes"] / 1024 for r in rows],
                             name=f"{q} .tflite", marker_color=colour,
                             text=[f"{r['of_float_pct']:.0f} %" if r["of_float_pct"] else "" for r in rows]))
        fig.add_trace(go.Bar(x=[_title(data, r["model"]) for r in rows], y=[r["arena_bytes"] / 1024 for r in rows],
                             name=f"{q} arena (SRAM)", marker_color=colour, marker_pattern_shape="/", opacity=0.6))
    fig.update_layout(barmode="group", title="Model size per quantization (table 1) and the activation arena",
                      yaxis_title="KiB", height=420)
    return fig


def _config_order(data: dict) -> list[str]:
    seen = {r["config_id"] for r in data["runs"]}
    return [config_id(c.key, o) for c in CONFIGS for o in OPT_LEVELS if config_id(c.key, o) in seen]


def fig_latency(data: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    models = [m["name"] for m in data["models"]]
    order = _config_order(data)
    fig = make_subplots(rows=len(models), cols=1, subplot_titles=[_title(data, m) for m in models],
                        vertical_spacing=0.12 / max(1, len(models)) + 0.05)
    for i, m in enumerate(models, 1):
        for b in data["boards"]:
            rows = {r["config_id"]: r for r in data["runs"] if r["model"] == m and r["board"] == b["name"]}
            xs = [c for c in order if c in rows]
            ys = [rows[c].get("latency_s", 0) * 1e3 if rows[c].get("latency_s") else None for c in xs]
            text = [("" if rows[c].get("latency_s") else rows[c]["status"]) for c in xs]
            fig.add_trace(go.Bar(x=xs, y=ys, name=b["name"], marker_color=_board_colour(data, b["name"]),
                                 legendgroup=b["name"], showlegend=i == 1, text=text, textposition="outside",
                                 hovertext=[rows[c]["provenance"] for c in xs]), row=i, col=1)
        fig.update_yaxes(type="log", title_text="latency (ms)", row=i, col=1)
    fig.update_layout(barmode="group", title="Latency per configuration and board (figure 2); log scale",
                      height=380 * len(models) + 80)
    return fig


def fig_speedup(data: dict):
    import plotly.graph_objects as go

    fig = go.Figure()
    paper = {"lenet5": (13, 16), "resnet20": (29, 35)}
    for b in data["boards"]:
        rows = [r for r in data["speedups"] if r["board"] == b["name"]]
        fig.add_trace(go.Bar(x=[_title(data, r["model"]) for r in rows], y=[r["speedup"] for r in rows],
                             name=b["name"], marker_color=_board_colour(data, b["name"]),
                             hovertext=[f"{r['slowest']} -> {r['fastest']}" for r in rows],
                             text=[f"{r['speedup']:.1f}x" for r in rows], textposition="outside"))
    for name, (lo, hi) in paper.items():
        if any(r["model"] == name for r in data["speedups"]):
            fig.add_trace(go.Scatter(x=[_title(data, name)] * 2, y=[lo, hi], mode="lines+markers", name=f"paper {lo}–{hi}x",
                                     line={"color": "#333", "width": 12}, opacity=0.35))
    fig.update_layout(barmode="group", title="Slowest to fastest configuration per model and board (table 2)",
                      yaxis_title="speed-up (x)", height=420)
    return fig


def fig_ratio(data: dict):
    import plotly.graph_objects as go

    fig = go.Figure()
    rows = data["ratios"]
    for label, colour, paper in (("U", "#d62728", (123, 126)), ("O", "#2ca02c", (55, 61))):
        fig.add_trace(go.Bar(x=[r["board"] for r in rows], y=[r.get(f"ratio_{label}") for r in rows],
                             name=f"latency ratio {label} ({'float, no FPU' if label == 'U' else 'int8 + SIMD'})",
                             marker_color=colour, text=[f"{r[f'ratio_{label}']:.0f}x" if r.get(f"ratio_{label}") else
                                                        "n/a" for r in rows], textposition="outside"))
        fig.add_trace(go.Scatter(x=[r["board"] for r in rows], y=[sum(paper) / 2] * len(rows), mode="lines",
                                 name=f"paper {label} {paper[0]}–{paper[1]}x", line={"color": colour, "dash": "dot"}))
    if rows:
        fig.add_trace(go.Scatter(x=[r["board"] for r in rows], y=[r["mac_ratio"] for r in rows], mode="lines+markers",
                                 name=f"MAC ratio {rows[0]['mac_ratio']:.0f}x", line={"color": "#000"}))
        fig.update_layout(title=f"Latency ratio {rows[0]['large']} / {rows[0]['small']} next to the MAC ratio (table 3)")
    fig.update_layout(barmode="group", yaxis_title="ratio (x)", height=420)
    return fig


def fig_energy(data: dict):
    import plotly.graph_objects as go

    fig = go.Figure()
    e = {b["board"]: b for b in data["energy"]["per_board"]}
    for b in data["boards"]:
        rows = [r for r in data["runs"] if r["board"] == b["name"] and r.get("latency_s")]
        r_ = e.get(b["name"], {}).get("r_models")
        fig.add_trace(go.Scatter(x=[r["latency_s"] * 1e3 for r in rows], y=[r["energy_j"] * 1e3 for r in rows],
                                 mode="markers", name=f"{b['name']} (r = {r_:.4f})" if r_ is not None else b["name"],
                                 marker={"color": _board_colour(data, b["name"]), "size": 8},
                                 text=[f"{r['model']} {r['config_id']}: {r['energy_provenance']}" for r in rows]))
    src = "modelled (power x latency): r = 1 by construction" if data["energy"]["modelled"] else \
        "sources: " + ", ".join(data["energy"]["sources"])
    fig.update_xaxes(type="log", title_text="latency (ms)")
    fig.update_yaxes(type="log", title_text="energy per inference (mJ)")
    fig.update_layout(title=f"Energy against latency per board (section 4.2); energy {src}", height=460)
    return fig


def fig_pareto(data: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = data["pareto"]
    fig = make_subplots(rows=1, cols=max(1, len(rows)), subplot_titles=[_title(data, r["model"]) for r in rows])
    for i, r in enumerate(rows, 1):
        for b in data["boards"]:
            pts = [p for p in r["points"] if p["board"] == b["name"]]
            fig.add_trace(go.Scatter(x=[p["latency_s"] * 1e3 for p in pts], y=[p["energy_j"] * 1e3 for p in pts],
                                     mode="markers", name=b["name"] + ("" if r["efficient"].get(b["name"]) else
                                                                       " (not Pareto-efficient)"),
                                     legendgroup=f"{i}{b['name']}", text=[p["config_id"] for p in pts],
                                     marker={"color": _board_colour(data, b["name"]), "size": 9,
                                             "symbol": ["star" if p["front"] else "circle" for p in pts]}),
                          row=1, col=i)
        front = sorted((p for p in r["points"] if p["front"]), key=lambda p: p["latency_s"])
        fig.add_trace(go.Scatter(x=[p["latency_s"] * 1e3 for p in front], y=[p["energy_j"] * 1e3 for p in front],
                                 mode="lines", name="Pareto front", line={"color": "#000", "dash": "dash"},
                                 showlegend=i == 1), row=1, col=i)
        fig.update_xaxes(type="log", title_text="latency (ms)", row=1, col=i)
        fig.update_yaxes(type="log", title_text="energy (mJ)", row=1, col=i)
    fig.update_layout(title="Latency/energy Pareto front across boards and configurations (figure 3); stars are on "
                            "the front", height=480)
    return fig


def fig_layers(data: dict, model: str):
    """Per-layer δ (ns per MAC) of every configuration, one heat map per board."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [r for r in data["layers"] if r["model"] == model]
    boards = [b["name"] for b in data["boards"] if any(r["board"] == b["name"] for r in rows)]
    order = [c for c in _config_order(data) if any(r["config_id"] == c for r in rows)]
    fig = make_subplots(rows=1, cols=max(1, len(boards)), subplot_titles=boards, shared_yaxes=True,
                        horizontal_spacing=0.03)
    for i, b in enumerate(boards, 1):
        mine = [r for r in rows if r["board"] == b]
        layer_keys = sorted({(r["index"], r["op"]) for r in mine})
        labels = [f"{idx} {op}" for idx, op in layer_keys]
        z, text = [], []
        for idx, op in layer_keys:
            zr, tr = [], []
            for c in order:
                hit = next((r for r in mine if r["index"] == idx and r["config_id"] == c), None)
                d = hit["delta_ns_per_mac"] if hit else None
                zr.append(math.log10(d) if d else None)
                tr.append(f"{op} {c}: {hit['latency_s'] * 1e3:.3f} ms, δ {d:.1f} ns/MAC" if hit and d else
                          f"{op} {c}: {hit['latency_s'] * 1e3:.3f} ms" if hit else "")
            z.append(zr)
            text.append(tr)
        fig.add_trace(go.Heatmap(z=z, x=order, y=labels, text=text, hoverinfo="text", coloraxis="coloraxis"),
                      row=1, col=i)
    fig.update_layout(coloraxis={"colorscale": "Viridis", "colorbar": {"title": "log10 δ (ns/MAC)"}},
                      title=f"{_title(data, model)}: per-layer δ (latency per MAC) of every configuration",
                      height=max(380, 22 * len({(r['index']) for r in rows}) + 200))
    fig.update_yaxes(autorange="reversed")
    return fig


def fig_sweep(data: dict, name: str):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = data["sweeps"]["rows"].get(name, [])
    boards = [b["name"] for b in data["boards"] if any(r["target"] == b["name"] for r in rows)]
    param = {"dense": "input length", "conv": "input channels", "dwconv": "channels"}[name]
    fig = make_subplots(rows=2, cols=max(1, len(boards)), subplot_titles=[*boards, *[""] * len(boards)],
                        vertical_spacing=0.14)
    shown = set()
    for i, b in enumerate(boards, 1):
        for variant, symbol in (("simd", "circle"), ("reference", "x")):
            for align, colour in ALIGNMENT_COLOURS.items():
                pts = [r for r in rows if r["target"] == b and r["runtime_variant"] == variant
                       and r["alignment"] == align]
                if not pts:
                    continue
                key = f"{variant} {align}"
                fig.add_trace(go.Scatter(x=[p["macs"] for p in pts], y=[p["latency_s"] * 1e3 for p in pts],
                                         mode="markers", name=key, legendgroup=key, showlegend=key not in shown,
                                         marker={"color": colour, "symbol": symbol, "size": 7},
                                         text=[f"{p['model_name']} ({param} {p['parameter']})" for p in pts]),
                              row=1, col=i)
                shown.add(key)
                fig.add_trace(go.Scatter(x=[p["parameter"] for p in pts], y=[p["delta_ns"] for p in pts],
                                         mode="markers", name=key, legendgroup=key, showlegend=False,
                                         marker={"color": colour, "symbol": symbol, "size": 7},
                                         text=[p["group"] for p in pts]), row=2, col=i)
        fig.update_xaxes(title_text="MACs", row=1, col=i)
        fig.update_xaxes(title_text=param, row=2, col=i)
    fig.update_yaxes(title_text="latency (ms)", row=1, col=1)
    fig.update_yaxes(title_text="δ (ns per MAC)", row=2, col=1)
    title = {"dense": "Dense sweep (figure 4)", "conv": "Convolution sweep: static layer behind a varied one (figure 5)",
             "dwconv": "Depthwise convolution sweep"}[name]
    fig.update_layout(title=f"{title}: o SIMD, x reference kernels; colour = alignment of the {param}", height=720)
    return fig


# --- tables --------------------------------------------------------------------------------------------------------


def _findings_table(data: dict) -> str:
    rows = []
    for f in data["findings"]:
        colour = VERDICT_COLOURS.get(f["verdict"], "#fff")
        rows.append([f["section"], f["claim"], f["paper"], f["here"],
                     (f"<b>{html.escape(f['verdict'])}</b>", f"style='background:{colour}'"),
                     (f"<small>{html.escape(f['detail'])}</small>", "")])
    return _table(["paper", "finding", "paper's number", "this study", "verdict", "how it was computed"], rows,
                  cls="findings")


def _setup(data: dict) -> str:
    meta = data["meta"]
    boards = [[b["name"], b["mcu"], b["core"], f"{b['clock_hz'] / 1e6:.0f} MHz", f"{b['power_w'] * 1e3:.0f} mW",
               b["power_source"], f"{b['flash_bytes'] // 1024} KiB", f"{b['sram_bytes'] // 1024} KiB"]
              for b in data["boards"]]
    models = []
    for m in data["models"]:
        first = m["files"].get("int8") or next(iter(m["files"].values()))
        t = m.get("trained") or {}
        trained = (f"{t.get('epochs', 0)} epochs on {t.get('dataset', '?')} ({t.get('samples', 0)} samples), Keras "
                   f"float accuracy {100 * t['float_accuracy_keras']:.1f} %" if t.get("float_accuracy_keras") is not None
                   else "untrained" if m["origin"] == "built-in" else m.get("note", ""))
        models.append([m.get("title") or m["name"], m["origin"], "x".join(map(str, m.get("input_shape", []))),
                       _fmt(first["macs"]), _fmt(first["params"]), ", ".join(m["files"]), trained])
    configs = [[c.key, c.label, c.quantization, c.variant, c.float_abi, c.paper or "-"] for c in CONFIGS
               if c.key in meta.get("configs", [])]
    secs = meta.get("seconds", {})
    counts = meta.get("counts", {})
    facts = [["command", meta.get("command", "")], ["boards from", ", ".join(meta.get("agents", []))],
             ["measurement store", meta.get("store", "")],
             ["virtual board timing model", meta.get("timing_model", "")],
             ["dataset", f"{meta['dataset']['name']} ({meta['dataset']['train']} training, {meta['dataset']['test']} "
                         f"test samples; {meta['dataset']['fingerprint']})"],
             ["weights", "in flash, as deployed (activations in SRAM)"],
             ["repetitions", str(meta.get("repetitions", ""))],
             ["measurements", f"{counts.get('planned', 0)} planned: {counts.get('reused', 0)} reused from the store, "
                              f"{counts.get('measured', 0)} measured now, {counts.get('oversized', 0)} oversized, "
                              f"{counts.get('failed', 0)} failed"],
             ["time", ", ".join(f"{k} {v:.0f} s" for k, v in secs.items())],
             ["written", meta.get("written", "")]]
    return (_table(["", ""], facts) +
            "<h3>Boards</h3>" + _table(["board", "MCU", "core", "clock", "power", "power from", "flash", "SRAM"], boards)
            + "<h3>Models</h3>" + _table(["model", "origin", "input", "MACs", "parameters", "files", "training"], models,
                                         {3, 4})
            + "<h3>Configurations</h3>" + _table(["key", "what", "model", "kernels", "float ABI", "paper"], configs) +
            f"<p class='note'>Each configuration at {', '.join(meta.get('opt_levels', []))}.</p>")


def _memory_tables(data: dict) -> str:
    rows = []
    for r in data["memory"]:
        rows.append([_title(data, r["model"]), r["quantization"], _fmt(r["tflite_bytes"]), _fmt(r["plan_bytes"]),
                     _fmt(r["arena_bytes"]), _fmt(r["of_float_pct"], 1), _fmt(r["reduction_pct"], 1),
                     _fmt(r["host_accuracy"], 2, 100), ", ".join(r["oversized_on"]) or "-"])
    t1 = _table(["model", "quantization", ".tflite bytes", "plan bytes (flash)", "arena bytes (SRAM)", "% of float32",
                 "reduction %", "host accuracy % (stage C)", "oversized on"], rows, {2, 3, 4, 5, 6, 7})
    fit = {}
    for r in data["fit"]:
        fit.setdefault((r["model"], r["quantization"]), {})[r["board"]] = r
    boards = [b["name"] for b in data["boards"]]
    frows = []
    for (m, q), cells in fit.items():
        row = [_title(data, m), q]
        for b in boards:
            c = cells.get(b)
            if c is None:
                row.append("")
            elif c["verdict"] == "oversized":
                row.append((f"<span class='over' title='{html.escape(c['reason'])}'>oversized</span><br><small>"
                            f"{html.escape(c['reason'])}</small>", ""))
            else:
                row.append(c["verdict"])
        frows.append(row)
    return t1 + "<h3>Which models fit which board (the fit verdict, weights in flash)</h3>" + \
        _table(["model", "quantization", *boards], frows)


def _latency_table(data: dict) -> str:
    order = _config_order(data)
    boards = [b["name"] for b in data["boards"]]
    out = []
    for m in data["models"]:
        rows = []
        for c in order:
            row = [c]
            for b in boards:
                r = next((x for x in data["runs"] if x["model"] == m["name"] and x["board"] == b and x["config_id"] == c),
                         None)
                if r is None:
                    row.append("")
                elif r.get("latency_s"):
                    pred = (f"<br><small>predicted {r['predicted_latency_s'] * 1e3:.2f} ms ± "
                            f"{100 * (r.get('predicted_uncertainty') or 0):.0f} %</small>"
                            if r.get("predicted_latency_s") else "")
                    row.append((f"{r['latency_s'] * 1e3:,.2f} ms<br><small>{r['energy_j'] * 1e3:,.3f} mJ, "
                                f"{r['cycles']:,} cycles</small>{pred}",
                                f"class='n' title='{html.escape(r['provenance'] + '; energy ' + r['energy_provenance'])}'"))
                else:
                    row.append((f"<span class='over'>{html.escape(r['status'])}</span>",
                                f"title='{html.escape(r.get('reason', ''))}'"))
            rows.append(row)
        out.append(f"<h3>{html.escape(_title(data, m['name']))}</h3>" + _table(["configuration", *boards], rows))
    return "".join(out)


def _speedup_tables(data: dict) -> str:
    rows = [[_title(data, r["model"]), r["board"], r["slowest"], _fmt(r["slowest_ms"], 2), r["fastest"],
             _fmt(r["fastest_ms"], 2), _fmt(r["speedup"], 1),
             ", ".join(f"{o} {v:.1f}x" for o, v in r["simd_vs_soft"].items()),
             ", ".join(f"{o} {v:.1f}x" for o, v in r["fpu_speedup"].items()),
             ", ".join(f"{o} {v:.1f}x" for o, v in r["simd_speedup"].items()),
             ", ".join(f"{k} {v:.2f}x" for k, v in r["o3_speedup"].items())] for r in data["speedups"]]
    t2 = _table(["model", "board", "slowest", "ms", "fastest", "ms", "speed-up", "int8+SIMD vs float no FPU",
                 "FPU vs soft float", "SIMD vs reference (int8)", "-O3 vs -Os"], rows, {3, 5, 6})
    rrows = [[r["board"], _fmt(r.get("ratio_U"), 1), _fmt(r.get("ratio_O"), 1), _fmt(r["mac_ratio"], 1),
              _fmt(r["param_ratio"], 2), r.get("missing_U") or r.get("missing_O") or ""] for r in data["ratios"]]
    t3 = _table(["board", "latency ratio U (float, no FPU)", "latency ratio O (int8 + SIMD)", "MAC ratio",
                 "parameter ratio", "missing"], rrows, {1, 2, 3, 4}) if data["ratios"] else ""
    return "<h3>Table 2: slowest to fastest</h3>" + t2 + "<h3>Table 3: latency ratio of the two models</h3>" + t3


def _energy_table(data: dict) -> str:
    e = data["energy"]
    rows = [[b["board"], _fmt(b["power_w"], 0, 1e3) + " mW", b["n_models"], _fmt(b["r_models"], 5), b["n_layers"],
             _fmt(b["r_layers"], 5), ", ".join(b["energy_sources"])] for b in e["per_board"]]
    note = ("<p class='note'><b>Energy here is modelled</b>: every result's energy source is <code>power-model</code>, "
            "the catalogue's inference power (the paper's measured averages for its three boards) times the latency. "
            "So r = 1 per board by construction: it shows nothing about the paper's finding. Only a bench with an energy "
            "monitor (<code>energy_source = monitor</code>) can test it.</p>" if e["modelled"] else
            f"<p class='note'>Energy sources: {html.escape(', '.join(e['sources']))}.</p>")
    return note + _table(["board", "power", "runs", "r (runs)", "layers", "r (layers)", "energy source"], rows,
                         {2, 3, 4, 5}) + (f"<p class='note'>All boards pooled: r = {e['r_all']:.4f} over {e['n_all']} runs."
                                          "</p>" if e["r_all"] is not None else "")


def _pareto_table(data: dict) -> str:
    rows = []
    for r in data["pareto"]:
        eff = ", ".join(b for b, e in r["efficient"].items() if e)
        cfg = "; ".join(f"{c}: {', '.join(b for b, on in v.items() if on)}" for c, v in r["per_config"].items())
        rows.append([_title(data, r["model"]), eff, ", ".join(r["not_efficient"]) or "-",
                     ", ".join(r["dominated_in_every_config"]) or "-", (f"<small>{html.escape(cfg)}</small>", "")])
    return _table(["model", "Pareto-efficient boards", "not Pareto-efficient", "dominated in every configuration",
                   "on the front per configuration"], rows)


def _layer_tables(data: dict) -> str:
    parts = []
    order = _config_order(data)
    for m in data["models"]:
        for b in data["boards"]:
            rows = [r for r in data["layers"] if r["model"] == m["name"] and r["board"] == b["name"]]
            if not rows:
                continue
            configs = [c for c in order if any(r["config_id"] == c for r in rows)]
            keys = sorted({(r["index"], r["op"], r["macs"]) for r in rows})
            body = []
            for idx, op, macs in keys:
                row = [idx, op, _fmt(macs)]
                for c in configs:
                    hit = next((r for r in rows if r["index"] == idx and r["config_id"] == c), None)
                    row.append("" if hit is None else
                               f"{hit['latency_s'] * 1e3:.3f} / {hit['delta_ns_per_mac']:.1f}"
                               if hit["delta_ns_per_mac"] else f"{hit['latency_s'] * 1e3:.3f} / -")
                body.append(row)
            parts.append(f"<details><summary>{html.escape(_title(data, m['name']))} on {html.escape(b['name'])}: "
                         f"latency ms / δ ns per MAC per layer</summary>"
                         + _table(["#", "op", "MACs", *configs], body, set(range(2, 3 + len(configs)))) + "</details>")
    return "".join(parts)


def _sweep_tables(data: dict) -> str:
    s = data["sweeps"]
    parts = []
    if s.get("gains"):
        rows = [[g["target"], g["layer"], g["n"], _fmt(g["delta_reference_ns"], 1), _fmt(g["delta_simd_ns"], 1),
                 _fmt(g["G"], 2), _fmt(g.get("G_odd"), 2), _fmt(g.get("G_even"), 2), _fmt(g.get("G_%4"), 2)]
                for g in s["gains"]]
        parts.append("<h3>Table 4: latency per MAC and the gain of the SIMD kernels</h3>" +
                     _table(["board", "layer", "n", "δ reference ns", "δ SIMD ns", "G", "G odd", "G even", "G %4"], rows,
                            {2, 3, 4, 5, 6, 7, 8}))
    if s.get("alignment"):
        rows = [[a["target"], a["runtime_variant"], a["op"], _fmt(a.get("odd"), 1), _fmt(a.get("even"), 1),
                 _fmt(a.get("%4"), 1)] for a in s["alignment"]]
        parts.append("<h3>Median δ (ns per MAC) of the swept layer by alignment class of its input</h3>" +
                     _table(["board", "kernels", "op", "odd", "even", "%4"], rows, {3, 4, 5}))
    gains = data.get("conv_add_filter", [])
    if gains:
        best = sorted(gains, key=lambda g: -g["gain_pct"])[:12]
        rows = [[g["target"], g["variant"], g["group"], f"{g['from']} -> {g['to']}", _fmt(g["macs_added_pct"], 1),
                 _fmt(g["gain_pct"], 1)] for g in best]
        parts.append("<h3>One filter more in the previous layer: the largest latency gains (figure 5)</h3>" +
                     _table(["board", "kernels", "layer", "input channels", "MACs added %", "faster by %"], rows, {4, 5}))
    return "".join(parts)


def _validation_table(data: dict) -> str:
    rows = []
    for m, acc in data["accuracy"].items():
        host = acc.get("host", {})
        for v in acc.get("board", []):
            rows.append([_title(data, m), v["config_id"], f"{v['board']} ({v['kind']}"
                         + (f", timing model {v['board_model_version']}" if v.get("board_model_version") else "") + ")",
                         v["samples"], _fmt(v["board_accuracy"], 2, 100), _fmt(v["host_accuracy"], 2, 100),
                         _fmt(v["agreement"], 1, 100), _fmt(v["identical_outputs"], 1, 100),
                         _fmt(host.get("int8"), 2, 100), _fmt(v.get("seconds"), 0)])
        for p in acc.get("problems", []):
            rows.append([_title(data, m), "", p, "", "", "", "", "", "", ""])
    if not rows:
        return "<p class='note'>Stage F was not run (--validate-samples 0, or no int8 model).</p>"
    return _table(["model", "configuration", "board", "samples", "board accuracy %", "host accuracy % (reference, "
                   "same samples)", "same class %", "bit-identical outputs %", "host accuracy % (stage C, all test "
                   "samples)", "seconds"], rows, {3, 4, 5, 6, 7, 8, 9})


def _runs_table(data: dict) -> str:
    rows = [[_title(data, r["model"]), r["board"], r["config_id"], r["status"], _fmt(r.get("latency_s"), 3, 1e3),
             _fmt(r.get("energy_j"), 4, 1e3), _fmt(r.get("cycles")), r.get("repetitions", ""),
             _fmt(r.get("firmware_flash_bytes")), r["provenance"], r.get("energy_provenance", "") or r.get("reason", ""),
             r.get("measurement_id", "")] for r in data["runs"]]
    return _table(["model", "board", "configuration", "status", "latency ms", "energy mJ", "cycles", "reps",
                   "firmware flash bytes", "provenance", "energy / reason", "measurement id"], rows, {4, 5, 6, 7, 8})


# --- the page --------------------------------------------------------------------------------------------------


def render(data: dict) -> str:
    import plotly.io as pio

    sections: list[tuple[str, str, Any, str, str]] = [
        ("findings", "The paper's findings, from this study's numbers", fig_findings(data),
         "Each verdict is computed from the numbers below (costmodel/study/findings.py): reproduced (in the paper's "
         f"range, widened by 25 % for ratios), same direction (the effect, another size), not reproduced, not tested.",
         _findings_table(data)),
        ("memory", "Memory: model size per quantization (table 1), and what does not fit (oversized)", fig_memory(data),
         "Sizes of the .tflite files and of the plan the runtime programs into flash; the arena is the activation RAM "
         "the runtime needs. Host accuracy is stage C on the TFLite interpreter.", _memory_tables(data)),
        ("latency", "Latency per configuration and board (figure 2)", fig_latency(data),
         "Hover a bar for its provenance; a cell's tooltip in the tables has it too. Predicted latencies (where "
         "shown) come from the learned cost model fitted on the sweeps below.", _latency_table(data)),
        ("speedup", "Speed-ups: slowest to fastest (table 2)", fig_speedup(data), "", ""),
        ("ratio", "Latency ratio of the two models against their MAC ratio (table 3)", fig_ratio(data),
         "U: float without FPU (its slower -O build); O: int8 with SIMD kernels (its faster build).",
         _speedup_tables(data)),
        ("energy", "Energy against latency (section 4.2)", fig_energy(data), "", _energy_table(data)),
        ("pareto", "Latency/energy Pareto front across boards (figure 3)", fig_pareto(data),
         "A board is Pareto-efficient for a model when one of its configurations is on the front; 'dominated in every "
         "configuration' compares the boards configuration by configuration.", _pareto_table(data)),
    ]
    for m in data["models"]:
        if any(r["model"] == m["name"] for r in data["layers"]):
            sections.append((f"layers-{m['name']}", f"Per-layer latency and δ: {_title(data, m['name'])}",
                             fig_layers(data, m["name"]), "δ = latency / MAC of each layer (ns); layers without MACs "
                             "are blank. Tables of latency and δ of every layer, board and configuration below.",
                             _layer_tables_for(data, m["name"])))
    for name in ("dense", "conv", "dwconv"):
        if data["sweeps"]["rows"].get(name):
            sections.append((f"sweep-{name}", {"dense": "Dense layers (figure 4)", "conv": "Convolutions (figure 5)",
                                               "dwconv": "Depthwise convolutions (table 4)"}[name],
                             fig_sweep(data, name), "", _sweep_tables(data) if name == "dwconv" or (
                                 name == "conv" and not data["sweeps"]["rows"].get("dwconv")) else ""))
    meta = data["meta"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mcu-nas study</title><style>{CSS}</style></head>"
             f"<body><h1>The paper's experiments on {html.escape(', '.join(meta.get('targets', [])))}</h1>"
             "<p class='note'>Heim et al., <i>Measuring what Really Matters: Optimizing Neural Networks for TinyML</i> "
             "(arXiv:2104.10645), sections 4.1–4.3: stages A (analysis) to F (on-board accuracy), measured through "
             "agents into the measurement store.</p>"]
    first = True
    index = "".join(f"<li><a href='#sec-{k}'>{html.escape(t)}</a></li>" for k, t, *_ in sections)
    parts.append(f"<ul>{index}<li><a href='#sec-setup'>Setup and provenance</a></li></ul>")
    for key, title, fig, note, tables in sections:
        div = pio.to_html(fig, full_html=False, include_plotlyjs="inline" if first else False, div_id=f"plot-{key}",
                          config={"displaylogo": False, "responsive": True})
        first = False
        parts.append(f"<h2 id='sec-{key}'>{html.escape(title)}</h2>" + (f"<p class='note'>{html.escape(note)}</p>"
                                                                         if note else "")
                     + f"<div class='plot'>{div}</div>{tables}")
    parts.append("<h2>On-board accuracy (stage F)</h2>" + _validation_table(data))
    parts.append("<h2 id='sec-setup'>Setup and provenance</h2>" + _setup(data))
    parts.append("<h3>Every run, and where its numbers come from</h3>" + _runs_table(data))
    if meta.get("errors"):
        parts.append("<h3>Failures</h3><ul>" + "".join(f"<li>{html.escape(e)}</li>" for e in meta["errors"]) + "</ul>")
    parts.append(f"<script type='application/json' id='study-data'>"
                 f"{html.escape(json.dumps({'findings': data['findings'], 'plots': plot_ids(data)}))}</script>"
                 "</body></html>")
    return "".join(parts)


def _layer_tables_for(data: dict, model: str) -> str:
    sub = dict(data)
    sub["models"] = [m for m in data["models"] if m["name"] == model]
    return _layer_tables(sub)


def plot_ids(data: dict) -> list[str]:
    """The ``plot-<key>`` div of every figure the report draws."""
    keys = list(PLOTS)
    keys += [f"layers-{m['name']}" for m in data["models"] if any(r["model"] == m["name"] for r in data["layers"])]
    keys += [f"sweep-{n}" for n in ("dense", "conv", "dwconv") if data["sweeps"]["rows"].get(n)]
    return [f"plot-{k}" for k in keys]


# --- files -----------------------------------------------------------------------------------------------------


def _jsonable(obj):
    if isinstance(obj, dict):
        return {(" | ".join(map(str, k)) if isinstance(k, tuple) else str(k)): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(_jsonable(v)) if isinstance(v, (dict, list, tuple)) else v for k, v in r.items()})
    os.replace(tmp, path)


def write_outputs(data: dict, out: str | Path) -> Path:
    """``study.html``, ``study.json`` and the CSV files in ``out``; returns the HTML's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sweep_rows = [{"sweep": name, **r} for name, rows in data["sweeps"]["rows"].items() for r in rows]
    accuracy = [{"model": m, "kind": "host (stage C)", "quantization": q, "accuracy": v, "samples": a.get("samples")}
                for m, a in data["accuracy"].items() for q, v in a.get("host", {}).items()]
    accuracy += [{"model": m, "kind": "board (stage F)", **v} for m, a in data["accuracy"].items()
                 for v in a.get("board", [])]
    tables = {"runs": data["runs"], "layers": data["layers"], "memory": data["memory"], "fit": data["fit"],
              "speedups": data["speedups"], "ratios": data["ratios"], "energy": data["energy"]["per_board"],
              "pareto": [{"model": r["model"], **p} for r in data["pareto"] for p in r["points"]],
              "sweeps": sweep_rows, "gains": data["sweeps"].get("gains", []), "findings": data["findings"],
              "accuracy": accuracy}
    for name, rows in tables.items():
        _csv(out / f"{name}.csv", rows)
    doc = {"schema_version": 1, **{k: v for k, v in data.items()}}
    tmp = out / f".study.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(_jsonable(doc), indent=1, default=str))
    os.replace(tmp, out / "study.json")
    page = out / "study.html"
    tmp = out / f".study.html.{os.getpid()}.tmp"
    tmp.write_text(render(data), encoding="utf-8")
    os.replace(tmp, page)
    return page
