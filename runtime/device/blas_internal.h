/* Between the GEMM front end (blas.c) and its host-BLAS backend
 * (blas_host.c). */
#ifndef BATCHSCOPE_BLAS_INTERNAL_H
#define BATCHSCOPE_BLAS_INTERNAL_H

#include "batchscope/blas.h"

#include <stdint.h>
#include <stdio.h>

/* `batch` row-major GEMMs (batch 1: a plain one) through the host BLAS as a
 * native kernel on ctx's queue; operands are checked against their buffers
 * first. With `bias` (batch 1, beta 0 only): C = alpha op(A) op(B) + bias
 * in every row, the bias written into C before the product. `what` names
 * the call in messages. The caller has checked that the backend is usable
 * (bsc_gemm_host_supported). */
bsc_status bsc_gemm_host(bsc_context *ctx, int trans_a, int trans_b, size_t m, size_t n,
                         size_t k, float alpha, const bsc_tensor *a, size_t lda,
                         size_t stride_a, const bsc_tensor *b, size_t ldb, size_t stride_b,
                         float beta, bsc_tensor *c, size_t ldc, size_t stride_c, size_t batch,
                         const bsc_tensor *bias, const char *what);

#endif
