/* Deterministic device reductions (cl/runtime reduce.cl): one work-group
 * sums in a fixed order, so the same inputs give bitwise the same result. */
#include "batchscope/reduce.h"

/* At most; the kernel and device may allow fewer (bsc_local_size). */
#define SUM_LOCAL 256

bsc_status bsc_sum(bsc_context *ctx, const bsc_tensor *x, size_t n, float scale,
                   bsc_tensor *dst, size_t doff)
{
    cl_kernel k;
    size_t l;
    bsc_status s = bsc_kernel(ctx, "reduce.cl", "sum_scaled", &k);
    if (s == BSC_OK)
        s = bsc_local_size(ctx, k, SUM_LOCAL, &l);
    if (s != BSC_OK)
        return s;
    cl_uint xoff = (cl_uint)x->offset, nn = (cl_uint)n, d = (cl_uint)(dst->offset + doff);
    bsc_karg args[] = {BSC_ARG(x->mem), BSC_ARG(xoff), BSC_ARG(nn), BSC_ARG(dst->mem),
                       BSC_ARG(d), BSC_ARG(scale), BSC_LOCAL(l * sizeof(float))};
    size_t g = l;
    return bsc_launch(ctx, k, 7, args, 1, &g, &l);
}
