/*
 * Integer quantization arithmetic of the TFLite quantization specification (the one place on the C side).
 *
 * Written from the public specification of the reference integer arithmetic:
 *   SaturatingRoundingDoublingHighMul, RoundingDivideByPOT, MultiplyByQuantizedMultiplier (Q31 multiplier
 *   and a signed shift, positive = left), and the Q-format fixed-point exp / reciprocal / logistic used by the
 *   integer softmax and logistic reference kernels.
 * The multipliers and shifts themselves are computed once on the host (measure_agent/plan/quantize.py).
 */
#ifndef NN_QUANT_H
#define NN_QUANT_H

#include <stdint.h>

#define NN_INT32_MAX ((int32_t)0x7FFFFFFF)
#define NN_INT32_MIN ((int32_t)(-0x7FFFFFFF - 1))

static inline int32_t nn_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t nn_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t nn_clamp_i32(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* (a * b * 2 + 2^31) >> 32 with round-half-away-from-zero on the 64-bit product; saturates the one overflow case. */
static inline int32_t nn_srdhm(int32_t a, int32_t b)
{
    if (a == NN_INT32_MIN && b == NN_INT32_MIN) {
        return NN_INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
    int64_t t = ab + nudge;
    /* division by 2^31 rounding toward zero (as C++ integer division) */
    int64_t q = t >= 0 ? (t >> 31) : -((-t) >> 31);
    return (int32_t)q;
}

/* x / 2^exponent rounding half away from zero, exponent in [0, 31]. */
static inline int32_t nn_rdbypot(int32_t x, int exponent)
{
    int32_t mask = (int32_t)((((int64_t)1) << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^shift with saturation (shift >= 0), as gemmlowp SaturatingRoundingMultiplyByPOT for positive exponents. */
static inline int32_t nn_sat_lshift(int32_t x, int shift)
{
    if (shift <= 0) {
        return x;
    }
    int32_t threshold = (int32_t)((((int64_t)1) << (31 - shift)) - 1);
    if (x > threshold) {
        return NN_INT32_MAX;
    }
    if (x < -threshold) {
        return NN_INT32_MIN;
    }
    return (int32_t)((uint32_t)x << shift);
}

/*
 * MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31), shift in [-31, 30], two roundings
 * (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT), as the TFLite reference kernels of
 * CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL, SOFTMAX, LOGISTIC, MEAN, QUANTIZE.
 */
static inline int32_t nn_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    const int32_t xs = (int32_t)((uint32_t)x << left);
    /* SaturatingRoundingDoublingHighMul: its nudge-and-truncate is floor((xs * m + 2^30) / 2^31) for both
     * signs (see nn_requantize_ch), the one saturating case apart */
    const int32_t h = (xs == NN_INT32_MIN && multiplier == NN_INT32_MIN)
                          ? NN_INT32_MAX
                          : (int32_t)(((int64_t)xs * (int64_t)multiplier + ((int64_t)1 << 30)) >> 31);
    /* RoundingDivideByPOT */
    const int32_t mask = (int32_t)(((uint32_t)1 << right) - 1u);
    return (h >> right) + (int32_t)((h & mask) > (mask >> 1) + (int32_t)((uint32_t)h >> 31));
}

/* nn_requantize's per-channel constants, derived once for a kernel's inner loop (nn_requantize_ch). */
typedef struct {
    int32_t m, left, right, mask, half;
} nn_requant_ch;

static inline void nn_requant_ch_init(nn_requant_ch *k, int32_t multiplier, int32_t shift)
{
    k->m = multiplier;
    k->left = shift > 0 ? shift : 0;
    k->right = shift > 0 ? 0 : -shift;
    k->mask = (int32_t)(((uint32_t)1 << k->right) - 1u);
    k->half = k->mask >> 1;
}

/*
 * nn_requantize in a branch-light form, equal to it whenever multiplier != INT32_MIN (then
 * SaturatingRoundingDoublingHighMul cannot saturate): its nudge-and-truncate is floor((x*m + 2^30) / 2^31)
 * for both signs (ceil(n / d) == floor((n + d - 1) / d)); RoundingDivideByPOT as in nn_rdbypot.
 */
static inline int32_t nn_requantize_ch(int32_t x, const nn_requant_ch *k)
{
    const int32_t xs = (int32_t)((uint32_t)x << k->left);
    const int32_t h = (int32_t)(((int64_t)xs * (int64_t)k->m + ((int64_t)1 << 30)) >> 31);
    return (h >> k->right) + (int32_t)((h & k->mask) > k->half + (int32_t)((uint32_t)h >> 31));
}

/*
 * nn_requantize with both roundings fused into one 64-bit rounding, for right shifts (shift <= -1 after the
 * left part, i.e. right >= 1) and multipliers >= 0 -- every convolution whose real scale is below 1/2.
 * Exact for every int32 x: for x >= 0 the two floor-roundings compose into
 * floor((x*m + 2^30 + 2^(30+right)) / 2^(31+right)); x < 0 follows from the symmetry of both roundings, and
 * the one constant that differs (-2^31 when x < 0) is added in the same 64-bit sum (one SMLAL). The
 * per-channel constants are nn_rq (nn_rq_init); tests/test_kernels_requantize.py checks it against
 * nn_requantize.
 */
typedef struct {
    int32_t m;    /* multiplier, >= 0 */
    int32_t left; /* left shift, 0..30 */
    int32_t rsh;  /* right - 1 */
    int64_t k;    /* the rounding constant 2^30 + 2^(30+right) */
} nn_rq;

/* Returns 0 (and leaves k unusable) when the channel has right == 0 or a negative multiplier. */
static inline int nn_rq_init(nn_rq *k, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    k->m = multiplier;
    k->left = left;
    k->rsh = right - 1;
    k->k = ((int64_t)1 << 30) + (right >= 1 ? ((int64_t)1 << (30 + right)) : 0);
    return right >= 1 && multiplier >= 0;
}

static inline int32_t nn_rq_apply(int32_t x, const nn_rq *k)
{
    const int32_t xs = (int32_t)((uint32_t)x << k->left);
    const int64_t s = xs >> 31; /* 0 or -1: -2^31 more in the constant for a negative x */
    const int64_t p = k->k + s * 2147483648LL + (int64_t)xs * (int64_t)k->m;
    return (int32_t)(p >> 32) >> k->rsh;
}

/*
 * nn_requantize plus an output zero point zp as one SMMLAR (a signed most-significant-word multiply-accumulate with
 * rounding), for multipliers m >= 0, right shifts r = -shift in [1, 22] (a zero multiplier: any shift, r = 1) and
 * |x| < 2^30 (so 2x does not wrap):
 *   SaturatingRoundingDoublingHighMul(x, m) is h = floor((x m + 2^30) / 2^31) (no saturation with m >= 0), exactly
 *   SMMLAR(2x, m, 0) = floor((2x m + 2^31) / 2^32); RoundingDivideByPOT(h, r) is (h + 2^(r-1) - [h < 0]) >> r,
 *   where [h < 0] may be [x < 0] (x < 0 with h = 0 gives the same); zp 2^r folds in exactly (r <= 22 keeps
 *   the sum within int32):
 *       nn_requantize(x, m, -r) + zp = (SMMLAR(2x, m, k) - [x < 0]) >> r,   k = 2^(r-1) + zp 2^r.
 * With zp = -128 and the result saturated to int8, the [x < 0] term may be dropped: a negative x gives <= -128
 * either way. conv2d_s8_simd's four pixel path does this in assembly; tests/test_kernels_requantize.py checks it.
 */
static inline int nn_rq_mm_ok(int32_t m, int32_t shift) { return m >= 0 && (m == 0 || (shift <= -1 && shift >= -22)); }
static inline int32_t nn_rq_mm_shift(int32_t m, int32_t shift) { return m == 0 ? 1 : -shift; }
static inline int32_t nn_rq_mm_k(int32_t r, int32_t zp) { return (int32_t)((1u << (r - 1)) + ((uint32_t)zp << r)); }
static inline int32_t nn_rq_mm_apply(int32_t x, int32_t m, int32_t k, int32_t r)
{
    const int64_t p = (int64_t)(int32_t)((uint32_t)x << 1) * m + (int64_t)0x80000000u +
                      (int64_t)((uint64_t)(uint32_t)k << 32); /* SMMLAR(2x, m, k) */
    return (int32_t)((uint32_t)(int32_t)(p >> 32) + (uint32_t)(x >> 31)) >> r;
}

/*
 * The same scaling with a single rounding of the exact product (half up): what the interpreter shipped by
 * ai-edge-litert does in its int8 and int16 FULLY_CONNECTED (verified empirically against the BUILTIN_REF
 * kernels). A result outside int32 becomes INT32_MIN, as the interpreter's (measured with int64 biases of
 * the 16x8 FC far beyond any trained model's; see tests/test_plan_exactness.py).
 */
static inline int32_t nn_requantize_single(int32_t x, int32_t multiplier, int32_t shift)
{
    const int total_shift = 31 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    int64_t r = ((int64_t)x * (int64_t)multiplier + round) >> total_shift;
    return (r > NN_INT32_MAX || r < NN_INT32_MIN) ? NN_INT32_MIN : (int32_t)r;
}

/*
 * nn_requantize_single(x, m, shift) + zp in one high-word multiply-accumulate (SMMLA) and one shift, for
 * -31 <= shift <= -2 (total shift ts = 31 - shift >= 33): floor((x m + 2^(ts-1) + zp 2^ts) / 2^ts) is
 * floor(floor(x m / 2^32 + c) / 2^sh) with c = (2 zp + 1) 2^(ts-33) and sh = ts - 32 (the rounding and zero
 * point terms are whole multiples of 2^32, nested floors compose). floor(x m / 2^32) is within +-2^30, so the
 * high word cannot overflow while |c| < 2^30 (nn_requantize_single_hi_ok); the result always fits int32, so
 * the out-of-range rule of nn_requantize_single never applies. c and sh are derived per channel as
 * c = (2 zp + 1) << (-shift - 2), sh = -shift - 1.
 */
static inline int32_t nn_requantize_single_hi(int32_t x, int32_t m, int32_t c, int32_t sh)
{
    return (int32_t)(((int64_t)c * 4294967296LL + (int64_t)x * (int64_t)m) >> 32) >> sh;
}

static inline int nn_requantize_single_hi_ok(int32_t shift, int32_t zp)
{
    if (shift < -31 || shift > -2) {
        return 0;
    }
    const int64_t c = (int64_t)(2 * zp + 1) * ((int64_t)1 << (-shift - 2));
    return c < ((int64_t)1 << 30) && c > -((int64_t)1 << 30);
}

/* nn_requantize_single of an int64 accumulator (the 16x8 FULLY_CONNECTED), the product exact in 96 bits
 * (multiplier >= 0, shift in [-31, 30]). */
static inline int32_t nn_requantize_single64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int ts = 31 - shift; /* 1..62 */
    const int64_t m = multiplier;
    /* x * m + 2^(ts-1) = H * 2^32 + L (H signed, 0 <= L < 2^32), exact */
    const uint64_t p_lo = (uint64_t)(uint32_t)x * (uint64_t)m + ((uint64_t)1 << (ts - 1));
    const int64_t h = (x >> 32) * m + (int64_t)(p_lo >> 32);
    const uint32_t l = (uint32_t)p_lo;
    int64_t r;
    if (ts >= 32) {
        r = h >> (ts - 32);
    } else {
        if (h >= ((int64_t)1 << 31) || h < -((int64_t)1 << 31)) {
            return NN_INT32_MIN;
        }
        r = (int64_t)((uint64_t)h << (32 - ts)) + (int64_t)(l >> ts);
    }
    return (r > NN_INT32_MAX || r < NN_INT32_MIN) ? NN_INT32_MIN : (int32_t)r;
}

/*
 * MultiplyByQuantizedMultiplier for an int64 accumulator as the 16x8 CONV_2D / DEPTHWISE_CONV_2D reference:
 * the multiplier reduced to Q15 (rounded), one rounding shift, int64 arithmetic wrapping and the result
 * truncated to int32 (measured: biases far beyond a trained model's wrap, they do not saturate).
 */
static inline int32_t nn_requantize64_q15(int64_t x, int32_t multiplier, int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int ts = 15 - shift; /* shift <= 14 */
    const uint64_t prod = (uint64_t)x * (uint64_t)reduced + ((uint64_t)1 << (ts - 1));
    return (int32_t)(uint32_t)(uint64_t)((int64_t)prod >> ts);
}

/* ---- gemmlowp-style fixed point (raw int32 values, Q(integer bits).(31 - integer bits)) ---- */

static inline int32_t nn_fp_mul(int32_t a, int32_t b) { return nn_srdhm(a, b); }

/* exp(x) for x in [-1/4, 0), Q0.31 in and out. */
static inline int32_t nn_exp_on_interval_neg_quarter_0(int32_t a)
{
    const int32_t constant_term = 1895147668;     /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;  /* 1/3 */
    int32_t x = a + (1 << 28);                    /* a + 1/8 */
    int32_t x2 = nn_fp_mul(x, x);
    int32_t x3 = nn_fp_mul(x2, x);
    int32_t x4 = nn_fp_mul(x2, x2);
    int32_t x4_over_4 = nn_rdbypot(x4, 2);
    int32_t poly = nn_rdbypot(nn_fp_mul(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + nn_fp_mul(constant_term, x + poly);
}

/* exp(a) for a <= 0; a has `integer_bits` integer bits; result Q0.31. */
static inline int32_t nn_exp_on_negative_values(int32_t a, int integer_bits)
{
    static const int32_t mults[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int frac_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t mask = one_quarter - 1;
    int32_t a_mod_q_minus_q = (a & mask) - one_quarter;
    int32_t result = nn_exp_on_interval_neg_quarter_0(nn_sat_lshift(a_mod_q_minus_q, integer_bits));
    int32_t remainder = (int32_t)((uint32_t)a_mod_q_minus_q - (uint32_t)a);
    for (int e = -2; e <= 4; e++) {
        if (integer_bits > e) {
            int sh = frac_bits + e;
            if (remainder & ((int32_t)1 << sh)) {
                result = nn_fp_mul(result, mults[e + 2]);
            }
        }
    }
    if (integer_bits > 5) {
        int32_t clamp = -((int32_t)1 << (36 - integer_bits));
        if (a < clamp) {
            result = 0;
        }
    }
    if (a == 0) {
        result = NN_INT32_MAX;
    }
    return result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out (Newton-Raphson as gemmlowp). */
static inline int32_t nn_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    int64_t sum = (int64_t)a + (int64_t)NN_INT32_MAX;
    int64_t sign = sum >= 0 ? 1 : -1;
    int32_t half_denominator = (int32_t)((sum + sign) / 2);
    const int32_t c48_17 = 1515870810;      /* Q2.29 48/17 */
    const int32_t cneg32_17 = -1010580540;  /* Q2.29 -32/17 */
    int32_t x = c48_17 + nn_fp_mul(half_denominator, cneg32_17);
    for (int i = 0; i < 3; i++) {
        int32_t hdx = nn_fp_mul(half_denominator, x);
        int32_t one_minus = ((int32_t)1 << 29) - hdx;
        x = x + nn_sat_lshift(nn_fp_mul(x, one_minus), 2);
    }
    return nn_sat_lshift(x, 1);
}

/* Reciprocal of a Q(x_integer_digits) sum; returns Q0.31 scale and the extra bits. */
static inline int32_t nn_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit)
{
    if (x <= 0) {
        x = 1; /* only reachable with corrupted parameters; keeps every shift below 32 */
    }
    int headroom_plus_one = __builtin_clz((uint32_t)x);
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - ((uint32_t)1 << 31));
    return nn_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

/* logistic(a), a with `integer_bits` integer bits, result Q0.31. */
static inline int32_t nn_logistic_fixed(int32_t a, int integer_bits)
{
    if (a == 0) {
        return (int32_t)1 << 30;
    }
    int32_t abs_a = a > 0 ? a : (int32_t)(0u - (uint32_t)a);
    int32_t neg = (int32_t)(0u - (uint32_t)abs_a);
    int32_t pos = nn_one_over_one_plus_x_for_x_in_0_1(nn_exp_on_negative_values(neg, integer_bits));
    return a > 0 ? pos : NN_INT32_MAX - pos;
}

#endif /* NN_QUANT_H */
