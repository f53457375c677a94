"""Errors of the cost model library."""


class ModelError(ValueError):
    """The model file is malformed, or uses something the cost model cannot represent."""
