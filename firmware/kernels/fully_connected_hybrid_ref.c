/* FULLY_CONNECTED, dynamic-range: float activations quantized per batch at run time, int8 weights. */
#include "nn_hybrid_quant.h"
#include "nn_kernels.h"

void fully_connected_hybrid_ref(const nn_fc_params *p, int32_t batches, int32_t in_len, const float *in,
                                int32_t out_len, const int8_t *weights, const float *weight_scales,
                                int32_t per_channel, const float *bias, float *out, int8_t *scratch)
{
    for (int32_t b = 0; b < batches; b++) {
        int32_t offset;
        float sf = quantize_input_hybrid_ref(in + b * in_len, in_len, scratch, p->asymmetric_inputs, &offset);
        if (!per_channel) {
            sf *= weight_scales[0];
        }
        for (int32_t o = 0; o < out_len; o++) {
            const int8_t *w = weights + o * in_len;
            int32_t dot = 0, row_sum = 0;
            for (int32_t i = 0; i < in_len; i++) {
                dot += (int32_t)w[i] * (int32_t)scratch[i];
                row_sum += w[i];
            }
            dot -= row_sum * offset;
            float s = sf;
            if (per_channel) {
                s *= weight_scales[o];
            }
            float r = bias ? bias[o] : 0.0f;
            r += (float)dot * s;
            r = r < p->act_min_f ? p->act_min_f : (r > p->act_max_f ? p->act_max_f : r);
            out[b * out_len + o] = r;
        }
    }
}
