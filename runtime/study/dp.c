/* Data-parallel runs (scaleout_internal.h): the sum of a step's gradients
 * over the ranks. Every rank sends its share to rank 0, which adds them in
 * rank order -- ((g0 + g1) + g2) + ..., whatever order they arrive in, so
 * the result does not depend on timing -- and sends the sum back: every
 * rank then takes the same step. A zero-length REDUCE from rank 0 says the
 * run ended elsewhere (a failure, an interruption): the step fails. */
#include "scaleout_internal.h"

#include <stdlib.h>
#include <string.h>

/* The next REDUCE from src, polling between tries: poll() nonzero gives up. */
static bsc_status wait_reduce(const study *st, int src, int (*poll)(void *), void *user,
                              bsc_tp_msg *m)
{
    for (;;) {
        bsc_status s = bsc_tp_recv(src, BSC_TAG_REDUCE, 0.01, m);
        if (s != BSC_ERR_NOT_FOUND)
            return s;
        if (poll(user))
            return bsc_fail(BSC_ERR_INTERRUPTED, "rank %d: a data-parallel step stopped "
                            "while waiting for rank %d", st->so->tp.rank, src);
    }
}

bsc_status bsc_dp_reduce_root(const study *st, float *v, size_t n, int (*poll)(void *),
                              void *user)
{
    int size = st->so->tp.size;
    bsc_status s = BSC_OK;
    for (int r = 1; s == BSC_OK && r < size; r++) {
        bsc_tp_msg m;
        if ((s = wait_reduce(st, r, poll, user, &m)) != BSC_OK)
            break;
        if (m.len != n * sizeof *v)
            s = bsc_fail(BSC_ERR_DATA, "rank %d sent %zu bytes of gradients, not %zu", r, m.len,
                         n * sizeof *v);
        else
            for (size_t i = 0; i < n; i++)
                v[i] += ((const float *)m.data)[i];
        free(m.data);
    }
    for (int r = 1; s == BSC_OK && r < size; r++)
        s = bsc_tp_send(r, BSC_TAG_REDUCE, v, n * sizeof *v, st->so->timeout);
    return s;
}

bsc_status bsc_dp_reduce_rank(const study *st, float *v, size_t n, int (*poll)(void *),
                              void *user)
{
    bsc_tp_msg m;
    bsc_status s = bsc_tp_send(0, BSC_TAG_REDUCE, v, n * sizeof *v, st->so->timeout);
    if (s == BSC_OK)
        s = wait_reduce(st, 0, poll, user, &m);
    if (s != BSC_OK)
        return s;
    if (m.len == 0)
        s = bsc_fail(BSC_ERR_INTERRUPTED, "rank %d: the data-parallel run ended on rank 0",
                     st->so->tp.rank);
    else if (m.len != n * sizeof *v)
        s = bsc_fail(BSC_ERR_DATA, "rank 0 sent %zu bytes of summed gradients, not %zu",
                     m.len, n * sizeof *v);
    else
        memcpy(v, m.data, m.len);
    free(m.data);
    return s;
}

void bsc_dp_abort(const study *st, int rank)
{
    bsc_tp_send(rank, BSC_TAG_REDUCE, NULL, 0, 10.0);
    (void)st;
}

bsc_status bsc_dp_check(const study *st, size_t run)
{
    const bsc_pipeline *p = st->p;
    /* Per-shard batch statistics and dropout masks keyed by the row in the
     * shard would differ from one process's whole batch. */
    for (size_t i = 0; i < p->n_layers; i++)
        if (!strcmp(p->layers[i].type, "batchnorm") || !strcmp(p->layers[i].type, "dropout"))
            return bsc_fail(BSC_ERR_UNSUPPORTED, "run %s: data_parallel with a %s layer is not "
                            "supported (each rank would see only its share of the batch)",
                            p->training.runs[run].name, p->layers[i].type);
    return BSC_OK;
}

bsc_status bsc_dp_begin(study *st, bsc_status (*reduce)(void *, float *, size_t), void *user)
{
    bsc_trainer *t = &st->tr;
    size_t np = bsc_model_n_params(st->model);
    if (!(t->dp_host = malloc((np + 1) * sizeof *t->dp_host)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    t->dp_rank = st->so->tp.rank;
    t->dp_size = st->so->tp.size;
    t->reduce = reduce;
    t->reduce_user = user;
    return BSC_OK;
}

void bsc_dp_end(study *st)
{
    bsc_trainer *t = &st->tr;
    free(t->dp_host);
    t->dp_host = NULL;
    t->dp_rank = 0;
    t->dp_size = 0;
    t->reduce = NULL;
    t->reduce_user = NULL;
}
