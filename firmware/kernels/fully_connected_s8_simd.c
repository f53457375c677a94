/*
 * FULLY_CONNECTED, int8, Armv7E-M SIMD: the input vector is expanded once per batch to int16 with the
 * input offset added (groups of 4 reordered x0,x2,x1,x3), then two weight rows at a time are multiplied
 * with SMLAD on SXTB16-expanded weight pairs. The tail of in_len % 4 is scalar.
 */
#include "nn_kernels.h"
#include "nn_quant.h"
#include "nn_simd.h"

size_t fully_connected_s8_simd_scratch_bytes(int32_t in_len) { return sizeof(int16_t) * (size_t)in_len; }

void fully_connected_s8_simd(const nn_fc_params *p, int32_t batches, int32_t in_len, const int8_t *in,
                             int32_t out_len, const int8_t *weights, const int32_t *bias, const int32_t *mult,
                             const int32_t *shift, int8_t *out, int16_t *scratch)
{
    const int32_t K4 = in_len & ~3;
    const uint32_t off2 = nn_pack16(p->input_offset, p->input_offset);
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = in + b * in_len;
        int32_t k = 0;
        for (; k < K4; k += 4) {
            const uint32_t v = nn_read32(x + k);
            const uint32_t even = nn_sadd16(nn_sxtb16(v), off2);
            const uint32_t odd = nn_sadd16(nn_sxtb16(nn_ror(v, 8)), off2);
            memcpy(scratch + k, &even, 4);
            memcpy(scratch + k + 2, &odd, 4);
        }
        for (; k < in_len; k++) {
            scratch[k] = (int16_t)(x[k] + p->input_offset);
        }
        int32_t o = 0;
        for (; o + 1 < out_len; o += 2) {
            const int8_t *w0 = weights + o * in_len;
            const int8_t *w1 = w0 + in_len;
            int32_t a0 = bias ? bias[o] : 0, a1 = bias ? bias[o + 1] : 0;
            for (k = 0; k < K4; k += 4) {
                const uint32_t xe = nn_read32(scratch + k), xo = nn_read32(scratch + k + 2);
                uint32_t w = nn_read32(w0 + k);
                a0 = nn_smlad(nn_sxtb16(w), xe, a0);
                a0 = nn_smlad(nn_sxtb16(nn_ror(w, 8)), xo, a0);
                w = nn_read32(w1 + k);
                a1 = nn_smlad(nn_sxtb16(w), xe, a1);
                a1 = nn_smlad(nn_sxtb16(nn_ror(w, 8)), xo, a1);
            }
            for (; k < in_len; k++) {
                a0 += w0[k] * scratch[k];
                a1 += w1[k] * scratch[k];
            }
            a0 = nn_requantize_single(a0, mult[o], shift[o]) + p->output_offset;
            a1 = nn_requantize_single(a1, mult[o + 1], shift[o + 1]) + p->output_offset;
            out[b * out_len + o] = (int8_t)nn_clamp_i32(a0, p->act_min, p->act_max);
            out[b * out_len + o + 1] = (int8_t)nn_clamp_i32(a1, p->act_min, p->act_max);
        }
        if (o < out_len) {
            const int8_t *w0 = weights + o * in_len;
            int32_t a0 = bias ? bias[o] : 0;
            for (k = 0; k < K4; k += 4) {
                const uint32_t w = nn_read32(w0 + k);
                a0 = nn_smlad(nn_sxtb16(w), nn_read32(scratch + k), a0);
                a0 = nn_smlad(nn_sxtb16(nn_ror(w, 8)), nn_read32(scratch + k + 2), a0);
            }
            for (; k < in_len; k++) {
                a0 += w0[k] * scratch[k];
            }
            a0 = nn_requantize_single(a0, mult[o], shift[o]) + p->output_offset;
            out[b * out_len + o] = (int8_t)nn_clamp_i32(a0, p->act_min, p->act_max);
        }
    }
}
