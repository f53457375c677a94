/* RELU / RELU6 / RELU_N1_TO_1 standalone, float32: clamp to [lo, hi]. */
#include "nn_kernels.h"

void clamp_f32_ref(int32_t size, float lo, float hi, const float *in, float *out)
{
    for (int32_t i = 0; i < size; i++) {
        float v = in[i];
        out[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}
