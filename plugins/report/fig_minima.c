/* Figures 4 and 5: the minimizers compared -- interpolation between two of
 * them, Keskar sharpness and the top Hessian eigenvalue against batch size
 * (OUT/analyses/interpolate_*.csv, sharpness.csv, hessian.csv). */
#include "report.h"

#include "batchscope/fsutil.h"

#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ interpolation */

typedef struct interp_fig {
    size_t n;
    double *alpha, *y[4];     /* train_loss, test_loss, train_acc, test_acc */
    int has_test, log_loss;
    long bs_a, bs_b;          /* from the file name; -1 unknown */
    const rep_run *ra, *rb;   /* the two runs, when they are under OUT/runs */
} interp_fig;

static void draw_interp(const rep *r, const void *data)
{
    const interp_fig *d = data;
    double x0, x1, lo = INFINITY, hi = -INFINITY, a, b;
    rep_range(d->n, d->alpha, &x0, &x1);
    rep_pad(&x0, &x1, 0.02);
    for (int k = 0; k < (d->has_test ? 2 : 1); k++) {
        rep_range(d->n, d->y[k], &a, &b);
        lo = fmin(lo, a);
        hi = fmax(hi, b);
    }
    rep_pad(&lo, &hi, 0.05);
    int kind = d->log_loss ? REP_AX_LOG10 : REP_AX_LIN;
    char title[240];
    /* subscripts: the batch size of a bs<B> run, the name of another */
    if (d->ra && d->rb && (!d->ra->is_default || !d->rb->is_default))
        snprintf(title, sizeof title, "θ(α) = α θ#d%s#u + (1 − α) θ#d%s#u", d->rb->name,
                 d->ra->name);
    else if (d->bs_a > 0)
        snprintf(title, sizeof title, "θ(α) = α θ#dB=%ld#u + (1 − α) θ#dB=%ld#u", d->bs_b,
                 d->bs_a);
    else
        snprintf(title, sizeof title, "θ(α) = α θ#dB#u + (1 − α) θ#dA#u");
    rep_panel(0, 0, 1, 1, 520);
    rep_axes(x0, x1, REP_AX_LIN, lo, hi, kind, "α (0: first minimizer, 1: second)",
             d->log_loss ? "cross-entropy loss (nats, log scale)" : "cross-entropy loss (nats)",
             title);
    /* the two minimizers, in their runs' colors */
    (void)r;
    for (int m = 0; m < 2; m++) {
        const rep_run *run = m ? d->rb : d->ra;
        int color = run ? run->color : REP_COL_MUTED;
        double mx[2] = {m, m}, my[2] = {lo, hi};
        char label[112];
        rep_line(2, mx, my, color, 2, 2.0);
        /* the name alone for a named run: the label must fit beside the line */
        if (run)
            snprintf(label, sizeof label, "%s", run->is_default ? run->label : run->name);
        else
            snprintf(label, sizeof label, "%s", m ? "B" : "A");
        rep_text(m + (m ? 0.03 : -0.03) * (x1 - x0), hi - 0.06 * (hi - lo), m ? 0.0 : 1.0,
                 color, 0.9, label);
    }
    rep_line(d->n, d->alpha, d->y[0], REP_COL_LOSS, 1, 3.0);
    if (d->has_test)
        rep_line(d->n, d->alpha, d->y[1], REP_COL_LOSS, 3, 3.0);
    rep_axis_right(0, 100, "accuracy (%)", REP_COL_ACC);
    rep_line(d->n, d->alpha, d->y[2], REP_COL_ACC, 1, 3.0);
    if (d->has_test)
        rep_line(d->n, d->alpha, d->y[3], REP_COL_ACC, 3, 3.0);
    rep_legend l = {0};
    rep_legend_add(&l, "train loss", REP_COL_LOSS, 1, 0);
    if (d->has_test)
        rep_legend_add(&l, "test loss", REP_COL_LOSS, 3, 0);
    rep_legend_add(&l, "train accuracy", REP_COL_ACC, 1, 0);
    if (d->has_test)
        rep_legend_add(&l, "test accuracy", REP_COL_ACC, 3, 0);
    rep_legend_draw(&l, 2);
}

bsc_status rep_fig_interpolation(rep *r, rep_fig *f, const char *csv)
{
    static const char *const cols[] = {BSC_COL_TRAIN_LOSS, BSC_COL_TEST_LOSS, BSC_COL_TRAIN_ACC,
                                       BSC_COL_TEST_ACC};
    const size_t lp = sizeof BSC_PREFIX_INTERPOLATE - 1;
    interp_fig d;
    memset(&d, 0, sizeof d);
    char *rel = bsc_strdup_printf(BSC_ANALYSES_DIR "/%s", csv);
    char *path = rel ? rep_path(r, rel) : NULL;
    bsc_table *t = NULL;
    bsc_status s = path ? rep_csv(r, path, &t) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t ca, c[4];
    if (s == BSC_OK && !t)
        s = rep_skip(f, "no %s", rel);
    else if (s == BSC_OK && (s = rep_col(t, path, BSC_COL_ALPHA, &ca)) == BSC_OK) {
        d.has_test = bsc_table_find(t, BSC_COL_TEST_LOSS) >= 0;
        d.n = bsc_table_n_rows(t);
        char stem[160];
        size_t len = strlen(csv);
        /* interpolate_<A>_<B>.csv by run name (see the interpolate analysis) */
        if (len > lp + 4 && !strncmp(csv, BSC_PREFIX_INTERPOLATE, lp) &&
            len - lp - 4 < sizeof stem) {
            snprintf(stem, sizeof stem, "%.*s", (int)(len - lp - 4), csv + lp);
            rep_split_pair(r, stem, &d.ra, &d.rb, &d.bs_a, &d.bs_b);
        } else {
            d.bs_a = d.bs_b = -1;
        }
        s = rep_column(t, path, ca, &d.alpha);
        for (int k = 0; s == BSC_OK && k < 4; k++) {
            if (!d.has_test && (k == 1 || k == 3))
                continue;
            if ((s = rep_col(t, path, cols[k], &c[k])) == BSC_OK)
                s = rep_column(t, path, c[k], &d.y[k]);
        }
        for (size_t j = 0; s == BSC_OK && j < d.n; j++)
            for (int k = 2; k < 4; k++)
                if (d.y[k])
                    d.y[k][j] *= 100;
        if (s == BSC_OK && d.n == 0)
            s = rep_skip(f, "%s has no rows", rel);
        else if (s == BSC_OK) {
            /* Far from both minimizers the loss explodes; a log axis keeps
             * the basins around alpha = 0 and 1 readable. */
            double lo, hi, lo2, hi2;
            rep_range(d.n, d.y[0], &lo, &hi);
            if (d.has_test) {
                rep_range(d.n, d.y[1], &lo2, &hi2);
                lo = fmin(lo, lo2);
                hi = fmax(hi, hi2);
            }
            d.log_loss = lo > 0 && hi / lo > 20;
            if (d.log_loss)
                for (size_t j = 0; j < d.n; j++)
                    for (int k = 0; k < 2; k++)
                        if (d.y[k])
                            d.y[k][j] = rep_tx(d.y[k][j], REP_AX_LOG10);
            s = rep_render(r, f, 1650, 800, draw_interp, &d);
        }
    }
    bsc_table_free(t);
    free(path);
    free(rel);
    free(d.alpha);
    for (int k = 0; k < 4; k++)
        free(d.y[k]);
    return s;
}

/* ----------------------------------------- quantity vs batch size */

#define MAX_SERIES 8

/* Series of (batch size, value) points, each with a label; the points
 * take the runs' colors, the series differ by line and symbol. Runs that
 * share a batch size sit side by side (rep_run.xoff); a series' line joins
 * one run per batch size (rep_run.main), the sweep over batch sizes. */
typedef struct bs_fig {
    int n_panels;
    const char *title[2], *ylabel[2];
    int ykind[2];
    size_t n_series[2];
    char label[2][MAX_SERIES][64];
    size_t n[2][MAX_SERIES];
    double lb[2][MAX_SERIES][64], v[2][MAX_SERIES][64];
    double lo[2][MAX_SERIES][64], hi[2][MAX_SERIES][64];   /* error bar; NaN: none */
    int color[2][MAX_SERIES][64];
    int on_line[2][MAX_SERIES][64];
} bs_fig;

static void draw_bs(const rep *r, const void *data)
{
    const bs_fig *d = data;
    double x0 = INFINITY, x1 = -INFINITY;
    for (int p = 0; p < d->n_panels; p++)
        for (size_t k = 0; k < d->n_series[p]; k++)
            for (size_t i = 0; i < d->n[p][k]; i++) {
                x0 = fmin(x0, d->lb[p][k][i]);
                x1 = fmax(x1, d->lb[p][k][i]);
            }
    x0 -= 0.5;
    x1 += 0.5;
    /* One legend for every panel's series, outside the last one. */
    rep_legend l = {0};
    for (int p = 0; p < d->n_panels; p++) {
        double lo = INFINITY, hi = -INFINITY, a, b;
        for (size_t k = 0; k < d->n_series[p]; k++) {
            rep_range(d->n[p][k], d->v[p][k], &a, &b);
            lo = fmin(lo, a);
            hi = fmax(hi, b);
            rep_range(d->n[p][k], d->lo[p][k], &a, &b);
            lo = fmin(lo, a);
            rep_range(d->n[p][k], d->hi[p][k], &a, &b);
            hi = fmax(hi, b);
        }
        if (d->ykind[p] == REP_AX_LIN)
            lo = fmin(lo, 0);
        rep_pad(&lo, &hi, 0.1);
        rep_panel(p, 0, d->n_panels, 1, r->named ? rep_legend_px(r, 420) : 420);
        rep_axes(x0, x1, REP_AX_LOG2, lo, hi, d->ykind[p], "batch size (log#d2#u scale)",
                 d->ylabel[p], d->title[p]);
        for (size_t k = 0; k < d->n_series[p]; k++) {
            int style = 1 + (int)k % 4, symbol = 1 + (int)k % 5;
            double lx[64], ly[64];
            size_t m = 0;
            for (size_t i = 0; i < d->n[p][k]; i++)
                if (d->on_line[p][k][i]) {
                    lx[m] = d->lb[p][k][i];
                    ly[m++] = d->v[p][k][i];
                }
            rep_line(m, lx, ly, REP_COL_FG, style, 1.8);
            for (size_t i = 0; i < d->n[p][k]; i++) {
                if (isfinite(d->lo[p][k][i]) && isfinite(d->hi[p][k][i])) {
                    PLFLT ex = d->lb[p][k][i], elo = d->lo[p][k][i], ehi = d->hi[p][k][i];
                    plcol0(d->color[p][k][i]);
                    plwidth(2.0);
                    plerry(1, &ex, &elo, &ehi);
                    plwidth(1.0);
                }
                rep_points(1, &d->lb[p][k][i], &d->v[p][k][i], d->color[p][k][i], symbol, 1.7);
            }
            if (d->n_series[p] > 1 || d->label[p][k][0])
                rep_legend_add(&l, d->label[p][k], REP_COL_FG, style, symbol);
        }
    }
    /* Named runs: the batch size no longer tells the points apart, the
     * colors do. */
    if (r->named) {
        int first = l.n;
        if (l.n)
            rep_legend_add(&l, "", -1, 1, 0);
        rep_legend_runs(r, &l);
        for (int i = first; i < l.n; i++)
            if (l.color[i] >= 0)
                l.style[i] = -1, l.symbol[i] = 1;
    }
    rep_legend_draw(&l, 1);
}

/* Appends (bs, v) of a run (NULL: one not under OUT/runs) to the series
 * called label of panel p, with an error bar from lo to hi (NaN: none). */
static void bs_add_range(bs_fig *d, int p, const char *label, const rep_run *run, long bs,
                         double v, double elo, double ehi)
{
    size_t k = 0;
    while (k < d->n_series[p] && strcmp(d->label[p][k], label) != 0)
        k++;
    if (k == d->n_series[p]) {
        if (k == MAX_SERIES)
            return;
        snprintf(d->label[p][k], sizeof d->label[p][k], "%s", label);
        d->n_series[p]++;
    }
    size_t i = d->n[p][k];
    if (i == 64 || bs <= 0)
        return;
    double lb = log2((double)bs) + (run ? run->xoff : 0);
    /* kept sorted by batch size, so the connecting line runs left to right */
    for (; i > 0 && d->lb[p][k][i - 1] > lb; i--) {
        d->lb[p][k][i] = d->lb[p][k][i - 1];
        d->v[p][k][i] = d->v[p][k][i - 1];
        d->lo[p][k][i] = d->lo[p][k][i - 1];
        d->hi[p][k][i] = d->hi[p][k][i - 1];
        d->color[p][k][i] = d->color[p][k][i - 1];
        d->on_line[p][k][i] = d->on_line[p][k][i - 1];
    }
    d->lb[p][k][i] = lb;
    d->v[p][k][i] = rep_tx(v, d->ykind[p]);
    d->lo[p][k][i] = rep_tx(elo, d->ykind[p]);
    d->hi[p][k][i] = rep_tx(ehi, d->ykind[p]);
    d->color[p][k][i] = run ? run->color : REP_COL_FG;
    d->on_line[p][k][i] = run ? run->main : 1;
    d->n[p][k]++;
}

/* The same with the bar v +- err. */
static void bs_add_err(bs_fig *d, int p, const char *label, const rep_run *run, long bs,
                       double v, double err)
{
    bs_add_range(d, p, label, run, bs, v, v - err, v + err);
}

static void bs_add(bs_fig *d, int p, const char *label, const rep_run *run, long bs, double v)
{
    bs_add_range(d, p, label, run, bs, v, NAN, NAN);
}

bsc_status rep_fig_sharpness(rep *r, rep_fig *f)
{
    char *path = rep_path(r, BSC_IN_ANALYSES(BSC_FILE_SHARPNESS));
    bsc_table *t = NULL;
    bs_fig *d = calloc(1, sizeof *d);
    bsc_status s = path && d ? rep_csv(r, path, &t) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t cb, ce, cs;
    long cv = -1;
    if (s == BSC_OK && !t)
        s = rep_skip(f, "no %s (the sharpness analysis was not run)",
                     BSC_IN_ANALYSES(BSC_FILE_SHARPNESS));
    else if (s == BSC_OK && (s = rep_col(t, path, BSC_COL_BATCH_SIZE, &cb)) == BSC_OK &&
             (s = rep_col(t, path, BSC_COL_EPS, &ce)) == BSC_OK &&
             (s = rep_col(t, path, BSC_COL_SHARPNESS, &cs)) == BSC_OK) {
        cv = bsc_table_find(t, BSC_COL_VARIANT);
        long crun = bsc_table_find(t, BSC_COL_RUN);
        size_t left_out = 0;
        d->n_panels = 1;
        d->title[0] = "Keskar sharpness of the minimizer";
        d->ylabel[0] = "φ (max loss increase in the ε-box, %)";
        d->ykind[0] = REP_AX_LIN;
        for (size_t i = 0; s == BSC_OK && i < bsc_table_n_rows(t); i++) {
            double bs, eps, v;
            if (!rep_row_ok(t, i)) {
                left_out++;
                continue;
            }
            if ((s = rep_num(t, path, i, cb, &bs)) != BSC_OK ||
                (s = rep_num(t, path, i, ce, &eps)) != BSC_OK ||
                (s = rep_num(t, path, i, cs, &v)) != BSC_OK)
                break;
            const char *variant = cv >= 0 ? bsc_table_get_str(t, i, (size_t)cv) : NULL;
            char label[64];
            snprintf(label, sizeof label, "%s, ε = %g", variant ? variant : BSC_VARIANT_FULL, eps);
            bs_add(d, 0, label, rep_row_run(r, t, crun, i, bs), (long)bs, v);
        }
        if (s == BSC_OK && d->n_series[0] == 0)
            s = rep_skip(f, left_out ? "every run in %s was left out (see its status column)"
                                     : "%s has no rows", BSC_IN_ANALYSES(BSC_FILE_SHARPNESS));
        else if (s == BSC_OK)
            s = rep_render(r, f, 1500, 760, draw_bs, d);
    }
    bsc_table_free(t);
    free(path);
    free(d);
    return s;
}

/* The hessian analysis' rows (one quantity each; its own format since
 * issue 13: a `block` column, top eigenvalues k = 1.., the trace with its
 * standard error) on two panels: the top eigenvalues per rank, and the
 * trace with +-2 standard errors. Rows of tensor blocks are the per-layer
 * picture, not drawn here. Older files (one top eigenvalue column per row,
 * `trace` as a column) still draw. */
bsc_status rep_fig_hessian(rep *r, rep_fig *f)
{
    /* the hessian analysis' value column last: older files had their own */
    static const char *const eig_names[] = {"top_eigenvalue", "eigenvalue", "lambda_max",
                                            "lambda", BSC_COL_VALUE, NULL};
    char *path = rep_path(r, BSC_IN_ANALYSES(BSC_FILE_HESSIAN));
    bsc_table *t = NULL;
    bs_fig *d = calloc(1, sizeof *d);
    bsc_status s = path && d ? rep_csv(r, path, &t) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t cb, ce;
    if (s == BSC_OK && !t)
        s = rep_skip(f, "no %s (the hessian analysis was not run)",
                     BSC_IN_ANALYSES(BSC_FILE_HESSIAN));
    else if (s == BSC_OK && (s = rep_col(t, path, BSC_COL_BATCH_SIZE, &cb)) == BSC_OK) {
        long c = rep_col_any(t, eig_names);
        /* a `trace` column: files from before the quantity rows */
        long ctr = bsc_table_find(t, "trace"), cq = bsc_table_find(t, BSC_COL_QUANTITY);
        long ck = bsc_table_find(t, BSC_COL_K), cse = bsc_table_find(t, BSC_COL_STD_ERR);
        long cblk = bsc_table_find(t, BSC_COL_BLOCK), crun = bsc_table_find(t, BSC_COL_RUN);
        if (c < 0)
            s = rep_col(t, path, BSC_COL_VALUE, &ce);
        else
            ce = (size_t)c;
        /* Short titles and labels: two panels side by side at paper size. */
        d->title[0] = "Top Hessian eigenvalues";
        d->ylabel[0] = "λ#dk#u (nats / weight unit²)";
        d->title[1] = "Hessian trace (Hutchinson, ± 2 s.e.)";
        d->ylabel[1] = "tr(H) (nats / weight unit²)";
        d->n_panels = 1;
        size_t rows = s == BSC_OK ? bsc_table_n_rows(t) : 0, left_out = 0;
        for (size_t i = 0; s == BSC_OK && i < rows; i++) {
            double bs, v, k = 1, se = NAN, tr = NAN;
            if (!rep_row_ok(t, i)) {
                left_out++;
                continue;
            }
            if ((s = rep_num(t, path, i, cb, &bs)) != BSC_OK ||
                (s = rep_num(t, path, i, ce, &v)) != BSC_OK ||
                (ck >= 0 && (s = rep_num(t, path, i, (size_t)ck, &k)) != BSC_OK) ||
                (cse >= 0 && (s = rep_num(t, path, i, (size_t)cse, &se)) != BSC_OK) ||
                (ctr >= 0 && (s = rep_num(t, path, i, (size_t)ctr, &tr)) != BSC_OK))
                break;
            const char *blk = cblk >= 0 ? bsc_table_get_str(t, i, (size_t)cblk) : NULL;
            if (blk && strcmp(blk, BSC_BLOCK_ALL) != 0)
                continue;
            const char *q = cq >= 0 ? bsc_table_get_str(t, i, (size_t)cq) : NULL;
            const rep_run *run = rep_row_run(r, t, crun, i, bs);
            if (q && !strcmp(q, BSC_QUANTITY_TRACE)) {
                bs_add_err(d, 1, "", run, (long)bs, v, 2 * se);
                d->n_panels = 2;
                continue;
            }
            if (q && strcmp(q, BSC_QUANTITY_EIGENVALUE) != 0)
                continue;
            char label[32];
            snprintf(label, sizeof label, "λ#d%d#u", (int)k);
            bs_add(d, 0, ck >= 0 ? label : "", run, (long)bs, v);
            if (isfinite(tr) && k == 1) {   /* a trace column repeats on every row */
                bs_add(d, 1, "", run, (long)bs, tr);
                d->n_panels = 2;
            }
        }
        if (s == BSC_OK && d->n_series[0] == 0)
            s = rep_skip(f, left_out ? "every run in %s was left out (see its status column)"
                                     : "%s has no rows", BSC_IN_ANALYSES(BSC_FILE_HESSIAN));
        else if (s == BSC_OK)
            s = rep_render(r, f, d->n_panels == 2 ? 1900 : 1300, 760, draw_bs, d);
    }
    bsc_table_free(t);
    free(path);
    free(d);
    return s;
}

/* The gradient_diversity observer's ratios at one common batch size on
 * every run's final weights (analyses/gradient_diversity_common.csv):
 * medians with their quartile ranges, so that minimizers compare on the
 * same footing rather than each at its own batch size. */
bsc_status rep_fig_diversity_common(rep *r, rep_fig *f)
{
    static const char *const names[2] = {BSC_COL_NORM_RATIO, BSC_COL_DIVERSITY};
    char *path = rep_path(r, BSC_IN_ANALYSES(BSC_FILE_GRADIENT_DIVERSITY_COMMON));
    bsc_table *t = NULL;
    bs_fig *d = calloc(1, sizeof *d);
    bsc_status s = path && d ? rep_csv(r, path, &t) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t cb, cc, c[2][3];
    static char title[2][96];
    if (s == BSC_OK && !t)
        s = rep_skip(f, "no %s (the gradient_diversity observer was not run, or with "
                     "common_batch: 0)", BSC_IN_ANALYSES(BSC_FILE_GRADIENT_DIVERSITY_COMMON));
    else if (s == BSC_OK && (s = rep_col(t, path, BSC_COL_BATCH_SIZE, &cb)) == BSC_OK &&
             (s = rep_col(t, path, BSC_COL_COMMON_BATCH, &cc)) == BSC_OK) {
        static const char *const q[3] = {BSC_STAT_Q25, BSC_STAT_MEDIAN, BSC_STAT_Q75};
        for (int p = 0; s == BSC_OK && p < 2; p++)
            for (int k = 0; s == BSC_OK && k < 3; k++) {
                char col[48];
                snprintf(col, sizeof col, "%s_%s", names[p], q[k]);
                s = rep_col(t, path, col, &c[p][k]);
            }
        double common = NAN;
        if (s == BSC_OK && bsc_table_n_rows(t))
            s = rep_num(t, path, 0, cc, &common);
        snprintf(title[0], sizeof title[0], "Norm ratio on batches of %.0f", common);
        snprintf(title[1], sizeof title[1], "Gradient diversity on batches of %.0f", common);
        d->n_panels = 2;
        d->title[0] = title[0];
        d->ylabel[0] = "‖Σ g#di#u‖ / Σ ‖g#di#u‖ (median, quartiles)";
        d->title[1] = title[1];
        d->ylabel[1] = "diversity (median, quartiles)";
        long crun = bsc_table_find(t, BSC_COL_RUN);
        for (size_t i = 0; s == BSC_OK && i < bsc_table_n_rows(t); i++) {
            double bs, v[2][3];
            if ((s = rep_num(t, path, i, cb, &bs)) != BSC_OK)
                break;
            for (int p = 0; s == BSC_OK && p < 2; p++)
                for (int k = 0; s == BSC_OK && k < 3; k++)
                    s = rep_num(t, path, i, c[p][k], &v[p][k]);
            const rep_run *run = rep_row_run(r, t, crun, i, bs);
            for (int p = 0; s == BSC_OK && p < 2; p++)
                bs_add_range(d, p, "", run, (long)bs, v[p][1], v[p][0], v[p][2]);
        }
        if (s == BSC_OK && d->n_series[0] == 0)
            s = rep_skip(f, "%s has no rows",
                         BSC_IN_ANALYSES(BSC_FILE_GRADIENT_DIVERSITY_COMMON));
        else if (s == BSC_OK)
            s = rep_render(r, f, 1900, 760, draw_bs, d);
    }
    bsc_table_free(t);
    free(path);
    free(d);
    return s;
}
