/* OpenCL C sources: the runtime's cl/runtime files embedded in the library
 * (or read from $BATCHSCOPE_CL_DIR), and a program's full text with its
 * #include "x.cl" lines inlined, for the program cache to key and build. */
#include "batchscope/device.h"
#include "cl_source_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The runtime's own cl/ files, embedded by batchscope_embed_cl
 * (CMakeLists.txt): the text of `file` or NULL. */
const char *bsc_cl_runtime_text(const char *file);

#define MAX_INCLUDE_DEPTH 32
/* Also the limit on a program cache entry, which is read through
 * bsc_cl_read_file too. */
#define MAX_FILE_BYTES ((size_t)1 << 30)

/* ---------------------------------------------------------------- helpers */

typedef struct strbuf {
    char *p;
    size_t len, cap;
} strbuf;

static int sb_append(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 1;
}

/* Appends `#line <line> "<file>"`. */
static int sb_line(strbuf *b, int line, const char *file)
{
    char tmp[400];
    int w = snprintf(tmp, sizeof tmp, "#line %d \"%s\"\n", line, file);
    return w >= 0 && (size_t)w < sizeof tmp && sb_append(b, tmp, (size_t)w);
}

bsc_status bsc_cl_read_file(const char *path, char **out, size_t *len)
{
    bsc_status st = BSC_OK;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (!f)
        return bsc_fail(errno == ENOENT ? BSC_ERR_NOT_FOUND : BSC_ERR_IO, "%s: %s", path,
                        strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)
        || (uintmax_t)sb.st_size > MAX_FILE_BYTES) {
        st = bsc_fail(BSC_ERR_IO, "%s: not a readable regular file", path);
        goto cleanup;
    }
    size_t n = (size_t)sb.st_size;
    buf = malloc(n + 1);
    if (!buf) {
        st = bsc_fail(BSC_ERR_NOMEM, "%s: reading %zu bytes", path, n);
        goto cleanup;
    }
    if (fread(buf, 1, n, f) != n) {
        st = bsc_fail(BSC_ERR_IO, "%s: short read", path);
        goto cleanup;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
cleanup:
    free(buf);
    fclose(f);
    return st;
}

/* ----------------------------------------------------------------- sources */

bsc_status bsc_cl_source(const char *file, char **source)
{
    *source = NULL;
    if (!file || !*file || strchr(file, '/'))
        return bsc_fail(BSC_ERR_INVALID, "OpenCL source name '%s': expected a cl/runtime file "
                        "name such as \"util.cl\"", file ? file : "(null)");

    /* The override reads the file itself, so kernels can be edited without
     * rebuilding the library. It covers the runtime's files only (point it at
     * cl/runtime): a plugin's sources live in its module, which the runtime
     * cannot see into, and a plugin rebuilds in seconds anyway. */
    const char *dir = getenv("BATCHSCOPE_CL_DIR");
    if (dir && *dir) {
        char path[PATH_MAX];
        size_t len = 0;
        if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
            return bsc_fail(BSC_ERR_INVALID, "BATCHSCOPE_CL_DIR path too long: %s", dir);
        bsc_status st = bsc_cl_read_file(path, source, &len);
        if (st != BSC_OK)
            return bsc_fail_context(st, "OpenCL source %s (BATCHSCOPE_CL_DIR is set)", file);
        return BSC_OK;
    }
    const char *text = bsc_cl_runtime_text(file);
    if (text) {
        if (!(*source = strdup(text)))
            return bsc_fail(BSC_ERR_NOMEM, "OpenCL source %s", file);
        return BSC_OK;
    }
    return bsc_fail(BSC_ERR_NOT_FOUND, "OpenCL source %s: not one of the runtime's embedded "
                    "cl/runtime files", file);
}

typedef struct name_set {
    char **names;
    int n;
} name_set;

static int set_has(const name_set *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return 1;
    return 0;
}

static int set_add(name_set *s, const char *name)
{
    char **p = realloc(s->names, (size_t)(s->n + 1) * sizeof *p);
    if (!p)
        return 0;
    s->names = p;
    if (!(s->names[s->n] = strdup(name)))
        return 0;
    s->n++;
    return 1;
}

static void set_free(name_set *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
}

/* Skips blanks, then `#`, blanks and `word`; the position after it or NULL. */
static const char *directive(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p++ != '#')
        return NULL;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if ((size_t)(end - p) < n || strncmp(p, word, n) != 0)
        return NULL;
    return p + n;
}

/* If [p, end) starts with blanks and a "quoted" name, copies the name into
 * buf and returns 1. */
static int quoted(const char *p, const char *end, char *buf, size_t len)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p++ != '"')
        return 0;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q || q == p || (size_t)(q - p) >= len)
        return 0;
    memcpy(buf, p, (size_t)(q - p));
    buf[q - p] = '\0';
    return 1;
}

/* If line [p, end) is `#include "name"`, copies name into buf and returns 1. */
static int parse_include(const char *p, const char *end, char *buf, size_t len)
{
    p = directive(p, end, "include");
    return p && quoted(p, end, buf, len);
}

/* If line [p, end) is `#line N "file"` (as batchscope_embed_cl writes after
 * a file it inlined), sets *line to N and file, and returns 1: the #line we
 * write after an include must continue from there, not from our own count. */
static int parse_line(const char *p, const char *end, int *line, char *file, size_t len)
{
    char *num_end;
    p = directive(p, end, "line");
    if (!p || p == end || (*p != ' ' && *p != '\t'))
        return 0;
    long n = strtol(p, &num_end, 10);
    if (num_end == p || num_end > end || n < 1 || n > INT_MAX)
        return 0;
    if (!quoted(num_end, end, file, len))
        return 0;
    *line = (int)n;
    return 1;
}

/* The runtime files a plugin's source may #include: kernel-free headers the
 * runtime keeps stable for plugins (listed in batchscope/device.h). The rest
 * of cl/runtime is the runtime's own business and may change at will. */
static const char *const plugin_includes[] = {"philox.cl"};
#define N_PLUGIN_INCLUDES (sizeof plugin_includes / sizeof plugin_includes[0])

static bsc_status include_source(const char *name, bsc_cl_include_scope scope, char **text)
{
    if (scope == BSC_CL_INCLUDE_PLUGIN) {
        size_t i = 0;
        while (i < N_PLUGIN_INCLUDES && strcmp(plugin_includes[i], name) != 0)
            i++;
        if (i == N_PLUGIN_INCLUDES) {
            char list[256] = "";
            for (i = 0; i < N_PLUGIN_INCLUDES; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         i ? ", " : "", plugin_includes[i]);
            return bsc_fail(BSC_ERR_NOT_FOUND,
                            "%s is not a file a plugin may include (the runtime shares: %s; "
                            "a plugin's own files are inlined by batchscope_embed_cl)",
                            name, list);
        }
    }
    return bsc_cl_source(name, text);
}

/* Copies text into out with every `#include "x.cl"` replaced by x.cl's own
 * expanded text, each file at most once per program (which also breaks
 * include cycles). #line directives keep the build log's line numbers true. */
static bsc_status expand(const char *program, const char *file, const char *text,
                         bsc_cl_include_scope scope, strbuf *out, name_set *seen, int depth)
{
    char inc[256], where[256];
    int line = 1;
    const char *p = text;

    if (depth > MAX_INCLUDE_DEPTH)
        return bsc_fail(BSC_ERR_BUILD, "program %s: #include nesting deeper than %d at %s",
                        program, MAX_INCLUDE_DEPTH, file);
    snprintf(where, sizeof where, "%s", file);
    while (*p) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        const char *next = nl ? nl + 1 : end;
        if (parse_include(p, end, inc, sizeof inc)) {
            if (!set_has(seen, inc)) {
                char *sub = NULL;
                if (!set_add(seen, inc))
                    return bsc_fail(BSC_ERR_NOMEM, "program %s: #include", program);
                bsc_status st = include_source(inc, scope, &sub);
                if (st != BSC_OK)
                    return bsc_fail_context(st, "program %s: %s:%d: #include \"%s\"", program,
                                            where, line, inc);
                if (!sb_line(out, 1, inc)) {
                    free(sub);
                    return bsc_fail(BSC_ERR_NOMEM, "program %s: #include", program);
                }
                st = expand(program, inc, sub, scope, out, seen, depth + 1);
                free(sub);
                if (st != BSC_OK)
                    return st;
                if (out->len && out->p[out->len - 1] != '\n' && !sb_append(out, "\n", 1))
                    return bsc_fail(BSC_ERR_NOMEM, "program %s: #include", program);
            }
            if (!sb_line(out, line + 1, where))
                return bsc_fail(BSC_ERR_NOMEM, "program %s: #include", program);
        } else {
            if (!sb_append(out, p, (size_t)(next - p)))
                return bsc_fail(BSC_ERR_NOMEM, "program %s: preprocessing", program);
            /* The directive names the line after it. */
            if (parse_line(p, end, &line, where, sizeof where))
                line--;
        }
        line++;
        p = next;
    }
    return BSC_OK;
}

bsc_status bsc_cl_preprocess(const char *program, const char *text, bsc_cl_include_scope scope,
                             char **out)
{
    strbuf b = {0};
    name_set seen = {0};
    bsc_status st = BSC_OK;

    *out = NULL;
    /* The program itself counts as included, so a file including its
     * includer does not paste the includer a second time. */
    if (!set_add(&seen, program)) {
        st = bsc_fail(BSC_ERR_NOMEM, "program %s", program);
        goto cleanup;
    }
    st = expand(program, program, text, scope, &b, &seen, 0);
    if (st != BSC_OK)
        goto cleanup;
    if (!b.p && !sb_append(&b, "", 0)) {
        st = bsc_fail(BSC_ERR_NOMEM, "program %s", program);
        goto cleanup;
    }
    *out = b.p;
    b.p = NULL;
cleanup:
    free(b.p);
    set_free(&seen);
    return st;
}
