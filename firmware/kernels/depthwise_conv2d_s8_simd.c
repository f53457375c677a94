/*
 * DEPTHWISE_CONV_2D, int8, Armv7E-M SIMD: any kernel size, stride, dilation, padding and depth multiplier.
 *
 * Padding never reaches the inner loop: the kh input rows an output row needs are kept in a ring buffer
 * in the scratch, each padded left and right with the input zero point (and rows above or below the input
 * all zero point), so every output pixel has a full window. A padded element contributes
 * w * (zero point + offset) = 0, exactly what the reference's skipped tap contributes, which lets the
 * input offset move out of the loop altogether: offset * (sum of the channel's weights) is added to the
 * bias once. With a depth multiplier m > 1 the ring rows hold each input channel m times, so output channel
 * c reads byte c of a pixel whatever the multiplier and one kernel serves all of them.
 *
 * Per output pixel, four channels at a time: per tap one 32-bit input load, two SXTB16 and four
 * SMLABB/SMLATT against weights pre-expanded once per call into (w0, w2) / (w1, w3) halfword pairs;
 * 3x3 fully unrolled. The requantization is the fused 64-bit rounding of conv2d_s8_simd (exact), the
 * output zero point folded in, the activation clamp four bytes at a time (SSUB8/SEL), four results stored
 * as one word. A layer with a channel whose requantization the fused form cannot take (a multiplier of 1/4
 * or more, or below 2^-22) runs the generic loop with the reference's requantization for every channel.
 * All int32 sums wrap as the reference's.
 */
#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

/* Bytes of one ring row: the input span of an output row's windows, times the output channels. */
static inline int32_t span_w(const nn_conv_params *p, const nn_dims *f_d, const nn_dims *out_d)
{
    return (out_d->w - 1) * p->stride_w + (f_d->w - 1) * p->dil_w + 1;
}

size_t depthwise_conv2d_s8_simd_scratch_bytes(const nn_conv_params *p, const nn_dims *f_d, const nn_dims *out_d)
{
    const size_t c = (size_t)out_d->c;
    const size_t ring = (size_t)f_d->h * (size_t)span_w(p, f_d, out_d) * c;
    /* requantization constants (16 bytes per channel), the kh ring row offsets, expanded weights (2 bytes
     * per tap and channel, channels rounded up to 4), the ring */
    return 16u * c + 4u * (size_t)f_d->h + 2u * (size_t)f_d->h * (size_t)f_d->w * ((c + 3u) & ~(size_t)3u) +
           ((ring + 3u) & ~(size_t)3u);
}

/* One channel's fused requantization (see conv2d_s8_simd.c): bias with the input offset term folded in,
 * multiplier, high word of the rounding constant with the output zero point folded in, final shift. A
 * channel the fused form cannot take keeps (bias, multiplier, shift) and rsh = -1. */
typedef struct {
    int32_t bias, m, khi, rsh;
} dw_rq;

static int dw_rq_init(dw_rq *q, int32_t bias, int32_t m, int32_t shift, int32_t out_off)
{
    const int32_t right = -shift;
    const int fast = right >= 2 && right <= 22 && m >= 0;
    q->bias = bias;
    q->m = m;
    q->rsh = fast ? right - 1 : -1;
    q->khi = fast ? (int32_t)((1u << (right - 2)) + ((uint32_t)out_off << (right - 1))) : shift;
    return fast;
}

/* The requantized value (output zero point added, not clamped) of one channel: fused or the reference's. */
static int32_t dw_rq_one(int32_t acc, const dw_rq *q, int32_t out_off)
{
    const int32_t x = (int32_t)((uint32_t)acc + (uint32_t)q->bias);
    if (q->rsh < 0) {
        return nn_requantize(x, q->m, q->khi) + out_off;
    }
    const int32_t s = x >> 31;
    const uint32_t lo = 0x40000000u ^ ((uint32_t)s << 31);
    const int32_t hi = (int32_t)((uint32_t)q->khi + (uint32_t)s);
    const int64_t pr = (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo) + (int64_t)x * (int64_t)q->m;
    return (int32_t)(pr >> 32) >> q->rsh;
}

/* Ring row for input row y (0 <= y < H, or all zero point): pixels x0 - pad .. of the span, each input
 * channel repeated dm times. */
static void load_row(const int8_t *in_row, int32_t y_inside, int32_t W, int32_t C, int32_t dm, int32_t pad_w,
                     int32_t span, int8_t zp, int8_t *dst)
{
    const int32_t cout = C * dm;
    for (int32_t i = 0; i < span; i++, dst += cout) {
        const int32_t x = i - pad_w;
        if (!y_inside || x < 0 || x >= W) {
            for (int32_t c = 0; c < cout; c++) {
                dst[c] = zp;
            }
        } else if (dm == 1) {
            const int8_t *src = in_row + x * C;
            int32_t c = 0;
            for (; c + 4 <= C; c += 4) {
                nn_write32(dst + c, nn_read32(src + c));
            }
            for (; c < C; c++) {
                dst[c] = src[c];
            }
        } else {
            const int8_t *src = in_row + x * C;
            for (int32_t c = 0; c < C; c++) {
                for (int32_t m = 0; m < dm; m++) {
                    dst[c * dm + m] = src[c];
                }
            }
        }
    }
}

/* One 4-channel tap against pre-expanded weights (we = (w0, w2), wo = (w1, w3)). */
#define DW_TAP(IV, WE, WO)                                                                                        \
    do {                                                                                                      \
        const uint32_t iv_ = (IV);                                                                            \
        const uint32_t ie_ = nn_sxtb16(iv_), io_ = nn_sxtb16_ror8(iv_);                                       \
        a0 = nn_smlabb(ie_, (WE), a0);                                                                        \
        a2 = nn_smlatt(ie_, (WE), a2);                                                                        \
        a1 = nn_smlabb(io_, (WO), a1);                                                                        \
        a3 = nn_smlatt(io_, (WO), a3);                                                                        \
    } while (0)

/* Four accumulators of fast channels requantized, clamped to [lo, hi] (lo4 / hi4: the bounds in every byte)
 * and stored as one word at o. On Armv7E-M assembly: per channel four pipelined loads of its constants and
 * the fused rounding (SMLAL), then the clamp of the four bytes with SSUB8 / SEL. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define DW_RQ_CH(A, OFF, BIT)                                                                                     \
    "ldr %[b], [%[q], #" #OFF "]\n"                                                                             \
    "ldr %[m], [%[q], #" #OFF "+4]\n"                                                                           \
    "ldr %[k], [%[q], #" #OFF "+8]\n"                                                                           \
    "ldr %[r], [%[q], #" #OFF "+12]\n"                                                                          \
    "add %[" #A "], %[" #A "], %[b]\n"                                                                          \
    "asr %[s], %[" #A "], #31\n"                                                                               \
    "lsl %[b], %[s], #31\n"                                                                                    \
    "eor %[b], %[b], #0x40000000\n"                                                                            \
    "add %[k], %[k], %[s]\n"                                                                                   \
    "smlal %[b], %[k], %[" #A "], %[m]\n"                                                                      \
    "asr %[k], %[k], %[r]\n"                                                                                   \
    "ssat %[k], #8, %[k]\n"                                                                                    \
    "bfi %[v], %[k], #" #BIT ", #8\n"

static inline __attribute__((always_inline)) void dw_rq4(int32_t a0, int32_t a1, int32_t a2, int32_t a3, const dw_rq *q,
                                                         uint32_t lo4, uint32_t hi4, int8_t *o)
{
    uint32_t b, m, k, r, s, v = 0;
    __asm__ volatile(DW_RQ_CH(a0, 0, 0) DW_RQ_CH(a1, 16, 8) DW_RQ_CH(a2, 32, 16) DW_RQ_CH(a3, 48, 24)
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b] "=&r"(b), [m] "=&r"(m), [k] "=&r"(k),
              [r] "=&r"(r), [s] "=&r"(s), [v] "+r"(v)
            : [q] "r"(q));
    __asm__ volatile("ssub8 %[t], %[v], %[lo]\n"
                     "sel %[v], %[v], %[lo]\n"
                     "ssub8 %[t], %[v], %[hi]\n"
                     "sel %[v], %[hi], %[v]\n"
                     "str %[v], [%[o]]\n"
                     : [v] "+r"(v), [t] "=&r"(b)
                     : [lo] "r"(lo4), [hi] "r"(hi4), [o] "r"(o)
                     : "memory");
}
#else
static inline int32_t dw_clamp8(int32_t v, uint32_t lo4, uint32_t hi4)
{
    const int32_t lo = (int8_t)lo4, hi = (int8_t)hi4;
    v = nn_ssat8(v);
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline __attribute__((always_inline)) void dw_rq4(int32_t a0, int32_t a1, int32_t a2, int32_t a3, const dw_rq *q,
                                                         uint32_t lo4, uint32_t hi4, int8_t *o)
{
    const uint32_t v0 = (uint8_t)dw_clamp8(dw_rq_one(a0, &q[0], 0), lo4, hi4);
    const uint32_t v1 = (uint8_t)dw_clamp8(dw_rq_one(a1, &q[1], 0), lo4, hi4);
    const uint32_t v2 = (uint8_t)dw_clamp8(dw_rq_one(a2, &q[2], 0), lo4, hi4);
    const uint32_t v3 = (uint8_t)dw_clamp8(dw_rq_one(a3, &q[3], 0), lo4, hi4);
    nn_write32(o, v0 | (v1 << 8) | (v2 << 16) | (v3 << 24));
}
#endif

/* The 3x3 window of four channels: rows r0..r2 (the window's first tap of each kernel row), taps col_step
 * apart, weights w[2t], w[2t + 1] of tap t. On Armv7E-M one assembly block: per tap three pipelined loads,
 * two SXTB16 and four SMLABB/SMLATT (10 cycles per 4 MACs on the M4). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define DW33_TAP(ROW, COL, T)                                                                                     \
    "ldr %[iv], [%[" #ROW "]" COL "]\n"                                                                         \
    "ldr %[we], [%[w], #" #T "*8]\n"                                                                           \
    "ldr %[wo], [%[w], #" #T "*8+4]\n"                                                                         \
    "sxtb16 %[ie], %[iv]\n"                                                                                    \
    "sxtb16 %[iv], %[iv], ror #8\n"                                                                            \
    "smlabb %[a0], %[ie], %[we], %[a0]\n"                                                                      \
    "smlatt %[a2], %[ie], %[we], %[a2]\n"                                                                      \
    "smlabb %[a1], %[iv], %[wo], %[a1]\n"                                                                      \
    "smlatt %[a3], %[iv], %[wo], %[a3]\n"

static inline __attribute__((always_inline)) void dw_mac33(const int8_t *r0, const int8_t *r1, const int8_t *r2, int32_t cs, const uint32_t *w,
                            int32_t *p0, int32_t *p1, int32_t *p2, int32_t *p3)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t iv, ie, we, wo;
    __asm__(DW33_TAP(r0, "", 0) DW33_TAP(r0, ", %[cs]", 1) DW33_TAP(r0, ", %[cs], lsl #1", 2)
            DW33_TAP(r1, "", 3) DW33_TAP(r1, ", %[cs]", 4) DW33_TAP(r1, ", %[cs], lsl #1", 5)
            DW33_TAP(r2, "", 6) DW33_TAP(r2, ", %[cs]", 7) DW33_TAP(r2, ", %[cs], lsl #1", 8)
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [iv] "=&r"(iv), [ie] "=&r"(ie),
              [we] "=&r"(we), [wo] "=&r"(wo)
            : [r0] "r"(r0), [r1] "r"(r1), [r2] "r"(r2), [cs] "r"(cs), [w] "r"(w)
            : "memory");
    *p0 = a0;
    *p1 = a1;
    *p2 = a2;
    *p3 = a3;
}
#else
static inline __attribute__((always_inline)) void dw_mac33(const int8_t *r0, const int8_t *r1, const int8_t *r2, int32_t cs, const uint32_t *w,
                            int32_t *p0, int32_t *p1, int32_t *p2, int32_t *p3)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const int8_t *rows[3] = {r0, r1, r2};
    for (int32_t t = 0; t < 9; t++) {
        DW_TAP(nn_read32(rows[t / 3] + (t % 3) * cs), w[2 * t], w[2 * t + 1]);
    }
    *p0 = a0;
    *p1 = a1;
    *p2 = a2;
    *p3 = a3;
}
#endif

/* What every output row of a call shares. */
typedef struct {
    const int8_t *ring;       /* the ring buffer of padded input rows */
    const int32_t *row_off;   /* byte offsets in the ring of the kh rows of the output row */
    const uint32_t *wx;       /* expanded weights [group][tap][2] */
    const dw_rq *rq;
    const int8_t *filter;
    int32_t OW, CO, kh, kw, taps, px_step, col_step, out_off, lo, hi;
    uint32_t lo4, hi4;
} dw_ctx;

/* The last 1 to 3 channels of a pixel, and every channel of a layer with a channel the fused
 * requantization cannot take: one channel at a time. */
static void dw_channels(const dw_ctx *c, int32_t xoff, int32_t g, int8_t *o)
{
    for (; g < c->CO; g++) {
        int32_t acc = 0;
        for (int32_t ky = 0; ky < c->kh; ky++) {
            const int8_t *r = c->ring + c->row_off[ky] + xoff + g;
            for (int32_t kx = 0; kx < c->kw; kx++, r += c->col_step) {
                acc += (int32_t)c->filter[(ky * c->kw + kx) * c->CO + g] * (int32_t)*r;
            }
        }
        o[g] = (int8_t)nn_clamp_i32(dw_rq_one(acc, &c->rq[g], c->out_off), c->lo, c->hi);
    }
}

/* One output row, any kernel: four channels at a time (fused requantization), then the rest. */
static void dw_row(const dw_ctx *c, int8_t *o, int fast)
{
    const int32_t CO4f = fast ? c->CO & ~3 : 0;
    for (int32_t ox = 0; ox < c->OW; ox++, o += c->CO) {
        const int32_t xoff = ox * c->px_step;
        for (int32_t g = 0; g < CO4f; g += 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            const uint32_t *w = c->wx + g / 4 * c->taps * 2;
            for (int32_t ky = 0; ky < c->kh; ky++) {
                const int8_t *r = c->ring + c->row_off[ky] + xoff + g;
                for (int32_t kx = 0; kx < c->kw; kx++, r += c->col_step, w += 2) {
                    DW_TAP(nn_read32(r), w[0], w[1]);
                }
            }
            dw_rq4(a0, a1, a2, a3, &c->rq[g], c->lo4, c->hi4, o + g);
        }
        dw_channels(c, xoff, CO4f, o);
    }
}

/* One output row of a 3x3 kernel whose channels all take the fused requantization. */
static void dw_row33(const dw_ctx *c, int8_t *o)
{
    const int32_t CO4f = c->CO & ~3, cs = c->col_step;
    const int8_t *r0 = c->ring + c->row_off[0], *r1 = c->ring + c->row_off[1], *r2 = c->ring + c->row_off[2];
    for (int32_t ox = 0; ox < c->OW; ox++, o += c->CO) {
        const int32_t xoff = ox * c->px_step;
        const uint32_t *w = c->wx;
        for (int32_t g = 0; g < CO4f; g += 4, w += 18) {
            int32_t a0, a1, a2, a3;
            dw_mac33(r0 + xoff + g, r1 + xoff + g, r2 + xoff + g, cs, w, &a0, &a1, &a2, &a3);
            dw_rq4(a0, a1, a2, a3, &c->rq[g], c->lo4, c->hi4, o + g);
        }
        if (CO4f < c->CO) {
            dw_channels(c, xoff, CO4f, o);
        }
    }
}

void depthwise_conv2d_s8_simd(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                              const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                              const nn_dims *out_d, int8_t *out, int8_t *scratch)
{
    const int32_t C = in_d->c, dm = p->depth_multiplier, CO = out_d->c;
    const int32_t kh = f_d->h, kw = f_d->w, taps = kh * kw;
    const int32_t H = in_d->h, W = in_d->w, OH = out_d->h, OW = out_d->w;
    const int32_t CO4 = (CO + 3) & ~3;
    const int32_t span = span_w(p, f_d, out_d);
    dw_rq *rq = (dw_rq *)(void *)scratch;
    /* int32 offsets rather than pointers: the scratch size is the same on the host and on the target */
    int32_t *row_off = (int32_t *)(void *)(scratch + 16 * CO);
    uint32_t *wx = (uint32_t *)(void *)(scratch + 16 * CO + 4 * kh); /* [group][tap][2] */
    int8_t *ring = scratch + 16 * CO + 4 * kh + 2 * taps * CO4;
    const int32_t row_bytes = span * CO;
    int fast = 1;
    for (int32_t c = 0; c < CO; c++) {
        int32_t sw = 0;
        for (int32_t t = 0; t < taps; t++) {
            sw += filter[t * CO + c];
        }
        /* the input offset of every tap (padding included, see above) folded into the bias */
        const int32_t b = (int32_t)((uint32_t)(bias ? bias[c] : 0) + (uint32_t)sw * (uint32_t)p->input_offset);
        fast &= dw_rq_init(&rq[c], b, mult[c], shift[c], p->output_offset);
    }
    for (int32_t g = 0; g < CO4; g += 4) { /* [group][tap][2]: a group's taps are contiguous */
        for (int32_t t = 0; t < taps; t++) {
            uint32_t v = 0;
            for (int32_t i = 0; i < 4 && g + i < CO; i++) {
                v |= (uint32_t)(uint8_t)filter[t * CO + g + i] << (8 * i);
            }
            wx[(g / 4 * taps + t) * 2] = nn_sxtb16(v);
            wx[(g / 4 * taps + t) * 2 + 1] = nn_sxtb16_ror8(v);
        }
    }
    dw_ctx ctx = {ring, row_off, wx, rq, filter, OW, CO, kh, kw, taps, p->stride_w * CO, p->dil_w * CO,
                  p->output_offset, p->act_min, p->act_max, (uint8_t)p->act_min * 0x01010101u,
                  (uint8_t)p->act_max * 0x01010101u};
    const int8_t zp = (int8_t)(-p->input_offset);
    const int row33 = fast && kh == 3 && kw == 3;
    for (int32_t b = 0; b < out_d->n; b++) {
        const int8_t *in_b = in + b * H * W * C;
        int8_t *out_b = out + b * OH * OW * CO;
        /* without vertical dilation input row y lives in ring slot y mod kh and stays there while the next
         * output rows need it: the ring holds rows (loaded - kh, loaded]; with dilation every row is reloaded
         * into slot ky */
        int32_t loaded = -0x7FFFFFFF;
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            for (int32_t ky = 0; ky < kh; ky++) {
                const int32_t y = y0 + ky * p->dil_h;
                const int32_t slot = p->dil_h == 1 ? (int32_t)((uint32_t)(y + 0x40000000) % (uint32_t)kh) : ky;
                row_off[ky] = slot * row_bytes;
                if (p->dil_h == 1 && y <= loaded && y > loaded - kh) {
                    continue;
                }
                load_row(in_b + (y >= 0 && y < H ? y : 0) * W * C, y >= 0 && y < H, W, C, dm, p->pad_w, span, zp,
                         ring + row_off[ky]);
            }
            loaded = p->dil_h == 1 ? y0 + kh - 1 : -0x7FFFFFFF;
            int8_t *o = out_b + oy * OW * CO;
            if (row33) {
                dw_row33(&ctx, o);
            } else {
                dw_row(&ctx, o, fast);
            }
        }
    }
}
