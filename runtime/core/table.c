/* Tidy tables and their CSV form. */
#define _GNU_SOURCE /* copy_file_range */
#include "batchscope/table.h"
#include "batchscope/fsutil.h"
#include "batchscope/hashset.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct cell {
    int set;      /* 0 empty, 1 number, 2 string */
    double num;
    char *str;
} cell;

/* The cells live in one block, row after row (cap_cols cells each), not
 * one allocation per row: an observer's table grows by thousands of rows
 * an epoch, and that many small blocks kept alive on the heap through a
 * training run slowed the steps between the epochs down (update_norms'
 * tables: 10-40% on the quick start at batch 32 over 40 epochs). */
struct bsc_table {
    char **cols;
    size_t n_cols, cap_cols;
    cell *cells;  /* [cap_rows * cap_cols] */
    size_t n_rows, cap_rows;
};

static cell *row_at(const bsc_table *t, size_t r)
{
    return t->cells + r * t->cap_cols;
}

bsc_status bsc_table_new(bsc_table **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
}

void bsc_table_free(bsc_table *t)
{
    if (!t)
        return;
    for (size_t r = 0; r < t->n_rows; r++)
        for (size_t c = 0; c < t->n_cols; c++)
            free(row_at(t, r)[c].str);
    for (size_t c = 0; c < t->n_cols; c++)
        free(t->cols[c]);
    free(t->cells);
    free(t->cols);
    free(t);
}

long bsc_table_find(const bsc_table *t, const char *name)
{
    for (size_t c = 0; c < t->n_cols; c++)
        if (strcmp(t->cols[c], name) == 0)
            return (long)c;
    return -1;
}

static bsc_status grow_cols(bsc_table *t)
{
    size_t cap = t->cap_cols ? t->cap_cols * 2 : 16;
    char **cols = realloc(t->cols, cap * sizeof *cols);
    if (!cols)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    t->cols = cols;
    if (t->cap_rows) {
        cell *cells = calloc(t->cap_rows * cap, sizeof *cells);
        if (!cells)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        for (size_t r = 0; r < t->n_rows; r++)
            memcpy(cells + r * cap, row_at(t, r), t->cap_cols * sizeof *cells);
        free(t->cells);
        t->cells = cells;
    }
    t->cap_cols = cap;
    return BSC_OK;
}

bsc_status bsc_table_column(bsc_table *t, const char *name)
{
    if (bsc_table_find(t, name) >= 0)
        return BSC_OK;
    if (t->n_cols == t->cap_cols) {
        bsc_status s = grow_cols(t);
        if (s != BSC_OK)
            return s;
    }
    t->cols[t->n_cols] = strdup(name);
    if (!t->cols[t->n_cols])
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    t->n_cols++;
    return BSC_OK;
}

bsc_status bsc_table_add_row(bsc_table *t, bsc_metrics_row *row)
{
    if (t->cap_cols == 0) {
        bsc_status s = grow_cols(t);
        if (s != BSC_OK)
            return s;
    }
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
        cell *cells = realloc(t->cells, cap * t->cap_cols * sizeof *cells);
        if (!cells)
            return bsc_fail(BSC_ERR_NOMEM, "out of memory");
        t->cells = cells;
        t->cap_rows = cap;
    }
    memset(row_at(t, t->n_rows), 0, t->cap_cols * sizeof(cell));
    if (row) {
        row->table = t;
        row->row = t->n_rows;
    }
    t->n_rows++;
    return BSC_OK;
}

size_t bsc_table_n_rows(const bsc_table *t) { return t->n_rows; }
size_t bsc_table_n_cols(const bsc_table *t) { return t->n_cols; }
const char *bsc_table_col_name(const bsc_table *t, size_t c) { return c < t->n_cols ? t->cols[c] : NULL; }

double bsc_table_get(const bsc_table *t, size_t row, size_t col)
{
    if (row >= t->n_rows || col >= t->n_cols || row_at(t, row)[col].set != 1)
        return NAN;
    return row_at(t, row)[col].num;
}

const char *bsc_table_get_str(const bsc_table *t, size_t row, size_t col)
{
    if (row >= t->n_rows || col >= t->n_cols || row_at(t, row)[col].set != 2)
        return NULL;
    return row_at(t, row)[col].str;
}

static bsc_status cell_at(bsc_metrics_row *row, const char *column, cell **out)
{
    bsc_table *t = row->table;
    bsc_status s = bsc_table_column(t, column);
    if (s != BSC_OK)
        return s;
    *out = &row_at(t, row->row)[bsc_table_find(t, column)];
    return BSC_OK;
}

bsc_status bsc_metrics_set(bsc_metrics_row *row, const char *column, double value)
{
    cell *c;
    bsc_status s = cell_at(row, column, &c);
    if (s != BSC_OK)
        return s;
    free(c->str);
    c->str = NULL;
    c->set = 1;
    c->num = value;
    return BSC_OK;
}

bsc_status bsc_metrics_set_float(bsc_metrics_row *row, const char *column, float value)
{
    double v = value;
    char buf[32];
    for (int p = 1; isfinite(value) && p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)value);
        if (strtof(buf, NULL) == value) {
            v = strtod(buf, NULL);
            break;
        }
    }
    return bsc_metrics_set(row, column, v);
}

bsc_status bsc_metrics_set_str(bsc_metrics_row *row, const char *column, const char *value)
{
    cell *c;
    bsc_status s = cell_at(row, column, &c);
    if (s != BSC_OK)
        return s;
    char *dup = strdup(value);
    if (!dup)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    free(c->str);
    c->str = dup;
    c->set = 2;
    return BSC_OK;
}

/* Strings with separators or quotes are quoted the RFC 4180 way. */
static void write_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_header(FILE *f, const bsc_table *t)
{
    for (size_t c = 0; c < t->n_cols; c++) {
        if (c)
            fputc(',', f);
        write_str(f, t->cols[c]);
    }
    fputc('\n', f);
}

static void write_row(FILE *f, const bsc_table *t, size_t r)
{
    for (size_t c = 0; c < t->n_cols; c++) {
        const cell *x = &row_at(t, r)[c];
        if (c)
            fputc(',', f);
        if (x->set == 1) {
            if (isnan(x->num))
                fputs("nan", f);
            else if (isinf(x->num))
                fputs(x->num > 0 ? "inf" : "-inf", f);
            /* the range first: converting a double beyond long long's
             * range is undefined behaviour */
            else if (fabs(x->num) < 1e15 && x->num == (double)(long long)x->num)
                fprintf(f, "%lld", (long long)x->num);
            else
                fprintf(f, "%.9g", x->num);
        } else if (x->set == 2) {
            write_str(f, x->str);
        }
    }
    fputc('\n', f);
}

bsc_status bsc_table_write_csv(const bsc_table *t, const char *path)
{
    bsc_afile a;
    bsc_status s = bsc_afile_open(&a, path);
    if (s != BSC_OK)
        return s;
    write_header(a.f, t);
    for (size_t r = 0; r < t->n_rows; r++)
        write_row(a.f, t, r);
    return bsc_afile_commit(&a);
}

/* The size of path, or -1 when it cannot be read. */
static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
}

/* Copies the first n bytes of src into dst (both at offset 0, dst's
 * offset left at n): copy_file_range where the kernel has it, else
 * read and write. */
static bsc_status copy_bytes(int src, int dst, long long n, const char *from, const char *to)
{
    long long done = 0;
    int plain = 0;
    char buf[1 << 16];
    while (done < n) {
        size_t want = (size_t)(n - done);
        ssize_t got;
#ifdef __linux__
        if (!plain) {
            got = copy_file_range(src, NULL, dst, NULL, want, 0);
            if (got < 0 && (errno == ENOSYS || errno == EXDEV || errno == EINVAL ||
                            errno == EOPNOTSUPP)) {
                plain = 1;
                continue;
            }
        } else
#endif
        {
            got = read(src, buf, want < sizeof buf ? want : sizeof buf);
            for (ssize_t w = 0, put; got > 0 && w < got; w += put) {
                put = write(dst, buf + w, (size_t)(got - w));
                if (put <= 0) {
                    return bsc_fail(BSC_ERR_IO, "writing %s failed: %s", to,
                                    put < 0 ? strerror(errno) : "nothing written");
                }
            }
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return bsc_fail(BSC_ERR_IO, "copying %s to %s failed: %s", from, to,
                            strerror(errno));
        if (got == 0)
            return bsc_fail(BSC_ERR_IO, "%s ended after %lld of its %lld bytes", from, done, n);
        done += got;
    }
    return BSC_OK;
}

bsc_status bsc_table_write_csv_more(const bsc_table *t, const char *path, bsc_csv_mark *mark)
{
    bsc_status s;
    if (mark->rows == 0 || mark->cols != t->n_cols || mark->rows > t->n_rows ||
        file_size(path) != mark->bytes) {
        /* A first write, new columns, another table, or a file that is not
         * the one written last: the whole table, atomically. */
        mark->rows = mark->cols = 0;
        mark->bytes = -1;
        if ((s = bsc_table_write_csv(t, path)) != BSC_OK)
            return s;
        long long size = file_size(path);
        if (size >= 0) {
            mark->rows = t->n_rows;
            mark->cols = t->n_cols;
            mark->bytes = size;
        }
        return BSC_OK;
    }
    if (mark->rows == t->n_rows)
        return BSC_OK;
    /* Still atomic (a temporary file renamed over path, as every file of a
     * study is written), but the rows already there are copied as bytes,
     * by the kernel where it can, not formatted again: copying is tens of
     * times faster than printf, so an epoch's end no longer grows with the
     * rows of the epochs before it to any measurable extent. */
    int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return bsc_fail(BSC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    bsc_afile a;
    if ((s = bsc_afile_open(&a, path)) != BSC_OK) {
        close(src);
        return s;
    }
    s = copy_bytes(src, fileno(a.f), mark->bytes, path, a.tmp);
    close(src);
    if (s != BSC_OK) {
        bsc_afile_abort(&a);
        return s;
    }
    if (fseek(a.f, 0, SEEK_END) != 0) {
        s = bsc_fail(BSC_ERR_IO, "cannot seek in %s: %s", a.tmp, strerror(errno));
        bsc_afile_abort(&a);
        return s;
    }
    long long head = ftello(a.f);
    for (size_t r = mark->rows; r < t->n_rows; r++)
        write_row(a.f, t, r);
    long long end = ftello(a.f);
    if ((s = bsc_afile_commit(&a)) != BSC_OK) {
        mark->bytes = -1;   /* the next call writes the whole table */
        return s;
    }
    mark->rows = t->n_rows;
    mark->bytes += end - head;
    return BSC_OK;
}

/* Splits one CSV line (RFC 4180 quotes, no embedded newlines) in place. */
static size_t split_line(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return max + 1;
        char *start = p, *w = p;
        if (*p == '"') {
            p++;
            for (; *p; p++) {
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p++;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p;
                }
            }
            while (*p && *p != ',')
                p++;
        } else {
            while (*p && *p != ',')
                w = ++p;
        }
        int more = *p == ',';
        *w = '\0';
        fields[n++] = start;
        if (!more)
            return n;
        p++;
    }
}

bsc_status bsc_table_read_csv(const char *path, bsc_table **out)
{
    char *data = NULL;
    char **fields = NULL;
    bsc_table *t = NULL;
    bsc_hashset *names = NULL;
    size_t len;
    *out = NULL;
    bsc_status s = bsc_read_file(path, &data, &len);
    if (s != BSC_OK)
        return s;
    if ((s = bsc_table_new(&t)) != BSC_OK)
        goto cleanup;
    /* Lines are C strings below: a NUL would silently end the table there. */
    const char *nul = memchr(data, '\0', len);
    if (nul) {
        s = bsc_fail(BSC_ERR_DATA, "%s: byte %zu: a NUL byte (not a CSV text file)", path,
                     (size_t)(nul - data));
        goto cleanup;
    }
    size_t max = 1;
    for (size_t i = 0; i < len; i++)
        max += data[i] == ',';
    fields = malloc(max * sizeof *fields);
    if (!fields) {
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    char *save = NULL;
    int lineno = 0;
    size_t ncols = 0;
    for (char *line = data; line && *line; line = save) {
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        lineno++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        /* A blank line is no row -- except in a table of one column, where
         * it is a row whose one cell is empty (what the writer writes). */
        if (l == 0 && (lineno == 1 || ncols != 1))
            continue;
        size_t n = split_line(line, fields, max);
        if (lineno == 1) {
            /* Names must be unique (cells are stored by position, and a
             * reader finds a column by its name); a hash set keeps a header
             * of many columns linear. */
            if ((s = bsc_hashset_new(n, &names)) != BSC_OK)
                goto cleanup;
            for (size_t c = 0; c < n; c++) {
                size_t first;
                if ((s = bsc_hashset_add(names, fields[c], strlen(fields[c]), c, &first)) !=
                    BSC_OK)
                    goto cleanup;
                if (first != BSC_HASHSET_NEW) {
                    s = bsc_fail(BSC_ERR_DATA, "%s:1: column '%s' appears twice (columns %zu "
                                 "and %zu)", path, fields[c], first + 1, c + 1);
                    goto cleanup;
                }
                if (t->n_cols == t->cap_cols && (s = grow_cols(t)) != BSC_OK)
                    goto cleanup;
                if (!(t->cols[t->n_cols] = strdup(fields[c]))) {
                    s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
                    goto cleanup;
                }
                t->n_cols++;
            }
            ncols = n;
            continue;
        }
        if (n != ncols) {
            s = bsc_fail(BSC_ERR_DATA, "%s:%d: expected %zu fields, found %zu", path, lineno,
                         ncols, n);
            goto cleanup;
        }
        if ((s = bsc_table_add_row(t, NULL)) != BSC_OK)
            goto cleanup;
        /* by position: a lookup by name per cell would make a wide file
         * quadratic */
        cell *row = row_at(t, t->n_rows - 1);
        for (size_t c = 0; c < n; c++) {
            if (!fields[c][0])
                continue;
            char *end;
            double v = strtod(fields[c], &end);
            if (*end == '\0') {
                row[c].set = 1;
                row[c].num = v;
            } else if ((row[c].str = strdup(fields[c]))) {
                row[c].set = 2;
            } else {
                s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
                goto cleanup;
            }
        }
    }
    if (ncols == 0)
        s = bsc_fail(BSC_ERR_DATA, "%s: empty file (no CSV header)", path);
cleanup:
    bsc_hashset_free(names);
    free(fields);
    free(data);
    if (s != BSC_OK)
        bsc_table_free(t);
    else
        *out = t;
    return s;
}

/* ------------------------------------------------------------- packing */

#define PACK_MAGIC 0x31525442u   /* "BTR1" */

typedef struct pbuf {
    unsigned char *p;
    size_t len, cap;
    int bad;
} pbuf;

static void put(pbuf *b, const void *v, size_t n)
{
    if (b->bad)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->bad = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static void put_u32(pbuf *b, uint32_t v) { put(b, &v, sizeof v); }

static void put_str(pbuf *b, const char *s)
{
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

bsc_status bsc_table_pack(const bsc_table *t, size_t from, void **out, size_t *len)
{
    pbuf b = {0};
    *out = NULL;
    *len = 0;
    if (from > t->n_rows)
        from = t->n_rows;
    put_u32(&b, PACK_MAGIC);
    put_u32(&b, (uint32_t)t->n_cols);
    for (size_t c = 0; c < t->n_cols; c++)
        put_str(&b, t->cols[c]);
    put_u32(&b, (uint32_t)(t->n_rows - from));
    for (size_t r = from; r < t->n_rows; r++)
        for (size_t c = 0; c < t->n_cols; c++) {
            const cell *x = &row_at(t, r)[c];
            unsigned char kind = (unsigned char)x->set;
            put(&b, &kind, 1);
            if (x->set == 1)
                put(&b, &x->num, sizeof x->num);
            else if (x->set == 2)
                put_str(&b, x->str);
        }
    if (b.bad) {
        free(b.p);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory packing a table of %zu rows", t->n_rows);
    }
    *out = b.p;
    *len = b.len;
    return BSC_OK;
}

typedef struct rbuf {
    const unsigned char *p;
    size_t len, at;
    int bad;
} rbuf;

static int get(rbuf *r, void *v, size_t n)
{
    if (r->bad || r->len - r->at < n)
        return r->bad = 1, 0;
    memcpy(v, r->p + r->at, n);
    r->at += n;
    return 1;
}

/* A string of the buffer, malloc'ed; NULL when truncated or out of memory. */
static char *get_str(rbuf *r)
{
    uint32_t n = 0;
    if (!get(r, &n, sizeof n) || r->len - r->at < n)
        return r->bad = 1, NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return r->bad = 1, NULL;
    memcpy(s, r->p + r->at, n);
    s[n] = '\0';
    r->at += n;
    return s;
}

bsc_status bsc_table_unpack(bsc_table *t, const void *data, size_t len, size_t *used)
{
    rbuf r = {data, len, 0, 0};
    uint32_t magic = 0, n_cols = 0, n_rows = 0;
    char **names = NULL;
    bsc_status s = BSC_OK;
    if (!get(&r, &magic, sizeof magic) || magic != PACK_MAGIC || !get(&r, &n_cols, sizeof n_cols))
        return bsc_fail(BSC_ERR_DATA, "packed table: no header at offset 0 of %zu bytes", len);
    if (n_cols > len || !(names = calloc(n_cols ? n_cols : 1, sizeof *names)))
        return bsc_fail(BSC_ERR_DATA, "packed table: %u columns in %zu bytes", n_cols, len);
    for (uint32_t c = 0; c < n_cols && !r.bad; c++)
        if ((names[c] = get_str(&r)) && (s = bsc_table_column(t, names[c])) != BSC_OK)
            goto cleanup;
    get(&r, &n_rows, sizeof n_rows);
    for (uint32_t i = 0; i < n_rows && !r.bad && s == BSC_OK; i++) {
        bsc_metrics_row row;
        if ((s = bsc_table_add_row(t, &row)) != BSC_OK)
            break;
        for (uint32_t c = 0; c < n_cols && !r.bad && s == BSC_OK; c++) {
            unsigned char kind = 0;
            double v;
            char *str;
            if (!get(&r, &kind, 1) || kind == 0)
                continue;
            if (kind == 1 && get(&r, &v, sizeof v)) {
                s = bsc_metrics_set(&row, names[c], v);
            } else if (kind == 2 && (str = get_str(&r))) {
                s = bsc_metrics_set_str(&row, names[c], str);
                free(str);
            } else {
                r.bad = 1;
            }
        }
    }
    if (s == BSC_OK && (r.bad || (!used && r.at != len)))
        s = bsc_fail(BSC_ERR_DATA, "packed table: %s at offset %zu of %zu bytes",
                     r.bad ? "truncated or malformed" : "trailing bytes", r.at, len);
    if (s == BSC_OK && used)
        *used = r.at;
cleanup:
    for (uint32_t c = 0; c < n_cols; c++)
        free(names[c]);
    free(names);
    return s;
}
