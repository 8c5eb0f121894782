/* batchscope layers plugin: the descriptor the host loads. Each type (its
 * name, summary, options and ops) is defined in its own file; a new layer
 * is one file and one entry in LAYERS_TYPES (layers.h). */
#include "layers.h"

BSC_PLUGIN("layers", "0.2.0", LAYERS_TYPES)
