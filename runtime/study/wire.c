/* The scheduler's byte layout (wire.h). */
#include "wire.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batchscope/fsutil.h"

static void reserve(bsc_wbuf *b, size_t n)
{
    if (b->oom || b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    unsigned char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->data = p;
    b->cap = cap;
}

void bsc_put_u64(bsc_wbuf *b, uint64_t v)
{
    reserve(b, 8);
    if (b->oom)
        return;
    for (int i = 0; i < 8; i++)
        b->data[b->len++] = (unsigned char)(v >> (8 * i));
}

void bsc_put_f64(bsc_wbuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    bsc_put_u64(b, u);
}

void bsc_put_raw(bsc_wbuf *b, const void *p, size_t n)
{
    reserve(b, n);
    if (b->oom || !n)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void bsc_put_bytes(bsc_wbuf *b, const void *p, size_t n)
{
    bsc_put_u64(b, n);
    bsc_put_raw(b, p, n);
}

void bsc_put_str(bsc_wbuf *b, const char *s)
{
    /* With its NUL, so that the reader can point into the buffer. */
    bsc_put_bytes(b, s ? s : "", (s ? strlen(s) : 0) + 1);
}

bsc_status bsc_wbuf_status(const bsc_wbuf *b)
{
    return b->oom ? bsc_fail(BSC_ERR_NOMEM, "out of memory composing a message") : BSC_OK;
}

void bsc_wbuf_free(bsc_wbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

uint64_t bsc_get_u64(bsc_rbuf *r)
{
    if (r->bad || r->len - r->pos < 8) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->data[r->pos++] << (8 * i);
    return v;
}

double bsc_get_f64(bsc_rbuf *r)
{
    uint64_t u = bsc_get_u64(r);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

const void *bsc_get_bytes(bsc_rbuf *r, size_t *n)
{
    uint64_t len = bsc_get_u64(r);
    *n = 0;
    if (r->bad || r->len - r->pos < len) {
        r->bad = 1;
        return NULL;
    }
    const void *p = r->data + r->pos;
    r->pos += (size_t)len;
    *n = (size_t)len;
    return p;
}

const char *bsc_get_str(bsc_rbuf *r)
{
    size_t n;
    const char *s = bsc_get_bytes(r, &n);
    if (!s || n == 0 || s[n - 1] != '\0') {
        r->bad = 1;
        return "";
    }
    return s;
}

bsc_status bsc_rbuf_status(const bsc_rbuf *r, const char *what)
{
    return r->bad ? bsc_fail(BSC_ERR_DATA, "%s: truncated or malformed (%zu bytes)", what,
                             r->len)
                  : BSC_OK;
}

/* ---------------------------------------------------------------- trees */

static int is_temporary(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    return t && t[5] && strspn(t + 5, "0123456789") == strlen(t + 5);
}

/* Counts (count_only) or appends the files under root/sub. */
static bsc_status walk(bsc_wbuf *b, const char *root, const char *sub, int count_only,
                       uint64_t *count)
{
    char *dir = *sub ? bsc_strdup_printf("%s/%s", root, sub) : strdup(root);
    if (!dir)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    DIR *d = opendir(dir);
    bsc_status s = BSC_OK;
    if (!d) {
        free(dir);
        return BSC_OK;   /* nothing written there */
    }
    /* Sorted, so that a message (and a record) does not depend on the
     * order the file system lists them in. */
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    closedir(d);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (s != BSC_OK || !strcmp(nm, ".") || !strcmp(nm, "..") || is_temporary(nm))
            continue;
        char *rel = *sub ? bsc_strdup_printf("%s/%s", sub, nm) : strdup(nm);
        char *full = rel ? bsc_strdup_printf("%s/%s", root, rel) : NULL;
        struct stat sb;
        if (!rel || !full)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        else if (stat(full, &sb) != 0)
            ;   /* vanished: not ours to ship */
        else if (S_ISDIR(sb.st_mode))
            s = walk(b, root, rel, count_only, count);
        else if (S_ISREG(sb.st_mode)) {
            if (count_only) {
                (*count)++;
            } else {
                char *data = NULL;
                size_t len = 0;
                if ((s = bsc_read_file(full, &data, &len)) == BSC_OK) {
                    bsc_put_str(b, rel);
                    bsc_put_bytes(b, data, len);
                }
                free(data);
            }
        }
        free(rel);
        free(full);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(dir);
    return s;
}

bsc_status bsc_put_tree(bsc_wbuf *b, const char *root, const char *sub)
{
    uint64_t n = 0;
    bsc_status s = walk(b, root, sub, 1, &n);
    if (s != BSC_OK)
        return s;
    bsc_put_u64(b, n);
    return walk(b, root, sub, 0, &n);
}

bsc_status bsc_put_files(bsc_wbuf *b, const char *root, const char *const *rel, size_t n)
{
    bsc_status s = BSC_OK;
    uint64_t have = 0;
    for (int pass = 0; s == BSC_OK && pass < 2; pass++) {
        if (pass == 1)
            bsc_put_u64(b, have);
        for (size_t i = 0; s == BSC_OK && i < n; i++) {
            char *full = bsc_strdup_printf("%s/%s", root, rel[i]), *data = NULL;
            size_t len = 0;
            if (!full)
                s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
            else if (!bsc_path_exists(full))
                ;
            else if (pass == 0)
                have++;
            else if ((s = bsc_read_file(full, &data, &len)) == BSC_OK) {
                bsc_put_str(b, rel[i]);
                bsc_put_bytes(b, data, len);
            }
            free(data);
            free(full);
        }
    }
    return s;
}

/* A received path must stay below the root it is written under. */
static int safe_relative(const char *p)
{
    if (!*p || p[0] == '/')
        return 0;
    for (const char *c = p; *c;) {
        size_t l = strcspn(c, "/");
        if ((l == 2 && c[0] == '.' && c[1] == '.') || l == 0)
            return 0;
        c += l;
        if (*c == '/')
            c++;
    }
    return 1;
}

static bsc_status put_file(const char *root, const char *rel, const void *data, size_t len)
{
    char *full = bsc_strdup_printf("%s/%s", root, rel);
    char *dir = full ? strdup(full) : NULL;
    bsc_status s = full && dir ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK) {
        char *slash = strrchr(dir, '/');
        *slash = '\0';
        if ((s = bsc_mkdir_p(dir)) == BSC_OK)
            s = bsc_write_file_atomic(full, data, len);
    }
    free(full);
    free(dir);
    return s;
}

/* Appends "text\n" to a growing list (no length prefix). */
static void append_line(bsc_wbuf *b, const char *text)
{
    size_t n = strlen(text);
    reserve(b, n + 2);
    if (b->oom)
        return;
    memcpy(b->data + b->len, text, n);
    b->len += n;
    b->data[b->len++] = '\n';
    b->data[b->len] = '\0';
}

bsc_status bsc_get_tree(bsc_rbuf *r, const char *root, const char *last, char **names)
{
    uint64_t n = bsc_get_u64(r);
    const char *last_rel = NULL;
    const void *last_data = NULL;
    size_t last_len = 0;
    bsc_wbuf list = {0};
    bsc_status s = BSC_OK;
    if (names)
        *names = NULL;
    for (uint64_t i = 0; s == BSC_OK && i < n && !r->bad; i++) {
        const char *rel = bsc_get_str(r);
        size_t len;
        const void *data = bsc_get_bytes(r, &len);
        if (r->bad)
            break;
        if (!safe_relative(rel)) {
            s = bsc_fail(BSC_ERR_DATA, "a received file is named '%s': not a path below %s",
                         rel, root);
            break;
        }
        if (last && !strcmp(rel, last)) {
            last_rel = rel, last_data = data, last_len = len;
            continue;
        }
        if ((s = put_file(root, rel, data, len)) == BSC_OK)
            append_line(&list, rel);
    }
    if (s == BSC_OK && (s = bsc_rbuf_status(r, "received files")) == BSC_OK && last_rel &&
        (s = put_file(root, last_rel, last_data, last_len)) == BSC_OK)
        append_line(&list, last_rel);
    if (s == BSC_OK && (s = bsc_wbuf_status(&list)) == BSC_OK && names) {
        *names = list.data ? (char *)list.data : strdup("");
        list.data = NULL;
        if (!*names)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    bsc_wbuf_free(&list);
    return s;
}

void bsc_remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *c = bsc_strdup_printf("%s/%s", path, e->d_name);
            if (c)
                bsc_remove_tree(c);
            free(c);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}
