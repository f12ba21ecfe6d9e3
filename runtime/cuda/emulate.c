/* emulate.c: the CPU emulator behind emulate.h (NNC_CUDA_EMULATE=1).
 *
 * Compiling: the prelude (emulate_prelude.h, embedded by emulate.cmake) and the kernel source go to
 * <cache>/<name>-<hash16>-emu.c, the host compiler ($NNC_CC, else cc; one program, not split on spaces)
 * makes <name>-<hash16>-emu.so beside it, and a later open of the same source (same prelude, compiler and
 * flags: the hash covers them) loads that .so again. Both files are written under a temporary name and
 * renamed, so that concurrent processes see whole files. <cache> is $NNC_CACHE_DIR, else
 * $XDG_CACHE_HOME/nnc, else ~/.cache/nnc; when it cannot be written, a private temp directory that is
 * removed once the .so is loaded. NNC_EMU_DEBUG=1 compiles with -g -O0 (for gdb, which then shows the
 * kernel source as written in the .c file).
 *
 * Running: a grid runs block after block on the calling thread. A kernel the table calls cooperative runs
 * each thread of a block as a fiber on its own stack (128 KiB, a guard page below it; mapped once per handle
 * and reused), switched by a few instructions of assembly on x86-64 and by ucontext elsewhere (or when
 * NNC_EMU_UCONTEXT=1, or under AddressSanitizer, or built with -DNNC_EMU_NO_ASM). A round-robin scheduler
 * resumes the runnable fibers:
 *   - __syncthreads: the thread waits until every thread of the block that has not exited is waiting
 *     (an exited thread no longer counts, as on the hardware); the last to arrive releases them all.
 *   - a shuffle or vote: the lanes of the mask (those not exited) form a group; when all of them have
 *     arrived, the last one exchanges the values of the whole group at once and all go on. A source lane
 *     outside the group reads 0xffffffff (a NaN), where CUDA leaves the value undefined.
 *   - nothing runnable but threads still waiting: an error (threads wait at different barriers).
 * Other kernels run thread after thread as plain calls. Shared memory: a 48 KiB static area per block
 * (NNC_SHARED arrays, placed in the order every thread declares them) and the launch's dynamic bytes; the
 * bytes a block uses are filled with 0xff first (CUDA does not clear shared memory: a read before a write
 * shows as NaN). Atomics are plain read-modify-writes: one OS thread runs the whole grid. Launches of any
 * handle are serialized by a process-wide lock (the .so's nnc_emu_env_ptr is one per process).
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* mkdtemp, ucontext */
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#endif

#include "emulate.h"

#define NNC_EMU_RUNTIME 1
#include "emulate_prelude.h"

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#if defined(__x86_64__) && defined(__linux__) && !defined(EMU_ASAN) && !defined(NNC_EMU_NO_ASM)
#define EMU_ASM_SWITCH 1
#else
#define EMU_ASM_SWITCH 0
#endif

#define EMU_PATH_MAX 4096
#define EMU_ERR_LINES 20                 /* compiler output kept in err */
#define EMU_MAX_BLOCK 1024u              /* threads per block, as CUDA */
#define EMU_STATIC_SHARED (48u * 1024u)  /* NNC_SHARED arrays per block, as CUDA's static limit */
#define EMU_MAX_DYNAMIC (227u * 1024u)   /* dynamic shared bytes per block: an H100's opt-in maximum */
#define EMU_STACK (128u * 1024u)         /* per fiber, plus a guard page */
#define EMU_NAME_KEEP 64                 /* bytes of the model's name kept in file names */

extern const char nnc_emu_prelude[];
extern const size_t nnc_emu_prelude_len;

enum { FIB_RUN, FIB_BARRIER, FIB_WARP, FIB_DONE };

typedef struct emu_run emu_run;

typedef struct emu_fiber {
    void *sp;        /* saved stack pointer (assembly switch) */
    ucontext_t *uc;  /* saved context (ucontext switch) */
    char *stack;     /* lowest usable byte */
    emu_run *run;
    unsigned tid;
    int state;
    size_t cursor;   /* next free byte of the block's static shared area, for this thread */
    int op, lane, width; /* a pending shuffle or vote */
    uint32_t mask, bits, result;
} emu_fiber;

struct nnc_emu {
    void *so;
    nnc_emu_env **env_slot; /* the .so's nnc_emu_env_ptr */
    int nkernels;
    const nnc_emu_kernel **kernels; /* by launch index */
    int use_ucontext;
    emu_fiber *fibers;
    ucontext_t *ucs;
    unsigned nfibers;
    char *stacks;
    size_t stacks_bytes;
    unsigned char *shared;
    size_t shared_cap;
};

struct emu_run {
    nnc_emu *e;
    const nnc_emu_kernel *k;
    void *const *args;
    nnc_emu_env env;
    unsigned block;
    unsigned char *shared;  /* static area, then the dynamic bytes */
    unsigned dynamic;
    size_t filled;          /* bytes of the static area filled with 0xff in this block */
    size_t plain_cursor;    /* the static-area cursor of a plain (non-fiber) thread */
    int cooperative;
    emu_fiber *cur;         /* the fiber running now */
    unsigned live, arrived; /* threads not exited; of those, waiting at __syncthreads */
    uint32_t warp_live[EMU_MAX_BLOCK / 32], warp_wait[EMU_MAX_BLOCK / 32];
    void *sched_sp;
    ucontext_t sched_uc;
    jmp_buf escape;         /* a plain thread's way out of a failed kernel */
    int failed;
    char *err;
    size_t errlen;
};

static atomic_flag launch_lock_ = ATOMIC_FLAG_INIT;
static _Thread_local emu_run *ucontext_run_; /* the launch whose fiber a ucontext entry starts */

static void err_set_(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- the context switch --------------------------------------------------------------------- */
#if EMU_ASM_SWITCH
/* nnc_emu_swap_(save, load): push the callee-saved registers, store rsp in *save, load rsp from `load`, pop
 * them back and return into whatever that stack was doing. A new fiber's stack holds a frame whose return
 * address is nnc_emu_fiber_entry_, which calls r13(r12). MXCSR and the x87 control word are callee-saved
 * too, but no kernel changes them: every fiber runs with the launching thread's, as plain kernels do. */
void nnc_emu_swap_(void **save, void *load);
void nnc_emu_fiber_entry_(void);
__asm__(".text\n"
        ".globl nnc_emu_swap_\n"
        ".hidden nnc_emu_swap_\n"
        ".type nnc_emu_swap_,@function\n"
        "nnc_emu_swap_:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size nnc_emu_swap_, .-nnc_emu_swap_\n"
        ".globl nnc_emu_fiber_entry_\n"
        ".hidden nnc_emu_fiber_entry_\n"
        ".type nnc_emu_fiber_entry_,@function\n"
        "nnc_emu_fiber_entry_:\n"
        "    movq %r12, %rdi\n"
        "    callq *%r13\n"
        "    ud2\n"
        ".size nnc_emu_fiber_entry_, .-nnc_emu_fiber_entry_\n");
#endif

static void fiber_main_(emu_fiber *f);

static void ucontext_entry_(void)
{
    fiber_main_(ucontext_run_->cur);
}

/* Makes f start at fiber_main_(f) the next time it is switched to. */
static void fiber_prepare_(nnc_emu *e, emu_fiber *f)
{
#if EMU_ASM_SWITCH
    if (!e->use_ucontext) {
        /* the tops of the stacks, EMU_STACK + a page apart, would all fall in one cache set: each
         * starts a different number of cache lines below its top */
        uintptr_t top = ((uintptr_t)f->stack + EMU_STACK - (f->tid % 61) * 64) & ~(uintptr_t)15;
        uint64_t *sp = (uint64_t *)(top - 56);
        sp[0] = 0;                                 /* r15 */
        sp[1] = 0;                                 /* r14 */
        sp[2] = (uint64_t)(uintptr_t)fiber_main_;  /* r13: what the entry calls */
        sp[3] = (uint64_t)(uintptr_t)f;            /* r12: its argument */
        sp[4] = 0;                                 /* rbx */
        sp[5] = 0;                                 /* rbp */
        sp[6] = (uint64_t)(uintptr_t)nnc_emu_fiber_entry_; /* popped by ret: rsp = top, 16-aligned */
        f->sp = sp;
        return;
    }
#endif
    f->uc->uc_stack.ss_sp = f->stack;
    f->uc->uc_stack.ss_size = EMU_STACK;
    f->uc->uc_link = NULL;
    makecontext(f->uc, ucontext_entry_, 0);
}

static void switch_to_fiber_(emu_run *r, emu_fiber *f)
{
    r->cur = f;
    r->env.thread_idx.x = f->tid;
#if EMU_ASM_SWITCH
    if (!r->e->use_ucontext) {
        nnc_emu_swap_(&r->sched_sp, f->sp);
        return;
    }
#endif
    ucontext_run_ = r;
    swapcontext(&r->sched_uc, f->uc);
}

static void switch_to_scheduler_(emu_run *r)
{
    emu_fiber *f = r->cur;
#if EMU_ASM_SWITCH
    if (!r->e->use_ucontext) {
        nnc_emu_swap_(&f->sp, r->sched_sp);
        return;
    }
#endif
    swapcontext(f->uc, &r->sched_uc);
}

/* ---- failing inside a kernel ----------------------------------------------------------------- */
/* Records the first failure and leaves the kernel: a fiber is abandoned (its stack is reset before it
 * runs again), a plain thread jumps back to the launch. */
static void kernel_fail_(emu_run *r, const char *fmt, ...)
{
    if (!r->failed && r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    r->failed = 1;
    if (r->cooperative) {
        r->cur->state = FIB_DONE;
        switch_to_scheduler_(r);
    }
    longjmp(r->escape, 1);
}

/* ---- the built-ins' side -------------------------------------------------------------------- */
static void *shared_next_(void *run, size_t bytes, size_t align)
{
    emu_run *r = run;
    size_t *cursor = r->cooperative ? &r->cur->cursor : &r->plain_cursor;
    size_t at, end;
    if (align < 1 || align > 64)
        align = 16;
    at = (*cursor + align - 1) / align * align;
    end = at + bytes;
    if (bytes > EMU_STATIC_SHARED || end > EMU_STATIC_SHARED)
        kernel_fail_(r, "nnc_emu: kernel %s: its shared arrays need more than %u bytes per block (CUDA's static "
                        "limit)",
                     r->k->name, EMU_STATIC_SHARED);
    if (end > r->filled) {
        memset(r->shared + r->filled, 0xff, end - r->filled);
        r->filled = end;
    }
    *cursor = end;
    return r->shared + at;
}

static void *shared_dynamic_(void *run)
{
    emu_run *r = run;
    return r->shared + EMU_STATIC_SHARED;
}

static void barrier_release_(emu_run *r, emu_fiber *fibers)
{
    unsigned t;
    for (t = 0; t < r->block; t++)
        if (fibers[t].state == FIB_BARRIER)
            fibers[t].state = FIB_RUN;
    r->arrived = 0;
}

static void sync_(void *run)
{
    emu_run *r = run;
    if (!r->cooperative)
        kernel_fail_(r, "nnc_emu: kernel %s calls __syncthreads() but its table entry says it is not cooperative",
                     r->k->name);
    r->cur->state = FIB_BARRIER;
    if (++r->arrived == r->live) {
        barrier_release_(r, r->e->fibers);
        return;
    }
    switch_to_scheduler_(r);
}

/* the lane whose value lane `l` of the group reads (32 and above: none) */
static unsigned warp_source_(const emu_fiber *f, unsigned l)
{
    unsigned w = f->width >= 1 && f->width <= 32 && (f->width & (f->width - 1)) == 0 ? (unsigned)f->width : 32;
    unsigned seg = l & ~(w - 1), d = (unsigned)f->lane, src;
    switch (f->op) {
    case NNC_EMU_SHFL_IDX:
        return seg + (d & (w - 1));
    case NNC_EMU_SHFL_UP:
        return f->lane < 0 || d > l - seg ? l : l - d;
    case NNC_EMU_SHFL_DOWN:
        src = l + d;
        return f->lane < 0 || src >= seg + w ? l : src;
    default: /* NNC_EMU_SHFL_XOR: a later segment gives the lane its own value */
        src = l ^ (d & 31);
        return src >= seg + w ? l : src;
    }
}

/* Completes the group of warp w that `mask` names when all its live lanes wait: exchanges their values
 * and makes them runnable. Returns whether it did. */
static int warp_try_(emu_run *r, unsigned w, uint32_t mask)
{
    emu_fiber *lanes = r->e->fibers + w * 32;
    uint32_t group = mask & r->warp_live[w], ballot = 0;
    unsigned l;
    if (group == 0 || (group & ~r->warp_wait[w]) != 0)
        return 0;
    for (l = 0; l < 32; l++)
        if (group >> l & 1 && lanes[l].bits)
            ballot |= (uint32_t)1 << l;
    for (l = 0; l < 32; l++) {
        emu_fiber *f = lanes + l;
        unsigned src;
        if (!(group >> l & 1))
            continue;
        if (f->op == NNC_EMU_BALLOT) {
            f->result = ballot;
        } else {
            src = warp_source_(f, l);
            f->result = src < 32 && group >> src & 1 ? lanes[src].bits : 0xffffffffu;
        }
        f->state = FIB_RUN;
    }
    r->warp_wait[w] &= ~group;
    return 1;
}

static uint32_t warp_(void *run, int op, uint32_t mask, uint32_t bits, int lane, int width)
{
    emu_run *r = run;
    emu_fiber *f = r->cur;
    unsigned w;
    if (!r->cooperative)
        kernel_fail_(r, "nnc_emu: kernel %s uses a warp shuffle or vote but its table entry says it is not "
                        "cooperative",
                     r->k->name);
    w = f->tid / 32;
    f->op = op;
    f->mask = mask;
    f->bits = op == NNC_EMU_BALLOT ? bits != 0 : bits;
    f->lane = lane;
    f->width = width;
    f->state = FIB_WARP;
    r->warp_wait[w] |= (uint32_t)1 << (f->tid % 32);
    if (!warp_try_(r, w, mask))
        switch_to_scheduler_(r);
    return f->result;
}

static uint32_t active_(void *run)
{
    emu_run *r = run;
    unsigned t = r->env.thread_idx.x, first = t / 32 * 32, n = r->block - first;
    if (r->cooperative)
        return r->warp_live[t / 32];
    return n >= 32 ? 0xffffffffu : ((uint32_t)1 << n) - 1;
}

/* ---- fibers and the scheduler --------------------------------------------------------------- */
/* A thread's life: run the kernel, then leave the block. The exit may complete a barrier or a warp group
 * that no longer waits for this thread. Never returns: the scheduler does not resume a finished fiber. */
static void fiber_main_(emu_fiber *f)
{
    emu_run *r = f->run;
    unsigned w = f->tid / 32, l;
    uint32_t waiting;
    r->k->call(r->args);
    f->state = FIB_DONE;
    r->live--;
    r->warp_live[w] &= ~((uint32_t)1 << (f->tid % 32));
    if (r->arrived > 0 && r->arrived == r->live)
        barrier_release_(r, r->e->fibers);
    waiting = r->warp_wait[w];
    for (l = 0; l < 32 && waiting; l++)
        if (waiting >> l & 1 && warp_try_(r, w, r->e->fibers[w * 32 + l].mask))
            waiting = r->warp_wait[w];
    switch_to_scheduler_(r);
}

/* getcontext returns twice: kept out of any function with locals that live across it */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void context_get_(ucontext_t *uc)
{
    getcontext(uc);
}

/* Maps (once, growing when a launch needs more) the fibers' stacks, each above a guard page. */
static int fibers_reserve_(nnc_emu *e, unsigned n, char *err, size_t errlen)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), slot = EMU_STACK + page, bytes = slot * n;
    emu_fiber *fibers;
    ucontext_t *ucs = NULL;
    char *stacks;
    unsigned i;
    if (n <= e->nfibers)
        return 1;
    fibers = calloc(n, sizeof *fibers);
    if (e->use_ucontext)
        ucs = calloc(n, sizeof *ucs);
    stacks = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!fibers || (e->use_ucontext && !ucs) || stacks == MAP_FAILED) {
        free(fibers);
        free(ucs);
        if (stacks != MAP_FAILED)
            munmap(stacks, bytes);
        err_set_(err, errlen, "nnc_emu: out of memory for the stacks of %u threads", n);
        return 0;
    }
    for (i = 0; i < n; i++) {
        mprotect(stacks + i * slot, page, PROT_NONE);
        fibers[i].stack = stacks + i * slot + page;
        fibers[i].tid = i;
        if (ucs) {
            fibers[i].uc = ucs + i;
            context_get_(ucs + i);
        }
    }
    if (e->stacks)
        munmap(e->stacks, e->stacks_bytes);
    free(e->fibers);
    free(e->ucs);
    e->fibers = fibers;
    e->ucs = ucs;
    e->stacks = stacks;
    e->stacks_bytes = bytes;
    e->nfibers = n;
    return 1;
}

/* One block as fibers. 0 when every thread finished. */
static int block_fibers_(emu_run *r)
{
    emu_fiber *fibers = r->e->fibers;
    unsigned t, w, done;
    for (t = 0; t < r->block; t++) {
        emu_fiber *f = fibers + t;
        f->run = r;
        f->state = FIB_RUN;
        f->cursor = 0;
        fiber_prepare_(r->e, f);
    }
    for (w = 0; w * 32 < r->block; w++) {
        unsigned n = r->block - w * 32;
        r->warp_live[w] = n >= 32 ? 0xffffffffu : ((uint32_t)1 << n) - 1;
        r->warp_wait[w] = 0;
    }
    r->live = r->block;
    r->arrived = 0;
    for (;;) {
        int ran = 0;
        for (t = 0; t < r->block; t++) {
            if (fibers[t].state != FIB_RUN)
                continue;
            switch_to_fiber_(r, fibers + t);
            if (r->failed)
                return -1;
            ran = 1;
        }
        if (r->live == 0)
            return 0;
        if (!ran)
            break;
    }
    for (t = 0, done = 0; t < r->block; t++)
        done += fibers[t].state == FIB_DONE;
    err_set_(r->err, r->errlen,
             "nnc_emu: kernel %s, block %u: %u of %u threads wait forever (%u at __syncthreads, the others at a "
             "warp shuffle or vote whose lanes went elsewhere)",
             r->k->name, r->env.block_idx.x, r->block - done, r->block, r->arrived);
    return -1;
}

/* Every block, each thread a plain call. 0 when the grid finished. */
static int grid_plain_(emu_run *r, unsigned grid)
{
    unsigned b, t;
    if (setjmp(r->escape))
        return -1;
    for (b = 0; b < grid; b++) {
        r->env.block_idx.x = b;
        r->filled = 0;
        if (r->dynamic)
            memset(r->shared + EMU_STATIC_SHARED, 0xff, r->dynamic);
        for (t = 0; t < r->block; t++) {
            r->env.thread_idx.x = t;
            r->plain_cursor = 0;
            r->k->call(r->args);
        }
    }
    return 0;
}

static int grid_fibers_(emu_run *r, unsigned grid)
{
    unsigned b;
    for (b = 0; b < grid; b++) {
        r->env.block_idx.x = b;
        r->filled = 0;
        if (r->dynamic)
            memset(r->shared + EMU_STATIC_SHARED, 0xff, r->dynamic);
        if (block_fibers_(r) != 0)
            return -1;
    }
    return 0;
}

static int launch_check_(nnc_emu *e, int kernel, unsigned grid, unsigned block, unsigned shared, char *err,
                         size_t errlen)
{
    if (!e || kernel < 0 || kernel >= e->nkernels) {
        err_set_(err, errlen, "nnc_emu: no kernel %d (the program has %d)", kernel, e ? e->nkernels : 0);
        return 0;
    }
    if (block < 1 || block > EMU_MAX_BLOCK) {
        err_set_(err, errlen, "nnc_emu: kernel %s: a block of %u threads (CUDA allows 1 to %u)",
                 e->kernels[kernel]->name, block, EMU_MAX_BLOCK);
        return 0;
    }
    if (grid < 1) {
        err_set_(err, errlen, "nnc_emu: kernel %s: a grid of 0 blocks", e->kernels[kernel]->name);
        return 0;
    }
    if (shared > EMU_MAX_DYNAMIC) {
        err_set_(err, errlen, "nnc_emu: kernel %s: %u bytes of dynamic shared memory (at most %u)",
                 e->kernels[kernel]->name, shared, EMU_MAX_DYNAMIC);
        return 0;
    }
    return 1;
}

static int shared_reserve_(nnc_emu *e, size_t bytes, char *err, size_t errlen)
{
    unsigned char *p;
    if (bytes <= e->shared_cap)
        return 1;
    p = realloc(e->shared, bytes);
    if (!p) {
        err_set_(err, errlen, "nnc_emu: out of memory for %zu bytes of shared memory", bytes);
        return 0;
    }
    e->shared = p;
    e->shared_cap = bytes;
    return 1;
}

int nnc_emu_launch(nnc_emu *e, int kernel, unsigned grid, unsigned block, unsigned shared, void *const *args,
                   int nargs, char *err, size_t errlen)
{
    emu_run r;
    int rc;
    (void)nargs;
    if (!launch_check_(e, kernel, grid, block, shared, err, errlen))
        return -1;
    memset(&r, 0, sizeof r);
    r.e = e;
    r.k = e->kernels[kernel];
    r.args = args;
    r.block = block;
    r.dynamic = shared;
    r.cooperative = r.k->cooperative != 0;
    r.err = err;
    r.errlen = errlen;
    r.env.block_dim.x = block;
    r.env.block_dim.y = r.env.block_dim.z = 1;
    r.env.grid_dim.x = grid;
    r.env.grid_dim.y = r.env.grid_dim.z = 1;
    r.env.run = &r;
    r.env.sync = sync_;
    r.env.warp = warp_;
    r.env.active = active_;
    r.env.shared = shared_next_;
    r.env.dynamic_shared = shared_dynamic_;
    while (atomic_flag_test_and_set(&launch_lock_))
        sched_yield();
    if (shared_reserve_(e, (size_t)EMU_STATIC_SHARED + shared, err, errlen) &&
        (!r.cooperative || fibers_reserve_(e, block, err, errlen))) {
        r.shared = e->shared;
        *e->env_slot = &r.env;
        rc = r.cooperative ? grid_fibers_(&r, grid) : grid_plain_(&r, grid);
        *e->env_slot = NULL;
    } else {
        rc = -1;
    }
    atomic_flag_clear(&launch_lock_);
    return rc;
}

/* ---- compiling and loading ------------------------------------------------------------------ */
static uint64_t fnv_(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int mkdir_p_(const char *dir)
{
    char path[EMU_PATH_MAX];
    size_t i, n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return 0;
    memcpy(path, dir, n + 1);
    for (i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return 0;
        path[i] = i < n ? '/' : '\0';
    }
    return access(dir, W_OK | X_OK) == 0;
}

/* The cache directory, created if needed; 0 when there is none that can be written. */
static int cache_dir_(char *dir, size_t n)
{
    const char *v = getenv("NNC_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len;
    if (v && *v)
        len = snprintf(dir, n, "%s", v);
    else if (x && *x)
        len = snprintf(dir, n, "%s/nnc", x);
    else if (home && *home)
        len = snprintf(dir, n, "%s/.cache/nnc", home);
    else
        return 0;
    return len > 0 && (size_t)len < n && mkdir_p_(dir);
}

static int temp_dir_(char *dir, size_t n, char *err, size_t errlen)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    if ((size_t)snprintf(dir, n, "%s/nnc-emu-XXXXXX", base) >= n || !mkdtemp(dir)) {
        err_set_(err, errlen, "nnc_emu: no cache directory can be written, nor a temp directory in %s: %s", base,
                 strerror(errno));
        return 0;
    }
    return 1;
}

/* the model's name as a file name's part: letters, digits, '-' and '_', at most EMU_NAME_KEEP bytes */
static void name_part_(const char *name, char *out)
{
    size_t i;
    for (i = 0; name && name[i] && i < EMU_NAME_KEEP; i++) {
        char c = name[i];
        out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ? c : '_';
    }
    if (i == 0)
        out[i++] = 'k';
    out[i] = '\0';
}

static int file_write_(const char *path, const char *a, size_t alen, const char *b, size_t blen, char *err,
                       size_t errlen)
{
    char tmp[EMU_PATH_MAX + 192];
    FILE *f;
    int ok;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        err_set_(err, errlen, "nnc_emu: cannot write %s: %s", tmp, strerror(errno));
        return 0;
    }
    ok = fwrite(a, 1, alen, f) == alen && fwrite(b, 1, blen, f) == blen;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        err_set_(err, errlen, "nnc_emu: cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        return 0;
    }
    return 1;
}

/* Reads the pipe to its end (so the child never blocks), keeping the first cap-1 bytes in out. */
static void pipe_drain_(int fd, char *out, size_t cap)
{
    char buf[4096];
    size_t len = 0;
    ssize_t got;
    for (;;) {
        got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (len + 1 < cap) {
            size_t take = (size_t)got < cap - 1 - len ? (size_t)got : cap - 1 - len;
            memcpy(out + len, buf, take);
            len += take;
        }
    }
    out[len] = '\0';
}

static void child_say_(const char *s)
{
    ssize_t w = write(STDERR_FILENO, s, strlen(s));
    (void)w;
}

/* Runs argv (PATH search, no shell) with its output in out; its exit status, -1 when it could not be
 * started, 128+signal when killed. */
static int run_capture_(char *const argv[], char *out, size_t cap)
{
    int fd[2], status;
    pid_t pid;
    if (pipe(fd) != 0) {
        snprintf(out, cap, "nnc_emu: pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(out, cap, "nnc_emu: fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDOUT_FILENO);
        dup2(fd[1], STDERR_FILENO);
        if (fd[1] > STDERR_FILENO)
            close(fd[1]);
        execvp(argv[0], argv);
        child_say_("nnc_emu: cannot run '");
        child_say_(argv[0]);
        child_say_(errno == ENOENT ? "': not found (set NNC_CC)\n" : "': exec failed\n");
        _exit(127);
    }
    close(fd[1]);
    pipe_drain_(fd[0], out, cap);
    close(fd[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(out, cap, "nnc_emu: waitpid: %s", strerror(errno));
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* "nnc_emu: <cc> failed on <src>:" and the compiler's first lines */
static void compile_error_(char *err, size_t errlen, const char *cc, const char *src, const char *out, int status)
{
    size_t n = 0, head;
    int lines = 0;
    if (!err || errlen == 0)
        return;
    if (!out[0]) {
        err_set_(err, errlen, "nnc_emu: '%s' failed on %s with status %d and no message", cc, src, status);
        return;
    }
    while (out[n] && lines < EMU_ERR_LINES)
        lines += out[n++] == '\n';
    while (n > 0 && out[n - 1] == '\n')
        n--;
    err_set_(err, errlen, "nnc_emu: '%s' failed on %s:\n", cc, src);
    head = strlen(err);
    if (head + n >= errlen)
        n = errlen - 1 - head;
    memcpy(err + head, out, n);
    err[head + n] = '\0';
}

static const char *const cc_flags_[] = {"-std=c11", "-O1", "-fPIC", "-shared", "-ffp-contract=off", "-w"};
static const char *const cc_debug_flags_[] = {"-std=c11", "-O0", "-g", "-fPIC", "-shared", "-ffp-contract=off",
                                              "-w"};

static int compile_(const char *cc, int debug, const char *src, const char *so, char *err, size_t errlen)
{
    const char *const *flags = debug ? cc_debug_flags_ : cc_flags_;
    size_t nflags = debug ? sizeof cc_debug_flags_ / sizeof *cc_debug_flags_ : sizeof cc_flags_ / sizeof *cc_flags_;
    char tmp[EMU_PATH_MAX + 192], out[16384];
    char *argv[16];
    size_t k = 0, i;
    int status;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", so, (long)getpid());
    argv[k++] = (char *)cc;
    for (i = 0; i < nflags; i++)
        argv[k++] = (char *)flags[i];
    argv[k++] = "-o";
    argv[k++] = tmp;
    argv[k++] = (char *)src;
    argv[k++] = "-lm";
    argv[k] = NULL;
    status = run_capture_(argv, out, sizeof out);
    if (status != 0) {
        compile_error_(err, errlen, cc, src, out, status);
        remove(tmp);
        return 0;
    }
    if (rename(tmp, so) != 0) {
        err_set_(err, errlen, "nnc_emu: cannot rename %s to %s: %s", tmp, so, strerror(errno));
        remove(tmp);
        return 0;
    }
    return 1;
}

/* The shared object of this source: the cached one, else compiled now. NULL and err on failure. */
static void *so_load_(const char *source, const char *name, char *err, size_t errlen)
{
    const char *cc = getenv("NNC_CC"), *dbg = getenv("NNC_EMU_DEBUG");
    int debug = dbg && *dbg && strcmp(dbg, "0") != 0, temp = 0;
    char dir[EMU_PATH_MAX], base[EMU_NAME_KEEP + 2], src[EMU_PATH_MAX + 128], so[EMU_PATH_MAX + 128];
    uint64_t h = 0xcbf29ce484222325ull;
    void *handle = NULL;
    size_t i;
    if (!cc || !*cc)
        cc = "cc";
    h = fnv_(h, nnc_emu_prelude, nnc_emu_prelude_len + 1);
    h = fnv_(h, source, strlen(source) + 1);
    h = fnv_(h, cc, strlen(cc) + 1);
    for (i = 0; i < (debug ? sizeof cc_debug_flags_ / sizeof *cc_debug_flags_ : sizeof cc_flags_ / sizeof *cc_flags_);
         i++) {
        const char *f = debug ? cc_debug_flags_[i] : cc_flags_[i];
        h = fnv_(h, f, strlen(f) + 1);
    }
    if (!cache_dir_(dir, sizeof dir)) {
        if (!temp_dir_(dir, sizeof dir, err, errlen))
            return NULL;
        temp = 1;
    }
    name_part_(name, base);
    if ((size_t)snprintf(src, sizeof src, "%s/%s-%016llx-emu.c", dir, base, (unsigned long long)h) >= sizeof src ||
        (size_t)snprintf(so, sizeof so, "%s/%s-%016llx-emu.so", dir, base, (unsigned long long)h) >= sizeof so) {
        err_set_(err, errlen, "nnc_emu: the cache directory's name is too long: %s", dir);
        if (temp)
            rmdir(dir);
        return NULL;
    }
    if (access(so, R_OK) == 0)
        handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!handle && file_write_(src, nnc_emu_prelude, nnc_emu_prelude_len, source, strlen(source), err, errlen) &&
        compile_(cc, debug, src, so, err, errlen)) {
        handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
        if (!handle)
            err_set_(err, errlen, "nnc_emu: cannot load %s: %s", so, dlerror());
    }
    if (temp) {
        remove(src);
        remove(so);
        rmdir(dir);
    }
    return handle;
}

/* Finds the kernel table and the requested kernels in it. */
static int kernels_find_(nnc_emu *e, const char *const *kernels, int nkernels, char *err, size_t errlen)
{
    const nnc_emu_kernel *table = dlsym(e->so, "nnc_emu_kernels");
    const int *ntable = dlsym(e->so, "nnc_emu_nkernels");
    int i, j;
    e->env_slot = dlsym(e->so, "nnc_emu_env_ptr");
    if (!table || !ntable || !e->env_slot) {
        err_set_(err, errlen,
                 "nnc_emu: the compiled source defines no %s (it must end with its kernel table under "
                 "NNC_CUDA_EMULATOR)",
                 !e->env_slot ? "nnc_emu_env_ptr" : !table ? "nnc_emu_kernels" : "nnc_emu_nkernels");
        return 0;
    }
    e->kernels = calloc(nkernels > 0 ? (size_t)nkernels : 1, sizeof *e->kernels);
    if (!e->kernels) {
        err_set_(err, errlen, "nnc_emu: out of memory");
        return 0;
    }
    e->nkernels = nkernels;
    for (i = 0; i < nkernels; i++) {
        for (j = 0; j < *ntable; j++)
            if (table[j].name && kernels[i] && strcmp(table[j].name, kernels[i]) == 0)
                break;
        if (j == *ntable || !table[j].call) {
            err_set_(err, errlen, "nnc_emu: kernel '%s' is not in the source's kernel table (nnc_emu_kernels)",
                     kernels[i] ? kernels[i] : "(null)");
            return 0;
        }
        e->kernels[i] = table + j;
    }
    return 1;
}

nnc_emu *nnc_emu_open(const char *source, const char *name, const char *const *kernels, int nkernels, char *err,
                      size_t errlen)
{
    const char *uc = getenv("NNC_EMU_UCONTEXT");
    nnc_emu *e;
    if (err && errlen)
        err[0] = '\0';
    if (!source || nkernels < 0 || (nkernels > 0 && !kernels)) {
        err_set_(err, errlen, "nnc_emu: no source or kernels to open");
        return NULL;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        err_set_(err, errlen, "nnc_emu: out of memory");
        return NULL;
    }
    e->use_ucontext = !EMU_ASM_SWITCH || (uc && *uc && strcmp(uc, "0") != 0);
    e->so = so_load_(source, name, err, errlen);
    if (!e->so || !kernels_find_(e, kernels, nkernels, err, errlen)) {
        nnc_emu_close(e);
        return NULL;
    }
    return e;
}

void nnc_emu_close(nnc_emu *e)
{
    if (!e)
        return;
    if (e->so)
        dlclose(e->so);
    if (e->stacks)
        munmap(e->stacks, e->stacks_bytes);
    free(e->fibers);
    free(e->ucs);
    free(e->kernels);
    free(e->shared);
    free(e);
}
