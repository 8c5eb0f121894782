/* conv2d by Winograd's minimal filtering on the host threads, for stride-1
 * convolutions with kernels of 2 to 5 per side, on contexts whose GEMMs run
 * on the host BLAS (conv2d.c picks it; `algorithm` option).
 *
 * Every tile is 6 x 6 input pixels and gives mh x mw outputs, mh = 7 - KH,
 * mw = 7 - KW: F(2x2, 5x5) for cnn.yaml's second convolution, F(4x4, 3x3)
 * for a 3 x 3 kernel. In the transformed domain a convolution is 36
 * independent matrix products, one per point xi of the tile:
 *   forward   M[xi]^T [T, F] = V[xi] [T, C] U[xi]^T,
 *             U = G w G^T (per filter and channel), V = B^T d B (per tile and
 *             channel), y tile = A^T M A (+ bias);
 *   backward  dM = A dy A^T (dy tile zero past the output),
 *             dU[xi] += dM[xi] V[xi], dw = G^T dU G,
 *             dV[xi] = dM[xi]^T U[xi], dd = B dV B^T, added onto the
 *             overlapping input tiles;
 * the backward pass is the exact adjoint of the forward one. For F(2x2,
 * 5x5) the products take 36 multiply-adds per tile where im2col takes 100 (4
 * outputs x 25), 2.8x fewer; for F(4x4, 3x3), 36 against 144. T counts the
 * tiles of a chunk of samples: the batch is cut into up to WINO_PARTS parts
 * by its size alone (never by the thread count), the host threads take
 * parts, and each part goes through its samples a chunk at a time so that
 * the chunk's transformed data stays in cache. dU and the bias gradient sum
 * per part and the parts' sums are added in part order: the same bits
 * whatever BATCHSCOPE_BLAS_THREADS says.
 *
 * The matrices come from the interpolation points 0, 1, -1, 2, -2 and
 * infinity (Toom-Cook; Lavin & Gray, "Fast algorithms for convolutional
 * neural networks", 2016), computed here for any m and r with m + r - 1 = 6.
 * B^T and A^T have small integer entries, so the data transforms round only
 * in their sums; G holds fractions (1/4, 1/6, 1/12, 1/24), rounded to float
 * once. Against a float64 direct convolution the outputs differ by about
 * 1e-6 of their magnitude, 3-10x im2col's difference (test_layers).
 *
 * The transforms are separable, out = L in R^T applied to 36 planes of
 * values, and run as long vector loops over the planes (wino_sep), cloned
 * for AVX-512 and AVX2 where the compiler can (target_clones: each element
 * sees the same operations in the same order in every clone, so a machine
 * gives the same bits whichever clone it runs, FMA contraction aside). */
#include <stddef.h>
#include <string.h>
#include "layers.h"

#define ALPHA 6           /* tile side */
#define XI (ALPHA * ALPHA) /* points per tile */
#define WINO_PARTS 8
#define WINO_CHUNK_TILES 150 /* tiles a chunk aims at (whole samples) */
#define SEP_BLOCK 128


int conv_wino_fits(const layers_geom *g)
{
    return g->SH == 1 && g->SW == 1 && g->KH >= 2 && g->KH <= 5 && g->KW >= 2 && g->KW <= 5;
}

/* The sizes a job works with. */
typedef struct wino_dims {
    int mh, mw;        /* outputs per tile */
    int th, tw;        /* tiles per sample */
    int Hp, Wp;        /* padded sample: th mh + KH - 1 by tw mw + KW - 1 */
    int ns;            /* samples per chunk */
    size_t tps;        /* tiles per sample */
    size_t cmax;       /* most tiles in a chunk */
} wino_dims;

static wino_dims dims_of(const layers_geom *g)
{
    wino_dims d;
    d.mh = ALPHA + 1 - g->KH;
    d.mw = ALPHA + 1 - g->KW;
    d.th = (g->OH + d.mh - 1) / d.mh;
    d.tw = (g->OW + d.mw - 1) / d.mw;
    d.Hp = d.th * d.mh + g->KH - 1;
    d.Wp = d.tw * d.mw + g->KW - 1;
    d.tps = (size_t)d.th * d.tw;
    d.ns = (int)(WINO_CHUNK_TILES / d.tps);
    if (d.ns < 1)
        d.ns = 1;
    d.cmax = (size_t)d.ns * d.tps;
    return d;
}

/* One thread's floats: the padded sample, the chunk's transformed input
 * (V, later dV) [36][T][C], its
 * products [36][F][T] (M or dM) and its output tiles [mh][mw][F][T]. */
static size_t per_thread(const layers_geom *g, size_t F)
{
    wino_dims d = dims_of(g);
    size_t C = (size_t)g->C;
    return C * d.Hp * d.Wp + XI * C * d.cmax + XI * F * d.cmax +
           (size_t)d.mh * d.mw * F * d.cmax;
}

/* Shared: U [36][F][C], then w as [KH][KW][F][C] (later dw so), then per
 * part its dU [36][F][C] and bias gradient [F]. */
static size_t shared_floats(const layers_geom *g, size_t F)
{
    size_t FC = F * g->C;
    return XI * FC + (size_t)g->KH * g->KW * FC + WINO_PARTS * (XI * FC + F);
}

size_t conv_wino_scratch(const layers_geom *g, size_t F, int threads)
{
    return shared_floats(g, F) + (size_t)threads * per_thread(g, F);
}

/* ------------------------------------------------------------- matrices */

typedef struct wino_mats {
    float BT[XI], B[XI];               /* B^T [6][6] and its transpose */
    float ATh[ALPHA * 5], Ah[ALPHA * 5]; /* A^T [mh][6], A [6][mh] */
    float ATw[ALPHA * 5], Aw[ALPHA * 5];
    float Gh[ALPHA * 5], GTh[ALPHA * 5]; /* G [6][KH], G^T [KH][6] */
    float Gw[ALPHA * 5], GTw[ALPHA * 5];
} wino_mats;

static const double points[ALPHA - 1] = {0, 1, -1, 2, -2};

/* Coefficients (x^0 first) of prod (x - p_l) over the finite points l other
 * than `skip` (-1: all of them). */
static void poly_of(int skip, double *coef)
{
    double c[ALPHA] = {1};
    int deg = 0;
    for (int l = 0; l < ALPHA - 1; l++) {
        if (l == skip)
            continue;
        for (int i = deg + 1; i > 0; i--)
            c[i] = c[i - 1] - points[l] * c[i];
        c[0] = -points[l] * c[0];
        deg++;
    }
    memcpy(coef, c, sizeof c);
}

/* A^T [m][6]: row i holds p_j^i, and 1 at infinity for the last row. */
static void a_t(int m, float *at, float *a)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ALPHA; j++) {
            double v = 1;
            if (j == ALPHA - 1)
                v = i == m - 1;
            else
                for (int e = 0; e < i; e++)
                    v *= points[j];
            at[i * ALPHA + j] = (float)v;
            a[j * m + i] = (float)v;
        }
}

/* G [6][r]: row j holds p_j^k / prod_{l != j} (p_j - p_l), infinity's row
 * picks the last tap. */
static void g_of(int r, float *g, float *gt)
{
    for (int j = 0; j < ALPHA; j++) {
        double f = 1;
        for (int l = 0; j < ALPHA - 1 && l < ALPHA - 1; l++)
            if (l != j)
                f *= points[j] - points[l];
        for (int k = 0; k < r; k++) {
            double v;
            if (j == ALPHA - 1) {
                v = k == r - 1;
            } else {
                v = 1;
                for (int e = 0; e < k; e++)
                    v *= points[j];
                v /= f;
            }
            g[j * r + k] = (float)v;
            gt[k * ALPHA + j] = (float)v;
        }
    }
}

static void mats_of(const layers_geom *g, wino_mats *w)
{
    /* B = C, the columns of which are the interpolation polynomials:
     * prod_{l != j} (x - p_l) for the finite points, prod_l (x - p_l) for
     * infinity; B^T's row j is column j. */
    for (int j = 0; j < ALPHA; j++) {
        double coef[ALPHA];
        poly_of(j == ALPHA - 1 ? -1 : j, coef);
        for (int i = 0; i < ALPHA; i++) {
            w->BT[j * ALPHA + i] = (float)coef[i];
            w->B[i * ALPHA + j] = (float)coef[i];
        }
    }
    a_t(ALPHA + 1 - g->KH, w->ATh, w->Ah);
    a_t(ALPHA + 1 - g->KW, w->ATw, w->Aw);
    g_of(g->KH, w->Gh, w->GTh);
    g_of(g->KW, w->Gw, w->GTw);
}

/* ------------------------------------------------------- the transforms */

/* The vector helpers are inlined even at -O0: called out of line from a
 * clone for another target, a vector return value would cross two calling
 * conventions (the ABI change -Wpsabi warns of). */
#define ALWAYS_INLINE __attribute__((always_inline))

/* 16 floats: one AVX-512 register, two AVX2 ones, four SSE ones (GCC's
 * generic vectors); loads and stores through memcpy, unaligned. Only this
 * file's static functions pass them (-Wno-psabi: GCC warns that their
 * calling convention would differ between targets). */
typedef float vf16 __attribute__((vector_size(64)));
#define VL 16

static inline ALWAYS_INLINE vf16 vload(const float *p)
{
    vf16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline ALWAYS_INLINE void vstore(float *p, vf16 v)
{
    memcpy(p, &v, sizeof v);
}

/* out_u[k] = sum_p M[u][p] in_p[k] for u < nu, k < nb: row p of in at in +
 * p istride, row u of out at out + u ostride, M [nu][np], both at most 6.
 * 16 elements at a time with the column's np inputs in registers (the loops
 * run to the constant 6 so that the compiler unrolls them), zero
 * coefficients skipped (B^T is 22 of 36 nonzero); the elements past the
 * last whole vector take the same sums one at a time. */
static inline void combine(const float *M, int nu, int np, const float *in, size_t istride,
                           float *out, size_t ostride, size_t nb)
{
    size_t nv16 = nb / VL * VL;
    for (size_t k = 0; k < nv16; k += VL) {
        vf16 x[ALPHA] = {{0}};
#pragma GCC unroll 6
        for (int p = 0; p < ALPHA; p++)
            if (p < np)
                x[p] = vload(in + (size_t)p * istride + k);
#pragma GCC unroll 6
        for (int u = 0; u < ALPHA; u++) {
            if (u >= nu)
                break;
            vf16 acc = {0};
#pragma GCC unroll 6
            for (int p = 0; p < ALPHA; p++)
                if (p < np && M[u * np + p] != 0.0f)
                    acc += M[u * np + p] * x[p];
            vstore(out + (size_t)u * ostride + k, acc);
        }
    }
    for (size_t k = nv16; k < nb; k++)
        for (int u = 0; u < nu; u++) {
            float acc = 0.0f;
            for (int p = 0; p < np; p++)
                if (M[u * np + p] != 0.0f)
                    acc += M[u * np + p] * in[(size_t)p * istride + k];
            out[(size_t)u * ostride + k] = acc;
        }
}

/* out[u][v][n] = sum_p sum_q L[u][p] R[v][q] in[p][q][n] for n < N: plane
 * (p, q) of in at in + (p nq + q) is, plane (u, v) of out at out + (u nv +
 * v) os. L is [nu][np], R [nv][nq], all sides at most 6. Two passes of
 * combine over blocks of SEP_BLOCK elements: e[u][q] = sum_p L[u][p]
 * in[p][q], then out[u][v] = sum_q R[v][q] e[u][q]. */
BSC_HOST_CLONES
static void wino_sep(const float *L, int nu, int np, const float *R, int nv, int nq,
                     const float *in, size_t is, float *out, size_t os, size_t N)
{
    float e[XI * SEP_BLOCK];
    for (size_t n0 = 0; n0 < N; n0 += SEP_BLOCK) {
        size_t nb = N - n0 < SEP_BLOCK ? N - n0 : SEP_BLOCK;
        for (int q = 0; q < nq; q++)
            combine(L, nu, np, in + (size_t)q * is + n0, (size_t)nq * is, e + q * SEP_BLOCK,
                    (size_t)nq * SEP_BLOCK, nb);
        for (int u = 0; u < nu; u++)
            combine(R, nv, nq, e + (size_t)u * nq * SEP_BLOCK, SEP_BLOCK,
                    out + (size_t)u * nv * os + n0, os, nb);
    }
}

/* 8 floats: one AVX2 register (Zen 4 runs AVX-512 at the same rate of
 * floats per cycle), for the tiles' channels. */
typedef float vf8 __attribute__((vector_size(32)));
#define TL 8

static inline ALWAYS_INLINE vf8 vload8(const float *p)
{
    vf8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline ALWAYS_INLINE void vstore8(float *p, vf8 v)
{
    memcpy(p, &v, sizeof v);
}

/* One tile, all its C channels side by side: out[u][v] = sum_k sum_l
 * M[u][k] M[v][l] in[k][l] (or +=, with `add`), in[k][l] at in + k irs +
 * l ics and out[u][v] at out + u ors + v ocs, M [6][6]. Sums over k first,
 * then over l, 8 channels at a time in registers; the channels past the
 * last 8 one at a time, the same sums. With M = B^T it takes a tile of the
 * channels-last padded sample to V's 36 planes (input_transform); with M =
 * B, from dV's planes back onto the tile, added (its adjoint). */
BSC_HOST_CLONES
static void tile_6x6(const float *M, const float *in, size_t irs, size_t ics, float *out,
                     size_t ors, size_t ocs, size_t C, int add)
{
    size_t c0 = 0;
    for (; c0 + TL <= C; c0 += TL) {
        vf8 e[ALPHA][ALPHA];
#pragma GCC unroll 6
        for (int l = 0; l < ALPHA; l++) {
            vf8 x[ALPHA];
#pragma GCC unroll 6
            for (int k = 0; k < ALPHA; k++)
                x[k] = vload8(in + k * irs + l * ics + c0);
#pragma GCC unroll 6
            for (int u = 0; u < ALPHA; u++) {
                vf8 acc = {0};
#pragma GCC unroll 6
                for (int k = 0; k < ALPHA; k++)
                    if (M[u * ALPHA + k] != 0.0f)
                        acc += M[u * ALPHA + k] * x[k];
                e[u][l] = acc;
            }
        }
#pragma GCC unroll 6
        for (int u = 0; u < ALPHA; u++)
#pragma GCC unroll 6
            for (int v = 0; v < ALPHA; v++) {
                vf8 acc = {0};
#pragma GCC unroll 6
                for (int l = 0; l < ALPHA; l++)
                    if (M[v * ALPHA + l] != 0.0f)
                        acc += M[v * ALPHA + l] * e[u][l];
                float *o = out + u * ors + v * ocs + c0;
                vstore8(o, add ? vload8(o) + acc : acc);
            }
    }
    for (; c0 < C; c0++) {
        float e[ALPHA][ALPHA];
        for (int l = 0; l < ALPHA; l++)
            for (int u = 0; u < ALPHA; u++) {
                float acc = 0.0f;
                for (int k = 0; k < ALPHA; k++)
                    if (M[u * ALPHA + k] != 0.0f)
                        acc += M[u * ALPHA + k] * in[k * irs + l * ics + c0];
                e[u][l] = acc;
            }
        for (int u = 0; u < ALPHA; u++)
            for (int v = 0; v < ALPHA; v++) {
                float acc = 0.0f;
                for (int l = 0; l < ALPHA; l++)
                    if (M[v * ALPHA + l] != 0.0f)
                        acc += M[v * ALPHA + l] * e[u][l];
                float *o = out + u * ors + v * ocs + c0;
                *o = add ? *o + acc : acc;
            }
    }
}

/* ------------------------------------------------------------------ jobs */

typedef struct wino_job {
    layers_geom g;
    int B, F, parts, threads, has_bias, has_dx;
    wino_dims d;
    /* set inside the task */
    const float *x, *dy;
    float *y, *dx, *scratch;
    const float *bias;
    wino_mats m;
} wino_job;

/* The job travels as the task's arguments without its matrices (the task
 * computes them). */
#define JOB_ARGS offsetof(wino_job, m)
_Static_assert(offsetof(wino_job, m) <= BSC_HOST_TASK_MAX_ARGS, "wino_job too large");

static size_t fc_of(const wino_job *j)
{
    return (size_t)j->F * j->g.C;
}

static float *u_of(const wino_job *j)
{
    return j->scratch;
}

static float *wt_of(const wino_job *j)
{
    return j->scratch + XI * fc_of(j);
}

static float *acc_of(const wino_job *j, int part)
{
    return wt_of(j) + (size_t)j->g.KH * j->g.KW * fc_of(j) + (size_t)part * (XI * fc_of(j) + j->F);
}

/* The running thread's buffers. */
typedef struct wino_bufs {
    float *xp, *tv, *prod, *tiles;
} wino_bufs;

static wino_bufs bufs_of(const wino_job *j)
{
    size_t C = (size_t)j->g.C, F = (size_t)j->F;
    float *p = j->scratch + shared_floats(&j->g, F) +
               (size_t)(j->threads == 1 ? 0 : bsc_host_worker()) * per_thread(&j->g, F);
    wino_bufs b;
    b.xp = p;
    b.tv = b.xp + C * j->d.Hp * j->d.Wp;
    b.prod = b.tv + XI * C * j->d.cmax;
    b.tiles = b.prod + XI * F * j->d.cmax;
    return b;
}

/* xp [Hp][Wp][C], channels last: x_b [C][H][W] at (PH, PW) in zeros. The
 * tiles' channels then lie side by side, so that gathering a tile and
 * adding it back are runs of C floats. */
static void pad_sample(const wino_job *j, const float *restrict x, float *restrict xp)
{
    const layers_geom *g = &j->g;
    size_t C = (size_t)g->C, Wp = (size_t)j->d.Wp;
    memset(xp, 0, (size_t)j->d.Hp * Wp * C * sizeof *xp);
    for (int y = 0; y < g->H; y++) {
        float *row = xp + ((size_t)(y + g->PH) * Wp + g->PW) * C;
        for (int xx = 0; xx < g->W; xx++)
            for (size_t c = 0; c < C; c++)
                row[xx * C + c] = x[(c * g->H + y) * g->W + xx];
    }
}

/* V [36][T][C] = B^T d B of samples [b0, b0 + ns), tile by tile from each
 * padded sample. */
static void input_transform(const wino_job *j, const wino_bufs *w, int b0, int ns)
{
    const layers_geom *g = &j->g;
    const wino_dims *d = &j->d;
    size_t C = (size_t)g->C, T = (size_t)ns * d->tps, rs = (size_t)d->Wp * C;
    for (int s = 0; s < ns; s++) {
        pad_sample(j, j->x + (size_t)(b0 + s) * C * g->H * g->W, w->xp);
        for (int ty = 0; ty < d->th; ty++)
            for (int tx = 0; tx < d->tw; tx++)
                tile_6x6(j->m.BT, w->xp + (size_t)ty * d->mh * rs + (size_t)tx * d->mw * C, rs,
                         C, w->tv + (s * d->tps + (size_t)ty * d->tw + tx) * C,
                         ALPHA * T * C, T * C, C, 0);
    }
}

static void forward_part(void *arg, int part, int parts)
{
    const wino_job *j = arg;
    const layers_geom *g = &j->g;
    const wino_dims *d = &j->d;
    wino_bufs w = bufs_of(j);
    size_t C = (size_t)g->C, F = (size_t)j->F;
    int lo, hi;
    layers_part_range(j->B, part, parts, &lo, &hi);
    for (int b0 = lo; b0 < hi; b0 += d->ns) {
        int ns = hi - b0 < d->ns ? hi - b0 : d->ns;
        size_t T = (size_t)ns * d->tps;
        input_transform(j, &w, b0, ns);
        /* M[xi]^T [T, F] = V[xi] U[xi]^T, U^T held as [C, F]: OpenBLAS's
         * small-matrix kernels take this at 95-99 GFLOP/s on one Zen 4
         * core, M = U V^T at 63-74 (T of 49-245, F 64, C 32). */
        for (int xi = 0; xi < XI; xi++)
            bsc_host_sgemm(0, 0, T, F, C, 1.0f, w.tv + xi * C * T, C, u_of(j) + xi * F * C, F,
                           0.0f, w.prod + xi * F * T, F);
        wino_sep(j->m.ATh, d->mh, ALPHA, j->m.ATw, d->mw, ALPHA, w.prod, F * T, w.tiles, F * T,
                 F * T);
        /* Output pixel (ty mh + a, tx mw + b) from tile (ty, tx) of plane
         * (a, b), [T][F]. */
        size_t P = (size_t)g->OH * g->OW;
        for (int s = 0; s < ns; s++) {
            float *yb = j->y + (size_t)(b0 + s) * F * P;
            for (int ty = 0, oy = 0; ty < d->th; ty++)
                for (int a = 0; a < d->mh && oy < g->OH; a++, oy++)
                    for (int tx = 0, ox = 0; tx < d->tw; tx++)
                        for (int b = 0; b < d->mw && ox < g->OW; b++, ox++) {
                            const float *src = w.tiles + (size_t)(a * d->mw + b) * F * T +
                                               (s * d->tps + (size_t)ty * d->tw + tx) * F;
                            float *dst = yb + (size_t)oy * g->OW + ox;
                            for (size_t f = 0; f < F; f++)
                                dst[f * P] = src[f] + (j->has_bias ? j->bias[f] : 0.0f);
                        }
        }
    }
}

static void backward_part(void *arg, int part, int parts)
{
    const wino_job *j = arg;
    const layers_geom *g = &j->g;
    const wino_dims *d = &j->d;
    wino_bufs w = bufs_of(j);
    size_t C = (size_t)g->C, F = (size_t)j->F, P = (size_t)g->OH * g->OW;
    float *du = acc_of(j, part), *db = du + XI * F * C;
    int lo, hi;
    layers_part_range(j->B, part, parts, &lo, &hi);
    memset(du, 0, (XI * F * C + F) * sizeof *du);
    for (int b0 = lo; b0 < hi; b0 += d->ns) {
        int ns = hi - b0 < d->ns ? hi - b0 : d->ns;
        size_t T = (size_t)ns * d->tps;
        /* dy's tiles [mh][mw][F][T], zero past the output (the forward's
         * scatter, reversed); the bias gradient sums dy in pixel order. */
        for (int s = 0; s < ns; s++)
            for (size_t f = 0; f < F; f++) {
                const float *dyb = j->dy + ((size_t)(b0 + s) * F + f) * P;
                float *tf = w.tiles + f * T + s * d->tps;
                float sum = 0.0f;
                for (size_t p = 0; p < P; p++)
                    sum += dyb[p];
                db[f] += sum;
                for (int ty = 0, oy = 0; ty < d->th; ty++)
                    for (int a = 0; a < d->mh; a++, oy++)
                        for (int b = 0; b < d->mw; b++) {
                            float *dst = tf + (size_t)(a * d->mw + b) * F * T +
                                         (size_t)ty * d->tw;
                            const float *dyrow = dyb + (size_t)oy * g->OW;
                            int tx = 0;
                            for (int ox = b; oy < g->OH && ox < g->OW; tx++, ox += d->mw)
                                dst[tx] = dyrow[ox];
                            for (; tx < d->tw; tx++)
                                dst[tx] = 0.0f;
                        }
            }
        /* dM = A dy A^T */
        wino_sep(j->m.Ah, ALPHA, d->mh, j->m.Aw, ALPHA, d->mw, w.tiles, F * T, w.prod, F * T,
                 F * T);
        input_transform(j, &w, b0, ns);
        for (int xi = 0; xi < XI; xi++)
            bsc_host_sgemm(0, 0, F, C, T, 1.0f, w.prod + xi * F * T, T, w.tv + xi * C * T, C,
                           1.0f, du + xi * F * C, C);
        if (!j->has_dx)
            continue;
        /* dV = dM^T U into tv (V is spent); each tile's B dV B^T added where
         * input_transform took the tile from, into a padded sample whose
         * inside is dx_b. */
        for (int xi = 0; xi < XI; xi++)
            bsc_host_sgemm(1, 0, T, C, F, 1.0f, w.prod + xi * F * T, T, u_of(j) + xi * F * C,
                           C, 0.0f, w.tv + xi * C * T, C);
        size_t rs = (size_t)d->Wp * C;
        for (int s = 0; s < ns; s++) {
            memset(w.xp, 0, (size_t)d->Hp * rs * sizeof *w.xp);
            for (int ty = 0; ty < d->th; ty++)
                for (int tx = 0; tx < d->tw; tx++)
                    tile_6x6(j->m.B, w.tv + (s * d->tps + (size_t)ty * d->tw + tx) * C,
                             ALPHA * T * C, T * C,
                             w.xp + (size_t)ty * d->mh * rs + (size_t)tx * d->mw * C, rs, C, C,
                             1);
            float *dxb = j->dx + (size_t)(b0 + s) * C * g->H * g->W;
            for (int y = 0; y < g->H; y++) {
                const float *row = w.xp + ((size_t)(y + g->PH) * d->Wp + g->PW) * C;
                for (int xx = 0; xx < g->W; xx++)
                    for (size_t c = 0; c < C; c++)
                        dxb[(c * g->H + y) * g->W + xx] = row[xx * C + c];
            }
        }
    }
}

/* U [36][F][C] = G w G^T, w [F][C][KH][KW] first laid out [KH][KW][F][C];
 * with `cf`, U^T [36][C][F] from w laid out [KH][KW][C][F]. */
static void weight_transform(const wino_job *j, const float *wsrc, int cf)
{
    size_t FC = fc_of(j), KK = (size_t)j->g.KH * j->g.KW, C = (size_t)j->g.C;
    float *wt = wt_of(j);
    for (size_t fc = 0; fc < FC; fc++) {
        size_t to = cf ? fc % C * j->F + fc / C : fc;
        for (size_t k = 0; k < KK; k++)
            wt[k * FC + to] = wsrc[fc * KK + k];
    }
    wino_sep(j->m.Gh, ALPHA, j->g.KH, j->m.Gw, ALPHA, j->g.KW, wt, FC, u_of(j), FC, FC);
}

/* data: x, w, bias (w when none), y, scratch */
static void forward_task(void *args, float *const *data)
{
    wino_job j;
    memcpy(&j, args, JOB_ARGS);
    j.x = data[0], j.bias = data[2], j.y = data[3], j.scratch = data[4];
    mats_of(&j.g, &j.m);
    weight_transform(&j, data[1], 1);
    layers_run_parts(j.threads, j.parts, forward_part, &j);
}

/* data: x, w, dy, dw, scratch, then db and dx where wanted */
static void backward_task(void *args, float *const *data)
{
    wino_job j;
    memcpy(&j, args, JOB_ARGS);
    j.x = data[0], j.dy = data[2], j.scratch = data[4];
    float *dw = data[3], *db = j.has_bias ? data[5] : NULL;
    j.dx = j.has_dx ? data[5 + j.has_bias] : NULL;
    mats_of(&j.g, &j.m);
    weight_transform(&j, data[1], 0);
    layers_run_parts(j.threads, j.parts, backward_part, &j);
    /* Parts' sums in part order, then dw = G^T dU G into wt's room and out
     * to dw's [F][C][KH][KW]. */
    size_t FC = fc_of(&j), KK = (size_t)j.g.KH * j.g.KW, n = XI * FC + j.F;
    float *sum = acc_of(&j, 0);
    for (int p = 1; p < j.parts; p++) {
        const float *a = acc_of(&j, p);
        for (size_t i = 0; i < n; i++)
            sum[i] += a[i];
    }
    float *wt = wt_of(&j);
    wino_sep(j.m.GTh, j.g.KH, ALPHA, j.m.GTw, j.g.KW, ALPHA, sum, FC, wt, FC, FC);
    for (size_t fc = 0; fc < FC; fc++)
        for (size_t k = 0; k < KK; k++)
            dw[fc * KK + k] = wt[k * FC + fc];
    if (db)
        memcpy(db, sum + XI * FC, (size_t)j.F * sizeof *db);
}

static wino_job job_of(const layers_geom *g, size_t batch, int F, const bsc_tensor *scratch)
{
    wino_job j;
    memset(&j, 0, sizeof j);
    j.g = *g;
    j.B = (int)batch;
    j.F = F;
    j.d = dims_of(g);
    j.threads = layers_job_threads(conv_wino_scratch, g, (size_t)F, scratch->numel);
    j.parts = layers_parts(j.B, WINO_PARTS);
    return j;
}

bsc_status conv_wino_forward(bsc_context *ctx, const layers_geom *g, size_t batch, int F,
                             const bsc_tensor *x, const bsc_tensor *w, const bsc_tensor *bias,
                             const bsc_tensor *y, const bsc_tensor *scratch)
{
    wino_job j = job_of(g, batch, F, scratch);
    j.has_bias = bias != NULL;
    const bsc_tensor *t[5] = {x, w, bias ? bias : w, y, scratch};
    return bsc_enqueue_host(ctx, forward_task, &j, JOB_ARGS, 5, t);
}

bsc_status conv_wino_backward(bsc_context *ctx, const layers_geom *g, size_t batch, int F,
                              const bsc_tensor *x, const bsc_tensor *w, const bsc_tensor *dy,
                              const bsc_tensor *dw, const bsc_tensor *db, const bsc_tensor *dx,
                              const bsc_tensor *scratch)
{
    wino_job j = job_of(g, batch, F, scratch);
    j.has_bias = db != NULL;
    j.has_dx = dx != NULL;
    const bsc_tensor *t[7] = {x, w, dy, dw, scratch};
    size_t n = 5;
    if (db)
        t[n++] = db;
    if (dx)
        t[n++] = dx;
    return bsc_enqueue_host(ctx, backward_task, &j, JOB_ARGS, n, t);
}
