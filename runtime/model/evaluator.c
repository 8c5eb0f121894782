/* The evaluator: forward-only loss/accuracy and full-batch gradients. */
#include "evaluator_internal.h"
#include "batchscope/reduce.h"
#include "batchscope/blas.h"

#include <stdlib.h>

static const bsc_device_split *split_of(const bsc_evaluator *e, bsc_split_id s)
{
    switch (s) {
    case BSC_SPLIT_TRAIN: return &e->data->train;
    case BSC_SPLIT_TEST: return &e->data->test;
    case BSC_SPLIT_VALIDATION: return &e->data->validation;
    }
    return NULL;
}

bsc_status bsc_evaluator_create(bsc_model *m, const bsc_device_dataset *data, size_t batch,
                                bsc_evaluator **out)
{
    *out = NULL;
    if (batch == 0 || batch > bsc_model_max_batch(m))
        return bsc_fail(BSC_ERR_INVALID, "evaluation batch %zu outside [1, %zu]", batch,
                        bsc_model_max_batch(m));
    bsc_evaluator *e = calloc(1, sizeof *e);
    if (!e)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    e->model = m;
    e->data = data;
    e->batch = batch;
    size_t most = data->train.n;
    if (data->test.n > most)
        most = data->test.n;
    if (data->validation.n > most)
        most = data->validation.n;
    e->max_chunks = (most + batch - 1) / batch + 1;
    int64_t n = (int64_t)(2 * e->max_chunks);
    bsc_shape s = bsc_shape_make(1, &n);
    bsc_status st = bsc_tensor_alloc(bsc_model_context(m), BSC_F32, &s, &e->sums);
    e->host_sums = malloc((size_t)n * sizeof(float));
    if (st == BSC_OK && !e->host_sums)
        st = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (st != BSC_OK) {
        bsc_evaluator_free(e);
        return st;
    }
    *out = e;
    return BSC_OK;
}

void bsc_evaluator_free(bsc_evaluator *e)
{
    if (!e)
        return;
    bsc_tensor_free(&e->sums);
    bsc_tensor_free(&e->hv_chunk);
    bsc_host_rows_free(e->rows);
    free(e->host_sums);
    free(e);
}

size_t bsc_eval_split_size(const bsc_evaluator *e, bsc_split_id split)
{
    const bsc_device_split *s = split_of(e, split);
    return s ? s->n : 0;
}

void bsc_eval_rows(const bsc_device_split *sp, size_t start, size_t count, bsc_tensor *x,
                   bsc_tensor *y)
{
    int64_t xd[2] = {(int64_t)count, (int64_t)sp->row_len};
    bsc_shape xs = bsc_shape_make(2, xd);
    int64_t yd = (int64_t)count;
    bsc_shape ys = bsc_shape_make(1, &yd);
    *x = bsc_tensor_view(&sp->images, start * sp->row_len, &xs);
    *y = bsc_tensor_view(&sp->labels, start, &ys);
}

bsc_status bsc_eval_batch(const bsc_evaluator *e, bsc_split_id split, size_t start,
                          size_t count, bsc_tensor *x, bsc_tensor *y)
{
    const bsc_device_split *sp = split_of(e, split);
    if (!sp || count == 0 || start > sp->n || count > sp->n - start)
        return bsc_fail(BSC_ERR_INVALID, "examples [%zu, %zu) of a split of %zu", start,
                        start + count, sp ? sp->n : 0);
    bsc_eval_rows(sp, start, count, x, y);
    return BSC_OK;
}

bsc_status bsc_eval_resolve(bsc_evaluator *e, bsc_split_id split, size_t subset,
                            const bsc_device_split **sp, size_t *n)
{
    *sp = split_of(e, split);
    if (!*sp || (*sp)->n == 0)
        return bsc_fail(BSC_ERR_INVALID, "the dataset has no %s split",
                        split == BSC_SPLIT_TRAIN ? "train" : split == BSC_SPLIT_TEST ? "test"
                                                                                    : "validation");
    *n = subset && subset < (*sp)->n ? subset : (*sp)->n;
    return BSC_OK;
}

/* The evaluator's host-rows plan for the whole model (host_rows.c): *h =
 * NULL (and BSC_OK) where the kernels run instead. */
static bsc_status eval_host_rows(bsc_evaluator *e, bsc_host_rows **h)
{
    *h = NULL;
    if (bsc_gemm_active(bsc_model_context(e->model)) != BSC_GEMM_HOST)
        return BSC_OK;
    if (!e->rows_tried) {
        char why[160];
        bsc_status s = bsc_host_rows_create(e->model, 0, &e->rows, why, sizeof why);
        if (s != BSC_OK && s != BSC_ERR_UNSUPPORTED)
            return s;
        e->rows_tried = 1;
    }
    *h = e->rows;
    return BSC_OK;
}

bsc_status bsc_eval_loss(bsc_evaluator *e, bsc_split_id split, size_t subset, double *loss,
                         double *acc)
{
    const bsc_device_split *sp;
    size_t n = 0;
    bsc_status s = bsc_eval_resolve(e, split, subset, &sp, &n);
    if (s != BSC_OK)
        return s;
    bsc_host_rows *h;
    if ((s = eval_host_rows(e, &h)) != BSC_OK)
        return s;
    size_t chunks = 0;
    for (size_t start = 0; start < n; start += e->batch, chunks++) {
        size_t count = n - start < e->batch ? n - start : e->batch;
        bsc_tensor x, y;
        bsc_eval_rows(sp, start, count, &x, &y);
        if (h) {
            const bsc_tensor *src[1] = {&x};
            const float one = 1.0f;
            if ((s = bsc_host_rows_loss(h, count, 1, &one, src, 0, &y, &e->sums, chunks)) !=
                BSC_OK)
                return s;
            continue;
        }
        bsc_pass p = {.batch = count, .training = 0, .seed = 0, .step = 0};
        if ((s = bsc_model_forward_loss(e->model, &p, &x, &y)) != BSC_OK ||
            (s = bsc_eval_sum_chunk(e, count, chunks)) != BSC_OK)
            return s;
    }
    return bsc_eval_read_sums(e, chunks, n, loss, acc);
}


bsc_status bsc_eval_sum_chunk(bsc_evaluator *e, size_t count, size_t chunk)
{
    bsc_context *ctx = bsc_model_context(e->model);
    bsc_status s = bsc_sum(ctx, bsc_model_row_loss(e->model), count, 1.0f, &e->sums, 2 * chunk);
    if (s == BSC_OK)
        s = bsc_sum(ctx, bsc_model_row_correct(e->model), count, 1.0f, &e->sums, 2 * chunk + 1);
    return s;
}

bsc_status bsc_eval_read_sums(bsc_evaluator *e, size_t chunks, size_t n, double *loss,
                              double *acc)
{
    bsc_context *ctx = bsc_model_context(e->model);
    cl_int err = clEnqueueReadBuffer(ctx->queue, e->sums.mem, CL_TRUE, 0,
                                     2 * chunks * sizeof(float), e->host_sums, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return bsc_cl_fail(err, "reading evaluation sums");
    double l = 0, c = 0;
    for (size_t i = 0; i < chunks; i++) {
        l += e->host_sums[2 * i];
        c += e->host_sums[2 * i + 1];
    }
    if (loss)
        *loss = l / (double)n;
    if (acc)
        *acc = c / (double)n;
    return BSC_OK;
}

static bsc_status load_params(bsc_evaluator *e, const bsc_tensor *params, const bsc_tensor *state)
{
    bsc_context *ctx = bsc_model_context(e->model);
    bsc_status s = BSC_OK;
    if (params && params->mem != bsc_model_params(e->model)->mem)
        s = bsc_tensor_copy(ctx, params, bsc_model_params(e->model));
    if (s == BSC_OK && state && bsc_model_n_state(e->model) &&
        state->mem != bsc_model_state(e->model)->mem)
        s = bsc_tensor_copy(ctx, state, bsc_model_state(e->model));
    return s;
}

bsc_status bsc_eval_loss_at(bsc_evaluator *e, const bsc_tensor *params, const bsc_tensor *state,
                            bsc_split_id split, size_t subset, double *loss, double *acc)
{
    bsc_status s = load_params(e, params, state);
    return s == BSC_OK ? bsc_eval_loss(e, split, subset, loss, acc) : s;
}

/* One evaluation batch's share of a sum over the split: writes it (already
 * scaled by `scale`, 1/n for the mean) into the model buffer *part. */
typedef bsc_status (*batch_fn)(bsc_evaluator *e, const bsc_pass *p, const bsc_tensor *x,
                               const bsc_tensor *y, float scale, const void *user,
                               const bsc_tensor **part);

/* total = the sum over the evaluation batches of the first `subset` (0:
 * all) examples of the split of what fn writes, added in batch order;
 * *loss (optional) the mean loss. Eval mode. */
static bsc_status sum_batches(bsc_evaluator *e, bsc_split_id split, size_t subset, batch_fn fn,
                              const void *user, bsc_tensor *total, double *loss)
{
    const bsc_device_split *sp;
    size_t n = 0;
    bsc_status s = bsc_eval_resolve(e, split, subset, &sp, &n);
    if (s != BSC_OK)
        return s;
    bsc_context *ctx = bsc_model_context(e->model);
    size_t np = bsc_model_n_params(e->model);
    if ((s = bsc_tensor_fill(ctx, total, 0.0f)) != BSC_OK)
        return s;
    size_t chunks = 0;
    for (size_t start = 0; start < n; start += e->batch, chunks++) {
        size_t count = n - start < e->batch ? n - start : e->batch;
        bsc_tensor x, y;
        const bsc_tensor *part = NULL;
        bsc_eval_rows(sp, start, count, &x, &y);
        bsc_pass p = {.batch = count, .training = 0, .seed = 0, .step = 0};
        if ((s = fn(e, &p, &x, &y, 1.0f / (float)n, user, &part)) != BSC_OK ||
            (s = bsc_axpy(ctx, np, 1.0f, part, total)) != BSC_OK ||
            (s = bsc_eval_sum_chunk(e, count, chunks)) != BSC_OK)
            return s;
    }
    return bsc_eval_read_sums(e, chunks, n, loss, NULL);
}

static bsc_status grad_batch(bsc_evaluator *e, const bsc_pass *p, const bsc_tensor *x,
                             const bsc_tensor *y, float scale, const void *user,
                             const bsc_tensor **part)
{
    (void)user;
    bsc_status s = bsc_model_forward_loss(e->model, p, x, y);
    if (s == BSC_OK)
        s = bsc_model_backward(e->model, p, x, y, scale);
    *part = bsc_model_grads(e->model);
    return s;
}

bsc_status bsc_eval_grad(bsc_evaluator *e, bsc_split_id split, size_t subset, bsc_tensor *grad,
                         double *loss)
{
    return sum_batches(e, split, subset, grad_batch, NULL, grad, loss);
}

static bsc_status hvp_batch(bsc_evaluator *e, const bsc_pass *p, const bsc_tensor *x,
                            const bsc_tensor *y, float scale, const void *user,
                            const bsc_tensor **part)
{
    *part = &e->hv_chunk;
    return bsc_model_hvp(e->model, p, x, y, user, scale, &e->hv_chunk);
}

bsc_status bsc_eval_hvp(bsc_evaluator *e, bsc_split_id split, size_t subset,
                        const bsc_tensor *v, bsc_tensor *hv, double *loss)
{
    char why[160];
    if (!bsc_model_has_hvp(e->model, why, sizeof why))
        return bsc_fail(BSC_ERR_UNSUPPORTED, "exact Hessian-vector product: %s", why);
    if (!e->hv_chunk.mem) {
        size_t np = bsc_model_n_params(e->model);
        int64_t d = (int64_t)(np ? np : 1);
        bsc_shape sh = bsc_shape_make(1, &d);
        bsc_status s = bsc_tensor_alloc(bsc_model_context(e->model), BSC_F32, &sh, &e->hv_chunk);
        if (s != BSC_OK)
            return s;
    }
    return sum_batches(e, split, subset, hvp_batch, v, hv, loss);
}
