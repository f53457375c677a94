/* QUANTIZE float32 -> int8 / int16 and DEQUANTIZE int8 / int16 -> float32 (per-tensor scale and zero point). */
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
    NN_CHECK(in_dt == NN_DT_INT16 || out_dt == NN_DT_INT16 ? s->zero_point == 0 : nn_check_offset(s->zero_point),
             NN_ERR_BAD_PLAN);
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

typedef struct {
    int32_t size;
    const float *table;
    const int8_t *in;
    float *out;
} dequant_s8_state;
NN_STATE_FITS(dequant_s8_state);

int nn_dequantize_s8_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    dequant_s8_state *s = state;
    nn_tensor x, table, out;
    NN_CHECK(op->n_in == 2, NN_ERR_BAD_PLAN); /* x, the 256 dequantized values */
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_input(op, 1, &table));
    NN_TRY(nn_op_output(op, &out));
    NN_CHECK(nn_is_dt(&x, NN_DT_INT8) && nn_is_dt(&table, NN_DT_FLOAT32) && nn_is_dt(&out, NN_DT_FLOAT32),
             NN_ERR_BAD_PLAN);
    NN_CHECK(x.count == out.count && table.count == 256u, NN_ERR_BAD_SIZE);
    NN_CHECK(nn_check_offset(nn_op_param(op, NN_QUANT_P_ZERO_POINT)), NN_ERR_BAD_PLAN);
    s->size = (int32_t)x.count;
    s->table = (const float *)(const void *)table.ptr;
    s->in = (const int8_t *)x.ptr;
    s->out = (float *)(void *)out.ptr;
    *kernel = "dequantize_s8_f32_ref";
    return NN_OK;
}

void nn_dequantize_s8_f32_eval(const void *state)
{
    const dequant_s8_state *s = state;
    dequantize_s8_f32_ref(s->size, s->table, s->in, s->out);
}

int nn_quantize_f32_s16_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "quantize_f32_s16_ref";
    return prepare_quant(op, NN_DT_FLOAT32, NN_DT_INT16, state);
}

void nn_quantize_f32_s16_eval(const void *state)
{
    const quant_state *s = state;
    quantize_f32_s16_ref(s->size, s->scale, s->zero_point, (const float *)s->in, (int16_t *)s->out);
}

int nn_dequantize_s16_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "dequantize_s16_f32_ref";
    return prepare_quant(op, NN_DT_INT16, NN_DT_FLOAT32, state);
}

void nn_dequantize_s16_f32_eval(const void *state)
{
    const quant_state *s = state;
    dequantize_s16_f32_ref(s->size, s->scale, s->zero_point, (const int16_t *)s->in, (float *)s->out);
}
