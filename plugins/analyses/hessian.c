/* hessian: the curvature of the training loss at each run's minimizer (or
 * at given checkpoints), from Hessian-vector products (hvp.c: exact by the
 * R-operator, or finite differences for plugin layers without it):
 *
 *  - the top-k (and bottom-k) eigenvalues by Lanczos with full
 *    reorthogonalization, stopped on the Ritz residuals (eigen.c);
 *  - the trace by Hutchinson's estimator with its standard error, and the
 *    spectral density by stochastic Lanczos quadrature from the first
 *    probes (slq.c; Ghorbani et al. 2019, drawn as PyHessian does);
 *  - per parameter tensor (blocks: true), the trace of its diagonal block
 *    (from the same probes) and its top eigenvalue (Lanczos on the block).
 *
 *   - type: hessian
 *     runs: [32, bs256-sqrt]  # batch sizes or run names (default: every run)
 *     checkpoints: [a.safetensors]  # and/or checkpoint files of this model
 *     method: auto         # exact | fd | auto (exact when every layer has it)
 *     top_k: 3             # largest eigenvalues
 *     bottom_k: 0          # smallest eigenvalues
 *     max_iter: 100        # Lanczos products at most
 *     tol: 1e-4            # Ritz residual / |eigenvalue|
 *     trace_samples: 30    # Hutchinson probes (0: no trace, no density)
 *     density_probes: 2    # of those, quadratures for the density (0: none)
 *     density_steps: 50    # Lanczos steps (nodes) per quadrature
 *     density_bins: 10000  # grid points
 *     density_sigma2: 1e-5 # Gaussian variance per unit of spectrum width
 *     blocks: false        # per-tensor trace and top eigenvalue
 *     block_max_iter: 30   # Lanczos products per block, at most
 *     fd_step: 1e-2        # perturbation norm of the fd products
 *     subset: 0            # training examples (0: all)
 *
 * Output, OUT/analyses/:
 *   hessian.csv          run, batch_size, block ("all" or a tensor name like
 *                        "1.weight"), quantity (eigenvalue | bottom_eigenvalue
 *                        | trace), k (rank from the top / bottom; 0 for the
 *                        trace), value, std_err (trace), residual (Ritz
 *                        residual, a bound on |value - eigenvalue|),
 *                        converged, method (exact | fd), hv_products, seconds,
 *                        status ("ok", or why a run or checkpoint was left out)
 *   hessian_density.csv  run, batch_size, lambda, density, std_err (over the
 *                        quadratures), method
 *   hessian_slq.csv      run, batch_size, probe, node, weight: the quadratures
 *                        themselves, to smooth otherwise
 *
 * Units of work (plugin.h): one per run and per checkpoint, each returning
 * its rows of the three tables (rows.c).
 */
#include "analyses.h"

#include "batchscope/fsutil.h"
#include "batchscope/safetensors.h"
#include "batchscope/table.h"

#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_AUTO, M_EXACT, M_FD };

typedef struct hess {
    const bsc_node *node, *method_node;
    const bsc_node **runs;     /* selectors; NULL: every run (unless checkpoints) */
    size_t n_runs;
    char **ckpt;               /* resolved checkpoint paths */
    size_t n_ckpt;
    int method, blocks;
    long top_k, bottom_k, max_iter, trace_samples, density_probes, density_steps,
        density_bins, block_max_iter;
    double tol, fd_step, sigma2;
    size_t subset;
    /* What plan() listed: a unit per run and per checkpoint. */
    ana_rows rows;
} hess;

static void destroy(void *self)
{
    hess *h = self;
    if (!h)
        return;
    for (size_t i = 0; i < h->n_ckpt; i++)
        free(h->ckpt[i]);
    free(h->ckpt);
    free(h->runs);
    ana_rows_clear(&h->rows);
    free(h);
}

static bsc_status opt_checkpoints(hess *h, const bsc_node *o)
{
    const bsc_node *v = bsc_node_get(o, "checkpoints");
    if (!v)
        return BSC_OK;
    size_t n = v->kind == BSC_NODE_SEQ ? v->n : 1;
    if (!(h->ckpt = calloc(n ? n : 1, sizeof *h->ckpt)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        bsc_status s = ana_node_path(v->kind == BSC_NODE_SEQ ? v->items[i] : v, &h->ckpt[i]);
        if (s != BSC_OK)
            return s;
        h->n_ckpt++;
    }
    return BSC_OK;
}

static bsc_status create(const bsc_component_config *cfg, void **self)
{
    *self = NULL;
    const bsc_node *o = cfg->options;
    static const char *const methods[] = {"auto", "exact", "fd", NULL};
    const char *method;
    bsc_status s;
    hess *h = calloc(1, sizeof *h);
    if (!h)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    h->node = o;
    h->method_node = bsc_node_get(o, "method");
    if ((s = ana_opt_runs(cfg, o, "runs", &h->runs, &h->n_runs)) != BSC_OK ||
        (s = opt_checkpoints(h, o)) != BSC_OK ||
        (s = bsc_opt_string(o, "method", "auto", methods, &method)) != BSC_OK ||
        (s = bsc_opt_long(o, "top_k", 3, 0, ANA_MAX_EIGS, &h->top_k)) != BSC_OK ||
        (s = bsc_opt_long(o, "bottom_k", 0, 0, ANA_MAX_EIGS, &h->bottom_k)) != BSC_OK ||
        (s = bsc_opt_long(o, "max_iter", 100, 1, 100000, &h->max_iter)) != BSC_OK ||
        (s = bsc_opt_double(o, "tol", 1e-4, 0, 1, &h->tol)) != BSC_OK ||
        (s = bsc_opt_long(o, "trace_samples", 30, 0, 100000, &h->trace_samples)) != BSC_OK ||
        (s = bsc_opt_long(o, "density_probes", 2, 0, 1000, &h->density_probes)) != BSC_OK ||
        (s = bsc_opt_long(o, "density_steps", 50, 1, 10000, &h->density_steps)) != BSC_OK ||
        (s = bsc_opt_long(o, "density_bins", 10000, 2, 1000000, &h->density_bins)) != BSC_OK ||
        (s = bsc_opt_double(o, "density_sigma2", 1e-5, 1e-12, 1e6, &h->sigma2)) != BSC_OK ||
        (s = bsc_opt_bool(o, "blocks", 0, &h->blocks)) != BSC_OK ||
        (s = bsc_opt_long(o, "block_max_iter", 30, 1, 100000, &h->block_max_iter)) != BSC_OK ||
        (s = bsc_opt_double(o, "fd_step", 1e-2, 1e-8, 1e3, &h->fd_step)) != BSC_OK ||
        (s = ana_opt_subset(o, "subset", &h->subset)) != BSC_OK)
        goto fail;
    h->method = !strcmp(method, "exact") ? M_EXACT : !strcmp(method, "fd") ? M_FD : M_AUTO;
    if (h->top_k + h->bottom_k < 1 && h->trace_samples < 1) {
        s = bsc_node_fail(o, BSC_ERR_INVALID, "hessian: nothing to compute (top_k, bottom_k "
                          "and trace_samples are all 0)");
        goto fail;
    }
    /* The quadratures start from trace probes: asked for explicitly, no
     * more of them than probes; by default, as many as there are. */
    if (h->density_probes > h->trace_samples) {
        const bsc_node *dp = bsc_node_get(o, "density_probes");
        if (dp) {
            s = bsc_node_fail(dp, BSC_ERR_INVALID, "density_probes (%ld) are among the "
                              "trace_samples (%ld): at most as many", h->density_probes,
                              h->trace_samples);
            goto fail;
        }
        h->density_probes = h->trace_samples;
    }
    *self = h;
    return BSC_OK;
fail:
    destroy(h);
    return s;
}

/* ----------------------------------------------------------------- rows */

/* One point the Hessian is taken at: a run's minimizer or a checkpoint. */
typedef struct target {
    const char *name;
    double batch_size;
    const bsc_tensor *params, *state;
    const char *method;       /* "exact" or "fd" */
} target;

static bsc_status row_start(bsc_table *t, const target *g, bsc_metrics_row *row)
{
    bsc_status s;
    if ((s = bsc_table_add_row(t, row)) != BSC_OK ||
        (s = bsc_metrics_set_str(row, BSC_COL_RUN, g->name)) != BSC_OK)
        return s;
    return bsc_metrics_set(row, BSC_COL_BATCH_SIZE, g->batch_size);
}

static bsc_status add_row(bsc_table *t, const target *g, const char *block, const char *q, int k,
                          double value, double se, double residual, double converged,
                          long products, double seconds)
{
    bsc_metrics_row row;
    bsc_status s;
    if ((s = row_start(t, g, &row)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_BLOCK, block)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_QUANTITY, q)) != BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_K, k)) != BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_VALUE, value)) != BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_STD_ERR, se)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "residual", residual)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "converged", converged)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_METHOD, g->method)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "hv_products", (double)products)) != BSC_OK ||
        (s = bsc_metrics_set(&row, "seconds", seconds)) != BSC_OK)
        return s;
    return bsc_metrics_set_str(&row, BSC_COL_STATUS, BSC_ROW_OK);
}

/* Lanczos on the operator c (whole or a block of len coordinates): rows for
 * the top_k and bottom_k eigenvalues. */
static bsc_status extremes(const hess *h, const bsc_study *st, ana_hvp *c, size_t len,
                           int top_k, int bottom_k, int max_iter, uint32_t stream,
                           const char *block, const target *g, bsc_table *t)
{
    ana_lanczos_opts o = {top_k, bottom_k, max_iter, h->tol, st->seed, stream};
    ana_lanczos_result r;
    long before = c->products;
    double t0 = bsc_now();
    if ((size_t)(top_k + bottom_k) > len)
        o.top_k = (int)len, o.bottom_k = 0;
    bsc_status s = ana_lanczos_extremes(len, &o, ana_hvp_apply, c, &r);
    double sec = bsc_now() - t0;
    long used = c->products - before;
    for (int k = 0; s == BSC_OK && k < o.top_k; k++)
        s = add_row(t, g, block, BSC_QUANTITY_EIGENVALUE, k + 1, r.top[k], NAN, r.top_res[k], r.converged,
                    used, sec);
    for (int k = 0; s == BSC_OK && k < o.bottom_k; k++)
        s = add_row(t, g, block, BSC_QUANTITY_BOTTOM_EIGENVALUE, k + 1, r.bottom[k], NAN,
                    r.bottom_res[k], r.converged, used, sec);
    return s;
}

/* Per-block Hutchinson samples from the whole-model probes. */
typedef struct block_acc {
    const bsc_model *m;
    double *samples;     /* [n_tensors * trace_samples] */
    int n;
} block_acc;

static void block_probe(void *user, int s, const double *z, const double *hz)
{
    block_acc *a = user;
    for (size_t i = 0; i < bsc_model_n_tensors(a->m); i++) {
        const bsc_model_tensor *mt = bsc_model_tensor_at(a->m, i);
        if (mt->spec.role == BSC_ROLE_STATE)
            continue;
        double q = 0;
        for (size_t e = mt->offset; e < mt->offset + mt->numel; e++)
            q += z[e] * hz[e];
        a->samples[i * (size_t)a->n + (size_t)s] = q;
    }
}

static bsc_status density_rows(const hess *h, const target *g, const ana_probe_result *pr,
                               bsc_table *dt, bsc_table *qt)
{
    int probes = (int)h->density_probes, bins = (int)h->density_bins;
    double *grid = malloc((size_t)bins * 3 * sizeof *grid);
    if (!grid)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    double *dens = grid + bins, *se = dens + bins;
    /* PyHessian's overhead: 0.01 past the extreme nodes. */
    bsc_status s = ana_slq_density(pr, probes, (int)h->density_steps, bins, h->sigma2, 0.01,
                                   grid, dens, se);
    bsc_metrics_row row;
    for (int i = 0; s == BSC_OK && i < bins; i++)
        if ((s = row_start(dt, g, &row)) != BSC_OK ||
            (s = bsc_metrics_set(&row, BSC_COL_LAMBDA, grid[i])) != BSC_OK ||
            (s = bsc_metrics_set(&row, BSC_COL_DENSITY, dens[i])) != BSC_OK ||
            (s = bsc_metrics_set(&row, BSC_COL_STD_ERR, se[i])) != BSC_OK)
            break;
        else
            s = bsc_metrics_set_str(&row, BSC_COL_METHOD, g->method);
    for (int k = 0; s == BSC_OK && k < probes; k++)
        for (int j = 0; s == BSC_OK && j < pr->n_nodes[k]; j++) {
            size_t at = (size_t)k * (size_t)h->density_steps + (size_t)j;
            if ((s = row_start(qt, g, &row)) != BSC_OK ||
                (s = bsc_metrics_set(&row, "probe", k)) != BSC_OK ||
                (s = bsc_metrics_set(&row, "node", pr->nodes[at])) != BSC_OK)
                break;
            s = bsc_metrics_set(&row, "weight", pr->weights[at]);
        }
    free(grid);
    return s;
}

/* Trace (whole and per block) and density from the probes. */
static bsc_status probes(const hess *h, const bsc_study *st, ana_hvp *c, const target *g,
                         bsc_table *t, bsc_table *dt, bsc_table *qt)
{
    const bsc_model *m = st->model;
    size_t nt = bsc_model_n_tensors(m);
    ana_probe_opts o = {(int)h->trace_samples, (int)h->density_probes, (int)h->density_steps,
                        st->seed};
    ana_probe_result pr;
    block_acc acc = {m, NULL, (int)h->trace_samples};
    if (h->blocks && !(acc.samples = calloc(nt * (size_t)acc.n + 1, sizeof *acc.samples)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    long before = c->products;
    double t0 = bsc_now(), tr, se;
    bsc_status s = ana_probes(c->np, &o, ana_hvp_apply, c, h->blocks ? block_probe : NULL, &acc,
                              &pr);
    if (s != BSC_OK) {
        free(acc.samples);
        return s;
    }
    double sec = bsc_now() - t0;
    long used = c->products - before;
    ana_mean_se(pr.samples, o.samples, &tr, &se);
    s = add_row(t, g, BSC_BLOCK_ALL, BSC_QUANTITY_TRACE, 0, tr, se, NAN, NAN, used, sec);
    for (size_t i = 0; s == BSC_OK && h->blocks && i < nt; i++) {
        const bsc_model_tensor *mt = bsc_model_tensor_at(m, i);
        if (mt->spec.role == BSC_ROLE_STATE)
            continue;
        ana_mean_se(acc.samples + i * (size_t)acc.n, acc.n, &tr, &se);
        s = add_row(t, g, mt->name, BSC_QUANTITY_TRACE, 0, tr, se, NAN, NAN, used, sec);
    }
    if (s == BSC_OK && h->density_probes > 0)
        s = density_rows(h, g, &pr, dt, qt);
    ana_probe_free(&pr);
    free(acc.samples);
    return s;
}

static bsc_status one(const hess *h, const bsc_study *st, target *g, bsc_table *t,
                      bsc_table *dt, bsc_table *qt)
{
    bsc_model *m = st->model;
    char why[160];
    int has = bsc_model_has_hvp(m, why, sizeof why);
    if (h->method == M_EXACT && !has)
        return bsc_node_fail(h->method_node, BSC_ERR_UNSUPPORTED,
                             "method: exact needs the R-operator in every layer, but %s "
                             "(method: auto falls back to finite differences)", why);
    int exact = h->method != M_FD && has;
    g->method = exact ? BSC_METHOD_EXACT : BSC_METHOD_FD;
    ana_hvp c;
    bsc_status s = BSC_OK;
    if (bsc_model_n_state(m))
        s = bsc_tensor_copy(st->ctx, g->state, bsc_model_state(m));
    if (s != BSC_OK || (s = ana_hvp_open(&c, st, g->params, exact, h->fd_step, h->subset)) !=
                           BSC_OK)
        return s;
    /* Progress in products, of at most: Lanczos for the extremes, a
     * product per probe and per quadrature step, Lanczos per block. */
    size_t n_blocks = 0;
    for (size_t i = 0; h->blocks && i < bsc_model_n_tensors(m); i++)
        n_blocks += bsc_model_tensor_at(m, i)->spec.role != BSC_ROLE_STATE;
    snprintf(c.label, sizeof c.label, "hessian %s", g->name);
    c.total = (h->top_k + h->bottom_k > 0 ? h->max_iter : 0) + h->trace_samples +
              h->density_probes * h->density_steps + (long)n_blocks * h->block_max_iter;
    bsc_study_progress(st, c.label, "products", 0, (size_t)c.total);
    if (h->top_k + h->bottom_k > 0)
        s = extremes(h, st, &c, c.np, (int)h->top_k, (int)h->bottom_k, (int)h->max_iter, 100u,
                     BSC_BLOCK_ALL, g, t);
    if (s == BSC_OK && h->trace_samples > 0)
        s = probes(h, st, &c, g, t, dt, qt);
    for (size_t i = 0; s == BSC_OK && h->blocks && i < bsc_model_n_tensors(m); i++) {
        const bsc_model_tensor *mt = bsc_model_tensor_at(m, i);
        if (mt->spec.role == BSC_ROLE_STATE)
            continue;
        ana_hvp_block(&c, mt->offset, mt->numel);
        s = extremes(h, st, &c, mt->numel, 1, 0, (int)h->block_max_iter,
                     (1u << 20) + (uint32_t)i, mt->name, g, t);
    }
    if (s == BSC_OK)   /* converged before the bound: the item is done */
        bsc_study_progress(st, c.label, "products", (size_t)c.total, (size_t)c.total);
    ana_hvp_close(&c);
    return s;
}

/* ----------------------------------------------------------- the targets */

/* A checkpoint's name (its file name without .safetensors) and the batch
 * size its metadata records (NaN when it does not). */
static bsc_status checkpoint_target(const char *path, char **name, double *bs)
{
    char *dup = strdup(path);
    if (!dup)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    char *base = basename(dup);
    size_t len = strlen(base);
    if (len > 12 && !strcmp(base + len - 12, ".safetensors"))
        base[len - 12] = '\0';
    *name = strdup(base);
    free(dup);
    if (!*name)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    *bs = NAN;
    bsc_safetensors *f = NULL;
    bsc_status s = bsc_safetensors_open(path, &f);
    if (s != BSC_OK)
        return s;
    const char *v = bsc_safetensors_meta(f, "batch_size");
    if (v && *v)
        *bs = strtod(v, NULL);
    bsc_safetensors_close(f);
    return BSC_OK;
}

static bsc_status new_table(bsc_table **t, const char *const *cols, size_t n)
{
    bsc_status s = bsc_table_new(t);
    for (size_t k = 0; s == BSC_OK && k < n; k++)
        s = bsc_table_column(*t, cols[k]);
    return s;
}

static bsc_status write_table(const bsc_study *st, const bsc_table *t, const char *name)
{
    char *path = NULL;
    bsc_status s = ana_out_path(st, name, &path);
    if (s == BSC_OK)
        s = bsc_table_write_csv(t, path);
    free(path);
    return s;
}

/* ------------------------------------------------------------------ units */

/* What ana_for_each_run and ana_rows_run hand the callbacks. */
typedef struct hess_job {
    hess *h;
    const bsc_study *st;
} hess_job;

static bsc_status plan_run(void *user, const bsc_run_result *r)
{
    hess *h = ((hess_job *)user)->h;
    char nb[32], ctx[96];
    const char *name = bsc_run_result_name(r, nb, sizeof nb);
    snprintf(ctx, sizeof ctx, "hessian of run %s", name);
    return ana_rows_add(&h->rows, name, (double)r->batch_size, ctx, r, 0, 0);
}

/* A run left out (diverged, not finished): one row that says so. */
static bsc_status plan_skip(void *user, const char *run, size_t batch_size, const char *why)
{
    hess *h = ((hess_job *)user)->h;
    return ana_rows_skip(&h->rows, run, batch_size ? (double)batch_size : NAN, why, BSC_OK);
}

/* Items in table order: the runs named, or every run when neither runs nor
 * checkpoints are given; then each checkpoints: file (one whose metadata
 * cannot be read is a failed row, and the others still run). */
static bsc_status plan(void *self, const bsc_study *st, size_t *n_units)
{
    hess *h = self;
    hess_job job = {h, st};
    bsc_status s = BSC_OK;
    ana_rows_clear(&h->rows);
    h->rows.n_tables = 3;
    *n_units = 0;
    if (h->n_runs || !h->n_ckpt)
        s = ana_for_each_run(st, h->runs, h->n_runs, "hessian", plan_run, plan_skip, &job);
    for (size_t i = 0; s == BSC_OK && i < h->n_ckpt; i++) {
        char *name = NULL, ctx[400];
        double bs = NAN;
        snprintf(ctx, sizeof ctx, "hessian at %s", h->ckpt[i]);
        bsc_status cs = checkpoint_target(h->ckpt[i], &name, &bs);
        if (cs == BSC_OK) {
            s = ana_rows_add(&h->rows, name, bs, ctx, NULL, i, 0);
        } else {
            char why[600];
            bsc_fail_context(cs, "%s", ctx);
            snprintf(why, sizeof why, "failed: %s", bsc_last_error());
            s = ana_rows_skip(&h->rows, name ? name : h->ckpt[i], NAN, why, cs);
        }
        free(name);
    }
    if (s == BSC_OK)
        *n_units = h->rows.n_units;
    return s;
}

/* The Hessian at a unit's run or checkpoint: its rows of the three tables. */
static bsc_status unit_rows(void *user, const ana_slot *it, bsc_table *const *t)
{
    hess_job *j = user;
    if (it->r) {
        target g = {it->name, it->batch_size, it->r->final_params, it->r->final_state, NULL};
        return one(j->h, j->st, &g, t[0], t[1], t[2]);
    }
    bsc_tensor p = {0}, q = {0};
    bsc_status s = ana_upload_checkpoint(j->st, j->h->ckpt[it->a], &p, &q);
    if (s == BSC_OK) {
        target g = {it->name, it->batch_size, &p, &q, NULL};
        s = one(j->h, j->st, &g, t[0], t[1], t[2]);
    }
    bsc_tensor_free(&p);
    bsc_tensor_free(&q);
    return s;
}

static bsc_status run_unit(void *self, const bsc_study *st, size_t unit, void **result,
                           size_t *len)
{
    hess_job job = {self, st};
    return ana_rows_run(&job.h->rows, unit, unit_rows, &job, result, len);
}

static bsc_status merge(void *self, const bsc_study *st, size_t unit, const void *result,
                        size_t len)
{
    (void)st;
    return ana_rows_merge(&((hess *)self)->rows, unit, result, len);
}

static bsc_status finish(void *self, const bsc_study *st)
{
    hess *h = self;
    bsc_table *t[3] = {NULL, NULL, NULL};
    static const char *const cols[] = {BSC_COL_RUN, BSC_COL_BATCH_SIZE, BSC_COL_BLOCK,
                                       BSC_COL_QUANTITY, BSC_COL_K, BSC_COL_VALUE,
                                       BSC_COL_STD_ERR, "residual", "converged",
                                       BSC_COL_METHOD, "hv_products", "seconds",
                                       BSC_COL_STATUS};
    static const char *const dcols[] = {BSC_COL_RUN, BSC_COL_BATCH_SIZE, BSC_COL_LAMBDA,
                                        BSC_COL_DENSITY, BSC_COL_STD_ERR, BSC_COL_METHOD};
    static const char *const qcols[] = {BSC_COL_RUN, BSC_COL_BATCH_SIZE, "probe", "node",
                                        "weight"};
    char *err = NULL;
    bsc_status s, rs = BSC_OK;
    if ((s = new_table(&t[0], cols, sizeof cols / sizeof *cols)) != BSC_OK ||
        (s = new_table(&t[1], dcols, sizeof dcols / sizeof *dcols)) != BSC_OK ||
        (s = new_table(&t[2], qcols, sizeof qcols / sizeof *qcols)) != BSC_OK)
        goto cleanup;
    /* A run that failed still leaves the rows of the others. */
    if ((s = ana_rows_finish(&h->rows, t, &rs, &err)) != BSC_OK ||
        (s = write_table(st, t[0], BSC_FILE_HESSIAN)) != BSC_OK)
        goto cleanup;
    if (h->trace_samples > 0 && h->density_probes > 0 &&
        (s = write_table(st, t[1], BSC_FILE_HESSIAN_DENSITY)) == BSC_OK)
        s = write_table(st, t[2], BSC_FILE_HESSIAN_SLQ);
    if (s == BSC_OK && rs != BSC_OK)
        bsc_fail(rs, "%s", err ? err : bsc_status_str(rs));
cleanup:
    for (int k = 0; k < 3; k++)
        bsc_table_free(t[k]);
    free(err);
    return s != BSC_OK ? s : rs;
}

static bsc_status post(void *self, const bsc_study *st)
{
    static const bsc_analysis_ops ops = {.plan = plan, .run_unit = run_unit, .merge = merge,
                                         .finish = finish};
    return ana_run_units(&ops, self, st);
}

/* The checkpoints: files, before training. */
static bsc_status check(void *self, const bsc_study *st)
{
    const hess *h = self;
    bsc_status s = BSC_OK;
    for (size_t i = 0; s == BSC_OK && i < h->n_ckpt; i++)
        s = ana_check_file(st, h->ckpt[i], 0, "hessian.checkpoints");
    return s;
}

BSC_ANALYSIS_TYPE(ana_hessian, "hessian",
               "Hessian eigenvalues (Lanczos), trace (Hutchinson), spectral density (SLQ), "
               "per tensor too; exact products by the R-operator",
               BSC_OPTIONS(BSC_OPT("runs", BSC_OPT_LIST, "", "batch sizes or run names (default: every run)"),
                           BSC_OPT("checkpoints", BSC_OPT_LIST, "", "checkpoint files of this model, relative to the pipeline"),
                           BSC_OPT("method", BSC_OPT_STRING, "auto", "products: exact (R-operator), fd, or auto"),
                           BSC_OPT("top_k", BSC_OPT_INT, "3", "largest eigenvalues"),
                           BSC_OPT("bottom_k", BSC_OPT_INT, "0", "smallest eigenvalues"),
                           BSC_OPT("max_iter", BSC_OPT_INT, "100", "Lanczos products, at most"),
                           BSC_OPT("tol", BSC_OPT_FLOAT, "1e-4", "Ritz residual relative to the eigenvalue"),
                           BSC_OPT("trace_samples", BSC_OPT_INT, "30", "Hutchinson probes (0: no trace)"),
                           BSC_OPT("density_probes", BSC_OPT_INT, "2", "of those, quadratures for the spectral density"),
                           BSC_OPT("density_steps", BSC_OPT_INT, "50", "Lanczos steps per quadrature"),
                           BSC_OPT("density_bins", BSC_OPT_INT, "10000", "grid points of the density"),
                           BSC_OPT("density_sigma2", BSC_OPT_FLOAT, "1e-5", "Gaussian variance per unit of spectrum width"),
                           BSC_OPT("blocks", BSC_OPT_BOOL, "false", "per-tensor trace and top eigenvalue"),
                           BSC_OPT("block_max_iter", BSC_OPT_INT, "30", "Lanczos products per block, at most"),
                           BSC_OPT("fd_step", BSC_OPT_FLOAT, "1e-2", "perturbation norm of fd products"),
                           BSC_OPT("subset", BSC_OPT_INT, "0", "training examples evaluated (0: all)")),
               .create = create,
               .run = post,
               .check = check,
               .destroy = destroy,
               .plan = plan,
               .run_unit = run_unit,
               .merge = merge,
               .finish = finish);
