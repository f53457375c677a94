/*
 * Host build of the firmware shell: the same protocol code (shell.c, crc.c) with the "UART" on file
 * descriptors (default stdin/stdout), so the protocol can be tested end to end in milliseconds.
 *
 *   shell_host [--in-fd N] [--out-fd N] [--timeout-ms MS] [--model-ram BYTES]
 *              [--flash-bytes N] [--flash-slot-bytes N] [--flash-program-bytes 2|4|8]
 *              [--flash-endurance N] [--flash-first-slot N] [--flash-file PATH]
 *
 * The cycle counter is CLOCK_MONOTONIC in nanoseconds (reported clock: 1 GHz).
 * Flash slots (--flash-bytes > 0): a buffer at flash address 0x08000000 divided into slots of
 * --flash-slot-bytes (at most 32), each its own erase unit; programming follows the ECC rule of the
 * L4-class parts (a unit is programmed once after an erase, else PROGERR 0x8). --flash-file keeps the
 * flash in a file (created erased), so erase counts survive a restart of the shell.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

/* ---- emulated flash ---- */
#define HOST_FLASH_BASE 0x08000000u
#define HOST_FLASH_PROGERR 0x8u
static uint8_t *flash_mem, *flash_programmed;
static uint32_t flash_bytes, flash_slot_bytes = 4096u, flash_first;
static const char *flash_file;
static struct hal_flash_slot flash_slots[32];
static struct hal_flash flash_info = {.program_bytes = 8u, .endurance = 10000u};

static int flash_setup(void)
{
    if (!flash_bytes) return 0;
    uint32_t n = flash_bytes / flash_slot_bytes;
    if (n > 32u) n = 32u;
    flash_bytes = n * flash_slot_bytes;
    if (flash_file) {
        int fd = open(flash_file, O_RDWR | O_CREAT, 0644);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0) return -1;
        int fresh = (uint64_t)sb.st_size < flash_bytes;
        if (fresh && ftruncate(fd, flash_bytes) != 0) return -1;
        flash_mem = mmap(0, flash_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (flash_mem == MAP_FAILED) return -1;
        if (fresh) memset(flash_mem, 0xFF, flash_bytes);
    } else {
        flash_mem = malloc(flash_bytes);
        if (!flash_mem) return -1;
        memset(flash_mem, 0xFF, flash_bytes);
    }
    uint32_t pb = flash_info.program_bytes, units = flash_bytes / pb;
    flash_programmed = calloc(units, 1);
    if (!flash_programmed) return -1;
    for (uint32_t u = 0; u < units; u++) { /* a kept file: what is not erased was programmed */
        for (uint32_t k = 0; k < pb; k++)
            if (flash_mem[u * pb + k] != 0xFFu) { flash_programmed[u] = 1; break; }
    }
    for (uint32_t i = 0; i < n; i++) {
        flash_slots[i].base = HOST_FLASH_BASE + i * flash_slot_bytes;
        flash_slots[i].bytes = flash_slot_bytes;
    }
    flash_info.nslots = n;
    flash_info.first = flash_first < n ? flash_first : n;
    flash_info.slots = flash_slots;
    return 0;
}

const struct hal_flash *hal_flash(void) { return &flash_info; }

const uint8_t *hal_flash_ptr(uint32_t addr)
{
    static const uint8_t erased[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                       0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    if (!flash_mem || addr < HOST_FLASH_BASE || addr - HOST_FLASH_BASE >= flash_bytes) return erased;
    return flash_mem + (addr - HOST_FLASH_BASE);
}

uint32_t hal_flash_erase_slot(uint32_t slot)
{
    if (slot < flash_info.first || slot >= flash_info.nslots) return 0x2u;
    uint32_t off = slot * flash_slot_bytes, pb = flash_info.program_bytes;
    memset(flash_mem + off, 0xFF, flash_slot_bytes);
    memset(flash_programmed + off / pb, 0, flash_slot_bytes / pb);
    flash_info.erases++;
    return 0;
}

uint32_t hal_flash_program(uint32_t addr, const uint8_t *src, uint32_t n)
{
    uint32_t pb = flash_info.program_bytes;
    if (!flash_mem || (addr | n) % pb || addr < flash_slots[flash_info.first].base ||
        addr - HOST_FLASH_BASE + (uint64_t)n > flash_bytes)
        return 0x20u; /* PGAERR */
    uint32_t off = addr - HOST_FLASH_BASE;
    for (uint32_t i = 0; i < n; i += pb) {
        int blank = 1;
        for (uint32_t k = 0; k < pb; k++) blank &= src[i + k] == 0xFFu;
        if (blank) continue;
        if (flash_programmed[(off + i) / pb]) return HOST_FLASH_PROGERR;
        memcpy(flash_mem + off + i, src + i, pb);
        flash_programmed[(off + i) / pb] = 1;
        flash_info.programs++;
    }
    return 0;
}

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
        else if (!strcmp(argv[i], "--flash-bytes")) flash_bytes = (uint32_t)v;
        else if (!strcmp(argv[i], "--flash-slot-bytes")) flash_slot_bytes = (uint32_t)v;
        else if (!strcmp(argv[i], "--flash-program-bytes")) flash_info.program_bytes = (uint32_t)v;
        else if (!strcmp(argv[i], "--flash-endurance")) flash_info.endurance = (uint32_t)v;
        else if (!strcmp(argv[i], "--flash-first-slot")) flash_first = (uint32_t)v;
        else if (!strcmp(argv[i], "--flash-file")) flash_file = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (posix_memalign((void **)&model_ram, 16, model_ram_bytes) != 0) return 1;
    if (flash_info.program_bytes != 2u && flash_info.program_bytes != 4u && flash_info.program_bytes != 8u) {
        fprintf(stderr, "--flash-program-bytes must be 2, 4 or 8\n");
        return 2;
    }
    if (flash_slot_bytes < 512u || flash_slot_bytes % 8u) {
        fprintf(stderr, "--flash-slot-bytes must be a multiple of 8, at least 512\n");
        return 2;
    }
    if (flash_setup() != 0) {
        perror("flash");
        return 1;
    }
    hal_init();
    shell_run();
    return 0;
}
