/* Observer `step_log`: per epoch, how many optimizer steps a run took, the
 * examples they saw and their mean learning rate, into
 * OUT/runs/<run>/<file> (epoch, steps, examples, mean_lr); the step count
 * also goes into the run's metrics.csv as the column `steps_in_epoch`.
 *
 * after_step runs inside the training loop, where nothing may block: it
 * only counts on the host. The file is rewritten (atomically) at every epoch
 * end, so an interrupted run keeps the epochs it finished. */
#define _POSIX_C_SOURCE 200809L  /* strdup */

#include <stdlib.h>
#include <string.h>

#include "batchscope/batchscope.h"

typedef struct step_log {
    char *file;            /* the option, a name inside the run directory */
    char *path;            /* OUT/runs/<run>/<file> of the current run */
    bsc_table *table;
    size_t steps, examples;
    double lr_sum;
} step_log;

static void step_log_destroy(void *self)
{
    step_log *l = self;
    if (!l)
        return;
    bsc_table_free(l->table);
    free(l->path);
    free(l->file);
    free(l);
}

static bsc_status step_log_create(const bsc_component_config *cfg, void **self)
{
    const char *file;
    bsc_status st = bsc_opt_string(cfg->options, "file", "steps.csv", NULL, &file);
    if (st != BSC_OK)
        return st;
    if (!file[0] || strchr(file, '/'))
        return bsc_node_fail(bsc_node_get(cfg->options, "file"), BSC_ERR_INVALID,
                             "file is a name inside the run's directory, without '/'");
    step_log *l = calloc(1, sizeof *l);
    if (!l || !(l->file = strdup(file))) {
        free(l);
        return bsc_fail(BSC_ERR_NOMEM, "step_log: out of memory");
    }
    *self = l;
    return BSC_OK;
}

static bsc_status step_log_run_start(void *self, const bsc_run_info *run)
{
    step_log *l = self;
    static const char *const columns[] = {"epoch", "steps", "examples", "mean_lr"};
    bsc_status st;

    /* One instance serves every run of the study, one after the other. */
    bsc_table_free(l->table);
    l->table = NULL;
    free(l->path);
    l->steps = l->examples = 0;
    l->lr_sum = 0.0;
    if (!(l->path = bsc_strdup_printf("%s/%s", run->run_dir, l->file)))
        return bsc_fail(BSC_ERR_NOMEM, "step_log: out of memory");
    if ((st = bsc_table_new(&l->table)) != BSC_OK)
        return st;
    for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++)
        if ((st = bsc_table_column(l->table, columns[i])) != BSC_OK)
            return st;
    return BSC_OK;
}

static bsc_status step_log_after_step(void *self, const bsc_run_info *run,
                                      const bsc_step_info *s)
{
    step_log *l = self;
    (void)run;
    l->steps++;
    l->examples += s->batch;
    l->lr_sum += s->lr;
    return BSC_OK;
}

static bsc_status step_log_epoch_end(void *self, const bsc_run_info *run,
                                     const bsc_epoch_info *e)
{
    step_log *l = self;
    bsc_metrics_row row;
    bsc_status st;
    (void)run;

    if (e->epoch == 0)   /* the evaluation before training: no steps yet */
        return BSC_OK;
    if ((st = bsc_table_add_row(l->table, &row)) != BSC_OK ||
        (st = bsc_metrics_set(&row, "epoch", e->epoch)) != BSC_OK ||
        (st = bsc_metrics_set(&row, "steps", (double)l->steps)) != BSC_OK ||
        (st = bsc_metrics_set(&row, "examples", (double)l->examples)) != BSC_OK ||
        (st = bsc_metrics_set(&row, "mean_lr", l->steps ? l->lr_sum / (double)l->steps
                                                        : 0.0)) != BSC_OK)
        return st;
    if (e->row && (st = bsc_metrics_set(e->row, "steps_in_epoch", (double)l->steps)) != BSC_OK)
        return st;
    l->steps = l->examples = 0;
    l->lr_sum = 0.0;
    return bsc_table_write_csv(l->table, l->path);
}

BSC_OBSERVER_TYPE(example_step_log, "step_log",
                  "steps, examples and mean learning rate per epoch, per run",
                  BSC_OPTIONS(BSC_OPT("file", BSC_OPT_STRING, "steps.csv",
                                      "file name in OUT/runs/<run>/")),
                  .create = step_log_create, .destroy = step_log_destroy,
                  .run_start = step_log_run_start, .after_step = step_log_after_step,
                  .epoch_end = step_log_epoch_end);
