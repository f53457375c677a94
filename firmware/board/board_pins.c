/*
 * UART pin/clock set-up. The per-board register writes (RCC clock enables, PWR VDDIO2, GPIO
 * alternate functions) are data in the generated board_config.h (BOARD_INIT_WRITES, from the
 * table in measure_agent/firmware_build.py) and are applied by board_early_init(); nothing is
 * left to do here. Kept as a hook for boards that need code (e.g. waiting for a clock ready bit,
 * which must be bounded: the virtual board's peripherals are a plain register file).
 * UNTESTED ON HARDWARE.
 */
#include "board.h"

void board_uart_pins_init(void) {}
