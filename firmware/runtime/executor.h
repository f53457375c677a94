/*
 * Model-plan executor: public interface used by the firmware shell and the host build.
 *
 * A plan is the binary produced by measure_agent/plan/compiler.py (format: measure_agent/plan/FORMAT.md).
 * The plan buffer must be 4-byte aligned and must stay alive (and unmodified) after nn_load().
 * The arena must be 16-byte aligned and at least nn_arena_bytes_needed() bytes.
 * Runtime variant: compile with -DNN_SIMD=1 for the Armv7E-M SIMD kernels, else the portable reference kernels.
 */
#ifndef NN_EXECUTOR_H
#define NN_EXECUTOR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t (*nn_cycle_counter_fn)(void);

enum nn_status {
    NN_OK = 0,
    NN_ERR_BAD_PLAN = 1,
    NN_ERR_VERSION = 2,
    NN_ERR_ARENA_TOO_SMALL = 3,
    NN_ERR_UNSUPPORTED_OP = 4,
    NN_ERR_BAD_INDEX = 5,
    NN_ERR_BAD_SIZE = 6,
    NN_ERR_NOT_LOADED = 7,
    NN_ERR_FILTER_LAYOUT = 8 /* a filter layout this build's kernels cannot read (a SIMD plan on the reference) */
};

/* Arena bytes the plan needs (planned tensors + largest per-op scratch + per-layer state); 0 if the plan is
 * malformed. */
uint32_t nn_arena_bytes_needed(const uint8_t *plan, uint32_t plan_len);

/* Validates every offset, length, index and parameter of the plan and prepares each layer's state in the
 * arena; on success the plan is loaded. The plan must stay alive. Returns an nn_status. */
int nn_load(const uint8_t *plan, uint32_t plan_len, uint8_t *arena, uint32_t arena_len);

uint32_t nn_num_inputs(void);
uint32_t nn_num_outputs(void);
uint32_t nn_num_layers(void);

/* Pointer to and size of input tensor `index` inside the arena (write the input there before nn_run). */
int nn_input(uint32_t index, uint8_t **data, uint32_t *bytes);
/* Pointer to and size of output tensor `index` (valid after nn_run). */
int nn_output(uint32_t index, const uint8_t **data, uint32_t *bytes);

/* Runs all layers in order. If counter and layer_cycles are non-NULL, layer_cycles[i] receives
 * counter() after layer i minus counter() before it (unsigned wrap-around difference).
 * On a board whose catalogue entry has an energy_gpio, the energy pin toggles (one BSRR store) before
 * every layer's first counter read and once after the last layer: num_layers + 1 edges per run, each a
 * layer boundary for an energy monitor's digital input, all outside the timed windows. */
int nn_run(nn_cycle_counter_fn counter, uint32_t *layer_cycles /* nn_num_layers() entries, or NULL */);

/* Name of the kernel layer `layer` runs (e.g. "conv2d_s8_simd"), chosen in nn_load; NULL for a bad index
 * or when no plan is loaded. */
const char *nn_layer_kernel(uint32_t layer);

#ifdef __cplusplus
}
#endif

#endif /* NN_EXECUTOR_H */
