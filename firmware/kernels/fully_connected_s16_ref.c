/* FULLY_CONNECTED, 16x8: int16 activations, int8 weights, int64 bias and accumulator: portable reference. */
#include "nn_kernels.h"
#include "nn_quant.h"

void fully_connected_s16_ref(const nn_fc_params *p, int32_t batches, int32_t in_len, const int16_t *in,
                             int32_t out_len, const int8_t *weights, const int64_t *bias, const int32_t *mult,
                             const int32_t *shift, int16_t *out)
{
    for (int32_t b = 0; b < batches; b++) {
        const int16_t *x = in + b * in_len;
        for (int32_t o = 0; o < out_len; o++) {
            const int8_t *w = weights + o * in_len;
            int64_t acc = 0;
            for (int32_t i = 0; i < in_len; i++) {
                acc += (int32_t)w[i] * ((int32_t)x[i] + p->input_offset);
            }
            if (bias) {
                acc += bias[o];
            }
            const int32_t r = nn_requantize_single64(acc, mult[o], shift[o]) + p->output_offset;
            out[b * out_len + o] = (int16_t)nn_clamp_i32(r, p->act_min, p->act_max);
        }
    }
}
