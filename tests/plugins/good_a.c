/* Test plugin "good_a": one of each kind of type.
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

/* Only what a layer must give plus its shape: n_params, param_spec,
 * workspace_size and bind are left to the host's defaults. */
BSC_LAYER_TYPE(tp_identity, "tp_identity", "test layer: passes its input through",
               BSC_OPTIONS(BSC_OPT("scale", BSC_OPT_FLOAT, "1", "ignored"),
                           BSC_OPT("tag", BSC_OPT_STRING, "", "ignored")),
               .create = id_create, .output_shape = id_output_shape, .forward = id_forward,
               .backward = id_backward, .destroy = id_destroy);

/* ---- loss: stateless, so create hands back a dummy non-NULL self */

static int loss_token;

static bsc_status loss_create(const bsc_loss_config *cfg, void **self)
{
    (void)cfg;
    *self = &loss_token;
    return BSC_OK;
}

static bsc_status loss_bind(void *self, struct bsc_context *ctx, size_t max_batch,
                            const bsc_tensor *workspace)
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

BSC_LOSS_TYPE(tp_loss, "tp_loss", "test loss: computes nothing", BSC_NO_OPTIONS,
              .create = loss_create, .bind = loss_bind, .forward = loss_forward,
              .backward = loss_backward, .destroy = loss_destroy);

/* ---- observer, analysis and report: only the required ops */

static int token;

static bsc_status c_create(const bsc_component_config *cfg, void **self)
{
    (void)cfg;
    *self = &token;
    return BSC_OK;
}

static void c_destroy(void *self)
{
    (void)self;
}

static bsc_status c_run(void *self, const bsc_study *st)
{
    (void)self;
    (void)st;
    return BSC_OK;
}

BSC_OBSERVER_TYPE(tp_observer, "tp_observer", "test observer: watches nothing",
                  BSC_OPTIONS(BSC_OPT("every", BSC_OPT_INT, "1", "ignored"),
                              BSC_OPT("on", BSC_OPT_BOOL, "true", "ignored")),
                  .create = c_create, .destroy = c_destroy);
BSC_ANALYSIS_TYPE(tp_analysis, "tp_analysis", "test analysis: analyses nothing",
                  BSC_OPTIONS(BSC_OPT("runs", BSC_OPT_LIST, "", "ignored")),
                  .create = c_create, .destroy = c_destroy, .run = c_run);
BSC_REPORT_TYPE(tp_report, "tp_report", "test report: draws nothing", BSC_NO_OPTIONS,
                .create = c_create, .destroy = c_destroy, .draw = c_run);

#define TYPES(X) X(tp_identity) X(tp_loss) X(tp_observer) X(tp_analysis) X(tp_report)
BSC_PLUGIN("good_a", "0.0.1", TYPES)
