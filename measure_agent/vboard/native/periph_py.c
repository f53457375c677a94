/*
 * The CPython side of the peripheral models (periph.h), registered into measure_agent.vboard._cyclemodel by
 * module.c (periph_register): the types PeriphPage (a native MMIO page), FlashCtl (the FLASH controller),
 * GpioPin (the energy pin) and ClockTree (RCC / PWR), the addresses of their native callbacks, FAULT_FLASH and
 * FAULT_CLOCK. No model logic here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <string.h>

#include "periph.h"

int periph_register(PyObject *module);

typedef struct {
    PyObject_HEAD
    FlashCtl fc;
    PyObject *model;            /* the Model the controller stalls and sets the wait states of */
} FlashCtlObject;

/* ================================================================== PeriphPage */
typedef struct {
    PyObject_HEAD
    PeriphPage p;
    PyObject *devices;          /* the attached device objects, kept alive */
} PageObject;

static int Page_init(PageObject *o, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"base", NULL};
    unsigned base;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "I", kwlist, &base)) return -1;
    if (base & 0xFFFu) { PyErr_SetString(PyExc_ValueError, "a page is 4 KB aligned"); return -1; }
    page_init(&o->p, base);
    Py_XDECREF(o->devices);
    o->devices = PyList_New(0);
    return o->devices ? 0 : -1;
}

static void Page_dealloc(PageObject *o)
{
    Py_XDECREF(o->devices);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyObject *Page_get_addr(PageObject *o, void *c) { (void)c; return PyLong_FromVoidPtr(&o->p); }
static PyObject *Page_get_base(PageObject *o, void *c) { (void)c; return PyLong_FromUnsignedLong(o->p.base); }

static PyObject *Page_register(PageObject *o, PyObject *args)
{
    unsigned off;
    if (!PyArg_ParseTuple(args, "I", &off)) return NULL;
    if (off >= 0x1000u) { PyErr_SetString(PyExc_ValueError, "offset outside the page"); return NULL; }
    return PyLong_FromUnsignedLong(o->p.regs[off >> 2]);
}

static PyTypeObject FlashCtlType;
static PyTypeObject GpioPinType;

typedef struct {
    PyObject_HEAD
    GpioPin g;
    PyObject *model;
} GpioPinObject;

/* attach_gpio_pin(pin, offset): the pin's BSRR word at [offset, offset + 4) of this page */
static PyObject *Page_attach_gpio_pin(PageObject *o, PyObject *args)
{
    PyObject *pin;
    unsigned off;
    if (!PyArg_ParseTuple(args, "O!I", &GpioPinType, &pin, &off)) return NULL;
    if (page_attach(&o->p, off, 4, gpio_pin_read, gpio_pin_write, &((GpioPinObject *)pin)->g)) {
        PyErr_SetString(PyExc_ValueError, "cannot attach: page full or the offsets overlap another device");
        return NULL;
    }
    if (PyList_Append(o->devices, pin)) return NULL;
    Py_RETURN_NONE;
}

static PyTypeObject ClockTreeType;

typedef struct {
    PyObject_HEAD
    ClockTree c;
    PyObject *model, *flash_ctl;
} ClockTreeObject;

/* attach_clock(clock, offset, size, block): the clock tree's RCC ("rcc") or PWR ("pwr") registers */
static PyObject *Page_attach_clock(PageObject *o, PyObject *args)
{
    PyObject *ct;
    unsigned off, size;
    const char *block;
    if (!PyArg_ParseTuple(args, "O!IIs", &ClockTreeType, &ct, &off, &size, &block)) return NULL;
    int pwr = !strcmp(block, "pwr");
    if (!pwr && strcmp(block, "rcc")) { PyErr_SetString(PyExc_ValueError, "block is 'rcc' or 'pwr'"); return NULL; }
    void *dev = &((ClockTreeObject *)ct)->c;
    if (page_attach(&o->p, off, size, pwr ? pwr_read : rcc_read, pwr ? pwr_write : rcc_write, dev)) {
        PyErr_SetString(PyExc_ValueError, "cannot attach: page full or the offsets overlap another device");
        return NULL;
    }
    if (PyList_Append(o->devices, ct)) return NULL;
    Py_RETURN_NONE;
}

/* attach_flashctl(fc, offset, size): the FLASH registers at [offset, offset + size) of this page */
static PyObject *Page_attach_flashctl(PageObject *o, PyObject *args)
{
    PyObject *fc;
    unsigned off, size;
    if (!PyArg_ParseTuple(args, "O!II", &FlashCtlType, &fc, &off, &size)) return NULL;
    void *dev = &((FlashCtlObject *)fc)->fc;
    if (page_attach(&o->p, off, size, flashctl_read, flashctl_write, dev)) {
        PyErr_SetString(PyExc_ValueError, "cannot attach: page full or the offsets overlap another device");
        return NULL;
    }
    if (PyList_Append(o->devices, fc)) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Page_methods[] = {
    {"attach_flashctl", (PyCFunction)Page_attach_flashctl, METH_VARARGS, "attach_flashctl(fc, offset, size)"},
    {"attach_gpio_pin", (PyCFunction)Page_attach_gpio_pin, METH_VARARGS, "attach_gpio_pin(pin, offset): its BSRR"},
    {"attach_clock", (PyCFunction)Page_attach_clock, METH_VARARGS, "attach_clock(clock, offset, size, 'rcc'|'pwr')"},
    {"register", (PyCFunction)Page_register, METH_VARARGS, "register(offset): a register-file word (debug)"},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef Page_getset[] = {
    {"address", (getter)Page_get_addr, NULL, "address of the C state (mmio user_data)", NULL},
    {"base", (getter)Page_get_base, NULL, "page address", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject PageType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "measure_agent.vboard._cyclemodel.PeriphPage",
    .tp_basicsize = sizeof(PageObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Page_init,
    .tp_dealloc = (destructor)Page_dealloc,
    .tp_methods = Page_methods,
    .tp_getset = Page_getset,
    .tp_doc = "PeriphPage(base): a 4 KB peripheral page; callbacks periph_mmio_ptrs() with user_data = address",
};

/* ================================================================== FlashCtl */

static int dict_u32(PyObject *d, const char *key, uint32_t *out)
{
    PyObject *v = PyDict_GetItemString(d, key);
    if (!v) { PyErr_Format(PyExc_KeyError, "FlashCtl config needs %s", key); return -1; }
    unsigned long x = PyLong_AsUnsignedLong(v);
    if (PyErr_Occurred()) return -1;
    *out = (uint32_t)x;
    return 0;
}

static int FlashCtl_init(FlashCtlObject *o, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"model", "config", "units", "mem", "programmed", "erase_counts", NULL};
    PyObject *model, *cfg, *units;
    unsigned long long mem, programmed, counts;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO!OKKK", kwlist, &model, &PyDict_Type, &cfg, &units, &mem,
                                     &programmed, &counts))
        return -1;
    PyObject *fast = PySequence_Fast(units, "units must be a sequence of (base, bytes, number, bank, erase_cycles)");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    flashctl_release(&o->fc);
    if (flashctl_init(&o->fc, (uint32_t)n)) { Py_DECREF(fast); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        FcUnit *u = &o->fc.units[i];
        unsigned long long cycles;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "IIIIK", &u->base, &u->bytes, &u->number, &u->bank,
                              &cycles)) {
            Py_DECREF(fast);
            return -1;
        }
        u->erase_cycles = cycles;
    }
    Py_DECREF(fast);
    FlashCtl *fc = &o->fc;
    uint32_t style, eopie, prog_lo, prog_hi, acr_reset;
    if (dict_u32(cfg, "style", &style) || dict_u32(cfg, "offset", &fc->off) || dict_u32(cfg, "acr", &fc->acr) ||
        dict_u32(cfg, "keyr", &fc->keyr) || dict_u32(cfg, "sr", &fc->sr) || dict_u32(cfg, "cr", &fc->cr) ||
        dict_u32(cfg, "ar", &fc->ar) || dict_u32(cfg, "key1", &fc->key1) || dict_u32(cfg, "key2", &fc->key2) ||
        dict_u32(cfg, "sr_busy", &fc->sr_busy) || dict_u32(cfg, "sr_eop", &fc->sr_eop) ||
        dict_u32(cfg, "sr_errors", &fc->sr_errors) || dict_u32(cfg, "eop_needs_eopie", &eopie) ||
        dict_u32(cfg, "cr_pg", &fc->cr_pg) || dict_u32(cfg, "cr_erase", &fc->cr_erase) ||
        dict_u32(cfg, "cr_strt", &fc->cr_strt) || dict_u32(cfg, "cr_lock", &fc->cr_lock) ||
        dict_u32(cfg, "cr_eopie", &fc->cr_eopie) || dict_u32(cfg, "cr_bank", &fc->cr_bank) ||
        dict_u32(cfg, "number_shift", &fc->number_shift) || dict_u32(cfg, "number_mask", &fc->number_mask) ||
        dict_u32(cfg, "psize_mask", &fc->psize_mask) || dict_u32(cfg, "psize_bits", &fc->psize_bits) ||
        dict_u32(cfg, "acr_latency_mask", &fc->acr_latency_mask) || dict_u32(cfg, "acr_icrst", &fc->acr_icrst) ||
        dict_u32(cfg, "acr_dcrst", &fc->acr_dcrst) || dict_u32(cfg, "prog_bytes", &fc->prog_bytes) ||
        dict_u32(cfg, "prog_cycles_lo", &prog_lo) || dict_u32(cfg, "prog_cycles_hi", &prog_hi) ||
        dict_u32(cfg, "flash_base", &fc->flash_base) || dict_u32(cfg, "flash_size", &fc->flash_size) ||
        dict_u32(cfg, "acr_reset", &acr_reset))
        return -1;
    if (style > FC_PAGE_ADDRESS || !fc->prog_bytes) { PyErr_SetString(PyExc_ValueError, "bad style / prog_bytes"); return -1; }
    fc->style = (int)style;
    fc->eop_needs_eopie = (int)eopie;
    fc->prog_cycles = ((uint64_t)prog_hi << 32) | prog_lo;
    fc->mem = (uint8_t *)(uintptr_t)mem;
    fc->programmed = (uint8_t *)(uintptr_t)programmed;
    fc->erase_counts = (uint32_t *)(uintptr_t)counts;
    PyObject *addr = PyObject_GetAttrString(model, "address");
    if (!addr) return -1;
    fc->m = (Model *)PyLong_AsVoidPtr(addr);
    Py_DECREF(addr);
    if (PyErr_Occurred()) return -1;
    Py_XDECREF(o->model);
    Py_INCREF(model);
    o->model = model;
    flashctl_reset(fc, acr_reset);
    return 0;
}

static void FlashCtl_dealloc(FlashCtlObject *o)
{
    flashctl_release(&o->fc);
    Py_XDECREF(o->model);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyObject *FlashCtl_reset(FlashCtlObject *o, PyObject *args)
{
    unsigned acr;
    if (!PyArg_ParseTuple(args, "I", &acr)) return NULL;
    flashctl_reset(&o->fc, acr);
    Py_RETURN_NONE;
}

static PyObject *FlashCtl_get_addr(FlashCtlObject *o, void *c) { (void)c; return PyLong_FromVoidPtr(&o->fc); }
static PyObject *FlashCtl_get_programs(FlashCtlObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->fc.n_programs); }
static PyObject *FlashCtl_get_erases(FlashCtlObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->fc.n_erases); }
static PyObject *FlashCtl_get_faults(FlashCtlObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->fc.n_faults); }
static PyObject *FlashCtl_get_stall(FlashCtlObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->fc.stall_cycles); }
static PyObject *FlashCtl_get_fault(FlashCtlObject *o, void *c) { (void)c; return PyUnicode_FromString(o->fc.fault); }
static PyObject *FlashCtl_get_fault_addr(FlashCtlObject *o, void *c) { (void)c; return PyLong_FromUnsignedLong(o->fc.fault_addr); }
static PyObject *FlashCtl_get_locked(FlashCtlObject *o, void *c) { (void)c; return PyBool_FromLong(o->fc.locked); }
static PyObject *FlashCtl_get_busy(FlashCtlObject *o, void *c) { (void)c; return PyBool_FromLong(o->fc.busy); }
static PyObject *FlashCtl_get_ws(FlashCtlObject *o, void *c) { (void)c; return PyLong_FromUnsignedLong(o->fc.m ? o->fc.m->ws : 0); }
static PyObject *FlashCtl_get_acr(FlashCtlObject *o, void *c) { (void)c; return PyLong_FromUnsignedLong(o->fc.acr_v); }
static PyObject *FlashCtl_get_sr(FlashCtlObject *o, void *c) { (void)c; return PyLong_FromUnsignedLong(o->fc.sr_v); }

static PyMethodDef FlashCtl_methods[] = {
    {"reset", (PyCFunction)FlashCtl_reset, METH_VARARGS, "reset(acr_reset): registers to their reset values"},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef FlashCtl_getset[] = {
    {"address", (getter)FlashCtl_get_addr, NULL, "address of the C state (write hook user_data)", NULL},
    {"programs", (getter)FlashCtl_get_programs, NULL, "programming operations (double words, words, half words)", NULL},
    {"erases", (getter)FlashCtl_get_erases, NULL, "erase operations (pages / sectors)", NULL},
    {"faults", (getter)FlashCtl_get_faults, NULL, "rule violations", NULL},
    {"stall_cycles", (getter)FlashCtl_get_stall, NULL, "cycles the core waited for programming / erasing", NULL},
    {"fault", (getter)FlashCtl_get_fault, NULL, "message of the last rule violation", NULL},
    {"fault_address", (getter)FlashCtl_get_fault_addr, NULL, "its address", NULL},
    {"locked", (getter)FlashCtl_get_locked, NULL, "FLASH_CR.LOCK", NULL},
    {"busy", (getter)FlashCtl_get_busy, NULL, "an operation in progress", NULL},
    {"wait_states", (getter)FlashCtl_get_ws, NULL, "the cycle model's flash wait states (ACR.LATENCY)", NULL},
    {"acr", (getter)FlashCtl_get_acr, NULL, "FLASH_ACR", NULL},
    {"sr", (getter)FlashCtl_get_sr, NULL, "FLASH_SR flags (without BSY)", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject FlashCtlType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "measure_agent.vboard._cyclemodel.FlashCtl",
    .tp_basicsize = sizeof(FlashCtlObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FlashCtl_init,
    .tp_dealloc = (destructor)FlashCtl_dealloc,
    .tp_methods = FlashCtl_methods,
    .tp_getset = FlashCtl_getset,
    .tp_doc = "FlashCtl(model, config, units, mem, programmed, erase_counts): the FLASH controller model",
};

/* ================================================================== GpioPin */
static int GpioPin_init(GpioPinObject *o, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"model", "address", "pin", "capacity", NULL};
    PyObject *model;
    unsigned address, pin, capacity = 65536;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OII|I", kwlist, &model, &address, &pin, &capacity)) return -1;
    if (pin > 15) { PyErr_SetString(PyExc_ValueError, "a GPIO pin is 0..15"); return -1; }
    PyObject *addr = PyObject_GetAttrString(model, "address");
    if (!addr) return -1;
    Model *m = (Model *)PyLong_AsVoidPtr(addr);
    Py_DECREF(addr);
    if (PyErr_Occurred()) return -1;
    if (gpio_pin_init(&o->g, m, address, pin, capacity)) { PyErr_NoMemory(); return -1; }
    Py_XDECREF(o->model);
    Py_INCREF(model);
    o->model = model;
    return 0;
}

static void GpioPin_dealloc(GpioPinObject *o)
{
    gpio_pin_release(&o->g);
    Py_XDECREF(o->model);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

/* edges(): the recorded edges as (cycle, instructions, level) tuples, oldest first; the buffer is emptied */
static PyObject *GpioPin_edges(GpioPinObject *o, PyObject *n)
{
    (void)n;
    GpioPin *g = &o->g;
    PyObject *out = PyList_New((Py_ssize_t)g->count);
    if (!out) return NULL;
    for (uint32_t k = 0; k < g->count; k++) {
        const GpioEdge *e = &g->edges[(g->head + k) % g->cap];
        PyObject *t = Py_BuildValue("(KKI)", (unsigned long long)e->cycle, (unsigned long long)e->insns, e->level);
        if (!t) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, (Py_ssize_t)k, t);
    }
    g->head = g->count = 0;
    return out;
}

static PyObject *GpioPin_get_level(GpioPinObject *o, void *c) { (void)c; return PyLong_FromLong(o->g.level); }
static PyObject *GpioPin_get_dropped(GpioPinObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->g.dropped); }
static PyObject *GpioPin_get_pending(GpioPinObject *o, void *c) { (void)c; return PyLong_FromUnsignedLong(o->g.count); }
static PyObject *GpioPin_get_address(GpioPinObject *o, void *c) { (void)c; return PyLong_FromUnsignedLong(o->g.address); }

static PyMethodDef GpioPin_methods[] = {
    {"edges", (PyCFunction)GpioPin_edges, METH_NOARGS, "edges(): [(cycle, instructions, level)], drained"},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef GpioPin_getset[] = {
    {"level", (getter)GpioPin_get_level, NULL, "the pin's level now", NULL},
    {"dropped", (getter)GpioPin_get_dropped, NULL, "edges lost to a full buffer", NULL},
    {"pending", (getter)GpioPin_get_pending, NULL, "edges in the buffer", NULL},
    {"address", (getter)GpioPin_get_address, NULL, "the BSRR address", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject GpioPinType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "measure_agent.vboard._cyclemodel.GpioPin",
    .tp_basicsize = sizeof(GpioPinObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)GpioPin_init,
    .tp_dealloc = (destructor)GpioPin_dealloc,
    .tp_methods = GpioPin_methods,
    .tp_getset = GpioPin_getset,
    .tp_doc = "GpioPin(model, address, pin, capacity=65536): the energy pin, a BSRR recording one pin's edges",
};

/* ================================================================== ClockTree */

static int u32_list(PyObject *d, const char *key, uint32_t *out, int max, int *n)
{
    PyObject *v = PyDict_GetItemString(d, key);
    if (!v) { PyErr_Format(PyExc_KeyError, "ClockTree config needs %s", key); return -1; }
    PyObject *fast = PySequence_Fast(v, "a list of integers");
    if (!fast) return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
    if (len > max) { Py_DECREF(fast); PyErr_Format(PyExc_ValueError, "%s: at most %d entries", key, max); return -1; }
    for (Py_ssize_t i = 0; i < len; i++) {
        long long x = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
        if (PyErr_Occurred()) { Py_DECREF(fast); return -1; }
        out[i] = (uint32_t)x;
    }
    Py_DECREF(fast);
    if (n) *n = (int)len;
    return 0;
}

static int ClockTree_init(ClockTreeObject *o, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"model", "config", "oscillators", "flash_ctl", NULL};
    PyObject *model, *cfg, *oscs, *fc = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO!O|O", kwlist, &model, &PyDict_Type, &cfg, &oscs, &fc)) return -1;
    ClockTree *c = &o->c;
    memset(c, 0, sizeof *c);
    PyObject *fast = PySequence_Fast(oscs, "oscillators: (name, on, rdy, byp, hz, startup_ns, needs_byp, reset_on)");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > CLK_MAX_OSC) { Py_DECREF(fast); PyErr_SetString(PyExc_ValueError, "too many oscillators"); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        ClkOsc *x = &c->osc[i];
        const char *name;
        int needs_byp, reset_on;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "sIIIIIpp", &name, &x->on, &x->rdy, &x->byp, &x->hz,
                              &x->startup_ns, &needs_byp, &reset_on)) { Py_DECREF(fast); return -1; }
        snprintf(c->osc_name[i], sizeof c->osc_name[i], "%s", name);
        x->needs_byp = needs_byp;
        x->reset_on = reset_on;
    }
    Py_DECREF(fast);
    c->nosc = (int)n;
    uint32_t sw_src[8], src_osc[4], uses_m[4], ppre[2], vmax[8], vstyle;
    int nsw, nppre, nws, nv;
    if (dict_u32(cfg, "cr", &c->cr) || dict_u32(cfg, "cfgr", &c->cfgr) || dict_u32(cfg, "pllcfgr", &c->pllcfgr) ||
        dict_u32(cfg, "pllcfgr_reset", &c->pllcfgr_reset) || dict_u32(cfg, "pll_on", &c->pll_on) ||
        dict_u32(cfg, "pll_rdy", &c->pll_rdy) || dict_u32(cfg, "pll_lock_ns", &c->pll_lock_ns) ||
        dict_u32(cfg, "sw_shift", &c->sw_shift) || dict_u32(cfg, "sw_mask", &c->sw_mask) ||
        dict_u32(cfg, "sws_shift", &c->sws_shift) || u32_list(cfg, "sw_src", sw_src, 8, &nsw) ||
        dict_u32(cfg, "hpre_shift", &c->hpre_shift) || u32_list(cfg, "ppre_shift", ppre, 2, &nppre) ||
        dict_u32(cfg, "src_shift", &c->src_shift) || dict_u32(cfg, "src_bits", &c->src_bits) ||
        u32_list(cfg, "src_osc", src_osc, 4, NULL) || u32_list(cfg, "src_div", c->src_div, 4, NULL) ||
        u32_list(cfg, "src_uses_m", uses_m, 4, NULL) ||
        dict_u32(cfg, "m_shift", &c->m_shift) || dict_u32(cfg, "m_bits", &c->m_bits) || dict_u32(cfg, "m_add", &c->m_add) ||
        dict_u32(cfg, "n_shift", &c->n_shift) || dict_u32(cfg, "n_bits", &c->n_bits) || dict_u32(cfg, "n_add", &c->n_add) ||
        dict_u32(cfg, "r_shift", &c->r_shift) || dict_u32(cfg, "r_bits", &c->r_bits) || dict_u32(cfg, "r_kind", &c->r_kind) ||
        dict_u32(cfg, "r_enable", &c->r_enable) || dict_u32(cfg, "vco_in_lo", &c->vco_in_lo) ||
        dict_u32(cfg, "vco_in_hi", &c->vco_in_hi) || dict_u32(cfg, "vco_out_lo", &c->vco_out_lo) ||
        dict_u32(cfg, "vco_out_hi", &c->vco_out_hi) || u32_list(cfg, "ws_max_hz", c->ws_max_hz, 16, &nws) ||
        dict_u32(cfg, "vstyle", &vstyle) || dict_u32(cfg, "v_cr", &c->v_cr) || dict_u32(cfg, "v_sr", &c->v_sr) ||
        dict_u32(cfg, "vos_shift", &c->vos_shift) || dict_u32(cfg, "vos_bits", &c->vos_bits) ||
        dict_u32(cfg, "vosf", &c->vosf) || dict_u32(cfg, "boost_off", &c->boost_off) ||
        dict_u32(cfg, "boost_mask", &c->boost_mask) || dict_u32(cfg, "vos_reset", &c->vos_reset) ||
        dict_u32(cfg, "v_ns", &c->v_ns) || dict_u32(cfg, "od_csr", &c->od_csr) || dict_u32(cfg, "oden", &c->oden) ||
        dict_u32(cfg, "odswen", &c->odswen) || dict_u32(cfg, "odrdy", &c->odrdy) ||
        dict_u32(cfg, "odswrdy", &c->odswrdy) || u32_list(cfg, "level_max_hz", vmax, 8, &nv) ||
        dict_u32(cfg, "reset_hz", &c->reset_hz))
        return -1;
    for (int i = 0; i < 8; i++) c->sw_src[i] = i < nsw ? (int)sw_src[i] : -1;
    for (int i = 0; i < 4; i++) { c->src_osc[i] = (int32_t)src_osc[i]; c->src_uses_m[i] = (int)uses_m[i]; }
    for (int i = 0; i < 2; i++) c->ppre_shift[i] = i < nppre ? ppre[i] : 0;
    for (int i = 0; i < 8; i++) c->level_max_hz[i] = i < nv ? vmax[i] : 0;
    c->nppre = nppre;
    c->n_ws = (uint32_t)nws;
    c->vstyle = (int)vstyle;
    PyObject *names = PyDict_GetItemString(cfg, "level_names");
    for (int i = 0; names && i < 8 && i < PySequence_Size(names); i++) {
        PyObject *item = PySequence_GetItem(names, i);
        const char *t = item ? PyUnicode_AsUTF8(item) : NULL;
        if (t) snprintf(c->level_name[i], sizeof c->level_name[i], "%s", t);
        Py_XDECREF(item);
        if (PyErr_Occurred()) return -1;
    }
    PyObject *addr = PyObject_GetAttrString(model, "address");
    if (!addr) return -1;
    c->m = (Model *)PyLong_AsVoidPtr(addr);
    Py_DECREF(addr);
    if (PyErr_Occurred()) return -1;
    Py_XDECREF(o->model);
    Py_INCREF(model);
    o->model = model;
    if (fc != Py_None) {
        if (!PyObject_TypeCheck(fc, &FlashCtlType)) { PyErr_SetString(PyExc_TypeError, "flash_ctl must be a FlashCtl"); return -1; }
        FlashCtl *f = &((FlashCtlObject *)fc)->fc;
        c->fc = f;
        f->hclk_hz = &c->hclk;
        f->ref_hz = c->reset_hz;
        f->on_acr = clock_check_acr;
        f->clock = c;
        Py_XDECREF(o->flash_ctl);
        Py_INCREF(fc);
        o->flash_ctl = fc;
    }
    c->m->flash_fault = NULL;  /* a clock tree made afresh (a reset): nothing pending from an earlier one */
    clock_reset(c);
    return 0;
}

static void ClockTree_dealloc(ClockTreeObject *o)
{
    if (o->c.m && o->c.m->flash_fault_ctx == &o->c) o->c.m->flash_fault = NULL;
    if (o->flash_ctl) {
        FlashCtl *f = &((FlashCtlObject *)o->flash_ctl)->fc;
        f->hclk_hz = NULL; f->on_acr = NULL; f->clock = NULL;
    }
    Py_XDECREF(o->model);
    Py_XDECREF(o->flash_ctl);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyObject *ClockTree_pclk_address(ClockTreeObject *o, PyObject *args)
{
    int bus;
    if (!PyArg_ParseTuple(args, "i", &bus)) return NULL;
    if (bus < 0 || bus > 1) { PyErr_SetString(PyExc_ValueError, "bus 0 (APB1) or 1 (APB2)"); return NULL; }
    return PyLong_FromVoidPtr(&o->c.pclk[bus]);
}

static PyObject *ClockTree_py_reset(ClockTreeObject *o, PyObject *n) { (void)n; clock_reset(&o->c); Py_RETURN_NONE; }
static PyObject *ClockTree_get_hclk(ClockTreeObject *o, void *x) { (void)x; return PyLong_FromUnsignedLong(o->c.hclk); }
static PyObject *ClockTree_get_sysclk(ClockTreeObject *o, void *x) { (void)x; return PyLong_FromUnsignedLong(o->c.sysclk); }
static PyObject *ClockTree_get_pclk(ClockTreeObject *o, void *x)
{
    (void)x;
    return Py_BuildValue("(kk)", (unsigned long)o->c.pclk[0], (unsigned long)o->c.pclk[1]);
}
static PyObject *ClockTree_get_source(ClockTreeObject *o, void *x)
{
    (void)x;
    int s = o->c.sws;
    return PyUnicode_FromString(s == CLK_PLL ? "PLL" : (s >= 0 && s < o->c.nosc ? o->c.osc_name[s] : "?"));
}
static PyObject *ClockTree_get_fault(ClockTreeObject *o, void *x) { (void)x; return PyUnicode_FromString(o->c.fault); }
static PyObject *ClockTree_get_note(ClockTreeObject *o, void *x) { (void)x; return PyUnicode_FromString(o->c.note); }
static PyObject *ClockTree_get_level(ClockTreeObject *o, void *x)
{
    (void)x;
    return PyUnicode_FromString(o->c.level_name[clock_level(&o->c)]);
}
static PyObject *ClockTree_get_switches(ClockTreeObject *o, void *x) { (void)x; return PyLong_FromUnsignedLongLong(o->c.n_switches); }

static PyMethodDef ClockTree_methods[] = {
    {"reset", (PyCFunction)ClockTree_py_reset, METH_NOARGS, "registers and oscillators to their reset state"},
    {"pclk_address", (PyCFunction)ClockTree_pclk_address, METH_VARARGS, "pclk_address(bus): where PCLK1/2 is published"},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef ClockTree_getset[] = {
    {"hclk", (getter)ClockTree_get_hclk, NULL, "HCLK in Hz (the core clock)", NULL},
    {"sysclk", (getter)ClockTree_get_sysclk, NULL, "SYSCLK in Hz", NULL},
    {"pclk", (getter)ClockTree_get_pclk, NULL, "(PCLK1, PCLK2) in Hz", NULL},
    {"source", (getter)ClockTree_get_source, NULL, "the running SYSCLK source (SWS)", NULL},
    {"fault", (getter)ClockTree_get_fault, NULL, "message of the last clock fault", NULL},
    {"note", (getter)ClockTree_get_note, NULL, "why the PLL cannot lock, if it cannot", NULL},
    {"level", (getter)ClockTree_get_level, NULL, "the voltage level in effect (VOS-style families)", NULL},
    {"switches", (getter)ClockTree_get_switches, NULL, "SYSCLK switches done", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject ClockTreeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "measure_agent.vboard._cyclemodel.ClockTree",
    .tp_basicsize = sizeof(ClockTreeObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ClockTree_init,
    .tp_dealloc = (destructor)ClockTree_dealloc,
    .tp_methods = ClockTree_methods,
    .tp_getset = ClockTree_getset,
    .tp_doc = "ClockTree(model, config, oscillators, flash_ctl=None): the RCC / PWR model",
};

/* ================================================================== module functions */
static PyObject *periph_mmio_ptrs(PyObject *s, PyObject *n)
{
    (void)s; (void)n;
    return Py_BuildValue("(NN)", PyLong_FromVoidPtr((void *)periph_mmio_read), PyLong_FromVoidPtr((void *)periph_mmio_write));
}

static PyObject *flash_write_hook_ptr(PyObject *s, PyObject *n)
{
    (void)s; (void)n;
    return PyLong_FromVoidPtr((void *)flashctl_write_hook);
}

static PyMethodDef periph_functions[] = {
    {"periph_mmio_ptrs", periph_mmio_ptrs, METH_NOARGS, "(read, write) native uc_mmio_map callbacks of PeriphPage"},
    {"flash_write_hook_ptr", flash_write_hook_ptr, METH_NOARGS,
     "native UC_HOOK_MEM_WRITE_PROT callback of FlashCtl (user_data = FlashCtl.address)"},
    {NULL, NULL, 0, NULL}
};

int periph_register(PyObject *module)
{
    if (PyType_Ready(&PageType) < 0 || PyType_Ready(&FlashCtlType) < 0 || PyType_Ready(&GpioPinType) < 0 ||
        PyType_Ready(&ClockTreeType) < 0)
        return -1;
    Py_INCREF(&GpioPinType);
    if (PyModule_AddObject(module, "GpioPin", (PyObject *)&GpioPinType) < 0) return -1;
    Py_INCREF(&ClockTreeType);
    if (PyModule_AddObject(module, "ClockTree", (PyObject *)&ClockTreeType) < 0) return -1;
    if (PyModule_AddIntConstant(module, "FAULT_CLOCK", FAULT_CLOCK) < 0) return -1;
    Py_INCREF(&PageType);
    if (PyModule_AddObject(module, "PeriphPage", (PyObject *)&PageType) < 0) return -1;
    Py_INCREF(&FlashCtlType);
    if (PyModule_AddObject(module, "FlashCtl", (PyObject *)&FlashCtlType) < 0) return -1;
    if (PyModule_AddFunctions(module, periph_functions) < 0) return -1;
    if (PyModule_AddIntConstant(module, "FAULT_FLASH", FAULT_FLASH) < 0) return -1;
    if (PyModule_AddIntConstant(module, "FC_PAGE_NUMBER", FC_PAGE_NUMBER) < 0) return -1;
    if (PyModule_AddIntConstant(module, "FC_SECTOR", FC_SECTOR) < 0) return -1;
    return PyModule_AddIntConstant(module, "FC_PAGE_ADDRESS", FC_PAGE_ADDRESS);
}
