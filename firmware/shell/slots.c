/*
 * Plans in flash slots: the slot headers, rotation, wear accounting and programming of a plan
 * (slots.h; wire format and header layout in firmware/PROTOCOL.md "Flash slots").
 * Platform independent: the flash itself is hal_flash_* (firmware/board/flash_prog.c on the boards, a
 * RAM or file-backed buffer in the host build).
 *
 * Slot header (256 bytes at the start of the first slot of a run; all integers little endian):
 *   0 magic "NNSL"  4 version 1  8 sequence (newest header = highest)  12 u16 first slot  14 u16 slots in run
 *   16 plan bytes  20 plan CRC-32  24 plan hash (16 bytes, chosen by the host)  40 header CRC-32 (of bytes
 *   0..239 with this field 0)  44 reserved  48 u32 erase count of each of the 32 slots of the grid
 *   176..239 reserved (0xFF)  240 commit: "DONE", ~plan CRC-32 (programmed once the plan verified)
 * Bytes 0..239 are programmed right after the run is erased, the commit word last; the plan follows at 256.
 * The erase counts of the newest valid header are the board's counts (a power loss between an erase and
 * its header loses at most that run's increments: documented, not prevented).
 */
#include <string.h>

#include "crc.h"
#include "hal.h"
#include "slots.h"

/* The flash slots' bookkeeping runs between inferences (commands), never inside the timed nn_run: compiled for
 * size. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif

#define SLOT_MAGIC 0x4C534E4Eu  /* "NNSL" */
#define SLOT_VERSION 1u
#define COMMIT_MAGIC 0x454E4F44u /* "DONE" */
#define HDR_BODY 240u            /* bytes programmed with the header; the commit word follows */
#define OFF_COUNTS 48u

struct cand {
    uint32_t slot, seq, count, len, crc;
    int committed;
};

static struct {
    int scanned;
    uint32_t ncand;
    struct cand cand[SLOT_MAX];
    int newest;                  /* index into cand, -1: no header */
    uint32_t counts[SLOT_MAX];   /* erase counts (the newest header's) */
    /* the session of FLASH_BEGIN .. FLASH_WRITE .. LOAD */
    int active, committed;
    uint8_t hash[SLOT_HASH_BYTES];
    uint32_t len, crc, first, count, blob, programmed;
} sl;

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* decimal, for messages (no printf in the firmware) */
static char *put_dec(char *s, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    while (n) *s++ = tmp[--n];
    return s;
}
static char *put_txt(char *s, const char *t)
{
    while (*t) *s++ = *t++;
    return s;
}

static uint32_t header_crc(const uint8_t *h)
{
    static const uint8_t zero[4] = {0, 0, 0, 0};
    uint32_t c = crc32_update(0, h, 40);
    c = crc32_update(c, zero, 4);
    return crc32_update(c, h + 44, HDR_BODY - 44);
}

static int read_header(uint32_t slot, struct cand *c)
{
    const struct hal_flash *f = hal_flash();
    const uint8_t *h = hal_flash_ptr(f->slots[slot].base);
    if (get32(h) != SLOT_MAGIC || get32(h + 4) != SLOT_VERSION || header_crc(h) != get32(h + 40)) return 0;
    c->slot = slot;
    c->seq = get32(h + 8);
    c->count = get16(h + 14);
    c->len = get32(h + 16);
    c->crc = get32(h + 20);
    if (get16(h + 12) != slot || c->count == 0u || slot + c->count > f->nslots) return 0;
    c->committed = get32(h + 240) == COMMIT_MAGIC && get32(h + 244) == ~c->crc;
    return 1;
}

static void scan(void)
{
    const struct hal_flash *f = hal_flash();
    sl.ncand = 0;
    sl.newest = -1;
    for (uint32_t s = f->first; s < f->nslots && sl.ncand < SLOT_MAX; s++) {
        struct cand *c = &sl.cand[sl.ncand];
        if (!read_header(s, c)) continue;
        if (sl.newest < 0 || c->seq > sl.cand[sl.newest].seq) sl.newest = (int)sl.ncand;
        sl.ncand++;
    }
    for (uint32_t i = 0; i < SLOT_MAX; i++) sl.counts[i] = 0;
    if (sl.newest >= 0) {
        const uint8_t *h = hal_flash_ptr(f->slots[sl.cand[sl.newest].slot].base);
        for (uint32_t i = 0; i < SLOT_MAX && i < f->nslots; i++) {
            uint32_t v = get32(h + OFF_COUNTS + 4u * i);
            sl.counts[i] = v == 0xFFFFFFFFu ? 0u : v;
        }
    }
    sl.scanned = 1;
}

static int overlaps(const struct cand *a, const struct cand *b)
{
    return a->slot < b->slot + b->count && b->slot < a->slot + a->count;
}

/* a committed plan that no newer header has (partly) erased */
static int valid(const struct cand *c)
{
    if (!c->committed) return 0;
    for (uint32_t j = 0; j < sl.ncand; j++)
        if (sl.cand[j].seq > c->seq && overlaps(&sl.cand[j], c)) return 0;
    return 1;
}

static uint32_t blob_crc(uint32_t blob, uint32_t len) { return crc32_update(0, hal_flash_ptr(blob), len); }

void slots_forget(void) { sl.active = 0; sl.committed = 0; }

int slots_begin(uint32_t len, uint32_t crc, const uint8_t *hash, struct slots_begin_result *out, int32_t *detail,
                char *msg)
{
    const struct hal_flash *f = hal_flash();
    msg[0] = 0;
    *detail = 0;
    if (f->nslots == 0u || f->first >= f->nslots) return SLOTS_NONE;
    if (sl.active && sl.len == len && sl.crc == crc && memcmp(sl.hash, hash, SLOT_HASH_BYTES) == 0) {
        out->present = sl.committed; /* a retried FLASH_BEGIN: the same session, nothing erased again */
        out->first = sl.first; out->count = sl.count; out->blob = sl.blob; out->programmed = sl.programmed;
        out->max_erases = 0;
        for (uint32_t s = sl.first; s < sl.first + sl.count; s++)
            if (sl.counts[s] > out->max_erases) out->max_erases = sl.counts[s];
        return SLOTS_OK;
    }
    slots_forget();
    if (!sl.scanned) scan();
    /* the same plan in a slot already: verified by its CRC, not programmed again */
    for (uint32_t i = 0; i < sl.ncand; i++) {
        const struct cand *c = &sl.cand[i];
        uint32_t base = f->slots[c->slot].base;
        if (c->len != len || c->crc != crc || !valid(c)) continue;
        if (memcmp(hal_flash_ptr(base + 24u), hash, SLOT_HASH_BYTES) != 0) continue;
        if (blob_crc(base + SLOT_HEADER_BYTES, len) != crc) continue;
        sl.active = sl.committed = 1;
        memcpy(sl.hash, hash, SLOT_HASH_BYTES);
        sl.len = len; sl.crc = crc; sl.first = c->slot; sl.count = c->count;
        sl.blob = base + SLOT_HEADER_BYTES; sl.programmed = len;
        out->present = 1; out->first = sl.first; out->count = sl.count; out->blob = sl.blob;
        out->programmed = len; out->max_erases = 0;
        for (uint32_t s = sl.first; s < sl.first + sl.count; s++)
            if (sl.counts[s] > out->max_erases) out->max_erases = sl.counts[s];
        return SLOTS_OK;
    }
    /* a new run: the next one after the newest plan (rotation), skipping runs with a worn slot */
    uint32_t need = SLOT_HEADER_BYTES + len, usable = f->nslots - f->first, area = 0;
    for (uint32_t s = f->first; s < f->nslots; s++) area += f->slots[s].bytes;
    if (need > area) {
        *detail = (int32_t)(area - SLOT_HEADER_BYTES);
        char *m = put_txt(msg, "plan of ");
        m = put_dec(m, len);
        m = put_txt(m, " B larger than the flash slot area (");
        m = put_dec(m, area - SLOT_HEADER_BYTES);
        put_txt(m, " B)")[0] = 0;
        return SLOTS_TOO_LARGE;
    }
    uint32_t ring = f->first;
    if (sl.newest >= 0) ring = sl.cand[sl.newest].slot + sl.cand[sl.newest].count;
    if (ring >= f->nslots) ring = f->first;
    uint32_t best = 0xFFFFFFFFu, start = 0, count = 0, worst = 0;
    int found = 0, fits = 0;
    for (uint32_t i = 0; i < usable && !found; i++) {
        uint32_t p = f->first + (ring - f->first + i) % usable, bytes = 0, k = 0, w = 0;
        while (bytes < need && p + k < f->nslots) {
            if (sl.counts[p + k] > w) w = sl.counts[p + k];
            bytes += f->slots[p + k].bytes;
            k++;
        }
        if (bytes < need) continue;
        fits = 1;
        if (w + 1u >= f->endurance) { /* erasing would bring a slot to its endurance */
            if (w < best) best = w;
            continue;
        }
        found = 1; start = p; count = k; worst = w;
    }
    if (!found) {
        if (!fits) return SLOTS_TOO_LARGE;
        *detail = (int32_t)f->endurance;
        char *m = put_txt(msg, "flash worn: every run for ");
        m = put_dec(m, need);
        m = put_txt(m, " B has a slot erased ");
        m = put_dec(m, best);
        m = put_txt(m, " times, endurance ");
        m = put_dec(m, f->endurance);
        put_txt(m, " cycles")[0] = 0;
        return SLOTS_WORN;
    }
    uint32_t seq = sl.newest >= 0 ? sl.cand[sl.newest].seq + 1u : 1u;
    for (uint32_t s = start; s < start + count; s++) {
        sl.counts[s]++; /* an attempted erase wears the slot too */
        uint32_t e = hal_flash_erase_slot(s);
        if (e) {
            sl.scanned = 0;
            *detail = (int32_t)e;
            return SLOTS_FLASH_ERROR;
        }
    }
    uint8_t h[HDR_BODY];
    memset(h, 0xFF, sizeof h);
    put32(h, SLOT_MAGIC);
    put32(h + 4, SLOT_VERSION);
    put32(h + 8, seq);
    put16(h + 12, start);
    put16(h + 14, count);
    put32(h + 16, len);
    put32(h + 20, crc);
    memcpy(h + 24, hash, SLOT_HASH_BYTES);
    for (uint32_t i = 0; i < SLOT_MAX; i++) put32(h + OFF_COUNTS + 4u * i, i < f->nslots ? sl.counts[i] : 0u);
    put32(h + 40, header_crc(h));
    sl.scanned = 0; /* flash changed: scan again next time */
    uint32_t e = hal_flash_program(f->slots[start].base, h, HDR_BODY);
    if (e) {
        *detail = (int32_t)e;
        return SLOTS_FLASH_ERROR;
    }
    sl.active = 1;
    sl.committed = 0;
    memcpy(sl.hash, hash, SLOT_HASH_BYTES);
    sl.len = len; sl.crc = crc; sl.first = start; sl.count = count;
    sl.blob = f->slots[start].base + SLOT_HEADER_BYTES;
    sl.programmed = 0;
    out->present = 0; out->first = start; out->count = count; out->blob = sl.blob; out->programmed = 0;
    out->max_erases = worst + 1u;
    return SLOTS_OK;
}

int slots_write(uint32_t offset, const uint8_t *data, uint32_t n, uint32_t *programmed, int32_t *detail)
{
    const struct hal_flash *f = hal_flash();
    *detail = 0;
    *programmed = sl.programmed;
    if (!sl.active) return SLOTS_NO_SESSION;
    if (offset > sl.len || n > sl.len - offset) { *detail = (int32_t)sl.len; return SLOTS_BAD_LENGTH; }
    if (offset < sl.programmed) { /* a resent chunk: it must be what is there */
        uint32_t m = n < sl.programmed - offset ? n : sl.programmed - offset;
        if (memcmp(hal_flash_ptr(sl.blob + offset), data, m) != 0 || m != n) {
            *detail = (int32_t)sl.programmed;
            return SLOTS_BAD_OFFSET;
        }
        return SLOTS_OK;
    }
    uint32_t pb = f->program_bytes;
    if (offset != sl.programmed || offset % pb) { *detail = (int32_t)sl.programmed; return SLOTS_BAD_OFFSET; }
    uint32_t whole = n - n % pb, e = 0;
    if (whole) e = hal_flash_program(sl.blob + offset, data, whole);
    if (!e && whole < n) {
        uint8_t tail[8];
        memset(tail, 0xFF, sizeof tail);
        memcpy(tail, data + whole, n - whole);
        e = hal_flash_program(sl.blob + offset + whole, tail, pb);
    }
    if (e) {
        slots_forget();
        sl.scanned = 0;
        *detail = (int32_t)e;
        return SLOTS_FLASH_ERROR;
    }
    sl.programmed = offset + n;
    *programmed = sl.programmed;
    if (sl.programmed == sl.len) {
        uint32_t c = blob_crc(sl.blob, sl.len);
        if (c != sl.crc) {
            slots_forget();
            *detail = (int32_t)c;
            return SLOTS_CRC;
        }
        uint8_t commit[8];
        put32(commit, COMMIT_MAGIC);
        put32(commit + 4, ~sl.crc);
        e = hal_flash_program(f->slots[sl.first].base + HDR_BODY, commit, sizeof commit);
        sl.scanned = 0;
        if (e) {
            slots_forget();
            *detail = (int32_t)e;
            return SLOTS_FLASH_ERROR;
        }
        sl.committed = 1;
    }
    return SLOTS_OK;
}

const uint8_t *slots_plan(uint32_t crc, uint32_t *len)
{
    if (!sl.active || !sl.committed || sl.crc != crc) return 0;
    *len = sl.len;
    return hal_flash_ptr(sl.blob);
}

uint32_t slots_info(uint8_t *out, uint32_t cap)
{
    const struct hal_flash *f = hal_flash();
    uint32_t usable = f->nslots > f->first ? f->nslots - f->first : 0u;
    if (cap < 28u + 16u * usable) usable = cap >= 28u ? (cap - 28u) / 16u : 0u;
    uint8_t state[SLOT_MAX];
    uint8_t head[SLOT_MAX];
    memset(state, 0, sizeof state);
    memset(head, 0xFF, sizeof head);
    if (usable) {
        if (!sl.scanned) scan();
        /* paint oldest first: newer headers win where runs overlap */
        for (uint32_t done = 0; done < sl.ncand; done++) {
            uint32_t pick = 0xFFFFFFFFu, seq = 0;
            for (uint32_t i = 0; i < sl.ncand; i++) {
                uint32_t rank = 0;
                for (uint32_t j = 0; j < sl.ncand; j++) rank += sl.cand[j].seq < sl.cand[i].seq;
                if (rank == done) { pick = i; seq = sl.cand[i].seq; }
            }
            (void)seq;
            if (pick == 0xFFFFFFFFu) continue;
            const struct cand *c = &sl.cand[pick];
            if (valid(c)) {
                for (uint32_t s = c->slot; s < c->slot + c->count; s++) { state[s] = s == c->slot ? 1u : 2u; head[s] = (uint8_t)c->slot; }
            } else {
                state[c->slot] = 3u;
                head[c->slot] = (uint8_t)c->slot;
            }
        }
    }
    out[0] = 1;
    out[1] = f->nslots ? 1u : 0u;
    put16(out + 2, usable);
    put32(out + 4, f->endurance);
    put32(out + 8, f->program_bytes);
    put32(out + 12, SLOT_HEADER_BYTES);
    put32(out + 16, f->erases);
    put32(out + 20, f->programs);
    put32(out + 24, f->first);
    uint32_t n = 28;
    for (uint32_t i = 0; i < usable; i++) {
        uint32_t s = f->first + i;
        put32(out + n, f->slots[s].base);
        put32(out + n + 4, f->slots[s].bytes);
        put32(out + n + 8, sl.counts[s]);
        out[n + 12] = state[s];
        out[n + 13] = 0;
        put16(out + n + 14, head[s] == 0xFFu ? 0xFFFFu : head[s]);
        n += 16;
    }
    return n;
}
