"""Cost model for neural networks on Arm Cortex-M: analysis of .tflite models and a learned latency table.

Library use::

    from costmodel import analyze, LatencyModel, load_model

    analysis = analyze("model.tflite", target="NUCLEO-L496ZG")   # MACs, params, memory, alignment per layer
    model = load_model("latency-model.json")                     # or LatencyModel().fit(store_or_rows)
    p = model.predict_model(analysis, target="NUCLEO-L496ZG")    # latency, energy, per-layer source/uncertainty
    model.alternatives(analysis, target="NUCLEO-L496ZG")         # faster parametrizations, >= same MACs

``LatencyModel``, ``load_model`` and ``MeasurementStore`` are imported on first use (scikit-learn and
SQLAlchemy are not needed to analyse a model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costmodel.analysis import ModelAnalysis
from costmodel.graph import Graph

__all__ = ["analyze", "LatencyModel", "load_model", "MeasurementStore", "open_store", "ModelAnalysis"]


def analyze(model: Graph | str | Path | bytes, target: Any = None) -> ModelAnalysis:
    """Analyse a model (a :class:`~costmodel.graph.Graph`, or a .tflite path or bytes); with ``target`` (a board
    name or :class:`~costmodel.boards.Board`), also whether it fits the board's flash and RAM."""
    from costmodel.analysis import analyze as _analyze
    from costmodel.boards import Board, get_board

    graph = model
    if not isinstance(model, Graph):
        from costmodel.tflite import read_model

        graph = read_model(model)
    board = target if isinstance(target, Board) or target is None else get_board(target)
    return _analyze(graph, board)


def __getattr__(name: str):
    if name in ("LatencyModel", "load_model"):
        from costmodel import latency_model

        return getattr(latency_model, name)
    if name in ("MeasurementStore", "open_store"):
        from costmodel import store

        return getattr(store, name)
    raise AttributeError(f"module 'costmodel' has no attribute {name!r}")
