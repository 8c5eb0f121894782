/* Optimizers (runtime/optim.c, cl/runtime/optim.cl) against hand-written
 * double references of torch's update rules, and the learning-rate schedule
 * (runtime/schedule.c) against closed forms. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "batchscope/optim.h"
#include "testutil.h"

#define N 4
#define STEPS 3
/* Device results are float32: a few roundings per step, compared in relative
 * terms. The test values keep every parameter well away from zero so that a
 * relative bound is meaningful. */
#define DEV_RTOL 1e-6
#define HOST_RTOL 1e-12

static bsc_context *ctx;

static const float P0[N] = {0.5f, -1.25f, 2.0f, 0.75f};
static const float GRADS[STEPS][N] = {
    {0.25f, -0.5f, 1.0f, -0.125f},
    {0.5f, 0.25f, -0.75f, 0.375f},
    {-0.125f, 0.75f, 0.5f, 0.25f},
};

/* ---------------------------------------------------------------- helpers */

static int group_setup(void **state)
{
    (void)state;
    bsc_status st = tu_context_open(&ctx);
    if (st != BSC_OK) {
        print_error("no OpenCL device: %s\n", bsc_last_error());
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bsc_context_free(ctx);
    ctx = NULL;
    return 0;
}

static void assert_close(double got, double want, double rtol, const char *what, int i)
{
    double err = fabs(got - want);
    double tol = rtol * fabs(want);
    if (!(err <= tol))
        fail_msg("%s[%d]: got %.10g, want %.10g (rel err %.3g > %.3g)", what, i, got,
                 want, want != 0.0 ? err / fabs(want) : err, rtol);
}

static bsc_tensor alloc_vec(size_t n)
{
    int64_t d = (int64_t)n;
    bsc_shape s = bsc_shape_make(1, &d);
    bsc_tensor t;
    CHECK(bsc_tensor_alloc(ctx, BSC_F32, &s, &t));
    return t;
}

/* The optimizers' rules, written out once more in double from the torch
 * documentation; `ref[k]` receives the parameters after step k + 1. */
typedef struct ref_state {
    double buf[N], m[N], v[N];
    long t;
} ref_state;

static void ref_sgd_step(const bsc_optimizer_cfg *c, ref_state *s, double *p,
                         const float *grad, double lr)
{
    s->t++;
    for (int i = 0; i < N; i++) {
        double g = grad[i] + c->weight_decay * p[i];
        if (c->momentum != 0.0) {
            s->buf[i] = s->t == 1 ? g : c->momentum * s->buf[i] + g;
            g = c->nesterov ? g + c->momentum * s->buf[i] : s->buf[i];
        }
        p[i] -= lr * g;
    }
}

static void ref_adam_step(const bsc_optimizer_cfg *c, ref_state *s, double *p,
                          const float *grad, double lr)
{
    s->t++;
    for (int i = 0; i < N; i++) {
        double g = grad[i] + c->weight_decay * p[i];
        s->m[i] = c->beta1 * s->m[i] + (1.0 - c->beta1) * g;
        s->v[i] = c->beta2 * s->v[i] + (1.0 - c->beta2) * g * g;
        double m_hat = s->m[i] / (1.0 - pow(c->beta1, (double)s->t));
        double v_hat = s->v[i] / (1.0 - pow(c->beta2, (double)s->t));
        p[i] -= lr * m_hat / (sqrt(v_hat) + c->eps);
    }
}

static void ref_run(const bsc_optimizer_cfg *c, float lr, double ref[STEPS][N])
{
    ref_state s;
    double p[N];
    memset(&s, 0, sizeof s);
    for (int i = 0; i < N; i++)
        p[i] = P0[i];
    for (int k = 0; k < STEPS; k++) {
        if (c->kind == BSC_OPTIMIZER_ADAM)
            ref_adam_step(c, &s, p, GRADS[k], lr);
        else
            ref_sgd_step(c, &s, p, GRADS[k], lr);
        memcpy(ref[k], p, sizeof p);
    }
}

/* Runs STEPS steps on the device from P0 with GRADS and checks every step. */
static void run_and_compare(bsc_optimizer *opt, const bsc_optimizer_cfg *c, float lr,
                            const char *what)
{
    double ref[STEPS][N];
    float got[N];
    bsc_tensor p = alloc_vec(N), g = alloc_vec(N);

    ref_run(c, lr, ref);
    CHECK(bsc_tensor_write(ctx, &p, P0));
    for (int k = 0; k < STEPS; k++) {
        CHECK(bsc_tensor_write(ctx, &g, GRADS[k]));
        CHECK(bsc_optimizer_step(opt, &p, &g, lr));
        assert_int_equal(bsc_optimizer_steps(opt), k + 1);
        CHECK(bsc_tensor_read(ctx, &p, got));
        for (int i = 0; i < N; i++) {
            char label[64];
            snprintf(label, sizeof label, "%s step %d", what, k + 1);
            assert_close(got[i], ref[k][i], DEV_RTOL, label, i);
        }
    }
    bsc_tensor_free(&p);
    bsc_tensor_free(&g);
}

static void check_optimizer(const bsc_optimizer_cfg *c, float lr, const char *what)
{
    bsc_optimizer *opt = NULL;
    CHECK(bsc_optimizer_create(ctx, c, N, &opt));
    run_and_compare(opt, c, lr, what);
    bsc_optimizer_free(opt);
}

static bsc_optimizer_cfg sgd_cfg(double momentum, int nesterov, double wd)
{
    bsc_optimizer_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = BSC_OPTIMIZER_SGD;
    c.lr = 0.1;
    c.momentum = momentum;
    c.nesterov = nesterov;
    c.weight_decay = wd;
    return c;
}

static bsc_optimizer_cfg adam_cfg(double wd)
{
    bsc_optimizer_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = BSC_OPTIMIZER_ADAM;
    c.lr = 0.01;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.weight_decay = wd;
    return c;
}

/* ------------------------------------------------------------- optimizers */

static void test_sgd_plain(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = sgd_cfg(0.0, 0, 0.0);
    check_optimizer(&c, 0.1f, "sgd");
}

static void test_sgd_weight_decay(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = sgd_cfg(0.0, 0, 0.05);
    check_optimizer(&c, 0.1f, "sgd+wd");
}

static void test_sgd_momentum(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = sgd_cfg(0.9, 0, 0.0);
    check_optimizer(&c, 0.1f, "sgd+momentum");
}

static void test_sgd_momentum_weight_decay(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = sgd_cfg(0.5, 0, 0.01);
    check_optimizer(&c, 0.2f, "sgd+momentum+wd");
}

static void test_sgd_nesterov(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = sgd_cfg(0.9, 1, 0.0);
    check_optimizer(&c, 0.05f, "nesterov");
}

static void test_sgd_nesterov_weight_decay(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = sgd_cfg(0.9, 1, 0.1);
    check_optimizer(&c, 0.05f, "nesterov+wd");
}

static void test_adam(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = adam_cfg(0.0);
    check_optimizer(&c, 0.01f, "adam");
}

static void test_adam_weight_decay(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = adam_cfg(0.1);
    check_optimizer(&c, 0.01f, "adam+wd");
}

/* Bias correction matters most when beta1 and beta2 are far apart in their
 * first steps: without it step 1 would move each parameter by
 * lr * (1-b1)/sqrt(1-b2), not lr. */
static void test_adam_bias_correction_first_step(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = adam_cfg(0.0);
    bsc_optimizer *opt = NULL;
    bsc_tensor p = alloc_vec(N), g = alloc_vec(N);
    float got[N];
    const float lr = 0.01f;

    CHECK(bsc_optimizer_create(ctx, &c, N, &opt));
    CHECK(bsc_tensor_write(ctx, &p, P0));
    CHECK(bsc_tensor_write(ctx, &g, GRADS[0]));
    CHECK(bsc_optimizer_step(opt, &p, &g, lr));
    CHECK(bsc_tensor_read(ctx, &p, got));
    for (int i = 0; i < N; i++) {
        /* m_hat = g, v_hat = g^2: the step is lr * g / (|g| + eps). */
        double gi = GRADS[0][i];
        double want = P0[i] - (double)lr * gi / (fabs(gi) + c.eps);
        assert_close(got[i], want, DEV_RTOL, "adam first step", i);
    }
    bsc_tensor_free(&p);
    bsc_tensor_free(&g);
    bsc_optimizer_free(opt);
}

/* After a reset the next steps equal those of a fresh optimizer: momentum
 * restarts from the gradient and Adam's moments and bias correction restart. */
static void check_reset(const bsc_optimizer_cfg *c, float lr, const char *what)
{
    bsc_optimizer *opt = NULL;
    bsc_tensor p = alloc_vec(N), g = alloc_vec(N);

    CHECK(bsc_optimizer_create(ctx, c, N, &opt));
    /* Dirty the state with a few steps on unrelated values. */
    CHECK(bsc_tensor_write(ctx, &p, GRADS[1]));
    for (int k = 0; k < STEPS; k++) {
        CHECK(bsc_tensor_write(ctx, &g, GRADS[STEPS - 1 - k]));
        CHECK(bsc_optimizer_step(opt, &p, &g, 0.3f));
    }
    assert_int_equal(bsc_optimizer_steps(opt), STEPS);
    CHECK(bsc_optimizer_reset(opt));
    assert_int_equal(bsc_optimizer_steps(opt), 0);

    {
        bsc_tensor *st[2];
        float zero[N];
        size_t ns = bsc_optimizer_state_tensors(opt, st, NULL, 2);
        for (size_t s = 0; s < ns; s++) {
            CHECK(bsc_tensor_read(ctx, st[s], zero));
            for (int i = 0; i < N; i++)
                assert_true(zero[i] == 0.0f);
        }
    }

    run_and_compare(opt, c, lr, what);
    bsc_tensor_free(&p);
    bsc_tensor_free(&g);
    bsc_optimizer_free(opt);
}

static void test_reset_sgd_momentum(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = sgd_cfg(0.9, 1, 0.01);
    check_reset(&c, 0.05f, "nesterov after reset");
}

static void test_reset_adam(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = adam_cfg(0.01);
    check_reset(&c, 0.01f, "adam after reset");
}

/* Parameters and gradients as views at different offsets of larger buffers:
 * only the view's range of the parameters changes, bit for bit. */
static void test_view_offset(void **state)
{
    (void)state;
    enum { TOTAL = 11, P_OFF = 3, G_OFF = 6 };
    bsc_optimizer_cfg c = sgd_cfg(0.9, 0, 0.05);
    bsc_optimizer *opt = NULL;
    bsc_tensor pbase = alloc_vec(TOTAL), gbase = alloc_vec(TOTAL);
    float host_p[TOTAL], host_g[TOTAL], got[TOTAL];
    double ref[STEPS][N];
    int64_t d = N;
    bsc_shape s = bsc_shape_make(1, &d);

    for (int i = 0; i < TOTAL; i++) {
        host_p[i] = 10.0f + (float)i;     /* sentinels outside the view */
        host_g[i] = 1000.0f;              /* a gradient that would show */
    }
    memcpy(host_p + P_OFF, P0, sizeof P0);
    CHECK(bsc_tensor_write(ctx, &pbase, host_p));

    bsc_tensor pv = bsc_tensor_view(&pbase, P_OFF, &s);
    bsc_tensor gv = bsc_tensor_view(&gbase, G_OFF, &s);
    CHECK(bsc_optimizer_create(ctx, &c, N, &opt));
    ref_run(&c, 0.1f, ref);
    for (int k = 0; k < STEPS; k++) {
        memcpy(host_g + G_OFF, GRADS[k], sizeof GRADS[k]);
        CHECK(bsc_tensor_write(ctx, &gbase, host_g));
        CHECK(bsc_optimizer_step(opt, &pv, &gv, 0.1f));
    }
    CHECK(bsc_tensor_read(ctx, &pbase, got));
    for (int i = 0; i < TOTAL; i++) {
        if (i >= P_OFF && i < P_OFF + N)
            assert_close(got[i], ref[STEPS - 1][i - P_OFF], DEV_RTOL, "view", i);
        else
            assert_true(memcmp(&got[i], &host_p[i], sizeof(float)) == 0);
    }
    bsc_optimizer_free(opt);
    bsc_tensor_free(&pv);
    bsc_tensor_free(&gv);
    bsc_tensor_free(&pbase);
    bsc_tensor_free(&gbase);
}

/* The momentum buffer is exposed under torch's state_dict name and holds
 * torch's value. */
static void test_state_tensors(void **state)
{
    (void)state;
    bsc_optimizer_cfg sgd = sgd_cfg(0.9, 0, 0.0), plain = sgd_cfg(0.0, 0, 0.0);
    bsc_optimizer_cfg adam = adam_cfg(0.0);
    bsc_optimizer *opt = NULL;
    bsc_tensor *t[2] = {NULL, NULL};
    const char *names[2] = {NULL, NULL};
    bsc_tensor p = alloc_vec(N), g = alloc_vec(N);
    float got[N];

    CHECK(bsc_optimizer_create(ctx, &plain, N, &opt));
    assert_int_equal(bsc_optimizer_state_tensors(opt, t, names, 2), 0);
    bsc_optimizer_free(opt);

    CHECK(bsc_optimizer_create(ctx, &adam, N, &opt));
    assert_int_equal(bsc_optimizer_state_tensors(opt, t, names, 2), 2);
    assert_string_equal(names[0], "exp_avg");
    assert_string_equal(names[1], "exp_avg_sq");
    assert_int_equal(t[1]->numel, N);
    bsc_optimizer_free(opt);

    CHECK(bsc_optimizer_create(ctx, &sgd, N, &opt));
    assert_int_equal(bsc_optimizer_state_tensors(opt, t, names, 1), 1);
    assert_string_equal(names[0], "momentum_buffer");
    CHECK(bsc_tensor_write(ctx, &p, P0));
    for (int k = 0; k < 2; k++) {
        CHECK(bsc_tensor_write(ctx, &g, GRADS[k]));
        CHECK(bsc_optimizer_step(opt, &p, &g, 0.1f));
    }
    CHECK(bsc_tensor_read(ctx, t[0], got));
    for (int i = 0; i < N; i++)
        assert_close(got[i], 0.9 * GRADS[0][i] + GRADS[1][i], DEV_RTOL, "momentum_buffer", i);
    bsc_optimizer_free(opt);
    bsc_tensor_free(&p);
    bsc_tensor_free(&g);
}

static void test_invalid(void **state)
{
    (void)state;
    static int sentinel;
    bsc_optimizer *opt = (bsc_optimizer *)&sentinel;   /* must be cleared on failure */
    bsc_optimizer_cfg c = sgd_cfg(0.0, 1, 0.0);

    assert_int_equal(bsc_optimizer_create(ctx, &c, N, &opt), BSC_ERR_INVALID);
    assert_null(opt);
    assert_non_null(strstr(bsc_last_error(), "nesterov"));

    c = adam_cfg(0.0);
    c.beta2 = 1.0;
    assert_int_equal(bsc_optimizer_create(ctx, &c, N, &opt), BSC_ERR_INVALID);
    c = sgd_cfg(-0.1, 0, 0.0);
    assert_int_equal(bsc_optimizer_create(ctx, &c, N, &opt), BSC_ERR_INVALID);
    c = sgd_cfg(0.0, 0, NAN);
    assert_int_equal(bsc_optimizer_create(ctx, &c, N, &opt), BSC_ERR_INVALID);
    c = sgd_cfg(0.0, 0, 0.0);
    assert_int_equal(bsc_optimizer_create(ctx, &c, 0, &opt), BSC_ERR_INVALID);

    /* A step on a vector of the wrong length is refused, and not counted. */
    CHECK(bsc_optimizer_create(ctx, &c, N, &opt));
    bsc_tensor p = alloc_vec(N + 1), g = alloc_vec(N);
    assert_int_equal(bsc_optimizer_step(opt, &p, &g, 0.1f), BSC_ERR_INVALID);
    assert_int_equal(bsc_optimizer_steps(opt), 0);
    bsc_optimizer_free(opt);
    bsc_tensor_free(&p);
    bsc_tensor_free(&g);
}

/* --------------------------------------------------------------- schedules */

static bsc_lr_cfg train_cfg(void)
{
    bsc_lr_cfg t;
    memset(&t, 0, sizeof t);
    t.epochs = 10;
    t.lr = 0.1;
    t.schedule.kind = BSC_SCHED_CONSTANT;
    t.scaling = BSC_LR_NONE;
    t.base_batch_size = 32;
    return t;
}

static void test_lr_constant(void **state)
{
    (void)state;
    bsc_lr_cfg t = train_cfg();
    assert_close(bsc_lr_at(&t, 32, 1, 0, 100), 0.1, HOST_RTOL, "constant", 0);
    assert_close(bsc_lr_at(&t, 256, 7, 55, 100), 0.1, HOST_RTOL, "constant, no scaling", 1);
    assert_close(bsc_lr_at(&t, 32, 10, 99, 100), 0.1, HOST_RTOL, "constant", 2);
}

static void test_lr_scaling(void **state)
{
    (void)state;
    bsc_lr_cfg t = train_cfg();
    t.scaling = BSC_LR_LINEAR;
    assert_close(bsc_lr_at(&t, 32, 1, 0, 10), 0.1, HOST_RTOL, "linear at base", 0);
    assert_close(bsc_lr_at(&t, 256, 1, 0, 10), 0.8, HOST_RTOL, "linear x8", 1);
    assert_close(bsc_lr_at(&t, 16, 3, 4, 10), 0.05, HOST_RTOL, "linear x1/2", 2);
    t.scaling = BSC_LR_SQRT;
    assert_close(bsc_lr_at(&t, 128, 1, 0, 10), 0.2, HOST_RTOL, "sqrt x4", 0);
    assert_close(bsc_lr_at(&t, 256, 2, 3, 10), 0.1 * sqrt(8.0), HOST_RTOL, "sqrt x8", 1);
    /* No base batch size: nothing to scale against. */
    t.base_batch_size = 0;
    assert_close(bsc_lr_at(&t, 256, 1, 0, 10), 0.1, HOST_RTOL, "no base", 2);
}

static void test_lr_step(void **state)
{
    (void)state;
    bsc_lr_cfg t = train_cfg();
    t.schedule.kind = BSC_SCHED_STEP;
    t.schedule.step_epochs = 3;
    t.schedule.gamma = 0.5;
    for (int e = 1; e <= 10; e++) {
        double want = 0.1 * pow(0.5, (e - 1) / 3);
        assert_close(bsc_lr_at(&t, 32, e, 0, 20), want, HOST_RTOL, "step, first step", e);
        assert_close(bsc_lr_at(&t, 32, e, 19, 20), want, HOST_RTOL, "step, last step", e);
    }
    /* Decay composes with scaling: linear x4, then two decays at epoch 7. */
    t.scaling = BSC_LR_LINEAR;
    assert_close(bsc_lr_at(&t, 128, 7, 0, 20), 0.4 * 0.25, HOST_RTOL, "step+linear", 7);
}

static void test_lr_cosine(void **state)
{
    (void)state;
    bsc_lr_cfg t = train_cfg();
    const size_t S = 50;          /* T = 500 steps */
    t.schedule.kind = BSC_SCHED_COSINE;
    t.schedule.min_lr = 0.001;

    assert_close(bsc_lr_at(&t, 32, 1, 0, S), 0.1, HOST_RTOL, "cosine start", 0);
    /* Midpoint: step 250 = epoch 6, step 0. */
    assert_close(bsc_lr_at(&t, 32, 6, 0, S), (0.1 + 0.001) / 2, HOST_RTOL, "cosine mid", 0);
    /* The end of training (step T, one past the last step) is the floor. */
    assert_close(bsc_lr_at(&t, 32, 10, S, S), 0.001, HOST_RTOL, "cosine end", 0);
    /* Past the end it stays there. */
    assert_close(bsc_lr_at(&t, 32, 12, 0, S), 0.001, HOST_RTOL, "cosine past end", 0);
    /* The last step taken, s = T - 1. */
    {
        double want = 0.001 + (0.1 - 0.001) * (1 + cos(M_PI * 499.0 / 500.0)) / 2;
        assert_close(bsc_lr_at(&t, 32, 10, S - 1, S), want, HOST_RTOL, "cosine last", 0);
    }
    /* A quarter of the way: (1 + cos(pi/4)) / 2. */
    {
        double want = 0.001 + (0.1 - 0.001) * (1 + sqrt(0.5)) / 2;
        assert_close(bsc_lr_at(&t, 32, 3, 25, S), want, HOST_RTOL, "cosine quarter", 0);
    }
    /* Cosine decays from the scaled base. */
    t.scaling = BSC_LR_SQRT;
    assert_close(bsc_lr_at(&t, 128, 6, 0, S), (0.2 + 0.001) / 2, HOST_RTOL, "cosine sqrt mid", 0);
}

static void test_lr_warmup(void **state)
{
    (void)state;
    bsc_lr_cfg t = train_cfg();
    const size_t S = 10;
    t.schedule.warmup_epochs = 2.0;   /* W = 20 steps */

    for (size_t s = 0; s < 20; s++) {
        int epoch = 1 + (int)(s / S);
        double want = 0.1 * (double)(s + 1) / 20.0;
        assert_close(bsc_lr_at(&t, 32, epoch, s % S, S), want, HOST_RTOL, "warm-up ramp", (int)s);
    }
    assert_close(bsc_lr_at(&t, 32, 3, 0, S), 0.1, HOST_RTOL, "after warm-up", 0);

    /* Fractional: W = 0.25 * 10 = 2.5 steps -> 0.4, 0.8, then capped at 1. */
    t.schedule.warmup_epochs = 0.25;
    assert_close(bsc_lr_at(&t, 32, 1, 0, S), 0.1 * 0.4, HOST_RTOL, "fractional warm-up", 0);
    assert_close(bsc_lr_at(&t, 32, 1, 1, S), 0.1 * 0.8, HOST_RTOL, "fractional warm-up", 1);
    assert_close(bsc_lr_at(&t, 32, 1, 2, S), 0.1, HOST_RTOL, "fractional warm-up", 2);
    assert_close(bsc_lr_at(&t, 32, 1, 3, S), 0.1, HOST_RTOL, "fractional warm-up", 3);

    /* Warm-up toward a linearly scaled rate with a cosine schedule. */
    t.schedule.warmup_epochs = 1.0;
    t.schedule.kind = BSC_SCHED_COSINE;
    t.schedule.min_lr = 0.0;
    t.scaling = BSC_LR_LINEAR;
    {
        double base = 0.1 * 8;
        double cosf_ = (1 + cos(M_PI * 4.0 / 100.0)) / 2;   /* s = 4 of T = 100 */
        assert_close(bsc_lr_at(&t, 256, 1, 4, S), base * cosf_ * 5.0 / 10.0, HOST_RTOL,
                     "warm-up x cosine x linear", 0);
    }
}

/* ------------------------------------------------------ tracked updates */

/* A tracked step (bsc_optimizer_track_updates) applies the same update,
 * bit for bit, as an untracked one, and writes each chunk's squared update
 * norm into the slot it was given; bad chunks and a second tracker are
 * refused. Seven chunks of sizes that are not multiples of the vector
 * widths and do not split evenly over the host threads, and 70001
 * elements, which the untracked host update splits into unequal parts. */
#define TN 70001
#define TC 21
static void check_tracked(const bsc_optimizer_cfg *c, float lr, const char *what)
{
    /* 300, 1, 476, then 4000 each (the observers' chunks are at most 4096,
     * OBS_CHUNK), the last 2224. */
    static uint32_t bounds[TC + 1] = {0, 300, 301, 777};
    for (int i = 4; i <= TC; i++)
        bounds[i] = bounds[i - 1] + 4000 < TN ? bounds[i - 1] + 4000 : TN;
    assert_int_equal(bounds[TC - 1] < TN && bounds[TC] == TN, 1);
    static float p0[TN], g[TN], a[TN], b[TN], before[TN], norms[STEPS * TC];
    for (int i = 0; i < TN; i++) {
        p0[i] = 0.5f + (float)((i * 37) % 101) / 50.0f * ((i & 1) ? -1.0f : 1.0f);
        g[i] = (float)((i * 53) % 97) / 97.0f - 0.5f;
    }
    bsc_optimizer *plain = NULL, *tracked = NULL;
    CHECK(bsc_optimizer_create(ctx, c, TN, &plain));
    CHECK(bsc_optimizer_create(ctx, c, TN, &tracked));
    bsc_tensor pa = alloc_vec(TN), pb = alloc_vec(TN), gr = alloc_vec(TN);
    bsc_tensor out = alloc_vec(STEPS * TC), bd;
    int64_t nb = TC + 1;
    bsc_shape bs = bsc_shape_make(1, &nb);
    CHECK(bsc_tensor_alloc(ctx, BSC_I32, &bs, &bd));
    CHECK(bsc_tensor_write(ctx, &bd, bounds));
    CHECK(bsc_tensor_write(ctx, &pa, p0));
    CHECK(bsc_tensor_write(ctx, &pb, p0));
    CHECK(bsc_tensor_write(ctx, &gr, g));
    CHECK(bsc_tensor_fill(ctx, &out, -1.0f));
    bsc_status s = bsc_optimizer_track_updates(tracked, bounds, &bd, TC, &out);
    if (s == BSC_ERR_UNSUPPORTED) {   /* not a CPU device: the observer's own pass */
        bsc_optimizer_free(plain);
        bsc_optimizer_free(tracked);
        skip();
    }
    CHECK(s);
    assert_int_equal(bsc_optimizer_track_updates(tracked, bounds, &bd, TC, &out), BSC_ERR_BUSY);
    double want[STEPS * TC] = {0};
    for (int k = 0; k < STEPS; k++) {
        CHECK(bsc_tensor_read(ctx, &pb, before));
        bsc_optimizer_track_slot(tracked, (size_t)k);
        CHECK(bsc_optimizer_step(plain, &pa, &gr, lr));
        CHECK(bsc_optimizer_step(tracked, &pb, &gr, lr));
        CHECK(bsc_tensor_read(ctx, &pa, a));
        CHECK(bsc_tensor_read(ctx, &pb, b));
        if (memcmp(a, b, sizeof a) != 0)
            fail_msg("%s: step %d of the tracked update differs from the plain one", what, k);
        for (int ch = 0; ch < TC; ch++)
            for (uint32_t i = bounds[ch]; i < bounds[ch + 1]; i++) {
                double u = (double)b[i] - before[i];
                want[k * TC + ch] += u * u;
            }
    }
    CHECK(bsc_tensor_read(ctx, &out, norms));
    for (int i = 0; i < STEPS * TC; i++)
        assert_close(norms[i], want[i], 1e-5, what, i);
    /* Ended, it steps untracked: the norms stay as they are. */
    CHECK(bsc_optimizer_track_updates(tracked, NULL, NULL, 0, NULL));
    CHECK(bsc_optimizer_step(tracked, &pb, &gr, lr));
    static float again[STEPS * TC];
    CHECK(bsc_tensor_read(ctx, &out, again));
    assert_memory_equal(norms, again, sizeof norms);
    /* Chunks that leave elements out would leave them un-updated. */
    static uint32_t gap[TC + 1], empty[TC + 1];
    memcpy(gap, bounds, sizeof gap);
    memcpy(empty, bounds, sizeof empty);
    gap[TC] = TN - 1;
    empty[2] = 300;
    assert_int_equal(bsc_optimizer_track_updates(tracked, gap, &bd, TC, &out), BSC_ERR_INVALID);
    assert_int_equal(bsc_optimizer_track_updates(tracked, empty, &bd, TC, &out),
                     BSC_ERR_INVALID);
    bsc_tensor_free(&pa);
    bsc_tensor_free(&pb);
    bsc_tensor_free(&gr);
    bsc_tensor_free(&out);
    bsc_tensor_free(&bd);
    bsc_optimizer_free(plain);
    bsc_optimizer_free(tracked);
}

/* The host tasks' updates against the kernels' on the same 70001 elements
 * (split into unequal parts over the host threads), three steps of each
 * rule; where the GEMMs do not run on the host BLAS both are the kernels. */
static void test_host_updates_match_kernels(void **state)
{
    (void)state;
    static float p0[TN], g[TN], r[2][TN];
    for (int i = 0; i < TN; i++) {
        p0[i] = 0.5f + (float)((i * 37) % 101) / 50.0f * ((i & 1) ? -1.0f : 1.0f);
        g[i] = (float)((i * 53) % 97) / 97.0f - 0.5f;
    }
    const bsc_optimizer_cfg cfgs[] = {sgd_cfg(0, 0, 1e-2), sgd_cfg(0.9, 0, 1e-2),
                                      sgd_cfg(0.9, 1, 0), adam_cfg(1e-2)};
    static const char *const names[] = {"sgd", "momentum", "nesterov", "adam"};
    const char *was = getenv("BATCHSCOPE_HOST_ELEMENTWISE");
    char *keep = was ? strdup(was) : NULL;
    for (size_t c = 0; c < 4; c++) {
        for (int k = 0; k < 2; k++) {
            setenv("BATCHSCOPE_HOST_ELEMENTWISE", k ? "0" : "1", 1);
            bsc_optimizer *opt = NULL;
            CHECK(bsc_optimizer_create(ctx, &cfgs[c], TN, &opt));
            bsc_tensor p = alloc_vec(TN), gr = alloc_vec(TN);
            CHECK(bsc_tensor_write(ctx, &p, p0));
            CHECK(bsc_tensor_write(ctx, &gr, g));
            for (int s = 0; s < STEPS; s++)
                CHECK(bsc_optimizer_step(opt, &p, &gr, 0.05f));
            CHECK(bsc_tensor_read(ctx, &p, r[k]));
            bsc_tensor_free(&p);
            bsc_tensor_free(&gr);
            bsc_optimizer_free(opt);
        }
        /* A few roundings apart (the kernels may fuse multiply-adds):
         * relative to the weights' scale, as some cross zero. */
        for (int i = 0; i < TN; i++)
            if (!(fabs((double)r[0][i] - r[1][i]) <= 2e-6 * fmax(1.0, fabs((double)r[1][i]))))
                fail_msg("%s[%d]: host %.9g, kernels %.9g", names[c], i, r[0][i], r[1][i]);
    }
    if (keep)
        setenv("BATCHSCOPE_HOST_ELEMENTWISE", keep, 1);
    else
        unsetenv("BATCHSCOPE_HOST_ELEMENTWISE");
    free(keep);
}

/* Ending the tracking waits for the tracked steps still queued: a step run
 * as a host task reads the chunk bounds when it runs, and the caller may
 * free its array as soon as the tracking has ended. The queue is held
 * behind a user event that another thread completes 0.1 s later. */
static void *complete_later(void *ev)
{
    usleep(100000);
    clSetUserEventStatus((cl_event)ev, CL_COMPLETE);
    return NULL;
}

#define QN 1000
static void test_tracking_ends_after_queued_steps(void **state)
{
    (void)state;
    uint32_t *bounds = malloc(3 * sizeof *bounds);
    assert_non_null(bounds);
    bounds[0] = 0;
    bounds[1] = 500;
    bounds[2] = QN;
    static float p0[QN], g[QN], got[QN];
    for (int i = 0; i < QN; i++) {
        p0[i] = 1.0f + (float)(i % 7);
        g[i] = 0.5f;
    }
    bsc_optimizer_cfg c = sgd_cfg(0.9, 0, 0);
    bsc_optimizer *opt = NULL;
    CHECK(bsc_optimizer_create(ctx, &c, QN, &opt));
    bsc_tensor p = alloc_vec(QN), gr = alloc_vec(QN), out = alloc_vec(2), bd;
    int64_t nb = 3;
    bsc_shape bs = bsc_shape_make(1, &nb);
    CHECK(bsc_tensor_alloc(ctx, BSC_I32, &bs, &bd));
    CHECK(bsc_tensor_write(ctx, &bd, bounds));
    CHECK(bsc_tensor_write(ctx, &p, p0));
    CHECK(bsc_tensor_write(ctx, &gr, g));
    bsc_status s = bsc_optimizer_track_updates(opt, bounds, &bd, 2, &out);
    if (s == BSC_ERR_UNSUPPORTED) {
        bsc_optimizer_free(opt);
        free(bounds);
        skip();
    }
    CHECK(s);
    cl_int err;
    cl_event ev = clCreateUserEvent(ctx->context, &err);
    assert_int_equal(err, CL_SUCCESS);
    assert_int_equal(clEnqueueMarkerWithWaitList(ctx->queue, 1, &ev, NULL), CL_SUCCESS);
    CHECK(bsc_optimizer_step(opt, &p, &gr, 0.1f));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, complete_later, ev), 0);
    CHECK(bsc_optimizer_track_updates(opt, NULL, NULL, 0, NULL));
    memset(bounds, 0xff, 3 * sizeof *bounds);
    free(bounds);
    pthread_join(th, NULL);
    clReleaseEvent(ev);
    float norms[2];
    CHECK(bsc_tensor_read(ctx, &p, got));
    CHECK(bsc_tensor_read(ctx, &out, norms));
    for (int i = 0; i < QN; i++)   /* the first step: w - lr g */
        assert_close(got[i], p0[i] - 0.1f * 0.5f, 1e-6, "tracked step", i);
    assert_close(norms[0], 500 * 0.05 * 0.05, 1e-4, "chunk 0", 0);
    assert_close(norms[1], 500 * 0.05 * 0.05, 1e-4, "chunk 1", 1);
    bsc_tensor_free(&p);
    bsc_tensor_free(&gr);
    bsc_tensor_free(&out);
    bsc_tensor_free(&bd);
    bsc_optimizer_free(opt);
}

static void test_tracked_updates(void **state)
{
    (void)state;
    bsc_optimizer_cfg c = sgd_cfg(0, 0, 0);
    check_tracked(&c, 0.1f, "sgd");
    c = sgd_cfg(0.9, 0, 1e-2);
    check_tracked(&c, 0.1f, "sgd momentum wd");
    c = sgd_cfg(0.9, 1, 0);
    check_tracked(&c, 0.1f, "nesterov");
    c = adam_cfg(1e-2);
    check_tracked(&c, 0.01f, "adam wd");
}


int main(void)
{
    const struct CMUnitTest device_tests[] = {
        cmocka_unit_test(test_sgd_plain),
        cmocka_unit_test(test_sgd_weight_decay),
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_sgd_momentum_weight_decay),
        cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_sgd_nesterov_weight_decay),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adam_weight_decay),
        cmocka_unit_test(test_adam_bias_correction_first_step),
        cmocka_unit_test(test_reset_sgd_momentum),
        cmocka_unit_test(test_reset_adam),
        cmocka_unit_test(test_view_offset),
        cmocka_unit_test(test_state_tensors),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_tracked_updates),
        cmocka_unit_test(test_host_updates_match_kernels),
        cmocka_unit_test(test_tracking_ends_after_queued_steps),
    };
    /* The schedule is host arithmetic: its group runs without a device. */
    const struct CMUnitTest schedule_tests[] = {
        cmocka_unit_test(test_lr_constant),
        cmocka_unit_test(test_lr_scaling),
        cmocka_unit_test(test_lr_step),
        cmocka_unit_test(test_lr_cosine),
        cmocka_unit_test(test_lr_warmup),
    };
    int failed = cmocka_run_group_tests_name("schedule", schedule_tests, NULL, NULL);
    /* Where the GEMMs run on the host BLAS the updates are host tasks
     * (host_task.h: bsc_host_elementwise); the kernels are checked too. */
    setenv("BATCHSCOPE_HOST_ELEMENTWISE", "1", 1);
    failed += cmocka_run_group_tests_name("optimizers", device_tests, group_setup,
                                          group_teardown);
    setenv("BATCHSCOPE_HOST_ELEMENTWISE", "0", 1);
    failed += cmocka_run_group_tests_name("optimizers (kernels)", device_tests, group_setup,
                                          group_teardown);
    return failed;
}
