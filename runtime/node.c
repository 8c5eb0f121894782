/* The YAML layer: libyaml events -> located bsc_node trees, typed accessors,
 * and the block-style writer used for OUT/pipeline.yaml. */
#include "batchscope/node.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* Deeper nesting than this is certainly not a pipeline, and the builder is
 * recursive: refusing it keeps a hostile file from exhausting the stack. */
#define MAX_DEPTH 200

/* ------------------------------------------------------------ file names */

/* Node file names are interned for the life of the process rather than owned
 * by one tree: subtrees move between documents (overrides graft nodes parsed
 * from "--set" into the pipeline), clones outlive their source, and code that
 * builds nodes by hand may point `file` at a literal. No tree ever frees it. */
struct interned {
    struct interned *next;
    char name[];
};
static struct interned *interned_names;
static pthread_mutex_t interned_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *intern_name(const char *name)
{
    const char *found = NULL;
    pthread_mutex_lock(&interned_lock);
    for (struct interned *it = interned_names; it; it = it->next)
        if (strcmp(it->name, name) == 0) {
            found = it->name;
            break;
        }
    if (!found) {
        size_t len = strlen(name) + 1;
        struct interned *it = malloc(sizeof *it + len);
        if (it) {
            memcpy(it->name, name, len);
            it->next = interned_names;
            interned_names = it;
            found = it->name;
        }
    }
    pthread_mutex_unlock(&interned_lock);
    return found;
}

/* ------------------------------------------------------------------ nodes */

static bsc_node *node_new(bsc_node_kind kind, const char *file, const yaml_mark_t *m)
{
    bsc_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->file = file;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    n->offset = m->index;
    return n;
}

void bsc_node_free(bsc_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            bsc_node_free(n->keys[i]);
        if (n->items)
            bsc_node_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->value);
    free(n);
}

/* Appends one entry; growing by one keeps the arrays exactly n long, which
 * other modules that edit trees (overrides) may rely on with plain realloc. */
static bsc_status node_append(bsc_node *parent, bsc_node *key, bsc_node *item)
{
    bsc_node **items = realloc(parent->items, (parent->n + 1) * sizeof *items);
    if (!items)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory building YAML tree");
    parent->items = items;
    if (parent->kind == BSC_NODE_MAP) {
        bsc_node **keys = realloc(parent->keys, (parent->n + 1) * sizeof *keys);
        if (!keys)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory building YAML tree");
        parent->keys = keys;
        keys[parent->n] = key;
    }
    items[parent->n++] = item;
    return BSC_OK;
}

bsc_status bsc_node_fail(const bsc_node *n, bsc_status s, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!n)
        return bsc_fail(s, "%s", msg);
    return bsc_fail(s, "%s:%d:%d: %s", n->file ? n->file : "<yaml>", n->line, n->col, msg);
}

static const char *kind_word(const bsc_node *n)
{
    switch (n->kind) {
    case BSC_NODE_MAP: return "a mapping";
    case BSC_NODE_SEQ: return "a list";
    default: return "a scalar";
    }
}

/* ---------------------------------------------------------------- parsing */

typedef struct builder {
    yaml_parser_t parser;
    const char *file;
} builder;

static bsc_status yaml_problem(builder *b)
{
    yaml_parser_t *p = &b->parser;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_READER_ERROR)
        return bsc_fail(BSC_ERR_PARSE, "%s: byte %zu: %s", b->file, p->problem_offset, problem);
    if (p->error == YAML_MEMORY_ERROR)
        return bsc_fail(BSC_ERR_NOMEM, "%s: out of memory parsing YAML", b->file);
    if (p->context)
        return bsc_fail(BSC_ERR_PARSE, "%s:%zu:%zu: %s (%s, line %zu)", b->file,
                        p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
                        p->context, p->context_mark.line + 1);
    return bsc_fail(BSC_ERR_PARSE, "%s:%zu:%zu: %s", b->file, p->problem_mark.line + 1,
                    p->problem_mark.column + 1, problem);
}

static bsc_status next_event(builder *b, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&b->parser, ev))
        return yaml_problem(b);
    return BSC_OK;
}

static bsc_status reject_anchor(builder *b, const yaml_event_t *ev, const yaml_char_t *anchor)
{
    if (ev->type != YAML_ALIAS_EVENT && !anchor)
        return BSC_OK;
    /* Aliases would make one node reachable from two places: a `--set` on
     * one would silently change the other, and errors would point at the
     * anchor, not the use. Pipelines are small enough to spell out. */
    return bsc_fail(BSC_ERR_PARSE, "%s:%zu:%zu: YAML anchors and aliases are not supported",
                    b->file, ev->start_mark.line + 1, ev->start_mark.column + 1);
}

static bsc_status build_node(builder *b, yaml_event_t *ev, int depth, bsc_node **out);

/* Reads the entries of a mapping or sequence whose start event was consumed,
 * up to and including its end event. */
static bsc_status build_children(builder *b, bsc_node *parent, int depth)
{
    bsc_status st = BSC_OK;
    yaml_event_t ev;
    yaml_event_type_t end = parent->kind == BSC_NODE_MAP ? YAML_MAPPING_END_EVENT
                                                         : YAML_SEQUENCE_END_EVENT;
    for (;;) {
        bsc_node *key = NULL, *item = NULL;
        if ((st = next_event(b, &ev)) != BSC_OK)
            return st;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return BSC_OK;
        }
        if (parent->kind == BSC_NODE_MAP) {
            if ((st = build_node(b, &ev, depth + 1, &key)) != BSC_OK)
                return st;
            if (key->kind != BSC_NODE_SCALAR) {
                st = bsc_node_fail(key, BSC_ERR_PARSE, "mapping keys must be plain scalars");
                bsc_node_free(key);
                return st;
            }
            for (size_t i = 0; i < parent->n; i++)
                if (strcmp(parent->keys[i]->value, key->value) == 0) {
                    st = bsc_node_fail(key, BSC_ERR_PARSE,
                                       "duplicate key '%s' (first at line %d, column %d)",
                                       key->value, parent->keys[i]->line, parent->keys[i]->col);
                    bsc_node_free(key);
                    return st;
                }
            if ((st = next_event(b, &ev)) != BSC_OK) {
                bsc_node_free(key);
                return st;
            }
        }
        if ((st = build_node(b, &ev, depth + 1, &item)) != BSC_OK ||
            (st = node_append(parent, key, item)) != BSC_OK) {
            bsc_node_free(key);
            bsc_node_free(item);
            return st;
        }
    }
}

/* Builds the node that starts with `ev` (consumed here) and everything
 * under it. */
static bsc_status build_node(builder *b, yaml_event_t *ev, int depth, bsc_node **out)
{
    bsc_status st = BSC_OK;
    bsc_node *n = NULL;
    *out = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        st = reject_anchor(b, ev, NULL);
        break;
    case YAML_SCALAR_EVENT:
        if ((st = reject_anchor(b, ev, ev->data.scalar.anchor)) != BSC_OK)
            break;
        n = node_new(BSC_NODE_SCALAR, b->file, &ev->start_mark);
        if (n)
            n->value = malloc(ev->data.scalar.length + 1);
        if (!n || !n->value) {
            st = bsc_fail(BSC_ERR_NOMEM, "out of memory building YAML tree");
            break;
        }
        memcpy(n->value, ev->data.scalar.value, ev->data.scalar.length);
        n->value[ev->data.scalar.length] = '\0';
        /* An explicit !!str tag means a string as surely as quotes do. */
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
                    (ev->data.scalar.tag &&
                     strcmp((const char *)ev->data.scalar.tag, YAML_STR_TAG) == 0);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        const yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor
                                           : ev->data.sequence_start.anchor;
        if ((st = reject_anchor(b, ev, anchor)) != BSC_OK)
            break;
        if (depth > MAX_DEPTH) {
            st = bsc_fail(BSC_ERR_PARSE, "%s:%zu:%zu: nesting deeper than %d levels", b->file,
                          ev->start_mark.line + 1, ev->start_mark.column + 1, MAX_DEPTH);
            break;
        }
        n = node_new(is_map ? BSC_NODE_MAP : BSC_NODE_SEQ, b->file, &ev->start_mark);
        if (!n) {
            st = bsc_fail(BSC_ERR_NOMEM, "out of memory building YAML tree");
            break;
        }
        st = build_children(b, n, depth);
        break;
    }
    default:
        st = bsc_fail(BSC_ERR_INTERNAL, "%s:%zu:%zu: unexpected YAML event %d", b->file,
                      ev->start_mark.line + 1, ev->start_mark.column + 1, (int)ev->type);
        break;
    }
    yaml_event_delete(ev);
    if (st != BSC_OK) {
        bsc_node_free(n);
        return st;
    }
    *out = n;
    return BSC_OK;
}

static int is_null_scalar(const bsc_node *n)
{
    return n->kind == BSC_NODE_SCALAR && !n->quoted &&
           (n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0);
}

/* Expects exactly: stream start, one document with a non-empty root, stream end. */
static bsc_status build_document(builder *b, bsc_node **root)
{
    bsc_status st;
    yaml_event_t ev;
    bsc_node *n = NULL;
    int got_doc = 0;
    *root = NULL;
    for (;;) {
        if ((st = next_event(b, &ev)) != BSC_OK)
            goto cleanup;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT && got_doc) {
            st = bsc_fail(BSC_ERR_PARSE, "%s:%zu:%zu: only one YAML document is allowed", b->file,
                          ev.start_mark.line + 1, ev.start_mark.column + 1);
            yaml_event_delete(&ev);
            goto cleanup;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT)
            got_doc = 1;
        if (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
            ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_ALIAS_EVENT) {
            if ((st = build_node(b, &ev, 0, &n)) != BSC_OK)
                goto cleanup;
            continue;
        }
        yaml_event_delete(&ev);
    }
    if (!n || is_null_scalar(n)) {
        st = bsc_fail(BSC_ERR_PARSE, "%s:1:1: empty document", b->file);
        goto cleanup;
    }
    *root = n;
    n = NULL;
cleanup:
    bsc_node_free(n);
    return st;
}

bsc_status bsc_node_parse_string(const char *name, const char *text, bsc_node **root)
{
    bsc_status st;
    builder b;
    *root = NULL;
    if (!(b.file = intern_name(name ? name : "<string>")))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (!yaml_parser_initialize(&b.parser))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory initializing the YAML parser");
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, strlen(text));
    st = build_document(&b, root);
    yaml_parser_delete(&b.parser);
    return st;
}

bsc_status bsc_node_parse_file(const char *path, bsc_node **root)
{
    bsc_status st;
    builder b;
    FILE *f;
    *root = NULL;
    if (!(b.file = intern_name(path)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (!(f = fopen(path, "rb")))
        return bsc_fail(errno == ENOENT ? BSC_ERR_NOT_FOUND : BSC_ERR_IO, "%s: %s", path,
                        strerror(errno));
    if (!yaml_parser_initialize(&b.parser)) {
        fclose(f);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory initializing the YAML parser");
    }
    yaml_parser_set_input_file(&b.parser, f);
    st = build_document(&b, root);
    yaml_parser_delete(&b.parser);
    fclose(f);
    return st;
}

bsc_status bsc_node_clone(const bsc_node *src, bsc_node **out)
{
    bsc_status st = BSC_OK;
    bsc_node *n;
    *out = NULL;
    if (!(n = calloc(1, sizeof *n)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory cloning YAML tree");
    n->kind = src->kind;
    n->quoted = src->quoted;
    n->file = src->file;
    n->line = src->line;
    n->col = src->col;
    n->offset = src->offset;
    if (src->value && !(n->value = strdup(src->value))) {
        st = bsc_fail(BSC_ERR_NOMEM, "out of memory cloning YAML tree");
        goto cleanup;
    }
    for (size_t i = 0; i < src->n; i++) {
        bsc_node *k = NULL, *v = NULL;
        if ((src->keys && (st = bsc_node_clone(src->keys[i], &k)) != BSC_OK) ||
            (st = bsc_node_clone(src->items[i], &v)) != BSC_OK ||
            (st = node_append(n, k, v)) != BSC_OK) {
            bsc_node_free(k);
            bsc_node_free(v);
            goto cleanup;
        }
    }
    *out = n;
    n = NULL;
cleanup:
    bsc_node_free(n);
    return st;
}

/* ---------------------------------------------------------------- writing */

static int emit_node(yaml_emitter_t *e, const bsc_node *n)
{
    yaml_event_t ev;
    if (n->kind == BSC_NODE_SCALAR) {
        /* A scalar that was quoted stays quoted so "12" stays a string; any
         * other text goes out plain when libyaml finds that safe and quoted
         * otherwise (its analysis catches ": ", leading "-", "#" ...). */
        int q = n->quoted;
        if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)n->value,
                                          (int)strlen(n->value), !q, 1,
                                          q ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                            : YAML_ANY_SCALAR_STYLE))
            return 0;
        return yaml_emitter_emit(e, &ev);
    }
    if (n->kind == BSC_NODE_MAP) {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
    } else if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                     YAML_BLOCK_SEQUENCE_STYLE) ||
               !yaml_emitter_emit(e, &ev)) {
        return 0;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == BSC_NODE_MAP && !emit_node(e, n->keys[i]))
            return 0;
        if (!emit_node(e, n->items[i]))
            return 0;
    }
    if (n->kind == BSC_NODE_MAP)
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
}

bsc_status bsc_node_write_file(const bsc_node *root, const char *path)
{
    bsc_status st = BSC_OK;
    yaml_emitter_t e;
    yaml_event_t ev;
    int have_emitter = 0;
    FILE *f = NULL;
    size_t len = strlen(path);
    char *tmp = malloc(len + 5);
    if (!tmp)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    if (!(f = fopen(tmp, "wb"))) {
        st = bsc_fail(BSC_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (!yaml_emitter_initialize(&e)) {
        st = bsc_fail(BSC_ERR_NOMEM, "out of memory initializing the YAML emitter");
        goto cleanup;
    }
    have_emitter = 1;
    yaml_emitter_set_output_file(&e, f);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_indent(&e, 2);
    yaml_emitter_set_width(&e, -1); /* never fold long values */
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
        !yaml_emitter_emit(&e, &ev) ||
        !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(&e, &ev) || !emit_node(&e, root) ||
        !yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&e, &ev) ||
        !yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&e, &ev) ||
        !yaml_emitter_flush(&e)) {
        st = bsc_fail(BSC_ERR_IO, "%s: writing YAML: %s", path,
                      e.problem ? e.problem : "emitter error");
        goto cleanup;
    }
    if (fflush(f) != 0 || ferror(f)) {
        st = bsc_fail(BSC_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (fclose(f) != 0) {
        f = NULL;
        st = bsc_fail(BSC_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    f = NULL;
    if (rename(tmp, path) != 0)
        st = bsc_fail(BSC_ERR_IO, "renaming %s to %s: %s", tmp, path, strerror(errno));
cleanup:
    if (have_emitter)
        yaml_emitter_delete(&e);
    if (f)
        fclose(f);
    if (st != BSC_OK)
        remove(tmp);
    free(tmp);
    return st;
}

/* -------------------------------------------------------------- accessors */

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

static size_t count_names(const char *const *names)
{
    size_t n = 0;
    while (names && names[n])
        n++;
    return n;
}

/* "a, b, c" into buf (truncated with "..." when long). */
static void join_names(const char *const *names, char *buf, size_t len)
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
        return bsc_node_fail(map, BSC_ERR_INVALID, "expected a mapping, got %s", kind_word(map));
    for (size_t i = 0; i < map->n; i++) {
        const char *k = map->keys[i]->value;
        const char *hint;
        size_t j;
        for (j = 0; allowed[j]; j++)
            if (strcmp(allowed[j], k) == 0)
                break;
        if (allowed[j])
            continue;
        if ((hint = bsc_closest_name(k, allowed, count_names(allowed))))
            return bsc_node_fail(map->keys[i], BSC_ERR_INVALID,
                                 "unknown key '%s' (did you mean '%s'?)", k, hint);
        join_names(allowed, list, sizeof list);
        return bsc_node_fail(map->keys[i], BSC_ERR_INVALID,
                             "unknown key '%s' (expected one of: %s)", k, list);
    }
    return BSC_OK;
}

/* The error for a value that is not what `what` ("an integer in [1, 10]")
 * says; `label` names the key when the caller knows it. */
static bsc_status bad_value(const bsc_node *n, const char *label, const char *what)
{
    const char *who = label ? label : "value";
    if (n->kind != BSC_NODE_SCALAR)
        return bsc_node_fail(n, BSC_ERR_INVALID, "%s must be %s, got %s", who, what,
                             kind_word(n));
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
        return bad_value(n, label, what);
    errno = 0;
    v = strtol(n->value, &end, 10);
    if (*end != '\0' || errno == ERANGE) {
        /* "1e3" and "2.0" are integers written as floats: accept when exact. */
        double d;
        if (!parse_double_text(n->value, &d) || !isfinite(d) || d != floor(d) ||
            d < -9007199254740992.0 || d > 9007199254740992.0)
            return bad_value(n, label, what);
        v = (long)d;
    }
    if (v < min || v > max)
        return bad_value(n, label, what);
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
        return bad_value(n, label, what);
    /* NaN fails both comparisons, so it is only ever out of range. */
    if (!(v >= min && v <= max))
        return bad_value(n, label, what);
    *out = v;
    return BSC_OK;
}

static bsc_status to_bool(const bsc_node *n, const char *label, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    const char *what = "true or false";
    if (n->kind != BSC_NODE_SCALAR || n->quoted)
        return bad_value(n, label, what);
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
    return bad_value(n, label, what);
}

static bsc_status to_string(const bsc_node *n, const char *label, const char *const *choices,
                            const char **out)
{
    char list[512];
    const char *hint;
    if (n->kind != BSC_NODE_SCALAR)
        return bad_value(n, label, "a string");
    if (choices) {
        size_t i;
        for (i = 0; choices[i]; i++)
            if (strcmp(choices[i], n->value) == 0)
                break;
        if (!choices[i]) {
            join_names(choices, list, sizeof list);
            hint = bsc_closest_name(n->value, choices, count_names(choices));
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
                             kind_word(map));
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
