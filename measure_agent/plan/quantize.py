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


def add_multipliers(scale1: float, scale2: float, scale_out: float, left_shift: int, subtract: bool = False) -> dict:
    """The int8 (left shift 20) / int16 (left shift 15) ADD rescaling; SUB negates the second input's
    multiplier (exact: both roundings of MultiplyByQuantizedMultiplier are symmetric about zero)."""
    p = add_params(scale1, scale2, scale_out, left_shift)
    if subtract:
        p["m2"] = -p["m2"]
    return p


def int8_function_table(fn, input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """The reference's int8 lookup table of ``fn`` (TANH): entry (uint8)v is
    clamp(round(fn(float(input_scale * (v - input_zp))) * (1 / output_scale)) + output_zp), in float32 as the
    reference's table Prepare; ``fn`` is evaluated in double and rounded to float32 (tanhf)."""
    s_in, inv = np.float32(input_scale), np.float32(1.0) / np.float32(output_scale)
    table = np.zeros(256, np.int8)
    for v in range(-128, 128):
        x = np.float32(s_in * np.float32(v - input_zp))
        y = np.float32(fn(float(x)))
        q = round_half_away(float(np.float32(y * inv))) + int(output_zp)
        table[v & 0xFF] = max(INT8_MIN, min(INT8_MAX, q))
    return table


def _round_f(x: float) -> float:
    return float(round_half_away(x))


def int16_table(fn, input_min: float, input_max: float, output_min: float = -1.0, output_max: float = 1.0
                ) -> np.ndarray:
    """The 513-entry int16 interpolation table of ``fn`` over [input_min, input_max] (double arithmetic, as
    the reference's table generator for the 16x8 SOFTMAX): 512 samples, each biased by half the
    interpolation error at its interval's midpoint, and the end point."""
    steps = 512
    step = (input_max - input_min) / steps
    half = step / 2
    inv = 65536.0 / (output_max - output_min)
    lut = np.zeros(steps + 1, np.int16)
    for i in range(steps):
        val = fn(input_min + i * step)
        mid = fn(input_min + i * step + half)
        nxt = fn(input_min + (i + 1) * step)
        sample = _round_f(val * inv)
        interp = _round_f((nxt * inv + _round_f(val * inv)) / 2)
        bias = _round_f((interp - _round_f(mid * inv)) / 2)
        lut[i] = int(min(max(sample - bias, -32768.0), 32767.0))
    lut[steps] = int(min(max(_round_f(fn(input_max) * inv), -32768.0), 32767.0))
    return lut


def softmax_int16_tables() -> tuple[np.ndarray, np.ndarray]:
    """exp over [-10, 0] and 1 / (1 + x) over [0, 1]: the two tables of the 16x8 SOFTMAX."""
    return int16_table(math.exp, -10.0, 0.0), int16_table(lambda v: 1.0 / (1.0 + v), 0.0, 1.0)


def softmax_int16_params(input_scale: float, beta: float) -> tuple[int, int]:
    """(multiplier, shift) taking an input difference to the exp table's Q(10/65535) input."""
    return quantize_multiplier(float(np.float32(input_scale)) * float(np.float32(beta)) / (10.0 / 65535.0))


def activation_range_int16(activation: str, scale: float) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for 16x8 outputs (zero point 0)."""

    def quantize(v: float) -> int:
        return round_half_away(float(f32(v) / f32(scale)))

    lo, hi = -32768, 32767
    if activation == "NONE":
        return lo, hi
    if activation == "RELU":
        return max(lo, quantize(0.0)), hi
    if activation == "RELU6":
        return max(lo, quantize(0.0)), min(hi, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quantize(-1.0)), min(hi, quantize(1.0))
    raise ValueError(f"fused activation {activation} is not supported for int16")


def dequantize_table(scale: float, zero_point: int) -> np.ndarray:
    """The reference's int8 DEQUANTIZE for all 256 inputs, entry (uint8)q = float32(double(scale) * (q - zp)):
    IEEE double multiplication (Python floats) then rounding to float32, as the reference evaluates it."""
    table = np.zeros(256, np.float32)
    s = float(np.float32(scale))
    for q in range(-128, 128):
        table[q & 0xFF] = np.float32(s * float(q - int(zero_point)))
    return table
