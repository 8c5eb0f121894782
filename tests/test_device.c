/* Device listing and selection: selectors against a synthetic device list,
 * then the real PoCL device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/device.h"

/* Three platforms: an NVIDIA GPU pair, PoCL's CPU, an accelerator. */
static bsc_device_info fake[5];

static void set_dev(int i, int p, int d, cl_device_type type, const char *plat,
                    const char *vendor, const char *name)
{
    bsc_device_info *di = &fake[i];
    memset(di, 0, sizeof *di);
    di->index = i;
    di->platform_index = p;
    di->device_index = d;
    di->type = type;
    snprintf(di->platform_name, sizeof di->platform_name, "%s", plat);
    snprintf(di->vendor, sizeof di->vendor, "%s", vendor);
    snprintf(di->name, sizeof di->name, "%s", name);
    snprintf(di->driver_version, sizeof di->driver_version, "1.%d", i);
    snprintf(di->opencl_c_version, sizeof di->opencl_c_version, "OpenCL C 1.2");
    di->global_mem = (cl_ulong)8 << 30;
    di->max_alloc = (cl_ulong)2 << 30;
    di->compute_units = 4;
}

static int setup_fake(void **state)
{
    (void)state;
    set_dev(0, 0, 0, CL_DEVICE_TYPE_CPU, "Portable Computing Language", "GenuineIntel",
            "pthread-skylake-avx512");
    set_dev(1, 1, 0, CL_DEVICE_TYPE_GPU, "NVIDIA CUDA", "NVIDIA Corporation",
            "NVIDIA GeForce RTX 3090");
    set_dev(2, 1, 1, CL_DEVICE_TYPE_GPU, "NVIDIA CUDA", "NVIDIA Corporation",
            "NVIDIA A100-SXM4");
    set_dev(3, 2, 0, CL_DEVICE_TYPE_ACCELERATOR, "Xilinx", "Xilinx", "xilinx_u250");
    set_dev(4, 2, 1, CL_DEVICE_TYPE_CPU, "Xilinx", "Xilinx", "host-emulation");
    return 0;
}

static int sel(const char *s, int count)
{
    int idx = -1;
    bsc_status st = bsc_device_select(fake, count, s, &idx);
    return st == BSC_OK ? idx : -(int)st - 100;
}

static void test_auto_prefers_gpu(void **state)
{
    (void)state;
    assert_int_equal(sel(NULL, 5), 1);
    assert_int_equal(sel("auto", 5), 1);
    assert_int_equal(sel("AUTO", 5), 1);
    assert_int_equal(sel("", 5), 1);
    /* Without a GPU, the first CPU; with neither, the first device. */
    bsc_device_info two[2] = {fake[3], fake[4]};
    int idx = -1;
    assert_int_equal(bsc_device_select(two, 2, NULL, &idx), BSC_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(bsc_device_select(two, 1, "auto", &idx), BSC_OK);
    assert_int_equal(idx, 0);
}

static void test_index_and_pd(void **state)
{
    (void)state;
    assert_int_equal(sel("0", 5), 0);
    assert_int_equal(sel("3", 5), 3);
    assert_int_equal(sel("1:1", 5), 2);
    assert_int_equal(sel("2:0", 5), 3);
    assert_int_equal(sel("0:0", 5), 0);
    assert_int_equal(sel("9", 5), -(int)BSC_ERR_USAGE - 100);
    assert_int_equal(sel("0:3", 5), -(int)BSC_ERR_USAGE - 100);
}

static void test_type(void **state)
{
    (void)state;
    assert_int_equal(sel("cpu", 5), 0);
    assert_int_equal(sel("GPU", 5), 1);
    assert_int_equal(sel("accelerator", 5), 3);
    assert_int_equal(sel("gpu", 1), -(int)BSC_ERR_USAGE - 100);
    const char *msg = bsc_last_error();
    assert_non_null(strstr(msg, "no gpu device"));
}

static void test_substring_case_insensitive(void **state)
{
    (void)state;
    assert_int_equal(sel("pocl", 5), -(int)BSC_ERR_USAGE - 100); /* no such text */
    assert_int_equal(sel("portable", 5), 0);                      /* platform */
    assert_int_equal(sel("GENUINEINTEL", 5), 0);                  /* vendor */
    assert_int_equal(sel("a100", 5), 2);                          /* device name */
    assert_int_equal(sel("rtx", 5), 1);
    assert_int_equal(sel("U250", 5), 3);
    assert_int_equal(sel("emulation", 5), 4);
}

static void test_ambiguous_lists_devices(void **state)
{
    (void)state;
    assert_int_equal(sel("nvidia", 5), -(int)BSC_ERR_USAGE - 100);
    const char *msg = bsc_last_error();
    assert_non_null(strstr(msg, "ambiguous"));
    assert_non_null(strstr(msg, "NVIDIA GeForce RTX 3090"));
    assert_non_null(strstr(msg, "NVIDIA A100-SXM4"));
    assert_non_null(strstr(msg, "1:1"));
    assert_int_equal(sel("xilinx", 5), -(int)BSC_ERR_USAGE - 100);
}

static void test_unmatched_lists_devices(void **state)
{
    (void)state;
    assert_int_equal(sel("radeon", 5), -(int)BSC_ERR_USAGE - 100);
    const char *msg = bsc_last_error();
    assert_non_null(strstr(msg, "'radeon'"));
    assert_non_null(strstr(msg, "matches no device"));
    /* The table, header and every device. */
    assert_non_null(strstr(msg, "P:D"));
    assert_non_null(strstr(msg, "pthread-skylake-avx512"));
    assert_non_null(strstr(msg, "xilinx_u250"));
    assert_non_null(strstr(msg, "host-emulation"));
}

/* Process nth of n on a host (the local ranks of mpirun). */
static int sel_local(const char *s, int nth, int n)
{
    int idx = -1;
    bsc_status st = bsc_device_select_local(fake, 5, s, nth, n, &idx);
    return st == BSC_OK ? idx : -(int)st - 100;
}

static void test_local_ranks_take_devices_in_turn(void **state)
{
    (void)state;
    /* One process: what bsc_device_select says, ambiguity included. */
    assert_int_equal(sel_local("gpu", 0, 1), 1);
    assert_int_equal(sel_local("nvidia", 0, 1), -(int)BSC_ERR_USAGE - 100);
    /* Several: the devices a selector matches, in turn. */
    assert_int_equal(sel_local("gpu", 0, 2), 1);
    assert_int_equal(sel_local("gpu", 1, 2), 2);
    assert_int_equal(sel_local("gpu", 2, 3), 1);
    assert_int_equal(sel_local(NULL, 1, 4), 2);       /* auto: the GPUs */
    assert_int_equal(sel_local("cpu", 1, 2), 4);
    assert_int_equal(sel_local("nvidia", 1, 2), 2);   /* a name: its matches */
    assert_int_equal(sel_local("0", 3, 4), 0);        /* an index: its one device */
    assert_int_equal(sel_local("2:0", 1, 2), 3);
    assert_int_equal(sel_local("radeon", 1, 2), -(int)BSC_ERR_USAGE - 100);
    /* A list: one selector per local rank, round robin. */
    assert_int_equal(sel_local("2,a100,cpu", 0, 3), 2);
    assert_int_equal(sel_local("2,a100,cpu", 1, 3), 2);
    assert_int_equal(sel_local("2,a100,cpu", 2, 3), 0);
    assert_int_equal(sel_local("1,0", 2, 3), 1);
    assert_int_equal(sel_local("1,0", 0, 1), 1);
    assert_int_equal(sel_local("1,radeon", 1, 2), -(int)BSC_ERR_USAGE - 100);
    assert_non_null(strstr(bsc_last_error(), "local rank 1 takes 'radeon'"));
}

static void test_table(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    bsc_device_print_table(f, fake, 5);
    fclose(f);
    const char *cols[] = {"#", "P:D", "type", "vendor", "name", "driver", "OpenCL C",
                          "global mem", "max alloc", "CUs"};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        assert_non_null(strstr(buf, cols[i]));
    assert_non_null(strstr(buf, "8.0 GiB"));
    assert_non_null(strstr(buf, "2.0 GiB"));
    assert_non_null(strstr(buf, "ACCELERATOR"));
    int lines = 0;
    for (const char *p = buf; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 6);
    free(buf);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(bsc_device_type_name(CL_DEVICE_TYPE_CPU), "CPU");
    assert_string_equal(bsc_device_type_name(CL_DEVICE_TYPE_GPU), "GPU");
    assert_string_equal(bsc_device_type_name(CL_DEVICE_TYPE_ACCELERATOR), "ACCELERATOR");
    assert_string_equal(bsc_cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    assert_string_equal(bsc_cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    assert_string_equal(bsc_cl_error_name(CL_INVALID_KERNEL_ARGS), "CL_INVALID_KERNEL_ARGS");
    assert_string_equal(bsc_cl_error_name(12345), "CL_UNKNOWN_ERROR");
    assert_int_equal(bsc_cl_fail(CL_INVALID_VALUE, "clFoo(bar)"), BSC_ERR_OPENCL);
    assert_string_equal(bsc_last_error(), "clFoo(bar): CL_INVALID_VALUE (-30)");
}

static void test_real_pocl(void **state)
{
    (void)state;
    bsc_device_info *list = NULL;
    int count = 0, idx = -1;
    assert_int_equal(bsc_device_list(&list, &count), BSC_OK);
    assert_true(count >= 1);
    for (int i = 0; i < count; i++) {
        assert_int_equal(list[i].index, i);
        assert_true(list[i].name[0] != '\0');
        assert_true(list[i].global_mem > 0);
        assert_true(list[i].compute_units > 0);
    }
    assert_int_equal(bsc_device_select(list, count, "cpu", &idx), BSC_OK);
    assert_true(list[idx].type & CL_DEVICE_TYPE_CPU);
    char name[256];
    snprintf(name, sizeof name, "%s", list[0].name);
    free(list);

    bsc_context *ctx = NULL;
    assert_int_equal(bsc_context_open("portable computing", &ctx), BSC_OK);
    char desc[512];
    bsc_context_describe(ctx, desc, sizeof desc);
    assert_non_null(strstr(desc, "Portable Computing Language"));
    assert_non_null(strstr(desc, "driver"));
    assert_non_null(ctx->queue);
    assert_int_equal(bsc_finish(ctx), BSC_OK);
    bsc_context_free(ctx);

    assert_int_equal(bsc_context_open("no-such-device", &ctx), BSC_ERR_USAGE);
    assert_null(ctx);
    assert_non_null(strstr(bsc_last_error(), name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_prefers_gpu),
        cmocka_unit_test(test_index_and_pd),
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_substring_case_insensitive),
        cmocka_unit_test(test_ambiguous_lists_devices),
        cmocka_unit_test(test_unmatched_lists_devices),
        cmocka_unit_test(test_local_ranks_take_devices_in_turn),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_real_pocl),
    };
    return cmocka_run_group_tests(tests, setup_fake, NULL);
}
