/* Status table and the thread-local last-error message. */
#include "batchscope/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BSC_ERRMSG_MAX 8192

static _Thread_local char last_error[BSC_ERRMSG_MAX];

const char *bsc_status_name(bsc_status s)
{
    switch (s) {
#define NAME_CASE(name, msg) case BSC_##name: return #name;
        BSC_STATUS_TABLE(NAME_CASE)
#undef NAME_CASE
    default: return "UNKNOWN";
    }
}

const char *bsc_status_str(bsc_status s)
{
    switch (s) {
#define STR_CASE(name, msg) case BSC_##name: return msg;
        BSC_STATUS_TABLE(STR_CASE)
#undef STR_CASE
    default: return "unknown status";
    }
}

bsc_status bsc_fail(bsc_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

bsc_status bsc_fail_context(bsc_status s, const char *fmt, ...)
{
    char prefix[1024];
    char old[BSC_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* prefix + ": " + old, cut at the buffer's end (a long message keeps its
     * context rather than its tail). */
    const char *tail = old[0] ? old : bsc_status_str(s);
    size_t n = strlen(prefix), cap = sizeof last_error - 1;
    if (n > cap)
        n = cap;
    memcpy(last_error, prefix, n);
    size_t pos = n;
    for (const char *sep = ": "; *sep && pos < cap; sep++)
        last_error[pos++] = *sep;
    size_t t = strlen(tail);
    if (t > cap - pos)
        t = cap - pos;
    memcpy(last_error + pos, tail, t);
    last_error[pos + t] = '\0';
    return s;
}

const char *bsc_last_error(void)
{
    return last_error;
}

void bsc_clear_error(void)
{
    last_error[0] = '\0';
}

int bsc_status_exit_code(bsc_status s)
{
    switch (s) {
    case BSC_OK: return 0;
    case BSC_ERR_INTERRUPTED: return 130;
    case BSC_ERR_USAGE:
    case BSC_ERR_PARSE:
    case BSC_ERR_INVALID:
    case BSC_ERR_NOT_FOUND:
    case BSC_ERR_DATA:
    case BSC_ERR_NO_PLATFORM:
    case BSC_ERR_ABI:
    case BSC_ERR_PLUGIN:
        return 2;
    default:
        return 1;
    }
}
