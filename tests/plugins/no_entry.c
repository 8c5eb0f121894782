/* Test plugin "no_entry": a shared object that exports something, but not
 * bsc_plugin_entry. */
#include "batchscope/plugin.h"

BSC_PLUGIN_EXPORT int bsc_not_the_entry(void)
{
    return 42;
}
