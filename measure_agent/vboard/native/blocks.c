/*
 * Blocks: the cache of decoded translation blocks and the native Unicorn hooks.
 *
 * - decode_block(): decodes a block once from the instruction bytes in the host buffers (decode.c),
 *   prices it (timing.c: static cost, per-instruction prefix costs, refill penalty), and records
 *   what the hooks check at run time (instructions invalid on this core, first FP instruction,
 *   literal loads from flash, alignment-sensitive accesses).  Kept in an open-addressing hash table
 *   keyed by (address, size); re-decoded when the first bytes at the address change.
 * - block_hook (UC_HOOK_BLOCK): adds the previous block's refill penalty when control did not fall
 *   through, the fetch and literal wait states (flash.c), the block's static cost; raises the
 *   model's faults (unaligned access in fast mode, NOCP, invalid instruction) and the budget stop.
 * - mem_hook (UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, strict mode only): unaligned accesses that fault
 *   on M-profile, and the wait states of data reads from flash (flash.c).
 * - cycles_before() / model_truncate_at(): counters at an instruction inside the current block (DWT
 *   CYCCNT sampling, BKPT and faults that cut a block short).
 */
#include <stdlib.h>
#include <string.h>

#include "cyclemodel.h"

/* ------------------------------------------------------------ Model lifecycle and memory regions */
void model_init(Model *m, int core, int fpu, int dsp, int accel, int strict)
{
    m->core = core; m->fpu = fpu; m->dsp = dsp; m->accel = accel;
    m->strict = strict;
    m->pc_regid = 0;
    m->expect_next = 0xFFFFFFFFu;
    m->mmio_insn_base = UINT64_MAX; m->mmio_last = -1;
}

/* zero counters, drop block and cache state */
void model_reset(Model *m)
{
    table_clear(m);
    m->cycles = m->insns = 0;
    m->cur = NULL; m->cur_base = m->cur_extra = m->cur_insn_base = 0;
    m->expect_next = 0xFFFFFFFFu; m->prev_taken = 0; m->prev_always = 0; m->last_fetch_line = 0xFFFFFFFFu;
    m->stop = STOP_NONE; m->fault_kind = FAULT_NONE; m->fault_pc = m->fault_addr = 0;
    m->mmio_insn_base = UINT64_MAX; m->mmio_last = -1;
    m->nlines = 0; m->nlitc = 0;
    cache_clear(&m->icache); cache_clear(&m->dcache);
}

void model_release(Model *m)
{
    table_clear(m);
    free(m->table);
    m->table = NULL; m->tcap = 0;
    cache_free(&m->icache); cache_free(&m->dcache);
}

int model_add_region(Model *m, uint32_t base, uint32_t size, uint8_t *ptr, int flash)
{
    if (m->nregions >= 8) return -1;
    MemRegion *r = &m->regions[m->nregions++];
    r->base = base; r->size = size; r->ptr = ptr; r->flash = flash;
    if (flash) { m->flash_base = base; m->flash_end = base + size; }
    return 0;
}

/* ------------------------------------------------------------ the block cache */
static const uint8_t *host_ptr(Model *m, uint32_t addr, uint32_t *avail, int *flash)
{
    for (int i = 0; i < m->nregions; i++) {
        MemRegion *r = &m->regions[i];
        if (addr >= r->base && addr - r->base < r->size) {
            *avail = r->size - (addr - r->base);
            if (flash) *flash = r->flash;
            return r->ptr + (addr - r->base);
        }
    }
    return NULL;
}

static void block_free(Block *b)
{
    if (!b) return;
    free(b->off); free(b->prefix); free(b->alignflag); free(b->lit_addr); free(b->lit_idx); free(b->achk_idx); free(b->achk_rn); free(b);
}

void table_clear(Model *m)
{
    if (m->table) {
        for (uint32_t i = 0; i < m->tcap; i++) block_free(m->table[i]);
        memset(m->table, 0, (size_t)m->tcap * sizeof(Block *));
    }
    m->tcount = 0;
    m->cur = NULL;
}

static inline uint32_t hash32(uint32_t a) { a ^= a >> 16; a *= 0x7feb352d; a ^= a >> 15; a *= 0x846ca68b; a ^= a >> 16; return a; }

static int table_grow(Model *m)
{
    uint32_t ncap = m->tcap ? m->tcap * 2 : 4096;
    Block **nt = calloc(ncap, sizeof(Block *));
    if (!nt) return -1;
    for (uint32_t i = 0; i < m->tcap; i++) {
        Block *b = m->table[i];
        if (!b) continue;
        uint32_t h = hash32(b->addr ^ (b->size << 20)) & (ncap - 1);
        while (nt[h]) h = (h + 1) & (ncap - 1);
        nt[h] = b;
    }
    free(m->table); m->table = nt; m->tcap = ncap;
    return 0;
}

/* The core does not implement this instruction (what Unicorn does not enforce): DSP without the DSP
 * extension, FP without an FPU, double precision on an SP-only FPU, 32-bit Thumb-2 on the M0+. */
static int invalid_on_core(const Model *m, const Insn *I)
{
    int bad = 0;
    if (I->dsp && !m->dsp) bad = 1;
    if (is_fp(I->cls) && m->fpu == FPU_NONE) bad = 1;
    /* FPv4-SP-D16 has no double-precision arithmetic, but VLDR/VSTR of a D register
       (a pair of S registers) is part of it (Armv7-M ARM A2.5, FPv4-SP extension). */
    if (is_fp(I->cls) && I->dp && m->fpu == FPU_SP && I->cls != C_FLD && I->cls != C_FST) bad = 1;
    if (I->len == 4 && m->core == CORE_M0P && I->cls != C_BL && I->cls != C_BARRIER &&
        I->cls != C_ISB && I->cls != C_SYSREG) bad = 1;
    return bad;
}

static Block *decode_block(Model *m, uint32_t addr, uint32_t size, const uint8_t *p, uint32_t avail)
{
    Block *b = calloc(1, sizeof(Block));
    if (!b) return NULL;
    uint32_t cap = size / 2 + 1;
    b->off = malloc(cap * sizeof(uint16_t));
    b->prefix = malloc((cap + 1) * sizeof(uint32_t));
    b->alignflag = malloc(cap);
    b->lit_addr = malloc(cap * sizeof(uint32_t));
    b->lit_idx = malloc(cap * sizeof(uint16_t));
    b->achk_idx = malloc(cap * sizeof(uint16_t));
    b->achk_rn = malloc(cap);
    if (!b->off || !b->prefix || !b->alignflag || !b->lit_addr || !b->lit_idx || !b->achk_idx || !b->achk_rn) { block_free(b); return NULL; }
    b->hp = p; b->imemo = UINT64_MAX;
    b->addr = addr; b->size = size; b->bad = -1; b->first_fp = -1;
    b->check = 0;
    memcpy(&b->check, p, size >= 4 && avail >= 4 ? 4 : 2);
    Insn cur;
    Pipeline pl;
    pipeline_start(&pl);
    int it_left = 0;
    uint16_t written = 0;
    uint32_t cost = 0, pos = 0, n = 0;
    while (pos < size && pos + 2 <= avail) {
        decode(p + pos, avail - pos, &cur);
        uint32_t taken;
        uint32_t k = insn_cycles(m->core, &pl, &cur, &taken);
        if (is_fp(cur.cls) && b->first_fp < 0) b->first_fp = (int32_t)n;
        if (b->bad < 0 && invalid_on_core(m, &cur)) b->bad = (int32_t)n;
        b->off[n] = (uint16_t)pos;
        b->prefix[n] = cost;
        b->alignflag[n] = cur.align;
        if (cur.lit) {
            uint32_t la = ((addr + pos + 4) & ~3u) + (uint32_t)cur.lit_off;
            if (la >= m->flash_base && la < m->flash_end) { b->lit_addr[b->nlit] = la; b->lit_idx[b->nlit] = (uint16_t)n; b->nlit++; }
        }
        if (cur.align) {
            /* SP-based accesses (PUSH/POP, [sp, #imm]) are aligned whenever SP is (always, here) */
            unsigned rn = (cur.addr & 0x7FFF) ? (unsigned)__builtin_ctz(cur.addr) : 15;
            if (cur.addr != R(13)) b->has_align = 1;
            if (cur.addr && cur.addr != R(13) && !(cur.addr & written) && !(cur.addr & (cur.addr - 1))) {
                b->achk_idx[b->nachk] = (uint16_t)n; b->achk_rn[b->nachk] = (uint8_t)rn; b->nachk++;
            }
        }
        written |= cur.dst;
        cost += k;
        pos += cur.len;
        n++;
        int in_it = it_left > 0;
        if (it_left > 0) it_left--;
        if (cur.cls == C_IT) {
            unsigned mask = (unsigned)(p[pos - cur.len] & 0xF), tz = 0;
            while (tz < 4 && !(mask & (1u << tz))) tz++;
            it_left = 4 - (int)tz;
        }
        if (is_branch(cur.cls)) { b->taken = taken; b->ends_branch = 1; b->always_taken = !cur.cond && !in_it; }
        else { b->taken = 0; b->ends_branch = 0; b->always_taken = 0; }
        if (n >= cap) break;
    }
    b->prefix[n] = cost;
    b->ninsn = n;
    b->cost = cost;
    return b;
}

Block *lookup_block(Model *m, uint32_t addr, uint32_t size)
{
    if (m->tcap == 0 || m->tcount * 2 >= m->tcap) if (table_grow(m)) return NULL;
    uint32_t h = hash32(addr ^ (size << 20)) & (m->tcap - 1);
    while (m->table[h]) {
        Block *b = m->table[h];
        if (b->addr == addr && b->size == size) {
            uint32_t check = 0;
            memcpy(&check, b->hp, size >= 4 ? 4 : 2);
            if (b->check == check) return b;
            /* code at this address changed: re-decode in place */
            uint32_t avail; int flash = 0;
            const uint8_t *p = host_ptr(m, addr, &avail, &flash);
            Block *nb = p ? decode_block(m, addr, size, p, avail) : NULL;
            if (!nb) return NULL;
            block_free(b);
            m->table[h] = nb;
            return nb;
        }
        h = (h + 1) & (m->tcap - 1);
    }
    uint32_t avail; int flash = 0;
    const uint8_t *p = host_ptr(m, addr, &avail, &flash);
    if (!p) return NULL;
    Block *nb = decode_block(m, addr, size, p, avail);
    if (!nb) return NULL;
    m->table[h] = nb;
    m->tcount++;
    return nb;
}

/* ------------------------------------------------------------ the Unicorn hooks */
void block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    Model *m = (Model *)user_data;
    uint32_t addr = (uint32_t)address;
    m->uc = uc;
    int disc = addr != m->expect_next || m->prev_always;
    if (disc && m->cur) m->cycles += m->prev_taken;
    Block *b = lookup_block(m, addr, size);
    if (!b) { m->cur = NULL; m->expect_next = addr + size; m->prev_taken = 0; m->prev_always = 0; return; }
    m->cycles += fetch_cost(m, b, disc);
    m->cur = b;
    m->cur_base = m->cycles;
    m->cur_extra = 0;
    m->cur_insn_base = m->insns;
    m->cycles += b->cost + literal_cost(m, b);
    m->insns += b->ninsn;
    m->expect_next = addr + size;
    m->prev_taken = b->taken;
    m->prev_always = b->always_taken;
    if (!m->strict && b->nachk && !m->stop && m->reg_read) {
        for (uint32_t k = 0; k < b->nachk; k++) {
            uint32_t r[16] = {0}, ea, span;
            unsigned rn = b->achk_rn[k], i = b->achk_idx[k];
            m->reg_read(uc, m->reg_ids[rn], &r[rn]);
            if (ea_of(b->hp + b->off[i], r, &ea, &span) && (ea & 3)) {
                m->stop = STOP_FAULT; m->fault_kind = FAULT_UNALIGNED; m->fault_pc = addr + b->off[i]; m->fault_addr = ea;
                m->emu_stop(uc);
                return;
            }
        }
    }
    if (b->first_fp >= 0 && !m->fpu_enabled && m->fpu != FPU_NONE && !m->stop) {
        m->stop = STOP_FAULT; m->fault_kind = FAULT_NOCP;
        m->fault_pc = addr + b->off[b->first_fp]; m->fault_addr = m->fault_pc;
        m->emu_stop(uc);
        return;
    }
    if (b->bad >= 0 && !m->stop) {
        m->stop = STOP_FAULT; m->fault_kind = FAULT_INVALID_INSN;
        m->fault_pc = addr + b->off[b->bad]; m->fault_addr = m->fault_pc;
        m->emu_stop(uc);
        return;
    }
    if (((m->max_cycles && m->cycles >= m->max_cycles) || (m->max_insns && m->insns >= m->max_insns)) && !m->stop) {
        m->stop = STOP_BUDGET;
        m->emu_stop(uc);
    }
}

/* cycles before instruction i of the current block (dynamic stalls of later fetch lines and literal
 * loads excluded) */
uint64_t cycles_before(Model *m, int i, uint32_t pc)
{
    uint64_t v = m->cur_base + m->cur->prefix[i] + m->cur_extra;
    for (int k = 0; k < m->nlines; k++)
        if (m->line_addr[k] > pc) v -= m->line_cost[k];
    for (int k = 0; k < m->nlitc; k++)
        if ((int)m->lit_pos[k] < i) v += m->lit_cost[k];
    return v;
}

int find_index(Block *b, uint32_t pc)
{
    if (!b || pc < b->addr || pc >= b->addr + b->size) return -1;
    uint32_t off = pc - b->addr;
    int lo = 0, hi = (int)b->ninsn - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (b->off[mid] == off) return mid;
        if (b->off[mid] < off) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

void mem_hook(void *uc, int type, uint64_t address, int size, int64_t value, void *user_data)
{
    Model *m = (Model *)user_data;
    uint32_t a = (uint32_t)address;
    (void)value;
    if (size > 1 && (a & (uint32_t)(size - 1))) {
        int fault = 0;
        if (m->core == CORE_M0P) fault = 1;
        else if ((a & 3) && m->cur && m->cur->has_align) {
            uint32_t pc = 0;
            m->reg_read(uc, m->pc_regid, &pc);
            int i = find_index(m->cur, pc & ~1u);
            if (i >= 0 && m->cur->alignflag[i]) fault = 1;
        }
        if (fault && !m->stop) {
            uint32_t pc = 0;
            m->reg_read(uc, m->pc_regid, &pc);
            m->stop = STOP_FAULT; m->fault_kind = FAULT_UNALIGNED; m->fault_pc = pc & ~1u; m->fault_addr = a;
            m->emu_stop(uc);
        }
    }
    if (type == VB_UC_MEM_READ && a >= m->flash_base && a < m->flash_end) {   /* a data read from flash */
        uint32_t c = flash_data_read_cost(m, a);
        m->cycles += c;
        m->cur_extra += c;
    }
}

/* Cycles accumulated before the instruction at pc starts (DWT CYCCNT sampling point). */
uint64_t model_cycles_at(Model *m, uint32_t pc)
{
    pc &= ~1u;
    int i = find_index(m->cur, pc);
    if (i < 0) return m->cycles;
    return cycles_before(m, i, pc);
}

/* Rewind the counters so that execution ends just before (include=0) or just after (include=1)
 * the instruction at pc of the current block: used when a block is cut short (BKPT, faults).
 * Returns 0 when pc is not in the current block (nothing changed). */
int model_truncate_at(Model *m, uint32_t pc, int include)
{
    pc &= ~1u;
    int i = find_index(m->cur, pc);
    if (i < 0) return 0;
    int n = i + (include ? 1 : 0);
    m->cycles = cycles_before(m, n, include ? pc + 1 : pc);
    m->insns = m->cur_insn_base + (uint64_t)n;
    /* resuming at pc starts a new block: no refill penalty charged for it */
    m->expect_next = include ? 0xFFFFFFFFu : pc;
    m->prev_taken = 0; m->prev_always = 0;
    return 1;
}

/* benchmark helpers: hooks that do nothing (measure Unicorn's own hook dispatch cost) */
void empty_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{ (void)uc; (void)address; (void)size; (void)user_data; }
void empty_mem_hook(void *uc, int type, uint64_t address, int size, int64_t value, void *user_data)
{ (void)uc; (void)type; (void)address; (void)size; (void)value; (void)user_data; }
