/* The study pipeline: YAML tree -> overrides (pipeline_override.c) ->
 * validated plain structs.
 *
 * Validation reads every key the pipeline owns and rejects the rest, so a
 * typo never silently falls back to a default. Options of layers, losses,
 * analyses and the dataset belong to their modules and are left as nodes. */
#include "batchscope/pipeline.h"
#include "batchscope/hashset.h"
#include "batchscope/registry.h"
#include "batchscope/runs.h"
#include "pipeline_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pipeline_impl {
    bsc_pipeline pub;          /* first: bsc_pipeline_free casts back */
    char *default_name;        /* owned when `name:` is absent */
} pipeline_impl;

static const char *const top_keys[] = {
    "version", "name", "seed", "device", "gemm", "plugins", "dataset", "model", "loss",
    "training", "observers", "analyses", "report", NULL};
/* `gemm: auto | clblast | host`: the GEMM backend (blas.h); absent = auto. */
static bsc_status parse_gemm(const bsc_node *root, bsc_gemm_backend *out)
{
    const bsc_node *v = bsc_node_get(root, "gemm");
    *out = BSC_GEMM_AUTO;
    if (!v)
        return BSC_OK;
    if (v->kind != BSC_NODE_SCALAR || bsc_gemm_backend_parse(v->value, out) != BSC_OK)
        return bsc_node_bad_value(v, "gemm", "auto, clblast or host");
    return BSC_OK;
}

/* ------------------------------------------------------------- components */

static bsc_status parse_component(const bsc_node *n, const char *name, bsc_component *out)
{
    const bsc_node *t;
    if (n->kind != BSC_NODE_MAP)
        return bsc_node_fail(n, BSC_ERR_INVALID, "%s must be a mapping with a 'type', got %s",
                             name, bsc_node_kind_word(n));
    if (!(t = bsc_node_get(n, "type")))
        return bsc_node_fail(n, BSC_ERR_INVALID, "%s has no 'type'", name);
    if (t->kind != BSC_NODE_SCALAR || t->value[0] == '\0')
        return bsc_node_bad_value(t, "type", "a type name");
    out->type = t->value;
    out->node = n;
    return BSC_OK;
}

static bsc_status parse_components(const bsc_node *root, const char *key, int nonempty,
                                   bsc_component **out, size_t *n)
{
    char name[64];
    const bsc_node *v = bsc_node_get(root, key);
    *out = NULL;
    *n = 0;
    if (!v)
        return BSC_OK;
    /* `analyses:` with nothing under it (or every entry commented out) is
     * an empty list, as `report:` with nothing under it is the defaults. */
    int none = bsc_node_is_null(v) || (v->kind == BSC_NODE_SEQ && v->n == 0);
    if (v->kind != BSC_NODE_SEQ && !none)
        return bsc_node_fail(v, BSC_ERR_INVALID, "%s must be a list of mappings, got %s", key,
                             bsc_node_kind_word(v));
    if (nonempty && none)
        return bsc_node_fail(v, BSC_ERR_INVALID, "%s must list at least one entry", key);
    if (none)
        return BSC_OK;
    if (!(*out = calloc(v->n, sizeof **out)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    *n = v->n;
    for (size_t i = 0; i < v->n; i++) {
        bsc_status st;
        snprintf(name, sizeof name, "%s.%zu", key, i);
        if ((st = parse_component(v->items[i], name, &(*out)[i])) != BSC_OK)
            return st;   /* the caller frees *out with the pipeline */
    }
    return BSC_OK;
}

/* ---------------------------------------------------------------- the top */

static bsc_status parse_version(const bsc_node *root, int *version)
{
    const bsc_node *v = bsc_node_get(root, "version");
    long x;
    if (!v)
        return bsc_node_fail(root, BSC_ERR_INVALID,
                             "missing required key 'version' (this batchscope reads pipeline "
                             "version %d)", BSC_PIPELINE_VERSION);
    if (bsc_node_to_long(v, BSC_PIPELINE_VERSION, BSC_PIPELINE_VERSION, &x) != BSC_OK)
        return bsc_node_fail(v, BSC_ERR_INVALID,
                             "unsupported pipeline version '%s' (this batchscope reads version %d)",
                             v->kind == BSC_NODE_SCALAR ? v->value : bsc_node_kind_word(v),
                             BSC_PIPELINE_VERSION);
    *version = (int)x;
    return BSC_OK;
}

/* "dir/study.yaml" -> "study". */
static char *name_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *dot;
    size_t len;
    char *s;
    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (!(s = malloc(len + 1)))
        return NULL;
    memcpy(s, base, len);
    s[len] = '\0';
    return s;
}

/* Plugin paths in the file are relative to the file, not to wherever the
 * command happens to run. */
static bsc_status parse_plugins(const bsc_node *root, const char *path, bsc_pipeline *p)
{
    const bsc_node *v = bsc_node_get(root, "plugins");
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    char **list;
    size_t n;
    if (!v)
        return BSC_OK;
    if (v->kind == BSC_NODE_MAP)
        return bsc_node_bad_value(v, "plugins", "a list of paths");
    n = v->kind == BSC_NODE_SEQ ? v->n : 1;
    if (n == 0)
        return BSC_OK;
    if (!(list = calloc(n, sizeof *list)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    p->plugins = (const char **)list;
    p->n_plugins = n;
    for (size_t i = 0; i < n; i++) {
        const bsc_node *item = v->kind == BSC_NODE_SEQ ? v->items[i] : v;
        size_t len;
        int absolute;
        if (item->kind != BSC_NODE_SCALAR || item->value[0] == '\0')
            return bsc_node_bad_value(item, "plugins", "a list of paths");
        absolute = item->value[0] == '/';
        len = strlen(item->value);
        if (!(list[i] = malloc((absolute ? 0 : dirlen) + len + 1)))
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        if (absolute) {
            memcpy(list[i], item->value, len + 1);
        } else {
            memcpy(list[i], path, dirlen);
            memcpy(list[i] + dirlen, item->value, len + 1);
        }
    }
    return BSC_OK;
}

static bsc_status validate(pipeline_impl *pi)
{
    bsc_pipeline *p = &pi->pub;
    const bsc_node *root = p->root;
    const bsc_node *v;
    long seed;
    bsc_status st;

    if (root->kind != BSC_NODE_MAP)
        return bsc_node_fail(root, BSC_ERR_INVALID, "a pipeline must be a mapping, got %s",
                             bsc_node_kind_word(root));
    if ((st = bsc_pl_check_keys(root, "", top_keys, NULL, NULL, NULL)) != BSC_OK ||
        (st = parse_version(root, &p->version)) != BSC_OK ||
        (st = bsc_pl_get_string(root, "name", &p->name)) != BSC_OK ||
        (st = bsc_pl_get_long(root, "", "seed", 0, 0, 0, LONG_MAX, &seed)) != BSC_OK ||
        (st = bsc_pl_get_string(root, "device", &p->device)) != BSC_OK ||
        (st = parse_gemm(root, &p->gemm)) != BSC_OK ||
        (st = parse_plugins(root, p->path, p)) != BSC_OK)
        return st;
    p->seed = (uint64_t)seed;
    /* The name becomes a directory, results/<name>-<time>: the rules of run
     * names keep it one path component (`--set name=../../x` must not write
     * outside results/). */
    if (p->name && !bsc_run_name_valid(p->name))
        return bsc_node_fail(bsc_node_get(root, "name"), BSC_ERR_INVALID, "name '%s' must be "
                             "1-64 letters, digits, '-', '_' or '.', not starting with '.' "
                             "(it names the results directory)", p->name);
    if (!p->name) {
        if (!(pi->default_name = name_from_path(p->path)))
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        p->name = pi->default_name;
    }
    if ((v = bsc_node_get(root, "dataset"))) {
        if (v->kind == BSC_NODE_SEQ)
            return bsc_node_bad_value(v, "dataset", "a dataset name or a mapping");
        p->dataset = v;
    }
    if ((st = parse_components(root, "model", 1, &p->layers, &p->n_layers)) != BSC_OK)
        return st;
    if ((v = bsc_node_get(root, "loss"))) {
        if (v->kind == BSC_NODE_SCALAR) {
            if (v->value[0] == '\0')
                return bsc_node_bad_value(v, "loss", "a loss type or a mapping with a 'type'");
            p->loss.type = v->value;
            p->loss.node = v;
        } else if ((st = parse_component(v, "loss", &p->loss)) != BSC_OK) {
            return st;
        }
    }
    if ((v = bsc_node_get(root, "training"))) {
        if ((st = bsc_pl_parse_training(v, &p->training)) != BSC_OK)
            return st;
        p->has_training = 1;
    } else if (p->n_layers) {
        return bsc_node_fail(bsc_node_key(root, "model"), BSC_ERR_INVALID,
                             "a pipeline with a model needs a 'training' section");
    }
    if ((st = parse_components(root, "observers", 0, &p->observers, &p->n_observers)) != BSC_OK ||
        (st = parse_components(root, "analyses", 0, &p->analyses, &p->n_analyses)) != BSC_OK)
        return st;
    /* `report:` with nothing under it asks for the defaults, like no key. */
    if ((v = bsc_node_get(root, "report")) && !bsc_node_is_null(v)) {
        if ((st = bsc_pl_expect_map(v, "report")) != BSC_OK)
            return st;
        p->report = v;
    }
    return BSC_OK;
}

/* ------------------------------------------------------------ public API */

bsc_status bsc_pipeline_load(const char *path, const char *const *overrides,
                             size_t n_overrides, bsc_pipeline **out)
{
    bsc_status st;
    pipeline_impl *pi = calloc(1, sizeof *pi);
    *out = NULL;
    if (!pi)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (!(pi->pub.path = strdup(path))) {
        st = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((st = bsc_node_parse_file(path, &pi->pub.root)) != BSC_OK)
        goto cleanup;
    for (size_t i = 0; i < n_overrides; i++)
        if ((st = bsc_pipeline_apply_override(pi->pub.root, overrides[i], (int)i + 1)) != BSC_OK)
            goto cleanup;
    if ((st = validate(pi)) != BSC_OK)
        goto cleanup;
    *out = &pi->pub;
    pi = NULL;
cleanup:
    if (pi)
        bsc_pipeline_free(&pi->pub);
    return st;
}

void bsc_pipeline_free(bsc_pipeline *p)
{
    pipeline_impl *pi = (pipeline_impl *)p;
    if (!p)
        return;
    for (size_t i = 0; i < p->n_plugins; i++)
        free((char *)p->plugins[i]);
    free((void *)p->plugins);
    free(p->layers);
    free(p->observers);
    free(p->analyses);
    free(p->training.batch_sizes);
    free(p->training.runs);
    for (size_t i = 0; p->training.run_names && i < p->training.n_batch_sizes; i++)
        free(p->training.run_names[i]);
    free(p->training.run_names);
    free(pi->default_name);
    bsc_node_free(p->root);
    free(p->path);
    free(pi);
}

/* The component's type exists under this key (a type of another kind is an
 * error that says where it belongs) and its options are the declared ones. */
static bsc_status check_component(const bsc_registry *r, bsc_kind kind, const bsc_component *c)
{
    const bsc_node *at = c->node->kind == BSC_NODE_MAP ? bsc_node_get(c->node, "type") : c->node;
    const bsc_type *t;
    bsc_status st = bsc_registry_resolve(r, kind, at, c->type, &t);
    return st == BSC_OK ? bsc_type_check_options(t, c->node) : st;
}

bsc_status bsc_pipeline_check_types(const bsc_pipeline *p, const bsc_registry *r)
{
    bsc_status st;
    for (size_t i = 0; i < p->n_layers; i++)
        if ((st = check_component(r, BSC_KIND_LAYER, &p->layers[i])) != BSC_OK)
            return st;
    if (p->loss.type && (st = check_component(r, BSC_KIND_LOSS, &p->loss)) != BSC_OK)
        return st;
    for (size_t i = 0; i < p->n_observers; i++)
        if ((st = check_component(r, BSC_KIND_OBSERVER, &p->observers[i])) != BSC_OK)
            return st;
    for (size_t i = 0; i < p->n_analyses; i++)
        if ((st = check_component(r, BSC_KIND_ANALYSIS, &p->analyses[i])) != BSC_OK)
            return st;
    return BSC_OK;
}

bsc_status bsc_pipeline_write(const bsc_pipeline *p, const char *path)
{
    return bsc_node_write_file(p->root, path);
}

bsc_lr_cfg bsc_run_lr_cfg(const bsc_training_cfg *t, const bsc_run_cfg *run)
{
    bsc_lr_cfg c = {run->lr, run->lr_scaling, t->base_batch_size, t->schedule, t->epochs};
    c.schedule.warmup_epochs = run->warmup_epochs;
    return c;
}
