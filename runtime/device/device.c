/* OpenCL devices: listing, selection, the compute context, launches and the
 * OpenCL error table. */
#include "batchscope/device.h"
#include "batchscope/blas.h"
#include "program_cache_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Not in every cl.h: the ICD loader's "no platform at all". */
#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

static const char install_hint[] =
    "Install an OpenCL runtime: for CPUs, PoCL (apt-get install pocl-opencl-icd); "
    "for GPUs, the vendor's OpenCL runtime (e.g. nvidia-opencl-icd, ROCm's OpenCL, "
    "intel-opencl-icd). `clinfo` shows what the ICD loader finds.";

/* ------------------------------------------------------------------ errors */

#define BSC_CL_ERROR_TABLE(X)                                  \
    X(CL_SUCCESS, 0)                                           \
    X(CL_DEVICE_NOT_FOUND, -1)                                 \
    X(CL_DEVICE_NOT_AVAILABLE, -2)                             \
    X(CL_COMPILER_NOT_AVAILABLE, -3)                           \
    X(CL_MEM_OBJECT_ALLOCATION_FAILURE, -4)                    \
    X(CL_OUT_OF_RESOURCES, -5)                                 \
    X(CL_OUT_OF_HOST_MEMORY, -6)                               \
    X(CL_PROFILING_INFO_NOT_AVAILABLE, -7)                     \
    X(CL_MEM_COPY_OVERLAP, -8)                                 \
    X(CL_IMAGE_FORMAT_MISMATCH, -9)                            \
    X(CL_IMAGE_FORMAT_NOT_SUPPORTED, -10)                      \
    X(CL_BUILD_PROGRAM_FAILURE, -11)                           \
    X(CL_MAP_FAILURE, -12)                                     \
    X(CL_MISALIGNED_SUB_BUFFER_OFFSET, -13)                    \
    X(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, -14)       \
    X(CL_COMPILE_PROGRAM_FAILURE, -15)                         \
    X(CL_LINKER_NOT_AVAILABLE, -16)                            \
    X(CL_LINK_PROGRAM_FAILURE, -17)                            \
    X(CL_DEVICE_PARTITION_FAILED, -18)                         \
    X(CL_KERNEL_ARG_INFO_NOT_AVAILABLE, -19)                   \
    X(CL_INVALID_VALUE, -30)                                   \
    X(CL_INVALID_DEVICE_TYPE, -31)                             \
    X(CL_INVALID_PLATFORM, -32)                                \
    X(CL_INVALID_DEVICE, -33)                                  \
    X(CL_INVALID_CONTEXT, -34)                                 \
    X(CL_INVALID_QUEUE_PROPERTIES, -35)                        \
    X(CL_INVALID_COMMAND_QUEUE, -36)                           \
    X(CL_INVALID_HOST_PTR, -37)                                \
    X(CL_INVALID_MEM_OBJECT, -38)                              \
    X(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR, -39)                 \
    X(CL_INVALID_IMAGE_SIZE, -40)                              \
    X(CL_INVALID_SAMPLER, -41)                                 \
    X(CL_INVALID_BINARY, -42)                                  \
    X(CL_INVALID_BUILD_OPTIONS, -43)                           \
    X(CL_INVALID_PROGRAM, -44)                                 \
    X(CL_INVALID_PROGRAM_EXECUTABLE, -45)                      \
    X(CL_INVALID_KERNEL_NAME, -46)                             \
    X(CL_INVALID_KERNEL_DEFINITION, -47)                       \
    X(CL_INVALID_KERNEL, -48)                                  \
    X(CL_INVALID_ARG_INDEX, -49)                               \
    X(CL_INVALID_ARG_VALUE, -50)                               \
    X(CL_INVALID_ARG_SIZE, -51)                                \
    X(CL_INVALID_KERNEL_ARGS, -52)                             \
    X(CL_INVALID_WORK_DIMENSION, -53)                          \
    X(CL_INVALID_WORK_GROUP_SIZE, -54)                         \
    X(CL_INVALID_WORK_ITEM_SIZE, -55)                          \
    X(CL_INVALID_GLOBAL_OFFSET, -56)                           \
    X(CL_INVALID_EVENT_WAIT_LIST, -57)                         \
    X(CL_INVALID_EVENT, -58)                                   \
    X(CL_INVALID_OPERATION, -59)                               \
    X(CL_INVALID_GL_OBJECT, -60)                               \
    X(CL_INVALID_BUFFER_SIZE, -61)                             \
    X(CL_INVALID_MIP_LEVEL, -62)                               \
    X(CL_INVALID_GLOBAL_WORK_SIZE, -63)                        \
    X(CL_INVALID_PROPERTY, -64)                                \
    X(CL_INVALID_IMAGE_DESCRIPTOR, -65)                        \
    X(CL_INVALID_COMPILER_OPTIONS, -66)                        \
    X(CL_INVALID_LINKER_OPTIONS, -67)                          \
    X(CL_INVALID_DEVICE_PARTITION_COUNT, -68)                  \
    X(CL_INVALID_PIPE_SIZE, -69)                               \
    X(CL_INVALID_DEVICE_QUEUE, -70)                            \
    X(CL_INVALID_SPEC_ID, -71)                                 \
    X(CL_MAX_SIZE_RESTRICTION_EXCEEDED, -72)                   \
    X(CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR, -1000)           \
    X(CL_PLATFORM_NOT_FOUND_KHR, -1001)                        \
    X(CL_INVALID_D3D10_DEVICE_KHR, -1002)                      \
    X(CL_INVALID_D3D10_RESOURCE_KHR, -1003)                    \
    X(CL_D3D10_RESOURCE_ALREADY_ACQUIRED_KHR, -1004)           \
    X(CL_D3D10_RESOURCE_NOT_ACQUIRED_KHR, -1005)               \
    X(CL_INVALID_D3D11_DEVICE_KHR, -1006)                      \
    X(CL_INVALID_D3D11_RESOURCE_KHR, -1007)                    \
    X(CL_D3D11_RESOURCE_ALREADY_ACQUIRED_KHR, -1008)           \
    X(CL_D3D11_RESOURCE_NOT_ACQUIRED_KHR, -1009)               \
    X(CL_INVALID_DX9_MEDIA_ADAPTER_KHR, -1010)                 \
    X(CL_INVALID_DX9_MEDIA_SURFACE_KHR, -1011)                 \
    X(CL_DX9_MEDIA_SURFACE_ALREADY_ACQUIRED_KHR, -1012)        \
    X(CL_DX9_MEDIA_SURFACE_NOT_ACQUIRED_KHR, -1013)            \
    X(CL_DEVICE_PARTITION_FAILED_EXT, -1057)                   \
    X(CL_INVALID_PARTITION_COUNT_EXT, -1058)                   \
    X(CL_INVALID_PARTITION_NAME_EXT, -1059)                    \
    X(CL_EGL_RESOURCE_NOT_ACQUIRED_KHR, -1092)                 \
    X(CL_INVALID_EGL_OBJECT_KHR, -1093)                        \
    X(CL_INVALID_ACCELERATOR_INTEL, -1094)                     \
    X(CL_INVALID_ACCELERATOR_TYPE_INTEL, -1095)                \
    X(CL_INVALID_ACCELERATOR_DESCRIPTOR_INTEL, -1096)          \
    X(CL_ACCELERATOR_TYPE_NOT_SUPPORTED_INTEL, -1097)          \
    X(CL_INVALID_VA_API_MEDIA_ADAPTER_INTEL, -1098)            \
    X(CL_INVALID_VA_API_MEDIA_SURFACE_INTEL, -1099)            \
    X(CL_VA_API_MEDIA_SURFACE_ALREADY_ACQUIRED_INTEL, -1100)   \
    X(CL_VA_API_MEDIA_SURFACE_NOT_ACQUIRED_INTEL, -1101)       \
    X(CL_COMMAND_TERMINATED_ITSELF_WITH_FAILURE_ARM, -1108)

const char *bsc_cl_error_name(cl_int err)
{
    /* A table of literals rather than the cl.h macros: extension codes are
     * missing from some headers, and the names must not depend on which. */
    switch (err) {
#define CL_ERR_CASE(name, code) case code: return #name;
        BSC_CL_ERROR_TABLE(CL_ERR_CASE)
#undef CL_ERR_CASE
    default: return "CL_UNKNOWN_ERROR";
    }
}

bsc_status bsc_cl_fail(cl_int err, const char *what)
{
    return bsc_fail(BSC_ERR_OPENCL, "%s: %s (%d)", what ? what : "OpenCL call",
                    bsc_cl_error_name(err), (int)err);
}

/* ----------------------------------------------------------------- listing */

const char *bsc_device_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "ACCELERATOR";
    if (t & CL_DEVICE_TYPE_DEFAULT) return "DEFAULT";
    return "OTHER";
}

/* Copies a string property into buf, truncating: clGet*Info refuses a buffer
 * shorter than the value, and driver strings can be long. */
static void platform_str(cl_platform_id p, cl_platform_info what, char *buf, size_t len)
{
    size_t need = 0;
    buf[0] = '\0';
    if (clGetPlatformInfo(p, what, 0, NULL, &need) != CL_SUCCESS || need == 0)
        return;
    char *tmp = malloc(need + 1);
    if (!tmp)
        return;
    if (clGetPlatformInfo(p, what, need, tmp, NULL) == CL_SUCCESS) {
        tmp[need] = '\0';
        snprintf(buf, len, "%s", tmp);
    }
    free(tmp);
}

static void device_str(cl_device_id d, cl_device_info what, char *buf, size_t len)
{
    size_t need = 0;
    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, 0, NULL, &need) != CL_SUCCESS || need == 0)
        return;
    char *tmp = malloc(need + 1);
    if (!tmp)
        return;
    if (clGetDeviceInfo(d, what, need, tmp, NULL) == CL_SUCCESS) {
        tmp[need] = '\0';
        snprintf(buf, len, "%s", tmp);
    }
    free(tmp);
}

static void fill_info(bsc_device_info *di, cl_platform_id p, cl_device_id d)
{
    di->platform = p;
    di->device = d;
    di->type = 0;
    di->global_mem = 0;
    di->max_alloc = 0;
    di->compute_units = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof di->type, &di->type, NULL);
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof di->global_mem, &di->global_mem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof di->max_alloc, &di->max_alloc, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof di->compute_units,
                    &di->compute_units, NULL);
    platform_str(p, CL_PLATFORM_NAME, di->platform_name, sizeof di->platform_name);
    platform_str(p, CL_PLATFORM_VENDOR, di->platform_vendor, sizeof di->platform_vendor);
    device_str(d, CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
    device_str(d, CL_DEVICE_NAME, di->name, sizeof di->name);
    device_str(d, CL_DRIVER_VERSION, di->driver_version, sizeof di->driver_version);
    device_str(d, CL_DEVICE_VERSION, di->device_version, sizeof di->device_version);
    device_str(d, CL_DEVICE_OPENCL_C_VERSION, di->opencl_c_version, sizeof di->opencl_c_version);
}

/* Enumerates every device of every platform. A platform whose devices cannot
 * be queried is skipped rather than failing the whole listing: one broken ICD
 * should not hide a working one. */
bsc_status bsc_device_list(bsc_device_info **out, int *count)
{
    bsc_status st = BSC_OK;
    cl_platform_id *plats = NULL;
    cl_device_id *devs = NULL;
    bsc_device_info *list = NULL;
    int n = 0, cap = 0;
    cl_uint nplat = 0;
    cl_int first_err = CL_SUCCESS;

    *out = NULL;
    *count = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &nplat);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && nplat == 0)) {
        st = bsc_fail(BSC_ERR_NO_PLATFORM,
                      "no OpenCL platform found (clGetPlatformIDs: %s (%d)). %s",
                      bsc_cl_error_name(err), (int)err, install_hint);
        goto cleanup;
    }
    if (err != CL_SUCCESS) {
        st = bsc_cl_fail(err, "clGetPlatformIDs (listing OpenCL platforms)");
        goto cleanup;
    }
    plats = calloc(nplat, sizeof *plats);
    if (!plats) {
        st = bsc_fail(BSC_ERR_NOMEM, "listing %u OpenCL platforms", nplat);
        goto cleanup;
    }
    err = clGetPlatformIDs(nplat, plats, NULL);
    if (err != CL_SUCCESS) {
        st = bsc_cl_fail(err, "clGetPlatformIDs (listing OpenCL platforms)");
        goto cleanup;
    }

    for (cl_uint p = 0; p < nplat; p++) {
        cl_uint ndev = 0;
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &ndev);
        if (err != CL_SUCCESS || ndev == 0) {
            if (err != CL_SUCCESS && err != CL_DEVICE_NOT_FOUND && first_err == CL_SUCCESS)
                first_err = err;
            continue;
        }
        free(devs);
        devs = calloc(ndev, sizeof *devs);
        if (!devs) {
            st = bsc_fail(BSC_ERR_NOMEM, "listing %u OpenCL devices", ndev);
            goto cleanup;
        }
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, ndev, devs, NULL);
        if (err != CL_SUCCESS) {
            if (first_err == CL_SUCCESS)
                first_err = err;
            continue;
        }
        for (cl_uint d = 0; d < ndev; d++) {
            if (n == cap) {
                int ncap = cap ? cap * 2 : 4;
                bsc_device_info *grown = realloc(list, (size_t)ncap * sizeof *list);
                if (!grown) {
                    st = bsc_fail(BSC_ERR_NOMEM, "listing OpenCL devices");
                    goto cleanup;
                }
                list = grown;
                cap = ncap;
            }
            bsc_device_info *di = &list[n];
            memset(di, 0, sizeof *di);
            di->index = n;
            di->platform_index = (int)p;
            di->device_index = (int)d;
            fill_info(di, plats[p], devs[d]);
            n++;
        }
    }
    if (n == 0) {
        if (first_err != CL_SUCCESS)
            st = bsc_fail(BSC_ERR_NO_PLATFORM,
                          "%u OpenCL platform(s) but no usable device "
                          "(clGetDeviceIDs: %s (%d)). %s",
                          nplat, bsc_cl_error_name(first_err), (int)first_err, install_hint);
        else
            st = bsc_fail(BSC_ERR_NO_PLATFORM,
                          "%u OpenCL platform(s) but no device. %s", nplat, install_hint);
        goto cleanup;
    }
    *out = list;
    *count = n;
    list = NULL;

cleanup:
    free(list);
    free(devs);
    free(plats);
    return st;
}

/* The loader extension (cl_icd.h of some loaders only). */
typedef cl_int (*icdl_info_fn)(cl_uint param, size_t size, void *value, size_t *size_ret);
enum { ICDL_OCL_VERSION = 1, ICDL_VERSION = 2, ICDL_NAME = 3 };

static void loader_str(icdl_info_fn f, cl_uint what, char *buf, size_t len)
{
    size_t need = 0;
    buf[0] = '\0';
    if (f(what, 0, NULL, &need) != CL_SUCCESS || need == 0 || need > len)
        return;
    if (f(what, need, buf, NULL) != CL_SUCCESS)
        buf[0] = '\0';
    buf[len - 1] = '\0';
}

void bsc_opencl_loader_version(char *buf, size_t len)
{
    /* The loader's own extension is reached through the platform-less
     * lookup (deprecated since 1.2, and the only one that asks the loader
     * rather than a driver, so it works with no platform at all). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    icdl_info_fn f = (icdl_info_fn)(void (*)(void))clGetExtensionFunctionAddress(
        "clGetICDLoaderInfoOCLICD");
#pragma GCC diagnostic pop
    char name[64], ver[64], ocl[64];
    if (!f) {
        snprintf(buf, len, "unknown");
        return;
    }
    loader_str(f, ICDL_NAME, name, sizeof name);
    loader_str(f, ICDL_VERSION, ver, sizeof ver);
    loader_str(f, ICDL_OCL_VERSION, ocl, sizeof ocl);
    snprintf(buf, len, "%s %s%s%s", name[0] ? name : "ICD loader", ver[0] ? ver : "?",
             ocl[0] ? ", " : "", ocl);
}

/* --------------------------------------------------------------- the table */

static void format_mem(cl_ulong bytes, char *buf, size_t len)
{
    const double gib = 1024.0 * 1024.0 * 1024.0;
    if ((double)bytes >= gib)
        snprintf(buf, len, "%.1f GiB", (double)bytes / gib);
    else
        snprintf(buf, len, "%.0f MiB", (double)bytes / (1024.0 * 1024.0));
}

#define TABLE_COLS 12

/* The columns a selector matches come first after the type, so a user sees
 * what to type. */
static void row_cells(const bsc_device_info *di, char cells[TABLE_COLS][260])
{
    snprintf(cells[0], 260, "%d", di->index);
    snprintf(cells[1], 260, "%d:%d", di->platform_index, di->device_index);
    snprintf(cells[2], 260, "%s", bsc_device_type_name(di->type));
    snprintf(cells[3], 260, "%s", di->platform_name);
    snprintf(cells[4], 260, "%s", di->platform_vendor);
    snprintf(cells[5], 260, "%s", di->vendor);
    snprintf(cells[6], 260, "%s", di->name);
    snprintf(cells[7], 260, "%s", di->driver_version);
    snprintf(cells[8], 260, "%s", di->opencl_c_version);
    format_mem(di->global_mem, cells[9], 260);
    format_mem(di->max_alloc, cells[10], 260);
    snprintf(cells[11], 260, "%u", di->compute_units);
}

void bsc_device_print_table(FILE *f, const bsc_device_info *list, int count)
{
    static const char *const head[TABLE_COLS] = {
        "#", "P:D", "type", "platform", "platform vendor", "vendor", "name", "driver",
        "OpenCL C", "global mem", "max alloc", "CUs"};
    char cells[TABLE_COLS][260];
    int width[TABLE_COLS];

    for (int c = 0; c < TABLE_COLS; c++)
        width[c] = (int)strlen(head[c]);
    for (int i = 0; i < count; i++) {
        row_cells(&list[i], cells);
        for (int c = 0; c < TABLE_COLS; c++) {
            int w = (int)strlen(cells[c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    /* The last column is not padded: no trailing blanks. */
    for (int c = 0; c < TABLE_COLS; c++)
        fprintf(f, "%-*s%s", c + 1 < TABLE_COLS ? width[c] : 0, head[c],
                c + 1 < TABLE_COLS ? "  " : "\n");
    for (int i = 0; i < count; i++) {
        row_cells(&list[i], cells);
        for (int c = 0; c < TABLE_COLS; c++)
            fprintf(f, "%-*s%s", c + 1 < TABLE_COLS ? width[c] : 0, cells[c],
                    c + 1 < TABLE_COLS ? "  " : "\n");
    }
}

/* ---------------------------------------------------------------- selection */

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Case-insensitive strstr. */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return 0;
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

static const char *skip_blank(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

/* Vendors whose strings do not contain the word users type. */
static const struct { const char *word, *also; } vendor_aliases[] = {
    {"amd", "Advanced Micro Devices"},
};

/* 1 when the text selector matches device di's platform fields (tier 0:
 * platform name or vendor) or its own (tier 1: device vendor or name). */
static int matches_text(const bsc_device_info *di, int tier, const char *selector)
{
    const char *f1 = tier == 0 ? di->platform_name : di->vendor;
    const char *f2 = tier == 0 ? di->platform_vendor : di->name;
    if (contains_ci(f1, selector) || contains_ci(f2, selector))
        return 1;
    for (size_t i = 0; i < sizeof vendor_aliases / sizeof vendor_aliases[0]; i++)
        if (strcasecmp(selector, vendor_aliases[i].word) == 0 &&
            (contains_ci(f1, vendor_aliases[i].also) || contains_ci(f2, vendor_aliases[i].also)))
            return 1;
    return 0;
}

/* Fails with `status`, the reason, and the device table, so the user sees the
 * choices right where the selector went wrong. */
static bsc_status fail_with_table(const bsc_device_info *list, int count, const char *reason)
{
    char *table = NULL;
    size_t tlen = 0;
    FILE *mf = open_memstream(&table, &tlen);
    if (mf) {
        bsc_device_print_table(mf, list, count);
        fclose(mf);
    }
    bsc_status st = bsc_fail(BSC_ERR_USAGE, "%s; the devices are:\n%s", reason,
                             table ? table : "(device table unavailable)\n");
    free(table);
    return st;
}

bsc_status bsc_device_select(const bsc_device_info *list, int count,
                             const char *selector, int *index)
{
    char reason[512];

    if (count <= 0 || !list)
        return bsc_fail(BSC_ERR_NO_PLATFORM, "no OpenCL device to select from. %s",
                        install_hint);

    if (selector && !*skip_blank(selector))
        return fail_with_table(list, count, "the device selector is empty (use auto, an index, "
                               "P:D, cpu/gpu/accelerator, or part of a platform, vendor or "
                               "device name)");
    if (!selector || strcasecmp(selector, "auto") == 0) {
        for (int i = 0; i < count; i++)
            if (list[i].type & CL_DEVICE_TYPE_GPU) { *index = i; return BSC_OK; }
        for (int i = 0; i < count; i++)
            if (list[i].type & CL_DEVICE_TYPE_CPU) { *index = i; return BSC_OK; }
        *index = 0;
        return BSC_OK;
    }

    if (all_digits(selector)) {
        long want = strtol(selector, NULL, 10);
        for (int i = 0; i < count; i++)
            if (list[i].index == want) { *index = i; return BSC_OK; }
        snprintf(reason, sizeof reason, "device index %s does not exist", selector);
        return fail_with_table(list, count, reason);
    }

    const char *colon = strchr(selector, ':');
    if (colon) {
        char pbuf[32];
        size_t plen = (size_t)(colon - selector);
        if (plen > 0 && plen < sizeof pbuf) {
            memcpy(pbuf, selector, plen);
            pbuf[plen] = '\0';
            if (all_digits(pbuf) && all_digits(colon + 1)) {
                long p = strtol(pbuf, NULL, 10), d = strtol(colon + 1, NULL, 10);
                for (int i = 0; i < count; i++)
                    if (list[i].platform_index == p && list[i].device_index == d) {
                        *index = i;
                        return BSC_OK;
                    }
                snprintf(reason, sizeof reason, "device %s (platform:device) does not exist",
                         selector);
                return fail_with_table(list, count, reason);
            }
        }
    }

    static const struct { const char *word; cl_device_type type; } types[] = {
        {"cpu", CL_DEVICE_TYPE_CPU},
        {"gpu", CL_DEVICE_TYPE_GPU},
        {"accelerator", CL_DEVICE_TYPE_ACCELERATOR},
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        if (strcasecmp(selector, types[t].word) != 0)
            continue;
        /* A type names a kind, not one device: the first of that kind wins. */
        for (int i = 0; i < count; i++)
            if (list[i].type & types[t].type) { *index = i; return BSC_OK; }
        snprintf(reason, sizeof reason, "no %s device", types[t].word);
        return fail_with_table(list, count, reason);
    }

    /* Text: the platform's fields first, then the device's. */
    for (int tier = 0; tier < 2; tier++) {
        int found = -1, other_platform = -1;
        for (int i = 0; i < count; i++) {
            if (!matches_text(&list[i], tier, selector))
                continue;
            if (found < 0)
                found = i;
            else if (list[i].platform_index != list[found].platform_index && other_platform < 0)
                other_platform = i;
        }
        if (found < 0)
            continue;
        if (other_platform < 0) {
            *index = found;
            return BSC_OK;
        }
        snprintf(reason, sizeof reason,
                 "device selector '%s' is ambiguous: it matches devices of platforms %d "
                 "(%s) and %d (%s); use an index or P:D", selector,
                 list[found].platform_index, list[found].platform_name,
                 list[other_platform].platform_index, list[other_platform].platform_name);
        return fail_with_table(list, count, reason);
    }
    snprintf(reason, sizeof reason,
             "device selector '%s' matches no device (use an index, P:D, cpu/gpu/"
             "accelerator, or part of a platform, vendor or device name)", selector);
    return fail_with_table(list, count, reason);
}

/* The devices one selector may hand to several processes of a host, in
 * turn: auto every GPU (else every CPU, else all), a type every device of
 * that type, a name every device of the first tier it matches (platform
 * fields, then device fields); an index or P:D its one device. *n = 0 when
 * it matches none. */
static void turn_candidates(const bsc_device_info *list, int count, const char *selector,
                            int *idx, int *n)
{
    static const struct { const char *word; cl_device_type type; } types[] = {
        {"cpu", CL_DEVICE_TYPE_CPU},
        {"gpu", CL_DEVICE_TYPE_GPU},
        {"accelerator", CL_DEVICE_TYPE_ACCELERATOR},
    };
    *n = 0;
    if (!selector || strcasecmp(selector, "auto") == 0) {
        cl_device_type order[2] = {CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_CPU};
        for (int k = 0; k < 2 && *n == 0; k++)
            for (int i = 0; i < count; i++)
                if (list[i].type & order[k])
                    idx[(*n)++] = i;
        for (int i = 0; *n == 0 && i < count; i++)
            idx[(*n)++] = i;
        return;
    }
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        if (strcasecmp(selector, types[t].word) == 0) {
            for (int i = 0; i < count; i++)
                if (list[i].type & types[t].type)
                    idx[(*n)++] = i;
            return;
        }
    if (all_digits(selector) || strchr(selector, ':')) {
        int one;
        if (bsc_device_select(list, count, selector, &one) == BSC_OK)
            idx[(*n)++] = one;
        return;
    }
    /* Text: the devices of the first tier it matches (platforms, then
     * devices), as bsc_device_select reads it. */
    for (int tier = 0; tier < 2 && *n == 0; tier++)
        for (int i = 0; i < count; i++)
            if (matches_text(&list[i], tier, selector))
                idx[(*n)++] = i;
}

bsc_status bsc_device_select_local(const bsc_device_info *list, int count,
                                   const char *selector, int nth, int n, int *index)
{
    if (nth < 0)
        nth = 0;
    if (selector && strchr(selector, ',')) {
        /* One selector per local rank, in turn. */
        char *copy = strdup(selector), *save = NULL, *item[64];
        int k = 0;
        if (!copy)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        for (char *t = strtok_r(copy, ",", &save); t && k < 64; t = strtok_r(NULL, ",", &save))
            item[k++] = t;
        bsc_status s = k ? bsc_device_select(list, count, item[nth % k], index)
                         : bsc_fail(BSC_ERR_USAGE, "device selector list '%s' is empty",
                                    selector);
        if (s != BSC_OK && k)
            bsc_fail_context(s, "local rank %d takes '%s' of --device %s", nth, item[nth % k],
                             selector);
        free(copy);
        return s;
    }
    if (n <= 1 || count <= 0 || !list)
        return bsc_device_select(list, count, selector, index);
    int *cand = malloc((size_t)count * sizeof *cand), m = 0;
    if (!cand)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    turn_candidates(list, count, selector, cand, &m);
    bsc_status s = m ? BSC_OK : bsc_device_select(list, count, selector, index);
    if (m)
        *index = cand[nth % m];
    free(cand);
    return s;
}

/* ----------------------------------------------------------------- context */

bsc_status bsc_context_open(const char *selector, bsc_context **out)
{
    return bsc_context_open_local(selector, 0, 1, out);
}

bsc_status bsc_context_open_local(const char *selector, int nth, int n, bsc_context **out)
{
    bsc_status st = BSC_OK;
    bsc_device_info *list = NULL;
    bsc_context *ctx = NULL;
    int count = 0, idx = 0;
    cl_int err;

    *out = NULL;
    st = bsc_device_list(&list, &count);
    if (st != BSC_OK)
        goto cleanup;
    st = bsc_device_select_local(list, count, selector, nth, n, &idx);
    if (st != BSC_OK)
        goto cleanup;

    ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        st = bsc_fail(BSC_ERR_NOMEM, "opening an OpenCL context");
        goto cleanup;
    }
    ctx->info = list[idx];
    cl_context_properties props[] = {
        CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->info.platform, 0};
    ctx->context = clCreateContext(props, 1, &ctx->info.device, NULL, NULL, &err);
    if (!ctx->context) {
        st = bsc_cl_fail(err, "clCreateContext");
        bsc_fail_context(st, "opening device %d (%s / %s)", ctx->info.index,
                         ctx->info.platform_name, ctx->info.name);
        goto cleanup;
    }
    /* In order and unprofiled: the training loop's correctness relies on
     * enqueue order, and profiling costs time on every command. */
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->info.device, 0, &err);
    if (!ctx->queue) {
        st = bsc_cl_fail(err, "clCreateCommandQueue");
        bsc_fail_context(st, "opening device %d (%s / %s)", ctx->info.index,
                         ctx->info.platform_name, ctx->info.name);
        goto cleanup;
    }
    /* Every context gets the device's tuned GEMM parameters (a no-op where
     * none are known), so no caller can forget them. */
    st = bsc_blas_tune(ctx);
    if (st != BSC_OK)
        goto cleanup;
    /* The GEMM backend: $BATCHSCOPE_GEMM (so that a whole test suite can
     * run on either), else auto; a study's `gemm:` chooses again later. */
    bsc_gemm_backend want = BSC_GEMM_AUTO;
    const char *env = getenv("BATCHSCOPE_GEMM");
    if ((env && *env && (st = bsc_gemm_backend_parse(env, &want)) != BSC_OK) ||
        (st = bsc_gemm_use(ctx, want)) != BSC_OK) {
        if (env && *env)
            bsc_fail_context(st, "$BATCHSCOPE_GEMM");
        goto cleanup;
    }
    *out = ctx;
    ctx = NULL;

cleanup:
    bsc_context_free(ctx);
    free(list);
    return st;
}

void bsc_context_free(bsc_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->queue)
        clFinish(ctx->queue);
    bsc_program_cache_free(ctx->programs);
    if (ctx->queue)
        clReleaseCommandQueue(ctx->queue);
    if (ctx->context)
        clReleaseContext(ctx->context);
    free(ctx);
}

void bsc_context_describe(const bsc_context *ctx, char *buf, size_t len)
{
    if (!ctx) {
        snprintf(buf, len, "(no device)");
        return;
    }
    snprintf(buf, len, "%s / %s (driver %s)", ctx->info.platform_name, ctx->info.name,
             ctx->info.driver_version);
}

/* ---------------------------------------------------------------- launches */

static void kernel_name(cl_kernel k, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t need = 0;
    if (clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, 0, NULL, &need) != CL_SUCCESS
        || need == 0 || need > len) {
        snprintf(buf, len, "?");
        return;
    }
    if (clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, len, buf, NULL) != CL_SUCCESS)
        snprintf(buf, len, "?");
}

/* bsc_launch's own choice of a local size: at most this many items, for
 * ranges longer than LAUNCH_LOCAL_MIN_GLOBAL. */
#define LAUNCH_LOCAL 256
#define LAUNCH_LOCAL_MIN_GLOBAL 256

bsc_status bsc_launch(bsc_context *ctx, cl_kernel k, int nargs, const bsc_karg *args,
                      int work_dim, const size_t *global, const size_t *local)
{
    char what[320], kname[128];
    size_t g[3];
    const size_t *l = local;
    cl_int err;

    if (work_dim < 1 || work_dim > 3) {
        kernel_name(k, kname, sizeof kname);
        return bsc_fail(BSC_ERR_INVALID, "launching kernel %s: work_dim %d (must be 1..3)",
                        kname, work_dim);
    }
    for (int i = 0; i < nargs; i++) {
        err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].value);
        if (err != CL_SUCCESS) {
            kernel_name(k, kname, sizeof kname);
            snprintf(what, sizeof what, "clSetKernelArg(%s, arg %d, %zu bytes)", kname, i,
                     args[i].size);
            return bsc_cl_fail(err, what);
        }
    }
    for (int d = 0; d < work_dim; d++) {
        g[d] = global[d];
        /* A zero local size means "let the runtime choose" for the whole range. */
        if (local && local[d] == 0)
            l = NULL;
    }
    /* A 1-D range with no local size gets one here: OpenCL 1.2 runtimes pick
     * a divisor of the global size, and for a size with no good divisor
     * that is tiny -- the quick start's 118282 parameters made PoCL run the
     * optimizer step in 59141 groups of 2, and its per-group setup took a
     * third of the CPU time of a step (perf). The group is a power of two
     * up to LAUNCH_LOCAL, lowered until there are groups enough for every
     * compute unit, and the range is rounded up to it (kernels guard). */
    size_t chosen = 0;
    if (!l && work_dim == 1 && g[0] > LAUNCH_LOCAL_MIN_GLOBAL) {
        size_t want = LAUNCH_LOCAL, units = ctx->info.compute_units ? ctx->info.compute_units : 1;
        while (want > 1 && g[0] / want < 4 * units)
            want /= 2;
        if (bsc_local_size(ctx, k, want, &chosen) == BSC_OK && chosen > 1)
            l = &chosen;
    }
    if (l)
        for (int d = 0; d < work_dim; d++)
            g[d] = (g[d] + l[d] - 1) / l[d] * l[d];
    for (int d = 0; d < work_dim; d++)
        if (g[d] == 0)
            return BSC_OK; /* nothing to do; OpenCL rejects an empty range */
    err = clEnqueueNDRangeKernel(ctx->queue, k, (cl_uint)work_dim, NULL, g, l, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        kernel_name(k, kname, sizeof kname);
        snprintf(what, sizeof what, "clEnqueueNDRangeKernel(%s, global %zu, local %zu)",
                 kname, g[0], l ? l[0] : (size_t)0);
        return bsc_cl_fail(err, what);
    }
    return BSC_OK;
}

bsc_status bsc_local_size(bsc_context *ctx, cl_kernel k, size_t want, size_t *local)
{
    size_t kmax = 0, items[3] = {0, 0, 0};
    cl_int err = clGetKernelWorkGroupInfo(k, ctx->info.device, CL_KERNEL_WORK_GROUP_SIZE,
                                          sizeof kmax, &kmax, NULL);
    if (err != CL_SUCCESS) {
        char kname[128], what[200];
        kernel_name(k, kname, sizeof kname);
        snprintf(what, sizeof what, "clGetKernelWorkGroupInfo(%s, CL_KERNEL_WORK_GROUP_SIZE)",
                 kname);
        return bsc_cl_fail(err, what);
    }
    /* The first dimension's limit: some devices report fewer than 3 entries. */
    if (clGetDeviceInfo(ctx->info.device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items,
                        NULL) == CL_SUCCESS && items[0] && items[0] < kmax)
        kmax = items[0];
    size_t l = 1;
    while (l * 2 <= want && l * 2 <= kmax)
        l *= 2;
    *local = l;
    return BSC_OK;
}

bsc_status bsc_finish(bsc_context *ctx)
{
    cl_int err = clFinish(ctx->queue);
    if (err != CL_SUCCESS)
        return bsc_cl_fail(err, "clFinish (waiting for the device queue)");
    return BSC_OK;
}
