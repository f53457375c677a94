/* MEAN over height and width (NHWC), int8: portable reference. The multiplier and shift already include
 * the 1/(H*W) factor (folded in at compile time as the reference QuantizedMeanOrSum does). */
#include "nn_kernels.h"
#include "nn_quant.h"

void mean_hw_s8_ref(const nn_dims *in_d, const int8_t *in, int32_t input_zero_point, int32_t output_zero_point,
                    int32_t multiplier, int32_t shift, int8_t *out)
{
    const int32_t n = in_d->h * in_d->w;
    for (int32_t b = 0; b < in_d->n; b++) {
        for (int32_t c = 0; c < in_d->c; c++) {
            int32_t acc = 0;
            for (int32_t i = 0; i < n; i++) {
                acc += (int32_t)in[(b * n + i) * in_d->c + c] - input_zero_point;
            }
            acc = nn_requantize(acc, multiplier, shift);
            out[b * in_d->c + c] = (int8_t)nn_clamp_i32(acc + output_zero_point, -128, 127);
        }
    }
}
