/* batchscope layers plugin: what its files share (not a public header).
 *
 * Every layer keeps its kernels as cl_kernel handles looked up once in bind()
 * (they are owned by the context), and passes tensor offsets and sizes to
 * kernels as cl_int: bind() checks that everything a layer will ever index
 * fits, so the per-step casts below cannot wrap.
 */
#ifndef BSC_LAYERS_INTERNAL_H
#define BSC_LAYERS_INTERNAL_H

#include <limits.h>
#include <stdint.h>
#include "batchscope/batchscope.h"

/* The types, one per file (BSC_LAYER_TYPE / BSC_LOSS_TYPE); plugin.c lists
 * them. */
#define LAYERS_TYPES(X)                                                            \
    X(layers_dense) X(layers_conv2d) X(layers_maxpool2d) X(layers_avgpool2d)       \
    X(layers_relu) X(layers_leaky_relu) X(layers_tanh) X(layers_sigmoid)           \
    X(layers_flatten) X(layers_dropout) X(layers_batchnorm) X(layers_softmax_ce)

/* Enqueues a 1-D kernel over n work items (nothing when n == 0: an empty
 * batch is legal and a zero global size is not). */
bsc_status layers_run(bsc_context *ctx, cl_kernel k, size_t n, int nargs,
                      const bsc_karg *args);
/* Enqueues `groups` work-groups of `local` items each. */
bsc_status layers_run_groups(bsc_context *ctx, cl_kernel k, size_t groups, size_t local,
                             int nargs, const bsc_karg *args);

/* Enqueues a copy of the first n elements of src to dst: flatten, and dropout
 * in eval mode. Nothing when they alias (a host may pass one buffer as both). */
bsc_status layers_copy(bsc_context *ctx, const bsc_tensor *src, bsc_tensor *dst, size_t n);

/* For a layer whose backward is one fixed linear map T, the same whatever
 * the input (pooling with the winners forward recorded, dropout with its
 * mask, a copy): its R-operator has no second-derivative term, so
 * din = T dout and rdin = T rdout (each skipped when NULL). */
typedef bsc_status (*layers_apply_fn)(void *self, const bsc_pass *p, const bsc_tensor *src,
                                      bsc_tensor *dst);
bsc_status layers_r_backward_fixed(void *self, const bsc_pass *p, layers_apply_fn T,
                                   const bsc_tensor *dout, const bsc_tensor *rdout,
                                   bsc_tensor *din, bsc_tensor *rdin);

/* linear_in_params for layers whose forward is linear in all their trained
 * parameters at once (dense, conv2d: out = x W^T + b is, bias included). */
int layers_linear_in_params(void *self);

/* Fails unless every element index a kernel computes for `t` (offset +
 * numel) fits a cl_int; *off receives the offset. */
bsc_status layers_offset(const bsc_tensor *t, cl_int *off);
/* Fails at node `at` when n elements do not fit a cl_int index. */
bsc_status layers_check_count(const bsc_node *at, size_t n, const char *what);

/* An option that is an int or a pair [a, b] (kernel_size, stride, padding):
 * out[0], out[1] for height and width. When absent, out = {def, def}, or an
 * error at the map's mark when `required`. */
bsc_status layers_pair_option(const bsc_node *map, const char *key, int required, long def,
                              long min, long max, long out[2]);

/* Formats "layer N (type)" prefixes consistently in shape errors. */
bsc_status layers_shape_fail(const bsc_layer_config *cfg, const char *type,
                             const char *expect);

/* The per-sample element count of a shape (0 for a malformed one). */
size_t layers_numel(const bsc_shape *s);

/* Window geometry of conv2d and the pools over a [C, H, W] input. */
typedef struct layers_geom {
    int C, H, W, KH, KW, SH, SW, PH, PW, OH, OW;
} layers_geom;

/* Reads kernel_size (required), stride (default: stride_def, or the kernel
 * size when stride_def is 0) and padding from the options, checks the input
 * is [C, H, W] and the window fits, and computes the output size. Errors are
 * at the layer's node. max_pad_half: padding may not exceed half the kernel
 * (the pools' rule, so that no window lies wholly in the padding). */
bsc_status layers_geom_parse(const bsc_layer_config *cfg, const char *type, long stride_def,
                             int max_pad_half, layers_geom *g);
/* Kernel arguments KH..OW of cl/layers/conv.cl, in order; sets 8 entries that
 * point into *g (keep it alive until the launch). */
void layers_geom_args(const layers_geom *g, bsc_karg *a);

/* s[c] = sum over b, then p, of x[b, c, p] for x [B, C, P] (dense's bias
 * gradient with P = 1, conv2d's): layers.cl's channel_sum (kernel k), or
 * the same sums in the same order as a host task where the context's GEMMs
 * run on the host BLAS (the kernel's work item per channel walked the
 * batch with a stride of C floats: 4.5 ms of a cnn.yaml step for the two
 * dense layers' bias gradients at batch 256 on PoCL). */
bsc_status layers_channel_sum(bsc_context *ctx, cl_kernel k, const bsc_tensor *x, size_t B,
                              size_t C, size_t P, const bsc_tensor *s);

/* Host-thread jobs over a batch (conv_host.c, conv_wino.c): a batch of n
 * cut into min(n, most) parts (at least 1), by its size alone so that the
 * bits never depend on the thread count; part `part`'s samples [lo, hi).
 * layers_job_threads: the threads a job runs on, all of the pool's when
 * `have` floats of scratch hold need(g, F, that many), else 1 (the layer's
 * workspace was sized for the pool; the parts stay the same either way).
 * layers_run_parts runs every part on that many threads, with one, one
 * after another on the calling thread (per-thread scratch index 0). */
int layers_parts(int n, int most);
void layers_part_range(int n, int part, int parts, int *lo, int *hi);
int layers_job_threads(size_t (*need)(const layers_geom *g, size_t F, int threads),
                       const layers_geom *g, size_t F, size_t have);
void layers_run_parts(int threads, int parts, void (*fn)(void *arg, int part, int parts),
                      void *arg);

/* conv2d one sample at a time on the host threads (conv_host.c), for
 * contexts whose GEMMs run on the host BLAS: y = conv(x; w) + bias (bias
 * NULL: none); dw = d/dw, db = d/dbias when db is not NULL and, when dx is
 * not NULL, dx = d/dx from dy. Q
 * weights per filter, P output pixels per sample, F filters; scratch holds
 * conv_host_scratch(g, F, threads) floats for `threads` threads. */
size_t conv_host_scratch(const layers_geom *g, size_t F, int threads);
bsc_status conv_host_forward(bsc_context *ctx, const layers_geom *g, size_t batch, int F,
                             size_t Q, size_t P, const bsc_tensor *x, const bsc_tensor *w,
                             const bsc_tensor *bias, const bsc_tensor *y,
                             const bsc_tensor *scratch);
bsc_status conv_host_backward(bsc_context *ctx, const layers_geom *g, size_t batch, int F,
                              size_t Q, size_t P, const bsc_tensor *x, const bsc_tensor *w,
                              const bsc_tensor *dy, const bsc_tensor *dw,
                              const bsc_tensor *db, const bsc_tensor *dx,
                              const bsc_tensor *scratch);

/* conv2d by Winograd's F(mh x mw, KH x KW) on 6 x 6 tiles on the host
 * threads (conv_wino.c), for contexts whose GEMMs run on the host BLAS:
 * the same results as conv_host_* up to rounding. Fits stride 1 with 2 to 5
 * taps per side (conv_wino_fits); scratch holds conv_wino_scratch(g, F,
 * threads) floats. The backward pass gives dw, db (when not NULL) and dx
 * (when not NULL) in one task. */
int conv_wino_fits(const layers_geom *g);
size_t conv_wino_scratch(const layers_geom *g, size_t F, int threads);
bsc_status conv_wino_forward(bsc_context *ctx, const layers_geom *g, size_t batch, int F,
                             const bsc_tensor *x, const bsc_tensor *w, const bsc_tensor *bias,
                             const bsc_tensor *y, const bsc_tensor *scratch);
bsc_status conv_wino_backward(bsc_context *ctx, const layers_geom *g, size_t batch, int F,
                              const bsc_tensor *x, const bsc_tensor *w, const bsc_tensor *dy,
                              const bsc_tensor *dw, const bsc_tensor *db, const bsc_tensor *dx,
                              const bsc_tensor *scratch);

/* maxpool2d on the host threads (pool_host.c), for contexts whose GEMMs run
 * on the host BLAS: y and the winners (int32 indices into each H*W plane,
 * -1 for a window wholly in the padding) of the batch's planes, exactly as
 * cl/layers/conv.cl's maxpool_forward writes them; dx = dy routed to the
 * winners, as maxpool_backward. */
bsc_status pool_host_forward(bsc_context *ctx, const layers_geom *g, size_t batch,
                             const bsc_tensor *x, const bsc_tensor *y,
                             const bsc_tensor *winners);
bsc_status pool_host_backward(bsc_context *ctx, const layers_geom *g, size_t batch,
                              const bsc_tensor *dy, const bsc_tensor *winners,
                              const bsc_tensor *dx);

/* Work-group size of batchnorm's per-channel tree sums (a power of two),
 * where the device allows it for those kernels; batchnorm halves it until
 * it does. The kernels see it as LOCAL_N, a build option (layers_kernel_n),
 * so launch and kernel cannot disagree. */
/* Activation modes: activation.c picks one, cl/layers/layers.cl switches on
 * it; the kernels get the values as -D options (layers_kernel), so the two
 * cannot disagree. */
enum { ACT_RELU = 0, ACT_LEAKY = 1, ACT_TANH = 2, ACT_SIGMOID = 3, ACT_FLATTEN = 4 };

#define LAYERS_REDUCE_LOCAL 64

/* The kernel `kernel` of `file`, one of the plugin's own OpenCL sources
 * (cl/layers, embedded into the module), built through the runtime's program
 * cache with the plugin's build options. The kernel is owned by the context.
 * A file not embedded is BSC_ERR_NOT_FOUND. */
bsc_status layers_kernel(bsc_context *ctx, const char *file, const char *kernel,
                         cl_kernel *out);
/* The same with LOCAL_N = local_n instead of LAYERS_REDUCE_LOCAL. */
bsc_status layers_kernel_n(bsc_context *ctx, const char *file, const char *kernel, int local_n,
                           cl_kernel *out);

#endif
