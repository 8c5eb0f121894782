/* `--set key.path=value` overrides: edits to the parsed pipeline tree,
 * applied before validation. */
#include "batchscope/node.h"
#include "pipeline_internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void relocate(bsc_node *n, int line)
{
    n->line = line;
    n->offset = (size_t)(n->col - 1);
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            relocate(n->keys[i], line);
        relocate(n->items[i], line);
    }
}

static bsc_node *new_node(bsc_node_kind kind, const char *file, int line, int col,
                          const char *text, size_t len)
{
    bsc_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->file = file;
    n->line = line;
    n->col = col;
    n->offset = (size_t)(col - 1);
    if (kind == BSC_NODE_SCALAR) {
        if (!(n->value = malloc(len + 1))) {
            free(n);
            return NULL;
        }
        memcpy(n->value, text, len);
        n->value[len] = '\0';
    }
    return n;
}

static bsc_status map_append(bsc_node *map, bsc_node *key, bsc_node *value)
{
    bsc_node **keys = realloc(map->keys, (map->n + 1) * sizeof *keys);
    bsc_node **items;
    if (!keys)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    map->keys = keys;
    if (!(items = realloc(map->items, (map->n + 1) * sizeof *items)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    map->items = items;
    keys[map->n] = key;
    items[map->n++] = value;
    return BSC_OK;
}

/* Applies one "a.b.c=value". Nodes it creates are marked "--set:<k>:<col>",
 * k the override's 1-based position on the command line and col the column
 * in its text, so an invalid value is reported where the user typed it. */
bsc_status bsc_pipeline_apply_override(bsc_node *root, const char *ov, int index)
{
    bsc_status st = BSC_OK;
    const char *eq = strchr(ov, '=');
    bsc_node *value = NULL, *cur = root;
    char *padded = NULL;
    size_t vstart;
    const char *comp;

    if (!eq)
        return bsc_fail(BSC_ERR_USAGE, "override '%s' has no '=' (expected key.path=value)", ov);
    if (eq == ov)
        return bsc_fail(BSC_ERR_USAGE, "override '%s' has an empty key path", ov);
    if (eq[1] == '\0')
        return bsc_fail(BSC_ERR_USAGE, "override '%s' has no value", ov);
    /* Padding the value with spaces as wide as "path=" makes libyaml's
     * columns the columns of the override text itself. */
    vstart = (size_t)(eq - ov) + 1;
    if (!(padded = malloc(vstart + strlen(eq + 1) + 1)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    memset(padded, ' ', vstart);
    strcpy(padded + vstart, eq + 1);
    if ((st = bsc_node_parse_string("--set", padded, &value)) != BSC_OK) {
        st = bsc_fail_context(BSC_ERR_USAGE, "override '%s'", ov);
        goto cleanup;
    }
    relocate(value, index);

    for (comp = ov; comp < eq;) {
        const char *end = memchr(comp, '.', (size_t)(eq - comp));
        size_t len;
        int last, col = (int)(comp - ov) + 1;
        bsc_node **slot = NULL;
        if (!end)
            end = eq;
        len = (size_t)(end - comp);
        last = end == eq;
        if (len == 0) {
            st = bsc_fail(BSC_ERR_USAGE, "override '%s' has an empty key at column %d", ov, col);
            goto cleanup;
        }
        if (cur->kind == BSC_NODE_MAP) {
            for (size_t i = 0; i < cur->n; i++)
                if (strlen(cur->keys[i]->value) == len &&
                    memcmp(cur->keys[i]->value, comp, len) == 0)
                    slot = &cur->items[i];
            if (!slot) {
                bsc_node *k = new_node(BSC_NODE_SCALAR, value->file, index, col, comp, len);
                bsc_node *child = last ? value
                                       : new_node(BSC_NODE_MAP, value->file, index, col, NULL, 0);
                if (!k || !child || (st = map_append(cur, k, child)) != BSC_OK) {
                    bsc_node_free(k);
                    if (child != value)
                        bsc_node_free(child);
                    st = st != BSC_OK ? st : bsc_fail(BSC_ERR_NOMEM, "out of memory");
                    goto cleanup;
                }
                if (last)
                    value = NULL;   /* now owned by the tree */
                cur = child;
                comp = end + 1;
                continue;
            }
        } else if (cur->kind == BSC_NODE_SEQ) {
            size_t idx = 0;
            for (size_t i = 0; i < len; i++) {
                if (!isdigit((unsigned char)comp[i]) || idx > (SIZE_MAX - 9) / 10) {
                    st = bsc_fail(BSC_ERR_USAGE,
                                  "override '%s': '%.*s' must be a list index (at column %d)",
                                  ov, (int)len, comp, col);
                    goto cleanup;
                }
                idx = idx * 10 + (size_t)(comp[i] - '0');
            }
            if (idx >= cur->n) {
                st = bsc_fail(BSC_ERR_USAGE,
                              "override '%s': index %zu is out of range (the list at %s:%d:%d "
                              "has %zu items)",
                              ov, idx, cur->file, cur->line, cur->col, cur->n);
                goto cleanup;
            }
            slot = &cur->items[idx];
        } else if (cur == root) {
            st = bsc_fail(BSC_ERR_USAGE, "override '%s': the pipeline is not a mapping", ov);
            goto cleanup;
        } else {
            st = bsc_fail(BSC_ERR_USAGE,
                          "override '%s': '%.*s' is a scalar (at %s:%d:%d), cannot set '%.*s' "
                          "inside it",
                          ov, (int)(comp - ov - 1), ov, cur->file, cur->line, cur->col,
                          (int)len, comp);
            goto cleanup;
        }
        if (last) {
            bsc_node_free(*slot);
            *slot = value;
            value = NULL;
            break;
        }
        /* `key:` with nothing after it is YAML null: setting inside it means
         * the user wants a mapping there. */
        if (bsc_node_is_null(*slot)) {
            bsc_node *m = new_node(BSC_NODE_MAP, value->file, index, col, NULL, 0);
            if (!m) {
                st = bsc_fail(BSC_ERR_NOMEM, "out of memory");
                goto cleanup;
            }
            bsc_node_free(*slot);
            *slot = m;
        }
        cur = *slot;
        comp = end + 1;
    }
cleanup:
    bsc_node_free(value);
    free(padded);
    return st;
}
