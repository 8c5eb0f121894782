/* The YAML layer: marks, syntax errors, rejected constructs, accessors and
 * their messages, closest names, writing and cloning. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batchscope/node.h"
#include "testutil.h"

static int setup(void **state)
{
    (void)state;
    return tu_scratch_setup("node");
}

/* Parses text through a file, as the pipeline does. */
static bsc_node *parse_ok(const char *name, const char *text)
{
    bsc_node *root = NULL;
    bsc_status st = bsc_node_parse_file(tu_scratch_write(name, text), &root);
    if (st != BSC_OK)
        fail_msg("parse failed: %s", bsc_last_error());
    return root;
}

/* The parse must fail with `code` and exactly "<tu_scratch>/<name>:<rest>". */
static void parse_fails(const char *name, const char *text, bsc_status code, const char *rest)
{
    char want[1024];
    bsc_node *root = (bsc_node *)1;
    bsc_status st = bsc_node_parse_file(tu_scratch_write(name, text), &root);
    assert_int_equal(st, code);
    assert_null(root);
    snprintf(want, sizeof want, "%s/%s:%s", tu_scratch, name, rest);
    assert_string_equal(bsc_last_error(), want);
}

static void assert_mark(const bsc_node *n, int line, int col, size_t offset)
{
    assert_non_null(n);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
    assert_int_equal(n->offset, offset);
}

static void test_marks(void **state)
{
    (void)state;
    const char *text = "version: 1\n"
                       "training:\n"
                       "  epochs: 3\n"
                       "  batch_sizes: [32, 256]\n"
                       "model:\n"
                       "  - type: dense\n"
                       "    units: \"10\"\n";
    bsc_node *root = parse_ok("marks.yaml", text);
    const bsc_node *training = bsc_node_get(root, "training");
    const bsc_node *bs = bsc_node_get(training, "batch_sizes");
    const bsc_node *model = bsc_node_get(root, "model");
    const bsc_node *units;

    assert_int_equal(root->kind, BSC_NODE_MAP);
    assert_int_equal(root->n, 3);
    assert_mark(root, 1, 1, 0);
    assert_mark(bsc_node_key(root, "training"), 2, 1, 11);
    assert_mark(training, 3, 3, 23);
    assert_mark(bsc_node_key(training, "epochs"), 3, 3, 23);
    assert_mark(bsc_node_get(training, "epochs"), 3, 11, 31);
    assert_int_equal(bs->kind, BSC_NODE_SEQ);
    assert_mark(bs, 4, 16, 48);
    assert_mark(bs->items[1], 4, 21, 53);
    assert_string_equal(bs->items[1]->value, "256");
    assert_int_equal(model->kind, BSC_NODE_SEQ);
    assert_mark(model, 6, 3, 67);
    assert_mark(model->items[0], 6, 5, 69);
    units = bsc_node_get(model->items[0], "units");
    assert_mark(units, 7, 12, 92);
    assert_string_equal(units->value, "10");
    assert_int_equal(units->quoted, 1);
    assert_int_equal(bsc_node_get(training, "epochs")->quoted, 0);
    assert_string_equal(root->file, bsc_node_get(model->items[0], "type")->file);
    assert_null(bsc_node_get(root, "missing"));
    assert_null(bsc_node_get(units, "x"));
    bsc_node_free(root);
}

static void test_parse_string_names_marks(void **state)
{
    (void)state;
    bsc_node *root = NULL;
    assert_int_equal(bsc_node_parse_string("inline", "a:\n  b: [1, x]\n", &root), BSC_OK);
    assert_string_equal(root->file, "inline");
    assert_mark(bsc_node_get(bsc_node_get(root, "a"), "b")->items[1], 2, 10, 12);
    bsc_node_free(root);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    parse_fails("flow.yaml", "a: 1\nb: [1, 2\nc: 3\n", BSC_ERR_PARSE,
                "3:2: did not find expected ',' or ']' (while parsing a flow sequence, line 2)");
    parse_fails("colon.yaml", "a: 1\nb: c: d\n", BSC_ERR_PARSE,
                "2:5: mapping values are not allowed in this context");
    parse_fails("tab.yaml", "a:\n\tb: 1\n", BSC_ERR_PARSE,
                "2:1: found character that cannot start any token (while scanning for the "
                "next token, line 2)");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    parse_fails("dup.yaml", "a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n", BSC_ERR_PARSE,
                "5:3: duplicate key 'c' (first at line 3, column 3)");
    parse_fails("dup_top.yaml", "x: 1\nx: 2\n", BSC_ERR_PARSE,
                "2:1: duplicate key 'x' (first at line 1, column 1)");
}

/* Issue 12: the duplicate-key check compared each key with every earlier
 * one: 80k keys took 14 s, 300k over two minutes. Now a hash set: 300k
 * keys parse in well under a second; the bound leaves room for a sanitized
 * build and still catches quadratic time. */
static void test_many_keys_linear(void **state)
{
    (void)state;
    enum { N = 300000 };
    size_t cap = (size_t)N * 24 + 64;
    char *text = malloc(cap);
    size_t n = (size_t)snprintf(text, cap, "m:\n");
    for (long i = 0; i < N; i++)
        n += (size_t)snprintf(text + n, cap - n, "  key%ld: %ld\n", i, i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bsc_node *root = NULL;
    assert_int_equal(bsc_node_parse_file(tu_scratch_write("keys.yaml", text), &root), BSC_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    const bsc_node *m = bsc_node_get(root, "m");
    assert_int_equal(m->n, N);
    assert_string_equal(bsc_node_get(m, "key299999")->value, "299999");
    bsc_node_free(root);
    if (secs > 20)
        fail_msg("300k keys took %.1f s to parse", secs);
    /* a duplicate at the very end is found and points at the first one */
    snprintf(text + n, cap - n, "  key17: again\n");
    char rest[96];
    snprintf(rest, sizeof rest, "%d:3: duplicate key 'key17' (first at line 19, column 3)",
             N + 2);
    parse_fails("dupkeys.yaml", text, BSC_ERR_PARSE, rest);
    free(text);
}

static void test_aliases_rejected(void **state)
{
    (void)state;
    parse_fails("anchor.yaml", "a: &x 1\n", BSC_ERR_PARSE,
                "1:4: YAML anchors and aliases are not supported");
    parse_fails("alias.yaml", "a: [1]\nb:\n  - *x\n", BSC_ERR_PARSE,
                "3:5: YAML anchors and aliases are not supported");
    parse_fails("anchor_map.yaml", "a: &m\n  b: 1\n", BSC_ERR_PARSE,
                "1:4: YAML anchors and aliases are not supported");
}

static void test_documents(void **state)
{
    (void)state;
    parse_fails("empty.yaml", "", BSC_ERR_PARSE, "1:1: empty document");
    parse_fails("comment.yaml", "# nothing here\n", BSC_ERR_PARSE, "1:1: empty document");
    parse_fails("null.yaml", "---\n", BSC_ERR_PARSE, "1:1: empty document");
    parse_fails("two.yaml", "a: 1\n---\nb: 2\n", BSC_ERR_PARSE,
                "2:1: only one YAML document is allowed");
    parse_fails("complex.yaml", "? [a, b]\n: 1\n", BSC_ERR_PARSE,
                "1:3: mapping keys must be plain scalars");

    bsc_node *root = (bsc_node *)1;
    char want[512];
    snprintf(want, sizeof want, "%s/absent.yaml: No such file or directory", tu_scratch);
    char path[512];
    snprintf(path, sizeof path, "%s/absent.yaml", tu_scratch);
    assert_int_equal(bsc_node_parse_file(path, &root), BSC_ERR_NOT_FOUND);
    assert_null(root);
    assert_string_equal(bsc_last_error(), want);
}

/* The error of the last call must be exactly "<tu_scratch>/acc.yaml:<rest>". */
static void assert_error(bsc_status st, const char *rest)
{
    char want[1024];
    assert_int_equal(st, BSC_ERR_INVALID);
    snprintf(want, sizeof want, "%s/acc.yaml:%s", tu_scratch, rest);
    assert_string_equal(bsc_last_error(), want);
}

static const char acc_text[] = "training:\n"                 /* 1 */
                               "  epochs:  abc\n"            /* 2 */
                               "  half: 1.5\n"               /* 3 */
                               "  sci: 1e3\n"                /* 4 */
                               "  quoted: \"5\"\n"           /* 5 */
                               "  big: 200001\n"             /* 6 */
                               "  lr: 1e-3\n"                /* 7 */
                               "  frac: .5\n"                /* 8 */
                               "  nan: nan\n"                /* 9 */
                               "  inf: .inf\n"               /* 10 */
                               "  ninf: -.inf\n"             /* 11 */
                               "  on: yes\n"                 /* 12 */
                               "  off: Off\n"                /* 13 */
                               "  maybe: maybe\n"            /* 14 */
                               "  opt: adma\n"               /* 15 */
                               "  list: [1, 2, x]\n"         /* 16 */
                               "  one: 7\n"                  /* 17 */
                               "  sub: {a: 1}\n"             /* 18 */
                               "  neg: -4\n";                /* 19 */

static void test_accessors(void **state)
{
    (void)state;
    bsc_node *root = parse_ok("acc.yaml", acc_text);
    const bsc_node *t = bsc_node_get(root, "training");
    static const char *const opts[] = {"sgd", "adam", NULL};
    long l = 0;
    double d = 0;
    int b = -1;
    const char *s = NULL;
    long *ll = NULL;
    double *dl = NULL;
    size_t n = 0;

    assert_error(bsc_req_long(t, "epochs", 1, 100000, &l),
                 "2:12: epochs must be an integer in [1, 100000], got 'abc'");
    assert_error(bsc_node_to_long(bsc_node_get(t, "epochs"), 1, 100000, &l),
                 "2:12: value must be an integer in [1, 100000], got 'abc'");
    assert_error(bsc_req_long(t, "half", 1, 10, &l),
                 "3:9: half must be an integer in [1, 10], got '1.5'");
    assert_int_equal(bsc_req_long(t, "sci", 1, 100000, &l), BSC_OK);
    assert_int_equal(l, 1000);
    assert_error(bsc_req_long(t, "quoted", 1, 10, &l),
                 "5:11: quoted must be an integer in [1, 10], got the quoted string '5'");
    assert_error(bsc_opt_long(t, "big", 5, 1, 200000, &l),
                 "6:8: big must be an integer in [1, 200000], got '200001'");
    assert_error(bsc_opt_long(t, "neg", 5, 0, LONG_MAX, &l),
                 "19:8: neg must be an integer >= 0, got '-4'");
    assert_int_equal(bsc_opt_long(t, "absent", 5, 1, 10, &l), BSC_OK);
    assert_int_equal(l, 5);
    assert_error(bsc_req_long(t, "absent", 1, 10, &l), "2:3: missing required key 'absent'");
    assert_error(bsc_req_long(t, "sub", 1, 10, &l),
                 "18:8: sub must be an integer in [1, 10], got a mapping");

    assert_int_equal(bsc_req_double(t, "lr", 0, 1, &d), BSC_OK);
    assert_true(d == 1e-3);
    assert_int_equal(bsc_opt_double(t, "frac", 0, 0, 1, &d), BSC_OK);
    assert_true(d == 0.5);
    assert_error(bsc_opt_double(t, "nan", 0, -INFINITY, INFINITY, &d),
                 "9:8: nan must be a number, got 'nan'");
    assert_error(bsc_opt_double(t, "inf", 0, 0, 1e9, &d),
                 "10:8: inf must be a number in [0, 1e+09], got '.inf'");
    assert_int_equal(bsc_opt_double(t, "ninf", 0, -INFINITY, 0, &d), BSC_OK);
    assert_true(isinf(d) && d < 0);
    assert_error(bsc_opt_double(t, "lr", 0, 0.01, 1, &d),
                 "7:7: lr must be a number in [0.01, 1], got '1e-3'");
    assert_int_equal(bsc_opt_double(t, "absent", 0.25, 0, 1, &d), BSC_OK);
    assert_true(d == 0.25);

    assert_int_equal(bsc_opt_bool(t, "on", 0, &b), BSC_OK);
    assert_int_equal(b, 1);
    assert_int_equal(bsc_opt_bool(t, "off", 1, &b), BSC_OK);
    assert_int_equal(b, 0);
    assert_error(bsc_opt_bool(t, "maybe", 0, &b),
                 "14:10: maybe must be true or false, got 'maybe'");

    assert_error(bsc_req_string(t, "opt", opts, &s),
                 "15:8: opt must be one of sgd, adam, got 'adma'");
    assert_error(bsc_req_string(t, "maybe", opts, &s),
                 "14:10: maybe must be one of sgd, adam, got 'maybe'");
    assert_int_equal(bsc_opt_string(t, "opt", NULL, NULL, &s), BSC_OK);
    assert_string_equal(s, "adma");
    assert_int_equal(bsc_opt_string(t, "absent", "sgd", opts, &s), BSC_OK);
    assert_string_equal(s, "sgd");
    assert_int_equal(bsc_node_to_string(bsc_node_get(t, "quoted"), &s), BSC_OK);
    assert_string_equal(s, "5");
    assert_error(bsc_node_to_string(bsc_node_get(t, "list"), &s),
                 "16:9: value must be a string, got a list");

    static const long ldef[] = {32, 64};
    assert_error(bsc_opt_long_list(t, "list", ldef, 2, 1, 100, &ll, &n),
                 "16:16: list must be an integer in [1, 100], got 'x'");
    assert_null(ll);
    assert_int_equal(bsc_opt_long_list(t, "one", ldef, 2, 1, 100, &ll, &n), BSC_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ll[0], 7);
    free(ll);
    assert_int_equal(bsc_opt_long_list(t, "absent", ldef, 2, 1, 100, &ll, &n), BSC_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ll[1], 64);
    free(ll);
    assert_int_equal(bsc_opt_double_list(t, "frac", NULL, 0, 0, 1, &dl, &n), BSC_OK);
    assert_int_equal(n, 1);
    assert_true(dl[0] == 0.5);
    free(dl);

    /* A key that is not a mapping where one is expected. */
    assert_error(bsc_opt_long(bsc_node_get(t, "list"), "x", 1, 0, 2, &l),
                 "16:9: expected a mapping with 'x', got a list");
    bsc_node_free(root);
}

static void test_check_keys(void **state)
{
    (void)state;
    bsc_node *root = parse_ok("acc.yaml", "opt:\n  type: sgd\n  lerning_rate: 0.1\n");
    static const char *const allowed[] = {"type", "learning_rate", "momentum", NULL};
    static const char *const few[] = {"type", NULL};
    assert_error(bsc_node_check_keys(bsc_node_get(root, "opt"), allowed),
                 "3:3: unknown key 'lerning_rate' (did you mean 'learning_rate'?)");
    assert_error(bsc_node_check_keys(bsc_node_get(root, "opt"), few),
                 "3:3: unknown key 'lerning_rate' (expected one of: type)");
    assert_error(bsc_node_check_keys(bsc_node_get(bsc_node_get(root, "opt"), "type"), few),
                 "2:9: expected a mapping, got a scalar");
    assert_int_equal(bsc_node_check_keys(root, (const char *const[]){"opt", NULL}), BSC_OK);
    bsc_node_free(root);
}

static void test_node_fail(void **state)
{
    (void)state;
    bsc_node *root = NULL;
    assert_int_equal(bsc_node_parse_string("f.yaml", "a:\n  b: 1\n", &root), BSC_OK);
    assert_int_equal(bsc_node_fail(bsc_node_get(bsc_node_get(root, "a"), "b"), BSC_ERR_DATA,
                                   "too %s", "big"),
                     BSC_ERR_DATA);
    assert_string_equal(bsc_last_error(), "f.yaml:2:6: too big");
    bsc_node_free(root);
}

static void test_closest_name(void **state)
{
    (void)state;
    static const char *const names[] = {"epochs", "batch_sizes", "optimizer", "lr", "seed"};
    assert_string_equal(bsc_closest_name("epoch", names, 5), "epochs");
    assert_string_equal(bsc_closest_name("batch_size", names, 5), "batch_sizes");
    assert_string_equal(bsc_closest_name("optimiser", names, 5), "optimizer");
    assert_string_equal(bsc_closest_name("lx", names, 5), "lr");
    /* len/3 = 3 edits allowed for 9-10 letters, only 1 for short names. */
    assert_string_equal(bsc_closest_name("obtimyser", names, 5), "optimizer");
    assert_null(bsc_closest_name("obtymyser", names, 5));
    assert_null(bsc_closest_name("xyz", names, 5));
    assert_null(bsc_closest_name("sed", names, 0));
    assert_string_equal(bsc_closest_name("sed", names, 5), "seed");
}

/* Structure, text and quoting equal; marks may differ. */
static void assert_same_tree(const bsc_node *a, const bsc_node *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->n, b->n);
    if (a->kind == BSC_NODE_SCALAR) {
        assert_string_equal(a->value, b->value);
        assert_int_equal(a->quoted, b->quoted);
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->kind == BSC_NODE_MAP)
            assert_same_tree(a->keys[i], b->keys[i]);
        assert_same_tree(a->items[i], b->items[i]);
    }
}

static void test_write_round_trip(void **state)
{
    (void)state;
    const char *text = "name: study\n"
                       "version: 1\n"
                       "tag: \"12\"\n"
                       "flag: 'true'\n"
                       "colon: \"a: b\"\n"
                       "hash: \"#x\"\n"
                       "empty: \"\"\n"
                       "nothing:\n"
                       "unicode: \"caf\xc3\xa9\"\n"
                       "model:\n"
                       "  - type: dense\n"
                       "    units: [1, 2, {x: y}]\n"
                       "  - {type: relu}\n"
                       "long: \"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                       " bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"\n"
                       "multi: \"line one\\nline two\"\n";
    bsc_node *root = parse_ok("rt.yaml", text), *again = NULL, *copy = NULL;
    char out[512], tmp[520];
    struct stat sb;
    snprintf(out, sizeof out, "%s/written.yaml", tu_scratch);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);

    assert_int_equal(bsc_node_write_file(root, out), BSC_OK);
    assert_int_equal(stat(tmp, &sb), -1);
    assert_int_equal(bsc_node_parse_file(out, &again), BSC_OK);
    assert_same_tree(root, again);
    bsc_node_free(again);

    /* A plain scalar edited to text that is not plain-safe must come back as
     * the same text, not as a mapping. */
    assert_int_equal(bsc_node_clone(root, &copy), BSC_OK);
    bsc_node *name = copy->items[0];
    free(name->value);
    name->value = strdup("x: - y # z");
    assert_int_equal(name->quoted, 0);
    assert_int_equal(bsc_node_write_file(copy, out), BSC_OK);
    assert_int_equal(bsc_node_parse_file(out, &again), BSC_OK);
    assert_string_equal(bsc_node_get(again, "name")->value, "x: - y # z");
    assert_int_equal(bsc_node_get(again, "name")->kind, BSC_NODE_SCALAR);
    bsc_node_free(again);
    bsc_node_free(copy);

    snprintf(out, sizeof out, "%s/no/such/dir/x.yaml", tu_scratch);
    assert_int_equal(bsc_node_write_file(root, out), BSC_ERR_IO);
    assert_non_null(strstr(bsc_last_error(), "x.yaml.tmp: No such file or directory"));
    bsc_node_free(root);
}

static void assert_same_marks(const bsc_node *a, const bsc_node *b)
{
    assert_ptr_not_equal(a, b);
    assert_string_equal(a->file, b->file);
    assert_int_equal(a->line, b->line);
    assert_int_equal(a->col, b->col);
    assert_int_equal(a->offset, b->offset);
    for (size_t i = 0; i < a->n; i++) {
        if (a->kind == BSC_NODE_MAP)
            assert_same_marks(a->keys[i], b->keys[i]);
        assert_same_marks(a->items[i], b->items[i]);
    }
}

static void test_clone(void **state)
{
    (void)state;
    bsc_node *root = parse_ok("clone.yaml", "a:\n  b: [1, \"2\"]\n  c: {d: e}\n");
    bsc_node *copy = NULL;
    assert_int_equal(bsc_node_clone(root, &copy), BSC_OK);
    assert_same_tree(root, copy);
    assert_same_marks(root, copy);
    /* Deep: editing the copy leaves the original alone. */
    bsc_node *item = copy->items[0]->items[0]->items[0];
    free(item->value);
    item->value = strdup("9");
    assert_string_equal(root->items[0]->items[0]->items[0]->value, "1");
    bsc_node_free(root);
    /* The copy outlives its source, file name included. */
    assert_non_null(strstr(copy->file, "clone.yaml"));
    assert_non_null(bsc_node_get(bsc_node_get(copy, "a"), "c"));
    bsc_node_free(copy);
}

/* bsc_node_diff of tree a against YAML text b: 1 and path/values when
 * they differ. */
static int diff_text(const bsc_node *a, const char *b_text, char *path, size_t len, char *va,
                     char *vb, size_t vlen)
{
    bsc_node *b = parse_ok("b.yaml", b_text);
    const bsc_node *da, *db;
    int d = bsc_node_diff(a, b, path, len, &da, &db);
    if (d) {
        bsc_node_flow(da, va, vlen);
        bsc_node_flow(db, vb, vlen);
    }
    bsc_node_free(b);
    return d;
}

/* The first difference between two trees, named by its key path, and the
 * values on one line: what a refused --resume says. */
static void test_diff_and_flow(void **state)
{
    (void)state;
    bsc_node *a = parse_ok("a.yaml", "name: x\ntraining:\n  epochs: 5\n  batch_sizes: [32, 256]\n"
                                     "  optimizer: {type: sgd, lr: 0.1}\nseed: \"7\"\n");
    char path[128], va[64], vb[64];
    /* keys in another order */
    assert_int_equal(diff_text(a, "seed: \"7\"\nname: x\ntraining:\n  optimizer: {lr: 0.1, "
                                  "type: sgd}\n  batch_sizes: [32, 256]\n  epochs: 5\n",
                               path, sizeof path, va, vb, sizeof va), 0);
    static const struct {
        const char *b, *path, *va, *vb;
    } cases[] = {
        {"name: x\ntraining:\n  epochs: 1\n  batch_sizes: [32]\n", "training.epochs", "5", "1"},
        {"name: x\ntraining:\n  epochs: 5\n  batch_sizes: [32, 512]\n",
         "training.batch_sizes[1]", "256", "512"},
        {"name: x\ntraining:\n  epochs: 5\n  batch_sizes: [32]\n", "training.batch_sizes",
         "[32, 256]", "[32]"},
        {"name: x\ntraining:\n  epochs: 5\n  batch_sizes: [32, 256]\n  optimizer: {type: sgd, "
         "lr: 0.1, momentum: 0.9}\n", "training.optimizer.momentum", "(absent)", "0.9"},
        {"name: x\ntraining:\n  epochs: 5\n  batch_sizes: [32, 256]\n  optimizer: sgd\n",
         "training.optimizer", "{type: sgd, lr: 0.1}", "sgd"},
        {"name: x\ntraining:\n  epochs: 5\n  batch_sizes: [32, 256]\n  optimizer: {type: sgd, "
         "lr: 0.1}\nseed: 7\n", "(none)", "", ""},   /* quoting alone is no difference */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int d = diff_text(a, cases[i].b, path, sizeof path, va, vb, sizeof va);
        if (!strcmp(cases[i].path, "(none)")) {
            assert_int_equal(d, 0);
            continue;
        }
        if (!d || strcmp(path, cases[i].path) || strcmp(va, cases[i].va) ||
            strcmp(vb, cases[i].vb))
            fail_msg("case %zu: %d %s: %s vs %s", i, d, path, va, vb);
    }
    bsc_node_flow(bsc_node_get(a, "seed"), va, sizeof va);
    assert_string_equal(va, "\"7\"");
    /* cut to fit, marked */
    char small[8];
    bsc_node_flow(bsc_node_get(bsc_node_get(a, "training"), "optimizer"), small, sizeof small);
    assert_string_equal(small, "{typ...");
    bsc_node_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marks),
        cmocka_unit_test(test_parse_string_names_marks),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_many_keys_linear),
        cmocka_unit_test(test_aliases_rejected),
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_check_keys),
        cmocka_unit_test(test_node_fail),
        cmocka_unit_test(test_closest_name),
        cmocka_unit_test(test_write_round_trip),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_diff_and_flow),
    };
    return cmocka_run_group_tests(tests, setup, tu_scratch_teardown);
}
