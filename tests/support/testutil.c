#include "testutil.h"

#include "batchscope/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    if (fwrite(b, 1, 4, f) != 4)
        abort();
}

void tu_write_idx(const char *images, const char *labels, size_t n, int rows, int cols,
                  const unsigned char *pix, const unsigned char *lab)
{
    size_t len = n * (size_t)rows * (size_t)cols;
    FILE *f = fopen(images, "wb");
    if (!f)
        abort();
    put_be32(f, 0x803);
    put_be32(f, (uint32_t)n);
    put_be32(f, (uint32_t)rows);
    put_be32(f, (uint32_t)cols);
    if (fwrite(pix, 1, len, f) != len || fclose(f) != 0)
        abort();
    if (!(f = fopen(labels, "wb")))
        abort();
    put_be32(f, 0x801);
    put_be32(f, (uint32_t)n);
    if (fwrite(lab, 1, n, f) != n || fclose(f) != 0)
        abort();
}

const char *tu_device(void)
{
    const char *d = getenv("BATCHSCOPE_TEST_DEVICE");
    return d && *d ? d : "auto";
}

bsc_status tu_context_open(bsc_context **ctx)
{
    return bsc_context_open(tu_device(), ctx);
}

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/bsc-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = strdup(tmpl);
    if (!d || !mkdtemp(d))
        abort();
    return d;
}

void tu_rm_rf(const char *dir)
{
    size_t n = strlen(dir) + 16;
    char *cmd = malloc(n);
    if (!cmd)
        return;
    snprintf(cmd, n, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    free(cmd);
}

char *tu_write(const char *dir, const char *name, const char *text)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path)
        abort();
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
    return path;
}

char *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int tu_run(const char *cmd, char **out)
{
    size_t n = strlen(cmd) + 16;
    char *full = malloc(n);
    snprintf(full, n, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
    if (!p)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    if (buf)
        buf[len] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int tu_same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = tu_read(a, &la), *y = tu_read(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

bsc_status tu_run_x_n(bsc_context *ctx, cl_kernel k, size_t n, float *host)
{
    int64_t d = (int64_t)n;
    bsc_shape shape = bsc_shape_make(1, &d);
    bsc_tensor t;
    cl_ulong nn = n;
    bsc_status st = bsc_tensor_alloc(ctx, BSC_F32, &shape, &t);
    if (st != BSC_OK)
        return st;
    bsc_karg args[] = {BSC_ARG(t.mem), BSC_ARG(nn)};
    st = bsc_launch(ctx, k, 2, args, 1, &n, NULL);
    if (st == BSC_OK)
        st = bsc_tensor_read(ctx, &t, host);
    bsc_tensor_free(&t);
    return st;
}

int tu_setup_tmpdir(void **state)
{
    *state = tu_tmpdir("test");
    return 0;
}

int tu_teardown_tmpdir(void **state)
{
    tu_rm_rf(*state);
    free(*state);
    *state = NULL;
    return 0;
}

const char *tu_path(const char *dir, const char *name)
{
    static char paths[8][1024];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

char *tu_scratch;

int tu_scratch_setup(const char *tag)
{
    tu_scratch = tu_tmpdir(tag);
    return 0;
}

int tu_scratch_teardown(void **state)
{
    (void)state;
    tu_rm_rf(tu_scratch);
    free(tu_scratch);
    tu_scratch = NULL;
    return 0;
}

const char *tu_scratch_path(const char *name)
{
    return tu_path(tu_scratch, name);
}

const char *tu_scratch_write(const char *name, const char *text)
{
    static char *path;
    free(path);
    path = tu_write(tu_scratch, name, text);
    return path;
}
