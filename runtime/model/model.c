/* The model: plugin layers over one flat parameter buffer. */
#include "batchscope/model.h"
#include "batchscope/plugin_call.h"
#include "batchscope/rng.h"
#include "model_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bsc_tensor bsc_model_batch_view_(const bsc_tensor *t, size_t batch, const bsc_shape *per)
{
    bsc_shape s;
    s.ndim = per->ndim + 1;
    s.dim[0] = (int64_t)batch;
    for (int d = 0; d < per->ndim; d++)
        s.dim[d + 1] = per->dim[d];
    return bsc_tensor_view(t, 0, &s);
}

static bsc_status add_tensors(bsc_model *m, size_t li, const bsc_component *c)
{
    layer *L = &m->layers[li];
    const bsc_layer_ops *ops = L->ops;
    L->n_params = 0;
    if (ops->n_params)
        BSC_PLUGIN_CALL(L->type, "n_params", L->n_params = ops->n_params(L->self));
    if (L->n_params < 0 || L->n_params > 64)
        return bsc_node_fail(c->node, BSC_ERR_PLUGIN, "layer '%s' declares %d parameters",
                             c->type, L->n_params);
    bsc_model_tensor *t = realloc(m->tensors, (m->n_tensors + (size_t)L->n_params + 1) *
                                                  sizeof *t);
    if (!t)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    m->tensors = t;
    L->first_tensor = m->n_tensors;
    for (int i = 0; i < L->n_params; i++) {
        bsc_model_tensor *mt = &m->tensors[m->n_tensors];
        memset(mt, 0, sizeof *mt);
        bsc_status s;
        BSC_PLUGIN_CALL(L->type, "param_spec", s = ops->param_spec(L->self, i, &mt->spec));
        if (s != BSC_OK)
            return bsc_fail_context(s, "layer %zu (%s)", li, c->type);
        snprintf(mt->name, sizeof mt->name, "%zu.%s", li, mt->spec.name);
        mt->layer = (int)li;
        mt->layer_type = L->type->name;
        mt->numel = bsc_shape_numel(&mt->spec.shape);
        if (mt->spec.role == BSC_ROLE_STATE) {
            mt->offset = m->n_state;
            m->n_state += mt->numel;
        } else {
            mt->offset = m->n_params;
            m->n_params += mt->numel;
        }
        m->n_tensors++;
    }
    return BSC_OK;
}

bsc_status bsc_model_create(const bsc_registry *r, const bsc_component *layers, size_t n_layers,
                            const bsc_component *loss, const bsc_shape *input, int n_classes,
                            bsc_model **out)
{
    *out = NULL;
    bsc_status s = BSC_OK;
    bsc_model *m = calloc(1, sizeof *m);
    if (!m || !(m->layers = calloc(n_layers ? n_layers : 1, sizeof *m->layers))) {
        free(m);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    m->input = *input;
    m->n_classes = n_classes;
    bsc_shape cur = *input;
    for (size_t i = 0; i < n_layers; i++) {
        const bsc_component *c = &layers[i];
        layer *L = &m->layers[i];
        if ((s = bsc_registry_resolve(r, BSC_KIND_LAYER, bsc_node_get(c->node, "type"), c->type,
                                      &L->type)) != BSC_OK ||
            (s = bsc_type_check_options(L->type, c->node)) != BSC_OK)
            goto cleanup;
        L->ops = L->type->ops;
        bsc_layer_config cfg = {c->node, cur, (int)i};
        BSC_PLUGIN_CALL(L->type, "create", s = L->ops->create(&cfg, &L->self));
        if (s != BSC_OK)
            goto cleanup;
        m->n_layers = i + 1;
        /* Default output shape: the input's (an elementwise layer). */
        L->out = cur;
        if (L->ops->output_shape)
            BSC_PLUGIN_CALL(L->type, "output_shape", s = L->ops->output_shape(L->self, &L->out));
        if (s != BSC_OK)
            goto cleanup;
        if ((s = add_tensors(m, i, c)) != BSC_OK)
            goto cleanup;
        cur = L->out;
    }
    const char *loss_name = loss && loss->type ? loss->type : "softmax_cross_entropy";
    const bsc_node *at = loss && loss->node ? loss->node : NULL;
    if (at && at->kind == BSC_NODE_MAP && bsc_node_get(at, "type"))
        at = bsc_node_get(at, "type");
    if (!at && !bsc_registry_find(r, BSC_KIND_LOSS, loss_name, NULL)) {
        s = bsc_fail(BSC_ERR_PLUGIN, "no plugin provides the loss '%s' (is bsc_layers.so "
                     "on the plugin path? see `batchscope plugins`)", loss_name);
        goto cleanup;
    }
    if ((s = bsc_registry_resolve(r, BSC_KIND_LOSS, at, loss_name, &m->loss_type)) != BSC_OK ||
        (s = bsc_type_check_options(m->loss_type, loss ? loss->node : NULL)) != BSC_OK)
        goto cleanup;
    m->loss_ops = m->loss_type->ops;
    bsc_loss_config lc = {loss ? loss->node : NULL, cur, n_classes};
    BSC_PLUGIN_CALL(m->loss_type, "create", s = m->loss_ops->create(&lc, &m->loss_self));
cleanup:
    if (s != BSC_OK) {
        bsc_model_free(m);
        return s;
    }
    *out = m;
    return BSC_OK;
}

void bsc_model_free(bsc_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_layers; i++) {
        layer *L = &m->layers[i];
        if (L->self)
            BSC_PLUGIN_CALL(L->type, "destroy", L->ops->destroy(L->self));
        bsc_tensor_free(&L->workspace);
        bsc_tensor_free(&L->act);
        bsc_tensor_free(&L->dact);
        bsc_tensor_free(&L->ract);
        bsc_tensor_free(&L->rdact);
        free(L->params);
        free(L->grads);
        free(L->param_ptrs);
        free(L->grad_ptrs);
    }
    if (m->loss_self)
        BSC_PLUGIN_CALL(m->loss_type, "destroy", m->loss_ops->destroy(m->loss_self));
    bsc_tensor_free(&m->loss_ws);
    bsc_tensor_free(&m->params);
    bsc_tensor_free(&m->grads);
    bsc_tensor_free(&m->state);
    bsc_tensor_free(&m->row_loss);
    bsc_tensor_free(&m->row_correct);
    free(m->tensors);
    free(m->layers);
    free(m);
}

static bsc_status alloc_floats(bsc_context *ctx, size_t n, bsc_tensor *t)
{
    int64_t d = (int64_t)(n ? n : 1);
    bsc_shape s = bsc_shape_make(1, &d);
    return bsc_tensor_alloc(ctx, BSC_F32, &s, t);
}

bsc_status bsc_model_bind(bsc_model *m, bsc_context *ctx, size_t max_batch)
{
    bsc_status s;
    m->ctx = ctx;
    m->max_batch = max_batch;
    if ((s = alloc_floats(ctx, m->n_params, &m->params)) != BSC_OK ||
        (s = alloc_floats(ctx, m->n_params, &m->grads)) != BSC_OK ||
        (s = alloc_floats(ctx, m->n_state, &m->state)) != BSC_OK ||
        (s = alloc_floats(ctx, max_batch, &m->row_loss)) != BSC_OK ||
        (s = alloc_floats(ctx, max_batch, &m->row_correct)) != BSC_OK)
        return s;
    if ((s = bsc_tensor_fill(ctx, &m->grads, 0.0f)) != BSC_OK)
        return s;
    for (size_t i = 0; i < m->n_layers; i++) {
        layer *L = &m->layers[i];
        const bsc_layer_ops *ops = L->ops;
        size_t per = bsc_shape_numel(&L->out);
        if ((s = alloc_floats(ctx, per * max_batch, &L->act)) != BSC_OK ||
            (s = alloc_floats(ctx, per * max_batch, &L->dact)) != BSC_OK)
            return s;
        size_t ws = 0;
        if (ops->workspace_size)
            BSC_PLUGIN_CALL(L->type, "workspace_size",
                            ws = ops->workspace_size(L->self, max_batch));
        if (ws && (s = alloc_floats(ctx, ws, &L->workspace)) != BSC_OK)
            return s;
        int np = L->n_params;
        L->params = calloc((size_t)np + 1, sizeof *L->params);
        L->grads = calloc((size_t)np + 1, sizeof *L->grads);
        L->param_ptrs = calloc((size_t)np + 1, sizeof *L->param_ptrs);
        L->grad_ptrs = calloc((size_t)np + 1, sizeof *L->grad_ptrs);
        if (!L->params || !L->grads || !L->param_ptrs || !L->grad_ptrs)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        for (int k = 0; k < np; k++) {
            const bsc_model_tensor *mt = &m->tensors[L->first_tensor + (size_t)k];
            if (mt->spec.role == BSC_ROLE_STATE) {
                L->params[k] = bsc_tensor_view(&m->state, mt->offset, &mt->spec.shape);
            } else {
                L->params[k] = bsc_tensor_view(&m->params, mt->offset, &mt->spec.shape);
                L->grads[k] = bsc_tensor_view(&m->grads, mt->offset, &mt->spec.shape);
            }
            L->param_ptrs[k] = &L->params[k];
            L->grad_ptrs[k] = &L->grads[k];
        }
        bsc_layer_binding b = {ctx, max_batch, L->param_ptrs, L->grad_ptrs, &L->workspace};
        if (ops->bind)
            BSC_PLUGIN_CALL(L->type, "bind", s = ops->bind(L->self, &b));
        if (s != BSC_OK)
            return bsc_fail_context(s, "binding layer %zu (%s)", i, L->type->name);
    }
    const bsc_loss_ops *lo = m->loss_ops;
    size_t ws = 0;
    if (lo->workspace_size)
        BSC_PLUGIN_CALL(m->loss_type, "workspace_size",
                        ws = lo->workspace_size(m->loss_self, max_batch));
    if (ws && (s = alloc_floats(ctx, ws, &m->loss_ws)) != BSC_OK)
        return s;
    BSC_PLUGIN_CALL(m->loss_type, "bind", s = lo->bind(m->loss_self, ctx, max_batch, &m->loss_ws));
    return s;
}

size_t bsc_model_n_layers(const bsc_model *m) { return m->n_layers; }
size_t bsc_model_n_params(const bsc_model *m) { return m->n_params; }
size_t bsc_model_n_state(const bsc_model *m) { return m->n_state; }
size_t bsc_model_n_tensors(const bsc_model *m) { return m->n_tensors; }
const bsc_model_tensor *bsc_model_tensor_at(const bsc_model *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}
bsc_shape bsc_model_output_shape(const bsc_model *m, size_t i)
{
    return i < m->n_layers ? m->layers[i].out : m->input;
}
size_t bsc_model_max_batch(const bsc_model *m) { return m->max_batch; }
bsc_context *bsc_model_context(const bsc_model *m) { return m->ctx; }
bsc_tensor *bsc_model_params(bsc_model *m) { return &m->params; }
bsc_tensor *bsc_model_grads(bsc_model *m) { return &m->grads; }
bsc_tensor *bsc_model_state(bsc_model *m) { return &m->state; }
const bsc_tensor *bsc_model_row_loss(bsc_model *m) { return &m->row_loss; }
const bsc_tensor *bsc_model_row_correct(bsc_model *m) { return &m->row_correct; }
const bsc_tensor *bsc_model_logits(bsc_model *m)
{
    return m->n_layers ? &m->layers[m->n_layers - 1].act : NULL;
}
const bsc_tensor *bsc_model_activation(bsc_model *m, size_t i)
{
    return i < m->n_layers ? &m->layers[i].act : NULL;
}
const bsc_tensor *bsc_model_dactivation(bsc_model *m, size_t i)
{
    return i < m->n_layers ? &m->layers[i].dact : NULL;
}
void *bsc_model_layer_self(bsc_model *m, size_t i)
{
    return i < m->n_layers ? m->layers[i].self : NULL;
}
const bsc_layer_ops *bsc_model_layer_ops(const bsc_model *m, size_t i)
{
    return i < m->n_layers ? m->layers[i].ops : NULL;
}

bsc_status bsc_model_init_host(const bsc_model *m, uint64_t seed, const char *init,
                               float *params, float *state)
{
    if (!init)
        init = "torch";
    for (size_t i = 0; i < m->n_tensors; i++) {
        const bsc_model_tensor *t = &m->tensors[i];
        float *dst = (t->spec.role == BSC_ROLE_STATE ? state : params) + t->offset;
        double fan_in = t->spec.fan_in > 0 ? (double)t->spec.fan_in : 1.0;
        double fan_out = t->spec.fan_out > 0 ? (double)t->spec.fan_out : 1.0;
        uint32_t stream = (uint32_t)i;
        int named = t->spec.role == BSC_ROLE_WEIGHT && strcmp(init, "torch") != 0;
        if (named && !strcmp(init, "he_normal")) {
            bsc_rng_fill_normal(seed, BSC_RNG_INIT, stream, dst, t->numel, 0.0f,
                                (float)sqrt(2.0 / fan_in));
        } else if (named && !strcmp(init, "he_uniform")) {
            float b = (float)sqrt(6.0 / fan_in);
            bsc_rng_fill_uniform(seed, BSC_RNG_INIT, stream, dst, t->numel, -b, b);
        } else if (named && !strcmp(init, "glorot_uniform")) {
            float b = (float)sqrt(6.0 / (fan_in + fan_out));
            bsc_rng_fill_uniform(seed, BSC_RNG_INIT, stream, dst, t->numel, -b, b);
        } else if (named && !strcmp(init, "glorot_normal")) {
            bsc_rng_fill_normal(seed, BSC_RNG_INIT, stream, dst, t->numel, 0.0f,
                                (float)sqrt(2.0 / (fan_in + fan_out)));
        } else if (named) {
            return bsc_fail(BSC_ERR_INVALID, "unknown init '%s'", init);
        } else if (t->spec.init == BSC_INIT_ZEROS || t->spec.init == BSC_INIT_ONES) {
            float v = t->spec.init == BSC_INIT_ONES ? 1.0f : 0.0f;
            for (size_t k = 0; k < t->numel; k++)
                dst[k] = v;
        } else {
            float b = (float)(1.0 / sqrt(fan_in));
            bsc_rng_fill_uniform(seed, BSC_RNG_INIT, stream, dst, t->numel, -b, b);
        }
    }
    return BSC_OK;
}

/* Forward through layers [first, end) from `in`, the last output into *out
 * when given (else that layer's activation buffer); *last receives the view
 * of the final output. */
static bsc_status forward_range(bsc_model *m, const bsc_pass *p, size_t first, size_t end,
                                const bsc_tensor *in_t, bsc_tensor *dest, bsc_tensor *last)
{
    if (p->batch > m->max_batch || p->batch == 0)
        return bsc_fail(BSC_ERR_INTERNAL, "batch %zu outside [1, %zu]", p->batch, m->max_batch);
    bsc_tensor in = bsc_model_batch_view_(in_t, p->batch, first ? &m->layers[first - 1].out : &m->input);
    for (size_t i = first; i < end; i++) {
        layer *L = &m->layers[i];
        bsc_tensor out = bsc_model_batch_view_(i + 1 == end && dest ? dest : &L->act, p->batch, &L->out);
        bsc_status s;
        BSC_PLUGIN_CALL(L->type, "forward", s = L->ops->forward(L->self, p, &in, &out));
        if (s != BSC_OK)
            return bsc_fail_context(s, "forward of layer %zu (%s)", i, L->type->name);
        in = out;
    }
    *last = in;
    return BSC_OK;
}

bsc_status bsc_model_forward_loss(bsc_model *m, const bsc_pass *pass, const bsc_tensor *x,
                                  const bsc_tensor *y)
{
    return bsc_model_forward_loss_from(m, pass, 0, x, y);
}

bsc_status bsc_model_forward_loss_from(bsc_model *m, const bsc_pass *pass, size_t first,
                                       const bsc_tensor *in, const bsc_tensor *y)
{
    bsc_pass pc = *pass;
    pc.ctx = m->ctx;
    if (first > m->n_layers)
        return bsc_fail(BSC_ERR_INVALID, "forward from layer %zu of %zu", first, m->n_layers);
    bsc_tensor logits;
    bsc_status s = forward_range(m, &pc, first, m->n_layers, in, NULL, &logits);
    if (s != BSC_OK)
        return s;
    int64_t b = (int64_t)pc.batch;
    bsc_shape rows = bsc_shape_make(1, &b);
    bsc_tensor loss = bsc_tensor_view(&m->row_loss, 0, &rows);
    bsc_tensor correct = bsc_tensor_view(&m->row_correct, 0, &rows);
    bsc_tensor labels = bsc_tensor_view(y, 0, &rows);
    BSC_PLUGIN_CALL(m->loss_type, "forward",
                    s = m->loss_ops->forward(m->loss_self, pc.batch, &logits, &labels, &loss,
                                             &correct));
    return s;
}

bsc_status bsc_model_forward_to(bsc_model *m, const bsc_pass *pass, const bsc_tensor *x,
                                size_t last, bsc_tensor *out)
{
    bsc_pass pc = *pass;
    pc.ctx = m->ctx;
    if (last >= m->n_layers)
        return bsc_fail(BSC_ERR_INVALID, "forward to layer %zu of %zu", last, m->n_layers);
    bsc_tensor got;
    return forward_range(m, &pc, 0, last + 1, x, out, &got);
}

size_t bsc_model_first_trained_(const bsc_model *m)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        const layer *L = &m->layers[i];
        for (int k = 0; k < L->n_params; k++)
            if (m->tensors[L->first_tensor + (size_t)k].spec.role != BSC_ROLE_STATE)
                return i;
    }
    return m->n_layers;
}

bsc_status bsc_model_backward(bsc_model *m, const bsc_pass *pass, const bsc_tensor *x,
                              const bsc_tensor *y, float scale)
{
    bsc_pass pc = *pass;
    const bsc_pass *p = &pc;
    pc.ctx = m->ctx;
    if (m->n_layers == 0)
        return BSC_OK;
    layer *last = &m->layers[m->n_layers - 1];
    int64_t b = (int64_t)p->batch;
    bsc_shape rows = bsc_shape_make(1, &b);
    bsc_tensor labels = bsc_tensor_view(y, 0, &rows);
    bsc_tensor logits = bsc_model_batch_view_(&last->act, p->batch, &last->out);
    bsc_tensor dlogits = bsc_model_batch_view_(&last->dact, p->batch, &last->out);
    bsc_status s;
    BSC_PLUGIN_CALL(m->loss_type, "backward",
                    s = m->loss_ops->backward(m->loss_self, p->batch, &logits, &labels, scale,
                                              &dlogits));
    if (s != BSC_OK)
        return s;
    /* Layers before the first one with trained parameters have no gradient
     * to produce, so backward stops there, and that layer is not asked for
     * its input gradient: for the MLP (flatten, dense, ...) that is a whole
     * [batch, 784] x [784, 512] GEMM per step whose result nobody reads.
     * Their dactivation buffers are therefore not written. */
    size_t first = bsc_model_first_trained_(m);
    for (size_t i = m->n_layers; i-- > first;) {
        layer *L = &m->layers[i];
        bsc_tensor in = i ? bsc_model_batch_view_(&m->layers[i - 1].act, p->batch, &m->layers[i - 1].out)
                          : bsc_model_batch_view_(x, p->batch, &m->input);
        bsc_tensor out = bsc_model_batch_view_(&L->act, p->batch, &L->out);
        bsc_tensor dout = bsc_model_batch_view_(&L->dact, p->batch, &L->out);
        bsc_tensor din;
        int want_din = i > first;
        if (want_din)
            din = bsc_model_batch_view_(&m->layers[i - 1].dact, p->batch, &m->layers[i - 1].out);
        BSC_PLUGIN_CALL(L->type, "backward",
                        s = L->ops->backward(L->self, p, &in, &out, &dout,
                                             want_din ? &din : NULL));
        if (s != BSC_OK)
            return bsc_fail_context(s, "backward of layer %zu (%s)", i, L->type->name);
    }
    return BSC_OK;
}
