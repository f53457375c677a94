/*
 * Early board initialisation, driven by the generated board_config.h:
 *   - flash wait states for the catalogue's default clock + the flash accelerator (FLASH ACR),
 *   - Cortex-M7 L1 caches (SCB CCR, with the standard invalidation sequence),
 *   - STM32L5 ICACHE,
 *   - the clock tree to the catalogue clock (clock.c), after the wait states are in place,
 *   - the register writes that clock and route the debug UART (BOARD_INIT_WRITES: RCC enable
 *     bits, PWR VDDIO2, GPIO mode/alternate function).
 *
 * UNTESTED ON HARDWARE: the register addresses and bit positions are taken from the ST reference
 * manuals (RM0008, RM0386, RM0410, RM0444, RM0351, RM0432, RM0438) but have only run on the
 * virtual board. Every wait on a peripheral is bounded (the virtual board's peripherals are a
 * plain register file).
 */
#include "board.h"
#include "cortexm.h"

struct reg_write {
    uint32_t addr, mask, value;
};

static const struct reg_write init_writes[] = BOARD_INIT_WRITES;

static void flash_init(void)
{
#ifdef BOARD_FLASH_ACR
    uint32_t acr = REG32(BOARD_FLASH_ACR);
    acr = (acr & ~(uint32_t)BOARD_FLASH_ACR_LATENCY_MASK) | (uint32_t)BOARD_FLASH_WAIT_STATES;
    REG32(BOARD_FLASH_ACR) = acr; /* latency first, then the accelerator (RM: program WS, check, ...) */
    for (uint32_t i = 0; i < 1000u; i++) {
        if ((REG32(BOARD_FLASH_ACR) & BOARD_FLASH_ACR_LATENCY_MASK) == BOARD_FLASH_WAIT_STATES) break;
    }
    REG32(BOARD_FLASH_ACR) = REG32(BOARD_FLASH_ACR) | (uint32_t)BOARD_FLASH_ACR_ACCEL_BITS;
#endif
#ifdef BOARD_ICACHE_CR
    /* STM32L5 ICACHE (RM0438 ch. 8): CR.EN (bit 0); 1-way/2-way default. */
    REG32(BOARD_ICACHE_CR) |= 1u;
#endif
}

#if defined(BOARD_CORE_M7) && (BOARD_ICACHE_BYTES > 0)
static void m7_caches_init(void)
{
    /* I-cache: invalidate all, then enable (Armv7-M ARM B2.2.7, Cortex-M7 TRM 4.8). */
    cm_dsb();
    cm_isb();
    SCB_ICIALLU = 0;
    cm_dsb();
    cm_isb();
    SCB_CCR |= CCR_IC;
    cm_dsb();
    cm_isb();
#if BOARD_DCACHE_BYTES > 0
    /* D-cache: invalidate by set/way (level 1 data cache), then enable. */
    SCB_CSSELR = 0;
    cm_dsb();
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = (ccsidr >> 13) & 0x7FFFu, ways = (ccsidr >> 3) & 0x3FFu;
    if (sets > 1023u) sets = 1023u; /* bounded even if the register reads garbage */
    if (ways > 7u) ways = 7u;
    for (uint32_t s = 0; s <= sets; s++)
        for (uint32_t w = 0; w <= ways; w++) SCB_DCISW = ((s & 0x1FFu) << 5) | ((w & 3u) << 30);
    cm_dsb();
    SCB_CCR |= CCR_DC;
    cm_dsb();
    cm_isb();
#endif
}
#endif

void board_early_init(void)
{
    flash_init();
    (void)board_clock_init(); /* its status is reported in the HELLO (the clock the core runs at) */
#if defined(BOARD_CORE_M7) && (BOARD_ICACHE_BYTES > 0)
    m7_caches_init();
#endif
    for (uint32_t i = 0; i < sizeof init_writes / sizeof init_writes[0]; i++) {
        const struct reg_write *w = &init_writes[i];
        REG32(w->addr) = (REG32(w->addr) & ~w->mask) | w->value;
        (void)REG32(w->addr); /* read back: the RM's delay after an RCC clock enable */
    }
}
