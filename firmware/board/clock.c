/*
 * The clock tree: from the reset clock to the catalogue clock (costmodel/data/clocks.toml), one sequence for
 * every family, with the register values board_config.py computes (PLL M/N/R, prescalers, voltage level):
 *
 *   1. the PLL's oscillator on (HSI16 / HSE bypass from the ST-LINK MCO on the F103), wait for its RDY
 *   2. PWR clocked; the voltage level the target needs: VOS range + wait for VOSF clear (L5 range 0),
 *      range 1 boost (L4+: PWR_CR5.R1MODE = 0)
 *   3. PLL off -> PLLCFGR -> PLLON; F4/F7 over-drive (ODEN -> ODRDY, ODSWEN -> ODSWRDY) while the PLL locks
 *      (RM0386 5.1.4, RM0410 4.1.4); wait for PLLRDY
 *   4. flash latency already raised by flash_init (board_init.c): read back, else no switch
 *   5. bus prescalers (above 80 MHz on the L4+/L5 the AHB runs /2 through the switch, RM0432 6.2.9)
 *   6. SW = PLL, wait for SWS = PLL; then AHB /1 after 1 us where stepped
 *
 * Every wait is bounded; a wait that times out leaves the core on its reset clock (nothing is switched after
 * a failure) and board_clock_status() says which step failed: the HELLO reports the clock the core runs at.
 * UNTESTED ON HARDWARE: from the ST reference manuals (RM0008, RM0386, RM0410, RM0444, RM0351, RM0432,
 * RM0438); it runs on the virtual board's RCC / PWR models (measure_agent/vboard/native/clock.c).
 */
#include "board.h"
#include "cortexm.h"

#ifndef CLOCK_WAIT_LOOPS
#define CLOCK_WAIT_LOOPS 100000u /* > 10 ms at the reset clock: oscillators start in us, PLLs lock in <= 200 us */
#endif

static uint32_t core_clock_hz = BOARD_RESET_CLOCK_HZ;
static uint32_t uart_clock_hz = BOARD_RESET_CLOCK_HZ;
static int clock_status = CLOCK_NOT_SET;

/* bounded wait until (reg & mask) == want */
static int wait_bits(uint32_t reg, uint32_t mask, uint32_t want)
{
    for (uint32_t i = 0; i < CLOCK_WAIT_LOOPS; i++)
        if ((REG32(reg) & mask) == want) return 1;
    return 0;
}

static void set_bits(uint32_t reg, uint32_t mask, uint32_t value)
{
    REG32(reg) = (REG32(reg) & ~mask) | value;
}

int board_clock_init(void)
{
#ifdef BOARD_CLK_CR
    /* 1. oscillator (HSEBYP is written while HSEON is off, RM0008 7.3.1) */
    if (BOARD_CLK_OSC_BYP) set_bits(BOARD_CLK_CR, BOARD_CLK_OSC_BYP, BOARD_CLK_OSC_BYP);
    set_bits(BOARD_CLK_CR, BOARD_CLK_OSC_ON, BOARD_CLK_OSC_ON);
    if (!wait_bits(BOARD_CLK_CR, BOARD_CLK_OSC_RDY, BOARD_CLK_OSC_RDY)) return clock_status = CLOCK_FAIL_OSC;
    /* 2. voltage */
    set_bits(BOARD_CLK_PWR_ENR, BOARD_CLK_PWR_EN, BOARD_CLK_PWR_EN);
    (void)REG32(BOARD_CLK_PWR_ENR); /* the RM's delay after an RCC clock enable */
#ifdef BOARD_CLK_VOS_CR
    set_bits(BOARD_CLK_VOS_CR, BOARD_CLK_VOS_MASK, BOARD_CLK_VOS_VALUE);
    if (!wait_bits(BOARD_CLK_VOSF_SR, BOARD_CLK_VOSF, 0u)) return clock_status = CLOCK_FAIL_VOLTAGE;
#endif
#ifdef BOARD_CLK_BOOST_CR
    set_bits(BOARD_CLK_BOOST_CR, BOARD_CLK_BOOST_BIT, 0u); /* R1MODE = 0: range 1 boost */
#endif
    /* 3. PLL (configured while off) */
    set_bits(BOARD_CLK_CR, BOARD_CLK_PLL_ON, 0u);
    if (!wait_bits(BOARD_CLK_CR, BOARD_CLK_PLL_RDY, 0u)) return clock_status = CLOCK_FAIL_PLL;
    set_bits(BOARD_CLK_PLLCFGR, BOARD_CLK_PLLCFGR_MASK, BOARD_CLK_PLLCFGR_VALUE);
    set_bits(BOARD_CLK_CR, BOARD_CLK_PLL_ON, BOARD_CLK_PLL_ON);
#ifdef BOARD_CLK_OD_CR
    set_bits(BOARD_CLK_OD_CR, BOARD_CLK_ODEN, BOARD_CLK_ODEN);
    if (!wait_bits(BOARD_CLK_OD_CSR, BOARD_CLK_ODRDY, BOARD_CLK_ODRDY)) return clock_status = CLOCK_FAIL_VOLTAGE;
    set_bits(BOARD_CLK_OD_CR, BOARD_CLK_ODSWEN, BOARD_CLK_ODSWEN);
    if (!wait_bits(BOARD_CLK_OD_CSR, BOARD_CLK_ODSWRDY, BOARD_CLK_ODSWRDY)) return clock_status = CLOCK_FAIL_VOLTAGE;
#endif
    if (!wait_bits(BOARD_CLK_CR, BOARD_CLK_PLL_RDY, BOARD_CLK_PLL_RDY)) return clock_status = CLOCK_FAIL_PLL;
    /* 4. the wait states of the target clock must be in place before the switch */
    if ((REG32(BOARD_FLASH_ACR) & BOARD_FLASH_ACR_LATENCY_MASK) != BOARD_FLASH_WAIT_STATES)
        return clock_status = CLOCK_FAIL_LATENCY;
    /* 5. prescalers */
    set_bits(BOARD_CLK_CFGR, BOARD_CLK_PRESC_MASK, BOARD_CLK_PRESC_SWITCH);
    /* 6. switch */
    set_bits(BOARD_CLK_CFGR, BOARD_CLK_SW_MASK, BOARD_CLK_SW_PLL);
    if (!wait_bits(BOARD_CLK_CFGR, BOARD_CLK_SWS_MASK, BOARD_CLK_SWS_PLL)) {
        set_bits(BOARD_CLK_CFGR, BOARD_CLK_SW_MASK, BOARD_CLK_SW_RESET); /* stay on the reset clock */
        set_bits(BOARD_CLK_CFGR, BOARD_CLK_PRESC_MASK, 0u);
        return clock_status = CLOCK_FAIL_SWITCH;
    }
    if (BOARD_CLK_PRESC_SWITCH != BOARD_CLK_PRESC_VALUE) {
        /* 1 us at HCLK = clock / 2; a loop iteration takes more than 2 cycles */
        for (volatile uint32_t i = 0; i < BOARD_CLOCK_HZ / 2u / 1000000u; i++) {
        }
        set_bits(BOARD_CLK_CFGR, BOARD_CLK_PRESC_MASK, BOARD_CLK_PRESC_VALUE);
    }
    core_clock_hz = BOARD_CLOCK_HZ;
    uart_clock_hz = BOARD_CLOCK_HZ / BOARD_UART_PCLK_DIV;
    return clock_status = CLOCK_OK;
#else
    return clock_status = CLOCK_NOT_SET;
#endif
}

uint32_t board_core_clock_hz(void) { return core_clock_hz; }
uint32_t board_uart_clock_hz(void) { return uart_clock_hz; }
int board_clock_status(void) { return clock_status; }
