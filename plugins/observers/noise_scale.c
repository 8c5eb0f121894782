/* batchscope observers plugin: `noise_scale` -- the simple gradient noise
 * scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, "An Empirical
 * Model of Large-Batch Training", appendix A).
 *
 * Every K global steps (every_steps, default 50) the per-example gradients of
 * the step's batch, at the weights the step starts from (from the step's own
 * forward and backward, pegrad.c), give gradient norms at two batch sizes:
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
 * The EMA has no error bar, and late in a short run, where |G|^2 is small
 * against its noise, it goes negative and the ratio means nothing. So
 * B_simple is also estimated from the sums over the last `window` samples
 * (default 10) -- the ratio of the window means of tr(Sigma) and |G|^2 --
 * with a Fieller confidence interval for a ratio of means (level 95%, from
 * the window's sample variances and covariance; consecutive samples are
 * treated as independent, which they are only roughly). When the window's
 * |G|^2 is not significantly positive (mean below 1.96 standard errors)
 * the interval is unbounded: the point is kept and marked
 * (g2_significant = 0) instead of dropped, and its bounds are NaN.
 *
 * OUT/runs/<run>/noise_scale.csv: step, epoch, batch, g2, trace, b_simple
 * (this sample alone), g2_ema, trace_ema, b_simple_ema, and over the window:
 * samples, g2_window, trace_window, b_simple_window, b_simple_lo,
 * b_simple_hi, g2_significant. Cost: as gradient_diversity; on the steps
 * both sample (the same every_steps and method: the default) the second
 * copies the first's numbers (pegrad.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "observers.h"

#define NS_MAX_WINDOW 1000

typedef struct noise_scale {
    obs_pe_series ps;
    double beta;
    double g2_ema, tr_ema;
    long n_ema;
    long window;
    double g2w[NS_MAX_WINDOW], trw[NS_MAX_WINDOW];   /* ring of the last samples */
    bsc_table *table;
    bsc_csv_mark mark;        /* what its file holds */
} noise_scale;

static bsc_status ns_create(const bsc_component_config *cfg, void **self)
{
    bsc_status s;
    noise_scale *n = calloc(1, sizeof *n);
    if (!n)
        return bsc_fail(BSC_ERR_NOMEM, "noise_scale: out of memory");
    n->ps.seed = cfg->seed;
    if ((s = obs_pe_series_options(cfg->options, &n->ps)) != BSC_OK ||
        (s = bsc_opt_double(cfg->options, "ema", 0.9, 0.0, 0.999999, &n->beta)) != BSC_OK ||
        (s = bsc_opt_long(cfg->options, "window", 10, 2, NS_MAX_WINDOW, &n->window)) !=
            BSC_OK) {
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
    n->mark = (bsc_csv_mark){0};
    n->g2_ema = n->tr_ema = 0;
    n->n_ema = 0;
    bsc_status s = obs_pe_series_start(&n->ps, run);
    if (s == BSC_OK)
        s = bsc_table_new(&n->table);
    static const char *const cols[] = {BSC_COL_STEP, BSC_COL_EPOCH, "batch", "g2", "trace",
                                       BSC_COL_B_SIMPLE, "g2_ema", "trace_ema",
                                       BSC_COL_B_SIMPLE_EMA, "samples", "g2_window",
                                       "trace_window", BSC_COL_B_SIMPLE_WINDOW,
                                       BSC_COL_B_SIMPLE_LO, BSC_COL_B_SIMPLE_HI,
                                       BSC_COL_G2_SIGNIFICANT};
    for (size_t i = 0; s == BSC_OK && i < sizeof cols / sizeof cols[0]; i++)
        s = bsc_table_column(n->table, cols[i]);
    return s;
}

static bsc_status ns_after_backward(void *self, const bsc_run_info *run,
                                    const bsc_step_info *si)
{
    (void)run;
    return obs_pe_series_step(&((noise_scale *)self)->ps, si);
}

/* The window's estimate of B_simple = mean(tr) / mean(g2) and Fieller's
 * 95% interval for that ratio of means: the set of rho for which
 * mean(tr) - rho mean(g2) is within 1.96 standard errors of zero. */
static void window_estimate(const noise_scale *n, long have, bsc_metrics_row *r)
{
    long m = have < n->window ? have : n->window;
    double mt = 0, mg = 0, vt = 0, vg = 0, c = 0;
    for (long i = 0; i < m; i++) {
        mt += n->trw[i];
        mg += n->g2w[i];
    }
    mt /= (double)m;
    mg /= (double)m;
    for (long i = 0; i < m; i++) {
        vt += (n->trw[i] - mt) * (n->trw[i] - mt);
        vg += (n->g2w[i] - mg) * (n->g2w[i] - mg);
        c += (n->trw[i] - mt) * (n->g2w[i] - mg);
    }
    /* variances and covariance of the two means */
    double k = m > 1 ? 1.0 / ((double)(m - 1) * (double)m) : NAN;
    vt *= k, vg *= k, c *= k;
    const double z2 = 1.959964 * 1.959964;
    double a = mg * mg - z2 * vg, b = mt * mg - z2 * c, cc = mt * mt - z2 * vt;
    double disc = b * b - a * cc, lo = NAN, hi = NAN;
    int sig = m > 1 && mg > 0 && a > 0;
    if (sig && disc >= 0) {
        lo = (b - sqrt(disc)) / a;
        hi = (b + sqrt(disc)) / a;
    }
    bsc_metrics_set(r, "samples", (double)m);
    bsc_metrics_set(r, "g2_window", mg);
    bsc_metrics_set(r, "trace_window", mt);
    bsc_metrics_set(r, BSC_COL_B_SIMPLE_WINDOW, mt / mg);
    bsc_metrics_set(r, BSC_COL_B_SIMPLE_LO, lo);
    bsc_metrics_set(r, BSC_COL_B_SIMPLE_HI, hi);
    bsc_metrics_set(r, BSC_COL_G2_SIGNIFICANT, sig);
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
        n->g2w[n->n_ema % n->window] = g2;
        n->trw[n->n_ema % n->window] = tr;
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
        window_estimate(n, n->n_ema, &r);
    }
    ps->n = 0;
    if (s == BSC_OK)
        s = obs_write_run_table(run, n->table, BSC_FILE_NOISE_SCALE, &n->mark);
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
                                   "EMA factor for tr(Sigma) and |G|^2, in [0, 1)"),
                           BSC_OPT("window", BSC_OPT_INT, "10",
                                   "samples summed for B_simple with a 95% confidence interval")),
               .create = ns_create,
               .run_start = ns_run_start,
               .after_backward = ns_after_backward,
               .epoch_end = ns_epoch_end,
               .run_end = ns_run_end,
               .destroy = ns_destroy);
