/* Layout-only ops on any element type: COPY (RESHAPE & co.), PAD, CONCAT. */
#include "ops.h"

typedef struct {
    int32_t bytes;
    const uint8_t *in;
    uint8_t *out;
} copy_state;
NN_STATE_FITS(copy_state);

int nn_copy_prepare(const nn_op *op, void *state, const char **kernel)
{
    copy_state *s = state;
    nn_tensor x, out;
    NN_CHECK(op->n_in == 1, NN_ERR_BAD_SIZE);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_output(op, &out));
    NN_CHECK(x.bytes == out.bytes, NN_ERR_BAD_SIZE);
    s->bytes = (int32_t)x.bytes;
    s->in = x.ptr;
    s->out = out.ptr;
    *kernel = "copy_any_ref";
    return NN_OK;
}

void nn_copy_eval(const void *state)
{
    const copy_state *s = state;
    copy_any_ref(s->bytes, s->in, s->out);
}

typedef struct {
    int32_t in_dims[4], pad_before[4], out_dims[4];
    int32_t elem_bytes;
    uint8_t pad_value[4]; /* one element, little-endian */
    const uint8_t *in;
    uint8_t *out;
} pad_state;
NN_STATE_FITS(pad_state);

int nn_pad_prepare(const nn_op *op, void *state, const char **kernel)
{
    static const uint32_t before[4] = {NN_PAD_P_BEFORE_N, NN_PAD_P_BEFORE_H, NN_PAD_P_BEFORE_W, NN_PAD_P_BEFORE_C};
    pad_state *s = state;
    nn_tensor x, out;
    NN_CHECK(op->n_in == 1, NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_output(op, &out));
    NN_CHECK(x.dtype == out.dtype, NN_ERR_BAD_PLAN);
    for (int k = 0; k < 4; k++) {
        s->in_dims[k] = x.d[k];
        s->out_dims[k] = out.d[k];
        s->pad_before[k] = nn_op_param(op, before[k]);
        NN_CHECK(s->pad_before[k] >= 0 && s->pad_before[k] <= 65535 &&
                     (int64_t)s->in_dims[k] + s->pad_before[k] <= s->out_dims[k],
                 NN_ERR_BAD_SIZE);
    }
    uint32_t v = (uint32_t)nn_op_param(op, NN_PAD_P_VALUE);
    for (int k = 0; k < 4; k++) {
        s->pad_value[k] = (uint8_t)(v >> (8 * k));
    }
    s->elem_bytes = (int32_t)nn_dtype_size(out.dtype);
    s->in = x.ptr;
    s->out = out.ptr;
    *kernel = "pad_any_ref";
    return NN_OK;
}

void nn_pad_eval(const void *state)
{
    const pad_state *s = state;
    pad_any_ref(s->in_dims, s->pad_before, s->out_dims, s->elem_bytes, s->pad_value, s->in, s->out);
}

typedef struct {
    int32_t outer, num_inputs;
    int32_t inner_bytes[NN_MAX_OP_INPUTS];
    const uint8_t *in[NN_MAX_OP_INPUTS];
    uint8_t *out;
} concat_state;
NN_STATE_FITS(concat_state);

int nn_concat_prepare(const nn_op *op, void *state, const char **kernel)
{
    concat_state *s = state;
    nn_tensor out;
    NN_TRY(nn_op_output(op, &out));
    int32_t axis = nn_op_param(op, NN_CONCAT_P_AXIS);
    NN_CHECK(axis >= 0 && axis <= 3, NN_ERR_BAD_PLAN);
    int64_t total_axis = 0;
    uint32_t es = nn_dtype_size(out.dtype);
    for (uint32_t k = 0; k < op->n_in; k++) {
        nn_tensor x;
        NN_TRY(nn_op_input(op, k, &x));
        NN_CHECK(x.dtype == out.dtype, NN_ERR_BAD_PLAN);
        for (int d = 0; d < 4; d++) {
            NN_CHECK(d == axis || x.d[d] == out.d[d], NN_ERR_BAD_SIZE);
        }
        total_axis += x.d[axis];
        int32_t inner = 1;
        for (int d = axis; d < 4; d++) {
            inner *= x.d[d];
        }
        s->in[k] = x.ptr;
        s->inner_bytes[k] = inner * (int32_t)es;
    }
    NN_CHECK(total_axis == out.d[axis], NN_ERR_BAD_SIZE);
    s->outer = 1;
    for (int d = 0; d < axis; d++) {
        s->outer *= out.d[d];
    }
    s->num_inputs = (int32_t)op->n_in;
    s->out = out.ptr;
    *kernel = "concatenation_any_ref";
    return NN_OK;
}

void nn_concat_eval(const void *state)
{
    const concat_state *s = state;
    concatenation_any_ref(s->outer, s->num_inputs, s->in, s->inner_bytes, s->out);
}
