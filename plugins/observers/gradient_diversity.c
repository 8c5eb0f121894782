/* batchscope observers plugin: `gradient_diversity` -- the triangle
 * inequality of the study, measured.
 *
 * Every K global steps (every_steps, default 50), on that step's batch and at
 * the weights just after the step, from the per-example gradients g_i of the
 * batch (see pegrad.c for how they are obtained):
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
 * Cost per sample: one forward and backward of the batch plus O(B (in + out))
 * per dense layer; layers without a per-example hook add B forward/backward
 * passes of one example (method: microbatch forces that path everywhere).
 * At the default K = 50 that is about 2% more work for dense models. Samples
 * skip a last batch of one example.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "observers.h"

typedef struct diversity {
    obs_pe_series ps;
    bsc_table *table;
} diversity;

static bsc_status gd_create(const bsc_component_config *cfg, void **self)
{
    bsc_status s;
    diversity *d = calloc(1, sizeof *d);
    if (!d)
        return bsc_fail(BSC_ERR_NOMEM, "gradient_diversity: out of memory");
    d->ps.seed = cfg->seed;
    if ((s = obs_pe_series_options(cfg->options, &d->ps)) != BSC_OK) {
        free(d);
        return s;
    }
    *self = d;
    return BSC_OK;
}

static bsc_status gd_run_start(void *self, const bsc_run_info *run)
{
    diversity *d = self;
    bsc_table_free(d->table);
    d->table = NULL;
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

static bsc_status gd_after_step(void *self, const bsc_run_info *run, const bsc_step_info *si)
{
    (void)run;
    return obs_pe_series_step(&((diversity *)self)->ps, si);
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
        double sq = v[0], sn = v[1], nos = obs_sqrt(v[2]);
        bsc_metrics_row r;
        if ((s = bsc_table_add_row(d->table, &r)) != BSC_OK)
            break;
        bsc_metrics_set(&r, BSC_COL_STEP, (double)ps->step[k]);
        bsc_metrics_set(&r, BSC_COL_EPOCH, ps->epoch[k]);
        bsc_metrics_set(&r, "batch", (double)ps->batch[k]);
        bsc_metrics_set(&r, "sum_sqnorm", sq);
        bsc_metrics_set(&r, "sum_norm", sn);
        bsc_metrics_set(&r, "norm_of_sum", nos);
        bsc_metrics_set(&r, BSC_COL_DIVERSITY, (double)v[2] > 0 ? sq / (double)v[2] : NAN);
        bsc_metrics_set(&r, BSC_COL_NORM_RATIO, sn > 0 ? nos / sn : NAN);
    }
    ps->n = 0;
    if (s == BSC_OK)
        s = obs_write_run_table(run, d->table, BSC_FILE_GRADIENT_DIVERSITY);
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

static void gd_destroy(void *self)
{
    if (!self)
        return;
    gd_run_end(self, NULL);
    free(self);
}

BSC_OBSERVER_TYPE(obs_gradient_diversity, "gradient_diversity",
               "sum ||g_i||^2 / ||sum g_i||^2 and ||sum g_i|| / sum ||g_i|| of per-example gradients",
               BSC_OPTIONS(OBS_EVERY_STEPS_OPTION, OBS_METHOD_OPTION),
               .create = gd_create,
               .run_start = gd_run_start,
               .after_step = gd_after_step,
               .epoch_end = gd_epoch_end,
               .run_end = gd_run_end,
               .destroy = gd_destroy);
