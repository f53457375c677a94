/* Op kind -> (parameter layout, prepare, eval). Adding an op: one entry here, one prepare/eval pair. */
#include "ops.h"

static const nn_op_entry OPS[] = {
    {NN_OP_CONV_S8, NN_CONV2D_S8_P_COUNT, nn_conv_s8_prepare, nn_conv_s8_eval},
    {NN_OP_DWCONV_S8, NN_DWCONV_S8_P_COUNT, nn_dwconv_s8_prepare, nn_dwconv_s8_eval},
    {NN_OP_FC_S8, NN_FC_S8_P_COUNT, nn_fc_s8_prepare, nn_fc_s8_eval},
    {NN_OP_AVGPOOL_S8, NN_POOL_P_COUNT, nn_avgpool_s8_prepare, nn_avgpool_s8_eval},
    {NN_OP_MAXPOOL_S8, NN_POOL_P_COUNT, nn_maxpool_s8_prepare, nn_maxpool_s8_eval},
    {NN_OP_ADD_S8, NN_ADD_S8_P_COUNT, nn_add_s8_prepare, nn_add_s8_eval},
    {NN_OP_MUL_S8, NN_MUL_S8_P_COUNT, nn_mul_s8_prepare, nn_mul_s8_eval},
    {NN_OP_SOFTMAX_S8, NN_SOFTMAX_S8_P_COUNT, nn_softmax_s8_prepare, nn_softmax_s8_eval},
    {NN_OP_LOGISTIC_S8, NN_LOGISTIC_S8_P_COUNT, nn_logistic_s8_prepare, nn_logistic_s8_eval},
    {NN_OP_REQUANT_S8, NN_REQUANT_S8_P_COUNT, nn_requant_s8_prepare, nn_requant_s8_eval},
    {NN_OP_MEAN_S8, NN_MEAN_S8_P_COUNT, nn_mean_s8_prepare, nn_mean_s8_eval},
    {NN_OP_QUANTIZE_F32_S8, NN_QUANT_P_COUNT, nn_quantize_f32_s8_prepare, nn_quantize_f32_s8_eval},
    {NN_OP_DEQUANTIZE_S8_F32, NN_QUANT_P_COUNT, nn_dequantize_s8_f32_prepare, nn_dequantize_s8_f32_eval},
    {NN_OP_COPY, NN_NO_P_COUNT, nn_copy_prepare, nn_copy_eval},
    {NN_OP_PAD, NN_PAD_P_COUNT, nn_pad_prepare, nn_pad_eval},
    {NN_OP_CONCAT, NN_CONCAT_P_COUNT, nn_concat_prepare, nn_concat_eval},
    {NN_OP_CONV_F32, NN_CONV_F32_P_COUNT, nn_conv_f32_prepare, nn_conv_f32_eval},
    {NN_OP_DWCONV_F32, NN_DWCONV_F32_P_COUNT, nn_dwconv_f32_prepare, nn_dwconv_f32_eval},
    {NN_OP_FC_F32, NN_ACT_F32_P_COUNT, nn_fc_f32_prepare, nn_fc_f32_eval},
    {NN_OP_AVGPOOL_F32, NN_POOL_P_COUNT, nn_avgpool_f32_prepare, nn_avgpool_f32_eval},
    {NN_OP_MAXPOOL_F32, NN_POOL_P_COUNT, nn_maxpool_f32_prepare, nn_maxpool_f32_eval},
    {NN_OP_ADD_F32, NN_ACT_F32_P_COUNT, nn_add_f32_prepare, nn_add_f32_eval},
    {NN_OP_MUL_F32, NN_ACT_F32_P_COUNT, nn_mul_f32_prepare, nn_mul_f32_eval},
    {NN_OP_SOFTMAX_F32, NN_SOFTMAX_F32_P_COUNT, nn_softmax_f32_prepare, nn_softmax_f32_eval},
    {NN_OP_LOGISTIC_F32, NN_NO_P_COUNT, nn_logistic_f32_prepare, nn_logistic_f32_eval},
    {NN_OP_CLAMP_F32, NN_CLAMP_F32_P_COUNT, nn_clamp_f32_prepare, nn_clamp_f32_eval},
    {NN_OP_MEAN_F32, NN_MEAN_F32_P_COUNT, nn_mean_f32_prepare, nn_mean_f32_eval},
    {NN_OP_FC_HYBRID, NN_FC_HYBRID_P_COUNT, nn_fc_hybrid_prepare, nn_fc_hybrid_eval},
    {NN_OP_CONV_HYBRID, NN_CONV_HYBRID_P_COUNT, nn_conv_hybrid_prepare, nn_conv_hybrid_eval},
    {NN_OP_LUT_S8, NN_NO_P_COUNT, nn_lut_s8_prepare, nn_lut_s8_eval},
    {NN_OP_SUB_F32, NN_ACT_F32_P_COUNT, nn_sub_f32_prepare, nn_sub_f32_eval},
    {NN_OP_TANH_F32, NN_NO_P_COUNT, nn_tanh_f32_prepare, nn_tanh_f32_eval},
    {NN_OP_DWCONV_HYBRID, NN_DWCONV_HYBRID_P_COUNT, nn_dwconv_hybrid_prepare, nn_dwconv_hybrid_eval},
    {NN_OP_CONV_S16, NN_CONV_S8_P_COUNT, nn_conv_s16_prepare, nn_conv_s16_eval},
    {NN_OP_DWCONV_S16, NN_DWCONV_S8_P_COUNT, nn_dwconv_s16_prepare, nn_dwconv_s16_eval},
    {NN_OP_FC_S16, NN_FC_S8_P_COUNT, nn_fc_s16_prepare, nn_fc_s16_eval},
    {NN_OP_ADD_S16, NN_ADD_S8_P_COUNT, nn_add_s16_prepare, nn_add_s16_eval},
    {NN_OP_SOFTMAX_S16, NN_SOFTMAX_S16_P_COUNT, nn_softmax_s16_prepare, nn_softmax_s16_eval},
    {NN_OP_AVGPOOL_S16, NN_POOL_P_COUNT, nn_avgpool_s16_prepare, nn_avgpool_s16_eval},
    {NN_OP_MAXPOOL_S16, NN_POOL_P_COUNT, nn_maxpool_s16_prepare, nn_maxpool_s16_eval},
    {NN_OP_QUANTIZE_F32_S16, NN_QUANT_P_COUNT, nn_quantize_f32_s16_prepare, nn_quantize_f32_s16_eval},
    {NN_OP_DEQUANTIZE_S16_F32, NN_QUANT_P_COUNT, nn_dequantize_s16_f32_prepare, nn_dequantize_s16_f32_eval},
    {NN_OP_MEAN_S16, NN_MEAN_S8_P_COUNT, nn_mean_s16_prepare, nn_mean_s16_eval},
};

const nn_op_entry *nn_op_lookup(uint32_t kind)
{
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
        if (OPS[i].kind == kind) {
            return &OPS[i];
        }
    }
    return NULL;
}
