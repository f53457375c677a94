/*
 * A second, minimal runtime behind the same seam as the model runtime (firmware/runtime/executor.h): it
 * proves that the firmware shell, the serial protocol and the agent measure whatever executor a build links,
 * and it is the template for wrapping another engine (TFLite Micro, a vendor library) the same way.
 *
 * It reads the model plan format (measure_agent/plan/FORMAT.md) with its own small parser and runs only
 * FULLY_CONNECTED int8 layers (FC_S8) and COPY (RESHAPE); nn_load refuses any other op kind with
 * NN_ERR_UNSUPPORTED_OP. Its FC is written independently of firmware/kernels: one int32 dot product per
 * output, the interpreter's single-rounding requantization. Per-layer cycles come from the counter the
 * shell passes to nn_run, exactly as for the model runtime.
 *
 * Built with runtime "fc_only" (measure_agent/firmware_build/sources.py); the agent measures with it when
 * a board's configuration says runtime = "fc_only" (the runtime's name and the build id are in every result).
 */
#include <stddef.h>
#include <string.h>

#include "executor.h"
#include "plan_format.h"

#define FC_MAX_LAYERS 64u

typedef struct {
    uint16_t kind;
    const int8_t *in, *w;
    const int32_t *bias, *mult, *shift;
    int8_t *out;
    int32_t batches, in_len, out_len, in_off, out_zp, lo, hi, bytes;
} fc_layer;

static struct {
    const uint8_t *plan;
    uint8_t *arena;
    uint32_t n_layers, n_in, n_out;
    uint32_t tensors_off, n_tensors, ids_off, const_off, const_bytes, scratch_off;
    fc_layer layers[FC_MAX_LAYERS];
    int loaded;
} g;

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }

/* tensor `id`: pointer, byte count, element type, the last two dims (rows, cols) */
static int tensor(uint32_t id, uint8_t **ptr, uint32_t *bytes, uint8_t *dtype, uint32_t *d0, uint32_t *d1)
{
    if (id >= g.n_tensors) return NN_ERR_BAD_INDEX;
    const uint8_t *e = g.plan + g.tensors_off + id * NN_PLAN_TENSOR_BYTES;
    const uint32_t off = rd32(e + 4), n = rd32(e + 8), rank = e[2];
    if (e[1] == NN_LOC_ARENA) {
        if (off > g.scratch_off || n > g.scratch_off - off) return NN_ERR_BAD_SIZE;
        *ptr = g.arena + off;
    } else {
        if (off > g.const_bytes || n > g.const_bytes - off) return NN_ERR_BAD_SIZE;
        *ptr = (uint8_t *)(uintptr_t)(g.plan + g.const_off + off);
    }
    *bytes = n;
    *dtype = e[0];
    *d0 = rank >= 2 ? rd16(e + 20 + 2 * (rank - 2)) : 1;
    *d1 = rank >= 1 ? rd16(e + 20 + 2 * (rank - 1)) : 1;
    return NN_OK;
}

static uint32_t id_at(uint32_t i) { return rd16(g.plan + g.ids_off + 2 * i); }

uint32_t nn_arena_bytes_needed(const uint8_t *plan, uint32_t plan_len)
{
    if (plan == NULL || plan_len < NN_PLAN_HEADER_BYTES || rd32(plan) != NN_PLAN_MAGIC) return 0;
    return rd32(plan + 12);
}

int nn_load(const uint8_t *plan, uint32_t plan_len, uint8_t *arena, uint32_t arena_len)
{
    g.loaded = 0;
    if (plan == NULL || plan_len < NN_PLAN_HEADER_BYTES || rd32(plan) != NN_PLAN_MAGIC) return NN_ERR_BAD_PLAN;
    if (rd16(plan + 4) != NN_PLAN_VERSION) return NN_ERR_VERSION;
    if (rd32(plan + 8) != plan_len) return NN_ERR_BAD_SIZE;
    if (arena_len < rd32(plan + 12)) return NN_ERR_ARENA_TOO_SMALL;
    g.plan = plan;
    g.arena = arena;
    g.scratch_off = rd32(plan + 16);
    g.n_tensors = rd16(plan + 20);
    g.n_layers = rd16(plan + 22);
    g.n_in = rd16(plan + 24);
    g.n_out = rd16(plan + 26);
    g.tensors_off = rd32(plan + 28);
    const uint32_t ops_off = rd32(plan + 32), params_off = rd32(plan + 44), n_params = rd32(plan + 48);
    g.ids_off = rd32(plan + 36);
    const uint32_t n_ids = rd32(plan + 40);
    g.const_off = rd32(plan + 52);
    g.const_bytes = rd32(plan + 56);
    if (g.n_layers > FC_MAX_LAYERS) return NN_ERR_BAD_SIZE;
    if (g.tensors_off > plan_len || g.n_tensors * NN_PLAN_TENSOR_BYTES > plan_len - g.tensors_off ||
        ops_off > plan_len || g.n_layers * NN_PLAN_OP_BYTES > plan_len - ops_off || g.ids_off > plan_len ||
        n_ids * 2u > plan_len - g.ids_off || params_off > plan_len || n_params * 4u > plan_len - params_off ||
        g.const_off > plan_len || g.const_bytes > plan_len - g.const_off || g.scratch_off > arena_len ||
        g.n_in + g.n_out > n_ids) {
        return NN_ERR_BAD_SIZE;
    }
    for (uint32_t i = 0; i < g.n_layers; i++) {
        const uint8_t *op = plan + ops_off + i * NN_PLAN_OP_BYTES;
        fc_layer *l = &g.layers[i];
        const uint32_t n_in = op[2], first = rd32(op + 4), p0 = rd32(op + 8), np = rd32(op + 12);
        if (first > n_ids || n_in + 1u > n_ids - first || p0 > n_params || np > n_params - p0) return NN_ERR_BAD_SIZE;
        l->kind = (uint16_t)rd16(op);
        uint8_t *t[6];
        uint32_t bytes[6], d0[6], d1[6];
        uint8_t dt[6];
        if (l->kind == NN_OP_COPY && n_in == 1) {
            for (uint32_t k = 0; k < 2; k++) {
                const uint32_t id = id_at(first + (k == 0 ? 0 : n_in));
                int s = tensor(id, &t[k], &bytes[k], &dt[k], &d0[k], &d1[k]);
                if (s != NN_OK) return s;
            }
            if (bytes[0] != bytes[1]) return NN_ERR_BAD_SIZE;
            l->in = (const int8_t *)t[0];
            l->out = (int8_t *)t[1];
            l->bytes = (int32_t)bytes[0];
            continue;
        }
        if (l->kind != NN_OP_FC_S8 || n_in != 5 || np != NN_FC_S8_P_COUNT) return NN_ERR_UNSUPPORTED_OP;
        for (uint32_t k = 0; k < 6; k++) { /* x, weights, bias, mult, shift, output */
            const uint32_t id = id_at(first + k);
            t[k] = NULL;
            if (id == NN_PLAN_NONE && k == 2) continue;
            int s = tensor(id, &t[k], &bytes[k], &dt[k], &d0[k], &d1[k]);
            if (s != NN_OK) return s;
        }
        const int32_t rows = (int32_t)d0[1], cols = (int32_t)d1[1];
        if (dt[0] != NN_DT_INT8 || dt[1] != NN_DT_INT8 || dt[5] != NN_DT_INT8 || dt[3] != NN_DT_INT32 ||
            dt[4] != NN_DT_INT32 || cols <= 0 || bytes[0] % (uint32_t)cols != 0 ||
            bytes[1] != (uint32_t)(rows * cols) || bytes[3] != 4u * (uint32_t)rows || bytes[4] != 4u * (uint32_t)rows ||
            (t[2] && (dt[2] != NN_DT_INT32 || bytes[2] != 4u * (uint32_t)rows))) {
            return NN_ERR_BAD_PLAN;
        }
        l->in = (const int8_t *)t[0];
        l->w = (const int8_t *)t[1];
        l->bias = (const int32_t *)(const void *)t[2];
        l->mult = (const int32_t *)(const void *)t[3];
        l->shift = (const int32_t *)(const void *)t[4];
        l->out = (int8_t *)t[5];
        l->in_len = cols;
        l->out_len = rows;
        l->batches = (int32_t)(bytes[0] / (uint32_t)cols);
        if ((uint32_t)(l->batches * rows) != bytes[5]) return NN_ERR_BAD_SIZE;
        const uint8_t *pp = plan + params_off + 4u * p0;
        l->in_off = (int32_t)rd32(pp + 4 * NN_FC_P_INPUT_OFFSET);
        l->out_zp = (int32_t)rd32(pp + 4 * NN_FC_P_OUTPUT_ZP);
        l->lo = (int32_t)rd32(pp + 4 * NN_FC_P_ACT_MIN);
        l->hi = (int32_t)rd32(pp + 4 * NN_FC_P_ACT_MAX);
        if (rd32(pp + 4 * NN_FC_S8_P_WEIGHTS_LAYOUT) != NN_FC_WEIGHTS_OI) return NN_ERR_FILTER_LAYOUT;
        for (int32_t r = 0; r < rows; r++) {
            int32_t sh;
            memcpy(&sh, t[4] + 4 * r, 4);
            if (sh < -31 || sh > 30) return NN_ERR_BAD_PLAN;
        }
    }
    g.loaded = 1;
    return NN_OK;
}

uint32_t nn_num_inputs(void) { return g.loaded ? g.n_in : 0; }
uint32_t nn_num_outputs(void) { return g.loaded ? g.n_out : 0; }
uint32_t nn_num_layers(void) { return g.loaded ? g.n_layers : 0; }

static int io(uint32_t i, uint8_t **data, uint32_t *bytes)
{
    uint8_t dt;
    uint32_t d0, d1;
    return tensor(id_at(i), data, bytes, &dt, &d0, &d1);
}

int nn_input(uint32_t index, uint8_t **data, uint32_t *bytes)
{
    if (!g.loaded) return NN_ERR_NOT_LOADED;
    if (index >= g.n_in || data == NULL || bytes == NULL) return NN_ERR_BAD_INDEX;
    return io(index, data, bytes);
}

int nn_output(uint32_t index, const uint8_t **data, uint32_t *bytes)
{
    if (!g.loaded) return NN_ERR_NOT_LOADED;
    if (index >= g.n_out || data == NULL || bytes == NULL) return NN_ERR_BAD_INDEX;
    uint8_t *p;
    int s = io(g.n_in + index, &p, bytes);
    if (s == NN_OK) *data = p;
    return s;
}

/* x * m * 2^(s - 31) rounded once, half up; out of int32 -> INT32_MIN (the interpreter's FC) */
static int32_t requant(int32_t x, int32_t m, int32_t s)
{
    const int ts = 31 - s;
    const int64_t r = ((int64_t)x * m + ((int64_t)1 << (ts - 1))) >> ts;
    return (r > 2147483647 || r < -2147483647 - 1) ? (int32_t)(-2147483647 - 1) : (int32_t)r;
}

static void run_fc(const fc_layer *l)
{
    for (int32_t b = 0; b < l->batches; b++) {
        const int8_t *x = l->in + b * l->in_len;
        for (int32_t o = 0; o < l->out_len; o++) {
            const int8_t *w = l->w + o * l->in_len;
            int32_t acc = l->bias ? l->bias[o] : 0;
            for (int32_t i = 0; i < l->in_len; i++) {
                acc += (int32_t)w[i] * ((int32_t)x[i] + l->in_off);
            }
            int32_t v = requant(acc, l->mult[o], l->shift[o]) + l->out_zp;
            v = v < l->lo ? l->lo : (v > l->hi ? l->hi : v);
            l->out[b * l->out_len + o] = (int8_t)v;
        }
    }
}

int nn_run(nn_cycle_counter_fn counter, uint32_t *layer_cycles)
{
    if (!g.loaded) return NN_ERR_NOT_LOADED;
    for (uint32_t i = 0; i < g.n_layers; i++) {
        const fc_layer *l = &g.layers[i];
        const uint32_t t0 = counter ? counter() : 0;
        if (l->kind == NN_OP_COPY) {
            if (l->out != l->in) memmove(l->out, l->in, (size_t)l->bytes);
        } else {
            run_fc(l);
        }
        if (counter && layer_cycles) layer_cycles[i] = counter() - t0;
    }
    return NN_OK;
}

const char *nn_layer_kernel(uint32_t layer)
{
    if (!g.loaded || layer >= g.n_layers) return NULL;
    return g.layers[layer].kind == NN_OP_COPY ? "fc_only_copy" : "fc_only_fully_connected";
}
