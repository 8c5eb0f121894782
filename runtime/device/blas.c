/* BLAS over CLBlast's C API: row-major single precision, enqueued on the
 * context's queue without events, tensor offsets passed through; GEMMs go to
 * the context's backend (CLBlast here, the host BLAS in blas_host.c). */
#include "batchscope/blas.h"
#include "blas_internal.h"

#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BSC_CLBLAST_TABLE(X)                       \
    X(CLBlastSuccess)                              \
    X(CLBlastOpenCLCompilerNotAvailable)           \
    X(CLBlastTempBufferAllocFailure)               \
    X(CLBlastOpenCLOutOfResources)                 \
    X(CLBlastOpenCLOutOfHostMemory)                \
    X(CLBlastOpenCLBuildProgramFailure)            \
    X(CLBlastInvalidValue)                         \
    X(CLBlastInvalidCommandQueue)                  \
    X(CLBlastInvalidMemObject)                     \
    X(CLBlastInvalidBinary)                        \
    X(CLBlastInvalidBuildOptions)                  \
    X(CLBlastInvalidProgram)                       \
    X(CLBlastInvalidProgramExecutable)             \
    X(CLBlastInvalidKernelName)                    \
    X(CLBlastInvalidKernelDefinition)              \
    X(CLBlastInvalidKernel)                        \
    X(CLBlastInvalidArgIndex)                      \
    X(CLBlastInvalidArgValue)                      \
    X(CLBlastInvalidArgSize)                       \
    X(CLBlastInvalidKernelArgs)                    \
    X(CLBlastInvalidLocalNumDimensions)            \
    X(CLBlastInvalidLocalThreadsTotal)             \
    X(CLBlastInvalidLocalThreadsDim)               \
    X(CLBlastInvalidGlobalOffset)                  \
    X(CLBlastInvalidEventWaitList)                 \
    X(CLBlastInvalidEvent)                         \
    X(CLBlastInvalidOperation)                     \
    X(CLBlastInvalidBufferSize)                    \
    X(CLBlastInvalidGlobalWorkSize)                \
    X(CLBlastNotImplemented)                       \
    X(CLBlastInvalidMatrixA)                       \
    X(CLBlastInvalidMatrixB)                       \
    X(CLBlastInvalidMatrixC)                       \
    X(CLBlastInvalidVectorX)                       \
    X(CLBlastInvalidVectorY)                       \
    X(CLBlastInvalidDimension)                     \
    X(CLBlastInvalidLeadDimA)                      \
    X(CLBlastInvalidLeadDimB)                      \
    X(CLBlastInvalidLeadDimC)                      \
    X(CLBlastInvalidIncrementX)                    \
    X(CLBlastInvalidIncrementY)                    \
    X(CLBlastInsufficientMemoryA)                  \
    X(CLBlastInsufficientMemoryB)                  \
    X(CLBlastInsufficientMemoryC)                  \
    X(CLBlastInsufficientMemoryX)                  \
    X(CLBlastInsufficientMemoryY)                  \
    X(CLBlastInsufficientMemoryTemp)               \
    X(CLBlastInvalidBatchCount)                    \
    X(CLBlastInvalidOverrideKernel)                \
    X(CLBlastMissingOverrideParameter)             \
    X(CLBlastInvalidLocalMemUsage)                 \
    X(CLBlastNoHalfPrecision)                      \
    X(CLBlastNoDoublePrecision)                    \
    X(CLBlastInvalidVectorScalar)                  \
    X(CLBlastInsufficientMemoryScalar)             \
    X(CLBlastDatabaseError)                        \
    X(CLBlastUnknownError)                         \
    X(CLBlastUnexpectedError)

const char *bsc_clblast_error_name(int code)
{
    switch (code) {
#define CLBLAST_CASE(name) case name: return #name;
        BSC_CLBLAST_TABLE(CLBLAST_CASE)
#undef CLBLAST_CASE
    default: return "CLBlastUnknownStatus";
    }
}

static bsc_status clblast_fail(CLBlastStatusCode code, const char *what)
{
    return bsc_fail(BSC_ERR_CLBLAST, "%s: %s (%d)", what, bsc_clblast_error_name(code),
                    (int)code);
}

/* CLBlast would report a NULL buffer as an invalid matrix; saying which
 * argument was empty is more useful. */
static bsc_status need_buffer(const bsc_tensor *t, const char *op, const char *arg)
{
    if (!t || !t->mem)
        return bsc_fail(BSC_ERR_INVALID, "%s: %s is an empty tensor", op, arg);
    if (t->dtype != BSC_F32)
        return bsc_fail(BSC_ERR_INVALID, "%s: %s is not a float32 tensor", op, arg);
    return BSC_OK;
}

/* The GEMMs are issued to CLBlast in column-major order with A and B swapped
 * (row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, the same
 * products over the same memory). CLBlast's tiled Xgemm keeps C column-major,
 * so a row-major call makes it transpose C into a temporary and back out on
 * every call -- on the CNN that was as much time as the GEMM kernel itself --
 * while the swapped call needs no copy of C at all and the same copies of A
 * and B as before. CLBlast then names our B where it means A: swap the codes
 * back so that messages name the caller's argument. */
static CLBlastStatusCode swap_ab_code(CLBlastStatusCode s)
{
    switch (s) {
    case CLBlastInvalidMatrixA: return CLBlastInvalidMatrixB;
    case CLBlastInvalidMatrixB: return CLBlastInvalidMatrixA;
    case CLBlastInvalidLeadDimA: return CLBlastInvalidLeadDimB;
    case CLBlastInvalidLeadDimB: return CLBlastInvalidLeadDimA;
    case CLBlastInsufficientMemoryA: return CLBlastInsufficientMemoryB;
    case CLBlastInsufficientMemoryB: return CLBlastInsufficientMemoryA;
    default: return s;
    }
}

/* ---------------------------------------------------------------- backends */

static const char *backend_names[] = {"auto", "clblast", "host"};

const char *bsc_gemm_backend_name(bsc_gemm_backend b)
{
    return (unsigned)b < 3 ? backend_names[b] : "unknown";
}

bsc_status bsc_gemm_backend_parse(const char *name, bsc_gemm_backend *out)
{
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, backend_names[i])) {
            *out = (bsc_gemm_backend)i;
            return BSC_OK;
        }
    return bsc_fail(BSC_ERR_USAGE, "gemm backend '%s': expected auto, clblast or host",
                    name ? name : "");
}

bsc_status bsc_gemm_use(bsc_context *ctx, bsc_gemm_backend want)
{
    char why[300];
    int host = bsc_gemm_host_supported(ctx, why, sizeof why);
    switch (want) {
    case BSC_GEMM_AUTO:
        ctx->gemm = host ? BSC_GEMM_HOST : BSC_GEMM_CLBLAST;
        return BSC_OK;
    case BSC_GEMM_CLBLAST:
        ctx->gemm = BSC_GEMM_CLBLAST;
        return BSC_OK;
    case BSC_GEMM_HOST:
        if (!host)
            return bsc_fail(BSC_ERR_UNSUPPORTED, "gemm: host: %s; use gemm: clblast or auto",
                            why);
        ctx->gemm = BSC_GEMM_HOST;
        return BSC_OK;
    }
    return bsc_fail(BSC_ERR_INVALID, "gemm backend %d is not one of auto, clblast, host",
                    (int)want);
}

bsc_gemm_backend bsc_gemm_active(const bsc_context *ctx)
{
    return ctx->gemm == BSC_GEMM_HOST ? BSC_GEMM_HOST : BSC_GEMM_CLBLAST;
}

/* bsc_gemm, and bsc_gemm_bias's product with its bias on the host
 * backend. */
static bsc_status gemm_with(bsc_context *ctx, int trans_a, int trans_b, size_t m, size_t n,
                            size_t k, float alpha, const bsc_tensor *a, size_t lda,
                            const bsc_tensor *b, size_t ldb, float beta, bsc_tensor *c,
                            size_t ldc, const bsc_tensor *bias)
{
    bsc_status st;
    if ((st = need_buffer(a, "gemm", "A")) != BSC_OK
        || (st = need_buffer(b, "gemm", "B")) != BSC_OK
        || (st = need_buffer(c, "gemm", "C")) != BSC_OK)
        return st;
    if (ctx->gemm == BSC_GEMM_HOST) {
        char what[200];
        snprintf(what, sizeof what, "gemm(%s%s, m=%zu n=%zu k=%zu, lda=%zu ldb=%zu ldc=%zu)",
                 trans_a ? "T" : "N", trans_b ? "T" : "N", m, n, k, lda, ldb, ldc);
        return bsc_gemm_host(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta,
                             c, ldc, 0, 1, bias, what);
    }
    /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: see
     * swap_ab_code for why CLBlast is called that way. */
    CLBlastStatusCode s = CLBlastSgemm(
        CLBlastLayoutColMajor, trans_b ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_a ? CLBlastTransposeYes : CLBlastTransposeNo, n, m, k, alpha,
        b->mem, b->offset, ldb, a->mem, a->offset, lda, beta, c->mem, c->offset, ldc,
        &ctx->queue, NULL);
    s = swap_ab_code(s);
    if (s != CLBlastSuccess) {
        char what[200];
        snprintf(what, sizeof what, "gemm(%s%s, m=%zu n=%zu k=%zu, lda=%zu ldb=%zu ldc=%zu)",
                 trans_a ? "T" : "N", trans_b ? "T" : "N", m, n, k, lda, ldb, ldc);
        return clblast_fail(s, what);
    }
    return BSC_OK;
}

bsc_status bsc_gemm(bsc_context *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                    float alpha, const bsc_tensor *a, size_t lda, const bsc_tensor *b,
                    size_t ldb, float beta, bsc_tensor *c, size_t ldc)
{
    return gemm_with(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
}

bsc_status bsc_gemm_bias(bsc_context *ctx, int trans_a, int trans_b, size_t m, size_t n,
                         size_t k, float alpha, const bsc_tensor *a, size_t lda,
                         const bsc_tensor *b, size_t ldb, const bsc_tensor *bias, bsc_tensor *c,
                         size_t ldc)
{
    bsc_status st;
    if (bias && (st = need_buffer(bias, "gemm", "bias")) != BSC_OK)
        return st;
    if (!bias || ctx->gemm == BSC_GEMM_HOST)
        return gemm_with(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc,
                         bias);
    if ((st = gemm_with(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc,
                        NULL)) != BSC_OK)
        return st;
    cl_kernel kern;
    if ((st = bsc_kernel(ctx, "util.cl", "add_row_f32", &kern)) != BSC_OK)
        return st;
    cl_ulong rows = m, nn = n, ld = ldc, co = c->offset, bo = bias->offset;
    bsc_karg args[] = {BSC_ARG(rows), BSC_ARG(nn), BSC_ARG(c->mem), BSC_ARG(co), BSC_ARG(ld),
                       BSC_ARG(bias->mem), BSC_ARG(bo)};
    size_t range[2] = {n, m};
    return bsc_launch(ctx, kern, 7, args, 2, range, NULL);
}

bsc_status bsc_gemm_strided_batched(bsc_context *ctx, int trans_a, int trans_b,
                                    size_t m, size_t n, size_t k, float alpha,
                                    const bsc_tensor *a, size_t lda, size_t stride_a,
                                    const bsc_tensor *b, size_t ldb, size_t stride_b,
                                    float beta, bsc_tensor *c, size_t ldc, size_t stride_c,
                                    size_t batch)
{
    bsc_status st;
    if ((st = need_buffer(a, "gemm_strided_batched", "A")) != BSC_OK
        || (st = need_buffer(b, "gemm_strided_batched", "B")) != BSC_OK
        || (st = need_buffer(c, "gemm_strided_batched", "C")) != BSC_OK)
        return st;
    if (ctx->gemm == BSC_GEMM_HOST) {
        char what[240];
        snprintf(what, sizeof what,
                 "gemm_strided_batched(%s%s, m=%zu n=%zu k=%zu, batch=%zu, strides %zu/%zu/%zu)",
                 trans_a ? "T" : "N", trans_b ? "T" : "N", m, n, k, batch, stride_a, stride_b,
                 stride_c);
        return bsc_gemm_host(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb,
                             stride_b, beta, c, ldc, stride_c, batch, NULL, what);
    }
    CLBlastStatusCode s = CLBlastSgemmStridedBatched(
        CLBlastLayoutColMajor, trans_b ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_a ? CLBlastTransposeYes : CLBlastTransposeNo, n, m, k, alpha,
        b->mem, b->offset, ldb, stride_b, a->mem, a->offset, lda, stride_a, beta,
        c->mem, c->offset, ldc, stride_c, batch, &ctx->queue, NULL);
    s = swap_ab_code(s);
    if (s != CLBlastSuccess) {
        char what[240];
        snprintf(what, sizeof what,
                 "gemm_strided_batched(%s%s, m=%zu n=%zu k=%zu, batch=%zu, strides %zu/%zu/%zu)",
                 trans_a ? "T" : "N", trans_b ? "T" : "N", m, n, k, batch, stride_a, stride_b,
                 stride_c);
        return clblast_fail(s, what);
    }
    return BSC_OK;
}

bsc_status bsc_axpy(bsc_context *ctx, size_t n, float alpha, const bsc_tensor *x,
                    bsc_tensor *y)
{
    bsc_status st;
    if ((st = need_buffer(x, "axpy", "x")) != BSC_OK
        || (st = need_buffer(y, "axpy", "y")) != BSC_OK)
        return st;
    CLBlastStatusCode s = CLBlastSaxpy(n, alpha, x->mem, x->offset, 1, y->mem, y->offset, 1,
                                       &ctx->queue, NULL);
    if (s != CLBlastSuccess) {
        char what[64];
        snprintf(what, sizeof what, "axpy(n=%zu)", n);
        return clblast_fail(s, what);
    }
    return BSC_OK;
}

bsc_status bsc_dot(bsc_context *ctx, size_t n, const bsc_tensor *x, const bsc_tensor *y,
                   bsc_tensor *out)
{
    bsc_status st;
    if ((st = need_buffer(x, "dot", "x")) != BSC_OK
        || (st = need_buffer(y, "dot", "y")) != BSC_OK
        || (st = need_buffer(out, "dot", "out")) != BSC_OK)
        return st;
    CLBlastStatusCode s = CLBlastSdot(n, out->mem, out->offset, x->mem, x->offset, 1,
                                      y->mem, y->offset, 1, &ctx->queue, NULL);
    if (s != CLBlastSuccess) {
        char what[64];
        snprintf(what, sizeof what, "dot(n=%zu)", n);
        return clblast_fail(s, what);
    }
    return BSC_OK;
}

bsc_status bsc_nrm2(bsc_context *ctx, size_t n, const bsc_tensor *x, bsc_tensor *out)
{
    bsc_status st;
    if ((st = need_buffer(x, "nrm2", "x")) != BSC_OK
        || (st = need_buffer(out, "nrm2", "out")) != BSC_OK)
        return st;
    CLBlastStatusCode s = CLBlastSnrm2(n, out->mem, out->offset, x->mem, x->offset, 1,
                                       &ctx->queue, NULL);
    if (s != CLBlastSuccess) {
        char what[64];
        snprintf(what, sizeof what, "nrm2(n=%zu)", n);
        return clblast_fail(s, what);
    }
    return BSC_OK;
}

/* ------------------------------------------------------------------ tuning */

/* Xgemm parameters from clblast_tuner_xgemm on PoCL (2-core AVX-512 CPU,
 * 1024^3; see shared/notes/clblast-pocl-tuning.md). CLBlast's database has no
 * entry for PoCL's device names, so without these it runs generic defaults. */
static const char *pocl_xgemm_names[] = {
    "GEMMK", "MWG", "NWG", "KWG", "MDIMC", "NDIMC", "MDIMA", "NDIMB",
    "KWI", "VWM", "VWN", "STRM", "STRN", "SA", "SB", "KREG"};
static const size_t pocl_xgemm_values[] = {
    0, 128, 64, 32, 8, 8, 8, 8,
    2, 8, 8, 1, 0, 1, 0, 1};

/* CLBlast picks the tiled (indirect) Xgemm kernel only when m*n*k reaches
 * XGEMM_MIN_INDIRECT_SIZE^3. Its default sent MLP-sized products such as
 * 256x512x784 to the direct kernel at ~30 GFLOP/s, where the tuned Xgemm does
 * 60-80 on PoCL; at 256 (16.7M multiply-adds) batch-32 layer products, which
 * the tiles would mostly pad, stay direct. Re-measured after the column-major
 * switch below with BATCHSCOPE_XGEMM_MIN_INDIRECT (bench_train, MLP): 128 or
 * 64 cost batch 32 about 40%, 420 cost batch 256 about 35%. */
static const char *pocl_routine_names[] = {"XGEMM_MIN_INDIRECT_SIZE"};
static const size_t pocl_routine_values[] = {256};

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

static int is_pocl(const bsc_device_info *di)
{
    return contains_ci(di->platform_name, "Portable Computing Language")
           || contains_ci(di->platform_name, "pocl") || contains_ci(di->device_version, "PoCL");
}

/* The overrides live in CLBlast's process-wide table, keyed by device, so
 * applying them again for a second context is harmless. */
bsc_status bsc_blas_tune(bsc_context *ctx)
{
    const char *env = getenv("BATCHSCOPE_CLBLAST_TUNE");
    if (env && strcmp(env, "0") == 0)
        return BSC_OK;
    if (!is_pocl(&ctx->info))
        return BSC_OK;
    CLBlastStatusCode s = CLBlastOverrideParameters(
        ctx->info.device, "Xgemm", CLBlastPrecisionSingle,
        sizeof pocl_xgemm_names / sizeof pocl_xgemm_names[0], pocl_xgemm_names,
        pocl_xgemm_values);
    if (s != CLBlastSuccess)
        return clblast_fail(s, "CLBlastOverrideParameters(Xgemm, single, PoCL tuned set)");
    size_t routine[1] = {pocl_routine_values[0]};
    const char *mis = getenv("BATCHSCOPE_XGEMM_MIN_INDIRECT");
    if (mis && atol(mis) > 0)   /* for measuring the switch point (bench_gemm, bench_train) */
        routine[0] = (size_t)atol(mis);
    s = CLBlastOverrideParameters(ctx->info.device, "GemmRoutine", CLBlastPrecisionSingle, 1,
                                  pocl_routine_names, routine);
    if (s != CLBlastSuccess)
        return clblast_fail(s, "CLBlastOverrideParameters(GemmRoutine, single, "
                            "XGEMM_MIN_INDIRECT_SIZE)");
    return BSC_OK;
}

const char *bsc_clblast_version(void)
{
#define BSC_STR2_(x) #x
#define BSC_STR_(x) BSC_STR2_(x)
    return BSC_STR_(CLBLAST_VERSION_MAJOR) "." BSC_STR_(CLBLAST_VERSION_MINOR) "."
           BSC_STR_(CLBLAST_VERSION_PATCH);
#undef BSC_STR_
#undef BSC_STR2_
}
