/*
 * Modelled peripherals of the virtual board (native, no Python per access):
 *
 *   periph.c     a peripheral page: one 4 KB page mapped with uc_mmio_map whose offsets are dispatched to
 *                the devices attached to it; offsets no device claims are a plain register file. Later
 *                models (RCC, PWR: the clock tree) attach to their page the same way.
 *   flashctl.c   the FLASH controller: FLASH_ACR (LATENCY -> the cycle model's wait states, cache resets),
 *                KEYR unlock sequence, SR/CR (LOCK, PG, PER/SER, STRT, BSY, EOP, error flags), page /
 *                sector erase and programming with their datasheet times, the programming rules; the
 *                flash array itself is written by the firmware's stores, seen by a native
 *                UC_HOOK_MEM_WRITE_PROT hook on the (read-only) flash mapping: reads and instruction
 *                fetches never leave Unicorn's fast path.
 *   gpio.c       the energy pin: a GPIO port's BSRR recording one pin's edges with their core cycle
 *   clock.c      the clock tree: RCC (oscillators ON/RDY, PLL configuration and lock, SW/SWS, prescalers) and
 *                PWR (voltage range + VOSF, L4+ boost, F4/F7 over-drive); HCLK above what FLASH_ACR.LATENCY or
 *                the voltage level allows stops the board with FAULT_CLOCK; the running clock times the
 *                FLASH controller's operations and the UART's baud rate
 *   periph_py.c  the CPython types (PeriphPage, FlashCtl, GpioPin, ClockTree) and module functions, like module.c
 *
 * A rule violation (a write to flash outside an unlocked PG sequence, a double word programmed twice, a
 * wrong key, CR written while locked ...) stops the board with FAULT_FLASH and a message naming the
 * flag the hardware sets (faults on, the default) or only sets that flag (faults off).
 */
#ifndef VBOARD_PERIPH_H
#define VBOARD_PERIPH_H

#include <stdbool.h>
#include <stdint.h>

#include "cyclemodel.h"

#pragma GCC visibility push(hidden)

/* Model.fault_kind when a peripheral model stopped the board (module constants FAULT_FLASH, FAULT_CLOCK) */
#define FAULT_FLASH 16
#define FAULT_CLOCK 17

/* ------------------------------------------------------------ peripheral pages (periph.c) */
typedef uint64_t (*dev_read_fn)(void *uc, void *dev, uint32_t off, unsigned size);
typedef void (*dev_write_fn)(void *uc, void *dev, uint32_t off, unsigned size, uint64_t value);

typedef struct {
    uint32_t off, size;          /* the device's offsets in the page: [off, off + size) */
    dev_read_fn read;
    dev_write_fn write;
    void *dev;
} PageDevice;

typedef struct {
    uint32_t base;               /* page address (4 KB aligned) */
    int ndev;
    PageDevice dev[4];
    uint32_t regs[1024];         /* offsets no device claims: a plain register file */
} PeriphPage;

void page_init(PeriphPage *p, uint32_t base);
int page_attach(PeriphPage *p, uint32_t off, uint32_t size, dev_read_fn rd, dev_write_fn wr, void *dev);
uint64_t periph_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data);
/* a peripheral model found a fault: stop the board (FAULT_* kind, at the running instruction) unless stopped */
void periph_stop_board(Model *m, void *uc, int kind, uint32_t addr);
void periph_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user_data);

/* ------------------------------------------------------------ the energy pin (gpio.c) */
typedef struct {
    uint64_t cycle;              /* model cycles before the store that made the edge */
    uint64_t insns;              /* instructions retired before it */
    uint32_t level;              /* the pin's level after it */
} GpioEdge;

typedef struct {
    uint32_t address;            /* the BSRR register's address */
    uint32_t pin;                /* 0..15 */
    int level;
    GpioEdge *edges;             /* ring buffer of cap edges: count of them from head */
    uint32_t cap, head, count;
    uint64_t dropped;            /* edges lost to a full buffer */
    Model *m;
} GpioPin;

int gpio_pin_init(GpioPin *g, Model *m, uint32_t address, uint32_t pin, uint32_t capacity);
void gpio_pin_release(GpioPin *g);
uint64_t gpio_pin_read(void *uc, void *dev, uint32_t off, unsigned size);
void gpio_pin_write(void *uc, void *dev, uint32_t off, unsigned size, uint64_t value);

/* ------------------------------------------------------------ the FLASH controller (flashctl.c) */
enum { FC_PAGE_NUMBER = 0, FC_SECTOR = 1, FC_PAGE_ADDRESS = 2 };

typedef struct {
    uint32_t base, bytes, number, bank;  /* one erase unit: address, size, PNB/SNB, bank (0/1) */
    uint64_t erase_cycles;               /* its erase time in core cycles */
} FcUnit;

typedef struct {
    /* configuration (from costmodel's families.toml flash_ctl and boards.toml flash_layout) */
    int style;                           /* FC_* */
    uint32_t off;                        /* offset of FLASH_ACR in its page */
    uint32_t acr, keyr, sr, cr, ar;      /* register offsets from FLASH_ACR (ar: UINT32_MAX = none) */
    uint32_t key1, key2;
    uint32_t sr_busy, sr_eop, sr_errors;
    int eop_needs_eopie;
    uint32_t cr_pg, cr_erase, cr_strt, cr_lock, cr_eopie, cr_bank;   /* bit masks (0 = none) */
    uint32_t number_shift, number_mask, psize_mask, psize_bits;
    uint32_t acr_latency_mask, acr_icrst, acr_dcrst;
    uint32_t prog_bytes;                 /* 8 (double word + ECC), 4 (PSIZE x32), 2 (half word) */
    uint64_t prog_cycles;                /* one programming, in core cycles */
    FcUnit *units;
    uint32_t nunits;
    uint8_t *mem;                        /* host buffer of the flash (persistent: vboard FlashMemory) */
    uint32_t flash_base, flash_size;
    uint8_t *programmed;                 /* per programming unit: written since its erase (ECC rule) */
    uint32_t *erase_counts;              /* per erase unit: erases done (persistent) */
    int faults;                          /* rule violations stop the board */
    Model *m;
    /* state */
    uint32_t acr_v, sr_v, cr_v, ar_v;
    uint32_t other[64];                  /* other registers of the block (OPTKEYR, OPTR, ...): a register file */
    int locked, key_stage, key_dead;     /* key_dead: a wrong key sequence locks until reset */
    int busy;
    uint64_t busy_until;                 /* model cycle at which the operation completes */
    uint32_t pend_addr;                  /* page-number style: first word of a double word written (else ~0) */
    /* statistics and the last fault */
    uint64_t n_programs, n_erases, n_faults, stall_cycles;
    uint32_t fault_addr;
    char fault[240];
    /* the clock tree, when modelled (clock.c): operation times scale with HCLK / ref_hz; an ACR write
     * re-checks the running clock against the new latency */
    const uint32_t *hclk_hz;
    uint32_t ref_hz;
    void (*on_acr)(void *uc, void *clock);
    void *clock;
} FlashCtl;

int flashctl_init(FlashCtl *fc, uint32_t nunits);
void flashctl_release(FlashCtl *fc);
void flashctl_reset(FlashCtl *fc, uint32_t acr_reset);
uint64_t flashctl_read(void *uc, void *dev, uint32_t off, unsigned size);
void flashctl_write(void *uc, void *dev, uint32_t off, unsigned size, uint64_t value);
/* UC_HOOK_MEM_WRITE_PROT on the flash range (user_data = FlashCtl *): a firmware store to flash */
bool flashctl_write_hook(void *uc, int type, uint64_t address, int size, int64_t value, void *user_data);

/* ------------------------------------------------------------ the clock tree (clock.c) */
#define CLK_MAX_OSC 4
#define CLK_PLL 7                        /* source index of the PLL (oscillators are 0 .. nosc-1) */

typedef struct {
    uint32_t on, rdy, byp;               /* RCC_CR masks (byp 0: none) */
    uint32_t hz, startup_ns;
    int needs_byp;                       /* only an external clock on OSC_IN (no crystal fitted): RDY with BYP */
    int reset_on;
    /* state */
    int running;
    uint64_t ready_at;                   /* model time (ns) */
} ClkOsc;

typedef struct {
    /* configuration (costmodel/data/clocks.toml, from peripherals.py) */
    uint32_t cr, cfgr, pllcfgr, pllcfgr_reset;   /* RCC register offsets */
    int nosc;
    ClkOsc osc[CLK_MAX_OSC];
    char osc_name[CLK_MAX_OSC][8];
    uint32_t pll_on, pll_rdy, pll_lock_ns;
    uint32_t sw_shift, sw_mask, sws_shift;       /* sw_mask unshifted */
    int sw_src[8];                               /* SW code -> source (-1 reserved) */
    uint32_t hpre_shift, ppre_shift[2];
    int nppre;
    uint32_t src_shift, src_bits;                /* PLLSRC */
    int src_osc[4];                              /* PLLSRC code -> oscillator (-1: none) */
    uint32_t src_div[4];                         /* fixed predivider (F1 HSI/2) */
    int src_uses_m[4];                           /* PLLM applies to this input (not to the F1's HSI/2) */
    uint32_t m_shift, m_bits, m_add, n_shift, n_bits, n_add, r_shift, r_bits, r_kind, r_enable;
    uint32_t vco_in_lo, vco_in_hi, vco_out_lo, vco_out_hi;
    uint32_t ws_max_hz[16], n_ws;                /* highest HCLK at each latency */
    int vstyle;                                  /* 0 none, 1 vos, 2 over-drive */
    uint32_t v_cr, v_sr, vos_shift, vos_bits, vosf, boost_off, boost_mask, vos_reset, v_ns;
    uint32_t od_csr, oden, odswen, odrdy, odswrdy;
    uint32_t level_max_hz[8];                    /* by level index: VOS code * 2 + (boost | over-drive) */
    char level_name[8][24];
    uint32_t reset_hz;
    Model *m;
    FlashCtl *fc;                                /* FLASH_ACR.LATENCY */
    /* state */
    uint32_t rcc[256], pwr[256];                 /* register files of the two blocks */
    int sws;                                     /* running SYSCLK source */
    int pll_running;
    uint64_t pll_ready_at;
    uint32_t vos_eff, vos_pend;                  /* VOS in effect / written (VOSF while they differ) */
    uint64_t vos_at, od_at, odsw_at;             /* model times of the voltage transitions (0: not started) */
    int od_on, odsw_on;
    uint32_t sysclk, hclk, pclk[2];
    uint64_t t_base, cyc_base;                   /* model time (ns) = t_base + (cycles - cyc_base) / hclk */
    uint64_t n_switches, n_faults;
    char note[200];                              /* why a wait cannot end (PLL cannot lock, SW pending) */
    char fault[240];
    char flash_fault_msg[220];                   /* the flash as configured cannot be read: why (Model.flash_fault) */
} ClockTree;

void clock_reset(ClockTree *c);
uint64_t clock_now_ns(ClockTree *c);
uint64_t rcc_read(void *uc, void *dev, uint32_t off, unsigned size);
void rcc_write(void *uc, void *dev, uint32_t off, unsigned size, uint64_t value);
uint64_t pwr_read(void *uc, void *dev, uint32_t off, unsigned size);
void pwr_write(void *uc, void *dev, uint32_t off, unsigned size, uint64_t value);
void clock_check_acr(void *uc, void *clock);     /* FlashCtl.on_acr */
uint32_t clock_level(ClockTree *c);             /* the voltage level in effect (index of level_name) */

#pragma GCC visibility pop

#endif /* VBOARD_PERIPH_H */
