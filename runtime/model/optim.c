/* Optimizers over the flat parameter buffer: SGD (momentum, Nesterov) and
 * Adam, one fused kernel per step (cl/runtime/optim.cl). The rules and
 * contracts are in batchscope/optim.h. */
#include "batchscope/optim.h"

#include <math.h>
#include <stdlib.h>

#define CL_FILE "optim.cl"

struct bsc_optimizer {
    bsc_context *ctx;
    bsc_optimizer_cfg cfg;
    size_t n;
    long steps;               /* since creation or the last reset */
    cl_kernel kernel;         /* owned by ctx */
    /* SGD with momentum: state[0] = momentum_buffer.
     * Adam: state[0] = exp_avg, state[1] = exp_avg_sq. */
    bsc_tensor state[2];
    const char *state_names[2];
    size_t n_state;
};

static bsc_status check_cfg(const bsc_optimizer_cfg *c)
{
    /* Written so that NaN fails every test. */
    if (!(c->weight_decay >= 0.0))
        return bsc_fail(BSC_ERR_INVALID, "optimizer: weight_decay must be >= 0 (got %g)",
                        c->weight_decay);
    switch (c->kind) {
    case BSC_OPTIMIZER_SGD:
        if (!(c->momentum >= 0.0))
            return bsc_fail(BSC_ERR_INVALID, "sgd: momentum must be >= 0 (got %g)", c->momentum);
        /* torch refuses this too: Nesterov needs a momentum to look ahead with. */
        if (c->nesterov && c->momentum == 0.0)
            return bsc_fail(BSC_ERR_INVALID, "sgd: nesterov requires momentum > 0");
        return BSC_OK;
    case BSC_OPTIMIZER_ADAM:
        if (!(c->beta1 >= 0.0 && c->beta1 < 1.0))
            return bsc_fail(BSC_ERR_INVALID, "adam: beta1 must be in [0, 1) (got %g)", c->beta1);
        if (!(c->beta2 >= 0.0 && c->beta2 < 1.0))
            return bsc_fail(BSC_ERR_INVALID, "adam: beta2 must be in [0, 1) (got %g)", c->beta2);
        if (!(c->eps >= 0.0))
            return bsc_fail(BSC_ERR_INVALID, "adam: eps must be >= 0 (got %g)", c->eps);
        return BSC_OK;
    }
    return bsc_fail(BSC_ERR_INVALID, "optimizer: unknown kind %d", (int)c->kind);
}

bsc_status bsc_optimizer_create(bsc_context *ctx, const bsc_optimizer_cfg *cfg,
                                size_t n, bsc_optimizer **out)
{
    bsc_status st;
    bsc_optimizer *opt = NULL;
    const char *kname;

    *out = NULL;
    if (!ctx || !cfg)
        return bsc_fail(BSC_ERR_USAGE, "bsc_optimizer_create: NULL context or config");
    if (n == 0)
        return bsc_fail(BSC_ERR_INVALID, "optimizer: parameter vector is empty");
    st = check_cfg(cfg);
    if (st != BSC_OK)
        return st;

    opt = calloc(1, sizeof *opt);
    if (!opt)
        return bsc_fail(BSC_ERR_NOMEM, "optimizer: out of memory");
    opt->ctx = ctx;
    opt->cfg = *cfg;
    opt->n = n;

    if (cfg->kind == BSC_OPTIMIZER_ADAM) {
        kname = "adam_step";
        opt->n_state = 2;
        opt->state_names[0] = "exp_avg";
        opt->state_names[1] = "exp_avg_sq";
    } else if (cfg->momentum != 0.0) {
        kname = "sgd_momentum_step";
        opt->n_state = 1;
        opt->state_names[0] = "momentum_buffer";
    } else {
        kname = "sgd_step";
        opt->n_state = 0;
    }

    st = bsc_kernel(ctx, CL_FILE, kname, &opt->kernel);
    if (st != BSC_OK) {
        bsc_fail_context(st, "optimizer");
        goto cleanup;
    }

    {
        int64_t dim = (int64_t)n;
        bsc_shape shape = bsc_shape_make(1, &dim);
        for (size_t i = 0; i < opt->n_state; i++) {
            st = bsc_tensor_alloc(ctx, BSC_F32, &shape, &opt->state[i]);
            if (st != BSC_OK) {
                bsc_fail_context(st, "optimizer: allocating %s (%zu floats)",
                                 opt->state_names[i], n);
                goto cleanup;
            }
        }
    }

    st = bsc_optimizer_reset(opt);
    if (st != BSC_OK)
        goto cleanup;

    *out = opt;
    return BSC_OK;

cleanup:
    bsc_optimizer_free(opt);
    return st;
}

bsc_status bsc_optimizer_reset(bsc_optimizer *opt)
{
    /* Zeroing the SGD buffer is not needed for the update (the first step
     * overwrites it) but keeps a checkpoint of a fresh run deterministic. */
    for (size_t i = 0; i < opt->n_state; i++) {
        bsc_status st = bsc_tensor_fill(opt->ctx, &opt->state[i], 0.0f);
        if (st != BSC_OK)
            return bsc_fail_context(st, "optimizer reset: zeroing %s", opt->state_names[i]);
    }
    opt->steps = 0;
    return BSC_OK;
}

static bsc_status check_operand(const bsc_optimizer *opt, const bsc_tensor *t,
                                const char *what)
{
    if (!t || !t->mem)
        return bsc_fail(BSC_ERR_USAGE, "optimizer step: %s is an empty tensor", what);
    if (t->dtype != BSC_F32)
        return bsc_fail(BSC_ERR_INVALID, "optimizer step: %s must be F32 (dtype %d)",
                        what, (int)t->dtype);
    if (t->numel != opt->n)
        return bsc_fail(BSC_ERR_INVALID,
                        "optimizer step: %s has %zu elements, the optimizer was made for %zu",
                        what, t->numel, opt->n);
    return BSC_OK;
}

bsc_status bsc_optimizer_step(bsc_optimizer *opt, bsc_tensor *params,
                              const bsc_tensor *grads, float lr)
{
    bsc_status st;
    const bsc_optimizer_cfg *c = &opt->cfg;
    cl_ulong p_off, g_off, n = (cl_ulong)opt->n;
    size_t global = opt->n;
    float wd = (float)c->weight_decay;

    if ((st = check_operand(opt, params, "params")) != BSC_OK ||
        (st = check_operand(opt, grads, "grads")) != BSC_OK)
        return st;
    p_off = (cl_ulong)params->offset;
    g_off = (cl_ulong)grads->offset;

    if (c->kind == BSC_OPTIMIZER_ADAM) {
        /* t is the step being taken now (1-based). The corrections are formed
         * in double: beta2^t with beta2 = 0.999 is far from 1 only after
         * thousands of steps, where float powers would lose the digits. */
        double t = (double)(opt->steps + 1);
        double bc1 = 1.0 - pow(c->beta1, t);
        double bc2 = 1.0 - pow(c->beta2, t);
        float step_size = (float)((double)lr / bc1);
        float bc2_sqrt = (float)sqrt(bc2);
        float b1 = (float)c->beta1, omb1 = (float)(1.0 - c->beta1);
        float b2 = (float)c->beta2, omb2 = (float)(1.0 - c->beta2);
        float eps = (float)c->eps;
        bsc_karg args[] = {
            BSC_ARG(params->mem), BSC_ARG(p_off),
            BSC_ARG(grads->mem), BSC_ARG(g_off),
            BSC_ARG(opt->state[0].mem), BSC_ARG(opt->state[1].mem),
            BSC_ARG(n), BSC_ARG(wd), BSC_ARG(b1), BSC_ARG(omb1),
            BSC_ARG(b2), BSC_ARG(omb2), BSC_ARG(eps),
            BSC_ARG(step_size), BSC_ARG(bc2_sqrt),
        };
        st = bsc_launch(opt->ctx, opt->kernel, (int)(sizeof args / sizeof args[0]), args,
                        1, &global, NULL);
    } else if (opt->n_state == 1) {
        float mom = (float)c->momentum;
        cl_int nesterov = c->nesterov ? 1 : 0;
        cl_int first = opt->steps == 0;
        bsc_karg args[] = {
            BSC_ARG(params->mem), BSC_ARG(p_off),
            BSC_ARG(grads->mem), BSC_ARG(g_off),
            BSC_ARG(opt->state[0].mem),
            BSC_ARG(n), BSC_ARG(lr), BSC_ARG(wd), BSC_ARG(mom),
            BSC_ARG(nesterov), BSC_ARG(first),
        };
        st = bsc_launch(opt->ctx, opt->kernel, (int)(sizeof args / sizeof args[0]), args,
                        1, &global, NULL);
    } else {
        bsc_karg args[] = {
            BSC_ARG(params->mem), BSC_ARG(p_off),
            BSC_ARG(grads->mem), BSC_ARG(g_off),
            BSC_ARG(n), BSC_ARG(lr), BSC_ARG(wd),
        };
        st = bsc_launch(opt->ctx, opt->kernel, (int)(sizeof args / sizeof args[0]), args,
                        1, &global, NULL);
    }
    if (st != BSC_OK)
        return bsc_fail_context(st, "optimizer step %ld", opt->steps + 1);
    opt->steps++;
    return BSC_OK;
}

long bsc_optimizer_steps(const bsc_optimizer *opt)
{
    return opt->steps;
}

bsc_status bsc_optimizer_set_steps(bsc_optimizer *opt, long count)
{
    if (count < 0)
        return bsc_fail(BSC_ERR_INVALID, "optimizer: step count must be >= 0 (got %ld)", count);
    opt->steps = count;
    return BSC_OK;
}

size_t bsc_optimizer_state_tensors(bsc_optimizer *opt, bsc_tensor **tensors,
                                   const char **names, size_t max)
{
    for (size_t i = 0; i < opt->n_state && i < max; i++) {
        if (tensors)
            tensors[i] = &opt->state[i];
        if (names)
            names[i] = opt->state_names[i];
    }
    return opt->n_state;
}

void bsc_optimizer_free(bsc_optimizer *opt)
{
    if (!opt)
        return;
    for (size_t i = 0; i < 2; i++)
        bsc_tensor_free(&opt->state[i]);
    free(opt);
}
