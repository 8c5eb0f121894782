/* batchscope: a model -- a sequence of plugin layers and a loss -- over ONE
 * flat parameter buffer.
 *
 * bsc_model_create() runs each layer's create() (options checked by the
 * plugin, shapes inferred layer by layer) without a device. bsc_model_bind()
 * then allocates, on the device: the flat parameter buffer (every trainable
 * tensor, in layer order, PyTorch layouts), the flat gradient buffer of the
 * same layout, the flat state buffer (running statistics), activations and
 * their gradients for max_batch rows, and per-row loss/correct buffers.
 * Every analysis works on the flat buffers: distances, update norms,
 * interpolation and directions are vector operations on them.
 */
#ifndef BATCHSCOPE_MODEL_H
#define BATCHSCOPE_MODEL_H

#include "batchscope/api.h"
#include "batchscope/plugin.h"
#include "batchscope/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_model bsc_model;

/* A pipeline entry of some kind: its type name and its options mapping. */
typedef struct bsc_component {
    const char *type;          /* `type:` value */
    const bsc_node *node;      /* the whole mapping (its options) */
} bsc_component;

/* One named tensor of the model. */
typedef struct bsc_model_tensor {
    char name[64];          /* "<layer index>.<param name>", e.g. "1.weight" */
    int layer;              /* layer index */
    const char *layer_type; /* "dense" */
    bsc_param_spec spec;
    size_t offset;          /* elements into the params buffer (the state buffer
                               for role BSC_ROLE_STATE) */
    size_t numel;
} bsc_model_tensor;

/* Builds the layer stack for a per-sample input shape. `layers` are the
 * pipeline's `model:` entries, `loss` its loss (type NULL: softmax_cross_entropy). */
BSC_API bsc_status bsc_model_create(const bsc_registry *r, const struct bsc_component *layers,
                            size_t n_layers, const struct bsc_component *loss,
                            const bsc_shape *input, int n_classes, bsc_model **out);
BSC_API void bsc_model_free(bsc_model *m);

/* Allocates the device buffers for batches up to max_batch and binds layers. */
BSC_API bsc_status bsc_model_bind(bsc_model *m, bsc_context *ctx, size_t max_batch);

BSC_API size_t bsc_model_n_layers(const bsc_model *m);
BSC_API size_t bsc_model_n_params(const bsc_model *m);   /* trainable floats */
BSC_API size_t bsc_model_n_state(const bsc_model *m);    /* state floats */
BSC_API size_t bsc_model_n_tensors(const bsc_model *m);
BSC_API const bsc_model_tensor *bsc_model_tensor_at(const bsc_model *m, size_t i);
BSC_API bsc_shape bsc_model_output_shape(const bsc_model *m, size_t layer);
BSC_API size_t bsc_model_max_batch(const bsc_model *m);
BSC_API bsc_context *bsc_model_context(const bsc_model *m);

/* The flat buffers (valid after bind). */
BSC_API bsc_tensor *bsc_model_params(bsc_model *m);
BSC_API bsc_tensor *bsc_model_grads(bsc_model *m);
BSC_API bsc_tensor *bsc_model_state(bsc_model *m);
/* Per-row loss and correctness of the last forward_loss: [batch] floats. */
BSC_API const bsc_tensor *bsc_model_row_loss(bsc_model *m);
BSC_API const bsc_tensor *bsc_model_row_correct(bsc_model *m);
/* The logits of the last forward: [batch, classes]. */
BSC_API const bsc_tensor *bsc_model_logits(bsc_model *m);

/* Initial values on the host: params (n_params) and state (n_state) floats.
 * `init` is the training config's init ("torch", "he_normal", ...): it applies
 * to role WEIGHT tensors; biases and norm/state tensors keep their spec's
 * default. Deterministic in (seed). */
BSC_API bsc_status bsc_model_init_host(const bsc_model *m, uint64_t seed, const char *init,
                               float *params, float *state);

/* Enqueues forward through every layer and the loss for p->batch rows of
 * x (F32 [batch, input]) and y (I32 [batch]): fills logits, row loss and
 * row correct. */
BSC_API bsc_status bsc_model_forward_loss(bsc_model *m, const bsc_pass *p, const bsc_tensor *x,
                                  const bsc_tensor *y);
/* The same from layer `first` on: `in` ([batch, the output shape of layer
 * first-1]) is that layer's input; first = 0 is bsc_model_forward_loss. */
BSC_API bsc_status bsc_model_forward_loss_from(bsc_model *m, const bsc_pass *p, size_t first,
                                               const bsc_tensor *in, const bsc_tensor *y);
/* Enqueues forward through layers 0..last for p->batch rows of x, writing
 * layer last's output to out ([batch, its output shape], any buffer) instead
 * of the model's activation buffer; no loss. */
BSC_API bsc_status bsc_model_forward_to(bsc_model *m, const bsc_pass *p, const bsc_tensor *x,
                                        size_t last, bsc_tensor *out);
/* After forward_loss with the same pass: enqueues backward of
 * scale * sum_i loss_i (scale = 1/batch for the mean) into the gradient buffer. */
BSC_API bsc_status bsc_model_backward(bsc_model *m, const bsc_pass *p, const bsc_tensor *x,
                              const bsc_tensor *y, float scale);

/* Exact Hessian-vector products (hvp.c; Pearlmutter's R-operator).
 *
 * bsc_model_has_hvp: 1 when every layer from the first one with trained
 * parameters on, and the loss, implement the R-operator ops (plugin.h);
 * otherwise 0, and `why` (optional, len bytes) names the first that does
 * not ("layer 3 (gelu) has no R-operator").
 *
 * bsc_model_hvp: enqueues, for p->batch rows of x and y at the model's
 * current parameters and state, hv = H v with H the Hessian of
 * scale * sum_i loss_i w.r.t. the trained parameters and v a direction
 * over them (both F32 with n_params elements, device; hv is OVERWRITTEN):
 * forward, R-forward, backward and R-backward in one pass. The row losses
 * are filled as by forward_loss; the gradient buffer is not touched. The
 * first call allocates the pass' buffers (as large again as the
 * activations and their gradients). BSC_ERR_UNSUPPORTED when
 * !bsc_model_has_hvp, or from a layer that has the op but not for this
 * pass (batchnorm in training mode). */
BSC_API int bsc_model_has_hvp(const bsc_model *m, char *why, size_t len);
BSC_API bsc_status bsc_model_hvp(bsc_model *m, const bsc_pass *p, const bsc_tensor *x,
                                 const bsc_tensor *y, const bsc_tensor *v, float scale,
                                 bsc_tensor *hv);

/* The output of layer i ([max_batch, output shape], use the first batch
 * rows) and the gradient of the loss w.r.t. it, as of the last
 * forward_loss/backward (needed by per-example gradient norms). Backward
 * stops at the first layer with trained parameters, so the gradients of the
 * outputs of the layers before it are not written. */
BSC_API const bsc_tensor *bsc_model_activation(bsc_model *m, size_t i);
BSC_API const bsc_tensor *bsc_model_dactivation(bsc_model *m, size_t i);
/* The layer instance and ops of layer i (for per_example_sqnorm). */
BSC_API void *bsc_model_layer_self(bsc_model *m, size_t i);
BSC_API const bsc_layer_ops *bsc_model_layer_ops(const bsc_model *m, size_t i);

/* Checkpoints (checkpoint.c): safetensors named like the matching
 * torch.nn.Sequential's state_dict ("1.weight"), PyTorch layouts. */
/* Saves the model's current device parameters and state; metadata records
 * the batch size and epoch. Atomic (temporary file + rename). */
BSC_API bsc_status bsc_checkpoint_save(bsc_model *m, const char *path, long batch_size, int epoch);
/* Loads a checkpoint of this model into host arrays (n_params and n_state
 * floats): every tensor must be there with the model's shape (BSC_ERR_DATA
 * naming the file and tensor otherwise); extra tensors are ignored. */
BSC_API bsc_status bsc_checkpoint_load(const bsc_model *m, const char *path, float *params,
                               float *state);

#ifdef __cplusplus
}
#endif
#endif
