/* QUANTIZE float32 -> int8: q = round_half_away(x / scale) + zero_point, clamped. */
#include <math.h>

#include "nn_kernels.h"
#include "nn_quant.h"

void quantize_f32_s8_ref(int32_t size, float scale, int32_t zero_point, const float *in, int8_t *out)
{
    for (int32_t i = 0; i < size; i++) {
        float r = roundf(in[i] / scale);
        int32_t v;
        if (r >= 2147483520.0f) {
            v = NN_INT32_MAX;
        } else if (r <= -2147483648.0f) {
            v = NN_INT32_MIN;
        } else if (r != r) {
            v = 0;
        } else {
            v = (int32_t)r;
        }
        v = (int32_t)nn_clamp_i32(v, -128 - zero_point, 127 - zero_point) + zero_point;
        out[i] = (int8_t)v;
    }
}
