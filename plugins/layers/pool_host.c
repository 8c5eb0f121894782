/* maxpool2d on the host threads, for contexts whose GEMMs run on the host
 * BLAS (conv2d runs there too, conv_host.c).
 *
 * On PoCL the OpenCL maxpool_forward (cl/layers/conv.cl) took ~5% of a
 * training step of pipelines/cnn.yaml at batch 256 (perf, 2 cores): its
 * items test every window cell against the padding. Here each window's
 * rows and columns inside the image are found once, so the inner loops
 * have no test but the comparison. Both passes visit the window cells in
 * the kernels' order and keep the kernels' rule (the first cell, then any
 * strictly larger one), so values and winners are the kernels' bit for bit,
 * and the R-operator's OpenCL kernel reads the winners as it would its own.
 * The planes (b, c) are independent and each is written by one part: no
 * sum depends on how the parts are spread over threads. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "layers.h"

typedef struct pool_job {
    layers_geom g;
    int BC, parts;
    /* set inside the task */
    const float *x, *dy;
    float *y, *dx;
    int32_t *arg;
} pool_job;

/* Planes per part: enough parts for the threads to even out, few enough
 * that waking them pays. */
#define POOL_PLANES_PER_PART 64
#define POOL_MAX_PARTS 16

static void plane_range(const pool_job *j, int part, int *lo, int *hi)
{
    long step = ((long)j->BC + j->parts - 1) / j->parts;
    *lo = (int)(step * part < j->BC ? step * part : j->BC);
    *hi = (int)(step * (part + 1) < j->BC ? step * (part + 1) : j->BC);
}

/* [*lo, *hi): the window offsets k in [0, K) with o*S - P + k inside [0, N). */
static void inside(int o, int S, int P, int K, int N, int *lo, int *hi)
{
    int first = o * S - P;
    *lo = first < 0 ? -first : 0;
    *hi = N - first < K ? N - first : K;
    if (*hi < *lo)
        *hi = *lo;
}

/* One output row of 2x2 windows at stride 2 over input rows r0 and r1
 * (base: r0's index in its plane). One comparison per pair of selects, and
 * this file compiled with -fno-trapping-math (CMakeLists.txt): so GCC
 * vectorizes it; otherwise it keeps a branch per cell. */
static void row_2x2(const float *restrict r0, const float *restrict r1, int OW, int W, int base,
                    float *restrict y, int32_t *restrict win)
{
    for (int ox = 0; ox < OW; ox++) {
        float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
        float best = a;
        int w = 0, up = b > best;
        w = up ? 1 : w;
        best = up ? b : best;
        up = c > best;
        w = up ? W : w;
        best = up ? c : best;
        up = d > best;
        w = up ? W + 1 : w;
        best = up ? d : best;
        y[ox] = best;
        win[ox] = base + 2 * ox + w;
    }
}

/* Output row oy of a plane whose windows all lie inside the image (no
 * padding reaches them): the same cells in the same order as the general
 * loop below, with the row's outputs innermost and selects for branches,
 * where the compiler vectorizes (a branch per cell mispredicts on data:
 * the plain loop was no faster than the OpenCL kernel). 2x2 windows at
 * stride 2, the common case, have their own loop (row_2x2). */
static void row_inside(const layers_geom *g, const float *restrict src, int oy,
                       float *restrict y, int32_t *restrict win)
{
    int W = g->W, y0 = oy * g->SH, SW = g->SW;
    if (g->KH == 2 && g->KW == 2 && SW == 2) {
        row_2x2(src + y0 * W, src + (y0 + 1) * W, g->OW, W, y0 * W, y, win);
        return;
    }
    for (int ox = 0; ox < g->OW; ox++) {
        win[ox] = y0 * W + ox * SW;
        y[ox] = src[win[ox]];
    }
    for (int ki = 0; ki < g->KH; ki++)
        for (int kj = 0; kj < g->KW; kj++) {
            int base = (y0 + ki) * W + kj;
            for (int ox = 0; ox < g->OW; ox++) {
                float v = src[base + ox * SW];
                int up = v > y[ox];
                y[ox] = up ? v : y[ox];
                win[ox] = up ? base + ox * SW : win[ox];
            }
        }
}

static void forward_part(void *arg, int part, int parts)
{
    const pool_job *j = arg;
    const layers_geom *g = &j->g;
    int lo, hi;
    (void)parts;
    plane_range(j, part, &lo, &hi);
    int all_inside = g->PH == 0 && g->PW == 0 && (g->OH - 1) * g->SH + g->KH <= g->H &&
                     (g->OW - 1) * g->SW + g->KW <= g->W;
    for (int plane = lo; plane < hi; plane++) {
        const float *src = j->x + (size_t)plane * g->H * g->W;
        float *y = j->y + (size_t)plane * g->OH * g->OW;
        int32_t *win = j->arg + (size_t)plane * g->OH * g->OW;
        for (int oy = 0; all_inside && oy < g->OH; oy++)
            row_inside(g, src, oy, y + oy * g->OW, win + oy * g->OW);
        for (int oy = 0; !all_inside && oy < g->OH; oy++) {
            int ki0, ki1;
            inside(oy, g->SH, g->PH, g->KH, g->H, &ki0, &ki1);
            int y0 = oy * g->SH - g->PH;
            for (int ox = 0; ox < g->OW; ox++) {
                int kj0, kj1;
                inside(ox, g->SW, g->PW, g->KW, g->W, &kj0, &kj1);
                int x0 = ox * g->SW - g->PW;
                /* The first cell inside, then any strictly larger one:
                 * selects rather than branches, the winner is data. A
                 * window wholly in the padding has none (-INFINITY, -1). */
                float best = -INFINITY;
                int where = -1;
                if (ki0 < ki1 && kj0 < kj1) {
                    where = (y0 + ki0) * g->W + x0 + kj0;
                    best = src[where];
                }
                for (int ki = ki0; ki < ki1; ki++) {
                    int row = (y0 + ki) * g->W + x0;
                    for (int kj = kj0; kj < kj1; kj++) {
                        float v = src[row + kj];
                        int up = v > best;
                        best = up ? v : best;
                        where = up ? row + kj : where;
                    }
                }
                y[oy * g->OW + ox] = best;
                win[oy * g->OW + ox] = where;
            }
        }
    }
}

/* dx = dy routed to each window's winner, in window order (maxpool_backward). */
static void backward_part(void *arg, int part, int parts)
{
    const pool_job *j = arg;
    const layers_geom *g = &j->g;
    size_t HW = (size_t)g->H * g->W, OHW = (size_t)g->OH * g->OW;
    int lo, hi;
    (void)parts;
    plane_range(j, part, &lo, &hi);
    for (int plane = lo; plane < hi; plane++) {
        float *dst = j->dx + (size_t)plane * HW;
        const float *dy = j->dy + (size_t)plane * OHW;
        const int32_t *win = j->arg + (size_t)plane * OHW;
        memset(dst, 0, HW * sizeof *dst);
        for (size_t o = 0; o < OHW; o++)
            if (win[o] >= 0)
                dst[win[o]] += dy[o];
    }
}

/* data: x, winners, y */
static void forward_task(void *args, float *const *data)
{
    pool_job j = *(const pool_job *)args;
    j.x = data[0], j.arg = (int32_t *)data[1], j.y = data[2];
    bsc_host_parallel(j.parts, forward_part, &j);
}

/* data: dy, winners, dx */
static void backward_task(void *args, float *const *data)
{
    pool_job j = *(const pool_job *)args;
    j.dy = data[0], j.arg = (int32_t *)data[1], j.dx = data[2];
    bsc_host_parallel(j.parts, backward_part, &j);
}

static pool_job job_of(const layers_geom *g, size_t batch)
{
    pool_job j;
    memset(&j, 0, sizeof j);
    j.g = *g;
    j.BC = (int)(batch * (size_t)g->C);
    int parts = (j.BC + POOL_PLANES_PER_PART - 1) / POOL_PLANES_PER_PART;
    j.parts = parts < 1 ? 1 : parts > POOL_MAX_PARTS ? POOL_MAX_PARTS : parts;
    return j;
}

/* Enqueues fn over the batch's planes of three tensors: `a` and `c` sized
 * like the input (in_a, in_c nonzero) or the output, and the winners in
 * the middle, always output-sized. */
static bsc_status enqueue(bsc_context *ctx, const layers_geom *g, size_t batch, bsc_host_fn fn,
                          const bsc_tensor *a, int in_a, const bsc_tensor *winners,
                          const bsc_tensor *c, int in_c)
{
    if (batch == 0)
        return BSC_OK;
    pool_job j = job_of(g, batch);
    size_t out = (size_t)j.BC * g->OH * g->OW, in = (size_t)j.BC * g->H * g->W;
    bsc_tensor v[3] = {*a, *winners, *c};
    v[0].numel = in_a ? in : out;
    v[1].numel = out;
    v[2].numel = in_c ? in : out;
    const bsc_tensor *t[3] = {&v[0], &v[1], &v[2]};
    return bsc_enqueue_host(ctx, fn, &j, sizeof j, 3, t);
}

bsc_status pool_host_forward(bsc_context *ctx, const layers_geom *g, size_t batch,
                             const bsc_tensor *x, const bsc_tensor *y,
                             const bsc_tensor *winners)
{
    return enqueue(ctx, g, batch, forward_task, x, 1, winners, y, 0);
}

bsc_status pool_host_backward(bsc_context *ctx, const layers_geom *g, size_t batch,
                              const bsc_tensor *dy, const bsc_tensor *winners,
                              const bsc_tensor *dx)
{
    return enqueue(ctx, g, batch, backward_task, dy, 0, winners, dx, 1);
}
