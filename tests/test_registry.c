/* The plugin registry: loading, ABI and table checks, duplicates, search
 * path, lookups, hints and the listing. Uses the small plugins built from
 * tests/plugins/, loaded one file at a time (their directory also holds the
 * deliberately broken ones). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batchscope/batchscope.h"

#define TP(name) BSC_TEST_PLUGIN_DIR "/" name ".so"

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

static bsc_registry *new_registry(void)
{
    bsc_registry *r = NULL;
    assert_int_equal(bsc_registry_new(&r), BSC_OK);
    assert_non_null(r);
    return r;
}

/* A temporary directory holding symlinks to the named test plugins. */
typedef struct tmpdir {
    char path[64];
    char files[4][256];
    int n;
} tmpdir;

static void tmpdir_make(tmpdir *t, const char *const *plugins, int n)
{
    strcpy(t->path, "/tmp/bsc-test-registry-XXXXXX");
    assert_non_null(mkdtemp(t->path));
    t->n = 0;
    char dir[sizeof t->path];
    memcpy(dir, t->path, sizeof dir);
    for (int i = 0; i < n; i++) {
        snprintf(t->files[t->n], sizeof t->files[0], "%s/%s.so", dir, plugins[i]);
        char target[256];
        snprintf(target, sizeof target, "%s/%s.so", BSC_TEST_PLUGIN_DIR, plugins[i]);
        assert_int_equal(symlink(target, t->files[t->n]), 0);
        t->n++;
    }
    /* Not a plugin: must be ignored by the *.so scan. */
    snprintf(t->files[t->n], sizeof t->files[0], "%s/README.txt", dir);
    FILE *f = fopen(t->files[t->n], "w");
    assert_non_null(f);
    fputs("not a plugin\n", f);
    fclose(f);
    t->n++;
}

static void tmpdir_remove(tmpdir *t)
{
    for (int i = 0; i < t->n; i++)
        unlink(t->files[i]);
    rmdir(t->path);
}

static void test_load_good_a(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "pipeline"), BSC_OK);
    assert_int_equal(bsc_registry_n_plugins(r), 1);

    const bsc_plugin_info *info = bsc_registry_plugin(r, 0);
    assert_non_null(info);
    assert_string_equal(info->desc->name, "good_a");
    assert_string_equal(info->path, TP("good_a"));
    assert_string_equal(info->origin, "pipeline");
    assert_null(bsc_registry_plugin(r, 1));

    const bsc_plugin_info *owner = NULL;
    const bsc_type *l = bsc_registry_find(r, BSC_KIND_LAYER, "tp_identity", &owner);
    assert_non_null(l);
    assert_ptr_equal(owner, info);
    assert_int_equal(l->kind, BSC_KIND_LAYER);
    assert_string_equal(l->options[0]->name, "scale");
    const bsc_layer_ops *lops = l->ops;
    assert_non_null(lops->forward);
    assert_non_null(lops->backward);
    /* The host's copy is a full-size table whatever the plugin gave. */
    assert_int_equal(lops->struct_size, sizeof(bsc_layer_ops));

    const bsc_type *lo = bsc_registry_find(r, BSC_KIND_LOSS, "tp_loss", NULL);
    assert_non_null(lo);
    assert_non_null(((const bsc_loss_ops *)lo->ops)->forward);
    static const struct { bsc_kind kind; const char *name; } each[] = {
        {BSC_KIND_OBSERVER, "tp_observer"}, {BSC_KIND_ANALYSIS, "tp_analysis"},
        {BSC_KIND_REPORT, "tp_report"}};
    for (size_t i = 0; i < 3; i++) {
        const bsc_type *t = bsc_registry_find(r, each[i].kind, each[i].name, NULL);
        assert_non_null(t);
        assert_int_equal(bsc_registry_count(r, each[i].kind), 1);
        assert_ptr_equal(bsc_registry_type(r, each[i].kind, 0), t);
    }

    /* Kinds are separate namespaces. */
    assert_null(bsc_registry_find(r, BSC_KIND_LAYER, "tp_loss", NULL));
    assert_null(bsc_registry_find(r, BSC_KIND_LOSS, "tp_identity", NULL));
    assert_null(bsc_registry_find(r, BSC_KIND_ANALYSIS, "tp_observer", NULL));
    assert_null(bsc_registry_find(r, BSC_KIND_LAYER, "dense_nope", NULL));

    /* The layer's ops work without a device; the optional ones it left
     * out read as NULL (their defaults are the caller's: plugin.h). */
    bsc_layer_config cfg = {.options = NULL, .input = {.ndim = 2, .dim = {3, 4}}, .index = 0};
    void *self = NULL;
    bsc_shape out;
    assert_int_equal(lops->create(&cfg, &self), BSC_OK);
    assert_int_equal(lops->output_shape(self, &out), BSC_OK);
    assert_int_equal(out.ndim, 2);
    assert_int_equal(out.dim[1], 4);
    assert_null(lops->n_params);
    assert_null(lops->param_spec);
    assert_null(lops->workspace_size);
    assert_null(lops->bind);
    assert_null(lops->per_example_sqnorm);
    lops->destroy(self);
    /* destroy left out gets free() */
    const bsc_observer_ops *oo = bsc_registry_find(r, BSC_KIND_OBSERVER, "tp_observer",
                                                   NULL)->ops;
    assert_non_null(oo->destroy);
    assert_null(oo->run_start);
    assert_null(oo->study_end);

    bsc_registry_free(r);
}

static void test_load_two(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "pipeline"), BSC_OK);
    assert_int_equal(bsc_registry_load_path(r, TP("good_b"), "BATCHSCOPE_PLUGIN_PATH"), BSC_OK);
    assert_int_equal(bsc_registry_n_plugins(r), 2);
    assert_non_null(bsc_registry_find(r, BSC_KIND_LAYER, "tp_identity", NULL));
    assert_non_null(bsc_registry_find(r, BSC_KIND_LAYER, "tp_other", NULL));
    assert_string_equal(bsc_registry_plugin(r, 1)->desc->name, "good_b");
    assert_string_equal(bsc_registry_plugin(r, 1)->origin, "BATCHSCOPE_PLUGIN_PATH");
    bsc_registry_free(r);
}

static void check_abi_reject(const char *file, unsigned major, unsigned minor)
{
    bsc_registry *r = new_registry();
    char plugin_abi[32], host_abi[32];
    snprintf(plugin_abi, sizeof plugin_abi, "ABI %u.%u", major, minor);
    snprintf(host_abi, sizeof host_abi, "ABI %d.%d", BSC_ABI_MAJOR, BSC_ABI_MINOR);

    bsc_clear_error();
    assert_int_equal(bsc_registry_load_path(r, file, "pipeline"), BSC_ERR_ABI);
    assert_contains(bsc_last_error(), file);
    assert_contains(bsc_last_error(), plugin_abi);
    assert_contains(bsc_last_error(), host_abi);
    assert_contains(bsc_last_error(), bsc_version());
    assert_int_equal(bsc_registry_n_plugins(r), 0);
    bsc_registry_free(r);
}

static void test_abi_major(void **state)
{
    (void)state;
    check_abi_reject(TP("abi_major"), BSC_ABI_MAJOR + 1, BSC_ABI_MINOR);
}

static void test_abi_minor(void **state)
{
    (void)state;
    check_abi_reject(TP("abi_minor"), BSC_ABI_MAJOR, BSC_ABI_MINOR + 1);
}

/* A plugin built against the 1.x headers is told to rebuild, without the
 * host reading past the two version fields. */
static void test_abi_1x(void **state)
{
    (void)state;
    check_abi_reject(TP("abi_1x"), 1, 1);
    assert_contains(bsc_last_error(), "rebuild it");
}

/* An ops table smaller than its kind's (the wrong stride) is rejected
 * naming both sizes. */
static void test_small_ops(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    char sizes[64];
    snprintf(sizes, sizeof sizes, "struct_size is %zu bytes", sizeof(bsc_analysis_ops));
    assert_int_equal(bsc_registry_load_path(r, TP("small_ops"), "pipeline"), BSC_ERR_ABI);
    assert_contains(bsc_last_error(), TP("small_ops"));
    assert_contains(bsc_last_error(), "layer type 'tp_small'");
    assert_contains(bsc_last_error(), sizes);
    assert_contains(bsc_last_error(), "ABI 2.0");
    assert_int_equal(bsc_registry_n_plugins(r), 0);
    bsc_registry_free(r);
}

/* An observer table of the ABI 2.1 layout, ending before after_backward:
 * the host's full-size copy has that hook NULL (not what lies past the
 * plugin's table) and keeps the older ones. */
static void test_old_observer_table(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("old_observer"), "pipeline"), BSC_OK);
    const bsc_type *t = bsc_registry_find(r, BSC_KIND_OBSERVER, "tp_old_observer", NULL);
    assert_non_null(t);
    const bsc_observer_ops *ops = t->ops;
    assert_int_equal(ops->struct_size, sizeof(bsc_observer_ops));
    assert_non_null(ops->create);
    assert_non_null(ops->after_step);
    assert_null(ops->after_backward);
    assert_non_null(ops->destroy);   /* the default */
    bsc_registry_free(r);
}

static void test_no_entry(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("no_entry"), "pipeline"), BSC_ERR_PLUGIN);
    assert_contains(bsc_last_error(), TP("no_entry"));
    assert_contains(bsc_last_error(), "not a batchscope plugin (no bsc_plugin_entry symbol)");
    assert_int_equal(bsc_registry_n_plugins(r), 0);
    bsc_registry_free(r);
}

static void test_not_a_shared_object(void **state)
{
    (void)state;
    char path[] = "/tmp/bsc-test-registry-XXXXXX";
    assert_non_null(mkdtemp(path));
    char file[128];
    snprintf(file, sizeof file, "%s/junk.so", path);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);

    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, file, "pipeline"), BSC_ERR_PLUGIN);
    assert_contains(bsc_last_error(), file);
    /* Loading the directory reports the same file. */
    assert_int_equal(bsc_registry_load_path(r, path, "pipeline"), BSC_ERR_PLUGIN);
    assert_contains(bsc_last_error(), "junk.so");
    bsc_registry_free(r);
    unlink(file);
    rmdir(path);
}

static void test_missing_file(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, "/nonexistent/bsc-nope.so", "pipeline"),
                     BSC_ERR_NOT_FOUND);
    assert_contains(bsc_last_error(), "/nonexistent/bsc-nope.so");
    bsc_registry_free(r);
}

static void test_duplicate_type(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "pipeline"), BSC_OK);
    assert_int_equal(bsc_registry_load_path(r, TP("dup"), "pipeline"), BSC_ERR_PLUGIN);
    assert_contains(bsc_last_error(), TP("good_a"));
    assert_contains(bsc_last_error(), TP("dup"));
    assert_contains(bsc_last_error(), "'tp_identity'");
    /* The clash leaves the first provider in place. */
    assert_int_equal(bsc_registry_n_plugins(r), 1);
    const bsc_plugin_info *owner = NULL;
    assert_non_null(bsc_registry_find(r, BSC_KIND_LAYER, "tp_identity", &owner));
    assert_ptr_equal(owner, bsc_registry_plugin(r, 0));
    bsc_registry_free(r);
}

static void test_null_ops(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("null_ops"), "pipeline"), BSC_ERR_PLUGIN);
    assert_contains(bsc_last_error(), TP("null_ops"));
    assert_contains(bsc_last_error(), "layer type 'tp_nullfwd'");
    assert_contains(bsc_last_error(), "forward");
    assert_int_equal(bsc_registry_n_plugins(r), 0);
    assert_null(bsc_registry_find(r, BSC_KIND_LAYER, "tp_nullfwd", NULL));
    bsc_registry_free(r);
}

static void test_same_file_twice(void **state)
{
    (void)state;
    static const char *const good[] = {"good_a"};
    tmpdir t;
    tmpdir_make(&t, good, 1);

    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "build"), BSC_OK);
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "pipeline"), BSC_OK);
    /* Through a symlink elsewhere: still the same file. */
    assert_int_equal(bsc_registry_load_path(r, t.files[0], "BATCHSCOPE_PLUGIN_PATH"), BSC_OK);
    assert_int_equal(bsc_registry_n_plugins(r), 1);
    assert_string_equal(bsc_registry_plugin(r, 0)->origin, "build");
    bsc_registry_free(r);
    tmpdir_remove(&t);
}

static void test_load_directory(void **state)
{
    (void)state;
    /* Given out of order: the scan must sort. */
    static const char *const good[] = {"good_b", "good_a"};
    tmpdir t;
    tmpdir_make(&t, good, 2);

    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, t.path, "pipeline"), BSC_OK);
    assert_int_equal(bsc_registry_n_plugins(r), 2);
    assert_string_equal(bsc_registry_plugin(r, 0)->desc->name, "good_a");
    assert_string_equal(bsc_registry_plugin(r, 1)->desc->name, "good_b");
    assert_contains(bsc_registry_plugin(r, 0)->path, t.path);
    assert_non_null(bsc_registry_find(r, BSC_KIND_LAYER, "tp_other", NULL));
    bsc_registry_free(r);

    /* An empty directory is fine. */
    tmpdir_remove(&t);
    tmpdir_make(&t, NULL, 0);
    r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, t.path, "pipeline"), BSC_OK);
    assert_int_equal(bsc_registry_n_plugins(r), 0);
    bsc_registry_free(r);
    tmpdir_remove(&t);
}

static void test_env_path(void **state)
{
    (void)state;
    static const char *const good[] = {"good_a", "good_b"};
    tmpdir t;
    tmpdir_make(&t, good, 2);
    char env[512];

    /* Empty entries are skipped; a file entry works as well as a directory. */
    snprintf(env, sizeof env, ":%s::%s:", t.path, TP("good_b"));
    assert_int_equal(setenv("BATCHSCOPE_PLUGIN_PATH", env, 1), 0);
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_default(r), BSC_OK);
    assert_non_null(bsc_registry_find(r, BSC_KIND_LAYER, "tp_identity", NULL));
    int seen = 0;
    for (size_t i = 0; i < bsc_registry_n_plugins(r); i++) {
        const bsc_plugin_info *p = bsc_registry_plugin(r, i);
        if (strcmp(p->desc->name, "good_a") == 0 || strcmp(p->desc->name, "good_b") == 0) {
            assert_string_equal(p->origin, "BATCHSCOPE_PLUGIN_PATH");
            seen++;
        }
    }
    assert_int_equal(seen, 2);
    bsc_registry_free(r);

    /* A nonexistent entry is an error naming it. */
    snprintf(env, sizeof env, "%s:/nonexistent/bsc-plugins-xyz", t.path);
    assert_int_equal(setenv("BATCHSCOPE_PLUGIN_PATH", env, 1), 0);
    r = new_registry();
    assert_int_not_equal(bsc_registry_load_default(r), BSC_OK);
    assert_contains(bsc_last_error(), "/nonexistent/bsc-plugins-xyz");
    assert_contains(bsc_last_error(), "BATCHSCOPE_PLUGIN_PATH");
    bsc_registry_free(r);

    assert_int_equal(unsetenv("BATCHSCOPE_PLUGIN_PATH"), 0);
    tmpdir_remove(&t);
}

static void test_load_default(void **state)
{
    (void)state;
    assert_int_equal(setenv("BATCHSCOPE_PLUGIN_PATH", "", 1), 0);
    bsc_registry *r = new_registry();
    bsc_status st = bsc_registry_load_default(r);
    if (st != BSC_OK)
        fail_msg("bsc_registry_load_default: %s", bsc_last_error());
    /* The test runs against the build tree's library, so whatever it found
     * (possibly nothing yet) came from the build tree's plugin directory. */
    for (size_t i = 0; i < bsc_registry_n_plugins(r); i++) {
        const bsc_plugin_info *p = bsc_registry_plugin(r, i);
        assert_string_equal(p->origin, "build");
        assert_contains(p->path, BSC_PLUGIN_BUILD_DIR);
    }
    /* Loading the defaults again adds nothing. */
    size_t n = bsc_registry_n_plugins(r);
    assert_int_equal(bsc_registry_load_default(r), BSC_OK);
    assert_int_equal(bsc_registry_n_plugins(r), n);
    bsc_registry_free(r);
    assert_int_equal(unsetenv("BATCHSCOPE_PLUGIN_PATH"), 0);
}

static bsc_status resolve(bsc_registry *r, bsc_kind kind, const bsc_node *at, const char *name)
{
    const bsc_type *t;
    return bsc_registry_resolve(r, kind, at, name, &t);
}

static void test_unknown(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "pipeline"), BSC_OK);
    assert_int_equal(bsc_registry_load_path(r, TP("good_b"), "pipeline"), BSC_OK);

    bsc_node at = {.kind = BSC_NODE_SCALAR, .value = "tp_identiy", .file = "study.yaml",
                   .line = 7, .col = 11};
    assert_int_equal(resolve(r, BSC_KIND_LAYER, &at, "tp_identiy"), BSC_ERR_INVALID);
    assert_contains(bsc_last_error(), "study.yaml:7:11");
    assert_contains(bsc_last_error(), "unknown layer type 'tp_identiy'");
    assert_contains(bsc_last_error(), "did you mean 'tp_identity'?");

    /* Nothing close: the known names are listed instead. */
    assert_int_equal(resolve(r, BSC_KIND_LAYER, &at, "convolution_transpose"), BSC_ERR_INVALID);
    assert_contains(bsc_last_error(), "unknown layer type 'convolution_transpose'");
    assert_contains(bsc_last_error(), "tp_identity");
    assert_contains(bsc_last_error(), "tp_other");

    assert_int_equal(resolve(r, BSC_KIND_LOSS, &at, "tp_los"), BSC_ERR_INVALID);
    assert_contains(bsc_last_error(), "unknown loss type 'tp_los' (did you mean 'tp_loss'?)");
    assert_int_equal(resolve(r, BSC_KIND_OBSERVER, &at, "tp_observr"), BSC_ERR_INVALID);
    assert_contains(bsc_last_error(), "did you mean 'tp_observer'?");
    bsc_registry_free(r);

    /* With nothing loaded there is nothing to suggest, and no crash. */
    r = new_registry();
    assert_int_equal(resolve(r, BSC_KIND_LAYER, &at, "dense"), BSC_ERR_INVALID);
    assert_contains(bsc_last_error(), "unknown layer type 'dense'");
    bsc_registry_free(r);
}

/* A type under the wrong key says where it belongs. */
static void test_wrong_list(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "pipeline"), BSC_OK);
    bsc_node at = {.kind = BSC_NODE_SCALAR, .value = "tp_observer", .file = "study.yaml",
                   .line = 12, .col = 13};
    assert_int_equal(resolve(r, BSC_KIND_ANALYSIS, &at, "tp_observer"), BSC_ERR_INVALID);
    assert_contains(bsc_last_error(), "study.yaml:12:13");
    assert_contains(bsc_last_error(),
                    "'tp_observer' is an observer: list it under `observers:`, not under "
                    "`analyses:`");
    assert_int_equal(resolve(r, BSC_KIND_OBSERVER, &at, "tp_analysis"), BSC_ERR_INVALID);
    assert_contains(bsc_last_error(), "is an analysis: list it under `analyses:`");
    assert_int_equal(resolve(r, BSC_KIND_ANALYSIS, &at, "tp_identity"), BSC_ERR_INVALID);
    assert_contains(bsc_last_error(), "is a layer: it belongs in `model:`");
    assert_int_equal(resolve(r, BSC_KIND_OBSERVER, &at, "tp_report"), BSC_ERR_INVALID);
    assert_contains(bsc_last_error(), "list it under `report:`");
    bsc_registry_free(r);
}

/* Options are checked against the descriptor's list: unknown keys (with a
 * hint) and values of the wrong form, at file:line:col. */
static void test_options(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "pipeline"), BSC_OK);
    const bsc_type *l = bsc_registry_find(r, BSC_KIND_LAYER, "tp_identity", NULL);
    const bsc_type *o = bsc_registry_find(r, BSC_KIND_OBSERVER, "tp_observer", NULL);
    static const struct {
        int layer;
        const char *yaml, *want;
    } cases[] = {
        {1, "{type: tp_identity, scale: 2.5, tag: x}", NULL},
        {0, "{type: tp_observer}", NULL},
        {0, "{type: tp_observer, every: 3, on: false}", NULL},
        {1, "{type: tp_identity, scael: 2}", "o.yaml:1:21: unknown key 'scael' (expected "
                                            "one of: type, scale, tag)"},
        {1, "{type: tp_identity, scale: big}", "o.yaml:1:28"},
        {1, "{type: tp_identity, tag: [a]}", "option 'tag' must be a string"},
        {0, "{type: tp_observer, every: 1.5}", "o.yaml:1:28"},
        {0, "{type: tp_observer, on: maybe}", "o.yaml:1:25"},
        {0, "{type: tp_observer, every: {a: 1}}", "option 'every' must be an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bsc_node *n = NULL;
        assert_int_equal(bsc_node_parse_string("o.yaml", cases[i].yaml, &n), BSC_OK);
        bsc_status s = bsc_type_check_options(cases[i].layer ? l : o, n);
        if (!cases[i].want && s != BSC_OK)
            fail_msg("case %zu: %s", i, bsc_last_error());
        if (cases[i].want) {
            assert_int_not_equal(s, BSC_OK);
            if (!strstr(bsc_last_error(), cases[i].want))
                fail_msg("case %zu: '%s' lacks '%s'", i, bsc_last_error(), cases[i].want);
        }
        bsc_node_free(n);
    }
    /* No mapping at all: every option at its default. */
    assert_int_equal(bsc_type_check_options(l, NULL), BSC_OK);
    bsc_registry_free(r);
}

static void test_markdown(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "pipeline"), BSC_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    bsc_registry_print_markdown(r, f);
    fclose(f);
    assert_contains(buf, "#### `tp_identity` (layer)");
    assert_contains(buf, "| `scale` | float | `1` | ignored |");
    assert_contains(buf, "#### `tp_report` (report)");
    assert_contains(buf, "No options.");
    /* Kinds in order: layers before observers before reports. */
    assert_true(strstr(buf, "tp_identity") < strstr(buf, "tp_observer"));
    assert_true(strstr(buf, "tp_observer") < strstr(buf, "tp_report"));
    free(buf);
    bsc_registry_free(r);
}

static void test_print(void **state)
{
    (void)state;
    bsc_registry *r = new_registry();
    assert_int_equal(bsc_registry_load_path(r, TP("good_a"), "pipeline"), BSC_OK);
    assert_int_equal(bsc_registry_load_path(r, TP("good_b"), "build"), BSC_OK);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    bsc_registry_print(r, f);
    fclose(f);

    assert_contains(buf, "good_a 0.0.1");
    assert_contains(buf, "good_b");
    assert_contains(buf, TP("good_a"));
    assert_contains(buf, TP("good_b"));
    assert_contains(buf, "origin: pipeline");
    assert_contains(buf, "origin: build");
    char abi[32];
    snprintf(abi, sizeof abi, "ABI %d.%d", BSC_ABI_MAJOR, BSC_ABI_MINOR);
    assert_contains(buf, abi);
    assert_contains(buf, "tp_identity");
    assert_contains(buf, "passes its input through");
    assert_contains(buf, "tp_loss");
    assert_contains(buf, "tp_observer");
    assert_contains(buf, "tp_other");
    assert_contains(buf, "observers (under `observers:`)");
    assert_contains(buf, "scale");
    /* good_a's types are listed under good_a, before good_b starts. */
    assert_true(strstr(buf, "tp_observer") < strstr(buf, "good_b"));
    free(buf);
    bsc_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good_a),
        cmocka_unit_test(test_load_two),
        cmocka_unit_test(test_abi_major),
        cmocka_unit_test(test_abi_minor),
        cmocka_unit_test(test_abi_1x),
        cmocka_unit_test(test_small_ops),
        cmocka_unit_test(test_old_observer_table),
        cmocka_unit_test(test_no_entry),
        cmocka_unit_test(test_not_a_shared_object),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_duplicate_type),
        cmocka_unit_test(test_null_ops),
        cmocka_unit_test(test_same_file_twice),
        cmocka_unit_test(test_load_directory),
        cmocka_unit_test(test_env_path),
        cmocka_unit_test(test_load_default),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_wrong_list),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_print),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
