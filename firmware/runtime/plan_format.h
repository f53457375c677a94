/* Binary plan layout constants, shared by the executor (see measure_agent/plan/FORMAT.md). */
#ifndef NN_PLAN_FORMAT_H
#define NN_PLAN_FORMAT_H

#define NN_PLAN_MAGIC 0x4C504E4Eu /* "NNPL" little-endian */
#define NN_PLAN_VERSION 1u
#define NN_PLAN_HEADER_BYTES 64u
#define NN_PLAN_TENSOR_BYTES 32u
#define NN_PLAN_OP_BYTES 20u
#define NN_PLAN_NONE 0xFFFFu     /* absent optional tensor id */
#define NN_MAX_OP_INPUTS 16u

enum nn_dtype { NN_DT_INT8 = 1, NN_DT_INT16 = 2, NN_DT_INT32 = 3, NN_DT_FLOAT32 = 4, NN_DT_UINT8 = 5 };
enum nn_location { NN_LOC_ARENA = 0, NN_LOC_CONST = 1 };

enum nn_op_kind {
    NN_OP_CONV_S8 = 1,
    NN_OP_DWCONV_S8 = 2,
    NN_OP_FC_S8 = 3,
    NN_OP_AVGPOOL_S8 = 4,
    NN_OP_MAXPOOL_S8 = 5,
    NN_OP_ADD_S8 = 6,
    NN_OP_MUL_S8 = 7,
    NN_OP_SOFTMAX_S8 = 8,
    NN_OP_LOGISTIC_S8 = 9,
    NN_OP_REQUANT_S8 = 10,
    NN_OP_MEAN_S8 = 11,
    NN_OP_QUANTIZE_F32_S8 = 12,
    NN_OP_DEQUANTIZE_S8_F32 = 13,
    NN_OP_COPY = 20,
    NN_OP_PAD = 21,
    NN_OP_CONCAT = 22,
    NN_OP_CONV_F32 = 30,
    NN_OP_DWCONV_F32 = 31,
    NN_OP_FC_F32 = 32,
    NN_OP_AVGPOOL_F32 = 33,
    NN_OP_MAXPOOL_F32 = 34,
    NN_OP_ADD_F32 = 35,
    NN_OP_MUL_F32 = 36,
    NN_OP_SOFTMAX_F32 = 37,
    NN_OP_LOGISTIC_F32 = 38,
    NN_OP_CLAMP_F32 = 39,
    NN_OP_MEAN_F32 = 40,
    NN_OP_FC_HYBRID = 50,
    NN_OP_CONV_HYBRID = 51
};

#endif
