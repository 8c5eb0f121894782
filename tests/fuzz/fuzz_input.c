/* In-memory input files and a scratch directory for the fuzz targets. */
#define _GNU_SOURCE
#include "fuzz_input.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int fds[4] = {-1, -1, -1, -1};
static char paths[4][64];
static char tmpdir[256];

const char *fuzz_file(int slot, const uint8_t *data, size_t size)
{
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("bsc-fuzz", 0);
        if (fds[slot] < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0 ||
        (size && pwrite(fds[slot], data, size, 0) != (ssize_t)size)) {
        perror("writing the fuzz input");
        abort();
    }
    return paths[slot];
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..") != 0)) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

const char *fuzz_tmp_path(const char *name)
{
    static char p[512];
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/bsc-fuzz-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(remove_tmpdir);
    }
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}
