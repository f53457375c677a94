/* SOFTMAX, float32 (per row: exp((x - max) * beta) / sum). */
#include <math.h>

#include "nn_kernels.h"

void softmax_f32_ref(int32_t rows, int32_t depth, float beta, const float *in, float *out)
{
    for (int32_t r = 0; r < rows; r++) {
        const float *x = in + r * depth;
        float *y = out + r * depth;
        float m = x[0];
        for (int32_t c = 1; c < depth; c++) {
            m = x[c] > m ? x[c] : m;
        }
        float sum = 0.0f;
        for (int32_t c = 0; c < depth; c++) {
            y[c] = expf((x[c] - m) * beta);
            sum += y[c];
        }
        for (int32_t c = 0; c < depth; c++) {
            y[c] = y[c] / sum;
        }
    }
}
