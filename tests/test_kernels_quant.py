"""The host-side quantization arithmetic (measure_agent/plan/quantize.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from measure_agent.plan import quantize as Q


@pytest.mark.parametrize("real", [1e-9, 0.0001234, 0.25, 0.5, 0.7071, 0.999999999, 1.0, 1.5, 3.0, 1000.0])
def test_quantize_multiplier_roundtrip(real):
    m, s = Q.quantize_multiplier(real)
    assert (1 << 30) <= m < (1 << 31)
    assert -31 <= s <= 30
    assert math.isclose(m * 2.0 ** (s - 31), real, rel_tol=1e-9)


def test_quantize_multiplier_edges():
    assert Q.quantize_multiplier(0.0) == (0, 0)
    assert Q.quantize_multiplier(0.5) == (1 << 30, 0)
    assert Q.quantize_multiplier(1.0) == (1 << 30, 1)
    # the mantissa rounds up to 2^31: renormalised
    m, s = Q.quantize_multiplier(1.0 - 2.0 ** -40)
    assert (m, s) == (1 << 30, 1)
    assert Q.quantize_multiplier(1e-12) == (0, 0)  # below 2^-31 * 2^-31: flushed to zero
    with pytest.raises(ValueError):
        Q.quantize_multiplier(-1.0)


def test_round_half_away():
    assert [Q.round_half_away(v) for v in (0.5, 1.5, -0.5, -1.5, 2.4, -2.6)] == [1, 2, -1, -2, 2, -3]


def test_activation_ranges():
    assert Q.activation_range_int8("NONE", 0.1, 3) == (-128, 127)
    assert Q.activation_range_int8("RELU", 0.1, -10) == (-10, 127)
    assert Q.activation_range_int8("RELU6", 0.05, -128) == (-128, -8)
    assert Q.activation_range_int8("RELU6", 0.01, -128) == (-128, 127)
    assert Q.activation_range_float("RELU6") == (0.0, 6.0)
    with pytest.raises(ValueError):
        Q.activation_range_int8("TANH", 0.1, 0)


def test_conv_multipliers_per_tensor_and_per_channel():
    m, s = Q.conv_multipliers(0.5, np.array([0.01], np.float32), 0.25, 3)
    assert m.shape == (3,) and len(set(m.tolist())) == 1
    m, s = Q.conv_multipliers(0.5, np.array([0.01, 0.02], np.float32), 0.25, 2)
    assert m[0] == m[1] and s[1] == s[0] + 1
    with pytest.raises(ValueError):
        Q.conv_multipliers(0.5, np.array([0.01, 0.02], np.float32), 0.25, 3)


def test_softmax_and_logistic_params():
    m, shift, diff_min = Q.softmax_params(0.1, 1.0)
    assert shift >= 0 and diff_min < 0
    assert diff_min == -math.floor(31 * 2.0 ** 26 / 2.0 ** shift)  # CalculateInputRadius(5, shift)
    assert (m, shift, diff_min) == (1717986918, 23, -248)
    m, shift, radius = Q.logistic_params(0.1)
    assert radius > 0 and shift >= 0


def test_mean_params_fold_the_count():
    m, s = Q.mean_params(0.1, 0.1, 36)
    assert math.isclose(m * 2.0 ** (s - 31), 1.0 / 36, rel_tol=1e-6)


def test_float_bits():
    assert Q.float_bits(1.0) == 0x3F800000
    assert Q.float_bits(-math.inf) == np.array([-np.inf], np.float32).view(np.int32)[0]
