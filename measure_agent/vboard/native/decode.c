/*
 * Thumb decoder: one 16/32-bit Thumb instruction -> Insn (class, length, register sets, literal
 * offset, alignment needs), and the effective address of a load/store from register values.
 * The classes (C_* in cyclemodel.h) are what timing.c prices and blocks.c checks per core.
 *
 * sem_decode(): the data-side semantics of an instruction as one Step (cyclemodel.h) -- the address
 * arithmetic (MOV/ADD/SUB/shifts/logic with immediates or registers, MOVW/MOVT, ADR, MUL/MLA, extends),
 * loads whose values feed later addresses, and every load/store with its addressing mode.  blocks.c
 * turns a block's steps into the program it replays at block entry in fast mode.
 * cond_passes(): an IT / branch condition against NZCV (Armv7-M ARM A7.3, Table A7-1).
 */
#include <string.h>

#include "cyclemodel.h"

static int popcount16(unsigned v) { int c = 0; while (v) { c += v & 1; v >>= 1; } return c; }

/* Decode one Thumb instruction at p (little-endian halfwords). */
void decode(const uint8_t *p, uint32_t avail, Insn *I)
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
            } else {                                  /* STREX (status in Rd = h2[11:8]), STREXB/H (h2[3:0]) */
                I->cls = C_STEX; I->addr = R(rn); I->align = 1;
                I->dst = (h1 & 0xFFF0) == 0xE840 ? R(rd) : R(rm);
            }
        } else if ((h1 & 0xFE00) == 0xEA00) {       /* data processing, shifted register */
            I->cls = C_ALU;
            I->setflags = (h1 >> 4) & 1;
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
                if (!(h1 & 0x0200)) I->setflags = (h1 >> 4) & 1;              /* modified immediate, S */
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
        I->setflags = op == 1;                                              /* CMP imm */
        break;
    }
    case 0x4:
        if ((h1 & 0xFC00) == 0x4000) {
            unsigned op = (h1 >> 6) & 15;
            I->src = R(lo3) | R(mid3);
            I->dst = (op == 8 || op == 10 || op == 11) ? 0 : R(lo3);
            I->cls = (op == 13) ? C_MUL : C_ALU;
            I->setflags = op == 8 || op == 10 || op == 11;                      /* TST, CMP, CMN */
        } else if ((h1 & 0xFC00) == 0x4400) {
            unsigned op = (h1 >> 8) & 3, rdn = ((h1 >> 4) & 8) | lo3, rm = (h1 >> 3) & 15;
            if (op == 3) { I->cls = C_BX; I->src = R(rm); if (h1 & 0x80) I->dst = R(14); }
            else if (op == 1) { I->cls = C_ALU; I->src = R(rdn) | R(rm); I->setflags = 1; }   /* CMP hi */
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

/* Effective address of a load/store from its encoding and register values (MMIO attribution in
 * fast mode, where Unicorn does not synchronise the PC before memory accesses). Returns 0 when the
 * instruction does not access memory through a register base. */
int ea_of(const uint8_t *p, const uint32_t *r, uint32_t *ea, uint32_t *span)
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


/* ------------------------------------------------------------ conditions */
/* Armv7-M ARM A7.3, Table A7-1: condition code against NZCV (apsr bits 31..28) */
int cond_passes(unsigned cond, uint32_t apsr)
{
    int n = (apsr >> 31) & 1, z = (apsr >> 30) & 1, c = (apsr >> 29) & 1, v = (apsr >> 28) & 1, r;
    switch ((cond >> 1) & 7) {
    case 0: r = z; break;                    /* EQ / NE */
    case 1: r = c; break;                    /* CS / CC */
    case 2: r = n; break;                    /* MI / PL */
    case 3: r = v; break;                    /* VS / VC */
    case 4: r = c && !z; break;              /* HI / LS */
    case 5: r = n == v; break;               /* GE / LT */
    case 6: r = n == v && !z; break;         /* GT / LE */
    default: return 1;                       /* AL */
    }
    return (cond & 1) ? !r : r;
}

/* ------------------------------------------------------------ data-side semantics */
/* T32ExpandImm (Armv7-M ARM A5.3.2) of i:imm3:imm8 */
static uint32_t expand_imm(uint32_t i12)
{
    uint32_t b = i12 & 0xFF;
    if (!(i12 & 0xC00)) {
        switch ((i12 >> 8) & 3) {
        case 0: return b;
        case 1: return b | (b << 16);
        case 2: return (b << 8) | (b << 24);
        default: return b | (b << 8) | (b << 16) | (b << 24);
        }
    }
    uint32_t unrot = 0x80 | (i12 & 0x7F), rot = (i12 >> 7) & 0x1F;
    return (unrot >> rot) | (unrot << (32 - rot));
}

static void st_reset(Step *s)
{
    memset(s, 0, sizeof *s);
    s->rd = s->rn = s->rm = s->ra = 0xFF;
}

/* a load/store single: base rn (15 = PC-relative: absolute address), immediate or register offset */
static void st_mem(Step *s, int load, unsigned size, int sign, unsigned rt, unsigned rn, uint32_t pc)
{
    s->op = OP_MEM; s->size = (uint8_t)size; s->rd = (uint8_t)rt;
    s->flags = (uint16_t)((load ? M_LOAD : 0) | (sign ? M_SIGNED : 0) | M_PRE | M_ADD);
    if (rn == 15) { s->flags |= M_ABS; s->imm = (pc + 4) & ~3u; }
    else s->rn = (uint8_t)rn;
}

void sem_decode(const uint8_t *p, uint32_t avail, uint32_t pc, Step *s, uint16_t *wr, uint16_t *rd)
{
    uint16_t h1 = (uint16_t)(p[0] | (p[1] << 8));
    st_reset(s);
    s->op = OP_UNKNOWN;
    *wr = 0; *rd = 0;
    if ((h1 >> 11) >= 0x1D) {
        if (avail < 4) return;
        uint16_t h2 = (uint16_t)(p[2] | (p[3] << 8));
        unsigned rn = h1 & 15, rdd = (h2 >> 8) & 15, rt = h2 >> 12, rm = h2 & 15;
        if ((h1 & 0xFE00) == 0xE800) {                 /* multiple, dual, exclusive, table branch */
            unsigned op = (h1 >> 7) & 3, load = (h1 >> 4) & 1, w = (h1 >> 5) & 1;
            if ((h1 & 0xFE40) == 0xE800 && (op == 1 || op == 2)) {       /* LDM/STM (IA / DB) */
                s->op = OP_MULTI; s->rn = (uint8_t)rn; s->regs = h2;
                s->nregs = (uint8_t)__builtin_popcount(h2); s->size = 4;
                s->flags = (uint16_t)((load ? M_LOAD : 0) | (op == 2 ? M_DB : 0) | M_ALIGN);
                if (w && !(load && (h2 & R(rn)))) { s->flags |= M_WB; *wr |= R(rn); }
                if (load) *wr |= h2 & 0x7FFF;
                *rd = R(rn);
            } else if ((h1 & 0xFE40) == 0xE840 && (h1 & 0x0120)) {      /* LDRD/STRD immediate */
                st_mem(s, load, 8, 0, rt, rn, pc);
                s->ra = (uint8_t)rdd; s->flags |= M_DUAL | M_ALIGN; s->imm += (h2 & 0xFF) * 4;
                if (rn == 15) { if (!(h1 & 0x80)) s->imm -= 2 * (h2 & 0xFF) * 4; }
                else {
                    s->imm = (h2 & 0xFF) * 4;
                    if (!(h1 & 0x80)) s->flags &= (uint16_t)~M_ADD;
                    if (!(h1 & 0x100)) s->flags &= (uint16_t)~M_PRE;
                    if (w) { s->flags |= M_WB; *wr |= R(rn); }
                    *rd = R(rn);
                }
                if (load) *wr |= R(rt) | R(rdd);
                else *rd |= R(rt) | R(rdd);
            } else if ((h1 & 0xFFF0) == 0xE8D0 && (h2 & 0xFFE0) == 0xF000) {   /* TBB / TBH */
                st_mem(s, 1, (h2 & 0x10) ? 2 : 1, 0, 0xFF, rn, pc);
                if (rn == 15) { s->flags &= (uint16_t)~M_ABS; s->flags |= M_ABS; s->imm = pc + 4; }
                s->flags |= M_REGOFF; s->rm = (uint8_t)rm; s->shift = (h2 & 0x10) ? 1 : 0;
                *rd = (uint16_t)((rn == 15 ? 0 : R(rn)) | R(rm));
            } else if ((h1 & 0xFFF0) == 0xE850 || (h1 & 0xFFF0) == 0xE840) {    /* LDREX / STREX */
                int ld = (h1 & 0xFFF0) == 0xE850;
                st_mem(s, ld, 4, 0, rt, rn, pc);
                s->imm = (h2 & 0xFF) * 4; s->flags |= M_ALIGN;
                *rd = R(rn) | (ld ? 0 : R(rt));
                if (ld) *wr = R(rt);
            } else if ((h1 & 0xFFF0) == 0xE8D0 || (h1 & 0xFFF0) == 0xE8C0) {    /* LDREXB/H, STREXB/H */
                unsigned sz = ((h2 >> 4) & 15) == 4 ? 1 : ((h2 >> 4) & 15) == 5 ? 2 : 4;
                int ld = (h1 & 0xFFF0) == 0xE8D0;
                st_mem(s, ld, sz, 0, rt, rn, pc);
                s->flags |= M_ALIGN;
                *rd = R(rn) | (ld ? 0 : R(rt));
                if (ld) *wr = R(rt);
            }
            return;
        }
        if ((h1 & 0xFE00) == 0xEA00) {                 /* data processing, shifted register */
            unsigned op = (h1 >> 5) & 15, sflag = (h1 >> 4) & 1;
            unsigned type = (h2 >> 4) & 3, imm5 = (((h2 >> 12) & 7) << 2) | ((h2 >> 6) & 3);
            if (rdd == 15 && sflag && (op == 0 || op == 4 || op == 8 || op == 13)) { s->op = OP_NONE; return; }
            if (type == 3) return;                      /* ROR / RRX */
            if ((type == 1 || type == 2) && imm5 == 0) imm5 = 32;
            s->rd = (uint8_t)rdd; s->rm = (uint8_t)rm; s->stype = (uint8_t)type; s->shift = (uint8_t)imm5;
            s->rn = (uint8_t)rn;
            switch (op) {
            case 0: s->op = OP_AND; break;
            case 1: s->op = OP_BIC; break;
            case 2: s->op = rn == 15 ? OP_MOV : OP_ORR; break;
            case 4: s->op = OP_EOR; break;
            case 8: s->op = OP_ADD; break;
            case 13: s->op = OP_SUB; break;
            default: s->op = OP_UNKNOWN; return;
            }
            if (s->op == OP_MOV) s->rn = 0xFF;
            if (rm == 15 || rdd == 15 || s->rn == 15) { s->op = OP_UNKNOWN; return; }
            *wr = R(rdd); *rd = (uint16_t)((s->rn != 0xFF ? R(s->rn) : 0) | R(rm));
            return;
        }
        if ((h1 & 0xF800) == 0xF000 && !(h2 & 0x8000)) {   /* data processing, immediate */
            uint32_t i12 = ((uint32_t)((h1 >> 10) & 1) << 11) | ((uint32_t)((h2 >> 12) & 7) << 8) | (h2 & 0xFF);
            if (rdd == 15) { s->op = (h1 & 0x10) ? OP_NONE : OP_UNKNOWN; return; }   /* TST/TEQ/CMP/CMN */
            s->rd = (uint8_t)rdd;
            if (!(h1 & 0x0200)) {                       /* modified immediate */
                unsigned op = (h1 >> 5) & 15;
                uint32_t imm = expand_imm(i12);
                s->rn = (uint8_t)rn; s->imm = imm;
                switch (op) {
                case 0: s->op = OP_ANDI; break;
                case 1: s->op = OP_ANDI; s->imm = ~imm; break;         /* BIC */
                case 2: if (rn == 15) { s->op = OP_MOVI; s->rn = 0xFF; } else s->op = OP_ORRI; break;
                case 3: if (rn == 15) { s->op = OP_MOVI; s->rn = 0xFF; s->imm = ~imm; } else return; break;
                case 4: s->op = OP_EORI; break;
                case 8: s->op = OP_ADDI; break;
                case 13: s->op = OP_ADDI; s->imm = (uint32_t)-imm; break;
                case 14: s->op = OP_RSBI; break;
                default: return;
                }
                if (s->rn == 15) { s->op = OP_UNKNOWN; return; }   /* PC as an operand: unknown */
            } else {                                      /* plain binary immediate */
                unsigned op = (h1 >> 4) & 0x1F;
                if (op == 0x00 || op == 0x0A) {          /* ADDW / SUBW (ADR.W with rn = 15) */
                    uint32_t imm = op == 0x0A ? (uint32_t)-i12 : i12;
                    if (rn == 15) { s->op = OP_MOVI; s->imm = ((pc + 4) & ~3u) + imm; }
                    else { s->op = OP_ADDI; s->rn = (uint8_t)rn; s->imm = imm; }
                } else if (op == 0x04 || op == 0x0C) {   /* MOVW / MOVT */
                    uint32_t imm16 = ((uint32_t)(h1 & 15) << 12) | i12;
                    s->op = op == 0x04 ? OP_MOVI : OP_MOVT; s->imm = imm16;
                    if (op == 0x0C) s->rn = (uint8_t)rdd;
                } else return;
            }
            *wr = R(rdd); *rd = s->rn != 0xFF ? R(s->rn) : 0;
            return;
        }
        if ((h1 & 0xFE00) == 0xF800) {                 /* load/store single */
            unsigned size = (h1 >> 5) & 3, load = (h1 >> 4) & 1, sign = (h1 >> 8) & 1;
            if (size == 3) return;
            if (load && rt == 15 && size != 2) { s->op = OP_NONE; return; }     /* PLD / PLI */
            st_mem(s, load, 1u << size, sign, rt, rn, pc);
            if (rn == 15) {
                if (!load) return;
                if (h1 & 0x80) s->imm += h2 & 0xFFF; else s->imm -= h2 & 0xFFF;
            } else if (h1 & 0x80) s->imm = h2 & 0xFFF;                       /* imm12 */
            else if ((h2 & 0x0FC0) == 0) {                                    /* register offset */
                s->flags |= M_REGOFF; s->rm = (uint8_t)rm; s->shift = (h2 >> 4) & 3;
                *rd |= R(rm);
            } else if (h2 & 0x0800) {                                         /* imm8: P U W */
                s->imm = h2 & 0xFF;
                if (!(h2 & 0x0200)) s->flags &= (uint16_t)~M_ADD;
                if (!(h2 & 0x0400)) s->flags &= (uint16_t)~M_PRE;
                if (h2 & 0x0100) { s->flags |= M_WB; *wr |= R(rn); }
            } else return;
            if (rn != 15) *rd |= R(rn);
            if (load) { if (rt != 15) *wr |= R(rt); }
            else *rd |= R(rt);
            return;
        }
        if ((h1 & 0xFF80) == 0xFA00 && (h2 & 0xF080) == 0xF080) {   /* extend (and add) */
            unsigned op = (h1 >> 4) & 7, rot = (h2 >> 4) & 3;
            static const int8_t map[8] = {3, 1, -1, -1, 2, 0, -1, -1};   /* SXTH UXTH . . SXTB UXTB */
            if (map[op] < 0 || rot || rdd == 15 || rm == 15) return;
            s->op = OP_EXT; s->rd = (uint8_t)rdd; s->rm = (uint8_t)rm; s->stype = (uint8_t)map[op];
            if (rn != 15) s->ra = (uint8_t)rn;
            *wr = R(rdd); *rd = (uint16_t)(R(rm) | (rn != 15 ? R(rn) : 0));
            return;
        }
        if ((h1 & 0xFFF0) == 0xFB00 && ((h2 >> 4) & 3) == 0) {      /* MUL / MLA */
            if (rdd == 15 || rn == 15 || rm == 15) return;
            s->rd = (uint8_t)rdd; s->rn = (uint8_t)rn; s->rm = (uint8_t)rm;
            if (rt == 15) s->op = OP_MUL; else { s->op = OP_MLA; s->ra = (uint8_t)rt; }
            *wr = R(rdd); *rd = (uint16_t)(R(rn) | R(rm) | (rt == 15 ? 0 : R(rt)));
            return;
        }
        if ((h1 & 0xFC00) == 0xEC00 && (((h2 >> 8) & 15) == 10 || ((h2 >> 8) & 15) == 11)) {
            unsigned dp = ((h2 >> 8) & 15) == 11;
            if ((h1 & 0xFF20) == 0xED00) {               /* VLDR / VSTR */
                unsigned load = (h1 >> 4) & 1;
                st_mem(s, load, dp ? 8 : 4, 0, 0xFF, rn, pc);
                s->flags |= M_FP | M_ALIGN;
                if (rn == 15) { if (!load) { s->op = OP_UNKNOWN; return; } }
                else { s->imm = 0; *rd = R(rn); }
                if (h1 & 0x80) s->imm += (h2 & 0xFF) * 4; else s->imm -= (h2 & 0xFF) * 4;
                return;
            }
            if ((h1 & 0xFE00) == 0xEC00 && (h1 & 0x0180)) {   /* VLDM/VSTM/VPUSH/VPOP (not VMOV pairs) */
                unsigned pbit = (h1 >> 8) & 1, w = (h1 >> 5) & 1, load = (h1 >> 4) & 1;
                if (rn == 15) return;
                s->op = OP_MULTI; s->rn = (uint8_t)rn; s->nregs = (uint8_t)(h2 & 0xFF); s->size = 4;
                s->flags = (uint16_t)((load ? M_LOAD : 0) | (pbit ? M_DB : 0) | M_FP | M_ALIGN);
                if (w) { s->flags |= M_WB; *wr = R(rn); }
                *rd = R(rn);
                return;
            }
            s->op = OP_NONE;                             /* FP data processing; VMOV to core: Insn.dst */
            return;
        }
        if ((h1 & 0xF800) == 0xF000) { s->op = OP_NONE; return; }      /* branches, misc (BL: Insn.dst) */
        return;                                          /* everything else: its destinations unknown */
    }
    /* 16-bit */
    unsigned lo3 = h1 & 7, mid3 = (h1 >> 3) & 7, hi3 = (h1 >> 8) & 7;
    switch (h1 >> 11) {
    case 0x00: case 0x01: case 0x02: {                  /* LSL / LSR / ASR immediate */
        unsigned type = (h1 >> 11) & 3, imm5 = (h1 >> 6) & 31;
        if (type && !imm5) imm5 = 32;
        s->op = OP_MOV; s->rd = (uint8_t)lo3; s->rm = (uint8_t)mid3; s->stype = (uint8_t)type; s->shift = (uint8_t)imm5;
        *wr = R(lo3); *rd = R(mid3);
        return;
    }
    case 0x03: {                                         /* ADD/SUB register / imm3 */
        unsigned sub = (h1 >> 9) & 1, x = (h1 >> 6) & 7;
        s->rd = (uint8_t)lo3; s->rn = (uint8_t)mid3;
        if (h1 & 0x0400) { s->op = OP_ADDI; s->imm = sub ? (uint32_t)-x : x; *rd = R(mid3); }
        else { s->op = sub ? OP_SUB : OP_ADD; s->rm = (uint8_t)x; *rd = R(mid3) | R(x); }
        *wr = R(lo3);
        return;
    }
    case 0x04: s->op = OP_MOVI; s->rd = (uint8_t)hi3; s->imm = h1 & 0xFF; *wr = R(hi3); return;
    case 0x05: s->op = OP_NONE; return;                  /* CMP imm */
    case 0x06: case 0x07:
        s->op = OP_ADDI; s->rd = s->rn = (uint8_t)hi3;
        s->imm = (h1 & 0x0800) ? (uint32_t)-(h1 & 0xFF) : (uint32_t)(h1 & 0xFF);
        *wr = R(hi3); *rd = R(hi3);
        return;
    case 0x08:
        if ((h1 & 0xFC00) == 0x4000) {                  /* data processing, register */
            unsigned op = (h1 >> 6) & 15;
            s->rd = s->rn = (uint8_t)lo3; s->rm = (uint8_t)mid3;
            switch (op) {
            case 0: s->op = OP_AND; break;
            case 1: s->op = OP_EOR; break;
            case 8: case 10: case 11: s->op = OP_NONE; return;
            case 9: s->op = OP_RSBI; s->rn = (uint8_t)mid3; s->rm = 0xFF; s->imm = 0; break;
            case 12: s->op = OP_ORR; break;
            case 13: s->op = OP_MUL; s->rn = (uint8_t)mid3; s->rm = (uint8_t)lo3; break;
            case 14: s->op = OP_BIC; break;
            default: return;
            }
            *wr = R(lo3); *rd = (uint16_t)(R(lo3) | R(mid3));
            return;
        }
        if ((h1 & 0xFC00) == 0x4400) {                  /* special data, BX/BLX */
            unsigned op = (h1 >> 8) & 3, rdn = ((h1 >> 4) & 8) | lo3, rm = (h1 >> 3) & 15;
            if (op == 1 || op == 3 || rdn == 15) { s->op = OP_NONE; return; }
            s->rd = (uint8_t)rdn;
            if (op == 0) {                               /* ADD rdn, rm */
                if (rm == 15) { s->op = OP_ADDI; s->rn = (uint8_t)rdn; s->imm = pc + 4; *rd = R(rdn); }
                else { s->op = OP_ADD; s->rn = (uint8_t)rdn; s->rm = (uint8_t)rm; *rd = R(rdn) | R(rm); }
            } else {                                     /* MOV rd, rm */
                if (rm == 15) { s->op = OP_MOVI; s->imm = pc + 4; }
                else { s->op = OP_MOV; s->rm = (uint8_t)rm; *rd = R(rm); }
            }
            *wr = R(rdn);
            return;
        }
        return;
    case 0x09:                                           /* LDR literal */
        st_mem(s, 1, 4, 0, hi3, 15, pc); s->imm += (h1 & 0xFF) * 4;
        *wr = R(hi3);
        return;
    case 0x0A: case 0x0B: {                              /* load/store register offset */
        static const uint8_t sz[8] = {4, 2, 1, 1, 4, 2, 1, 2};
        unsigned op = (h1 >> 9) & 7, rm = (h1 >> 6) & 7;
        int load = op >= 3;
        st_mem(s, load, sz[op], op == 3 || op == 7, lo3, mid3, pc);
        s->flags |= M_REGOFF; s->rm = (uint8_t)rm;
        *rd = (uint16_t)(R(mid3) | R(rm) | (load ? 0 : R(lo3)));
        if (load) *wr = R(lo3);
        return;
    }
    case 0x0C: case 0x0D: case 0x0E: case 0x0F: case 0x10: case 0x11: {   /* LDR/STR(B/H) imm5 */
        unsigned size = (h1 >> 12) == 6 ? 4 : (h1 >> 12) == 7 ? 1 : 2, load = (h1 >> 11) & 1;
        st_mem(s, load, size, 0, lo3, mid3, pc);
        s->imm = ((h1 >> 6) & 31) * size;
        *rd = (uint16_t)(R(mid3) | (load ? 0 : R(lo3)));
        if (load) *wr = R(lo3);
        return;
    }
    case 0x12: case 0x13: {                              /* LDR/STR [sp, #imm8] */
        unsigned load = (h1 >> 11) & 1;
        st_mem(s, load, 4, 0, hi3, 13, pc);
        s->imm = (h1 & 0xFF) * 4;
        *rd = (uint16_t)(R(13) | (load ? 0 : R(hi3)));
        if (load) *wr = R(hi3);
        return;
    }
    case 0x14: s->op = OP_MOVI; s->rd = (uint8_t)hi3; s->imm = ((pc + 4) & ~3u) + (h1 & 0xFF) * 4; *wr = R(hi3); return;
    case 0x15: s->op = OP_ADDI; s->rd = (uint8_t)hi3; s->rn = 13; s->imm = (h1 & 0xFF) * 4; *wr = R(hi3); *rd = R(13); return;
    case 0x16: case 0x17:
        if ((h1 & 0x0F00) == 0x0000) {                  /* ADD/SUB SP, #imm7 */
            uint32_t imm = (h1 & 0x7F) * 4;
            s->op = OP_ADDI; s->rd = s->rn = 13; s->imm = (h1 & 0x80) ? (uint32_t)-imm : imm;
            *wr = R(13); *rd = R(13);
        } else if ((h1 & 0x0F00) == 0x0200) {           /* SXTH SXTB UXTH UXTB */
            static const uint8_t map[4] = {3, 2, 1, 0};
            s->op = OP_EXT; s->rd = (uint8_t)lo3; s->rm = (uint8_t)mid3; s->stype = map[(h1 >> 6) & 3];
            *wr = R(lo3); *rd = R(mid3);
        } else if ((h1 & 0x0E00) == 0x0400 || (h1 & 0x0E00) == 0x0C00) {   /* PUSH / POP */
            int load = (h1 & 0x0800) != 0;
            s->op = OP_MULTI; s->rn = 13; s->size = 4;
            s->regs = (uint16_t)((h1 & 0xFF) | ((h1 & 0x100) ? (load ? R(15) : R(14)) : 0));
            s->nregs = (uint8_t)__builtin_popcount(s->regs);
            s->flags = (uint16_t)((load ? M_LOAD : M_DB) | M_WB | M_ALIGN);
            *wr = (uint16_t)(R(13) | (load ? (s->regs & 0x7FFF) : 0)); *rd = R(13);
        } else if ((h1 & 0x0500) == 0x0100 || (h1 & 0x0F00) == 0x0F00 || (h1 & 0x0F00) == 0x0E00 ||
                   (h1 & 0x0FE0) == 0x0660) {
            s->op = OP_NONE;                             /* CBZ/CBNZ, IT/hints, BKPT, CPS */
        }
        return;
    case 0x18: case 0x19: {                              /* STM / LDM rn! */
        int load = (h1 >> 11) & 1;
        s->op = OP_MULTI; s->rn = (uint8_t)hi3; s->regs = h1 & 0xFF; s->size = 4;
        s->nregs = (uint8_t)__builtin_popcount(h1 & 0xFF);
        s->flags = (uint16_t)((load ? M_LOAD : 0) | M_ALIGN);
        if (!(load && (s->regs & R(hi3)))) { s->flags |= M_WB; *wr = R(hi3); }
        if (load) *wr |= s->regs;
        *rd = R(hi3);
        return;
    }
    default:
        s->op = OP_NONE;                                 /* B, Bcc, SVC, UDF */
        return;
    }
}
