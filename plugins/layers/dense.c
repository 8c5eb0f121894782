/* batchscope layers plugin: dense (fully connected), out = in W^T + b.
 *
 * W is [units, in] as in torch.nn.Linear, so forward is one GEMM with W
 * transposed and the gradients are two more: dW = dout^T in, din = dout W.
 * The bias gradient is a column sum of dout in a fixed order. */
#include <stdlib.h>
#include <string.h>
#include "layers.h"

typedef struct dense {
    int64_t nin, nout;
    int bias;
    bsc_context *ctx;
    size_t max_batch;
    bsc_tensor w, b, dw, db;
    cl_kernel k_colsum, k_sqnorm;
} dense;

static bsc_status dense_create(const bsc_layer_config *cfg, void **self)
{
    bsc_status st;
    if (cfg->input.ndim != 1)
        return layers_shape_fail(cfg, "dense", "a 1-D (add a flatten layer before it)");
    long units;
    int bias;
    if ((st = bsc_req_long(cfg->options, "units", 1, INT_MAX, &units)) != BSC_OK ||
        (st = bsc_opt_bool(cfg->options, "bias", 1, &bias)) != BSC_OK)
        return st;
    if ((st = layers_check_count(cfg->options, (size_t)units * (size_t)cfg->input.dim[0],
                                 "dense weight")) != BSC_OK)
        return st;
    dense *d = calloc(1, sizeof *d);
    if (!d)
        return bsc_fail(BSC_ERR_NOMEM, "dense: out of memory");
    d->nin = cfg->input.dim[0];
    d->nout = units;
    d->bias = bias;
    *self = d;
    return BSC_OK;
}

static bsc_status dense_output_shape(void *self, bsc_shape *out)
{
    dense *d = self;
    *out = bsc_shape_make(1, &d->nout);
    return BSC_OK;
}

static int dense_n_params(void *self)
{
    return ((dense *)self)->bias ? 2 : 1;
}

static bsc_status dense_param_spec(void *self, int i, bsc_param_spec *out)
{
    dense *d = self;
    if (i < 0 || i >= dense_n_params(self))
        return bsc_fail(BSC_ERR_INVALID, "dense: no parameter %d", i);
    bsc_param_spec s = {0};
    if (i == 0) {
        int64_t dim[2] = {d->nout, d->nin};
        s.name = "weight";
        s.shape = bsc_shape_make(2, dim);
        s.role = BSC_ROLE_WEIGHT;
        s.filter_axis = 0;
    } else {
        s.name = "bias";
        s.shape = bsc_shape_make(1, &d->nout);
        s.role = BSC_ROLE_BIAS;
        s.filter_axis = -1;
    }
    /* torch draws the bias from the weight's bound too: both use fan_in = in. */
    s.init = BSC_INIT_TORCH;
    s.fan_in = d->nin;
    s.fan_out = d->nout;
    *out = s;
    return BSC_OK;
}

static size_t dense_workspace_size(void *self, size_t max_batch)
{
    (void)self;
    (void)max_batch;
    return 0;
}

static bsc_status dense_bind(void *self, const bsc_layer_binding *b)
{
    dense *d = self;
    bsc_status st;
    size_t rows = b->max_batch * (size_t)(d->nin > d->nout ? d->nin : d->nout);
    if (rows > (size_t)INT_MAX)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "dense: batch %zu x %lld features exceeds the "
                        "2^31 element index limit", b->max_batch,
                        (long long)(d->nin > d->nout ? d->nin : d->nout));
    d->ctx = b->ctx;
    d->max_batch = b->max_batch;
    d->w = *b->params[0];
    d->dw = *b->grads[0];
    if (d->bias) {
        d->b = *b->params[1];
        d->db = *b->grads[1];
    }
    if ((st = layers_kernel(d->ctx, "layers.cl", "channel_sum", &d->k_colsum)) != BSC_OK ||
        (st = layers_kernel(d->ctx, "layers.cl", "dense_sqnorm", &d->k_sqnorm)) != BSC_OK)
        return st;
    return BSC_OK;
}

static bsc_status dense_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                bsc_tensor *out)
{
    dense *d = self;
    size_t m = p->batch, n = (size_t)d->nout, k = (size_t)d->nin;
    if (m == 0)
        return BSC_OK;
    /* The bias rides with the GEMM: on the host BLAS it is written into out
     * and the product added to it (a separate 2-D kernel took 12% of a
     * full-set evaluation on PoCL). */
    return bsc_gemm_bias(d->ctx, 0, 1, m, n, k, 1.0f, in, k, &d->w, k, d->bias ? &d->b : NULL,
                         out, n);
}

static bsc_status dense_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                 const bsc_tensor *out, const bsc_tensor *dout,
                                 bsc_tensor *din)
{
    dense *d = self;
    (void)out;
    size_t m = p->batch, n = (size_t)d->nout, k = (size_t)d->nin;
    bsc_status st;
    if (m == 0) {
        /* An empty batch contributes nothing: the gradients are zero. */
        if ((st = bsc_tensor_fill(d->ctx, &d->dw, 0.0f)) != BSC_OK)
            return st;
        return d->bias ? bsc_tensor_fill(d->ctx, &d->db, 0.0f) : BSC_OK;
    }
    if ((st = bsc_gemm(d->ctx, 1, 0, n, k, m, 1.0f, dout, n, in, k, 0.0f, &d->dw, k)) != BSC_OK)
        return st;
    if (d->bias && (st = layers_channel_sum(d->ctx, d->k_colsum, dout, m, n, 1, &d->db)) !=
                       BSC_OK)
        return st;
    if (din)
        return bsc_gemm(d->ctx, 0, 0, m, k, n, 1.0f, dout, n, &d->w, k, 0.0f, din, k);
    return BSC_OK;
}

/* The per-example norms as a host task (host_task.h: bsc_host_elementwise),
 * dense_sqnorm's formula row by row (cl/layers/layers.cl), rows split over
 * the host threads. */
typedef struct sqnorm_job {
    size_t nin, nout;
    int bias;
    size_t rows_total;
    float *const *data;   /* in, dout, acc */
} sqnorm_job;

static void sqnorm_range(void *p, size_t lo, size_t hi)
{
    const sqnorm_job *j = p;
    for (size_t i = lo; i < hi; i++) {
        const float *x = j->data[0] + i * j->nin, *dy = j->data[1] + i * j->nout;
        float sx = j->bias ? 1.0f : 0.0f, sy = 0.0f;
        for (size_t k = 0; k < j->nin; k++)
            sx += x[k] * x[k];
        for (size_t k = 0; k < j->nout; k++)
            sy += dy[k] * dy[k];
        j->data[2][i] += sx * sy;
    }
}

static void sqnorm_task(void *args, float *const *data)
{
    sqnorm_job *j = args;
    j->data = data;
    bsc_host_for(j->rows_total, 8192 / (j->nin + j->nout) + 1, sqnorm_range, j);
}

static bsc_status dense_sqnorm(void *self, const bsc_pass *p, const bsc_tensor *in,
                               const bsc_tensor *dout, bsc_tensor *acc)
{
    dense *d = self;
    if (p->batch && bsc_host_elementwise(d->ctx)) {
        sqnorm_job j = {(size_t)d->nin, (size_t)d->nout, d->bias, p->batch, NULL};
        bsc_tensor v[3] = {*in, *dout, *acc};
        v[0].numel = p->batch * j.nin;
        v[1].numel = p->batch * j.nout;
        v[2].numel = p->batch;
        const bsc_tensor *t[3] = {&v[0], &v[1], &v[2]};
        return bsc_enqueue_host(d->ctx, sqnorm_task, &j, sizeof j, 3, t);
    }
    cl_int xo, dyo, ao, rows = (cl_int)p->batch, nin = (cl_int)d->nin,
                        nout = (cl_int)d->nout, bias = d->bias;
    bsc_status st;
    if ((st = layers_offset(in, &xo)) != BSC_OK || (st = layers_offset(dout, &dyo)) != BSC_OK ||
        (st = layers_offset(acc, &ao)) != BSC_OK)
        return st;
    bsc_karg a[] = {BSC_ARG(in->mem), BSC_ARG(xo), BSC_ARG(dout->mem), BSC_ARG(dyo),
                    BSC_ARG(rows), BSC_ARG(nin), BSC_ARG(nout), BSC_ARG(bias),
                    BSC_ARG(acc->mem), BSC_ARG(ao)};
    return layers_run(d->ctx, d->k_sqnorm, p->batch, 10, a);
}

/* The R-operator, with V, vb this layer's part of the direction:
 *   R{out} = R{in} W^T + in V^T + vb
 *   R{din} = R{dout} W + dout V,   R{dW} = R{dout}^T in + dout^T R{in},
 *   R{db} = column sums of R{dout}
 * (GEMMs with beta = 1 add the second terms). Without R{in} (the first
 * trained layer) its terms vanish. */
static bsc_status dense_r_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                  const bsc_tensor *rin, const bsc_tensor *const *v,
                                  const bsc_tensor *out, bsc_tensor *rout)
{
    dense *d = self;
    (void)out;
    size_t m = p->batch, n = (size_t)d->nout, k = (size_t)d->nin;
    if (m == 0)
        return BSC_OK;
    bsc_status st = bsc_gemm_bias(d->ctx, 0, 1, m, n, k, 1.0f, in, k, v[0], k,
                                  d->bias ? v[1] : NULL, rout, n);
    if (st == BSC_OK && rin)
        st = bsc_gemm(d->ctx, 0, 1, m, n, k, 1.0f, rin, k, &d->w, k, 1.0f, rout, n);
    return st;
}

static bsc_status dense_r_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                                   const bsc_tensor *rin, const bsc_tensor *const *v,
                                   const bsc_tensor *out, const bsc_tensor *rout,
                                   const bsc_tensor *dout, const bsc_tensor *rdout,
                                   const bsc_tensor *const *hv, bsc_tensor *din,
                                   bsc_tensor *rdin)
{
    dense *d = self;
    (void)out;
    (void)rout;
    size_t m = p->batch, n = (size_t)d->nout, k = (size_t)d->nin;
    bsc_tensor hw = *hv[0];
    bsc_status st;
    if (m == 0) {
        if ((st = bsc_tensor_fill(d->ctx, &hw, 0.0f)) != BSC_OK)
            return st;
        if (d->bias) {
            bsc_tensor hb = *hv[1];
            return bsc_tensor_fill(d->ctx, &hb, 0.0f);
        }
        return BSC_OK;
    }
    if ((st = bsc_gemm(d->ctx, 1, 0, n, k, m, 1.0f, rdout, n, in, k, 0.0f, &hw, k)) != BSC_OK ||
        (rin && (st = bsc_gemm(d->ctx, 1, 0, n, k, m, 1.0f, dout, n, rin, k, 1.0f, &hw, k)) !=
                    BSC_OK))
        return st;
    if (d->bias && (st = layers_channel_sum(d->ctx, d->k_colsum, rdout, m, n, 1, hv[1])) !=
                       BSC_OK)
        return st;
    if (din && (st = bsc_gemm(d->ctx, 0, 0, m, k, n, 1.0f, dout, n, &d->w, k, 0.0f, din, k)) !=
                   BSC_OK)
        return st;
    if (rdin && ((st = bsc_gemm(d->ctx, 0, 0, m, k, n, 1.0f, rdout, n, &d->w, k, 0.0f, rdin,
                                k)) != BSC_OK ||
                 (st = bsc_gemm(d->ctx, 0, 0, m, k, n, 1.0f, dout, n, v[0], k, 1.0f, rdin,
                                k)) != BSC_OK))
        return st;
    return BSC_OK;
}

/* An evaluation forward on host rows (plugin.h): the bias in every row,
 * then the product added to it, as bsc_gemm_bias does on the host BLAS. */
static void dense_host_forward(void *self, size_t rows, const float *in,
                               const float *const *param, float *out)
{
    const dense *d = self;
    size_t n = (size_t)d->nout, k = (size_t)d->nin;
    for (size_t r = 0; r < rows; r++) {
        float *o = out + r * n;
        if (d->bias)
            memcpy(o, param[1], n * sizeof *o);
        else
            memset(o, 0, n * sizeof *o);
    }
    bsc_host_sgemm(0, 1, rows, n, k, 1.0f, in, k, param[0], k, 1.0f, out, n);
}

BSC_LAYER_TYPE(layers_dense, "dense",
               "fully connected: out = in W^T + b",
               BSC_OPTIONS(BSC_OPT("units", BSC_OPT_INT, "", "output features (required)"),
                           BSC_OPT("bias", BSC_OPT_BOOL, "true", "add a learned bias")),
               .create = dense_create,
               .output_shape = dense_output_shape,
               .n_params = dense_n_params,
               .param_spec = dense_param_spec,
               .workspace_size = dense_workspace_size,
               .bind = dense_bind,
               .forward = dense_forward,
               .backward = dense_backward,
               .per_example_sqnorm = dense_sqnorm,
               .linear_in_params = layers_linear_in_params,
               .r_forward = dense_r_forward,
               .r_backward = dense_r_backward,
               .host_forward = dense_host_forward,
               .r_hints = BSC_R_DOUT_ONLY_FOR_DIN_AT_FIRST);
