/* batchscope: gradient checks for layer plugins.
 *
 * bsc_gradcheck_layer() tests a layer type end to end, the way the model
 * will use it: it checks the options against the type's declared ones,
 * creates the layer for a per-sample input shape, binds it to parameter,
 * gradient and state buffers laid out as the model lays them out (views at
 * an offset into one flat buffer), fills the trainable parameters and the
 * input with random values away from 0 (so that kinks such as relu's are not
 * straddled by a finite-difference step), and runs forward and backward on
 * the context's device with a random output weighting R, i.e. for the loss
 *
 *     L = sum(out * R)        (dout = R).
 *
 * Backward's input gradient and every trainable parameter gradient are then
 * compared with central finite differences of L, formed in double on the
 * host from forward passes at x +- h (the step actually taken after rounding
 * to float). NULL optional ops get plugin.h's defaults, as in the host.
 *
 * Beyond the values it also catches what breaks a layer only inside a
 * model: a backward that accumulates into its gradients instead of
 * overwriting them, one that writes outside its gradient views, a layer
 * that ignores its views' offsets, parameter gradients that change when
 * din is NULL (as for a model's first layer), and (when the layer has one)
 * a per_example_sqnorm that disagrees with backward run one row at a time,
 * and (when the layer has one and ctx's GEMMs run on the host BLAS) a
 * host_forward that disagrees with an evaluation forward by more than 1e-5
 * of the largest output (BSC_ERR_INVALID, naming the element).
 *
 * Use it from a plugin's test with the plugin loaded through a registry:
 *
 *     bsc_gradcheck_options o = {.options = "{type: swish}", .batch = 3, .seed = 1,
 *                                .input = bsc_shape_make(1, (int64_t[]){7})};
 *     bsc_gradcheck_result r;
 *     if (bsc_gradcheck_layer_named(ctx, reg, "swish", &o, &r) != BSC_OK)
 *         fprintf(stderr, "%s\n", bsc_last_error());
 */
#ifndef BATCHSCOPE_GRADCHECK_H
#define BATCHSCOPE_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "batchscope/api.h"
#include "batchscope/device.h"
#include "batchscope/plugin.h"
#include "batchscope/registry.h"
#include "batchscope/status.h"
#include "batchscope/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults of the zero fields of bsc_gradcheck_options: a step of 1e-2 on
 * float32 values of order one and a bound of 2e-2 on the relative error
 * leave room for float32 forwards while a wrong factor, sign or index is
 * far outside it. */
#define BSC_GRADCHECK_STEP 1e-2
#define BSC_GRADCHECK_TOLERANCE 2e-2
#define BSC_GRADCHECK_MAX_COORDS 200

/* What to check. Zero-initialize and set at least input and batch. */
typedef struct bsc_gradcheck_options {
    /* The layer's options as YAML, as in a pipeline's `model:` entry
     * ("{type: dense, units: 3}"); NULL or "": "{type: <name>}". */
    const char *options;
    bsc_shape input;       /* per-sample input shape (batch dimension excluded) */
    size_t batch;          /* rows, >= 1 */
    uint64_t seed;         /* parameters, inputs, R and the sampled coordinates */
    int eval_mode;         /* 0: a training pass (dropout on, batch statistics); 1: eval */
    double step;           /* finite-difference step h; 0: BSC_GRADCHECK_STEP */
    double tolerance;      /* largest accepted relative error; 0: BSC_GRADCHECK_TOLERANCE */
    /* Coordinates compared per tensor (the input, each parameter): every one
     * when the tensor is no larger, else a sample; 0: BSC_GRADCHECK_MAX_COORDS. */
    size_t max_coords;
} bsc_gradcheck_options;

typedef struct bsc_gradcheck_result {
    /* The largest relative error |expected - got| / max(|expected|, |got|,
     * 1e-3) over every coordinate compared, and where it was: */
    double worst;
    /* "input", a parameter's name ("weight"), "<name> (backward without
     * din)" or "per_example_sqnorm". */
    char where[64];
    size_t index;          /* flat element index in that tensor (the row for
                              per_example_sqnorm) */
    /* There: the reference (the finite difference; for the last two, backward
     * with din / backward one row at a time) and the value checked. */
    double expected, got;
    size_t checked;        /* coordinates compared, all tensors together */
    size_t failed;         /* of them over the tolerance */
} bsc_gradcheck_result;

/* Checks layer type `type` (kind BSC_KIND_LAYER; from bsc_registry_find, or
 * a plugin's own `<id>_type` record linked into the test) on ctx's device.
 *
 * Returns BSC_OK when every compared coordinate is within the tolerance.
 * A wrong gradient returns BSC_ERR_INVALID with a message naming the type,
 * the tensor, the element and both values. Anything that keeps the check
 * from running (bad options, create/bind/forward/backward failing, a
 * device error) returns that status with the layer's message. *out (may be
 * NULL) is filled when the check ran to the end (BSC_OK or a wrong
 * gradient) and zeroed otherwise. Blocking: it waits for the device. */
BSC_API bsc_status bsc_gradcheck_layer(bsc_context *ctx, const bsc_type *type,
                                       const bsc_gradcheck_options *opt,
                                       bsc_gradcheck_result *out);

/* The same for the layer type `name` of a registry; an unknown name fails
 * as in a pipeline (bsc_registry_resolve: the closest known name, or the
 * key a type of another kind belongs under). */
BSC_API bsc_status bsc_gradcheck_layer_named(bsc_context *ctx, const bsc_registry *r,
                                             const char *name,
                                             const bsc_gradcheck_options *opt,
                                             bsc_gradcheck_result *out);

#ifdef __cplusplus
}
#endif
#endif
