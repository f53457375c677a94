/* MEAN over height and width (NHWC), float32. */
#include "nn_kernels.h"

void mean_hw_f32_ref(const nn_dims *in_d, const float *in, float *out)
{
    const int32_t n = in_d->h * in_d->w;
    for (int32_t b = 0; b < in_d->n; b++) {
        for (int32_t c = 0; c < in_d->c; c++) {
            float acc = 0.0f;
            for (int32_t i = 0; i < n; i++) {
                acc += in[(b * n + i) * in_d->c + c];
            }
            out[b * in_d->c + c] = n > 0 ? acc / (float)n : 0.0f;
        }
    }
}
