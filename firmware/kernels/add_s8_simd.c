/*
 * ADD (and SUB: a negated second multiplier), int8, Armv7E-M SIMD. Each input's rescaling
 * (offset, << 20, MultiplyByQuantizedMultiplier) depends only on the input byte, so the call first
 * tabulates it for all 256 values of each input (exactly, with nn_requantize; 2 KB of scratch) and then
 * every element costs two table loads, an add and the output's fused requantization (nn_rq_apply, exact),
 * two elements per pass of an assembly loop when the activation's maximum is the saturation's.
 * Broadcasting inputs, and outputs too small to pay for the tables, run the reference kernel.
 */
#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

#define ADD_TABLES_MIN_ELEMENTS 512

size_t add_s8_simd_scratch_bytes(void) { return 2u * 256u * sizeof(int32_t); }

static int contiguous(const int32_t dims[4], const int32_t strides[4])
{
    return strides[3] == 1 && strides[2] == dims[3] && strides[1] == dims[2] * dims[3] &&
           strides[0] == dims[1] * dims[2] * dims[3];
}

/* The fused requantization of a rescaled sum x (zero point folded into khi). */
static inline int32_t add_rq(int32_t x, int32_t m, uint32_t khi, int32_t rsh)
{
    const int32_t sg = x >> 31;
    const uint32_t klo = 0x40000000u ^ ((uint32_t)sg << 31);
    const int64_t pr = (int64_t)(((uint64_t)(khi + (uint32_t)sg) << 32) | klo) + (int64_t)x * (int64_t)m;
    return (int32_t)(pr >> 32) >> rsh;
}

/* 2 x pairs elements with an activation maximum of 127 (the saturation's): table loads, the fused
 * requantization, SSAT and the activation minimum. On Armv7E-M one assembly loop, two elements per pass
 * (14 registers: no room for an upper bound). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define ADD_ELEM                                                                                                  \
    "ldrb %[x], [%[a]], #1\n"                                                                                  \
    "ldrb %[y], [%[b]], #1\n"                                                                                  \
    "ldr %[x], [%[t1], %[x], lsl #2]\n"                                                                        \
    "ldr %[y], [%[t2], %[y], lsl #2]\n"                                                                        \
    "add %[x], %[x], %[y]\n"                                                                                   \
    "asr %[hi], %[x], #31\n"                                                                                   \
    "mov %[lo], #0x40000000\n"                                                                                 \
    "eor %[lo], %[lo], %[hi], lsl #31\n"                                                                       \
    "add %[hi], %[hi], %[khi]\n"                                                                               \
    "smlal %[lo], %[hi], %[x], %[m]\n"                                                                         \
    "asr %[hi], %[hi], %[rsh]\n"                                                                               \
    "ssat %[hi], #8, %[hi]\n"                                                                                  \
    "cmp %[hi], %[amin]\n"                                                                                     \
    "it lt\n"                                                                                                  \
    "movlt %[hi], %[amin]\n"                                                                                   \
    "strb %[hi], [%[o]], #1\n"

static void __attribute__((noinline)) add_pairs(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *t1,
                                                const int32_t *t2, int32_t pairs, int32_t m, uint32_t khi,
                                                int32_t rsh, int32_t act_min)
{
    if (pairs <= 0) {
        return;
    }
    uint32_t x, y, lo, hi;
    __asm__ volatile("1:\n" ADD_ELEM ADD_ELEM
                     "subs %[n], %[n], #1\n"
                     "bne 1b\n"
                     : [a] "+r"(in1), [b] "+r"(in2), [o] "+r"(out), [n] "+r"(pairs), [x] "=&r"(x), [y] "=&r"(y),
                       [lo] "=&r"(lo), [hi] "=&r"(hi)
                     : [t1] "r"(t1), [t2] "r"(t2), [m] "r"(m), [khi] "r"(khi), [rsh] "r"(rsh), [amin] "r"(act_min)
                     : "cc", "memory");
}
#else
static void add_pairs(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *t1, const int32_t *t2,
                      int32_t pairs, int32_t m, uint32_t khi, int32_t rsh, int32_t act_min)
{
    for (int32_t i = 0; i < 2 * pairs; i++) {
        const int32_t x = (int32_t)((uint32_t)t1[(uint8_t)in1[i]] + (uint32_t)t2[(uint8_t)in2[i]]);
        out[i] = (int8_t)nn_max_i32(nn_ssat8(add_rq(x, m, khi, rsh)), act_min);
    }
}
#endif

void add_s8_simd(const nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int32_t *scratch)
{
    const int32_t *d = p->out_dims;
    const int32_t n = d[0] * d[1] * d[2] * d[3];
    const int32_t right = -p->output_shift;
    if (n < ADD_TABLES_MIN_ELEMENTS || !contiguous(d, p->in1_strides) || !contiguous(d, p->in2_strides) ||
        right < 2 || right > 22 || p->output_multiplier < 0) {
        add_s8_ref(p, in1, in2, out);
        return;
    }
    int32_t *t1 = scratch, *t2 = scratch + 256;
    int64_t max1 = 0, max2 = 0;
    for (int32_t v = -128; v < 128; v++) {
        t1[v & 0xFF] = nn_requantize((p->input1_offset + v) * (1 << p->left_shift), p->input1_multiplier,
                                     p->input1_shift);
        t2[v & 0xFF] = nn_requantize((p->input2_offset + v) * (1 << p->left_shift), p->input2_multiplier,
                                     p->input2_shift);
        max1 = t1[v & 0xFF] < 0 ? (-(int64_t)t1[v & 0xFF] > max1 ? -(int64_t)t1[v & 0xFF] : max1)
                                : (t1[v & 0xFF] > max1 ? t1[v & 0xFF] : max1);
        max2 = t2[v & 0xFF] < 0 ? (-(int64_t)t2[v & 0xFF] > max2 ? -(int64_t)t2[v & 0xFF] : max2)
                                : (t2[v & 0xFF] > max2 ? t2[v & 0xFF] : max2);
    }
    /* the reference clamps the rescaled sum to +-2^24 before the zero point: never binding when the largest
     * possible sum cannot get there (the usual case), else the reference kernel */
    const int64_t bound = ((max1 + max2) * (int64_t)p->output_multiplier) >> (31 + right);
    if (max1 + max2 > 0x7FFFFFFF || bound >= (1 << 24) - 1) {
        add_s8_ref(p, in1, in2, out);
        return;
    }
    /* fused requantization with the output zero point folded in (conv2d_s8_simd.c, conv_rq) */
    const int32_t m = p->output_multiplier, rsh = right - 1;
    const uint32_t khi = (1u << (right - 2)) + ((uint32_t)p->output_offset << (right - 1));
    int32_t i = 0;
    if (p->act_max == 127) {
        i = n & ~1;
        add_pairs(in1, in2, out, t1, t2, i / 2, m, khi, rsh, p->act_min);
    }
    for (; i < n; i++) {
        const int32_t x = (int32_t)((uint32_t)t1[(uint8_t)in1[i]] + (uint32_t)t2[(uint8_t)in2[i]]);
        out[i] = (int8_t)nn_clamp_i32(add_rq(x, m, khi, rsh), p->act_min, p->act_max);
    }
}
