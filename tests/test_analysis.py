"""Model analysis: MACs and parameters against values derived by hand."""

from __future__ import annotations

import pytest

from costmodel.analysis import alignment_class, analyze
from costmodel.boards import get_board
from costmodel.errors import ModelError
from costmodel.tflite import read_model
from tests.conftest import cached_tflite


def convert(key: str, make_model, quantization: str = "int8") -> bytes:
    def build() -> bytes:
        from costmodel.convert import keras_to_tflite

        return keras_to_tflite(make_model(), quantization)

    return cached_tflite(f"analysis-v2-{key}-{quantization}", build)


def _keras():
    from costmodel.convert import quiet

    with quiet():
        import keras
    return keras


def conv_model():
    k = _keras()
    x = inp = k.Input((10, 10, 3), batch_size=1)
    x = k.layers.Conv2D(6, 3, padding="valid", activation="relu")(x)           # -> 8x8x6
    x = k.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)      # -> 8x8x12
    x = k.layers.Conv2D(5, (1, 3), strides=2, padding="same")(x)                # -> 4x4x5
    x = k.layers.AveragePooling2D(2)(x)                                         # -> 2x2x5
    x = k.layers.Flatten()(x)                                                   # -> 20
    x = k.layers.Dense(7, bias_initializer="ones")(x)                                                # -> 7
    x = k.layers.Softmax()(x)
    return k.Model(inp, x)


def branch_model():
    k = _keras()
    inp = k.Input((6, 6, 4), batch_size=1)
    a = k.layers.Conv2D(4, 1)(inp)                                              # -> 6x6x4
    b = k.layers.MaxPooling2D(3, strides=1, padding="same")(inp)                # -> 6x6x4
    x = k.layers.Add()([a, b])                                                  # -> 6x6x4
    y = k.layers.Multiply()([x, a])                                             # -> 6x6x4
    x = k.layers.Concatenate()([x, y])                                          # -> 6x6x8
    x = k.layers.GlobalAveragePooling2D()(x)                                    # MEAN -> 8
    x = k.layers.Dense(3, activation="sigmoid", bias_initializer="ones")(x)                          # FC + LOGISTIC
    return k.Model(inp, x)


@pytest.fixture(scope="module")
def conv_graph():
    return read_model(convert("conv", conv_model))


@pytest.fixture(scope="module")
def branch_graph():
    return read_model(convert("branch", branch_model))


def by_op(result, op):
    return [layer for layer in result.layers if layer.op == op]


def test_conv_depthwise_pool_dense_by_hand(conv_graph):
    result = analyze(conv_graph)
    conv1, conv2 = by_op(result, "CONV_2D")
    # 3x3 conv, 3 -> 6 channels, valid on 10x10: 8*8 outputs * 6 filters * 3*3*3 MACs
    assert conv1.macs == 8 * 8 * 6 * 27 and conv1.params == 6 * 27 + 6
    assert conv1.features["alignment"] == "odd" and conv1.features["in_channels"] == 3
    (dw,) = by_op(result, "DEPTHWISE_CONV_2D")
    # 3x3 depthwise, multiplier 2: 8*8 outputs * 12 channels * 9
    assert dw.macs == 8 * 8 * 12 * 9 and dw.params == 9 * 12 + 12
    assert dw.features["depth_multiplier"] == 2
    # 1x3 conv stride 2 same, 12 -> 5: 4*4 outputs * 5 * 1*3*12
    assert conv2.macs == 4 * 4 * 5 * 36 and conv2.params == 5 * 36 + 5
    assert conv2.features["alignment"] == "%4" and conv2.features["stride"] == [2, 2]
    (pool,) = by_op(result, "AVERAGE_POOL_2D")
    assert pool.macs == 2 * 2 * 5 * 4 and pool.params == 0
    (fc,) = by_op(result, "FULLY_CONNECTED")
    assert fc.macs == 20 * 7 and fc.params == 20 * 7 + 7
    assert fc.features["input_length"] == 20 and fc.features["input_length_mod16"] == 4
    (softmax,) = by_op(result, "SOFTMAX")
    assert softmax.macs == 7
    assert result.total_params == 168 + 120 + 185 + 147
    assert result.total_macs == sum(layer.macs for layer in result.layers)


def test_flatten_with_static_batch_is_a_single_reshape(conv_graph):
    assert [op.type for op in conv_graph.ops].count("RESHAPE") == 1
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & {op.type for op in conv_graph.ops}


def test_dynamic_batch_flatten_is_folded():
    def model():
        k = _keras()
        inp = k.Input((4, 4, 2))  # dynamic batch: TF emits SHAPE/STRIDED_SLICE/PACK/RESHAPE
        return k.Model(inp, k.layers.Dense(3)(k.layers.Flatten()(inp)))

    graph = read_model(convert("dynamic-flatten", model))
    assert [op.type for op in graph.ops] == ["RESHAPE", "FULLY_CONNECTED"]
    assert analyze(graph).total_macs == 32 * 3


def test_branches_add_mul_concat_mean_logistic(branch_graph):
    result = analyze(branch_graph)
    ops = {layer.op for layer in result.layers}
    assert {"ADD", "MUL", "CONCATENATION", "MEAN", "LOGISTIC", "MAX_POOL_2D"} <= ops
    (pool,) = by_op(result, "MAX_POOL_2D")
    assert pool.macs == 6 * 6 * 4 * 9
    assert by_op(result, "ADD")[0].macs == 144 and by_op(result, "MUL")[0].macs == 144
    assert by_op(result, "CONCATENATION")[0].macs == 0
    assert by_op(result, "MEAN")[0].macs == 6 * 6 * 8
    (fc,) = by_op(result, "FULLY_CONNECTED")
    assert fc.macs == 8 * 3 and fc.params == 27
    assert result.total_params == (4 * 4 + 4) + 27


def test_float_and_dynamic_range_models():
    float_graph = read_model(convert("conv", conv_model, "float32"))
    int8 = analyze(read_model(convert("conv", conv_model)))
    result = analyze(float_graph)
    assert result.total_macs == int8.total_macs and result.total_params == int8.total_params
    assert by_op(result, "FULLY_CONNECTED")[0].weight_bytes == (140 + 7) * 4

    def wide_dense():
        k = _keras()
        inp = k.Input((40,), batch_size=1)
        return k.Model(inp, k.layers.Dense(32, bias_initializer="ones")(inp))

    # TFLite's dynamic-range quantization only quantizes weights of >= 1024 elements: 40 x 32 = 1280
    hybrid = analyze(read_model(convert("wide-dense", wide_dense, "dynamic")))
    (fc,) = by_op(hybrid, "FULLY_CONNECTED")
    assert fc.dtype == "float32" and fc.macs == 1280 and fc.params == 1280 + 32
    assert fc.weight_bytes == 1280 + 32 * 4  # int8 weights, float bias


def test_kws_totals_by_hand(kws_model):
    result = analyze(read_model(kws_model))
    # DS-CNN: 10x4 stride-2 conv 1 -> 64 channels on 49x10 (same padding: 25x5 outputs),
    # four blocks of 3x3 depthwise + 1x1 pointwise 64 -> 64, average pool 25x5, FC 64 -> 12, softmax.
    conv1 = 25 * 5 * 64 * 10 * 4
    block = 25 * 5 * 64 * 9 + 25 * 5 * 64 * 64
    pool, fc, softmax = 25 * 5 * 64, 64 * 12, 12
    assert result.total_macs == conv1 + 4 * block + pool + fc + softmax == 2_664_780
    params = (64 * 40 + 64) + 4 * ((9 * 64 + 64) + (64 * 64 + 64)) + (64 * 12 + 12)
    assert result.total_params == params == 22_604
    assert [layer.op for layer in result.layers].count("DEPTHWISE_CONV_2D") == 4
    # Two 25x5x64 int8 activations live at once
    assert result.peak_ram_bytes == 2 * 25 * 5 * 64


def test_ad_model_totals(ad_model):
    result = analyze(read_model(ad_model))
    widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    assert result.total_macs == sum(a * b for a, b in zip(widths, widths[1:]))
    assert result.total_params == sum(a * b + b for a, b in zip(widths, widths[1:]))


def test_fit_check_marks_oversized(ad_model):
    small = analyze(read_model(ad_model), get_board("NUCLEO-G071RB"))
    big = analyze(read_model(ad_model), get_board("NUCLEO-L4R5ZI"))
    assert small.fits["fits"] is False and small.fits["flash"] is False
    assert big.fits["fits"] is True
    assert small.fits["flash_needed"] > 265_864  # at least the int8 weights


@pytest.mark.parametrize("n, expected", [(3, "odd"), (6, "even"), (8, "%4"), (16, "%4"), (1, "odd")])
def test_alignment_class(n, expected):
    assert alignment_class(n) == expected


def test_unsupported_op_names_the_op_and_layer():
    def model():
        k = _keras()
        inp = k.Input((8,), batch_size=1)
        return k.Model(inp, k.ops.exp(k.layers.Dense(4)(inp)))

    graph = read_model(convert("exp", model, "float32"))
    with pytest.raises(ModelError, match=r"unsupported op EXP at layer 1"):
        analyze(graph)
