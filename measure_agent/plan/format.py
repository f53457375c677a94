"""Constants of the binary plan, mirrored from the firmware's C headers (see FORMAT.md).

``firmware/runtime/plan_format.h`` (layout, dtypes, op kinds, parameter layouts, limits) and
``firmware/runtime/executor.h`` (status codes) are the source of truth; ``tests/test_plan_format_sync.py``
parses them and checks that everything here matches exactly.
"""

from __future__ import annotations

MAGIC = 0x4C504E4E          # "NNPL" little-endian
VERSION = 4
HEADER_BYTES = 64
TENSOR_BYTES = 32
OP_BYTES = 20
NONE = 0xFFFF               # absent optional tensor id
MAX_OP_INPUTS = 16
LAYER_STATE_BYTES = 224     # per-layer state the executor keeps at the end of the arena
MAX_TAPS = 1 << 20          # products per output (a sanity bound: int32 sums wrap as the reference's)
CONST_ALIGN = 8             # every constant starts 8-byte aligned
ARENA_ALIGN = 16            # planned tensors, scratch and layer state each start 16-byte aligned

DTYPES = {"int8": 1, "int16": 2, "int32": 3, "float32": 4, "uint8": 5, "int64": 6}
DTYPE_SIZE = {"int8": 1, "int16": 2, "int32": 4, "float32": 4, "uint8": 1, "int64": 8}
LOC_ARENA, LOC_CONST = 0, 1
# CONV_S8 filter layouts (enum nn_filter_layout): TFLite's OHWI int8, or int16 pairs in the order
# conv2d_s8_simd's dot products read them (SIMD plans only; lower/conv.py pair_filter)
FILTER_LAYOUTS = {"ohwi": 0, "s16_pairs": 1}
# FC_S8 weight layouts (enum nn_fc_weights_layout): TFLite's (O, I) int8, or the same bytes rearranged into the
# stream fully_connected_s8_simd reads (SIMD plans only; lower/fully_connected.py quad_weights)
FC_WEIGHTS_LAYOUTS = {"oi": 0, "quads": 1}

OP_KINDS = {
    "CONV_S8": 1, "DWCONV_S8": 2, "FC_S8": 3, "AVGPOOL_S8": 4, "MAXPOOL_S8": 5, "ADD_S8": 6, "MUL_S8": 7,
    "SOFTMAX_S8": 8, "LOGISTIC_S8": 9, "REQUANT_S8": 10, "MEAN_S8": 11, "QUANTIZE_F32_S8": 12,
    "DEQUANTIZE_S8_F32": 13, "LUT_S8": 15, "COPY": 20, "PAD": 21, "CONCAT": 22, "CONV_F32": 30, "DWCONV_F32": 31,
    "FC_F32": 32, "AVGPOOL_F32": 33, "MAXPOOL_F32": 34, "ADD_F32": 35, "MUL_F32": 36, "SOFTMAX_F32": 37,
    "LOGISTIC_F32": 38, "CLAMP_F32": 39, "MEAN_F32": 40, "SUB_F32": 41, "TANH_F32": 42, "FC_HYBRID": 50,
    "CONV_HYBRID": 51, "DWCONV_HYBRID": 52, "CONV_S16": 60, "DWCONV_S16": 61, "FC_S16": 62, "ADD_S16": 63,
    "SOFTMAX_S16": 64, "AVGPOOL_S16": 65, "MAXPOOL_S16": 66, "QUANTIZE_F32_S16": 67, "DEQUANTIZE_S16_F32": 68,
    "MEAN_S16": 69,
}

# Parameter words of each op kind, by name, in plan order (floats are passed as their IEEE-754 bits).
_CONV = ("stride_w", "stride_h", "pad_w", "pad_h", "dil_w", "dil_h")
_POOL = ("stride_w", "stride_h", "pad_w", "pad_h", "filter_w", "filter_h", "act_min", "act_max")
_ACT_F32 = ("act_min", "act_max")
_QUANT = ("scale", "zero_point")
_ADD = ("a_offset", "b_offset", "out_zp", "a_mult", "a_shift", "b_mult", "b_shift", "out_mult", "out_shift",
        "left_shift", "act_min", "act_max")
PARAM_LAYOUTS: dict[str, tuple[str, ...]] = {
    "CONV_S8": _CONV + ("input_offset", "output_zp", "act_min", "act_max", "filter_layout"),
    "DWCONV_S8": _CONV + ("input_offset", "output_zp", "act_min", "act_max", "depth_multiplier"),
    "FC_S8": ("input_offset", "output_zp", "act_min", "act_max", "weights_layout"),
    "AVGPOOL_S8": _POOL,
    "MAXPOOL_S8": _POOL,
    "ADD_S8": _ADD,
    "MUL_S8": ("a_offset", "b_offset", "out_zp", "out_mult", "out_shift", "act_min", "act_max"),
    "SOFTMAX_S8": ("input_mult", "input_left_shift", "diff_min"),
    "LOGISTIC_S8": ("input_zp", "input_range_radius", "input_mult", "input_left_shift"),
    "REQUANT_S8": ("input_zp", "output_zp", "mult", "shift", "act_min", "act_max"),
    "MEAN_S8": ("input_zp", "output_zp", "mult", "shift", "axes"),
    "QUANTIZE_F32_S8": _QUANT,
    "DEQUANTIZE_S8_F32": _QUANT,
    "LUT_S8": (),
    "COPY": (),
    "PAD": ("before_n", "before_h", "before_w", "before_c", "value"),
    "CONCAT": ("axis",),
    "CONV_F32": _CONV + ("act_min", "act_max"),
    "DWCONV_F32": _CONV + ("act_min", "act_max", "depth_multiplier"),
    "FC_F32": _ACT_F32,
    "AVGPOOL_F32": _POOL,
    "MAXPOOL_F32": _POOL,
    "ADD_F32": _ACT_F32,
    "MUL_F32": _ACT_F32,
    "SOFTMAX_F32": ("beta",),
    "LOGISTIC_F32": (),
    "CLAMP_F32": ("lo", "hi"),
    "MEAN_F32": ("axes",),
    "SUB_F32": _ACT_F32,
    "TANH_F32": (),
    "FC_HYBRID": ("per_channel", "asymmetric_inputs", "act_min", "act_max"),
    "CONV_HYBRID": _CONV + ("act_min", "act_max", "per_channel"),
    "DWCONV_HYBRID": _CONV + ("act_min", "act_max", "per_channel", "depth_multiplier"),
    "CONV_S16": _CONV + ("input_offset", "output_zp", "act_min", "act_max"),
    "DWCONV_S16": _CONV + ("input_offset", "output_zp", "act_min", "act_max", "depth_multiplier"),
    "FC_S16": ("input_offset", "output_zp", "act_min", "act_max"),
    "ADD_S16": _ADD,
    "SOFTMAX_S16": ("input_mult", "input_left_shift"),
    "AVGPOOL_S16": _POOL,
    "MAXPOOL_S16": _POOL,
    "QUANTIZE_F32_S16": _QUANT,
    "DEQUANTIZE_S16_F32": _QUANT,
    "MEAN_S16": ("input_zp", "output_zp", "mult", "shift", "axes"),
}

STATUS = {0: "NN_OK", 1: "NN_ERR_BAD_PLAN", 2: "NN_ERR_VERSION", 3: "NN_ERR_ARENA_TOO_SMALL",
          4: "NN_ERR_UNSUPPORTED_OP", 5: "NN_ERR_BAD_INDEX", 6: "NN_ERR_BAD_SIZE", 7: "NN_ERR_NOT_LOADED",
          8: "NN_ERR_FILTER_LAYOUT"}

# Runtime variants: the firmware / host library is built with NN_SIMD=0 or 1.
VARIANTS = {"reference": 0, "simd": 1}
