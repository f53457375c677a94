/* int8 -> int8 rescale with clamp: standalone RELU/RELU6 and QUANTIZE int8->int8. Portable reference. */
#include "nn_kernels.h"
#include "nn_quant.h"

void requantize_s8_ref(int32_t size, int32_t input_zero_point, int32_t output_zero_point, int32_t multiplier,
                       int32_t shift, int32_t act_min, int32_t act_max, const int8_t *in, int8_t *out)
{
    for (int32_t i = 0; i < size; i++) {
        int32_t v = output_zero_point + nn_requantize((int32_t)in[i] - input_zero_point, multiplier, shift);
        out[i] = (int8_t)nn_clamp_i32(v, act_min, act_max);
    }
}
