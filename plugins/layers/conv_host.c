/* conv2d on the host threads, one sample at a time, for contexts whose GEMMs
 * run on the host BLAS (blas.h, host_task.h).
 *
 * The OpenCL path materializes im2col over the whole batch: for the second
 * conv of cnn.yaml at batch 256 that is 40M floats (160 MB) written and read
 * back per product, and on PoCL the layout kernels (im2col, col2im and the
 * NCHW relayouts) took about as long as the GEMMs (bench_train with a finish
 * after every launch: im2col 37-53 ms, col2im 95 ms per call; the same loops
 * in C as host tasks were no faster -- the time is memory traffic). Here each
 * host thread takes a range of samples and, per sample, forms that sample's
 * [Q, P] column matrix in its own scratch (627 KB for that conv: it stays in
 * cache) and multiplies it at once, writing NCHW directly:
 *   forward   y_b [F, P] = W [F, Q] col_b [Q, P] (+ bias)
 *   dW        dW = sum_b dout_b [F, P] col_b^T, each thread over its samples
 *             into its own [F, Q] sum, the sums added in thread order
 *   din       dcol_b [Q, P] = W^T dout_b, then col2im into din_b.
 * The batch is cut into up to CONV_PARTS parts, taken by the threads as
 * they finish theirs: on a shared machine a thread slowed by other work
 * would otherwise hold up the others at the end of each call. The parts
 * depend on the batch alone, never on the thread count, and dW's part sums
 * are added in part order, so results are the same bits whatever
 * BATCHSCOPE_BLAS_THREADS says. Scratch is the layer's workspace: a [Q, P]
 * column matrix per thread and an [F, Q] weight-gradient sum per part
 * (conv_host_scratch). */
#include <string.h>
#include "layers.h"

typedef struct conv_job {
    layers_geom g;
    int B, F, has_bias, parts, threads;
    int serial;          /* all parts on the calling thread (scratch for one) */
    size_t Q, P;
    /* set inside the task */
    const float *x, *w, *bias, *dy;
    float *y, *scratch;
} conv_job;

/* Most parts of a batch: 4 per thread on 2 cores, enough for threads that
 * other work slows down to even out. */
#define CONV_PARTS 8

size_t conv_host_scratch(size_t Q, size_t P, size_t F, int threads)
{
    return (size_t)threads * Q * P + CONV_PARTS * F * Q;
}

static void part_range(int n, int part, int parts, int *lo, int *hi)
{
    long step = ((long)n + parts - 1) / parts;
    *lo = (int)(step * part < n ? step * part : n);
    *hi = (int)(step * (part + 1) < n ? step * (part + 1) : n);
}

/* The output columns ox whose input column ox*SW - PW + kj lies inside
 * [0, W): [*lo, *hi). */
static void valid_cols(const layers_geom *g, int kj, int *lo, int *hi)
{
    int a = g->PW - kj, b = g->W - 1 + g->PW - kj;   /* ox*SW in [a, b] */
    *lo = a <= 0 ? 0 : (a + g->SW - 1) / g->SW;
    *hi = b < 0 ? 0 : b / g->SW + 1;
    if (*hi > g->OW)
        *hi = g->OW;
    if (*lo > *hi)
        *lo = *hi;
}

/* col [Q, P] of one sample x_b [C, H, W]: the rows of cl/layers/conv.cl's
 * im2col_t for that sample. The columns inside the image are found once
 * per row, so the copy has no test per element. */
static void im2col_sample(const layers_geom *g, const float *x, float *col)
{
    int P = g->OH * g->OW, Q = g->C * g->KH * g->KW;
    for (int q = 0; q < Q; q++) {
        int kj = q % g->KW, r = q / g->KW;
        int ki = r % g->KH, c = r / g->KH;
        int lo, hi;
        valid_cols(g, kj, &lo, &hi);
        const float *src = x + (size_t)c * g->H * g->W;
        float *dst = col + (size_t)q * P;
        for (int oy = 0; oy < g->OH; oy++) {
            int yy = oy * g->SH - g->PH + ki;
            float *row = dst + oy * g->OW;
            if (yy < 0 || yy >= g->H) {
                memset(row, 0, (size_t)g->OW * sizeof *row);
                continue;
            }
            const float *srow = src + yy * g->W - g->PW + kj;
            for (int ox = 0; ox < lo; ox++)
                row[ox] = 0.0f;
            if (g->SW == 1)
                memcpy(row + lo, srow + lo, (size_t)(hi - lo) * sizeof *row);
            else
                for (int ox = lo; ox < hi; ox++)
                    row[ox] = srow[ox * g->SW];
            for (int ox = hi; ox < g->OW; ox++)
                row[ox] = 0.0f;
        }
    }
}

/* dx_b [C, H, W] = the sums of dcol [Q, P] over the cells im2col_sample
 * copied each pixel to, in col2im_t's order. */
static void col2im_sample(const layers_geom *g, const float *col, float *dx)
{
    int P = g->OH * g->OW;
    for (int c = 0; c < g->C; c++) {
        float *dst = dx + (size_t)c * g->H * g->W;
        memset(dst, 0, (size_t)g->H * g->W * sizeof *dst);
        for (int ki = 0; ki < g->KH; ki++)
            for (int kj = 0; kj < g->KW; kj++) {
                const float *src = col + (size_t)((c * g->KH + ki) * g->KW + kj) * P;
                int lo, hi;
                valid_cols(g, kj, &lo, &hi);
                for (int oy = 0; oy < g->OH; oy++) {
                    int yy = oy * g->SH - g->PH + ki;
                    if (yy < 0 || yy >= g->H)
                        continue;
                    float *drow = dst + yy * g->W - g->PW + kj;
                    const float *srow = src + oy * g->OW;
                    for (int ox = lo; ox < hi; ox++)
                        drow[ox * g->SW] += srow[ox];
                }
            }
    }
}

static size_t in_size(const conv_job *j)
{
    return (size_t)j->g.C * j->g.H * j->g.W;
}

/* The running thread's column matrix, and part p's dW sum after all of
 * them. */
static float *col_of(const conv_job *j)
{
    return j->scratch + (size_t)(j->serial ? 0 : bsc_host_worker()) * j->Q * j->P;
}

static float *acc_of(const conv_job *j, int part)
{
    return j->scratch + (size_t)j->threads * j->Q * j->P + (size_t)part * j->F * j->Q;
}

static void forward_part(void *arg, int part, int parts)
{
    const conv_job *j = arg;
    float *col = col_of(j);
    int lo, hi;
    part_range(j->B, part, parts, &lo, &hi);
    for (int b = lo; b < hi; b++) {
        float *y = j->y + (size_t)b * j->F * j->P;
        im2col_sample(&j->g, j->x + (size_t)b * in_size(j), col);
        bsc_host_sgemm(0, 0, (size_t)j->F, j->P, j->Q, 1.0f, j->w, j->Q, col, j->P, 0.0f, y,
                       j->P);
        for (int f = 0; j->has_bias && f < j->F; f++)
            for (size_t p = 0; p < j->P; p++)
                y[(size_t)f * j->P + p] += j->bias[f];
    }
}

static void dw_part(void *arg, int part, int parts)
{
    const conv_job *j = arg;
    float *col = col_of(j), *acc = acc_of(j, part);
    int lo, hi;
    part_range(j->B, part, parts, &lo, &hi);
    memset(acc, 0, (size_t)j->F * j->Q * sizeof *acc);
    for (int b = lo; b < hi; b++) {
        im2col_sample(&j->g, j->x + (size_t)b * in_size(j), col);
        bsc_host_sgemm(0, 1, (size_t)j->F, j->Q, j->P, 1.0f, j->dy + (size_t)b * j->F * j->P,
                       j->P, col, j->P, 1.0f, acc, j->Q);
    }
}

static void din_part(void *arg, int part, int parts)
{
    const conv_job *j = arg;
    float *dcol = col_of(j);
    int lo, hi;
    part_range(j->B, part, parts, &lo, &hi);
    for (int b = lo; b < hi; b++) {
        bsc_host_sgemm(1, 0, j->Q, j->P, (size_t)j->F, 1.0f, j->w, j->Q,
                       j->dy + (size_t)b * j->F * j->P, j->P, 0.0f, dcol, j->P);
        col2im_sample(&j->g, dcol, j->y + (size_t)b * in_size(j));
    }
}

/* Every part of j, on the host threads or, when the scratch holds one
 * column matrix only, one after another on the calling thread: the same
 * parts either way. */
static void run_parts(conv_job *j, void (*fn)(void *arg, int part, int parts))
{
    if (!j->serial) {
        bsc_host_parallel(j->parts, fn, j);
        return;
    }
    for (int p = 0; p < j->parts; p++)
        fn(j, p, j->parts);
}

/* data: x, w, bias (w when none), y, scratch */
static void forward_task(void *args, float *const *data)
{
    conv_job j = *(const conv_job *)args;
    j.x = data[0], j.w = data[1], j.bias = data[2], j.y = data[3], j.scratch = data[4];
    run_parts(&j, forward_part);
}

/* data: x, dy, dw, scratch; the parts' sums are added in part order. */
static void dw_task(void *args, float *const *data)
{
    conv_job j = *(const conv_job *)args;
    j.x = data[0], j.dy = data[1], j.scratch = data[3];
    float *dw = data[2];
    run_parts(&j, dw_part);
    size_t n = (size_t)j.F * j.Q;
    memcpy(dw, acc_of(&j, 0), n * sizeof *dw);
    for (int p = 1; p < j.parts; p++) {
        const float *acc = acc_of(&j, p);
        for (size_t i = 0; i < n; i++)
            dw[i] += acc[i];
    }
}

/* data: w, dy, dx, scratch */
static void din_task(void *args, float *const *data)
{
    conv_job j = *(const conv_job *)args;
    j.w = data[0], j.dy = data[1], j.y = data[2], j.scratch = data[3];
    run_parts(&j, din_part);
}

static conv_job job_of(const layers_geom *g, size_t batch, int F, size_t Q, size_t P,
                       const bsc_tensor *scratch)
{
    conv_job j;
    memset(&j, 0, sizeof j);
    j.g = *g;
    j.B = (int)batch;
    j.F = F;
    j.Q = Q;
    j.P = P;
    /* conv_bind sized the workspace for a column matrix per pool thread;
     * where it holds fewer, the parts run on the calling thread alone. The
     * parts stay the same either way. */
    j.threads = bsc_host_threads();
    if (conv_host_scratch(Q, P, (size_t)F, j.threads) > scratch->numel) {
        j.serial = 1;
        j.threads = 1;
    }
    j.parts = j.B < CONV_PARTS ? j.B : CONV_PARTS;
    if (j.parts < 1)
        j.parts = 1;
    return j;
}

bsc_status conv_host_forward(bsc_context *ctx, const layers_geom *g, size_t batch, int F,
                             size_t Q, size_t P, const bsc_tensor *x, const bsc_tensor *w,
                             const bsc_tensor *bias, const bsc_tensor *y,
                             const bsc_tensor *scratch)
{
    conv_job j = job_of(g, batch, F, Q, P, scratch);
    j.has_bias = bias != NULL;
    const bsc_tensor *t[5] = {x, w, bias ? bias : w, y, scratch};
    return bsc_enqueue_host(ctx, forward_task, &j, sizeof j, 5, t);
}

bsc_status conv_host_backward(bsc_context *ctx, const layers_geom *g, size_t batch, int F,
                              size_t Q, size_t P, const bsc_tensor *x, const bsc_tensor *w,
                              const bsc_tensor *dy, const bsc_tensor *dw,
                              const bsc_tensor *dx, const bsc_tensor *scratch)
{
    conv_job j = job_of(g, batch, F, Q, P, scratch);
    const bsc_tensor *t[4] = {x, dy, dw, scratch};
    bsc_status st = bsc_enqueue_host(ctx, dw_task, &j, sizeof j, 4, t);
    if (st != BSC_OK || !dx)
        return st;
    const bsc_tensor *u[4] = {w, dy, dx, scratch};
    return bsc_enqueue_host(ctx, din_task, &j, sizeof j, 4, u);
}
