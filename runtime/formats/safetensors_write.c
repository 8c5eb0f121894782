/* safetensors writer: header JSON, space padding, little-endian F32 data,
 * written through a temporary file and renamed (see safetensors.h). */
#include "batchscope/safetensors.h"
#include "batchscope/fsutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_CHUNK 4096
#define ST_METADATA "__metadata__"

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

typedef struct strbuf {
    char *s;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->failed = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->failed = 1;
    else
        sb_put(b, tmp, (size_t)n);
}

static void sb_json_string(strbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            sb_printf(b, "\\u%04x", c);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static bsc_status check_entries(const char *path, const bsc_st_entry *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, ST_METADATA) == 0)
            return bsc_fail(BSC_ERR_INVALID, "%s: tensor %zu has an invalid name '%s'", path,
                            i, t[i].name ? t[i].name : "(null)");
        if (t[i].shape.ndim < 0 || t[i].shape.ndim > BSC_MAX_DIMS)
            return bsc_fail(BSC_ERR_INVALID, "%s: tensor '%s' has rank %d", path, t[i].name,
                            t[i].shape.ndim);
        for (int d = 0; d < t[i].shape.ndim; d++)
            if (t[i].shape.dim[d] < 0)
                return bsc_fail(BSC_ERR_INVALID, "%s: tensor '%s' has a negative dimension",
                                path, t[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0)
                return bsc_fail(BSC_ERR_INVALID, "%s: tensor name '%s' appears twice", path,
                                t[i].name);
    }
    return BSC_OK;
}

static bsc_status build_header(const bsc_st_entry *t, size_t n, const char *const *mk,
                               const char *const *mv, size_t n_meta, strbuf *b)
{
    uint64_t at = 0;
    sb_put(b, "{", 1);
    if (n_meta) {
        sb_json_string(b, ST_METADATA);
        sb_put(b, ":{", 2);
        for (size_t i = 0; i < n_meta; i++) {
            if (i)
                sb_put(b, ",", 1);
            sb_json_string(b, mk[i]);
            sb_put(b, ":", 1);
            sb_json_string(b, mv[i]);
        }
        sb_put(b, "}", 1);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)bsc_shape_numel(&t[i].shape) * 4u;
        if (n_meta || i)
            sb_put(b, ",", 1);
        sb_json_string(b, t[i].name);
        sb_put(b, ":{\"dtype\":\"F32\",\"shape\":[", 25);
        for (int d = 0; d < t[i].shape.ndim; d++)
            sb_printf(b, "%s%lld", d ? "," : "", (long long)t[i].shape.dim[d]);
        sb_printf(b, "],\"data_offsets\":[%llu,", (unsigned long long)at);
        at += bytes;
        sb_printf(b, "%llu]}", (unsigned long long)at);
    }
    sb_put(b, "}", 1);
    /* Pad so the data section starts 8-byte aligned (8 + len is a multiple of 8). */
    while (!b->failed && b->len % 8)
        sb_put(b, " ", 1);
    return b->failed ? bsc_fail(BSC_ERR_NOMEM, "out of memory building a safetensors header")
                     : BSC_OK;
}

bsc_status bsc_safetensors_write(const char *path, const bsc_st_entry *tensors, size_t n,
                                 const char *const *meta_keys,
                                 const char *const *meta_values, size_t n_meta)
{
    strbuf hdr = {NULL, 0, 0, 0};
    bsc_afile af = {NULL, NULL, NULL};
    uint8_t len8[8], chunk[ST_CHUNK * 4];
    int opened = 0;
    bsc_status st = check_entries(path, tensors, n);
    if (st != BSC_OK)
        return st;
    st = build_header(tensors, n, meta_keys, meta_values, n_meta, &hdr);
    if (st != BSC_OK)
        goto cleanup;
    st = bsc_afile_open(&af, path);
    if (st != BSC_OK)
        goto cleanup;
    opened = 1;
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hdr.len >> (8 * i));
    if (fwrite(len8, 1, 8, af.f) != 8 || fwrite(hdr.s, 1, hdr.len, af.f) != hdr.len)
        goto write_error;
    for (size_t i = 0; i < n; i++) {
        size_t numel = bsc_shape_numel(&tensors[i].shape);
        for (size_t k = 0; k < numel; k += ST_CHUNK) {
            size_t m = numel - k < ST_CHUNK ? numel - k : ST_CHUNK;
            for (size_t j = 0; j < m; j++) {
                uint32_t bits;
                memcpy(&bits, &tensors[i].data[k + j], 4);
                put_le32(chunk + 4 * j, bits);
            }
            if (fwrite(chunk, 4, m, af.f) != m)
                goto write_error;
        }
    }
    st = bsc_afile_commit(&af);
    opened = 0;
    goto cleanup;
write_error:
    st = bsc_fail(BSC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
cleanup:
    if (opened)
        bsc_afile_abort(&af);
    free(hdr.s);
    return st;
}
