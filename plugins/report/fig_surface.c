/* Figure 6: filter-normalized loss surfaces around each minimizer
 * (OUT/analyses/surface_<run>.csv: x, y, loss, accuracy; and the 1D
 * surface1d_<run>.csv: x, loss, accuracy; <run> is bs<B> for a batch_sizes
 * run) as filled contours on one shared color scale, and as 1D cuts
 * through the minimizer. */
#include "report.h"

#include "batchscope/fsutil.h"

#include <dirent.h>
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SURF 16
#define N_SHADES 24
#define SIDE_PX 560
#define BAR_PX 300

typedef struct surf {
    const rep_run *run;     /* NULL: its run is not under OUT/runs */
    long bs;
    char label[112];        /* panel title and legend text */
    size_t nx, ny;
    double *xs, *ys;        /* grid coordinates, increasing */
    double *loss;           /* [i * ny + j] for (xs[i], ys[j]); NaN: not drawable */
    size_t n_bad;           /* points whose loss is not a positive number */
    char file[128];         /* its file name, for notes */
    PLFLT **zlog, **zlin;   /* row pointers into the two copies PLplot reads */
    double *store;
} surf;

typedef struct surf_set {
    surf s[MAX_SURF];
    size_t n;               /* all surfaces */
    size_t n2d;             /* 2D ones come first */
    double zmin, zmax;      /* loss range over the 2D surfaces */
    int cols, rows;
    char left_out[512];     /* files with no drawable point, for the note */
    char saturated[512];    /* files with some */
} surf_set;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorted distinct values of v (in place); returns their count. */
static size_t distinct(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || v[i] != v[m - 1])
            v[m++] = v[i];
    return m;
}

static size_t index_of(const double *v, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bsc_status load_surface(const rep *r, const char *path, int two_d, surf *sf)
{
    bsc_table *t = NULL;
    double *x = NULL, *y = NULL, *z = NULL;
    unsigned char *seen = NULL;
    size_t cx, cy = 0, cz;
    const char *base = strrchr(path, '/');
    snprintf(sf->file, sizeof sf->file, "%s", base ? base + 1 : path);
    bsc_status s = rep_csv(r, path, &t);
    if (s != BSC_OK)
        return s;
    size_t n = bsc_table_n_rows(t);
    if ((s = rep_col(t, path, BSC_COL_X, &cx)) != BSC_OK ||
        (two_d && (s = rep_col(t, path, BSC_COL_Y, &cy)) != BSC_OK) ||
        (s = rep_col(t, path, BSC_COL_LOSS, &cz)) != BSC_OK ||
        (s = rep_column(t, path, cx, &x)) != BSC_OK ||
        (two_d && (s = rep_column(t, path, cy, &y)) != BSC_OK) ||
        (s = rep_column(t, path, cz, &z)) != BSC_OK)
        goto cleanup;
    if (n == 0) {
        s = bsc_fail(BSC_ERR_DATA, "%s:2: no grid points", path);
        goto cleanup;
    }
    sf->xs = malloc(n * sizeof(double));
    sf->ys = malloc(n * sizeof(double));
    if (!sf->xs || !sf->ys) {
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    memcpy(sf->xs, x, n * sizeof(double));
    sf->nx = distinct(sf->xs, n);
    if (two_d) {
        memcpy(sf->ys, y, n * sizeof(double));
        sf->ny = distinct(sf->ys, n);
    } else {
        sf->ys[0] = 0;
        sf->ny = 1;
    }
    if (sf->nx * sf->ny != n) {
        s = bsc_fail(BSC_ERR_DATA, "%s: %zu points do not fill a %zu x %zu grid (was the "
                     "surface interrupted?)", path, n, sf->nx, sf->ny);
        goto cleanup;
    }
    sf->loss = malloc(n * sizeof(double));
    sf->store = malloc(2 * n * sizeof(double));
    sf->zlog = malloc(sf->nx * sizeof(PLFLT *));
    sf->zlin = malloc(sf->nx * sizeof(PLFLT *));
    if (!sf->loss || !sf->store || !sf->zlog || !sf->zlin) {
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    seen = calloc(n, 1);
    if (!seen) {
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = index_of(sf->xs, sf->nx, x[k]), j = two_d ? index_of(sf->ys, sf->ny, y[k]) : 0;
        if (seen[i * sf->ny + j]++) {
            s = bsc_fail(BSC_ERR_DATA, "%s:%zu: grid point (%g, %g) appears twice", path, k + 2,
                         x[k], two_d ? y[k] : 0.0);
            goto cleanup;
        }
        /* A diverged minimizer, or a grid far out, can give NaN or inf:
         * such points are drawn at the top of the scale, and a surface with
         * none left is left out -- never a failed report. */
        if (!(z[k] > 0) || !isfinite(z[k]))
            sf->n_bad++;
        sf->loss[i * sf->ny + j] = z[k] > 0 && isfinite(z[k]) ? z[k] : NAN;
    }
    for (size_t i = 0; i < sf->nx; i++) {
        sf->zlin[i] = sf->store + i * sf->ny;
        sf->zlog[i] = sf->store + n + i * sf->ny;
    }
cleanup:
    free(x);
    free(y);
    free(z);
    free(seen);
    bsc_table_free(t);
    return s;
}

static void free_surfaces(surf_set *d)
{
    for (size_t k = 0; k < d->n; k++) {
        free(d->s[k].xs);
        free(d->s[k].ys);
        free(d->s[k].loss);
        free(d->s[k].store);
        free(d->s[k].zlog);
        free(d->s[k].zlin);
    }
}

static int cmp_surf(const void *a, const void *b)
{
    const surf *x = a, *y = b;
    int dx = x->ny == 1, dy = y->ny == 1;
    if (dx != dy)
        return dx - dy;
    if (x->bs != y->bs)
        return (x->bs > y->bs) - (x->bs < y->bs);
    /* the report's order of runs (batch size, then name) */
    return strcmp(x->run ? x->run->name : "", y->run ? y->run->name : "");
}

/* The run of a surface file name <prefix><run>.csv: by the names of the
 * runs under OUT/runs, else (a run since removed) bs<B>. */
static int surface_run(const rep *r, const char *file, const char *prefix, surf *sf)
{
    size_t lp = strlen(prefix), len = strlen(file);
    if (len <= lp + 4 || strncmp(file, prefix, lp) != 0 || strcmp(file + len - 4, ".csv") != 0)
        return 0;
    for (size_t i = 0; i < r->n_runs; i++) {
        const rep_run *run = &r->runs[i];
        if (strlen(run->name) == len - lp - 4 && !strncmp(file + lp, run->name, len - lp - 4)) {
            sf->run = run;
            sf->bs = run->bs;
            snprintf(sf->label, sizeof sf->label, "%s", run->label);
            return 1;
        }
    }
    char tail[8];
    long bs;
    if (strncmp(file + lp, "bs", 2) != 0 ||
        sscanf(file + lp + 2, "%ld.%7s", &bs, tail) != 2 || strcmp(tail, "csv") != 0)
        return 0;
    sf->run = rep_find_run(r, bs);
    sf->bs = bs;
    snprintf(sf->label, sizeof sf->label, "B = %ld", bs);
    return 1;
}

/* Every surface_<run>.csv and surface1d_<run>.csv of OUT/analyses. */
static bsc_status load_surfaces(const rep *r, surf_set *d)
{
    char *dir = rep_path(r, BSC_ANALYSES_DIR);
    if (!dir)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    DIR *dh = opendir(dir);
    bsc_status s = BSC_OK;
    struct dirent *e;
    while (dh && s == BSC_OK && (e = readdir(dh)) && d->n < MAX_SURF) {
        surf *sf = &d->s[d->n];
        int two_d;
        memset(sf, 0, sizeof *sf);
        if (surface_run(r, e->d_name, BSC_PREFIX_SURFACE, sf))
            two_d = 1;
        else if (surface_run(r, e->d_name, BSC_PREFIX_SURFACE_1D, sf))
            two_d = 0;
        else
            continue;
        char *path = bsc_strdup_printf("%s/%s", dir, e->d_name);
        d->n++;
        s = path ? load_surface(r, path, two_d, sf) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
        free(path);
    }
    if (dh)
        closedir(dh);
    free(dir);
    if (s != BSC_OK)
        return s;
    /* A surface without one drawable point is left out (and named). */
    for (size_t k = 0; k < d->n;) {
        surf *sf = &d->s[k];
        if (sf->n_bad < sf->nx * sf->ny) {
            k++;
            continue;
        }
        size_t len = strlen(d->left_out);
        snprintf(d->left_out + len, sizeof d->left_out - len, "%s%s", len ? ", " : "",
                 sf->file);
        free(sf->xs);
        free(sf->ys);
        free(sf->loss);
        free(sf->store);
        free(sf->zlog);
        free(sf->zlin);
        d->s[k] = d->s[--d->n];
    }
    qsort(d->s, d->n, sizeof *d->s, cmp_surf);
    d->zmin = INFINITY;
    d->zmax = -INFINITY;
    for (size_t k = 0; k < d->n; k++) {
        if (d->s[k].ny > 1)
            d->n2d = k + 1;
        for (size_t i = 0; d->s[k].ny > 1 && i < d->s[k].nx * d->s[k].ny; i++) {
            d->zmin = fmin(d->zmin, d->s[k].loss[i]);
            d->zmax = fmax(d->zmax, d->s[k].loss[i]);
        }
    }
    /* What PLplot reads: bad points at the top of the scale (the largest
     * drawable loss of the surface or the shared scale). */
    for (size_t k = 0; k < d->n; k++) {
        surf *sf = &d->s[k];
        double top = sf->ny > 1 ? d->zmax : -INFINITY;
        for (size_t i = 0; sf->ny == 1 && i < sf->nx; i++)
            top = fmax(top, sf->loss[i]);
        for (size_t i = 0; i < sf->nx; i++)
            for (size_t j = 0; j < sf->ny; j++) {
                double v = sf->loss[i * sf->ny + j];
                sf->zlin[i][j] = isnan(v) ? top : v;
                sf->zlog[i][j] = log10(isnan(v) ? top : v);
            }
        if (sf->n_bad) {
            size_t len = strlen(d->saturated);
            snprintf(d->saturated + len, sizeof d->saturated - len, "%s%s (%zu of %zu points)",
                     len ? ", " : "", sf->file, sf->n_bad, sf->nx * sf->ny);
        }
    }
    return BSC_OK;
}

/* The figure's note on surfaces left out or drawn in part. */
static bsc_status surface_note(rep_fig *f, const surf_set *d)
{
    if (!d->left_out[0] && !d->saturated[0])
        return BSC_OK;
    return rep_skip(f, "%s%s%s%s%s", d->left_out[0] ? "left out, no finite loss in: " : "",
                    d->left_out, d->left_out[0] && d->saturated[0] ? "; " : "",
                    d->saturated[0] ? "non-finite losses drawn at the top of the scale in: "
                                    : "",
                    d->saturated);
}

/* ------------------------------------------------------- contours */

static void grid_xy(PLFLT i, PLFLT j, PLFLT *tx, PLFLT *ty, PLPointer data)
{
    const surf *sf = data;
    /* linear in the index: the grid is evenly spaced */
    *tx = sf->xs[0] + i * (sf->nx > 1 ? (sf->xs[sf->nx - 1] - sf->xs[0]) / (double)(sf->nx - 1) : 0);
    *ty = sf->ys[0] + j * (sf->ny > 1 ? (sf->ys[sf->ny - 1] - sf->ys[0]) / (double)(sf->ny - 1) : 0);
}

/* Contour values on a 1-2-5 ladder (finer when the range is narrow). */
static size_t nice_levels(double lo, double hi, double *out, size_t max)
{
    static const double fine[] = {1, 1.5, 2, 3, 5, 7};
    static const double coarse[] = {1, 2, 5};
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        const double *m = pass ? fine : coarse;
        size_t nm = pass ? 6 : 3;
        n = 0;
        for (int e = (int)floor(log10(lo)) - 1; e <= (int)ceil(log10(hi)) && n < max; e++)
            for (size_t k = 0; k < nm && n < max; k++) {
                double v = m[k] * pow(10, e);
                if (v > lo * 1.02 && v < hi * 0.98)
                    out[n++] = v;
            }
        if (n >= 4)
            break;
    }
    return n;
}

static void set_viridis(void)
{
    PLFLT pos[5] = {0, 0.25, 0.5, 0.75, 1};
    PLFLT rr[5] = {0x44 / 255.0, 0x3B / 255.0, 0x21 / 255.0, 0x5E / 255.0, 0xFD / 255.0};
    PLFLT gg[5] = {0x01 / 255.0, 0x52 / 255.0, 0x91 / 255.0, 0xC9 / 255.0, 0xE7 / 255.0};
    PLFLT bb[5] = {0x54 / 255.0, 0x8B / 255.0, 0x8C / 255.0, 0x62 / 255.0, 0x25 / 255.0};
    plscmap1n(256);
    plscmap1l(1, 5, pos, rr, gg, bb, NULL);
}

static void draw_surfaces(const rep *r, const void *data)
{
    (void)r;
    const surf_set *d = data;
    double l0 = log10(d->zmin), l1 = log10(d->zmax);
    if (l1 - l0 < 1e-9)
        l1 = l0 + 1e-3;
    PLFLT shades[N_SHADES + 1];
    for (int k = 0; k <= N_SHADES; k++)
        shades[k] = l0 + (l1 - l0) * k / N_SHADES;
    double lines[32];
    size_t n_lines = nice_levels(d->zmin, d->zmax, lines, 32);
    set_viridis();
    for (size_t k = 0; k < d->n2d; k++) {
        const surf *sf = &d->s[k];
        int col = (int)k % d->cols, row = (int)k / d->cols;
        rep_panel(col, row, d->cols, d->rows, BAR_PX);
        rep_axes(sf->xs[0], sf->xs[sf->nx - 1], REP_AX_LIN, sf->ys[0], sf->ys[sf->ny - 1],
                 REP_AX_LIN, "direction 1 (filter-normalized)",
                 "direction 2 (filter-normalized)", NULL);
        plshades((const PLFLT *const *)sf->zlog, (PLINT)sf->nx, (PLINT)sf->ny, NULL,
                 sf->xs[0], sf->xs[sf->nx - 1], sf->ys[0], sf->ys[sf->ny - 1], shades,
                 N_SHADES + 1, 0, 0, 0, plfill, 1, NULL, NULL);
        /* Labelled contour lines in true loss units; white over the dark
         * low-loss colors, black over the light high ones. */
        pl_setcontlabelformat(3, 2);
        pl_setcontlabelparam(0.006, 0.7, 0.4, 1);
        for (size_t c = 0; c < n_lines; c++) {
            double pos = (log10(lines[c]) - l0) / (l1 - l0);
            plcol0(pos < 0.6 ? REP_COL_BG : REP_COL_FG);
            plwidth(1.2);
            PLFLT lev = lines[c];
            plcont((const PLFLT *const *)sf->zlin, (PLINT)sf->nx, (PLINT)sf->ny, 1,
                   (PLINT)sf->nx, 1, (PLINT)sf->ny, &lev, 1, grid_xy, (PLPointer)sf);
        }
        pl_setcontlabelparam(0.006, 0.7, 0.4, 0);
        plwidth(1.0);
        /* the minimizer itself */
        PLFLT ox = 0, oy = 0;
        plcol0(REP_COL_BG);
        plschr(0, 1.4);
        plstring(1, &ox, &oy, "+");
        plschr(0, 1.0);
        /* frame again over the shading, title in the run's color */
        plcol0(REP_COL_FG);
        plwidth(1.5);
        plbox("bc", 0, 0, "bc", 0, 0);
        plwidth(1.0);
        plcol0(sf->run ? sf->run->color : REP_COL_FG);
        plschr(0, 1.15);
        plmtex("t", 0.8, 0.5, 0.5, sf->label);
        plschr(0, 1.0);
        plcol0(REP_COL_FG);
        if (col == d->cols - 1 && row == 0) {
            PLFLT w, h;
            PLINT n_values = N_SHADES + 1;
            const PLFLT *values[1] = {shades};
            const char *axis_opts[1] = {"bcvtmo"};
            PLFLT ticks[1] = {(l1 - l0) > 1.5 ? 0.5 : (l1 - l0) > 0.6 ? 0.2 : 0.1};
            PLINT sub[1] = {0};
            PLINT label_opts[1] = {PL_COLORBAR_LABEL_TOP};
            const char *labels[1] = {"loss (nats)"};
            rep_label_pow10(1);
            plcolorbar(&w, &h, PL_COLORBAR_SHADE | PL_COLORBAR_LABEL_TOP,
                       PL_POSITION_RIGHT | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT, 0.05, 0,
                       0.06, 0.85, REP_COL_BG, REP_COL_FG, 1, 0, 0, 0, 0, 1, label_opts,
                       labels, 1, axis_opts, ticks, sub, &n_values, values);
            rep_label_pow10(0);
        }
    }
}

bsc_status rep_fig_surfaces(rep *r, rep_fig *f)
{
    surf_set *d = calloc(1, sizeof *d);
    if (!d)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    bsc_status s = load_surfaces(r, d);
    if (s == BSC_OK && d->n2d == 0 && d->left_out[0] && !d->n)
        s = rep_skip(f, "every surface was left out, no finite loss in: %s", d->left_out);
    else if (s == BSC_OK && d->n2d == 0)
        s = rep_skip(f, d->n ? "only 1D surfaces (" BSC_PREFIX_SURFACE_1D "*.csv): see the cuts "
                               "below"
                             : "no " BSC_IN_ANALYSES(BSC_PREFIX_SURFACE) "bs*.csv (the surface "
                               "analysis was not run)");
    else if (s == BSC_OK && (s = surface_note(f, d)) == BSC_OK) {
        d->cols = d->n2d < 3 ? (int)d->n2d : 3;
        d->rows = (int)((d->n2d + 2) / 3);
        int w = 140 + d->cols * SIDE_PX + (d->cols - 1) * 170 + BAR_PX;
        int h = 80 + 110 + d->rows * SIDE_PX + (d->rows - 1) * 130;
        s = rep_render(r, f, w, h, draw_surfaces, d);
    }
    free_surfaces(d);
    free(d);
    return s;
}

/* ---------------------------------------------------------- 1D cuts */

typedef struct cut_fig {
    int n_panels;
    size_t n;
    const rep_run *run[MAX_SURF];
    const char *label[MAX_SURF];
    size_t len[2][MAX_SURF];
    double *x[2][MAX_SURF], *y[2][MAX_SURF];
    int log_y;
} cut_fig;

static void draw_cuts(const rep *r, const void *data)
{
    const cut_fig *d = data;
    static const char *const titles[2] = {"Cut along direction 1 (direction 2 = 0)",
                                          "Cut along direction 2 (direction 1 = 0)"};
    static const char *const xl[2] = {"direction 1 (filter-normalized)",
                                      "direction 2 (filter-normalized)"};
    /* A run may have both a 1D surface and a 2D one: their first directions
     * come from the same random stream, so in the first panel the 2D
     * surface's cut is left out where the 1D surface is drawn. One legend
     * entry per run, in the report's run order. */
    int skip[MAX_SURF] = {0};
    for (size_t k = 0; k < d->n; k++)
        for (size_t j = 0; j < d->n; j++)
            if (j != k && d->run[k] && d->run[j] == d->run[k] && d->n_panels == 2 &&
                d->len[1][k] && !d->len[1][j])
                skip[k] = 1;
    rep_legend l = {0};
    for (size_t i = 0; i < r->n_runs; i++)
        for (size_t k = 0; k < d->n; k++)
            if (d->run[k] == &r->runs[i]) {
                rep_legend_add(&l, d->label[k], r->runs[i].color, r->runs[i].style, 0);
                break;
            }
    for (size_t k = 0; k < d->n; k++)
        if (!d->run[k])
            rep_legend_add(&l, d->label[k], REP_COL_FG, 1, 0);
    for (int p = 0; p < d->n_panels; p++) {
        double x0 = INFINITY, x1 = -INFINITY, lo = INFINITY, hi = -INFINITY, a, b;
        for (size_t k = 0; k < d->n; k++) {
            rep_range(d->len[p][k], d->x[p][k], &a, &b);
            x0 = fmin(x0, a);
            x1 = fmax(x1, b);
            rep_range(d->len[p][k], d->y[p][k], &a, &b);
            lo = fmin(lo, a);
            hi = fmax(hi, b);
        }
        rep_pad(&lo, &hi, 0.05);
        rep_panel(p, 0, d->n_panels, 1, rep_legend_px(r, 250));
        rep_axes(x0, x1, REP_AX_LIN, lo, hi, d->log_y ? REP_AX_LOG10 : REP_AX_LIN, xl[p],
                 d->log_y ? "training loss (nats, log scale)" : "training loss (nats)",
                 titles[p]);
        for (size_t k = 0; k < d->n; k++)
            if (!(p == 0 && skip[k]))
                rep_line(d->len[p][k], d->x[p][k], d->y[p][k],
                         d->run[k] ? d->run[k]->color : REP_COL_FG,
                         d->run[k] ? d->run[k]->style : 1, 2.5);
    }
    rep_legend_draw(&l, 1);
}

bsc_status rep_fig_surface_cuts(rep *r, rep_fig *f)
{
    surf_set *d = calloc(1, sizeof *d);
    cut_fig *c = calloc(1, sizeof *c);
    if (!d || !c) {
        free(d);
        free(c);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    bsc_status s = load_surfaces(r, d);
    double lo = INFINITY, hi = -INFINITY;
    c->n_panels = d->n2d ? 2 : 1;
    for (size_t k = 0; s == BSC_OK && k < d->n; k++) {
        const surf *sf = &d->s[k];
        /* the grid line nearest to the minimizer (coordinate 0) */
        size_t i0 = index_of(sf->xs, sf->nx, 0), j0 = index_of(sf->ys, sf->ny, 0);
        if (i0 >= sf->nx || (i0 > 0 && fabs(sf->xs[i0 - 1]) < fabs(sf->xs[i0])))
            i0 = i0 > 0 ? i0 - 1 : 0;
        if (j0 >= sf->ny || (j0 > 0 && fabs(sf->ys[j0 - 1]) < fabs(sf->ys[j0])))
            j0 = j0 > 0 ? j0 - 1 : 0;
        c->run[c->n] = sf->run;
        c->label[c->n] = sf->label;
        for (int p = 0; p < (sf->ny > 1 ? 2 : 1); p++) {
            size_t len = p ? sf->ny : sf->nx;
            c->x[p][c->n] = malloc(len * sizeof(double));
            c->y[p][c->n] = malloc(len * sizeof(double));
            if (!c->x[p][c->n] || !c->y[p][c->n]) {
                s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
                break;
            }
            for (size_t m = 0; m < len; m++) {
                double v = p ? sf->loss[i0 * sf->ny + m] : sf->loss[m * sf->ny + j0];
                c->x[p][c->n][m] = p ? sf->ys[m] : sf->xs[m];
                c->y[p][c->n][m] = v;
                lo = fmin(lo, v);
                hi = fmax(hi, v);
            }
            c->len[p][c->n] = len;
        }
        c->n++;
    }
    if (s == BSC_OK && c->n == 0 && d->left_out[0])
        s = rep_skip(f, "every surface was left out, no finite loss in: %s", d->left_out);
    else if (s == BSC_OK && c->n == 0)
        s = rep_skip(f, "no %sbs*.csv or %sbs*.csv (the surface analysis was not run)",
                     BSC_IN_ANALYSES(BSC_PREFIX_SURFACE), BSC_PREFIX_SURFACE_1D);
    else if (s == BSC_OK && (s = surface_note(f, d)) == BSC_OK) {
        c->log_y = hi / lo > 20;
        for (int p = 0; c->log_y && p < 2; p++)
            for (size_t k = 0; k < c->n; k++)
                for (size_t m = 0; m < c->len[p][k]; m++)
                    c->y[p][k][m] = log10(c->y[p][k][m]);
        s = rep_render(r, f, c->n_panels == 2 ? 1800 : 1300, 760, draw_cuts, c);
    }
    for (int p = 0; p < 2; p++)
        for (size_t k = 0; k < MAX_SURF; k++) {
            free(c->x[p][k]);
            free(c->y[p][k]);
        }
    free_surfaces(d);
    free(d);
    free(c);
    return s;
}
