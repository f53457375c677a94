/*
 * Kernel wrappers (in the style of CMSIS-NN's *_wrapper_* functions) for the ops that have a SIMD kernel:
 * each wrapper runs the kernel of the build's variant (NN_SIMD=1: Armv7E-M SIMD, else the reference), owns
 * that kernel's scratch rule and names the kernel it runs. The runtime's ops call these, never a variant
 * directly. Mirrored on the host by measure_agent/plan/kernels.py (names and scratch sizes must agree).
 * static inline: the wrapper adds no call inside a layer's timed region.
 */
#ifndef NN_WRAPPERS_H
#define NN_WRAPPERS_H

#include "nn_kernels.h"

#ifndef NN_SIMD
#define NN_SIMD 0
#endif

/* ---- CONV_2D int8 ---- */
static inline const char *conv2d_s8_wrapper_kernel(const nn_dims *f_d)
{
    (void)f_d;
    return NN_SIMD ? "conv2d_s8_simd" : "conv2d_s8_ref";
}

/* Whether the kernel reads filters in the int16 pair layout (nn_conv_params.filter_pairs): the SIMD one only. */
static inline int conv2d_s8_wrapper_reads_pairs(void) { return NN_SIMD; }

/* Scratch bytes at the op's scratch offset: the SIMD kernel's im2col columns, requantization table and
 * accumulators (and repacked weights for input channels not a multiple of 4); the reference needs none. */
static inline size_t conv2d_s8_wrapper_scratch_bytes(const nn_conv_params *p, const nn_dims *f_d,
                                                     const nn_dims *out_d)
{
#if NN_SIMD
    return conv2d_s8_simd_scratch_bytes(p, f_d, out_d);
#else
    (void)p;
    (void)f_d;
    (void)out_d;
    return 0;
#endif
}

static inline void conv2d_s8_wrapper(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                                     const int8_t *filter, const int32_t *bias, const int32_t *mult,
                                     const int32_t *shift, const nn_dims *out_d, int8_t *out, int16_t *scratch)
{
#if NN_SIMD
    conv2d_s8_simd(p, in_d, in, f_d, filter, bias, mult, shift, out_d, out, scratch);
#else
    (void)scratch;
    conv2d_s8_ref(p, in_d, in, f_d, filter, bias, mult, shift, out_d, out);
#endif
}

/* ---- DEPTHWISE_CONV_2D int8 ---- */
static inline const char *depthwise_conv2d_s8_wrapper_kernel(const nn_dims *f_d)
{
    (void)f_d;
    return NN_SIMD ? "depthwise_conv2d_s8_simd" : "depthwise_conv2d_s8_ref";
}

/* Scratch bytes: the SIMD kernel's padded input rows, expanded weights and requantization constants; the
 * reference needs none. */
static inline size_t depthwise_conv2d_s8_wrapper_scratch_bytes(const nn_conv_params *p, const nn_dims *f_d,
                                                               const nn_dims *out_d)
{
#if NN_SIMD
    return depthwise_conv2d_s8_simd_scratch_bytes(p, f_d, out_d);
#else
    (void)p;
    (void)f_d;
    (void)out_d;
    return 0;
#endif
}

static inline void depthwise_conv2d_s8_wrapper(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in,
                                               const nn_dims *f_d, const int8_t *filter, const int32_t *bias,
                                               const int32_t *mult, const int32_t *shift, const nn_dims *out_d,
                                               int8_t *out, int8_t *scratch)
{
#if NN_SIMD
    depthwise_conv2d_s8_simd(p, in_d, in, f_d, filter, bias, mult, shift, out_d, out, scratch);
#else
    (void)scratch;
    depthwise_conv2d_s8_ref(p, in_d, in, f_d, filter, bias, mult, shift, out_d, out);
#endif
}

/* ---- ADD int8 (and SUB: the second multiplier negated) ---- */
static inline const char *add_s8_wrapper_kernel(void) { return NN_SIMD ? "add_s8_simd" : "add_s8_ref"; }

/* Scratch bytes: the SIMD kernel's two 256-entry rescaling tables; the reference needs none. */
static inline size_t add_s8_wrapper_scratch_bytes(void)
{
#if NN_SIMD
    return add_s8_simd_scratch_bytes();
#else
    return 0;
#endif
}

static inline void add_s8_wrapper(const nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                                  int32_t *scratch)
{
#if NN_SIMD
    add_s8_simd(p, in1, in2, out, scratch);
#else
    (void)scratch;
    add_s8_ref(p, in1, in2, out);
#endif
}

/* ---- AVERAGE_POOL_2D int8 (no scratch) ---- */
static inline const char *avgpool_s8_wrapper_kernel(void) { return NN_SIMD ? "avgpool_s8_simd" : "avgpool_s8_ref"; }

static inline void avgpool_s8_wrapper(const nn_pool_params *p, const nn_dims *in_d, const int8_t *in,
                                      const nn_dims *out_d, int8_t *out)
{
#if NN_SIMD
    avgpool_s8_simd(p, in_d, in, out_d, out);
#else
    avgpool_s8_ref(p, in_d, in, out_d, out);
#endif
}

/* ---- FULLY_CONNECTED int8 ---- */
static inline const char *fully_connected_s8_wrapper_kernel(int32_t in_len)
{
    (void)in_len;
    return NN_SIMD ? "fully_connected_s8_simd" : "fully_connected_s8_ref";
}

/* Whether the kernel reads weights in the quads layout (nn_fc_params.weights_quads): the SIMD one only. */
static inline int fully_connected_s8_wrapper_reads_quads(void) { return NN_SIMD; }

/* Whether a layer in the quads layout is one the SIMD kernel computes exactly (checked when the plan is loaded). */
static inline int fully_connected_s8_wrapper_quads_ok(const nn_fc_params *p, const int32_t *shift, int32_t out_len)
{
#if NN_SIMD
    return fully_connected_s8_simd_quads_ok(p, shift, out_len);
#else
    (void)p;
    (void)shift;
    (void)out_len;
    return 0;
#endif
}

/* Scratch bytes: the SIMD kernel's int16 copy of one input row; the reference needs none. */
static inline size_t fully_connected_s8_wrapper_scratch_bytes(int32_t in_len)
{
#if NN_SIMD
    return fully_connected_s8_simd_scratch_bytes(in_len);
#else
    (void)in_len;
    return 0;
#endif
}

static inline void fully_connected_s8_wrapper(const nn_fc_params *p, int32_t batches, int32_t in_len, const int8_t *in,
                                              int32_t out_len, const int8_t *weights, const int32_t *bias,
                                              const int32_t *mult, const int32_t *shift, int8_t *out,
                                              int16_t *scratch)
{
#if NN_SIMD
    fully_connected_s8_simd(p, batches, in_len, in, out_len, weights, bias, mult, shift, out, scratch);
#else
    (void)scratch;
    fully_connected_s8_ref(p, batches, in_len, in, out_len, weights, bias, mult, shift, out);
#endif
}

#endif /* NN_WRAPPERS_H */
