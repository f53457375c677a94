/*
 * Flash programming for the plan slots (firmware/PROTOCOL.md "Flash slots"): the platform side of
 * hal_flash_* (firmware/shell/hal.h). The controller's registers and bits, the programming width and the
 * erase units come from the generated board_config.h (families.toml flash_ctl, boards.toml flash_layout);
 * three sequences cover the catalogue:
 *
 *   page-number  (L4, L4+, G0, L5)  erase: CR.PER + PNB (+ BKER for bank 2), STRT; program: CR.PG, then the
 *                                   two words of a double word back to back (64 bits + ECC: a double word is
 *                                   programmed once after an erase)
 *   sector       (F4, F7)           erase: CR.SER + SNB + PSIZE, STRT; program: CR.PG + PSIZE x32, one word
 *   page-address (F1)               erase: CR.PER, FLASH_AR = page address, STRT; program: CR.PG, half words
 *
 * Every step waits for SR.BSY to clear (bounded: about 10 s at the reset clock) and returns the SR error
 * flags. The routines that touch the controller run from SRAM (section .ramfunc, copied with .data at
 * start-up): no instruction is fetched from flash while an erase or a programming is in progress.
 * After an operation the caches that may hold the old contents are reset: the ART data cache (ACR.DCRST,
 * L4/F4), the L5 ICACHE (CACHEINV), the Cortex-M7 D-cache by address (DCIMVAC).
 *
 * UNTESTED ON HARDWARE: written from the reference manuals (RM0351, RM0432, RM0444, RM0438, RM0386, RM0410,
 * RM0008/PM0075); it has run only on the virtual board, whose FLASH model follows the same manuals
 * (measure_agent/vboard/native/flashctl.c).
 */
#include "board.h"
#include "cortexm.h"
#include "hal.h"

#if BOARD_FLASH_NSLOTS > 0

extern uint32_t __flash_slots_start;

#define RAMFUNC __attribute__((section(".ramfunc"), noinline, long_call))
#define INLINE static inline __attribute__((always_inline))
#define FSR REG32(BOARD_FLASHCTL_SR)
#define FCR REG32(BOARD_FLASHCTL_CR)
#define FKEYR REG32(BOARD_FLASHCTL_KEYR)
#define REG16(addr) (*(volatile uint16_t *)(uintptr_t)(addr))

/* bound on one BSY wait: >= 10 s at the catalogue clock (an iteration takes more than 4 cycles); longer
 * when the clock set-up failed and the core runs at its reset clock */
#define WAIT_LIMIT ((BOARD_CLOCK_HZ / 4u) * 10u)

static const struct hal_flash_slot slot_table[BOARD_FLASH_NSLOTS] = BOARD_FLASH_SLOTS;
static const struct {
    uint32_t base, bytes, count, number, bank;
} unit_groups[BOARD_FLASH_NUNIT_GROUPS] = BOARD_FLASH_UNITS;

static struct hal_flash info;

/* ------------------------------------------------------------ in SRAM: the controller sequences */
static RAMFUNC uint32_t fl_wait(void)
{
    for (uint32_t i = 0; i < WAIT_LIMIT; i++) {
        if (!(FSR & BOARD_FLASHCTL_SR_BUSY)) break;
    }
    uint32_t sr = FSR;
    if (sr & BOARD_FLASHCTL_SR_BUSY) return BOARD_FLASHCTL_SR_BUSY; /* still busy: timeout */
    return sr & BOARD_FLASHCTL_SR_ERRORS;
}

static RAMFUNC uint32_t fl_erase(uint32_t number, uint32_t bank, uint32_t addr)
{
    uint32_t e = fl_wait();
    if (e) return e;
    FSR = BOARD_FLASHCTL_SR_ERRORS | BOARD_FLASHCTL_SR_EOP; /* clear stale flags (write 1 to clear) */
#if defined(BOARD_FLASHCTL_STYLE_PAGE_ADDRESS)
    (void)number;
    (void)bank;
    FCR |= BOARD_FLASHCTL_CR_ERASE;
    REG32(BOARD_FLASHCTL_AR) = addr;
    FCR |= BOARD_FLASHCTL_CR_STRT;
#else
    (void)addr;
    uint32_t cr = FCR & ~(BOARD_FLASHCTL_CR_PG | BOARD_FLASHCTL_CR_BANK | BOARD_FLASHCTL_PSIZE_MASK |
                          (BOARD_FLASHCTL_NUMBER_MASK << BOARD_FLASHCTL_NUMBER_SHIFT));
    cr |= BOARD_FLASHCTL_CR_ERASE | BOARD_FLASHCTL_PSIZE_BITS |
          ((number & BOARD_FLASHCTL_NUMBER_MASK) << BOARD_FLASHCTL_NUMBER_SHIFT) | (bank ? BOARD_FLASHCTL_CR_BANK : 0u);
    FCR = cr;
    FCR = cr | BOARD_FLASHCTL_CR_STRT;
#endif
    e = fl_wait();
    FCR &= ~BOARD_FLASHCTL_CR_ERASE;
    FSR = BOARD_FLASHCTL_SR_EOP;
    return e;
}

INLINE uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static RAMFUNC uint32_t fl_program(uint32_t addr, const uint8_t *src, uint32_t n)
{
    uint32_t e = fl_wait();
    if (e) return e;
    FSR = BOARD_FLASHCTL_SR_ERRORS | BOARD_FLASHCTL_SR_EOP;
    FCR = (FCR & ~(BOARD_FLASHCTL_CR_ERASE | BOARD_FLASHCTL_PSIZE_MASK)) | BOARD_FLASHCTL_PSIZE_BITS |
          BOARD_FLASHCTL_CR_PG;
    for (uint32_t i = 0; i < n; i += BOARD_FLASH_PROGRAM_BYTES) {
#if BOARD_FLASH_PROGRAM_BYTES == 8
        uint32_t w0 = rd32(src + i), w1 = rd32(src + i + 4);
        if (w0 == 0xFFFFFFFFu && w1 == 0xFFFFFFFFu) continue; /* leave an erased double word erased */
        REG32(addr + i) = w0;
        REG32(addr + i + 4) = w1; /* the second word starts the programming */
#elif BOARD_FLASH_PROGRAM_BYTES == 4
        uint32_t w = rd32(src + i);
        if (w == 0xFFFFFFFFu) continue;
        REG32(addr + i) = w;
        cm_dsb(); /* RM0410: the write must leave the core's write buffer before BSY is polled */
#else
        uint32_t h = (uint32_t)src[i] | ((uint32_t)src[i + 1] << 8);
        if (h == 0xFFFFu) continue;
        REG16(addr + i) = (uint16_t)h;
#endif
        e = fl_wait();
        FSR = BOARD_FLASHCTL_SR_EOP;
        if (e) break;
    }
    FCR &= ~BOARD_FLASHCTL_CR_PG;
    return e;
}

static RAMFUNC uint32_t fl_unlock(void)
{
    if (FCR & BOARD_FLASHCTL_CR_LOCK) {
        FKEYR = BOARD_FLASHCTL_KEY1;
        FKEYR = BOARD_FLASHCTL_KEY2;
    }
    return (FCR & BOARD_FLASHCTL_CR_LOCK) ? BOARD_FLASHCTL_CR_LOCK : 0u;
}

static RAMFUNC void fl_lock(void) { FCR |= BOARD_FLASHCTL_CR_LOCK; }

/* ------------------------------------------------------------ in flash: bookkeeping, caches */
static void caches_after(uint32_t addr, uint32_t n)
{
#if defined(BOARD_FLASH_ACR) && (BOARD_FLASHCTL_ACR_DCRST != 0u)
    uint32_t acr = REG32(BOARD_FLASH_ACR);
    REG32(BOARD_FLASH_ACR) = acr & ~BOARD_FLASHCTL_ACR_DCEN;            /* DCRST only with the cache off */
    REG32(BOARD_FLASH_ACR) = (acr & ~BOARD_FLASHCTL_ACR_DCEN) | BOARD_FLASHCTL_ACR_DCRST;
    REG32(BOARD_FLASH_ACR) = acr & ~BOARD_FLASHCTL_ACR_DCRST;
#endif
#ifdef BOARD_ICACHE_CR
    REG32(BOARD_ICACHE_CR) |= (1u << 1); /* RM0438 8.5.1 ICACHE_CR.CACHEINV */
    for (uint32_t i = 0; i < 100000u && (REG32(BOARD_ICACHE_CR + 4u) & 1u); i++) { /* ICACHE_SR.BUSYF */
    }
#endif
#if defined(BOARD_CORE_M7) && (BOARD_DCACHE_BYTES > 0)
    cm_dsb();
    for (uint32_t a = addr & ~31u; a < addr + n; a += 32u) SCB_DCIMVAC = a; /* invalidate by address */
    cm_dsb();
    cm_isb();
#endif
    (void)addr;
    (void)n;
}

const struct hal_flash *hal_flash(void)
{
    if (!info.slots) {
        uint32_t first = 0;
        while (first < BOARD_FLASH_NSLOTS && slot_table[first].base < (uint32_t)(uintptr_t)&__flash_slots_start) first++;
        info.nslots = BOARD_FLASH_NSLOTS;
        info.first = first;
        info.slots = slot_table;
        info.program_bytes = BOARD_FLASH_PROGRAM_BYTES;
#ifdef SHELL_FLASH_ENDURANCE
        info.endurance = SHELL_FLASH_ENDURANCE; /* tests: a small endurance to reach */
#else
        info.endurance = BOARD_FLASH_ENDURANCE;
#endif
    }
    return &info;
}

const uint8_t *hal_flash_ptr(uint32_t addr) { return (const uint8_t *)(uintptr_t)addr; }

uint32_t hal_flash_erase_slot(uint32_t slot)
{
    const struct hal_flash *f = hal_flash();
    if (slot < f->first || slot >= f->nslots) return BOARD_FLASHCTL_SR_ERRORS;
    uint32_t e = fl_unlock();
    uint32_t a = slot_table[slot].base, end = a + slot_table[slot].bytes;
    while (!e && a < end) {
        uint32_t g = 0;
        while (g < BOARD_FLASH_NUNIT_GROUPS &&
               !(a >= unit_groups[g].base && a < unit_groups[g].base + unit_groups[g].bytes * unit_groups[g].count))
            g++;
        if (g == BOARD_FLASH_NUNIT_GROUPS) { e = BOARD_FLASHCTL_SR_ERRORS; break; }
        uint32_t k = (a - unit_groups[g].base) / unit_groups[g].bytes;
        e = fl_erase(unit_groups[g].number + k, unit_groups[g].bank, a);
        info.erases++;
        a += unit_groups[g].bytes;
    }
    fl_lock();
    caches_after(slot_table[slot].base, slot_table[slot].bytes);
    return e;
}

uint32_t hal_flash_program(uint32_t addr, const uint8_t *src, uint32_t n)
{
    const struct hal_flash *f = hal_flash();
    if (n == 0u) return 0u;
    if ((addr | n) % BOARD_FLASH_PROGRAM_BYTES || addr < f->slots[f->first].base ||
        addr + n > BOARD_FLASH_BASE + BOARD_FLASH_SIZE)
        return BOARD_FLASHCTL_SR_ERRORS; /* never outside the slot area */
    uint32_t e = fl_unlock();
    if (!e) e = fl_program(addr, src, n);
    fl_lock();
    info.programs += n / BOARD_FLASH_PROGRAM_BYTES;
    caches_after(addr, n);
    return e;
}

#else /* no flash layout in the catalogue: no slots */

static const struct hal_flash info;
const struct hal_flash *hal_flash(void) { return &info; }
const uint8_t *hal_flash_ptr(uint32_t addr) { return (const uint8_t *)(uintptr_t)addr; }
uint32_t hal_flash_erase_slot(uint32_t slot) { (void)slot; return 1u; }
uint32_t hal_flash_program(uint32_t addr, const uint8_t *src, uint32_t n) { (void)addr; (void)src; (void)n; return 1u; }

#endif
