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

/* Temporaries a signal must not leave behind. bsc_afile_open() registers
 * its temporary here and commit/abort unregister it; other writers of a
 * "<path>.tmp.<pid>" (the report's PLplot output) do the same by hand. A
 * handler of SIGINT/SIGTERM/SIGSEGV calls bsc_temporaries_unlink(), which
 * is async-signal-safe (unlink(2) over a fixed table). At most 64 are
 * tracked at once; beyond that a temporary is simply not tracked. */
BSC_API void bsc_temporary_track(const char *tmp_path);
BSC_API void bsc_temporary_untrack(const char *tmp_path);
BSC_API void bsc_temporaries_unlink(void);

/* Removes the files "<anything>.tmp.<digits>" directly in dir that a killed
 * writer left behind (SIGKILL cannot be caught). Only for a directory the
 * caller holds the lock of (bsc_dir_lock): then no other process writes
 * there and every such file is stale. *removed (may be NULL) counts them. A
 * missing dir is fine. */
BSC_API bsc_status bsc_remove_stale_temporaries(const char *dir, size_t *removed);

/* The lock of a results directory: an flock(2) on dir/.batchscope.lock, a
 * file that holds the holder's pid and stays in place. flock is released by
 * the kernel when its holder exits however it exits, so a lock file left by
 * a killed process is stale and simply taken over (*stale_pid, may be NULL,
 * then names the previous holder; 0 when the lock was free and clean). A
 * lock held by a live process fails at once with BSC_ERR_BUSY naming its
 * pid. dir must exist. */
typedef struct bsc_dir_lock {
    int fd;          /* -1: not held */
    char *path;
} bsc_dir_lock;
BSC_API bsc_status bsc_dir_lock_acquire(bsc_dir_lock *l, const char *dir, long *stale_pid);
/* Releases it (the file stays); an unheld lock is fine. */
BSC_API void bsc_dir_lock_release(bsc_dir_lock *l);

/* 1 when path names dir or something under it, compared lexically after
 * making both absolute (against the working directory) and resolving "."
 * and "..": "out/runs/../runs/bs8/final.safetensors" is within "out". */
BSC_API int bsc_path_within(const char *dir, const char *path);

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
