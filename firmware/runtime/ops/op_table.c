/* Op kind -> (parameter layout, prepare, eval). Adding an op: one entry here, one prepare/eval pair.
 *
 * An image of selected ops (built with NN_OPS_SELECTED and NN_WITH_<kind>=1 for each, as a deployment
 * registers only its model's ops) keeps only their entries; the linker's --gc-sections then drops the code of
 * the others. A plan with another op is refused at load (NN_ERR_UNSUPPORTED_OP). */
#include "ops.h"

#ifdef NN_OPS_SELECTED
#define NN_HAS_OP(kind) NN_WITH_##kind /* an undefined NN_WITH_<kind> is 0 in #if */
#else
#define NN_HAS_OP(kind) 1
#endif

static const nn_op_entry OPS[] = {
#if NN_HAS_OP(CONV_S8)
    {NN_OP_CONV_S8, NN_CONV2D_S8_P_COUNT, nn_conv_s8_prepare, nn_conv_s8_eval},
#endif
#if NN_HAS_OP(DWCONV_S8)
    {NN_OP_DWCONV_S8, NN_DWCONV_S8_P_COUNT, nn_dwconv_s8_prepare, nn_dwconv_s8_eval},
#endif
#if NN_HAS_OP(FC_S8)
    {NN_OP_FC_S8, NN_FC_S8_P_COUNT, nn_fc_s8_prepare, nn_fc_s8_eval},
#endif
#if NN_HAS_OP(AVGPOOL_S8)
    {NN_OP_AVGPOOL_S8, NN_POOL_P_COUNT, nn_avgpool_s8_prepare, nn_avgpool_s8_eval},
#endif
#if NN_HAS_OP(MAXPOOL_S8)
    {NN_OP_MAXPOOL_S8, NN_POOL_P_COUNT, nn_maxpool_s8_prepare, nn_maxpool_s8_eval},
#endif
#if NN_HAS_OP(ADD_S8)
    {NN_OP_ADD_S8, NN_ADD_S8_P_COUNT, nn_add_s8_prepare, nn_add_s8_eval},
#endif
#if NN_HAS_OP(MUL_S8)
    {NN_OP_MUL_S8, NN_MUL_S8_P_COUNT, nn_mul_s8_prepare, nn_mul_s8_eval},
#endif
#if NN_HAS_OP(SOFTMAX_S8)
    {NN_OP_SOFTMAX_S8, NN_SOFTMAX_S8_P_COUNT, nn_softmax_s8_prepare, nn_softmax_s8_eval},
#endif
#if NN_HAS_OP(LOGISTIC_S8)
    {NN_OP_LOGISTIC_S8, NN_LOGISTIC_S8_P_COUNT, nn_logistic_s8_prepare, nn_logistic_s8_eval},
#endif
#if NN_HAS_OP(REQUANT_S8)
    {NN_OP_REQUANT_S8, NN_REQUANT_S8_P_COUNT, nn_requant_s8_prepare, nn_requant_s8_eval},
#endif
#if NN_HAS_OP(MEAN_S8)
    {NN_OP_MEAN_S8, NN_MEAN_S8_P_COUNT, nn_mean_s8_prepare, nn_mean_s8_eval},
#endif
#if NN_HAS_OP(QUANTIZE_F32_S8)
    {NN_OP_QUANTIZE_F32_S8, NN_QUANT_P_COUNT, nn_quantize_f32_s8_prepare, nn_quantize_f32_s8_eval},
#endif
#if NN_HAS_OP(DEQUANTIZE_S8_F32)
    {NN_OP_DEQUANTIZE_S8_F32, NN_QUANT_P_COUNT, nn_dequantize_s8_f32_prepare, nn_dequantize_s8_f32_eval},
#endif
#if NN_HAS_OP(COPY)
    {NN_OP_COPY, NN_NO_P_COUNT, nn_copy_prepare, nn_copy_eval},
#endif
#if NN_HAS_OP(PAD)
    {NN_OP_PAD, NN_PAD_P_COUNT, nn_pad_prepare, nn_pad_eval},
#endif
#if NN_HAS_OP(CONCAT)
    {NN_OP_CONCAT, NN_CONCAT_P_COUNT, nn_concat_prepare, nn_concat_eval},
#endif
#if NN_HAS_OP(CONV_F32)
    {NN_OP_CONV_F32, NN_CONV_F32_P_COUNT, nn_conv_f32_prepare, nn_conv_f32_eval},
#endif
#if NN_HAS_OP(DWCONV_F32)
    {NN_OP_DWCONV_F32, NN_DWCONV_F32_P_COUNT, nn_dwconv_f32_prepare, nn_dwconv_f32_eval},
#endif
#if NN_HAS_OP(FC_F32)
    {NN_OP_FC_F32, NN_ACT_F32_P_COUNT, nn_fc_f32_prepare, nn_fc_f32_eval},
#endif
#if NN_HAS_OP(AVGPOOL_F32)
    {NN_OP_AVGPOOL_F32, NN_POOL_P_COUNT, nn_avgpool_f32_prepare, nn_avgpool_f32_eval},
#endif
#if NN_HAS_OP(MAXPOOL_F32)
    {NN_OP_MAXPOOL_F32, NN_POOL_P_COUNT, nn_maxpool_f32_prepare, nn_maxpool_f32_eval},
#endif
#if NN_HAS_OP(ADD_F32)
    {NN_OP_ADD_F32, NN_ACT_F32_P_COUNT, nn_add_f32_prepare, nn_add_f32_eval},
#endif
#if NN_HAS_OP(MUL_F32)
    {NN_OP_MUL_F32, NN_ACT_F32_P_COUNT, nn_mul_f32_prepare, nn_mul_f32_eval},
#endif
#if NN_HAS_OP(SOFTMAX_F32)
    {NN_OP_SOFTMAX_F32, NN_SOFTMAX_F32_P_COUNT, nn_softmax_f32_prepare, nn_softmax_f32_eval},
#endif
#if NN_HAS_OP(LOGISTIC_F32)
    {NN_OP_LOGISTIC_F32, NN_NO_P_COUNT, nn_logistic_f32_prepare, nn_logistic_f32_eval},
#endif
#if NN_HAS_OP(CLAMP_F32)
    {NN_OP_CLAMP_F32, NN_CLAMP_F32_P_COUNT, nn_clamp_f32_prepare, nn_clamp_f32_eval},
#endif
#if NN_HAS_OP(MEAN_F32)
    {NN_OP_MEAN_F32, NN_MEAN_F32_P_COUNT, nn_mean_f32_prepare, nn_mean_f32_eval},
#endif
#if NN_HAS_OP(FC_HYBRID)
    {NN_OP_FC_HYBRID, NN_FC_HYBRID_P_COUNT, nn_fc_hybrid_prepare, nn_fc_hybrid_eval},
#endif
#if NN_HAS_OP(CONV_HYBRID)
    {NN_OP_CONV_HYBRID, NN_CONV_HYBRID_P_COUNT, nn_conv_hybrid_prepare, nn_conv_hybrid_eval},
#endif
#if NN_HAS_OP(LUT_S8)
    {NN_OP_LUT_S8, NN_NO_P_COUNT, nn_lut_s8_prepare, nn_lut_s8_eval},
#endif
#if NN_HAS_OP(SUB_F32)
    {NN_OP_SUB_F32, NN_ACT_F32_P_COUNT, nn_sub_f32_prepare, nn_sub_f32_eval},
#endif
#if NN_HAS_OP(TANH_F32)
    {NN_OP_TANH_F32, NN_NO_P_COUNT, nn_tanh_f32_prepare, nn_tanh_f32_eval},
#endif
#if NN_HAS_OP(DWCONV_HYBRID)
    {NN_OP_DWCONV_HYBRID, NN_DWCONV_HYBRID_P_COUNT, nn_dwconv_hybrid_prepare, nn_dwconv_hybrid_eval},
#endif
#if NN_HAS_OP(CONV_S16)
    {NN_OP_CONV_S16, NN_CONV_S8_P_COUNT, nn_conv_s16_prepare, nn_conv_s16_eval},
#endif
#if NN_HAS_OP(DWCONV_S16)
    {NN_OP_DWCONV_S16, NN_DWCONV_S8_P_COUNT, nn_dwconv_s16_prepare, nn_dwconv_s16_eval},
#endif
#if NN_HAS_OP(FC_S16)
    {NN_OP_FC_S16, NN_FC_P_COUNT, nn_fc_s16_prepare, nn_fc_s16_eval},
#endif
#if NN_HAS_OP(ADD_S16)
    {NN_OP_ADD_S16, NN_ADD_S8_P_COUNT, nn_add_s16_prepare, nn_add_s16_eval},
#endif
#if NN_HAS_OP(SOFTMAX_S16)
    {NN_OP_SOFTMAX_S16, NN_SOFTMAX_S16_P_COUNT, nn_softmax_s16_prepare, nn_softmax_s16_eval},
#endif
#if NN_HAS_OP(AVGPOOL_S16)
    {NN_OP_AVGPOOL_S16, NN_POOL_P_COUNT, nn_avgpool_s16_prepare, nn_avgpool_s16_eval},
#endif
#if NN_HAS_OP(MAXPOOL_S16)
    {NN_OP_MAXPOOL_S16, NN_POOL_P_COUNT, nn_maxpool_s16_prepare, nn_maxpool_s16_eval},
#endif
#if NN_HAS_OP(QUANTIZE_F32_S16)
    {NN_OP_QUANTIZE_F32_S16, NN_QUANT_P_COUNT, nn_quantize_f32_s16_prepare, nn_quantize_f32_s16_eval},
#endif
#if NN_HAS_OP(DEQUANTIZE_S16_F32)
    {NN_OP_DEQUANTIZE_S16_F32, NN_QUANT_P_COUNT, nn_dequantize_s16_f32_prepare, nn_dequantize_s16_f32_eval},
#endif
#if NN_HAS_OP(MEAN_S16)
    {NN_OP_MEAN_S16, NN_MEAN_S8_P_COUNT, nn_mean_s16_prepare, nn_mean_s16_eval},
#endif
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
