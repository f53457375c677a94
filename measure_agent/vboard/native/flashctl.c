/*
 * The FLASH controller of the virtual board (periph.h): register model and programming rules of the three
 * STM32 controller styles of the catalogue, from the reference manuals
 *
 *   page-number  (L4: RM0351/RM0432, G0: RM0444, L5: RM0438)  KEYR, SR, CR.PG/PER/PNB/BKER/STRT/LOCK;
 *                a double word is programmed by two consecutive 32-bit writes, once after an erase
 *                (ECC: a second programming is PROGERR even with the same bits)
 *   sector       (F4: RM0386, F7: RM0410)  CR.PG/SER/SNB/PSIZE/STRT/LOCK; x32: one 32-bit write programs a
 *                word; bits can only be cleared, so programming over programmed bits is refused here
 *   page-address (F1: RM0008/PM0075)  CR.PG/PER/STRT/LOCK, FLASH_AR; 16-bit writes only
 *
 * Times: a programming or an erase sets SR.BSY for its datasheet time (converted to core cycles by the
 * caller); the model's cycle count advances to the end of the operation when the firmware next reads SR
 * (or writes CR / flash, which stall the bus on the hardware while BSY): a polling loop costs the
 * operation's time, not millions of simulated iterations. EOP is set at the end (only with CR.EOPIE on
 * the families whose manual says so).
 *
 * FLASH_ACR: LATENCY is the cycle model's flash wait states from the moment the firmware writes it; ICRST /
 * DCRST reset the ART caches of the model (the caller passes 0 for a family whose caches are elsewhere).
 *
 * Every violation of a rule faults (FAULT_FLASH, or the write hook refusing the store: Unicorn's
 * UC_ERR_WRITE_PROT) with a message naming the flag the hardware sets; the firmware's programming routines
 * (firmware/board/flash_prog.c) are expected never to trigger one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "periph.h"

/* provided by flash.c (the cycle model's wait states); a weak reference so that this file also builds
 * against a flash.c without it, then the field is set directly */
#pragma GCC visibility push(hidden)
void vb_flash_set_wait_states(Model *m, uint32_t ws);
#pragma GCC visibility pop
#pragma weak vb_flash_set_wait_states

static const char *const STYLE_NAMES[] = {"page-number", "sector", "page-address"};

int flashctl_init(FlashCtl *fc, uint32_t nunits)
{
    memset(fc, 0, sizeof *fc);
    fc->units = calloc(nunits ? nunits : 1, sizeof(FcUnit));
    fc->nunits = nunits;
    fc->ar = UINT32_MAX;
    fc->pend_addr = UINT32_MAX;
    return fc->units ? 0 : -1;
}

void flashctl_release(FlashCtl *fc)
{
    free(fc->units);
    fc->units = NULL;
}

void flashctl_reset(FlashCtl *fc, uint32_t acr_reset)
{
    fc->acr_v = acr_reset;
    fc->sr_v = fc->cr_v = fc->ar_v = 0;
    memset(fc->other, 0, sizeof fc->other);
    fc->locked = 1;
    fc->key_stage = fc->key_dead = 0;
    fc->busy = 0;
    fc->busy_until = 0;
    fc->pend_addr = UINT32_MAX;
    fc->fault[0] = 0;
}

/* ------------------------------------------------------------ time */
static void complete(FlashCtl *fc)
{
    fc->busy = 0;
    fc->cr_v &= ~fc->cr_strt;
    if (!fc->eop_needs_eopie || (fc->cr_v & fc->cr_eopie)) fc->sr_v |= fc->sr_eop;
}

static void sync(FlashCtl *fc)
{
    if (fc->busy && fc->m->cycles >= fc->busy_until) complete(fc);
}

/* the core waits for the operation: its remaining time is added to the model's cycles */
static void wait_done(FlashCtl *fc)
{
    if (!fc->busy) return;
    Model *m = fc->m;
    if (fc->busy_until > m->cycles) {
        uint64_t d = fc->busy_until - m->cycles;
        m->cycles += d;
        m->cur_extra += d;
        fc->stall_cycles += d;
    }
    complete(fc);
}

static void start_busy(FlashCtl *fc, uint64_t cycles)
{
    /* times are given in cycles of ref_hz: the operation takes as long at the clock that runs */
    if (fc->hclk_hz && fc->ref_hz && *fc->hclk_hz) cycles = cycles * *fc->hclk_hz / fc->ref_hz;
    if (!cycles) cycles = 1;
    fc->busy = 1;
    fc->busy_until = fc->m->cycles + cycles;
}

/* ------------------------------------------------------------ faults */
static void note_fault(FlashCtl *fc, uint32_t addr, uint32_t flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(fc->fault, sizeof fc->fault, "flash (%s controller): ", STYLE_NAMES[fc->style]);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof fc->fault) vsnprintf(fc->fault + n, sizeof fc->fault - (size_t)n, fmt, ap);
    va_end(ap);
    fc->sr_v |= flag;
    fc->fault_addr = addr;
    fc->n_faults++;
}

/* a fault found by a register access: stop the board (the write hook refuses the store instead) */
static void stop_board(FlashCtl *fc, void *uc)
{
    periph_stop_board(fc->m, uc, FAULT_FLASH, fc->fault_addr);
}

/* ------------------------------------------------------------ erase */
static void erase(FlashCtl *fc, void *uc)
{
    uint32_t cr = fc->cr_v;
    if (!(cr & fc->cr_erase)) {
        note_fault(fc, 0, 0, "STRT set without %s (mass erase and option bytes are not modelled)",
                   fc->style == FC_SECTOR ? "SER" : "PER");
        stop_board(fc, uc);
        return;
    }
    if (cr & fc->cr_pg) {
        note_fault(fc, 0, fc->sr_errors & 0x80u, "PGSERR: STRT with both PG and %s set",
                   fc->style == FC_SECTOR ? "SER" : "PER");
        stop_board(fc, uc);
        return;
    }
    uint32_t number = (cr >> fc->number_shift) & fc->number_mask, bank = (cr & fc->cr_bank) ? 1u : 0u;
    FcUnit *u = NULL;
    for (uint32_t i = 0; i < fc->nunits && !u; i++) {
        FcUnit *c = &fc->units[i];
        if (fc->style == FC_PAGE_ADDRESS ? (fc->ar_v - c->base < c->bytes)
                                         : (c->number == number && (fc->style == FC_SECTOR || c->bank == bank)))
            u = c;
    }
    if (!u) {
        if (fc->style == FC_PAGE_ADDRESS)
            note_fault(fc, fc->ar_v, 0, "page erase of FLASH_AR = 0x%08x, outside the flash", fc->ar_v);
        else
            note_fault(fc, 0, 0, "erase of %s %u%s, which this flash does not have",
                       fc->style == FC_SECTOR ? "sector SNB" : "page PNB", number, bank ? " in bank 2" : "");
        stop_board(fc, uc);
        return;
    }
    uint32_t off = u->base - fc->flash_base;
    memset(fc->mem + off, 0xFF, u->bytes);
    if (fc->programmed) memset(fc->programmed + off / fc->prog_bytes, 0, u->bytes / fc->prog_bytes);
    if (fc->erase_counts) fc->erase_counts[u - fc->units]++;
    fc->n_erases++;
    start_busy(fc, u->erase_cycles);
}

/* ------------------------------------------------------------ registers */
static uint32_t reg_value(FlashCtl *fc, uint32_t w)
{
    if (w == fc->acr) return fc->acr_v;
    if (w == fc->sr) return fc->sr_v | (fc->busy ? fc->sr_busy : 0u);
    if (w == fc->cr) return fc->cr_v | (fc->locked ? fc->cr_lock : 0u);
    if (w == fc->keyr) return 0;
    if (w == fc->ar) return fc->ar_v;
    return fc->other[(w >> 2) & 63u];
}

uint64_t flashctl_read(void *uc, void *dev, uint32_t off, unsigned size)
{
    (void)uc;
    FlashCtl *fc = (FlashCtl *)dev;
    uint32_t w = off & ~3u;
    sync(fc);
    if (w == fc->sr && fc->busy) wait_done(fc); /* polling BSY: the operation's time passes */
    uint32_t v = reg_value(fc, w) >> (8u * (off & 3u));
    return size >= 4 ? v : v & ((1u << (8u * size)) - 1u);
}

static void set_wait_states(FlashCtl *fc, uint32_t ws)
{
    if (vb_flash_set_wait_states) vb_flash_set_wait_states(fc->m, ws);
    else fc->m->ws = ws;
}

void flashctl_write(void *uc, void *dev, uint32_t off, unsigned size, uint64_t value)
{
    FlashCtl *fc = (FlashCtl *)dev;
    uint32_t w = off & ~3u, shift = 8u * (off & 3u);
    uint32_t mask = size >= 4 ? 0xFFFFFFFFu : ((1u << (8u * size)) - 1u) << shift;
    sync(fc);
    uint32_t v = (reg_value(fc, w) & ~mask) | (((uint32_t)value << shift) & mask);
    if (w == fc->acr) {
        uint32_t old = fc->acr_v;
        fc->acr_v = v;
        set_wait_states(fc, v & fc->acr_latency_mask); /* the controller reads LATENCY at once */
        if ((v & fc->acr_icrst) && !(old & fc->acr_icrst)) cache_clear(&fc->m->icache);
        if ((v & fc->acr_dcrst) && !(old & fc->acr_dcrst)) cache_clear(&fc->m->dcache);
        if (fc->on_acr) fc->on_acr(uc, fc->clock); /* a lower latency under a fast clock faults */
    } else if (w == fc->keyr) {
        if (fc->key_dead || !fc->locked) {
            note_fault(fc, 0, 0, "KEYR written %s: a wrong unlock sequence is a bus error and locks FLASH_CR "
                       "until reset", fc->key_dead ? "after a wrong key" : "while FLASH_CR is unlocked");
            fc->key_dead = 1;
            stop_board(fc, uc);
        } else if (v == (fc->key_stage ? fc->key2 : fc->key1)) {
            if (++fc->key_stage == 2) { fc->locked = 0; fc->key_stage = 0; }
        } else {
            note_fault(fc, 0, 0, "wrong key 0x%08x written to KEYR (expected 0x%08x): bus error, FLASH_CR "
                       "locked until reset", v, fc->key_stage ? fc->key2 : fc->key1);
            fc->key_dead = 1;
            stop_board(fc, uc);
        }
    } else if (w == fc->sr) {
        fc->sr_v &= ~(v & (fc->sr_errors | fc->sr_eop)); /* write 1 to clear */
    } else if (w == fc->cr) {
        wait_done(fc); /* CR cannot be written while BSY: the bus stalls until the operation ends */
        uint32_t nv = v & ~fc->cr_lock;
        if (fc->locked) {
            if (nv != fc->cr_v) {
                note_fault(fc, 0, 0, "FLASH_CR written (0x%08x) while locked: unlock it with the KEYR "
                           "sequence first", v);
                stop_board(fc, uc);
            }
            return;
        }
        int start = (nv & fc->cr_strt) && !(fc->cr_v & fc->cr_strt);
        fc->cr_v = nv;
        if (v & fc->cr_lock) { fc->locked = 1; fc->key_stage = 0; }
        if ((nv & fc->cr_pg) == 0) fc->pend_addr = UINT32_MAX;
        if (start) erase(fc, uc);
    } else if (w == fc->ar) {
        fc->ar_v = v;
    } else {
        fc->other[(w >> 2) & 63u] = v;
    }
}

/* ------------------------------------------------------------ the flash array: firmware stores */
static bool refuse(FlashCtl *fc, uint32_t a, uint32_t flag, const char *what)
{
    note_fault(fc, a, flag, "%s", what);
    return false;
}

bool flashctl_write_hook(void *uc, int type, uint64_t address, int size, int64_t value, void *user_data)
{
    (void)uc; (void)type;
    FlashCtl *fc = (FlashCtl *)user_data;
    uint32_t a = (uint32_t)address;
    char msg[200];
    if (a - fc->flash_base >= fc->flash_size) return false;
    sync(fc);
    wait_done(fc); /* a write while BSY waits for the operation */
    if (fc->locked || !(fc->cr_v & fc->cr_pg)) {
        snprintf(msg, sizeof msg, "%s: %d-byte write to flash at 0x%08x with FLASH_CR.PG clear%s",
                 fc->style == FC_PAGE_ADDRESS ? "PGERR" : "PGSERR", size, a,
                 fc->locked ? " and the controller locked (unlock with the KEYR sequence, then set PG)" : "");
        return refuse(fc, a, fc->sr_errors & 0x80u, msg);
    }
    if (fc->cr_v & fc->cr_erase) {
        snprintf(msg, sizeof msg, "PGSERR: write to flash at 0x%08x with both PG and %s set", a,
                 fc->style == FC_SECTOR ? "SER" : "PER");
        return refuse(fc, a, fc->sr_errors & 0x80u, msg);
    }
    uint32_t off = a - fc->flash_base;
    if (fc->style == FC_PAGE_NUMBER) {
        uint32_t unit = off / 8u;
        if (size != 4) {
            snprintf(msg, sizeof msg, "SIZERR: %d-byte write to flash at 0x%08x: a double word is programmed "
                     "as two 32-bit writes", size, a);
            return refuse(fc, a, fc->sr_errors & 0x40u, msg);
        }
        if (fc->pend_addr == UINT32_MAX) {
            if (a & 7u) {
                snprintf(msg, sizeof msg, "PGAERR: first word of a double word at 0x%08x, not 8-byte aligned", a);
                return refuse(fc, a, fc->sr_errors & 0x20u, msg);
            }
            if (fc->programmed && fc->programmed[unit]) {
                snprintf(msg, sizeof msg, "PROGERR: double word at 0x%08x already programmed since its last erase "
                         "(erase the page first)", a);
                return refuse(fc, a, fc->sr_errors & 0x08u, msg);
            }
            fc->pend_addr = a;
            return true;
        }
        if (a != fc->pend_addr + 4u) {
            snprintf(msg, sizeof msg, "PGAERR: word at 0x%08x does not complete the double word at 0x%08x", a,
                     fc->pend_addr);
            return refuse(fc, a, fc->sr_errors & 0x20u, msg);
        }
        fc->pend_addr = UINT32_MAX;
        if (fc->programmed) fc->programmed[unit] = 1;
    } else if (fc->style == FC_SECTOR) {
        if ((fc->cr_v & fc->psize_mask) != fc->psize_bits || (uint32_t)size != fc->prog_bytes) {
            snprintf(msg, sizeof msg, "PGPERR: %d-byte write to flash at 0x%08x does not match CR.PSIZE "
                     "(0x%x; x32 expected)", size, a, (fc->cr_v & fc->psize_mask));
            return refuse(fc, a, fc->sr_errors & 0x40u, msg);
        }
        if (a % (uint32_t)size) {
            snprintf(msg, sizeof msg, "PGAERR: unaligned %d-byte write to flash at 0x%08x", size, a);
            return refuse(fc, a, fc->sr_errors & 0x20u, msg);
        }
        for (int k = 0; k < size; k++) {
            if (fc->mem[off + (uint32_t)k] != 0xFFu) {
                snprintf(msg, sizeof msg, "write to flash at 0x%08x over programmed bits (programming can only "
                         "clear bits: erase the sector first)", a);
                return refuse(fc, a, 0, msg);
            }
        }
    } else {
        if (size != 2 || (a & 1u)) {
            snprintf(msg, sizeof msg, "%d-byte write to flash at 0x%08x: the controller programs aligned half "
                     "words only (a bus error)", size, a);
            return refuse(fc, a, 0, msg);
        }
        uint32_t old = (uint32_t)fc->mem[off] | ((uint32_t)fc->mem[off + 1] << 8);
        if (old != 0xFFFFu && ((uint32_t)value & 0xFFFFu) != 0u) {
            snprintf(msg, sizeof msg, "PGERR: half word at 0x%08x holds 0x%04x, not erased (0xFFFF)", a, old);
            return refuse(fc, a, fc->sr_errors & 0x04u, msg);
        }
    }
    fc->n_programs++;
    start_busy(fc, fc->prog_cycles);
    return true;
}
