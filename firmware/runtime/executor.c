/*
 * Plan executor: nn_load validates a binary plan (measure_agent/plan/FORMAT.md) and prepares every layer
 * once (runtime/ops/: each op kind's prepare decodes and checks the layer into its state slot at the end
 * of the arena); nn_run then only calls each layer's eval between two cycle-counter reads.
 *
 * Safety: every offset, length, id, shape and parameter that a kernel relies on is checked in nn_load,
 * so a malformed plan gives an error status and never an out-of-bounds access.
 */
#include <stddef.h>
#include <string.h>

#include "executor.h"
#include "ops/ops.h"
#include "plan_reader.h"

/* The single loaded plan. */
static struct {
    nn_plan plan;
    uint8_t *layers; /* num_ops slots of NN_LAYER_STATE_BYTES in the arena */
    int loaded;
} g_nn;

uint32_t nn_arena_bytes_needed(const uint8_t *plan, uint32_t plan_len)
{
    nn_plan h;
    if (nn_plan_parse_header(plan, plan_len, &h) != NN_OK) {
        return 0;
    }
    return h.arena_needed == 0 ? 16u : h.arena_needed;
}

static nn_layer_header *layer_slot(uint32_t i)
{
    return (nn_layer_header *)(void *)(g_nn.layers + i * NN_LAYER_STATE_BYTES);
}

/* Decodes op i, checks what every op shares, then lets the op's prepare fill the layer's slot. */
static NN_LOAD_TIME int prepare_layer(uint32_t i)
{
    nn_op op;
    nn_tensor out;
    NN_TRY(nn_plan_op(&g_nn.plan, i, &op));
    for (uint32_t k = 0; k < op.n_in; k++) {
        nn_tensor t;
        if (nn_op_has_input(&op, k)) {
            NN_TRY(nn_op_input(&op, k, &t));
        }
    }
    NN_TRY(nn_op_output(&op, &out));
    NN_CHECK(out.loc == NN_LOC_ARENA, NN_ERR_BAD_PLAN);
    NN_CHECK(op.n_in >= 1 && nn_op_has_input(&op, 0), NN_ERR_BAD_PLAN);
    NN_TRY(nn_check_no_overlap(&op, &out));

    const nn_op_entry *entry = nn_op_lookup(op.kind);
    NN_CHECK(entry != NULL, NN_ERR_UNSUPPORTED_OP);
    NN_CHECK(op.n_params == entry->n_params, NN_ERR_BAD_PLAN);
    nn_layer_header *slot = layer_slot(i);
    memset(slot, 0, NN_LAYER_STATE_BYTES);
    const char *kernel = NULL;
    NN_TRY(entry->prepare(&op, slot + 1, &kernel));
    slot->eval = entry->eval;
    slot->kernel = kernel;
    return NN_OK;
}

NN_LOAD_TIME int nn_load(const uint8_t *plan, uint32_t plan_len, uint8_t *arena, uint32_t arena_len)
{
    nn_plan h;
    g_nn.loaded = 0;
    NN_TRY(nn_plan_parse_header(plan, plan_len, &h));
    if (((uintptr_t)plan & 3u) != 0 || arena == NULL || ((uintptr_t)arena & 3u) != 0) {
        return NN_ERR_BAD_PLAN;
    }
    if (arena_len < h.arena_needed) {
        return NN_ERR_ARENA_TOO_SMALL;
    }
    h.arena = arena;
    g_nn.plan = h;
    g_nn.layers = arena + h.state_offset;
    if ((uintptr_t)g_nn.layers % _Alignof(nn_layer_header) != 0) {
        return NN_ERR_BAD_PLAN;
    }
    for (uint32_t i = 0; i < h.num_tensors; i++) {
        nn_tensor t;
        NN_TRY(nn_plan_tensor(&g_nn.plan, i, &t));
    }
    for (uint32_t i = 0; i < h.num_inputs + h.num_outputs; i++) {
        nn_tensor t;
        NN_TRY(nn_plan_tensor(&g_nn.plan, nn_plan_id(&g_nn.plan, i), &t));
        NN_CHECK(t.loc == NN_LOC_ARENA, NN_ERR_BAD_PLAN);
    }
    for (uint32_t i = 0; i < h.num_ops; i++) {
        NN_TRY(prepare_layer(i));
    }
    g_nn.loaded = 1;
    return NN_OK;
}

uint32_t nn_num_inputs(void) { return g_nn.loaded ? g_nn.plan.num_inputs : 0; }
uint32_t nn_num_outputs(void) { return g_nn.loaded ? g_nn.plan.num_outputs : 0; }
uint32_t nn_num_layers(void) { return g_nn.loaded ? g_nn.plan.num_ops : 0; }

const char *nn_layer_kernel(uint32_t layer)
{
    if (!g_nn.loaded || layer >= g_nn.plan.num_ops) {
        return NULL;
    }
    return layer_slot(layer)->kernel;
}

/* Tensor `id_index` of the id list's graph inputs/outputs prefix. */
static int io_tensor(uint32_t id_index, uint8_t **data, uint32_t *bytes)
{
    nn_tensor t;
    if (nn_plan_tensor(&g_nn.plan, nn_plan_id(&g_nn.plan, id_index), &t) != NN_OK) {
        return NN_ERR_BAD_PLAN;
    }
    *data = t.ptr;
    *bytes = t.bytes;
    return NN_OK;
}

int nn_input(uint32_t index, uint8_t **data, uint32_t *bytes)
{
    if (!g_nn.loaded) {
        return NN_ERR_NOT_LOADED;
    }
    if (index >= g_nn.plan.num_inputs || data == NULL || bytes == NULL) {
        return NN_ERR_BAD_INDEX;
    }
    return io_tensor(index, data, bytes);
}

int nn_output(uint32_t index, const uint8_t **data, uint32_t *bytes)
{
    if (!g_nn.loaded) {
        return NN_ERR_NOT_LOADED;
    }
    if (index >= g_nn.plan.num_outputs || data == NULL || bytes == NULL) {
        return NN_ERR_BAD_INDEX;
    }
    uint8_t *p;
    int rc = io_tensor(g_nn.plan.num_inputs + index, &p, bytes);
    if (rc == NN_OK) {
        *data = p;
    }
    return rc;
}

/* The layer marks (executor.h): on a board, the energy pin toggles with one store to its BSRR (board_config.h,
 * generated from the catalogue's energy_gpio); nothing on the host build, which has no board_config.h. */
#if defined(__has_include)
#if __has_include("board_config.h")
#include "board_config.h"
#endif
#endif
#ifdef BOARD_ENERGY_GPIO_BSRR
static uint32_t g_mark = BOARD_ENERGY_GPIO_RESET; /* the word written last: the pin's level */
#define NN_LAYER_MARK()                                                                                  \
    (g_mark = g_mark == BOARD_ENERGY_GPIO_SET ? BOARD_ENERGY_GPIO_RESET : BOARD_ENERGY_GPIO_SET,          \
     *(volatile uint32_t *)(uintptr_t)BOARD_ENERGY_GPIO_BSRR = g_mark)
#else
#define NN_LAYER_MARK() ((void)0)
#endif

int nn_run(nn_cycle_counter_fn counter, uint32_t *layer_cycles)
{
    if (!g_nn.loaded) {
        return NN_ERR_NOT_LOADED;
    }
    for (uint32_t i = 0; i < g_nn.plan.num_ops; i++) {
        const nn_layer_header *layer = layer_slot(i);
        /* a mark at the start of every layer and one at the end: outside every pair of counter reads, so a
         * layer's timed window is the same with or without them */
        NN_LAYER_MARK();
        uint32_t t0 = counter ? counter() : 0;
        layer->eval(layer + 1);
        if (counter && layer_cycles) {
            layer_cycles[i] = counter() - t0;
        }
    }
    NN_LAYER_MARK();
    return NN_OK;
}
