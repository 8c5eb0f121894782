/* Test plugin "half_rop": a layer with r_forward but no r_backward. The
 * R-operator is one pass in two halves, so the host must reject it at load
 * time rather than fail halfway through a product. */
#include "tp_stub.h"

static bsc_status l_r_forward(void *self, const bsc_pass *p, const bsc_tensor *in,
                              const bsc_tensor *rin, const bsc_tensor *const *v,
                              const bsc_tensor *out, bsc_tensor *rout)
{
    (void)self;
    (void)p;
    (void)in;
    (void)rin;
    (void)v;
    (void)out;
    (void)rout;
    return BSC_OK;
}

BSC_LAYER_TYPE(tp_half, "tp_half_rop", "test layer", BSC_NO_OPTIONS, .create = l_create,
               .forward = l_forward, .backward = l_backward, .r_forward = l_r_forward);
#define HALF_TYPES(X) X(tp_half)
BSC_PLUGIN("half_rop", "0.0.1", HALF_TYPES)
