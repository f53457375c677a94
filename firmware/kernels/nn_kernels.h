/*
 * Kernel interface. One kernel per file, file and function named <op>_<type>_<variant>:
 *   type    s8 (int8), s16 (int16 activations, int8 weights: 16x8), f32 (float32), hybrid (float32
 *           activations, int8 weights), any (layout-only, any element type), or <from>_<to> for conversions
 *           (quantize_f32_s8, dequantize_s8_f32, quantize_f32_s16, dequantize_s16_f32);
 *   variant ref (portable reference) or simd (Armv7E-M DSP; portable emulation elsewhere).
 * The runtime's ops call the kernels with a SIMD variant through nn_wrappers.h, which picks the variant.
 * No kernel keeps state between calls; everything it needs comes in through the arguments. Shapes are NHWC;
 * filters are OHWI (conv, FC rows), 1HWO (depthwise). Per-channel requantization: multiplier (Q31) and shift
 * (positive = left) per output channel.
 */
#ifndef NN_KERNELS_H
#define NN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* A kernel's cold code (border fills, remainders, per-call setup, the exact fallback requantizations): kept out
 * of line and compiled for size, so the hot loops keep their inlining and the image stays small. */
#if defined(__GNUC__) && !defined(__clang__)
#define NN_COLD __attribute__((noinline, cold))
#else
#define NN_COLD __attribute__((noinline))
#endif
/* A kernel's per-call setup, run unconditionally (so not `cold`: that would make the whole caller cold): out of
 * line and compiled for size. */
#if defined(__GNUC__) && !defined(__clang__)
#define NN_SETUP __attribute__((noinline, optimize("Os")))
#else
#define NN_SETUP __attribute__((noinline))
#endif
/* A kernel run once per inference on a few elements (softmax): compiled for size. */
#if defined(__GNUC__) && !defined(__clang__)
#define NN_SMALL __attribute__((optimize("Os")))
#else
#define NN_SMALL
#endif

typedef struct {
    int32_t n, h, w, c;
} nn_dims;

typedef struct {
    int32_t stride_w, stride_h, pad_w, pad_h, dil_w, dil_h;
    int32_t depth_multiplier;                /* depthwise only */
    int32_t input_offset, output_offset;     /* -input zero point, +output zero point (int8) */
    int32_t act_min, act_max;                /* int8 clamp */
    float act_min_f, act_max_f;              /* float clamp */
    int32_t filter_pairs;                    /* conv int8: the filter in conv2d_s8_simd's int16 pair layout */
} nn_conv_params;

typedef struct {
    int32_t stride_w, stride_h, pad_w, pad_h, filter_w, filter_h;
    int32_t act_min, act_max;
    float act_min_f, act_max_f;
} nn_pool_params;

typedef struct {
    int32_t input_offset, output_offset, act_min, act_max;
    float act_min_f, act_max_f;
    int32_t asymmetric_inputs;               /* hybrid only */
    int32_t weights_quads;                   /* int8: the weights in fully_connected_s8_simd's quads layout */
} nn_fc_params;

/* Elementwise binary op with 4-D broadcasting: element strides per input (0 where broadcast). */
typedef struct {
    int32_t out_dims[4];
    int32_t in1_strides[4], in2_strides[4];
    int32_t input1_offset, input2_offset, output_offset;
    int32_t input1_multiplier, input1_shift, input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift, left_shift;
    int32_t act_min, act_max;
    float act_min_f, act_max_f;
} nn_binary_params;

/* ---- int8 reference ---- */
void conv2d_s8_ref(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                   const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                   const nn_dims *out_d, int8_t *out);
void depthwise_conv2d_s8_ref(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                             const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                             const nn_dims *out_d, int8_t *out);
void fully_connected_s8_ref(const nn_fc_params *p, int32_t batches, int32_t in_len, const int8_t *in,
                            int32_t out_len, const int8_t *weights, const int32_t *bias, const int32_t *mult,
                            const int32_t *shift, int8_t *out);
void avgpool_s8_ref(const nn_pool_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *out_d, int8_t *out);
void maxpool_s8_ref(const nn_pool_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *out_d, int8_t *out);
void add_s8_ref(const nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void mul_s8_ref(const nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void softmax_s8_ref(int32_t rows, int32_t depth, int32_t input_multiplier, int32_t input_left_shift,
                    int32_t diff_min, const int8_t *in, int8_t *out);
void logistic_s8_ref(int32_t size, int32_t input_zero_point, int32_t input_range_radius, int32_t input_multiplier,
                     int32_t input_left_shift, const int8_t *in, int8_t *out);
void requantize_s8_ref(int32_t size, int32_t input_zero_point, int32_t output_zero_point, int32_t multiplier,
                       int32_t shift, int32_t act_min, int32_t act_max, const int8_t *in, int8_t *out);
/* MEAN over the 4-D axes set in `axes` (bit k: axis k of n, h, w, c); multiplier/shift include 1/count. */
void mean_s8_ref(const nn_dims *in_d, uint32_t axes, const int8_t *in, int32_t input_zero_point,
                 int32_t output_zero_point, int32_t multiplier, int32_t shift, int8_t *out);
/* out[i] = table[(uint8_t)in[i]]: int8 -> int8 functions tabulated on the host (TANH). */
void lut_s8_ref(int32_t size, const int8_t *table, const int8_t *in, int8_t *out);
void quantize_f32_s8_ref(int32_t size, float scale, int32_t zero_point, const float *in, int8_t *out);
/* table[(uint8_t)q]: the dequantized value of every int8 q, tabulated on the host */
void dequantize_s8_f32_ref(int32_t size, const float *table, const int8_t *in, float *out);

/* ---- int8 Armv7E-M SIMD (portable emulation on hosts without the DSP extension) ---- */
size_t conv2d_s8_simd_scratch_bytes(const nn_conv_params *p, const nn_dims *f_d, const nn_dims *out_d);
void conv2d_s8_simd(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                    const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                    const nn_dims *out_d, int8_t *out, int16_t *scratch);
size_t depthwise_conv2d_s8_simd_scratch_bytes(const nn_conv_params *p, const nn_dims *f_d, const nn_dims *out_d);
void depthwise_conv2d_s8_simd(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                              const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                              const nn_dims *out_d, int8_t *out, int8_t *scratch);
size_t add_s8_simd_scratch_bytes(void);
void add_s8_simd(const nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int32_t *scratch);
void avgpool_s8_simd(const nn_pool_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *out_d, int8_t *out);
size_t fully_connected_s8_simd_scratch_bytes(int32_t in_len);
/* Whether fully_connected_s8_simd can run a layer in the quads layout exactly (the input offset and every
 * channel's shift in the range of its arithmetic). */
int fully_connected_s8_simd_quads_ok(const nn_fc_params *p, const int32_t *shift, int32_t out_len);
void fully_connected_s8_simd(const nn_fc_params *p, int32_t batches, int32_t in_len, const int8_t *in,
                             int32_t out_len, const int8_t *weights, const int32_t *bias, const int32_t *mult,
                             const int32_t *shift, int8_t *out, int16_t *scratch);

/* ---- layout-only ops (any element type), reference ---- */
void pad_any_ref(const int32_t in_dims[4], const int32_t pad_before[4], const int32_t out_dims[4], int32_t elem_bytes,
                 const uint8_t *pad_value, const uint8_t *in, uint8_t *out);
void concatenation_any_ref(int32_t outer, int32_t num_inputs, const uint8_t *const *inputs, const int32_t *inner_bytes,
                           uint8_t *out);
void copy_any_ref(int32_t bytes, const uint8_t *in, uint8_t *out);

/* ---- float32 reference ---- */
void conv2d_f32_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                    const float *filter, const float *bias, const nn_dims *out_d, float *out);
void depthwise_conv2d_f32_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                              const float *filter, const float *bias, const nn_dims *out_d, float *out);
void fully_connected_f32_ref(const nn_fc_params *p, int32_t batches, int32_t in_len, const float *in, int32_t out_len,
                             const float *weights, const float *bias, float *out);
void avgpool_f32_ref(const nn_pool_params *p, const nn_dims *in_d, const float *in, const nn_dims *out_d, float *out);
void maxpool_f32_ref(const nn_pool_params *p, const nn_dims *in_d, const float *in, const nn_dims *out_d, float *out);
void add_f32_ref(const nn_binary_params *p, const float *in1, const float *in2, float *out);
void mul_f32_ref(const nn_binary_params *p, const float *in1, const float *in2, float *out);
void softmax_f32_ref(int32_t rows, int32_t depth, float beta, const float *in, float *out);
void logistic_f32_ref(int32_t size, const float *in, float *out);
void clamp_f32_ref(int32_t size, float lo, float hi, const float *in, float *out);
void mean_f32_ref(const nn_dims *in_d, uint32_t axes, const float *in, float *out);
void sub_f32_ref(const nn_binary_params *p, const float *in1, const float *in2, float *out);
void tanh_f32_ref(int32_t size, const float *in, float *out);

/* ---- hybrid: int8 weights, float activations (dynamic-range quantization), reference ---- */
void fully_connected_hybrid_ref(const nn_fc_params *p, int32_t batches, int32_t in_len, const float *in,
                                int32_t out_len, const int8_t *weights, const float *weight_scales,
                                int32_t per_channel, const float *bias, float *out, int8_t *scratch);
void conv2d_hybrid_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                       const int8_t *filter, const float *weight_scales, int32_t per_channel, const float *bias,
                       const nn_dims *out_d, float *out, int8_t *scratch);
void depthwise_conv2d_hybrid_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                                 const int8_t *filter, const float *weight_scales, int32_t per_channel,
                                 const float *bias, const nn_dims *out_d, float *out, int8_t *scratch);

/* ---- 16x8: int16 activations (zero point 0), int8 weights, int64 bias, reference ---- */
void conv2d_s16_ref(const nn_conv_params *p, const nn_dims *in_d, const int16_t *in, const nn_dims *f_d,
                    const int8_t *filter, const int64_t *bias, const int32_t *mult, const int32_t *shift,
                    const nn_dims *out_d, int16_t *out);
void depthwise_conv2d_s16_ref(const nn_conv_params *p, const nn_dims *in_d, const int16_t *in, const nn_dims *f_d,
                              const int8_t *filter, const int64_t *bias, const int32_t *mult, const int32_t *shift,
                              const nn_dims *out_d, int16_t *out);
void fully_connected_s16_ref(const nn_fc_params *p, int32_t batches, int32_t in_len, const int16_t *in,
                             int32_t out_len, const int8_t *weights, const int64_t *bias, const int32_t *mult,
                             const int32_t *shift, int16_t *out);
void add_s16_ref(const nn_binary_params *p, const int16_t *in1, const int16_t *in2, int16_t *out);
/* exp_lut / one_over_lut: 513 entries each, generated on the host as the reference's Prepare does */
void softmax_s16_ref(int32_t rows, int32_t depth, int32_t input_multiplier, int32_t input_left_shift,
                     const int16_t *exp_lut, const int16_t *one_over_lut, const int16_t *in, int16_t *out);
void avgpool_s16_ref(const nn_pool_params *p, const nn_dims *in_d, const int16_t *in, const nn_dims *out_d,
                     int16_t *out);
void maxpool_s16_ref(const nn_pool_params *p, const nn_dims *in_d, const int16_t *in, const nn_dims *out_d,
                     int16_t *out);
void mean_s16_ref(const nn_dims *in_d, uint32_t axes, const int16_t *in, int32_t input_zero_point,
                  int32_t output_zero_point, int32_t multiplier, int32_t shift, int16_t *out);
void quantize_f32_s16_ref(int32_t size, float scale, int32_t zero_point, const float *in, int16_t *out);
void dequantize_s16_f32_ref(int32_t size, float scale, int32_t zero_point, const int16_t *in, float *out);

#endif /* NN_KERNELS_H */
