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
    uint32_t core_clock_hz;     /* clock the core actually runs at (the reset clock if the clock set-up failed) */
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

/* ---- flash slots: where plans are programmed when their constants live in flash (slots.c) ----
 * Addresses are 32-bit flash addresses (the MCU's; the host build maps them onto a buffer). */
struct hal_flash_slot {
    uint32_t base, bytes;
};
struct hal_flash {
    uint32_t nslots;                      /* slots of the board's grid (0: no flash placement) */
    uint32_t first;                       /* first slot above the firmware image */
    const struct hal_flash_slot *slots;
    uint32_t program_bytes;               /* programming unit: ranges are multiples of it, aligned to it */
    uint32_t endurance;                   /* erase cycles per erase unit the datasheet guarantees */
    uint32_t erases;                      /* erase units erased since boot */
    uint32_t programs;                    /* program units written since boot */
};
const struct hal_flash *hal_flash(void);
const uint8_t *hal_flash_ptr(uint32_t addr);   /* readable pointer to flash address addr */
/* Erase every erase unit of slot `slot`: 0, or the controller's error flags (never 0 on failure). */
uint32_t hal_flash_erase_slot(uint32_t slot);
/* Program n bytes from src (RAM, any alignment) at flash address addr (erased); n and addr multiples of
 * program_bytes. Units that are all 0xFF are left erased. 0, or the controller's error flags. */
uint32_t hal_flash_program(uint32_t addr, const uint8_t *src, uint32_t n);

#endif
