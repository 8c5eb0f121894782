/* Figure 5b: the Hessian's eigenvalue density at each minimizer, by
 * stochastic Lanczos quadrature (OUT/analyses/hessian_density.csv of the
 * hessian analysis), every run on one axis with a log density scale as
 * PyHessian draws it: the bulk near zero and the few large outliers of a
 * trained network differ by orders of magnitude. A faint band of +-2
 * standard errors over the quadratures shows how far the estimate can be
 * trusted. */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CURVES 32
/* Densities below this are drawn at it (PyHessian adds 1e-7 before its
 * semilogy). */
#define FLOOR 1e-7
#define LEGEND_PX 360

typedef struct curve {
    const rep_run *run;
    char label[96];
    int color, style;
    size_t n, cap;
    double *x, *y, *lo, *hi;   /* log10 of the density and of its band */
} curve;

typedef struct density_fig {
    curve c[MAX_CURVES];
    size_t n;
    int has_fd;
} density_fig;

static void free_fig(density_fig *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->c[i].x);
        free(d->c[i].y);
        free(d->c[i].lo);
        free(d->c[i].hi);
    }
}

static void draw_density(const rep *r, const void *data)
{
    const density_fig *d = data;
    double x0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY, a, b;
    for (size_t i = 0; i < d->n; i++) {
        rep_range(d->c[i].n, d->c[i].x, &a, &b);
        x0 = fmin(x0, a);
        x1 = fmax(x1, b);
        rep_range(d->c[i].n, d->c[i].hi, &a, &b);
        y1 = fmax(y1, b);
    }
    double y0 = log10(FLOOR);
    rep_pad(&x0, &x1, 0.01);
    if (!(y1 > y0))
        y1 = y0 + 1;
    y1 += 0.05 * (y1 - y0);
    rep_panel(0, 0, 1, 1, rep_legend_px(r, LEGEND_PX));
    rep_axes(x0, x1, REP_AX_LIN, y0, y1, REP_AX_LOG10, "eigenvalue λ of the Hessian",
             "density (log scale)", "Hessian eigenvalue density (stochastic Lanczos quadrature)");
    for (size_t i = 0; i < d->n; i++)
        rep_band(d->c[i].n, d->c[i].x, d->c[i].lo, d->c[i].hi, d->c[i].color);
    for (size_t i = 0; i < d->n; i++)
        rep_line(d->c[i].n, d->c[i].x, d->c[i].y, d->c[i].color, d->c[i].style, 2.0);
    rep_legend l = {0};
    for (size_t i = 0; i < d->n; i++)
        rep_legend_add(&l, d->c[i].label, d->c[i].color, d->c[i].style, 0);
    rep_legend_add(&l, "", -1, 1, 0);
    rep_legend_add(&l, "shaded: ± 2 s.e.", -1, 1, 0);
    if (d->has_fd)
        rep_legend_add(&l, "(fd): finite-difference products", -1, 1, 0);
    rep_legend_draw(&l, 1);
}

/* The curve of a run, made on first sight (rows of a run are adjacent in
 * the file, but nothing here relies on it). */
static curve *curve_of(density_fig *d, const rep_run *run, double bs, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->c[i].run == run && (run || !strcmp(d->c[i].label, name)))
            return &d->c[i];
    if (d->n == MAX_CURVES)
        return NULL;
    curve *c = &d->c[d->n++];
    c->run = run;
    c->color = run ? run->color : REP_COL_FG;
    c->style = run ? run->style : 1 + (int)(d->n % 4);
    if (run)
        snprintf(c->label, sizeof c->label, "%s", run->label);
    else if (name)
        snprintf(c->label, sizeof c->label, "%s", name);
    else
        snprintf(c->label, sizeof c->label, "B = %.0f", bs);
    return c;
}

static bsc_status push(curve *c, double x, double y, double se)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        double *p[4] = {c->x, c->y, c->lo, c->hi};
        for (int k = 0; k < 4; k++) {
            double *q = realloc(p[k], cap * sizeof *q);
            if (!q)
                return bsc_fail(BSC_ERR_NOMEM, "out of memory");
            p[k] = q;
        }
        c->x = p[0], c->y = p[1], c->lo = p[2], c->hi = p[3];
        c->cap = cap;
    }
    double s = isfinite(se) ? se : 0;
    c->x[c->n] = x;
    c->y[c->n] = rep_tx(fmax(y, FLOOR), REP_AX_LOG10);
    c->lo[c->n] = rep_tx(fmax(y - 2 * s, FLOOR), REP_AX_LOG10);
    c->hi[c->n] = rep_tx(fmax(y + 2 * s, FLOOR), REP_AX_LOG10);
    c->n++;
    return BSC_OK;
}

bsc_status rep_fig_density(rep *r, rep_fig *f)
{
    char *path = rep_path(r, BSC_IN_ANALYSES(BSC_FILE_HESSIAN_DENSITY));
    bsc_table *t = NULL;
    density_fig *d = calloc(1, sizeof *d);
    bsc_status s = path && d ? rep_csv(r, path, &t) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t cb, cl, cd;
    if (s == BSC_OK && !t)
        s = rep_skip(f, "no %s (the hessian analysis was not run, or with density_probes: 0)",
                     BSC_IN_ANALYSES(BSC_FILE_HESSIAN_DENSITY));
    else if (s == BSC_OK && (s = rep_col(t, path, BSC_COL_BATCH_SIZE, &cb)) == BSC_OK &&
             (s = rep_col(t, path, BSC_COL_LAMBDA, &cl)) == BSC_OK &&
             (s = rep_col(t, path, BSC_COL_DENSITY, &cd)) == BSC_OK) {
        long crun = bsc_table_find(t, BSC_COL_RUN), cse = bsc_table_find(t, BSC_COL_STD_ERR);
        long cm = bsc_table_find(t, BSC_COL_METHOD);
        for (size_t i = 0; s == BSC_OK && i < bsc_table_n_rows(t); i++) {
            double bs, x, y, se = NAN;
            if ((s = rep_num(t, path, i, cb, &bs)) != BSC_OK ||
                (s = rep_num(t, path, i, cl, &x)) != BSC_OK ||
                (s = rep_num(t, path, i, cd, &y)) != BSC_OK ||
                (cse >= 0 && (s = rep_num(t, path, i, (size_t)cse, &se)) != BSC_OK))
                break;
            const rep_run *run = rep_row_run(r, t, crun, i, bs);
            const char *name = crun >= 0 ? bsc_table_get_str(t, i, (size_t)crun) : NULL;
            curve *c = curve_of(d, run, bs, name);
            if (!c)
                continue;
            const char *m = cm >= 0 ? bsc_table_get_str(t, i, (size_t)cm) : NULL;
            if (m && !strcmp(m, BSC_METHOD_FD) && c->n == 0) {
                size_t len = strlen(c->label);
                snprintf(c->label + len, sizeof c->label - len, " (fd)");
                d->has_fd = 1;
            }
            s = push(c, x, y, se);
        }
        if (s == BSC_OK && d->n == 0)
            s = rep_skip(f, "%s has no rows", BSC_IN_ANALYSES(BSC_FILE_HESSIAN_DENSITY));
        else if (s == BSC_OK)
            s = rep_render(r, f, 1700, 820, draw_density, d);
    }
    if (d)
        free_fig(d);
    bsc_table_free(t);
    free(path);
    free(d);
    return s;
}
