/* batchscope: naming, choosing and finding the runs of a study.
 *
 * A run is identified by its name, which is also its directory OUT/runs/<name>:
 * a `training.batch_sizes` entry B is the run "bs<B>", a `training.runs`
 * entry names itself. Everything that lets a user point at a run -- the
 * summary's pairs, the analyses' from/to/runs/plane options -- accepts a
 * batch size or a name, resolved here the same way everywhere; everything
 * that reads results without the pipeline (the report, `batchscope report`)
 * enumerates the run directories here.
 */
#ifndef BATCHSCOPE_RUNS_H
#define BATCHSCOPE_RUNS_H

#include "batchscope/api.h"
#include <stddef.h>
#include "batchscope/node.h"
#include "batchscope/plugin.h"
#include "batchscope/status.h"
#include "batchscope/table.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when s may name a run: 1-64 letters, digits, '-', '_' or '.', not
 * starting with '.' (a directory name on every file system, never hidden). */
BSC_API int bsc_run_name_valid(const char *s);

/* 1 when name is "bs<B>" for this batch size: the run of a batch_sizes entry. */
BSC_API int bsc_run_name_is_default(const char *name, long batch_size);

/* The run's name: r->name, or "bs<B>" written into buf (len >= 24) for a
 * result made without one. */
BSC_API const char *bsc_run_result_name(const bsc_run_result *r, char *buf, size_t len);

/* 1 when a selector node is a batch size (an unquoted integer) rather than
 * a run name (anything else, a quoted "256" included); *bs gets the value. */
BSC_API int bsc_run_selector_batch_size(const bsc_node *sel, long *bs);

/* Checks a selector in an analysis' create(): a scalar that is a positive
 * batch size or a valid run name and, when cfg knows the study's planned
 * runs, one that picks one of them ("no run bs512 in this study (runs:
 * bs32, bs256)"); errors at the node's file:line:col, `what` naming the
 * option ("interpolate.from"). cfg may be NULL. */
BSC_API bsc_status bsc_run_selector_check(const bsc_component_config *cfg, const bsc_node *sel,
                                  const char *what);

/* The run a selector picks among runs[0..n): batch size B picks the run
 * named "bs<B>" when there is one, else the first run with batch size B (in
 * study order); a name picks that run. NULL when none matches. */
BSC_API const bsc_run_result *bsc_run_select(const bsc_run_result *const *runs, size_t n,
                                     const bsc_node *sel);

/* The same by batch size or by name, for callers without a node. */
BSC_API const bsc_run_result *bsc_run_find_bs(const bsc_run_result *const *runs, size_t n, long bs);
BSC_API const bsc_run_result *bsc_run_find_name(const bsc_run_result *const *runs, size_t n,
                                        const char *name);

/* The study's default pair of runs (small, large): a the first run of the
 * smallest batch size; b the run named bs256 when there is one and it is
 * not a, else the first run of the largest batch size. *b == *a when every
 * run has one batch size; both NULL for no run. */
BSC_API void bsc_run_default_pair(const bsc_run_result *const *runs, size_t n, const bsc_run_result **a,
                          const bsc_run_result **b);

/* The runs found under out_dir/runs without the pipeline: every directory
 * whose name and batch size are known -- name from its run.json ("name"),
 * else the directory's name; batch size from run.json ("batch_size"), else
 * from a directory named bs<B>. A directory with neither is skipped, not an
 * error. status is run.json's, "incomplete" without one. Sorted by batch
 * size, then name. The results own name, dir and status (no tensors); free
 * them with bsc_runs_free. *runs is an array of pointers (plugin.h: never an
 * array of structs). A missing runs directory is BSC_ERR_NOT_FOUND. */
BSC_API bsc_status bsc_runs_scan(const char *out_dir, bsc_run_result ***runs, size_t *n);
BSC_API void bsc_runs_free(bsc_run_result **runs, size_t n);

/* 1 when a finished run's final weights are a result to analyse: its
 * status is "completed" (or unset, for a result made by hand). A run that
 * diverged is a result of the study but not a minimizer: analyses skip it
 * and say so (plugin.h). */
BSC_API int bsc_run_usable(const bsc_run_result *r);

/* Reads run_dir/metrics.csv, the per-epoch table the training loop writes,
 * and checks that it is one: a header with `epoch` and `train_loss`, a
 * number in every `epoch` cell, and -- when epochs_done >= 0, a run whose
 * run.json says it finished that many epochs -- rows for epochs 0 to
 * epochs_done. A missing, cut or garbled file is BSC_ERR_DATA naming the
 * file (and line) rather than a table of NaN. *out is the table (free with
 * bsc_table_free). */
BSC_API bsc_status bsc_run_metrics_read(const char *run_dir, int epochs_done,
                                        bsc_table **out);

#ifdef __cplusplus
}
#endif
#endif
