/* batchscope: the plugin registry (host side).
 *
 * Plugins are searched, in order, in: the plugin directory that belongs with
 * this libbatchscope (the build tree's when it runs from the build tree,
 * else <libdir>/batchscope/plugins next to the installed library),
 * $BATCHSCOPE_PLUGIN_PATH (colon-separated), and extra paths given by the
 * pipeline's `plugins:` list or --plugin (files or directories). Every file
 * matching *.so is dlopen'ed with RTLD_NOW and must export bsc_plugin_entry.
 *
 * The registry hands out its own copy of every type: struct_size is the
 * host's, the ops table is copied into a full-size table of its kind (members
 * an older plugin lacks are NULL) and `destroy` defaults to free(). Other
 * NULL ops keep the defaults documented in plugin.h, applied by the caller.
 */
#ifndef BATCHSCOPE_REGISTRY_H
#define BATCHSCOPE_REGISTRY_H

#include "batchscope/api.h"
#include <stdio.h>
#include "batchscope/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_registry bsc_registry;

typedef struct bsc_plugin_info {
    const bsc_plugin_desc *desc;
    const char *path;          /* the file it was loaded from, absolute */
    const char *origin;        /* "build", "install", "BATCHSCOPE_PLUGIN_PATH", "pipeline" */
} bsc_plugin_info;

BSC_API bsc_status bsc_registry_new(bsc_registry **out);
BSC_API void bsc_registry_free(bsc_registry *r);   /* does not dlclose (see plugin.h) */

/* Loads every plugin of the default search path (beside the library, env). */
BSC_API bsc_status bsc_registry_load_default(bsc_registry *r);
/* Loads one plugin file, or every *.so in a directory. Errors name the file:
 * no entry point, ABI major differs or minor newer ("built for plugin ABI
 * 1.1; this batchscope provides 2.0"), a struct or ops table smaller than
 * its kind's, a required op missing, a malformed option list, or a type name
 * already provided by another plugin (naming both files). `origin` is
 * recorded for `batchscope plugins`. */
BSC_API bsc_status bsc_registry_load_path(bsc_registry *r, const char *path, const char *origin);

BSC_API size_t bsc_registry_n_plugins(const bsc_registry *r);
BSC_API const bsc_plugin_info *bsc_registry_plugin(const bsc_registry *r, size_t i);

/* The type of that kind and name, NULL when unknown. *plugin (may be NULL)
 * receives the plugin that provides it. */
BSC_API const bsc_type *bsc_registry_find(const bsc_registry *r, bsc_kind kind, const char *name,
                                  const bsc_plugin_info **plugin);
/* The types of one kind in load order: n = bsc_registry_count(), i < n. */
BSC_API size_t bsc_registry_count(const bsc_registry *r, bsc_kind kind);
BSC_API const bsc_type *bsc_registry_type(const bsc_registry *r, bsc_kind kind, size_t i);

/* The type `type:` names under the pipeline key of `kind`, with the errors a
 * user needs at the node `at`: a type of another kind ("'distance' is an
 * observer: list it under `observers:`"), or an unknown name with the
 * closest known one of this kind. */
BSC_API bsc_status bsc_registry_resolve(const bsc_registry *r, bsc_kind kind, const bsc_node *at,
                                const char *name, const bsc_type **out);

/* Checks a type's options mapping `map` (NULL or an empty scalar: all
 * defaults) against its declared options: every key must be declared (or be
 * "type"), every value of the declared form. Errors at file:line:col. */
BSC_API bsc_status bsc_type_check_options(const bsc_type *t, const bsc_node *map);

/* "layer", "loss", "observer", "analysis", "report". */
BSC_API const char *bsc_kind_name(bsc_kind kind);
/* The pipeline key its entries go under: "model", "loss", "observers",
 * "analyses", "report". */
BSC_API const char *bsc_kind_key(bsc_kind kind);
/* "bool", "int", "float", "string", "list", "map", "any". */
BSC_API const char *bsc_opt_kind_name(bsc_opt_kind kind);

/* What `batchscope plugins` shows: every plugin, its types by kind, and each
 * type's options (name, kind, default, help). */
BSC_API void bsc_registry_print(const bsc_registry *r, FILE *f);
/* The option tables of every type as Markdown, the README's format
 * (`batchscope plugins --markdown`); the README is tested against it. */
BSC_API void bsc_registry_print_markdown(const bsc_registry *r, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
