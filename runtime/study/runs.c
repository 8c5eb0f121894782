/* Runs by name: selectors, the default pair, and the run directories of a
 * results directory. */
#include "batchscope/runs.h"

#include "batchscope/fsutil.h"
#include "batchscope/records.h"
#include "batchscope/results.h"
#include "batchscope/table.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int bsc_run_name_valid(const char *s)
{
    if (!s || !*s || *s == '.' || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

int bsc_run_name_is_default(const char *name, long batch_size)
{
    char buf[32];
    snprintf(buf, sizeof buf, "bs%ld", batch_size);
    return name && strcmp(name, buf) == 0;
}

const char *bsc_run_result_name(const bsc_run_result *r, char *buf, size_t len)
{
    if (r->name)
        return r->name;
    snprintf(buf, len, "bs%zu", r->batch_size);
    return buf;
}

int bsc_run_selector_batch_size(const bsc_node *sel, long *bs)
{
    if (!sel || sel->kind != BSC_NODE_SCALAR || sel->quoted || !sel->value || !*sel->value)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(sel->value, &end, 10);
    if (*end || errno)
        return 0;
    *bs = v;
    return 1;
}

/* The form alone: a batch size or a valid name. */
static bsc_status selector_form(const bsc_node *sel, const char *what)
{
    long bs;
    if (!sel)
        return bsc_fail(BSC_ERR_INVALID, "%s: no run given", what);
    if (sel->kind != BSC_NODE_SCALAR)
        return bsc_node_fail(sel, BSC_ERR_INVALID, "%s: a run is a batch size (256) or a run "
                             "name (bs256-sqrt)", what);
    if (bsc_run_selector_batch_size(sel, &bs)) {
        if (bs < 1)
            return bsc_node_fail(sel, BSC_ERR_INVALID, "%s: batch size %ld is not positive",
                                 what, bs);
        return BSC_OK;
    }
    if (!bsc_run_name_valid(sel->value))
        return bsc_node_fail(sel, BSC_ERR_INVALID, "%s: '%s' is neither a batch size nor a run "
                             "name (1-64 letters, digits, '-', '_' or '.')", what,
                             sel->value ? sel->value : "");
    return BSC_OK;
}

const bsc_run_result *bsc_run_find_name(const bsc_run_result *const *runs, size_t n,
                                         const char *name)
{
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        if (strcmp(bsc_run_result_name(runs[i], buf, sizeof buf), name) == 0)
            return runs[i];
    }
    return NULL;
}

const bsc_run_result *bsc_run_find_bs(const bsc_run_result *const *runs, size_t n, long bs)
{
    if (bs < 1)
        return NULL;
    char name[32];
    snprintf(name, sizeof name, "bs%ld", bs);
    /* The batch_sizes run first: `32` keeps meaning what it meant before
     * runs had names, however the named runs at 32 are ordered. */
    const bsc_run_result *r = bsc_run_find_name(runs, n, name);
    for (size_t i = 0; !r && i < n; i++)
        if (runs[i]->batch_size == (size_t)bs)
            r = runs[i];
    return r;
}

const bsc_run_result *bsc_run_select(const bsc_run_result *const *runs, size_t n,
                                      const bsc_node *sel)
{
    long bs;
    if (!sel || sel->kind != BSC_NODE_SCALAR || !sel->value)
        return NULL;
    if (bsc_run_selector_batch_size(sel, &bs))
        return bsc_run_find_bs(runs, n, bs);
    return bsc_run_find_name(runs, n, sel->value);
}

void bsc_run_default_pair(const bsc_run_result *const *runs, size_t n, const bsc_run_result **a,
                          const bsc_run_result **b)
{
    const bsc_run_result *lo = NULL, *hi = NULL;
    /* Strict comparisons keep the first run of a batch size: in study
     * order, that is the batch_sizes run before the named ones. */
    for (size_t i = 0; i < n; i++) {
        if (!lo || runs[i]->batch_size < lo->batch_size)
            lo = runs[i];
        if (!hi || runs[i]->batch_size > hi->batch_size)
            hi = runs[i];
    }
    const bsc_run_result *b256 = bsc_run_find_name(runs, n, "bs256");
    *a = lo;
    *b = b256 && b256 != lo ? b256 : hi;
}

/* ------------------------------------------------------------- scanning */

static int cmp_found(const void *a, const void *b)
{
    const bsc_run_result *x = *(bsc_run_result *const *)a, *y = *(bsc_run_result *const *)b;
    if (x->batch_size != y->batch_size)
        return x->batch_size < y->batch_size ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Fills r from the directory runs_dir/entry; *keep 0 when it is not a run. */
static bsc_status scan_one(const char *runs_dir, const char *entry, bsc_run_result *r,
                           int *keep)
{
    *keep = 0;
    memset(r, 0, sizeof *r);
    char *dir = bsc_strdup_printf("%s/%s", runs_dir, entry);
    char *json = dir ? bsc_strdup_printf("%s/" BSC_FILE_RUN_RECORD, dir) : NULL;
    char *name = NULL, *status = NULL;
    bsc_run_record *rec = NULL;
    struct stat st;
    bsc_status s = json ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s != BSC_OK || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        goto cleanup;
    /* A damaged run.json fails the scan, naming its path and line or key,
     * rather than put a run with made-up values into the report. */
    if (bsc_path_exists(json) && (s = bsc_run_record_read(json, &rec)) != BSC_OK)
        goto cleanup;
    long bs = rec ? rec->batch_size : 0;
    if (rec && rec->name && bsc_run_name_valid(rec->name) && !(name = strdup(rec->name))) {
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (bs <= 0 && strncmp(entry, "bs", 2) == 0 && entry[2] >= '0' && entry[2] <= '9') {
        char *end;
        errno = 0;
        long v = strtol(entry + 2, &end, 10);
        if (!*end && !errno && v > 0)
            bs = v;
    }
    if (bs <= 0)
        goto cleanup;
    if (!name && !(name = strdup(entry))) {
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (!(status = strdup(rec ? rec->status : "incomplete"))) {
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    r->batch_size = (size_t)bs;
    r->name = name;
    r->dir = dir;
    r->status = status;
    name = status = dir = NULL;
    *keep = 1;
cleanup:
    bsc_run_record_free(rec);
    free(dir);
    free(json);
    free(name);
    free(status);
    return s;
}

bsc_status bsc_runs_scan(const char *out_dir, bsc_run_result ***runs, size_t *n)
{
    *runs = NULL;
    *n = 0;
    char *runs_dir = bsc_strdup_printf("%s/" BSC_RUNS_DIR, out_dir);
    if (!runs_dir)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    DIR *d = opendir(runs_dir);
    if (!d) {
        bsc_status s = bsc_fail(BSC_ERR_NOT_FOUND, "%s: no runs directory (is %s a batchscope "
                                "results directory?)", runs_dir, out_dir);
        free(runs_dir);
        return s;
    }
    bsc_status s = BSC_OK;
    size_t cap = 0;
    struct dirent *e;
    while (s == BSC_OK && (e = readdir(d))) {
        /* dot entries, and hidden ones: no run name starts with '.' */
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            size_t nc = cap ? 2 * cap : 8;
            bsc_run_result **g = realloc(*runs, nc * sizeof *g);
            if (!g) {
                s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
                break;
            }
            *runs = g;
            cap = nc;
        }
        int keep = 0;
        bsc_run_result *r = calloc(1, sizeof *r);
        s = r ? scan_one(runs_dir, e->d_name, r, &keep) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
        if (s == BSC_OK && keep)
            (*runs)[(*n)++] = r;
        else
            free(r);
    }
    closedir(d);
    free(runs_dir);
    if (s != BSC_OK) {
        bsc_runs_free(*runs, *n);
        *runs = NULL;
        *n = 0;
        return s;
    }
    if (*n)
        qsort(*runs, *n, sizeof **runs, cmp_found);
    return BSC_OK;
}

void bsc_runs_free(bsc_run_result **runs, size_t n)
{
    for (size_t i = 0; runs && i < n; i++) {
        free((char *)runs[i]->name);
        free((char *)runs[i]->dir);
        free((char *)runs[i]->status);
        free(runs[i]);
    }
    free(runs);
}

bsc_status bsc_run_selector_check(const bsc_component_config *cfg, const bsc_node *sel,
                                  const char *what)
{
    bsc_status s = selector_form(sel, what);
    if (s != BSC_OK || !cfg || !cfg->planned_runs)
        return s;
    if (bsc_run_select(cfg->planned_runs, cfg->n_planned_runs, sel))
        return BSC_OK;
    char names[512];
    size_t len = 0;
    names[0] = '\0';
    for (size_t i = 0; i < cfg->n_planned_runs && len + 80 < sizeof names; i++) {
        char buf[32];
        int w = snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
                         bsc_run_result_name(cfg->planned_runs[i], buf, sizeof buf));
        if (w > 0)
            len += (size_t)w;
    }
    return bsc_node_fail(sel, BSC_ERR_INVALID, "%s: no run %s in this study (runs: %s)", what,
                         sel->value, names);
}

int bsc_run_usable(const bsc_run_result *r)
{
    return r && (!r->status || strcmp(r->status, "completed") == 0);
}

bsc_status bsc_run_metrics_read(const char *run_dir, int epochs_done, bsc_table **out)
{
    *out = NULL;
    char *path = bsc_strdup_printf("%s/%s", run_dir, BSC_FILE_METRICS);
    bsc_table *t = NULL;
    if (!path)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    bsc_status s = BSC_OK;
    if (!bsc_path_exists(path)) {
        s = bsc_fail(BSC_ERR_DATA, "%s: missing (the run's table of epochs)", path);
        goto cleanup;
    }
    if ((s = bsc_table_read_csv(path, &t)) != BSC_OK) {
        s = bsc_fail_context(BSC_ERR_DATA, "garbled metrics.csv");
        goto cleanup;
    }
    long ce = bsc_table_find(t, BSC_COL_EPOCH), cl = bsc_table_find(t, BSC_COL_TRAIN_LOSS);
    size_t n = bsc_table_n_rows(t);
    if (ce < 0 || cl < 0) {
        s = bsc_fail(BSC_ERR_DATA, "%s:1: not a metrics table (no '%s' column): garbled?", path,
                     ce < 0 ? BSC_COL_EPOCH : BSC_COL_TRAIN_LOSS);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        double e = bsc_table_get(t, i, (size_t)ce);
        if (e != (double)(long)i) {
            const char *text = bsc_table_get_str(t, i, (size_t)ce);
            char num[32];
            snprintf(num, sizeof num, "%g", e);
            s = bsc_fail(BSC_ERR_DATA, "%s:%zu: epoch '%s' where epoch %zu belongs: garbled?",
                         path, i + 2, text ? text : num, i);
            goto cleanup;
        }
    }
    if (epochs_done >= 0 && n != (size_t)epochs_done + 1) {
        s = bsc_fail(BSC_ERR_DATA, "%s: %zu rows, but the run finished %d epochs (rows for "
                     "epochs 0 to %d expected): cut short or garbled?", path, n, epochs_done,
                     epochs_done);
        goto cleanup;
    }
    *out = t;
    t = NULL;
cleanup:
    bsc_table_free(t);
    free(path);
    return s;
}
