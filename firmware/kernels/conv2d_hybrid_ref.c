/* CONV_2D, dynamic-range: float activations quantized per batch at run time, int8 weights.
 * Per-channel weights: asymmetric input quantization; per-tensor weights: symmetric. The integer dot products
 * are the int8 reference's (valid taps found once per pixel, contiguous runs, two channels at a time). */
#include "nn_dot.h"
#include "nn_hybrid_quant.h"
#include "nn_kernels.h"

static inline float hybrid_out(int32_t acc, const float *weight_scales, int32_t per_channel, int32_t oc, float sf,
                               const float *bias, const nn_conv_params *p)
{
    float r = per_channel ? (float)acc * weight_scales[oc] * sf : (float)acc * sf;
    if (bias) {
        r += bias[oc];
    }
    return r < p->act_min_f ? p->act_min_f : (r > p->act_max_f ? p->act_max_f : r);
}

void conv2d_hybrid_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                       const int8_t *filter, const float *weight_scales, int32_t per_channel, const float *bias,
                       const nn_dims *out_d, float *out, int8_t *scratch)
{
    const int32_t ic = in_d->c, kh = f_d->h, kw = f_d->w, oc_n = out_d->c;
    const int32_t batch_size = in_d->h * in_d->w * in_d->c;
    for (int32_t b = 0; b < out_d->n; b++) {
        int32_t offset;
        int8_t *q = scratch + b * batch_size;
        float sf = quantize_input_hybrid_ref(in + b * batch_size, batch_size, q, per_channel, &offset);
        if (!per_channel) {
            sf *= weight_scales[0];
        }
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            nn_valid_taps(y0, p->dil_h, kh, in_d->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                nn_valid_taps(x0, p->dil_w, kw, in_d->w, &kx0, &kx1);
                const int8_t *row0 = q + ((y0 + ky0 * p->dil_h) * in_d->w + x0 + kx0 * p->dil_w) * ic;
                const int32_t in_row = p->dil_h * in_d->w * ic, f_row = kw * ic, run = (kx1 - kx0) * ic;
                float *o = out + ((b * out_d->h + oy) * out_d->w + ox) * oc_n;
                for (int32_t oc = 0; oc < oc_n; oc += 2) {
                    const int two = oc + 1 < oc_n;
                    const int32_t oc1 = two ? oc + 1 : oc;
                    int32_t acc0 = 0, acc1 = 0;
                    const int8_t *ip = row0;
                    const int8_t *f0 = filter + ((oc * kh + ky0) * kw + kx0) * ic;
                    const int8_t *f1 = filter + ((oc1 * kh + ky0) * kw + kx0) * ic;
                    for (int32_t ky = ky0; ky < ky1; ky++, ip += in_row, f0 += f_row, f1 += f_row) {
                        if (p->dil_w == 1) {
                            nn_dot2_s8(ip, f0, f1, run, -offset, &acc0, &acc1);
                        } else {
                            const int8_t *ii = ip, *g0 = f0, *g1 = f1;
                            for (int32_t kx = kx0; kx < kx1; kx++, ii += p->dil_w * ic, g0 += ic, g1 += ic) {
                                nn_dot2_s8(ii, g0, g1, ic, -offset, &acc0, &acc1);
                            }
                        }
                    }
                    o[oc] = hybrid_out(acc0, weight_scales, per_channel, oc, sf, bias, p);
                    if (two) {
                        o[oc1] = hybrid_out(acc1, weight_scales, per_channel, oc1, sf, bias, p);
                    }
                }
            }
        }
    }
}
