/* The plugin registry: finds, loads and checks plugins, and looks up the
 * types they provide. A descriptor's own consistency is checked in
 * registry_check.c; options and printing are in registry_options.c; clashes
 * with plugins already loaded are checked here.
 *
 * Accepted plugins are never dlclose'd: OpenCL event callbacks and kernels'
 * host-side helpers may point into them until the process ends. A plugin that
 * is rejected never had a type handed out, so it is closed again. */
#define _GNU_SOURCE /* dladdr() and Dl_info */

#include "batchscope/version.h"
#include "batchscope/registry.h"
#include "batchscope/plugin_call.h"
#include "registry_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#ifndef BSC_PLUGIN_BUILD_DIR
#define BSC_PLUGIN_BUILD_DIR ""
#endif
#ifndef BSC_BUILD_TREE_LIBDIR
#define BSC_BUILD_TREE_LIBDIR ""
#endif
/* The plugin directory relative to the directory of the installed library
 * (<libdir>/batchscope/plugins): an install can be moved as a whole. */
#ifndef BSC_PLUGIN_REL_DIR
#define BSC_PLUGIN_REL_DIR "batchscope/plugins"
#endif

#define PLUGIN_PATH_ENV "BATCHSCOPE_PLUGIN_PATH"

/* The host's copy of a plugin's type: full-size records whatever size the
 * plugin was built with (see registry.h). */
typedef struct reg_type {
    bsc_type t;
    union {
        bsc_layer_ops layer;
        bsc_loss_ops loss;
        bsc_observer_ops observer;
        bsc_analysis_ops analysis;
        bsc_report_ops report;
        size_t struct_size;
    } ops;
} reg_type;

typedef struct reg_plugin {
    bsc_plugin_info info;   /* handed out by pointer: the struct never moves */
    char *path;             /* as given (what messages show) */
    char *real;             /* realpath(), to skip a file reached twice */
    char *abs;              /* path made absolute, links kept: info.path */
    char *origin;
    void *handle;
    reg_type **types;       /* in the descriptor's order; each never moves */
    size_t n_types;
} reg_plugin;

struct bsc_registry {
    reg_plugin **plugins;
    size_t n, cap;
};

/* ------------------------------------------------------------ lifetime */

bsc_status bsc_registry_new(bsc_registry **out)
{
    bsc_registry *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r)
        return bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory creating the plugin registry");
    *out = r;
    return BSC_OK;
}

static void plugin_free(reg_plugin *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_types; i++)
        free(p->types[i]);
    free(p->types);
    free(p->path);
    free(p->real);
    free(p->abs);
    free(p->origin);
    free(p);
}

void bsc_registry_free(bsc_registry *r)
{
    if (!r)
        return;
    /* The handles are deliberately leaked: see the top of this file. */
    for (size_t i = 0; i < r->n; i++)
        plugin_free(r->plugins[i]);
    free(r->plugins);
    free(r);
}

size_t bsc_registry_n_plugins(const bsc_registry *r)
{
    return r ? r->n : 0;
}

const bsc_plugin_info *bsc_registry_plugin(const bsc_registry *r, size_t i)
{
    if (!r || i >= r->n)
        return NULL;
    return &r->plugins[i]->info;
}

/* ------------------------------------------------------------ lookup */

const bsc_type *bsc_registry_find(const bsc_registry *r, bsc_kind kind, const char *name,
                                  const bsc_plugin_info **plugin)
{
    if (!r || !name)
        return NULL;
    for (size_t p = 0; p < r->n; p++) {
        const reg_plugin *pl = r->plugins[p];
        for (size_t i = 0; i < pl->n_types; i++) {
            const bsc_type *t = &pl->types[i]->t;
            if (t->kind == kind && strcmp(t->name, name) == 0) {
                if (plugin)
                    *plugin = &pl->info;
                return t;
            }
        }
    }
    return NULL;
}

size_t bsc_registry_count(const bsc_registry *r, bsc_kind kind)
{
    size_t n = 0;
    for (size_t p = 0; r && p < r->n; p++)
        for (size_t i = 0; i < r->plugins[p]->n_types; i++)
            n += r->plugins[p]->types[i]->t.kind == kind;
    return n;
}

const bsc_type *bsc_registry_type(const bsc_registry *r, bsc_kind kind, size_t i)
{
    for (size_t p = 0; r && p < r->n; p++)
        for (size_t j = 0; j < r->plugins[p]->n_types; j++) {
            const bsc_type *t = &r->plugins[p]->types[j]->t;
            if (t->kind == kind && i-- == 0)
                return t;
        }
    return NULL;
}

/* ------------------------------------------------------------ checks */

/* A descriptor sound on its own must also not provide a type name that a
 * plugin already loaded provides for the same kind: lookups would silently
 * pick the first. */
static bsc_status check_desc(const bsc_registry *r, const char *path, const bsc_plugin_desc *d)
{
    bsc_status st = bsc_plugin_desc_check(path, d);
    if (st != BSC_OK)
        return st;
    for (size_t i = 0; d->types[i]; i++) {
        const bsc_type *t = d->types[i];
        const bsc_plugin_info *owner = NULL;
        if (bsc_registry_find(r, t->kind, t->name, &owner))
            return bsc_fail(BSC_ERR_PLUGIN,
                            "%s: %s type '%s' is already provided by plugin '%s' (%s)", path,
                            bsc_kind_name(t->kind), t->name,
                            or_default(owner->desc->name, "?"), owner->path);
    }
    return BSC_OK;
}

static void default_destroy(void *self)
{
    free(self);
}

/* The host's full-size copy of t (see registry.h). */
static reg_type *copy_type(const bsc_type *t)
{
    reg_type *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    size_t have = *(const size_t *)t->ops, full = bsc_kind_ops_size(t->kind);
    memcpy(&c->ops, t->ops, have < full ? have : full);
    c->ops.struct_size = full;
    /* destroy is the second op of every table, right after create. */
    switch (t->kind) {
    case BSC_KIND_LAYER: if (!c->ops.layer.destroy) c->ops.layer.destroy = default_destroy; break;
    case BSC_KIND_LOSS: if (!c->ops.loss.destroy) c->ops.loss.destroy = default_destroy; break;
    case BSC_KIND_OBSERVER:
        if (!c->ops.observer.destroy) c->ops.observer.destroy = default_destroy;
        break;
    case BSC_KIND_ANALYSIS:
        if (!c->ops.analysis.destroy) c->ops.analysis.destroy = default_destroy;
        break;
    case BSC_KIND_REPORT: if (!c->ops.report.destroy) c->ops.report.destroy = default_destroy; break;
    }
    c->t.struct_size = sizeof c->t;
    c->t.kind = t->kind;
    c->t.name = t->name;
    c->t.summary = t->summary;
    c->t.options = t->options;
    c->t.ops = &c->ops;
    return c;
}

/* ------------------------------------------------------------ loading */

/* path, or the working directory + path when it is relative (malloc'ed). */
static char *absolute_path(const char *path)
{
    char cwd[4096];
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        return strdup(path);
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", cwd, path[0] == '.' && path[1] == '/' ? path + 2 : path);
    return out;
}

static bsc_status add_plugin(bsc_registry *r, const char *path, const char *real,
                             const char *origin, void *handle, const bsc_plugin_desc *d)
{
    reg_plugin *p = NULL;
    bsc_status st = BSC_OK;

    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        reg_plugin **grown = realloc(r->plugins, cap * sizeof *grown);
        if (!grown) {
            st = bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory adding plugin %s", path);
            goto cleanup;
        }
        r->plugins = grown;
        r->cap = cap;
    }
    p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path)) || !(p->real = strdup(real)) ||
        !(p->abs = absolute_path(path)) || !(p->origin = strdup(origin))) {
        st = bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory adding plugin %s", path);
        goto cleanup;
    }
    p->n_types = bsc_desc_n_types(d);
    p->types = calloc(p->n_types ? p->n_types : 1, sizeof *p->types);
    if (!p->types) {
        st = bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory adding plugin %s", path);
        goto cleanup;
    }
    for (size_t i = 0; i < p->n_types; i++) {
        if (!(p->types[i] = copy_type(d->types[i]))) {
            st = bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory adding plugin %s", path);
            goto cleanup;
        }
    }
    bsc_plugin_call_register(d, real);
    p->handle = handle;
    p->info.desc = d;
    p->info.path = p->abs;   /* it must resolve from the results directory too */
    p->info.origin = p->origin;
    r->plugins[r->n++] = p;
    p = NULL;

cleanup:
    plugin_free(p);
    return st;
}

static bsc_status load_file(bsc_registry *r, const char *path, const char *origin)
{
    char real[PATH_MAX];
    void *handle = NULL;
    void *sym;
    bsc_plugin_entry_fn entry;
    const bsc_plugin_desc *d;
    bsc_status st = BSC_OK;

    if (!realpath(path, real))
        return bsc_fail(BSC_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    /* The same file reached through two search entries (build dir and the
     * environment, or a symlink) is one plugin, not a duplicate. */
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->plugins[i]->real, real) == 0)
            return BSC_OK;

    dlerror();
    /* A plugin's constructors run inside dlopen: a crash there is the
     * plugin's too. */
    bsc_plugin_scope ld;
    bsc_plugin_enter_load(&ld, path);
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    bsc_plugin_leave(&ld);
    if (!handle) {
        const char *why = dlerror();
        why = why ? why : "dlopen failed";
        /* glibc's message usually starts with the path already. */
        if (strstr(why, path))
            return bsc_fail(BSC_ERR_PLUGIN, "%s", why);
        return bsc_fail(BSC_ERR_PLUGIN, "%s: %s", path, why);
    }
    dlerror();
    sym = dlsym(handle, BSC_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        st = bsc_fail(BSC_ERR_PLUGIN, "%s: not a batchscope plugin (no %s symbol)", path,
                      BSC_PLUGIN_ENTRY_SYMBOL);
        goto cleanup;
    }
    /* POSIX guarantees a data pointer from dlsym converts to a function
     * pointer; memcpy keeps ISO C from complaining about the cast. */
    memcpy(&entry, &sym, sizeof entry);
    /* The entry point, and reading the descriptor it returns (a bad
     * pointer crashes there), run inside the plugin's load scope. */
    bsc_plugin_scope sc;
    bsc_plugin_enter_load(&sc, path);
    d = entry();
    st = d ? check_desc(r, path, d)
           : bsc_fail(BSC_ERR_PLUGIN, "%s: %s() returned NULL", path, BSC_PLUGIN_ENTRY_SYMBOL);
    bsc_plugin_leave(&sc);
    if (st != BSC_OK)
        goto cleanup;
    st = add_plugin(r, path, real, origin, handle, d);
    if (st == BSC_OK)
        handle = NULL; /* accepted: stays loaded for good */

cleanup:
    if (handle)
        dlclose(handle);
    return st;
}

static int is_plugin_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int select_so(const struct dirent *e)
{
    return is_plugin_name(e->d_name);
}

/* Byte order, not the locale's collation: the load order (and so which of two
 * clashing plugins is reported) must not depend on LC_COLLATE. */
static int cmp_names(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static bsc_status load_dir(bsc_registry *r, const char *dir, const char *origin)
{
    struct dirent **list = NULL;
    char *file = NULL;
    int n;
    bsc_status st = BSC_OK;

    n = scandir(dir, &list, select_so, cmp_names);
    if (n < 0)
        return bsc_fail(BSC_ERR_IO, "%s: cannot read plugin directory: %s", dir, strerror(errno));
    for (int i = 0; i < n && st == BSC_OK; i++) {
        struct stat sb;
        size_t len = strlen(dir) + strlen(list[i]->d_name) + 2;
        free(file);
        file = malloc(len);
        if (!file) {
            st = bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory scanning %s", dir);
            break;
        }
        snprintf(file, len, "%s/%s", dir, list[i]->d_name);
        /* stat() follows symlinks: a link to a plugin counts, a directory
         * that happens to end in .so does not. */
        if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        st = load_file(r, file, origin);
    }
    free(file);
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return st;
}

bsc_status bsc_registry_load_path(bsc_registry *r, const char *path, const char *origin)
{
    struct stat sb;

    if (!r || !path || !path[0])
        return bsc_fail(BSC_ERR_USAGE, "registry.c: bsc_registry_load_path needs a registry "
                                       "and a path");
    origin = or_default(origin, "pipeline");
    if (stat(path, &sb) != 0)
        return bsc_fail(BSC_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return load_dir(r, path, origin);
    return load_file(r, path, origin);
}

/* The directory of this libbatchscope, resolved (NULL when unknown). */
static int library_dir(char *dir, size_t len)
{
    static const char anchor = 0;
    Dl_info info;
    char lib[PATH_MAX];
    if (!dladdr(&anchor, &info) || !info.dli_fname || !realpath(info.dli_fname, lib))
        return 0;
    char *slash = strrchr(lib, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    return snprintf(dir, len, "%s", lib[0] ? lib : "/") < (int)len;
}

/* Whether this libbatchscope is the build tree's copy (then the build tree's
 * freshly built plugins belong with it, not an installed set). */
static int running_from_build_tree(const char *libdir)
{
    char tree[PATH_MAX];
    if (!BSC_BUILD_TREE_LIBDIR[0] || !realpath(BSC_BUILD_TREE_LIBDIR, tree))
        return 0;
    return strcmp(libdir, tree) == 0;
}

/* A built-in directory that is missing is normal (nothing built or installed
 * yet); it is skipped rather than reported. */
static bsc_status load_optional_dir(bsc_registry *r, const char *dir, const char *origin)
{
    struct stat sb;
    if (!dir[0] || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return BSC_OK;
    return load_dir(r, dir, origin);
}

static bsc_status load_env_path(bsc_registry *r)
{
    const char *env = getenv(PLUGIN_PATH_ENV);
    char *copy = NULL, *save = NULL, *entry;
    bsc_status st = BSC_OK;

    if (!env || !env[0])
        return BSC_OK;
    copy = strdup(env);
    if (!copy)
        return bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory reading %s", PLUGIN_PATH_ENV);
    /* strtok_r skips empty entries ("a::b", a leading or trailing colon). */
    for (entry = strtok_r(copy, ":", &save); entry; entry = strtok_r(NULL, ":", &save)) {
        struct stat sb;
        if (stat(entry, &sb) != 0) {
            st = bsc_fail(BSC_ERR_NOT_FOUND, "%s entry '%s' does not exist: %s",
                          PLUGIN_PATH_ENV, entry, strerror(errno));
            goto cleanup;
        }
        st = bsc_registry_load_path(r, entry, PLUGIN_PATH_ENV);
        if (st != BSC_OK)
            goto cleanup;
    }

cleanup:
    free(copy);
    return st;
}

bsc_status bsc_registry_load_default(bsc_registry *r)
{
    char libdir[PATH_MAX], dir[PATH_MAX + 32];
    bsc_status st = BSC_OK;

    if (!r)
        return bsc_fail(BSC_ERR_USAGE, "registry.c: bsc_registry_load_default needs a registry");
    if (library_dir(libdir, sizeof libdir)) {
        if (running_from_build_tree(libdir))
            st = load_optional_dir(r, BSC_PLUGIN_BUILD_DIR, "build");
        else if (snprintf(dir, sizeof dir, "%s/%s", libdir, BSC_PLUGIN_REL_DIR) <
                 (int)sizeof dir)
            st = load_optional_dir(r, dir, "install");
    }
    if (st != BSC_OK)
        return st;
    return load_env_path(r);
}
