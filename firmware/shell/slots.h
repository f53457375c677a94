/*
 * Plans in flash slots (firmware/PROTOCOL.md "Flash slots"): the board's flash above the firmware image is
 * a fixed grid of slots (hal.h hal_flash); a plan occupies a run of consecutive slots, the first of which
 * starts with a 256-byte header (magic, sequence, the run, plan length/CRC-32/content hash, the erase count
 * of every slot, a commit word). Plans rotate over the slots (the next run starts after the newest one),
 * an erase that would bring a slot to the flash's endurance is refused, and a plan already in a slot
 * (same hash, length and CRC, its CRC verified in flash) is not programmed again.
 */
#ifndef SHELL_SLOTS_H
#define SHELL_SLOTS_H
#include <stdint.h>

#define SLOT_HEADER_BYTES 256u
#define SLOT_MAX 32u
#define SLOT_HASH_BYTES 16u

enum slots_status {
    SLOTS_OK = 0,
    SLOTS_NONE,          /* the board has no flash slots */
    SLOTS_TOO_LARGE,     /* the plan does not fit the slot area; detail = usable bytes */
    SLOTS_WORN,          /* every run that could hold the plan contains a slot at its endurance */
    SLOTS_FLASH_ERROR,   /* the controller reported an error; detail = its flags */
    SLOTS_BAD_OFFSET,    /* a chunk leaves a hole, or differs from what is programmed there */
    SLOTS_BAD_LENGTH,    /* a chunk beyond the plan */
    SLOTS_NO_SESSION,    /* FLASH_WRITE before FLASH_BEGIN */
    SLOTS_CRC            /* the programmed plan's CRC-32 differs; detail = the board's CRC */
};

struct slots_begin_result {
    int present;          /* 1: the plan is in flash already (CRC verified): nothing to program */
    uint32_t first, count;/* the run of slots */
    uint32_t blob;        /* flash address of the plan */
    uint32_t programmed;  /* bytes of it programmed so far */
    uint32_t max_erases;  /* highest erase count in the run */
};

/* Find the plan (len, crc, hash) in flash, or erase a run for it. msg (>= 96 bytes) gets a one-line
 * explanation on failure; *detail the error detail. */
int slots_begin(uint32_t len, uint32_t crc, const uint8_t *hash, struct slots_begin_result *out, int32_t *detail,
                char *msg);
/* Program a chunk of the plan of the current session at `offset` (a multiple of the programming unit).
 * *programmed = bytes programmed so far; the last chunk verifies the CRC and commits the slot. */
int slots_write(uint32_t offset, const uint8_t *data, uint32_t n, uint32_t *programmed, int32_t *detail);
/* The committed plan of the current session if its CRC is `crc`, else NULL. */
const uint8_t *slots_plan(uint32_t crc, uint32_t *len);
void slots_forget(void);                              /* soft reset: the session ends, flash stays */
uint32_t slots_info(uint8_t *out, uint32_t cap);      /* FLASH_INFO payload; returns its length */

#endif
