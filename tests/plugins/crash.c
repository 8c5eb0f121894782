/* Test plugin "crash": a layer that crashes where the environment says,
 * for the crash handler's tests. TP_CRASH=load segfaults in the plugin's
 * constructor (while it is dlopen'ed), TP_CRASH=forward in the layer's
 * forward; unset, it is a harmless identity (the loader tests may load
 * it). */
#include <stdlib.h>
#include <string.h>

#define TP_STUB_NO_FORWARD
#include "tp_stub.h"

static void crash_if(const char *where)
{
    const char *v = getenv("TP_CRASH");
    /* a write to the unmapped first page, through a pointer the compiler
     * cannot see through */
    volatile int *volatile bad = (volatile int *)(uintptr_t)16;
    if (v && strcmp(v, where) == 0)
        *bad = 1;
}

__attribute__((constructor)) static void on_load(void)
{
    crash_if("load");
}

static bsc_status c_forward(void *self, const bsc_pass *p, const bsc_tensor *in, bsc_tensor *out)
{
    (void)self;
    (void)p;
    (void)in;
    (void)out;
    crash_if("forward");
    return BSC_OK;
}

BSC_LAYER_TYPE(tp_crash, "tp_crash", "test layer: crashes where TP_CRASH says", BSC_NO_OPTIONS,
               .create = l_create, .forward = c_forward, .backward = l_backward);

#define TYPES(X) X(tp_crash)
BSC_PLUGIN("crash", "0.0.1", TYPES)
