/* startup.c: the vector table and the reset handler of a Cortex-M4F program on QEMU's mps2-an386.
 *
 * At reset the core loads the stack pointer from the first word of the vector table (at address 0) and
 * jumps to the second. reset_handler turns the FPU on, copies .data from flash to RAM, zeroes .bss,
 * starts the SysTick counter, runs main and exits QEMU with main's status. No C library start-up runs
 * (no constructors, no heap, no stdio): the programs need memcpy, memset and libm only. */
#include <stdint.h>

#include "board.h"

/* Symbols of the linker script (mps2_an386.ld). */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_top[];

void reset_handler(void);
static void fault_handler_(void);

/* Exceptions 1-15 of the ARMv7-M vector table; the board's interrupts (16 and up) are never enabled. */
__attribute__((section(".vectors"), used))
static const uintptr_t vectors_[16] = {
    (uintptr_t)__stack_top,
    (uintptr_t)reset_handler,
    (uintptr_t)fault_handler_,      /* NMI */
    (uintptr_t)fault_handler_,      /* HardFault */
    (uintptr_t)fault_handler_,      /* MemManage */
    (uintptr_t)fault_handler_,      /* BusFault */
    (uintptr_t)fault_handler_,      /* UsageFault */
    0, 0, 0, 0,
    (uintptr_t)fault_handler_,      /* SVCall */
    (uintptr_t)fault_handler_,      /* DebugMonitor */
    0,
    (uintptr_t)fault_handler_,      /* PendSV */
    (uintptr_t)systick_handler,
};

void reset_handler(void)
{
    /* CPACR: full access to coprocessors 10 and 11, the FPU. Until this is done any floating-point
     * instruction faults, so it comes first; the barriers make the next instruction see it. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;

    board_start_counter();
    board_exit(main());
}

/* A fault is a bug in the program: say so and stop QEMU, rather than hang. */
static void fault_handler_(void)
{
    board_puts("fault: the program took an unexpected exception\n");
    board_exit(99);
}
