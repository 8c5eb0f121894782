/* Tensors: shapes over ranges of OpenCL buffers, owning or viewing. */
#include "batchscope/tensor.h"

#include <inttypes.h>
#include <string.h>

static const char *dtype_name(bsc_dtype t)
{
    switch (t) {
    case BSC_F32: return "f32";
    case BSC_I32: return "i32";
    case BSC_U8: return "u8";
    }
    return "?";
}

/* A zero-element shape yields an empty tensor (mem NULL): OpenCL refuses
 * zero-sized buffers. */
bsc_status bsc_tensor_alloc(bsc_context *ctx, bsc_dtype dtype, const bsc_shape *shape,
                            bsc_tensor *out)
{
    char sbuf[128];
    cl_int err;

    memset(out, 0, sizeof *out);
    if (bsc_dtype_size(dtype) == 0)
        return bsc_fail(BSC_ERR_INVALID, "tensor alloc: unknown dtype %d", (int)dtype);
    for (int i = 0; i < shape->ndim; i++)
        if (shape->dim[i] < 0) {
            bsc_shape_format(shape, sbuf, sizeof sbuf);
            return bsc_fail(BSC_ERR_INVALID, "tensor alloc: negative dimension in %s", sbuf);
        }
    size_t numel = bsc_shape_numel(shape);
    out->shape = *shape;
    out->dtype = dtype;
    out->numel = numel;
    if (numel == 0)
        return BSC_OK;
    size_t bytes = numel * bsc_dtype_size(dtype);
    if (bytes / bsc_dtype_size(dtype) != numel || bytes > ctx->info.max_alloc) {
        bsc_shape_format(shape, sbuf, sizeof sbuf);
        memset(out, 0, sizeof *out);
        return bsc_fail(BSC_ERR_NOMEM,
                        "tensor %s %s: %zu bytes exceeds the device's max allocation "
                        "(%llu bytes)", dtype_name(dtype), sbuf, bytes,
                        (unsigned long long)ctx->info.max_alloc);
    }
    out->mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (!out->mem) {
        char what[256];
        bsc_shape_format(shape, sbuf, sizeof sbuf);
        snprintf(what, sizeof what, "clCreateBuffer(tensor %s %s, %zu bytes)", dtype_name(dtype),
                 sbuf, bytes);
        memset(out, 0, sizeof *out);
        return bsc_cl_fail(err, what);
    }
    out->owns = 1;
    return BSC_OK;
}

/* A view past the end of its base would let a kernel read or write out of
 * bounds; it comes back empty instead, and every operation on it then fails
 * with a message. */
bsc_tensor bsc_tensor_view(const bsc_tensor *base, size_t offset, const bsc_shape *shape)
{
    bsc_tensor v;
    memset(&v, 0, sizeof v);
    v.shape = *shape;
    v.dtype = base->dtype;
    v.numel = bsc_shape_numel(shape);
    if (!base->mem || offset > base->numel || v.numel > base->numel - offset)
        return v; /* numel kept, mem NULL: check_usable() rejects it */
    v.mem = base->mem;
    v.offset = base->offset + offset;
    v.owns = 0;
    return v;
}

void bsc_tensor_free(bsc_tensor *t)
{
    if (!t)
        return;
    if (t->owns && t->mem)
        clReleaseMemObject(t->mem);
    memset(t, 0, sizeof *t);
}

/* numel == 0 is a valid no-op; numel > 0 without a buffer is a bad view. */
static bsc_status check_usable(const bsc_tensor *t, const char *op)
{
    if (t->numel > 0 && !t->mem)
        return bsc_fail(BSC_ERR_INVALID, "%s: tensor of %zu elements has no buffer (an "
                        "out-of-range view?)", op, t->numel);
    return BSC_OK;
}

bsc_status bsc_tensor_write(bsc_context *ctx, bsc_tensor *t, const void *host)
{
    bsc_status st = check_usable(t, "tensor write");
    if (st != BSC_OK || t->numel == 0)
        return st;
    size_t es = bsc_dtype_size(t->dtype);
    cl_int err = clEnqueueWriteBuffer(ctx->queue, t->mem, CL_TRUE, t->offset * es,
                                      t->numel * es, host, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        char what[128];
        snprintf(what, sizeof what, "clEnqueueWriteBuffer(%zu elements at offset %zu)",
                 t->numel, t->offset);
        return bsc_cl_fail(err, what);
    }
    return BSC_OK;
}

bsc_status bsc_tensor_read(bsc_context *ctx, const bsc_tensor *t, void *host)
{
    bsc_status st = check_usable(t, "tensor read");
    if (st != BSC_OK || t->numel == 0)
        return st;
    size_t es = bsc_dtype_size(t->dtype);
    cl_int err = clEnqueueReadBuffer(ctx->queue, t->mem, CL_TRUE, t->offset * es,
                                     t->numel * es, host, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        char what[128];
        snprintf(what, sizeof what, "clEnqueueReadBuffer(%zu elements at offset %zu)",
                 t->numel, t->offset);
        return bsc_cl_fail(err, what);
    }
    return BSC_OK;
}

bsc_status bsc_tensor_copy(bsc_context *ctx, const bsc_tensor *src, bsc_tensor *dst)
{
    bsc_status st = check_usable(src, "tensor copy (source)");
    if (st == BSC_OK)
        st = check_usable(dst, "tensor copy (destination)");
    if (st != BSC_OK)
        return st;
    if (src->dtype != dst->dtype)
        return bsc_fail(BSC_ERR_INVALID, "tensor copy: dtype %s to %s", dtype_name(src->dtype),
                        dtype_name(dst->dtype));
    if (dst->numel < src->numel)
        return bsc_fail(BSC_ERR_INVALID, "tensor copy: %zu elements into a tensor of %zu",
                        src->numel, dst->numel);
    if (src->numel == 0)
        return BSC_OK;
    size_t es = bsc_dtype_size(src->dtype);
    cl_int err = clEnqueueCopyBuffer(ctx->queue, src->mem, dst->mem, src->offset * es,
                                     dst->offset * es, src->numel * es, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "clEnqueueCopyBuffer(%zu elements, offset %zu to %zu)",
                 src->numel, src->offset, dst->offset);
        return bsc_cl_fail(err, what);
    }
    return BSC_OK;
}

bsc_status bsc_tensor_fill(bsc_context *ctx, bsc_tensor *t, float value)
{
    bsc_status st = check_usable(t, "tensor fill");
    if (st != BSC_OK)
        return st;
    if (t->dtype != BSC_F32)
        return bsc_fail(BSC_ERR_INVALID, "tensor fill: a float value into a %s tensor",
                        dtype_name(t->dtype));
    if (t->numel == 0)
        return BSC_OK;
    /* Offsets and sizes are whole floats, as clEnqueueFillBuffer requires. */
    cl_int err = clEnqueueFillBuffer(ctx->queue, t->mem, &value, sizeof value,
                                     t->offset * sizeof(float), t->numel * sizeof(float), 0,
                                     NULL, NULL);
    if (err != CL_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "clEnqueueFillBuffer(%zu floats at offset %zu)", t->numel,
                 t->offset);
        return bsc_cl_fail(err, what);
    }
    return BSC_OK;
}

/* bsc_tensor_combine, and with `relu` its output through a ReLU. */
static bsc_status combine_with(bsc_context *ctx, size_t n, float a, const bsc_tensor *x,
                               float b, const bsc_tensor *y, float c, const bsc_tensor *z,
                               bsc_tensor *out, int relu)
{
    if (n == 0)
        return BSC_OK;
    bsc_status st = check_usable(x, "tensor combine");
    if (st == BSC_OK)
        st = check_usable(out, "tensor combine");
    if (st != BSC_OK)
        return st;
    cl_kernel k;
    size_t l;
    if ((st = bsc_kernel(ctx, "util.cl", "combine3_f32", &k)) != BSC_OK ||
        (st = bsc_local_size(ctx, k, 256, &l)) != BSC_OK)   /* 256 where allowed */
        return st;
    /* An unused operand still needs a valid buffer argument. */
    if (!y || b == 0.0f) {
        y = x;
        b = 0.0f;
    }
    if (!z || c == 0.0f) {
        z = x;
        c = 0.0f;
    }
    cl_ulong nn = n, xo = x->offset, yo = y->offset, zo = z->offset, oo = out->offset;
    bsc_karg args[] = {BSC_ARG(nn), BSC_ARG(a), BSC_ARG(x->mem), BSC_ARG(xo),
                       BSC_ARG(b), BSC_ARG(y->mem), BSC_ARG(yo),
                       BSC_ARG(c), BSC_ARG(z->mem), BSC_ARG(zo),
                       BSC_ARG(out->mem), BSC_ARG(oo), BSC_ARG(relu)};
    size_t g = n;
    return bsc_launch(ctx, k, 13, args, 1, &g, &l);
}

bsc_status bsc_tensor_combine(bsc_context *ctx, size_t n, float a, const bsc_tensor *x,
                              float b, const bsc_tensor *y, float c, const bsc_tensor *z,
                              bsc_tensor *out)
{
    return combine_with(ctx, n, a, x, b, y, c, z, out, 0);
}

bsc_status bsc_tensor_combine_relu(bsc_context *ctx, size_t n, float a, const bsc_tensor *x,
                                   float b, const bsc_tensor *y, float c, const bsc_tensor *z,
                                   bsc_tensor *out)
{
    return combine_with(ctx, n, a, x, b, y, c, z, out, 1);
}
