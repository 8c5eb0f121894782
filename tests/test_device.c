/* Device listing and selection: selectors against synthetic device lists
 * (the strings real drivers report), then the device the suite runs on
 * ($BATCHSCOPE_TEST_DEVICE, default auto). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/device.h"
#include "testutil.h"

/* Three platforms: an NVIDIA GPU pair, PoCL's CPU, an accelerator. */
static bsc_device_info fake[5];

static void fill_dev(bsc_device_info *di, int i, int p, int d, cl_device_type type,
                     const char *plat, const char *plat_vendor, const char *vendor,
                     const char *name)
{
    memset(di, 0, sizeof *di);
    di->index = i;
    di->platform_index = p;
    di->device_index = d;
    di->type = type;
    snprintf(di->platform_name, sizeof di->platform_name, "%s", plat);
    snprintf(di->platform_vendor, sizeof di->platform_vendor, "%s", plat_vendor);
    snprintf(di->vendor, sizeof di->vendor, "%s", vendor);
    snprintf(di->name, sizeof di->name, "%s", name);
    snprintf(di->driver_version, sizeof di->driver_version, "1.%d", i);
    snprintf(di->opencl_c_version, sizeof di->opencl_c_version, "OpenCL C 1.2");
    di->global_mem = (cl_ulong)8 << 30;
    di->max_alloc = (cl_ulong)2 << 30;
    di->compute_units = 4;
}

static void set_dev(int i, int p, int d, cl_device_type type, const char *plat,
                    const char *plat_vendor, const char *vendor, const char *name)
{
    fill_dev(&fake[i], i, p, d, type, plat, plat_vendor, vendor, name);
}

static int setup_fake(void **state)
{
    (void)state;
    set_dev(0, 0, 0, CL_DEVICE_TYPE_CPU, "Portable Computing Language", "The pocl project",
            "GenuineIntel", "pthread-skylake-avx512");
    set_dev(1, 1, 0, CL_DEVICE_TYPE_GPU, "NVIDIA CUDA", "NVIDIA Corporation",
            "NVIDIA Corporation", "NVIDIA GeForce RTX 3090");
    set_dev(2, 1, 1, CL_DEVICE_TYPE_GPU, "NVIDIA CUDA", "NVIDIA Corporation",
            "NVIDIA Corporation", "NVIDIA A100-SXM4");
    set_dev(3, 2, 0, CL_DEVICE_TYPE_ACCELERATOR, "Xilinx", "Xilinx", "Xilinx", "xilinx_u250");
    set_dev(4, 2, 1, CL_DEVICE_TYPE_CPU, "Xilinx", "Xilinx", "Xilinx", "host-emulation");
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

static void test_empty_selector_is_an_error(void **state)
{
    (void)state;
    assert_int_equal(sel("", 5), -(int)BSC_ERR_USAGE - 100);
    assert_non_null(strstr(bsc_last_error(), "empty"));
    assert_non_null(strstr(bsc_last_error(), "P:D"));   /* the table */
    assert_int_equal(sel("  ", 5), -(int)BSC_ERR_USAGE - 100);
}

static void test_substring_case_insensitive(void **state)
{
    (void)state;
    assert_int_equal(sel("pocl", 5), 0);                 /* platform vendor */
    assert_int_equal(sel("portable", 5), 0);             /* platform name */
    assert_int_equal(sel("GENUINEINTEL", 5), 0);         /* device vendor */
    assert_int_equal(sel("a100", 5), 2);                 /* device name */
    assert_int_equal(sel("rtx", 5), 1);
    assert_int_equal(sel("U250", 5), 3);
    assert_int_equal(sel("emulation", 5), 4);
    /* A platform's name selects its first device, as a type does. */
    assert_int_equal(sel("nvidia", 5), 1);
    assert_int_equal(sel("cuda", 5), 1);
    assert_int_equal(sel("xilinx", 5), 3);
}

/* The vendors' words on machines that have their GPUs next to PoCL on a CPU
 * of the same vendor: the platform wins over the CPU's vendor string. */
static void test_vendor_words(void **state)
{
    (void)state;
    bsc_device_info l[5];
    int idx = -1;
    fill_dev(&l[0], 0, 0, 0, CL_DEVICE_TYPE_CPU, "Portable Computing Language",
             "The pocl project", "AuthenticAMD", "cpu-znver3-AMD Ryzen 9 5950X");
    fill_dev(&l[1], 1, 1, 0, CL_DEVICE_TYPE_GPU, "AMD Accelerated Parallel Processing",
             "Advanced Micro Devices, Inc.", "Advanced Micro Devices, Inc.", "gfx1030");
    fill_dev(&l[2], 2, 2, 0, CL_DEVICE_TYPE_GPU, "Intel(R) OpenCL HD Graphics",
             "Intel(R) Corporation", "Intel(R) Corporation", "Intel(R) UHD Graphics 770");
    fill_dev(&l[3], 3, 3, 0, CL_DEVICE_TYPE_GPU, "NVIDIA CUDA", "NVIDIA Corporation",
             "NVIDIA Corporation", "NVIDIA H100 80GB HBM3");
    fill_dev(&l[4], 4, 4, 0, CL_DEVICE_TYPE_CPU, "rusticl", "Mesa/X.org", "Mesa/X.org",
             "llvmpipe (LLVM 15.0.6, 256 bits)");
    const struct { const char *sel; int want; } cases[] = {
        {"pocl", 0}, {"amd", 1}, {"AMD", 1}, {"intel", 2}, {"nvidia", 3}, {"h100", 3},
        {"rusticl", 4}, {"mesa", 4}, {"llvmpipe", 4}, {"authenticamd", 0}, {"ryzen", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (bsc_device_select(l, 5, cases[i].sel, &idx) != BSC_OK)
            fail_msg("'%s': %s", cases[i].sel, bsc_last_error());
        if (idx != cases[i].want)
            fail_msg("'%s' selected %d, not %d", cases[i].sel, idx, cases[i].want);
    }
    /* Only PoCL on an AMD CPU: `amd` still finds it, by the device vendor. */
    assert_int_equal(bsc_device_select(l, 1, "amd", &idx), BSC_OK);
    assert_int_equal(idx, 0);
    /* PoCL on an Intel CPU next to Intel's GPU: `intel` is the GPU's platform. */
    fill_dev(&l[0], 0, 0, 0, CL_DEVICE_TYPE_CPU, "Portable Computing Language",
             "The pocl project", "GenuineIntel", "pthread-alderlake");
    assert_int_equal(bsc_device_select(l, 3, "intel", &idx), BSC_OK);
    assert_int_equal(idx, 2);
}

static void test_ambiguous_lists_devices(void **state)
{
    (void)state;
    /* Device text that matches devices of two platforms: no guess. */
    bsc_device_info l[2];
    fill_dev(&l[0], 0, 0, 0, CL_DEVICE_TYPE_CPU, "Portable Computing Language",
             "The pocl project", "GenuineIntel", "pthread-skylake");
    fill_dev(&l[1], 1, 1, 0, CL_DEVICE_TYPE_CPU, "Intel(R) CPU Runtime for OpenCL(TM) "
             "Applications", "Intel(R) Corporation", "Intel(R) Corporation",
             "Intel(R) Xeon(R) Gold 6248 skylake");
    int idx = -1;
    assert_int_equal(bsc_device_select(l, 2, "skylake", &idx), BSC_ERR_USAGE);
    const char *msg = bsc_last_error();
    assert_non_null(strstr(msg, "ambiguous"));
    assert_non_null(strstr(msg, "pthread-skylake"));
    assert_non_null(strstr(msg, "Xeon(R) Gold"));
    assert_non_null(strstr(msg, "1:0"));
    /* Platform text too. */
    assert_int_equal(bsc_device_select(l, 2, "opencl", &idx), BSC_OK);   /* only Intel's */
    assert_int_equal(idx, 1);
    assert_int_equal(bsc_device_select(l, 2, "l", &idx), BSC_ERR_USAGE);
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
    /* One process: what bsc_device_select says. */
    assert_int_equal(sel_local("gpu", 0, 1), 1);
    assert_int_equal(sel_local("nvidia", 0, 1), sel("nvidia", 5));
    assert_int_equal(sel_local("radeon", 0, 1), -(int)BSC_ERR_USAGE - 100);
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
    const char *cols[] = {"#", "P:D", "type", "platform", "platform vendor", "vendor", "name",
                          "driver", "OpenCL C", "global mem", "max alloc", "CUs"};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        assert_non_null(strstr(buf, cols[i]));
    assert_non_null(strstr(buf, "8.0 GiB"));
    assert_non_null(strstr(buf, "2.0 GiB"));
    assert_non_null(strstr(buf, "ACCELERATOR"));
    assert_non_null(strstr(buf, "Portable Computing Language  The pocl project"));
    assert_null(strstr(buf, " \n"));   /* no trailing blanks */
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

/* The suite's device (tu_device()): listed with every field a selector
 * matches, and opened by its platform's name and by its own name. */
static void test_real_device(void **state)
{
    (void)state;
    bsc_device_info *list = NULL;
    int count = 0, idx = -1;
    assert_int_equal(bsc_device_list(&list, &count), BSC_OK);
    assert_true(count >= 1);
    for (int i = 0; i < count; i++) {
        assert_int_equal(list[i].index, i);
        assert_true(list[i].name[0] != '\0');
        assert_true(list[i].platform_name[0] != '\0');
        assert_true(list[i].platform_vendor[0] != '\0');
        assert_true(list[i].global_mem > 0);
        assert_true(list[i].compute_units > 0);
    }
    if (bsc_device_select(list, count, tu_device(), &idx) != BSC_OK)
        fail_msg("BATCHSCOPE_TEST_DEVICE=%s: %s", tu_device(), bsc_last_error());
    bsc_device_info mine = list[idx];
    int alone = 1;   /* the only device of its platform */
    for (int i = 0; i < count; i++)
        alone &= i == idx || list[i].platform_index != mine.platform_index;
    if (mine.type & CL_DEVICE_TYPE_CPU) {
        assert_int_equal(bsc_device_select(list, count, "cpu", &idx), BSC_OK);
        assert_true(list[idx].type & CL_DEVICE_TYPE_CPU);
    }
    free(list);

    bsc_context *ctx = NULL;
    if (alone) {
        assert_int_equal(bsc_context_open(mine.platform_name, &ctx), BSC_OK);
        char desc[512];
        bsc_context_describe(ctx, desc, sizeof desc);
        assert_non_null(strstr(desc, mine.platform_name));
        assert_non_null(strstr(desc, "driver"));
        assert_non_null(ctx->queue);
        assert_int_equal(bsc_finish(ctx), BSC_OK);
        bsc_context_free(ctx);
        ctx = NULL;
    }
    /* PoCL as the README names it. */
    if (strstr(mine.platform_vendor, "pocl")) {
        assert_int_equal(bsc_context_open("pocl", &ctx), BSC_OK);
        assert_string_equal(ctx->info.platform_vendor, mine.platform_vendor);
        bsc_context_free(ctx);
        ctx = NULL;
    }

    assert_int_equal(bsc_context_open("no-such-device", &ctx), BSC_ERR_USAGE);
    assert_null(ctx);
    assert_non_null(strstr(bsc_last_error(), mine.name));
    assert_int_equal(bsc_context_open("", &ctx), BSC_ERR_USAGE);
    assert_null(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_prefers_gpu),
        cmocka_unit_test(test_index_and_pd),
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_empty_selector_is_an_error),
        cmocka_unit_test(test_substring_case_insensitive),
        cmocka_unit_test(test_vendor_words),
        cmocka_unit_test(test_ambiguous_lists_devices),
        cmocka_unit_test(test_unmatched_lists_devices),
        cmocka_unit_test(test_local_ranks_take_devices_in_turn),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_real_device),
    };
    return cmocka_run_group_tests(tests, setup_fake, NULL);
}
