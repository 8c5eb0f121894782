/* sharpness: Keskar et al. (2016), "On Large-Batch Training for Deep
 * Learning: Generalization Gap and Sharp Minima", metric 2.1:
 *
 *     phi = 100 * (max_{z in C} f(x + z) - f(x)) / (1 + f(x)),
 *     C = { z : |z_i| <= eps (|x_i| + 1) },
 *
 * f the mean training loss, the max found by L-BFGS-B (minimizing -f) from
 * z = 0 in at most max_iter iterations (10 in the paper). The random-subspace
 * variant searches x + A y, A an n x p matrix of standard normals, over
 * |y_i| <= eps (|(A^+ x)_i| + 1), A^+ = (A^T A)^-1 A^T the pseudo-inverse.
 *
 *   - type: sharpness
 *     runs: [32, bs256-sqrt] # batch sizes or run names (default: every run)
 *     eps: 1e-3              # or a list: [1e-3, 5e-4]
 *     variants: [full, subspace]
 *     p: 100                 # subspace dimension
 *     memory: 10             # L-BFGS-B corrections
 *     max_iter: 10
 *     max_evals: 0           # 0: no limit beyond setulb's line searches
 *     start: zero            # zero | random (uniform in the box)
 *     subset: 0              # training examples (0: all)
 *
 * fmax is the largest loss of every point L-BFGS-B evaluated (each is in
 * the box), so phi is a lower bound of the true maximum, as in the paper.
 * Output OUT/analyses/sharpness.csv: run, batch_size, eps, variant, f0, fmax,
 * sharpness, iterations, evaluations, seconds, stop (why L-BFGS-B stopped:
 * "STOP: iteration limit", or setulb's own "CONVERGENCE: ..." -- in the
 * subspace the box corners are often reached within a few iterations),
 * status ("ok"; "skipped: diverged", "skipped: run ... did not finish" or
 * "failed: ..." in the one row of a run left out, the others computed).
 *
 * Units of work (plugin.h): one per run, eps and variant, in the table's
 * order (rows.c), so `mpirun` spreads the maximizations over its ranks.
 */
#include "analyses.h"

#include "batchscope/blas.h"
#include "batchscope/fsutil.h"
#include "batchscope/rng.h"
#include "batchscope/table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct sharp {
    const bsc_node *node;
    const bsc_node **runs;     /* selectors; NULL: every run */
    size_t n_runs;
    double *eps;
    size_t n_eps;
    int full, subspace;
    long p, memory, max_iter, max_evals;
    int random_start;
    size_t subset;
    /* What plan() listed: an item per (run, eps, variant), a unit each. */
    ana_rows rows;
    bsc_tensor a;              /* the subspace matrix, drawn once per process */
} sharp;

static void destroy(void *self)
{
    sharp *sh = self;
    if (!sh)
        return;
    free(sh->runs);
    free(sh->eps);
    ana_rows_clear(&sh->rows);
    bsc_tensor_free(&sh->a);
    free(sh);
}

static bsc_status create(const bsc_component_config *cfg, void **self)
{
    *self = NULL;
    const bsc_node *o = cfg->options;
    bsc_status s;
    sharp *sh = calloc(1, sizeof *sh);
    if (!sh)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    sh->node = o;
    const double def_eps = 1e-3;
    const char *start;
    static const char *const starts[] = {"zero", "random", NULL};
    if ((s = ana_opt_runs(cfg, o, "runs", &sh->runs, &sh->n_runs)) != BSC_OK ||
        (s = bsc_opt_double_list(o, "eps", &def_eps, 1, 1e-12, 1e3, &sh->eps, &sh->n_eps)) !=
            BSC_OK ||
        (s = bsc_opt_long(o, "p", 100, 1, 100000, &sh->p)) != BSC_OK ||
        (s = bsc_opt_long(o, "memory", 10, 1, 100, &sh->memory)) != BSC_OK ||
        (s = bsc_opt_long(o, "max_iter", 10, 1, 100000, &sh->max_iter)) != BSC_OK ||
        (s = bsc_opt_long(o, "max_evals", 0, 0, 1000000, &sh->max_evals)) != BSC_OK ||
        (s = bsc_opt_string(o, "start", "zero", starts, &start)) != BSC_OK ||
        (s = ana_opt_subset(o, "subset", &sh->subset)) != BSC_OK)
        goto fail;
    sh->random_start = strcmp(start, "random") == 0;
    const bsc_node *v = bsc_node_get(o, "variants");
    if (!v) {
        sh->full = sh->subspace = 1;
    } else {
        size_t n = v->kind == BSC_NODE_SEQ ? v->n : 1;
        for (size_t i = 0; i < n; i++) {
            const bsc_node *it = v->kind == BSC_NODE_SEQ ? v->items[i] : v;
            static const char *const names[] = {"full", "subspace", NULL};
            const char *name;
            if ((s = bsc_node_to_string(it, &name)) != BSC_OK)
                goto fail;
            if (strcmp(name, "full") == 0) {
                sh->full = 1;
            } else if (strcmp(name, "subspace") == 0) {
                sh->subspace = 1;
            } else {
                const char *hint = bsc_closest_name(name, names, 2);
                s = bsc_node_fail(it, BSC_ERR_INVALID, "unknown variant '%s'%s%s%s (full or "
                                  "subspace)", name, hint ? " (did you mean '" : "",
                                  hint ? hint : "", hint ? "'?)" : "");
                goto fail;
            }
        }
    }
    *self = sh;
    return BSC_OK;
fail:
    destroy(sh);
    return s;
}

/* f(y) = -loss(x + A y) (A = identity for the full space) and its gradient. */
typedef struct fg_ctx {
    const bsc_study *st;
    size_t subset;
    size_t n;            /* variables: n_params or p */
    const bsc_tensor *x; /* the minimizer */
    bsc_tensor *a;       /* [n_params, p] or NULL */
    bsc_tensor z, g, y, gy;
    float *hz, *hg;
    char label[96];      /* progress: iterations of at most max_iter */
    int max_iter;
} fg_ctx;

static void on_iteration(void *user, int iterations)
{
    fg_ctx *c = user;
    bsc_study_progress(c->st, c->label, "iterations", (size_t)iterations, (size_t)c->max_iter);
}

static bsc_status fg(void *user, const double *v, double *f, double *g)
{
    fg_ctx *c = user;
    bsc_context *ctx = c->st->ctx;
    bsc_model *m = c->st->model;
    size_t np = bsc_model_n_params(m);
    bsc_status s = ana_interrupted(c->st);
    if (s != BSC_OK)
        return s;
    for (size_t i = 0; i < c->n; i++)
        c->hz[i] = (float)v[i];
    if (c->a) {
        size_t p = c->n;
        if ((s = bsc_tensor_write(ctx, &c->y, c->hz)) != BSC_OK ||
            (s = bsc_gemm(ctx, 0, 0, np, 1, p, 1.0f, c->a, p, &c->y, 1, 0.0f, &c->z, 1)) !=
                BSC_OK)
            return s;
    } else if ((s = bsc_tensor_write(ctx, &c->z, c->hz)) != BSC_OK) {
        return s;
    }
    double loss;
    if ((s = bsc_tensor_combine(ctx, np, 1.0f, c->x, 1.0f, &c->z, 0, NULL,
                                bsc_model_params(m))) != BSC_OK ||
        (s = bsc_eval_grad(c->st->eval, BSC_SPLIT_TRAIN, c->subset, &c->g, &loss)) != BSC_OK)
        return s;
    if (c->a) {
        /* d/dy loss(x + A y) = A^T g */
        if ((s = bsc_gemm(ctx, 1, 0, c->n, 1, np, 1.0f, c->a, c->n, &c->g, 1, 0.0f, &c->gy,
                          1)) != BSC_OK ||
            (s = bsc_tensor_read(ctx, &c->gy, c->hg)) != BSC_OK)
            return s;
    } else if ((s = bsc_tensor_read(ctx, &c->g, c->hg)) != BSC_OK) {
        return s;
    }
    *f = -loss;
    for (size_t i = 0; i < c->n; i++)
        g[i] = -(double)c->hg[i];
    return BSC_OK;
}

/* Solves the SPD system M b = r (p x p, row-major, overwritten) by Cholesky. */
static bsc_status cholesky_solve(size_t p, double *M, double *r)
{
    for (size_t j = 0; j < p; j++) {
        double d = M[j * p + j];
        for (size_t k = 0; k < j; k++)
            d -= M[j * p + k] * M[j * p + k];
        if (!(d > 0))
            return bsc_fail(BSC_ERR_INTERNAL, "sharpness: A^T A is not positive definite "
                            "(p larger than the number of parameters?)");
        d = sqrt(d);
        M[j * p + j] = d;
        for (size_t i = j + 1; i < p; i++) {
            double e = M[i * p + j];
            for (size_t k = 0; k < j; k++)
                e -= M[i * p + k] * M[j * p + k];
            M[i * p + j] = e / d;
        }
    }
    for (size_t i = 0; i < p; i++) {       /* L w = r */
        for (size_t k = 0; k < i; k++)
            r[i] -= M[i * p + k] * r[k];
        r[i] /= M[i * p + i];
    }
    for (size_t i = p; i-- > 0;) {         /* L^T b = w */
        for (size_t k = i + 1; k < p; k++)
            r[i] -= M[k * p + i] * r[k];
        r[i] /= M[i * p + i];
    }
    return BSC_OK;
}

/* The subspace matrix A (standard normals, BSC_RNG_SHARPNESS stream 0, the
 * same for every run) on the device, and A^+ x for the run's x. */
static bsc_status subspace_setup(const sharp *sh, const bsc_study *st, const bsc_tensor *x,
                                 bsc_tensor *a, double *apx)
{
    bsc_context *ctx = st->ctx;
    size_t np = bsc_model_n_params(st->model), p = (size_t)sh->p;
    if (p > np)
        return bsc_node_fail(bsc_node_get(sh->node, "p"), BSC_ERR_INVALID,
                             "p = %zu exceeds the %zu parameters", p, np);
    bsc_status s = BSC_OK;
    if (!a->mem) {
        float *h = malloc(np * p * sizeof *h);
        if (!h)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory for the %zu x %zu subspace", np, p);
        bsc_rng_fill_normal(st->seed, BSC_RNG_SHARPNESS, 0, h, np * p, 0.0f, 1.0f);
        int64_t d[2] = {(int64_t)np, (int64_t)p};
        bsc_shape sh2 = bsc_shape_make(2, d);
        if ((s = bsc_tensor_alloc(ctx, BSC_F32, &sh2, a)) == BSC_OK)
            s = bsc_tensor_write(ctx, a, h);
        free(h);
        if (s != BSC_OK)
            return s;
    }
    /* A^T A and A^T x on the device (one GEMM each), the p x p solve on the
     * host in double. */
    bsc_tensor ata = {0}, atx = {0};
    float *h_ata = malloc(p * p * sizeof *h_ata), *h_atx = malloc(p * sizeof *h_atx);
    double *M = malloc(p * p * sizeof *M);
    if (!h_ata || !h_atx || !M)
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && (s = ana_vec_alloc(ctx, p * p, &ata)) == BSC_OK &&
        (s = ana_vec_alloc(ctx, p, &atx)) == BSC_OK &&
        (s = bsc_gemm(ctx, 1, 0, p, p, np, 1.0f, a, p, a, p, 0.0f, &ata, p)) == BSC_OK &&
        (s = bsc_gemm(ctx, 1, 0, p, 1, np, 1.0f, a, p, x, 1, 0.0f, &atx, 1)) == BSC_OK &&
        (s = bsc_tensor_read(ctx, &ata, h_ata)) == BSC_OK &&
        (s = bsc_tensor_read(ctx, &atx, h_atx)) == BSC_OK) {
        for (size_t i = 0; i < p * p; i++)
            M[i] = h_ata[i];
        for (size_t i = 0; i < p; i++)
            apx[i] = h_atx[i];
        s = cholesky_solve(p, M, apx);
    }
    bsc_tensor_free(&ata);
    bsc_tensor_free(&atx);
    free(h_ata);
    free(h_atx);
    free(M);
    return s;
}

static bsc_status one(const sharp *sh, const bsc_study *st, const bsc_run_result *r, double eps,
                      int subspace, bsc_tensor *a, bsc_table *t)
{
    bsc_context *ctx = st->ctx;
    bsc_model *m = st->model;
    size_t np = bsc_model_n_params(m), ns = bsc_model_n_state(m);
    size_t n = subspace ? (size_t)sh->p : np;
    double t0 = bsc_now(), f0;
    fg_ctx c;
    memset(&c, 0, sizeof c);
    c.st = st;
    c.subset = sh->subset;
    c.n = n;
    c.x = r->final_params;
    c.a = subspace ? a : NULL;
    char rn[32];
    snprintf(c.label, sizeof c.label, "sharpness %s eps %g %s",
             bsc_run_result_name(r, rn, sizeof rn), eps, subspace ? "subspace" : "full");
    c.max_iter = (int)sh->max_iter;
    double *v = calloc(n, sizeof *v), *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi);
    double *center = malloc(n * sizeof *center);
    float *hx = subspace ? NULL : malloc(np * sizeof *hx);
    c.hz = malloc(n * sizeof *c.hz);
    c.hg = malloc(n * sizeof *c.hg);
    bsc_status s = v && lo && hi && center && c.hz && c.hg && (subspace || hx)
                       ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && ns)
        s = bsc_tensor_copy(ctx, r->final_state, bsc_model_state(m));
    if (s == BSC_OK)
        s = bsc_eval_loss_at(st->eval, r->final_params, NULL, BSC_SPLIT_TRAIN, sh->subset, &f0,
                             NULL);
    if (s == BSC_OK && subspace) {
        s = subspace_setup(sh, st, r->final_params, a, center);
    } else if (s == BSC_OK) {
        s = bsc_tensor_read(ctx, r->final_params, hx);
        for (size_t i = 0; s == BSC_OK && i < n; i++)
            center[i] = hx[i];
    }
    if (s == BSC_OK && (s = ana_vec_alloc(ctx, np, &c.z)) == BSC_OK &&
        (s = ana_vec_alloc(ctx, np, &c.g)) == BSC_OK && subspace &&
        (s = ana_vec_alloc(ctx, n, &c.y)) == BSC_OK)
        s = ana_vec_alloc(ctx, n, &c.gy);
    if (s != BSC_OK)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        double b = eps * (fabs(center[i]) + 1.0);
        lo[i] = -b;
        hi[i] = b;
        v[i] = sh->random_start
                   ? (2.0 * bsc_rng_uniform(st->seed, BSC_RNG_SHARPNESS, 1, i) - 1.0) * b
                   : 0.0;
    }
    ana_lbfgsb_opts lo_opts = {(int)sh->memory, (int)sh->max_iter, (int)sh->max_evals,
                               1e7, 1e-5, on_iteration};
    ana_lbfgsb_result res;
    bsc_study_progress(st, c.label, "iterations", 0, (size_t)c.max_iter);
    if ((s = ana_lbfgsb_minimize(n, v, lo, hi, &lo_opts, fg, &c, &res)) != BSC_OK)
        goto cleanup;
    /* Converged before max_iter: the item is done. */
    bsc_study_progress(st, c.label, "iterations", (size_t)c.max_iter, (size_t)c.max_iter);
    double fmax = -res.f;
    bsc_metrics_row row;
    char nb[32];
    if ((s = bsc_table_add_row(t, &row)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_RUN, bsc_run_result_name(r, nb, sizeof nb))) !=
            BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_BATCH_SIZE, (double)r->batch_size)) != BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_EPS, eps)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_VARIANT,
                                 subspace ? BSC_VARIANT_SUBSPACE : BSC_VARIANT_FULL)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "f0", f0)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "fmax", fmax)) != BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_SHARPNESS, 100.0 * (fmax - f0) / (1.0 + f0))) !=
            BSC_OK ||
        (s = bsc_metrics_set(&row, "iterations", res.iterations)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "evaluations", res.evaluations)) != BSC_OK)
        goto cleanup;
    if ((s = bsc_metrics_set(&row, "seconds", bsc_now() - t0)) == BSC_OK &&
        (s = bsc_metrics_set_str(&row, "stop", res.task)) == BSC_OK)
        s = bsc_metrics_set_str(&row, BSC_COL_STATUS, BSC_ROW_OK);
cleanup:
    bsc_tensor_free(&c.z);
    bsc_tensor_free(&c.g);
    bsc_tensor_free(&c.y);
    bsc_tensor_free(&c.gy);
    free(c.hz);
    free(c.hg);
    free(v);
    free(lo);
    free(hi);
    free(center);
    free(hx);
    return s;
}

/* ------------------------------------------------------------------ units */

/* What ana_for_each_run hands the callbacks. */
typedef struct sharp_job {
    sharp *sh;
    const bsc_study *st;
} sharp_job;

/* A usable run: a unit per eps and variant, in the table's order. */
static bsc_status plan_run(void *user, const bsc_run_result *r)
{
    sharp *sh = ((sharp_job *)user)->sh;
    char nb[32], ctx[96];
    const char *name = bsc_run_result_name(r, nb, sizeof nb);
    snprintf(ctx, sizeof ctx, "sharpness of run %s", name);
    bsc_status s = BSC_OK;
    for (size_t e = 0; s == BSC_OK && e < sh->n_eps; e++) {
        if (sh->full)
            s = ana_rows_add(&sh->rows, name, (double)r->batch_size, ctx, r, e, 0);
        if (s == BSC_OK && sh->subspace)
            s = ana_rows_add(&sh->rows, name, (double)r->batch_size, ctx, r, e, 1);
    }
    return s;
}

/* A run left out (diverged, not finished): one row that says so. */
static bsc_status plan_skip(void *user, const char *run, size_t batch_size, const char *why)
{
    sharp *sh = ((sharp_job *)user)->sh;
    return ana_rows_skip(&sh->rows, run, batch_size ? (double)batch_size : NAN, why, BSC_OK);
}

static bsc_status plan(void *self, const bsc_study *st, size_t *n_units)
{
    sharp *sh = self;
    sharp_job job = {sh, st};
    ana_rows_clear(&sh->rows);
    sh->rows.n_tables = 1;
    *n_units = 0;
    bsc_status s = ana_for_each_run(st, sh->runs, sh->n_runs, "sharpness", plan_run, plan_skip,
                                    &job);
    if (s == BSC_OK)
        *n_units = sh->rows.n_units;
    return s;
}

static bsc_status unit_rows(void *user, const ana_slot *it, bsc_table *const *t)
{
    sharp_job *j = user;
    return one(j->sh, j->st, it->r, j->sh->eps[it->a], (int)it->b, &j->sh->a, t[0]);
}

/* A unit's bytes: its row (f0, fmax, ... bit for bit), or its failure. */
static bsc_status run_unit(void *self, const bsc_study *st, size_t unit, void **result,
                           size_t *len)
{
    sharp_job job = {self, st};
    return ana_rows_run(&job.sh->rows, unit, unit_rows, &job, result, len);
}

static bsc_status merge(void *self, const bsc_study *st, size_t unit, const void *result,
                        size_t len)
{
    (void)st;
    return ana_rows_merge(&((sharp *)self)->rows, unit, result, len);
}

static bsc_status finish(void *self, const bsc_study *st)
{
    sharp *sh = self;
    bsc_table *t = NULL;
    char *path = NULL, *err = NULL;
    bsc_status s, rs = BSC_OK;
    if ((s = bsc_table_new(&t)) != BSC_OK)
        return s;
    /* Declared up front so the header is complete even for zero rows. */
    static const char *const cols[] = {BSC_COL_RUN, BSC_COL_BATCH_SIZE, BSC_COL_EPS,
                                       BSC_COL_VARIANT, "f0", "fmax", BSC_COL_SHARPNESS,
                                       "iterations", "evaluations", "seconds", "stop",
                                       BSC_COL_STATUS};
    for (size_t k = 0; s == BSC_OK && k < sizeof cols / sizeof cols[0]; k++)
        s = bsc_table_column(t, cols[k]);
    /* A run that failed still leaves the table of the others. */
    if (s == BSC_OK)
        s = ana_rows_finish(&sh->rows, &t, &rs, &err);
    if (s == BSC_OK && (s = ana_out_path(st, BSC_FILE_SHARPNESS, &path)) == BSC_OK)
        s = bsc_table_write_csv(t, path);
    if (s == BSC_OK && rs != BSC_OK)
        bsc_fail(rs, "%s", err ? err : bsc_status_str(rs));
    bsc_table_free(t);
    free(path);
    free(err);
    return s != BSC_OK ? s : rs;
}

static bsc_status post(void *self, const bsc_study *st)
{
    static const bsc_analysis_ops ops = {.plan = plan, .run_unit = run_unit, .merge = merge,
                                         .finish = finish};
    return ana_run_units(&ops, self, st);
}

BSC_ANALYSIS_TYPE(ana_sharpness, "sharpness",
               "Keskar et al. sharpness: max loss in the box |z_i| <= eps(|x_i|+1) by L-BFGS-B",
               BSC_OPTIONS(BSC_OPT("runs", BSC_OPT_LIST, "", "batch sizes or run names (default: every run)"),
                           BSC_OPT("eps", BSC_OPT_ANY, "1e-3", "box size, or a list [1e-3, 5e-4]"),
                           BSC_OPT("variants", BSC_OPT_LIST, "[full, subspace]", "full space and/or a random p-dimensional subspace"),
                           BSC_OPT("p", BSC_OPT_INT, "100", "subspace dimension"),
                           BSC_OPT("memory", BSC_OPT_INT, "10", "L-BFGS-B corrections"),
                           BSC_OPT("max_iter", BSC_OPT_INT, "10", "L-BFGS-B iterations"),
                           BSC_OPT("max_evals", BSC_OPT_INT, "0", "function evaluations at most (0: no limit)"),
                           BSC_OPT("start", BSC_OPT_STRING, "zero", "zero, or random (uniform in the box)"),
                           BSC_OPT("subset", BSC_OPT_INT, "0", "training examples evaluated (0: all)")),
               .create = create,
               .run = post,
               .destroy = destroy,
               .plan = plan,
               .run_unit = run_unit,
               .merge = merge,
               .finish = finish);
