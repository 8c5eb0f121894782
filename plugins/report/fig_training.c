/* Figures 1 and 2: learning curves, the generalization gap, and how far the
 * weights travel (from metrics.csv and analyses/epoch_distance_ratio.csv). */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEGEND_PX 300

typedef struct series_fig {
    rep_series *s;
    size_t n;
} series_fig;

/* The range of y[k] over every run (k = -1: x). */
static void runs_range(const series_fig *d, int k, int kind, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < d->n; i++) {
        const rep_series *s = &d->s[i];
        for (size_t j = 0; j < s->n; j++) {
            double v = rep_tx(k < 0 ? s->x[j] : s->y[k][j], kind);
            if (isfinite(v)) {
                *lo = fmin(*lo, v);
                *hi = fmax(*hi, v);
            }
        }
    }
}

static void draw_runs(const series_fig *d, int k, int style, double xscale_steps)
{
    for (size_t i = 0; i < d->n; i++) {
        const rep_series *s = &d->s[i];
        if (!s->n)
            continue;
        double *x = malloc(s->n * sizeof *x);
        if (!x)
            continue;
        for (size_t j = 0; j < s->n; j++)
            x[j] = xscale_steps > 0 ? s->x[j] / xscale_steps : s->x[j];
        rep_line(s->n, x, s->y[k], s->run->color, style ? style : s->run->style, 3.0);
        free(x);
    }
}

/* ------------------------------------------------------ learning curves */

static void draw_curves(const rep *r, const void *data)
{
    const series_fig *d = data;
    double x0, x1, lo, hi, lo2, hi2;
    runs_range(d, -1, REP_AX_LIN, &x0, &x1);
    rep_pad(&x0, &x1, 0.02);
    runs_range(d, 0, REP_AX_LIN, &lo, &hi);
    runs_range(d, 1, REP_AX_LIN, &lo2, &hi2);
    lo = fmin(lo, lo2);
    hi = fmax(hi, hi2);
    rep_pad(&lo, &hi, 0.05);
    rep_panel(0, 0, 2, 1, rep_legend_px(r, LEGEND_PX));
    rep_axes(x0, x1, REP_AX_LIN, lo, hi, REP_AX_LIN, "epoch", "cross-entropy loss (nats)",
             "Loss");
    draw_runs(d, 0, 1, 0);
    draw_runs(d, 1, 3, 0);

    runs_range(d, 2, REP_AX_LIN, &lo, &hi);
    runs_range(d, 3, REP_AX_LIN, &lo2, &hi2);
    lo = fmax(0, fmin(lo, lo2));
    hi = fmin(100, fmax(hi, hi2));
    rep_pad(&lo, &hi, 0.05);
    hi = fmin(hi, 100.5);
    rep_panel(1, 0, 2, 1, rep_legend_px(r, LEGEND_PX));
    rep_axes(x0, x1, REP_AX_LIN, lo, hi, REP_AX_LIN, "epoch", "accuracy (%)", "Accuracy");
    draw_runs(d, 2, 1, 0);
    draw_runs(d, 3, 3, 0);

    rep_legend l = {0};
    rep_legend_runs(r, &l);
    rep_legend_add(&l, "", -1, 1, 0);
    rep_legend_add(&l, "train", REP_COL_FG, 1, 0);
    rep_legend_add(&l, "test", REP_COL_FG, 3, 0);
    rep_legend_draw(&l, 1);
}

bsc_status rep_fig_curves(rep *r, rep_fig *f)
{
    static const char *const cols[] = {BSC_COL_TRAIN_LOSS, BSC_COL_TEST_LOSS, BSC_COL_TRAIN_ACC,
                                       BSC_COL_TEST_ACC};
    series_fig d = {0};
    bsc_status s = rep_metrics_series(r, BSC_COL_EPOCH, cols, 4, 1, &d.s, &d.n);
    if (s != BSC_OK)
        return s;
    if (d.n == 0) {
        rep_series_free(d.s, r->n_runs);
        return rep_skip(f, "no run has a %s", BSC_FILE_METRICS);
    }
    for (size_t i = 0; i < r->n_runs; i++)
        for (size_t j = 0; j < d.s[i].n; j++) {
            d.s[i].y[2][j] *= 100;
            d.s[i].y[3][j] *= 100;
        }
    d.n = r->n_runs;
    s = rep_render(r, f, 1800, 760, draw_curves, &d);
    rep_series_free(d.s, r->n_runs);
    return s;
}

/* ------------------------------------------------- generalization gap */

typedef struct gap_fig {
    size_t n;
    double *lb, *train, *test, *gap;   /* lb: log2 B, shifted by the run's xoff */
    const rep_run **run;
} gap_fig;

/* Indices of the points on the batch-size sweep: one run per batch size. */
static size_t gap_line(const gap_fig *d, double *x, double *y, const double *v)
{
    size_t m = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->run[i]->main) {
            x[m] = d->lb[i];
            y[m++] = v[i];
        }
    return m;
}

static void draw_gap(const rep *r, const void *data)
{
    const gap_fig *d = data;
    double x0, x1, lo, hi, lo2, hi2;
    rep_range(d->n, d->lb, &x0, &x1);
    x0 -= 0.5;
    x1 += 0.5;
    rep_range(d->n, d->train, &lo, &hi);
    rep_range(d->n, d->test, &lo2, &hi2);
    lo = fmin(lo, lo2);
    hi = fmax(hi, hi2);
    rep_pad(&lo, &hi, 0.15);
    rep_panel(0, 0, 2, 1, rep_legend_px(r, LEGEND_PX));
    rep_axes(x0, x1, REP_AX_LOG2, lo, hi, REP_AX_LIN, "batch size (log#d2#u scale)",
             "final accuracy (%)", "Final train and test accuracy");
    /* Lines follow the batch-size sweep (one run per B); runs that share a
     * B with it (other learning rates) are points beside it. */
    double *lx = malloc((d->n ? d->n : 1) * sizeof *lx);
    double *ly = malloc((d->n ? d->n : 1) * sizeof *ly);
    if (lx && ly) {
        size_t m = gap_line(d, lx, ly, d->train);
        rep_line(m, lx, ly, REP_COL_FG, 1, 2.0);
        m = gap_line(d, lx, ly, d->test);
        rep_line(m, lx, ly, REP_COL_FG, 3, 2.0);
    }
    for (size_t i = 0; i < d->n; i++) {
        rep_points(1, &d->lb[i], &d->train[i], d->run[i]->color, 1, 1.6);
        rep_points(1, &d->lb[i], &d->test[i], d->run[i]->color, 2, 1.6);
    }

    rep_range(d->n, d->gap, &lo, &hi);
    lo = fmin(lo, 0);
    hi = fmax(hi, 0);
    rep_pad(&lo, &hi, 0.15);
    rep_panel(1, 0, 2, 1, rep_legend_px(r, LEGEND_PX));
    /* Room above the highest point for the upright labels of runs that
     * share a batch size: about 12 px a character at their size. */
    size_t longest = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->run[i]->shared && 6 + strlen(d->run[i]->name) > longest)
            longest = 6 + strlen(d->run[i]->name);
    double need = longest ? 40 + 12.0 * (double)longest : 0, have = rep_panel_height_px();
    if (need > 0 && need < 0.7 * have)
        hi += need / (have - need) * (hi - lo);
    rep_axes(x0, x1, REP_AX_LOG2, lo, hi, REP_AX_LIN, "batch size (log#d2#u scale)",
             "gap (percentage points)", "Gap: train − test accuracy");
    double zx[2] = {x0, x1}, zy[2] = {0, 0};
    rep_line(2, zx, zy, REP_COL_MUTED, 2, 1.0);
    if (lx && ly) {
        size_t m = gap_line(d, lx, ly, d->gap);
        rep_line(m, lx, ly, REP_COL_FG, 1, 2.0);
    }
    free(lx);
    free(ly);
    for (size_t i = 0; i < d->n; i++) {
        char label[112];
        const rep_run *run = d->run[i];
        rep_points(1, &d->lb[i], &d->gap[i], run->color, 1, 1.8);
        /* Alone at its batch size, a run is known by the axis; runs that
         * share one are labelled with their names, written upright so that
         * neighbours do not collide. */
        if (!run->shared) {
            snprintf(label, sizeof label, "%.2f", d->gap[i]);
            rep_text(d->lb[i], d->gap[i] + rep_px_y(32), 0.5, REP_COL_FG, 0.8, label);
        } else {
            snprintf(label, sizeof label, "%.2f  %s", d->gap[i], run->name);
            rep_text_up(d->lb[i], d->gap[i] + rep_px_y(20), run->color, 0.8, label);
        }
    }
    rep_legend l = {0};
    rep_legend_runs(r, &l);
    for (int i = 0; i < l.n; i++)
        l.style[i] = -1, l.symbol[i] = 1;  /* the runs are markers here */
    rep_legend_add(&l, "", -1, 1, 0);
    rep_legend_add(&l, "train", REP_COL_FG, 1, 1);
    rep_legend_add(&l, "test", REP_COL_FG, 3, 2);
    rep_legend_draw(&l, 1);
}

/* The last row with a test accuracy: the final evaluation of the run. */
static long last_eval_row(const rep_series *s)
{
    for (size_t j = s->n; j-- > 0;)
        if (isfinite(s->y[0][j]) && isfinite(s->y[1][j]))
            return (long)j;
    return -1;
}

bsc_status rep_fig_gap(rep *r, rep_fig *f)
{
    static const char *const cols[] = {BSC_COL_TRAIN_ACC, BSC_COL_TEST_ACC};
    rep_series *ss = NULL;
    size_t found;
    bsc_status s = rep_metrics_series(r, BSC_COL_EPOCH, cols, 2, 1, &ss, &found);
    if (s != BSC_OK)
        return s;
    gap_fig d = {0};
    d.lb = calloc(r->n_runs + 1, sizeof *d.lb);
    d.train = calloc(r->n_runs + 1, sizeof *d.train);
    d.test = calloc(r->n_runs + 1, sizeof *d.test);
    d.gap = calloc(r->n_runs + 1, sizeof *d.gap);
    d.run = calloc(r->n_runs + 1, sizeof *d.run);
    if (!d.lb || !d.train || !d.test || !d.gap || !d.run)
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == BSC_OK && i < r->n_runs; i++) {
        long j = last_eval_row(&ss[i]);
        /* a diverged run's last finite evaluation is no final result */
        if (j < 0 || !rep_run_healthy(&r->runs[i]))
            continue;
        d.lb[d.n] = log2((double)r->runs[i].bs) + r->runs[i].xoff;
        d.train[d.n] = 100 * ss[i].y[0][j];
        d.test[d.n] = 100 * ss[i].y[1][j];
        d.gap[d.n] = d.train[d.n] - d.test[d.n];
        d.run[d.n] = &r->runs[i];
        d.n++;
    }
    if (s == BSC_OK && d.n == 0)
        s = rep_skip(f, "no run has a final evaluation in %s", BSC_FILE_METRICS);
    else if (s == BSC_OK && (s = rep_note_left_out(r, f)) == BSC_OK)
        s = rep_render(r, f, 1800, 760, draw_gap, &d);
    rep_series_free(ss, r->n_runs);
    free(d.lb);
    free(d.train);
    free(d.test);
    free(d.gap);
    free(d.run);
    return s;
}

/* ------------------------------------------------ distance from init */

/* Epochs across, a distance (>= 0, from 0 up) along: both distance figures. */
static void distance_ranges(const series_fig *d, double *x0, double *x1, double *lo, double *hi)
{
    runs_range(d, -1, REP_AX_LIN, x0, x1);
    rep_pad(x0, x1, 0.02);
    runs_range(d, 0, REP_AX_LIN, lo, hi);
    *lo = fmin(*lo, 0);
    rep_pad(lo, hi, 0.05);
    *lo = fmax(*lo, 0);
}

static void draw_distance(const rep *r, const void *data)
{
    const series_fig *d = data;
    double x0, x1, lo, hi;
    distance_ranges(d, &x0, &x1, &lo, &hi);
    rep_panel(0, 0, 2, 1, rep_legend_px(r, LEGEND_PX));
    rep_axes(x0, x1, REP_AX_LIN, lo, hi, REP_AX_LIN, "epoch", "‖w#dt#u − w#d0#u‖ (L2 norm)",
             "Distance from the initial weights, by epoch");
    draw_runs(d, 0, 0, 0);

    /* Against optimizer steps: the small batch takes many more of them. */
    double s0 = INFINITY, s1 = -INFINITY;
    for (size_t i = 0; i < d->n; i++)
        for (size_t j = 0; j < d->s[i].n; j++)
            if (isfinite(d->s[i].y[1][j])) {
                s0 = fmin(s0, d->s[i].y[1][j]);
                s1 = fmax(s1, d->s[i].y[1][j]);
            }
    rep_pad(&s0, &s1, 0.02);
    s0 = fmax(s0, 0);
    rep_panel(1, 0, 2, 1, rep_legend_px(r, LEGEND_PX));
    rep_axes(s0, s1, REP_AX_LIN, lo, hi, REP_AX_LIN, "optimizer step",
             "‖w#dt#u − w#d0#u‖ (L2 norm)", "Distance from the initial weights, by step");
    for (size_t i = 0; i < d->n; i++)
        if (d->s[i].n)
            rep_line(d->s[i].n, d->s[i].y[1], d->s[i].y[0], d->s[i].run->color,
                     d->s[i].run->style, 3.0);
    rep_legend l = {0};
    rep_legend_runs(r, &l);
    rep_legend_draw(&l, 1);
}

bsc_status rep_fig_distance(rep *r, rep_fig *f)
{
    static const char *const cols[] = {BSC_COL_DISTANCE_FROM_INIT, BSC_COL_STEP};
    series_fig d = {0};
    bsc_status s = rep_metrics_series(r, BSC_COL_EPOCH, cols, 2, 0, &d.s, &d.n);
    if (s == BSC_OK && d.n == 0)
        s = rep_skip(f, "no %s has a %s column (the distance observer was not run)",
                     BSC_FILE_METRICS, BSC_COL_DISTANCE_FROM_INIT);
    else if (s == BSC_OK) {
        d.n = r->n_runs;
        s = rep_render(r, f, 1800, 760, draw_distance, &d);
    }
    rep_series_free(d.s, r->n_runs);
    return s;
}

/* ---------------------------------------------------- epoch distance */

static void draw_epoch_distance(const rep *r, const void *data)
{
    const series_fig *d = data;
    double x0, x1, lo, hi;
    distance_ranges(d, &x0, &x1, &lo, &hi);
    rep_panel(0, 0, 1, 1, rep_legend_px(r, LEGEND_PX));
    rep_axes(x0, x1, REP_AX_LIN, lo, hi, REP_AX_LIN, "epoch",
             "‖w#dend(e)#u − w#dstart(e)#u‖ (L2 norm)", "Distance travelled in each epoch");
    draw_runs(d, 0, 0, 0);
    for (size_t i = 0; i < d->n; i++)
        if (d->s[i].n)
            rep_points(d->s[i].n, d->s[i].x, d->s[i].y[0], d->s[i].run->color, 1, 1.0);
    rep_legend l = {0};
    rep_legend_runs(r, &l);
    rep_legend_draw(&l, 1);
}

bsc_status rep_fig_epoch_distance(rep *r, rep_fig *f)
{
    static const char *const cols[] = {BSC_COL_EPOCH_DISTANCE};
    series_fig d = {0};
    bsc_status s = rep_metrics_series(r, BSC_COL_EPOCH, cols, 1, 0, &d.s, &d.n);
    if (s == BSC_OK && d.n == 0)
        s = rep_skip(f, "no %s has an %s column (the distance observer was not run)",
                     BSC_FILE_METRICS, BSC_COL_EPOCH_DISTANCE);
    else if (s == BSC_OK) {
        d.n = r->n_runs;
        s = rep_render(r, f, 1300, 760, draw_epoch_distance, &d);
    }
    rep_series_free(d.s, r->n_runs);
    return s;
}

/* ----------------------------------------- ratio of epoch distances */

#define MAX_PAIRS 8

typedef struct ratio_fig {
    size_t n_pairs;
    long small[MAX_PAIRS], large[MAX_PAIRS];
    char small_run[MAX_PAIRS][72], large_run[MAX_PAIRS][72];   /* "" when unknown */
    const rep_run *big[MAX_PAIRS];     /* the large run: the pair's color */
    size_t n[MAX_PAIRS];
    double *epoch[MAX_PAIRS], *ratio[MAX_PAIRS];
    char label[MAX_PAIRS][200];
} ratio_fig;

static void draw_ratio(const rep *r, const void *data)
{
    const ratio_fig *d = data;
    double x0 = INFINITY, x1 = -INFINITY, lo = INFINITY, hi = -INFINITY, a, b;
    for (size_t p = 0; p < d->n_pairs; p++) {
        rep_range(d->n[p], d->epoch[p], &a, &b);
        x0 = fmin(x0, a);
        x1 = fmax(x1, b);
        rep_range(d->n[p], d->ratio[p], &a, &b);
        lo = fmin(lo, a);
        hi = fmax(hi, b);
    }
    lo = fmin(lo, 1);
    hi = fmax(hi, 1);
    rep_pad(&x0, &x1, 0.03);
    rep_pad(&lo, &hi, 0.08);
    int px = LEGEND_PX + 60;
    for (size_t p = 0; p < d->n_pairs; p++)
        if (140 + 17 * (int)strlen(d->label[p]) > px)
            px = 140 + 17 * (int)strlen(d->label[p]);
    rep_panel(0, 0, 1, 1, px);
    rep_axes(x0, x1, REP_AX_LIN, lo, hi, REP_AX_LIN, "epoch",
             "epoch distance, small batch / large batch", "Ratio of epoch distances");
    double ox[2] = {x0, x1}, oy[2] = {1, 1};
    rep_line(2, ox, oy, REP_COL_MUTED, 2, 1.0);
    rep_legend l = {0};
    (void)r;
    for (size_t p = 0; p < d->n_pairs; p++) {
        int color = d->big[p] ? d->big[p]->color : REP_COL_FG;
        rep_line(d->n[p], d->epoch[p], d->ratio[p], color, 1, 3.0);
        rep_points(d->n[p], d->epoch[p], d->ratio[p], color, 1, 1.0);
        rep_legend_add(&l, d->label[p], color, 1, 1);
    }
    rep_legend_draw(&l, 1);
}

static void free_ratio(ratio_fig *d)
{
    for (size_t p = 0; p < MAX_PAIRS; p++) {
        free(d->epoch[p]);
        free(d->ratio[p]);
    }
}

/* A pair's legend text: "B = 32 / B = 256" for bs<B> runs, the names
 * ("bs32 / bs256-sqrt") as soon as one is not. */
static void pair_label(const rep *r, ratio_fig *d, size_t p, const char *na, const char *nb,
                       int have_bs)
{
    const rep_run *a = na[0] ? rep_find_run_name(r, na)
                             : have_bs ? rep_find_run(r, d->small[p]) : NULL;
    const rep_run *b = nb[0] ? rep_find_run_name(r, nb)
                             : have_bs ? rep_find_run(r, d->large[p]) : NULL;
    d->big[p] = b;
    if (a && b && a->is_default && b->is_default)
        snprintf(d->label[p], sizeof d->label[p], "%s / %s", a->label, b->label);
    else if (a && b)
        snprintf(d->label[p], sizeof d->label[p], "%s / %s", a->name, b->name);
    else if (na[0] && nb[0])
        snprintf(d->label[p], sizeof d->label[p], "%s / %s", na, nb);
    else if (have_bs)
        snprintf(d->label[p], sizeof d->label[p], "B = %ld / B = %ld", d->small[p],
                 d->large[p]);
    else
        snprintf(d->label[p], sizeof d->label[p], "small / large");
}

/* The text of a name cell ("" when empty); a name of digits reads back as
 * a number. */
static void name_cell(const bsc_table *t, long col, size_t row, char *out, size_t len)
{
    const char *s = col >= 0 ? bsc_table_get_str(t, row, (size_t)col) : NULL;
    double v = col >= 0 ? bsc_table_get(t, row, (size_t)col) : NAN;
    if (s)
        snprintf(out, len, "%s", s);
    else if (isfinite(v))
        snprintf(out, len, "%.0f", v);
    else
        out[0] = '\0';
}

/* Pairs from analyses/epoch_distance_ratio.csv: epoch and ratio columns,
 * and the pair's runs (small_run, large_run) or batch sizes when the file
 * holds more than one pair. */
static bsc_status ratio_from_file(const rep *rp, const char *path, const bsc_table *t,
                                  ratio_fig *d)
{
    /* the summary observer's names first, then those of hand-made files */
    static const char *const ratio_names[] = {BSC_COL_RATIO, "epoch_distance_ratio", NULL};
    static const char *const small_names[] = {BSC_COL_SMALL, "bs_small", "small_batch",
                                              "batch_small", NULL};
    static const char *const large_names[] = {BSC_COL_LARGE, "bs_large", "large_batch",
                                              "batch_large", NULL};
    size_t ce, cr;
    bsc_status s = rep_col(t, path, BSC_COL_EPOCH, &ce);
    if (s != BSC_OK)
        return s;
    long r = rep_col_any(t, ratio_names);
    if (r < 0)
        return rep_col(t, path, BSC_COL_RATIO, &cr);
    cr = (size_t)r;
    long cs = rep_col_any(t, small_names), cl = rep_col_any(t, large_names);
    long csr = bsc_table_find(t, BSC_COL_SMALL_RUN), clr = bsc_table_find(t, BSC_COL_LARGE_RUN);
    size_t rows = bsc_table_n_rows(t);
    for (size_t i = 0; i < rows; i++) {
        double e, v, sm = 0, lg = 0;
        char na[72], nb[72];
        if ((s = rep_num(t, path, i, ce, &e)) != BSC_OK ||
            (s = rep_num(t, path, i, cr, &v)) != BSC_OK ||
            (cs >= 0 && (s = rep_num(t, path, i, (size_t)cs, &sm)) != BSC_OK) ||
            (cl >= 0 && (s = rep_num(t, path, i, (size_t)cl, &lg)) != BSC_OK))
            return s;
        name_cell(t, csr, i, na, sizeof na);
        name_cell(t, clr, i, nb, sizeof nb);
        /* one pair per (small, large) run; two runs may share batch sizes */
        size_t p = 0;
        while (p < d->n_pairs && !(d->small[p] == (long)sm && d->large[p] == (long)lg &&
                                   !strcmp(d->small_run[p], na) &&
                                   !strcmp(d->large_run[p], nb)))
            p++;
        if (p == d->n_pairs) {
            if (p == MAX_PAIRS)
                continue;
            d->small[p] = (long)sm;
            d->large[p] = (long)lg;
            snprintf(d->small_run[p], sizeof d->small_run[p], "%s", na);
            snprintf(d->large_run[p], sizeof d->large_run[p], "%s", nb);
            d->epoch[p] = malloc(rows * sizeof(double));
            d->ratio[p] = malloc(rows * sizeof(double));
            if (!d->epoch[p] || !d->ratio[p])
                return bsc_fail(BSC_ERR_NOMEM, "out of memory");
            pair_label(rp, d, p, na, nb, cs >= 0 && cl >= 0);
            d->n_pairs++;
        }
        d->epoch[p][d->n[p]] = e;
        d->ratio[p][d->n[p]] = v;
        d->n[p]++;
    }
    return BSC_OK;
}

/* Without the file: the first run of the smallest batch size against the
 * run bs256 (else the first of the largest), the default pair of the
 * observers, from their metrics.csv columns. */
static bsc_status ratio_from_metrics(rep *r, ratio_fig *d)
{
    static const char *const cols[] = {BSC_COL_EPOCH_DISTANCE};
    rep_series *ss = NULL;
    size_t found;
    bsc_status s = rep_metrics_series(r, BSC_COL_EPOCH, cols, 1, 0, &ss, &found);
    if (s != BSC_OK || found < 2) {
        rep_series_free(ss, r->n_runs);
        return s;
    }
    const rep_series *a = NULL, *b = NULL, *b256 = NULL;
    for (size_t i = 0; i < r->n_runs; i++)
        if (ss[i].n) {
            /* of several runs at one batch size, its bs<B> run */
            const rep_run *run = ss[i].run;
            if (!a || (run->bs == a->run->bs && run->is_default))
                a = &ss[i];
            if (!b || run->bs > b->run->bs || (run->bs == b->run->bs && run->is_default))
                b = &ss[i];
            if (run->is_default && run->bs == 256)
                b256 = &ss[i];
        }
    if (b256 && b256 != a)
        b = b256;
    if (a && b && a != b) {
        d->epoch[0] = malloc(a->n * sizeof(double));
        d->ratio[0] = malloc(a->n * sizeof(double));
        if (!d->epoch[0] || !d->ratio[0])
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        for (size_t j = 0; s == BSC_OK && j < a->n; j++)
            for (size_t k = 0; k < b->n; k++)
                if (a->x[j] == b->x[k] && a->x[j] >= 1) {
                    d->epoch[0][d->n[0]] = a->x[j];
                    d->ratio[0][d->n[0]++] = a->y[0][j] / b->y[0][k];
                }
        d->small[0] = a->run->bs;
        d->large[0] = b->run->bs;
        d->big[0] = b->run;
        if (a->run->is_default && b->run->is_default)
            snprintf(d->label[0], sizeof d->label[0], "%s / %s", a->run->label, b->run->label);
        else
            snprintf(d->label[0], sizeof d->label[0], "%s / %s", a->run->name, b->run->name);
        d->n_pairs = d->n[0] ? 1 : 0;
    }
    rep_series_free(ss, r->n_runs);
    return s;
}

bsc_status rep_fig_distance_ratio(rep *r, rep_fig *f)
{
    ratio_fig d;
    memset(&d, 0, sizeof d);
    char *path = rep_path(r, BSC_IN_ANALYSES(BSC_FILE_EPOCH_DISTANCE_RATIO));
    bsc_table *t = NULL;
    bsc_status s = path ? rep_csv(r, path, &t) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && t)
        s = ratio_from_file(r, path, t, &d);
    else if (s == BSC_OK)
        s = ratio_from_metrics(r, &d);
    if (s == BSC_OK && d.n_pairs == 0)
        s = rep_skip(f, "no %s, and fewer than two runs with epoch distances",
                     BSC_IN_ANALYSES(BSC_FILE_EPOCH_DISTANCE_RATIO));
    else if (s == BSC_OK)
        s = rep_render(r, f, 1300, 760, draw_ratio, &d);
    bsc_table_free(t);
    free(path);
    free_ratio(&d);
    return s;
}
