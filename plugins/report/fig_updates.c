/* Figure 3: the size of each step (update-norm histograms, median marked),
 * gradient diversity and gradient noise scale over training, from the
 * per-run files of the observers (OUT/runs/<run>/<file>.csv). */
#include "report.h"

#include "batchscope/fsutil.h"

#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_BINS 40
#define LEGEND_PX 360

/* One per-run CSV, loaded for every run that has it. */
typedef struct run_file {
    const rep_run *run;
    char *path;
    bsc_table *t;
} run_file;

static bsc_status load_run_files(const rep *r, const char *name, run_file **out, size_t *found)
{
    *found = 0;
    *out = calloc(r->n_runs ? r->n_runs : 1, sizeof **out);
    if (!*out)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    bsc_status s = BSC_OK;
    for (size_t i = 0; s == BSC_OK && i < r->n_runs; i++) {
        (*out)[i].run = &r->runs[i];
        (*out)[i].path = bsc_strdup_printf("%s/%s", r->runs[i].dir, name);
        if (!(*out)[i].path)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        else if ((s = rep_csv(r, (*out)[i].path, &(*out)[i].t)) == BSC_OK && (*out)[i].t)
            ++*found;
    }
    return s;
}

static void free_run_files(run_file *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++) {
        free(f[i].path);
        bsc_table_free(f[i].t);
    }
    free(f);
}

/* "3.30×10⁻³" with PLplot's superscript escapes. */
static void sci(double v, char *buf, size_t len)
{
    if (!isfinite(v) || v == 0) {
        snprintf(buf, len, "%g", v);
        return;
    }
    int e = (int)floor(log10(fabs(v)));
    if (e >= -2 && e <= 3)
        snprintf(buf, len, "%.3g", v);
    else
        snprintf(buf, len, "%.2f×10#u%d#d", v / pow(10, e), e);
}

/* --------------------------------------------------- update norms */

typedef struct hist_fig {
    size_t n;                     /* panels */
    const rep_run *run[32];
    double lo, hi;                /* log10 range shared by every panel */
    double frac[32][N_BINS];      /* % of the run's steps per bin */
    double median[32];
    size_t steps[32];
} hist_fig;

static void draw_hist(const rep *r, const void *data)
{
    (void)r;
    const hist_fig *d = data;
    double w = (d->hi - d->lo) / N_BINS;
    for (size_t p = 0; p < d->n; p++) {
        double top = 0;
        for (int b = 0; b < N_BINS; b++)
            top = fmax(top, d->frac[p][b]);
        top *= 1.4;  /* headroom for the labels above the bars */
        rep_panel(0, (int)p, 1, (int)d->n, 60);
        rep_axes(d->lo, d->hi, REP_AX_LOG10, 0, top > 0 ? top : 1, REP_AX_LIN,
                 p + 1 == d->n ? "‖w#dt+1#u − w#dt#u‖ per optimizer step (L2 norm, log scale)"
                               : NULL,
                 "steps (%)",
                 p == 0 ? "Distribution of the per-step update norms" : NULL);
        plcol0(d->run[p]->color);
        for (int b = 0; b < N_BINS; b++) {
            if (d->frac[p][b] <= 0)
                continue;
            PLFLT x[4] = {d->lo + b * w, d->lo + b * w, d->lo + (b + 1) * w, d->lo + (b + 1) * w};
            PLFLT y[4] = {0, d->frac[p][b], d->frac[p][b], 0};
            plfill(4, x, y);
        }
        double mx = log10(d->median[p]);
        double lx[2] = {mx, mx}, ly[2] = {0, top};
        rep_line(2, lx, ly, REP_COL_FG, 2, 2.0);
        char label[160], num[48];
        sci(d->median[p], num, sizeof num);
        snprintf(label, sizeof label, " median %s", num);
        rep_text(mx, top * 0.86, 0.0, REP_COL_FG, 0.9, label);
        snprintf(label, sizeof label, "%s  (%zu steps)", d->run[p]->label, d->steps[p]);
        rep_text(d->lo + 0.02 * (d->hi - d->lo), top * 0.86, 0.0, d->run[p]->color, 0.9, label);
    }
}

bsc_status rep_fig_update_norms(rep *r, rep_fig *f)
{
    static const char *const norm_names[] = {BSC_COL_NORM, "update_norm", NULL};
    run_file *rf = NULL;
    size_t found;
    hist_fig *d = calloc(1, sizeof *d);
    double *vals[32] = {0};
    size_t nv[32] = {0};
    if (!d)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    bsc_status s = load_run_files(r, BSC_FILE_UPDATE_NORMS, &rf, &found);
    d->lo = INFINITY;
    d->hi = -INFINITY;
    for (size_t i = 0; s == BSC_OK && i < r->n_runs && d->n < 32; i++) {
        const bsc_table *t = rf[i].t;
        if (!t)
            continue;
        long c = rep_col_any(t, norm_names);
        size_t cn;
        if (c < 0) {
            s = rep_col(t, rf[i].path, BSC_COL_NORM, &cn);
            break;
        }
        long layer = bsc_table_find(t, BSC_COL_LAYER);
        size_t p = d->n, rows = bsc_table_n_rows(t);
        vals[p] = malloc((rows ? rows : 1) * sizeof(double));
        if (!vals[p]) {
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
            break;
        }
        for (size_t j = 0; s == BSC_OK && j < rows; j++) {
            double v;
            if (!rep_row_is_total(t, layer, j))
                continue;
            if ((s = rep_num(t, rf[i].path, j, (size_t)c, &v)) == BSC_OK && v > 0 &&
                isfinite(v)) {
                vals[p][nv[p]++] = v;
                d->lo = fmin(d->lo, log10(v));
                d->hi = fmax(d->hi, log10(v));
            }
        }
        if (s == BSC_OK && nv[p]) {
            d->run[p] = rf[i].run;
            d->n++;
        } else {
            /* no positive, finite norm (a run that diverged at once): the
             * slot is reused by the next run */
            free(vals[p]);
            vals[p] = NULL;
            nv[p] = 0;
        }
    }
    if (s == BSC_OK && d->n == 0)
        s = rep_skip(f, "no run has an %s with positive norms (the update_norms observer "
                     "was not run)", BSC_FILE_UPDATE_NORMS);
    else if (s == BSC_OK) {
        rep_pad(&d->lo, &d->hi, 0.04);
        double w = (d->hi - d->lo) / N_BINS;
        for (size_t p = 0; p < d->n; p++) {
            for (size_t j = 0; j < nv[p]; j++) {
                int b = (int)((log10(vals[p][j]) - d->lo) / w);
                b = b < 0 ? 0 : b >= N_BINS ? N_BINS - 1 : b;
                d->frac[p][b] += 100.0 / (double)nv[p];
            }
            d->steps[p] = nv[p];
            d->median[p] = rep_quantile(vals[p], &nv[p], 0.5);
        }
        s = rep_render(r, f, 1400, d->n > 1 ? 140 + 300 * (int)d->n : 600, draw_hist, d);
    }
    for (size_t p = 0; p < 32; p++)
        free(vals[p]);
    free_run_files(rf, r->n_runs);
    free(d);
    return s;
}

/* -------------------------------- gradient diversity, noise scale */

/* Up to two quantities of a per-run file against the epoch (fractional:
 * step over the run's steps per epoch, so runs of any batch size line up). */
typedef struct trace_fig {
    int n_panels;
    const char *title[2], *ylabel[2];
    int ykind[2];
    double *x[32], *y[2][32], *raw[32];  /* raw: noisy values drawn faintly */
    /* Optional, panel 0 (load_trace reads them when band_col[0] is set and
     * the file has them): an error band, and flags of points whose value
     * is not significant, marked along the top instead of drawn. */
    const char *band_col[2], *flag_col;
    double *lo[32], *hi[32], *flag[32];
    size_t n[32];
    const rep_run *run[32];
    size_t n_runs;
    const char *note, *note2;     /* text under the legend */
} trace_fig;

static void draw_trace(const rep *r, const void *data)
{
    const trace_fig *d = data;
    double x0 = INFINITY, x1 = -INFINITY, a, b;
    for (size_t i = 0; i < d->n_runs; i++) {
        rep_range(d->n[i], d->x[i], &a, &b);
        x0 = fmin(x0, a);
        x1 = fmax(x1, b);
    }
    rep_pad(&x0, &x1, 0.02);
    for (int p = 0; p < d->n_panels; p++) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < d->n_runs; i++) {
            rep_range(d->n[i], d->y[p][i], &a, &b);
            lo = fmin(lo, a);
            hi = fmax(hi, b);
            if (p == 0 && d->raw[i]) {
                rep_range(d->n[i], d->raw[i], &a, &b);
                lo = fmin(lo, a);
                hi = fmax(hi, b);
            }
        }
        rep_pad(&lo, &hi, 0.05);
        if (d->ykind[p] == REP_AX_LOG10 && hi - lo < 1) {
            double mid = 0.5 * (lo + hi);
            lo = mid - 0.5;
            hi = mid + 0.5;
        }
        /* room for the notes under the runs too */
        int px = rep_legend_px(r, LEGEND_PX);
        if (d->note && rep_legend_text_px(d->note) > px)
            px = rep_legend_text_px(d->note);
        if (d->note2 && rep_legend_text_px(d->note2) > px)
            px = rep_legend_text_px(d->note2);
        rep_panel(p, 0, d->n_panels, 1, px);
        rep_axes(x0, x1, REP_AX_LIN, lo, hi, d->ykind[p], "epoch", d->ylabel[p], d->title[p]);
        for (size_t i = 0; p == 0 && i < d->n_runs; i++)
            if (d->lo[i] && d->hi[i])
                rep_band(d->n[i], d->x[i], d->lo[i], d->hi[i], d->run[i]->color);
        for (size_t i = 0; i < d->n_runs; i++) {
            if (p == 0 && d->raw[i])
                rep_points(d->n[i], d->x[i], d->raw[i], d->run[i]->color, 0, 0.5);
            rep_line(d->n[i], d->x[i], d->y[p][i], d->run[i]->color, d->run[i]->style, 3.0);
            /* flagged points: open triangles along the top, one row per run */
            for (size_t j = 0; p == 0 && d->flag[i] && j < d->n[i]; j++)
                if (d->flag[i][j] == 0) {
                    double ty = hi - (0.03 + 0.03 * (double)i) * (hi - lo);
                    rep_points(1, &d->x[i][j], &ty, d->run[i]->color, 5, 0.6);
                }
        }
    }
    rep_legend l = {0};
    rep_legend_runs(r, &l);
    if (d->note) {
        rep_legend_add(&l, "", -1, 1, 0);
        rep_legend_add(&l, d->note, -1, 1, 0);
    }
    if (d->note2)
        rep_legend_add(&l, d->note2, -1, 1, 0);
    rep_legend_draw(&l, 1);
}

static void free_trace(trace_fig *d)
{
    for (size_t i = 0; i < 32; i++) {
        free(d->x[i]);
        free(d->y[0][i]);
        free(d->y[1][i]);
        free(d->raw[i]);
        free(d->lo[i]);
        free(d->hi[i]);
        free(d->flag[i]);
    }
}

/* Loads column names[p] (and raw) of file `name` of every run into d. */
static bsc_status load_trace(const rep *r, const char *name, const char *const *cols,
                             int ncols, const char *raw_col, int ykind, trace_fig *d)
{
    run_file *rf = NULL;
    size_t found;
    bsc_status s = load_run_files(r, name, &rf, &found);
    for (size_t i = 0; s == BSC_OK && i < r->n_runs && d->n_runs < 32; i++) {
        const bsc_table *t = rf[i].t;
        if (!t)
            continue;
        size_t cs, cy[2], cr = 0, rows = bsc_table_n_rows(t), k = d->n_runs;
        if ((s = rep_col(t, rf[i].path, BSC_COL_STEP, &cs)) != BSC_OK)
            break;
        for (int p = 0; s == BSC_OK && p < ncols; p++)
            s = rep_col(t, rf[i].path, cols[p], &cy[p]);
        if (s == BSC_OK && raw_col)
            s = rep_col(t, rf[i].path, raw_col, &cr);
        if (s != BSC_OK)
            break;
        if ((s = rep_column(t, rf[i].path, cs, &d->x[k])) != BSC_OK)
            break;
        for (int p = 0; s == BSC_OK && p < ncols; p++)
            s = rep_column(t, rf[i].path, cy[p], &d->y[p][k]);
        if (s == BSC_OK && raw_col)
            s = rep_column(t, rf[i].path, cr, &d->raw[k]);
        /* the band and the flags where the file has them (older files
         * do not: no band) */
        long cb0 = d->band_col[0] ? bsc_table_find(t, d->band_col[0]) : -1;
        long cb1 = d->band_col[1] ? bsc_table_find(t, d->band_col[1]) : -1;
        long cf = d->flag_col ? bsc_table_find(t, d->flag_col) : -1;
        if (s == BSC_OK && cb0 >= 0 && cb1 >= 0 &&
            (s = rep_column(t, rf[i].path, (size_t)cb0, &d->lo[k])) == BSC_OK)
            s = rep_column(t, rf[i].path, (size_t)cb1, &d->hi[k]);
        if (s == BSC_OK && cf >= 0)
            s = rep_column(t, rf[i].path, (size_t)cf, &d->flag[k]);
        for (size_t j = 0; s == BSC_OK && j < rows; j++) {
            d->x[k][j] = rep_epoch_of_step(rf[i].run, d->x[k][j]);
            for (int p = 0; p < ncols; p++)
                d->y[p][k][j] = rep_tx(d->y[p][k][j], ykind);
            if (raw_col)
                d->raw[k][j] = rep_tx(d->raw[k][j], ykind);
            if (d->lo[k] && d->hi[k]) {
                d->lo[k][j] = rep_tx(d->lo[k][j], ykind);
                d->hi[k][j] = rep_tx(d->hi[k][j], ykind);
            }
            /* a flagged point's own value is no estimate: the marker says so */
            if (d->flag[k] && d->flag[k][j] == 0)
                d->y[0][k][j] = NAN;
        }
        d->n[k] = rows;
        d->run[k] = rf[i].run;
        d->n_runs++;
    }
    free_run_files(rf, r->n_runs);
    return s;
}

bsc_status rep_fig_diversity(rep *r, rep_fig *f)
{
    static const char *const cols[] = {BSC_COL_NORM_RATIO, BSC_COL_DIVERSITY};
    trace_fig d;
    memset(&d, 0, sizeof d);
    d.n_panels = 2;
    d.title[0] = "Norm of the sum over sum of the norms";
    d.ylabel[0] = "ratio ‖Σ#di#u g#di#u‖ / Σ#di#u ‖g#di#u‖";
    d.title[1] = "Gradient diversity";
    d.ylabel[1] = "Σ#di#u ‖g#di#u‖#u2#d / ‖Σ#di#u g#di#u‖#u2#d (log scale)";
    d.ykind[0] = REP_AX_LIN;
    d.ykind[1] = REP_AX_LOG10;
    bsc_status s = load_trace(r, BSC_FILE_GRADIENT_DIVERSITY, cols, 1, NULL, REP_AX_LIN, &d);
    /* the second panel is on a log axis: load it again transformed */
    if (s == BSC_OK && d.n_runs) {
        trace_fig e;
        memset(&e, 0, sizeof e);
        s = load_trace(r, BSC_FILE_GRADIENT_DIVERSITY, cols + 1, 1, NULL, REP_AX_LOG10, &e);
        for (size_t i = 0; s == BSC_OK && i < e.n_runs; i++) {
            d.y[1][i] = e.y[0][i];
            e.y[0][i] = NULL;
        }
        free_trace(&e);
    }
    if (s == BSC_OK && d.n_runs == 0)
        s = rep_skip(f, "no run has a %s (the gradient_diversity observer was not run)",
                     BSC_FILE_GRADIENT_DIVERSITY);
    else if (s == BSC_OK)
        s = rep_render(r, f, 1800, 760, draw_trace, &d);
    free_trace(&d);
    return s;
}

/* The windowed estimate with its 95% interval where the file has it
 * (noise_scale since issue 13), else the EMA of older files. */
bsc_status rep_fig_noise_scale(rep *r, rep_fig *f)
{
    static const char *const ema[] = {BSC_COL_B_SIMPLE_EMA},
                             *const win[] = {BSC_COL_B_SIMPLE_WINDOW};
    trace_fig d;
    memset(&d, 0, sizeof d);
    d.n_panels = 1;
    d.title[0] = "Gradient noise scale B#dsimple#u = tr(Σ) / |G|#u2#d";
    d.ylabel[0] = "B#dsimple#u (examples, log scale)";
    d.ykind[0] = REP_AX_LOG10;
    d.band_col[0] = BSC_COL_B_SIMPLE_LO;
    d.band_col[1] = BSC_COL_B_SIMPLE_HI;
    d.flag_col = BSC_COL_G2_SIGNIFICANT;
    d.note = "band: 95% interval";
    d.note2 = "▽: |G|#u2#d not > 0";
    int windowed = 0;
    for (size_t i = 0; i < r->n_runs && !windowed; i++) {
        char *path = bsc_strdup_printf("%s/" BSC_FILE_NOISE_SCALE, r->runs[i].dir);
        bsc_table *t = NULL;
        if (path && rep_csv(r, path, &t) == BSC_OK && t)
            windowed = bsc_table_find(t, BSC_COL_B_SIMPLE_WINDOW) >= 0;
        bsc_table_free(t);
        free(path);
    }
    if (!windowed) {
        d.note = "dots: raw estimates";
        d.note2 = "gaps: estimate ≤ 0";
    }
    bsc_status s = load_trace(r, BSC_FILE_NOISE_SCALE, windowed ? win : ema, 1,
                              BSC_COL_B_SIMPLE, REP_AX_LOG10, &d);
    if (s == BSC_OK && d.n_runs == 0)
        s = rep_skip(f, "no run has a %s (the noise_scale observer was not run)",
                     BSC_FILE_NOISE_SCALE);
    else if (s == BSC_OK)
        s = rep_render(r, f, 1400, 760, draw_trace, &d);
    free_trace(&d);
    return s;
}
