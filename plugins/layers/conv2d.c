/* batchscope layers plugin: conv2d over [C, H, W] images.
 *
 * The whole batch becomes three GEMMs, with P = OH*OW output pixels, N = B*P
 * columns, Q = C*KH*KW weights per filter (cl/layers/conv.cl has the layouts):
 *   forward   colT = im2col_t(x) [Q, N]; ft = W colT [F, N]; out = NCHW(ft) + b
 *   backward  t = pixel-major(dout) [N, F]; col = im2col_pm(x) [N, Q];
 *             dW = t^T col; db = channel sums of dout;
 *             ft = filter-major(dout) [F, N]; dcolT = W^T ft [Q, N];
 *             dx = col2im_t(dcolT)
 * One large GEMM per step suits CLBlast far better than one per sample, and
 * the weight gradient sums over the batch inside the GEMM, in its fixed order.
 *
 * Every product has the form C = X^T Y with X and Y stored K-major, the one
 * form in which CLBlast's tiled Xgemm (see runtime/blas.c) copies none of its
 * three matrices -- provided each has offset 0 in its buffer and its
 * dimensions are whole tiles. Copies of the big operands (col alone is
 * 40M floats for the second conv of pipelines/cnn.yaml) cost as much as the
 * GEMM, so the layer pads its own matrices instead: col rows to CONV_TILE_M
 * floats, filter counts to CONV_TILE_N, colT rows to CONV_TILE_K, zero-filled
 * by the kernels that write them (zero rows add nothing to any sum), and it
 * gives each big matrix its own sub-buffer of the workspace. Only the small
 * weight-shaped matrices are copied, by copy_cols.
 *
 * Why not CLBlast's convgemm (issue 4 asks to measure and pick): with
 * tools/bench/bench_conv, on the two convolutions of pipelines/cnn.yaml at
 * batch 256 (PoCL 3.1 on a 2-core AVX-512 Xeon, CLBlast 1.5.3; 10 interleaved
 * pairs after warm-up, the machine shared with two other training processes,
 * load average 4.1-4.7), median forward times were:
 *   conv 5x5 1->32 on 28x28 p2:   ours 55.5 ms, CLBlastSconvgemm + bias 208 ms
 *                                 (3.7x slower)
 *   conv 5x5 32->64 on 14x14 p2:  ours 170 ms, CLBlastSconvgemm + bias 1370 ms
 *                                 (8.1x slower)
 * (a second run: 4.0x and 8.2x). Absolute times suffer from the load; the
 * ratios are paired, and far from the 15% that would have been worth a
 * change. Both outputs agreed bitwise
 * (convgemm takes NCHW input, the weight as [F, C, KH, KW] -- PyTorch's
 * layout -- and writes NCHW output, cross-correlation mode). From CLBlast's
 * source, its convgemm runs one im2col per sample and waits for each,
 * allocates a fresh column buffer on every call, and multiplies with a kernel
 * derived from XgemmDirect, untuned for PoCL, rather than the tuned tiled
 * Xgemm runtime/blas.c sets up; and it has no backward. So conv2d keeps
 * im2col + GEMM. */
#include <stdlib.h>
#include <string.h>
#include "layers.h"

/* CLBlast's tile sizes for the tuned PoCL Xgemm (MWG, NWG, KWG in
 * runtime/blas.c): dimensions that are multiples of them need no padding
 * copy. Elsewhere they merely pad a little. */
#define CONV_TILE_M 128
#define CONV_TILE_N 64
#define CONV_TILE_K 32
/* Slack per workspace region, in floats, so that each can start on the
 * device's sub-buffer alignment (CL_DEVICE_MEM_BASE_ADDR_ALIGN, 128 bytes on
 * PoCL; up to 4 KiB supported). */
#define CONV_ALIGN_FLOATS 1024

typedef struct conv2d {
    layers_geom g;
    int F, bias;
    size_t P, Q;         /* output pixels per sample, weights per filter */
    size_t Qk, Qc, Qr;   /* Q padded: colT rows, col row length, dcolT rows */
    size_t Fp;           /* F padded: rows of ft, row length of t */
    int host;            /* per sample on the host threads (conv_host.c) */
    int algo;            /* the `algorithm` option: ALGO_* */
    int wino;            /* Winograd on the host threads (conv_wino.c) */
    bsc_context *ctx;
    size_t max_batch;
    bsc_tensor w, b, dw, db, ws;
    /* Workspace regions: big = colT / col / dcolT, mid = ft / t (offset 0 in
     * their sub-buffers when sub = 1), then the small weight-shaped ones. */
    cl_mem sub[2];
    bsc_tensor big, mid, wk, dwc, wr;
    cl_kernel k_im2col_t, k_im2col_pm, k_col2im_t, k_to_nchw, k_to_ft, k_to_pm, k_copy,
        k_chsum;
} conv2d;

/* The `algorithm` option. auto: Winograd where it fits and the GEMMs run on
 * the host BLAS and the layer has at least WINO_MIN_C input channels. */
enum { ALGO_AUTO, ALGO_IM2COL, ALGO_WINOGRAD };
#define WINO_MIN_C 8

static size_t round_up(size_t v, size_t m)
{
    return (v + m - 1) / m * m;
}

static bsc_status conv_create(const bsc_layer_config *cfg, void **self)
{
    bsc_status st;
    layers_geom g;
    long filters;
    int bias;
    static const char *const algos[] = {"auto", "im2col", "winograd", NULL};
    const char *algo;
    if ((st = layers_geom_parse(cfg, "conv2d", 1, 0, &g)) != BSC_OK ||
        (st = bsc_req_long(cfg->options, "filters", 1, INT_MAX, &filters)) != BSC_OK ||
        (st = bsc_opt_bool(cfg->options, "bias", 1, &bias)) != BSC_OK ||
        (st = bsc_opt_string(cfg->options, "algorithm", "auto", algos, &algo)) != BSC_OK)
        return st;
    int a = !strcmp(algo, "im2col") ? ALGO_IM2COL : !strcmp(algo, "winograd") ? ALGO_WINOGRAD
                                                                             : ALGO_AUTO;
    if (a == ALGO_WINOGRAD && !conv_wino_fits(&g))
        return bsc_node_fail(bsc_node_get(cfg->options, "algorithm"), BSC_ERR_INVALID,
                             "conv2d: algorithm winograd needs stride 1 and a kernel of 2 to "
                             "5 per side (this one: kernel %dx%d, stride %dx%d)",
                             g.KH, g.KW, g.SH, g.SW);
    size_t Q = (size_t)g.C * (size_t)g.KH * (size_t)g.KW;
    if ((st = layers_check_count(cfg->options, Q * (size_t)filters, "conv2d weight")) != BSC_OK)
        return st;
    conv2d *c = calloc(1, sizeof *c);
    if (!c)
        return bsc_fail(BSC_ERR_NOMEM, "conv2d: out of memory");
    c->g = g;
    c->algo = a;
    c->F = (int)filters;
    c->bias = bias;
    c->P = (size_t)g.OH * (size_t)g.OW;
    c->Q = Q;
    c->Qk = round_up(Q, CONV_TILE_K);
    c->Qc = round_up(Q, CONV_TILE_M);
    c->Qr = round_up(Q, CONV_TILE_N);
    c->Fp = round_up((size_t)filters, CONV_TILE_N);
    *self = c;
    return BSC_OK;
}

static bsc_status conv_output_shape(void *self, bsc_shape *out)
{
    conv2d *c = self;
    int64_t dim[3] = {c->F, c->g.OH, c->g.OW};
    *out = bsc_shape_make(3, dim);
    return BSC_OK;
}

static int conv_n_params(void *self)
{
    return ((conv2d *)self)->bias ? 2 : 1;
}

static bsc_status conv_param_spec(void *self, int i, bsc_param_spec *out)
{
    conv2d *c = self;
    if (i < 0 || i >= conv_n_params(self))
        return bsc_fail(BSC_ERR_INVALID, "conv2d: no parameter %d", i);
    bsc_param_spec s = {0};
    int64_t F = c->F;
    if (i == 0) {
        int64_t dim[4] = {F, c->g.C, c->g.KH, c->g.KW};
        s.name = "weight";
        s.shape = bsc_shape_make(4, dim);
        s.role = BSC_ROLE_WEIGHT;
        s.filter_axis = 0;
    } else {
        s.name = "bias";
        s.shape = bsc_shape_make(1, &F);
        s.role = BSC_ROLE_BIAS;
        s.filter_axis = -1;
    }
    s.init = BSC_INIT_TORCH;
    s.fan_in = (int64_t)c->Q;
    s.fan_out = F * c->g.KH * c->g.KW;   /* torch's fan_out for conv weights */
    *out = s;
    return BSC_OK;
}

/* Floats of each region for max_batch rows. big holds colT [Qk, N], col
 * [N, Qc] or dcolT [Qr, N] in turn (Qc is the largest); mid holds ft [Fp, N]
 * or t [N, Fp]; the small ones hold W padded for forward [Fp, Qk], dW padded
 * [Fp, Qc] and W padded for the input gradient [Fp, Qr]. */
static void conv_regions(const conv2d *c, size_t max_batch, size_t n[5])
{
    size_t N = max_batch * c->P;
    size_t host = conv_host_scratch(&c->g, (size_t)c->F, bsc_host_threads());
    if (conv_wino_fits(&c->g) && c->algo != ALGO_IM2COL) {
        size_t wino = conv_wino_scratch(&c->g, (size_t)c->F, bsc_host_threads());
        host = wino > host ? wino : host;
    }
    n[0] = N * c->Qc > host ? N * c->Qc : host;
    n[1] = N * c->Fp;
    n[2] = c->Fp * c->Qk;
    n[3] = c->Fp * c->Qc;
    n[4] = c->Fp * c->Qr;
}

static size_t conv_workspace_size(void *self, size_t max_batch)
{
    size_t n[5], total = 0;
    conv_regions(self, max_batch, n);
    for (int i = 0; i < 5; i++)
        total += round_up(n[i], CONV_ALIGN_FLOATS);
    return total + CONV_ALIGN_FLOATS;
}

static bsc_tensor flat_view(const bsc_tensor *base, size_t offset, size_t n)
{
    int64_t d = (int64_t)n;
    bsc_shape s = bsc_shape_make(1, &d);
    return bsc_tensor_view(base, offset, &s);
}

/* A tensor over a whole sub-buffer, offset 0, that the layer owns (the
 * cl_mem is released in destroy, so the tensor itself does not own it). */
static bsc_tensor sub_tensor(cl_mem mem, size_t n)
{
    bsc_tensor t = {0};
    t.mem = mem;
    t.numel = n;
    t.shape = bsc_shape_make(1, (int64_t[]){(int64_t)n});
    t.dtype = BSC_F32;
    return t;
}

/* Lays the regions out in the workspace. The two big ones become sub-buffers
 * when the device's alignment allows; otherwise they stay views at an
 * offset, which is correct but lets CLBlast copy them. */
static bsc_status conv_layout(conv2d *c)
{
    size_t n[5], off[5];
    conv_regions(c, c->max_batch, n);
    cl_uint align_bits = 0;
    cl_int err = clGetDeviceInfo(c->ctx->info.device, CL_DEVICE_MEM_BASE_ADDR_ALIGN,
                                 sizeof align_bits, &align_bits, NULL);
    size_t align = err == CL_SUCCESS && align_bits ? align_bits / 32 : 0;
    int sub = align > 0 && align <= CONV_ALIGN_FLOATS && CONV_ALIGN_FLOATS % align == 0;
    size_t at = c->ws.offset;
    if (sub)
        at = round_up(at, align);
    for (int i = 0; i < 5; i++) {
        off[i] = at - c->ws.offset;
        at += round_up(n[i], CONV_ALIGN_FLOATS);
    }
    c->big = flat_view(&c->ws, off[0], n[0]);
    c->mid = flat_view(&c->ws, off[1], n[1]);
    c->wk = flat_view(&c->ws, off[2], n[2]);
    c->dwc = flat_view(&c->ws, off[3], n[3]);
    c->wr = flat_view(&c->ws, off[4], n[4]);
    if (!sub)
        return BSC_OK;
    bsc_tensor *t[2] = {&c->big, &c->mid};
    for (int i = 0; i < 2; i++) {
        cl_buffer_region r = {t[i]->offset * sizeof(float), n[i] * sizeof(float)};
        c->sub[i] = clCreateSubBuffer(c->ws.mem, CL_MEM_READ_WRITE,
                                      CL_BUFFER_CREATE_TYPE_REGION, &r, &err);
        if (err != CL_SUCCESS)
            return bsc_cl_fail(err, "conv2d: clCreateSubBuffer of the workspace");
        *t[i] = sub_tensor(c->sub[i], n[i]);
    }
    return BSC_OK;
}

static bsc_status conv_bind(void *self, const bsc_layer_binding *b)
{
    conv2d *c = self;
    bsc_status st;
    size_t in_n = (size_t)c->g.C * c->g.H * c->g.W, out_n = (size_t)c->F * c->P;
    size_t worst = conv_workspace_size(c, b->max_batch);
    if (b->max_batch * in_n > worst)
        worst = b->max_batch * in_n;
    if (b->max_batch * out_n > worst)
        worst = b->max_batch * out_n;
    if (worst > (size_t)INT_MAX || b->workspace->offset > (size_t)INT_MAX - worst)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "conv2d: batch %zu needs %zu workspace floats, "
                        "more than the 2^31 the kernels can index", b->max_batch, worst);
    c->ctx = b->ctx;
    c->max_batch = b->max_batch;
    /* The padding serves CLBlast's tiles only: the host BLAS takes any
     * size, and padded it did up to 10x the work (the first conv's weight
     * gradient, Q = 25 padded to 128 and F = 32 to 64). The workspace was
     * sized for the padded matrices, an upper bound. */
    if (bsc_gemm_active(c->ctx) == BSC_GEMM_HOST) {
        c->Qk = c->Qc = c->Qr = c->Q;
        c->Fp = (size_t)c->F;
    }
    /* With the host BLAS the whole convolution runs per sample on the host
     * threads (conv_host.c); $BATCHSCOPE_CONV_HOST=0 keeps the batched
     * OpenCL layout kernels around the host GEMMs (for measuring). */
    const char *env = getenv("BATCHSCOPE_CONV_HOST");
    c->host = bsc_gemm_active(c->ctx) == BSC_GEMM_HOST && !(env && !strcmp(env, "0"));
    if (c->algo == ALGO_WINOGRAD && !c->host)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "conv2d: algorithm winograd runs on the host "
                        "BLAS only (gemm: host, on a CPU device with native kernels); this "
                        "context's GEMMs run on CLBlast");
    c->wino = c->host && conv_wino_fits(&c->g) &&
              (c->algo == ALGO_WINOGRAD || (c->algo == ALGO_AUTO && c->g.C >= WINO_MIN_C));
    c->w = *b->params[0];
    c->dw = *b->grads[0];
    if (c->bias) {
        c->b = *b->params[1];
        c->db = *b->grads[1];
    }
    c->ws = *b->workspace;
    if ((st = conv_layout(c)) != BSC_OK)
        return st;
    if ((st = layers_kernel(c->ctx, "conv.cl", "im2col_t", &c->k_im2col_t)) != BSC_OK ||
        (st = layers_kernel(c->ctx, "conv.cl", "im2col_pm", &c->k_im2col_pm)) != BSC_OK ||
        (st = layers_kernel(c->ctx, "conv.cl", "col2im_t", &c->k_col2im_t)) != BSC_OK ||
        (st = layers_kernel(c->ctx, "conv.cl", "ft_to_nchw_bias", &c->k_to_nchw)) != BSC_OK ||
        (st = layers_kernel(c->ctx, "conv.cl", "nchw_to_ft", &c->k_to_ft)) != BSC_OK ||
        (st = layers_kernel(c->ctx, "conv.cl", "nchw_to_pm", &c->k_to_pm)) != BSC_OK ||
        (st = layers_kernel(c->ctx, "conv.cl", "copy_cols", &c->k_copy)) != BSC_OK ||
        (st = layers_kernel(c->ctx, "layers.cl", "channel_sum", &c->k_chsum)) != BSC_OK)
        return st;
    return BSC_OK;
}

/* A view of the first n floats of a region. */
static bsc_tensor conv_take(const bsc_tensor *region, size_t n)
{
    return flat_view(region, 0, n);
}

/* im2col_t / im2col_pm over `batch` samples of x into z (row length or
 * leading dimension ld); rows is im2col_t's zero-filled row count. */
static bsc_status conv_im2col(conv2d *c, cl_kernel k, size_t batch, const bsc_tensor *x,
                              const bsc_tensor *z, size_t ld, size_t rows, size_t items)
{
    cl_int xo, zo, B = (cl_int)batch, L = (cl_int)ld, R = (cl_int)rows;
    bsc_status st;
    if ((st = layers_offset(x, &xo)) != BSC_OK || (st = layers_offset(z, &zo)) != BSC_OK)
        return st;
    bsc_karg args[19] = {BSC_ARG(x->mem), BSC_ARG(xo), BSC_ARG(B), BSC_ARG(c->g.C),
                         BSC_ARG(c->g.H), BSC_ARG(c->g.W)};
    layers_geom_args(&c->g, args + 6);
    args[14] = BSC_ARG(z->mem);
    args[15] = BSC_ARG(zo);
    args[16] = BSC_ARG(L);
    args[17] = BSC_ARG(R);
    return layers_run(c->ctx, k, items, k == c->k_im2col_t ? 18 : 17, args);
}

/* dst [drows, dcols] = src [srows, ncopy] (row length sld), zero elsewhere. */
static bsc_status conv_copy(conv2d *c, const bsc_tensor *src, size_t sld, size_t srows,
                            size_t ncopy, bsc_tensor *dst, size_t drows, size_t dcols)
{
    cl_int so, dso, L = (cl_int)sld, R = (cl_int)srows, NC = (cl_int)ncopy,
                    DR = (cl_int)drows, DC = (cl_int)dcols;
    bsc_status st;
    if ((st = layers_offset(src, &so)) != BSC_OK || (st = layers_offset(dst, &dso)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(src->mem), BSC_ARG(so), BSC_ARG(L), BSC_ARG(R), BSC_ARG(NC),
                    BSC_ARG(DR), BSC_ARG(DC), BSC_ARG(dst->mem), BSC_ARG(dso)};
    return layers_run(c->ctx, c->k_copy, drows * dcols, 9, a);
}

/* dout [B, F, P] into ft [Fp, N] (k_to_ft: leading dimension ld = N, rows
 * past F zeroed) or t [N, Fp] (k_to_pm: row length ld = Fp). */
static bsc_status conv_relayout(conv2d *c, cl_kernel k, size_t batch, const bsc_tensor *dout,
                                const bsc_tensor *z, size_t ld, size_t items)
{
    cl_int yo, zo, B = (cl_int)batch, F = c->F, P = (cl_int)c->P, L = (cl_int)ld,
                   R = (cl_int)c->Fp;
    bsc_status st;
    if ((st = layers_offset(dout, &yo)) != BSC_OK || (st = layers_offset(z, &zo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(dout->mem), BSC_ARG(yo), BSC_ARG(B), BSC_ARG(F), BSC_ARG(P),
                    BSC_ARG(z->mem), BSC_ARG(zo), BSC_ARG(L), BSC_ARG(R)};
    return layers_run(c->ctx, k, items, k == c->k_to_ft ? 9 : 8, a);
}

/* ft [Fp, N] = W colT over `batch` samples of x, with W (or any
 * weight-shaped tensor: the R-operator's direction) padded into wk when
 * the tiles need it; beta = 1 adds to ft. */
static bsc_status conv_fwd_gemm(conv2d *c, size_t m, const bsc_tensor *x, const bsc_tensor *w,
                                float beta)
{
    size_t N = m * c->P;
    bsc_tensor colT = conv_take(&c->big, c->Qk * N), ft = conv_take(&c->mid, c->Fp * N);
    const bsc_tensor *wk = w;
    bsc_status st;
    if ((st = conv_im2col(c, c->k_im2col_t, m, x, &colT, N, c->Qk, c->Qk * m)) != BSC_OK)
        return st;
    if (c->Qk != c->Q || c->Fp != (size_t)c->F) {
        if ((st = conv_copy(c, w, c->Q, (size_t)c->F, c->Q, &c->wk, c->Fp, c->Qk)) != BSC_OK)
            return st;
        wk = &c->wk;
    }
    return bsc_gemm(c->ctx, 0, 0, c->Fp, N, c->Qk, 1.0f, wk, c->Qk, &colT, N, beta, &ft, N);
}

/* out = NCHW(ft) + bias (bias NULL: none). */
static bsc_status conv_to_nchw(conv2d *c, size_t m, const bsc_tensor *bias, bsc_tensor *out)
{
    size_t N = m * c->P;
    bsc_tensor ft = conv_take(&c->mid, c->Fp * N);
    cl_int fto, bo = 0, yo, L = (cl_int)N, B = (cl_int)m, F = c->F, P = (cl_int)c->P,
                    hb = bias != NULL;
    bsc_status st;
    if ((st = layers_offset(&ft, &fto)) != BSC_OK || (st = layers_offset(out, &yo)) != BSC_OK ||
        (bias && (st = layers_offset(bias, &bo)) != BSC_OK))
        return st;
    cl_mem bm = bias ? bias->mem : ft.mem;   /* any valid buffer when unused */
    bsc_karg a[] = {BSC_ARG(ft.mem), BSC_ARG(fto), BSC_ARG(L), BSC_ARG(B), BSC_ARG(F),
                    BSC_ARG(P), BSC_ARG(bm), BSC_ARG(bo), BSC_ARG(hb),
                    BSC_ARG(out->mem), BSC_ARG(yo)};
    return layers_run(c->ctx, c->k_to_nchw, m * (size_t)c->F, 11, a);
}

static bsc_status conv_check_batch(const conv2d *c, size_t m)
{
    if (m > c->max_batch)
        return bsc_fail(BSC_ERR_INVALID, "conv2d: batch %zu exceeds the bound %zu", m,
                        c->max_batch);
    return BSC_OK;
}

static bsc_status conv_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                               bsc_tensor *out)
{
    conv2d *c = self;
    size_t m = p->batch;
    bsc_status st;
    if (m == 0)
        return BSC_OK;
    if ((st = conv_check_batch(c, m)) != BSC_OK)
        return st;
    if (c->wino)
        return conv_wino_forward(c->ctx, &c->g, m, c->F, in, &c->w, c->bias ? &c->b : NULL,
                                 out, &c->big);
    if (c->host)
        return conv_host_forward(c->ctx, &c->g, m, c->F, c->Q, c->P, in, &c->w,
                                 c->bias ? &c->b : NULL, out, &c->big);
    if ((st = conv_fwd_gemm(c, m, in, &c->w, 0.0f)) != BSC_OK)
        return st;
    return conv_to_nchw(c, m, c->bias ? &c->b : NULL, out);
}

/* Where the weight-gradient GEMM writes: dst itself when the shapes need
 * no padding, else the padded dwc (conv_wgrad_finish copies it out). */
static int conv_wgrad_direct(const conv2d *c)
{
    return c->Qc == c->Q && c->Fp == (size_t)c->F;
}

/* The weight-gradient product dy^T im2col(x) [F, Q] over `batch` samples,
 * written (beta 0) or added (beta 1) to dst, or to the padded dwc. */
static bsc_status conv_wgrad_gemm(conv2d *c, size_t m, const bsc_tensor *dy,
                                  const bsc_tensor *x, float beta, bsc_tensor *dst)
{
    size_t N = m * c->P;
    bsc_tensor col = conv_take(&c->big, N * c->Qc), t = conv_take(&c->mid, N * c->Fp);
    bsc_status st;
    if ((st = conv_relayout(c, c->k_to_pm, m, dy, &t, c->Fp, N)) != BSC_OK ||
        (st = conv_im2col(c, c->k_im2col_pm, m, x, &col, c->Qc, 0, N)) != BSC_OK)
        return st;
    bsc_tensor *target = conv_wgrad_direct(c) ? dst : &c->dwc;
    return bsc_gemm(c->ctx, 1, 0, c->Fp, c->Qc, N, 1.0f, &t, c->Fp, &col, c->Qc, beta, target,
                    c->Qc);
}

static bsc_status conv_wgrad_finish(conv2d *c, bsc_tensor *dst)
{
    if (conv_wgrad_direct(c))
        return BSC_OK;
    return conv_copy(c, &c->dwc, c->Qc, (size_t)c->F, c->Q, dst, (size_t)c->F, c->Q);
}

/* db[f] = sum of dy over the batch and pixels of filter f. */
static bsc_status conv_bias_grad(conv2d *c, size_t m, const bsc_tensor *dy,
                                 const bsc_tensor *db)
{
    return layers_channel_sum(c->ctx, c->k_chsum, dy, m, (size_t)c->F, c->P, db);
}

/* dcolT [Qr, N] = w^T ft(dy), written (beta 0) or added (beta 1); K = Fp.
 * It takes the big region, so any weight-gradient GEMM must come first
 * (in-order queue). */
static bsc_status conv_dcol_gemm(conv2d *c, size_t m, const bsc_tensor *dy,
                                 const bsc_tensor *w, float beta)
{
    size_t N = m * c->P;
    bsc_tensor ft = conv_take(&c->mid, c->Fp * N), dcolT = conv_take(&c->big, c->Qr * N);
    const bsc_tensor *wr = w;
    bsc_status st;
    if ((st = conv_relayout(c, c->k_to_ft, m, dy, &ft, N, m * c->Fp)) != BSC_OK)
        return st;
    if (c->Qr != c->Q || c->Fp != (size_t)c->F) {
        if ((st = conv_copy(c, w, c->Q, (size_t)c->F, c->Q, &c->wr, c->Fp, c->Qr)) != BSC_OK)
            return st;
        wr = &c->wr;
    }
    return bsc_gemm(c->ctx, 1, 0, c->Qr, N, c->Fp, 1.0f, wr, c->Qr, &ft, N, beta, &dcolT, N);
}

/* dx = col2im(dcolT). */
static bsc_status conv_col2im(conv2d *c, size_t m, bsc_tensor *dx)
{
    size_t N = m * c->P;
    bsc_tensor dcolT = conv_take(&c->big, c->Qr * N);
    cl_int co, dxo, L = (cl_int)N, B = (cl_int)m;
    bsc_status st;
    if ((st = layers_offset(&dcolT, &co)) != BSC_OK || (st = layers_offset(dx, &dxo)) != BSC_OK)
        return st;
    bsc_karg a[17] = {BSC_ARG(dcolT.mem), BSC_ARG(co), BSC_ARG(L), BSC_ARG(B),
                      BSC_ARG(c->g.C), BSC_ARG(c->g.H), BSC_ARG(c->g.W)};
    layers_geom_args(&c->g, a + 7);
    a[15] = BSC_ARG(dx->mem);
    a[16] = BSC_ARG(dxo);
    return layers_run(c->ctx, c->k_col2im_t, m * (size_t)c->g.C, 17, a);
}

static bsc_status conv_zero_grads(conv2d *c, const bsc_tensor *dw, const bsc_tensor *db)
{
    bsc_tensor w = *dw;
    bsc_status st = bsc_tensor_fill(c->ctx, &w, 0.0f);
    if (st != BSC_OK || !c->bias)
        return st;
    bsc_tensor b = *db;
    return bsc_tensor_fill(c->ctx, &b, 0.0f);
}

static bsc_status conv_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                const bsc_tensor *out, const bsc_tensor *dout,
                                bsc_tensor *din)
{
    conv2d *c = self;
    size_t m = p->batch;
    bsc_status st;
    (void)out;
    if (m == 0)
        return conv_zero_grads(c, &c->dw, &c->db);
    if (c->wino)
        return conv_wino_backward(c->ctx, &c->g, m, c->F, in, &c->w, dout, &c->dw,
                                  c->bias ? &c->db : NULL, din, &c->big);
    if (c->host)
        return conv_host_backward(c->ctx, &c->g, m, c->F, c->Q, c->P, in, &c->w, dout, &c->dw,
                                  c->bias ? &c->db : NULL, din, &c->big);
    if ((st = conv_wgrad_gemm(c, m, dout, in, 0.0f, &c->dw)) != BSC_OK ||
        (st = conv_wgrad_finish(c, &c->dw)) != BSC_OK ||
        (c->bias && (st = conv_bias_grad(c, m, dout, &c->db)) != BSC_OK))
        return st;
    if (!din)
        return BSC_OK;
    /* The weight-gradient GEMM has consumed t and col (in-order queue), so
     * ft and dcolT reuse their room. */
    if ((st = conv_dcol_gemm(c, m, dout, &c->w, 0.0f)) != BSC_OK)
        return st;
    return conv_col2im(c, m, din);
}

/* The R-operator, with V, vb this layer's part of the direction (conv is
 * bilinear in input and weights, like dense), on the batched im2col + GEMM
 * path whatever path forward and backward take (it keeps no state between
 * the two):
 *   R{out} = conv(in, V) + conv(R{in}, W) + vb
 *   R{dW} = dW-product(R{dout}, in) + dW-product(dout, R{in}),
 *   R{db} = channel sums of R{dout},
 *   R{din} = col2im(W^T ft(R{dout}) + V^T ft(dout)).
 * The second terms of each are GEMMs with beta = 1 into the first's
 * result; without R{in} (the first trained layer) its terms vanish. */
static bsc_status conv_r_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                 const bsc_tensor *rin, const bsc_tensor *const *v,
                                 const bsc_tensor *out, bsc_tensor *rout)
{
    conv2d *c = self;
    size_t m = p->batch;
    bsc_status st;
    (void)out;
    if (m == 0)
        return BSC_OK;
    if ((st = conv_check_batch(c, m)) != BSC_OK ||
        (st = conv_fwd_gemm(c, m, in, v[0], 0.0f)) != BSC_OK ||
        (rin && (st = conv_fwd_gemm(c, m, rin, &c->w, 1.0f)) != BSC_OK))
        return st;
    return conv_to_nchw(c, m, c->bias ? v[1] : NULL, rout);
}

static bsc_status conv_r_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                  const bsc_tensor *rin, const bsc_tensor *const *v,
                                  const bsc_tensor *out, const bsc_tensor *rout,
                                  const bsc_tensor *dout, const bsc_tensor *rdout,
                                  const bsc_tensor *const *hv, bsc_tensor *din,
                                  bsc_tensor *rdin)
{
    conv2d *c = self;
    size_t m = p->batch;
    bsc_status st;
    (void)out;
    (void)rout;
    if (m == 0)
        return conv_zero_grads(c, hv[0], c->bias ? hv[1] : NULL);
    bsc_tensor hw = *hv[0];
    if ((st = conv_wgrad_gemm(c, m, rdout, in, 0.0f, &hw)) != BSC_OK ||
        (rin && (st = conv_wgrad_gemm(c, m, dout, rin, 1.0f, &hw)) != BSC_OK) ||
        (st = conv_wgrad_finish(c, &hw)) != BSC_OK ||
        (c->bias && (st = conv_bias_grad(c, m, rdout, hv[1])) != BSC_OK))
        return st;
    if (din && ((st = conv_dcol_gemm(c, m, dout, &c->w, 0.0f)) != BSC_OK ||
                (st = conv_col2im(c, m, din)) != BSC_OK))
        return st;
    if (rdin && ((st = conv_dcol_gemm(c, m, rdout, &c->w, 0.0f)) != BSC_OK ||
                 (st = conv_dcol_gemm(c, m, dout, v[0], 1.0f)) != BSC_OK ||
                 (st = conv_col2im(c, m, rdin)) != BSC_OK))
        return st;
    return BSC_OK;
}

static void conv_destroy(void *self)
{
    conv2d *c = self;
    for (int i = 0; i < 2; i++)
        if (c->sub[i])
            clReleaseMemObject(c->sub[i]);
    free(c);
}

BSC_LAYER_TYPE(layers_conv2d, "conv2d",
               "2-D convolution over [C, H, W] via im2col + GEMM or Winograd",
               BSC_OPTIONS(BSC_OPT("filters", BSC_OPT_INT, "", "output channels (required)"),
                           BSC_OPT("kernel_size", BSC_OPT_ANY, "",
                                   "window: an int or [height, width] (required)"),
                           BSC_OPT("stride", BSC_OPT_ANY, "1", "step: an int or [height, width]"),
                           BSC_OPT("padding", BSC_OPT_ANY, "0",
                                   "zeros on each side: an int or [height, width]"),
                           BSC_OPT("bias", BSC_OPT_BOOL, "true", "add a learned bias per filter"),
                           BSC_OPT("algorithm", BSC_OPT_STRING, "auto",
                                   "auto, im2col or winograd (stride 1, kernel 2-5, host BLAS "
                                   "only); auto: winograd where it fits and there are 8 or "
                                   "more input channels")),
               .create = conv_create,
               .output_shape = conv_output_shape,
               .n_params = conv_n_params,
               .param_spec = conv_param_spec,
               .workspace_size = conv_workspace_size,
               .bind = conv_bind,
               .forward = conv_forward,
               .backward = conv_backward,
               .destroy = conv_destroy,
               .linear_in_params = layers_linear_in_params,
               .r_forward = conv_r_forward,
               .r_backward = conv_r_backward,
               .r_hints = BSC_R_DOUT_ONLY_FOR_DIN_AT_FIRST);
