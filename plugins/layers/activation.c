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

/* The forward formulas of cl/layers/layers.cl on n host floats. */
static void act_apply(int mode, float slope, const float *in, float *out, size_t n)
{
    switch (mode) {
    case ACT_RELU:
        for (size_t i = 0; i < n; i++)
            out[i] = in[i] > 0.0f ? in[i] : 0.0f;
        break;
    case ACT_LEAKY:
        for (size_t i = 0; i < n; i++)
            out[i] = in[i] > 0.0f ? in[i] : slope * in[i];
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
        if (out != in)
            memmove(out, in, n * sizeof *out);
        break;
    }
}

/* And the backward ones: ReLU-like modes read the input, tanh and sigmoid
 * their output. */
static void act_apply_backward(int mode, float slope, const float *restrict x,
                               const float *restrict y, const float *restrict dy,
                               float *restrict dx, size_t n)
{
    /* dy[i] is read whatever x[i] is, so that the compiler may select
     * instead of branch (a branch on the sign mispredicts half the time). */
    switch (mode) {
    case ACT_RELU:
        for (size_t i = 0; i < n; i++) {
            float g = dy[i];
            dx[i] = x[i] > 0.0f ? g : 0.0f;
        }
        break;
    case ACT_LEAKY:
        for (size_t i = 0; i < n; i++) {
            float g = dy[i];
            dx[i] = x[i] > 0.0f ? g : slope * g;
        }
        break;
    case ACT_TANH:
        for (size_t i = 0; i < n; i++)
            dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    default:
        if (dx != dy)
            memmove(dx, dy, n * sizeof *dx);
        break;
    }
}

/* A training step's forward or backward as a host task (host_task.h:
 * bsc_host_elementwise), split over the host threads. */
typedef struct act_job {
    int mode;
    float slope;
    size_t n;
    float *const *data;   /* the task's tensors: in, out (, dout, din) */
} act_job;

/* Below this many elements a part is not worth a thread's hand-over. */
#define ACT_GRAIN 8192

static void act_forward_range(void *p, size_t lo, size_t hi)
{
    const act_job *j = p;
    act_apply(j->mode, j->slope, j->data[0] + lo, j->data[1] + lo, hi - lo);
}

static void act_backward_range(void *p, size_t lo, size_t hi)
{
    const act_job *j = p;
    act_apply_backward(j->mode, j->slope, j->data[0] + lo, j->data[1] + lo, j->data[2] + lo,
                       j->data[3] + lo, hi - lo);
}

static void act_forward_task(void *args, float *const *data)
{
    act_job *j = args;
    j->data = data;
    bsc_host_for(j->n, ACT_GRAIN, act_forward_range, j);
}

static void act_backward_task(void *args, float *const *data)
{
    act_job *j = args;
    j->data = data;
    bsc_host_for(j->n, ACT_GRAIN, act_backward_range, j);
}

static bsc_status act_host_task(const act *a, bsc_host_fn fn, size_t total, size_t n_t,
                                const bsc_tensor *const *t)
{
    if (total == 0)
        return BSC_OK;
    bsc_tensor v[4];
    const bsc_tensor *tp[4];
    for (size_t i = 0; i < n_t; i++) {
        v[i] = *t[i];
        v[i].numel = total;
        tp[i] = &v[i];
    }
    act_job j = {a->mode, a->slope, total, NULL};
    return bsc_enqueue_host(a->ctx, fn, &j, sizeof j, n_t, tp);
}

static bsc_status act_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                              bsc_tensor *out)
{
    act *a = self;
    size_t total = p->batch * a->n;
    if (bsc_host_elementwise(a->ctx))
        return act_host_task(a, act_forward_task, total, 2, (const bsc_tensor *[]){in, out});
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
    if (bsc_host_elementwise(a->ctx))
        return act_host_task(a, act_backward_task, total, 4,
                             (const bsc_tensor *[]){in, out, dout, din});
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
    act_apply(a->mode, a->slope, in, out, rows * a->n);
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
