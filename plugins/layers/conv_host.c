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
 *   dW        dW = sum_b dout_b [F, P] col_b^T, each part over its samples
 *             into its own [F, Q] sum, the sums added in part order
 *   db        in the same GEMM: col_b gets a row of ones, so dW's sum has
 *             a column more, the rows of dout_b summed (a separate kernel
 *             over the batch took ~3% of a step of cnn.yaml, plain loops
 *             over dout_b in this pass ~2%; the extra column costs 1/Q of
 *             the GEMM)
 *   din       dcol_b [Q, P] = W^T dout_b, then col2im into din_b.
 * The batch is cut into up to CONV_PARTS parts, taken by the threads as
 * they finish theirs: on a shared machine a thread slowed by other work
 * would otherwise hold up the others at the end of each call. The parts
 * depend on the batch alone, never on the thread count, and dW's part sums
 * are added in part order, so results are the same bits whatever
 * BATCHSCOPE_BLAS_THREADS says. Scratch is the layer's workspace: a [Q + 1,
 * P] column matrix and a padded sample per thread and an [F, Q + 1] weight-
 * and bias-gradient sum per part (conv_host_scratch). */
#include <string.h>
#include "layers.h"

typedef struct conv_job {
    layers_geom g;
    int B, F, has_bias, parts, threads;
    size_t Q, P;
    /* set inside the task */
    const float *x, *w, *bias, *dy;
    float *y, *scratch, *db;
} conv_job;

/* Most parts of a batch: 4 per thread on 2 cores, enough for threads that
 * other work slows down to even out. */
#define CONV_PARTS 8

/* Floats of one thread's scratch: the column matrix with its row of ones
 * (dw_part), then the padded sample (im2col_sample). */
static size_t per_thread(const layers_geom *g)
{
    size_t Q = (size_t)g->C * g->KH * g->KW, P = (size_t)g->OH * g->OW;
    return (Q + 1) * P + (size_t)g->C * (g->H + 2 * g->PH) * (g->W + 2 * g->PW);
}

size_t conv_host_scratch(const layers_geom *g, size_t F, int threads)
{
    size_t Q = (size_t)g->C * g->KH * g->KW;
    return (size_t)threads * per_thread(g) + CONV_PARTS * F * (Q + 1);
}

/* xp [C, H + 2 PH, W + 2 PW]: x_b [C, H, W] inside a border of zeros. */
static void pad_sample(const layers_geom *g, const float *restrict x, float *restrict xp)
{
    int Hp = g->H + 2 * g->PH, Wp = g->W + 2 * g->PW;
    for (int c = 0; c < g->C; c++) {
        float *p = xp + (size_t)c * Hp * Wp;
        memset(p, 0, (size_t)g->PH * Wp * sizeof *p);
        for (int y = 0; y < g->H; y++) {
            float *r = p + (size_t)(y + g->PH) * Wp;
            for (int i = 0; i < g->PW; i++)
                r[i] = r[Wp - 1 - i] = 0.0f;
            memcpy(r + g->PW, x + ((size_t)c * g->H + y) * g->W, (size_t)g->W * sizeof *r);
        }
        memset(p + (size_t)(g->H + g->PH) * Wp, 0, (size_t)g->PH * Wp * sizeof *p);
    }
}

/* A short run of floats (an output row: 14 for cnn.yaml's second conv):
 * inline 4-float moves, the last one overlapping the one before, where a
 * memcpy call per row cost more than the copy (GCC turns a plain loop, or
 * a remainder loop, into that call). */
static inline void copy_run(float *restrict d, const float *restrict s, int n)
{
    if (n < 4) {
        if (n > 0)
            d[0] = s[0];
        if (n > 1)
            d[1] = s[1];
        if (n > 2)
            d[2] = s[2];
        return;
    }
    for (int i = 0;; i += 4) {
        if (i + 4 > n)
            i = n - 4;
        d[i] = s[i];
        d[i + 1] = s[i + 1];
        d[i + 2] = s[i + 2];
        d[i + 3] = s[i + 3];
        if (i + 4 >= n)
            break;
    }
}

/* col [Q, P] of one sample x_b [C, H, W]: the rows of cl/layers/conv.cl's
 * im2col_t for that sample. x_b is first padded into xp (scratch), so that
 * each row of col is OH plain runs of xp with no test for the border:
 * ~25% faster than finding the columns inside the image per row. */
static void im2col_sample(const layers_geom *g, const float *x, float *restrict xp,
                          float *restrict col)
{
    int Hp = g->H + 2 * g->PH, Wp = g->W + 2 * g->PW, P = g->OH * g->OW;
    pad_sample(g, x, xp);
    for (int c = 0; c < g->C; c++)
        for (int ki = 0; ki < g->KH; ki++)
            for (int kj = 0; kj < g->KW; kj++) {
                float *dst = col + (size_t)((c * g->KH + ki) * g->KW + kj) * P;
                const float *src = xp + (size_t)c * Hp * Wp + (size_t)ki * Wp + kj;
                for (int oy = 0; oy < g->OH; oy++) {
                    const float *sr = src + (size_t)oy * g->SH * Wp;
                    float *dr = dst + oy * g->OW;
                    if (g->SW == 1)
                        copy_run(dr, sr, g->OW);
                    else
                        for (int ox = 0; ox < g->OW; ox++)
                            dr[ox] = sr[ox * g->SW];
                }
            }
}

/* d[i] += s[i] for a short run, as copy_run (without its overlap: each
 * element is added once). */
static inline void add_run(float *restrict d, const float *restrict s, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        d[i] += s[i];
        d[i + 1] += s[i + 1];
        d[i + 2] += s[i + 2];
        d[i + 3] += s[i + 3];
    }
    if (i < n)
        d[i] += s[i];
    if (i + 1 < n)
        d[i + 1] += s[i + 1];
    if (i + 2 < n)
        d[i + 2] += s[i + 2];
}

/* dx_b [C, H, W] = the sums of dcol [Q, P] over the cells im2col_sample
 * copied each pixel to, in col2im_t's order: summed into the padded xp
 * (scratch) with no test for the border, whose cells are then dropped.
 * Each cell inside gets the same additions in the same order as without
 * the border. */
static void col2im_sample(const layers_geom *g, const float *restrict col,
                          float *restrict xp, float *restrict dx)
{
    int Hp = g->H + 2 * g->PH, Wp = g->W + 2 * g->PW, P = g->OH * g->OW;
    memset(xp, 0, (size_t)g->C * Hp * Wp * sizeof *xp);
    for (int c = 0; c < g->C; c++)
        for (int ki = 0; ki < g->KH; ki++)
            for (int kj = 0; kj < g->KW; kj++) {
                const float *src = col + (size_t)((c * g->KH + ki) * g->KW + kj) * P;
                float *dst = xp + (size_t)c * Hp * Wp + (size_t)ki * Wp + kj;
                for (int oy = 0; oy < g->OH; oy++) {
                    float *dr = dst + (size_t)oy * g->SH * Wp;
                    const float *sr = src + oy * g->OW;
                    if (g->SW == 1)
                        add_run(dr, sr, g->OW);
                    else
                        for (int ox = 0; ox < g->OW; ox++)
                            dr[ox * g->SW] += sr[ox];
                }
            }
    for (int c = 0; c < g->C; c++)
        for (int y = 0; y < g->H; y++)
            copy_run(dx + ((size_t)c * g->H + y) * g->W,
                     xp + ((size_t)c * Hp + y + g->PH) * Wp + g->PW, g->W);
}

static size_t in_size(const conv_job *j)
{
    return (size_t)j->g.C * j->g.H * j->g.W;
}

/* The running thread's column matrix, and part p's dW sum after all of
 * them. */
static float *col_of(const conv_job *j)
{
    return j->scratch + (size_t)(j->threads == 1 ? 0 : bsc_host_worker()) * per_thread(&j->g);
}

/* The running thread's padded sample. */
static float *xp_of(const conv_job *j)
{
    return col_of(j) + (j->Q + 1) * j->P;
}

/* Part p's [F, Q + 1] sum: row f is filter f's weight gradient, then its
 * bias gradient. */
static float *acc_of(const conv_job *j, int part)
{
    return j->scratch + (size_t)j->threads * per_thread(&j->g) +
           (size_t)part * j->F * (j->Q + 1);
}

static void forward_part(void *arg, int part, int parts)
{
    const conv_job *j = arg;
    float *col = col_of(j);
    int lo, hi;
    layers_part_range(j->B, part, parts, &lo, &hi);
    for (int b = lo; b < hi; b++) {
        float *y = j->y + (size_t)b * j->F * j->P;
        im2col_sample(&j->g, j->x + (size_t)b * in_size(j), xp_of(j), col);
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
    layers_part_range(j->B, part, parts, &lo, &hi);
    memset(acc, 0, (size_t)j->F * (j->Q + 1) * sizeof *acc);
    /* Row Q of the column matrix: ones, whose products with dout_b are the
     * bias gradient (im2col_sample writes rows [0, Q) only). */
    for (size_t p = 0; p < j->P; p++)
        col[j->Q * j->P + p] = 1.0f;
    size_t n = j->Q + (j->db ? 1 : 0);
    for (int b = lo; b < hi; b++) {
        im2col_sample(&j->g, j->x + (size_t)b * in_size(j), xp_of(j), col);
        bsc_host_sgemm(0, 1, (size_t)j->F, n, j->P, 1.0f, j->dy + (size_t)b * j->F * j->P,
                       j->P, col, j->P, 1.0f, acc, j->Q + 1);
    }
}

static void din_part(void *arg, int part, int parts)
{
    const conv_job *j = arg;
    float *dcol = col_of(j);
    int lo, hi;
    layers_part_range(j->B, part, parts, &lo, &hi);
    for (int b = lo; b < hi; b++) {
        bsc_host_sgemm(1, 0, j->Q, j->P, (size_t)j->F, 1.0f, j->w, j->Q,
                       j->dy + (size_t)b * j->F * j->P, j->P, 0.0f, dcol, j->P);
        col2im_sample(&j->g, dcol, xp_of(j), j->y + (size_t)b * in_size(j));
    }
}

/* data: x, w, bias (w when none), y, scratch */
static void forward_task(void *args, float *const *data)
{
    conv_job j = *(const conv_job *)args;
    j.x = data[0], j.w = data[1], j.bias = data[2], j.y = data[3], j.scratch = data[4];
    layers_run_parts(j.threads, j.parts, forward_part, &j);
}

/* data: x, dy, dw, scratch, db (dw when none); the parts' sums are added
 * in part order. */
static void dw_task(void *args, float *const *data)
{
    conv_job j = *(const conv_job *)args;
    j.x = data[0], j.dy = data[1], j.scratch = data[3];
    j.db = j.has_bias ? data[4] : NULL;
    float *dw = data[2];
    layers_run_parts(j.threads, j.parts, dw_part, &j);
    size_t Q = j.Q;
    for (int f = 0; f < j.F; f++) {
        const float *acc = acc_of(&j, 0) + (size_t)f * (Q + 1);
        memcpy(dw + (size_t)f * Q, acc, Q * sizeof *dw);
        if (j.db)
            j.db[f] = acc[Q];
    }
    for (int p = 1; p < j.parts; p++)
        for (int f = 0; f < j.F; f++) {
            const float *acc = acc_of(&j, p) + (size_t)f * (Q + 1);
            float *row = dw + (size_t)f * Q;
            for (size_t q = 0; q < Q; q++)
                row[q] += acc[q];
            if (j.db)
                j.db[f] += acc[Q];
        }
}

/* data: w, dy, dx, scratch */
static void din_task(void *args, float *const *data)
{
    conv_job j = *(const conv_job *)args;
    j.w = data[0], j.dy = data[1], j.y = data[2], j.scratch = data[3];
    layers_run_parts(j.threads, j.parts, din_part, &j);
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
    j.threads = layers_job_threads(conv_host_scratch, g, (size_t)F, scratch->numel);
    j.parts = layers_parts(j.B, CONV_PARTS);
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
                              const bsc_tensor *db, const bsc_tensor *dx,
                              const bsc_tensor *scratch)
{
    conv_job j = job_of(g, batch, F, Q, P, scratch);
    j.has_bias = db != NULL;
    const bsc_tensor *t[5] = {x, dy, dw, scratch, db ? db : dw};
    bsc_status st = bsc_enqueue_host(ctx, dw_task, &j, sizeof j, 5, t);
    if (st != BSC_OK || !dx)
        return st;
    const bsc_tensor *u[4] = {w, dy, dx, scratch};
    return bsc_enqueue_host(ctx, din_task, &j, sizeof j, 4, u);
}
