/* Test plugin "abi_major": built for a plugin ABI major the host does not
 * provide; the host must reject it before reading anything else. */
#include <stddef.h>

#include "batchscope/plugin.h"

static const bsc_plugin_desc desc = {
    .abi_major = BSC_ABI_MAJOR + 1,
    .abi_minor = BSC_ABI_MINOR,
    .struct_size = sizeof(bsc_plugin_desc),
    .name = "abi_major",
    .version = "9.9.9",
    .types = NULL,
};

BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void);
BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void)
{
    return &desc;
}
