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
 * 3x3 with stride 1 or 2, depth multiplier 1 and channels a multiple of 4 takes the int16 SMLAD path
 * (dw16_*, below: input plus offset as int16 pixel pairs, two channels x four pixels per step).
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
 * The int16 3x3 path's requantization, on twice the accumulator (its weights and bias are doubled: x2 = 2 x, exact while |x| < 2^30, see dw_blk_ok). The fused rounding above,
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

/*
 * The int16 SMLAD 3x3 path (stride 1 or 2, no horizontal dilation, depth multiplier 1, channels a multiple of
 * 4, every channel fused, dw_blk_ok). The ring holds each input value plus the input offset as int16 (padding
 * 0: exactly the reference's skipped tap, so the bias needs no offset term) as words of pixel pairs: word
 * (pair j of channels 2j, 2j + 1, k, slot, e) = pixels 2k and 2k + 1 of the span of channel 2j + e, at
 * ring + j * 12 S + 24 k + 8 slot + 4 e (S halfwords per slot row), so the input words of a block sit at fixed
 * offsets from one pointer. Instead of naming the slots per output row, the weights come in the three
 * rotations of the kernel rows over the slots (slot s meets kernel row (s - rot) mod 3, rot = the slot of the
 * output row's first input row). Two channels, four output pixels per step; weight pairs doubled as in
 * dw_rq2_init, so a word of two adjacent pixels meets a weight pair in one SMLAD:
 *   stride 1, words A = (x0, x1), B = (x2, x3), C = (x4, x5), W = (w0, w1), V = (w1, w2):
 *     px0 = A.W + x2 w2, px1 = x1 w0 + B.V, px2 = B.W + x4 w2, px3 = x3 w0 + C.V (8 multiplies, 12 MACs);
 *   stride 2, words D0..D4, W = (w0, w1), V = (w2, 0): px i = D_i.W + D_{i+1}.lo w2.
 * Per channel pair 28 words: the two channels' dw_rq (dw_rq2_init: 2 bias, m, 2 khi, right), then per kernel
 * row 0, 1, 2, 0, 1 the (W, V) of each channel. The accumulators start at the doubled bias; dw_rq2_one's
 * SMMLAR rounding; each pixel's two results clamped bytewise and stored as one halfword (a last partial
 * block stores only its pixels).
 */
#define DW16_PAIR_WORDS 28

/* Halfwords of one slot row of a channel: the span the four-pixel blocks read (even). */
static inline int32_t dw16_span(int32_t stride, int32_t OW) { return stride * ((OW + 3) & ~3) + 2; }

/* The shapes the path is for (its scratch is reserved for them). */
static inline int dw16_shape(const nn_conv_params *p, const nn_dims *f_d, int32_t C)
{
    return f_d->h == 3 && f_d->w == 3 && (p->stride_w == 1 || p->stride_w == 2) && p->dil_w == 1 && (C & 3) == 0;
}

static size_t dw16_scratch_bytes(const nn_conv_params *p, const nn_dims *out_d)
{
    const size_t c = (size_t)out_d->c;
    return 2u * DW16_PAIR_WORDS * c + 6u * c * (size_t)dw16_span(p->stride_w, out_d->w);
}

/* Once per call: per channel pair the dw_rq and the doubled weight pairs of kernel rows 0, 1, 2, 0, 1 (a row's
 * block: (W, V) of channel 0, then of channel 1), so that rotation rot reads the three blocks from block
 * (3 - rot) mod 3 on. The filter read four channels (a word) per tap, expanded and packed lane-wise. */
static NN_SETUP void dw16_setup(const nn_conv_params *p, const int8_t *filter, const int32_t *bias,
                                                 const int32_t *mult, const int32_t *shift, int32_t C, uint32_t *prm)
{
    const int s2 = p->stride_w == 2;
    for (int32_t c4 = 0; c4 < C; c4 += 4) {
        /* tap t of the four channels, doubled: e[t] = (c0, c2), o[t] = (c1, c3) */
        uint32_t e[9], o[9];
        for (int32_t t = 0; t < 9; t++) {
            const uint32_t v = nn_read32(filter + t * C + c4);
            e[t] = nn_sxtb16(v);
            o[t] = nn_sxtb16_ror8(v);
            e[t] = nn_sadd16(e[t], e[t]);
            o[t] = nn_sadd16(o[t], o[t]);
        }
        /* channels c4, c4 + 1 (pair c4 / 2, lanes lo), c4 + 2, c4 + 3 (the next pair, lanes hi) */
        uint32_t *b0 = prm + DW16_PAIR_WORDS * (c4 >> 1) + 8, *b1 = b0 + DW16_PAIR_WORDS;
        for (int32_t r = 0; r < 3; r++) {
            const uint32_t *x = e + 3 * r, *y = o + 3 * r;
            const uint32_t vlo = s2 ? 0u : 0xFFFF0000u; /* V = (w1, w2), or (w2, 0) with stride 2 */
            b0[4 * r] = (x[0] & 0xFFFFu) | (x[1] << 16);
            b0[4 * r + 2] = (y[0] & 0xFFFFu) | (y[1] << 16);
            b1[4 * r] = (x[1] & 0xFFFF0000u) | (x[0] >> 16);
            b1[4 * r + 2] = (y[1] & 0xFFFF0000u) | (y[0] >> 16);
            b0[4 * r + 1] = s2 ? (x[2] & 0xFFFFu) : (x[1] & 0xFFFFu) | (x[2] << 16);
            b0[4 * r + 3] = s2 ? (y[2] & 0xFFFFu) : (y[1] & 0xFFFFu) | (y[2] << 16);
            b1[4 * r + 1] = s2 ? (x[2] >> 16) : (x[2] & vlo) | (x[1] >> 16);
            b1[4 * r + 3] = s2 ? (y[2] >> 16) : (y[2] & vlo) | (y[1] >> 16);
        }
        for (int32_t i = 0; i < 8; i++) { /* rows 0, 1 again */
            b0[12 + i] = b0[i];
            b1[12 + i] = b1[i];
        }
    }
    for (int32_t c = 0; c < C; c++) {
        dw_rq2_init((dw_rq *)(void *)(prm + DW16_PAIR_WORDS * (c >> 1) + 4 * (c & 1)), bias ? bias[c] : 0, mult[c],
                    shift[c], p->output_offset);
    }
}

/* Words k0 .. k0 + n - 1 of one group of four channels, both pixels of every word inside the row (src: the
 * group's bytes at pixel 2 k0 - pad_w, d: its words at k0 in slot 0 of its pair, cs: bytes between pairs): the two
 * pixels' words packed (PKHBT / PKHTB: channels 0, 1 of both; channels 2, 3 of both) and extended with the
 * offset added (SXTAB16). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static inline void dw16_load_words(const int8_t *src, int32_t C, int32_t n, uint32_t off2, int32_t cs, int8_t *d)
{
    uint32_t p0, p1, lo, hi, t;
    int8_t *d2 = d + cs;
    const int32_t step = 2 * C;
    __asm__ volatile("1:\n"
                     "ldr %[p0], [%[s]]\n"
                     "ldr %[p1], [%[s], %[c]]\n"
                     "add %[s], %[s], %[step]\n"
                     "pkhbt %[lo], %[p0], %[p1], lsl #16\n"
                     "pkhtb %[hi], %[p1], %[p0], asr #16\n"
                     "sxtab16 %[t], %[off], %[lo]\n"
                     "sxtab16 %[lo], %[off], %[lo], ror #8\n"
                     "str %[lo], [%[d], #4]\n"
                     "str %[t], [%[d]], #24\n"
                     "sxtab16 %[t], %[off], %[hi]\n"
                     "sxtab16 %[hi], %[off], %[hi], ror #8\n"
                     "str %[hi], [%[d2], #4]\n"
                     "str %[t], [%[d2]], #24\n"
                     "subs %[n], %[n], #1\n"
                     "bne 1b\n"
                     : [p0] "=&r"(p0), [p1] "=&r"(p1), [lo] "=&r"(lo), [hi] "=&r"(hi), [t] "=&r"(t), [s] "+r"(src),
                       [d] "+r"(d), [d2] "+r"(d2), [n] "+r"(n)
                     : [off] "r"(off2), [c] "r"(C), [step] "r"(step)
                     : "cc", "memory");
}
#else
static inline void dw16_load_words(const int8_t *src, int32_t C, int32_t n, uint32_t off2, int32_t cs, int8_t *d)
{
    for (; n > 0; n--, src += 2 * C, d += 24) {
        const uint32_t p0 = nn_read32(src), p1 = nn_read32(src + C);
        const uint32_t lo = (p0 & 0xFFFFu) | (p1 << 16), hi = (p1 & 0xFFFF0000u) | (p0 >> 16);
        nn_write32(d, nn_sxtab16(off2, lo));
        nn_write32(d + 4, nn_sxtab16_ror8(off2, lo));
        nn_write32(d + cs, nn_sxtab16(off2, hi));
        nn_write32(d + cs + 4, nn_sxtab16_ror8(off2, hi));
    }
}
#endif

/* Word k of every group (d: group 0's word in slot 0 of its pair), the pixels' bytes at s0 and s1 advancing
 * i0 and i1 per group (an outside pixel: the zero point word, 0 once offset, i = 0). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static inline void dw16_load_word(const int8_t *s0, const int8_t *s1, int32_t i0, int32_t i1, int32_t groups,
                                  uint32_t off2, int32_t cs, int8_t *d)
{
    uint32_t p0, p1, lo, hi, t;
    int8_t *d2 = d + cs;
    const int32_t step = 2 * cs;
    __asm__ volatile("1:\n"
                     "ldr %[p0], [%[s0]]\n"
                     "ldr %[p1], [%[s1]]\n"
                     "add %[s0], %[s0], %[i0]\n"
                     "add %[s1], %[s1], %[i1]\n"
                     "pkhbt %[lo], %[p0], %[p1], lsl #16\n"
                     "pkhtb %[hi], %[p1], %[p0], asr #16\n"
                     "sxtab16 %[t], %[off], %[lo]\n"
                     "sxtab16 %[lo], %[off], %[lo], ror #8\n"
                     "str %[lo], [%[d], #4]\n"
                     "str %[t], [%[d]]\n"
                     "sxtab16 %[t], %[off], %[hi]\n"
                     "sxtab16 %[hi], %[off], %[hi], ror #8\n"
                     "str %[hi], [%[d2], #4]\n"
                     "str %[t], [%[d2]]\n"
                     "add %[d], %[d], %[step]\n"
                     "add %[d2], %[d2], %[step]\n"
                     "subs %[n], %[n], #1\n"
                     "bne 1b\n"
                     : [p0] "=&r"(p0), [p1] "=&r"(p1), [lo] "=&r"(lo), [hi] "=&r"(hi), [t] "=&r"(t), [s0] "+r"(s0),
                       [s1] "+r"(s1), [d] "+r"(d), [d2] "+r"(d2), [n] "+r"(groups)
                     : [off] "r"(off2), [i0] "r"(i0), [i1] "r"(i1), [step] "r"(step)
                     : "cc", "memory");
}
#else
static inline void dw16_load_word(const int8_t *s0, const int8_t *s1, int32_t i0, int32_t i1, int32_t groups,
                                  uint32_t off2, int32_t cs, int8_t *d)
{
    for (; groups > 0; groups--, s0 += i0, s1 += i1, d += 2 * cs) {
        const uint32_t p0 = nn_read32(s0), p1 = nn_read32(s1);
        const uint32_t lo = (p0 & 0xFFFFu) | (p1 << 16), hi = (p1 & 0xFFFF0000u) | (p0 >> 16);
        nn_write32(d, nn_sxtab16(off2, lo));
        nn_write32(d + 4, nn_sxtab16_ror8(off2, lo));
        nn_write32(d + cs, nn_sxtab16(off2, hi));
        nn_write32(d + cs + 4, nn_sxtab16_ror8(off2, hi));
    }
}
#endif

/* Words [k0, k1) of ring slot dst (= ring + 8 slot) for input row y (or padding), each pixel checked. */
static void dw16_load_edge(const int8_t *in_row, int32_t y_inside, int32_t W, int32_t C, int32_t pad_w, int32_t S,
                           int32_t offset, int32_t k0, int32_t k1, int8_t *dst)
{
    const uint32_t zp4 = (uint8_t)(-offset) * 0x01010101u;
    const int8_t *zp = (const int8_t *)&zp4;
    for (int32_t k = k0; k < k1; k++) {
        const int32_t x0 = 2 * k - pad_w;
        const int in0 = y_inside && x0 >= 0 && x0 < W, in1 = y_inside && x0 + 1 >= 0 && x0 + 1 < W;
        dw16_load_word(in0 ? in_row + x0 * C : zp, in1 ? in_row + (x0 + 1) * C : zp, in0 ? 4 : 0, in1 ? 4 : 0, C / 4,
                       nn_pack16(offset, offset), 12 * S, dst + 24 * k);
    }
}

/* Input row y (or padding) into ring slot dst (= ring + 8 slot): only the words with a pixel inside the row's
 * width (the others stay 0 from dw16_run's clearing), those with both pixels inside group by group
 * (dw16_load_words), the rest checked (dw16_load_edge). */
static void dw16_load_row(const int8_t *in_row, int32_t y_inside, int32_t W, int32_t C, int32_t pad_w, int32_t S,
                          int32_t offset, int8_t *dst)
{
    const int32_t cs = 12 * S, nk = S / 2;
    /* word k has a pixel inside when 2k + 1 - pad_w >= 0 and 2k - pad_w < W; both when 2k - pad_w >= 0 and
     * 2k + 1 - pad_w < W */
    const int32_t kl = pad_w / 2, kr = (W + pad_w + 1) / 2 < nk ? (W + pad_w + 1) / 2 : nk;
    int32_t k0 = (pad_w + 1) / 2, k1 = (W + pad_w) / 2;
    k1 = k1 < nk ? k1 : nk;
    if (!y_inside || k1 <= k0) {
        dw16_load_edge(in_row, y_inside, W, C, pad_w, S, offset, kl, kr, dst);
        return;
    }
    const uint32_t off2 = nn_pack16(offset, offset);
    const int8_t *src = in_row + (2 * k0 - pad_w) * C;
    int8_t *d = dst + 24 * k0;
    for (int32_t c = 0; c < C; c += 4, src += 4, d += 2 * cs) {
        dw16_load_words(src, C, k1 - k0, off2, cs, d);
    }
    dw16_load_edge(in_row, y_inside, W, C, pad_w, S, offset, kl, k0, dst);
    dw16_load_edge(in_row, y_inside, W, C, pad_w, S, offset, k1, kr, dst);
}

/* One output row, every channel pair: the asm's state. */
typedef struct {
    const int8_t *p;   /* the pair's ring words (advance cs per pair; the asm's block pointer in between) */
    const uint32_t *q; /* the pair's 28 words (advance 112 bytes) */
    int8_t *o;         /* the current block's first output of the pair (advance 4 co per block) */
    int8_t *o0;        /* the pair's first output (advance 2) */
    int32_t nb;        /* pixels left in the row */
    int32_t npair;     /* channel pairs left (>= 1) */
    int32_t ow;        /* output pixels of the row (>= 1) */
    int32_t wrot;      /* byte offset of the row's slot 0 weights in a pair's words: 32 + 16 ((3 - rot) mod 3) */
    int32_t cs, co;    /* ring bytes per channel pair, output bytes per pixel */
    uint32_t lo4, hi4;
} dw16_args;

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* slot S, channel E: ring words k, k + 1 of the block's first pixels (A, B) and the slot's first weight word (W) */
#define DW16_LOAD(S, E)                                                                                           \
    "ldr %[A], [%[p], #8*" #S "+4*" #E "]\n"                                                                   \
    "ldr %[B], [%[p], #24+8*" #S "+4*" #E "]\n"                                                                \
    "ldr %[W], [%[w], #16*" #S "+8*" #E "]\n"
/* slot S, channel E (accumulators X0..X3) of a stride-1 block: words k, k + 1 (A, B), then k + 2 (in A) */
#define DW16_S1(S, E, X)                                                                                          \
    DW16_LOAD(S, E)                                                                                           \
    "smlad %[" #X "0], %[A], %[W], %[" #X "0]\n"                                                               \
    "smlatb %[" #X "1], %[A], %[W], %[" #X "1]\n"                                                              \
    "smlad %[" #X "2], %[B], %[W], %[" #X "2]\n"                                                               \
    "smlatb %[" #X "3], %[B], %[W], %[" #X "3]\n"                                                              \
    "ldr %[W], [%[w], #16*" #S "+8*" #E "+4]\n"                                                                \
    "ldr %[A], [%[p], #48+8*" #S "+4*" #E "]\n"                                                                \
    "smlabt %[" #X "0], %[B], %[W], %[" #X "0]\n"                                                              \
    "smlad %[" #X "1], %[B], %[W], %[" #X "1]\n"                                                               \
    "smlabt %[" #X "2], %[A], %[W], %[" #X "2]\n"                                                              \
    "smlad %[" #X "3], %[A], %[W], %[" #X "3]\n"
/* the same with stride 2: words D0..D4 (A, B, A, T, A), W then V */
#define DW16_S2(S, E, X)                                                                                          \
    DW16_LOAD(S, E)                                                                                           \
    "smlad %[" #X "0], %[A], %[W], %[" #X "0]\n"                                                               \
    "smlad %[" #X "1], %[B], %[W], %[" #X "1]\n"                                                               \
    "ldr %[A], [%[p], #48+8*" #S "+4*" #E "]\n"                                                                \
    "ldr %[T], [%[p], #72+8*" #S "+4*" #E "]\n"                                                                \
    "smlad %[" #X "2], %[A], %[W], %[" #X "2]\n"                                                               \
    "smlad %[" #X "3], %[T], %[W], %[" #X "3]\n"                                                               \
    "ldr %[W], [%[w], #16*" #S "+8*" #E "+4]\n"                                                                \
    "smlabb %[" #X "0], %[B], %[W], %[" #X "0]\n"                                                              \
    "smlabb %[" #X "1], %[A], %[W], %[" #X "1]\n"                                                              \
    "smlabb %[" #X "2], %[T], %[W], %[" #X "2]\n"                                                              \
    "ldr %[A], [%[p], #96+8*" #S "+4*" #E "]\n"                                                                \
    "smlabb %[" #X "3], %[A], %[W], %[" #X "3]\n"
#define DW16_SLOT(SLOT, S) SLOT(S, 0, a) SLOT(S, 1, b)
/* the two-pixel tail block (pixels 0, 1 only) of a row with 1 or 2 pixels left, stride 1 and 2 */
#define DW16_T1(S, E, X)                                                                                          \
    DW16_LOAD(S, E)                                                                                           \
    "smlad %[" #X "0], %[A], %[W], %[" #X "0]\n"                                                               \
    "smlatb %[" #X "1], %[A], %[W], %[" #X "1]\n"                                                              \
    "ldr %[W], [%[w], #16*" #S "+8*" #E "+4]\n"                                                                \
    "smlabt %[" #X "0], %[B], %[W], %[" #X "0]\n"                                                              \
    "smlad %[" #X "1], %[B], %[W], %[" #X "1]\n"
#define DW16_T2(S, E, X)                                                                                          \
    DW16_LOAD(S, E)                                                                                           \
    "smlad %[" #X "0], %[A], %[W], %[" #X "0]\n"                                                               \
    "smlad %[" #X "1], %[B], %[W], %[" #X "1]\n"                                                               \
    "ldr %[W], [%[w], #16*" #S "+8*" #E "+4]\n"                                                                \
    "ldr %[A], [%[p], #48+8*" #S "+4*" #E "]\n"                                                                \
    "smlabb %[" #X "0], %[B], %[W], %[" #X "0]\n"                                                              \
    "smlabb %[" #X "1], %[A], %[W], %[" #X "1]\n"
/* the one-pixel tail block (pixel 0 only, stride 1): px0 = A.W + B.lo V.hi */
#define DW16_U(S, E, X, MAC2)                                                                                     \
    DW16_LOAD(S, E)                                                                                           \
    "ldr %[T], [%[w], #16*" #S "+8*" #E "+4]\n"                                                                \
    "smlad %[" #X "0], %[A], %[W], %[" #X "0]\n"                                                               \
    MAC2 " %[" #X "0], %[B], %[T], %[" #X "0]\n"
#define DW16_U1(S, E, X) DW16_U(S, E, X, "smlabt")
#define DW16_RQU(E, X)                                                                                            \
    "ldr %[T], %[mq]\n"                                                                                        \
    "ldr %[A], [%[T], #16*" #E "+4]\n"                                                                         \
    "ldr %[B], [%[T], #16*" #E "+8]\n"                                                                         \
    "ldr %[W], [%[T], #16*" #E "+12]\n"                                                                        \
    DW16_RQ1(X##0)
#define DW16_RQT(E, X)                                                                                            \
    "ldr %[T], %[mq]\n"                                                                                        \
    "ldr %[A], [%[T], #16*" #E "+4]\n"                                                                         \
    "ldr %[B], [%[T], #16*" #E "+8]\n"                                                                         \
    "ldr %[W], [%[T], #16*" #E "+12]\n"                                                                        \
    DW16_RQ1(X##0) DW16_RQ1(X##1)

/* channel E's constants (m in A, 2 khi in B, right in W), then its four accumulators X0..X3 */
#define DW16_RQ1(X)                                                                                               \
    "add %[T], %[B], %[" #X "], asr #31\n"                                                                     \
    "smmlar %[" #X "], %[" #X "], %[A], %[T]\n"                                                                \
    "asr %[" #X "], %[" #X "], %[W]\n"                                                                         \
    "ssat %[" #X "], #8, %[" #X "]\n"
#define DW16_RQ(E, X)                                                                                             \
    "ldr %[T], %[mq]\n"                                                                                        \
    "ldr %[A], [%[T], #16*" #E "+4]\n"                                                                         \
    "ldr %[B], [%[T], #16*" #E "+8]\n"                                                                         \
    "ldr %[W], [%[T], #16*" #E "+12]\n"                                                                        \
    DW16_RQ1(X##0) DW16_RQ1(X##1) DW16_RQ1(X##2) DW16_RQ1(X##3)
/* pixels L, L + 1 of both channels into X = (aL, bL, aL+1, bL+1), clamped to [lo4, hi4] (in A, B) */
#define DW16_PACK(L, M)                                                                                           \
    "bfi %[a" #L "], %[b" #L "], #8, #8\n"                                                                     \
    "bfi %[a" #L "], %[a" #M "], #16, #8\n"                                                                    \
    "bfi %[a" #L "], %[b" #M "], #24, #8\n"                                                                    \
    "ssub8 %[T], %[a" #L "], %[A]\n"                                                                           \
    "sel %[a" #L "], %[a" #L "], %[A]\n"                                                                       \
    "ssub8 %[T], %[a" #L "], %[B]\n"                                                                           \
    "sel %[a" #L "], %[B], %[a" #L "]\n"

/* stride 1 only: a last single pixel takes the one-pixel block (stride 2's odd widths end in a two-pixel tail) */
#define DW16_UGO "cmp %[T], #1\n" "beq 7f\n"
#define DW16_UBLK                                                                                                     \
        "b 5f\n"                                                                                                      \
        "7:\n"                                                                                                        \
        "ldr %[T], %[mq]\n"                                                                                           \
        "ldr %[a0], [%[T]]\n"                                                                                         \
        "ldr %[b0], [%[T], #16]\n"                                                                                    \
        DW16_SLOT(DW16_U1, 0) DW16_SLOT(DW16_U1, 1) DW16_SLOT(DW16_U1, 2)                                                   \
        DW16_RQU(0, a) DW16_RQU(1, b)                                                                                 \
        "bfi %[a0], %[b0], #8, #8\n"                                                                                  \
        "ldr %[A], %[mlo]\n"                                                                                          \
        "ldr %[B], %[mhi]\n"                                                                                          \
        "ssub8 %[T], %[a0], %[A]\n"                                                                                   \
        "sel %[a0], %[a0], %[A]\n"                                                                                    \
        "ssub8 %[T], %[a0], %[B]\n"                                                                                   \
        "sel %[a0], %[B], %[a0]\n"                                                                                    \
        "ldr %[T], %[mo]\n"                                                                                           \
        "strh %[a0], [%[T]]\n"

/* The asm loop over channel pairs and blocks; SLOT the block's slot macro, STEP the ring bytes per block. */
#define DW16_ROW_BODY(SLOT, TSLOT, UGO, UBLK, STEP)                                                                               \
{                                                                                                                     \
    dw16_args m = *args;                                                                                              \
    uint32_t a0, a1, a2, a3, b0, b1, b2, b3, A, B, W, T, p, w;                                                        \
    __asm__ volatile(                                                                                                 \
        "1:\n"                                                                                                        \
        "ldr %[p], %[mp]\n"                                                                                           \
        "ldr %[T], %[mq]\n"                                                                                           \
        "ldr %[w], %[mwrot]\n"                                                                                        \
        "ldr %[A], %[mow]\n"                                                                                          \
        "ldr %[B], %[mo0]\n"                                                                                          \
        "add %[w], %[T], %[w]\n"                                                                                      \
        "str %[A], %[mnb]\n"                                                                                          \
        "str %[B], %[mo]\n"                                                                                           \
        "2:\n"                                                                                                        \
        "ldr %[T], %[mnb]\n"                                                                                          \
        "cmp %[T], #2\n"                                                                                              \
        "ble 6f\n"                                                                                                    \
        "ldr %[T], %[mq]\n"                                                                                           \
        "ldr %[a0], [%[T]]\n"                                                                                         \
        "ldr %[b0], [%[T], #16]\n"                                                                                    \
        "mov %[a1], %[a0]\n"                                                                                          \
        "mov %[a2], %[a0]\n"                                                                                          \
        "mov %[a3], %[a0]\n"                                                                                          \
        "mov %[b1], %[b0]\n"                                                                                          \
        "mov %[b2], %[b0]\n"                                                                                          \
        "mov %[b3], %[b0]\n"                                                                                          \
        DW16_SLOT(SLOT, 0) DW16_SLOT(SLOT, 1) DW16_SLOT(SLOT, 2)                                                      \
        DW16_RQ(0, a) DW16_RQ(1, b)                                                                                   \
        "ldr %[A], %[mlo]\n"                                                                                          \
        "ldr %[B], %[mhi]\n"                                                                                          \
        DW16_PACK(0, 1) DW16_PACK(2, 3)                                                                               \
        "ldr %[A], %[mco]\n"                                                                                          \
        "ldr %[T], %[mo]\n"                                                                                           \
        "ldr %[B], %[mnb]\n"                                                                                          \
        "strh %[a0], [%[T]]\n"                                                                                        \
        "cmp %[B], #4\n"                                                                                              \
        "blt 4f\n"                                                                                                    \
        "lsr %[a0], %[a0], #16\n"                                                                                     \
        "strh %[a0], [%[T], %[A]]\n"                                                                                  \
        "add %[T], %[T], %[A], lsl #1\n"                                                                              \
        "strh %[a2], [%[T]]\n"                                                                                        \
        "lsr %[a2], %[a2], #16\n"                                                                                     \
        "strh %[a2], [%[T], %[A]]\n"                                                                                  \
        "add %[T], %[T], %[A], lsl #1\n"                                                                              \
        "str %[T], %[mo]\n"                                                                                           \
        "add %[p], %[p], #" #STEP "\n"                                                                                \
        "subs %[B], %[B], #4\n"                                                                                       \
        "str %[B], %[mnb]\n"                                                                                          \
        "bne 2b\n"                                                                                                    \
        "b 5f\n"                                                                                                      \
        "4:\n"                                                                                                        \
        "cmp %[B], #1\n"                                                                                              \
        "beq 5f\n"                                                                                                    \
        "lsr %[a0], %[a0], #16\n"                                                                                     \
        "strh %[a0], [%[T], %[A]]\n"                                                                                  \
        "cmp %[B], #2\n"                                                                                              \
        "beq 5f\n"                                                                                                    \
        "add %[T], %[T], %[A], lsl #1\n"                                                                              \
        "strh %[a2], [%[T]]\n"                                                                                        \
        "b 5f\n"                                                                                                      \
        "6:\n"                                                                                                        \
        UGO                                                                                                           \
        "ldr %[T], %[mq]\n"                                                                                           \
        "ldr %[a0], [%[T]]\n"                                                                                         \
        "ldr %[b0], [%[T], #16]\n"                                                                                    \
        "mov %[a1], %[a0]\n"                                                                                          \
        "mov %[b1], %[b0]\n"                                                                                          \
        DW16_SLOT(TSLOT, 0) DW16_SLOT(TSLOT, 1) DW16_SLOT(TSLOT, 2)                                                   \
        DW16_RQT(0, a) DW16_RQT(1, b)                                                                                 \
        "ldr %[A], %[mlo]\n"                                                                                          \
        "ldr %[B], %[mhi]\n"                                                                                          \
        DW16_PACK(0, 1)                                                                                               \
        "ldr %[A], %[mco]\n"                                                                                          \
        "ldr %[T], %[mo]\n"                                                                                           \
        "ldr %[B], %[mnb]\n"                                                                                          \
        "strh %[a0], [%[T]]\n"                                                                                        \
        "cmp %[B], #1\n"                                                                                              \
        "beq 5f\n"                                                                                                    \
        "lsr %[a0], %[a0], #16\n"                                                                                     \
        "strh %[a0], [%[T], %[A]]\n"                                                                                  \
        UBLK                                                                                                          \
        "5:\n"                                                                                                        \
        "ldr %[A], %[mcs]\n"                                                                                          \
        "ldr %[p], %[mp]\n"                                                                                           \
        "ldr %[T], %[mq]\n"                                                                                           \
        "ldr %[B], %[mo0]\n"                                                                                          \
        "add %[p], %[p], %[A]\n"                                                                                      \
        "add %[T], %[T], #112\n"                                                                                      \
        "add %[B], %[B], #2\n"                                                                                        \
        "str %[p], %[mp]\n"                                                                                           \
        "str %[T], %[mq]\n"                                                                                           \
        "str %[B], %[mo0]\n"                                                                                          \
        "ldr %[A], %[mnpair]\n"                                                                                       \
        "subs %[A], %[A], #1\n"                                                                                       \
        "str %[A], %[mnpair]\n"                                                                                       \
        "bne 1b\n"                                                                                                    \
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [b0] "=&r"(b0), [b1] "=&r"(b1),             \
          [b2] "=&r"(b2), [b3] "=&r"(b3), [A] "=&r"(A), [B] "=&r"(B), [W] "=&r"(W), [T] "=&r"(T), [p] "=&r"(p),       \
          [w] "=&r"(w)                                                                                                \
        /* the local copy's fields as memory operands; the asm also writes p, q, o, o0, nb and npair ("memory") */  \
        : [mp] "m"(m.p), [mq] "m"(m.q), [mo] "m"(m.o), [mo0] "m"(m.o0), [mnb] "m"(m.nb), [mnpair] "m"(m.npair),      \
          [mow] "m"(m.ow), [mwrot] "m"(m.wrot), [mcs] "m"(m.cs), [mco] "m"(m.co), [mlo] "m"(m.lo4),                   \
          [mhi] "m"(m.hi4)                                                                                            \
        : "cc", "memory");                                                                                            \
}

static void __attribute__((noinline)) dw16_row_s1(dw16_args *args) DW16_ROW_BODY(DW16_S1, DW16_T1, DW16_UGO, DW16_UBLK, 48)
static void __attribute__((noinline)) dw16_row_s2(dw16_args *args) DW16_ROW_BODY(DW16_S2, DW16_T2, "", "", 96)
#else
static void dw16_row_any(dw16_args *args, int32_t stride)
{
    dw16_args m = *args;
    for (; m.npair > 0; m.npair--, m.p += m.cs, m.q += DW16_PAIR_WORDS, m.o0 += 2) {
        const uint32_t *w = (const uint32_t *)(const void *)((const int8_t *)m.q + m.wrot);
        for (int32_t e = 0; e < 2; e++) {
            const dw_rq *q = (const dw_rq *)(const void *)(m.q + 4 * e);
            for (int32_t x = 0; x < m.ow; x += 4) {
                /* word (k, slot) of channel e: s[6 k + 2 slot] */
                const uint32_t *s = (const uint32_t *)(const void *)(m.p + 24 * stride * (x / 2) + 4 * e);
                int32_t a[4] = {0, 0, 0, 0};
                for (int32_t sl = 0; sl < 3; sl++) {
                    const uint32_t Wp = w[4 * sl + 2 * e], Vp = w[4 * sl + 2 * e + 1];
                    for (int32_t i = 0; i < 4; i++) {
                        if (stride == 1) { /* pixel i: halfwords i, i + 1, i + 2 of the slot row */
                            int32_t v[3];
                            for (int32_t t = 0; t < 3; t++) {
                                v[t] = nn_lo16(s[6 * ((i + t) / 2) + 2 * sl] >> (16 * ((i + t) & 1)));
                            }
                            a[i] = (int32_t)((uint32_t)a[i] + (uint32_t)(v[0] * nn_lo16(Wp)) +
                                             (uint32_t)(v[1] * nn_hi16(Wp)) + (uint32_t)(v[2] * nn_hi16(Vp)));
                        } else {
                            a[i] = nn_smlad(s[6 * i + 2 * sl], Wp, a[i]);
                            a[i] = nn_smlabb(s[6 * (i + 1) + 2 * sl], Vp, a[i]);
                        }
                    }
                }
                for (int32_t i = 0; i < 4 && x + i < m.ow; i++) {
                    m.o0[(x + i) * m.co + e] = (int8_t)dw_clamp8(dw_rq2_one(a[i], q), m.lo4, m.hi4);
                }
            }
        }
    }
}
static void dw16_row_s1(dw16_args *args) { dw16_row_any(args, 1); }
static void dw16_row_s2(dw16_args *args) { dw16_row_any(args, 2); }
#endif

/* The whole layer on the int16 path: the ring cleared once (the words no pixel of a row reaches stay 0), input
 * row y in ring slot y mod 3 while the next output rows need it (with vertical dilation every row reloaded into
 * slot ky, rotation 0). */
static void dw16_run(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const int8_t *filter,
                     const int32_t *bias, const int32_t *mult, const int32_t *shift, const nn_dims *out_d, int8_t *out,
                     int8_t *scratch)
{
    const int32_t C = in_d->c, H = in_d->h, W = in_d->w, OH = out_d->h, OW = out_d->w;
    const int32_t S = dw16_span(p->stride_w, OW);
    uint32_t *prm = (uint32_t *)(void *)scratch;
    int8_t *ring = scratch + 2 * DW16_PAIR_WORDS * C;
    dw16_setup(p, filter, bias, mult, shift, C, prm);
    memset(ring, 0, (size_t)(6 * C * S));
    for (int32_t b = 0; b < out_d->n; b++) {
        const int8_t *in_b = in + b * H * W * C;
        int8_t *out_b = out + b * OH * OW * C;
        int32_t loaded = -0x7FFFFFFF;
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            int32_t rot = 0;
            for (int32_t ky = 0; ky < 3; ky++) {
                const int32_t y = y0 + ky * p->dil_h;
                const int32_t slot = p->dil_h == 1 ? (int32_t)((uint32_t)(y + 0x40000000) % 3u) : ky;
                if (ky == 0) {
                    rot = slot;
                }
                if (p->dil_h == 1 && y <= loaded && y > loaded - 3) {
                    continue;
                }
                dw16_load_row(in_b + (y >= 0 && y < H ? y : 0) * W * C, y >= 0 && y < H, W, C, p->pad_w, S,
                              p->input_offset, ring + 8 * slot);
            }
            loaded = p->dil_h == 1 ? y0 + 2 : -0x7FFFFFFF;
            int8_t *o = out_b + oy * OW * C;
            dw16_args a = {ring, prm, o, o, OW, C / 2, OW, 32 + 16 * ((3 - rot) % 3), 12 * S, C,
                           (uint8_t)p->act_min * 0x01010101u, (uint8_t)p->act_max * 0x01010101u};
            (p->stride_w == 2 ? dw16_row_s2 : dw16_row_s1)(&a);
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

size_t depthwise_conv2d_s8_simd_scratch_bytes(const nn_conv_params *p, const nn_dims *f_d, const nn_dims *out_d)
{
    const size_t c = (size_t)out_d->c;
    const size_t ring = (size_t)f_d->h * (size_t)span_w(p, f_d, out_d) * c;
    /* the kh ring row offsets, requantization constants (16 bytes per channel), expanded weights (2 bytes
     * per tap and channel, channels rounded up to 4), the ring; or the int16 path's, if larger */
    const size_t bytes = 16u * c + 4u * (size_t)f_d->h +
                         2u * (size_t)f_d->h * (size_t)f_d->w * ((c + 3u) & ~(size_t)3u) + ((ring + 3u) & ~(size_t)3u);
    const size_t b16 = dw16_shape(p, f_d, out_d->c) ? dw16_scratch_bytes(p, out_d) : 0;
    return b16 > bytes ? b16 : bytes;
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
    /* the int16 3x3 path: its own scratch layout */
    if (fast && dm == 1 && dw16_shape(p, f_d, CO) && dw_blk_ok(bias, CO)) {
        dw16_run(p, in_d, in, filter, bias, mult, shift, out_d, out, scratch);
        return;
    }
    dw_setup(p, filter, bias, mult, shift, CO, taps, rq, wx);
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
