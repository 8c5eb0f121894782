/* The training loop of one run: epochs of steps, everything enqueued on the
 * device; per-step losses accumulate in a device buffer and come back once
 * per epoch, with the evaluation. */
#include "train.h"

#include "progress.h"

#include "batchscope/blas.h"
#include "batchscope/fsutil.h"
#include "batchscope/plugin_call.h"
#include "batchscope/reduce.h"
#include "batchscope/records.h"
#include "batchscope/rng.h"
#include "batchscope/results.h"
#include "batchscope/table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Markers let the host see how far the queue got without blocking, and bound
 * how far it runs ahead of the device. */
#define MARK_EVERY 16

static bsc_status alloc1(bsc_context *ctx, bsc_dtype dt, size_t n, bsc_tensor *t)
{
    int64_t d = (int64_t)(n ? n : 1);
    bsc_shape s = bsc_shape_make(1, &d);
    return bsc_tensor_alloc(ctx, dt, &s, t);
}

bsc_status bsc_trainer_prepare(bsc_trainer *t, long max_batch)
{
    const bsc_device_split *tr = &t->data->train;
    size_t steps, smallest = (size_t)max_batch;
    for (size_t i = 0; i < t->pipeline->training.n_runs; i++)
        if ((size_t)t->pipeline->training.runs[i].batch_size < smallest)
            smallest = (size_t)t->pipeline->training.runs[i].batch_size;
    steps = (tr->n + smallest - 1) / smallest;
    bsc_status s;
    if ((s = alloc1(t->ctx, BSC_I32, tr->n, &t->perm)) != BSC_OK ||
        (s = alloc1(t->ctx, BSC_F32, (size_t)max_batch * tr->row_len, &t->x)) != BSC_OK ||
        (s = alloc1(t->ctx, BSC_I32, (size_t)max_batch, &t->y)) != BSC_OK ||
        (s = alloc1(t->ctx, BSC_F32, steps, &t->step_loss)) != BSC_OK ||
        (s = alloc1(t->ctx, BSC_F32, bsc_model_n_params(t->model), &t->w0)) != BSC_OK)
        return s;
    return BSC_OK;
}

void bsc_trainer_release(bsc_trainer *t)
{
    bsc_tensor_free(&t->perm);
    bsc_tensor_free(&t->x);
    bsc_tensor_free(&t->y);
    bsc_tensor_free(&t->step_loss);
    bsc_tensor_free(&t->w0);
}

/* The first half of one data-parallel step (t->dp_size > 1): this rank's
 * rows of the batch, their share of the mean gradient (scaled by the whole
 * batch's count, so the shares add up to it) and of the mean loss, summed
 * over the ranks in rank order into every rank's gradient buffer; on rank 0
 * the whole batch gathered again for the observers, whose after_backward
 * then sees the model's buffers holding only this rank's rows. */
static bsc_status dp_grad(bsc_trainer *t, size_t start, size_t count, uint64_t step,
                          size_t slot)
{
    bsc_model *m = t->model;
    size_t np = bsc_model_n_params(m), r = (size_t)t->dp_rank, n = (size_t)t->dp_size;
    size_t lo = count * r / n, hi = count * (r + 1) / n, rows = hi - lo;
    float *h = t->dp_host;
    bsc_pass p = {.batch = rows, .training = 1, .seed = t->pipeline->seed, .step = step};
    bsc_status s = BSC_OK;
    memset(h, 0, (np + 1) * sizeof *h);
    if (rows) {
        if ((s = bsc_dataset_gather(t->ctx, &t->data->train, &t->perm, start + lo, rows, &t->x,
                                    &t->y)) != BSC_OK ||
            (s = bsc_model_forward_loss(m, &p, &t->x, &t->y)) != BSC_OK ||
            (s = bsc_model_backward(m, &p, &t->x, &t->y, 1.0f / (float)count)) != BSC_OK ||
            (s = bsc_sum(t->ctx, bsc_model_row_loss(m), rows, 1.0f / (float)count,
                         &t->step_loss, slot)) != BSC_OK ||
            (s = bsc_tensor_read(t->ctx, bsc_model_grads(m), h)) != BSC_OK)
            return s;
        cl_int err = clEnqueueReadBuffer(t->ctx->queue, t->step_loss.mem, CL_TRUE,
                                         t->step_loss.offset + slot * sizeof(float),
                                         sizeof(float), &h[np], 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return bsc_cl_fail(err, "reading a step's loss");
    }
    if ((s = t->reduce(t->reduce_user, h, np + 1)) != BSC_OK ||
        (s = bsc_tensor_write(t->ctx, bsc_model_grads(m), h)) != BSC_OK)
        return s;
    cl_int err = clEnqueueWriteBuffer(t->ctx->queue, t->step_loss.mem, CL_TRUE,
                                      t->step_loss.offset + slot * sizeof(float), sizeof(float),
                                      &h[np], 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return bsc_cl_fail(err, "writing a step's loss");
    if (t->dp_rank == 0 && t->n_observers)
        s = bsc_dataset_gather(t->ctx, &t->data->train, &t->perm, start, count, &t->x, &t->y);
    return s;
}

bsc_status bsc_train_grad(bsc_trainer *t, size_t start, size_t count, uint64_t step,
                          size_t slot)
{
    if (t->dp_size > 1)
        return dp_grad(t, start, count, step, slot);
    bsc_model *m = t->model;
    bsc_pass p = {.batch = count, .training = 1, .seed = t->pipeline->seed, .step = step};
    bsc_status s;
    if ((s = bsc_dataset_gather(t->ctx, &t->data->train, &t->perm, start, count, &t->x,
                                &t->y)) != BSC_OK ||
        (s = bsc_model_forward_loss(m, &p, &t->x, &t->y)) != BSC_OK ||
        (s = bsc_model_backward(m, &p, &t->x, &t->y, 1.0f / (float)count)) != BSC_OK)
        return s;
    /* Summed before the observers' after_backward, whose passes of their
     * own may overwrite the rows' losses. */
    return bsc_sum(t->ctx, bsc_model_row_loss(m), count, 1.0f / (float)count, &t->step_loss,
                   slot);
}

bsc_status bsc_train_update(bsc_trainer *t, float lr)
{
    return bsc_optimizer_step(t->opt, bsc_model_params(t->model), bsc_model_grads(t->model), lr);
}

bsc_status bsc_train_step(bsc_trainer *t, size_t start, size_t count, uint64_t step, float lr,
                          size_t slot)
{
    bsc_status s = bsc_train_grad(t, start, count, step, slot);
    return s == BSC_OK ? bsc_train_update(t, lr) : s;
}

/* Width of the run-name column: the longest name of the study. */
static int name_width(const bsc_trainer *t)
{
    size_t w = 6;
    for (size_t i = 0; i < t->pipeline->training.n_runs; i++) {
        size_t l = strlen(t->pipeline->training.runs[i].name);
        if (l > w)
            w = l;
    }
    return (int)(w > 64 ? 64 : w);
}

/* The progress line of a run: a bar redrawn in place on a terminal, a
 * plain line every bsc_progress_interval() seconds otherwise. loss is the mean of
 * this epoch's batch losses so far (NaN before the first came back). */
static void progress(bsc_trainer *t, const char *name, int epoch, int epochs, size_t step,
                     size_t steps, double loss, double rate, double eta)
{
    if (t->quiet)
        return;
    double now = bsc_now();
    if (!t->tty && now - t->last_plain < bsc_progress_interval())
        return;
    char e[32], bar[32], l[32];
    if (isfinite(eta))
        bsc_format_eta(eta, e, sizeof e);
    else
        snprintf(e, sizeof e, "?");
    if (isfinite(loss))
        snprintf(l, sizeof l, "%.4f", loss);
    else
        snprintf(l, sizeof l, "-");
    if (t->tty) {
        bsc_format_bar(((double)(epoch - 1) + (double)step / (double)steps) / (double)epochs, 24,
                       bar, sizeof bar);
        fprintf(t->log, "\r  %-*s [%s] epoch %d/%d step %zu/%zu loss %s %.0f samples/s ETA %s ",
                name_width(t), name, bar, epoch, epochs, step, steps, l, rate, e);
    } else {
        fprintf(t->log, "  %-*s epoch %d/%d step %zu/%zu loss %s %.0f samples/s ETA %s\n",
                name_width(t), name, epoch, epochs, step, steps, l, rate, e);
        t->last_plain = now;
    }
    fflush(t->log);
}

void bsc_run_outcome_record(const bsc_run_outcome *o, bsc_run_record *r)
{
    r->name = o->name;
    r->batch_size = o->batch_size;
    r->status = o->status;
    r->epochs_done = o->epochs_done;
    r->diverged_epoch = o->diverged_epoch;
    r->diverged_step = o->diverged_step;
    r->seconds = o->seconds;
    r->train_loss = o->train_loss;
    r->train_acc = o->train_acc;
    r->test_loss = o->test_loss;
    r->test_acc = o->test_acc;
}

static bsc_status write_run_json(const char *run_dir, const bsc_run_outcome *o)
{
    bsc_run_record *r = NULL;
    char *path = bsc_strdup_printf("%s/" BSC_FILE_RUN_RECORD, run_dir);
    bsc_status s = path ? bsc_run_record_new(&r) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK) {
        bsc_run_outcome_record(o, r);
        s = bsc_run_record_write(path, r);
    }
    bsc_run_record_free(r);
    free(path);
    return s;
}

/* Evaluates, fills the epoch's row, calls observers, writes metrics.csv. */
static bsc_status end_epoch(bsc_trainer *t, const bsc_run_info *run, bsc_table *metrics,
                            int epoch, uint64_t step, double lr, double batch_loss,
                            double seconds, const char *status, bsc_run_outcome *o)
{
    bsc_metrics_row row;
    bsc_status s = bsc_table_add_row(metrics, &row);
    double trl = NAN, tra = NAN, tel = NAN, tea = NAN;
    /* In a data-parallel run rank 0 evaluates for all (the weights are the
     * same on every rank). */
    int evaluate = t->dp_size <= 1 || t->dp_rank == 0;
    if (s == BSC_OK && evaluate)
        s = bsc_eval_loss(t->eval, BSC_SPLIT_TRAIN, 0, &trl, &tra);
    if (s == BSC_OK && evaluate && t->data->test.n)
        s = bsc_eval_loss(t->eval, BSC_SPLIT_TEST, 0, &tel, &tea);
    if (s != BSC_OK)
        return s;
    bsc_metrics_set(&row, BSC_COL_EPOCH, epoch);
    bsc_metrics_set(&row, BSC_COL_STEP, (double)step);
    /* the rate the device used, as update_norms.csv writes it */
    bsc_metrics_set_float(&row, "lr", (float)lr);
    bsc_metrics_set(&row, BSC_COL_TRAIN_LOSS, trl);
    bsc_metrics_set(&row, BSC_COL_TRAIN_ACC, tra);
    bsc_metrics_set(&row, BSC_COL_TEST_LOSS, tel);
    bsc_metrics_set(&row, BSC_COL_TEST_ACC, tea);
    bsc_metrics_set(&row, "batch_loss", batch_loss);
    bsc_metrics_set(&row, BSC_COL_SECONDS, seconds);
    bsc_metrics_set_str(&row, "status", status);
    o->train_loss = trl;
    o->train_acc = tra;
    o->test_loss = tel;
    o->test_acc = tea;
    bsc_epoch_info ei = {epoch, step, &row};
    for (size_t i = 0; i < t->n_observers; i++) {
        const bsc_observer_ops *ops = t->observers[i].ops;
        if (ops->epoch_end)
            BSC_PLUGIN_CALL(t->observers[i].type, "epoch_end",
                            s = ops->epoch_end(t->observers[i].self, run, &ei));
        if (s != BSC_OK)
            return bsc_fail_context(s, "observer %s at epoch %d", t->observers[i].type->name,
                                    epoch);
    }
    char *path = bsc_strdup_printf("%s/" BSC_FILE_METRICS, run->run_dir);
    if (!path)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    s = bsc_table_write_csv(metrics, path);
    free(path);
    return s;
}

static bsc_status save_ckpt(bsc_trainer *t, const char *run_dir, const char *name, long bs,
                            int epoch)
{
    char *path = bsc_strdup_printf("%s/%s", run_dir, name);
    if (!path)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    bsc_status s = bsc_checkpoint_save(t->model, path, bs, epoch);
    free(path);
    return s;
}

/* The observers' after_backward (after_update = 0: between the step's
 * backward and its update) or after_step, in the pipeline's order. */
static bsc_status step_hooks(bsc_trainer *t, const bsc_run_info *run, const bsc_step_info *si,
                             int after_update)
{
    bsc_status s = BSC_OK;
    for (size_t i = 0; i < t->n_observers && s == BSC_OK; i++) {
        const bsc_observer_ops *ops = t->observers[i].ops;
        void *self = t->observers[i].self;
        if (after_update && ops->after_step)
            BSC_PLUGIN_CALL(t->observers[i].type, "after_step",
                            s = ops->after_step(self, run, si));
        else if (!after_update && ops->after_backward)
            BSC_PLUGIN_CALL(t->observers[i].type, "after_backward",
                            s = ops->after_backward(self, run, si));
        if (s != BSC_OK)
            bsc_fail_context(s, "observer %s", t->observers[i].type->name);
    }
    return s;
}

bsc_status bsc_train_run(bsc_trainer *t, const bsc_run_cfg *rc, const char *run_dir,
                         bsc_run_outcome *o)
{
    /* The training block as this run sees it: its own rate, scaling, warm-up. */
    const bsc_training_cfg *cfg = &t->pipeline->training;
    const bsc_lr_cfg lrc = bsc_run_lr_cfg(cfg, rc);
    long batch_size = rc->batch_size;
    bsc_context *ctx = t->ctx;
    bsc_model *m = t->model;
    const bsc_device_split *tr = &t->data->train;
    size_t B = (size_t)batch_size;
    size_t steps = cfg->drop_last ? tr->n / B : (tr->n + B - 1) / B;
    bsc_table *metrics = NULL;
    uint32_t *perm = NULL;
    float *losses = NULL;
    cl_event marks[2] = {NULL, NULL};
    size_t mark_steps[2] = {0, 0};   /* steps of the epoch done when each marker fires */
    int reads_pending = 0;           /* non-blocking reads into losses[] may be in flight */
    bsc_status s = BSC_OK;
    double t0 = bsc_now();

    memset(o, 0, sizeof *o);
    o->batch_size = batch_size;
    o->name = rc->name;
    o->status = "failed";
    if (steps == 0)
        return bsc_fail(BSC_ERR_INVALID, "batch size %ld with drop_last leaves no step: the "
                        "training split has %zu examples", batch_size, tr->n);
    perm = malloc(tr->n * sizeof *perm);
    losses = malloc(steps * sizeof *losses);
    if (!perm || !losses) {
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((s = bsc_table_new(&metrics)) != BSC_OK)
        goto cleanup;

    /* Same initial weights for every run (same_init), else keyed by batch size. */
    if ((s = bsc_tensor_write(ctx, bsc_model_params(m), t->init_params)) != BSC_OK ||
        (bsc_model_n_state(m) && (s = bsc_tensor_write(ctx, bsc_model_state(m),
                                                        t->init_state)) != BSC_OK) ||
        (s = bsc_tensor_write(ctx, &t->w0, t->init_params)) != BSC_OK ||
        (s = bsc_optimizer_reset(t->opt)) != BSC_OK ||
        (s = save_ckpt(t, run_dir, BSC_FILE_INIT_CHECKPOINT, batch_size, 0)) != BSC_OK)
        goto cleanup;

    bsc_run_info run = {ctx, m, rc->name, B, steps, cfg->epochs, run_dir, &t->w0, t->opt};
    for (size_t i = 0; i < t->n_observers; i++) {
        const bsc_observer_ops *ops = t->observers[i].ops;
        if (ops->run_start)
            BSC_PLUGIN_CALL(t->observers[i].type, "run_start",
                            s = ops->run_start(t->observers[i].self, &run));
        if (s != BSC_OK) {
            bsc_fail_context(s, "observer %s", t->observers[i].type->name);
            goto cleanup;
        }
    }
    if ((s = end_epoch(t, &run, metrics, 0, 0, bsc_lr_at(&lrc, batch_size, 1, 0, steps), NAN,
                       0.0, "ok", o)) != BSC_OK)
        goto cleanup;

    uint64_t step = 0;
    double train_time = 0;
    double last_loss = o->train_loss;
    o->status = "completed";
    t->last_plain = bsc_now();
    for (int epoch = 1; epoch <= cfg->epochs; epoch++) {
        double e0 = bsc_now();
        if (cfg->shuffle) {
            if ((s = bsc_rng_permutation(t->pipeline->seed, BSC_RNG_SHUFFLE, (uint32_t)epoch,
                                         perm, tr->n)) != BSC_OK)
                goto cleanup;
        } else {
            for (size_t i = 0; i < tr->n; i++)
                perm[i] = (uint32_t)i;
        }
        bsc_tensor pv = t->perm;
        if ((s = bsc_tensor_write(ctx, &pv, perm)) != BSC_OK)
            goto cleanup;
        double lr = 0;
        /* The epoch's batch losses the host has: losses[0, summed) added
         * into loss_sum, and up to read_to enqueued for reading. */
        size_t done_mark = 0, summed = 0, read_to = 0;
        double loss_sum = 0;
        for (size_t k = 0; k < steps; k++) {
            if (t->stop_requested && t->stop_requested(t->stop_user)) {
                o->status = "interrupted";
                s = bsc_fail(BSC_ERR_INTERRUPTED, "interrupted at epoch %d, step %zu of run %s",
                             epoch, k, rc->name);
                goto cleanup;
            }
            size_t start = k * B;
            size_t count = tr->n - start < B ? tr->n - start : B;
            lr = bsc_lr_at(&lrc, batch_size, epoch, k, steps);
            step++;
            if ((s = bsc_train_grad(t, start, count, step, k)) != BSC_OK)
                goto cleanup;
            bsc_step_info si = {epoch, step, k + 1, count, (float)lr, &t->x, &t->y,
                                t->dp_size <= 1};
            if ((s = step_hooks(t, &run, &si, 0)) != BSC_OK ||
                (s = bsc_train_update(t, (float)lr)) != BSC_OK)
                goto cleanup;
            si.step_pass = 0;
            if ((s = step_hooks(t, &run, &si, 1)) != BSC_OK)
                goto cleanup;
            if ((k + 1) % MARK_EVERY == 0) {
                /* Wait for the marker before last: the host stays at most two
                 * marker intervals ahead, and progress shows real work. */
                if (marks[0]) {
                    clWaitForEvents(1, &marks[0]);
                    clReleaseEvent(marks[0]);
                    done_mark = mark_steps[0];
                }
                marks[0] = marks[1];
                mark_steps[0] = mark_steps[1];
                marks[1] = NULL;
                /* The step losses since the last marker come back behind the
                 * same marker (in order, without blocking): once it fires,
                 * the progress line has the epoch's running mean with no
                 * other synchronization. */
                cl_int err = clEnqueueReadBuffer(ctx->queue, t->step_loss.mem, CL_FALSE,
                                                 read_to * sizeof(float),
                                                 (k + 1 - read_to) * sizeof(float),
                                                 losses + read_to, 0, NULL, NULL);
                if (err != CL_SUCCESS) {
                    s = bsc_cl_fail(err, "reading step losses for the progress line");
                    goto cleanup;
                }
                reads_pending = 1;
                read_to = k + 1;
                err = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &marks[1]);
                if (err != CL_SUCCESS) {
                    s = bsc_cl_fail(err, "clEnqueueMarkerWithWaitList");
                    goto cleanup;
                }
                mark_steps[1] = k + 1;
                for (; summed < done_mark; summed++)
                    loss_sum += losses[summed];
                double el = train_time + (bsc_now() - e0);
                double done = (double)(epoch - 1) * (double)steps + (double)done_mark;
                double rate = el > 0 ? done * (double)B / el : 0;
                double left = (double)cfg->epochs * (double)steps - done;
                progress(t, rc->name, epoch, cfg->epochs, done_mark, steps,
                         done_mark ? loss_sum / (double)done_mark : NAN, rate,
                         rate > 0 ? left * (double)B / rate : NAN);
            }
        }
        for (int i = 0; i < 2; i++)
            if (marks[i]) {
                clReleaseEvent(marks[i]);
                marks[i] = NULL;
            }
        cl_int err = clEnqueueReadBuffer(ctx->queue, t->step_loss.mem, CL_TRUE, 0,
                                         steps * sizeof(float), losses, 0, NULL, NULL);
        reads_pending = 0;   /* in order: the progress reads finished before this one */
        if (err != CL_SUCCESS) {
            s = bsc_cl_fail(err, "reading step losses");
            goto cleanup;
        }
        train_time += bsc_now() - e0;
        double sum = 0;
        long bad = -1;
        for (size_t k = 0; k < steps; k++) {
            if (!isfinite(losses[k]) && bad < 0)
                bad = (long)k;
            sum += losses[k];
        }
        if (bad >= 0) {
            o->status = "diverged";
            o->diverged_epoch = epoch;
            o->diverged_step = (long)((uint64_t)(epoch - 1) * steps + (uint64_t)bad + 1);
        }
        last_loss = sum / (double)steps;
        if ((s = end_epoch(t, &run, metrics, epoch, step, lr, last_loss, train_time,
                           bad >= 0 ? "diverged" : "ok", o)) != BSC_OK)
            goto cleanup;
        o->epochs_done = epoch;
        if (!t->quiet) {
            if (t->tty)
                fputs("\r\033[K", t->log);
            fprintf(t->log, "  %-*s epoch %d/%d  batch_loss %.4f  train %.4f/%.2f%%  "
                    "test %.4f/%.2f%%  %.1fs%s\n", name_width(t), rc->name, epoch, cfg->epochs, last_loss,
                    o->train_loss, 100 * o->train_acc, o->test_loss, 100 * o->test_acc,
                    train_time, bad >= 0 ? "  DIVERGED" : "");
            fflush(t->log);
        }
        if (bad >= 0)
            break;
        if (cfg->checkpoint_every > 0 && epoch % cfg->checkpoint_every == 0 &&
            epoch < cfg->epochs) {
            char name[32];
            snprintf(name, sizeof name, BSC_PREFIX_EPOCH_CHECKPOINT "%03d.safetensors", epoch);
            if ((s = save_ckpt(t, run_dir, name, batch_size, epoch)) != BSC_OK)
                goto cleanup;
        }
    }
    if ((s = save_ckpt(t, run_dir, BSC_FILE_FINAL_CHECKPOINT, batch_size,
                       o->epochs_done)) != BSC_OK)
        goto cleanup;
    for (size_t i = 0; i < t->n_observers; i++) {
        const bsc_observer_ops *ops = t->observers[i].ops;
        if (ops->run_end)
            BSC_PLUGIN_CALL(t->observers[i].type, "run_end",
                            s = ops->run_end(t->observers[i].self, &run));
        if (s != BSC_OK) {
            bsc_fail_context(s, "observer %s", t->observers[i].type->name);
            goto cleanup;
        }
    }
    o->seconds = bsc_now() - t0;
    s = write_run_json(run_dir, o);
cleanup:
    /* A failed step may leave progress reads in flight into losses[]. */
    if (reads_pending)
        clFinish(ctx->queue);
    /* An observer's tracking ends with the run (its tensors may go). */
    bsc_optimizer_track_updates(t->opt, NULL, NULL, 0, NULL);
    for (int i = 0; i < 2; i++)
        if (marks[i])
            clReleaseEvent(marks[i]);
    if (s != BSC_OK)
        o->seconds = bsc_now() - t0;
    bsc_table_free(metrics);
    free(perm);
    free(losses);
    return s;
}
