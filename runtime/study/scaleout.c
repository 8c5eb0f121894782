/* Scale-out, the parts every rank shares (scaleout_internal.h): where this process
 * stands, connecting the ranks, the manifest's "ranks", the end.
 *
 * The protocol, by tag (transport.h), every message composed with wire.h:
 *   SETUP   0 -> w   out_abs, probe path, nonce: rank 0's results directory
 *                    and a file only it wrote there (is OUT shared?)
 *   HELLO   w -> 0   status, error, host, local rank, device, shared: ready
 *                    for units (or why not)
 *   UNIT    0 -> w   id, kind, index, part, n_parts [, the finished runs
 *                    and, when OUT is not shared, their checkpoints]
 *   RESULT  w -> 0   id, status, error, seconds, then the unit's files
 *                    (TRAIN, ANALYSIS) or bytes (PART); also "ready again"
 *   STOP    0 -> w   failed: no more units, return
 *   HEARTBEAT        both ways, from a thread, while the sender progresses
 * Rank 0 only ever answers; a rank > 0 has at most one unit. */
#include "scaleout_internal.h"

#include "batchscope/fsutil.h"
#include "batchscope/scaleout.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int lost_peer, my_rank;

void bsc_scaleout_lost_peer(void)
{
    lost_peer = 1;
}

int bsc_scaleout_rank(void)
{
    return my_rank;
}

int bsc_scaleout_end(int exit_code)
{
    bsc_tp_end(lost_peer, exit_code);
    return exit_code;
}

bsc_status bsc_scaleout_begin(study *st)
{
    struct bsc_scaleout *so = calloc(1, sizeof *so);
    if (!so)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    st->so = so;
    so->timeout = st->opt->mpi_timeout > 0 ? st->opt->mpi_timeout : BSC_MPI_TIMEOUT_DEFAULT;
    bsc_status s = bsc_tp_start(&so->tp);
    if (s != BSC_OK)
        return s;
    my_rank = so->tp.rank;
    st->local_rank = so->tp.local_rank;
    st->local_size = so->tp.local_size;
    if (so->tp.size <= 1)
        return BSC_OK;
    /* Heartbeats: rank 0 to every rank, every rank to rank 0, ten per
     * timeout (at most every 5 s), so one lost message never ends a study. */
    double period = so->timeout / 10 < 5 ? so->timeout / 10 : 5;
    if (so->tp.rank == 0) {
        int n = so->tp.size - 1;
        int *to = malloc((size_t)n * sizeof *to);
        so->ranks = calloc((size_t)so->tp.size, sizeof *so->ranks);
        if (!to || !so->ranks) {
            free(to);
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        }
        for (int r = 0; r < n; r++)
            to[r] = r + 1;
        double now = bsc_now();
        for (int r = 0; r < so->tp.size; r++) {
            so->ranks[r].unit = -1;
            so->ranks[r].last_seen = now;
            so->ranks[r].local_rank = -1;
            so->ranks[r].dev_index = -1;
        }
        s = bsc_tp_heartbeat(to, n, period, so->timeout);
        free(to);
        return s;
    }
    int zero = 0;
    if ((s = bsc_tp_heartbeat(&zero, 1, period, so->timeout)) != BSC_OK)
        return s;
    so->quiet_opt = *st->opt;
    so->quiet_opt.quiet = 1;
    st->opt = &so->quiet_opt;
    st->progress.quiet = 1;
    /* Whatever this rank's components write lands in its own scratch
     * directory; only rank 0 writes the results. */
    const char *tmp = getenv("TMPDIR");
    char *tmpl = bsc_strdup_printf("%s/batchscope-rank%d-XXXXXX", tmp && *tmp ? tmp : "/tmp",
                                   so->tp.rank);
    if (!tmpl)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (!mkdtemp(tmpl)) {
        s = bsc_fail(BSC_ERR_IO, "rank %d (%s): cannot create a scratch directory %s",
                     so->tp.rank, so->tp.host, tmpl);
        free(tmpl);
        return s;
    }
    so->scratch = tmpl;
    free(st->out);
    if (!(st->out = strdup(tmpl)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    return BSC_OK;
}

int bsc_scaleout_is_worker(const study *st)
{
    return st && st->so && st->so->tp.size > 1 && st->so->tp.rank > 0;
}

int bsc_scaleout_size(const study *st)
{
    return st && st->so ? st->so->tp.size : 1;
}

bsc_status bsc_so_send(const study *st, int dest, int tag, const bsc_wbuf *b)
{
    bsc_status s = bsc_wbuf_status(b);
    if (s == BSC_OK)
        s = bsc_tp_send(dest, tag, b->data, b->len, st->so->timeout);
    return s;
}

/* ---- connecting (rank 0) */

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* Reads a HELLO into ranks[src]; a rank that could not set up fails the
 * study, naming it. */
static bsc_status take_hello(study *st, const bsc_tp_msg *m)
{
    so_rank *r = &st->so->ranks[m->src];
    bsc_rbuf rb = {m->data, m->len, 0, 0};
    bsc_status ws = (bsc_status)bsc_get_u64(&rb);
    const char *err = bsc_get_str(&rb);
    copy_str(r->host, sizeof r->host, bsc_get_str(&rb));
    r->local_rank = (long)bsc_get_u64(&rb);
    r->dev_index = (long)bsc_get_u64(&rb);
    copy_str(r->dev_platform, sizeof r->dev_platform, bsc_get_str(&rb));
    copy_str(r->dev_vendor, sizeof r->dev_vendor, bsc_get_str(&rb));
    copy_str(r->dev_name, sizeof r->dev_name, bsc_get_str(&rb));
    copy_str(r->dev_type, sizeof r->dev_type, bsc_get_str(&rb));
    copy_str(r->dev_driver, sizeof r->dev_driver, bsc_get_str(&rb));
    r->shared = (int)bsc_get_u64(&rb);
    bsc_status s = bsc_rbuf_status(&rb, "a HELLO message");
    if (s != BSC_OK)
        return bsc_fail_context(s, "rank %d", m->src);
    if (ws != BSC_OK)
        return bsc_fail(ws < BSC_STATUS_COUNT && ws > BSC_OK ? ws : BSC_ERR_INTERNAL,
                        "rank %d (%s) could not set up: %s", m->src, r->host, err);
    if (!r->shared && st->opt->shared_out == BSC_SHARED_OUT_YES)
        return bsc_fail(BSC_ERR_IO, "rank %d (%s) cannot read the results directory %s: it is "
                        "not shared there (--shared-out yes; auto or no sends checkpoints over "
                        "MPI)", m->src, r->host, st->so->out_abs ? st->so->out_abs : st->out);
    r->ready = 1;
    return BSC_OK;
}

static void log_ranks(study *st)
{
    if (st->opt->quiet)
        return;
    struct bsc_scaleout *so = st->so;
    for (int i = 0; i < so->tp.size; i++) {
        const so_rank *r = &so->ranks[i];
        fprintf(st->log, "  rank %d on %s (local %ld): %s / %s (driver %s)%s\n", i, r->host,
                r->local_rank, r->dev_platform, r->dev_name, r->dev_driver,
                i == 0 ? "" : r->shared ? ", shares OUT" : ", OUT sent over MPI");
    }
}

static void fill_rank0(study *st)
{
    so_rank *r = &st->so->ranks[0];
    const bsc_device_info *d = &st->ctx->info;
    copy_str(r->host, sizeof r->host, st->so->tp.host);
    r->local_rank = st->so->tp.local_rank;
    r->dev_index = d->index;
    copy_str(r->dev_platform, sizeof r->dev_platform, d->platform_name);
    copy_str(r->dev_vendor, sizeof r->dev_vendor, d->vendor);
    copy_str(r->dev_name, sizeof r->dev_name, d->name);
    copy_str(r->dev_type, sizeof r->dev_type, bsc_device_type_name(d->type));
    copy_str(r->dev_driver, sizeof r->dev_driver, d->driver_version);
    r->ready = r->shared = 1;
}

bsc_status bsc_scaleout_connect(study *st)
{
    struct bsc_scaleout *so = st->so;
    char nonce[64], *probe = NULL;
    bsc_wbuf b = {0};
    bsc_status s = BSC_OK;
    fill_rank0(st);
    so->out_abs = realpath(st->out, NULL);
    snprintf(nonce, sizeof nonce, "%ld-%.9f", (long)getpid(), bsc_now());
    probe = so->out_abs ? bsc_strdup_printf("%s/.batchscope-probe-%s", so->out_abs, nonce)
                        : NULL;
    if (!probe)
        return bsc_fail(BSC_ERR_IO, "%s: cannot resolve the results directory", st->out);
    /* A file only rank 0 wrote: a rank that reads it back shares OUT. */
    if ((s = bsc_write_file_atomic(probe, nonce, strlen(nonce))) != BSC_OK)
        goto cleanup;
    bsc_put_str(&b, so->out_abs);
    bsc_put_str(&b, probe);
    bsc_put_str(&b, nonce);
    for (int r = 1; s == BSC_OK && r < so->tp.size; r++)
        s = bsc_so_send(st, r, BSC_TAG_SETUP, &b);
    int waiting = so->tp.size - 1;
    while (s == BSC_OK && waiting > 0) {
        bsc_tp_msg m;
        bsc_tp_progress();
        bsc_status rs = bsc_tp_recv(-1, -1, 0.05, &m);
        double now = bsc_now();
        if (rs == BSC_OK) {
            so->ranks[m.src].last_seen = now;
            if (m.tag == BSC_TAG_HELLO && !so->ranks[m.src].ready) {
                s = take_hello(st, &m);
                waiting--;
            }
            free(m.data);
        } else if (rs != BSC_ERR_NOT_FOUND) {
            s = rs;
        }
        for (int r = 1; s == BSC_OK && r < so->tp.size; r++)
            if (!so->ranks[r].ready && now - so->ranks[r].last_seen > so->timeout) {
                bsc_scaleout_lost_peer();
                s = bsc_fail(BSC_ERR_IO, "rank %d sent nothing for %.0f s while setting up "
                             "(dead, hung or unreachable; --mpi-timeout sets the limit)", r,
                             so->timeout);
            }
        if (s == BSC_OK && st->opt->stop_requested && st->opt->stop_requested(st->opt->stop_user))
            s = bsc_fail(BSC_ERR_INTERRUPTED, "interrupted while the ranks set up");
    }
    if (s == BSC_OK) {
        log_ranks(st);
        s = bsc_study_write_manifest(st, "running", NULL);
    }
cleanup:
    remove(probe);
    free(probe);
    bsc_wbuf_free(&b);
    return s;
}

bsc_status bsc_scaleout_fill_manifest(const study *st, bsc_manifest *m)
{
    const struct bsc_scaleout *so = st->so;
    if (!so->ranks || so->tp.size <= 1)
        return BSC_OK;
    bsc_status s = BSC_OK;
    for (int i = 0; s == BSC_OK && i < so->tp.size; i++) {
        const so_rank *r = &so->ranks[i];
        bsc_manifest_rank *mr;
        bsc_manifest_device *d;
        if ((s = bsc_manifest_add_rank(m, &mr)) != BSC_OK)
            break;
        mr->rank = i;
        mr->host = r->host[0] ? r->host : NULL;
        mr->local_rank = r->local_rank;
        mr->units = r->units;
        mr->busy_seconds = r->busy;
        mr->serve_seconds = i == 0 ? r->serve : NAN;
        mr->result_bytes = i == 0 ? r->result_bytes : -1;
        if (!r->ready)
            continue;
        if ((s = bsc_manifest_rank_set_device(m, mr, &d)) != BSC_OK)
            break;
        d->index = r->dev_index;
        d->platform = r->dev_platform;
        d->vendor = r->dev_vendor;
        d->name = r->dev_name;
        d->type = r->dev_type;
        d->driver_version = r->dev_driver;
    }
    return s;
}

void bsc_scaleout_release(study *st)
{
    if (!st || !st->so || st->so->tp.size <= 1 || st->so->tp.rank != 0 || st->so->stopped)
        return;
    struct bsc_scaleout *so = st->so;
    bsc_wbuf b = {0};
    bsc_put_u64(&b, 0);
    so->stopped = 1;
    for (int r = 1; r < so->tp.size; r++) {
        /* A lost rank takes no message: do not wait the whole timeout on it. */
        double silent = bsc_now() - so->ranks[r].last_seen;
        if (silent < so->timeout && bsc_wbuf_status(&b) == BSC_OK)
            bsc_tp_send(r, BSC_TAG_STOP, b.data, b.len, 10.0);
    }
    bsc_wbuf_free(&b);
}

void bsc_scaleout_free(study *st)
{
    if (!st || !st->so)
        return;
    struct bsc_scaleout *so = st->so;
    if (so->scratch)
        bsc_remove_tree(so->scratch);
    free(so->scratch);
    free(so->out_abs);
    free(so->ranks);
    free(so->in_flight);
    free(so);
    st->so = NULL;
}
