"""The kernel the firmware runs for a layer in each runtime variant, and the scratch it needs.

Mirrors ``firmware/kernels/nn_wrappers.h``: an op with a SIMD kernel runs it in the ``simd`` variant and the
reference kernel otherwise; every other op runs its reference kernel in both. The host test
``tests/test_plan_format_sync.py`` checks the names against ``nn_layer_kernel`` of the host library.
"""

from __future__ import annotations

from dataclasses import dataclass

from measure_agent.plan.format import VARIANTS


@dataclass(frozen=True)
class KernelChoice:
    kernels: dict[str, str]   # runtime variant -> kernel name
    scratch: dict[str, int]   # runtime variant -> scratch bytes at the plan's scratch offset

    @property
    def scratch_bytes(self) -> int:
        """What the plan reserves for the op: the most any variant needs."""
        return max(self.scratch.values())


def reference_only(kernel: str, scratch: int = 0) -> KernelChoice:
    """An op with only a reference kernel (the same in every variant)."""
    return KernelChoice({v: kernel for v in VARIANTS}, {v: int(scratch) for v in VARIANTS})


def _by_variant(op_type: str, simd_scratch: int) -> KernelChoice:
    return KernelChoice({"reference": f"{op_type}_ref", "simd": f"{op_type}_simd"},
                        {"reference": 0, "simd": int(simd_scratch)})


def conv2d_s8(kh: int, kw: int, ic: int) -> KernelChoice:
    """conv2d_s8_wrapper: the SIMD kernel's im2col holds two int16 columns of KH x KW x IC."""
    return _by_variant("conv2d_s8", 2 * 2 * kh * kw * ic)


def depthwise_conv2d_s8() -> KernelChoice:
    """depthwise_conv2d_s8_wrapper: no scratch in either variant."""
    return _by_variant("depthwise_conv2d_s8", 0)


def fully_connected_s8(in_len: int) -> KernelChoice:
    """fully_connected_s8_wrapper: the SIMD kernel's int16 copy of one input row."""
    return _by_variant("fully_connected_s8", 2 * in_len)
