/* The plugin registry: finds, loads and checks plugins, and looks up the
 * layer, loss and analysis types they provide. A descriptor's own
 * consistency is checked in registry_check.c; clashes with plugins already
 * loaded are checked here.
 *
 * Accepted plugins are never dlclose'd: OpenCL event callbacks and kernels'
 * host-side helpers may point into them until the process ends. A plugin that
 * is rejected never had a type handed out, so it is closed again. */
#define _GNU_SOURCE /* dladdr() and Dl_info */

#include "batchscope/batchscope.h"
#include "batchscope/registry.h"
#include "registry_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef BSC_PLUGIN_BUILD_DIR
#define BSC_PLUGIN_BUILD_DIR ""
#endif
#ifndef BSC_PLUGIN_INSTALL_DIR
#define BSC_PLUGIN_INSTALL_DIR ""
#endif
#ifndef BSC_BUILD_TREE_LIBDIR
#define BSC_BUILD_TREE_LIBDIR ""
#endif

#define PLUGIN_PATH_ENV "BATCHSCOPE_PLUGIN_PATH"

typedef struct reg_plugin {
    bsc_plugin_info info;   /* handed out by pointer: the struct never moves */
    char *path;             /* as given (what messages show) */
    char *real;             /* realpath(), to skip a file reached twice */
    char *origin;
    void *handle;
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
    free(p->path);
    free(p->real);
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

static const void *find_type(const bsc_registry *r, bsc_type_kind k, const char *name,
                             const reg_plugin **owner)
{
    if (!r || !name)
        return NULL;
    for (size_t p = 0; p < r->n; p++) {
        const bsc_plugin_desc *d = r->plugins[p]->info.desc;
        for (size_t i = 0; i < kind_count(d, k); i++) {
            const char *tn;
            const void *t = kind_type(d, k, i, &tn);
            if (strcmp(tn, name) == 0) {
                if (owner)
                    *owner = r->plugins[p];
                return t;
            }
        }
    }
    return NULL;
}

const bsc_layer_type *bsc_registry_layer(const bsc_registry *r, const char *name)
{
    return find_type(r, BSC_KIND_LAYER, name, NULL);
}

const bsc_loss_type *bsc_registry_loss(const bsc_registry *r, const char *name)
{
    return find_type(r, BSC_KIND_LOSS, name, NULL);
}

const bsc_analysis_type *bsc_registry_analysis(const bsc_registry *r, const char *name)
{
    return find_type(r, BSC_KIND_ANALYSIS, name, NULL);
}

/* ------------------------------------------------------------ checks */

/* A descriptor sound on its own must also not provide a type name that a
 * plugin already loaded provides: lookups would silently pick the first. */
static bsc_status check_desc(const bsc_registry *r, const char *path, const bsc_plugin_desc *d)
{
    static const bsc_type_kind kinds[] = {BSC_KIND_LAYER, BSC_KIND_LOSS, BSC_KIND_ANALYSIS};
    bsc_status st = bsc_plugin_desc_check(path, d);

    if (st != BSC_OK)
        return st;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t i = 0; i < kind_count(d, kinds[k]); i++) {
            const char *name;
            const reg_plugin *owner = NULL;
            kind_type(d, kinds[k], i, &name);
            if (find_type(r, kinds[k], name, &owner))
                return bsc_fail(BSC_ERR_PLUGIN,
                                "%s: %s type '%s' is already provided by plugin '%s' (%s)", path,
                                kind_word(kinds[k]), name,
                                or_default(owner->info.desc->name, "?"), owner->path);
        }
    }
    return BSC_OK;
}

/* ------------------------------------------------------------ loading */

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
        !(p->origin = strdup(origin))) {
        st = bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory adding plugin %s", path);
        goto cleanup;
    }
    p->handle = handle;
    p->info.desc = d;
    p->info.path = p->path;
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
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
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
    d = entry();
    if (!d) {
        st = bsc_fail(BSC_ERR_PLUGIN, "%s: %s() returned NULL", path, BSC_PLUGIN_ENTRY_SYMBOL);
        goto cleanup;
    }
    st = check_desc(r, path, d);
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

/* Whether this libbatchscope is the build tree's copy (then the build tree's
 * freshly built plugins belong with it, not the installed ones). */
static int running_from_build_tree(void)
{
    static const char anchor = 0;
    Dl_info info;
    char lib[PATH_MAX], tree[PATH_MAX];
    char *slash;

    if (!BSC_BUILD_TREE_LIBDIR[0] || !dladdr(&anchor, &info) || !info.dli_fname)
        return 0;
    if (!realpath(info.dli_fname, lib) || !realpath(BSC_BUILD_TREE_LIBDIR, tree))
        return 0;
    slash = strrchr(lib, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    return strcmp(lib[0] ? lib : "/", tree) == 0;
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
    bsc_status st;

    if (!r)
        return bsc_fail(BSC_ERR_USAGE, "registry.c: bsc_registry_load_default needs a registry");
    if (running_from_build_tree())
        st = load_optional_dir(r, BSC_PLUGIN_BUILD_DIR, "build");
    else
        st = load_optional_dir(r, BSC_PLUGIN_INSTALL_DIR, "install");
    if (st != BSC_OK)
        return st;
    return load_env_path(r);
}

/* ------------------------------------------------------------ reporting */

bsc_status bsc_registry_unknown(const bsc_registry *r, bsc_type_kind kind, const bsc_node *at,
                                const char *name)
{
    const char **names = NULL;
    size_t n = 0, total = 0;
    char *known = NULL;
    size_t known_len = 1;
    const char *hint;
    bsc_status st = BSC_ERR_INVALID;

    name = or_default(name, "");
    for (size_t p = 0; r && p < r->n; p++)
        total += kind_count(r->plugins[p]->info.desc, kind);
    if (total) {
        names = malloc(total * sizeof *names);
        if (!names) {
            st = bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory listing %s types",
                          kind_word(kind));
            goto cleanup;
        }
    }
    for (size_t p = 0; r && p < r->n; p++) {
        const bsc_plugin_desc *d = r->plugins[p]->info.desc;
        for (size_t i = 0; i < kind_count(d, kind); i++) {
            kind_type(d, kind, i, &names[n]);
            known_len += strlen(names[n]) + 2;
            n++;
        }
    }

    hint = n ? bsc_closest_name(name, names, n) : NULL;
    if (hint) {
        if (at)
            st = bsc_node_fail(at, BSC_ERR_INVALID, "unknown %s type '%s' (did you mean '%s'?)",
                               kind_word(kind), name, hint);
        else
            st = bsc_fail(BSC_ERR_INVALID, "unknown %s type '%s' (did you mean '%s'?)",
                          kind_word(kind), name, hint);
        goto cleanup;
    }
    if (n) {
        known = malloc(known_len);
        if (!known) {
            st = bsc_fail(BSC_ERR_NOMEM, "registry.c: out of memory listing %s types",
                          kind_word(kind));
            goto cleanup;
        }
        known[0] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (i)
                strcat(known, ", ");
            strcat(known, names[i]);
        }
    }
    if (at)
        st = bsc_node_fail(at, BSC_ERR_INVALID, "unknown %s type '%s' (%s%s)", kind_word(kind),
                           name, n ? "known: " : "no plugin provides any",
                           n ? known : "");
    else
        st = bsc_fail(BSC_ERR_INVALID, "unknown %s type '%s' (%s%s)", kind_word(kind), name,
                      n ? "known: " : "no plugin provides any", n ? known : "");

cleanup:
    free(known);
    free(names);
    return st;
}

static void print_kind(const bsc_plugin_desc *d, bsc_type_kind k, const char *title, FILE *f)
{
    size_t n = kind_count(d, k);
    if (!n)
        return;
    fprintf(f, "  %s:\n", title);
    for (size_t i = 0; i < n; i++) {
        const char *name, *summary = NULL;
        const void *t = kind_type(d, k, i, &name);
        switch (k) {
        case BSC_KIND_LAYER: summary = ((const bsc_layer_type *)t)->summary; break;
        case BSC_KIND_LOSS: summary = ((const bsc_loss_type *)t)->summary; break;
        case BSC_KIND_ANALYSIS: summary = ((const bsc_analysis_type *)t)->summary; break;
        }
        fprintf(f, "    %-20s %s\n", name, or_default(summary, ""));
    }
}

void bsc_registry_print(const bsc_registry *r, FILE *f)
{
    if (!f)
        return;
    if (!r || r->n == 0) {
        fprintf(f, "no plugins loaded\n");
        return;
    }
    for (size_t p = 0; p < r->n; p++) {
        const reg_plugin *pl = r->plugins[p];
        const bsc_plugin_desc *d = pl->info.desc;
        if (p)
            fputc('\n', f);
        fprintf(f, "%s %s (plugin ABI %u.%u)\n", d->name, or_default(d->version, "?"),
                (unsigned)d->abi_major, (unsigned)d->abi_minor);
        fprintf(f, "  path:   %s\n", pl->path);
        fprintf(f, "  origin: %s\n", pl->origin);
        print_kind(d, BSC_KIND_LAYER, "layers", f);
        print_kind(d, BSC_KIND_LOSS, "losses", f);
        print_kind(d, BSC_KIND_ANALYSIS, "analyses", f);
    }
}
