/* ADD / SUB / MUL with 4-D broadcasting: int8, 16x8 (ADD) and float32. SUB int8/int16 is an ADD whose second
 * input multiplier is negated (measure_agent/plan/lower/elementwise.py). */
#include "../../kernels/nn_wrappers.h"
#include "ops.h"

typedef struct {
    nn_binary_params p;
    const void *a, *b;
    void *out;
    int32_t *scratch; /* ADD_S8 */
} binary_state;
NN_STATE_FITS(binary_state);

/* Broadcast strides of `t` against the 4-D output dims. */
static int broadcast_strides(const nn_tensor *t, const int32_t out[4], int32_t strides[4])
{
    int32_t s = 1;
    for (int i = 3; i >= 0; i--) {
        if (t->d[i] == out[i]) {
            strides[i] = s;
        } else if (t->d[i] == 1) {
            strides[i] = 0;
        } else {
            return NN_ERR_BAD_SIZE;
        }
        s *= t->d[i];
    }
    return NN_OK;
}

/* Inputs a, b and the output of one dtype; the broadcast shapes. */
static int prepare_binary(const nn_op *op, uint8_t dt, binary_state *s)
{
    nn_tensor a, b, out;
    NN_CHECK(op->n_in == 2, NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &a));
    NN_TRY(nn_op_input(op, 1, &b));
    NN_TRY(nn_op_output(op, &out));
    NN_CHECK(nn_is_dt(&a, dt) && nn_is_dt(&b, dt) && nn_is_dt(&out, dt), NN_ERR_BAD_PLAN);
    for (int k = 0; k < 4; k++) {
        s->p.out_dims[k] = out.d[k];
    }
    NN_TRY(broadcast_strides(&a, s->p.out_dims, s->p.in1_strides));
    NN_TRY(broadcast_strides(&b, s->p.out_dims, s->p.in2_strides));
    s->a = a.ptr;
    s->b = b.ptr;
    s->out = out.ptr;
    return NN_OK;
}

static int check_s8_offsets_and_bounds(const nn_binary_params *p)
{
    NN_CHECK(nn_check_offset(p->input1_offset) && nn_check_offset(p->input2_offset) &&
                 nn_check_offset(p->output_offset) && nn_check_act(p->act_min, p->act_max),
             NN_ERR_BAD_PLAN);
    return NN_OK;
}

/* The ADD layout into p (int8 and int16). */
static int read_add_params(const nn_op *op, nn_binary_params *p)
{
    p->input1_offset = nn_op_param(op, NN_ADD_S8_P_A_OFFSET);
    p->input2_offset = nn_op_param(op, NN_ADD_S8_P_B_OFFSET);
    p->output_offset = nn_op_param(op, NN_ADD_S8_P_OUT_ZP);
    p->input1_multiplier = nn_op_param(op, NN_ADD_S8_P_A_MULT);
    p->input1_shift = nn_op_param(op, NN_ADD_S8_P_A_SHIFT);
    p->input2_multiplier = nn_op_param(op, NN_ADD_S8_P_B_MULT);
    p->input2_shift = nn_op_param(op, NN_ADD_S8_P_B_SHIFT);
    p->output_multiplier = nn_op_param(op, NN_ADD_S8_P_OUT_MULT);
    p->output_shift = nn_op_param(op, NN_ADD_S8_P_OUT_SHIFT);
    p->left_shift = nn_op_param(op, NN_ADD_S8_P_LEFT_SHIFT);
    p->act_min = nn_op_param(op, NN_ADD_S8_P_ACT_MIN);
    p->act_max = nn_op_param(op, NN_ADD_S8_P_ACT_MAX);
    NN_CHECK(p->left_shift >= 0 && p->left_shift <= 20 && nn_check_shift(p->input1_shift) &&
                 nn_check_shift(p->input2_shift) && nn_check_shift(p->output_shift),
             NN_ERR_BAD_PLAN);
    return NN_OK;
}

int nn_add_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    binary_state *s = state;
    NN_TRY(prepare_binary(op, NN_DT_INT8, s));
    NN_TRY(read_add_params(op, &s->p));
    NN_CHECK(op->scratch_bytes >= add_s8_wrapper_scratch_bytes(), NN_ERR_ARENA_TOO_SMALL);
    s->scratch = (int32_t *)(void *)nn_op_scratch(op);
    *kernel = add_s8_wrapper_kernel();
    return check_s8_offsets_and_bounds(&s->p);
}

int nn_add_s16_prepare(const nn_op *op, void *state, const char **kernel)
{
    binary_state *s = state;
    nn_binary_params *p = &s->p;
    NN_TRY(prepare_binary(op, NN_DT_INT16, s));
    NN_TRY(read_add_params(op, p));
    NN_CHECK(p->input1_offset == 0 && p->input2_offset == 0 && p->output_offset == 0 &&
                 nn_check_act16(p->act_min, p->act_max) && p->left_shift <= 15,
             NN_ERR_BAD_PLAN);
    *kernel = "add_s16_ref";
    return NN_OK;
}

void nn_add_s16_eval(const void *state)
{
    const binary_state *s = state;
    add_s16_ref(&s->p, (const int16_t *)s->a, (const int16_t *)s->b, (int16_t *)s->out);
}

void nn_add_s8_eval(const void *state)
{
    const binary_state *s = state;
    add_s8_wrapper(&s->p, (const int8_t *)s->a, (const int8_t *)s->b, (int8_t *)s->out, s->scratch);
}

int nn_mul_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    binary_state *s = state;
    nn_binary_params *p = &s->p;
    NN_TRY(prepare_binary(op, NN_DT_INT8, s));
    p->input1_offset = nn_op_param(op, NN_MUL_S8_P_A_OFFSET);
    p->input2_offset = nn_op_param(op, NN_MUL_S8_P_B_OFFSET);
    p->output_offset = nn_op_param(op, NN_MUL_S8_P_OUT_ZP);
    p->output_multiplier = nn_op_param(op, NN_MUL_S8_P_OUT_MULT);
    p->output_shift = nn_op_param(op, NN_MUL_S8_P_OUT_SHIFT);
    p->act_min = nn_op_param(op, NN_MUL_S8_P_ACT_MIN);
    p->act_max = nn_op_param(op, NN_MUL_S8_P_ACT_MAX);
    NN_CHECK(nn_check_shift(p->output_shift), NN_ERR_BAD_PLAN);
    *kernel = "mul_s8_ref";
    return check_s8_offsets_and_bounds(p);
}

void nn_mul_s8_eval(const void *state)
{
    const binary_state *s = state;
    mul_s8_ref(&s->p, (const int8_t *)s->a, (const int8_t *)s->b, (int8_t *)s->out);
}

static int prepare_binary_f32(const nn_op *op, binary_state *s)
{
    NN_TRY(prepare_binary(op, NN_DT_FLOAT32, s));
    s->p.act_min_f = nn_op_param_f32(op, NN_ACT_F32_P_ACT_MIN);
    s->p.act_max_f = nn_op_param_f32(op, NN_ACT_F32_P_ACT_MAX);
    return NN_OK;
}

int nn_add_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "add_f32_ref";
    return prepare_binary_f32(op, state);
}

void nn_add_f32_eval(const void *state)
{
    const binary_state *s = state;
    add_f32_ref(&s->p, (const float *)s->a, (const float *)s->b, (float *)s->out);
}

int nn_mul_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "mul_f32_ref";
    return prepare_binary_f32(op, state);
}

void nn_mul_f32_eval(const void *state)
{
    const binary_state *s = state;
    mul_f32_ref(&s->p, (const float *)s->a, (const float *)s->b, (float *)s->out);
}

int nn_sub_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "sub_f32_ref";
    return prepare_binary_f32(op, state);
}

void nn_sub_f32_eval(const void *state)
{
    const binary_state *s = state;
    sub_f32_ref(&s->p, (const float *)s->a, (const float *)s->b, (float *)s->out);
}
