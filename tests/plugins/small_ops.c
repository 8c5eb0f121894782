/* Test plugin "small_ops": a layer type whose ops table is smaller than an
 * ABI 2.0 layer table (here: an analysis table listed as a layer, the wrong
 * stride a plugin built against other headers would have). The host must
 * reject it naming both sizes instead of reading past the table. */
#include <stdlib.h>

#include "batchscope/plugin.h"

static bsc_status a_create(const bsc_component_config *cfg, void **self)
{
    (void)cfg;
    *self = NULL;
    return BSC_OK;
}

static bsc_status a_run(void *self, const bsc_study *st)
{
    (void)self;
    (void)st;
    return BSC_OK;
}

static const bsc_analysis_ops ops = {.struct_size = sizeof(bsc_analysis_ops), .create = a_create,
                                     .run = a_run};
const bsc_type tp_small_type = {sizeof(bsc_type), BSC_KIND_LAYER, "tp_small", "wrong stride",
                                NULL, &ops};

#define TYPES(X) X(tp_small)
BSC_PLUGIN("small_ops", "0.0.1", TYPES)
