/* MEAN over any of the 4-D axes (NHWC), float32. */
#include "nn_kernels.h"

void mean_f32_ref(const nn_dims *in_d, uint32_t axes, const float *in, float *out)
{
    const int32_t d[4] = {in_d->n, in_d->h, in_d->w, in_d->c};
    const int32_t s[4] = {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1};
    int32_t keep[4], red[4];
    int32_t count = 1;
    for (int k = 0; k < 4; k++) {
        const int reduced = (axes >> k) & 1u;
        keep[k] = reduced ? 1 : d[k];
        red[k] = reduced ? d[k] : 1;
        count *= red[k];
    }
    for (int32_t a = 0; a < keep[0]; a++) {
        for (int32_t b = 0; b < keep[1]; b++) {
            for (int32_t c = 0; c < keep[2]; c++) {
                for (int32_t e = 0; e < keep[3]; e++) {
                    const float *base = in + a * s[0] + b * s[1] + c * s[2] + e;
                    float acc = 0.0f;
                    for (int32_t i = 0; i < red[0]; i++) {
                        for (int32_t j = 0; j < red[1]; j++) {
                            for (int32_t k = 0; k < red[2]; k++) {
                                const float *row = base + i * s[0] + j * s[1] + k * s[2];
                                for (int32_t l = 0; l < red[3]; l++) {
                                    acc += row[l];
                                }
                            }
                        }
                    }
                    *out++ = acc / (float)count;
                }
            }
        }
    }
}
