/* A plugin descriptor's own consistency, checked before the registry
 * accepts it: ABI version, struct sizes, names, each type's ops and its
 * declared options. */
#include "batchscope/version.h"
#include "batchscope/registry.h"
#include "registry_internal.h"

#include <stddef.h>
#include <string.h>

/* Bytes up to and including `member`: the size a struct had in the ABI
 * version whose last member that was. A struct smaller than its ABI 2.0 size
 * was built against other headers (or is not what it claims): reading it
 * would run past the plugin's data. */
#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
#define DESC_SIZE_2_0 END_OF(bsc_plugin_desc, types)
#define TYPE_SIZE_2_0 END_OF(bsc_type, ops)
#define OPTION_SIZE_2_0 END_OF(bsc_option, help)

size_t bsc_kind_ops_size(bsc_kind k)
{
    switch (k) {
    case BSC_KIND_LAYER: return sizeof(bsc_layer_ops);
    case BSC_KIND_LOSS: return sizeof(bsc_loss_ops);
    case BSC_KIND_OBSERVER: return sizeof(bsc_observer_ops);
    case BSC_KIND_ANALYSIS: return sizeof(bsc_analysis_ops);
    case BSC_KIND_REPORT: return sizeof(bsc_report_ops);
    }
    return 0;
}

/* The ABI 2.0 size of each kind's ops table: the least a plugin must give. */
static size_t ops_size_2_0(bsc_kind k)
{
    switch (k) {
    case BSC_KIND_LAYER: return END_OF(bsc_layer_ops, per_example_sqnorm);
    case BSC_KIND_LOSS: return END_OF(bsc_loss_ops, backward);
    case BSC_KIND_OBSERVER: return END_OF(bsc_observer_ops, study_end);
    case BSC_KIND_ANALYSIS: return END_OF(bsc_analysis_ops, run);
    case BSC_KIND_REPORT: return END_OF(bsc_report_ops, draw);
    }
    return 0;
}

size_t bsc_desc_n_types(const bsc_plugin_desc *d)
{
    size_t n = 0;
    while (d->types && d->types[n])
        n++;
    return n;
}

/* The first required op that is NULL, or NULL when all are present. Every
 * table starts with struct_size, then create and destroy. */
static const char *missing_op(bsc_kind k, const void *ops)
{
    switch (k) {
    case BSC_KIND_LAYER: {
        const bsc_layer_ops *o = ops;
        if (!o->create) return "create";
        if (!o->forward) return "forward";
        if (!o->backward) return "backward";
        if (o->n_params && !o->param_spec) return "param_spec (n_params is given)";
        break;
    }
    case BSC_KIND_LOSS: {
        const bsc_loss_ops *o = ops;
        if (!o->create) return "create";
        if (!o->bind) return "bind";
        if (!o->forward) return "forward";
        if (!o->backward) return "backward";
        break;
    }
    case BSC_KIND_OBSERVER:
        if (!((const bsc_observer_ops *)ops)->create) return "create";
        break;
    case BSC_KIND_ANALYSIS:
        if (!((const bsc_analysis_ops *)ops)->create) return "create";
        if (!((const bsc_analysis_ops *)ops)->run) return "run";
        break;
    case BSC_KIND_REPORT:
        if (!((const bsc_report_ops *)ops)->create) return "create";
        if (!((const bsc_report_ops *)ops)->draw) return "draw";
        break;
    }
    return NULL;
}

static int valid_kind(bsc_kind k)
{
    return k >= BSC_KIND_LAYER && k <= BSC_KIND_REPORT;
}

static bsc_status check_options(const char *path, const bsc_type *t)
{
    const char *kw = bsc_kind_name(t->kind);
    for (size_t i = 0; t->options && t->options[i]; i++) {
        const bsc_option *o = t->options[i];
        if (o->struct_size < OPTION_SIZE_2_0)
            return bsc_fail(BSC_ERR_ABI, "%s: %s type '%s': option #%zu has struct_size %zu, "
                            "smaller than the %zu bytes of plugin ABI 2.0 (built against "
                            "other headers?)", path, kw, t->name, i, o->struct_size,
                            (size_t)OPTION_SIZE_2_0);
        if (!o->name || !o->name[0])
            return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s': option #%zu has no name", path,
                            kw, t->name, i);
        if (!strcmp(o->name, "type"))
            return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s' declares the option 'type', "
                            "which the host reserves", path, kw, t->name);
        if (o->kind < BSC_OPT_BOOL || o->kind > BSC_OPT_ANY)
            return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s': option '%s' has an unknown "
                            "kind %d", path, kw, t->name, o->name, (int)o->kind);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(t->options[j]->name, o->name))
                return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s' declares option '%s' twice",
                                path, kw, t->name, o->name);
    }
    return BSC_OK;
}

static bsc_status check_type(const char *path, const bsc_plugin_desc *d, size_t i)
{
    const bsc_type *t = d->types[i];
    if (t->struct_size < TYPE_SIZE_2_0)
        return bsc_fail(BSC_ERR_ABI, "%s: type #%zu has struct_size %zu, smaller than the %zu "
                        "bytes of plugin ABI 2.0 (built against other headers?)", path, i,
                        t->struct_size, (size_t)TYPE_SIZE_2_0);
    if (!valid_kind(t->kind))
        return bsc_fail(BSC_ERR_PLUGIN, "%s: type #%zu ('%s') has an unknown kind %d", path, i,
                        or_default(t->name, "?"), (int)t->kind);
    const char *kw = bsc_kind_name(t->kind);
    if (!t->name || !t->name[0])
        return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type #%zu has no name", path, kw, i);
    if (!t->ops)
        return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s' has no ops table", path, kw, t->name);
    size_t have = *(const size_t *)t->ops, need = ops_size_2_0(t->kind);
    if (have < need)
        return bsc_fail(BSC_ERR_ABI, "%s: %s type '%s': ops table struct_size is %zu bytes, "
                        "smaller than the %zu bytes of a %s table in plugin ABI 2.0 (built "
                        "against other headers, or the ops of another kind?)", path, kw,
                        t->name, have, need, kw);
    const char *missing = missing_op(t->kind, t->ops);
    if (missing)
        return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s' has no %s() op, which is required",
                        path, kw, t->name, missing);
    /* The R-operator is one pass in two halves: one without the other would
     * make the model's product fail halfway instead of falling back. Only a
     * table that reaches that far is read. */
    if (t->kind == BSC_KIND_LAYER && have >= END_OF(bsc_layer_ops, r_backward)) {
        const bsc_layer_ops *o = t->ops;
        if (!o->r_forward != !o->r_backward)
            return bsc_fail(BSC_ERR_PLUGIN, "%s: layer type '%s' has %s() without %s(): the "
                            "R-operator needs both or neither", path, t->name,
                            o->r_forward ? "r_forward" : "r_backward",
                            o->r_forward ? "r_backward" : "r_forward");
    }
    if (t->kind == BSC_KIND_ANALYSIS && have >= END_OF(bsc_analysis_ops, finish)) {
        /* The unit ops come as a set: the host calls all four or none. */
        const bsc_analysis_ops *a = t->ops;
        int n = !!a->plan + !!a->run_unit + !!a->merge + !!a->finish;
        if (n != 0 && n != 4)
            return bsc_fail(BSC_ERR_PLUGIN, "%s: analysis type '%s' has %d of the four unit "
                            "ops (plan, run_unit, merge, finish): give all four or none",
                            path, t->name, n);
    }
    bsc_status st = check_options(path, t);
    if (st != BSC_OK)
        return st;
    /* A name twice in one plugin would make lookups silently pick the first. */
    for (size_t j = 0; j < i; j++) {
        const bsc_type *o = d->types[j];
        if (o->kind == t->kind && o->name && !strcmp(o->name, t->name))
            return bsc_fail(BSC_ERR_PLUGIN, "%s: %s type '%s' is provided twice by this plugin",
                            path, kw, t->name);
    }
    return BSC_OK;
}

bsc_status bsc_plugin_desc_check(const char *path, const bsc_plugin_desc *d)
{
    /* The ABI is checked before anything else in the descriptor is read: a
     * different major may have laid it out differently (only the first two
     * members are fixed across majors). */
    if (d->abi_major != BSC_ABI_MAJOR || d->abi_minor > BSC_ABI_MINOR)
        return bsc_fail(BSC_ERR_ABI,
                        "%s: plugin was built for plugin ABI %u.%u; this batchscope (%s) "
                        "provides ABI %d.%d%s",
                        path, (unsigned)d->abi_major, (unsigned)d->abi_minor, bsc_version(),
                        BSC_ABI_MAJOR, BSC_ABI_MINOR,
                        d->abi_major < BSC_ABI_MAJOR ? " (rebuild it against this SDK)" : "");
    if (d->struct_size < DESC_SIZE_2_0)
        return bsc_fail(BSC_ERR_ABI, "%s: plugin descriptor struct_size is %zu, smaller than "
                        "the %zu bytes of plugin ABI 2.0 (built against other headers?)", path,
                        d->struct_size, (size_t)DESC_SIZE_2_0);
    if (!d->name || !d->name[0])
        return bsc_fail(BSC_ERR_PLUGIN, "%s: plugin descriptor has no name", path);
    if (!d->types)
        return bsc_fail(BSC_ERR_PLUGIN, "%s: plugin '%s' has no type list", path, d->name);
    size_t n = bsc_desc_n_types(d);
    for (size_t i = 0; i < n; i++) {
        bsc_status st = check_type(path, d, i);
        if (st != BSC_OK)
            return st;
    }
    return BSC_OK;
}
