/* The example plugin's test: loads the built module as batchscope would,
 * checks that it provides its three types, and checks the swish layer's
 * gradients against finite differences with the SDK's helper
 * (batchscope/gradcheck.h) on the default OpenCL device. Exits nonzero on
 * any failure. PLUGIN_FILE is the module's path (CMakeLists.txt and the
 * Makefile pass it). */
#include <stdio.h>

#include "batchscope/batchscope.h"

#ifndef PLUGIN_FILE
#error "build with -DPLUGIN_FILE='\"path/to/example.so\"'"
#endif

static int check_layer(bsc_context *ctx, const bsc_registry *reg, const char *yaml, int ndim,
                       const int64_t *dim, size_t batch, uint64_t seed)
{
    bsc_gradcheck_options o = {.options = yaml, .input = bsc_shape_make(ndim, dim),
                               .batch = batch, .seed = seed};
    bsc_gradcheck_result r;
    bsc_status st = bsc_gradcheck_layer_named(ctx, reg, "swish", &o, &r);
    if (st != BSC_OK) {
        fprintf(stderr, "FAIL %s: %s\n", yaml, bsc_last_error());
        return 1;
    }
    printf("ok   %s: %zu coordinates, worst relative error %.2g (%s[%zu])\n", yaml, r.checked,
           r.worst, r.where, r.index);
    return 0;
}

static int check_type(const bsc_registry *reg, bsc_kind kind, const char *name)
{
    if (bsc_registry_find(reg, kind, name, NULL)) {
        printf("ok   %s '%s' is provided\n", bsc_kind_name(kind), name);
        return 0;
    }
    fprintf(stderr, "FAIL the plugin provides no %s '%s'\n", bsc_kind_name(kind), name);
    return 1;
}

int main(void)
{
    bsc_registry *reg = NULL;
    bsc_context *ctx = NULL;
    int failures = 0;

    if (bsc_registry_new(&reg) != BSC_OK ||
        bsc_registry_load_path(reg, PLUGIN_FILE, "test") != BSC_OK) {
        fprintf(stderr, "FAIL loading %s: %s\n", PLUGIN_FILE, bsc_last_error());
        bsc_registry_free(reg);
        return 1;
    }
    failures += check_type(reg, BSC_KIND_LAYER, "swish");
    failures += check_type(reg, BSC_KIND_OBSERVER, "step_log");
    failures += check_type(reg, BSC_KIND_ANALYSIS, "param_norm");

    if (bsc_context_open(NULL, &ctx) != BSC_OK) {
        fprintf(stderr, "FAIL no OpenCL device: %s\n", bsc_last_error());
        bsc_registry_free(reg);
        return 1;
    }
    const int64_t flat[1] = {10}, image[3] = {2, 3, 3};
    failures += check_layer(ctx, reg, "{type: swish}", 1, flat, 4, 1);
    failures += check_layer(ctx, reg, "{type: swish, beta: 2.5}", 3, image, 3, 2);
    failures += check_layer(ctx, reg, "{type: swish, beta: -0.5}", 1, flat, 1, 3);

    bsc_context_free(ctx);
    bsc_registry_free(reg);   /* the module stays loaded (plugin.h) */
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
