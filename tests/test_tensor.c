/* Tensors on PoCL: shapes, a kernel round trip, views with offsets, copies
 * and fills, and the deterministic sum (reduce.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/reduce.h"
#include "batchscope/tensor.h"
#include "testutil.h"

static bsc_context *ctx;

static int setup(void **state)
{
    (void)state;
    return tu_context_open(&ctx) == BSC_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bsc_context_free(ctx);
    return 0;
}

static bsc_shape shape1(int64_t n)
{
    return bsc_shape_make(1, &n);
}

static void test_shapes(void **state)
{
    (void)state;
    int64_t d[] = {32, 1, 28, 28};
    bsc_shape s = bsc_shape_make(4, d);
    char buf[64];
    assert_int_equal(bsc_shape_numel(&s), 32 * 28 * 28);
    bsc_shape_format(&s, buf, sizeof buf);
    assert_string_equal(buf, "[32, 1, 28, 28]");
    bsc_shape_format(&s, buf, 6);
    assert_string_equal(buf, "[32, ");
    bsc_shape e = bsc_shape_make(0, NULL);
    bsc_shape_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "[]");
    assert_int_equal(bsc_shape_numel(&e), 1);
    bsc_shape t = bsc_shape_make(4, d);
    assert_true(bsc_shape_equal(&s, &t));
    t.dim[3] = 27;
    assert_false(bsc_shape_equal(&s, &t));
    assert_int_equal(bsc_dtype_size(BSC_F32), 4);
    assert_int_equal(bsc_dtype_size(BSC_I32), 4);
    assert_int_equal(bsc_dtype_size(BSC_U8), 1);
}

static void test_kernel_round_trip(void **state)
{
    (void)state;
    enum { N = 1000 };
    float in[N], out[N];
    bsc_shape s = shape1(N);
    bsc_tensor t;
    cl_kernel k;
    for (int i = 0; i < N; i++)
        in[i] = (float)i * 0.25f - 7.0f;
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &s, &t), BSC_OK);
    assert_int_equal(t.owns, 1);
    assert_int_equal(t.numel, N);
    assert_int_equal(bsc_tensor_write(ctx, &t, in), BSC_OK);
    assert_int_equal(bsc_kernel(ctx, "util.cl", "scale_f32", &k), BSC_OK);
    /* 1000 rounds up to 1024 work items: the kernel's guard must hold. */
    cl_ulong off = 0, n = N;
    float alpha = -2.0f;
    bsc_karg args[] = {BSC_ARG(t.mem), BSC_ARG(off), BSC_ARG(n), BSC_ARG(alpha)};
    size_t global = N, local = 64;
    assert_int_equal(bsc_launch(ctx, k, 4, args, 1, &global, &local), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &t, out), BSC_OK);
    for (int i = 0; i < N; i++)
        assert_true(out[i] == in[i] * -2.0f);
    /* A bad argument is reported with the kernel's name. */
    bsc_karg bad[] = {BSC_ARG(alpha)};
    assert_int_equal(bsc_launch(ctx, k, 1, bad, 1, &global, &local), BSC_ERR_OPENCL);
    assert_non_null(strstr(bsc_last_error(), "scale_f32"));
    bsc_tensor_free(&t);
    assert_null(t.mem);
}

static void test_views(void **state)
{
    (void)state;
    float base_host[100], part[20], back[100];
    bsc_shape s = shape1(100), vs = shape1(20);
    bsc_tensor base;
    for (int i = 0; i < 100; i++)
        base_host[i] = -1.0f;
    for (int i = 0; i < 20; i++)
        part[i] = (float)(i + 1);
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &s, &base), BSC_OK);
    assert_int_equal(bsc_tensor_write(ctx, &base, base_host), BSC_OK);

    bsc_tensor v = bsc_tensor_view(&base, 10, &vs);
    assert_int_equal(v.owns, 0);
    assert_int_equal(v.offset, 10);
    assert_int_equal(bsc_tensor_write(ctx, &v, part), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &base, back), BSC_OK);
    for (int i = 0; i < 100; i++)
        assert_true(back[i] == (i >= 10 && i < 30 ? (float)(i - 9) : -1.0f));

    /* A view of a view: offsets add up; a kernel sees the offset. */
    int64_t d2[] = {2, 3};
    bsc_shape s2 = bsc_shape_make(2, d2);
    bsc_tensor vv = bsc_tensor_view(&v, 5, &s2);
    assert_int_equal(vv.offset, 15);
    assert_int_equal(vv.numel, 6);
    float six[6];
    assert_int_equal(bsc_tensor_read(ctx, &vv, six), BSC_OK);
    for (int i = 0; i < 6; i++)
        assert_true(six[i] == (float)(6 + i));
    cl_kernel k;
    assert_int_equal(bsc_kernel(ctx, "util.cl", "fill_f32", &k), BSC_OK);
    cl_ulong off = vv.offset, n = vv.numel;
    float val = 9.0f;
    bsc_karg args[] = {BSC_ARG(vv.mem), BSC_ARG(off), BSC_ARG(n), BSC_ARG(val)};
    size_t global = 6;
    assert_int_equal(bsc_launch(ctx, k, 4, args, 1, &global, NULL), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &base, back), BSC_OK);
    for (int i = 0; i < 100; i++) {
        float want = i >= 15 && i < 21 ? 9.0f : i >= 10 && i < 30 ? (float)(i - 9) : -1.0f;
        assert_true(back[i] == want);
    }

    /* A view that would run past its base comes back empty and unusable. */
    bsc_tensor bad = bsc_tensor_view(&base, 90, &vs);
    assert_null(bad.mem);
    assert_int_equal(bsc_tensor_write(ctx, &bad, part), BSC_ERR_INVALID);
    bsc_tensor_free(&v); /* a view: cleared, the buffer stays */
    assert_int_equal(bsc_tensor_read(ctx, &base, back), BSC_OK);
    bsc_tensor_free(&base);
}

static void test_copy(void **state)
{
    (void)state;
    int32_t src_host[50], dst_host[40];
    bsc_shape s50 = shape1(50), s40 = shape1(40), s7 = shape1(7);
    bsc_tensor src, dst, f;
    for (int i = 0; i < 50; i++)
        src_host[i] = i * 3;
    for (int i = 0; i < 40; i++)
        dst_host[i] = -5;
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_I32, &s50, &src), BSC_OK);
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_I32, &s40, &dst), BSC_OK);
    assert_int_equal(bsc_tensor_write(ctx, &src, src_host), BSC_OK);
    assert_int_equal(bsc_tensor_write(ctx, &dst, dst_host), BSC_OK);
    bsc_tensor vs = bsc_tensor_view(&src, 11, &s7), vd = bsc_tensor_view(&dst, 30, &s7);
    assert_int_equal(bsc_tensor_copy(ctx, &vs, &vd), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &dst, dst_host), BSC_OK);
    for (int i = 0; i < 40; i++)
        assert_int_equal(dst_host[i], i >= 30 && i < 37 ? (i - 30 + 11) * 3 : -5);

    assert_int_equal(bsc_tensor_copy(ctx, &src, &dst), BSC_ERR_INVALID); /* 50 into 40 */
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &s7, &f), BSC_OK);
    assert_int_equal(bsc_tensor_copy(ctx, &vs, &f), BSC_ERR_INVALID);    /* i32 into f32 */
    assert_int_equal(bsc_tensor_fill(ctx, &dst, 1.0f), BSC_ERR_INVALID); /* fill needs f32 */
    bsc_tensor_free(&f);
    bsc_tensor_free(&src);
    bsc_tensor_free(&dst);
}

static void test_fill(void **state)
{
    (void)state;
    float host[64];
    bsc_shape s = shape1(64), vs = shape1(13);
    bsc_tensor t;
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &s, &t), BSC_OK);
    assert_int_equal(bsc_tensor_fill(ctx, &t, 0.0f), BSC_OK);
    bsc_tensor v = bsc_tensor_view(&t, 3, &vs);
    assert_int_equal(bsc_tensor_fill(ctx, &v, 3.5f), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &t, host), BSC_OK);
    for (int i = 0; i < 64; i++)
        assert_true(host[i] == (i >= 3 && i < 16 ? 3.5f : 0.0f));
    bsc_tensor_free(&t);
}

/* bsc_sum: 1000 values from a view's offset, scaled, into a slot of a
 * view, against the sum in double; on the kernel and, where the GEMMs run
 * on the host BLAS, as a host task (host_task.h: bsc_host_elementwise).
 * Each path gives the same bits twice. */
static void test_sum(void **state)
{
    (void)state;
    enum { N = 1000, OFF = 3 };
    float h[N + OFF];
    double want = 0.0;
    uint64_t r = 12345;
    for (size_t i = 0; i < N + OFF; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        h[i] = (float)((double)(r >> 40) / (double)(1u << 24) - 0.5);
        if (i >= OFF)
            want += h[i];
    }
    want *= 0.25;
    bsc_tensor x, d;
    bsc_shape sx = shape1(N + OFF), sd = shape1(8);
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &sx, &x), BSC_OK);
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &sd, &d), BSC_OK);
    assert_int_equal(bsc_tensor_write(ctx, &x, h), BSC_OK);
    bsc_shape sv = shape1(N), sdv = shape1(6);
    bsc_tensor xv = bsc_tensor_view(&x, OFF, &sv), dv = bsc_tensor_view(&d, 2, &sdv);
    static const char *const paths[] = {"1", "0"};
    for (size_t k = 0; k < 2; k++) {
        setenv("BATCHSCOPE_HOST_ELEMENTWISE", paths[k], 1);
        float got[8];
        assert_int_equal(bsc_tensor_fill(ctx, &d, -7.0f), BSC_OK);
        assert_int_equal(bsc_sum(ctx, &xv, N, 0.25f, &dv, 3), BSC_OK);
        assert_int_equal(bsc_sum(ctx, &xv, N, 0.25f, &dv, 4), BSC_OK);
        assert_int_equal(bsc_tensor_read(ctx, &d, got), BSC_OK);
        for (size_t i = 0; i < 8; i++)
            if (i != 5 && i != 6)
                assert_true(got[i] == -7.0f);
        if (!(fabs(got[5] - want) <= 1e-5 * (1.0 + fabs(want))))
            fail_msg("path %s: sum %.9g, want %.9g", paths[k], got[5], want);
        assert_memory_equal(&got[5], &got[6], sizeof(float));
    }
    unsetenv("BATCHSCOPE_HOST_ELEMENTWISE");
    bsc_tensor_free(&x);
    bsc_tensor_free(&d);
}

static void test_empty(void **state)
{
    (void)state;
    int64_t d[] = {4, 0};
    bsc_shape s = bsc_shape_make(2, d);
    bsc_tensor t;
    float dummy = 0;
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &s, &t), BSC_OK);
    assert_null(t.mem);
    assert_int_equal(t.numel, 0);
    assert_int_equal(bsc_tensor_write(ctx, &t, &dummy), BSC_OK);
    assert_int_equal(bsc_tensor_fill(ctx, &t, 1.0f), BSC_OK);
    bsc_tensor_free(&t);
    d[1] = -3;
    s = bsc_shape_make(2, d);
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &s, &t), BSC_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_kernel_round_trip),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_sum),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
