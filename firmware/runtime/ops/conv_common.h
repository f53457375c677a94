/* Internal: decoding shared by the convolution ops (conv.c, depthwise_conv.c). */
#ifndef NN_CONV_COMMON_H
#define NN_CONV_COMMON_H

#include "ops.h"

/* An int8 convolution's kernel arguments (CONV_S8, DWCONV_S8). */
typedef struct {
    nn_conv_params p;
    nn_dims in_d, f_d, out_d;
    const int8_t *in, *filter;
    const int32_t *bias, *mult, *shift;
    int8_t *out;
} nn_conv_s8_layer;

/* A 16x8 convolution's kernel arguments (CONV_S16, DWCONV_S16): int16 activations, int64 bias. */
typedef struct {
    nn_conv_params p;
    nn_dims in_d, f_d, out_d;
    const int16_t *in;
    const int8_t *filter;
    const int64_t *bias;
    const int32_t *mult, *shift;
    int16_t *out;
} nn_conv_s16_layer;

/* A float-activation convolution's kernel arguments (CONV_F32, DWCONV_F32; CONV_HYBRID has int8 filters). */
typedef struct {
    nn_conv_params p;
    nn_dims in_d, f_d, out_d;
    const float *in;
    const void *filter;
    const float *bias;
    float *out;
    uint32_t in_count;
} nn_conv_f32_layer;

/* A dynamic-range convolution (CONV_HYBRID, DWCONV_HYBRID): float activations, int8 filters with float scales,
 * the input quantized into the op's scratch. */
typedef struct {
    nn_conv_f32_layer l;
    const float *weight_scales;
    int32_t per_channel;
    int8_t *scratch;
} nn_conv_hybrid_layer;

/* The NN_CONV_P_* geometry words into p. */
void nn_read_conv_geometry(const nn_op *op, nn_conv_params *p);
/* Strides, dilations, paddings in range; filter, input and output shapes consistent; taps <= NN_MAX_TAPS. */
int nn_check_conv_geometry(const nn_conv_params *p, const nn_dims *in_d, const nn_dims *f_d, const nn_dims *out_d,
                           int depthwise);
/* Inputs x, filter, bias/-, mult, shift; the CONV_S8 layout (+ depth multiplier for DWCONV_S8). */
int nn_prepare_conv_s8_layer(const nn_op *op, int depthwise, nn_conv_s8_layer *l);
/* The same for CONV_S16 / DWCONV_S16 (int16 activations, int64 bias, shifts <= 14). */
int nn_prepare_conv_s16_layer(const nn_op *op, int depthwise, nn_conv_s16_layer *l);
/* Inputs x, filter, bias/- (+ weight scales for hybrid, checked by the caller), geometry and depth multiplier
 * (DWCONV_F32); the caller reads the activation bounds of its layout. */
int nn_prepare_conv_f32_layer(const nn_op *op, int depthwise, int hybrid, nn_conv_f32_layer *l);
/* The CONV_HYBRID layout (also DWCONV_HYBRID's): nn_prepare_conv_f32_layer, activation bounds, the weight scales
 * (one per output channel or one), scratch for the quantized input. */
int nn_prepare_conv_hybrid_layer(const nn_op *op, int depthwise, nn_conv_hybrid_layer *s);

#endif /* NN_CONV_COMMON_H */
