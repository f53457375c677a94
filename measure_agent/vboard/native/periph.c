/*
 * Peripheral pages (periph.h): one 4 KB page of the peripheral space as a native Unicorn MMIO region.
 * An access is handed to the device attached at its offset (read/write callbacks with the device's state);
 * offsets no device claims behave as the rest of the peripheral space does, a plain register file (with
 * byte and half-word lanes), so that e.g. the F4's RCC registers sharing the FLASH page keep working.
 */
#include <string.h>

#include "periph.h"

void page_init(PeriphPage *p, uint32_t base)
{
    memset(p, 0, sizeof *p);
    p->base = base;
}

int page_attach(PeriphPage *p, uint32_t off, uint32_t size, dev_read_fn rd, dev_write_fn wr, void *dev)
{
    if (p->ndev >= 4 || off + size > 0x1000u) return -1;
    for (int i = 0; i < p->ndev; i++)
        if (off < p->dev[i].off + p->dev[i].size && p->dev[i].off < off + size) return -1;  /* overlap */
    p->dev[p->ndev++] = (PageDevice){off, size, rd, wr, dev};
    return 0;
}

static PageDevice *device_at(PeriphPage *p, uint32_t off)
{
    for (int i = 0; i < p->ndev; i++)
        if (off - p->dev[i].off < p->dev[i].size) return &p->dev[i];
    return NULL;
}

uint64_t periph_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data)
{
    PeriphPage *p = (PeriphPage *)user_data;
    uint32_t off = (uint32_t)offset & 0xFFFu;
    PageDevice *d = device_at(p, off);
    if (d) return d->read(uc, d->dev, off - d->off, size);
    uint32_t v = p->regs[off >> 2] >> (8u * (off & 3u));
    return size >= 4 ? v : v & ((1u << (8u * size)) - 1u);
}

void periph_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user_data)
{
    PeriphPage *p = (PeriphPage *)user_data;
    uint32_t off = (uint32_t)offset & 0xFFFu;
    PageDevice *d = device_at(p, off);
    if (d) {
        d->write(uc, d->dev, off - d->off, size, value);
        return;
    }
    uint32_t shift = 8u * (off & 3u), mask = size >= 4 ? 0xFFFFFFFFu : ((1u << (8u * size)) - 1u) << shift;
    uint32_t *r = &p->regs[off >> 2];
    *r = (*r & ~mask) | (((uint32_t)value << shift) & mask);
}

void periph_stop_board(Model *m, void *uc, int kind, uint32_t addr)
{
    if (m->stop) return;
    uint32_t pc = 0;
    if (m->reg_read) m->reg_read(uc, m->pc_regid, &pc);
    m->stop = STOP_FAULT;
    m->fault_kind = kind;
    m->fault_pc = pc & ~1u;
    m->fault_addr = addr;
    if (m->emu_stop) m->emu_stop(uc);
}
