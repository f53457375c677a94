/*
 * Firmware shell: the framed serial protocol (firmware/PROTOCOL.md) on top of the model executor
 * (firmware/runtime/executor.h). Platform-independent: all I/O goes through hal.h.
 *
 * Receiving: bytes are appended to `rx`; scan() looks for a complete, valid frame at the start of
 * the buffer. Anything that fails a check (header CRC-8, version, length limit, CRC-32, inter-byte
 * timeout) is answered with an ERROR frame and exactly ONE byte is dropped before scanning again, so
 * a real frame hidden behind garbage or behind a truncated frame is still found (resync without
 * reboot). The buffer never needs more than one maximal frame.
 *
 * Every command is idempotent (chunks carry offsets), so the host may retry any request.
 */
#include <string.h>

#include "crc.h"
#include "executor.h"
#include "hal.h"
#include "proto.h"
#include "shell.h"
#include "slots.h"

/* The shell runs between inferences (commands, frames, flash slots): compiled for size, but for cmd_run, whose loop
 * reads the cycle counter around nn_run (the code there is part of every run's total and overhead). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif

#if defined(NN_SIMD) && NN_SIMD
#define SHELL_SIMD 1
#endif
#ifndef FW_VARIANT
#ifdef SHELL_SIMD
#define FW_VARIANT "simd"
#else
#define FW_VARIANT "reference"
#endif
#endif
#ifndef FW_FLOAT_ABI
#if defined(__ARM_PCS_VFP)
#define FW_FLOAT_ABI "hard"
#else
#define FW_FLOAT_ABI "soft"
#endif
#endif
#ifndef FW_OPT
#define FW_OPT "unknown"
#endif
#ifndef FW_BUILD_ID
#define FW_BUILD_ID "dev"
#endif
#ifndef FW_RUNTIME
#define FW_RUNTIME "nn"
#endif
#ifndef SHELL_MAX_LAYERS
#define SHELL_MAX_LAYERS 256u
#endif
#ifdef __VERSION__
#define FW_COMPILER __VERSION__
#else
#define FW_COMPILER "unknown"
#endif

static uint8_t rx[PROTO_FRAME_MAX] __attribute__((aligned(4)));
static uint32_t rx_len;
static uint32_t rx_need; /* scan() makes no progress before rx_len reaches this (keeps per-byte work tiny) */
static uint8_t tx[PROTO_FRAME_MAX] __attribute__((aligned(4)));
#define OUT (tx + PROTO_HEADER_BYTES)

static struct {
    uint8_t *ram;
    uint32_t ram_bytes;
    uint32_t plan_total;
    uint32_t plan_received;
    int loaded;
    uint32_t arena_needed;
    uint32_t num_layers;
    uint32_t runs;      /* runs of the last RUN (0: no cycles yet) */
    uint8_t *snap;      /* copy of the input tensors (NULL: no room), restored before every nn_run */
    uint32_t snap_bytes;
    uint32_t placement; /* of the loaded plan: PLACEMENT_SRAM (in model RAM) or PLACEMENT_FLASH (in a slot) */
} st;

static uint32_t layer_tmp[SHELL_MAX_LAYERS];
static uint32_t layer_min[SHELL_MAX_LAYERS];

/* ---- little-endian helpers ---- */
static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static void put_u16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
/* bounded length (no newlib strlen: its word-at-a-time code is not needed here) */
static uint32_t slen(const char *s, uint32_t max)
{
    uint32_t n = 0;
    while (n < max && s[n]) n++;
    return n;
}

static uint32_t put_str(uint8_t *p, const char *s)
{
    uint32_t n = slen(s, 64u);
    p[0] = (uint8_t)n;
    memcpy(p + 1, s, n);
    return n + 1u;
}

/* ---- sending ---- */
static void send_frame(uint8_t cmd, uint8_t seq, uint32_t len)
{
    tx[0] = PROTO_SYNC0;
    tx[1] = PROTO_SYNC1;
    tx[2] = PROTO_VERSION;
    tx[3] = cmd;
    tx[4] = seq;
    tx[5] = 0;
    put_u16(tx + 6, len);
    tx[8] = crc8(tx + 2, 6);
    put_u32(tx + PROTO_HEADER_BYTES + len, crc32_update(0, tx + 2, PROTO_HEADER_BYTES - 2 + len));
    hal_uart_write(tx, PROTO_OVERHEAD + len);
}

static void send_error(uint8_t seq, uint8_t code, uint8_t cmd, int32_t detail, const char *msg)
{
    OUT[0] = code;
    OUT[1] = cmd;
    OUT[2] = 0;
    OUT[3] = 0;
    put_u32(OUT + 4, (uint32_t)detail);
    uint32_t n = slen(msg, 96u);
    memcpy(OUT + 8, msg, n);
    send_frame(MSG_ERROR, seq, 8u + n);
}

static void send_nn_error(uint8_t seq, uint8_t cmd, int status, int32_t detail)
{
    static const char *const names[] = {"ok", "bad plan", "plan version", "arena too small",
                                        "unsupported op", "bad index", "bad size", "not loaded",
                                        "filter layout (a SIMD plan on the reference runtime)"};
    const char *msg = (status >= 0 && status < 9) ? names[status] : "runtime error";
    send_error(seq, (uint8_t)(ERR_NN_BASE + (uint32_t)status), cmd, detail, msg);
}

void shell_send_fault(const uint32_t *words, uint32_t n)
{
    if (n > PROTO_MAX_PAYLOAD / 4u) n = PROTO_MAX_PAYLOAD / 4u;
    for (uint32_t i = 0; i < n; i++) put_u32(OUT + 4u * i, words[i]);
    send_frame(MSG_FAULT, 0, 4u * n);
}

/* ---- receiving ---- */
static void drop(uint32_t n)
{
    if (n >= rx_len) {
        rx_len = 0;
        return;
    }
    memmove(rx, rx + n, rx_len - n);
    rx_len -= n;
}

/* Returns the length of a complete valid frame at rx[0], or 0 if more bytes are needed (and then
 * sets rx_need). */
static uint32_t scan(void)
{
    for (;;) {
        uint32_t i = 0;
        while (i < rx_len && rx[i] != PROTO_SYNC0) i++;
        drop(i);
        if (rx_len < 2u) { rx_need = rx_len + 1u; return 0; }
        if (rx[1] != PROTO_SYNC1) { drop(1); continue; }
        if (rx_len < PROTO_HEADER_BYTES) { rx_need = PROTO_HEADER_BYTES; return 0; }
        if (crc8(rx + 2, 6) != rx[8]) {
            send_error(0, ERR_BAD_HEADER, 0, 0, "header crc mismatch");
            drop(1);
            continue;
        }
        uint8_t cmd = rx[3], seq = rx[4];
        if (rx[2] != PROTO_VERSION) {
            send_error(seq, ERR_BAD_VERSION, cmd, (int32_t)PROTO_VERSION, "unsupported protocol version");
            drop(1);
            continue;
        }
        uint32_t len = get_u16(rx + 6);
        if (len > PROTO_MAX_PAYLOAD) {
            send_error(seq, ERR_TOO_LONG, cmd, (int32_t)PROTO_MAX_PAYLOAD, "payload too long");
            drop(1);
            continue;
        }
        uint32_t total = PROTO_OVERHEAD + len;
        if (rx_len < total) { rx_need = total; return 0; }
        if (crc32_update(0, rx + 2, PROTO_HEADER_BYTES - 2 + len) != get_u32(rx + PROTO_HEADER_BYTES + len)) {
            send_error(seq, ERR_BAD_CRC, cmd, 0, "frame crc mismatch");
            drop(1);
            continue;
        }
        return total;
    }
}

/* ---- commands ---- */
static void soft_reset(void)
{
    st.plan_total = 0;
    st.plan_received = 0;
    st.loaded = 0;
    st.arena_needed = 0;
    st.num_layers = 0;
    st.runs = 0;
    st.snap = 0;
    st.snap_bytes = 0;
    st.placement = PLACEMENT_SRAM;
}

/* The runtime may reuse input memory for activations, so a run clobbers its inputs. SET_INPUT also
 * writes a snapshot kept after the arena (if model RAM has room) and RUN restores the inputs from it
 * before every nn_run (outside the timed region): every run sees the inputs the host set. */
static void snapshot_init(uint8_t *free_ram, uint32_t free_bytes)
{
    uint32_t total = 0, bytes = 0;
    uint8_t *d = 0;
    for (uint32_t i = 0; i < nn_num_inputs(); i++) {
        if (nn_input(i, &d, &bytes) != NN_OK) return;
        total += (bytes + 3u) & ~3u;
    }
    if (total == 0u || total > free_bytes) return;
    st.snap = free_ram;
    st.snap_bytes = total;
    memset(st.snap, 0, total);
}

static uint8_t *snapshot_of(uint32_t index)
{
    uint32_t off = 0, bytes = 0;
    uint8_t *d = 0;
    if (!st.snap) return 0;
    for (uint32_t i = 0; i < index; i++) {
        nn_input(i, &d, &bytes);
        off += (bytes + 3u) & ~3u;
    }
    return st.snap + off;
}

static void snapshot_restore(void)
{
    uint32_t bytes = 0;
    uint8_t *d = 0;
    if (!st.snap) return;
    for (uint32_t i = 0; i < nn_num_inputs(); i++) {
        if (nn_input(i, &d, &bytes) == NN_OK) memcpy(d, snapshot_of(i), bytes);
    }
}

static uint32_t align16(uint32_t v) { return (v + 15u) & ~15u; }

static void cmd_hello(uint8_t seq)
{
    const struct hal_identity *id = hal_identity();
    uint32_t flags = hal_flags();
#if defined(__ARM_PCS_VFP)
    flags |= HELLO_FLAG_HARD_FLOAT;
#endif
#ifdef SHELL_SIMD
    flags |= HELLO_FLAG_SIMD;
#endif
#ifdef SHELL_STUB_EXECUTOR
    flags |= HELLO_FLAG_STUB;
#endif
    if (st.loaded) flags |= HELLO_FLAG_LOADED;
    if (st.snap) flags |= HELLO_FLAG_INPUT_SNAPSHOT;
    if (hal_flash()->nslots > hal_flash()->first) flags |= HELLO_FLAG_FLASH;
    uint8_t *p = OUT;
    p[0] = PROTO_VERSION;
    p[1] = (uint8_t)flags;
    put_u16(p + 2, PROTO_MAX_PAYLOAD);
    put_u32(p + 4, id->default_clock_hz);
    put_u32(p + 8, id->core_clock_hz);
    put_u32(p + 12, st.ram_bytes);
    put_u32(p + 16, (uint32_t)(uintptr_t)st.ram);
    put_u32(p + 20, hal_timeout_ms());
    put_u32(p + 24, SHELL_MAX_LAYERS);
    uint32_t n = 28;
    n += put_str(p + n, id->target);
    n += put_str(p + n, id->mcu);
    n += put_str(p + n, id->core);
    n += put_str(p + n, FW_VARIANT);
    n += put_str(p + n, FW_FLOAT_ABI);
    n += put_str(p + n, FW_OPT);
    n += put_str(p + n, FW_BUILD_ID);
    n += put_str(p + n, FW_RUNTIME);
    n += put_str(p + n, FW_COMPILER);
    send_frame(CMD_HELLO | PROTO_RESPONSE_BIT, seq, n);
}

static void cmd_upload(uint8_t seq, const uint8_t *p, uint32_t len)
{
    if (len < 8u) { send_error(seq, ERR_BAD_LENGTH, CMD_UPLOAD, 8, "upload needs total, offset"); return; }
    uint32_t total = get_u32(p), offset = get_u32(p + 4), n = len - 8u;
    if (total == 0u) { send_error(seq, ERR_BAD_LENGTH, CMD_UPLOAD, 0, "empty plan"); return; }
    if (total > st.ram_bytes) {
        send_error(seq, ERR_TOO_LARGE, CMD_UPLOAD, (int32_t)st.ram_bytes, "plan larger than model RAM");
        return;
    }
    if (offset == 0u) { /* a new upload: forget the old model */
        soft_reset();
        slots_forget();
        st.plan_total = total;
    }
    if (total != st.plan_total || offset > st.plan_received) {
        send_error(seq, ERR_BAD_OFFSET, CMD_UPLOAD, (int32_t)st.plan_received, "chunk offset leaves a hole");
        return;
    }
    if (n > total - offset) { send_error(seq, ERR_BAD_LENGTH, CMD_UPLOAD, (int32_t)total, "chunk beyond total"); return; }
    memcpy(st.ram + offset, p + 8, n);
    if (offset + n > st.plan_received) st.plan_received = offset + n;
    put_u32(OUT, st.plan_total);
    put_u32(OUT + 4, st.plan_received);
    send_frame(CMD_UPLOAD | PROTO_RESPONSE_BIT, seq, 8);
}

static void cmd_load(uint8_t seq, const uint8_t *p, uint32_t len)
{
    if (len != 4u && len != 5u) {
        send_error(seq, ERR_BAD_LENGTH, CMD_LOAD, 4, "load needs the plan crc [, placement]");
        return;
    }
    uint32_t placement = len == 5u ? p[4] : PLACEMENT_SRAM;
    const uint8_t *plan = st.ram;
    uint32_t plan_len = st.plan_total, arena_off = 0;
    if (placement == PLACEMENT_FLASH) { /* the plan programmed by FLASH_BEGIN / FLASH_WRITE; all model RAM is arena */
        plan = slots_plan(get_u32(p), &plan_len);
        if (!plan) {
            send_error(seq, ERR_PLAN_INCOMPLETE, CMD_LOAD, 0, "no verified plan with this crc in flash");
            return;
        }
        soft_reset();
        st.plan_total = plan_len;
    } else if (placement == PLACEMENT_SRAM) {
        if (st.plan_total == 0u || st.plan_received != st.plan_total) {
            send_error(seq, ERR_PLAN_INCOMPLETE, CMD_LOAD, (int32_t)st.plan_received, "plan upload incomplete");
            return;
        }
        uint32_t crc = crc32_update(0, st.ram, st.plan_total);
        if (crc != get_u32(p)) { send_error(seq, ERR_PLAN_CRC, CMD_LOAD, (int32_t)crc, "plan crc mismatch"); return; }
        arena_off = align16(st.plan_total);
    } else {
        send_error(seq, ERR_BAD_ARG, CMD_LOAD, (int32_t)placement, "placement 0 (sram) or 1 (flash)");
        return;
    }
    st.loaded = 0;
    st.runs = 0;
    st.placement = placement;
    uint32_t arena_len = arena_off < st.ram_bytes ? st.ram_bytes - arena_off : 0u;
    uint32_t needed = nn_arena_bytes_needed(plan, plan_len);
    if (needed == 0u) { send_nn_error(seq, CMD_LOAD, NN_ERR_BAD_PLAN, 0); return; }
    if (needed > arena_len) { send_nn_error(seq, CMD_LOAD, NN_ERR_ARENA_TOO_SMALL, (int32_t)needed); return; }
    int s = nn_load(plan, plan_len, st.ram + arena_off, arena_len);
    if (s != NN_OK) { send_nn_error(seq, CMD_LOAD, s, (int32_t)needed); return; }
    uint32_t layers = nn_num_layers();
    if (layers > SHELL_MAX_LAYERS) {
        send_error(seq, ERR_TOO_MANY_LAYERS, CMD_LOAD, (int32_t)SHELL_MAX_LAYERS, "too many layers to time");
        return;
    }
    st.loaded = 1;
    st.arena_needed = needed;
    st.num_layers = layers;
    st.snap = 0;
    st.snap_bytes = 0;
    if (align16(needed) < arena_len)
        snapshot_init(st.ram + arena_off + align16(needed), arena_len - align16(needed));
    uint32_t ni = nn_num_inputs(), no = nn_num_outputs();
    put_u32(OUT, needed);
    put_u32(OUT + 4, arena_len);
    put_u32(OUT + 8, st.plan_total);
    put_u32(OUT + 12, layers);
    put_u16(OUT + 16, ni);
    put_u16(OUT + 18, no);
    uint32_t n = 20;
    for (uint32_t i = 0; i < ni + no && n + 4u <= PROTO_MAX_PAYLOAD; i++) {
        uint8_t *d = 0;
        const uint8_t *cd = 0;
        uint32_t bytes = 0;
        if (i < ni) nn_input(i, &d, &bytes); else nn_output(i - ni, &cd, &bytes);
        put_u32(OUT + n, bytes);
        n += 4u;
    }
    send_frame(CMD_LOAD | PROTO_RESPONSE_BIT, seq, n);
}

static void cmd_set_input(uint8_t seq, const uint8_t *p, uint32_t len)
{
    if (len < 8u) { send_error(seq, ERR_BAD_LENGTH, CMD_SET_INPUT, 8, "set_input needs index, offset"); return; }
    if (!st.loaded) { send_error(seq, ERR_NOT_LOADED, CMD_SET_INPUT, 0, "no model loaded"); return; }
    uint32_t index = get_u16(p), offset = get_u32(p + 4), n = len - 8u;
    uint8_t *data = 0;
    uint32_t bytes = 0;
    int s = nn_input(index, &data, &bytes);
    if (s != NN_OK) { send_nn_error(seq, CMD_SET_INPUT, s, (int32_t)index); return; }
    if (offset > bytes || n > bytes - offset) {
        send_error(seq, ERR_BAD_LENGTH, CMD_SET_INPUT, (int32_t)bytes, "chunk beyond input tensor");
        return;
    }
    memcpy(data + offset, p + 8, n);
    uint8_t *snap = snapshot_of(index);
    if (snap) memcpy(snap + offset, p + 8, n);
    put_u32(OUT, offset + n);
    put_u32(OUT + 4, bytes);
    send_frame(CMD_SET_INPUT | PROTO_RESPONSE_BIT, seq, 8);
}

static uint32_t cycles_payload(uint32_t at, uint32_t first)
{
    uint32_t count = 0;
    if (first < st.num_layers) count = st.num_layers - first;
    uint32_t room = (PROTO_MAX_PAYLOAD - at - 8u) / 4u;
    if (count > room) count = room;
    put_u32(OUT + at, first);
    put_u32(OUT + at + 4, count);
    for (uint32_t i = 0; i < count; i++) put_u32(OUT + at + 8u + 4u * i, layer_min[first + i]);
    return at + 8u + 4u * count;
}

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("O2")))
#endif
static void cmd_run(uint8_t seq, const uint8_t *p, uint32_t len)
{
    if (len != 4u) { send_error(seq, ERR_BAD_LENGTH, CMD_RUN, 4, "run needs the number of runs"); return; }
    if (!st.loaded) { send_error(seq, ERR_NOT_LOADED, CMD_RUN, 0, "no model loaded"); return; }
    uint32_t runs = get_u32(p);
    if (runs == 0u) { send_error(seq, ERR_BAD_ARG, CMD_RUN, 0, "runs must be >= 1"); return; }
    uint32_t first = 0, tmin = 0, tmax = 0, L = st.num_layers;
    st.runs = 0;
    for (uint32_t r = 0; r < runs; r++) {
        snapshot_restore();
        uint32_t t0 = hal_cycles();
        int s = nn_run(hal_cycles, layer_tmp);
        uint32_t wall = hal_cycles() - t0;
        if (s != NN_OK) { send_nn_error(seq, CMD_RUN, s, (int32_t)r); return; }
        if (r == 0u) {
            first = tmin = tmax = wall;
            memcpy(layer_min, layer_tmp, L * sizeof(uint32_t));
        } else {
            if (wall < tmin) tmin = wall;
            if (wall > tmax) tmax = wall;
            for (uint32_t i = 0; i < L; i++)
                if (layer_tmp[i] < layer_min[i]) layer_min[i] = layer_tmp[i];
        }
    }
    st.runs = runs;
    put_u32(OUT, runs);
    put_u32(OUT + 4, L);
    put_u32(OUT + 8, first);
    put_u32(OUT + 12, tmin);
    put_u32(OUT + 16, tmax);
    send_frame(CMD_RUN | PROTO_RESPONSE_BIT, seq, cycles_payload(20, 0));
}

static void cmd_cycles(uint8_t seq, const uint8_t *p, uint32_t len)
{
    if (len != 4u) { send_error(seq, ERR_BAD_LENGTH, CMD_CYCLES, 4, "cycles needs the first layer"); return; }
    if (!st.loaded) { send_error(seq, ERR_NOT_LOADED, CMD_CYCLES, 0, "no model loaded"); return; }
    if (st.runs == 0u) { send_error(seq, ERR_BAD_ARG, CMD_CYCLES, 0, "no run yet"); return; }
    uint32_t first = get_u32(p);
    if (first > st.num_layers) { send_error(seq, ERR_BAD_INDEX, CMD_CYCLES, (int32_t)st.num_layers, "layer out of range"); return; }
    send_frame(CMD_CYCLES | PROTO_RESPONSE_BIT, seq, cycles_payload(0, first));
}

static void cmd_read_output(uint8_t seq, const uint8_t *p, uint32_t len)
{
    if (len != 8u) { send_error(seq, ERR_BAD_LENGTH, CMD_READ_OUTPUT, 8, "read_output needs index, max, offset"); return; }
    if (!st.loaded) { send_error(seq, ERR_NOT_LOADED, CMD_READ_OUTPUT, 0, "no model loaded"); return; }
    uint32_t index = get_u16(p), maxlen = get_u16(p + 2), offset = get_u32(p + 4);
    const uint8_t *data = 0;
    uint32_t bytes = 0;
    int s = nn_output(index, &data, &bytes);
    if (s != NN_OK) { send_nn_error(seq, CMD_READ_OUTPUT, s, (int32_t)index); return; }
    if (offset > bytes) { send_error(seq, ERR_BAD_OFFSET, CMD_READ_OUTPUT, (int32_t)bytes, "offset beyond output"); return; }
    uint32_t n = bytes - offset, room = PROTO_MAX_PAYLOAD - 8u;
    if (maxlen != 0u && n > maxlen) n = maxlen;
    if (n > room) n = room;
    put_u32(OUT, bytes);
    put_u32(OUT + 4, offset);
    memcpy(OUT + 8, data + offset, n);
    send_frame(CMD_READ_OUTPUT | PROTO_RESPONSE_BIT, seq, 8u + n);
}

/* ---- plans in flash slots (slots.c) ---- */
static void send_slots_error(uint8_t seq, uint8_t cmd, int status, int32_t detail, const char *msg)
{
    switch (status) {
    case SLOTS_NONE: send_error(seq, ERR_NO_FLASH, cmd, 0, "no flash slots on this board"); break;
    case SLOTS_TOO_LARGE: send_error(seq, ERR_TOO_LARGE, cmd, detail, msg[0] ? msg : "plan larger than the flash slot area"); break;
    case SLOTS_WORN: send_error(seq, ERR_FLASH_WORN, cmd, detail, msg); break;
    case SLOTS_FLASH_ERROR: send_error(seq, ERR_FLASH, cmd, detail, "flash controller error (detail = its status flags)"); break;
    case SLOTS_BAD_OFFSET: send_error(seq, ERR_BAD_OFFSET, cmd, detail, "chunk leaves a hole or differs from flash"); break;
    case SLOTS_BAD_LENGTH: send_error(seq, ERR_BAD_LENGTH, cmd, detail, "chunk beyond the plan"); break;
    case SLOTS_CRC: send_error(seq, ERR_PLAN_CRC, cmd, detail, "plan crc mismatch in flash"); break;
    default: send_error(seq, ERR_BAD_ARG, cmd, 0, "FLASH_WRITE before FLASH_BEGIN"); break;
    }
}

static void cmd_flash_info(uint8_t seq, uint32_t len)
{
    if (len != 0u) { send_error(seq, ERR_BAD_LENGTH, CMD_FLASH_INFO, 0, "flash_info takes no payload"); return; }
    send_frame(CMD_FLASH_INFO | PROTO_RESPONSE_BIT, seq, slots_info(OUT, PROTO_MAX_PAYLOAD));
}

static void cmd_flash_begin(uint8_t seq, const uint8_t *p, uint32_t len)
{
    if (len != 8u + SLOT_HASH_BYTES) {
        send_error(seq, ERR_BAD_LENGTH, CMD_FLASH_BEGIN, 8 + SLOT_HASH_BYTES, "flash_begin needs total, crc, hash");
        return;
    }
    uint32_t total = get_u32(p), crc = get_u32(p + 4);
    if (total == 0u) { send_error(seq, ERR_BAD_LENGTH, CMD_FLASH_BEGIN, 0, "empty plan"); return; }
    soft_reset(); /* the model in RAM is gone; the plan in flash is what LOAD will find */
    struct slots_begin_result r;
    int32_t detail = 0;
    char msg[100];
    int s = slots_begin(total, crc, p + 8, &r, &detail, msg);
    if (s != SLOTS_OK) { send_slots_error(seq, CMD_FLASH_BEGIN, s, detail, msg); return; }
    OUT[0] = (uint8_t)(r.present ? 1u : 0u);
    OUT[1] = 0;
    put_u16(OUT + 2, r.first);
    put_u16(OUT + 4, r.count);
    put_u16(OUT + 6, 0);
    put_u32(OUT + 8, r.blob);
    put_u32(OUT + 12, r.programmed);
    put_u32(OUT + 16, r.max_erases);
    send_frame(CMD_FLASH_BEGIN | PROTO_RESPONSE_BIT, seq, 20);
}

static void cmd_flash_write(uint8_t seq, const uint8_t *p, uint32_t len)
{
    if (len < 4u) { send_error(seq, ERR_BAD_LENGTH, CMD_FLASH_WRITE, 4, "flash_write needs offset"); return; }
    uint32_t programmed = 0;
    int32_t detail = 0;
    int s = slots_write(get_u32(p), p + 4, len - 4u, &programmed, &detail);
    if (s != SLOTS_OK) { send_slots_error(seq, CMD_FLASH_WRITE, s, detail, ""); return; }
    put_u32(OUT, programmed);
    send_frame(CMD_FLASH_WRITE | PROTO_RESPONSE_BIT, seq, 4);
}

static void cmd_reset(uint8_t seq, const uint8_t *p, uint32_t len)
{
    uint32_t mode = len ? p[0] : RESET_SOFT;
    if (len > 1u || mode > RESET_HARD) { send_error(seq, ERR_BAD_ARG, CMD_RESET, (int32_t)mode, "reset mode 0 or 1"); return; }
    soft_reset();
    slots_forget();
    OUT[0] = (uint8_t)mode;
    send_frame(CMD_RESET | PROTO_RESPONSE_BIT, seq, 1);
    if (mode == RESET_HARD) hal_system_reset(); /* returns only where the platform cannot reset */
}

static void dispatch(const uint8_t *frame, uint32_t total)
{
    uint8_t cmd = frame[3], seq = frame[4];
    const uint8_t *p = frame + PROTO_HEADER_BYTES;
    uint32_t len = total - PROTO_OVERHEAD;
    switch (cmd) {
    case CMD_HELLO: cmd_hello(seq); break;
    case CMD_UPLOAD: cmd_upload(seq, p, len); break;
    case CMD_LOAD: cmd_load(seq, p, len); break;
    case CMD_SET_INPUT: cmd_set_input(seq, p, len); break;
    case CMD_RUN: cmd_run(seq, p, len); break;
    case CMD_CYCLES: cmd_cycles(seq, p, len); break;
    case CMD_READ_OUTPUT: cmd_read_output(seq, p, len); break;
    case CMD_RESET: cmd_reset(seq, p, len); break;
    case CMD_FLASH_INFO: cmd_flash_info(seq, len); break;
    case CMD_FLASH_BEGIN: cmd_flash_begin(seq, p, len); break;
    case CMD_FLASH_WRITE: cmd_flash_write(seq, p, len); break;
    case CMD_ECHO:
        memcpy(OUT, p, len);
        send_frame(CMD_ECHO | PROTO_RESPONSE_BIT, seq, len);
        break;
    default: send_error(seq, ERR_UNKNOWN_CMD, cmd, cmd, "unknown command"); break;
    }
}

void shell_run(void)
{
    hal_model_ram(&st.ram, &st.ram_bytes);
    soft_reset();
    rx_len = 0;
    put_u32(OUT, st.ram_bytes);
    send_frame(MSG_BOOT, 0, 4);
    rx_need = 1;
    for (;;) {
        uint32_t n = rx_len >= rx_need ? scan() : 0u;
        if (n) {
            dispatch(rx, n);
            drop(n);
            rx_need = 1;
            if (!hal_stack_ok()) {
                uint32_t w[1] = {FAULT_STACK_OVERFLOW};
                shell_send_fault(w, 1);
                while (hal_uart_read(0) != HAL_EOF) { /* halted: keep polling the UART, answer nothing */ }
                return;
            }
            continue;
        }
        int c = hal_uart_read(rx_len > 0u);
        if (c == HAL_EOF) return;
        if (c == HAL_TIMEOUT) { /* truncated frame: report it, then rescan what is left */
            int header = rx_len >= PROTO_HEADER_BYTES && crc8(rx + 2, 6) == rx[8];
            send_error(header ? rx[4] : 0, ERR_TIMEOUT, header ? rx[3] : 0, (int32_t)rx_len, "inter-byte timeout");
            drop(1);
            rx_need = 1;
            continue;
        }
        rx[rx_len++] = (uint8_t)c;
    }
}
