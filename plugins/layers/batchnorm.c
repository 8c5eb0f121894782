/* batchscope layers plugin: batch normalization (torch's BatchNorm1d on [F],
 * BatchNorm2d on [C, H, W]).
 *
 * Training normalizes with the batch's mean and biased variance and moves
 * the running statistics (STATE tensors) toward the batch's mean and
 * unbiased variance; eval normalizes with the running statistics. Both save
 * the statistics they used in the workspace, so that backward matches the
 * forward it follows. */
#include <stdlib.h>
#include "layers.h"

typedef struct batchnorm {
    int C, S;            /* channels, elements per channel per sample */
    double momentum, eps;
    bsc_shape shape;
    bsc_context *ctx;
    size_t max_batch;
    bsc_tensor gamma, beta, rmean, rvar, dgamma, dbeta, ws;
    cl_kernel k_train, k_eval, k_apply, k_reduce, k_input, k_rfwd, k_rinput;
} batchnorm;

static bsc_status bn_create(const bsc_layer_config *cfg, void **self)
{
    bsc_status st;
    size_t n = layers_numel(&cfg->input);
    if ((cfg->input.ndim != 1 && cfg->input.ndim != 3) || n == 0 || n > (size_t)INT_MAX)
        return layers_shape_fail(cfg, "batchnorm", "a 1-D [F] or 3-D [C, H, W]");
    double momentum, eps;
    if ((st = bsc_opt_double(cfg->options, "momentum", 0.1, 0.0, 1.0, &momentum)) != BSC_OK ||
        (st = bsc_opt_double(cfg->options, "eps", 1e-5, 0.0, 1e30, &eps)) != BSC_OK)
        return st;
    if (eps <= 0.0)
        return bsc_node_fail(bsc_node_get(cfg->options, "eps"), BSC_ERR_INVALID,
                             "batchnorm: eps must be positive");
    batchnorm *bn = calloc(1, sizeof *bn);
    if (!bn)
        return bsc_fail(BSC_ERR_NOMEM, "batchnorm: out of memory");
    bn->C = (int)cfg->input.dim[0];
    bn->S = (int)(n / (size_t)bn->C);
    bn->momentum = momentum;
    bn->eps = eps;
    bn->shape = cfg->input;
    *self = bn;
    return BSC_OK;
}

static bsc_status bn_output_shape(void *self, bsc_shape *out)
{
    *out = ((batchnorm *)self)->shape;
    return BSC_OK;
}

static int bn_n_params(void *self)
{
    (void)self;
    return 4;
}

static bsc_status bn_param_spec(void *self, int i, bsc_param_spec *out)
{
    static const char *const names[4] = {"weight", "bias", "running_mean", "running_var"};
    static const bsc_param_role roles[4] = {BSC_ROLE_NORM, BSC_ROLE_NORM, BSC_ROLE_STATE,
                                            BSC_ROLE_STATE};
    static const bsc_init_kind inits[4] = {BSC_INIT_ONES, BSC_INIT_ZEROS, BSC_INIT_ZEROS,
                                           BSC_INIT_ONES};
    batchnorm *bn = self;
    if (i < 0 || i >= 4)
        return bsc_fail(BSC_ERR_INVALID, "batchnorm: no parameter %d", i);
    int64_t C = bn->C;
    bsc_param_spec s = {0};
    s.name = names[i];
    s.shape = bsc_shape_make(1, &C);
    s.role = roles[i];
    s.init = inits[i];
    s.fan_in = C;
    s.fan_out = C;
    s.filter_axis = -1;
    *out = s;
    return BSC_OK;
}

static size_t bn_workspace_size(void *self, size_t max_batch)
{
    (void)max_batch;
    return 4 * (size_t)((batchnorm *)self)->C;
}

static bsc_status bn_bind(void *self, const bsc_layer_binding *b)
{
    batchnorm *bn = self;
    bsc_status st;
    if (b->max_batch > (size_t)INT_MAX / ((size_t)bn->C * (size_t)bn->S))
        return bsc_fail(BSC_ERR_UNSUPPORTED, "batchnorm: batch %zu exceeds the 2^31 element "
                        "index limit", b->max_batch);
    bn->ctx = b->ctx;
    bn->max_batch = b->max_batch;
    bn->gamma = *b->params[0];
    bn->beta = *b->params[1];
    bn->rmean = *b->params[2];
    bn->rvar = *b->params[3];
    bn->dgamma = *b->grads[0];
    bn->dbeta = *b->grads[1];
    bn->ws = *b->workspace;
    const char *f = "batchnorm.cl";
    if ((st = layers_kernel(bn->ctx, f, "bn_stats_train", &bn->k_train)) != BSC_OK ||
        (st = layers_kernel(bn->ctx, f, "bn_stats_eval", &bn->k_eval)) != BSC_OK ||
        (st = layers_kernel(bn->ctx, f, "bn_apply", &bn->k_apply)) != BSC_OK ||
        (st = layers_kernel(bn->ctx, f, "bn_backward_reduce", &bn->k_reduce)) != BSC_OK ||
        (st = layers_kernel(bn->ctx, f, "bn_backward_input", &bn->k_input)) != BSC_OK ||
        (st = layers_kernel(bn->ctx, f, "bn_rforward_eval", &bn->k_rfwd)) != BSC_OK ||
        (st = layers_kernel(bn->ctx, f, "bn_rbackward_input", &bn->k_rinput)) != BSC_OK)
        return st;
    return BSC_OK;
}

static bsc_status bn_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                             bsc_tensor *out)
{
    batchnorm *bn = self;
    if (p->batch == 0)
        return BSC_OK;
    cl_int xo, yo, so, go, bo, rmo, rvo, B = (cl_int)p->batch;
    float momentum = (float)bn->momentum, eps = (float)bn->eps;
    bsc_status st;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(out, &yo)) != BSC_OK ||
        (st = layers_offset(&bn->ws, &so)) != BSC_OK ||
        (st = layers_offset(&bn->gamma, &go)) != BSC_OK ||
        (st = layers_offset(&bn->beta, &bo)) != BSC_OK ||
        (st = layers_offset(&bn->rmean, &rmo)) != BSC_OK ||
        (st = layers_offset(&bn->rvar, &rvo)) != BSC_OK)
        return st;
    if (p->training) {
        cl_int update = 1;
        bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(B), BSC_ARG(bn->C),
                        BSC_ARG(bn->S), BSC_ARG(bn->rmean.mem), BSC_ARG(rmo),
                        BSC_ARG(bn->rvar.mem), BSC_ARG(rvo), BSC_ARG(bn->ws.mem), BSC_ARG(so),
                        BSC_ARG(momentum), BSC_ARG(eps), BSC_ARG(update)};
        st = layers_run_groups(bn->ctx, bn->k_train, (size_t)bn->C, LAYERS_REDUCE_LOCAL, 14, a);
    } else {
        bsc_karg a[] = {BSC_ARG(bn->rmean.mem), BSC_ARG(rmo), BSC_ARG(bn->rvar.mem),
                        BSC_ARG(rvo), BSC_ARG(bn->C), BSC_ARG(bn->ws.mem), BSC_ARG(so),
                        BSC_ARG(eps)};
        st = layers_run(bn->ctx, bn->k_eval, (size_t)bn->C, 8, a);
    }
    if (st != BSC_OK)
        return st;
    size_t total = p->batch * (size_t)bn->C * (size_t)bn->S;
    cl_int n = (cl_int)total;
    bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(n), BSC_ARG(bn->C), BSC_ARG(bn->S),
                    BSC_ARG(bn->ws.mem), BSC_ARG(so), BSC_ARG(bn->gamma.mem), BSC_ARG(go),
                    BSC_ARG(bn->beta.mem), BSC_ARG(bo), BSC_ARG(out->mem), BSC_ARG(yo)};
    return layers_run(bn->ctx, bn->k_apply, total, 13, a);
}

/* din from dout: with the batch statistics' own dependence on x in
 * training mode, gamma * invstd * dout in eval mode (bn_backward_input).
 * In training mode it reads the sums bn_backward_reduce left in `save`. */
static bsc_status bn_input_grad(batchnorm *bn, const bsc_pass *p, const bsc_tensor *in,
                                const bsc_tensor *dout, bsc_tensor *din)
{
    cl_int xo, dyo, so, go, dxo, B = (cl_int)p->batch, training = p->training != 0;
    bsc_status st;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(dout, &dyo)) != BSC_OK ||
        (st = layers_offset(&bn->ws, &so)) != BSC_OK ||
        (st = layers_offset(&bn->gamma, &go)) != BSC_OK ||
        (st = layers_offset(din, &dxo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(dout->mem), BSC_ARG(dyo),
                    BSC_ARG(B), BSC_ARG(bn->C), BSC_ARG(bn->S), BSC_ARG(bn->ws.mem),
                    BSC_ARG(so), BSC_ARG(bn->gamma.mem), BSC_ARG(go), BSC_ARG(training),
                    BSC_ARG(din->mem), BSC_ARG(dxo)};
    return layers_run(bn->ctx, bn->k_input, p->batch * (size_t)bn->C * (size_t)bn->S, 14, a);
}

/* Per-channel sums into dgamma, dbeta (bn_backward_reduce): of g and
 * g * xhat, plus dy2 * rx * invstd when rx is given (the R-operator's
 * extra term); keep: also into `save` for the input gradient. */
static bsc_status bn_reduce(batchnorm *bn, const bsc_pass *p, const bsc_tensor *in,
                            const bsc_tensor *g, int keep, const bsc_tensor *dgamma,
                            const bsc_tensor *dbeta, const bsc_tensor *dy2,
                            const bsc_tensor *rx)
{
    cl_int xo, go, so, dgo, dbo, d2o = 0, rxo = 0, B = (cl_int)p->batch, kp = keep,
                                  has_rx = rx != NULL;
    bsc_status st;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(g, &go)) != BSC_OK ||
        (st = layers_offset(&bn->ws, &so)) != BSC_OK ||
        (st = layers_offset(dgamma, &dgo)) != BSC_OK ||
        (st = layers_offset(dbeta, &dbo)) != BSC_OK ||
        (rx && ((st = layers_offset(dy2, &d2o)) != BSC_OK ||
                (st = layers_offset(rx, &rxo)) != BSC_OK)))
        return st;
    /* Unused operands still need valid buffer arguments. */
    cl_mem m2 = rx ? dy2->mem : g->mem, mr = rx ? rx->mem : g->mem;
    bsc_karg r[] = {BSC_ARG(in->mem),     BSC_ARG(xo),  BSC_ARG(g->mem),      BSC_ARG(go),
                    BSC_ARG(B),           BSC_ARG(bn->C), BSC_ARG(bn->S),     BSC_ARG(bn->ws.mem),
                    BSC_ARG(so),          BSC_ARG(kp),  BSC_ARG(dgamma->mem), BSC_ARG(dgo),
                    BSC_ARG(dbeta->mem),  BSC_ARG(dbo), BSC_ARG(m2),          BSC_ARG(d2o),
                    BSC_ARG(mr),          BSC_ARG(rxo), BSC_ARG(has_rx)};
    return layers_run_groups(bn->ctx, bn->k_reduce, (size_t)bn->C, LAYERS_REDUCE_LOCAL, 19, r);
}

static bsc_status bn_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                              const bsc_tensor *out, const bsc_tensor *dout, bsc_tensor *din)
{
    batchnorm *bn = self;
    (void)out;
    bsc_status st;
    if (p->batch == 0) {
        if ((st = bsc_tensor_fill(bn->ctx, &bn->dgamma, 0.0f)) != BSC_OK)
            return st;
        return bsc_tensor_fill(bn->ctx, &bn->dbeta, 0.0f);
    }
    if ((st = bn_reduce(bn, p, in, dout, 1, &bn->dgamma, &bn->dbeta, NULL, NULL)) != BSC_OK)
        return st;
    return din ? bn_input_grad(bn, p, in, dout, din) : BSC_OK;
}

/* The R-operator, in eval mode only. The analyses evaluate in eval mode,
 * where the running statistics make the layer affine in its input and
 * bilinear in (input, gamma): the Hessian the R-operator then gives is the
 * one of the loss the evaluator reports. In training mode the batch's own
 * mean and variance are functions of every row, a Hessian of another loss
 * that no analysis asks for: not supported rather than approximated. */
static bsc_status bn_r_mode(const bsc_pass *p)
{
    if (p->training)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "batchnorm: the R-operator (exact Hessian-vector "
                        "products) is implemented for eval mode (running statistics) only");
    return BSC_OK;
}

static bsc_status bn_r_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                               const bsc_tensor *rin, const bsc_tensor *const *v,
                               const bsc_tensor *out, bsc_tensor *rout)
{
    batchnorm *bn = self;
    (void)out;
    bsc_status st;
    if ((st = bn_r_mode(p)) != BSC_OK || p->batch == 0)
        return st;
    size_t total = p->batch * (size_t)bn->C * (size_t)bn->S;
    cl_int xo, rxo = 0, so, go, vgo, vbo, ryo, has_rx = rin != NULL, n = (cl_int)total;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (rin && (st = layers_offset(rin, &rxo)) != BSC_OK) ||
        (st = layers_offset(&bn->ws, &so)) != BSC_OK ||
        (st = layers_offset(&bn->gamma, &go)) != BSC_OK ||
        (st = layers_offset(v[0], &vgo)) != BSC_OK || (st = layers_offset(v[1], &vbo)) != BSC_OK ||
        (st = layers_offset(rout, &ryo)) != BSC_OK)
        return st;
    cl_mem rx = rin ? rin->mem : in->mem;   /* any valid buffer when unused */
    bsc_karg a[] = {BSC_ARG(in->mem),    BSC_ARG(xo),  BSC_ARG(rx),         BSC_ARG(rxo),
                    BSC_ARG(has_rx),     BSC_ARG(n),   BSC_ARG(bn->C),      BSC_ARG(bn->S),
                    BSC_ARG(bn->ws.mem), BSC_ARG(so),  BSC_ARG(bn->gamma.mem), BSC_ARG(go),
                    BSC_ARG(v[0]->mem),  BSC_ARG(vgo), BSC_ARG(v[1]->mem),  BSC_ARG(vbo),
                    BSC_ARG(rout->mem),  BSC_ARG(ryo)};
    return layers_run(bn->ctx, bn->k_rfwd, total, 18, a);
}

static bsc_status bn_r_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                const bsc_tensor *rin, const bsc_tensor *const *v,
                                const bsc_tensor *out, const bsc_tensor *rout,
                                const bsc_tensor *dout, const bsc_tensor *rdout,
                                const bsc_tensor *const *hv, bsc_tensor *din, bsc_tensor *rdin)
{
    batchnorm *bn = self;
    (void)out;
    (void)rout;
    bsc_status st;
    if ((st = bn_r_mode(p)) != BSC_OK)
        return st;
    if (p->batch == 0) {
        bsc_tensor hg = *hv[0], hb = *hv[1];
        if ((st = bsc_tensor_fill(bn->ctx, &hg, 0.0f)) != BSC_OK)
            return st;
        return bsc_tensor_fill(bn->ctx, &hb, 0.0f);
    }
    if ((st = bn_reduce(bn, p, in, rdout, 0, hv[0], hv[1], dout, rin)) != BSC_OK)
        return st;
    if (din && (st = bn_input_grad(bn, p, in, dout, din)) != BSC_OK)
        return st;
    if (!rdin)
        return BSC_OK;
    size_t total = p->batch * (size_t)bn->C * (size_t)bn->S;
    cl_int n = (cl_int)total, dyo, rdyo, so, go, vgo, rdxo;
    if ((st = layers_offset(dout, &dyo)) != BSC_OK || (st = layers_offset(rdout, &rdyo)) != BSC_OK ||
        (st = layers_offset(&bn->ws, &so)) != BSC_OK ||
        (st = layers_offset(&bn->gamma, &go)) != BSC_OK ||
        (st = layers_offset(v[0], &vgo)) != BSC_OK || (st = layers_offset(rdin, &rdxo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(dout->mem), BSC_ARG(dyo),  BSC_ARG(rdout->mem), BSC_ARG(rdyo),
                    BSC_ARG(n),         BSC_ARG(bn->C), BSC_ARG(bn->S),     BSC_ARG(bn->ws.mem),
                    BSC_ARG(so),        BSC_ARG(bn->gamma.mem), BSC_ARG(go), BSC_ARG(v[0]->mem),
                    BSC_ARG(vgo),       BSC_ARG(rdin->mem), BSC_ARG(rdxo)};
    return layers_run(bn->ctx, bn->k_rinput, total, 15, a);
}

BSC_LAYER_TYPE(layers_batchnorm, "batchnorm",
               "batch normalization over [F] or [C, H, W]",
               BSC_OPTIONS(BSC_OPT("momentum", BSC_OPT_FLOAT, "0.1",
                                   "running statistics: new = (1 - momentum) old + momentum batch"),
                           BSC_OPT("eps", BSC_OPT_FLOAT, "1e-5", "added to the variance")),
               .create = bn_create,
               .output_shape = bn_output_shape,
               .n_params = bn_n_params,
               .param_spec = bn_param_spec,
               .workspace_size = bn_workspace_size,
               .bind = bn_bind,
               .forward = bn_forward,
               .backward = bn_backward,
               .r_forward = bn_r_forward,
               .r_backward = bn_r_backward,
               .r_hints = BSC_R_DOUT_ONLY_FOR_DIN_AT_FIRST);
