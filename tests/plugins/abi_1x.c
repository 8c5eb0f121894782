/* Test plugin "abi_1x": a plugin built against the ABI 1.1 headers, laid out
 * as they were (arrays of type structs after the name). The host must read
 * no more than the two version fields and reject it. */
#include <stddef.h>
#include <stdint.h>

#include "batchscope/plugin.h"

typedef struct old_layer_type {
    const char *name, *summary;
    const void *ops;
} old_layer_type;

typedef struct old_desc {
    uint32_t abi_major, abi_minor;
    const char *name, *version;
    const old_layer_type *layers;
    size_t n_layers;
    const void *losses;
    size_t n_losses;
    const void *analyses;
    size_t n_analyses;
} old_desc;

static const old_layer_type layers[] = {{"tp_old", "a 1.x layer", NULL}};
static const old_desc desc = {1, 1, "abi_1x", "1.0.0", layers, 1, NULL, 0, NULL, 0};

BSC_PLUGIN_EXPORT const old_desc *bsc_plugin_entry(void);
BSC_PLUGIN_EXPORT const old_desc *bsc_plugin_entry(void)
{
    return &desc;
}
