/* CONV_2D: int8 (CONV_S8), 16x8 (CONV_S16), float32 (CONV_F32) and dynamic-range (CONV_HYBRID). */
#include "../../kernels/nn_wrappers.h"
#include "conv_common.h"

typedef struct {
    nn_conv_s8_layer l;
    int16_t *scratch;
} conv_s8_state;
NN_STATE_FITS(conv_s8_state);

int nn_conv_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    conv_s8_state *s = state;
    NN_TRY(nn_prepare_conv_s8_layer(op, 0, &s->l));
    NN_CHECK(!s->l.p.filter_pairs || conv2d_s8_wrapper_reads_pairs(), NN_ERR_FILTER_LAYOUT);
    NN_CHECK(op->scratch_bytes >= conv2d_s8_wrapper_scratch_bytes(&s->l.p, &s->l.f_d, &s->l.out_d), NN_ERR_ARENA_TOO_SMALL);
    s->scratch = (int16_t *)(void *)nn_op_scratch(op);
    *kernel = conv2d_s8_wrapper_kernel(&s->l.f_d);
    return NN_OK;
}

void nn_conv_s8_eval(const void *state)
{
    const conv_s8_state *s = state;
    const nn_conv_s8_layer *l = &s->l;
    conv2d_s8_wrapper(&l->p, &l->in_d, l->in, &l->f_d, l->filter, l->bias, l->mult, l->shift, &l->out_d, l->out,
                      s->scratch);
}

NN_STATE_FITS(nn_conv_s16_layer);

int nn_conv_s16_prepare(const nn_op *op, void *state, const char **kernel)
{
    nn_conv_s16_layer *l = state;
    NN_TRY(nn_prepare_conv_s16_layer(op, 0, l));
    *kernel = "conv2d_s16_ref";
    return NN_OK;
}

void nn_conv_s16_eval(const void *state)
{
    const nn_conv_s16_layer *l = state;
    conv2d_s16_ref(&l->p, &l->in_d, l->in, &l->f_d, l->filter, l->bias, l->mult, l->shift, &l->out_d, l->out);
}

NN_STATE_FITS(nn_conv_f32_layer);

int nn_conv_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    nn_conv_f32_layer *l = state;
    NN_TRY(nn_prepare_conv_f32_layer(op, 0, 0, l));
    l->p.act_min_f = nn_op_param_f32(op, NN_CONV_F32_P_ACT_MIN);
    l->p.act_max_f = nn_op_param_f32(op, NN_CONV_F32_P_ACT_MAX);
    *kernel = "conv2d_f32_ref";
    return NN_OK;
}

void nn_conv_f32_eval(const void *state)
{
    const nn_conv_f32_layer *l = state;
    conv2d_f32_ref(&l->p, &l->in_d, l->in, &l->f_d, (const float *)l->filter, l->bias, &l->out_d, l->out);
}

NN_STATE_FITS(nn_conv_hybrid_layer);

int nn_conv_hybrid_prepare(const nn_op *op, void *state, const char **kernel)
{
    nn_conv_hybrid_layer *s = state;
    NN_TRY(nn_prepare_conv_hybrid_layer(op, 0, s));
    *kernel = "conv2d_hybrid_ref";
    return NN_OK;
}

void nn_conv_hybrid_eval(const void *state)
{
    const nn_conv_hybrid_layer *s = state;
    const nn_conv_f32_layer *l = &s->l;
    conv2d_hybrid_ref(&l->p, &l->in_d, l->in, &l->f_d, (const int8_t *)l->filter, s->weight_scales, s->per_channel,
                      l->bias, &l->out_d, l->out, s->scratch);
}
