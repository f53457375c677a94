/* ADD, 16x8 (int16) with 4-D broadcasting: portable reference (left shift 15, per-input rescale, output rescale). */
#include "nn_kernels.h"
#include "nn_quant.h"

void add_s16_ref(const nn_binary_params *p, const int16_t *in1, const int16_t *in2, int16_t *out)
{
    const int32_t *d = p->out_dims;
    for (int32_t i0 = 0; i0 < d[0]; i0++) {
        for (int32_t i1 = 0; i1 < d[1]; i1++) {
            for (int32_t i2 = 0; i2 < d[2]; i2++) {
                const int16_t *a = in1 + i0 * p->in1_strides[0] + i1 * p->in1_strides[1] + i2 * p->in1_strides[2];
                const int16_t *b = in2 + i0 * p->in2_strides[0] + i1 * p->in2_strides[1] + i2 * p->in2_strides[2];
                for (int32_t i3 = 0; i3 < d[3]; i3++) {
                    const int32_t x1 = (p->input1_offset + a[i3 * p->in1_strides[3]]) * (1 << p->left_shift);
                    const int32_t x2 = (p->input2_offset + b[i3 * p->in2_strides[3]]) * (1 << p->left_shift);
                    const int32_t s1 = nn_requantize(x1, p->input1_multiplier, p->input1_shift);
                    const int32_t s2 = nn_requantize(x2, p->input2_multiplier, p->input2_shift);
                    int32_t r = nn_requantize((int32_t)((uint32_t)s1 + (uint32_t)s2), p->output_multiplier, p->output_shift);
                    r = nn_clamp_i32(r, -(1 << 24), 1 << 24) + p->output_offset;
                    *out++ = (int16_t)nn_clamp_i32(r, p->act_min, p->act_max);
                }
            }
        }
    }
}
