/* batchscope layers plugin: launch helpers and option parsing shared by the
 * layer files. */
#include <stdio.h>
#include <stdlib.h>
#include "layers.h"

/* cl/layers, embedded by batchscope_embed_cl (CMakeLists.txt). */
const char *layers_cl_text(const char *file);

_Static_assert((LAYERS_REDUCE_LOCAL & (LAYERS_REDUCE_LOCAL - 1)) == 0,
               "batchnorm's tree sum halves LOCAL_N down to one item");

bsc_status layers_kernel(bsc_context *ctx, const char *file, const char *kernel,
                         cl_kernel *out)
{
    return layers_kernel_n(ctx, file, kernel, LAYERS_REDUCE_LOCAL, out);
}

bsc_status layers_kernel_n(bsc_context *ctx, const char *file, const char *kernel, int local_n,
                           cl_kernel *out)
{
    /* Every program of the plugin gets the same options: an unused define
     * costs nothing, and one string cannot disagree with itself. */
    char name[128], options[160];
    const char *text = layers_cl_text(file);
    if (!text)
        return bsc_fail(BSC_ERR_NOT_FOUND, "layers plugin: no OpenCL source %s embedded",
                        file);
    snprintf(name, sizeof name, "layers/%s", file);
    snprintf(options, sizeof options,
             "-DLOCAL_N=%d -DACT_RELU=%d -DACT_LEAKY=%d -DACT_TANH=%d -DACT_SIGMOID=%d",
             local_n, ACT_RELU, ACT_LEAKY, ACT_TANH, ACT_SIGMOID);
    return bsc_kernel_from_source(ctx, name, text, options, kernel, out);
}

bsc_status layers_run(bsc_context *ctx, cl_kernel k, size_t n, int nargs,
                      const bsc_karg *args)
{
    if (n == 0)
        return BSC_OK;
    return bsc_launch(ctx, k, nargs, args, 1, &n, NULL);
}

bsc_status layers_run_groups(bsc_context *ctx, cl_kernel k, size_t groups, size_t local,
                             int nargs, const bsc_karg *args)
{
    if (groups == 0)
        return BSC_OK;
    size_t global = groups * local;
    return bsc_launch(ctx, k, nargs, args, 1, &global, &local);
}

bsc_status layers_offset(const bsc_tensor *t, cl_int *off)
{
    if (t->offset > (size_t)INT_MAX || t->numel > (size_t)INT_MAX - t->offset)
        return bsc_fail(BSC_ERR_UNSUPPORTED,
                        "layers: tensor range [%zu, +%zu) exceeds the 2^31 element index "
                        "limit of the layer kernels", t->offset, t->numel);
    *off = (cl_int)t->offset;
    return BSC_OK;
}

bsc_status layers_check_count(const bsc_node *at, size_t n, const char *what)
{
    /* Checked at create(), from the options and shapes alone: a layer too
     * large is the pipeline's error (exit 2), and the batch has no part in
     * it (the weights' size is the layer's). */
    if (n > (size_t)INT_MAX)
        return bsc_node_fail(at, BSC_ERR_INVALID,
                             "%s needs %zu elements, more than the 2^31 the layer kernels "
                             "can index; make the layer smaller", what, n);
    return BSC_OK;
}

bsc_status layers_pair_option(const bsc_node *map, const char *key, int required, long def,
                              long min, long max, long out[2])
{
    const bsc_node *v = bsc_node_get(map, key);
    out[0] = out[1] = def;
    if (!v) {
        if (required)
            return bsc_node_fail(map, BSC_ERR_INVALID, "missing required key '%s'", key);
        return BSC_OK;
    }
    if (v->kind == BSC_NODE_SCALAR) {
        bsc_status st = bsc_node_to_long(v, min, max, &out[0]);
        out[1] = out[0];
        return st;
    }
    if (v->kind != BSC_NODE_SEQ || v->n != 2)
        return bsc_node_fail(v, BSC_ERR_INVALID,
                             "'%s' must be an integer or a pair [height, width]", key);
    for (int i = 0; i < 2; i++) {
        bsc_status st = bsc_node_to_long(v->items[i], min, max, &out[i]);
        if (st != BSC_OK)
            return st;
    }
    return BSC_OK;
}

size_t layers_numel(const bsc_shape *s)
{
    if (s->ndim < 0 || s->ndim > BSC_MAX_DIMS)
        return 0;
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dim[i] <= 0)
            return 0;
        n *= (size_t)s->dim[i];
    }
    return n;
}

bsc_status layers_shape_fail(const bsc_layer_config *cfg, const char *type,
                             const char *expect)
{
    char buf[96];
    bsc_shape_format(&cfg->input, buf, sizeof buf);
    return bsc_node_fail(cfg->options, BSC_ERR_INVALID,
                         "layer %d (%s) expects %s per-sample input, got %s", cfg->index,
                         type, expect, buf);
}

bsc_status layers_geom_parse(const bsc_layer_config *cfg, const char *type, long stride_def,
                             int max_pad_half, layers_geom *g)
{
    const bsc_node *opt = cfg->options;
    long k[2], s[2], pad[2];
    bsc_status st;
    if (cfg->input.ndim != 3 || layers_numel(&cfg->input) == 0 ||
        layers_numel(&cfg->input) > (size_t)INT_MAX)
        return layers_shape_fail(cfg, type, "a 3-D [C, H, W]");
    if ((st = layers_pair_option(opt, "kernel_size", 1, 0, 1, 1 << 16, k)) != BSC_OK)
        return st;
    if (stride_def > 0) {
        if ((st = layers_pair_option(opt, "stride", 0, stride_def, 1, 1 << 16, s)) != BSC_OK)
            return st;
    } else {
        /* Pools default their stride to the window, like torch. */
        if ((st = layers_pair_option(opt, "stride", 0, 1, 1, 1 << 16, s)) != BSC_OK)
            return st;
        if (!bsc_node_get(opt, "stride")) {
            s[0] = k[0];
            s[1] = k[1];
        }
    }
    if ((st = layers_pair_option(opt, "padding", 0, 0, 0, 1 << 16, pad)) != BSC_OK)
        return st;
    if (max_pad_half && (2 * pad[0] > k[0] || 2 * pad[1] > k[1]))
        return bsc_node_fail(bsc_node_get(opt, "padding"), BSC_ERR_INVALID,
                             "%s: padding [%ld, %ld] must be at most half of kernel_size "
                             "[%ld, %ld]", type, pad[0], pad[1], k[0], k[1]);
    g->C = (int)cfg->input.dim[0];
    g->H = (int)cfg->input.dim[1];
    g->W = (int)cfg->input.dim[2];
    g->KH = (int)k[0];
    g->KW = (int)k[1];
    g->SH = (int)s[0];
    g->SW = (int)s[1];
    g->PH = (int)pad[0];
    g->PW = (int)pad[1];
    long oh = ((long)g->H + 2 * pad[0] - k[0]) / s[0] + 1;
    long ow = ((long)g->W + 2 * pad[1] - k[1]) / s[1] + 1;
    if ((long)g->H + 2 * pad[0] < k[0] || (long)g->W + 2 * pad[1] < k[1] || oh < 1 || ow < 1) {
        char buf[96];
        bsc_shape_format(&cfg->input, buf, sizeof buf);
        return bsc_node_fail(opt, BSC_ERR_INVALID,
                             "layer %d (%s): kernel_size [%ld, %ld] with padding [%ld, %ld] "
                             "does not fit the input %s",
                             cfg->index, type, k[0], k[1], pad[0], pad[1], buf);
    }
    g->OH = (int)oh;
    g->OW = (int)ow;
    return BSC_OK;
}

void layers_geom_args(const layers_geom *g, bsc_karg *a)
{
    a[0] = BSC_ARG(g->KH);
    a[1] = BSC_ARG(g->KW);
    a[2] = BSC_ARG(g->SH);
    a[3] = BSC_ARG(g->SW);
    a[4] = BSC_ARG(g->PH);
    a[5] = BSC_ARG(g->PW);
    a[6] = BSC_ARG(g->OH);
    a[7] = BSC_ARG(g->OW);
}

bsc_status layers_copy(bsc_context *ctx, const bsc_tensor *src, bsc_tensor *dst, size_t n)
{
    if (n == 0 || (src->mem == dst->mem && src->offset == dst->offset))
        return BSC_OK;
    bsc_shape s = bsc_shape_make(1, (int64_t[]){(int64_t)n});
    bsc_tensor sv = bsc_tensor_view(src, 0, &s), dv = bsc_tensor_view(dst, 0, &s);
    return bsc_tensor_copy(ctx, &sv, &dv);
}

bsc_status layers_r_backward_fixed(void *self, const bsc_pass *p, layers_apply_fn T,
                                   const bsc_tensor *dout, const bsc_tensor *rdout,
                                   bsc_tensor *din, bsc_tensor *rdin)
{
    bsc_status st;
    if (din && (st = T(self, p, dout, din)) != BSC_OK)
        return st;
    return rdin ? T(self, p, rdout, rdin) : BSC_OK;
}

int layers_linear_in_params(void *self)
{
    (void)self;
    return 1;
}

int layers_parts(int n, int most)
{
    int parts = n < most ? n : most;
    return parts < 1 ? 1 : parts;
}

void layers_part_range(int n, int part, int parts, int *lo, int *hi)
{
    long step = ((long)n + parts - 1) / parts;
    *lo = (int)(step * part < n ? step * part : n);
    *hi = (int)(step * (part + 1) < n ? step * (part + 1) : n);
}

int layers_job_threads(size_t (*need)(const layers_geom *g, size_t F, int threads),
                       const layers_geom *g, size_t F, size_t have)
{
    int threads = bsc_host_threads();
    return need(g, F, threads) > have ? 1 : threads;
}

void layers_run_parts(int threads, int parts, void (*fn)(void *arg, int part, int parts),
                      void *arg)
{
    if (threads > 1) {
        bsc_host_parallel(parts, fn, arg);
        return;
    }
    for (int p = 0; p < parts; p++)
        fn(arg, p, parts);
}

typedef struct chsum_job {
    int B, C, P;
} chsum_job;

/* data: x, s. The kernel's sums, in its order: per channel, over the batch
 * and then the pixels, one add at a time; with one pixel (dense) the
 * channels are side by side and the loop runs across them in vectors, each
 * lane the same sequence of adds as the kernel's work item. */
static void chsum_task(void *args, float *const *data)
{
    const chsum_job *j = args;
    const float *x = data[0];
    float *s = data[1];
    size_t C = (size_t)j->C, P = (size_t)j->P;
    for (size_t c = 0; c < C; c++)
        s[c] = 0.0f;
    for (int b = 0; b < j->B; b++) {
        const float *xb = x + (size_t)b * C * P;
        if (P == 1)
            for (size_t c = 0; c < C; c++)
                s[c] += xb[c];
        else
            for (size_t c = 0; c < C; c++)
                for (size_t p = 0; p < P; p++)
                    s[c] += xb[c * P + p];
    }
}

bsc_status layers_channel_sum(bsc_context *ctx, cl_kernel k, const bsc_tensor *x, size_t B,
                              size_t C, size_t P, const bsc_tensor *s)
{
    bsc_status st;
    if (bsc_gemm_active(ctx) == BSC_GEMM_HOST) {
        chsum_job j = {(int)B, (int)C, (int)P};
        bsc_tensor xv = *x, sv = *s;
        xv.numel = B * C * P;
        sv.numel = C;
        const bsc_tensor *t[2] = {&xv, &sv};
        return bsc_enqueue_host(ctx, chsum_task, &j, sizeof j, 2, t);
    }
    cl_int xo, so, b = (cl_int)B, c = (cl_int)C, p = (cl_int)P;
    if ((st = layers_offset(x, &xo)) != BSC_OK || (st = layers_offset(s, &so)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(x->mem), BSC_ARG(xo), BSC_ARG(b), BSC_ARG(c), BSC_ARG(p),
                    BSC_ARG(s->mem), BSC_ARG(so)};
    return layers_run(ctx, k, C, 7, a);
}
