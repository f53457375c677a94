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
#define VB_MODEL_VERSION "2026.12-1"

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
enum { STOP_NONE = 0, STOP_BUDGET = 1, STOP_FAULT = 2 };
/* Which fault (Model.fault_kind when stop == STOP_FAULT) */
enum {
    FAULT_NONE = 0,
    FAULT_INVALID_INSN = 1,   /* instruction not implemented by this core (DSP, FP, Thumb-2 on M0+) */
    FAULT_UNALIGNED = 2,      /* unaligned multi-word / exclusive access (any unaligned one on M0+) */
    FAULT_NOCP = 3            /* FP instruction while CPACR does not grant CP10/CP11 */
};

/* Unicorn ABI values the hooks compare against (the extension is built without unicorn.h) */
#define VB_UC_MEM_READ 16     /* uc_mem_type UC_MEM_READ: a data read seen by the memory hook */

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
    int32_t lit_off;  /* offset from Align(PC+4, 4) */
} Insn;

#define ALLREGS 0xFFFF
#define R(n) ((uint16_t)(1u << ((n) & 15)))

static inline int is_branch(int cls)
{
    return cls == C_BR || cls == C_BL || cls == C_BX || cls == C_LDPC || cls == C_POPPC || cls == C_TB;
}
static inline int is_fp(int cls) { return cls >= C_FALU && cls <= C_FMOVCORE; }

/* Decode one Thumb instruction at p (avail bytes readable) */
void decode(const uint8_t *p, uint32_t avail, Insn *I);
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
    uint16_t *off;          /* byte offset of each instruction */
    uint32_t *prefix;       /* static cycles before each instruction */
    uint8_t *alignflag;     /* per instruction: needs word alignment */
    const uint8_t *hp;      /* host pointer to the code */
    uint64_t imemo;         /* I-cache fill epoch at which all lines of the block hit */
    uint32_t nlit;          /* literal loads from flash (static addresses) */
    uint32_t *lit_addr;
    uint16_t *lit_idx;
    uint32_t nachk;          /* fast mode: alignment checks at block start (base not written before) */
    uint16_t *achk_idx;
    uint8_t *achk_rn;
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
    uint32_t lit_pos[64]; uint32_t lit_cost[64]; int nlitc;  /* literal stalls of current block */
    MemRegion regions[8];
    int nregions;
    uint32_t flash_base, flash_end;
    /* block cache */
    Block **table;
    uint32_t tcap, tcount;
    /* running state */
    uint64_t cycles, insns;
    uint64_t max_cycles, max_insns;      /* 0 = unlimited */
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
    uint64_t mmio_insn_base; int mmio_last;   /* last matched MMIO access (fast mode) */
    /* DWT CYCCNT (read natively by ppb_mmio_read; written by the Python PPB model) */
    int cyc_on;                          /* counting: CYCCNT = frozen + now - start */
    uint64_t cyc_start, cyc_frozen;
    uint64_t (*ppb_fallback)(void *, uint64_t, unsigned, void *);  /* other PPB reads (Python) */
    void *ppb_fallback_ud;
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
uint32_t literal_cost(Model *m, Block *b);                     /* literal-pool loads of b (fast mode) */
uint32_t flash_data_read_cost(Model *m, uint32_t addr);        /* a data read from flash (strict mode) */

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
uint64_t uart_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data);
void uart_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user_data);

#pragma GCC visibility pop

#endif /* VBOARD_CYCLEMODEL_H */
