/*
 * The few Armv7E-M DSP intrinsics the SIMD kernels use. On a core with the DSP extension they are the
 * ACLE intrinsics of <arm_acle.h>; elsewhere (host exactness builds, cores without DSP) portable C with
 * the same results, so the SIMD code path can be tested bit for bit on the host.
 */
#ifndef NN_SIMD_H
#define NN_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
static inline uint32_t nn_ror(uint32_t x, uint32_t n) { return (x >> n) | (x << ((32u - n) & 31u)); }
static inline uint32_t nn_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }
static inline uint32_t nn_sadd16(uint32_t a, uint32_t b) { return (uint32_t)__sadd16((int32_t)a, (int32_t)b); }
static inline int32_t nn_smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad((int32_t)a, (int32_t)b, acc); }
static inline int32_t nn_smlabb(uint32_t a, uint32_t b, int32_t acc) { return __smlabb((int32_t)a, (int32_t)b, acc); }
static inline int32_t nn_smlatt(uint32_t a, uint32_t b, int32_t acc) { return __smlatt((int32_t)a, (int32_t)b, acc); }
/* SXTB16 of the operand rotated right by 8 bits (bytes 1 and 3), one instruction. */
static inline uint32_t nn_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* a + SXTB16(x) (bytes 0 and 2) lane by lane, and a + SXTB16(x ror 8) (bytes 1 and 3): one SXTAB16 each. */
static inline uint32_t nn_sxtab16(uint32_t a, uint32_t x) { return (uint32_t)__sxtab16((int32_t)a, (int32_t)x); }
static inline uint32_t nn_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
#else
static inline uint32_t nn_ror(uint32_t x, uint32_t n) { return (x >> n) | (x << ((32u - n) & 31u)); }
static inline uint32_t nn_sxtb16(uint32_t x)
{
    uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xFFu);
    uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xFFu);
    return lo | (hi << 16);
}
static inline uint32_t nn_sadd16(uint32_t a, uint32_t b)
{
    uint32_t lo = (uint32_t)(uint16_t)((uint16_t)a + (uint16_t)b);
    uint32_t hi = (uint32_t)(uint16_t)((uint16_t)(a >> 16) + (uint16_t)(b >> 16));
    return lo | (hi << 16);
}
static inline int32_t nn_lo16(uint32_t x) { return (int32_t)(int16_t)(x & 0xFFFFu); }
static inline int32_t nn_hi16(uint32_t x) { return (int32_t)(int16_t)(x >> 16); }
static inline int32_t nn_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(nn_lo16(a) * nn_lo16(b)) + (uint32_t)(nn_hi16(a) * nn_hi16(b)));
}
static inline int32_t nn_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(nn_lo16(a) * nn_lo16(b)));
}
static inline int32_t nn_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(nn_hi16(a) * nn_hi16(b)));
}
/* SXTB16 of the operand rotated right by 8 bits (bytes 1 and 3). */
static inline uint32_t nn_sxtb16_ror8(uint32_t x) { return nn_sxtb16(nn_ror(x, 8)); }
static inline uint32_t nn_sxtab16(uint32_t a, uint32_t x) { return nn_sadd16(a, nn_sxtb16(x)); }
static inline uint32_t nn_sxtab16_ror8(uint32_t a, uint32_t x) { return nn_sadd16(a, nn_sxtb16_ror8(x)); }
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* Saturate to int8 (SSAT #8). */
static inline int32_t nn_ssat8(int32_t x) { return __ssat(x, 8); }
#else
static inline int32_t nn_ssat8(int32_t x) { return x < -128 ? -128 : (x > 127 ? 127 : x); }
#endif

/* Unaligned-safe 32-bit load (a single LDR on Armv7-M). */
static inline uint32_t nn_read32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Unaligned-safe 32-bit store (a single STR on Armv7-M). */
static inline void nn_write32(void *p, uint32_t v) { memcpy(p, &v, 4); }

/* Two int16 in one word: (lo, hi). */
static inline uint32_t nn_pack16(int32_t lo, int32_t hi) { return (uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16); }

#endif
