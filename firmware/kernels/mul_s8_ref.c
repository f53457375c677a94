/* MUL, int8 with 4-D broadcasting: portable reference. */
#include "nn_kernels.h"
#include "nn_quant.h"

void mul_s8_ref(const nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    const int32_t *d = p->out_dims;
    for (int32_t i0 = 0; i0 < d[0]; i0++) {
        for (int32_t i1 = 0; i1 < d[1]; i1++) {
            for (int32_t i2 = 0; i2 < d[2]; i2++) {
                const int8_t *a = in1 + i0 * p->in1_strides[0] + i1 * p->in1_strides[1] + i2 * p->in1_strides[2];
                const int8_t *b = in2 + i0 * p->in2_strides[0] + i1 * p->in2_strides[1] + i2 * p->in2_strides[2];
                for (int32_t i3 = 0; i3 < d[3]; i3++) {
                    const int32_t x1 = p->input1_offset + a[i3 * p->in1_strides[3]];
                    const int32_t x2 = p->input2_offset + b[i3 * p->in2_strides[3]];
                    int32_t r = nn_requantize(x1 * x2, p->output_multiplier, p->output_shift) + p->output_offset;
                    *out++ = (int8_t)nn_clamp_i32(r, p->act_min, p->act_max);
                }
            }
        }
    }
}
