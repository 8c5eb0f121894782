/* batchscope: the plugin ABI.
 *
 * A plugin is a shared object that exports one function,
 *
 *     const bsc_plugin_desc *bsc_plugin_entry(void);
 *
 * returning a pointer to a static, const descriptor. The host rejects a
 * plugin whose abi_major differs from BSC_ABI_MAJOR or whose abi_minor is
 * newer than BSC_ABI_MINOR. Minor versions only append members to the end of
 * the ops tables below; each table starts with its own size so that the host
 * never reads past what an older plugin provides.
 *
 * Rules for plugins:
 *  - never print and never exit(): return a bsc_status and set the message with
 *    bsc_fail() / bsc_node_fail();
 *  - the host owns every tensor it passes in; a plugin owns only what its
 *    create() allocated and frees it in destroy();
 *  - nothing may block inside a training step: enqueue kernels on ctx->queue,
 *    read back (if at all) only at epoch_end / run_end / post.
 * Libraries stay loaded until the process ends.
 */
#ifndef BATCHSCOPE_PLUGIN_H
#define BATCHSCOPE_PLUGIN_H

#include <stdint.h>
#include "batchscope/status.h"
#include "batchscope/node.h"
#include "batchscope/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BSC_ABI_MAJOR 1
/* 1: bsc_run_info and bsc_run_result gained `name` (appended). */
#define BSC_ABI_MINOR 1
#define BSC_PLUGIN_ENTRY_SYMBOL "bsc_plugin_entry"

#if defined(__GNUC__)
#define BSC_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define BSC_PLUGIN_EXPORT
#endif

/* ------------------------------------------------------------------ layers */

typedef enum bsc_param_role {
    BSC_ROLE_WEIGHT = 0, /* trained; filter-normalized directions; he/glorot init applies */
    BSC_ROLE_BIAS = 1,   /* trained; zero direction in surfaces by default */
    BSC_ROLE_NORM = 2,   /* trained normalization scale/shift (batchnorm gamma/beta) */
    BSC_ROLE_STATE = 3   /* not trained (running statistics): lives in the flat state
                            buffer, has no gradient, is saved and interpolated */
} bsc_param_role;

typedef enum bsc_init_kind {
    BSC_INIT_TORCH = 0,  /* PyTorch's default: U(-b, b), b = 1/sqrt(fan_in) */
    BSC_INIT_ZEROS = 1,
    BSC_INIT_ONES = 2
} bsc_init_kind;

typedef struct bsc_param_spec {
    const char *name;      /* PyTorch's name: "weight", "bias", "running_mean" */
    bsc_shape shape;       /* PyTorch layout: dense [out, in], conv [out, in, kh, kw] */
    bsc_param_role role;
    bsc_init_kind init;    /* default initialization */
    int64_t fan_in, fan_out;
    int filter_axis;       /* axis that indexes filters/neurons (0 for dense and conv
                              weights), -1 when the tensor has none */
} bsc_param_spec;

/* What create() gets: the layer's options (its mapping in the pipeline,
 * "type" included; check keys with bsc_node_check_keys) and the per-sample
 * input shape (batch dimension excluded). create() must not touch a device. */
typedef struct bsc_layer_config {
    const bsc_node *options;
    bsc_shape input;
    int index;             /* position in the model, 0-based */
} bsc_layer_config;

/* What bind() gets once the model's buffers exist. params[i] / grads[i]
 * follow param_spec order; for role STATE, params[i] views the flat state
 * buffer and grads[i] is empty. workspace holds workspace_size(max_batch)
 * floats and is private to the layer. */
typedef struct bsc_layer_binding {
    struct bsc_context *ctx;
    size_t max_batch;
    const bsc_tensor *params;
    const bsc_tensor *grads;
    bsc_tensor workspace;
} bsc_layer_binding;

typedef struct bsc_pass {
    size_t batch;          /* rows in this pass, <= max_batch */
    int training;          /* 1: training mode (dropout on, batchnorm batch stats) */
    uint64_t seed;         /* study seed: dropout keys on (seed, layer, step) */
    uint64_t step;         /* global optimizer step */
} bsc_pass;

typedef struct bsc_layer_ops {
    size_t struct_size;    /* sizeof(bsc_layer_ops) the plugin was built with */
    /* Parses and checks options, infers shapes. *self owned by the plugin. */
    bsc_status (*create)(const bsc_layer_config *cfg, void **self);
    /* Per-sample output shape. */
    bsc_status (*output_shape)(void *self, bsc_shape *out);
    int (*n_params)(void *self);
    bsc_status (*param_spec)(void *self, int i, bsc_param_spec *out);
    /* Floats of private scratch needed for max_batch rows (im2col, masks,
     * saved statistics); may be 0. */
    size_t (*workspace_size)(void *self, size_t max_batch);
    bsc_status (*bind)(void *self, const bsc_layer_binding *b);
    /* out[batch, out_shape] = f(in[batch, in_shape]). Enqueue only. */
    bsc_status (*forward)(void *self, const bsc_pass *p, const bsc_tensor *in, bsc_tensor *out);
    /* Given dout, OVERWRITES this layer's parameter gradients (bound grads)
     * with d loss / d params and writes din (NULL when the input gradient is
     * not needed: the first layer). in/out are the tensors of the preceding
     * forward call with the same pass. Enqueue only. */
    bsc_status (*backward)(void *self, const bsc_pass *p, const bsc_tensor *in,
                           const bsc_tensor *out, const bsc_tensor *dout, bsc_tensor *din);
    void (*destroy)(void *self);
    /* Optional (NULL = not supported; the host falls back to micro-batches of
     * one): acc[i] += ||d loss_i / d params||^2 of this layer for every row i,
     * where dout holds row i's own output gradient. */
    bsc_status (*per_example_sqnorm)(void *self, const bsc_pass *p, const bsc_tensor *in,
                                     const bsc_tensor *dout, bsc_tensor *acc);
} bsc_layer_ops;

typedef struct bsc_layer_type {
    const char *name;      /* "dense": the pipeline's `type:` */
    const char *summary;   /* one line for `batchscope plugins` */
    const bsc_layer_ops *ops;
} bsc_layer_type;

/* ------------------------------------------------------------------ losses */

typedef struct bsc_loss_config {
    const bsc_node *options;   /* the pipeline's `loss:` mapping (may be a scalar) */
    bsc_shape input;           /* per-sample logits shape */
    int n_classes;
} bsc_loss_config;

typedef struct bsc_loss_ops {
    size_t struct_size;
    bsc_status (*create)(const bsc_loss_config *cfg, void **self);
    size_t (*workspace_size)(void *self, size_t max_batch);
    bsc_status (*bind)(void *self, struct bsc_context *ctx, size_t max_batch,
                       bsc_tensor workspace);
    /* loss[i] = loss of row i; correct[i] = 1.0f when argmax(logits_i) == label_i.
     * labels are BSC_I32. Enqueue only. */
    bsc_status (*forward)(void *self, size_t batch, const bsc_tensor *logits,
                          const bsc_tensor *labels, bsc_tensor *loss, bsc_tensor *correct);
    /* dlogits = scale * d(sum_i loss_i)/d logits (scale = 1/batch for a mean). */
    bsc_status (*backward)(void *self, size_t batch, const bsc_tensor *logits,
                           const bsc_tensor *labels, float scale, bsc_tensor *dlogits);
    void (*destroy)(void *self);
} bsc_loss_ops;

typedef struct bsc_loss_type {
    const char *name;
    const char *summary;
    const bsc_loss_ops *ops;
} bsc_loss_type;

/* ---------------------------------------------------------------- analyses */

struct bsc_model;      /* model.h */
struct bsc_evaluator;  /* evaluator.h */
struct bsc_metrics_row;

struct bsc_run_result;

typedef struct bsc_analysis_config {
    const bsc_node *options;   /* its mapping under `observers:` or `analyses:` */
    const char *out_dir;       /* OUT */
    uint64_t seed;
    /* ABI 1.1: the runs the study will train (name and batch_size only; no
     * tensors), so that options naming runs are checked before training.
     * NULL when unknown (`batchscope report`). */
    const struct bsc_run_result *planned_runs;
    size_t n_planned_runs;
} bsc_analysis_config;

/* One training run (a batch size and its own rate), as observers see it. */
typedef struct bsc_run_info {
    struct bsc_context *ctx;
    struct bsc_model *model;   /* params/grads/state buffers: see model.h */
    size_t batch_size;
    size_t steps_per_epoch;
    int epochs;
    const char *run_dir;       /* OUT/runs/<name> (exists) */
    const bsc_tensor *init_params;  /* w_0, flat, device */
    const char *name;          /* the run's name: "bs256", or a `training.runs` name */
} bsc_run_info;

typedef struct bsc_step_info {
    int epoch;                 /* 1-based */
    uint64_t step;             /* global step, 1-based, after the update */
    size_t step_in_epoch;      /* 1-based */
    size_t batch;              /* rows in this step */
    float lr;
    const bsc_tensor *x;       /* this step's inputs [batch, ...] */
    const bsc_tensor *y;       /* labels [batch], I32 */
} bsc_step_info;

typedef struct bsc_epoch_info {
    int epoch;                 /* 0 = before training */
    uint64_t step;
    struct bsc_metrics_row *row;  /* add columns with bsc_metrics_set() */
} bsc_epoch_info;

/* A finished run as post-training analyses see it. */
typedef struct bsc_run_result {
    size_t batch_size;
    const char *dir;           /* OUT/runs/<name> */
    const char *status;        /* "completed", "diverged" */
    const bsc_tensor *init_params, *final_params, *final_state;
    /* Appended (ABI 1.1) so that a plugin built for 1.0 still finds dir and
     * the tensors where it expects them. A program that fills the struct
     * may leave it NULL: the run is then "bs<B>" (bsc_run_result_name). */
    const char *name;          /* "bs256", or a `training.runs` name */
} bsc_run_result;

typedef struct bsc_study {
    struct bsc_context *ctx;
    struct bsc_model *model;
    const bsc_run_result *runs;
    size_t n_runs;
    const char *out_dir;
    uint64_t seed;
    struct bsc_evaluator *eval;
} bsc_study;

typedef struct bsc_analysis_ops {
    size_t struct_size;
    /* Parses and checks options. Must not touch a device. */
    bsc_status (*create)(const bsc_analysis_config *cfg, void **self);
    /* Observer hooks; any may be NULL. */
    bsc_status (*run_start)(void *self, const bsc_run_info *run);
    bsc_status (*after_step)(void *self, const bsc_run_info *run, const bsc_step_info *s);
    bsc_status (*epoch_end)(void *self, const bsc_run_info *run, const bsc_epoch_info *e);
    bsc_status (*run_end)(void *self, const bsc_run_info *run);
    /* Post-training entry: called once after all runs. May be NULL. */
    bsc_status (*post)(void *self, const bsc_study *study);
    void (*destroy)(void *self);
} bsc_analysis_ops;

typedef struct bsc_analysis_type {
    const char *name;
    const char *summary;
    const bsc_analysis_ops *ops;
} bsc_analysis_type;

/* ---------------------------------------------------------------- the entry */

typedef struct bsc_plugin_desc {
    uint32_t abi_major;
    uint32_t abi_minor;
    const char *name;
    const char *version;
    const bsc_layer_type *layers;
    size_t n_layers;
    const bsc_loss_type *losses;
    size_t n_losses;
    const bsc_analysis_type *analyses;
    size_t n_analyses;
} bsc_plugin_desc;

typedef const bsc_plugin_desc *(*bsc_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
