/* Cortex-M system registers used by the shell (Armv6-M / Armv7-M / Armv8-M ARM, core TRMs). */
#ifndef BOARD_CORTEXM_H
#define BOARD_CORTEXM_H
#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#define SCB_CPUID REG32(0xE000ED00u)
#define SCB_VTOR REG32(0xE000ED08u)
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define SCB_CCR REG32(0xE000ED14u)
#define SCB_SHCSR REG32(0xE000ED24u)
#define SCB_CFSR REG32(0xE000ED28u)
#define SCB_HFSR REG32(0xE000ED2Cu)
#define SCB_MMFAR REG32(0xE000ED34u)
#define SCB_BFAR REG32(0xE000ED38u)
#define SCB_CCSIDR REG32(0xE000ED80u)
#define SCB_CSSELR REG32(0xE000ED84u)
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_ICIALLU REG32(0xE000EF50u)
#define SCB_DCIMVAC REG32(0xE000EF5Cu) /* D-cache invalidate by address (Armv7-M ARM B2.2.7) */
#define SCB_DCISW REG32(0xE000EF60u)

#define AIRCR_VECTKEY (0x05FAu << 16)
#define AIRCR_SYSRESETREQ (1u << 2)
#define CCR_DC (1u << 16)
#define CCR_IC (1u << 17)

#define CORE_DEMCR REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_CTRL_CYCCNTENA (1u << 0)

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)

static inline void cm_dsb(void) { __asm volatile("dsb 0xF" ::: "memory"); }
static inline void cm_isb(void) { __asm volatile("isb 0xF" ::: "memory"); }

#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
#define CM_BASELINE 1 /* no DWT CYCCNT guaranteed, no configurable faults, no VTOR assumed */
#endif

#endif
