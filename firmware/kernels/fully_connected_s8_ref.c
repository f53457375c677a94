/* FULLY_CONNECTED, int8 activations, int8 weights (per-tensor or per-channel), int32 bias: portable reference. */
#if defined(__GNUC__) && !defined(__clang__)
/* With -fwrapv, int32 sums are associative, and GCC's reassociation regroups the dot product's four products
 * per row into a temporary (MUL + 3 MLA + ADD instead of 4 MLA): two instructions more per step of the loop.
 * The sums wrap the same in any order, so keeping them as written changes no result. Set before the includes,
 * so that the inlined dot product (nn_dot.h) is compiled with the same options as its caller. */
#pragma GCC optimize("no-tree-reassoc")
#endif
#include "nn_dot.h"
#include "nn_kernels.h"
#include "nn_quant.h"

void fully_connected_s8_ref(const nn_fc_params *p, int32_t batches, int32_t in_len, const int8_t *in,
                            int32_t out_len, const int8_t *weights, const int32_t *bias, const int32_t *mult,
                            const int32_t *shift, int8_t *out)
{
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = in + b * in_len;
        for (int32_t o = 0; o < out_len; o += 2) { /* two rows at a time share each input read */
            const int two = o + 1 < out_len;
            const int32_t o1 = two ? o + 1 : o;
            int32_t acc0 = 0, acc1 = 0;
            nn_dot2_s8(x, weights + o * in_len, weights + o1 * in_len, in_len, p->input_offset, &acc0, &acc1);
            if (bias) {
                acc0 += bias[o];
                acc1 += bias[o1];
            }
            acc0 = nn_requantize_single(acc0, mult[o], shift[o]) + p->output_offset;
            out[b * out_len + o] = (int8_t)nn_clamp_i32(acc0, p->act_min, p->act_max);
            if (two) {
                acc1 = nn_requantize_single(acc1, mult[o1], shift[o1]) + p->output_offset;
                out[b * out_len + o1] = (int8_t)nn_clamp_i32(acc1, p->act_min, p->act_max);
            }
        }
    }
}
