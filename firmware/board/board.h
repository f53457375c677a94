/* Board layer of the Cortex-M build. BOARD_* facts come from the generated board_config.h
 * (measure_agent/firmware_build.py writes it from costmodel/data/boards.toml). */
#ifndef BOARD_BOARD_H
#define BOARD_BOARD_H
#include <stdint.h>

#include "board_config.h"

void board_early_init(void);        /* flash wait states + accelerator + caches (board_flash.c) */
void board_uart_pins_init(void);     /* RCC clock enables + GPIO alternate functions (board_pins.c) */
void board_uart_poll_discard(void);  /* read and drop one received byte if any (fault halt loop) */

#endif
