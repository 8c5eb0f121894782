/* The layers plugin (plugins/layers, cl/layers/): every layer and the loss
 * against central finite differences -- their gradients, and their
 * R-operator (exact Hessian-vector products, support/ropcheck.h) against
 * differences of those gradients -- small hand-computed forwards,
 * batchnorm's running statistics, dropout's mask (the host's Philox stream),
 * dense's per-example gradient norms, and option errors with their
 * file:line:col.
 *
 * The build tree's plugin is loaded through the registry, as the host
 * does, so that ops the plugin leaves NULL read as the host's defaults. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "batchscope/batchscope.h"
#include "batchscope/rng.h"
#include "gradcheck.h"
#include "layerh.h"
#include "ropcheck.h"

/* Finite-difference bound: |fd - an| / max(|fd|, |an|, 1e-3) <= 2e-2, with
 * a step of 1e-2 on float32 values of order one (the forward is float32 on
 * the device; the difference quotient is formed in double on the host). */
#define GC_TOL 2e-2
#define GC_STEP 1e-2
#define GC_MAX_COORDS 200
/* Forward results against hand computations done in double. */
#define FWD_TOL 1e-5

/* L = sum(out * R) in double. */
static int lt_objective(void *user, double *value)
{
    lt *t = user;
    if (lt_forward(t) != BSC_OK)
        return 1;
    double s = 0.0;
    for (size_t i = 0; i < t->batch * t->out_n; i++)
        s += (double)t->hout[i] * t->R[i];
    *value = s;
    return 0;
}

static void expect_gc(gc_result r, const char *what)
{
    if (r.error)
        fail_msg("%s: forward failed: %s", what, bsc_last_error());
    if (r.failed)
        fail_msg("%s: %zu of %zu coordinates over %g; worst at %zu: fd %.6g analytic %.6g "
                 "(rel %.3g)", what, r.failed, r.checked, GC_TOL, r.worst_index, r.worst_fd,
                 r.worst_an, r.worst);
    assert_true(r.checked > 0);
}

/* Finite differences of L = sum(out * R) w.r.t. the input and every trainable
 * parameter against backward's din and gradients, with a step of `step`. */
static void gradcheck_layer_step(lt *t, const char *what, double step)
{
    char buf[160];
    assert_int_equal(lt_forward(t), BSC_OK);
    lt_backward(t);
    float *din = malloc(t->batch * t->in_n * sizeof(float));
    float *g = malloc((t->n_train + 1) * sizeof(float));
    memcpy(din, t->hdin, t->batch * t->in_n * sizeof(float));
    memcpy(g, t->hg, t->n_train * sizeof(float));
    snprintf(buf, sizeof buf, "%s: d/d input", what);
    expect_gc(gc_check(t->hin, t->batch * t->in_n, din, step, GC_TOL, GC_MAX_COORDS, 11,
                       lt_objective, t), buf);
    if (t->n_train) {
        snprintf(buf, sizeof buf, "%s: d/d params", what);
        expect_gc(gc_check(t->hp, t->n_train, g, step, GC_TOL, GC_MAX_COORDS, 12,
                           lt_objective, t), buf);
    }
    free(din);
    free(g);
}

static void gradcheck_layer(lt *t, const char *what)
{
    gradcheck_layer_step(t, what, GC_STEP);
}

/* conv2d's output is linear in each input and each parameter alone, so a
 * central difference has no truncation error at any step: a step of 0.5
 * keeps the float32 forward's rounding (about 1e-6 of the output with
 * Winograd, which GC_STEP would turn into a 1e-4 error in the quotient) from
 * swamping the small gradients. */
#define GC_LINEAR_STEP 0.5

static void assert_near(double got, double want, double tol, const char *what, size_t i)
{
    if (!(fabs(got - want) <= tol * (1.0 + fabs(want))))
        fail_msg("%s[%zu]: got %.8g, want %.8g", what, i, got, want);
}

/* ------------------------------------------------------------ gradient checks */

static void test_dense_grad(void **state)
{
    (void)state;
    lt t;
    int64_t d[1] = {4};
    lt_open(&t, "dense", "{type: dense, units: 3}", 1, d, 3, 1);
    gradcheck_layer(&t, "dense");
    rop_check(&t, "dense", 1, 1);
    rop_check(&t, "dense", 0, 2);
    lt_close(&t);
    lt_open(&t, "dense", "{type: dense, units: 2, bias: false}", 1, d, 3, 2);
    assert_int_equal(t.np, 1);
    gradcheck_layer(&t, "dense without bias");
    rop_check(&t, "dense without bias", 1, 3);
    lt_close(&t);
}

static const char *const act_types[] = {"relu", "leaky_relu", "tanh", "sigmoid", "flatten"};
static const char *const act_yaml[] = {"{type: relu}", "{type: leaky_relu, negative_slope: 0.2}",
                                       "{type: tanh}", "{type: sigmoid}", "{type: flatten}"};

/* Where the context's GEMMs run on the host BLAS, the activations and the
 * loss of a training step run as host tasks (host_task.h:
 * bsc_host_elementwise) unless $BATCHSCOPE_HOST_ELEMENTWISE is 0; the
 * checks below run on both paths (the same one twice elsewhere). */
static const char *const paths[] = {"1", "0"};
static void use_path(const char *p)
{
    setenv("BATCHSCOPE_HOST_ELEMENTWISE", p, 1);
}

static void test_activation_grads(void **state)
{
    (void)state;
    int64_t d[3] = {2, 3, 2};
    for (size_t k = 0; k < 2; k++) {
        use_path(paths[k]);
        for (size_t i = 0; i < 5; i++) {
            lt t;
            char what[64];
            snprintf(what, sizeof what, "%s (host elementwise %s)", act_types[i], paths[k]);
            /* Inputs at least 0.05 from relu's kink; steps move them by 1e-2. */
            lt_open(&t, act_types[i], act_yaml[i], 3, d, 3, 10 + i);
            gradcheck_layer(&t, what);
            rop_check(&t, act_types[i], 1, 10 + i);
            lt_close(&t);
        }
    }
    unsetenv("BATCHSCOPE_HOST_ELEMENTWISE");
}

/* The host tasks against the kernels on the same inputs: every activation's
 * forward and input gradient over 1000 rows (several parts on the host
 * threads, the last one short), and the loss's row losses, correct flags
 * and gradient. */
static void test_host_elementwise_matches_kernels(void **state)
{
    (void)state;
    if (bsc_gemm_active(lh_ctx) != BSC_GEMM_HOST)
        skip();
    int64_t d[1] = {37};
    for (size_t i = 0; i < 5; i++) {
        lt t;
        lt_open(&t, act_types[i], act_yaml[i], 1, d, 1000, 40 + i);
        size_t n = t.batch * t.out_n;
        float *out[2], *din[2];
        for (size_t k = 0; k < 2; k++) {
            use_path(paths[k]);
            memset(t.hout, 0, n * sizeof(float));
            memset(t.hdin, 0, n * sizeof(float));
            CHECK(lt_forward(&t));
            lt_backward(&t);
            out[k] = malloc(n * sizeof(float));
            din[k] = malloc(n * sizeof(float));
            memcpy(out[k], t.hout, n * sizeof(float));
            memcpy(din[k], t.hdin, n * sizeof(float));
        }
        for (size_t j = 0; j < n; j++) {
            assert_near(out[0][j], out[1][j], 1e-6, act_types[i], j);
            assert_near(din[0][j], din[1][j], 1e-6, act_types[i], j);
        }
        for (size_t k = 0; k < 2; k++) {
            free(out[k]);
            free(din[k]);
        }
        lt_close(&t);
    }
    /* 3001 rows: more than a part's grain (8192 logits), so the rows split
     * unevenly over the host threads. */
    enum { B = 3001, K = 7 };
    static int labels[B];
    for (int i = 0; i < B; i++)
        labels[i] = i % 11 == 5 ? -1 : i % K;   /* some out of range: NaN, never correct */
    lossh h;
    loss_open(&h, B, K, labels);
    uint64_t rng = 77;
    gc_fill(&rng, h.hz, B * K, -3.0f, 3.0f, 0.0f);
    static float loss[2][B], correct[2][B], dz[2][B * K], alone[B];
    for (size_t k = 0; k < 2; k++) {
        use_path(paths[k]);
        CHECK(loss_forward(&h));
        CHECK(h.ops->backward(h.self, h.B, &h.z, &h.y, 0.25f, &h.dz));
        CHECK(bsc_tensor_read(lh_ctx, &h.dz, h.hdz));
        memcpy(loss[k], h.hloss, sizeof loss[k]);
        memcpy(correct[k], h.hcorrect, sizeof correct[k]);
        memcpy(dz[k], h.hdz, sizeof dz[k]);
        /* Without a correct tensor: the same losses. */
        CHECK(bsc_tensor_fill(lh_ctx, &h.loss, -1.0f));
        CHECK(h.ops->forward(h.self, h.B, &h.z, &h.y, &h.loss, NULL));
        CHECK(bsc_tensor_read(lh_ctx, &h.loss, alone));
        assert_memory_equal(alone, loss[k], sizeof alone);
    }
    for (size_t i = 0; i < B; i++) {
        if (labels[i] < 0)
            assert_true(isnan(loss[0][i]) && isnan(loss[1][i]));
        else
            assert_near(loss[0][i], loss[1][i], 1e-6, "ce loss", i);
        assert_near(correct[0][i], correct[1][i], 0, "ce correct", i);
    }
    for (size_t i = 0; i < (size_t)B * K; i++)
        assert_near(dz[0][i], dz[1][i], 1e-6, "ce dz", i);
    loss_close(&h);
    unsetenv("BATCHSCOPE_HOST_ELEMENTWISE");
}

static void test_conv2d_grad(void **state)
{
    (void)state;
    int64_t d[3] = {2, 5, 5};
    lt t;
    lt_open(&t, "conv2d", "{type: conv2d, filters: 3, kernel_size: 3, algorithm: im2col}", 3, d,
            3, 3);
    assert_int_equal(t.out_shape.dim[1], 3);
    gradcheck_layer(&t, "conv2d k3");
    rop_check(&t, "conv2d k3", 1, 4);
    rop_check(&t, "conv2d k3", 0, 5);
    lt_close(&t);
    lt_open(&t, "conv2d",
            "{type: conv2d, filters: 2, kernel_size: [3, 2], stride: 2, padding: 1, bias: false}",
            3, d, 3, 4);
    assert_int_equal(t.out_shape.dim[1], 3);
    assert_int_equal(t.out_shape.dim[2], 3);
    gradcheck_layer(&t, "conv2d k3x2 s2 p1");
    rop_check(&t, "conv2d k3x2 s2 p1", 1, 6);
    lt_close(&t);
    /* Q = 8*4*4 = 128 weights per filter and 64 filters are whole CLBlast
     * tiles: the layer's unpadded path (no weight copies, dW straight into
     * the gradient buffer). */
    int64_t d8[3] = {8, 6, 6};
    lt_open(&t, "conv2d",
            "{type: conv2d, filters: 64, kernel_size: 4, padding: 1, algorithm: im2col}", 3,
            d8, 2, 8);
    assert_int_equal(t.out_shape.dim[1], 5);
    gradcheck_layer(&t, "conv2d 8x6x6 f64 k4 p1");
    rop_check(&t, "conv2d 8x6x6 f64 k4 p1", 1, 7);
    lt_close(&t);
}

/* ------------------------------------------------ conv2d by Winograd */

/* out[b][f][oy][ox] of a stride-1 convolution in double, from t's host
 * input and parameters (weight [F][C][KH][KW], then bias). */
static void conv_reference(const lt *t, int C, int H, int W, int F, int KH, int KW, int PH,
                           int PW, int bias, double *out)
{
    int OH = H + 2 * PH - KH + 1, OW = W + 2 * PW - KW + 1;
    const float *w = t->hp, *bv = t->hp + (size_t)F * C * KH * KW;
    for (size_t b = 0; b < t->batch; b++)
        for (int f = 0; f < F; f++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double s = bias ? bv[f] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < KH; i++)
                            for (int k = 0; k < KW; k++) {
                                int y = oy + i - PH, x = ox + k - PW;
                                if (y >= 0 && y < H && x >= 0 && x < W)
                                    s += (double)w[((f * C + c) * KH + i) * KW + k] *
                                         t->hin[((b * C + c) * H + y) * W + x];
                            }
                    out[((b * F + f) * OH + oy) * OW + ox] = s;
                }
}

static double max_abs(const float *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* The largest |a - b| over n, relative to max |b|. */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs((double)a[i] - b[i]) > m ? fabs((double)a[i] - b[i]) : m;
    return m / max_abs(b, n);
}

/* Winograd's forward, input gradient and parameter gradients against the
 * im2col path's on the same input and parameters (lt_open's fill depends
 * on the seed alone), both against a float64 direct convolution, and its
 * gradients against finite differences. The sizes leave partial tiles at
 * the bottom and right, rectangular kernels use a tile of each shape, and
 * a batch of 9 cuts into parts of unequal size. The bounds: 4e-6 of the
 * largest output against float64 (measured 0.8e-6 to 2.4e-6, im2col 1.5e-7
 * to 3.6e-7), 1e-5 between the two paths' gradients (measured up to
 * 2.3e-6); a wrong transform entry or tile offset gives 1e-2 or more. The
 * R-operator stays on im2col (conv2d.c), so the layers above check it on
 * im2col layers. */
static void test_conv2d_winograd(void **state)
{
    (void)state;
    static const struct {
        int C, H, W, F, KH, KW, PH, PW, bias;
    } cases[] = {
        {4, 9, 11, 6, 5, 5, 2, 2, 1}, {3, 7, 7, 5, 3, 3, 1, 1, 1}, {2, 8, 6, 3, 2, 4, 0, 1, 0},
        {5, 10, 9, 4, 5, 3, 0, 2, 1}, {8, 6, 6, 16, 4, 4, 1, 1, 1},
    };
    /* Without the host BLAS (rusticl, GPUs) there is no Winograd path;
     * test_study checks that asking for it there is refused. */
    if (bsc_gemm_active(lh_ctx) != BSC_GEMM_HOST)
        skip();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[2][200], what[80];
        int64_t d[3] = {cases[i].C, cases[i].H, cases[i].W};
        const char *algo[2] = {"im2col", "winograd"};
        lt t[2];
        for (int a = 0; a < 2; a++) {
            snprintf(yaml[a], sizeof yaml[a],
                     "{type: conv2d, filters: %d, kernel_size: [%d, %d], padding: [%d, %d], "
                     "bias: %s, algorithm: %s}",
                     cases[i].F, cases[i].KH, cases[i].KW, cases[i].PH, cases[i].PW,
                     cases[i].bias ? "true" : "false", algo[a]);
            lt_open(&t[a], "conv2d", yaml[a], 3, d, 9, 40 + i);
            assert_int_equal(lt_forward(&t[a]), BSC_OK);
            lt_backward(&t[a]);
        }
        snprintf(what, sizeof what, "case %zu (%dx%d kernel)", i, cases[i].KH, cases[i].KW);
        size_t n_out = t[0].batch * t[0].out_n;
        double *ref = malloc(n_out * sizeof *ref);
        float *reff = malloc(n_out * sizeof *reff);
        conv_reference(&t[1], cases[i].C, cases[i].H, cases[i].W, cases[i].F, cases[i].KH,
                       cases[i].KW, cases[i].PH, cases[i].PW, cases[i].bias, ref);
        for (size_t k = 0; k < n_out; k++)
            reff[k] = (float)ref[k];
        double e_w = rel_diff(t[1].hout, reff, n_out), e_i = rel_diff(t[0].hout, reff, n_out);
        double e_din = rel_diff(t[1].hdin, t[0].hdin, t[0].batch * t[0].in_n);
        double e_g = rel_diff(t[1].hg, t[0].hg, t[0].n_train);
        if (getenv("BATCHSCOPE_TEST_VERBOSE"))
            printf("%s: out %.3g (im2col %.3g), din %.3g, grads %.3g\n", what, e_w, e_i, e_din,
                   e_g);
        if (!(e_w <= 4e-6 && e_din <= 1e-5 && e_g <= 1e-5))
            fail_msg("%s: winograd against float64 %.3g (im2col %.3g), din %.3g, grads %.3g",
                     what, e_w, e_i, e_din, e_g);
        free(ref);
        free(reff);
        gradcheck_layer_step(&t[1], what, GC_LINEAR_STEP);
        lt_close(&t[0]);
        lt_close(&t[1]);
    }
}

static void test_pool_grads(void **state)
{
    (void)state;
    int64_t d[3] = {2, 5, 5};
    lt t;
    lt_open(&t, "maxpool2d", "{type: maxpool2d, kernel_size: 2}", 3, d, 3, 5);
    assert_int_equal(t.out_shape.dim[1], 2);
    lt_spread_inputs(&t, 5);
    gradcheck_layer(&t, "maxpool2d k2");
    rop_check(&t, "maxpool2d k2", 1, 8);
    lt_close(&t);
    /* Overlapping windows: an input cell may win several of them. */
    lt_open(&t, "maxpool2d", "{type: maxpool2d, kernel_size: 3, stride: 1, padding: 1}", 3, d,
            3, 6);
    assert_int_equal(t.out_shape.dim[1], 5);
    lt_spread_inputs(&t, 6);
    gradcheck_layer(&t, "maxpool2d k3 s1 p1");
    rop_check(&t, "maxpool2d k3 s1 p1", 1, 9);
    lt_close(&t);
    lt_open(&t, "avgpool2d", "{type: avgpool2d, kernel_size: 3, stride: 2, padding: 1}", 3, d,
            3, 7);
    gradcheck_layer(&t, "avgpool2d k3 s2 p1");
    rop_check(&t, "avgpool2d k3 s2 p1", 1, 10);
    lt_close(&t);
}

static void test_dropout_grad(void **state)
{
    (void)state;
    int64_t d[1] = {10};
    lt t;
    /* Training mode with a fixed (seed, step): the mask is the same on every
     * forward, so the layer is a fixed linear map the check can difference. */
    lt_open(&t, "dropout", "{type: dropout, p: 0.4}", 1, d, 3, 8);
    gradcheck_layer(&t, "dropout (training, fixed mask)");
    rop_check(&t, "dropout (training, fixed mask)", 1, 11);
    t.pass.training = 0;
    gradcheck_layer(&t, "dropout (eval)");
    rop_check(&t, "dropout (eval)", 1, 12);
    lt_close(&t);
}

/* Running statistics away from their initial 0 and 1, so that the eval
 * normalization is not the identity. */
static void random_running_stats(lt *t, uint64_t seed)
{
    uint64_t rng = seed;
    size_t C = t->n_state / 2;
    for (size_t c = 0; c < C; c++) {
        t->hs[c] = gc_uniform(&rng, -0.5f, 0.5f);
        t->hs[C + c] = gc_uniform(&rng, 0.3f, 2.0f);
    }
    CHECK(bsc_tensor_write(lh_ctx, &t->S, t->hs));
}

static void test_batchnorm_grad(void **state)
{
    (void)state;
    lt t;
    int64_t d3[3] = {2, 3, 3};
    lt_open(&t, "batchnorm", "{type: batchnorm}", 3, d3, 3, 9);
    assert_int_equal(t.np, 4);
    assert_int_equal(t.n_train, 4);
    assert_int_equal(t.n_state, 4);
    gradcheck_layer(&t, "batchnorm2d (training)");
    t.pass.training = 0;
    gradcheck_layer(&t, "batchnorm2d (eval)");
    /* The R-operator in eval mode (what the analyses use), with running
     * statistics that make the normalization more than the identity. */
    random_running_stats(&t, 9);
    gradcheck_layer(&t, "batchnorm2d (eval, running statistics)");
    rop_check(&t, "batchnorm2d (eval)", 1, 13);
    rop_check(&t, "batchnorm2d (eval)", 0, 14);
    /* Training mode: not supported, and it says so. */
    t.pass.training = 1;
    rop r;
    rop_open(&r, &t, 15);
    assert_int_equal(rop_run(&t, &r, 1), BSC_ERR_UNSUPPORTED);
    assert_non_null(strstr(bsc_last_error(), "eval mode"));
    rop_close(&r);
    lt_close(&t);
    int64_t d1[1] = {4};
    lt_open(&t, "batchnorm", "{type: batchnorm, momentum: 0.2, eps: 1e-3}", 1, d1, 5, 10);
    gradcheck_layer(&t, "batchnorm1d (training)");
    random_running_stats(&t, 10);
    t.pass.training = 0;
    rop_check(&t, "batchnorm1d (eval)", 1, 16);
    lt_close(&t);
}

/* ------------------------------------------------------------ the loss */

static int loss_objective(void *user, double *value)
{
    lossh *h = user;
    if (loss_forward(h) != BSC_OK)
        return 1;
    double s = 0.0;
    for (size_t i = 0; i < h->B; i++)
        s += h->hloss[i];
    *value = h->scale * s;
    return 0;
}

static void test_softmax_ce_grad(void **state)
{
    (void)state;
    static const int labels[3] = {0, 3, 2};
    for (size_t k = 0; k < 2; k++) {
        use_path(paths[k]);
        lossh h;
        uint64_t rng = 21;
        loss_open(&h, 3, 4, labels);
        gc_fill(&rng, h.hz, 12, -2.0f, 2.0f, 0.0f);
        h.scale = 1.0f / 3.0f;
        CHECK(bsc_tensor_write(lh_ctx, &h.z, h.hz));
        CHECK(h.ops->backward(h.self, h.B, &h.z, &h.y, h.scale, &h.dz));
        CHECK(bsc_tensor_read(lh_ctx, &h.dz, h.hdz));
        expect_gc(gc_check(h.hz, 12, h.hdz, GC_STEP, GC_TOL, GC_MAX_COORDS, 13,
                           loss_objective, &h),
                  paths[k][0] == '1' ? "softmax_cross_entropy (host elementwise)"
                                     : "softmax_cross_entropy (kernels)");
        loss_close(&h);
    }
    unsetenv("BATCHSCOPE_HOST_ELEMENTWISE");
}

static void test_softmax_ce_rop(void **state)
{
    (void)state;
    static const int labels[3] = {0, 3, 2};
    lossh h;
    uint64_t rng = 31;
    loss_open(&h, 3, 4, labels);
    gc_fill(&rng, h.hz, 12, -2.0f, 2.0f, 0.0f);
    float rz[12], rdz[12], z0[12];
    double want[12], plus[12];
    gc_fill(&rng, rz, 12, -1.0f, 1.0f, 0.0f);
    memcpy(z0, h.hz, sizeof z0);
    const float scale = 1.0f / 3.0f;
    bsc_tensor trz, trdz;
    lh_alloc_f32(&trz, 12);
    lh_alloc_f32(&trdz, 12);
    CHECK(bsc_tensor_write(lh_ctx, &h.z, h.hz));
    CHECK(bsc_tensor_write(lh_ctx, &trz, rz));
    assert_non_null(h.ops->r_backward);
    CHECK(h.ops->r_backward(h.self, h.B, &h.z, &trz, &h.y, scale, &trdz));
    CHECK(bsc_tensor_read(lh_ctx, &trdz, rdz));
    double *side[2] = {plus, want};
    for (int k = 0; k < 2; k++) {
        double sh = k == 0 ? ROP_STEP : -ROP_STEP;
        for (int i = 0; i < 12; i++)
            h.hz[i] = (float)(z0[i] + sh * rz[i]);
        CHECK(bsc_tensor_write(lh_ctx, &h.z, h.hz));
        CHECK(h.ops->backward(h.self, h.B, &h.z, &h.y, scale, &h.dz));
        CHECK(bsc_tensor_read(lh_ctx, &h.dz, h.hdz));
        for (int i = 0; i < 12; i++)
            side[k][i] = h.hdz[i];
    }
    for (int i = 0; i < 12; i++)
        want[i] = (plus[i] - want[i]) / (2 * ROP_STEP);
    rop_expect_close(rdz, want, 12, ROP_TOL, "softmax_cross_entropy", "R{dlogits}");
    bsc_tensor_free(&trz);
    bsc_tensor_free(&trdz);
    loss_close(&h);
}

/* ------------------------------------------------------------ hand-computed forwards */

static void test_dense_forward(void **state)
{
    (void)state;
    lt t;
    int64_t d[1] = {3};
    lt_open(&t, "dense", "{type: dense, units: 2}", 1, d, 2, 1);
    /* W = [[1, 2, 3], [-1, 0, 0.5]], b = [0.5, -1]; rows x = [1, 1, 1], [2, -1, 0]. */
    const float W[6] = {1, 2, 3, -1, 0, 0.5f}, b[2] = {0.5f, -1}, x[6] = {1, 1, 1, 2, -1, 0};
    const float want[4] = {6.5f, -1.5f, 0.5f, -3.0f};
    memcpy(t.hp, W, sizeof W);
    memcpy(t.hp + 6, b, sizeof b);
    memcpy(t.hin, x, sizeof x);
    CHECK(lt_forward(&t));
    for (size_t i = 0; i < 4; i++)
        assert_near(t.hout[i], want[i], FWD_TOL, "dense out", i);
    /* Parameter specs follow torch.nn.Linear. */
    assert_string_equal(t.spec[0].name, "weight");
    assert_int_equal(t.spec[0].shape.dim[0], 2);
    assert_int_equal(t.spec[0].shape.dim[1], 3);
    assert_int_equal(t.spec[0].filter_axis, 0);
    assert_int_equal(t.spec[0].fan_in, 3);
    assert_int_equal(t.spec[1].role, BSC_ROLE_BIAS);
    assert_int_equal(t.spec[1].filter_axis, -1);
    lt_close(&t);
}

static void test_conv2d_forward(void **state)
{
    (void)state;
    lt t;
    int64_t d[3] = {1, 3, 3};
    lt_open(&t, "conv2d", "{type: conv2d, filters: 1, kernel_size: 2}", 3, d, 1, 1);
    /* x = 1..9 row-major, kernel [[1, 0], [0, -1]]: out = x[i][j] - x[i+1][j+1]
     * = -4 everywhere, plus bias 0.5. */
    const float W[4] = {1, 0, 0, -1};
    memcpy(t.hp, W, sizeof W);
    t.hp[4] = 0.5f;
    for (int i = 0; i < 9; i++)
        t.hin[i] = (float)(i + 1);
    CHECK(lt_forward(&t));
    for (size_t i = 0; i < 4; i++)
        assert_near(t.hout[i], -3.5, FWD_TOL, "conv2d out", i);
    assert_int_equal(t.spec[0].shape.ndim, 4);
    assert_int_equal(t.spec[0].fan_in, 4);
    lt_close(&t);

    /* With padding 1 the corners see only x[0][0]'s and x[2][2]'s neighbours. */
    lt_open(&t, "conv2d", "{type: conv2d, filters: 1, kernel_size: 2, padding: 1, bias: false}",
            3, d, 1, 1);
    memcpy(t.hp, W, sizeof W);
    for (int i = 0; i < 9; i++)
        t.hin[i] = (float)(i + 1);
    CHECK(lt_forward(&t));
    assert_int_equal(t.out_shape.dim[1], 4);
    /* out[0][0] = 1*pad - x[0][0] = -1; out[3][3] = x[2][2] - 0 = 9. */
    assert_near(t.hout[0], -1.0, FWD_TOL, "conv2d padded", 0);
    assert_near(t.hout[15], 9.0, FWD_TOL, "conv2d padded", 15);
    assert_near(t.hout[5], -4.0, FWD_TOL, "conv2d padded", 5);
    lt_close(&t);
}

static void test_maxpool_forward(void **state)
{
    (void)state;
    lt t;
    int64_t d[3] = {1, 4, 4};
    lt_open(&t, "maxpool2d", "{type: maxpool2d, kernel_size: 2}", 3, d, 1, 1);
    const float x[16] = {1, 5, 2, 0,  3, 4, 8, 8,  -1, -2, 0, 0,  -3, -4, 0, 7};
    memcpy(t.hin, x, sizeof x);
    CHECK(lt_forward(&t));
    const float want[4] = {5, 8, -1, 7};
    for (size_t i = 0; i < 4; i++)
        assert_near(t.hout[i], want[i], 0, "maxpool out", i);
    /* Gradients go to the winners; the tie 8, 8 goes to the first 8. */
    const float R[4] = {1, 2, 3, 4};
    memcpy(t.R, R, sizeof R);
    lt_backward(&t);
    float want_din[16] = {0};
    want_din[1] = 1;
    want_din[6] = 2;
    want_din[8] = 3;
    want_din[15] = 4;
    for (size_t i = 0; i < 16; i++)
        assert_near(t.hdin[i], want_din[i], 0, "maxpool din", i);
    lt_close(&t);
}

static void test_relu_forward(void **state)
{
    (void)state;
    lt t;
    int64_t d[1] = {4};
    lt_open(&t, "relu", "{type: relu}", 1, d, 1, 1);
    const float x[4] = {-2, 0, 0.5f, 3};
    memcpy(t.hin, x, sizeof x);
    CHECK(lt_forward(&t));
    const float want[4] = {0, 0, 0.5f, 3};
    for (size_t i = 0; i < 4; i++)
        assert_near(t.hout[i], want[i], 0, "relu out", i);
    lt_close(&t);
}

static void test_batchnorm_forward_and_running_stats(void **state)
{
    (void)state;
    lt t;
    int64_t d[1] = {2};
    lt_open(&t, "batchnorm", "{type: batchnorm}", 1, d, 3, 1);
    /* Feature 0 = 1, 2, 3 (mean 2, biased var 2/3, unbiased 1); feature 1 =
     * 0, 0, 6 (mean 2, biased var 8, unbiased 12). gamma = 1, beta = 0. */
    const float x[6] = {1, 0, 2, 0, 3, 6};
    memcpy(t.hin, x, sizeof x);
    t.hp[0] = t.hp[1] = 1.0f;
    t.hp[2] = t.hp[3] = 0.0f;
    CHECK(lt_forward(&t));
    const double mean[2] = {2, 2}, var[2] = {2.0 / 3.0, 8}, unb[2] = {1, 12};
    for (size_t i = 0; i < 6; i++) {
        size_t c = i % 2;
        assert_near(t.hout[i], (x[i] - mean[c]) / sqrt(var[c] + 1e-5), FWD_TOL, "bn out", i);
    }
    /* running = 0.9 * initial + 0.1 * batch (initial mean 0, var 1). */
    CHECK(bsc_tensor_read(lh_ctx, &t.S, t.hs));
    for (size_t c = 0; c < 2; c++) {
        assert_near(t.hs[c], 0.1 * mean[c], FWD_TOL, "running_mean", c);
        assert_near(t.hs[2 + c], 0.9 + 0.1 * unb[c], FWD_TOL, "running_var", c);
    }
    /* A second step moves them again from there. */
    CHECK(lt_forward(&t));
    CHECK(bsc_tensor_read(lh_ctx, &t.S, t.hs));
    for (size_t c = 0; c < 2; c++) {
        assert_near(t.hs[c], 0.9 * 0.1 * mean[c] + 0.1 * mean[c], FWD_TOL, "running_mean 2", c);
        assert_near(t.hs[2 + c], 0.9 * (0.9 + 0.1 * unb[c]) + 0.1 * unb[c], FWD_TOL,
                    "running_var 2", c);
    }
    /* Eval uses them and leaves them alone. */
    t.pass.training = 0;
    CHECK(lt_forward(&t));
    float rs[4];
    CHECK(bsc_tensor_read(lh_ctx, &t.S, rs));
    for (size_t i = 0; i < 6; i++) {
        size_t c = i % 2;
        assert_near(t.hout[i], (x[i] - t.hs[c]) / sqrt(t.hs[2 + c] + 1e-5), FWD_TOL,
                    "bn eval out", i);
    }
    assert_memory_equal(rs, t.hs, sizeof rs);
    lt_close(&t);
}

static void softmax_ce_forward_on(const char *path);
static void test_softmax_ce_forward(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++)
        softmax_ce_forward_on(paths[k]);
    unsetenv("BATCHSCOPE_HOST_ELEMENTWISE");
}

static void softmax_ce_forward_on(const char *path)
{
    use_path(path);
    /* Rows: uniform logits (loss log 3); huge logits that overflow a naive
     * exp (loss ~0 for the max, 1000 for the next); a tie (first max wins
     * argmax); an out-of-range label (NaN loss, never correct, no read). */
    static const int labels[5] = {1, 0, 1, 1, 7};
    const float z[15] = {0, 0, 0,  1000, 0, -1000,  1000, 0, -1000,  2, 2, 1,  1, 2, 3};
    lossh h;
    loss_open(&h, 5, 3, labels);
    memcpy(h.hz, z, sizeof z);
    CHECK(loss_forward(&h));
    assert_near(h.hloss[0], log(3.0), FWD_TOL, "ce loss", 0);
    assert_near(h.hloss[1], 0.0, FWD_TOL, "ce loss", 1);
    assert_near(h.hloss[2], 1000.0, FWD_TOL, "ce loss", 2);
    assert_near(h.hloss[3], log(2 * exp(2.0) + exp(1.0)) - 2.0, FWD_TOL, "ce loss", 3);
    assert_true(isnan(h.hloss[4]));
    const float want_correct[5] = {0, 1, 0, 0, 0};
    for (size_t i = 0; i < 5; i++)
        assert_near(h.hcorrect[i], want_correct[i], 0, "ce correct", i);
    /* Backward of the huge row stays finite: softmax = one-hot at 0. */
    CHECK(h.ops->backward(h.self, h.B, &h.z, &h.y, 0.5f, &h.dz));
    CHECK(bsc_tensor_read(lh_ctx, &h.dz, h.hdz));
    assert_near(h.hdz[3], 0.0, FWD_TOL, "ce dz", 3);
    assert_near(h.hdz[6], 0.5, FWD_TOL, "ce dz", 6);
    assert_near(h.hdz[7], -0.5, FWD_TOL, "ce dz", 7);
    for (size_t i = 0; i < 15; i++)
        assert_true(isfinite(h.hdz[i]));
    loss_close(&h);
}

/* ------------------------------------------------------------ dropout */

static void test_dropout_mask(void **state)
{
    (void)state;
    lt t;
    int64_t d[1] = {1000};
    const double p = 0.3;
    lt_open(&t, "dropout", "{type: dropout, p: 0.3}", 1, d, 4, 3);
    size_t n = 4 * 1000;
    /* Eval is the identity. */
    t.pass.training = 0;
    CHECK(lt_forward(&t));
    assert_memory_equal(t.hout, t.hin, n * sizeof(float));
    /* Training: about p of the elements dropped, the rest scaled by 1/(1-p).
     * With n = 4000 the dropped fraction has sd sqrt(p(1-p)/n) ~ 0.0072; the
     * bound is over 5 sd. */
    t.pass.training = 1;
    CHECK(lt_forward(&t));
    float *first = malloc(n * sizeof(float));
    memcpy(first, t.hout, n * sizeof(float));
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (t.hout[i] == 0.0f)
            dropped++;
        else
            assert_near(t.hout[i], t.hin[i] / (1.0 - p), 1e-6, "dropout kept", i);
    }
    double frac = (double)dropped / (double)n;
    if (fabs(frac - p) > 0.04)
        fail_msg("dropped fraction %.4f, want %.2f +- 0.04", frac, p);
    /* Backward applies the same mask. */
    for (size_t i = 0; i < n; i++)
        t.R[i] = 1.0f;
    lt_backward(&t);
    for (size_t i = 0; i < n; i++)
        assert_near(t.hdin[i], first[i] == 0.0f ? 0.0 : 1.0 / (1.0 - p), 1e-6, "dropout din", i);
    /* Same (seed, step): the same mask; another step or seed: another. */
    CHECK(lt_forward(&t));
    assert_memory_equal(t.hout, first, n * sizeof(float));
    t.pass.step++;
    CHECK(lt_forward(&t));
    assert_true(memcmp(t.hout, first, n * sizeof(float)) != 0);
    /* The mask is the host RNG's dropout stream (rng.h): layer 2 (lt_open's
     * index), stream = step, block = element / 4 + (layer << 32). */
    t.pass.step--;
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = 4 * ((uint64_t)(i / 4) + ((uint64_t)2 << 32)) + i % 4;
        float u = bsc_rng_uniform(t.pass.seed, BSC_RNG_DROPOUT, (uint32_t)t.pass.step, idx);
        int keep = u >= (float)p;
        if (keep != (first[i] != 0.0f))
            fail_msg("dropout element %zu: device %s, host stream %s", i,
                     first[i] != 0.0f ? "keeps" : "drops", keep ? "keeps" : "drops");
    }
    t.pass.seed++;
    CHECK(lt_forward(&t));
    assert_true(memcmp(t.hout, first, n * sizeof(float)) != 0);
    free(first);
    lt_close(&t);
}

/* ------------------------------------------------------------ per-example norms */

static void test_dense_per_example_sqnorm(void **state)
{
    (void)state;
    const char *yaml[2] = {"{type: dense, units: 3}", "{type: dense, units: 3, bias: false}"};
    for (int v = 0; v < 4; v++) {
        use_path(paths[v / 2]);   /* the host task, then the kernel */
        lt t;
        int64_t d[1] = {5};
        lt_open(&t, "dense", yaml[v % 2], 1, d, 4, 30 + v % 2);
        assert_non_null(t.ops->per_example_sqnorm);
        CHECK(lt_forward(&t));
        /* acc starts at 1 to show the hook adds rather than overwrites. */
        bsc_tensor acc;
        lh_alloc_f32(&acc, t.batch);
        float ones[4] = {1, 1, 1, 1}, got[4];
        CHECK(bsc_tensor_write(lh_ctx, &acc, ones));
        CHECK(bsc_tensor_write(lh_ctx, &t.dout, t.R));
        CHECK(t.ops->per_example_sqnorm(t.self, &t.pass, &t.in, &t.dout, &acc));
        CHECK(bsc_tensor_read(lh_ctx, &acc, got));
        /* Explicitly: backward with only row i's output gradient gives row i's
         * parameter gradient. */
        float *R = malloc(t.batch * t.out_n * sizeof(float));
        memcpy(R, t.R, t.batch * t.out_n * sizeof(float));
        for (size_t i = 0; i < t.batch; i++) {
            memset(t.R, 0, t.batch * t.out_n * sizeof(float));
            memcpy(t.R + i * t.out_n, R + i * t.out_n, t.out_n * sizeof(float));
            lt_backward(&t);
            double s = 0.0;
            for (size_t k = 0; k < t.n_train; k++)
                s += (double)t.hg[k] * t.hg[k];
            assert_near(got[i] - 1.0, s, 1e-5, "per-example sqnorm", i);
        }
        free(R);
        bsc_tensor_free(&acc);
        lt_close(&t);
    }
    /* 3001 rows, split unevenly over the host threads: both paths agree. */
    lt t;
    int64_t d[1] = {37};
    lt_open(&t, "dense", "{type: dense, units: 5}", 1, d, 3001, 33);
    CHECK(lt_forward(&t));
    CHECK(bsc_tensor_write(lh_ctx, &t.dout, t.R));
    static float got[2][3001];
    for (int k = 0; k < 2; k++) {
        use_path(paths[k]);
        bsc_tensor acc;
        lh_alloc_f32(&acc, t.batch);
        CHECK(bsc_tensor_fill(lh_ctx, &acc, 0.5f));
        CHECK(t.ops->per_example_sqnorm(t.self, &t.pass, &t.in, &t.dout, &acc));
        CHECK(bsc_tensor_read(lh_ctx, &acc, got[k]));
        bsc_tensor_free(&acc);
    }
    for (size_t i = 0; i < t.batch; i++)
        assert_near(got[0][i], got[1][i], 1e-6, "per-example sqnorm, host against kernel", i);
    lt_close(&t);
    unsetenv("BATCHSCOPE_HOST_ELEMENTWISE");
}

/* ------------------------------------------------------------ option errors */

/* Writes yaml to a temporary file, parses it, and creates the layer the
 * mapping under `layer:` describes; returns the status (message in
 * bsc_last_error()). */
static bsc_status create_from_file(const char *type, const char *yaml, int ndim,
                                   const int64_t *dim, char *path, size_t len)
{
    snprintf(path, len, "/tmp/bsc_test_layers_%ld.yaml", (long)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    bsc_node *root;
    CHECK(bsc_node_parse_file(path, &root));
    const bsc_node *opts = bsc_node_get(root, "layer");
    assert_non_null(opts);
    bsc_layer_config cfg = {opts, lh_shape_of(ndim, dim), 0};
    void *self = NULL;
    /* As the host does: the declared options first, then create(). */
    bsc_status st = bsc_type_check_options(bsc_registry_find(lh_reg, BSC_KIND_LAYER, type, NULL),
                                           opts);
    if (st == BSC_OK)
        st = lh_layer_ops(type)->create(&cfg, &self);
    if (st == BSC_OK)
        lh_layer_ops(type)->destroy(self);
    bsc_node_free(root);
    remove(path);
    return st;
}

static void expect_error_at(bsc_status st, const char *path, const char *where,
                            const char *words)
{
    char want[512];
    assert_int_not_equal(st, BSC_OK);
    snprintf(want, sizeof want, "%s:%s", path, where);
    const char *msg = bsc_last_error();
    if (!strstr(msg, want) || !strstr(msg, words))
        fail_msg("error '%s' lacks '%s' or '%s'", msg, want, words);
}

static void test_option_errors(void **state)
{
    (void)state;
    char path[256];
    int64_t d1[1] = {8}, d3[3] = {1, 5, 5};
    bsc_status st;

    st = create_from_file("dense", "layer:\n  type: dense\n  units: 4\n  unitz: 5\n", 1, d1,
                          path, sizeof path);
    expect_error_at(st, path, "4:3", "unitz");

    st = create_from_file("dense", "layer:\n  type: dense\n", 1, d1, path, sizeof path);
    expect_error_at(st, path, "2:3", "units");

    st = create_from_file("conv2d", "layer:\n  type: conv2d\n  filters: 2\n  kernel_size: 3\n",
                          1, d1, path, sizeof path);
    expect_error_at(st, path, "2:3", "[C, H, W]");

    st = create_from_file("conv2d", "layer:\n  type: conv2d\n  filters: 2\n  kernel_size: 7\n",
                          3, d3, path, sizeof path);
    expect_error_at(st, path, "2:3", "does not fit");

    st = create_from_file("conv2d",
                          "layer:\n  type: conv2d\n  filters: 2\n  kernel_size: [3, 3, 3]\n",
                          3, d3, path, sizeof path);
    expect_error_at(st, path, "4:16", "kernel_size");

    st = create_from_file("dropout", "layer:\n  type: dropout\n  p: 1.0\n", 1, d1, path,
                          sizeof path);
    expect_error_at(st, path, "3:6", "p");

    st = create_from_file("maxpool2d", "layer:\n  type: maxpool2d\n  kernel_size: 2\n"
                          "  padding: 2\n", 3, d3, path, sizeof path);
    expect_error_at(st, path, "4:12", "padding");

    st = create_from_file("batchnorm", "layer:\n  type: batchnorm\n  momentun: 0.1\n", 1, d1,
                          path, sizeof path);
    expect_error_at(st, path, "3:3", "momentum");
}

static void test_descriptor(void **state)
{
    (void)state;
    const bsc_plugin_desc *desc = bsc_registry_plugin(lh_reg, 0)->desc;
    assert_int_equal(desc->abi_major, BSC_ABI_MAJOR);
    assert_int_equal(desc->abi_minor, BSC_ABI_MINOR);
    assert_string_equal(desc->name, "layers");
    assert_string_equal(desc->version, "0.2.0");
    static const char *const names[] = {"dense", "conv2d", "maxpool2d", "avgpool2d", "relu",
                                        "leaky_relu", "tanh", "sigmoid", "flatten", "dropout",
                                        "batchnorm"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const bsc_layer_ops *ops = lh_layer_ops(names[i]);
        assert_true(ops->struct_size == sizeof(bsc_layer_ops));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_dense_forward),
        cmocka_unit_test(test_dense_grad),
        cmocka_unit_test(test_dense_per_example_sqnorm),
        cmocka_unit_test(test_relu_forward),
        cmocka_unit_test(test_activation_grads),
        cmocka_unit_test(test_host_elementwise_matches_kernels),
        cmocka_unit_test(test_softmax_ce_forward),
        cmocka_unit_test(test_softmax_ce_grad),
        cmocka_unit_test(test_softmax_ce_rop),
        cmocka_unit_test(test_conv2d_forward),
        cmocka_unit_test(test_conv2d_grad),
        cmocka_unit_test(test_conv2d_winograd),
        cmocka_unit_test(test_maxpool_forward),
        cmocka_unit_test(test_pool_grads),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_dropout_grad),
        cmocka_unit_test(test_batchnorm_forward_and_running_stats),
        cmocka_unit_test(test_batchnorm_grad),
        cmocka_unit_test(test_option_errors),
    };
    return cmocka_run_group_tests(tests, lh_group_setup, lh_group_teardown);
}
