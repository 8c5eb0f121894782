/* Internal interface of the program cache (runtime/program_cache.c): what
 * device.c needs to tear a context down, and counters the tests read to tell a
 * memory hit from a disk hit from a fresh build. Not a public header. */
#ifndef BATCHSCOPE_PROGRAM_CACHE_INTERNAL_H
#define BATCHSCOPE_PROGRAM_CACHE_INTERNAL_H

#include "batchscope/device.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The on-disk entry format; part of every key, so bumping it orphans (and
 * never misreads) old entries. */
#define BSC_PROGRAM_CACHE_FORMAT 1u

typedef struct bsc_program_cache_stats {
    unsigned long memory_hits;   /* program found in the context's memory cache */
    unsigned long disk_hits;     /* program created from a verified disk entry */
    unsigned long disk_rejects;  /* entry present but discarded (corrupt, stale, unloadable) */
    unsigned long builds;        /* programs compiled from source */
    unsigned long disk_writes;   /* entries written (temp file + rename) */
    char dir[4096];              /* cache directory in use; "" when disk caching is off */
} bsc_program_cache_stats;

/* Copies the counters of ctx's cache (all zero before its first kernel). */
/* Exported (BSC_API) for the cache's tests and diagnostics, though not part
 * of the plugin SDK's headers. */
BSC_API void bsc_program_cache_get_stats(const bsc_context *ctx, bsc_program_cache_stats *out);

/* Releases every kernel and program the cache holds, then the cache. NULL is a no-op. */
void bsc_program_cache_free(bsc_program_cache *pc);

#ifdef __cplusplus
}
#endif
#endif
