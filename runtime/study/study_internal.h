/* Shared by session.c (assembling a study: pipeline, plugins, data, model,
 * device), study.c (`batchscope run`: the runs, analyses and files) and
 * study_report.c (the report, also `batchscope report`). Not a public
 * header. */
#ifndef BATCHSCOPE_STUDY_INTERNAL_H
#define BATCHSCOPE_STUDY_INTERNAL_H

#include <stdio.h>
#include "batchscope/dataset.h"
#include "batchscope/evaluator.h"
#include "batchscope/fsutil.h"
#include "batchscope/optim.h"
#include "batchscope/registry.h"
#include "batchscope/session.h"
#include "batchscope/study.h"
#include "progress.h"
#include "train.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

struct bsc_session {
    const bsc_run_options *opt;
    FILE *log;
    bsc_pipeline *p;
    bsc_registry *reg;
    bsc_context *ctx;
    char *out;
    char started[32];
    double t0;
    bsc_run_outcome *outcomes;
    size_t n_outcomes;
    bsc_dataset_config dcfg;
    bsc_dataset *host;       /* until uploaded */
    bsc_device_dataset data;
    int have_data;
    bsc_model *model;
    bsc_evaluator *eval;
    bsc_optimizer *opt_;
    bsc_observer *obs;       /* observers */
    size_t n_obs;
    float *init_params, *init_state;
    bsc_trainer tr;
    bsc_run_result *results;
    const bsc_run_result **done;     /* the finished runs, as analyses see them */
    bsc_run_result *planned;  /* names and batch sizes, for create() */
    const bsc_run_result **planned_ptrs;
    size_t n_planned;
    bsc_observer *ana;       /* analyses (ops in ana_ops) */
    const bsc_analysis_ops **ana_ops;
    size_t n_ana;
    const bsc_type *report;
    void *report_self;
    bsc_tensor *finals;      /* params and state per run */
    size_t step_batch;       /* bsc_session_start_run's batch size */
    bsc_dir_lock lock;       /* of out, while `batchscope run` writes there */
    int out_created;         /* out did not exist before this study */
    int out_known;           /* out is the study's (not check's placeholder) */
    char *failures;          /* what failed so far ("run bs256: ...; analysis ...") */
    size_t n_failures;
    char *pipeline_abs;      /* the pipeline file, absolute, for the manifest */
    bsc_versions versions;   /* what the manifest records */
    bsc_progress progress;   /* long analyses' progress lines */
    /* Scale-out (scaleout_internal.h): NULL until bsc_scaleout_begin. local_rank
     * picks this process's device among those its selector matches on its
     * host (local_size processes there; 0 or 1: one). */
    struct bsc_scaleout *so;
    int local_rank, local_size;
};
typedef struct bsc_session study;

/* The steps of bsc_session_open, which bsc_study_run and bsc_study_check
 * take one by one (run chooses its results directory first, check never
 * opens a device). */
/* A session for options o with its pipeline loaded; st->out is unset. */
BSC_INTERNAL bsc_status bsc_session_begin(const bsc_run_options *o, study **out);
/* Host-side preparation: plugins, every type and option checked (layers by
 * create(), shapes inferred), observers, analyses and the report created
 * (they see st->out), dataset files read. Nothing written, no device. */
BSC_INTERNAL bsc_status bsc_session_prepare(study *st);
/* Opens the device and, for a pipeline with a model, uploads the data and
 * binds model, evaluator, optimizer and the trainer's buffers. */
BSC_INTERNAL bsc_status bsc_session_open_device(study *st);
/* The initial weights of a run: the study's seed (same_init), else one
 * keyed by the run's name. */
BSC_INTERNAL uint64_t bsc_session_run_seed(const bsc_pipeline *p, const bsc_run_cfg *rc);

/* Chooses st->out (--resume, --out, or results/<name>-<time>), creates it
 * and takes its lock (BSC_ERR_BUSY naming the holder's pid when another
 * process has it); a resume checks the pipeline is the same and the runs
 * it keeps are whole; stale temporaries are swept. */
BSC_INTERNAL bsc_status bsc_study_choose_out(study *st);
/* `--resume OUT` without a pipeline: the study OUT recorded, its
 * pipeline.yaml and the overrides its manifest lists. The file the study
 * started from is used when it still gives that same pipeline, so its
 * relative paths (plugins, dataset files, checkpoints) resolve as they did;
 * otherwise OUT/pipeline.yaml itself, with a note on log. eff gets the path
 * and overrides, which point into *m and *saved (the caller frees both
 * after the study). Overrides in o are an error. */
BSC_INTERNAL bsc_status bsc_study_resume_source(const bsc_run_options *o, bsc_run_options *eff,
                                                FILE *log, bsc_manifest **m, char **saved);
/* Releases the lock; keep 0 removes a directory this study created and left
 * empty (it failed before writing anything). */
BSC_INTERNAL void bsc_study_release_out(study *st, int keep);

/* Writes OUT/manifest.json from what the study has so far (device,
 * plugins, dataset, the runs' outcomes) with this status and error (may be
 * NULL), and prepares the same manifest marked "crashed" for
 * bsc_study_mark_crashed, until bsc_study_crash_text_drop. */
BSC_INTERNAL bsc_status bsc_study_write_manifest(study *st, const char *status,
                                                 const char *error);
/* Drops the prepared crash text (the study is over). */
BSC_INTERNAL void bsc_study_crash_text_drop(void);

/* ---- study.c's steps that the scheduler (scaleout_internal.h) shares */

/* Trains run i into dir, or on --resume keeps it when dir holds its
 * run.json; st->outcomes[i] says how it ended and, when it did, its final
 * weights are kept on the device (st->finals). */
BSC_INTERNAL bsc_status bsc_study_train_run(study *st, size_t i, const char *dir);
/* Records one failure of the study -- a run, an analysis, the report --
 * that does not stop the rest: logged now, named in the manifest's error
 * and in the final BSC_ERR_PARTIAL. The message is bsc_last_error(). */
BSC_INTERNAL void bsc_study_note_failure(study *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Books run i's end: s is what bsc_study_train_run returned (a failure is
 * noted, with bsc_last_error(), and the run marked failed); dir
 * (malloc'ed) is taken over. Rewrites the manifest. Returns s. */
BSC_INTERNAL bsc_status bsc_study_note_run(study *st, size_t i, char *dir, bsc_status s);
/* Run i's outcome from dir/run.json into st->outcomes[i]. */
BSC_INTERNAL bsc_status bsc_study_read_run(study *st, size_t i, const char *dir);
/* Run i's final weights from dir/final.safetensors onto the device. */
BSC_INTERNAL bsc_status bsc_study_load_final(study *st, size_t i, const char *dir);
/* The observers' study_end, in pipeline order. */
BSC_INTERNAL bsc_status bsc_study_observers_end(study *st, const bsc_study *sv);
/* The study the analyses see: the finished runs in study order, results
 * in st->out, the options' stop hook (logs, on rank 0, the runs they leave
 * out). */
BSC_INTERNAL bsc_study bsc_study_analysis_view(study *st);

/* The report type the pipeline's `report:` mapping (may be NULL) asks for,
 * created with its options checked: `type:` names one, else the only report
 * type loaded (or the one named "report" among several). *type NULL and
 * BSC_OK when there is none and none was asked for, or `enabled: false`. */
BSC_INTERNAL bsc_status bsc_report_create(const bsc_registry *r, const bsc_node *opts,
                                          const char *out_dir, uint64_t seed,
                                          const bsc_run_result *const *planned,
                                          size_t n_planned, const bsc_type **type, void **self);

/* Draws it; logs "report in OUT/report.html" to log (NULL: quiet). */
BSC_INTERNAL bsc_status bsc_report_draw(const bsc_type *type, void *self, const bsc_study *sv,
                                        FILE *log);

#endif
