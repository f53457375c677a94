/*
 * Host build of the firmware shell: the same protocol code (shell.c, crc.c) with the "UART" on file
 * descriptors (default stdin/stdout), so the protocol can be tested end to end in milliseconds.
 *
 *   shell_host [--in-fd N] [--out-fd N] [--timeout-ms MS] [--model-ram BYTES]
 *
 * The cycle counter is CLOCK_MONOTONIC in nanoseconds (reported clock: 1 GHz).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../hal.h"
#include "../proto.h"
#include "../shell.h"

static int in_fd = 0, out_fd = 1;
static uint32_t timeout_ms = 100;
static uint8_t *model_ram;
static uint32_t model_ram_bytes = 4u << 20;
static uint8_t inbuf[4096];
static size_t in_pos, in_len;

static const struct hal_identity id = {"host", "host", "host", 1000000000u, 1000000000u};

void hal_init(void) {}
const struct hal_identity *hal_identity(void) { return &id; }
uint32_t hal_flags(void) { return HELLO_FLAG_HOST; }
uint32_t hal_timeout_ms(void) { return timeout_ms; }

void hal_uart_write(const uint8_t *data, uint32_t len)
{
    while (len) {
        ssize_t n = write(out_fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            exit(0); /* reader went away */
        }
        data += n;
        len -= (uint32_t)n;
    }
}

int hal_uart_read(int with_timeout)
{
    while (in_pos >= in_len) {
        struct pollfd p = {.fd = in_fd, .events = POLLIN};
        int r = poll(&p, 1, with_timeout ? (int)timeout_ms : -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            return HAL_EOF;
        }
        if (r == 0) return HAL_TIMEOUT;
        ssize_t n = read(in_fd, inbuf, sizeof inbuf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return HAL_EOF;
        in_pos = 0;
        in_len = (size_t)n;
    }
    return inbuf[in_pos++];
}

uint32_t hal_cycles(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

void hal_model_ram(uint8_t **base, uint32_t *bytes)
{
    *base = model_ram;
    *bytes = model_ram_bytes;
}

int hal_stack_ok(void) { return 1; }
void hal_system_reset(void) {}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        long v = strtol(argv[i + 1], 0, 0);
        if (!strcmp(argv[i], "--in-fd")) in_fd = (int)v;
        else if (!strcmp(argv[i], "--out-fd")) out_fd = (int)v;
        else if (!strcmp(argv[i], "--timeout-ms")) timeout_ms = (uint32_t)v;
        else if (!strcmp(argv[i], "--model-ram")) model_ram_bytes = (uint32_t)v;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (posix_memalign((void **)&model_ram, 16, model_ram_bytes) != 0) return 1;
    hal_init();
    shell_run();
    return 0;
}
