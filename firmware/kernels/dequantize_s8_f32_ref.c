/* DEQUANTIZE int8 -> float32 through the plan's 256-entry table: table[(uint8_t)q] is the reference's
 * (float)(scale * (q - zero_point)) evaluated in double, computed on the host (measure_agent/plan/quantize.py),
 * so no double arithmetic runs on the board. */
#include "nn_kernels.h"

void dequantize_s8_f32_ref(int32_t size, const float *table, const int8_t *in, float *out)
{
    for (int32_t i = 0; i < size; i++) {
        out[i] = table[(uint8_t)in[i]];
    }
}
