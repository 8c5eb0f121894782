/* batchscope analyses plugin: the descriptor the host loads.
 *
 * Post-training analyses of the runs' minimizers; names match the
 * pipeline's `analyses:` types, summaries are what `batchscope plugins`
 * prints. */
#include "analyses.h"

static const bsc_analysis_type analysis_types[] = {
    {"interpolate", "loss and accuracy along theta(a) = a*B + (1-a)*A between two minimizers "
                    "(from, to, from_path, to_path, range, points, subset)",
     &ana_interpolate_ops},
    {"sharpness", "Keskar et al. sharpness: max loss in the box |z_i| <= eps(|x_i|+1) by "
                  "L-BFGS-B, full space and random subspace (eps, variants, p, max_iter)",
     &ana_sharpness_ops},
    {"surface", "Li et al. filter-normalized loss surface, 1-D or 2-D, or the plane through "
                "three points (x, y, dims, ignore, orthogonalize, subset, plane)",
     &ana_surface_ops},
    {"hessian", "top-k Hessian eigenvalues by power iteration and Hutchinson's trace "
                "(top_k, tol, max_iter, trace_samples, fd_step, subset)",
     &ana_hessian_ops},
};

static const bsc_plugin_desc desc = {
    .abi_major = BSC_ABI_MAJOR,
    .abi_minor = BSC_ABI_MINOR,
    .name = "analyses",
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
