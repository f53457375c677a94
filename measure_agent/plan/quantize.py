"""Quantization arithmetic of the TFLite quantization specification (the one place on the Python side).

Mirrors the public reference integer arithmetic: a real multiplier becomes a Q31 integer multiplier and a
power-of-two shift (positive = left), rounding half away from zero as ``TfLiteRound``; activation ranges
are quantized with float32 arithmetic as the reference does. The run-time half lives in
``firmware/kernels/nn_quant.h``.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> int:
    """std::round: halves away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """QuantizeMultiplier: real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31)."""
    if real_multiplier == 0.0:
        return 0, 0
    if real_multiplier < 0:
        raise ValueError(f"negative multiplier {real_multiplier}")
    q, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    if shift > 30:
        shift = 30
        q_fixed = (1 << 31) - 1
    return int(q_fixed), int(shift)


def quantize_multiplier_greater_than_one(real_multiplier: float) -> tuple[int, int]:
    """QuantizeMultiplierGreaterThanOne: as quantize_multiplier with a non-negative left shift."""
    if real_multiplier <= 1.0:
        raise ValueError(f"multiplier {real_multiplier} is not greater than one")
    mult, shift = quantize_multiplier(real_multiplier)
    if shift < 0:
        raise ValueError("negative shift for a multiplier greater than one")
    return mult, shift


def f32(x) -> np.float32:
    return np.float32(x)


def activation_range_int8(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 outputs (float32 division, round half away)."""

    def quantize(v: float) -> int:
        return int(zero_point) + round_half_away(float(f32(v) / f32(scale)))

    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise ValueError(f"fused activation {activation} is not supported for int8")


def activation_range_float(activation: str) -> tuple[float, float]:
    if activation == "NONE":
        return -math.inf, math.inf
    if activation == "RELU":
        return 0.0, math.inf
    if activation == "RELU6":
        return 0.0, 6.0
    if activation == "RELU_N1_TO_1":
        return -1.0, 1.0
    raise ValueError(f"fused activation {activation} is not supported for float32")


def conv_multipliers(input_scale: float, filter_scales: np.ndarray, output_scale: float,
                     channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (multiplier, shift) of a conv / FC: input_scale * filter_scale / output_scale (double)."""
    scales = np.asarray(filter_scales, dtype=np.float32).reshape(-1)
    if scales.size == 1:
        scales = np.repeat(scales, channels)
    if scales.size != channels:
        raise ValueError(f"{scales.size} filter scales for {channels} output channels")
    mults, shifts = [], []
    for s in scales:
        m, sh = quantize_multiplier(float(input_scale) * float(s) / float(output_scale))
        mults.append(m)
        shifts.append(sh)
    return np.asarray(mults, dtype=np.int32), np.asarray(shifts, dtype=np.int32)


def add_params(scale1: float, scale2: float, scale_out: float, left_shift: int = 20) -> dict:
    """The int8 ADD rescaling: both inputs to a common scale 2*max(s1, s2) with 20 bits of headroom."""
    twice_max = 2.0 * float(max(f32(scale1), f32(scale2)))
    m1, s1 = quantize_multiplier(float(scale1) / twice_max)
    m2, s2 = quantize_multiplier(float(scale2) / twice_max)
    mo, so = quantize_multiplier(twice_max / (float(1 << left_shift) * float(scale_out)))
    return dict(m1=m1, s1=s1, m2=m2, s2=s2, mo=mo, so=so, left_shift=left_shift)


def mul_multiplier(scale1: float, scale2: float, scale_out: float) -> tuple[int, int]:
    return quantize_multiplier(float(scale1) * float(scale2) / float(scale_out))


def softmax_params(input_scale: float, beta: float, scaled_diff_integer_bits: int = 5) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius: (input multiplier, left shift, diff_min)."""
    real = min(float(beta) * float(input_scale) * float(1 << (31 - scaled_diff_integer_bits)), float((1 << 31) - 1))
    mult, shift = quantize_multiplier_greater_than_one(real)
    radius = calculate_input_radius(scaled_diff_integer_bits, shift, 31)
    return mult, shift, -radius


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def logistic_params(input_scale: float, input_integer_bits: int = 4) -> tuple[int, int, int]:
    """(input multiplier, left shift, input range radius) of the int8 fixed-point logistic."""
    real = float(input_scale) * float(1 << (31 - input_integer_bits))
    mult, shift = quantize_multiplier_greater_than_one(real)
    radius = calculate_input_radius(input_integer_bits, shift, 31)
    return mult, shift, radius


def float_bits(x: float) -> int:
    """The IEEE-754 single bit pattern of x as a signed int32 (how floats travel in plan params)."""
    return int(np.array([x], dtype=np.float32).view(np.int32)[0])


def mean_params(input_scale: float, output_scale: float, num_elements: int) -> tuple[int, int]:
    """(multiplier, shift) of an int8 MEAN: input_scale / output_scale with 1/num_elements folded in
    by integer division of the multiplier, as the reference QuantizedMeanOrSum."""
    mult, shift = quantize_multiplier(float(input_scale) / float(output_scale))
    s = min(int(num_elements).bit_length() - 1, 32, 31 + shift)
    mult = (mult << s) // int(num_elements)
    return int(mult), int(shift - s)
