/* Exact Hessian-vector products of a model (bsc_model_hvp, the
 * R-operator pass of runtime/model/hvp.c): against the dense Hessian of a
 * tiny model (finite differences of its gradient, column by column) and
 * against its own transpose; what happens without the op (the model names
 * the layer that lacks it, the registry rejects half of it). Each layer's
 * own op is checked against finite differences in test_layers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batchscope/batchscope.h"
#include "gradcheck.h"
#include "layerh.h"
#include "ropcheck.h"

/* ------------------------------------------------------------ the model */

typedef struct tm {
    bsc_node *root;
    bsc_component *layers;
    size_t n;
    bsc_model *m;
    size_t B, in_n, np;
    bsc_tensor x, y, v, hv, g;
    float *hx, *hp;
    int *hy;
} tm;

/* A model of the `yaml` layer list for [C, H, W] inputs, K classes, bound
 * for B rows; random inputs, labels, parameters and running statistics. */
static void tm_open(tm *t, const char *yaml, int C, int H, int W, int K, size_t B,
                    uint64_t seed)
{
    memset(t, 0, sizeof *t);
    CHECK(bsc_node_parse_string("model.yaml", yaml, &t->root));
    assert_int_equal(t->root->kind, BSC_NODE_SEQ);
    t->n = t->root->n;
    t->layers = calloc(t->n, sizeof *t->layers);
    for (size_t i = 0; i < t->n; i++) {
        t->layers[i].node = t->root->items[i];
        t->layers[i].type = bsc_node_get(t->root->items[i], "type")->value;
    }
    int64_t dim[3] = {C, H, W};
    bsc_shape in = bsc_shape_make(3, dim);
    CHECK(bsc_model_create(lh_reg, t->layers, t->n, NULL, &in, K, &t->m));
    CHECK(bsc_model_bind(t->m, lh_ctx, B));
    t->B = B;
    t->in_n = (size_t)C * H * W;
    t->np = bsc_model_n_params(t->m);
    size_t ns = bsc_model_n_state(t->m);
    lh_alloc_f32(&t->x, B * t->in_n);
    int64_t bd = (int64_t)B;
    bsc_shape bs = bsc_shape_make(1, &bd);
    CHECK(bsc_tensor_alloc(lh_ctx, BSC_I32, &bs, &t->y));
    lh_alloc_f32(&t->v, t->np);
    lh_alloc_f32(&t->hv, t->np);
    lh_alloc_f32(&t->g, t->np);
    t->hx = rop_fzalloc(B * t->in_n);
    t->hp = rop_fzalloc(t->np);
    t->hy = calloc(B, sizeof(int));
    float *hs = rop_fzalloc(ns);
    uint64_t rng = seed;
    gc_fill(&rng, t->hx, B * t->in_n, -1.0f, 1.0f, 0.0f);
    for (size_t i = 0; i < B; i++)
        t->hy[i] = (int)(gc_next(&rng) % (uint64_t)K);
    CHECK(bsc_model_init_host(t->m, seed, "torch", t->hp, hs));
    for (size_t i = 0; i < bsc_model_n_tensors(t->m); i++) {
        const bsc_model_tensor *mt = bsc_model_tensor_at(t->m, i);
        if (mt->spec.role != BSC_ROLE_STATE)
            continue;
        int var = !strcmp(mt->spec.name, "running_var");
        for (size_t k = 0; k < mt->numel; k++)
            hs[mt->offset + k] = var ? gc_uniform(&rng, 0.3f, 2.0f) : gc_uniform(&rng, -0.5f, 0.5f);
    }
    CHECK(bsc_tensor_write(lh_ctx, &t->x, t->hx));
    CHECK(bsc_tensor_write(lh_ctx, &t->y, t->hy));
    CHECK(bsc_tensor_write(lh_ctx, bsc_model_params(t->m), t->hp));
    if (ns)
        CHECK(bsc_tensor_write(lh_ctx, bsc_model_state(t->m), hs));
    free(hs);
}

static void tm_close(tm *t)
{
    bsc_model_free(t->m);
    bsc_tensor *ts[] = {&t->x, &t->y, &t->v, &t->hv, &t->g};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        bsc_tensor_free(ts[i]);
    free(t->layers);
    bsc_node_free(t->root);
    free(t->hx);
    free(t->hp);
    free(t->hy);
}

static bsc_pass tm_pass(const tm *t)
{
    return (bsc_pass){.batch = t->B, .training = 0, .seed = 3, .step = 1};
}

/* H e_j for every j by the R-operator: H[j * np + i]. */
static void tm_hessian_rop(tm *t, double *H)
{
    float *e = rop_fzalloc(t->np), *col = rop_fzalloc(t->np);
    bsc_pass p = tm_pass(t);
    for (size_t j = 0; j < t->np; j++) {
        memset(e, 0, t->np * sizeof(float));
        e[j] = 1.0f;
        CHECK(bsc_tensor_write(lh_ctx, &t->v, e));
        CHECK(bsc_model_hvp(t->m, &p, &t->x, &t->y, &t->v, 1.0f / (float)t->B, &t->hv));
        CHECK(bsc_tensor_read(lh_ctx, &t->hv, col));
        for (size_t i = 0; i < t->np; i++)
            H[j * t->np + i] = col[i];
    }
    free(e);
    free(col);
}

/* The gradient of the mean loss at params p (host floats), in double. */
static void tm_grad(tm *t, const float *p, double *g)
{
    float *hg = rop_fzalloc(t->np);
    bsc_pass pass = tm_pass(t);
    CHECK(bsc_tensor_write(lh_ctx, bsc_model_params(t->m), p));
    CHECK(bsc_model_forward_loss(t->m, &pass, &t->x, &t->y));
    CHECK(bsc_model_backward(t->m, &pass, &t->x, &t->y, 1.0f / (float)t->B));
    CHECK(bsc_tensor_read(lh_ctx, bsc_model_grads(t->m), hg));
    for (size_t i = 0; i < t->np; i++)
        g[i] = hg[i];
    free(hg);
}

/* Smooth layers only (conv, avgpool, batchnorm, tanh, sigmoid, dropout in
 * eval, dense): a finite difference of the gradient crosses no kink, so
 * the dense Hessian it gives is a fair reference; relu and max pooling are
 * checked layer by layer above, and end to end against PyTorch
 * (test_analyses). */
static const char *SMOOTH_MODEL =
    "- {type: conv2d, filters: 2, kernel_size: 2}\n"
    "- {type: avgpool2d, kernel_size: 2, stride: 1}\n"
    "- {type: batchnorm}\n"
    "- {type: tanh}\n"
    "- {type: flatten}\n"
    "- {type: dense, units: 6}\n"
    "- {type: sigmoid}\n"
    "- {type: dropout, p: 0.3}\n"
    "- {type: dense, units: 3}\n";

static void test_model_hvp_dense_hessian(void **state)
{
    (void)state;
    tm t;
    tm_open(&t, SMOOTH_MODEL, 1, 5, 5, 3, 7, 41);
    char why[160];
    assert_true(bsc_model_has_hvp(t.m, why, sizeof why));
    size_t n = t.np;
    double *H = calloc(n * n, sizeof(double)), *F = calloc(n * n, sizeof(double));
    double *gp = calloc(n, sizeof(double)), *gm = calloc(n, sizeof(double));
    float *p = rop_fzalloc(n);
    tm_hessian_rop(&t, H);
    /* Column j of the finite-difference Hessian. */
    const double h = 1e-2;
    double scale = 0;
    for (size_t j = 0; j < n; j++) {
        memcpy(p, t.hp, n * sizeof(float));
        p[j] = (float)(t.hp[j] + h);
        double hp = (double)p[j] - t.hp[j];
        tm_grad(&t, p, gp);
        p[j] = (float)(t.hp[j] - h);
        double hm = t.hp[j] - (double)p[j];
        tm_grad(&t, p, gm);
        for (size_t i = 0; i < n; i++) {
            F[j * n + i] = (gp[i] - gm[i]) / (hp + hm);
            scale = fmax(scale, fabs(F[j * n + i]));
        }
    }
    assert_true(scale > 0);
    double worst = 0, asym = 0;
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < n; i++) {
            worst = fmax(worst, fabs(H[j * n + i] - F[j * n + i]));
            asym = fmax(asym, fabs(H[j * n + i] - H[i * n + j]));
        }
    if (!(worst <= 2e-3 * scale))
        fail_msg("R-operator Hessian vs finite differences: max error %.3g of max |H| %.3g",
                 worst, scale);
    /* The exact operator is symmetric to float rounding; finite differences
     * are not (they are off by their truncation and rounding). */
    if (!(asym <= 1e-5 * scale))
        fail_msg("R-operator Hessian not symmetric: max |H - H^T| %.3g of %.3g", asym, scale);
    free(H);
    free(F);
    free(gp);
    free(gm);
    free(p);
    tm_close(&t);
}

/* A ReLU network with max pooling: its exact Hessian is symmetric (the
 * operator of each layer is the transpose of its own linearization), and a
 * direction's product is linear in the direction. */
static void test_model_hvp_relu_symmetric(void **state)
{
    (void)state;
    tm t;
    tm_open(&t,
            "- {type: conv2d, filters: 3, kernel_size: 3, padding: 1}\n"
            "- {type: relu}\n"
            "- {type: maxpool2d, kernel_size: 2}\n"
            "- {type: flatten}\n"
            "- {type: dense, units: 5}\n"
            "- {type: leaky_relu}\n"
            "- {type: dense, units: 4}\n",
            2, 4, 4, 4, 6, 43);
    size_t n = t.np;
    double *H = calloc(n * n, sizeof(double));
    tm_hessian_rop(&t, H);
    double scale = 0, asym = 0;
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < n; i++) {
            scale = fmax(scale, fabs(H[j * n + i]));
            asym = fmax(asym, fabs(H[j * n + i] - H[i * n + j]));
        }
    assert_true(scale > 0);
    if (!(asym <= 1e-5 * scale))
        fail_msg("ReLU network: max |H - H^T| %.3g of %.3g", asym, scale);
    /* H (a + 2b) = H a + 2 H b for two random directions. */
    float *a = rop_fzalloc(n), *b = rop_fzalloc(n), *c = rop_fzalloc(n), *r = rop_fzalloc(n);
    uint64_t rng = 5;
    gc_fill(&rng, a, n, -1, 1, 0);
    gc_fill(&rng, b, n, -1, 1, 0);
    for (size_t i = 0; i < n; i++)
        c[i] = a[i] + 2 * b[i];
    bsc_pass p = tm_pass(&t);
    CHECK(bsc_tensor_write(lh_ctx, &t.v, c));
    CHECK(bsc_model_hvp(t.m, &p, &t.x, &t.y, &t.v, 1.0f / (float)t.B, &t.hv));
    CHECK(bsc_tensor_read(lh_ctx, &t.hv, r));
    for (size_t i = 0; i < n; i++) {
        double want = 0;
        for (size_t j = 0; j < n; j++)
            want += H[j * n + i] * ((double)a[j] + 2.0 * b[j]);
        if (!(fabs(r[i] - want) <= 1e-5 * scale * sqrt((double)n)))
            fail_msg("H(a + 2b)[%zu] = %.7g, H a + 2 H b = %.7g", i, r[i], want);
    }
    free(a);
    free(b);
    free(c);
    free(r);
    free(H);
    tm_close(&t);
}

/* A layer without the op: the model says which, and the product refuses
 * with BSC_ERR_UNSUPPORTED instead of computing something else. Layers
 * before the first trained one need no op (their inputs are constant). */
static void test_model_without_rop(void **state)
{
    (void)state;
    bsc_registry *r = NULL;
    CHECK(bsc_registry_new(&r));
    CHECK(bsc_registry_load_path(r, BSC_PLUGIN_BUILD_DIR "/bsc_layers.so", "test"));
    CHECK(bsc_registry_load_path(r, BSC_TEST_PLUGIN_DIR "/good_a.so", "test"));
    static const char *const models[2] = {
        "- {type: tp_identity}\n- {type: flatten}\n- {type: dense, units: 3}\n",
        "- {type: flatten}\n- {type: dense, units: 3}\n- {type: tp_identity}\n"};
    for (int k = 0; k < 2; k++) {
        bsc_node *root = NULL;
        CHECK(bsc_node_parse_string("m.yaml", models[k], &root));
        bsc_component c[3];
        for (size_t i = 0; i < 3; i++) {
            c[i].node = root->items[i];
            c[i].type = bsc_node_get(root->items[i], "type")->value;
        }
        int64_t dim[3] = {1, 2, 2};
        bsc_shape in = bsc_shape_make(3, dim);
        bsc_model *m = NULL;
        CHECK(bsc_model_create(r, c, 3, NULL, &in, 3, &m));
        char why[160];
        int has = bsc_model_has_hvp(m, why, sizeof why);
        if (k == 0) {
            assert_true(has);
        } else {
            assert_false(has);
            assert_string_equal(why, "layer 2 (tp_identity) has no R-operator");
        }
        bsc_model_free(m);
        bsc_node_free(root);
    }
    /* Half an R-operator is a plugin error at load time. */
    bsc_status st = bsc_registry_load_path(r, BSC_TEST_PLUGIN_DIR "/half_rop.so", "test");
    assert_int_equal(st, BSC_ERR_PLUGIN);
    assert_non_null(strstr(bsc_last_error(), "r_forward() without r_backward()"));
    bsc_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_hvp_dense_hessian),
        cmocka_unit_test(test_model_hvp_relu_symmetric),
        cmocka_unit_test(test_model_without_rop),
    };
    return cmocka_run_group_tests(tests, lh_group_setup, lh_group_teardown);
}
