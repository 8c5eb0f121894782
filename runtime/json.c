/* A JSON writer: enough for manifests, no parser. */
#include "batchscope/json.h"
#include "batchscope/fsutil.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bsc_json_init(bsc_json *j)
{
    memset(j, 0, sizeof *j);
}

void bsc_json_free(bsc_json *j)
{
    free(j->buf);
    memset(j, 0, sizeof *j);
}

static void put(bsc_json *j, const char *s, size_t n)
{
    if (j->failed)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (j->len + n + 1 > cap)
            cap *= 2;
        char *b = realloc(j->buf, cap);
        if (!b) {
            j->failed = 1;
            return;
        }
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void puts_(bsc_json *j, const char *s) { put(j, s, strlen(s)); }

static void quoted(bsc_json *j, const char *s)
{
    put(j, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(j, esc, 2);
        } else if (c == '\n') {
            puts_(j, "\\n");
        } else if (c == '\t') {
            puts_(j, "\\t");
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            puts_(j, esc);
        } else {
            put(j, (const char *)&c, 1);
        }
    }
    put(j, "\"", 1);
}

/* Comma, newline/indent and key before a value. */
static void prefix(bsc_json *j, const char *key)
{
    if (j->depth > 0) {
        if (j->count[j->depth - 1]++)
            put(j, ",", 1);
        put(j, "\n", 1);
        for (int i = 0; i < j->depth; i++)
            put(j, "  ", 2);
    }
    if (key) {
        quoted(j, key);
        put(j, ": ", 2);
    }
}

static void open_(bsc_json *j, const char *key, char open, char close)
{
    prefix(j, key);
    put(j, &open, 1);
    if (j->depth >= BSC_JSON_MAX_DEPTH) {
        j->failed = 1;
        return;
    }
    j->closer[j->depth] = close;
    j->count[j->depth++] = 0;
}

void bsc_json_object(bsc_json *j, const char *key) { open_(j, key, '{', '}'); }
void bsc_json_array(bsc_json *j, const char *key) { open_(j, key, '[', ']'); }

void bsc_json_end(bsc_json *j)
{
    if (j->depth == 0) {
        j->failed = 1;
        return;
    }
    int had = j->count[j->depth - 1];
    j->depth--;
    if (had) {
        put(j, "\n", 1);
        for (int i = 0; i < j->depth; i++)
            put(j, "  ", 2);
    }
    put(j, &j->closer[j->depth], 1);
}

void bsc_json_string(bsc_json *j, const char *key, const char *value)
{
    prefix(j, key);
    if (value)
        quoted(j, value);
    else
        puts_(j, "null");
}

void bsc_json_number(bsc_json *j, const char *key, double value)
{
    char b[64];
    prefix(j, key);
    if (!isfinite(value)) {
        puts_(j, "null");
        return;
    }
    snprintf(b, sizeof b, "%.17g", value);
    puts_(j, b);
}

void bsc_json_int(bsc_json *j, const char *key, int64_t value)
{
    char b[32];
    prefix(j, key);
    snprintf(b, sizeof b, "%" PRId64, value);
    puts_(j, b);
}

void bsc_json_bool(bsc_json *j, const char *key, int value)
{
    prefix(j, key);
    puts_(j, value ? "true" : "false");
}

bsc_status bsc_json_finish(bsc_json *j, const char **text, size_t *len)
{
    if (j->failed || j->depth != 0)
        return bsc_fail(BSC_ERR_INTERNAL, "JSON writer: %s",
                        j->failed ? "out of memory or nesting too deep" : "unclosed object");
    put(j, "\n", 1);
    *text = j->buf;
    if (len)
        *len = j->len;
    return BSC_OK;
}

bsc_status bsc_json_write_file(bsc_json *j, const char *path)
{
    const char *text;
    size_t len;
    bsc_status s = bsc_json_finish(j, &text, &len);
    return s == BSC_OK ? bsc_write_file_atomic(path, text, len) : s;
}
