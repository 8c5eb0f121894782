/* batchscope observers plugin: per-example gradient statistics of a batch.
 *
 * A backward pass of a batch gives two things at once: the gradient buffer
 * holds c sum_i g_i (c the loss scale: 1/B for a training step's mean loss),
 * and each row of every layer's output gradient is c d loss_i / d out, that
 * example's own, which is exactly what a layer's per_example_sqnorm hook
 * wants. Dense layers turn that into c^2 ||g_i||^2 from their outer-product
 * structure (||x_i||^2 ||dy_i||^2, plus ||dy_i||^2 for the bias) at
 * O(B (in + out)) instead of O(B in out).
 *
 * During training the statistics come from the step's own forward and
 * backward (the observers' after_backward hook, plugin.h: the weights the
 * step starts from, before the update): the per-example gradients that the
 * update averages, with no pass of our own where every layer with trainable
 * tensors has the hook. Where the model's buffers do not hold the step's
 * pass (a data-parallel step: each rank has its own rows) the same forward
 * and backward of the whole batch is run here, at the same weights and
 * scale, so the numbers are the same. After training (gradient_diversity's
 * common batch) the pass is always our own, with c = 1.
 *
 * A layer with trainable tensors and no hook (conv2d, batchnorm) falls back to
 * micro-batches of one: example i alone through forward and backward, then
 * the squared norm of the gradient over the fallback layers' ranges is added
 * to q_i. That costs B small forward/backward passes (B launches of every
 * layer's kernels), which is why these observers run every K steps only.
 * Every pass run here saves the gradient and state buffers first and puts
 * them back after: the optimizer reads the step's gradient next, and
 * batch-norm's running statistics stay as the step left them.
 *
 * Caveats: a micro-batch of one sees batch-norm statistics of that example
 * alone, and dropout draws the mask of row 0 for it; for models with those
 * layers the fallback's per-example gradients are those of the micro-batch,
 * which is the usual definition for Monte-Carlo per-example gradients.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "observers.h"
#include "batchscope/host_task.h"

/* The registry hands out full-size ops tables: a hook an older plugin
 * lacks reads as NULL. */
static int has_hook(const bsc_layer_ops *ops)
{
    return ops->per_example_sqnorm != NULL;
}

static bsc_tensor rows_view(const bsc_tensor *base, size_t first, size_t count,
                            size_t row_len, const bsc_shape *per)
{
    bsc_shape s;
    s.ndim = per->ndim + 1;
    s.dim[0] = (int64_t)count;
    for (int d = 0; d < per->ndim; d++)
        s.dim[d + 1] = per->dim[d];
    return bsc_tensor_view(base, first * row_len, &s);
}

void obs_pegrad_free(obs_pegrad *pg)
{
    free(pg->hook_layers);
    bsc_tensor_free(&pg->acc);
    bsc_tensor_free(&pg->state_copy);
    bsc_tensor_free(&pg->grads_copy);
    bsc_tensor_free(&pg->all_range);
    bsc_tensor_free(&pg->fb_ranges);
    memset(pg, 0, sizeof *pg);
}

bsc_status obs_pegrad_start(obs_pegrad *pg, const bsc_run_info *run, int force_microbatch)
{
    obs_pegrad_free(pg);
    bsc_model *m = run->model;
    bsc_context *ctx = run->ctx;
    pg->ctx = ctx;
    pg->model = m;
    pg->force_microbatch = force_microbatch;
    size_t nl = bsc_model_n_layers(m), nt = bsc_model_n_tensors(m);
    bsc_shape in = bsc_model_output_shape(m, nl);   /* past the last layer: the input */
    pg->row_len = bsc_shape_numel(&in);
    pg->hook_layers = calloc(nl ? nl : 1, sizeof *pg->hook_layers);
    uint32_t *fb = calloc(2 * (nl ? nl : 1), sizeof *fb);
    bsc_status s = BSC_OK;
    if (!pg->hook_layers || !fb) {
        s = bsc_fail(BSC_ERR_NOMEM, "observers: out of memory");
        goto cleanup;
    }
    for (size_t li = 0; li < nl; li++) {
        uint32_t lo = UINT32_MAX, hi = 0;
        for (size_t i = 0; i < nt; i++) {
            const bsc_model_tensor *t = bsc_model_tensor_at(m, i);
            if ((size_t)t->layer != li || t->spec.role == BSC_ROLE_STATE || t->numel == 0)
                continue;
            if (t->offset < lo)
                lo = (uint32_t)t->offset;
            if (t->offset + t->numel > hi)
                hi = (uint32_t)(t->offset + t->numel);
        }
        if (lo >= hi)
            continue;   /* no trainable tensors: contributes nothing */
        if (!force_microbatch && has_hook(bsc_model_layer_ops(m, li))) {
            pg->hook_layers[pg->n_hook++] = (int)li;
        } else {
            fb[2 * pg->n_fallback] = lo;
            fb[2 * pg->n_fallback + 1] = hi;
            pg->n_fallback++;
        }
    }
    uint32_t all[2] = {0, (uint32_t)bsc_model_n_params(m)};
    if ((s = obs_alloc(ctx, BSC_F32, bsc_model_max_batch(m), &pg->acc)) != BSC_OK ||
        (s = obs_alloc(ctx, BSC_F32, bsc_model_n_state(m), &pg->state_copy)) != BSC_OK ||
        (s = obs_alloc(ctx, BSC_F32, bsc_model_n_params(m), &pg->grads_copy)) != BSC_OK ||
        (s = obs_alloc(ctx, BSC_I32, 2, &pg->all_range)) != BSC_OK ||
        (s = bsc_tensor_write(ctx, &pg->all_range, all)) != BSC_OK ||
        (s = obs_alloc(ctx, BSC_I32, 2 * (pg->n_fallback ? pg->n_fallback : 1),
                       &pg->fb_ranges)) != BSC_OK ||
        (pg->n_fallback && (s = bsc_tensor_write(ctx, &pg->fb_ranges, fb)) != BSC_OK) ||
        (s = obs_kernel(ctx, "observers.cl", "obs_ranges_sqnorm", &pg->k_ranges)) != BSC_OK ||
        (s = obs_kernel(ctx, "observers.cl", "obs_pe_reduce", &pg->k_reduce)) != BSC_OK ||
        (s = obs_local_size(ctx, pg->k_ranges, &pg->local_ranges)) != BSC_OK ||
        (s = obs_local_size(ctx, pg->k_reduce, &pg->local_reduce)) != BSC_OK)
        goto cleanup;
cleanup:
    free(fb);
    return s;
}

/* out[oo] (+)= sum of x^2 over `ranges` (n of them), one work-group. */
static bsc_status ranges_sqnorm(obs_pegrad *pg, const bsc_tensor *x, const bsc_tensor *ranges,
                                size_t n, bsc_tensor *out, size_t oo, int accumulate)
{
    cl_uint xo = (cl_uint)x->offset, nr = (cl_uint)n, o = (cl_uint)(out->offset + oo);
    cl_int acc = accumulate;
    size_t l = pg->local_ranges;
    bsc_karg a[] = {BSC_ARG(x->mem), BSC_ARG(xo), BSC_ARG(ranges->mem), BSC_ARG(nr),
                    BSC_ARG(out->mem), BSC_ARG(o), BSC_ARG(acc), BSC_LOCAL(l * sizeof(float))};
    return bsc_launch(pg->ctx, pg->k_ranges, 8, a, 1, &l, &l);
}

/* Where the context's step runs on host tasks (host_task.h:
 * bsc_host_elementwise), the two reductions of the pass do too: a single
 * work-group's kernel walked the whole gradient on one of PoCL's threads
 * (about 150 us of the quick start's pass, its step taking 240). Both sum
 * in double in a fixed order: the gradient in SQ_PARTS fixed parts (the
 * pool's threads take them; the parts, not the threads, set the order),
 * the per-example norms on one thread. */
#define SQ_PARTS 16
typedef struct sq_job {
    size_t n;
    int accumulate;
    double part[SQ_PARTS];
    float *const *data;   /* x, out */
} sq_job;

static void sq_part(void *p, int part, int parts)
{
    sq_job *j = p;
    size_t step = (j->n + (size_t)parts - 1) / (size_t)parts;
    size_t lo = (size_t)part * step, hi = lo + step < j->n ? lo + step : j->n;
    double s = 0.0;
    for (size_t i = lo; i < hi; i++)
        s += (double)j->data[0][i] * j->data[0][i];
    j->part[part] = s;
}

static void sq_task(void *args, float *const *data)
{
    sq_job *j = args;
    j->data = data;
    bsc_host_parallel(SQ_PARTS, sq_part, j);
    double s = 0.0;
    for (int k = 0; k < SQ_PARTS; k++)
        s += j->part[k];
    data[1][0] = (j->accumulate ? data[1][0] : 0.0f) + (float)s;
}

typedef struct reduce_job {
    size_t n;
} reduce_job;

static void reduce_task(void *args, float *const *data)
{
    const reduce_job *j = args;
    double s2 = 0.0, s1 = 0.0;
    for (size_t i = 0; i < j->n; i++) {
        float v = data[0][i];
        s2 += v;
        s1 += sqrt(v > 0.0f ? v : 0.0f);
    }
    data[1][0] = (float)s2;
    data[1][1] = (float)s1;
}

/* out[oo] (+)= sum of x^2 over the whole gradient (n floats), on the host. */
static bsc_status all_sqnorm_host(obs_pegrad *pg, const bsc_tensor *x, size_t n,
                                  bsc_tensor *out, size_t oo)
{
    bsc_tensor xv = *x, ov = *out;
    xv.numel = n;
    ov.offset += oo;
    ov.numel = 1;
    const bsc_tensor *t[2] = {&xv, &ov};
    sq_job j = {n, 0, {0}, NULL};
    return bsc_enqueue_host(pg->ctx, sq_task, &j, sizeof j, 2, t);
}

/* Saves (save = 1) or puts back the buffers a pass of our own overwrites. */
static bsc_status keep_buffers(obs_pegrad *pg, int save)
{
    bsc_model *m = pg->model;
    bsc_tensor *g = bsc_model_grads(m), *st = bsc_model_state(m);
    bsc_status s = BSC_OK;
    if (bsc_model_n_params(m))
        s = save ? bsc_tensor_copy(pg->ctx, g, &pg->grads_copy)
                 : bsc_tensor_copy(pg->ctx, &pg->grads_copy, g);
    if (s == BSC_OK && bsc_model_n_state(m))
        s = save ? bsc_tensor_copy(pg->ctx, st, &pg->state_copy)
                 : bsc_tensor_copy(pg->ctx, &pg->state_copy, st);
    return s;
}

bsc_status obs_pegrad_enqueue(obs_pegrad *pg, const bsc_step_info *si, uint64_t seed,
                              float loss_scale, bsc_tensor *out, size_t o)
{
    bsc_model *m = pg->model;
    bsc_context *ctx = pg->ctx;
    size_t B = si->batch, nl = bsc_model_n_layers(m);
    bsc_shape in_shape = bsc_model_output_shape(m, nl);
    bsc_status s;
    if (B == 0 || B > pg->acc.numel)
        return bsc_fail(BSC_ERR_INTERNAL, "observers: batch %zu outside [1, %zu]", B,
                        pg->acc.numel);
    int own_pass = !si->step_pass, kept = own_pass || pg->n_fallback;
    if (kept && (s = keep_buffers(pg, 1)) != BSC_OK)
        return s;
    bsc_pass p = {.batch = B, .training = 1, .seed = seed, .step = si->step};
    int64_t bd = (int64_t)B;
    bsc_shape bshape = bsc_shape_make(1, &bd);
    bsc_tensor q = bsc_tensor_view(&pg->acc, 0, &bshape);
    if (own_pass && ((s = bsc_model_forward_loss(m, &p, si->x, si->y)) != BSC_OK ||
                     (s = bsc_model_backward(m, &p, si->x, si->y, loss_scale)) != BSC_OK))
        return s;
    if ((s = bsc_tensor_fill(ctx, &q, 0.0f)) != BSC_OK)
        return s;
    for (size_t k = 0; k < pg->n_hook; k++) {
        size_t li = (size_t)pg->hook_layers[k];
        bsc_shape pin = bsc_model_output_shape(m, li ? li - 1 : nl);
        bsc_shape pout = bsc_model_output_shape(m, li);
        bsc_tensor in = li ? rows_view(bsc_model_activation(m, li - 1), 0, B, 0, &pin)
                           : rows_view(si->x, 0, B, 0, &pin);
        bsc_tensor dout = rows_view(bsc_model_dactivation(m, li), 0, B, 0, &pout);
        const bsc_layer_ops *ops = bsc_model_layer_ops(m, li);
        if ((s = ops->per_example_sqnorm(bsc_model_layer_self(m, li), &p, &in, &dout, &q)) !=
            BSC_OK)
            return bsc_fail_context(s, "per-example gradient norms of layer %zu", li);
    }
    int host = bsc_host_elementwise(ctx) && bsc_model_n_params(m) > 0;
    if ((s = host ? all_sqnorm_host(pg, bsc_model_grads(m), bsc_model_n_params(m), out, o + 2)
                  : ranges_sqnorm(pg, bsc_model_grads(m), &pg->all_range, 1, out, o + 2, 0)) !=
        BSC_OK)
        return s;
    if (pg->n_fallback) {
        int64_t one = 1;
        bsc_shape yshape = bsc_shape_make(1, &one);
        bsc_pass p1 = {.batch = 1, .training = 1, .seed = seed, .step = si->step};
        for (size_t i = 0; i < B; i++) {
            bsc_tensor xi = rows_view(si->x, i, 1, pg->row_len, &in_shape);
            bsc_tensor yi = bsc_tensor_view(si->y, i, &yshape);
            if ((s = bsc_model_forward_loss(m, &p1, &xi, &yi)) != BSC_OK ||
                (s = bsc_model_backward(m, &p1, &xi, &yi, loss_scale)) != BSC_OK ||
                (s = ranges_sqnorm(pg, bsc_model_grads(m), &pg->fb_ranges, pg->n_fallback,
                                   &pg->acc, i, 1)) != BSC_OK)
                return s;
        }
    }
    if (host) {
        bsc_tensor ov = *out;
        ov.offset += o;
        ov.numel = 2;
        const bsc_tensor *t[2] = {&q, &ov};
        reduce_job j = {B};
        s = bsc_enqueue_host(ctx, reduce_task, &j, sizeof j, 2, t);
    } else {
        cl_uint qo = (cl_uint)pg->acc.offset, n = (cl_uint)B, oo = (cl_uint)(out->offset + o);
        size_t l = pg->local_reduce;
        bsc_karg a[] = {BSC_ARG(pg->acc.mem), BSC_ARG(qo), BSC_ARG(n), BSC_ARG(out->mem),
                        BSC_ARG(oo), BSC_LOCAL(2 * l * sizeof(float))};
        s = bsc_launch(ctx, pg->k_reduce, 6, a, 1, &l, &l);
    }
    if (s == BSC_OK && kept)
        s = keep_buffers(pg, 0);
    return s;
}

/* ---- samples every K steps */

bsc_status obs_pe_series_options(const bsc_node *options, obs_pe_series *ps)
{
    bsc_status s = bsc_opt_long(options, "every_steps", 50, 1, 1L << 40, &ps->every);
    if (s == BSC_OK)
        s = obs_parse_method(options, &ps->force_microbatch);
    return s;
}

/* The last sample enqueued on this thread. gradient_diversity and
 * noise_scale sample the same steps by default (every 50), each in the
 * step's after_backward, on the same batch at the same weights (observers
 * leave the weights alone), and the work is deterministic: so the second
 * copies the first's three numbers on the device instead of repeating the
 * reductions (and the micro-batches, or a data-parallel run's pass, where
 * there are any). The numbers are the
 * bits the second would have computed; the method, seed, batch and rows
 * must match, and a series being freed forgets itself here. */
static _Thread_local struct {
    const obs_pe_series *src;
    const bsc_model *model;
    uint64_t step, seed;
    int force_microbatch;
    size_t batch, x_offset, slot;
    cl_mem x_mem;
} last;

void obs_pe_series_free(obs_pe_series *ps)
{
    if (last.src == ps)
        last.src = NULL;
    obs_pegrad_free(&ps->pg);
    bsc_tensor_free(&ps->out);
    free(ps->step);
    free(ps->epoch);
    free(ps->batch);
    free(ps->host);
    ps->step = NULL;
    ps->epoch = NULL;
    ps->batch = NULL;
    ps->host = NULL;
    ps->slots = ps->n = 0;
}

bsc_status obs_pe_series_start(obs_pe_series *ps, const bsc_run_info *run)
{
    obs_pe_series_free(ps);
    ps->slots = run->steps_per_epoch / (size_t)ps->every + 2;
    ps->step = calloc(ps->slots, sizeof *ps->step);
    ps->epoch = calloc(ps->slots, sizeof *ps->epoch);
    ps->batch = calloc(ps->slots, sizeof *ps->batch);
    ps->host = calloc(3 * ps->slots, sizeof *ps->host);
    if (!ps->step || !ps->epoch || !ps->batch || !ps->host)
        return bsc_fail(BSC_ERR_NOMEM, "observers: out of memory");
    bsc_status s = obs_pegrad_start(&ps->pg, run, ps->force_microbatch);
    if (s == BSC_OK)
        s = obs_alloc(run->ctx, BSC_F32, 3 * ps->slots, &ps->out);
    return s;
}

static int same_sample(const obs_pe_series *ps, const bsc_step_info *si)
{
    return last.src && last.src != ps && last.slot < last.src->n &&
           last.src->step[last.slot] == si->step && last.model == ps->pg.model &&
           last.step == si->step &&
           last.seed == ps->seed && last.force_microbatch == ps->force_microbatch &&
           last.batch == si->batch && last.x_mem == si->x->mem &&
           last.x_offset == si->x->offset;
}

static bsc_tensor three_at(const bsc_tensor *out, size_t slot)
{
    int64_t three = 3;
    bsc_shape sh = bsc_shape_make(1, &three);
    return bsc_tensor_view(out, 3 * slot, &sh);
}

bsc_status obs_pe_series_step(obs_pe_series *ps, const bsc_step_info *si)
{
    if (si->step % (uint64_t)ps->every != 0 || si->batch < 2 || ps->n >= ps->slots)
        return BSC_OK;
    size_t k = ps->n++;
    ps->step[k] = si->step;
    ps->epoch[k] = si->epoch;
    ps->batch[k] = si->batch;
    if (same_sample(ps, si)) {
        bsc_tensor from = three_at(&last.src->out, last.slot), to = three_at(&ps->out, k);
        return bsc_tensor_copy(ps->pg.ctx, &from, &to);
    }
    /* The step's loss scale (train.c: the mean over the batch), so the
     * step's own pass serves; obs_pe_series_read undoes it. */
    bsc_status s = obs_pegrad_enqueue(&ps->pg, si, ps->seed, 1.0f / (float)si->batch, &ps->out,
                                      3 * k);
    if (s == BSC_OK) {
        last.src = ps;
        last.model = ps->pg.model;
        last.step = si->step;
        last.seed = ps->seed;
        last.force_microbatch = ps->force_microbatch;
        last.batch = si->batch;
        last.x_mem = si->x->mem;
        last.x_offset = si->x->offset;
        last.slot = k;
    }
    return s;
}

bsc_status obs_pe_series_read(obs_pe_series *ps)
{
    if (ps->n == 0)
        return BSC_OK;
    bsc_status s = obs_read(ps->pg.ctx, &ps->out, 3 * ps->n, ps->host);
    for (size_t k = 0; s == BSC_OK && k < ps->n; k++) {
        double b = (double)ps->batch[k];
        float *v = ps->host + 3 * k;
        v[0] = (float)((double)v[0] * b * b);
        v[1] = (float)((double)v[1] * b);
        v[2] = (float)((double)v[2] * b * b);
    }
    return s;
}
