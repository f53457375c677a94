/*
 * FULLY_CONNECTED, int8, Armv7E-M SIMD, for weights in the plan's "quads" layout (nn_fc_params.weights_quads,
 * FORMAT.md; laid out by measure_agent/plan/lower/fully_connected.py quad_weights); weights in TFLite's layout
 * (reference plans, layers the layout cannot take) run row by row (fc_rows).
 *
 * The layout: rows in quads (r0..r3), each quad one sequential stream of 4 x in_len bytes of int16 lanes
 * v = 256 * q + p, p a weight of row r0 (r2) and q of row r1 (r3) for the same input: first, per input of the
 * in_len % 4 tail, one word (rows (r0, r1), rows (r2, r3)); then per group of 4 inputs k..k+3 four words: lanes
 * (k, k+2) then (k+1, k+3), for rows (r0, r1) then (r2, r3). The out_len % 4 rows left follow in TFLite's
 * order. The input is expanded once to int16 with its offset, the groups in the same lane order (SXTB16 of
 * each input word), the tail after them.
 *
 * Per word, SMLAD of the word itself adds 256 q x + p x to a "mixed" sum and SMLAD of its SXTB16 (the p bytes)
 * adds p x to row r0's sum: three instructions for four MACs, one weight load for two rows. Row r1's sum is
 * (mixed - r0's) / 256, exact while it stays inside 24 bits: 256 inputs per chunk (|q| <= 128,
 * |x + offset| <= 255: 256 x 128 x 255 < 2^23); the mixed sum restarts from r0's sum each chunk (the tail is a
 * chunk of its own, before the groups).
 *
 * Requantization: nn_requantize_single_hi (one SMMLA and one shift, the output zero point in its constant); the
 * plan reader accepts the layout only where that form is exact (fully_connected_s8_simd_quads_ok). Four outputs
 * are saturated, packed, clamped bytewise (SSUB8/SEL) and stored as one word.
 */
#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

/* inputs per chunk of the mixed sums (see above) */
#define FC_CHUNK_GROUPS 64

size_t fully_connected_s8_simd_scratch_bytes(int32_t in_len)
{
    return sizeof(int16_t) * (size_t)((in_len + 3) & ~3);
}

/* x + offset as int16: per group of 4 inputs the words (x0, x2), (x1, x3), then the in_len % 4 tail in order. */
static void fc_expand_input(const int8_t *in, int32_t in_len, int32_t offset, int16_t *x16)
{
    const uint32_t off2 = nn_pack16(offset, offset);
    uint32_t *x = (uint32_t *)(void *)x16;
    const int32_t k4 = in_len & ~3;
    for (int32_t k = 0; k < k4; k += 4) {
        const uint32_t v = nn_read32(in + k);
        x[k / 2] = nn_sxtab16(off2, v);
        x[k / 2 + 1] = nn_sxtab16_ror8(off2, v);
    }
    for (int32_t k = k4; k < in_len; k++) {
        x16[k] = (int16_t)(in[k] + offset);
    }
}

/* The kernel's state across quads (the assembly loop reads and writes its fields in memory). */
typedef struct {
    const int32_t *bias;      /* the quad's biases (advances bstep bytes: 16, or 0 for the zero biases) */
    int32_t bstep;
    const int32_t *mult, *shift; /* the quad's (advance 16 bytes) */
    int8_t *out;              /* advances 4 */
    const uint8_t *x32;       /* the expanded input - 32 bytes (its tail follows the groups) */
    int32_t tail;             /* in_len % 4 */
    int32_t groups;           /* in_len / 4 */
    int32_t left;             /* working: groups left in the quad */
    int32_t zp21;             /* 2 x output zero point + 1 */
    uint32_t lo4, hi4;        /* act_min, act_max in each byte */
    int32_t quads;            /* left, >= 1 */
    int32_t q1, q3;           /* working: rows r1 and r3 */
} fc_quads_args;

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* The four words of one group: mixed sums a0 (rows r0, r1) and a2 (r2, r3), row sums a1 (r0) and a3 (r2). */
#define FCQ_MACS                                                                                                  \
    "sxtb16 %[t], %[w0]\n"                                                                                     \
    "smlad %[a1], %[t], %[xe], %[a1]\n"                                                                        \
    "smlad %[a0], %[w0], %[xe], %[a0]\n"                                                                       \
    "sxtb16 %[t], %[w1]\n"                                                                                     \
    "smlad %[a1], %[t], %[xo], %[a1]\n"                                                                        \
    "smlad %[a0], %[w1], %[xo], %[a0]\n"                                                                       \
    "sxtb16 %[t], %[w2]\n"                                                                                     \
    "smlad %[a3], %[t], %[xe], %[a3]\n"                                                                        \
    "smlad %[a2], %[w2], %[xe], %[a2]\n"                                                                       \
    "sxtb16 %[t], %[w3]\n"                                                                                     \
    "smlad %[a3], %[t], %[xo], %[a3]\n"                                                                        \
    "smlad %[a2], %[w3], %[xo], %[a2]\n"

/* The end of a chunk: rows r1 and r3 recovered from the mixed sums, (a0 - a1) / 256 and (a2 - a3) / 256, and
 * added to their sums in q1 and q3 (left in xe and xo). */
#define FCQ_FOLD                                                                                                  \
    "sub %[t], %[a0], %[a1]\n"                                                                                 \
    "ldr %[xe], %[q1]\n"                                                                                       \
    "add %[xe], %[xe], %[t], asr #8\n"                                                                         \
    "str %[xe], %[q1]\n"                                                                                       \
    "sub %[t], %[a2], %[a3]\n"                                                                                 \
    "ldr %[xo], %[q3]\n"                                                                                       \
    "add %[xo], %[xo], %[t], asr #8\n"                                                                         \
    "str %[xo], %[q3]\n"

/* Group J (1..3) of a 4-group step: xp / wp point at group 0 (six loads in one pipelined burst). */
#define FCQ_GROUP(XO, WO)                                                                                         \
    "ldr %[xe], [%[xp], #" #XO "]\n"                                                                            \
    "ldr %[xo], [%[xp], #" #XO "+4]\n"                                                                          \
    "ldr %[w0], [%[wp], #" #WO "]\n"                                                                            \
    "ldr %[w1], [%[wp], #" #WO "+4]\n"                                                                          \
    "ldr %[w2], [%[wp], #" #WO "+8]\n"                                                                          \
    "ldr %[w3], [%[wp], #" #WO "+12]\n" FCQ_MACS

/* One output: Y = ssat8(nn_requantize_single_hi(Y, *mult++, C, sh)), C = zp21 << (-shift - 2), sh = -shift - 1. */
#define FCQ_RQ(Y)                                                                                                 \
    "ldr %[xe], [%[w0]], #4\n"                                                                                  \
    "ldr %[xo], [%[w1]], #4\n"                                                                                  \
    "mvn %[w2], %[xo]\n"                                                                                       \
    "sub %[w3], %[w2], #1\n"                                                                                   \
    "lsl %[t], %[xp], %[w3]\n"                                                                                 \
    "smmla %[" #Y "], %[" #Y "], %[xe], %[t]\n"                                                                \
    "asr %[" #Y "], %[" #Y "], %[w2]\n"                                                                        \
    "ssat %[" #Y "], #8, %[" #Y "]\n"

/*
 * All quads: per quad the sums start at the biases, chunks of up to FC_CHUNK_GROUPS groups (steps of 4 groups,
 * then single groups), r1 and r3 recovered after each chunk, the four outputs requantized and stored. The weight
 * pointer runs on from quad to quad (wp and xp point 64 / 32 bytes before the next group).
 */
static void __attribute__((noinline)) fc_quads(fc_quads_args *args, const int8_t *weights)
{
    fc_quads_args m = *args;
    const int8_t *wp = weights - 64;
    int32_t a0, a1, a2, a3, n;
    const uint8_t *xp;
    uint32_t xe, xo, w0, w1, w2, w3, t;
    __asm__ volatile(
        "0:\n"
        "ldr %[t], %[bias]\n"
        "ldr %[a1], [%[t]]\n"
        "ldr %[xe], [%[t], #4]\n"
        "ldr %[a3], [%[t], #8]\n"
        "ldr %[xo], [%[t], #12]\n"
        "str %[xe], %[q1]\n"
        "str %[xo], %[q3]\n"
        "ldr %[xe], %[bstep]\n"
        "add %[t], %[t], %[xe]\n"
        "str %[t], %[bias]\n"
        "ldr %[n], %[tail]\n"
        "cmp %[n], #0\n"
        "beq 6f\n"
        /* the tail's chunk: one word per input, its two lanes for rows (r0, r1) and (r2, r3) */
        "mov %[a0], %[a1]\n"
        "mov %[a2], %[a3]\n"
        "ldr %[xp], %[x32]\n"
        "ldr %[t], %[groups]\n"
        "add %[xp], %[xp], %[t], lsl #3\n"
        "add %[xp], %[xp], #32\n"
        "7:\n"
        "ldrsh %[xe], [%[xp]], #2\n"
        "ldr %[w0], [%[wp], #64]\n"
        "add %[wp], %[wp], #4\n"
        "sxtb16 %[t], %[w0]\n"
        "smlabb %[a1], %[t], %[xe], %[a1]\n"
        "smlatb %[a3], %[t], %[xe], %[a3]\n"
        "smlabb %[a0], %[w0], %[xe], %[a0]\n"
        "smlatb %[a2], %[w0], %[xe], %[a2]\n"
        "subs %[n], %[n], #1\n"
        "bne 7b\n"
        FCQ_FOLD
        "6:\n"
        "ldr %[t], %[groups]\n"
        "str %[t], %[left]\n"
        "ldr %[xp], %[x32]\n"
        "5:\n"
        "mov %[a0], %[a1]\n"
        "mov %[a2], %[a3]\n"
        "ldr %[t], %[left]\n"
        "cmp %[t], #64\n"
        "ite gt\n"
        "movgt %[n], #64\n"
        "movle %[n], %[t]\n"
        "sub %[t], %[t], %[n]\n"
        "str %[t], %[left]\n"
        "subs %[n], %[n], #4\n"
        "blt 3f\n"
        ".p2align 2\n"
        "1:\n"
        /* group 0 moves the pointers on (the writebacks do not feed the next load's address) */
        "ldr %[xe], [%[xp], #32]!\n"
        "ldr %[w0], [%[wp], #64]!\n"
        "ldr %[xo], [%[xp], #4]\n"
        "ldr %[w1], [%[wp], #4]\n"
        "ldr %[w2], [%[wp], #8]\n"
        "ldr %[w3], [%[wp], #12]\n" FCQ_MACS FCQ_GROUP(8, 16) FCQ_GROUP(16, 32) FCQ_GROUP(24, 48)
        "subs %[n], %[n], #4\n"
        "bge 1b\n"
        "3:\n"
        "adds %[n], %[n], #4\n" /* the chunk's single groups */
        "beq 4f\n"
        "2:\n" FCQ_GROUP(32, 64)
        "add %[xp], %[xp], #8\n"
        "add %[wp], %[wp], #16\n"
        "subs %[n], %[n], #1\n"
        "bne 2b\n"
        "4:\n"
        FCQ_FOLD
        "ldr %[t], %[left]\n"
        "cmp %[t], #0\n"
        "bne 5b\n"
        /* outputs r0..r3 from a1, q1 (xe), a3, q3 (xo) */
        "mov %[a0], %[xe]\n"
        "mov %[a2], %[xo]\n"
        "ldr %[w0], %[mult]\n"
        "ldr %[w1], %[shift]\n"
        "ldr %[xp], %[zp21]\n" FCQ_RQ(a1) FCQ_RQ(a0) FCQ_RQ(a3) FCQ_RQ(a2)
        "str %[w0], %[mult]\n"
        "str %[w1], %[shift]\n"
        "bfi %[a1], %[a0], #8, #8\n"
        "bfi %[a1], %[a3], #16, #8\n"
        "bfi %[a1], %[a2], #24, #8\n"
        "ldr %[w2], %[lo4]\n"
        "ldr %[w3], %[hi4]\n"
        "ssub8 %[t], %[a1], %[w2]\n"
        "sel %[a1], %[a1], %[w2]\n"
        "ssub8 %[t], %[a1], %[w3]\n"
        "sel %[a1], %[w3], %[a1]\n"
        "ldr %[t], %[out]\n"
        "str %[a1], [%[t]], #4\n"
        "str %[t], %[out]\n"
        "ldr %[t], %[quads]\n"
        "subs %[t], %[t], #1\n"
        "str %[t], %[quads]\n"
        "bne 0b\n"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [wp] "+r"(wp), [xp] "=&r"(xp),
          [xe] "=&r"(xe), [xo] "=&r"(xo), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3),
          [t] "=&r"(t), [n] "=&r"(n)
        /* the local copy's fields as memory operands; the asm also writes bias, left, mult, shift, out,
         * quads, q1 and q3 ("memory") */
        : [bias] "m"(m.bias), [bstep] "m"(m.bstep), [mult] "m"(m.mult), [shift] "m"(m.shift), [out] "m"(m.out),
          [x32] "m"(m.x32), [tail] "m"(m.tail), [groups] "m"(m.groups), [left] "m"(m.left), [zp21] "m"(m.zp21),
          [lo4] "m"(m.lo4), [hi4] "m"(m.hi4), [quads] "m"(m.quads), [q1] "m"(m.q1), [q3] "m"(m.q3)
        : "cc", "memory");
}
#else
/* The same arithmetic in C (host builds, cores without DSP). */
static void fc_quads(fc_quads_args *a, const int8_t *weights)
{
    const uint32_t *w = (const void *)weights;
    for (int32_t q = 0; q < a->quads; q++) {
        const int32_t *b = a->bias;
        int32_t s0 = b[0], s1 = b[1], s2 = b[2], s3 = b[3];
        a->bias = (const int32_t *)(const void *)((const uint8_t *)a->bias + a->bstep);
        const uint32_t *x = (const void *)(a->x32 + 32);
        if (a->tail > 0) {
            int32_t m01 = s0, m23 = s2;
            const int16_t *xt = (const int16_t *)(const void *)(x + 2 * a->groups);
            for (int32_t i = 0; i < a->tail; i++, w++) {
                const uint32_t xi = (uint16_t)xt[i], p = nn_sxtb16(w[0]);
                s0 = nn_smlabb(p, xi, s0);
                s2 = nn_smlatt(p, xi << 16, s2);
                m01 = nn_smlabb(w[0], xi, m01);
                m23 = nn_smlatt(w[0], xi << 16, m23);
            }
            s1 += (int32_t)((uint32_t)m01 - (uint32_t)s0) >> 8;
            s3 += (int32_t)((uint32_t)m23 - (uint32_t)s2) >> 8;
        }
        for (int32_t g0 = 0; g0 < a->groups; g0 += FC_CHUNK_GROUPS) {
            const int32_t n = a->groups - g0 < FC_CHUNK_GROUPS ? a->groups - g0 : FC_CHUNK_GROUPS;
            int32_t m01 = s0, m23 = s2;
            for (int32_t g = 0; g < n; g++, w += 4, x += 2) {
                s0 = nn_smlad(nn_sxtb16(w[0]), x[0], s0);
                m01 = nn_smlad(w[0], x[0], m01);
                s0 = nn_smlad(nn_sxtb16(w[1]), x[1], s0);
                m01 = nn_smlad(w[1], x[1], m01);
                s2 = nn_smlad(nn_sxtb16(w[2]), x[0], s2);
                m23 = nn_smlad(w[2], x[0], m23);
                s2 = nn_smlad(nn_sxtb16(w[3]), x[1], s2);
                m23 = nn_smlad(w[3], x[1], m23);
            }
            s1 += (int32_t)((uint32_t)m01 - (uint32_t)s0) >> 8;
            s3 += (int32_t)((uint32_t)m23 - (uint32_t)s2) >> 8;
        }
        const int32_t s[4] = {s0, s1, s2, s3};
        for (int32_t r = 0; r < 4; r++) {
            const int32_t sh = -a->shift[r] - 1;
            const int32_t y = nn_requantize_single_hi(s[r], a->mult[r], (int32_t)((uint32_t)a->zp21 << (sh - 1)), sh);
            a->out[r] = (int8_t)nn_clamp_i32(y, (int8_t)a->lo4, (int8_t)a->hi4);
        }
        a->mult += 4;
        a->shift += 4;
        a->out += 4;
    }
}
#endif

/* Rows in TFLite's order (the rows a quad leaves, and every row of a plan in TFLite's layout), two at a time
 * (an odd last row twice) against the expanded input x16: SMLAD over the groups, the tail in scalar. */
static void __attribute__((noinline)) fc_rows(const nn_fc_params *p, int32_t in_len, const int16_t *x16,
                                              int32_t rows, const int8_t *w, const int32_t *bias, const int32_t *mult,
                                              const int32_t *shift, int8_t *out)
{
    const int32_t k4 = in_len & ~3;
    for (int32_t r = 0; r < rows; r += 2) {
        const int32_t r1 = r + 1 < rows ? r + 1 : r;
        const int8_t *w0 = w + r * in_len, *w1 = w + r1 * in_len;
        const uint32_t *x = (const uint32_t *)(const void *)x16;
        int32_t s0 = bias ? bias[r] : 0, s1 = bias ? bias[r1] : 0;
        for (int32_t k = 0; k < k4; k += 4, x += 2) {
            const uint32_t xe = x[0], xo = x[1], v0 = nn_read32(w0 + k), v1 = nn_read32(w1 + k);
            s0 = nn_smlad(nn_sxtb16(v0), xe, s0);
            s1 = nn_smlad(nn_sxtb16(v1), xe, s1);
            s0 = nn_smlad(nn_sxtb16_ror8(v0), xo, s0);
            s1 = nn_smlad(nn_sxtb16_ror8(v1), xo, s1);
        }
        for (int32_t k = k4; k < in_len; k++) {
            s0 += (int32_t)w0[k] * x16[k];
            s1 += (int32_t)w1[k] * x16[k];
        }
        const int32_t acc[2] = {s0, s1};
        for (int32_t i = 0; i < 2 && r + i < rows; i++) {
            const int32_t m = mult[r + i], sh = shift[r + i]; /* the SMMLA form (zero point 0) where it holds */
            const int32_t y = (sh <= -2 && sh >= -31 ? nn_requantize_single_hi(acc[i], m, 1 << (-sh - 2), -sh - 1)
                                                     : nn_requantize_single(acc[i], m, sh)) + p->output_offset;
            out[r + i] = (int8_t)nn_clamp_i32(y, p->act_min, p->act_max);
        }
    }
}

NN_SETUP int fully_connected_s8_simd_quads_ok(const nn_fc_params *p, const int32_t *shift, int32_t out_len)
{
    if (p->input_offset < -127 || p->input_offset > 128) {
        return 0;
    }
    for (int32_t i = 0; i < out_len; i++) {
        if (!nn_requantize_single_hi_ok(shift[i], p->output_offset)) {
            return 0;
        }
    }
    return 1;
}

void fully_connected_s8_simd(const nn_fc_params *p, int32_t batches, int32_t in_len, const int8_t *in,
                             int32_t out_len, const int8_t *weights, const int32_t *bias, const int32_t *mult,
                             const int32_t *shift, int8_t *out, int16_t *scratch)
{
    static const int32_t zero_bias[4] = {0, 0, 0, 0};
    const int32_t quads = p->weights_quads ? out_len / 4 : 0, r = 4 * quads;
    for (int32_t b = 0; b < batches; b++) {
        fc_expand_input(in + b * in_len, in_len, p->input_offset, scratch);
        int8_t *o = out + b * out_len;
        if (quads > 0) {
            fc_quads_args a = {bias ? bias : zero_bias, bias ? 16 : 0, mult, shift, o,
                               (const uint8_t *)scratch - 32, in_len % 4, in_len / 4, 0,
                               2 * p->output_offset + 1,
                               (uint8_t)p->act_min * 0x01010101u, (uint8_t)p->act_max * 0x01010101u, quads, 0, 0};
            fc_quads(&a, weights);
        }
        if (r < out_len) {
            fc_rows(p, in_len, scratch, out_len - r, weights + r * in_len, bias ? bias + r : 0, mult + r, shift + r,
                    o + r);
        }
    }
}
