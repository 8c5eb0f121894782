/* The report's inputs: the runs under OUT/runs and checked CSV access. */
#include "report.h"

#include "batchscope/fsutil.h"
#include "batchscope/runs.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *rep_path(const rep *r, const char *rel)
{
    return bsc_strdup_printf("%s/%s", r->out, rel);
}

bsc_status rep_skip(rep_fig *f, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(f->note);
    f->note = strdup(buf);
    return f->note ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
}

/* ----------------------------------------------------------------- CSV */

bsc_status rep_csv(const rep *r, const char *path, bsc_table **t)
{
    *t = NULL;
    if (!bsc_path_exists(path))
        return BSC_OK;
    bsc_status s = rep_note_read(r, path);
    if (s != BSC_OK)
        return s;
    /* bsc_table_read_csv catches a short last row; a cut that falls exactly
     * between fields of the last row, or inside its last number, is only
     * visible as the missing end of line. */
    char *text = NULL;
    size_t len = 0;
    if ((s = bsc_read_file(path, &text, &len)) != BSC_OK)
        return s;
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    int cut = len > 0 && text[len - 1] != '\n';
    free(text);
    if (len == 0)
        return bsc_fail(BSC_ERR_DATA, "%s:1: empty file (no CSV header)", path);
    if (cut)
        return bsc_fail(BSC_ERR_DATA, "%s:%d: truncated: the last line has no end of line "
                        "(was the file cut short?)", path, lines + 1);
    return bsc_table_read_csv(path, t);
}

bsc_status rep_col(const bsc_table *t, const char *path, const char *name, size_t *col)
{
    long c = bsc_table_find(t, name);
    if (c >= 0) {
        *col = (size_t)c;
        return BSC_OK;
    }
    char have[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < bsc_table_n_cols(t) && used < sizeof have - 1; i++)
        used += (size_t)snprintf(have + used, sizeof have - used, "%s%s", i ? ", " : "",
                                 bsc_table_col_name(t, i));
    return bsc_fail(BSC_ERR_DATA, "%s:1: missing column '%s' (the header has: %s)", path, name,
                    have);
}

long rep_col_any(const bsc_table *t, const char *const *names)
{
    for (; *names; names++) {
        long c = bsc_table_find(t, *names);
        if (c >= 0)
            return c;
    }
    return -1;
}

bsc_status rep_num(const bsc_table *t, const char *path, size_t row, size_t col, double *v)
{
    const char *str = bsc_table_get_str(t, row, col);
    if (str)
        return bsc_fail(BSC_ERR_DATA, "%s:%zu: column '%s': '%s' is not a number", path, row + 2,
                        bsc_table_col_name(t, col), str);
    *v = bsc_table_get(t, row, col);
    return BSC_OK;
}

bsc_status rep_column(const bsc_table *t, const char *path, size_t col, double **v)
{
    size_t n = bsc_table_n_rows(t);
    *v = malloc((n ? n : 1) * sizeof **v);
    if (!*v)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        bsc_status s = rep_num(t, path, i, col, &(*v)[i]);
        if (s != BSC_OK) {
            free(*v);
            *v = NULL;
            return s;
        }
    }
    return BSC_OK;
}

int rep_row_ok(const bsc_table *t, size_t row)
{
    long c = bsc_table_find(t, BSC_COL_STATUS);
    const char *v = c >= 0 ? bsc_table_get_str(t, row, (size_t)c) : NULL;
    /* summary.csv's status is the run's ("completed", "diverged"): only
     * the analyses' verdicts leave a row out. */
    return !v || (strncmp(v, BSC_ROW_SKIPPED, strlen(BSC_ROW_SKIPPED)) != 0 &&
                  strncmp(v, BSC_ROW_FAILED, strlen(BSC_ROW_FAILED)) != 0);
}

int rep_row_is_total(const bsc_table *t, long layer_col, size_t row)
{
    if (layer_col < 0)
        return 1;
    const char *s = bsc_table_get_str(t, row, (size_t)layer_col);
    if (s)
        return !strcmp(s, "total") || !strcmp(s, "all");
    /* A numeric layer index is one layer; an empty cell is the total. */
    return isnan(bsc_table_get(t, row, (size_t)layer_col));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double rep_quantile(double *v, size_t *n, double q)
{
    size_t m = 0;
    for (size_t i = 0; i < *n; i++)
        if (isfinite(v[i]))
            v[m++] = v[i];
    *n = m;
    if (m == 0)
        return NAN;
    qsort(v, m, sizeof *v, cmp_double);
    /* numpy's default: linear between the order statistics around q(m-1) */
    double pos = q * (double)(m - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < m ? lo + 1 : lo;
    return v[lo] + (pos - (double)lo) * (v[hi] - v[lo]);
}

/* ---------------------------------------------------------------- runs */

/* Steps per epoch: the step count at the end of epoch 1 (metrics.csv). */
static double steps_per_epoch(const rep_run *run)
{
    const bsc_table *t = run->metrics;
    long ce = bsc_table_find(t, BSC_COL_EPOCH), cs = bsc_table_find(t, BSC_COL_STEP);
    if (ce < 0 || cs < 0)
        return NAN;
    for (size_t i = 0; i < bsc_table_n_rows(t); i++) {
        double e = bsc_table_get(t, i, (size_t)ce), st = bsc_table_get(t, i, (size_t)cs);
        if (e >= 1 && st > 0)
            return st / e;
    }
    return NAN;
}

double rep_epoch_of_step(const rep_run *run, double step)
{
    return isfinite(run->steps_per_epoch) ? step / run->steps_per_epoch : step;
}

/* Each run's label, and its place among the runs of its batch size. */
static void place_runs(rep *r)
{
    /* Spacing of runs at one batch size on a log2 axis whose batch sizes
     * are a unit apart: a marker apart, and the widest group still clear
     * of the neighbouring batch sizes. */
    size_t widest = 1;
    for (size_t i = 0, j; i < r->n_runs; i = j) {
        for (j = i; j < r->n_runs && r->runs[j].bs == r->runs[i].bs;)
            j++;
        if (j - i > widest)
            widest = j - i;
    }
    const double step = widest > 1 ? fmin(0.25, 0.6 / (double)(widest - 1)) : 0;
    for (size_t i = 0; i < r->n_runs;) {
        size_t j = i, main = i;
        while (j < r->n_runs && r->runs[j].bs == r->runs[i].bs)
            j++;
        for (size_t k = i; k < j; k++) {
            rep_run *run = &r->runs[k];
            run->is_default = bsc_run_name_is_default(run->name, run->bs);
            if (run->is_default)
                snprintf(run->label, sizeof run->label, "B = %ld", run->bs);
            else
                snprintf(run->label, sizeof run->label, "%s (B = %ld)", run->name, run->bs);
            r->named |= !run->is_default;
            run->xoff = ((double)(k - i) - 0.5 * (double)(j - i - 1)) * step;
            run->shared = j - i > 1;
            if (run->is_default)
                main = k;
        }
        r->runs[main].main = 1;
        i = j;
    }
}

bsc_status rep_load_runs(rep *r)
{
    bsc_run_result **found = NULL;
    size_t n = 0;
    bsc_status s = bsc_runs_scan(r->out, &found, &n);
    if (s != BSC_OK)
        return s;
    if (n && !(r->runs = calloc(n, sizeof *r->runs))) {
        bsc_runs_free(found, n);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    /* The scan's order (batch size, then name) is the report's: colors,
     * legends, table rows. */
    for (size_t i = 0; i < n; i++) {
        rep_run *run = &r->runs[i];
        run->bs = (long)found[i]->batch_size;
        run->name = (char *)found[i]->name;
        run->dir = (char *)found[i]->dir;
        found[i]->name = found[i]->dir = NULL;
        snprintf(run->status, sizeof run->status, "%s", found[i]->status);
        run->steps_per_epoch = NAN;
        r->n_runs++;
        if (!(run->metrics_path = bsc_strdup_printf("%s/" BSC_FILE_METRICS, run->dir)))
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    bsc_runs_free(found, n);
    if (s != BSC_OK)
        return s;
    place_runs(r);
    for (size_t i = 0; i < r->n_runs; i++) {
        rep_run *run = &r->runs[i];
        /* The color follows the run's rank in the study, so every figure
         * of one report agrees; past the palette, the line style tells
         * repeated colors apart. */
        run->color = REP_COL_BS0 + (int)(i % REP_N_BS_COLORS);
        run->style = 1 + (int)(i / REP_N_BS_COLORS) % 8;
        /* bsc_runs_scan read the run's record: its name and batch size
         * label every figure */
        char *record = bsc_strdup_printf("%s/" BSC_FILE_RUN_RECORD, run->dir);
        s = record ? rep_note_read(r, record) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
        free(record);
        if (s != BSC_OK || (s = rep_csv(r, run->metrics_path, &run->metrics)) != BSC_OK)
            return s;
        if (run->metrics)
            run->steps_per_epoch = steps_per_epoch(run);
    }
    return BSC_OK;
}

int rep_run_healthy(const rep_run *run)
{
    return strcmp(run->status, "diverged") != 0 && strcmp(run->status, "failed") != 0;
}

bsc_status rep_note_left_out(const rep *r, rep_fig *f)
{
    char list[400] = "";
    size_t len = 0;
    for (size_t i = 0; i < r->n_runs && len + 80 < sizeof list; i++)
        if (!rep_run_healthy(&r->runs[i]))
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s (%s)", len ? ", " : "",
                                    r->runs[i].name, r->runs[i].status);
    return len ? rep_skip(f, "left out: %s", list) : BSC_OK;
}

const rep_run *rep_find_run(const rep *r, long bs)
{
    const rep_run *first = NULL;
    for (size_t i = 0; i < r->n_runs; i++)
        if (r->runs[i].bs == bs) {
            if (r->runs[i].is_default)
                return &r->runs[i];
            if (!first)
                first = &r->runs[i];
        }
    return first;
}

const rep_run *rep_find_run_name(const rep *r, const char *name)
{
    for (size_t i = 0; i < r->n_runs; i++)
        if (strcmp(r->runs[i].name, name) == 0)
            return &r->runs[i];
    return NULL;
}

const rep_run *rep_row_run(const rep *r, const bsc_table *t, long run_col, size_t row,
                           double bs)
{
    if (run_col >= 0) {
        const char *name = bsc_table_get_str(t, row, (size_t)run_col);
        char buf[32];
        double v = bsc_table_get(t, row, (size_t)run_col);
        /* a name of digits only ("512") reads back as a number */
        if (!name && isfinite(v)) {
            snprintf(buf, sizeof buf, "%.0f", v);
            name = buf;
        }
        if (name)
            return rep_find_run_name(r, name);
    }
    return bs > 0 ? rep_find_run(r, (long)bs) : NULL;
}

int rep_split_pair(const rep *r, const char *stem, const rep_run **a, const rep_run **b,
                   long *bs_a, long *bs_b)
{
    *a = *b = NULL;
    *bs_a = *bs_b = -1;
    size_t len = strlen(stem);
    char buf[256];
    if (len < sizeof buf) {
        memcpy(buf, stem, len + 1);
        for (size_t i = 1; i + 1 < len; i++) {
            if (buf[i] != '_')
                continue;
            buf[i] = '\0';
            const rep_run *x = rep_find_run_name(r, buf), *y = rep_find_run_name(r, buf + i + 1);
            buf[i] = '_';
            if (x && y) {
                *a = x;
                *b = y;
                *bs_a = x->bs;
                *bs_b = y->bs;
                return 1;
            }
        }
    }
    /* runs no longer under OUT/runs: their batch sizes at least */
    char tail;
    if (sscanf(stem, "bs%ld_bs%ld%c", bs_a, bs_b, &tail) == 2) {
        *a = rep_find_run(r, *bs_a);
        *b = rep_find_run(r, *bs_b);
        return 1;
    }
    *bs_a = *bs_b = -1;
    return 0;
}

void rep_free(rep *r)
{
    for (size_t i = 0; i < r->n_runs; i++) {
        free(r->runs[i].name);
        free(r->runs[i].dir);
        free(r->runs[i].metrics_path);
        bsc_table_free(r->runs[i].metrics);
    }
    free(r->runs);
    for (size_t i = 0; i < r->n_figs; i++) {
        free(r->figs[i].note);
        free(r->figs[i].svg);
    }
    free(r->fig_dir);
    rep_paths_free(r->reads);
    memset(r, 0, sizeof *r);
}

bsc_status rep_metrics_series(const rep *r, const char *xname, const char *const *ynames,
                              int ny, int required, rep_series **out, size_t *found)
{
    *found = 0;
    *out = calloc(r->n_runs ? r->n_runs : 1, sizeof **out);
    if (!*out)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    bsc_status s = BSC_OK;
    for (size_t i = 0; s == BSC_OK && i < r->n_runs; i++) {
        const rep_run *run = &r->runs[i];
        rep_series *se = &(*out)[i];
        se->run = run;
        if (!run->metrics)
            continue;
        size_t cx = 0, cy[4] = {0, 0, 0, 0};
        int have = bsc_table_find(run->metrics, xname) >= 0;
        for (int k = 0; k < ny; k++)
            have = have && bsc_table_find(run->metrics, ynames[k]) >= 0;
        if (!have && !required)
            continue;
        if ((s = rep_col(run->metrics, run->metrics_path, xname, &cx)) != BSC_OK)
            break;
        for (int k = 0; s == BSC_OK && k < ny; k++)
            s = rep_col(run->metrics, run->metrics_path, ynames[k], &cy[k]);
        if (s == BSC_OK)
            s = rep_column(run->metrics, run->metrics_path, cx, &se->x);
        for (int k = 0; s == BSC_OK && k < ny; k++)
            s = rep_column(run->metrics, run->metrics_path, cy[k], &se->y[k]);
        if (s == BSC_OK) {
            se->n = bsc_table_n_rows(run->metrics);
            ++*found;
        }
    }
    if (s != BSC_OK) {
        rep_series_free(*out, r->n_runs);
        *out = NULL;
    }
    return s;
}

void rep_series_free(rep_series *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++) {
        free(s[i].x);
        for (int k = 0; k < 4; k++)
            free(s[i].y[k]);
    }
    free(s);
}
