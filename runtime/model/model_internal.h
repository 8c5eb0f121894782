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

/* Evaluation on host rows (host_rows.c): the loss of a batch from layer
 * `first` on as one host task, block by block of rows in cache, on a
 * device whose GEMMs run on the host BLAS. */
#define BSC_HOST_ROWS_MAX_SRC 3
typedef struct bsc_host_rows bsc_host_rows;
/* BSC_ERR_UNSUPPORTED, with why[] saying why and no error set, when the
 * GEMM backend is not the host's or a layer from `first` on (or the loss)
 * has no host_forward. */
bsc_status bsc_host_rows_create(bsc_model *m, size_t first, bsc_host_rows **out, char *why,
                                size_t len);
void bsc_host_rows_free(bsc_host_rows *h);
/* Rows per block. */
size_t bsc_host_rows_block(const bsc_host_rows *h);
/* Enqueues the loss of `rows` rows whose input into layer `first` is
 * sum_s coef[s] src[s] (n_src of them, each from its offset, rows x the
 * input width; through a ReLU with relu), against labels (I32): the loss
 * sum into sums[2 slot], the correct count into sums[2 slot + 1]. */
bsc_status bsc_host_rows_loss(bsc_host_rows *h, size_t rows, size_t n_src, const float *coef,
                              const bsc_tensor *const *src, int relu, const bsc_tensor *labels,
                              const bsc_tensor *sums, size_t slot);

/* The first `batch` rows of t as [batch, per...]. */
bsc_tensor bsc_model_batch_view_(const bsc_tensor *t, size_t batch, const bsc_shape *per);

/* Index of the first layer that owns a parameter with a gradient (role
 * other than STATE); n_layers when none does. */
size_t bsc_model_first_trained_(const bsc_model *m);

#endif
