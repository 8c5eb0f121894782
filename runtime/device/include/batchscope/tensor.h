/* batchscope: tensors on the device.
 *
 * A tensor is a shape over a range of a cl_mem: it either owns its buffer
 * (bsc_tensor_alloc) or views a range of a larger one (bsc_tensor_view), the
 * way each layer sees its parameters inside the one flat parameter buffer.
 * Offsets are in elements and are passed to kernels and CLBlast explicitly
 * (sub-buffers would need base-address alignment that views do not have).
 */
#ifndef BATCHSCOPE_TENSOR_H
#define BATCHSCOPE_TENSOR_H

#include "batchscope/api.h"
#include <stdint.h>
#include "batchscope/device.h"
#include "batchscope/shape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_tensor {
    cl_mem mem;        /* NULL for an empty tensor */
    size_t offset;     /* in elements of dtype */
    size_t numel;
    bsc_shape shape;
    bsc_dtype dtype;
    int owns;          /* 1: released by bsc_tensor_free */
} bsc_tensor;

/* Allocates an owning tensor (contents undefined). */
BSC_API bsc_status bsc_tensor_alloc(bsc_context *ctx, bsc_dtype dtype, const bsc_shape *shape,
                            bsc_tensor *out);
/* A non-owning view of numel(shape) elements starting `offset` elements into base. */
BSC_API bsc_tensor bsc_tensor_view(const bsc_tensor *base, size_t offset, const bsc_shape *shape);
/* Releases an owning tensor; a view or an empty tensor is only cleared. */
BSC_API void bsc_tensor_free(bsc_tensor *t);

/* Blocking host <-> device copies of the whole tensor. */
BSC_API bsc_status bsc_tensor_write(bsc_context *ctx, bsc_tensor *t, const void *host);
BSC_API bsc_status bsc_tensor_read(bsc_context *ctx, const bsc_tensor *t, void *host);
/* Enqueued device copy of numel(src) elements (same dtype). */
BSC_API bsc_status bsc_tensor_copy(bsc_context *ctx, const bsc_tensor *src, bsc_tensor *dst);
/* Enqueued fill of a float tensor with a value. */
BSC_API bsc_status bsc_tensor_fill(bsc_context *ctx, bsc_tensor *t, float value);
/* Enqueues out = a x + b y + c z over n floats from each tensor's offset.
 * y and z may be NULL; a zero coefficient drops its term exactly, so that
 * 1 x + 0 y is x bit for bit and an unused operand is never read. out may
 * be x, y or z. */
BSC_API bsc_status bsc_tensor_combine(bsc_context *ctx, size_t n, float a, const bsc_tensor *x,
                                      float b, const bsc_tensor *y, float c,
                                      const bsc_tensor *z, bsc_tensor *out);
/* The same, then max(v, 0) (a ReLU: v > 0 ? v : 0) in the same pass. */
BSC_API bsc_status bsc_tensor_combine_relu(bsc_context *ctx, size_t n, float a,
                                           const bsc_tensor *x, float b, const bsc_tensor *y,
                                           float c, const bsc_tensor *z, bsc_tensor *out);

#ifdef __cplusplus
}
#endif
#endif
