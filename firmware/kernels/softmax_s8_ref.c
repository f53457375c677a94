/* SOFTMAX, int8 in, int8 out (scale 1/256, zero point -128): fixed-point reference (exp in Q5.26, sum in Q12.19). */
#include "nn_kernels.h"
#include "nn_quant.h"

#define SCALED_DIFF_INTEGER_BITS 5
#define ACCUMULATION_INTEGER_BITS 12

NN_SMALL void softmax_s8_ref(int32_t rows, int32_t depth, int32_t input_multiplier, int32_t input_left_shift,
                    int32_t diff_min, const int8_t *in, int8_t *out)
{
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        int8_t *y = out + r * depth;
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < depth; c++) {
            max_in_row = nn_max_i32(max_in_row, x[c]);
        }
        int32_t sum_of_exps = 0;
        for (int32_t c = 0; c < depth; c++) {
            int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) {
                int32_t rescaled = nn_requantize(diff, input_multiplier, input_left_shift);
                int32_t e = nn_exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS);
                sum_of_exps += nn_rdbypot(e, ACCUMULATION_INTEGER_BITS);
            }
        }
        int num_bits_over_unit;
        int32_t shifted_scale = nn_get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS, &num_bits_over_unit);
        for (int32_t c = 0; c < depth; c++) {
            int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) {
                int32_t rescaled = nn_requantize(diff, input_multiplier, input_left_shift);
                int32_t e = nn_exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS);
                int exponent = num_bits_over_unit + 31 - 8;
                exponent = exponent < 0 ? 0 : (exponent > 31 ? 31 : exponent); /* always 4..31 for valid plans */
                int32_t unsat = nn_rdbypot(nn_srdhm(shifted_scale, e), exponent);
                y[c] = (int8_t)nn_clamp_i32(unsat - 128, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
}
