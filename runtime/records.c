/* The study's JSON records (run.json, manifest.json) through jansson.
 *
 * Each struct is described once, by a table of its fields (key, kind,
 * offset): reading, writing and resetting walk that table, so the reader
 * and the writer cannot disagree on a key, and the keys stay in the order
 * of the table, which is the order the files have always had. */
#include "batchscope/records.h"

#include "batchscope/fsutil.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum kind {
    K_STR,    /* const char * */
    K_INT,    /* int */
    K_LONG,   /* long */
    K_I64,    /* int64_t */
    K_U64,    /* uint64_t, stored as the JSON integer of the same bits */
    K_REAL,   /* double; null <-> NaN */
    K_OBJ,    /* a pointer to a struct of schema `sub` */
    K_LIST,   /* an array of n pointers to structs of schema `sub` */
};

enum {
    F_OPT = 1,      /* may be absent: then unset */
    F_RUNFILE = 2,  /* only in run.json, not in the manifest's runs */
};

typedef struct schema schema;

typedef struct field {
    const char *key;
    enum kind kind;
    unsigned flags;
    size_t off;          /* of the member */
    long long absent;    /* integers: the unset value, left out when writing */
    long long min;       /* integers: the smallest valid value */
    const schema *sub;   /* K_OBJ, K_LIST */
    size_t n_off;        /* K_LIST: of the size_t count member */
} field;

struct schema {
    const field *fields;
    size_t n;
    size_t size;         /* of the struct */
    unsigned skip;       /* fields with these flags are not in this file */
};

#define N(a) (sizeof(a) / sizeof *(a))
/* Designated, so that the members a row leaves out are zero without a warning. */
#define FIELD(k, t, fl, o) .key = (k), .kind = (t), .flags = (fl), .off = (o)

#define RUN(m) offsetof(bsc_run_record, m)
static const field run_fields[] = {
    {FIELD("name", K_STR, F_OPT, RUN(name))},
    {FIELD("batch_size", K_LONG, 0, RUN(batch_size)), .min = 1},
    {FIELD("status", K_STR, 0, RUN(status))},
    {FIELD("epochs_done", K_INT, 0, RUN(epochs_done))},
    {FIELD("diverged_epoch", K_INT, F_OPT, RUN(diverged_epoch))},
    {FIELD("diverged_step", K_LONG, F_OPT, RUN(diverged_step))},
    {FIELD("seconds", K_REAL, 0, RUN(seconds))},
    {FIELD("train_loss", K_REAL, F_RUNFILE, RUN(train_loss))},
    {FIELD("train_acc", K_REAL, 0, RUN(train_acc))},
    {FIELD("test_loss", K_REAL, F_RUNFILE, RUN(test_loss))},
    {FIELD("test_acc", K_REAL, 0, RUN(test_acc))},
};
static const schema run_schema = {run_fields, N(run_fields), sizeof(bsc_run_record), 0};
/* The manifest's runs: the same record without the losses. */
static const schema manifest_run_schema = {run_fields, N(run_fields), sizeof(bsc_run_record),
                                           F_RUNFILE};

#define DEV(m) offsetof(bsc_manifest_device, m)
static const field device_fields[] = {
    {FIELD("index", K_LONG, F_OPT, DEV(index)), .absent = -1},
    {FIELD("platform", K_STR, F_OPT, DEV(platform))},
    {FIELD("vendor", K_STR, F_OPT, DEV(vendor))},
    {FIELD("name", K_STR, F_OPT, DEV(name))},
    {FIELD("type", K_STR, F_OPT, DEV(type))},
    {FIELD("driver_version", K_STR, F_OPT, DEV(driver_version))},
    {FIELD("device_version", K_STR, F_OPT, DEV(device_version))},
    {FIELD("opencl_c_version", K_STR, F_OPT, DEV(opencl_c_version))},
    {FIELD("compute_units", K_LONG, F_OPT, DEV(compute_units)), .absent = -1},
    {FIELD("global_mem", K_I64, F_OPT, DEV(global_mem)), .absent = -1},
};
static const schema device_schema = {device_fields, N(device_fields),
                                     sizeof(bsc_manifest_device), 0};

#define PLUG(m) offsetof(bsc_manifest_plugin, m)
static const field plugin_fields[] = {
    {FIELD("name", K_STR, F_OPT, PLUG(name))},
    {FIELD("version", K_STR, F_OPT, PLUG(version))},
    {FIELD("path", K_STR, F_OPT, PLUG(path))},
};
static const schema plugin_schema = {plugin_fields, N(plugin_fields),
                                     sizeof(bsc_manifest_plugin), 0};

#define DATA(m) offsetof(bsc_manifest_dataset, m)
static const field dataset_fields[] = {
    {FIELD("name", K_STR, F_OPT, DATA(name))},
    {FIELD("train", K_I64, F_OPT, DATA(train)), .absent = -1},
    {FIELD("test", K_I64, F_OPT, DATA(test)), .absent = -1},
    {FIELD("validation", K_I64, F_OPT, DATA(validation)), .absent = -1},
};
static const schema dataset_schema = {dataset_fields, N(dataset_fields),
                                      sizeof(bsc_manifest_dataset), 0};

#define MAN(m) offsetof(bsc_manifest, m)
static const field manifest_fields[] = {
    {FIELD("batchscope_version", K_STR, F_OPT, MAN(batchscope_version))},
    {FIELD("plugin_abi", K_STR, F_OPT, MAN(plugin_abi))},
    {FIELD("pipeline", K_STR, F_OPT, MAN(pipeline))},
    {FIELD("name", K_STR, 0, MAN(name))},
    {FIELD("seed", K_U64, 0, MAN(seed))},
    {FIELD("status", K_STR, 0, MAN(status))},
    {FIELD("error", K_STR, F_OPT, MAN(error))},
    {FIELD("started", K_STR, F_OPT, MAN(started))},
    {FIELD("updated", K_STR, F_OPT, MAN(updated))},
    {FIELD("seconds", K_REAL, F_OPT, MAN(seconds))},
    {FIELD("device", K_OBJ, F_OPT, MAN(device)), .sub = &device_schema},
    {FIELD("plugins", K_LIST, F_OPT, MAN(plugins)), .sub = &plugin_schema, .n_off = MAN(n_plugins)},
    {FIELD("parameters", K_I64, F_OPT, MAN(parameters)), .absent = -1},
    {FIELD("state", K_I64, F_OPT, MAN(state)), .absent = -1},
    {FIELD("dataset", K_OBJ, F_OPT, MAN(dataset)), .sub = &dataset_schema},
    {FIELD("runs", K_LIST, 0, MAN(runs)), .sub = &manifest_run_schema, .n_off = MAN(n_runs)},
};
static const schema manifest_schema = {manifest_fields, N(manifest_fields),
                                       sizeof(bsc_manifest), 0};

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

static size_t *count_of(void *obj, const field *f)
{
    return (size_t *)((char *)obj + f->n_off);
}

static size_t count(const void *obj, const field *f)
{
    return *(const size_t *)((const char *)obj + f->n_off);
}

static long long get_int(const void *obj, const field *f)
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

static void set_int(void *obj, const field *f, long long v)
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

static long long int_max(enum kind k)
{
    return k == K_INT ? INT_MAX : k == K_LONG ? LONG_MAX : LLONG_MAX;
}

static int in_file(const schema *sc, const field *f)
{
    return !(f->flags & sc->skip);
}

/* --------------------------------------------------- allocation, reset */

static void reset(const schema *sc, void *obj)
{
    for (size_t i = 0; i < sc->n; i++) {
        const field *f = &sc->fields[i];
        switch (f->kind) {
        case K_STR:
        case K_OBJ:
            set_ptr(obj, f->off, NULL);
            break;
        case K_LIST:
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
static void *node_new(const schema *sc)
{
    void *obj = calloc(1, sc->size);
    if (obj)
        reset(sc, obj);
    return obj;
}

static void free_children(const schema *sc, void *obj);

/* Frees a struct from node_new and everything it owns; NULL is fine. */
static void node_free(const schema *sc, void *obj)
{
    if (!obj)
        return;
    free_children(sc, obj);
    free(obj);
}

/* Frees what obj owns (its objects and lists), not obj itself. */
static void free_children(const schema *sc, void *obj)
{
    for (size_t i = 0; i < sc->n; i++) {
        const field *f = &sc->fields[i];
        if (f->kind == K_OBJ) {
            node_free(f->sub, get_ptr(obj, f->off));
        } else if (f->kind == K_LIST) {
            void *arr = get_ptr(obj, f->off);
            for (size_t k = 0; k < count(obj, f); k++)
                node_free(f->sub, get_ptr(arr, k * sizeof arr));
            free(arr);
        }
    }
}

/* Appends a new element to the list field f of obj; out is the caller's
 * `T **` (set_ptr stores through it whatever T is). */
static bsc_status list_add(void *obj, const field *f, void *out)
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

static const char *kind_name(enum kind k)
{
    switch (k) {
    case K_STR: return "a string";
    case K_REAL: return "a number or null";
    case K_OBJ: return "an object";
    case K_LIST: return "an array of objects";
    default: return "an integer";
    }
}

/* where is "" at the top level, else "runs[1]: " or "device: ". */
static bsc_status read_object(const char *path, const char *where, const schema *sc,
                              json_t *in, void *obj);

static bsc_status wrong_type(const char *path, const char *where, const field *f,
                             const json_t *v)
{
    return bsc_fail(BSC_ERR_DATA, "%s: %skey \"%s\" is %s, not %s", path, where, f->key,
                    type_name(v), kind_name(f->kind));
}

static bsc_status read_list(const char *path, const char *where, const field *f, json_t *v,
                            void *obj)
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
        if ((s = list_add(obj, f, &el)) == BSC_OK)
            s = read_object(path, at, f->sub, item, el);
    }
    return s;
}

static bsc_status read_field(const char *path, const char *where, const field *f, json_t *v,
                             void *obj)
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

static bsc_status read_object(const char *path, const char *where, const schema *sc,
                              json_t *in, void *obj)
{
    for (size_t i = 0; i < sc->n; i++) {
        const field *f = &sc->fields[i];
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

static bsc_status build_object(const char *path, const char *where, const schema *sc,
                               const void *obj, json_t **out);

static bsc_status build_list(const char *path, const char *where, const field *f,
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
static bsc_status build_field(const char *path, const char *where, const field *f,
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
        return build_list(path, where, f, obj, out);
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

static bsc_status build_object(const char *path, const char *where, const schema *sc,
                               const void *obj, json_t **out)
{
    json_t *o = json_object();
    bsc_status s = o ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == BSC_OK && i < sc->n; i++) {
        const field *f = &sc->fields[i];
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

static bsc_status write_record(const char *path, const schema *sc, const void *obj)
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

/* ---------------------------------------------------- top-level records */

/* out, here and below, is the caller's `T **`. */
static bsc_status record_new(const schema *sc, void *out)
{
    holder *h = calloc(1, sizeof *h);
    set_ptr(out, 0, h ? &h->pub : NULL);
    if (!h)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    reset(sc, &h->pub);
    return BSC_OK;
}

static void record_free(const schema *sc, void *obj)
{
    if (!obj)
        return;
    holder *h = obj;
    free_children(sc, obj);
    json_decref(h->root);
    free(h);
}

static bsc_status record_read(const char *path, const schema *sc, void *out)
{
    void *obj = NULL;
    json_t *root = NULL;
    set_ptr(out, 0, NULL);
    bsc_status s = load(path, &root);
    if (s == BSC_OK && (s = record_new(sc, &obj)) == BSC_OK) {
        /* the strings read point into root: the record keeps it */
        ((holder *)obj)->root = root;
        s = read_object(path, "", sc, root, obj);
    } else {
        json_decref(root);
    }
    if (s != BSC_OK) {
        record_free(sc, obj);
        return s;
    }
    set_ptr(out, 0, obj);
    return BSC_OK;
}

/* ------------------------------------------------------------ run.json */

bsc_status bsc_run_record_new(bsc_run_record **out)
{
    return record_new(&run_schema, out);
}

bsc_status bsc_run_record_read(const char *path, bsc_run_record **out)
{
    return record_read(path, &run_schema, out);
}

bsc_status bsc_run_record_write(const char *path, const bsc_run_record *r)
{
    return write_record(path, &run_schema, r);
}

void bsc_run_record_free(bsc_run_record *r)
{
    record_free(&run_schema, r);
}

/* -------------------------------------------------------- manifest.json */

static const field *manifest_field(const char *key)
{
    for (size_t i = 0; i < N(manifest_fields); i++)
        if (strcmp(manifest_fields[i].key, key) == 0)
            return &manifest_fields[i];
    return NULL;
}

bsc_status bsc_manifest_new(bsc_manifest **out)
{
    return record_new(&manifest_schema, out);
}

bsc_status bsc_manifest_add_plugin(bsc_manifest *m, bsc_manifest_plugin **out)
{
    return list_add(m, manifest_field("plugins"), out);
}

bsc_status bsc_manifest_add_run(bsc_manifest *m, bsc_run_record **out)
{
    return list_add(m, manifest_field("runs"), out);
}

/* Replaces the object field `key` of m with a new, unset one. */
static bsc_status set_object(bsc_manifest *m, const char *key, void *out)
{
    const field *f = manifest_field(key);
    void *old = get_ptr(m, f->off);
    void *sub = node_new(f->sub);
    set_ptr(out, 0, sub);
    if (!sub)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    node_free(f->sub, old);
    set_ptr(m, f->off, sub);
    return BSC_OK;
}

bsc_status bsc_manifest_set_device(bsc_manifest *m, bsc_manifest_device **out)
{
    return set_object(m, "device", out);
}

bsc_status bsc_manifest_set_dataset(bsc_manifest *m, bsc_manifest_dataset **out)
{
    return set_object(m, "dataset", out);
}

bsc_status bsc_manifest_read(const char *path, bsc_manifest **out)
{
    return record_read(path, &manifest_schema, out);
}

bsc_status bsc_manifest_write(const char *path, const bsc_manifest *m)
{
    return write_record(path, &manifest_schema, m);
}

void bsc_manifest_free(bsc_manifest *m)
{
    record_free(&manifest_schema, m);
}
