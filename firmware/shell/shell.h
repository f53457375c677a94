#ifndef SHELL_SHELL_H
#define SHELL_SHELL_H
#include <stdint.h>

/* Runs the protocol loop; returns only when the host build's input closes. */
void shell_run(void);

/* Sends an unsolicited FAULT frame with `n` little-endian words (see PROTOCOL.md). Usable from
 * fault handlers: needs only the UART and a static buffer. */
void shell_send_fault(const uint32_t *words, uint32_t n);

#define FAULT_STACK_OVERFLOW 0x100u  /* pseudo exception number: stack canary overwritten */
#endif
