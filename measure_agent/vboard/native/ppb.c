/*
 * Private peripheral bus, native part: the PPB MMIO read callback answers DWT CYCCNT (read once per
 * received byte by the firmware's UART loop) without Python; every other PPB read goes to the
 * Python model (VirtualBoard._ppb_read, registered as ppb_fallback), and all PPB writes are Python.
 *
 * CYCCNT is exact to the reading instruction: the cycles accumulated before it starts.  Strict mode
 * finds the instruction from the PC (Unicorn synchronises it before memory accesses when a memory
 * hook exists); fast mode matches the access address against the effective addresses of the current
 * block's loads/stores (now_at_access), since the PC is stale there.
 */
#include "cyclemodel.h"

#define PPB_BASE 0xE0000000u
#define DWT_CYCCNT 0xE0001004u

/* Cycles before the instruction of the current block that performs the memory access at addr
 * (DWT CYCCNT reads/writes in fast mode): the first load/store at or after the previously matched
 * one whose effective address, computed from the current registers, covers addr. */
uint64_t now_at_access(Model *m, uint32_t addr)
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
 * access against the block's loads/stores. */
static uint64_t now_ppb(Model *m, void *uc, uint32_t addr)
{
    if (m->strict) {
        uint32_t pc = 0;
        if (m->reg_read) m->reg_read(uc, m->pc_regid, &pc);
        return model_cycles_at(m, pc);
    }
    return now_at_access(m, addr);
}

/* Native read callback of the PPB MMIO page: DWT CYCCNT here (it is read in the firmware's UART
 * receive loop, once per byte), everything else through the Python model (ppb_fallback). */
uint64_t ppb_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data)
{
    Model *m = (Model *)user_data;
    uint32_t addr = PPB_BASE + (uint32_t)offset;
    if ((addr & ~3u) == DWT_CYCCNT) {
        uint64_t v = m->cyc_on ? (m->cyc_frozen + now_ppb(m, uc, addr) - m->cyc_start) : m->cyc_frozen;
        v &= 0xFFFFFFFFu;
        uint64_t mask = size >= 8 ? ~(uint64_t)0 : (((uint64_t)1 << (8 * size)) - 1);
        return (v >> ((addr & 3) * 8)) & mask;
    }
    return m->ppb_fallback ? m->ppb_fallback(uc, offset, size, m->ppb_fallback_ud) : 0;
}
