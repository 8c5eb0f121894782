/* Internal: the byte layout of the scheduler's messages and unit records.
 *
 * A message is a sequence of fields, each written by a put_ and read back
 * by the matching get_ in the same order: integers as 8 little-endian
 * bytes, reals as their IEEE-754 bits (so a loss crosses ranks bit for
 * bit), strings and byte blocks with their length first. A reader never
 * reads past the end: a short or malformed message makes every later get_
 * fail and bsc_wire_status() say where. Ranks of one study run the same
 * build, so no versioning is needed between them; unit records on disk
 * carry their own header (units.c). */
#ifndef BATCHSCOPE_WIRE_H
#define BATCHSCOPE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "batchscope/status.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

typedef struct bsc_wbuf {
    unsigned char *data;
    size_t len, cap;
    int oom;             /* a put failed: the buffer is incomplete */
} bsc_wbuf;

BSC_INTERNAL void bsc_put_u64(bsc_wbuf *b, uint64_t v);
BSC_INTERNAL void bsc_put_f64(bsc_wbuf *b, double v);
BSC_INTERNAL void bsc_put_str(bsc_wbuf *b, const char *s);   /* NULL reads back as "" */
BSC_INTERNAL void bsc_put_bytes(bsc_wbuf *b, const void *p, size_t n);
/* Appends n bytes as they are, without a length (another message's body). */
BSC_INTERNAL void bsc_put_raw(bsc_wbuf *b, const void *p, size_t n);
/* BSC_OK, or BSC_ERR_NOMEM when a put ran out of memory. */
BSC_INTERNAL bsc_status bsc_wbuf_status(const bsc_wbuf *b);
BSC_INTERNAL void bsc_wbuf_free(bsc_wbuf *b);

typedef struct bsc_rbuf {
    const unsigned char *data;
    size_t len, pos;
    int bad;             /* a get ran past the end */
} bsc_rbuf;

BSC_INTERNAL uint64_t bsc_get_u64(bsc_rbuf *r);
BSC_INTERNAL double bsc_get_f64(bsc_rbuf *r);
/* Points into the buffer: valid while it is (NUL-terminated by the put). */
BSC_INTERNAL const char *bsc_get_str(bsc_rbuf *r);
BSC_INTERNAL const void *bsc_get_bytes(bsc_rbuf *r, size_t *n);
/* BSC_OK, or BSC_ERR_DATA naming what (a message, a record) was short. */
BSC_INTERNAL bsc_status bsc_rbuf_status(const bsc_rbuf *r, const char *what);

/* ---- files in a message: a run's directory, an analysis' outputs */

/* Appends every regular file under root/sub (recursively; sub may be "")
 * as (path relative to root, bytes); the count goes first. Files whose
 * name ends in ".tmp.<pid>" (another writer's temporaries) are skipped. */
BSC_INTERNAL bsc_status bsc_put_tree(bsc_wbuf *b, const char *root, const char *sub);

/* The same block from a list of paths relative to root; paths that do not
 * exist are left out. */
BSC_INTERNAL bsc_status bsc_put_files(bsc_wbuf *b, const char *root, const char *const *rel,
                                      size_t n);

/* Writes the files of a bsc_put_tree block under root, each atomically,
 * creating directories; `last` (may be NULL), when present among them, is
 * written after all the others (a completion record such as run.json).
 * names (optional) receives the relative paths, malloc'ed, one per line. */
BSC_INTERNAL bsc_status bsc_get_tree(bsc_rbuf *r, const char *root, const char *last,
                                     char **names);

/* rm -rf of a scratch directory (best effort). */
BSC_INTERNAL void bsc_remove_tree(const char *path);

#endif
