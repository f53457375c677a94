/*
 * Platform layer of the firmware shell. Two implementations:
 *   firmware/board/hal_stm32.c  - Cortex-M targets (polled UART, DWT CYCCNT / SysTick)
 *   firmware/shell/host/hal_host.c - host build (UART over file descriptors, for tests)
 */
#ifndef SHELL_HAL_H
#define SHELL_HAL_H

#include <stdint.h>

struct hal_identity {
    const char *target;         /* catalogue board name, "host" for the host build */
    const char *mcu;
    const char *core;           /* cortex-m0plus | cortex-m3 | cortex-m4 | cortex-m7 | cortex-m33 | host */
    uint32_t default_clock_hz;  /* clock latency is reported at: latency = cycles / default_clock_hz */
    uint32_t reset_clock_hz;    /* clock the core actually runs at (no PLL set-up) */
};

void hal_init(void);
const struct hal_identity *hal_identity(void);
uint32_t hal_flags(void);                 /* HELLO_FLAG_DWT / HELLO_FLAG_HOST */
uint32_t hal_timeout_ms(void);            /* inter-byte timeout */

void hal_uart_write(const uint8_t *data, uint32_t len);
/* Next received byte (0..255). With with_timeout != 0, returns HAL_TIMEOUT when no byte arrives
 * within the inter-byte timeout; otherwise waits (by polling the UART status register) forever.
 * The host build returns HAL_EOF when its input is closed. */
int hal_uart_read(int with_timeout);
#define HAL_TIMEOUT (-1)
#define HAL_EOF (-2)

uint32_t hal_cycles(void);                /* free-running cycle counter (wraps at 2^32) */
void hal_model_ram(uint8_t **base, uint32_t *bytes);
int hal_stack_ok(void);                   /* 0 if the stack canary was overwritten */
void hal_system_reset(void);              /* hard reset; returns if the platform cannot */

#endif
