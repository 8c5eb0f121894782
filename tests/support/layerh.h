/* Test support: one layer (or the loss) of the layers plugin, created,
 * bound and filled on the device the way the model does it, for the tests
 * of the layers (test_layers) and of their R-operator (test_rop).
 *
 * The build tree's plugin is loaded through the registry, as the host
 * does, so that ops the plugin leaves NULL read as the host's defaults. */
#ifndef BSC_TEST_LAYERH_H
#define BSC_TEST_LAYERH_H

#include <stddef.h>
#include <stdint.h>

#include "batchscope/batchscope.h"
#include "testutil.h"

#ifndef CHECK
#endif

/* The device and the registry holding bsc_layers.so, opened by the cmocka
 * group setup below. */
extern bsc_context *lh_ctx;
extern bsc_registry *lh_reg;
int lh_group_setup(void **state);
int lh_group_teardown(void **state);

/* The ops of a layer type of the plugin (fails the test when absent). */
const bsc_layer_ops *lh_layer_ops(const char *name);

bsc_shape lh_shape_of(int ndim, const int64_t *dim);
/* [batch, s...] */
bsc_shape lh_batched(size_t batch, const bsc_shape *s);
/* An owning F32 tensor of n elements. */
void lh_alloc_f32(bsc_tensor *t, size_t n);

#define MAXP 4

typedef struct lt {
    const bsc_layer_ops *ops;
    void *self;
    bsc_node *opts;
    size_t batch, in_n, out_n;
    bsc_shape in_shape, out_shape;
    int np;
    bsc_param_spec spec[MAXP];
    size_t off[MAXP];        /* offset in the trainable or the state array */
    size_t n_train, n_state;
    bsc_tensor P, G, S, W, in, out, dout, din;
    bsc_tensor params[MAXP], grads[MAXP];
    const bsc_tensor *pp[MAXP], *gp[MAXP];
    float *hp, *hs, *hin, *hout, *hdin, *hg, *R;
    bsc_pass pass;
} lt;


/* Parses `yaml` (the layer's option mapping) and creates, binds and fills a
 * layer: trainable parameters uniform in +-1 (away from 0), state tensors at
 * their initial values, inputs uniform in +-1 away from 0 by 0.05, R (the
 * output weights of the test objective sum(out * R)) uniform in +-1; a
 * training pass with seed 1234, step 7. */
void lt_open(lt *t, const char *type, const char *yaml, int ndim, const int64_t *dim,
             size_t batch, uint64_t seed);
void lt_close(lt *t);
/* Uploads the host input and parameters, runs forward, reads the output. */
bsc_status lt_forward(lt *t);
/* dout = R; reads din and the parameter gradients back. */
void lt_backward(lt *t);
/* Pooling inputs: distinct and at least 0.05 apart, so a +-1e-2 step never
 * changes which cell wins a window. */
void lt_spread_inputs(lt *t, uint64_t seed);

/* The softmax cross-entropy loss over B rows of K logits. */
typedef struct lossh {
    const bsc_loss_ops *ops;
    void *self;
    size_t B, K;
    float scale;
    bsc_tensor z, y, loss, correct, dz;
    float *hz, *hloss, *hcorrect, *hdz;
    int *hy;
} lossh;

void loss_open(lossh *h, size_t B, size_t K, const int *labels);
void loss_close(lossh *h);
/* Uploads hz, runs forward, reads the row losses and correctness. */
bsc_status loss_forward(lossh *h);

#endif
