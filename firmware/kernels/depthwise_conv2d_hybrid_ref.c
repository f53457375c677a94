/* DEPTHWISE_CONV_2D, dynamic-range: float activations quantized per batch at run time, int8 weights (1HWO).
 * Per-channel weights: asymmetric input quantization; per-tensor weights: symmetric. */
#include "nn_dot.h"
#include "nn_hybrid_quant.h"
#include "nn_kernels.h"

void depthwise_conv2d_hybrid_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                                 const int8_t *filter, const float *weight_scales, int32_t per_channel,
                                 const float *bias, const nn_dims *out_d, float *out, int8_t *scratch)
{
    const int32_t ic_n = in_d->c, kh = f_d->h, kw = f_d->w, oc_n = out_d->c, dm = p->depth_multiplier;
    const int32_t batch_size = in_d->h * in_d->w * in_d->c;
    for (int32_t b = 0; b < out_d->n; b++) {
        int32_t offset;
        int8_t *q = scratch + b * batch_size;
        float sf = quantize_input_hybrid_ref(in + b * batch_size, batch_size, q, per_channel, &offset);
        if (!per_channel) {
            sf *= weight_scales[0];
        }
        const int32_t col_step = p->dil_w * ic_n, row_step = p->dil_h * in_d->w * ic_n;
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            nn_valid_taps(y0, p->dil_h, kh, in_d->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                nn_valid_taps(x0, p->dil_w, kw, in_d->w, &kx0, &kx1);
                const int8_t *ip0 = q + ((y0 + ky0 * p->dil_h) * in_d->w + x0 + kx0 * p->dil_w) * ic_n;
                const int8_t *fp0 = filter + (ky0 * kw + kx0) * oc_n;
                float *o = out + ((b * out_d->h + oy) * out_d->w + ox) * oc_n;
                for (int32_t ic = 0, oc = 0; ic < ic_n; ic++) {
                    for (int32_t m = 0; m < dm; m++, oc++) {
                        const int8_t *ir = ip0 + ic;
                        const int8_t *fr = fp0 + oc;
                        int32_t acc = 0;
                        for (int32_t ky = ky0; ky < ky1; ky++, ir += row_step, fr += kw * oc_n) {
                            const int8_t *ii = ir, *ff = fr;
                            for (int32_t kx = kx0; kx < kx1; kx++, ii += col_step, ff += oc_n) {
                                acc += (int32_t)*ff * ((int32_t)*ii - offset);
                            }
                        }
                        float r = per_channel ? (float)acc * (weight_scales[oc] * sf) : (float)acc * sf;
                        if (bias) {
                            r += bias[oc];
                        }
                        o[oc] = r < p->act_min_f ? p->act_min_f : (r > p->act_max_f ? p->act_max_f : r);
                    }
                }
            }
        }
    }
}
