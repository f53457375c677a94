/* AVERAGE_POOL_2D, int16 (input and output share quantization): portable reference. */
#include "nn_kernels.h"
#include "nn_quant.h"

void avgpool_s16_ref(const nn_pool_params *p, const nn_dims *in_d, const int16_t *in, const nn_dims *out_d,
                     int16_t *out)
{
    const int32_t C = in_d->c;
    for (int32_t b = 0; b < out_d->n; b++) {
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t y0 = oy * p->stride_h - p->pad_h;
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t ys = nn_max_i32(0, -y0), ye = nn_min_i32(p->filter_h, in_d->h - y0);
                const int32_t xs = nn_max_i32(0, -x0), xe = nn_min_i32(p->filter_w, in_d->w - x0);
                const int32_t count = (ye - ys) * (xe - xs);
                for (int32_t c = 0; c < C; c++) {
                    int32_t acc = 0;
                    for (int32_t ky = ys; ky < ye; ky++) {
                        for (int32_t kx = xs; kx < xe; kx++) {
                            acc += in[((b * in_d->h + y0 + ky) * in_d->w + x0 + kx) * C + c];
                        }
                    }
                    if (count > 0) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    } else {
                        acc = 0;
                    }
                    out[((b * out_d->h + oy) * out_d->w + ox) * C + c] = (int16_t)nn_clamp_i32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}
