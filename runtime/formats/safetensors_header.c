/* The strict parser for a safetensors header: exactly one JSON object of
 * tensor descriptions and an optional "__metadata__" object of strings.
 * Anything else -- floats, negative numbers, unknown keys, duplicates,
 * trailing text other than padding -- is an error with its file offset. */
#include "safetensors_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes the format defines, with their sizes */

static size_t dtype_size(const char *d)
{
    static const struct { const char *name; size_t size; } table[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
        {"I16", 2}, {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},
        {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(d, table[i].name) == 0)
            return table[i].size;
    return 0;
}

typedef struct parser {
    const char *s;
    size_t len, pos;
    const char *path;
    bsc_safetensors *f;
} parser;

static bsc_status perr(const parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bsc_status perr(const parser *p, size_t pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Offsets count from the start of the file: the header begins at 8. */
    return bsc_fail(BSC_ERR_DATA, "%s: offset %zu: bad safetensors header: %s", p->path,
                    pos + 8, msg);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

/* Skips white space and consumes c. */
static bsc_status expect(parser *p, char c, const char *what)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return perr(p, p->pos, "header ends where %s ('%c') was expected", what, c);
    if (p->s[p->pos] != c)
        return perr(p, p->pos, "expected %s ('%c'), found '%c'", what, c, p->s[p->pos]);
    p->pos++;
    return BSC_OK;
}

/* Consumes c if it is next (after white space). */
static int accept(parser *p, char c)
{
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == c) {
        p->pos++;
        return 1;
    }
    return 0;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* Appends cp as UTF-8 at *dst. */
static void put_utf8(char **dst, unsigned cp)
{
    char *u = *dst;
    if (cp < 0x80) {
        *u++ = (char)cp;
    } else if (cp < 0x800) {
        *u++ = (char)(0xc0 | cp >> 6);
        *u++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *u++ = (char)(0xe0 | cp >> 12);
        *u++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *u++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *u++ = (char)(0xf0 | cp >> 18);
        *u++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *u++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *u++ = (char)(0x80 | (cp & 0x3f));
    }
    *dst = u;
}

/* The length of the string body starting at p->pos (just after the opening
 * quote), escapes included; no decoding yet. */
static bsc_status string_span(const parser *p, size_t *span)
{
    size_t i = p->pos;
    while (i < p->len && p->s[i] != '"')
        i += p->s[i] == '\\' ? 2 : 1;
    if (i >= p->len)
        return perr(p, p->pos - 1, "unterminated string");
    *span = i - p->pos;
    return BSC_OK;
}

/* A JSON string, decoded to UTF-8 in a malloc'ed *out. Decoding never grows
 * the text (an escape is at least as long as what it stands for), so the
 * raw span bounds the buffer. \u0000 is refused: names and metadata are C
 * strings here. */
static bsc_status parse_string(parser *p, char **out)
{
    static const char escapes[] = "\"\\/bfnrt";
    static const char decoded[] = "\"\\/\b\f\n\r\t";
    size_t span = 0, end;
    char *buf = NULL, *w;
    bsc_status st = expect(p, '"', "a string");
    if (st != BSC_OK || (st = string_span(p, &span)) != BSC_OK)
        return st;
    end = p->pos + span;
    buf = malloc(span + 1);
    if (!buf)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory parsing %s", p->path);
    w = buf;
    while (p->pos < end) {
        size_t at = p->pos;
        unsigned char c = (unsigned char)p->s[p->pos++];
        const char *simple;
        unsigned cp, lo;
        if (c < 0x20) {
            st = perr(p, at, "control character 0x%02x in a string", c);
            goto fail;
        }
        if (c != '\\') {
            *w++ = (char)c;
            continue;
        }
        c = (unsigned char)p->s[p->pos++];
        simple = c ? strchr(escapes, c) : NULL;
        if (simple) {
            *w++ = decoded[simple - escapes];
            continue;
        }
        if (c != 'u') {
            st = perr(p, at, "invalid escape '\\%c'", c);
            goto fail;
        }
        if (end - p->pos < 4 || !hex4(p->s + p->pos, &cp)) {
            st = perr(p, at, "invalid \\u escape");
            goto fail;
        }
        p->pos += 4;
        if (cp >= 0xd800 && cp < 0xdc00) {
            if (end - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                !hex4(p->s + p->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                st = perr(p, at, "unpaired UTF-16 surrogate in \\u escape");
                goto fail;
            }
            p->pos += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
            st = perr(p, at, cp ? "unpaired UTF-16 surrogate in \\u escape"
                                : "\\u0000 is not allowed in names");
            goto fail;
        }
        put_utf8(&w, cp);
    }
    *w = '\0';
    p->pos = end + 1;           /* the closing quote */
    *out = buf;
    return BSC_OK;
fail:
    free(buf);
    return st;
}

/* A non-negative JSON integer (no sign, fraction or exponent: sizes and
 * offsets only), below 2^63. */
static bsc_status parse_uint(parser *p, uint64_t *out)
{
    size_t at;
    uint64_t v = 0;
    skip_ws(p);
    at = p->pos;
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return perr(p, at, "expected a non-negative integer");
    if (p->s[p->pos] == '0' && p->pos + 1 < p->len && p->s[p->pos + 1] >= '0' &&
        p->s[p->pos + 1] <= '9')
        return perr(p, at, "integer with a leading zero");
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned d = (unsigned)(p->s[p->pos++] - '0');
        if (v > (UINT64_MAX / 2 - d) / 10)
            return perr(p, at, "integer too large");
        v = v * 10 + d;
    }
    if (p->pos < p->len && strchr(".eE-+", p->s[p->pos]))
        return perr(p, at, "expected an integer, found a number with a fraction or sign");
    *out = v;
    return BSC_OK;
}

static bsc_status parse_uint_array(parser *p, uint64_t *vals, size_t max, size_t *n,
                                   const char *what)
{
    bsc_status st = expect(p, '[', "an array");
    *n = 0;
    if (st != BSC_OK)
        return st;
    if (accept(p, ']'))
        return BSC_OK;
    do {
        if (*n == max)
            return perr(p, p->pos, "%s has more than %zu entries", what, max);
        st = parse_uint(p, &vals[(*n)++]);
        if (st != BSC_OK)
            return st;
    } while (accept(p, ','));
    return expect(p, ']', "',' or ']'");
}

static bsc_status add_tensor(parser *p, st_tensor **out)
{
    bsc_safetensors *f = p->f;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        st_tensor *t = realloc(f->tensors, cap * sizeof *t);
        if (!t)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory parsing %s", p->path);
        f->tensors = t;
        f->cap = cap;
    }
    *out = &f->tensors[f->n++];
    memset(*out, 0, sizeof **out);
    return BSC_OK;
}

/* {"dtype": "F32", "shape": [...], "data_offsets": [b, e]} in any order. */
static bsc_status parse_tensor(parser *p, st_tensor *t, size_t key_at)
{
    int seen[3] = {0, 0, 0};
    bsc_status st = expect(p, '{', "a tensor description");
    if (st != BSC_OK)
        return st;
    do {
        char *key = NULL;
        size_t at;
        skip_ws(p);
        at = p->pos;
        if ((st = parse_string(p, &key)) != BSC_OK)
            return st;
        int which = strcmp(key, "dtype") == 0 ? 0 : strcmp(key, "shape") == 0 ? 1 :
                    strcmp(key, "data_offsets") == 0 ? 2 : -1;
        free(key);
        if (which < 0)
            return perr(p, at, "tensor '%s': unknown key (expected dtype, shape, "
                        "data_offsets)", t->name);
        if (seen[which]++)
            return perr(p, at, "tensor '%s': duplicate key", t->name);
        if ((st = expect(p, ':', "':'")) != BSC_OK)
            return st;
        if (which == 0) {
            skip_ws(p);
            at = p->pos;
            if ((st = parse_string(p, &t->dtype)) != BSC_OK)
                return st;
            t->info.elem_size = dtype_size(t->dtype);
            if (!t->info.elem_size)
                return perr(p, at, "tensor '%s': unknown dtype '%s'", t->name, t->dtype);
        } else if (which == 1) {
            uint64_t dims[BSC_MAX_DIMS];
            size_t nd = 0;
            if ((st = parse_uint_array(p, dims, BSC_MAX_DIMS, &nd, "shape")) != BSC_OK)
                return st;
            t->info.shape.ndim = (int)nd;
            for (size_t d = 0; d < nd; d++)
                t->info.shape.dim[d] = (int64_t)dims[d];
        } else {
            uint64_t off[2];
            size_t no = 0;
            skip_ws(p);
            t->where = p->pos + 8;
            if ((st = parse_uint_array(p, off, 2, &no, "data_offsets")) != BSC_OK)
                return st;
            if (no != 2)
                return perr(p, t->where - 8, "tensor '%s': data_offsets needs 2 entries",
                            t->name);
            t->info.begin = off[0];
            t->info.end = off[1];
        }
    } while (accept(p, ','));
    if ((st = expect(p, '}', "',' or '}'")) != BSC_OK)
        return st;
    if (!seen[0] || !seen[1] || !seen[2])
        return perr(p, key_at, "tensor '%s': missing %s", t->name,
                    !seen[0] ? "dtype" : !seen[1] ? "shape" : "data_offsets");
    return BSC_OK;
}

static bsc_status parse_metadata(parser *p)
{
    bsc_safetensors *f = p->f;
    bsc_status st = expect(p, '{', "the metadata object");
    if (st != BSC_OK)
        return st;
    if (accept(p, '}'))
        return BSC_OK;
    do {
        char *k = NULL, *v = NULL;
        size_t at;
        skip_ws(p);
        at = p->pos;
        if ((st = parse_string(p, &k)) != BSC_OK)
            return st;
        for (size_t i = 0; i < f->n_meta; i++)
            if (strcmp(f->meta_keys[i], k) == 0) {
                st = perr(p, at, "duplicate metadata key '%s'", k);
                free(k);
                return st;
            }
        if ((st = expect(p, ':', "':'")) == BSC_OK) {
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] != '"')
                st = perr(p, p->pos, "metadata value of '%s' must be a string", k);
        }
        if (st != BSC_OK || (st = parse_string(p, &v)) != BSC_OK) {
            free(k);
            return st;
        }
        if (f->n_meta == f->cap_meta) {
            size_t cap = f->cap_meta ? f->cap_meta * 2 : 8;
            char **nk = realloc(f->meta_keys, cap * sizeof *nk);
            if (nk)
                f->meta_keys = nk;
            char **nv = nk ? realloc(f->meta_values, cap * sizeof *nv) : NULL;
            if (nv)
                f->meta_values = nv;
            if (!nk || !nv) {
                free(k);
                free(v);
                return bsc_fail(BSC_ERR_NOMEM, "out of memory parsing %s", p->path);
            }
            f->cap_meta = cap;
        }
        f->meta_keys[f->n_meta] = k;
        f->meta_values[f->n_meta++] = v;
    } while (accept(p, ','));
    return expect(p, '}', "',' or '}'");
}

static bsc_status parse_header(parser *p)
{
    int seen_meta = 0;
    bsc_status st = expect(p, '{', "the header object");
    if (st != BSC_OK)
        return st;
    if (!accept(p, '}')) {
        do {
            char *key = NULL;
            size_t at;
            skip_ws(p);
            at = p->pos;
            if ((st = parse_string(p, &key)) != BSC_OK)
                return st;
            if ((st = expect(p, ':', "':'")) != BSC_OK) {
                free(key);
                return st;
            }
            if (strcmp(key, ST_METADATA) == 0) {
                free(key);
                if (seen_meta++)
                    return perr(p, at, "duplicate __metadata__");
                if ((st = parse_metadata(p)) != BSC_OK)
                    return st;
                continue;
            }
            for (size_t i = 0; i < p->f->n; i++)
                if (strcmp(p->f->tensors[i].name, key) == 0) {
                    st = perr(p, at, "tensor '%s' appears twice", key);
                    free(key);
                    return st;
                }
            st_tensor *t = NULL;
            st = key[0] ? add_tensor(p, &t) : perr(p, at, "empty tensor name");
            if (st != BSC_OK) {
                free(key);
                return st;
            }
            t->name = key;
            if ((st = parse_tensor(p, t, at)) != BSC_OK)
                return st;
        } while (accept(p, ','));
        if ((st = expect(p, '}', "',' or '}'")) != BSC_OK)
            return st;
    }
    skip_ws(p);
    if (p->pos != p->len)
        return perr(p, p->pos, "unexpected '%c' after the header object", p->s[p->pos]);
    return BSC_OK;
}

bsc_status bsc_st_parse_header(const char *hdr, size_t len, const char *path,
                               bsc_safetensors *f)
{
    parser p = {hdr, len, 0, path, f};
    return parse_header(&p);
}
