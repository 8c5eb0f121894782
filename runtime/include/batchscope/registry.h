/* batchscope: the plugin registry (host side).
 *
 * Plugins are searched, in order, in: the build tree's plugin directory (when
 * running from the build tree), the install's plugin directory,
 * $BATCHSCOPE_PLUGIN_PATH (colon-separated), and extra paths given by the
 * pipeline's `plugins:` list (files or directories). Every file matching
 * *.so is dlopen'ed with RTLD_NOW and must export bsc_plugin_entry.
 */
#ifndef BATCHSCOPE_REGISTRY_H
#define BATCHSCOPE_REGISTRY_H

#include "batchscope/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_registry bsc_registry;

typedef enum bsc_type_kind { BSC_KIND_LAYER, BSC_KIND_LOSS, BSC_KIND_ANALYSIS } bsc_type_kind;

typedef struct bsc_plugin_info {
    const bsc_plugin_desc *desc;
    const char *path;          /* the file it was loaded from */
    const char *origin;        /* "build", "install", "BATCHSCOPE_PLUGIN_PATH", "pipeline" */
} bsc_plugin_info;

bsc_status bsc_registry_new(bsc_registry **out);
void bsc_registry_free(bsc_registry *r);   /* does not dlclose (see plugin.h) */

/* Loads every plugin of the default search path (build, install, env). */
bsc_status bsc_registry_load_default(bsc_registry *r);
/* Loads one plugin file, or every *.so in a directory. Errors name the file:
 * no entry point, ABI major differs or minor newer ("built for ABI 2.0, this
 * batchscope has 1.0"), or a type name already provided by another plugin
 * (naming both files). `origin` is recorded for `batchscope plugins`. */
bsc_status bsc_registry_load_path(bsc_registry *r, const char *path, const char *origin);

size_t bsc_registry_n_plugins(const bsc_registry *r);
const bsc_plugin_info *bsc_registry_plugin(const bsc_registry *r, size_t i);

/* Finds a type; NULL when unknown. *plugin (optional) receives its plugin. */
const bsc_layer_type *bsc_registry_layer(const bsc_registry *r, const char *name);
const bsc_loss_type *bsc_registry_loss(const bsc_registry *r, const char *name);
const bsc_analysis_type *bsc_registry_analysis(const bsc_registry *r, const char *name);

/* An error at the node for an unknown type name of this kind, with the closest
 * known name as a hint. */
bsc_status bsc_registry_unknown(const bsc_registry *r, bsc_type_kind kind,
                                const bsc_node *at, const char *name);

/* Prints what `batchscope plugins` shows. */
void bsc_registry_print(const bsc_registry *r, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
