/*
 * Binary plan layout constants (measure_agent/plan/FORMAT.md). measure_agent/plan/format.py mirrors every
 * constant, op kind and parameter layout here; tests/test_plan_format_sync.py parses this file to check it.
 */
#ifndef NN_PLAN_FORMAT_H
#define NN_PLAN_FORMAT_H

#define NN_PLAN_MAGIC 0x4C504E4Eu /* "NNPL" little-endian */
#define NN_PLAN_VERSION 4u
#define NN_PLAN_HEADER_BYTES 64u
#define NN_PLAN_TENSOR_BYTES 32u
#define NN_PLAN_OP_BYTES 20u
#define NN_PLAN_NONE 0xFFFFu     /* absent optional tensor id */
#define NN_MAX_OP_INPUTS 16u
/* Per-layer state the executor keeps in the arena (prepared once in nn_load); the compiler reserves
 * num_ops x this at the end of the arena. Sized for 64-bit hosts; every op's state is checked to fit. */
#define NN_LAYER_STATE_BYTES 224u

/* Limits the compiler respects and nn_load enforces. */
#define NN_MAX_TAPS (1 << 20)     /* products per output (a sanity bound: int32 sums wrap as the reference's) */

enum nn_dtype { NN_DT_INT8 = 1, NN_DT_INT16 = 2, NN_DT_INT32 = 3, NN_DT_FLOAT32 = 4, NN_DT_UINT8 = 5, NN_DT_INT64 = 6 };
enum nn_location { NN_LOC_ARENA = 0, NN_LOC_CONST = 1 };
/* CONV_S8 filters: TFLite's OHWI int8, or (SIMD plans, input channels a multiple of 4) int16 pairs in the order
 * conv2d_s8_simd's dot products read them, an int16 tensor (ceil(OC / 2), KH, KW, 2 x IC) (FORMAT.md). */
enum nn_filter_layout { NN_FILTER_OHWI = 0, NN_FILTER_S16_PAIRS = 1 };
/* FC_S8 weights: TFLite's (O, I) int8, or (SIMD plans, I a multiple of 4) the same bytes rearranged into the stream
 * fully_connected_s8_simd reads, rows in quads as int16 lanes 256 x q + p (FORMAT.md). */
enum nn_fc_weights_layout { NN_FC_WEIGHTS_OI = 0, NN_FC_WEIGHTS_QUADS = 1 };

enum nn_op_kind {
    NN_OP_CONV_S8 = 1,
    NN_OP_DWCONV_S8 = 2,
    NN_OP_FC_S8 = 3,
    NN_OP_AVGPOOL_S8 = 4,
    NN_OP_MAXPOOL_S8 = 5,
    NN_OP_ADD_S8 = 6,
    NN_OP_MUL_S8 = 7,
    NN_OP_SOFTMAX_S8 = 8,
    NN_OP_LOGISTIC_S8 = 9,
    NN_OP_REQUANT_S8 = 10,
    NN_OP_MEAN_S8 = 11,
    NN_OP_QUANTIZE_F32_S8 = 12,
    NN_OP_DEQUANTIZE_S8_F32 = 13,
    NN_OP_LUT_S8 = 15,
    NN_OP_COPY = 20,
    NN_OP_PAD = 21,
    NN_OP_CONCAT = 22,
    NN_OP_CONV_F32 = 30,
    NN_OP_DWCONV_F32 = 31,
    NN_OP_FC_F32 = 32,
    NN_OP_AVGPOOL_F32 = 33,
    NN_OP_MAXPOOL_F32 = 34,
    NN_OP_ADD_F32 = 35,
    NN_OP_MUL_F32 = 36,
    NN_OP_SOFTMAX_F32 = 37,
    NN_OP_LOGISTIC_F32 = 38,
    NN_OP_CLAMP_F32 = 39,
    NN_OP_MEAN_F32 = 40,
    NN_OP_SUB_F32 = 41,
    NN_OP_TANH_F32 = 42,
    NN_OP_FC_HYBRID = 50,
    NN_OP_CONV_HYBRID = 51,
    NN_OP_DWCONV_HYBRID = 52,
    NN_OP_CONV_S16 = 60,
    NN_OP_DWCONV_S16 = 61,
    NN_OP_FC_S16 = 62,
    NN_OP_ADD_S16 = 63,
    NN_OP_SOFTMAX_S16 = 64,
    NN_OP_AVGPOOL_S16 = 65,
    NN_OP_MAXPOOL_S16 = 66,
    NN_OP_QUANTIZE_F32_S16 = 67,
    NN_OP_DEQUANTIZE_S16_F32 = 68,
    NN_OP_MEAN_S16 = 69
};

/*
 * Parameter layouts: NN_<LAYOUT>_P_<NAME> is the index of a parameter word in an op's params, and
 * NN_<LAYOUT>_P_COUNT the exact word count. A layout that starts at another layout's COUNT extends it.
 * Floats are IEEE-754 single bit patterns; offsets are -zero_point. The op table (runtime/ops/op_table.c)
 * says which layout each op kind uses.
 */

/* first six words of every convolution */
enum { NN_CONV_P_STRIDE_W, NN_CONV_P_STRIDE_H, NN_CONV_P_PAD_W, NN_CONV_P_PAD_H, NN_CONV_P_DIL_W, NN_CONV_P_DIL_H,
       NN_CONV_P_COUNT };
/* CONV_S16 (int16 bounds; 16x8 inputs have zero point 0), the start of CONV_S8 and DWCONV_S8 */
enum { NN_CONV_S8_P_INPUT_OFFSET = NN_CONV_P_COUNT, NN_CONV_S8_P_OUTPUT_ZP, NN_CONV_S8_P_ACT_MIN,
       NN_CONV_S8_P_ACT_MAX, NN_CONV_S8_P_COUNT };
/* CONV_S8: + the filter's layout (enum nn_filter_layout) */
enum { NN_CONV2D_S8_P_FILTER_LAYOUT = NN_CONV_S8_P_COUNT, NN_CONV2D_S8_P_COUNT };
/* DWCONV_S8, DWCONV_S16 */
enum { NN_DWCONV_S8_P_DEPTH_MULTIPLIER = NN_CONV_S8_P_COUNT, NN_DWCONV_S8_P_COUNT };
/* CONV_F32 */
enum { NN_CONV_F32_P_ACT_MIN = NN_CONV_P_COUNT, NN_CONV_F32_P_ACT_MAX, NN_CONV_F32_P_COUNT };
/* DWCONV_F32 */
enum { NN_DWCONV_F32_P_DEPTH_MULTIPLIER = NN_CONV_F32_P_COUNT, NN_DWCONV_F32_P_COUNT };
/* CONV_HYBRID */
enum { NN_CONV_HYBRID_P_ACT_MIN = NN_CONV_P_COUNT, NN_CONV_HYBRID_P_ACT_MAX, NN_CONV_HYBRID_P_PER_CHANNEL,
       NN_CONV_HYBRID_P_COUNT };
/* DWCONV_HYBRID */
enum { NN_DWCONV_HYBRID_P_DEPTH_MULTIPLIER = NN_CONV_HYBRID_P_COUNT, NN_DWCONV_HYBRID_P_COUNT };
/* FC_S16, the start of FC_S8 */
enum { NN_FC_P_INPUT_OFFSET, NN_FC_P_OUTPUT_ZP, NN_FC_P_ACT_MIN, NN_FC_P_ACT_MAX, NN_FC_P_COUNT };
/* FC_S8: + the weights' layout (enum nn_fc_weights_layout) */
enum { NN_FC_S8_P_WEIGHTS_LAYOUT = NN_FC_P_COUNT, NN_FC_S8_P_COUNT };
/* FC_HYBRID */
enum { NN_FC_HYBRID_P_PER_CHANNEL, NN_FC_HYBRID_P_ASYMMETRIC_INPUTS, NN_FC_HYBRID_P_ACT_MIN, NN_FC_HYBRID_P_ACT_MAX,
       NN_FC_HYBRID_P_COUNT };
/* AVGPOOL_S8, MAXPOOL_S8 (int8 bounds), AVGPOOL_S16, MAXPOOL_S16 (int16 bounds), AVGPOOL_F32, MAXPOOL_F32
 * (float bounds) */
enum { NN_POOL_P_STRIDE_W, NN_POOL_P_STRIDE_H, NN_POOL_P_PAD_W, NN_POOL_P_PAD_H, NN_POOL_P_FILTER_W,
       NN_POOL_P_FILTER_H, NN_POOL_P_ACT_MIN, NN_POOL_P_ACT_MAX, NN_POOL_P_COUNT };
/* ADD_S8, ADD_S16 (left_shift 20 / 15; SUB is an ADD with the b multiplier negated) */
enum { NN_ADD_S8_P_A_OFFSET, NN_ADD_S8_P_B_OFFSET, NN_ADD_S8_P_OUT_ZP, NN_ADD_S8_P_A_MULT, NN_ADD_S8_P_A_SHIFT,
       NN_ADD_S8_P_B_MULT, NN_ADD_S8_P_B_SHIFT, NN_ADD_S8_P_OUT_MULT, NN_ADD_S8_P_OUT_SHIFT, NN_ADD_S8_P_LEFT_SHIFT,
       NN_ADD_S8_P_ACT_MIN, NN_ADD_S8_P_ACT_MAX, NN_ADD_S8_P_COUNT };
/* MUL_S8 */
enum { NN_MUL_S8_P_A_OFFSET, NN_MUL_S8_P_B_OFFSET, NN_MUL_S8_P_OUT_ZP, NN_MUL_S8_P_OUT_MULT, NN_MUL_S8_P_OUT_SHIFT,
       NN_MUL_S8_P_ACT_MIN, NN_MUL_S8_P_ACT_MAX, NN_MUL_S8_P_COUNT };
/* FC_F32, ADD_F32, SUB_F32, MUL_F32: float activation bounds only */
enum { NN_ACT_F32_P_ACT_MIN, NN_ACT_F32_P_ACT_MAX, NN_ACT_F32_P_COUNT };
/* SOFTMAX_S8 */
enum { NN_SOFTMAX_S8_P_INPUT_MULT, NN_SOFTMAX_S8_P_INPUT_LEFT_SHIFT, NN_SOFTMAX_S8_P_DIFF_MIN, NN_SOFTMAX_S8_P_COUNT };
/* SOFTMAX_F32 */
enum { NN_SOFTMAX_F32_P_BETA, NN_SOFTMAX_F32_P_COUNT };
/* LOGISTIC_S8 */
enum { NN_LOGISTIC_S8_P_INPUT_ZP, NN_LOGISTIC_S8_P_INPUT_RANGE_RADIUS, NN_LOGISTIC_S8_P_INPUT_MULT,
       NN_LOGISTIC_S8_P_INPUT_LEFT_SHIFT, NN_LOGISTIC_S8_P_COUNT };
/* REQUANT_S8 */
enum { NN_REQUANT_S8_P_INPUT_ZP, NN_REQUANT_S8_P_OUTPUT_ZP, NN_REQUANT_S8_P_MULT, NN_REQUANT_S8_P_SHIFT,
       NN_REQUANT_S8_P_ACT_MIN, NN_REQUANT_S8_P_ACT_MAX, NN_REQUANT_S8_P_COUNT };
/* CLAMP_F32 */
enum { NN_CLAMP_F32_P_LO, NN_CLAMP_F32_P_HI, NN_CLAMP_F32_P_COUNT };
/* MEAN_S8, MEAN_S16: over the 4-D axes of the bitmask `axes` (bit k = axis k of N, H, W, C); 1/(reduced elements)
 * folded into mult/shift */
enum { NN_MEAN_S8_P_INPUT_ZP, NN_MEAN_S8_P_OUTPUT_ZP, NN_MEAN_S8_P_MULT, NN_MEAN_S8_P_SHIFT, NN_MEAN_S8_P_AXES,
       NN_MEAN_S8_P_COUNT };
/* MEAN_F32 */
enum { NN_MEAN_F32_P_AXES, NN_MEAN_F32_P_COUNT };
/* SOFTMAX_S16 (inputs x, exp table, 1/(1+x) table: 513 int16 each) */
enum { NN_SOFTMAX_S16_P_INPUT_MULT, NN_SOFTMAX_S16_P_INPUT_LEFT_SHIFT, NN_SOFTMAX_S16_P_COUNT };
/* QUANTIZE_F32_S8, DEQUANTIZE_S8_F32, QUANTIZE_F32_S16, DEQUANTIZE_S16_F32 */
enum { NN_QUANT_P_SCALE, NN_QUANT_P_ZERO_POINT, NN_QUANT_P_COUNT };
/* PAD: elements before each 4-D axis, then the pad value (raw element bits) */
enum { NN_PAD_P_BEFORE_N, NN_PAD_P_BEFORE_H, NN_PAD_P_BEFORE_W, NN_PAD_P_BEFORE_C, NN_PAD_P_VALUE, NN_PAD_P_COUNT };
/* CONCAT: axis in 4-D numbering */
enum { NN_CONCAT_P_AXIS, NN_CONCAT_P_COUNT };
/* COPY, LOGISTIC_F32, TANH_F32, LUT_S8 (inputs x, table int8[256]) */
enum { NN_NO_P_COUNT };

#endif
