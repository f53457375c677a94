/* Decoding and checking a binary plan: header, tensor and op entries, and the checks several ops share. */
#include <stddef.h>
#include <string.h>

/* Everything here runs when a plan is loaded, never in an inference: compiled for size. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif

#include "plan_reader.h"

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static float f32_of_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int range_ok(uint32_t off, uint32_t len, uint32_t total) { return off <= total && len <= total - off; }

static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

uint32_t nn_dtype_size(uint32_t dtype)
{
    switch (dtype) {
    case NN_DT_INT8:
    case NN_DT_UINT8:
        return 1;
    case NN_DT_INT16:
        return 2;
    case NN_DT_INT32:
    case NN_DT_FLOAT32:
        return 4;
    case NN_DT_INT64:
        return 8;
    default:
        return 0;
    }
}

int nn_plan_parse_header(const uint8_t *plan, uint32_t len, nn_plan *h)
{
    if (plan == NULL || len < NN_PLAN_HEADER_BYTES) {
        return NN_ERR_BAD_PLAN;
    }
    if (rd32(plan) != NN_PLAN_MAGIC) {
        return NN_ERR_BAD_PLAN;
    }
    if (rd16(plan + 4) != NN_PLAN_VERSION) {
        return NN_ERR_VERSION;
    }
    if (rd16(plan + 6) != NN_PLAN_HEADER_BYTES || rd32(plan + 8) != len) {
        return NN_ERR_BAD_SIZE;
    }
    h->plan = plan;
    h->arena = NULL;
    h->arena_needed = rd32(plan + 12);
    h->scratch_offset = rd32(plan + 16);
    h->num_tensors = rd16(plan + 20);
    h->num_ops = rd16(plan + 22);
    h->num_inputs = rd16(plan + 24);
    h->num_outputs = rd16(plan + 26);
    h->tensors_off = rd32(plan + 28);
    h->ops_off = rd32(plan + 32);
    h->ids_off = rd32(plan + 36);
    h->num_ids = rd32(plan + 40);
    h->params_off = rd32(plan + 44);
    h->num_params = rd32(plan + 48);
    h->const_off = rd32(plan + 52);
    h->const_bytes = rd32(plan + 56);
    if (fnv1a(plan + NN_PLAN_HEADER_BYTES, len - NN_PLAN_HEADER_BYTES) != rd32(plan + 60)) {
        return NN_ERR_BAD_PLAN;
    }
    if (h->num_tensors == 0 || h->num_tensors >= NN_PLAN_NONE) {
        return NN_ERR_BAD_PLAN;
    }
    if (!range_ok(h->tensors_off, h->num_tensors * NN_PLAN_TENSOR_BYTES, len) ||
        !range_ok(h->ops_off, h->num_ops * NN_PLAN_OP_BYTES, len) || h->num_ids > 0x10000000u ||
        !range_ok(h->ids_off, h->num_ids * 2u, len) || h->num_params > 0x10000000u ||
        !range_ok(h->params_off, h->num_params * 4u, len) || !range_ok(h->const_off, h->const_bytes, len)) {
        return NN_ERR_BAD_SIZE;
    }
    if ((h->tensors_off | h->ops_off | h->params_off | h->const_off) & 3u) {
        return NN_ERR_BAD_PLAN;
    }
    if (h->num_inputs + h->num_outputs > h->num_ids || h->scratch_offset > h->arena_needed ||
        (h->scratch_offset & 3u)) {
        return NN_ERR_BAD_PLAN;
    }
    /* arena: planned tensors [0, scratch_offset), scratch, then one state slot per layer at the end */
    uint32_t state_bytes = h->num_ops * NN_LAYER_STATE_BYTES; /* < 2^24: num_ops is a u16 */
    if (h->arena_needed - h->scratch_offset < state_bytes) {
        return NN_ERR_BAD_PLAN;
    }
    h->state_offset = h->arena_needed - state_bytes;
    if (h->state_offset & 15u) {
        return NN_ERR_BAD_PLAN;
    }
    return NN_OK;
}

uint32_t nn_plan_id(const nn_plan *p, uint32_t i) { return rd16(p->plan + p->ids_off + 2u * i); }

int nn_plan_tensor(const nn_plan *p, uint32_t id, nn_tensor *t)
{
    if (id >= p->num_tensors) {
        return NN_ERR_BAD_INDEX;
    }
    const uint8_t *e = p->plan + p->tensors_off + id * NN_PLAN_TENSOR_BYTES;
    t->dtype = e[0];
    t->loc = e[1];
    t->ndim = e[2];
    t->offset = rd32(e + 4);
    t->bytes = rd32(e + 8);
    t->zp = (int32_t)rd32(e + 12);
    t->scale = f32_of_bits(rd32(e + 16));
    uint32_t es = nn_dtype_size(t->dtype);
    if (es == 0 || t->ndim > 4 || t->loc > NN_LOC_CONST) {
        return NN_ERR_BAD_PLAN;
    }
    uint32_t count = 1;
    for (int i = 0; i < 4; i++) {
        t->d[i] = 1;
    }
    for (uint32_t i = 0; i < t->ndim; i++) {
        uint32_t v = rd16(e + 20 + 2 * i);
        if (v == 0) {
            return NN_ERR_BAD_SIZE;
        }
        t->d[4 - t->ndim + i] = (int32_t)v;
        if ((uint64_t)count * v > 0x10000000u) {
            return NN_ERR_BAD_SIZE;
        }
        count *= v;
    }
    t->count = count;
    if ((uint64_t)count * es != t->bytes) {
        return NN_ERR_BAD_SIZE;
    }
    if (es > 1 && (t->offset & 3u)) {
        return NN_ERR_BAD_PLAN;
    }
    if (t->loc == NN_LOC_ARENA) {
        if (!range_ok(t->offset, t->bytes, p->scratch_offset)) {
            return NN_ERR_BAD_SIZE;
        }
        t->ptr = p->arena + t->offset;
    } else {
        if (!range_ok(t->offset, t->bytes, p->const_bytes)) {
            return NN_ERR_BAD_SIZE;
        }
        t->ptr = (uint8_t *)(uintptr_t)(p->plan + p->const_off + t->offset);
    }
    return NN_OK;
}

int nn_plan_op(const nn_plan *p, uint32_t i, nn_op *o)
{
    const uint8_t *e = p->plan + p->ops_off + i * NN_PLAN_OP_BYTES;
    o->plan = p;
    o->kind = (uint16_t)rd16(e);
    o->n_in = e[2];
    o->ids_start = rd32(e + 4);
    o->params_start = rd32(e + 8);
    o->n_params = rd32(e + 12);
    o->scratch_bytes = rd32(e + 16);
    if (o->n_in > NN_MAX_OP_INPUTS || e[3] != 1) {
        return NN_ERR_BAD_PLAN;
    }
    /* the scratch region ends where the layer state begins */
    if (!range_ok(o->ids_start, (uint32_t)o->n_in + 1u, p->num_ids) ||
        !range_ok(o->params_start, o->n_params, p->num_params) ||
        !range_ok(p->scratch_offset, o->scratch_bytes, p->state_offset)) {
        return NN_ERR_BAD_SIZE;
    }
    return NN_OK;
}

int nn_op_has_input(const nn_op *o, uint32_t k)
{
    return k < o->n_in && nn_plan_id(o->plan, o->ids_start + k) != NN_PLAN_NONE;
}

int nn_op_input(const nn_op *o, uint32_t k, nn_tensor *t)
{
    NN_CHECK(nn_op_has_input(o, k), NN_ERR_BAD_PLAN);
    return nn_plan_tensor(o->plan, nn_plan_id(o->plan, o->ids_start + k), t);
}

int nn_op_output(const nn_op *o, nn_tensor *t)
{
    return nn_plan_tensor(o->plan, nn_plan_id(o->plan, o->ids_start + o->n_in), t);
}

int32_t nn_op_param(const nn_op *o, uint32_t i)
{
    if (i >= o->n_params) {
        return 0;
    }
    return (int32_t)rd32(o->plan->plan + o->plan->params_off + 4u * (o->params_start + i));
}

float nn_op_param_f32(const nn_op *o, uint32_t i) { return f32_of_bits((uint32_t)nn_op_param(o, i)); }

uint8_t *nn_op_scratch(const nn_op *o) { return o->plan->arena + o->plan->scratch_offset; }

nn_dims nn_dims_of(const nn_tensor *t)
{
    nn_dims d = {t->d[0], t->d[1], t->d[2], t->d[3]};
    return d;
}

int nn_check_requant_arrays(const nn_tensor *mult, const nn_tensor *shift, int32_t n)
{
    NN_CHECK(nn_is_dt(mult, NN_DT_INT32) && nn_is_dt(shift, NN_DT_INT32), NN_ERR_BAD_PLAN);
    NN_CHECK((int32_t)mult->count == n && (int32_t)shift->count == n, NN_ERR_BAD_SIZE);
    for (int32_t i = 0; i < n; i++) {
        int32_t s;
        memcpy(&s, shift->ptr + 4 * i, 4);
        NN_CHECK(nn_check_shift(s), NN_ERR_BAD_PLAN);
    }
    return NN_OK;
}

int nn_op_bias_s32(const nn_op *o, uint32_t k, int32_t n, const int32_t **bias)
{
    *bias = NULL;
    if (!nn_op_has_input(o, k)) {
        return NN_OK;
    }
    nn_tensor t;
    NN_TRY(nn_op_input(o, k, &t));
    NN_CHECK(nn_is_dt(&t, NN_DT_INT32) && (int32_t)t.count == n, NN_ERR_BAD_SIZE);
    *bias = (const int32_t *)(const void *)t.ptr;
    return NN_OK;
}

int nn_op_bias_s64(const nn_op *o, uint32_t k, int32_t n, const int64_t **bias)
{
    *bias = NULL;
    if (!nn_op_has_input(o, k)) {
        return NN_OK;
    }
    nn_tensor t;
    NN_TRY(nn_op_input(o, k, &t));
    NN_CHECK(nn_is_dt(&t, NN_DT_INT64) && (int32_t)t.count == n, NN_ERR_BAD_SIZE);
    *bias = (const int64_t *)(const void *)t.ptr;
    return NN_OK;
}

int nn_op_bias_f32(const nn_op *o, uint32_t k, int32_t n, const float **bias)
{
    *bias = NULL;
    if (!nn_op_has_input(o, k)) {
        return NN_OK;
    }
    nn_tensor t;
    NN_TRY(nn_op_input(o, k, &t));
    NN_CHECK(nn_is_dt(&t, NN_DT_FLOAT32) && (int32_t)t.count == n, NN_ERR_BAD_SIZE);
    *bias = (const float *)(const void *)t.ptr;
    return NN_OK;
}

int nn_op_unary(const nn_op *o, uint8_t in_dt, uint8_t out_dt, nn_tensor *x, nn_tensor *out)
{
    NN_CHECK(o->n_in == 1, NN_ERR_BAD_PLAN);
    NN_TRY(nn_op_input(o, 0, x));
    NN_TRY(nn_op_output(o, out));
    NN_CHECK(nn_is_dt(x, in_dt) && nn_is_dt(out, out_dt), NN_ERR_BAD_PLAN);
    NN_CHECK(x->count == out->count, NN_ERR_BAD_SIZE);
    return NN_OK;
}

int nn_check_no_overlap(const nn_op *o, const nn_tensor *out)
{
    for (uint32_t k = 0; k < o->n_in; k++) {
        nn_tensor t;
        if (!nn_op_has_input(o, k)) {
            continue;
        }
        NN_TRY(nn_op_input(o, k, &t));
        if (t.loc != NN_LOC_ARENA) {
            continue;
        }
        int disjoint = t.offset + t.bytes <= out->offset || out->offset + out->bytes <= t.offset;
        int alias = o->kind == NN_OP_COPY && t.offset == out->offset && t.bytes == out->bytes;
        NN_CHECK(disjoint || alias, NN_ERR_BAD_PLAN);
    }
    return NN_OK;
}
