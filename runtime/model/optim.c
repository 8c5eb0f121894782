/* Optimizers over the flat parameter buffer: SGD (momentum, Nesterov) and
 * Adam, one fused kernel per step (cl/runtime/optim.cl). The rules and
 * contracts are in batchscope/optim.h. */
#include "batchscope/optim.h"
#include "batchscope/host_task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CL_FILE "optim.cl"

struct bsc_optimizer {
    bsc_context *ctx;
    bsc_optimizer_cfg cfg;
    size_t n;
    long steps;               /* since creation or the last reset */
    cl_kernel kernel;         /* owned by ctx */
    cl_kernel tracked;        /* the same update measuring it (owned by ctx) */
    /* bsc_optimizer_track_updates: chunks and where their norms go. */
    const bsc_tensor *track_bounds, *track_out;
    /* The optimizer's own copy of the chunk bounds, which host tasks read
     * when they run (possibly after the caller has ended the tracking and
     * freed its array); track_queued: such a task may still be queued, so
     * the copy is freed only after the queue has drained. */
    uint32_t *track_bounds_host;
    int track_queued;
    size_t track_chunks, track_slot;
    /* SGD with momentum: state[0] = momentum_buffer.
     * Adam: state[0] = exp_avg, state[1] = exp_avg_sq. */
    bsc_tensor state[2];
    const char *state_names[2];
    size_t n_state;
};

static bsc_status check_cfg(const bsc_optimizer_cfg *c)
{
    /* Written so that NaN fails every test. */
    if (!(c->weight_decay >= 0.0))
        return bsc_fail(BSC_ERR_INVALID, "optimizer: weight_decay must be >= 0 (got %g)",
                        c->weight_decay);
    switch (c->kind) {
    case BSC_OPTIMIZER_SGD:
        if (!(c->momentum >= 0.0))
            return bsc_fail(BSC_ERR_INVALID, "sgd: momentum must be >= 0 (got %g)", c->momentum);
        /* torch refuses this too: Nesterov needs a momentum to look ahead with. */
        if (c->nesterov && c->momentum == 0.0)
            return bsc_fail(BSC_ERR_INVALID, "sgd: nesterov requires momentum > 0");
        return BSC_OK;
    case BSC_OPTIMIZER_ADAM:
        if (!(c->beta1 >= 0.0 && c->beta1 < 1.0))
            return bsc_fail(BSC_ERR_INVALID, "adam: beta1 must be in [0, 1) (got %g)", c->beta1);
        if (!(c->beta2 >= 0.0 && c->beta2 < 1.0))
            return bsc_fail(BSC_ERR_INVALID, "adam: beta2 must be in [0, 1) (got %g)", c->beta2);
        if (!(c->eps >= 0.0))
            return bsc_fail(BSC_ERR_INVALID, "adam: eps must be >= 0 (got %g)", c->eps);
        return BSC_OK;
    }
    return bsc_fail(BSC_ERR_INVALID, "optimizer: unknown kind %d", (int)c->kind);
}

bsc_status bsc_optimizer_create(bsc_context *ctx, const bsc_optimizer_cfg *cfg,
                                size_t n, bsc_optimizer **out)
{
    bsc_status st;
    bsc_optimizer *opt = NULL;
    const char *kname;

    *out = NULL;
    if (!ctx || !cfg)
        return bsc_fail(BSC_ERR_USAGE, "bsc_optimizer_create: NULL context or config");
    if (n == 0)
        return bsc_fail(BSC_ERR_INVALID, "optimizer: parameter vector is empty");
    st = check_cfg(cfg);
    if (st != BSC_OK)
        return st;

    opt = calloc(1, sizeof *opt);
    if (!opt)
        return bsc_fail(BSC_ERR_NOMEM, "optimizer: out of memory");
    opt->ctx = ctx;
    opt->cfg = *cfg;
    opt->n = n;

    if (cfg->kind == BSC_OPTIMIZER_ADAM) {
        kname = "adam_step";
        opt->n_state = 2;
        opt->state_names[0] = "exp_avg";
        opt->state_names[1] = "exp_avg_sq";
    } else if (cfg->momentum != 0.0) {
        kname = "sgd_momentum_step";
        opt->n_state = 1;
        opt->state_names[0] = "momentum_buffer";
    } else {
        kname = "sgd_step";
        opt->n_state = 0;
    }

    st = bsc_kernel(ctx, CL_FILE, kname, &opt->kernel);
    if (st == BSC_OK && ctx->info.type & CL_DEVICE_TYPE_CPU) {
        char tname[64];
        snprintf(tname, sizeof tname, "%s_tracked", kname);
        st = bsc_kernel(ctx, CL_FILE, tname, &opt->tracked);
    }
    if (st != BSC_OK) {
        bsc_fail_context(st, "optimizer");
        goto cleanup;
    }

    {
        int64_t dim = (int64_t)n;
        bsc_shape shape = bsc_shape_make(1, &dim);
        for (size_t i = 0; i < opt->n_state; i++) {
            st = bsc_tensor_alloc(ctx, BSC_F32, &shape, &opt->state[i]);
            if (st != BSC_OK) {
                bsc_fail_context(st, "optimizer: allocating %s (%zu floats)",
                                 opt->state_names[i], n);
                goto cleanup;
            }
        }
    }

    st = bsc_optimizer_reset(opt);
    if (st != BSC_OK)
        goto cleanup;

    *out = opt;
    return BSC_OK;

cleanup:
    bsc_optimizer_free(opt);
    return st;
}

bsc_status bsc_optimizer_reset(bsc_optimizer *opt)
{
    /* Zeroing the SGD buffer is not needed for the update (the first step
     * overwrites it) but keeps a checkpoint of a fresh run deterministic. */
    for (size_t i = 0; i < opt->n_state; i++) {
        bsc_status st = bsc_tensor_fill(opt->ctx, &opt->state[i], 0.0f);
        if (st != BSC_OK)
            return bsc_fail_context(st, "optimizer reset: zeroing %s", opt->state_names[i]);
    }
    opt->steps = 0;
    return BSC_OK;
}

static bsc_status check_operand(const bsc_optimizer *opt, const bsc_tensor *t,
                                const char *what)
{
    if (!t || !t->mem)
        return bsc_fail(BSC_ERR_USAGE, "optimizer step: %s is an empty tensor", what);
    if (t->dtype != BSC_F32)
        return bsc_fail(BSC_ERR_INVALID, "optimizer step: %s must be F32 (dtype %d)",
                        what, (int)t->dtype);
    if (t->numel != opt->n)
        return bsc_fail(BSC_ERR_INVALID,
                        "optimizer step: %s has %zu elements, the optimizer was made for %zu",
                        what, t->numel, opt->n);
    return BSC_OK;
}

/* The tracked kernels take four arguments more (bounds, chunks, out, its
 * offset); every step's argument list has room for them at its end. */
#define TRACK_ARGS 4
#define TRACK_ROOM {0, NULL}, {0, NULL}, {0, NULL}, {0, NULL},

/* One step's kernel: the plain update over every element, or, while
 * tracking, the tracked one over the chunks with its four extra arguments
 * appended to args (which has room for them). */
static bsc_status launch(bsc_optimizer *opt, bsc_karg *args, size_t n_args, size_t global)
{
    if (!opt->track_out)
        return bsc_launch(opt->ctx, opt->kernel, (int)n_args, args, 1, &global, NULL);
    cl_uint nc = (cl_uint)opt->track_chunks;
    cl_ulong oo = (cl_ulong)(opt->track_out->offset + opt->track_slot * opt->track_chunks);
    args[n_args] = (bsc_karg)BSC_ARG(opt->track_bounds->mem);
    args[n_args + 1] = (bsc_karg)BSC_ARG(nc);
    args[n_args + 2] = (bsc_karg)BSC_ARG(opt->track_out->mem);
    args[n_args + 3] = (bsc_karg)BSC_ARG(oo);
    /* A work-group per chunk: PoCL runs a group on one thread, so the
     * chunks spread over the cores. */
    size_t g = opt->track_chunks, one = 1;
    return bsc_launch(opt->ctx, opt->tracked, (int)n_args + TRACK_ARGS, args, 1, &g, &one);
}

/* The updates as host tasks (host_task.h: bsc_host_elementwise): the
 * kernels' formulas (cl/runtime/optim.cl) element by element, split over
 * the host threads. The tracked update (update_norms) applies the same
 * functions, so that watching the updates does not change them, and adds
 * up (w_new - w_old)^2 chunk by chunk in a fixed order: the same norms
 * whatever the threads. */
typedef struct host_update {
    int kind, n_state, nesterov, first;
    size_t n, chunks;
    float lr, wd, mom, b1, omb1, b2, omb2, eps, step_size, bc2_sqrt;
    const uint32_t *seg;  /* tracked: the chunk bounds, the optimizer's host
                             copy (one buffer fewer to hand over each step) */
    float *const *data;   /* params, grads, state[0], state[1] (or the
                             same again), tracked: out */
} host_update;

/* One element's update, on values (update_range's loops vectorize): d is
 * the gradient with weight decay; the state is updated in place and the
 * new weight returned. */
static inline float sgd_one(const host_update *u, float w, float d)
{
    return w - u->lr * d;
}

static inline float momentum_one(const host_update *u, float w, float d, float *buf)
{
    float b = u->first ? d : u->mom * *buf + d;
    *buf = b;
    d = u->nesterov ? d + u->mom * b : b;
    return w - u->lr * d;
}

static inline float adam_one(const host_update *u, float w, float d, float *m, float *v)
{
    float mi = u->b1 * *m + u->omb1 * d;
    float vi = u->b2 * *v + u->omb2 * d * d;
    *m = mi;
    *v = vi;
    return w - u->step_size * mi / (sqrtf(vi) / u->bc2_sqrt + u->eps);
}

/* Elements [lo, hi): w <- ONE (an expression of the old weight w0, its
 * gradient g[e] and the state at e), and, when sq is given, sq[e - lo] =
 * (w_new - w_old)^2 in the same pass. The loops read the settings from a
 * local copy: through p, every store to the weights might have changed
 * them, and they were read again per element (scalar code, 4x slower). */
#define UPDATE_LOOP(ONE)                                                       \
    do {                                                                       \
        if (sq)                                                                \
            for (size_t e = lo; e < hi; e++) {                                 \
                float w0 = w[e], w1 = (ONE), du = w1 - w0;                     \
                w[e] = w1;                                                     \
                sq[e - lo] = du * du;                                          \
            }                                                                  \
        else                                                                   \
            for (size_t e = lo; e < hi; e++) {                                 \
                float w0 = w[e];                                               \
                w[e] = (ONE);                                                  \
            }                                                                  \
    } while (0)

BSC_HOST_CLONES
static void update_block(const void *p, size_t lo, size_t hi, float *restrict sq)
{
    const host_update v = *(const host_update *)p, *u = &v;
    float *restrict w = u->data[0];
    const float *restrict g = u->data[1];
    float *restrict s0 = u->data[2];
    float *restrict s1 = u->data[3];
    if (u->kind == BSC_OPTIMIZER_ADAM)
        UPDATE_LOOP(adam_one(u, w0, g[e] + u->wd * w0, &s0[e], &s1[e]));
    else if (u->n_state == 1)
        UPDATE_LOOP(momentum_one(u, w0, g[e] + u->wd * w0, &s0[e]));
    else
        UPDATE_LOOP(sgd_one(u, w0, g[e] + u->wd * w0));
}

static void update_range(void *p, size_t lo, size_t hi)
{
    update_block(p, lo, hi, NULL);
}

/* The tracked update. SGD with or without momentum: one pass, eight
 * elements at a time in vector registers (GCC's and Clang's vector
 * extensions), the same operations in the same order as sgd_one and
 * momentum_one (elementwise IEEE arithmetic; optim.c is built without
 * contraction into fused multiply-adds), so the untracked update's bits:
 * watching the updates does not change them. (w_new - w_old)^2 goes into
 * a vector accumulator on the way; the tail, and Adam (sqrtf), take
 * update_block with a block of squares. The lanes, the tail and the blocks
 * are added in order in double: the same norms whatever the threads, and
 * whichever clone runs (eight lanes in each: two SSE registers in the
 * default one). */
typedef float v8f __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) v8f ld8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void st8(float *p, v8f v)
{
    memcpy(p, &v, sizeof v);
}

/* One group of eight elements of SGD (momentum when buf): the update
 * applied, (w_new - w_old)^2 returned. */
static inline __attribute__((always_inline)) v8f
track_sgd8(const host_update *u, float *restrict w, const float *restrict g,
           float *restrict buf, size_t i)
{
    v8f w0 = ld8(w + i), d = ld8(g + i) + u->wd * w0;
    if (buf) {
        v8f b = u->first ? d : u->mom * ld8(buf + i) + d;
        st8(buf + i, b);
        d = u->nesterov ? d + u->mom * b : b;
    }
    v8f w1 = w0 - u->lr * d, du = w1 - w0;
    st8(w + i, w1);
    return du * du;
}

/* Elements [lo, hi) of SGD (momentum when buf), whole groups of eight;
 * returns the sum of the squared changes, adds nothing past hi. Four
 * accumulators, 32 elements a round, so that the adds into them do not
 * wait for each other. Cloned for AVX-512 and AVX2 (BSC_HOST_CLONES,
 * host_task.h) as update_block is: on the quick start's 118k weights on 2
 * cores (SGD with momentum, steps timed back to back), the tracked update
 * took 20 us a step against the untracked one's 12 with SSE and one
 * accumulator; now 12 against 8.7. */
BSC_HOST_CLONES
static double track_sgd(const host_update *p, float *restrict w, const float *restrict g,
                        float *restrict buf, size_t lo, size_t hi)
{
    const host_update v = *p, *u = &v;   /* settings in registers (update_block) */
    v8f a0 = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}, a1 = a0, a2 = a0, a3 = a0;
    size_t i = lo;
    for (; i + 32 <= hi; i += 32) {
        a0 += track_sgd8(u, w, g, buf, i);
        a1 += track_sgd8(u, w, g, buf, i + 8);
        a2 += track_sgd8(u, w, g, buf, i + 16);
        a3 += track_sgd8(u, w, g, buf, i + 24);
    }
    for (; i + 8 <= hi; i += 8)
        a0 += track_sgd8(u, w, g, buf, i);
    v8f acc = (a0 + a1) + (a2 + a3);
    double s = 0.0;
    for (int l = 0; l < 8; l++)
        s += acc[l];
    return s;
}

#define TRACK_BLOCK 1024
static void update_chunks(void *p, size_t lo, size_t hi)
{
    const host_update v = *(const host_update *)p, *u = &v;
    float *out = u->data[4];
    float sq[TRACK_BLOCK];
    for (size_t c = lo; c < hi; c++) {
        size_t b = u->seg[c], end = u->seg[c + 1];
        double sum = 0.0;
        if (u->kind != BSC_OPTIMIZER_ADAM) {
            sum = track_sgd(u, u->data[0], u->data[1], u->n_state ? u->data[2] : NULL, b, end);
            b = end - (end - b) % 8;
        }
        for (; b < end; b += TRACK_BLOCK) {
            size_t n = end - b < TRACK_BLOCK ? end - b : TRACK_BLOCK;
            update_block(p, b, b + n, sq);
            for (size_t i = 0; i < n; i++)
                sum += sq[i];
        }
        out[c] = (float)sum;
    }
}

/* Chunks are thousands of elements each (observers.h: OBS_CHUNK), so each
 * part is a run of whole ones (bsc_host_for would round a part up to 16 of
 * them); several parts per thread, as bsc_host_for makes of the plain
 * update, so that a thread the others wait for (the cores are shared with
 * the OpenCL runtime's workers) holds up a small part, not half the
 * update. */
static void update_chunk_part(void *p, int part, int parts)
{
    const host_update *u = p;
    size_t step = (u->chunks + (size_t)parts - 1) / (size_t)parts;
    size_t lo = (size_t)part * step, hi = lo + step < u->chunks ? lo + step : u->chunks;
    if (lo < hi)
        update_chunks(p, lo, hi);
}

static void update_task(void *args, float *const *data)
{
    host_update *u = args;
    u->data = data;
    int threads = bsc_host_threads();
    if (u->chunks)
        bsc_host_parallel(u->chunks < (size_t)threads * 8 ? (int)u->chunks : threads * 8,
                          update_chunk_part, u);
    else
        bsc_host_for(u->n, 16384, update_range, u);
}

static bsc_status update_host(bsc_optimizer *opt, const bsc_tensor *params,
                              const bsc_tensor *grads, host_update *u)
{
    /* Absent state slots repeat the parameters (never read; restrict in
     * update_block holds, as nothing is written through them). */
    bsc_tensor out;
    const bsc_tensor *t[5] = {params, grads, opt->n_state > 0 ? &opt->state[0] : params,
                              opt->n_state > 1 ? &opt->state[1] : params, NULL};
    size_t n = 4;
    u->n = opt->n;
    u->n_state = (int)opt->n_state;
    u->chunks = 0;
    u->seg = NULL;
    if (opt->track_out) {
        out = *opt->track_out;
        out.offset += opt->track_slot * opt->track_chunks;
        out.numel = opt->track_chunks;
        t[4] = &out;
        n = 5;
        u->chunks = opt->track_chunks;
        u->seg = opt->track_bounds_host;
        opt->track_queued = 1;
    }
    return bsc_enqueue_host(opt->ctx, update_task, u, sizeof *u, n, t);
}

bsc_status bsc_optimizer_step(bsc_optimizer *opt, bsc_tensor *params,
                              const bsc_tensor *grads, float lr)
{
    bsc_status st;
    const bsc_optimizer_cfg *c = &opt->cfg;
    cl_ulong p_off, g_off, n = (cl_ulong)opt->n;
    size_t global = opt->n;
    float wd = (float)c->weight_decay;

    if ((st = check_operand(opt, params, "params")) != BSC_OK ||
        (st = check_operand(opt, grads, "grads")) != BSC_OK)
        return st;
    p_off = (cl_ulong)params->offset;
    g_off = (cl_ulong)grads->offset;
    int host = bsc_host_elementwise(opt->ctx);

    if (c->kind == BSC_OPTIMIZER_ADAM) {
        /* t is the step being taken now (1-based). The corrections are formed
         * in double: beta2^t with beta2 = 0.999 is far from 1 only after
         * thousands of steps, where float powers would lose the digits. */
        double t = (double)(opt->steps + 1);
        double bc1 = 1.0 - pow(c->beta1, t);
        double bc2 = 1.0 - pow(c->beta2, t);
        float step_size = (float)((double)lr / bc1);
        float bc2_sqrt = (float)sqrt(bc2);
        float b1 = (float)c->beta1, omb1 = (float)(1.0 - c->beta1);
        float b2 = (float)c->beta2, omb2 = (float)(1.0 - c->beta2);
        float eps = (float)c->eps;
        host_update u = {.kind = BSC_OPTIMIZER_ADAM, .wd = wd, .b1 = b1, .omb1 = omb1,
                         .b2 = b2, .omb2 = omb2, .eps = eps, .step_size = step_size,
                         .bc2_sqrt = bc2_sqrt};
        bsc_karg args[] = {
            BSC_ARG(params->mem), BSC_ARG(p_off),
            BSC_ARG(grads->mem), BSC_ARG(g_off),
            BSC_ARG(opt->state[0].mem), BSC_ARG(opt->state[1].mem),
            BSC_ARG(n), BSC_ARG(wd), BSC_ARG(b1), BSC_ARG(omb1),
            BSC_ARG(b2), BSC_ARG(omb2), BSC_ARG(eps),
            BSC_ARG(step_size), BSC_ARG(bc2_sqrt),
            TRACK_ROOM
        };
        st = host ? update_host(opt, params, grads, &u)
                  : launch(opt, args, sizeof args / sizeof args[0] - TRACK_ARGS, global);
    } else if (opt->n_state == 1) {
        float mom = (float)c->momentum;
        cl_int nesterov = c->nesterov ? 1 : 0;
        cl_int first = opt->steps == 0;
        host_update u = {.kind = BSC_OPTIMIZER_SGD, .lr = lr, .wd = wd, .mom = mom,
                         .nesterov = nesterov, .first = first};
        bsc_karg args[] = {
            BSC_ARG(params->mem), BSC_ARG(p_off),
            BSC_ARG(grads->mem), BSC_ARG(g_off),
            BSC_ARG(opt->state[0].mem),
            BSC_ARG(n), BSC_ARG(lr), BSC_ARG(wd), BSC_ARG(mom),
            BSC_ARG(nesterov), BSC_ARG(first),
            TRACK_ROOM
        };
        st = host ? update_host(opt, params, grads, &u)
                  : launch(opt, args, sizeof args / sizeof args[0] - TRACK_ARGS, global);
    } else {
        bsc_karg args[] = {
            BSC_ARG(params->mem), BSC_ARG(p_off),
            BSC_ARG(grads->mem), BSC_ARG(g_off),
            BSC_ARG(n), BSC_ARG(lr), BSC_ARG(wd),
            TRACK_ROOM
        };
        host_update u = {.kind = BSC_OPTIMIZER_SGD, .lr = lr, .wd = wd};
        st = host ? update_host(opt, params, grads, &u)
                  : launch(opt, args, sizeof args / sizeof args[0] - TRACK_ARGS, global);
    }
    if (st != BSC_OK)
        return bsc_fail_context(st, "optimizer step %ld", opt->steps + 1);
    opt->steps++;
    return BSC_OK;
}

/* Frees the bounds' copy, after the queue has run every host task that
 * reads it. */
static bsc_status track_release(bsc_optimizer *opt)
{
    bsc_status st = BSC_OK;
    if (opt->track_queued)
        st = bsc_finish(opt->ctx);
    free(opt->track_bounds_host);
    opt->track_bounds_host = NULL;
    opt->track_queued = 0;
    return st;
}

bsc_status bsc_optimizer_track_updates(bsc_optimizer *opt, const uint32_t *bounds_host,
                                       const bsc_tensor *bounds_dev, size_t n_chunks,
                                       const bsc_tensor *out)
{
    if (!out) {
        bsc_status st = track_release(opt);
        opt->track_out = NULL;
        opt->track_bounds = NULL;
        opt->track_chunks = opt->track_slot = 0;
        return st;
    }
    if (opt->track_out)
        return bsc_fail(BSC_ERR_BUSY, "optimizer: its updates are tracked for another "
                        "observer already");
    if (!opt->tracked)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "optimizer: update norms are tracked on CPU "
                        "devices only");
    if (!bounds_host || !bounds_dev || n_chunks == 0 || out->dtype != BSC_F32 ||
        bounds_dev->dtype != BSC_I32 || bounds_dev->numel < n_chunks + 1 ||
        out->numel < n_chunks)
        return bsc_fail(BSC_ERR_INVALID, "optimizer: tracking needs U32 bounds of %zu + 1 "
                        "entries and an F32 output of at least %zu", n_chunks, n_chunks);
    if (bounds_host[0] != 0 || bounds_host[n_chunks] != opt->n)
        return bsc_fail(BSC_ERR_INVALID, "optimizer: tracked chunks cover [%u, %u), not the "
                        "%zu parameters", bounds_host[0], bounds_host[n_chunks], opt->n);
    for (size_t c = 0; c < n_chunks; c++)
        if (bounds_host[c + 1] <= bounds_host[c])
            return bsc_fail(BSC_ERR_INVALID, "optimizer: tracked chunk %zu is empty or out "
                            "of order", c);
    opt->track_bounds_host = malloc((n_chunks + 1) * sizeof *bounds_host);
    if (!opt->track_bounds_host)
        return bsc_fail(BSC_ERR_NOMEM, "optimizer: out of memory");
    memcpy(opt->track_bounds_host, bounds_host, (n_chunks + 1) * sizeof *bounds_host);
    opt->track_bounds = bounds_dev;
    opt->track_out = out;
    opt->track_chunks = n_chunks;
    return BSC_OK;
}

void bsc_optimizer_track_slot(bsc_optimizer *opt, size_t slot)
{
    opt->track_slot = slot;
}

long bsc_optimizer_steps(const bsc_optimizer *opt)
{
    return opt->steps;
}

bsc_status bsc_optimizer_set_steps(bsc_optimizer *opt, long count)
{
    if (count < 0)
        return bsc_fail(BSC_ERR_INVALID, "optimizer: step count must be >= 0 (got %ld)", count);
    opt->steps = count;
    return BSC_OK;
}

size_t bsc_optimizer_state_tensors(bsc_optimizer *opt, bsc_tensor **tensors,
                                   const char **names, size_t max)
{
    for (size_t i = 0; i < opt->n_state && i < max; i++) {
        if (tensors)
            tensors[i] = &opt->state[i];
        if (names)
            names[i] = opt->state_names[i];
    }
    return opt->n_state;
}

void bsc_optimizer_free(bsc_optimizer *opt)
{
    if (!opt)
        return;
    if (track_release(opt) != BSC_OK)
        bsc_clear_error();   /* a failed queue: nothing left to wait for */
    for (size_t i = 0; i < 2; i++)
        bsc_tensor_free(&opt->state[i]);
    free(opt);
}
