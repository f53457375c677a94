/*
 * The CPython side of the extension measure_agent.vboard._cyclemodel: the types Model (the cycle
 * model state, whose address is the user_data of the native hooks) and Uart (the UART MMIO model),
 * the module functions handing out the native callback addresses, and the module constants
 * (CORE_*, ACC_*, FPU_*, STOP_*, FAULT_*).  No model logic here: that is in the other files of
 * native/ (cyclemodel.h has the map).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "cyclemodel.h"

int periph_register(PyObject *module);   /* periph_py.c: PeriphPage, FlashCtl (the peripheral models) */

/* ================================================================== Model */
typedef struct {
    PyObject_HEAD
    Model m;                   /* the C state; .address = &m (hook / MMIO user_data) */
} ModelObject;

static void Model_dealloc(ModelObject *o)
{
    model_release(&o->m);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static int Model_init(ModelObject *o, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"core", "fpu", "dsp", "accel", "wait_states", "fetch_line",
                             "icache_bytes", "icache_line", "icache_ways",
                             "dcache_bytes", "dcache_line", "dcache_ways", "caches_enabled", "strict", NULL};
    int core, fpu, dsp, accel, caches_enabled = 1, strict = 1;
    unsigned ws, fetch_line, ib = 0, il = 0, iw = 0, db = 0, dl = 0, dw = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiiiII|IIIIIIpp", kwlist, &core, &fpu, &dsp, &accel, &ws,
                                     &fetch_line, &ib, &il, &iw, &db, &dl, &dw, &caches_enabled, &strict))
        return -1;
    model_init(&o->m, core, fpu, dsp, accel, strict);
    if (flash_init(&o->m, ws, fetch_line, ib, il, iw, db, dl, dw, caches_enabled)) {
        PyErr_NoMemory(); return -1;
    }
    return 0;
}

static PyObject *Model_add_region(ModelObject *o, PyObject *args)
{
    unsigned base, size; unsigned long long ptr; int flash;
    if (!PyArg_ParseTuple(args, "IIKp", &base, &size, &ptr, &flash)) return NULL;
    if (model_add_region(&o->m, base, size, (uint8_t *)(uintptr_t)ptr, flash)) {
        PyErr_SetString(PyExc_ValueError, "too many regions"); return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Model_set_engine(ModelObject *o, PyObject *args)
{
    unsigned long long stop, rr; int pcid;
    if (!PyArg_ParseTuple(args, "KKi", &stop, &rr, &pcid)) return NULL;
    o->m.emu_stop = (int (*)(void *))(uintptr_t)stop;
    o->m.reg_read = (int (*)(void *, int, void *))(uintptr_t)rr;
    o->m.pc_regid = pcid;
    Py_RETURN_NONE;
}

static PyObject *Model_set_reg_ids(ModelObject *o, PyObject *args)
{
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "reg ids must be a sequence of 16 ints");
    if (!fast) return NULL;
    if (PySequence_Fast_GET_SIZE(fast) != 16) { Py_DECREF(fast); PyErr_SetString(PyExc_ValueError, "16 ids"); return NULL; }
    for (int k = 0; k < 16; k++) o->m.reg_ids[k] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, k));
    Py_DECREF(fast);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Model_set_ppb_fallback(ModelObject *o, PyObject *args)
{
    unsigned long long fn, ud, wfn = 0;
    if (!PyArg_ParseTuple(args, "KK|K", &fn, &ud, &wfn)) return NULL;
    o->m.ppb_fallback = (uint64_t (*)(void *, uint64_t, unsigned, void *))(uintptr_t)fn;
    o->m.ppb_fallback_ud = (void *)(uintptr_t)ud;
    o->m.ppb_write_fallback = (void (*)(void *, uint64_t, unsigned, uint64_t, void *))(uintptr_t)wfn;
    Py_RETURN_NONE;
}

/* set_hooks(uc_hook_add, uc_ctl, uc_reg_write, cpsr_regid, UC_HOOK_CODE, remove-cache control): what the
 * block hook needs to register code hooks on single instructions and to restart a block (blocks.c) */
static PyObject *Model_set_hooks(ModelObject *o, PyObject *args)
{
    unsigned long long add, ctl, wr; int cpsr, code, rm;
    if (!PyArg_ParseTuple(args, "KKKiii", &add, &ctl, &wr, &cpsr, &code, &rm)) return NULL;
    o->m.hook_add = (int (*)(void *, size_t *, int, void *, void *, uint64_t, uint64_t, ...))(uintptr_t)add;
    o->m.uc_ctl = (int (*)(void *, int, ...))(uintptr_t)ctl;
    o->m.reg_write = (int (*)(void *, int, const void *))(uintptr_t)wr;
    o->m.cpsr_regid = cpsr; o->m.code_hook_type = code; o->m.ctl_remove_cache = rm;
    Py_RETURN_NONE;
}

/* set_wait_states(ws): flash latency changed at run time (FLASH_ACR.LATENCY; flash.c) */
static PyObject *Model_set_wait_states(ModelObject *o, PyObject *args)
{
    unsigned ws;
    if (!PyArg_ParseTuple(args, "I", &ws)) return NULL;
    vb_flash_set_wait_states(&o->m, ws);
    Py_RETURN_NONE;
}

/* stats() -> dict of the run-time timing counters (blocks.c) */
static PyObject *Model_stats(ModelObject *o, PyObject *noargs)
{
    (void)noargs;
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:I,s:K,s:K,s:K}", "unresolved", (unsigned long long)o->m.unresolved,
                         "it_resyncs", (unsigned long long)o->m.it_resyncs,
                         "hook_restarts", (unsigned long long)o->m.hook_restarts,
                         "dyn_calls", (unsigned long long)o->m.dyn_calls, "code_hooks", o->m.hcount,
                         "reg_reads", (unsigned long long)o->m.rc_reads, "reg_hits", (unsigned long long)o->m.rc_hits,
                         "reg_mismatches", (unsigned long long)o->m.rc_mismatch);
}

static PyObject *Model_reset(ModelObject *o, PyObject *noargs)
{
    (void)noargs;
    model_reset(&o->m);
    Py_RETURN_NONE;
}

static PyObject *Model_flush_blocks(ModelObject *o, PyObject *noargs)
{
    (void)noargs;
    table_clear(&o->m);
    Py_RETURN_NONE;
}

/* Cycles accumulated before the instruction at pc starts (DWT CYCCNT sampling point). */
static PyObject *Model_cycles_at(ModelObject *o, PyObject *args)
{
    unsigned pc;
    if (!PyArg_ParseTuple(args, "I", &pc)) return NULL;
    return PyLong_FromUnsignedLongLong(model_cycles_at(&o->m, pc));
}

/* Rewind the counters to just before (include=False) / after (include=True) the instruction at pc. */
static PyObject *Model_truncate_at(ModelObject *o, PyObject *args)
{
    unsigned pc; int include;
    if (!PyArg_ParseTuple(args, "Ip", &pc, &include)) return NULL;
    if (model_truncate_at(&o->m, pc, include)) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* Cycles before the instruction of the current block that performs the memory access at addr. */
static PyObject *Model_cycles_at_access(ModelObject *o, PyObject *args)
{
    unsigned addr;
    if (!PyArg_ParseTuple(args, "I", &addr)) return NULL;
    return PyLong_FromUnsignedLongLong(now_at_access(&o->m, addr));
}

/* Static cost table of the block at addr (decoded from memory): for tests and debugging. */
static PyObject *Model_block_info(ModelObject *o, PyObject *args)
{
    unsigned addr, size;
    if (!PyArg_ParseTuple(args, "II", &addr, &size)) return NULL;
    Block *b = lookup_block(&o->m, addr, size);
    if (!b) Py_RETURN_NONE;
    PyObject *pre = PyList_New(b->ninsn + 1);
    for (uint32_t i = 0; i <= b->ninsn; i++) PyList_SET_ITEM(pre, i, PyLong_FromUnsignedLong(b->prefix[i]));
    PyObject *steps = PyList_New(b->nsteps);
    for (uint32_t i = 0; i < b->nsteps; i++) {
        const Step *t = &b->steps[i];
        PyList_SET_ITEM(steps, i, Py_BuildValue("(IIIIIIIII)", t->idx, t->op, t->flags, t->rd, t->rn, t->rm,
                                                t->size, t->imm, t->regs));
    }
    PyObject *dyn = PyList_New(b->ndyn);
    for (uint32_t i = 0; i < b->ndyn; i++) {
        const DynSite *d = &b->dyn[i];
        PyList_SET_ITEM(dyn, i, Py_BuildValue("(IIIi)", d->idx, d->kind, d->cond,
                                              d->diff[0] + d->diff[1] + d->diff[2] + d->diff[3] + d->diff[4]));
    }
    return Py_BuildValue("{s:I,s:I,s:I,s:i,s:N,s:N,s:N,s:I,s:I}", "ninsn", b->ninsn, "cost", b->cost,
                         "taken", b->taken, "bad", (int)b->bad, "prefix", pre, "steps", steps, "dyn", dyn,
                         "entry_regs", (unsigned)b->entry_regs, "unresolved", b->unresolved);
}

static PyObject *Model_invalidate_icache(ModelObject *o, PyObject *n) { (void)n; cache_clear(&o->m.icache); Py_RETURN_NONE; }
static PyObject *Model_invalidate_dcache(ModelObject *o, PyObject *n) { (void)n; cache_clear(&o->m.dcache); Py_RETURN_NONE; }

/* ------------------------------------------------------------ Model attributes */
static int set_u64(uint64_t *dst, PyObject *v)
{
    uint64_t x = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred()) return -1;
    *dst = x;
    return 0;
}
static int set_flag(int *dst, PyObject *v)
{
    int on = PyObject_IsTrue(v);
    if (on < 0) return -1;
    *dst = on;
    return 0;
}

static PyObject *Model_get_addr(ModelObject *o, void *c) { (void)c; return PyLong_FromVoidPtr(&o->m); }
static PyObject *Model_get_cycles(ModelObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->m.cycles); }
static int Model_set_cycles(ModelObject *o, PyObject *v, void *c) { (void)c; o->m.cycles = PyLong_AsUnsignedLongLong(v); return PyErr_Occurred() ? -1 : 0; }
static PyObject *Model_get_insns(ModelObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->m.insns); }
static PyObject *Model_get_maxc(ModelObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->m.max_cycles); }
static int Model_set_maxc(ModelObject *o, PyObject *v, void *c) { (void)c; o->m.max_cycles = PyLong_AsUnsignedLongLong(v); return PyErr_Occurred() ? -1 : 0; }
static PyObject *Model_get_maxi(ModelObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->m.max_insns); }
static int Model_set_maxi(ModelObject *o, PyObject *v, void *c) { (void)c; o->m.max_insns = PyLong_AsUnsignedLongLong(v); return PyErr_Occurred() ? -1 : 0; }
static PyObject *Model_get_deadline(ModelObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->m.deadline_ns); }
static int Model_set_deadline(ModelObject *o, PyObject *v, void *c) { (void)c; o->m.deadline_ns = PyLong_AsUnsignedLongLong(v); o->m.deadline_tick = 0; return PyErr_Occurred() ? -1 : 0; }
static PyObject *Model_get_stop(ModelObject *o, void *c) { (void)c; return PyLong_FromLong(o->m.stop); }
static int Model_set_stop(ModelObject *o, PyObject *v, void *c)
{
    (void)c;
    o->m.stop = (int)PyLong_AsLong(v);
    o->m.rc_ok = 0;            /* a run starts: registers may have been written since (blocks.c, register cache) */
    return PyErr_Occurred() ? -1 : 0;
}
static PyObject *Model_get_rcheck(ModelObject *o, void *c) { (void)c; return PyBool_FromLong(o->m.rc_check); }
static int Model_set_rcheck(ModelObject *o, PyObject *v, void *c) { (void)c; return set_flag(&o->m.rc_check, v); }
static PyObject *Model_get_fault(ModelObject *o, void *c)
{
    (void)c;
    return Py_BuildValue("(iII)", o->m.fault_kind, o->m.fault_pc, o->m.fault_addr);
}
static PyObject *Model_get_ic(ModelObject *o, void *c) { (void)c; return PyBool_FromLong(o->m.icache_on); }
static int Model_set_ic(ModelObject *o, PyObject *v, void *c) { (void)c; return set_flag(&o->m.icache_on, v); }
static PyObject *Model_get_dc(ModelObject *o, void *c) { (void)c; return PyBool_FromLong(o->m.dcache_on); }
static int Model_set_dc(ModelObject *o, PyObject *v, void *c) { (void)c; return set_flag(&o->m.dcache_on, v); }
static PyObject *Model_get_fpu(ModelObject *o, void *c) { (void)c; return PyBool_FromLong(o->m.fpu_enabled); }
static int Model_set_fpu(ModelObject *o, PyObject *v, void *c) { (void)c; return set_flag(&o->m.fpu_enabled, v); }
static PyObject *Model_get_cyc_start(ModelObject *o, void *c)
{
    (void)c;
    if (!o->m.cyc_on) Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(o->m.cyc_start);
}
static int Model_set_cyc_start(ModelObject *o, PyObject *v, void *c)
{
    (void)c;
    if (!v || v == Py_None) { o->m.cyc_on = 0; o->m.cyc_start = 0; return 0; }
    if (set_u64(&o->m.cyc_start, v)) return -1;
    o->m.cyc_on = 1;
    return 0;
}
static PyObject *Model_get_cyc_frozen(ModelObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->m.cyc_frozen); }
static int Model_set_cyc_frozen(ModelObject *o, PyObject *v, void *c) { (void)c; return set_u64(&o->m.cyc_frozen, v); }

static PyMethodDef Model_methods[] = {
    {"add_region", (PyCFunction)Model_add_region, METH_VARARGS, "add_region(base, size, host_ptr, is_flash)"},
    {"set_engine", (PyCFunction)Model_set_engine, METH_VARARGS, "set_engine(uc_emu_stop_ptr, uc_reg_read_ptr, pc_regid)"},
    {"reset", (PyCFunction)Model_reset, METH_NOARGS, "zero counters, drop block and cache state"},
    {"flush_blocks", (PyCFunction)Model_flush_blocks, METH_NOARGS, "drop decoded blocks"},
    {"cycles_at", (PyCFunction)Model_cycles_at, METH_VARARGS, "cycles before the instruction at pc"},
    {"truncate_at", (PyCFunction)Model_truncate_at, METH_VARARGS, "rewind counters to pc"},
    {"block_info", (PyCFunction)Model_block_info, METH_VARARGS, "static cost of a block"},
    {"cycles_at_access", (PyCFunction)Model_cycles_at_access, METH_VARARGS, "cycles before the insn accessing addr"},
    {"set_reg_ids", (PyCFunction)Model_set_reg_ids, METH_VARARGS, "unicorn ids of r0..r15"},
    {"set_ppb_fallback", (PyCFunction)Model_set_ppb_fallback, METH_VARARGS, "set_ppb_fallback(read_fn_ptr, user_data[, write_fn_ptr]): PPB reads other than CYCCNT, PPB writes"},
    {"set_hooks", (PyCFunction)Model_set_hooks, METH_VARARGS, "set_hooks(uc_hook_add, uc_ctl, uc_reg_write, cpsr_regid, UC_HOOK_CODE, remove_cache_ctl)"},
    {"set_wait_states", (PyCFunction)Model_set_wait_states, METH_VARARGS, "set_wait_states(ws): flash wait states from now on"},
    {"stats", (PyCFunction)Model_stats, METH_NOARGS, "run-time timing counters"},
    {"invalidate_icache", (PyCFunction)Model_invalidate_icache, METH_NOARGS, ""},
    {"invalidate_dcache", (PyCFunction)Model_invalidate_dcache, METH_NOARGS, ""},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef Model_getset[] = {
    {"address", (getter)Model_get_addr, NULL, "address of the C state (hook user_data)", NULL},
    {"cycles", (getter)Model_get_cycles, (setter)Model_set_cycles, "modelled cycles", NULL},
    {"instructions", (getter)Model_get_insns, NULL, "executed instructions", NULL},
    {"max_cycles", (getter)Model_get_maxc, (setter)Model_set_maxc, "stop when cycles >= this (0 off)", NULL},
    {"max_instructions", (getter)Model_get_maxi, (setter)Model_set_maxi, "stop when instructions >= this (0 off)", NULL},
    {"deadline_ns", (getter)Model_get_deadline, (setter)Model_set_deadline, "stop (STOP_DEADLINE) once time.monotonic_ns() passes this (0 off)", NULL},
    {"stop", (getter)Model_get_stop, (setter)Model_set_stop, "STOP_NONE, STOP_BUDGET, STOP_FAULT or STOP_DEADLINE", NULL},
    {"fault", (getter)Model_get_fault, NULL, "(kind FAULT_*, pc, address)", NULL},
    {"icache_enabled", (getter)Model_get_ic, (setter)Model_set_ic, "", NULL},
    {"dcache_enabled", (getter)Model_get_dc, (setter)Model_set_dc, "", NULL},
    {"fpu_enabled", (getter)Model_get_fpu, (setter)Model_set_fpu, "CPACR grants CP10/CP11", NULL},
    {"check_registers", (getter)Model_get_rcheck, (setter)Model_set_rcheck, "fast mode: verify the register cache against Unicorn (stats: reg_mismatches)", NULL},
    {"cyc_start", (getter)Model_get_cyc_start, (setter)Model_set_cyc_start, "CYCCNT: model cycles when it started counting (None: stopped)", NULL},
    {"cyc_frozen", (getter)Model_get_cyc_frozen, (setter)Model_set_cyc_frozen, "CYCCNT: value when started / stopped / written", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "measure_agent.vboard._cyclemodel.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
    .tp_doc = "Cycle model state; hooks are block_hook_ptr()/mem_hook_ptr() with user_data = address",
};

/* ================================================================== Uart */
typedef struct {
    PyObject_HEAD
    Uart u;                    /* the C state; .address = &u (MMIO user_data) */
} UartObject;

static int Uart_init(UartObject *o, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"v2", "uart_off", NULL};
    int v2 = 0; unsigned off = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pI", kwlist, &v2, &off)) return -1;
    uart_init(&o->u, v2, off);
    return 0;
}

static void Uart_dealloc(UartObject *o)
{
    uart_release(&o->u);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

/* write(data): host -> board, appended to the RX FIFO */
static PyObject *Uart_write(UartObject *o, PyObject *args)
{
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
    int err = uart_rx_append(&o->u, buf.buf, (size_t)buf.len);
    PyBuffer_Release(&buf);
    if (err) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* read() -> bytes: board -> host, the TX buffer drained */
static PyObject *Uart_read(UartObject *o, PyObject *noargs)
{
    (void)noargs;
    size_t n;
    const uint8_t *tx = uart_tx_begin(&o->u, &n);
    PyObject *out = PyBytes_FromStringAndSize((const char *)tx, (Py_ssize_t)n);
    uart_tx_end(&o->u, out != NULL);
    return out;
}

static PyObject *Uart_clear(UartObject *o, PyObject *n) { (void)n; uart_clear(&o->u); Py_RETURN_NONE; }
static PyObject *Uart_reset_regs(UartObject *o, PyObject *n) { (void)n; uart_reset_regs(&o->u); Py_RETURN_NONE; }
static PyObject *Uart_begin_run(UartObject *o, PyObject *n) { (void)n; uart_begin_run(&o->u); Py_RETURN_NONE; }

static PyObject *Uart_set_engine(UartObject *o, PyObject *args)
{
    unsigned long long stop;
    if (!PyArg_ParseTuple(args, "K", &stop)) return NULL;
    o->u.emu_stop = (int (*)(void *))(uintptr_t)stop;
    Py_RETURN_NONE;
}

/* set_baud_check(kernel_hz_address, brr_offset, host_baud, lpuart): kernel_hz_address 0 switches it off */
static PyObject *Uart_set_baud_check(UartObject *o, PyObject *args)
{
    unsigned long long addr;
    unsigned brr_off, baud;
    int lpuart;
    if (!PyArg_ParseTuple(args, "KIIp", &addr, &brr_off, &baud, &lpuart)) return NULL;
    uart_set_baud_check(&o->u, (const uint32_t *)(uintptr_t)addr, brr_off, baud, lpuart);
    Py_RETURN_NONE;
}
static PyObject *Uart_get_baud_fault(UartObject *o, void *c) { (void)c; return PyUnicode_FromString(o->u.baud_fault); }
static PyObject *Uart_get_garbled(UartObject *o, void *c) { (void)c; return PyLong_FromUnsignedLongLong(o->u.garbled); }
static PyObject *Uart_get_addr(UartObject *o, void *c) { (void)c; return PyLong_FromVoidPtr(&o->u); }
static PyObject *Uart_get_rx_pending(UartObject *o, void *c) { (void)c; return PyLong_FromSize_t(uart_rx_pending(&o->u)); }
static PyObject *Uart_get_tx_pending(UartObject *o, void *c) { (void)c; return PyLong_FromSize_t(uart_tx_pending(&o->u)); }
static PyObject *Uart_get_idle(UartObject *o, void *c) { (void)c; return PyBool_FromLong(o->u.idle); }
static int Uart_set_idle(UartObject *o, PyObject *v, void *c)
{
    (void)c; int on = PyObject_IsTrue(v); if (on < 0) return -1;
    uart_set_idle(&o->u, on);
    return 0;
}
static PyObject *Uart_get_polls(UartObject *o, void *c) { (void)c; return PyLong_FromLong(o->u.polls); }

static PyMethodDef Uart_methods[] = {
    {"write", (PyCFunction)Uart_write, METH_VARARGS, "append bytes to the RX FIFO (host -> board)"},
    {"read", (PyCFunction)Uart_read, METH_NOARGS, "drain the TX buffer (board -> host)"},
    {"clear", (PyCFunction)Uart_clear, METH_NOARGS, "empty both FIFOs"},
    {"reset_regs", (PyCFunction)Uart_reset_regs, METH_NOARGS, "zero the register file and the idle detector"},
    {"begin_run", (PyCFunction)Uart_begin_run, METH_NOARGS, "clear the poll counter and the idle flag"},
    {"set_engine", (PyCFunction)Uart_set_engine, METH_VARARGS, "set_engine(uc_emu_stop_ptr)"},
    {"set_baud_check", (PyCFunction)Uart_set_baud_check, METH_VARARGS,
     "set_baud_check(kernel_hz_address, brr_offset, host_baud, lpuart): BRR must match the host's baud"},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef Uart_getset[] = {
    {"address", (getter)Uart_get_addr, NULL, "address of the C state (mmio user_data)", NULL},
    {"rx_pending", (getter)Uart_get_rx_pending, NULL, "bytes in the RX FIFO", NULL},
    {"tx_pending", (getter)Uart_get_tx_pending, NULL, "bytes in the TX buffer", NULL},
    {"idle", (getter)Uart_get_idle, (setter)Uart_set_idle, "the idle rule stopped the emulation", NULL},
    {"polls", (getter)Uart_get_polls, NULL, "status reads in a row with RX empty", NULL},
    {"baud_fault", (getter)Uart_get_baud_fault, NULL, "why bytes were garbled (wrong BRR for the clock), or ''", NULL},
    {"garbled", (getter)Uart_get_garbled, NULL, "bytes sent or received at a wrong baud rate", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject UartType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "measure_agent.vboard._cyclemodel.Uart",
    .tp_basicsize = sizeof(UartObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Uart_init,
    .tp_dealloc = (destructor)Uart_dealloc,
    .tp_methods = Uart_methods,
    .tp_getset = Uart_getset,
    .tp_doc = "UART(v2, uart_off): native MMIO model; callbacks uart_mmio_ptrs() with user_data = address",
};

/* ================================================================== module */
static PyObject *block_hook_ptr(PyObject *s, PyObject *n) { (void)s; (void)n; return PyLong_FromVoidPtr((void *)block_hook); }
static PyObject *mem_hook_ptr(PyObject *s, PyObject *n) { (void)s; (void)n; return PyLong_FromVoidPtr((void *)mem_hook); }
static PyObject *ppb_read_ptr(PyObject *s, PyObject *n) { (void)s; (void)n; return PyLong_FromVoidPtr((void *)ppb_mmio_read); }
static PyObject *ppb_write_ptr(PyObject *s, PyObject *n) { (void)s; (void)n; return PyLong_FromVoidPtr((void *)ppb_mmio_write); }

static PyObject *uart_mmio_ptrs(PyObject *s, PyObject *n)
{
    (void)s; (void)n;
    return Py_BuildValue("(NN)", PyLong_FromVoidPtr((void *)uart_mmio_read), PyLong_FromVoidPtr((void *)uart_mmio_write));
}

static PyObject *empty_hook_ptrs(PyObject *s, PyObject *n)
{
    (void)s; (void)n;
    return Py_BuildValue("(NN)", PyLong_FromVoidPtr((void *)empty_block_hook), PyLong_FromVoidPtr((void *)empty_mem_hook));
}

static PyObject *py_decode(PyObject *s, PyObject *args)
{
    (void)s;
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
    Insn I;
    if (buf.len < 2) { PyBuffer_Release(&buf); Py_RETURN_NONE; }
    decode(buf.buf, (uint32_t)buf.len, &I);
    PyBuffer_Release(&buf);
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "len", I.len, "cls", I.cls, "dp", I.dp, "dsp", I.dsp,
                         "nregs", I.nregs, "dst", I.dst, "src", I.src);
}

static PyMethodDef module_methods[] = {
    {"uart_mmio_ptrs", uart_mmio_ptrs, METH_NOARGS, "(read, write) native uc_mmio_map callbacks of Uart"},
    {"ppb_read_ptr", ppb_read_ptr, METH_NOARGS, "native PPB uc_mmio_map read callback (user_data = Model)"},
    {"ppb_write_ptr", ppb_write_ptr, METH_NOARGS, "native PPB uc_mmio_map write callback (user_data = Model)"},
    {"empty_hook_ptrs", empty_hook_ptrs, METH_NOARGS, "(block, mem) no-op native hooks, for benchmarks"},
    {"block_hook_ptr", block_hook_ptr, METH_NOARGS, "address of the native UC_HOOK_BLOCK callback"},
    {"mem_hook_ptr", mem_hook_ptr, METH_NOARGS, "address of the native UC_HOOK_MEM_READ/WRITE callback"},
    {"decode", py_decode, METH_VARARGS, "decode one Thumb instruction (debug)"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_cyclemodel", "Native cycle model hooks", -1, module_methods};

PyMODINIT_FUNC PyInit__cyclemodel(void)
{
    if (PyType_Ready(&ModelType) < 0) return NULL;
    if (PyType_Ready(&UartType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&moduledef);
    if (!mod) return NULL;
    Py_INCREF(&ModelType);
    PyModule_AddObject(mod, "Model", (PyObject *)&ModelType);
    Py_INCREF(&UartType);
    PyModule_AddObject(mod, "Uart", (PyObject *)&UartType);
    PyModule_AddStringConstant(mod, "MODEL_VERSION", VB_MODEL_VERSION);
#define CONST(name) PyModule_AddIntConstant(mod, #name, name)
    CONST(CORE_M0P); CONST(CORE_M3); CONST(CORE_M4); CONST(CORE_M7); CONST(CORE_M33);
    CONST(ACC_NONE); CONST(ACC_PREFETCH); CONST(ACC_ART); CONST(ACC_CACHE);
    CONST(FPU_NONE); CONST(FPU_SP); CONST(FPU_DP);
    CONST(STOP_NONE); CONST(STOP_BUDGET); CONST(STOP_FAULT); CONST(STOP_DEADLINE);
    CONST(FAULT_NONE); CONST(FAULT_INVALID_INSN); CONST(FAULT_UNALIGNED); CONST(FAULT_NOCP);
#undef CONST
    if (periph_register(mod) < 0) { Py_DECREF(mod); return NULL; }
    return mod;
}
