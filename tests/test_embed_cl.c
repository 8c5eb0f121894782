/* batchscope_embed_cl (cmake/BatchscopeEmbedCL.cmake) on the fixtures in
 * tests/embed_cl: lookup by base name, includes between embedded files
 * inlined once with #line directives, other includes left for the runtime,
 * and the result built through bsc_kernel_from_source as a plugin builds
 * its kernels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "batchscope/device.h"
#include "testutil.h"

/* Generated from the fixtures by batchscope_embed_cl (tests/CMakeLists.txt). */
const char *fixture_cl_text(const char *file);

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_lookup(void **state)
{
    (void)state;
    assert_non_null(fixture_cl_text("main.cl"));
    assert_non_null(fixture_cl_text("helper.cl"));
    assert_null(fixture_cl_text("embed_cl/main.cl")); /* base names only */
    assert_null(fixture_cl_text("main"));
    assert_null(fixture_cl_text("philox.cl"));        /* the runtime's, not embedded here */
    assert_null(fixture_cl_text(""));
    assert_null(fixture_cl_text(NULL));
}

static void test_includes_inlined_once(void **state)
{
    (void)state;
    const char *main_cl = fixture_cl_text("main.cl");
    /* helper.cl is pasted once although main.cl includes it twice, and
     * helper.cl's own include of main.cl (a cycle) pastes nothing. */
    assert_int_equal(count(main_cl, "float helper_value(void)"), 1);
    assert_int_equal(count(main_cl, "__kernel void fill"), 1);
    assert_int_equal(count(main_cl, "#include \"helper.cl\""), 0);
    assert_int_equal(count(main_cl, "#include \"main.cl\""), 0);
    assert_int_equal(count(main_cl, "#include \"philox.cl\""), 1);
    assert_non_null(strstr(main_cl, "#line 1 \"helper.cl\"\n"));
    /* After each inlined include the compiler is put back on the next line
     * of the includer (lines 3 and 5 of main.cl were includes). */
    assert_non_null(strstr(main_cl, "#line 4 \"main.cl\"\n#include \"philox.cl\"\n"));
    assert_non_null(strstr(main_cl, "#line 6 \"main.cl\"\n\n__kernel"));
    assert_non_null(strstr(main_cl, "#line 4 \"helper.cl\"\nfloat helper_value"));

    /* Nested: broken.cl -> helper.cl -> main.cl, each once. */
    const char *broken = fixture_cl_text("broken.cl");
    assert_int_equal(count(broken, "float helper_value(void)"), 1);
    assert_int_equal(count(broken, "__kernel void fill"), 1);
    assert_non_null(strstr(broken, "#line 3 \"broken.cl\"\n\nfloat broken"));
}

static void test_builds_as_a_plugin_would(void **state)
{
    (void)state;
    bsc_context *ctx = NULL;
    cl_kernel k = NULL;
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    assert_int_equal(bsc_kernel_from_source(ctx, "fixture/main.cl", fixture_cl_text("main.cl"),
                                            NULL, "fill", &k), BSC_OK);
    float host[9];
    assert_int_equal(tu_run_x_n(ctx, k, 9, host), BSC_OK);
    for (int i = 0; i < 9; i++)
        assert_true(host[i] == 7.0f + (float)i);

    /* The compiler's complaint names the file the error is in. */
    assert_int_equal(bsc_kernel_from_source(ctx, "fixture/broken.cl",
                                            fixture_cl_text("broken.cl"), NULL, "fill", &k),
                     BSC_ERR_BUILD);
    assert_non_null(strstr(bsc_last_error(), "not_declared_here"));
    assert_non_null(strstr(bsc_last_error(), "broken.cl"));
    bsc_context_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_includes_inlined_once),
        cmocka_unit_test(test_builds_as_a_plugin_would),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
