/* board.h: the little a firmware example needs from QEMU's mps2-an386 board (Cortex-M4F, 25 MHz).
 *
 * Output goes through semihosting (the debugger's console: QEMU prints it on its standard error), so there
 * is no UART driver and no printf: board_puts writes a string, and the fmt_* helpers format numbers into a
 * line buffer (each returns the new end; the caller terminates the string). board_instructions counts
 * instructions with SysTick, which is exact only under QEMU's `-icount shift=0` (one instruction per
 * nanosecond of virtual time: 40 instructions per tick of the 25 MHz clock). Not here: interrupts other
 * than SysTick, any peripheral, reading input. */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

void board_puts(const char *s);             /* semihosting SYS_WRITE0 */
void board_exit(int status);                /* semihosting SYS_EXIT_EXTENDED: QEMU exits with status */
uint64_t board_instructions(void);          /* instructions executed since reset (40 per SysTick tick) */

/* Files on the host (semihosting SYS_OPEN, SYS_WRITE, SYS_CLOSE; QEMU opens them relative to its working
 * directory): how the programs hand results bigger than a screen to the host. -1 or 0 on failure. */
int board_create(const char *path);         /* open for writing, truncated, binary; a handle or -1 */
int board_write(int handle, const void *data, uint32_t bytes);   /* 1: all written, 0: not */
void board_close(int handle);

char *fmt_str(char *p, const char *s);
char *fmt_int(char *p, int64_t v);
char *fmt_uint(char *p, uint64_t v);
char *fmt_float(char *p, float x);          /* 6 significant digits, like %g: for people to read */

int main(void);                             /* the program; its return value is QEMU's exit status */

/* for startup.c */
void board_start_counter(void);             /* SysTick on, counting from 0 (before main) */
void systick_handler(void);                 /* its interrupt: one more wrap */

#endif
