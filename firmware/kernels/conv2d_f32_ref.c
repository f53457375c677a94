/* CONV_2D, float32: the valid taps found once per pixel, a kernel row's taps x channels as one contiguous run
 * (no horizontal dilation), summed in the reference's order (kernel row, column, channel). */
#include "nn_dot.h"
#include "nn_kernels.h"

/* acc + sum of x[i] * w[i] in order (no reassociation: the reference's rounding, bit for bit) */
static inline float dot_f32(const float *x, const float *w, int32_t n, float acc)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        acc += x[i] * w[i];
        acc += x[i + 1] * w[i + 1];
        acc += x[i + 2] * w[i + 2];
        acc += x[i + 3] * w[i + 3];
    }
    for (; i < n; i++) {
        acc += x[i] * w[i];
    }
    return acc;
}

void conv2d_f32_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                    const float *filter, const float *bias, const nn_dims *out_d, float *out)
{
    const int32_t ic = in_d->c, kh = f_d->h, kw = f_d->w, oc_n = out_d->c;
    for (int32_t b = 0; b < out_d->n; b++) {
        const float *in_b = in + b * in_d->h * in_d->w * ic;
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            nn_valid_taps(y0, p->dil_h, kh, in_d->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                nn_valid_taps(x0, p->dil_w, kw, in_d->w, &kx0, &kx1);
                const float *row0 = in_b + ((y0 + ky0 * p->dil_h) * in_d->w + x0 + kx0 * p->dil_w) * ic;
                const int32_t in_row = p->dil_h * in_d->w * ic, f_row = kw * ic, run = (kx1 - kx0) * ic;
                float *o = out + ((b * out_d->h + oy) * out_d->w + ox) * oc_n;
                for (int32_t oc = 0; oc < oc_n; oc++) {
                    float acc = 0.0f;
                    const float *ip = row0;
                    const float *fp = filter + ((oc * kh + ky0) * kw + kx0) * ic;
                    for (int32_t ky = ky0; ky < ky1; ky++, ip += in_row, fp += f_row) {
                        if (p->dil_w == 1) {
                            acc = dot_f32(ip, fp, run, acc);
                        } else {
                            const float *ii = ip, *ff = fp;
                            for (int32_t kx = kx0; kx < kx1; kx++, ii += p->dil_w * ic, ff += ic) {
                                acc = dot_f32(ii, ff, ic, acc);
                            }
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
