/* The model's private layout, shared by model.c (building, binding,
 * forward and backward) and hvp.c (the R-operator pass). Not installed. */
#ifndef BSC_MODEL_INTERNAL_H
#define BSC_MODEL_INTERNAL_H

#include "batchscope/model.h"

typedef struct layer {
    const bsc_type *type;
    const bsc_layer_ops *ops;  /* type->ops (the registry's full-size copy) */
    void *self;
    bsc_shape out;             /* per-sample */
    int n_params;
    size_t first_tensor;       /* index into m->tensors */
    bsc_tensor *params, *grads;   /* binding tensors, kept alive for the layer */
    const bsc_tensor **param_ptrs, **grad_ptrs;  /* what bind() sees (plugin.h) */
    bsc_tensor workspace;
    bsc_tensor act, dact;      /* [max_batch, out] */
    /* R{act}, R{dact} of the R-operator pass: allocated by its first call
     * (hvp.c), so that training never pays for them. */
    bsc_tensor ract, rdact;
} layer;

struct bsc_model {
    layer *layers;
    size_t n_layers;
    const bsc_type *loss_type;
    const bsc_loss_ops *loss_ops;
    void *loss_self;
    bsc_tensor loss_ws;
    bsc_shape input;
    int n_classes;
    bsc_model_tensor *tensors;
    size_t n_tensors;
    size_t n_params, n_state;
    bsc_context *ctx;
    size_t max_batch;
    bsc_tensor params, grads, state;
    bsc_tensor row_loss, row_correct;
};

/* The first `batch` rows of t as [batch, per...]. */
bsc_tensor bsc_model_batch_view_(const bsc_tensor *t, size_t batch, const bsc_shape *per);

/* Index of the first layer that owns a parameter with a gradient (role
 * other than STATE); n_layers when none does. */
size_t bsc_model_first_trained_(const bsc_model *m);

#endif
