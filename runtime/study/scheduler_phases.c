/* What the study's phases put on rank 0's list (scheduler_internal.h):
 * the training runs (kept on --resume, or units), the data-parallel runs
 * (all ranks at once, before the others), the analyses (whole, or their
 * parts); and the schedule of a study over several ranks. */
#include "scheduler_internal.h"

#include "batchscope/fsutil.h"
#include "batchscope/plugin_call.h"
#include "batchscope/results.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------ data parallel */

/* Between the waits of a step: serve the others; give up on a fault or
 * when a rank's share has failed (it will send no gradients). */
static int dp_poll(void *user)
{
    sched *sc = user;
    bsc_sched_serve(sc);
    return sc->fatal != BSC_OK || sc->dp_error != NULL;
}

static bsc_status dp_reduce(void *user, float *v, size_t n)
{
    sched *sc = user;
    return bsc_dp_reduce_root(sc->st, v, n, dp_poll, sc);
}

/* Run i on every rank at once, each a share of every batch (dp.c); rank 0
 * trains its share into OUT/runs/<name>, the others their shares in their
 * scratch. Ranks are idle here: it runs before any other unit. */
static void dp_run(sched *sc, size_t i)
{
    study *st = sc->st;
    int size = st->so->tp.size;
    size_t first = sc->n;
    char *dir = bsc_sched_run_dir(st, i);
    bsc_status s = dir ? bsc_dp_check(st, i) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (int r = 1; s == BSC_OK && r < size; r++)
        if ((s = bsc_sched_add(sc, UNIT_DP, i, (size_t)r)) == BSC_OK)
            bsc_sched_give(sc, r, sc->n - 1);
    if (s == BSC_OK && sc->fatal == BSC_OK) {
        if (!st->opt->quiet)
            fprintf(st->log, "batchscope: run %s data parallel over %d ranks\n",
                    st->p->training.runs[i].name, size);
        bsc_sched_in_flight(sc, (int)i, 1);
        if ((s = bsc_dp_begin(st, dp_reduce, sc)) == BSC_OK)
            s = bsc_study_train_run(st, i, dir);
        bsc_dp_end(st);
        bsc_sched_in_flight(sc, (int)i, 0);
    }
    /* Ranks still in a step wait for a sum that will not come. */
    for (size_t k = first; s != BSC_OK && k < sc->n; k++)
        if (sc->units[k].state == U_RUNNING)
            bsc_dp_abort(st, sc->units[k].rank);
    for (int busy = 1; busy && sc->fatal == BSC_OK;) {
        busy = 0;
        for (size_t k = first; k < sc->n; k++)
            busy |= sc->units[k].state == U_RUNNING;
        if (busy) {
            struct timespec nap = {0, 2000000};
            bsc_sched_serve(sc);
            nanosleep(&nap, NULL);
        }
    }
    if (sc->fatal != BSC_OK || s == BSC_ERR_INTERRUPTED) {
        free(dir);
        return;
    }
    if (sc->dp_error)
        s = bsc_fail(s == BSC_OK ? BSC_ERR_IO : s, "%s", sc->dp_error);
    free(sc->dp_error);
    sc->dp_error = NULL;
    sc->final_loaded[i] = s == BSC_OK;
    bsc_study_note_run(st, i, dir, s);
}

/* ------------------------------------------------------------- phases */

static bsc_status plan_training(sched *sc)
{
    study *st = sc->st;
    size_t n_runs = st->p->training.n_runs;
    bsc_status s = BSC_OK;
    st->n_outcomes = n_runs;
    for (size_t i = 0; s == BSC_OK && i < n_runs; i++) {
        char *dir = bsc_sched_run_dir(st, i);
        char *done = dir ? bsc_strdup_printf("%s/" BSC_FILE_RUN_RECORD, dir) : NULL;
        if (!done) {
            free(dir);
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        }
        if (st->opt->resume_dir && bsc_path_exists(done)) {
            /* Kept here: bsc_study_train_run reads it back. */
            bsc_status rs = bsc_study_train_run(st, i, dir);
            sc->final_loaded[i] = rs == BSC_OK;
            if (rs == BSC_ERR_INTERRUPTED) {
                s = rs;
            } else {
                bsc_study_note_run(st, i, dir, rs);
                dir = NULL;
            }
        } else if (st->p->training.runs[i].data_parallel) {
            sc->dp[i] = 1;
        } else {
            s = bsc_sched_add(sc, UNIT_TRAIN, i, 0);
        }
        free(dir);
        free(done);
    }
    return s;
}

static bsc_status plan_analyses(sched *sc)
{
    study *st = sc->st;
    int resume = st->opt->resume_dir != NULL;
    bsc_status s = BSC_OK;
    for (size_t k = 0; s == BSC_OK && k < st->n_ana; k++) {
        const bsc_analysis_ops *a = bsc_units_ops(st, k);
        int have = 0;
        if (!a) {
            sc->n_parts[k] = (size_t)-1;
            if (resume && (s = bsc_units_record_read(st, k, (size_t)-1, 0, sc->sig, &have,
                                                     NULL, NULL)) == BSC_OK && have)
                sc->finished[k] = 1;
            else if (s == BSC_OK)
                s = bsc_sched_add(sc, UNIT_ANALYSIS, k, 0);
            continue;
        }
        size_t n = 0;
        bsc_status ps;
        BSC_PLUGIN_CALL(st->ana[k].type, "plan", ps = a->plan(st->ana[k].self, &sc->sv, &n));
        if (ps == BSC_ERR_INTERRUPTED)
            return ps;
        if (ps != BSC_OK) {
            /* As with one process: noted, and the other analyses go on. */
            bsc_study_note_failure(st, "analysis %zu (%s)", k + 1, st->ana[k].type->name);
            sc->finished[k] = 1;
            sc->n_parts[k] = 0;
            continue;
        }
        sc->n_parts[k] = n;
        for (size_t u = 0; s == BSC_OK && u < n; u++) {
            if (resume && (s = bsc_units_record_read(st, k, u, n, sc->sig, &have, NULL,
                                                     NULL)) == BSC_OK && have) {
                /* A kept part counts as done: it is merged with the others. */
                if ((s = bsc_sched_add(sc, UNIT_PART, k, u)) == BSC_OK)
                    sc->units[sc->n - 1].state = U_DONE;
                continue;
            }
            if (s == BSC_OK)
                s = bsc_sched_add(sc, UNIT_PART, k, u);
        }
    }
    return s;
}

bsc_status bsc_scaleout_schedule(study *st)
{
    size_t n_runs = st->p->training.n_runs, n_ana = st->n_ana;
    sched sc = {.st = st};
    bsc_status s = BSC_OK;
    /* Among a few ranks rank 0's device is a large share of the whole, so
     * it works too (serving the others between its steps); among many its
     * quick answers are worth more (BATCHSCOPE_RANK0_WORKS=0/1 decides). */
    const char *works = getenv("BATCHSCOPE_RANK0_WORKS");
    sc.works = works && *works ? strcmp(works, "0") != 0 : st->so->tp.size <= 16;
    sc.final_loaded = calloc(n_runs ? n_runs : 1, sizeof *sc.final_loaded);
    sc.dp = calloc(n_runs ? n_runs : 1, 1);
    sc.n_parts = calloc(n_ana ? n_ana : 1, sizeof *sc.n_parts);
    sc.finished = calloc(n_ana ? n_ana : 1, sizeof *sc.finished);
    st->so->in_flight = calloc(n_runs ? n_runs : 1, 1);
    if (!sc.final_loaded || !sc.dp || !sc.n_parts || !sc.finished || !st->so->in_flight)
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    /* Rank 0's own training polls the others between steps. */
    st->tr.stop_requested = bsc_sched_stop;
    st->tr.stop_user = &sc;
    if (s == BSC_OK)
        s = plan_training(&sc);
    /* Data-parallel runs first, while every rank is free to take part. */
    for (size_t i = 0; s == BSC_OK && i < n_runs && sc.fatal == BSC_OK; i++)
        if (sc.dp[i])
            dp_run(&sc, i);
    if (s == BSC_OK) {
        bsc_sched_drive(&sc);
        s = sc.fatal;
    }
    /* Runs trained elsewhere: their final weights onto this device. */
    for (size_t i = 0; s == BSC_OK && i < n_runs; i++)
        if (st->results[i].dir && !sc.final_loaded[i])
            s = bsc_study_load_final(st, i, st->results[i].dir);
    if (s == BSC_OK) {
        sc.sv = bsc_study_analysis_view(st);
        sc.sv.stop_requested = bsc_sched_stop;
        sc.sv.stop_user = &sc;
        sc.progress_sv = sc.sv;
        sc.sv.progress = NULL;
        s = bsc_study_observers_end(st, &sc.sv);
    }
    if (s == BSC_OK && !(sc.sig = bsc_units_runs_signature(st, &sc.sv)))
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK) {
        sc.n = 0;
        s = plan_analyses(&sc);
        sc.analyses_planned = 1;
    }
    if (s == BSC_OK) {
        bsc_sched_drive(&sc);
        s = sc.fatal;
    }
    if (s != BSC_OK && sc.fatal_msg)
        bsc_fail(s, "%s", sc.fatal_msg);
    st->tr.stop_requested = st->opt->stop_requested;
    st->tr.stop_user = st->opt->stop_user;
    free(sc.fatal_msg);
    free(sc.units);
    free(sc.n_parts);
    free(sc.finished);
    free(sc.final_loaded);
    free(sc.dp);
    free(sc.dp_error);
    free(sc.sig);
    return s;
}
