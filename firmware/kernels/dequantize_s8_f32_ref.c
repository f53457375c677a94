/* DEQUANTIZE int8 -> float32: x = (float)(scale * (q - zero_point)) evaluated in double as the reference. */
#include "nn_kernels.h"

void dequantize_s8_f32_ref(int32_t size, float scale, int32_t zero_point, const int8_t *in, float *out)
{
    const double s = (double)scale;
    for (int32_t i = 0; i < size; i++) {
        out[i] = (float)(s * (double)((int32_t)in[i] - zero_point));
    }
}
