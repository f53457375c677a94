/*
 * DEPTHWISE_CONV_2D, int8, Armv7E-M SIMD: for depth multiplier 1, four channels per step: 4 input and
 * 4 weight bytes are SXTB16-expanded (input offset added with SADD16) and multiplied lane-wise with
 * SMLABB/SMLATT into four accumulators. Other depth multipliers and the channel tail are scalar.
 */
#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

void depthwise_conv2d_s8_simd(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                              const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                              const nn_dims *out_d, int8_t *out)
{
    if (p->depth_multiplier != 1) {
        depthwise_conv2d_s8_ref(p, in_d, in, f_d, filter, bias, mult, shift, out_d, out);
        return;
    }
    const int32_t C = in_d->c, kh = f_d->h, kw = f_d->w;
    const int32_t C4 = C & ~3;
    const uint32_t off2 = nn_pack16(p->input_offset, p->input_offset);
    for (int32_t b = 0; b < out_d->n; b++) {
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                int8_t *o = out + ((b * out_d->h + oy) * out_d->w + ox) * C;
                int32_t c = 0;
                for (; c < C4; c += 4) {
                    int32_t a0 = bias ? bias[c] : 0, a1 = bias ? bias[c + 1] : 0;
                    int32_t a2 = bias ? bias[c + 2] : 0, a3 = bias ? bias[c + 3] : 0;
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
                            const uint32_t iv = nn_read32(in + ((b * in_d->h + y) * in_d->w + x) * C + c);
                            const uint32_t fv = nn_read32(filter + (ky * kw + kx) * C + c);
                            const uint32_t ie = nn_sadd16(nn_sxtb16(iv), off2);
                            const uint32_t io = nn_sadd16(nn_sxtb16(nn_ror(iv, 8)), off2);
                            const uint32_t fe = nn_sxtb16(fv), fo = nn_sxtb16(nn_ror(fv, 8));
                            a0 = nn_smlabb(ie, fe, a0);
                            a2 = nn_smlatt(ie, fe, a2);
                            a1 = nn_smlabb(io, fo, a1);
                            a3 = nn_smlatt(io, fo, a3);
                        }
                    }
                    a0 = nn_requantize(a0, mult[c], shift[c]) + p->output_offset;
                    a1 = nn_requantize(a1, mult[c + 1], shift[c + 1]) + p->output_offset;
                    a2 = nn_requantize(a2, mult[c + 2], shift[c + 2]) + p->output_offset;
                    a3 = nn_requantize(a3, mult[c + 3], shift[c + 3]) + p->output_offset;
                    o[c] = (int8_t)nn_clamp_i32(a0, p->act_min, p->act_max);
                    o[c + 1] = (int8_t)nn_clamp_i32(a1, p->act_min, p->act_max);
                    o[c + 2] = (int8_t)nn_clamp_i32(a2, p->act_min, p->act_max);
                    o[c + 3] = (int8_t)nn_clamp_i32(a3, p->act_min, p->act_max);
                }
                for (; c < C; c++) {
                    int32_t acc = bias ? bias[c] : 0;
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
                            acc += filter[(ky * kw + kx) * C + c] *
                                   (in[((b * in_d->h + y) * in_d->w + x) * C + c] + p->input_offset);
                        }
                    }
                    acc = nn_requantize(acc, mult[c], shift[c]) + p->output_offset;
                    o[c] = (int8_t)nn_clamp_i32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}
