/* FULLY_CONNECTED, float32. */
#include "nn_kernels.h"

void fully_connected_f32_ref(const nn_fc_params *p, int32_t batches, int32_t in_len, const float *in, int32_t out_len,
                             const float *weights, const float *bias, float *out)
{
    for (int32_t b = 0; b < batches; b++) {
        const float *x = in + b * in_len;
        for (int32_t o = 0; o < out_len; o++) {
            const float *w = weights + o * in_len;
            float acc = 0.0f;
            for (int32_t i = 0; i < in_len; i++) {
                acc += x[i] * w[i];
            }
            if (bias) {
                acc += bias[o];
            }
            acc = acc < p->act_min_f ? p->act_min_f : (acc > p->act_max_f ? p->act_max_f : acc);
            out[b * out_len + o] = acc;
        }
    }
}
