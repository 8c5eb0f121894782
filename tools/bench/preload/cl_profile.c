/* cl_profile: an LD_PRELOAD library for looking inside a training step.
 *
 *   LD_PRELOAD=build/bench/cl_profile.so build/bench/bench_train PIPELINE BATCH STEPS
 *   BSC_CL_PROFILE=time LD_PRELOAD=... (the same)
 *
 * Always: counts the calls that would make a step block or allocate
 * (clFinish, clWaitForEvents, blocking and non-blocking reads, maps,
 * clCreateBuffer, clCreateSubBuffer) and the enqueued copies and fills, and
 * prints the counts at exit; run it over two step counts and subtract to
 * get the calls per step (a host-BLAS step makes none of the first kind).
 * With BSC_CL_PROFILE=time it also finishes the queue after every kernel
 * and native command and adds up the time per kernel name, and per host
 * task function (module+offset: resolve with nm), printed at exit. The
 * finishes inflate small commands; the shares of large ones are what to
 * read. A host task's function is read from runtime/device/host_task.c's
 * argument block (third pointer); its hand-over probes (16-byte blocks)
 * are counted apart. A development tool: not installed, never in a test. */
#define _GNU_SOURCE
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 300
#endif
#include <CL/cl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    char name[128];
    double seconds;
    long calls;
} entry;

#define MAX_ENTRIES 512
static entry table[MAX_ENTRIES];
static int n_entries;
static double total;
static long n_finish, n_wait, n_read, n_map, n_create, n_sub, n_copy, n_fill;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int timing(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("BSC_CL_PROFILE");
        on = e && !strcmp(e, "time");
    }
    return on;
}

static void add(const char *name, double s)
{
    int i = 0;
    while (i < n_entries && strcmp(table[i].name, name))
        i++;
    if (i == n_entries) {
        if (n_entries == MAX_ENTRIES)
            return;
        snprintf(table[n_entries++].name, sizeof table[0].name, "%s", name);
    }
    table[i].seconds += s;
    table[i].calls++;
    total += s;
}

static int by_time(const void *a, const void *b)
{
    double x = ((const entry *)a)->seconds, y = ((const entry *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

__attribute__((destructor)) static void report(void)
{
    fprintf(stderr, "cl_profile: finish %ld wait %ld read %ld map %ld create_buffer %ld "
            "sub_buffer %ld copy %ld fill %ld\n", n_finish, n_wait, n_read, n_map, n_create,
            n_sub, n_copy, n_fill);
    if (!timing())
        return;
    qsort(table, (size_t)n_entries, sizeof *table, by_time);
    fprintf(stderr, "cl_profile: %.3f s in timed commands\n", total);
    for (int i = 0; i < n_entries; i++)
        fprintf(stderr, "%9.3f s %5.1f%% %8ld  %s\n", table[i].seconds,
                total > 0 ? 100 * table[i].seconds / total : 0.0, table[i].calls,
                table[i].name);
}

/* real: the OpenCL library's own entry point `name` (GCC's __typeof__). */
#define REAL(name) \
    static __typeof__(&name) real; \
    if (!real) \
        *(void **)&real = dlsym(RTLD_NEXT, #name)

cl_int clFinish(cl_command_queue q)
{
    REAL(clFinish);
    n_finish++;
    return real(q);
}

cl_int clWaitForEvents(cl_uint n, const cl_event *e)
{
    REAL(clWaitForEvents);
    n_wait++;
    return real(n, e);
}

cl_int clEnqueueReadBuffer(cl_command_queue q, cl_mem b, cl_bool blocking, size_t off,
                           size_t size, void *p, cl_uint n, const cl_event *w, cl_event *e)
{
    REAL(clEnqueueReadBuffer);
    n_read++;
    return real(q, b, blocking, off, size, p, n, w, e);
}

void *clEnqueueMapBuffer(cl_command_queue q, cl_mem b, cl_bool blocking, cl_map_flags f,
                         size_t off, size_t size, cl_uint n, const cl_event *w, cl_event *e,
                         cl_int *err)
{
    REAL(clEnqueueMapBuffer);
    n_map++;
    return real(q, b, blocking, f, off, size, n, w, e, err);
}

cl_mem clCreateBuffer(cl_context c, cl_mem_flags f, size_t size, void *host, cl_int *err)
{
    REAL(clCreateBuffer);
    n_create++;
    return real(c, f, size, host, err);
}

cl_mem clCreateSubBuffer(cl_mem b, cl_mem_flags f, cl_buffer_create_type t, const void *info,
                         cl_int *err)
{
    REAL(clCreateSubBuffer);
    n_sub++;
    return real(b, f, t, info, err);
}

cl_int clEnqueueCopyBuffer(cl_command_queue q, cl_mem a, cl_mem b, size_t oa, size_t ob,
                           size_t size, cl_uint n, const cl_event *w, cl_event *e)
{
    REAL(clEnqueueCopyBuffer);
    n_copy++;
    return real(q, a, b, oa, ob, size, n, w, e);
}

cl_int clEnqueueFillBuffer(cl_command_queue q, cl_mem b, const void *p, size_t ps, size_t off,
                           size_t size, cl_uint n, const cl_event *w, cl_event *e)
{
    REAL(clEnqueueFillBuffer);
    n_fill++;
    return real(q, b, p, ps, off, size, n, w, e);
}

cl_int clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dim, const size_t *off,
                              const size_t *global, const size_t *local, cl_uint n,
                              const cl_event *w, cl_event *e)
{
    REAL(clEnqueueNDRangeKernel);
    if (!timing())
        return real(q, k, dim, off, global, local, n, w, e);
    char name[128] = "?";
    clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL);
    clFinish(q);
    n_finish--;   /* the tool's own */
    double t0 = now();
    cl_int r = real(q, k, dim, off, global, local, n, w, e);
    clFinish(q);
    n_finish--;
    add(name, now() - t0);
    return r;
}

cl_int clEnqueueNativeKernel(cl_command_queue q, void(CL_CALLBACK *fn)(void *), void *args,
                             size_t cb, cl_uint n_mem, const cl_mem *mem, const void **loc,
                             cl_uint n, const cl_event *w, cl_event *e)
{
    REAL(clEnqueueNativeKernel);
    if (!timing())
        return real(q, fn, args, cb, n_mem, mem, loc, n, w, e);
    char name[160] = "host task hand-over (probe)";
    if (cb > 16) {
        void *task_fn = ((void **)args)[2];
        Dl_info di;
        if (dladdr(task_fn, &di) && di.dli_fname) {
            const char *base = strrchr(di.dli_fname, '/');
            snprintf(name, sizeof name, "host task %s+0x%lx", base ? base + 1 : di.dli_fname,
                     (unsigned long)((char *)task_fn - (char *)di.dli_fbase));
        }
    }
    clFinish(q);
    n_finish--;
    double t0 = now();
    cl_int r = real(q, fn, args, cb, n_mem, mem, loc, n, w, e);
    clFinish(q);
    n_finish--;
    add(name, now() - t0);
    return r;
}
