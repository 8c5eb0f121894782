/* Comparing two trees by content, and a node written on one line: what a
 * message needs to say where two pipelines differ. */
#include "batchscope/node.h"

#include <stdio.h>
#include <string.h>

/* Appends text to buf at *pos, keeping room for "..." when it does not fit. */
static void put(char *buf, size_t len, size_t *pos, const char *text)
{
    size_t n = strlen(text);
    if (*pos >= len)
        return;
    if (*pos + n + 1 > len) {
        size_t keep = len - 1 - *pos;
        memcpy(buf + *pos, text, keep);
        *pos = len - 1;
        buf[*pos] = '\0';
        if (len >= 4)
            memcpy(buf + len - 4, "...", 4);
        return;
    }
    memcpy(buf + *pos, text, n + 1);
    *pos += n;
}

static void flow(const bsc_node *n, char *buf, size_t len, size_t *pos)
{
    if (n->kind == BSC_NODE_SCALAR) {
        if (n->quoted) {
            put(buf, len, pos, "\"");
            put(buf, len, pos, n->value);
            put(buf, len, pos, "\"");
        } else {
            put(buf, len, pos, n->value[0] ? n->value : "null");
        }
        return;
    }
    put(buf, len, pos, n->kind == BSC_NODE_MAP ? "{" : "[");
    for (size_t i = 0; i < n->n; i++) {
        if (i)
            put(buf, len, pos, ", ");
        if (n->kind == BSC_NODE_MAP) {
            flow(n->keys[i], buf, len, pos);
            put(buf, len, pos, ": ");
        }
        flow(n->items[i], buf, len, pos);
    }
    put(buf, len, pos, n->kind == BSC_NODE_MAP ? "}" : "]");
}

void bsc_node_flow(const bsc_node *n, char *buf, size_t len)
{
    size_t pos = 0;
    if (!len)
        return;
    buf[0] = '\0';
    if (!n) {
        put(buf, len, &pos, "(absent)");
        return;
    }
    flow(n, buf, len, &pos);
}

/* path + ".key" or "[i]" into out. */
static void child_path(const char *path, const char *key, size_t index, char *out, size_t len)
{
    if (key)
        snprintf(out, len, "%s%s%s", path, path[0] ? "." : "", key);
    else
        snprintf(out, len, "%s[%zu]", path, index);
}

static int diff(const bsc_node *a, const bsc_node *b, const char *path, char *out, size_t len,
                const bsc_node **da, const bsc_node **db)
{
    char sub[512];
    if (a->kind != b->kind || (a->kind == BSC_NODE_SCALAR && strcmp(a->value, b->value) != 0))
        goto differ;
    if (a->kind == BSC_NODE_SEQ) {
        size_t n = a->n < b->n ? a->n : b->n;
        for (size_t i = 0; i < n; i++) {
            child_path(path, NULL, i, sub, sizeof sub);
            if (diff(a->items[i], b->items[i], sub, out, len, da, db))
                return 1;
        }
        if (a->n != b->n)
            goto differ;   /* one list is the other's start: name the whole list */
        return 0;
    }
    if (a->kind == BSC_NODE_MAP) {
        for (size_t i = 0; i < a->n; i++) {
            const char *k = a->keys[i]->value;
            const bsc_node *bv = bsc_node_get(b, k);
            child_path(path, k, 0, sub, sizeof sub);
            if (!bv) {
                snprintf(out, len, "%s", sub);
                *da = a->items[i];
                *db = NULL;
                return 1;
            }
            if (diff(a->items[i], bv, sub, out, len, da, db))
                return 1;
        }
        for (size_t i = 0; i < b->n; i++) {
            if (bsc_node_get(a, b->keys[i]->value))
                continue;
            child_path(path, b->keys[i]->value, 0, sub, sizeof sub);
            snprintf(out, len, "%s", sub);
            *da = NULL;
            *db = b->items[i];
            return 1;
        }
    }
    return 0;
differ:
    snprintf(out, len, "%s", path[0] ? path : "(the document)");
    *da = a;
    *db = b;
    return 1;
}

int bsc_node_diff(const bsc_node *a, const bsc_node *b, char *path, size_t len,
                  const bsc_node **da, const bsc_node **db)
{
    *da = *db = NULL;
    if (len)
        path[0] = '\0';
    return diff(a, b, "", path, len, da, db);
}
