/* batchscope: OpenCL devices, the compute context and its kernels.
 *
 * One bsc_context holds one device, one in-order command queue and the
 * in-memory program cache. Programs are built from the runtime's own OpenCL
 * C sources (cl/runtime, embedded into libbatchscope at build time, or read
 * from $BATCHSCOPE_CL_DIR) with bsc_kernel, or from a source a plugin passes
 * in with bsc_kernel_from_source, and their binaries are cached on disk (see
 * program_cache.c).
 *
 * A plugin owns its kernels: it embeds its own .cl files into its module
 * (the CMake function batchscope_embed_cl, cmake/BatchscopeEmbedCL.cmake,
 * which also inlines includes between those files) and builds them with
 * bsc_kernel_from_source, as the built-in plugins do.
 */
#ifndef BATCHSCOPE_DEVICE_H
#define BATCHSCOPE_DEVICE_H

#include "batchscope/api.h"
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
    char platform_vendor[128];  /* "The pocl project", "NVIDIA Corporation" */
} bsc_device_info;

/* Enumerates every device of every platform. On success *out is malloc'ed
 * (free with free()) and *count >= 1. No platform at all (-1001) or no device
 * returns BSC_ERR_NO_PLATFORM with a message that says what to install. */
BSC_API bsc_status bsc_device_list(bsc_device_info **out, int *count);

/* Resolves a selector against a device list (any list: tests build their
 * own): NULL or "auto" (first GPU, else first CPU, else the first device),
 * a flat index "3", "P:D", a type ("cpu", "gpu", "accelerator"), or a
 * case-insensitive substring of the platform's name or vendor, or else of
 * the device's vendor or name ("amd" also matches "Advanced Micro
 * Devices"). Platform fields are tried first, so `amd`, `intel` and
 * `nvidia` name a vendor's platform rather than a CPU that PoCL runs on
 * (whose device vendor is "AuthenticAMD" or "GenuineIntel"), and `pocl`
 * names PoCL's platform ("The pocl project"). Like a type, text that
 * matches several devices of one platform selects the first of them.
 * An empty selector, text that matches nothing or devices of several
 * platforms, and an index or P:D that does not exist return BSC_ERR_USAGE
 * with a message that lists the devices. */
BSC_API bsc_status bsc_device_select(const bsc_device_info *list, int count,
                             const char *selector, int *index);

/* The device of process nth (0-based) among n processes of one host (the
 * ranks of `mpirun` there): a comma-separated list of selectors gives each
 * its own, item nth mod the list's length; one selector (or auto) hands the
 * devices it matches out in turn, nth mod their number (auto: the GPUs,
 * else the CPUs; a type: every device of it; a name: every device it
 * matches; an index or P:D: its one device). n <= 1 with one selector is
 * bsc_device_select. */
BSC_API bsc_status bsc_device_select_local(const bsc_device_info *list, int count,
                                           const char *selector, int nth, int n, int *index);

/* "CPU", "GPU", "ACCELERATOR", "DEFAULT" or "OTHER". */
BSC_API const char *bsc_device_type_name(cl_device_type t);

/* Writes the device table that `batchscope devices` prints: one row per
 * device with the fields a selector matches (platform name and vendor,
 * device vendor and name). */
BSC_API void bsc_device_print_table(FILE *f, const bsc_device_info *list, int count);

typedef struct bsc_program_cache bsc_program_cache;

typedef struct bsc_context {
    bsc_device_info info;
    cl_context context;
    cl_command_queue queue;
    bsc_program_cache *programs;
    int gemm;       /* bsc_gemm_backend in use (blas.h: bsc_gemm_use, bsc_gemm_active) */
    void *host_slots[8];  /* host tasks: buffer storage, written in queue order (host_task.c) */
} bsc_context;

/* Opens the device the selector names (see bsc_device_select). */
BSC_API bsc_status bsc_context_open(const char *selector, bsc_context **out);
/* Opens the device of process nth of n on this host (bsc_device_select_local). */
BSC_API bsc_status bsc_context_open_local(const char *selector, int nth, int n,
                                          bsc_context **out);
BSC_API void bsc_context_free(bsc_context *ctx);

/* One-line description "platform / device (driver X)" for logs and manifests. */
BSC_API void bsc_context_describe(const bsc_context *ctx, char *buf, size_t len);

/* The kernel `kernel` from the runtime's own source file `file` (e.g.
 * "util.cl", one of cl/runtime), built once per context and cached on disk.
 * The returned kernel is owned by the context: do not release it. Build
 * failures return BSC_ERR_BUILD with the compiler's build log. Plugins'
 * kernels are not here: see bsc_kernel_from_source. */
BSC_API bsc_status bsc_kernel(bsc_context *ctx, const char *file, const char *kernel,
                      cl_kernel *out);

/* Same, for a source that is not the runtime's: a plugin's own kernels,
 * built-in or out of tree. `name` identifies the program in messages
 * ("layers/conv.cl"); the memory cache keys on name, options and source
 * text, the disk cache on the expanded source, options and device. Options
 * that name no -cl-std get the runtime's default (-cl-std=CL1.2) in front.
 *
 * #include "<file>" lines in `source` resolve against the runtime files it
 * shares with plugins, and nothing else:
 *     philox.cl   Philox4x32-10 (philox4x32_10, philox_uniform), the
 *                 numbers bsc_rng_block gives on the host (rng.h)
 * Shared files define no kernels; their functions keep their names and
 * meaning across minor versions. Any other include fails with
 * BSC_ERR_NOT_FOUND naming the file, the includer and the line. Includes
 * between a plugin's own files are inlined before this call, when
 * batchscope_embed_cl embeds them; $BATCHSCOPE_CL_DIR reaches a plugin's
 * program only through a shared file it includes. */
BSC_API bsc_status bsc_kernel_from_source(bsc_context *ctx, const char *name,
                                  const char *source, const char *options,
                                  const char *kernel, cl_kernel *out);

/* The text of one of the runtime's own cl/runtime files: the copy embedded
 * at build time or, when $BATCHSCOPE_CL_DIR is set, <dir>/<file> read at
 * the time of the call (kernel work without rebuilding; point it at
 * cl/runtime). The override covers the runtime's files only: plugins embed
 * theirs and rebuild (a plugin module rebuilds in seconds). *source is
 * malloc'ed; free it. */
BSC_API bsc_status bsc_cl_source(const char *file, char **source);

/* The OpenCL ICD loader's name and version ("OCL-ICD 2.3.1, OpenCL 3.0"),
 * asked through clGetICDLoaderInfoOCLICD (ocl-icd and the Khronos loader
 * have it); "unknown" from a loader without it. */
BSC_API void bsc_opencl_loader_version(char *buf, size_t len);

/* The CLBlast version built against ("1.5.3"; CLBlast has no runtime query). */
BSC_API const char *bsc_clblast_version(void);

/* Maps an OpenCL error code to "CL_OUT_OF_RESOURCES" etc. */
BSC_API const char *bsc_cl_error_name(cl_int err);

/* bsc_fail(BSC_ERR_OPENCL, "<what>: CL_... (code)") */
BSC_API bsc_status bsc_cl_fail(cl_int err, const char *what);

/* Convenience for kernel launches: sets args from a list and enqueues a
 * range of `global` work items rounded up to a multiple of `local`. local
 * NULL (or a 0 in it): for a 1-D range of more than 256 items batchscope
 * picks a power-of-two group of at most 256 (bsc_local_size) and rounds the
 * range up to it; otherwise the runtime chooses and `global` is used
 * exactly. Kernels must guard i < n, and a kernel launched without a local
 * size may not depend on the group's size. */
typedef struct bsc_karg {
    size_t size;
    const void *value;
} bsc_karg;
#define BSC_ARG(v) ((bsc_karg){sizeof(v), &(v)})
#define BSC_LOCAL(bytes) ((bsc_karg){(bytes), NULL})
BSC_API bsc_status bsc_launch(bsc_context *ctx, cl_kernel k, int nargs, const bsc_karg *args,
                      int work_dim, const size_t *global, const size_t *local);

/* The work-group size to launch kernel k with: the largest power of two
 * <= want that both the kernel (CL_KERNEL_WORK_GROUP_SIZE, which a
 * compiler may lower below the device's limit) and the device
 * (CL_DEVICE_MAX_WORK_ITEM_SIZES[0]) allow, at least 1. A power of two,
 * so that a kernel may halve its group in a tree reduction. Never assume
 * a size: a GPU's limit for a given kernel may be below what a CPU gives. */
BSC_API bsc_status bsc_local_size(bsc_context *ctx, cl_kernel k, size_t want, size_t *local);

/* clFinish on the context's queue, mapped to a status. */
BSC_API bsc_status bsc_finish(bsc_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
