/* Run-time input quantization for dynamic-range (hybrid) kernels: symmetric and asymmetric int8. */
#ifndef NN_HYBRID_QUANT_H
#define NN_HYBRID_QUANT_H

#include <math.h>
#include <stdint.h>

static inline int32_t nn_round_to_i32(float v)
{
    float r = roundf(v);
    if (r != r) {
        return 0;
    }
    if (r > 2147483520.0f) {
        return 0x7FFFFFFF;
    }
    if (r < -2147483648.0f) {
        return (int32_t)(-0x7FFFFFFF - 1);
    }
    return (int32_t)r;
}

/* Symmetric: q = round(x * 127 / max|x|) in [-127, 127]; returns the scale (1 if all zero). */
static inline float nn_symmetric_quantize(const float *x, int32_t n, int8_t *q)
{
    float lo = 0.0f, hi = 0.0f;
    if (n > 0) {
        lo = hi = x[0];
    }
    for (int32_t i = 1; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float range = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
    if (range == 0.0f) {
        for (int32_t i = 0; i < n; i++) {
            q[i] = 0;
        }
        return 1.0f;
    }
    const float inv = 127.0f / range;
    for (int32_t i = 0; i < n; i++) {
        int32_t v = nn_round_to_i32(x[i] * inv);
        q[i] = (int8_t)(v > 127 ? 127 : (v < -127 ? -127 : v));
    }
    return range / 127.0f;
}

/* Asymmetric: x ~= scale * (q - offset); returns the scale (1 if min == max == 0), offset via *offset. */
static inline float nn_asymmetric_quantize(const float *x, int32_t n, int8_t *q, int32_t *offset)
{
    float lo = 0.0f, hi = 0.0f;
    if (n > 0) {
        lo = hi = x[0];
    }
    for (int32_t i = 1; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    const double rmin = (double)(lo < 0.0f ? lo : 0.0f);
    const double rmax = (double)(hi > 0.0f ? hi : 0.0f);
    if (rmin == rmax) {
        for (int32_t i = 0; i < n; i++) {
            q[i] = 0;
        }
        *offset = 0;
        return 1.0f;
    }
    const double qmin = -128.0, qmax = 127.0;
    const double scale = (rmax - rmin) / (qmax - qmin);
    const double zp_from_min = qmin - rmin / scale;
    const double zp_from_max = qmax - rmax / scale;
    const double err_min = fabs(qmin) + fabs(rmin / scale);
    const double err_max = fabs(qmax) + fabs(rmax / scale);
    const double zp = err_min < err_max ? zp_from_min : zp_from_max;
    int32_t nudged;
    if (zp > qmin && zp < qmax) {
        nudged = (int32_t)round(zp);
    } else if (zp >= qmax) {
        nudged = 127;
    } else {
        nudged = -128; /* also NaN (only from non-finite inputs) */
    }
    const float scale_f = (float)scale;
    const float inv = (float)(1.0 / (double)scale_f);
    for (int32_t i = 0; i < n; i++) {
        int32_t v = nn_round_to_i32((float)nudged + x[i] * inv);
        q[i] = (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
    }
    *offset = nudged;
    return scale_f;
}

#endif
