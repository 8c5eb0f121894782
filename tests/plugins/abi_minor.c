/* Test plugin "abi_minor": built against a newer minor than the host has. */
#include <stddef.h>

#include "batchscope/plugin.h"

static const bsc_plugin_desc desc = {
    .abi_major = BSC_ABI_MAJOR,
    .abi_minor = BSC_ABI_MINOR + 1,
    .name = "abi_minor",
    .version = "9.9.9",
    .layers = NULL,
    .n_layers = 0,
};

BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void)
{
    return &desc;
}
