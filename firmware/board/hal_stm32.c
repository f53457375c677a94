/*
 * Cortex-M implementation of the shell's platform layer (firmware/shell/hal.h):
 * polled UART (STM32 USART v1 "SR/DR" and v2 "ISR/RDR/TDR" register layouts, LPUART included),
 * DWT CYCCNT as the cycle counter (SysTick fallback on a Cortex-M0+ without CYCCNT), the model RAM
 * region from the linker script, a stack canary, and AIRCR system reset.
 *
 * Waiting for input polls the UART status register (never WFI): the virtual board hands control
 * back to the host when the firmware reads the status register with the receiver empty.
 */
#include "board.h"
#include "cortexm.h"
#include "hal.h"
#include "proto.h"
#include "shell.h"

extern uint32_t __model_ram_start, __model_ram_end, __stack_limit;

#ifndef SHELL_INTERBYTE_TIMEOUT_MS
#define SHELL_INTERBYTE_TIMEOUT_MS 200u
#endif
#define STACK_CANARY 0xC0FFEE11u

#define U(off) REG32(BOARD_UART_BASE + (off))
#if defined(BOARD_UART_KIND_V1)
/* stm32-usart-v1 (F1/F2/F4): SR +0x00 (RXNE 5, TXE 7, ORE 3), DR +0x04, BRR +0x08, CR1 +0x0C */
#define UART_STATUS U(0x00u)
#define UART_RXD U(0x04u)
#define UART_TXD U(0x04u)
#define UART_ORE_CLEAR() ((void)U(0x04u)) /* ORE clears by reading SR then DR */
#else
/* stm32-usart-v2 (F7/L4/G0/L5, LPUART): CR1 +0x00, CR3 +0x08, BRR +0x0C, ISR +0x1C, ICR +0x20, RDR +0x24, TDR +0x28 */
#define UART_STATUS U(0x1Cu)
#define UART_RXD U(0x24u)
#define UART_TXD U(0x28u)
#define UART_ORE_CLEAR() (U(0x20u) = (1u << 3)) /* ICR.ORECF */
#endif
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define SR_ORE (1u << 3)

static struct hal_identity identity = {
    BOARD_NAME, BOARD_MCU, BOARD_CORE, BOARD_DEFAULT_CLOCK_HZ, BOARD_RESET_CLOCK_HZ, /* core clock: hal_init */
};

static int use_dwt = 1;
static volatile uint32_t systick_wraps;
static uint32_t timeout_cycles;

void SysTick_Handler(void) { systick_wraps++; }

static void cycle_counter_init(void)
{
    CORE_DEMCR |= DEMCR_TRCENA;
#if defined(BOARD_CORE_M7)
    REG32(0xE0001FB0u) = 0xC5ACCE55u; /* DWT_LAR: the Cortex-M7 DWT ignores software writes while locked */
#endif
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
#if defined(CM_BASELINE)
    /* Armv6-M has no CYCCNT. Use it if it counts (the virtual board models one), else SysTick as a
     * 24-bit down counter at the core clock, extended to 32 bits by its wrap interrupt.
     * UNTESTED ON HARDWARE. */
    uint32_t a = DWT_CYCCNT;
    for (volatile int i = 0; i < 64; i++) {
    }
    if (DWT_CYCCNT == a) {
        use_dwt = 0;
        SYST_RVR = 0x00FFFFFFu;
        SYST_CVR = 0;
        SYST_CSR = 7u; /* ENABLE | TICKINT | CLKSOURCE=processor */
        __asm volatile("cpsie i" ::: "memory");
    }
#endif
}

uint32_t hal_cycles(void)
{
    if (use_dwt) return DWT_CYCCNT;
    uint32_t hi, lo;
    do {
        hi = systick_wraps;
        lo = SYST_CVR;
    } while (hi != systick_wraps);
    return (hi << 24) | (0x00FFFFFFu - (lo & 0x00FFFFFFu));
}

/* the baud divisor at the UART's kernel clock as it runs (USART, 16x oversampling: f / baud; LPUART:
 * 256 * f / baud, computed without 64-bit arithmetic), rounded to nearest */
static uint32_t uart_brr(uint32_t f)
{
#if defined(BOARD_UART_LPUART)
    return (f / BOARD_UART_BAUD) * 256u + ((f % BOARD_UART_BAUD) * 256u + BOARD_UART_BAUD / 2u) / BOARD_UART_BAUD;
#else
    return (f + BOARD_UART_BAUD / 2u) / BOARD_UART_BAUD;
#endif
}

static void uart_init(void)
{
    uint32_t brr = uart_brr(board_uart_clock_hz());
    board_uart_pins_init();
#if defined(BOARD_UART_KIND_V1)
    U(0x0Cu) = 0;                 /* CR1: disabled while configuring */
    U(0x08u) = brr;               /* BRR */
    U(0x0Cu) = (1u << 13) | (1u << 3) | (1u << 2); /* UE | TE | RE, 8N1 */
#else
    U(0x00u) = 0;                 /* CR1: UE = 0 to write BRR/CR3 */
    U(0x08u) |= (1u << 12);       /* CR3.OVRDIS: an overrun drops bytes instead of blocking RX */
    U(0x0Cu) = brr;               /* BRR */
    U(0x00u) = (1u << 3) | (1u << 2) | (1u << 0); /* TE | RE | UE, 8N1 */
#endif
}

void hal_init(void)
{
    cycle_counter_init();
    identity.core_clock_hz = board_core_clock_hz();
    timeout_cycles = SHELL_INTERBYTE_TIMEOUT_MS * (identity.core_clock_hz / 1000u);
    __stack_limit = STACK_CANARY;
    uart_init();
}

const struct hal_identity *hal_identity(void) { return &identity; }
uint32_t hal_flags(void) { return use_dwt ? HELLO_FLAG_DWT : 0u; }
uint32_t hal_timeout_ms(void) { return SHELL_INTERBYTE_TIMEOUT_MS; }

void hal_uart_write(const uint8_t *data, uint32_t len)
{
    while (len--) {
        while (!(UART_STATUS & SR_TXE)) {
        }
        UART_TXD = *data++;
    }
}

int hal_uart_read(int with_timeout)
{
    uint32_t start = hal_cycles();
    for (;;) {
        uint32_t sr = UART_STATUS;
        if (sr & SR_RXNE) return (int)(UART_RXD & 0xFFu);
        if (sr & SR_ORE) UART_ORE_CLEAR();
        if (with_timeout && hal_cycles() - start > timeout_cycles) return HAL_TIMEOUT;
    }
}

void board_uart_poll_discard(void)
{
    uint32_t sr = UART_STATUS;
    if (sr & SR_RXNE) (void)UART_RXD;
    if (sr & SR_ORE) UART_ORE_CLEAR();
}

void hal_model_ram(uint8_t **base, uint32_t *bytes)
{
    *base = (uint8_t *)&__model_ram_start;
    *bytes = (uint32_t)((uintptr_t)&__model_ram_end - (uintptr_t)&__model_ram_start);
}

int hal_stack_ok(void) { return __stack_limit == STACK_CANARY; }

void hal_system_reset(void)
{
    /* let the last byte leave the shift register (bounded) */
    for (volatile uint32_t i = 0; i < identity.core_clock_hz / 1000u; i++) {
    }
    cm_dsb();
    SCB_AIRCR = AIRCR_VECTKEY | AIRCR_SYSRESETREQ;
    cm_dsb();
    for (uint32_t i = 0; i < 1000000u; i++) {
    }
    /* the virtual board may not implement the reset: fall back to a soft reset (already done) */
}

int main(void)
{
    hal_init();
    shell_run();
    return 0;
}
