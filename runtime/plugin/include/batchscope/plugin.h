/* batchscope: the plugin ABI (2.2).
 *
 * A plugin is a shared object that exports one function,
 *
 *     const bsc_plugin_desc *bsc_plugin_entry(void);
 *
 * returning a pointer to a static, const descriptor; BSC_PLUGIN() below
 * writes both. The descriptor lists the plugin's types, each of one KIND
 * (layer, loss, observer, analysis, report) with its own ops table and the
 * options it accepts.
 *
 * ABI rules (GStreamer's and SQLite's, see DESIGN.md):
 *  - The host rejects a plugin whose abi_major differs from BSC_ABI_MAJOR or
 *    whose abi_minor is newer than BSC_ABI_MINOR, naming the file and both
 *    versions. abi_major and abi_minor are the first two members of the
 *    descriptor in every ABI version, so any plugin can be asked.
 *  - Structs grow only at their end. Every struct a plugin hands the host
 *    (descriptor, type, option, ops table) begins with its own struct_size,
 *    so the host never reads past what an older plugin provides; members an
 *    older plugin lacks read as NULL/0.
 *  - Nothing is handed over as an array of structs (an older element size
 *    would shift every element after the first): lists are NULL-terminated
 *    arrays of pointers (types, options, runs) or counted pointer arrays.
 *  - Optional ops may be NULL and get defaults (see each table).
 *
 * Rules for plugins:
 *  - never print and never exit(): return a bsc_status and set the message
 *    with bsc_fail() / bsc_node_fail();
 *  - the host owns every tensor it passes in; a plugin owns only what its
 *    create() allocated and frees it in destroy() (default: free(self));
 *  - nothing may block inside a training step: enqueue kernels on the
 *    context's queue, read back (if at all) only at epoch_end, run_end or
 *    after training;
 *  - a plugin's OpenCL kernels are its own: embedded into the module at build
 *    time (batchscope_embed_cl() of the CMake package) and built through the
 *    program cache with bsc_kernel_from_source().
 * Libraries stay loaded until the process ends.
 */
#ifndef BATCHSCOPE_PLUGIN_H
#define BATCHSCOPE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include "batchscope/status.h"
#include "batchscope/node.h"
#include "batchscope/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BSC_ABI_MAJOR 2
#define BSC_ABI_MINOR 2
#define BSC_PLUGIN_ENTRY_SYMBOL "bsc_plugin_entry"

#if defined(__GNUC__)
#define BSC_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define BSC_PLUGIN_EXPORT
#endif

/* ----------------------------------------------------------------- kinds */

typedef enum bsc_kind {
    BSC_KIND_LAYER = 1,     /* `model:` entries */
    BSC_KIND_LOSS = 2,      /* `loss:` */
    BSC_KIND_OBSERVER = 3,  /* `observers:`: hooks during training */
    BSC_KIND_ANALYSIS = 4,  /* `analyses:`: after training, on the finished runs */
    BSC_KIND_REPORT = 5     /* `report:`: figures from the result files alone */
} bsc_kind;
#define BSC_KIND_COUNT 5

/* --------------------------------------------------------------- options */

/* What a value must look like. The host checks every key of a type's
 * mapping against its declared options (unknown keys are errors with a
 * "did you mean") and the value's form against its kind, at the value's
 * file:line:col, before create(). Ranges and meaning are create()'s to
 * check. */
typedef enum bsc_opt_kind {
    BSC_OPT_BOOL = 1,    /* true / false */
    BSC_OPT_INT = 2,     /* an integer */
    BSC_OPT_FLOAT = 3,   /* a number */
    BSC_OPT_STRING = 4,  /* a scalar */
    BSC_OPT_LIST = 5,    /* a sequence (or one scalar, taken as a list of one) */
    BSC_OPT_MAP = 6,     /* a mapping */
    BSC_OPT_ANY = 7      /* anything: create() checks (an int or a pair, a run or a path) */
} bsc_opt_kind;

typedef struct bsc_option {
    size_t struct_size;    /* sizeof(bsc_option) the plugin was built with */
    const char *name;      /* the key */
    bsc_opt_kind kind;
    const char *def;       /* the default as written in YAML, "" when required or computed */
    const char *help;      /* one line for `batchscope plugins` and the README */
} bsc_option;

/* BSC_OPTIONS(BSC_OPT("units", BSC_OPT_INT, "", "output features (required)"), ...)
 * is a NULL-terminated array of pointers with static storage. */
#define BSC_OPT(name, kind, def, help) \
    (&(const bsc_option){sizeof(bsc_option), (name), (kind), (def), (help)})
#define BSC_OPTIONS(...) ((const bsc_option *const[]){__VA_ARGS__, NULL})
#define BSC_NO_OPTIONS ((const bsc_option *const[]){NULL})

/* What create() gets for observers, analyses and reports. */
struct bsc_run_result;
typedef struct bsc_component_config {
    const bsc_node *options;   /* its mapping ("type" included), or NULL: all defaults */
    const char *out_dir;       /* OUT */
    uint64_t seed;
    /* The runs the study will train (name and batch_size only; no tensors),
     * so that options naming runs are checked before training. NULL when
     * unknown (`batchscope report`). */
    const struct bsc_run_result *const *planned_runs;
    size_t n_planned_runs;
} bsc_component_config;

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

/* Filled by the plugin into host memory: it never grows (a new field would
 * be a new struct). */
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
 * "type" included, already checked against the declared options) and the
 * per-sample input shape (batch dimension excluded). create() must not
 * touch a device. */
typedef struct bsc_layer_config {
    const bsc_node *options;
    bsc_shape input;
    int index;             /* position in the model, 0-based */
} bsc_layer_config;

/* What bind() gets once the model's buffers exist. *params[i] / *grads[i]
 * follow param_spec order; for role STATE, params[i] views the flat state
 * buffer and grads[i] is an empty tensor. workspace holds
 * workspace_size(max_batch) floats and is private to the layer. */
typedef struct bsc_layer_binding {
    struct bsc_context *ctx;
    size_t max_batch;
    const bsc_tensor *const *params;
    const bsc_tensor *const *grads;
    const bsc_tensor *workspace;
} bsc_layer_binding;

typedef struct bsc_pass {
    size_t batch;          /* rows in this pass, <= max_batch */
    int training;          /* 1: training mode (dropout on, batchnorm batch stats) */
    uint64_t seed;         /* study seed: dropout keys on (seed, layer, step) */
    uint64_t step;         /* global optimizer step */
    struct bsc_context *ctx;  /* the queue to enqueue on (the model sets it) */
} bsc_pass;

typedef struct bsc_layer_ops {
    size_t struct_size;    /* sizeof(bsc_layer_ops) the plugin was built with */
    /* Required. Parses options, infers shapes. *self is the plugin's. */
    bsc_status (*create)(const bsc_layer_config *cfg, void **self);
    /* Default: free(self). */
    void (*destroy)(void *self);
    /* Per-sample output shape. Default: the input shape (elementwise layers). */
    bsc_status (*output_shape)(void *self, bsc_shape *out);
    /* Default: 0 (no parameters; param_spec is then never called). */
    int (*n_params)(void *self);
    bsc_status (*param_spec)(void *self, int i, bsc_param_spec *out);
    /* Floats of private scratch for max_batch rows. Default: 0. */
    size_t (*workspace_size)(void *self, size_t max_batch);
    /* Default: nothing to bind. */
    bsc_status (*bind)(void *self, const bsc_layer_binding *b);
    /* Required. out[batch, out_shape] = f(in[batch, in_shape]). Enqueue only. */
    bsc_status (*forward)(void *self, const bsc_pass *p, const bsc_tensor *in, bsc_tensor *out);
    /* Required. Given dout, OVERWRITES this layer's parameter gradients
     * (bound grads) with d loss / d params and writes din (NULL when the
     * input gradient is not needed: the first layer). in/out are the
     * tensors of the preceding forward call with the same pass. */
    bsc_status (*backward)(void *self, const bsc_pass *p, const bsc_tensor *in,
                           const bsc_tensor *out, const bsc_tensor *dout, bsc_tensor *din);
    /* Optional: acc[i] += ||d loss_i / d params||^2 of this layer for every
     * row i, where dout holds row i's own output gradient. NULL: nothing to
     * add for a layer without parameters; for one with parameters the host
     * falls back to micro-batches of one. */
    bsc_status (*per_example_sqnorm)(void *self, const bsc_pass *p, const bsc_tensor *in,
                                     const bsc_tensor *dout, bsc_tensor *acc);
    /* Optional: nonzero when forward is linear in this layer's trained
     * parameters, all of them at once: f(x, a P + b Q) = a f(x, P) +
     * b f(x, Q) for every input x (dense and conv2d, bias included; not
     * batchnorm). The evaluator then forms this layer's output at many
     * points of a line or plane in parameter space from a few products
     * computed once (bsc_eval_family, surfaces and interpolation). NULL or
     * 0: not linear, every point runs the layer. */
    int (*linear_in_params)(void *self);
    /* Optional, both or neither: Pearlmutter's R-operator, R{f} = d/dr
     * f(theta + r v) at r = 0, so that one pass gives the Hessian-vector
     * product H v exactly (bsc_model_hvp). The host calls them only after
     * forward with the same pass, so whatever forward saved (a pooling
     * winner, a dropout mask, batch statistics) is there. Second
     * derivatives that are zero almost everywhere are zero, as autograd has
     * them: relu'' = 0, the max of a pool stays where it is.
     *
     * r_forward: rout = R{out} = J_in rin + J_theta v, where v[i] (views
     * of the direction, param_spec order; empty for STATE tensors) is this
     * layer's part of the direction. rin is NULL when R{in} is zero (the
     * first layer with trained parameters, whose input does not depend on
     * them); a layer without trained parameters always gets one. */
    bsc_status (*r_forward)(void *self, const bsc_pass *p, const bsc_tensor *in,
                            const bsc_tensor *rin, const bsc_tensor *const *v,
                            const bsc_tensor *out, bsc_tensor *rout);
    /* r_backward: given dout (d loss / d out; NULL only as r_hints allow)
     * and rdout = R{dout}, writes
     * din = d loss / d in as backward would (NULL: not needed), rdin =
     * R{din} (NULL: not needed), and OVERWRITES hv[i] (views of the
     * product, param_spec order, empty for STATE) with R{d loss / d
     * param_i}: this layer's rows of H v. It does not write the ordinary
     * parameter gradients. rin is r_forward's (NULL: zero). */
    bsc_status (*r_backward)(void *self, const bsc_pass *p, const bsc_tensor *in,
                             const bsc_tensor *rin, const bsc_tensor *const *v,
                             const bsc_tensor *out, const bsc_tensor *rout,
                             const bsc_tensor *dout, const bsc_tensor *rdout,
                             const bsc_tensor *const *hv, bsc_tensor *din, bsc_tensor *rdin);
    /* Optional (0: none): BSC_R_* hints that let the host skip work in the
     * R-operator pass. With a hint that applies, r_backward gets dout =
     * NULL (and din = NULL), so the layers above need not compute it. */
    unsigned r_hints;
    /* Optional (ABI 2.1): the evaluation forward (training = 0) of `rows`
     * rows in host memory, done on the calling thread before it returns:
     * out[rows, out_shape] = f(in[rows, in_shape]), where param[i] is the
     * host address of this layer's parameter i (param_spec order, STATE
     * ones included). The host calls it only inside a host task
     * (host_task.h) on a context whose GEMM backend is the host's
     * (bsc_host_sgemm works there; nothing may be enqueued or fail, and
     * bsc_host_parallel may not be called: the host already runs it), and
     * from several threads at once on different rows with the same self,
     * which it must not write. in and out never overlap. When the layers
     * from some point on and the loss all have it, the evaluator runs them
     * block by block of rows that stay in the cores' caches: one task per
     * batch instead of a kernel per layer over the whole batch. NULL: the
     * layer's kernels run. */
    void (*host_forward)(void *self, size_t rows, const float *in,
                         const float *const *param, float *out);
} bsc_layer_ops;

/* r_backward reads dout only to compute din: its R{din} and H v need no
 * dout (a zero second derivative in the input and no parameters: relu,
 * leaky_relu, pooling, flatten, dropout). */
#define BSC_R_DOUT_ONLY_FOR_DIN 1u
/* With rin = NULL and rdin = NULL -- the first layer with trained
 * parameters -- r_backward reads dout only to compute din: its output is
 * linear in its parameters for a fixed input (dense, conv2d, batchnorm in
 * eval mode), so H v there is J_theta^T R{dout} alone. */
#define BSC_R_DOUT_ONLY_FOR_DIN_AT_FIRST 2u

/* ------------------------------------------------------------------ losses */

typedef struct bsc_loss_config {
    const bsc_node *options;   /* the pipeline's `loss:` mapping (may be a scalar) */
    bsc_shape input;           /* per-sample logits shape */
    int n_classes;
} bsc_loss_config;

typedef struct bsc_loss_ops {
    size_t struct_size;
    bsc_status (*create)(const bsc_loss_config *cfg, void **self);   /* required */
    void (*destroy)(void *self);                                      /* default: free */
    size_t (*workspace_size)(void *self, size_t max_batch);           /* default: 0 */
    bsc_status (*bind)(void *self, struct bsc_context *ctx, size_t max_batch,
                       const bsc_tensor *workspace);                  /* required */
    /* Required. loss[i] = loss of row i; correct[i] = 1.0f when
     * argmax(logits_i) == label_i. labels are BSC_I32. Enqueue only. */
    bsc_status (*forward)(void *self, size_t batch, const bsc_tensor *logits,
                          const bsc_tensor *labels, bsc_tensor *loss, bsc_tensor *correct);
    /* Required. dlogits = scale * d(sum_i loss_i)/d logits. */
    bsc_status (*backward)(void *self, size_t batch, const bsc_tensor *logits,
                           const bsc_tensor *labels, float scale, bsc_tensor *dlogits);
    /* Optional (the R-operator, see bsc_layer_ops): rdlogits = R{dlogits} =
     * scale * (d^2 sum_i loss_i / d logits^2) rlogits, row by row. NULL:
     * Hessian-vector products fall back to finite differences. */
    bsc_status (*r_backward)(void *self, size_t batch, const bsc_tensor *logits,
                             const bsc_tensor *rlogits, const bsc_tensor *labels, float scale,
                             bsc_tensor *rdlogits);
    /* Optional (ABI 2.1), under bsc_layer_ops.host_forward's rules: loss[i]
     * and correct[i] as forward gives them, for `rows` rows in host memory,
     * on the calling thread. */
    void (*host_forward)(void *self, size_t rows, const float *logits,
                         const int32_t *labels, float *loss, float *correct);
} bsc_loss_ops;

/* ---------------------------------------------------------------- the study */

struct bsc_model;      /* model.h */
struct bsc_evaluator;  /* evaluator.h */
struct bsc_metrics_row;

/* A finished run as analyses and reports see it. */
typedef struct bsc_run_result {
    const char *name;          /* "bs256", or a `training.runs` name */
    size_t batch_size;
    const char *dir;           /* OUT/runs/<name> */
    const char *status;        /* "completed", "diverged" */
    const bsc_tensor *init_params, *final_params, *final_state;  /* NULL in reports */
} bsc_run_result;

/* What analyses and reports run on. ctx, model and eval are NULL for a
 * report drawn from a results directory (`batchscope report`). */
typedef struct bsc_study {
    struct bsc_context *ctx;
    struct bsc_model *model;
    const bsc_run_result *const *runs;   /* the finished runs, in study order */
    size_t n_runs;
    const char *out_dir;
    uint64_t seed;
    struct bsc_evaluator *eval;
    /* Ctrl-C: returns nonzero once the user asked the study to stop. Long
     * analyses poll it between evaluations (bsc_study_stop_requested) and
     * return BSC_ERR_INTERRUPTED, keeping what they finished for --resume.
     * NULL: never. */
    int (*stop_requested)(void *user);
    void *stop_user;
    /* A line (no newline) for the study's log, which is the host's to print
     * or drop (--quiet): analyses say there which path they took, e.g.
     * whether a surface shares its first layer. NULL: no log. */
    void (*log)(void *user, const char *line);
    void *log_user;
    /* Progress of a long analysis, which the host draws (a bar on a
     * terminal, a plain line now and then in a log) with an ETA: `done` of
     * `total` `unit`s ("points", "iterations", "products") of the item
     * `label` ("surface bs256"). Report done = 0 (or what a resumed item
     * already has) first, then as units finish; done == total ends the
     * item. total 0: not known. Call it through bsc_study_progress, which
     * is cheap enough for every unit. NULL: nobody listens. */
    void (*progress)(void *user, const char *label, const char *unit, size_t done,
                     size_t total);
    void *progress_user;
} bsc_study;

static inline int bsc_study_stop_requested(const bsc_study *s)
{
    return s && s->stop_requested && s->stop_requested(s->stop_user);
}

static inline void bsc_study_log(const bsc_study *s, const char *line)
{
    if (s && s->log)
        s->log(s->log_user, line);
}

static inline void bsc_study_progress(const bsc_study *s, const char *label, const char *unit,
                                      size_t done, size_t total)
{
    if (s && s->progress)
        s->progress(s->progress_user, label, unit, done, total);
}

/* ------------------------------------------------------------- observers */

/* One training run (a batch size and its own rate), as observers see it. */
typedef struct bsc_run_info {
    struct bsc_context *ctx;
    struct bsc_model *model;   /* params/grads/state buffers: see model.h */
    const char *name;          /* the run's name: "bs256", or a `training.runs` name */
    size_t batch_size;
    size_t steps_per_epoch;
    int epochs;
    const char *run_dir;       /* OUT/runs/<name> (exists) */
    const bsc_tensor *init_params;  /* w_0, flat, device */
    /* The run's optimizer (optim.h): an observer may have it measure its
     * updates (bsc_optimizer_track_updates) instead of a pass of its own. */
    struct bsc_optimizer *optimizer;
} bsc_run_info;

typedef struct bsc_step_info {
    int epoch;                 /* 1-based */
    uint64_t step;             /* global step, 1-based, after the update */
    size_t step_in_epoch;      /* 1-based */
    size_t batch;              /* rows in this step */
    float lr;
    const bsc_tensor *x;       /* this step's inputs [batch, ...] */
    const bsc_tensor *y;       /* labels [batch], I32 */
    /* ABI 2.2, in after_backward only (0 in after_step): 1 when the model's
     * activations, output gradients (bsc_model_dactivation) and gradients
     * are this step's own forward and backward of these x and y, with the
     * loss scale 1/batch; 0 when they are not (a data-parallel step: each
     * rank's buffers hold its own rows), so an observer that wants them
     * runs that pass itself. */
    int step_pass;
} bsc_step_info;

typedef struct bsc_epoch_info {
    int epoch;                 /* 0 = before training */
    uint64_t step;
    struct bsc_metrics_row *row;  /* add columns with bsc_metrics_set() */
} bsc_epoch_info;

/* Every hook is optional (NULL: not called). */
typedef struct bsc_observer_ops {
    size_t struct_size;
    bsc_status (*create)(const bsc_component_config *cfg, void **self);   /* required */
    void (*destroy)(void *self);                                           /* default: free */
    bsc_status (*run_start)(void *self, const bsc_run_info *run);
    bsc_status (*after_step)(void *self, const bsc_run_info *run, const bsc_step_info *s);
    bsc_status (*epoch_end)(void *self, const bsc_run_info *run, const bsc_epoch_info *e);
    bsc_status (*run_end)(void *self, const bsc_run_info *run);
    /* After every run has finished (or was kept on --resume): tables over
     * the runs, from their files. */
    bsc_status (*study_end)(void *self, const bsc_study *study);
    /* Optional (ABI 2.2): after the step's forward and backward, before the
     * optimizer applies the update, so at the weights the step starts from
     * (step and the rest of s as after_step will see them; s->step_pass
     * says whether the model's buffers hold the step's pass). The step's
     * loss has been summed already. An observer may run passes of its own
     * here, but must leave the gradient and state buffers as it found them:
     * the optimizer reads the gradient next. Enqueue only, like
     * after_step. */
    bsc_status (*after_backward)(void *self, const bsc_run_info *run, const bsc_step_info *s);
} bsc_observer_ops;

/* -------------------------------------------------------------- analyses */

typedef struct bsc_analysis_ops {
    size_t struct_size;
    bsc_status (*create)(const bsc_component_config *cfg, void **self);   /* required */
    void (*destroy)(void *self);                                           /* default: free */
    /* Required: called once, after all runs, on the finished ones --
     * completed and diverged. The failure policy: a run that diverged
     * (status "diverged", its final weights non-finite) is skipped, with a
     * row saying "skipped: diverged" where the analysis' table has a row per
     * run; a run that fails in the analysis should not stop the others
     * (write what was computed, then return the failure). */
    bsc_status (*run)(void *self, const bsc_study *study);
    /* Optional (ABI 2.0 addition; NULL: nothing to check): what create()
     * cannot check from the options alone, such as the files they name (a
     * checkpoint, saved directions), opened and compared with the model.
     * Called by `batchscope check` and by `batchscope run` before any
     * training, so a corrupt file is reported in seconds, not after hours.
     * study has the model (host side: tensor names and shapes; no device
     * buffers), the planned runs (names and batch sizes, no tensors), the
     * seed and out_dir -- NULL in `batchscope check` without --out -- and
     * NULL ctx and eval. A file under out_dir that does not exist yet is
     * one the study will write (a run's checkpoint): it is checked when
     * used. */
    bsc_status (*check)(void *self, const bsc_study *study);

    /* Optional, all four or none: the analysis as independent units of
     * work (a chunk of grid points, one maximization, one Hessian), which
     * the host runs in any order and on any rank of `mpirun -n N batchscope
     * run`, keeps one by one for --resume, and merges on rank 0. A host
     * that finds them calls these instead of run(); run() stays required
     * (an older host calls it) and must give the same files.
     *
     * The calls, each on the study of the finished runs (the same runs, in
     * the same order, with the same weights on every rank):
     *   plan      on every process that runs or merges units, once, before
     *             any of its units: how many units there are (0: nothing to
     *             do). It may prepare what units share (directions drawn
     *             from the study's seed); it writes no files.
     *   run_unit  unit u, 0 <= u < n_units, on any rank and in any order,
     *             each at most once per process: computes it and returns its
     *             result as bytes (*result malloc'ed, the host frees it; the
     *             format is the analysis' own; small -- bytes to KB, a
     *             Hessian's density table about 0.5 MB -- since they travel
     *             to rank 0 and are kept on disk). It writes no files, and
     *             its bytes must depend only on the unit (not on the rank,
     *             the order or what ran before; a timing it reports, such as
     *             a row's "seconds", is the one exception), so that one rank
     *             and many give the same files. A failure of the item itself
     *             may travel in the bytes (the analysis then records it as a
     *             row and finish() returns it): the unit is then complete,
     *             and --resume keeps it. It polls bsc_study_stop_requested
     *             like run() and returns BSC_ERR_INTERRUPTED itself.
     *   merge     on rank 0 only, once per unit in unit order, after every
     *             unit has run (in this process or another, now or before a
     *             --resume): takes in unit u's bytes.
     *   finish    on rank 0 only, after the last merge: writes the result
     *             files (atomically), as run() would have. */
    bsc_status (*plan)(void *self, const bsc_study *study, size_t *n_units);
    bsc_status (*run_unit)(void *self, const bsc_study *study, size_t unit, void **result,
                           size_t *len);
    bsc_status (*merge)(void *self, const bsc_study *study, size_t unit, const void *result,
                        size_t len);
    bsc_status (*finish)(void *self, const bsc_study *study);
} bsc_analysis_ops;

/* --------------------------------------------------------------- reports */

typedef struct bsc_report_ops {
    size_t struct_size;
    bsc_status (*create)(const bsc_component_config *cfg, void **self);   /* required */
    void (*destroy)(void *self);                                           /* default: free */
    /* Required: draws from the files under study->out_dir alone (ctx, model
     * and eval may be NULL; runs carry names, batch sizes and dirs). */
    bsc_status (*draw)(void *self, const bsc_study *study);
} bsc_report_ops;

/* ----------------------------------------------------------------- types */

typedef struct bsc_type {
    size_t struct_size;                 /* sizeof(bsc_type) the plugin was built with */
    bsc_kind kind;
    const char *name;                   /* the pipeline's `type:` */
    const char *summary;                /* one line for `batchscope plugins` */
    const bsc_option *const *options;   /* NULL-terminated; NULL: no options */
    const void *ops;                    /* the ops table of its kind */
} bsc_type;

typedef struct bsc_plugin_desc {
    uint32_t abi_major;                 /* first in every ABI version */
    uint32_t abi_minor;
    size_t struct_size;
    const char *name;
    const char *version;
    const bsc_type *const *types;       /* NULL-terminated */
} bsc_plugin_desc;

typedef const bsc_plugin_desc *(*bsc_plugin_entry_fn)(void);

/* ------------------------------------------------------------ the macros */

/* One type: the ops table of its kind from designated initializers, and the
 * type record `const bsc_type <id>_type` that BSC_PLUGIN lists:
 *
 *   BSC_LAYER_TYPE(gelu, "gelu", "Gaussian error linear unit", BSC_NO_OPTIONS,
 *                  .create = gelu_create, .forward = gelu_forward,
 *                  .backward = gelu_backward);
 */
#define BSC_DEFINE_TYPE_(id, kind_, opstype, tname, tsummary, topts, ...)          \
    static const opstype id##_ops_ = {.struct_size = sizeof(opstype), __VA_ARGS__}; \
    const bsc_type id##_type = {sizeof(bsc_type), (kind_), (tname), (tsummary),   \
                                (topts), &id##_ops_}
#define BSC_LAYER_TYPE(id, name, summary, options, ...) \
    BSC_DEFINE_TYPE_(id, BSC_KIND_LAYER, bsc_layer_ops, name, summary, options, __VA_ARGS__)
#define BSC_LOSS_TYPE(id, name, summary, options, ...) \
    BSC_DEFINE_TYPE_(id, BSC_KIND_LOSS, bsc_loss_ops, name, summary, options, __VA_ARGS__)
#define BSC_OBSERVER_TYPE(id, name, summary, options, ...) \
    BSC_DEFINE_TYPE_(id, BSC_KIND_OBSERVER, bsc_observer_ops, name, summary, options, __VA_ARGS__)
#define BSC_ANALYSIS_TYPE(id, name, summary, options, ...) \
    BSC_DEFINE_TYPE_(id, BSC_KIND_ANALYSIS, bsc_analysis_ops, name, summary, options, __VA_ARGS__)
#define BSC_REPORT_TYPE(id, name, summary, options, ...) \
    BSC_DEFINE_TYPE_(id, BSC_KIND_REPORT, bsc_report_ops, name, summary, options, __VA_ARGS__)

/* The descriptor and the entry point, from an X-macro list of type ids:
 *
 *   #define TYPES(X) X(gelu) X(my_analysis)
 *   BSC_PLUGIN("example", "1.0.0", TYPES)
 *
 * Types may be defined in other files of the module (extern, hidden). */
#define BSC_DECLARE_TYPE_(id) extern const bsc_type id##_type;
#define BSC_TYPE_POINTER_(id) &id##_type,
#define BSC_PLUGIN(pname, pversion, LIST)                                         \
    LIST(BSC_DECLARE_TYPE_)                                                       \
    static const bsc_type *const bsc_plugin_types_[] = {LIST(BSC_TYPE_POINTER_) NULL}; \
    static const bsc_plugin_desc bsc_plugin_desc_ = {                             \
        BSC_ABI_MAJOR, BSC_ABI_MINOR, sizeof(bsc_plugin_desc), (pname), (pversion), \
        bsc_plugin_types_};                                                       \
    BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void);             \
    BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void)              \
    {                                                                             \
        return &bsc_plugin_desc_;                                                 \
    }

#ifdef __cplusplus
}
#endif
#endif
