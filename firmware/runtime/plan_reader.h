/*
 * Internal: decoding and checking a binary plan (measure_agent/plan/FORMAT.md) for the executor and the ops'
 * prepare functions. Used only in nn_load; nothing here runs inside nn_run.
 */
#ifndef NN_PLAN_READER_H
#define NN_PLAN_READER_H

#include <stdint.h>

#include "../kernels/nn_kernels.h"
#include "executor.h"
#include "plan_format.h"

/* A plan whose header passed nn_plan_parse_header, plus the arena it is loaded into. */
typedef struct {
    const uint8_t *plan;
    uint8_t *arena;
    uint32_t arena_needed, scratch_offset, state_offset;
    uint32_t num_tensors, num_ops, num_inputs, num_outputs;
    uint32_t tensors_off, ops_off, ids_off, num_ids, params_off, num_params, const_off, const_bytes;
} nn_plan;

/* One decoded, checked tensor entry. */
typedef struct {
    uint8_t dtype, loc, ndim;
    uint32_t offset, bytes, count;
    int32_t zp;
    float scale;
    int32_t d[4]; /* shape right-aligned into 4-D (n, h, w, c) */
    uint8_t *ptr;
} nn_tensor;

/* One decoded op entry; its id and param ranges are within the plan's tables. */
typedef struct {
    const nn_plan *plan;
    uint16_t kind;
    uint8_t n_in;
    uint32_t ids_start, params_start, n_params, scratch_bytes;
} nn_op;

#define NN_CHECK(cond, err)                                                                                       \
    do {                                                                                                          \
        if (!(cond)) {                                                                                            \
            return (err);                                                                                         \
        }                                                                                                         \
    } while (0)

#define NN_TRY(expr)                                                                                              \
    do {                                                                                                          \
        int nn_rc_ = (expr);                                                                                      \
        if (nn_rc_ != NN_OK) {                                                                                    \
            return nn_rc_;                                                                                        \
        }                                                                                                         \
    } while (0)

/* Header: magic, version, sizes, checksum, table ranges and alignment, arena layout. */
int nn_plan_parse_header(const uint8_t *plan, uint32_t len, nn_plan *p);
/* Entry i of the tensor-id list (i < num_ids). */
uint32_t nn_plan_id(const nn_plan *p, uint32_t i);
/* Decodes and checks tensor `id`: dtype, rank, dims, byte count, alignment, range in its region. */
int nn_plan_tensor(const nn_plan *p, uint32_t id, nn_tensor *t);
/* Decodes op i (i < num_ops) and checks its id, param and scratch ranges. */
int nn_plan_op(const nn_plan *p, uint32_t i, nn_op *o);

int nn_op_has_input(const nn_op *o, uint32_t k);
/* Input k, which must be present. */
int nn_op_input(const nn_op *o, uint32_t k, nn_tensor *t);
int nn_op_output(const nn_op *o, nn_tensor *t);
/* Parameter word i (0 past the op's count; the executor checks the count against the op's layout). */
int32_t nn_op_param(const nn_op *o, uint32_t i);
float nn_op_param_f32(const nn_op *o, uint32_t i);
/* The shared scratch region (o->scratch_bytes of it are checked to be inside the arena). */
uint8_t *nn_op_scratch(const nn_op *o);

uint32_t nn_dtype_size(uint32_t dtype);
nn_dims nn_dims_of(const nn_tensor *t);

static inline int nn_is_dt(const nn_tensor *t, uint8_t dtype) { return t->dtype == dtype; }
static inline int nn_check_act(int32_t lo, int32_t hi) { return lo >= -128 && hi <= 127 && lo <= hi; }
static inline int nn_check_act16(int32_t lo, int32_t hi) { return lo >= -32768 && hi <= 32767 && lo <= hi; }
static inline int nn_check_shift(int32_t s) { return s >= -31 && s <= 30; }
static inline int nn_check_offset(int32_t o) { return o >= -255 && o <= 255; }

/* Per-channel multiplier/shift arrays: int32 tensors of n values with shifts in range. */
int nn_check_requant_arrays(const nn_tensor *mult, const nn_tensor *shift, int32_t n);
/* Optional int32 bias (input k) of n values, any int32 (the kernels' int32 sums wrap as the reference's);
 * *bias is NULL when absent. */
int nn_op_bias_s32(const nn_op *o, uint32_t k, int32_t n, const int32_t **bias);
/* Optional int64 bias (input k) of n values (16x8 ops); *bias is NULL when absent. */
int nn_op_bias_s64(const nn_op *o, uint32_t k, int32_t n, const int64_t **bias);
/* Optional float32 bias (input k) of n values; *bias is NULL when absent. */
int nn_op_bias_f32(const nn_op *o, uint32_t k, int32_t n, const float **bias);
/* An elementwise op: one input of in_dt, the output of out_dt with as many elements. */
int nn_op_unary(const nn_op *o, uint8_t in_dt, uint8_t out_dt, nn_tensor *x, nn_tensor *out);
/* Kernels never run in place: the output must not overlap an arena input (an aliased COPY excepted). */
int nn_check_no_overlap(const nn_op *o, const nn_tensor *out);

#endif /* NN_PLAN_READER_H */
