/* The jansson binding of records: walks a table of fields (records_internal.h)
 * to reset, free, read and write the struct it describes. */
#include "records_internal.h"

#include "batchscope/fsutil.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What the library allocates for a top-level record: the public struct
 * first (callers see only it), then the parsed document its strings point
 * into (NULL for a record made by *_new). */
typedef struct holder {
    union {
        bsc_run_record run;
        bsc_manifest manifest;
    } pub;
    json_t *root;
} holder;

/* ------------------------------------------------------ member access */

/* Pointer members differ in type (const char *, bsc_manifest_device *, ...)
 * and are reached by offset: memcpy keeps that free of aliasing rules. */
static void *get_ptr(const void *obj, size_t off)
{
    void *p;
    memcpy(&p, (const char *)obj + off, sizeof p);
    return p;
}

static void set_ptr(void *obj, size_t off, const void *p)
{
    memcpy((char *)obj + off, &p, sizeof p);
}

static size_t *count_of(void *obj, const rec_field *f)
{
    return (size_t *)((char *)obj + f->n_off);
}

static size_t count(const void *obj, const rec_field *f)
{
    return *(const size_t *)((const char *)obj + f->n_off);
}

static long long get_int(const void *obj, const rec_field *f)
{
    const char *p = (const char *)obj + f->off;
    switch (f->kind) {
    case K_INT: return *(const int *)p;
    case K_LONG: return *(const long *)p;
    case K_I64: return *(const int64_t *)p;
    case K_U64: return (long long)*(const uint64_t *)p;
    default: return 0;
    }
}

static void set_int(void *obj, const rec_field *f, long long v)
{
    char *p = (char *)obj + f->off;
    switch (f->kind) {
    case K_INT: *(int *)p = (int)v; break;
    case K_LONG: *(long *)p = (long)v; break;
    case K_I64: *(int64_t *)p = (int64_t)v; break;
    case K_U64: *(uint64_t *)p = (uint64_t)v; break;
    default: break;
    }
}

static long long int_max(enum rec_kind k)
{
    return k == K_INT ? INT_MAX : k == K_LONG ? LONG_MAX : LLONG_MAX;
}

static int in_file(const rec_schema *sc, const rec_field *f)
{
    return !(f->flags & sc->skip);
}

/* --------------------------------------------------- allocation, reset */

static void reset(const rec_schema *sc, void *obj)
{
    for (size_t i = 0; i < sc->n; i++) {
        const rec_field *f = &sc->fields[i];
        switch (f->kind) {
        case K_STR:
        case K_OBJ:
            set_ptr(obj, f->off, NULL);
            break;
        case K_LIST:
        case K_STRLIST:
            set_ptr(obj, f->off, NULL);
            *count_of(obj, f) = 0;
            break;
        case K_REAL:
            *(double *)((char *)obj + f->off) = NAN;
            break;
        default:
            set_int(obj, f, f->absent);
            break;
        }
    }
}

/* A struct of schema sc inside another record: a plain allocation. */
static void *node_new(const rec_schema *sc)
{
    void *obj = calloc(1, sc->size);
    if (obj)
        reset(sc, obj);
    return obj;
}

static void free_children(const rec_schema *sc, void *obj);

/* Frees a struct from node_new and everything it owns; NULL is fine. */
static void node_free(const rec_schema *sc, void *obj)
{
    if (!obj)
        return;
    free_children(sc, obj);
    free(obj);
}

/* Frees what obj owns (its objects and lists), not obj itself. */
static void free_children(const rec_schema *sc, void *obj)
{
    for (size_t i = 0; i < sc->n; i++) {
        const rec_field *f = &sc->fields[i];
        if (f->kind == K_OBJ) {
            node_free(f->sub, get_ptr(obj, f->off));
        } else if (f->kind == K_LIST) {
            void *arr = get_ptr(obj, f->off);
            for (size_t k = 0; k < count(obj, f); k++)
                node_free(f->sub, get_ptr(arr, k * sizeof arr));
            free(arr);
        } else if (f->kind == K_STRLIST) {
            free(get_ptr(obj, f->off));   /* the strings are borrowed or the document's */
        }
    }
}

bsc_status bsc_rec_list_add(void *obj, const rec_field *f, void *out)
{
    size_t n = *count_of(obj, f);
    void *arr = get_ptr(obj, f->off);
    void *el = node_new(f->sub);
    void *grown = el ? realloc(arr, (n + 1) * sizeof el) : NULL;
    if (!grown) {
        free(el);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    set_ptr(grown, n * sizeof el, el);
    set_ptr(obj, f->off, grown);
    *count_of(obj, f) = n + 1;
    set_ptr(out, 0, el);
    return BSC_OK;
}

bsc_status bsc_rec_strlist_add(void *obj, const rec_field *f, const char *text)
{
    size_t n = *count_of(obj, f);
    const char **grown = realloc(get_ptr(obj, f->off), (n + 1) * sizeof *grown);
    if (!grown)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    grown[n] = text;
    set_ptr(obj, f->off, grown);
    *count_of(obj, f) = n + 1;
    return BSC_OK;
}

bsc_status bsc_rec_set_object(void *obj, const rec_field *f, void *out)
{
    void *old = get_ptr(obj, f->off);
    void *sub = node_new(f->sub);
    set_ptr(out, 0, sub);
    if (!sub)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    node_free(f->sub, old);
    set_ptr(obj, f->off, sub);
    return BSC_OK;
}

/* ------------------------------------------------------------ reading */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static const char *kind_name(enum rec_kind k)
{
    switch (k) {
    case K_STR: return "a string";
    case K_REAL: return "a number or null";
    case K_OBJ: return "an object";
    case K_LIST: return "an array of objects";
    case K_STRLIST: return "an array of strings";
    default: return "an integer";
    }
}

/* where is "" at the top level, else "runs[1]: " or "device: ". */
static bsc_status read_object(const char *path, const char *where, const rec_schema *sc,
                              json_t *in, void *obj);

static bsc_status wrong_type(const char *path, const char *where, const rec_field *f,
                             const json_t *v)
{
    return bsc_fail(BSC_ERR_DATA, "%s: %skey \"%s\" is %s, not %s", path, where, f->key,
                    type_name(v), kind_name(f->kind));
}

static bsc_status read_list(const char *path, const char *where, const rec_field *f,
                            json_t *v, void *obj)
{
    bsc_status s = BSC_OK;
    for (size_t k = 0; s == BSC_OK && k < json_array_size(v); k++) {
        char at[160];
        void *el = NULL;
        snprintf(at, sizeof at, "%s%s[%zu]: ", where, f->key, k);
        json_t *item = json_array_get(v, k);
        if (!json_is_object(item))
            return bsc_fail(BSC_ERR_DATA, "%s: %sis %s, not an object", path, at,
                            type_name(item));
        if ((s = bsc_rec_list_add(obj, f, &el)) == BSC_OK)
            s = read_object(path, at, f->sub, item, el);
    }
    return s;
}

static bsc_status read_field(const char *path, const char *where, const rec_field *f,
                             json_t *v, void *obj)
{
    switch (f->kind) {
    case K_STR:
        if (json_is_null(v) && (f->flags & F_OPT))
            return BSC_OK;
        if (!json_is_string(v))
            return wrong_type(path, where, f, v);
        set_ptr(obj, f->off, json_string_value(v));
        return BSC_OK;
    case K_REAL:
        if (!json_is_number(v) && !json_is_null(v))
            return wrong_type(path, where, f, v);
        *(double *)((char *)obj + f->off) = json_is_null(v) ? NAN : json_number_value(v);
        return BSC_OK;
    case K_OBJ: {
        if (!json_is_object(v))
            return wrong_type(path, where, f, v);
        char at[160];
        snprintf(at, sizeof at, "%s%s: ", where, f->key);
        void *sub = node_new(f->sub);
        if (!sub)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        set_ptr(obj, f->off, sub);
        return read_object(path, at, f->sub, v, sub);
    }
    case K_LIST:
        if (!json_is_array(v))
            return wrong_type(path, where, f, v);
        return read_list(path, where, f, v, obj);
    case K_STRLIST:
        if (!json_is_array(v))
            return wrong_type(path, where, f, v);
        for (size_t k = 0; k < json_array_size(v); k++) {
            json_t *item = json_array_get(v, k);
            if (!json_is_string(item))
                return bsc_fail(BSC_ERR_DATA, "%s: %s%s[%zu]: is %s, not a string", path, where,
                                f->key, k, type_name(item));
            bsc_status s = bsc_rec_strlist_add(obj, f, json_string_value(item));
            if (s != BSC_OK)
                return s;
        }
        return BSC_OK;
    default: {
        if (!json_is_integer(v))
            return wrong_type(path, where, f, v);
        long long x = json_integer_value(v);
        if (f->kind != K_U64 && (x < f->min || x > int_max(f->kind)))
            return bsc_fail(BSC_ERR_DATA, "%s: %skey \"%s\" is %lld, out of range (%lld..%lld)",
                            path, where, f->key, x, f->min, int_max(f->kind));
        set_int(obj, f, x);
        return BSC_OK;
    }
    }
}

static bsc_status read_object(const char *path, const char *where, const rec_schema *sc,
                              json_t *in, void *obj)
{
    for (size_t i = 0; i < sc->n; i++) {
        const rec_field *f = &sc->fields[i];
        if (!in_file(sc, f))
            continue;
        json_t *v = json_object_get(in, f->key);
        if (!v) {
            if (f->flags & F_OPT)
                continue;
            return bsc_fail(BSC_ERR_DATA, "%s: %smissing key \"%s\"", path, where, f->key);
        }
        bsc_status s = read_field(path, where, f, v, obj);
        if (s != BSC_OK)
            return s;
    }
    return BSC_OK;
}

/* The document at path, an object; *root NULL on failure. */
static bsc_status load(const char *path, json_t **root)
{
    char *text = NULL;
    size_t len = 0;
    json_error_t err;
    *root = NULL;
    bsc_status s = bsc_read_file(path, &text, &len);
    if (s != BSC_OK)
        return s;
    /* A key twice is not a file we wrote: say so rather than pick one. */
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    free(text);
    /* jansson counts columns from 1 but says 0 before a line's first
     * character (an empty file); editors want 1 there. */
    if (!doc)
        return bsc_fail(BSC_ERR_PARSE, "%s:%d:%d: %s", path, err.line > 0 ? err.line : 1,
                        err.column > 0 ? err.column : 1, err.text);
    if (!json_is_object(doc)) {
        s = bsc_fail(BSC_ERR_DATA, "%s: the document is %s, not an object", path,
                     type_name(doc));
        json_decref(doc);
        return s;
    }
    *root = doc;
    return BSC_OK;
}

/* ------------------------------------------------------------ writing */

/* jansson takes only valid UTF-8; a device or path name in another
 * encoding is kept readable with '?' for its non-ASCII bytes rather than
 * failing the whole record. */
static json_t *string_value(const char *v)
{
    json_t *j = json_string(v);
    if (j)
        return j;
    char *ascii = strdup(v);
    if (!ascii)
        return NULL;
    for (char *c = ascii; *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    j = json_string(ascii);
    free(ascii);
    return j;
}

static bsc_status build_object(const char *path, const char *where, const rec_schema *sc,
                               const void *obj, json_t **out);

static bsc_status build_list(const char *path, const char *where, const rec_field *f,
                             const void *obj, json_t **out)
{
    void *arr = get_ptr(obj, f->off);
    size_t n = count(obj, f);
    json_t *a = json_array();
    bsc_status s = a ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t k = 0; s == BSC_OK && k < n; k++) {
        char at[160];
        json_t *item = NULL;
        snprintf(at, sizeof at, "%s%s[%zu]: ", where, f->key, k);
        s = build_object(path, at, f->sub, get_ptr(arr, k * sizeof arr), &item);
        if (s == BSC_OK && json_array_append_new(a, item) != 0)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    if (s != BSC_OK) {
        json_decref(a);
        a = NULL;
    }
    *out = a;
    return s;
}

/* The JSON value of field f of obj; *out NULL (and BSC_OK) when it is left out. */
static bsc_status build_field(const char *path, const char *where, const rec_field *f,
                              const void *obj, json_t **out)
{
    *out = NULL;
    switch (f->kind) {
    case K_STR: {
        const char *v = get_ptr(obj, f->off);
        if (!v && !(f->flags & F_OPT))
            return bsc_fail(BSC_ERR_INVALID, "writing %s: %skey \"%s\" is not set", path,
                            where, f->key);
        if (!v)
            return BSC_OK;
        *out = string_value(v);
        break;
    }
    case K_REAL: {
        double v = *(const double *)((const char *)obj + f->off);
        *out = isfinite(v) ? json_real(v) : json_null();
        break;
    }
    case K_OBJ: {
        const void *sub = get_ptr(obj, f->off);
        if (!sub)
            return BSC_OK;
        char at[160];
        snprintf(at, sizeof at, "%s%s: ", where, f->key);
        return build_object(path, at, f->sub, sub, out);
    }
    case K_LIST:
        if ((f->flags & F_NONEMPTY) && count(obj, f) == 0)
            return BSC_OK;
        return build_list(path, where, f, obj, out);
    case K_STRLIST: {
        const char **arr = get_ptr(obj, f->off);
        size_t n = count(obj, f);
        if (!n && (f->flags & F_OPT))
            return BSC_OK;
        json_t *a = json_array();
        for (size_t k = 0; a && k < n; k++)
            if (json_array_append_new(a, string_value(arr[k])) != 0) {
                json_decref(a);
                a = NULL;
            }
        *out = a;
        break;
    }
    default: {
        long long v = get_int(obj, f);
        if ((f->flags & F_OPT) && v == f->absent)
            return BSC_OK;
        if (f->kind != K_U64 && v < f->min)
            return bsc_fail(BSC_ERR_INVALID, "writing %s: %skey \"%s\" is %lld, below %lld",
                            path, where, f->key, v, f->min);
        *out = json_integer((json_int_t)v);
        break;
    }
    }
    return *out ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
}

static bsc_status build_object(const char *path, const char *where, const rec_schema *sc,
                               const void *obj, json_t **out)
{
    json_t *o = json_object();
    bsc_status s = o ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == BSC_OK && i < sc->n; i++) {
        const rec_field *f = &sc->fields[i];
        json_t *v = NULL;
        if (!in_file(sc, f))
            continue;
        s = build_field(path, where, f, obj, &v);
        if (s == BSC_OK && v && json_object_set_new(o, f->key, v) != 0)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    if (s != BSC_OK) {
        json_decref(o);
        o = NULL;
    }
    *out = o;
    return s;
}

bsc_status bsc_rec_write(const char *path, const rec_schema *sc, const void *obj)
{
    json_t *root = NULL;
    bsc_afile a;
    bsc_status s = build_object(path, "", sc, obj, &root);
    if (s != BSC_OK)
        return s;
    if ((s = bsc_afile_open(&a, path)) != BSC_OK)
        goto cleanup;
    /* Order kept as built, two-space indent like the files have always had,
     * and 17 digits: enough for every double to read back bit for bit. */
    if (json_dumpf(root, a.f, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                  JSON_REAL_PRECISION(17)) != 0 ||
        fputc('\n', a.f) == EOF) {
        s = bsc_fail(BSC_ERR_IO, "writing %s failed", path);
        bsc_afile_abort(&a);
        goto cleanup;
    }
    s = bsc_afile_commit(&a);
cleanup:
    json_decref(root);
    return s;
}

bsc_status bsc_rec_render(const char *path, const rec_schema *sc, const void *obj, char **text)
{
    json_t *root = NULL;
    *text = NULL;
    bsc_status s = build_object(path, "", sc, obj, &root);
    if (s != BSC_OK)
        return s;
    /* The flags of bsc_rec_write, so the text is the file's byte for byte. */
    char *t = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!t)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory rendering %s", path);
    *text = bsc_strdup_printf("%s\n", t);
    free(t);
    return *text ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory rendering %s", path);
}

/* ---------------------------------------------------- top-level records */

bsc_status bsc_rec_new(const rec_schema *sc, void *out)
{
    holder *h = calloc(1, sizeof *h);
    set_ptr(out, 0, h ? &h->pub : NULL);
    if (!h)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    reset(sc, &h->pub);
    return BSC_OK;
}

void bsc_rec_free(const rec_schema *sc, void *obj)
{
    if (!obj)
        return;
    holder *h = obj;
    free_children(sc, obj);
    json_decref(h->root);
    free(h);
}

bsc_status bsc_rec_read(const char *path, const rec_schema *sc, void *out)
{
    void *obj = NULL;
    json_t *root = NULL;
    set_ptr(out, 0, NULL);
    bsc_status s = load(path, &root);
    if (s == BSC_OK && (s = bsc_rec_new(sc, &obj)) == BSC_OK) {
        /* the strings read point into root: the record keeps it */
        ((holder *)obj)->root = root;
        s = read_object(path, "", sc, root, obj);
    } else {
        json_decref(root);
    }
    if (s != BSC_OK) {
        bsc_rec_free(sc, obj);
        return s;
    }
    set_ptr(out, 0, obj);
    return BSC_OK;
}

const char *bsc_json_library_version(void)
{
#if JANSSON_VERSION_HEX >= 0x020d00
    return jansson_version_str();   /* the library loaded, not the header */
#else
    return JANSSON_VERSION;
#endif
}
