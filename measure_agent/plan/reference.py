"""The TFLite interpreter with its reference kernels: what the firmware runtime must match."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from costmodel.convert import quiet


class Reference:
    """ai-edge-litert's interpreter with the reference kernels (BUILTIN_REF, no XNNPACK) for one model."""

    def __init__(self, model: Path | str | bytes, resolver: str = "BUILTIN_REF"):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else \
            {"model_path": str(model)}
        with quiet():
            self.it = Interpreter(**source, experimental_op_resolver_type=getattr(OpResolverType, resolver))
            self.it.allocate_tensors()
        self.inputs = self.it.get_input_details()
        self.outputs = self.it.get_output_details()

    def run(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        for d, x in zip(self.inputs, xs):
            self.it.set_tensor(d["index"], x)
        self.it.invoke()
        return [self.it.get_tensor(d["index"]).copy() for d in self.outputs]
