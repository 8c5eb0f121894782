/* Rank 0 of a study over several ranks (scheduler_internal.h): it hands
 * the units out as ranks ask for them (devices differ in speed), runs units itself
 * when no other rank waits, and alone writes the results: each unit's
 * files or bytes arrive in a RESULT and are written atomically, its
 * completion record last. Phases:
 *   1  the training runs (a run that --resume finds complete is kept);
 *   2  the observers' study_end, then every analysis: its parts (unit ops)
 *      or the analysis whole, each once all runs have ended; an analysis
 *      with parts is merged and finished here once all its parts are in.
 * While rank 0 runs a unit itself, the unit's stop hook (between training
 * steps and evaluations) serves the other ranks: their results are written
 * and new units handed out, but nothing touches the device or a plugin
 * there -- merges and finishes wait for the top of the loop.
 *
 * Rank 0 never waits forever: every rank's heartbeats are watched, and a
 * rank silent past the timeout ends the study with a message naming it
 * and its unit; what is complete stays complete for --resume. */
#include "scheduler_internal.h"

#include "batchscope/fsutil.h"
#include "batchscope/results.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void bsc_sched_fatal(sched *sc, bsc_status s)
{
    if (sc->fatal != BSC_OK)
        return;
    sc->fatal = s;
    sc->fatal_msg = strdup(bsc_last_error());
}

bsc_status bsc_sched_add(sched *sc, unit_kind kind, size_t index, size_t part)
{
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? 2 * sc->cap : 32;
        sunit *u = realloc(sc->units, cap * sizeof *u);
        if (!u)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        sc->units = u;
        sc->cap = cap;
    }
    sc->units[sc->n++] = (sunit){{kind, index, part}, U_TODO, -1};
    return BSC_OK;
}

static size_t parts_of(const sched *sc, const bsc_unit *u)
{
    return u->kind == UNIT_PART ? sc->n_parts[u->index] : 0;
}

/* Progress of analysis k's parts (rank 0's log: a bar or plain lines). */
static void parts_progress(sched *sc, size_t k)
{
    size_t done = 0;
    for (size_t i = 0; i < sc->n; i++)
        done += sc->units[i].u.kind == UNIT_PART && sc->units[i].u.index == k &&
                sc->units[i].state == U_DONE;
    bsc_study_progress(&sc->progress_sv, sc->st->ana[k].type->name, "units", done,
                       sc->n_parts[k]);
}

static void unit_label(const sched *sc, const sunit *su, char *buf, size_t len)
{
    bsc_unit_name(sc->st, &su->u, parts_of(sc, &su->u), buf, len);
}

void bsc_sched_in_flight(sched *sc, int run, int on)
{
    if (sc->st->so->in_flight)
        sc->st->so->in_flight[run] = (unsigned char)on;
}

/* "run bs32 on rank 1 (host), ..." of the units that are running. */
static char *running_text(const sched *sc)
{
    bsc_wbuf b = {0};
    int any = 0;
    for (size_t i = 0; i < sc->n; i++) {
        const sunit *su = &sc->units[i];
        char name[160], line[480];
        if (su->state != U_RUNNING)
            continue;
        unit_label(sc, su, name, sizeof name);
        snprintf(line, sizeof line, "%s%s on rank %d (%s)", any ? ", " : "", name, su->rank,
                 sc->st->so->ranks[su->rank].host);
        bsc_put_raw(&b, line, strlen(line));
        any = 1;
    }
    if (!any)
        bsc_put_raw(&b, "no unit", 7);
    bsc_put_raw(&b, "", 1);
    return b.oom ? NULL : (char *)b.data;
}

/* ---------------------------------------------------------- handing out */

/* The finished runs for a rank's first analysis unit: indices, statuses,
 * and (OUT not shared there) their checkpoints and run.json. */
static bsc_status put_view(sched *sc, bsc_wbuf *b, int shared)
{
    study *st = sc->st;
    size_t n_runs = st->p->training.n_runs, n = 0, k = 0;
    for (size_t i = 0; i < n_runs; i++)
        n += st->results[i].dir != NULL;
    bsc_put_u64(b, n);
    for (size_t i = 0; i < n_runs; i++)
        if (st->results[i].dir) {
            bsc_put_u64(b, i);
            bsc_put_str(b, st->results[i].status);
        }
    if (shared)
        return BSC_OK;
    char **rel = calloc(3 * n + 1, sizeof *rel);
    bsc_status s = rel ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    static const char *const files[] = {BSC_FILE_INIT_CHECKPOINT, BSC_FILE_FINAL_CHECKPOINT,
                                        BSC_FILE_RUN_RECORD};
    for (size_t i = 0; s == BSC_OK && i < n_runs; i++)
        for (int f = 0; st->results[i].dir && f < 3; f++)
            if (!(rel[k++] = bsc_strdup_printf(BSC_RUNS_DIR "/%s/%s", st->results[i].name,
                                               files[f])))
                s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        s = bsc_put_files(b, st->out, (const char *const *)rel, k);
    for (size_t i = 0; rel && i < k; i++)
        free(rel[i]);
    free(rel);
    return s;
}

void bsc_sched_give(sched *sc, int r, size_t id)
{
    so_rank *rk = &sc->st->so->ranks[r];
    sunit *su = &sc->units[id];
    bsc_wbuf b = {0};
    int view = (su->u.kind == UNIT_ANALYSIS || su->u.kind == UNIT_PART) && !rk->has_view;
    bsc_put_u64(&b, id);
    bsc_put_u64(&b, (uint64_t)su->u.kind);
    bsc_put_u64(&b, su->u.index);
    bsc_put_u64(&b, su->u.part);
    bsc_put_u64(&b, parts_of(sc, &su->u));
    bsc_put_u64(&b, (uint64_t)view);
    bsc_status s = view ? put_view(sc, &b, rk->shared) : BSC_OK;
    if (s == BSC_OK)
        s = bsc_so_send(sc->st, r, BSC_TAG_UNIT, &b);
    bsc_wbuf_free(&b);
    if (s != BSC_OK) {
        bsc_sched_fatal(sc, bsc_fail_context(s, "handing a unit to rank %d (%s)", r, rk->host));
        return;
    }
    rk->has_view |= view;
    rk->unit = (long)id;
    rk->unit_t0 = bsc_now();
    su->state = U_RUNNING;
    su->rank = r;
    if (su->u.kind == UNIT_TRAIN)
        bsc_sched_in_flight(sc, (int)su->u.index, 1);
    if (!sc->st->opt->quiet && (su->u.kind == UNIT_TRAIN || su->u.kind == UNIT_ANALYSIS)) {
        char name[160];
        unit_label(sc, su, name, sizeof name);
        fprintf(sc->st->log, "batchscope: %s on rank %d (%s)\n", name, r, rk->host);
    }
}

/* The next unit to hand out: in study order, but an analysis run whole
 * before any part -- a whole analysis is usually long, and parts, many and
 * short, fill in around it (the critical path ends sooner). */
static long next_todo(const sched *sc)
{
    long part = -1;
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->units[i].state != U_TODO)
            continue;
        if (sc->units[i].u.kind != UNIT_PART)
            return (long)i;
        if (part < 0)
            part = (long)i;
    }
    return part;
}

/* ------------------------------------------------------------- results */

char *bsc_sched_run_dir(const study *st, size_t i)
{
    return bsc_strdup_printf("%s/" BSC_RUNS_DIR "/%s", st->out, st->p->training.runs[i].name);
}

/* Writes what a RESULT carries for unit su (which ran fine on rank r). */
static bsc_status commit(sched *sc, sunit *su, bsc_rbuf *rb)
{
    study *st = sc->st;
    size_t k = su->u.index;
    bsc_status s = BSC_OK;
    if (su->u.kind == UNIT_TRAIN) {
        char *dir = bsc_sched_run_dir(st, k);
        if (!dir)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        /* run.json last: the run is complete only once all is in place. */
        if ((s = bsc_get_tree(rb, dir, BSC_FILE_RUN_RECORD, NULL)) == BSC_OK &&
            (s = bsc_study_read_run(st, k, dir)) == BSC_OK) {
            sc->final_loaded[k] = 0;
            bsc_sched_in_flight(sc, (int)k, 0);
            return bsc_study_note_run(st, k, dir, BSC_OK);
        }
        free(dir);
        return s;
    }
    if (su->u.kind == UNIT_DP)
        return BSC_OK;   /* rank 0 writes the run: the shares ship nothing */
    if (su->u.kind == UNIT_ANALYSIS) {
        if ((s = bsc_get_tree(rb, st->out, NULL, NULL)) == BSC_OK)
            s = bsc_units_record_write(st, k, (size_t)-1, 0, sc->sig, NULL, 0);
        return s;
    }
    size_t len = 0;
    const void *data = bsc_get_bytes(rb, &len);
    if ((s = bsc_rbuf_status(rb, "a unit's result")) == BSC_OK)
        s = bsc_units_record_write(st, k, su->u.part, sc->n_parts[k], sc->sig, data, len);
    return s;
}

/* Analysis k failed (in bsc_last_error()): as with one process, noted,
 * and the others go on; its parts not started are dropped (those that
 * finished keep their records for --resume), and it is not finished. The
 * plugin is not called here: a failure may arrive inside rank 0's units. */
static void analysis_failed(sched *sc, size_t k)
{
    study *st = sc->st;
    bsc_study_note_failure(st, "analysis %zu (%s)", k + 1, st->ana[k].type->name);
    for (size_t i = 0; i < sc->n; i++)
        if (sc->units[i].u.index == k && sc->units[i].state == U_TODO &&
            (sc->units[i].u.kind == UNIT_PART || sc->units[i].u.kind == UNIT_ANALYSIS))
            sc->units[i].state = U_FAILED;
    if (sc->finished)
        sc->finished[k] = 1;
}

static void take_result(sched *sc, const bsc_tp_msg *m)
{
    study *st = sc->st;
    so_rank *rk = &st->so->ranks[m->src];
    bsc_rbuf rb = {m->data, m->len, 0, 0};
    uint64_t id = bsc_get_u64(&rb);
    bsc_status ws = (bsc_status)bsc_get_u64(&rb);
    const char *err = bsc_get_str(&rb);
    double seconds = bsc_get_f64(&rb);
    if (rb.bad || id >= sc->n || sc->units[id].rank != m->src ||
        sc->units[id].state != U_RUNNING) {
        bsc_sched_fatal(sc, bsc_fail(BSC_ERR_DATA, "rank %d (%s) sent a result for no unit it was "
                               "given", m->src, rk->host));
        return;
    }
    sunit *su = &sc->units[id];
    char name[160];
    unit_label(sc, su, name, sizeof name);
    rk->unit = -1;
    rk->units++;
    rk->busy += seconds;
    if (ws >= BSC_STATUS_COUNT || ws == BSC_OK) {
        bsc_status s = ws == BSC_OK ? commit(sc, su, &rb)
                                    : bsc_fail(BSC_ERR_DATA, "an unknown status %d", (int)ws);
        if (s != BSC_OK) {
            bsc_sched_fatal(sc, bsc_fail_context(s, "writing the result of %s from rank %d", name,
                                           m->src));
            return;
        }
        su->state = U_DONE;
        if (su->u.kind == UNIT_PART)
            parts_progress(sc, su->u.index);
        if (!st->opt->quiet && su->u.kind == UNIT_TRAIN) {
            const bsc_run_outcome *o = &st->outcomes[su->u.index];
            fprintf(st->log, "batchscope: %s done on rank %d in %.1f s: %s, train %.4f/%.2f%%"
                    "  test %.4f/%.2f%%\n", name, m->src, seconds, o->status, o->train_loss,
                    100 * o->train_acc, o->test_loss, 100 * o->test_acc);
        } else if (!st->opt->quiet && su->u.kind == UNIT_ANALYSIS) {
            fprintf(st->log, "batchscope: %s done on rank %d in %.1f s\n", name, m->src,
                    seconds);
        }
        return;
    }
    su->state = U_FAILED;
    bsc_fail(ws, "on rank %d (%s): %s", m->src, rk->host, err);
    if (su->u.kind == UNIT_DP) {
        /* The run fails (dp_run notes it); the study goes on. */
        if (!sc->dp_error)
            sc->dp_error = strdup(bsc_last_error());
        return;
    }
    if (su->u.kind == UNIT_TRAIN) {
        /* As with one process: a failed run is noted, the others go on. */
        bsc_sched_in_flight(sc, (int)su->u.index, 0);
        bsc_study_note_run(st, su->u.index, NULL, ws);
        return;
    }
    analysis_failed(sc, su->u.index);
}

/* Reads every message that has arrived, writes results, hands out units,
 * watches the ranks' heartbeats and the stop hook. Never touches the
 * device: it runs inside rank 0's own units too. */
void bsc_sched_serve(sched *sc)
{
    study *st = sc->st;
    struct bsc_scaleout *so = st->so;
    bsc_tp_msg m;
    bsc_tp_progress();
    /* Heartbeats and results; a data-parallel step's gradients wait for
     * the step (dp.c). */
    static const int tags[2] = {BSC_TAG_HEARTBEAT, BSC_TAG_RESULT};
    for (int k = 0; k < 2; k++)
        while (bsc_tp_recv(-1, tags[k], 0, &m) == BSC_OK) {
            double t0 = bsc_now();
            so->ranks[m.src].last_seen = t0;
            if (m.tag == BSC_TAG_RESULT && sc->fatal == BSC_OK) {
                take_result(sc, &m);
                so->ranks[0].result_bytes += (int64_t)m.len;
                so->ranks[0].serve += bsc_now() - t0;
            }
            free(m.data);
        }
    if (sc->fatal != BSC_OK)
        return;
    double now = bsc_now();
    for (int r = 1; r < so->tp.size; r++) {
        so_rank *rk = &so->ranks[r];
        if (now - rk->last_seen > so->timeout) {
            char name[160] = "no unit";
            if (rk->unit >= 0)
                unit_label(sc, &sc->units[rk->unit], name, sizeof name);
            bsc_scaleout_lost_peer();
            bsc_sched_fatal(sc, bsc_fail(BSC_ERR_IO, "rank %d (%s) sent nothing for %.0f s (dead, "
                                   "hung or unreachable) while running %s; the units that "
                                   "completed are kept: `batchscope run --resume %s` (with "
                                   "any number of ranks) finishes the study", r, rk->host,
                                   now - rk->last_seen, name, st->out));
            return;
        }
        long id;
        if (rk->ready && rk->unit < 0 && (id = next_todo(sc)) >= 0) {
            double t0 = bsc_now();
            bsc_sched_give(sc, r, (size_t)id);
            so->ranks[0].serve += bsc_now() - t0;
        }
    }
    const bsc_run_options *o = st->opt;
    if (sc->fatal == BSC_OK && o->stop_requested && o->stop_requested(o->stop_user)) {
        char *running = running_text(sc);
        bsc_sched_fatal(sc, bsc_fail(BSC_ERR_INTERRUPTED, "interrupted while %s ran (under mpirun "
                               "a signal is also how the launcher ends the ranks when one "
                               "dies: its message names the rank); the units that "
                               "completed are kept: `batchscope run --resume %s` finishes "
                               "the study", running ? running : "units", st->out));
        free(running);
    }
}

/* The stop hook of rank 0's own units: serve the others, stop on a fault. */
int bsc_sched_stop(void *user)
{
    sched *sc = user;
    bsc_sched_serve(sc);
    return sc->fatal != BSC_OK;
}

/* ------------------------------------------------------- rank 0's units */

static void run_local(sched *sc, size_t id)
{
    study *st = sc->st;
    sunit *su = &sc->units[id];
    so_rank *rk = &st->so->ranks[0];
    size_t k = su->u.index;
    char name[160];
    bsc_status s = BSC_OK;
    double t0 = bsc_now();
    unit_label(sc, su, name, sizeof name);
    su->state = U_RUNNING;
    su->rank = 0;
    rk->unit = (long)id;
    if (!st->opt->quiet && su->u.kind != UNIT_PART)
        fprintf(st->log, "batchscope: %s on rank 0 (%s)\n", name, rk->host);
    if (su->u.kind == UNIT_TRAIN) {
        char *dir = bsc_sched_run_dir(st, k);
        bsc_sched_in_flight(sc, (int)k, 1);
        s = dir ? bsc_study_train_run(st, k, dir) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
        bsc_sched_in_flight(sc, (int)k, 0);
        if (s == BSC_ERR_INTERRUPTED || sc->fatal != BSC_OK) {
            free(dir);   /* the study ends: the run is not noted */
        } else {
            sc->final_loaded[k] = s == BSC_OK;
            bsc_study_note_run(st, k, dir, s);
        }
    } else {
        s = bsc_units_run_one(st, &su->u, sc->n_parts[k], &sc->sv, sc->sig);
    }
    rk->unit = -1;
    rk->units++;
    rk->busy += bsc_now() - t0;
    su->state = s == BSC_OK ? U_DONE : U_FAILED;
    if (s == BSC_OK && su->u.kind == UNIT_PART)
        parts_progress(sc, k);
    if (s == BSC_ERR_INTERRUPTED && sc->fatal == BSC_OK)
        bsc_sched_fatal(sc, s);
    else if (s != BSC_OK && su->u.kind != UNIT_TRAIN && sc->fatal == BSC_OK)
        analysis_failed(sc, k);
}

static int all_ended(const sched *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        if (sc->units[i].state == U_TODO || sc->units[i].state == U_RUNNING)
            return 0;
    return 1;
}

/* Merges and finishes every analysis whose parts are all in (top of the
 * loop: plugin code and the device are safe here). */
static void finish_ready(sched *sc)
{
    study *st = sc->st;
    for (size_t k = 0; sc->analyses_planned && k < st->n_ana && sc->fatal == BSC_OK; k++) {
        if (sc->finished[k] || sc->n_parts[k] == (size_t)-1)
            continue;
        int ready = 1;
        for (size_t i = 0; i < sc->n && ready; i++)
            if (sc->units[i].u.kind == UNIT_PART && sc->units[i].u.index == k)
                ready = sc->units[i].state == U_DONE;
        if (!ready)
            continue;
        bsc_status s = bsc_units_merge_finish(st, k, &sc->sv, sc->n_parts[k], sc->sig);
        if (s == BSC_ERR_INTERRUPTED) {
            bsc_sched_fatal(sc, s);
            return;
        }
        if (s != BSC_OK) {
            analysis_failed(sc, k);
            continue;
        }
        sc->finished[k] = 1;
        if (!st->opt->quiet)
            fprintf(st->log, "batchscope: analysis %zu (%s): %zu units merged\n", k + 1,
                    st->ana[k].type->name, sc->n_parts[k]);
    }
}

/* Runs the units listed so far to their end (or the study's). */
void bsc_sched_drive(sched *sc)
{
    struct timespec nap = {0, 2000000};
    while (sc->fatal == BSC_OK) {
        bsc_sched_serve(sc);
        finish_ready(sc);
        if (sc->fatal != BSC_OK || all_ended(sc))
            break;
        long id = sc->works ? next_todo(sc) : -1;
        if (id >= 0)
            run_local(sc, (size_t)id);
        else if (bsc_scaleout_size(sc->st) > 1)
            bsc_tp_wait(5e-3);   /* until a message comes, or the next round */
        else
            nanosleep(&nap, NULL);
    }
    finish_ready(sc);
}
