/*
 * FULLY_CONNECTED, int8, Armv7E-M SIMD: the input vector is expanded once per batch to int16 with the
 * input offset added (groups of 4 reordered x0,x2,x1,x3 to match SXTB16 of 4 weight bytes); then four weight
 * rows at a time share each pair of input words: per group of 4 inputs two input loads and, per row, one
 * weight load, two SXTB16 and two SMLAD (on Armv7E-M an assembly loop, 24 cycles per 16 MACs on the M4).
 * Rows left over (out_len % 4) and the tail of in_len % 4 are handled in C. The requantization is the
 * interpreter's single rounding (nn_requantize_single); with in_len % 4 == 0 and the usual shifts (<= -2) it
 * runs in the same assembly loop as the dot products, quad after quad (fc_quads).
 */
#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

size_t fully_connected_s8_simd_scratch_bytes(int32_t in_len)
{
    return sizeof(int16_t) * (size_t)((in_len + 3) & ~3);
}

/*
 * acc[r] += dot(row r of the four rows at w (stride K), x) over n4 >= 1 groups of 4 inputs, x the expanded
 * input (2 words per group).
 */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One group at input byte offset X: the four row pointers post-increment (they do not feed each other's
 * addresses, so the loads still pipeline), the count lives on the stack (14 registers are all in use). */
#define FC4_GROUP(X)                                                                                              \
    "ldr %[xe], [%[xp], #" #X "]\n"                                                                             \
    "ldr %[xo], [%[xp], #" #X "+4]\n"                                                                           \
    "ldr %[wa], [%[w0]], #4\n"                                                                                 \
    "ldr %[wb], [%[w1]], #4\n"                                                                                 \
    "sxtb16 %[t], %[wa]\n"                                                                                     \
    "sxtb16 %[wa], %[wa], ror #8\n"                                                                            \
    "smlad %[a0], %[t], %[xe], %[a0]\n"                                                                        \
    "smlad %[a0], %[wa], %[xo], %[a0]\n"                                                                       \
    "sxtb16 %[t], %[wb]\n"                                                                                     \
    "sxtb16 %[wb], %[wb], ror #8\n"                                                                            \
    "smlad %[a1], %[t], %[xe], %[a1]\n"                                                                        \
    "smlad %[a1], %[wb], %[xo], %[a1]\n"                                                                       \
    "ldr %[wa], [%[w2]], #4\n"                                                                                 \
    "ldr %[wb], [%[w3]], #4\n"                                                                                 \
    "sxtb16 %[t], %[wa]\n"                                                                                     \
    "sxtb16 %[wa], %[wa], ror #8\n"                                                                            \
    "smlad %[a2], %[t], %[xe], %[a2]\n"                                                                        \
    "smlad %[a2], %[wa], %[xo], %[a2]\n"                                                                       \
    "sxtb16 %[t], %[wb]\n"                                                                                     \
    "sxtb16 %[wb], %[wb], ror #8\n"                                                                            \
    "smlad %[a3], %[t], %[xe], %[a3]\n"                                                                        \
    "smlad %[a3], %[wb], %[xo], %[a3]\n"

static void __attribute__((noinline)) dot_4rows(const int8_t *w, int32_t K, const uint32_t *x, int32_t n4,
                                                int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *w0 = w, *w1 = w + K, *w2 = w + 2 * K, *w3 = w + 3 * K;
    const uint32_t *xp = x;
    struct {
        int32_t n, rest;
    } c = {n4 >> 2, n4 & 3};
    uint32_t xe, xo, wa, wb, t;
    __asm__ volatile(
        "ldr %[t], %[n]\n"
        "cmp %[t], #0\n"
        "beq 3f\n"
        "1:\n" FC4_GROUP(0) FC4_GROUP(8) FC4_GROUP(16) FC4_GROUP(24)
        "add %[xp], %[xp], #32\n"
        "ldr %[t], %[n]\n"
        "subs %[t], %[t], #1\n"
        "str %[t], %[n]\n"
        "bne 1b\n"
        "3:\n"
        "ldr %[t], %[rest]\n"
        "cmp %[t], #0\n"
        "beq 4f\n"
        "2:\n" FC4_GROUP(0)
        "add %[xp], %[xp], #8\n"
        "ldr %[t], %[rest]\n"
        "subs %[t], %[t], #1\n"
        "str %[t], %[rest]\n"
        "bne 2b\n"
        "4:\n"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2),
          [w3] "+r"(w3), [xp] "+r"(xp), [xe] "=&r"(xe), [xo] "=&r"(xo), [wa] "=&r"(wa), [wb] "=&r"(wb),
          [t] "=&r"(t), [n] "+m"(c.n), [rest] "+m"(c.rest)
        :
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
static void dot_4rows(const int8_t *w, int32_t K, const uint32_t *x, int32_t n4, int32_t acc[4])
{
    for (int32_t r = 0; r < 4; r++) {
        const int8_t *row = w + r * K;
        int32_t a = acc[r];
        for (int32_t g = 0; g < n4; g++) {
            const uint32_t v = nn_read32(row + 4 * g);
            a = nn_smlad(nn_sxtb16(v), x[2 * g], a);
            a = nn_smlad(nn_sxtb16_ror8(v), x[2 * g + 1], a);
        }
        acc[r] = a;
    }
}
#endif

/*
 * Whole quads of rows with the requantization in the same assembly loop (Armv7E-M), for in_len % 4 == 0 and
 * every row's shift <= -2 (nn_requantize_single of a total shift ts = 31 - shift >= 33: the rounding constant
 * 2^(ts-1) is the high word 2^(-2-shift), one SMLAL, the high word shifted right by -1-shift): per quad the
 * accumulators start at the bias, the dot products as dot_4rows, the four results saturated, packed, clamped
 * bytewise (SSUB8/SEL) and stored as one word. No call, C or table per quad.
 */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
typedef struct {
    const int8_t *wrow;       /* row 0 of the current quad (advances 4 K) */
    int32_t K;
    const uint32_t *x;
    int32_t n16, rest, cnt;   /* the dot products' 4-group passes, remaining groups, working count */
    const int32_t *bias;      /* the quad's biases (advances bstep: 16, or 0 for the zero biases) */
    int32_t bstep;
    const int32_t *mult, *shift; /* the quad's (advance 16) */
    int8_t *out;              /* advances 4 */
    int32_t zp;
    uint32_t lo4, hi4;
    int32_t quads;            /* left, >= 1 */
} fc_quads_args;

#define FCQ_RQ(A, OFF)                                                                                            \
    "ldr %[wa], [%[w0], #" #OFF "]\n"                                                                           \
    "ldr %[wb], [%[w1], #" #OFF "]\n"                                                                           \
    "mvn %[t], %[wb]\n"                                                                                        \
    "sub %[xe], %[t], #1\n"                                                                                    \
    "mov %[xo], #1\n"                                                                                          \
    "lsl %[xo], %[xo], %[xe]\n"                                                                                \
    "mov %[xe], #0\n"                                                                                          \
    "smlal %[xe], %[xo], %[" #A "], %[wa]\n"                                                                   \
    "asr %[xo], %[xo], %[t]\n"                                                                                 \
    "add %[" #A "], %[xo], %[w2]\n"                                                                            \
    "ssat %[" #A "], #8, %[" #A "]\n"

static void __attribute__((noinline)) fc_quads(fc_quads_args *args)
{
    fc_quads_args m = *args;
    int32_t a0, a1, a2, a3;
    const int8_t *w0, *w1, *w2, *w3;
    const uint32_t *xp;
    uint32_t xe, xo, wa, wb, t;
    __asm__ volatile(
        "0:\n"
        "ldr %[w0], %[wrow]\n"
        "ldr %[t], %[K]\n"
        "add %[w1], %[w0], %[t]\n"
        "add %[w2], %[w1], %[t]\n"
        "add %[w3], %[w2], %[t]\n"
        "ldr %[xp], %[x]\n"
        "ldr %[t], %[bias]\n"
        "ldr %[a0], [%[t]]\n"
        "ldr %[a1], [%[t], #4]\n"
        "ldr %[a2], [%[t], #8]\n"
        "ldr %[a3], [%[t], #12]\n"
        "ldr %[xe], %[bstep]\n"
        "add %[t], %[t], %[xe]\n"
        "str %[t], %[bias]\n"
        "ldr %[t], %[n16]\n"
        "cmp %[t], #0\n"
        "beq 3f\n"
        "str %[t], %[cnt]\n"
        "1:\n" FC4_GROUP(0) FC4_GROUP(8) FC4_GROUP(16) FC4_GROUP(24)
        "add %[xp], %[xp], #32\n"
        "ldr %[t], %[cnt]\n"
        "subs %[t], %[t], #1\n"
        "str %[t], %[cnt]\n"
        "bne 1b\n"
        "3:\n"
        "ldr %[t], %[rest]\n"
        "cmp %[t], #0\n"
        "beq 4f\n"
        "str %[t], %[cnt]\n"
        "2:\n" FC4_GROUP(0)
        "add %[xp], %[xp], #8\n"
        "ldr %[t], %[cnt]\n"
        "subs %[t], %[t], #1\n"
        "str %[t], %[cnt]\n"
        "bne 2b\n"
        "4:\n"
        "ldr %[t], %[wrow]\n"
        "ldr %[xe], %[K]\n"
        "add %[t], %[t], %[xe], lsl #2\n"
        "str %[t], %[wrow]\n"
        "ldr %[w0], %[mult]\n"
        "ldr %[w1], %[shift]\n"
        "ldr %[w2], %[zp]\n"
        FCQ_RQ(a0, 0) FCQ_RQ(a1, 4) FCQ_RQ(a2, 8) FCQ_RQ(a3, 12)
        "add %[w0], %[w0], #16\n"
        "add %[w1], %[w1], #16\n"
        "str %[w0], %[mult]\n"
        "str %[w1], %[shift]\n"
        "bfi %[a0], %[a1], #8, #8\n"
        "bfi %[a0], %[a2], #16, #8\n"
        "bfi %[a0], %[a3], #24, #8\n"
        "ldr %[w0], %[lo4]\n"
        "ldr %[w1], %[hi4]\n"
        "ssub8 %[t], %[a0], %[w0]\n"
        "sel %[a0], %[a0], %[w0]\n"
        "ssub8 %[t], %[a0], %[w1]\n"
        "sel %[a0], %[w1], %[a0]\n"
        "ldr %[t], %[out]\n"
        "str %[a0], [%[t]], #4\n"
        "str %[t], %[out]\n"
        "ldr %[t], %[quads]\n"
        "subs %[t], %[t], #1\n"
        "str %[t], %[quads]\n"
        "bne 0b\n"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [w0] "=&r"(w0), [w1] "=&r"(w1),
          [w2] "=&r"(w2), [w3] "=&r"(w3), [xp] "=&r"(xp), [xe] "=&r"(xe), [xo] "=&r"(xo), [wa] "=&r"(wa),
          [wb] "=&r"(wb), [t] "=&r"(t)
        /* the local copy's fields as memory operands; the asm also writes wrow, cnt, bias, mult, shift, out and
         * quads ("memory") */
        : [wrow] "m"(m.wrow), [K] "m"(m.K), [x] "m"(m.x), [n16] "m"(m.n16), [rest] "m"(m.rest), [cnt] "m"(m.cnt),
          [bias] "m"(m.bias), [bstep] "m"(m.bstep), [mult] "m"(m.mult), [shift] "m"(m.shift), [out] "m"(m.out),
          [zp] "m"(m.zp), [lo4] "m"(m.lo4), [hi4] "m"(m.hi4), [quads] "m"(m.quads)
        : "cc", "memory");
}
#endif

/* One row: the full groups, then the K % 4 tail. */
static inline int32_t dot_row(const int8_t *w, int32_t K, const uint32_t *x, const int16_t *x16, int32_t acc)
{
    const int32_t K4 = K & ~3;
    for (int32_t k = 0; k < K4; k += 4) {
        const uint32_t v = nn_read32(w + k);
        acc = nn_smlad(nn_sxtb16(v), x[k / 2], acc);
        acc = nn_smlad(nn_sxtb16_ror8(v), x[k / 2 + 1], acc);
    }
    for (int32_t k = K4; k < K; k++) {
        acc += (int32_t)w[k] * x16[k];
    }
    return acc;
}

/*
 * nn_requantize_single for shifts <= -1 (total shift ts = 31 - shift >= 32): floor((x * m + 2^(ts-1)) / 2^ts)
 * is the high word of the 64-bit sum shifted right by ts - 32 (the low word cannot change the floor), and
 * it always fits int32, so the interpreter's out-of-range rule never applies. One SMLAL.
 */
static inline int32_t fc_requant(int32_t acc, int32_t m, int32_t s)
{
    if (s > -1) {
        return nn_requantize_single(acc, m, s);
    }
    const int32_t ts = 31 - s;
    const int64_t k = (int64_t)1 << (ts - 1);
    const int64_t r = k + (int64_t)acc * (int64_t)m;
    return (int32_t)(r >> 32) >> (ts - 32);
}

static __attribute__((noinline)) int8_t fc_out(int32_t acc, int32_t m, int32_t s, const nn_fc_params *p)
{
    return (int8_t)nn_clamp_i32(fc_requant(acc, m, s) + p->output_offset, p->act_min, p->act_max);
}

void fully_connected_s8_simd(const nn_fc_params *p, int32_t batches, int32_t in_len, const int8_t *in,
                             int32_t out_len, const int8_t *weights, const int32_t *bias, const int32_t *mult,
                             const int32_t *shift, int8_t *out, int16_t *scratch)
{
    const int32_t K = in_len, K4 = in_len & ~3, n4 = in_len >> 2;
    const uint32_t off2 = nn_pack16(p->input_offset, p->input_offset);
    uint32_t *x = (uint32_t *)(void *)scratch;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *xb = in + b * in_len;
        for (int32_t k = 0; k < K4; k += 4) {
            const uint32_t v = nn_read32(xb + k);
            x[k / 2] = nn_sadd16(nn_sxtb16(v), off2);
            x[k / 2 + 1] = nn_sadd16(nn_sxtb16_ror8(v), off2);
        }
        for (int32_t k = K4; k < K; k++) { /* the tail, unpermuted, read element-wise */
            scratch[k] = (int16_t)(xb[k] + p->input_offset);
        }
        int8_t *o = out + b * out_len;
        int32_t r = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
        const int32_t quads = n4 > 0 && K4 == K ? out_len / 4 : 0;
        int shifts_ok = 1;
        for (int32_t i = 0; i < 4 * quads; i++) {
            shifts_ok &= shift[i] <= -2 && mult[i] >= 0;
        }
        if (quads > 0 && shifts_ok) {
            static const int32_t zero_bias[4] = {0, 0, 0, 0};
            fc_quads_args a = {weights, K, x, n4 >> 2, n4 & 3, 0, bias ? bias : zero_bias, bias ? 16 : 0, mult,
                               shift, o, p->output_offset, (uint8_t)p->act_min * 0x01010101u,
                               (uint8_t)p->act_max * 0x01010101u, quads};
            fc_quads(&a);
            r = 4 * quads;
        }
#endif
        for (; r + 4 <= out_len && n4 > 0; r += 4) {
            int32_t acc[4];
            for (int32_t i = 0; i < 4; i++) {
                acc[i] = bias ? bias[r + i] : 0;
            }
            dot_4rows(weights + r * K, K, x, n4, acc);
            for (int32_t i = 0; i < 4; i++) {
                for (int32_t k = K4; k < K; k++) {
                    acc[i] += (int32_t)weights[(r + i) * K + k] * scratch[k];
                }
                o[r + i] = fc_out(acc[i], mult[r + i], shift[r + i], p);
            }
        }
        for (; r < out_len; r++) {
            o[r] = fc_out(dot_row(weights + r * K, K, x, scratch, bias ? bias[r] : 0), mult[r], shift[r], p);
        }
    }
}
