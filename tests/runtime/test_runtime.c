/* test_runtime.c: unit tests of the host runtime library (runtime/nnc_runtime.h), with cmocka.
 *
 * What they pin down: every reader returns the exact values of the fixtures make_fixtures.py writes
 * (restated below; change both together); nnc_npy_write output is byte-identical to np.save's and
 * nnc_st_write's follows the safetensors layout byte for byte; every writer round-trips through its
 * reader; every bad_* fixture gives -1, a message naming the file and the problem, and a zeroed output;
 * the atomic writer leaves no temporary file and never clobbers the target when it fails, writes
 * devices, FIFOs and /proc/self/fd/N in place, follows symlinks to the file it replaces, and removes
 * the temporaries of dead processes. Device nodes are copies made with mknod in the scratch directory
 * (skipped where that is not allowed): the real /dev/null is never at risk.
 * What they do not do: measure speed, or test memory-safety by themselves (run them under valgrind or
 * an ASan/UBSan build for that).
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* mkdtemp, opendir, umask, mknod, symlink, fork */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nnc_runtime.h"

#ifndef NNC_RT_FIXTURE_DIR
#define NNC_RT_FIXTURE_DIR "fixtures" /* ctest runs us in tests/runtime */
#endif
#define FX(name) NNC_RT_FIXTURE_DIR "/" name
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

typedef int (*ReadFn)(const char *path, nnc_array *out, char *err, size_t errlen);

static char tmpdir_[256];

/* ---- helpers --------------------------------------------------------------------------------- */

static char *tmp_path_(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir_, name);
    return buf;
}

static void *slurp_(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void spit_(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

/* Entries of the scratch directory whose name contains ".nnc-tmp." (or the older ".tmp."): what a failed
 * atomic write leaks. */
static int count_temp_files_in_(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL || strstr(e->d_name, ".nnc-tmp.") != NULL;
    closedir(d);
    return n;
}

static int count_temp_files_(void) { return count_temp_files_in_(tmpdir_); }

static void expect_msg_(const char *err, const char *k1, const char *k2)
{
    if (k1 && !strstr(err, k1))
        fail_msg("error message \"%s\" does not mention \"%s\"", err, k1);
    if (k2 && !strstr(err, k2))
        fail_msg("error message \"%s\" does not mention \"%s\"", err, k2);
}

/* dtype, rank, shape, then the data bit for bit (so -0.0 and exact float values are checked too). */
static void check_array_(const nnc_array *a, nnc_dtype t, int rank, const int64_t *shape, const void *want)
{
    size_t es = nnc_dtype_size(t);
    int64_t n;
    assert_int_equal(a->dtype, t);
    assert_int_equal(a->rank, rank);
    for (int i = 0; i < rank; i++)
        if (a->shape[i] != shape[i])
            fail_msg("shape[%d] is %lld, want %lld", i, (long long)a->shape[i], (long long)shape[i]);
    n = nnc_array_count(a);
    for (int64_t i = 0; i < n; i++)
        if (memcmp((const char *)a->data + i * es, (const char *)want + i * es, es) != 0)
            fail_msg("element %lld of the %s array differs from the expected value", (long long)i,
                     nnc_dtype_name(t));
}

static void read_expect_(ReadFn rd, const char *path, nnc_dtype t, int rank, const int64_t *shape,
                         const void *want)
{
    nnc_array a;
    char err[512];
    if (rd(path, &a, err, sizeof err) != 0)
        fail_msg("reading %s failed: %s", path, err);
    check_array_(&a, t, rank, shape, want);
    nnc_array_free(&a);
}

typedef struct BadCase {
    const char *path;
    const char *k1, *k2; /* what the message must say besides the file name */
} BadCase;

static void read_expect_bad_(ReadFn rd, const BadCase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        nnc_array a;
        char err[512] = "";
        if (rd(cases[i].path, &a, err, sizeof err) != -1)
            fail_msg("%s was accepted", cases[i].path);
        expect_msg_(err, cases[i].path, cases[i].k1);
        expect_msg_(err, cases[i].k2, NULL);
        if (a.data || a.rank)
            fail_msg("%s: output not zeroed after a failure", cases[i].path);
        nnc_array_free(&a);
    }
}

/* ---- array.c --------------------------------------------------------------------------------- */

static void test_dtype_facts(void **state)
{
    (void)state;
    assert_int_equal(nnc_dtype_size(NNC_F32), 4);
    assert_int_equal(nnc_dtype_size(NNC_F64), 8);
    assert_int_equal(nnc_dtype_size(NNC_I32), 4);
    assert_int_equal(nnc_dtype_size(NNC_I64), 8);
    assert_int_equal(nnc_dtype_size(NNC_U8), 1);
    assert_int_equal(nnc_dtype_size((nnc_dtype)99), 0);
    assert_string_equal(nnc_dtype_name(NNC_F32), "f32");
    assert_string_equal(nnc_dtype_name(NNC_F64), "f64");
    assert_string_equal(nnc_dtype_name(NNC_I32), "i32");
    assert_string_equal(nnc_dtype_name(NNC_I64), "i64");
    assert_string_equal(nnc_dtype_name(NNC_U8), "u8");
    assert_string_equal(nnc_dtype_name((nnc_dtype)99), "?");
}

static void test_array_count(void **state)
{
    nnc_array a = {NNC_F32, 0, {0}, NULL};
    (void)state;
    assert_int_equal(nnc_array_count(&a), 1); /* a scalar */
    a.rank = 3, a.shape[0] = 2, a.shape[1] = 3, a.shape[2] = 4;
    assert_int_equal(nnc_array_count(&a), 24);
    a.shape[1] = 0;
    assert_int_equal(nnc_array_count(&a), 0);
    a.shape[1] = -3;
    assert_true(nnc_array_count(&a) == -1);
    a.rank = 2, a.shape[0] = (int64_t)1 << 32, a.shape[1] = (int64_t)1 << 32;
    assert_true(nnc_array_count(&a) == -1); /* 2^64 overflows */
    a.rank = 3, a.shape[0] = (int64_t)1 << 32, a.shape[1] = 0, a.shape[2] = (int64_t)1 << 32;
    assert_true(nnc_array_count(&a) == -1); /* empty, but its other axes hold 2^64 per sample */
    a.rank = NNC_MAX_RANK + 1;
    assert_true(nnc_array_count(&a) == -1);
}

static void test_array_free_zeroed(void **state)
{
    nnc_array a;
    nnc_safetensors st;
    (void)state;
    memset(&a, 0, sizeof a);
    memset(&st, 0, sizeof st);
    nnc_array_free(&a);
    nnc_array_free(NULL);
    nnc_st_free(&st);
    nnc_st_free(NULL);
    assert_null(nnc_st_find(&st, "x"));
    assert_null(nnc_st_find(NULL, "x"));
}

static nnc_array make_f64_(const double *v, int64_t n)
{
    nnc_array a = {NNC_F64, 1, {n}, malloc((size_t)n * sizeof(double))};
    assert_non_null(a.data);
    memcpy(a.data, v, (size_t)n * sizeof(double));
    return a;
}

static void test_convert_ok(void **state)
{
    static const double v[] = {1, 2.5, -3, 1e10};
    static const float f[] = {1, 2.5f, -3, 1e10f};
    static const double ints[] = {0, 255, 3};
    static const uint8_t u[] = {0, 255, 3};
    static const int32_t i32[] = {0, 255, 3};
    static const int64_t i64[] = {0, 255, 3};
    nnc_array a = make_f64_(v, 4), b = make_f64_(ints, 3);
    char err[256];
    (void)state;
    assert_int_equal(nnc_array_convert(&a, NNC_F32, "x", err, sizeof err), 0);
    check_array_(&a, NNC_F32, 1, SHAPE(4), f);
    assert_int_equal(nnc_array_convert(&a, NNC_F32, "x", err, sizeof err), 0); /* same type: no-op */
    assert_int_equal(nnc_array_convert(&a, NNC_F64, "x", err, sizeof err), 0);
    check_array_(&a, NNC_F64, 1, SHAPE(4), v);
    assert_int_equal(nnc_array_convert(&b, NNC_U8, "y", err, sizeof err), 0);
    check_array_(&b, NNC_U8, 1, SHAPE(3), u);
    assert_int_equal(nnc_array_convert(&b, NNC_I32, "y", err, sizeof err), 0);
    check_array_(&b, NNC_I32, 1, SHAPE(3), i32);
    assert_int_equal(nnc_array_convert(&b, NNC_I64, "y", err, sizeof err), 0);
    check_array_(&b, NNC_I64, 1, SHAPE(3), i64);
    assert_int_equal(nnc_array_convert(&b, NNC_F64, "y", err, sizeof err), 0);
    check_array_(&b, NNC_F64, 1, SHAPE(3), ints);
    nnc_array_free(&a);
    nnc_array_free(&b);
}

/* Converting `v` to `to` must fail naming `what` and the element, leaving the array as it was. */
static void expect_convert_fails_(double v, nnc_dtype to, const char *elem)
{
    double vals[2] = {1, v};
    nnc_array a = make_f64_(vals, 2);
    char err[256] = "";
    assert_int_equal(nnc_array_convert(&a, to, "labels.npy", err, sizeof err), -1);
    expect_msg_(err, "labels.npy", elem);
    check_array_(&a, NNC_F64, 1, SHAPE(2), vals);
    nnc_array_free(&a);
}

static void test_convert_errors(void **state)
{
    int64_t big[1] = {300};
    nnc_array a = {NNC_I64, 1, {1}, malloc(sizeof big)};
    char err[256] = "";
    (void)state;
    expect_convert_fails_(1.5, NNC_I32, "element 1");
    expect_convert_fails_(NAN, NNC_I32, "element 1");
    expect_convert_fails_(3e9, NNC_I32, "element 1");
    expect_convert_fails_(-1, NNC_U8, "element 1");
    expect_convert_fails_(256, NNC_U8, "element 1");
    expect_convert_fails_(9.3e18, NNC_I64, "element 1");
    expect_convert_fails_(INFINITY, NNC_I64, "element 1");
    memcpy(a.data, big, sizeof big);
    assert_int_equal(nnc_array_convert(&a, NNC_U8, "ids", err, sizeof err), -1);
    expect_msg_(err, "ids", "element 0");
    check_array_(&a, NNC_I64, 1, SHAPE(1), big);
    nnc_array_free(&a);
}

/* ---- npy.c ----------------------------------------------------------------------------------- */

static const float npy_f32_[12] = {-0.5f, 0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4, 4.5f, 5};
static const double npy_f64_[6] = {1.0 / 3.0, -2.0, 1e300, 3.141592653589793, -0.0, 5e-324};
static const int32_t npy_i32_[5] = {INT32_MIN, -1, 0, 7, INT32_MAX};
static const int64_t npy_i64_[4] = {-((int64_t)1 << 62), 1, ((int64_t)1 << 40) + 3, ((int64_t)1 << 53) + 1};
static const uint8_t npy_u8_[8] = {0, 1, 2, 3, 128, 200, 254, 255};

static void test_npy_read(void **state)
{
    static const double scalar[1] = {7.25};
    static const int32_t eq[2] = {5, -6};
    (void)state;
    read_expect_(nnc_npy_read, FX("f32_v1.npy"), NNC_F32, 2, SHAPE(3, 4), npy_f32_);
    read_expect_(nnc_npy_read, FX("f32_v2.npy"), NNC_F32, 2, SHAPE(3, 4), npy_f32_);
    read_expect_(nnc_npy_read, FX("f64_v3.npy"), NNC_F64, 2, SHAPE(2, 3), npy_f64_);
    read_expect_(nnc_npy_read, FX("f64_v1.npy"), NNC_F64, 2, SHAPE(2, 3), npy_f64_);
    read_expect_(nnc_npy_read, FX("i32.npy"), NNC_I32, 1, SHAPE(5), npy_i32_);
    read_expect_(nnc_npy_read, FX("i64.npy"), NNC_I64, 2, SHAPE(2, 2), npy_i64_);
    read_expect_(nnc_npy_read, FX("u8.npy"), NNC_U8, 3, SHAPE(2, 2, 2), npy_u8_);
    read_expect_(nnc_npy_read, FX("scalar_f64.npy"), NNC_F64, 0, SHAPE(0), scalar);
    read_expect_(nnc_npy_read, FX("empty_f32.npy"), NNC_F32, 2, SHAPE(0, 3), NULL);
    read_expect_(nnc_npy_read, FX("native_eq.npy"), NNC_I32, 1, SHAPE(2), eq);
}

static void test_npy_read_element(void **state)
{
    nnc_array a;
    char err[256];
    (void)state;
    assert_int_equal(nnc_npy_read(FX("f32_v1.npy"), &a, err, sizeof err), 0);
    assert_true(((float *)a.data)[1 * 4 + 2] == 2.5f); /* [1, 2] */
    nnc_array_free(&a);
    assert_null(a.data);
}

static void test_npy_read_widened(void **state)
{
    static const float f2[5] = {0.5f, -2.0f, 65504.0f, 5.9604644775390625e-8f, INFINITY};
    static const int32_t i1[4] = {-128, -1, 0, 127};
    static const int32_t i2[3] = {-32768, 1, 32767};
    static const int32_t u2[3] = {0, 1, 65535};
    (void)state;
    read_expect_(nnc_npy_read, FX("f2.npy"), NNC_F32, 1, SHAPE(5), f2);
    read_expect_(nnc_npy_read, FX("i1.npy"), NNC_I32, 1, SHAPE(4), i1);
    read_expect_(nnc_npy_read, FX("i2.npy"), NNC_I32, 1, SHAPE(3), i2);
    read_expect_(nnc_npy_read, FX("u2.npy"), NNC_I32, 1, SHAPE(3), u2);
}

static void test_npy_bad(void **state)
{
    static const BadCase cases[] = {
        {FX("bad_truncated.npy"), "truncated", "needs 48 bytes"},
        {FX("bad_trunc_header.npy"), "truncated", NULL},
        {FX("bad_magic.npy"), "not a .npy file", NULL},
        {FX("bad_bigendian.npy"), "big-endian", "'>f4'"},
        {FX("bad_fortran.npy"), "fortran_order", NULL},
        {FX("bad_complex.npy"), "unsupported dtype", "'<c8'"},
        {FX("bad_header.npy"), "shape is not a tuple", NULL},
        {FX("bad_overflow.npy"), "shape (4294967296, 4294967296) is too large", NULL},
        {FX("bad_huge.npy"), "shape (4611686018427387904,) is too large", NULL},
        {FX("bad_dim_range.npy"), "shape dimension out of range", NULL},
        {FX("images-idx3-ubyte"), "not a .npy file", NULL},
        {FX("no_such_file.npy"), "cannot open", NULL},
    };
    (void)state;
    read_expect_bad_(nnc_npy_read, cases, sizeof cases / sizeof cases[0]);
}

/* Writes `a` and checks the file is byte-identical to what np.save wrote, then reads it back. */
static void npy_write_expect_(const nnc_array *a, const char *numpy_file)
{
    char path[512], err[512];
    size_t got_size, want_size;
    char *got, *want;
    tmp_path_(path, sizeof path, "out.npy");
    if (nnc_npy_write(path, a, err, sizeof err) != 0)
        fail_msg("%s", err);
    got = slurp_(path, &got_size);
    want = slurp_(numpy_file, &want_size);
    assert_int_equal(got_size, want_size);
    assert_memory_equal(got, want, want_size);
    free(got);
    free(want);
    read_expect_(nnc_npy_read, path, a->dtype, a->rank, a->shape, a->data);
}

static void test_npy_write_matches_numpy(void **state)
{
    double scalar = 7.25;
    nnc_array f32 = {NNC_F32, 2, {3, 4}, (void *)npy_f32_};
    nnc_array f64 = {NNC_F64, 2, {2, 3}, (void *)npy_f64_};
    nnc_array i32 = {NNC_I32, 1, {5}, (void *)npy_i32_};
    nnc_array i64 = {NNC_I64, 2, {2, 2}, (void *)npy_i64_};
    nnc_array u8 = {NNC_U8, 3, {2, 2, 2}, (void *)npy_u8_};
    nnc_array s = {NNC_F64, 0, {0}, &scalar};
    nnc_array empty = {NNC_F32, 2, {0, 3}, NULL};
    (void)state;
    npy_write_expect_(&f32, FX("f32_v1.npy"));
    npy_write_expect_(&f64, FX("f64_v1.npy"));
    npy_write_expect_(&i32, FX("i32.npy"));
    npy_write_expect_(&i64, FX("i64.npy"));
    npy_write_expect_(&u8, FX("u8.npy"));
    npy_write_expect_(&s, FX("scalar_f64.npy"));
    npy_write_expect_(&empty, FX("empty_f32.npy"));
    assert_int_equal(count_temp_files_(), 0);
}

static void test_npy_write_rank8(void **state)
{
    int32_t v[16];
    nnc_array a = {NNC_I32, 8, {1, 2, 1, 2, 1, 2, 1, 2}, v};
    char path[512], err[256];
    (void)state;
    for (int i = 0; i < 16; i++)
        v[i] = i * 1000 - 7;
    tmp_path_(path, sizeof path, "rank8.npy");
    assert_int_equal(nnc_npy_write(path, &a, err, sizeof err), 0);
    read_expect_(nnc_npy_read, path, NNC_I32, 8, a.shape, v);
}

static void test_npy_write_rejects(void **state)
{
    nnc_array bad = {NNC_F32, NNC_MAX_RANK + 1, {1}, NULL};
    nnc_array nodata = {NNC_F32, 1, {3}, NULL};
    char path[512], err[256] = "";
    size_t size;
    char *kept;
    (void)state;
    tmp_path_(path, sizeof path, "keep.npy");
    spit_(path, "old", 3);
    assert_int_equal(nnc_npy_write(path, &bad, err, sizeof err), -1);
    expect_msg_(err, path, "invalid array");
    assert_int_equal(nnc_npy_write(path, &nodata, err, sizeof err), -1);
    kept = slurp_(path, &size);
    assert_int_equal(size, 3);
    assert_memory_equal(kept, "old", 3);
    free(kept);
    unlink(path);
}

/* ---- idx.c ----------------------------------------------------------------------------------- */

static void test_idx_read(void **state)
{
    uint8_t images[24];
    static const uint8_t labels[5] = {5, 0, 4, 1, 9};
    static const float f32[4] = {1.5f, -2.25f, 1024.0f, 0.1f};
    static const double f64[3] = {1.0 / 3.0, -1e200, 2.5};
    static const int32_t i8[2] = {-5, 100}, i16[3] = {-300, 2, 32767}, i32[2] = {-100000, 123456789};
    (void)state;
    for (int i = 0; i < 24; i++)
        images[i] = (uint8_t)(i * 7);
    read_expect_(nnc_idx_read, FX("images-idx3-ubyte"), NNC_U8, 3, SHAPE(2, 3, 4), images);
    read_expect_(nnc_idx_read, FX("labels-idx1-ubyte.gz"), NNC_U8, 1, SHAPE(5), labels);
    read_expect_(nnc_idx_read, FX("f32.idx"), NNC_F32, 2, SHAPE(2, 2), f32);
    read_expect_(nnc_idx_read, FX("f64.idx"), NNC_F64, 1, SHAPE(3), f64);
    read_expect_(nnc_idx_read, FX("i8.idx"), NNC_I32, 1, SHAPE(2), i8);
    read_expect_(nnc_idx_read, FX("i16.idx.gz"), NNC_I32, 1, SHAPE(3), i16);
    read_expect_(nnc_idx_read, FX("i32.idx"), NNC_I32, 1, SHAPE(2), i32);
}

static void test_idx_bad(void **state)
{
    static const BadCase cases[] = {
        {FX("bad_magic.idx"), "not an IDX file", "01 02 08 01"},
        {FX("bad_rank.idx"), "rank 9", NULL},
        {FX("bad_truncated-idx3-ubyte"), "truncated", "24 bytes"},
        {FX("bad_truncated.idx.gz"), "truncated", "unexpected end of file"},
        {FX("bad_crc.idx.gz"), "corrupt gzip file", "incorrect data check"},
        {FX("bad_deflate.idx.gz"), "corrupt gzip file", "invalid block type"},
        {FX("bad_overflow.idx"), "[4294967295, 4294967295, 4294967295] are too large", NULL},
        {FX("huge_header.idx.gz"), "truncated", "2147483647 bytes"},
        {FX("f32_v1.npy"), "not an IDX file", NULL},
        {FX("no_such_file.idx"), "cannot open", NULL},
    };
    (void)state;
    read_expect_bad_(nnc_idx_read, cases, sizeof cases / sizeof cases[0]);
}

/* The header readers give the shape and dtype of the full read, data NULL, without reading the data:
 * a gzip IDX that declares 2^31-1 samples (and holds 64 bytes) is answered at once. */
static void test_read_header(void **state)
{
    static const struct {
        ReadFn rd;
        const char *path;
        nnc_dtype t;
        int rank;
        int64_t shape[3];
    } cases[] = {
        {nnc_idx_read_header, FX("huge_header.idx.gz"), NNC_U8, 2, {2147483647, 1}},
        {nnc_data_read_header, FX("huge_header.idx.gz"), NNC_U8, 2, {2147483647, 1}},
        {nnc_idx_read_header, FX("images-idx3-ubyte"), NNC_U8, 3, {2, 3, 4}},
        {nnc_data_read_header, FX("i16.idx.gz"), NNC_I32, 1, {3}},
        {nnc_npy_read_header, FX("f32_v1.npy"), NNC_F32, 2, {3, 4}},
        {nnc_data_read_header, FX("f2.npy"), NNC_F32, 1, {5}},
        {nnc_csv_read_header, FX("with_header.csv"), NNC_F64, 2, {3, 3}},
        {nnc_data_read_header, FX("bom_noheader.csv"), NNC_F64, 2, {3, 2}},
    };
    static const BadCase bad[] = {
        {FX("bad_truncated.npy"), "truncated", "needs 48 bytes"},
        {FX("bad_truncated-idx3-ubyte"), "truncated", "24 bytes"},
        {FX("bad_overflow.idx"), "too large", NULL},
        {FX("bad_ragged.csv"), "line 4", NULL},
        {FX("bad_deflate.idx.gz"), "corrupt gzip file", NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nnc_array a;
        char err[512];
        if (cases[i].rd(cases[i].path, &a, err, sizeof err) != 0)
            fail_msg("reading the header of %s failed: %s", cases[i].path, err);
        assert_null(a.data);
        assert_int_equal(a.dtype, cases[i].t);
        assert_int_equal(a.rank, cases[i].rank);
        for (int k = 0; k < a.rank; k++)
            assert_int_equal(a.shape[k], cases[i].shape[k]);
        nnc_array_free(&a);
    }
    read_expect_bad_(nnc_data_read_header, bad, sizeof bad / sizeof bad[0]);
}

/* ---- csv.c ----------------------------------------------------------------------------------- */

static void test_csv_read(void **state)
{
    static const double header[9] = {1.5, 2, 0, -3, 4.25, 1, 1000, 0.5, 2};
    static const double semi[6] = {1, 2, 3, 4, 5, -6};
    static const double ws[6] = {1, 2, 3, 4, 5, 6};
    static const double col[3] = {1, 2, 3}, bom_header[2] = {7, 8};
    (void)state;
    read_expect_(nnc_csv_read, FX("with_header.csv"), NNC_F64, 2, SHAPE(3, 3), header);
    read_expect_(nnc_csv_read, FX("semicolon.csv"), NNC_F64, 2, SHAPE(3, 2), semi);
    read_expect_(nnc_csv_read, FX("whitespace.txt"), NNC_F64, 2, SHAPE(2, 3), ws);
    read_expect_(nnc_csv_read, FX("one_column.csv"), NNC_F64, 2, SHAPE(3, 1), col);
    read_expect_(nnc_csv_read, FX("header_spaced.csv"), NNC_F64, 2, SHAPE(2, 3), ws);
    read_expect_(nnc_csv_read, FX("bom_noheader.csv"), NNC_F64, 2, SHAPE(3, 2), ws);
    read_expect_(nnc_csv_read, FX("bom_header.csv"), NNC_F64, 2, SHAPE(1, 2), bom_header);
}

static void test_csv_bad(void **state)
{
    static const BadCase cases[] = {
        {FX("bad_ragged.csv"), "line 4", "expected 3"},
        {FX("bad_nonnumeric.csv"), "line 3, column 2", "'x7'"},
        {FX("bad_empty_field.csv"), "line 2, column 2", "empty field"},
        {FX("bad_no_rows.csv"), "no data rows", NULL},
        {FX("no_such_file.csv"), "cannot open", NULL},
    };
    (void)state;
    read_expect_bad_(nnc_csv_read, cases, sizeof cases / sizeof cases[0]);
}

/* ---- nnc_data_read --------------------------------------------------------------------------- */

static void test_data_read_dispatch(void **state)
{
    static const uint8_t labels[5] = {5, 0, 4, 1, 9};
    static const double col[3] = {1, 2, 3};
    static const BadCase cases[] = {
        {FX("model.safetensors"), "unknown data file kind", NULL},
        {FX("no_such_file.npy"), "cannot open", NULL},
    };
    char path[512];
    size_t size;
    void *bytes = slurp_(FX("f32_v1.npy"), &size);
    (void)state;
    read_expect_(nnc_data_read, FX("f32_v2.npy"), NNC_F32, 2, SHAPE(3, 4), npy_f32_);
    read_expect_(nnc_data_read, FX("labels-idx1-ubyte.gz"), NNC_U8, 1, SHAPE(5), labels);
    read_expect_(nnc_data_read, FX("i32.idx"), NNC_I32, 1, SHAPE(2), ((const int32_t[]){-100000, 123456789}));
    read_expect_(nnc_data_read, FX("one_column.csv"), NNC_F64, 2, SHAPE(3, 1), col);
    tmp_path_(path, sizeof path, "renamed.bin"); /* an .npy by its magic, whatever the name */
    spit_(path, bytes, size);
    read_expect_(nnc_data_read, path, NNC_F32, 2, SHAPE(3, 4), npy_f32_);
    unlink(path);
    free(bytes);
    read_expect_bad_(nnc_data_read, cases, sizeof cases / sizeof cases[0]);
}

/* ---- safetensors.c --------------------------------------------------------------------------- */

static void st_expect_(const nnc_safetensors *st, const char *name, nnc_dtype t, int rank, const int64_t *shape,
                       const void *want)
{
    const nnc_st_tensor *x = nnc_st_find(st, name);
    nnc_array view;
    if (!x)
        fail_msg("tensor %s not found", name);
    view.dtype = x->dtype;
    view.rank = x->rank;
    memcpy(view.shape, x->shape, sizeof view.shape);
    view.data = x->data;
    assert_int_equal(x->nbytes, (size_t)nnc_array_count(&view) * nnc_dtype_size(x->dtype));
    check_array_(&view, t, rank, shape, want);
}

static void test_st_read(void **state)
{
    static const float w[6] = {0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f}, b[3] = {0.5f, -0.5f, 0};
    static const int64_t step[1] = {42};
    static const int32_t ids[4] = {-1, 0, 1, INT32_MAX};
    static const uint8_t mask[4] = {0, 1, 254, 255};
    static const double scale[1] = {1.0 / 3.0};
    nnc_safetensors st;
    char err[512];
    (void)state;
    if (nnc_st_read(FX("model.safetensors"), &st, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(st.count, 7); /* "__metadata__" is not a tensor */
    assert_string_equal(st.tensors[0].name, "dense.w"); /* header order */
    st_expect_(&st, "dense.w", NNC_F32, 2, SHAPE(2, 3), w);
    st_expect_(&st, "dense.b", NNC_F32, 1, SHAPE(3), b);
    st_expect_(&st, "step", NNC_I64, 0, SHAPE(0), step);
    st_expect_(&st, "ids", NNC_I32, 1, SHAPE(4), ids);
    st_expect_(&st, "mask", NNC_U8, 2, SHAPE(2, 2), mask);
    st_expect_(&st, "scale", NNC_F64, 1, SHAPE(1), scale);
    st_expect_(&st, "empty", NNC_F32, 2, SHAPE(0, 3), NULL);
    assert_null(nnc_st_find(&st, "__metadata__"));
    assert_null(nnc_st_find(&st, "dense"));
    nnc_st_free(&st);
    assert_int_equal(st.count, 0);
}

static void test_st_read_unpadded_and_empty(void **state)
{
    static const float a[2] = {1.5f, -1.0f};
    nnc_safetensors st;
    char err[512];
    (void)state;
    if (nnc_st_read(FX("unpadded.safetensors"), &st, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(st.count, 1);
    st_expect_(&st, "a", NNC_F32, 1, SHAPE(2), a);
    nnc_st_free(&st);
    if (nnc_st_read(FX("empty.safetensors"), &st, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(st.count, 0);
    nnc_st_free(&st);
}

static void test_st_bad(void **state)
{
    static const BadCase cases[] = {
        {FX("bad_short.safetensors"), "too short", NULL},
        {FX("bad_hugelen.safetensors"), "header length 1099511627776", "100 MB"},
        {FX("bad_len_past_end.safetensors"), "header length 1000 exceeds the file", "only 10 bytes"},
        {FX("bad_len_into_data.safetensors"), "header length 62 runs past the end of the JSON header", "54 bytes"},
        {FX("bad_bigshape.safetensors"), "'a'", "shape [4294967296, 4294967296] is too large"},
        {FX("bad_json.safetensors"), "invalid JSON", NULL},
        {FX("bad_not_object.safetensors"), "invalid JSON", "'{'"},
        {FX("bad_junk.safetensors"), "junk after", NULL},
        {FX("bad_missing_offsets.safetensors"), "'a'", "data_offsets"},
        {FX("bad_missing_dtype.safetensors"), "'a'", "dtype"},
        {FX("bad_shape.safetensors"), "'a'", "shape"},
        {FX("bad_offsets.safetensors"), "'a'", "run past the end"},
        {FX("bad_truncated.safetensors"), "'ids'", "run past the end"},
        {FX("bad_size.safetensors"), "'a'", "need 24"},
        {FX("bad_dtype.safetensors"), "'a'", "'BF16'"},
        {FX("bad_overlap.safetensors"), "'a' and 'b'", "overlap"},
        {FX("bad_duplicate.safetensors"), "'a'", "twice"},
        {FX("f32_v1.npy"), "header length", NULL},
        {FX("no_such_file.safetensors"), "cannot open", NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nnc_safetensors st;
        char err[512] = "";
        if (nnc_st_read(cases[i].path, &st, err, sizeof err) != -1)
            fail_msg("%s was accepted", cases[i].path);
        expect_msg_(err, cases[i].path, cases[i].k1);
        expect_msg_(err, cases[i].k2, NULL);
        if (st.count || st.tensors)
            fail_msg("%s: output not zeroed after a failure", cases[i].path);
    }
}

static const float st_b_[6] = {1, 2, 3, 4, 5, 6};
static const int32_t st_a_[2] = {7, -8};
static const uint8_t st_c_[1] = {200};

/* Given in the order b, a, c: data in that order, header keys sorted. */
static void st_make_abc_(nnc_st_tensor t[3])
{
    memset(t, 0, 3 * sizeof *t);
    t[0].name = "b", t[0].dtype = NNC_F32, t[0].rank = 2, t[0].shape[0] = 2, t[0].shape[1] = 3;
    t[0].data = (void *)st_b_, t[0].nbytes = sizeof st_b_;
    t[1].name = "a", t[1].dtype = NNC_I32, t[1].rank = 1, t[1].shape[0] = 2;
    t[1].data = (void *)st_a_, t[1].nbytes = sizeof st_a_;
    t[2].name = "c", t[2].dtype = NNC_U8, t[2].rank = 0;
    t[2].data = (void *)st_c_, t[2].nbytes = sizeof st_c_;
}

static void test_st_write_layout(void **state)
{
    static const char json[] = "{\"a\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[24,32]},"
                               "\"b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                               "\"c\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[32,33]}}";
    nnc_st_tensor t[3];
    char path[512], err[512];
    size_t size, jlen = strlen(json), hlen = (jlen + 7) / 8 * 8;
    unsigned char *f;
    uint64_t n = 0;
    (void)state;
    st_make_abc_(t);
    tmp_path_(path, sizeof path, "abc.safetensors");
    if (nnc_st_write(path, t, 3, err, sizeof err) != 0)
        fail_msg("%s", err);
    f = slurp_(path, &size);
    for (int i = 7; i >= 0; i--)
        n = n << 8 | f[i];
    assert_int_equal(n, hlen);
    assert_int_equal(n % 8, 0);
    assert_int_equal(size, 8 + hlen + 33);
    assert_memory_equal(f + 8, json, jlen);
    for (size_t i = 8 + jlen; i < 8 + hlen; i++)
        assert_int_equal(f[i], ' ');
    assert_memory_equal(f + 8 + hlen, st_b_, 24);
    assert_memory_equal(f + 8 + hlen + 24, st_a_, 8);
    assert_int_equal(f[8 + hlen + 32], 200);
    free(f);
}

static void test_st_write_roundtrip(void **state)
{
    static const double d[2] = {-0.0, 1e-300};
    static const int64_t l[3] = {INT64_MIN, 0, INT64_MAX};
    nnc_st_tensor t[6];
    nnc_safetensors st;
    char path[512], err[512];
    (void)state;
    st_make_abc_(t);
    memset(t + 3, 0, 3 * sizeof *t);
    t[3].name = "layer.0/d \"quoted\"", t[3].dtype = NNC_F64, t[3].rank = 1, t[3].shape[0] = 2;
    t[3].data = (void *)d, t[3].nbytes = sizeof d;
    t[4].name = "l", t[4].dtype = NNC_I64, t[4].rank = 1, t[4].shape[0] = 3, t[4].data = (void *)l;
    t[4].nbytes = sizeof l;
    t[5].name = "zero", t[5].dtype = NNC_F32, t[5].rank = 2, t[5].shape[0] = 4, t[5].shape[1] = 0;
    tmp_path_(path, sizeof path, "all.safetensors");
    if (nnc_st_write(path, t, 6, err, sizeof err) != 0)
        fail_msg("%s", err);
    if (nnc_st_read(path, &st, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(st.count, 6);
    st_expect_(&st, "b", NNC_F32, 2, SHAPE(2, 3), st_b_);
    st_expect_(&st, "a", NNC_I32, 1, SHAPE(2), st_a_);
    st_expect_(&st, "c", NNC_U8, 0, SHAPE(0), st_c_);
    st_expect_(&st, "layer.0/d \"quoted\"", NNC_F64, 1, SHAPE(2), d);
    st_expect_(&st, "l", NNC_I64, 1, SHAPE(3), l);
    st_expect_(&st, "zero", NNC_F32, 2, SHAPE(4, 0), NULL);
    nnc_st_free(&st);
    assert_int_equal(count_temp_files_(), 0);
}

/* A write that is refused must name the tensor, leave the old file as it was, and leave no temp. */
static void st_write_expect_refused_(const nnc_st_tensor *t, int n, const char *k1, const char *k2)
{
    char path[512], err[512] = "";
    size_t size;
    char *kept;
    tmp_path_(path, sizeof path, "keep.safetensors");
    spit_(path, "old", 3);
    if (nnc_st_write(path, t, n, err, sizeof err) != -1)
        fail_msg("a bad tensor list was accepted (expected an error about %s)", k1);
    expect_msg_(err, path, k1);
    expect_msg_(err, k2, NULL);
    kept = slurp_(path, &size);
    assert_int_equal(size, 3);
    assert_memory_equal(kept, "old", 3);
    free(kept);
    unlink(path);
    assert_int_equal(count_temp_files_(), 0);
}

static void test_st_write_rejects(void **state)
{
    nnc_st_tensor t[3];
    (void)state;
    st_make_abc_(t);
    t[1].name = "b";
    st_write_expect_refused_(t, 3, "'b'", "twice");
    st_make_abc_(t);
    t[0].nbytes = 20;
    st_write_expect_refused_(t, 3, "'b'", "nbytes");
    st_make_abc_(t);
    t[2].name = "__metadata__";
    st_write_expect_refused_(t, 3, "__metadata__", NULL);
    st_make_abc_(t);
    t[1].dtype = (nnc_dtype)42;
    st_write_expect_refused_(t, 3, "'a'", "dtype");
    st_make_abc_(t);
    t[0].data = NULL;
    st_write_expect_refused_(t, 3, "'b'", "no data");
    st_make_abc_(t);
    t[1].name = NULL;
    st_write_expect_refused_(t, 3, "(null)", NULL);
    st_write_expect_refused_(t, -1, "count -1", NULL);
    st_make_abc_(t);
    t[1].shape[0] = (int64_t)1 << 62, t[1].nbytes = 0; /* 2^62 I32 elements: 2^64 bytes */
    st_write_expect_refused_(t, 3, "'a'", "too large shape");
    {
        /* sizes that are each valid (under 2^60 bytes) but overflow the int64 offsets together */
        static const char *const names[9] = {"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"};
        nnc_st_tensor big[9];
        memset(big, 0, sizeof big);
        for (int i = 0; i < 9; i++) {
            big[i].name = (char *)names[i], big[i].dtype = NNC_U8, big[i].rank = 1, big[i].data = (void *)st_b_;
            big[i].shape[0] = ((int64_t)1 << 60) - 1, big[i].nbytes = ((size_t)1 << 60) - 1;
        }
        st_write_expect_refused_(big, 9, "'t8'", "more than 2^63 bytes");
    }
}

/* ---- atomic_file.c --------------------------------------------------------------------------- */

static void test_atomic_write(void **state)
{
    char path[512], err[256];
    struct stat sb;
    size_t size;
    char *got;
    mode_t old = umask(022);
    (void)state;
    tmp_path_(path, sizeof path, "atomic.txt");
    assert_int_equal(nnc_write_file_atomic(path, "hello", 5, err, sizeof err), 0);
    assert_int_equal(nnc_write_file_atomic(path, "world!", 6, err, sizeof err), 0);
    got = slurp_(path, &size);
    assert_int_equal(size, 6);
    assert_memory_equal(got, "world!", 6);
    free(got);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644); /* what fopen would give, not mkstemp's 0600 */
    assert_int_equal(nnc_write_file_atomic(path, "", 0, err, sizeof err), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    assert_int_equal(count_temp_files_(), 0);
    unlink(path);
    umask(old);
}

static void test_atomic_write_failures(void **state)
{
    char missing[512], dir[512], inner[512], err[512] = "";
    struct stat sb;
    (void)state;
    tmp_path_(missing, sizeof missing, "no/such/dir/out.npy");
    assert_int_equal(nnc_write_file_atomic(missing, "x", 1, err, sizeof err), -1);
    expect_msg_(err, missing, "temporary file");
    assert_int_equal(stat(missing, &sb), -1);

    /* The target is a non-empty directory: refused before anything is written. */
    tmp_path_(dir, sizeof dir, "target");
    tmp_path_(inner, sizeof inner, "target/inside");
    assert_int_equal(mkdir(dir, 0755), 0);
    spit_(inner, "keep", 4);
    assert_int_equal(nnc_write_file_atomic(dir, "x", 1, err, sizeof err), -1);
    expect_msg_(err, dir, "is a directory");
    assert_int_equal(stat(inner, &sb), 0);
    assert_int_equal(sb.st_size, 4);
    assert_int_equal(count_temp_files_(), 0);
    unlink(inner);
    rmdir(dir);

    assert_int_equal(nnc_write_file_atomic("", "x", 1, err, sizeof err), -1);
    assert_int_equal(nnc_write_file_atomic("somedir/", "x", 1, err, sizeof err), -1);
    expect_msg_(err, "somedir/", "not a file name");
}

/* A write that fails half-way (here: the file size limit, as a full disk would) keeps the old file. */
static void test_atomic_write_fails_midway(void **state)
{
    static char big[8192];
    char path[512], err[512] = "";
    struct rlimit old, lim;
    size_t size;
    char *kept;
    int rc;
    (void)state;
    tmp_path_(path, sizeof path, "midway.bin");
    spit_(path, "old", 3);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN); /* so write() fails with EFBIG instead of killing us */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rc = nnc_write_file_atomic(path, big, sizeof big, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, -1);
    expect_msg_(err, path, "write of temporary file");
    kept = slurp_(path, &size);
    assert_int_equal(size, 3);
    assert_memory_equal(kept, "old", 3);
    free(kept);
    unlink(path);
    assert_int_equal(count_temp_files_(), 0);
}


/* A character device node in the scratch directory with the numbers of `model` (/dev/null, /dev/full),
 * so that a wrong writer destroys only the copy, never the real node. 0, or -1 where mknod is not
 * allowed or the file system ignores device nodes (nodev): the caller then skips. */
static int make_device_(char *path, size_t cap, const char *name, const char *model)
{
    struct stat sb;
    int fd;
    tmp_path_(path, cap, name);
    if (stat(model, &sb) != 0 || !S_ISCHR(sb.st_mode) || mknod(path, S_IFCHR | 0666, sb.st_rdev) != 0)
        return -1;
    if ((fd = open(path, O_WRONLY)) < 0) {
        unlink(path);
        return -1;
    }
    close(fd);
    return 0;
}

static void expect_type_(const char *path, mode_t type)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        fail_msg("%s: %s", path, strerror(errno));
    if ((sb.st_mode & S_IFMT) != type)
        fail_msg("%s has type %o, want %o", path, (unsigned)(sb.st_mode & S_IFMT), (unsigned)type);
}

static void expect_contents_(const char *path, const char *want)
{
    size_t size;
    char *got = slurp_(path, &size);
    assert_int_equal(size, strlen(want));
    assert_memory_equal(got, want, size);
    free(got);
}

/* Devices are written in place: a device stays a device, /dev/full's ENOSPC is an error. */
static void test_atomic_write_device(void **state)
{
    char dnull[512], dfull[512], link[512], err[512] = "";
    (void)state;
    if (make_device_(dnull, sizeof dnull, "null", "/dev/null") != 0)
        skip();
    assert_int_equal(nnc_write_file_atomic(dnull, "data", 4, err, sizeof err), 0);
    expect_type_(dnull, S_IFCHR);
    tmp_path_(link, sizeof link, "null_link");
    assert_int_equal(symlink(dnull, link), 0);
    assert_int_equal(nnc_write_file_atomic(link, "data", 4, err, sizeof err), 0);
    expect_type_(link, S_IFLNK);
    expect_type_(dnull, S_IFCHR);
    if (make_device_(dfull, sizeof dfull, "full", "/dev/full") == 0) {
        assert_int_equal(nnc_write_file_atomic(dfull, "data", 4, err, sizeof err), -1);
        expect_msg_(err, dfull, strerror(ENOSPC));
        expect_type_(dfull, S_IFCHR);
        unlink(dfull);
    }
    assert_int_equal(count_temp_files_(), 0);
    unlink(link);
    unlink(dnull);
}

/* A FIFO is written into, not replaced: a reader on the other end gets the bytes. */
static void test_atomic_write_fifo(void **state)
{
    char fifo[512], got[512], err[512] = "";
    int status = -1, rc;
    pid_t pid;
    (void)state;
    tmp_path_(fifo, sizeof fifo, "fifo");
    tmp_path_(got, sizeof got, "fifo_got");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the reader: copy what comes through the FIFO to fifo_got */
        char buf[256];
        ssize_t n = 0;
        int in, out;
        alarm(10); /* a writer that replaced the FIFO never opens it: do not wait forever */
        in = open(fifo, O_RDONLY);
        out = open(got, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                _exit(2);
        _exit(in < 0 || out < 0 || n < 0);
    }
    rc = nnc_write_file_atomic(fifo, "through a pipe", 14, err, sizeof err);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (rc != 0)
        fail_msg("writing the FIFO failed: %s", err);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    expect_type_(fifo, S_IFIFO);
    expect_contents_(got, "through a pipe");
    assert_int_equal(count_temp_files_(), 0);
    unlink(got);
    unlink(fifo);
}

/* The PID of a process that has just exited (its number is free again, so it names no live process
 * unless the kernel hands it out anew within this test). */
static long dead_pid_(void)
{
    int status;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return (long)pid;
}

/* Symlinks (a chain, relative and absolute) are followed; the file at the end is replaced, keeping its
 * mode, and the temporary lives in its directory (shown by the stale temporary cleared there). */
static void test_atomic_write_symlinks(void **state)
{
    char sub[512], real[512], l1[512], l2[512], stale[512], dang[512], made[512], la[512], lb[512];
    char name[64], err[512] = "";
    struct stat sb;
    (void)state;
    tmp_path_(sub, sizeof sub, "links");
    assert_int_equal(mkdir(sub, 0755), 0);
    tmp_path_(real, sizeof real, "links/real.bin");
    spit_(real, "old", 3);
    assert_int_equal(chmod(real, 0600), 0);
    tmp_path_(l1, sizeof l1, "link1");
    assert_int_equal(symlink("links/real.bin", l1), 0);
    tmp_path_(l2, sizeof l2, "link2");
    assert_int_equal(symlink(l1, l2), 0);
    snprintf(name, sizeof name, "links/.real.bin.nnc-tmp.%ld", dead_pid_());
    tmp_path_(stale, sizeof stale, name);
    spit_(stale, "stale", 5);
    assert_int_equal(nnc_write_file_atomic(l2, "new!", 4, err, sizeof err), 0);
    expect_type_(l1, S_IFLNK);
    expect_type_(l2, S_IFLNK);
    expect_type_(real, S_IFREG);
    expect_contents_(real, "new!");
    assert_int_equal(stat(real, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(count_temp_files_in_(sub), 0);
    assert_int_equal(count_temp_files_(), 0);

    /* A dangling link creates its target. */
    tmp_path_(dang, sizeof dang, "dangling");
    tmp_path_(made, sizeof made, "links/made.bin");
    assert_int_equal(symlink("links/made.bin", dang), 0);
    assert_int_equal(nnc_write_file_atomic(dang, "made", 4, err, sizeof err), 0);
    expect_type_(dang, S_IFLNK);
    expect_contents_(made, "made");

    /* A loop is an error, and nothing is created. */
    tmp_path_(la, sizeof la, "loopA");
    tmp_path_(lb, sizeof lb, "loopB");
    assert_int_equal(symlink("loopB", la), 0);
    assert_int_equal(symlink("loopA", lb), 0);
    assert_int_equal(nnc_write_file_atomic(la, "x", 1, err, sizeof err), -1);
    expect_msg_(err, la, strerror(ELOOP));
    expect_type_(la, S_IFLNK);
    expect_type_(lb, S_IFLNK);
    assert_int_equal(count_temp_files_(), 0);
    unlink(la), unlink(lb), unlink(dang), unlink(made), unlink(l2), unlink(l1), unlink(real);
    rmdir(sub);
}

/* /dev/stdout and /proc/self/fd/N lead to open files, not to names to replace: written in place. */
static void test_atomic_write_proc_fd(void **state)
{
    char path[512], fdpath[64], err[512] = "", buf[16] = "";
    struct stat before, after;
    int fd, p[2];
    (void)state;
    if (access("/proc/self/fd", F_OK) != 0)
        skip();
    tmp_path_(path, sizeof path, "via_fd.txt");
    spit_(path, "old contents", 12);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &before), 0);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    assert_int_equal(nnc_write_file_atomic(fdpath, "new", 3, err, sizeof err), 0);
    assert_int_equal(fstat(fd, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino); /* the same file, not a replacement */
    close(fd);
    expect_contents_(path, "new");

    assert_int_equal(pipe(p), 0);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", p[1]);
    assert_int_equal(nnc_write_file_atomic(fdpath, "piped", 5, err, sizeof err), 0);
    close(p[1]);
    assert_int_equal(read(p[0], buf, sizeof buf), 5);
    assert_memory_equal(buf, "piped", 5);
    close(p[0]);
    assert_int_equal(count_temp_files_(), 0);
    unlink(path);
}

/* Temporaries of the same target left by dead processes go; a live process's, another target's and
 * files that only look similar stay. */
static void test_atomic_stale_temporaries(void **state)
{
    static const char *const keep[] = {".stale.bin.nnc-tmp.1", ".other.bin.nnc-tmp.%ld", ".stale.bin.nnc-tmp.%ldx",
                                       ".stale.bin.nnc-tmp.", "stale.bin.tmp.Ab12Cd"};
    static const char *const drop[] = {".stale.bin.nnc-tmp.%ld", ".stale.bin.nnc-tmp.%ld-2"};
    char path[512], name[128], err[512] = "";
    long dead = dead_pid_();
    (void)state;
    for (size_t i = 0; i < 5; i++) {
        snprintf(name, sizeof name, keep[i], dead); /* unused arguments are allowed */
        spit_(tmp_path_(path, sizeof path, name), "k", 1);
    }
    for (size_t i = 0; i < 2; i++) {
        snprintf(name, sizeof name, drop[i], dead);
        spit_(tmp_path_(path, sizeof path, name), "d", 1);
    }
    assert_int_equal(nnc_write_file_atomic(tmp_path_(path, sizeof path, "stale.bin"), "x", 1, err, sizeof err),
                     0);
    for (size_t i = 0; i < 5; i++) {
        snprintf(name, sizeof name, keep[i], dead);
        if (access(tmp_path_(path, sizeof path, name), F_OK) != 0)
            fail_msg("%s was removed", name);
        unlink(path);
    }
    for (size_t i = 0; i < 2; i++) {
        snprintf(name, sizeof name, drop[i], dead);
        if (access(tmp_path_(path, sizeof path, name), F_OK) == 0)
            fail_msg("stale %s was left", name);
    }
    unlink(tmp_path_(path, sizeof path, "stale.bin"));
}

/* A name near NAME_MAX still gets a temporary (its name cut to fit), and the write succeeds. */
static void test_atomic_write_long_name(void **state)
{
    char name[256], path[512], err[512] = "";
    (void)state;
    memset(name, 'n', 250);
    strcpy(name + 250, ".bin");
    tmp_path_(path, sizeof path, name);
    assert_int_equal(nnc_write_file_atomic(path, "one", 3, err, sizeof err), 0);
    assert_int_equal(nnc_write_file_atomic(path, "two", 3, err, sizeof err), 0);
    expect_contents_(path, "two");
    assert_int_equal(count_temp_files_(), 0);
    unlink(path);
}

/* ---- error reporting ------------------------------------------------------------------------- */

static void test_err_buffer_limits(void **state)
{
    nnc_array a;
    nnc_safetensors st;
    char err[8];
    (void)state;
    memset(err, 'x', sizeof err);
    assert_int_equal(nnc_npy_read(FX("bad_magic.npy"), &a, err, sizeof err), -1);
    assert_int_equal(strlen(err), sizeof err - 1); /* truncated, still terminated */
    assert_int_equal(nnc_npy_read(FX("bad_magic.npy"), &a, NULL, 0), -1);
    assert_int_equal(nnc_idx_read(FX("bad_magic.idx"), &a, NULL, 0), -1);
    assert_int_equal(nnc_csv_read(FX("bad_ragged.csv"), &a, NULL, 0), -1);
    assert_int_equal(nnc_st_read(FX("bad_json.safetensors"), &st, NULL, 0), -1);
    assert_int_equal(nnc_data_read(FX("model.safetensors"), &a, NULL, 0), -1);
}

/* ---- main ------------------------------------------------------------------------------------ */

static int setup_tmpdir_(void **state)
{
    const char *base = getenv("TMPDIR");
    (void)state;
    snprintf(tmpdir_, sizeof tmpdir_, "%s/nnc_rt_XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir_) ? 0 : -1;
}

/* Tests remove what they create; anything left (after a failed test) is removed here. */
static int teardown_tmpdir_(void **state)
{
    DIR *d = opendir(tmpdir_);
    struct dirent *e;
    (void)state;
    while (d && (e = readdir(d)) != NULL) {
        char path[512];
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlink(tmp_path_(path, sizeof path, e->d_name));
    }
    if (d)
        closedir(d);
    return rmdir(tmpdir_);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_facts),
        cmocka_unit_test(test_array_count),
        cmocka_unit_test(test_array_free_zeroed),
        cmocka_unit_test(test_convert_ok),
        cmocka_unit_test(test_convert_errors),
        cmocka_unit_test(test_npy_read),
        cmocka_unit_test(test_npy_read_element),
        cmocka_unit_test(test_npy_read_widened),
        cmocka_unit_test(test_npy_bad),
        cmocka_unit_test(test_npy_write_matches_numpy),
        cmocka_unit_test(test_npy_write_rank8),
        cmocka_unit_test(test_npy_write_rejects),
        cmocka_unit_test(test_idx_read),
        cmocka_unit_test(test_idx_bad),
        cmocka_unit_test(test_read_header),
        cmocka_unit_test(test_csv_read),
        cmocka_unit_test(test_csv_bad),
        cmocka_unit_test(test_data_read_dispatch),
        cmocka_unit_test(test_st_read),
        cmocka_unit_test(test_st_read_unpadded_and_empty),
        cmocka_unit_test(test_st_bad),
        cmocka_unit_test(test_st_write_layout),
        cmocka_unit_test(test_st_write_roundtrip),
        cmocka_unit_test(test_st_write_rejects),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_atomic_write_failures),
        cmocka_unit_test(test_atomic_write_fails_midway),
        cmocka_unit_test(test_atomic_write_device),
        cmocka_unit_test(test_atomic_write_fifo),
        cmocka_unit_test(test_atomic_write_symlinks),
        cmocka_unit_test(test_atomic_write_proc_fd),
        cmocka_unit_test(test_atomic_stale_temporaries),
        cmocka_unit_test(test_atomic_write_long_name),
        cmocka_unit_test(test_err_buffer_limits),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir_, teardown_tmpdir_);
}
