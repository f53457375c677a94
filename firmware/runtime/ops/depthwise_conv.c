/* DEPTHWISE_CONV_2D: int8 (DWCONV_S8), 16x8 (DWCONV_S16), float32 (DWCONV_F32), dynamic-range (DWCONV_HYBRID). */
#include "../../kernels/nn_wrappers.h"
#include "conv_common.h"

typedef struct {
    nn_conv_s8_layer l;
    int8_t *scratch;
} dwconv_s8_state;
NN_STATE_FITS(dwconv_s8_state);

int nn_dwconv_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    dwconv_s8_state *s = state;
    NN_TRY(nn_prepare_conv_s8_layer(op, 1, &s->l));
    NN_CHECK(op->scratch_bytes >= depthwise_conv2d_s8_wrapper_scratch_bytes(&s->l.p, &s->l.f_d, &s->l.out_d),
             NN_ERR_ARENA_TOO_SMALL);
    s->scratch = (int8_t *)nn_op_scratch(op);
    *kernel = depthwise_conv2d_s8_wrapper_kernel(&s->l.f_d);
    return NN_OK;
}

void nn_dwconv_s8_eval(const void *state)
{
    const dwconv_s8_state *s = state;
    const nn_conv_s8_layer *l = &s->l;
    depthwise_conv2d_s8_wrapper(&l->p, &l->in_d, l->in, &l->f_d, l->filter, l->bias, l->mult, l->shift, &l->out_d,
                                l->out, s->scratch);
}

int nn_dwconv_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    nn_conv_f32_layer *l = state;
    NN_TRY(nn_prepare_conv_f32_layer(op, 1, 0, l));
    l->p.act_min_f = nn_op_param_f32(op, NN_CONV_F32_P_ACT_MIN);
    l->p.act_max_f = nn_op_param_f32(op, NN_CONV_F32_P_ACT_MAX);
    *kernel = "depthwise_conv2d_f32_ref";
    return NN_OK;
}

void nn_dwconv_f32_eval(const void *state)
{
    const nn_conv_f32_layer *l = state;
    depthwise_conv2d_f32_ref(&l->p, &l->in_d, l->in, &l->f_d, (const float *)l->filter, l->bias, &l->out_d, l->out);
}

int nn_dwconv_s16_prepare(const nn_op *op, void *state, const char **kernel)
{
    nn_conv_s16_layer *l = state;
    NN_TRY(nn_prepare_conv_s16_layer(op, 1, l));
    *kernel = "depthwise_conv2d_s16_ref";
    return NN_OK;
}

void nn_dwconv_s16_eval(const void *state)
{
    const nn_conv_s16_layer *l = state;
    depthwise_conv2d_s16_ref(&l->p, &l->in_d, l->in, &l->f_d, l->filter, l->bias, l->mult, l->shift, &l->out_d,
                             l->out);
}

int nn_dwconv_hybrid_prepare(const nn_op *op, void *state, const char **kernel)
{
    nn_conv_hybrid_layer *s = state;
    NN_TRY(nn_prepare_conv_hybrid_layer(op, 1, s));
    *kernel = "depthwise_conv2d_hybrid_ref";
    return NN_OK;
}

void nn_dwconv_hybrid_eval(const void *state)
{
    const nn_conv_hybrid_layer *s = state;
    const nn_conv_f32_layer *l = &s->l;
    depthwise_conv2d_hybrid_ref(&l->p, &l->in_d, l->in, &l->f_d, (const int8_t *)l->filter, s->weight_scales,
                                s->per_channel, l->bias, &l->out_d, l->out, s->scratch);
}
