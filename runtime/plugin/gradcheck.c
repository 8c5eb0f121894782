/* Gradient checks for layer plugins (see gradcheck.h): one layer, bound
 * the way model.c binds it, against central finite differences of
 * L = sum(out * R) formed in double on the host. */
#include "batchscope/gradcheck.h"
#include "batchscope/blas.h"
#include "batchscope/node.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Floats before and after the parameter, gradient and state regions. The
 * model places a layer's tensors at arbitrary offsets of its flat buffers,
 * so a layer that ignores a view's offset works as the first layer and
 * breaks deeper in a model; an odd offset also catches kernels that assume
 * aligned vector loads. The padding of the gradient buffer must come back
 * untouched from backward. */
#define PAD 3
/* What the gradient buffer and din hold before backward: a layer that adds
 * to them instead of overwriting them, or leaves an element unwritten, is
 * then off by this much. */
#define SENTINEL 1234.5f
/* Relative errors are |fd - an| / max(|fd|, |an|, REL_FLOOR): gradients
 * near zero are compared absolutely. */
#define REL_FLOOR 1e-3
/* Inputs and parameters keep at least this distance from 0 (and at least
 * two steps), so no step crosses a kink at 0 (relu, leaky_relu, abs). */
#define GAP 0.05
#define MAX_LAYER_PARAMS 64   /* as many as model.c accepts */

typedef struct gc {
    bsc_context *ctx;
    const char *name;
    bsc_layer_ops ops;          /* full-size copy with the defaults applied */
    void *self;
    bsc_node *node;
    bsc_pass pass;
    size_t batch, in_n, out_n;
    bsc_shape out_shape;
    int np;
    bsc_param_spec spec[MAX_LAYER_PARAMS];
    size_t off[MAX_LAYER_PARAMS];  /* in the trainable or the state region */
    size_t n_train, n_state;
    bsc_tensor P, G, S, W, in, out, dout, din;
    bsc_tensor params[MAX_LAYER_PARAMS], grads[MAX_LAYER_PARAMS];
    const bsc_tensor *pp[MAX_LAYER_PARAMS], *gp[MAX_LAYER_PARAMS];
    float *hp, *hg, *hs;        /* PAD + n + PAD host copies of P, G and S */
    float *hin, *hout, *hdin, *R;
    double step, tol;
    size_t max_coords;
    uint64_t rng;
    bsc_gradcheck_result res;
} gc;

/* ------------------------------------------------------------ numbers */

/* splitmix64: the check's own data, independent of the library's Philox
 * streams (whose purposes are part of the study's reproducibility). */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double next_unit(uint64_t *state)
{
    return (double)(next_u64(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* n values in (-1, -gap] U [gap, 1). */
static void fill_away(uint64_t *state, float *x, size_t n, double gap)
{
    for (size_t i = 0; i < n; i++) {
        double m = gap + (1.0 - gap) * next_unit(state);
        x[i] = (float)(next_u64(state) & 1 ? m : -m);
    }
}

static double rel_err(double a, double b)
{
    double m = fmax(fmax(fabs(a), fabs(b)), REL_FLOOR);
    return fabs(a - b) / m;
}

/* Records one comparison in the result: `expected` is the reference (the
 * finite difference, or backward by other means), `got` what is checked. */
static void record(gc *g, const char *where, size_t index, double expected, double got)
{
    double e = rel_err(expected, got);
    if (!(e <= g->tol))   /* NaN fails too */
        g->res.failed++;
    if (g->res.checked++ == 0 || !(e <= g->res.worst)) {
        g->res.worst = isnan(e) ? INFINITY : e;
        snprintf(g->res.where, sizeof g->res.where, "%s", where);
        g->res.index = index;
        g->res.expected = expected;
        g->res.got = got;
    }
}

/* ------------------------------------------------------------ set-up */

static bsc_status alloc_floats(bsc_context *ctx, size_t n, bsc_tensor *t)
{
    int64_t d = (int64_t)(n ? n : 1);
    bsc_shape s = bsc_shape_make(1, &d);
    return bsc_tensor_alloc(ctx, BSC_F32, &s, t);
}

static bsc_status alloc_batched(bsc_context *ctx, size_t batch, const bsc_shape *per,
                                bsc_tensor *t)
{
    bsc_shape s;
    s.ndim = per->ndim + 1;
    s.dim[0] = (int64_t)batch;
    for (int i = 0; i < per->ndim; i++)
        s.dim[i + 1] = per->dim[i];
    return bsc_tensor_alloc(ctx, BSC_F32, &s, t);
}

/* The host's view of the type's ops: a full-size table whatever size the
 * plugin was built with, destroy defaulting to free() (plugin.h). A type
 * from the registry is already one; a plugin's own record linked into a
 * test may not be. */
static bsc_status copy_ops(const bsc_type *t, bsc_layer_ops *ops)
{
    memset(ops, 0, sizeof *ops);
    if (!t->ops)
        return bsc_fail(BSC_ERR_PLUGIN, "gradcheck %s: the type has no ops table", t->name);
    size_t have = *(const size_t *)t->ops;
    memcpy(ops, t->ops, have < sizeof *ops ? have : sizeof *ops);
    ops->struct_size = sizeof *ops;
    if (!ops->create || !ops->forward || !ops->backward)
        return bsc_fail(BSC_ERR_PLUGIN, "gradcheck %s: create, forward and backward are "
                        "required", t->name);
    if (!ops->destroy)
        ops->destroy = free;
    return BSC_OK;
}

/* Parses the options, creates the layer and reads its shapes and
 * parameter specs, as bsc_model_create() does. */
static bsc_status create_layer(gc *g, const bsc_type *t, const bsc_gradcheck_options *o)
{
    char fallback[160];
    const char *yaml = o->options;
    bsc_status st;

    if (!yaml || !yaml[0]) {
        snprintf(fallback, sizeof fallback, "{type: %s}", t->name);
        yaml = fallback;
    }
    if ((st = bsc_node_parse_string("gradcheck options", yaml, &g->node)) != BSC_OK ||
        (st = bsc_type_check_options(t, g->node)) != BSC_OK)
        return st;
    bsc_layer_config cfg = {g->node, o->input, 0};
    if ((st = g->ops.create(&cfg, &g->self)) != BSC_OK)
        return bsc_fail_context(st, "create");
    g->out_shape = o->input;
    if (g->ops.output_shape && (st = g->ops.output_shape(g->self, &g->out_shape)) != BSC_OK)
        return bsc_fail_context(st, "output_shape");
    g->in_n = bsc_shape_numel(&o->input);
    g->out_n = bsc_shape_numel(&g->out_shape);
    g->np = g->ops.n_params ? g->ops.n_params(g->self) : 0;
    if (g->np < 0 || g->np > MAX_LAYER_PARAMS)
        return bsc_fail(BSC_ERR_PLUGIN, "n_params returned %d (0 ... %d)", g->np,
                        MAX_LAYER_PARAMS);
    for (int i = 0; i < g->np; i++) {
        if (!g->ops.param_spec)
            return bsc_fail(BSC_ERR_PLUGIN, "n_params is %d but param_spec is NULL", g->np);
        if ((st = g->ops.param_spec(g->self, i, &g->spec[i])) != BSC_OK)
            return bsc_fail_context(st, "param_spec(%d)", i);
        if (!g->spec[i].name)
            return bsc_fail(BSC_ERR_PLUGIN, "parameter %d has no name", i);
        size_t n = bsc_shape_numel(&g->spec[i].shape);
        size_t *region = g->spec[i].role == BSC_ROLE_STATE ? &g->n_state : &g->n_train;
        g->off[i] = *region;
        *region += n;
    }
    return BSC_OK;
}

/* Allocates the buffers, binds the layer and fills the host data. */
static bsc_status bind_layer(gc *g, const bsc_gradcheck_options *o)
{
    bsc_context *ctx = g->ctx;
    bsc_status st;
    size_t ws = g->ops.workspace_size ? g->ops.workspace_size(g->self, g->batch) : 0;

    if ((st = alloc_floats(ctx, PAD + g->n_train + PAD, &g->P)) != BSC_OK ||
        (st = alloc_floats(ctx, PAD + g->n_train + PAD, &g->G)) != BSC_OK ||
        (st = alloc_floats(ctx, PAD + g->n_state + PAD, &g->S)) != BSC_OK ||
        (st = alloc_floats(ctx, ws, &g->W)) != BSC_OK ||
        (st = alloc_batched(ctx, g->batch, &o->input, &g->in)) != BSC_OK ||
        (st = alloc_batched(ctx, g->batch, &o->input, &g->din)) != BSC_OK ||
        (st = alloc_batched(ctx, g->batch, &g->out_shape, &g->out)) != BSC_OK ||
        (st = alloc_batched(ctx, g->batch, &g->out_shape, &g->dout)) != BSC_OK)
        return st;
    for (int i = 0; i < g->np; i++) {
        if (g->spec[i].role == BSC_ROLE_STATE) {
            g->params[i] = bsc_tensor_view(&g->S, PAD + g->off[i], &g->spec[i].shape);
        } else {
            g->params[i] = bsc_tensor_view(&g->P, PAD + g->off[i], &g->spec[i].shape);
            g->grads[i] = bsc_tensor_view(&g->G, PAD + g->off[i], &g->spec[i].shape);
        }
        g->pp[i] = &g->params[i];
        g->gp[i] = &g->grads[i];
    }

    size_t nin = g->batch * g->in_n, nout = g->batch * g->out_n;
    g->hp = calloc(PAD + g->n_train + PAD, sizeof *g->hp);
    g->hg = calloc(PAD + g->n_train + PAD, sizeof *g->hg);
    g->hs = calloc(PAD + g->n_state + PAD, sizeof *g->hs);
    g->hin = calloc(nin ? nin : 1, sizeof *g->hin);
    g->hdin = calloc(nin ? nin : 1, sizeof *g->hdin);
    g->hout = calloc(nout ? nout : 1, sizeof *g->hout);
    g->R = calloc(nout ? nout : 1, sizeof *g->R);
    if (!g->hp || !g->hg || !g->hs || !g->hin || !g->hdin || !g->hout || !g->R)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");

    double gap = fmin(fmax(GAP, 2.0 * g->step), 0.5);
    fill_away(&g->rng, g->hp + PAD, g->n_train, gap);
    for (int i = 0; i < g->np; i++)
        if (g->spec[i].role == BSC_ROLE_STATE)
            for (size_t k = 0; k < bsc_shape_numel(&g->spec[i].shape); k++)
                g->hs[PAD + g->off[i] + k] = g->spec[i].init == BSC_INIT_ONES ? 1.0f : 0.0f;
    fill_away(&g->rng, g->hin, nin, gap);
    fill_away(&g->rng, g->R, nout, 0.0);
    if ((st = bsc_tensor_write(ctx, &g->S, g->hs)) != BSC_OK)
        return st;

    bsc_layer_binding b = {ctx, g->batch, g->pp, g->gp, &g->W};
    if (g->ops.bind && (st = g->ops.bind(g->self, &b)) != BSC_OK)
        return bsc_fail_context(st, "bind");
    g->pass = (bsc_pass){.batch = g->batch, .training = !o->eval_mode, .seed = o->seed,
                         .step = 1, .ctx = ctx};
    return BSC_OK;
}

static void close_layer(gc *g)
{
    if (g->self)
        g->ops.destroy(g->self);
    bsc_node_free(g->node);
    bsc_tensor *ts[] = {&g->P, &g->G, &g->S, &g->W, &g->in, &g->out, &g->dout, &g->din};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        bsc_tensor_free(ts[i]);
    free(g->hp);
    free(g->hg);
    free(g->hs);
    free(g->hin);
    free(g->hdin);
    free(g->hout);
    free(g->R);
}

/* ------------------------------------------------------------ passes */

/* L = sum(out * R) in double, for the host's current input and parameters. */
static bsc_status objective(gc *g, double *value)
{
    bsc_status st;
    if ((st = bsc_tensor_write(g->ctx, &g->in, g->hin)) != BSC_OK ||
        (st = bsc_tensor_write(g->ctx, &g->P, g->hp)) != BSC_OK)
        return st;
    if ((st = g->ops.forward(g->self, &g->pass, &g->in, &g->out)) != BSC_OK)
        return bsc_fail_context(st, "forward");
    if ((st = bsc_tensor_read(g->ctx, &g->out, g->hout)) != BSC_OK)
        return st;
    double s = 0.0;
    for (size_t i = 0; i < g->batch * g->out_n; i++)
        s += (double)g->hout[i] * g->R[i];
    *value = s;
    return BSC_OK;
}

/* Forward at the host's point, then backward of dout (din when want_din)
 * into gradient buffers that start out as SENTINEL; reads G (and din). */
static bsc_status forward_backward(gc *g, const float *dout, int want_din)
{
    double unused;
    bsc_status st;
    if ((st = objective(g, &unused)) != BSC_OK ||
        (st = bsc_tensor_fill(g->ctx, &g->G, SENTINEL)) != BSC_OK ||
        (st = bsc_tensor_fill(g->ctx, &g->din, SENTINEL)) != BSC_OK ||
        (st = bsc_tensor_write(g->ctx, &g->dout, dout)) != BSC_OK)
        return st;
    if ((st = g->ops.backward(g->self, &g->pass, &g->in, &g->out, &g->dout,
                              want_din ? &g->din : NULL)) != BSC_OK)
        return bsc_fail_context(st, "backward");
    if ((st = bsc_tensor_read(g->ctx, &g->G, g->hg)) != BSC_OK)
        return st;
    if (want_din && (st = bsc_tensor_read(g->ctx, &g->din, g->hdin)) != BSC_OK)
        return st;
    for (size_t k = 0; k < PAD; k++)
        if (g->hg[k] != SENTINEL || g->hg[PAD + g->n_train + k] != SENTINEL)
            return bsc_fail(BSC_ERR_INVALID, "backward wrote outside its parameter gradients "
                            "(%s the views)", g->hg[k] != SENTINEL ? "before" : "after");
    return BSC_OK;
}

/* Central differences of L over x[0..n) (x is part of the host state that
 * objective() uploads) against an[0..n): every coordinate, or max_coords of
 * them drawn at random. */
static bsc_status compare(gc *g, float *x, size_t n, const float *an, const char *where)
{
    size_t count = n <= g->max_coords ? n : g->max_coords;
    bsc_status st = BSC_OK;
    for (size_t c = 0; c < count; c++) {
        size_t j = n <= g->max_coords ? c : (size_t)(next_u64(&g->rng) % n);
        float save = x[j];
        double plus, minus;
        x[j] = (float)(save + g->step);
        double hp = (double)x[j] - save;   /* the step taken, after rounding */
        st = objective(g, &plus);
        x[j] = (float)(save - g->step);
        double hm = save - (double)x[j];
        if (st == BSC_OK)
            st = objective(g, &minus);
        x[j] = save;
        if (st != BSC_OK)
            break;
        record(g, where, j, (plus - minus) / (hp + hm), an[j]);
    }
    return st;
}

/* backward with din = NULL (what the first layer of a model gets) must
 * give the same parameter gradients as with din. */
static bsc_status check_without_din(gc *g, const float *with)
{
    bsc_status st = forward_backward(g, g->R, 0);
    if (st != BSC_OK)
        return bsc_fail_context(st, "without din");
    for (int i = 0; i < g->np; i++) {
        if (g->spec[i].role == BSC_ROLE_STATE)
            continue;
        char where[64];
        snprintf(where, sizeof where, "%s (backward without din)", g->spec[i].name);
        for (size_t k = 0; k < bsc_shape_numel(&g->spec[i].shape); k++) {
            size_t at = PAD + g->off[i] + k;
            record(g, where, k, with[at], g->hg[at]);
        }
    }
    return BSC_OK;
}

/* per_example_sqnorm adds, for each row, the squared norm of the
 * parameter gradient of that row's loss alone: backward with dout = R on
 * that row and 0 elsewhere gives it directly. */
static bsc_status check_per_example(gc *g)
{
    size_t nout = g->batch * g->out_n;
    float *mask = calloc(nout ? nout : 1, sizeof *mask);
    float *acc = calloc(g->batch, sizeof *acc);
    double *want = calloc(g->batch, sizeof *want);
    bsc_tensor dev = {0};
    bsc_status st = BSC_OK;
    const float base = 0.5f;   /* per_example_sqnorm adds to what is there */

    if (!mask || !acc || !want) {
        st = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t r = 0; r < g->batch; r++) {
        memset(mask, 0, nout * sizeof *mask);
        memcpy(mask + r * g->out_n, g->R + r * g->out_n, g->out_n * sizeof *mask);
        if ((st = forward_backward(g, mask, 0)) != BSC_OK)
            goto cleanup;
        double s = base;
        for (size_t k = 0; k < g->n_train; k++)
            s += (double)g->hg[PAD + k] * g->hg[PAD + k];
        want[r] = s;
    }
    for (size_t r = 0; r < g->batch; r++)
        acc[r] = base;
    double unused;
    if ((st = alloc_floats(g->ctx, g->batch, &dev)) != BSC_OK ||
        (st = bsc_tensor_write(g->ctx, &dev, acc)) != BSC_OK ||
        (st = objective(g, &unused)) != BSC_OK ||
        (st = bsc_tensor_write(g->ctx, &g->dout, g->R)) != BSC_OK)
        goto cleanup;
    if ((st = g->ops.per_example_sqnorm(g->self, &g->pass, &g->in, &g->dout, &dev)) != BSC_OK) {
        st = bsc_fail_context(st, "per_example_sqnorm");
        goto cleanup;
    }
    if ((st = bsc_tensor_read(g->ctx, &dev, acc)) != BSC_OK)
        goto cleanup;
    for (size_t r = 0; r < g->batch; r++)
        record(g, "per_example_sqnorm", r, want[r], acc[r]);

cleanup:
    bsc_tensor_free(&dev);
    free(mask);
    free(acc);
    free(want);
    return st;
}

/* host_forward (plugin.h), where the layer has one and the context's GEMMs
 * run on the host BLAS (elsewhere the host never calls it): on the host
 * copies of the input and parameters it must give what forward gives in an
 * evaluation pass, to HOST_FORWARD_TOL of the largest output (the same
 * arithmetic, in another order where BLAS blocks a product differently). */
#define HOST_FORWARD_TOL 1e-5
static bsc_status check_host_forward(gc *g)
{
    if (!g->ops.host_forward || bsc_gemm_active(g->ctx) != BSC_GEMM_HOST)
        return BSC_OK;
    size_t nout = g->batch * g->out_n;
    float *got = malloc((nout ? nout : 1) * sizeof *got);
    const float *ptr[MAX_LAYER_PARAMS];
    bsc_pass eval = g->pass;
    eval.training = 0;
    bsc_status st = BSC_OK;
    if (!got)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    /* The training checks may have moved the state (running statistics):
     * both forwards see the host's copy. */
    if ((st = bsc_tensor_write(g->ctx, &g->in, g->hin)) != BSC_OK ||
        (st = bsc_tensor_write(g->ctx, &g->P, g->hp)) != BSC_OK ||
        (st = bsc_tensor_write(g->ctx, &g->S, g->hs)) != BSC_OK)
        goto cleanup;
    if ((st = g->ops.forward(g->self, &eval, &g->in, &g->out)) != BSC_OK) {
        st = bsc_fail_context(st, "forward (evaluation)");
        goto cleanup;
    }
    if ((st = bsc_tensor_read(g->ctx, &g->out, g->hout)) != BSC_OK)
        goto cleanup;
    for (int i = 0; i < g->np; i++)
        ptr[i] = (g->spec[i].role == BSC_ROLE_STATE ? g->hs : g->hp) + PAD + g->off[i];
    for (size_t k = 0; k < nout; k++)
        got[k] = NAN;
    g->ops.host_forward(g->self, g->batch, g->hin, ptr, got);
    double top = 0.0;
    for (size_t k = 0; k < nout; k++)
        top = fmax(top, fabs(g->hout[k]));
    for (size_t k = 0; k < nout; k++)
        if (!(fabs((double)got[k] - g->hout[k]) <= HOST_FORWARD_TOL * fmax(top, 1e-30))) {
            st = bsc_fail(BSC_ERR_INVALID, "host_forward gives %.9g at output element %zu "
                          "where forward gives %.9g (tolerance %g of the largest output, "
                          "%.6g)", got[k], k, g->hout[k], HOST_FORWARD_TOL, top);
            break;
        }

cleanup:
    free(got);
    return st;
}

static bsc_status run_checks(gc *g)
{
    bsc_status st;
    size_t nin = g->batch * g->in_n;
    float *din = malloc((nin ? nin : 1) * sizeof *din);
    float *grad = malloc((PAD + g->n_train + PAD) * sizeof *grad);

    if (!din || !grad) {
        st = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((st = forward_backward(g, g->R, 1)) != BSC_OK)
        goto cleanup;
    memcpy(din, g->hdin, nin * sizeof *din);
    memcpy(grad, g->hg, (PAD + g->n_train + PAD) * sizeof *grad);
    if ((st = compare(g, g->hin, nin, din, "input")) != BSC_OK)
        goto cleanup;
    for (int i = 0; i < g->np; i++) {
        if (g->spec[i].role == BSC_ROLE_STATE)
            continue;
        size_t at = PAD + g->off[i];
        if ((st = compare(g, g->hp + at, bsc_shape_numel(&g->spec[i].shape), grad + at,
                          g->spec[i].name)) != BSC_OK)
            goto cleanup;
    }
    if (g->n_train && (st = check_without_din(g, grad)) != BSC_OK)
        goto cleanup;
    if (g->n_train && g->ops.per_example_sqnorm && (st = check_per_example(g)) != BSC_OK)
        goto cleanup;
    if ((st = check_host_forward(g)) != BSC_OK)
        goto cleanup;

cleanup:
    free(din);
    free(grad);
    return st;
}

/* ------------------------------------------------------------ entry points */

bsc_status bsc_gradcheck_layer(bsc_context *ctx, const bsc_type *type,
                               const bsc_gradcheck_options *opt, bsc_gradcheck_result *out)
{
    gc *g = NULL;
    bsc_status st = BSC_OK;

    if (out)
        memset(out, 0, sizeof *out);
    if (!ctx || !type || !opt)
        return bsc_fail(BSC_ERR_USAGE, "bsc_gradcheck_layer needs a context, a type and "
                                       "options");
    if (type->kind != BSC_KIND_LAYER)
        return bsc_fail(BSC_ERR_USAGE, "gradcheck: '%s' is a %s type, not a layer",
                        type->name ? type->name : "?", bsc_kind_name(type->kind));
    if (opt->batch == 0)
        return bsc_fail(BSC_ERR_USAGE, "gradcheck %s: batch must be at least 1", type->name);
    if (!(g = calloc(1, sizeof *g)))
        return bsc_fail(BSC_ERR_NOMEM, "gradcheck: out of memory");
    g->ctx = ctx;
    g->name = type->name;
    g->batch = opt->batch;
    g->rng = opt->seed;
    g->step = opt->step > 0 ? opt->step : BSC_GRADCHECK_STEP;
    g->tol = opt->tolerance > 0 ? opt->tolerance : BSC_GRADCHECK_TOLERANCE;
    g->max_coords = opt->max_coords ? opt->max_coords : BSC_GRADCHECK_MAX_COORDS;

    if ((st = copy_ops(type, &g->ops)) != BSC_OK || (st = create_layer(g, type, opt)) != BSC_OK ||
        (st = bind_layer(g, opt)) != BSC_OK || (st = run_checks(g)) != BSC_OK) {
        st = bsc_fail_context(st, "gradcheck %s", type->name);
        goto cleanup;
    }
    if (out)
        *out = g->res;
    if (g->res.failed)
        st = bsc_fail(BSC_ERR_INVALID,
                      "gradcheck %s: %zu of %zu coordinates over the tolerance %g; worst at "
                      "%s[%zu]: expected %.6g, got %.6g (relative error %.3g)",
                      type->name, g->res.failed, g->res.checked, g->tol, g->res.where,
                      g->res.index, g->res.expected, g->res.got, g->res.worst);

cleanup:
    close_layer(g);
    free(g);
    return st;
}

bsc_status bsc_gradcheck_layer_named(bsc_context *ctx, const bsc_registry *r, const char *name,
                                     const bsc_gradcheck_options *opt,
                                     bsc_gradcheck_result *out)
{
    const bsc_type *t = NULL;
    bsc_status st;
    if (out)
        memset(out, 0, sizeof *out);
    if (!r || !name)
        return bsc_fail(BSC_ERR_USAGE, "bsc_gradcheck_layer_named needs a registry and a name");
    if ((st = bsc_registry_resolve(r, BSC_KIND_LAYER, NULL, name, &t)) != BSC_OK)
        return bsc_fail_context(st, "gradcheck");
    return bsc_gradcheck_layer(ctx, t, opt, out);
}
