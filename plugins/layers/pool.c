/* batchscope layers plugin: maxpool2d and avgpool2d over [C, H, W].
 *
 * Max pooling records each window's winner (its index in the H*W plane) in
 * the workspace during forward; backward gives each (b, c) plane to one work
 * item that routes every window's gradient to its winner, which needs no
 * atomics and no per-cell search of the windows. Average pooling
 * needs no workspace: each input cell gathers dout/(KH*KW) of its windows.
 * Where the context's GEMMs run on the host BLAS, max pooling's forward and
 * backward run on the host threads instead (pool_host.c: the same values
 * and winners, faster on a CPU). */
#include <stdlib.h>
#include "layers.h"

typedef struct pool {
    int is_max;
    int host;            /* max pooling on the host threads (pool_host.c) */
    layers_geom g;
    bsc_context *ctx;
    size_t max_batch;
    bsc_tensor ws;
    cl_kernel k_fwd, k_bwd, k_rfwd;
} pool;

static bsc_status pool_make(const bsc_layer_config *cfg, int is_max, void **self)
{
    const char *type = is_max ? "maxpool2d" : "avgpool2d";
    bsc_status st;
    layers_geom g;
    if ((st = layers_geom_parse(cfg, type, 0, 1, &g)) != BSC_OK)
        return st;
    pool *pl = calloc(1, sizeof *pl);
    if (!pl)
        return bsc_fail(BSC_ERR_NOMEM, "%s: out of memory", type);
    pl->is_max = is_max;
    pl->g = g;
    *self = pl;
    return BSC_OK;
}

static bsc_status maxpool_create(const bsc_layer_config *cfg, void **self)
{
    return pool_make(cfg, 1, self);
}

static bsc_status avgpool_create(const bsc_layer_config *cfg, void **self)
{
    return pool_make(cfg, 0, self);
}

static bsc_status pool_output_shape(void *self, bsc_shape *out)
{
    pool *pl = self;
    int64_t dim[3] = {pl->g.C, pl->g.OH, pl->g.OW};
    *out = bsc_shape_make(3, dim);
    return BSC_OK;
}

static size_t pool_workspace_size(void *self, size_t max_batch)
{
    pool *pl = self;
    /* One int per output (the winner), stored in the float workspace. */
    return pl->is_max ? max_batch * (size_t)pl->g.C * pl->g.OH * pl->g.OW : 0;
}

static bsc_status pool_bind(void *self, const bsc_layer_binding *b)
{
    pool *pl = self;
    bsc_status st;
    const char *file = "conv.cl";
    size_t worst = b->max_batch * (size_t)pl->g.C * pl->g.H * pl->g.W;
    if (worst > (size_t)INT_MAX || b->workspace->offset > (size_t)INT_MAX - worst)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "%s: batch %zu exceeds the 2^31 element index "
                        "limit", pl->is_max ? "maxpool2d" : "avgpool2d", b->max_batch);
    pl->ctx = b->ctx;
    pl->max_batch = b->max_batch;
    pl->ws = *b->workspace;
    pl->host = pl->is_max && bsc_gemm_active(pl->ctx) == BSC_GEMM_HOST;
    if ((st = layers_kernel(pl->ctx, file, pl->is_max ? "maxpool_forward" : "avgpool_forward",
                            &pl->k_fwd)) != BSC_OK ||
        (st = layers_kernel(pl->ctx, file, pl->is_max ? "maxpool_backward" : "avgpool_backward",
                            &pl->k_bwd)) != BSC_OK ||
        (pl->is_max &&
         (st = layers_kernel(pl->ctx, file, "maxpool_rforward", &pl->k_rfwd)) != BSC_OK))
        return st;
    return BSC_OK;
}

static bsc_status pool_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                               bsc_tensor *out)
{
    pool *pl = self;
    size_t m = p->batch;
    if (m > pl->max_batch)
        return bsc_fail(BSC_ERR_INVALID, "pooling: batch %zu exceeds the bound %zu", m,
                        pl->max_batch);
    if (pl->host)
        return pool_host_forward(pl->ctx, &pl->g, m, in, out, &pl->ws);
    cl_int xo, yo, ao, BC = (cl_int)(m * (size_t)pl->g.C);
    bsc_status st;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(out, &yo)) != BSC_OK ||
        (pl->is_max && (st = layers_offset(&pl->ws, &ao)) != BSC_OK))
        return st;
    bsc_karg a[17] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(BC), BSC_ARG(pl->g.H),
                      BSC_ARG(pl->g.W)};
    layers_geom_args(&pl->g, a + 5);
    a[13] = BSC_ARG(out->mem);
    a[14] = BSC_ARG(yo);
    int nargs = 15;
    if (pl->is_max) {
        a[15] = BSC_ARG(pl->ws.mem);
        a[16] = BSC_ARG(ao);
        nargs = 17;
    }
    /* maxpool_forward runs one item per output row, avgpool_forward one per
     * output. */
    size_t n = (size_t)BC * pl->g.OH * (pl->is_max ? 1 : (size_t)pl->g.OW);
    return layers_run(pl->ctx, pl->k_fwd, n, nargs, a);
}

/* dx = the pool's transpose applied to dy (the winners of the last forward
 * for max pooling). */
static bsc_status pool_bwd(void *self, const bsc_pass *p, const bsc_tensor *dout,
                           bsc_tensor *din)
{
    pool *pl = self;
    if (pl->host)
        return pool_host_backward(pl->ctx, &pl->g, p->batch, dout, &pl->ws, din);
    cl_int dyo, dxo, ao, BC = (cl_int)(p->batch * (size_t)pl->g.C);
    bsc_status st;
    if ((st = layers_offset(dout, &dyo)) != BSC_OK || (st = layers_offset(din, &dxo)) != BSC_OK ||
        (pl->is_max && (st = layers_offset(&pl->ws, &ao)) != BSC_OK))
        return st;
    bsc_karg a[17] = {BSC_ARG(dout->mem), BSC_ARG(dyo)};
    int i = 2;
    if (pl->is_max) {
        a[i++] = BSC_ARG(pl->ws.mem);
        a[i++] = BSC_ARG(ao);
    }
    a[i++] = BSC_ARG(BC);
    a[i++] = BSC_ARG(pl->g.H);
    a[i++] = BSC_ARG(pl->g.W);
    layers_geom_args(&pl->g, a + i);
    i += 8;
    a[i++] = BSC_ARG(din->mem);
    a[i++] = BSC_ARG(dxo);
    /* maxpool_backward runs one item per plane, avgpool_backward one per cell. */
    size_t n = pl->is_max ? (size_t)BC : (size_t)BC * pl->g.H * pl->g.W;
    return layers_run(pl->ctx, pl->k_bwd, n, i, a);
}

static bsc_status pool_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                const bsc_tensor *out, const bsc_tensor *dout,
                                bsc_tensor *din)
{
    (void)in;
    (void)out;
    return din ? pool_bwd(self, p, dout, din) : BSC_OK;
}

/* The R-operator. Average pooling is linear: R{out} = avgpool(R{in}), and
 * forward on R{in} computes it. Max pooling is linear once its winners are
 * fixed: R{out} gathers R{in} at the winners forward recorded (re-running
 * forward on R{in} would pick R{in}'s own maxima, and overwrite the
 * winners). Backward is the same transpose for dout and R{dout}. */
static bsc_status pool_r_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                 const bsc_tensor *rin, const bsc_tensor *const *v,
                                 const bsc_tensor *out, bsc_tensor *rout)
{
    pool *pl = self;
    (void)in;
    (void)v;
    (void)out;
    if (!rin)
        return bsc_fail(BSC_ERR_INTERNAL, "pooling: R-forward without R{input}");
    if (!pl->is_max)
        return pool_forward(self, p, rin, rout);
    size_t total = p->batch * (size_t)pl->g.C * pl->g.OH * pl->g.OW;
    cl_int rxo, ao, ryo, n = (cl_int)total, HW = pl->g.H * pl->g.W, OHW = pl->g.OH * pl->g.OW;
    bsc_status st;
    if ((st = layers_offset(rin, &rxo)) != BSC_OK || (st = layers_offset(&pl->ws, &ao)) != BSC_OK ||
        (st = layers_offset(rout, &ryo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(rin->mem), BSC_ARG(rxo), BSC_ARG(pl->ws.mem), BSC_ARG(ao),
                    BSC_ARG(n), BSC_ARG(HW), BSC_ARG(OHW), BSC_ARG(rout->mem), BSC_ARG(ryo)};
    return layers_run(pl->ctx, pl->k_rfwd, total, 9, a);
}

static bsc_status pool_r_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                  const bsc_tensor *rin, const bsc_tensor *const *v,
                                  const bsc_tensor *out, const bsc_tensor *rout,
                                  const bsc_tensor *dout, const bsc_tensor *rdout,
                                  const bsc_tensor *const *hv, bsc_tensor *din,
                                  bsc_tensor *rdin)
{
    (void)in;
    (void)rin;
    (void)v;
    (void)out;
    (void)rout;
    (void)hv;
    return layers_r_backward_fixed(self, p, pool_bwd, dout, rdout, din, rdin);
}

/* No parameters: n_params, param_spec and per_example_sqnorm keep their
 * defaults ("none"); destroy is free(). */
#define POOL_OPTIONS                                                                      \
    BSC_OPTIONS(BSC_OPT("kernel_size", BSC_OPT_ANY, "",                                   \
                        "window: an int or [height, width] (required)"),                  \
                BSC_OPT("stride", BSC_OPT_ANY, "",                                        \
                        "step: an int or [height, width] (default: the kernel size)"),    \
                BSC_OPT("padding", BSC_OPT_ANY, "0",                                      \
                        "zeros on each side, at most half the kernel: int or [h, w]"))
#define POOL_TYPE(id, name, summary, create_fn)                                           \
    BSC_LAYER_TYPE(id, name, summary, POOL_OPTIONS, .create = create_fn,                  \
                   .output_shape = pool_output_shape,                                     \
                   .workspace_size = pool_workspace_size, .bind = pool_bind,              \
                   .forward = pool_forward, .backward = pool_backward,                    \
                   .r_forward = pool_r_forward, .r_backward = pool_r_backward,            \
                   .r_hints = BSC_R_DOUT_ONLY_FOR_DIN)

POOL_TYPE(layers_maxpool2d, "maxpool2d", "2-D max pooling", maxpool_create);
POOL_TYPE(layers_avgpool2d, "avgpool2d", "2-D average pooling, padding counted",
          avgpool_create);
