/* SOFTMAX over the last axis: int8 (gemmlowp fixed point), 16x8 (tables) and float32. */
#include "ops.h"

typedef struct {
    int32_t rows, depth;
    int32_t input_mult, input_left_shift, diff_min;
    float beta;
    const void *in;
    void *out;
    const int16_t *exp_lut, *one_over_lut; /* SOFTMAX_S16 */
} softmax_state;
NN_STATE_FITS(softmax_state);

static int prepare_softmax(const nn_op *op, uint8_t dt, softmax_state *s)
{
    nn_tensor x, out;
    if (dt == NN_DT_INT16) { /* x, exp table, 1/(1+x) table */
        nn_tensor e, r;
        NN_CHECK(op->n_in == 3, NN_ERR_BAD_PLAN);
        NN_TRY(nn_op_input(op, 0, &x));
        NN_TRY(nn_op_input(op, 1, &e));
        NN_TRY(nn_op_input(op, 2, &r));
        NN_TRY(nn_op_output(op, &out));
        NN_CHECK(nn_is_dt(&x, dt) && nn_is_dt(&out, dt) && nn_is_dt(&e, dt) && nn_is_dt(&r, dt), NN_ERR_BAD_PLAN);
        NN_CHECK(x.count == out.count && e.count == 513u && r.count == 513u, NN_ERR_BAD_SIZE);
        s->exp_lut = (const int16_t *)(const void *)e.ptr;
        s->one_over_lut = (const int16_t *)(const void *)r.ptr;
    } else {
        NN_TRY(nn_op_unary(op, dt, dt, &x, &out));
    }
    s->depth = x.d[3];
    s->rows = (int32_t)(x.count / (uint32_t)s->depth);
    s->in = x.ptr;
    s->out = out.ptr;
    return NN_OK;
}

int nn_softmax_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    softmax_state *s = state;
    NN_TRY(prepare_softmax(op, NN_DT_INT8, s));
    s->input_mult = nn_op_param(op, NN_SOFTMAX_S8_P_INPUT_MULT);
    s->input_left_shift = nn_op_param(op, NN_SOFTMAX_S8_P_INPUT_LEFT_SHIFT);
    s->diff_min = nn_op_param(op, NN_SOFTMAX_S8_P_DIFF_MIN);
    NN_CHECK(s->input_left_shift >= 0 && s->input_left_shift <= 30, NN_ERR_BAD_PLAN);
    *kernel = "softmax_s8_ref";
    return NN_OK;
}

void nn_softmax_s8_eval(const void *state)
{
    const softmax_state *s = state;
    softmax_s8_ref(s->rows, s->depth, s->input_mult, s->input_left_shift, s->diff_min, (const int8_t *)s->in,
                   (int8_t *)s->out);
}

int nn_softmax_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    softmax_state *s = state;
    NN_TRY(prepare_softmax(op, NN_DT_FLOAT32, s));
    s->beta = nn_op_param_f32(op, NN_SOFTMAX_F32_P_BETA);
    *kernel = "softmax_f32_ref";
    return NN_OK;
}

void nn_softmax_f32_eval(const void *state)
{
    const softmax_state *s = state;
    softmax_f32_ref(s->rows, s->depth, s->beta, (const float *)s->in, (float *)s->out);
}

int nn_softmax_s16_prepare(const nn_op *op, void *state, const char **kernel)
{
    softmax_state *s = state;
    NN_TRY(prepare_softmax(op, NN_DT_INT16, s));
    s->input_mult = nn_op_param(op, NN_SOFTMAX_S16_P_INPUT_MULT);
    s->input_left_shift = nn_op_param(op, NN_SOFTMAX_S16_P_INPUT_LEFT_SHIFT);
    NN_CHECK(nn_check_shift(s->input_left_shift), NN_ERR_BAD_PLAN);
    *kernel = "softmax_s16_ref";
    return NN_OK;
}

void nn_softmax_s16_eval(const void *state)
{
    const softmax_state *s = state;
    softmax_s16_ref(s->rows, s->depth, s->input_mult, s->input_left_shift, s->exp_lut, s->one_over_lut,
                    (const int16_t *)s->in, (int16_t *)s->out);
}
