/* batchscope observers plugin: `distance` -- how far the weights travel.
 *
 * At every epoch end: ||w_t - w_0|| (distance from init), ||w_end(e) -
 * w_start(e)|| (epoch distance) and ||w_t||, in total and per layer. Totals go
 * into metrics.csv (distance_from_init, epoch_distance, weight_norm); the
 * per-layer values into OUT/runs/<run>/layer_distance.csv, tidy: epoch,
 * layer (the model's layer index, as in the checkpoint's "1.weight"),
 * distance_from_init, epoch_distance, weight_norm.
 *
 * Option every_steps: K (default 0 = off) adds a row every K global steps to
 * distance_steps.csv (step, epoch, distance_from_init, epoch_distance --
 * from the start of the current epoch -- weight_norm; totals only).
 *
 * Cost: one kernel per epoch (and per K steps) that reads w, w_0 and the
 * epoch start once; the epoch start is refreshed in the same pass. The
 * values come back once per epoch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "observers.h"

typedef struct distance {
    long every;
    bsc_context *ctx;
    obs_segments seg;
    bsc_tensor w0, ws;        /* own copies: initial weights, start of the epoch */
    bsc_tensor out;           /* [3 * n_chunks] at epoch end */
    bsc_tensor steps_out;     /* [slots * 3 * n_chunks] every K steps */
    size_t slots, n_slots;    /* capacity, used this epoch */
    uint64_t *slot_step;
    int *slot_epoch;
    float *host;
    double *seg_sums;         /* [3 * nseg] */
    cl_kernel k;
    size_t local;
    bsc_table *layers, *steps;
    bsc_csv_mark layers_mark, steps_mark;  /* what their files hold */
} distance;

static void release(distance *d)
{
    obs_segments_free(&d->seg);
    bsc_tensor_free(&d->w0);
    bsc_tensor_free(&d->ws);
    bsc_tensor_free(&d->out);
    bsc_tensor_free(&d->steps_out);
    free(d->slot_step);
    free(d->slot_epoch);
    free(d->host);
    free(d->seg_sums);
    d->seg_sums = NULL;
    bsc_table_free(d->layers);
    bsc_table_free(d->steps);
    d->slot_step = NULL;
    d->slot_epoch = NULL;
    d->host = NULL;
    d->layers = d->steps = NULL;
}

static bsc_status dist_create(const bsc_component_config *cfg, void **self)
{
    long every;
    bsc_status s = bsc_opt_long(cfg->options, "every_steps", 0, 0, 1L << 40, &every);
    if (s != BSC_OK)
        return s;
    distance *d = calloc(1, sizeof *d);
    if (!d)
        return bsc_fail(BSC_ERR_NOMEM, "distance: out of memory");
    d->every = every;
    *self = d;
    return BSC_OK;
}

static bsc_status dist_run_start(void *self, const bsc_run_info *run)
{
    distance *d = self;
    release(d);
    d->ctx = run->ctx;
    size_t np = bsc_model_n_params(run->model);
    bsc_status s;
    if ((s = obs_segments_build(run->ctx, run->model, &d->seg)) != BSC_OK)
        return s;
    size_t nc = d->seg.n_chunks;
    d->slots = d->every > 0 ? run->steps_per_epoch / (size_t)d->every + 2 : 1;
    d->slot_step = calloc(d->slots, sizeof *d->slot_step);
    d->slot_epoch = calloc(d->slots, sizeof *d->slot_epoch);
    d->host = malloc(d->slots * 3 * (nc ? nc : 1) * sizeof *d->host);
    d->seg_sums = malloc(3 * (d->seg.n ? d->seg.n : 1) * sizeof *d->seg_sums);
    if (!d->slot_step || !d->slot_epoch || !d->host || !d->seg_sums)
        return bsc_fail(BSC_ERR_NOMEM, "distance: out of memory");
    d->layers_mark = d->steps_mark = (bsc_csv_mark){0};
    if ((s = obs_alloc(run->ctx, BSC_F32, np, &d->w0)) != BSC_OK ||
        (s = obs_alloc(run->ctx, BSC_F32, np, &d->ws)) != BSC_OK ||
        (s = obs_alloc(run->ctx, BSC_F32, 3 * nc, &d->out)) != BSC_OK ||
        (s = obs_alloc(run->ctx, BSC_F32, d->slots * 3 * nc, &d->steps_out)) != BSC_OK ||
        (s = bsc_tensor_copy(run->ctx, run->init_params, &d->w0)) != BSC_OK ||
        (s = bsc_tensor_copy(run->ctx, run->init_params, &d->ws)) != BSC_OK ||
        (s = obs_kernel(run->ctx, "observers.cl", "obs_seg_distance", &d->k)) != BSC_OK ||
        (s = obs_local_size(run->ctx, d->k, &d->local)) != BSC_OK ||
        (s = bsc_table_new(&d->layers)) != BSC_OK || (s = bsc_table_new(&d->steps)) != BSC_OK)
        return s;
    static const char *const lcols[] = {BSC_COL_EPOCH, BSC_COL_LAYER, BSC_COL_DISTANCE_FROM_INIT,
                                        BSC_COL_EPOCH_DISTANCE, "weight_norm"};
    static const char *const scols[] = {BSC_COL_STEP, BSC_COL_EPOCH, BSC_COL_DISTANCE_FROM_INIT,
                                        BSC_COL_EPOCH_DISTANCE, "weight_norm"};
    for (size_t i = 0; i < 5; i++)
        if ((s = bsc_table_column(d->layers, lcols[i])) != BSC_OK ||
            (s = bsc_table_column(d->steps, scols[i])) != BSC_OK)
            return s;
    d->n_slots = 0;
    return BSC_OK;
}

static bsc_status enqueue(distance *d, bsc_model *m, bsc_tensor *out, size_t oo, int copy)
{
    if (d->seg.n == 0)
        return BSC_OK;
    const bsc_tensor *w = bsc_model_params(m);
    cl_uint wo = (cl_uint)w->offset, w0o = (cl_uint)d->w0.offset, wso = (cl_uint)d->ws.offset,
            o = (cl_uint)(out->offset + oo);
    cl_int cp = copy;
    bsc_karg a[] = {BSC_ARG(w->mem), BSC_ARG(wo), BSC_ARG(d->w0.mem), BSC_ARG(w0o),
                    BSC_ARG(d->ws.mem), BSC_ARG(wso), BSC_ARG(d->seg.dev.mem),
                    BSC_ARG(out->mem), BSC_ARG(o), BSC_ARG(cp),
                    BSC_LOCAL(3 * d->local * sizeof(float))};
    size_t g = d->seg.n_chunks * d->local;
    return bsc_launch(d->ctx, d->k, 11, a, 1, &g, &d->local);
}

static bsc_status dist_after_step(void *self, const bsc_run_info *run, const bsc_step_info *si)
{
    distance *d = self;
    if (d->every <= 0 || si->step % (uint64_t)d->every != 0 || d->n_slots >= d->slots)
        return BSC_OK;
    size_t k = d->n_slots++;
    d->slot_step[k] = si->step;
    d->slot_epoch[k] = si->epoch;
    return enqueue(d, run->model, &d->steps_out, k * 3 * d->seg.n_chunks, 0);
}

/* Per-layer sums of the per-chunk values at v into d->seg_sums, and the
 * totals: norms, in double, layer order. */
static void totals(distance *d, const float *v, double t[3])
{
    obs_segments_sum(&d->seg, v, 3, d->seg_sums);
    t[0] = t[1] = t[2] = 0;
    for (size_t i = 0; i < d->seg.n; i++)
        for (int c = 0; c < 3; c++)
            t[c] += d->seg_sums[3 * i + (size_t)c];
    for (int c = 0; c < 3; c++)
        t[c] = obs_sqrt(t[c]);
}

static bsc_status dist_epoch_end(void *self, const bsc_run_info *run, const bsc_epoch_info *e)
{
    distance *d = self;
    size_t ns = d->seg.n, nc = d->seg.n_chunks;
    bsc_status s;
    /* The K-step rows of this epoch were enqueued before this pass refreshes
     * the epoch start; one blocking read brings back both. */
    if ((s = enqueue(d, run->model, &d->out, 0, 1)) != BSC_OK ||
        (s = obs_read(d->ctx, &d->steps_out, d->n_slots * 3 * nc, d->host)) != BSC_OK)
        return s;
    for (size_t k = 0; k < d->n_slots; k++) {
        double t[3];
        totals(d, d->host + k * 3 * nc, t);
        bsc_metrics_row r;
        if ((s = bsc_table_add_row(d->steps, &r)) != BSC_OK)
            return s;
        bsc_metrics_set(&r, BSC_COL_STEP, (double)d->slot_step[k]);
        bsc_metrics_set(&r, BSC_COL_EPOCH, d->slot_epoch[k]);
        bsc_metrics_set(&r, BSC_COL_DISTANCE_FROM_INIT, t[0]);
        bsc_metrics_set(&r, BSC_COL_EPOCH_DISTANCE, t[1]);
        bsc_metrics_set(&r, "weight_norm", t[2]);
    }
    d->n_slots = 0;
    if ((s = obs_read(d->ctx, &d->out, 3 * nc, d->host)) != BSC_OK)
        return s;
    double t[3];
    totals(d, d->host, t);
    bsc_metrics_set(e->row, BSC_COL_DISTANCE_FROM_INIT, t[0]);
    bsc_metrics_set(e->row, BSC_COL_EPOCH_DISTANCE, t[1]);
    bsc_metrics_set(e->row, "weight_norm", t[2]);
    for (size_t i = 0; i < ns; i++) {
        bsc_metrics_row r;
        if ((s = bsc_table_add_row(d->layers, &r)) != BSC_OK)
            return s;
        bsc_metrics_set(&r, BSC_COL_EPOCH, e->epoch);
        bsc_metrics_set(&r, BSC_COL_LAYER, d->seg.layer[i]);
        bsc_metrics_set(&r, BSC_COL_DISTANCE_FROM_INIT, obs_sqrt(d->seg_sums[3 * i]));
        bsc_metrics_set(&r, BSC_COL_EPOCH_DISTANCE, obs_sqrt(d->seg_sums[3 * i + 1]));
        bsc_metrics_set(&r, "weight_norm", obs_sqrt(d->seg_sums[3 * i + 2]));
    }
    s = obs_write_run_table(run, d->layers, BSC_FILE_LAYER_DISTANCE, &d->layers_mark);
    if (s != BSC_OK)
        return s;
    if (d->every > 0)
        return obs_write_run_table(run, d->steps, BSC_FILE_DISTANCE_STEPS, &d->steps_mark);
    return BSC_OK;
}

static bsc_status dist_run_end(void *self, const bsc_run_info *run)
{
    (void)run;
    release(self);
    return BSC_OK;
}

static void dist_destroy(void *self)
{
    if (!self)
        return;
    release(self);
    free(self);
}

BSC_OBSERVER_TYPE(obs_distance, "distance",
               "||w - w0||, epoch distance and ||w|| per epoch, total and per layer",
               BSC_OPTIONS(BSC_OPT("every_steps", BSC_OPT_INT, "0",
                                   "also a row every K global steps (0: per epoch only)")),
               .create = dist_create,
               .run_start = dist_run_start,
               .after_step = dist_after_step,
               .epoch_end = dist_epoch_end,
               .run_end = dist_run_end,
               .destroy = dist_destroy);
