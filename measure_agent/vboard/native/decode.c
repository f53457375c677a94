/*
 * Thumb decoder: one 16/32-bit Thumb instruction -> Insn (class, length, register sets, literal
 * offset, alignment needs), and the effective address of a load/store from register values.
 * The classes (C_* in cyclemodel.h) are what timing.c prices and blocks.c checks per core.
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
