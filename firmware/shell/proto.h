/*
 * Serial protocol constants shared by the firmware shell (device side).
 * The host side mirrors them in measure_agent/protocol.py; the wire format is documented in
 * firmware/PROTOCOL.md. Keep the three in step (tests/test_protocol.py checks the numbers).
 */
#ifndef SHELL_PROTO_H
#define SHELL_PROTO_H

#include <stdint.h>

#define PROTO_VERSION 1u

#define PROTO_SYNC0 0xA5u
#define PROTO_SYNC1 0x5Au

/* Frame: SYNC0 SYNC1 | ver cmd seq flags len_lo len_hi | hcrc8 | payload[len] | crc32 (LE) */
#define PROTO_HEADER_BYTES 9u   /* sync(2) + ver, cmd, seq, flags, len(2) + header CRC-8 */
#define PROTO_TRAILER_BYTES 4u  /* CRC-32 over bytes 2 .. end of payload */
#define PROTO_OVERHEAD (PROTO_HEADER_BYTES + PROTO_TRAILER_BYTES)

#ifndef PROTO_MAX_PAYLOAD
#define PROTO_MAX_PAYLOAD 1024u
#endif
#define PROTO_FRAME_MAX (PROTO_MAX_PAYLOAD + PROTO_OVERHEAD)

/* Requests (host -> board). A response carries cmd | PROTO_RESPONSE_BIT and the request's seq. */
enum proto_cmd {
    CMD_HELLO = 0x01,
    CMD_UPLOAD = 0x02,
    CMD_LOAD = 0x03,
    CMD_SET_INPUT = 0x04,
    CMD_RUN = 0x05,
    CMD_CYCLES = 0x06,
    CMD_READ_OUTPUT = 0x07,
    CMD_RESET = 0x08,
    CMD_ECHO = 0x09,
    CMD_FLASH_INFO = 0x0A,   /* the flash slots: erase counts, states */
    CMD_FLASH_BEGIN = 0x0B,  /* find a plan in flash, or erase a run of slots for it */
    CMD_FLASH_WRITE = 0x0C,  /* program a chunk of that plan */
};
#define PROTO_RESPONSE_BIT 0x80u

/* Board -> host frames that are not responses. */
#define MSG_BOOT 0x7Du   /* unsolicited, seq 0: the firmware (re)started */
#define MSG_FAULT 0x7Eu  /* unsolicited, seq 0: a fault handler ran; the board halts */
#define MSG_ERROR 0x7Fu  /* error answer to the request with the same seq (0 = seq unknown) */

/* Error codes (first byte of an ERROR payload). */
enum proto_err {
    ERR_BAD_CRC = 0x01,       /* frame CRC-32 mismatch */
    ERR_BAD_HEADER = 0x02,    /* header CRC-8 mismatch (seq unknown, reported as 0) */
    ERR_BAD_VERSION = 0x03,   /* protocol version not supported; detail = supported version */
    ERR_TOO_LONG = 0x04,      /* declared payload length > max payload; detail = max payload */
    ERR_TIMEOUT = 0x05,       /* inter-byte timeout inside a frame (truncated frame) */
    ERR_UNKNOWN_CMD = 0x06,
    ERR_BAD_LENGTH = 0x07,    /* payload length wrong for the command / chunk beyond the total */
    ERR_BAD_OFFSET = 0x08,    /* chunk offset leaves a hole or total changed mid-upload */
    ERR_TOO_LARGE = 0x09,     /* plan larger than model RAM; detail = model RAM bytes */
    ERR_NOT_LOADED = 0x0A,    /* no model loaded */
    ERR_BAD_INDEX = 0x0B,     /* input/output/layer index out of range */
    ERR_PLAN_INCOMPLETE = 0x0C,/* LOAD before all plan bytes arrived; detail = bytes received */
    ERR_PLAN_CRC = 0x0D,      /* LOAD: CRC-32 of the uploaded plan differs; detail = board's CRC */
    ERR_TOO_MANY_LAYERS = 0x0E,/* plan has more layers than the shell can time; detail = limit */
    ERR_BAD_ARG = 0x0F,       /* e.g. RUN with 0 runs, unknown RESET mode */
    ERR_FLASH_WORN = 0x10,    /* every slot run for the plan contains a slot at its endurance; detail = endurance */
    ERR_FLASH = 0x11,         /* the flash controller reported an error; detail = its status flags */
    ERR_NO_FLASH = 0x12,      /* the board has no flash slots */
    ERR_NN_BASE = 0x20,       /* 0x20 + nn_status (NN_ERR_BAD_PLAN -> 0x21 ... NN_ERR_NOT_LOADED -> 0x27) */
};

#define HELLO_FLAG_HARD_FLOAT 0x01u
#define HELLO_FLAG_SIMD 0x02u
#define HELLO_FLAG_DWT 0x04u      /* cycle counter is DWT CYCCNT (else SysTick, M0+) */
#define HELLO_FLAG_LOADED 0x08u
#define HELLO_FLAG_HOST 0x10u     /* host build (UART over file descriptors) */
#define HELLO_FLAG_STUB 0x20u     /* built with the stub executor, not the real runtime */
#define HELLO_FLAG_INPUT_SNAPSHOT 0x40u /* inputs are restored before every run (model loaded) */
#define HELLO_FLAG_FLASH 0x80u    /* plans can be programmed into flash slots (FLASH_BEGIN / FLASH_WRITE) */

/* LOAD's optional placement byte: where the plan (with its constants) is */
#define PLACEMENT_SRAM 0u
#define PLACEMENT_FLASH 1u

#define RESET_SOFT 0u
#define RESET_HARD 1u

#endif
