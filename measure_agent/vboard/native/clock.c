/*
 * The clock tree of the virtual board (periph.h): the RCC and PWR registers a clock set-up touches, decoded
 * with the family's layout from costmodel/data/clocks.toml (the same the firmware build encodes with), as the
 * reference manuals describe them (RM0008, RM0386, RM0410, RM0444, RM0351, RM0432, RM0438):
 *
 *   RCC_CR      oscillator ON -> RDY after its start-up time (an HSE with no crystal fitted only with HSEBYP,
 *               the Nucleo's ST-LINK MCO); PLLON -> PLLRDY after the lock time, only if its input runs and
 *               the VCO input / output are in range; the running SYSCLK source (and the PLL's input while
 *               the PLL is SYSCLK) cannot be switched off
 *   PLLCFGR     PLLSRC, M, N, R (+ REN): written only while the PLL is off (else a fault)
 *   CFGR        SW -> SWS once the selected source is ready (a source that never becomes ready leaves SWS
 *               unchanged: the firmware's wait on SWS times out); HPRE / PPRE divide HCLK / PCLK
 *   PWR         VOS range (VOSF while it changes), L4+ range 1 boost (CR5.R1MODE), F4/F7 over-drive
 *               (ODEN -> ODRDY, ODSWEN -> ODSWRDY)
 *
 * Whenever HCLK rises (SWS change, HPRE), FLASH_ACR.LATENCY is written or the voltage level changes, HCLK is
 * checked against the flash's wait-state table and the voltage level's maximum: above either, silicon fetches
 * wrong instructions from flash; the model stops the board with FAULT_CLOCK and a message naming the clock,
 * the latency and the level.
 *
 * Time: oscillator / PLL / regulator delays are in ns of model time, which advances with the model's cycles at
 * the HCLK that runs (rebased at every HCLK change). HCLK / PCLK are published (hclk, pclk[]) for the FLASH
 * controller's operation times and the UART's baud rate.
 */
#include <stdio.h>
#include <string.h>

#include "periph.h"

static const uint32_t HPRE_DIV[16] = {1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 16, 64, 128, 256, 512};
static const uint32_t PPRE_DIV[8] = {1, 1, 1, 1, 2, 4, 8, 16};

uint64_t clock_now_ns(ClockTree *c)
{
    uint64_t d = c->m->cycles > c->cyc_base ? c->m->cycles - c->cyc_base : 0;
    if (!c->hclk) return c->t_base;
    return c->t_base + d / c->hclk * 1000000000ull + d % c->hclk * 1000000000ull / c->hclk; /* no overflow */
}

static uint32_t field(uint32_t v, uint32_t shift, uint32_t bits)
{
    return bits ? (v >> shift) & ((1u << bits) - 1u) : 0u;
}

/* ------------------------------------------------------------ sources */
static int osc_ready(ClockTree *c, int i, uint64_t now)
{
    ClkOsc *o = &c->osc[i];
    if (!o->running || now < o->ready_at) return 0;
    return !o->needs_byp || (c->rcc[c->cr >> 2] & o->byp);
}

/* PLL output in Hz from PLLCFGR (0: no input), with why it cannot lock */
static uint32_t pll_hz(ClockTree *c, int *input, const char **why)
{
    uint32_t cfg = c->rcc[c->pllcfgr >> 2];
    uint32_t code = field(cfg, c->src_shift, c->src_bits);
    *input = code < 4 ? c->src_osc[code] : -1;
    *why = NULL;
    if (*input < 0) { *why = "PLLSRC selects no clock"; return 0; }
    uint64_t fin = c->osc[*input].hz / (c->src_div[code] ? c->src_div[code] : 1u);
    if (c->src_uses_m[code] && c->m_bits) {
        uint32_t mdiv = field(cfg, c->m_shift, c->m_bits) + c->m_add;
        if (!mdiv) { *why = "PLLM = 0 (a reserved value)"; return 0; }
        fin /= mdiv;
    }
    uint32_t n = field(cfg, c->n_shift, c->n_bits) + c->n_add;
    uint64_t vco = fin * n;
    uint32_t r = 1, rc = field(cfg, c->r_shift, c->r_bits);
    if (c->r_kind == 1) r = 2u * (rc + 1u);
    else if (c->r_kind == 2) r = rc + 1u;
    if (c->r_kind == 2 && rc == 0) { *why = "PLLR = 0 (a reserved value)"; return 0; }
    if (fin < c->vco_in_lo || fin > c->vco_in_hi) { *why = "the PLL input is outside the VCO input range"; return 0; }
    if (vco < c->vco_out_lo || vco > c->vco_out_hi) { *why = "the VCO frequency is outside its range"; return 0; }
    return (uint32_t)(vco / r);
}

static int pll_ready(ClockTree *c, uint64_t now)
{
    int input;
    const char *why;
    if (!c->pll_running || now < c->pll_ready_at) return 0;
    return pll_hz(c, &input, &why) && osc_ready(c, input, now);
}

static int src_ready(ClockTree *c, int s, uint64_t now)
{
    if (s == CLK_PLL) return pll_ready(c, now);
    return s >= 0 && s < c->nosc && osc_ready(c, s, now);
}

static uint32_t src_hz(ClockTree *c, int s)
{
    int input;
    const char *why;
    if (s == CLK_PLL) return pll_hz(c, &input, &why);
    return s >= 0 && s < c->nosc ? c->osc[s].hz : 0u;
}

/* ------------------------------------------------------------ voltage */
static void voltage_sync(ClockTree *c, uint64_t now)
{
    if (c->vstyle == 1 && c->vos_pend != c->vos_eff && now >= c->vos_at) c->vos_eff = c->vos_pend;
}

static uint32_t level_index(ClockTree *c, uint64_t now)
{
    voltage_sync(c, now);
    if (c->vstyle == 1) {
        int boost = c->boost_mask && !(c->pwr[c->boost_off >> 2] & c->boost_mask);
        return (c->vos_eff * 2u + (uint32_t)boost) & 7u;
    }
    if (c->vstyle == 2) {
        uint32_t vos = field(c->pwr[c->v_cr >> 2], c->vos_shift, c->vos_bits);
        int od = c->odsw_on && now >= c->odsw_at && c->od_on && now >= c->od_at;
        return (vos * 2u + (uint32_t)od) & 7u;
    }
    return 0;
}

uint32_t clock_level(ClockTree *c) { return level_index(c, clock_now_ns(c)); }

/* ------------------------------------------------------------ faults */
static void clock_fault(ClockTree *c, void *uc, const char *msg)
{
    snprintf(c->fault, sizeof c->fault, "clock: %s", msg);
    c->n_faults++;
    periph_stop_board(c->m, uc, FAULT_CLOCK, 0);
}

/* HCLK against the flash latency and the voltage level */
static void flash_unreadable(void *ctx, void *uc)
{
    ClockTree *c = (ClockTree *)ctx;
    clock_fault(c, uc, c->flash_fault_msg);
}

static void check(ClockTree *c, void *uc, uint64_t now)
{
    char msg[220];
    uint32_t lat = c->fc ? (c->fc->acr_v & c->fc->acr_latency_mask) : c->n_ws - 1u;
    uint32_t top = c->n_ws ? c->ws_max_hz[lat < c->n_ws ? lat : c->n_ws - 1u] : 0xFFFFFFFFu;
    if (c->hclk > top) {
        uint32_t need = 0;
        while (need + 1u < c->n_ws && c->ws_max_hz[need] < c->hclk) need++;
        /* as on silicon, only reading the flash goes wrong (code in SRAM, e.g. a debugger's flash algorithm,
         * runs on): the next flash fetch or data read stops the board */
        snprintf(c->flash_fault_msg, sizeof c->flash_fault_msg, "HCLK %.6g MHz with FLASH_ACR.LATENCY = %u: the "
                 "flash allows at most %.6g MHz at %u wait states (%u needed); raise the latency before the clock",
                 c->hclk / 1e6, lat, top / 1e6, lat, need);
        c->m->flash_fault = flash_unreadable;
        c->m->flash_fault_ctx = c;
        return;
    }
    if (c->m->flash_fault_ctx == c) c->m->flash_fault = NULL;
    uint32_t li = level_index(c, now), vmax = c->level_max_hz[li];
    if (vmax && c->hclk > vmax) {
        snprintf(msg, sizeof msg, "HCLK %.6g MHz above the %.6g MHz the voltage level %s allows; set the level "
                 "(and wait for it) before the clock", c->hclk / 1e6, vmax / 1e6, c->level_name[li]);
        clock_fault(c, uc, msg);
    }
}

void clock_check_acr(void *uc, void *clock)
{
    ClockTree *c = (ClockTree *)clock;
    check(c, uc, clock_now_ns(c));
}

/* SWS follows SW once the selected source is ready; HCLK / PCLK from the running source and prescalers */
static void update(ClockTree *c, void *uc)
{
    uint64_t now = clock_now_ns(c);
    uint32_t cfgr = c->rcc[c->cfgr >> 2];
    int want = c->sw_src[field(cfgr, c->sw_shift, 3) & c->sw_mask & 7u];
    if (want != c->sws && want >= 0 && !src_ready(c, want, now) && !c->note[0]) {
        int off = want == CLK_PLL ? !c->pll_running : !c->osc[want].running;
        snprintf(c->note, sizeof c->note, "CFGR.SW selects %s, which is %s: SWS stays %s",
                 want == CLK_PLL ? "the PLL" : c->osc_name[want], off ? "off" : "not ready yet",
                 c->sws == CLK_PLL ? "PLL" : (c->sws >= 0 ? c->osc_name[c->sws] : "?"));
    }
    if (want != c->sws && want >= 0 && src_ready(c, want, now)) {
        if (want == CLK_PLL && c->r_enable && !(c->rcc[c->pllcfgr >> 2] & c->r_enable)) {
            clock_fault(c, uc, "SYSCLK switched to the PLL with PLLCFGR.PLLREN clear: the PLL's R output, which "
                        "drives SYSCLK, is off (no clock)");
            return;
        }
        c->sws = want;
        c->n_switches++;
        c->note[0] = 0;
    }
    uint32_t sys = src_hz(c, c->sws);
    uint32_t hclk = sys / HPRE_DIV[field(cfgr, c->hpre_shift, 4)];
    for (int i = 0; i < c->nppre; i++) c->pclk[i] = hclk / PPRE_DIV[field(cfgr, c->ppre_shift[i], 3)];
    if (c->nppre < 2) c->pclk[1] = c->nppre ? c->pclk[0] : hclk;
    c->sysclk = sys;
    if (hclk != c->hclk) {
        c->t_base = now;
        c->cyc_base = c->m->cycles;
        int up = hclk > c->hclk;
        c->hclk = hclk;
        if (up) check(c, uc, now);
    }
}

void clock_reset(ClockTree *c)
{
    if (c->m && c->m->flash_fault_ctx == c) c->m->flash_fault = NULL;
    c->flash_fault_msg[0] = 0;
    memset(c->rcc, 0, sizeof c->rcc);
    memset(c->pwr, 0, sizeof c->pwr);
    c->sws = -1;
    for (int i = 0; i < c->nosc; i++) {
        ClkOsc *o = &c->osc[i];
        o->running = o->reset_on;
        o->ready_at = 0;
        if (o->reset_on) {
            c->rcc[c->cr >> 2] |= o->on | o->rdy;
            c->sws = i;
        }
    }
    c->rcc[c->pllcfgr >> 2] = c->pllcfgr_reset;
    c->pll_running = 0;
    c->pll_ready_at = 0;
    c->vos_eff = c->vos_pend = c->vos_reset;
    c->vos_at = c->od_at = c->odsw_at = 0;
    c->od_on = c->odsw_on = 0;
    if (c->vstyle) c->pwr[c->v_cr >> 2] = c->vos_reset << c->vos_shift;
    if (c->boost_mask) c->pwr[c->boost_off >> 2] |= c->boost_mask;
    c->t_base = 0;
    c->cyc_base = c->m ? c->m->cycles : 0;
    c->hclk = c->sysclk = c->reset_hz;
    c->pclk[0] = c->pclk[1] = c->reset_hz;
    c->note[0] = c->fault[0] = 0;
}

/* ------------------------------------------------------------ RCC registers */
static uint32_t rcc_value(ClockTree *c, uint32_t w, uint64_t now)
{
    uint32_t v = c->rcc[w >> 2];
    if (w == c->cr) {
        for (int i = 0; i < c->nosc; i++) {
            v &= ~c->osc[i].rdy;
            if (osc_ready(c, i, now)) v |= c->osc[i].rdy;
        }
        v &= ~c->pll_rdy;
        if (pll_ready(c, now)) v |= c->pll_rdy;
    }
    if (w == c->cfgr) {
        uint32_t sws_mask = c->sw_mask << c->sws_shift;
        int code = 0;
        for (int k = 0; k < 8; k++)
            if (c->sw_src[k] == c->sws) { code = k; break; }
        v = (v & ~sws_mask) | ((uint32_t)code << c->sws_shift);
    }
    return v;
}

uint64_t rcc_read(void *uc, void *dev, uint32_t off, unsigned size)
{
    ClockTree *c = (ClockTree *)dev;
    update(c, uc);
    uint32_t v = rcc_value(c, off & ~3u, clock_now_ns(c)) >> (8u * (off & 3u));
    return size >= 4 ? v : v & ((1u << (8u * size)) - 1u);
}

static void note_pll(ClockTree *c)
{
    int input;
    const char *why;
    pll_hz(c, &input, &why);
    if (why) snprintf(c->note, sizeof c->note, "the PLL cannot lock: %s", why);
    else if (input >= 0 && !c->osc[input].running)
        snprintf(c->note, sizeof c->note, "the PLL cannot lock: its input %s is off", c->osc_name[input]);
}

void rcc_write(void *uc, void *dev, uint32_t off, unsigned size, uint64_t value)
{
    ClockTree *c = (ClockTree *)dev;
    uint32_t w = off & ~3u, shift = 8u * (off & 3u);
    uint32_t mask = size >= 4 ? 0xFFFFFFFFu : ((1u << (8u * size)) - 1u) << shift;
    update(c, uc);
    uint64_t now = clock_now_ns(c);
    uint32_t v = (c->rcc[w >> 2] & ~mask) | (((uint32_t)value << shift) & mask);
    if (w == c->pllcfgr && w != c->cfgr && c->pll_running) {
        clock_fault(c, uc, "RCC_PLLCFGR written while PLLON is set: configure the PLL while it is off");
        return;
    }
    if (w == c->cfgr && c->pllcfgr == c->cfgr && c->pll_running) {
        uint32_t pll_fields = ((1u << c->src_bits) - 1u) << c->src_shift | ((1u << c->m_bits) - 1u) << c->m_shift |
                              ((1u << c->n_bits) - 1u) << c->n_shift;
        if ((v ^ c->rcc[w >> 2]) & pll_fields) {
            clock_fault(c, uc, "the PLL fields of RCC_CFGR written while PLLON is set: configure the PLL while "
                        "it is off");
            return;
        }
    }
    if (w == c->cr) {
        int input;
        const char *why;
        pll_hz(c, &input, &why);
        for (int i = 0; i < c->nosc; i++) {
            ClkOsc *o = &c->osc[i];
            int in_use = c->sws == i || (c->pll_running && input == i);
            if (!(v & o->on) && in_use) v |= o->on;   /* hardware keeps the running clock on */
            if ((v & o->on) && !o->running) { o->running = 1; o->ready_at = now + o->startup_ns; }
            if (!(v & o->on)) o->running = 0;
            if (o->byp && o->running && ((v ^ c->rcc[w >> 2]) & o->byp)) v = (v & ~o->byp) | (c->rcc[w >> 2] & o->byp);
        }
        if (!(v & c->pll_on) && c->sws == CLK_PLL) v |= c->pll_on;
        if ((v & c->pll_on) && !c->pll_running) {
            c->pll_running = 1;
            uint64_t start = now;
            if (input >= 0 && c->osc[input].running && c->osc[input].ready_at > start) start = c->osc[input].ready_at;
            c->pll_ready_at = start + c->pll_lock_ns;
            note_pll(c);
        }
        if (!(v & c->pll_on)) c->pll_running = 0;
    }
    c->rcc[w >> 2] = v;
    update(c, uc);
}

/* ------------------------------------------------------------ PWR registers */
uint64_t pwr_read(void *uc, void *dev, uint32_t off, unsigned size)
{
    ClockTree *c = (ClockTree *)dev;
    (void)uc;
    uint64_t now = clock_now_ns(c);
    uint32_t w = off & ~3u, v = c->pwr[w >> 2];
    voltage_sync(c, now);
    if (c->vstyle == 1 && w == c->v_sr) {
        v &= ~c->vosf;
        if (c->vos_pend != c->vos_eff) v |= c->vosf;
    }
    if (c->vstyle == 2 && w == c->od_csr) {
        v &= ~(c->odrdy | c->odswrdy);
        v |= 1u << 14; /* VOSRDY */
        if (c->od_on && now >= c->od_at) v |= c->odrdy;
        if (c->odsw_on && c->od_on && now >= c->odsw_at) v |= c->odswrdy;
    }
    v >>= 8u * (off & 3u);
    return size >= 4 ? v : v & ((1u << (8u * size)) - 1u);
}

void pwr_write(void *uc, void *dev, uint32_t off, unsigned size, uint64_t value)
{
    ClockTree *c = (ClockTree *)dev;
    uint32_t w = off & ~3u, shift = 8u * (off & 3u);
    uint32_t mask = size >= 4 ? 0xFFFFFFFFu : ((1u << (8u * size)) - 1u) << shift;
    uint64_t now = clock_now_ns(c);
    uint32_t v = (c->pwr[w >> 2] & ~mask) | (((uint32_t)value << shift) & mask);
    c->pwr[w >> 2] = v;
    if (c->vstyle == 1 && w == c->v_cr) {
        uint32_t vos = field(v, c->vos_shift, c->vos_bits);
        voltage_sync(c, now);
        if (vos != c->vos_pend) { c->vos_pend = vos; c->vos_at = now + c->v_ns; }
    }
    if (c->vstyle == 2 && w == c->v_cr) {
        if ((v & c->oden) && !c->od_on) { c->od_on = 1; c->od_at = now + c->v_ns; }
        if (!(v & c->oden)) c->od_on = c->odsw_on = 0;
        /* ODSWEN takes effect once ODRDY is set (RM0386 5.1.4): the switch starts then */
        if ((v & c->odswen) && !c->odsw_on && c->od_on) {
            c->odsw_on = 1;
            c->odsw_at = (c->od_at > now ? c->od_at : now) + c->v_ns;
        }
        if (!(v & c->odswen)) c->odsw_on = 0;
    }
    check(c, uc, now); /* a lower level under a fast clock */
}
