/* batchscope: optimizers over the flat parameter buffer, and the learning-rate
 * schedule.
 *
 * An optimizer updates ONE flat parameter vector of n float32 elements from a
 * gradient vector of the same length. Both may be views (an offset into a
 * larger buffer). Its state (SGD momentum buffer, Adam's first and second
 * moments) is allocated once by bsc_optimizer_create; bsc_optimizer_step only
 * enqueues a single fused kernel on the context's in-order queue: it never
 * blocks, reads back or allocates, so it can sit inside a training step.
 *
 * The update rules are PyTorch's (torch.optim.SGD with dampening 0 and
 * torch.optim.Adam, not AdamW), applied elementwise with p = parameter,
 * grad = gradient, wd = weight_decay, t = the 1-based step number since the
 * last reset:
 *
 *   SGD    g   = grad + wd * p
 *          if momentum != 0:
 *              buf = g                      at the first step (t == 1)
 *              buf = momentum * buf + g     afterwards
 *              g   = nesterov ? g + momentum * buf : buf
 *          p  -= lr * g
 *
 *   Adam   g   = grad + wd * p
 *          m   = beta1 * m + (1 - beta1) * g
 *          v   = beta2 * v + (1 - beta2) * g^2
 *          p  -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 *
 * The bias corrections 1 - beta^t are computed on the host in double, so they
 * stay exact for large t where beta^t underflows float.
 */
#ifndef BATCHSCOPE_OPTIM_H
#define BATCHSCOPE_OPTIM_H

#include <stdint.h>

#include "batchscope/api.h"
#include <stddef.h>

#include "batchscope/device.h"
#include "batchscope/status.h"
#include "batchscope/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bsc_lr_scaling { BSC_LR_NONE, BSC_LR_LINEAR, BSC_LR_SQRT } bsc_lr_scaling;
typedef enum bsc_schedule_kind { BSC_SCHED_CONSTANT, BSC_SCHED_STEP, BSC_SCHED_COSINE } bsc_schedule_kind;
typedef enum bsc_optimizer_kind { BSC_OPTIMIZER_SGD, BSC_OPTIMIZER_ADAM } bsc_optimizer_kind;

typedef struct bsc_optimizer_cfg {
    bsc_optimizer_kind kind;
    double lr;                 /* base learning rate (at base_batch_size) */
    double momentum;           /* sgd */
    int nesterov;              /* sgd */
    double weight_decay;       /* both (L2 added to the gradient, as torch does) */
    double beta1, beta2, eps;  /* adam */
} bsc_optimizer_cfg;

typedef struct bsc_schedule_cfg {
    bsc_schedule_kind kind;
    int step_epochs;           /* step: decay every N epochs */
    double gamma;              /* step: factor */
    double min_lr;             /* cosine: floor */
    double warmup_epochs;      /* linear warm-up from 0 (may be fractional) */
} bsc_schedule_cfg;

/* What the learning rate of a run depends on (bsc_lr_at). */
typedef struct bsc_lr_cfg {
    double lr;                 /* base rate, at base_batch_size */
    bsc_lr_scaling scaling;
    long base_batch_size;      /* <= 0: no scaling */
    bsc_schedule_cfg schedule;
    int epochs;                /* of the run (cosine's horizon) */
} bsc_lr_cfg;

typedef struct bsc_optimizer bsc_optimizer;

/* Creates an optimizer for a parameter vector of n > 0 elements and allocates
 * its zeroed state on ctx's device. cfg is copied (cfg->lr is not used here:
 * the rate is passed to every step, see bsc_lr_at). Invalid hyper-parameters
 * (negative momentum or weight decay, betas outside [0, 1), negative eps,
 * Nesterov without momentum) return BSC_ERR_INVALID. The step count starts
 * at 0. */
BSC_API bsc_status bsc_optimizer_create(bsc_context *ctx, const bsc_optimizer_cfg *cfg,
                                size_t n, bsc_optimizer **out);

/* Starts a new run: enqueues zeroing of the state and sets the step count to
 * 0, so the next step is "the first" again (momentum buffer taken from the
 * gradient, Adam bias correction with t = 1). Non-blocking. */
BSC_API bsc_status bsc_optimizer_reset(bsc_optimizer *opt);

/* Enqueues one update of params from grads with learning rate lr. Both must be
 * F32 tensors of exactly n elements (views allowed); only params' range is
 * written. Non-blocking: no clFinish, no read-back, no allocation. On failure
 * the step count is not advanced. */
BSC_API bsc_status bsc_optimizer_step(bsc_optimizer *opt, bsc_tensor *params,
                              const bsc_tensor *grads, float lr);

/* Update norms measured by the update itself. After this call every step
 * also writes, for each chunk c < n_chunks of the parameter vector
 * (elements [bounds[c], bounds[c+1]) relative to params' offset), the
 * squared norm of the update it applied, sum (w_new - w_old)^2, into
 * out[slot * n_chunks + c] (out: F32, a view allowed, at least
 * (slot + 1) * n_chunks elements for every slot set), where slot is the one
 * last given to bsc_optimizer_track_slot (0 at first). This is the
 * update_norms observer's measurement without its own pass over the
 * parameters; the update and its bits are those of an untracked step.
 * bounds_host and bounds_dev (uint32 values in I32 storage, n_chunks + 1
 * entries) are the same
 * chunks; they must cover the whole vector in order (bounds[0] = 0,
 * increasing, bounds[n_chunks] = n), else BSC_ERR_INVALID. Only CPU
 * devices track (one work item walks each chunk, which a GPU would run
 * far below its width): elsewhere BSC_ERR_UNSUPPORTED, and the caller
 * measures on its own; BSC_ERR_BUSY while another caller tracks. The
 * tensors must outlive the tracking (bounds_host is copied: a step run as
 * a host task reads the copy instead of bounds_dev): end it with
 * bsc_optimizer_track_updates(opt, NULL, NULL, 0, NULL), which the
 * training loop also does at the end of every run, and which waits for the
 * queue when host-task steps may still read the copy. */
BSC_API bsc_status bsc_optimizer_track_updates(bsc_optimizer *opt, const uint32_t *bounds_host,
                                               const bsc_tensor *bounds_dev, size_t n_chunks,
                                               const bsc_tensor *out);
/* The slot the next tracked steps write (see above). */
BSC_API void bsc_optimizer_track_slot(bsc_optimizer *opt, size_t slot);

/* Steps taken since creation or the last reset (t of the rules above). */
BSC_API long bsc_optimizer_steps(const bsc_optimizer *opt);

/* Sets the step count, for resuming from a checkpoint whose state tensors
 * have been written back. count < 0 returns BSC_ERR_INVALID. */
BSC_API bsc_status bsc_optimizer_set_steps(bsc_optimizer *opt, long count);

/* The optimizer's state buffers, named as in torch's state_dict:
 * "momentum_buffer" (SGD with momentum), "exp_avg" and "exp_avg_sq" (Adam).
 * Writes up to `max` entries (either array may be NULL) and returns how many
 * state tensors there are (0 for plain SGD). The tensors stay owned by the
 * optimizer and valid until bsc_optimizer_free; they may be read or written
 * (e.g. to save or restore a checkpoint). */
BSC_API size_t bsc_optimizer_state_tensors(bsc_optimizer *opt, bsc_tensor **tensors,
                                   const char **names, size_t max);

/* Releases the state buffers and the optimizer; NULL is a no-op. */
BSC_API void bsc_optimizer_free(bsc_optimizer *opt);

/* The learning rate for one training step (schedule.c).
 *
 *   batch_size       B, the run's batch size
 *   epoch            1-based
 *   step_in_epoch    0-based
 *   steps_per_epoch  S, steps in every epoch of this run
 *
 * With lr0 = c->lr, B0 = c->base_batch_size (B0 <= 0: no scaling),
 * s = (epoch - 1) * S + step_in_epoch the 0-based global step and
 * T = c->epochs * S the total number of steps:
 *
 *   base   = lr0                      lr_scaling none
 *            lr0 * B / B0             linear
 *            lr0 * sqrt(B / B0)       sqrt
 *   lr     = base                                           constant
 *            base * gamma^floor((epoch - 1) / step_epochs)  step (step_epochs <= 0: no decay)
 *            min_lr + (base - min_lr) * (1 + cos(pi * p)) / 2,
 *                p = clamp(s / T, 0, 1)                       cosine (T == 0: p = 0)
 *   warm-up: with W = warmup_epochs * S steps (may be fractional), while s < W
 *            lr *= min(1, (s + 1) / W)
 *
 * so warm-up ramps linearly from lr/W at the first step to the scheduled rate,
 * which it reaches at step ceil(W) - 1 at the latest. */
BSC_API double bsc_lr_at(const bsc_lr_cfg *c, long batch_size, int epoch,
                 size_t step_in_epoch, size_t steps_per_epoch);

#ifdef __cplusplus
}
#endif
#endif
