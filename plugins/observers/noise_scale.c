/* batchscope observers plugin: `noise_scale` -- the simple gradient noise
 * scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, "An Empirical
 * Model of Large-Batch Training", appendix A).
 *
 * Every K global steps (every_steps, default 50) the per-example gradients of
 * the step's batch (pegrad.c) give gradient norms at two batch sizes:
 * B_small = 1, |G_small|^2 = (1/B) sum_i ||g_i||^2 (averaged over the batch),
 * and B_big = B, |G_big|^2 = ||(1/B) sum_i g_i||^2. Their unbiased
 * combinations are
 *
 *   |G|^2      ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
 *   tr(Sigma)  ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)
 *
 * Each estimate is unbiased but noisy (|G|^2 can come out negative), so, as
 * the paper does, the numerator and the denominator are smoothed separately
 * by an exponential moving average (ema, default 0.9: about the last ten
 * samples, i.e. 500 steps at K = 50 -- roughly one epoch of the quick start at
 * batch 32) with Adam's bias correction, and B_simple is their ratio.
 *
 * OUT/runs/<run>/noise_scale.csv: step, epoch, batch, g2, trace, b_simple
 * (this sample alone), g2_ema, trace_ema, b_simple_ema. Cost: as
 * gradient_diversity (the two do not share their passes).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "observers.h"

typedef struct noise_scale {
    obs_pe_series ps;
    double beta;
    double g2_ema, tr_ema;
    long n_ema;
    bsc_table *table;
} noise_scale;

static bsc_status ns_create(const bsc_component_config *cfg, void **self)
{
    bsc_status s;
    noise_scale *n = calloc(1, sizeof *n);
    if (!n)
        return bsc_fail(BSC_ERR_NOMEM, "noise_scale: out of memory");
    n->ps.seed = cfg->seed;
    if ((s = obs_pe_series_options(cfg->options, &n->ps)) != BSC_OK ||
        (s = bsc_opt_double(cfg->options, "ema", 0.9, 0.0, 0.999999, &n->beta)) != BSC_OK) {
        free(n);
        return s;
    }
    *self = n;
    return BSC_OK;
}

static bsc_status ns_run_start(void *self, const bsc_run_info *run)
{
    noise_scale *n = self;
    bsc_table_free(n->table);
    n->table = NULL;
    n->g2_ema = n->tr_ema = 0;
    n->n_ema = 0;
    bsc_status s = obs_pe_series_start(&n->ps, run);
    if (s == BSC_OK)
        s = bsc_table_new(&n->table);
    static const char *const cols[] = {BSC_COL_STEP, BSC_COL_EPOCH, "batch", "g2", "trace",
                                       BSC_COL_B_SIMPLE, "g2_ema", "trace_ema",
                                       BSC_COL_B_SIMPLE_EMA};
    for (size_t i = 0; s == BSC_OK && i < sizeof cols / sizeof cols[0]; i++)
        s = bsc_table_column(n->table, cols[i]);
    return s;
}

static bsc_status ns_after_step(void *self, const bsc_run_info *run, const bsc_step_info *si)
{
    (void)run;
    return obs_pe_series_step(&((noise_scale *)self)->ps, si);
}

static bsc_status ns_epoch_end(void *self, const bsc_run_info *run, const bsc_epoch_info *e)
{
    noise_scale *n = self;
    obs_pe_series *ps = &n->ps;
    if (e->epoch == 0)
        return BSC_OK;
    bsc_status s = obs_pe_series_read(ps);
    for (size_t k = 0; s == BSC_OK && k < ps->n; k++) {
        const float *v = ps->host + 3 * k;
        double B = (double)ps->batch[k];
        double small = (double)v[0] / B;            /* |G_small|^2, B_small = 1 */
        double big = (double)v[2] / (B * B);        /* |G_big|^2 */
        double g2 = (B * big - small) / (B - 1.0);
        double tr = (small - big) / (1.0 - 1.0 / B);
        n->n_ema++;
        n->g2_ema = n->beta * n->g2_ema + (1.0 - n->beta) * g2;
        n->tr_ema = n->beta * n->tr_ema + (1.0 - n->beta) * tr;
        double corr = 1.0 - pow(n->beta, (double)n->n_ema);
        double g2e = n->g2_ema / corr, tre = n->tr_ema / corr;
        bsc_metrics_row r;
        if ((s = bsc_table_add_row(n->table, &r)) != BSC_OK)
            break;
        bsc_metrics_set(&r, BSC_COL_STEP, (double)ps->step[k]);
        bsc_metrics_set(&r, BSC_COL_EPOCH, ps->epoch[k]);
        bsc_metrics_set(&r, "batch", B);
        bsc_metrics_set(&r, "g2", g2);
        bsc_metrics_set(&r, "trace", tr);
        bsc_metrics_set(&r, BSC_COL_B_SIMPLE, tr / g2);
        bsc_metrics_set(&r, "g2_ema", g2e);
        bsc_metrics_set(&r, "trace_ema", tre);
        bsc_metrics_set(&r, BSC_COL_B_SIMPLE_EMA, tre / g2e);
    }
    ps->n = 0;
    if (s == BSC_OK)
        s = obs_write_run_table(run, n->table, BSC_FILE_NOISE_SCALE);
    return s;
}

static bsc_status ns_run_end(void *self, const bsc_run_info *run)
{
    noise_scale *n = self;
    (void)run;
    obs_pe_series_free(&n->ps);
    bsc_table_free(n->table);
    n->table = NULL;
    return BSC_OK;
}

static void ns_destroy(void *self)
{
    if (!self)
        return;
    ns_run_end(self, NULL);
    free(self);
}

BSC_OBSERVER_TYPE(obs_noise_scale, "noise_scale",
               "gradient noise scale B_simple = tr(Sigma)/|G|^2, EMA-smoothed",
               BSC_OPTIONS(OBS_EVERY_STEPS_OPTION, OBS_METHOD_OPTION,
                           BSC_OPT("ema", BSC_OPT_FLOAT, "0.9",
                                   "EMA factor for tr(Sigma) and |G|^2, in [0, 1)")),
               .create = ns_create,
               .run_start = ns_run_start,
               .after_step = ns_after_step,
               .epoch_end = ns_epoch_end,
               .run_end = ns_run_end,
               .destroy = ns_destroy);
