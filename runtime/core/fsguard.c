/* What a process leaves in a results directory when it stops abruptly:
 * temporaries (tracked so a signal handler can remove them, swept when the
 * directory's lock is next taken) and the lock itself (flock, which the
 * kernel drops with its holder). */
#include "batchscope/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------- temporaries */

#define MAX_TRACKED 64
#define TRACKED_LEN 4096

/* A slot is in use while `used` is 1; the handler reads only slots whose
 * flag it sees set, and the path is written before the flag (and the flag
 * cleared before the slot is reused), so it never reads a half-written
 * name. One writer thread at a time is the library's rule for a study; the
 * lock keeps two threads of a test off one slot. */
static struct {
    volatile sig_atomic_t used;
    char path[TRACKED_LEN];
} tracked[MAX_TRACKED];
static volatile sig_atomic_t tracking_lock;

void bsc_temporary_track(const char *tmp_path)
{
    size_t len = strlen(tmp_path);
    if (len >= TRACKED_LEN)
        return;
    while (__atomic_test_and_set(&tracking_lock, __ATOMIC_ACQUIRE))
        ;
    for (int i = 0; i < MAX_TRACKED; i++)
        if (!tracked[i].used) {
            memcpy(tracked[i].path, tmp_path, len + 1);
            __atomic_store_n(&tracked[i].used, 1, __ATOMIC_RELEASE);
            break;
        }
    __atomic_clear(&tracking_lock, __ATOMIC_RELEASE);
}

void bsc_temporary_untrack(const char *tmp_path)
{
    while (__atomic_test_and_set(&tracking_lock, __ATOMIC_ACQUIRE))
        ;
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i].used && strcmp(tracked[i].path, tmp_path) == 0) {
            __atomic_store_n(&tracked[i].used, 0, __ATOMIC_RELEASE);
            break;
        }
    __atomic_clear(&tracking_lock, __ATOMIC_RELEASE);
}

void bsc_temporaries_unlink(void)
{
    /* No lock: a handler may interrupt the very thread that holds it. */
    for (int i = 0; i < MAX_TRACKED; i++)
        if (__atomic_load_n(&tracked[i].used, __ATOMIC_ACQUIRE))
            unlink(tracked[i].path);
}

/* "<name>.tmp.<digits>", the form bsc_afile_open and the report use. */
static int is_temporary(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name)
        return 0;
    for (const char *p; t; t = strstr(t + 1, ".tmp.")) {
        for (p = t + 5; *p >= '0' && *p <= '9'; p++)
            ;
        if (!*p && p > t + 5)
            return 1;
    }
    return 0;
}

bsc_status bsc_remove_stale_temporaries(const char *dir, size_t *removed)
{
    if (removed)
        *removed = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR
                   ? BSC_OK
                   : bsc_fail(BSC_ERR_IO, "%s: cannot read the directory: %s", dir,
                              strerror(errno));
    bsc_status s = BSC_OK;
    struct dirent *e;
    while (s == BSC_OK && (e = readdir(d))) {
        if (!is_temporary(e->d_name))
            continue;
        char *p = bsc_strdup_printf("%s/%s", dir, e->d_name);
        if (!p)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        else if (unlink(p) == 0 && removed)
            ++*removed;
        free(p);
    }
    closedir(d);
    return s;
}

/* ------------------------------------------------------------------ lock */

static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

bsc_status bsc_dir_lock_acquire(bsc_dir_lock *l, const char *dir, long *stale_pid)
{
    l->fd = -1;
    l->path = bsc_strdup_printf("%s/.batchscope.lock", dir);
    if (stale_pid)
        *stale_pid = 0;
    if (!l->path)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    bsc_status s = BSC_OK;
    int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        s = bsc_fail(BSC_ERR_IO, "cannot open the lock file %s: %s", l->path, strerror(errno));
        goto fail;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        long pid = read_pid(fd);
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            char who[48] = "another process";
            if (pid > 0)
                snprintf(who, sizeof who, "another batchscope (pid %ld)", pid);
            s = bsc_fail(BSC_ERR_BUSY, "%s is in use by %s: wait for it to finish, or choose "
                         "another directory", dir, who);
        } else {
            s = bsc_fail(BSC_ERR_IO, "cannot lock %s: %s", l->path, strerror(e));
        }
        goto fail;
    }
    /* The file stays between holders, so the pid in it is the last
     * holder's: one that no longer holds the lock died without cleaning
     * up, or ended normally (ours is written below, and kept). */
    long prev = read_pid(fd);
    if (prev > 0 && prev != (long)getpid() && stale_pid && kill((pid_t)prev, 0) != 0 &&
        errno == ESRCH)
        *stale_pid = prev;
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        s = bsc_fail(BSC_ERR_IO, "cannot write the lock file %s: %s", l->path, strerror(errno));
        close(fd);
        goto fail;
    }
    l->fd = fd;
    return BSC_OK;
fail:
    free(l->path);
    l->path = NULL;
    return s;
}

void bsc_dir_lock_release(bsc_dir_lock *l)
{
    if (l->fd >= 0) {
        /* Only the pid goes: the file itself stays, so that a process
         * that opened it meanwhile still locks the file others will open. */
        if (ftruncate(l->fd, 0) != 0) {
            /* nothing to do: the lock is released either way */
        }
        close(l->fd);
    }
    l->fd = -1;
    free(l->path);
    l->path = NULL;
}

/* ------------------------------------------------------------------ paths */

/* Absolute and normalized ("." and ".." resolved, no double slashes). */
static char *normalize(const char *path)
{
    char cwd[PATH_MAX];
    char *abs = path[0] == '/' ? strdup(path)
                               : (getcwd(cwd, sizeof cwd) ? bsc_strdup_printf("%s/%s", cwd, path)
                                                          : NULL);
    if (!abs)
        return NULL;
    char *out = malloc(strlen(abs) + 2);
    if (!out) {
        free(abs);
        return NULL;
    }
    size_t n = 0;
    char *save = NULL;
    for (char *seg = strtok_r(abs, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (!strcmp(seg, "."))
            continue;
        if (!strcmp(seg, "..")) {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
            continue;
        }
        out[n++] = '/';
        size_t l = strlen(seg);
        memcpy(out + n, seg, l);
        n += l;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    free(abs);
    return out;
}

int bsc_path_within(const char *dir, const char *path)
{
    char *d = normalize(dir), *p = normalize(path);
    size_t dl = d ? strlen(d) : 0;
    int in = d && p && strncmp(d, p, dl) == 0 &&
             (p[dl] == '\0' || p[dl] == '/' || (dl == 1 && d[0] == '/'));
    free(d);
    free(p);
    return in;
}
