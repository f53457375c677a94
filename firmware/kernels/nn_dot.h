/*
 * The reference kernels' inner loops: dot products of int8 weights with int8 activations plus an offset,
 * portable C. Where the target reads unaligned words (Armv7-M and up, hosts) four bytes come in with one
 * 32-bit load and are taken apart with shifts (one SXTB each on Arm); elsewhere (Armv6-M) byte by byte.
 * int32 sums wrap as the reference's (-fwrapv).
 */
#ifndef NN_DOT_H
#define NN_DOT_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_UNALIGNED) || defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
#define NN_DOT_WORDS 1
#else
#define NN_DOT_WORDS 0
#endif

static inline uint32_t nn_dot_load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Byte k (0..3) of a little-endian word, sign-extended. */
#define NN_DOT_B(v, k) ((int32_t)(int8_t)((v) >> (8 * (k))))

/* sum over i < n of w[i] * (x[i] + x_offset) */
static inline int32_t nn_dot_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t x_offset)
{
    int32_t acc = 0;
    int32_t i = 0;
#if NN_DOT_WORDS
    for (; i + 4 <= n; i += 4) {
        const uint32_t xv = nn_dot_load4(x + i), wv = nn_dot_load4(w + i);
        acc += NN_DOT_B(wv, 0) * (NN_DOT_B(xv, 0) + x_offset) + NN_DOT_B(wv, 1) * (NN_DOT_B(xv, 1) + x_offset) +
               NN_DOT_B(wv, 2) * (NN_DOT_B(xv, 2) + x_offset) + NN_DOT_B(wv, 3) * (NN_DOT_B(xv, 3) + x_offset);
    }
#endif
    for (; i < n; i++) {
        acc += (int32_t)w[i] * ((int32_t)x[i] + x_offset);
    }
    return acc;
}

/* The same for two weight rows against one activation vector: *a0 += dot(x, w0), *a1 += dot(x, w1). */
static inline void nn_dot2_s8(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n, int32_t x_offset,
                              int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0, s1 = *a1;
    const int8_t *const end = x + n;
#if NN_DOT_WORDS
    /* pointers stepped after their loads (post-increment addressing: no address computed just before a load),
     * each product added straight into its sum (multiply-accumulates) */
    for (const int8_t *const end4 = x + (n & ~3); x < end4; x += 4, w0 += 4, w1 += 4) {
        const uint32_t xv = nn_dot_load4(x), v0 = nn_dot_load4(w0), v1 = nn_dot_load4(w1);
        const int32_t x0 = NN_DOT_B(xv, 0) + x_offset, x1 = NN_DOT_B(xv, 1) + x_offset;
        const int32_t x2 = NN_DOT_B(xv, 2) + x_offset, x3 = NN_DOT_B(xv, 3) + x_offset;
        s0 += NN_DOT_B(v0, 0) * x0;
        s1 += NN_DOT_B(v1, 0) * x0;
        s0 += NN_DOT_B(v0, 1) * x1;
        s1 += NN_DOT_B(v1, 1) * x1;
        s0 += NN_DOT_B(v0, 2) * x2;
        s1 += NN_DOT_B(v1, 2) * x2;
        s0 += NN_DOT_B(v0, 3) * x3;
        s1 += NN_DOT_B(v1, 3) * x3;
    }
#endif
    for (; x < end; x++, w0++, w1++) {
        const int32_t xi = (int32_t)*x + x_offset;
        s0 += (int32_t)*w0 * xi;
        s1 += (int32_t)*w1 * xi;
    }
    *a0 = s0;
    *a1 = s1;
}

/* Four weight rows against one activation vector: a[r] += dot(x, w[r]). */
static inline void nn_dot4_s8(const int8_t *x, const int8_t *const w[4], int32_t n, int32_t x_offset, int32_t a[4])
{
    int32_t s0 = a[0], s1 = a[1], s2 = a[2], s3 = a[3];
    const int8_t *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    int32_t i = 0;
#if NN_DOT_WORDS
    for (; i + 4 <= n; i += 4) {
        const uint32_t xv = nn_dot_load4(x + i);
        const int32_t x0 = NN_DOT_B(xv, 0) + x_offset, x1 = NN_DOT_B(xv, 1) + x_offset;
        const int32_t x2 = NN_DOT_B(xv, 2) + x_offset, x3 = NN_DOT_B(xv, 3) + x_offset;
        uint32_t v = nn_dot_load4(w0 + i);
        s0 += NN_DOT_B(v, 0) * x0 + NN_DOT_B(v, 1) * x1 + NN_DOT_B(v, 2) * x2 + NN_DOT_B(v, 3) * x3;
        v = nn_dot_load4(w1 + i);
        s1 += NN_DOT_B(v, 0) * x0 + NN_DOT_B(v, 1) * x1 + NN_DOT_B(v, 2) * x2 + NN_DOT_B(v, 3) * x3;
        v = nn_dot_load4(w2 + i);
        s2 += NN_DOT_B(v, 0) * x0 + NN_DOT_B(v, 1) * x1 + NN_DOT_B(v, 2) * x2 + NN_DOT_B(v, 3) * x3;
        v = nn_dot_load4(w3 + i);
        s3 += NN_DOT_B(v, 0) * x0 + NN_DOT_B(v, 1) * x1 + NN_DOT_B(v, 2) * x2 + NN_DOT_B(v, 3) * x3;
    }
#endif
    for (; i < n; i++) {
        const int32_t xi = (int32_t)x[i] + x_offset;
        s0 += (int32_t)w0[i] * xi;
        s1 += (int32_t)w1[i] * xi;
        s2 += (int32_t)w2[i] * xi;
        s3 += (int32_t)w3[i] * xi;
    }
    a[0] = s0;
    a[1] = s1;
    a[2] = s2;
    a[3] = s3;
}

/* The taps i (0 <= i < k) with 0 <= start + i * dil < size: [*lo, *hi) (empty when none). dil >= 1. */
static inline void nn_valid_taps(int32_t start, int32_t dil, int32_t k, int32_t size, int32_t *lo, int32_t *hi)
{
    int32_t a = start < 0 ? (-start + dil - 1) / dil : 0;
    int32_t b = start + (k - 1) * dil < size ? k : (size - 1 - start < 0 ? 0 : (size - 1 - start) / dil + 1);
    if (a > k) {
        a = k;
    }
    *lo = a;
    *hi = b < a ? a : b;
}

#endif
