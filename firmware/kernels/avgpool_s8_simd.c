/*
 * AVERAGE_POOL_2D, int8 (input and output share quantization), Armv7E-M SIMD: four channels at a time, the
 * window's sum in two int16x2 lanes (each input word sign-extended and added by two SXTAB16), exact while the
 * window has at most 255 elements (|sum| <= 255 * 128 < 2^15); then the reference's rounding division per
 * channel. Larger windows, and the last channels of a count not a multiple of 4, as the reference.
 */
#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

#define AVGPOOL_SIMD_MAX_COUNT 255

/* The reference's rounded average of a window sum, clamped (once per output: one out-of-line copy). */
static __attribute__((noinline)) int8_t avg_out(int32_t acc, int32_t count, const nn_pool_params *p)
{
    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
    return (int8_t)nn_clamp_i32(acc, p->act_min, p->act_max);
}

static inline int32_t lane_lo(uint32_t v) { return (int32_t)(int16_t)(v & 0xFFFFu); }
static inline int32_t lane_hi(uint32_t v) { return (int32_t)(int16_t)(v >> 16); }

/* The last channels of a count not a multiple of 4, one at a time (cold). */
static NN_COLD void avg_rest(const nn_pool_params *p, const int8_t *win, int32_t c0, int32_t C, int32_t row_step,
                             int32_t rows, int32_t cols, int32_t count, int8_t *o)
{
    for (int32_t c = c0; c < C; c++) {
        int32_t acc = 0;
        const int8_t *row = win + c;
        for (int32_t ky = 0; ky < rows; ky++, row += row_step) {
            for (int32_t kx = 0; kx < cols; kx++) {
                acc += row[kx * C];
            }
        }
        o[c] = avg_out(acc, count, p);
    }
}

void avgpool_s8_simd(const nn_pool_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *out_d, int8_t *out)
{
    const int32_t C = in_d->c, C4 = C & ~3;
    if (p->filter_h * p->filter_w > AVGPOOL_SIMD_MAX_COUNT) {
        avgpool_s8_ref(p, in_d, in, out_d, out);
        return;
    }
    for (int32_t b = 0; b < out_d->n; b++) {
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const int32_t y0 = oy * p->stride_h - p->pad_h;
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t ys = nn_max_i32(0, -y0), ye = nn_min_i32(p->filter_h, in_d->h - y0);
                const int32_t xs = nn_max_i32(0, -x0), xe = nn_min_i32(p->filter_w, in_d->w - x0);
                const int32_t count = (ye - ys) * (xe - xs);
                int8_t *o = out + ((b * out_d->h + oy) * out_d->w + ox) * C;
                if (count <= 0) {
                    for (int32_t c = 0; c < C; c++) {
                        o[c] = (int8_t)nn_clamp_i32(0, p->act_min, p->act_max);
                    }
                    continue;
                }
                const int8_t *win = in + ((b * in_d->h + y0 + ys) * in_d->w + x0 + xs) * C;
                const int32_t row_step = in_d->w * C;
                for (int32_t c = 0; c < C4; c += 4) {
                    uint32_t s02 = 0, s13 = 0; /* channels c, c + 2 and c + 1, c + 3 */
                    const int8_t *row = win + c;
                    for (int32_t ky = ys; ky < ye; ky++, row += row_step) {
                        const int8_t *px = row;
                        int32_t kx = xs;
                        for (; kx + 2 <= xe; kx += 2, px += 2 * C) { /* both loads before the pointer moves */
                            const uint32_t v0 = nn_read32(px), v1 = nn_read32(px + C);
                            s02 = nn_sxtab16(nn_sxtab16(s02, v0), v1);
                            s13 = nn_sxtab16_ror8(nn_sxtab16_ror8(s13, v0), v1);
                        }
                        if (kx < xe) {
                            const uint32_t v = nn_read32(px);
                            s02 = nn_sxtab16(s02, v);
                            s13 = nn_sxtab16_ror8(s13, v);
                        }
                    }
                    o[c] = avg_out(lane_lo(s02), count, p);
                    o[c + 1] = avg_out(lane_lo(s13), count, p);
                    o[c + 2] = avg_out(lane_hi(s02), count, p);
                    o[c + 3] = avg_out(lane_hi(s13), count, p);
                }
                if (C4 < C) {
                    avg_rest(p, win, C4, C, row_step, ye - ys, xe - xs, count, o);
                }
            }
        }
    }
}
