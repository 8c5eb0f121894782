/* batchscope: the study pipeline (YAML) as plain, validated structs.
 *
 * bsc_pipeline_load() parses the file, applies `--set key.path=value`
 * overrides to the tree, then validates. The `dataset:` mapping is kept as a
 * node and checked by the dataset module; layer, loss and analysis options are
 * checked by the plugins that own them (bsc_pipeline_check_types resolves
 * their type names against a registry). Every error carries file:line:col.
 */
#ifndef BATCHSCOPE_PIPELINE_H
#define BATCHSCOPE_PIPELINE_H

#include "batchscope/api.h"
#include <stdint.h>
#include "batchscope/blas.h"
#include "batchscope/node.h"
#include "batchscope/model.h"
#include "batchscope/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

struct bsc_registry;

#define BSC_PIPELINE_VERSION 1

/* The largest batch size a pipeline may ask for: 2^30 rows. Anything near
 * it is already more than a device holds; beyond it sizes computed from it
 * (activations of max_batch rows) would overflow, so it is rejected at the
 * value rather than later at a tensor. */
#define BSC_BATCH_SIZE_MAX (1L << 30)
#define BSC_BATCH_SIZE_MAX_TEXT "1073741824"


/* One training run of the study: its directory OUT/runs/<name> and what it
 * may change from the training block. */
typedef struct bsc_run_cfg {
    const char *name;          /* "bs256" for a batch_sizes entry */
    long batch_size;
    double lr;                 /* base rate, before lr_scaling */
    bsc_lr_scaling lr_scaling;
    double warmup_epochs;
    /* Under `mpirun -n N`: every batch split across the ranks, gradients
     * summed in rank order (one process: the whole batch, as always). */
    int data_parallel;
} bsc_run_cfg;

typedef struct bsc_training_cfg {
    int epochs;
    long *batch_sizes;
    size_t n_batch_sizes;
    /* Every run, in order: one per batch_sizes entry (named bs<B>, with the
     * block's lr, lr_scaling and warm-up), then the `runs:` entries, which
     * may set their own lr, lr_scaling and warmup_epochs -- so that, e.g.,
     * batch 256 with linear and with sqrt scaling run beside batch 32. */
    bsc_run_cfg *runs;
    size_t n_runs;
    char **run_names;          /* owned names of the batch_sizes runs */
    bsc_optimizer_cfg optimizer;
    bsc_schedule_cfg schedule;
    bsc_lr_scaling lr_scaling;     /* with optimizer.lr and base_batch_size:
                                      bsc_training_lr() */
    long base_batch_size;      /* default: the smallest batch size */
    int same_init;             /* default 1 */
    int drop_last;             /* default 0 */
    int shuffle;               /* default 1 */
    long eval_batch_size;      /* default 1000 */
    int checkpoint_every;      /* epochs; 0 = only init and final */
    const char *init;          /* "torch" (default), he_normal, he_uniform,
                                  glorot_uniform, glorot_normal */
    int data_parallel;         /* default 0: the runs' default (bsc_run_cfg) */
    /* default 0 (none): a run of at least this batch size is data parallel
     * unless it says `data_parallel: false` (the size threshold of a study
     * whose largest batches do not fit one device) */
    long data_parallel_from;
} bsc_training_cfg;

/* The learning-rate inputs of one run: the block's schedule and base batch
 * size with the run's own rate, scaling and warm-up. */
BSC_API bsc_lr_cfg bsc_run_lr_cfg(const bsc_training_cfg *t, const bsc_run_cfg *run);


typedef struct bsc_pipeline {
    bsc_node *root;            /* owned: the resolved tree (overrides applied) */
    char *path;
    int version;
    const char *name;
    uint64_t seed;
    const char *device;        /* NULL when absent */
    const char **plugins;      /* extra plugin files/directories, resolved
                                  relative to the pipeline's directory */
    size_t n_plugins;
    const bsc_node *dataset;   /* NULL when absent */
    bsc_component *layers;     /* `model:` */
    size_t n_layers;
    bsc_component loss;        /* type NULL when absent */
    bsc_training_cfg training; /* meaningful only when has_training */
    int has_training;
    bsc_component *observers;
    size_t n_observers;
    bsc_component *analyses;
    size_t n_analyses;
    const bsc_node *report;    /* NULL when absent */
    bsc_gemm_backend gemm;     /* `gemm:`; AUTO when absent */
} bsc_pipeline;

/* Loads, overrides ("training.epochs=2", "training.batch_sizes=[32,256]";
 * the value is YAML flow text; list items are addressed by index,
 * "model.1.units=64") and validates. */
BSC_API bsc_status bsc_pipeline_load(const char *path, const char *const *overrides,
                             size_t n_overrides, bsc_pipeline **out);
BSC_API void bsc_pipeline_free(bsc_pipeline *p);

/* Every layer, loss and analysis type named must exist in the registry
 * (error at the `type:` value with the closest known name). */
BSC_API bsc_status bsc_pipeline_check_types(const bsc_pipeline *p, const struct bsc_registry *r);

/* Writes the resolved tree to path (temporary file + rename). */
BSC_API bsc_status bsc_pipeline_write(const bsc_pipeline *p, const char *path);

#ifdef __cplusplus
}
#endif
#endif
