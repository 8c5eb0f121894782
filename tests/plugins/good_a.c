/* Test plugin "good_a": one of each kind of type, all ops present.
 * The layer is an identity that never touches a device, so loader tests run
 * without OpenCL. */
#include <stdlib.h>

#include "batchscope/plugin.h"

typedef struct tp_identity {
    bsc_shape shape;
} tp_identity;

static bsc_status id_create(const bsc_layer_config *cfg, void **self)
{
    tp_identity *l = calloc(1, sizeof *l);
    if (!l)
        return bsc_fail(BSC_ERR_NOMEM, "good_a.c: out of memory");
    l->shape = cfg->input;
    *self = l;
    return BSC_OK;
}

static bsc_status id_output_shape(void *self, bsc_shape *out)
{
    *out = ((tp_identity *)self)->shape;
    return BSC_OK;
}

static int id_n_params(void *self)
{
    (void)self;
    return 0;
}

static bsc_status id_param_spec(void *self, int i, bsc_param_spec *out)
{
    (void)self;
    (void)out;
    return bsc_fail(BSC_ERR_INVALID, "good_a.c: tp_identity has no parameter %d", i);
}

static size_t id_workspace_size(void *self, size_t max_batch)
{
    (void)self;
    (void)max_batch;
    return 0;
}

static bsc_status id_bind(void *self, const bsc_layer_binding *b)
{
    (void)self;
    (void)b;
    return BSC_OK;
}

static bsc_status id_forward(void *self, const bsc_pass *p, const bsc_tensor *in, bsc_tensor *out)
{
    (void)self;
    (void)p;
    (void)in;
    (void)out;
    return BSC_OK;
}

static bsc_status id_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
                              const bsc_tensor *out, const bsc_tensor *dout, bsc_tensor *din)
{
    (void)self;
    (void)p;
    (void)in;
    (void)out;
    (void)dout;
    (void)din;
    return BSC_OK;
}

static void id_destroy(void *self)
{
    free(self);
}

static const bsc_layer_ops identity_ops = {
    .struct_size = sizeof(bsc_layer_ops),
    .create = id_create,
    .output_shape = id_output_shape,
    .n_params = id_n_params,
    .param_spec = id_param_spec,
    .workspace_size = id_workspace_size,
    .bind = id_bind,
    .forward = id_forward,
    .backward = id_backward,
    .destroy = id_destroy,
};

/* ---- loss: stateless, so create hands back a dummy non-NULL self */

static int loss_token;

static bsc_status loss_create(const bsc_loss_config *cfg, void **self)
{
    (void)cfg;
    *self = &loss_token;
    return BSC_OK;
}

static bsc_status loss_bind(void *self, struct bsc_context *ctx, size_t max_batch,
                            bsc_tensor workspace)
{
    (void)self;
    (void)ctx;
    (void)max_batch;
    (void)workspace;
    return BSC_OK;
}

static bsc_status loss_forward(void *self, size_t batch, const bsc_tensor *logits,
                               const bsc_tensor *labels, bsc_tensor *loss, bsc_tensor *correct)
{
    (void)self;
    (void)batch;
    (void)logits;
    (void)labels;
    (void)loss;
    (void)correct;
    return BSC_OK;
}

static bsc_status loss_backward(void *self, size_t batch, const bsc_tensor *logits,
                                const bsc_tensor *labels, float scale, bsc_tensor *dlogits)
{
    (void)self;
    (void)batch;
    (void)logits;
    (void)labels;
    (void)scale;
    (void)dlogits;
    return BSC_OK;
}

static void loss_destroy(void *self)
{
    (void)self;
}

static const bsc_loss_ops loss_ops = {
    .struct_size = sizeof(bsc_loss_ops),
    .create = loss_create,
    .bind = loss_bind,
    .forward = loss_forward,
    .backward = loss_backward,
    .destroy = loss_destroy,
};

/* ---- analysis: an observer with only the required ops */

static int observer_token;

static bsc_status obs_create(const bsc_analysis_config *cfg, void **self)
{
    (void)cfg;
    *self = &observer_token;
    return BSC_OK;
}

static void obs_destroy(void *self)
{
    (void)self;
}

static const bsc_analysis_ops observer_ops = {
    .struct_size = sizeof(bsc_analysis_ops),
    .create = obs_create,
    .destroy = obs_destroy,
};

static const bsc_layer_type layers[] = {
    {"tp_identity", "test layer: passes its input through", &identity_ops},
};
static const bsc_loss_type losses[] = {
    {"tp_loss", "test loss: computes nothing", &loss_ops},
};
static const bsc_analysis_type analyses[] = {
    {"tp_observer", "test observer: watches nothing", &observer_ops},
};

static const bsc_plugin_desc desc = {
    .abi_major = BSC_ABI_MAJOR,
    .abi_minor = BSC_ABI_MINOR,
    .name = "good_a",
    .version = "0.0.1",
    .layers = layers,
    .n_layers = 1,
    .losses = losses,
    .n_losses = 1,
    .analyses = analyses,
    .n_analyses = 1,
};

BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void)
{
    return &desc;
}
