/* File-system helpers: mkdir -p, atomic writes, whole-file reads. */
#include "batchscope/fsutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bsc_status bsc_mkdir_p(const char *path)
{
    char *buf = strdup(path);
    if (!buf)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t len = strlen(buf);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            bsc_status s = bsc_fail(BSC_ERR_IO, "cannot create directory %s: %s", buf,
                                    strerror(errno));
            free(buf);
            return s;
        }
        buf[i] = saved;
    }
    free(buf);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return bsc_fail(BSC_ERR_IO, "%s exists and is not a directory", path);
    return BSC_OK;
}

int bsc_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

char *bsc_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

bsc_status bsc_afile_open(bsc_afile *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->path = strdup(path);
    a->tmp = bsc_strdup_printf("%s.tmp.%ld", path, (long)getpid());
    if (!a->path || !a->tmp) {
        bsc_afile_abort(a);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        bsc_status s = bsc_fail(BSC_ERR_IO, "cannot write %s: %s", a->tmp, strerror(errno));
        bsc_afile_abort(a);
        return s;
    }
    bsc_temporary_track(a->tmp);
    return BSC_OK;
}

bsc_status bsc_afile_commit(bsc_afile *a)
{
    bsc_status s = BSC_OK;
    int bad = ferror(a->f);
    if (fclose(a->f) != 0 || bad)
        s = bsc_fail(BSC_ERR_IO, "writing %s failed: %s", a->tmp, strerror(errno));
    a->f = NULL;
    if (s == BSC_OK && rename(a->tmp, a->path) != 0)
        s = bsc_fail(BSC_ERR_IO, "cannot rename %s to %s: %s", a->tmp, a->path,
                     strerror(errno));
    if (s != BSC_OK)
        remove(a->tmp);
    bsc_temporary_untrack(a->tmp);
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    return s;
}

void bsc_afile_abort(bsc_afile *a)
{
    if (a->f) {
        fclose(a->f);
        a->f = NULL;
    }
    if (a->tmp) {
        remove(a->tmp);
        bsc_temporary_untrack(a->tmp);
    }
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
}

bsc_status bsc_write_file_atomic(const char *path, const void *data, size_t len)
{
    bsc_afile a;
    bsc_status s = bsc_afile_open(&a, path);
    if (s != BSC_OK)
        return s;
    if (len && fwrite(data, 1, len, a.f) != len) {
        s = bsc_fail(BSC_ERR_IO, "writing %s failed: %s", a.tmp, strerror(errno));
        bsc_afile_abort(&a);
        return s;
    }
    return bsc_afile_commit(&a);
}

bsc_status bsc_read_file(const char *path, char **data, size_t *len)
{
    *data = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return bsc_fail(BSC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    bsc_status s = BSC_OK;
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (!buf)
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory reading %s", path);
    else if (ferror(f)) {
        s = bsc_fail(BSC_ERR_IO, "reading %s failed", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (s != BSC_OK)
        return s;
    buf[n] = '\0';
    *data = buf;
    if (len)
        *len = n;
    return BSC_OK;
}

double bsc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void bsc_utc_timestamp(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
