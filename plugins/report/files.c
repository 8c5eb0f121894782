/* The result files the report read, and the page's list of all the others.
 *
 * A results directory holds more than the figures draw: per-layer tables,
 * checkpoints, and whatever a custom observer or analysis wrote. The page
 * lists every file under OUT/analyses and OUT/runs that nothing on it read,
 * so that such results are seen, not silently dropped. "Read" is recorded
 * as the figures and tables open their files (rep_csv), not matched
 * against a list of names: a file is other exactly when the page did not
 * use it, whatever the figures come to read.
 */
#include "report.h"

#include "batchscope/fsutil.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A results directory is shallow (OUT/runs/<run>/<file>). Links to
 * directories are not followed; the bound still keeps a tree mounted into
 * itself from recursing without end. */
#define MAX_DEPTH 8
/* Past this many files the list says how many more there are: a page of
 * thousands of rows helps nobody. */
#define MAX_LISTED 1000
/* Header columns shown for a CSV before the rest is cut to a count. */
#define MAX_COLUMNS 30

/* ------------------------------------------------------- path lists */

/* Appends rel, which l owns from now on (and frees when it cannot keep it). */
static bsc_status push(rep_paths *l, char *rel)
{
    if (rel && l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        char **grown = realloc(l->rel, cap * sizeof *grown);
        if (grown) {
            l->rel = grown;
            l->cap = cap;
        }
    }
    if (!rel || l->n == l->cap) {
        free(rel);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    l->rel[l->n++] = rel;
    return BSC_OK;
}

static int contains(const rep_paths *l, const char *rel)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->rel[i], rel) == 0)
            return 1;
    return 0;
}

static void clear(rep_paths *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->rel[i]);
    free(l->rel);
    memset(l, 0, sizeof *l);
}

void rep_paths_free(rep_paths *l)
{
    if (l)
        clear(l);
    free(l);
}

/* ------------------------------------------------------- what was read */

/* path relative to OUT: r->out and the separators after it removed. A path
 * not under r->out stays as it is (and so matches no file listed). */
static const char *relative(const rep *r, const char *path)
{
    size_t n = strlen(r->out);
    if (n == 0 || strncmp(path, r->out, n) != 0 ||
        (path[n] != '/' && r->out[n - 1] != '/'))
        return path;
    path += n;
    while (*path == '/')
        path++;
    return path;
}

bsc_status rep_note_read(const rep *r, const char *path)
{
    if (!r->reads)
        return bsc_fail(BSC_ERR_INTERNAL, "report: no record of the files read");
    const char *rel = relative(r, path);
    return contains(r->reads, rel) ? BSC_OK : push(r->reads, strdup(rel));
}

/* ------------------------------------------------------ what was not */

/* Adds the unread regular files under OUT/<dir>, recursively. Hidden names
 * are skipped as `ls` does: no run or result is named so (a run name never
 * starts with '.'), scratch is. A directory that cannot be opened (absent:
 * no analysis ran) has nothing to list. */
static bsc_status walk(const rep *r, const char *dir, int depth, rep_paths *out)
{
    char *full = rep_path(r, dir);
    if (!full)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    DIR *d = opendir(full);
    bsc_status s = BSC_OK;
    struct dirent *e;
    while (d && s == BSC_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *rel = bsc_strdup_printf("%s/%s", dir, e->d_name);
        char *path = rel ? rep_path(r, rel) : NULL;
        struct stat st;
        if (!rel || !path)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        else if (lstat(path, &st) != 0)
            ;  /* gone since readdir: nothing to list */
        else if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH)
            s = walk(r, rel, depth + 1, out);
        else if (S_ISLNK(st.st_mode) && (stat(path, &st) != 0 || !S_ISREG(st.st_mode)))
            ;  /* a link to a directory is not followed, a dangling one has nothing */
        else if (S_ISREG(st.st_mode) && !contains(r->reads, rel)) {
            /* (a link to a file counts as the file: st describes its target) */
            s = push(out, rel);
            rel = NULL;
        }
        free(rel);
        free(path);
    }
    if (d)
        closedir(d);
    free(full);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ------------------------------------------------------------ one row */

/* The shape of a CSV: its header line (malloc'ed, without the line end)
 * and its number of data records. Quoted fields may hold the separator and
 * line ends (RFC 4180), so records are counted outside quotes; blank lines
 * are no records. A file that cannot be opened gives *header NULL. */
static void csv_shape(const char *path, char **header, long long *rows)
{
    *header = NULL;
    *rows = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    if (len < 0) {
        /* an empty file: a CSV without even a header */
        free(line);
        *header = strdup("");
        fclose(f);
        return;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    *header = line;
    int quoted = 0, content = 0, c;
    while ((c = getc(f)) != EOF) {
        if (c == '"')
            quoted = !quoted;
        if (c == '\n' && !quoted) {
            *rows += content;
            content = 0;
        } else if (c != '\r') {
            content = 1;
        }
    }
    *rows += content;  /* a last line without its end */
    fclose(f);
}

/* The header's fields, unquoted, each as <code> (a name may hold a comma),
 * at most MAX_COLUMNS of them. */
static void write_columns(FILE *f, const char *header)
{
    size_t n = 0;
    char *field = malloc(strlen(header) + 1);
    if (!field)
        return;
    for (const char *p = header;; n++) {
        size_t k = 0;
        int quoted = 0;
        for (; *p && (quoted || *p != ','); p++) {
            if (*p == '"' && quoted && p[1] == '"')
                field[k++] = *++p;
            else if (*p == '"')
                quoted = !quoted;
            else
                field[k++] = *p;
        }
        field[k] = '\0';
        if (n < MAX_COLUMNS) {
            fputs(n ? " <code>" : "<code>", f);
            rep_esc(f, field);
            fputs("</code>", f);
        }
        if (!*p++)
            break;
    }
    if (n + 1 > MAX_COLUMNS)
        fprintf(f, " … (%zu columns)", n + 1);
    free(field);
}

/* "812 B", "3.4 KiB", ... */
static void human_size(long long bytes, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%lld B", bytes);
        return;
    }
    double v = (double)bytes;
    int u = -1;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* rel as a relative URL: every byte outside RFC 3986's unreserved set and
 * '/' percent-encoded, so that any file name makes a working link. */
static void write_href(FILE *f, const char *rel)
{
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
        if (plain)
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

static void write_row(FILE *f, const rep *r, const char *rel)
{
    char *path = rep_path(r, rel);
    struct stat st;
    char size[32] = "–";
    if (path && stat(path, &st) == 0)
        human_size((long long)st.st_size, size, sizeof size);
    fputs("<tr><td class=\"l\"><a href=\"", f);
    write_href(f, rel);
    fputs("\">", f);
    rep_esc(f, rel);
    fprintf(f, "</a></td><td>%s</td>", size);
    size_t len = strlen(rel);
    char *header = NULL;
    long long rows = 0;
    if (path && len > 4 && strcmp(rel + len - 4, ".csv") == 0)
        csv_shape(path, &header, &rows);
    if (!header)
        fputs("<td>–</td><td class=\"l\">–</td>", f);
    else {
        fprintf(f, "<td>%lld</td><td class=\"l\">", rows);
        if (*header)
            write_columns(f, header);
        else
            fputs("(empty file)", f);
        fputs("</td>", f);
    }
    fputs("</tr>\n", f);
    free(header);
    free(path);
}

/* ------------------------------------------------------------ section */

bsc_status rep_write_other_files(FILE *f, const rep *r)
{
    rep_paths l = {0};
    bsc_status s = walk(r, BSC_ANALYSES_DIR, 1, &l);
    if (s == BSC_OK)
        s = walk(r, BSC_RUNS_DIR, 1, &l);
    if (s == BSC_OK) {
        if (l.n)
            qsort(l.rel, l.n, sizeof *l.rel, cmp_str);
        fputs("<h2 id=\"other\">Other result files</h2>\n", f);
        if (l.n == 0)
            fputs("<p class=\"files\">None: the figures and tables above read every file "
                  "under " BSC_ANALYSES_DIR "/ and " BSC_RUNS_DIR "/.</p>\n", f);
    }
    if (s == BSC_OK && l.n) {
        fputs("<p class=\"files\">Files under " BSC_ANALYSES_DIR "/ and " BSC_RUNS_DIR
              "/ that no figure or table above read: the results of a custom observer or "
              "analysis, per-layer tables, checkpoints. Links are relative to this page; "
              "rows count a CSV's records after its header.</p>\n<table><tr>"
              "<th class=\"l\">file</th><th>size</th><th>rows</th>"
              "<th class=\"l\">columns</th></tr>\n", f);
        for (size_t i = 0; i < l.n && i < MAX_LISTED; i++)
            write_row(f, r, l.rel[i]);
        fputs("</table>\n", f);
        if (l.n > MAX_LISTED)
            fprintf(f, "<p class=\"files\">… and %zu more.</p>\n", l.n - MAX_LISTED);
    }
    clear(&l);
    return s;
}
