/*
 * Internal: the runtime's ops. Each op kind has a prepare, run once in nn_load, that decodes and checks the
 * layer's tensors and parameters into the layer's state (inside the arena), and an eval, run by nn_run
 * between the two cycle-counter reads, that only calls the kernel from that state.
 */
#ifndef NN_OPS_H
#define NN_OPS_H

#include <stddef.h>

#include "../plan_reader.h"

/* Fills `state` (NN_OP_STATE_BYTES, pointer-aligned) from the op and sets *kernel; returns an nn_status. */
typedef int (*nn_prepare_fn)(const nn_op *op, void *state, const char **kernel);
typedef void (*nn_eval_fn)(const void *state);

typedef struct {
    uint16_t kind;
    uint16_t n_params; /* exact word count: the kind's layout in plan_format.h */
    nn_prepare_fn prepare;
    nn_eval_fn eval;
} nn_op_entry;

/* The table entry of `kind`, NULL when the runtime has no such op. */
const nn_op_entry *nn_op_lookup(uint32_t kind);

/* Head of each layer's NN_LAYER_STATE_BYTES slot; the op's state follows it. */
typedef struct {
    nn_eval_fn eval;
    const char *kernel;
} nn_layer_header;

/* Code that runs when a plan is loaded (prepare), once before any timed run: compiled for size. */
#if defined(__GNUC__) && !defined(__clang__)
#define NN_LOAD_TIME __attribute__((optimize("Os")))
#else
#define NN_LOAD_TIME
#endif

#define NN_OP_STATE_BYTES (NN_LAYER_STATE_BYTES - sizeof(nn_layer_header))
#define NN_STATE_FITS(type)                                                                                       \
    _Static_assert(sizeof(type) <= NN_OP_STATE_BYTES && _Alignof(type) <= _Alignof(nn_layer_header),              \
                   #type " does not fit in NN_LAYER_STATE_BYTES")

#define NN_DECLARE_OP(name)                                                                                       \
    int nn_##name##_prepare(const nn_op *op, void *state, const char **kernel);                                   \
    void nn_##name##_eval(const void *state)

NN_DECLARE_OP(conv_s8);        /* conv.c */
NN_DECLARE_OP(conv_f32);
NN_DECLARE_OP(conv_hybrid);
NN_DECLARE_OP(dwconv_s8);      /* depthwise_conv.c */
NN_DECLARE_OP(dwconv_f32);
NN_DECLARE_OP(fc_s8);          /* fully_connected.c */
NN_DECLARE_OP(fc_f32);
NN_DECLARE_OP(fc_hybrid);
NN_DECLARE_OP(avgpool_s8);     /* pool.c */
NN_DECLARE_OP(maxpool_s8);
NN_DECLARE_OP(avgpool_f32);
NN_DECLARE_OP(maxpool_f32);
NN_DECLARE_OP(add_s8);         /* elementwise.c */
NN_DECLARE_OP(mul_s8);
NN_DECLARE_OP(add_f32);
NN_DECLARE_OP(mul_f32);
NN_DECLARE_OP(softmax_s8);     /* softmax.c */
NN_DECLARE_OP(softmax_f32);
NN_DECLARE_OP(logistic_s8);    /* activation.c */
NN_DECLARE_OP(logistic_f32);
NN_DECLARE_OP(requant_s8);
NN_DECLARE_OP(clamp_f32);
NN_DECLARE_OP(mean_s8);        /* mean.c */
NN_DECLARE_OP(mean_f32);
NN_DECLARE_OP(quantize_f32_s8); /* quantize.c */
NN_DECLARE_OP(dequantize_s8_f32);
NN_DECLARE_OP(copy);           /* layout.c */
NN_DECLARE_OP(pad);
NN_DECLARE_OP(concat);
NN_DECLARE_OP(lut_s8);         /* activation.c */
NN_DECLARE_OP(tanh_f32);
NN_DECLARE_OP(sub_f32);        /* elementwise.c */
NN_DECLARE_OP(add_s16);
NN_DECLARE_OP(dwconv_hybrid);  /* depthwise_conv.c */
NN_DECLARE_OP(dwconv_s16);
NN_DECLARE_OP(conv_s16);       /* conv.c */
NN_DECLARE_OP(fc_s16);         /* fully_connected.c */
NN_DECLARE_OP(softmax_s16);    /* softmax.c */
NN_DECLARE_OP(avgpool_s16);    /* pool.c */
NN_DECLARE_OP(maxpool_s16);
NN_DECLARE_OP(quantize_f32_s16); /* quantize.c */
NN_DECLARE_OP(dequantize_s16_f32);
NN_DECLARE_OP(mean_s16);       /* mean.c */

#endif /* NN_OPS_H */
