/* Shared by registry.c (the registry: loading, lookup, reporting) and
 * registry_check.c (a plugin descriptor's own consistency). Not a public
 * header: nothing here is exported from libbatchscope. */
#ifndef BATCHSCOPE_REGISTRY_INTERNAL_H
#define BATCHSCOPE_REGISTRY_INTERNAL_H

#include <stddef.h>
#include "batchscope/registry.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

/* Checks that d, found in the plugin at path, is usable on its own: its ABI
 * first (a different major may lay the rest out differently), then its name,
 * its type tables, and every type's name, ops table size, required ops and
 * uniqueness within the plugin. BSC_ERR_ABI or BSC_ERR_PLUGIN "path: ...".
 * Clashes with plugins already loaded are the registry's to check. */
BSC_INTERNAL bsc_status bsc_plugin_desc_check(const char *path, const bsc_plugin_desc *d);

static inline const char *kind_word(bsc_type_kind k)
{
    switch (k) {
    case BSC_KIND_LAYER: return "layer";
    case BSC_KIND_LOSS: return "loss";
    case BSC_KIND_ANALYSIS: return "analysis";
    }
    return "type";
}

static inline size_t kind_count(const bsc_plugin_desc *d, bsc_type_kind k)
{
    switch (k) {
    case BSC_KIND_LAYER: return d->n_layers;
    case BSC_KIND_LOSS: return d->n_losses;
    case BSC_KIND_ANALYSIS: return d->n_analyses;
    }
    return 0;
}

/* The i-th type of kind k as an opaque pointer, and its name. */
static inline const void *kind_type(const bsc_plugin_desc *d, bsc_type_kind k, size_t i,
                                    const char **name)
{
    switch (k) {
    case BSC_KIND_LAYER: *name = d->layers[i].name; return &d->layers[i];
    case BSC_KIND_LOSS: *name = d->losses[i].name; return &d->losses[i];
    case BSC_KIND_ANALYSIS: *name = d->analyses[i].name; return &d->analyses[i];
    }
    *name = NULL;
    return NULL;
}

static inline const char *or_default(const char *s, const char *def)
{
    return s ? s : def;
}

#endif
