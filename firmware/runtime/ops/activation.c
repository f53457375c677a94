/* Elementwise activations: LOGISTIC (int8, float32), REQUANT_S8 (int8 RELU family / QUANTIZE), CLAMP_F32,
 * LUT_S8 (int8 functions tabulated on the host: TANH), TANH_F32. */
#include "ops.h"

/* What every one of them has: element count, input, output. */
typedef struct {
    int32_t size;
    const void *in;
    void *out;
} unary_io;

static int prepare_unary(const nn_op *op, uint8_t dt, unary_io *io)
{
    nn_tensor x, out;
    NN_TRY(nn_op_unary(op, dt, dt, &x, &out));
    io->size = (int32_t)x.count;
    io->in = x.ptr;
    io->out = out.ptr;
    return NN_OK;
}

typedef struct {
    unary_io io;
    int32_t input_zp, input_range_radius, input_mult, input_left_shift;
} logistic_s8_state;
NN_STATE_FITS(logistic_s8_state);

int nn_logistic_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    logistic_s8_state *s = state;
    NN_TRY(prepare_unary(op, NN_DT_INT8, &s->io));
    s->input_zp = nn_op_param(op, NN_LOGISTIC_S8_P_INPUT_ZP);
    s->input_range_radius = nn_op_param(op, NN_LOGISTIC_S8_P_INPUT_RANGE_RADIUS);
    s->input_mult = nn_op_param(op, NN_LOGISTIC_S8_P_INPUT_MULT);
    s->input_left_shift = nn_op_param(op, NN_LOGISTIC_S8_P_INPUT_LEFT_SHIFT);
    NN_CHECK(nn_check_offset(s->input_zp) && s->input_range_radius >= 0 && nn_check_shift(s->input_left_shift),
             NN_ERR_BAD_PLAN);
    *kernel = "logistic_s8_ref";
    return NN_OK;
}

void nn_logistic_s8_eval(const void *state)
{
    const logistic_s8_state *s = state;
    logistic_s8_ref(s->io.size, s->input_zp, s->input_range_radius, s->input_mult, s->input_left_shift,
                    (const int8_t *)s->io.in, (int8_t *)s->io.out);
}

typedef struct {
    unary_io io;
    int32_t input_zp, output_zp, mult, shift, act_min, act_max;
} requant_s8_state;
NN_STATE_FITS(requant_s8_state);

int nn_requant_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    requant_s8_state *s = state;
    NN_TRY(prepare_unary(op, NN_DT_INT8, &s->io));
    s->input_zp = nn_op_param(op, NN_REQUANT_S8_P_INPUT_ZP);
    s->output_zp = nn_op_param(op, NN_REQUANT_S8_P_OUTPUT_ZP);
    s->mult = nn_op_param(op, NN_REQUANT_S8_P_MULT);
    s->shift = nn_op_param(op, NN_REQUANT_S8_P_SHIFT);
    s->act_min = nn_op_param(op, NN_REQUANT_S8_P_ACT_MIN);
    s->act_max = nn_op_param(op, NN_REQUANT_S8_P_ACT_MAX);
    NN_CHECK(nn_check_offset(s->input_zp) && nn_check_offset(s->output_zp) && nn_check_shift(s->shift) &&
                 nn_check_act(s->act_min, s->act_max),
             NN_ERR_BAD_PLAN);
    *kernel = "requantize_s8_ref";
    return NN_OK;
}

void nn_requant_s8_eval(const void *state)
{
    const requant_s8_state *s = state;
    requantize_s8_ref(s->io.size, s->input_zp, s->output_zp, s->mult, s->shift, s->act_min, s->act_max,
                      (const int8_t *)s->io.in, (int8_t *)s->io.out);
}

NN_STATE_FITS(unary_io);

int nn_logistic_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "logistic_f32_ref";
    return prepare_unary(op, NN_DT_FLOAT32, state);
}

void nn_logistic_f32_eval(const void *state)
{
    const unary_io *s = state;
    logistic_f32_ref(s->size, (const float *)s->in, (float *)s->out);
}

typedef struct {
    unary_io io;
    float lo, hi;
} clamp_f32_state;
NN_STATE_FITS(clamp_f32_state);

int nn_clamp_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    clamp_f32_state *s = state;
    NN_TRY(prepare_unary(op, NN_DT_FLOAT32, &s->io));
    s->lo = nn_op_param_f32(op, NN_CLAMP_F32_P_LO);
    s->hi = nn_op_param_f32(op, NN_CLAMP_F32_P_HI);
    *kernel = "clamp_f32_ref";
    return NN_OK;
}

void nn_clamp_f32_eval(const void *state)
{
    const clamp_f32_state *s = state;
    clamp_f32_ref(s->io.size, s->lo, s->hi, (const float *)s->io.in, (float *)s->io.out);
}

typedef struct {
    unary_io io;
    const int8_t *table;
} lut_s8_state;
NN_STATE_FITS(lut_s8_state);

int nn_lut_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    lut_s8_state *s = state;
    nn_tensor x, out, table;
    NN_CHECK(op->n_in == 2, NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_input(op, 1, &table));
    NN_TRY(nn_op_output(op, &out));
    NN_CHECK(nn_is_dt(&x, NN_DT_INT8) && nn_is_dt(&out, NN_DT_INT8) && nn_is_dt(&table, NN_DT_INT8), NN_ERR_BAD_PLAN);
    NN_CHECK(x.count == out.count && table.count == 256u, NN_ERR_BAD_SIZE);
    s->io.size = (int32_t)x.count;
    s->io.in = x.ptr;
    s->io.out = out.ptr;
    s->table = (const int8_t *)table.ptr;
    *kernel = "lut_s8_ref";
    return NN_OK;
}

void nn_lut_s8_eval(const void *state)
{
    const lut_s8_state *s = state;
    lut_s8_ref(s->io.size, s->table, (const int8_t *)s->io.in, (int8_t *)s->io.out);
}

int nn_tanh_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "tanh_f32_ref";
    return prepare_unary(op, NN_DT_FLOAT32, state);
}

void nn_tanh_f32_eval(const void *state)
{
    const unary_io *s = state;
    tanh_f32_ref(s->size, (const float *)s->in, (float *)s->out);
}
