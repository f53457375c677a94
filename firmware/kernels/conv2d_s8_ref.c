/*
 * CONV_2D, int8 activations, per-channel int8 weights, int32 bias: portable reference.
 * Per output pixel the taps inside the input are found once (padding never reaches the inner loop); without
 * horizontal dilation a kernel row's valid taps are one contiguous run of input channels in both the input
 * and the filter, so the inner loop is one dot product per kernel row, for two output channels at a time.
 */
#if defined(__GNUC__) && !defined(__clang__)
/* the dot product's sums as written, one MLA per product (see fully_connected_s8_ref.c) */
#pragma GCC optimize("no-tree-reassoc")
#endif
#include "nn_dot.h"
#include "nn_kernels.h"
#include "nn_quant.h"

void conv2d_s8_ref(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                   const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                   const nn_dims *out_d, int8_t *out)
{
    const int32_t ic = in_d->c, kh = f_d->h, kw = f_d->w, oc_n = out_d->c;
    for (int32_t b = 0; b < out_d->n; b++) {
        const int8_t *in_b = in + b * in_d->h * in_d->w * ic;
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            nn_valid_taps(y0, p->dil_h, kh, in_d->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                nn_valid_taps(x0, p->dil_w, kw, in_d->w, &kx0, &kx1);
                int8_t *o = out + ((b * out_d->h + oy) * out_d->w + ox) * oc_n;
                /* the window's first valid tap, the input and filter steps between kernel rows, and the length
                 * of a kernel row's valid run of taps x channels */
                const int8_t *row0 = in_b + ((y0 + ky0 * p->dil_h) * in_d->w + x0 + kx0 * p->dil_w) * ic;
                const int32_t in_row = p->dil_h * in_d->w * ic, f_row = kw * ic, run = (kx1 - kx0) * ic;
                /* two output channels at a time share each activation read */
                for (int32_t oc = 0; oc < oc_n; oc += 2) {
                    const int two = oc + 1 < oc_n;
                    const int32_t oc1 = two ? oc + 1 : oc;
                    int32_t acc0 = 0, acc1 = 0;
                    const int8_t *ip = row0;
                    const int8_t *f0 = filter + ((oc * kh + ky0) * kw + kx0) * ic;
                    const int8_t *f1 = filter + ((oc1 * kh + ky0) * kw + kx0) * ic;
                    for (int32_t ky = ky0; ky < ky1; ky++, ip += in_row, f0 += f_row, f1 += f_row) {
                        if (p->dil_w == 1) {
                            nn_dot2_s8(ip, f0, f1, run, p->input_offset, &acc0, &acc1);
                        } else {
                            const int8_t *ii = ip, *g0 = f0, *g1 = f1;
                            for (int32_t kx = kx0; kx < kx1; kx++, ii += p->dil_w * ic, g0 += ic, g1 += ic) {
                                nn_dot2_s8(ii, g0, g1, ic, p->input_offset, &acc0, &acc1);
                            }
                        }
                    }
                    if (bias) {
                        acc0 += bias[oc];
                        acc1 += bias[oc1];
                    }
                    acc0 = nn_requantize(acc0, mult[oc], shift[oc]) + p->output_offset;
                    o[oc] = (int8_t)nn_clamp_i32(acc0, p->act_min, p->act_max);
                    if (two) {
                        acc1 = nn_requantize(acc1, mult[oc1], shift[oc1]) + p->output_offset;
                        o[oc1] = (int8_t)nn_clamp_i32(acc1, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
