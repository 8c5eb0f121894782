/* Shared between records.c (the tables of fields, the public API) and
 * records_json.c (the jansson binding that walks a table). Not public.
 *
 * A struct is described once, by a table of its fields (key, kind,
 * offset): reading, writing, resetting and freeing walk that table, so the
 * reader and the writer cannot disagree on a key, and keys are written in
 * the order of the table, which is the order the files have always had. */
#ifndef BATCHSCOPE_RECORDS_INTERNAL_H
#define BATCHSCOPE_RECORDS_INTERNAL_H

#include <stddef.h>
#include "batchscope/records.h"

enum rec_kind {
    K_STR,    /* const char * */
    K_INT,    /* int */
    K_LONG,   /* long */
    K_I64,    /* int64_t */
    K_U64,    /* uint64_t, stored as the JSON integer of the same bits */
    K_REAL,   /* double; null <-> NaN */
    K_OBJ,    /* a pointer to a struct of schema `sub` */
    K_LIST,   /* an array of n pointers to structs of schema `sub` */
    K_STRLIST /* an array of n const char * (the array owned, the strings not) */
};

enum {
    F_OPT = 1,      /* may be absent: then unset */
    F_RUNFILE = 2,  /* only in run.json, not in the manifest's runs */
    F_NONEMPTY = 4, /* a list left out of the file when it has no element */
};

typedef struct rec_schema rec_schema;

typedef struct rec_field {
    const char *key;
    enum rec_kind kind;
    unsigned flags;
    size_t off;              /* of the member */
    long long absent;        /* integers: the unset value, left out when writing */
    long long min;           /* integers: the smallest valid value */
    const rec_schema *sub;   /* K_OBJ, K_LIST */
    size_t n_off;            /* K_LIST: of the size_t count member */
} rec_field;

struct rec_schema {
    const rec_field *fields;
    size_t n;
    size_t size;             /* of the struct */
    unsigned skip;           /* fields with these flags are not in this file */
};

/* Below, `out` is the caller's `T **`: the struct is stored through it,
 * whatever T is (NULL on failure). */

/* A new top-level record (a bsc_run_record or bsc_manifest) of schema sc,
 * every field unset. */
bsc_status bsc_rec_new(const rec_schema *sc, void *out);
/* Reads path into a new top-level record of schema sc; its strings point
 * into the parsed document, which the record keeps. */
bsc_status bsc_rec_read(const char *path, const rec_schema *sc, void *out);
/* Writes obj (of schema sc) to path atomically. */
bsc_status bsc_rec_write(const char *path, const rec_schema *sc, const void *obj);
/* The text bsc_rec_write would write (malloc'ed); path names it in errors. */
bsc_status bsc_rec_render(const char *path, const rec_schema *sc, const void *obj, char **text);
/* Frees a record from bsc_rec_new or bsc_rec_read and all it owns; NULL is fine. */
void bsc_rec_free(const rec_schema *sc, void *obj);

/* Appends a new, unset element to obj's list field f. */
bsc_status bsc_rec_list_add(void *obj, const rec_field *f, void *out);
/* Appends a borrowed string to obj's string-list field f. */
bsc_status bsc_rec_strlist_add(void *obj, const rec_field *f, const char *text);
/* Replaces obj's object field f with a new, unset one. */
bsc_status bsc_rec_set_object(void *obj, const rec_field *f, void *out);

#endif
