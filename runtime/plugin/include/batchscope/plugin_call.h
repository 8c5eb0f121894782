/* batchscope: which plugin code is running, for a crash handler.
 *
 * A plugin that crashes (a segfault in a layer's forward, in its
 * constructor while it loads, a bad entry pointer) takes the process with
 * it; the least the host owes the user is the name of the culprit. The
 * library marks every call into plugin code with a scope -- a small record
 * on the caller's stack, linked to the scope it interrupts -- and the
 * command's SIGSEGV/SIGBUS handler asks bsc_plugin_call_current() what was
 * running. The library installs no handler itself (see study.h).
 */
#ifndef BATCHSCOPE_PLUGIN_CALL_H
#define BATCHSCOPE_PLUGIN_CALL_H

#include "batchscope/api.h"
#include "batchscope/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One call into a plugin; lives on the caller's stack between enter and
 * leave. Members are the library's. */
typedef struct bsc_plugin_scope {
    const char *type;                  /* the type's name; NULL while loading */
    const char *op;                    /* "forward", "create", "load", ... */
    const char *path;                  /* the file, while loading */
    struct bsc_plugin_scope *prev;     /* the call this one interrupts */
} bsc_plugin_scope;

/* Marks the start of a call of op (a string literal) of type t (a type the
 * registry handed out). Scopes nest (an analysis' run evaluates the model,
 * which calls layers); every enter is paired with a leave on the same
 * scope, in reverse order. */
BSC_API void bsc_plugin_enter(bsc_plugin_scope *sc, const bsc_type *t, const char *op);
/* The same while the plugin file `path` is being loaded: its constructors
 * and its entry point run. */
BSC_API void bsc_plugin_enter_load(bsc_plugin_scope *sc, const char *path);
BSC_API void bsc_plugin_leave(bsc_plugin_scope *sc);

/* Evaluates expr (a call into plugin code, e.g. `s = ops->forward(...)`)
 * inside a scope of type t and op. */
#define BSC_PLUGIN_CALL(t, opname, expr)                  \
    do {                                                  \
        bsc_plugin_scope bsc_scope_;                      \
        bsc_plugin_enter(&bsc_scope_, (t), (opname));     \
        expr;                                             \
        bsc_plugin_leave(&bsc_scope_);                    \
    } while (0)

/* What a crash handler reports. */
typedef struct bsc_plugin_call {
    const char *plugin;    /* the plugin's name ("layers"); NULL when unknown */
    const char *path;      /* its file; NULL when unknown */
    const char *type;      /* the type ("dense"); NULL while loading */
    const char *op;        /* "forward", "load", ... */
} bsc_plugin_call;

/* The innermost plugin call in progress, or 0 (and *out all NULL) when no
 * plugin code is running. Async-signal-safe: it only reads pointers and
 * tables that are never freed (plugins stay loaded, see plugin.h). The host
 * calls plugins from one thread; a crash in another thread (an OpenCL
 * driver's) reports whatever call the host thread was in. */
BSC_API int bsc_plugin_call_current(bsc_plugin_call *out);

/* Records an accepted plugin so that a crash in one of its types can name
 * it (the registry calls this; path is copied, never freed). */
BSC_API void bsc_plugin_call_register(const bsc_plugin_desc *d, const char *path);

#ifdef __cplusplus
}
#endif
#endif
