/* `batchscope run`: the data flow of DESIGN.md, from YAML to result files. */
#include "batchscope/study.h"

#include "batchscope/fsutil.h"
#include "batchscope/records.h"
#include "batchscope/results.h"
#include "batchscope/version.h"
#include "scaleout_internal.h"
#include "study_internal.h"
#include "train.h"

#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* The manifest's parts that exist so far (no device before it opens, ...). */
static bsc_status fill_manifest(const study *st, bsc_manifest *m)
{
    bsc_status s = BSC_OK;
    if (st->ctx) {
        const bsc_device_info *d = &st->ctx->info;
        bsc_manifest_device *md;
        if ((s = bsc_manifest_set_device(m, &md)) != BSC_OK)
            return s;
        md->index = d->index;
        md->platform = d->platform_name;
        md->vendor = d->vendor;
        md->name = d->name;
        md->type = bsc_device_type_name(d->type);
        md->driver_version = d->driver_version;
        md->device_version = d->device_version;
        md->opencl_c_version = d->opencl_c_version;
        md->compute_units = (long)d->compute_units;
        md->global_mem = (int64_t)d->global_mem;
    }
    for (size_t i = 0; st->reg && i < bsc_registry_n_plugins(st->reg); i++) {
        const bsc_plugin_info *pi = bsc_registry_plugin(st->reg, i);
        bsc_manifest_plugin *mp;
        if ((s = bsc_manifest_add_plugin(m, &mp)) != BSC_OK)
            return s;
        mp->name = pi->desc->name;
        mp->version = pi->desc->version;
        mp->path = pi->path;
    }
    if (st->model) {
        m->parameters = (int64_t)bsc_model_n_params(st->model);
        m->state = (int64_t)bsc_model_n_state(st->model);
    }
    if (st->have_data) {
        bsc_manifest_dataset *ds;
        if ((s = bsc_manifest_set_dataset(m, &ds)) != BSC_OK)
            return s;
        ds->name = st->dcfg.name;
        ds->train = (int64_t)st->data.train.n;
        ds->test = (int64_t)st->data.test.n;
        ds->validation = (int64_t)st->data.validation.n;
    }
    for (size_t i = 0; i < st->n_outcomes; i++) {
        bsc_run_record *r;
        if (!st->outcomes[i].status || (st->so && st->so->in_flight && st->so->in_flight[i]))
            continue;
        if ((s = bsc_manifest_add_run(m, &r)) != BSC_OK)
            return s;
        bsc_run_outcome_record(&st->outcomes[i], r);
    }
    if (s == BSC_OK && st->so)
        s = bsc_scaleout_fill_manifest(st, m);
    return s;
}

static bsc_status write_manifest(study *st, const char *status, const char *error)
{
    bsc_manifest *m = NULL;
    char abi[32], now[32];
    char *path = bsc_strdup_printf("%s/" BSC_FILE_MANIFEST, st->out);
    bsc_status s = path ? bsc_manifest_new(&m) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s != BSC_OK)
        goto cleanup;
    snprintf(abi, sizeof abi, "%d.%d", BSC_ABI_MAJOR, BSC_ABI_MINOR);
    bsc_utc_timestamp(now, sizeof now);
    m->batchscope_version = bsc_version();
    m->plugin_abi = abi;
    m->pipeline = st->p->path;
    m->name = st->p->name;
    m->seed = st->p->seed;
    m->status = status;
    m->error = error;
    m->started = st->started;
    m->updated = now;
    m->seconds = bsc_now() - st->t0;
    if ((s = fill_manifest(st, m)) == BSC_OK)
        s = bsc_manifest_write(path, m);
cleanup:
    bsc_manifest_free(m);
    free(path);
    return s;
}

bsc_status bsc_study_write_manifest(study *st, const char *status, const char *error)
{
    return write_manifest(st, status, error);
}

static bsc_status choose_out(study *st)
{
    const bsc_run_options *o = st->opt;
    if (o->resume_dir && o->out_dir && strcmp(o->resume_dir, o->out_dir) != 0)
        return bsc_fail(BSC_ERR_USAGE, "--resume %s and --out %s name different directories",
                        o->resume_dir, o->out_dir);
    if (o->resume_dir)
        st->out = strdup(o->resume_dir);
    else if (o->out_dir)
        st->out = strdup(o->out_dir);
    else {
        char ts[32];
        bsc_utc_timestamp(ts, sizeof ts);
        for (char *c = ts; *c; c++)
            if (*c == ':')
                *c = '-';
        st->out = bsc_strdup_printf("results/%s-%s", st->p->name, ts);
    }
    if (!st->out)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (o->resume_dir) {
        char *saved = bsc_strdup_printf("%s/" BSC_FILE_PIPELINE, st->out);
        char *mine = bsc_strdup_printf("%s/.pipeline.resume.yaml", st->out);
        char *a = NULL, *b = NULL;
        bsc_status s = BSC_OK;
        if (!saved || !mine)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        else if (!bsc_path_exists(saved))
            s = bsc_fail(BSC_ERR_USAGE, "--resume %s: no pipeline.yaml there (not a results "
                         "directory?)", st->out);
        else if ((s = bsc_pipeline_write(st->p, mine)) == BSC_OK &&
                 (s = bsc_read_file(saved, &a, NULL)) == BSC_OK &&
                 (s = bsc_read_file(mine, &b, NULL)) == BSC_OK && strcmp(a, b) != 0)
            s = bsc_fail(BSC_ERR_USAGE, "--resume %s: the pipeline (with its overrides) differs "
                         "from %s; resume with the same pipeline and --set options",
                         st->out, saved);
        if (mine)
            remove(mine);
        free(a);
        free(b);
        free(saved);
        free(mine);
        return s;
    }
    char *manifest = bsc_strdup_printf("%s/" BSC_FILE_MANIFEST, st->out);
    int exists = manifest && bsc_path_exists(manifest);
    free(manifest);
    if (exists)
        return bsc_fail(BSC_ERR_USAGE, "%s already holds results; use --resume %s to continue "
                        "it or --out to choose another directory", st->out, st->out);
    return BSC_OK;
}

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
        /* One run failing (e.g. out of memory at a huge batch) must not
         * lose the others: note it and go on. */
        fprintf(st->log, "batchscope: run %s failed: %s\n", rc->name, bsc_last_error());
        o->batch_size = rc->batch_size;
        o->name = rc->name;
        o->status = "failed";
        write_manifest(st, "running", NULL);
        return s;
    }
    st->results[i].dir = dir;
    st->results[i].status = o->status;
    st->results[i].init_params = &st->tr.w0;
    st->results[i].final_params = &st->finals[2 * i];
    st->results[i].final_state = &st->finals[2 * i + 1];
    write_manifest(st, "running", NULL);
    return BSC_OK;
}

static bsc_status train_all(study *st)
{
    const bsc_training_cfg *tc = &st->p->training;
    bsc_status failed = BSC_OK;
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
        if (bsc_study_note_run(st, i, dir, s) != BSC_OK)
            failed = s;
    }
    if (failed != BSC_OK)
        return bsc_fail(failed, "one or more runs failed (see manifest.json)");
    return BSC_OK;
}

/* The finished runs in study order, as analyses and the report see them
 * (pointers into st->results, which keeps ownership). */
static size_t finished_runs(study *st)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_outcomes; i++)
        if (st->results[i].dir)
            st->done[n++] = &st->results[i];
    return n;
}

static bsc_study study_view(study *st, size_t n_done)
{
    bsc_study sv = {st->ctx, st->model, st->done, n_done, st->out, st->p->seed, st->eval,
                    st->opt->stop_requested, st->opt->stop_user};
    return sv;
}

bsc_study bsc_study_analysis_view(study *st)
{
    return study_view(st, finished_runs(st));
}

bsc_status bsc_study_observers_end(study *st, const bsc_study *sv)
{
    bsc_status s = BSC_OK;
    for (size_t i = 0; s == BSC_OK && i < st->n_obs; i++) {
        if (!st->obs[i].ops->study_end)
            continue;
        if ((s = st->obs[i].ops->study_end(st->obs[i].self, sv)) != BSC_OK)
            bsc_fail_context(s, "observer %s", st->obs[i].type->name);
    }
    return s;
}

/* Observers' study_end (tables over the runs), then the analyses in
 * pipeline order (through their units and completion records, units.c). */
static bsc_status post_analyses(study *st)
{
    bsc_study sv = study_view(st, finished_runs(st));
    bsc_status s = bsc_study_observers_end(st, &sv);
    for (size_t i = 0; s == BSC_OK && i < st->n_ana; i++) {
        if (!st->opt->quiet)
            fprintf(st->log, "batchscope: analysis %s\n", st->ana[i].type->name);
        if ((s = bsc_units_analysis(st, i, &sv)) != BSC_OK)
            bsc_fail_context(s, "analysis %s", st->ana[i].type->name);
    }
    return s;
}

/* ---- the report -------------------------------------------------------
 * Figures and OUT/report.html, drawn from the result files alone, after the
 * final manifest is written so that the page shows the study as it ended.
 * It runs unless the pipeline says `report: {enabled: false}`. Its options
 * are checked with everything else, before training (create_report). The
 * report plugin is built only where PLplot is installed: without it the
 * study still succeeds (with a note), unless the pipeline asked for a report. */
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

bsc_status bsc_study_run(const bsc_run_options *o)
{
    study *st = NULL;
    int out_ready = 0;
    /* The session's steps, with the results directory chosen before the
     * components are created (they are told where to write) and nothing
     * written until every check has passed and the device is bound. */
    bsc_status s = bsc_session_begin(o, &st);
    if (s == BSC_OK)
        s = bsc_scaleout_begin(st);
    if (s == BSC_OK && bsc_scaleout_is_worker(st)) {
        /* A rank > 0 of `mpirun -n N`: it runs what rank 0 hands out. */
        s = bsc_scaleout_work(st);
        bsc_scaleout_free(st);
        bsc_session_free(st);
        return s;
    }
    if (s == BSC_OK)
        s = choose_out(st);
    if (s == BSC_OK)
        s = bsc_session_prepare(st);
    if (s == BSC_OK)
        s = bsc_session_open_device(st);
    if (s == BSC_OK)
        s = bsc_mkdir_p(st->out);
    if (s == BSC_OK) {
        char *path = bsc_strdup_printf("%s/" BSC_FILE_PIPELINE, st->out);
        s = path ? bsc_pipeline_write(st->p, path) : bsc_fail(BSC_ERR_NOMEM, "oom");
        free(path);
    }
    if (s == BSC_OK && (s = write_manifest(st, "running", NULL)) == BSC_OK)
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
        const char *status = s == BSC_OK ? "completed"
                             : s == BSC_ERR_INTERRUPTED ? "interrupted" : "failed";
        char *err = s == BSC_OK ? NULL : strdup(bsc_last_error());
        bsc_status ms = write_manifest(st, status, err);
        if (s == BSC_OK)
            s = ms;
        else
            bsc_fail(s, "%s", err ? err : bsc_status_str(s));
        free(err);
        if (s == BSC_OK && !o->quiet)
            fprintf(st->log, "batchscope: results in %s\n", st->out);
    }
    /* Every other rank waits for rank 0's word, whatever happened here
     * (after the manifest: a launcher tearing the job down gives little time). */
    bsc_scaleout_release(st);
    if (s == BSC_OK && out_ready && st->p->n_layers) {
        s = run_report(st);
        if (s != BSC_OK) {
            char *err = strdup(bsc_last_error());
            write_manifest(st, "failed", err);
            bsc_fail(s, "%s", err ? err : bsc_status_str(s));
            free(err);
        }
    }
    bsc_scaleout_free(st);
    bsc_session_free(st);
    return s;
}

bsc_status bsc_study_check(const bsc_run_options *o, FILE *out)
{
    study *st = NULL;
    bsc_status s = bsc_session_begin(o, &st);
    if (s == BSC_OK && !(st->out = strdup(".")))
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
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
