/*
 * DEPTHWISE_CONV_2D, int8 activations, per-channel int8 weights (1HWO), int32 bias: portable reference.
 * Per output pixel the taps inside the input are found once (padding never reaches the inner loop); with depth
 * multiplier 1, four channels at a time (one word of inputs and one of weights per tap, nn_dot.h).
 */
#include "nn_dot.h"
#include "nn_kernels.h"
#include "nn_quant.h"

void depthwise_conv2d_s8_ref(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                             const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                             const nn_dims *out_d, int8_t *out)
{
    const int32_t ic_n = in_d->c, kw = f_d->w, oc_n = out_d->c, dm = p->depth_multiplier;
    const int32_t col_step = p->dil_w * ic_n, row_step = p->dil_h * in_d->w * ic_n;
    for (int32_t b = 0; b < out_d->n; b++) {
        const int8_t *in_b = in + b * in_d->h * in_d->w * ic_n;
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            nn_valid_taps(y0, p->dil_h, f_d->h, in_d->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                nn_valid_taps(x0, p->dil_w, kw, in_d->w, &kx0, &kx1);
                /* first valid tap of the window, for input channel 0 and output channel 0 */
                const int8_t *ip0 = in_b + ((y0 + ky0 * p->dil_h) * in_d->w + x0 + kx0 * p->dil_w) * ic_n;
                const int8_t *fp0 = filter + (ky0 * kw + kx0) * oc_n;
                int8_t *o = out + ((b * out_d->h + oy) * out_d->w + ox) * oc_n;
                const int32_t ny = ky1 - ky0, nx = kx1 - kx0;
                int32_t ic = 0, oc = 0;
#if NN_DOT_WORDS
                /* depth multiplier 1: four channels at a time, one word of inputs and of weights per tap */
                for (; dm == 1 && ic + 4 <= ic_n; ic += 4, oc += 4) {
                    const int32_t in_off = p->input_offset;
                    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    const int8_t *ir = ip0 + ic;
                    const int8_t *fr = fp0 + oc;
                    for (int32_t ky = ny; ky > 0; ky--, ir += row_step, fr += kw * oc_n) {
                        const int8_t *ii = ir;
                        const int8_t *ff = fr;
                        for (int32_t kx = nx; kx > 0; kx--, ii += col_step, ff += oc_n) {
                            const uint32_t xv = nn_dot_load4(ii), wv = nn_dot_load4(ff);
                            a0 += NN_DOT_B(wv, 0) * (NN_DOT_B(xv, 0) + in_off);
                            a1 += NN_DOT_B(wv, 1) * (NN_DOT_B(xv, 1) + in_off);
                            a2 += NN_DOT_B(wv, 2) * (NN_DOT_B(xv, 2) + in_off);
                            a3 += NN_DOT_B(wv, 3) * (NN_DOT_B(xv, 3) + in_off);
                        }
                    }
                    const int32_t acc[4] = {a0, a1, a2, a3};
                    for (int32_t j = 0; j < 4; j++) {
                        int32_t a = acc[j] + (bias ? bias[oc + j] : 0);
                        a = nn_requantize(a, mult[oc + j], shift[oc + j]) + p->output_offset;
                        o[oc + j] = (int8_t)nn_clamp_i32(a, p->act_min, p->act_max);
                    }
                }
#endif
                for (; ic < ic_n; ic++) {
                    for (int32_t m = 0; m < dm; m++, oc++) { /* one output channel at a time */
                        const int8_t *ir = ip0 + ic;
                        const int8_t *fr = fp0 + oc;
                        int32_t acc = 0;
                        for (int32_t ky = ny; ky > 0; ky--, ir += row_step, fr += kw * oc_n) {
                            if (nx == 3) { /* the common full row of a 3-wide kernel, written out */
                                acc += (int32_t)fr[0] * ((int32_t)ir[0] + p->input_offset) +
                                       (int32_t)fr[oc_n] * ((int32_t)ir[col_step] + p->input_offset) +
                                       (int32_t)fr[2 * oc_n] * ((int32_t)ir[2 * col_step] + p->input_offset);
                                continue;
                            }
                            const int8_t *ii = ir;
                            const int8_t *ff = fr;
                            for (int32_t kx = nx; kx > 0; kx--, ii += col_step, ff += oc_n) {
                                acc += (int32_t)*ff * ((int32_t)*ii + p->input_offset);
                            }
                        }
                        if (bias) {
                            acc += bias[oc];
                        }
                        acc = nn_requantize(acc, mult[oc], shift[oc]) + p->output_offset;
                        o[oc] = (int8_t)nn_clamp_i32(acc, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
