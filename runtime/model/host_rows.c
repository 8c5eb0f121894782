/* Evaluation on host rows: the loss of a batch from layer `first` on, as
 * one host task, on a CPU device whose GEMMs run on the host BLAS.
 *
 * The kernel path runs each layer over the whole batch: for the MLP's
 * 1000-row evaluation batches every 2 MB intermediate goes out to memory
 * and back between a GEMM and the elementwise kernel after it, and each
 * layer is a command of its own. Here the batch is cut into blocks of
 * rows small enough that a block's activations (two buffers of block x the
 * widest row) stay in the cores' caches; the host threads take blocks as
 * they finish theirs, and each block runs through every layer's
 * host_forward (plugin.h) and the loss's, then adds its rows' loss and
 * correct counts into a per-block sum. The task adds the block sums in
 * block order, so the result does not depend on the thread count, and
 * writes the batch's two sums into the evaluator's slots: no per-row loss
 * buffer and no reduction kernels.
 *
 * The block's input is layer first's input rows, read in place, or (for a
 * family of points, eval_family.c) sum_j c_j Y_j over the batch's rows of a
 * few precomputed first-layer outputs, formed block by block, through a
 * ReLU when the family folds one in. */
#include "evaluator_internal.h"
#include "model_internal.h"
#include "batchscope/blas.h"
#include "batchscope/host_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Floats of one activation buffer (two per thread). Each block's GEMM packs
 * the layer's weights anew, so blocks must not be too small: on the MLP's
 * 512-wide layers (2-core Zen 4, 1 MB L2 per core, 32 MB L3) a surface point
 * took 0.0377-0.0410 s with blocks of 64 rows, 0.0338-0.0369 with 128,
 * 0.0333-0.0342 with 256 and 0.0334-0.0337 with 512; 256 rows keeps
 * four blocks to share out in a batch of 1000. */
#define ROWS_BLOCK_FLOATS 131072
#define ROWS_BLOCK_ALIGN 16

struct bsc_host_rows {
    bsc_model *m;
    size_t first;
    size_t in_width;          /* floats per row into layer `first` */
    size_t width_max;         /* the widest row along the way */
    size_t block;             /* rows per block */
    int threads;
    size_t per_thread;        /* floats of scratch per thread */
    float *scratch;
    size_t max_blocks;
    double *block_sums;       /* [max_blocks][2] */
    const float **ptrs;       /* per model tensor: its host address, set per task */
};

static size_t numel(const bsc_shape *s)
{
    size_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        n *= (size_t)s->dim[d];
    return n;
}

void bsc_host_rows_free(bsc_host_rows *h)
{
    if (!h)
        return;
    /* A task still in the queue (an evaluation that failed to enqueue a
     * later batch returns without waiting) reads this plan: let it finish. */
    bsc_finish(h->m->ctx);
    free(h->scratch);
    free(h->block_sums);
    free(h->ptrs);
    free(h);
}

bsc_status bsc_host_rows_create(bsc_model *m, size_t first, bsc_host_rows **out, char *why,
                                size_t len)
{
    *out = NULL;
    if (bsc_gemm_active(m->ctx) != BSC_GEMM_HOST) {
        snprintf(why, len, "the GEMMs do not run on the host BLAS");
        return BSC_ERR_UNSUPPORTED;
    }
    /* $BATCHSCOPE_HOST_ROWS: 0 turns the path off, N > 0 sets the rows per
     * block (tests compare both with the kernels, and blocks of a few rows). */
    const char *env = getenv("BATCHSCOPE_HOST_ROWS");
    long env_rows = env && *env ? strtol(env, NULL, 10) : -1;
    if (env_rows == 0) {
        snprintf(why, len, "BATCHSCOPE_HOST_ROWS=0");
        return BSC_ERR_UNSUPPORTED;
    }
    if (first > m->n_layers) {
        snprintf(why, len, "no layer %zu", first);
        return BSC_ERR_UNSUPPORTED;
    }
    size_t in_width = first ? numel(&m->layers[first - 1].out) : numel(&m->input);
    size_t width_max = in_width;
    for (size_t i = first; i < m->n_layers; i++) {
        if (!m->layers[i].ops->host_forward) {
            snprintf(why, len, "layer %zu (%s) has no host_forward", i,
                     m->layers[i].type->name);
            return BSC_ERR_UNSUPPORTED;
        }
        size_t w = numel(&m->layers[i].out);
        if (w > width_max)
            width_max = w;
    }
    if (!m->loss_ops->host_forward) {
        snprintf(why, len, "the loss (%s) has no host_forward", m->loss_type->name);
        return BSC_ERR_UNSUPPORTED;
    }
    bsc_host_rows *h = calloc(1, sizeof *h);
    if (!h)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    h->m = m;
    h->first = first;
    h->in_width = in_width;
    h->width_max = width_max ? width_max : 1;
    size_t block = ROWS_BLOCK_FLOATS / h->width_max / ROWS_BLOCK_ALIGN * ROWS_BLOCK_ALIGN;
    h->block = env_rows > 0 ? (size_t)env_rows : block ? block : ROWS_BLOCK_ALIGN;
    if (h->block > m->max_batch && m->max_batch)
        h->block = m->max_batch;
    h->threads = bsc_host_threads();
    /* Two activation buffers, then the block's losses and correct flags,
     * each rounded to a cache line. */
    size_t act = (h->block * h->width_max + 15) / 16 * 16, rows = (h->block + 15) / 16 * 16;
    h->per_thread = 2 * act + 2 * rows;
    h->max_blocks = (m->max_batch + h->block - 1) / h->block;
    h->scratch = aligned_alloc(64, (size_t)h->threads * h->per_thread * sizeof(float));
    h->block_sums = calloc(2 * (h->max_blocks ? h->max_blocks : 1), sizeof *h->block_sums);
    h->ptrs = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *h->ptrs);
    if (!h->scratch || !h->block_sums || !h->ptrs) {
        int threads = h->threads;
        size_t rows_per_block = h->block;
        bsc_host_rows_free(h);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory for %d threads' blocks of %zu rows",
                        threads, rows_per_block);
    }
    *out = h;
    return BSC_OK;
}

size_t bsc_host_rows_block(const bsc_host_rows *h)
{
    return h->block;
}

/* What the task is handed (copied by the queue). */
typedef struct rows_args {
    bsc_host_rows *h;
    size_t rows;
    size_t n_src;
    float coef[BSC_HOST_ROWS_MAX_SRC];
    int relu;
    int has_state;
    size_t slot;
} rows_args;

/* What the parts share while the task runs. */
typedef struct rows_job {
    const rows_args *a;
    const float *src[BSC_HOST_ROWS_MAX_SRC];
    const int32_t *labels;
} rows_job;

static void rows_part(void *arg, int part, int parts)
{
    (void)parts;
    const rows_job *j = arg;
    const rows_args *a = j->a;
    bsc_host_rows *h = a->h;
    const bsc_model *m = h->m;
    size_t r0 = (size_t)part * h->block;
    size_t rb = a->rows - r0 < h->block ? a->rows - r0 : h->block;
    float *buf0 = h->scratch + (size_t)bsc_host_worker() * h->per_thread;
    size_t act = (h->block * h->width_max + 15) / 16 * 16, rows = (h->block + 15) / 16 * 16;
    float *buf1 = buf0 + act, *loss = buf1 + act, *correct = loss + rows;
    size_t w = h->in_width, n = rb * w;
    const float *in;
    if (a->n_src == 1 && a->coef[0] == 1.0f && !a->relu) {
        in = j->src[0] + r0 * w;
    } else {
        /* The combine kernel's sum, (c0 y0 + c1 y1) + c2 y2 with the zero
         * terms left out, and its ReLU (!(v > 0): 0), pass by pass over a
         * block that stays in cache. */
        const float *y = j->src[0] + r0 * w;
        float c = a->coef[0];
        for (size_t i = 0; i < n; i++)
            buf0[i] = c * y[i];
        for (size_t s = 1; s < a->n_src; s++) {
            y = j->src[s] + r0 * w;
            c = a->coef[s];
            if (c != 0.0f)
                for (size_t i = 0; i < n; i++)
                    buf0[i] += c * y[i];
        }
        if (a->relu)
            for (size_t i = 0; i < n; i++)
                buf0[i] = buf0[i] > 0.0f ? buf0[i] : 0.0f;
        in = buf0;
    }
    for (size_t i = h->first; i < m->n_layers; i++) {
        const layer *L = &m->layers[i];
        float *o = in == buf0 ? buf1 : buf0;
        L->ops->host_forward(L->self, rb, in, h->ptrs + L->first_tensor, o);
        in = o;
    }
    m->loss_ops->host_forward(m->loss_self, rb, in, j->labels + r0, loss, correct);
    double sl = 0.0, sc = 0.0;
    for (size_t r = 0; r < rb; r++) {
        sl += loss[r];
        sc += correct[r];
    }
    h->block_sums[2 * (size_t)part] = sl;
    h->block_sums[2 * (size_t)part + 1] = sc;
}

/* data: the sources, params, state (when there is one), labels, sums. */
static void rows_task(void *args, float *const *data)
{
    const rows_args *a = args;
    bsc_host_rows *h = a->h;
    const bsc_model *m = h->m;
    rows_job j = {.a = a};
    size_t t = 0;
    for (size_t s = 0; s < a->n_src; s++)
        j.src[s] = data[t++];
    const float *params = data[t++];
    const float *state = a->has_state ? data[t++] : NULL;
    j.labels = (const int32_t *)data[t++];
    float *sums = data[t];
    for (size_t i = 0; i < m->n_tensors; i++)
        h->ptrs[i] = (m->tensors[i].spec.role == BSC_ROLE_STATE ? state : params) +
                     m->tensors[i].offset;
    int parts = (int)((a->rows + h->block - 1) / h->block);
    bsc_host_parallel(parts, rows_part, &j);
    double sl = 0.0, sc = 0.0;
    for (int p = 0; p < parts; p++) {
        sl += h->block_sums[2 * (size_t)p];
        sc += h->block_sums[2 * (size_t)p + 1];
    }
    sums[0] = (float)sl;
    sums[1] = (float)sc;
}

bsc_status bsc_host_rows_loss(bsc_host_rows *h, size_t rows, size_t n_src, const float *coef,
                              const bsc_tensor *const *src, int relu, const bsc_tensor *labels,
                              const bsc_tensor *sums, size_t slot)
{
    bsc_model *m = h->m;
    if (rows == 0 || rows > m->max_batch || n_src < 1 || n_src > BSC_HOST_ROWS_MAX_SRC)
        return bsc_fail(BSC_ERR_INVALID, "host rows: %zu rows (at most %zu) from %zu sources",
                        rows, m->max_batch, n_src);
    rows_args a = {.h = h, .rows = rows, .n_src = n_src, .relu = relu, .slot = slot,
                   .has_state = m->n_state > 0};
    const bsc_tensor *t[BSC_HOST_TASK_MAX_TENSORS];
    bsc_tensor view[BSC_HOST_ROWS_MAX_SRC], lab, out;
    size_t n = 0;
    for (size_t s = 0; s < n_src; s++) {
        a.coef[s] = coef[s];
        int64_t d = (int64_t)(rows * h->in_width);
        bsc_shape sh = bsc_shape_make(1, &d);
        if (src[s]->numel < rows * h->in_width)
            return bsc_fail(BSC_ERR_INVALID, "host rows: source %zu holds %zu floats, not "
                            "%zu rows of %zu", s, src[s]->numel, rows, h->in_width);
        view[s] = bsc_tensor_view(src[s], 0, &sh);
        t[n++] = &view[s];
    }
    t[n++] = &m->params;
    if (a.has_state)
        t[n++] = &m->state;
    int64_t d = (int64_t)rows, two = 2;
    bsc_shape rs = bsc_shape_make(1, &d), ts = bsc_shape_make(1, &two);
    lab = bsc_tensor_view(labels, 0, &rs);
    out = bsc_tensor_view(sums, 2 * slot, &ts);
    t[n++] = &lab;
    t[n++] = &out;
    return bsc_enqueue_host(m->ctx, rows_task, &a, sizeof a, n, t);
}
