/* batchscope: the evaluator -- loss, accuracy and gradient of a parameter
 * vector over a split (or its first `subset` examples), in large batches,
 * on the device, without reallocating per call. Every analysis uses it.
 *
 * The evaluator works through its model's buffers: the *_at variants copy the
 * given flat parameter (and state) vectors into the model first, so the
 * model's current parameters are overwritten. Evaluation runs in eval mode
 * (dropout off, batch-norm running statistics). Sums are formed per batch on
 * the device in a fixed order and added on the host in double, in batch
 * order: the same inputs give bitwise the same results.
 */
#ifndef BATCHSCOPE_EVALUATOR_H
#define BATCHSCOPE_EVALUATOR_H

#include "batchscope/api.h"
#include "batchscope/dataset.h"
#include "batchscope/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bsc_split_id { BSC_SPLIT_TRAIN, BSC_SPLIT_TEST, BSC_SPLIT_VALIDATION } bsc_split_id;

typedef struct bsc_evaluator bsc_evaluator;

/* batch <= bsc_model_max_batch(m). The model must be bound. */
BSC_API bsc_status bsc_evaluator_create(bsc_model *m, const bsc_device_dataset *data, size_t batch,
                                bsc_evaluator **out);
BSC_API void bsc_evaluator_free(bsc_evaluator *e);

/* Examples in a split (0 when absent). */
BSC_API size_t bsc_eval_split_size(const bsc_evaluator *e, bsc_split_id split);

/* Mean loss and accuracy (fraction in [0,1]) of the model's current
 * parameters over the first `subset` examples of the split (0: all).
 * Blocks until done. */
BSC_API bsc_status bsc_eval_loss(bsc_evaluator *e, bsc_split_id split, size_t subset, double *loss,
                         double *acc);
/* Same for the given flat params (and state; NULL keeps the model's state). */
BSC_API bsc_status bsc_eval_loss_at(bsc_evaluator *e, const bsc_tensor *params,
                            const bsc_tensor *state, bsc_split_id split, size_t subset,
                            double *loss, double *acc);

/* Gradient of the mean loss over the first `subset` examples (0: all) of the
 * split at the model's current parameters, written to grad (F32, n_params
 * elements, device); *loss (optional) receives the mean loss. Eval mode. */
BSC_API bsc_status bsc_eval_grad(bsc_evaluator *e, bsc_split_id split, size_t subset,
                         bsc_tensor *grad, double *loss);

/* A family of points: the parameters of point c are sum_j c_j params[j]
 * over n_basis (1 to 3) flat vectors, its state likewise from states[]
 * (NULL: the model's state is left as it is), evaluated over the first
 * `subset` examples (0: all) of a split -- a loss surface (theta, d1, d2
 * with c = (1, x, y)), an interpolation ((theta_A, theta_B), c = (1 - a,
 * a)), a plane through three weights. When the model's first layer with
 * parameters is linear in them (bsc_layer_ops.linear_in_params) and only
 * parameter- and state-free layers precede it, its output at each basis
 * vector is computed once here and every point forms its own from those
 * (one kernel) and runs only the later layers; otherwise, or when those
 * products would take more than a quarter of the device's memory
 * ($BATCHSCOPE_SHARED_LAYER_BYTES lowers the bound), each point runs the
 * plain evaluation. Both give the loss of bsc_eval_loss_at to float
 * rounding. The vectors must live as long as the family; the model's
 * parameters (and state) are overwritten, as with bsc_eval_loss_at. */
typedef struct bsc_eval_family bsc_eval_family;
BSC_API bsc_status bsc_eval_family_create(bsc_evaluator *e, size_t n_basis,
                                          const bsc_tensor *const *params,
                                          const bsc_tensor *const *states, bsc_split_id split,
                                          size_t subset, bsc_eval_family **out);
BSC_API void bsc_eval_family_free(bsc_eval_family *f);
/* Mean loss and accuracy at the point with coefficients coef[0..n_basis).
 * A zero coefficient drops its vector exactly: c = (1, 0) gives the loss at
 * params[0] bit for bit as the plain path does. Blocks until done. */
BSC_API bsc_status bsc_eval_family_loss(bsc_eval_family *f, const float *coef, double *loss,
                                        double *acc);
/* Nonzero when the first layer is shared; the mode says which path the
 * family takes and why, in one line for the log. */
BSC_API int bsc_eval_family_shared(const bsc_eval_family *f);
BSC_API const char *bsc_eval_family_mode(const bsc_eval_family *f);

/* Views of examples [start, start + count) of the split (x: F32 [count,
 * row], y: I32 [count]), to run a batch of the evaluator's data through
 * the model. BSC_ERR_INVALID past the split's end. */
BSC_API bsc_status bsc_eval_batch(const bsc_evaluator *e, bsc_split_id split, size_t start,
                                  size_t count, bsc_tensor *x, bsc_tensor *y);

/* The exact Hessian-vector product of the mean loss over the first
 * `subset` examples (0: all) of the split at the model's current
 * parameters: hv = H v (F32, n_params elements each, device), summed over
 * the evaluation batches in order (bsc_model_hvp; eval mode, so dropout is
 * the identity and batch-norm uses its running statistics, which makes
 * both linear maps the R-operator passes straight through). *loss
 * (optional) receives the mean loss. BSC_ERR_UNSUPPORTED when the model
 * has no R-operator (bsc_model_has_hvp). The first call allocates a
 * product-sized buffer. */
BSC_API bsc_status bsc_eval_hvp(bsc_evaluator *e, bsc_split_id split, size_t subset,
                                const bsc_tensor *v, bsc_tensor *hv, double *loss);

#ifdef __cplusplus
}
#endif
#endif
