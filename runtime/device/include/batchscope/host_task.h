/* batchscope: host functions in the device's queue.
 *
 * On a CPU device whose OpenCL implementation runs native kernels
 * (CL_EXEC_NATIVE_KERNEL, as PoCL does) a device buffer is host memory, and
 * a host function can run in the context's in-order queue between kernels,
 * seeing its tensors as plain float pointers: the host-BLAS GEMM backend
 * (blas.h) runs that way, and a layer may too where compiled C beats the
 * OpenCL implementation's code (conv2d's im2col on PoCL). Enqueue only:
 * nothing blocks, nothing is allocated on the device.
 */
#ifndef BATCHSCOPE_HOST_TASK_H
#define BATCHSCOPE_HOST_TASK_H

#include <stdlib.h>
#include "batchscope/api.h"
#include "batchscope/blas.h"
#include "batchscope/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Put before a host loop's function: GCC compiles it for AVX-512, AVX2 and
 * the baseline, and the loader picks the one the CPU runs (target_clones;
 * x86-64 Linux only, elsewhere nothing). Each clone applies the same
 * operations element by element, so they give the same bits as long as
 * nothing is contracted into fused multiply-adds (-ffp-contract=off for
 * the file) and no result depends on the vector width (a sum across the
 * lanes of a register, say: use GCC vector types of a fixed width). A
 * clone calls helpers taking or returning vectors only always inlined (at
 * -O0 an out-of-line call crosses two calling conventions). Used by the
 * optimizers' updates (optim.c) and conv2d's Winograd transforms. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define BSC_HOST_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BSC_HOST_CLONES
#endif

/* Most tensors one host task sees. */
#define BSC_HOST_TASK_MAX_TENSORS 8
/* Most bytes of arguments one host task is given. */
#define BSC_HOST_TASK_MAX_ARGS 256

/* Nonzero when ctx's device runs host tasks: a CPU device with
 * CL_EXEC_NATIVE_KERNEL. Otherwise 0 and, when why is not NULL, the reason. */
BSC_API int bsc_host_tasks_supported(const bsc_context *ctx, char *why, size_t len);

/* A host task: args is the task's copy of what was enqueued, data[i] points
 * at tensor i's first element (its offset applied). It runs on one of the
 * OpenCL implementation's threads; bsc_host_parallel spreads work. */
typedef void (*bsc_host_fn)(void *args, float *const *data);

/* Enqueues fn on ctx's queue with a copy of args (size <=
 * BSC_HOST_TASK_MAX_ARGS bytes) and the storage of n <=
 * BSC_HOST_TASK_MAX_TENSORS float tensors (views and sub-buffers allowed,
 * the same buffer more than once too). fn may read and write each tensor's
 * numel elements from its offset and nothing else. BSC_ERR_UNSUPPORTED on a
 * device without host tasks. */
BSC_API bsc_status bsc_enqueue_host(bsc_context *ctx, bsc_host_fn fn, const void *args,
                                    size_t size, size_t n, const bsc_tensor *const *t);

/* Inside a host task: runs fn(arg, part, parts) for every part in [0,
 * parts) on the calling thread and the process's host threads (as many as
 * online CPUs, or $BATCHSCOPE_BLAS_THREADS), returning when all are done.
 * Between jobs the helpers spin for at most $BATCHSCOPE_HOST_SPIN_US
 * (default 1 ms, a pause loop) and then sleep: they never spin for long
 * against the device's own threads. Not reentrant: a part must not call
 * bsc_host_parallel itself. */
BSC_API void bsc_host_parallel(int parts, void (*fn)(void *arg, int part, int parts),
                               void *arg);
/* How many threads bsc_host_parallel runs on, the caller included. */
BSC_API int bsc_host_threads(void);

/* Nonzero when the elementwise work of a step on ctx (activations, the
 * loss, the batch gather, the optimizer's update) runs as host tasks too,
 * on the host threads: where ctx's GEMMs run on the host BLAS, so that the
 * step's other commands are host tasks already, unless
 * $BATCHSCOPE_HOST_ELEMENTWISE is "0" (the OpenCL kernels, for measuring).
 * PoCL runs a kernel on all its worker threads, which then compete with
 * the host threads for the cores; host tasks run one at a time. */
static inline int bsc_host_elementwise(const bsc_context *ctx)
{
    const char *e;
    if (bsc_gemm_active(ctx) != BSC_GEMM_HOST)
        return 0;
    e = getenv("BATCHSCOPE_HOST_ELEMENTWISE");
    return !(e && e[0] == '0' && !e[1]);
}

/* Inside a host task: fn(arg, lo, hi) over ranges that cover [0, n) once,
 * at least `grain` items each (whole multiples of 16 but the last, so that
 * parts of a float array do not share a cache line), at most one per host
 * thread, run by bsc_host_parallel. For elementwise work, whose result
 * does not depend on how it is split. */
typedef void (*bsc_host_range_fn)(void *arg, size_t lo, size_t hi);
typedef struct bsc_host_for_job_ {
    bsc_host_range_fn fn;
    void *arg;
    size_t n, step;
} bsc_host_for_job_;
static inline void bsc_host_for_part_(void *p, int part, int parts)
{
    const bsc_host_for_job_ *j = (const bsc_host_for_job_ *)p;
    size_t lo = (size_t)part * j->step, hi = lo + j->step;
    (void)parts;
    if (hi > j->n)
        hi = j->n;
    if (lo < hi)
        j->fn(j->arg, lo, hi);
}
static inline void bsc_host_for(size_t n, size_t grain, bsc_host_range_fn fn, void *arg)
{
    size_t threads = (size_t)bsc_host_threads(), parts;
    if (grain < 16)
        grain = 16;
    parts = n / grain;
    if (parts > threads)
        parts = threads;
    if (parts <= 1) {
        if (n)
            fn(arg, 0, n);
        return;
    }
    bsc_host_for_job_ j = {fn, arg, n, 0};
    j.step = ((n + parts - 1) / parts + 15) / 16 * 16;
    bsc_host_parallel((int)parts, bsc_host_for_part_, &j);
}
/* Inside a part of bsc_host_parallel: the running thread's index in [0,
 * bsc_host_threads()), for per-thread scratch. A job may have more parts
 * than threads (the threads take parts as they finish theirs, which evens
 * out a thread that the machine's other work slows down); each thread runs
 * one part at a time. */
BSC_API int bsc_host_worker(void);

#ifdef __cplusplus
}
#endif
#endif
