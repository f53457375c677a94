/*
 * Blocks: the cache of decoded translation blocks and the native Unicorn hooks.
 *
 * - decode_block(): decodes a block once from the instruction bytes in the host buffers (decode.c),
 *   prices it (timing.c: static cost, per-instruction prefix costs, refill penalty, IT blocks for the
 *   outcome "first condition passes"), and records what the hooks need at run time: instructions invalid
 *   on this core, first FP instruction, alignment-sensitive accesses, the *dynamic sites* (an IT block
 *   whose cost depends on its condition, a divide whose cost depends on its operands) and, for fast mode,
 *   the block's *data program* (below).  Kept in an open-addressing hash table keyed by (address, size);
 *   re-decoded when the first bytes at the address change.
 * - block_hook (UC_HOOK_BLOCK): adds the previous block's refill penalty when control did not fall
 *   through (+1 when this block starts with a 32-bit instruction at a halfword offset), the fetch wait
 *   states (flash.c), the block's static cost; in fast mode replays the data program; raises the model's
 *   faults (unaligned multi-word access, NOCP, invalid instruction) and the budget stop.  A block with
 *   dynamic sites registers one native UC_HOOK_CODE hook per site (that address only), drops the
 *   translated code there and restarts: the hook writes the PC back to the block start, so the
 *   translation block is left before its first instruction and retranslated with the code hooks
 *   (nothing is counted for the aborted entry).
 * - code_hook (UC_HOOK_CODE on the dynamic sites only): the IT block's outcome from the flags (and, in
 *   fast mode, the data-side cost of its memory accesses that execute), the divide's early termination
 *   from its operands.
 * - mem_hook (UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, strict mode only): unaligned accesses that fault
 *   on M-profile, the data-side cost of every access (flash.c: data_access_cost), and the IT-state
 *   repair: with any memory hook installed, Unicorn 2.1.4 stores the IT state of an IT-block load/store
 *   into the CPU state before the access and never clears it when the IT block ends, so the block
 *   looked up next is translated as the tail of a phantom IT block (and then chained: every later pass
 *   runs it).  In a block with an IT-block access the hook clears that stale state at the access itself,
 *   before the translation block ends: no lookup ever sees it.  (Harmless: QEMU keeps the IT state of
 *   the running block in the translated code; the CPU copy matters only at block ends, where it is
 *   written when the block ends inside an IT block, and at exceptions, which restore it per
 *   instruction.)
 * - the data program (fast mode): the block's loads/stores with the address arithmetic they depend on
 *   (decode.c: sem_decode), replayed at block entry from the registers Unicorn hands the hook and from
 *   memory (a pointer loaded from the stack in the same block) -- every effective address is derived
 *   without a memory hook, and each access pays data_access_cost in program order, as in strict mode.
 *   Accesses whose address depends on something the program does not model (a conditional instruction,
 *   an unmodelled operation, an MMIO value) are counted in Model.unresolved and cost nothing extra.
 *   The register cache: the program also predicts the registers the block leaves behind (pointer
 *   increments, writebacks, SP, counters: the steps it models), so that the next block takes them from
 *   Model.rc instead of asking Unicorn (a uc_reg_read costs ~10 ns inside the emulation; a loop block
 *   then reads none).  Registers an unmodelled instruction writes are dropped from the cache (the
 *   block's clobber mask); the cache is emptied whenever execution starts (Model.stop reset by
 *   VirtualBoard.run), after a block the model did not decode, and by Model.reset.  Model.check_registers
 *   verifies every cached value against Unicorn (Model.stats(): reg_mismatches; tests).
 * - cycles_before() / model_truncate_at(): counters at an instruction inside the current block (DWT
 *   CYCCNT sampling, BKPT and faults that cut a block short).
 */
#define _POSIX_C_SOURCE 199309L  /* clock_gettime under -std=c11 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* zero counters, drop block and cache state (the code hooks registered in the engine stay) */
void model_reset(Model *m)
{
    table_clear(m);
    m->cycles = m->insns = 0;
    m->cur = NULL; m->cur_base = m->cur_extra = m->cur_insn_base = 0;
    m->expect_next = 0xFFFFFFFFu; m->prev_taken = 0; m->prev_always = 0; m->last_fetch_line = 0xFFFFFFFFu;
    m->stop = STOP_NONE; m->fault_kind = FAULT_NONE; m->fault_pc = m->fault_addr = 0;
    m->mmio_insn_base = UINT64_MAX; m->mmio_last = -1; m->acc_valid = 0;
    m->nlines = 0; m->nd = 0; m->rc_ok = 0;
    cache_clear(&m->icache); cache_clear(&m->dcache);
}

void model_release(Model *m)
{
    table_clear(m);
    free(m->table);
    m->table = NULL; m->tcap = 0;
    free(m->hooked); m->hooked = NULL; m->hcap = m->hcount = 0;
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

/* a value read from board memory (host buffers) for the data program; 0 when not backed by a buffer */
static int host_read(Model *m, uint32_t addr, uint32_t size, int sign, uint32_t *v)
{
    const MemRegion *rg = &m->regions[m->last_region];   /* the previous read's region: usually the stack's */
    if (m->last_region >= m->nregions || addr - rg->base >= rg->size || rg->size - (addr - rg->base) < size) {
        rg = NULL;
        for (int i = 0; i < m->nregions; i++)
            if (addr - m->regions[i].base < m->regions[i].size) { rg = &m->regions[i]; m->last_region = i; break; }
        if (!rg || rg->size - (addr - rg->base) < size) return 0;
    }
    const uint8_t *p = rg->ptr + (addr - rg->base);
    uint32_t x = 0;
    if (size == 4) memcpy(&x, p, 4);
    else if (size == 2) memcpy(&x, p, 2);
    else x = p[0];
    if (sign && size == 1) x = (uint32_t)(int32_t)(int8_t)x;
    else if (sign && size == 2) x = (uint32_t)(int32_t)(int16_t)x;
    *v = x;
    return 1;
}

/* ------------------------------------------------------------ addresses with a code hook */
static inline uint32_t hash32(uint32_t a) { a ^= a >> 16; a *= 0x7feb352d; a ^= a >> 15; a *= 0x846ca68b; a ^= a >> 16; return a; }

static int hooked_has(Model *m, uint32_t a)
{
    if (!m->hcap) return 0;
    for (uint32_t h = hash32(a) & (m->hcap - 1); m->hooked[h]; h = (h + 1) & (m->hcap - 1))
        if (m->hooked[h] == (a | 1)) return 1;
    return 0;
}

static void hooked_add(Model *m, uint32_t a)
{
    if (m->hcount * 2 >= m->hcap) {
        uint32_t ncap = m->hcap ? m->hcap * 2 : 256, *nt = calloc(ncap, 4);
        if (!nt) return;
        for (uint32_t i = 0; i < m->hcap; i++) {
            uint32_t v = m->hooked[i];
            if (!v) continue;
            uint32_t h = hash32(v & ~1u) & (ncap - 1);
            while (nt[h]) h = (h + 1) & (ncap - 1);
            nt[h] = v;
        }
        free(m->hooked); m->hooked = nt; m->hcap = ncap;
    }
    uint32_t h = hash32(a) & (m->hcap - 1);
    while (m->hooked[h]) { if (m->hooked[h] == (a | 1)) return; h = (h + 1) & (m->hcap - 1); }
    m->hooked[h] = a | 1;                     /* Thumb addresses are even: bit 0 marks a used slot */
    m->hcount++;
}

/* ------------------------------------------------------------ the block cache */
static void block_free(Block *b)
{
    if (!b) return;
    free(b->off); free(b->prefix); free(b->alignflag); free(b->dyn); free(b->steps); free(b);
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

static int is_memop(int cls)
{
    switch (cls) {
    case C_LD: case C_ST: case C_LDRD: case C_STRD: case C_LDM: case C_STM: case C_LDEX: case C_STEX:
    case C_LDPC: case C_POPPC: case C_TB: case C_FLD: case C_FST: case C_FLDM: case C_FSTM:
        return 1;
    default: return 0;
    }
}

static int v7m_core(int core) { return core == CORE_M3 || core == CORE_M4 || core == CORE_M33; }

/* ---------------------------------------------------------------- the data program (compile) */
enum { ST_ENTRY = 0, ST_KNOWN = 1, ST_UNKNOWN = 2 };

static uint16_t step_loads(const Step *t)
{
    if (!(t->flags & M_LOAD) || (t->flags & M_FP)) return 0;
    if (t->op == OP_MULTI) return t->regs & 0x7FFF;
    uint16_t d = 0;
    if (t->rd != 0xFF && t->rd != 15) d |= R(t->rd);
    if ((t->flags & M_DUAL) && t->ra != 0xFF) d |= R(t->ra);
    return d;
}

static uint16_t step_addr_regs(const Step *t)
{
    uint16_t a = 0;
    if (!(t->flags & M_ABS) && t->rn != 0xFF) a |= R(t->rn);
    if ((t->flags & M_REGOFF) && t->rm != 0xFF) a |= R(t->rm);
    return a;
}

static uint16_t alu_reads(const Step *t)
{
    uint16_t r = 0;
    if (t->rn != 0xFF) r |= R(t->rn);
    if (t->rm != 0xFF) r |= R(t->rm);
    if (t->ra != 0xFF) r |= R(t->ra);
    return r;
}

/* Does this access need timing (flash read, unaligned split) or an alignment check at run time?  Stack
 * accesses through SP with an offset that keeps the alignment are always SRAM and aligned. */
static uint16_t step_interest(const Model *m, const Step *t, uint32_t *lit_flash)
{
    uint16_t f = 0;
    int load = (t->flags & M_LOAD) != 0;
    if (t->flags & M_ABS) {                                   /* literal / PC-relative table */
        uint32_t a = t->imm;
        *lit_flash = a >= m->flash_base && a < m->flash_end;
        if (load && *lit_flash) f |= M_TIME;
        return f;
    }
    int sp_aligned = t->rn == 13 && !(t->flags & M_REGOFF) &&
                     (t->op == OP_MULTI || (t->imm & ((t->size >= 4 ? 4 : t->size) - 1)) == 0);
    if (sp_aligned) return 0;
    if (load) f |= M_TIME;
    else if (t->op == OP_MEM && t->size > 1 && t->size <= 4 && v7m_core(m->core)) f |= M_TIME;   /* split */
    if (t->flags & M_ALIGN) f |= M_ALIGN;
    return f;
}

/* Runs of at least 3 consecutive OP_MEMI on the same base register without writeback get a header
 * OP_GRP: imm = lowest offset, ra:rm = the bytes from it to the end of the highest access, amask = the
 * largest alignment mask when every offset is aligned to its member's (else 0xFF: never quiet), regs =
 * the registers the members load, nregs = members, flags M_LOAD when one of them reads.  At run time a
 * quiet group (its whole range outside flash, the base aligned) skips its members. */
static void group_steps(Block *b)
{
    uint32_t n = b->nsteps, extra = 0;
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        while (j < n && b->steps[j].op == OP_MEMI && !(b->steps[j].flags & M_WB) && b->steps[j].rn == b->steps[i].rn &&
               (j == i || !(b->steps[j - 1].regs & R(b->steps[i].rn))))
            j++;
        if (b->steps[i].op == OP_MEMI && j - i >= 3) { extra++; i = j; } else i = j > i ? j : i + 1;
    }
    if (!extra) return;
    Step *ns = malloc((n + extra) * sizeof(Step));
    if (!ns) return;
    uint32_t o = 0;
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        while (j < n && b->steps[j].op == OP_MEMI && !(b->steps[j].flags & M_WB) && b->steps[j].rn == b->steps[i].rn &&
               (j == i || !(b->steps[j - 1].regs & R(b->steps[i].rn))))
            j++;
        if (b->steps[i].op == OP_MEMI && j - i >= 3) {
            Step g;
            memset(&g, 0, sizeof g);
            g.op = OP_GRP; g.rn = b->steps[i].rn; g.rd = g.rm = g.ra = 0xFF; g.need = R(g.rn);
            g.nregs = (uint8_t)(j - i); g.idx = b->steps[i].idx;
            int32_t lo = INT32_MAX, hi = INT32_MIN;
            uint8_t am = 0;
            for (uint32_t k = i; k < j; k++) {
                const Step *t = &b->steps[k];
                int32_t off = (int32_t)t->imm;
                if (off < lo) lo = off;
                if (off + (int32_t)t->size > hi) hi = off + (int32_t)t->size;
                if (t->amask == 0xFF || ((uint32_t)off & t->amask)) am = 0xFF;
                else if (am != 0xFF && t->amask > am) am = t->amask;
                g.regs |= t->regs;
                if (t->flags & M_LOAD) g.flags |= M_LOAD;
            }
            g.imm = (uint32_t)lo; g.shift = 0;
            uint32_t span = (uint32_t)(hi - lo);
            g.ra = (uint8_t)(span >> 8); g.rm = (uint8_t)span;
            g.amask = am;
            ns[o++] = g;
            for (uint32_t k = i; k < j; k++) ns[o++] = b->steps[k];
            i = j;
        } else {
            ns[o++] = b->steps[i++];
        }
    }
    free(b->steps);
    b->steps = ns; b->nsteps = o;
}

/* Compile the data program of a block from its decoded instructions (ins[], in_it[]). */
static void compile_program(Model *m, Block *b, const uint8_t *p, uint32_t avail, const Insn *ins,
                            const uint8_t *in_it)
{
    uint32_t n = b->ninsn;
    Step *tmp = malloc((n + 1) * sizeof(Step));
    uint8_t *keep = calloc(n + 1, 1);
    uint16_t *xdst = calloc(n + 1, sizeof(uint16_t));     /* every register each instruction writes */
    if (!tmp || !keep || !xdst) { free(tmp); free(keep); free(xdst); b->clobber = 0x7FFF; return; }
    uint8_t st[16];
    memset(st, ST_ENTRY, sizeof st);
    st[15] = ST_UNKNOWN;
    uint32_t nt = 0;
    for (uint32_t i = 0; i < n; i++) {
        Step s;
        uint16_t wr, rdm;
        sem_decode(p + b->off[i], avail - b->off[i], b->addr + b->off[i], &s, &wr, &rdm);
        s.idx = (uint16_t)i;
        uint16_t dst = (uint16_t)((ins[i].dst | wr) & 0x7FFF);
        if (in_it[i] || s.op == OP_NONE || s.op == OP_UNKNOWN) {
            for (int k = 0; k < 15; k++) if (dst & R(k)) st[k] = ST_UNKNOWN;
            xdst[i] = dst;
            continue;
        }
        int inputs = 1;
        for (int k = 0; k < 16; k++) if ((rdm & R(k)) && st[k] == ST_UNKNOWN) inputs = 0;
        if (s.op == OP_MEM || s.op == OP_MULTI) {
            if (s.rd == 15) s.rd = 0xFF;                  /* LDR PC: the value is the branch target */
            uint32_t litf = 0;
            uint16_t f = step_interest(m, &s, &litf);
            if (!inputs) {
                if (f & M_TIME) b->unresolved++;
                for (int k = 0; k < 15; k++) if (dst & R(k)) st[k] = ST_UNKNOWN;
                xdst[i] = dst;
                continue;
            }
            s.flags = (uint16_t)((s.flags & ~M_ALIGN) | f);
            s.stale = 0;
            if (s.op == OP_MULTI && !(s.flags & M_LOAD))
                for (int k = 0; k < 15; k++) if ((s.regs & R(k)) && st[k] == ST_UNKNOWN) s.stale |= R(k);
            uint16_t known = step_loads(&s) | ((s.flags & M_WB) ? R(s.rn) : 0);
            for (int k = 0; k < 15; k++) if (dst & R(k)) st[k] = (known & R(k)) ? ST_KNOWN : ST_UNKNOWN;
        } else {
            if (!inputs || s.rd == 0xFF || s.rd == 15) {
                for (int k = 0; k < 15; k++) if (dst & R(k)) st[k] = ST_UNKNOWN;
                xdst[i] = dst;
                continue;
            }
            for (int k = 0; k < 15; k++) if (dst & R(k)) st[k] = (k == s.rd) ? ST_KNOWN : ST_UNKNOWN;
        }
        xdst[i] = dst;
        tmp[nt++] = s;
    }
    /* registers the block uses as addresses: the ones worth predicting for the next block (a loop's
     * pointers); other ALU results not needed in the block are not replayed (an optional step costs about
     * half a uc_reg_read) */
    uint16_t pointers = 0;
    for (uint32_t k = 0; k < nt; k++)
        if (tmp[k].op == OP_MEM || tmp[k].op == OP_MULTI) pointers |= step_addr_regs(&tmp[k]);
    /* liveness, backwards: keep the accesses of interest and what their addresses depend on */
    uint16_t needed = 0;
    int value_after = 0;
    for (int k = (int)nt - 1; k >= 0; k--) {
        Step *t = &tmp[k];
        int kp = 0;
        if (t->op == OP_MEM || t->op == OP_MULTI) {
            uint16_t ld = step_loads(t), wbm = (t->flags & M_WB) ? R(t->rn) : 0;
            if (t->flags & (M_TIME | M_ALIGN)) kp = 1;
            if (ld & needed) { kp = 1; t->flags |= M_VALUE; }
            if (wbm & needed) kp = 1;
            int store = !(t->flags & M_LOAD);
            if (store && value_after && !(t->flags & M_FP)) { kp = 1; t->flags |= M_LOG; }
            if (kp) {
                needed &= (uint16_t)~(ld | wbm);
                needed |= step_addr_regs(t);
                if ((t->flags & M_LOG) && t->op == OP_MEM && t->rd != 0xFF) needed |= R(t->rd);
                if ((t->flags & M_LOG) && t->op == OP_MULTI) needed |= t->regs & (uint16_t)~t->stale & 0x7FFF;
                if (t->flags & M_VALUE) value_after = 1;
            }
            else if (t->flags & M_WB) { kp = 1; t->flags |= M_OPT; }   /* writeback: for the cache */
        } else {
            uint16_t w = R(t->rd);
            if (w & needed) { kp = 1; needed &= (uint16_t)~w; needed |= alu_reads(t); }
            else if (w & pointers) { kp = 1; t->flags |= M_OPT; }        /* for the register cache */
        }
        keep[k] = (uint8_t)kp;
    }
    /* the kept steps; the registers the required ones need at entry; the exit registers not predicted */
    uint32_t nk = 0;
    for (uint32_t k = 0; k < nt; k++) if (keep[k]) nk++;
    b->steps = nk ? malloc(nk * sizeof(Step)) : NULL;
    uint16_t defined = 0, entry = 0, predicted = 0, written = 0;
    uint16_t dirty = 0;  /* registers an instruction without a kept step wrote: their cached value is stale */
    uint32_t ks = 0;
    for (uint32_t i = 0; i < n; i++) {
        while (ks < nt && tmp[ks].idx < i) ks++;
        uint16_t wrote = (uint16_t)(xdst[i] & 0x7FFF), computed = 0;
        for (; ks < nt && tmp[ks].idx == i; ks++) {
            Step *t = &tmp[ks];
            uint16_t reads, writes;
            if (t->op == OP_MEM || t->op == OP_MULTI) {
                reads = step_addr_regs(t);
                if ((t->flags & M_LOG) && t->op == OP_MEM && t->rd != 0xFF) reads |= R(t->rd);
                if ((t->flags & M_LOG) && t->op == OP_MULTI) reads |= t->regs & (uint16_t)~t->stale & 0x7FFF;
                writes = ((t->flags & M_VALUE) ? step_loads(t) : 0) | ((t->flags & M_WB) ? R(t->rn) : 0);
                wrote |= step_loads(t) | ((t->flags & M_WB) ? R(t->rn) : 0);
            } else { reads = alu_reads(t); writes = R(t->rd); wrote |= writes; }
            if (!keep[ks]) continue;
            if ((t->flags & M_OPT) && (reads & dirty)) continue;   /* its inputs are not known: not predicted */
            computed |= writes;
            if (!(t->flags & M_OPT)) { entry |= reads & (uint16_t)~defined; defined |= writes; }
            if (b->steps) {
                Step *o = &b->steps[b->nsteps++];
                *o = *t;
                o->need = (t->op == OP_MEM || t->op == OP_MULTI) ? step_addr_regs(t) : alu_reads(t);
                if ((t->op == OP_MEM) && !(t->flags & M_ADD)) { o->imm = (uint32_t)-o->imm; o->flags |= M_ADD; }
                if ((t->op == OP_MEM) && (t->flags & M_ABS) && !(t->flags & M_REGOFF)) o->flags &= (uint16_t)~M_PRE;
                if (t->op == OP_MEM) {
                    uint32_t alg = t->size >= 4 ? 4 : t->size;
                    int splits = v7m_core(m->core);
                    o->amask = (uint8_t)(((t->flags & M_ALIGN) || (splits && t->size <= 4)) ? alg - 1 : 0);
                    if (t->size > 4) o->amask = 0xFF;          /* doublewords: always the full path */
                    if (!(o->flags & (M_ABS | M_REGOFF | M_VALUE | M_LOG | M_OPT)) && t->size <= 4) {
                        o->op = OP_MEMI;
                        o->regs = step_loads(t);           /* OP_MEMI: the registers it loads */
                    }
                }
            }
        }
        /* registers this instruction writes: predicted from now on only when a kept step computes them */
        wrote &= 0x7FFF;
        written |= wrote;
        predicted = (uint16_t)((predicted & ~wrote) | (computed & wrote & 0x7FFF) | (computed & 0x7FFF));
        dirty = (uint16_t)((dirty & ~computed) | (wrote & ~computed));
    }
    b->entry_regs = entry & 0x7FFF;
    b->clobber = written & (uint16_t)~predicted;
    free(tmp); free(keep); free(xdst);
    group_steps(b);
}

/* ---------------------------------------------------------------- block decode */
static Block *decode_block(Model *m, uint32_t addr, uint32_t size, const uint8_t *p, uint32_t avail)
{
    Block *b = calloc(1, sizeof(Block));
    if (!b) return NULL;
    uint32_t cap = size / 2 + 1;
    Insn *ins = malloc(cap * sizeof(Insn));
    uint8_t *in_it = calloc(cap, 1), *pass_a = calloc(cap, 1);
    b->off = malloc(cap * sizeof(uint16_t));
    b->prefix = malloc((cap + 1) * sizeof(uint32_t));
    b->alignflag = malloc(cap);
    b->dyn = malloc(cap * sizeof(DynSite));
    if (!ins || !in_it || !pass_a || !b->off || !b->prefix || !b->alignflag || !b->dyn) {
        free(ins); free(in_it); free(pass_a); block_free(b); return NULL;
    }
    b->hp = p; b->imemo = UINT64_MAX;
    b->addr = addr; b->size = size; b->bad = -1; b->first_fp = -1;
    b->check = 0;
    memcpy(&b->check, p, size >= 4 && avail >= 4 ? 4 : 2);
    /* pass 1: decode */
    uint32_t pos = 0, n = 0;
    while (pos < size && pos + 2 <= avail && n < cap) {
        decode(p + pos, avail - pos, &ins[n]);
        b->off[n] = (uint16_t)pos;
        pos += ins[n].len;
        n++;
    }
    b->ninsn = n;
    int v7 = v7m_core(m->core);
    /* pass 2: IT blocks (slot conditions, outcome A = "firstcond passes") */
    for (uint32_t i = 0; i < n; i++) {
        if (ins[i].cls != C_IT) continue;
        unsigned h = p[b->off[i]], first = (h >> 4) & 15, mask = h & 15, tz = 0;
        while (tz < 4 && !(mask & (1u << tz))) tz++;
        unsigned slots = 4 - tz;
        for (unsigned k = 0; k < slots && i + 1 + k < n; k++) {
            unsigned bit = k == 0 ? (first & 1) : (mask >> (4 - k)) & 1;
            in_it[i + 1 + k] = (uint8_t)(first == 14 ? 0 : 1 + k);   /* slot number (1-based) */
            pass_a[i + 1 + k] = (uint8_t)(first == 14 || bit == (first & 1));
        }
    }
    /* pass 3: timing */
    Pipeline pl;
    pipeline_start(&pl);
    uint32_t cost = 0;
    for (uint32_t i = 0; i < n; i++) {
        Insn *cur = &ins[i];
        uint32_t taken, k;
        if (v7 && cur->cls == C_IT && p[b->off[i]] >> 4 != 14) {
            /* cost of the IT block and the instruction after it for both outcomes */
            unsigned h = p[b->off[i]], first = (h >> 4) & 15;
            k = insn_cycles(m->core, &pl, cur, &taken);
            Pipeline pa = pl, pb = pl;
            int8_t dd[5] = {0, 0, 0, 0, 0};
            int diff = 0;
            uint8_t mem = 0, slots = 0;
            for (uint32_t j = i + 1; j < n && j <= i + 5; j++) {
                uint32_t t2;
                int slot = in_it[j] && j <= i + 4;
                int32_t ca = (int32_t)insn_cycles_cond(m->core, &pa, &ins[j], slot ? pass_a[j] : 1, &t2);
                int32_t cb = (int32_t)insn_cycles_cond(m->core, &pb, &ins[j], slot ? !pass_a[j] : 1, &t2);
                dd[j - i - 1] = (int8_t)(cb - ca);
                if (cb != ca) diff = 1;
                if (slot) { slots++; if (is_memop(ins[j].cls)) mem |= (uint8_t)(1u << (j - i - 1)); }
                if (!slot) break;
            }
            if (diff || mem) {
                DynSite *d = &b->dyn[b->ndyn++];
                memset(d, 0, sizeof *d);
                d->idx = (uint16_t)i; d->kind = DYN_IT; d->cond = (uint8_t)first;
                memcpy(d->diff, dd, sizeof dd); d->slots = slots; d->mem = mem;
            }
        } else if (cur->cls == C_IT && p[b->off[i]] >> 4 != 14) {
            /* other cores: IT-block instructions are priced as executed; a site only for the data side of
             * the IT block's memory accesses (fast mode) */
            k = insn_cycles(m->core, &pl, cur, &taken);
            uint8_t mem = 0, slots = 0;
            for (uint32_t j = i + 1; j < n && j <= i + 4 && in_it[j]; j++) {
                slots++;
                if (is_memop(ins[j].cls)) mem |= (uint8_t)(1u << (j - i - 1));
            }
            if (mem) {
                DynSite *d = &b->dyn[b->ndyn++];
                memset(d, 0, sizeof *d);
                d->idx = (uint16_t)i; d->kind = DYN_IT; d->cond = p[b->off[i]] >> 4; d->slots = slots; d->mem = mem;
            }
        } else {
            k = (v7 && in_it[i]) ? insn_cycles_cond(m->core, &pl, cur, pass_a[i], &taken)
                                 : insn_cycles(m->core, &pl, cur, &taken);
        }
        if (v7 && cur->cls == C_DIV) {
            const uint8_t *q = p + b->off[i];
            unsigned h1 = q[0] | (q[1] << 8), h2 = q[2] | (q[3] << 8);
            DynSite *d = &b->dyn[b->ndyn++];
            memset(d, 0, sizeof *d);
            d->idx = (uint16_t)i; d->kind = DYN_DIV; d->sdiv = ((h1 >> 4) & 7) == 1;
            d->rn = (uint8_t)(h1 & 15); d->rm = (uint8_t)(h2 & 15);
            d->cond = 14;
            if (in_it[i]) {                              /* its own condition (slot of the IT before it) */
                for (int j = (int)i - 1; j >= 0 && j >= (int)i - 4; j--)
                    if (ins[j].cls == C_IT) {
                        unsigned hh = p[b->off[j]], first = (hh >> 4) & 15;
                        d->cond = (uint8_t)(pass_a[i] == 1 ? first : (first ^ 1));
                        break;
                    }
            }
        }
        if (is_fp(cur->cls) && b->first_fp < 0) b->first_fp = (int32_t)i;
        if (b->bad < 0 && invalid_on_core(m, cur)) b->bad = (int32_t)i;
        b->prefix[i] = cost;
        b->alignflag[i] = cur->align;
        if (cur->align && cur->addr != R(13)) b->has_align = 1;
        if (in_it[i] && is_memop(cur->cls)) b->it_mem = 1;
        cost += k;
        if (is_branch(cur->cls)) { b->taken = taken; b->ends_branch = 1; b->always_taken = !cur->cond && !in_it[i]; }
        else { b->taken = 0; b->ends_branch = 0; b->always_taken = 0; }
    }
    b->prefix[n] = cost;
    b->cost = cost;
    b->first_wide_odd = (uint8_t)(v7 && n && ins[0].len == 4 && (addr & 2));
    for (uint32_t i = 0; i < b->ndyn; i++)
        if (!hooked_has(m, addr + b->off[b->dyn[i].idx])) b->hooks_pending = 1;
    if (!m->strict) compile_program(m, b, p, avail, ins, in_it);
    free(ins); free(in_it); free(pass_a);
    return b;
}

Block *lookup_block(Model *m, uint32_t addr, uint32_t size)
{
    if (m->tcap == 0 || m->tcount * 2 >= m->tcap) if (table_grow(m)) return NULL;
    uint32_t h = hash32(addr ^ (size << 20)) & (m->tcap - 1);
    while (m->table[h]) {
        Block *b = m->table[h];
        if (b->addr == addr && b->size == size) {
            uint32_t check = b->hp[0] | ((uint32_t)b->hp[1] << 8);
            if (size >= 4) check |= ((uint32_t)b->hp[2] << 16) | ((uint32_t)b->hp[3] << 24);
            if (b->check == check) return b;
            /* code at this address changed: re-decode in place */
            uint32_t avail; int flash = 0;
            const uint8_t *p = host_ptr(m, addr, &avail, &flash);
            Block *nb = p ? decode_block(m, addr, size, p, avail) : NULL;
            if (!nb) return NULL;
            if (m->cur == b) m->cur = NULL;
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

/* ------------------------------------------------------------ data program (run) */
static inline uint32_t shifted(uint32_t v, unsigned type, unsigned n)
{
    if (!n) return v;
    switch (type) {
    case 0: return n >= 32 ? 0 : v << n;
    case 1: return n >= 32 ? 0 : v >> n;
    default: return n >= 32 ? (uint32_t)((int32_t)v >> 31) : (uint32_t)((int32_t)v >> n);
    }
}

/* a stall of c cycles at instruction idx of the current block: counted in m->cycles now, and by
 * cycles_before() only for the instructions after idx */
static inline void stall(Model *m, uint32_t idx, int32_t c)
{
    if (!c) return;
    m->cycles += (uint64_t)(int64_t)c;
    if (m->nd < 256) { m->dpos[m->nd] = idx; m->dcost[m->nd] = c; m->nd++; }
}

typedef struct { uint32_t a, v; uint8_t size, ok; } StoreLog;

/* a value the program loads: from the stores of the block replayed so far when they overlap, else from
 * board memory */
/* the stores of one block a later load of the block may read back (beyond: its loads are not predicted) */
#define STORE_LOG 64

static int program_load(Model *m, const StoreLog *log, int nlog, uint32_t a, uint32_t size, int sign, uint32_t *v)
{
    for (int k = nlog - 1; k >= 0; k--) {
        const StoreLog *s = &log[k];
        if (a < s->a + s->size && s->a < a + size) {
            if (s->a != a || s->size != size || !s->ok) return 0;
            uint32_t x = s->v;
            if (size == 1) x = sign ? (uint32_t)(int32_t)(int8_t)x : (x & 0xFF);
            else if (size == 2) x = sign ? (uint32_t)(int32_t)(int16_t)x : (x & 0xFFFF);
            *v = x;
            return 1;
        }
    }
    return host_read(m, a, size, sign, v);
}

static void raise_unaligned(Model *m, void *uc, Block *b, uint32_t idx, uint32_t ea)
{
    if (m->stop) return;
    m->stop = STOP_FAULT; m->fault_kind = FAULT_UNALIGNED; m->fault_pc = b->addr + b->off[idx]; m->fault_addr = ea;
    m->emu_stop(uc);
}

/* the data-side cost of one access: inline for the common case (not a flash read, aligned) */
static inline uint32_t access_cost(Model *m, uint32_t a, uint32_t size, int load)
{
    if ((!load || a - m->flash_base >= m->flash_end - m->flash_base) && !(a & ((size >= 4 ? 4 : size) - 1)))
        return 0;
    return data_access_cost(m, a, size, load);
}

/* Replay the block's data program from the registers at block entry (fast mode): the registers come from
 * the register cache, the others from Unicorn; the cache holds the block's exit values afterwards.
 * Returns 0, or -1 when it raised a fault. */
static int run_program(Model *m, void *uc, Block *b)
{
    uint32_t *restrict r = m->rc;
    uint16_t ok = m->rc_ok;
    if (m->rc_check) {
        for (uint16_t c = b->entry_regs & ok; c; c &= (uint16_t)(c - 1)) {
            int k = __builtin_ctz(c);
            uint32_t v = 0;
            m->reg_read(uc, m->reg_ids[k], &v);
            if (v != r[k]) { m->rc_mismatch++; r[k] = v; }
        }
    }
    if (b->entry_regs & ok) m->rc_hits++;
    for (uint16_t need = b->entry_regs & (uint16_t)~ok; need; need &= (uint16_t)(need - 1)) {
        int k = __builtin_ctz(need);
        r[k] = 0;
        m->reg_read(uc, m->reg_ids[k], &r[k]);
        m->rc_reads++;
    }
    ok |= b->entry_regs;
    StoreLog log[STORE_LOG];
    int nlog = 0, lost = 0;  /* lost: a store of the block could not be logged, memory may differ from the host's */
    m->unresolved += b->unresolved;
    const uint32_t fb = m->flash_base, fsz = m->flash_end - m->flash_base;
    for (uint32_t i = 0; i < b->nsteps; i++) {
        const Step *t = &b->steps[i];
        uint16_t need = t->need;
        switch (t->op) {
        case OP_GRP: {                           /* a group of OP_MEMI on one base: quiet -> skip them */
            if (!(ok & need) || t->amask == 0xFF) continue;
            uint32_t lo = r[t->rn] + t->imm, span = ((uint32_t)t->ra << 8) | t->rm;
            if ((r[t->rn] & t->amask) || lo + span < lo) continue;
            if ((t->flags & M_LOAD) && lo < fb + fsz && lo + span > fb) continue;   /* touches flash */
            ok &= (uint16_t)~t->regs;
            i += t->nregs;
            continue;
        }
        case OP_MEMI: {                          /* base + immediate: the common case, kept short */
            uint32_t flags = t->flags;
            if (!(ok & need)) {
                if (flags & M_TIME) m->unresolved++;
                ok &= (uint16_t)~(t->regs | ((flags & M_WB) ? R(t->rn) : 0));
                continue;
            }
            uint32_t base = r[t->rn], moved = base + t->imm, ea = (flags & M_PRE) ? moved : base;
            if (__builtin_expect((ea & t->amask) || ((flags & M_LOAD) && ea - fb < fsz), 0)) {
                if ((flags & M_ALIGN) && (ea & ((t->size >= 4 ? 4u : t->size) - 1))) {
                    raise_unaligned(m, uc, b, t->idx, ea); m->rc_ok = 0; return -1;
                }
                if (flags & M_TIME) stall(m, t->idx, (int32_t)data_access_cost(m, ea, t->size, flags & M_LOAD));
            }
            ok &= (uint16_t)~t->regs;
            if (flags & M_WB) { r[t->rn] = moved; ok |= (uint16_t)(1u << t->rn); }
            continue;
        }
        case OP_MEM: {
            if ((ok & need) != need) {
                if ((t->flags & M_TIME) && !(t->flags & M_OPT)) m->unresolved++;
                ok &= (uint16_t)~(step_loads(t) | ((t->flags & M_WB) ? R(t->rn) : 0));
                continue;
            }
            uint32_t flags = t->flags;
            uint32_t base = (flags & M_ABS) ? t->imm : r[t->rn];
            uint32_t moved = (flags & M_REGOFF) ? base + (r[t->rm] << t->shift) : base + t->imm;
            uint32_t ea = (flags & M_PRE) ? moved : base;
            if ((flags & (M_TIME | M_ALIGN)) &&
                __builtin_expect((ea & t->amask) || ((flags & M_LOAD) && ea - fb < fsz), 0)) {
                /* a flash read or an unaligned / wide access: the full rule (flash.c) */
                uint32_t alg = t->size >= 4 ? 4 : t->size;
                if ((flags & M_ALIGN) && (ea & (alg - 1))) { raise_unaligned(m, uc, b, t->idx, ea); m->rc_ok = 0; return -1; }
                if (flags & M_TIME) stall(m, t->idx, (int32_t)data_access_cost(m, ea, t->size, flags & M_LOAD));
            }
            if (flags & M_VALUE) {
                uint32_t sz = t->size > 4 ? 4 : t->size;
                if (t->rd != 0xFF) {
                    if (!lost && program_load(m, log, nlog, ea, sz, (flags & M_SIGNED) != 0, &r[t->rd])) ok |= R(t->rd);
                    else ok &= (uint16_t)~R(t->rd);
                }
                if ((flags & M_DUAL) && t->ra != 0xFF) {
                    if (!lost && program_load(m, log, nlog, ea + 4, 4, 0, &r[t->ra])) ok |= R(t->ra);
                    else ok &= (uint16_t)~R(t->ra);
                }
            }
            if (flags & M_LOG) {
                if (nlog < STORE_LOG) {
                    StoreLog *sl = &log[nlog++];
                    sl->a = ea; sl->size = (uint8_t)(t->size > 4 ? 8 : t->size);
                    sl->ok = t->rd != 0xFF && (ok & R(t->rd)) && t->size <= 4;
                    sl->v = sl->ok ? r[t->rd] : 0;
                } else {
                    lost = 1;
                }
            }
            if (flags & M_WB) { r[t->rn] = moved; ok |= (uint16_t)(1u << t->rn); }
            continue;
        }
        case OP_MULTI: {
            if ((ok & need) != need) {
                if ((t->flags & M_TIME) && !(t->flags & M_OPT)) m->unresolved++;
                ok &= (uint16_t)~(step_loads(t) | ((t->flags & M_WB) ? R(t->rn) : 0));
                continue;
            }
            uint32_t base = (t->flags & M_ABS) ? t->imm : r[t->rn];
            int load = (t->flags & M_LOAD) != 0;
            {
                uint32_t bytes = 4u * t->nregs, start = (t->flags & M_DB) ? base - bytes : base;
                if ((t->flags & M_ALIGN) && (start & 3)) { raise_unaligned(m, uc, b, t->idx, start); m->rc_ok = 0; return -1; }
                if (t->flags & M_TIME) {
                    uint32_t c = 0;
                    for (uint32_t w = 0; w < t->nregs; w++) c += access_cost(m, start + 4 * w, 4, load);
                    stall(m, t->idx, (int32_t)c);
                }
                if (t->flags & M_VALUE) {
                    uint32_t a = start;
                    for (int k = 0; k < 16; k++) {
                        if (!(t->regs & R(k))) continue;
                        if (k < 15) {
                            if (!lost && program_load(m, log, nlog, a, 4, 0, &r[k])) ok |= R(k);
                            else ok &= (uint16_t)~R(k);
                        }
                        a += 4;
                    }
                } else if (t->flags & M_LOG) {
                    /* an STM's words, for the loads after it in the block that read them back (a copy to the
                     * stack, then a reload of a slot); a word whose value is unknown is not predicted */
                    uint32_t a = start;
                    for (int k = 0; k < 16; k++) {
                        if (!(t->regs & R(k))) continue;
                        if (nlog < STORE_LOG) {
                            StoreLog *sl = &log[nlog++];
                            sl->a = a; sl->size = 4;
                            sl->ok = k < 15 && (ok & R(k)) && !(t->stale & R(k));
                            sl->v = sl->ok ? r[k] : 0;
                        } else {
                            lost = 1;
                        }
                        a += 4;
                    }
                }
                if (t->flags & M_WB) { r[t->rn] = (t->flags & M_DB) ? base - bytes : base + bytes; ok |= R(t->rn); }
                continue;
            }
            continue;
        }
        default:
            if ((ok & need) != need) { ok &= (uint16_t)~R(t->rd); continue; }
            break;
        }
        uint32_t v = 0, x = t->rm != 0xFF ? shifted(r[t->rm], t->stype, t->shift) : 0;
        switch (t->op) {
        case OP_MOVI: v = t->imm; break;
        case OP_MOV: v = x; break;
        case OP_ADDI: v = r[t->rn] + t->imm; break;
        case OP_ADD: v = r[t->rn] + x; break;
        case OP_SUB: v = r[t->rn] - x; break;
        case OP_RSBI: v = t->imm - r[t->rn]; break;
        case OP_ANDI: v = r[t->rn] & t->imm; break;
        case OP_ORRI: v = r[t->rn] | t->imm; break;
        case OP_EORI: v = r[t->rn] ^ t->imm; break;
        case OP_AND: v = r[t->rn] & x; break;
        case OP_ORR: v = r[t->rn] | x; break;
        case OP_EOR: v = r[t->rn] ^ x; break;
        case OP_BIC: v = r[t->rn] & ~x; break;
        case OP_MUL: v = r[t->rn] * r[t->rm]; break;
        case OP_MLA: v = r[t->rn] * r[t->rm] + r[t->ra]; break;
        case OP_MOVT: v = (r[t->rn] & 0xFFFF) | (t->imm << 16); break;
        case OP_EXT: {
            uint32_t e = r[t->rm];
            switch (t->stype) {
            case 0: e &= 0xFF; break;
            case 1: e &= 0xFFFF; break;
            case 2: e = (uint32_t)(int32_t)(int8_t)e; break;
            default: e = (uint32_t)(int32_t)(int16_t)e; break;
            }
            v = e + (t->ra != 0xFF ? r[t->ra] : 0);
            break;
        }
        default: ok &= (uint16_t)~R(t->rd); continue;
        }
        r[t->rd] = v;
        ok |= R(t->rd);
    }
    m->rc_ok = ok & (uint16_t)~b->clobber & 0x7FFF;
    return 0;
}

/* ------------------------------------------------------------ the Unicorn hooks */
/* register the code hooks of b's dynamic sites; 1 when the block must be retranslated (restart) */
static int register_hooks(Model *m, void *uc, Block *b)
{
    b->hooks_pending = 0;
    if (!m->hook_add || !m->uc_ctl || !m->reg_write) return 0;
    int added = 0;
    for (uint32_t i = 0; i < b->ndyn; i++) {
        uint32_t a = b->addr + b->off[b->dyn[i].idx];
        if (hooked_has(m, a)) continue;
        size_t h = 0;
        m->hook_add(uc, &h, m->code_hook_type, (void *)code_hook, m, (uint64_t)a, (uint64_t)a);
        hooked_add(m, a);
        added = 1;
    }
    if (added) m->uc_ctl(uc, m->ctl_remove_cache, (uint64_t)b->addr, (uint64_t)b->addr + b->size);
    return added;
}

static void restart_block(Model *m, void *uc, uint32_t addr)
{
    uint32_t pc = addr | 1;
    m->reg_write(uc, m->pc_regid, &pc);
}

/* The wall-clock limit of a run is read here, every DEADLINE_CHECK_BLOCKS blocks (a vDSO clock read, tens
 * of ns), rather than by Unicorn's timeout thread: that thread wakes every few microseconds for the whole
 * run and costs a fifth of a core per running board. */
#define DEADLINE_CHECK_BLOCKS 4096u
static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    Model *m = (Model *)user_data;
    uint32_t addr = (uint32_t)address;
    m->uc = uc;
    if (m->deadline_ns && ++m->deadline_tick >= DEADLINE_CHECK_BLOCKS) {
        m->deadline_tick = 0;
        if (!m->stop && monotonic_ns() >= m->deadline_ns) {
            m->stop = STOP_DEADLINE;
            m->emu_stop(uc);
        }
    }
    Block *b = lookup_block(m, addr, size);
    if (!b) m->rc_ok = 0;
    if (b && b->hooks_pending && register_hooks(m, uc, b)) {
        restart_block(m, uc, addr);
        m->hook_restarts++;
        return;
    }
    int disc = addr != m->expect_next || m->prev_always;
    if (disc && m->cur) m->cycles += m->prev_taken + (m->prev_taken && b && b->first_wide_odd ? 1u : 0u);
    if (!b) { m->cur = NULL; m->expect_next = addr + size; m->prev_taken = 0; m->prev_always = 0; return; }
    m->cycles += fetch_cost(m, b, disc);
    m->cur = b;
    m->cur_base = m->cycles;
    m->cur_extra = 0;
    m->cur_insn_base = m->insns;
    m->cycles += b->cost;
    m->insns += b->ninsn;
    m->expect_next = addr + size;
    m->prev_taken = b->taken;
    m->prev_always = b->always_taken;
    m->nd = 0;
    if (!m->strict) {
        if (b->nsteps && m->reg_read && !m->stop) { if (run_program(m, uc, b)) return; }
        else m->rc_ok &= (uint16_t)~b->clobber;
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

static inline void add_extra(Model *m, int64_t c)
{
    m->cycles += (uint64_t)c;
    m->cur_extra += (uint64_t)c;
}

/* Native UC_HOOK_CODE callback, registered on the dynamic sites only (before they execute). */
void code_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    Model *m = (Model *)user_data;
    Block *b = m->cur;
    (void)size;
    uint32_t pc = (uint32_t)address;
    int i = find_index(b, pc);
    if (i < 0) return;
    m->dyn_calls++;
    for (uint32_t k = 0; k < b->ndyn; k++) {
        DynSite *d = &b->dyn[k];
        if (d->idx != (uint16_t)i) continue;
        uint32_t cpsr = 0;
        if (d->kind == DYN_IT || d->cond != 14) m->reg_read(uc, m->cpsr_regid, &cpsr);
        if (d->kind == DYN_IT) {
            int first = cond_passes(d->cond, cpsr);
            if (!first)
                for (int j = 0; j < 5; j++) stall(m, (uint32_t)i + 1 + (uint32_t)j, d->diff[j]);
            if (d->mem && !m->strict) {
                /* fast mode: the data-side cost of the IT block's accesses that execute (addresses from
                 * the registers now: the IT block is about to run) */
                for (unsigned s = 0; s < d->slots; s++) {
                    if (!(d->mem & (1u << s))) continue;
                    uint32_t j = (uint32_t)i + 1 + s;
                    if (j >= b->ninsn) break;
                    const uint8_t *q = b->hp + b->off[j];
                    unsigned h = b->hp[b->off[i]], mask = h & 15;
                    unsigned bit = s == 0 ? (d->cond & 1) : (mask >> (4 - s)) & 1;
                    int passes = (bit == (d->cond & 1)) ? first : !first;
                    if (!passes) continue;
                    Step st;
                    uint16_t wr, rdm;
                    sem_decode(q, b->size - b->off[j], b->addr + b->off[j], &st, &wr, &rdm);
                    if (st.op != OP_MEM && st.op != OP_MULTI) continue;
                    uint32_t r[16] = {0}, litf = 0;
                    if (!(step_interest(m, &st, &litf) & M_TIME)) continue;
                    uint16_t need = step_addr_regs(&st);
                    for (int g = 0; g < 15; g++) if (need & R(g)) m->reg_read(uc, m->reg_ids[g], &r[g]);
                    uint32_t base = (st.flags & M_ABS) ? st.imm : r[st.rn], c = 0;
                    int load = (st.flags & M_LOAD) != 0;
                    if (st.op == OP_MULTI) {
                        uint32_t start = (st.flags & M_DB) ? base - 4u * st.nregs : base;
                        for (uint32_t w = 0; w < st.nregs; w++) c += data_access_cost(m, start + 4 * w, 4, load);
                    } else {
                        uint32_t off = (st.flags & M_REGOFF) ? r[st.rm] << st.shift : (st.flags & M_ABS) ? 0 : st.imm;
                        uint32_t moved = (st.flags & M_ADD) ? base + off : base - off;
                        c = data_access_cost(m, (st.flags & M_PRE) ? moved : base, st.size, load);
                    }
                    stall(m, j, (int32_t)c);
                }
            }
        } else if (d->kind == DYN_DIV) {
            if (d->cond != 14 && !cond_passes(d->cond, cpsr)) continue;
            uint32_t n = 0, dv = 0;
            m->reg_read(uc, m->reg_ids[d->rn], &n);
            m->reg_read(uc, m->reg_ids[d->rm], &dv);
            add_extra(m, (int64_t)div_cycles(m->core, d->sdiv, n, dv) - DIV_MIN);
        }
    }
}

/* cycles before instruction i of the current block (dynamic stalls of later fetch lines and of later
 * data accesses charged at block entry excluded) */
uint64_t cycles_before(Model *m, int i, uint32_t pc)
{
    uint64_t v = m->cur_base + m->cur->prefix[i] + m->cur_extra;
    for (int k = 0; k < m->nlines; k++)
        if (m->line_addr[k] > pc) v -= m->line_cost[k];
    for (int k = 0; k < m->nd; k++)
        if ((int)m->dpos[k] < i) v += (uint64_t)(int64_t)m->dcost[k];
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
    uint32_t c = data_access_cost(m, a, (uint32_t)size, type == VB_UC_MEM_READ);
    if (c) { m->cycles += c; m->cur_extra += c; }
    if (m->cur && m->cur->it_mem && m->reg_write) {         /* the IT-state repair (see the top) */
        uint32_t cpsr = 0;
        if (!m->reg_read(uc, m->cpsr_regid, &cpsr) && (cpsr & VB_CPSR_IT_MASK)) {
            cpsr &= ~VB_CPSR_IT_MASK;
            m->reg_write(uc, m->cpsr_regid, &cpsr);
            m->it_resyncs++;
        }
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
