/* batchscope layers plugin: parameter-free shape-preserving layers: the
 * activations (relu, leaky_relu, tanh, sigmoid) and flatten.
 *
 * They share one state struct; the activations differ only in a mode number
 * the kernels switch on (cl/layers/layers.cl), flatten only copies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "layers.h"


typedef struct act {
    int mode;
    float slope;
    size_t n;            /* per-sample elements */
    bsc_shape out_shape;
    bsc_context *ctx;
    cl_kernel k_fwd, k_bwd, k_rfwd, k_rbwd;
} act;

static bsc_status act_make(const bsc_layer_config *cfg, int mode, void **self)
{
    bsc_status st = BSC_OK;
    size_t n = layers_numel(&cfg->input);
    if (n == 0 || cfg->input.ndim < 1)
        return layers_shape_fail(cfg, mode == ACT_FLATTEN ? "flatten" : "activation",
                                 "a non-empty");
    double slope = 0.01;
    if (mode == ACT_LEAKY &&
        (st = bsc_opt_double(cfg->options, "negative_slope", 0.01, -1e30, 1e30, &slope)) !=
            BSC_OK)
        return st;
    act *a = calloc(1, sizeof *a);
    if (!a)
        return bsc_fail(BSC_ERR_NOMEM, "activation: out of memory");
    a->mode = mode;
    a->slope = (float)slope;
    a->n = n;
    if (mode == ACT_FLATTEN) {
        int64_t d = (int64_t)n;
        a->out_shape = bsc_shape_make(1, &d);
    } else {
        a->out_shape = cfg->input;
    }
    *self = a;
    return BSC_OK;
}

static bsc_status relu_create(const bsc_layer_config *cfg, void **self)
{
    return act_make(cfg, ACT_RELU, self);
}

static bsc_status leaky_create(const bsc_layer_config *cfg, void **self)
{
    return act_make(cfg, ACT_LEAKY, self);
}

static bsc_status tanh_create(const bsc_layer_config *cfg, void **self)
{
    return act_make(cfg, ACT_TANH, self);
}

static bsc_status sigmoid_create(const bsc_layer_config *cfg, void **self)
{
    return act_make(cfg, ACT_SIGMOID, self);
}

static bsc_status flatten_create(const bsc_layer_config *cfg, void **self)
{
    return act_make(cfg, ACT_FLATTEN, self);
}

static bsc_status act_output_shape(void *self, bsc_shape *out)
{
    *out = ((act *)self)->out_shape;
    return BSC_OK;
}

static bsc_status act_bind(void *self, const bsc_layer_binding *b)
{
    act *a = self;
    bsc_status st;
    if (b->max_batch > (size_t)INT_MAX / a->n)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "batch %zu x %zu elements exceeds the 2^31 "
                        "element index limit", b->max_batch, a->n);
    a->ctx = b->ctx;
    if (a->mode == ACT_FLATTEN)
        return BSC_OK;
    if ((st = layers_kernel(a->ctx, "layers.cl", "activation_forward", &a->k_fwd)) != BSC_OK ||
        (st = layers_kernel(a->ctx, "layers.cl", "activation_backward", &a->k_bwd)) != BSC_OK ||
        (st = layers_kernel(a->ctx, "layers.cl", "activation_rforward", &a->k_rfwd)) != BSC_OK ||
        (st = layers_kernel(a->ctx, "layers.cl", "activation_rbackward", &a->k_rbwd)) != BSC_OK)
        return st;
    return BSC_OK;
}

static bsc_status act_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                              bsc_tensor *out)
{
    act *a = self;
    size_t total = p->batch * a->n;
    if (a->mode == ACT_FLATTEN)
        return layers_copy(a->ctx, in, out, total);
    cl_int xo, yo, n = (cl_int)total, mode = a->mode;
    bsc_status st;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(out, &yo)) != BSC_OK)
        return st;
    bsc_karg k[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(out->mem), BSC_ARG(yo),
                    BSC_ARG(n), BSC_ARG(mode), BSC_ARG(a->slope)};
    return layers_run(a->ctx, a->k_fwd, total, 7, k);
}

static bsc_status act_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                               const bsc_tensor *out, const bsc_tensor *dout,
                               bsc_tensor *din)
{
    act *a = self;
    if (!din)
        return BSC_OK;
    size_t total = p->batch * a->n;
    if (a->mode == ACT_FLATTEN)
        return layers_copy(a->ctx, dout, din, total);
    cl_int xo, yo, dyo, dxo, n = (cl_int)total, mode = a->mode;
    bsc_status st;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(out, &yo)) != BSC_OK ||
        (st = layers_offset(dout, &dyo)) != BSC_OK || (st = layers_offset(din, &dxo)) != BSC_OK)
        return st;
    bsc_karg k[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(out->mem), BSC_ARG(yo),
                    BSC_ARG(dout->mem), BSC_ARG(dyo), BSC_ARG(din->mem), BSC_ARG(dxo),
                    BSC_ARG(n), BSC_ARG(mode), BSC_ARG(a->slope)};
    return layers_run(a->ctx, a->k_bwd, total, 11, k);
}

/* The R-operator: ry = f'(x) rx. A parameter-free layer always gets rin
 * (plugin.h). */
static bsc_status act_r_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                const bsc_tensor *rin, const bsc_tensor *const *v,
                                const bsc_tensor *out, bsc_tensor *rout)
{
    act *a = self;
    (void)v;
    size_t total = p->batch * a->n;
    if (!rin)
        return bsc_fail(BSC_ERR_INTERNAL, "activation: R-forward without R{input}");
    if (a->mode == ACT_FLATTEN)
        return layers_copy(a->ctx, rin, rout, total);
    cl_int xo, yo, rxo, ryo, n = (cl_int)total, mode = a->mode;
    bsc_status st;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(out, &yo)) != BSC_OK ||
        (st = layers_offset(rin, &rxo)) != BSC_OK || (st = layers_offset(rout, &ryo)) != BSC_OK)
        return st;
    bsc_karg k[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(out->mem), BSC_ARG(yo),
                    BSC_ARG(rin->mem), BSC_ARG(rxo), BSC_ARG(rout->mem), BSC_ARG(ryo),
                    BSC_ARG(n), BSC_ARG(mode), BSC_ARG(a->slope)};
    return layers_run(a->ctx, a->k_rfwd, total, 11, k);
}

/* din = f'(x) dout and rdin = f'(x) rdout + f''(x) rin dout in one kernel. */
static bsc_status act_r_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                 const bsc_tensor *rin, const bsc_tensor *const *v,
                                 const bsc_tensor *out, const bsc_tensor *rout,
                                 const bsc_tensor *dout, const bsc_tensor *rdout,
                                 const bsc_tensor *const *hv, bsc_tensor *din, bsc_tensor *rdin)
{
    act *a = self;
    (void)rin;
    (void)v;
    (void)hv;
    size_t total = p->batch * a->n;
    bsc_status st;
    if (a->mode == ACT_FLATTEN) {
        if (din && (st = layers_copy(a->ctx, dout, din, total)) != BSC_OK)
            return st;
        return rdin ? layers_copy(a->ctx, rdout, rdin, total) : BSC_OK;
    }
    if (!din && !rdin)
        return BSC_OK;
    /* An output not wanted, or a dout not given (r_hints: relu and leaky
     * need none without din), still needs a valid buffer argument; the
     * kernel neither writes nor reads it. */
    const bsc_tensor *dx = din ? din : rdin, *rdx = rdin ? rdin : din;
    if (!dout && (din || a->mode == ACT_TANH || a->mode == ACT_SIGMOID))
        return bsc_fail(BSC_ERR_INTERNAL, "activation: R-backward needs dout");
    if (!dout)
        dout = rdout;
    cl_int xo, yo, ryo, dyo, rdyo, dxo, rdxo, n = (cl_int)total, mode = a->mode,
                                              has_dx = din != NULL, has_rdx = rdin != NULL;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(out, &yo)) != BSC_OK ||
        (st = layers_offset(rout, &ryo)) != BSC_OK ||
        (st = layers_offset(dout, &dyo)) != BSC_OK ||
        (st = layers_offset(rdout, &rdyo)) != BSC_OK || (st = layers_offset(dx, &dxo)) != BSC_OK ||
        (st = layers_offset(rdx, &rdxo)) != BSC_OK)
        return st;
    bsc_karg k[] = {BSC_ARG(in->mem),   BSC_ARG(xo),     BSC_ARG(out->mem),  BSC_ARG(yo),
                    BSC_ARG(rout->mem), BSC_ARG(ryo),    BSC_ARG(dout->mem), BSC_ARG(dyo),
                    BSC_ARG(rdout->mem), BSC_ARG(rdyo),  BSC_ARG(dx->mem),   BSC_ARG(dxo),
                    BSC_ARG(has_dx),    BSC_ARG(rdx->mem), BSC_ARG(rdxo),    BSC_ARG(has_rdx),
                    BSC_ARG(n),         BSC_ARG(mode),   BSC_ARG(a->slope)};
    return layers_run(a->ctx, a->k_rbwd, total, 19, k);
}

/* An evaluation forward on host rows (plugin.h), the kernels' formulas. */
static void act_host_forward(void *self, size_t rows, const float *in,
                             const float *const *param, float *out)
{
    const act *a = self;
    (void)param;
    size_t n = rows * a->n;
    switch (a->mode) {
    case ACT_RELU:
        for (size_t i = 0; i < n; i++)
            out[i] = in[i] > 0.0f ? in[i] : 0.0f;
        break;
    case ACT_LEAKY:
        for (size_t i = 0; i < n; i++)
            out[i] = in[i] > 0.0f ? in[i] : a->slope * in[i];
        break;
    case ACT_TANH:
        for (size_t i = 0; i < n; i++)
            out[i] = tanhf(in[i]);
        break;
    case ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            out[i] = 1.0f / (1.0f + expf(-in[i]));
        break;
    default:
        memcpy(out, in, n * sizeof *out);
        break;
    }
}

/* Parameter-free: no n_params, param_spec, workspace_size or
 * per_example_sqnorm (the defaults say "none"), destroy is free(). */
#define ACT_TYPE(id, name, summary, options, create_fn, hints)            \
    BSC_LAYER_TYPE(id, name, summary, options, .create = create_fn,       \
                   .output_shape = act_output_shape, .bind = act_bind,    \
                   .forward = act_forward, .backward = act_backward,      \
                   .r_forward = act_r_forward, .r_backward = act_r_backward, \
                   .r_hints = (hints), .host_forward = act_host_forward)

/* relu'' = leaky'' = 0 and flatten is linear: their R{din} needs no dout;
 * tanh's and sigmoid's do (f'' R{in} dout). */
ACT_TYPE(layers_relu, "relu", "max(x, 0)", BSC_NO_OPTIONS, relu_create,
         BSC_R_DOUT_ONLY_FOR_DIN);
ACT_TYPE(layers_leaky_relu, "leaky_relu", "x > 0 ? x : negative_slope * x",
         BSC_OPTIONS(BSC_OPT("negative_slope", BSC_OPT_FLOAT, "0.01",
                             "slope for x < 0")),
         leaky_create, BSC_R_DOUT_ONLY_FOR_DIN);
ACT_TYPE(layers_tanh, "tanh", "hyperbolic tangent", BSC_NO_OPTIONS, tanh_create, 0);
ACT_TYPE(layers_sigmoid, "sigmoid", "logistic function 1 / (1 + e^-x)", BSC_NO_OPTIONS,
         sigmoid_create, 0);
ACT_TYPE(layers_flatten, "flatten", "reshape each sample to 1-D", BSC_NO_OPTIONS,
         flatten_create, BSC_R_DOUT_ONLY_FOR_DIN);
