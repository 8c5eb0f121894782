/* The Hessian-vector products the hessian analysis feeds its math cores
 * (ana_hv_fn over host doubles), on the training loss at given weights:
 *
 *  - exact: the R-operator pass (bsc_eval_hvp; Pearlmutter 1994), when
 *    every layer from the first trained one on and the loss have the op;
 *  - fd: central differences of two full-batch gradients,
 *        H v ~ (g(x + t v) - g(x - t v)) / (2 t),   t = fd_step / |v|,
 *    so the perturbation always has norm fd_step whatever the scale of v.
 *    Its error is O(t^2) from the third derivative plus float32 rounding of
 *    the two gradients divided by 2t, and for ReLU networks it averages the
 *    curvature over the kinks within fd_step of x. It stays for plugin
 *    layers without the R-operator.
 *
 * A block restricts the operator to the coordinates [off, off + len) of
 * the flat parameter vector: P^T H P, the diagonal block of one tensor. */
#include "analyses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bsc_status ana_hvp_open(ana_hvp *c, const bsc_study *st, const bsc_tensor *x, int exact,
                        double fd_step, size_t subset)
{
    memset(c, 0, sizeof *c);
    bsc_context *ctx = st->ctx;
    size_t np = bsc_model_n_params(st->model);
    c->st = st;
    c->exact = exact;
    c->fd_step = fd_step;
    c->subset = subset;
    c->x = x;
    c->np = np;
    c->len = np;
    c->host = malloc(np * sizeof *c->host);
    c->full = calloc(np, sizeof *c->full);
    c->out = malloc(np * sizeof *c->out);
    bsc_status s = c->host && c->full && c->out ? BSC_OK
                                                : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && (s = ana_vec_alloc(ctx, np, &c->v)) == BSC_OK &&
        (s = ana_vec_alloc(ctx, np, &c->a)) == BSC_OK &&
        (s = ana_vec_alloc(ctx, np, &c->b)) == BSC_OK)
        /* The exact product is taken at the model's current parameters. */
        s = bsc_tensor_copy(ctx, x, bsc_model_params(st->model));
    if (s != BSC_OK)
        ana_hvp_close(c);
    return s;
}

void ana_hvp_close(ana_hvp *c)
{
    bsc_tensor_free(&c->v);
    bsc_tensor_free(&c->a);
    bsc_tensor_free(&c->b);
    free(c->host);
    free(c->full);
    free(c->out);
    memset(c, 0, sizeof *c);
}

void ana_hvp_block(ana_hvp *c, size_t off, size_t len)
{
    c->off = off;
    c->len = len;
    memset(c->full, 0, c->np * sizeof *c->full);
}

/* out = H v over the whole parameter vector (np doubles each). */
static bsc_status product(ana_hvp *c, const double *v, double *out)
{
    bsc_context *ctx = c->st->ctx;
    bsc_model *m = c->st->model;
    size_t np = c->np;
    bsc_status s = ana_interrupted(c->st);
    if (s != BSC_OK)
        return s;
    double nv = 0;
    for (size_t i = 0; i < np; i++) {
        nv += v[i] * v[i];
        c->host[i] = (float)v[i];
    }
    nv = sqrt(nv);
    if (!(nv > 0)) {
        memset(out, 0, np * sizeof *out);
        return BSC_OK;
    }
    if ((s = bsc_tensor_write(ctx, &c->v, c->host)) != BSC_OK)
        return s;
    if (c->exact) {
        if ((s = bsc_eval_hvp(c->st->eval, BSC_SPLIT_TRAIN, c->subset, &c->v, &c->a, NULL)) !=
                BSC_OK ||
            (s = bsc_tensor_read(ctx, &c->a, c->host)) != BSC_OK)
            return s;
        for (size_t i = 0; i < np; i++)
            out[i] = c->host[i];
    } else {
        double t = c->fd_step / nv;
        if ((s = bsc_tensor_combine(ctx, np, 1.0f, c->x, (float)t, &c->v, 0, NULL,
                                    bsc_model_params(m))) != BSC_OK ||
            (s = bsc_eval_grad(c->st->eval, BSC_SPLIT_TRAIN, c->subset, &c->a, NULL)) !=
                BSC_OK ||
            (s = bsc_tensor_combine(ctx, np, 1.0f, c->x, (float)-t, &c->v, 0, NULL,
                                    bsc_model_params(m))) != BSC_OK ||
            (s = bsc_eval_grad(c->st->eval, BSC_SPLIT_TRAIN, c->subset, &c->b, NULL)) !=
                BSC_OK ||
            (s = bsc_tensor_read(ctx, &c->a, c->host)) != BSC_OK)
            return s;
        for (size_t i = 0; i < np; i++)
            out[i] = c->host[i];
        if ((s = bsc_tensor_read(ctx, &c->b, c->host)) != BSC_OK)
            return s;
        /* Difference and division in double on the host: one rounding fewer
         * than on the device. */
        for (size_t i = 0; i < np; i++)
            out[i] = (out[i] - c->host[i]) / (2.0 * t);
    }
    c->products++;
    return BSC_OK;
}

bsc_status ana_hvp_apply(void *user, const double *v, double *hv)
{
    ana_hvp *c = user;
    if (c->off == 0 && c->len == c->np)
        return product(c, v, hv);
    memcpy(c->full + c->off, v, c->len * sizeof *v);
    bsc_status s = product(c, c->full, c->out);
    if (s == BSC_OK)
        memcpy(hv, c->out + c->off, c->len * sizeof *hv);
    return s;
}
