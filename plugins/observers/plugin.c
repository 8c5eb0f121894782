/* batchscope observers plugin: the descriptor the host loads. Observers
 * hook into training (distance, update_norms, gradient_diversity,
 * noise_scale); summary runs after all runs and reads their files. Each type
 * is defined in its own file; a new one is one file and one entry in
 * OBS_TYPES (observers.h). */
#include "observers.h"

BSC_PLUGIN("observers", "0.2.0", OBS_TYPES)
