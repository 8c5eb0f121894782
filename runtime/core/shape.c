/* Shapes and element types: plain data that file formats and tensors share. */
#include "batchscope/shape.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

size_t bsc_dtype_size(bsc_dtype t)
{
    switch (t) {
    case BSC_F32: return 4;
    case BSC_I32: return 4;
    case BSC_U8: return 1;
    }
    return 0;
}

/* An empty shape (ndim 0) is a scalar: one element. A negative dimension
 * counts as zero so a bad shape can never ask for a huge buffer. */
size_t bsc_shape_numel(const bsc_shape *s)
{
    size_t n = 1;
    for (int i = 0; i < s->ndim && i < BSC_MAX_DIMS; i++)
        n *= s->dim[i] > 0 ? (size_t)s->dim[i] : 0;
    return n;
}

/* ndim is clamped to [0, BSC_MAX_DIMS]; unused dimensions are zeroed so a
 * shape never carries stale values past ndim. */
bsc_shape bsc_shape_make(int ndim, const int64_t *dim)
{
    bsc_shape s;
    memset(&s, 0, sizeof s);
    if (ndim < 0)
        ndim = 0;
    if (ndim > BSC_MAX_DIMS)
        ndim = BSC_MAX_DIMS;
    s.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        s.dim[i] = dim[i];
    return s;
}

void bsc_shape_format(const bsc_shape *s, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    int w = snprintf(buf, len, "[");
    for (int i = 0; w >= 0 && i < s->ndim && i < BSC_MAX_DIMS; i++) {
        used += (size_t)w;
        if (used >= len)
            return;
        w = snprintf(buf + used, len - used, i ? ", %" PRId64 : "%" PRId64, s->dim[i]);
    }
    if (w < 0)
        return;
    used += (size_t)w;
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

int bsc_shape_equal(const bsc_shape *a, const bsc_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim && i < BSC_MAX_DIMS; i++)
        if (a->dim[i] != b->dim[i])
            return 0;
    return 1;
}
