/* DEPTHWISE_CONV_2D, 16x8: int16 activations, per-channel int8 weights (1HWO), int64 bias: portable reference. */
#include "nn_kernels.h"
#include "nn_quant.h"

void depthwise_conv2d_s16_ref(const nn_conv_params *p, const nn_dims *in_d, const int16_t *in, const nn_dims *f_d,
                              const int8_t *filter, const int64_t *bias, const int32_t *mult, const int32_t *shift,
                              const nn_dims *out_d, int16_t *out)
{
    const int32_t ic_n = in_d->c, kh = f_d->h, kw = f_d->w, oc_n = out_d->c, dm = p->depth_multiplier;
    for (int32_t b = 0; b < out_d->n; b++) {
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t y0 = oy * p->stride_h - p->pad_h;
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                for (int32_t ic = 0; ic < ic_n; ic++) {
                    for (int32_t m = 0; m < dm; m++) {
                        const int32_t oc = ic * dm + m;
                        int64_t acc = 0;
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
                                const int32_t iv = in[((b * in_d->h + y) * in_d->w + x) * ic_n + ic];
                                acc += (int32_t)filter[(ky * kw + kx) * oc_n + oc] * (iv + p->input_offset);
                            }
                        }
                        if (bias) {
                            acc += bias[oc];
                        }
                        const int32_t r = nn_requantize64_q15(acc, mult[oc], shift[oc]) + p->output_offset;
                        out[((b * out_d->h + oy) * out_d->w + ox) * oc_n + oc] =
                            (int16_t)nn_clamp_i32(r, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
