/*
 * Flash wait states: how the board's flash interface and its accelerator hide (or not) the
 * flash_wait_states of the catalogue.  Everything that charges flash wait states is in this file:
 *
 *   fetch_cost()            instruction fetch of a block: ACC_NONE (every line entered costs WS),
 *                           ACC_PREFETCH (only a branch target line outside the current line),
 *                           ACC_ART (prefetch + the ART I-cache: a missing branch target line costs WS,
 *                           sequential lines are filled for free), ACC_CACHE (M7 L1 I-cache / L5
 *                           ICACHE: every line of the block is looked up, a miss costs WS; M7 caches
 *                           are off until CCR.IC/DC: then every line entered costs WS)
 *   data_access_cost()      one data access of the core: the extra bus transfers of an unaligned
 *                           LDR/STR(H) (M3/M4/M33) and, for each read transfer that hits flash,
 *                           flash_data_read_cost(): WS, or the ART D-cache / M7 D-cache (hit 0, miss WS).
 *                           Called per access by the strict-mode memory hook and by the fast-mode data
 *                           program replayed at block entry (blocks.c): the same rule in both modes.
 *   vb_flash_set_wait_states()  the flash latency changed at run time (FLASH_ACR.LATENCY)
 *   Cache                   the set-associative LRU tag store the ART / L1 / ICACHE models share
 *
 * The geometry (fetch width, line sizes, ways) comes from the board's family (costmodel) through
 * Model(...); the rules and their sources are in ../README.md ("Flash wait states").  SRAM and TCM
 * are zero wait state: fetch_cost charges nothing for a block outside [flash_base, flash_end), and
 * data_access_cost charges flash wait states only for read transfers inside it.
 */
#include <stdlib.h>
#include <string.h>

#include "cyclemodel.h"

/* ------------------------------------------------------------ the Cache model */
void cache_free(Cache *c) { free(c->tags); free(c->age); memset(c, 0, sizeof *c); }
int cache_init(Cache *c, uint32_t bytes, uint32_t line, uint32_t ways)
{
    cache_free(c);
    if (!bytes || !line || !ways) return 0;
    uint32_t lines = bytes / line; if (!lines) lines = 1;
    if (ways > lines) ways = lines;
    c->ways = ways; c->nsets = lines / ways; if (!c->nsets) c->nsets = 1;
    c->line_shift = 0; while ((1u << c->line_shift) < line) c->line_shift++;
    c->tags = calloc((size_t)c->nsets * ways, 4); c->age = calloc((size_t)c->nsets * ways, 4);
    return c->tags && c->age ? 0 : -1;
}
void cache_clear(Cache *c)
{
    c->fills++;
    if (c->tags) { memset(c->tags, 0, (size_t)c->nsets * c->ways * 4); memset(c->age, 0, (size_t)c->nsets * c->ways * 4); }
}
/* returns 1 on hit, 0 on miss (and fills, LRU) */
int cache_access(Cache *c, uint32_t addr)
{
    uint32_t line = addr >> c->line_shift;
    uint32_t set = line % c->nsets;
    uint32_t *t = c->tags + (size_t)set * c->ways, *a = c->age + (size_t)set * c->ways;
    uint32_t tag = line + 1, victim = 0, oldest = 0xFFFFFFFFu;
    c->tick++;
    for (uint32_t w = 0; w < c->ways; w++) {
        if (t[w] == tag) { a[w] = c->tick; return 1; }
        if (a[w] < oldest) { oldest = a[w]; victim = w; }
    }
    t[victim] = tag; a[victim] = c->tick;
    c->fills++;
    return 0;
}

/* ------------------------------------------------------------ configuration */
int flash_init(Model *m, uint32_t wait_states, uint32_t fetch_line, uint32_t ib, uint32_t il, uint32_t iw,
               uint32_t db, uint32_t dl, uint32_t dw, int caches_enabled)
{
    m->ws = wait_states;
    m->fetch_shift = 0; while ((1u << m->fetch_shift) < fetch_line) m->fetch_shift++;
    if (cache_init(&m->icache, ib, il, iw) || cache_init(&m->dcache, db, dl, dw)) return -1;
    m->icache_on = m->dcache_on = caches_enabled;
    m->last_fetch_line = 0xFFFFFFFFu;
    return 0;
}

/* ------------------------------------------------------------ instruction side */
/* The line-by-line part of fetch_cost: every fetch line of the block, through the I-cache when it
 * is on (kept out of line so that fetch_cost's early exits stay cheap: it runs for every block). */
static __attribute__((noinline)) uint32_t fetch_lines(Model *m, Block *b, int discontinuity, int cached,
                                                      uint32_t shift)
{
    uint32_t first = b->addr >> shift, last = (b->addr + b->size - 1) >> shift;
    uint64_t fills0 = m->icache.fills;
    uint32_t total = 0;
    for (uint32_t line = first; line <= last; line++) {
        uint32_t c = 0;
        int seq = !(line == first && discontinuity);
        if (line == m->last_fetch_line && !cached && !(line == first && discontinuity)) c = 0;  /* same line, sequential */
        else if (line == m->last_fetch_line && cached) c = 0;
        else if (!cached) c = m->ws;                          /* no accelerator, or cache disabled */
        else if (m->accel == ACC_ART) c = cache_access(&m->icache, line << shift) ? 0 : (seq ? 0 : m->ws);
        else c = cache_access(&m->icache, line << shift) ? 0 : m->ws;
        m->last_fetch_line = line;
        if (m->nlines < 64) { m->line_addr[m->nlines] = line << shift; m->line_cost[m->nlines] = c; m->nlines++; }
        total += c;
    }
    if (cached && m->icache.fills == fills0) b->imemo = fills0;
    return total;
}

/* Instruction fetch stalls for a block (flash only). */
uint32_t fetch_cost(Model *m, Block *b, int discontinuity)
{
    m->nlines = 0;
    if (m->flash_fault && b->addr >= m->flash_base && b->addr < m->flash_end) {
        m->flash_fault(m->flash_fault_ctx, m->uc);
        return 0;
    }
    if (!m->ws) return 0;
    if (b->addr < m->flash_base || b->addr >= m->flash_end) { m->last_fetch_line = 0xFFFFFFFFu; return 0; }
    int cached = (m->accel == ACC_CACHE || m->accel == ACC_ART) && m->icache.tags && m->icache_on;
    uint32_t shift = cached ? m->icache.line_shift : m->fetch_shift;
    uint32_t first = b->addr >> shift, last = (b->addr + b->size - 1) >> shift;
    if (m->accel == ACC_PREFETCH || (m->accel == ACC_ART && !cached)) {
        /* prefetch: sequential lines are hidden; a branch target outside the current line pays WS */
        uint32_t c = (discontinuity && first != m->last_fetch_line) ? m->ws : 0;
        m->last_fetch_line = last;
        m->line_addr[0] = first << shift; m->line_cost[0] = c; m->nlines = 1;
        return c;
    }
    if (cached && b->imemo == m->icache.fills) {
        /* every line of this block hit last time and nothing was filled since: all hits */
        m->last_fetch_line = last;
        return 0;
    }
    return fetch_lines(m, b, discontinuity, cached, shift);
}

/* ------------------------------------------------------------ data side */
/* A data read from flash at addr (one bus transfer): WS, through the ART D-cache / the enabled M7 D-cache
 * when present (hit 0, miss WS). */
uint32_t flash_data_read_cost(Model *m, uint32_t a)
{
    if (m->flash_fault) {
        m->flash_fault(m->flash_fault_ctx, m->uc);
        return 0;
    }
    if (!m->ws) return 0;
    uint32_t c = m->ws;
    if ((m->accel == ACC_ART || m->accel == ACC_CACHE) && m->dcache.tags && m->dcache_on) {
        /* the line read last is still the most recently used one (no D-cache access since, no fill or
         * invalidation: same epoch): a hit, and the LRU order does not change -- no lookup needed */
        uint32_t line = (a >> m->dcache.line_shift) + 1;
        if (line == m->last_dline && m->dline_epoch == m->dcache.fills) return 0;
        c = cache_access(&m->dcache, a) ? 0 : m->ws;
        m->last_dline = line; m->dline_epoch = m->dcache.fills;
    }
    return c;
}

static inline uint32_t read_transfer(Model *m, uint32_t a, int load)
{
    return (load && a >= m->flash_base && a < m->flash_end) ? flash_data_read_cost(m, a) : 0;
}

/* One access of the core (LDR/STR of size 1/2/4, one word of an LDM/STM/LDRD, a doubleword of VLDR.64).
 * Unaligned LDR/STR(H) on the M3/M4/M33 are "converted into two or more aligned accesses" by the bus
 * interface (Cortex-M3 TRM DDI0337 14.9; M4 TRM 3.3.2): a halfword at an odd address is two byte
 * transfers, a word at a halfword offset two halfwords, a word at an odd address byte + halfword + byte;
 * each extra transfer costs a cycle, and each read transfer pays the flash interface on its own. */
uint32_t data_access_cost(Model *m, uint32_t a, uint32_t size, int load)
{
    if (size > 4) return data_access_cost(m, a, 4, load) + data_access_cost(m, a + 4, size - 4, load);
    int split = (m->core == CORE_M3 || m->core == CORE_M4 || m->core == CORE_M33) && size > 1 && (a & (size - 1));
    if (!split) return read_transfer(m, a, load);
    if (size == 2)                                           /* byte, byte */
        return 1 + read_transfer(m, a, load) + read_transfer(m, a + 1, load);
    if ((a & 3) == 2)                                        /* halfword, halfword */
        return 1 + read_transfer(m, a, load) + read_transfer(m, a + 2, load);
    if ((a & 3) == 1)                                        /* byte, halfword, byte */
        return 2 + read_transfer(m, a, load) + read_transfer(m, a + 1, load) + read_transfer(m, a + 3, load);
    return 2 + read_transfer(m, a, load) + read_transfer(m, a + 1, load) + read_transfer(m, a + 3, load);   /* (a & 3) == 3 */
}

/* FLASH_ACR.LATENCY written at run time (the FLASH-controller model calls this): every later flash
 * access pays the new wait states.  Nothing of the cycle model bakes WS in: block costs are static
 * pipeline costs only, fetch_cost / data_access_cost read m->ws at each use; the per-block I-cache hit
 * memo is independent of WS (a hit costs 0 at any latency) but is dropped all the same (a new fill
 * epoch), so that no state computed under the old latency survives the change. */
void vb_flash_set_wait_states(Model *m, uint32_t ws)
{
    if (ws == m->ws) return;
    m->ws = ws;
    m->icache.fills++;
    m->dcache.fills++;
}
