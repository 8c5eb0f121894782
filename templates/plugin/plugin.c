/* The example plugin's descriptor: the one exported symbol,
 * bsc_plugin_entry(), returning the list of its types. Each type (name,
 * summary, options, ops) is defined in its own file; a new type is one file
 * and one entry here. */
#include "batchscope/batchscope.h"

#define EXAMPLE_TYPES(X) X(example_swish) X(example_step_log) X(example_param_norm)

BSC_PLUGIN("example", "0.1.0", EXAMPLE_TYPES)
