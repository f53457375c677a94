/*
 * Start-up code for every catalogue target: vector table, Reset_Handler (.data copy, .bss zero,
 * FPU, caches, flash wait states via board_early_init), fault handlers that report the fault over
 * the UART (FAULT frame, firmware/PROTOCOL.md) and halt.
 * Linker symbols come from the generated linker script (measure_agent/firmware_build.py).
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "cortexm.h"
#include "shell.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, __stack_top, __stack_limit;
extern int main(void);

void Reset_Handler(void);
void Fault_Handler(void);
void SysTick_Handler(void);

/* Number of device IRQ vectors we fill (all report a fault: the shell enables no interrupt). */
#define N_IRQ 32

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t vector_table[16 + N_IRQ] = {
    (vector_t)(uintptr_t)&__stack_top,
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage (v7-M/v8-M main) */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    Fault_Handler, /* SecureFault (v8-M) */
    0, 0, 0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    SysTick_Handler,
    [16 ... 16 + N_IRQ - 1] = Fault_Handler,
};

__attribute__((noreturn)) void Reset_Handler(void)
{
#if defined(__ARM_ARCH_8M_MAIN__)
    /* stack limit check in hardware (UsageFault STKOF on overflow) */
    __asm volatile("msr msplim, %0" ::"r"(&__stack_limit));
#endif
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0;
#if defined(BOARD_CODE_TCM_BASE)
    /* the hot kernels' code into the instruction TCM (zero wait state, no I-cache misses) */
    extern uint32_t _siitcm, _sitcm, _eitcm;
    for (src = &_siitcm, dst = &_sitcm; dst < &_eitcm;) *dst++ = *src++;
    cm_dsb();
    cm_isb();
#endif

#if !defined(CM_BASELINE)
    SCB_VTOR = BOARD_FLASH_BASE;
    SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18); /* MemManage, BusFault, UsageFault enabled */
#endif
#if defined(__ARM_FP)
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11 full access */
    cm_dsb();
    cm_isb();
#endif
    board_early_init(); /* flash wait states, accelerator, caches, clocks/pins for the UART */
    (void)main();
    for (;;) {
    }
}

__attribute__((used, aligned(8))) uint32_t fault_stack[128];
__asm(".set fault_stack_top, fault_stack + 512");

/* Fault entry: find the stacked frame (MSP or PSP from EXC_RETURN bit 2), then report in C.
 * Written in Thumb-1 so it assembles for Armv6-M too. */
__attribute__((naked)) void Fault_Handler(void)
{
    __asm volatile(
        "movs r0, #4      \n"
        "mov  r1, lr      \n"
        "tst  r0, r1      \n"
        "beq  1f          \n"
        "mrs  r0, psp     \n"
        "b    2f          \n"
        "1: mrs r0, msp   \n"
        "2: ldr r2, =fault_stack_top \n" /* own stack: the faulting one may be exhausted */
        "mov  sp, r2      \n"
        "ldr  r2, =fault_report \n"
        "bx   r2          \n");
}

__attribute__((used, noreturn)) void fault_report(const uint32_t *frame, uint32_t exc_return)
{
    (void)exc_return;
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    uint32_t sp = (uint32_t)(uintptr_t)frame;
    int frame_ok = sp >= BOARD_SRAM_BASE && sp + 32u <= BOARD_SRAM_BASE + BOARD_SRAM_SIZE && (sp & 3u) == 0;
    uint32_t w[9] = {ipsr & 0x1FFu, frame_ok ? frame[6] : 0u, frame_ok ? frame[5] : 0u, frame_ok ? frame[7] : 0u,
                     0u, 0u, 0u, 0u, sp};
#if !defined(CM_BASELINE)
    w[4] = SCB_CFSR;
    w[5] = SCB_HFSR;
    w[6] = SCB_MMFAR;
    w[7] = SCB_BFAR;
#endif
    shell_send_fault(w, 9);
    for (;;) board_uart_poll_discard(); /* halted: keep the UART drained, answer nothing */
}
