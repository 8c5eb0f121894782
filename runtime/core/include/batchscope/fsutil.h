/* batchscope: small file-system helpers shared by every writer. */
#ifndef BATCHSCOPE_FSUTIL_H
#define BATCHSCOPE_FSUTIL_H

#include "batchscope/api.h"
#include <stddef.h>
#include <stdio.h>
#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* mkdir -p; existing directories are fine. */
BSC_API bsc_status bsc_mkdir_p(const char *path);
/* 1 when path exists (any type). */
BSC_API int bsc_path_exists(const char *path);

/* An atomic writer: bsc_afile_open() opens "<path>.tmp.<pid>" for writing;
 * bsc_afile_commit() flushes, closes and renames it over path;
 * bsc_afile_abort() closes and removes it. A crash leaves at most a stray
 * temporary, never half a `path`. */
typedef struct bsc_afile {
    FILE *f;
    char *path;
    char *tmp;
} bsc_afile;
BSC_API bsc_status bsc_afile_open(bsc_afile *a, const char *path);
BSC_API bsc_status bsc_afile_commit(bsc_afile *a);
BSC_API void bsc_afile_abort(bsc_afile *a);

/* Writes len bytes to path atomically. */
BSC_API bsc_status bsc_write_file_atomic(const char *path, const void *data, size_t len);
/* Reads a whole file; *data is malloc'ed and NUL-terminated. */
BSC_API bsc_status bsc_read_file(const char *path, char **data, size_t *len);

/* snprintf into a malloc'ed string; NULL on failure. */
BSC_API char *bsc_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall-clock seconds (monotonic). */
BSC_API double bsc_now(void);
/* "2026-11-25T01:02:03Z" */
BSC_API void bsc_utc_timestamp(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
