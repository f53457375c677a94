/* TANH, float32. */
#include <math.h>

#include "nn_kernels.h"

void tanh_f32_ref(int32_t size, const float *in, float *out)
{
    for (int32_t i = 0; i < size; i++) {
        out[i] = tanhf(in[i]);
    }
}
