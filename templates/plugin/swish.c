/* Layer `swish`: y = x * sigmoid(beta * x) (Ramachandran et al. 2017), with
 * its own OpenCL kernels (swish.cl, embedded into the module at build time).
 *
 * A parameter-free, shape-preserving layer needs only create, forward and
 * backward (bind here, to build its kernels once): output_shape, n_params,
 * workspace_size and per_example_sqnorm keep plugin.h's defaults, and
 * destroy is free(). The optional host_forward (ABI 2.1) lets evaluations
 * on a CPU run the layer on the host threads with its neighbours instead
 * of as a kernel of its own (README, Performance on a CPU). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "batchscope/batchscope.h"

/* The text of an embedded .cl file by base name, NULL for any other: written
 * by batchscope_add_plugin(... CL swish.cl) in CMakeLists.txt, or by the
 * Makefile's embed rule. */
const char *example_cl_text(const char *file);

typedef struct swish {
    float beta;
    size_t n;              /* per-sample elements */
    bsc_context *ctx;
    cl_kernel fwd, bwd;    /* owned by the context */
} swish;

static bsc_status swish_create(const bsc_layer_config *cfg, void **self)
{
    double beta;
    bsc_status st = bsc_opt_double(cfg->options, "beta", 1.0, -100.0, 100.0, &beta);
    if (st != BSC_OK)
        return st;
    size_t n = bsc_shape_numel(&cfg->input);
    if (n == 0)
        return bsc_fail(BSC_ERR_INVALID, "layer %d (swish): empty input shape", cfg->index);
    swish *s = calloc(1, sizeof *s);
    if (!s)
        return bsc_fail(BSC_ERR_NOMEM, "swish: out of memory");
    s->beta = (float)beta;
    s->n = n;
    *self = s;
    return BSC_OK;
}

static bsc_status build(swish *s, const char *kernel, cl_kernel *out)
{
    const char *source = example_cl_text("swish.cl");
    if (!source)
        return bsc_fail(BSC_ERR_INTERNAL, "swish: swish.cl is not embedded in this module");
    /* Built once per context; the binary is cached on disk like batchscope's own. */
    return bsc_kernel_from_source(s->ctx, "swish.cl", source, NULL, kernel, out);
}

static bsc_status swish_bind(void *self, const bsc_layer_binding *b)
{
    swish *s = self;
    bsc_status st;
    /* The kernels index with int: check once here, not in every step. */
    if (b->max_batch > (size_t)INT_MAX / s->n)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "swish: batch %zu x %zu elements exceeds the "
                        "2^31 element index limit", b->max_batch, s->n);
    s->ctx = b->ctx;
    if ((st = build(s, "swish_forward", &s->fwd)) != BSC_OK)
        return st;
    return build(s, "swish_backward", &s->bwd);
}

/* Offsets of views into larger buffers must fit the kernels' int too. */
static bsc_status offset(const bsc_tensor *t, cl_int *out)
{
    if (t->offset + t->numel > (size_t)INT_MAX)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "swish: tensor offset %zu beyond int range",
                        t->offset);
    *out = (cl_int)t->offset;
    return BSC_OK;
}

static bsc_status swish_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                bsc_tensor *out)
{
    swish *s = self;
    size_t total = p->batch * s->n;
    cl_int xo, yo, n = (cl_int)total;
    bsc_status st;
    if (total == 0)
        return BSC_OK;   /* an empty batch is legal, a zero global size is not */
    if ((st = offset(in, &xo)) != BSC_OK || (st = offset(out, &yo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(out->mem), BSC_ARG(yo),
                    BSC_ARG(n), BSC_ARG(s->beta)};
    return bsc_launch(p->ctx, s->fwd, 6, a, 1, &total, NULL);
}

static bsc_status swish_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                 const bsc_tensor *out, const bsc_tensor *dout,
                                 bsc_tensor *din)
{
    swish *s = self;
    size_t total = p->batch * s->n;
    cl_int xo, dyo, dxo, n = (cl_int)total;
    bsc_status st;
    (void)out;
    /* No parameters, so nothing to do when the input gradient is not wanted. */
    if (!din || total == 0)
        return BSC_OK;
    if ((st = offset(in, &xo)) != BSC_OK || (st = offset(dout, &dyo)) != BSC_OK ||
        (st = offset(din, &dxo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(dout->mem), BSC_ARG(dyo),
                    BSC_ARG(din->mem), BSC_ARG(dxo), BSC_ARG(n), BSC_ARG(s->beta)};
    return bsc_launch(p->ctx, s->bwd, 8, a, 1, &total, NULL);
}

/* The evaluation forward on rows in host memory (plugin.h): the kernel's
 * formula in C, on the calling thread. gradcheck compares it with
 * swish_forward where the host would call it. */
static void swish_host_forward(void *self, size_t rows, const float *in,
                               const float *const *param, float *out)
{
    const swish *s = self;
    (void)param;
    for (size_t i = 0; i < rows * s->n; i++)
        out[i] = in[i] / (1.0f + expf(-s->beta * in[i]));
}

BSC_LAYER_TYPE(example_swish, "swish", "x * sigmoid(beta * x), with its own OpenCL kernels",
               BSC_OPTIONS(BSC_OPT("beta", BSC_OPT_FLOAT, "1.0",
                                   "slope of the sigmoid gate (1: SiLU)")),
               .create = swish_create, .bind = swish_bind, .forward = swish_forward,
               .backward = swish_backward, .host_forward = swish_host_forward);
