/*
 * CONV_2D, int8, Armv7E-M SIMD.
 *
 * im2col: output pixels are expanded into int16 columns (input offset added by SXTAB16, each group of 4 taps
 * reordered x0,x2,x1,x3 as it gives them), several pixels' columns interleaved word by word so one pointer walks
 * them all. Padding is handled while filling the columns (a tap outside the input is a zero segment), never
 * in the dot products.
 *
 * Four pixel path: the weights come as int16 pairs in the very order the dot products read them (laid out
 * by the plan compiler, plan filter layout 1; see lower/conv.py pair_filter), so a weight costs a plain word
 * load and no SXTB16. Every pair of output channels is a 2x4 block of (channel, pixel) dot products with
 * SMLAD in 8 registers (dot_2x4: 16 cycles per 16 MACs on the M4), each weight word used against four
 * pixels, and the four pixels are requantized per channel with its constants loaded once; a last pass of 1 or 2
 * pixels computes only two (dot_2x2). A 1x1 stride 1 convolution without padding takes its columns straight
 * from the contiguous inputs of four pixels (fill_pointwise).
 * Input channels not a multiple of 4 (the first convolution: 1 or 3 channels, "row mode"): a kernel row's
 * kw x ic input bytes are contiguous, so the columns are built row by row, each row padded to a multiple of
 * 4 bytes, and the weights are repacked per call into the pair layout with the same zero padding; a 3x3x3
 * window instead takes its 27 taps back to back (28 with one pad, not 36: fill_packed333).
 * Row mode and padded convolutions without horizontal dilation copy each input row once into a small ring,
 * padded with the input zero point (0 after the offset), so every pixel's column is filled as an interior one.
 *
 * Pixel pair path (plain OHWI weights: a plan whose paired filters would not fit; dilated rows or very long
 * kernel rows with ic % 4 != 0): each pair of output channels is a 2x2 block of dot products, SXTB16 of 4
 * weight bytes per group (dot_pairs: 20 cycles per 16 MACs).
 *
 * The requantization uses constants derived once per call. Layers of the four pixel path whose sums stay within
 * 2^30 and shifts within [1, 22] take one SMMLAR per output (nn_quant.h nn_rq_mm_apply, requant4_mm); the others
 * the two roundings of the reference fused into one 64-bit rounding (conv_rq, requant4_full), exact for any
 * int32 sum; both drop their correction for negative sums when the output zero point is -128 (the saturation
 * gives -128 either way). All int32 sums wrap exactly as the reference's, so any int32 bias is handled as the
 * reference does. The pixel pair path requantizes in C.
 */
#include <string.h>

#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

/* Row mode: input channels not a multiple of 4, rows of kernel taps contiguous in the input, a kernel row of at
 * most NN_CONV_ROW_GROUPS_MAX groups of 4 taps (border rows are assembled on the stack). */
#define NN_CONV_ROW_GROUPS_MAX 64
static inline int row_mode(const nn_conv_params *p, const nn_dims *f_d)
{
    return (f_d->c & 3) != 0 && p->dil_w == 1 && f_d->w * f_d->c <= 4 * NN_CONV_ROW_GROUPS_MAX;
}
/* Bytes of one kernel row in row mode (kw x ic rounded up to a multiple of 4). */
static inline int32_t row_bytes(const nn_dims *f_d) { return (f_d->w * f_d->c + 3) & ~3; }
/* Packed rows: the 3x3x3 first convolution (row mode) takes its 27 taps back to back, one zero-weight pad at the
 * end (28 taps, not 3 rows x 12 = 36; fill_packed333). */
static inline int32_t packed_taps(const nn_dims *f_d) { return (f_d->h * f_d->w * f_d->c + 3) & ~3; }
static inline int packed_rows(const nn_conv_params *p, const nn_dims *f_d)
{
    return row_mode(p, f_d) && f_d->h == 3 && f_d->w == 3 && f_d->c == 3;
}
/* Taps per column as the scratch holds them: row mode kh x row_bytes, else kh x kw x ic rounded up. */
static inline int32_t k_alloc(const nn_conv_params *p, const nn_dims *f_d)
{
    return row_mode(p, f_d) ? f_d->h * row_bytes(f_d) : (f_d->h * f_d->w * f_d->c + 3) & ~3;
}
/* Taps per column as the dot products see them: packed rows fewer than the scratch holds. */
static inline int32_t k_cols(const nn_conv_params *p, const nn_dims *f_d)
{
    return packed_rows(p, f_d) ? packed_taps(f_d) : k_alloc(p, f_d);
}


/*
 * Column layouts: a group of 4 taps of one pixel is two words, A = (x0, x2) and B = (x1, x3) as int16 (what
 * SXTB16 gives); group g's A is at word gs * g of the pixel's base, B bo words after it. The pixel pair layout:
 * gs 4, bo 1 (pixel h's base: word 2h); the four pixel layout: gs 8, bo 4 (pixel p's base: word p).
 */
/* n4 groups of 4 input bytes at src into one pixel's words. */
static inline void expand_groups(const int8_t *src, int32_t n4, uint32_t off2, uint32_t *dst, int32_t gs, int32_t bo)
{
    for (; n4 >= 2; n4 -= 2, src += 8, dst += 2 * gs) {
        const uint32_t v0 = nn_read32(src), v1 = nn_read32(src + 4);
        dst[0] = nn_sxtab16(off2, v0);
        dst[bo] = nn_sxtab16_ror8(off2, v0);
        dst[gs] = nn_sxtab16(off2, v1);
        dst[gs + bo] = nn_sxtab16_ror8(off2, v1);
    }
    if (n4) {
        const uint32_t v = nn_read32(src);
        dst[0] = nn_sxtab16(off2, v);
        dst[bo] = nn_sxtab16_ror8(off2, v);
    }
}

static inline void zero_groups(int32_t n4, uint32_t *dst, int32_t gs, int32_t bo)
{
    for (; n4 > 0; n4--, dst += gs) {
        dst[0] = 0;
        dst[bo] = 0;
    }
}

/* One element (index i of a column) of a pixel's words: group i / 4, word A for taps 0, 2, B for 1, 3. */
static inline void put_elem(uint32_t *words, int32_t i, int16_t v, int32_t gs, int32_t bo)
{
    ((int16_t *)(void *)(words + gs * (i >> 2) + ((i & 1) ? bo : 0)))[(i >> 1) & 1] = v;
}

/* The column of an output pixel whose window lies wholly inside the input, without horizontal dilation:
 * each kernel row is one run of kw x ic input bytes (row mode: rounded up to a multiple of 4). */
static inline void fill_interior(const int8_t *src, int32_t kh, int32_t row_groups, int32_t row_step, uint32_t off2,
                                 uint32_t *words, int32_t gs, int32_t bo)
{
    for (int32_t ky = 0; ky < kh; ky++, src += row_step, words += gs * row_groups) {
        expand_groups(src, row_groups, off2, words, gs, bo);
    }
}

/* The column of the output pixel whose window starts at (y0, x0), into the pixel's words at `words`. */
static NN_COLD void fill_column(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in_b, const nn_dims *f_d,
                        int32_t y0, int32_t x0, uint32_t *words, int32_t gs, int32_t bo)
{
    const int32_t ic = in_d->c, kh = f_d->h, kw = f_d->w;
    const uint32_t off2 = nn_pack16(p->input_offset, p->input_offset);
    const int16_t off = (int16_t)p->input_offset;
    if (row_mode(p, f_d)) {
        const int32_t rb = row_bytes(f_d), seg = kw * ic;
        const int x_inside = x0 >= 0 && x0 + kw <= in_d->w;
        for (int32_t ky = 0; ky < kh; ky++, words += gs * (rb >> 2)) {
            const int32_t y = y0 + ky * p->dil_h;
            if (y < 0 || y >= in_d->h) {
                zero_groups(rb >> 2, words, gs, bo);
            } else if (x_inside) { /* the row's bytes and up to 3 more (against zero weights) */
                expand_groups(in_b + (y * in_d->w + x0) * ic, rb >> 2, off2, words, gs, bo);
            } else { /* the row's bytes with the zero point (an input of 0 after the offset) outside the input */
                const int8_t *row = in_b + y * in_d->w * ic;
                const int8_t zp = (int8_t)-off;
                int8_t tmp[4 * NN_CONV_ROW_GROUPS_MAX];
                for (int32_t kx = 0, i = 0; kx < kw; kx++) {
                    const int32_t x = x0 + kx;
                    const int inside = x >= 0 && x < in_d->w;
                    for (int32_t ch = 0; ch < ic; ch++, i++) {
                        tmp[i] = inside ? row[x * ic + ch] : zp;
                    }
                }
                for (int32_t i = seg; i < rb; i++) {
                    tmp[i] = 0;
                }
                expand_groups(tmp, rb >> 2, off2, words, gs, bo);
            }
        }
        return;
    }
    const int32_t K = kh * kw * ic;
    const int32_t K4 = (K + 3) & ~3;
    if (K4 != K) { /* the last group's padding */
        zero_groups(1, words + gs * ((K4 >> 2) - 1), gs, bo);
    }
    int32_t k = 0;
    for (int32_t ky = 0; ky < kh; ky++) {
        const int32_t y = y0 + ky * p->dil_h;
        for (int32_t kx = 0; kx < kw; kx++, k += ic) {
            const int32_t x = x0 + kx * p->dil_w;
            const int inside = y >= 0 && y < in_d->h && x >= 0 && x < in_d->w;
            const int8_t *src = inside ? in_b + (y * in_d->w + x) * ic : NULL;
            if ((ic & 3) == 0) { /* k is a multiple of 4: group k / 4 */
                if (inside) {
                    expand_groups(src, ic >> 2, off2, words + gs * (k >> 2), gs, bo);
                } else {
                    zero_groups(ic >> 2, words + gs * (k >> 2), gs, bo);
                }
            } else { /* dilated columns with ic % 4 != 0 */
                for (int32_t c = 0; c < ic; c++) {
                    put_elem(words, k + c, inside ? (int16_t)(src[c] + off) : 0, gs, bo);
                }
            }
        }
    }
}

/* The weight group of 4 taps at k: a plain word inside the filter row, the last partial group byte-wise
 * (zeros past K), so no read goes past the end of the filter. */
static inline uint32_t tail_word(const int8_t *w, int32_t k, int32_t K)
{
    uint32_t v = 0;
    for (int32_t i = 0; i < 4 && k + i < K; i++) {
        v |= (uint32_t)(uint8_t)w[k + i] << (8 * i);
    }
    return v;
}

/*
 * The raw dot products of every pair of output channels with the two columns of `pair`: for pair j
 * (filters 2j and 2j + 1), acc[4j .. 4j + 3] = (2j, pixel 0), (2j, pixel 1), (2j + 1, pixel 0), (2j + 1, pixel 1),
 * over the n4 >= 1 full groups of 4 taps. On Armv7E-M one assembly block does all pairs: the inner loop
 * holds 4 accumulators, the two filter pointers, the column pointer, the count, 4 column words and 2 weight
 * words (14 registers) and costs 20 cycles per 16 MACs on the M4 (5 pipelined loads, 4 SXTB16, 8 SMLAD,
 * 1 load), unrolled to 2 groups (then one); the pair loop around it keeps its counters on the stack (the
 * fallback of plans whose paired filters do not fit: kept short).
 * Elsewhere the same arithmetic in C.
 */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One group of 4 taps at column byte offset C and weight byte offset W: the five loads use immediate offsets
 * (no writeback) so they pipeline (one cycle each after the first on the M4). */
#define MAC2X2_GROUP(C, W)                                                                                        \
    "ldr %[t0], [%[cp], #" #C "]\n"                                                                             \
    "ldr %[t1], [%[cp], #" #C "+4]\n"                                                                           \
    "ldr %[t2], [%[cp], #" #C "+8]\n"                                                                           \
    "ldr %[t3], [%[cp], #" #C "+12]\n"                                                                          \
    "ldr %[wa], [%[wp], #" #W "]\n"                                                                             \
    "sxtb16 %[wb], %[wa]\n"                                                                                    \
    "sxtb16 %[wa], %[wa], ror #8\n"                                                                            \
    "smlad %[a00], %[wb], %[t0], %[a00]\n"                                                                     \
    "smlad %[a00], %[wa], %[t1], %[a00]\n"                                                                     \
    "smlad %[a01], %[wb], %[t2], %[a01]\n"                                                                     \
    "smlad %[a01], %[wa], %[t3], %[a01]\n"                                                                     \
    "ldr %[wa], [%[wq], #" #W "]\n"                                                                             \
    "sxtb16 %[wb], %[wa]\n"                                                                                    \
    "sxtb16 %[wa], %[wa], ror #8\n"                                                                            \
    "smlad %[a10], %[wb], %[t0], %[a10]\n"                                                                     \
    "smlad %[a10], %[wa], %[t1], %[a10]\n"                                                                     \
    "smlad %[a11], %[wb], %[t2], %[a11]\n"                                                                     \
    "smlad %[a11], %[wa], %[t3], %[a11]\n"

static void __attribute__((noinline)) dot_pairs(const int8_t *filter, int32_t K, const uint32_t *pair, int32_t n4,
                                                int32_t pairs, int32_t *acc)
{
    const int8_t *wp = filter, *wq = filter + K; /* the pair's two filter rows */
    const uint32_t *cp = pair;
    int32_t n = 0;
    int32_t a00, a01, a10, a11;
    uint32_t t0, t1, t2, t3, wa, wb;
    struct {
        const uint32_t *pair;
        int32_t *acc;
        int32_t pairs, n8, rest, step, k;
    } m = {pair, acc, pairs, n4 >> 1, n4 & 1, 2 * K - 4 * n4, K};
    __asm__ volatile(
        "2:\n"
        "mov %[a00], #0\n"
        "mov %[a01], #0\n"
        "mov %[a10], #0\n"
        "mov %[a11], #0\n"
        "ldr %[cp], %[mpair]\n"
        "ldr %[n], %[mn8]\n"
        "cmp %[n], #0\n"
        "beq 3f\n"
        "1:\n" /* two groups (8 taps) per iteration: the path of plans in TFLite's filter layout only */
        MAC2X2_GROUP(0, 0) MAC2X2_GROUP(16, 4)
        "add %[cp], %[cp], #32\n"
        "add %[wp], %[wp], #8\n"
        "add %[wq], %[wq], #8\n"
        "subs %[n], %[n], #1\n"
        "bne 1b\n"
        "3:\n"
        "ldr %[n], %[mrest]\n"
        "cmp %[n], #0\n"
        "beq 5f\n"
        "4:\n" /* the remaining group */
        MAC2X2_GROUP(0, 0)
        "add %[cp], %[cp], #16\n"
        "add %[wp], %[wp], #4\n"
        "add %[wq], %[wq], #4\n"
        "subs %[n], %[n], #1\n"
        "bne 4b\n"
        "5:\n"
        "ldr %[t0], %[macc]\n"
        "str %[a00], [%[t0]]\n"
        "str %[a01], [%[t0], #4]\n"
        "str %[a10], [%[t0], #8]\n"
        "str %[a11], [%[t0], #12]\n"
        "add %[t0], %[t0], #16\n"
        "str %[t0], %[macc]\n"
        "ldr %[t1], %[mstep]\n"
        "ldr %[t2], %[mk]\n"
        "add %[wp], %[wp], %[t1]\n"
        "add %[wq], %[wp], %[t2]\n"
        "ldr %[t0], %[mpairs]\n"
        "subs %[t0], %[t0], #1\n"
        "str %[t0], %[mpairs]\n"
        "bne 2b\n"
        : [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11), [wp] "+r"(wp), [wq] "+r"(wq),
          [cp] "+r"(cp), [n] "+r"(n), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3),
          [wa] "=&r"(wa), [wb] "=&r"(wb), [macc] "+m"(m.acc), [mpairs] "+m"(m.pairs)
        : [mpair] "m"(m.pair), [mn8] "m"(m.n8), [mrest] "m"(m.rest), [mstep] "m"(m.step),
          [mk] "m"(m.k)
        : "cc", "memory");
}
#else
static void dot_pairs(const int8_t *filter, int32_t K, const uint32_t *pair, int32_t n4, int32_t pairs,
                      int32_t *acc)
{
    for (int32_t j = 0; j < pairs; j++, acc += 4) {
        const int8_t *w0 = filter + 2 * j * K, *w1 = w0 + K;
        const uint32_t *cp = pair;
        int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
        for (int32_t g = 0; g < n4; g++, cp += 4) {
            const uint32_t wa = nn_read32(w0 + 4 * g), wb = nn_read32(w1 + 4 * g);
            const uint32_t wae = nn_sxtb16(wa), wao = nn_sxtb16_ror8(wa);
            const uint32_t wbe = nn_sxtb16(wb), wbo = nn_sxtb16_ror8(wb);
            a00 = nn_smlad(wao, cp[1], nn_smlad(wae, cp[0], a00));
            a01 = nn_smlad(wao, cp[3], nn_smlad(wae, cp[2], a01));
            a10 = nn_smlad(wbo, cp[1], nn_smlad(wbe, cp[0], a10));
            a11 = nn_smlad(wbo, cp[3], nn_smlad(wbe, cp[2], a11));
        }
        acc[0] = a00;
        acc[1] = a01;
        acc[2] = a10;
        acc[3] = a11;
    }
}
#endif

/* The last, partial group of 4 taps (K % 4 != 0) of a filter row, and of one output channel x two pixels. */
static inline void dot_tail(const int8_t *w, int32_t k, int32_t K, const uint32_t *cp, int32_t *a0, int32_t *a1)
{
    const uint32_t v = tail_word(w, k, K);
    const uint32_t we = nn_sxtb16(v), wo = nn_sxtb16_ror8(v);
    *a0 = nn_smlad(wo, cp[1], nn_smlad(we, cp[0], *a0));
    *a1 = nn_smlad(wo, cp[3], nn_smlad(we, cp[2], *a1));
}

static inline void dot_1x2(const int8_t *w0, const uint32_t *cp, int32_t K, int32_t acc[2])
{
    int32_t a0 = acc[0], a1 = acc[1];
    const int32_t K4 = K & ~3;
    int32_t k = 0;
    for (; k < K4; k += 4, cp += 4) {
        const uint32_t w = nn_read32(w0 + k);
        const uint32_t we = nn_sxtb16(w), wo = nn_sxtb16_ror8(w);
        a0 = nn_smlad(wo, cp[1], nn_smlad(we, cp[0], a0));
        a1 = nn_smlad(wo, cp[3], nn_smlad(we, cp[2], a1));
    }
    if (k < K) {
        dot_tail(w0, k, K, cp, &a0, &a1);
    }
    acc[0] = a0;
    acc[1] = a1;
}

/*
 * One output channel's constants for the fused requantization (nn_rq_apply) of channels with right in [2, 31]
 * and a multiplier >= 0 (every convolution whose real scale is below 1/4, however small): the 64-bit rounding
 * constant 2^30 + 2^(30+right), less 2^31 for a negative accumulator, has the low word 0x40000000 ^ (sign << 31)
 * and the high word 2^(right-2) + sign, so out = (hi:lo + x * m) >> (31 + right) = high word >> (right - 1);
 * the high word stays within int32 (|x * m| < 2^62) for every right up to 31. The output zero point is folded
 * into the high word when every channel allows it (conv_rq_init), else added after the shift. A zero multiplier (a real scale below 2^-32: the plan's shift 0) gives 0 for every x, as
 * right = 2 does with m = 0.
 */
typedef struct {
    int32_t m, khi, rsh, bias; /* the requantizations' loads step the pointer on m (offset 0); bias at 12 */
} conv_rq;

/* A channel's right shift in the fused form (a zero multiplier takes 2), or -1 when it needs the two-rounding
 * form. */
static inline int32_t conv_rq_right(int32_t m, int32_t shift)
{
    const int32_t right = m == 0 ? 2 : -shift;
    return right >= 2 && right <= 31 && m >= 0 ? right : -1;
}

/* The channel's constants (right from conv_rq_right, >= 2); with `fold` (every channel of the layer has
 * right <= 22: the folded high word stays within int32 for |zp| <= 255) the output zero point zp * 2^(right-1)
 * is folded into the high word, an exact multiple of the final divisor 2^(31+right). */
static void conv_rq_init(conv_rq *q, int32_t bias, int32_t m, int32_t right, int fold, int32_t out_off)
{
    q->bias = bias;
    q->m = m;
    q->rsh = right - 1;
    q->khi = (int32_t)((1u << (right - 2)) + (fold ? (uint32_t)out_off << (right - 1) : 0u));
}

/* Requantized value (plus the output zero point where it is folded). */
static inline int32_t conv_rq_apply(int32_t acc, const conv_rq *q)
{
    const int32_t x = (int32_t)((uint32_t)acc + (uint32_t)q->bias);
    const int32_t s = x >> 31;
    const uint32_t lo = 0x40000000u ^ ((uint32_t)s << 31);
    const int32_t hi = (int32_t)((uint32_t)q->khi + (uint32_t)s);
    const int64_t p = (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo) + (int64_t)x * (int64_t)q->m;
    return (int32_t)(p >> 32) >> q->rsh;
}

/* The four pixel path's shorter form (nn_quant.h nn_rq_mm_apply), for layers whose every channel has
 * nn_rq_mm_ok constants and sums within +-2^30 (|bias| + K x 255 x 128 < 2^30): conv_rq's khi holds k, rsh r. */
static inline int conv_mm_ok(int32_t m, int32_t shift, int32_t bias, int32_t room)
{
    const uint32_t b = bias < 0 ? 0u - (uint32_t)bias : (uint32_t)bias;
    return nn_rq_mm_ok(m, shift) && b < (uint32_t)room;
}
/* The bound on |bias| of the shorter form: 2^30 - taps x 255 x 128 (0 when there is none). */
static inline int32_t conv_mm_room(int32_t taps)
{
    const int64_t room = ((int64_t)1 << 30) - (int64_t)taps * 255 * 128;
    return room > 0 ? (int32_t)room : 0;
}

static void conv_rq_init_mm(conv_rq *q, int32_t bias, int32_t m, int32_t shift, int32_t out_off)
{
    q->bias = bias;
    q->m = m;
    q->rsh = nn_rq_mm_shift(m, shift);
    q->khi = nn_rq_mm_k(q->rsh, out_off);
}

/* The requantized outputs of the pixel pair: channel c's accumulators at acc[2c] (pixel 0), acc[2c + 1];
 * o1 may alias a dummy buffer (a lone last pixel); zp: the output zero point where it is not folded (else 0).
 * In C: the pixel pair path is the fallback of plans whose paired filters do not fit. */
static __attribute__((noinline)) void requant_pair(const int32_t *acc, const conv_rq *rq, int32_t oc_n, int32_t zp, int32_t lo, int32_t hi,
                         int8_t *o0, int8_t *o1)
{
    for (int32_t c = 0; c < oc_n; c++, acc += 2) {
        o0[c] = (int8_t)nn_clamp_i32(conv_rq_apply(acc[0], &rq[c]) + zp, lo, hi);
        o1[c] = (int8_t)nn_clamp_i32(conv_rq_apply(acc[1], &rq[c]) + zp, lo, hi);
    }
}

static NN_COLD void requant_pair_exact(const int32_t *acc, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                               int32_t oc_n, int32_t out_off, int32_t lo, int32_t hi, int8_t *o0, int8_t *o1)
{
    for (int32_t c = 0; c < oc_n; c++, acc += 2) {
        const int32_t b = bias ? bias[c] : 0;
        o0[c] = (int8_t)nn_clamp_i32(nn_requantize((int32_t)((uint32_t)acc[0] + (uint32_t)b), mult[c], shift[c]) +
                                         out_off, lo, hi);
        o1[c] = (int8_t)nn_clamp_i32(nn_requantize((int32_t)((uint32_t)acc[1] + (uint32_t)b), mult[c], shift[c]) +
                                         out_off, lo, hi);
    }
}

/*
 * The four pixel path: weights as int16 pairs (filter_pairs: laid out by the plan compiler; row mode: repacked
 * per call), for channel pair j and word step k (taps 4g .. 4g + 3 give steps 2g: (w0, w2) and 2g + 1: (w1, w3))
 * the even channel's word, then the odd one's (a zero channel pads an odd count): 8 bytes per step, the pairs
 * one after another. The columns of four pixels interleaved word by word (layout gs 8, bo 4). Each channel pair
 * is a 2x4 block of (channel, pixel) dot products started from the channels' biases; acc[4c + p] = channel c,
 * pixel p.
 */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(NN_CORE_M7)
/* Cortex-M7 (dual issue): each LDR placed next to an SMLAD that does not read it, so the two issue together, and
 * no instruction reads the load just before it; a word step is 8 cycles once the next step's first weight and
 * column word are loaded during its last multiplies (MAC2X4_M7_NEXT). The words are read strictly in address
 * order, so every load is pre-indexed with writeback ([p, #4]!) and each pointer holds the last word it loaded.
 * The last step of a group loads nothing ahead (nothing is read past the data) and holds the group's end test,
 * END the address cp has after the group. */
#define MAC2X4_M7_FIRST                                                                                           \
    "ldr %[w0], [%[wp], #4]!\n"                                                                               \
    "ldr %[c0], [%[cp], #4]!\n"
#define MAC2X4_M7_HEAD                                                                                            \
    "ldr %[w1], [%[wp], #4]!\n"                                                                               \
    "smlad %[a00], %[w0], %[c0], %[a00]\n"                                                                     \
    "ldr %[c1], [%[cp], #4]!\n"                                                                               \
    "smlad %[a10], %[w1], %[c0], %[a10]\n"                                                                     \
    "ldr %[c0], [%[cp], #4]!\n"                                                                               \
    "smlad %[a01], %[w0], %[c1], %[a01]\n"                                                                     \
    "smlad %[a11], %[w1], %[c1], %[a11]\n"                                                                     \
    "ldr %[c1], [%[cp], #4]!\n"                                                                               \
    "smlad %[a02], %[w0], %[c0], %[a02]\n"
#define MAC2X4_M7_NEXT                                                                                            \
    MAC2X4_M7_HEAD                                                                                            \
    "smlad %[a12], %[w1], %[c0], %[a12]\n"                                                                     \
    "ldr %[c0], [%[cp], #4]!\n"                                                                               \
    "smlad %[a03], %[w0], %[c1], %[a03]\n"                                                                     \
    "ldr %[w0], [%[wp], #4]!\n"                                                                               \
    "smlad %[a13], %[w1], %[c1], %[a13]\n"
#define MAC2X4_M7_LAST(END)                                                                                       \
    MAC2X4_M7_HEAD                                                                                            \
    "smlad %[a03], %[w0], %[c1], %[a03]\n"                                                                     \
    "ldr %[w0], %[" END "]\n"                                                                                 \
    "smlad %[a12], %[w1], %[c0], %[a12]\n"                                                                     \
    "cmp %[cp], %[w0]\n"                                                                                      \
    "smlad %[a13], %[w1], %[c1], %[a13]\n"

static void __attribute__((noinline)) dot_2x4(const uint32_t *w, const uint32_t *cols, int32_t nw, int32_t pairs,
                                              const conv_rq *rq, int32_t *acc)
{
    /* the pointers start one word before their data (pre-indexed loads), so do the end addresses */
    uintptr_t wp = (uintptr_t)w - 4, cp;
    int32_t a00, a01, a02, a03, a10, a11, a12, a13;
    uint32_t w0, w1, c0, c1;
    struct {
        uintptr_t cols, end8, end;
        const conv_rq *rq;
        int32_t *acc;
        int32_t pairs;
    } m = {(uintptr_t)cols - 4, (uintptr_t)cols - 4 + 16 * (uint32_t)(nw & ~7), (uintptr_t)cols - 4 + 16 * (uint32_t)nw,
           rq, acc, pairs};
    __asm__ volatile(
        "2:\n"
        "ldr %[c0], %[mrq]\n" /* the pair's biases start the accumulators */
        "ldr %[cp], %[mcols]\n"
        "ldr %[w0], [%[c0], #12]\n"
        "ldr %[w1], [%[c0], #28]\n"
        "mov %[a00], %[w0]\n"
        "add %[c0], %[c0], #32\n"
        "mov %[a01], %[w0]\n"
        "str %[c0], %[mrq]\n"
        "mov %[a02], %[w0]\n"
        "mov %[a03], %[w0]\n"
        "mov %[a10], %[w1]\n"
        "mov %[a11], %[w1]\n"
        "ldr %[c0], %[mend8]\n"
        "mov %[a12], %[w1]\n"
        "mov %[a13], %[w1]\n"
        "cmp %[cp], %[c0]\n"
        "beq 3f\n"
        "1:\n" /* eight word steps (16 taps) per iteration */
        MAC2X4_M7_FIRST MAC2X4_M7_NEXT MAC2X4_M7_NEXT MAC2X4_M7_NEXT MAC2X4_M7_NEXT MAC2X4_M7_NEXT MAC2X4_M7_NEXT
        MAC2X4_M7_NEXT MAC2X4_M7_LAST("mend8")
        "bne 1b\n"
        "3:\n" /* the remaining 0 to 6 word steps, two at a time */
        "ldr %[c0], %[mend]\n"
        "cmp %[cp], %[c0]\n"
        "beq 5f\n"
        "4:\n"
        MAC2X4_M7_FIRST MAC2X4_M7_NEXT MAC2X4_M7_LAST("mend")
        "bne 4b\n"
        "5:\n" /* the sums out; the counter and the pointer step beside the stores (w0, w1, c1 are free) */
        "ldr %[c0], %[macc]\n"
        "ldr %[c1], %[mpairs]\n"
        "str %[a00], [%[c0]]\n"
        "subs %[c1], %[c1], #1\n"
        "str %[a01], [%[c0], #4]\n"
        "add %[w0], %[c0], #32\n"
        "str %[a02], [%[c0], #8]\n"
        "str %[a03], [%[c0], #12]\n"
        "str %[a10], [%[c0], #16]\n"
        "str %[a11], [%[c0], #20]\n"
        "str %[a12], [%[c0], #24]\n"
        "str %[a13], [%[c0], #28]\n"
        "str %[w0], %[macc]\n"
        "str %[c1], %[mpairs]\n"
        "bne 2b\n"
        : [a00] "=&r"(a00), [a01] "=&r"(a01), [a02] "=&r"(a02), [a03] "=&r"(a03), [a10] "=&r"(a10),
          [a11] "=&r"(a11), [a12] "=&r"(a12), [a13] "=&r"(a13), [wp] "+r"(wp), [cp] "=&r"(cp), [w0] "=&r"(w0),
          [w1] "=&r"(w1), [c0] "=&r"(c0), [c1] "=&r"(c1), [mrq] "+m"(m.rq), [macc] "+m"(m.acc),
          [mpairs] "+m"(m.pairs)
        : [mcols] "m"(m.cols), [mend8] "m"(m.end8), [mend] "m"(m.end)
        : "cc", "memory");
}
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One word step: 6 loads (4 pipelined, then 2), 8 SMLAD, 16 MACs in 16 cycles on the M4; the last load of each
 * group steps its pointer (no load's address depends on a loaded register, so they pipeline and no add is needed).
 * 14 registers (8 accumulators, 2 pointers, 4 operands), so the counters live in memory. */
#define MAC2X4_STEP                                                                                               \
    "ldr %[c1], [%[cp], #4]\n"                                                                                \
    "ldr %[w1], [%[wp], #4]\n"                                                                                \
    "ldr %[w0], [%[wp]], #8\n"                                                                                \
    "ldr %[c0], [%[cp]], #8\n"                                                                                \
    "smlad %[a00], %[w0], %[c0], %[a00]\n"                                                                     \
    "smlad %[a10], %[w1], %[c0], %[a10]\n"                                                                     \
    "smlad %[a01], %[w0], %[c1], %[a01]\n"                                                                     \
    "smlad %[a11], %[w1], %[c1], %[a11]\n"                                                                     \
    "ldr %[c1], [%[cp], #4]\n"                                                                                \
    "ldr %[c0], [%[cp]], #8\n"                                                                                \
    "smlad %[a02], %[w0], %[c0], %[a02]\n"                                                                     \
    "smlad %[a12], %[w1], %[c0], %[a12]\n"                                                                     \
    "smlad %[a03], %[w0], %[c1], %[a03]\n"                                                                     \
    "smlad %[a13], %[w1], %[c1], %[a13]\n"

static void __attribute__((noinline)) dot_2x4(const uint32_t *w, const uint32_t *cols, int32_t nw, int32_t pairs,
                                              const conv_rq *rq, int32_t *acc)
{
    const uint32_t *wp = w, *cp = cols;
    int32_t a00, a01, a02, a03, a10, a11, a12, a13;
    uint32_t w0, w1, c0, c1;
    /* end8, end: the columns' address after the 8-step part, after all */
    struct {
        const uint32_t *cols, *end8, *end;
        const conv_rq *rq;
        int32_t *acc;
        int32_t pairs;
    } m = {cols, cols + 4 * (nw & ~7), cols + 4 * nw, rq, acc, pairs};
    __asm__ volatile(
        "2:\n"
        "ldr %[c0], %[mrq]\n" /* the pair's biases start the accumulators */
        "ldr %[w0], [%[c0], #12]\n"
        "ldr %[w1], [%[c0], #28]\n"
        "add %[c0], %[c0], #32\n"
        "str %[c0], %[mrq]\n"
        "mov %[a00], %[w0]\n"
        "mov %[a01], %[w0]\n"
        "mov %[a02], %[w0]\n"
        "mov %[a03], %[w0]\n"
        "mov %[a10], %[w1]\n"
        "mov %[a11], %[w1]\n"
        "mov %[a12], %[w1]\n"
        "mov %[a13], %[w1]\n"
        "ldr %[cp], %[mcols]\n"
        "ldr %[c0], %[mend8]\n"
        "cmp %[cp], %[c0]\n"
        "beq 3f\n"
        "1:\n" /* eight word steps (16 taps) per iteration */
        MAC2X4_STEP MAC2X4_STEP MAC2X4_STEP MAC2X4_STEP MAC2X4_STEP MAC2X4_STEP MAC2X4_STEP MAC2X4_STEP
        "ldr %[c0], %[mend8]\n"
        "cmp %[cp], %[c0]\n"
        "bne 1b\n"
        "3:\n" /* the remaining 0 to 6 word steps, two at a time */
        "ldr %[c0], %[mend]\n"
        "cmp %[cp], %[c0]\n"
        "beq 5f\n"
        "4:\n"
        MAC2X4_STEP MAC2X4_STEP
        "ldr %[c0], %[mend]\n"
        "cmp %[cp], %[c0]\n"
        "bne 4b\n"
        "5:\n"
        "ldr %[c0], %[macc]\n"
        "str %[a00], [%[c0]]\n"
        "str %[a01], [%[c0], #4]\n"
        "str %[a02], [%[c0], #8]\n"
        "str %[a03], [%[c0], #12]\n"
        "str %[a10], [%[c0], #16]\n"
        "str %[a11], [%[c0], #20]\n"
        "str %[a12], [%[c0], #24]\n"
        "str %[a13], [%[c0], #28]\n"
        "add %[c0], %[c0], #32\n"
        "str %[c0], %[macc]\n"
        "ldr %[c0], %[mpairs]\n"
        "subs %[c0], %[c0], #1\n"
        "str %[c0], %[mpairs]\n"
        "bne 2b\n"
        : [a00] "=&r"(a00), [a01] "=&r"(a01), [a02] "=&r"(a02), [a03] "=&r"(a03), [a10] "=&r"(a10),
          [a11] "=&r"(a11), [a12] "=&r"(a12), [a13] "=&r"(a13), [wp] "+r"(wp), [cp] "+r"(cp), [w0] "=&r"(w0),
          [w1] "=&r"(w1), [c0] "=&r"(c0), [c1] "=&r"(c1), [mrq] "+m"(m.rq), [macc] "+m"(m.acc),
          [mpairs] "+m"(m.pairs)
        : [mcols] "m"(m.cols), [mend8] "m"(m.end8), [mend] "m"(m.end)
        : "cc", "memory");
}
#else
static void dot_2x4(const uint32_t *w, const uint32_t *cols, int32_t nw, int32_t pairs, const conv_rq *rq,
                    int32_t *acc)
{
    for (int32_t j = 0; j < pairs; j++, acc += 8, rq += 2) {
        int32_t a[8];
        for (int32_t i = 0; i < 4; i++) {
            a[i] = rq[0].bias;
            a[4 + i] = rq[1].bias;
        }
        const uint32_t *cp = cols;
        for (int32_t k = 0; k < nw; k++, w += 2, cp += 4) {
            for (int32_t i = 0; i < 4; i++) {
                a[i] = nn_smlad(w[0], cp[i], a[i]);
                a[4 + i] = nn_smlad(w[1], cp[i], a[4 + i]);
            }
        }
        for (int32_t i = 0; i < 8; i++) {
            acc[i] = a[i];
        }
    }
}
#endif

/* The last pass of a layer whose pixel count leaves 1 or 2 in it: the same sums as dot_2x4 for the first two
 * pixels only (acc[4c + p], p < 2; the others are left as they are, their outputs discarded). */
static __attribute__((noinline)) void dot_2x2(const uint32_t *w, const uint32_t *cols, int32_t nw, int32_t pairs,
                                              const conv_rq *rq, int32_t *acc)
{
    for (int32_t j = 0; j < pairs; j++, acc += 8, rq += 2) {
        int32_t a00 = rq[0].bias, a01 = a00, a10 = rq[1].bias, a11 = a10;
        const uint32_t *cp = cols;
        for (int32_t k = 0; k < nw; k++, w += 2, cp += 4) {
            const uint32_t w0 = w[0], w1 = w[1], c0 = cp[0], c1 = cp[1];
            a00 = nn_smlad(w0, c0, a00);
            a10 = nn_smlad(w1, c0, a10);
            a01 = nn_smlad(w0, c1, a01);
            a11 = nn_smlad(w1, c1, a11);
        }
        acc[0] = a00;
        acc[1] = a01;
        acc[4] = a10;
        acc[5] = a11;
    }
}

/* The requantized outputs of four pixels from accumulators that include the bias: channel c's at acc[4c + p]
 * go to o[p][c]; the unused pixels' o[p] alias a dummy buffer. */
static inline int32_t conv_rq_apply_biased(int32_t x, const conv_rq *q)
{
    conv_rq nb = *q;
    nb.bias = 0;
    return conv_rq_apply(x, &nb);
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* PRE sets lo:s to the rounding constant (less 2^31 for a negative x, see conv_rq). */
#define RQ4_PIXEL(O, PRE, ZP)                                                                                     \
    "ldr %[x], [%[acc]], #4\n"                                                                                \
    PRE                                                                                                       \
    "smlal %[lo], %[s], %[x], %[m]\n"                                                                         \
    "asr %[s], %[s], %[rsh]\n"                                                                                \
    ZP                                                                                                        \
    "ssat %[s], #8, %[s]\n"                                                                                   \
    "strb %[s], [%[" #O "]], #1\n"
#define RQ4_BODY(PRE, ZP, V)                                                                                     \
    "1:\n"                                                                                                    \
    "ldr %[khi], [%[q], #4]\n"                                                                                \
    "ldr %[rsh], [%[q], #8]\n"                                                                                \
    "ldr %[m], [%[q]], #16\n"                                                                                 \
    RQ4_PIXEL(o0, PRE, ZP) RQ4_PIXEL(o1, PRE, ZP) RQ4_PIXEL(o2, PRE, ZP) RQ4_PIXEL(o3, PRE, ZP)               \
    "subs %[n], %[n], #1\n"                                                                                   \
    "bne 1b\n"                                                                                                \
    : [acc] "+r"(acc), [q] "+r"(rq), [n] "+r"(n), [o0] "+r"(o0), [o1] "+r"(o1), [o2] "+r"(o2), [o3] "+r"(o3), \
      [m] "=&r"(m), [khi] "=&r"(khi), [rsh] "=&r"(rsh), [x] "=&r"(x), [s] "=&r"(s), [lo] "=&r"(lo)               \
    : [k] "r"(V)                                                                                              \
    : "cc", "memory"

/* 14 registers; the zero point is added after the shift (conv_setup does not fold it for this path). With an
 * output zero point of -128 (floor) the correction for a negative x is left out: such an x gives <= -128 either way, which the
 * saturation makes -128. */
#define RQ4_SIGNED(LO)                                                                                            \
    "asr %[s], %[x], #31\n"                                                                                   \
    LO                                                                                                        \
    "add %[s], %[khi], %[s]\n"
#define RQ4_FLOOR                                                                                                 \
    "mov %[lo], #0x40000000\n"                                                                                \
    "mov %[s], %[khi]\n"
static void __attribute__((noinline)) requant4_full(const int32_t *acc, const conv_rq *rq, int32_t n, int32_t zp,
                                                    int floor, int8_t *const o[4])
{
    int8_t *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
    uint32_t m, khi, rsh, x, s, lo;
    if (floor) {
        __asm__ volatile(RQ4_BODY(RQ4_FLOOR, "add %[s], %[s], %[k]\n", zp));
    } else {
        __asm__ volatile(RQ4_BODY(RQ4_SIGNED("mov %[lo], #0x40000000\n"
                                             "eor %[lo], %[lo], %[s], lsl #31\n"),
                                  "add %[s], %[s], %[k]\n", zp));
    }
}
#else
static void requant4_full(const int32_t *acc, const conv_rq *rq, int32_t n, int32_t zp, int floor, int8_t *const o[4])
{
    (void)floor;
    for (int32_t c = 0; c < n; c++, acc += 4) {
        for (int32_t i = 0; i < 4; i++) {
            o[i][c] = (int8_t)nn_ssat8(conv_rq_apply_biased(acc[i], &rq[c]) + zp);
        }
    }
}
#endif

/* The same in the shorter form (conv_mm_ok layers): zp the output zero point. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One output from the sum X (with the bias) doubled: T holds k, or k - [x < 0] (nn_rq_mm_apply). */
#define RQMM_OUT(X, T, O)                                                                                         \
    "smmlar %[" #X "], %[" #X "], %[m], %[" #T "]\n"                                                          \
    "asr %[" #X "], %[" #X "], %[r]\n"                                                                        \
    "ssat %[" #X "], #8, %[" #X "]\n"                                                                         \
    "strb %[" #X "], [%[" #O "]], #1\n"
/* The channel's constants; the last load steps the pointer (no load's address depends on a loaded register, so
 * they pipeline). */
#define RQMM_CONSTANTS                                                                                            \
    "ldr %[k], [%[q], #4]\n"                                                                                  \
    "ldr %[r], [%[q], #8]\n"                                                                                  \
    "ldr %[m], [%[q]], #16\n"
#define RQMM_OPERANDS                                                                                             \
    : [acc] "+r"(acc), [q] "+r"(rq), [n] "+r"(n), [o0] "+r"(o0), [o1] "+r"(o1), [o2] "+r"(o2), [o3] "+r"(o3), \
      [m] "=&r"(m), [k] "=&r"(k), [r] "=&r"(r), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3)    \
    :                                                                                                         \
    : "cc", "memory"

static void __attribute__((noinline)) requant4_mm(const int32_t *acc, const conv_rq *rq, int32_t n, int32_t zp,
                                                  int8_t *const o[4])
{
    int8_t *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
    uint32_t m, k, r, x0, x1, x2, x3;
    if (zp == -128) { /* no [x < 0] term: the four sums loaded together, each doubled in place */
        __asm__ volatile("1:\n" RQMM_CONSTANTS
                         "ldr %[x1], [%[acc], #4]\n"
                         "ldr %[x2], [%[acc], #8]\n"
                         "ldr %[x3], [%[acc], #12]\n"
                         "ldr %[x0], [%[acc]], #16\n"
                         "lsl %[x0], %[x0], #1\n"
                         "lsl %[x1], %[x1], #1\n"
                         "lsl %[x2], %[x2], #1\n"
                         "lsl %[x3], %[x3], #1\n"
                         RQMM_OUT(x0, k, o0) RQMM_OUT(x1, k, o1) RQMM_OUT(x2, k, o2) RQMM_OUT(x3, k, o3)
                         "subs %[n], %[n], #1\n"
                         "bne 1b\n" RQMM_OPERANDS);
    } else { /* two sums at a time (x0, x2), x1 and x3 holding k - [x < 0] */
        __asm__ volatile("1:\n" RQMM_CONSTANTS
                         "ldr %[x2], [%[acc], #4]\n"
                         "ldr %[x0], [%[acc]], #8\n"
                         "add %[x1], %[k], %[x0], asr #31\n"
                         "add %[x3], %[k], %[x2], asr #31\n"
                         "lsl %[x0], %[x0], #1\n"
                         "lsl %[x2], %[x2], #1\n"
                         RQMM_OUT(x0, x1, o0) RQMM_OUT(x2, x3, o1)
                         "ldr %[x2], [%[acc], #4]\n"
                         "ldr %[x0], [%[acc]], #8\n"
                         "add %[x1], %[k], %[x0], asr #31\n"
                         "add %[x3], %[k], %[x2], asr #31\n"
                         "lsl %[x0], %[x0], #1\n"
                         "lsl %[x2], %[x2], #1\n"
                         RQMM_OUT(x0, x1, o2) RQMM_OUT(x2, x3, o3)
                         "subs %[n], %[n], #1\n"
                         "bne 1b\n" RQMM_OPERANDS);
    }
}
#else
static void requant4_mm(const int32_t *acc, const conv_rq *rq, int32_t n, int32_t zp, int8_t *const o[4])
{
    (void)zp;
    for (int32_t c = 0; c < n; c++, acc += 4) {
        for (int32_t i = 0; i < 4; i++) {
            o[i][c] = (int8_t)nn_ssat8(nn_rq_mm_apply(acc[i], rq[c].m, rq[c].khi, rq[c].rsh));
        }
    }
}
#endif

static __attribute__((noinline)) void requant4(const int32_t *acc, const conv_rq *rq, int32_t n, int32_t zp, int32_t lo, int32_t hi,
                     int8_t *const o[4])
{
    for (int32_t c = 0; c < n; c++, acc += 4) {
        for (int32_t i = 0; i < 4; i++) {
            o[i][c] = (int8_t)nn_clamp_i32(conv_rq_apply_biased(acc[i], &rq[c]) + zp, lo, hi);
        }
    }
}

static NN_COLD void requant4_exact(const int32_t *acc, const int32_t *mult, const int32_t *shift, int32_t n, int32_t out_off,
                           int32_t lo, int32_t hi, int8_t *const o[4])
{
    for (int32_t c = 0; c < n; c++, acc += 4) {
        for (int32_t i = 0; i < 4; i++) {
            o[i][c] = (int8_t)nn_clamp_i32(nn_requantize(acc[i], mult[c], shift[c]) + out_off, lo, hi);
        }
    }
}

/* Row mode's weights into the pair layout: each kernel row of kw x ic taps padded to row_bytes. */
static NN_COLD void repack_pairs(const int8_t *filter, int32_t oc_n, int32_t kh, int32_t seg, int32_t rb, int16_t *w)
{
    const int32_t kc = kh * rb, pairs = (oc_n + 1) >> 1;
    for (int32_t c = 0; c < 2 * pairs; c++) {
        /* channel c's words: group g's (t0, t2) at wc[4g], (t1, t3) at wc[4g + 2], SXTB16 of the group's bytes */
        uint32_t *wc = (uint32_t *)(void *)w + (c >> 1) * kc + (c & 1);
        const int8_t *f = filter + c * kh * seg;
        for (int32_t r = 0; r < kh; r++, f += seg) {
            for (int32_t t = 0; t < rb; t += 4, wc += 4) {
                const uint32_t v = c >= oc_n ? 0u : t + 4 <= seg ? nn_read32(f + t) : tail_word(f, t, seg);
                wc[0] = nn_sxtb16(v);
                wc[2] = nn_sxtb16_ror8(v);
            }
        }
    }
}

/* First output index whose window start (o * stride - pad) is >= 0 and one past the last whose window end
 * (start + (k - 1) * dil) is < n; clamped to [0, out]. */
static NN_SETUP void full_range(int32_t stride, int32_t pad, int32_t k, int32_t dil, int32_t n, int32_t out, int32_t *lo,
                       int32_t *hi)
{
    int32_t a = pad <= 0 ? 0 : (pad + stride - 1) / stride;
    const int32_t last = n - 1 - (k - 1) * dil + pad; /* largest o * stride allowed */
    int32_t b = last < 0 ? 0 : last / stride + 1;
    a = a > out ? out : a;
    b = b > out ? out : b;
    *lo = a;
    *hi = b < a ? a : b;
}

/* Scratch layout: the requantization table (oc rounded up to even x conv_rq), the accumulators of four pixels
 * (4 x that int32), the unused pixels' discarded outputs (oc bytes, padded to words), the columns (4 x K4 int16;
 * the pixel pair path uses half), in row mode the weights repacked into the pair layout (K4 int16 per channel),
 * then the padded row ring and its row offsets (use_rows). */
static inline int32_t oc_even(int32_t oc) { return (oc + 1) & ~1; }
static inline size_t scratch_rq_bytes(int32_t oc) { return (size_t)oc_even(oc) * sizeof(conv_rq); }
static inline size_t scratch_acc_bytes(int32_t oc) { return 4u * sizeof(int32_t) * (size_t)oc_even(oc); }
static inline size_t scratch_dummy_bytes(int32_t oc) { return ((size_t)oc + 3u) & ~(size_t)3u; }

/* Row mode, and the four pixel path of a padded convolution without horizontal dilation, read padded copies of
 * the input rows, so no pixel is a border case: a ring of the R = (kh - 1) x dil_h + 1 rows a window spans (row y
 * in slot y mod R, an output row's kh slot offsets in a table after the ring); a slot holds the span of an output
 * row's windows (the zero point outside the input) rounded up to a word, plus a word read past the last (against
 * zero weights). Pixels are filled in order, so a row is loaded once. */
static inline int use_rows(const nn_conv_params *p, const nn_dims *f_d, const nn_dims *out_d)
{
    (void)out_d;
    return row_mode(p, f_d) || (p->dil_w == 1 && (f_d->c & 3) == 0 && (p->pad_w > 0 || p->pad_h > 0));
}
static inline int32_t rows_ring(const nn_conv_params *p, const nn_dims *f_d) { return (f_d->h - 1) * p->dil_h + 1; }
static inline int32_t rows_slot(const nn_conv_params *p, const nn_dims *f_d, const nn_dims *out_d)
{
    return ((((out_d->w - 1) * p->stride_w + f_d->w) * f_d->c + 3) & ~3) + 4;
}

size_t conv2d_s8_simd_scratch_bytes(const nn_conv_params *p, const nn_dims *f_d, const nn_dims *out_d)
{
    const size_t kc = (size_t)k_alloc(p, f_d), oc2 = (size_t)oc_even(f_d->n);
    return scratch_rq_bytes(f_d->n) + scratch_acc_bytes(f_d->n) + scratch_dummy_bytes(f_d->n) +
           4u * sizeof(int16_t) * kc + (row_mode(p, f_d) ? oc2 * kc * sizeof(int16_t) : 0u) +
           (use_rows(p, f_d, out_d) ? (size_t)rows_ring(p, f_d) * (size_t)rows_slot(p, f_d, out_d) + 4u * (size_t)f_d->h
                                    : 0u);
}

/* Group g of a row at src into a pixel's words of the four pixel layout. */
#define FILL_GROUP(G)                                                                                             \
    do {                                                                                                      \
        const uint32_t v_ = nn_read32(src + 4 * (G));                                                         \
        words[8 * (G)] = nn_sxtab16(off2, v_);                                                                \
        words[8 * (G) + 4] = nn_sxtab16_ror8(off2, v_);                                                       \
    } while (0)

/* One pixel's column from its kh padded rows (at ring + row[ky] + xo) into the four pixel layout (a first
 * convolution's rows of one group of 4 taps without a loop per group). */
static __attribute__((noinline)) void fill_rows(const int8_t *ring, const int32_t *row, int32_t xo, int32_t kh, int32_t groups, uint32_t off2,
                      uint32_t *words)
{
    if (groups == 1) {
        for (int32_t ky = 0; ky < kh; ky++, words += 8) {
            const int8_t *src = ring + row[ky] + xo;
            FILL_GROUP(0);
        }
    } else {
        for (int32_t ky = 0; ky < kh; ky++, words += 8 * groups) {
            expand_groups(ring + row[ky] + xo, groups, off2, words, 8, 4);
        }
    }
}

/* Packed rows of a 3x3x3 window: the 7 words of 27 taps (and a pad byte against a zero weight) from three 9-byte
 * runs, in registers. */
#define PACKED_WORD(G, V)                                                                                         \
    do {                                                                                                      \
        const uint32_t v_ = (V);                                                                              \
        words[8 * (G)] = nn_sxtab16(off2, v_);                                                                \
        words[8 * (G) + 4] = nn_sxtab16_ror8(off2, v_);                                                       \
    } while (0)
static inline void fill_packed333(const int8_t *ring, const int32_t *row, int32_t xo, uint32_t off2, uint32_t *words)
{
    const int8_t *r0 = ring + row[0] + xo, *r1 = ring + row[1] + xo, *r2 = ring + row[2] + xo;
    const uint32_t b0 = nn_read32(r1), b1 = nn_read32(r1 + 4), c0 = nn_read32(r2), c1 = nn_read32(r2 + 4);
    PACKED_WORD(0, nn_read32(r0));
    PACKED_WORD(1, nn_read32(r0 + 4));
    PACKED_WORD(2, (uint32_t)(uint8_t)r0[8] | b0 << 8);
    PACKED_WORD(3, b0 >> 24 | b1 << 8);
    PACKED_WORD(4, b1 >> 24 | (uint32_t)(uint8_t)r1[8] << 8 | c0 << 16);
    PACKED_WORD(5, c0 >> 16 | c1 << 16);
    PACKED_WORD(6, c1 >> 16 | nn_read32(r2 + 8) << 16);
}


/* Input row y (the zero point where it is outside the input), padded (see use_rows), into the slot at dst. */
static __attribute__((noinline)) void load_row(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in_b, int32_t y, int32_t slot,
                     int8_t *dst)
{
    const int32_t ic = in_d->c, row = in_d->w * ic;
    const int32_t left = p->pad_w * ic, bytes = slot - 4;
    const int8_t zp = (int8_t)-p->input_offset;
    /* bytes [0, l) and [l + n, slot) are outside the input */
    const int32_t l = y < 0 || y >= in_d->h ? slot : (left < bytes ? left : bytes);
    const int32_t n = l == slot ? 0 : (row < bytes - l ? row : bytes - l);
    const int8_t *src = in_b + (l == slot ? 0 : y * row);
    if (slot > 64) { /* long rows: the library's copies */
        memset(dst, zp, (size_t)l);
        memcpy(dst + l, src, (size_t)n);
        memset(dst + l + n, zp, (size_t)(slot - l - n));
        return;
    }
    int32_t i = 0; /* short rows (a few bytes each): plain loops, no calls */
    for (; i < l; i++) {
        dst[i] = zp;
    }
    for (; i < l + n; i++) {
        dst[i] = src[i - l];
    }
    for (; i < slot; i++) {
        dst[i] = zp;
    }
}

/* The columns of n (1 to 4) consecutive pixels of a 1x1 stride 1 convolution without padding, ic a multiple of 4:
 * their inputs are contiguous (unused pixels repeat the last one). */
static inline void fill_pointwise(const int8_t *src, int32_t ic, int32_t n, uint32_t off2, uint32_t *cols)
{
    const int8_t *s1 = src + (n > 1 ? ic : 0), *s2 = src + (n > 2 ? 2 * ic : (n - 1) * ic);
    const int8_t *s3 = src + (n - 1) * ic;
    for (int32_t g = 0; g < ic; g += 4, cols += 8) {
        const uint32_t v0 = nn_read32(src + g), v1 = nn_read32(s1 + g), v2 = nn_read32(s2 + g), v3 = nn_read32(s3 + g);
        cols[0] = nn_sxtab16(off2, v0);
        cols[1] = nn_sxtab16(off2, v1);
        cols[2] = nn_sxtab16(off2, v2);
        cols[3] = nn_sxtab16(off2, v3);
        cols[4] = nn_sxtab16_ror8(off2, v0);
        cols[5] = nn_sxtab16_ror8(off2, v1);
        cols[6] = nn_sxtab16_ror8(off2, v2);
        cols[7] = nn_sxtab16_ror8(off2, v3);
    }
}

/* What both paths share: the requantization table, its kind, the interior ranges. */
typedef struct {
    conv_rq *rq;
    int32_t *acc;
    int8_t *dummy;
    uint32_t *cols;
    int fast, fold, full;
    int mm; /* the four pixel path's shorter requantization (conv_mm_ok) */
    int32_t oy_lo, oy_hi, ox_lo, ox_hi;
    int interior_ok;
    int32_t row_groups, row_step;
    uint32_t off2;
} conv_ctx;

/* The column of output pixel (y, x) into a pixel's words of layout (gs, bo). */
static __attribute__((noinline)) void fill_pixel(const conv_ctx *c, const nn_conv_params *p, const nn_dims *in_d, const int8_t *in_b,
                              const nn_dims *f_d, int32_t y, int32_t x, uint32_t *words, int32_t gs, int32_t bo)
{
    const int32_t y0 = y * p->stride_h - p->pad_h, x0 = x * p->stride_w - p->pad_w;
    if (c->interior_ok && y >= c->oy_lo && y < c->oy_hi && x >= c->ox_lo && x < c->ox_hi) {
        fill_interior(in_b + (y0 * in_d->w + x0) * in_d->c, f_d->h, c->row_groups, c->row_step, c->off2, words, gs, bo);
    } else {
        fill_column(p, in_d, in_b, f_d, y0, x0, words, gs, bo);
    }
}

static __attribute__((noinline)) void conv_four(const conv_ctx *c, const nn_conv_params *p, const nn_dims *in_d, const int8_t *in,
                      const nn_dims *f_d, const uint32_t *w, const int32_t *mult, const int32_t *shift,
                      const nn_dims *out_d, int8_t *out, int8_t *rows)
{
    int32_t *row_off = rows ? (int32_t *)(void *)(rows + rows_ring(p, f_d) * rows_slot(p, f_d, out_d)) : NULL;
    const int32_t oc_n = out_d->c, pairs = oc_even(oc_n) >> 1;
    const int32_t nw = k_cols(p, f_d) >> 1; /* word steps */
    const int32_t pixels = out_d->h * out_d->w;
    const int32_t zp_add = c->fold ? 0 : p->output_offset;
    const int32_t slot = rows ? rows_slot(p, f_d, out_d) : 0, groups = row_bytes(f_d) >> 2;
    const int32_t ring = rows ? rows_ring(p, f_d) : 0;
    const int packed = packed_rows(p, f_d);
    const int pointwise = !rows && f_d->h == 1 && f_d->w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                          in_d->h == out_d->h && in_d->w == out_d->w && (in_d->c & 3) == 0;
    for (int32_t b = 0; b < out_d->n; b++) {
        const int8_t *in_b = in + b * in_d->h * in_d->w * in_d->c;
        int8_t *out_b = out + b * pixels * oc_n;
        int32_t loaded = -p->pad_h - 1; /* the last input row in the ring */
        int32_t oy = 0, ox = 0;         /* of the pixel being filled */
        int32_t ring_oy = -1;           /* the output row whose window rows row_off holds */
        for (int32_t px = 0; px < pixels; px += 4) {
            const int32_t n = pixels - px < 4 ? pixels - px : 4;
            int8_t *o[4];
            for (int32_t i = 0; i < 4; i++) { /* unused pixels' outputs discarded */
                o[i] = i < n ? out_b + (px + i) * oc_n : c->dummy;
            }
            if (pointwise) {
                fill_pointwise(in_b + px * in_d->c, in_d->c, n, c->off2, c->cols);
            }
            for (int32_t i = 0; i < 4 && !pointwise; i++) { /* unused pixels repeat the last one */
                if (rows) {
                    if (ring_oy != oy) {
                        const int32_t y0 = oy * p->stride_h - p->pad_h, last = y0 + ring - 1;
                        for (int32_t y = loaded + 1 > y0 ? loaded + 1 : y0; y <= last; y++) {
                            load_row(p, in_d, in_b, y, slot,
                                     rows + (int32_t)((uint32_t)(y + 0x40000000) % (uint32_t)ring) * slot);
                        }
                        loaded = last > loaded ? last : loaded;
                        int32_t s = (int32_t)((uint32_t)(y0 + 0x40000000) % (uint32_t)ring);
                        for (int32_t ky = 0; ky < f_d->h; ky++) {
                            row_off[ky] = s * slot;
                            s += p->dil_h;
                            s = s >= ring ? s - ring : s;
                        }
                        ring_oy = oy;
                    }
                    if (packed) {
                        fill_packed333(rows, row_off, ox * p->stride_w * in_d->c, c->off2, c->cols + i);
                    } else {
                        fill_rows(rows, row_off, ox * p->stride_w * in_d->c, f_d->h, groups, c->off2, c->cols + i);
                    }
                } else {
                    fill_pixel(c, p, in_d, in_b, f_d, oy, ox, c->cols + i, 8, 4);
                }
                if (i + 1 < n || (i == 3 && n == 4)) { /* the next pixel (after the last: the next pass's first) */
                    if (++ox == out_d->w) {
                        ox = 0;
                        oy++;
                    }
                }
            }
            if (n <= 2) {
                dot_2x2(w, c->cols, nw, pairs, c->rq, c->acc);
            } else {
                dot_2x4(w, c->cols, nw, pairs, c->rq, c->acc);
            }
            if (c->mm) {
                requant4_mm(c->acc, c->rq, oc_n, p->output_offset, o);
            } else if (c->fast && c->full) {
                requant4_full(c->acc, c->rq, oc_n, zp_add, p->output_offset == -128, o);
            } else if (c->fast) {
                requant4(c->acc, c->rq, oc_n, zp_add, p->act_min, p->act_max, o);
            } else {
                requant4_exact(c->acc, mult, shift, oc_n, p->output_offset, p->act_min, p->act_max, o);
            }
        }
    }
}

/* The pixel pair path's remainders: the partial last group of every filter (K % 4 != 0), the odd last channel. */
static NN_COLD void pair_tails(const int8_t *filter, int32_t K, int32_t KC, int32_t oc_n, const uint32_t *pair,
                               int32_t *acc)
{
    const int32_t pairs = oc_n >> 1;
    if (KC != K || (K & 3)) { /* the partial last group of every filter */
        const uint32_t *cp = pair + KC - 4;
        for (int32_t c = 0; c < 2 * pairs; c++) {
            dot_tail(filter + c * K, KC - 4, K, cp, &acc[2 * c], &acc[2 * c + 1]);
        }
    }
    if (oc_n & 1) {
        int32_t *a = acc + 4 * pairs;
        a[0] = a[1] = 0;
        dot_1x2(filter + (oc_n - 1) * K, pair, K, a);
    }
}

/* The pixel pair path (plain OHWI weights with input channels a multiple of 4, or dilated rows). */
static __attribute__((noinline)) void conv_two(const conv_ctx *cx, const nn_conv_params *p, const nn_dims *in_d, const int8_t *in,
                     const nn_dims *f_d, const int8_t *filter, const int32_t *bias, const int32_t *mult,
                     const int32_t *shift, const nn_dims *out_d, int8_t *out)
{
    const int32_t oc_n = out_d->c;
    const conv_rq *rq = cx->rq;
    int32_t *acc = cx->acc;
    int8_t *dummy = cx->dummy;
    uint32_t *pair = cx->cols;
    const int fast = cx->fast;
    const int32_t K = f_d->h * f_d->w * f_d->c;
    const int32_t KC = k_cols(p, f_d);
    const int32_t n4 = K >> 2;
    const int32_t pairs = oc_n >> 1;
    const int32_t pixels = out_d->h * out_d->w;
    const int32_t out_off = p->output_offset, lo = p->act_min, hi = p->act_max;
    const int32_t zp_add = cx->fold ? 0 : out_off; /* the zero point the fused requantization adds after the shift */
    for (int32_t b = 0; b < out_d->n; b++) {
        const int8_t *in_b = in + b * in_d->h * in_d->w * in_d->c;
        int8_t *out_b = out + b * pixels * oc_n;
        int32_t oy = 0, ox = 0; /* of pixel px */
        for (int32_t px = 0; px < pixels; px += 2) {
            const int two = px + 1 < pixels;
            /* pixel px + 1 (an odd last pixel is computed twice, stored once) */
            int32_t oy1 = oy, ox1 = ox + 1;
            if (ox1 == out_d->w) {
                ox1 = 0;
                oy1++;
            }
            if (!two) {
                oy1 = oy;
                ox1 = ox;
            }
            for (int32_t i = 0; i < 2; i++) { /* one copy of the fill for both pixels */
                fill_pixel(cx, p, in_d, in_b, f_d, i ? oy1 : oy, i ? ox1 : ox, pair + 2 * i, 4, 1);
            }
            oy = oy1;
            ox = ox1 + 1;
            if (ox == out_d->w) {
                ox = 0;
                oy++;
            }
            if (pairs > 0 && n4 > 0) {
                dot_pairs(filter, K, pair, n4, pairs, acc);
            } else {
                for (int32_t i = 0; i < 4 * pairs; i++) {
                    acc[i] = 0;
                }
            }
            if (KC != K || (K & 3) || (oc_n & 1)) {
                pair_tails(filter, K, KC, oc_n, pair, acc);
            }
            int8_t *o0 = out_b + px * oc_n;
            int8_t *o1 = two ? o0 + oc_n : dummy;
            if (fast) {
                requant_pair(acc, rq, oc_n, zp_add, lo, hi, o0, o1);
            } else {
                requant_pair_exact(acc, bias, mult, shift, oc_n, out_off, lo, hi, o0, o1);
            }
        }
    }
}

/* The per-call setup (once per call, out of line and compiled for size). */
static NN_SETUP void conv_setup(conv_ctx *cp, const nn_conv_params *p, const nn_dims *in_d, const nn_dims *f_d,
                               const int32_t *bias, const int32_t *mult, const int32_t *shift, const nn_dims *out_d,
                               int16_t *scratch, int four)
{
    const int32_t oc_n = out_d->c;
    conv_ctx c;
    c.rq = (conv_rq *)(void *)scratch;
    c.acc = (int32_t *)(void *)((uint8_t *)scratch + scratch_rq_bytes(oc_n));
    c.dummy = (int8_t *)c.acc + scratch_acc_bytes(oc_n);
    c.cols = (uint32_t *)(void *)(c.dummy + scratch_dummy_bytes(oc_n));
    c.full = p->act_min == -128 && p->act_max == 127;
    c.mm = four && c.full;
    c.fast = 1;
    c.fold = !four; /* the four pixel path adds the zero point after the shift (one form of requant4_full) */
    const int32_t room = conv_mm_room(k_cols(p, f_d));
    for (int32_t k = 0; k < oc_n; k++) {
        const int32_t right = conv_rq_right(mult[k], shift[k]);
        c.fast &= right >= 2;
        c.fold &= right <= 22;
        c.mm &= conv_mm_ok(mult[k], shift[k], bias ? bias[k] : 0, room);
    }
    for (int32_t k = 0; k < oc_even(oc_n); k++) { /* the four pixel path reads every bias, the pad channel's 0 */
        const int32_t b = bias && k < oc_n ? bias[k] : 0;
        c.rq[k].bias = b;
        if (k < oc_n && c.mm) {
            conv_rq_init_mm(&c.rq[k], b, mult[k], shift[k], p->output_offset);
        } else if (k < oc_n && c.fast) {
            conv_rq_init(&c.rq[k], b, mult[k], conv_rq_right(mult[k], shift[k]), c.fold, p->output_offset);
        }
    }
    /* output pixels whose window lies wholly inside the input (no per-tap checks when filling them) */
    full_range(p->stride_h, p->pad_h, f_d->h, p->dil_h, in_d->h, out_d->h, &c.oy_lo, &c.oy_hi);
    full_range(p->stride_w, p->pad_w, f_d->w, p->dil_w, in_d->w, out_d->w, &c.ox_lo, &c.ox_hi);
    c.interior_ok = p->dil_w == 1 && (row_mode(p, f_d) || (f_d->c & 3) == 0);
    c.row_groups = row_mode(p, f_d) ? row_bytes(f_d) >> 2 : (f_d->w * f_d->c) >> 2;
    c.row_step = p->dil_h * in_d->w * in_d->c;
    c.off2 = nn_pack16(p->input_offset, p->input_offset);
    *cp = c;
}

void conv2d_s8_simd(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                    const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                    const nn_dims *out_d, int8_t *out, int16_t *scratch)
{
    const int32_t oc_n = out_d->c;
    conv_ctx c;
    conv_setup(&c, p, in_d, f_d, bias, mult, shift, out_d, scratch, p->filter_pairs || row_mode(p, f_d));
    /* after the columns: row mode's repacked weights, then the padded rows */
    int16_t *w = (int16_t *)(void *)(c.cols + 2 * k_alloc(p, f_d));
    int8_t *rows = (int8_t *)(w + (row_mode(p, f_d) ? oc_even(oc_n) * k_alloc(p, f_d) : 0));
    if (p->filter_pairs) {
        conv_four(&c, p, in_d, in, f_d, (const uint32_t *)(const void *)filter, mult, shift, out_d, out,
                  use_rows(p, f_d, out_d) ? rows : NULL);
    } else if (row_mode(p, f_d)) {
        const int packed = packed_rows(p, f_d); /* one row of all the taps */
        repack_pairs(filter, oc_n, packed ? 1 : f_d->h, f_d->w * f_d->c * (packed ? f_d->h : 1),
                     packed ? packed_taps(f_d) : row_bytes(f_d), w);
        conv_four(&c, p, in_d, in, f_d, (const uint32_t *)(const void *)w, mult, shift, out_d, out, rows);
    } else {
        conv_two(&c, p, in_d, in, f_d, filter, bias, mult, shift, out_d, out);
    }
}
