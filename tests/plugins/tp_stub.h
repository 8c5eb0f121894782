/* Test plugins: a stub layer whose ops do nothing, shared by the small
 * plugins the loader tests build (each one is its own shared object). Only
 * the required ops are given: the rest take the host's defaults. */
#ifndef BSC_TP_STUB_H
#define BSC_TP_STUB_H

#include "batchscope/plugin.h"

static bsc_status l_create(const bsc_layer_config *cfg, void **self)
{
    (void)cfg;
    *self = NULL;
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

/* A plugin named NAME whose one layer type is TYPE; FORWARD is l_forward,
 * or NULL for a plugin that must be rejected. */
#define TP_STUB_PLUGIN(NAME, TYPE, FORWARD)                                         \
    BSC_LAYER_TYPE(tp_stub, TYPE, "test layer", BSC_NO_OPTIONS, .create = l_create, \
                   .forward = FORWARD, .backward = l_backward);                     \
    BSC_PLUGIN(NAME, "0.0.1", TP_STUB_TYPES)
#define TP_STUB_TYPES(X) X(tp_stub)

#endif
