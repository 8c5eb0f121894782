/* The batchscope command: help, version, option forms, exit statuses,
 * devices, the no-platform message, a device-only pipeline writing its
 * manifest, progress lines, interrupting and resuming. Commands that open
 * a device get -d $BATCHSCOPE_TEST_DEVICE (tu_device()). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batchscope/fsutil.h"
#include "batchscope/plugin.h"
#include "batchscope/safetensors.h"
#include "batchscope/study.h"
#include "testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static char *run_cli(const char *args, int *rc)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s", BSC_CLI, args);
    char *out = NULL;
    *rc = tu_run(cmd, &out);
    assert_non_null(out);
    return out;
}

static void test_help_version(void **state)
{
    (void)state;
    int rc;
    char args[512];
    snprintf(args, sizeof args, "--version -d '%s'", tu_device());
    const char *forms[] = {"--version", "-V", args};
    for (size_t i = 0; i < 3; i++) {
        char *out = run_cli(forms[i], &rc);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(out, "batchscope 0."));
        char abi[48];
        snprintf(abi, sizeof abi, "plugin ABI %d.%d", BSC_ABI_MAJOR, BSC_ABI_MINOR);
        assert_non_null(strstr(out, abi));
        const char *keys[] = {"git commit", "CLBlast", "libyaml", "jansson",
                              "OpenCL ICD loader", "driver"};
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            if (!strstr(out, keys[k]))
                fail_msg("`batchscope %s` lacks %s:\n%s", forms[i], keys[k], out);
        free(out);
    }
    /* No OpenCL at all: the versions still, the driver says none. */
    char *empty = tu_tmpdir("icd");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "OCL_ICD_VENDORS='%s' '%s' --version", empty, BSC_CLI);
    char *out = NULL;
    rc = tu_run(cmd, &out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "none (no OpenCL device)"));
    free(out);
    free(empty);
    const char *helps[] = {"--help", "-h", "help"};
    for (size_t i = 0; i < 3; i++) {
        out = run_cli(helps[i], &rc);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(out, "run PIPELINE.yaml"));
        assert_non_null(strstr(out, "130  interrupted"));
        free(out);
    }
    const char *cmds[] = {"run", "devices", "plugins", "check", "report"};
    for (size_t i = 0; i < 5; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s %s", cmds[i], i % 2 ? "-h" : "--help");
        out = run_cli(a, &rc);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(out, "usage: batchscope"));
        if (i == 0) {   /* run's help says what its exit statuses mean */
            assert_non_null(strstr(out, "0    success"));
            assert_non_null(strstr(out, "1    a run, an analysis or the report failed"));
            assert_non_null(strstr(out, "2    bad usage or input"));
            assert_non_null(strstr(out, "130  interrupted"));
        }
        free(out);
    }
}

/* The mapping behind the exit statuses. Once a study has run, whatever
 * failed in it -- a kernel that does not build, a missing kernel name
 * (NOT_FOUND), an analysis -- comes back as BSC_ERR_PARTIAL: 1, not the 2
 * its kind would give before any work; an interruption is 130. */
static void test_exit_code_mapping(void **state)
{
    (void)state;
    assert_int_equal(bsc_status_exit_code(BSC_OK), 0);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_PARTIAL), 1);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_BUSY), 1);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_BUILD), 1);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_OPENCL), 1);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_NOMEM), 1);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_NOT_FOUND), 2);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_PARSE), 2);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_USAGE), 2);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_PLUGIN), 2);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_NO_PLATFORM), 2);
    assert_int_equal(bsc_status_exit_code(BSC_ERR_INTERRUPTED), 130);
}

static void test_bad_usage(void **state)
{
    (void)state;
    int rc;
    char *out = run_cli("frobnicate", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
    free(out);
    out = run_cli("run", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "missing PIPELINE.yaml"));
    free(out);
    out = run_cli("run x.yaml --bogus", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "unknown option '--bogus'"));
    assert_non_null(strstr(out, "usage: batchscope run"));
    free(out);
    out = run_cli("run x.yaml --bogus=3", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "unknown option '--bogus'"));
    free(out);
    out = run_cli("run x.yaml -x", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "unknown option '-x'"));
    free(out);
    out = run_cli("run x.yaml --quiet=yes", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "'--quiet' takes no value"));
    free(out);
    out = run_cli("run x.yaml --out", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "option --out needs a value"));
    free(out);
    out = run_cli("run x.yaml -o", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "needs a value"));
    free(out);
    out = run_cli("run x.yaml y.yaml", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "unexpected argument 'y.yaml'"));
    free(out);
    /* An empty device selector is an error, not auto. */
    out = run_cli("run x.yaml --device=", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "option --device needs a value"));
    free(out);
    out = run_cli("run x.yaml -d ''", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "option -d needs a value"));
    free(out);
    out = run_cli("devices extra", &rc);
    assert_int_equal(rc, 2);
    free(out);
    /* The scale-out options' values are checked before anything runs. */
    out = run_cli("run x.yaml --shared-out maybe", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--shared-out takes auto, yes or no, not 'maybe'"));
    free(out);
    out = run_cli("run x.yaml --mpi-timeout 0", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--mpi-timeout takes seconds > 0"));
    free(out);
    out = run_cli("report", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "missing OUT"));
    free(out);
    out = run_cli("run /nonexistent/p.yaml", &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "/nonexistent/p.yaml"));
    free(out);
    out = run_cli("", &rc);
    assert_int_equal(rc, 2);
    free(out);
}

static void test_devices(void **state)
{
    (void)state;
    int rc;
    char *out = run_cli("devices", &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "P:D"));
    assert_non_null(strstr(out, "platform vendor"));
    assert_non_null(strstr(out, "--device"));
    free(out);
}

static void test_no_platform(void **state)
{
    (void)state;
    char *empty = tu_tmpdir("icd");
    /* The ICD loader reads OCL_ICD_VENDORS: an empty directory means no
     * driver at all, as on a machine without pocl-opencl-icd. */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "OCL_ICD_VENDORS='%s' '%s' devices", empty, BSC_CLI);
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "pocl-opencl-icd"));
    free(out);
    free(empty);
}

static const char *device_only =
    "version: 1\n"
    "name: devonly\n"
    "seed: 7\n"
    "device: cpu\n";

static void test_device_only_pipeline(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "p.yaml", device_only);
    char args[2048];
    snprintf(args, sizeof args, "run '%s' --out '%s/out' --set seed=11 --quiet -d '%s'", yaml,
             dir, tu_device());
    int rc;
    char *out = run_cli(args, &rc);
    assert_int_equal(rc, 0);
    free(out);
    char path[1024];
    snprintf(path, sizeof path, "%s/out/manifest.json", dir);
    char *manifest = tu_read(path, NULL);
    assert_non_null(manifest);
    assert_non_null(strstr(manifest, "\"status\": \"completed\""));
    assert_non_null(strstr(manifest, "\"seed\": 11"));
    assert_non_null(strstr(manifest, "\"platform\": "));
    assert_non_null(strstr(manifest, "\"driver_version\": "));
    assert_non_null(strstr(manifest, "\"platform_vendor\": "));
    assert_non_null(strstr(manifest, "\"git_commit\": "));
    assert_non_null(strstr(manifest, "\"clblast\": "));
    assert_non_null(strstr(manifest, "\"libyaml\": "));
    assert_non_null(strstr(manifest, "\"opencl_icd_loader\": "));
    assert_non_null(strstr(manifest, "\"driver\": "));
    assert_non_null(strstr(manifest, "\"overrides\": [\n    \"seed=11\"\n  ]"));
    /* Paths that resolve from anywhere: the pipeline's and the plugins'. */
    char want[1200];
    snprintf(want, sizeof want, "\"pipeline\": \"%s\"", yaml);
    assert_non_null(strstr(manifest, want));
    for (const char *at = manifest; (at = strstr(at, "\"path\": \"")); at++)
        assert_int_equal(at[9], '/');
    free(manifest);
    /* The other spellings of the same options. */
    snprintf(args, sizeof args, "run --out='%s/out3' --set=seed=12 -q --device='%s' '%s'", dir,
             tu_device(), yaml);
    out = run_cli(args, &rc);
    assert_int_equal(rc, 0);
    free(out);
    snprintf(args, sizeof args, "run -o '%s/out4' -s seed=13 -q -d '%s' '%s'", dir, tu_device(),
             yaml);
    out = run_cli(args, &rc);
    assert_int_equal(rc, 0);
    free(out);
    snprintf(path, sizeof path, "%s/out4/manifest.json", dir);
    manifest = tu_read(path, NULL);
    assert_non_null(manifest);
    assert_non_null(strstr(manifest, "\"seed\": 13"));
    free(manifest);
    snprintf(path, sizeof path, "%s/out/pipeline.yaml", dir);
    char *resolved = tu_read(path, NULL);
    assert_non_null(resolved);
    assert_non_null(strstr(resolved, "seed: 11"));
    free(resolved);
    /* A second run into the same directory refuses instead of mixing. */
    out = run_cli(args, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--resume"));
    free(out);
    /* --gemm: the backend chosen is the manifest's; an unknown one is a
     * usage error naming the choices. */
    snprintf(args, sizeof args, "run '%s' --out '%s/clb' --gemm clblast --quiet", yaml, dir);
    out = run_cli(args, &rc);
    assert_int_equal(rc, 0);
    free(out);
    snprintf(path, sizeof path, "%s/clb/manifest.json", dir);
    manifest = tu_read(path, NULL);
    assert_non_null(manifest);
    assert_non_null(strstr(manifest, "\"gemm\": \"clblast\""));
    free(manifest);
    snprintf(args, sizeof args, "run '%s' --out '%s/bad' --gemm cublas --quiet", yaml, dir);
    out = run_cli(args, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "auto, clblast or host"));
    free(out);
    /* An unmatched device selector lists the devices. */
    snprintf(args, sizeof args, "run '%s' --out '%s/o2' --device nosuchdevice", yaml, dir);
    out = run_cli(args, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "nosuchdevice"));
    assert_non_null(strstr(out, "0:0"));
    free(out);
    free(yaml);
    free(dir);
}

static void test_bad_yaml_location(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "bad.yaml", "version: 1\nname: x\nsede: 3\n");
    char args[2048];
    snprintf(args, sizeof args, "check '%s'", yaml);
    int rc;
    char *out = run_cli(args, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "bad.yaml:3:1"));
    assert_non_null(strstr(out, "seed"));
    free(out);
    /* An unknown layer type names the closest known one. */
    char *y2 = tu_write(dir, "layer.yaml",
                        "version: 1\nname: x\ndataset: fashion-mnist\nmodel:\n"
                        "  - {type: dnse, units: 3}\ntraining: {epochs: 1, batch_sizes: [4]}\n");
    snprintf(args, sizeof args, "check '%s'", y2);
    out = run_cli(args, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "layer.yaml:5:"));
    assert_non_null(strstr(out, "dense"));
    free(out);
    free(y2);
    free(yaml);
    free(dir);
}

/* A layer's own option error is found before anything is written. */
static void test_layer_option_error_writes_nothing(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "opt.yaml",
                          "version: 1\nname: x\ndataset: {name: fashion-mnist, subset: 64}\n"
                          "model:\n  - {type: flatten}\n  - {type: dense, unts: 3}\n"
                          "training: {epochs: 1, batch_sizes: [4]}\n");
    char args[2048];
    snprintf(args, sizeof args, "run '%s' --out '%s/out'", yaml, dir);
    int rc;
    char *out = run_cli(args, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "opt.yaml:6:"));
    assert_non_null(strstr(out, "unts"));
    assert_non_null(strstr(out, "units"));
    free(out);
    char path[1024];
    snprintf(path, sizeof path, "%s/out", dir);
    assert_true(access(path, F_OK) != 0);
    snprintf(args, sizeof args, "check '%s'", yaml);
    out = run_cli(args, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "opt.yaml:6:"));
    free(out);
    free(yaml);
    free(dir);
}

/* An analysis naming a run the study does not train is an error before
 * training, at the option's line and column. */
static void test_unknown_run_before_training(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "run.yaml",
                          "version: 1\nname: x\ndataset: {name: fashion-mnist, subset: 64}\n"
                          "model:\n  - {type: flatten}\n  - {type: dense, units: 10}\n"
                          "training: {epochs: 1, batch_sizes: [16, 32]}\n"
                          "analyses:\n  - {type: interpolate, from: 16, to: 512}\n");
    char args[2048];
    snprintf(args, sizeof args, "check '%s'", yaml);
    int rc;
    char *out = run_cli(args, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "run.yaml:9:"));
    assert_non_null(strstr(out, "no run 512"));
    assert_non_null(strstr(out, "bs16, bs32"));
    free(out);
    free(yaml);
    free(dir);
}

/* Ctrl-C stops the study cleanly (manifest "interrupted", exit 130);
 * resuming it with another pipeline is refused, naming the first key that
 * differs and both values. */
static void test_interrupt_and_resume(void **state)
{
    (void)state;
    if (access(FMNIST, R_OK) != 0)
        skip();
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "long.yaml",
                          "version: 1\nname: long\ndataset: {name: fashion-mnist, subset: 2048, "
                          "test_subset: 256}\nmodel:\n  - {type: flatten}\n"
                          "  - {type: dense, units: 32}\n  - {type: relu}\n"
                          "  - {type: dense, units: 10}\n"
                          "training: {epochs: 400, batch_sizes: [8, 64], eval_batch_size: 256}\n");
    char cmd[4096];
    /* Ctrl-C once training is under way (its first progress line): rusticl
     * compiles kernels in an LLVM whose own SIGINT handler ends the process
     * at once when the signal lands during a compile (exit 130 still, the
     * manifest left "running"; see the README). */
    snprintf(cmd, sizeof cmd, "{ BATCHSCOPE_PROGRESS_INTERVAL=0 '%s' run '%s' --out '%s/out' "
             "-d '%s' > '%s/log' 2>&1 & p=$!; for i in $(seq 1200); do "
             "grep -q ' step ' '%s/log' && break; sleep 0.1; done; kill -INT $p; wait $p; "
             "echo rc=$?; cat '%s/log'; }", BSC_CLI, yaml, dir, tu_device(), dir, dir, dir);
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    assert_int_equal(rc, 0);
    if (!strstr(out, "rc=130") || !strstr(out, "error: interrupted at epoch"))
        fail_msg("%s", out);
    free(out);
    char path[1024];
    snprintf(path, sizeof path, "%s/out/manifest.json", dir);
    char *m = tu_read(path, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "\"status\": \"interrupted\""));
    free(m);
    /* The same study made shorter is another pipeline: refused, and told why. */
    snprintf(cmd, sizeof cmd, "'%s' run '%s' --resume '%s/out' --quiet --set training.epochs=1 "
             "-d '%s'", BSC_CLI, yaml, dir, tu_device());
    rc = tu_run(cmd, &out);
    assert_int_equal(rc, 2);
    if (!strstr(out, "training.epochs: 1 in") || !strstr(out, ", 400 in") ||
        !strstr(out, "--resume"))
        fail_msg("the refusal does not name the key and both values:\n%s", out);
    free(out);
    free(yaml);
    free(dir);
}

/* `batchscope run --resume OUT` alone continues the study OUT recorded:
 * its pipeline and --set options; when the pipeline file has changed or
 * gone, from OUT/pipeline.yaml. */
static void test_resume_alone(void **state)
{
    (void)state;
    if (access(FMNIST, R_OK) != 0)
        skip();
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "r.yaml",
                          "version: 1\nname: r\ndataset: {name: fashion-mnist, subset: 256, "
                          "test_subset: 64}\nmodel:\n  - {type: flatten}\n"
                          "  - {type: dense, units: 10}\n"
                          "training: {epochs: 5, batch_sizes: [32, 64], eval_batch_size: 64}\n"
                          "report: {enabled: false}\n");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' run '%s' -o '%s/out' -q -d '%s' --set training.epochs=1 "
             "--set seed=5", BSC_CLI, yaml, dir, tu_device());
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    if (rc != 0)
        fail_msg("%s", out);
    free(out);
    /* An unfinished run: bs64 lost its completion record. */
    char path[1024];
    snprintf(path, sizeof path, "%s/out/runs/bs64/run.json", dir);
    assert_int_equal(remove(path), 0);
    snprintf(cmd, sizeof cmd, "'%s' run --resume '%s/out' -d '%s'", BSC_CLI, dir, tu_device());
    rc = tu_run(cmd, &out);
    if (rc != 0 || !strstr(out, "bs32     already completed: kept") ||
        !strstr(out, "bs64   epoch 1/1"))
        fail_msg("resume alone (rc %d):\n%s", rc, out);
    free(out);
    assert_int_equal(access(path, R_OK), 0);
    /* --set with --resume alone would change the study: refused. */
    snprintf(cmd, sizeof cmd, "'%s' run --resume '%s/out' --set seed=6", BSC_CLI, dir);
    rc = tu_run(cmd, &out);
    assert_int_equal(rc, 2);
    free(out);
    /* The pipeline file edited (or gone) since: OUT/pipeline.yaml it is. */
    remove(yaml);
    free(tu_write(dir, "r.yaml", "version: 1\nname: other\n"));
    snprintf(cmd, sizeof cmd, "'%s' run --resume '%s/out' -d '%s'", BSC_CLI, dir, tu_device());
    rc = tu_run(cmd, &out);
    if (rc != 0 || !strstr(out, "is not the pipeline the study started with") ||
        !strstr(out, "bs64     already completed: kept"))
        fail_msg("resume alone, pipeline changed (rc %d):\n%s", rc, out);
    free(out);
    snprintf(path, sizeof path, "%s/out/manifest.json", dir);
    char *m = tu_read(path, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "\"status\": \"completed\""));
    assert_non_null(strstr(m, "\"training.epochs=1\""));
    assert_non_null(strstr(m, "\"seed=5\""));
    assert_non_null(strstr(m, "r.yaml\""));   /* still the file the study started from */
    free(m);
    /* Not a results directory. */
    snprintf(cmd, sizeof cmd, "'%s' run --resume '%s'", BSC_CLI, dir);
    rc = tu_run(cmd, &out);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "not a results directory"));
    free(out);
    free(yaml);
    free(dir);
}

/* Exit statuses of finished studies: a diverged run is a result (0); an
 * analysis that fails after every run completed is a failure (1), not bad
 * input. */
static void test_exit_status_of_studies(void **state)
{
    (void)state;
    if (access(FMNIST, R_OK) != 0)
        skip();
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "x.yaml",
                          "version: 1\nname: x\ndataset: {name: fashion-mnist, subset: 128, "
                          "test_subset: 64}\nmodel:\n  - {type: flatten}\n"
                          "  - {type: dense, units: 16}\n  - {type: relu}\n"
                          "  - {type: dense, units: 10}\n"
                          "training: {epochs: 2, batch_sizes: [16, 32], eval_batch_size: 64,\n"
                          "           runs: [{name: hot, batch_size: 16, lr: 1e36}]}\n"
                          "report: {enabled: false}\n");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' run '%s' -o '%s/div' -q -d '%s'", BSC_CLI, yaml, dir,
             tu_device());
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    if (rc != 0)
        fail_msg("a study with a diverged run exited %d:\n%s", rc, out);
    free(out);
    char path[1024];
    snprintf(path, sizeof path, "%s/div/runs/hot/run.json", dir);
    char *r = tu_read(path, NULL);
    assert_non_null(r);
    assert_non_null(strstr(r, "\"status\": \"diverged\""));
    free(r);
    /* A checkpoint under OUT that the study was to write is taken on trust
     * before training (check cannot open it yet); it is missing only when
     * the analysis runs, after every run completed. */
    char *y2 = tu_write(dir, "y.yaml",
                        "version: 1\nname: y\ndataset: {name: fashion-mnist, subset: 128, "
                        "test_subset: 64}\nmodel:\n  - {type: flatten}\n"
                        "  - {type: dense, units: 10}\n"
                        "training: {epochs: 1, batch_sizes: [32], eval_batch_size: 64}\n"
                        "analyses:\n  - {type: interpolate, from_path: fail/runs/bs32/"
                        "nosuch.safetensors, to_path: fail/runs/bs32/final.safetensors}\n"
                        "report: {enabled: false}\n");
    snprintf(cmd, sizeof cmd, "'%s' run '%s' -o '%s/fail' -q -d '%s'", BSC_CLI, y2, dir,
             tu_device());
    rc = tu_run(cmd, &out);
    if (rc != 1 || !strstr(out, "nosuch.safetensors"))
        fail_msg("a failed analysis exited %d:\n%s", rc, out);
    free(out);
    snprintf(path, sizeof path, "%s/fail/manifest.json", dir);
    r = tu_read(path, NULL);
    assert_non_null(r);
    assert_non_null(strstr(r, "\"status\": \"failed\""));
    free(r);
    free(y2);
    free(yaml);
    free(dir);
}

/* Progress into a file or a pipe: plain lines, no carriage returns or
 * escapes, the running mean of this epoch's batch losses (not the loss
 * before training, not the last epoch's), and the analyses' counts. */
static void test_plain_progress(void **state)
{
    (void)state;
    if (access(FMNIST, R_OK) != 0)
        skip();
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "p.yaml",
                          "version: 1\nname: p\nseed: 2\ndataset: {name: fashion-mnist, "
                          "subset: 1024, test_subset: 64}\nmodel:\n  - {type: flatten}\n"
                          "  - {type: dense, units: 10}\n"
                          "training: {epochs: 2, batch_sizes: [8], eval_batch_size: 256,\n"
                          "           optimizer: {type: sgd, lr: 0.05}}\n"
                          "analyses:\n  - {type: surface, dims: 1, x: [-1, 1, 3], subset: 64}\n"
                          "report: {enabled: false}\n");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "BATCHSCOPE_PROGRESS_INTERVAL=0 '%s' run '%s' -o '%s/out' -d '%s'",
             BSC_CLI, yaml, dir, tu_device());
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    if (rc != 0)
        fail_msg("%s", out);
    assert_null(strchr(out, '\r'));
    assert_null(strchr(out, '\033'));
    assert_non_null(strstr(out, "surface1d_bs8: 3/3 points in"));
    /* epoch e's lines: their losses differ from the loss before training
     * (epoch 0's train loss) and from epoch e-1's mean. */
    char *m = NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/out/runs/bs8/metrics.csv", dir);
    m = tu_read(path, NULL);
    assert_non_null(m);
    free(m);
    int lines = 0;
    double prev_mean = -1;
    for (const char *at = out; (at = strstr(at, "  bs8 ")); at++) {
        int epoch, step;
        double loss, mean;
        if (sscanf(at, "  bs8 epoch %d/2 step %d/128 loss %lf", &epoch, &step, &loss) == 3) {
            lines++;
            assert_true(loss > 0 && loss < 5);
            if (prev_mean > 0)
                assert_true(fabs(loss - prev_mean) > 1e-4);
        } else if (sscanf(at, "  bs8 epoch %d/2  batch_loss %lf", &epoch, &mean) == 2) {
            prev_mean = mean;
        }
    }
    if (lines < 10)
        fail_msg("%d progress lines with a loss:\n%s", lines, out);
    free(out);
    free(yaml);
    free(dir);
}

/* The README's `--device pocl`, where PoCL is the suite's device. */
static void test_device_pocl(void **state)
{
    (void)state;
    int rc;
    char *out = run_cli("--version -d pocl", &rc);
    int have_pocl = rc == 0;
    free(out);
    if (!have_pocl || strcmp(tu_device(), "auto") != 0)
        skip();
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "p.yaml", device_only);
    char args[2048];
    snprintf(args, sizeof args, "run '%s' -o '%s/out' --device pocl -q", yaml, dir);
    out = run_cli(args, &rc);
    assert_int_equal(rc, 0);
    free(out);
    snprintf(args, sizeof args, "%s/out/manifest.json", dir);
    char *m = tu_read(args, NULL);
    assert_non_null(strstr(m, "\"platform_vendor\": \"The pocl project\""));
    free(m);
    free(yaml);
    free(dir);
}

#define FMNIST_IMAGES "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

/* Issue 12: a plugin that crashes is named -- plugin, file, type and op --
 * and the manifest says "crashed" instead of "running"; the process still
 * dies of its signal (139 in the shell). Also a crash while the plugin
 * loads (its constructor). */
static void test_crash_names_plugin(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "crash.yaml",
                          "version: 1\nname: crash\nseed: 3\n"
                          "plugins: [" BSC_TEST_PLUGIN_DIR "/crash.so]\n"
                          "dataset: {name: fashion-mnist, subset: 64, test_subset: 64}\n"
                          "model:\n  - {type: flatten}\n  - {type: tp_crash}\n"
                          "  - {type: dense, units: 10}\n"
                          "training: {epochs: 1, batch_sizes: [32], eval_batch_size: 64}\n");
    char cmd[4096];
    /* (braces: tu_run's 2>&1 must cover the command, not just the echo) */
    snprintf(cmd, sizeof cmd, "{ TP_CRASH=load '%s' run '%s' --out '%s/o1' --quiet; "
             "echo rc=$?; }", BSC_CLI, yaml, dir);
    char *out = NULL;
    assert_int_equal(tu_run(cmd, &out), 0);
    if (!strstr(out, "rc=139") ||
        !strstr(out, "crashed: SIGSEGV while loading the plugin " BSC_TEST_PLUGIN_DIR
                     "/crash.so"))
        fail_msg("%s", out);
    free(out);
    /* its entry point, and a bad descriptor pointer it returns */
    const char *where[] = {"entry", "badptr"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "{ TP_CRASH=%s '%s' check '%s'; echo rc=$?; }", where[k],
                 BSC_CLI, yaml);
        assert_int_equal(tu_run(cmd, &out), 0);
        if (!strstr(out, "rc=139") || !strstr(out, "while loading the plugin " BSC_TEST_PLUGIN_DIR
                                                   "/crash.so"))
            fail_msg("%s: %s", where[k], out);
        free(out);
    }
    if (access(FMNIST_IMAGES, R_OK) == 0) {
        snprintf(cmd, sizeof cmd, "{ TP_CRASH=forward '%s' run '%s' --out '%s/o2' --quiet; "
                 "echo rc=$?; }", BSC_CLI, yaml, dir);
        assert_int_equal(tu_run(cmd, &out), 0);
        if (!strstr(out, "rc=139") ||
            !strstr(out, "crashed: SIGSEGV in plugin crash (") ||
            !strstr(out, "crash.so), type tp_crash, op forward (manifest.json marked crashed)"))
            fail_msg("%s", out);
        free(out);
        char *m = tu_read(tu_path(dir, "o2/manifest.json"), NULL);
        assert_non_null(m);
        assert_non_null(strstr(m, "\"status\": \"crashed\""));
        assert_non_null(strstr(m, "type tp_crash, op forward\""));
        free(m);
        /* the crashed study's directory is free again, for --resume */
        bsc_dir_lock l = {-1, NULL};
        assert_int_equal(bsc_dir_lock_acquire(&l, tu_path(dir, "o2"), NULL), BSC_OK);
        bsc_dir_lock_release(&l);
    }
    free(yaml);
    tu_rm_rf(dir);
    free(dir);
}

/* Issue 12: two studies into one directory used to mix their files. A
 * second `run`, a `--resume` or a `report` while one holds the directory
 * fails at once naming the holder's pid; a lock left by a process that is
 * gone is taken over. (The holder here is this test process.) */
static void test_results_directory_locked(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cli");
    char *yaml = tu_write(dir, "p.yaml", device_only);
    char *outdir = strdup(tu_path(dir, "out"));
    assert_int_equal(bsc_mkdir_p(outdir), BSC_OK);
    bsc_dir_lock l = {-1, NULL};
    assert_int_equal(bsc_dir_lock_acquire(&l, outdir, NULL), BSC_OK);
    char args[2048], pid[64];
    snprintf(pid, sizeof pid, "in use by another batchscope (pid %ld)", (long)getpid());
    const char *forms[] = {"run '%s' --out '%s' --quiet", "run '%s' --resume '%s' --quiet",
                           "report '%s%s'"};
    for (int k = 0; k < 3; k++) {
        snprintf(args, sizeof args, forms[k], k == 2 ? "" : yaml, outdir);
        int rc;
        char *out = run_cli(args, &rc);
        if (rc != 1 || !strstr(out, pid))
            fail_msg("%s: rc %d: %s", args, rc, out);
        free(out);
    }
    assert_true(access(tu_path(outdir, "manifest.json"), F_OK) != 0);
    /* released, with a dead holder's pid left in the file: taken over */
    bsc_dir_lock_release(&l);
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    char text[32];
    snprintf(text, sizeof text, "%ld\n", (long)child);
    free(tu_write(outdir, ".batchscope.lock", text));
    snprintf(args, sizeof args, "run '%s' --out '%s'", yaml, outdir);
    int rc;
    char *out = run_cli(args, &rc);
    snprintf(pid, sizeof pid, "left locked by pid %ld, which is gone", (long)child);
    if (rc != 0 || !strstr(out, pid))
        fail_msg("rc %d: %s", rc, out);
    free(out);
    free(outdir);
    free(yaml);
    tu_rm_rf(dir);
    free(dir);
}

/* Issue 12: `check` passed checkpoints an analysis names without opening
 * them; a corrupt one was found only after all training. Now check (and
 * run, before training) opens them and compares them with the model. */
static void test_check_opens_named_files(void **state)
{
    (void)state;
    if (access(FMNIST_IMAGES, R_OK) != 0)
        skip();
    char *dir = tu_tmpdir("cli");
    static const char *head =
        "version: 1\nname: x\ndataset: {name: fashion-mnist, subset: 64}\n"
        "model:\n  - {type: flatten}\n  - {type: dense, units: 10}\n"
        "training: {epochs: 1, batch_sizes: [16, 32]}\nanalyses:\n";
    char text[2048];
    free(tu_write(dir, "garbage.safetensors", "this is not a safetensors file at all"));
    /* the right names with the wrong shape, as directions */
    float w[20] = {0};
    int64_t d[2] = {2, 10};
    bsc_st_entry e[2] = {{"1.weight", bsc_shape_make(2, d), w}, {"1.bias", bsc_shape_make(1, d + 1), w}};
    assert_int_equal(bsc_safetensors_write(tu_path(dir, "small.safetensors"), e, 2, NULL, NULL, 0),
                     BSC_OK);
    struct {
        const char *analysis, *want1, *want2;
    } cases[] = {
        {"  - {type: interpolate, from_path: garbage.safetensors, to_path: garbage.safetensors}\n",
         "interpolate.from_path", "garbage.safetensors"},
        {"  - {type: interpolate, from_path: nothere.safetensors, to_path: x.safetensors}\n",
         "interpolate.from_path", "nothere.safetensors"},
        {"  - {type: surface, directions: [small.safetensors, small.safetensors]}\n",
         "surface.directions", "tensor '1.weight' has another shape"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        snprintf(text, sizeof text, "%s%s", head, cases[k].analysis);
        char *yaml = tu_write(dir, "files.yaml", text);
        char args[2048];
        snprintf(args, sizeof args, "check '%s'", yaml);
        int rc;
        char *out = run_cli(args, &rc);
        if (rc != 2 || !strstr(out, cases[k].want1) || !strstr(out, cases[k].want2))
            fail_msg("case %zu: rc %d: %s", k, rc, out);
        free(out);
        /* run refuses before training: nothing written */
        snprintf(args, sizeof args, "run '%s' --out '%s/out%zu' --quiet", yaml, dir, k);
        out = run_cli(args, &rc);
        assert_int_equal(rc, 2);
        assert_true(access(tu_path(dir, "out0/runs"), F_OK) != 0);
        free(out);
        free(yaml);
    }
    /* A checkpoint the study itself will write (under --out) is fine. */
    snprintf(text, sizeof text, "%s  - {type: interpolate, from_path: out/runs/bs16/final.safetensors, "
             "to_path: out/runs/bs32/final.safetensors}\n", head);
    char *yaml = tu_write(dir, "own.yaml", text);
    char args[2048];
    snprintf(args, sizeof args, "check '%s' --out '%s/out'", yaml, dir);
    int rc;
    char *out = run_cli(args, &rc);
    if (rc != 0)
        fail_msg("rc %d: %s", rc, out);
    free(out);
    free(yaml);
    tu_rm_rf(dir);
    free(dir);
}

/* Issue 12's smaller findings, each where a user meets it. */
static void test_small_findings(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cli");
    int rc;
    char args[2048];
    /* --device '' is no selector (it used to mean auto) */
    char *yaml = tu_write(dir, "p.yaml", device_only);
    snprintf(args, sizeof args, "run '%s' --device '' --out '%s/o'", yaml, dir);
    char *out = run_cli(args, &rc);
    if (rc != 2 || !strstr(out, "option --device needs a value"))
        fail_msg("rc %d: %s", rc, out);
    free(out);
    /* a pipeline that is a directory (it was "byte 0: input error") */
    snprintf(args, sizeof args, "check '%s'", dir);
    out = run_cli(args, &rc);
    if (rc != 2 || !strstr(out, "a directory, not a YAML file"))
        fail_msg("rc %d: %s", rc, out);
    free(out);
    /* a rate of .inf is refused like .nan */
    char *inf = tu_write(dir, "inf.yaml", "version: 1\nname: x\ntraining: {epochs: 1, "
                         "batch_sizes: [4], optimizer: {type: sgd, lr: .inf}}\n");
    snprintf(args, sizeof args, "check '%s'", inf);
    free(inf);
    out = run_cli(args, &rc);
    if (rc != 2 || !strstr(out, "training.optimizer.lr must be a finite number > 0, got '.inf'"))
        fail_msg("rc %d: %s", rc, out);
    free(out);
    /* a dataset file that is a directory, /dev/zero or a FIFO is named as
     * what it is (it was "not found"), before anything reads it */
    char *fifo = strdup(tu_path(dir, "fifo"));
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *bad[][2] = {{"/dev/zero", "not a regular file"}, {fifo, "not a regular file"},
                            {dir, "a directory, not a data file"}};
    for (int k = 0; k < 3; k++) {
        char text[1024];
        snprintf(text, sizeof text, "version: 1\nname: x\ndataset: {format: idx, n_classes: 3, "
                 "train: {images: '%s', labels: '%s'}}\nmodel:\n  - {type: flatten}\n"
                 "training: {epochs: 1, batch_sizes: [4]}\n", bad[k][0], bad[k][0]);
        free(yaml);
        yaml = tu_write(dir, "data.yaml", text);
        snprintf(args, sizeof args, "check '%s'", yaml);
        out = run_cli(args, &rc);
        if (rc != 2 || !strstr(out, bad[k][1]) || !strstr(out, "data.yaml:3:"))
            fail_msg("%s: rc %d: %s", bad[k][0], rc, out);
        free(out);
    }
    free(fifo);
    if (access(FMNIST_IMAGES, R_OK) == 0) {
        /* a layer too large for the kernels is the pipeline's error (exit 2),
         * and has nothing to do with the batch */
        free(yaml);
        yaml = tu_write(dir, "big.yaml", "version: 1\nname: x\n"
                        "dataset: {name: fashion-mnist, subset: 0, test_subset: 64}\n"
                        "model:\n  - {type: flatten}\n  - {type: dense, units: 3000000}\n"
                        "training: {epochs: 1, batch_sizes: [4]}\n");
        snprintf(args, sizeof args, "check '%s'", yaml);
        out = run_cli(args, &rc);
        if (rc != 2 || !strstr(out, "make the layer smaller") || strstr(out, "smaller batch"))
            fail_msg("rc %d: %s", rc, out);
        free(out);
    }
    free(yaml);
    tu_rm_rf(dir);
    free(dir);
}

/* The README's option tables are the descriptors' own lists, as
 * `batchscope plugins --markdown` prints them: a type or option added,
 * renamed or re-defaulted without the README fails here. */
static void test_readme_options_match_descriptors(void **state)
{
    (void)state;
    int rc;
    char *want = run_cli("plugins --markdown", &rc);
    assert_int_equal(rc, 0);
    char *readme = tu_read(BSC_SOURCE_DIR "/README.md", NULL);
    assert_non_null(readme);
    const char *begin_mark = "<!-- plugin-options:begin (batchscope plugins --markdown) -->\n";
    const char *end_mark = "<!-- plugin-options:end -->";
    char *b = strstr(readme, begin_mark), *e = b ? strstr(b, end_mark) : NULL;
    if (!b || !e)
        fail_msg("README.md lacks the plugin-options markers");
    b += strlen(begin_mark);
    *e = '\0';
    if (strcmp(b, want) != 0)
        fail_msg("README.md's option tables differ from `batchscope plugins --markdown`; "
                 "regenerate them between the markers (tools/update-readme-options.sh)");
    free(readme);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_exit_code_mapping),
        cmocka_unit_test(test_bad_usage),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_no_platform),
        cmocka_unit_test(test_device_only_pipeline),
        cmocka_unit_test(test_bad_yaml_location),
        cmocka_unit_test(test_layer_option_error_writes_nothing),
        cmocka_unit_test(test_unknown_run_before_training),
        cmocka_unit_test(test_interrupt_and_resume),
        cmocka_unit_test(test_resume_alone),
        cmocka_unit_test(test_exit_status_of_studies),
        cmocka_unit_test(test_plain_progress),
        cmocka_unit_test(test_device_pocl),
        cmocka_unit_test(test_readme_options_match_descriptors),
        cmocka_unit_test(test_crash_names_plugin),
        cmocka_unit_test(test_results_directory_locked),
        cmocka_unit_test(test_check_opens_named_files),
        cmocka_unit_test(test_small_findings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
