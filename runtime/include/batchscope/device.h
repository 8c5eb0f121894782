/* batchscope: OpenCL devices, the compute context and its kernels.
 *
 * One bsc_context holds one device, one in-order command queue and the
 * in-memory program cache. Programs are built from the OpenCL C sources in
 * cl/ (embedded into libbatchscope at build time, or read from
 * $BATCHSCOPE_CL_DIR) or from a source a plugin passes in, and their binaries
 * are cached on disk (see program_cache.c).
 */
#ifndef BATCHSCOPE_DEVICE_H
#define BATCHSCOPE_DEVICE_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stddef.h>
#include <stdio.h>

#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_device_info {
    int index;          /* flat index over all platforms, as `batchscope devices` shows */
    int platform_index; /* P of P:D */
    int device_index;   /* D of P:D */
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type type;
    char platform_name[128];
    char vendor[128];
    char name[256];
    char driver_version[128];
    char device_version[128];   /* "OpenCL 3.0 PoCL ..." */
    char opencl_c_version[128];
    cl_ulong global_mem;
    cl_ulong max_alloc;
    cl_uint compute_units;
} bsc_device_info;

/* Enumerates every device of every platform. On success *out is malloc'ed
 * (free with free()) and *count >= 1. No platform at all (-1001) or no device
 * returns BSC_ERR_NO_PLATFORM with a message that says what to install. */
bsc_status bsc_device_list(bsc_device_info **out, int *count);

/* Resolves a selector against a device list: NULL/"auto" (first GPU, else
 * first CPU, else the first device), a flat index "3", "P:D", a type ("cpu",
 * "gpu", "accelerator"), or a case-insensitive substring of platform, vendor
 * or device name. An unmatched or ambiguous selector returns BSC_ERR_USAGE
 * with a message that lists the devices. */
bsc_status bsc_device_select(const bsc_device_info *list, int count,
                             const char *selector, int *index);

/* "CPU", "GPU", "ACCELERATOR", "DEFAULT" or "OTHER". */
const char *bsc_device_type_name(cl_device_type t);

/* Writes the device table that `batchscope devices` prints. */
void bsc_device_print_table(FILE *f, const bsc_device_info *list, int count);

typedef struct bsc_program_cache bsc_program_cache;

typedef struct bsc_context {
    bsc_device_info info;
    cl_context context;
    cl_command_queue queue;
    bsc_program_cache *programs;
} bsc_context;

/* Opens the device the selector names (see bsc_device_select). */
bsc_status bsc_context_open(const char *selector, bsc_context **out);
void bsc_context_free(bsc_context *ctx);

/* One-line description "platform / device (driver X)" for logs and manifests. */
void bsc_context_describe(const bsc_context *ctx, char *buf, size_t len);

/* The kernel `kernel` from the embedded source file `file` (e.g.
 * "elementwise.cl"), built once per context and cached on disk. The
 * returned kernel is owned by the context: do not release it. Build
 * failures return BSC_ERR_BUILD with the compiler's build log. */
bsc_status bsc_kernel(bsc_context *ctx, const char *file, const char *kernel,
                      cl_kernel *out);

/* Same, for a source that is not one of cl/ (an out-of-tree plugin's own
 * kernels). `name` identifies the program in messages and in the memory
 * cache; the disk cache keys on the source text itself. */
bsc_status bsc_kernel_from_source(bsc_context *ctx, const char *name,
                                  const char *source, const char *options,
                                  const char *kernel, cl_kernel *out);

/* The text of an embedded cl/ file (or the file in $BATCHSCOPE_CL_DIR when
 * set). *source is malloc'ed; free it. */
bsc_status bsc_cl_source(const char *file, char **source);

/* Maps an OpenCL error code to "CL_OUT_OF_RESOURCES" etc. */
const char *bsc_cl_error_name(cl_int err);

/* bsc_fail(BSC_ERR_OPENCL, "<what>: CL_... (code)") */
bsc_status bsc_cl_fail(cl_int err, const char *what);

/* Convenience for kernel launches: sets args from a list and enqueues a 1-D
 * range of `global` work items rounded up to a multiple of `local` (0 lets the
 * runtime choose and uses `global` exactly). Kernels must guard i < n. */
typedef struct bsc_karg {
    size_t size;
    const void *value;
} bsc_karg;
#define BSC_ARG(v) ((bsc_karg){sizeof(v), &(v)})
#define BSC_LOCAL(bytes) ((bsc_karg){(bytes), NULL})
bsc_status bsc_launch(bsc_context *ctx, cl_kernel k, int nargs, const bsc_karg *args,
                      int work_dim, const size_t *global, const size_t *local);

/* clFinish on the context's queue, mapped to a status. */
bsc_status bsc_finish(bsc_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
