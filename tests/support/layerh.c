/* Test support: the layer and loss harness (layerh.h). */
#include <math.h>
#include "testutil.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "layerh.h"

bsc_context *lh_ctx;
bsc_registry *lh_reg;

int lh_group_setup(void **state)
{
    (void)state;
    if (bsc_registry_new(&lh_reg) != BSC_OK ||
        bsc_registry_load_path(lh_reg, BSC_PLUGIN_BUILD_DIR "/bsc_layers.so", "test") != BSC_OK) {
        print_error("bsc_layers.so: %s\n", bsc_last_error());
        return -1;
    }
    if (tu_context_open(&lh_ctx) != BSC_OK) {
        print_error("no OpenCL device: %s\n", bsc_last_error());
        return -1;
    }
    /* Libraries stay loaded until the process ends (plugin.h). */
    return 0;
}

int lh_group_teardown(void **state)
{
    (void)state;
    bsc_context_free(lh_ctx);
    lh_ctx = NULL;
    bsc_registry_free(lh_reg);
    lh_reg = NULL;
    return 0;
}

const bsc_layer_ops *lh_layer_ops(const char *name)
{
    const bsc_type *t = bsc_registry_find(lh_reg, BSC_KIND_LAYER, name, NULL);
    if (t)
        return t->ops;
    fail_msg("layer type %s not in the plugin", name);
    return NULL;
}

/* ------------------------------------------------------------ layer harness */

bsc_shape lh_shape_of(int ndim, const int64_t *dim)
{
    return bsc_shape_make(ndim, dim);
}

bsc_shape lh_batched(size_t batch, const bsc_shape *s)
{
    bsc_shape b;
    b.ndim = s->ndim + 1;
    b.dim[0] = (int64_t)batch;
    for (int i = 0; i < s->ndim; i++)
        b.dim[i + 1] = s->dim[i];
    return b;
}

void lh_alloc_f32(bsc_tensor *t, size_t n)
{
    int64_t d = (int64_t)n;
    bsc_shape s = lh_shape_of(1, &d);
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_F32, &s, t));
}

/* Parses `yaml` (the layer's option mapping) and creates, binds and fills a
 * layer: trainable parameters uniform in +-1 (away from 0), state tensors at
 * their initial values, inputs uniform in +-1 away from 0 by `gap`. */
void lt_open(lt *t, const char *type, const char *yaml, int ndim, const int64_t *dim,
                    size_t batch, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    uint64_t rng = seed;
    CHECK(bsc_node_parse_string("layer.yaml", yaml, &t->opts));
    t->ops = lh_layer_ops(type);
    t->in_shape = lh_shape_of(ndim, dim);
    t->batch = batch;
    bsc_layer_config cfg = {t->opts, t->in_shape, 2};
    CHECK(t->ops->create(&cfg, &t->self));
    t->out_shape = t->in_shape;   /* the default: an elementwise layer */
    if (t->ops->output_shape)
        CHECK(t->ops->output_shape(t->self, &t->out_shape));
    t->in_n = bsc_shape_numel(&t->in_shape);
    t->out_n = bsc_shape_numel(&t->out_shape);
    t->np = t->ops->n_params ? t->ops->n_params(t->self) : 0;
    assert_true(t->np <= MAXP);
    for (int i = 0; i < t->np; i++) {
        CHECK(t->ops->param_spec(t->self, i, &t->spec[i]));
        size_t n = bsc_shape_numel(&t->spec[i].shape);
        if (t->spec[i].role == BSC_ROLE_STATE) {
            t->off[i] = t->n_state;
            t->n_state += n;
        } else {
            t->off[i] = t->n_train;
            t->n_train += n;
        }
    }
    lh_alloc_f32(&t->P, t->n_train);
    lh_alloc_f32(&t->G, t->n_train);
    lh_alloc_f32(&t->S, t->n_state);
    lh_alloc_f32(&t->W, t->ops->workspace_size ? t->ops->workspace_size(t->self, batch) : 0);
    for (int i = 0; i < t->np; i++) {
        if (t->spec[i].role == BSC_ROLE_STATE) {
            t->params[i] = bsc_tensor_view(&t->S, t->off[i], &t->spec[i].shape);
        } else {
            t->params[i] = bsc_tensor_view(&t->P, t->off[i], &t->spec[i].shape);
            t->grads[i] = bsc_tensor_view(&t->G, t->off[i], &t->spec[i].shape);
        }
    }
    bsc_shape bi = lh_batched(batch, &t->in_shape), bo = lh_batched(batch, &t->out_shape);
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_F32, &bi, &t->in));
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_F32, &bi, &t->din));
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_F32, &bo, &t->out));
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_F32, &bo, &t->dout));
    for (int i = 0; i < MAXP; i++) {
        t->pp[i] = &t->params[i];
        t->gp[i] = &t->grads[i];
    }
    bsc_layer_binding b = {lh_ctx, batch, t->pp, t->gp, &t->W};
    if (t->ops->bind)
        CHECK(t->ops->bind(t->self, &b));

    t->hp = calloc(t->n_train + 1, sizeof(float));
    t->hg = calloc(t->n_train + 1, sizeof(float));
    t->hs = calloc(t->n_state + 1, sizeof(float));
    t->hin = calloc(batch * t->in_n, sizeof(float));
    t->hdin = calloc(batch * t->in_n, sizeof(float));
    t->hout = calloc(batch * t->out_n, sizeof(float));
    t->R = calloc(batch * t->out_n, sizeof(float));
    gc_fill(&rng, t->hp, t->n_train, -1.0f, 1.0f, 0.05f);
    for (int i = 0; i < t->np; i++)
        if (t->spec[i].role == BSC_ROLE_STATE)
            for (size_t k = 0; k < bsc_shape_numel(&t->spec[i].shape); k++)
                t->hs[t->off[i] + k] = t->spec[i].init == BSC_INIT_ONES ? 1.0f : 0.0f;
    gc_fill(&rng, t->hin, batch * t->in_n, -1.0f, 1.0f, 0.05f);
    gc_fill(&rng, t->R, batch * t->out_n, -1.0f, 1.0f, 0.0f);
    if (t->n_state)
        CHECK(bsc_tensor_write(lh_ctx, &t->S, t->hs));
    t->pass = (bsc_pass){.batch = batch, .training = 1, .seed = 1234, .step = 7, .ctx = lh_ctx};
}

void lt_close(lt *t)
{
    t->ops->destroy(t->self);
    bsc_node_free(t->opts);
    bsc_tensor *ts[] = {&t->P, &t->G, &t->S, &t->W, &t->in, &t->out, &t->dout, &t->din};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        bsc_tensor_free(ts[i]);
    free(t->hp);
    free(t->hg);
    free(t->hs);
    free(t->hin);
    free(t->hdin);
    free(t->hout);
    free(t->R);
}

/* Uploads the host input and parameters, runs forward, reads the output. */
bsc_status lt_forward(lt *t)
{
    bsc_status st;
    if ((st = bsc_tensor_write(lh_ctx, &t->in, t->hin)) != BSC_OK)
        return st;
    if (t->n_train && (st = bsc_tensor_write(lh_ctx, &t->P, t->hp)) != BSC_OK)
        return st;
    if ((st = t->ops->forward(t->self, &t->pass, &t->in, &t->out)) != BSC_OK)
        return st;
    return bsc_tensor_read(lh_ctx, &t->out, t->hout);
}

/* dout = R; reads din and the parameter gradients back. */
void lt_backward(lt *t)
{
    CHECK(bsc_tensor_write(lh_ctx, &t->dout, t->R));
    CHECK(t->ops->backward(t->self, &t->pass, &t->in, &t->out, &t->dout, &t->din));
    CHECK(bsc_tensor_read(lh_ctx, &t->din, t->hdin));
    if (t->n_train)
        CHECK(bsc_tensor_read(lh_ctx, &t->G, t->hg));
}

void loss_open(lossh *h, size_t B, size_t K, const int *labels)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(bsc_registry_count(lh_reg, BSC_KIND_LOSS), 1);
    const bsc_type *lt = bsc_registry_find(lh_reg, BSC_KIND_LOSS, "softmax_cross_entropy", NULL);
    assert_non_null(lt);
    h->ops = lt->ops;
    h->B = B;
    h->K = K;
    int64_t k = (int64_t)K;
    bsc_loss_config cfg = {NULL, lh_shape_of(1, &k), (int)K};
    CHECK(h->ops->create(&cfg, &h->self));
    bsc_tensor ws = {0};
    CHECK(h->ops->bind(h->self, lh_ctx, B, &ws));
    int64_t zd[2] = {(int64_t)B, k}, bd = (int64_t)B;
    bsc_shape zs = lh_shape_of(2, zd), bs = lh_shape_of(1, &bd);
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_F32, &zs, &h->z));
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_F32, &zs, &h->dz));
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_I32, &bs, &h->y));
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_F32, &bs, &h->loss));
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_F32, &bs, &h->correct));
    h->hz = calloc(B * K, sizeof(float));
    h->hdz = calloc(B * K, sizeof(float));
    h->hloss = calloc(B, sizeof(float));
    h->hcorrect = calloc(B, sizeof(float));
    h->hy = calloc(B, sizeof(int));
    memcpy(h->hy, labels, B * sizeof(int));
    CHECK(bsc_tensor_write(lh_ctx, &h->y, h->hy));
}

void loss_close(lossh *h)
{
    h->ops->destroy(h->self);
    bsc_tensor_free(&h->z);
    bsc_tensor_free(&h->dz);
    bsc_tensor_free(&h->y);
    bsc_tensor_free(&h->loss);
    bsc_tensor_free(&h->correct);
    free(h->hz);
    free(h->hdz);
    free(h->hloss);
    free(h->hcorrect);
    free(h->hy);
}

bsc_status loss_forward(lossh *h)
{
    bsc_status st;
    if ((st = bsc_tensor_write(lh_ctx, &h->z, h->hz)) != BSC_OK ||
        (st = h->ops->forward(h->self, h->B, &h->z, &h->y, &h->loss, &h->correct)) != BSC_OK ||
        (st = bsc_tensor_read(lh_ctx, &h->loss, h->hloss)) != BSC_OK)
        return st;
    return bsc_tensor_read(lh_ctx, &h->correct, h->hcorrect);
}

/* Pooling inputs are distinct and at least 0.05 apart, so a +-1e-2 step never
 * changes which cell wins a window. */
void lt_spread_inputs(lt *t, uint64_t seed)
{
    size_t n = t->batch * t->in_n;
    uint64_t rng = seed;
    for (size_t i = 0; i < n; i++)
        t->hin[i] = (float)i * 0.05f - 2.0f;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)(gc_next(&rng) % (i + 1));
        float v = t->hin[i];
        t->hin[i] = t->hin[j];
        t->hin[j] = v;
    }
}

