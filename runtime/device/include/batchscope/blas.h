/* batchscope: BLAS on the device (row-major, single precision).
 *
 * Everything is enqueued on the context's queue; nothing blocks. GEMMs go
 * through a backend chosen per context (bsc_gemm_use): CLBlast, on any
 * device, or the host's BLAS (OpenBLAS through CBLAS) run as an OpenCL
 * native kernel on CPU devices that support them (PoCL), which reaches the
 * host BLAS's speed inside the same in-order queue. axpy, dot and nrm2 are
 * CLBlast's. CLBlast's status codes map to BSC_ERR_CLBLAST with CLBlast's
 * name for the code. */
#ifndef BATCHSCOPE_BLAS_H
#define BATCHSCOPE_BLAS_H

#include "batchscope/api.h"
#include "batchscope/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bsc_gemm_backend {
    BSC_GEMM_AUTO = 0,      /* host where bsc_gemm_host_supported, else CLBlast */
    BSC_GEMM_CLBLAST = 1,
    BSC_GEMM_HOST = 2
} bsc_gemm_backend;

/* "auto", "clblast" or "host". */
BSC_API const char *bsc_gemm_backend_name(bsc_gemm_backend b);
/* The inverse of bsc_gemm_backend_name; anything else is BSC_ERR_USAGE
 * naming the choices. */
BSC_API bsc_status bsc_gemm_backend_parse(const char *name, bsc_gemm_backend *out);

/* Nonzero when ctx's device can run the host backend: a CPU device with
 * CL_EXEC_NATIVE_KERNEL in a build with a CBLAS. Otherwise 0 and, when why
 * is not NULL, the reason in why. */
BSC_API int bsc_gemm_host_supported(const bsc_context *ctx, char *why, size_t len);

/* Chooses ctx's GEMM backend; AUTO resolves at once. HOST on a device that
 * cannot run it is BSC_ERR_UNSUPPORTED saying why. A context opens with
 * $BATCHSCOPE_GEMM's choice, else AUTO. Call between steps, not inside one. */
BSC_API bsc_status bsc_gemm_use(bsc_context *ctx, bsc_gemm_backend want);
/* The backend bsc_gemm uses on ctx: CLBLAST or HOST, never AUTO. */
BSC_API bsc_gemm_backend bsc_gemm_active(const bsc_context *ctx);

/* C[m,n] = alpha * op(A) op(B) + beta * C, row-major, leading dimensions in
 * elements; tensor offsets are honoured. */
BSC_API bsc_status bsc_gemm(bsc_context *ctx, int trans_a, int trans_b,
                    size_t m, size_t n, size_t k, float alpha,
                    const bsc_tensor *a, size_t lda,
                    const bsc_tensor *b, size_t ldb, float beta,
                    bsc_tensor *c, size_t ldc);

/* C[m,n] = alpha * op(A) op(B) + bias, bias [n] added to every row (NULL:
 * none, bsc_gemm with beta 0). The host backend writes the bias into C and
 * adds the product to it in the same task; CLBlast's is followed by a
 * kernel that adds the bias. The two round differently (bias first or
 * last). */
BSC_API bsc_status bsc_gemm_bias(bsc_context *ctx, int trans_a, int trans_b, size_t m,
                                 size_t n, size_t k, float alpha, const bsc_tensor *a,
                                 size_t lda, const bsc_tensor *b, size_t ldb,
                                 const bsc_tensor *bias, bsc_tensor *c, size_t ldc);

/* `batch` GEMMs; matrix i of A starts at a->offset + i*stride_a, etc. */
BSC_API bsc_status bsc_gemm_strided_batched(bsc_context *ctx, int trans_a, int trans_b,
                                    size_t m, size_t n, size_t k, float alpha,
                                    const bsc_tensor *a, size_t lda, size_t stride_a,
                                    const bsc_tensor *b, size_t ldb, size_t stride_b,
                                    float beta, bsc_tensor *c, size_t ldc, size_t stride_c,
                                    size_t batch);

/* Inside a host task (host_task.h) on a context whose backend is
 * BSC_GEMM_HOST: C = alpha op(A) op(B) + beta C on host pointers, row-major,
 * on the calling thread (the host BLAS, single-threaded; spread work with
 * bsc_host_parallel). A no-op in a build without a CBLAS, where no context
 * gets that backend. */
BSC_API void bsc_host_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                            float alpha, const float *a, size_t lda, const float *b,
                            size_t ldb, float beta, float *c, size_t ldc);

/* y += alpha * x over n elements. */
BSC_API bsc_status bsc_axpy(bsc_context *ctx, size_t n, float alpha, const bsc_tensor *x,
                    bsc_tensor *y);
/* out[0] = x . y (out is a device tensor; element at out->offset). */
BSC_API bsc_status bsc_dot(bsc_context *ctx, size_t n, const bsc_tensor *x, const bsc_tensor *y,
                   bsc_tensor *out);
/* out[0] = ||x||_2 */
BSC_API bsc_status bsc_nrm2(bsc_context *ctx, size_t n, const bsc_tensor *x, bsc_tensor *out);

/* CLBlast's name for a status code ("CLBlastInvalidDimension"). */
BSC_API const char *bsc_clblast_error_name(int code);

/* Applies CLBlast parameter overrides for this device when a tuned set is
 * known (see ../shared/notes/clblast-pocl-tuning.md); a no-op otherwise. */
BSC_API bsc_status bsc_blas_tune(bsc_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
