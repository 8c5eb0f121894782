/* The gradient-check helper for plugin authors (gradcheck.h): it passes the
 * built-in layers, and it catches each kind of wrong backward the test
 * plugin tests/plugins/wrong_grad.c builds in: a wrong factor, gradients
 * accumulated instead of overwritten, a weight view's offset ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "batchscope/batchscope.h"
#include "testutil.h"

static bsc_context *ctx;
static bsc_registry *reg;

static int group_setup(void **state)
{
    (void)state;
    if (bsc_registry_new(&reg) != BSC_OK ||
        bsc_registry_load_path(reg, BSC_PLUGIN_BUILD_DIR "/bsc_layers.so", "test") != BSC_OK ||
        bsc_registry_load_path(reg, BSC_TEST_PLUGIN_DIR "/wrong_grad.so", "test") != BSC_OK) {
        print_error("loading plugins: %s\n", bsc_last_error());
        return -1;
    }
    if (tu_context_open(&ctx) != BSC_OK) {
        print_error("no OpenCL device: %s\n", bsc_last_error());
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bsc_context_free(ctx);
    bsc_registry_free(reg);
    return 0;
}

static bsc_gradcheck_options opts(const char *yaml, int ndim, const int64_t *dim, size_t batch,
                                  uint64_t seed)
{
    return (bsc_gradcheck_options){.options = yaml, .input = bsc_shape_make(ndim, dim),
                                   .batch = batch, .seed = seed};
}

/* Runs the check and fails the test unless it passes. */
static bsc_gradcheck_result expect_pass(const char *type, bsc_gradcheck_options o)
{
    bsc_gradcheck_result r;
    bsc_status st = bsc_gradcheck_layer_named(ctx, reg, type, &o, &r);
    if (st != BSC_OK)
        fail_msg("%s: %s: %s", type, bsc_status_name(st), bsc_last_error());
    assert_true(r.checked > 0);
    assert_true(r.failed == 0);
    assert_true(r.worst <= BSC_GRADCHECK_TOLERANCE);
    return r;
}

/* Runs the check and fails the test unless it reports a wrong gradient
 * whose message names `where`. */
static bsc_gradcheck_result expect_caught(const char *type, bsc_gradcheck_options o,
                                          const char *where)
{
    bsc_gradcheck_result r;
    bsc_status st = bsc_gradcheck_layer_named(ctx, reg, type, &o, &r);
    if (st != BSC_ERR_INVALID)
        fail_msg("%s: expected the check to fail with ERR_INVALID, got %s (%s)", type,
                 bsc_status_name(st), bsc_last_error());
    if (!strstr(bsc_last_error(), type) || !strstr(bsc_last_error(), where))
        fail_msg("%s: the message should name the type and '%s': %s", type, where,
                 bsc_last_error());
    return r;
}

static void test_dense(void **state)
{
    (void)state;
    int64_t d[1] = {4};
    bsc_gradcheck_result r = expect_pass("dense", opts("{type: dense, units: 3}", 1, d, 3, 1));
    /* Every part ran: 12 input and 15 parameter differences, the 15
     * gradients again without din, and dense's per-example norm for 3 rows. */
    assert_int_equal(r.checked, 12 + 15 + 15 + 3);
    expect_pass("dense", opts("{type: dense, units: 2, bias: false}", 1, d, 2, 2));
}

static void test_conv2d(void **state)
{
    (void)state;
    int64_t d[3] = {2, 5, 5};
    expect_pass("conv2d", opts("{type: conv2d, filters: 3, kernel_size: 3}", 3, d, 3, 3));
    expect_pass("conv2d", opts("{type: conv2d, filters: 2, kernel_size: [3, 2], stride: 2, "
                               "padding: 1, bias: false}", 3, d, 2, 4));
}

static void test_tanh(void **state)
{
    (void)state;
    int64_t d[3] = {2, 3, 2};
    /* NULL options: "{type: tanh}". */
    bsc_gradcheck_result r = expect_pass("tanh", opts(NULL, 3, d, 3, 5));
    assert_int_equal(r.checked, 3 * 12);
    assert_string_equal(r.where, "input");
}

static void test_eval_mode(void **state)
{
    (void)state;
    int64_t d[1] = {6};
    bsc_gradcheck_options o = opts("{type: batchnorm}", 1, d, 4, 6);
    expect_pass("batchnorm", o);
    o.eval_mode = 1;
    expect_pass("batchnorm", o);
}

static void test_catches_wrong_factor(void **state)
{
    (void)state;
    int64_t d[1] = {5};
    expect_pass("tp_square", opts(NULL, 1, d, 3, 7));
    bsc_gradcheck_result r = expect_caught("tp_square_wrong", opts(NULL, 1, d, 3, 7), "input");
    assert_string_equal(r.where, "input");
    /* Backward gives half the true gradient everywhere. */
    assert_int_equal(r.failed, r.checked);
    assert_true(r.worst > 0.45 && r.worst < 0.55);
}

static void test_catches_accumulation(void **state)
{
    (void)state;
    int64_t d[2] = {2, 3};
    expect_pass("tp_scale", opts(NULL, 2, d, 4, 8));
    bsc_gradcheck_result r = expect_caught("tp_scale_accum", opts(NULL, 2, d, 4, 8), "weight");
    assert_true(strncmp(r.where, "weight", 6) == 0);
    assert_true(r.failed >= 6);
}

static void test_catches_ignored_offset(void **state)
{
    (void)state;
    int64_t d[1] = {4};
    expect_caught("tp_scale_offset", opts(NULL, 1, d, 2, 9), "outside");
}

/* host_forward against an evaluation forward, where the host calls it (the
 * host BLAS backend); elsewhere the check is skipped and a wrong one
 * passes. The built-in layers with one pass it, dropout in a training
 * check included (host_forward is the evaluation pass). */
static void test_host_forward(void **state)
{
    (void)state;
    int64_t d[1] = {6};
    expect_pass("tp_scale", opts(NULL, 1, d, 3, 10));
    if (bsc_gemm_active(ctx) != BSC_GEMM_HOST) {
        expect_pass("tp_scale_host", opts(NULL, 1, d, 3, 10));
        skip();
    }
    expect_caught("tp_scale_host", opts(NULL, 1, d, 3, 10), "host_forward");
    int64_t img[3] = {2, 3, 2};
    static const char *const acts[] = {"{type: relu}", "{type: leaky_relu, negative_slope: 0.2}",
                                       "{type: tanh}", "{type: sigmoid}", "{type: flatten}",
                                       "{type: dropout, p: 0.3}"};
    static const char *const names[] = {"relu", "leaky_relu", "tanh", "sigmoid", "flatten",
                                        "dropout"};
    for (size_t i = 0; i < 6; i++)
        expect_pass(names[i], opts(acts[i], 3, img, 4, 20 + i));
    int64_t w[1] = {37};
    expect_pass("dense", opts("{type: dense, units: 19}", 1, w, 5, 30));
    expect_pass("dense", opts("{type: dense, units: 3, bias: false}", 1, w, 2, 31));
}

static void test_usage_errors(void **state)
{
    (void)state;
    int64_t d[1] = {4};
    bsc_gradcheck_result r;
    bsc_gradcheck_options o = opts("{type: dense, unit: 3}", 1, d, 2, 1);
    assert_int_equal(bsc_gradcheck_layer_named(ctx, reg, "dense", &o, &r), BSC_ERR_INVALID);
    assert_non_null(strstr(bsc_last_error(), "units"));
    assert_int_equal(r.checked, 0);

    o = opts(NULL, 1, d, 2, 1);
    assert_int_equal(bsc_gradcheck_layer_named(ctx, reg, "dens", &o, &r), BSC_ERR_INVALID);
    assert_non_null(strstr(bsc_last_error(), "did you mean 'dense'"));
    assert_int_equal(bsc_gradcheck_layer_named(ctx, reg, "softmax_cross_entropy", &o, &r),
                     BSC_ERR_INVALID);
    const bsc_type *loss = bsc_registry_find(reg, BSC_KIND_LOSS, "softmax_cross_entropy", NULL);
    assert_non_null(loss);
    assert_int_equal(bsc_gradcheck_layer(ctx, loss, &o, &r), BSC_ERR_USAGE);

    o.batch = 0;
    assert_int_equal(bsc_gradcheck_layer_named(ctx, reg, "tanh", &o, &r), BSC_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_tanh),
        cmocka_unit_test(test_eval_mode),
        cmocka_unit_test(test_catches_wrong_factor),
        cmocka_unit_test(test_catches_accumulation),
        cmocka_unit_test(test_catches_ignored_offset),
        cmocka_unit_test(test_host_forward),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
