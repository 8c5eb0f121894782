/* batchscope layers plugin: the descriptor the host loads.
 *
 * Names match the pipeline's `type:` values; summaries are what
 * `batchscope plugins` prints. */
#include "layers.h"

static const bsc_layer_type layer_types[] = {
    {"dense", "fully connected: out = in W^T + b (units, bias)", &layers_dense_ops},
    {"conv2d", "2-D convolution over [C, H, W] via im2col + GEMM "
               "(filters, kernel_size, stride, padding, bias)", &layers_conv2d_ops},
    {"maxpool2d", "2-D max pooling (kernel_size, stride, padding)", &layers_maxpool2d_ops},
    {"avgpool2d", "2-D average pooling, padding counted (kernel_size, stride, padding)",
     &layers_avgpool2d_ops},
    {"relu", "max(x, 0)", &layers_relu_ops},
    {"leaky_relu", "x > 0 ? x : negative_slope * x (negative_slope)", &layers_leaky_relu_ops},
    {"tanh", "hyperbolic tangent", &layers_tanh_ops},
    {"sigmoid", "logistic function 1 / (1 + e^-x)", &layers_sigmoid_ops},
    {"flatten", "reshape each sample to 1-D", &layers_flatten_ops},
    {"dropout", "inverted dropout with a Philox mask keyed by (seed, layer, step) (p)",
     &layers_dropout_ops},
    {"batchnorm", "batch normalization over [F] or [C, H, W] (momentum, eps)",
     &layers_batchnorm_ops},
};

static const bsc_loss_type loss_types[] = {
    {"softmax_cross_entropy", "softmax followed by the negative log-likelihood of the label",
     &layers_softmax_ce_ops},
};

static const bsc_plugin_desc desc = {
    .abi_major = BSC_ABI_MAJOR,
    .abi_minor = BSC_ABI_MINOR,
    .name = "layers",
    .version = "0.1.0",
    .layers = layer_types,
    .n_layers = sizeof layer_types / sizeof layer_types[0],
    .losses = loss_types,
    .n_losses = sizeof loss_types / sizeof loss_types[0],
    .analyses = NULL,
    .n_analyses = 0,
};

BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void);

BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void)
{
    return &desc;
}
