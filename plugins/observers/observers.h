/* batchscope observers plugin: what the observer files share.
 *
 * Layer segments: every observer that reports per-layer values works on the
 * same partition of the flat parameter buffer, one contiguous segment per
 * layer that has trainable tensors (model.h lays a layer's tensors out
 * consecutively). Totals are formed on the host, in double, from the
 * per-layer squared norms read back at epoch end, so they are deterministic
 * and cost no extra kernel.
 */
#ifndef BSC_OBSERVERS_H
#define BSC_OBSERVERS_H

#include <stddef.h>
#include <stdint.h>

#include "batchscope/device.h"
#include "batchscope/evaluator.h"
#include "batchscope/model.h"
#include "batchscope/plugin.h"
#include "batchscope/results.h"
#include "batchscope/table.h"

/* Work-group size of the observer kernels (a power of two; lowered at run
 * start when the device allows less). */
#define OBS_LOCAL 256

/* Elements per work-group of the segment kernels. Whole layers per group
 * leave most of a device idle (three groups for an MLP) and one long serial
 * walk per group; chunks of this size run side by side, and their partial
 * sums are added on the host in chunk order. */
#define OBS_CHUNK 4096

typedef struct obs_segments {
    size_t n;             /* segments (layers with trainable tensors) */
    int *layer;           /* [n] model layer index of each segment */
    size_t n_chunks;      /* work-groups: no chunk spans two segments */
    size_t *chunk_seg;    /* [n_chunks] segment of each chunk */
    uint32_t *bounds;     /* [n_chunks + 1] element offsets into the params buffer */
    bsc_tensor dev;       /* chunk bounds on the device (U32 in I32 storage) */
} obs_segments;

/* Builds the layer segments of a bound model, cuts them into chunks and
 * uploads the chunk bounds. */
bsc_status obs_segments_build(bsc_context *ctx, bsc_model *m, obs_segments *out);
void obs_segments_free(obs_segments *s);
/* Per-segment sums, in double and chunk order, of per-chunk values v[c *
 * stride + k] for k < width: out[s * width + k]. */
void obs_segments_sum(const obs_segments *s, const float *v, size_t width, double *out);

/* The kernel `kernel` of `file`, one of the plugin's own OpenCL sources
 * (cl/observers, embedded into the module), built through the runtime's
 * program cache; owned by the context. A file not embedded is
 * BSC_ERR_NOT_FOUND. */
bsc_status obs_kernel(bsc_context *ctx, const char *file, const char *kernel, cl_kernel *out);

/* Work-group size for kernel k: OBS_LOCAL or the largest power of two the
 * device accepts for it. */
bsc_status obs_local_size(bsc_context *ctx, cl_kernel k, size_t *local);

/* A 1-D float / int buffer of n elements (at least one). */
bsc_status obs_alloc(bsc_context *ctx, bsc_dtype dt, size_t n, bsc_tensor *t);

/* Blocking read of the first n floats of a device tensor. */
bsc_status obs_read(bsc_context *ctx, const bsc_tensor *t, size_t n, float *host);

/* OUT/runs/<run>/<name> (malloc'ed) or NULL on out of memory. */
char *obs_run_path(const bsc_run_info *run, const char *name);

/* Writes a table that grows through a run to OUT/runs/<run>/<name>,
 * atomically, formatting only the rows added since the last call
 * (bsc_table_write_csv_more; *mark zeroed with the table). */
bsc_status obs_write_run_table(const bsc_run_info *run, const bsc_table *t, const char *name,
                               bsc_csv_mark *mark);

/* Clamped sqrt of a float sum read back from the device. */
double obs_sqrt(double v);

/* ---- per-example gradient statistics (gradient_diversity, noise_scale) */

typedef struct obs_pegrad {
    bsc_context *ctx;
    bsc_model *model;
    int force_microbatch;     /* option method: microbatch */
    size_t row_len;           /* input floats per example */
    size_t n_hook, n_fallback;   /* layers with trainable tensors, by method */
    int *hook_layers;         /* layer indices using per_example_sqnorm */
    bsc_tensor acc;           /* [max_batch] per-example squared norms */
    bsc_tensor state_copy;    /* running statistics saved across the extra passes */
    bsc_tensor grads_copy;    /* the step's gradient, likewise */
    bsc_tensor all_range;     /* [0, n_params) */
    bsc_tensor fb_ranges;     /* ranges of the fallback layers */
    cl_kernel k_ranges, k_reduce;
    size_t local_ranges, local_reduce;
} obs_pegrad;

/* Run start: allocations and kernels (the model's layers decide which path
 * each layer takes). */
bsc_status obs_pegrad_start(obs_pegrad *pg, const bsc_run_info *run, int force_microbatch);
void obs_pegrad_free(obs_pegrad *pg);

/* Enqueues, for the batch x, y of s, at the current parameters:
 *   out[o]     = c^2 sum_i ||g_i||^2
 *   out[o + 1] = c sum_i ||g_i||
 *   out[o + 2] = c^2 ||sum_i g_i||^2
 * where g_i is the gradient of example i's own (unscaled) loss and c the
 * loss scale. With s->step_pass the model's buffers already hold the pass
 * of this batch at scale c (the training step's, in after_backward: c =
 * 1/batch) and only the per-example hooks and the reductions run; else the
 * forward and backward run here first. Any pass run here (that one, the
 * micro-batches of layers without the hook) leaves the gradient and state
 * buffers as it found them. Enqueue only. */
bsc_status obs_pegrad_enqueue(obs_pegrad *pg, const bsc_step_info *s, uint64_t seed,
                              float loss_scale, bsc_tensor *out, size_t o);

/* The statistics above every K global steps, kept on the device per epoch:
 * gradient_diversity and noise_scale are both made of one. */
typedef struct obs_pe_series {
    long every;
    int force_microbatch;
    uint64_t seed;
    obs_pegrad pg;
    bsc_tensor out;           /* [slots * 3] */
    size_t slots, n;          /* capacity, used this epoch */
    uint64_t *step;
    int *epoch;
    size_t *batch;
    float *host;              /* [slots * 3] after obs_pe_series_read */
} obs_pe_series;

bsc_status obs_pe_series_start(obs_pe_series *ps, const bsc_run_info *run);
/* From the observers' after_backward (the step's own pass, before the
 * update): enqueues the statistics when s->step is a multiple of `every`
 * and the batch has at least two rows (one example has no diversity). */
bsc_status obs_pe_series_step(obs_pe_series *ps, const bsc_step_info *s);
/* Epoch end: brings back the n samples of the epoch into host, each
 * unscaled to the sums of the examples' own losses (then the caller resets
 * n). */
bsc_status obs_pe_series_read(obs_pe_series *ps);
void obs_pe_series_free(obs_pe_series *ps);
/* Parses `every_steps` (default 50) and `method` into ps. */
bsc_status obs_pe_series_options(const bsc_node *options, obs_pe_series *ps);

/* Options shared by the per-step observers: `every_steps` and `method`. */
bsc_status obs_parse_method(const bsc_node *options, int *force_microbatch);

/* Median and quartiles (linear interpolation between order statistics,
 * numpy's default) of v[0..n) (sorted in place). NaN when n == 0. */
void obs_quartiles(double *v, size_t n, double *q25, double *q50, double *q75);

/* The options the per-step observers share (obs_pe_series_options). */
#define OBS_EVERY_STEPS_OPTION \
    BSC_OPT("every_steps", BSC_OPT_INT, "50", "sample every K global steps")
#define OBS_METHOD_OPTION                                                              \
    BSC_OPT("method", BSC_OPT_STRING, "auto",                                          \
            "auto (per-example gradient hooks) or microbatch (batches of one)")

/* The types, one per file; plugin.c lists them. */
#define OBS_TYPES(X) \
    X(obs_distance) X(obs_update_norms) X(obs_gradient_diversity) X(obs_noise_scale) X(obs_summary)

#endif
