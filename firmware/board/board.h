/* Board layer of the Cortex-M build. BOARD_* facts come from the generated board_config.h
 * (measure_agent/firmware_build.py writes it from costmodel/data/boards.toml). */
#ifndef BOARD_BOARD_H
#define BOARD_BOARD_H
#include <stdint.h>

#include "board_config.h"

void board_early_init(void);        /* flash wait states + accelerator + caches + clock tree (board_init.c) */
void board_uart_pins_init(void);     /* RCC clock enables + GPIO alternate functions (board_pins.c) */
void board_uart_poll_discard(void);  /* read and drop one received byte if any (fault halt loop) */

/* the clock tree (clock.c): board_clock_init() returns and remembers one of these */
enum { CLOCK_OK = 0, CLOCK_NOT_SET = 1, CLOCK_FAIL_OSC = 2, CLOCK_FAIL_VOLTAGE = 3, CLOCK_FAIL_PLL = 4,
       CLOCK_FAIL_LATENCY = 5, CLOCK_FAIL_SWITCH = 6 };
int board_clock_init(void);          /* reset clock -> BOARD_CLOCK_HZ; on a failure the core stays at reset */
uint32_t board_core_clock_hz(void);  /* the clock the core runs at */
uint32_t board_uart_clock_hz(void);  /* the UART's kernel clock (its APB's PCLK) */
int board_clock_status(void);

#endif
