/* The current plugin call (plugin_call.h): a linked stack of scopes on the
 * host thread's stack, and an append-only table of the plugins loaded, so
 * that a signal handler can name the plugin of a type without locks or
 * allocation. */
#include "batchscope/plugin_call.h"

#include <stdlib.h>
#include <string.h>

static bsc_plugin_scope *volatile current;

void bsc_plugin_enter(bsc_plugin_scope *sc, const bsc_type *t, const char *op)
{
    sc->type = t ? t->name : NULL;
    sc->op = op;
    sc->path = NULL;
    sc->prev = current;
    __atomic_store_n(&current, sc, __ATOMIC_RELEASE);
}

void bsc_plugin_enter_load(bsc_plugin_scope *sc, const char *path)
{
    sc->type = NULL;
    sc->op = "load";
    sc->path = path;
    sc->prev = current;
    __atomic_store_n(&current, sc, __ATOMIC_RELEASE);
}

void bsc_plugin_leave(bsc_plugin_scope *sc)
{
    /* A scope left out of order (a plugin longjmp'ing out of the host?)
     * must not leave a dangling pointer to a dead frame: pop to the one
     * before it whatever is on top. */
    __atomic_store_n(&current, sc->prev, __ATOMIC_RELEASE);
}

/* Plugins loaded so far: never removed, never freed (libraries stay loaded
 * until the process ends). A slot is published by its count. */
#define MAX_PLUGINS 256
static struct {
    const bsc_plugin_desc *desc;
    char *path;
} loaded[MAX_PLUGINS];
static size_t n_loaded;
static volatile int register_lock;

void bsc_plugin_call_register(const bsc_plugin_desc *d, const char *path)
{
    while (__atomic_test_and_set(&register_lock, __ATOMIC_ACQUIRE))
        ;
    size_t n = __atomic_load_n(&n_loaded, __ATOMIC_ACQUIRE);
    int known = 0;
    for (size_t i = 0; i < n; i++)
        known |= loaded[i].desc == d;
    if (!known && n < MAX_PLUGINS) {
        loaded[n].desc = d;
        loaded[n].path = path ? strdup(path) : NULL;
        __atomic_store_n(&n_loaded, n + 1, __ATOMIC_RELEASE);
    }
    __atomic_clear(&register_lock, __ATOMIC_RELEASE);
}

int bsc_plugin_call_current(bsc_plugin_call *out)
{
    memset(out, 0, sizeof *out);
    const bsc_plugin_scope *sc = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
    if (!sc)
        return 0;
    out->type = sc->type;
    out->op = sc->op;
    out->path = sc->path;
    /* The registry hands out copies of the types, but their names point
     * into the plugin's own memory: the same pointer identifies the type
     * among the plugins' descriptors. */
    size_t n = __atomic_load_n(&n_loaded, __ATOMIC_ACQUIRE);
    for (size_t i = 0; sc->type && i < n; i++) {
        const bsc_plugin_desc *d = loaded[i].desc;
        for (size_t k = 0; d->types && d->types[k]; k++)
            if (d->types[k]->name == sc->type) {
                out->plugin = d->name;
                out->path = loaded[i].path;
                return 1;
            }
    }
    return 1;
}
