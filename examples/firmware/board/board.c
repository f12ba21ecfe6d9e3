/* board.c: semihosting output, number formatting and the SysTick instruction counter (see board.h). */
#include "board.h"

/* A semihosting call: operation in r0, argument in r1, `bkpt 0xab`; QEMU performs it when started with
 * -semihosting-config enable=on,target=native. The result comes back in r0. */
static int semihost_(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

enum {
    SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE0 = 0x04, SYS_WRITE = 0x05, SYS_EXIT_EXTENDED = 0x20,
    OPEN_MODE_WB = 5,                       /* fopen's "wb" */
    ADP_STOPPED_APPLICATION_EXIT = 0x20026
};

void board_puts(const char *s)
{
    semihost_(SYS_WRITE0, s);
}

int board_create(const char *path)
{
    uint32_t length = 0;
    while (path[length]) length++;
    const uint32_t block[3] = {(uint32_t)(uintptr_t)path, OPEN_MODE_WB, length};
    return semihost_(SYS_OPEN, block);
}

int board_write(int handle, const void *data, uint32_t bytes)
{
    const uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)data, bytes};
    return semihost_(SYS_WRITE, block) == 0;  /* the number of bytes not written */
}

void board_close(int handle)
{
    const uint32_t block[1] = {(uint32_t)handle};
    semihost_(SYS_CLOSE, block);
}

void board_exit(int status)
{
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost_(SYS_EXIT_EXTENDED, block);
    for (;;) {}   /* not reached under QEMU; a board without a debugger stops here */
}

/* SysTick counts down from its 24-bit reload value at the processor clock and interrupts at zero; the
 * handler adds the 2^24 ticks of each wrap. Under -icount shift=0 a tick is 40 instructions. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static volatile uint32_t systick_wraps;

void systick_handler(void)
{
    systick_wraps++;
}

void board_start_counter(void)
{
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;                   /* any write clears it: the count starts at the reload value */
    SYST_CSR = 7u;                  /* enable, interrupt on wrap, processor clock (25 MHz) */
}

uint64_t board_instructions(void)
{
    uint32_t wraps, count;
    do {                            /* a wrap between the two reads shows as a changed wrap count */
        wraps = systick_wraps;
        count = SYST_CVR;
    } while (wraps != systick_wraps);
    return ((uint64_t)wraps * 0x1000000u + (0xFFFFFFu - count)) * 40u;
}

char *fmt_str(char *p, const char *s)
{
    while (*s) *p++ = *s++;
    *p = 0;
    return p;
}

char *fmt_uint(char *p, uint64_t v)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = digits[--n];
    *p = 0;
    return p;
}

char *fmt_int(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return fmt_uint(p, 0 - (uint64_t)v);
    }
    return fmt_uint(p, (uint64_t)v);
}

/* x >= 0, finite: six significant digits, fixed notation from 1e-4 to 1e6 and scientific outside, with
 * trailing zeros dropped. Float arithmetic throughout (no double code on a single-precision FPU), so the
 * last digit may be off by one (the programs write exact values to host files). */
static char *fmt_positive_(char *p, float x)
{
    int e = 0;
    while (x >= 10.0f) { x /= 10.0f; e++; }
    while (x < 1.0f) { x *= 10.0f; e--; }
    uint32_t d = (uint32_t)(x * 100000.0f + 0.5f);
    if (d >= 1000000u) { d /= 10u; e++; }
    char digits[6];
    for (int i = 5; i >= 0; i--) { digits[i] = (char)('0' + d % 10u); d /= 10u; }
    int n = 6;
    while (n > 1 && digits[n - 1] == '0') n--;
    if (e < -4 || e >= 6) {         /* d.ddddde+XX */
        *p++ = digits[0];
        if (n > 1) *p++ = '.';
        for (int i = 1; i < n; i++) *p++ = digits[i];
        *p++ = 'e';
        *p++ = e < 0 ? '-' : '+';
        if (e < 0) e = -e;
        *p++ = (char)('0' + e / 10);
        *p++ = (char)('0' + e % 10);
    } else if (e >= 0) {            /* ddd.ddd */
        for (int i = 0; i <= e; i++) *p++ = i < n ? digits[i] : '0';
        if (n > e + 1) *p++ = '.';
        for (int i = e + 1; i < n; i++) *p++ = digits[i];
    } else {                        /* 0.000ddd */
        *p++ = '0';
        *p++ = '.';
        for (int i = -1; i > e; i--) *p++ = '0';
        for (int i = 0; i < n; i++) *p++ = digits[i];
    }
    *p = 0;
    return p;
}

char *fmt_float(char *p, float x)
{
    if (x != x) return fmt_str(p, "nan");
    if (x < 0.0f) {
        *p++ = '-';
        x = -x;
    }
    if (x > 3.40282347e38f) return fmt_str(p, "inf");
    if (x == 0.0f) return fmt_str(p, "0");
    return fmt_positive_(p, x);
}
