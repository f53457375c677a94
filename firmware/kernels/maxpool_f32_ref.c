/* MAX_POOL_2D, float32. */
#include "nn_kernels.h"
#include "nn_quant.h"

void maxpool_f32_ref(const nn_pool_params *p, const nn_dims *in_d, const float *in, const nn_dims *out_d, float *out)
{
    const int32_t C = in_d->c;
    for (int32_t b = 0; b < out_d->n; b++) {
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t y0 = oy * p->stride_h - p->pad_h;
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t ys = nn_max_i32(0, -y0), ye = nn_min_i32(p->filter_h, in_d->h - y0);
                const int32_t xs = nn_max_i32(0, -x0), xe = nn_min_i32(p->filter_w, in_d->w - x0);
                for (int32_t c = 0; c < C; c++) {
                    float m = -3.402823466e38f;
                    for (int32_t ky = ys; ky < ye; ky++) {
                        for (int32_t kx = xs; kx < xe; kx++) {
                            float v = in[((b * in_d->h + y0 + ky) * in_d->w + x0 + kx) * C + c];
                            m = v > m ? v : m;
                        }
                    }
                    m = m < p->act_min_f ? p->act_min_f : (m > p->act_max_f ? p->act_max_f : m);
                    out[((b * out_d->h + oy) * out_d->w + ox) * C + c] = m;
                }
            }
        }
    }
}
