/*
 * The energy pin (periph.h): the BSRR word of one GPIO port on its peripheral page, recording every edge of
 * one pin with the core cycle and the instruction count of the store that made it. The firmware sets the
 * pin before a layer and resets it after (firmware/runtime/executor.c); an energy monitor's digital input
 * sees these edges, and the virtual board's power model (vboard/power.py) is switched by them.
 *
 * GPIOx_BSRR (RM0351 8.5.7, RM0008 9.2.5): bit n sets pin n, bit n + 16 resets it, set wins when both are
 * written; a read returns 0. The edges go into a bounded ring buffer (the oldest dropped when it is full,
 * counted), drained from Python.
 */
#include <stdlib.h>
#include <string.h>

#include "periph.h"

int gpio_pin_init(GpioPin *g, Model *m, uint32_t address, uint32_t pin, uint32_t capacity)
{
    free(g->edges);
    memset(g, 0, sizeof *g);
    g->edges = calloc(capacity ? capacity : 1u, sizeof *g->edges);
    if (!g->edges) return -1;
    g->cap = capacity ? capacity : 1u;
    g->m = m;
    g->address = address;
    g->pin = pin;
    return 0;
}

void gpio_pin_release(GpioPin *g)
{
    free(g->edges);
    g->edges = NULL;
    g->cap = g->head = g->count = 0;
}

uint64_t gpio_pin_read(void *uc, void *dev, uint32_t off, unsigned size)
{
    (void)uc; (void)dev; (void)off; (void)size;
    return 0;  /* BSRR is write-only: reads return 0 */
}

void gpio_pin_write(void *uc, void *dev, uint32_t off, unsigned size, uint64_t value)
{
    GpioPin *g = (GpioPin *)dev;
    uint32_t mask = size >= 4 ? 0xFFFFFFFFu : ((1u << (8u * size)) - 1u);
    uint32_t v = ((uint32_t)value & mask) << (8u * (off & 3u));
    int level = g->level;
    if (v & (1u << g->pin)) level = 1;
    else if (v & (1u << (g->pin + 16u))) level = 0;
    if (level == g->level) return;
    g->level = level;
    uint64_t insns = 0;
    uint64_t cycle = mmio_now(g->m, uc, g->address + (off & ~3u), &insns);
    GpioEdge *e = &g->edges[(g->head + g->count) % g->cap];
    if (g->count == g->cap) {  /* full: drop the oldest */
        g->head = (g->head + 1u) % g->cap;
        g->dropped++;
    } else {
        g->count++;
    }
    e->cycle = cycle;
    e->insns = insns;
    e->level = (uint32_t)level;
}
