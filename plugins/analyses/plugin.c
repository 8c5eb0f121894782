/* batchscope analyses plugin: the descriptor the host loads. Post-training
 * analyses of the runs' minimizers; each type is defined in its own file,
 * and a new one is one file and one entry in ANA_TYPES (analyses.h). */
#include "analyses.h"

BSC_PLUGIN("analyses", "0.2.0", ANA_TYPES)
