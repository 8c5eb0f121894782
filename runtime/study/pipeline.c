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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pipeline_impl {
    bsc_pipeline pub;          /* first: bsc_pipeline_free casts back */
    char *default_name;        /* owned when `name:` is absent */
} pipeline_impl;

#define EPOCHS_MAX 100000L

static const char *const top_keys[] = {
    "version", "name", "seed", "device", "gemm", "plugins", "dataset", "model", "loss",
    "training", "observers", "analyses", "report", NULL};
static const char *const training_keys[] = {
    "epochs", "batch_sizes", "runs", "optimizer", "schedule", "lr_scaling", "base_batch_size",
    "same_init", "drop_last", "shuffle", "eval_batch_size", "checkpoint_every", "init",
    "data_parallel", NULL};
static const char *const optimizer_types[] = {"sgd", "adam", NULL};
static const char *const sgd_keys[] = {"type", "lr", "momentum", "nesterov", "weight_decay", NULL};
static const char *const adam_keys[] = {"type", "lr", "weight_decay", "beta1", "beta2", "eps",
                                        NULL};
static const char *const schedule_types[] = {"constant", "step", "cosine", NULL};
static const char *const constant_keys[] = {"type", "warmup_epochs", NULL};
static const char *const step_keys[] = {"type", "step_epochs", "gamma", "warmup_epochs", NULL};
static const char *const cosine_keys[] = {"type", "min_lr", "warmup_epochs", NULL};
static const char *const scaling_names[] = {"none", "linear", "sqrt", NULL};
static const char *const run_keys[] = {"name", "batch_size", "lr", "lr_scaling",
                                       "warmup_epochs", "data_parallel", NULL};
static const char *const init_names[] = {"torch", "he_normal", "he_uniform", "glorot_uniform",
                                         "glorot_normal", NULL};

/* ---------------------------------------------------------------- helpers */

static int in_list(const char *s, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0)
            return 1;
    return 0;
}

/* "training" + "epochs" -> "training.epochs"; an empty `where` is the top. */
static const char *qualify(const char *where, const char *key, char *buf, size_t len)
{
    if (!where || !*where)
        snprintf(buf, len, "%s", key);
    else
        snprintf(buf, len, "%s.%s", where, key);
    return buf;
}

static bsc_status check_keys(const bsc_node *map, const char *where, const char *const *allowed,
                             const char *const *other_keys, const char *type_word,
                             const char *type)
{
    char list[512];
    for (size_t i = 0; i < map->n; i++) {
        const bsc_node *k = map->keys[i];
        const char *hint;
        if (in_list(k->value, allowed))
            continue;
        bsc_names_join(allowed, list, sizeof list);
        /* A key that belongs to the other type is a wrong combination, not a
         * typo: say so instead of suggesting an unrelated name. */
        if (other_keys && in_list(k->value, other_keys))
            return bsc_node_fail(k, BSC_ERR_INVALID,
                                 "'%s' does not apply to %s '%s' (%s takes: %s)", k->value,
                                 type_word, type, where, list);
        hint = bsc_closest_name(k->value, allowed, bsc_names_count(allowed));
        if (hint)
            return bsc_node_fail(k, BSC_ERR_INVALID, "unknown key '%s' in %s (did you mean '%s'?)",
                                 k->value, *where ? where : "the pipeline", hint);
        return bsc_node_fail(k, BSC_ERR_INVALID, "unknown key '%s' in %s (expected one of: %s)",
                             k->value, *where ? where : "the pipeline", list);
    }
    return BSC_OK;
}

/* The node layer checks the text; messages are made here so that they name
 * the key by its full path ("training.optimizer.lr"), which a node alone
 * cannot know. */
static bsc_status get_long(const bsc_node *map, const char *where, const char *key,
                           int required, long def, long min, long max, long *out)
{
    char name[128], what[96];
    const bsc_node *v = bsc_node_get(map, key);
    qualify(where, key, name, sizeof name);
    if (!v) {
        if (required)
            return bsc_node_fail(map, BSC_ERR_INVALID, "%s is required", name);
        *out = def;
        return BSC_OK;
    }
    if (bsc_node_to_long(v, min, max, out) == BSC_OK)
        return BSC_OK;
    if (max == LONG_MAX)
        snprintf(what, sizeof what, "an integer >= %ld", min);
    else
        snprintf(what, sizeof what, "an integer in [%ld, %ld]", min, max);
    return bsc_node_bad_value(v, name, what);
}

enum { CLOSED = 0, LO_OPEN = 1, HI_OPEN = 2 };

static bsc_status get_double(const bsc_node *map, const char *where, const char *key, double def,
                             double min, double max, int open, double *out)
{
    char name[128], what[96];
    const bsc_node *v = bsc_node_get(map, key);
    double x;
    if (!v) {
        *out = def;
        return BSC_OK;
    }
    /* Finite always: an unbounded range means "any size", not ".inf" (a
     * rate of .inf passed check and diverged at the first step). */
    if (bsc_node_to_double(v, -INFINITY, INFINITY, &x) == BSC_OK && isfinite(x) &&
        ((open & LO_OPEN) ? x > min : x >= min) && ((open & HI_OPEN) ? x < max : x <= max)) {
        *out = x;
        return BSC_OK;
    }
    if (isinf(max))
        snprintf(what, sizeof what, "a finite number %s %g", (open & LO_OPEN) ? ">" : ">=", min);
    else
        snprintf(what, sizeof what, "a number in %c%g, %g%c", (open & LO_OPEN) ? '(' : '[', min,
                 max, (open & HI_OPEN) ? ')' : ']');
    return bsc_node_bad_value(v, qualify(where, key, name, sizeof name), what);
}

static bsc_status get_bool(const bsc_node *map, const char *where, const char *key, int def,
                           int *out)
{
    char name[128];
    const bsc_node *v = bsc_node_get(map, key);
    if (!v) {
        *out = def;
        return BSC_OK;
    }
    if (bsc_node_to_bool(v, out) == BSC_OK)
        return BSC_OK;
    return bsc_node_bad_value(v, qualify(where, key, name, sizeof name), "true or false");
}

/* A string scalar that must be one of `choices`; *index gets its position. */
static bsc_status choice_value(const bsc_node *v, const char *name, const char *const *choices,
                               int *index)
{
    char list[256];
    const char *hint;
    if (v->kind == BSC_NODE_SCALAR)
        for (int i = 0; choices[i]; i++)
            if (strcmp(choices[i], v->value) == 0) {
                *index = i;
                return BSC_OK;
            }
    bsc_names_join(choices, list, sizeof list);
    if (v->kind != BSC_NODE_SCALAR)
        return bsc_node_fail(v, BSC_ERR_INVALID, "%s must be one of %s, got %s", name, list,
                             bsc_node_kind_word(v));
    hint = bsc_closest_name(v->value, choices, bsc_names_count(choices));
    if (hint)
        return bsc_node_fail(v, BSC_ERR_INVALID, "%s must be one of %s, got '%s' (did you mean '%s'?)",
                             name, list, v->value, hint);
    return bsc_node_fail(v, BSC_ERR_INVALID, "%s must be one of %s, got '%s'", name, list,
                         v->value);
}

static bsc_status get_choice(const bsc_node *map, const char *where, const char *key, int def,
                             const char *const *choices, int *index)
{
    char name[128];
    const bsc_node *v = bsc_node_get(map, key);
    if (!v) {
        *index = def;
        return BSC_OK;
    }
    return choice_value(v, qualify(where, key, name, sizeof name), choices, index);
}

static bsc_status get_string(const bsc_node *map, const char *key, const char **out)
{
    const bsc_node *v = bsc_node_get(map, key);
    *out = NULL;
    if (!v)
        return BSC_OK;
    if (v->kind != BSC_NODE_SCALAR || v->value[0] == '\0')
        return bsc_node_bad_value(v, key, "a non-empty string");
    *out = v->value;
    return BSC_OK;
}

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

static bsc_status expect_map(const bsc_node *v, const char *name)
{
    if (v->kind == BSC_NODE_MAP)
        return BSC_OK;
    return bsc_node_fail(v, BSC_ERR_INVALID, "%s must be a mapping, got %s", name,
                         bsc_node_kind_word(v));
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

/* --------------------------------------------------------------- training */

static bsc_status parse_optimizer(const bsc_node *training, bsc_optimizer_cfg *o)
{
    static const char *const where = "training.optimizer";
    const bsc_node *v = bsc_node_get(training, "optimizer");
    const bsc_node *map = NULL, *type_node = NULL;
    int kind = BSC_OPTIMIZER_SGD;
    bsc_status st;

    if (v && v->kind == BSC_NODE_MAP) {
        map = v;
        type_node = bsc_node_get(map, "type");
    } else if (v) {
        type_node = v;
    }
    if (type_node && (st = choice_value(type_node, v == map ? "training.optimizer.type" : where,
                                        optimizer_types, &kind)) != BSC_OK)
        return st;
    o->kind = (bsc_optimizer_kind)kind;
    if (map && (st = check_keys(map, where, kind == BSC_OPTIMIZER_SGD ? sgd_keys : adam_keys,
                                kind == BSC_OPTIMIZER_SGD ? adam_keys : sgd_keys, "optimizer",
                                optimizer_types[kind])) != BSC_OK)
        return st;
    if ((st = get_double(map, where, "lr", kind == BSC_OPTIMIZER_SGD ? 0.01 : 0.001, 0, INFINITY,
                         LO_OPEN, &o->lr)) != BSC_OK ||
        (st = get_double(map, where, "momentum", 0, 0, 1, HI_OPEN, &o->momentum)) != BSC_OK ||
        (st = get_bool(map, where, "nesterov", 0, &o->nesterov)) != BSC_OK ||
        (st = get_double(map, where, "weight_decay", 0, 0, INFINITY, CLOSED,
                         &o->weight_decay)) != BSC_OK ||
        (st = get_double(map, where, "beta1", 0.9, 0, 1, HI_OPEN, &o->beta1)) != BSC_OK ||
        (st = get_double(map, where, "beta2", 0.999, 0, 1, HI_OPEN, &o->beta2)) != BSC_OK ||
        (st = get_double(map, where, "eps", 1e-8, 0, INFINITY, LO_OPEN, &o->eps)) != BSC_OK)
        return st;
    /* Nesterov's look-ahead is a no-op without momentum; torch rejects it too. */
    if (o->nesterov && o->momentum <= 0)
        return bsc_node_fail(bsc_node_get(map, "nesterov"), BSC_ERR_INVALID,
                             "training.optimizer.nesterov requires momentum > 0");
    return BSC_OK;
}

static bsc_status parse_schedule(const bsc_node *training, bsc_schedule_cfg *s)
{
    static const char *const where = "training.schedule";
    static const char *const *const keys[] = {constant_keys, step_keys, cosine_keys};
    /* Every key of the other types, for the "does not apply" message. */
    static const char *const all_keys[] = {"type", "warmup_epochs", "step_epochs", "gamma",
                                           "min_lr", NULL};
    const bsc_node *v = bsc_node_get(training, "schedule");
    const bsc_node *map = NULL, *type_node = NULL;
    int kind = BSC_SCHED_CONSTANT;
    long step_epochs;
    bsc_status st;

    if (v && v->kind == BSC_NODE_MAP) {
        map = v;
        type_node = bsc_node_get(map, "type");
    } else if (v) {
        type_node = v;
    }
    if (type_node && (st = choice_value(type_node, v == map ? "training.schedule.type" : where,
                                        schedule_types, &kind)) != BSC_OK)
        return st;
    s->kind = (bsc_schedule_kind)kind;
    if (map && (st = check_keys(map, where, keys[kind], all_keys, "schedule",
                                schedule_types[kind])) != BSC_OK)
        return st;
    if ((st = get_long(map, where, "step_epochs", 0, 1, 1, EPOCHS_MAX, &step_epochs)) != BSC_OK ||
        (st = get_double(map, where, "gamma", 0.1, 0, INFINITY, LO_OPEN, &s->gamma)) != BSC_OK ||
        (st = get_double(map, where, "min_lr", 0, 0, INFINITY, CLOSED, &s->min_lr)) != BSC_OK ||
        (st = get_double(map, where, "warmup_epochs", 0, 0, EPOCHS_MAX, CLOSED,
                         &s->warmup_epochs)) != BSC_OK)
        return st;
    s->step_epochs = (int)step_epochs;
    return BSC_OK;
}

static bsc_status parse_batch_sizes(const bsc_node *training, bsc_training_cfg *t)
{
    const bsc_node *v = bsc_node_get(training, "batch_sizes");
    size_t n;
    if (!v)
        return bsc_node_fail(training, BSC_ERR_INVALID, "training.batch_sizes is required");
    if (v->kind == BSC_NODE_MAP)
        return bsc_node_bad_value(v, "training.batch_sizes", "an integer or a list of integers");
    n = v->kind == BSC_NODE_SEQ ? v->n : 1;
    if (n == 0)
        return bsc_node_fail(v, BSC_ERR_INVALID, "training.batch_sizes must not be empty");
    if (!(t->batch_sizes = calloc(n, sizeof *t->batch_sizes)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    t->n_batch_sizes = n;
    /* A hash set, not a comparison with every earlier entry: a list of 200k
     * batch sizes must not take quadratic time (issue 12). */
    bsc_hashset *seen = NULL;
    bsc_status st = bsc_hashset_new(n, &seen);
    for (size_t i = 0; st == BSC_OK && i < n; i++) {
        const bsc_node *item = v->kind == BSC_NODE_SEQ ? v->items[i] : v;
        size_t j;
        if (bsc_node_to_long(item, 1, LONG_MAX, &t->batch_sizes[i]) != BSC_OK)
            st = bsc_node_bad_value(item, "training.batch_sizes", "a list of integers >= 1");
        else if (t->batch_sizes[i] > BSC_BATCH_SIZE_MAX)
            st = bsc_node_fail(item, BSC_ERR_INVALID, "training.batch_sizes: %ld is larger than "
                               "any batch batchscope trains (at most " BSC_BATCH_SIZE_MAX_TEXT
                               ")", t->batch_sizes[i]);
        else if ((st = bsc_hashset_add(seen, &t->batch_sizes[i], sizeof t->batch_sizes[i], i,
                                       &j)) == BSC_OK && j != BSC_HASHSET_NEW)
            st = bsc_node_fail(item, BSC_ERR_INVALID,
                               "training.batch_sizes lists %ld twice (first at line %d, "
                               "column %d)",
                               t->batch_sizes[i], v->items[j]->line, v->items[j]->col);
    }
    bsc_hashset_free(seen);
    return st;
}

static bsc_status parse_run_list(const bsc_node *training, bsc_training_cfg *t,
                                 bsc_hashset *names)
{
    static const char *const where = "training.runs";
    const bsc_node *v = bsc_node_get(training, "runs");
    size_t extra = v && v->kind == BSC_NODE_SEQ ? v->n : 0;
    bsc_status st;
    if (v && v->kind != BSC_NODE_SEQ)
        return bsc_node_fail(v, BSC_ERR_INVALID, "%s must be a list of mappings, got %s", where,
                             bsc_node_kind_word(v));
    if (!(t->runs = calloc(t->n_batch_sizes + extra, sizeof *t->runs)) ||
        !(t->run_names = calloc(t->n_batch_sizes, sizeof *t->run_names)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < t->n_batch_sizes; i++) {
        bsc_run_cfg *r = &t->runs[t->n_runs++];
        char name[32];
        snprintf(name, sizeof name, "bs%ld", t->batch_sizes[i]);
        if (!(t->run_names[i] = strdup(name)))
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        r->name = t->run_names[i];
        r->batch_size = t->batch_sizes[i];
        r->lr = t->optimizer.lr;
        r->lr_scaling = t->lr_scaling;
        r->warmup_epochs = t->schedule.warmup_epochs;
        r->data_parallel = t->data_parallel;
        if ((st = bsc_hashset_add(names, r->name, strlen(r->name), i, NULL)) != BSC_OK)
            return st;
    }
    for (size_t i = 0; i < extra; i++) {
        const bsc_node *m = v->items[i];
        char w[64];
        snprintf(w, sizeof w, "%s.%zu", where, i);
        bsc_run_cfg *r = &t->runs[t->n_runs];
        int scaling;
        if ((st = expect_map(m, w)) != BSC_OK ||
            (st = check_keys(m, w, run_keys, NULL, NULL, NULL)) != BSC_OK)
            return st;
        const bsc_node *bs = bsc_node_get(m, "batch_size");
        if (!bs)
            return bsc_node_fail(m, BSC_ERR_INVALID, "%s.batch_size is required", w);
        if ((st = get_long(m, w, "batch_size", 0, 1, 1, BSC_BATCH_SIZE_MAX, &r->batch_size)) !=
                BSC_OK ||
            (st = get_double(m, w, "lr", t->optimizer.lr, 0, INFINITY, LO_OPEN, &r->lr)) !=
                BSC_OK ||
            (st = get_choice(m, w, "lr_scaling", (int)t->lr_scaling, scaling_names, &scaling)) !=
                BSC_OK ||
            (st = get_double(m, w, "warmup_epochs", t->schedule.warmup_epochs, 0, EPOCHS_MAX,
                             CLOSED, &r->warmup_epochs)) != BSC_OK ||
            (st = get_bool(m, w, "data_parallel", t->data_parallel, &r->data_parallel)) !=
                BSC_OK)
            return st;
        r->lr_scaling = (bsc_lr_scaling)scaling;
        const bsc_node *nm = bsc_node_get(m, "name");
        if (!nm)
            return bsc_node_fail(m, BSC_ERR_INVALID, "%s.name is required (it names the run's "
                                 "directory OUT/runs/<name>)", w);
        if ((st = bsc_node_to_string(nm, &r->name)) != BSC_OK)
            return st;
        if (!bsc_run_name_valid(r->name))
            return bsc_node_fail(nm, BSC_ERR_INVALID, "%s.name '%s' must be 1-64 letters, "
                                 "digits, '-', '_' or '.', not starting with '.'", w, r->name);
        size_t j;
        if ((st = bsc_hashset_add(names, r->name, strlen(r->name), t->n_runs, &j)) != BSC_OK)
            return st;
        if (j != BSC_HASHSET_NEW)
            return bsc_node_fail(nm, BSC_ERR_INVALID, "%s.name '%s' is already a run of "
                                 "this study%s", w, r->name, j < t->n_batch_sizes
                                 ? " (from training.batch_sizes)" : "");
        t->n_runs++;
    }
    return BSC_OK;
}

/* The run list: batch_sizes first, then `runs:`. Names must be unique,
 * checked through a hash set of every name so far. */
static bsc_status parse_runs(const bsc_node *training, bsc_training_cfg *t)
{
    bsc_hashset *names = NULL;
    bsc_status st = bsc_hashset_new(t->n_batch_sizes, &names);
    if (st == BSC_OK)
        st = parse_run_list(training, t, names);
    bsc_hashset_free(names);
    return st;
}

static bsc_status parse_training(const bsc_node *training, bsc_training_cfg *t)
{
    static const char *const where = "training";
    long epochs, smallest, base, eval, ckpt;
    int scaling, init;
    bsc_status st;

    if ((st = expect_map(training, where)) != BSC_OK ||
        (st = check_keys(training, where, training_keys, NULL, NULL, NULL)) != BSC_OK ||
        (st = get_long(training, where, "epochs", 1, 0, 1, EPOCHS_MAX, &epochs)) != BSC_OK ||
        (st = parse_batch_sizes(training, t)) != BSC_OK ||
        (st = parse_optimizer(training, &t->optimizer)) != BSC_OK ||
        (st = parse_schedule(training, &t->schedule)) != BSC_OK ||
        (st = get_choice(training, where, "lr_scaling", BSC_LR_NONE, scaling_names,
                         &scaling)) != BSC_OK)
        return st;
    t->lr_scaling = (bsc_lr_scaling)scaling;
    if ((st = get_bool(training, where, "data_parallel", 0, &t->data_parallel)) != BSC_OK ||
        (st = parse_runs(training, t)) != BSC_OK)
        return st;
    smallest = t->runs[0].batch_size;
    for (size_t i = 1; i < t->n_runs; i++)
        if (t->runs[i].batch_size < smallest)
            smallest = t->runs[i].batch_size;
    if ((st = get_long(training, where, "base_batch_size", 0, smallest, 1, LONG_MAX, &base)) !=
            BSC_OK ||
        (st = get_bool(training, where, "same_init", 1, &t->same_init)) != BSC_OK ||
        (st = get_bool(training, where, "drop_last", 0, &t->drop_last)) != BSC_OK ||
        (st = get_bool(training, where, "shuffle", 1, &t->shuffle)) != BSC_OK ||
        (st = get_long(training, where, "eval_batch_size", 0, 1000, 1, LONG_MAX, &eval)) !=
            BSC_OK ||
        (st = get_long(training, where, "checkpoint_every", 0, 0, 0, INT_MAX, &ckpt)) != BSC_OK ||
        (st = get_choice(training, where, "init", 0, init_names, &init)) != BSC_OK)
        return st;
    t->epochs = (int)epochs;
    t->lr_scaling = (bsc_lr_scaling)scaling;
    t->base_batch_size = base;
    t->eval_batch_size = eval;
    t->checkpoint_every = (int)ckpt;
    t->init = init_names[init];
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
    if ((st = check_keys(root, "", top_keys, NULL, NULL, NULL)) != BSC_OK ||
        (st = parse_version(root, &p->version)) != BSC_OK ||
        (st = get_string(root, "name", &p->name)) != BSC_OK ||
        (st = get_long(root, "", "seed", 0, 0, 0, LONG_MAX, &seed)) != BSC_OK ||
        (st = get_string(root, "device", &p->device)) != BSC_OK ||
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
        if ((st = parse_training(v, &p->training)) != BSC_OK)
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
        if ((st = expect_map(v, "report")) != BSC_OK)
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
