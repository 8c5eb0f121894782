/* Host tasks: a host function run as an OpenCL native kernel in the
 * context's in-order queue, its tensors handed over as pointers.
 *
 * PoCL 3.1 sorts a native command's buffers by an internal object id and
 * then pairs the i-th sorted buffer with the i-th argument location
 * (pocl_basic_run_native), so with more than one buffer the pointers land
 * in an order the caller cannot know; and it hands over a sub-buffer's
 * parent storage without the sub-buffer's origin. So every native command
 * here takes exactly one buffer: the storage of all but the last tensor's
 * buffer is first written into the context's slots by a small probe command
 * each, and the task's own command takes the last one and reads the slots.
 * The queue is in order, so the slots hold this task's pointers when it
 * runs and the next task's probes run only after it. A buffer two tensors
 * share is handed over once, and sub-buffers travel as parent plus origin.
 * The argument blocks are copied by clEnqueueNativeKernel, so nothing here
 * outlives the call. */
#include "batchscope/host_task.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int bsc_host_tasks_supported(const bsc_context *ctx, char *why, size_t len)
{
    char dummy[8];
    if (!why) {
        why = dummy;
        len = sizeof dummy;
    }
    cl_device_exec_capabilities caps = 0;
    cl_int err = clGetDeviceInfo(ctx->info.device, CL_DEVICE_EXECUTION_CAPABILITIES,
                                 sizeof caps, &caps, NULL);
    if (err != CL_SUCCESS) {
        snprintf(why, len, "querying CL_DEVICE_EXECUTION_CAPABILITIES of %s failed: %s",
                 ctx->info.name, bsc_cl_error_name(err));
        return 0;
    }
    if (!(ctx->info.type & CL_DEVICE_TYPE_CPU)) {
        snprintf(why, len, "%s is not a CPU device: its buffers are not host memory",
                 ctx->info.name);
        return 0;
    }
    if (!(caps & CL_EXEC_NATIVE_KERNEL)) {
        snprintf(why, len, "%s (%s) cannot run native kernels (no CL_EXEC_NATIVE_KERNEL)",
                 ctx->info.name, ctx->info.platform_name);
        return 0;
    }
    why[0] = '\0';
    return 1;
}

typedef struct probe {
    float *storage;    /* set by the runtime */
    void **slot;
} probe;

static void CL_CALLBACK probe_run(void *p)
{
    const probe *h = p;
    *h->slot = h->storage;
}

/* The task's command: `last` is the last tensor's buffer storage, set by the
 * runtime; tensor i is at source[i] (a slot, or LAST) plus offset[i]; the
 * caller's arguments follow, aligned. */
#define LAST 0xff
typedef struct task {
    float *last;
    void *const *slots;
    bsc_host_fn fn;
    size_t n;
    unsigned char source[BSC_HOST_TASK_MAX_TENSORS];
    size_t offset[BSC_HOST_TASK_MAX_TENSORS];
    _Alignas(16) unsigned char args[BSC_HOST_TASK_MAX_ARGS];
} task;

static void CL_CALLBACK task_run(void *p)
{
    task *t = p;
    float *data[BSC_HOST_TASK_MAX_TENSORS];
    for (size_t i = 0; i < t->n; i++)
        data[i] = (t->source[i] == LAST ? t->last : (float *)t->slots[t->source[i]]) +
                  t->offset[i];
    t->fn(t->args, data);
}

/* A tensor as a buffer that is not a sub-buffer and an offset in floats,
 * checked to lie within it. */
static bsc_status resolve(const bsc_tensor *t, size_t i, cl_mem *mem, size_t *offset)
{
    if (!t || !t->mem)
        return bsc_fail(BSC_ERR_INVALID, "host task: tensor %zu is empty", i);
    if (t->dtype != BSC_F32 && t->dtype != BSC_I32)
        return bsc_fail(BSC_ERR_INVALID, "host task: tensor %zu is not 4-byte elements", i);
    size_t bytes = 0, origin = 0;
    cl_mem parent = NULL;
    cl_int err = clGetMemObjectInfo(t->mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (err == CL_SUCCESS)
        err = clGetMemObjectInfo(t->mem, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent,
                                 NULL);
    if (err == CL_SUCCESS && parent)
        err = clGetMemObjectInfo(t->mem, CL_MEM_OFFSET, sizeof origin, &origin, NULL);
    if (err != CL_SUCCESS)
        return bsc_cl_fail(err, "clGetMemObjectInfo (host task tensor)");
    if (t->offset + t->numel > bytes / sizeof(float))
        return bsc_fail(BSC_ERR_INVALID, "host task: tensor %zu spans floats [%zu, %zu) of a "
                        "buffer of %zu", i, t->offset, t->offset + t->numel,
                        bytes / sizeof(float));
    if (origin % sizeof(float))
        return bsc_fail(BSC_ERR_INVALID, "host task: tensor %zu is a sub-buffer at byte %zu, "
                        "not a whole float", i, origin);
    *mem = parent ? parent : t->mem;
    *offset = t->offset + origin / sizeof(float);
    return BSC_OK;
}

bsc_status bsc_enqueue_host(bsc_context *ctx, bsc_host_fn fn, const void *args, size_t size,
                            size_t n, const bsc_tensor *const *t)
{
    char why[300];
    if (!bsc_host_tasks_supported(ctx, why, sizeof why))
        return bsc_fail(BSC_ERR_UNSUPPORTED, "host task: %s", why);
    if (n < 1 || n > BSC_HOST_TASK_MAX_TENSORS || size > BSC_HOST_TASK_MAX_ARGS)
        return bsc_fail(BSC_ERR_INVALID, "host task: %zu tensors and %zu bytes of arguments "
                        "(at most %d and %d)", n, size, BSC_HOST_TASK_MAX_TENSORS,
                        BSC_HOST_TASK_MAX_ARGS);
    task tk;
    memset(&tk, 0, offsetof(task, args));
    tk.slots = ctx->host_slots;
    tk.fn = fn;
    tk.n = n;
    if (size)
        memcpy(tk.args, args, size);
    cl_mem mem[BSC_HOST_TASK_MAX_TENSORS], probed[BSC_HOST_TASK_MAX_TENSORS];
    bsc_status st;
    for (size_t i = 0; i < n; i++)
        if ((st = resolve(t[i], i, &mem[i], &tk.offset[i])) != BSC_OK)
            return st;
    size_t n_probed = 0;
    cl_int err = CL_SUCCESS;
    for (size_t i = 0; i < n && err == CL_SUCCESS; i++) {
        if (mem[i] == mem[n - 1]) {
            tk.source[i] = LAST;
            continue;
        }
        size_t j = 0;
        while (j < n_probed && probed[j] != mem[i])
            j++;
        tk.source[i] = (unsigned char)j;
        if (j < n_probed)
            continue;
        probed[n_probed++] = mem[i];
        probe h = {NULL, &ctx->host_slots[j]};
        const void *loc = &h.storage;
        err = clEnqueueNativeKernel(ctx->queue, probe_run, &h, sizeof h, 1, &mem[i], &loc, 0,
                                    NULL, NULL);
    }
    const void *loc = &tk.last;
    if (err == CL_SUCCESS)
        err = clEnqueueNativeKernel(ctx->queue, task_run, &tk,
                                    offsetof(task, args) + (size ? size : 1), 1, &mem[n - 1],
                                    &loc, 0, NULL, NULL);
    return err == CL_SUCCESS ? BSC_OK : bsc_cl_fail(err, "clEnqueueNativeKernel (host task)");
}
