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

    def classify(self, x: np.ndarray) -> np.ndarray:
        """Class indices of a one-input, one-output classifier for ``x`` (samples first, float features):
        each sample reshaped to the model's input and quantized as its input tensor asks, argmax of the output.
        ValueError for a model that is no such classifier or samples of another size."""
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise ValueError(f"a classifier has one input and one output; this model has {len(self.inputs)} and "
                             f"{len(self.outputs)}")
        detail = self.inputs[0]
        shape = tuple(int(d) for d in detail["shape"])
        if int(np.prod(shape[1:])) != int(np.prod(x.shape[1:])):
            raise ValueError(f"the model takes inputs of shape {list(shape[1:])}, the dataset has {list(x.shape[1:])}")
        out = np.empty(len(x), dtype=np.int64)
        for i in range(len(x)):
            (y,) = self.run([quantize_input(x[i].reshape(shape), detail)])
            out[i] = int(np.argmax(y))
        return out


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float features as the interpreter's input tensor ``detail`` takes them (quantized for integer inputs)."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / (scale or 1.0)) + zero_point, info.min, info.max).astype(dtype)
