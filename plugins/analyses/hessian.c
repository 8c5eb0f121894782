/* hessian: curvature of the training loss at each run's minimizer, from
 * Hessian-vector products by central finite differences of the gradient,
 *
 *     H v ~ (g(x + t v) - g(x - t v)) / (2 t),   t = fd_step / |v|,
 *
 * so the perturbation always has Euclidean norm fd_step whatever the scale
 * of v (a Rademacher probe has |v| = sqrt(n)). The error is O(t^2) from the
 * third derivative plus float32 rounding of the two gradients divided by
 * 2t; fd_step = 1e-2 against weight vectors of norm ~10-100 keeps both
 * small (it is exact for a quadratic; see tests/test_analyses.c). Note that
 * for ReLU networks the difference also averages the curvature over the
 * kinks within fd_step of x -- the smoothing any finite difference does.
 *
 *   - type: hessian
 *     runs: [32, bs256-sqrt]  # batch sizes or run names (default: every run)
 *     top_k: 1             # eigenvalues of largest magnitude (power iteration,
 *                          # deflation by projection)
 *     max_iter: 100        # products per eigenvalue, at most
 *     tol: 1e-3            # relative change of the Rayleigh quotient
 *     trace_samples: 10    # Hutchinson probes (0: no trace)
 *     fd_step: 1e-2
 *     subset: 0            # training examples (0: all)
 *
 * Output OUT/analyses/hessian.csv, one row per quantity: run, batch_size,
 * quantity (eigenvalue | trace), k (1-based rank; 0 for the trace), value,
 * std_err (trace only), hv_products, seconds, status ("ok"); a run that
 * diverged or did not finish gets one row with status "skipped: ...", and a
 * run whose products fail (a non-finite v.Hv) one with "failed: ...", while
 * the other runs are still computed.
 */
#include "analyses.h"

#include "batchscope/fsutil.h"
#include "batchscope/table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct hess {
    const bsc_node *node;
    const bsc_node **runs;     /* selectors; NULL: every run */
    size_t n_runs;
    long top_k, max_iter, trace_samples;
    double tol, fd_step;
    size_t subset;
} hess;

static void destroy(void *self)
{
    hess *h = self;
    if (!h)
        return;
    free(h->runs);
    free(h);
}

static bsc_status create(const bsc_component_config *cfg, void **self)
{
    *self = NULL;
    const bsc_node *o = cfg->options;
    bsc_status s;
    hess *h = calloc(1, sizeof *h);
    if (!h)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    h->node = o;
    if ((s = ana_opt_runs(cfg, o, "runs", &h->runs, &h->n_runs)) != BSC_OK ||
        (s = bsc_opt_long(o, "top_k", 1, 1, 100, &h->top_k)) != BSC_OK ||
        (s = bsc_opt_long(o, "max_iter", 100, 1, 100000, &h->max_iter)) != BSC_OK ||
        (s = bsc_opt_double(o, "tol", 1e-3, 0, 1, &h->tol)) != BSC_OK ||
        (s = bsc_opt_long(o, "trace_samples", 10, 0, 100000, &h->trace_samples)) != BSC_OK ||
        (s = bsc_opt_double(o, "fd_step", 1e-2, 1e-8, 1e3, &h->fd_step)) != BSC_OK ||
        (s = ana_opt_subset(o, "subset", &h->subset)) != BSC_OK) {
        destroy(h);
        return s;
    }
    *self = h;
    return BSC_OK;
}

typedef struct hv_ctx {
    const bsc_study *st;
    const hess *h;
    const bsc_tensor *x;
    bsc_tensor v, gp, gm;
    float *hv;
    long products;
    double *stamp;       /* stamp[i]: when product i finished (stamp[0]: start) */
    long max_stamps;
} hv_ctx;

static bsc_status hvp(void *user, const double *v, double *out)
{
    hv_ctx *c = user;
    bsc_context *ctx = c->st->ctx;
    bsc_model *m = c->st->model;
    size_t np = bsc_model_n_params(m);
    double nv = 0;
    for (size_t i = 0; i < np; i++) {
        nv += v[i] * v[i];
        c->hv[i] = (float)v[i];
    }
    nv = sqrt(nv);
    if (!(nv > 0)) {
        memset(out, 0, np * sizeof *out);
        return BSC_OK;
    }
    double t = c->h->fd_step / nv;
    bsc_status s = ana_interrupted(c->st);
    if (s != BSC_OK)
        return s;
    if ((s = bsc_tensor_write(ctx, &c->v, c->hv)) != BSC_OK ||
        (s = ana_lincomb(ctx, np, 1.0f, c->x, (float)t, &c->v, 0, NULL,
                         bsc_model_params(m))) != BSC_OK ||
        (s = bsc_eval_grad(c->st->eval, BSC_SPLIT_TRAIN, c->h->subset, &c->gp, NULL)) !=
            BSC_OK ||
        (s = ana_lincomb(ctx, np, 1.0f, c->x, (float)-t, &c->v, 0, NULL,
                         bsc_model_params(m))) != BSC_OK ||
        (s = bsc_eval_grad(c->st->eval, BSC_SPLIT_TRAIN, c->h->subset, &c->gm, NULL)) !=
            BSC_OK ||
        (s = bsc_tensor_read(ctx, &c->gp, c->hv)) != BSC_OK)
        return s;
    for (size_t i = 0; i < np; i++)
        out[i] = c->hv[i];
    if ((s = bsc_tensor_read(ctx, &c->gm, c->hv)) != BSC_OK)
        return s;
    /* Difference and division in double on the host, where the power
     * iteration wants the product anyway: one rounding fewer than on the
     * device. */
    for (size_t i = 0; i < np; i++)
        out[i] = (out[i] - c->hv[i]) / (2.0 * t);
    c->products++;
    if (c->products < c->max_stamps)
        c->stamp[c->products] = bsc_now();
    return BSC_OK;
}

static bsc_status add_row(bsc_table *t, const bsc_run_result *r, const char *q, int k,
                          double value, double se, long products, double seconds)
{
    bsc_metrics_row row;
    bsc_status s;
    char nb[32];
    if ((s = bsc_table_add_row(t, &row)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_RUN, bsc_run_result_name(r, nb, sizeof nb))) !=
            BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_BATCH_SIZE, (double)r->batch_size)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_QUANTITY, q)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "k", k)) != BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_VALUE, value)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "std_err", se)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "hv_products", (double)products)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "seconds", seconds)) != BSC_OK)
        return s;
    return bsc_metrics_set_str(&row, BSC_COL_STATUS, BSC_ROW_OK);
}

/* What ana_for_each_run hands the callbacks. */
typedef struct hess_job {
    const hess *h;
    const bsc_study *st;
    bsc_table *t;
} hess_job;

/* A run left out (diverged, not finished) or failed: one row that says so. */
static bsc_status skip_row(void *user, const char *run, size_t batch_size, const char *why)
{
    bsc_table *t = ((hess_job *)user)->t;
    bsc_metrics_row row;
    bsc_status s;
    if ((s = bsc_table_add_row(t, &row)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_RUN, run)) != BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_BATCH_SIZE, batch_size ? (double)batch_size : NAN)) !=
            BSC_OK)
        return s;
    return bsc_metrics_set_str(&row, BSC_COL_STATUS, why);
}

static bsc_status one(const hess *h, const bsc_study *st, const bsc_run_result *r,
                      bsc_table *t)
{
    bsc_context *ctx = st->ctx;
    bsc_model *m = st->model;
    size_t np = bsc_model_n_params(m), ns = bsc_model_n_state(m);
    hv_ctx c;
    memset(&c, 0, sizeof c);
    c.st = st;
    c.h = h;
    c.x = r->final_params;
    c.hv = malloc(np * sizeof *c.hv);
    c.max_stamps = h->top_k * h->max_iter + 1;
    c.stamp = malloc((size_t)c.max_stamps * sizeof *c.stamp);
    double *lambda = calloc((size_t)h->top_k, sizeof *lambda);
    int *iters = calloc((size_t)h->top_k, sizeof *iters);
    bsc_status s = c.hv && c.stamp && lambda && iters ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && ns)
        s = bsc_tensor_copy(ctx, r->final_state, bsc_model_state(m));
    if (s == BSC_OK && (s = ana_vec_alloc(ctx, np, &c.v)) == BSC_OK &&
        (s = ana_vec_alloc(ctx, np, &c.gp)) == BSC_OK)
        s = ana_vec_alloc(ctx, np, &c.gm);
    if (s != BSC_OK)
        goto cleanup;
    c.stamp[0] = bsc_now();
    ana_eig_opts eo = {(int)h->top_k, (int)h->max_iter, h->tol, st->seed};
    if ((s = ana_power_topk(np, &eo, hvp, &c, lambda, iters, NULL)) != BSC_OK)
        goto cleanup;
    double t1 = bsc_now();
    for (long k = 0, first = 0; k < h->top_k; first += iters[k], k++)
        if ((s = add_row(t, r, BSC_QUANTITY_EIGENVALUE, (int)k + 1, lambda[k], NAN, iters[k],
                         c.stamp[first + iters[k]] - c.stamp[first])) != BSC_OK)
            goto cleanup;
    if (h->trace_samples > 0) {
        double tr, se;
        long before = c.products;
        if ((s = ana_hutchinson(np, (int)h->trace_samples, st->seed, hvp, &c, &tr, &se)) !=
                BSC_OK ||
            (s = add_row(t, r, BSC_QUANTITY_TRACE, 0, tr, se, c.products - before,
                         bsc_now() - t1)) != BSC_OK)
            goto cleanup;
    }
cleanup:
    bsc_tensor_free(&c.v);
    bsc_tensor_free(&c.gp);
    bsc_tensor_free(&c.gm);
    free(c.hv);
    free(c.stamp);
    free(lambda);
    free(iters);
    return s;
}

static bsc_status one_run(void *user, const bsc_run_result *r)
{
    hess_job *j = user;
    return one(j->h, j->st, r, j->t);
}

static bsc_status post(void *self, const bsc_study *st)
{
    hess *h = self;
    bsc_table *t = NULL;
    char *path = NULL;
    bsc_status s = bsc_table_new(&t);
    static const char *const cols[] = {BSC_COL_RUN, BSC_COL_BATCH_SIZE, BSC_COL_QUANTITY, "k",
                                       BSC_COL_VALUE, "std_err", "hv_products", "seconds",
                                       BSC_COL_STATUS};
    for (size_t k = 0; s == BSC_OK && k < sizeof cols / sizeof cols[0]; k++)
        s = bsc_table_column(t, cols[k]);
    hess_job job = {h, st, t};
    /* A run that fails still leaves the table of the others. */
    bsc_status rs = s == BSC_OK ? ana_for_each_run(st, h->runs, h->n_runs, "hessian", one_run,
                                                   skip_row, &job)
                                : s;
    if (rs == BSC_ERR_INTERRUPTED || s != BSC_OK)
        goto cleanup;
    char *err = rs != BSC_OK ? strdup(bsc_last_error()) : NULL;
    if ((s = ana_out_path(st, BSC_FILE_HESSIAN, &path)) == BSC_OK)
        s = bsc_table_write_csv(t, path);
    if (s == BSC_OK && rs != BSC_OK)
        bsc_fail(rs, "%s", err ? err : bsc_status_str(rs));
    free(err);
cleanup:
    bsc_table_free(t);
    free(path);
    return s != BSC_OK ? s : rs;
}

BSC_ANALYSIS_TYPE(ana_hessian, "hessian",
               "top-k Hessian eigenvalues by power iteration and Hutchinson's trace",
               BSC_OPTIONS(BSC_OPT("runs", BSC_OPT_LIST, "", "batch sizes or run names (default: every run)"),
                           BSC_OPT("top_k", BSC_OPT_INT, "1", "eigenvalues of largest magnitude"),
                           BSC_OPT("max_iter", BSC_OPT_INT, "100", "products per eigenvalue, at most"),
                           BSC_OPT("tol", BSC_OPT_FLOAT, "1e-3", "relative change of the Rayleigh quotient"),
                           BSC_OPT("trace_samples", BSC_OPT_INT, "10", "Hutchinson probes (0: no trace)"),
                           BSC_OPT("fd_step", BSC_OPT_FLOAT, "1e-2", "finite-difference step of the products"),
                           BSC_OPT("subset", BSC_OPT_INT, "0", "training examples evaluated (0: all)")),
               .create = create,
               .run = post,
               .destroy = destroy);
