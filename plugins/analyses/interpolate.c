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
} interp;

static void destroy(void *self)
{
    interp *ip = self;
    if (!ip)
        return;
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

static bsc_status post(void *self, const bsc_study *st)
{
    interp *ip = self;
    size_t ns = bsc_model_n_state(st->model);
    bsc_eval_family *fam[2] = {NULL, NULL};
    bsc_tensor own[4];
    memset(own, 0, sizeof own);
    const bsc_tensor *pa, *pb, *sa, *sb;
    bsc_table *t = NULL;
    char *name = NULL, *path = NULL;
    bsc_status s;
    if (ip->from_path) {
        if ((s = ana_upload_checkpoint(st, ip->from_path, &own[0], &own[1])) != BSC_OK ||
            (s = ana_upload_checkpoint(st, ip->to_path, &own[2], &own[3])) != BSC_OK)
            goto cleanup;
        pa = &own[0], sa = &own[1], pb = &own[2], sb = &own[3];
        name = strdup(ip->output ? ip->output : BSC_FILE_INTERPOLATE_CHECKPOINTS);
    } else {
        const bsc_run_result *a, *b;
        char na[32], nb[32];
        if ((s = pick_runs(ip, st, &a, &b)) != BSC_OK || !a)
            goto cleanup;
        pa = a->final_params, sa = a->final_state, pb = b->final_params, sb = b->final_state;
        /* By run name: interpolate_bs32_bs256.csv for batch_sizes runs. */
        name = ip->output ? strdup(ip->output)
                          : bsc_strdup_printf(BSC_PREFIX_INTERPOLATE "%s_%s.csv",
                                              bsc_run_result_name(a, na, sizeof na),
                                              bsc_run_result_name(b, nb, sizeof nb));
    }
    if (!name) {
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((s = ana_out_path(st, name, &path)) != BSC_OK || (s = bsc_table_new(&t)) != BSC_OK)
        goto cleanup;
    int has_test = bsc_eval_split_size(st->eval, BSC_SPLIT_TEST) > 0;
    /* Families of the line's points: the first layer's output at A and B
     * computed once per split where the model allows. */
    const bsc_tensor *ends[2] = {pa, pb}, *ends_state[2] = {sa, sb};
    if ((s = bsc_eval_family_create(st->eval, 2, ends, ns ? ends_state : NULL, BSC_SPLIT_TRAIN,
                                    ip->subset, &fam[0])) != BSC_OK ||
        (has_test && (s = bsc_eval_family_create(st->eval, 2, ends, ns ? ends_state : NULL,
                                                 BSC_SPLIT_TEST, ip->test_subset,
                                                 &fam[1])) != BSC_OK))
        goto cleanup;
    char line[300];
    snprintf(line, sizeof line, "%s: %s", name, bsc_eval_family_mode(fam[0]));
    bsc_study_log(st, line);
    char label[160];
    size_t stem = strlen(name);   /* the file's name without ".csv" */
    if (stem > 4 && !strcmp(name + stem - 4, ".csv"))
        stem -= 4;
    snprintf(label, sizeof label, "%.*s", (int)stem, name);
    bsc_study_progress(st, label, "points", 0, (size_t)ip->points);
    for (long i = 0; i < ip->points; i++) {
        double alpha = ana_linspace(ip->a0, ip->a1, (int)ip->points, (int)i);
        const float c[2] = {(float)(1.0 - alpha), (float)alpha};
        double trl, tra, tel = 0, tea = 0;
        bsc_metrics_row row;
        if ((s = ana_interrupted(st)) != BSC_OK ||
            (s = bsc_eval_family_loss(fam[0], c, &trl, &tra)) != BSC_OK ||
            (has_test && (s = bsc_eval_family_loss(fam[1], c, &tel, &tea)) != BSC_OK) ||
            (s = bsc_table_add_row(t, &row)) != BSC_OK ||
            (s = bsc_metrics_set(&row, BSC_COL_ALPHA, alpha)) != BSC_OK ||
            (s = bsc_metrics_set(&row, BSC_COL_TRAIN_LOSS, trl)) != BSC_OK ||
            (s = bsc_metrics_set(&row, BSC_COL_TRAIN_ACC, tra)) != BSC_OK)
            goto cleanup;
        if (has_test && ((s = bsc_metrics_set(&row, BSC_COL_TEST_LOSS, tel)) != BSC_OK ||
                         (s = bsc_metrics_set(&row, BSC_COL_TEST_ACC, tea)) != BSC_OK))
            goto cleanup;
        bsc_study_progress(st, label, "points", (size_t)i + 1, (size_t)ip->points);
    }
    s = bsc_table_write_csv(t, path);
cleanup:
    bsc_eval_family_free(fam[0]);
    bsc_eval_family_free(fam[1]);
    for (int i = 0; i < 4; i++)
        bsc_tensor_free(&own[i]);
    bsc_table_free(t);
    free(name);
    free(path);
    return s;
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
               .destroy = destroy);
