/* FULLY_CONNECTED, int8 activations, int8 weights (per-tensor or per-channel), int32 bias: portable reference. */
#include "nn_kernels.h"
#include "nn_quant.h"

void fully_connected_s8_ref(const nn_fc_params *p, int32_t batches, int32_t in_len, const int8_t *in,
                            int32_t out_len, const int8_t *weights, const int32_t *bias, const int32_t *mult,
                            const int32_t *shift, int8_t *out)
{
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = in + b * in_len;
        for (int32_t o = 0; o < out_len; o++) {
            const int8_t *w = weights + o * in_len;
            int32_t acc = 0;
            for (int32_t i = 0; i < in_len; i++) {
                acc += (int32_t)w[i] * ((int32_t)x[i] + p->input_offset);
            }
            if (bias) {
                acc += bias[o];
            }
            acc = nn_requantize_single(acc, mult[o], shift[o]) + p->output_offset;
            out[b * out_len + o] = (int8_t)nn_clamp_i32(acc, p->act_min, p->act_max);
        }
    }
}
