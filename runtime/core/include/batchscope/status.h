/* batchscope: status codes and error messages.
 *
 * Every fallible function returns a bsc_status. The human-readable detail of
 * the most recent failure on the calling thread is kept in a thread-local
 * buffer (like errno, but with text): bsc_fail() sets it and returns the
 * status, so a failing path reads `return bsc_fail(BSC_ERR_IO, "%s: %s", ...)`.
 * Plugins report errors the same way; they never print or exit.
 */
#ifndef BATCHSCOPE_STATUS_H
#define BATCHSCOPE_STATUS_H

#include "batchscope/api.h"
#ifdef __cplusplus
extern "C" {
#endif

/* X(name, message) -- the single table every status comes from. */
#define BSC_STATUS_TABLE(X)                                              \
    X(OK,            "success")                                          \
    X(ERR_NOMEM,     "out of memory")                                    \
    X(ERR_IO,        "input/output error")                               \
    X(ERR_USAGE,     "bad usage")                                        \
    X(ERR_PARSE,     "parse error")                                      \
    X(ERR_INVALID,   "invalid value")                                    \
    X(ERR_NOT_FOUND, "not found")                                        \
    X(ERR_DATA,      "bad data file")                                    \
    X(ERR_NO_PLATFORM, "no OpenCL platform or device")                   \
    X(ERR_OPENCL,    "OpenCL error")                                     \
    X(ERR_BUILD,     "OpenCL program build failed")                      \
    X(ERR_CLBLAST,   "CLBlast error")                                    \
    X(ERR_PLUGIN,    "plugin error")                                     \
    X(ERR_ABI,       "plugin ABI mismatch")                              \
    X(ERR_UNSUPPORTED, "not supported")                                  \
    X(ERR_DIVERGED,  "training diverged")                                \
    X(ERR_INTERRUPTED, "interrupted")                                    \
    X(ERR_INTERNAL,  "internal error")                                   \
    X(ERR_BUSY,      "in use by another process")                        \
    X(ERR_PARTIAL,   "part of the study failed")

typedef enum bsc_status {
#define BSC_STATUS_ENUM(name, msg) BSC_##name,
    BSC_STATUS_TABLE(BSC_STATUS_ENUM)
#undef BSC_STATUS_ENUM
    BSC_STATUS_COUNT
} bsc_status;

/* "ERR_IO" etc.; "UNKNOWN" for a value outside the table. */
BSC_API const char *bsc_status_name(bsc_status s);
/* The table's fixed message for s ("input/output error"). */
BSC_API const char *bsc_status_str(bsc_status s);

/* Records a formatted message as this thread's last error and returns s.
 * The message should say what failed and where (path, offset, file:line:col). */
BSC_API bsc_status bsc_fail(bsc_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends context to the current last error ("loading plugin x.so: <old>")
 * and returns s unchanged. */
BSC_API bsc_status bsc_fail_context(bsc_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last error message on this thread; never NULL (empty after bsc_clear_error). */
BSC_API const char *bsc_last_error(void);
BSC_API void bsc_clear_error(void);

/* Exit status of the command for a status: 0 ok, 2 bad usage or input
 * found before any work started (usage, parse, invalid, not found, data,
 * no platform, plugin, ABI), 130 interrupted (128 + SIGINT, the shell's
 * convention, for Ctrl-C, SIGTERM and SIGHUP alike), 1 any other failure:
 * BSC_ERR_PARTIAL -- a study that ran, where a run, an analysis or the
 * report failed, whatever the kind of that failure -- and BSC_ERR_BUSY
 * included. */
BSC_API int bsc_status_exit_code(bsc_status s);

#ifdef __cplusplus
}
#endif
#endif
