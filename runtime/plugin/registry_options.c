/* Types as a user meets them: resolving a pipeline's `type:` (with the
 * errors that say where a type belongs), checking a type's options against
 * the list its descriptor declares, and printing types and options for
 * `batchscope plugins` and the README. */
#include "batchscope/version.h"
#include "batchscope/registry.h"
#include "registry_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {NULL, "layer", "loss", "observer", "analysis", "report"};
static const char *const kind_keys[] = {NULL, "model", "loss", "observers", "analyses", "report"};
static const char *const kind_plural[] = {NULL, "layers", "losses", "observers", "analyses",
                                          "reports"};

const char *bsc_kind_name(bsc_kind kind)
{
    return kind >= BSC_KIND_LAYER && kind <= BSC_KIND_REPORT ? kind_names[kind] : "type";
}

const char *bsc_kind_key(bsc_kind kind)
{
    return kind >= BSC_KIND_LAYER && kind <= BSC_KIND_REPORT ? kind_keys[kind] : "?";
}

const char *bsc_opt_kind_name(bsc_opt_kind kind)
{
    static const char *const names[] = {NULL, "bool", "int", "float", "string", "list", "map",
                                        "any"};
    return kind >= BSC_OPT_BOOL && kind <= BSC_OPT_ANY ? names[kind] : "?";
}

/* "an observer", "a layer". */
static const char *article(bsc_kind kind)
{
    const char *n = bsc_kind_name(kind);
    return strchr("aeiou", n[0]) ? "an" : "a";
}

bsc_status bsc_registry_resolve(const bsc_registry *r, bsc_kind kind, const bsc_node *at,
                                const char *name, const bsc_type **out)
{
    const char **names = NULL;
    char *known = NULL;
    bsc_status st = BSC_ERR_INVALID;

    *out = NULL;
    name = or_default(name, "");
    if ((*out = bsc_registry_find(r, kind, name, NULL)))
        return BSC_OK;
    /* The commonest mistake is the right type under the wrong key. */
    for (int k = BSC_KIND_LAYER; k <= BSC_KIND_REPORT; k++) {
        if ((bsc_kind)k == kind || !bsc_registry_find(r, (bsc_kind)k, name, NULL))
            continue;
        const char *fmt = (bsc_kind)k == BSC_KIND_LAYER ? "'%s' is %s %s: it belongs in `%s:`, "
                          "not under `%s:`" : "'%s' is %s %s: list it under `%s:`, not under "
                          "`%s:`";
        if (at)
            return bsc_node_fail(at, BSC_ERR_INVALID, fmt, name, article((bsc_kind)k),
                                 bsc_kind_name((bsc_kind)k), bsc_kind_key((bsc_kind)k),
                                 bsc_kind_key(kind));
        return bsc_fail(BSC_ERR_INVALID, fmt, name, article((bsc_kind)k),
                        bsc_kind_name((bsc_kind)k), bsc_kind_key((bsc_kind)k),
                        bsc_kind_key(kind));
    }

    size_t n = bsc_registry_count(r, kind), known_len = 1;
    if (n && !(names = malloc(n * sizeof *names))) {
        st = bsc_fail(BSC_ERR_NOMEM, "registry: out of memory listing %s types",
                      bsc_kind_name(kind));
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = bsc_registry_type(r, kind, i)->name;
        known_len += strlen(names[i]) + 2;
    }
    const char *hint = n ? bsc_closest_name(name, names, n) : NULL;
    if (hint) {
        st = at ? bsc_node_fail(at, BSC_ERR_INVALID, "unknown %s type '%s' (did you mean '%s'?)",
                                bsc_kind_name(kind), name, hint)
                : bsc_fail(BSC_ERR_INVALID, "unknown %s type '%s' (did you mean '%s'?)",
                           bsc_kind_name(kind), name, hint);
        goto cleanup;
    }
    if (!(known = malloc(known_len))) {
        st = bsc_fail(BSC_ERR_NOMEM, "registry: out of memory listing %s types",
                      bsc_kind_name(kind));
        goto cleanup;
    }
    known[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(known, ", ");
        strcat(known, names[i]);
    }
    st = at ? bsc_node_fail(at, BSC_ERR_INVALID, "unknown %s type '%s' (%s%s)",
                            bsc_kind_name(kind), name, n ? "known: " : "no plugin provides any",
                            known)
            : bsc_fail(BSC_ERR_INVALID, "unknown %s type '%s' (%s%s)", bsc_kind_name(kind),
                       name, n ? "known: " : "no plugin provides any", known);

cleanup:
    free(known);
    free(names);
    return st;
}

static bsc_status check_value(const bsc_type *t, const bsc_option *o, const bsc_node *v)
{
    const char *want = NULL;
    switch (o->kind) {
    case BSC_OPT_BOOL: {
        int b;
        if (v->kind == BSC_NODE_SCALAR)
            return bsc_node_to_bool(v, &b);
        want = "true or false";
        break;
    }
    case BSC_OPT_INT: {
        long l;
        if (v->kind == BSC_NODE_SCALAR)
            return bsc_node_to_long(v, -__LONG_MAX__ - 1, __LONG_MAX__, &l);
        want = "an integer";
        break;
    }
    case BSC_OPT_FLOAT: {
        double d;
        if (v->kind == BSC_NODE_SCALAR)
            return bsc_node_to_double(v, -__DBL_MAX__, __DBL_MAX__, &d);
        want = "a number";
        break;
    }
    case BSC_OPT_STRING:
        if (v->kind == BSC_NODE_SCALAR)
            return BSC_OK;
        want = "a string";
        break;
    case BSC_OPT_LIST:
        if (v->kind != BSC_NODE_MAP)
            return BSC_OK;
        want = "a list";
        break;
    case BSC_OPT_MAP:
        if (v->kind == BSC_NODE_MAP)
            return BSC_OK;
        want = "a mapping";
        break;
    case BSC_OPT_ANY:
        return BSC_OK;
    }
    return bsc_node_fail(v, BSC_ERR_INVALID, "%s '%s': option '%s' must be %s", bsc_kind_name(t->kind),
                         t->name, o->name, want ? want : "valid");
}

bsc_status bsc_type_check_options(const bsc_type *t, const bsc_node *map)
{
    const char **keys = NULL;
    size_t n = 0;
    bsc_status st = BSC_OK;

    if (!map || (map->kind == BSC_NODE_SCALAR && (!map->value || !map->value[0])))
        return BSC_OK;
    /* A bare scalar names the type alone (`loss: softmax_cross_entropy`). */
    if (map->kind == BSC_NODE_SCALAR)
        return BSC_OK;
    while (t->options && t->options[n])
        n++;
    if (!(keys = malloc((n + 2) * sizeof *keys)))
        return bsc_fail(BSC_ERR_NOMEM, "registry: out of memory checking options");
    keys[0] = "type";
    for (size_t i = 0; i < n; i++)
        keys[i + 1] = t->options[i]->name;
    keys[n + 1] = NULL;
    st = bsc_node_check_keys(map, keys);
    for (size_t i = 0; st == BSC_OK && i < n; i++) {
        const bsc_node *v = bsc_node_get(map, t->options[i]->name);
        if (v)
            st = check_value(t, t->options[i], v);
    }
    free(keys);
    return st;
}

/* ------------------------------------------------------------ printing */

static void print_options(const bsc_type *t, FILE *f)
{
    for (size_t i = 0; t->options && t->options[i]; i++) {
        const bsc_option *o = t->options[i];
        char def[64];
        snprintf(def, sizeof def, "%s", o->def && o->def[0] ? o->def : "-");
        fprintf(f, "        %-16s %-6s %-12s %s\n", o->name, bsc_opt_kind_name(o->kind), def,
                or_default(o->help, ""));
    }
}

void bsc_registry_print(const bsc_registry *r, FILE *f)
{
    if (!f)
        return;
    if (!r || bsc_registry_n_plugins(r) == 0) {
        fprintf(f, "no plugins loaded\n");
        return;
    }
    for (size_t p = 0; p < bsc_registry_n_plugins(r); p++) {
        const bsc_plugin_info *pl = bsc_registry_plugin(r, p);
        const bsc_plugin_desc *d = pl->desc;
        if (p)
            fputc('\n', f);
        fprintf(f, "%s %s (plugin ABI %u.%u)\n", d->name, or_default(d->version, "?"),
                (unsigned)d->abi_major, (unsigned)d->abi_minor);
        fprintf(f, "  path:   %s\n", pl->path);
        fprintf(f, "  origin: %s\n", pl->origin);
        for (int k = BSC_KIND_LAYER; k <= BSC_KIND_REPORT; k++) {
            int header = 0;
            for (size_t i = 0; d->types[i]; i++) {
                const bsc_type *t = bsc_registry_find(r, (bsc_kind)k, d->types[i]->name, NULL);
                if (d->types[i]->kind != (bsc_kind)k || !t)
                    continue;
                if (!header++)
                    fprintf(f, "  %s (under `%s:`):\n", kind_plural[k], kind_keys[k]);
                fprintf(f, "    %-20s %s\n", t->name, or_default(t->summary, ""));
                print_options(t, f);
            }
        }
    }
}

/* Markdown cells: a '|' would end the cell. */
static void md_cell(const char *s, FILE *f)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
}

void bsc_registry_print_markdown(const bsc_registry *r, FILE *f)
{
    for (int k = BSC_KIND_LAYER; f && k <= BSC_KIND_REPORT; k++) {
        for (size_t i = 0; i < bsc_registry_count(r, (bsc_kind)k); i++) {
            const bsc_type *t = bsc_registry_type(r, (bsc_kind)k, i);
            fprintf(f, "#### `%s` (%s)\n\n", t->name, bsc_kind_name(t->kind));
            md_cell(t->summary, f);
            fputs("\n\n", f);
            if (!t->options || !t->options[0]) {
                fputs("No options.\n\n", f);
                continue;
            }
            fputs("| option | kind | default | meaning |\n|---|---|---|---|\n", f);
            for (size_t j = 0; t->options[j]; j++) {
                const bsc_option *o = t->options[j];
                fprintf(f, "| `%s` | %s | ", o->name, bsc_opt_kind_name(o->kind));
                if (o->def && o->def[0]) {
                    fputc('`', f);
                    md_cell(o->def, f);
                    fputc('`', f);
                }
                fputs(" | ", f);
                md_cell(o->help, f);
                fputs(" |\n", f);
            }
            fputc('\n', f);
        }
    }
}
