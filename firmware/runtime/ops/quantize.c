/* QUANTIZE float32 -> int8 and DEQUANTIZE int8 -> float32 (per-tensor scale and zero point). */
#include "ops.h"

typedef struct {
    int32_t size;
    float scale;
    int32_t zero_point;
    const void *in;
    void *out;
} quant_state;
NN_STATE_FITS(quant_state);

static int prepare_quant(const nn_op *op, uint8_t in_dt, uint8_t out_dt, quant_state *s)
{
    nn_tensor x, out;
    NN_TRY(nn_op_unary(op, in_dt, out_dt, &x, &out));
    s->size = (int32_t)x.count;
    s->scale = nn_op_param_f32(op, NN_QUANT_P_SCALE);
    s->zero_point = nn_op_param(op, NN_QUANT_P_ZERO_POINT);
    NN_CHECK(nn_check_offset(s->zero_point), NN_ERR_BAD_PLAN);
    s->in = x.ptr;
    s->out = out.ptr;
    return NN_OK;
}

int nn_quantize_f32_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "quantize_f32_s8_ref";
    return prepare_quant(op, NN_DT_FLOAT32, NN_DT_INT8, state);
}

void nn_quantize_f32_s8_eval(const void *state)
{
    const quant_state *s = state;
    quantize_f32_s8_ref(s->size, s->scale, s->zero_point, (const float *)s->in, (int8_t *)s->out);
}

int nn_dequantize_s8_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "dequantize_s8_f32_ref";
    return prepare_quant(op, NN_DT_INT8, NN_DT_FLOAT32, state);
}

void nn_dequantize_s8_f32_eval(const void *state)
{
    const quant_state *s = state;
    dequantize_s8_f32_ref(s->size, s->scale, s->zero_point, (const int8_t *)s->in, (float *)s->out);
}
