/* MEAN over any of the 4-D axes (NHWC), int8: portable reference. The multiplier and shift already include
 * 1/(number of reduced elements), folded in at compile time as the reference QuantizedMeanOrSum does. */
#include "nn_kernels.h"
#include "nn_quant.h"

void mean_s8_ref(const nn_dims *in_d, uint32_t axes, const int8_t *in, int32_t input_zero_point,
                 int32_t output_zero_point, int32_t multiplier, int32_t shift, int8_t *out)
{
    const int32_t d[4] = {in_d->n, in_d->h, in_d->w, in_d->c};
    const int32_t s[4] = {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1};
    int32_t keep[4], red[4]; /* output extent and reduced extent of each axis */
    for (int k = 0; k < 4; k++) {
        const int reduced = (axes >> k) & 1u;
        keep[k] = reduced ? 1 : d[k];
        red[k] = reduced ? d[k] : 1;
    }
    for (int32_t a = 0; a < keep[0]; a++) {
        for (int32_t b = 0; b < keep[1]; b++) {
            for (int32_t c = 0; c < keep[2]; c++) {
                for (int32_t e = 0; e < keep[3]; e++) {
                    const int8_t *base = in + a * s[0] + b * s[1] + c * s[2] + e;
                    int32_t acc = 0;
                    for (int32_t i = 0; i < red[0]; i++) {
                        for (int32_t j = 0; j < red[1]; j++) {
                            for (int32_t k = 0; k < red[2]; k++) {
                                const int8_t *row = base + i * s[0] + j * s[1] + k * s[2];
                                for (int32_t l = 0; l < red[3]; l++) {
                                    acc += (int32_t)row[l] - input_zero_point;
                                }
                            }
                        }
                    }
                    acc = nn_requantize(acc, multiplier, shift) + output_zero_point;
                    *out++ = (int8_t)nn_clamp_i32(acc, -128, 127);
                }
            }
        }
    }
}
