/* CONCATENATION (any element type, inputs share the output's quantization): interleaved block copies. */
#include <string.h>

#include "nn_kernels.h"

void concatenation_any_ref(int32_t outer, int32_t num_inputs, const uint8_t *const *inputs, const int32_t *inner_bytes,
                           uint8_t *out)
{
    for (int32_t o = 0; o < outer; o++) {
        for (int32_t i = 0; i < num_inputs; i++) {
            memcpy(out, inputs[i] + (size_t)o * (size_t)inner_bytes[i], (size_t)inner_bytes[i]);
            out += inner_bytes[i];
        }
    }
}
