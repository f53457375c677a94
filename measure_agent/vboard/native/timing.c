/*
 * Per-core instruction timing: one cost table per core (base cycles, and the pipeline refill if the
 * instruction branches away), and the pipeline rules applied to each pair of adjacent instructions
 * while a block is decoded.  Sources and the approximations: ../README.md ("Per-core tables").
 * Unknown encodings cost the default 1 cycle.  Flash wait states are not here: flash.c.
 */
#include <string.h>

#include "cyclemodel.h"

typedef struct { uint32_t base; uint32_t taken; } Cost;

/* Cortex-M0+ TRM (DDI0484) sec. 3.3 "Instruction set summary", Table 3-1 cycle counts. */
static Cost cost_m0p(const Insn *I)
{
    Cost c = {1, 0};
    switch (I->cls) {
    case C_MUL: c.base = 1; break;                  /* single-cycle multiplier option */
    case C_LD: case C_ST: c.base = 2; break;
    case C_LDM: case C_STM: c.base = 1 + I->nregs; break;
    case C_POPPC: c.base = 1 + I->nregs; c.taken = 2; break;   /* POP {..,pc} 3+N */
    case C_BR: c.base = 1; c.taken = 1; break;                 /* B/Bcc taken 2, not taken 1 */
    case C_BL: c.base = 2; c.taken = 1; break;                 /* BL 3 */
    case C_BX: c.base = 1; c.taken = 1; break;                 /* BX/BLX/MOV pc 2 */
    case C_BARRIER: case C_ISB: case C_SYSREG: c.base = 3; break;  /* DMB/DSB/ISB/MRS/MSR 3 */
    default: break;
    }
    return c;
}

/* Pipeline refill P (M4 TRM Table 3-1: "1 to 3 depending on the alignment and width of the target
 * instruction, and whether the processor manages to speculate the address early").  The part that
 * depends on the target (a 32-bit instruction at a halfword offset needs a second fetch: +1) is added
 * by the block hook, which knows the target block (blocks.c). */
#define P_DIRECT 1   /* B, Bcc, CBZ/CBNZ, BL: target computed at decode, fetched early (M3 TRM: "taken
                        branches with an immediate are normally 1 cycle of pipeline reload") */
#define P_REG 2      /* BX, BLX, MOV/ADD PC: the target register is read in execute */
#define P_LOAD 3     /* loads to PC, TBB/TBH (TRM 3.3.2: "three cycles for the pipeline reload") */
#define DIV_CYCLES 7 /* M7 UDIV/SDIV: fixed (no public timing) */

/* Cortex-M4 TRM (DDI0439) sec. 3.3.1 Table 3-1 "Cortex-M4 instruction set summary" and
 * ch. 7 Table 7-1 "FPU instruction set"; Cortex-M3 TRM (DDI0337) Table 18-1.
 * Cortex-M33: the TRM publishes no table; the M4 figures are used (documented). */
static Cost cost_m34(const Insn *I, int core)
{
    Cost c = {1, 0};
    int m3 = core == CORE_M3;
    switch (I->cls) {
    case C_MUL: c.base = 1; break;
    case C_MLA: c.base = m3 ? 2 : 1; break;
    case C_MULL: c.base = m3 ? 4 : 1; break;       /* M3: 3..5, early termination -> 4 */
    case C_MLAL: c.base = m3 ? 5 : 1; break;       /* M3: 4..7 -> 5 */
    case C_DSPMUL: c.base = 1; break;
    case C_DIV: c.base = DIV_MIN; break;          /* + the operand-dependent rest (code hook) */
    case C_LD: case C_LDEX: c.base = 2; break;
    case C_ST: c.base = I->st_imm ? 1 : 2; break;
    case C_STEX: c.base = 2; break;
    case C_LDRD: case C_STRD: c.base = 3; break;   /* 1+N, N=2 */
    case C_LDM: case C_STM: c.base = 1 + I->nregs; break;
    case C_POPPC: c.base = 1 + I->nregs; c.taken = P_LOAD; break;
    case C_BR: case C_BL: c.base = 1; c.taken = P_DIRECT; break;
    case C_BX: c.base = 1; c.taken = P_REG; break;
    case C_LDPC: c.base = 2; c.taken = P_LOAD; break;
    case C_TB: c.base = 3; c.taken = P_LOAD; break;
    case C_SYSREG: c.base = 2; break;              /* MRS/MSR 2 */
    case C_BARRIER: c.base = 1; break;             /* 1+B, B = 0 (no outstanding transfers) */
    case C_ISB: c.base = 1 + P_REG; break;          /* 1 + B, B = a refill (kept at 2) */
    case C_FALU: c.base = 1; break;
    case C_FMAC: c.base = 3; break;
    case C_FDIV: case C_FSQRT: c.base = 14; break;
    case C_FLD: case C_FST: c.base = I->dp ? 3 : 2; break;
    case C_FLDM: case C_FSTM: c.base = 1 + I->nregs; break;
    case C_FMOV2: c.base = 2; break;
    case C_FMOVCORE: c.base = 1; break;
    default: break;
    }
    return c;
}

/* Cortex-M7: no public per-instruction table; approximate figures (README.md). */
static Cost cost_m7(const Insn *I)
{
    Cost c = {1, 0};
    switch (I->cls) {
    case C_DIV: c.base = DIV_CYCLES; break;
    case C_LD: case C_ST: case C_LDEX: case C_STEX: case C_LDRD: case C_STRD: c.base = 1; break;
    case C_LDM: case C_STM: c.base = 1 + (I->nregs + 1) / 2; break;
    case C_POPPC: c.base = 1 + (I->nregs + 1) / 2; c.taken = 2; break;
    case C_BR: case C_BL: c.base = 1; c.taken = 1; break;
    case C_BX: c.base = 1; c.taken = 2; break;
    case C_LDPC: case C_TB: c.base = 2; c.taken = 2; break;
    case C_SYSREG: c.base = 2; break;
    case C_ISB: c.base = 4; break;
    case C_FDIV: case C_FSQRT: c.base = I->dp ? 29 : 14; break;
    case C_FLDM: case C_FSTM: c.base = 1 + (I->nregs + 1) / 2; break;
    case C_FMOV2: c.base = 1; break;
    default: break;
    }
    return c;
}

/* M7 dual issue: instructions that can issue in the same cycle as their neighbour */
static int m7_pairable(const Insn *I)
{
    switch (I->cls) {
    case C_ALU: case C_MUL: case C_MLA: case C_DSPMUL: case C_LD: case C_ST: case C_NOP:
    case C_FALU: case C_FMOVCORE: case C_FLD: case C_FST:
        return 1;
    default: return 0;
    }
}
static int is_mem(int cls)
{
    return cls == C_LD || cls == C_ST || cls == C_FLD || cls == C_FST;
}
static int is_mul(int cls) { return cls == C_MUL || cls == C_MLA || cls == C_DSPMUL; }

/* ------------------------------------------------------------ pipeline rules */
void pipeline_start(Pipeline *pl)
{
    memset(&pl->prev, 0, sizeof pl->prev);
    pl->have_prev = 0;
    pl->prev_paired = 0;
}

uint32_t insn_cycles(int core, Pipeline *pl, const Insn *cur, uint32_t *taken)
{
    const Insn *prev = &pl->prev;
    int have_prev = pl->have_prev;
    Cost c;
    if (core == CORE_M0P) c = cost_m0p(cur);
    else if (core == CORE_M7) c = cost_m7(cur);
    else c = cost_m34(cur, core);
    uint32_t k = c.base;
    if (core == CORE_M3 || core == CORE_M4 || core == CORE_M33) {
        if (have_prev) {
            /* LDR pipelining: a load/store single after a load single saves a cycle if the
             * first load's destination does not feed the address (TRM 3.3.2). */
            if (prev->cls == C_LD && (cur->cls == C_LD || (cur->cls == C_ST && !cur->st_imm)) &&
                !(cur->addr & prev->dst) && k > 1)
                k -= 1;
            /* AGU stall: address depends on the preceding data-processing result (+1). */
            if ((prev->cls == C_ALU || prev->cls == C_MUL || prev->cls == C_MLA || prev->cls == C_DSPMUL) &&
                (cur->addr & prev->dst) && (cur->cls == C_LD || cur->cls == C_ST || cur->cls == C_LDRD ||
                cur->cls == C_STRD || cur->cls == C_LDM || cur->cls == C_STM || cur->cls == C_FLD ||
                cur->cls == C_FST || cur->cls == C_FLDM || cur->cls == C_FSTM || cur->cls == C_LDEX))
                k += 1;
        }
        /* Literal loads contend with the fetch unit (TRM 3.3.2: "LDR Rx,[PC,#imm] might add a cycle
         * because of contention with the fetch unit"): the literal comes through the code-memory
         * interface the instruction stream uses (STM32: the flash interface serves D-Code before I-Code,
         * RM0351 3.3.3 / RM0432 3.3.4 / RM0386 3.5.2 "Data management") -> +1, at any wait states. */
        if (cur->lit && (cur->cls == C_LD || cur->cls == C_LDRD || cur->cls == C_FLD)) k += 1;
    } else if (core == CORE_M7) {
        /* Dual issue (approximation): the second of two adjacent simple instructions issues in
         * the same cycle when it does not read the first one's result, they do not both access
         * memory, both multiply or both use the FPU; a branch can pair with a preceding simple
         * instruction. */
        int paired = 0;
        if (have_prev && !pl->prev_paired && m7_pairable(prev) && (m7_pairable(cur) || cur->cls == C_BR) &&
            !(cur->src & prev->dst) && !(is_mem(cur->cls) && is_mem(prev->cls)) &&
            !(is_mul(cur->cls) && is_mul(prev->cls)) && !(is_fp(cur->cls) && is_fp(prev->cls)) &&
            !(cur->dst & prev->dst) && prev->cls != C_IT)
            paired = 1;
        /* load-use stall: the next instruction reads the loaded register (+1) */
        if (have_prev && prev->cls == C_LD && (cur->src & prev->dst)) k += 1;
        if (paired) k -= 1;
        pl->prev_paired = paired;
    }
    *taken = c.taken;
    pl->prev = *cur;
    pl->have_prev = 1;
    return k;
}

/* An instruction inside an IT block (M3/M4/M33).  One that fails its condition does not execute
 * (Armv7-M ARM A7.3: it behaves as a NOP): 1 issue cycle whatever its class, no refill, and it neither
 * pipelines with nor stalls its neighbours (the next instruction sees a NOP before it). */
uint32_t insn_cycles_cond(int core, Pipeline *pl, const Insn *cur, int passes, uint32_t *taken)
{
    if (passes) return insn_cycles(core, pl, cur, taken);
    Insn nop;
    memset(&nop, 0, sizeof nop);
    nop.cls = C_NOP; nop.len = cur->len;
    *taken = 0;
    uint32_t t;
    insn_cycles(core, pl, &nop, &t);
    return 1;
}

/* UDIV/SDIV (M3 TRM Table 18-1, M4 TRM Table 3-1: 2..12 cycles, "early termination ... based on the
 * number of leading ones and zeros in the input operands").  Arm publishes the range only; the model:
 * one issue cycle, then the divider retires 3 quotient bits per cycle, q = clz(|d|) - clz(|n|) + 1
 * quotient bits (the leading-zero definition of Arm's Cortex-R4 TRM, DDI0363 C.8): cycles =
 * max(2, 1 + ceil(q / 3)), which spans exactly 2 (q <= 3, or divisor 0) .. 12 (0xFFFFFFFF / 1). */
uint32_t div_cycles(int core, int sdiv, uint32_t n, uint32_t d)
{
    if (core != CORE_M3 && core != CORE_M4 && core != CORE_M33) return DIV_CYCLES;
    if (sdiv) {
        if ((int32_t)n < 0) n = (uint32_t)-n;
        if ((int32_t)d < 0) d = (uint32_t)-d;
    }
    if (!d || n < d) return 2;
    int q = __builtin_clz(d) - __builtin_clz(n) + 1;
    uint32_t c = 1 + (uint32_t)(q + 2) / 3;
    return c < 2 ? 2 : c > 12 ? 12 : c;
}
