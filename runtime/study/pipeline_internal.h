/* Shared by pipeline.c (loading and validation) and pipeline_override.c
 * (`--set` overrides). Not a public header: not exported from libbatchscope. */
#ifndef BATCHSCOPE_PIPELINE_INTERNAL_H
#define BATCHSCOPE_PIPELINE_INTERNAL_H

#include "batchscope/node.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

/* Applies one override "a.b.c=value" to the tree under root: a missing key
 * is created, an existing value replaced, a numeric component indexes a list
 * and a null value becomes a mapping when set inside. `index` is the
 * override's 1-based position on the command line; the nodes it creates are
 * marked "--set:<index>:<col>". Errors are BSC_ERR_USAGE naming the override. */
BSC_INTERNAL bsc_status bsc_pipeline_apply_override(bsc_node *root, const char *ov, int index);

#endif
