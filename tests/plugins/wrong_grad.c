/* Test plugin for test_gradcheck: small layers with their own kernels, one
 * right and the others each wrong in one way the gradient check must catch.
 *
 *   tp_square         y = x^2, dx = 2 x dy                 (right)
 *   tp_square_wrong   dx = x dy: the factor 2 is missing
 *   tp_scale          y = w * x (w: one weight per input element), right
 *   tp_scale_accum    adds dw to the gradient buffer instead of
 *                     overwriting it (the model hands backward stale grads)
 *   tp_scale_offset   ignores its weight view's offset (right only as the
 *                     first tensor of the flat buffer)
 *   tp_scale_host     right, but its host_forward uses the first weight for
 *                     every element (tp_scale's host_forward is right)
 */
#include <stdlib.h>
#include "batchscope/batchscope.h"

static const char *const source =
    "__kernel void sq_fwd(__global const float *x, int xo, __global float *y, int yo,\n"
    "                     int n)\n"
    "{\n"
    "    int i = get_global_id(0);\n"
    "    if (i < n) y[yo + i] = x[xo + i] * x[xo + i];\n"
    "}\n"
    "__kernel void sq_bwd(__global const float *x, int xo, __global const float *dy, int dyo,\n"
    "                     __global float *dx, int dxo, int n, float k)\n"
    "{\n"
    "    int i = get_global_id(0);\n"
    "    if (i < n) dx[dxo + i] = k * x[xo + i] * dy[dyo + i];\n"
    "}\n"
    "__kernel void sc_fwd(__global const float *x, int xo, __global const float *w, int wo,\n"
    "                     __global float *y, int yo, int n, int m)\n"
    "{\n"
    "    int i = get_global_id(0);\n"
    "    if (i < n) y[yo + i] = w[wo + i % m] * x[xo + i];\n"
    "}\n"
    "__kernel void sc_bwd_x(__global const float *w, int wo, __global const float *dy, int dyo,\n"
    "                       __global float *dx, int dxo, int n, int m)\n"
    "{\n"
    "    int i = get_global_id(0);\n"
    "    if (i < n) dx[dxo + i] = w[wo + i % m] * dy[dyo + i];\n"
    "}\n"
    "__kernel void sc_bwd_w(__global const float *x, int xo, __global const float *dy, int dyo,\n"
    "                       __global float *dw, int dwo, int rows, int m, int accumulate)\n"
    "{\n"
    "    int j = get_global_id(0);\n"
    "    if (j >= m) return;\n"
    "    float s = 0.0f;\n"
    "    for (int r = 0; r < rows; r++) s += x[xo + r * m + j] * dy[dyo + r * m + j];\n"
    "    dw[dwo + j] = accumulate ? dw[dwo + j] + s : s;\n"
    "}\n";

typedef enum { SQUARE, SQUARE_WRONG, SCALE, SCALE_ACCUM, SCALE_OFFSET, SCALE_HOST } variant;

typedef struct layer {
    variant v;
    int m;                       /* per-sample elements */
    bsc_context *ctx;
    const bsc_tensor *w, *dw;    /* SCALE*: the bound weight and its gradient */
    cl_kernel fwd, bwd_x, bwd_w;
} layer;

static bsc_status make(const bsc_layer_config *cfg, variant v, void **self)
{
    layer *l = calloc(1, sizeof *l);
    if (!l)
        return bsc_fail(BSC_ERR_NOMEM, "wrong_grad: out of memory");
    l->v = v;
    l->m = (int)bsc_shape_numel(&cfg->input);
    *self = l;
    return BSC_OK;
}

static bsc_status square_create(const bsc_layer_config *c, void **s) { return make(c, SQUARE, s); }
static bsc_status square_wrong_create(const bsc_layer_config *c, void **s)
{
    return make(c, SQUARE_WRONG, s);
}
static bsc_status scale_create(const bsc_layer_config *c, void **s) { return make(c, SCALE, s); }
static bsc_status scale_accum_create(const bsc_layer_config *c, void **s)
{
    return make(c, SCALE_ACCUM, s);
}
static bsc_status scale_offset_create(const bsc_layer_config *c, void **s)
{
    return make(c, SCALE_OFFSET, s);
}

static bsc_status scale_host_create(const bsc_layer_config *c, void **s)
{
    return make(c, SCALE_HOST, s);
}

static int is_scale(const layer *l)
{
    return l->v == SCALE || l->v == SCALE_ACCUM || l->v == SCALE_OFFSET || l->v == SCALE_HOST;
}

/* y = w * x on host rows (plugin.h); SCALE_HOST reads w[0] throughout. */
static void scale_host_forward(void *self, size_t rows, const float *in,
                               const float *const *param, float *out)
{
    const layer *l = self;
    for (size_t i = 0; i < rows * (size_t)l->m; i++)
        out[i] = param[0][l->v == SCALE_HOST ? 0 : i % (size_t)l->m] * in[i];
}

static int scale_n_params(void *self)
{
    (void)self;
    return 1;
}

static bsc_status scale_param_spec(void *self, int i, bsc_param_spec *out)
{
    layer *l = self;
    int64_t d = l->m;
    (void)i;
    *out = (bsc_param_spec){"weight", bsc_shape_make(1, &d), BSC_ROLE_WEIGHT, BSC_INIT_ONES, 1,
                            1, -1};
    return BSC_OK;
}

static bsc_status get(layer *l, const char *name, cl_kernel *k)
{
    return bsc_kernel_from_source(l->ctx, "wrong_grad.cl", source, NULL, name, k);
}

static bsc_status bind(void *self, const bsc_layer_binding *b)
{
    layer *l = self;
    bsc_status st;
    l->ctx = b->ctx;
    if (!is_scale(l))
        return (st = get(l, "sq_fwd", &l->fwd)) != BSC_OK ? st : get(l, "sq_bwd", &l->bwd_x);
    l->w = b->params[0];
    l->dw = b->grads[0];
    if ((st = get(l, "sc_fwd", &l->fwd)) != BSC_OK || (st = get(l, "sc_bwd_x", &l->bwd_x)) != BSC_OK)
        return st;
    return get(l, "sc_bwd_w", &l->bwd_w);
}

static bsc_status forward(void *self, const bsc_pass *p, const bsc_tensor *in, bsc_tensor *out)
{
    layer *l = self;
    cl_int n = (cl_int)(p->batch * (size_t)l->m), xo = (cl_int)in->offset,
           yo = (cl_int)out->offset;
    size_t g = (size_t)n;
    if (!is_scale(l)) {
        bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(out->mem), BSC_ARG(yo), BSC_ARG(n)};
        return bsc_launch(l->ctx, l->fwd, 5, a, 1, &g, NULL);
    }
    cl_int wo = l->v == SCALE_OFFSET ? 0 : (cl_int)l->w->offset;
    bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(l->w->mem), BSC_ARG(wo),
                    BSC_ARG(out->mem), BSC_ARG(yo), BSC_ARG(n), BSC_ARG(l->m)};
    return bsc_launch(l->ctx, l->fwd, 8, a, 1, &g, NULL);
}

static bsc_status backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                           const bsc_tensor *out, const bsc_tensor *dout, bsc_tensor *din)
{
    layer *l = self;
    cl_int rows = (cl_int)p->batch, n = rows * l->m, xo = (cl_int)in->offset,
           dyo = (cl_int)dout->offset;
    size_t g = (size_t)n, gm = (size_t)l->m;
    bsc_status st;
    (void)out;
    if (!is_scale(l)) {
        if (!din)
            return BSC_OK;
        cl_int dxo = (cl_int)din->offset;
        float k = l->v == SQUARE ? 2.0f : 1.0f;
        bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(dout->mem), BSC_ARG(dyo),
                        BSC_ARG(din->mem), BSC_ARG(dxo), BSC_ARG(n), BSC_ARG(k)};
        return bsc_launch(l->ctx, l->bwd_x, 8, a, 1, &g, NULL);
    }
    cl_int wo = l->v == SCALE_OFFSET ? 0 : (cl_int)l->w->offset;
    cl_int dwo = l->v == SCALE_OFFSET ? 0 : (cl_int)l->dw->offset;
    cl_int acc = l->v == SCALE_ACCUM;
    bsc_karg aw[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(dout->mem), BSC_ARG(dyo),
                     BSC_ARG(l->dw->mem), BSC_ARG(dwo), BSC_ARG(rows), BSC_ARG(l->m),
                     BSC_ARG(acc)};
    if ((st = bsc_launch(l->ctx, l->bwd_w, 9, aw, 1, &gm, NULL)) != BSC_OK || !din)
        return st;
    cl_int dxo = (cl_int)din->offset;
    bsc_karg ax[] = {BSC_ARG(l->w->mem), BSC_ARG(wo), BSC_ARG(dout->mem), BSC_ARG(dyo),
                     BSC_ARG(din->mem), BSC_ARG(dxo), BSC_ARG(n), BSC_ARG(l->m)};
    return bsc_launch(l->ctx, l->bwd_x, 8, ax, 1, &g, NULL);
}

#define SQUARE_TYPE(id, name, create_fn)                                                 \
    BSC_LAYER_TYPE(id, name, "test layer", BSC_NO_OPTIONS, .create = create_fn,          \
                   .bind = bind, .forward = forward, .backward = backward)
#define SCALE_TYPE(id, name, create_fn)                                                  \
    BSC_LAYER_TYPE(id, name, "test layer", BSC_NO_OPTIONS, .create = create_fn,          \
                   .n_params = scale_n_params, .param_spec = scale_param_spec,           \
                   .bind = bind, .forward = forward, .backward = backward,        \
                   .host_forward = scale_host_forward)

SQUARE_TYPE(tp_square, "tp_square", square_create);
SQUARE_TYPE(tp_square_wrong, "tp_square_wrong", square_wrong_create);
SCALE_TYPE(tp_scale, "tp_scale", scale_create);
SCALE_TYPE(tp_scale_accum, "tp_scale_accum", scale_accum_create);
SCALE_TYPE(tp_scale_offset, "tp_scale_offset", scale_offset_create);
SCALE_TYPE(tp_scale_host, "tp_scale_host", scale_host_create);

#define TYPES(X)                                                                          \
    X(tp_square) X(tp_square_wrong) X(tp_scale) X(tp_scale_accum) X(tp_scale_offset)      \
    X(tp_scale_host)
BSC_PLUGIN("wrong_grad", "0.0.1", TYPES)
