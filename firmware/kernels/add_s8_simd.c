/*
 * ADD (and SUB: a negated second multiplier), int8, Armv7E-M SIMD. Each input's rescaling
 * (offset, << 20, MultiplyByQuantizedMultiplier) depends only on the input byte, so the call first
 * tabulates it for all 256 values of each input (exactly, with nn_requantize; 2 KB of scratch) and then
 * every element costs two table loads, an add and the output's fused requantization (nn_rq_apply, exact).
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
    const int full = p->act_min == -128 && p->act_max == 127;
    const int32_t lo = p->act_min, hi = p->act_max;
    for (int32_t i = 0; i < n; i++) {
        const int32_t x = (int32_t)((uint32_t)t1[(uint8_t)in1[i]] + (uint32_t)t2[(uint8_t)in2[i]]);
        const int32_t sg = x >> 31;
        const uint32_t klo = 0x40000000u ^ ((uint32_t)sg << 31);
        const int64_t pr = (int64_t)(((uint64_t)(khi + (uint32_t)sg) << 32) | klo) + (int64_t)x * (int64_t)m;
        const int32_t r = (int32_t)(pr >> 32) >> rsh;
        out[i] = (int8_t)(full ? nn_ssat8(r) : nn_clamp_i32(r, lo, hi));
    }
}
