/* OpenCL programs: the per-context memory cache of programs and kernels,
 * and the on-disk cache of built binaries. Where program text comes from
 * (the runtime's embedded cl/runtime files or $BATCHSCOPE_CL_DIR, or a
 * plugin's own source) and #include inlining are cl_source.c.
 *
 * A disk entry is never trusted: its header must carry the key we computed,
 * its length must match, its binary must hash to the recorded SHA-256, and the
 * driver must accept and build it. Anything else and the entry is discarded
 * and the program is built from source again, then rewritten.
 */
#include "batchscope/device.h"
#include "cl_source_internal.h"
#include "program_cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

/* No fast-math: float32 results must be reproducible bit for bit. */
static const char default_options[] = "-cl-std=CL1.2";

static const unsigned char entry_magic[8] = {'B', 'S', 'C', 'P', 'R', 'O', 'G', 0};
#define ENTRY_HEADER_SIZE 88u  /* magic 8, format 4, header size 4, key 32, length 8, sha 32 */
#define MAX_ENTRY_BYTES ((size_t)1 << 30)

typedef struct cached_kernel {
    char *name;
    cl_kernel kernel;
    struct cached_kernel *next;
} cached_kernel;

typedef struct cached_program {
    char *name;
    char *options;
    char *source;       /* bsc_kernel_from_source's text; NULL for a runtime cl/ file */
    cl_program program;
    cached_kernel *kernels;
    struct cached_program *next;
} cached_program;

struct bsc_program_cache {
    cached_program *programs;
    int dir_resolved;
    bsc_program_cache_stats stats;  /* stats.dir[0] == 0: no disk cache */
};

/* ------------------------------------------------------------- disk cache */

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return 0;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return 0;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return 0;
    struct stat sb;
    return stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode) && access(buf, W_OK | X_OK) == 0;
}

/* Picks and creates the cache directory once per context; an unusable one
 * just turns disk caching off (a cache must never be why a run fails). */
static void resolve_dir(bsc_program_cache *pc)
{
    char *dir = pc->stats.dir;
    size_t len = sizeof pc->stats.dir;
    const char *env = getenv("BATCHSCOPE_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int w = -1;

    pc->dir_resolved = 1;
    if (env && *env)
        w = snprintf(dir, len, "%s", env);
    else if (xdg && *xdg)
        w = snprintf(dir, len, "%s/batchscope", xdg);
    else if (home && *home)
        w = snprintf(dir, len, "%s/.cache/batchscope", home);
    if (w < 0 || (size_t)w >= len || !mkdir_p(dir))
        dir[0] = '\0';
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Each field is length-prefixed so ("ab","c") and ("a","bc") hash apart. */
static int hash_field(EVP_MD_CTX *md, const void *data, size_t n)
{
    unsigned char len[8];
    put_u64(len, (uint64_t)n);
    return EVP_DigestUpdate(md, len, sizeof len) == 1 && EVP_DigestUpdate(md, data, n) == 1;
}

static int sha256(const void *data, size_t n, unsigned char out[32])
{
    unsigned int olen = 0;
    return EVP_Digest(data, n, out, &olen, EVP_sha256(), NULL) == 1 && olen == 32;
}

static int cache_key(const bsc_context *ctx, const char *source, const char *options,
                     unsigned char key[32])
{
    char pver[256] = "";
    size_t need = 0;
    unsigned char fmt[4];
    unsigned int olen = 0;
    int ok = 0;

    if (clGetPlatformInfo(ctx->info.platform, CL_PLATFORM_VERSION, 0, NULL, &need) == CL_SUCCESS
        && need > 0 && need <= sizeof pver)
        clGetPlatformInfo(ctx->info.platform, CL_PLATFORM_VERSION, need, pver, NULL);
    put_u32(fmt, BSC_PROGRAM_CACHE_FORMAT);

    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return 0;
    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
         && hash_field(md, fmt, sizeof fmt)
         && hash_field(md, source, strlen(source))
         && hash_field(md, options, strlen(options))
         && hash_field(md, ctx->info.platform_name, strlen(ctx->info.platform_name))
         && hash_field(md, pver, strlen(pver))
         && hash_field(md, ctx->info.name, strlen(ctx->info.name))
         && hash_field(md, ctx->info.driver_version, strlen(ctx->info.driver_version))
         && EVP_DigestFinal_ex(md, key, &olen) == 1 && olen == 32;
    EVP_MD_CTX_free(md);
    return ok;
}

static void entry_path(const bsc_program_cache *pc, const unsigned char key[32], char *buf,
                       size_t len)
{
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    /* A path too long for buf becomes "": the entry is then simply not
     * cached (open fails), never a truncated, wrong path. */
    if (snprintf(buf, len, "%s/%s.bin", pc->stats.dir, hex) >= (int)len)
        buf[0] = '\0';
}

/* A program built from the entry at path, or NULL: a missing entry is a plain
 * miss; a present but unusable one is counted as a reject and removed. */
static cl_program load_entry(bsc_program_cache *pc, const bsc_context *ctx, const char *path,
                             const unsigned char key[32], const char *options)
{
    unsigned char *data = NULL;
    size_t len = 0;
    cl_program prog = NULL;
    unsigned char digest[32];

    if (access(path, F_OK) != 0)
        return NULL;
    if (bsc_cl_read_file(path, (char **)&data, &len) != BSC_OK)
        goto reject;
    if (len < ENTRY_HEADER_SIZE || memcmp(data, entry_magic, sizeof entry_magic) != 0
        || get_u32(data + 8) != BSC_PROGRAM_CACHE_FORMAT
        || get_u32(data + 12) != ENTRY_HEADER_SIZE || memcmp(data + 16, key, 32) != 0)
        goto reject;
    uint64_t blen = get_u64(data + 48);
    if (blen == 0 || blen != (uint64_t)(len - ENTRY_HEADER_SIZE))
        goto reject;
    const unsigned char *bin = data + ENTRY_HEADER_SIZE;
    if (!sha256(bin, (size_t)blen, digest) || memcmp(digest, data + 56, 32) != 0)
        goto reject;

    size_t bsize = (size_t)blen;
    cl_int bin_status = CL_SUCCESS, err = CL_SUCCESS;
    prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->info.device, &bsize, &bin,
                                     &bin_status, &err);
    if (!prog || err != CL_SUCCESS || bin_status != CL_SUCCESS)
        goto reject;
    if (clBuildProgram(prog, 1, &ctx->info.device, options, NULL, NULL) != CL_SUCCESS)
        goto reject;
    free(data);
    pc->stats.disk_hits++;
    return prog;

reject:
    if (prog)
        clReleaseProgram(prog);
    free(data);
    pc->stats.disk_rejects++;
    unlink(path);
    return NULL;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

/* Writes the program's binary as an entry: a temp file in the same directory
 * renamed over the final name, so a reader sees a whole entry or none. Best
 * effort: a failure leaves no file and is not an error. */
static void store_entry(bsc_program_cache *pc, const bsc_context *ctx, cl_program prog,
                        const char *path, const unsigned char key[32])
{
    size_t bsize = 0;
    unsigned char *bin = NULL;
    unsigned char head[ENTRY_HEADER_SIZE];
    char tmp[PATH_MAX];
    int fd = -1;

    (void)ctx;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof bsize, &bsize, NULL) != CL_SUCCESS
        || bsize == 0 || bsize > MAX_ENTRY_BYTES)
        goto cleanup;
    if (!(bin = malloc(bsize)))
        goto cleanup;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS)
        goto cleanup;

    memcpy(head, entry_magic, sizeof entry_magic);
    put_u32(head + 8, BSC_PROGRAM_CACHE_FORMAT);
    put_u32(head + 12, ENTRY_HEADER_SIZE);
    memcpy(head + 16, key, 32);
    put_u64(head + 48, (uint64_t)bsize);
    if (!sha256(bin, bsize, head + 56))
        goto cleanup;

    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
        goto cleanup;
    fd = mkstemp(tmp);
    if (fd < 0)
        goto cleanup;
    if (!write_all(fd, head, sizeof head) || !write_all(fd, bin, bsize) || fsync(fd) != 0) {
        close(fd);
        fd = -1;
        unlink(tmp);
        goto cleanup;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        fd = -1;
        unlink(tmp);
        goto cleanup;
    }
    fd = -1;
    pc->stats.disk_writes++;
cleanup:
    if (fd >= 0)
        close(fd);
    free(bin);
}

/* ------------------------------------------------------------------ builds */

static bsc_status build_log_fail(const bsc_context *ctx, cl_program prog, const char *name,
                                 const char *options, cl_int err)
{
    size_t need = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, ctx->info.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &need)
            == CL_SUCCESS && need > 0 && (log = malloc(need + 1)) != NULL) {
        if (clGetProgramBuildInfo(prog, ctx->info.device, CL_PROGRAM_BUILD_LOG, need, log, NULL)
            != CL_SUCCESS)
            need = 0;
        log[need] = '\0';
    }
    bsc_status st = bsc_fail(BSC_ERR_BUILD,
                             "building OpenCL program %s for %s (options \"%s\"): %s (%d); "
                             "build log:\n%s",
                             name, ctx->info.name, options, bsc_cl_error_name(err), (int)err,
                             log && *log ? log : "(empty)");
    free(log);
    return st;
}

static bsc_status build_source(const bsc_context *ctx, const char *name, const char *source,
                               const char *options, cl_program *out)
{
    cl_int err;
    const char *src = source;
    *out = NULL;
    cl_program prog = clCreateProgramWithSource(ctx->context, 1, &src, NULL, &err);
    if (!prog) {
        char what[300];
        snprintf(what, sizeof what, "clCreateProgramWithSource(%s)", name);
        return bsc_cl_fail(err, what);
    }
    err = clBuildProgram(prog, 1, &ctx->info.device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        bsc_status st = build_log_fail(ctx, prog, name, options, err);
        clReleaseProgram(prog);
        return st;
    }
    *out = prog;
    return BSC_OK;
}

static int same_program(const cached_program *cp, const char *name, const char *raw_source,
                        const char *options)
{
    if (strcmp(cp->name, name) != 0 || strcmp(cp->options, options) != 0)
        return 0;
    if (!cp->source || !raw_source)
        return !cp->source && !raw_source;
    return strcmp(cp->source, raw_source) == 0;
}

/* The program for (name, options) and, for a plugin's source, its text (two
 * plugins may well both call a file "kernels.cl"): from memory, else disk,
 * else a build. A runtime file (file_to_load) is read only on a memory miss
 * and may include any runtime file; a plugin's source only the shared ones. */
static bsc_status get_program(bsc_context *ctx, const char *name, const char *raw_source,
                              const char *file_to_load, const char *options,
                              cached_program **out)
{
    bsc_program_cache *pc = ctx->programs;
    bsc_status st = BSC_OK;
    char *text = NULL, *full = NULL;
    cl_program prog = NULL;
    cached_program *cp = NULL;
    unsigned char key[32];
    char path[PATH_MAX];
    int have_key = 0;

    for (cached_program *it = pc->programs; it; it = it->next)
        if (same_program(it, name, raw_source, options)) {
            pc->stats.memory_hits++;
            *out = it;
            return BSC_OK;
        }

    if (file_to_load) {
        st = bsc_cl_source(file_to_load, &text);
        if (st != BSC_OK)
            goto cleanup;
    }
    st = bsc_cl_preprocess(name, text ? text : raw_source,
                           text ? BSC_CL_INCLUDE_RUNTIME : BSC_CL_INCLUDE_PLUGIN, &full);
    if (st != BSC_OK)
        goto cleanup;

    if (!pc->dir_resolved)
        resolve_dir(pc);
    if (pc->stats.dir[0] && cache_key(ctx, full, options, key)) {
        have_key = 1;
        entry_path(pc, key, path, sizeof path);
        prog = load_entry(pc, ctx, path, key, options);
    }
    if (!prog) {
        st = build_source(ctx, name, full, options, &prog);
        if (st != BSC_OK)
            goto cleanup;
        pc->stats.builds++;
        if (have_key)
            store_entry(pc, ctx, prog, path, key);
    }

    cp = calloc(1, sizeof *cp);
    if (!cp || !(cp->name = strdup(name)) || !(cp->options = strdup(options))
        || (raw_source && !(cp->source = strdup(raw_source)))) {
        st = bsc_fail(BSC_ERR_NOMEM, "caching program %s", name);
        goto cleanup;
    }
    cp->program = prog;
    prog = NULL;
    cp->next = pc->programs;
    pc->programs = cp;
    *out = cp;
    cp = NULL;

cleanup:
    if (cp) {
        free(cp->name);
        free(cp->options);
        free(cp->source);
        free(cp);
    }
    if (prog)
        clReleaseProgram(prog);
    free(full);
    free(text);
    return st;
}

static bsc_status get_kernel(cached_program *cp, const char *kernel, cl_kernel *out)
{
    for (cached_kernel *k = cp->kernels; k; k = k->next)
        if (strcmp(k->name, kernel) == 0) {
            *out = k->kernel;
            return BSC_OK;
        }
    cl_int err;
    cl_kernel k = clCreateKernel(cp->program, kernel, &err);
    if (!k) {
        if (err == CL_INVALID_KERNEL_NAME)
            return bsc_fail(BSC_ERR_NOT_FOUND, "kernel %s: not in OpenCL program %s", kernel,
                            cp->name);
        char what[400];
        snprintf(what, sizeof what, "clCreateKernel(%s) in program %s", kernel, cp->name);
        return bsc_cl_fail(err, what);
    }
    cached_kernel *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->name = strdup(kernel))) {
        free(ck);
        clReleaseKernel(k);
        return bsc_fail(BSC_ERR_NOMEM, "caching kernel %s", kernel);
    }
    ck->kernel = k;
    ck->next = cp->kernels;
    cp->kernels = ck;
    *out = k;
    return BSC_OK;
}

static bsc_status ensure_cache(bsc_context *ctx)
{
    if (!ctx->programs && !(ctx->programs = calloc(1, sizeof *ctx->programs)))
        return bsc_fail(BSC_ERR_NOMEM, "creating the program cache");
    return BSC_OK;
}

bsc_status bsc_kernel(bsc_context *ctx, const char *file, const char *kernel, cl_kernel *out)
{
    cached_program *cp = NULL;
    bsc_status st = ensure_cache(ctx);
    if (st == BSC_OK)
        st = get_program(ctx, file, NULL, file, default_options, &cp);
    if (st == BSC_OK)
        st = get_kernel(cp, kernel, out);
    return st;
}

/* Options that name no OpenCL C standard get the default one in front, so a
 * plugin passing "-DTILE=8" still compiles as CL 1.2 like the rest. */
bsc_status bsc_kernel_from_source(bsc_context *ctx, const char *name, const char *source,
                                  const char *options, const char *kernel, cl_kernel *out)
{
    cached_program *cp = NULL;
    char *opts = NULL;
    bsc_status st = ensure_cache(ctx);
    if (st != BSC_OK)
        return st;
    if (!name || !source || !kernel)
        return bsc_fail(BSC_ERR_INVALID, "bsc_kernel_from_source: name, source and kernel "
                        "are required");
    if (!options || !*options) {
        opts = strdup(default_options);
    } else if (strstr(options, "-cl-std=")) {
        opts = strdup(options);
    } else {
        size_t n = sizeof default_options + 1 + strlen(options);
        if ((opts = malloc(n)) != NULL)
            snprintf(opts, n, "%s %s", default_options, options);
    }
    if (!opts)
        return bsc_fail(BSC_ERR_NOMEM, "program %s", name);
    st = get_program(ctx, name, source, NULL, opts, &cp);
    if (st == BSC_OK)
        st = get_kernel(cp, kernel, out);
    free(opts);
    return st;
}

void bsc_program_cache_get_stats(const bsc_context *ctx, bsc_program_cache_stats *out)
{
    if (ctx && ctx->programs)
        *out = ctx->programs->stats;
    else
        memset(out, 0, sizeof *out);
}

void bsc_program_cache_free(bsc_program_cache *pc)
{
    if (!pc)
        return;
    cached_program *cp = pc->programs;
    while (cp) {
        cached_program *nextp = cp->next;
        cached_kernel *k = cp->kernels;
        while (k) {
            cached_kernel *nextk = k->next;
            clReleaseKernel(k->kernel);
            free(k->name);
            free(k);
            k = nextk;
        }
        clReleaseProgram(cp->program);
        free(cp->name);
        free(cp->options);
        free(cp->source);
        free(cp);
        cp = nextp;
    }
    free(pc);
}
