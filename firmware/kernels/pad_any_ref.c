/* PAD (4-D, any element size): copy the input into the middle of an output filled with pad_value. */
#include <string.h>

#include "nn_kernels.h"

void pad_any_ref(const int32_t in_dims[4], const int32_t pad_before[4], const int32_t out_dims[4], int32_t elem_bytes,
                 const uint8_t *pad_value, const uint8_t *in, uint8_t *out)
{
    const int32_t total = out_dims[0] * out_dims[1] * out_dims[2] * out_dims[3];
    for (int32_t i = 0; i < total; i++) {
        memcpy(out + (size_t)i * (size_t)elem_bytes, pad_value, (size_t)elem_bytes);
    }
    const size_t row = (size_t)in_dims[3] * (size_t)elem_bytes;
    for (int32_t a = 0; a < in_dims[0]; a++) {
        for (int32_t b = 0; b < in_dims[1]; b++) {
            for (int32_t c = 0; c < in_dims[2]; c++) {
                const size_t src = (((size_t)a * in_dims[1] + b) * in_dims[2] + c) * row;
                const size_t dst = ((((size_t)(a + pad_before[0]) * out_dims[1] + (b + pad_before[1])) * out_dims[2] +
                                     (c + pad_before[2])) * out_dims[3] + pad_before[3]) * (size_t)elem_bytes;
                memcpy(out + dst, in + src, row);
            }
        }
    }
}
