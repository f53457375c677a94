/* Decoding shared by the convolutions (conv.c, depthwise_conv.c): geometry, tensors, quantization. */
#include "conv_common.h"

/* Everything here runs when a plan is loaded, never in an inference: compiled for size. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif

void nn_read_conv_geometry(const nn_op *op, nn_conv_params *p)
{
    p->stride_w = nn_op_param(op, NN_CONV_P_STRIDE_W);
    p->stride_h = nn_op_param(op, NN_CONV_P_STRIDE_H);
    p->pad_w = nn_op_param(op, NN_CONV_P_PAD_W);
    p->pad_h = nn_op_param(op, NN_CONV_P_PAD_H);
    p->dil_w = nn_op_param(op, NN_CONV_P_DIL_W);
    p->dil_h = nn_op_param(op, NN_CONV_P_DIL_H);
}

int nn_check_conv_geometry(const nn_conv_params *p, const nn_dims *in_d, const nn_dims *f_d, const nn_dims *out_d,
                           int depthwise)
{
    NN_CHECK(p->stride_w >= 1 && p->stride_h >= 1 && p->stride_w <= 1024 && p->stride_h <= 1024, NN_ERR_BAD_PLAN);
    NN_CHECK(p->dil_w >= 1 && p->dil_h >= 1 && p->dil_w <= 1024 && p->dil_h <= 1024, NN_ERR_BAD_PLAN);
    NN_CHECK(p->pad_w >= 0 && p->pad_h >= 0 && p->pad_w <= 65535 && p->pad_h <= 65535, NN_ERR_BAD_PLAN);
    NN_CHECK(in_d->n == out_d->n, NN_ERR_BAD_SIZE);
    if (depthwise) {
        NN_CHECK(f_d->n == 1 && f_d->c == out_d->c, NN_ERR_BAD_SIZE);
        NN_CHECK(p->depth_multiplier >= 1 && (int64_t)in_d->c * p->depth_multiplier == out_d->c, NN_ERR_BAD_SIZE);
        NN_CHECK(f_d->h * f_d->w <= NN_MAX_TAPS, NN_ERR_BAD_SIZE);
    } else {
        NN_CHECK(f_d->c == in_d->c && f_d->n == out_d->c, NN_ERR_BAD_SIZE);
        NN_CHECK((int64_t)f_d->h * f_d->w * f_d->c <= NN_MAX_TAPS, NN_ERR_BAD_SIZE);
    }
    return NN_OK;
}

/* The integer convolutions: inputs x, filter, bias/-, mult, shift; activations of `dt` (int8 / int16). */
typedef struct {
    nn_conv_params p;
    nn_dims in_d, f_d, out_d;
    const void *in, *filter, *bias;
    const int32_t *mult, *shift;
    void *out;
} int_conv;

static int prepare_int_conv(const nn_op *op, int depthwise, uint8_t dt, int_conv *l)
{
    nn_tensor x, f, out, mult, shift;
    NN_CHECK(op->n_in == 5, NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_output(op, &out));
    NN_TRY(nn_op_input(op, 1, &f));
    nn_read_conv_geometry(op, &l->p);
    const int32_t layout = !depthwise && dt == NN_DT_INT8 ? nn_op_param(op, NN_CONV2D_S8_P_FILTER_LAYOUT)
                                                          : NN_FILTER_OHWI;
    NN_CHECK(layout == NN_FILTER_OHWI || layout == NN_FILTER_S16_PAIRS, NN_ERR_BAD_PLAN);
    l->p.filter_pairs = layout == NN_FILTER_S16_PAIRS;
    NN_CHECK(nn_is_dt(&x, dt) && nn_is_dt(&out, dt) && nn_is_dt(&f, l->p.filter_pairs ? NN_DT_INT16 : NN_DT_INT8),
             NN_ERR_BAD_PLAN);
    l->p.input_offset = nn_op_param(op, NN_CONV_S8_P_INPUT_OFFSET);
    l->p.output_offset = nn_op_param(op, NN_CONV_S8_P_OUTPUT_ZP);
    l->p.act_min = nn_op_param(op, NN_CONV_S8_P_ACT_MIN);
    l->p.act_max = nn_op_param(op, NN_CONV_S8_P_ACT_MAX);
    l->p.depth_multiplier = depthwise ? nn_op_param(op, NN_DWCONV_S8_P_DEPTH_MULTIPLIER) : 1;
    if (dt == NN_DT_INT8) {
        NN_CHECK(nn_check_act(l->p.act_min, l->p.act_max) && nn_check_offset(l->p.input_offset) &&
                     nn_check_offset(l->p.output_offset),
                 NN_ERR_BAD_PLAN);
    } else {
        NN_CHECK(nn_check_act16(l->p.act_min, l->p.act_max) && l->p.input_offset == 0 && l->p.output_offset == 0,
                 NN_ERR_BAD_PLAN);
    }
    l->in_d = nn_dims_of(&x);
    l->f_d = nn_dims_of(&f);
    l->out_d = nn_dims_of(&out);
    if (l->p.filter_pairs) { /* (ceil(OC / 2), KH, KW, 2 x IC) int16 -> the filter's OHWI dims */
        NN_CHECK(l->in_d.c % 4 == 0 && l->f_d.c == 2 * l->in_d.c && l->f_d.n == (l->out_d.c + 1) / 2,
                 NN_ERR_BAD_SIZE);
        l->f_d.n = l->out_d.c;
        l->f_d.c = l->in_d.c;
    }
    NN_TRY(nn_check_conv_geometry(&l->p, &l->in_d, &l->f_d, &l->out_d, depthwise));
    if (dt == NN_DT_INT8) {
        const int32_t *bias;
        NN_TRY(nn_op_bias_s32(op, 2, l->out_d.c, &bias));
        l->bias = bias;
    } else {
        const int64_t *bias;
        NN_TRY(nn_op_bias_s64(op, 2, l->out_d.c, &bias));
        l->bias = bias;
    }
    NN_TRY(nn_op_input(op, 3, &mult));
    NN_TRY(nn_op_input(op, 4, &shift));
    NN_TRY(nn_check_requant_arrays(&mult, &shift, l->out_d.c));
    l->in = x.ptr;
    l->filter = f.ptr;
    l->mult = (const int32_t *)(const void *)mult.ptr;
    l->shift = (const int32_t *)(const void *)shift.ptr;
    l->out = out.ptr;
    return NN_OK;
}

int nn_prepare_conv_s8_layer(const nn_op *op, int depthwise, nn_conv_s8_layer *l)
{
    int_conv c;
    NN_TRY(prepare_int_conv(op, depthwise, NN_DT_INT8, &c));
    l->p = c.p;
    l->in_d = c.in_d;
    l->f_d = c.f_d;
    l->out_d = c.out_d;
    l->in = c.in;
    l->filter = c.filter;
    l->bias = c.bias;
    l->mult = c.mult;
    l->shift = c.shift;
    l->out = c.out;
    return NN_OK;
}

int nn_prepare_conv_s16_layer(const nn_op *op, int depthwise, nn_conv_s16_layer *l)
{
    int_conv c;
    NN_TRY(prepare_int_conv(op, depthwise, NN_DT_INT16, &c));
    for (int32_t i = 0; i < c.out_d.c; i++) {
        NN_CHECK(c.shift[i] <= 14 && c.mult[i] >= 0, NN_ERR_BAD_PLAN); /* the Q15 requantization's range */
    }
    l->p = c.p;
    l->in_d = c.in_d;
    l->f_d = c.f_d;
    l->out_d = c.out_d;
    l->in = c.in;
    l->filter = c.filter;
    l->bias = c.bias;
    l->mult = c.mult;
    l->shift = c.shift;
    l->out = c.out;
    return NN_OK;
}

int nn_prepare_conv_f32_layer(const nn_op *op, int depthwise, int hybrid, nn_conv_f32_layer *l)
{
    nn_tensor x, f, out;
    NN_CHECK(op->n_in == (hybrid ? 4u : 3u), NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_output(op, &out));
    NN_TRY(nn_op_input(op, 1, &f));
    NN_CHECK(nn_is_dt(&x, NN_DT_FLOAT32) && nn_is_dt(&out, NN_DT_FLOAT32) &&
                 nn_is_dt(&f, hybrid ? NN_DT_INT8 : NN_DT_FLOAT32),
             NN_ERR_BAD_PLAN);
    nn_read_conv_geometry(op, &l->p);
    l->p.depth_multiplier =
        depthwise ? nn_op_param(op, hybrid ? NN_DWCONV_HYBRID_P_DEPTH_MULTIPLIER : NN_DWCONV_F32_P_DEPTH_MULTIPLIER) : 1;
    l->in_d = nn_dims_of(&x);
    l->f_d = nn_dims_of(&f);
    l->out_d = nn_dims_of(&out);
    NN_TRY(nn_check_conv_geometry(&l->p, &l->in_d, &l->f_d, &l->out_d, depthwise));
    NN_TRY(nn_op_bias_f32(op, 2, l->out_d.c, &l->bias));
    l->in = (const float *)(const void *)x.ptr;
    l->filter = f.ptr;
    l->out = (float *)(void *)out.ptr;
    l->in_count = x.count;
    return NN_OK;
}

int nn_prepare_conv_hybrid_layer(const nn_op *op, int depthwise, nn_conv_hybrid_layer *s)
{
    nn_tensor scales;
    NN_TRY(nn_prepare_conv_f32_layer(op, depthwise, 1, &s->l));
    s->l.p.act_min_f = nn_op_param_f32(op, NN_CONV_HYBRID_P_ACT_MIN);
    s->l.p.act_max_f = nn_op_param_f32(op, NN_CONV_HYBRID_P_ACT_MAX);
    s->per_channel = nn_op_param(op, NN_CONV_HYBRID_P_PER_CHANNEL);
    NN_CHECK(nn_op_has_input(op, 3), NN_ERR_BAD_SIZE);
    NN_TRY(nn_op_input(op, 3, &scales));
    NN_CHECK(nn_is_dt(&scales, NN_DT_FLOAT32) && (int32_t)scales.count == (s->per_channel ? s->l.out_d.c : 1),
             NN_ERR_BAD_SIZE);
    NN_CHECK(op->scratch_bytes >= s->l.in_count, NN_ERR_ARENA_TOO_SMALL); /* the quantized input */
    s->weight_scales = (const float *)(const void *)scales.ptr;
    s->scratch = (int8_t *)nn_op_scratch(op);
    return NN_OK;
}
