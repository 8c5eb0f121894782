/* Test support: temporary directories, files, running the command, and
 * running a small test kernel. */
#ifndef BSC_TEST_UTIL_H
#define BSC_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "batchscope/device.h"

/* In a cmocka test: fails it naming the call, its status and the library's
 * message unless the call returns BSC_OK. */
#define CHECK(call)                                                                  \
    do {                                                                             \
        bsc_status st_ = (call);                                                     \
        if (st_ != BSC_OK)                                                           \
            fail_msg("%s -> %s: %s", #call, bsc_status_name(st_), bsc_last_error()); \
    } while (0)

/* A fresh directory under $TMPDIR (or /tmp); the returned path is
 * malloc'ed (free it). Aborts on failure. */
char *tu_tmpdir(const char *tag);
/* Removes a directory tree (best effort; a test's temporary directory). */
void tu_rm_rf(const char *dir);
/* Writes text to dir/name and returns the malloc'ed full path. */
char *tu_write(const char *dir, const char *name, const char *text);
/* Runs `sh -c cmd` with stderr folded into stdout; returns the exit status
 * (or -1) and the output in *out (malloc'ed, may be NULL). */
int tu_run(const char *cmd, char **out);
/* Reads a whole file (malloc'ed, NUL-terminated) or NULL. */
char *tu_read(const char *path, size_t *len);
/* 1 when both files exist and have identical bytes. */
int tu_same_file(const char *a, const char *b);

/* Writes an IDX image file (n images of rows x cols bytes, pix) and an IDX
 * label file (n bytes) at the two paths. Aborts the test on failure. */
void tu_write_idx(const char *images, const char *labels, size_t n, int rows, int cols,
                  const unsigned char *pix, const unsigned char *lab);

/* The device selector the suite runs on: $BATCHSCOPE_TEST_DEVICE, or
 * "auto" (CI runs the suite once per OpenCL implementation this way). */
const char *tu_device(void);
/* bsc_context_open(tu_device()). */
bsc_status tu_context_open(bsc_context **ctx);

/* Runs k(__global float *x, const ulong n) over n work items into a fresh
 * buffer of n floats and reads it back into host (the shape of the tests'
 * own little kernels). */
bsc_status tu_run_x_n(bsc_context *ctx, cl_kernel k, size_t n, float *host);

/* cmocka setup and teardown (of a group or a test): a fresh temporary
 * directory in *state, removed afterwards; a test reads it as
 * (const char *)*state. */
int tu_setup_tmpdir(void **state);
int tu_teardown_tmpdir(void **state);
/* dir/name in a rotating static buffer (eight paths live at once). */
const char *tu_path(const char *dir, const char *name);

/* One temporary directory for a whole test program: the group setup
 * creates it (named after tag), every test reads it as tu_scratch, the
 * group teardown removes it. */
extern char *tu_scratch;
int tu_scratch_setup(const char *tag);
int tu_scratch_teardown(void **state);
/* tu_scratch/name, as tu_path. */
const char *tu_scratch_path(const char *name);
/* Writes text to tu_scratch/name; the path is valid until the next call. */
const char *tu_scratch_write(const char *name, const char *text);

#endif
