/* BLAS through CLBlast on PoCL against host references: GEMM in every
 * transpose combination with offsets and padded leading dimensions, strided
 * batched GEMM, axpy, dot, nrm2, and error mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/blas.h"
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

static uint32_t rng_state = 12345u;

static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

static float *host_random(size_t n)
{
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static bsc_tensor upload(const float *host, size_t n)
{
    int64_t d = (int64_t)n;
    bsc_shape s = bsc_shape_make(1, &d);
    bsc_tensor t;
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &s, &t), BSC_OK);
    assert_int_equal(bsc_tensor_write(ctx, &t, host), BSC_OK);
    return t;
}

/* Row-major reference; A is m x k (k x m stored when transposed), etc. */
static void ref_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                     const float *a, size_t lda, const float *b, size_t ldb, float beta,
                     float *c, size_t ldc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0;
            for (size_t p = 0; p < k; p++) {
                float av = ta ? a[p * lda + i] : a[i * lda + p];
                float bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                acc += (double)av * bv;
            }
            c[i * ldc + j] = (float)(alpha * acc + beta * c[i * ldc + j]);
        }
}

static void assert_close(const float *got, const float *want, size_t n, float tol)
{
    for (size_t i = 0; i < n; i++) {
        float err = fabsf(got[i] - want[i]);
        if (err > tol * (1.0f + fabsf(want[i])))
            fail_msg("element %zu: got %g, want %g", i, (double)got[i], (double)want[i]);
    }
}

/* One GEMM with A, B, C placed at offsets inside larger buffers and padded
 * leading dimensions; everything outside C's matrix must stay untouched. */
static void check_gemm(int ta, int tb, size_t m, size_t n, size_t k, size_t pad)
{
    size_t arows = ta ? k : m, acols = ta ? m : k;
    size_t brows = tb ? n : k, bcols = tb ? k : n;
    size_t lda = acols + pad, ldb = bcols + pad, ldc = n + pad;
    size_t oa = 3, ob = 5, oc = 7;
    size_t na = oa + arows * lda, nb = ob + brows * ldb, nc = oc + m * ldc + 4;
    float *a = host_random(na), *b = host_random(nb), *c = host_random(nc);
    float *want = malloc(nc * sizeof *want), *got = malloc(nc * sizeof *got);
    assert_non_null(want);
    assert_non_null(got);
    memcpy(want, c, nc * sizeof *c);
    ref_gemm(ta, tb, m, n, k, 1.5f, a + oa, lda, b + ob, ldb, 0.5f, want + oc, ldc);

    bsc_tensor ta_ = upload(a, na), tb_ = upload(b, nb), tc = upload(c, nc);
    int64_t da = (int64_t)(arows * lda), db = (int64_t)(brows * ldb), dc = (int64_t)(m * ldc);
    bsc_shape sa = bsc_shape_make(1, &da), sb = bsc_shape_make(1, &db), sc = bsc_shape_make(1, &dc);
    bsc_tensor va = bsc_tensor_view(&ta_, oa, &sa), vb = bsc_tensor_view(&tb_, ob, &sb),
               vc = bsc_tensor_view(&tc, oc, &sc);
    assert_int_equal(bsc_gemm(ctx, ta, tb, m, n, k, 1.5f, &va, lda, &vb, ldb, 0.5f, &vc, ldc),
                     BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &tc, got), BSC_OK);
    assert_close(got, want, nc, 1e-4f);

    bsc_tensor_free(&ta_);
    bsc_tensor_free(&tb_);
    bsc_tensor_free(&tc);
    free(a);
    free(b);
    free(c);
    free(want);
    free(got);
}

static void test_gemm_transposes(void **state)
{
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(ta, tb, 5, 7, 3, 2);
            check_gemm(ta, tb, 17, 9, 33, 1);
        }
}

/* Large enough (m*n*k >= 256^3) for CLBlast's tiled Xgemm kernel, where the
 * PoCL-tuned parameters apply, with sizes that are not tile multiples. */
static void test_gemm_tiled_path(void **state)
{
    (void)state;
    check_gemm(0, 0, 300, 260, 220, 0);
    check_gemm(1, 0, 300, 260, 220, 3);
}

static void test_gemm_strided_batched(void **state)
{
    (void)state;
    const size_t m = 4, n = 5, k = 6, batch = 3;
    const size_t lda = k, ldb = n + 1, ldc = n;
    const size_t sa = m * k + 2, sb = k * ldb + 1, sc = m * n + 3;
    const size_t oa = 1, ob = 2, oc = 4;
    size_t na = oa + sa * batch, nb = ob + sb * batch, nc = oc + sc * batch;
    float *a = host_random(na), *b = host_random(nb), *c = host_random(nc);
    float *want = malloc(nc * sizeof *want), *got = malloc(nc * sizeof *got);
    assert_non_null(want);
    assert_non_null(got);
    memcpy(want, c, nc * sizeof *c);
    for (size_t i = 0; i < batch; i++)
        ref_gemm(0, 0, m, n, k, 1.0f, a + oa + i * sa, lda, b + ob + i * sb, ldb, -1.0f,
                 want + oc + i * sc, ldc);

    bsc_tensor ta = upload(a, na), tb = upload(b, nb), tc = upload(c, nc);
    int64_t d;
    d = (int64_t)(na - oa);
    bsc_shape s1 = bsc_shape_make(1, &d);
    bsc_tensor va = bsc_tensor_view(&ta, oa, &s1);
    d = (int64_t)(nb - ob);
    bsc_shape s2 = bsc_shape_make(1, &d);
    bsc_tensor vb = bsc_tensor_view(&tb, ob, &s2);
    d = (int64_t)(nc - oc);
    bsc_shape s3 = bsc_shape_make(1, &d);
    bsc_tensor vc = bsc_tensor_view(&tc, oc, &s3);
    assert_int_equal(bsc_gemm_strided_batched(ctx, 0, 0, m, n, k, 1.0f, &va, lda, sa, &vb, ldb,
                                              sb, -1.0f, &vc, ldc, sc, batch),
                     BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &tc, got), BSC_OK);
    assert_close(got, want, nc, 1e-4f);

    bsc_tensor_free(&ta);
    bsc_tensor_free(&tb);
    bsc_tensor_free(&tc);
    free(a);
    free(b);
    free(c);
    free(want);
    free(got);
}

static void test_vector_ops(void **state)
{
    (void)state;
    enum { N = 301 };
    float x[N + 2], y[N + 5], res[4] = {-9, -9, -9, -9}, got[N + 5];
    double dot = 0, nrm = 0;
    for (int i = 0; i < N + 2; i++)
        x[i] = frand();
    for (int i = 0; i < N + 5; i++)
        y[i] = frand();
    for (int i = 0; i < N; i++) {
        dot += (double)x[i + 2] * y[i + 5];
        nrm += (double)x[i + 2] * x[i + 2];
    }
    bsc_tensor tx = upload(x, N + 2), ty = upload(y, N + 5), tr = upload(res, 4);
    int64_t dn = N, d1 = 1;
    bsc_shape sn = bsc_shape_make(1, &dn), s1 = bsc_shape_make(1, &d1);
    bsc_tensor vx = bsc_tensor_view(&tx, 2, &sn), vy = bsc_tensor_view(&ty, 5, &sn);
    bsc_tensor r1 = bsc_tensor_view(&tr, 1, &s1), r2 = bsc_tensor_view(&tr, 2, &s1);

    assert_int_equal(bsc_dot(ctx, N, &vx, &vy, &r1), BSC_OK);
    assert_int_equal(bsc_nrm2(ctx, N, &vx, &r2), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &tr, res), BSC_OK);
    assert_true(res[0] == -9.0f && res[3] == -9.0f);
    assert_true(fabs(res[1] - dot) < 1e-4 * (1 + fabs(dot)));
    assert_true(fabs(res[2] - sqrt(nrm)) < 1e-4 * sqrt(nrm));

    assert_int_equal(bsc_axpy(ctx, N, 0.75f, &vx, &vy), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &ty, got), BSC_OK);
    for (int i = 0; i < N + 5; i++) {
        float want = i < 5 ? y[i] : y[i] + 0.75f * x[i - 5 + 2];
        assert_true(fabsf(got[i] - want) <= 1e-6f * (1 + fabsf(want)));
    }
    bsc_tensor_free(&tx);
    bsc_tensor_free(&ty);
    bsc_tensor_free(&tr);
}

static void test_errors(void **state)
{
    (void)state;
    float h[16] = {0};
    bsc_tensor t = upload(h, 16);
    assert_int_equal(bsc_gemm(ctx, 0, 0, 0, 2, 2, 1.0f, &t, 2, &t, 2, 0.0f, &t, 2),
                     BSC_ERR_CLBLAST);
    assert_non_null(strstr(bsc_last_error(), "CLBlastInvalidDimension"));
    assert_non_null(strstr(bsc_last_error(), "m=0"));
    /* A C that does not fit its buffer. */
    assert_int_equal(bsc_gemm(ctx, 0, 0, 4, 4, 4, 1.0f, &t, 4, &t, 4, 0.0f, &t, 8),
                     BSC_ERR_CLBLAST);
    assert_non_null(strstr(bsc_last_error(), "CLBlastInsufficientMemoryC"));
    bsc_tensor empty = {0};
    assert_int_equal(bsc_axpy(ctx, 4, 1.0f, &empty, &t), BSC_ERR_INVALID);
    assert_string_equal(bsc_clblast_error_name(-1017), "CLBlastInvalidDimension");
    assert_string_equal(bsc_clblast_error_name(0), "CLBlastSuccess");
    assert_string_equal(bsc_clblast_error_name(-2041), "CLBlastDatabaseError");
    assert_string_equal(bsc_clblast_error_name(77), "CLBlastUnknownStatus");
    bsc_tensor_free(&t);
}

static void test_tune_is_repeatable(void **state)
{
    (void)state;
    assert_int_equal(bsc_blas_tune(ctx), BSC_OK);
    setenv("BATCHSCOPE_CLBLAST_TUNE", "0", 1);
    assert_int_equal(bsc_blas_tune(ctx), BSC_OK);
    unsetenv("BATCHSCOPE_CLBLAST_TUNE");
    check_gemm(0, 1, 6, 4, 5, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_transposes),
        cmocka_unit_test(test_gemm_tiled_path),
        cmocka_unit_test(test_gemm_strided_batched),
        cmocka_unit_test(test_vector_ops),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tune_is_repeatable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
