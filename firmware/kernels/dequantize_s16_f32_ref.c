/* DEQUANTIZE int16 -> float32. The reference evaluates (float)((double)scale * (q - zero_point)); with
 * |q - zero_point| < 2^24 (the plan compiler checks |zero_point| <= 2^23) both factors are exact floats and
 * their exact product has at most 48 significant bits, so the double product is exact and its rounding to
 * float equals the single-precision product, rounded once. No double arithmetic is needed. */
#include "nn_kernels.h"

void dequantize_s16_f32_ref(int32_t size, float scale, int32_t zero_point, const int16_t *in, float *out)
{
    for (int32_t i = 0; i < size; i++) {
        out[i] = scale * (float)((int32_t)in[i] - zero_point);
    }
}
