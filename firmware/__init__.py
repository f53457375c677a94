"""Firmware sources (C for Arm Cortex-M) of the measurement runtime, shipped as package data."""

from pathlib import Path


def source_dir() -> Path:
    """Directory holding the firmware C sources."""
    return Path(__file__).resolve().parent
