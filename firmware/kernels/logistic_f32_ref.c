/* LOGISTIC, float32. */
#include <math.h>

#include "nn_kernels.h"

void logistic_f32_ref(int32_t size, const float *in, float *out)
{
    for (int32_t i = 0; i < size; i++) {
        out[i] = 1.0f / (1.0f + expf(-in[i]));
    }
}
