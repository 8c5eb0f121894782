/* Shared by registry.c (the registry: loading, lookup, reporting),
 * registry_check.c (a plugin descriptor's own consistency) and
 * registry_options.c (option lists). Not a public header. */
#ifndef BATCHSCOPE_REGISTRY_INTERNAL_H
#define BATCHSCOPE_REGISTRY_INTERNAL_H

#include <stddef.h>
#include "batchscope/registry.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

/* Checks that d, found in the plugin at path, is usable on its own: its ABI
 * first (a different major may lay the rest out differently), then its
 * struct sizes, name, types, every type's kind, name, ops table size,
 * required ops, options and uniqueness within the plugin. BSC_ERR_ABI or
 * BSC_ERR_PLUGIN "path: ...". Clashes with plugins already loaded are the
 * registry's to check. */
BSC_INTERNAL bsc_status bsc_plugin_desc_check(const char *path, const bsc_plugin_desc *d);

/* sizeof the ops table of a kind in this ABI, 0 for an unknown kind. */
BSC_INTERNAL size_t bsc_kind_ops_size(bsc_kind k);

/* Number of types in d (its list is NULL-terminated). */
BSC_INTERNAL size_t bsc_desc_n_types(const bsc_plugin_desc *d);

static inline const char *or_default(const char *s, const char *def)
{
    return s ? s : def;
}

#endif
