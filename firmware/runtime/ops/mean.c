/* MEAN over any axes of a (up to) 4-D tensor: int8, 16x8 (int16) and float32. */
#include "ops.h"

typedef struct {
    nn_dims in_d;
    uint32_t axes;
    int32_t input_zp, output_zp, mult, shift;
    const void *in;
    void *out;
} mean_state;
NN_STATE_FITS(mean_state);

static int prepare_mean(const nn_op *op, uint8_t dt, int32_t axes, mean_state *s)
{
    nn_tensor x, out;
    NN_CHECK(op->n_in == 1, NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_output(op, &out));
    NN_CHECK(nn_is_dt(&x, dt) && nn_is_dt(&out, dt), NN_ERR_BAD_PLAN);
    NN_CHECK(axes >= 0 && axes <= 15, NN_ERR_BAD_PLAN);
    s->in_d = nn_dims_of(&x);
    s->axes = (uint32_t)axes;
    uint32_t kept = 1;
    for (int k = 0; k < 4; k++) {
        kept *= (axes >> k) & 1 ? 1u : (uint32_t)x.d[k];
    }
    NN_CHECK(kept == out.count, NN_ERR_BAD_SIZE);
    s->in = x.ptr;
    s->out = out.ptr;
    return NN_OK;
}

int nn_mean_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    mean_state *s = state;
    NN_TRY(prepare_mean(op, NN_DT_INT8, nn_op_param(op, NN_MEAN_S8_P_AXES), s));
    s->input_zp = nn_op_param(op, NN_MEAN_S8_P_INPUT_ZP);
    s->output_zp = nn_op_param(op, NN_MEAN_S8_P_OUTPUT_ZP);
    s->mult = nn_op_param(op, NN_MEAN_S8_P_MULT);
    s->shift = nn_op_param(op, NN_MEAN_S8_P_SHIFT);
    NN_CHECK(nn_check_offset(s->input_zp) && nn_check_offset(s->output_zp) && nn_check_shift(s->shift),
             NN_ERR_BAD_PLAN);
    *kernel = "mean_s8_ref";
    return NN_OK;
}

void nn_mean_s8_eval(const void *state)
{
    const mean_state *s = state;
    mean_s8_ref(&s->in_d, s->axes, (const int8_t *)s->in, s->input_zp, s->output_zp, s->mult, s->shift, (int8_t *)s->out);
}

int nn_mean_s16_prepare(const nn_op *op, void *state, const char **kernel)
{
    mean_state *s = state;
    NN_TRY(prepare_mean(op, NN_DT_INT16, nn_op_param(op, NN_MEAN_S8_P_AXES), s));
    s->input_zp = nn_op_param(op, NN_MEAN_S8_P_INPUT_ZP);
    s->output_zp = nn_op_param(op, NN_MEAN_S8_P_OUTPUT_ZP);
    s->mult = nn_op_param(op, NN_MEAN_S8_P_MULT);
    s->shift = nn_op_param(op, NN_MEAN_S8_P_SHIFT);
    NN_CHECK(s->input_zp == 0 && s->output_zp == 0 && nn_check_shift(s->shift), NN_ERR_BAD_PLAN);
    *kernel = "mean_s16_ref";
    return NN_OK;
}

void nn_mean_s16_eval(const void *state)
{
    const mean_state *s = state;
    mean_s16_ref(&s->in_d, s->axes, (const int16_t *)s->in, s->input_zp, s->output_zp, s->mult, s->shift,
                 (int16_t *)s->out);
}

int nn_mean_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "mean_f32_ref";
    return prepare_mean(op, NN_DT_FLOAT32, nn_op_param(op, NN_MEAN_F32_P_AXES), state);
}

void nn_mean_f32_eval(const void *state)
{
    const mean_state *s = state;
    mean_f32_ref(&s->in_d, s->axes, (const float *)s->in, (float *)s->out);
}
