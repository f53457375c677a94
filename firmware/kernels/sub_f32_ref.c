/* SUB, float32 with 4-D broadcasting. */
#include "nn_kernels.h"

void sub_f32_ref(const nn_binary_params *p, const float *in1, const float *in2, float *out)
{
    const int32_t *d = p->out_dims;
    for (int32_t i0 = 0; i0 < d[0]; i0++) {
        for (int32_t i1 = 0; i1 < d[1]; i1++) {
            for (int32_t i2 = 0; i2 < d[2]; i2++) {
                const float *a = in1 + i0 * p->in1_strides[0] + i1 * p->in1_strides[1] + i2 * p->in1_strides[2];
                const float *b = in2 + i0 * p->in2_strides[0] + i1 * p->in2_strides[1] + i2 * p->in2_strides[2];
                for (int32_t i3 = 0; i3 < d[3]; i3++) {
                    float r = a[i3 * p->in1_strides[3]] - b[i3 * p->in2_strides[3]];
                    *out++ = r < p->act_min_f ? p->act_min_f : (r > p->act_max_f ? p->act_max_f : r);
                }
            }
        }
    }
}
