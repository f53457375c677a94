/* Run-time input quantization for dynamic-range (hybrid) kernels: symmetric and asymmetric int8
 * (quantize_input_hybrid_ref.c). */
#ifndef NN_HYBRID_QUANT_H
#define NN_HYBRID_QUANT_H

#include <stdint.h>

/* Quantizes n floats into q. Symmetric (asymmetric == 0): q = round(x * 127 / max|x|) in [-127, 127],
 * *offset = 0. Asymmetric: x ~= scale * (q - *offset). Returns the scale (1 for all-zero input). */
float quantize_input_hybrid_ref(const float *x, int32_t n, int8_t *q, int32_t asymmetric, int32_t *offset);

#endif
