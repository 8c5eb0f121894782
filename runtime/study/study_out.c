/* The results directory of `batchscope run`: which one, its lock, and what
 * a resume may keep of it. */
#include "batchscope/study.h"

#include "batchscope/fsutil.h"
#include "batchscope/records.h"
#include "batchscope/results.h"
#include "batchscope/runs.h"
#include "study_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A resume keeps the runs that have a run.json: each must be whole --
 * its run.json readable and its metrics.csv the table of the epochs it
 * says it finished -- or the resume stops before training anything, naming
 * the file, instead of reporting a garbled run as NaN. */
static bsc_status check_kept_runs(const study *st)
{
    const bsc_training_cfg *tc = &st->p->training;
    bsc_status s = BSC_OK;
    for (size_t i = 0; s == BSC_OK && st->p->has_training && i < tc->n_runs; i++) {
        char *dir = bsc_strdup_printf("%s/" BSC_RUNS_DIR "/%s", st->out, tc->runs[i].name);
        char *json = dir ? bsc_strdup_printf("%s/" BSC_FILE_RUN_RECORD, dir) : NULL;
        bsc_run_record *r = NULL;
        bsc_table *t = NULL;
        if (!json)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        else if (bsc_path_exists(json) && (s = bsc_run_record_read(json, &r)) == BSC_OK)
            s = bsc_run_metrics_read(dir, r->epochs_done, &t);
        if (s != BSC_OK && s != BSC_ERR_NOMEM)
            bsc_fail_context(s, "--resume %s: run %s finished but cannot be kept (remove "
                             "%s to train it again)", st->out, tc->runs[i].name,
                             dir ? dir : "its directory");
        bsc_table_free(t);
        bsc_run_record_free(r);
        free(json);
        free(dir);
    }
    return s;
}

/* 0 in *differs when the pipeline p (overrides applied) is the one saved
 * at `saved`; otherwise 1, with the first differing key and both values in
 * msg. */
static bsc_status compare_saved(const bsc_pipeline *p, const char *saved, int *differs,
                                char *msg, size_t len)
{
    bsc_node *old = NULL;
    *differs = 0;
    bsc_status s = bsc_node_parse_file(saved, &old);
    if (s != BSC_OK)
        return s;
    char key[256], va[160], vb[160];
    const bsc_node *na, *nb;
    if (bsc_node_diff(p->root, old, key, sizeof key, &na, &nb)) {
        *differs = 1;
        bsc_node_flow(na, va, sizeof va);
        bsc_node_flow(nb, vb, sizeof vb);
        snprintf(msg, len, "the first difference is %s: %s in %s with the --set options "
                 "given, %s in %s", key, va, p->path, vb, saved);
    }
    bsc_node_free(old);
    return BSC_OK;
}

/* The pipeline a resume continues must be the one that started it. */
static bsc_status check_same_pipeline(const study *st)
{
    char *saved = bsc_strdup_printf("%s/" BSC_FILE_PIPELINE, st->out);
    char msg[768];
    int differs = 0;
    bsc_status s = saved ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && !bsc_path_exists(saved))
        s = bsc_fail(BSC_ERR_USAGE, "--resume %s: no pipeline.yaml there (not a results "
                     "directory?)", st->out);
    if (s == BSC_OK)
        s = compare_saved(st->p, saved, &differs, msg, sizeof msg);
    if (s == BSC_OK && differs)
        s = bsc_fail(BSC_ERR_USAGE, "--resume %s: the pipeline differs from the one the study "
                     "started with: %s. Resume with the same pipeline and --set options, or "
                     "with `batchscope run --resume %s` alone", st->out, msg, st->out);
    free(saved);
    return s;
}

bsc_status bsc_study_resume_source(const bsc_run_options *o, bsc_run_options *eff, FILE *log,
                                   bsc_manifest **m, char **saved)
{
    char *mpath = bsc_strdup_printf("%s/" BSC_FILE_MANIFEST, o->resume_dir);
    *saved = bsc_strdup_printf("%s/" BSC_FILE_PIPELINE, o->resume_dir);
    bsc_status s = mpath && *saved ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && o->n_overrides)
        s = bsc_fail(BSC_ERR_USAGE, "--resume %s without a pipeline takes no --set: it "
                     "applies the overrides the study started with", o->resume_dir);
    if (s == BSC_OK && (!bsc_path_exists(mpath) || !bsc_path_exists(*saved)))
        s = bsc_fail(BSC_ERR_USAGE, "--resume %s: no %s there (not a results directory?)",
                     o->resume_dir, bsc_path_exists(mpath) ? "pipeline.yaml" : "manifest.json");
    if (s == BSC_OK && (s = bsc_manifest_read(mpath, m)) != BSC_OK)
        bsc_fail_context(s, "--resume %s", o->resume_dir);
    free(mpath);
    if (s != BSC_OK)
        return s;
    eff->overrides = (*m)->overrides;
    eff->n_overrides = (*m)->n_overrides;
    eff->pipeline_path = *saved;
    const char *orig = (*m)->pipeline;
    if (orig && orig[0] == '/' && bsc_path_exists(orig)) {
        bsc_pipeline *p = NULL;
        int differs = 1;
        char msg[768];
        if (bsc_pipeline_load(orig, eff->overrides, eff->n_overrides, &p) == BSC_OK &&
            compare_saved(p, *saved, &differs, msg, sizeof msg) == BSC_OK && !differs)
            eff->pipeline_path = orig;
        else if (!o->quiet)
            fprintf(log, "batchscope: %s is not the pipeline the study started with any more; "
                    "resuming the one in %s\n", orig, *saved);
        bsc_pipeline_free(p);
        bsc_clear_error();
    }
    return BSC_OK;
}

/* Temporaries a killed writer left (SIGKILL cannot be caught): with the
 * lock held nobody else writes here, so every one is stale. */
static bsc_status sweep_temporaries(const study *st)
{
    static const char *const subdirs[] = {"", "/" BSC_ANALYSES_DIR, "/" BSC_FIGURES_DIR};
    bsc_status s = BSC_OK;
    for (size_t i = 0; s == BSC_OK && i < sizeof subdirs / sizeof *subdirs; i++) {
        char *d = bsc_strdup_printf("%s%s", st->out, subdirs[i]);
        s = d ? bsc_remove_stale_temporaries(d, NULL) : bsc_fail(BSC_ERR_NOMEM, "oom");
        free(d);
    }
    const bsc_training_cfg *tc = &st->p->training;
    for (size_t i = 0; s == BSC_OK && st->p->has_training && i < tc->n_runs; i++) {
        char *d = bsc_strdup_printf("%s/" BSC_RUNS_DIR "/%s", st->out, tc->runs[i].name);
        s = d ? bsc_remove_stale_temporaries(d, NULL) : bsc_fail(BSC_ERR_NOMEM, "oom");
        free(d);
    }
    return s;
}

bsc_status bsc_study_choose_out(study *st)
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
    st->out_known = 1;
    struct stat sb;
    if (o->resume_dir && (stat(st->out, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        return bsc_fail(BSC_ERR_USAGE, "--resume %s: no such results directory", st->out);
    /* The directory must exist to hold its lock, and the lock must be held
     * before anything in it is looked at: two runs that both found no
     * manifest.json would otherwise both write there. */
    st->out_created = !bsc_path_exists(st->out);
    bsc_status s = bsc_mkdir_p(st->out);
    long stale = 0;
    if (s == BSC_OK)
        s = bsc_dir_lock_acquire(&st->lock, st->out, &stale);
    if (s != BSC_OK)
        return s;
    if (stale && !o->quiet)
        fprintf(st->log, "batchscope: %s was left locked by pid %ld, which is gone: taking "
                "it over\n", st->out, stale);
    if (o->resume_dir) {
        if ((s = check_same_pipeline(st)) == BSC_OK && (s = check_kept_runs(st)) == BSC_OK)
            s = sweep_temporaries(st);
        return s;
    }
    char *manifest = bsc_strdup_printf("%s/" BSC_FILE_MANIFEST, st->out);
    int exists = manifest && bsc_path_exists(manifest);
    free(manifest);
    if (exists)
        return bsc_fail(BSC_ERR_USAGE, "%s already holds results; use --resume %s to continue "
                        "it or --out to choose another directory", st->out, st->out);
    return sweep_temporaries(st);
}

void bsc_study_release_out(study *st, int keep)
{
    if (st->lock.fd < 0)
        return;
    /* A study that stopped before writing anything leaves no directory
     * behind that it created: only the lock file would be in it. */
    if (!keep && st->out_created && st->lock.path) {
        unlink(st->lock.path);
        rmdir(st->out);
    }
    bsc_dir_lock_release(&st->lock);
}
