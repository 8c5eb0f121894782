/* records: run.json and manifest.json round trips, the layout the previous
 * writer produced, files that earlier versions wrote, and damaged files
 * that must fail with path:line:col or the name of the key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/records.h"
#include "testutil.h"

/* run.json of a diverged run as train.c wrote it before this module
 * (bsc_json, "%.17g", NaN as null): the writer must still produce exactly
 * this, and the reader must read it. */
static const char old_run_json[] =
    "{\n"
    "  \"name\": \"bs64\",\n"
    "  \"batch_size\": 64,\n"
    "  \"status\": \"diverged\",\n"
    "  \"epochs_done\": 1,\n"
    "  \"diverged_epoch\": 1,\n"
    "  \"diverged_step\": 7,\n"
    "  \"seconds\": 1.2500000010000001,\n"
    "  \"train_loss\": null,\n"
    "  \"train_acc\": 0.098000000000000004,\n"
    "  \"test_loss\": null,\n"
    "  \"test_acc\": 0.10000000000000001\n"
    "}\n";

/* The first version's run.json: no name (runs were not named yet), and a
 * whole-number real written without a fraction. */
static const char first_run_json[] =
    "{\n"
    "  \"batch_size\": 256,\n"
    "  \"status\": \"completed\",\n"
    "  \"epochs_done\": 8,\n"
    "  \"seconds\": 0,\n"
    "  \"train_loss\": 0.30612,\n"
    "  \"train_acc\": 0.9,\n"
    "  \"test_loss\": 0.41,\n"
    "  \"test_acc\": 0.875\n"
    "}\n";

/* A manifest written by the previous code (a resumed two-run study), cut to
 * one plugin. */
static const char old_manifest[] =
    "{\n"
    "  \"batchscope_version\": \"0.1.0\",\n"
    "  \"plugin_abi\": \"1.1\",\n"
    "  \"pipeline\": \"/tmp/bsc-resume-6oXvPH/tiny.yaml\",\n"
    "  \"name\": \"tiny\",\n"
    "  \"seed\": 3,\n"
    "  \"status\": \"completed\",\n"
    "  \"started\": \"2026-11-30T04:58:11Z\",\n"
    "  \"updated\": \"2026-11-30T04:58:11Z\",\n"
    "  \"seconds\": 0.25420624999998154,\n"
    "  \"device\": {\n"
    "    \"index\": 0,\n"
    "    \"platform\": \"Portable Computing Language\",\n"
    "    \"vendor\": \"AuthenticAMD\",\n"
    "    \"name\": \"pthread-skylake-avx512-AMD EPYC\",\n"
    "    \"type\": \"CPU\",\n"
    "    \"driver_version\": \"3.1+debian\",\n"
    "    \"device_version\": \"OpenCL 3.0 PoCL HSTR: "
    "pthread-x86_64-pc-linux-gnu-skylake-avx512\",\n"
    "    \"opencl_c_version\": \"OpenCL C 1.2 PoCL\",\n"
    "    \"compute_units\": 2,\n"
    "    \"global_mem\": 4298793984\n"
    "  },\n"
    "  \"plugins\": [\n"
    "    {\n"
    "      \"name\": \"analyses\",\n"
    "      \"version\": \"0.1.0\",\n"
    "      \"path\": \"/work/wt-json/build/plugins/bsc_analyses.so\"\n"
    "    }\n"
    "  ],\n"
    "  \"parameters\": 12730,\n"
    "  \"state\": 0,\n"
    "  \"dataset\": {\n"
    "    \"name\": \"fashion-mnist\",\n"
    "    \"train\": 512,\n"
    "    \"test\": 256,\n"
    "    \"validation\": 0\n"
    "  },\n"
    "  \"runs\": [\n"
    "    {\n"
    "      \"name\": \"bs16\",\n"
    "      \"batch_size\": 16,\n"
    "      \"status\": \"completed\",\n"
    "      \"epochs_done\": 2,\n"
    "      \"seconds\": 0,\n"
    "      \"train_acc\": 0.810546875,\n"
    "      \"test_acc\": 0.75390625\n"
    "    },\n"
    "    {\n"
    "      \"name\": \"bs64\",\n"
    "      \"batch_size\": 64,\n"
    "      \"status\": \"completed\",\n"
    "      \"epochs_done\": 2,\n"
    "      \"seconds\": 0.032370495000009214,\n"
    "      \"train_acc\": 0.697265625,\n"
    "      \"test_acc\": 0.67578125\n"
    "    }\n"
    "  ]\n"
    "}\n";

/* The number of directory entries besides . and .. */
static int n_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_run_round_trip(void **state)
{
    const char *dir = *state;
    bsc_run_record *r = NULL, *back = NULL;
    const char *path = tu_path(dir, "run.json");
    assert_int_equal(bsc_run_record_new(&r), BSC_OK);
    assert_null(r->name);
    assert_true(isnan(r->test_acc));
    r->name = "bs64";
    r->batch_size = 64;
    r->status = "diverged";
    r->epochs_done = 1;
    r->diverged_epoch = 1;
    r->diverged_step = 7;
    r->seconds = 1.25 + 1e-9;
    r->train_loss = NAN;
    r->train_acc = 0.098;
    r->test_loss = INFINITY;
    r->test_acc = 0.1;
    assert_int_equal(bsc_run_record_write(path, r), BSC_OK);

    /* the previous writer's layout, byte for byte */
    char *text = tu_read(path, NULL);
    assert_non_null(text);
    assert_string_equal(text, old_run_json);
    free(text);

    assert_int_equal(bsc_run_record_read(path, &back), BSC_OK);
    assert_string_equal(back->name, "bs64");
    assert_int_equal(back->batch_size, 64);
    assert_string_equal(back->status, "diverged");
    assert_int_equal(back->epochs_done, 1);
    assert_int_equal(back->diverged_epoch, 1);
    assert_int_equal(back->diverged_step, 7);
    /* 17 digits: every double reads back bit for bit */
    assert_true(back->seconds == r->seconds);
    assert_true(back->train_acc == r->train_acc);
    assert_true(back->test_acc == r->test_acc);
    assert_true(isnan(back->train_loss));
    assert_true(isnan(back->test_loss));
    bsc_run_record_free(back);

    /* a run that did not diverge leaves the diverged keys out */
    r->diverged_epoch = 0;
    r->diverged_step = 0;
    r->status = "completed";
    r->name = NULL;
    assert_int_equal(bsc_run_record_write(path, r), BSC_OK);
    text = tu_read(path, NULL);
    assert_null(strstr(text, "diverged"));
    assert_null(strstr(text, "\"name\""));
    free(text);
    assert_int_equal(bsc_run_record_read(path, &back), BSC_OK);
    assert_null(back->name);
    assert_int_equal(back->diverged_epoch, 0);
    bsc_run_record_free(back);
    bsc_run_record_free(r);
    bsc_run_record_free(NULL);
}

/* A manifest filled as study.c fills it, written, read back field by field. */
static void test_manifest_round_trip(void **state)
{
    const char *dir = *state;
    bsc_manifest *m = NULL, *back = NULL;
    bsc_manifest_device *d;
    bsc_manifest_dataset *ds;
    bsc_manifest_plugin *p;
    bsc_run_record *r;
    const char *path = tu_path(dir, "manifest.json");
    assert_int_equal(bsc_manifest_new(&m), BSC_OK);
    m->batchscope_version = "0.1.0";
    m->plugin_abi = "1.1";
    m->pipeline = "pipelines/quick.yaml";
    m->name = "quick \"start\"\n";
    m->seed = UINT64_MAX - 5;    /* above 2^63: stored negative, read back exact */
    m->status = "failed";
    m->error = "run bs1024 failed: out of memory";
    m->started = "2026-11-25T01:02:03Z";
    m->updated = "2026-11-25T01:05:03Z";
    m->seconds = 180.5;
    assert_int_equal(bsc_manifest_set_device(m, &d), BSC_OK);
    d->index = 0;
    d->platform = "Portable Computing Language";
    d->name = "cpu \xe9t\xe9";    /* Latin-1: not UTF-8, written with '?' */
    d->type = "CPU";
    d->compute_units = 16;
    d->global_mem = 68719476736;
    d->gemm = "host";
    d->platform_vendor = "The pocl project";
    bsc_manifest_versions *v;
    assert_int_equal(bsc_manifest_set_versions(m, &v), BSC_OK);
    v->batchscope = "0.1.0";
    v->git_commit = "0123456789ab";
    v->clblast = "1.5.3";
    v->libyaml = "0.2.5";
    v->opencl_icd_loader = "OpenCL ICD Loader 2.3.1, OpenCL 3.0";
    v->driver = "3.1+debian";
    assert_int_equal(bsc_manifest_add_override(m, "training.epochs=2"), BSC_OK);
    assert_int_equal(bsc_manifest_add_override(m, "seed=\"7\""), BSC_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(bsc_manifest_add_plugin(m, &p), BSC_OK);
        p->name = i ? "observers" : "layers";
        p->version = "0.1.0";
        p->path = i ? "/x/bsc_observers.so" : "/x/bsc_layers.so";
    }
    m->parameters = 101770;
    m->state = 0;
    assert_int_equal(bsc_manifest_set_dataset(m, &ds), BSC_OK);
    ds->name = "fashion-mnist";
    ds->train = 60000;
    ds->test = 10000;
    ds->validation = 0;
    assert_int_equal(bsc_manifest_add_run(m, &r), BSC_OK);
    r->name = "bs32";
    r->batch_size = 32;
    r->status = "completed";
    r->epochs_done = 3;
    r->seconds = 12.25;
    r->train_acc = 0.9;
    r->test_acc = 0.85;
    r->train_loss = 0.3;     /* not a manifest key: left out */
    assert_int_equal(bsc_manifest_add_run(m, &r), BSC_OK);
    r->name = "bs1024";
    r->batch_size = 1024;
    r->status = "failed";
    assert_int_equal(bsc_manifest_write(path, m), BSC_OK);

    char *text = tu_read(path, NULL);
    assert_non_null(text);
    /* the keys and their order as before: the tests of other modules and
     * people's scripts look for these */
    const char *order[] = {"\"batchscope_version\": \"0.1.0\"", "\"plugin_abi\": ",
                           "\"versions\": {", "\"git_commit\": \"0123456789ab\"",
                           "\"pipeline\": ", "\"overrides\": [", "\"name\": ", "\"seed\": ", "\"status\": \"failed\"",
                           "\"error\": ", "\"started\": ", "\"updated\": ", "\"seconds\": 180.5",
                           "\"device\": {", "\"plugins\": [", "\"parameters\": 101770",
                           "\"state\": 0", "\"dataset\": {", "\"runs\": [",
                           "\"batch_size\": 32", "\"batch_size\": 1024"};
    const char *at = text;
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        const char *hit = strstr(at, order[i]);
        if (!hit)
            fail_msg("%s missing or out of order in\n%s", order[i], text);
        at = hit;
    }
    assert_null(strstr(text, "train_loss"));
    assert_non_null(strstr(text, "\"name\": \"cpu ?t?\""));
    free(text);

    assert_int_equal(bsc_manifest_read(path, &back), BSC_OK);
    assert_string_equal(back->batchscope_version, "0.1.0");
    assert_string_equal(back->plugin_abi, "1.1");
    assert_string_equal(back->pipeline, "pipelines/quick.yaml");
    assert_string_equal(back->name, "quick \"start\"\n");
    assert_true(back->seed == UINT64_MAX - 5);
    assert_string_equal(back->status, "failed");
    assert_string_equal(back->error, "run bs1024 failed: out of memory");
    assert_string_equal(back->started, "2026-11-25T01:02:03Z");
    assert_string_equal(back->updated, "2026-11-25T01:05:03Z");
    assert_true(back->seconds == 180.5);
    assert_non_null(back->device);
    assert_int_equal(back->device->index, 0);
    assert_string_equal(back->device->platform, "Portable Computing Language");
    assert_null(back->device->vendor);
    assert_string_equal(back->device->type, "CPU");
    assert_string_equal(back->device->platform_vendor, "The pocl project");
    assert_non_null(back->versions);
    assert_string_equal(back->versions->git_commit, "0123456789ab");
    assert_string_equal(back->versions->clblast, "1.5.3");
    assert_string_equal(back->versions->libyaml, "0.2.5");
    assert_null(back->versions->jansson);
    assert_string_equal(back->versions->driver, "3.1+debian");
    assert_int_equal(back->n_overrides, 2);
    assert_string_equal(back->overrides[0], "training.epochs=2");
    assert_string_equal(back->overrides[1], "seed=\"7\"");
    assert_int_equal(back->device->compute_units, 16);
    assert_true(back->device->global_mem == 68719476736);
    assert_string_equal(back->device->gemm, "host");
    assert_int_equal(back->n_plugins, 2);
    assert_string_equal(back->plugins[1]->name, "observers");
    assert_string_equal(back->plugins[1]->path, "/x/bsc_observers.so");
    assert_true(back->parameters == 101770);
    assert_true(back->state == 0);
    assert_non_null(back->dataset);
    assert_string_equal(back->dataset->name, "fashion-mnist");
    assert_true(back->dataset->train == 60000);
    assert_true(back->dataset->validation == 0);
    assert_int_equal(back->n_runs, 2);
    assert_string_equal(back->runs[0]->name, "bs32");
    assert_int_equal(back->runs[0]->batch_size, 32);
    assert_int_equal(back->runs[0]->epochs_done, 3);
    assert_true(back->runs[0]->seconds == 12.25);
    assert_true(back->runs[0]->test_acc == 0.85);
    assert_true(isnan(back->runs[0]->train_loss));
    assert_string_equal(back->runs[1]->status, "failed");
    assert_true(isnan(back->runs[1]->train_acc));
    bsc_manifest_free(back);

    /* a manifest written before a device opened or data loaded */
    bsc_manifest_free(m);
    assert_int_equal(bsc_manifest_new(&m), BSC_OK);
    m->name = "early";
    m->status = "running";
    assert_int_equal(bsc_manifest_write(path, m), BSC_OK);
    text = tu_read(path, NULL);
    assert_non_null(strstr(text, "\"plugins\": []"));
    assert_non_null(strstr(text, "\"runs\": []"));
    assert_null(strstr(text, "device"));
    assert_null(strstr(text, "parameters"));
    free(text);
    assert_int_equal(bsc_manifest_read(path, &back), BSC_OK);
    assert_null(back->device);
    assert_null(back->dataset);
    assert_null(back->error);
    assert_true(back->parameters == -1);
    assert_int_equal(back->n_plugins, 0);
    assert_int_equal(back->n_runs, 0);
    assert_true(isnan(back->seconds));
    bsc_manifest_free(back);
    bsc_manifest_free(m);
}

/* Files written by earlier versions read as they are. */
static void test_old_files(void **state)
{
    const char *dir = *state;
    bsc_run_record *r = NULL;
    char *path = tu_write(dir, "old_run.json", old_run_json);
    assert_int_equal(bsc_run_record_read(path, &r), BSC_OK);
    assert_string_equal(r->name, "bs64");
    assert_string_equal(r->status, "diverged");
    assert_int_equal(r->diverged_step, 7);
    assert_true(isnan(r->train_loss));
    assert_true(r->test_acc == 0.1);
    bsc_run_record_free(r);
    free(path);

    path = tu_write(dir, "first_run.json", first_run_json);
    assert_int_equal(bsc_run_record_read(path, &r), BSC_OK);
    assert_null(r->name);
    assert_int_equal(r->batch_size, 256);
    assert_true(r->seconds == 0);
    assert_true(r->test_acc == 0.875);
    bsc_run_record_free(r);
    free(path);

    bsc_manifest *m = NULL;
    path = tu_write(dir, "old_manifest.json", old_manifest);
    assert_int_equal(bsc_manifest_read(path, &m), BSC_OK);
    assert_string_equal(m->name, "tiny");
    assert_true(m->seed == 3);
    assert_string_equal(m->status, "completed");
    assert_string_equal(m->device->type, "CPU");
    assert_true(m->device->global_mem == 4298793984);
    assert_int_equal(m->n_plugins, 1);
    assert_int_equal(m->n_runs, 2);
    assert_string_equal(m->runs[1]->name, "bs64");
    assert_true(m->runs[1]->train_acc == 0.697265625);
    assert_true(m->runs[0]->seconds == 0);
    bsc_manifest_free(m);
    free(path);
}

/* "PATH:LINE:COL: message" with LINE and COL positive. */
static void assert_located(const char *path, int line)
{
    const char *e = bsc_last_error();
    size_t n = strlen(path);
    int l = 0, c = 0, used = 0;
    if (strncmp(e, path, n) != 0 || sscanf(e + n, ":%d:%d: %n", &l, &c, &used) != 2 || !used)
        fail_msg("not PATH:LINE:COL: %s", e);
    assert_int_equal(l, line);
    assert_true(c > 0);
    assert_true(strlen(e + n + used) > 0);
}

static void test_malformed(void **state)
{
    const char *dir = *state;
    bsc_run_record *r = (bsc_run_record *)&r;
    bsc_manifest *m = (bsc_manifest *)&m;
    /* cut off in the middle: the error points at the end */
    char *path = tu_write(dir, "cut.json", "{\n  \"name\": \"bs64\",\n  \"batch_size\": 6");
    assert_int_equal(bsc_run_record_read(path, &r), BSC_ERR_PARSE);
    assert_null(r);
    assert_located(path, 3);
    free(path);
    /* a stray character on line 3 */
    path = tu_write(dir, "bad.json", "{\n  \"name\": \"tiny\",\n  \"seed\": 3x\n}\n");
    assert_int_equal(bsc_manifest_read(path, &m), BSC_ERR_PARSE);
    assert_null(m);
    assert_located(path, 3);
    free(path);
    /* empty (a crash before the atomic writer existed) */
    path = tu_write(dir, "empty.json", "");
    assert_int_equal(bsc_run_record_read(path, &r), BSC_ERR_PARSE);
    assert_located(path, 1);
    free(path);
    /* valid JSON, but not an object */
    path = tu_write(dir, "array.json", "[1, 2]\n");
    assert_int_equal(bsc_run_record_read(path, &r), BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), path));
    free(path);
    /* a key twice: which one would be meant? */
    path = tu_write(dir, "twice.json", "{\"batch_size\": 1, \"batch_size\": 2}\n");
    assert_int_equal(bsc_run_record_read(path, &r), BSC_ERR_PARSE);
    assert_non_null(strstr(bsc_last_error(), "batch_size"));
    free(path);
    /* no file at all */
    assert_int_equal(bsc_run_record_read(tu_path(dir, "none.json"), &r), BSC_ERR_IO);
    assert_non_null(strstr(bsc_last_error(), "none.json"));
}

/* Each required key left out in turn, and keys of the wrong type or range,
 * name the file and the key. */
static void test_missing_and_wrong_keys(void **state)
{
    const char *dir = *state;
    static const char *const required[] = {"batch_size", "status", "epochs_done", "seconds",
                                           "train_loss", "train_acc", "test_loss", "test_acc"};
    bsc_run_record *r = NULL;
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        /* drop the line of that key from the first version's file */
        char text[1024] = "", key[64];
        snprintf(key, sizeof key, "\"%s\"", required[i]);
        const char *line = first_run_json;
        while (*line) {
            const char *end = strchr(line, '\n') + 1;
            if (!strstr(line, key) || strstr(line, key) >= end)
                strncat(text, line, (size_t)(end - line));
            line = end;
        }
        /* the last key carries no comma: keep the object valid */
        char *tail = strstr(text, ",\n}");
        if (tail)
            memmove(tail, tail + 1, strlen(tail));
        char *path = tu_write(dir, "missing.json", text);
        assert_int_equal(bsc_run_record_read(path, &r), BSC_ERR_DATA);
        assert_null(r);
        char want[128];
        snprintf(want, sizeof want, "missing key \"%s\"", required[i]);
        if (!strstr(bsc_last_error(), want) || !strstr(bsc_last_error(), path))
            fail_msg("dropping %s: %s", required[i], bsc_last_error());
        free(path);
    }

    static const struct {
        const char *text, *says;
    } wrong[] = {
        {"{\"batch_size\": \"64\", \"status\": \"completed\"}", "\"batch_size\" is a string"},
        {"{\"batch_size\": 64.0, \"status\": \"completed\"}", "\"batch_size\" is a real"},
        {"{\"batch_size\": 0, \"status\": \"completed\"}", "\"batch_size\" is 0, out of range"},
        {"{\"batch_size\": 64, \"status\": null}", "\"status\" is null"},
        {"{\"batch_size\": 64, \"status\": \"completed\", \"epochs_done\": 1, \"seconds\": "
         "\"1\"}", "\"seconds\" is a string"},
        {"{\"name\": 5, \"batch_size\": 64}", "\"name\" is an integer"},
        {"{\"batch_size\": 64, \"status\": \"completed\", \"epochs_done\": 99999999999}",
         "\"epochs_done\" is 99999999999, out of range"},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        char *path = tu_write(dir, "wrong.json", wrong[i].text);
        assert_int_equal(bsc_run_record_read(path, &r), BSC_ERR_DATA);
        if (!strstr(bsc_last_error(), wrong[i].says) || !strstr(bsc_last_error(), path))
            fail_msg("%s: %s", wrong[i].text, bsc_last_error());
        free(path);
    }

    /* nested: the manifest's second run, and its device */
    bsc_manifest *m = NULL;
    char *path = tu_write(dir, "m.json",
                          "{\"name\": \"x\", \"seed\": 1, \"status\": \"running\", \"runs\": [\n"
                          "  {\"batch_size\": 32, \"status\": \"completed\", \"epochs_done\": 1, "
                          "\"seconds\": 1, \"train_acc\": null, \"test_acc\": null},\n"
                          "  {\"batch_size\": 64}]}\n");
    assert_int_equal(bsc_manifest_read(path, &m), BSC_ERR_DATA);
    assert_null(m);
    assert_non_null(strstr(bsc_last_error(), "runs[1]: missing key \"status\""));
    free(path);
    path = tu_write(dir, "m.json", "{\"name\": \"x\", \"seed\": 1, \"status\": \"running\", "
                    "\"device\": {\"index\": \"0\"}, \"runs\": []}\n");
    assert_int_equal(bsc_manifest_read(path, &m), BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), "device: key \"index\" is a string"));
    free(path);
    path = tu_write(dir, "m.json", "{\"name\": \"x\", \"seed\": 1, \"status\": \"running\"}\n");
    assert_int_equal(bsc_manifest_read(path, &m), BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), "missing key \"runs\""));
    free(path);
    path = tu_write(dir, "m.json", "{\"name\": \"x\", \"seed\": 1, \"status\": \"running\", "
                    "\"overrides\": [\"seed=1\", 2], \"runs\": []}\n");
    assert_int_equal(bsc_manifest_read(path, &m), BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), "overrides[1]: is an integer, not a string"));
    free(path);
    /* Older manifests: no versions, no overrides. */
    path = tu_write(dir, "m.json", "{\"name\": \"x\", \"seed\": 1, \"status\": \"running\", "
                    "\"runs\": []}\n");
    assert_int_equal(bsc_manifest_read(path, &m), BSC_OK);
    assert_null(m->versions);
    assert_int_equal(m->n_overrides, 0);
    bsc_manifest_free(m);
    free(path);
}

/* The temporary file is renamed away; a record that cannot be written
 * leaves nothing behind, not even a temporary. */
static void test_atomic_write(void **state)
{
    const char *dir = *state;   /* its own, empty */
    char path[1100];
    snprintf(path, sizeof path, "%s/run.json", dir);
    bsc_run_record *r = NULL;
    assert_int_equal(bsc_run_record_new(&r), BSC_OK);
    r->batch_size = 8;
    assert_int_equal(bsc_run_record_write(path, r), BSC_ERR_INVALID);   /* no status */
    assert_non_null(strstr(bsc_last_error(), "status"));
    assert_int_equal(n_entries(dir), 0);
    r->status = "completed";
    assert_int_equal(bsc_run_record_write(path, r), BSC_OK);
    assert_int_equal(bsc_run_record_write(path, r), BSC_OK);   /* over an existing one */
    assert_int_equal(n_entries(dir), 1);

    bsc_manifest *m = NULL;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    assert_int_equal(bsc_manifest_new(&m), BSC_OK);
    m->name = "x";
    m->status = "running";
    bsc_run_record *run;
    assert_int_equal(bsc_manifest_add_run(m, &run), BSC_OK);
    run->batch_size = 16;                   /* no status */
    assert_int_equal(bsc_manifest_write(path, m), BSC_ERR_INVALID);
    assert_non_null(strstr(bsc_last_error(), "runs[0]: key \"status\""));
    assert_int_equal(n_entries(dir), 1);
    run->status = "failed";
    assert_int_equal(bsc_manifest_write(path, m), BSC_OK);
    assert_int_equal(n_entries(dir), 2);
    /* a directory that does not exist: an error naming the temporary */
    snprintf(path, sizeof path, "%s/no/such/dir/manifest.json", dir);
    assert_int_equal(bsc_manifest_write(path, m), BSC_ERR_IO);
    assert_non_null(strstr(bsc_last_error(), "manifest.json"));
    bsc_manifest_free(m);
    bsc_run_record_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_round_trip),
        cmocka_unit_test(test_manifest_round_trip),
        cmocka_unit_test(test_old_files),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_missing_and_wrong_keys),
        cmocka_unit_test_setup_teardown(test_atomic_write, tu_setup_tmpdir, tu_teardown_tmpdir),
    };
    return cmocka_run_group_tests(tests, tu_setup_tmpdir, tu_teardown_tmpdir);
}
