/*
 * SOFTMAX, 16x8: int16 in (zero point 0), int16 out (scale 1/32768, zero point 0): the reference's table
 * algorithm. exp(x - max) from a 513-entry table over [-10, 0] with linear interpolation, the row sum's
 * reciprocal from a 513-entry 1/(1 + x) table over [0, 1], both tabulated on the host
 * (measure_agent/plan/quantize.py) as the reference's Prepare does.
 */
#include "nn_kernels.h"
#include "nn_quant.h"

/* Table value at `value` (Q0.15 in [-1, 1)): base from the top 9 bits, slope between neighbours. */
static inline int32_t lut16(int32_t value, const int16_t *lut)
{
    const int32_t index = 256 + (value >> 7);
    const int32_t frac = value & 0x7F;
    const int32_t base = lut[index];
    const int32_t slope = lut[index + 1] - lut[index];
    return (int16_t)(base + ((slope * frac + 64) >> 7));
}

void softmax_s16_ref(int32_t rows, int32_t depth, int32_t input_multiplier, int32_t input_left_shift,
                     const int16_t *exp_lut, const int16_t *one_over_lut, const int16_t *in, int16_t *out)
{
    for (int32_t r = 0; r < rows; r++) {
        const int16_t *x = in + r * depth;
        int16_t *y = out + r * depth;
        int32_t max_in_row = -32768;
        for (int32_t c = 0; c < depth; c++) {
            max_in_row = nn_max_i32(max_in_row, x[c]);
        }
        int32_t sum = 0;
        for (int32_t c = 0; c < depth; c++) {
            const int32_t diff = nn_requantize((int32_t)x[c] - max_in_row, input_multiplier, input_left_shift);
            const int32_t e = lut16(nn_clamp_i32(diff + 32767, -32768, 32767), exp_lut);
            y[c] = (int16_t)e; /* kept until the reciprocal is known */
            sum += e;
        }
        /* 1/sum: sum normalised to [1, 2) in Q1.14 ... then 1/(1 + x) of its fractional part */
        const int headroom_plus_one = __builtin_clz((uint32_t)(sum > 0 ? sum : 1));
        const int32_t shifted = (int32_t)((((int64_t)sum << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        const int32_t sym = shifted - ((1 << 15) + (1 << 16));
        const int32_t recip = lut16(nn_clamp_i32(sym, -32768, 32767), one_over_lut);
        const int right_shift = 31 - headroom_plus_one;
        const int64_t round = (int64_t)1 << (right_shift - 1);
        for (int32_t c = 0; c < depth; c++) {
            const int32_t v = (int32_t)(((int64_t)y[c] * recip + round) >> right_shift);
            y[c] = (int16_t)nn_clamp_i32(v, 0, 32767);
        }
    }
}
