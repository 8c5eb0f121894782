/* Typed values of the pipeline's own keys (pipeline_internal.h): integers,
 * numbers, booleans, choices and strings read from a mapping, each error
 * naming the key by its full path ("training.optimizer.lr") at the node's
 * file:line:col, and the unknown-key check with its "did you mean". */
#include "batchscope/pipeline.h"
#include "batchscope/registry.h"
#include "pipeline_internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int bsc_pl_in_list(const char *s, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0)
            return 1;
    return 0;
}

/* "training" + "epochs" -> "training.epochs"; an empty `where` is the top. */
const char *bsc_pl_qualify(const char *where, const char *key, char *buf, size_t len)
{
    if (!where || !*where)
        snprintf(buf, len, "%s", key);
    else
        snprintf(buf, len, "%s.%s", where, key);
    return buf;
}

bsc_status bsc_pl_check_keys(const bsc_node *map, const char *where, const char *const *allowed,
                             const char *const *other_keys, const char *type_word, const char *type)
{
    char list[512];
    for (size_t i = 0; i < map->n; i++) {
        const bsc_node *k = map->keys[i];
        const char *hint;
        if (bsc_pl_in_list(k->value, allowed))
            continue;
        bsc_names_join(allowed, list, sizeof list);
        /* A key that belongs to the other type is a wrong combination, not a
         * typo: say so instead of suggesting an unrelated name. */
        if (other_keys && bsc_pl_in_list(k->value, other_keys))
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
bsc_status bsc_pl_get_long(const bsc_node *map, const char *where, const char *key, int required,
                           long def, long min, long max, long *out)
{
    char name[128], what[96];
    const bsc_node *v = bsc_node_get(map, key);
    bsc_pl_qualify(where, key, name, sizeof name);
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

bsc_status bsc_pl_get_double(const bsc_node *map, const char *where, const char *key, double def,
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
        ((open & BSC_PL_LO_OPEN) ? x > min : x >= min) &&
        ((open & BSC_PL_HI_OPEN) ? x < max : x <= max)) {
        *out = x;
        return BSC_OK;
    }
    if (isinf(max))
        snprintf(what, sizeof what, "a finite number %s %g",
                 (open & BSC_PL_LO_OPEN) ? ">" : ">=", min);
    else
        snprintf(what, sizeof what, "a number in %c%g, %g%c", (open & BSC_PL_LO_OPEN) ? '(' : '[',
                 min, max, (open & BSC_PL_HI_OPEN) ? ')' : ']');
    return bsc_node_bad_value(v, bsc_pl_qualify(where, key, name, sizeof name), what);
}

bsc_status bsc_pl_get_bool(const bsc_node *map, const char *where, const char *key, int def,
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
    return bsc_node_bad_value(v, bsc_pl_qualify(where, key, name, sizeof name), "true or false");
}

/* A string scalar that must be one of `choices`; *index gets its position. */
bsc_status bsc_pl_choice_value(const bsc_node *v, const char *name, const char *const *choices,
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
        return bsc_node_fail(v, BSC_ERR_INVALID,
                             "%s must be one of %s, got '%s' (did you mean '%s'?)", name, list,
                             v->value, hint);
    return bsc_node_fail(v, BSC_ERR_INVALID, "%s must be one of %s, got '%s'", name, list,
                         v->value);
}

bsc_status bsc_pl_get_choice(const bsc_node *map, const char *where, const char *key, int def,
                             const char *const *choices, int *index)
{
    char name[128];
    const bsc_node *v = bsc_node_get(map, key);
    if (!v) {
        *index = def;
        return BSC_OK;
    }
    return bsc_pl_choice_value(v, bsc_pl_qualify(where, key, name, sizeof name), choices, index);
}

bsc_status bsc_pl_get_string(const bsc_node *map, const char *key, const char **out)
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

bsc_status bsc_pl_expect_map(const bsc_node *v, const char *name)
{
    if (v->kind == BSC_NODE_MAP)
        return BSC_OK;
    return bsc_node_fail(v, BSC_ERR_INVALID, "%s must be a mapping, got %s", name,
                         bsc_node_kind_word(v));
}
