/* The program cache: memory hits, disk hits, corrupt entries rebuilt,
 * build errors with the log, $BATCHSCOPE_CL_DIR, #include inlining and what
 * a plugin's source may include.
 * Every test uses its own empty cache directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batchscope/device.h"
#include "batchscope/tensor.h"
#include "program_cache_internal.h"
#include "testutil.h"

static char cache_dir[64];
static char cl_dir[64];

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    (void)state;
    snprintf(cache_dir, sizeof cache_dir, "/tmp/bsc-pcache-XXXXXX");
    snprintf(cl_dir, sizeof cl_dir, "/tmp/bsc-cldir-XXXXXX");
    if (!mkdtemp(cache_dir) || !mkdtemp(cl_dir))
        return -1;
    unsetenv("BATCHSCOPE_CL_DIR");
    return setenv("BATCHSCOPE_CACHE_DIR", cache_dir, 1);
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("BATCHSCOPE_CL_DIR");
    remove_tree(cache_dir);
    remove_tree(cl_dir);
    return 0;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The only *.bin entry in the cache directory (the tests expect exactly one). */
static void only_entry(char *path, size_t len)
{
    DIR *d = opendir(cache_dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".bin") == 0) {
            snprintf(path, len, "%s/%s", cache_dir, e->d_name);
            n++;
        }
        assert_null(strstr(e->d_name, ".tmp")); /* no temp file left behind */
    }
    closedir(d);
    assert_int_equal(n, 1);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static bsc_program_cache_stats stats(const bsc_context *ctx)
{
    bsc_program_cache_stats s;
    bsc_program_cache_get_stats(ctx, &s);
    return s;
}

/* Runs fill_f32 from util.cl to prove a kernel from the cache works. */
static void check_fill_kernel(bsc_context *ctx, cl_kernel k)
{
    int64_t d = 37;
    bsc_shape shape = bsc_shape_make(1, &d);
    bsc_tensor t;
    float host[37];
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &shape, &t), BSC_OK);
    cl_ulong off = 0, n = 37;
    float v = 2.5f;
    bsc_karg args[] = {BSC_ARG(t.mem), BSC_ARG(off), BSC_ARG(n), BSC_ARG(v)};
    size_t global = 37, local = 16;
    assert_int_equal(bsc_launch(ctx, k, 4, args, 1, &global, &local), BSC_OK);
    assert_int_equal(bsc_tensor_read(ctx, &t, host), BSC_OK);
    for (int i = 0; i < 37; i++)
        assert_true(host[i] == 2.5f);
    bsc_tensor_free(&t);
}

static void test_miss_memory_hit_disk_hit(void **state)
{
    (void)state;
    bsc_context *ctx = NULL;
    cl_kernel k1 = NULL, k2 = NULL, k3 = NULL;
    assert_int_equal(tu_context_open(&ctx), BSC_OK);

    assert_int_equal(bsc_kernel(ctx, "util.cl", "fill_f32", &k1), BSC_OK);
    bsc_program_cache_stats s = stats(ctx);
    assert_int_equal(s.builds, 1);
    assert_int_equal(s.disk_hits, 0);
    assert_int_equal(s.disk_writes, 1);
    assert_string_equal(s.dir, cache_dir);

    assert_int_equal(bsc_kernel(ctx, "util.cl", "fill_f32", &k2), BSC_OK);
    assert_ptr_equal(k1, k2); /* kernels are created once and owned by the context */
    assert_int_equal(bsc_kernel(ctx, "util.cl", "scale_f32", &k3), BSC_OK);
    assert_ptr_not_equal(k1, k3);
    s = stats(ctx);
    assert_int_equal(s.memory_hits, 2);
    assert_int_equal(s.builds, 1);
    assert_int_equal(bsc_kernel(ctx, "util.cl", "no_such_kernel", &k3), BSC_ERR_NOT_FOUND);
    assert_non_null(strstr(bsc_last_error(), "no_such_kernel"));
    assert_int_equal(bsc_kernel(ctx, "no_such_file.cl", "k", &k3), BSC_ERR_NOT_FOUND);
    check_fill_kernel(ctx, k1);
    bsc_context_free(ctx);

    /* A new context has an empty memory cache: the binary comes from disk. */
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    assert_int_equal(bsc_kernel(ctx, "util.cl", "fill_f32", &k1), BSC_OK);
    s = stats(ctx);
    assert_int_equal(s.disk_hits, 1);
    assert_int_equal(s.builds, 0);
    assert_int_equal(s.disk_rejects, 0);
    check_fill_kernel(ctx, k1);
    bsc_context_free(ctx);
}

/* Opens a fresh context, asks for fill_f32 and expects a rejected entry,
 * a rebuild and a rewrite. */
static void expect_rebuild(const char *entry, long good_size)
{
    bsc_context *ctx = NULL;
    cl_kernel k = NULL;
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    assert_int_equal(bsc_kernel(ctx, "util.cl", "fill_f32", &k), BSC_OK);
    bsc_program_cache_stats s = stats(ctx);
    assert_int_equal(s.disk_rejects, 1);
    assert_int_equal(s.disk_hits, 0);
    assert_int_equal(s.builds, 1);
    assert_int_equal(s.disk_writes, 1);
    assert_int_equal(file_size(entry), good_size);
    check_fill_kernel(ctx, k);
    bsc_context_free(ctx);
}

static void flip_byte(const char *path, long at)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    int c = fgetc(f);
    assert_true(c != EOF);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static void test_corrupt_entries_are_rebuilt(void **state)
{
    (void)state;
    bsc_context *ctx = NULL;
    cl_kernel k = NULL;
    char entry[512];

    /* Populate the (test-private) cache. */
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    assert_int_equal(bsc_kernel(ctx, "util.cl", "fill_f32", &k), BSC_OK);
    bsc_context_free(ctx);
    only_entry(entry, sizeof entry);
    long size = file_size(entry);
    assert_true(size > 88);

    assert_int_equal(truncate(entry, size / 2), 0);   /* truncated binary */
    expect_rebuild(entry, size);
    assert_int_equal(truncate(entry, 40), 0);         /* truncated header */
    expect_rebuild(entry, size);
    flip_byte(entry, size - 1);                       /* binary no longer matches its hash */
    expect_rebuild(entry, size);
    flip_byte(entry, size / 2);
    expect_rebuild(entry, size);
    flip_byte(entry, 20);                             /* key in the header */
    expect_rebuild(entry, size);
    flip_byte(entry, 0);                              /* magic */
    expect_rebuild(entry, size);
    only_entry(entry, sizeof entry);
}

static void test_build_error_has_log(void **state)
{
    (void)state;
    bsc_context *ctx = NULL;
    cl_kernel k = NULL;
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    bsc_status st = bsc_kernel_from_source(
        ctx, "broken_prog", "__kernel void k(__global float *x) { x[0] = undefined_thing; }",
        NULL, "k", &k);
    assert_int_equal(st, BSC_ERR_BUILD);
    const char *msg = bsc_last_error();
    assert_non_null(strstr(msg, "broken_prog"));
    assert_non_null(strstr(msg, "CL_BUILD_PROGRAM_FAILURE"));
    assert_non_null(strstr(msg, "build log"));
    assert_non_null(strstr(msg, "undefined_thing")); /* from the compiler's log */

    /* A good source with extra options gets the default -cl-std too. */
    st = bsc_kernel_from_source(ctx, "good_prog",
                                "__kernel void k(__global float *x) { x[0] = VALUE; }",
                                "-DVALUE=3.0f", "k", &k);
    assert_int_equal(st, BSC_OK);
    bsc_context_free(ctx);
}

static void test_cl_dir_override(void **state)
{
    (void)state;
    char *src = NULL;
    bsc_context *ctx = NULL;
    cl_kernel k = NULL;

    /* Embedded by default. */
    assert_int_equal(bsc_cl_source("util.cl", &src), BSC_OK);
    assert_non_null(strstr(src, "fill_f32"));
    free(src);
    assert_int_equal(bsc_cl_source("../etc/passwd", &src), BSC_ERR_INVALID);

    write_text(cl_dir, "util.cl",
               "__kernel void only_in_override(__global float *x) { x[0] = 1.0f; }\n");
    setenv("BATCHSCOPE_CL_DIR", cl_dir, 1);
    assert_int_equal(bsc_cl_source("util.cl", &src), BSC_OK);
    assert_non_null(strstr(src, "only_in_override"));
    assert_null(strstr(src, "fill_f32"));
    free(src);
    assert_int_equal(bsc_cl_source("missing.cl", &src), BSC_ERR_NOT_FOUND);
    assert_non_null(strstr(bsc_last_error(), cl_dir));

    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    assert_int_equal(bsc_kernel(ctx, "util.cl", "only_in_override", &k), BSC_OK);
    assert_int_equal(bsc_kernel(ctx, "util.cl", "fill_f32", &k), BSC_ERR_NOT_FOUND);
    bsc_context_free(ctx);
    unsetenv("BATCHSCOPE_CL_DIR");
}

static void test_include_inlining(void **state)
{
    (void)state;
    bsc_context *ctx = NULL;
    cl_kernel k = NULL;
    char *src = NULL;

    /* b.cl includes its includer (a cycle) and a.cl includes b.cl twice:
     * each file must be pasted once. */
    write_text(cl_dir, "a.cl",
               "#include \"b.cl\"\n"
               "  #  include \"b.cl\"\n"
               "__kernel void ka(__global float *x, const ulong n)\n"
               "{ size_t i = get_global_id(0); if (i < n) x[i] = helper_b() + (float)i; }\n");
    write_text(cl_dir, "b.cl",
               "#include \"a.cl\"\n"
               "float helper_b(void) { return 7.0f; }\n");
    write_text(cl_dir, "bad.cl", "float helper_bad(void) { return not_declared_here; }\n");
    write_text(cl_dir, "c.cl", "#include \"bad.cl\"\n__kernel void kc(__global float *x) {}\n");
    write_text(cl_dir, "d.cl", "#include \"nowhere.cl\"\n__kernel void kd(__global float *x) {}\n");
    setenv("BATCHSCOPE_CL_DIR", cl_dir, 1);

    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    assert_int_equal(bsc_kernel(ctx, "a.cl", "ka", &k), BSC_OK);
    float host[10];
    assert_int_equal(tu_run_x_n(ctx, k, 10, host), BSC_OK);
    for (int i = 0; i < 10; i++)
        assert_true(host[i] == 7.0f + (float)i);

    /* An error inside an included file is reported against that file. */
    assert_int_equal(bsc_kernel(ctx, "c.cl", "kc", &k), BSC_ERR_BUILD);
    assert_non_null(strstr(bsc_last_error(), "not_declared_here"));
    assert_non_null(strstr(bsc_last_error(), "bad.cl"));
    /* A missing include names the file and the line. */
    assert_int_equal(bsc_kernel(ctx, "d.cl", "kd", &k), BSC_ERR_NOT_FOUND);
    assert_non_null(strstr(bsc_last_error(), "d.cl:1"));
    assert_non_null(strstr(bsc_last_error(), "nowhere.cl"));
    unsetenv("BATCHSCOPE_CL_DIR");

    bsc_context_free(ctx);

    assert_int_equal(bsc_cl_source("util.cl", &src), BSC_OK); /* embedded again */
    assert_non_null(strstr(src, "fill_f32"));
    free(src);
}

/* A plugin's source reaches the runtime's shared files and nothing else. */
static void test_plugin_source_includes(void **state)
{
    (void)state;
    bsc_context *ctx = NULL;
    cl_kernel k = NULL, k2 = NULL;
    static const char with_philox[] =
        "#include \"philox.cl\"\n"
        "__kernel void draw(__global float *x)\n"
        "{ x[0] = philox_uniform(philox4x32_10((uint4)(1, 2, 3, 4), (uint2)(5, 6)).x); }\n";
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    assert_int_equal(bsc_kernel_from_source(ctx, "plugin/draw.cl", with_philox, NULL, "draw", &k),
                     BSC_OK);

    /* An include the runtime does not share names the file, its includer and
     * the line, and says what may be included. */
    assert_int_equal(bsc_kernel_from_source(ctx, "plugin/lost.cl",
                                            "float f(void);\n#include \"nowhere.cl\"\n",
                                            NULL, "k", &k), BSC_ERR_NOT_FOUND);
    const char *msg = bsc_last_error();
    assert_non_null(strstr(msg, "nowhere.cl"));
    assert_non_null(strstr(msg, "plugin/lost.cl:2"));
    assert_non_null(strstr(msg, "philox.cl"));
    /* Runtime files that are not shared are refused just the same. */
    assert_int_equal(bsc_kernel_from_source(ctx, "plugin/util.cl", "#include \"util.cl\"\n",
                                            NULL, "fill_f32", &k), BSC_ERR_NOT_FOUND);
    assert_non_null(strstr(bsc_last_error(), "util.cl is not a file a plugin may include"));
    /* Lines are counted from a #line that batchscope_embed_cl left after
     * inlining one of the plugin's own files. */
    assert_int_equal(bsc_kernel_from_source(ctx, "plugin/inl.cl",
                                            "#line 1 \"own.cl\"\nint own;\n"
                                            "#line 40 \"inl.cl\"\n#include \"gone.cl\"\n",
                                            NULL, "k", &k), BSC_ERR_NOT_FOUND);
    assert_non_null(strstr(bsc_last_error(), "inl.cl:40"));

    /* Two plugins may both call a file "draw.cl": the memory cache keys on
     * the text too, so neither gets the other's program. */
    assert_int_equal(bsc_kernel_from_source(ctx, "plugin/draw.cl", with_philox, NULL, "draw",
                                            &k2), BSC_OK);
    assert_ptr_equal(k, k2);
    assert_int_equal(bsc_kernel_from_source(ctx, "plugin/draw.cl",
                                            "__kernel void other(__global float *x)"
                                            " { x[0] = 1.0f; }\n",
                                            NULL, "other", &k2), BSC_OK);
    assert_int_equal(bsc_kernel_from_source(ctx, "plugin/draw.cl",
                                            "__kernel void other(__global float *x)"
                                            " { x[0] = 1.0f; }\n",
                                            NULL, "draw", &k2), BSC_ERR_NOT_FOUND);
    bsc_program_cache_stats s = stats(ctx);
    assert_int_equal(s.memory_hits, 2);
    bsc_context_free(ctx);
}

static void test_unusable_cache_dir_still_builds(void **state)
{
    (void)state;
    bsc_context *ctx = NULL;
    cl_kernel k = NULL;
    char blocker[128];
    /* A regular file where the directory should be. */
    snprintf(blocker, sizeof blocker, "%s/not-a-dir", cl_dir);
    write_text(cl_dir, "not-a-dir", "x");
    setenv("BATCHSCOPE_CACHE_DIR", blocker, 1);
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    assert_int_equal(bsc_kernel(ctx, "util.cl", "fill_f32", &k), BSC_OK);
    bsc_program_cache_stats s = stats(ctx);
    assert_string_equal(s.dir, "");
    assert_int_equal(s.builds, 1);
    assert_int_equal(s.disk_writes, 0);
    check_fill_kernel(ctx, k);
    bsc_context_free(ctx);
    setenv("BATCHSCOPE_CACHE_DIR", cache_dir, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_miss_memory_hit_disk_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_entries_are_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_error_has_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cl_dir_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_inlining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_source_includes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_cache_dir_still_builds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
