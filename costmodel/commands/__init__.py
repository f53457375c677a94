"""The cost model's measured-half commands, registered on the ``costmodel`` typer app by :func:`register`:

``sweep``  measure benchmark networks on boards into the store
``data``   ``export`` / ``import`` the store as CSV or Parquet
``fit``    fit a latency model from the store; ``score`` its errors on a store
``table``  the δ table; ``predict`` a model's latency/energy per layer; ``suggest`` faster parametrizations
``plot``   latency against MACs and δ against the swept parameter (PNG and HTML), and the gains table

These may drive agents (``measure_agent``); the library under ``costmodel/`` may not.
"""

from __future__ import annotations

import os

import typer

STORE_ENV = "MCU_NAS_STORE"
MODEL_ENV = "MCU_NAS_LATENCY_MODEL"
DEFAULT_STORE = "measurements.sqlite"


def default_store() -> str:
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def register(app: typer.Typer) -> None:
    from costmodel.commands import data, model, sweep

    sweep.register(app)
    model.register(app)
    data.register(app)
