/* batchscope: deterministic reductions on the device. */
#ifndef BATCHSCOPE_REDUCE_H
#define BATCHSCOPE_REDUCE_H

#include "batchscope/api.h"
#include <stddef.h>
#include "batchscope/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Enqueues dst[doff] = scale * sum(x[0..n)) in a fixed order (one work-group):
 * the deterministic reduction the engine and observers use. */
BSC_API bsc_status bsc_sum(bsc_context *ctx, const bsc_tensor *x, size_t n, float scale,
                   bsc_tensor *dst, size_t doff);

#ifdef __cplusplus
}
#endif
#endif
