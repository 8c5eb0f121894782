/* `batchscope run`: the data flow of DESIGN.md, from YAML to result files. */
#include "batchscope/study.h"

#include "batchscope/fsutil.h"
#include "batchscope/plugin_call.h"
#include "batchscope/runs.h"
#include "batchscope/records.h"
#include "batchscope/results.h"
#include "batchscope/version.h"
#include "scaleout_internal.h"
#include "study_internal.h"
#include "train.h"

#include <libgen.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static bsc_status read_run_json(const char *run_dir, bsc_run_outcome *o)
{
    bsc_run_record *r = NULL;
    char *path = bsc_strdup_printf("%s/" BSC_FILE_RUN_RECORD, run_dir);
    bsc_status s = path ? bsc_run_record_read(path, &r) : bsc_fail(BSC_ERR_NOMEM, "oom");
    free(path);
    if (s != BSC_OK)
        return s;
    /* o keeps the run's own name; its status must outlive r: run.json is
     * written only for a run that ended, completed or diverged. */
    o->status = strcmp(r->status, "diverged") == 0 ? "diverged" : "completed";
    o->epochs_done = r->epochs_done;
    o->diverged_epoch = r->diverged_epoch;
    o->diverged_step = r->diverged_step;
    o->seconds = r->seconds;
    o->train_loss = r->train_loss;
    o->train_acc = r->train_acc;
    o->test_loss = r->test_loss;
    o->test_acc = r->test_acc;
    bsc_run_record_free(r);
    return BSC_OK;
}

static bsc_status keep_final(study *st, size_t i)
{
    bsc_tensor *f = &st->finals[2 * i];
    bsc_status s = bsc_tensor_alloc(st->ctx, BSC_F32, &bsc_model_params(st->model)->shape, &f[0]);
    if (s == BSC_OK)
        s = bsc_tensor_alloc(st->ctx, BSC_F32, &bsc_model_state(st->model)->shape, &f[1]);
    if (s == BSC_OK)
        s = bsc_tensor_copy(st->ctx, bsc_model_params(st->model), &f[0]);
    if (s == BSC_OK)
        s = bsc_tensor_copy(st->ctx, bsc_model_state(st->model), &f[1]);
    return s;
}

static bsc_status load_final(study *st, size_t i, const char *run_dir)
{
    size_t np = bsc_model_n_params(st->model), ns = bsc_model_n_state(st->model);
    float *params = malloc((np ? np : 1) * sizeof(float));
    float *state = calloc(ns ? ns : 1, sizeof(float));
    char *path = bsc_strdup_printf("%s/" BSC_FILE_FINAL_CHECKPOINT, run_dir);
    bsc_status s = params && state && path ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        s = bsc_checkpoint_load(st->model, path, params, state);
    if (s == BSC_OK)
        s = bsc_tensor_write(st->ctx, bsc_model_params(st->model), params);
    if (s == BSC_OK)
        s = bsc_tensor_write(st->ctx, bsc_model_state(st->model), state);
    if (s == BSC_OK)
        s = keep_final(st, i);
    free(params);
    free(state);
    free(path);
    return s;
}

/* Records one failure of the study -- a run, an analysis, the report --
 * that does not stop the rest: logged now, named in the manifest's error and
 * in the final BSC_ERR_PARTIAL. The message is bsc_last_error(). */
void bsc_study_note_failure(study *st, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *why = bsc_last_error()[0] ? bsc_last_error() : "failed";
    fprintf(st->log, "batchscope: %s failed: %s\n", what, why);
    char *f = st->failures ? bsc_strdup_printf("%s; %s: %s", st->failures, what, why)
                           : bsc_strdup_printf("%s: %s", what, why);
    if (f) {
        free(st->failures);
        st->failures = f;
    }
    st->n_failures++;
}

bsc_status bsc_study_read_run(study *st, size_t i, const char *dir)
{
    const bsc_run_cfg *rc = &st->p->training.runs[i];
    st->outcomes[i].batch_size = rc->batch_size;
    st->outcomes[i].name = rc->name;
    return read_run_json(dir, &st->outcomes[i]);
}

bsc_status bsc_study_load_final(study *st, size_t i, const char *dir)
{
    return load_final(st, i, dir);
}

bsc_status bsc_study_train_run(study *st, size_t i, const char *dir)
{
    const bsc_pipeline *p = st->p;
    const bsc_training_cfg *tc = &p->training;
    const bsc_run_cfg *rc = &tc->runs[i];
    bsc_run_outcome *o = &st->outcomes[i];
    bsc_status s;
    char *done = bsc_strdup_printf("%s/" BSC_FILE_RUN_RECORD, dir);
    if (!done)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (st->opt->resume_dir && bsc_path_exists(done)) {
        o->batch_size = rc->batch_size;
        o->name = rc->name;
        s = read_run_json(dir, o);
        if (s == BSC_OK)
            s = load_final(st, i, dir);
        if (s == BSC_OK && !st->opt->quiet)
            fprintf(st->log, "  %-8s already %s: kept\n", rc->name, o->status);
    } else {
        s = bsc_mkdir_p(dir);
        if (s == BSC_OK)
            s = bsc_model_init_host(st->model, bsc_session_run_seed(p, rc), tc->init,
                                    st->init_params, st->init_state);
        if (s == BSC_OK)
            s = bsc_train_run(&st->tr, rc, dir, o);
        if (s == BSC_OK)
            s = keep_final(st, i);
    }
    free(done);
    return s;
}

bsc_status bsc_study_note_run(study *st, size_t i, char *dir, bsc_status s)
{
    const bsc_run_cfg *rc = &st->p->training.runs[i];
    bsc_run_outcome *o = &st->outcomes[i];
    st->results[i].batch_size = (size_t)rc->batch_size;
    st->results[i].name = rc->name;
    st->results[i].dir = NULL;
    if (s != BSC_OK) {
        free(dir);
        bsc_study_note_failure(st, "run %s", rc->name);
        o->batch_size = rc->batch_size;
        o->name = rc->name;
        o->status = "failed";
        bsc_study_write_manifest(st, "running", NULL);
        return s;
    }
    st->results[i].dir = dir;
    st->results[i].status = o->status;
    st->results[i].init_params = &st->tr.w0;
    st->results[i].final_params = &st->finals[2 * i];
    st->results[i].final_state = &st->finals[2 * i + 1];
    bsc_study_write_manifest(st, "running", NULL);
    return BSC_OK;
}

/* Every run in order. A run that fails (out of memory at a huge batch, a
 * broken checkpoint) is recorded and the others still train; only an
 * interruption stops here. */
static bsc_status train_all(study *st)
{
    const bsc_training_cfg *tc = &st->p->training;
    for (size_t i = 0; i < tc->n_runs; i++) {
        st->n_outcomes = i + 1;
        char *dir = bsc_strdup_printf("%s/" BSC_RUNS_DIR "/%s", st->out, tc->runs[i].name);
        if (!dir)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        bsc_status s = bsc_study_train_run(st, i, dir);
        if (s == BSC_ERR_INTERRUPTED) {
            free(dir);
            return s;
        }
        bsc_study_note_run(st, i, dir, s);
    }
    return BSC_OK;
}

/* The finished runs in study order -- completed and diverged; analyses
 * skip the diverged ones themselves, so their tables can say so -- as
 * analyses and the report see them (pointers into st->results, which keeps
 * ownership). */
static size_t finished_runs(study *st)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_outcomes; i++)
        if (st->results[i].dir)
            st->done[n++] = &st->results[i];
    return n;
}

static void log_line(void *user, const char *line)
{
    study *st = user;
    if (st->opt->quiet)
        return;
    bsc_progress_close(&st->progress);   /* not in the middle of a bar */
    fprintf(st->log, "  %s\n", line);
}

static bsc_study study_view(study *st, size_t n_done)
{
    bsc_study sv = {st->ctx, st->model, st->done, n_done, st->out, st->p->seed, st->eval,
                    st->opt->stop_requested, st->opt->stop_user, log_line, st,
                    bsc_progress_report, &st->progress};
    return sv;
}

bsc_study bsc_study_analysis_view(study *st)
{
    bsc_study sv = study_view(st, finished_runs(st));
    for (size_t i = 0; i < sv.n_runs; i++)
        if (!bsc_run_usable(sv.runs[i]) && !st->opt->quiet && !bsc_scaleout_is_worker(st))
            fprintf(st->log, "batchscope: run %s %s: the analyses leave it out\n",
                    sv.runs[i]->name, sv.runs[i]->status);
    return sv;
}

bsc_status bsc_study_observers_end(study *st, const bsc_study *sv)
{
    for (size_t i = 0; i < st->n_obs; i++) {
        bsc_status s = BSC_OK;
        if (!st->obs[i].ops->study_end)
            continue;
        BSC_PLUGIN_CALL(st->obs[i].type, "study_end",
                        s = st->obs[i].ops->study_end(st->obs[i].self, sv));
        if (s == BSC_ERR_INTERRUPTED)
            return s;
        if (s != BSC_OK)
            bsc_study_note_failure(st, "observer %s", st->obs[i].type->name);
    }
    return BSC_OK;
}

/* Observers' study_end (tables over the runs), then the analyses in
 * pipeline order, each on the runs it can use, through their units and
 * completion records (units.c). One that fails is recorded and the next
 * still runs; an interruption stops them all. */
static bsc_status post_analyses(study *st)
{
    bsc_study sv = bsc_study_analysis_view(st);
    bsc_status s = bsc_study_observers_end(st, &sv);
    for (size_t i = 0; s == BSC_OK && i < st->n_ana; i++) {
        if (!st->opt->quiet)
            fprintf(st->log, "batchscope: analysis %s\n", st->ana[i].type->name);
        bsc_status as = bsc_units_analysis(st, i, &sv);
        bsc_progress_close(&st->progress);
        if (as == BSC_ERR_INTERRUPTED)
            return as;
        if (as != BSC_OK)
            bsc_study_note_failure(st, "analysis %s", st->ana[i].type->name);
    }
    return s;
}

/* ---- the report -------------------------------------------------------
 * Figures and OUT/report.html, drawn from the result files alone, after the
 * final manifest is written so that the page shows the study as it ended.
 * It runs unless the pipeline says `report: {enabled: false}` or the study
 * was interrupted -- also when a run or an analysis failed: the page then
 * shows what there is. Its options are checked with everything else,
 * before training (create_report). The report plugin is built only where
 * PLplot is installed: without it the study still succeeds (with a note),
 * unless the pipeline asked for a report. */
static bsc_status run_report(study *st)
{
    if (!st->report) {
        if (!st->opt->quiet && !st->p->report)
            fprintf(st->log, "batchscope: no report plugin (bsc_report needs PLplot); "
                    "figures skipped\n");
        return BSC_OK;
    }
    bsc_study sv = study_view(st, finished_runs(st));
    return bsc_report_draw(st->report, st->report_self, &sv, st->opt->quiet ? NULL : st->log);
}

/* The manifest's final word and the study's status: "interrupted", "failed"
 * (naming what failed) or "completed". */
static bsc_status finish(study *st, bsc_status s)
{
    const char *status = s == BSC_ERR_INTERRUPTED ? "interrupted"
                         : s != BSC_OK || st->n_failures ? "failed" : "completed";
    char *err = s != BSC_OK ? strdup(bsc_last_error())
                            : st->failures ? strdup(st->failures) : NULL;
    bsc_status ms = bsc_study_write_manifest(st, status, err);
    if (s == BSC_OK && st->n_failures)
        s = bsc_fail(BSC_ERR_PARTIAL, "%zu part%s of the study failed (see manifest.json): %s",
                     st->n_failures, st->n_failures == 1 ? "" : "s", st->failures);
    else if (s != BSC_OK)
        bsc_fail(s, "%s", err ? err : bsc_status_str(s));
    else
        s = ms;
    free(err);
    return s;
}

/* The pipeline file's absolute path (the manifest's "pipeline", which a
 * resume reads from another working directory). */
static char *absolute(const char *path)
{
    char *r = realpath(path, NULL);
    return r ? r : strdup(path);
}

bsc_status bsc_study_run(const bsc_run_options *o)
{
    study *st = NULL;
    int out_ready = 0;
    bsc_run_options eff = *o;
    bsc_manifest *recorded = NULL;
    char *saved = NULL;
    bsc_status s = BSC_OK;
    if (!o->pipeline_path && !o->resume_dir)
        return bsc_fail(BSC_ERR_USAGE, "no pipeline: name a PIPELINE.yaml, or --resume OUT");
    if (!o->pipeline_path)
        s = bsc_study_resume_source(o, &eff, o->log ? o->log : stderr, &recorded, &saved);
    /* The session's steps, with the results directory chosen and locked
     * before the components are created (they are told where to write) and
     * nothing written until every check has passed and the device is bound. */
    if (s == BSC_OK)
        s = bsc_session_begin(&eff, &st);
    if (s == BSC_OK) {
        bsc_versions_get(&st->versions);
        if (recorded && recorded->pipeline && eff.pipeline_path == saved)
            st->pipeline_abs = strdup(recorded->pipeline);   /* keep the original's name */
        else
            st->pipeline_abs = absolute(eff.pipeline_path);
        if (!st->pipeline_abs)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    if (s == BSC_OK)
        s = bsc_scaleout_begin(st);
    if (s == BSC_OK && bsc_scaleout_is_worker(st)) {
        /* A rank > 0 of `mpirun -n N`: it runs what rank 0 hands out. */
        s = bsc_scaleout_work(st);
        bsc_scaleout_free(st);
        bsc_session_free(st);
        bsc_manifest_free(recorded);
        free(saved);
        return s;
    }
    if (s == BSC_OK)
        s = bsc_study_choose_out(st);
    if (s == BSC_OK)
        s = bsc_session_prepare(st);
    if (s == BSC_OK)
        s = bsc_session_open_device(st);
    if (s == BSC_OK) {
        char *path = bsc_strdup_printf("%s/" BSC_FILE_PIPELINE, st->out);
        s = path ? bsc_pipeline_write(st->p, path) : bsc_fail(BSC_ERR_NOMEM, "oom");
        free(path);
    }
    if (s == BSC_OK && (s = bsc_study_write_manifest(st, "running", NULL)) == BSC_OK)
        out_ready = 1;
    if (s == BSC_OK && bsc_scaleout_size(st) > 1)
        s = bsc_scaleout_connect(st);
    if (s == BSC_OK && st->p->n_layers && bsc_scaleout_size(st) > 1)
        s = bsc_scaleout_schedule(st);
    else if (s == BSC_OK && st->p->n_layers) {
        s = train_all(st);
        if (s == BSC_OK)
            s = post_analyses(st);
    }
    if (out_ready) {
        /* A study that ran -- whatever failed in it -- is a result: its
         * failures say BSC_ERR_PARTIAL (exit 1), not the kind of error. */
        bsc_status fs = finish(st, s);
        if (s != BSC_OK && s != BSC_ERR_INTERRUPTED) {
            char *e = strdup(bsc_last_error());
            s = bsc_fail(BSC_ERR_PARTIAL, "%s", e ? e : "the study failed");
            free(e);
        } else {
            s = fs;
        }
        if ((s == BSC_OK || s == BSC_ERR_PARTIAL) && !o->quiet)
            fprintf(st->log, "batchscope: results in %s\n", st->out);
    }
    /* Every other rank waits for rank 0's word, whatever happened here
     * (after the manifest: a launcher tearing the job down gives little time). */
    bsc_scaleout_release(st);
    if ((s == BSC_OK || s == BSC_ERR_PARTIAL) && out_ready && st->p->n_layers) {
        bsc_status rs = run_report(st);
        if (rs != BSC_OK) {
            bsc_study_note_failure(st, "report");
            s = finish(st, BSC_OK);
        }
    }
    bsc_study_crash_text_drop();
    if (st)
        bsc_study_release_out(st, out_ready);
    bsc_scaleout_free(st);
    bsc_session_free(st);
    bsc_manifest_free(recorded);
    free(saved);
    return s;
}

bsc_status bsc_study_check(const bsc_run_options *o, FILE *out)
{
    study *st = NULL;
    bsc_status s = bsc_session_begin(o, &st);
    /* With --out, files the study would write there count as its own (an
     * analysis may name a checkpoint the study trains). */
    if (s == BSC_OK && !(st->out = strdup(o->out_dir ? o->out_dir : ".")))
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        st->out_known = o->out_dir != NULL;
    if (s == BSC_OK)
        s = bsc_session_prepare(st);
    if (s == BSC_OK && out) {
        fprintf(out, "%s: ok\n", o->pipeline_path);
        if (st->model) {
            bsc_shape in = st->host->sample;
            char buf[128];
            bsc_shape_format(&in, buf, sizeof buf);
            fprintf(out, "  dataset %s: %zu train, %zu test, input %s, %d classes\n",
                    st->dcfg.name, st->host->train.n, st->host->test.n, buf,
                    st->host->n_classes);
            for (size_t i = 0; i < st->p->n_layers; i++) {
                bsc_shape sh = bsc_model_output_shape(st->model, i);
                bsc_shape_format(&sh, buf, sizeof buf);
                fprintf(out, "  %2zu %-12s -> %s\n", i, st->p->layers[i].type, buf);
            }
            fprintf(out, "  %zu parameters in %zu tensors", bsc_model_n_params(st->model),
                    bsc_model_n_tensors(st->model));
            if (bsc_model_n_state(st->model))
                fprintf(out, ", %zu state values", bsc_model_n_state(st->model));
            fprintf(out, "\n");
        }
    }
    bsc_session_free(st);
    return s;
}
