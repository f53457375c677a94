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


#: conv2d_s8_simd's NN_CONV_ROW_GROUPS_MAX: row mode takes kernel rows of at most this many groups of 4 taps
CONV_ROW_GROUPS_MAX = 64


def conv2d_s8(kh: int, kw: int, ic: int, oc: int, dil_w: int = 1, stride_w: int = 1, out_w: int = 1,
              dil_h: int = 1, padded: bool = False) -> KernelChoice:
    """conv2d_s8_wrapper: the SIMD kernel's per output channel requantization constants (16 bytes) and
    accumulators of four pixels (16 bytes), both for OC rounded up to even, the unused pixels' discarded output
    (OC bytes, padded to words), and four int16 im2col columns of K taps: KH x KW x IC rounded up to a multiple
    of 4, or, for input channels not a multiple of 4 without horizontal dilation ("row mode"), KH rows of
    KW x IC (at most 4 x CONV_ROW_GROUPS_MAX) rounded up to a multiple of 4, plus the weights repacked to the int16
    pair layout (OC x K int16); in row mode and for padded convolutions with IC a multiple of 4 without horizontal
    dilation, a ring of padded input rows: the (KH - 1) x dil_h + 1 rows a window spans, each the span of an
    output row's windows x IC rounded up to 4, plus 4 bytes, and the KH row offsets (4 bytes each)."""
    row_mode = ic % 4 != 0 and dil_w == 1 and kw * ic <= 4 * CONV_ROW_GROUPS_MAX
    k = kh * ((kw * ic + 3) // 4 * 4) if row_mode else (kh * kw * ic + 3) // 4 * 4
    oc2 = (oc + 1) // 2 * 2
    slot = (((out_w - 1) * stride_w + kw) * ic + 3) // 4 * 4 + 4
    use_rows = row_mode or (dil_w == 1 and ic % 4 == 0 and padded)
    rows = ((kh - 1) * dil_h + 1) * slot + 4 * kh if use_rows else 0
    return _by_variant("conv2d_s8", 32 * oc2 + (oc + 3) // 4 * 4 + 4 * 2 * k + (2 * oc2 * k if row_mode else 0) + rows)


def depthwise_conv2d_s8(kh: int, kw: int, stride_w: int, dil_w: int, out_w: int, out_c: int) -> KernelChoice:
    """depthwise_conv2d_s8_wrapper: the SIMD kernel's KH ring row offsets (4 bytes each), requantization
    constants (16 bytes per channel), weights expanded to halfword pairs (2 bytes per tap and channel, channels
    rounded up to 4) and a ring of KH padded input rows (the span of an output row's windows x the output
    channels, rounded up to 4 bytes); for 3x3, stride 1 or 2, channels a multiple of 4, at least the int16
    path's (depthwise_conv2d_s8_simd.c dw16_scratch_bytes): 56 bytes per channel and three slot rows of int16
    pixel pairs."""
    span = (out_w - 1) * stride_w + (kw - 1) * dil_w + 1
    ring = kh * span * out_c
    scratch = 16 * out_c + 4 * kh + 2 * kh * kw * ((out_c + 3) // 4 * 4) + (ring + 3) // 4 * 4
    if (kh, kw) == (3, 3) and stride_w in (1, 2) and dil_w == 1 and out_c % 4 == 0:
        # the int16 path: 56 bytes per channel, three slot rows of int16 pixel pairs (the blocks' span)
        span16 = stride_w * ((out_w + 3) // 4 * 4) + 2
        scratch = max(scratch, 56 * out_c + 6 * out_c * span16)
    return _by_variant("depthwise_conv2d_s8", scratch)


def avgpool_s8() -> KernelChoice:
    """avgpool_s8_wrapper: the SIMD kernel sums four channels at a time in int16 lanes; no scratch."""
    return _by_variant("avgpool_s8", 0)


def fully_connected_s8(in_len: int) -> KernelChoice:
    """fully_connected_s8_wrapper: the SIMD kernel's int16 copy of one input row (rounded up to 4 entries)."""
    return _by_variant("fully_connected_s8", 2 * ((in_len + 3) // 4 * 4))


def add(dtype: str) -> KernelChoice:
    """ADD (and SUB) int8 / int16: add_s8_wrapper's SIMD kernel keeps two 256-entry int32 rescaling tables."""
    if dtype == "int16":
        return reference_only("add_s16_ref")
    return _by_variant("add_s8", 2 * 256 * 4)
