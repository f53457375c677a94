/*
 * The virtual board's native cycle model (the _cyclemodel extension): shared types and the
 * functions one file of native/ calls in another.  One job per file:
 *
 *   decode.c   Thumb decoder: decode() -> Insn, ea_of() (effective address of a load/store)
 *   timing.c   per-core cycle tables (M0+, M3/M4/M33, M7) and the pipeline rules applied while a
 *              block is decoded (LDR pipelining, AGU stall, M7 dual issue and load-use)
 *   flash.c    flash wait states: instruction fetch (none / prefetch / ART / L1 cache / ICACHE),
 *              literal-pool loads (fast mode), data reads (strict mode), the Cache model
 *   blocks.c   block cache (hash table), block decode (decode + timing + ISA checks), the
 *              UC_HOOK_BLOCK and memory hooks, counters before an instruction, Model lifecycle
 *   ppb.c      DWT CYCCNT read natively (PPB MMIO read callback); MMIO access -> instruction
 *   uart.c     the UART MMIO model: RX/TX FIFOs, status/data registers, the idle rule
 *   module.c   the CPython types (Model, Uart), module functions and constants
 *
 * Everything except module.c is plain C (no Python.h): no Python runs per instruction or block.
 * Timing tables and the flash model are documented in ../README.md.
 */
#ifndef VBOARD_CYCLEMODEL_H
#define VBOARD_CYCLEMODEL_H

/* The timing model's version: every result measured on the virtual board carries it, and the cost
 * model keys its tables on it. Change it whenever a rule that can change a cycle count changes. */
#define VB_MODEL_VERSION "2026.12-3"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* everything declared here is internal to the extension (no exported symbols, no PLT calls) */
#pragma GCC visibility push(hidden)

/* ------------------------------------------------------------ constants (also module constants) */
/* Core kind (Model.core) */
enum { CORE_M0P = 0, CORE_M3 = 1, CORE_M4 = 2, CORE_M7 = 3, CORE_M33 = 4 };
/* Flash accelerator (Model.accel): catalogue flash_accelerator none / prefetch / art / cache */
enum { ACC_NONE = 0, ACC_PREFETCH = 1, ACC_ART = 2, ACC_CACHE = 3 };
/* FPU (Model.fpu): none, single precision (FPv4-SP / FPv5-SP), double precision (FPv5-DP) */
enum { FPU_NONE = 0, FPU_SP = 1, FPU_DP = 2 };
/* Why the model stopped the emulation (Model.stop) */
enum { STOP_NONE = 0, STOP_BUDGET = 1, STOP_FAULT = 2, STOP_DEADLINE = 3 };
/* Which fault (Model.fault_kind when stop == STOP_FAULT) */
enum {
    FAULT_NONE = 0,
    FAULT_INVALID_INSN = 1,   /* instruction not implemented by this core (DSP, FP, Thumb-2 on M0+) */
    FAULT_UNALIGNED = 2,      /* unaligned multi-word / exclusive access (any unaligned one on M0+) */
    FAULT_NOCP = 3            /* FP instruction while CPACR does not grant CP10/CP11 */
};

/* Unicorn ABI values the hooks compare against (the extension is built without unicorn.h) */
#define VB_UC_MEM_READ 16     /* uc_mem_type UC_MEM_READ: a data read seen by the memory hook */
#define VB_CPSR_IT_MASK 0x0600FC00u   /* ITSTATE bits of the (x)PSR as Unicorn reads/writes CPSR */

/* ------------------------------------------------------------ instructions (decode.c) */
/* Instruction classes: what the timing tables and the checks distinguish */
enum {
    C_ALU, C_MUL, C_MLA, C_MULL, C_MLAL, C_DSPMUL, C_DIV,
    C_LD, C_ST, C_LDRD, C_STRD, C_LDM, C_STM, C_LDEX, C_STEX,
    C_BR, C_BL, C_BX, C_LDPC, C_POPPC, C_TB,
    C_BARRIER, C_ISB, C_SYSREG, C_NOP, C_IT, C_TRAP,
    C_FALU, C_FMAC, C_FDIV, C_FSQRT, C_FLD, C_FST, C_FLDM, C_FSTM, C_FMOV2, C_FMOVCORE,
    C_UNKNOWN
};

/* One decoded Thumb instruction: class, size and the register sets the pipeline rules need */
typedef struct {
    uint8_t len;      /* 2 or 4 */
    uint8_t cls;
    uint8_t dp;       /* double precision (FP) */
    uint8_t dsp;      /* Armv7E-M DSP extension instruction */
    uint8_t st_imm;   /* store with immediate offset */
    uint8_t nregs;    /* LDM/STM/PUSH/POP register count, VLDM/VSTM word count */
    uint8_t align;    /* needs word alignment (LDRD/STRD/LDM/STM/LDREX/VLDR/VLDM...) */
    uint16_t dst;     /* destination core registers (mask) */
    uint16_t src;     /* source core registers (mask, conservative) */
    uint16_t addr;    /* address registers of a load/store (mask) */
    uint8_t lit;      /* PC-relative (literal) load */
    uint8_t cond;     /* conditional branch (Bcc, CBZ/CBNZ) */
    uint8_t setflags; /* may update NZCV inside an IT block (CMP/CMN/TST/TEQ, 32-bit S forms) */
    int32_t lit_off;  /* offset from Align(PC+4, 4) */
} Insn;

/* One step of a block's data-side program (fast mode, decode.c / blocks.c): decoded once with the block,
 * replayed at block entry from the registers Unicorn hands the block hook, so that every effective
 * address of the block (flash data reads, unaligned accesses, alignment faults) is known without a
 * memory hook. */
typedef struct {
    uint8_t op;         /* OP_* */
    uint8_t rd, rn, rm, ra;   /* registers (0xFF = none); memory: rd = Rt, ra = Rt2 */
    uint8_t shift;      /* shift amount applied to rm (32 = LSR/ASR #32) */
    uint8_t stype;      /* shift type 0 LSL 1 LSR 2 ASR; OP_EXT: 0 UXTB 1 UXTH 2 SXTB 3 SXTH */
    uint8_t size;       /* memory: bytes per transfer (1, 2, 4; 8 = a doubleword) */
    uint8_t nregs;      /* OP_MULTI: words transferred */
    uint16_t flags;     /* M_* (memory steps) */
    uint16_t idx;       /* instruction index in the block */
    uint16_t regs;      /* OP_MULTI: core registers loaded / stored */
    uint16_t need;      /* registers the step reads (set when the program is compiled) */
    uint8_t amask;      /* memory: address bits that make it slow (unaligned: split or fault) */
    uint16_t stale;     /* OP_MULTI store: registers it stores that an unmodelled instruction wrote before */
    uint32_t imm;       /* memory: the offset, negated for a subtracting one (M_ADD then set) */
} Step;
enum {
    OP_NONE = 0, OP_UNKNOWN, OP_MOVI, OP_MOV, OP_ADDI, OP_ADD, OP_SUB, OP_RSBI, OP_ANDI, OP_ORRI, OP_EORI,
    OP_AND, OP_ORR, OP_EOR, OP_BIC, OP_MUL, OP_MLA, OP_MOVT, OP_EXT, OP_MEM, OP_MULTI,
    OP_MEMI,            /* OP_MEM through a base register + immediate, no value read (blocks.c fast path) */
    OP_GRP              /* a group of OP_MEMI on one base register: one range check (blocks.c) */
};
enum {
    M_LOAD = 1, M_SIGNED = 2, M_REGOFF = 4, M_ADD = 8, M_PRE = 16, M_WB = 32, M_ABS = 64, M_DUAL = 128,
    M_DB = 256, M_ALIGN = 512, M_TIME = 1024, M_VALUE = 2048, M_LOG = 4096, M_FP = 8192,
    M_OPT = 16384       /* any step: optional, kept only to predict the block's exit registers */
};

/* An instruction timed at run time by a native UC_HOOK_CODE hook (registered for that address only):
 * an IT block whose cost depends on its condition, or a divide (operand-dependent early termination) */
typedef struct {
    uint16_t idx;       /* instruction index in the block */
    uint8_t kind;       /* DYN_IT / DYN_DIV */
    uint8_t cond;       /* DYN_IT: firstcond; DYN_DIV: its condition (0xE outside an IT block) */
    int8_t diff[5];     /* DYN_IT: per instruction of the IT block and the one after it: cycles when
                           firstcond fails minus cycles when it passes (charged at that instruction) */
    uint8_t slots;      /* DYN_IT: instructions in the IT block */
    uint8_t mem;        /* DYN_IT: bit k = slot k is a memory access (fast mode: timed when it executes) */
    uint8_t sdiv;       /* DYN_DIV: signed */
    uint8_t rn, rm;     /* DYN_DIV: operand registers */
} DynSite;
enum { DYN_IT = 1, DYN_DIV = 2 };

#define ALLREGS 0xFFFF
#define R(n) ((uint16_t)(1u << ((n) & 15)))

static inline int is_branch(int cls)
{
    return cls == C_BR || cls == C_BL || cls == C_BX || cls == C_LDPC || cls == C_POPPC || cls == C_TB;
}
static inline int is_fp(int cls) { return cls >= C_FALU && cls <= C_FMOVCORE; }

/* Decode one Thumb instruction at p (avail bytes readable) */
void decode(const uint8_t *p, uint32_t avail, Insn *I);
/* Data-side semantics of the instruction at p (address pc) as one Step; *wr = registers the step itself
 * computes (the other registers in Insn.dst become unknown) */
void sem_decode(const uint8_t *p, uint32_t avail, uint32_t pc, Step *s, uint16_t *wr, uint16_t *rd);
/* Condition code cond (0..15) against the APSR flags (bits 31..28 NZCV) */
int cond_passes(unsigned cond, uint32_t apsr);
/* Effective address (and span in bytes) of the load/store at p from register values r[0..15];
 * 0 when the instruction does not access memory through a register base */
int ea_of(const uint8_t *p, const uint32_t *r, uint32_t *ea, uint32_t *span);

/* ------------------------------------------------------------ timing (timing.c) */
/* Pipeline state carried from one instruction to the next while a block is decoded */
typedef struct {
    Insn prev;          /* the previous instruction of the block */
    int have_prev;
    int prev_paired;    /* M7: the previous instruction dual-issued with the one before it */
} Pipeline;

void pipeline_start(Pipeline *pl);
/* Cycles of cur on this core after the instructions already fed to pl (per-core table plus the
 * pipeline rules); *taken = the refill penalty if cur branches away.  Advances pl to cur. */
uint32_t insn_cycles(int core, Pipeline *pl, const Insn *cur, uint32_t *taken);
/* As insn_cycles, for an instruction inside an IT block that passes or fails its condition */
uint32_t insn_cycles_cond(int core, Pipeline *pl, const Insn *cur, int passes, uint32_t *taken);
/* UDIV/SDIV cycles for these operands (M3/M4/M33: early termination); DIV_MIN is the static part */
uint32_t div_cycles(int core, int sdiv, uint32_t n, uint32_t d);
#define DIV_MIN 2

/* ------------------------------------------------------------ blocks, memory, caches */
/* A translation block, decoded once from the instruction bytes: static cost and per-instruction
 * tables (blocks.c) */
typedef struct Block {
    uint32_t addr, size;
    uint32_t ninsn;
    uint32_t cost;          /* static cost of the whole block */
    uint32_t taken;         /* refill penalty if the block's last instruction branches away */
    uint32_t check;         /* first bytes, to detect re-use of an address for other code */
    int32_t bad;            /* index of an instruction invalid on this core, or -1 */
    int32_t first_fp;       /* index of the first FP instruction, or -1 */
    uint8_t has_align;      /* contains alignment-sensitive multi-word accesses */
    uint8_t ends_branch;
    uint8_t always_taken;   /* ends with an unconditional branch: refill even if it targets the next insn */
    uint8_t first_wide_odd; /* first instruction is 32-bit at a halfword offset: a refill fetches twice */
    uint8_t it_mem;         /* a load/store inside an IT block (strict mode: the IT-state repair) */
    uint8_t hooks_pending;  /* dynamic sites without their code hook yet */
    uint32_t ndyn;          /* instructions timed by a native code hook (DynSite) */
    DynSite *dyn;
    uint32_t nsteps;        /* fast mode: the data-side program replayed at block entry */
    Step *steps;
    uint16_t entry_regs;    /* registers the program needs at block entry */
    uint16_t clobber;       /* registers whose value after the block the program does not predict */
    uint32_t unresolved;    /* loads/stores whose address the program cannot derive (counted per entry) */
    uint16_t *off;          /* byte offset of each instruction */
    uint32_t *prefix;       /* static cycles before each instruction */
    uint8_t *alignflag;     /* per instruction: needs word alignment */
    const uint8_t *hp;      /* host pointer to the code */
    uint64_t imemo;         /* I-cache fill epoch at which all lines of the block hit */
} Block;

/* A host buffer backing board memory (flash, SRAM, TCM): the code is decoded straight from it */
typedef struct { uint32_t base, size; uint8_t *ptr; int flash; } MemRegion;

/* A set-associative LRU cache of line tags (ART I/D caches, M7 L1 I/D caches, L5 ICACHE; flash.c) */
typedef struct {
    uint32_t nsets, ways, line_shift;
    uint32_t *tags;          /* nsets*ways, 0 = invalid (tag stored +1) */
    uint32_t *age;
    uint32_t tick;
    uint64_t fills;          /* misses + invalidations: an epoch for the per-block hit memo */
} Cache;

/* The whole cycle-model state: configuration, block cache, counters, flash/cache state, CYCCNT.
 * The hooks get a Model * as user_data (module.c embeds it in the Python object). */
typedef struct {
    int core, fpu, dsp;           /* CORE_*, FPU_*, DSP extension present */
    int accel;                    /* ACC_* */
    uint32_t ws;                  /* flash wait states */
    uint32_t fetch_shift;         /* flash fetch line (log2 bytes) */
    Cache icache, dcache;
    int icache_on, dcache_on;     /* enable state (M7: CCR.IC / CCR.DC) */
    int strict;                   /* the mem hook is installed: data-side flash timing is dynamic */
    int fpu_enabled;              /* CPACR CP10/CP11 access granted */
    uint32_t dpos[256]; int32_t dcost[256]; int nd;  /* positioned stalls of the current block: data side
                                                        (fast mode), IT outcomes (counted from dpos on) */
    MemRegion regions[8];
    int nregions;
    int last_region;              /* the region of the data program's previous value read (blocks.c) */
    uint32_t last_dline; uint64_t dline_epoch;  /* the D-cache line read last, still MRU (flash.c) */
    uint32_t flash_base, flash_end;
    /* block cache */
    Block **table;
    uint32_t tcap, tcount;
    /* running state */
    uint64_t cycles, insns;
    uint64_t max_cycles, max_insns;      /* 0 = unlimited */
    uint64_t deadline_ns;                /* CLOCK_MONOTONIC wall-clock limit of the run (0 = none) */
    uint32_t deadline_tick;              /* blocks since the clock was last read */
    Block *cur;
    uint64_t cur_base;                   /* cycles before the current block's first instruction */
    uint64_t cur_extra;                  /* dynamic stalls inside the current block so far */
    uint64_t cur_insn_base;
    uint32_t line_addr[64]; uint32_t line_cost[64]; int nlines;  /* fetch stalls of current block */
    uint32_t expect_next;                /* fall-through address of the previous block */
    int prev_always;                     /* the previous block ended with an unconditional branch */
    uint32_t prev_taken;
    uint32_t last_fetch_line;
    int stop;                            /* STOP_* */
    int fault_kind;                      /* FAULT_* */
    uint32_t fault_pc, fault_addr;
    /* unicorn entry points */
    int (*emu_stop)(void *);
    int (*reg_read)(void *, int, void *);
    int pc_regid;
    int reg_ids[16];                     /* unicorn ids of r0..r15 */
    void *uc;                            /* engine handle, seen by the block hook */
    /* the flash cannot be read as configured (HCLK above what FLASH_ACR.LATENCY allows): the next flash
     * fetch or data read stops the board through this callback (clock.c); NULL while the flash is safe */
    void (*flash_fault)(void *ctx, void *uc);
    void *flash_fault_ctx;
    uint64_t mmio_insn_base; int mmio_last;   /* last matched MMIO access (fast mode) */
    /* DWT CYCCNT (read natively by ppb_mmio_read; written by the Python PPB model) */
    int cyc_on;                          /* counting: CYCCNT = frozen + now - start */
    uint64_t cyc_start, cyc_frozen;
    uint64_t (*ppb_fallback)(void *, uint64_t, unsigned, void *);  /* other PPB reads (Python) */
    void *ppb_fallback_ud;
    void (*ppb_write_fallback)(void *, uint64_t, unsigned, uint64_t, void *);  /* PPB writes (Python) */
    uint64_t acc_cycles, acc_base; uint32_t acc_addr; int acc_valid;  /* the PPB access being served */
    /* run-time timing hooks (blocks.c): code hooks on single instructions, IT state resync */
    int (*reg_write)(void *, int, const void *);
    int (*hook_add)(void *, size_t *, int, void *, void *, uint64_t, uint64_t, ...);
    int (*uc_ctl)(void *, int, ...);
    int cpsr_regid, code_hook_type, ctl_remove_cache;
    uint32_t *hooked; uint32_t hcap, hcount;  /* addresses that have a native code hook */
    uint64_t it_resyncs, hook_restarts, unresolved, dyn_calls;  /* counters (Model.stats()) */
    /* fast mode: register values known between blocks (blocks.c, "register cache") */
    uint32_t rc[16]; uint16_t rc_ok;     /* rc[k] is r[k] now when bit k of rc_ok is set */
    int rc_check;                        /* verify every cached value against Unicorn (tests) */
    uint64_t rc_reads, rc_hits, rc_mismatch;
} Model;

/* flash.c: the Cache model */
int cache_init(Cache *c, uint32_t bytes, uint32_t line, uint32_t ways);
void cache_free(Cache *c);
void cache_clear(Cache *c);                 /* invalidate all lines (a new fill epoch) */
int cache_access(Cache *c, uint32_t addr);  /* 1 hit, 0 miss (the line is filled, LRU) */
/* flash.c: configuration, and the wait states the hooks add */
int flash_init(Model *m, uint32_t wait_states, uint32_t fetch_line, uint32_t ib, uint32_t il, uint32_t iw,
               uint32_t db, uint32_t dl, uint32_t dw, int caches_enabled);
uint32_t fetch_cost(Model *m, Block *b, int discontinuity);   /* instruction fetch stalls of block b */
uint32_t flash_data_read_cost(Model *m, uint32_t addr);        /* one data read from flash */
/* Data-side cost of one access the core makes (size bytes at addr; a load or a store): the extra bus
 * transfers of an unaligned access (M3/M4/M33) and the flash wait states of each read transfer */
uint32_t data_access_cost(Model *m, uint32_t addr, uint32_t size, int load);
/* Flash wait states changed at run time (FLASH_ACR.LATENCY written by the firmware) */
void vb_flash_set_wait_states(Model *m, uint32_t ws);

/* blocks.c: Model lifecycle, regions, the block cache */
void model_init(Model *m, int core, int fpu, int dsp, int accel, int strict);
void model_reset(Model *m);
void model_release(Model *m);
int model_add_region(Model *m, uint32_t base, uint32_t size, uint8_t *ptr, int flash);
void table_clear(Model *m);
Block *lookup_block(Model *m, uint32_t addr, uint32_t size);
/* blocks.c: the native Unicorn hooks (user_data = Model *) */
void block_hook(void *uc, uint64_t address, uint32_t size, void *user_data);
void mem_hook(void *uc, int type, uint64_t address, int size, int64_t value, void *user_data);
void code_hook(void *uc, uint64_t address, uint32_t size, void *user_data);
void empty_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data);
void empty_mem_hook(void *uc, int type, uint64_t address, int size, int64_t value, void *user_data);
/* blocks.c: counters at an instruction of the current block */
int find_index(Block *b, uint32_t pc);
uint64_t cycles_before(Model *m, int i, uint32_t pc);
uint64_t model_cycles_at(Model *m, uint32_t pc);
int model_truncate_at(Model *m, uint32_t pc, int include);

/* ppb.c: DWT CYCCNT and MMIO access attribution */
uint64_t now_at_access(Model *m, uint32_t addr);
uint64_t ppb_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data);
void ppb_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user_data);
/* Model cycles (and, in *insns, instructions) before the instruction doing the MMIO access at addr, as the
 * DWT CYCCNT read sees it: a peripheral model timestamps an event with it (gpio.c) */
uint64_t mmio_now(Model *m, void *uc, uint32_t addr, uint64_t *insns);

/* ------------------------------------------------------------ UART (uart.c) */
/* The UART's 4 KB MMIO page: FIFOs, register offsets of the layout, idle detector */
typedef struct {
    pthread_mutex_t lock;
    uint32_t uart_off;                   /* UART base - page base */
    uint32_t status, rdr, tdr;           /* register offsets from the UART base */
    uint64_t status_extra;               /* TEACK | REACK on the v2 layout */
    uint8_t *rx; size_t rx_head, rx_len, rx_cap;
    uint8_t *tx; size_t tx_len, tx_cap;
    uint64_t regs[1024];                 /* other registers of the page: a plain register file */
    int polls;                           /* status reads in a row with the RX FIFO empty */
    int idle;                            /* the idle rule stopped the emulation in this run */
    int (*emu_stop)(void *);
    /* baud check (uart_set_baud_check): the divisor in BRR at the kernel clock that runs must give the
     * host's baud rate within a receiver's tolerance, else the bytes are garbage: not delivered, and
     * baud_fault says why */
    const uint32_t *kernel_hz;           /* the UART's PCLK, published by the clock model; NULL: no check */
    uint32_t brr_off, host_baud;
    int lpuart;
    uint64_t garbled;                    /* bytes sent or received at a wrong baud */
    char baud_fault[200];
} Uart;

void uart_init(Uart *u, int v2, uint32_t uart_off);
void uart_release(Uart *u);
int uart_rx_append(Uart *u, const void *data, size_t n);      /* host -> board; -1 out of memory */
const uint8_t *uart_tx_begin(Uart *u, size_t *len);           /* locks: the TX bytes so far */
void uart_tx_end(Uart *u, int drained);                       /* unlocks; drained: empty the buffer */
void uart_clear(Uart *u);
void uart_reset_regs(Uart *u);
void uart_begin_run(Uart *u);
size_t uart_rx_pending(Uart *u);
size_t uart_tx_pending(Uart *u);
void uart_set_idle(Uart *u, int on);
void uart_set_baud_check(Uart *u, const uint32_t *kernel_hz, uint32_t brr_off, uint32_t host_baud, int lpuart);
uint64_t uart_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data);
void uart_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user_data);

#pragma GCC visibility pop

#endif /* VBOARD_CYCLEMODEL_H */
