/*
 * Private peripheral bus, native part: the PPB MMIO read callback answers DWT CYCCNT (read once per
 * received byte by the firmware's UART loop) without Python; every other PPB read goes to the
 * Python model (VirtualBoard._ppb_read, registered as ppb_fallback), and all PPB writes are Python.
 *
 * CYCCNT is exact to the reading instruction: the cycles accumulated before it starts.  Strict mode
 * finds the instruction from the PC (Unicorn synchronises it before memory accesses when a memory
 * hook exists); fast mode matches the access address against the effective addresses of the current
 * block's loads/stores (attribute()), since the PC is stale there.  The match starts after the access
 * matched last, so *every* PPB access must advance it: reads (CYCCNT natively, the others before they
 * go to the Python model) and writes (ppb_mmio_write, native too, then the Python model) each note
 * the instruction they belong to once, and the Python model reuses that note (now_at_access) instead
 * of matching again -- a store to DWT_CTRL is never credited to an earlier load of the same register.
 */
#include "cyclemodel.h"

#define PPB_BASE 0xE0000000u
#define DWT_CYCCNT 0xE0001004u

/* Cycles before the instruction of the current block that performs the memory access at addr
 * (DWT CYCCNT reads/writes in fast mode): the first load/store at or after the previously matched
 * one whose effective address, computed from the current registers, covers addr. */
static uint64_t attribute(Model *m, uint32_t addr)
{
    Block *b = m->cur;
    if (!b || !m->reg_read || !m->uc) return m->cycles;
    uint32_t r[16];
    for (int k = 0; k < 16; k++) { r[k] = 0; m->reg_read(m->uc, m->reg_ids[k], &r[k]); }
    int same = m->mmio_insn_base == m->cur_insn_base;
    int start = same ? m->mmio_last + 1 : 0;
    int found = -1, first_mem = -1;
    for (int pass = 0; pass < 2 && found < 0; pass++) {
        int from = pass == 0 ? start : (same ? m->mmio_last : -1);
        if (from < 0) break;
        for (int i = from; i < (int)b->ninsn; i++) {
            uint32_t ea, span;
            if (!ea_of(b->hp + b->off[i], r, &ea, &span)) continue;
            if (first_mem < 0) first_mem = i;
            if (addr - ea < (span ? span : 1)) { found = i; break; }
            if (pass == 1) break;
        }
    }
    if (found < 0) found = first_mem >= 0 ? first_mem : (start < (int)b->ninsn ? start : (int)b->ninsn - 1);
    if (found < 0) return m->cycles;
    m->mmio_insn_base = m->cur_insn_base;
    m->mmio_last = found;
    return cycles_before(m, found, b->addr + b->off[found]);
}

/* Modelled cycles before the instruction doing the current PPB access at addr (as
 * VirtualBoard._now): strict mode reads the PC (synchronised by the mem hook), fast mode matches the
 * access against the block's loads/stores and notes the result for the Python model. */
static uint64_t now_ppb(Model *m, void *uc, uint32_t addr)
{
    if (m->strict) {
        uint32_t pc = 0;
        if (m->reg_read) m->reg_read(uc, m->pc_regid, &pc);
        return model_cycles_at(m, pc);
    }
    uint64_t v = attribute(m, addr);
    m->acc_valid = 1; m->acc_addr = addr; m->acc_base = m->cur_insn_base; m->acc_cycles = v;
    return v;
}

uint64_t mmio_now(Model *m, void *uc, uint32_t addr, uint64_t *insns)
{
    uint64_t v = now_ppb(m, uc, addr);
    int i = -1;
    if (m->strict) {
        uint32_t pc = 0;
        if (m->reg_read) m->reg_read(uc, m->pc_regid, &pc);
        i = find_index(m->cur, pc & ~1u);
    } else if (m->cur && m->mmio_insn_base == m->cur_insn_base) {
        i = m->mmio_last;
    }
    *insns = i >= 0 ? m->cur_insn_base + (uint64_t)i : m->insns;
    return v;
}

/* The Python model's view (Model.cycles_at_access): the note of the access being served when it is
 * this one, else a fresh match. */
uint64_t now_at_access(Model *m, uint32_t addr)
{
    if (m->acc_valid && m->acc_addr == addr && m->acc_base == m->cur_insn_base) return m->acc_cycles;
    return attribute(m, addr);
}

/* Native read callback of the PPB MMIO page: DWT CYCCNT here (it is read in the firmware's UART
 * receive loop, once per byte), everything else through the Python model (ppb_fallback). */
uint64_t ppb_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data)
{
    Model *m = (Model *)user_data;
    uint32_t addr = PPB_BASE + (uint32_t)offset;
    if ((addr & ~3u) == DWT_CYCCNT) {
        uint64_t now = now_ppb(m, uc, addr);
        uint64_t v = m->cyc_on ? (m->cyc_frozen + now - m->cyc_start) : m->cyc_frozen;
        v &= 0xFFFFFFFFu;
        uint64_t mask = size >= 8 ? ~(uint64_t)0 : (((uint64_t)1 << (8 * size)) - 1);
        return (v >> ((addr & 3) * 8)) & mask;
    }
    if (!m->strict) now_ppb(m, uc, addr);        /* advance the attribution cursor */
    return m->ppb_fallback ? m->ppb_fallback(uc, offset, size, m->ppb_fallback_ud) : 0;
}

/* Native write callback of the PPB MMIO page: note the instruction (fast mode), then the Python model. */
void ppb_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user_data)
{
    Model *m = (Model *)user_data;
    if (!m->strict) now_ppb(m, uc, PPB_BASE + (uint32_t)offset);
    if (m->ppb_write_fallback) m->ppb_write_fallback(uc, offset, size, value, m->ppb_fallback_ud);
}
