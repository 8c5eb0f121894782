/* batchscope layers plugin: the softmax cross-entropy loss.
 *
 * loss_i = logsumexp(z_i) - z_i[y_i]; the mean over the batch is the host's
 * business (it passes scale = 1/batch to backward), so this file only ever
 * deals in per-row losses. */
#include <math.h>
#include <stdlib.h>
#include "layers.h"

typedef struct softmax_ce {
    int K;
    bsc_context *ctx;
    cl_kernel k_fwd, k_bwd, k_rbwd;
} softmax_ce;

static bsc_status ce_create(const bsc_loss_config *cfg, void **self)
{
    if (cfg->input.ndim != 1 || cfg->input.dim[0] < 1 || cfg->input.dim[0] > INT_MAX) {
        char buf[96];
        bsc_shape_format(&cfg->input, buf, sizeof buf);
        if (cfg->options)
            return bsc_node_fail(cfg->options, BSC_ERR_INVALID,
                                 "softmax_cross_entropy expects 1-D logits per sample, got %s",
                                 buf);
        return bsc_fail(BSC_ERR_INVALID,
                        "softmax_cross_entropy expects 1-D logits per sample, got %s", buf);
    }
    if (cfg->n_classes > 0 && cfg->input.dim[0] != cfg->n_classes) {
        const char *fmt = "softmax_cross_entropy: the model outputs %lld logits but the "
                          "dataset has %d classes";
        if (cfg->options)
            return bsc_node_fail(cfg->options, BSC_ERR_INVALID, fmt,
                                 (long long)cfg->input.dim[0], cfg->n_classes);
        return bsc_fail(BSC_ERR_INVALID, fmt, (long long)cfg->input.dim[0], cfg->n_classes);
    }
    softmax_ce *c = calloc(1, sizeof *c);
    if (!c)
        return bsc_fail(BSC_ERR_NOMEM, "softmax_cross_entropy: out of memory");
    c->K = (int)cfg->input.dim[0];
    *self = c;
    return BSC_OK;
}

static bsc_status ce_bind(void *self, bsc_context *ctx, size_t max_batch,
                          const bsc_tensor *workspace)
{
    softmax_ce *c = self;
    bsc_status st;
    (void)workspace;
    if (max_batch > (size_t)INT_MAX / (size_t)c->K)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "softmax_cross_entropy: batch %zu x %d logits "
                        "exceeds the 2^31 element index limit", max_batch, c->K);
    c->ctx = ctx;
    if ((st = layers_kernel(ctx, "loss.cl", "softmax_ce_forward", &c->k_fwd)) != BSC_OK ||
        (st = layers_kernel(ctx, "loss.cl", "softmax_ce_backward", &c->k_bwd)) != BSC_OK ||
        (st = layers_kernel(ctx, "loss.cl", "softmax_ce_rbackward", &c->k_rbwd)) != BSC_OK)
        return st;
    return BSC_OK;
}

/* The kernels' formulas (cl/layers/loss.cl) on host rows [lo, hi). */
static void ce_rows_forward(int K, size_t lo, size_t hi, const float *logits,
                            const int32_t *labels, float *loss, float *correct)
{
    for (size_t i = lo; i < hi; i++) {
        const float *row = logits + i * (size_t)K;
        float m = row[0];
        int am = 0;
        for (int k = 1; k < K; k++)
            if (row[k] > m) {   /* strict: ties keep the first maximum */
                m = row[k];
                am = k;
            }
        float s = 0.0f;
        for (int k = 0; k < K; k++)
            s += expf(row[k] - m);
        float lse = m + logf(s);
        int y = labels[i];
        int ok = y >= 0 && y < K;
        loss[i] = ok ? lse - row[y] : NAN;
        if (correct)
            correct[i] = (ok && am == y) ? 1.0f : 0.0f;
    }
}

static void ce_rows_backward(int K, size_t lo, size_t hi, const float *logits,
                             const int32_t *labels, float scale, float *dz)
{
    for (size_t i = lo; i < hi; i++) {
        const float *row = logits + i * (size_t)K;
        float *drow = dz + i * (size_t)K;
        float m = row[0];
        for (int k = 1; k < K; k++)
            m = fmaxf(m, row[k]);
        float s = 0.0f;
        for (int k = 0; k < K; k++)
            s += expf(row[k] - m);
        float inv = 1.0f / s;
        int y = labels[i];
        for (int k = 0; k < K; k++) {
            float p = expf(row[k] - m) * inv;
            drow[k] = scale * (p - (k == y ? 1.0f : 0.0f));
        }
    }
}

/* A training step's loss and its gradient as host tasks (host_task.h:
 * bsc_host_elementwise), rows split over the host threads. */
typedef struct ce_job {
    int K, has_correct;
    float scale;
    size_t rows;
    float *const *data;   /* logits, labels, then loss (, correct) or dlogits */
} ce_job;

/* Rows per part: a part is worth a thread's hand-over from ~8k logits on. */
#define CE_GRAIN_FLOATS 8192

static void ce_forward_range(void *p, size_t lo, size_t hi)
{
    const ce_job *j = p;
    ce_rows_forward(j->K, lo, hi, j->data[0], (const int32_t *)j->data[1], j->data[2],
                    j->has_correct ? j->data[3] : NULL);
}

static void ce_backward_range(void *p, size_t lo, size_t hi)
{
    const ce_job *j = p;
    ce_rows_backward(j->K, lo, hi, j->data[0], (const int32_t *)j->data[1], j->scale,
                     j->data[2]);
}

static void ce_forward_task(void *args, float *const *data)
{
    ce_job *j = args;
    j->data = data;
    bsc_host_for(j->rows, CE_GRAIN_FLOATS / (size_t)j->K + 1, ce_forward_range, j);
}

static void ce_backward_task(void *args, float *const *data)
{
    ce_job *j = args;
    j->data = data;
    bsc_host_for(j->rows, CE_GRAIN_FLOATS / (size_t)j->K + 1, ce_backward_range, j);
}

/* The task's tensors as views of exactly `rows` rows, each of width[i]
 * values, for the task's bounds check. */
static bsc_status ce_host_task(const softmax_ce *c, bsc_host_fn fn, ce_job *j, size_t n,
                               const bsc_tensor *const *t, const size_t *width)
{
    if (j->rows == 0)
        return BSC_OK;
    bsc_tensor v[4];
    const bsc_tensor *tp[4];
    for (size_t i = 0; i < n; i++) {
        v[i] = *t[i];
        v[i].numel = j->rows * width[i];
        tp[i] = &v[i];
    }
    return bsc_enqueue_host(c->ctx, fn, j, sizeof *j, n, tp);
}

static bsc_status ce_forward(void *self, size_t batch, const bsc_tensor *logits,
                             const bsc_tensor *labels, bsc_tensor *loss, bsc_tensor *correct)
{
    softmax_ce *c = self;
    cl_int zo, lo, losso, co = 0, B = (cl_int)batch, has_correct = correct != NULL;
    bsc_status st;
    if (labels->dtype != BSC_I32)
        return bsc_fail(BSC_ERR_INVALID, "softmax_cross_entropy: labels must be I32");
    if (bsc_host_elementwise(c->ctx)) {
        ce_job j = {c->K, correct != NULL, 0.0f, batch, NULL};
        return ce_host_task(c, ce_forward_task, &j, correct ? 4 : 3,
                            (const bsc_tensor *[]){logits, labels, loss, correct},
                            (const size_t[]){(size_t)c->K, 1, 1, 1});
    }
    if ((st = layers_offset(logits, &zo)) != BSC_OK || (st = layers_offset(labels, &lo)) != BSC_OK ||
        (st = layers_offset(loss, &losso)) != BSC_OK ||
        (correct && (st = layers_offset(correct, &co)) != BSC_OK))
        return st;
    /* Without a `correct` tensor the kernel still needs a valid buffer
     * argument; it never writes it. */
    cl_mem cm = correct ? correct->mem : loss->mem;
    bsc_karg a[] = {BSC_ARG(logits->mem), BSC_ARG(zo), BSC_ARG(labels->mem), BSC_ARG(lo),
                    BSC_ARG(B), BSC_ARG(c->K), BSC_ARG(loss->mem), BSC_ARG(losso),
                    BSC_ARG(cm), BSC_ARG(co), BSC_ARG(has_correct)};
    return layers_run(c->ctx, c->k_fwd, batch, 11, a);
}

static bsc_status ce_backward(void *self, size_t batch, const bsc_tensor *logits,
                              const bsc_tensor *labels, float scale, bsc_tensor *dlogits)
{
    softmax_ce *c = self;
    cl_int zo, lo, dzo, B = (cl_int)batch;
    bsc_status st;
    if (labels->dtype != BSC_I32)
        return bsc_fail(BSC_ERR_INVALID, "softmax_cross_entropy: labels must be I32");
    if (bsc_host_elementwise(c->ctx)) {
        ce_job j = {c->K, 0, scale, batch, NULL};
        return ce_host_task(c, ce_backward_task, &j, 3,
                            (const bsc_tensor *[]){logits, labels, dlogits},
                            (const size_t[]){(size_t)c->K, 1, (size_t)c->K});
    }
    if ((st = layers_offset(logits, &zo)) != BSC_OK || (st = layers_offset(labels, &lo)) != BSC_OK ||
        (st = layers_offset(dlogits, &dzo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(logits->mem), BSC_ARG(zo), BSC_ARG(labels->mem), BSC_ARG(lo),
                    BSC_ARG(B), BSC_ARG(c->K), BSC_ARG(scale), BSC_ARG(dlogits->mem),
                    BSC_ARG(dzo)};
    return layers_run(c->ctx, c->k_bwd, batch, 9, a);
}

/* The R-operator: rdz = scale * (diag p - p p^T) rz per row (loss.cl). */
static bsc_status ce_r_backward(void *self, size_t batch, const bsc_tensor *logits,
                                const bsc_tensor *rlogits, const bsc_tensor *labels, float scale,
                                bsc_tensor *rdlogits)
{
    softmax_ce *c = self;
    cl_int zo, rzo, rdzo, B = (cl_int)batch;
    bsc_status st;
    (void)labels;
    if ((st = layers_offset(logits, &zo)) != BSC_OK || (st = layers_offset(rlogits, &rzo)) != BSC_OK ||
        (st = layers_offset(rdlogits, &rdzo)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(logits->mem), BSC_ARG(zo), BSC_ARG(rlogits->mem), BSC_ARG(rzo),
                    BSC_ARG(B), BSC_ARG(c->K), BSC_ARG(scale), BSC_ARG(rdlogits->mem),
                    BSC_ARG(rdzo)};
    return layers_run(c->ctx, c->k_rbwd, batch, 9, a);
}

/* Per-row losses on host rows (plugin.h), the forward kernel's formula. */
static void ce_host_forward(void *self, size_t rows, const float *logits,
                            const int32_t *labels, float *loss, float *correct)
{
    ce_rows_forward(((const softmax_ce *)self)->K, 0, rows, logits, labels, loss, correct);
}

BSC_LOSS_TYPE(layers_softmax_ce, "softmax_cross_entropy",
               "softmax followed by the negative log-likelihood of the label",
               BSC_NO_OPTIONS,
               .create = ce_create,
               .bind = ce_bind,
               .forward = ce_forward,
               .backward = ce_backward,
               .r_backward = ce_r_backward,
               .host_forward = ce_host_forward);
