/* Run-time input quantization of the dynamic-range (hybrid) kernels, shared by conv2d_hybrid_ref,
 * depthwise_conv2d_hybrid_ref and fully_connected_hybrid_ref (one copy in the image). */
#include <math.h>

#include "nn_float.h"
#include "nn_hybrid_quant.h"

/* The smallest and largest of n >= 1 floats (order-preserving integer keys: no float compares, which are
 * library calls without an FPU; the values are those of std::minmax_element for non-NaN input). */
static inline void nn_f32_minmax(const float *x, int32_t n, float *lo, float *hi)
{
    int32_t klo = nn_f32_key(x[0]), khi = klo, ilo = 0, ihi = 0;
    for (int32_t i = 1; i < n; i++) {
        const int32_t k = nn_f32_key(x[i]);
        if (k < klo) {
            klo = k;
            ilo = i;
        }
        if (k > khi) {
            khi = k;
            ihi = i;
        }
    }
    *lo = x[ilo];
    *hi = x[ihi];
}

/* Symmetric: q = round(x * 127 / max|x|) in [-127, 127]; returns the scale (1 if all zero). */
static float symmetric_quantize(const float *x, int32_t n, int8_t *q)
{
    float lo = 0.0f, hi = 0.0f;
    if (n > 0) {
        nn_f32_minmax(x, n, &lo, &hi);
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
        int32_t v = nn_mul_round(x[i], inv);
        q[i] = (int8_t)(v > 127 ? 127 : (v < -127 ? -127 : v));
    }
    return range / 127.0f;
}

/*
 * Asymmetric: x ~= scale * (q - offset); returns the scale (1 if min == max == 0), offset via *offset.
 * All in single precision, as the interpreter's (measured on its temporaries: the scale is
 * (max - min) / 255 in float, the offset the rounded float zero point of smaller error, and each value
 * offset + round(x * (1 / scale)), rounded before the offset is added).
 */
static float asymmetric_quantize(const float *x, int32_t n, int8_t *q, int32_t *offset)
{
    float lo = 0.0f, hi = 0.0f;
    if (n > 0) {
        nn_f32_minmax(x, n, &lo, &hi);
    }
    const float rmin = lo < 0.0f ? lo : 0.0f;
    const float rmax = hi > 0.0f ? hi : 0.0f;
    if (rmin == rmax) {
        for (int32_t i = 0; i < n; i++) {
            q[i] = 0;
        }
        *offset = 0;
        return 1.0f;
    }
    const float qmin = -128.0f, qmax = 127.0f;
    const float scale = (rmax - rmin) / (qmax - qmin);
    const float zp_from_min = qmin - rmin / scale;
    const float zp_from_max = qmax - rmax / scale;
    const float err_min = fabsf(qmin) + fabsf(rmin / scale);
    const float err_max = fabsf(qmax) + fabsf(rmax / scale);
    const float zp = err_min < err_max ? zp_from_min : zp_from_max;
    int32_t nudged;
    if (zp > qmin && zp < qmax) {
        nudged = nn_round_f32_i32(zp);
    } else if (zp >= qmax) {
        nudged = 127;
    } else {
        nudged = -128; /* also NaN (only from non-finite inputs) */
    }
    const float inv = 1.0f / scale;
    for (int32_t i = 0; i < n; i++) {
        int32_t v = nn_mul_round(x[i], inv);
        v = v > 127 - nudged ? 127 - nudged : (v < -128 - nudged ? -128 - nudged : v);
        q[i] = (int8_t)(nudged + v);
    }
    *offset = nudged;
    return scale;
}

float quantize_input_hybrid_ref(const float *x, int32_t n, int8_t *q, int32_t asymmetric, int32_t *offset)
{
    *offset = 0;
    return asymmetric ? asymmetric_quantize(x, n, q, offset) : symmetric_quantize(x, n, q);
}
