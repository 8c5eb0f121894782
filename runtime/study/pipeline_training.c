/* The pipeline's `training:` section (pipeline_internal.h): epochs, batch
 * sizes or named runs, optimizer, schedule, learning-rate scaling and the
 * rest, validated into bsc_training_cfg. */
#include "batchscope/hashset.h"
#include "batchscope/pipeline.h"
#include "batchscope/registry.h"
#include "batchscope/runs.h"
#include "pipeline_internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPOCHS_MAX 100000L

static const char *const training_keys[] = {
    "epochs",          "batch_sizes",      "runs",      "optimizer",     "schedule",
    "lr_scaling",      "base_batch_size",  "same_init", "drop_last",     "shuffle",
    "eval_batch_size", "checkpoint_every", "init",      "data_parallel", NULL};
static const char *const optimizer_types[] = {"sgd", "adam", NULL};
static const char *const sgd_keys[] = {"type", "lr", "momentum", "nesterov", "weight_decay", NULL};
static const char *const adam_keys[] = {"type", "lr", "weight_decay", "beta1", "beta2",
                                        "eps",  NULL};
static const char *const schedule_types[] = {"constant", "step", "cosine", NULL};
static const char *const constant_keys[] = {"type", "warmup_epochs", NULL};
static const char *const step_keys[] = {"type", "step_epochs", "gamma", "warmup_epochs", NULL};
static const char *const cosine_keys[] = {"type", "min_lr", "warmup_epochs", NULL};
static const char *const scaling_names[] = {"none", "linear", "sqrt", NULL};
static const char *const run_keys[] = {"name",          "batch_size",    "lr", "lr_scaling",
                                       "warmup_epochs", "data_parallel", NULL};
static const char *const init_names[] = {"torch",          "he_normal",     "he_uniform",
                                         "glorot_uniform", "glorot_normal", NULL};

/* A section given as its type alone (`optimizer: adam`) or as a mapping
 * with a `type` key: *map is the mapping (NULL for the short form) and
 * *kind the type's index in `types` (left as is when absent). */
static bsc_status typed_section(const bsc_node *v, const char *where, const char *const *types,
                                const bsc_node **map, int *kind)
{
    char name[128];
    const bsc_node *type_node = v;
    *map = NULL;
    if (v && v->kind == BSC_NODE_MAP) {
        *map = v;
        type_node = bsc_node_get(v, "type");
    }
    if (!type_node)
        return BSC_OK;
    return bsc_pl_choice_value(type_node, *map ? bsc_pl_qualify(where, "type", name, sizeof name)
                                               : where,
                               types, kind);
}

static bsc_status parse_optimizer(const bsc_node *training, bsc_optimizer_cfg *o)
{
    static const char *const where = "training.optimizer";
    const bsc_node *v = bsc_node_get(training, "optimizer");
    const bsc_node *map = NULL;
    int kind = BSC_OPTIMIZER_SGD;
    bsc_status st;

    if ((st = typed_section(v, where, optimizer_types, &map, &kind)) != BSC_OK)
        return st;
    o->kind = (bsc_optimizer_kind)kind;
    if (map &&
        (st = bsc_pl_check_keys(map, where, kind == BSC_OPTIMIZER_SGD ? sgd_keys : adam_keys,
                                kind == BSC_OPTIMIZER_SGD ? adam_keys : sgd_keys, "optimizer",
                                optimizer_types[kind])) != BSC_OK)
        return st;
    if ((st = bsc_pl_get_double(map, where, "lr", kind == BSC_OPTIMIZER_SGD ? 0.01 : 0.001, 0,
                                INFINITY, BSC_PL_LO_OPEN, &o->lr)) != BSC_OK ||
        (st = bsc_pl_get_double(map, where, "momentum", 0, 0, 1, BSC_PL_HI_OPEN, &o->momentum)) !=
            BSC_OK ||
        (st = bsc_pl_get_bool(map, where, "nesterov", 0, &o->nesterov)) != BSC_OK ||
        (st = bsc_pl_get_double(map, where, "weight_decay", 0, 0, INFINITY, BSC_PL_CLOSED,
                                &o->weight_decay)) != BSC_OK ||
        (st = bsc_pl_get_double(map, where, "beta1", 0.9, 0, 1, BSC_PL_HI_OPEN, &o->beta1)) !=
            BSC_OK ||
        (st = bsc_pl_get_double(map, where, "beta2", 0.999, 0, 1, BSC_PL_HI_OPEN, &o->beta2)) !=
            BSC_OK ||
        (st = bsc_pl_get_double(map, where, "eps", 1e-8, 0, INFINITY, BSC_PL_LO_OPEN, &o->eps)) !=
            BSC_OK)
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
    static const char *const all_keys[] = {"type",  "warmup_epochs", "step_epochs",
                                           "gamma", "min_lr",        NULL};
    const bsc_node *v = bsc_node_get(training, "schedule");
    const bsc_node *map = NULL;
    int kind = BSC_SCHED_CONSTANT;
    long step_epochs;
    bsc_status st;

    if ((st = typed_section(v, where, schedule_types, &map, &kind)) != BSC_OK)
        return st;
    s->kind = (bsc_schedule_kind)kind;
    if (map &&
        (st = bsc_pl_check_keys(map, where, keys[kind], all_keys, "schedule",
                                schedule_types[kind])) != BSC_OK)
        return st;
    if ((st = bsc_pl_get_long(map, where, "step_epochs", 0, 1, 1, EPOCHS_MAX, &step_epochs)) !=
            BSC_OK ||
        (st = bsc_pl_get_double(map, where, "gamma", 0.1, 0, INFINITY, BSC_PL_LO_OPEN,
                                &s->gamma)) != BSC_OK ||
        (st = bsc_pl_get_double(map, where, "min_lr", 0, 0, INFINITY, BSC_PL_CLOSED, &s->min_lr)) !=
            BSC_OK ||
        (st = bsc_pl_get_double(map, where, "warmup_epochs", 0, 0, EPOCHS_MAX, BSC_PL_CLOSED,
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
            st = bsc_node_fail(item, BSC_ERR_INVALID,
                               "training.batch_sizes: %ld is larger than "
                               "any batch batchscope trains (at most " BSC_BATCH_SIZE_MAX_TEXT ")",
                               t->batch_sizes[i]);
        else if ((st = bsc_hashset_add(seen, &t->batch_sizes[i], sizeof t->batch_sizes[i], i,
                                       &j)) == BSC_OK &&
                 j != BSC_HASHSET_NEW)
            st = bsc_node_fail(item, BSC_ERR_INVALID,
                               "training.batch_sizes lists %ld twice (first at line %d, "
                               "column %d)",
                               t->batch_sizes[i], v->items[j]->line, v->items[j]->col);
    }
    bsc_hashset_free(seen);
    return st;
}

static bsc_status parse_run_list(const bsc_node *training, bsc_training_cfg *t, bsc_hashset *names)
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
        if ((st = bsc_pl_expect_map(m, w)) != BSC_OK ||
            (st = bsc_pl_check_keys(m, w, run_keys, NULL, NULL, NULL)) != BSC_OK)
            return st;
        const bsc_node *bs = bsc_node_get(m, "batch_size");
        if (!bs)
            return bsc_node_fail(m, BSC_ERR_INVALID, "%s.batch_size is required", w);
        if ((st = bsc_pl_get_long(m, w, "batch_size", 0, 1, 1, BSC_BATCH_SIZE_MAX,
                                  &r->batch_size)) != BSC_OK ||
            (st = bsc_pl_get_double(m, w, "lr", t->optimizer.lr, 0, INFINITY, BSC_PL_LO_OPEN,
                                    &r->lr)) != BSC_OK ||
            (st = bsc_pl_get_choice(m, w, "lr_scaling", (int)t->lr_scaling, scaling_names,
                                    &scaling)) != BSC_OK ||
            (st = bsc_pl_get_double(m, w, "warmup_epochs", t->schedule.warmup_epochs, 0, EPOCHS_MAX,
                                    BSC_PL_CLOSED, &r->warmup_epochs)) != BSC_OK ||
            (st = bsc_pl_get_bool(m, w, "data_parallel", t->data_parallel, &r->data_parallel)) !=
                BSC_OK)
            return st;
        r->lr_scaling = (bsc_lr_scaling)scaling;
        const bsc_node *nm = bsc_node_get(m, "name");
        if (!nm)
            return bsc_node_fail(m, BSC_ERR_INVALID,
                                 "%s.name is required (it names the run's "
                                 "directory OUT/runs/<name>)",
                                 w);
        if ((st = bsc_node_to_string(nm, &r->name)) != BSC_OK)
            return st;
        if (!bsc_run_name_valid(r->name))
            return bsc_node_fail(nm, BSC_ERR_INVALID,
                                 "%s.name '%s' must be 1-64 letters, "
                                 "digits, '-', '_' or '.', not starting with '.'",
                                 w, r->name);
        size_t j;
        if ((st = bsc_hashset_add(names, r->name, strlen(r->name), t->n_runs, &j)) != BSC_OK)
            return st;
        if (j != BSC_HASHSET_NEW)
            return bsc_node_fail(nm, BSC_ERR_INVALID,
                                 "%s.name '%s' is already a run of "
                                 "this study%s",
                                 w, r->name,
                                 j < t->n_batch_sizes ? " (from training.batch_sizes)" : "");
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

bsc_status bsc_pl_parse_training(const bsc_node *training, bsc_training_cfg *t)
{
    static const char *const where = "training";
    long epochs, smallest, base, eval, ckpt;
    int scaling, init;
    bsc_status st;

    if ((st = bsc_pl_expect_map(training, where)) != BSC_OK ||
        (st = bsc_pl_check_keys(training, where, training_keys, NULL, NULL, NULL)) != BSC_OK ||
        (st = bsc_pl_get_long(training, where, "epochs", 1, 0, 1, EPOCHS_MAX, &epochs)) != BSC_OK ||
        (st = parse_batch_sizes(training, t)) != BSC_OK ||
        (st = parse_optimizer(training, &t->optimizer)) != BSC_OK ||
        (st = parse_schedule(training, &t->schedule)) != BSC_OK ||
        (st = bsc_pl_get_choice(training, where, "lr_scaling", BSC_LR_NONE, scaling_names,
                                &scaling)) != BSC_OK)
        return st;
    t->lr_scaling = (bsc_lr_scaling)scaling;
    if ((st = bsc_pl_get_bool(training, where, "data_parallel", 0, &t->data_parallel)) != BSC_OK ||
        (st = parse_runs(training, t)) != BSC_OK)
        return st;
    smallest = t->runs[0].batch_size;
    for (size_t i = 1; i < t->n_runs; i++)
        if (t->runs[i].batch_size < smallest)
            smallest = t->runs[i].batch_size;
    if ((st = bsc_pl_get_long(training, where, "base_batch_size", 0, smallest, 1, LONG_MAX,
                              &base)) != BSC_OK ||
        (st = bsc_pl_get_bool(training, where, "same_init", 1, &t->same_init)) != BSC_OK ||
        (st = bsc_pl_get_bool(training, where, "drop_last", 0, &t->drop_last)) != BSC_OK ||
        (st = bsc_pl_get_bool(training, where, "shuffle", 1, &t->shuffle)) != BSC_OK ||
        (st = bsc_pl_get_long(training, where, "eval_batch_size", 0, 1000, 1, LONG_MAX, &eval)) !=
            BSC_OK ||
        (st = bsc_pl_get_long(training, where, "checkpoint_every", 0, 0, 0, INT_MAX, &ckpt)) !=
            BSC_OK ||
        (st = bsc_pl_get_choice(training, where, "init", 0, init_names, &init)) != BSC_OK)
        return st;
    t->epochs = (int)epochs;
    t->lr_scaling = (bsc_lr_scaling)scaling;
    t->base_batch_size = base;
    t->eval_batch_size = eval;
    t->checkpoint_every = (int)ckpt;
    t->init = init_names[init];
    return BSC_OK;
}
