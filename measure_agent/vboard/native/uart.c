/*
 * The UART's 4 KB page as a native Unicorn MMIO region (uc_mmio_map with uart_mmio_read /
 * uart_mmio_write, user_data = the Uart state): RX / TX FIFOs, the status / data registers of the
 * two STM32 layouts and the idle rule (two status reads in a row with the RX FIFO empty ->
 * uc_emu_stop, idle flag).  The callbacks run while Python has released the GIL (uc_emu_start
 * through ctypes): the FIFOs are protected by a mutex so that another thread may write/read them
 * (module.c: Uart.write/read) during a run.
 *
 * Layouts: stm32-usart-v1 (SR +0x00: RXNE bit 5, TC bit 6, TXE bit 7; DR +0x04) and stm32-usart-v2
 * (ISR +0x1C: RXNE 5, TC 6, TXE 7, TEACK 21, REACK 22; RDR +0x24; TDR +0x28).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cyclemodel.h"

void uart_init(Uart *u, int v2, uint32_t off)
{
    pthread_mutex_init(&u->lock, NULL);
    u->uart_off = off;
    if (v2) { u->status = 0x1C; u->rdr = 0x24; u->tdr = 0x28; u->status_extra = (1u << 21) | (1u << 22); }
    else { u->status = 0x00; u->rdr = 0x04; u->tdr = 0x04; u->status_extra = 0; }
}

void uart_release(Uart *u)
{
    free(u->rx); free(u->tx);
    pthread_mutex_destroy(&u->lock);
}

/* ------------------------------------------------------------ baud rate */
/* A UART receiver samples each bit at its own rate: beyond ~3 % between both ends the stop bit is misread
 * (RM0351 "Tolerance of the USART receiver to clock deviation": 3.75 % at 16x oversampling, shared by both
 * ends; the check uses the receiver's half of it plus margin) */
#define BAUD_TOLERANCE 0.03

static int baud_ok(Uart *u)
{
    uint32_t brr = (uint32_t)u->regs[(u->uart_off + u->brr_off) >> 2];
    /* BRR never written: a bare test program's plain-byte UART (as FLASH_ACR resets to the catalogue's
     * latency for them); the firmware always programs it */
    if (!u->kernel_hz || !brr) return 1;
    double f = (double)*u->kernel_hz, baud = 0.0;
    baud = u->lpuart ? 256.0 * f / brr : f / (brr & 0xFFFFu);
    double err = baud / u->host_baud - 1.0;
    if (err <= BAUD_TOLERANCE && err >= -BAUD_TOLERANCE) return 1;
    u->garbled++;
    if (!u->baud_fault[0])
        snprintf(u->baud_fault, sizeof u->baud_fault, "UART baud rate: BRR = %u at a %.6g MHz kernel clock is %.0f "
                 "baud, the host runs %u (%+.1f %%): the bytes are garbage (BRR must follow the clock that runs)",
                 brr, f / 1e6, baud, u->host_baud, err * 100.0);
    return 0;
}

void uart_set_baud_check(Uart *u, const uint32_t *kernel_hz, uint32_t brr_off, uint32_t host_baud, int lpuart)
{
    pthread_mutex_lock(&u->lock);
    u->kernel_hz = kernel_hz; u->brr_off = brr_off; u->host_baud = host_baud ? host_baud : 115200u;
    u->lpuart = lpuart; u->garbled = 0; u->baud_fault[0] = 0;
    pthread_mutex_unlock(&u->lock);
}

/* ------------------------------------------------------------ MMIO callbacks (run without the GIL) */
uint64_t uart_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data)
{
    Uart *u = (Uart *)user_data;
    (void)size;
    uint32_t rel = (uint32_t)offset - u->uart_off;
    uint64_t v;
    pthread_mutex_lock(&u->lock);
    if (rel == u->status) {
        v = (1u << 7) | (1u << 6) | u->status_extra;  /* TXE, TC: the transmitter is always ready */
        if (u->rx_len) {
            v |= 1u << 5;  /* RXNE */
            u->polls = 0;
        } else if (++u->polls >= 2) {  /* polling an empty receiver: idle */
            u->idle = 1;
            pthread_mutex_unlock(&u->lock);
            if (u->emu_stop) u->emu_stop(uc);
            return v;
        }
    } else if (rel == u->rdr) {
        u->polls = 0;
        v = 0;
        if (u->rx_len) {
            v = u->rx[u->rx_head++];
            if (--u->rx_len == 0) u->rx_head = 0;
            if (!baud_ok(u)) v = 0; /* a wrong baud: what the receiver assembles is not the host's byte */
        }
    } else {
        v = u->regs[((uint32_t)offset & 0xFFFu) >> 2];
    }
    pthread_mutex_unlock(&u->lock);
    return v;
}

static int uart_tx_push(Uart *u, uint8_t c)
{
    if (u->tx_len == u->tx_cap) {
        size_t cap = u->tx_cap ? u->tx_cap * 2 : 4096;
        uint8_t *p = realloc(u->tx, cap);
        if (!p) return -1;
        u->tx = p; u->tx_cap = cap;
    }
    u->tx[u->tx_len++] = c;
    return 0;
}

void uart_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user_data)
{
    Uart *u = (Uart *)user_data;
    (void)uc; (void)size;
    uint32_t rel = (uint32_t)offset - u->uart_off;
    pthread_mutex_lock(&u->lock);
    if (rel == u->tdr) {
        if (baud_ok(u)) uart_tx_push(u, (uint8_t)(value & 0xFF));  /* out of memory: the byte is lost */
        u->polls = 0;
    } else {
        u->regs[((uint32_t)offset & 0xFFFu) >> 2] = value;
    }
    pthread_mutex_unlock(&u->lock);
}

/* ------------------------------------------------------------ host side (module.c, with the GIL) */
/* host -> board: appended to the RX FIFO; -1 when out of memory (nothing appended) */
int uart_rx_append(Uart *u, const void *data, size_t n)
{
    pthread_mutex_lock(&u->lock);
    if (u->rx_head && u->rx_head + u->rx_len + n > u->rx_cap) {
        memmove(u->rx, u->rx + u->rx_head, u->rx_len);
        u->rx_head = 0;
    }
    if (u->rx_len + n > u->rx_cap) {
        size_t cap = u->rx_cap ? u->rx_cap : 4096;
        while (cap < u->rx_len + n) cap *= 2;
        uint8_t *p = realloc(u->rx, cap);
        if (!p) { pthread_mutex_unlock(&u->lock); return -1; }
        u->rx = p; u->rx_cap = cap;
    }
    if (n) memcpy(u->rx + u->rx_head + u->rx_len, data, n);
    u->rx_len += n;
    pthread_mutex_unlock(&u->lock);
    return 0;
}

/* board -> host in two steps: uart_tx_begin locks and returns the TX bytes so far; the caller
 * copies them and calls uart_tx_end (drained = 1 empties the buffer), which unlocks */
const uint8_t *uart_tx_begin(Uart *u, size_t *len)
{
    pthread_mutex_lock(&u->lock);
    *len = u->tx_len;
    return u->tx;
}

void uart_tx_end(Uart *u, int drained)
{
    if (drained) u->tx_len = 0;
    pthread_mutex_unlock(&u->lock);
}

/* empty both FIFOs */
void uart_clear(Uart *u)
{
    pthread_mutex_lock(&u->lock);
    u->rx_head = u->rx_len = 0; u->tx_len = 0; u->polls = 0; u->idle = 0;
    pthread_mutex_unlock(&u->lock);
}

/* power-on state of the register file and the idle detector (FIFOs kept) */
void uart_reset_regs(Uart *u)
{
    pthread_mutex_lock(&u->lock);
    memset(u->regs, 0, sizeof u->regs); u->polls = 0; u->idle = 0;
    u->garbled = 0; u->baud_fault[0] = 0;
    pthread_mutex_unlock(&u->lock);
}

/* a run() starts: the poll counter and the idle flag are cleared */
void uart_begin_run(Uart *u)
{
    pthread_mutex_lock(&u->lock);
    u->polls = 0; u->idle = 0;
    pthread_mutex_unlock(&u->lock);
}

size_t uart_rx_pending(Uart *u)
{
    pthread_mutex_lock(&u->lock); size_t n = u->rx_len; pthread_mutex_unlock(&u->lock);
    return n;
}

size_t uart_tx_pending(Uart *u)
{
    pthread_mutex_lock(&u->lock); size_t n = u->tx_len; pthread_mutex_unlock(&u->lock);
    return n;
}

void uart_set_idle(Uart *u, int on)
{
    pthread_mutex_lock(&u->lock); u->idle = on; pthread_mutex_unlock(&u->lock);
}
