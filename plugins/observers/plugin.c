/* batchscope observers plugin: the descriptor the host loads.
 *
 * Observers hook into training (distance, update_norms, gradient_diversity,
 * noise_scale); summary runs after all runs and reads their files. */
#include "observers.h"

static const bsc_analysis_type analysis_types[] = {
    {"distance", "||w - w0||, epoch distance and ||w|| per epoch, total and per layer "
                 "(every_steps)", &obs_distance_ops},
    {"update_norms", "||w_{t+1} - w_t|| of every step, total and per layer (per_layer)",
     &obs_update_norms_ops},
    {"gradient_diversity", "sum ||g_i||^2 / ||sum g_i||^2 and ||sum g_i|| / sum ||g_i|| of "
                           "per-example gradients (every_steps, method)",
     &obs_gradient_diversity_ops},
    {"noise_scale", "gradient noise scale B_simple = tr(Sigma)/|G|^2, EMA-smoothed "
                    "(every_steps, ema, method)", &obs_noise_scale_ops},
    {"summary", "summary.csv per batch size and epoch_distance_ratio.csv (pairs)",
     &obs_summary_ops},
};

static const bsc_plugin_desc desc = {
    .abi_major = BSC_ABI_MAJOR,
    .abi_minor = BSC_ABI_MINOR,
    .name = "observers",
    .version = "0.1.0",
    .layers = NULL,
    .n_layers = 0,
    .losses = NULL,
    .n_losses = 0,
    .analyses = analysis_types,
    .n_analyses = sizeof analysis_types / sizeof analysis_types[0],
};

BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void);

BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void)
{
    return &desc;
}
