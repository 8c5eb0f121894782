/* The YAML layer: libyaml events -> located bsc_node trees (parsing,
 * cloning, freeing). The writer is node_write.c, the typed accessors
 * node_access.c. */
#include "batchscope/node.h"

#include "batchscope/hashset.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

const char *bsc_node_kind_word(const bsc_node *n)
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

/* The entries of a mapping or sequence as they are read: arrays that grow
 * geometrically (a 200k-item list must not be copied 200k times) and a hash
 * set of the mapping's keys (a duplicate is found without comparing every
 * key with every other). The node gets arrays exactly n long at the end,
 * which modules that edit trees (overrides) rely on with plain realloc. */
typedef struct entries {
    bsc_node **keys, **items;
    size_t n, cap;
    bsc_hashset *seen;
} entries;

static void entries_free(entries *e)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->keys)
            bsc_node_free(e->keys[i]);
        bsc_node_free(e->items[i]);
    }
    free(e->keys);
    free(e->items);
    bsc_hashset_free(e->seen);
}

static bsc_status entries_push(entries *e, int is_map, bsc_node *key, bsc_node *item)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 8;
        bsc_node **items = realloc(e->items, cap * sizeof *items);
        if (!items)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory building YAML tree");
        e->items = items;
        if (is_map) {
            bsc_node **keys = realloc(e->keys, cap * sizeof *keys);
            if (!keys)
                return bsc_fail(BSC_ERR_NOMEM, "out of memory building YAML tree");
            e->keys = keys;
        }
        e->cap = cap;
    }
    if (is_map)
        e->keys[e->n] = key;
    e->items[e->n++] = item;
    return BSC_OK;
}

/* Hands the entries to parent, arrays trimmed to n. */
static bsc_status entries_finish(entries *e, bsc_node *parent)
{
    size_t n = e->n ? e->n : 1;
    bsc_node **items = realloc(e->items, n * sizeof *items);
    bsc_node **keys = e->keys ? realloc(e->keys, n * sizeof *keys) : NULL;
    /* A failed shrink keeps the larger block, which is still valid. */
    parent->items = items ? items : e->items;
    parent->keys = e->keys ? (keys ? keys : e->keys) : NULL;
    parent->n = e->n;
    if (!e->n) {
        free(parent->items);
        free(parent->keys);
        parent->items = parent->keys = NULL;
    }
    bsc_hashset_free(e->seen);
    memset(e, 0, sizeof *e);
    return BSC_OK;
}

/* Reads the entries of a mapping or sequence whose start event was consumed,
 * up to and including its end event. */
static bsc_status build_children(builder *b, bsc_node *parent, int depth)
{
    bsc_status st = BSC_OK;
    yaml_event_t ev;
    int is_map = parent->kind == BSC_NODE_MAP;
    yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    entries e;
    memset(&e, 0, sizeof e);
    if (is_map && (st = bsc_hashset_new(0, &e.seen)) != BSC_OK)
        return st;
    for (;;) {
        bsc_node *key = NULL, *item = NULL;
        if ((st = next_event(b, &ev)) != BSC_OK)
            break;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return entries_finish(&e, parent);
        }
        if (is_map) {
            size_t first;
            if ((st = build_node(b, &ev, depth + 1, &key)) != BSC_OK)
                break;
            if (key->kind != BSC_NODE_SCALAR) {
                st = bsc_node_fail(key, BSC_ERR_PARSE, "mapping keys must be plain scalars");
                bsc_node_free(key);
                break;
            }
            if ((st = bsc_hashset_add(e.seen, key->value, strlen(key->value), e.n, &first)) !=
                BSC_OK) {
                bsc_node_free(key);
                break;
            }
            if (first != BSC_HASHSET_NEW) {
                st = bsc_node_fail(key, BSC_ERR_PARSE,
                                   "duplicate key '%s' (first at line %d, column %d)",
                                   key->value, e.keys[first]->line, e.keys[first]->col);
                bsc_node_free(key);
                break;
            }
            if ((st = next_event(b, &ev)) != BSC_OK) {
                bsc_node_free(key);
                break;
            }
        }
        if ((st = build_node(b, &ev, depth + 1, &item)) != BSC_OK ||
            (st = entries_push(&e, is_map, key, item)) != BSC_OK) {
            bsc_node_free(key);
            bsc_node_free(item);
            break;
        }
    }
    entries_free(&e);
    return st;
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

int bsc_node_is_null(const bsc_node *n)
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
    if (!n || bsc_node_is_null(n)) {
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
    /* A directory opens, and then fails as "byte 0: input error". */
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return bsc_fail(BSC_ERR_INVALID, "%s: a directory, not a YAML file", path);
    }
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

const char *bsc_yaml_library_version(void)
{
    return yaml_get_version_string();
}
