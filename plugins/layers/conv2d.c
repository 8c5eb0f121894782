/* batchscope layers plugin: conv2d over [C, H, W] images.
 *
 * The whole batch becomes one GEMM (cl/conv.cl explains the layout):
 *   forward   col = im2col(x); t = col W^T; out = NCHW(t) + b
 *   backward  t = pixel-major(dout); dW = t^T col; db = channel sums of dout;
 *             dcol = t W; dx = col2im(dcol)
 * One large GEMM per step suits CLBlast far better than one per sample, and
 * the weight gradient sums over the batch inside the GEMM, in its fixed order.
 * The workspace holds col (which backward reuses from forward, then
 * overwrites with dcol) and t. */
#include <stdlib.h>
#include "layers.h"

typedef struct conv2d {
    layers_geom g;
    int F, bias;
    size_t P, Q;         /* output pixels per sample, weights per filter */
    bsc_context *ctx;
    size_t max_batch;
    bsc_tensor w, b, dw, db, ws;
    cl_kernel k_im2col, k_col2im, k_to_nchw, k_to_pixels, k_chsum;
} conv2d;

static bsc_status conv_create(const bsc_layer_config *cfg, void **self)
{
    static const char *const keys[] = {"type", "filters", "kernel_size", "stride", "padding",
                                       "bias", NULL};
    bsc_status st = bsc_node_check_keys(cfg->options, keys);
    if (st != BSC_OK)
        return st;
    layers_geom g;
    long filters;
    int bias;
    if ((st = layers_geom_parse(cfg, "conv2d", 1, 0, &g)) != BSC_OK ||
        (st = bsc_req_long(cfg->options, "filters", 1, INT_MAX, &filters)) != BSC_OK ||
        (st = bsc_opt_bool(cfg->options, "bias", 1, &bias)) != BSC_OK)
        return st;
    size_t Q = (size_t)g.C * (size_t)g.KH * (size_t)g.KW;
    if ((st = layers_check_count(cfg->options, Q * (size_t)filters, "conv2d weight")) != BSC_OK)
        return st;
    conv2d *c = calloc(1, sizeof *c);
    if (!c)
        return bsc_fail(BSC_ERR_NOMEM, "conv2d: out of memory");
    c->g = g;
    c->F = (int)filters;
    c->bias = bias;
    c->P = (size_t)g.OH * (size_t)g.OW;
    c->Q = Q;
    *self = c;
    return BSC_OK;
}

static bsc_status conv_output_shape(void *self, bsc_shape *out)
{
    conv2d *c = self;
    int64_t dim[3] = {c->F, c->g.OH, c->g.OW};
    *out = bsc_shape_make(3, dim);
    return BSC_OK;
}

static int conv_n_params(void *self)
{
    return ((conv2d *)self)->bias ? 2 : 1;
}

static bsc_status conv_param_spec(void *self, int i, bsc_param_spec *out)
{
    conv2d *c = self;
    if (i < 0 || i >= conv_n_params(self))
        return bsc_fail(BSC_ERR_INVALID, "conv2d: no parameter %d", i);
    bsc_param_spec s = {0};
    int64_t F = c->F;
    if (i == 0) {
        int64_t dim[4] = {F, c->g.C, c->g.KH, c->g.KW};
        s.name = "weight";
        s.shape = bsc_shape_make(4, dim);
        s.role = BSC_ROLE_WEIGHT;
        s.filter_axis = 0;
    } else {
        s.name = "bias";
        s.shape = bsc_shape_make(1, &F);
        s.role = BSC_ROLE_BIAS;
        s.filter_axis = -1;
    }
    s.init = BSC_INIT_TORCH;
    s.fan_in = (int64_t)c->Q;
    s.fan_out = F * c->g.KH * c->g.KW;   /* torch's fan_out for conv weights */
    *out = s;
    return BSC_OK;
}

static size_t conv_workspace_size(void *self, size_t max_batch)
{
    conv2d *c = self;
    return max_batch * c->P * (c->Q + (size_t)c->F);
}

static bsc_status conv_bind(void *self, const bsc_layer_binding *b)
{
    conv2d *c = self;
    bsc_status st;
    size_t in_n = (size_t)c->g.C * c->g.H * c->g.W, out_n = (size_t)c->F * c->P;
    size_t worst = conv_workspace_size(c, b->max_batch);
    if (b->max_batch * in_n > worst)
        worst = b->max_batch * in_n;
    if (b->max_batch * out_n > worst)
        worst = b->max_batch * out_n;
    if (worst > (size_t)INT_MAX || b->workspace.offset > (size_t)INT_MAX - worst)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "conv2d: batch %zu needs %zu workspace floats, "
                        "more than the 2^31 the kernels can index", b->max_batch, worst);
    c->ctx = b->ctx;
    c->max_batch = b->max_batch;
    c->w = b->params[0];
    c->dw = b->grads[0];
    if (c->bias) {
        c->b = b->params[1];
        c->db = b->grads[1];
    }
    c->ws = b->workspace;
    if ((st = bsc_kernel(c->ctx, "conv.cl", "im2col", &c->k_im2col)) != BSC_OK ||
        (st = bsc_kernel(c->ctx, "conv.cl", "col2im", &c->k_col2im)) != BSC_OK ||
        (st = bsc_kernel(c->ctx, "conv.cl", "pixels_to_nchw_bias", &c->k_to_nchw)) != BSC_OK ||
        (st = bsc_kernel(c->ctx, "conv.cl", "nchw_to_pixels", &c->k_to_pixels)) != BSC_OK ||
        (st = bsc_kernel(c->ctx, "layers.cl", "channel_sum", &c->k_chsum)) != BSC_OK)
        return st;
    return BSC_OK;
}

/* Views of the workspace for `batch` rows: col [batch*P, Q] then t [batch*P, F]. */
static void conv_views(conv2d *c, size_t batch, bsc_tensor *col, bsc_tensor *t)
{
    int64_t cd[2] = {(int64_t)(batch * c->P), (int64_t)c->Q};
    int64_t td[2] = {(int64_t)(batch * c->P), c->F};
    bsc_shape cs = bsc_shape_make(2, cd), ts = bsc_shape_make(2, td);
    *col = bsc_tensor_view(&c->ws, 0, &cs);
    *t = bsc_tensor_view(&c->ws, c->max_batch * c->P * c->Q, &ts);
}

/* im2col and col2im share their argument list but for the two tensors. */
static bsc_status conv_col_kernel(conv2d *c, cl_kernel k, size_t batch, const bsc_tensor *a,
                                  const bsc_tensor *z, size_t n)
{
    cl_int ao, zo, B = (cl_int)batch;
    bsc_status st;
    if ((st = layers_offset(a, &ao)) != BSC_OK || (st = layers_offset(z, &zo)) != BSC_OK)
        return st;
    bsc_karg args[18] = {BSC_ARG(a->mem), BSC_ARG(ao), BSC_ARG(B), BSC_ARG(c->g.C),
                         BSC_ARG(c->g.H), BSC_ARG(c->g.W)};
    layers_geom_args(&c->g, args + 6);
    args[14] = BSC_ARG(z->mem);
    args[15] = BSC_ARG(zo);
    return layers_run(c->ctx, k, n, 16, args);
}

static bsc_status conv_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                               bsc_tensor *out)
{
    conv2d *c = self;
    size_t m = p->batch;
    if (m == 0)
        return BSC_OK;
    if (m > c->max_batch)
        return bsc_fail(BSC_ERR_INVALID, "conv2d: batch %zu exceeds the bound %zu", m,
                        c->max_batch);
    bsc_tensor col, t;
    bsc_status st;
    conv_views(c, m, &col, &t);
    if ((st = conv_col_kernel(c, c->k_im2col, m, in, &col, m * c->P * c->Q)) != BSC_OK)
        return st;
    if ((st = bsc_gemm(c->ctx, 0, 1, m * c->P, (size_t)c->F, c->Q, 1.0f, &col, c->Q, &c->w,
                       c->Q, 0.0f, &t, (size_t)c->F)) != BSC_OK)
        return st;
    cl_int to, bo = 0, yo, B = (cl_int)m, F = c->F, P = (cl_int)c->P, hb = c->bias;
    const bsc_tensor *bias = c->bias ? &c->b : &t;   /* any valid buffer when unused */
    if ((st = layers_offset(&t, &to)) != BSC_OK || (st = layers_offset(out, &yo)) != BSC_OK ||
        (c->bias && (st = layers_offset(&c->b, &bo)) != BSC_OK))
        return st;
    bsc_karg a[] = {BSC_ARG(t.mem), BSC_ARG(to), BSC_ARG(B), BSC_ARG(F), BSC_ARG(P),
                    BSC_ARG(bias->mem), BSC_ARG(bo), BSC_ARG(hb), BSC_ARG(out->mem),
                    BSC_ARG(yo)};
    return layers_run(c->ctx, c->k_to_nchw, m * c->P * (size_t)c->F, 10, a);
}

static bsc_status conv_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                const bsc_tensor *out, const bsc_tensor *dout,
                                bsc_tensor *din)
{
    conv2d *c = self;
    size_t m = p->batch;
    bsc_status st;
    (void)in;
    (void)out;
    if (m == 0) {
        if ((st = bsc_tensor_fill(c->ctx, &c->dw, 0.0f)) != BSC_OK)
            return st;
        return c->bias ? bsc_tensor_fill(c->ctx, &c->db, 0.0f) : BSC_OK;
    }
    bsc_tensor col, t;
    conv_views(c, m, &col, &t);
    cl_int yo, to, B = (cl_int)m, F = c->F, P = (cl_int)c->P;
    if ((st = layers_offset(dout, &yo)) != BSC_OK || (st = layers_offset(&t, &to)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(dout->mem), BSC_ARG(yo), BSC_ARG(B), BSC_ARG(F), BSC_ARG(P),
                    BSC_ARG(t.mem), BSC_ARG(to)};
    if ((st = layers_run(c->ctx, c->k_to_pixels, m * c->P * (size_t)c->F, 7, a)) != BSC_OK)
        return st;
    if ((st = bsc_gemm(c->ctx, 1, 0, (size_t)c->F, c->Q, m * c->P, 1.0f, &t, (size_t)c->F,
                       &col, c->Q, 0.0f, &c->dw, c->Q)) != BSC_OK)
        return st;
    if (c->bias) {
        cl_int so;
        if ((st = layers_offset(&c->db, &so)) != BSC_OK)
            return st;
        bsc_karg s[] = {BSC_ARG(dout->mem), BSC_ARG(yo), BSC_ARG(B), BSC_ARG(F), BSC_ARG(P),
                        BSC_ARG(c->db.mem), BSC_ARG(so)};
        if ((st = layers_run(c->ctx, c->k_chsum, (size_t)c->F, 7, s)) != BSC_OK)
            return st;
    }
    if (!din)
        return BSC_OK;
    /* dW above has consumed col, so dcol may overwrite it (in-order queue). */
    if ((st = bsc_gemm(c->ctx, 0, 0, m * c->P, c->Q, (size_t)c->F, 1.0f, &t, (size_t)c->F,
                       &c->w, c->Q, 0.0f, &col, c->Q)) != BSC_OK)
        return st;
    return conv_col_kernel(c, c->k_col2im, m, &col, din,
                           m * (size_t)c->g.C * c->g.H * c->g.W);
}

static void conv_destroy(void *self)
{
    free(self);
}

const bsc_layer_ops layers_conv2d_ops = {
    .struct_size = sizeof(bsc_layer_ops),
    .create = conv_create,
    .output_shape = conv_output_shape,
    .n_params = conv_n_params,
    .param_spec = conv_param_spec,
    .workspace_size = conv_workspace_size,
    .bind = conv_bind,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = conv_destroy,
    .per_example_sqnorm = NULL,
};
