/* Deterministic device reductions (cl/runtime reduce.cl): one work-group
 * sums in a fixed order, so the same inputs give bitwise the same result. */
#include "batchscope/reduce.h"
#include "batchscope/host_task.h"

/* At most; the kernel and device may allow fewer (bsc_local_size). */
#define SUM_LOCAL 256

/* The sum as a host task (host_task.h: bsc_host_elementwise): one thread
 * adds the n values in order, in double, so the result is the same
 * whatever the threads (and need not be the kernel's bits: its tree adds
 * floats in another order). */
typedef struct sum_job {
    size_t n;
    float scale;
} sum_job;

static void sum_task(void *args, float *const *data)
{
    const sum_job *j = args;
    double acc = 0.0;
    for (size_t i = 0; i < j->n; i++)
        acc += data[0][i];
    data[1][0] = j->scale * (float)acc;
}

bsc_status bsc_sum(bsc_context *ctx, const bsc_tensor *x, size_t n, float scale,
                   bsc_tensor *dst, size_t doff)
{
    if (bsc_host_elementwise(ctx) && n > 0) {
        bsc_tensor xv = *x, dv = *dst;
        xv.numel = n;
        dv.offset += doff;
        dv.numel = 1;
        const bsc_tensor *t[2] = {&xv, &dv};
        sum_job j = {n, scale};
        return bsc_enqueue_host(ctx, sum_task, &j, sizeof j, 2, t);
    }
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
