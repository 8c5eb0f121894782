/* The host-BLAS GEMM backend: OpenBLAS's cblas_sgemm run as an OpenCL native
 * kernel on the context's in-order queue.
 *
 * On a CPU device the OpenCL buffers are host memory, and PoCL (like any
 * implementation with CL_EXEC_NATIVE_KERNEL) runs a host function in queue
 * order with each cl_mem argument replaced by a pointer to its storage. So
 * the GEMM runs at the host BLAS's speed (2-7x CLBlast's on PoCL's CPU
 * device, shared/notes/cpu-performance.md) while a training step stays
 * enqueue-only: no clFinish, read-back, map or allocation per call. The
 * argument block is copied by clEnqueueNativeKernel, so nothing here
 * outlives the call. */
#include "blas_internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef BSC_HAVE_CBLAS
#include <cblas.h>
#endif

int bsc_gemm_host_supported(const bsc_context *ctx, char *why, size_t len)
{
    char dummy[8];
    if (!why) {
        why = dummy;
        len = sizeof dummy;
    }
#ifndef BSC_HAVE_CBLAS
    (void)ctx;
    snprintf(why, len, "this batchscope was built without a CBLAS (install libopenblas-dev "
             "and rebuild)");
    return 0;
#else
    cl_device_exec_capabilities caps = 0;
    cl_int err = clGetDeviceInfo(ctx->info.device, CL_DEVICE_EXECUTION_CAPABILITIES,
                                 sizeof caps, &caps, NULL);
    if (err != CL_SUCCESS) {
        snprintf(why, len, "querying CL_DEVICE_EXECUTION_CAPABILITIES of %s failed: %s",
                 ctx->info.name, bsc_cl_error_name(err));
        return 0;
    }
    if (!(ctx->info.type & CL_DEVICE_TYPE_CPU)) {
        snprintf(why, len, "%s is not a CPU device: its buffers are not host memory",
                 ctx->info.name);
        return 0;
    }
    if (!(caps & CL_EXEC_NATIVE_KERNEL)) {
        snprintf(why, len, "%s (%s) cannot run native kernels (no CL_EXEC_NATIVE_KERNEL)",
                 ctx->info.name, ctx->info.platform_name);
        return 0;
    }
    why[0] = '\0';
    return 1;
#endif
}

#ifdef BSC_HAVE_CBLAS

/* How the operands reach the native kernel. PoCL 3.1 sorts a command's
 * buffers by its internal object id and then pairs the i-th sorted buffer
 * with the i-th argument location (pocl_basic_run_native), so with more
 * than one buffer the pointers land in an order the caller cannot know.
 * Every native command here therefore takes exactly one buffer: A's and B's
 * storage is first written into the context's two operand slots by a small
 * native command each, and the GEMM command, which takes C, reads them. The
 * queue is in order, so the slots hold this GEMM's pointers when it runs and
 * the next GEMM's probes run only after it. A buffer shared with C (or A's
 * with B) is probed once. */
typedef struct host_probe {
    float *storage;    /* set by the runtime */
    void **slot;
} host_probe;

static void CL_CALLBACK host_probe_run(void *p)
{
    const host_probe *h = p;
    *h->slot = h->storage;
}

/* source[i] of A, B: 0/1 = operand slot 0/1, 2 = C's buffer. */
typedef struct host_gemm {
    float *c_storage;  /* set by the runtime */
    void *const *slots;
    unsigned char source[2];
    size_t a_off, b_off, c_off;
    size_t m, n, k, lda, ldb, ldc;
    size_t stride_a, stride_b, stride_c, batch;
    float alpha, beta;
    int trans_a, trans_b;
} host_gemm;

/* Part `part` of `parts` of a GEMM: a block of C's columns (or rows, when
 * C is taller than wide), whole multiples of 16 but the last. */
static void gemm_part(void *p, int part, int parts)
{
    const host_gemm *g = p;
    float *c = g->c_storage;
    const float *a = g->source[0] == 2 ? c : g->slots[g->source[0]];
    const float *b = g->source[1] == 2 ? c : g->slots[g->source[1]];
    int by_cols = g->n >= g->m;
    size_t len = by_cols ? g->n : g->m;
    size_t step = (len + (size_t)parts - 1) / (size_t)parts;
    step = (step + 15) / 16 * 16;
    size_t lo = (size_t)part * step, hi = lo + step < len ? lo + step : len;
    if (lo >= hi)
        return;
    size_t m = g->m, n = g->n, ao = g->a_off, bo = g->b_off, co = g->c_off;
    if (by_cols) {
        n = hi - lo;
        bo += g->trans_b ? lo * g->ldb : lo;
        co += lo;
    } else {
        m = hi - lo;
        ao += g->trans_a ? lo : lo * g->lda;
        co += lo * g->ldc;
    }
    enum CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = g->trans_b ? CblasTrans : CblasNoTrans;
    for (size_t i = 0; i < g->batch; i++)
        cblas_sgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)g->k, g->alpha,
                    a + ao + i * g->stride_a, (blasint)g->lda, b + bo + i * g->stride_b,
                    (blasint)g->ldb, g->beta, c + co + i * g->stride_c, (blasint)g->ldc);
}

/* Below this many multiply-adds per part, waking a helper costs more than
 * the part saves. */
#define MIN_PART_MACS (1u << 20)

static void CL_CALLBACK host_gemm_run(void *p)
{
    const host_gemm *g = p;
    size_t macs = g->m * g->n * g->k * g->batch, len = g->n >= g->m ? g->n : g->m;
    size_t parts = (size_t)bsc_blas_pool_threads();
    if (parts > macs / MIN_PART_MACS)
        parts = macs / MIN_PART_MACS;
    if (parts > len / 16)
        parts = len / 16;
    bsc_blas_pool_run(parts > 1 ? (int)parts : 1, gemm_part, (void *)p);
}

/* Elements a row-major rows x cols matrix with leading dimension ld spans,
 * over `batch` matrices `stride` apart; 0 for an empty one. */
static size_t span(size_t rows, size_t cols, size_t ld, size_t stride, size_t batch)
{
    if (!rows || !cols || !batch)
        return 0;
    return (batch - 1) * stride + (rows - 1) * ld + cols;
}

/* An operand as the native kernel sees it: a buffer that is not a
 * sub-buffer and an offset in floats from its start. PoCL hands a native
 * kernel the storage of a sub-buffer's parent (pocl 3.1 replaces it in
 * clEnqueueNativeKernel), so a sub-buffer (conv2d's workspace regions)
 * becomes its parent plus its origin here, where it means the same on any
 * implementation. */
typedef struct operand {
    cl_mem mem;
    size_t offset;
} operand;

/* CLBlast checks leading dimensions and buffer sizes; cblas_sgemm checks
 * the former only by printing, and a native kernel that reads past a
 * buffer corrupts the process: check both before enqueueing. */
static bsc_status resolve(const char *what, char name, const bsc_tensor *t, size_t rows,
                          size_t cols, size_t ld, size_t stride, size_t batch, operand *out)
{
    if (ld < (cols ? cols : 1))
        return bsc_fail(BSC_ERR_INVALID, "%s: ld%c=%zu is smaller than the %zu columns of %c",
                        what, name + ('a' - 'A'), ld, cols, name);
    size_t bytes = 0, origin = 0;
    cl_mem parent = NULL;
    cl_int err = clGetMemObjectInfo(t->mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (err == CL_SUCCESS)
        err = clGetMemObjectInfo(t->mem, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent,
                                 NULL);
    if (err == CL_SUCCESS && parent)
        err = clGetMemObjectInfo(t->mem, CL_MEM_OFFSET, sizeof origin, &origin, NULL);
    if (err != CL_SUCCESS)
        return bsc_cl_fail(err, "clGetMemObjectInfo (host GEMM operand)");
    size_t need = t->offset + span(rows, cols, ld, stride, batch);
    if (need > bytes / sizeof(float))
        return bsc_fail(BSC_ERR_INVALID, "%s: %c needs %zu floats from its buffer's start "
                        "(offset %zu), the buffer holds %zu", what, name, need, t->offset,
                        bytes / sizeof(float));
    if (origin % sizeof(float))
        return bsc_fail(BSC_ERR_INVALID, "%s: %c is a sub-buffer at byte %zu, not a whole "
                        "float", what, name, origin);
    out->mem = parent ? parent : t->mem;
    out->offset = t->offset + origin / sizeof(float);
    return BSC_OK;
}

bsc_status bsc_gemm_host(bsc_context *ctx, int trans_a, int trans_b, size_t m, size_t n,
                         size_t k, float alpha, const bsc_tensor *a, size_t lda,
                         size_t stride_a, const bsc_tensor *b, size_t ldb, size_t stride_b,
                         float beta, bsc_tensor *c, size_t ldc, size_t stride_c, size_t batch,
                         const char *what)
{
    bsc_status st;
    if (!m || !n || !k || !batch)   /* as CLBlast does, so that both backends agree */
        return bsc_fail(BSC_ERR_INVALID, "%s: zero dimension", what);
    if (m > (size_t)INT32_MAX || n > (size_t)INT32_MAX || k > (size_t)INT32_MAX ||
        lda > (size_t)INT32_MAX || ldb > (size_t)INT32_MAX || ldc > (size_t)INT32_MAX)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "%s: a dimension exceeds the host BLAS's "
                        "32-bit index", what);
    operand A, B, C;
    if ((st = resolve(what, 'A', a, trans_a ? k : m, trans_a ? m : k, lda, stride_a, batch,
                      &A)) != BSC_OK ||
        (st = resolve(what, 'B', b, trans_b ? n : k, trans_b ? k : n, ldb, stride_b, batch,
                      &B)) != BSC_OK ||
        (st = resolve(what, 'C', c, m, n, ldc, stride_c, batch, &C)) != BSC_OK)
        return st;
    host_gemm g = {NULL, ctx->gemm_slots, {2, 2}, A.offset, B.offset, C.offset, m, n, k,
                   lda, ldb, ldc, stride_a, stride_b, stride_c, batch, alpha, beta, trans_a,
                   trans_b};
    const cl_mem ab[2] = {A.mem, B.mem};
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < 2 && err == CL_SUCCESS; i++) {
        if (ab[i] == C.mem)
            continue;
        if (i == 1 && ab[1] == ab[0]) {
            g.source[1] = g.source[0];
            continue;
        }
        host_probe h = {NULL, &ctx->gemm_slots[i]};
        const void *loc = &h.storage;
        g.source[i] = (unsigned char)i;
        err = clEnqueueNativeKernel(ctx->queue, host_probe_run, &h, sizeof h, 1, &ab[i], &loc,
                                    0, NULL, NULL);
    }
    const void *loc = &g.c_storage;
    if (err == CL_SUCCESS)
        err = clEnqueueNativeKernel(ctx->queue, host_gemm_run, &g, sizeof g, 1, &C.mem, &loc,
                                    0, NULL, NULL);
    if (err != CL_SUCCESS) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s: clEnqueueNativeKernel (host BLAS)", what);
        return bsc_cl_fail(err, msg);
    }
    return BSC_OK;
}

#else

bsc_status bsc_gemm_host(bsc_context *ctx, int trans_a, int trans_b, size_t m, size_t n,
                         size_t k, float alpha, const bsc_tensor *a, size_t lda,
                         size_t stride_a, const bsc_tensor *b, size_t ldb, size_t stride_b,
                         float beta, bsc_tensor *c, size_t ldc, size_t stride_c, size_t batch,
                         const char *what)
{
    (void)ctx, (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a,
        (void)lda, (void)stride_a, (void)b, (void)ldb, (void)stride_b, (void)beta, (void)c,
        (void)ldc, (void)stride_c, (void)batch;
    return bsc_fail(BSC_ERR_UNSUPPORTED, "%s: built without a host BLAS", what);
}

#endif
