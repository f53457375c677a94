/* QUANTIZE float32 -> int16: q = round_half_away(float(x / scale)) + zero_point, clamped (the reference's float
 * division, exactly; integer arithmetic without an FPU, nn_float.h). */
#include "nn_float.h"
#include "nn_kernels.h"
#include "nn_quant.h"

void quantize_f32_s16_ref(int32_t size, float scale, int32_t zero_point, const float *in, int16_t *out)
{
    nn_divisor d;
    nn_divisor_init(&d, scale);
    for (int32_t i = 0; i < size; i++) {
        const int32_t v = nn_div_round(in[i], &d);
        out[i] = (int16_t)(nn_clamp_i32(v, -32768 - zero_point, 32767 - zero_point) + zero_point);
    }
}
