/* batchscope: shapes and element types, plain data shared by the file
 * formats (safetensors) and the device's tensors. */
#ifndef BATCHSCOPE_SHAPE_H
#define BATCHSCOPE_SHAPE_H

#include "batchscope/api.h"
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BSC_MAX_DIMS 6

typedef enum bsc_dtype { BSC_F32 = 0, BSC_I32 = 1, BSC_U8 = 2 } bsc_dtype;

typedef struct bsc_shape {
    int ndim;
    int64_t dim[BSC_MAX_DIMS];
} bsc_shape;

BSC_API size_t bsc_dtype_size(bsc_dtype t);
BSC_API size_t bsc_shape_numel(const bsc_shape *s);
BSC_API bsc_shape bsc_shape_make(int ndim, const int64_t *dim);
/* "[32, 1, 28, 28]" */
BSC_API void bsc_shape_format(const bsc_shape *s, char *buf, size_t len);
BSC_API int bsc_shape_equal(const bsc_shape *a, const bsc_shape *b);

#ifdef __cplusplus
}
#endif
#endif
