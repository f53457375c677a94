/*
 * Float helpers that stay exact and cheap without an FPU.
 *
 * The reference rounds float results half away from zero (std::round) after a float division or multiply.
 * With a single-precision FPU (and on hosts) that is done with the FPU; without one (the soft-float ABI, or
 * a core without FPU) every soft-float call costs tens of cycles, so the same results are computed from the
 * IEEE-754 bit patterns with integer arithmetic: the correctly rounded (nearest, ties to even) quotient or
 * product of the 24-bit significands, then the rounding to an integer. Both forms give identical results for
 * every finite input (tests/test_kernels_float.py compares them on millions of values).
 */
#ifndef NN_FLOAT_H
#define NN_FLOAT_H

#include <stdint.h>
#include <string.h>

#ifndef NN_FPU /* (a test defines it to check one form against the other) */
#if defined(__ARM_FP) && (__ARM_FP & 4)
#define NN_FPU 1 /* hardware single precision */
#elif defined(__arm__) || defined(__thumb__)
#define NN_FPU 0
#else
#define NN_FPU 1 /* hosts */
#endif
#endif

static inline uint32_t nn_f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

#define NN_SAT_POS ((int32_t)0x7FFFFFFF)
#define NN_SAT_NEG ((int32_t)(-0x7FFFFFFF - 1))

/*
 * round_half_away(m * 2^p) for a 24-bit significand m (2^23 <= m < 2^24), saturating to int32 (a value
 * of 2^31 or more gives INT32_MAX, as the float path's clamp does).
 */
static inline int32_t nn_round_scaled(uint32_t m, int32_t p, uint32_t neg)
{
    uint32_t r;
    if (p >= 0) {
        if (p > 7) {
            return neg ? NN_SAT_NEG : NN_SAT_POS;
        }
        r = m << p;
        if (r >= 0x80000000u) {
            return neg ? NN_SAT_NEG : NN_SAT_POS;
        }
    } else if (p < -24) {
        return 0;
    } else {
        const uint32_t t = (uint32_t)-p;
        r = (m + (1u << (t - 1))) >> t;
    }
    return neg ? -(int32_t)r : (int32_t)r;
}

/* round_half_away(v) to int32, saturating; NaN gives 0. */
static inline int32_t nn_round_f32_i32(float v)
{
#if NN_FPU
    if (v != v) {
        return 0;
    }
    if (v >= 2147483520.0f) {
        return NN_SAT_POS;
    }
    if (v < -2147483520.0f) {
        return NN_SAT_NEG;
    }
    int32_t i = (int32_t)v; /* toward zero */
    const float f = v - (float)i; /* exact: |v| < 2^31 and i is v's integer part */
    if (f >= 0.5f) {
        i++;
    } else if (f <= -0.5f) {
        i--;
    }
    return i;
#else
    const uint32_t u = nn_f32_bits(v);
    const uint32_t e = (u >> 23) & 0xFFu;
    if (e == 0xFFu) {
        return (u & 0x7FFFFFu) ? 0 : ((u >> 31) ? NN_SAT_NEG : NN_SAT_POS);
    }
    if (e == 0) {
        return 0; /* zero and subnormals */
    }
    return nn_round_scaled((u & 0x7FFFFFu) | 0x800000u, (int32_t)e - 150, u >> 31);
#endif
}

/* A divisor (the quantization scale: positive, finite, normal) prepared for nn_div_round. */
typedef struct {
    float s;
    uint32_t ms; /* significand, 2^23..2^24-1 */
    int32_t es;  /* s = ms * 2^es */
} nn_divisor;

static inline void nn_divisor_init(nn_divisor *d, float s)
{
    const uint32_t u = nn_f32_bits(s);
    d->s = s;
    d->ms = (u & 0x7FFFFFu) | 0x800000u;
    d->es = (int32_t)((u >> 23) & 0xFFu) - 150;
}

/* round_half_away(float(x / s)), the float division correctly rounded, saturating; NaN gives 0. */
static inline int32_t nn_div_round(float x, const nn_divisor *d)
{
#if NN_FPU
    return nn_round_f32_i32(x / d->s);
#else
    const uint32_t u = nn_f32_bits(x);
    const uint32_t e = (u >> 23) & 0xFFu, neg = u >> 31;
    if (e == 0xFFu) {
        return (u & 0x7FFFFFu) ? 0 : (neg ? NN_SAT_NEG : NN_SAT_POS);
    }
    if (e == 0) {
        return 0; /* |x| < 2^-126: the quotient is far below 1/2 for any quantization scale */
    }
    const uint32_t mx = (u & 0x7FFFFFu) | 0x800000u, ms = d->ms;
    const int32_t dexp = (int32_t)e - 150 - d->es; /* x / s = (mx / ms) * 2^dexp */
    if (dexp > 31) {
        return neg ? NN_SAT_NEG : NN_SAT_POS; /* |x / s| > 2^31 */
    }
    if (dexp < -27) {
        return 0; /* |x / s| < 2^-26 */
    }
    /* the 24-bit quotient significand: floor(mx * 2^k / ms), k = 23 (mx >= ms) or 24, in 3 exact steps */
    const int big = mx >= ms;
    uint32_t r = mx << (big ? 7 : 8);
    uint32_t q = r / ms;
    r -= q * ms;
    for (int step = 0; step < 2; step++) {
        r <<= 8;
        const uint32_t qi = r / ms;
        r -= qi * ms;
        q = (q << 8) | qi;
    }
    /* round to nearest, ties to even (the FPU's division) */
    if (2u * r > ms || (2u * r == ms && (q & 1u))) {
        q++;
    }
    int32_t p = dexp - (big ? 23 : 24);
    if (q == 0x1000000u) {
        q = 0x800000u;
        p++;
    }
    return nn_round_scaled(q, p, neg);
#endif
}

/* round_half_away(float(x * c)), the float product correctly rounded, saturating; NaN gives 0 (c finite). */
static inline int32_t nn_mul_round(float x, float c)
{
#if NN_FPU
    return nn_round_f32_i32(x * c);
#else
    const uint32_t u = nn_f32_bits(x), w = nn_f32_bits(c);
    const uint32_t e = (u >> 23) & 0xFFu, ec = (w >> 23) & 0xFFu, neg = (u ^ w) >> 31;
    if (e == 0xFFu) {
        return (u & 0x7FFFFFu) ? 0 : (neg ? NN_SAT_NEG : NN_SAT_POS);
    }
    if (e == 0 || ec == 0) {
        return 0; /* a zero or subnormal factor: the product is far below 1/2 (c is a scale inverse) */
    }
    const uint64_t prod = (uint64_t)((u & 0x7FFFFFu) | 0x800000u) * (uint64_t)((w & 0x7FFFFFu) | 0x800000u);
    int32_t p = (int32_t)e + (int32_t)ec - 300; /* x * c = prod * 2^p, prod in [2^46, 2^48) */
    /* the 24-bit significand of prod, rounded to nearest, ties to even */
    const int top = prod >= ((uint64_t)1 << 47);
    const int sh = top ? 24 : 23;
    uint32_t q = (uint32_t)(prod >> sh);
    const uint64_t rem = prod & (((uint64_t)1 << sh) - 1u), half = (uint64_t)1 << (sh - 1);
    if (rem > half || (rem == half && (q & 1u))) {
        q++;
    }
    p += sh;
    if (q == 0x1000000u) {
        q = 0x800000u;
        p++;
    }
    return nn_round_scaled(q, p, neg);
#endif
}

/* An order-preserving int32 key of a float (not NaN): key(a) < key(b) iff a < b, with -0 just below +0. */
static inline int32_t nn_f32_key(float x)
{
    const int32_t i = (int32_t)nn_f32_bits(x);
    return i >= 0 ? i : (int32_t)((uint32_t)i ^ 0x7FFFFFFFu);
}

#endif
