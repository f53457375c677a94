/* CONV_2D, dynamic-range: float activations quantized per batch at run time, int8 weights.
 * Per-channel weights: asymmetric input quantization; per-tensor weights: symmetric. */
#include "nn_hybrid_quant.h"
#include "nn_kernels.h"

void conv2d_hybrid_ref(const nn_conv_params *p, const nn_dims *in_d, const float *in, const nn_dims *f_d,
                       const int8_t *filter, const float *weight_scales, int32_t per_channel, const float *bias,
                       const nn_dims *out_d, float *out, int8_t *scratch)
{
    const int32_t ic = in_d->c, kh = f_d->h, kw = f_d->w, oc_n = out_d->c;
    const int32_t batch_size = in_d->h * in_d->w * in_d->c;
    for (int32_t b = 0; b < out_d->n; b++) {
        int32_t offset = 0;
        float sf;
        int8_t *q = scratch + b * batch_size;
        if (per_channel) {
            sf = nn_asymmetric_quantize(in + b * batch_size, batch_size, q, &offset);
        } else {
            sf = nn_symmetric_quantize(in + b * batch_size, batch_size, q) * weight_scales[0];
        }
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t y0 = oy * p->stride_h - p->pad_h;
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                for (int32_t oc = 0; oc < oc_n; oc++) {
                    int32_t acc = 0;
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
                            const int8_t *ip = q + (y * in_d->w + x) * ic;
                            const int8_t *fp = filter + ((oc * kh + ky) * kw + kx) * ic;
                            for (int32_t c = 0; c < ic; c++) {
                                acc += (int32_t)fp[c] * ((int32_t)ip[c] - offset);
                            }
                        }
                    }
                    float r = per_channel ? (float)acc * weight_scales[oc] * sf : (float)acc * sf;
                    if (bias) {
                        r += bias[oc];
                    }
                    r = r < p->act_min_f ? p->act_min_f : (r > p->act_max_f ? p->act_max_f : r);
                    out[((b * out_d->h + oy) * out_d->w + ox) * oc_n + oc] = r;
                }
            }
        }
    }
}
