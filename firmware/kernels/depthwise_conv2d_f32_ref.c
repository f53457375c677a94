/* DEPTHWISE_CONV_2D, float32: the valid taps found once per pixel, summed in the reference's order. */
#include "nn_dot.h"
#include "nn_kernels.h"

void depthwise_conv2d_f32_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                              const float *filter, const float *bias, const nn_dims *out_d, float *out)
{
    const int32_t ic_n = in_d->c, kw = f_d->w, oc_n = out_d->c, dm = p->depth_multiplier;
    const int32_t col_step = p->dil_w * ic_n, row_step = p->dil_h * in_d->w * ic_n;
    for (int32_t b = 0; b < out_d->n; b++) {
        const float *in_b = in + b * in_d->h * in_d->w * ic_n;
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            nn_valid_taps(y0, p->dil_h, f_d->h, in_d->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                nn_valid_taps(x0, p->dil_w, kw, in_d->w, &kx0, &kx1);
                const float *ip0 = in_b + ((y0 + ky0 * p->dil_h) * in_d->w + x0 + kx0 * p->dil_w) * ic_n;
                const float *fp0 = filter + (ky0 * kw + kx0) * oc_n;
                float *o = out + ((b * out_d->h + oy) * out_d->w + ox) * oc_n;
                for (int32_t ic = 0, oc = 0; ic < ic_n; ic++) {
                    for (int32_t m = 0; m < dm; m++, oc++) {
                        const float *ir = ip0 + ic;
                        const float *fr = fp0 + oc;
                        float acc = 0.0f;
                        for (int32_t ky = ky0; ky < ky1; ky++, ir += row_step, fr += kw * oc_n) {
                            const float *ii = ir, *ff = fr;
                            for (int32_t kx = kx0; kx < kx1; kx++, ii += col_step, ff += oc_n) {
                                acc += *ii * *ff;
                            }
                        }
                        if (bias) {
                            acc += bias[oc];
                        }
                        o[oc] = acc < p->act_min_f ? p->act_min_f : (acc > p->act_max_f ? p->act_max_f : acc);
                    }
                }
            }
        }
    }
}
