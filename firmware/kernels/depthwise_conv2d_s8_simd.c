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
    /* the kh ring row offsets, requantization constants (16 bytes per channel), expanded weights (2 bytes
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

/* Whether a channel's requantization takes the fused form (a multiplier below 1/4, at least 2^-22). */
static inline int dw_rq_fusable(int32_t m, int32_t shift) { return -shift >= 2 && -shift <= 22 && m >= 0; }

static void dw_rq_init(dw_rq *q, int32_t bias, int32_t m, int32_t shift, int32_t out_off)
{
    const int32_t right = -shift;
    const int fast = dw_rq_fusable(m, shift);
    q->bias = bias;
    q->m = m;
    q->rsh = fast ? right - 1 : -1;
    q->khi = fast ? (int32_t)((1u << (right - 2)) + ((uint32_t)out_off << (right - 1))) : shift;
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

/*
 * The two-pixel and lone-pixel 3x3 paths' requantization, on twice the accumulator (their weights and bias
 * are doubled: x2 = 2 x, exact while |x| < 2^30, see dw_blk_ok). The fused rounding above,
 * floor((x m + 2^30 + khi 2^32 - [x < 0] 2^31) / 2^(32 + rsh)), equals
 * floor((F + 2 khi - [x < 0]) / 2^(rsh + 1)) with F = floor((x2 m + 2^31) / 2^32): one SMMLAR accumulating
 * k2 = 2 khi - [x < 0], then an arithmetic shift by right = rsh + 1. The block's dw_rq then holds
 * (2 bias, m, 2 khi, right).
 */
static void dw_rq2_init(dw_rq *q, int32_t bias, int32_t m, int32_t shift, int32_t out_off)
{
    const int32_t right = -shift;
    q->bias = (int32_t)((uint32_t)bias << 1);
    q->m = m;
    q->khi = (int32_t)((1u << (right - 1)) + ((uint32_t)out_off << right));
    q->rsh = right;
}

/* Whether every channel's folded bias keeps x = acc + bias inside +-2^30 (|acc|, |weight sum * input offset|
 * < 2^18 for a 3x3 int8 window): the doubled accumulator cannot wrap. */
static int dw_blk_ok(const int32_t *bias, int32_t CO)
{
    for (int32_t c = 0; bias && c < CO; c++) {
        if (bias[c] >= (1 << 29) || bias[c] <= -(1 << 29)) {
            return 0;
        }
    }
    return 1;
}

/* The requantized value (output zero point added, not clamped) of a doubled accumulator (dw_rq2_init). */
static inline int32_t dw_rq2_one(int32_t acc2, const dw_rq *q)
{
    const int32_t x2 = (int32_t)((uint32_t)acc2 + (uint32_t)q->bias);
    const int32_t f = (int32_t)(((int64_t)x2 * (int64_t)q->m + ((int64_t)1 << 31)) >> 32);
    return (int32_t)((uint32_t)f + (uint32_t)q->khi + (uint32_t)(x2 >> 31)) >> q->rsh;
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

/* load_row_groups pixel by pixel (every group of a pixel, four per step): for rows with fewer pixels than
 * channel groups, whose group-by-group loops would be short. Depth multiplier 1 in its own small loop (few
 * live values: no spills), the padding four words per step too. */
static void __attribute__((noinline)) load_row_groups_px1(const int8_t *in_row, int32_t y_inside, int32_t W,
                                                          int32_t C, int32_t pad_w, int32_t span, uint32_t zp4,
                                                          int8_t *dst)
{
    const int32_t groups = C / 4, gs = span * 4;
    for (int32_t i = 0; i < span; i++, dst += 4) {
        const int32_t x = i - pad_w;
        int8_t *d = dst;
        int32_t g = groups;
        if (!y_inside || x < 0 || x >= W) {
            for (; g >= 4; g -= 4, d += 4 * gs) {
                nn_write32(d, zp4);
                nn_write32(d + gs, zp4);
                nn_write32(d + 2 * gs, zp4);
                nn_write32(d + 3 * gs, zp4);
            }
            for (; g > 0; g--, d += gs) {
                nn_write32(d, zp4);
            }
            continue;
        }
        const int8_t *src = in_row + x * C;
        for (; g >= 4; g -= 4, src += 16, d += 4 * gs) { /* four words per step: the loads pipeline */
            const uint32_t v0 = nn_read32(src), v1 = nn_read32(src + 4), v2 = nn_read32(src + 8),
                           v3 = nn_read32(src + 12);
            nn_write32(d, v0);
            nn_write32(d + gs, v1);
            nn_write32(d + 2 * gs, v2);
            nn_write32(d + 3 * gs, v3);
        }
        for (; g > 0; g--, src += 4, d += gs) {
            nn_write32(d, nn_read32(src));
        }
    }
}

static void load_row_groups_px(const int8_t *in_row, int32_t y_inside, int32_t W, int32_t C, int32_t dm, int32_t pad_w,
                            int32_t span, int8_t zp, int8_t *dst)
{
    const int32_t groups = C * dm / 4, gstride = span * 4;
    const uint32_t zp4 = (uint8_t)zp * 0x01010101u;
    if (dm == 1) {
        load_row_groups_px1(in_row, y_inside, W, C, pad_w, span, zp4, dst);
        return;
    }
    for (int32_t i = 0; i < span; i++, dst += 4) {
        const int32_t x = i - pad_w;
        if (!y_inside || x < 0 || x >= W) {
            for (int32_t g = 0; g < groups; g++) {
                nn_write32(dst + g * gstride, zp4);
            }
        } else {
            const int8_t *src = in_row + x * C;
            int32_t co = 0;
            for (int32_t c = 0; c < C; c++) {
                for (int32_t m = 0; m < dm; m++, co++) {
                    dst[(co >> 2) * gstride + (co & 3)] = src[c];
                }
            }
        }
    }
}

/* The same row in the channel-group-major layout of the two-pixel 3x3 path: the 4 channels of group g at
 * pixel i are the word at dst + (g * span + i) * 4, so a window's taps are 4 bytes apart. The loop with
 * the longer inner trip count: with at least as many inside pixels as groups, group by group (the left
 * padding, the inside pixels, one load and one store per word, four pixels per step, the right padding),
 * else pixel by pixel (load_row_groups_px). */
static void load_row_groups(const int8_t *in_row, int32_t y_inside, int32_t W, int32_t C, int32_t dm, int32_t pad_w,
                            int32_t span, int8_t zp, int8_t *dst)
{
    const int32_t groups = C * dm / 4, gstride = span * 4;
    const uint32_t zp4 = (uint8_t)zp * 0x01010101u;
    /* pixels [0, x0) and [x1, span) of the span are padding */
    int32_t x0 = pad_w < span ? pad_w : span, x1 = W + pad_w < span ? W + pad_w : span;
    if (!y_inside) {
        x0 = x1 = span;
    }
    if (x1 < x0) {
        x1 = x0;
    }
    if (x1 - x0 < groups) {
        load_row_groups_px(in_row, y_inside, W, C, dm, pad_w, span, zp, dst);
        return;
    }
    if (dm != 1) {
        for (int32_t g = 0; g < groups; g++) {
            uint32_t *d = (uint32_t *)(void *)(dst + g * gstride);
            for (int32_t i = 0; i < x0; i++) {
                d[i] = zp4;
            }
            for (int32_t i = x1; i < span; i++) {
                d[i] = zp4;
            }
        }
        for (int32_t i = x0; i < x1; i++) {
            const int8_t *src = in_row + (i - pad_w) * C;
            int32_t co = 0;
            for (int32_t c = 0; c < C; c++) {
                for (int32_t m = 0; m < dm; m++, co++) {
                    dst[(co >> 2) * gstride + i * 4 + (co & 3)] = src[c];
                }
            }
        }
        return;
    }
    for (int32_t g = 0; g < groups; g++) {
        uint32_t *d = (uint32_t *)(void *)(dst + g * gstride);
        int32_t i = 0;
        for (; i < x0; i++) {
            d[i] = zp4;
        }
        const int8_t *src = in_row + (x0 - pad_w) * C + 4 * g;
        for (; i + 4 <= x1; i += 4, src += 4 * C) {
            const uint32_t v0 = nn_read32(src), v1 = nn_read32(src + C), v2 = nn_read32(src + 2 * C),
                           v3 = nn_read32(src + 3 * C);
            d[i] = v0;
            d[i + 1] = v1;
            d[i + 2] = v2;
            d[i + 3] = v3;
        }
        for (; i < x1; i++, src += C) {
            d[i] = nn_read32(src);
        }
        for (; i < span; i++) {
            d[i] = zp4;
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
    "and %[b], %[" #A "], #0x80000000\n"                                                                      \
    "eor %[b], %[b], #0x40000000\n"                                                                            \
    "add %[k], %[k], %[" #A "], asr #31\n"                                                                     \
    "smlal %[b], %[k], %[" #A "], %[m]\n"                                                                      \
    "asr %[k], %[k], %[r]\n"                                                                                   \
    "ssat %[k], #8, %[k]\n"                                                                                    \
    "bfi %[v], %[k], #" #BIT ", #8\n"

static inline __attribute__((always_inline)) void dw_rq4(int32_t a0, int32_t a1, int32_t a2, int32_t a3, const dw_rq *q,
                                                         uint32_t lo4, uint32_t hi4, int8_t *o)
{
    uint32_t b, m, k, r, v = 0;
    __asm__ volatile(DW_RQ_CH(a0, 0, 0) DW_RQ_CH(a1, 16, 8) DW_RQ_CH(a2, 32, 16) DW_RQ_CH(a3, 48, 24)
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b] "=&r"(b), [m] "=&r"(m), [k] "=&r"(k),
              [r] "=&r"(r), [v] "+r"(v)
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
    "ldr %[we], [%[w], #8*(" #T ")]\n"                                                                        \
    "ldr %[wo], [%[w], #8*(" #T ")+4]\n"                                                                         \
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

/*
 * Stride 1 or 2, no dilation, 3x3, channels a multiple of 4, every channel fused: one output row, channel group by
 * channel group, the output pixels two at a time (the ring in the group-major layout, see load_row_groups).
 * Group g's block at blk + 34 g is its 9 taps' expanded weights (18 words) followed by its 4 channels' dw_rq
 * (16 words). The two pixels' windows share input columns (stride 1: 2 of their 4 per kernel row, stride 2:
 * 1 of 5), each column loaded and expanded once for both, and each tap's weights serve both pixels; the
 * requantization constants are loaded once per channel for both pixels, the accumulators start at the bias.
 * An odd width's last pixel: dw33_lone.
 */
typedef struct {
    const int8_t *r0, *r1, *r2; /* the window rows of pixel A (advance 8 x stride bytes per pair) */
    int8_t *o;                  /* pixel A's outputs (advance 2 x co per pair) */
    int32_t n, per_group, groups; /* pairs left in the group, pairs per group, groups left (all >= 1) */
    int32_t r_skip, o_skip;     /* from past a group's last pair to the next group's first */
    int32_t co;                 /* output channels (bytes per output pixel) */
    uint32_t lo4, hi4;          /* the activation bounds in every byte */
} dw33_pairs_args;

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* Tap T of pixel A (accumulators a*) or B (b*) from the expanded column (ie, io) and weights (we, wo). */
#define DW2_MAC(X)                                                                                                \
    "smlabb %[" #X "0], %[ie], %[we], %[" #X "0]\n"                                                            \
    "smlatt %[" #X "2], %[ie], %[we], %[" #X "2]\n"                                                            \
    "smlabb %[" #X "1], %[io], %[wo], %[" #X "1]\n"                                                            \
    "smlatt %[" #X "3], %[io], %[wo], %[" #X "3]\n"
#define DW2_COL(OFF)                                                                                              \
    "ldr %[ie], [%[r], #" #OFF "]\n"                                                                           \
    "sxtb16 %[io], %[ie], ror #8\n"                                                                            \
    "sxtb16 %[ie], %[ie]\n"
#define DW2_W(T)                                                                                                  \
    "ldr %[we], [%[w], #8*(" #T ")]\n"                                                                        \
    "ldr %[wo], [%[w], #8*(" #T ")+4]\n"
/* Kernel row of taps T, T+1, T+2: columns 0..3 at r; pixel A takes columns 0..2, pixel B 1..3. */
#define DW2_ROW(T, ROW, NEXT)                                                                                     \
    "ldr %[ie], [%[r]]\n"                                                                                      \
    DW2_W(T) "sxtb16 %[io], %[ie], ror #8\n"                                                                   \
    "sxtb16 %[ie], %[ie]\n" DW2_MAC(a)                                                                         \
    DW2_COL(4) DW2_MAC(b) DW2_W(T+1) DW2_MAC(a)                                                                \
    DW2_COL(8) DW2_MAC(b) DW2_W(T+2) DW2_MAC(a)                                                                \
    DW2_COL(12) DW2_MAC(b)                                                                                     \
    "add %[r], %[r], #8\n"                                                                                     \
    "str %[r], %[" #ROW "]\n"                                                                                  \
    "ldr %[r], %[" #NEXT "]\n"
/* The same with stride 2: columns 0..4 at r, pixel A takes 0..2, pixel B 2..4 (each tap's weights loaded once:
 * columns 0, 2, 4, then 1, 3). */
#define DW2_ROW_S2(T, ROW, NEXT)                                                                                  \
    "ldr %[ie], [%[r]]\n"                                                                                      \
    DW2_W(T) "sxtb16 %[io], %[ie], ror #8\n"                                                                   \
    "sxtb16 %[ie], %[ie]\n" DW2_MAC(a)                                                                         \
    DW2_COL(8) DW2_MAC(b) DW2_W(T+2) DW2_MAC(a)                                                                \
    DW2_COL(16) DW2_MAC(b)                                                                                     \
    DW2_COL(4) DW2_W(T+1) DW2_MAC(a)                                                                           \
    DW2_COL(12) DW2_MAC(b)                                                                                     \
    "add %[r], %[r], #16\n"                                                                                    \
    "str %[r], %[" #ROW "]\n"                                                                                  \
    "ldr %[r], %[" #NEXT "]\n"
/* Channel I of both pixels: the fused rounding (see conv2d_s8_simd.c), the accumulators already hold the
 * bias; the saturated results stay in the accumulators. */
#define DW2_RQ1(A)                                                                                                \
    "add %[wo], %[io], %[" #A "], asr #31\n"                                                                   \
    "smmlar %[wo], %[" #A "], %[ie], %[wo]\n"                                                                  \
    "asr %[wo], %[wo], %[r]\n"                                                                                 \
    "ssat %[" #A "], #8, %[wo]\n"
#define DW2_RQ(I)                                                                                                 \
    "ldr %[ie], [%[w], #72+16*" #I "+4]\n"                                                                     \
    "ldr %[io], [%[w], #72+16*" #I "+8]\n"                                                                     \
    "ldr %[r], [%[w], #72+16*" #I "+12]\n"                                                                     \
    DW2_RQ1(a##I) DW2_RQ1(b##I)
/* The four results of a pixel into one word, clamped bytewise to [lo4, hi4] (in ie, io). */
#define DW2_PACK(X)                                                                                               \
    "bfi %[" #X "0], %[" #X "1], #8, #8\n"                                                                     \
    "bfi %[" #X "0], %[" #X "2], #16, #8\n"                                                                    \
    "bfi %[" #X "0], %[" #X "3], #24, #8\n"                                                                    \
    "ssub8 %[we], %[" #X "0], %[ie]\n"                                                                         \
    "sel %[" #X "0], %[" #X "0], %[ie]\n"                                                                      \
    "ssub8 %[we], %[" #X "0], %[io]\n"                                                                         \
    "sel %[" #X "0], %[io], %[" #X "0]\n"

/* The asm of the two-pixel loop over an output row's groups and pixel pairs, ROW the kernel row of a stride.
 * The local copy's fields are memory operands; the asm also writes r0..r2, o, n and groups ("memory"). */
#define DW33_PAIRS_BODY(ROW)                                                                                      \
{                                                                                                                     \
    dw33_pairs_args m = *args;                                                                                        \
    const uint32_t *w = blk;                                                                                          \
    uint32_t a0, a1, a2, a3, b0, b1, b2, b3, ie, io, we, wo, r;                                                       \
    __asm__ volatile(                                                                                                 \
        "1:\n"                                                                                                        \
        "ldr %[a0], [%[w], #72]\n"                                                                                    \
        "ldr %[a1], [%[w], #88]\n"                                                                                    \
        "ldr %[a2], [%[w], #104]\n"                                                                                   \
        "ldr %[a3], [%[w], #120]\n"                                                                                   \
        "ldr %[r], %[r0]\n"                                                                                           \
        "mov %[b0], %[a0]\n"                                                                                          \
        "mov %[b1], %[a1]\n"                                                                                          \
        "mov %[b2], %[a2]\n"                                                                                          \
        "mov %[b3], %[a3]\n"                                                                                          \
        ROW(0, r0, r1) ROW(3, r1, r2) ROW(6, r2, r0)                                                                  \
        DW2_RQ(0) DW2_RQ(1) DW2_RQ(2) DW2_RQ(3)                                                                       \
        "ldr %[ie], %[lo4]\n"                                                                                         \
        "ldr %[io], %[hi4]\n"                                                                                         \
        DW2_PACK(a) DW2_PACK(b)                                                                                       \
        "ldr %[r], %[o]\n"                                                                                            \
        "ldr %[wo], %[co]\n"                                                                                          \
        "str %[a0], [%[r]]\n"                                                                                         \
        "str %[b0], [%[r], %[wo]]\n"                                                                                  \
        "add %[r], %[r], %[wo], lsl #1\n"                                                                             \
        "str %[r], %[o]\n"                                                                                            \
        "ldr %[r], %[n]\n"                                                                                            \
        "subs %[r], %[r], #1\n"                                                                                       \
        "str %[r], %[n]\n"                                                                                            \
        "bne 1b\n"                                                                                                    \
        "ldr %[r], %[per]\n"                                                                                          \
        "ldr %[ie], %[rskip]\n"                                                                                       \
        "ldr %[io], %[oskip]\n"                                                                                       \
        "str %[r], %[n]\n"                                                                                            \
        "ldr %[r], %[r0]\n"                                                                                           \
        "add %[r], %[r], %[ie]\n"                                                                                     \
        "str %[r], %[r0]\n"                                                                                           \
        "ldr %[r], %[r1]\n"                                                                                           \
        "add %[r], %[r], %[ie]\n"                                                                                     \
        "str %[r], %[r1]\n"                                                                                           \
        "ldr %[r], %[r2]\n"                                                                                           \
        "add %[r], %[r], %[ie]\n"                                                                                     \
        "str %[r], %[r2]\n"                                                                                           \
        "ldr %[r], %[o]\n"                                                                                            \
        "add %[r], %[r], %[io]\n"                                                                                     \
        "str %[r], %[o]\n"                                                                                            \
        "add %[w], %[w], #136\n"                                                                                      \
        "ldr %[r], %[ng]\n"                                                                                           \
        "subs %[r], %[r], #1\n"                                                                                       \
        "str %[r], %[ng]\n"                                                                                           \
        "bne 1b\n"                                                                                                    \
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [b0] "=&r"(b0), [b1] "=&r"(b1),             \
          [b2] "=&r"(b2), [b3] "=&r"(b3), [ie] "=&r"(ie), [io] "=&r"(io), [we] "=&r"(we), [wo] "=&r"(wo),             \
          [r] "=&r"(r), [w] "+r"(w)                                                                                   \
        : [r0] "m"(m.r0), [r1] "m"(m.r1), [r2] "m"(m.r2), [o] "m"(m.o), [n] "m"(m.n), [ng] "m"(m.groups), [co] "m"(m.co), [lo4] "m"(m.lo4), [hi4] "m"(m.hi4), [per] "m"(m.per_group), [rskip] "m"(m.r_skip),\
          [oskip] "m"(m.o_skip)                                                                                       \
        : "cc", "memory");                                                                                            \
}

static void __attribute__((noinline)) dw33_pairs_s1(const uint32_t *blk, dw33_pairs_args *args) DW33_PAIRS_BODY(DW2_ROW)
static void __attribute__((noinline)) dw33_pairs_s2(const uint32_t *blk, dw33_pairs_args *args) DW33_PAIRS_BODY(DW2_ROW_S2)

static void dw33_pairs(const uint32_t *blk, dw33_pairs_args *args, int32_t stride)
{
    if (stride == 2) {
        dw33_pairs_s2(blk, args);
    } else {
        dw33_pairs_s1(blk, args);
    }
}
#else
/* Four doubled accumulators requantized (dw_rq2_one), clamped and stored as one word. */
static void dw_blk_rq4(int32_t a0, int32_t a1, int32_t a2, int32_t a3, const dw_rq *q, uint32_t lo4, uint32_t hi4,
                       int8_t *o)
{
    const uint32_t v0 = (uint8_t)dw_clamp8(dw_rq2_one(a0, &q[0]), lo4, hi4);
    const uint32_t v1 = (uint8_t)dw_clamp8(dw_rq2_one(a1, &q[1]), lo4, hi4);
    const uint32_t v2 = (uint8_t)dw_clamp8(dw_rq2_one(a2, &q[2]), lo4, hi4);
    const uint32_t v3 = (uint8_t)dw_clamp8(dw_rq2_one(a3, &q[3]), lo4, hi4);
    nn_write32(o, v0 | (v1 << 8) | (v2 << 16) | (v3 << 24));
}

static void dw33_pairs(const uint32_t *blk, dw33_pairs_args *args, int32_t stride)
{
    dw33_pairs_args m = *args;
    for (; m.groups > 0; m.groups--, blk += 34) {
        const dw_rq *q = (const dw_rq *)(const void *)(blk + 18);
        for (int32_t i = 0; i < 2 * m.per_group; i++) {
            int32_t a0, a1, a2, a3;
            const int32_t x = 4 * stride * i;
            dw_mac33(m.r0 + x, m.r1 + x, m.r2 + x, 4, blk, &a0, &a1, &a2, &a3);
            dw_blk_rq4(a0, a1, a2, a3, q, m.lo4, m.hi4, m.o + i * m.co);
        }
        const int32_t adv = 8 * stride * m.per_group + m.r_skip;
        m.r0 += adv;
        m.r1 += adv;
        m.r2 += adv;
        m.o += 2 * m.co * m.per_group + m.o_skip;
    }
}
#endif

/* The lone last pixel of an odd-width row, every group in one pass (the same blocks, the fused rounding with
 * the accumulators starting at the bias, the clamp and word store of the two-pixel loop). */
typedef struct {
    const int8_t *r0, *r1, *r2; /* group 0's window rows (advance gstride per group) */
    int32_t gstride;
    int8_t *o;                  /* group 0's outputs (advance 4) */
    int32_t groups;             /* >= 1 */
    uint32_t lo4, hi4;
} dw33_lone_args;

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* one tap at byte OFF of the row pointer r: DW33_TAP's instructions */
#define DW1_TAP(OFF, T) DW33_TAP(r, ", #" #OFF, T)
#define DW1_ROW(T, ROW)                                                                                           \
    "ldr %[r], %[" #ROW "]\n" DW1_TAP(0, T) DW1_TAP(4, T + 1) DW1_TAP(8, T + 2)                                 \
    "add %[r], %[r], %[gs]\n"                                                                                  \
    "str %[r], %[" #ROW "]\n"
#define DW1_RQ(A, I)                                                                                              \
    "ldr %[ie], [%[w], #72+16*" #I "+4]\n"                                                                     \
    "ldr %[iv], [%[w], #72+16*" #I "+8]\n"                                                                     \
    "ldr %[r], [%[w], #72+16*" #I "+12]\n"                                                                     \
    "add %[wo], %[iv], %[" #A "], asr #31\n"                                                                   \
    "smmlar %[wo], %[" #A "], %[ie], %[wo]\n"                                                                  \
    "asr %[wo], %[wo], %[r]\n"                                                                                 \
    "ssat %[" #A "], #8, %[wo]\n"

static void __attribute__((noinline)) dw33_lone(const uint32_t *blk, dw33_lone_args *args)
{
    dw33_lone_args m = *args;
    const uint32_t *w = blk;
    uint32_t a0, a1, a2, a3, iv, ie, we, wo, r, gs = (uint32_t)m.gstride;
    __asm__ volatile(
        "1:\n"
        "ldr %[a0], [%[w], #72]\n"
        "ldr %[a1], [%[w], #88]\n"
        "ldr %[a2], [%[w], #104]\n"
        "ldr %[a3], [%[w], #120]\n"
        DW1_ROW(0, r0) DW1_ROW(3, r1) DW1_ROW(6, r2)
        DW1_RQ(a0, 0) DW1_RQ(a1, 1) DW1_RQ(a2, 2) DW1_RQ(a3, 3)
        "bfi %[a0], %[a1], #8, #8\n"
        "bfi %[a0], %[a2], #16, #8\n"
        "bfi %[a0], %[a3], #24, #8\n"
        "ldr %[ie], %[lo4]\n"
        "ldr %[iv], %[hi4]\n"
        "ssub8 %[we], %[a0], %[ie]\n"
        "sel %[a0], %[a0], %[ie]\n"
        "ssub8 %[we], %[a0], %[iv]\n"
        "sel %[a0], %[iv], %[a0]\n"
        "ldr %[r], %[o]\n"
        "str %[a0], [%[r]], #4\n"
        "str %[r], %[o]\n"
        "add %[w], %[w], #136\n"
        "ldr %[r], %[ng]\n"
        "subs %[r], %[r], #1\n"
        "str %[r], %[ng]\n"
        "bne 1b\n"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [iv] "=&r"(iv), [ie] "=&r"(ie),
          [we] "=&r"(we), [wo] "=&r"(wo), [r] "=&r"(r), [w] "+r"(w)
        /* the local copy's fields as memory operands; the asm also writes r0..r2, o and groups ("memory") */
        : [r0] "m"(m.r0), [r1] "m"(m.r1), [r2] "m"(m.r2), [o] "m"(m.o), [ng] "m"(m.groups), [lo4] "m"(m.lo4),
          [hi4] "m"(m.hi4), [gs] "r"(gs)
        : "cc", "memory");
}
#else
static void dw33_lone(const uint32_t *blk, dw33_lone_args *args)
{
    dw33_lone_args m = *args;
    for (; m.groups > 0; m.groups--, blk += 34, m.r0 += m.gstride, m.r1 += m.gstride, m.r2 += m.gstride, m.o += 4) {
        int32_t a0, a1, a2, a3;
        dw_mac33(m.r0, m.r1, m.r2, 4, blk, &a0, &a1, &a2, &a3);
        dw_blk_rq4(a0, a1, a2, a3, (const dw_rq *)(const void *)(blk + 18), m.lo4, m.hi4, m.o);
    }
}
#endif

/* One output row of the two-pixel 3x3 path (stride 1 or 2): the pairs, then a lone last pixel (odd width). */
static void dw_row33_pairs(const dw_ctx *c, int32_t span, int32_t stride, int8_t *o)
{
    const int32_t groups = c->CO / 4, gstride = span * 4, pairs = c->OW / 2;
    if (pairs > 0) {
        dw33_pairs_args a = {c->ring + c->row_off[0], c->ring + c->row_off[1], c->ring + c->row_off[2], o, pairs,
                             pairs, groups, gstride - 8 * stride * pairs, 4 - 2 * c->CO * pairs, c->CO, c->lo4,
                             c->hi4};
        dw33_pairs(c->wx, &a, stride);
    }
    if (c->OW & 1) {
        const int32_t x = 4 * stride * (c->OW - 1);
        dw33_lone_args a = {c->ring + c->row_off[0] + x, c->ring + c->row_off[1] + x, c->ring + c->row_off[2] + x,
                            gstride, o + (c->OW - 1) * c->CO, groups, c->lo4, c->hi4};
        dw33_lone(c->wx, &a);
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

/* The two-pixel path's per-call setup (its blocks, see dw33_pairs_args), kept tight since small spatial layers
 * run it once per few outputs: the doubled expanded weights tap by tap (the filter read in its order,
 * sequential flash reads), then per group the weight sums in int16 lanes (9 doubled weights: at most 2304 in
 * magnitude) and each channel's dw_rq2_init with the input offset term folded into the bias. */
static void __attribute__((noinline)) dw_setup_pairs(const nn_conv_params *p, const int8_t *filter, const int32_t *bias,
                                                     const int32_t *mult, const int32_t *shift, int32_t CO,
                                                     uint32_t *blk)
{
    const int32_t groups = CO / 4;
    for (int32_t t = 0; t < 9; t++) {
        const int8_t *ft = filter + t * CO;
        uint32_t *wg = blk + 2 * t;
        for (int32_t g = 0; g < groups; g++, ft += 4, wg += 34) {
            const uint32_t v = nn_read32(ft);
            const uint32_t e = nn_sxtb16(v), od = nn_sxtb16_ror8(v);
            wg[0] = nn_sadd16(e, e);
            wg[1] = nn_sadd16(od, od);
        }
    }
    for (int32_t g = 0; g < groups; g++, blk += 34) {
        uint32_t se = blk[0], so = blk[1];
        for (int32_t t = 1; t < 9; t++) {
            se = nn_sadd16(se, blk[2 * t]);
            so = nn_sadd16(so, blk[2 * t + 1]);
        }
        /* channel 4g + i: lane i / 2 of se (even i) or so (odd i), halved */
        const int32_t sw[4] = {(int16_t)se / 2, (int16_t)so / 2, (int16_t)(se >> 16) / 2, (int16_t)(so >> 16) / 2};
        dw_rq *q = (dw_rq *)(void *)(blk + 18);
        for (int32_t i = 0; i < 4; i++) {
            const int32_t c = 4 * g + i;
            const int32_t b = (int32_t)((uint32_t)(bias ? bias[c] : 0) + (uint32_t)sw[i] * (uint32_t)p->input_offset);
            dw_rq2_init(&q[i], b, mult[c], shift[c], p->output_offset);
        }
    }
}

/* Once per call (the one-pixel paths), out of line and compiled for size: the expanded weights, [group][tap][2] (a group's taps contiguous), the filter read
 * in its own order (tap by tap: sequential flash reads), a word (4 channels of a tap) at a time; then per group
 * each channel's weight sum from the expanded words (in RAM), for the bias with the input offset of every tap
 * (padding included, see above) folded in. */
static NN_SETUP void dw_setup(const nn_conv_params *p, const int8_t *filter, const int32_t *bias,
                              const int32_t *mult, const int32_t *shift, int32_t CO, int32_t taps, dw_rq *rq,
                              uint32_t *wx)
{
    const int32_t CO4 = (CO + 3) & ~3;
    for (int32_t t = 0; t < taps; t++) {
        const int8_t *ft = filter + t * CO;
        for (int32_t g = 0; g < CO4; g += 4) {
            uint32_t *wg = wx + g / 4 * taps * 2;
            uint32_t v = 0;
            if (g + 4 <= CO) {
                v = nn_read32(ft + g);
            } else {
                for (int32_t i = 0; g + i < CO; i++) {
                    v |= (uint32_t)(uint8_t)ft[g + i] << (8 * i);
                }
            }
            wg[2 * t] = nn_sxtb16(v);
            wg[2 * t + 1] = nn_sxtb16_ror8(v);
        }
    }
    for (int32_t g = 0; g < CO4; g += 4) {
        const uint32_t *wg = wx + g / 4 * taps * 2;
        int32_t sw[4] = {0, 0, 0, 0};
        for (int32_t t = 0; t < taps; t++) {
            const uint32_t e = wg[2 * t], od = wg[2 * t + 1];
            sw[0] += (int16_t)e;
            sw[2] += (int16_t)(e >> 16);
            sw[1] += (int16_t)od;
            sw[3] += (int16_t)(od >> 16);
        }
        for (int32_t i = 0; i < 4 && g + i < CO; i++) {
            const int32_t c = g + i;
            const int32_t b = (int32_t)((uint32_t)(bias ? bias[c] : 0) + (uint32_t)sw[i] * (uint32_t)p->input_offset);
            dw_rq_init(&rq[c], b, mult[c], shift[c], p->output_offset);
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
    /* int32 offsets rather than pointers: the scratch size is the same on the host and on the target */
    int32_t *row_off = (int32_t *)(void *)scratch;
    dw_rq *rq = (dw_rq *)(void *)(scratch + 4 * kh);
    uint32_t *wx = (uint32_t *)(void *)(scratch + 4 * kh + 16 * CO); /* [group][tap][2] */
    int8_t *ring = scratch + 16 * CO + 4 * kh + 2 * taps * CO4;
    const int32_t row_bytes = span * CO;
    int fast = 1;
    for (int32_t c = 0; c < CO; c++) {
        fast &= dw_rq_fusable(mult[c], shift[c]);
    }
    /* the two-pixel 3x3 path: its blocks of 34 words per group (18 weight words, then the group's 4 dw_rq) take
     * the place of the rq table and the weights, which it does not use (CO % 4 == 0: the same bytes) */
    const int pairs33 = fast && kh == 3 && kw == 3 && (p->stride_w == 1 || p->stride_w == 2) && p->dil_w == 1 &&
                        (CO & 3) == 0 && dw_blk_ok(bias, CO);
    if (pairs33) {
        dw_setup_pairs(p, filter, bias, mult, shift, CO, (uint32_t *)(void *)rq);
        wx = (uint32_t *)(void *)rq;
        rq = NULL;
    } else {
        dw_setup(p, filter, bias, mult, shift, CO, taps, rq, wx);
    }
    dw_ctx ctx = {ring, row_off, wx, rq, filter, OW, CO, kh, kw, taps, p->stride_w * CO, p->dil_w * CO,
                  p->output_offset, p->act_min, p->act_max, (uint8_t)p->act_min * 0x01010101u,
                  (uint8_t)p->act_max * 0x01010101u};
    const int8_t zp = (int8_t)(-p->input_offset);
    const int row33 = fast && kh == 3 && kw == 3 && !pairs33;
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
                (pairs33 ? load_row_groups : load_row)(in_b + (y >= 0 && y < H ? y : 0) * W * C, y >= 0 && y < H, W,
                                                       C, dm, p->pad_w, span, zp, ring + row_off[ky]);
            }
            loaded = p->dil_h == 1 ? y0 + kh - 1 : -0x7FFFFFFF;
            int8_t *o = out_b + oy * OW * CO;
            if (pairs33) {
                dw_row33_pairs(&ctx, span, p->stride_w, o);
            } else if (row33) {
                dw_row33(&ctx, o);
            } else {
                dw_row(&ctx, o, fast);
            }
        }
    }
}
