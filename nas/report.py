"""One self-contained HTML report of a study (Plotly, its JavaScript inlined once; no network needed to open it).

Sections: the Pareto front (accuracy vs latency vs energy), predicted vs measured latency per trial and the
cost model's error over the search, what each pruning / repair rule saved, the per-layer latency of the
chosen models (measured, with the cost model's prediction), the time split per stage, and every trial with
the provenance of each number (virtual board with its timing-model version, real board, predicted by the
cost model, energy modelled from the board's power or from a monitor, accuracy on the host interpreter).
"""

from __future__ import annotations

import html
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.pareto import front_indices
from nas.storage import META_KEY

from nas.search import STAGES
COLORS = {"measured": "#1f77b4", "pruned": "#ff7f0e", "failed": "#d62728", "front": "#2ca02c"}


def _trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("outcome") not in (None, "interrupted")]


def _values(t: optuna.trial.FrozenTrial, names: list[str]) -> dict:
    return dict(zip(names, t.values)) if t.values else {}


def report_data(study: optuna.Study, summary_only: bool = False) -> dict:
    """The figures of the report as plain data (also ``nas report --json``)."""
    meta = dict(study.user_attrs.get(META_KEY) or {})
    names = meta.get("objectives") or [f"objective {i}" for i in range(len(study.directions))]
    directions = ["maximize" if d == optuna.study.StudyDirection.MAXIMIZE else "minimize" for d in study.directions]
    trials = _trials(study)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    feasible = [t for t in complete if all(v <= 0 for v in t.constraints.values())]
    front = [feasible[i].number for i in front_indices([t.values for t in feasible], directions)] if feasible else []
    outcomes: dict[str, int] = {}
    rules: dict[str, dict] = {}
    for t in trials:
        outcome = t.user_attrs.get("outcome")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        rule = t.user_attrs.get("rule")
        if rule:
            r = rules.setdefault(rule, {"fired": 0, "measurements_saved": 0, "trainings_saved": 0})
            r["fired"] += 1
            if (outcome == "pruned" and not rule.startswith("measured:")) or rule == "known":
                r["measurements_saved"] += 1
            if outcome == "pruned" and "accuracy" not in t.user_attrs:
                r["trainings_saved"] += 1
    errors = []
    for t in sorted(trials, key=lambda t: t.number):
        p, m = t.user_attrs.get("prediction"), t.user_attrs.get("measurement")
        if p and m and not m.get("from_store"):
            errors.append({"trial": t.number, "predicted_s": p["latency_s"], "sd_s": p["latency_sd_s"],
                           "measured_s": m["latency_s"],
                           "error_pct": (p["latency_s"] - m["latency_s"]) / m["latency_s"] * 100,
                           "model_version": p.get("model_version", "")})
    stage_totals = {s: sum((t.user_attrs.get("stage_s") or {}).get(s, 0.0) for t in trials) for s in STAGES}
    measured = sum(1 for t in trials if (t.user_attrs.get("measurement") or {}).get("from_store") is False)
    data = {
        "study": study.study_name, "meta": meta, "objectives": names, "directions": directions, "trials": len(trials),
        "outcomes": outcomes, "rules": rules, "measurements": measured,
        "measurements_saved": sum(r["measurements_saved"] for r in rules.values()),
        "front": front,
        "cost_model_error": {"n": len(errors),
                             "median_abs_pct": statistics.median(abs(e["error_pct"]) for e in errors) if errors
                             else None,
                             "last10_median_abs_pct": statistics.median(abs(e["error_pct"]) for e in errors[-10:])
                             if errors else None},
        "stage_seconds": stage_totals,
    }
    data["validation"] = {int(k.split(":", 1)[1]): v for k, v in study.user_attrs.items()
                          if k.startswith("validation:")}
    if not summary_only:
        data["errors"] = errors
        data["rows"] = [_row(t, names, t.number in front) for t in sorted(trials, key=lambda t: t.number)]
    return data


def _row(t: optuna.trial.FrozenTrial, names: list[str], on_front: bool) -> dict:
    a = t.user_attrs
    m, p = a.get("measurement") or {}, a.get("prediction") or {}
    if m:
        latency = (m["latency_s"], m.get("provenance", "board"))
        energy = (m["energy_j"], "modelled: latency x the board's power" if m.get("energy_source") == "power-model"
                  else f"measured by the energy monitor of {m.get('board_id', 'the board')}")
    elif p:
        latency = (p["latency_s"], f"predicted by the cost model ({p.get('model_version', '')}), "
                                   f"± {p['latency_sd_s'] * 1e3:.2g} ms")
        energy = (p.get("energy_j"), f"predicted ({p.get('energy_source', '')})")
    else:
        latency = energy = (None, "")
    acc = a.get("accuracy")
    return {"trial": t.number, "state": t.state.name, "outcome": a.get("outcome"), "rule": a.get("rule", ""),
            "reason": a.get("reason") or a.get("error") or (a.get("repair") or {}).get("reason", ""),
            "values": _values(t, names), "front": on_front, "params": a.get("repaired_params") or t.params,
            "original_params": t.params if a.get("repaired_params") else None,
            "latency_s": latency[0], "latency_source": latency[1], "energy_j": energy[0], "energy_source": energy[1],
            "accuracy": acc.get("int8") if acc else None,
            "accuracy_source": (f"int8 on the host interpreter after {acc.get('epochs')} epochs" if acc else ""),
            "macs": (a.get("analysis") or {}).get("macs"), "arena_bytes": (a.get("analysis") or {}).get("arena_bytes"),
            "plan_bytes": (a.get("analysis") or {}).get("plan_bytes"), "layers": a.get("layers") or [],
            "stage_s": a.get("stage_s") or {}, "worker": a.get("worker", "")}


# --- figures ------------------------------------------------------------------------------------------------------


def _empty(fig, text: str):
    """A figure without data says why instead of showing empty axes."""
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font={"size": 15})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _fig_front(data: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [r for r in data["rows"] if r["outcome"] == "measured" and r["latency_s"] is not None]
    has_acc = any(r["accuracy"] is not None for r in rows)
    if not rows:
        fig = go.Figure()
        fig.update_layout(height=200, margin={"t": 10})
        return _empty(fig, "no candidate has been measured within the budgets yet")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy vs latency" if has_acc else "energy vs latency",
                                                         "accuracy vs energy" if has_acc else "RAM vs latency"))
    for on_front, name, color, size in ((False, "measured", COLORS["measured"], 7), (True, "Pareto front",
                                                                                      COLORS["front"], 11)):
        sel = [r for r in rows if r["front"] == on_front]
        if not sel:
            continue
        text = [f"trial {r['trial']}<br>{html.escape(_params_text(r['params']))}" for r in sel]
        lat = [r["latency_s"] * 1e3 for r in sel]
        en = [(r["energy_j"] or 0) * 1e3 for r in sel]
        y1 = [r["accuracy"] * 100 for r in sel] if has_acc else en
        fig.add_trace(go.Scatter(x=lat, y=y1, mode="markers", name=name, text=text, hoverinfo="text+x+y",
                                 marker={"color": color, "size": size, "line": {"width": 1, "color": "#333"}}),
                      row=1, col=1)
        if has_acc:
            fig.add_trace(go.Scatter(x=en, y=y1, mode="markers", name=name, text=text, showlegend=False,
                                     hoverinfo="text+x+y", marker={"color": color, "size": size}), row=1, col=2)
        else:
            fig.add_trace(go.Scatter(x=lat, y=[(r["arena_bytes"] or 0) / 1024 for r in sel], mode="markers",
                                     showlegend=False, text=text, marker={"color": color, "size": size}),
                          row=1, col=2)
    fig.update_xaxes(title_text="latency (ms)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (%)" if has_acc else "energy (mJ)", row=1, col=1)
    fig.update_xaxes(title_text="energy (mJ)" if has_acc else "latency (ms)", row=1, col=2)
    fig.update_yaxes(title_text="accuracy (%)" if has_acc else "arena (KiB)", row=1, col=2)
    fig.update_layout(height=430, margin={"t": 40})
    return fig


def _fig_errors(data: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    e = data["errors"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("predicted vs measured latency",
                                                         "cost model error over the search"))
    if e:
        meas = [x["measured_s"] * 1e3 for x in e]
        pred = [x["predicted_s"] * 1e3 for x in e]
        fig.add_trace(go.Scatter(x=meas, y=pred, mode="markers", name="trial",
                                 error_y={"type": "data", "array": [2 * x["sd_s"] * 1e3 for x in e], "visible": True,
                                          "thickness": 1},
                                 text=[f"trial {x['trial']}" for x in e], marker={"color": COLORS["measured"]}),
                      row=1, col=1)
        lo, hi = min(meas + pred), max(meas + pred)
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = measured",
                                 line={"dash": "dash", "color": "#888"}), row=1, col=1)
        errs = [abs(x["error_pct"]) for x in e]
        rolling = [statistics.median(errs[max(0, i - 4): i + 1]) for i in range(len(errs))]
        fig.add_trace(go.Scatter(x=[x["trial"] for x in e], y=errs, mode="markers", name="|error| of a trial",
                                 marker={"color": COLORS["pruned"]}), row=1, col=2)
        fig.add_trace(go.Scatter(x=[x["trial"] for x in e], y=rolling, mode="lines", name="median of the last 5",
                                 line={"color": "#333"}), row=1, col=2)
    else:
        return _empty(fig, "no measured candidate was predicted before its measurement yet (the cost model needs a "
                           "few measurements of the target first)")
    fig.update_xaxes(title_text="measured (ms)", row=1, col=1)
    fig.update_yaxes(title_text="predicted (ms), ± 2 sd", row=1, col=1)
    fig.update_xaxes(title_text="trial", row=1, col=2)
    fig.update_yaxes(title_text="|predicted - measured| (%)", row=1, col=2)
    fig.update_layout(height=400, margin={"t": 40})
    return fig


def _fig_rules(data: dict):
    import plotly.graph_objects as go

    rules = sorted(data["rules"].items())
    fig = go.Figure()
    if not rules:
        fig.update_layout(height=200, margin={"t": 10})
        return _empty(fig, "no rule fired: every candidate was measured")
    fig.add_trace(go.Bar(x=[r for r, _ in rules], y=[v["fired"] for _, v in rules], name="fired"))
    fig.add_trace(go.Bar(x=[r for r, _ in rules], y=[v["measurements_saved"] for _, v in rules],
                         name="measurements saved"))
    fig.add_trace(go.Bar(x=[r for r, _ in rules], y=[v["trainings_saved"] for _, v in rules], name="trainings saved"))
    fig.update_layout(barmode="group", height=340, margin={"t": 30}, yaxis_title="trials")
    return fig


def _fig_layers(data: dict):
    import plotly.graph_objects as go

    chosen = [r for r in data["rows"] if r["front"] and r["layers"]]
    fig = go.Figure()
    if not chosen:
        fig.update_layout(height=200, margin={"t": 10})
        return _empty(fig, "no measured model on the front yet")
    ops = sorted({layer["op"] for r in chosen for layer in r["layers"]})
    for op in ops:
        fig.add_trace(go.Bar(name=op, x=[f"trial {r['trial']}" for r in chosen],
                             y=[sum(layer["latency_s"] for layer in r["layers"] if layer["op"] == op) * 1e3
                                for r in chosen],
                             hovertext=[", ".join(f"{layer['index']}: {layer['latency_s'] * 1e3:.3f} ms"
                                                  for layer in r["layers"] if layer["op"] == op) for r in chosen]))
    fig.update_layout(barmode="stack", height=380, margin={"t": 30}, yaxis_title="measured latency (ms)")
    return fig


def _fig_stages(data: dict):
    import plotly.graph_objects as go

    n = max(1, data["trials"])
    fig = go.Figure(go.Bar(x=list(data["stage_seconds"]), y=[v / n for v in data["stage_seconds"].values()]))
    fig.update_layout(height=300, margin={"t": 30}, yaxis_title="seconds per trial (mean)")
    return fig


# --- the page -----------------------------------------------------------------------------------------------------


def _params_text(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in (params or {}).items())


def _fmt(v: Any, scale: float = 1.0, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v * scale:.{digits}g}"


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _layer_tables(data: dict) -> str:
    parts = []
    for r in data["rows"]:
        if not (r["front"] and r["layers"]):
            continue
        rows = [[str(layer["index"]), html.escape(layer["op"]), html.escape(layer.get("kernel", "")),
                 f"{layer['macs']:,}", f"{layer['cycles']:,}", _fmt(layer["latency_s"], 1e3),
                 _fmt(layer.get("predicted_s"), 1e3), html.escape(layer.get("source") or "-")]
                for layer in r["layers"]]
        parts.append(f"<h3>trial {r['trial']}: {html.escape(_params_text(r['params']))}</h3>"
                     + _table(["#", "op", "kernel", "MACs", "cycles", "measured (ms)", "predicted (ms)",
                               "prediction source"], rows))
    return "".join(parts) or "<p>No measured model on the front yet.</p>"


def _validation_table(data: dict) -> str:
    if not data["validation"]:
        return ""
    rows = []
    for trial, v in sorted(data["validation"].items()):
        if "board_accuracy" in v:
            rows.append([str(trial), str(v["samples"]), _fmt(v["board_accuracy"], 100, 4),
                         _fmt(v["host_accuracy"], 100, 4), _fmt(v["agreement"], 100, 4),
                         _fmt(v["identical_outputs"], 100, 4)])
        else:
            rows.append([str(trial), "-", "-", "-", "-", html.escape(v.get("error") or v.get("skipped", ""))])
    return ("<h2>On-board validation of the front</h2><p class='note'>Each trained int8 model of the front, sample "
            "by sample on a virtual board of the target and on the host interpreter.</p>"
            + _table(["trial", "samples", "on the board (%)", "host interpreter (%)", "same class (%)",
                      "identical outputs (%)"], rows))


def _trial_table(data: dict) -> str:
    rows = []
    for r in data["rows"]:
        params = html.escape(_params_text(r["params"]))
        if r["original_params"]:
            params += f"<br><small>repaired from: {html.escape(_params_text(r['original_params']))}</small>"
        rows.append([str(r["trial"]) + (" ★" if r["front"] else ""), html.escape(r["outcome"] or ""),
                     html.escape(r["rule"]), html.escape(r["reason"][:200]),
                     _fmt(r["accuracy"], 100, 4), html.escape(r["accuracy_source"]),
                     _fmt(r["latency_s"], 1e3), html.escape(r["latency_source"]),
                     _fmt(r["energy_j"], 1e3), html.escape(r["energy_source"]), params])
    return _table(["trial", "outcome", "rule", "reason", "accuracy (%)", "accuracy from", "latency (ms)",
                   "latency from", "energy (mJ)", "energy from", "parameters"], rows, "trials")


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{margin-bottom:4px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.trials td:nth-child(4){max-width:320px}
.plot{min-height:300px}small{color:#666}.note{color:#555;max-width:900px}"""


def render(data: dict) -> str:
    """The HTML page of :func:`report_data` (with its rows)."""
    import plotly.io as pio

    figures = [("front", "Pareto front", _fig_front(data),
                "Measured candidates that met every budget; the front (green) is the non-dominated set. Energy "
                "per inference; accuracy of the int8 model on the host interpreter."),
               ("errors", "The cost model: predicted vs measured latency", _fig_errors(data),
                "Every measured candidate that the learned cost model had predicted before its measurement "
                "(± 2 standard deviations). The model is refitted as measurements arrive."),
               ("rules", "What the rules saved", _fig_rules(data),
                "A pruned candidate is not measured, and not trained unless the dominated rule needed its "
                "accuracy (a measured trial was at least as good in every objective as its best case); a repaired "
                "one was replaced by the faster parametrization at the same or higher capacity; a known one reused "
                "the measurement of the same architecture. measured:* rules fired after a measurement."),
               ("layers", "Per-layer latency of the chosen models", _fig_layers(data),
                "Measured latency per op type of each model on the front; per-layer tables below."),
               ("stages", "Where the time goes", _fig_stages(data), "Mean seconds per trial of each stage.")]
    meta = data["meta"]
    facts = [["study", html.escape(data["study"])], ["target", html.escape(str(meta.get("target", "")))],
             ["space", html.escape(str(meta.get("space", "")))],
             ["dataset", html.escape(f"{meta.get('dataset', '')} ({meta.get('dataset_fingerprint', '')})")],
             ["objectives", html.escape(", ".join(f"{n} ({d})" for n, d in zip(data["objectives"],
                                                                              data["directions"])))],
             ["budgets", html.escape(", ".join(f"{k} {v:g}" for k, v in (meta.get("budgets") or {}).items()
                                               if v is not None) or "none")],
             ["trials", html.escape(", ".join(f"{v} {k}" for k, v in sorted(data["outcomes"].items())))],
             ["measurements", f"{data['measurements']} made, {data['measurements_saved']} saved by the rules"],
             ["cost model error", html.escape(
                 f"median |error| {_fmt(data['cost_model_error']['median_abs_pct'])} % over "
                 f"{data['cost_model_error']['n']} predictions, "
                 f"{_fmt(data['cost_model_error']['last10_median_abs_pct'])} % over the last 10")],
             ["written", time.strftime("%Y-%m-%d %H:%M:%S")]]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>nas report: {html.escape(data['study'])}"
             f"</title><style>{CSS}</style></head><body><h1>Study {html.escape(data['study'])}</h1>",
             _table(["", ""], facts)]
    first = True
    for key, title, fig, note in figures:
        div = pio.to_html(fig, full_html=False, include_plotlyjs="inline" if first else False,
                          div_id=f"plot-{key}", config={"displaylogo": False, "responsive": True})
        first = False
        parts.append(f"<h2>{html.escape(title)}</h2><p class='note'>{html.escape(note)}</p>"
                     f"<div class='plot'>{div}</div>")
        if key == "layers":
            parts.append(_layer_tables(data))
    parts.append(_validation_table(data))
    parts.append("<h2>Every trial, and where each number comes from</h2>" + _trial_table(data))
    parts.append(f"<script type='application/json' id='report-data'>"
                 f"{html.escape(json.dumps({k: data[k] for k in ('study', 'trials', 'outcomes', 'rules', 'front')}))}"
                 f"</script></body></html>")
    return "".join(parts)


def write_report(study: optuna.Study, out: str | Path) -> dict:
    """Write the report of ``study`` to ``out``; returns its data."""
    data = report_data(study)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(out)
    return data
