/* A rank > 0 of a study (scaleout_internal.h): it sets up like rank 0 (the same
 * pipeline, plugins, data and model, its own device), says hello, and runs
 * the units rank 0 hands it in its private scratch directory, shipping
 * each unit's files or bytes back. It never writes into rank 0's results.
 * Between steps and evaluations it looks for rank 0's word: STOP ends the
 * unit at once, and a rank 0 silent past the timeout ends this rank. */
#include "scaleout_internal.h"

#include "batchscope/fsutil.h"
#include "batchscope/plugin_call.h"
#include "batchscope/results.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct worker {
    study *st;
    double last_seen;     /* of rank 0 */
    int stop;             /* rank 0 said STOP */
    int lost;             /* rank 0 fell silent */
    int have_view;        /* the finished runs are loaded */
    size_t *planned;      /* per analysis: n_units + 1 once planned here, else 0 */
    size_t started;       /* units started */
} worker;

/* Reads what rank 0 sent while a unit runs: heartbeats and STOP. */
static void poll_rank0(worker *w)
{
    bsc_tp_msg m;
    bsc_tp_progress();
    /* Not a data-parallel step's sum: that one its step takes (dp.c). */
    while (!w->stop && bsc_tp_recv(0, BSC_TAG_HEARTBEAT, 0, &m) == BSC_OK) {
        w->last_seen = bsc_now();
        free(m.data);
    }
    if (!w->stop && bsc_tp_recv(0, BSC_TAG_STOP, 0, &m) == BSC_OK) {
        w->last_seen = bsc_now();
        w->stop = 1;
        free(m.data);
    }
    if (!w->stop && bsc_now() - w->last_seen > w->st->so->timeout) {
        w->lost = 1;
        bsc_scaleout_lost_peer();
    }
}

/* The stop hook of a unit's training and analyses. */
static int worker_stop(void *user)
{
    worker *w = user;
    poll_rank0(w);
    const bsc_run_options *o = w->st->opt;
    return w->stop || w->lost || (o->stop_requested && o->stop_requested(o->stop_user));
}

/* The next message from rank 0 that is not a heartbeat. */
static bsc_status wait_rank0(worker *w, bsc_tp_msg *m)
{
    for (;;) {
        bsc_tp_progress();
        bsc_status s = bsc_tp_recv(0, -1, 0.05, m);
        if (s == BSC_OK) {
            w->last_seen = bsc_now();
            if (m->tag != BSC_TAG_HEARTBEAT)
                return BSC_OK;
            free(m->data);
            continue;
        }
        if (s != BSC_ERR_NOT_FOUND)
            return s;
        if (bsc_now() - w->last_seen > w->st->so->timeout) {
            bsc_scaleout_lost_peer();
            return bsc_fail(BSC_ERR_IO, "rank %d (%s): rank 0 sent nothing for %.0f s (dead, "
                            "hung or unreachable; --mpi-timeout sets the limit)",
                            w->st->so->tp.rank, w->st->so->tp.host, w->st->so->timeout);
        }
    }
}

static bsc_status send_hello(worker *w, bsc_status setup, const char *error)
{
    study *st = w->st;
    bsc_wbuf b = {0};
    const bsc_device_info *d = st->ctx ? &st->ctx->info : NULL;
    bsc_put_u64(&b, (uint64_t)setup);
    bsc_put_str(&b, error);
    bsc_put_str(&b, st->so->tp.host);
    bsc_put_u64(&b, (uint64_t)st->so->tp.local_rank);
    bsc_put_u64(&b, d ? (uint64_t)d->index : (uint64_t)-1);
    bsc_put_str(&b, d ? d->platform_name : NULL);
    bsc_put_str(&b, d ? d->vendor : NULL);
    bsc_put_str(&b, d ? d->name : NULL);
    bsc_put_str(&b, d ? bsc_device_type_name(d->type) : NULL);
    bsc_put_str(&b, d ? d->driver_version : NULL);
    bsc_put_u64(&b, (uint64_t)st->so->shared_fs);
    bsc_status s = bsc_so_send(st, 0, BSC_TAG_HELLO, &b);
    bsc_wbuf_free(&b);
    return s;
}

/* SETUP: is rank 0's results directory readable here (a shared file
 * system)? Then checkpoints are read from it instead of being sent. */
static void take_setup(worker *w, const bsc_tp_msg *m)
{
    struct bsc_scaleout *so = w->st->so;
    bsc_rbuf r = {m->data, m->len, 0, 0};
    const char *out = bsc_get_str(&r), *probe = bsc_get_str(&r), *nonce = bsc_get_str(&r);
    char *text = NULL;
    size_t len = 0;
    if (r.bad)
        return;
    so->out_abs = strdup(out);
    so->shared_fs = so->out_abs && bsc_read_file(probe, &text, &len) == BSC_OK &&
                    len == strlen(nonce) && memcmp(text, nonce, len) == 0;
    free(text);
    /* --shared-out no (or BATCHSCOPE_SHARED_OUT=0) has checkpoints sent
     * even where OUT is readable (a file system too slow to share). */
    const char *force = getenv("BATCHSCOPE_SHARED_OUT");
    if ((force && strcmp(force, "0") == 0) || w->st->opt->shared_out == BSC_SHARED_OUT_NO)
        so->shared_fs = 0;
}

/* The finished runs (the analyses' study), sent with a rank's first
 * analysis unit: their indices and statuses, and their checkpoints when
 * OUT is not shared. */
static bsc_status take_view(worker *w, bsc_rbuf *r)
{
    study *st = w->st;
    size_t n_runs = st->p->training.n_runs;
    uint64_t n = bsc_get_u64(r);
    bsc_status s = BSC_OK;
    for (size_t i = 0; i < n_runs; i++) {
        free((char *)st->results[i].dir);
        st->results[i].dir = NULL;
    }
    for (uint64_t j = 0; s == BSC_OK && j < n && !r->bad; j++) {
        size_t i = (size_t)bsc_get_u64(r);
        const char *status = bsc_get_str(r);
        if (r->bad || i >= n_runs)
            break;
        const char *name = st->p->training.runs[i].name;
        char *dir = st->so->shared_fs
                        ? bsc_strdup_printf("%s/" BSC_RUNS_DIR "/%s", st->so->out_abs, name)
                        : bsc_strdup_printf("%s/" BSC_RUNS_DIR "/%s", st->out, name);
        if (!dir)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        /* Statuses are the library's own strings: the runs keep pointers. */
        st->outcomes[i].status = strcmp(status, "diverged") == 0 ? "diverged" : "completed";
        bsc_study_note_run(st, i, dir, BSC_OK);
    }
    if (s == BSC_OK && !st->so->shared_fs)
        s = bsc_get_tree(r, st->out, NULL, NULL);
    if (s == BSC_OK)
        s = bsc_rbuf_status(r, "the finished runs");
    for (size_t i = 0; s == BSC_OK && i < n_runs; i++)
        if (st->results[i].dir)
            s = bsc_study_load_final(st, i, st->results[i].dir);
    if (s == BSC_OK) {
        st->n_outcomes = n_runs;
        w->have_view = 1;
    }
    return s;
}

static bsc_study worker_view(worker *w)
{
    bsc_study sv = bsc_study_analysis_view(w->st);
    sv.stop_requested = worker_stop;
    sv.stop_user = w;
    return sv;
}

static int dp_poll(void *user)
{
    worker *w = user;
    poll_rank0(w);
    return w->stop || w->lost;
}

static bsc_status dp_reduce(void *user, float *v, size_t n)
{
    worker *w = user;
    return bsc_dp_reduce_rank(w->st, v, n, dp_poll, w);
}

/* This rank's share of a data-parallel run: its rows of every batch, in
 * step with the others; rank 0 writes the run, so nothing ships back and
 * this rank neither evaluates nor observes. */
static bsc_status run_dp_share(worker *w, size_t run)
{
    study *st = w->st;
    size_t n_obs = st->tr.n_observers;
    char *dir = bsc_strdup_printf("%s/" BSC_RUNS_DIR "/%s", st->out,
                                  st->p->training.runs[run].name);
    bsc_status s = dir ? bsc_dp_begin(st, dp_reduce, w) : bsc_fail(BSC_ERR_NOMEM, "oom");
    st->tr.n_observers = 0;
    if (s == BSC_OK) {
        bsc_remove_tree(dir);
        s = bsc_study_train_run(st, run, dir);
        bsc_remove_tree(dir);
    }
    st->tr.n_observers = n_obs;
    bsc_dp_end(st);
    free(dir);
    return s;
}

/* Runs one unit into the RESULT message b (after id and status). */
static bsc_status run_unit(worker *w, const bsc_unit *u, size_t n_parts, bsc_wbuf *b)
{
    study *st = w->st;
    bsc_status s = BSC_OK;
    if (u->kind == UNIT_DP)
        return run_dp_share(w, u->index);
    if (u->kind == UNIT_TRAIN) {
        const char *name = st->p->training.runs[u->index].name;
        char *sub = bsc_strdup_printf(BSC_RUNS_DIR "/%s", name);
        char *dir = sub ? bsc_strdup_printf("%s/%s", st->out, sub) : NULL;
        if (!dir)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        if (s == BSC_OK) {
            bsc_remove_tree(dir);
            s = bsc_study_train_run(st, u->index, dir);
        }
        if (s == BSC_OK)
            s = bsc_put_tree(b, dir, "");
        if (dir)
            bsc_remove_tree(dir);
        free(sub);
        free(dir);
        return s;
    }
    bsc_study sv = worker_view(w);
    void *self = st->ana[u->index].self;
    if (u->kind == UNIT_ANALYSIS) {
        char *dir = bsc_strdup_printf("%s/" BSC_ANALYSES_DIR, st->out);
        if (!dir)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        bsc_remove_tree(dir);
        BSC_PLUGIN_CALL(st->ana[u->index].type, "run",
                        s = st->ana_ops[u->index]->run(self, &sv));
        if (s == BSC_OK)
            s = bsc_put_tree(b, st->out, BSC_ANALYSES_DIR);
        bsc_remove_tree(dir);
        free(dir);
        return s;
    }
    const bsc_analysis_ops *a = bsc_units_ops(st, u->index);
    if (!a)
        return bsc_fail(BSC_ERR_INTERNAL, "analysis %s has no unit ops here",
                        st->ana[u->index].type->name);
    if (!w->planned[u->index]) {
        size_t n = 0;
        BSC_PLUGIN_CALL(st->ana[u->index].type, "plan", s = a->plan(self, &sv, &n));
        if (s != BSC_OK)
            return s;
        w->planned[u->index] = n + 1;
    }
    if (w->planned[u->index] - 1 != n_parts)
        return bsc_fail(BSC_ERR_INTERNAL, "analysis %s plans %zu units on rank %d but %zu on "
                        "rank 0", st->ana[u->index].type->name, w->planned[u->index] - 1,
                        st->so->tp.rank, n_parts);
    void *data = NULL;
    size_t len = 0;
    BSC_PLUGIN_CALL(st->ana[u->index].type, "run_unit",
                    s = a->run_unit(self, &sv, u->part, &data, &len));
    if (s == BSC_OK)
        bsc_put_bytes(b, data, len);
    free(data);
    return s;
}

/* For the tests of faults: BATCHSCOPE_TEST_DIE=R:N kills rank R (SIGKILL,
 * as the OOM killer would) when it starts its unit number N (from 0). */
static void test_die(const worker *w, size_t started)
{
    const char *v = getenv("BATCHSCOPE_TEST_DIE");
    int r;
    size_t n;
    if (v && sscanf(v, "%d:%zu", &r, &n) == 2 && r == w->st->so->tp.rank && n == started)
        raise(SIGKILL);
}

/* One UNIT message: runs it, sends its RESULT. */
static bsc_status serve_unit(worker *w, const bsc_tp_msg *m)
{
    study *st = w->st;
    bsc_rbuf r = {m->data, m->len, 0, 0};
    uint64_t id = bsc_get_u64(&r);
    bsc_unit u = {(unit_kind)bsc_get_u64(&r), (size_t)bsc_get_u64(&r), (size_t)bsc_get_u64(&r)};
    size_t n_parts = (size_t)bsc_get_u64(&r);
    uint64_t with_view = bsc_get_u64(&r);
    bsc_status s = bsc_rbuf_status(&r, "a UNIT message");
    int run_kind = u.kind == UNIT_TRAIN || u.kind == UNIT_DP;
    if (s == BSC_OK && (run_kind ? u.index >= st->p->training.n_runs : u.index >= st->n_ana))
        s = bsc_fail(BSC_ERR_DATA, "a UNIT message names unit %zu of kind %d", u.index,
                     (int)u.kind);
    if (s == BSC_OK && with_view)
        s = take_view(w, &r);
    if (s == BSC_OK && !run_kind && !w->have_view)
        s = bsc_fail(BSC_ERR_INTERNAL, "an analysis unit came before the finished runs");
    test_die(w, w->started++);
    double t0 = bsc_now();
    bsc_wbuf body = {0}, b = {0};
    if (s == BSC_OK)
        s = run_unit(w, &u, n_parts, &body);
    if (w->stop || w->lost) {
        bsc_wbuf_free(&body);
        return BSC_OK;   /* rank 0 has ended the study: no result to send */
    }
    if (s == BSC_OK)
        s = bsc_wbuf_status(&body);
    bsc_put_u64(&b, id);
    bsc_put_u64(&b, (uint64_t)s);
    bsc_put_str(&b, s == BSC_OK ? "" : bsc_last_error());
    bsc_put_f64(&b, bsc_now() - t0);
    if (s == BSC_OK)
        bsc_put_raw(&b, body.data, body.len);
    bsc_wbuf_free(&body);
    s = bsc_so_send(st, 0, BSC_TAG_RESULT, &b);
    bsc_wbuf_free(&b);
    return s;
}

bsc_status bsc_scaleout_work(study *st)
{
    worker w = {st, bsc_now(), 0, 0, 0, NULL, 0};
    bsc_status setup = bsc_session_prepare(st);
    if (setup == BSC_OK)
        setup = bsc_session_open_device(st);
    if (setup == BSC_OK && !(w.planned = calloc(st->n_ana ? st->n_ana : 1,
                                                sizeof *w.planned)))
        setup = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    char *error = setup == BSC_OK ? NULL : strdup(bsc_last_error());
    /* Only rank 0 talks: this rank's training prints nothing, and polls. */
    st->tr.quiet = 1;
    st->tr.stop_requested = worker_stop;
    st->tr.stop_user = &w;
    bsc_tp_msg m;
    bsc_status s = wait_rank0(&w, &m);
    int connected = s == BSC_OK && m.tag == BSC_TAG_SETUP;
    if (connected)
        take_setup(&w, &m);
    if (s == BSC_OK)
        free(m.data);   /* SETUP, or STOP before it: rank 0 failed first */
    if (connected)
        s = send_hello(&w, setup, error ? error : "");
    /* Units until STOP. Rank 0 ends a study whose rank could not set up,
     * so a rank that failed only waits for its STOP. */
    while (connected && s == BSC_OK && !w.stop && !w.lost) {
        if ((s = wait_rank0(&w, &m)) != BSC_OK)
            break;
        if (m.tag == BSC_TAG_STOP)
            w.stop = 1;
        else if (m.tag == BSC_TAG_UNIT)
            s = setup == BSC_OK ? serve_unit(&w, &m)
                                : bsc_fail(BSC_ERR_INTERNAL, "a unit for a rank that failed");
        free(m.data);
    }
    if (s == BSC_OK && w.lost)
        s = bsc_fail(BSC_ERR_IO, "rank %d (%s): rank 0 fell silent during a unit",
                     st->so->tp.rank, st->so->tp.host);
    free(error);
    free(w.planned);
    return s;
}
