/*
 * Stub executor (NOT the model runtime): implements firmware/runtime/executor.h for a toy plan so
 * the shell and its protocol can be built and tested without the runtime. Compiled only when the
 * build asks for runtime "stub" (measure_agent/firmware_build.py) -- never together with
 * firmware/runtime/executor.c. Defines SHELL_STUB_EXECUTOR is set by the build for shell.c.
 *
 * Stub plan (little endian, 24 bytes): "STUB" u32 layers, u32 input_bytes, u32 output_bytes,
 * u32 work (busy-loop iterations per layer), u32 reserved.
 * Layer l adds 1 to every output byte; output[i] = input[i % input_bytes] + layers.
 */
#include <string.h>

#include "executor.h"

static struct {
    uint32_t layers, in_bytes, out_bytes, work;
    uint8_t *arena;
    int loaded;
} s;

static uint32_t rd(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static int parse(const uint8_t *plan, uint32_t len, uint32_t *l, uint32_t *i, uint32_t *o, uint32_t *w)
{
    if (len < 24u || memcmp(plan, "STUB", 4) != 0) return NN_ERR_BAD_PLAN;
    *l = rd(plan + 4); *i = rd(plan + 8); *o = rd(plan + 12); *w = rd(plan + 16);
    if (*l == 0u || *l > 100000u || *i == 0u || *o == 0u || *i > 0x1000000u || *o > 0x1000000u) return NN_ERR_BAD_PLAN;
    return NN_OK;
}

uint32_t nn_arena_bytes_needed(const uint8_t *plan, uint32_t plan_len)
{
    uint32_t l, i, o, w;
    if (parse(plan, plan_len, &l, &i, &o, &w) != NN_OK) return 0;
    return ((i + 15u) & ~15u) + o;
}

int nn_load(const uint8_t *plan, uint32_t plan_len, uint8_t *arena, uint32_t arena_len)
{
    s.loaded = 0;
    int r = parse(plan, plan_len, &s.layers, &s.in_bytes, &s.out_bytes, &s.work);
    if (r != NN_OK) return r;
    if (arena_len < nn_arena_bytes_needed(plan, plan_len)) return NN_ERR_ARENA_TOO_SMALL;
    s.arena = arena;
    memset(arena, 0, nn_arena_bytes_needed(plan, plan_len));
    s.loaded = 1;
    return NN_OK;
}

uint32_t nn_num_inputs(void) { return s.loaded ? 1u : 0u; }
uint32_t nn_num_outputs(void) { return s.loaded ? 1u : 0u; }
uint32_t nn_num_layers(void) { return s.loaded ? s.layers : 0u; }

int nn_input(uint32_t index, uint8_t **data, uint32_t *bytes)
{
    if (!s.loaded) return NN_ERR_NOT_LOADED;
    if (index != 0u) return NN_ERR_BAD_INDEX;
    *data = s.arena;
    *bytes = s.in_bytes;
    return NN_OK;
}

int nn_output(uint32_t index, const uint8_t **data, uint32_t *bytes)
{
    if (!s.loaded) return NN_ERR_NOT_LOADED;
    if (index != 0u) return NN_ERR_BAD_INDEX;
    *data = s.arena + ((s.in_bytes + 15u) & ~15u);
    *bytes = s.out_bytes;
    return NN_OK;
}

int nn_run(nn_cycle_counter_fn counter, uint32_t *layer_cycles)
{
    if (!s.loaded) return NN_ERR_NOT_LOADED;
    uint8_t *in = s.arena, *out = s.arena + ((s.in_bytes + 15u) & ~15u);
    for (uint32_t i = 0; i < s.out_bytes; i++) out[i] = in[i % s.in_bytes];
    for (uint32_t l = 0; l < s.layers; l++) {
        uint32_t t0 = counter ? counter() : 0u;
        volatile uint32_t sink = 0;
        for (uint32_t k = 0; k < s.work * (l + 1u); k++) sink += k;
        for (uint32_t i = 0; i < s.out_bytes; i++) out[i] = (uint8_t)(out[i] + 1u);
        if (counter && layer_cycles) layer_cycles[l] = counter() - t0;
    }
    return NN_OK;
}
