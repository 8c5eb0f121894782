/* Families of points: the loss along a line or over a plane in parameter
 * space, with the first layer's work shared between the points.
 *
 * A surface point's parameters are theta + x d1 + y d2, an interpolation
 * point's (1 - a) theta_A + a theta_B: always sum_j c_j P_j over a few basis
 * vectors. When the first layer with parameters is linear in them
 * (bsc_layer_ops.linear_in_params: dense, conv2d) and only parameter- and
 * state-free layers (flatten) come before it, its output at any point is
 * sum_j c_j Y_j with Y_j its output at P_j. The Y_j over the family's
 * examples are computed once, when the family is created; each point then
 * forms its first-layer output with one combine kernel per batch and runs
 * only the layers after it. For the MLP 784-512-512-10 that removes about
 * 60% of a point's multiply-adds. The products take n_basis x examples x
 * the layer's output floats of device memory; when that exceeds the budget
 * (a quarter of the device's memory, each product within one allocation),
 * or the model does not qualify, every point runs the plain evaluation, and
 * bsc_eval_family_mode says which path and why. */
#include "evaluator_internal.h"
#include "model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAMILY_MAX_BASIS 3

struct bsc_eval_family {
    bsc_evaluator *e;
    size_t n_basis;
    const bsc_tensor *params[FAMILY_MAX_BASIS], *states[FAMILY_MAX_BASIS];
    bsc_split_id split;
    const bsc_device_split *sp;
    size_t n;                 /* examples */
    int shared;
    size_t layer;             /* the shared layer */
    size_t resume;            /* the first layer each point runs: layer + 1, or + 2 when
                               * the combine applies the ReLU after it */
    size_t width;             /* floats of its output per example */
    bsc_tensor y[FAMILY_MAX_BASIS];   /* [n, width] each: its output at basis j */
    bsc_tensor scratch;       /* [batch, width]: a point's output for one batch (kernels
                               * only; empty with row blocks) */
    bsc_host_rows *rows;      /* the layers from resume on in host row blocks, or NULL */
    char mode[320];
};

/* out = sum_j c[j] v[j] over n floats from each v[j]'s offset + off; with
 * relu, through a ReLU. */
static bsc_status combine_as(bsc_context *ctx, size_t n, const float *c,
                             const bsc_tensor *const *v, size_t nv, size_t off, bsc_tensor *out,
                             int relu)
{
    bsc_tensor t[3];
    for (size_t j = 0; j < nv; j++) {
        t[j] = *v[j];
        t[j].offset += off;
    }
    return (relu ? bsc_tensor_combine_relu : bsc_tensor_combine)(
        ctx, n, c[0], &t[0], nv > 1 ? c[1] : 0.0f, nv > 1 ? &t[1] : NULL,
        nv > 2 ? c[2] : 0.0f, nv > 2 ? &t[2] : NULL, out);
}

static bsc_status combine(bsc_context *ctx, size_t n, const float *c,
                          const bsc_tensor *const *v, size_t nv, size_t off, bsc_tensor *out)
{
    return combine_as(ctx, n, c, v, nv, off, out, 0);
}

/* Sets the model's parameters (and state, when the family has states) to
 * the point's combination of the basis. */
static bsc_status load_point(bsc_eval_family *f, const float *c)
{
    bsc_model *m = f->e->model;
    bsc_context *ctx = bsc_model_context(m);
    bsc_status s = combine(ctx, bsc_model_n_params(m), c, f->params, f->n_basis, 0,
                           bsc_model_params(m));
    if (s == BSC_OK && f->states[0] && bsc_model_n_state(m))
        s = combine(ctx, bsc_model_n_state(m), c, f->states, f->n_basis, 0,
                    bsc_model_state(m));
    return s;
}

/* Whether the model's first layer can be shared: *layer gets its index,
 * or why[] says why not. */
static int qualifies(const bsc_model *m, size_t *layer, char *why, size_t len)
{
    size_t nt = bsc_model_n_tensors(m);
    for (size_t i = 0; i < bsc_model_n_layers(m); i++) {
        int trained = 0, state = 0;
        const char *type = "";
        for (size_t t = 0; t < nt; t++) {
            const bsc_model_tensor *mt = bsc_model_tensor_at(m, t);
            if (mt->layer == (int)i) {
                type = mt->layer_type;
                if (mt->spec.role == BSC_ROLE_STATE)
                    state = 1;
                else
                    trained = 1;
            }
        }
        if (state) {
            snprintf(why, len, "layer %zu has running state before any shared layer", i);
            return 0;
        }
        if (!trained)
            continue;
        const bsc_layer_ops *ops = bsc_model_layer_ops(m, i);
        if (!ops->linear_in_params ||
            !ops->linear_in_params(bsc_model_layer_self((bsc_model *)m, i))) {
            snprintf(why, len, "its first layer with parameters (%zu, %s) is not linear in "
                     "them", i, type);
            return 0;
        }
        *layer = i;
        return 1;
    }
    snprintf(why, len, "the model has no parameters");
    return 0;
}

/* Device bytes the products may take: a quarter of the device's memory,
 * each product in one allocation; $BATCHSCOPE_SHARED_LAYER_BYTES lowers it
 * (tests force the plain path with it). */
static int fits(const bsc_context *ctx, size_t per_basis, size_t n_basis, char *why,
                size_t len)
{
    unsigned long long budget = ctx->info.global_mem / 4;
    const char *env = getenv("BATCHSCOPE_SHARED_LAYER_BYTES");
    if (env && *env && strtoull(env, NULL, 10) < budget)
        budget = strtoull(env, NULL, 10);
    if (per_basis * n_basis > budget || per_basis > ctx->info.max_alloc) {
        snprintf(why, len, "its products need %.1f MB, over the %.1f MB allowed",
                 (double)(per_basis * n_basis) / 1e6, (double)budget / 1e6);
        return 0;
    }
    return 1;
}

static bsc_status alloc_floats(bsc_context *ctx, size_t n, bsc_tensor *t)
{
    int64_t d = (int64_t)n;
    bsc_shape s = bsc_shape_make(1, &d);
    return bsc_tensor_alloc(ctx, BSC_F32, &s, t);
}

/* Computes Y_j for every basis vector over the family's examples. */
static bsc_status precompute(bsc_eval_family *f)
{
    bsc_evaluator *e = f->e;
    bsc_model *m = e->model;
    bsc_context *ctx = bsc_model_context(m);
    bsc_status s = BSC_OK;
    for (size_t j = 0; s == BSC_OK && j < f->n_basis; j++) {
        if ((s = alloc_floats(ctx, f->n * f->width, &f->y[j])) != BSC_OK ||
            (s = bsc_tensor_copy(ctx, f->params[j], bsc_model_params(m))) != BSC_OK)
            break;
        for (size_t start = 0; s == BSC_OK && start < f->n; start += e->batch) {
            size_t count = f->n - start < e->batch ? f->n - start : e->batch;
            bsc_tensor x, lab;
            bsc_eval_rows(f->sp, start, count, &x, &lab);
            int64_t d = (int64_t)(count * f->width);
            bsc_shape sh = bsc_shape_make(1, &d);
            bsc_tensor out = bsc_tensor_view(&f->y[j], start * f->width, &sh);
            bsc_pass p = {.batch = count, .training = 0, .seed = 0, .step = 0};
            s = bsc_model_forward_to(m, &p, &x, f->layer, &out);
        }
    }
    return s;
}

bsc_status bsc_eval_family_create(bsc_evaluator *e, size_t n_basis,
                                  const bsc_tensor *const *params,
                                  const bsc_tensor *const *states, bsc_split_id split,
                                  size_t subset, bsc_eval_family **out)
{
    *out = NULL;
    if (n_basis < 1 || n_basis > FAMILY_MAX_BASIS)
        return bsc_fail(BSC_ERR_INVALID, "a family of points spans 1 to %d vectors, not %zu",
                        FAMILY_MAX_BASIS, n_basis);
    bsc_eval_family *f = calloc(1, sizeof *f);
    if (!f)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    f->e = e;
    f->n_basis = n_basis;
    f->split = split;
    for (size_t j = 0; j < n_basis; j++) {
        f->params[j] = params[j];
        f->states[j] = states ? states[j] : NULL;
    }
    bsc_model *m = e->model;
    bsc_context *ctx = bsc_model_context(m);
    bsc_status s = bsc_eval_resolve(e, split, subset, &f->sp, &f->n);
    char why[160];
    if (s == BSC_OK && qualifies(m, &f->layer, why, sizeof why)) {
        bsc_shape o = bsc_model_output_shape(m, f->layer);
        f->width = 1;
        for (int d = 0; d < o.ndim; d++)
            f->width *= (size_t)o.dim[d];
        f->shared = fits(ctx, f->n * f->width * sizeof(float), n_basis, why, sizeof why);
    }
    if (s == BSC_OK && f->shared) {
        s = precompute(f);
        /* A ReLU right after the shared layer (the built-in type; a type
         * name is registered once) is applied by the combine itself: one
         * pass over the batch's first-layer output instead of two. */
        f->resume = f->layer + 1;
        if (f->resume < bsc_model_n_layers(m) &&
            !strcmp(m->layers[f->resume].type->name, "relu"))
            f->resume++;
        char why_rows[160], rows[80] = "";
        if (s == BSC_OK) {
            s = bsc_host_rows_create(m, f->resume, &f->rows, why_rows, sizeof why_rows);
            if (s == BSC_ERR_UNSUPPORTED)
                s = BSC_OK;
            else if (s == BSC_OK)
                snprintf(rows, sizeof rows, "; the rest in blocks of %zu rows on the host "
                         "threads", bsc_host_rows_block(f->rows));
        }
        /* The kernels' path forms each batch's first-layer output on the
         * device; the row blocks form theirs in their own scratch. */
        if (s == BSC_OK && !f->rows)
            s = alloc_floats(ctx, e->batch * f->width, &f->scratch);
        snprintf(f->mode, sizeof f->mode, "shared first layer: layer %zu's output at %zu "
                 "vectors over %zu examples, computed once%s%s", f->layer, n_basis, f->n,
                 f->resume > f->layer + 1 ? ", the ReLU after it in the same pass" : "", rows);
    } else if (s == BSC_OK) {
        snprintf(f->mode, sizeof f->mode, "plain evaluation at every point: %s", why);
    }
    if (s != BSC_OK) {
        bsc_eval_family_free(f);
        return s;
    }
    *out = f;
    return BSC_OK;
}

void bsc_eval_family_free(bsc_eval_family *f)
{
    if (!f)
        return;
    for (size_t j = 0; j < FAMILY_MAX_BASIS; j++)
        bsc_tensor_free(&f->y[j]);
    bsc_tensor_free(&f->scratch);
    bsc_host_rows_free(f->rows);
    free(f);
}

int bsc_eval_family_shared(const bsc_eval_family *f)
{
    return f->shared;
}

const char *bsc_eval_family_mode(const bsc_eval_family *f)
{
    return f->mode;
}

bsc_status bsc_eval_family_loss(bsc_eval_family *f, const float *coef, double *loss,
                                double *acc)
{
    bsc_evaluator *e = f->e;
    bsc_model *m = e->model;
    bsc_context *ctx = bsc_model_context(m);
    bsc_status s = load_point(f, coef);
    if (s != BSC_OK)
        return s;
    if (!f->shared)
        return bsc_eval_loss(e, f->split, f->n, loss, acc);
    const bsc_tensor *y[FAMILY_MAX_BASIS] = {&f->y[0], &f->y[1], &f->y[2]};
    size_t chunks = 0;
    for (size_t start = 0; start < f->n; start += e->batch, chunks++) {
        size_t count = f->n - start < e->batch ? f->n - start : e->batch;
        bsc_tensor x, lab;
        bsc_eval_rows(f->sp, start, count, &x, &lab);
        if (f->rows) {
            bsc_tensor v[FAMILY_MAX_BASIS];
            const bsc_tensor *src[FAMILY_MAX_BASIS];
            for (size_t j = 0; j < f->n_basis; j++) {
                int64_t d = (int64_t)(count * f->width);
                bsc_shape sh = bsc_shape_make(1, &d);
                v[j] = bsc_tensor_view(&f->y[j], start * f->width, &sh);
                src[j] = &v[j];
            }
            if ((s = bsc_host_rows_loss(f->rows, count, f->n_basis, coef, src,
                                        f->resume > f->layer + 1, &lab, &e->sums, chunks)) !=
                BSC_OK)
                return s;
            continue;
        }
        bsc_pass p = {.batch = count, .training = 0, .seed = 0, .step = 0};
        if ((s = combine_as(ctx, count * f->width, coef, y, f->n_basis, start * f->width,
                            &f->scratch, f->resume > f->layer + 1)) != BSC_OK ||
            (s = bsc_model_forward_loss_from(m, &p, f->resume, &f->scratch, &lab)) != BSC_OK ||
            (s = bsc_eval_sum_chunk(e, count, chunks)) != BSC_OK)
            return s;
    }
    return bsc_eval_read_sums(e, chunks, f->n, loss, acc);
}
