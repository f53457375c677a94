/* CONV_2D, float32. */
#include "nn_kernels.h"

void conv2d_f32_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                    const float *filter, const float *bias, const nn_dims *out_d, float *out)
{
    const int32_t ic = in_d->c, kh = f_d->h, kw = f_d->w, oc_n = out_d->c;
    for (int32_t b = 0; b < out_d->n; b++) {
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t y0 = oy * p->stride_h - p->pad_h;
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                for (int32_t oc = 0; oc < oc_n; oc++) {
                    float acc = 0.0f;
                    for (int32_t ky = 0; ky < kh; ky++) {
                        const int32_t y = y0 + ky * p->dil_h;
                        if (y < 0 || y >= in_d->h) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; kx++) {
                            const int32_t x = x0 + kx * p->dil_w;
                            if (x < 0 || x >= in_d->w) {
                                continue;
                            }
                            const float *ip = in + ((b * in_d->h + y) * in_d->w + x) * ic;
                            const float *fp = filter + ((oc * kh + ky) * kw + kx) * ic;
                            for (int32_t c = 0; c < ic; c++) {
                                acc += ip[c] * fp[c];
                            }
                        }
                    }
                    if (bias) {
                        acc += bias[oc];
                    }
                    acc = acc < p->act_min_f ? p->act_min_f : (acc > p->act_max_f ? p->act_max_f : acc);
                    out[((b * out_d->h + oy) * out_d->w + ox) * oc_n + oc] = acc;
                }
            }
        }
    }
}
