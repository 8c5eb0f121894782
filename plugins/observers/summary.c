/* batchscope observers plugin: `summary` -- the study's tables, after all runs.
 *
 * Reads only result files (each run's metrics.csv, update_norms.csv and
 * run.json), so it gives the same tables for a resumed study and never
 * touches the device:
 *
 *   OUT/analyses/summary.csv  one row per run: run (its name), batch_size,
 *       status, epochs, steps, seconds, train_loss, train_acc, test_loss, test_acc,
 *       generalization_gap (train_acc - test_acc), distance_from_init,
 *       update_norm_q25, update_norm_median, update_norm_q75 (of the
 *       per-step total update norms, quartiles interpolated as numpy does),
 *       norm_ratio_q25, norm_ratio_median, norm_ratio_q75 (of the run's
 *       gradient_diversity samples), b_simple_window, b_simple_lo,
 *       b_simple_hi, g2_significant (the noise scale of the last window
 *       with its 95% interval). Values of observers that were not on are
 *       left empty.
 *   OUT/analyses/epoch_distance_ratio.csv  epoch, small, large (batch
 *       sizes), small_run, large_run (names), small_epoch_distance,
 *       large_epoch_distance, ratio (small / large), for every pair of
 *       `pairs: [[32, 256], [bs32, bs256-sqrt], ...]` -- a batch size B
 *       means the run bs<B>, anything else a run's name; default one pair,
 *       the smallest batch size and bs256 when it ran, else the largest.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/fsutil.h"
#include "batchscope/records.h"
#include "batchscope/runs.h"
#include "observers.h"

typedef struct summary {
    const bsc_node *(*pairs)[2];   /* run selectors, resolved after the runs */
    size_t n_pairs;
} summary;

static void sum_destroy(void *self);

static bsc_status parse_pairs(const bsc_component_config *cfg, const bsc_node *p, summary *sm)
{
    if (p->kind != BSC_NODE_SEQ)
        return bsc_node_fail(p, BSC_ERR_INVALID, "'pairs' must be a list of [small, large] "
                             "run pairs, e.g. [[32, 256]] or [[bs32, bs256-sqrt]]");
    sm->pairs = calloc(p->n ? p->n : 1, sizeof *sm->pairs);
    if (!sm->pairs)
        return bsc_fail(BSC_ERR_NOMEM, "summary: out of memory");
    for (size_t i = 0; i < p->n; i++) {
        const bsc_node *it = p->items[i];
        if (it->kind != BSC_NODE_SEQ || it->n != 2)
            return bsc_node_fail(it, BSC_ERR_INVALID, "a pair must be [small, large], two "
                                 "batch sizes or run names");
        for (int k = 0; k < 2; k++) {
            bsc_status s = bsc_run_selector_check(cfg, it->items[k], "summary.pairs");
            if (s != BSC_OK)
                return s;
            sm->pairs[i][k] = it->items[k];
        }
    }
    sm->n_pairs = p->n;
    return BSC_OK;
}

static bsc_status sum_create(const bsc_component_config *cfg, void **self)
{
    bsc_status s;
    summary *sm = calloc(1, sizeof *sm);
    if (!sm)
        return bsc_fail(BSC_ERR_NOMEM, "summary: out of memory");
    const bsc_node *p = bsc_node_get(cfg->options, "pairs");
    if (p && (s = parse_pairs(cfg, p, sm)) != BSC_OK) {
        sum_destroy(sm);
        return s;
    }
    *self = sm;
    return BSC_OK;
}

/* The run's file `name` as a table; *t NULL (and BSC_OK) when it is absent. */
static bsc_status read_table(const bsc_run_result *r, const char *name, bsc_table **t)
{
    *t = NULL;
    char *path = bsc_strdup_printf("%s/%s", r->dir, name);
    if (!path)
        return bsc_fail(BSC_ERR_NOMEM, "summary: out of memory");
    bsc_status s = bsc_path_exists(path) ? bsc_table_read_csv(path, t) : BSC_OK;
    free(path);
    return s;
}

static double last_value(const bsc_table *t, const char *col)
{
    long c = t ? bsc_table_find(t, col) : -1;
    size_t n = t ? bsc_table_n_rows(t) : 0;
    return c >= 0 && n ? bsc_table_get(t, n - 1, (size_t)c) : NAN;
}

/* The quartiles of column `col` of t (NaN when t or the column is absent). */
static bsc_status column_quartiles(const bsc_table *t, const char *col, double q[3])
{
    q[0] = q[1] = q[2] = NAN;
    long c = t ? bsc_table_find(t, col) : -1;
    if (c < 0)
        return BSC_OK;
    size_t n = bsc_table_n_rows(t), m = 0;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return bsc_fail(BSC_ERR_NOMEM, "summary: out of memory");
    for (size_t i = 0; i < n; i++) {
        double x = bsc_table_get(t, i, (size_t)c);
        if (!isnan(x))
            v[m++] = x;
    }
    obs_quartiles(v, m, &q[0], &q[1], &q[2]);
    free(v);
    return BSC_OK;
}

static bsc_status summary_row(const bsc_run_result *r, bsc_table *out)
{
    bsc_table *metrics = NULL, *norms = NULL, *div = NULL, *noise = NULL;
    bsc_run_record *rec = NULL;
    char *jpath = bsc_strdup_printf("%s/" BSC_FILE_RUN_RECORD, r->dir);
    bsc_status s = jpath ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "summary: out of memory");
    /* no run.json: a run that did not finish, its time unknown */
    if (s == BSC_OK && bsc_path_exists(jpath))
        s = bsc_run_record_read(jpath, &rec);
    /* A finished run's table must be whole: a garbled one is an error
     * naming the file, not a row of NaN. */
    if (s == BSC_OK)
        s = rec ? bsc_run_metrics_read(r->dir, rec->epochs_done, &metrics)
                : read_table(r, BSC_FILE_METRICS, &metrics);
    if (s == BSC_OK)
        s = read_table(r, BSC_FILE_UPDATE_NORMS, &norms);
    if (s == BSC_OK)
        s = read_table(r, BSC_FILE_GRADIENT_DIVERSITY, &div);
    if (s == BSC_OK)
        s = read_table(r, BSC_FILE_NOISE_SCALE, &noise);
    double qn[3], qr[3];
    if (s != BSC_OK || (s = column_quartiles(norms, BSC_COL_NORM, qn)) != BSC_OK ||
        (s = column_quartiles(div, BSC_COL_NORM_RATIO, qr)) != BSC_OK)
        goto cleanup;
    double tra = last_value(metrics, BSC_COL_TRAIN_ACC);
    double tea = last_value(metrics, BSC_COL_TEST_ACC);
    bsc_metrics_row row;
    if ((s = bsc_table_add_row(out, &row)) != BSC_OK)
        goto cleanup;
    char nb[32];
    bsc_metrics_set_str(&row, BSC_COL_RUN, bsc_run_result_name(r, nb, sizeof nb));
    bsc_metrics_set(&row, BSC_COL_BATCH_SIZE, (double)r->batch_size);
    bsc_metrics_set_str(&row, "status", r->status ? r->status : "");
    bsc_metrics_set(&row, "epochs", last_value(metrics, BSC_COL_EPOCH));
    bsc_metrics_set(&row, "steps", last_value(metrics, BSC_COL_STEP));
    bsc_metrics_set(&row, BSC_COL_SECONDS, rec ? rec->seconds : NAN);
    bsc_metrics_set(&row, BSC_COL_TRAIN_LOSS, last_value(metrics, BSC_COL_TRAIN_LOSS));
    bsc_metrics_set(&row, BSC_COL_TRAIN_ACC, tra);
    bsc_metrics_set(&row, BSC_COL_TEST_LOSS, last_value(metrics, BSC_COL_TEST_LOSS));
    bsc_metrics_set(&row, BSC_COL_TEST_ACC, tea);
    bsc_metrics_set(&row, "generalization_gap", tra - tea);
    bsc_metrics_set(&row, BSC_COL_DISTANCE_FROM_INIT,
                    last_value(metrics, BSC_COL_DISTANCE_FROM_INIT));
    bsc_metrics_set(&row, "update_norm_q25", qn[0]);
    bsc_metrics_set(&row, BSC_COL_UPDATE_NORM_MEDIAN, qn[1]);
    bsc_metrics_set(&row, "update_norm_q75", qn[2]);
    bsc_metrics_set(&row, BSC_COL_NORM_RATIO "_" BSC_STAT_Q25, qr[0]);
    bsc_metrics_set(&row, BSC_COL_NORM_RATIO "_" BSC_STAT_MEDIAN, qr[1]);
    bsc_metrics_set(&row, BSC_COL_NORM_RATIO "_" BSC_STAT_Q75, qr[2]);
    static const char *const ns_cols[] = {BSC_COL_B_SIMPLE_WINDOW, BSC_COL_B_SIMPLE_LO,
                                          BSC_COL_B_SIMPLE_HI, BSC_COL_G2_SIGNIFICANT};
    for (size_t k = 0; k < sizeof ns_cols / sizeof *ns_cols; k++)
        bsc_metrics_set(&row, ns_cols[k], last_value(noise, ns_cols[k]));
cleanup:
    bsc_table_free(metrics);
    bsc_table_free(norms);
    bsc_table_free(div);
    bsc_table_free(noise);
    bsc_run_record_free(rec);
    free(jpath);
    return s;
}

static bsc_status ratio_rows(const bsc_run_result *a, const bsc_run_result *b, bsc_table *out)
{
    bsc_table *ta = NULL, *tb = NULL;
    bsc_status s = read_table(a, BSC_FILE_METRICS, &ta);
    if (s == BSC_OK)
        s = read_table(b, BSC_FILE_METRICS, &tb);
    long ea = ta ? bsc_table_find(ta, BSC_COL_EPOCH) : -1;
    long eb = tb ? bsc_table_find(tb, BSC_COL_EPOCH) : -1;
    long da = ta ? bsc_table_find(ta, BSC_COL_EPOCH_DISTANCE) : -1;
    long db = tb ? bsc_table_find(tb, BSC_COL_EPOCH_DISTANCE) : -1;
    /* Epoch 0 has no distance travelled yet: the ratio starts at epoch 1. */
    for (size_t i = 0; s == BSC_OK && ea >= 0 && eb >= 0 && da >= 0 && db >= 0 &&
                       i < bsc_table_n_rows(ta); i++) {
        double e = bsc_table_get(ta, i, (size_t)ea);
        if (!(e >= 1))
            continue;
        for (size_t j = 0; j < bsc_table_n_rows(tb); j++) {
            if (bsc_table_get(tb, j, (size_t)eb) != e)
                continue;
            double x = bsc_table_get(ta, i, (size_t)da), y = bsc_table_get(tb, j, (size_t)db);
            bsc_metrics_row row;
            if ((s = bsc_table_add_row(out, &row)) != BSC_OK)
                break;
            bsc_metrics_set(&row, BSC_COL_EPOCH, e);
            char na[32], nb[32];
            bsc_metrics_set(&row, BSC_COL_SMALL, (double)a->batch_size);
            bsc_metrics_set(&row, BSC_COL_LARGE, (double)b->batch_size);
            bsc_metrics_set_str(&row, BSC_COL_SMALL_RUN, bsc_run_result_name(a, na, sizeof na));
            bsc_metrics_set_str(&row, BSC_COL_LARGE_RUN, bsc_run_result_name(b, nb, sizeof nb));
            bsc_metrics_set(&row, "small_epoch_distance", x);
            bsc_metrics_set(&row, "large_epoch_distance", y);
            bsc_metrics_set(&row, BSC_COL_RATIO, y > 0 ? x / y : NAN);
            break;
        }
    }
    bsc_table_free(ta);
    bsc_table_free(tb);
    return s;
}

static bsc_status sum_post(void *self, const bsc_study *st)
{
    summary *sm = self;
    bsc_table *sum = NULL, *ratio = NULL;
    char *dir = bsc_strdup_printf("%s/" BSC_ANALYSES_DIR, st->out_dir);
    char *p1 = bsc_strdup_printf("%s/" BSC_IN_ANALYSES(BSC_FILE_SUMMARY), st->out_dir);
    char *p2 = bsc_strdup_printf("%s/" BSC_IN_ANALYSES(BSC_FILE_EPOCH_DISTANCE_RATIO),
                                 st->out_dir);
    bsc_status s = dir && p1 && p2 ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "summary: out of memory");
    if (s == BSC_OK)
        s = bsc_mkdir_p(dir);
    if (s == BSC_OK)
        s = bsc_table_new(&sum);
    if (s == BSC_OK)
        s = bsc_table_new(&ratio);
    static const char *const rcols[] = {BSC_COL_EPOCH, BSC_COL_SMALL, BSC_COL_LARGE,
                                        BSC_COL_SMALL_RUN, BSC_COL_LARGE_RUN,
                                        "small_epoch_distance", "large_epoch_distance",
                                        BSC_COL_RATIO};
    for (size_t i = 0; s == BSC_OK && i < sizeof rcols / sizeof rcols[0]; i++)
        s = bsc_table_column(ratio, rcols[i]);
    for (size_t i = 0; s == BSC_OK && i < st->n_runs; i++)
        s = summary_row(st->runs[i], sum);
    if (s == BSC_OK && sm->n_pairs) {
        for (size_t i = 0; s == BSC_OK && i < sm->n_pairs; i++) {
            const bsc_run_result *ab[2];
            for (int k = 0; s == BSC_OK && k < 2; k++) {
                long bs;
                const bsc_node *sel = sm->pairs[i][k];
                if ((ab[k] = bsc_run_select(st->runs, st->n_runs, sel)))
                    continue;
                if (bsc_run_selector_batch_size(sel, &bs))
                    s = bsc_node_fail(sel, BSC_ERR_INVALID, "no run with batch size %ld in this "
                                      "study", bs);
                else
                    s = bsc_node_fail(sel, BSC_ERR_INVALID, "no run named '%s' in this study",
                                      sel->value);
            }
            if (s == BSC_OK)
                s = ratio_rows(ab[0], ab[1], ratio);
        }
    } else if (s == BSC_OK && st->n_runs >= 2) {
        const bsc_run_result *small, *large;
        bsc_run_default_pair(st->runs, st->n_runs, &small, &large);
        if (large != small)
            s = ratio_rows(small, large, ratio);
    }
    if (s == BSC_OK)
        s = bsc_table_write_csv(sum, p1);
    if (s == BSC_OK)
        s = bsc_table_write_csv(ratio, p2);
    bsc_table_free(sum);
    bsc_table_free(ratio);
    free(dir);
    free(p1);
    free(p2);
    return s;
}

static void sum_destroy(void *self)
{
    summary *sm = self;
    if (!sm)
        return;
    free(sm->pairs);
    free(sm);
}

BSC_OBSERVER_TYPE(obs_summary, "summary",
               "summary.csv per run and epoch_distance_ratio.csv (pairs), after all runs",
               BSC_OPTIONS(BSC_OPT("pairs", BSC_OPT_LIST, "",
                                   "[small, large] run pairs (default: smallest batch vs bs256 or largest)")),
               .create = sum_create,
               .study_end = sum_post,
               .destroy = sum_destroy);
