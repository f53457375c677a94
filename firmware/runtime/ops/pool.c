/* AVERAGE_POOL_2D / MAX_POOL_2D, int8, int16 and float32 (one parameter layout: NN_POOL_P_*). */
#include "ops.h"
#include "../../kernels/nn_wrappers.h"

typedef struct {
    nn_pool_params p;
    nn_dims in_d, out_d;
    const void *in;
    void *out;
} pool_state;
NN_STATE_FITS(pool_state);

static NN_LOAD_TIME int prepare_pool(const nn_op *op, uint8_t dt, pool_state *s)
{
    nn_tensor x, out;
    const int is_float = dt == NN_DT_FLOAT32;
    NN_CHECK(op->n_in == 1, NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(op, 0, &x));
    NN_TRY(nn_op_output(op, &out));
    NN_CHECK(nn_is_dt(&x, dt) && nn_is_dt(&out, dt), NN_ERR_BAD_PLAN);
    nn_pool_params *p = &s->p;
    p->stride_w = nn_op_param(op, NN_POOL_P_STRIDE_W);
    p->stride_h = nn_op_param(op, NN_POOL_P_STRIDE_H);
    p->pad_w = nn_op_param(op, NN_POOL_P_PAD_W);
    p->pad_h = nn_op_param(op, NN_POOL_P_PAD_H);
    p->filter_w = nn_op_param(op, NN_POOL_P_FILTER_W);
    p->filter_h = nn_op_param(op, NN_POOL_P_FILTER_H);
    NN_CHECK(p->stride_w >= 1 && p->stride_h >= 1 && p->stride_w <= 1024 && p->stride_h <= 1024, NN_ERR_BAD_PLAN);
    NN_CHECK(p->pad_w >= 0 && p->pad_h >= 0 && p->pad_w <= 65535 && p->pad_h <= 65535, NN_ERR_BAD_PLAN);
    NN_CHECK(p->filter_w >= 1 && p->filter_h >= 1 && p->filter_w <= 65535 && p->filter_h <= 65535, NN_ERR_BAD_PLAN);
    NN_CHECK((int64_t)p->filter_w * p->filter_h <= 0x100000, NN_ERR_BAD_PLAN);
    if (is_float) {
        p->act_min_f = nn_op_param_f32(op, NN_POOL_P_ACT_MIN);
        p->act_max_f = nn_op_param_f32(op, NN_POOL_P_ACT_MAX);
    } else {
        p->act_min = nn_op_param(op, NN_POOL_P_ACT_MIN);
        p->act_max = nn_op_param(op, NN_POOL_P_ACT_MAX);
        NN_CHECK(dt == NN_DT_INT8 ? nn_check_act(p->act_min, p->act_max) : nn_check_act16(p->act_min, p->act_max),
                 NN_ERR_BAD_PLAN);
    }
    s->in_d = nn_dims_of(&x);
    s->out_d = nn_dims_of(&out);
    NN_CHECK(s->in_d.n == s->out_d.n && s->in_d.c == s->out_d.c, NN_ERR_BAD_SIZE);
    s->in = x.ptr;
    s->out = out.ptr;
    return NN_OK;
}

int nn_avgpool_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = avgpool_s8_wrapper_kernel();
    return prepare_pool(op, NN_DT_INT8, state);
}

void nn_avgpool_s8_eval(const void *state)
{
    const pool_state *s = state;
    avgpool_s8_wrapper(&s->p, &s->in_d, (const int8_t *)s->in, &s->out_d, (int8_t *)s->out);
}

int nn_maxpool_s8_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "maxpool_s8_ref";
    return prepare_pool(op, NN_DT_INT8, state);
}

void nn_maxpool_s8_eval(const void *state)
{
    const pool_state *s = state;
    maxpool_s8_ref(&s->p, &s->in_d, (const int8_t *)s->in, &s->out_d, (int8_t *)s->out);
}

int nn_avgpool_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "avgpool_f32_ref";
    return prepare_pool(op, NN_DT_FLOAT32, state);
}

void nn_avgpool_f32_eval(const void *state)
{
    const pool_state *s = state;
    avgpool_f32_ref(&s->p, &s->in_d, (const float *)s->in, &s->out_d, (float *)s->out);
}

int nn_maxpool_f32_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "maxpool_f32_ref";
    return prepare_pool(op, NN_DT_FLOAT32, state);
}

void nn_maxpool_f32_eval(const void *state)
{
    const pool_state *s = state;
    maxpool_f32_ref(&s->p, &s->in_d, (const float *)s->in, &s->out_d, (float *)s->out);
}

int nn_avgpool_s16_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "avgpool_s16_ref";
    return prepare_pool(op, NN_DT_INT16, state);
}

void nn_avgpool_s16_eval(const void *state)
{
    const pool_state *s = state;
    avgpool_s16_ref(&s->p, &s->in_d, (const int16_t *)s->in, &s->out_d, (int16_t *)s->out);
}

int nn_maxpool_s16_prepare(const nn_op *op, void *state, const char **kernel)
{
    *kernel = "maxpool_s16_ref";
    return prepare_pool(op, NN_DT_INT16, state);
}

void nn_maxpool_s16_eval(const void *state)
{
    const pool_state *s = state;
    maxpool_s16_ref(&s->p, &s->in_d, (const int16_t *)s->in, &s->out_d, (int16_t *)s->out);
}
