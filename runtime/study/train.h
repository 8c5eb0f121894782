/* Internal: one training run (one batch size) of a study. */
#ifndef BATCHSCOPE_TRAIN_H
#define BATCHSCOPE_TRAIN_H

#include <stdio.h>

#include "batchscope/evaluator.h"
#include "batchscope/optim.h"
#include "batchscope/pipeline.h"
#include "batchscope/plugin.h"
#include "batchscope/records.h"

typedef struct bsc_observer {
    const bsc_type *type;
    const bsc_observer_ops *ops;   /* type->ops */
    void *self;
} bsc_observer;

/* Everything the runs of a study share. */
typedef struct bsc_trainer {
    bsc_context *ctx;
    const bsc_pipeline *pipeline;
    bsc_model *model;
    const bsc_device_dataset *data;
    bsc_evaluator *eval;
    bsc_optimizer *opt;
    bsc_observer *observers;
    size_t n_observers;
    const float *init_params;   /* host, n_params (same_init) */
    const float *init_state;    /* host, n_state */
    bsc_tensor w0;              /* device copy of the run's initial parameters */
    bsc_tensor perm;            /* I32 [n_train] */
    bsc_tensor x, y;            /* one training batch */
    bsc_tensor step_loss;       /* F32 [steps_per_epoch] of the largest run */
    FILE *log;
    int quiet;
    int tty;
    double last_plain;          /* when the last plain progress line went out */
    /* Polled between steps: nonzero stops the run as "interrupted". */
    int (*stop_requested)(void *user);
    void *stop_user;
    /* A data-parallel run (dp_size > 1, set by the scheduler): this process
     * computes rows [count*dp_rank/dp_size, count*(dp_rank+1)/dp_size) of
     * every batch, and reduce() sums v[0..n) over the ranks in rank order,
     * in place, the same sum on every rank. Rank 0 alone evaluates and
     * observes, on the whole batch; the others only train. */
    int dp_rank, dp_size;
    bsc_status (*reduce)(void *user, float *v, size_t n);
    void *reduce_user;
    float *dp_host;             /* n_params + 1 floats while dp_size > 1 */
} bsc_trainer;

typedef struct bsc_run_outcome {
    long batch_size;
    const char *name;
    const char *status;         /* "completed", "diverged", "interrupted", "failed" */
    int epochs_done;
    int diverged_epoch;         /* 0 when not diverged */
    long diverged_step;
    double seconds;
    double train_loss, train_acc, test_loss, test_acc;
} bsc_run_outcome;

/* Copies o into r (from bsc_run_record_new or bsc_manifest_add_run): the
 * fields run.json and the manifest's runs are written from. r borrows o's
 * strings. */
void bsc_run_outcome_record(const bsc_run_outcome *o, bsc_run_record *r);

/* Allocates the shared batch/permutation/step buffers for the largest batch. */
bsc_status bsc_trainer_prepare(bsc_trainer *t, long max_batch);
void bsc_trainer_release(bsc_trainer *t);

/* Enqueues one training step on examples perm[start, start+count) of the
 * training split (t->perm must hold the epoch's permutation): gather,
 * forward, backward, optimizer update, and the step's mean loss into
 * t->step_loss[slot]. bsc_train_grad is all but the update (the observers'
 * after_backward runs between the two), bsc_train_update the update. */
bsc_status bsc_train_grad(bsc_trainer *t, size_t start, size_t count, uint64_t step,
                          size_t slot);
bsc_status bsc_train_update(bsc_trainer *t, float lr);
bsc_status bsc_train_step(bsc_trainer *t, size_t start, size_t count, uint64_t step, float lr,
                          size_t slot);

/* Trains one run into run_dir (created by the caller): metrics.csv,
 * init/final (and periodic) checkpoints, observers' files, run.json last. A
 * diverged run returns BSC_OK with out->status "diverged". */
bsc_status bsc_train_run(bsc_trainer *t, const bsc_run_cfg *run, const char *run_dir,
                         bsc_run_outcome *out);


#endif
