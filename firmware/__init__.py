"""Firmware sources (C for Arm Cortex-M) of the measurement runtime, shipped as package data."""
