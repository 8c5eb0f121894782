/* batchscope observers plugin: `update_norms` -- the size of every step.
 *
 * After each optimizer step, one kernel reads w_{t+1} and the observer's own
 * copy of w_t, writes ||w_{t+1} - w_t||^2 per chunk of a layer (observers.h,
 * one work item per chunk, no barriers)
 * into a device buffer at the step's index in the epoch, and stores w_{t+1}
 * as the next w_t in the same pass (one read of the parameters, one read and
 * one write of the copy). The buffer comes back once per epoch.
 *
 * Files (tidy):
 *   update_norms.csv         step, epoch, lr, norm -- one row per step, the
 *                            total ||w_{t+1} - w_t|| (what the histogram and
 *                            the medians of summary.csv use)
 *   update_norms_layers.csv  step, epoch, layer, norm -- one row per step and
 *                            layer with trainable tensors (layer = the model's
 *                            layer index); off with per_layer: false
 * The total is sqrt of the sum of the per-layer squares, added on the host
 * in double in layer order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/optim.h"
#include "observers.h"

typedef struct update_norms {
    int per_layer;
    bsc_context *ctx;
    obs_segments seg;
    bsc_tensor prev;          /* w_t */
    bsc_tensor norms;         /* [steps_per_epoch * n_chunks] squared norms */
    size_t steps;             /* capacity in steps */
    size_t last;              /* highest step_in_epoch seen this epoch */
    uint64_t first_step;      /* global step of step_in_epoch 1 */
    float *lr;                /* [steps] learning rate of each step */
    float *host;
    double *seg_sums;         /* [nseg] */
    cl_kernel k;
    size_t local;
    bsc_table *total, *layers;
    bsc_csv_mark total_mark, layers_mark;  /* what their files hold */
    /* The optimizer measures the updates for us (norms filled by each step
     * at the slot set after the step before), or NULL: our own pass. */
    struct bsc_optimizer *tracker;
} update_norms;

static void release(update_norms *u)
{
    if (u->tracker)
        bsc_optimizer_track_updates(u->tracker, NULL, NULL, 0, NULL);
    u->tracker = NULL;
    obs_segments_free(&u->seg);
    bsc_tensor_free(&u->prev);
    bsc_tensor_free(&u->norms);
    free(u->lr);
    free(u->host);
    free(u->seg_sums);
    u->seg_sums = NULL;
    bsc_table_free(u->total);
    bsc_table_free(u->layers);
    u->lr = u->host = NULL;
    u->total = u->layers = NULL;
}

static bsc_status un_create(const bsc_component_config *cfg, void **self)
{
    int per_layer;
    bsc_status s = bsc_opt_bool(cfg->options, "per_layer", 1, &per_layer);
    if (s != BSC_OK)
        return s;
    update_norms *u = calloc(1, sizeof *u);
    if (!u)
        return bsc_fail(BSC_ERR_NOMEM, "update_norms: out of memory");
    u->per_layer = per_layer;
    *self = u;
    return BSC_OK;
}

static bsc_status un_run_start(void *self, const bsc_run_info *run)
{
    update_norms *u = self;
    release(u);
    u->ctx = run->ctx;
    bsc_status s;
    if ((s = obs_segments_build(run->ctx, run->model, &u->seg)) != BSC_OK)
        return s;
    size_t nc = u->seg.n_chunks ? u->seg.n_chunks : 1;
    u->steps = run->steps_per_epoch;
    u->last = 0;
    u->lr = calloc(u->steps ? u->steps : 1, sizeof *u->lr);
    u->host = malloc((u->steps ? u->steps : 1) * nc * sizeof *u->host);
    u->seg_sums = malloc((u->seg.n ? u->seg.n : 1) * sizeof *u->seg_sums);
    if (!u->lr || !u->host || !u->seg_sums)
        return bsc_fail(BSC_ERR_NOMEM, "update_norms: out of memory");
    if ((s = obs_alloc(run->ctx, BSC_F32, u->steps * nc, &u->norms)) != BSC_OK)
        return s;
    /* Where the optimizer can measure each update as it applies it (CPU
     * devices), that saves a pass over the parameters per step: two reads
     * and a write of every weight, a tenth of a small model's step. Else
     * (a GPU, another update_norms already tracking) a pass of our own. */
    if (u->seg.n && run->optimizer &&
        bsc_optimizer_track_updates(run->optimizer, u->seg.bounds, &u->seg.dev, nc,
                                    &u->norms) == BSC_OK)
        u->tracker = run->optimizer;
    else
        bsc_clear_error();
    u->total_mark = u->layers_mark = (bsc_csv_mark){0};
    if ((s = bsc_table_new(&u->total)) != BSC_OK || (s = bsc_table_new(&u->layers)) != BSC_OK)
        return s;
    if (!u->tracker &&
        ((s = obs_alloc(run->ctx, BSC_F32, bsc_model_n_params(run->model), &u->prev)) != BSC_OK ||
        (s = bsc_tensor_copy(run->ctx, bsc_model_params(run->model), &u->prev)) != BSC_OK ||
        (s = obs_kernel(run->ctx, "observers.cl", "obs_seg_diff_sqnorm", &u->k)) != BSC_OK ||
        (s = obs_local_size(run->ctx, u->k, &u->local)) != BSC_OK))
        return s;
    /* One work item per chunk: a few per group (PoCL runs a group's work
     * items as one loop) leave the groups to spread over the cores. */
    if (u->local > 8)
        u->local = 8;
    static const char *const tcols[] = {BSC_COL_STEP, BSC_COL_EPOCH, "lr", BSC_COL_NORM};
    static const char *const lcols[] = {BSC_COL_STEP, BSC_COL_EPOCH, BSC_COL_LAYER,
                                        BSC_COL_NORM};
    for (size_t i = 0; i < 4; i++)
        if ((s = bsc_table_column(u->total, tcols[i])) != BSC_OK ||
            (s = bsc_table_column(u->layers, lcols[i])) != BSC_OK)
            return s;
    return BSC_OK;
}

static bsc_status un_after_step(void *self, const bsc_run_info *run, const bsc_step_info *si)
{
    update_norms *u = self;
    size_t k = si->step_in_epoch - 1;
    if (u->seg.n == 0 || k >= u->steps)
        return BSC_OK;
    if (k == 0)
        u->first_step = si->step;
    u->last = si->step_in_epoch;
    u->lr[k] = si->lr;
    if (u->tracker) {
        /* This step's norms are in slot k; the next step writes the next. */
        bsc_optimizer_track_slot(u->tracker, (k + 1) % u->steps);
        return BSC_OK;
    }
    const bsc_tensor *w = bsc_model_params(run->model);
    cl_uint wo = (cl_uint)w->offset, po = (cl_uint)u->prev.offset,
            o = (cl_uint)(u->norms.offset + k * u->seg.n_chunks);
    cl_uint nc = (cl_uint)u->seg.n_chunks;
    cl_int copy = 1;
    bsc_karg a[] = {BSC_ARG(w->mem), BSC_ARG(wo), BSC_ARG(u->prev.mem), BSC_ARG(po),
                    BSC_ARG(u->seg.dev.mem), BSC_ARG(nc), BSC_ARG(u->norms.mem), BSC_ARG(o),
                    BSC_ARG(copy)};
    /* One work item per chunk; the grid is padded to whole work-groups. */
    size_t g = (u->seg.n_chunks + u->local - 1) / u->local * u->local;
    return bsc_launch(u->ctx, u->k, 9, a, 1, &g, &u->local);
}

static bsc_status un_epoch_end(void *self, const bsc_run_info *run, const bsc_epoch_info *e)
{
    update_norms *u = self;
    size_t ns = u->seg.n, nc = u->seg.n_chunks, n = u->last;
    bsc_status s;
    if (e->epoch == 0 || ns == 0)
        return BSC_OK;
    if ((s = obs_read(u->ctx, &u->norms, n * nc, u->host)) != BSC_OK)
        return s;
    for (size_t k = 0; k < n; k++) {
        const double *v = u->seg_sums;
        obs_segments_sum(&u->seg, u->host + k * nc, 1, u->seg_sums);
        double t = 0;
        for (size_t i = 0; i < ns; i++)
            t += v[i];
        double step = (double)(u->first_step + k);
        bsc_metrics_row r;
        if ((s = bsc_table_add_row(u->total, &r)) != BSC_OK)
            return s;
        bsc_metrics_set(&r, BSC_COL_STEP, step);
        bsc_metrics_set(&r, BSC_COL_EPOCH, e->epoch);
        bsc_metrics_set_float(&r, "lr", u->lr[k]);
        bsc_metrics_set(&r, BSC_COL_NORM, obs_sqrt(t));
        for (size_t i = 0; u->per_layer && i < ns; i++) {
            if ((s = bsc_table_add_row(u->layers, &r)) != BSC_OK)
                return s;
            bsc_metrics_set(&r, BSC_COL_STEP, step);
            bsc_metrics_set(&r, BSC_COL_EPOCH, e->epoch);
            bsc_metrics_set(&r, BSC_COL_LAYER, u->seg.layer[i]);
            bsc_metrics_set(&r, BSC_COL_NORM, obs_sqrt(v[i]));
        }
    }
    u->last = 0;
    if ((s = obs_write_run_table(run, u->total, BSC_FILE_UPDATE_NORMS, &u->total_mark)) != BSC_OK)
        return s;
    if (u->per_layer)
        return obs_write_run_table(run, u->layers, BSC_FILE_UPDATE_NORMS_LAYERS,
                                   &u->layers_mark);
    return BSC_OK;
}

static bsc_status un_run_end(void *self, const bsc_run_info *run)
{
    (void)run;
    release(self);
    return BSC_OK;
}

static void un_destroy(void *self)
{
    if (!self)
        return;
    release(self);
    free(self);
}

BSC_OBSERVER_TYPE(obs_update_norms, "update_norms",
               "||w_{t+1} - w_t|| of every step, total and per layer",
               BSC_OPTIONS(BSC_OPT("per_layer", BSC_OPT_BOOL, "true", "also one column per parameter tensor")),
               .create = un_create,
               .run_start = un_run_start,
               .after_step = un_after_step,
               .epoch_end = un_epoch_end,
               .run_end = un_run_end,
               .destroy = un_destroy);
