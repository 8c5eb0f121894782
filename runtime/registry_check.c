/* A plugin descriptor's own consistency, checked before the registry
 * accepts it: ABI version, names, type tables and each type's ops. */
#include "batchscope/batchscope.h"
#include "batchscope/registry.h"
#include "registry_internal.h"

#include <stddef.h>
#include <string.h>

/* Bytes up to and including `member`: the size an ops table had in the ABI
 * version whose last member that was. Minor versions only append, so a table
 * smaller than its ABI 1.0 size would make the host read past the plugin's
 * data. */
#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
#define LAYER_OPS_SIZE_1_0 END_OF(bsc_layer_ops, per_example_sqnorm)
#define LOSS_OPS_SIZE_1_0 END_OF(bsc_loss_ops, destroy)
#define ANALYSIS_OPS_SIZE_1_0 END_OF(bsc_analysis_ops, destroy)

static bsc_status check_ops_size(const char *path, bsc_type_kind k, const char *name,
                                 const void *ops, size_t struct_size, size_t min_size)
{
    if (!ops)
        return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s' has no ops table", path,
                        kind_word(k), name);
    if (struct_size < min_size)
        return bsc_fail(BSC_ERR_PLUGIN,
                        "%s: %s type '%s': ops table struct_size is %zu bytes, smaller than "
                        "the %zu bytes of plugin ABI 1.0",
                        path, kind_word(k), name, struct_size, min_size);
    return BSC_OK;
}

/* The first required op that is NULL, or NULL when all are present. */
static const char *missing_op(bsc_type_kind k, const void *ops)
{
    if (k == BSC_KIND_LAYER) {
        const bsc_layer_ops *o = ops;
        if (!o->create) return "create";
        if (!o->destroy) return "destroy";
        if (!o->output_shape) return "output_shape";
        if (!o->n_params) return "n_params";
        if (!o->param_spec) return "param_spec";
        if (!o->bind) return "bind";
        if (!o->forward) return "forward";
        if (!o->backward) return "backward";
    } else if (k == BSC_KIND_LOSS) {
        const bsc_loss_ops *o = ops;
        if (!o->create) return "create";
        if (!o->destroy) return "destroy";
        if (!o->bind) return "bind";
        if (!o->forward) return "forward";
        if (!o->backward) return "backward";
    } else {
        const bsc_analysis_ops *o = ops;
        if (!o->create) return "create";
        if (!o->destroy) return "destroy";
    }
    return NULL;
}

static bsc_status check_type(const char *path, const bsc_plugin_desc *d, bsc_type_kind k,
                             size_t i)
{
    const char *name;
    const void *t = kind_type(d, k, i, &name);
    const void *ops = NULL;
    size_t struct_size = 0, min_size = 0;
    bsc_status st;

    if (!name || !name[0])
        return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type #%zu has no name", path, kind_word(k), i);
    switch (k) {
    case BSC_KIND_LAYER: {
        const bsc_layer_ops *o = ((const bsc_layer_type *)t)->ops;
        ops = o;
        struct_size = o ? o->struct_size : 0;
        min_size = LAYER_OPS_SIZE_1_0;
        break;
    }
    case BSC_KIND_LOSS: {
        const bsc_loss_ops *o = ((const bsc_loss_type *)t)->ops;
        ops = o;
        struct_size = o ? o->struct_size : 0;
        min_size = LOSS_OPS_SIZE_1_0;
        break;
    }
    case BSC_KIND_ANALYSIS: {
        const bsc_analysis_ops *o = ((const bsc_analysis_type *)t)->ops;
        ops = o;
        struct_size = o ? o->struct_size : 0;
        min_size = ANALYSIS_OPS_SIZE_1_0;
        break;
    }
    }
    st = check_ops_size(path, k, name, ops, struct_size, min_size);
    if (st != BSC_OK)
        return st;
    const char *missing = missing_op(k, ops);
    if (missing)
        return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s' has no %s() op, which is required",
                        path, kind_word(k), name, missing);
    /* A name twice in one plugin would make lookups silently pick the first. */
    for (size_t j = 0; j < i; j++) {
        const char *other;
        kind_type(d, k, j, &other);
        if (other && strcmp(other, name) == 0)
            return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s' is provided twice by this plugin",
                            path, kind_word(k), name);
    }
    return BSC_OK;
}

bsc_status bsc_plugin_desc_check(const char *path, const bsc_plugin_desc *d)
{
    static const bsc_type_kind kinds[] = {BSC_KIND_LAYER, BSC_KIND_LOSS, BSC_KIND_ANALYSIS};
    const char *pname = or_default(d->name, "(unnamed)");
    const char *pver = or_default(d->version, "(no version)");

    /* The ABI is checked before anything else in the descriptor is read: a
     * different major may have laid it out differently. */
    if (d->abi_major != BSC_ABI_MAJOR || d->abi_minor > BSC_ABI_MINOR)
        return bsc_fail(BSC_ERR_ABI,
                        "%s: plugin '%s' %s was built for plugin ABI %u.%u; this batchscope "
                        "(%s) provides ABI %d.%d",
                        path, pname, pver, (unsigned)d->abi_major, (unsigned)d->abi_minor,
                        bsc_version(), BSC_ABI_MAJOR, BSC_ABI_MINOR);
    if (!d->name || !d->name[0])
        return bsc_fail(BSC_ERR_PLUGIN, "%s: plugin descriptor has no name", path);
    if ((d->n_layers && !d->layers) || (d->n_losses && !d->losses) ||
        (d->n_analyses && !d->analyses))
        return bsc_fail(BSC_ERR_PLUGIN, "%s: plugin '%s' declares types but has no table of them",
                        path, pname);

    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t i = 0; i < kind_count(d, kinds[k]); i++) {
            bsc_status st = check_type(path, d, kinds[k], i);
            if (st != BSC_OK)
                return st;
        }
    }
    return BSC_OK;
}
