/* interpolate: the loss along the straight line between two minimizers
 * (Goodfellow et al. 2015; Keskar et al. 2016, figure 3),
 *
 *     theta(alpha) = alpha * theta_B + (1 - alpha) * theta_A,
 *
 * train and test loss and accuracy at each alpha. Batch-norm running
 * statistics (the state buffer) follow the same line.
 *
 *   - type: interpolate
 *     from: 32              # run A, a batch size or a run's name (default: the
 *                           # first run of the smallest batch size)
 *     to: bs256-sqrt        # run B (default: bs256 when run, else the first run
 *                           # of the largest batch size)
 *     from_path: a.safetensors   # or two checkpoints instead of runs
 *     to_path: b.safetensors     # (relative to the pipeline's directory)
 *     range: [-1, 2]        # alpha from, to
 *     points: 31
 *     subset: 0             # training examples evaluated (0: all)
 *     test_subset: 0        # test examples evaluated (0: all)
 *     output: name.csv      # default interpolate_<A>_<B>.csv by run name
 *                           # (interpolate_checkpoints.csv for paths)
 *
 * Output OUT/analyses/<output>: alpha, train_loss, train_acc, test_loss,
 * test_acc. An end that diverged or did not finish (or, by default, fewer
 * than two runs that completed) skips the analysis: no file.
 *
 * Units of work (plugin.h): the points in eighths, each unit with its own
 * evaluator families (a point's value does not depend on the others).
 */
#include "analyses.h"

#include "batchscope/fsutil.h"
#include "batchscope/table.h"

#include <stdlib.h>
#include <string.h>

typedef struct interp {
    const bsc_node *node;
    const bsc_node *from, *to; /* run selectors; NULL: default */
    char *from_path, *to_path; /* resolved */
    double a0, a1;
    long points;
    size_t subset, test_subset;
    const char *output;
    /* What plan() prepared: the ends, the file, and the points' values. */
    const bsc_tensor *end[2], *end_state[2];
    bsc_tensor own[4];         /* checkpoints' params and states (paths) */
    char *name;                /* the file's name; NULL: skipped */
    char label[160];           /* progress and log: the name without .csv */
    int has_test;
    size_t chunk, n_units;
    double *val;               /* [points][4]: train loss, acc, test loss, acc */
} interp;

/* Forgets what plan() prepared. */
static void free_plan(interp *ip)
{
    for (int i = 0; i < 4; i++)
        bsc_tensor_free(&ip->own[i]);
    free(ip->name);
    free(ip->val);
    ip->name = NULL;
    ip->val = NULL;
    ip->n_units = 0;
}

static void destroy(void *self)
{
    interp *ip = self;
    if (!ip)
        return;
    free_plan(ip);
    free(ip->from_path);
    free(ip->to_path);
    free(ip);
}

static bsc_status create(const bsc_component_config *cfg, void **self)
{
    *self = NULL;
    const bsc_node *o = cfg->options;
    bsc_status s;
    interp *ip = calloc(1, sizeof *ip);
    if (!ip)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    ip->node = o;
    double *range = NULL;
    size_t nr = 0;
    const double def_range[2] = {-1.0, 2.0};
    ip->from = bsc_node_get(o, "from");
    ip->to = bsc_node_get(o, "to");
    if ((ip->from && (s = bsc_run_selector_check(cfg, ip->from, "from")) != BSC_OK) ||
        (ip->to && (s = bsc_run_selector_check(cfg, ip->to, "to")) != BSC_OK) ||
        (s = ana_node_path(bsc_node_get(o, "from_path"), &ip->from_path)) != BSC_OK ||
        (s = ana_node_path(bsc_node_get(o, "to_path"), &ip->to_path)) != BSC_OK ||
        (s = bsc_opt_double_list(o, "range", def_range, 2, -1e6, 1e6, &range, &nr)) != BSC_OK ||
        (s = bsc_opt_long(o, "points", 31, 1, 100000, &ip->points)) != BSC_OK ||
        (s = ana_opt_subset(o, "subset", &ip->subset)) != BSC_OK ||
        (s = ana_opt_subset(o, "test_subset", &ip->test_subset)) != BSC_OK ||
        (s = bsc_opt_string(o, "output", NULL, NULL, &ip->output)) != BSC_OK)
        goto fail;
    if (nr != 2 || !(range[0] < range[1])) {
        s = bsc_node_fail(bsc_node_get(o, "range"), BSC_ERR_INVALID,
                          "range must be [from, to] with from < to");
        goto fail;
    }
    ip->a0 = range[0];
    ip->a1 = range[1];
    if (!ip->from_path != !ip->to_path) {
        s = bsc_node_fail(o, BSC_ERR_INVALID, "from_path and to_path go together");
        goto fail;
    }
    if (ip->from_path && (ip->from || ip->to)) {
        s = bsc_node_fail(ip->from ? ip->from : ip->to, BSC_ERR_INVALID,
                          "give either runs (from/to) or checkpoints (from_path/to_path)");
        goto fail;
    }
    /* Between runs, the study must plan two (whether both finish is known
     * only after training: then a missing end skips the analysis). */
    if (!ip->from_path && !(ip->from && ip->to) && cfg->planned_runs &&
        cfg->n_planned_runs < 2) {
        s = bsc_node_fail(o, BSC_ERR_INVALID, "interpolate needs two runs; the study has %zu",
                          cfg->n_planned_runs);
        goto fail;
    }
    if (ip->output && (strchr(ip->output, '/') || !ip->output[0])) {
        s = bsc_node_fail(bsc_node_get(o, "output"), BSC_ERR_INVALID,
                          "output is a file name inside OUT/analyses, without '/'");
        goto fail;
    }
    free(range);
    *self = ip;
    return BSC_OK;
fail:
    free(range);
    destroy(ip);
    return s;
}

/* The two ends among the runs that can be used: the selectors' runs, else
 * the default pair of the usable ones. *a and *b NULL (and BSC_OK) when an
 * end diverged or did not finish, or fewer than two runs are usable: the
 * analysis is skipped, not failed (study.h's policy). */
static bsc_status pick_runs(const interp *ip, const bsc_study *st, const bsc_run_result **a,
                            const bsc_run_result **b)
{
    *a = *b = NULL;
    const char *why = NULL;
    char buf[160];
    if (ip->from && ana_pick_usable(st, ip->from, a, &why, buf, sizeof buf) == BSC_OK && why)
        return *a = NULL, BSC_OK;
    if (ip->to && ana_pick_usable(st, ip->to, b, &why, buf, sizeof buf) == BSC_OK && why)
        return *a = *b = NULL, BSC_OK;
    const bsc_run_result **usable = calloc(st->n_runs ? st->n_runs : 1, sizeof *usable);
    if (!usable)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < st->n_runs; i++)
        if (bsc_run_usable(st->runs[i]))
            usable[n++] = st->runs[i];
    const bsc_run_result *lo, *hi;
    bsc_run_default_pair(usable, n, &lo, &hi);
    free(usable);
    if (!ip->from)
        *a = lo;
    if (!ip->to)
        *b = hi && hi != *a ? hi : (lo != *a ? lo : NULL);
    if (!*a || !*b) {
        *a = *b = NULL;
        return BSC_OK;
    }
    if (*a == *b) {
        char nb[32];
        return bsc_node_fail(ip->node, BSC_ERR_INVALID, "interpolate: both ends are the run %s",
                             bsc_run_result_name(*a, nb, sizeof nb));
    }
    return BSC_OK;
}

/* The two checkpoints, before training. */
static bsc_status check(void *self, const bsc_study *st)
{
    const interp *ip = self;
    bsc_status s = BSC_OK;
    if (ip->from_path)
        s = ana_check_file(st, ip->from_path, 0, "interpolate.from_path");
    if (s == BSC_OK && ip->to_path)
        s = ana_check_file(st, ip->to_path, 0, "interpolate.to_path");
    return s;
}

/* ------------------------------------------------------------------ units */

/* The ends and the file; the line's points in units of an eighth (a
 * point's value does not depend on the unit it is in). */
static bsc_status plan(void *self, const bsc_study *st, size_t *n_units)
{
    interp *ip = self;
    bsc_status s = BSC_OK;
    free_plan(ip);
    *n_units = 0;
    if (ip->from_path) {
        if ((s = ana_upload_checkpoint(st, ip->from_path, &ip->own[0], &ip->own[1])) != BSC_OK ||
            (s = ana_upload_checkpoint(st, ip->to_path, &ip->own[2], &ip->own[3])) != BSC_OK)
            return s;
        ip->end[0] = &ip->own[0], ip->end_state[0] = &ip->own[1];
        ip->end[1] = &ip->own[2], ip->end_state[1] = &ip->own[3];
        ip->name = strdup(ip->output ? ip->output : BSC_FILE_INTERPOLATE_CHECKPOINTS);
    } else {
        const bsc_run_result *a, *b;
        char na[32], nb[32];
        if ((s = pick_runs(ip, st, &a, &b)) != BSC_OK || !a)
            return s;   /* an end missing: skipped, no units, no file */
        ip->end[0] = a->final_params, ip->end_state[0] = a->final_state;
        ip->end[1] = b->final_params, ip->end_state[1] = b->final_state;
        /* By run name: interpolate_bs32_bs256.csv for batch_sizes runs. */
        ip->name = ip->output ? strdup(ip->output)
                              : bsc_strdup_printf(BSC_PREFIX_INTERPOLATE "%s_%s.csv",
                                                  bsc_run_result_name(a, na, sizeof na),
                                                  bsc_run_result_name(b, nb, sizeof nb));
    }
    size_t np = (size_t)ip->points;
    ip->val = calloc(4 * np, sizeof *ip->val);
    if (!ip->name || !ip->val)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t stem = strlen(ip->name);   /* the file's name without ".csv" */
    if (stem > 4 && !strcmp(ip->name + stem - 4, ".csv"))
        stem -= 4;
    snprintf(ip->label, sizeof ip->label, "%.*s", (int)stem, ip->name);
    ip->has_test = bsc_eval_split_size(st->eval, BSC_SPLIT_TEST) > 0;
    ip->chunk = (np + 7) / 8;
    *n_units = ip->n_units = (np + ip->chunk - 1) / ip->chunk;
    return BSC_OK;
}

/* A unit's bytes: train loss, train acc, test loss, test acc of each of
 * its points, as doubles (bit for bit). */
static bsc_status run_unit(void *self, const bsc_study *st, size_t unit, void **result,
                           size_t *len)
{
    interp *ip = self;
    size_t ns = bsc_model_n_state(st->model), np = (size_t)ip->points;
    bsc_eval_family *fam[2] = {NULL, NULL};
    *result = NULL;
    *len = 0;
    if (unit >= ip->n_units)
        return bsc_fail(BSC_ERR_INVALID, "interpolate: unit %zu of %zu", unit, ip->n_units);
    size_t from = unit * ip->chunk, count = np - from < ip->chunk ? np - from : ip->chunk;
    double *out = calloc(4 * count, sizeof *out);
    bsc_status s = out ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    /* Families of the unit's points: the first layer's output at A and B
     * computed once per split where the model allows. */
    if (s == BSC_OK &&
        (s = bsc_eval_family_create(st->eval, 2, ip->end, ns ? ip->end_state : NULL,
                                    BSC_SPLIT_TRAIN, ip->subset, &fam[0])) == BSC_OK &&
        ip->has_test)
        s = bsc_eval_family_create(st->eval, 2, ip->end, ns ? ip->end_state : NULL,
                                   BSC_SPLIT_TEST, ip->test_subset, &fam[1]);
    if (s == BSC_OK && unit == 0) {
        char line[300];
        snprintf(line, sizeof line, "%s: %s", ip->name, bsc_eval_family_mode(fam[0]));
        bsc_study_log(st, line);
        bsc_study_progress(st, ip->label, "points", 0, np);
    }
    for (size_t k = 0; s == BSC_OK && k < count; k++) {
        double alpha = ana_linspace(ip->a0, ip->a1, (int)ip->points, (int)(from + k));
        const float c[2] = {(float)(1.0 - alpha), (float)alpha};
        double *v = out + 4 * k;
        if ((s = ana_interrupted(st)) == BSC_OK &&
            (s = bsc_eval_family_loss(fam[0], c, &v[0], &v[1])) == BSC_OK && ip->has_test)
            s = bsc_eval_family_loss(fam[1], c, &v[2], &v[3]);
    }
    bsc_eval_family_free(fam[0]);
    bsc_eval_family_free(fam[1]);
    if (s != BSC_OK) {
        free(out);
        return s;
    }
    bsc_study_progress(st, ip->label, "points", from + count, np);
    *result = out;
    *len = 4 * count * sizeof *out;
    return BSC_OK;
}

static bsc_status merge(void *self, const bsc_study *st, size_t unit, const void *result,
                        size_t len)
{
    (void)st;
    interp *ip = self;
    size_t np = (size_t)ip->points;
    if (unit >= ip->n_units)
        return bsc_fail(BSC_ERR_INVALID, "interpolate: unit %zu of %zu", unit, ip->n_units);
    size_t from = unit * ip->chunk, count = np - from < ip->chunk ? np - from : ip->chunk;
    if (len != 4 * count * sizeof(double))
        return bsc_fail(BSC_ERR_DATA, "%s: unit %zu has %zu bytes, not the %zu of %zu points",
                        ip->name, unit, len, 4 * count * sizeof(double), count);
    memcpy(ip->val + 4 * from, result, len);
    return BSC_OK;
}

static bsc_status finish(void *self, const bsc_study *st)
{
    interp *ip = self;
    bsc_table *t = NULL;
    char *path = NULL;
    if (!ip->name)
        return BSC_OK;   /* skipped: an end diverged or did not finish */
    bsc_status s;
    if ((s = ana_out_path(st, ip->name, &path)) != BSC_OK || (s = bsc_table_new(&t)) != BSC_OK)
        goto cleanup;
    for (long i = 0; i < ip->points; i++) {
        const double *v = ip->val + 4 * i;
        bsc_metrics_row row;
        if ((s = bsc_table_add_row(t, &row)) != BSC_OK ||
            (s = bsc_metrics_set(&row, BSC_COL_ALPHA,
                                 ana_linspace(ip->a0, ip->a1, (int)ip->points, (int)i))) !=
                BSC_OK ||
            (s = bsc_metrics_set(&row, BSC_COL_TRAIN_LOSS, v[0])) != BSC_OK ||
            (s = bsc_metrics_set(&row, BSC_COL_TRAIN_ACC, v[1])) != BSC_OK)
            goto cleanup;
        if (ip->has_test && ((s = bsc_metrics_set(&row, BSC_COL_TEST_LOSS, v[2])) != BSC_OK ||
                             (s = bsc_metrics_set(&row, BSC_COL_TEST_ACC, v[3])) != BSC_OK))
            goto cleanup;
    }
    s = bsc_table_write_csv(t, path);
cleanup:
    bsc_table_free(t);
    free(path);
    return s;
}

static bsc_status post(void *self, const bsc_study *st)
{
    static const bsc_analysis_ops ops = {.plan = plan, .run_unit = run_unit, .merge = merge,
                                         .finish = finish};
    return ana_run_units(&ops, self, st);
}

BSC_ANALYSIS_TYPE(ana_interpolate, "interpolate",
               "loss and accuracy along theta(a) = a*B + (1-a)*A between two minimizers",
               BSC_OPTIONS(BSC_OPT("from", BSC_OPT_ANY, "", "run A: a batch size or a run name (default: smallest batch)"),
                           BSC_OPT("to", BSC_OPT_ANY, "", "run B (default: bs256 when run, else the largest batch)"),
                           BSC_OPT("from_path", BSC_OPT_STRING, "", "a checkpoint instead of run A (relative to the pipeline)"),
                           BSC_OPT("to_path", BSC_OPT_STRING, "", "a checkpoint instead of run B"),
                           BSC_OPT("range", BSC_OPT_LIST, "[-1, 2]", "alpha from, to"),
                           BSC_OPT("points", BSC_OPT_INT, "31", "values of alpha"),
                           BSC_OPT("subset", BSC_OPT_INT, "0", "training examples evaluated (0: all)"),
                           BSC_OPT("test_subset", BSC_OPT_INT, "0", "test examples evaluated (0: all)"),
                           BSC_OPT("output", BSC_OPT_STRING, "", "file name (default: interpolate_<A>_<B>.csv)")),
               .create = create,
               .run = post,
               .check = check,
               .destroy = destroy,
               .plan = plan,
               .run_unit = run_unit,
               .merge = merge,
               .finish = finish);
