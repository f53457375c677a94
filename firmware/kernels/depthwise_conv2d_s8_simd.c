/*
 * DEPTHWISE_CONV_2D, int8, Armv7E-M SIMD. Depth multiplier 1 (others, and the never-seen multiplier
 * INT32_MIN, use the reference kernel); any kernel size, stride, padding and dilation.
 *
 * Channels four at a time, channel group outermost, so per group the requantization constants, the
 * weights of a 3x3 kernel (SXTB16-expanded to (w0, w2) / (w1, w3) halfword pairs) and the input-offset
 * term of a full window (offset * sum of the group's weights, folded into the bias) are derived once.
 * Output pixels whose window lies wholly inside the input (the range is computed once per layer, no
 * per-tap bounds checks) then cost, per tap, one 32-bit input load, two SXTB16 and four SMLABB/SMLATT
 * (3x3: fully unrolled). Pixels on the border visit only their valid taps (ranges computed per pixel)
 * and add the input offset with SADD16. The channel tail (1..3) goes in a pair and a single channel.
 * All int32 sums are exact (wrapping adds, order-independent) and the requantization below is
 * MultiplyByQuantizedMultiplier in an equivalent form, so the output is bit-identical to the reference.
 */
#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

/* Valid kernel indices [*lo, *hi) with 0 <= start + i * dil < n, 0 <= i < k (dil >= 1). */
static inline void dw_valid_range(int32_t start, int32_t dil, int32_t k, int32_t n, int32_t *lo, int32_t *hi)
{
    int32_t a = 0, b = k;
    if (dil == 1) {
        if (start < 0) {
            a = -start;
        }
        if (start + k > n) {
            b = n - start < 0 ? 0 : n - start;
        }
    } else {
        if (start < 0) {
            a = (-start + dil - 1) / dil;
        }
        if (start + (k - 1) * dil >= n) {
            b = (n - 1 - start) < 0 ? 0 : (n - 1 - start) / dil + 1;
        }
    }
    if (a > k) {
        a = k;
    }
    if (b < a) {
        b = a;
    }
    *lo = a;
    *hi = b;
}

/* Output offset and activation clamp applied after the requantization. */
typedef struct {
    int32_t out_off, act_min, act_max;
} dw_oparams;

/* Requires m != INT32_MIN (checked by the caller; see nn_requantize_ch). */
static inline uint32_t dw_requant_k(int32_t acc, const nn_requant_ch *k, const dw_oparams *q)
{
    int32_t r = nn_requantize_ch(acc, k) + q->out_off;
    r = r < q->act_min ? q->act_min : r;
    r = r > q->act_max ? q->act_max : r;
    return (uint8_t)r;
}

static inline int32_t dw_requant(int32_t acc, int32_t m, int32_t s, const dw_oparams *q)
{
    nn_requant_ch k;
    nn_requant_ch_init(&k, m, s);
    return (int8_t)dw_requant_k(acc, &k, q);
}

/* One 4-channel tap: input word iv, weight word fv; OFFSET adds the input offset pairs. */
#define DW_TAP4(iv, fv, OFFSET)                                                                                       \
    do {                                                                                                              \
        uint32_t ie_ = nn_sxtb16(iv), io_ = nn_sxtb16_ror8(iv);                                                       \
        if (OFFSET) {                                                                                                 \
            ie_ = nn_sadd16(ie_, off2);                                                                               \
            io_ = nn_sadd16(io_, off2);                                                                               \
        }                                                                                                             \
        const uint32_t fe_ = nn_sxtb16(fv), fo_ = nn_sxtb16_ror8(fv);                                                 \
        a0 = nn_smlabb(ie_, fe_, a0);                                                                                 \
        a2 = nn_smlatt(ie_, fe_, a2);                                                                                 \
        a1 = nn_smlabb(io_, fo_, a1);                                                                                 \
        a3 = nn_smlatt(io_, fo_, a3);                                                                                 \
    } while (0)

/* One 4-channel tap of a full window with pre-expanded weights fx[2t] = (w0, w2), fx[2t + 1] = (w1, w3). */
#define DW_TAP4X(iv_expr, t)                                                                                          \
    do {                                                                                                              \
        const uint32_t iv_ = (iv_expr);                                                                               \
        const uint32_t ie_ = nn_sxtb16(iv_), io_ = nn_sxtb16_ror8(iv_);                                               \
        a0 = nn_smlabb(ie_, fx[2 * (t)], a0);                                                                         \
        a2 = nn_smlatt(ie_, fx[2 * (t)], a2);                                                                         \
        a1 = nn_smlabb(io_, fx[2 * (t) + 1], a1);                                                                     \
        a3 = nn_smlatt(io_, fx[2 * (t) + 1], a3);                                                                     \
    } while (0)

/* Geometry shared by the helpers. */
typedef struct {
    int32_t C, H, W, kh, kw, dil_h, dil_w, col_step, row_step, frow_step;
    uint32_t off2;
} dw_geom;

/* Four channels of one output pixel whose window is clipped by the input border: only the valid taps,
 * input offset added per tap (padding contributes nothing). acc[] holds the bias on entry. */
static inline void dw_px4_acc(const dw_geom *g, const int8_t *in_b, const int8_t *filt, int32_t y0, int32_t x0,
                              int32_t acc[4])
{
    int32_t ky0, ky1, kx0, kx1;
    dw_valid_range(y0, g->dil_h, g->kh, g->H, &ky0, &ky1);
    dw_valid_range(x0, g->dil_w, g->kw, g->W, &kx0, &kx1);
    const int32_t ny = ky1 - ky0, nx = kx1 - kx0;
    if (ny <= 0 || nx <= 0) {
        return;
    }
    const uint32_t off2 = g->off2;
    const int32_t C = g->C, col_step = g->col_step;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *ir = in_b + ((y0 + ky0 * g->dil_h) * g->W + (x0 + kx0 * g->dil_w)) * C;
    const int8_t *fr = filt + (ky0 * g->kw + kx0) * C;
    for (int32_t ky = ny; ky > 0; ky--) {
        const int8_t *ii = ir;
        const int8_t *ff = fr;
        for (int32_t kx = nx; kx > 0; kx--) {
            const uint32_t iv = nn_read32(ii);
            const uint32_t fv = nn_read32(ff);
            ii += col_step;
            ff += C;
            DW_TAP4(iv, fv, 1);
        }
        ir += g->row_step;
        fr += g->frow_step;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static __attribute__((noinline)) void dw_px4_border(const dw_geom *g, const int8_t *in_b, const int8_t *filt,
                                                    int32_t y0, int32_t x0, const int32_t bias4[4],
                                                    const nn_requant_ch kq[4], const dw_oparams *q, int8_t *o)
{
    int32_t acc[4] = {bias4[0], bias4[1], bias4[2], bias4[3]};
    dw_px4_acc(g, in_b, filt, y0, x0, acc);
    const uint32_t r0 = dw_requant_k(acc[0], &kq[0], q);
    const uint32_t r1 = dw_requant_k(acc[1], &kq[1], q);
    const uint32_t r2 = dw_requant_k(acc[2], &kq[2], q);
    const uint32_t r3 = dw_requant_k(acc[3], &kq[3], q);
    nn_write32(o, r0 | (r1 << 8) | (r2 << 16) | (r3 << 24));
}

/* First output index whose window start (o * stride - pad) is >= 0, and one past the last whose window
 * end (start + (k - 1) * dil) is < n; clamped to [0, out]. */
static inline void dw_full_range(int32_t stride, int32_t pad, int32_t k, int32_t dil, int32_t n, int32_t out,
                                 int32_t *lo, int32_t *hi)
{
    int32_t a = pad <= 0 ? 0 : (pad + stride - 1) / stride;
    const int32_t last = n - 1 - (k - 1) * dil + pad; /* largest o * stride allowed */
    int32_t b = last < 0 ? 0 : last / stride + 1;
    if (a > out) {
        a = out;
    }
    if (b > out) {
        b = out;
    }
    if (b < a) {
        b = a;
    }
    *lo = a;
    *hi = b;
}

void depthwise_conv2d_s8_simd(const nn_conv_params *p, const nn_dims *in_d, const int8_t *in, const nn_dims *f_d,
                              const int8_t *filter, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                              const nn_dims *out_d, int8_t *out)
{
    int32_t simple = p->depth_multiplier == 1 && p->dil_h >= 1 && p->dil_w >= 1;
    for (int32_t c = 0; simple && c < in_d->c; c++) {
        simple = mult[c] != NN_INT32_MIN; /* the one saturating case of the doubling high multiply */
    }
    if (!simple) {
        depthwise_conv2d_s8_ref(p, in_d, in, f_d, filter, bias, mult, shift, out_d, out);
        return;
    }
    const int32_t C = in_d->c, kh = f_d->h, kw = f_d->w;
    const int32_t H = in_d->h, W = in_d->w;
    const int32_t OH = out_d->h, OW = out_d->w;
    const int32_t C4 = C & ~3;
    const int32_t C2 = C & ~1;
    const int32_t in_off = p->input_offset;
    const uint32_t off2 = nn_pack16(in_off, in_off);
    const int32_t col_step = p->dil_w * C;       /* next kernel column in the input */
    const int32_t row_step = p->dil_h * W * C;   /* next kernel row in the input */
    const int32_t frow_step = kw * C;            /* next kernel row in the filter */
    const int32_t nk = kh * kw;
    const dw_oparams q = {p->output_offset, p->act_min, p->act_max};
    const dw_geom g = {C, H, W, kh, kw, p->dil_h, p->dil_w, col_step, row_step, frow_step, off2};
    const int32_t px_step = p->stride_w * C;
    const int32_t k33 = kh == 3 && kw == 3;
    int32_t oy_lo, oy_hi, ox_lo, ox_hi;
    dw_full_range(p->stride_h, p->pad_h, kh, p->dil_h, H, OH, &oy_lo, &oy_hi);
    dw_full_range(p->stride_w, p->pad_w, kw, p->dil_w, W, OW, &ox_lo, &ox_hi);

    /* Four channels at a time: channel group outer, so its requantization constants and the input-offset
     * term of a full window (offset * sum of its weights, folded into the bias) are derived once. */
    for (int32_t c = 0; c < C4; c += 4) {
        nn_requant_ch kq[4];
        nn_requant_ch_init(&kq[0], mult[c], shift[c]);
        nn_requant_ch_init(&kq[1], mult[c + 1], shift[c + 1]);
        nn_requant_ch_init(&kq[2], mult[c + 2], shift[c + 2]);
        nn_requant_ch_init(&kq[3], mult[c + 3], shift[c + 3]);
        int32_t b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        if (bias) {
            b0 = bias[c];
            b1 = bias[c + 1];
            b2 = bias[c + 2];
            b3 = bias[c + 3];
        }
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int32_t t = 0; t < nk; t++) {
            const int8_t *fw = filter + t * C + c;
            s0 += fw[0];
            s1 += fw[1];
            s2 += fw[2];
            s3 += fw[3];
        }
        const int32_t bb[4] = {b0, b1, b2, b3};
        uint32_t fx[18];
        if (k33) {
            for (int32_t t = 0; t < 9; t++) {
                const uint32_t fv = nn_read32(filter + t * C + c);
                fx[2 * t] = nn_sxtb16(fv);
                fx[2 * t + 1] = nn_sxtb16_ror8(fv);
            }
        }
        /* wrapping adds: the final int32 sums are the same in any order */
        const int32_t fb[4] = {(int32_t)((uint32_t)b0 + (uint32_t)(s0 * in_off)),
                               (int32_t)((uint32_t)b1 + (uint32_t)(s1 * in_off)),
                               (int32_t)((uint32_t)b2 + (uint32_t)(s2 * in_off)),
                               (int32_t)((uint32_t)b3 + (uint32_t)(s3 * in_off))};
        int8_t *o = out + c;
        for (int32_t b = 0; b < out_d->n; b++) {
            const int8_t *in_b = in + b * H * W * C + c;
            for (int32_t oy = 0; oy < OH; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_h;
                const int32_t row_full = oy >= oy_lo && oy < oy_hi;
                const int32_t fx_lo = row_full ? ox_lo : OW, fx_hi = row_full ? ox_hi : OW;
                int32_t ox = 0;
                for (; ox < fx_lo; ox++, o += C) {
                    dw_px4_border(&g, in_b, filter + c, y0, ox * p->stride_w - p->pad_w, bb, kq, &q, o);
                }
                /* full windows: offset folded into the bias, no bounds checks, no SADD16 */
                const int8_t *ip = in_b;
                if (ox < fx_hi) {
                    ip += (y0 * W + ox * p->stride_w - p->pad_w) * C;
                }
                for (; ox < fx_hi; ox++, o += C, ip += px_step) {
                    int32_t a0 = fb[0], a1 = fb[1], a2 = fb[2], a3 = fb[3];
                    const int8_t *ir = ip;
                    const int8_t *fr = filter + c;
                    if (k33) {
                        /* 3x3: weights pre-expanded per group (fx), fully unrolled, constant offsets */
                        const int8_t *r0p = ir, *r1p = ir + row_step, *r2p = ir + 2 * row_step;
                        DW_TAP4X(nn_read32(r0p), 0);
                        DW_TAP4X(nn_read32(r0p + col_step), 1);
                        DW_TAP4X(nn_read32(r0p + 2 * col_step), 2);
                        DW_TAP4X(nn_read32(r1p), 3);
                        DW_TAP4X(nn_read32(r1p + col_step), 4);
                        DW_TAP4X(nn_read32(r1p + 2 * col_step), 5);
                        DW_TAP4X(nn_read32(r2p), 6);
                        DW_TAP4X(nn_read32(r2p + col_step), 7);
                        DW_TAP4X(nn_read32(r2p + 2 * col_step), 8);
                        (void)fr;
                    } else {
                        for (int32_t ky = kh; ky > 0; ky--) {
                            const int8_t *ii = ir;
                            const int8_t *ff = fr;
                            for (int32_t kx = kw; kx > 0; kx--) {
                                const uint32_t iv = nn_read32(ii);
                                const uint32_t fv = nn_read32(ff);
                                ii += col_step;
                                ff += C;
                                DW_TAP4(iv, fv, 0);
                            }
                            ir += row_step;
                            fr += frow_step;
                        }
                    }
                    const uint32_t r0 = dw_requant_k(a0, &kq[0], &q);
                    const uint32_t r1 = dw_requant_k(a1, &kq[1], &q);
                    const uint32_t r2 = dw_requant_k(a2, &kq[2], &q);
                    const uint32_t r3 = dw_requant_k(a3, &kq[3], &q);
                    nn_write32(o, r0 | (r1 << 8) | (r2 << 16) | (r3 << 24));
                }
                for (; ox < OW; ox++, o += C) {
                    dw_px4_border(&g, in_b, filter + c, y0, ox * p->stride_w - p->pad_w, bb, kq, &q, o);
                }
            }
        }
    }
    if (C4 == C) {
        return;
    }

    /* The remaining one to three channels: a pair, then a single channel, per output pixel. */
    int8_t *o = out;
    for (int32_t b = 0; b < out_d->n; b++) {
        const int8_t *in_b = in + b * H * W * C;
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            dw_valid_range(y0, p->dil_h, kh, H, &ky0, &ky1);
            for (int32_t ox = 0; ox < OW; ox++, o += C) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                dw_valid_range(x0, p->dil_w, kw, W, &kx0, &kx1);
                int32_t ny = ky1 - ky0, nx = kx1 - kx0;
                const int8_t *ip0 = in_b;
                const int8_t *fp0 = filter;
                if (ny > 0 && nx > 0) {
                    ip0 = in_b + ((y0 + ky0 * p->dil_h) * W + (x0 + kx0 * p->dil_w)) * C;
                    fp0 = filter + (ky0 * kw + kx0) * C;
                } else {
                    ny = 0;
                    nx = 0;
                }
                int32_t c = C4;
                for (; c < C2; c += 2) {
                    int32_t a0 = 0, a1 = 0;
                    if (bias) {
                        a0 = bias[c];
                        a1 = bias[c + 1];
                    }
                    const int8_t *ir = ip0 + c;
                    const int8_t *fr = fp0 + c;
                    for (int32_t ky = ny; ky > 0; ky--) {
                        const int8_t *ii = ir;
                        const int8_t *ff = fr;
                        for (int32_t kx = nx; kx > 0; kx--) {
                            const uint32_t iv = nn_pack16((int32_t)ii[0] + in_off, (int32_t)ii[1] + in_off);
                            const uint32_t fv = nn_pack16(ff[0], ff[1]);
                            ii += col_step;
                            ff += C;
                            a0 = nn_smlabb(iv, fv, a0);
                            a1 = nn_smlatt(iv, fv, a1);
                        }
                        ir += row_step;
                        fr += frow_step;
                    }
                    o[c] = (int8_t)dw_requant(a0, mult[c], shift[c], &q);
                    o[c + 1] = (int8_t)dw_requant(a1, mult[c + 1], shift[c + 1], &q);
                }
                for (; c < C; c++) {
                    int32_t acc = bias ? bias[c] : 0;
                    const int8_t *ir = ip0 + c;
                    const int8_t *fr = fp0 + c;
                    for (int32_t ky = ny; ky > 0; ky--) {
                        const int8_t *ii = ir;
                        const int8_t *ff = fr;
                        for (int32_t kx = nx; kx > 0; kx--) {
                            acc += (int32_t)*ff * ((int32_t)*ii + in_off);
                            ii += col_step;
                            ff += C;
                        }
                        ir += row_step;
                        fr += frow_step;
                    }
                    o[c] = (int8_t)dw_requant(acc, mult[c], shift[c], &q);
                }
            }
        }
    }
}
