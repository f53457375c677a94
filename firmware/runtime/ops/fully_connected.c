/* FULLY_CONNECTED: int8 (FC_S8), 16x8 (FC_S16), float32 (FC_F32) and dynamic-range (FC_HYBRID). */
#include "../../kernels/nn_wrappers.h"
#include "ops.h"

/* Weights [out_len, in_len]; the input is `batches` rows of in_len; the output batches x out_len. */
static int fc_shape(const nn_tensor *x, const nn_tensor *w, const nn_tensor *out, int32_t *batches, int32_t *in_len,
                    int32_t *out_len)
{
    *out_len = w->d[2];
    *in_len = w->d[3];
    NN_CHECK(w->d[0] == 1 && w->d[1] == 1, NN_ERR_BAD_SIZE);
    NN_CHECK(x->count % (uint32_t)*in_len == 0, NN_ERR_BAD_SIZE);
    *batches = (int32_t)(x->count / (uint32_t)*in_len);
    NN_CHECK((uint64_t)*batches * (uint32_t)*out_len == out->count, NN_ERR_BAD_SIZE);
    return NN_OK;
}

typedef struct {
    nn_fc_params p;
    int32_t batches, in_len, out_len;
    const int8_t *in, *weights;
    const int32_t *bias, *mult, *shift;
    int8_t *out;
    int16_t *scratch;
} fc_s8_state;
NN_STATE_FITS(fc_s8_state);

NN_LOAD_TIME int nn_fc_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    fc_s8_state *s = state;
    nn_tensor x, w, out, mult, shift;
    NN_CHECK(op->n_in == 5, NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_output(op, &out));
    NN_TRY(nn_op_input(op, 1, &w));
    NN_CHECK(nn_is_dt(&x, NN_DT_INT8) && nn_is_dt(&out, NN_DT_INT8) && nn_is_dt(&w, NN_DT_INT8), NN_ERR_BAD_PLAN);
    s->p.input_offset = nn_op_param(op, NN_FC_P_INPUT_OFFSET);
    s->p.output_offset = nn_op_param(op, NN_FC_P_OUTPUT_ZP);
    s->p.act_min = nn_op_param(op, NN_FC_P_ACT_MIN);
    s->p.act_max = nn_op_param(op, NN_FC_P_ACT_MAX);
    const int32_t layout = nn_op_param(op, NN_FC_S8_P_WEIGHTS_LAYOUT);
    NN_CHECK(layout == NN_FC_WEIGHTS_OI || layout == NN_FC_WEIGHTS_QUADS, NN_ERR_BAD_PLAN);
    s->p.weights_quads = layout == NN_FC_WEIGHTS_QUADS;
    NN_CHECK(!s->p.weights_quads || fully_connected_s8_wrapper_reads_quads(), NN_ERR_FILTER_LAYOUT);
    NN_CHECK(nn_check_act(s->p.act_min, s->p.act_max) && nn_check_offset(s->p.input_offset) &&
                 nn_check_offset(s->p.output_offset),
             NN_ERR_BAD_PLAN);
    NN_CHECK(w.d[3] <= NN_MAX_TAPS, NN_ERR_BAD_SIZE);
    NN_TRY(fc_shape(&x, &w, &out, &s->batches, &s->in_len, &s->out_len));
    NN_TRY(nn_op_bias_s32(op, 2, s->out_len, &s->bias));
    NN_TRY(nn_op_input(op, 3, &mult));
    NN_TRY(nn_op_input(op, 4, &shift));
    NN_TRY(nn_check_requant_arrays(&mult, &shift, s->out_len));
    NN_CHECK(op->scratch_bytes >= fully_connected_s8_wrapper_scratch_bytes(s->in_len), NN_ERR_ARENA_TOO_SMALL);
    s->in = (const int8_t *)x.ptr;
    s->weights = (const int8_t *)w.ptr;
    s->mult = (const int32_t *)(const void *)mult.ptr;
    s->shift = (const int32_t *)(const void *)shift.ptr;
    /* the quads kernel's arithmetic holds for these shifts and offsets (the compiler lays out no others) */
    NN_CHECK(!s->p.weights_quads || fully_connected_s8_wrapper_quads_ok(&s->p, s->shift, s->out_len),
             NN_ERR_BAD_PLAN);
    s->out = (int8_t *)out.ptr;
    s->scratch = (int16_t *)(void *)nn_op_scratch(op);
    *kernel = fully_connected_s8_wrapper_kernel(s->in_len);
    return NN_OK;
}

void nn_fc_s8_eval(const void *state)
{
    const fc_s8_state *s = state;
    fully_connected_s8_wrapper(&s->p, s->batches, s->in_len, s->in, s->out_len, s->weights, s->bias, s->mult,
                               s->shift, s->out, s->scratch);
}

typedef struct {
    nn_fc_params p;
    int32_t batches, in_len, out_len;
    const int16_t *in;
    const int8_t *weights;
    const int64_t *bias;
    const int32_t *mult, *shift;
    int16_t *out;
} fc_s16_state;
NN_STATE_FITS(fc_s16_state);

int nn_fc_s16_prepare(const nn_op *op, void *state, const char **kernel)
{
    fc_s16_state *s = state;
    nn_tensor x, w, out, mult, shift;
    NN_CHECK(op->n_in == 5, NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_output(op, &out));
    NN_TRY(nn_op_input(op, 1, &w));
    NN_CHECK(nn_is_dt(&x, NN_DT_INT16) && nn_is_dt(&out, NN_DT_INT16) && nn_is_dt(&w, NN_DT_INT8), NN_ERR_BAD_PLAN);
    s->p.input_offset = nn_op_param(op, NN_FC_P_INPUT_OFFSET);
    s->p.output_offset = nn_op_param(op, NN_FC_P_OUTPUT_ZP);
    s->p.act_min = nn_op_param(op, NN_FC_P_ACT_MIN);
    s->p.act_max = nn_op_param(op, NN_FC_P_ACT_MAX);
    NN_CHECK(nn_check_act16(s->p.act_min, s->p.act_max) && s->p.input_offset == 0 && s->p.output_offset == 0,
             NN_ERR_BAD_PLAN);
    NN_CHECK(w.d[3] <= NN_MAX_TAPS, NN_ERR_BAD_SIZE);
    NN_TRY(fc_shape(&x, &w, &out, &s->batches, &s->in_len, &s->out_len));
    NN_TRY(nn_op_bias_s64(op, 2, s->out_len, &s->bias));
    NN_TRY(nn_op_input(op, 3, &mult));
    NN_TRY(nn_op_input(op, 4, &shift));
    NN_TRY(nn_check_requant_arrays(&mult, &shift, s->out_len));
    s->in = (const int16_t *)(const void *)x.ptr;
    s->weights = (const int8_t *)w.ptr;
    s->mult = (const int32_t *)(const void *)mult.ptr;
    s->shift = (const int32_t *)(const void *)shift.ptr;
    s->out = (int16_t *)(void *)out.ptr;
    for (int32_t i = 0; i < s->out_len; i++) {
        NN_CHECK(s->mult[i] >= 0, NN_ERR_BAD_PLAN);
    }
    *kernel = "fully_connected_s16_ref";
    return NN_OK;
}

void nn_fc_s16_eval(const void *state)
{
    const fc_s16_state *s = state;
    fully_connected_s16_ref(&s->p, s->batches, s->in_len, s->in, s->out_len, s->weights, s->bias, s->mult, s->shift,
                            s->out);
}

/* FC_F32 and FC_HYBRID: float input/output and bias; hybrid adds int8 weights with float scales. */
typedef struct {
    nn_fc_params p;
    int32_t batches, in_len, out_len, per_channel;
    const float *in;
    const void *weights;
    const float *bias, *weight_scales;
    float *out;
    int8_t *scratch;
} fc_f32_state;
NN_STATE_FITS(fc_f32_state);

static int prepare_fc_f32(const nn_op *op, int hybrid, fc_f32_state *s)
{
    nn_tensor x, w, out;
    NN_CHECK(op->n_in == (hybrid ? 4u : 3u), NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_output(op, &out));
    NN_TRY(nn_op_input(op, 1, &w));
    NN_CHECK(nn_is_dt(&x, NN_DT_FLOAT32) && nn_is_dt(&out, NN_DT_FLOAT32) &&
                 nn_is_dt(&w, hybrid ? NN_DT_INT8 : NN_DT_FLOAT32),
             NN_ERR_BAD_PLAN);
    NN_TRY(fc_shape(&x, &w, &out, &s->batches, &s->in_len, &s->out_len));
    NN_TRY(nn_op_bias_f32(op, 2, s->out_len, &s->bias));
    s->in = (const float *)(const void *)x.ptr;
    s->weights = w.ptr;
    s->out = (float *)(void *)out.ptr;
    return NN_OK;
}

int nn_fc_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    fc_f32_state *s = state;
    NN_TRY(prepare_fc_f32(op, 0, s));
    s->p.act_min_f = nn_op_param_f32(op, NN_ACT_F32_P_ACT_MIN);
    s->p.act_max_f = nn_op_param_f32(op, NN_ACT_F32_P_ACT_MAX);
    *kernel = "fully_connected_f32_ref";
    return NN_OK;
}

void nn_fc_f32_eval(const void *state)
{
    const fc_f32_state *s = state;
    fully_connected_f32_ref(&s->p, s->batches, s->in_len, s->in, s->out_len, (const float *)s->weights, s->bias,
                            s->out);
}

int nn_fc_hybrid_prepare(const nn_op *op, void *state, const char **kernel)
{
    fc_f32_state *s = state;
    nn_tensor scales;
    NN_TRY(prepare_fc_f32(op, 1, s));
    s->p.act_min_f = nn_op_param_f32(op, NN_FC_HYBRID_P_ACT_MIN);
    s->p.act_max_f = nn_op_param_f32(op, NN_FC_HYBRID_P_ACT_MAX);
    s->p.asymmetric_inputs = nn_op_param(op, NN_FC_HYBRID_P_ASYMMETRIC_INPUTS);
    s->per_channel = nn_op_param(op, NN_FC_HYBRID_P_PER_CHANNEL);
    NN_CHECK(nn_op_has_input(op, 3), NN_ERR_BAD_SIZE);
    NN_TRY(nn_op_input(op, 3, &scales));
    NN_CHECK(nn_is_dt(&scales, NN_DT_FLOAT32) && (int32_t)scales.count == (s->per_channel ? s->out_len : 1),
             NN_ERR_BAD_SIZE);
    NN_CHECK(s->in_len <= NN_MAX_TAPS, NN_ERR_BAD_SIZE);
    NN_CHECK(op->scratch_bytes >= (uint32_t)s->in_len, NN_ERR_ARENA_TOO_SMALL); /* the quantized input row */
    s->weight_scales = (const float *)(const void *)scales.ptr;
    s->scratch = (int8_t *)nn_op_scratch(op);
    *kernel = "fully_connected_hybrid_ref";
    return NN_OK;
}

void nn_fc_hybrid_eval(const void *state)
{
    const fc_f32_state *s = state;
    fully_connected_hybrid_ref(&s->p, s->batches, s->in_len, s->in, s->out_len, (const int8_t *)s->weights,
                               s->weight_scales, s->per_channel, s->bias, s->out, s->scratch);
}
