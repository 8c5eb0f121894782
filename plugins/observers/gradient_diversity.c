/* batchscope observers plugin: `gradient_diversity` -- the triangle
 * inequality of the study, measured.
 *
 * Every K global steps (every_steps, default 50), from the per-example
 * gradients g_i of that step's batch at the weights the step starts from --
 * the gradients whose mean the update applies, taken from the step's own
 * forward and backward (see pegrad.c):
 *
 *   diversity  = sum_i ||g_i||^2 / ||sum_i g_i||^2   (Yin et al. 2018; 1/B
 *                for identical examples, 1 for orthogonal gradients)
 *   norm_ratio = ||sum_i g_i|| / sum_i ||g_i||        (1 for identical
 *                examples, 1/sqrt(B) for orthogonal ones of equal norm)
 *
 * The g_i are the gradients of each example's own loss; the optimizer's step
 * uses (1/B) sum_i g_i, and both ratios are invariant to that factor.
 * OUT/runs/<run>/gradient_diversity.csv: step, epoch, batch, sum_sqnorm,
 * sum_norm, norm_of_sum, diversity, norm_ratio.
 *
 * Cost per sample: O(B (in + out)) per dense layer and one reduction over
 * the gradient; layers without a per-example hook add B forward/backward
 * passes of one example (method: microbatch forces that path everywhere),
 * and a data-parallel run one forward and backward of the batch. Shared
 * with noise_scale on the steps both sample (pegrad.c). Samples skip a last
 * batch of one example.
 *
 * Measured so, each run's ratios mix the model with the measurement: a
 * batch of 1024 sums more gradients than one of 32, and norm_ratio falls
 * with B for any model. After all runs, the same ratios are therefore also
 * taken at ONE batch size for every run's final weights (common_batch,
 * default 32, or the study's largest batch when that is smaller; 0: off):
 * on common_samples consecutive batches of the
 * training split (the same examples for every run), in the training-time
 * mode of the samples above. OUT/analyses/gradient_diversity_common.csv,
 * one row per run: run, batch_size, common_batch, samples, and for
 * norm_ratio and diversity the mean, its standard error and the quartiles
 * (q25, median, q75) over the batches.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/fsutil.h"
#include "batchscope/runs.h"

#include "observers.h"

typedef struct diversity {
    obs_pe_series ps;
    bsc_table *table;
    bsc_csv_mark mark;        /* what its file holds */
    long common_batch, common_samples;
    int common_given;          /* common_batch set in the pipeline */
    const char *out_dir;
} diversity;

static bsc_status gd_create(const bsc_component_config *cfg, void **self)
{
    bsc_status s;
    diversity *d = calloc(1, sizeof *d);
    if (!d)
        return bsc_fail(BSC_ERR_NOMEM, "gradient_diversity: out of memory");
    d->ps.seed = cfg->seed;
    d->out_dir = cfg->out_dir;
    if ((s = obs_pe_series_options(cfg->options, &d->ps)) != BSC_OK ||
        (s = bsc_opt_long(cfg->options, "common_batch", 32, 0, 1L << 20, &d->common_batch)) !=
            BSC_OK ||
        (s = bsc_opt_long(cfg->options, "common_samples", 20, 1, 100000,
                          &d->common_samples)) != BSC_OK) {
        free(d);
        return s;
    }
    d->common_given = bsc_node_get(cfg->options, "common_batch") != NULL;
    if (d->common_batch == 1) {
        free(d);
        return bsc_node_fail(bsc_node_get(cfg->options, "common_batch"), BSC_ERR_INVALID,
                             "common_batch must be at least 2 (one example has no "
                             "diversity), or 0 for none");
    }
    *self = d;
    return BSC_OK;
}

static bsc_status gd_run_start(void *self, const bsc_run_info *run)
{
    diversity *d = self;
    bsc_table_free(d->table);
    d->table = NULL;
    d->mark = (bsc_csv_mark){0};
    bsc_status s = obs_pe_series_start(&d->ps, run);
    if (s == BSC_OK)
        s = bsc_table_new(&d->table);
    static const char *const cols[] = {BSC_COL_STEP, BSC_COL_EPOCH, "batch", "sum_sqnorm",
                                       "sum_norm", "norm_of_sum", BSC_COL_DIVERSITY,
                                       BSC_COL_NORM_RATIO};
    for (size_t i = 0; s == BSC_OK && i < sizeof cols / sizeof cols[0]; i++)
        s = bsc_table_column(d->table, cols[i]);
    return s;
}

static bsc_status gd_after_backward(void *self, const bsc_run_info *run,
                                    const bsc_step_info *si)
{
    (void)run;
    return obs_pe_series_step(&((diversity *)self)->ps, si);
}

/* The ratios of one sample (sum ||g_i||^2, sum ||g_i||, ||sum g_i||^2). */
static void ratios(const float *v, double *norm_ratio, double *div)
{
    double sq = v[0], sn = v[1], nos = obs_sqrt(v[2]);
    *div = (double)v[2] > 0 ? sq / (double)v[2] : NAN;
    *norm_ratio = sn > 0 ? nos / sn : NAN;
}

static bsc_status gd_epoch_end(void *self, const bsc_run_info *run, const bsc_epoch_info *e)
{
    diversity *d = self;
    obs_pe_series *ps = &d->ps;
    if (e->epoch == 0)
        return BSC_OK;
    bsc_status s = obs_pe_series_read(ps);
    for (size_t k = 0; s == BSC_OK && k < ps->n; k++) {
        const float *v = ps->host + 3 * k;
        double sq = v[0], sn = v[1], nos = obs_sqrt(v[2]), nr, dv;
        ratios(v, &nr, &dv);
        bsc_metrics_row r;
        if ((s = bsc_table_add_row(d->table, &r)) != BSC_OK)
            break;
        bsc_metrics_set(&r, BSC_COL_STEP, (double)ps->step[k]);
        bsc_metrics_set(&r, BSC_COL_EPOCH, ps->epoch[k]);
        bsc_metrics_set(&r, "batch", (double)ps->batch[k]);
        bsc_metrics_set(&r, "sum_sqnorm", sq);
        bsc_metrics_set(&r, "sum_norm", sn);
        bsc_metrics_set(&r, "norm_of_sum", nos);
        bsc_metrics_set(&r, BSC_COL_DIVERSITY, dv);
        bsc_metrics_set(&r, BSC_COL_NORM_RATIO, nr);
    }
    ps->n = 0;
    if (s == BSC_OK)
        s = obs_write_run_table(run, d->table, BSC_FILE_GRADIENT_DIVERSITY, &d->mark);
    return s;
}

static bsc_status gd_run_end(void *self, const bsc_run_info *run)
{
    diversity *d = self;
    (void)run;
    obs_pe_series_free(&d->ps);
    bsc_table_free(d->table);
    d->table = NULL;
    return BSC_OK;
}

/* Mean, its standard error and the quartiles of x[0..n) (reordered). */
static void describe(bsc_metrics_row *row, const char *name, double *x, size_t n)
{
    char col[64];
    double m = 0, v = 0, q25, q50, q75;
    for (size_t i = 0; i < n; i++)
        m += x[i];
    m = n ? m / (double)n : NAN;
    for (size_t i = 0; i < n; i++)
        v += (x[i] - m) * (x[i] - m);
    obs_quartiles(x, n, &q25, &q50, &q75);
    const char *suffix[5] = {BSC_STAT_MEAN, BSC_STAT_SE, BSC_STAT_Q25, BSC_STAT_MEDIAN,
                             BSC_STAT_Q75};
    double val[5] = {m, n > 1 ? sqrt(v / (double)(n - 1) / (double)n) : NAN, q25, q50, q75};
    for (int k = 0; k < 5; k++) {
        snprintf(col, sizeof col, "%s_%s", name, suffix[k]);
        bsc_metrics_set(row, col, val[k]);
    }
}

/* One run's row of gradient_diversity_common.csv: its final weights, the
 * first common_samples batches of common_batch training examples. */
static bsc_status common_row(diversity *d, const bsc_study *st, const bsc_run_result *r,
                             obs_pegrad *pg, bsc_tensor *out, float *host, double *nr,
                             double *dv, bsc_table *t)
{
    bsc_context *ctx = st->ctx;
    bsc_model *m = st->model;
    size_t B = (size_t)d->common_batch, n = 0;
    bsc_status s = bsc_tensor_copy(ctx, r->final_params, bsc_model_params(m));
    if (s == BSC_OK && bsc_model_n_state(m))
        s = bsc_tensor_copy(ctx, r->final_state, bsc_model_state(m));
    for (long k = 0; s == BSC_OK && k < d->common_samples; k++) {
        bsc_step_info si = {0};
        bsc_tensor x, y;
        if (bsc_eval_batch(st->eval, BSC_SPLIT_TRAIN, (size_t)k * B, B, &x, &y) != BSC_OK)
            break;   /* the split ran out: fewer samples */
        si.step = (uint64_t)k + 1;
        si.batch = B;
        si.x = &x;
        si.y = &y;
        s = obs_pegrad_enqueue(pg, &si, d->ps.seed, 1.0f, out, 3 * (size_t)k);
        n++;
    }
    if (s == BSC_OK && n)
        s = obs_read(ctx, out, 3 * n, host);
    for (size_t k = 0; s == BSC_OK && k < n; k++)
        ratios(host + 3 * k, &nr[k], &dv[k]);
    bsc_metrics_row row;
    char nb[32];
    if (s != BSC_OK || (s = bsc_table_add_row(t, &row)) != BSC_OK)
        return s;
    bsc_metrics_set_str(&row, BSC_COL_RUN, bsc_run_result_name(r, nb, sizeof nb));
    bsc_metrics_set(&row, BSC_COL_BATCH_SIZE, (double)r->batch_size);
    bsc_metrics_set(&row, BSC_COL_COMMON_BATCH, (double)B);
    bsc_metrics_set(&row, "samples", (double)n);
    describe(&row, BSC_COL_NORM_RATIO, nr, n);
    describe(&row, BSC_COL_DIVERSITY, dv, n);
    return BSC_OK;
}

static bsc_status gd_study_end(void *self, const bsc_study *st)
{
    diversity *d = self;
    if (d->common_batch == 0 || !st->model || !st->eval || st->n_runs == 0)
        return BSC_OK;
    size_t B = (size_t)d->common_batch, ns = (size_t)d->common_samples;
    size_t most = bsc_model_max_batch(st->model);
    /* The default gives way to a small study (the largest batch it can run
     * is its largest batch size or eval_batch_size); a value asked for
     * does not. */
    if (B > most && d->common_given)
        return bsc_fail(BSC_ERR_INVALID, "gradient_diversity: common_batch %zu exceeds the "
                        "model's largest batch %zu (the study's largest batch size or "
                        "eval_batch_size)", B, most);
    if (B > most)
        B = most;
    if (B < 2)
        return BSC_OK;
    d->common_batch = (long)B;
    bsc_run_info info = {0};
    info.ctx = st->ctx;
    info.model = st->model;
    obs_pegrad pg = {0};
    bsc_tensor out = {0};
    bsc_table *t = NULL;
    float *host = malloc(3 * ns * sizeof *host);
    double *nr = malloc(ns * sizeof *nr), *dv = malloc(ns * sizeof *dv);
    char *path = bsc_strdup_printf("%s/" BSC_IN_ANALYSES(BSC_FILE_GRADIENT_DIVERSITY_COMMON),
                                   d->out_dir);
    char *dir = bsc_strdup_printf("%s/" BSC_ANALYSES_DIR, d->out_dir);
    bsc_status s = host && nr && dv && path && dir
                       ? BSC_OK
                       : bsc_fail(BSC_ERR_NOMEM, "gradient_diversity: out of memory");
    if (s == BSC_OK && (s = obs_pegrad_start(&pg, &info, d->ps.force_microbatch)) == BSC_OK &&
        (s = obs_alloc(st->ctx, BSC_F32, 3 * ns, &out)) == BSC_OK)
        s = bsc_table_new(&t);
    for (size_t i = 0; s == BSC_OK && i < st->n_runs; i++)
        if (st->runs[i]->final_params)
            s = common_row(d, st, st->runs[i], &pg, &out, host, nr, dv, t);
    if (s == BSC_OK && (s = bsc_mkdir_p(dir)) == BSC_OK)
        s = bsc_table_write_csv(t, path);
    obs_pegrad_free(&pg);
    bsc_tensor_free(&out);
    bsc_table_free(t);
    free(host), free(nr), free(dv), free(path), free(dir);
    return s;
}

static void gd_destroy(void *self)
{
    if (!self)
        return;
    gd_run_end(self, NULL);
    free(self);
}

BSC_OBSERVER_TYPE(obs_gradient_diversity, "gradient_diversity",
               "sum ||g_i||^2 / ||sum g_i||^2 and ||sum g_i|| / sum ||g_i|| of per-example gradients",
               BSC_OPTIONS(OBS_EVERY_STEPS_OPTION, OBS_METHOD_OPTION,
                           BSC_OPT("common_batch", BSC_OPT_INT, "32",
                                   "after all runs: the ratios at this batch size on every run's final weights (0: off)"),
                           BSC_OPT("common_samples", BSC_OPT_INT, "20",
                                   "batches of common_batch examples for that")),
               .create = gd_create,
               .study_end = gd_study_end,
               .run_start = gd_run_start,
               .after_backward = gd_after_backward,
               .epoch_end = gd_epoch_end,
               .run_end = gd_run_end,
               .destroy = gd_destroy);
