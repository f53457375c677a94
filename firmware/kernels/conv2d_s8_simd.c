/*
 * CONV_2D, int8, Armv7E-M SIMD: im2col of two output pixels into int16 columns (input offset added,
 * each group of 4 reordered as x0,x2,x1,x3 to match SXTB16 of 4 weight bytes), then a 2x2 block of
 * (output channel, pixel) dot products with SMLAD. Filter length K = KH*KW*IC; when IC % 4 == 0 every
 * pixel segment starts on a group boundary and the column is filled 4 bytes at a time.
 */
#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

size_t conv2d_s8_simd_scratch_bytes(const nn_dims *f_d)
{
    return 2u * sizeof(int16_t) * (size_t)f_d->h * (size_t)f_d->w * (size_t)f_d->c;
}

static void fill_column(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in_b, const nn_dims *f_d,
                        int32_t y0, int32_t x0, int16_t *col)
{
    static const uint8_t perm[4] = {0, 2, 1, 3};
    const int32_t ic = in_d->c;
    const int32_t K = f_d->h * f_d->w * ic;
    const int32_t k_groups_end = K & ~3;
    const uint32_t off2 = nn_pack16(p->input_offset, p->input_offset);
    int32_t k = 0;
    for (int32_t ky = 0; ky < f_d->h; ky++) {
        const int32_t y = y0 + ky * p->dil_h;
        for (int32_t kx = 0; kx < f_d->w; kx++, k += ic) {
            const int32_t x = x0 + kx * p->dil_w;
            const int inside = y >= 0 && y < in_d->h && x >= 0 && x < in_d->w;
            const int8_t *src = inside ? in_b + (y * in_d->w + x) * ic : NULL;
            if (((k | ic) & 3) == 0) {
                if (inside) {
                    for (int32_t c = 0; c < ic; c += 4) {
                        const uint32_t v = nn_read32(src + c);
                        const uint32_t even = nn_sadd16(nn_sxtb16(v), off2);
                        const uint32_t odd = nn_sadd16(nn_sxtb16(nn_ror(v, 8)), off2);
                        memcpy(col + k + c, &even, 4);
                        memcpy(col + k + c + 2, &odd, 4);
                    }
                } else {
                    memset(col + k, 0, (size_t)ic * sizeof(int16_t));
                }
            } else {
                for (int32_t c = 0; c < ic; c++) {
                    const int32_t idx = k + c;
                    const int32_t dst = idx < k_groups_end ? ((idx & ~3) + perm[idx & 3]) : idx;
                    col[dst] = inside ? (int16_t)(src[c] + p->input_offset) : 0;
                }
            }
        }
    }
}

static inline int8_t finish(int32_t acc, int32_t mult, int32_t shift, const nn_conv_params *p)
{
    acc = nn_requantize(acc, mult, shift) + p->output_offset;
    return (int8_t)nn_clamp_i32(acc, p->act_min, p->act_max);
}

void conv2d_s8_simd(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                    const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                    const nn_dims *out_d, int8_t *out, int16_t *scratch)
{
    const int32_t K = f_d->h * f_d->w * f_d->c;
    const int32_t K4 = K & ~3;
    const int32_t oc_n = out_d->c;
    const int32_t pixels = out_d->h * out_d->w;
    int16_t *col0 = scratch;
    int16_t *col1 = scratch + K;
    for (int32_t b = 0; b < out_d->n; b++) {
        const int8_t *in_b = in + b * in_d->h * in_d->w * in_d->c;
        int8_t *out_b = out + b * pixels * oc_n;
        for (int32_t px = 0; px < pixels; px += 2) {
            const int two = px + 1 < pixels;
            fill_column(p, in_d, in_b, f_d, (px / out_d->w) * p->stride_h - p->pad_h,
                        (px % out_d->w) * p->stride_w - p->pad_w, col0);
            if (two) {
                fill_column(p, in_d, in_b, f_d, ((px + 1) / out_d->w) * p->stride_h - p->pad_h,
                            ((px + 1) % out_d->w) * p->stride_w - p->pad_w, col1);
            }
            const int16_t *c1 = two ? col1 : col0;
            int8_t *o0 = out_b + px * oc_n;
            int8_t *o1 = o0 + oc_n;
            int32_t oc = 0;
            for (; oc + 1 < oc_n; oc += 2) {
                const int8_t *w0 = filter + oc * K;
                const int8_t *w1 = w0 + K;
                int32_t a00 = bias ? bias[oc] : 0, a10 = bias ? bias[oc + 1] : 0;
                int32_t a01 = a00, a11 = a10;
                int32_t k = 0;
                for (; k < K4; k += 4) {
                    const uint32_t c0e = nn_read32(col0 + k), c0o = nn_read32(col0 + k + 2);
                    const uint32_t c1e = nn_read32(c1 + k), c1o = nn_read32(c1 + k + 2);
                    uint32_t w = nn_read32(w0 + k);
                    uint32_t we = nn_sxtb16(w), wo = nn_sxtb16(nn_ror(w, 8));
                    a00 = nn_smlad(we, c0e, a00);
                    a00 = nn_smlad(wo, c0o, a00);
                    a01 = nn_smlad(we, c1e, a01);
                    a01 = nn_smlad(wo, c1o, a01);
                    w = nn_read32(w1 + k);
                    we = nn_sxtb16(w);
                    wo = nn_sxtb16(nn_ror(w, 8));
                    a10 = nn_smlad(we, c0e, a10);
                    a10 = nn_smlad(wo, c0o, a10);
                    a11 = nn_smlad(we, c1e, a11);
                    a11 = nn_smlad(wo, c1o, a11);
                }
                for (; k < K; k++) {
                    a00 += w0[k] * col0[k];
                    a01 += w0[k] * c1[k];
                    a10 += w1[k] * col0[k];
                    a11 += w1[k] * c1[k];
                }
                o0[oc] = finish(a00, mult[oc], shift[oc], p);
                o0[oc + 1] = finish(a10, mult[oc + 1], shift[oc + 1], p);
                if (two) {
                    o1[oc] = finish(a01, mult[oc], shift[oc], p);
                    o1[oc + 1] = finish(a11, mult[oc + 1], shift[oc + 1], p);
                }
            }
            if (oc < oc_n) {
                const int8_t *w0 = filter + oc * K;
                int32_t a00 = bias ? bias[oc] : 0;
                int32_t a01 = a00;
                int32_t k = 0;
                for (; k < K4; k += 4) {
                    const uint32_t w = nn_read32(w0 + k);
                    const uint32_t we = nn_sxtb16(w), wo = nn_sxtb16(nn_ror(w, 8));
                    a00 = nn_smlad(we, nn_read32(col0 + k), a00);
                    a00 = nn_smlad(wo, nn_read32(col0 + k + 2), a00);
                    a01 = nn_smlad(we, nn_read32(c1 + k), a01);
                    a01 = nn_smlad(wo, nn_read32(c1 + k + 2), a01);
                }
                for (; k < K; k++) {
                    a00 += w0[k] * col0[k];
                    a01 += w0[k] * c1[k];
                }
                o0[oc] = finish(a00, mult[oc], shift[oc], p);
                if (two) {
                    o1[oc] = finish(a01, mult[oc], shift[oc], p);
                }
            }
        }
    }
}
