/* batchscope: a thin wrapper over CLBlast (row-major, single precision).
 * Everything is enqueued on the context's queue; nothing blocks. CLBlast's
 * status codes map to BSC_ERR_CLBLAST with CLBlast's name for the code. */
#ifndef BATCHSCOPE_BLAS_H
#define BATCHSCOPE_BLAS_H

#include "batchscope/api.h"
#include "batchscope/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* C[m,n] = alpha * op(A) op(B) + beta * C, row-major, leading dimensions in
 * elements; tensor offsets are honoured. */
BSC_API bsc_status bsc_gemm(bsc_context *ctx, int trans_a, int trans_b,
                    size_t m, size_t n, size_t k, float alpha,
                    const bsc_tensor *a, size_t lda,
                    const bsc_tensor *b, size_t ldb, float beta,
                    bsc_tensor *c, size_t ldc);

/* `batch` GEMMs; matrix i of A starts at a->offset + i*stride_a, etc. */
BSC_API bsc_status bsc_gemm_strided_batched(bsc_context *ctx, int trans_a, int trans_b,
                                    size_t m, size_t n, size_t k, float alpha,
                                    const bsc_tensor *a, size_t lda, size_t stride_a,
                                    const bsc_tensor *b, size_t ldb, size_t stride_b,
                                    float beta, bsc_tensor *c, size_t ldc, size_t stride_c,
                                    size_t batch);

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
