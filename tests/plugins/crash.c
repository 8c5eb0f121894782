/* Test plugin "crash": a layer that crashes where the environment says,
 * for the crash handler's tests. TP_CRASH=load segfaults in the plugin's
 * constructor (while it is dlopen'ed), =entry in its entry point, =badptr
 * returns a bad descriptor pointer, =forward crashes in the layer's
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

/* The entry point by hand (not BSC_PLUGIN), to crash in it
 * (TP_CRASH=entry) or hand the host a bad descriptor pointer
 * (TP_CRASH=badptr). */
static const bsc_type *const types[] = {&tp_crash_type, NULL};
static const bsc_plugin_desc desc = {BSC_ABI_MAJOR, BSC_ABI_MINOR, sizeof(bsc_plugin_desc),
                                     "crash", "0.0.1", types};

BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void);
BSC_PLUGIN_EXPORT const bsc_plugin_desc *bsc_plugin_entry(void)
{
    crash_if("entry");
    const char *v = getenv("TP_CRASH");
    if (v && strcmp(v, "badptr") == 0)
        return (const bsc_plugin_desc *)(uintptr_t)16;
    return &desc;
}
