/* Exact Hessian-vector products: Pearlmutter's R-operator through the
 * model's layers and loss (plugin.h, bsc_layer_ops.r_forward/r_backward).
 *
 * With R{f} = d/dr f(theta + r v) at r = 0, one pass computes
 *   forward      a_i = f_i(a_{i-1}, theta_i)          and  R{a_i}
 *   loss         g_L = d loss / d logits               and  R{g_L} = (d^2 loss) R{logits}
 *   backward     g_{i-1} = J_i^T g_i                   and  R{g_{i-1}}, R{d loss / d theta_i}
 * and R{d loss / d theta} is H v: exact up to float rounding, at the cost of
 * about two gradients (every GEMM of forward and backward gets a twin),
 * where central differences cost two gradients and carry a step-size error
 * that no step removes (the third derivative on one side, float32 rounding
 * of g(x + t v) - g(x - t v) on the other, and kinks within t of x).
 *
 * Layers before the first one with trained parameters see inputs that do
 * not depend on theta: they run forward only, and that layer gets rin =
 * NULL. The ordinary parameter gradients are never formed (the pass needs
 * the backward signals g_i, not d loss / d theta), so the first layer's
 * weight-gradient GEMM, the largest of an MLP on images, is not run at all.
 */
#include "batchscope/model.h"
#include "batchscope/plugin_call.h"
#include "model_internal.h"

#include <stdio.h>
#include <string.h>

/* Models deeper than this skip the r_hints bookkeeping (every layer gets
 * dout): a bound for a stack array, not a limit on models. */
#define BSC_MODEL_MAX_LAYERS_HVP 256

/* Views of v (or hv) for the trainable tensors of layer L, in param_spec
 * order; STATE tensors get an empty tensor. */
static void param_views(const bsc_model *m, const layer *L, const bsc_tensor *flat,
                        bsc_tensor *views, const bsc_tensor **ptrs)
{
    for (int k = 0; k < L->n_params; k++) {
        const bsc_model_tensor *mt = &m->tensors[L->first_tensor + (size_t)k];
        if (mt->spec.role == BSC_ROLE_STATE)
            memset(&views[k], 0, sizeof views[k]);
        else
            views[k] = bsc_tensor_view(flat, mt->offset, &mt->spec.shape);
        ptrs[k] = &views[k];
    }
    ptrs[L->n_params] = NULL;
}

int bsc_model_has_hvp(const bsc_model *m, char *why, size_t len)
{
    size_t first = bsc_model_first_trained_(m);
    for (size_t i = first; i < m->n_layers; i++) {
        const layer *L = &m->layers[i];
        if (!L->ops->r_forward || !L->ops->r_backward) {
            if (why && len)
                snprintf(why, len, "layer %zu (%s) has no R-operator", i, L->type->name);
            return 0;
        }
    }
    if (!m->loss_ops->r_backward) {
        if (why && len)
            snprintf(why, len, "the loss (%s) has no R-operator", m->loss_type->name);
        return 0;
    }
    if (why && len)
        why[0] = '\0';
    return 1;
}

/* The R-buffers, as large as the activations and their gradients. */
static bsc_status alloc_r(bsc_model *m, size_t first)
{
    for (size_t i = first; i < m->n_layers; i++) {
        layer *L = &m->layers[i];
        if (L->ract.mem)
            continue;
        int64_t n = (int64_t)(bsc_shape_numel(&L->out) * m->max_batch);
        bsc_shape s = bsc_shape_make(1, &n);
        bsc_status st = bsc_tensor_alloc(m->ctx, BSC_F32, &s, &L->ract);
        if (st == BSC_OK)
            st = bsc_tensor_alloc(m->ctx, BSC_F32, &s, &L->rdact);
        if (st != BSC_OK)
            return bsc_fail_context(st, "R-operator buffers of layer %zu", i);
    }
    return BSC_OK;
}

bsc_status bsc_model_hvp(bsc_model *m, const bsc_pass *pass, const bsc_tensor *x,
                         const bsc_tensor *y, const bsc_tensor *v, float scale, bsc_tensor *hv)
{
    char why[160];
    bsc_pass pc = *pass;
    const bsc_pass *p = &pc;
    pc.ctx = m->ctx;
    if (!bsc_model_has_hvp(m, why, sizeof why))
        return bsc_fail(BSC_ERR_UNSUPPORTED, "exact Hessian-vector product: %s", why);
    if (p->batch > m->max_batch || p->batch == 0)
        return bsc_fail(BSC_ERR_INTERNAL, "batch %zu outside [1, %zu]", p->batch, m->max_batch);
    if (v->numel < m->n_params || hv->numel < m->n_params)
        return bsc_fail(BSC_ERR_INVALID, "Hessian-vector product: vectors of %zu and %zu "
                        "elements for %zu parameters", v->numel, hv->numel, m->n_params);
    size_t first = bsc_model_first_trained_(m);
    if (m->n_layers == 0 || first == m->n_layers)
        return BSC_OK;   /* nothing is trained: H is empty */
    bsc_status s = alloc_r(m, first);
    if (s != BSC_OK)
        return s;
    bsc_tensor vv[65], hh[65];
    const bsc_tensor *vp[65], *hp[65];

    /* Forward and R-forward, layer by layer (r_forward may read what forward
     * left in the layer's workspace). */
    bsc_tensor in = bsc_model_batch_view_(x, p->batch, &m->input), rin = {0};
    for (size_t i = 0; i < m->n_layers; i++) {
        layer *L = &m->layers[i];
        bsc_tensor out = bsc_model_batch_view_(&L->act, p->batch, &L->out);
        BSC_PLUGIN_CALL(L->type, "forward", s = L->ops->forward(L->self, p, &in, &out));
        if (s != BSC_OK)
            return bsc_fail_context(s, "forward of layer %zu (%s)", i, L->type->name);
        if (i >= first) {
            bsc_tensor rout = bsc_model_batch_view_(&L->ract, p->batch, &L->out);
            param_views(m, L, v, vv, vp);
            BSC_PLUGIN_CALL(L->type, "r_forward",
                            s = L->ops->r_forward(L->self, p, &in, i > first ? &rin : NULL, vp,
                                                  &out, &rout));
            if (s != BSC_OK)
                return bsc_fail_context(s, "R-forward of layer %zu (%s)", i, L->type->name);
            rin = rout;
        }
        in = out;
    }

    /* The loss: its gradient and R{gradient} w.r.t. the logits. The row
     * losses come along (bsc_model_row_loss), as after forward_loss. */
    layer *last = &m->layers[m->n_layers - 1];
    int64_t b = (int64_t)p->batch;
    bsc_shape rows = bsc_shape_make(1, &b);
    bsc_tensor labels = bsc_tensor_view(y, 0, &rows);
    bsc_tensor loss = bsc_tensor_view(&m->row_loss, 0, &rows);
    bsc_tensor correct = bsc_tensor_view(&m->row_correct, 0, &rows);
    bsc_tensor logits = bsc_model_batch_view_(&last->act, p->batch, &last->out);
    bsc_tensor rlogits = bsc_model_batch_view_(&last->ract, p->batch, &last->out);
    bsc_tensor dlogits = bsc_model_batch_view_(&last->dact, p->batch, &last->out);
    bsc_tensor rdlogits = bsc_model_batch_view_(&last->rdact, p->batch, &last->out);
    BSC_PLUGIN_CALL(m->loss_type, "forward",
                    s = m->loss_ops->forward(m->loss_self, p->batch, &logits, &labels, &loss,
                                             &correct));
    if (s == BSC_OK)
        BSC_PLUGIN_CALL(m->loss_type, "backward",
                        s = m->loss_ops->backward(m->loss_self, p->batch, &logits, &labels,
                                                  scale, &dlogits));
    if (s == BSC_OK)
        BSC_PLUGIN_CALL(m->loss_type, "r_backward",
                        s = m->loss_ops->r_backward(m->loss_self, p->batch, &logits, &rlogits,
                                                    &labels, scale, &rdlogits));
    if (s != BSC_OK)
        return bsc_fail_context(s, "R-operator of the loss (%s)", m->loss_type->name);

    /* Which layers need the plain backward signal dout (r_hints): the first
     * trained one, bilinear in input and weights, may not; a layer whose
     * R{din} needs no dout passes the question down. A layer whose dout
     * nobody needs is not asked for din: for the MLP, that skips the second
     * dense layer's input-gradient GEMM. */
    unsigned char need[BSC_MODEL_MAX_LAYERS_HVP];
    int track = m->n_layers <= BSC_MODEL_MAX_LAYERS_HVP;
    for (size_t i = first; track && i < m->n_layers; i++) {
        unsigned h = m->layers[i].ops->r_hints;
        int below = i > first ? need[i - 1] : 0;
        need[i] = below || !(h & (i == first ? BSC_R_DOUT_ONLY_FOR_DIN |
                                                   BSC_R_DOUT_ONLY_FOR_DIN_AT_FIRST
                                             : BSC_R_DOUT_ONLY_FOR_DIN));
    }

    /* Backward and R-backward down to the first trained layer, which needs
     * neither input gradient. */
    for (size_t i = m->n_layers; i-- > first;) {
        layer *L = &m->layers[i];
        const layer *P = i ? &m->layers[i - 1] : NULL;
        bsc_tensor lin = P ? bsc_model_batch_view_(&P->act, p->batch, &P->out)
                           : bsc_model_batch_view_(x, p->batch, &m->input);
        bsc_tensor lrin = i > first ? bsc_model_batch_view_(&P->ract, p->batch, &P->out)
                                    : (bsc_tensor){0};
        bsc_tensor out = bsc_model_batch_view_(&L->act, p->batch, &L->out);
        bsc_tensor rout = bsc_model_batch_view_(&L->ract, p->batch, &L->out);
        bsc_tensor dout = bsc_model_batch_view_(&L->dact, p->batch, &L->out);
        bsc_tensor rdout = bsc_model_batch_view_(&L->rdact, p->batch, &L->out);
        bsc_tensor din, rdin;
        int want = i > first, want_din = want && (!track || need[i - 1]);
        int give_dout = !track || need[i];
        if (want) {
            din = bsc_model_batch_view_(&P->dact, p->batch, &P->out);
            rdin = bsc_model_batch_view_(&P->rdact, p->batch, &P->out);
        }
        param_views(m, L, v, vv, vp);
        param_views(m, L, hv, hh, hp);
        BSC_PLUGIN_CALL(L->type, "r_backward",
                        s = L->ops->r_backward(L->self, p, &lin, want ? &lrin : NULL, vp, &out,
                                               &rout, give_dout ? &dout : NULL, &rdout, hp,
                                               want_din ? &din : NULL, want ? &rdin : NULL));
        if (s != BSC_OK)
            return bsc_fail_context(s, "R-backward of layer %zu (%s)", i, L->type->name);
    }
    return BSC_OK;
}
