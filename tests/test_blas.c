/* BLAS on PoCL against host references, once per GEMM backend (CLBlast,
 * and the host BLAS where the device runs native kernels): GEMM in every
 * transpose combination with offsets and padded leading dimensions, strided
 * batched GEMM, axpy, dot, nrm2, and error mapping; then the two backends
 * against each other on the products the layers issue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/blas.h"
#include "batchscope/host_task.h"
#include "testutil.h"

static bsc_context *ctx;
static bsc_gemm_backend backend;

static int setup_with(bsc_gemm_backend b)
{
    backend = b;
    return tu_context_open(&ctx) == BSC_OK && bsc_gemm_use(ctx, b) == BSC_OK ? 0 : -1;
}

static int setup_clblast(void **state)
{
    (void)state;
    return setup_with(BSC_GEMM_CLBLAST);
}

static int setup_host(void **state)
{
    (void)state;
    return setup_with(BSC_GEMM_HOST);
}

static int setup(void **state)
{
    (void)state;
    return setup_with(BSC_GEMM_AUTO);
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

/* bsc_gemm_bias: C = 1.5 op(A) op(B) + bias in every row, C inside a larger
 * buffer with a padded leading dimension (nothing else written), the bias
 * at an offset; sizes that the host backend splits by rows (m > n) and by
 * columns, and a small one it does not split. Without a bias it is the
 * plain product with beta 0. */
static void check_gemm_bias(int ta, int tb, size_t m, size_t n, size_t k, int with_bias)
{
    size_t pad = 3, arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k;
    size_t bcols = tb ? k : n, lda = acols, ldb = bcols, ldc = n + pad, ob = 2, oc = 5;
    size_t na = arows * lda, nb = brows * ldb, nc = oc + m * ldc + 4, nbias = ob + n;
    float *a = host_random(na), *b = host_random(nb), *c = host_random(nc);
    float *bias = host_random(nbias);
    float *want = malloc(nc * sizeof *want), *got = malloc(nc * sizeof *got);
    assert_non_null(want);
    assert_non_null(got);
    memcpy(want, c, nc * sizeof *c);
    ref_gemm(ta, tb, m, n, k, 1.5f, a, lda, b, ldb, 0.0f, want + oc, ldc);
    for (size_t r = 0; with_bias && r < m; r++)
        for (size_t j = 0; j < n; j++)
            want[oc + r * ldc + j] += bias[ob + j];
    bsc_tensor ta_ = upload(a, na), tb_ = upload(b, nb), tc = upload(c, nc);
    bsc_tensor tbias = upload(bias, nbias);
    int64_t dc = (int64_t)(m * ldc), dn = (int64_t)n;
    bsc_shape sc = bsc_shape_make(1, &dc), sn = bsc_shape_make(1, &dn);
    bsc_tensor vc = bsc_tensor_view(&tc, oc, &sc), vbias = bsc_tensor_view(&tbias, ob, &sn);
    assert_int_equal(bsc_gemm_bias(ctx, ta, tb, m, n, k, 1.5f, &ta_, lda, &tb_, ldb,
                                   with_bias ? &vbias : NULL, &vc, ldc),
                     BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &tc, got), BSC_OK);
    assert_close(got, want, nc, 1e-4f);
    bsc_tensor_free(&ta_);
    bsc_tensor_free(&tb_);
    bsc_tensor_free(&tc);
    bsc_tensor_free(&tbias);
    free(a), free(b), free(c), free(bias), free(want), free(got);
}

static void test_gemm_bias(void **state)
{
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm_bias(ta, tb, 5, 7, 3, 1);
            check_gemm_bias(ta, tb, 300, 64, 220, 1);
            check_gemm_bias(ta, tb, 64, 300, 220, 1);
        }
    check_gemm_bias(0, 1, 17, 9, 33, 0);
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

/* Operands in sub-buffers of one buffer (conv2d's workspace regions), with
 * view offsets inside them on top of their origins. */
static void test_gemm_sub_buffers(void **state)
{
    (void)state;
    const size_t m = 6, n = 5, k = 7;
    cl_uint align_bits = 0;
    assert_int_equal(clGetDeviceInfo(ctx->info.device, CL_DEVICE_MEM_BASE_ADDR_ALIGN,
                                     sizeof align_bits, &align_bits, NULL), CL_SUCCESS);
    size_t region = (align_bits / 8 + 255) / (align_bits / 8) * (align_bits / 8);
    size_t nf = 4 * region / sizeof(float);
    float *host = host_random(nf), *want = malloc(nf * sizeof *want),
          *got = malloc(nf * sizeof *got);
    assert_non_null(want);
    assert_non_null(got);
    /* A at float 2 of region 1, B at float 3 of region 0 (B is in the parent
     * directly), C at float 1 of region 2. */
    size_t ra = region / sizeof(float), rc = 2 * region / sizeof(float);
    memcpy(want, host, nf * sizeof *want);
    ref_gemm(0, 1, m, n, k, 1.0f, host + ra + 2, k, host + 3, k, 0.5f, want + rc + 1, n);
    bsc_tensor whole = upload(host, nf);
    cl_int err;
    cl_buffer_region r1 = {region, region}, r2 = {2 * region, region};
    cl_mem s1 = clCreateSubBuffer(whole.mem, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                                  &r1, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_mem s2 = clCreateSubBuffer(whole.mem, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                                  &r2, &err);
    assert_int_equal(err, CL_SUCCESS);
    int64_t d = (int64_t)(region / sizeof(float) - 3);
    bsc_shape sh = bsc_shape_make(1, &d);
    bsc_tensor va = {s1, 2, (size_t)d, sh, BSC_F32, 0}, vc = {s2, 1, (size_t)d, sh, BSC_F32, 0};
    bsc_tensor vb = bsc_tensor_view(&whole, 3, &sh);
    assert_int_equal(bsc_gemm(ctx, 0, 1, m, n, k, 1.0f, &va, k, &vb, k, 0.5f, &vc, n), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &whole, got), BSC_OK);
    assert_close(got, want, nf, 1e-5f);
    clReleaseMemObject(s1);
    clReleaseMemObject(s2);
    bsc_tensor_free(&whole);
    free(host);
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
    int host = bsc_gemm_active(ctx) == BSC_GEMM_HOST;
    assert_int_equal(bsc_gemm(ctx, 0, 0, 0, 2, 2, 1.0f, &t, 2, &t, 2, 0.0f, &t, 2),
                     host ? BSC_ERR_INVALID : BSC_ERR_CLBLAST);
    assert_non_null(strstr(bsc_last_error(), host ? "zero dimension" : "CLBlastInvalidDimension"));
    assert_non_null(strstr(bsc_last_error(), "m=0"));
    /* A C that does not fit its buffer. */
    assert_int_equal(bsc_gemm(ctx, 0, 0, 4, 4, 4, 1.0f, &t, 4, &t, 4, 0.0f, &t, 8),
                     host ? BSC_ERR_INVALID : BSC_ERR_CLBLAST);
    assert_non_null(strstr(bsc_last_error(),
                           host ? "C needs 28 floats" : "CLBlastInsufficientMemoryC"));
    /* A leading dimension shorter than a row. */
    assert_int_equal(bsc_gemm(ctx, 0, 0, 2, 2, 4, 1.0f, &t, 2, &t, 2, 0.0f, &t, 2),
                     host ? BSC_ERR_INVALID : BSC_ERR_CLBLAST);
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

/* ------------------------------------------- the two backends side by side */

typedef struct gemm_case {
    const char *what;
    int ta, tb;
    size_t m, n, k, batch;
} gemm_case;

/* The products the layers and analyses issue (dense.c, conv2d.c,
 * sharpness.c), at the study models' sizes where that stays quick: dense
 * forward in W^T, dW = dout^T in, din = dout W; conv forward, dW and
 * dcol; sharpness' matrix-vector products; strided batched in every
 * transpose. */
static const gemm_case layer_cases[] = {
    {"dense forward", 0, 1, 32, 512, 784, 1},
    {"dense dW", 1, 0, 512, 784, 32, 1},
    {"dense din", 0, 0, 32, 784, 512, 1},
    {"dense forward, 10 units", 0, 1, 256, 10, 512, 1},
    {"conv forward", 0, 0, 64, 196, 800, 1},
    {"conv dW", 1, 0, 64, 800, 196, 1},
    {"conv dcol", 1, 0, 800, 196, 64, 1},
    {"sharpness A y", 0, 0, 300, 1, 100, 1},
    {"sharpness A^T g", 1, 0, 100, 1, 300, 1},
    {"batched NN", 0, 0, 7, 9, 11, 3},
    {"batched NT", 0, 1, 7, 9, 11, 3},
    {"batched TN", 1, 0, 7, 9, 11, 3},
    {"batched TT", 1, 1, 7, 9, 11, 3},
};

/* One case on one backend: operands at offsets 3/5/7 inside their buffers,
 * with the caller's leading dimensions and batch strides; the whole C
 * buffer comes back so that writes outside C's matrices show. */
static float *run_case(bsc_context *c, const gemm_case *g, const float *a, const float *b,
                       const float *c0, size_t na, size_t nb, size_t nc, size_t lda, size_t ldb, size_t ldc, size_t sa, size_t sb,
                       size_t sc)
{
    bsc_context *saved = ctx;
    ctx = c;
    bsc_tensor A = upload(a, na), B = upload(b, nb), C = upload(c0, nc);
    int64_t da = (int64_t)(na - 3), db = (int64_t)(nb - 5), dc = (int64_t)(nc - 7);
    bsc_shape sha = bsc_shape_make(1, &da), shb = bsc_shape_make(1, &db),
              shc = bsc_shape_make(1, &dc);
    bsc_tensor va = bsc_tensor_view(&A, 3, &sha), vb = bsc_tensor_view(&B, 5, &shb),
               vc = bsc_tensor_view(&C, 7, &shc);
    bsc_status st = g->batch == 1
        ? bsc_gemm(c, g->ta, g->tb, g->m, g->n, g->k, 0.75f, &va, lda, &vb, ldb, 0.25f, &vc, ldc)
        : bsc_gemm_strided_batched(c, g->ta, g->tb, g->m, g->n, g->k, 0.75f, &va, lda, sa, &vb,
                                   ldb, sb, 0.25f, &vc, ldc, sc, g->batch);
    if (st != BSC_OK)
        fail_msg("%s on %s: %s", g->what, bsc_gemm_backend_name(bsc_gemm_active(c)),
                 bsc_last_error());
    float *out = malloc(nc * sizeof *out);
    assert_non_null(out);
    assert_int_equal(bsc_tensor_read(c, &C, out), BSC_OK);
    bsc_tensor_free(&A);
    bsc_tensor_free(&B);
    bsc_tensor_free(&C);
    ctx = saved;
    return out;
}

static void test_backends_agree(void **state)
{
    (void)state;
    bsc_context *clb = NULL, *host = NULL;
    assert_int_equal(tu_context_open(&clb), BSC_OK);
    assert_int_equal(tu_context_open(&host), BSC_OK);
    if (!bsc_gemm_host_supported(host, NULL, 0)) {
        bsc_context_free(clb);
        bsc_context_free(host);
        skip();
    }
    assert_int_equal(bsc_gemm_use(clb, BSC_GEMM_CLBLAST), BSC_OK);
    assert_int_equal(bsc_gemm_use(host, BSC_GEMM_HOST), BSC_OK);
    for (size_t i = 0; i < sizeof layer_cases / sizeof *layer_cases; i++)
        for (size_t pad = 0; pad < 2; pad++) {
            const gemm_case *g = &layer_cases[i];
            size_t gap = g->batch > 1 ? 2 : 0;
            size_t arows = g->ta ? g->k : g->m, acols = g->ta ? g->m : g->k;
            size_t brows = g->tb ? g->n : g->k, bcols = g->tb ? g->k : g->n;
            size_t lda = acols + pad, ldb = bcols + pad, ldc = g->n + pad;
            size_t sa = arows * lda + gap, sb = brows * ldb + gap, sc = g->m * ldc + gap;
            size_t na = 3 + sa * g->batch, nb = 5 + sb * g->batch, nc = 7 + sc * g->batch + 4;
            float *a = host_random(na), *b = host_random(nb), *c0 = host_random(nc);
            float *x = run_case(clb, g, a, b, c0, na, nb, nc, lda, ldb, ldc, sa, sb, sc);
            float *y = run_case(host, g, a, b, c0, na, nb, nc, lda, ldb, ldc, sa, sb,
                                sc);
            /* Relative to the size of the sum each element is: alpha
             * sum |a||b| + beta |c0|, the scale of its rounding error. */
            for (size_t bi = 0; bi < g->batch; bi++)
                for (size_t r = 0; r < g->m; r++)
                    for (size_t col = 0; col < g->n; col++) {
                        size_t at = 7 + bi * sc + r * ldc + col;
                        double scale = 0.25 * fabs(c0[at]);
                        for (size_t p = 0; p < g->k; p++) {
                            float av = g->ta ? a[3 + bi * sa + p * lda + r]
                                             : a[3 + bi * sa + r * lda + p];
                            float bv = g->tb ? b[5 + bi * sb + col * ldb + p]
                                             : b[5 + bi * sb + p * ldb + col];
                            scale += 0.75 * fabs((double)av * bv);
                        }
                        if (fabs((double)x[at] - y[at]) > 1e-5 * scale)
                            fail_msg("%s (pad %zu), batch %zu [%zu,%zu]: clblast %.9g, host "
                                     "%.9g", g->what, pad, bi, r, col, (double)x[at],
                                     (double)y[at]);
                        x[at] = y[at] = 0;   /* checked: the rest must be untouched */
                    }
            for (size_t e = 0; e < nc; e++)
                if (x[e] != y[e] || (x[e] != 0 && x[e] != c0[e]))
                    fail_msg("%s (pad %zu): element %zu outside C changed", g->what, pad, e);
            free(a);
            free(b);
            free(c0);
            free(x);
            free(y);
        }
    bsc_context_free(clb);
    bsc_context_free(host);
}

/* A host task sees each tensor at its own storage and offset, whatever the
 * order of the buffers, shared buffers and sub-buffers included: every
 * pointer gets its tensor's index written at element 0 and 1 + the first
 * element of the task's arguments added to element 1. */
static void mark(void *args, float *const *data)
{
    const float *add = args;
    for (int i = 0; i < 5; i++) {
        data[i][0] = (float)i;
        data[i][1] += add[0];
    }
}

static void test_host_task_tensors(void **state)
{
    (void)state;
    if (!bsc_host_tasks_supported(ctx, NULL, 0))
        skip();
    cl_uint align_bits = 0;
    assert_int_equal(clGetDeviceInfo(ctx->info.device, CL_DEVICE_MEM_BASE_ADDR_ALIGN,
                                     sizeof align_bits, &align_bits, NULL), CL_SUCCESS);
    size_t region = align_bits / 8 / sizeof(float);
    region = region < 16 ? 16 : region;
    float h1[64], h2[4 * 16 + 4 * 1024];
    size_t n2 = region * 4 < 4096 ? region * 4 : 4096;
    for (size_t i = 0; i < 64; i++)
        h1[i] = 100.0f + (float)i;
    for (size_t i = 0; i < n2; i++)
        h2[i] = 1000.0f + (float)i;
    /* Two buffers, created in the order opposite to their first use. */
    bsc_tensor b2 = upload(h2, n2), b1 = upload(h1, 64);
    cl_int err;
    cl_buffer_region r = {2 * region * sizeof(float), region * sizeof(float)};
    cl_mem sub = clCreateSubBuffer(b2.mem, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r,
                                   &err);
    assert_int_equal(err, CL_SUCCESS);
    int64_t four = 4;
    bsc_shape s4 = bsc_shape_make(1, &four);
    bsc_tensor t[5] = {bsc_tensor_view(&b1, 10, &s4), bsc_tensor_view(&b2, 5, &s4),
                       bsc_tensor_view(&b1, 30, &s4),
                       {sub, 3, 4, s4, BSC_F32, 0}, bsc_tensor_view(&b2, 9, &s4)};
    const bsc_tensor *tp[5] = {&t[0], &t[1], &t[2], &t[3], &t[4]};
    float add = 0.5f;
    assert_int_equal(bsc_enqueue_host(ctx, mark, &add, sizeof add, 5, tp), BSC_OK);
    float g1[64], g2[4 * 16 + 4 * 1024];
    assert_int_equal(bsc_tensor_read(ctx, &b1, g1), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &b2, g2), BSC_OK);
    size_t at2[3] = {5, 2 * region + 3, 9};
    assert_true(g1[10] == 0.0f && g1[11] == h1[11] + 0.5f);
    assert_true(g1[30] == 2.0f && g1[31] == h1[31] + 0.5f);
    assert_true(g2[at2[0]] == 1.0f && g2[at2[0] + 1] == h2[at2[0] + 1] + 0.5f);
    assert_true(g2[at2[1]] == 3.0f && g2[at2[1] + 1] == h2[at2[1] + 1] + 0.5f);
    assert_true(g2[at2[2]] == 4.0f && g2[at2[2] + 1] == h2[at2[2] + 1] + 0.5f);
    /* Nothing else moved. */
    int changed = 0;
    for (size_t i = 0; i < 64; i++)
        changed += g1[i] != h1[i];
    for (size_t i = 0; i < n2; i++)
        changed += g2[i] != h2[i];
    assert_int_equal(changed, 10);
    /* A tensor past its buffer is refused before anything runs. */
    bsc_tensor past = bsc_tensor_view(&b1, 62, &s4);
    const bsc_tensor *pp[1] = {&past};
    assert_int_equal(bsc_enqueue_host(ctx, mark, &add, sizeof add, 1, pp), BSC_ERR_INVALID);
    clReleaseMemObject(sub);
    bsc_tensor_free(&b1);
    bsc_tensor_free(&b2);
}

static void test_backend_choice(void **state)
{
    (void)state;
    bsc_gemm_backend b;
    assert_int_equal(bsc_gemm_backend_parse("host", &b), BSC_OK);
    assert_int_equal(b, BSC_GEMM_HOST);
    assert_int_equal(bsc_gemm_backend_parse("cuBLAS", &b), BSC_ERR_USAGE);
    assert_non_null(strstr(bsc_last_error(), "auto, clblast or host"));
    assert_string_equal(bsc_gemm_backend_name(BSC_GEMM_CLBLAST), "clblast");
    char why[256];
    int host = bsc_gemm_host_supported(ctx, why, sizeof why);
    assert_int_equal(bsc_gemm_use(ctx, BSC_GEMM_AUTO), BSC_OK);
    assert_int_equal(bsc_gemm_active(ctx), host ? BSC_GEMM_HOST : BSC_GEMM_CLBLAST);
    assert_int_equal(bsc_gemm_use(ctx, BSC_GEMM_HOST), host ? BSC_OK : BSC_ERR_UNSUPPORTED);
    if (!host)
        assert_non_null(strstr(bsc_last_error(), why));
    assert_int_equal(bsc_gemm_use(ctx, BSC_GEMM_CLBLAST), BSC_OK);
    assert_int_equal(bsc_gemm_active(ctx), BSC_GEMM_CLBLAST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_transposes),
        cmocka_unit_test(test_gemm_tiled_path),
        cmocka_unit_test(test_gemm_bias),
        cmocka_unit_test(test_gemm_strided_batched),
        cmocka_unit_test(test_gemm_sub_buffers),
        cmocka_unit_test(test_vector_ops),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tune_is_repeatable),
    };
    const struct CMUnitTest both[] = {
        cmocka_unit_test(test_backends_agree),
        cmocka_unit_test(test_backend_choice),
        cmocka_unit_test(test_host_task_tensors),
    };
    int failed = cmocka_run_group_tests_name("clblast", tests, setup_clblast, teardown);
    /* The host group needs a device with native kernels and a CBLAS build. */
    bsc_context *probe = NULL;
    int host = tu_context_open(&probe) == BSC_OK &&
               bsc_gemm_host_supported(probe, NULL, 0);
    bsc_context_free(probe);
    if (host)
        failed += cmocka_run_group_tests_name("host", tests, setup_host, teardown);
    failed += cmocka_run_group_tests_name("both", both, setup, teardown);
    return failed;
}
