/* LOGISTIC, int8 in, int8 out (scale 1/256, zero point -128): fixed-point reference (input Q4.27). */
#include "nn_kernels.h"
#include "nn_quant.h"

#define INPUT_INTEGER_BITS 4

void logistic_s8_ref(int32_t size, int32_t input_zero_point, int32_t input_range_radius, int32_t input_multiplier,
                     int32_t input_left_shift, const int8_t *in, int8_t *out)
{
    for (int32_t i = 0; i < size; i++) {
        const int32_t x = (int32_t)in[i] - input_zero_point;
        if (x <= -input_range_radius) {
            out[i] = -128;
        } else if (x >= input_range_radius) {
            out[i] = 127;
        } else {
            const int32_t x_q4 = nn_requantize(x, input_multiplier, input_left_shift);
            const int32_t y_q0 = nn_logistic_fixed(x_q4, INPUT_INTEGER_BITS);
            int32_t y = nn_rdbypot(y_q0, 31 - 8) - 128;
            out[i] = (int8_t)nn_clamp_i32(y, -128, 127);
        }
    }
}
