/* With no OpenCL platform installed, listing devices fails with a message
 * that says what to install. The ICD loader reads OCL_ICD_VENDORS once, at
 * its first call, so it is pointed at an empty directory before any OpenCL
 * call in this process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batchscope/device.h"

static char empty_dir[] = "/tmp/bsc-no-icd-XXXXXX";

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(empty_dir))
        return -1;
    return setenv("OCL_ICD_VENDORS", empty_dir, 1);
}

static int teardown(void **state)
{
    (void)state;
    rmdir(empty_dir);
    return 0;
}

static void test_list_says_what_to_install(void **state)
{
    (void)state;
    bsc_device_info *list = (bsc_device_info *)1;
    int count = 7;
    assert_int_equal(bsc_device_list(&list, &count), BSC_ERR_NO_PLATFORM);
    assert_null(list);
    assert_int_equal(count, 0);
    const char *msg = bsc_last_error();
    assert_non_null(strstr(msg, "pocl-opencl-icd"));
    assert_non_null(strstr(msg, "CL_PLATFORM_NOT_FOUND_KHR"));
    assert_int_equal(bsc_status_exit_code(BSC_ERR_NO_PLATFORM), 2);
}

static void test_context_open_fails_the_same_way(void **state)
{
    (void)state;
    bsc_context *ctx = NULL;
    assert_int_equal(bsc_context_open(NULL, &ctx), BSC_ERR_NO_PLATFORM);
    assert_null(ctx);
    assert_non_null(strstr(bsc_last_error(), "pocl-opencl-icd"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_says_what_to_install),
        cmocka_unit_test(test_context_open_fails_the_same_way),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
