"""A small graph IR of a TFLite model: tensors, ops in execution order, quantization."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DTYPE_BYTES = {
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "int16": 2,
    "float16": 2,
    "int32": 4,
    "float32": 4,
    "int64": 8,
    "float64": 8,
}
NUMPY_TYPES = {
    "float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8,
    "int64": np.int64, "bool": np.bool_, "int16": np.int16, "int8": np.int8, "float64": np.float64,
}


@dataclass
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per channel along ``axis``."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None
    quant: Quantization | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * DTYPE_BYTES.get(self.dtype, 4)


@dataclass
class Op:
    index: int
    type: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)
    version: int = 1

    def input(self, i: int) -> int:
        """Tensor index of input ``i``, or -1 when absent."""
        return self.inputs[i] if i < len(self.inputs) else -1


@dataclass
class Graph:
    """The main subgraph of a model. ``ops`` are in execution order."""

    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    name: str = "model"

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def op_name(self, op: Op) -> str:
        """A readable layer name: the op's first output tensor name."""
        return self.tensors[op.outputs[0]].name if op.outputs else f"op{op.index}"

    def producers(self) -> dict[int, Op]:
        return {t: op for op in self.ops for t in op.outputs}

    def consumers(self) -> dict[int, list[Op]]:
        result: dict[int, list[Op]] = {}
        for op in self.ops:
            for t in op.inputs:
                if t >= 0:
                    result.setdefault(t, []).append(op)
        return result
