/* batchscope: `batchscope run` as a library call.
 *
 * bsc_study_run() does the whole data flow of DESIGN.md: parse and validate
 * the pipeline (overrides applied), resolve every plugin type, open the
 * device (the --device selector beats the pipeline's `device:`, which beats
 * auto), then train, observe, analyse and report. OUT/pipeline.yaml and
 * OUT/manifest.json are written atomically; the manifest is rewritten as the
 * study progresses, so an interrupted study says how far it got.
 */
#ifndef BATCHSCOPE_STUDY_H
#define BATCHSCOPE_STUDY_H

#include "batchscope/api.h"
#include <stdio.h>
#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_run_options {
    const char *pipeline_path;     /* NULL with resume_dir: the one OUT recorded */
    const char *device;            /* NULL: the pipeline's, else auto */
    const char *out_dir;           /* NULL: results/<name>-<UTC timestamp> */
    const char *const *overrides;  /* "key.path=value" */
    size_t n_overrides;
    const char *resume_dir;        /* non-NULL: continue this OUT */
    int quiet;                     /* no progress output */
    FILE *log;                     /* progress and log lines (stderr when NULL) */
    /* Polled between training steps and by long analyses (bsc_study's
     * stop_requested): nonzero ends the study as "interrupted", keeping what
     * is finished for --resume. The library installs no signal handler: the
     * program does (the command turns Ctrl-C into this). NULL: never. */
    int (*stop_requested)(void *user);
    void *stop_user;
    const char *gemm;              /* "auto", "clblast", "host" (beats `gemm:`); NULL:
                                      the pipeline's */
    /* Under `mpirun -n N`: seconds a rank may stay silent (dead, hung or
     * unreachable) before the study ends naming it; 0: 300. Every wait
     * for another rank is bounded by it. */
    double mpi_timeout;
    /* Under `mpirun -n N`: whether the results directory is one file system
     * every rank reads (checkpoints are then read from it, not sent).
     * BSC_SHARED_OUT_AUTO (0): each rank tries to read a file rank 0 wrote
     * there; _NO: checkpoints are sent over MPI even where OUT is readable
     * (a file system too slow to share); _YES: a rank that cannot read it
     * ends the study at set-up, naming the rank, instead of having
     * checkpoints sent. */
    int shared_out;
} bsc_run_options;

enum { BSC_SHARED_OUT_AUTO = 0, BSC_SHARED_OUT_YES = 1, BSC_SHARED_OUT_NO = 2 };

/* Runs the study. The failure policy: a run that diverges is a result (its
 * status "diverged"); analyses skip it (a row with status "skipped:
 * diverged" where their table has one) and the report draws the other runs
 * and names the ones left out. A run, an analysis or the report that fails
 * is recorded (manifest "failed", the error naming each) and the rest still
 * happens: BSC_ERR_PARTIAL at the end. BSC_OK when every run completed or
 * diverged and every analysis ran on the runs it could. Errors before
 * anything ran (the pipeline, plugins, data, device, a results directory
 * in use: BSC_ERR_BUSY) return their own status. A stop asked for by
 * stop_requested is BSC_ERR_INTERRUPTED (the command exits 130).
 *
 * With resume_dir and no pipeline_path, the study continues the one OUT
 * recorded: its pipeline.yaml with the --set overrides its manifest lists
 * (read through the original pipeline file while that still gives the
 * same pipeline, so relative paths resolve as they did); overrides given
 * then are an error. With both, the pipeline (and overrides) must give
 * OUT/pipeline.yaml, or the error names the first key that differs and
 * both values. */
BSC_API bsc_status bsc_study_run(const bsc_run_options *o);

/* The versions `batchscope --version` prints and manifest.json records. */
typedef struct bsc_versions {
    const char *batchscope;      /* "0.1.0" */
    const char *git_commit;      /* configure-time; "unknown" outside git */
    char plugin_abi[16];         /* "2.0" */
    const char *clblast;
    const char *libyaml;
    const char *jansson;
    char opencl_icd_loader[160];
} bsc_versions;
BSC_API void bsc_versions_get(bsc_versions *v);

/* For the program's SIGSEGV/SIGBUS handler (the library installs none):
 * marks the manifest of the study this process is running "crashed", with
 * `reason` ("SIGSEGV in plugin layers (dense, forward)") as its error.
 * Async-signal-safe: the text is rendered in advance each time the study
 * writes its manifest, and this only escapes the reason, writes a
 * temporary and renames it. Returns 1 when a manifest was marked, 0 when no
 * study is running or it could not be written. */
BSC_API int bsc_study_mark_crashed(const char *reason);

/* What `batchscope report OUT` does: the report (the type OUT/pipeline.yaml's
 * `report:` names, else the one loaded) drawn from the files in out_dir
 * alone, with no device. Progress lines go to log (NULL: quiet). It takes
 * out_dir's lock (BSC_ERR_BUSY while a study runs there) and sweeps the
 * figures a killed report left half written. */
BSC_API bsc_status bsc_study_report(const char *out_dir, FILE *log);

/* What `batchscope check` does: everything bsc_study_run checks before it
 * opens a device -- the pipeline, plugin types, the dataset files, every
 * layer's and analysis' options, the files analyses name (checkpoints,
 * saved directions: opened and compared with the model) and the model's
 * shapes -- writing nothing but a summary to `out` (may be NULL). Only
 * pipeline_path, the overrides and out_dir of o are used: with out_dir, a
 * file under it that does not exist yet is one the study will write. */
BSC_API bsc_status bsc_study_check(const bsc_run_options *o, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
