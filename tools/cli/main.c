/* The batchscope command: devices, plugins, run. Thin: the work is in
 * libbatchscope so that tests can drive it without a subprocess. */
#include "batchscope/batchscope.h"
#include "batchscope/fsutil.h"
#include "batchscope/scaleout.h"
#include "batchscope/study.h"
#include "signals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage_main =
    "usage: batchscope [--help] [--version] <command> [options]\n"
    "\n"
    "commands:\n"
    "  devices                 list OpenCL platforms and devices\n"
    "  plugins                 list plugins and the types they provide\n"
    "  run PIPELINE.yaml       run a study (see `batchscope run --help`)\n"
    "  check PIPELINE.yaml     validate a pipeline without running it\n"
    "  report OUT              redraw the figures and OUT/report.html\n"
    "\n"
    "exit status: 0 success (every run completed or diverged, every analysis\n"
    "ran), 1 something failed (a run, an analysis, the report; a results\n"
    "directory in use), 2 bad usage or input; a crash dies of its signal (139)\n";

static const char *usage_run =
    "usage: batchscope run PIPELINE.yaml [--device SEL] [--gemm B] [--out DIR]\n"
    "                      [--set key.path=value]... [--resume OUT] [--quiet]\n"
    "\n"
    "  --device SEL   flat index, P:D, cpu|gpu|accelerator, a substring of the\n"
    "                 platform/vendor/device name, or auto (beats `device:`)\n"
    "  --gemm B       GEMM backend: auto (host BLAS where the device runs native\n"
    "                 kernels, else CLBlast), clblast or host (beats `gemm:`)\n"
    "  --out DIR      results directory (default results/<name>-<timestamp>)\n"
    "  --set K=V      override a pipeline value before validation, e.g.\n"
    "                 --set training.epochs=2 --set training.batch_sizes=[32,256]\n"
    "  --resume OUT   continue an interrupted study in OUT: finished runs are kept\n"
    "  --quiet        no progress output\n"
    "  --mpi-timeout S  under mpirun: seconds a rank may stay silent before the\n"
    "                 study ends naming it (default 300)\n"
    "\n"
    "mpirun -n N batchscope run ... runs one study over N ranks (--device may\n"
    "list one selector per rank of a host: --device 0,1).\n";

static const char *usage_check =
    "usage: batchscope check PIPELINE.yaml [--set key.path=value]... [--out DIR]\n"
    "\n"
    "Validates the pipeline without opening a device: its keys and values, the\n"
    "plugin types it names, the dataset files, every layer's and analysis'\n"
    "options, the files analyses name (checkpoints, saved directions) and the\n"
    "model's shapes; prints the model's shapes. With --out, a file under DIR\n"
    "that does not exist yet is one the study will write.\n";

static const char *usage_devices = "usage: batchscope devices\n\nLists every OpenCL platform and device.\n";
static const char *usage_plugins =
    "usage: batchscope plugins [--plugin PATH]... [--markdown]\n\n"
    "Lists every plugin found (build tree or install directory, then\n"
    "$BATCHSCOPE_PLUGIN_PATH, then each --plugin file or directory), the types\n"
    "each provides by kind, and every type's options (name, kind, default, help).\n"
    "--markdown prints the option tables as the README has them.\n";

static const char *usage_report =
    "usage: batchscope report OUT [--quiet]\n"
    "\n"
    "Redraws the figures (OUT/figures) and OUT/report.html from the result files\n"
    "in OUT alone, without retraining; options come from OUT/pipeline.yaml's\n"
    "`report:` when it has one.\n";

static int fail(bsc_status s)
{
    fprintf(stderr, "batchscope: error: %s\n",
            bsc_last_error()[0] ? bsc_last_error() : bsc_status_str(s));
    return bsc_status_exit_code(s);
}

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "batchscope: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

static int cmd_devices(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_devices, stdout);
        return 0;
    }
    if (argc > 0)
        return usage_error(usage_devices, "unexpected argument '%s'", argv[0]);
    bsc_device_info *list = NULL;
    int n = 0;
    bsc_status s = bsc_device_list(&list, &n);
    if (s != BSC_OK)
        return fail(s);
    bsc_device_print_table(stdout, list, n);
    free(list);
    return 0;
}

static int cmd_plugins(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_plugins, stdout);
        return 0;
    }
    bsc_registry *r = NULL;
    bsc_status s = bsc_registry_new(&r);
    if (s == BSC_OK)
        s = bsc_registry_load_default(r);
    int markdown = 0;
    for (int i = 0; s == BSC_OK && i < argc; i++) {
        if (!strcmp(argv[i], "--plugin") && i + 1 < argc)
            s = bsc_registry_load_path(r, argv[++i], "--plugin");
        else if (!strcmp(argv[i], "--markdown"))
            markdown = 1;
        else {
            bsc_registry_free(r);
            return usage_error(usage_plugins, "unexpected argument '%s'", argv[i]);
        }
    }
    if (s == BSC_OK && markdown)
        bsc_registry_print_markdown(r, stdout);
    else if (s == BSC_OK)
        bsc_registry_print(r, stdout);
    bsc_registry_free(r);
    return s == BSC_OK ? 0 : fail(s);
}

/* Shared option parsing of run and check. */
static int parse_run_args(int argc, char **argv, const char *usage, int allow_run_opts,
                          bsc_run_options *o, const char ***overrides)
{
    *overrides = calloc((size_t)argc + 1, sizeof **overrides);
    if (!*overrides)
        return fail(bsc_fail(BSC_ERR_NOMEM, "out of memory"));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--set") || !strcmp(a, "--out") ||
                    (allow_run_opts && (!strcmp(a, "--device") || !strcmp(a, "--gemm") ||
                                        !strcmp(a, "--resume") || !strcmp(a, "--mpi-timeout")));
        /* An empty value is no value: `--device ''` must not quietly mean
         * auto, nor `--out ''` the default directory. */
        if (takes && (!val || !*val))
            return usage_error(usage, "option %s needs a value", a);
        if (!strcmp(a, "--set"))
            (*overrides)[o->n_overrides++] = argv[++i];
        else if (!strncmp(a, "--set=", 6))
            (*overrides)[o->n_overrides++] = a + 6;
        else if (allow_run_opts && !strcmp(a, "--device"))
            o->device = argv[++i];
        else if (allow_run_opts && !strcmp(a, "--gemm"))
            o->gemm = argv[++i];
        else if (!strcmp(a, "--out"))
            o->out_dir = argv[++i];
        else if (allow_run_opts && !strcmp(a, "--resume"))
            o->resume_dir = argv[++i];
        else if (allow_run_opts && !strcmp(a, "--quiet"))
            o->quiet = 1;
        else if (allow_run_opts && !strcmp(a, "--mpi-timeout")) {
            char *end;
            o->mpi_timeout = strtod(argv[++i], &end);
            if (*end || !(o->mpi_timeout > 0))
                return usage_error(usage, "--mpi-timeout takes seconds > 0, not '%s'", argv[i]);
        }
        else if (a[0] == '-' && a[1])
            return usage_error(usage, "unknown option '%s'", a);
        else if (!o->pipeline_path)
            o->pipeline_path = a;
        else
            return usage_error(usage, "unexpected argument '%s'", a);
    }
    o->overrides = *overrides;
    if (!o->pipeline_path)
        return usage_error(usage, "%s", "missing PIPELINE.yaml");
    return -1;
}

static int cmd_run(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_run, stdout);
        return 0;
    }
    bsc_run_options o = {0};
    const char **overrides = NULL;
    int rc = parse_run_args(argc, argv, usage_run, 1, &o, &overrides);
    if (rc < 0) {
        /* From the start: a Ctrl-C while data loads or kernels build must
         * still end in an "interrupted" manifest. */
        cli_catch_stop();
        o.stop_requested = cli_stop_requested;
        bsc_status s = bsc_study_run(&o);
        rc = s == BSC_OK ? 0 : fail(s);
        /* MPI_Finalize (or, after a lost rank, MPI_Abort); nothing without MPI. */
        rc = bsc_scaleout_end(rc);
    }
    free(overrides);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_check, stdout);
        return 0;
    }
    bsc_run_options o = {0};
    const char **overrides = NULL;
    int rc = parse_run_args(argc, argv, usage_check, 0, &o, &overrides);
    if (rc < 0) {
        bsc_status s = bsc_study_check(&o, stdout);
        rc = s == BSC_OK ? 0 : fail(s);
    }
    free(overrides);
    return rc;
}

/* ---- `batchscope report OUT`: the study's report drawn from the result
 * files alone, with no device (bsc_study_report). */

static int cmd_report(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_report, stdout);
        return 0;
    }
    const char *out = NULL;
    int quiet = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet"))
            quiet = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return usage_error(usage_report, "unknown option '%s'", argv[i]);
        else if (!out)
            out = argv[i];
        else
            return usage_error(usage_report, "unexpected argument '%s'", argv[i]);
    }
    if (!out)
        return usage_error(usage_report, "%s", "missing OUT (a results directory)");
    cli_catch_abort();
    bsc_status s = bsc_study_report(out, quiet ? NULL : stdout);
    return s == BSC_OK ? 0 : fail(s);
}

int main(int argc, char **argv)
{
    cli_catch_crashes();
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("batchscope %s (plugin ABI %d.%d)\n", bsc_version(), BSC_ABI_MAJOR, BSC_ABI_MINOR);
        return 0;
    }
    if (!strcmp(cmd, "devices"))
        return cmd_devices(argc - 2, argv + 2);
    if (!strcmp(cmd, "plugins"))
        return cmd_plugins(argc - 2, argv + 2);
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "check"))
        return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "report"))
        return cmd_report(argc - 2, argv + 2);
    return usage_error(usage_main, "unknown command '%s'", cmd);
}
