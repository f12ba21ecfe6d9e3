/* test_kernel.c: unit tests of the target-neutral kernel description (compiler/backend/kernel.c) and the
 * table of targets, against hand-worked loop nests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kernel.h"
#include "target.h"

static Shape shape_(int rank, const int64_t *d)
{
    Shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) s.d[i] = d[i];
    return s;
}

/* y[B,4,5] = a[B,4,5] + b[5]: B and 4 are alike for every operand (b broadcast along both), so they merge
 * into one loop of n * 4; the 5 stays apart */
static void broadcast_row_merges_batch_and_rows(void **state)
{
    (void)state;
    Shape ops[3] = {shape_(3, (int64_t[]){DIM_B, 4, 5}), shape_(1, (int64_t[]){5}), shape_(3, (int64_t[]){DIM_B, 4, 5})};
    LoopNest d = loop_nest_make(ops[2], ops, 3);
    assert_int_equal(d.rank, 2);
    assert_true(d.batch[0]);
    assert_false(d.batch[1]);
    assert_int_equal(d.ext[0], 4);
    assert_int_equal(d.ext[1], 5);
    Index a = loop_nest_index(&d, 0), b = loop_nest_index(&d, 1);
    /* a: i0 * 5 + i1 */
    assert_int_equal(a.n, 2);
    assert_int_equal(a.var[0], 0);
    assert_int_equal(a.stride[0], 5);
    assert_int_equal(a.var[1], 1);
    assert_int_equal(a.stride[1], 1);
    /* b: i1 */
    assert_int_equal(b.n, 1);
    assert_int_equal(b.var[0], 1);
    assert_int_equal(b.stride[0], 1);
}

/* y[B,4,5] = a[B,4,1] * b[B,4,5]: a is broadcast along the last axis only */
static void column_broadcast_keeps_two_loops(void **state)
{
    (void)state;
    Shape ops[3] = {shape_(3, (int64_t[]){DIM_B, 4, 1}), shape_(3, (int64_t[]){DIM_B, 4, 5}),
                    shape_(3, (int64_t[]){DIM_B, 4, 5})};
    LoopNest d = loop_nest_make(ops[2], ops, 3);
    assert_int_equal(d.rank, 2);
    assert_int_equal(d.ext[0], 4);
    assert_int_equal(d.ext[1], 5);
    Index a = loop_nest_index(&d, 0);
    /* a: i0 (one element per row) */
    assert_int_equal(a.n, 1);
    assert_int_equal(a.var[0], 0);
    assert_int_equal(a.stride[0], 1);
}

/* y[B,4,5] = a[B,4,5] * c[B,4,5]: every operand alike, one loop of n * 20 */
static void same_shapes_merge_into_one_loop(void **state)
{
    (void)state;
    Shape s = shape_(3, (int64_t[]){DIM_B, 4, 5}), ops[3] = {s, s, s};
    LoopNest d = loop_nest_make(s, ops, 3);
    assert_int_equal(d.rank, 1);
    assert_true(d.batch[0]);
    assert_int_equal(d.ext[0], 20);
    Index a = loop_nest_index(&d, 1);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.stride[0], 1);
}

/* sum over axis 1 of x[3,1,4,6] into [3,1,1,6]: the 1 is dropped, 3 | 4 | 6 stay apart (y skips the 4) */
static void reduction_drops_unit_extents(void **state)
{
    (void)state;
    Shape x = shape_(4, (int64_t[]){3, 1, 4, 6}), y = shape_(4, (int64_t[]){3, 1, 1, 6}), ops[2] = {x, y};
    LoopNest d = loop_nest_make(x, ops, 2);
    assert_int_equal(d.rank, 3);
    assert_false(d.batch[0]);
    assert_int_equal(d.ext[0], 3);
    assert_int_equal(d.ext[1], 4);
    assert_int_equal(d.ext[2], 6);
    Index iy = loop_nest_index(&d, 1);
    /* y: i0 * 6 + i2 */
    assert_int_equal(iy.n, 2);
    assert_int_equal(iy.var[0], 0);
    assert_int_equal(iy.stride[0], 6);
    assert_int_equal(iy.var[1], 2);
    assert_int_equal(iy.stride[1], 1);
}

/* a scalar operand (shape []) indexes nothing: its index is 0 */
static void scalar_operand_has_empty_index(void **state)
{
    (void)state;
    Shape s = shape_(2, (int64_t[]){7, 3}), ops[2] = {shape_(0, NULL), s};
    LoopNest d = loop_nest_make(s, ops, 2);
    assert_int_equal(d.rank, 1);
    assert_int_equal(d.ext[0], 21);
    assert_int_equal(loop_nest_index(&d, 0).n, 0);
}

static void target_table_has_host_mcu_and_cuda(void **state)
{
    (void)state;
    const Target *t = target_find("c");
    assert_non_null(t);
    assert_ptr_equal(t, &target_host);
    assert_true(t->blas);
    assert_int_equal(t->index_max, INT64_C(2147483647) - 64);
    assert_int_equal(t->fuse.members, 48);
    assert_null(target_find("C"));
    const Target *mcu = target_find("mcu");
    assert_ptr_equal(mcu, &target_mcu);
    assert_false(mcu->blas);
    assert_true(mcu->firmware && !t->firmware);
    assert_string_equal(mcu->index_type, "int32_t");
    assert_int_equal(mcu->arena_align, 1);
    assert_true(mcu->fuse.conv_into_pool && !t->fuse.conv_into_pool);
    const Target *cuda = target_find("cuda");
    assert_ptr_equal(cuda, &target_cuda);
    assert_true(cuda->gpu && !mcu->gpu && !t->gpu);
    assert_false(cuda->blas || cuda->firmware);
    assert_string_equal(cuda->kernel_prefix, "NNC_GLOBAL void");
    assert_null(target_find("gpu"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(broadcast_row_merges_batch_and_rows),
        cmocka_unit_test(column_broadcast_keeps_two_loops), cmocka_unit_test(same_shapes_merge_into_one_loop),
        cmocka_unit_test(reduction_drops_unit_extents), cmocka_unit_test(scalar_operand_has_empty_index),
        cmocka_unit_test(target_table_has_host_mcu_and_cuda),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
