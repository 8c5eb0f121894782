/* Test plugins: a stub layer whose ops do nothing, shared by the small
 * plugins the loader tests build (each one is its own shared object). */
#ifndef BSC_TP_STUB_H
#define BSC_TP_STUB_H

#include "batchscope/plugin.h"

static bsc_status l_create(const bsc_layer_config *cfg, void **self)
{
    (void)cfg;
    *self = NULL;
    return BSC_OK;
}

static bsc_status l_output_shape(void *self, bsc_shape *out)
{
    (void)self;
    out->ndim = 1;
    out->dim[0] = 1;
    return BSC_OK;
}

static int l_n_params(void *self)
{
    (void)self;
    return 0;
}

static bsc_status l_param_spec(void *self, int i, bsc_param_spec *out)
{
    (void)self;
    (void)i;
    (void)out;
    return BSC_ERR_INVALID;
}

static bsc_status l_bind(void *self, const bsc_layer_binding *b)
{
    (void)self;
    (void)b;
    return BSC_OK;
}

static bsc_status l_backward(void *self, const bsc_pass *p, const bsc_tensor *in,
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

static void l_destroy(void *self)
{
    (void)self;
}

#ifndef TP_STUB_NO_FORWARD
static bsc_status l_forward(void *self, const bsc_pass *p, const bsc_tensor *in, bsc_tensor *out)
{
    (void)self;
    (void)p;
    (void)in;
    (void)out;
    return BSC_OK;
}
#endif

/* The stub's ops table; FORWARD is l_forward, or NULL for a plugin that must
 * be rejected. */
#define TP_STUB_OPS(FORWARD)                      \
    static const bsc_layer_ops ops = {            \
        .struct_size = sizeof(bsc_layer_ops),     \
        .create = l_create,                       \
        .output_shape = l_output_shape,           \
        .n_params = l_n_params,                   \
        .param_spec = l_param_spec,               \
        .bind = l_bind,                           \
        .forward = FORWARD,                       \
        .backward = l_backward,                   \
        .destroy = l_destroy,                     \
    }

/* A plugin named NAME whose one layer type is TYPE. */
#define TP_STUB_PLUGIN(NAME, TYPE)                                    \
    static const bsc_layer_type layers[] = {{TYPE, "test layer", &ops}}; \
    static const bsc_plugin_desc desc = {                             \
        .abi_major = BSC_ABI_MAJOR,                                   \
        .abi_minor = BSC_ABI_MINOR,                                   \
        .name = NAME,                                                 \
        .version = "0.0.1",                                           \
        .layers = layers,                                             \
        .n_layers = 1,                                                \
    };                                                                \
    BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void)   \
    {                                                                 \
        return &desc;                                                 \
    }


#endif
