/*
 * Plan executor: validates a binary plan (measure_agent/plan/FORMAT.md) once in nn_load, then runs its
 * layers in order with the kernels of the selected variant (NN_SIMD=1: Armv7E-M SIMD kernels where
 * they exist, else the portable reference kernels).
 *
 * Safety: every offset, length, id, shape and parameter that a kernel relies on is checked in nn_load,
 * so a malformed plan gives an error status and never an out-of-bounds access.
 */
#include <stddef.h>
#include <string.h>

#include "executor.h"
#include "plan_format.h"
#include "../kernels/nn_kernels.h"
#include "../kernels/nn_quant.h"

#ifndef NN_SIMD
#define NN_SIMD 0
#endif

typedef struct {
    uint8_t dtype, loc, ndim;
    uint32_t offset, bytes, count;
    int32_t zp;
    float scale;
    int32_t d[4]; /* shape right-aligned into 4-D (n, h, w, c) */
    uint8_t *ptr;
} tview;

typedef struct {
    uint16_t kind;
    uint8_t n_in, n_out;
    uint32_t ids_start, params_start, n_params, scratch_bytes;
} opview;

/* Everything one layer's kernel call needs, decoded from the plan. */
typedef struct {
    uint16_t kind;
    tview in[NN_MAX_OP_INPUTS];
    tview out;
    int has[NN_MAX_OP_INPUTS];
    nn_dims in_d, f_d, out_d;
    nn_conv_params conv;
    nn_pool_params pool;
    nn_fc_params fc;
    nn_binary_params bin;
    int32_t w[8];
    int32_t batches, in_len, out_len;
    const uint8_t *cat_in[NN_MAX_OP_INPUTS];
    int32_t cat_inner[NN_MAX_OP_INPUTS];
    int32_t pad_in[4], pad_before[4], pad_out[4];
    uint8_t *scratch;
} opctx;

static struct {
    const uint8_t *plan;
    uint32_t plan_len;
    uint8_t *arena;
    uint32_t arena_len;
    uint32_t arena_needed, scratch_offset;
    uint32_t num_tensors, num_ops, num_inputs, num_outputs;
    uint32_t tensors_off, ops_off, ids_off, num_ids, params_off, num_params, const_off, const_bytes;
    int loaded;
} g_nn;

static opctx g_ctx;

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static float rdf(uint32_t bits)
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

static uint32_t dtype_size(uint32_t dt)
{
    switch (dt) {
    case NN_DT_INT8:
    case NN_DT_UINT8:
        return 1;
    case NN_DT_INT16:
        return 2;
    case NN_DT_INT32:
    case NN_DT_FLOAT32:
        return 4;
    default:
        return 0;
    }
}

/* Parses and checks the header of a plan; fills g-like fields into `h`. */
typedef struct {
    uint32_t arena_needed, scratch_offset, num_tensors, num_ops, num_inputs, num_outputs;
    uint32_t tensors_off, ops_off, ids_off, num_ids, params_off, num_params, const_off, const_bytes;
} header;

static int parse_header(const uint8_t *plan, uint32_t len, header *h)
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
    return NN_OK;
}

uint32_t nn_arena_bytes_needed(const uint8_t *plan, uint32_t plan_len)
{
    header h;
    if (parse_header(plan, plan_len, &h) != NN_OK) {
        return 0;
    }
    return h.arena_needed == 0 ? 16u : h.arena_needed;
}

static uint32_t id_at(uint32_t i) { return rd16(g_nn.plan + g_nn.ids_off + 2u * i); }
static int32_t param_at(const opview *o, uint32_t i) { return (int32_t)rd32(g_nn.plan + g_nn.params_off + 4u * (o->params_start + i)); }


/* Decodes and checks tensor `id`. */
static int get_tensor(uint32_t id, tview *t)
{
    if (id >= g_nn.num_tensors) {
        return NN_ERR_BAD_INDEX;
    }
    const uint8_t *e = g_nn.plan + g_nn.tensors_off + id * NN_PLAN_TENSOR_BYTES;
    t->dtype = e[0];
    t->loc = e[1];
    t->ndim = e[2];
    t->offset = rd32(e + 4);
    t->bytes = rd32(e + 8);
    t->zp = (int32_t)rd32(e + 12);
    t->scale = rdf(rd32(e + 16));
    uint32_t es = dtype_size(t->dtype);
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
        if (!range_ok(t->offset, t->bytes, g_nn.scratch_offset)) {
            return NN_ERR_BAD_SIZE;
        }
        t->ptr = g_nn.arena + t->offset;
    } else {
        if (!range_ok(t->offset, t->bytes, g_nn.const_bytes)) {
            return NN_ERR_BAD_SIZE;
        }
        t->ptr = (uint8_t *)(uintptr_t)(g_nn.plan + g_nn.const_off + t->offset);
    }
    return NN_OK;
}

static int get_op(uint32_t i, opview *o)
{
    const uint8_t *e = g_nn.plan + g_nn.ops_off + i * NN_PLAN_OP_BYTES;
    o->kind = (uint16_t)rd16(e);
    o->n_in = e[2];
    o->n_out = e[3];
    o->ids_start = rd32(e + 4);
    o->params_start = rd32(e + 8);
    o->n_params = rd32(e + 12);
    o->scratch_bytes = rd32(e + 16);
    if (o->n_in > NN_MAX_OP_INPUTS || o->n_out != 1) {
        return NN_ERR_BAD_PLAN;
    }
    if (!range_ok(o->ids_start, (uint32_t)o->n_in + o->n_out, g_nn.num_ids) ||
        !range_ok(o->params_start, o->n_params, g_nn.num_params) ||
        !range_ok(g_nn.scratch_offset, o->scratch_bytes, g_nn.arena_needed)) {
        return NN_ERR_BAD_SIZE;
    }
    return NN_OK;
}

static nn_dims dims_of(const tview *t)
{
    nn_dims d = {t->d[0], t->d[1], t->d[2], t->d[3]};
    return d;
}

#define CHECK(cond, err)                                                                                          \
    do {                                                                                                          \
        if (!(cond)) {                                                                                            \
            return (err);                                                                                         \
        }                                                                                                         \
    } while (0)

static int is_dt(const tview *t, uint8_t dt) { return t->dtype == dt; }

static int check_act(int32_t lo, int32_t hi) { return lo >= -128 && hi <= 127 && lo <= hi; }
static int check_shift(int32_t s) { return s >= -31 && s <= 30; }
static int check_offset(int32_t o) { return o >= -255 && o <= 255; }

/* Per-channel multiplier/shift arrays: int32 constants of length n with shifts in range. */
static int check_requant_arrays(const opctx *c, int mi, int si, int32_t n)
{
    CHECK(c->has[mi] && c->has[si], NN_ERR_BAD_PLAN);
    CHECK(is_dt(&c->in[mi], NN_DT_INT32) && is_dt(&c->in[si], NN_DT_INT32), NN_ERR_BAD_PLAN);
    CHECK((int32_t)c->in[mi].count == n && (int32_t)c->in[si].count == n, NN_ERR_BAD_SIZE);
    for (int32_t i = 0; i < n; i++) {
        int32_t s;
        memcpy(&s, c->in[si].ptr + 4 * i, 4);
        CHECK(check_shift(s), NN_ERR_BAD_PLAN);
    }
    return NN_OK;
}

/* int32 bias of n values within +-2^30: with K <= 32768 taps the accumulator then never overflows. */
static int check_bias_s32(const opctx *c, int idx, int32_t n)
{
    if (!c->has[idx]) {
        return NN_OK;
    }
    CHECK(is_dt(&c->in[idx], NN_DT_INT32) && (int32_t)c->in[idx].count == n, NN_ERR_BAD_SIZE);
    for (int32_t i = 0; i < n; i++) {
        int32_t v;
        memcpy(&v, c->in[idx].ptr + 4 * i, 4);
        CHECK(v >= -(1 << 30) && v <= (1 << 30), NN_ERR_BAD_PLAN);
    }
    return NN_OK;
}

/* Kernels never run in place: an output must not overlap any arena input (aliased RESHAPEs excepted). */
static int check_no_overlap(const opctx *c, uint32_t n_in)
{
    for (uint32_t k = 0; k < n_in; k++) {
        const tview *t = &c->in[k];
        if (!c->has[k] || t->loc != NN_LOC_ARENA) {
            continue;
        }
        int disjoint = t->offset + t->bytes <= c->out.offset || c->out.offset + c->out.bytes <= t->offset;
        int alias = c->kind == NN_OP_COPY && t->offset == c->out.offset && t->bytes == c->out.bytes;
        CHECK(disjoint || alias, NN_ERR_BAD_PLAN);
    }
    return NN_OK;
}

/* The first six parameters of every convolution op: strides, paddings, dilations. */
static void read_conv_geometry(const opview *o, opctx *c)
{
    c->conv.stride_w = param_at(o, 0);
    c->conv.stride_h = param_at(o, 1);
    c->conv.pad_w = param_at(o, 2);
    c->conv.pad_h = param_at(o, 3);
    c->conv.dil_w = param_at(o, 4);
    c->conv.dil_h = param_at(o, 5);
}

static int check_conv_geometry(const opctx *c, int depthwise)
{
    CHECK(c->conv.stride_w >= 1 && c->conv.stride_h >= 1 && c->conv.stride_w <= 1024 && c->conv.stride_h <= 1024,
          NN_ERR_BAD_PLAN);
    CHECK(c->conv.dil_w >= 1 && c->conv.dil_h >= 1 && c->conv.dil_w <= 1024 && c->conv.dil_h <= 1024, NN_ERR_BAD_PLAN);
    CHECK(c->conv.pad_w >= 0 && c->conv.pad_h >= 0 && c->conv.pad_w <= 65535 && c->conv.pad_h <= 65535,
          NN_ERR_BAD_PLAN);
    CHECK(c->in_d.n == c->out_d.n, NN_ERR_BAD_SIZE);
    if (depthwise) {
        CHECK(c->f_d.n == 1 && c->f_d.c == c->out_d.c, NN_ERR_BAD_SIZE);
        CHECK(c->conv.depth_multiplier >= 1 && (int64_t)c->in_d.c * c->conv.depth_multiplier == c->out_d.c,
              NN_ERR_BAD_SIZE);
        CHECK(c->f_d.h * c->f_d.w <= 32768, NN_ERR_BAD_SIZE);
    } else {
        CHECK(c->f_d.c == c->in_d.c && c->f_d.n == c->out_d.c, NN_ERR_BAD_SIZE);
        CHECK((int64_t)c->f_d.h * c->f_d.w * c->f_d.c <= 32768, NN_ERR_BAD_SIZE);
    }
    return NN_OK;
}

static int load_pool(opctx *c, const opview *o, int is_float)
{
    CHECK(o->n_params == 8 && o->n_in == 1, NN_ERR_BAD_PLAN);
    c->pool.stride_w = param_at(o, 0);
    c->pool.stride_h = param_at(o, 1);
    c->pool.pad_w = param_at(o, 2);
    c->pool.pad_h = param_at(o, 3);
    c->pool.filter_w = param_at(o, 4);
    c->pool.filter_h = param_at(o, 5);
    CHECK(c->pool.stride_w >= 1 && c->pool.stride_h >= 1 && c->pool.stride_w <= 1024 && c->pool.stride_h <= 1024,
          NN_ERR_BAD_PLAN);
    CHECK(c->pool.pad_w >= 0 && c->pool.pad_h >= 0 && c->pool.pad_w <= 65535 && c->pool.pad_h <= 65535,
          NN_ERR_BAD_PLAN);
    CHECK(c->pool.filter_w >= 1 && c->pool.filter_h >= 1 && c->pool.filter_w <= 65535 && c->pool.filter_h <= 65535,
          NN_ERR_BAD_PLAN);
    CHECK((int64_t)c->pool.filter_w * c->pool.filter_h <= 0x100000, NN_ERR_BAD_PLAN);
    if (is_float) {
        c->pool.act_min_f = rdf((uint32_t)param_at(o, 6));
        c->pool.act_max_f = rdf((uint32_t)param_at(o, 7));
    } else {
        c->pool.act_min = param_at(o, 6);
        c->pool.act_max = param_at(o, 7);
        CHECK(check_act(c->pool.act_min, c->pool.act_max), NN_ERR_BAD_PLAN);
    }
    c->in_d = dims_of(&c->in[0]);
    c->out_d = dims_of(&c->out);
    CHECK(c->in_d.n == c->out_d.n && c->in_d.c == c->out_d.c, NN_ERR_BAD_SIZE);
    return NN_OK;
}

/* Broadcast strides of `t` against the 4-D output dims. */
static int broadcast_strides(const tview *t, const int32_t out[4], int32_t strides[4])
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

/* Decodes op `i` into `c`, checking everything. */
static int prepare_op(uint32_t i, opctx *c)
{
    opview o;
    int rc = get_op(i, &o);
    if (rc != NN_OK) {
        return rc;
    }
    c->kind = o.kind;
    for (uint32_t k = 0; k < o.n_in; k++) {
        uint32_t id = id_at(o.ids_start + k);
        c->has[k] = id != NN_PLAN_NONE;
        if (c->has[k]) {
            rc = get_tensor(id, &c->in[k]);
            if (rc != NN_OK) {
                return rc;
            }
        }
    }
    for (uint32_t k = o.n_in; k < NN_MAX_OP_INPUTS; k++) {
        c->has[k] = 0;
    }
    rc = get_tensor(id_at(o.ids_start + o.n_in), &c->out);
    if (rc != NN_OK) {
        return rc;
    }
    CHECK(c->out.loc == NN_LOC_ARENA, NN_ERR_BAD_PLAN);
    CHECK(o.n_in >= 1 && c->has[0], NN_ERR_BAD_PLAN);
    rc = check_no_overlap(c, o.n_in);
    if (rc != NN_OK) {
        return rc;
    }
    c->scratch = g_nn.arena + g_nn.scratch_offset;
    const tview *in0 = &c->in[0];
    const tview *out = &c->out;

    switch (o.kind) {
    case NN_OP_CONV_S8:
    case NN_OP_DWCONV_S8: {
        int dw = o.kind == NN_OP_DWCONV_S8;
        CHECK(o.n_in == 5 && o.n_params == (dw ? 11u : 10u), NN_ERR_BAD_PLAN);
        CHECK(is_dt(in0, NN_DT_INT8) && is_dt(out, NN_DT_INT8) && c->has[1] && is_dt(&c->in[1], NN_DT_INT8),
              NN_ERR_BAD_PLAN);
        read_conv_geometry(&o, c);
        c->conv.input_offset = param_at(&o, 6);
        c->conv.output_offset = param_at(&o, 7);
        c->conv.act_min = param_at(&o, 8);
        c->conv.act_max = param_at(&o, 9);
        c->conv.depth_multiplier = dw ? param_at(&o, 10) : 1;
        CHECK(check_act(c->conv.act_min, c->conv.act_max) && check_offset(c->conv.input_offset) &&
                  check_offset(c->conv.output_offset),
              NN_ERR_BAD_PLAN);
        c->in_d = dims_of(in0);
        c->f_d = dims_of(&c->in[1]);
        c->out_d = dims_of(out);
        rc = check_conv_geometry(c, dw);
        if (rc != NN_OK) {
            return rc;
        }
        rc = check_bias_s32(c, 2, c->out_d.c);
        if (rc != NN_OK) {
            return rc;
        }
        rc = check_requant_arrays(c, 3, 4, c->out_d.c);
        if (rc != NN_OK) {
            return rc;
        }
#if NN_SIMD
        if (!dw) {
            CHECK(o.scratch_bytes >= conv2d_s8_simd_scratch_bytes(&c->f_d), NN_ERR_ARENA_TOO_SMALL);
        }
#endif
        return NN_OK;
    }
    case NN_OP_FC_S8: {
        CHECK(o.n_in == 5 && o.n_params == 4, NN_ERR_BAD_PLAN);
        CHECK(is_dt(in0, NN_DT_INT8) && is_dt(out, NN_DT_INT8) && c->has[1] && is_dt(&c->in[1], NN_DT_INT8),
              NN_ERR_BAD_PLAN);
        c->fc.input_offset = param_at(&o, 0);
        c->fc.output_offset = param_at(&o, 1);
        c->fc.act_min = param_at(&o, 2);
        c->fc.act_max = param_at(&o, 3);
        CHECK(check_act(c->fc.act_min, c->fc.act_max) && check_offset(c->fc.input_offset) &&
                  check_offset(c->fc.output_offset),
              NN_ERR_BAD_PLAN);
        c->out_len = c->in[1].d[2];
        c->in_len = c->in[1].d[3];
        CHECK(c->in[1].d[0] == 1 && c->in[1].d[1] == 1 && c->in_len <= 32768, NN_ERR_BAD_SIZE);
        CHECK(in0->count % (uint32_t)c->in_len == 0, NN_ERR_BAD_SIZE);
        c->batches = (int32_t)(in0->count / (uint32_t)c->in_len);
        CHECK((uint64_t)c->batches * (uint32_t)c->out_len == out->count, NN_ERR_BAD_SIZE);
        rc = check_bias_s32(c, 2, c->out_len);
        if (rc != NN_OK) {
            return rc;
        }
        rc = check_requant_arrays(c, 3, 4, c->out_len);
        if (rc != NN_OK) {
            return rc;
        }
#if NN_SIMD
        CHECK(o.scratch_bytes >= fully_connected_s8_simd_scratch_bytes(c->in_len), NN_ERR_ARENA_TOO_SMALL);
#endif
        return NN_OK;
    }
    case NN_OP_AVGPOOL_S8:
    case NN_OP_MAXPOOL_S8:
        CHECK(is_dt(in0, NN_DT_INT8) && is_dt(out, NN_DT_INT8), NN_ERR_BAD_PLAN);
        return load_pool(c, &o, 0);
    case NN_OP_AVGPOOL_F32:
    case NN_OP_MAXPOOL_F32:
        CHECK(is_dt(in0, NN_DT_FLOAT32) && is_dt(out, NN_DT_FLOAT32), NN_ERR_BAD_PLAN);
        return load_pool(c, &o, 1);
    case NN_OP_ADD_S8:
    case NN_OP_MUL_S8:
    case NN_OP_ADD_F32:
    case NN_OP_MUL_F32: {
        int is_float = o.kind == NN_OP_ADD_F32 || o.kind == NN_OP_MUL_F32;
        uint8_t dt = is_float ? NN_DT_FLOAT32 : NN_DT_INT8;
        CHECK(o.n_in == 2 && c->has[1], NN_ERR_BAD_PLAN);
        CHECK(is_dt(in0, dt) && is_dt(&c->in[1], dt) && is_dt(out, dt), NN_ERR_BAD_PLAN);
        for (int k = 0; k < 4; k++) {
            c->bin.out_dims[k] = out->d[k];
        }
        rc = broadcast_strides(in0, c->bin.out_dims, c->bin.in1_strides);
        if (rc == NN_OK) {
            rc = broadcast_strides(&c->in[1], c->bin.out_dims, c->bin.in2_strides);
        }
        if (rc != NN_OK) {
            return rc;
        }
        if (is_float) {
            CHECK(o.n_params == 2, NN_ERR_BAD_PLAN);
            c->bin.act_min_f = rdf((uint32_t)param_at(&o, 0));
            c->bin.act_max_f = rdf((uint32_t)param_at(&o, 1));
        } else if (o.kind == NN_OP_ADD_S8) {
            CHECK(o.n_params == 12, NN_ERR_BAD_PLAN);
            c->bin.input1_offset = param_at(&o, 0);
            c->bin.input2_offset = param_at(&o, 1);
            c->bin.output_offset = param_at(&o, 2);
            c->bin.input1_multiplier = param_at(&o, 3);
            c->bin.input1_shift = param_at(&o, 4);
            c->bin.input2_multiplier = param_at(&o, 5);
            c->bin.input2_shift = param_at(&o, 6);
            c->bin.output_multiplier = param_at(&o, 7);
            c->bin.output_shift = param_at(&o, 8);
            c->bin.left_shift = param_at(&o, 9);
            c->bin.act_min = param_at(&o, 10);
            c->bin.act_max = param_at(&o, 11);
            CHECK(c->bin.left_shift >= 0 && c->bin.left_shift <= 20 && check_shift(c->bin.input1_shift) &&
                      check_shift(c->bin.input2_shift) && check_shift(c->bin.output_shift),
                  NN_ERR_BAD_PLAN);
        } else {
            CHECK(o.n_params == 7, NN_ERR_BAD_PLAN);
            c->bin.input1_offset = param_at(&o, 0);
            c->bin.input2_offset = param_at(&o, 1);
            c->bin.output_offset = param_at(&o, 2);
            c->bin.output_multiplier = param_at(&o, 3);
            c->bin.output_shift = param_at(&o, 4);
            c->bin.act_min = param_at(&o, 5);
            c->bin.act_max = param_at(&o, 6);
            CHECK(check_shift(c->bin.output_shift), NN_ERR_BAD_PLAN);
        }
        if (!is_float) {
            CHECK(check_offset(c->bin.input1_offset) && check_offset(c->bin.input2_offset) &&
                      check_offset(c->bin.output_offset) && check_act(c->bin.act_min, c->bin.act_max),
                  NN_ERR_BAD_PLAN);
        }
        return NN_OK;
    }
    case NN_OP_SOFTMAX_S8:
        CHECK(o.n_in == 1 && o.n_params == 3 && is_dt(in0, NN_DT_INT8) && is_dt(out, NN_DT_INT8), NN_ERR_BAD_PLAN);
        CHECK(in0->count == out->count, NN_ERR_BAD_SIZE);
        c->w[0] = param_at(&o, 0);
        c->w[1] = param_at(&o, 1);
        c->w[2] = param_at(&o, 2);
        c->in_len = in0->d[3];
        c->batches = (int32_t)(in0->count / (uint32_t)c->in_len);
        CHECK(c->w[1] >= 0 && c->w[1] <= 30 && c->in_len <= 256, NN_ERR_BAD_PLAN);
        return NN_OK;
    case NN_OP_LOGISTIC_S8:
        CHECK(o.n_in == 1 && o.n_params == 4 && is_dt(in0, NN_DT_INT8) && is_dt(out, NN_DT_INT8), NN_ERR_BAD_PLAN);
        CHECK(in0->count == out->count, NN_ERR_BAD_SIZE);
        for (int k = 0; k < 4; k++) {
            c->w[k] = param_at(&o, (uint32_t)k);
        }
        CHECK(check_offset(c->w[0]) && c->w[1] >= 0 && check_shift(c->w[3]), NN_ERR_BAD_PLAN);
        return NN_OK;
    case NN_OP_REQUANT_S8:
        CHECK(o.n_in == 1 && o.n_params == 6 && is_dt(in0, NN_DT_INT8) && is_dt(out, NN_DT_INT8), NN_ERR_BAD_PLAN);
        CHECK(in0->count == out->count, NN_ERR_BAD_SIZE);
        for (int k = 0; k < 6; k++) {
            c->w[k] = param_at(&o, (uint32_t)k);
        }
        CHECK(check_offset(c->w[0]) && check_offset(c->w[1]) && check_shift(c->w[3]) && check_act(c->w[4], c->w[5]),
              NN_ERR_BAD_PLAN);
        return NN_OK;
    case NN_OP_MEAN_S8:
    case NN_OP_MEAN_F32: {
        int is_float = o.kind == NN_OP_MEAN_F32;
        uint8_t dt = is_float ? NN_DT_FLOAT32 : NN_DT_INT8;
        CHECK(o.n_in == 1 && o.n_params == (is_float ? 0u : 4u) && is_dt(in0, dt) && is_dt(out, dt), NN_ERR_BAD_PLAN);
        c->in_d = dims_of(in0);
        CHECK((uint64_t)c->in_d.n * (uint32_t)c->in_d.c == out->count && c->in_d.h * c->in_d.w <= 0x100000,
              NN_ERR_BAD_SIZE);
        if (!is_float) {
            for (int k = 0; k < 4; k++) {
                c->w[k] = param_at(&o, (uint32_t)k);
            }
            CHECK(check_offset(c->w[0]) && check_offset(c->w[1]) && check_shift(c->w[3]), NN_ERR_BAD_PLAN);
        }
        return NN_OK;
    }
    case NN_OP_QUANTIZE_F32_S8:
    case NN_OP_DEQUANTIZE_S8_F32: {
        int q = o.kind == NN_OP_QUANTIZE_F32_S8;
        CHECK(o.n_in == 1 && o.n_params == 2, NN_ERR_BAD_PLAN);
        CHECK(is_dt(in0, q ? NN_DT_FLOAT32 : NN_DT_INT8) && is_dt(out, q ? NN_DT_INT8 : NN_DT_FLOAT32),
              NN_ERR_BAD_PLAN);
        CHECK(in0->count == out->count, NN_ERR_BAD_SIZE);
        c->w[0] = param_at(&o, 0);
        c->w[1] = param_at(&o, 1);
        CHECK(check_offset(c->w[1]), NN_ERR_BAD_PLAN);
        return NN_OK;
    }
    case NN_OP_COPY:
        CHECK(o.n_in == 1 && o.n_params == 0 && in0->bytes == out->bytes, NN_ERR_BAD_SIZE);
        return NN_OK;
    case NN_OP_PAD: {
        CHECK(o.n_in == 1 && o.n_params == 5 && in0->dtype == out->dtype, NN_ERR_BAD_PLAN);
        for (int k = 0; k < 4; k++) {
            c->pad_in[k] = in0->d[k];
            c->pad_out[k] = out->d[k];
            c->pad_before[k] = param_at(&o, (uint32_t)k);
            CHECK(c->pad_before[k] >= 0 && c->pad_before[k] <= 65535 &&
                      (int64_t)c->pad_in[k] + c->pad_before[k] <= c->pad_out[k],
                  NN_ERR_BAD_SIZE);
        }
        c->w[0] = param_at(&o, 4);
        return NN_OK;
    }
    case NN_OP_CONCAT: {
        CHECK(o.n_params == 1, NN_ERR_BAD_PLAN);
        int32_t axis = param_at(&o, 0);
        CHECK(axis >= 0 && axis <= 3, NN_ERR_BAD_PLAN);
        int64_t total_axis = 0;
        uint32_t es = dtype_size(out->dtype);
        for (uint32_t k = 0; k < o.n_in; k++) {
            CHECK(c->has[k] && c->in[k].dtype == out->dtype, NN_ERR_BAD_PLAN);
            for (int d = 0; d < 4; d++) {
                CHECK(d == axis || c->in[k].d[d] == out->d[d], NN_ERR_BAD_SIZE);
            }
            total_axis += c->in[k].d[axis];
            int32_t inner = 1;
            for (int d = axis; d < 4; d++) {
                inner *= c->in[k].d[d];
            }
            c->cat_in[k] = c->in[k].ptr;
            c->cat_inner[k] = inner * (int32_t)es;
        }
        CHECK(total_axis == out->d[axis], NN_ERR_BAD_SIZE);
        c->batches = 1;
        for (int d = 0; d < axis; d++) {
            c->batches *= out->d[d];
        }
        return NN_OK;
    }
    case NN_OP_CONV_F32:
    case NN_OP_DWCONV_F32:
    case NN_OP_CONV_HYBRID: {
        int dw = o.kind == NN_OP_DWCONV_F32;
        int hy = o.kind == NN_OP_CONV_HYBRID;
        CHECK(o.n_in == (hy ? 4u : 3u) && o.n_params == (dw ? 9u : (hy ? 9u : 8u)), NN_ERR_BAD_PLAN);
        CHECK(is_dt(in0, NN_DT_FLOAT32) && is_dt(out, NN_DT_FLOAT32) && c->has[1] &&
                  is_dt(&c->in[1], hy ? NN_DT_INT8 : NN_DT_FLOAT32),
              NN_ERR_BAD_PLAN);
        read_conv_geometry(&o, c);
        c->conv.act_min_f = rdf((uint32_t)param_at(&o, 6));
        c->conv.act_max_f = rdf((uint32_t)param_at(&o, 7));
        c->conv.depth_multiplier = dw ? param_at(&o, 8) : 1;
        c->w[0] = hy ? param_at(&o, 8) : 0; /* per-channel weight scales */
        c->in_d = dims_of(in0);
        c->f_d = dims_of(&c->in[1]);
        c->out_d = dims_of(out);
        rc = check_conv_geometry(c, dw);
        if (rc != NN_OK) {
            return rc;
        }
        if (c->has[2]) {
            CHECK(is_dt(&c->in[2], NN_DT_FLOAT32) && (int32_t)c->in[2].count == c->out_d.c, NN_ERR_BAD_SIZE);
        }
        if (hy) {
            CHECK(c->has[3] && is_dt(&c->in[3], NN_DT_FLOAT32) &&
                      (int32_t)c->in[3].count == (c->w[0] ? c->out_d.c : 1),
                  NN_ERR_BAD_SIZE);
            CHECK(o.scratch_bytes >= in0->count, NN_ERR_ARENA_TOO_SMALL);
        }
        return NN_OK;
    }
    case NN_OP_FC_F32:
    case NN_OP_FC_HYBRID: {
        int hy = o.kind == NN_OP_FC_HYBRID;
        CHECK(o.n_in == (hy ? 4u : 3u) && o.n_params == (hy ? 4u : 2u), NN_ERR_BAD_PLAN);
        CHECK(is_dt(in0, NN_DT_FLOAT32) && is_dt(out, NN_DT_FLOAT32) && c->has[1] &&
                  is_dt(&c->in[1], hy ? NN_DT_INT8 : NN_DT_FLOAT32),
              NN_ERR_BAD_PLAN);
        c->fc.act_min_f = rdf((uint32_t)param_at(&o, hy ? 2 : 0));
        c->fc.act_max_f = rdf((uint32_t)param_at(&o, hy ? 3 : 1));
        c->w[0] = hy ? param_at(&o, 0) : 0;
        c->fc.asymmetric_inputs = hy ? param_at(&o, 1) : 0;
        c->out_len = c->in[1].d[2];
        c->in_len = c->in[1].d[3];
        CHECK(c->in[1].d[0] == 1 && c->in[1].d[1] == 1, NN_ERR_BAD_SIZE);
        CHECK(in0->count % (uint32_t)c->in_len == 0, NN_ERR_BAD_SIZE);
        c->batches = (int32_t)(in0->count / (uint32_t)c->in_len);
        CHECK((uint64_t)c->batches * (uint32_t)c->out_len == out->count, NN_ERR_BAD_SIZE);
        if (c->has[2]) {
            CHECK(is_dt(&c->in[2], NN_DT_FLOAT32) && (int32_t)c->in[2].count == c->out_len, NN_ERR_BAD_SIZE);
        }
        if (hy) {
            CHECK(c->has[3] && is_dt(&c->in[3], NN_DT_FLOAT32) &&
                      (int32_t)c->in[3].count == (c->w[0] ? c->out_len : 1),
                  NN_ERR_BAD_SIZE);
            CHECK(c->in_len <= 32768, NN_ERR_BAD_SIZE);
            CHECK(o.scratch_bytes >= (uint32_t)c->in_len, NN_ERR_ARENA_TOO_SMALL);
        }
        return NN_OK;
    }
    case NN_OP_SOFTMAX_F32:
    case NN_OP_LOGISTIC_F32:
    case NN_OP_CLAMP_F32: {
        uint32_t np = o.kind == NN_OP_SOFTMAX_F32 ? 1u : (o.kind == NN_OP_CLAMP_F32 ? 2u : 0u);
        CHECK(o.n_in == 1 && o.n_params == np && is_dt(in0, NN_DT_FLOAT32) && is_dt(out, NN_DT_FLOAT32),
              NN_ERR_BAD_PLAN);
        CHECK(in0->count == out->count, NN_ERR_BAD_SIZE);
        for (uint32_t k = 0; k < np; k++) {
            c->w[k] = param_at(&o, k);
        }
        c->in_len = in0->d[3];
        c->batches = (int32_t)(in0->count / (uint32_t)c->in_len);
        return NN_OK;
    }
    default:
        return NN_ERR_UNSUPPORTED_OP;
    }
}

static void run_op(opctx *c)
{
    const tview *in0 = &c->in[0];
    void *o = c->out.ptr;
    const void *b = c->has[2] ? (const void *)c->in[2].ptr : NULL;
    switch (c->kind) {
    case NN_OP_CONV_S8:
#if NN_SIMD
        conv2d_s8_simd(&c->conv, &c->in_d, (const int8_t *)in0->ptr, &c->f_d, (const int8_t *)c->in[1].ptr,
                       (const int32_t *)b, (const int32_t *)c->in[3].ptr, (const int32_t *)c->in[4].ptr, &c->out_d,
                       (int8_t *)o, (int16_t *)(void *)c->scratch);
#else
        conv2d_s8_ref(&c->conv, &c->in_d, (const int8_t *)in0->ptr, &c->f_d, (const int8_t *)c->in[1].ptr,
                      (const int32_t *)b, (const int32_t *)c->in[3].ptr, (const int32_t *)c->in[4].ptr, &c->out_d,
                      (int8_t *)o);
#endif
        break;
    case NN_OP_DWCONV_S8:
#if NN_SIMD
        depthwise_conv2d_s8_simd(&c->conv, &c->in_d, (const int8_t *)in0->ptr, &c->f_d, (const int8_t *)c->in[1].ptr,
                                 (const int32_t *)b, (const int32_t *)c->in[3].ptr, (const int32_t *)c->in[4].ptr,
                                 &c->out_d, (int8_t *)o);
#else
        depthwise_conv2d_s8_ref(&c->conv, &c->in_d, (const int8_t *)in0->ptr, &c->f_d, (const int8_t *)c->in[1].ptr,
                                (const int32_t *)b, (const int32_t *)c->in[3].ptr, (const int32_t *)c->in[4].ptr,
                                &c->out_d, (int8_t *)o);
#endif
        break;
    case NN_OP_FC_S8:
#if NN_SIMD
        fully_connected_s8_simd(&c->fc, c->batches, c->in_len, (const int8_t *)in0->ptr, c->out_len,
                                (const int8_t *)c->in[1].ptr, (const int32_t *)b, (const int32_t *)c->in[3].ptr,
                                (const int32_t *)c->in[4].ptr, (int8_t *)o, (int16_t *)(void *)c->scratch);
#else
        fully_connected_s8_ref(&c->fc, c->batches, c->in_len, (const int8_t *)in0->ptr, c->out_len,
                               (const int8_t *)c->in[1].ptr, (const int32_t *)b, (const int32_t *)c->in[3].ptr,
                               (const int32_t *)c->in[4].ptr, (int8_t *)o);
#endif
        break;
    case NN_OP_AVGPOOL_S8:
        avgpool_s8_ref(&c->pool, &c->in_d, (const int8_t *)in0->ptr, &c->out_d, (int8_t *)o);
        break;
    case NN_OP_MAXPOOL_S8:
        maxpool_s8_ref(&c->pool, &c->in_d, (const int8_t *)in0->ptr, &c->out_d, (int8_t *)o);
        break;
    case NN_OP_ADD_S8:
        add_s8_ref(&c->bin, (const int8_t *)in0->ptr, (const int8_t *)c->in[1].ptr, (int8_t *)o);
        break;
    case NN_OP_MUL_S8:
        mul_s8_ref(&c->bin, (const int8_t *)in0->ptr, (const int8_t *)c->in[1].ptr, (int8_t *)o);
        break;
    case NN_OP_SOFTMAX_S8:
        softmax_s8_ref(c->batches, c->in_len, c->w[0], c->w[1], c->w[2], (const int8_t *)in0->ptr, (int8_t *)o);
        break;
    case NN_OP_LOGISTIC_S8:
        logistic_s8_ref((int32_t)in0->count, c->w[0], c->w[1], c->w[2], c->w[3], (const int8_t *)in0->ptr,
                        (int8_t *)o);
        break;
    case NN_OP_REQUANT_S8:
        requantize_s8_ref((int32_t)in0->count, c->w[0], c->w[1], c->w[2], c->w[3], c->w[4], c->w[5],
                          (const int8_t *)in0->ptr, (int8_t *)o);
        break;
    case NN_OP_MEAN_S8:
        mean_hw_s8_ref(&c->in_d, (const int8_t *)in0->ptr, c->w[0], c->w[1], c->w[2], c->w[3], (int8_t *)o);
        break;
    case NN_OP_QUANTIZE_F32_S8:
        quantize_f32_s8_ref((int32_t)in0->count, rdf((uint32_t)c->w[0]), c->w[1], (const float *)(void *)in0->ptr,
                            (int8_t *)o);
        break;
    case NN_OP_DEQUANTIZE_S8_F32:
        dequantize_s8_f32_ref((int32_t)in0->count, rdf((uint32_t)c->w[0]), c->w[1], (const int8_t *)in0->ptr,
                              (float *)o);
        break;
    case NN_OP_COPY:
        copy_ref((int32_t)in0->bytes, in0->ptr, (uint8_t *)o);
        break;
    case NN_OP_PAD: {
        uint8_t pv[4];
        uint32_t v = (uint32_t)c->w[0];
        pv[0] = (uint8_t)v;
        pv[1] = (uint8_t)(v >> 8);
        pv[2] = (uint8_t)(v >> 16);
        pv[3] = (uint8_t)(v >> 24);
        pad_ref(c->pad_in, c->pad_before, c->pad_out, (int32_t)dtype_size(c->out.dtype), pv, in0->ptr, (uint8_t *)o);
        break;
    }
    case NN_OP_CONCAT: {
        int32_t n = 0;
        while (n < (int32_t)NN_MAX_OP_INPUTS && c->has[n]) {
            n++;
        }
        concatenation_ref(c->batches, n, c->cat_in, c->cat_inner, (uint8_t *)o);
        break;
    }
    case NN_OP_CONV_F32:
        conv2d_f32(&c->conv, &c->in_d, (const float *)(void *)in0->ptr, &c->f_d, (const float *)(void *)c->in[1].ptr,
                   (const float *)b, &c->out_d, (float *)o);
        break;
    case NN_OP_DWCONV_F32:
        depthwise_conv2d_f32(&c->conv, &c->in_d, (const float *)(void *)in0->ptr, &c->f_d,
                             (const float *)(void *)c->in[1].ptr, (const float *)b, &c->out_d, (float *)o);
        break;
    case NN_OP_FC_F32:
        fully_connected_f32(&c->fc, c->batches, c->in_len, (const float *)(void *)in0->ptr, c->out_len,
                            (const float *)(void *)c->in[1].ptr, (const float *)b, (float *)o);
        break;
    case NN_OP_AVGPOOL_F32:
        avgpool_f32(&c->pool, &c->in_d, (const float *)(void *)in0->ptr, &c->out_d, (float *)o);
        break;
    case NN_OP_MAXPOOL_F32:
        maxpool_f32(&c->pool, &c->in_d, (const float *)(void *)in0->ptr, &c->out_d, (float *)o);
        break;
    case NN_OP_ADD_F32:
        add_f32(&c->bin, (const float *)(void *)in0->ptr, (const float *)(void *)c->in[1].ptr, (float *)o);
        break;
    case NN_OP_MUL_F32:
        mul_f32(&c->bin, (const float *)(void *)in0->ptr, (const float *)(void *)c->in[1].ptr, (float *)o);
        break;
    case NN_OP_SOFTMAX_F32:
        softmax_f32(c->batches, c->in_len, rdf((uint32_t)c->w[0]), (const float *)(void *)in0->ptr, (float *)o);
        break;
    case NN_OP_LOGISTIC_F32:
        logistic_f32((int32_t)in0->count, (const float *)(void *)in0->ptr, (float *)o);
        break;
    case NN_OP_CLAMP_F32:
        clamp_f32((int32_t)in0->count, rdf((uint32_t)c->w[0]), rdf((uint32_t)c->w[1]), (const float *)(void *)in0->ptr,
                  (float *)o);
        break;
    case NN_OP_MEAN_F32:
        mean_hw_f32(&c->in_d, (const float *)(void *)in0->ptr, (float *)o);
        break;
    case NN_OP_FC_HYBRID:
        fully_connected_hybrid_f32(&c->fc, c->batches, c->in_len, (const float *)(void *)in0->ptr, c->out_len,
                                   (const int8_t *)c->in[1].ptr, (const float *)(void *)c->in[3].ptr, c->w[0],
                                   (const float *)b, (float *)o, (int8_t *)c->scratch);
        break;
    case NN_OP_CONV_HYBRID:
        conv2d_hybrid_f32(&c->conv, &c->in_d, (const float *)(void *)in0->ptr, &c->f_d, (const int8_t *)c->in[1].ptr,
                          (const float *)(void *)c->in[3].ptr, c->w[0], (const float *)b, &c->out_d, (float *)o,
                          (int8_t *)c->scratch);
        break;
    default:
        break;
    }
}

int nn_load(const uint8_t *plan, uint32_t plan_len, uint8_t *arena, uint32_t arena_len)
{
    header h;
    g_nn.loaded = 0;
    int rc = parse_header(plan, plan_len, &h);
    if (rc != NN_OK) {
        return rc;
    }
    if (((uintptr_t)plan & 3u) != 0 || arena == NULL || ((uintptr_t)arena & 3u) != 0) {
        return NN_ERR_BAD_PLAN;
    }
    if (arena_len < h.arena_needed) {
        return NN_ERR_ARENA_TOO_SMALL;
    }
    g_nn.plan = plan;
    g_nn.plan_len = plan_len;
    g_nn.arena = arena;
    g_nn.arena_len = arena_len;
    g_nn.arena_needed = h.arena_needed;
    g_nn.scratch_offset = h.scratch_offset;
    g_nn.num_tensors = h.num_tensors;
    g_nn.num_ops = h.num_ops;
    g_nn.num_inputs = h.num_inputs;
    g_nn.num_outputs = h.num_outputs;
    g_nn.tensors_off = h.tensors_off;
    g_nn.ops_off = h.ops_off;
    g_nn.ids_off = h.ids_off;
    g_nn.num_ids = h.num_ids;
    g_nn.params_off = h.params_off;
    g_nn.num_params = h.num_params;
    g_nn.const_off = h.const_off;
    g_nn.const_bytes = h.const_bytes;
    for (uint32_t i = 0; i < h.num_tensors; i++) {
        tview t;
        rc = get_tensor(i, &t);
        if (rc != NN_OK) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < h.num_inputs + h.num_outputs; i++) {
        tview t;
        rc = get_tensor(id_at(i), &t);
        if (rc != NN_OK) {
            return rc;
        }
        if (t.loc != NN_LOC_ARENA) {
            return NN_ERR_BAD_PLAN;
        }
    }
    for (uint32_t i = 0; i < h.num_ops; i++) {
        rc = prepare_op(i, &g_ctx);
        if (rc != NN_OK) {
            return rc;
        }
    }
    g_nn.loaded = 1;
    return NN_OK;
}

uint32_t nn_num_inputs(void) { return g_nn.loaded ? g_nn.num_inputs : 0; }
uint32_t nn_num_outputs(void) { return g_nn.loaded ? g_nn.num_outputs : 0; }
uint32_t nn_num_layers(void) { return g_nn.loaded ? g_nn.num_ops : 0; }

int nn_input(uint32_t index, uint8_t **data, uint32_t *bytes)
{
    tview t;
    if (!g_nn.loaded) {
        return NN_ERR_NOT_LOADED;
    }
    if (index >= g_nn.num_inputs || data == NULL || bytes == NULL) {
        return NN_ERR_BAD_INDEX;
    }
    if (get_tensor(id_at(index), &t) != NN_OK) {
        return NN_ERR_BAD_PLAN;
    }
    *data = t.ptr;
    *bytes = t.bytes;
    return NN_OK;
}

int nn_output(uint32_t index, const uint8_t **data, uint32_t *bytes)
{
    tview t;
    if (!g_nn.loaded) {
        return NN_ERR_NOT_LOADED;
    }
    if (index >= g_nn.num_outputs || data == NULL || bytes == NULL) {
        return NN_ERR_BAD_INDEX;
    }
    if (get_tensor(id_at(g_nn.num_inputs + index), &t) != NN_OK) {
        return NN_ERR_BAD_PLAN;
    }
    *data = t.ptr;
    *bytes = t.bytes;
    return NN_OK;
}

int nn_run(nn_cycle_counter_fn counter, uint32_t *layer_cycles)
{
    if (!g_nn.loaded) {
        return NN_ERR_NOT_LOADED;
    }
    for (uint32_t i = 0; i < g_nn.num_ops; i++) {
        int rc = prepare_op(i, &g_ctx);
        if (rc != NN_OK) {
            return rc;
        }
        uint32_t t0 = counter ? counter() : 0;
        run_op(&g_ctx);
        if (counter && layer_cycles) {
            layer_cycles[i] = counter() - t0;
        }
    }
    return NN_OK;
}
