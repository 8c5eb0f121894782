/* The YAML layer's typed accessors: keys of a mapping, scalar conversions
 * with range checks, optional/required keys and number lists, each error at
 * the node's file:line:col; and closest-name hints for typos. */
#include "batchscope/node.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const bsc_node *bsc_node_key(const bsc_node *map, const char *key)
{
    if (!map || map->kind != BSC_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->value, key) == 0)
            return map->keys[i];
    return NULL;
}

const bsc_node *bsc_node_get(const bsc_node *map, const char *key)
{
    if (!map || map->kind != BSC_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->value, key) == 0)
            return map->items[i];
    return NULL;
}

static size_t levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = malloc((lb + 1) * sizeof *row);
    size_t d;
    if (!row)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    d = row[lb];
    free(row);
    return d;
}

const char *bsc_closest_name(const char *name, const char *const *candidates, size_t n)
{
    size_t len = strlen(name);
    size_t limit = len / 3 > 1 ? len / 3 : 1;
    size_t best_d = (size_t)-1;
    const char *best = NULL;
    for (size_t i = 0; i < n && candidates[i]; i++) {
        size_t d = levenshtein(name, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

size_t bsc_names_count(const char *const *names)
{
    size_t n = 0;
    while (names && names[n])
        n++;
    return n;
}

void bsc_names_join(const char *const *names, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; names && names[i]; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= len - used) {
            if (len > 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        used += (size_t)w;
    }
}

bsc_status bsc_node_check_keys(const bsc_node *map, const char *const *allowed)
{
    char list[512];
    if (!map)
        return bsc_fail(BSC_ERR_INVALID, "expected a mapping");
    if (map->kind != BSC_NODE_MAP)
        return bsc_node_fail(map, BSC_ERR_INVALID, "expected a mapping, got %s",
                             bsc_node_kind_word(map));
    for (size_t i = 0; i < map->n; i++) {
        const char *k = map->keys[i]->value;
        const char *hint;
        size_t j;
        for (j = 0; allowed[j]; j++)
            if (strcmp(allowed[j], k) == 0)
                break;
        if (allowed[j])
            continue;
        if ((hint = bsc_closest_name(k, allowed, bsc_names_count(allowed))))
            return bsc_node_fail(map->keys[i], BSC_ERR_INVALID,
                                 "unknown key '%s' (did you mean '%s'?)", k, hint);
        bsc_names_join(allowed, list, sizeof list);
        return bsc_node_fail(map->keys[i], BSC_ERR_INVALID,
                             "unknown key '%s' (expected one of: %s)", k, list);
    }
    return BSC_OK;
}

/* The error for a value that is not what `what` ("an integer in [1, 10]")
 * says; `label` names the key when the caller knows it. */
bsc_status bsc_node_bad_value(const bsc_node *n, const char *label, const char *what)
{
    const char *who = label ? label : "value";
    if (n->kind != BSC_NODE_SCALAR)
        return bsc_node_fail(n, BSC_ERR_INVALID, "%s must be %s, got %s", who, what,
                             bsc_node_kind_word(n));
    if (n->quoted)
        return bsc_node_fail(n, BSC_ERR_INVALID, "%s must be %s, got the quoted string '%s'",
                             who, what, n->value);
    return bsc_node_fail(n, BSC_ERR_INVALID, "%s must be %s, got '%s'", who, what, n->value);
}

static void long_range(long min, long max, char *buf, size_t len)
{
    if (min == LONG_MIN && max == LONG_MAX)
        snprintf(buf, len, "an integer");
    else if (max == LONG_MAX)
        snprintf(buf, len, "an integer >= %ld", min);
    else if (min == LONG_MIN)
        snprintf(buf, len, "an integer <= %ld", max);
    else
        snprintf(buf, len, "an integer in [%ld, %ld]", min, max);
}

static void double_range(double min, double max, char *buf, size_t len)
{
    if (isinf(min) && isinf(max))
        snprintf(buf, len, "a number");
    else if (isinf(max))
        snprintf(buf, len, "a number >= %g", min);
    else if (isinf(min))
        snprintf(buf, len, "a number <= %g", max);
    else
        snprintf(buf, len, "a number in [%g, %g]", min, max);
}

/* YAML 1.1/1.2 spell infinities and NaN with a dot; strtod does not. */
static int parse_double_text(const char *s, double *out)
{
    const char *p = s;
    char *end;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (*p == '.' && (strcasecmp(p + 1, "inf") == 0)) {
        *out = neg ? -INFINITY : INFINITY;
        return 1;
    }
    if (p == s && strcasecmp(p, ".nan") == 0) {
        *out = NAN;
        return 1;
    }
    /* Hex floats and empty text are not numbers a pipeline author means. */
    if (*s == '\0' || isspace((unsigned char)*s) || strpbrk(s, "xX"))
        return 0;
    errno = 0;
    *out = strtod(s, &end);
    if (*end != '\0' || (errno == ERANGE && isinf(*out)))
        return 0;
    return 1;
}

static bsc_status to_long(const bsc_node *n, const char *label, long min, long max, long *out)
{
    char what[96];
    long v;
    char *end;
    long_range(min, max, what, sizeof what);
    if (n->kind != BSC_NODE_SCALAR || n->quoted || n->value[0] == '\0' ||
        isspace((unsigned char)n->value[0]))
        return bsc_node_bad_value(n, label, what);
    errno = 0;
    v = strtol(n->value, &end, 10);
    if (*end != '\0' || errno == ERANGE) {
        /* "1e3" and "2.0" are integers written as floats: accept when exact. */
        double d;
        if (!parse_double_text(n->value, &d) || !isfinite(d) || d != floor(d) ||
            d < -9007199254740992.0 || d > 9007199254740992.0)
            return bsc_node_bad_value(n, label, what);
        v = (long)d;
    }
    if (v < min || v > max)
        return bsc_node_bad_value(n, label, what);
    *out = v;
    return BSC_OK;
}

static bsc_status to_double(const bsc_node *n, const char *label, double min, double max,
                            double *out)
{
    char what[96];
    double v;
    double_range(min, max, what, sizeof what);
    if (n->kind != BSC_NODE_SCALAR || n->quoted || !parse_double_text(n->value, &v))
        return bsc_node_bad_value(n, label, what);
    /* NaN fails both comparisons, so it is only ever out of range. */
    if (!(v >= min && v <= max))
        return bsc_node_bad_value(n, label, what);
    *out = v;
    return BSC_OK;
}

static bsc_status to_bool(const bsc_node *n, const char *label, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    const char *what = "true or false";
    if (n->kind != BSC_NODE_SCALAR || n->quoted)
        return bsc_node_bad_value(n, label, what);
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(n->value, yes[i]) == 0) {
            *out = 1;
            return BSC_OK;
        }
        if (strcasecmp(n->value, no[i]) == 0) {
            *out = 0;
            return BSC_OK;
        }
    }
    return bsc_node_bad_value(n, label, what);
}

static bsc_status to_string(const bsc_node *n, const char *label, const char *const *choices,
                            const char **out)
{
    char list[512];
    const char *hint;
    if (n->kind != BSC_NODE_SCALAR)
        return bsc_node_bad_value(n, label, "a string");
    if (choices) {
        size_t i;
        for (i = 0; choices[i]; i++)
            if (strcmp(choices[i], n->value) == 0)
                break;
        if (!choices[i]) {
            bsc_names_join(choices, list, sizeof list);
            hint = bsc_closest_name(n->value, choices, bsc_names_count(choices));
            if (hint)
                return bsc_node_fail(n, BSC_ERR_INVALID,
                                     "%s must be one of %s, got '%s' (did you mean '%s'?)",
                                     label ? label : "value", list, n->value, hint);
            return bsc_node_fail(n, BSC_ERR_INVALID, "%s must be one of %s, got '%s'",
                                 label ? label : "value", list, n->value);
        }
    }
    *out = n->value;
    return BSC_OK;
}

bsc_status bsc_node_to_long(const bsc_node *n, long min, long max, long *out)
{
    return to_long(n, NULL, min, max, out);
}

bsc_status bsc_node_to_double(const bsc_node *n, double min, double max, double *out)
{
    return to_double(n, NULL, min, max, out);
}

bsc_status bsc_node_to_bool(const bsc_node *n, int *out)
{
    return to_bool(n, NULL, out);
}

bsc_status bsc_node_to_string(const bsc_node *n, const char **out)
{
    return to_string(n, NULL, NULL, out);
}

/* Finds `key` for the opt/req accessors: *v is NULL when absent. A `map`
 * that is present but not a mapping is an error, not an absent key. */
static bsc_status lookup(const bsc_node *map, const char *key, int required, const bsc_node **v)
{
    *v = NULL;
    if (map && map->kind != BSC_NODE_MAP)
        return bsc_node_fail(map, BSC_ERR_INVALID, "expected a mapping with '%s', got %s", key,
                             bsc_node_kind_word(map));
    *v = bsc_node_get(map, key);
    if (!*v && required)
        return bsc_node_fail(map, BSC_ERR_INVALID, "missing required key '%s'", key);
    return BSC_OK;
}

bsc_status bsc_opt_long(const bsc_node *map, const char *key, long def, long min, long max,
                        long *out)
{
    const bsc_node *v;
    bsc_status st = lookup(map, key, 0, &v);
    if (st != BSC_OK)
        return st;
    if (!v) {
        *out = def;
        return BSC_OK;
    }
    return to_long(v, key, min, max, out);
}

bsc_status bsc_opt_double(const bsc_node *map, const char *key, double def, double min,
                          double max, double *out)
{
    const bsc_node *v;
    bsc_status st = lookup(map, key, 0, &v);
    if (st != BSC_OK)
        return st;
    if (!v) {
        *out = def;
        return BSC_OK;
    }
    return to_double(v, key, min, max, out);
}

bsc_status bsc_opt_bool(const bsc_node *map, const char *key, int def, int *out)
{
    const bsc_node *v;
    bsc_status st = lookup(map, key, 0, &v);
    if (st != BSC_OK)
        return st;
    if (!v) {
        *out = def;
        return BSC_OK;
    }
    return to_bool(v, key, out);
}

bsc_status bsc_opt_string(const bsc_node *map, const char *key, const char *def,
                          const char *const *choices, const char **out)
{
    const bsc_node *v;
    bsc_status st = lookup(map, key, 0, &v);
    if (st != BSC_OK)
        return st;
    if (!v) {
        *out = def;
        return BSC_OK;
    }
    return to_string(v, key, choices, out);
}

bsc_status bsc_req_long(const bsc_node *map, const char *key, long min, long max, long *out)
{
    const bsc_node *v;
    bsc_status st = lookup(map, key, 1, &v);
    return st != BSC_OK ? st : to_long(v, key, min, max, out);
}

bsc_status bsc_req_double(const bsc_node *map, const char *key, double min, double max,
                          double *out)
{
    const bsc_node *v;
    bsc_status st = lookup(map, key, 1, &v);
    return st != BSC_OK ? st : to_double(v, key, min, max, out);
}

bsc_status bsc_req_string(const bsc_node *map, const char *key, const char *const *choices,
                          const char **out)
{
    const bsc_node *v;
    bsc_status st = lookup(map, key, 1, &v);
    return st != BSC_OK ? st : to_string(v, key, choices, out);
}

/* Shared by the two list accessors: `conv` checks one item. */
typedef bsc_status (*item_conv)(const bsc_node *n, const char *label, const void *range,
                                void *out);

struct long_range_args { long min, max; };
struct double_range_args { double min, max; };

static bsc_status conv_long_item(const bsc_node *n, const char *label, const void *r, void *out)
{
    const struct long_range_args *a = r;
    return to_long(n, label, a->min, a->max, out);
}

static bsc_status conv_double_item(const bsc_node *n, const char *label, const void *r,
                                   void *out)
{
    const struct double_range_args *a = r;
    return to_double(n, label, a->min, a->max, out);
}

static bsc_status opt_list(const bsc_node *map, const char *key, const void *def, size_t ndef,
                           size_t elem, item_conv conv, const void *range, void **out,
                           size_t *n)
{
    bsc_status st;
    const bsc_node *v;
    size_t count;
    unsigned char *buf = NULL;
    *out = NULL;
    *n = 0;
    if ((st = lookup(map, key, 0, &v)) != BSC_OK)
        return st;
    if (v && v->kind == BSC_NODE_MAP)
        return bsc_node_fail(v, BSC_ERR_INVALID, "%s must be a number or a list of numbers",
                             key);
    count = !v ? ndef : v->kind == BSC_NODE_SEQ ? v->n : 1;
    if (v && count == 0)
        return bsc_node_fail(v, BSC_ERR_INVALID, "%s must not be an empty list", key);
    if (count && !(buf = malloc(count * elem)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        if (!v)
            memcpy(buf + i * elem, (const unsigned char *)def + i * elem, elem);
        else if ((st = conv(v->kind == BSC_NODE_SEQ ? v->items[i] : v, key, range,
                            buf + i * elem)) != BSC_OK)
            goto cleanup;
    }
    *out = buf;
    *n = count;
    buf = NULL;
cleanup:
    free(buf);
    return st;
}

bsc_status bsc_opt_double_list(const bsc_node *map, const char *key, const double *def,
                               size_t ndef, double min, double max, double **out, size_t *n)
{
    struct double_range_args r = {min, max};
    void *buf = NULL;
    bsc_status st = opt_list(map, key, def, ndef, sizeof **out, conv_double_item, &r, &buf, n);
    *out = buf;
    return st;
}

bsc_status bsc_opt_long_list(const bsc_node *map, const char *key, const long *def,
                             size_t ndef, long min, long max, long **out, size_t *n)
{
    struct long_range_args r = {min, max};
    void *buf = NULL;
    bsc_status st = opt_list(map, key, def, ndef, sizeof **out, conv_long_item, &r, &buf, n);
    *out = buf;
    return st;
}
