/* DEPTHWISE_CONV_2D: int8 (DWCONV_S8) and float32 (DWCONV_F32). */
#include "../../kernels/nn_wrappers.h"
#include "conv_common.h"

NN_STATE_FITS(nn_conv_s8_layer);

int nn_dwconv_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    nn_conv_s8_layer *l = state;
    NN_TRY(nn_prepare_conv_s8_layer(op, 1, l));
    *kernel = depthwise_conv2d_s8_wrapper_kernel(&l->f_d);
    return NN_OK;
}

void nn_dwconv_s8_eval(const void *state)
{
    const nn_conv_s8_layer *l = state;
    depthwise_conv2d_s8_wrapper(&l->p, &l->in_d, l->in, &l->f_d, l->filter, l->bias, l->mult, l->shift, &l->out_d,
                                l->out);
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
