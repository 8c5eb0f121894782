/* The host-BLAS GEMM backend: OpenBLAS's cblas_sgemm run as a host task
 * (host_task.h) on the context's in-order queue.
 *
 * On a CPU device the OpenCL buffers are host memory, and PoCL (like any
 * implementation with CL_EXEC_NATIVE_KERNEL) runs a host function in queue
 * order with its buffers' storage handed over. So the GEMM runs at the host
 * BLAS's speed (2-7x CLBlast's on PoCL's CPU device,
 * shared/notes/cpu-performance.md) while a training step stays enqueue-only:
 * no clFinish, read-back, map or allocation per call. */
#include "blas_internal.h"
#include "batchscope/host_task.h"

#include <stdlib.h>
#include <string.h>

#ifdef BSC_HAVE_CBLAS
#include <cblas.h>
#endif

int bsc_gemm_host_supported(const bsc_context *ctx, char *why, size_t len)
{
#ifndef BSC_HAVE_CBLAS
    (void)ctx;
    if (why)
        snprintf(why, len, "this batchscope was built without a CBLAS (install "
                 "libopenblas-dev and rebuild)");
    return 0;
#else
    return bsc_host_tasks_supported(ctx, why, len);
#endif
}

#ifdef BSC_HAVE_CBLAS

/* What the task gets besides its three tensors (A, B, C). */
typedef struct host_gemm {
    size_t m, n, k, lda, ldb, ldc;
    size_t stride_a, stride_b, stride_c, batch;
    float alpha, beta;
    int trans_a, trans_b, has_bias;
} host_gemm;

typedef struct gemm_job {
    const host_gemm *g;
    const float *a, *b, *bias;
    float *c;
} gemm_job;

/* Part `part` of `parts` of a GEMM: a block of C's columns (or rows, when
 * C is taller than wide), whole multiples of 16 but the last. */
static void gemm_part(void *p, int part, int parts)
{
    const gemm_job *job = p;
    const host_gemm *g = job->g;
    int by_cols = g->n >= g->m;
    size_t len = by_cols ? g->n : g->m;
    size_t step = (len + (size_t)parts - 1) / (size_t)parts;
    step = (step + 15) / 16 * 16;
    size_t lo = (size_t)part * step, hi = lo + step < len ? lo + step : len;
    if (lo >= hi)
        return;
    size_t m = g->m, n = g->n, ao = 0, bo = 0, co = 0;
    if (by_cols) {
        n = hi - lo;
        bo = g->trans_b ? lo * g->ldb : lo;
        co = lo;
    } else {
        m = hi - lo;
        ao = g->trans_a ? lo : lo * g->lda;
        co = lo * g->ldc;
    }
    enum CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = g->trans_b ? CblasTrans : CblasNoTrans;
    float beta = g->beta;
    if (job->bias) {
        /* The part's block of C starts as the bias (its columns of it), and
         * the product is added to it: one pass over C instead of a kernel's
         * second one. */
        const float *bias = job->bias + (by_cols ? lo : 0);
        for (size_t r = 0; r < m; r++)
            memcpy(job->c + co + r * g->ldc, bias, n * sizeof *bias);
        beta = 1.0f;
    }
    for (size_t i = 0; i < g->batch; i++)
        cblas_sgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)g->k, g->alpha,
                    job->a + ao + i * g->stride_a, (blasint)g->lda,
                    job->b + bo + i * g->stride_b, (blasint)g->ldb, beta,
                    job->c + co + i * g->stride_c, (blasint)g->ldc);
}

void bsc_host_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                    const float *a, size_t lda, const float *b, size_t ldb, float beta,
                    float *c, size_t ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha,
                a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

/* Below this many multiply-adds per part, waking a helper costs more than
 * the part saves. */
#define MIN_PART_MACS (1u << 20)
/* Most parts of one GEMM. The split depends on the shape alone, never on
 * the thread count: OpenBLAS picks its kernel and blocking by the shape it
 * is given (a small-matrix kernel below some size, say), so a C element of
 * a part of another width may be summed in another order, and a run with
 * BATCHSCOPE_BLAS_THREADS=1 must give the bits a run with 2 gives. A power
 * of two, so that 1, 2 or 4 threads get even shares; each part costs a
 * repacking of the operand it shares, 0-5% for 4 parts of the model's
 * shapes on one thread (measured against one call, OpenBLAS 0.3.21, Zen 4),
 * 3-20% for 8. */
#define MAX_PARTS 4

/* How many parts a GEMM of this shape is split into: a power of two up to
 * MAX_PARTS, each of at least MIN_PART_MACS multiply-adds and 16 columns
 * (or rows). */
static int gemm_parts(const host_gemm *g)
{
    size_t macs = g->m * g->n * g->k * g->batch, len = g->n >= g->m ? g->n : g->m;
    int parts = 1;
    while (parts < MAX_PARTS && macs / (size_t)(2 * parts) >= MIN_PART_MACS &&
           len / (size_t)(2 * parts) >= 16)
        parts *= 2;
    return parts;
}

static void gemm_task(void *args, float *const *data)
{
    const host_gemm *g = args;
    gemm_job job = {g, data[0], data[1], g->has_bias ? data[3] : NULL, data[2]};
    bsc_host_parallel(gemm_parts(g), gemm_part, &job);
}

/* Elements a row-major rows x cols matrix with leading dimension ld spans,
 * over `batch` matrices `stride` apart. */
static size_t span(size_t rows, size_t cols, size_t ld, size_t stride, size_t batch)
{
    return (batch - 1) * stride + (rows - 1) * ld + cols;
}

/* CLBlast checks leading dimensions and buffer sizes; cblas_sgemm checks
 * the former only by printing, and a task that reads past a buffer
 * corrupts the process: the view handed to the task spans exactly what the
 * GEMM touches, and bsc_enqueue_host checks it lies in its buffer. */
static bsc_status operand(const char *what, char name, const bsc_tensor *t, size_t rows,
                          size_t cols, size_t ld, size_t stride, size_t batch, bsc_tensor *out)
{
    if (ld < cols)
        return bsc_fail(BSC_ERR_INVALID, "%s: ld%c=%zu is smaller than the %zu columns of %c",
                        what, name + ('a' - 'A'), ld, cols, name);
    size_t bytes = 0;
    cl_int err = clGetMemObjectInfo(t->mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (err != CL_SUCCESS)
        return bsc_cl_fail(err, "clGetMemObjectInfo(CL_MEM_SIZE)");
    size_t need = t->offset + span(rows, cols, ld, stride, batch);
    if (need > bytes / sizeof(float))
        return bsc_fail(BSC_ERR_INVALID, "%s: %c needs %zu floats from its buffer's start "
                        "(offset %zu), the buffer holds %zu", what, name, need, t->offset,
                        bytes / sizeof(float));
    *out = *t;
    out->numel = span(rows, cols, ld, stride, batch);
    return BSC_OK;
}

bsc_status bsc_gemm_host(bsc_context *ctx, int trans_a, int trans_b, size_t m, size_t n,
                         size_t k, float alpha, const bsc_tensor *a, size_t lda,
                         size_t stride_a, const bsc_tensor *b, size_t ldb, size_t stride_b,
                         float beta, bsc_tensor *c, size_t ldc, size_t stride_c, size_t batch,
                         const bsc_tensor *bias, const char *what)
{
    bsc_status st;
    if (bias && (batch != 1 || beta != 0.0f))
        return bsc_fail(BSC_ERR_INTERNAL, "%s: a bias with batch %zu, beta %g", what, batch,
                        (double)beta);
    if (!m || !n || !k || !batch)   /* as CLBlast does, so that both backends agree */
        return bsc_fail(BSC_ERR_INVALID, "%s: zero dimension", what);
    if (m > (size_t)INT32_MAX || n > (size_t)INT32_MAX || k > (size_t)INT32_MAX ||
        lda > (size_t)INT32_MAX || ldb > (size_t)INT32_MAX || ldc > (size_t)INT32_MAX)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "%s: a dimension exceeds the host BLAS's "
                        "32-bit index", what);
    bsc_tensor t[4];
    if ((st = operand(what, 'A', a, trans_a ? k : m, trans_a ? m : k, lda, stride_a, batch,
                      &t[0])) != BSC_OK ||
        (st = operand(what, 'B', b, trans_b ? n : k, trans_b ? k : n, ldb, stride_b, batch,
                      &t[1])) != BSC_OK ||
        (st = operand(what, 'C', c, m, n, ldc, stride_c, batch, &t[2])) != BSC_OK ||
        (bias && (st = operand(what, 'V', bias, 1, n, n, 0, 1, &t[3])) != BSC_OK))
        return st;
    host_gemm g = {m, n, k, lda, ldb, ldc, stride_a, stride_b, stride_c, batch, alpha, beta,
                   trans_a, trans_b, bias != NULL};
    const bsc_tensor *tp[4] = {&t[0], &t[1], &t[2], &t[3]};
    if ((st = bsc_enqueue_host(ctx, gemm_task, &g, sizeof g, bias ? 4 : 3, tp)) != BSC_OK)
        return bsc_fail_context(st, "%s", what);
    return BSC_OK;
}

#else

void bsc_host_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                    const float *a, size_t lda, const float *b, size_t ldb, float beta,
                    float *c, size_t ldc)
{
    (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda,
        (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
}

bsc_status bsc_gemm_host(bsc_context *ctx, int trans_a, int trans_b, size_t m, size_t n,
                         size_t k, float alpha, const bsc_tensor *a, size_t lda,
                         size_t stride_a, const bsc_tensor *b, size_t ldb, size_t stride_b,
                         float beta, bsc_tensor *c, size_t ldc, size_t stride_c, size_t batch,
                         const bsc_tensor *bias, const char *what)
{
    (void)bias;
    (void)ctx, (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a,
        (void)lda, (void)stride_a, (void)b, (void)ldb, (void)stride_b, (void)beta, (void)c,
        (void)ldc, (void)stride_c, (void)batch;
    return bsc_fail(BSC_ERR_UNSUPPORTED, "%s: built without a host BLAS", what);
}

#endif
