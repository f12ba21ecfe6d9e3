/* worker.h: the benchmark worker protocol for the C systems (nnc_timer.c, handwritten/w*.c).
 *
 * The driver (bench/driver.py) starts every system as a long-lived worker process and asks each, in turn,
 * for one timing sample of one case at a time, so that the systems alternate and a slow drift of the machine
 * (frequency, a neighbour on the other core) spreads over all of them. The Python peers speak the same
 * protocol (bench/peers/common.py):
 *
 *   worker -> driver, once set up:  {"ready": true, "system": "...", "cases": {"NAME": {"first_call_s": ..}}}
 *   driver -> worker:               run NAME MIN_SECONDS
 *   worker -> driver:               {"case": "NAME", "us": MEAN µs PER CALL OF THE GROUP, "calls": K}
 *   driver -> worker:               quit
 *
 * One sample times a group of K back-to-back calls, K chosen so the group lasts at least MIN_SECONDS (at
 * least one call); the driver takes the median over samples. A deferred case (an epoch) is not called at
 * set-up: the driver throws its first sample away as the warm-up. A case may have a `reset` that runs before the
 * group, outside the timed region (nnc restores the weights so every sample times the same work).
 *
 * Everything is static: include this header in exactly one translation unit.
 */
#ifndef BENCH_WORKER_H
#define BENCH_WORKER_H

#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bw_case {
    const char *name;
    void (*call)(void *ctx);  /* one unit of work: a train step, an epoch, a predict */
    void (*reset)(void *ctx); /* before each sample, untimed; may be NULL */
    void *ctx;
    double first_call_s; /* filled by bw_serve: the first call, before warm-up */
    int deferred;        /* not called at set-up: the driver's first sample is its warm-up (an epoch) */
} bw_case;

static double bw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* one sample: per-call microseconds over a group lasting >= min_s */
static double bw_sample(bw_case *c, double min_s, long *calls)
{
    if (c->reset) c->reset(c->ctx);
    long k = 0;
    double t0 = bw_now(), t;
    do {
        c->call(c->ctx);
        k++;
        t = bw_now();
    } while (t - t0 < min_s);
    *calls = k;
    return (t - t0) / (double)k * 1e6;
}

static void bw_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* set up (first call, then warm-up of >= warm_s and >= 3 calls per case), announce (info_json, called after
 * the warm-up, may add a JSON object of facts such as the last loss), serve until "quit" */
static int bw_serve(const char *system, bw_case *cases, int ncases, double warm_s, const char *(*info_json)(void))
{
    for (int i = 0; i < ncases; i++) {
        bw_case *c = &cases[i];
        if (c->deferred) continue;
        if (c->reset) c->reset(c->ctx);
        double t0 = bw_now();
        c->call(c->ctx);
        c->first_call_s = bw_now() - t0;
        double end = bw_now() + warm_s;
        /* a long call (an epoch) is its own warm-up: its first steps warm what the rest use */
        if (c->first_call_s < 1.0)
            for (int k = 0; k < 3 || bw_now() < end; k++) c->call(c->ctx);
    }
    printf("{\"ready\": true, \"system\": ");
    bw_json_str(stdout, system);
    printf(", \"info\": %s, \"cases\": {", info_json ? info_json() : "{}");
    for (int i = 0; i < ncases; i++) {
        printf("%s", i ? ", " : "");
        bw_json_str(stdout, cases[i].name);
        if (cases[i].deferred) printf(": {\"first_call_s\": null, \"deferred\": true}");
        else printf(": {\"first_call_s\": %.6g}", cases[i].first_call_s);
    }
    printf("}}\n");
    fflush(stdout);
    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        char name[512];
        double min_s = 0;
        if (!strncmp(line, "quit", 4)) break;
        if (sscanf(line, "run %511s %lf", name, &min_s) != 2) {
            printf("{\"error\": \"bad command\"}\n");
            fflush(stdout);
            continue;
        }
        bw_case *c = NULL;
        for (int i = 0; i < ncases; i++)
            if (!strcmp(cases[i].name, name)) c = &cases[i];
        if (!c) {
            printf("{\"error\": \"no such case\", \"case\": ");
            bw_json_str(stdout, name);
            printf("}\n");
        } else {
            long calls;
            double us = bw_sample(c, min_s, &calls);
            printf("{\"case\": ");
            bw_json_str(stdout, name);
            printf(", \"us\": %.6g, \"calls\": %ld}\n", us, calls);
        }
        fflush(stdout);
    }
    return 0;
}

/* 64-byte aligned memory (posix_memalign: C99 has no aligned_alloc) */
static void *bw_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- data: a minimal .npy reader (little-endian <f4 / <i4, C order), what bench/data.py writes ---------- */

typedef struct bw_array {
    void *data;
    long rows;     /* first axis */
    long per_row;  /* elements per row */
    int is_int;
} bw_array;

static int bw_load_npy(const char *path, bw_array *a)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 0;
    }
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        fprintf(stderr, "%s: not .npy\n", path);
        fclose(f);
        return 0;
    }
    long hlen;
    if (pre[6] == 1) hlen = pre[8] | pre[9] << 8;
    else {
        unsigned char b2[2];
        if (fread(b2, 1, 2, f) != 2) return 0;
        hlen = (long)pre[8] | (long)pre[9] << 8 | (long)b2[0] << 16 | (long)b2[1] << 24;
    }
    char *h = calloc(1, (size_t)hlen + 1);
    if (fread(h, 1, (size_t)hlen, f) != (size_t)hlen) return 0;
    a->is_int = strstr(h, "<i4") != NULL;
    if (!a->is_int && !strstr(h, "<f4")) {
        fprintf(stderr, "%s: want <f4 or <i4: %s\n", path, h);
        return 0;
    }
    char *s = strstr(h, "'shape': (");
    if (!s) return 0;
    s += 10;
    long dims[8];
    int nd = 0;
    while (*s && *s != ')' && nd < 8) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        dims[nd++] = strtol(s, &s, 10);
    }
    free(h);
    a->rows = nd ? dims[0] : 1;
    a->per_row = 1;
    for (int i = 1; i < nd; i++) a->per_row *= dims[i];
    size_t n = (size_t)(a->rows * a->per_row);
    a->data = bw_alloc(n * 4);
    if (fread(a->data, 4, n, f) != n) {
        fprintf(stderr, "%s: short file\n", path);
        return 0;
    }
    fclose(f);
    return 1;
}

#endif
