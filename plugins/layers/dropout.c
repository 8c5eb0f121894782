/* batchscope layers plugin: inverted dropout (cl/layers/dropout.cl has the mask).
 *
 * Training scales kept activations by 1/(1-p) so that eval is the identity.
 * The mask is stored in the workspace because backward must use exactly the
 * forward's mask (regenerating it would also work, but costs the RNG twice).
 * cl/layers/dropout.cl documents the stream: the host's BSC_RNG_DROPOUT numbers. */
#include <stdlib.h>
#include <string.h>
#include "layers.h"
#include "batchscope/rng.h"

typedef struct dropout {
    double p;
    size_t n;            /* per-sample elements */
    bsc_shape shape;
    int index;
    bsc_context *ctx;
    size_t max_batch;
    bsc_tensor ws;
    cl_kernel k_fwd, k_bwd;
} dropout;

static bsc_status dropout_create(const bsc_layer_config *cfg, void **self)
{
    bsc_status st;
    double p;
    if ((st = bsc_opt_double(cfg->options, "p", 0.5, 0.0, 1.0, &p)) != BSC_OK)
        return st;
    if (p >= 1.0)
        return bsc_node_fail(bsc_node_get(cfg->options, "p"), BSC_ERR_INVALID,
                             "dropout: p must be in [0, 1), got %g", p);
    size_t n = layers_numel(&cfg->input);
    if (n == 0)
        return layers_shape_fail(cfg, "dropout", "a non-empty");
    dropout *d = calloc(1, sizeof *d);
    if (!d)
        return bsc_fail(BSC_ERR_NOMEM, "dropout: out of memory");
    d->p = p;
    d->n = n;
    d->shape = cfg->input;
    d->index = cfg->index;
    *self = d;
    return BSC_OK;
}

static bsc_status dropout_output_shape(void *self, bsc_shape *out)
{
    *out = ((dropout *)self)->shape;
    return BSC_OK;
}

static size_t dropout_workspace_size(void *self, size_t max_batch)
{
    return max_batch * ((dropout *)self)->n;
}

static bsc_status dropout_bind(void *self, const bsc_layer_binding *b)
{
    dropout *d = self;
    bsc_status st;
    size_t worst = b->max_batch * d->n;
    if (worst > (size_t)INT_MAX || b->workspace->offset > (size_t)INT_MAX - worst)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "dropout: batch %zu x %zu elements exceeds the "
                        "2^31 element index limit", b->max_batch, d->n);
    d->ctx = b->ctx;
    d->max_batch = b->max_batch;
    d->ws = *b->workspace;
    if ((st = layers_kernel(d->ctx, "dropout.cl", "dropout_forward", &d->k_fwd)) != BSC_OK ||
        (st = layers_kernel(d->ctx, "dropout.cl", "dropout_backward", &d->k_bwd)) != BSC_OK)
        return st;
    return BSC_OK;
}

static bsc_status dropout_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                  bsc_tensor *out)
{
    dropout *d = self;
    size_t total = p->batch * d->n;
    if (!p->training || d->p == 0.0)
        return layers_copy(d->ctx, in, out, total);
    if (p->batch > d->max_batch)
        return bsc_fail(BSC_ERR_INVALID, "dropout: batch %zu exceeds the bound %zu", p->batch,
                        d->max_batch);
    cl_int xo, yo, mo, n = (cl_int)total;
    float prob = (float)d->p, scale = (float)(1.0 / (1.0 - d->p));
    /* The stream is the step's low 32 bits: masks repeat only after 2^32
     * optimizer steps. */
    cl_uint key0 = (cl_uint)p->seed, key1 = (cl_uint)(p->seed >> 32);
    cl_uint layer = (cl_uint)d->index, stream = (cl_uint)p->step,
            purpose = (cl_uint)BSC_RNG_DROPOUT;
    bsc_status st;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(out, &yo)) != BSC_OK ||
        (st = layers_offset(&d->ws, &mo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(out->mem), BSC_ARG(yo),
                    BSC_ARG(d->ws.mem), BSC_ARG(mo), BSC_ARG(n), BSC_ARG(prob),
                    BSC_ARG(scale), BSC_ARG(key0), BSC_ARG(key1), BSC_ARG(layer),
                    BSC_ARG(stream), BSC_ARG(purpose)};
    return layers_run(d->ctx, d->k_fwd, (total + 3) / 4, 14, a);
}

/* dx = dy * mask (the mask of the last training forward), or a copy where
 * dropout is the identity (eval, or p = 0). */
static bsc_status dropout_apply(void *self, const bsc_pass *p, const bsc_tensor *dout,
                                bsc_tensor *din)
{
    dropout *d = self;
    size_t total = p->batch * d->n;
    if (!p->training || d->p == 0.0)
        return layers_copy(d->ctx, dout, din, total);
    cl_int dyo, mo, dxo, n = (cl_int)total;
    bsc_status st;
    if ((st = layers_offset(dout, &dyo)) != BSC_OK || (st = layers_offset(din, &dxo)) != BSC_OK ||
        (st = layers_offset(&d->ws, &mo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(dout->mem), BSC_ARG(dyo), BSC_ARG(d->ws.mem), BSC_ARG(mo),
                    BSC_ARG(din->mem), BSC_ARG(dxo), BSC_ARG(n)};
    return layers_run(d->ctx, d->k_bwd, total, 7, a);
}

static bsc_status dropout_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                   const bsc_tensor *out, const bsc_tensor *dout,
                                   bsc_tensor *din)
{
    (void)in;
    (void)out;
    return din ? dropout_apply(self, p, dout, din) : BSC_OK;
}

/* The R-operator: with its mask fixed (forward drew it for this pass),
 * dropout is the linear map x -> x * mask, so R{out}, din and R{din} are
 * that map (its own transpose) applied to R{in}, dout and R{dout}. In eval
 * mode -- what the analyses use -- the map is the identity. */
static bsc_status dropout_r_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                    const bsc_tensor *rin, const bsc_tensor *const *v,
                                    const bsc_tensor *out, bsc_tensor *rout)
{
    (void)in;
    (void)v;
    (void)out;
    if (!rin)
        return bsc_fail(BSC_ERR_INTERNAL, "dropout: R-forward without R{input}");
    return dropout_apply(self, p, rin, rout);
}

static bsc_status dropout_r_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
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
    return layers_r_backward_fixed(self, p, dropout_apply, dout, rdout, din, rdin);
}

/* An evaluation forward on host rows (plugin.h): the identity. */
static void dropout_host_forward(void *self, size_t rows, const float *in,
                                 const float *const *param, float *out)
{
    (void)param;
    memcpy(out, in, rows * ((const dropout *)self)->n * sizeof *out);
}

BSC_LAYER_TYPE(layers_dropout, "dropout",
               "inverted dropout with a Philox mask keyed by (seed, layer, step)",
               BSC_OPTIONS(BSC_OPT("p", BSC_OPT_FLOAT, "0.5", "probability of zeroing an element, in [0, 1)")),
               .create = dropout_create,
               .output_shape = dropout_output_shape,
               .workspace_size = dropout_workspace_size,
               .bind = dropout_bind,
               .forward = dropout_forward,
               .host_forward = dropout_host_forward,
               .backward = dropout_backward,
               .r_forward = dropout_r_forward,
               .r_backward = dropout_r_backward,
               .r_hints = BSC_R_DOUT_ONLY_FOR_DIN);
