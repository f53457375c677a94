/*
 * Cycle model of the virtual board: native Unicorn hooks.
 *
 * - block_hook (UC_HOOK_BLOCK): looks up (or decodes once and caches) the static cost of the
 *   translation block from the instruction bytes (read straight from the host buffers that back
 *   flash / SRAM / TCM), adds the taken-branch refill penalty of the previous block when control
 *   did not fall through, models instruction fetch wait states (none / prefetch / ART / cache),
 *   and enforces the cycle / instruction budget and per-core instruction-set restrictions that
 *   Unicorn does not enforce (DSP on the M3).
 * - mem_hook (UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE): data reads from flash pay wait states
 *   (through the ART data cache / the M7 D-cache when present), and misaligned accesses that fault
 *   on M-profile (any misaligned access on Armv6-M, LDRD/STRD/LDM/STM/LDREX/VLDR/VLDM... on
 *   Armv7-M / Armv8-M) stop the emulation with a fault.
 *
 * - Uart: the UART page as native MMIO (uc_mmio_map with uart_mmio_read/uart_mmio_write): RX/TX
 *   FIFOs, status/data registers of the stm32-usart-v1/v2 layouts, the idle rule (uc_emu_stop).
 * - ppb_mmio_read: the PPB read callback; DWT CYCCNT natively, other registers via a Python fallback.
 *
 * Timing tables: see README.md next to this file.  Everything here is plain C, no Python in the
 * per-instruction or per-block path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

/* ------------------------------------------------------------------ cores */
enum { CORE_M0P = 0, CORE_M3 = 1, CORE_M4 = 2, CORE_M7 = 3, CORE_M33 = 4 };
enum { ACC_NONE = 0, ACC_PREFETCH = 1, ACC_ART = 2, ACC_CACHE = 3 };

/* instruction classes */
enum {
    C_ALU, C_MUL, C_MLA, C_MULL, C_MLAL, C_DSPMUL, C_DIV,
    C_LD, C_ST, C_LDRD, C_STRD, C_LDM, C_STM, C_LDEX, C_STEX,
    C_BR, C_BL, C_BX, C_LDPC, C_POPPC, C_TB,
    C_BARRIER, C_ISB, C_SYSREG, C_NOP, C_IT, C_TRAP,
    C_FALU, C_FMAC, C_FDIV, C_FSQRT, C_FLD, C_FST, C_FLDM, C_FSTM, C_FMOV2, C_FMOVCORE,
    C_UNKNOWN
};

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

static int popcount16(unsigned v) { int c = 0; while (v) { c += v & 1; v >>= 1; } return c; }

/* Decode one Thumb instruction at p (little-endian halfwords). */
static void decode(const uint8_t *p, uint32_t avail, Insn *I)
{
    memset(I, 0, sizeof *I);
    uint16_t h1 = (uint16_t)(p[0] | (p[1] << 8));
    I->src = ALLREGS;
    I->cls = C_UNKNOWN;
    if ((h1 >> 11) >= 0x1D && avail >= 4) {
        uint16_t h2 = (uint16_t)(p[2] | (p[3] << 8));
        I->len = 4;
        unsigned rn = h1 & 15, rd = (h2 >> 8) & 15, rt = h2 >> 12, rm = h2 & 15;
        if ((h1 & 0xFE00) == 0xE800) {              /* load/store multiple, dual, exclusive, TBB */
            if ((h1 & 0xFFD0) == 0xE880 || (h1 & 0xFFD0) == 0xE900 ||
                (h1 & 0xFFD0) == 0xE890 || (h1 & 0xFFD0) == 0xE910) {
                int load = (h1 >> 4) & 1;
                I->nregs = (uint8_t)popcount16(h2);
                I->addr = R(rn); I->src = R(rn) | (load ? 0 : h2); I->align = 1;
                if (load) { I->dst = h2; I->cls = (h2 & 0x8000) ? C_POPPC : C_LDM; }
                else I->cls = C_STM;
            } else if ((h1 & 0xFE40) == 0xE840 && (h1 & 0x0120)) {   /* LDRD/STRD imm */
                int load = (h1 >> 4) & 1;
                I->addr = R(rn); I->align = 1; I->nregs = 2;
                if (load) { I->cls = C_LDRD; I->dst = R(rt) | R(rd); I->src = R(rn); }
                else { I->cls = C_STRD; I->src = R(rn) | R(rt) | R(rd); }
            } else if ((h1 & 0xFFF0) == 0xE8D0 && (h2 & 0xFFE0) == 0xF000) {
                I->cls = C_TB; I->addr = R(rn) | R(rm); I->src = I->addr;
            } else if ((h1 & 0xFFF0) == 0xE850 || ((h1 & 0xFFF0) == 0xE8D0)) {
                I->cls = C_LDEX; I->addr = R(rn); I->dst = R(rt); I->src = R(rn); I->align = 1;
            } else {
                I->cls = C_STEX; I->addr = R(rn); I->align = 1;
            }
        } else if ((h1 & 0xFE00) == 0xEA00) {       /* data processing, shifted register */
            I->cls = C_ALU;
            I->dst = rd == 15 ? 0 : R(rd);
            I->src = (rn == 15 ? 0 : R(rn)) | R(rm);
            if ((h1 & 0xFFF0) == 0xEAC0) I->dsp = 1;                 /* PKHBT/PKHTB */
        } else if ((h1 & 0xFC00) == 0xEC00 || (h1 & 0xFF00) == 0xFE00) {   /* coprocessor / FP */
            unsigned cp = (h2 >> 8) & 15;
            if ((h1 & 0xFF00) == 0xFE00) { I->cls = C_FALU; I->dp = (cp == 11); I->src = 0; return; }
            if (cp != 10 && cp != 11) { I->cls = C_UNKNOWN; return; }
            I->dp = (cp == 11);
            if ((h1 & 0xFE00) == 0xEC00) {          /* extension register load/store, 64-bit moves */
                if ((h1 & 0xFFE0) == 0xEC40) {
                    I->cls = C_FMOV2; I->src = R(rt) | R(rn);
                    if (h1 & 0x10) { I->dst = R(rt) | R(rn); I->src = 0; }
                    I->dp = 0;
                } else if ((h1 & 0xFF20) == 0xED00) {   /* VLDR / VSTR */
                    I->cls = (h1 & 0x10) ? C_FLD : C_FST;
                    I->addr = R(rn); I->src = R(rn); I->align = 1;
                    if (rn == 15 && (h1 & 0x10)) { I->addr = 0; I->src = 0; I->lit = 1; I->lit_off = ((h1 & 0x80) ? 1 : -1) * (int32_t)((h2 & 0xFF) * 4); }
                } else {                                  /* VLDM / VSTM / VPUSH / VPOP */
                    I->cls = (h1 & 0x10) ? C_FLDM : C_FSTM;
                    I->nregs = (uint8_t)(h2 & 0xFF);
                    I->addr = R(rn); I->src = R(rn); I->align = 1;
                    I->dp = 0;
                }
            } else if ((h1 & 0xFF00) == 0xEE00) {
                if (h2 & 0x10) {                           /* core <-> FP register, VMRS/VMSR */
                    I->cls = C_FMOVCORE; I->dp = 0;
                    if (h1 & 0x10) { I->dst = rt == 15 ? 0 : R(rt); I->src = 0; }
                    else I->src = R(rt);
                } else {
                    unsigned opc1 = ((h1 >> 4) & 0xB);
                    I->src = 0;
                    switch (opc1) {
                    case 0x0: case 0x1: case 0x9: case 0xA: I->cls = C_FMAC; break;
                    case 0x2: case 0x3: I->cls = C_FALU; break;
                    case 0x8: I->cls = C_FDIV; break;
                    case 0xB:
                        if ((h1 & 0xF) == 1 && ((h2 >> 6) & 3) == 3) I->cls = C_FSQRT;
                        else I->cls = C_FALU;
                        break;
                    default: I->cls = C_FALU;
                    }
                }
            } else I->cls = C_UNKNOWN;
        } else if ((h1 & 0xF800) == 0xF000) {        /* 11110: DP immediate or branch/misc */
            if (!(h2 & 0x8000)) {
                I->cls = C_ALU;
                I->dst = R(rd);
                if ((h1 & 0xFBF0) == 0xF240) I->src = 0;                 /* MOVW */
                else if ((h1 & 0xFBF0) == 0xF2C0) I->src = R(rd);        /* MOVT */
                else I->src = rn == 15 ? 0 : R(rn);
                if (((h1 & 0xFFF0) == 0xF320 || (h1 & 0xFFF0) == 0xF3A0) && (h2 & 0x70C0) == 0)
                    I->dsp = 1;                                           /* SSAT16/USAT16 */
            } else {
                unsigned op = h2 & 0xD000;
                if (op == 0xD000) { I->cls = C_BL; I->src = 0; I->dst = R(14); }
                else if (op == 0x9000) { I->cls = C_BR; I->src = 0; }
                else if (op == 0x8000) {
                    if (((h1 >> 6) & 0xE) != 0xE) { I->cls = C_BR; I->src = 0; I->cond = 1; }
                    else if ((h1 & 0xFFF0) == 0xF3B0) {
                        unsigned o = (h2 >> 4) & 15;
                        I->cls = (o == 6) ? C_ISB : C_BARRIER; I->src = 0;
                    } else if ((h1 & 0xFFF0) == 0xF3A0) { I->cls = C_NOP; I->src = 0; }
                    else if ((h1 & 0xFFE0) == 0xF3E0) { I->cls = C_SYSREG; I->dst = R(rd); I->src = 0; }
                    else if ((h1 & 0xFFE0) == 0xF380) { I->cls = C_SYSREG; I->src = R(rn); }
                    else if ((h1 & 0xFFF0) == 0xF7F0 && (h2 & 0xF000) == 0xA000) { I->cls = C_TRAP; }
                    else I->cls = C_UNKNOWN;
                } else I->cls = C_UNKNOWN;
            }
        } else if ((h1 & 0xFE00) == 0xF800) {        /* load/store single */
            int load = (h1 >> 4) & 1;
            int imm12 = (h1 >> 7) & 1;
            int regoff = !imm12 && (h2 & 0x0FC0) == 0;
            unsigned size = (h1 >> 5) & 3;   /* 0 byte 1 half 2 word */
            if (rn == 15) { I->addr = 0; regoff = 0; I->lit = (uint8_t)load; I->lit_off = (h1 & 0x80) ? (int32_t)(h2 & 0xFFF) : -(int32_t)(h2 & 0xFFF); }
            else I->addr = R(rn) | (regoff ? R(rm) : 0);
            if (size == 3) { I->cls = C_UNKNOWN; return; }
            if (load) {
                if (rt == 15) {
                    if (size == 2) { I->cls = C_LDPC; I->src = I->addr; }
                    else { I->cls = C_NOP; I->src = 0; }   /* PLD / PLI hints */
                } else { I->cls = C_LD; I->dst = R(rt); I->src = I->addr; }
            } else {
                I->cls = C_ST; I->src = I->addr | R(rt); I->st_imm = !regoff;
            }
            /* writeback forms also write Rn */
            if (!imm12 && !regoff && rn != 15 && (h2 & 0x0800) && (h2 & 0x0100)) I->dst |= R(rn);
        } else if ((h1 & 0xFF00) == 0xFA00) {         /* data processing, register */
            I->cls = C_ALU;
            I->dst = R(rd);
            I->src = (rn == 15 ? 0 : R(rn)) | R(rm);
            if ((h1 & 0xFF80) == 0xFA00) {
                /* LSL/LSR/ASR/ROR.W by register (h2 & 0xF0F0 == 0xF000), or the extend (+add) family */
                if ((h2 & 0xF080) == 0xF080) {
                    unsigned op = (h1 >> 4) & 7;
                    if (op == 2 || op == 3) I->dsp = 1;          /* SXT(A)B16 / UXT(A)B16 */
                    else if (rn != 15) I->dsp = 1;               /* SXTAH/UXTAH/SXTAB/UXTAB */
                }
            } else if ((h2 & 0xF0C0) == 0xF000 || (h2 & 0xF0C0) == 0xF040) {
                I->dsp = 1;                                       /* parallel add/sub */
            } else if ((h2 & 0xF0C0) == 0xF080) {
                unsigned op = (h1 >> 4) & 7;
                if (op == 0 || op == 2) I->dsp = 1;               /* QADD..., SEL */
            }
        } else if ((h1 & 0xFF80) == 0xFB00) {         /* multiply, MAC, USAD8 */
            unsigned op1 = (h1 >> 4) & 7, ra = rt;
            I->dst = R(rd);
            I->src = R(rn) | R(rm) | (ra == 15 ? 0 : R(ra));
            if (op1 == 0) I->cls = (ra == 15 && !(h2 & 0x30)) ? C_MUL : C_MLA;
            else { I->cls = C_DSPMUL; I->dsp = 1; }
        } else if ((h1 & 0xFF80) == 0xFB80) {         /* long multiply, divide */
            unsigned op1 = (h1 >> 4) & 7, op2 = (h2 >> 4) & 15;
            I->dst = R(rt) | R(rd);
            I->src = R(rn) | R(rm);
            switch (op1) {
            case 0: case 2: I->cls = C_MULL; break;
            case 1: case 3: I->cls = C_DIV; I->dst = R(rd); break;
            case 4: I->cls = C_MLAL; I->src |= R(rt) | R(rd); if (op2 != 0) I->dsp = 1; break;
            case 5: I->cls = C_MLAL; I->src |= R(rt) | R(rd); I->dsp = 1; break;
            case 6: I->cls = C_MLAL; I->src |= R(rt) | R(rd); if (op2 != 0) I->dsp = 1; break;
            default: I->cls = C_UNKNOWN;
            }
        } else {
            I->cls = C_UNKNOWN;
        }
        return;
    }
    /* 16-bit */
    I->len = 2;
    unsigned lo3 = h1 & 7, mid3 = (h1 >> 3) & 7, hi3 = (h1 >> 8) & 7;
    switch (h1 >> 12) {
    case 0x0: case 0x1:
        I->cls = C_ALU; I->dst = R(lo3);
        if ((h1 & 0xF800) == 0x1800) I->src = R(mid3) | ((h1 & 0x0400) ? 0 : R((h1 >> 6) & 7));
        else I->src = R(mid3);
        break;
    case 0x2: case 0x3: {
        unsigned op = (h1 >> 11) & 3;
        I->cls = C_ALU; I->dst = op == 1 ? 0 : R(hi3); I->src = op == 0 ? 0 : R(hi3);
        break;
    }
    case 0x4:
        if ((h1 & 0xFC00) == 0x4000) {
            unsigned op = (h1 >> 6) & 15;
            I->src = R(lo3) | R(mid3);
            I->dst = (op == 8 || op == 10 || op == 11) ? 0 : R(lo3);
            I->cls = (op == 13) ? C_MUL : C_ALU;
        } else if ((h1 & 0xFC00) == 0x4400) {
            unsigned op = (h1 >> 8) & 3, rdn = ((h1 >> 4) & 8) | lo3, rm = (h1 >> 3) & 15;
            if (op == 3) { I->cls = C_BX; I->src = R(rm); if (h1 & 0x80) I->dst = R(14); }
            else if (op == 1) { I->cls = C_ALU; I->src = R(rdn) | R(rm); }
            else {
                I->dst = R(rdn); I->src = R(rm) | (op == 0 ? R(rdn) : 0);
                I->cls = (rdn == 15) ? C_BX : C_ALU;
            }
        } else {                                            /* LDR literal */
            I->cls = C_LD; I->dst = R(hi3); I->src = 0; I->addr = 0; I->lit = 1; I->lit_off = (h1 & 0xFF) * 4;
        }
        break;
    case 0x5: {
        unsigned op = (h1 >> 9) & 7;
        I->addr = R(mid3) | R((h1 >> 6) & 7);
        if (op < 3) { I->cls = C_ST; I->src = I->addr | R(lo3); I->st_imm = 0; }
        else { I->cls = C_LD; I->dst = R(lo3); I->src = I->addr; }
        break;
    }
    case 0x6: case 0x7: case 0x8:
        I->addr = R(mid3);
        if (h1 & 0x0800) { I->cls = C_LD; I->dst = R(lo3); I->src = I->addr; }
        else { I->cls = C_ST; I->src = I->addr | R(lo3); I->st_imm = 1; }
        break;
    case 0x9:
        I->addr = R(13);
        if (h1 & 0x0800) { I->cls = C_LD; I->dst = R(hi3); I->src = I->addr; }
        else { I->cls = C_ST; I->src = I->addr | R(hi3); I->st_imm = 1; }
        break;
    case 0xA:
        I->cls = C_ALU; I->dst = R(hi3); I->src = (h1 & 0x0800) ? R(13) : 0;
        break;
    case 0xB:
        if ((h1 & 0x0F00) == 0x0000) { I->cls = C_ALU; I->dst = R(13); I->src = R(13); }
        else if ((h1 & 0x0500) == 0x0100) { I->cls = C_BR; I->src = R(lo3); I->cond = 1; }     /* CBZ/CBNZ */
        else if ((h1 & 0x0F00) == 0x0200 || (h1 & 0x0F00) == 0x0A00) {
            I->cls = C_ALU; I->dst = R(lo3); I->src = R(mid3);
        } else if ((h1 & 0x0E00) == 0x0400) {              /* PUSH */
            I->cls = C_STM; I->nregs = (uint8_t)(popcount16(h1 & 0xFF) + ((h1 >> 8) & 1));
            I->addr = R(13); I->src = ALLREGS; I->align = 1;
        } else if ((h1 & 0x0E00) == 0x0C00) {              /* POP */
            I->nregs = (uint8_t)(popcount16(h1 & 0xFF) + ((h1 >> 8) & 1));
            I->cls = (h1 & 0x0100) ? C_POPPC : C_LDM;
            I->addr = R(13); I->src = R(13); I->dst = (uint16_t)((h1 & 0xFF) | R(13)); I->align = 1;
        } else if ((h1 & 0x0F00) == 0x0E00) { I->cls = C_TRAP; }   /* BKPT */
        else if ((h1 & 0x0F00) == 0x0F00) {
            I->src = 0; I->cls = (h1 & 0xF) ? C_IT : C_NOP;
        } else if ((h1 & 0x0FE0) == 0x0660) { I->cls = C_NOP; I->src = 0; }       /* CPS */
        else I->cls = C_UNKNOWN;
        break;
    case 0xC:
        I->nregs = (uint8_t)popcount16(h1 & 0xFF);
        I->addr = R(hi3); I->align = 1;
        if (h1 & 0x0800) { I->cls = C_LDM; I->dst = (uint16_t)(h1 & 0xFF); I->src = R(hi3); }
        else { I->cls = C_STM; I->src = ALLREGS; }
        break;
    case 0xD:
        if (((h1 >> 8) & 0xF) >= 0xE) I->cls = C_TRAP;      /* UDF / SVC */
        else { I->cls = C_BR; I->src = 0; I->cond = 1; }
        break;
    case 0xE:
        I->cls = C_BR; I->src = 0;
        break;
    default:
        I->cls = C_UNKNOWN;
    }
}

static int is_branch(int cls)
{
    return cls == C_BR || cls == C_BL || cls == C_BX || cls == C_LDPC || cls == C_POPPC || cls == C_TB;
}

/* --------------------------------------------------------- timing tables */
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

#define P_DIRECT 2   /* pipeline refill, direct/register branches (TRM: P = 1..3) */
#define P_LOAD 3     /* pipeline refill after a load to PC / TBB (TRM: "at least 5/6 cycles") */
#define DIV_CYCLES 7 /* UDIV/SDIV: fixed, midpoint of the TRM's 2..12 (data dependent) */

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
    case C_DIV: c.base = DIV_CYCLES; break;
    case C_LD: case C_LDEX: c.base = 2; break;
    case C_ST: c.base = I->st_imm ? 1 : 2; break;
    case C_STEX: c.base = 2; break;
    case C_LDRD: case C_STRD: c.base = 3; break;   /* 1+N, N=2 */
    case C_LDM: case C_STM: c.base = 1 + I->nregs; break;
    case C_POPPC: c.base = 1 + I->nregs; c.taken = P_LOAD; break;
    case C_BR: case C_BL: case C_BX: c.base = 1; c.taken = P_DIRECT; break;
    case C_LDPC: c.base = 2; c.taken = P_LOAD; break;
    case C_TB: c.base = 3; c.taken = P_LOAD; break;
    case C_SYSREG: c.base = 2; break;              /* MRS/MSR 2 */
    case C_BARRIER: c.base = 1; break;             /* 1+B, B = 0 (no outstanding transfers) */
    case C_ISB: c.base = 1 + P_DIRECT; break;
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
static int is_fp(int cls) { return cls >= C_FALU && cls <= C_FMOVCORE; }

/* ---------------------------------------------------------------- blocks */
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

typedef struct { uint32_t base, size; uint8_t *ptr; int flash; } MemRegion;

typedef struct {
    uint32_t nsets, ways, line_shift;
    uint32_t *tags;          /* nsets*ways, 0 = invalid (tag stored +1) */
    uint32_t *age;
    uint32_t tick;
    uint64_t fills;          /* misses + invalidations: an epoch for the per-block hit memo */
} Cache;

typedef struct {
    PyObject_HEAD
    int core, fpu, dsp;
    int accel;
    uint32_t ws;
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
    int stop;                             /* 0 none, 1 budget, 2 fault */
    int fault_kind;                       /* 1 invalid for core, 2 unaligned */
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

static void cache_free(Cache *c) { free(c->tags); free(c->age); memset(c, 0, sizeof *c); }
static int cache_init(Cache *c, uint32_t bytes, uint32_t line, uint32_t ways)
{
    cache_free(c);
    if (!bytes || !line || !ways) return 0;
    uint32_t lines = bytes / line; if (!lines) lines = 1;
    if (ways > lines) ways = lines;
    c->ways = ways; c->nsets = lines / ways; if (!c->nsets) c->nsets = 1;
    c->line_shift = 0; while ((1u << c->line_shift) < line) c->line_shift++;
    c->tags = calloc((size_t)c->nsets * ways, 4); c->age = calloc((size_t)c->nsets * ways, 4);
    return c->tags && c->age ? 0 : -1;
}
static void cache_clear(Cache *c)
{
    c->fills++;
    if (c->tags) { memset(c->tags, 0, (size_t)c->nsets * c->ways * 4); memset(c->age, 0, (size_t)c->nsets * c->ways * 4); }
}
/* returns 1 on hit, 0 on miss (and fills, LRU) */
static int cache_access(Cache *c, uint32_t addr)
{
    uint32_t line = addr >> c->line_shift;
    uint32_t set = line % c->nsets;
    uint32_t *t = c->tags + (size_t)set * c->ways, *a = c->age + (size_t)set * c->ways;
    uint32_t tag = line + 1, victim = 0, oldest = 0xFFFFFFFFu;
    c->tick++;
    for (uint32_t w = 0; w < c->ways; w++) {
        if (t[w] == tag) { a[w] = c->tick; return 1; }
        if (a[w] < oldest) { oldest = a[w]; victim = w; }
    }
    t[victim] = tag; a[victim] = c->tick;
    c->fills++;
    return 0;
}

static const uint8_t *host_ptr(Model *m, uint32_t addr, uint32_t *avail, int *flash)
{
    for (int i = 0; i < m->nregions; i++) {
        MemRegion *r = &m->regions[i];
        if (addr >= r->base && addr - r->base < r->size) {
            *avail = r->size - (addr - r->base);
            if (flash) *flash = r->flash;
            return r->ptr + (addr - r->base);
        }
    }
    return NULL;
}

static void block_free(Block *b)
{
    if (!b) return;
    free(b->off); free(b->prefix); free(b->alignflag); free(b->lit_addr); free(b->lit_idx); free(b->achk_idx); free(b->achk_rn); free(b);
}

static void table_clear(Model *m)
{
    if (m->table) {
        for (uint32_t i = 0; i < m->tcap; i++) block_free(m->table[i]);
        memset(m->table, 0, (size_t)m->tcap * sizeof(Block *));
    }
    m->tcount = 0;
    m->cur = NULL;
}

static inline uint32_t hash32(uint32_t a) { a ^= a >> 16; a *= 0x7feb352d; a ^= a >> 15; a *= 0x846ca68b; a ^= a >> 16; return a; }

static int table_grow(Model *m)
{
    uint32_t ncap = m->tcap ? m->tcap * 2 : 4096;
    Block **nt = calloc(ncap, sizeof(Block *));
    if (!nt) return -1;
    for (uint32_t i = 0; i < m->tcap; i++) {
        Block *b = m->table[i];
        if (!b) continue;
        uint32_t h = hash32(b->addr ^ (b->size << 20)) & (ncap - 1);
        while (nt[h]) h = (h + 1) & (ncap - 1);
        nt[h] = b;
    }
    free(m->table); m->table = nt; m->tcap = ncap;
    return 0;
}

static Block *decode_block(Model *m, uint32_t addr, uint32_t size, const uint8_t *p, uint32_t avail)
{
    Block *b = calloc(1, sizeof(Block));
    if (!b) return NULL;
    uint32_t cap = size / 2 + 1;
    b->off = malloc(cap * sizeof(uint16_t));
    b->prefix = malloc((cap + 1) * sizeof(uint32_t));
    b->alignflag = malloc(cap);
    b->lit_addr = malloc(cap * sizeof(uint32_t));
    b->lit_idx = malloc(cap * sizeof(uint16_t));
    b->achk_idx = malloc(cap * sizeof(uint16_t));
    b->achk_rn = malloc(cap);
    if (!b->off || !b->prefix || !b->alignflag || !b->lit_addr || !b->lit_idx || !b->achk_idx || !b->achk_rn) { block_free(b); return NULL; }
    b->hp = p; b->imemo = UINT64_MAX;
    b->addr = addr; b->size = size; b->bad = -1; b->first_fp = -1;
    b->check = 0;
    memcpy(&b->check, p, size >= 4 && avail >= 4 ? 4 : 2);
    Insn prev, cur;
    memset(&prev, 0, sizeof prev);
    int have_prev = 0, prev_paired = 0, it_left = 0;
    uint16_t written = 0;
    uint32_t cost = 0, pos = 0, n = 0;
    while (pos < size && pos + 2 <= avail) {
        decode(p + pos, avail - pos, &cur);
        Cost c;
        if (m->core == CORE_M0P) c = cost_m0p(&cur);
        else if (m->core == CORE_M7) c = cost_m7(&cur);
        else c = cost_m34(&cur, m->core);
        uint32_t k = c.base;
        if (m->core == CORE_M3 || m->core == CORE_M4 || m->core == CORE_M33) {
            if (have_prev) {
                /* LDR pipelining: a load/store single after a load single saves a cycle if the
                 * first load's destination does not feed the address (TRM 3.3.2). */
                if (prev.cls == C_LD && (cur.cls == C_LD || (cur.cls == C_ST && !cur.st_imm)) &&
                    !(cur.addr & prev.dst) && k > 1)
                    k -= 1;
                /* AGU stall: address depends on the preceding data-processing result (+1). */
                if ((prev.cls == C_ALU || prev.cls == C_MUL || prev.cls == C_MLA || prev.cls == C_DSPMUL) &&
                    (cur.addr & prev.dst) && (cur.cls == C_LD || cur.cls == C_ST || cur.cls == C_LDRD ||
                    cur.cls == C_STRD || cur.cls == C_LDM || cur.cls == C_STM || cur.cls == C_FLD ||
                    cur.cls == C_FST || cur.cls == C_FLDM || cur.cls == C_FSTM || cur.cls == C_LDEX))
                    k += 1;
            }
        } else if (m->core == CORE_M7) {
            /* Dual issue (approximation): the second of two adjacent simple instructions issues in
             * the same cycle when it does not read the first one's result, they do not both access
             * memory, both multiply or both use the FPU; a branch can pair with a preceding simple
             * instruction. */
            int paired = 0;
            if (have_prev && !prev_paired && m7_pairable(&prev) && (m7_pairable(&cur) || cur.cls == C_BR) &&
                !(cur.src & prev.dst) && !(is_mem(cur.cls) && is_mem(prev.cls)) &&
                !(is_mul(cur.cls) && is_mul(prev.cls)) && !(is_fp(cur.cls) && is_fp(prev.cls)) &&
                !(cur.dst & prev.dst) && prev.cls != C_IT)
                paired = 1;
            /* load-use stall: the next instruction reads the loaded register (+1) */
            if (have_prev && prev.cls == C_LD && (cur.src & prev.dst)) k += 1;
            if (paired) k -= 1;
            prev_paired = paired;
        }
        if (cur.cls == C_UNKNOWN && m->core != CORE_M0P) { /* unknown encodings: 1 cycle */ }
        if (is_fp(cur.cls) && b->first_fp < 0) b->first_fp = (int32_t)n;
        if (b->bad < 0) {
            int bad = 0;
            if (cur.dsp && !m->dsp) bad = 1;
            if (is_fp(cur.cls) && m->fpu == 0) bad = 1;
            /* FPv4-SP-D16 has no double-precision arithmetic, but VLDR/VSTR of a D register
               (a pair of S registers) is part of it (Armv7-M ARM A2.5, FPv4-SP extension). */
            if (is_fp(cur.cls) && cur.dp && m->fpu == 1 && cur.cls != C_FLD && cur.cls != C_FST) bad = 1;
            if (cur.len == 4 && m->core == CORE_M0P && cur.cls != C_BL && cur.cls != C_BARRIER &&
                cur.cls != C_ISB && cur.cls != C_SYSREG) bad = 1;
            if (bad) b->bad = (int32_t)n;
        }
        b->off[n] = (uint16_t)pos;
        b->prefix[n] = cost;
        b->alignflag[n] = cur.align;
        if (cur.lit) {
            uint32_t la = ((addr + pos + 4) & ~3u) + (uint32_t)cur.lit_off;
            if (la >= m->flash_base && la < m->flash_end) { b->lit_addr[b->nlit] = la; b->lit_idx[b->nlit] = (uint16_t)n; b->nlit++; }
        }
        if (cur.align) {
            /* SP-based accesses (PUSH/POP, [sp, #imm]) are aligned whenever SP is (always, here) */
            unsigned rn = (cur.addr & 0x7FFF) ? (unsigned)__builtin_ctz(cur.addr) : 15;
            if (cur.addr != R(13)) b->has_align = 1;
            if (cur.addr && cur.addr != R(13) && !(cur.addr & written) && !(cur.addr & (cur.addr - 1))) {
                b->achk_idx[b->nachk] = (uint16_t)n; b->achk_rn[b->nachk] = (uint8_t)rn; b->nachk++;
            }
        }
        written |= cur.dst;
        cost += k;
        pos += cur.len;
        n++;
        int in_it = it_left > 0;
        if (it_left > 0) it_left--;
        if (cur.cls == C_IT) {
            unsigned mask = (unsigned)(p[pos - cur.len] & 0xF), tz = 0;
            while (tz < 4 && !(mask & (1u << tz))) tz++;
            it_left = 4 - (int)tz;
        }
        if (is_branch(cur.cls)) { b->taken = c.taken; b->ends_branch = 1; b->always_taken = !cur.cond && !in_it; }
        else { b->taken = 0; b->ends_branch = 0; b->always_taken = 0; }
        prev = cur; have_prev = 1;
        if (n >= cap) break;
    }
    b->prefix[n] = cost;
    b->ninsn = n;
    b->cost = cost;
    return b;
}

static Block *lookup_block(Model *m, uint32_t addr, uint32_t size)
{
    if (m->tcap == 0 || m->tcount * 2 >= m->tcap) if (table_grow(m)) return NULL;
    uint32_t h = hash32(addr ^ (size << 20)) & (m->tcap - 1);
    while (m->table[h]) {
        Block *b = m->table[h];
        if (b->addr == addr && b->size == size) {
            uint32_t check = 0;
            memcpy(&check, b->hp, size >= 4 ? 4 : 2);
            if (b->check == check) return b;
            /* code at this address changed: re-decode in place */
            uint32_t avail; int flash = 0;
            const uint8_t *p = host_ptr(m, addr, &avail, &flash);
            Block *nb = p ? decode_block(m, addr, size, p, avail) : NULL;
            if (!nb) return NULL;
            block_free(b);
            m->table[h] = nb;
            return nb;
        }
        h = (h + 1) & (m->tcap - 1);
    }
    uint32_t avail; int flash = 0;
    const uint8_t *p = host_ptr(m, addr, &avail, &flash);
    if (!p) return NULL;
    Block *nb = decode_block(m, addr, size, p, avail);
    if (!nb) return NULL;
    m->table[h] = nb;
    m->tcount++;
    return nb;
}

/* Instruction fetch stalls for a block (flash only). */
static uint32_t fetch_cost(Model *m, Block *b, int discontinuity)
{
    m->nlines = 0;
    if (!m->ws) return 0;
    if (b->addr < m->flash_base || b->addr >= m->flash_end) { m->last_fetch_line = 0xFFFFFFFFu; return 0; }
    int cached = (m->accel == ACC_CACHE || m->accel == ACC_ART) && m->icache.tags && m->icache_on;
    uint32_t shift = cached ? m->icache.line_shift : m->fetch_shift;
    uint32_t first = b->addr >> shift, last = (b->addr + b->size - 1) >> shift;
    if (m->accel == ACC_PREFETCH || (m->accel == ACC_ART && !cached)) {
        /* prefetch: sequential lines are hidden; a branch target outside the current line pays WS */
        uint32_t c = (discontinuity && first != m->last_fetch_line) ? m->ws : 0;
        m->last_fetch_line = last;
        m->line_addr[0] = first << shift; m->line_cost[0] = c; m->nlines = 1;
        return c;
    }
    if (cached && b->imemo == m->icache.fills) {
        /* every line of this block hit last time and nothing was filled since: all hits */
        m->last_fetch_line = last;
        return 0;
    }
    uint64_t fills0 = m->icache.fills;
    uint32_t total = 0;
    for (uint32_t line = first; line <= last; line++) {
        uint32_t c = 0;
        int seq = !(line == first && discontinuity);
        if (line == m->last_fetch_line && !cached && !(line == first && discontinuity)) c = 0;  /* same line, sequential */
        else if (line == m->last_fetch_line && cached) c = 0;
        else if (!cached) c = m->ws;                          /* no accelerator, or cache disabled */
        else if (m->accel == ACC_ART) c = cache_access(&m->icache, line << shift) ? 0 : (seq ? 0 : m->ws);
        else c = cache_access(&m->icache, line << shift) ? 0 : m->ws;
        m->last_fetch_line = line;
        if (m->nlines < 64) { m->line_addr[m->nlines] = line << shift; m->line_cost[m->nlines] = c; m->nlines++; }
        total += c;
    }
    if (cached && m->icache.fills == fills0) b->imemo = fills0;
    return total;
}

/* Static literal-pool loads from flash (when the data-side mem hook is not installed). */
static uint32_t literal_cost(Model *m, Block *b)
{
    m->nlitc = 0;
    if (!b->nlit || !m->ws || m->strict) return 0;
    uint32_t total = 0;
    int dc = (m->accel == ACC_ART || m->accel == ACC_CACHE) && m->dcache.tags && m->dcache_on;
    for (uint32_t i = 0; i < b->nlit; i++) {
        uint32_t c = dc ? (cache_access(&m->dcache, b->lit_addr[i]) ? 0 : m->ws) : m->ws;
        if (c && m->nlitc < 64) { m->lit_pos[m->nlitc] = b->lit_idx[i]; m->lit_cost[m->nlitc] = c; m->nlitc++; }
        total += c;
    }
    return total;
}

/* Effective address of a load/store from its encoding and register values (MMIO attribution in
 * fast mode, where Unicorn does not synchronise the PC before memory accesses). Returns 0 when the
 * instruction does not access memory through a register base. */
static int ea_of(const uint8_t *p, const uint32_t *r, uint32_t *ea, uint32_t *span)
{
    uint16_t h1 = (uint16_t)(p[0] | (p[1] << 8));
    *span = 4;
    if ((h1 >> 11) >= 0x1D) {
        uint16_t h2 = (uint16_t)(p[2] | (p[3] << 8));
        unsigned rn = h1 & 15;
        if (rn == 15) return 0;
        if ((h1 & 0xFE00) == 0xF800) {
            if (h1 & 0x80) *ea = r[rn] + (h2 & 0xFFF);
            else if ((h2 & 0x0FC0) == 0) *ea = r[rn] + (r[h2 & 15] << ((h2 >> 4) & 3));
            else if (!(h2 & 0x0400)) *ea = r[rn];
            else *ea = (h2 & 0x0200) ? r[rn] + (h2 & 0xFF) : r[rn] - (h2 & 0xFF);
            return 1;
        }
        if ((h1 & 0xFFD0) == 0xE880 || (h1 & 0xFFD0) == 0xE890) { *ea = r[rn]; *span = 4 * (uint32_t)popcount16(h2); return 1; }
        if ((h1 & 0xFFD0) == 0xE900 || (h1 & 0xFFD0) == 0xE910) { *span = 4 * (uint32_t)popcount16(h2); *ea = r[rn] - *span; return 1; }
        if ((h1 & 0xFE40) == 0xE840 && (h1 & 0x0120)) {
            uint32_t off = (h2 & 0xFF) * 4;
            *ea = !(h1 & 0x0100) ? r[rn] : (h1 & 0x80) ? r[rn] + off : r[rn] - off;
            *span = 8; return 1;
        }
        if ((h1 & 0xFFE0) == 0xE840) { *ea = r[rn] + (h2 & 0xFF) * 4; return 1; }
        if ((h1 & 0xFFE0) == 0xE8C0) { *ea = r[rn]; return 1; }
        if ((h1 & 0xFF20) == 0xED00) { uint32_t off = (h2 & 0xFF) * 4; *ea = (h1 & 0x80) ? r[rn] + off : r[rn] - off; return 1; }
        if ((h1 & 0xFE00) == 0xEC00 && (h1 & 0xFFE0) != 0xEC40) {
            *span = (h2 & 0xFF) * 4;
            *ea = (h1 & 0x0100) ? r[rn] - *span : r[rn];
            return 1;
        }
        return 0;
    }
    unsigned lo3 = h1 & 7, mid3 = (h1 >> 3) & 7;
    (void)lo3;
    switch (h1 >> 12) {
    case 0x5: *ea = r[mid3] + r[(h1 >> 6) & 7]; return 1;
    case 0x6: *ea = r[mid3] + ((h1 >> 6) & 31) * 4; return 1;
    case 0x7: *ea = r[mid3] + ((h1 >> 6) & 31); return 1;
    case 0x8: *ea = r[mid3] + ((h1 >> 6) & 31) * 2; return 1;
    case 0x9: *ea = r[13] + (h1 & 0xFF) * 4; return 1;
    case 0xC: *ea = r[(h1 >> 8) & 7]; *span = 4 * (uint32_t)popcount16(h1 & 0xFF); return 1;
    default: return 0;
    }
}

static void block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    Model *m = (Model *)user_data;
    uint32_t addr = (uint32_t)address;
    m->uc = uc;
    int disc = addr != m->expect_next || m->prev_always;
    if (disc && m->cur) m->cycles += m->prev_taken;
    Block *b = lookup_block(m, addr, size);
    if (!b) { m->cur = NULL; m->expect_next = addr + size; m->prev_taken = 0; m->prev_always = 0; return; }
    m->cycles += fetch_cost(m, b, disc);
    m->cur = b;
    m->cur_base = m->cycles;
    m->cur_extra = 0;
    m->cur_insn_base = m->insns;
    m->cycles += b->cost + literal_cost(m, b);
    m->insns += b->ninsn;
    m->expect_next = addr + size;
    m->prev_taken = b->taken;
    m->prev_always = b->always_taken;
    if (!m->strict && b->nachk && !m->stop && m->reg_read) {
        for (uint32_t k = 0; k < b->nachk; k++) {
            uint32_t r[16] = {0}, ea, span;
            unsigned rn = b->achk_rn[k], i = b->achk_idx[k];
            m->reg_read(uc, m->reg_ids[rn], &r[rn]);
            if (ea_of(b->hp + b->off[i], r, &ea, &span) && (ea & 3)) {
                m->stop = 2; m->fault_kind = 2; m->fault_pc = addr + b->off[i]; m->fault_addr = ea;
                m->emu_stop(uc);
                return;
            }
        }
    }
    if (b->first_fp >= 0 && !m->fpu_enabled && m->fpu && !m->stop) {
        m->stop = 2; m->fault_kind = 3;
        m->fault_pc = addr + b->off[b->first_fp]; m->fault_addr = m->fault_pc;
        m->emu_stop(uc);
        return;
    }
    if (b->bad >= 0 && !m->stop) {
        m->stop = 2; m->fault_kind = 1;
        m->fault_pc = addr + b->off[b->bad]; m->fault_addr = m->fault_pc;
        m->emu_stop(uc);
        return;
    }
    if (((m->max_cycles && m->cycles >= m->max_cycles) || (m->max_insns && m->insns >= m->max_insns)) && !m->stop) {
        m->stop = 1;
        m->emu_stop(uc);
    }
}

/* cycles before instruction i of the current block (dynamic stalls of later fetch lines and literal
 * loads excluded) */
static uint64_t cycles_before(Model *m, int i, uint32_t pc)
{
    uint64_t v = m->cur_base + m->cur->prefix[i] + m->cur_extra;
    for (int k = 0; k < m->nlines; k++)
        if (m->line_addr[k] > pc) v -= m->line_cost[k];
    for (int k = 0; k < m->nlitc; k++)
        if ((int)m->lit_pos[k] < i) v += m->lit_cost[k];
    return v;
}

static int find_index(Block *b, uint32_t pc)
{
    if (!b || pc < b->addr || pc >= b->addr + b->size) return -1;
    uint32_t off = pc - b->addr;
    int lo = 0, hi = (int)b->ninsn - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (b->off[mid] == off) return mid;
        if (b->off[mid] < off) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

static void mem_hook(void *uc, int type, uint64_t address, int size, int64_t value, void *user_data)
{
    Model *m = (Model *)user_data;
    uint32_t a = (uint32_t)address;
    (void)value;
    if (size > 1 && (a & (uint32_t)(size - 1))) {
        int fault = 0;
        if (m->core == CORE_M0P) fault = 1;
        else if ((a & 3) && m->cur && m->cur->has_align) {
            uint32_t pc = 0;
            m->reg_read(uc, m->pc_regid, &pc);
            int i = find_index(m->cur, pc & ~1u);
            if (i >= 0 && m->cur->alignflag[i]) fault = 1;
        }
        if (fault && !m->stop) {
            uint32_t pc = 0;
            m->reg_read(uc, m->pc_regid, &pc);
            m->stop = 2; m->fault_kind = 2; m->fault_pc = pc & ~1u; m->fault_addr = a;
            m->emu_stop(uc);
        }
    }
    if (type == 16 /* UC_MEM_READ */ && a >= m->flash_base && a < m->flash_end && m->ws) {
        uint32_t c = m->ws;
        if ((m->accel == ACC_ART || m->accel == ACC_CACHE) && m->dcache.tags && m->dcache_on)
            c = cache_access(&m->dcache, a) ? 0 : m->ws;
        m->cycles += c;
        m->cur_extra += c;
    }
}

/* ----------------------------------------------------------- Python type */
static void Model_dealloc(Model *m)
{
    table_clear(m);
    free(m->table);
    cache_free(&m->icache); cache_free(&m->dcache);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static int Model_init(Model *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"core", "fpu", "dsp", "accel", "wait_states", "fetch_line",
                             "icache_bytes", "icache_line", "icache_ways",
                             "dcache_bytes", "dcache_line", "dcache_ways", "caches_enabled", "strict", NULL};
    int core, fpu, dsp, accel, caches_enabled = 1, strict = 1;
    unsigned ws, fetch_line, ib = 0, il = 0, iw = 0, db = 0, dl = 0, dw = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiiiII|IIIIIIpp", kwlist, &core, &fpu, &dsp, &accel, &ws,
                                     &fetch_line, &ib, &il, &iw, &db, &dl, &dw, &caches_enabled, &strict))
        return -1;
    m->core = core; m->fpu = fpu; m->dsp = dsp; m->accel = accel; m->ws = ws;
    m->fetch_shift = 0; while ((1u << m->fetch_shift) < fetch_line) m->fetch_shift++;
    if (cache_init(&m->icache, ib, il, iw) || cache_init(&m->dcache, db, dl, dw)) {
        PyErr_NoMemory(); return -1;
    }
    m->icache_on = m->dcache_on = caches_enabled;
    m->strict = strict;
    m->pc_regid = 0;
    m->last_fetch_line = 0xFFFFFFFFu;
    m->expect_next = 0xFFFFFFFFu;
    m->mmio_insn_base = UINT64_MAX; m->mmio_last = -1;
    return 0;
}

static PyObject *Model_add_region(Model *m, PyObject *args)
{
    unsigned base, size; unsigned long long ptr; int flash;
    if (!PyArg_ParseTuple(args, "IIKp", &base, &size, &ptr, &flash)) return NULL;
    if (m->nregions >= 8) { PyErr_SetString(PyExc_ValueError, "too many regions"); return NULL; }
    MemRegion *r = &m->regions[m->nregions++];
    r->base = base; r->size = size; r->ptr = (uint8_t *)(uintptr_t)ptr; r->flash = flash;
    if (flash) { m->flash_base = base; m->flash_end = base + size; }
    Py_RETURN_NONE;
}

static PyObject *Model_set_engine(Model *m, PyObject *args)
{
    unsigned long long stop, rr; int pcid;
    if (!PyArg_ParseTuple(args, "KKi", &stop, &rr, &pcid)) return NULL;
    m->emu_stop = (int (*)(void *))(uintptr_t)stop;
    m->reg_read = (int (*)(void *, int, void *))(uintptr_t)rr;
    m->pc_regid = pcid;
    Py_RETURN_NONE;
}

static PyObject *Model_reset(Model *m, PyObject *noargs)
{
    (void)noargs;
    table_clear(m);
    m->cycles = m->insns = 0;
    m->cur = NULL; m->cur_base = m->cur_extra = m->cur_insn_base = 0;
    m->expect_next = 0xFFFFFFFFu; m->prev_taken = 0; m->prev_always = 0; m->last_fetch_line = 0xFFFFFFFFu;
    m->stop = 0; m->fault_kind = 0; m->fault_pc = m->fault_addr = 0;
    m->mmio_insn_base = UINT64_MAX; m->mmio_last = -1;
    m->nlines = 0; m->nlitc = 0;
    cache_clear(&m->icache); cache_clear(&m->dcache);
    Py_RETURN_NONE;
}

static PyObject *Model_flush_blocks(Model *m, PyObject *noargs)
{
    (void)noargs;
    table_clear(m);
    Py_RETURN_NONE;
}

/* Cycles accumulated before the instruction at pc starts (DWT CYCCNT sampling point). */
static PyObject *Model_cycles_at(Model *m, PyObject *args)
{
    unsigned pc;
    if (!PyArg_ParseTuple(args, "I", &pc)) return NULL;
    pc &= ~1u;
    int i = find_index(m->cur, pc);
    if (i < 0) return PyLong_FromUnsignedLongLong(m->cycles);
    return PyLong_FromUnsignedLongLong(cycles_before(m, i, pc));
}

/* Rewind the counters so that execution ends just before (include=0) or just after (include=1)
 * the instruction at pc of the current block: used when a block is cut short (BKPT, faults). */
static PyObject *Model_truncate_at(Model *m, PyObject *args)
{
    unsigned pc; int include;
    if (!PyArg_ParseTuple(args, "Ip", &pc, &include)) return NULL;
    pc &= ~1u;
    int i = find_index(m->cur, pc);
    if (i < 0) Py_RETURN_FALSE;
    int n = i + (include ? 1 : 0);
    m->cycles = cycles_before(m, n, include ? pc + 1 : pc);
    m->insns = m->cur_insn_base + (uint64_t)n;
    /* resuming at pc starts a new block: no refill penalty charged for it */
    m->expect_next = include ? 0xFFFFFFFFu : pc;
    m->prev_taken = 0; m->prev_always = 0;
    Py_RETURN_TRUE;
}

/* Cycles before the instruction of the current block that performs the memory access at addr
 * (DWT CYCCNT reads/writes in fast mode): the first load/store at or after the previously matched
 * one whose effective address, computed from the current registers, covers addr. */
static uint64_t now_at_access(Model *m, uint32_t addr)
{
    Block *b = m->cur;
    if (!b || !m->reg_read || !m->uc) return m->cycles;
    uint32_t r[16];
    for (int k = 0; k < 16; k++) { r[k] = 0; m->reg_read(m->uc, m->reg_ids[k], &r[k]); }
    int same = m->mmio_insn_base == m->cur_insn_base;
    int start = same ? m->mmio_last + 1 : 0;
    int found = -1, first_mem = -1;
    for (int pass = 0; pass < 2 && found < 0; pass++) {
        int from = pass == 0 ? start : (same ? m->mmio_last : -1);
        if (from < 0) break;
        for (int i = from; i < (int)b->ninsn; i++) {
            uint32_t ea, span;
            if (!ea_of(b->hp + b->off[i], r, &ea, &span)) continue;
            if (first_mem < 0) first_mem = i;
            if (addr - ea < (span ? span : 1)) { found = i; break; }
            if (pass == 1) break;
        }
    }
    if (found < 0) found = first_mem >= 0 ? first_mem : (start < (int)b->ninsn ? start : (int)b->ninsn - 1);
    if (found < 0) return m->cycles;
    m->mmio_insn_base = m->cur_insn_base;
    m->mmio_last = found;
    return cycles_before(m, found, b->addr + b->off[found]);
}

static PyObject *Model_cycles_at_access(Model *m, PyObject *args)
{
    unsigned addr;
    if (!PyArg_ParseTuple(args, "I", &addr)) return NULL;
    return PyLong_FromUnsignedLongLong(now_at_access(m, addr));
}

/* Modelled cycles before the instruction doing the current PPB access at addr (as
 * VirtualBoard._now): strict mode reads the PC (synchronised by the mem hook), fast mode matches the
 * access against the block's loads/stores. */
static uint64_t now_ppb(Model *m, void *uc, uint32_t addr)
{
    if (m->strict) {
        uint32_t pc = 0;
        if (m->reg_read) m->reg_read(uc, m->pc_regid, &pc);
        pc &= ~1u;
        int i = find_index(m->cur, pc);
        return i < 0 ? m->cycles : cycles_before(m, i, pc);
    }
    return now_at_access(m, addr);
}

/* Native read callback of the PPB MMIO page: DWT CYCCNT here (it is read in the firmware's UART
 * receive loop, once per byte), everything else through the Python model (ppb_fallback). */
static uint64_t ppb_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data)
{
    Model *m = (Model *)user_data;
    uint32_t addr = 0xE0000000u + (uint32_t)offset;
    if ((addr & ~3u) == 0xE0001004u) {
        uint64_t v = m->cyc_on ? (m->cyc_frozen + now_ppb(m, uc, addr) - m->cyc_start) : m->cyc_frozen;
        v &= 0xFFFFFFFFu;
        uint64_t mask = size >= 8 ? ~(uint64_t)0 : (((uint64_t)1 << (8 * size)) - 1);
        return (v >> ((addr & 3) * 8)) & mask;
    }
    return m->ppb_fallback ? m->ppb_fallback(uc, offset, size, m->ppb_fallback_ud) : 0;
}

static PyObject *Model_set_ppb_fallback(Model *m, PyObject *args)
{
    unsigned long long fn, ud;
    if (!PyArg_ParseTuple(args, "KK", &fn, &ud)) return NULL;
    m->ppb_fallback = (uint64_t (*)(void *, uint64_t, unsigned, void *))(uintptr_t)fn;
    m->ppb_fallback_ud = (void *)(uintptr_t)ud;
    Py_RETURN_NONE;
}

static PyObject *Model_get_cyc_start(Model *m, void *c)
{
    (void)c;
    if (!m->cyc_on) Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(m->cyc_start);
}
static int Model_set_cyc_start(Model *m, PyObject *v, void *c)
{
    (void)c;
    if (!v || v == Py_None) { m->cyc_on = 0; m->cyc_start = 0; return 0; }
    uint64_t x = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred()) return -1;
    m->cyc_start = x; m->cyc_on = 1;
    return 0;
}
static PyObject *Model_get_cyc_frozen(Model *m, void *c) { (void)c; return PyLong_FromUnsignedLongLong(m->cyc_frozen); }
static int Model_set_cyc_frozen(Model *m, PyObject *v, void *c)
{
    (void)c;
    uint64_t x = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred()) return -1;
    m->cyc_frozen = x;
    return 0;
}

static PyObject *Model_set_reg_ids(Model *m, PyObject *args)
{
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "reg ids must be a sequence of 16 ints");
    if (!fast) return NULL;
    if (PySequence_Fast_GET_SIZE(fast) != 16) { Py_DECREF(fast); PyErr_SetString(PyExc_ValueError, "16 ids"); return NULL; }
    for (int k = 0; k < 16; k++) m->reg_ids[k] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, k));
    Py_DECREF(fast);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* Static cost table of the block at addr (decoded from memory): for tests and debugging. */
static PyObject *Model_block_info(Model *m, PyObject *args)
{
    unsigned addr, size;
    if (!PyArg_ParseTuple(args, "II", &addr, &size)) return NULL;
    Block *b = lookup_block(m, addr, size);
    if (!b) Py_RETURN_NONE;
    PyObject *pre = PyList_New(b->ninsn + 1);
    for (uint32_t i = 0; i <= b->ninsn; i++) PyList_SET_ITEM(pre, i, PyLong_FromUnsignedLong(b->prefix[i]));
    return Py_BuildValue("{s:I,s:I,s:I,s:i,s:N}", "ninsn", b->ninsn, "cost", b->cost, "taken", b->taken,
                         "bad", (int)b->bad, "prefix", pre);
}

static PyObject *Model_get_addr(Model *m, void *c) { (void)c; return PyLong_FromVoidPtr(m); }
static PyObject *Model_get_cycles(Model *m, void *c) { (void)c; return PyLong_FromUnsignedLongLong(m->cycles); }
static int Model_set_cycles(Model *m, PyObject *v, void *c) { (void)c; m->cycles = PyLong_AsUnsignedLongLong(v); return PyErr_Occurred() ? -1 : 0; }
static PyObject *Model_get_insns(Model *m, void *c) { (void)c; return PyLong_FromUnsignedLongLong(m->insns); }
static PyObject *Model_get_maxc(Model *m, void *c) { (void)c; return PyLong_FromUnsignedLongLong(m->max_cycles); }
static int Model_set_maxc(Model *m, PyObject *v, void *c) { (void)c; m->max_cycles = PyLong_AsUnsignedLongLong(v); return PyErr_Occurred() ? -1 : 0; }
static PyObject *Model_get_maxi(Model *m, void *c) { (void)c; return PyLong_FromUnsignedLongLong(m->max_insns); }
static int Model_set_maxi(Model *m, PyObject *v, void *c) { (void)c; m->max_insns = PyLong_AsUnsignedLongLong(v); return PyErr_Occurred() ? -1 : 0; }
static PyObject *Model_get_stop(Model *m, void *c) { (void)c; return PyLong_FromLong(m->stop); }
static int Model_set_stop(Model *m, PyObject *v, void *c) { (void)c; m->stop = (int)PyLong_AsLong(v); return PyErr_Occurred() ? -1 : 0; }
static PyObject *Model_get_fault(Model *m, void *c)
{
    (void)c;
    return Py_BuildValue("(iII)", m->fault_kind, m->fault_pc, m->fault_addr);
}
static PyObject *Model_get_ic(Model *m, void *c) { (void)c; return PyBool_FromLong(m->icache_on); }
static int Model_set_ic(Model *m, PyObject *v, void *c)
{
    (void)c; int on = PyObject_IsTrue(v); if (on < 0) return -1;
    m->icache_on = on; return 0;
}
static PyObject *Model_get_fpu(Model *m, void *c) { (void)c; return PyBool_FromLong(m->fpu_enabled); }
static int Model_set_fpu(Model *m, PyObject *v, void *c)
{
    (void)c; int on = PyObject_IsTrue(v); if (on < 0) return -1;
    m->fpu_enabled = on; return 0;
}
static PyObject *Model_get_dc(Model *m, void *c) { (void)c; return PyBool_FromLong(m->dcache_on); }
static int Model_set_dc(Model *m, PyObject *v, void *c)
{
    (void)c; int on = PyObject_IsTrue(v); if (on < 0) return -1;
    m->dcache_on = on; return 0;
}
static PyObject *Model_invalidate_icache(Model *m, PyObject *n) { (void)n; cache_clear(&m->icache); Py_RETURN_NONE; }
static PyObject *Model_invalidate_dcache(Model *m, PyObject *n) { (void)n; cache_clear(&m->dcache); Py_RETURN_NONE; }

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
    {"set_ppb_fallback", (PyCFunction)Model_set_ppb_fallback, METH_VARARGS, "set_ppb_fallback(read_fn_ptr, user_data): PPB reads other than CYCCNT"},
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
    {"stop", (getter)Model_get_stop, (setter)Model_set_stop, "0 none, 1 budget, 2 fault", NULL},
    {"fault", (getter)Model_get_fault, NULL, "(kind, pc, address)", NULL},
    {"icache_enabled", (getter)Model_get_ic, (setter)Model_set_ic, "", NULL},
    {"dcache_enabled", (getter)Model_get_dc, (setter)Model_set_dc, "", NULL},
    {"fpu_enabled", (getter)Model_get_fpu, (setter)Model_set_fpu, "CPACR grants CP10/CP11", NULL},
    {"cyc_start", (getter)Model_get_cyc_start, (setter)Model_set_cyc_start, "CYCCNT: model cycles when it started counting (None: stopped)", NULL},
    {"cyc_frozen", (getter)Model_get_cyc_frozen, (setter)Model_set_cyc_frozen, "CYCCNT: value when started / stopped / written", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "measure_agent.vboard._cyclemodel.Model",
    .tp_basicsize = sizeof(Model),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
    .tp_doc = "Cycle model state; hooks are block_hook_ptr()/mem_hook_ptr() with user_data = address",
};

static PyObject *block_hook_ptr(PyObject *s, PyObject *n) { (void)s; (void)n; return PyLong_FromVoidPtr((void *)block_hook); }
static PyObject *mem_hook_ptr(PyObject *s, PyObject *n) { (void)s; (void)n; return PyLong_FromVoidPtr((void *)mem_hook); }

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


/* ------------------------------------------------------------------ UART
 * The UART's 4 KB page as a native Unicorn MMIO region (uc_mmio_map with the C callbacks below,
 * user_data = the Uart state): RX / TX FIFOs, the status / data registers of the two STM32 layouts
 * and the idle rule (two status reads in a row with the RX FIFO empty -> uc_emu_stop, idle flag).
 * The callbacks run while Python has released the GIL (uc_emu_start through ctypes): the FIFOs are
 * protected by a mutex so that another thread may call write()/read() during a run. */
typedef struct {
    PyObject_HEAD
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

static uint64_t uart_mmio_read(void *uc, uint64_t offset, unsigned size, void *user_data)
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

static void uart_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user_data)
{
    Uart *u = (Uart *)user_data;
    (void)uc; (void)size;
    uint32_t rel = (uint32_t)offset - u->uart_off;
    pthread_mutex_lock(&u->lock);
    if (rel == u->tdr) {
        uart_tx_push(u, (uint8_t)(value & 0xFF));  /* out of memory: the byte is lost */
        u->polls = 0;
    } else {
        u->regs[((uint32_t)offset & 0xFFFu) >> 2] = value;
    }
    pthread_mutex_unlock(&u->lock);
}

static int Uart_init(Uart *u, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"v2", "uart_off", NULL};
    int v2 = 0; unsigned off = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pI", kwlist, &v2, &off)) return -1;
    pthread_mutex_init(&u->lock, NULL);
    u->uart_off = off;
    if (v2) { u->status = 0x1C; u->rdr = 0x24; u->tdr = 0x28; u->status_extra = (1u << 21) | (1u << 22); }
    else { u->status = 0x00; u->rdr = 0x04; u->tdr = 0x04; u->status_extra = 0; }
    return 0;
}

static void Uart_dealloc(Uart *u)
{
    free(u->rx); free(u->tx);
    pthread_mutex_destroy(&u->lock);
    Py_TYPE(u)->tp_free((PyObject *)u);
}

/* write(data): host -> board, appended to the RX FIFO */
static PyObject *Uart_write(Uart *u, PyObject *args)
{
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
    size_t n = (size_t)buf.len;
    pthread_mutex_lock(&u->lock);
    if (u->rx_head && u->rx_head + u->rx_len + n > u->rx_cap) {
        memmove(u->rx, u->rx + u->rx_head, u->rx_len);
        u->rx_head = 0;
    }
    if (u->rx_len + n > u->rx_cap) {
        size_t cap = u->rx_cap ? u->rx_cap : 4096;
        while (cap < u->rx_len + n) cap *= 2;
        uint8_t *p = realloc(u->rx, cap);
        if (!p) { pthread_mutex_unlock(&u->lock); PyBuffer_Release(&buf); return PyErr_NoMemory(); }
        u->rx = p; u->rx_cap = cap;
    }
    if (n) memcpy(u->rx + u->rx_head + u->rx_len, buf.buf, n);
    u->rx_len += n;
    pthread_mutex_unlock(&u->lock);
    PyBuffer_Release(&buf);
    Py_RETURN_NONE;
}

/* read() -> bytes: board -> host, the TX buffer drained */
static PyObject *Uart_read(Uart *u, PyObject *noargs)
{
    (void)noargs;
    pthread_mutex_lock(&u->lock);
    PyObject *out = PyBytes_FromStringAndSize((const char *)u->tx, (Py_ssize_t)u->tx_len);
    if (out) u->tx_len = 0;
    pthread_mutex_unlock(&u->lock);
    return out;
}

/* clear(): empty both FIFOs */
static PyObject *Uart_clear(Uart *u, PyObject *noargs)
{
    (void)noargs;
    pthread_mutex_lock(&u->lock);
    u->rx_head = u->rx_len = 0; u->tx_len = 0; u->polls = 0; u->idle = 0;
    pthread_mutex_unlock(&u->lock);
    Py_RETURN_NONE;
}

/* reset_regs(): power-on state of the register file and the idle detector (FIFOs kept) */
static PyObject *Uart_reset_regs(Uart *u, PyObject *noargs)
{
    (void)noargs;
    pthread_mutex_lock(&u->lock);
    memset(u->regs, 0, sizeof u->regs); u->polls = 0; u->idle = 0;
    pthread_mutex_unlock(&u->lock);
    Py_RETURN_NONE;
}

/* begin_run(): a run() starts: the poll counter and the idle flag are cleared */
static PyObject *Uart_begin_run(Uart *u, PyObject *noargs)
{
    (void)noargs;
    pthread_mutex_lock(&u->lock);
    u->polls = 0; u->idle = 0;
    pthread_mutex_unlock(&u->lock);
    Py_RETURN_NONE;
}

static PyObject *Uart_set_engine(Uart *u, PyObject *args)
{
    unsigned long long stop;
    if (!PyArg_ParseTuple(args, "K", &stop)) return NULL;
    u->emu_stop = (int (*)(void *))(uintptr_t)stop;
    Py_RETURN_NONE;
}

static PyObject *Uart_get_addr(Uart *u, void *c) { (void)c; return PyLong_FromVoidPtr(u); }
static PyObject *Uart_get_rx_pending(Uart *u, void *c)
{
    (void)c;
    pthread_mutex_lock(&u->lock); size_t n = u->rx_len; pthread_mutex_unlock(&u->lock);
    return PyLong_FromSize_t(n);
}
static PyObject *Uart_get_tx_pending(Uart *u, void *c)
{
    (void)c;
    pthread_mutex_lock(&u->lock); size_t n = u->tx_len; pthread_mutex_unlock(&u->lock);
    return PyLong_FromSize_t(n);
}
static PyObject *Uart_get_idle(Uart *u, void *c) { (void)c; return PyBool_FromLong(u->idle); }
static int Uart_set_idle(Uart *u, PyObject *v, void *c)
{
    (void)c; int on = PyObject_IsTrue(v); if (on < 0) return -1;
    pthread_mutex_lock(&u->lock); u->idle = on; pthread_mutex_unlock(&u->lock);
    return 0;
}
static PyObject *Uart_get_polls(Uart *u, void *c) { (void)c; return PyLong_FromLong(u->polls); }

static PyMethodDef Uart_methods[] = {
    {"write", (PyCFunction)Uart_write, METH_VARARGS, "append bytes to the RX FIFO (host -> board)"},
    {"read", (PyCFunction)Uart_read, METH_NOARGS, "drain the TX buffer (board -> host)"},
    {"clear", (PyCFunction)Uart_clear, METH_NOARGS, "empty both FIFOs"},
    {"reset_regs", (PyCFunction)Uart_reset_regs, METH_NOARGS, "zero the register file and the idle detector"},
    {"begin_run", (PyCFunction)Uart_begin_run, METH_NOARGS, "clear the poll counter and the idle flag"},
    {"set_engine", (PyCFunction)Uart_set_engine, METH_VARARGS, "set_engine(uc_emu_stop_ptr)"},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef Uart_getset[] = {
    {"address", (getter)Uart_get_addr, NULL, "address of the C state (mmio user_data)", NULL},
    {"rx_pending", (getter)Uart_get_rx_pending, NULL, "bytes in the RX FIFO", NULL},
    {"tx_pending", (getter)Uart_get_tx_pending, NULL, "bytes in the TX buffer", NULL},
    {"idle", (getter)Uart_get_idle, (setter)Uart_set_idle, "the idle rule stopped the emulation", NULL},
    {"polls", (getter)Uart_get_polls, NULL, "status reads in a row with RX empty", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject UartType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "measure_agent.vboard._cyclemodel.Uart",
    .tp_basicsize = sizeof(Uart),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Uart_init,
    .tp_dealloc = (destructor)Uart_dealloc,
    .tp_methods = Uart_methods,
    .tp_getset = Uart_getset,
    .tp_doc = "UART(v2, uart_off): native MMIO model; callbacks uart_mmio_ptrs() with user_data = address",
};

static PyObject *ppb_read_ptr(PyObject *s, PyObject *n) { (void)s; (void)n; return PyLong_FromVoidPtr((void *)ppb_mmio_read); }

static PyObject *uart_mmio_ptrs(PyObject *s, PyObject *n)
{
    (void)s; (void)n;
    return Py_BuildValue("(NN)", PyLong_FromVoidPtr((void *)uart_mmio_read), PyLong_FromVoidPtr((void *)uart_mmio_write));
}

PyObject *vb_empty_hooks(PyObject *s, PyObject *n);
static PyMethodDef module_methods[] = {
    {"uart_mmio_ptrs", uart_mmio_ptrs, METH_NOARGS, "(read, write) native uc_mmio_map callbacks of Uart"},
    {"ppb_read_ptr", ppb_read_ptr, METH_NOARGS, "native PPB uc_mmio_map read callback (user_data = Model)"},
    {"empty_hook_ptrs", vb_empty_hooks, METH_NOARGS, "(block, mem) no-op native hooks, for benchmarks"},
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
    PyModule_AddIntConstant(mod, "CORE_M0P", CORE_M0P);
    PyModule_AddIntConstant(mod, "CORE_M3", CORE_M3);
    PyModule_AddIntConstant(mod, "CORE_M4", CORE_M4);
    PyModule_AddIntConstant(mod, "CORE_M7", CORE_M7);
    PyModule_AddIntConstant(mod, "CORE_M33", CORE_M33);
    PyModule_AddIntConstant(mod, "ACC_NONE", ACC_NONE);
    PyModule_AddIntConstant(mod, "ACC_PREFETCH", ACC_PREFETCH);
    PyModule_AddIntConstant(mod, "ACC_ART", ACC_ART);
    PyModule_AddIntConstant(mod, "ACC_CACHE", ACC_CACHE);
    return mod;
}

/* benchmark helpers: hooks that do nothing (measure Unicorn's own hook dispatch cost) */
static void empty_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{ (void)uc; (void)address; (void)size; (void)user_data; }
static void empty_mem_hook(void *uc, int type, uint64_t address, int size, int64_t value, void *user_data)
{ (void)uc; (void)type; (void)address; (void)size; (void)value; (void)user_data; }
PyObject *vb_empty_hooks(PyObject *s, PyObject *n)
{
    (void)s; (void)n;
    return Py_BuildValue("(NN)", PyLong_FromVoidPtr((void *)empty_block_hook), PyLong_FromVoidPtr((void *)empty_mem_hook));
}
