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

#include <stdint.h>
#include "batchscope/device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BSC_MAX_DIMS 6

typedef enum bsc_dtype { BSC_F32 = 0, BSC_I32 = 1, BSC_U8 = 2 } bsc_dtype;

typedef struct bsc_shape {
    int ndim;
    int64_t dim[BSC_MAX_DIMS];
} bsc_shape;

typedef struct bsc_tensor {
    cl_mem mem;        /* NULL for an empty tensor */
    size_t offset;     /* in elements of dtype */
    size_t numel;
    bsc_shape shape;
    bsc_dtype dtype;
    int owns;          /* 1: released by bsc_tensor_free */
} bsc_tensor;

size_t bsc_dtype_size(bsc_dtype t);
size_t bsc_shape_numel(const bsc_shape *s);
bsc_shape bsc_shape_make(int ndim, const int64_t *dim);
/* "[32, 1, 28, 28]" */
void bsc_shape_format(const bsc_shape *s, char *buf, size_t len);
int bsc_shape_equal(const bsc_shape *a, const bsc_shape *b);

/* Allocates an owning tensor (contents undefined). */
bsc_status bsc_tensor_alloc(bsc_context *ctx, bsc_dtype dtype, const bsc_shape *shape,
                            bsc_tensor *out);
/* A non-owning view of numel(shape) elements starting `offset` elements into base. */
bsc_tensor bsc_tensor_view(const bsc_tensor *base, size_t offset, const bsc_shape *shape);
/* Releases an owning tensor; a view or an empty tensor is only cleared. */
void bsc_tensor_free(bsc_tensor *t);

/* Blocking host <-> device copies of the whole tensor. */
bsc_status bsc_tensor_write(bsc_context *ctx, bsc_tensor *t, const void *host);
bsc_status bsc_tensor_read(bsc_context *ctx, const bsc_tensor *t, void *host);
/* Enqueued device copy of numel(src) elements (same dtype). */
bsc_status bsc_tensor_copy(bsc_context *ctx, const bsc_tensor *src, bsc_tensor *dst);
/* Enqueued fill of a float tensor with a value. */
bsc_status bsc_tensor_fill(bsc_context *ctx, bsc_tensor *t, float value);

#ifdef __cplusplus
}
#endif
#endif
