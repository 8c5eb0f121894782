/* The batchscope command: devices, plugins, run, check, report. Thin: the
 * work is in libbatchscope so that tests can drive it without a subprocess.
 * Options follow the GNU conventions (getopt_long): `--out DIR`,
 * `--out=DIR` and `-o DIR` are one option, and options may come before or
 * after the positional argument. */
#include "batchscope/batchscope.h"
#include "batchscope/fsutil.h"
#include "batchscope/scaleout.h"
#include "batchscope/study.h"
#include "signals.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_STATUS_HELP                                                              \
    "exit status:\n"                                                                  \
    "  0    success (every run completed or diverged -- a diverged run is a\n"        \
    "       result -- and every analysis ran)\n"                                       \
    "  1    a run, an analysis or the report failed (OUT/manifest.json says\n"        \
    "       which), or the results directory is in use\n"                            \
    "  2    bad usage or input, found before any work started\n"                      \
    "  130  interrupted (Ctrl-C, SIGTERM, SIGHUP); `batchscope run --resume OUT`\n"   \
    "       continues\n"                                                              \
    "  139  crashed (SIGSEGV; the error names the plugin)\n"

static const char *usage_main =
    "usage: batchscope [-h] [-V [-d SEL]] <command> [options]\n"
    "\n"
    "commands:\n"
    "  devices                 list OpenCL platforms and devices (what --device matches)\n"
    "  plugins                 list plugins, the types they provide and their options\n"
    "  run PIPELINE.yaml       run a study (see `batchscope run --help`)\n"
    "  run --resume OUT        continue an interrupted study\n"
    "  check PIPELINE.yaml     validate a pipeline without running it\n"
    "  report OUT              redraw the figures and OUT/report.html\n"
    "\n"
    "options:\n"
    "  -h, --help              this help (`batchscope <command> --help` for a command's)\n"
    "  -V, --version           versions of batchscope (and its git commit), CLBlast,\n"
    "                          libyaml, jansson, the OpenCL ICD loader and the driver\n"
    "  -d, --device SEL        with --version: the device whose driver to show\n"
    "                          (default auto)\n"
    "\n" EXIT_STATUS_HELP;

static const char *usage_run =
    "usage: batchscope run PIPELINE.yaml [options]\n"
    "       batchscope run --resume OUT [options]\n"
    "\n"
    "  -d, --device SEL   flat index, P:D, cpu|gpu|accelerator, part of a platform,\n"
    "                     vendor or device name (pocl, nvidia, amd, intel), or auto;\n"
    "                     beats the pipeline's `device:` (`batchscope devices` lists them)\n"
    "      --gemm B       GEMM backend: auto (host BLAS where the device runs native\n"
    "                     kernels, else CLBlast), clblast or host (beats `gemm:`)\n"
    "  -o, --out DIR      results directory (default results/<name>-<timestamp>)\n"
    "  -s, --set K=V      override a pipeline value before validation, e.g.\n"
    "                     --set training.epochs=2 --set training.batch_sizes=[32,256]\n"
    "      --resume OUT   continue an interrupted study in OUT, keeping finished runs;\n"
    "                     alone, with the pipeline and --set options OUT recorded\n"
    "  -q, --quiet        no progress output\n"
    "      --mpi-timeout S  under mpirun: seconds a rank may stay silent (dead,\n"
    "                     hung, unreachable) before the study ends naming it (300)\n"
    "      --shared-out M under mpirun: auto (each rank checks it reads OUT), yes (OUT\n"
    "                     is one shared directory: a rank that cannot read it is an\n"
    "                     error) or no (checkpoints sent over MPI) (auto)\n"
    "  -h, --help         this help\n"
    "\n"
    "An option's value follows it (--out DIR) or an '=' (--out=DIR).\n"
    "`mpirun -n N batchscope run ...` runs one study over N ranks; --device may\n"
    "list one selector per rank of a host (--device 0,1).\n"
    "\n" EXIT_STATUS_HELP;

static const char *usage_check =
    "usage: batchscope check PIPELINE.yaml [-s key.path=value]... [-o DIR]\n"
    "\n"
    "Validates the pipeline without opening a device: its keys and values, the\n"
    "plugin types it names, the dataset files, every layer's and analysis'\n"
    "options, the files analyses name (checkpoints, saved directions) and the\n"
    "model's shapes; prints the model's shapes.\n"
    "\n"
    "  -s, --set K=V   override a pipeline value, as `batchscope run` does\n"
    "  -o, --out DIR   a file under DIR that does not exist yet is one the study\n"
    "                  will write\n"
    "  -h, --help      this help\n"
    "\n"
    "exit status: 0 the pipeline is valid, 2 it is not (the error says where)\n";

static const char *usage_devices =
    "usage: batchscope devices\n"
    "\n"
    "Lists every OpenCL platform and device, with the fields a --device selector\n"
    "matches.\n";

static const char *usage_plugins =
    "usage: batchscope plugins [--plugin PATH]... [--markdown]\n"
    "\n"
    "Lists every plugin found (build tree or install directory, then\n"
    "$BATCHSCOPE_PLUGIN_PATH, then each --plugin file or directory), the types\n"
    "each provides by kind, and every type's options (name, kind, default, help).\n"
    "\n"
    "  -p, --plugin PATH   also load this plugin file or directory\n"
    "      --markdown      print the option tables as the README has them\n"
    "  -h, --help          this help\n";

static const char *usage_report =
    "usage: batchscope report OUT [-q]\n"
    "\n"
    "Redraws the figures (OUT/figures) and OUT/report.html from the result files\n"
    "in OUT alone, without retraining; options come from OUT/pipeline.yaml's\n"
    "`report:` when it has one.\n"
    "\n"
    "  -q, --quiet   no progress output\n"
    "  -h, --help    this help\n";

static int fail(bsc_status s)
{
    fprintf(stderr, "batchscope: error: %s\n",
            bsc_last_error()[0] ? bsc_last_error() : bsc_status_str(s));
    return bsc_status_exit_code(s);
}

/* The message, the command's synopsis (its usage up to the first blank
 * line) and where the rest is; exit status 2. */
static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    const char *end = strstr(usage, "\n\n");
    fprintf(stderr, "batchscope: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%.*s\n(--help for more)\n", end ? (int)(end - usage) : (int)strlen(usage),
            usage);
    return 2;
}

/* Options of one command: getopt_long over argv[0..argc) (argv[0] is the
 * command's name). Returns the next option, 0 after the last one, or -2
 * after printing a usage error (the caller returns 2). */
static int next_opt(int argc, char **argv, const char *shortopts, const struct option *longopts,
                    const char *usage)
{
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c == -1)
        return 0;
    if (c == '?') {
        /* A long option by its name (up to any '='), a short one by its letter. */
        char opt[64];
        const char *arg = argv[optind - 1];
        if (!strncmp(arg, "--", 2))
            snprintf(opt, sizeof opt, "%.*s", (int)strcspn(arg, "="), arg);
        else
            snprintf(opt, sizeof opt, "-%c", optopt);
        usage_error(usage, strchr(arg, '=') && !strncmp(arg, "--", 2) && optopt
                               ? "option '%s' takes no value" : "unknown option '%s'", opt);
        return -2;
    }
    /* An empty value is no value: `--device ''` must not quietly mean auto,
     * nor `--out ''` the default directory. */
    if (c == ':' || (optarg && !optarg[0])) {
        char opt[64];
        /* the option is the word before a separate value, else its own word */
        const char *arg = c != ':' && optind >= 2 && argv[optind - 1] == optarg
                              ? argv[optind - 2] : argv[optind - 1];
        snprintf(opt, sizeof opt, "%.*s", (int)strcspn(arg, "="), arg);
        usage_error(usage, "option %s needs a value", opt);
        return -2;
    }
    return c;
}

/* Starts option parsing of a command afresh (glibc: optind 0 reinitializes). */
static void reset_getopt(void)
{
    optind = 0;
    opterr = 0;
}

static int cmd_devices(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    reset_getopt();
    while ((c = next_opt(argc, argv, "+:h", longopts, usage_devices)) > 0) {
        fputs(usage_devices, stdout);
        return 0;
    }
    if (c < 0)
        return 2;
    if (optind < argc)
        return usage_error(usage_devices, "unexpected argument '%s'", argv[optind]);
    bsc_device_info *list = NULL;
    int n = 0;
    bsc_status s = bsc_device_list(&list, &n);
    if (s != BSC_OK)
        return fail(s);
    bsc_device_print_table(stdout, list, n);
    printf("\nselect one with --device (-d): its #, P:D, cpu|gpu|accelerator, or part of\n"
           "a platform, platform vendor, vendor or device name (pocl, nvidia, amd, intel)\n");
    free(list);
    return 0;
}

static int cmd_plugins(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"plugin", required_argument, NULL, 'p'},
        {"markdown", no_argument, NULL, 'm'},
        {0}};
    const char **paths = calloc((size_t)argc + 1, sizeof *paths);
    size_t n_paths = 0;
    int markdown = 0, c;
    if (!paths)
        return fail(bsc_fail(BSC_ERR_NOMEM, "out of memory"));
    reset_getopt();
    while ((c = next_opt(argc, argv, ":hp:", longopts, usage_plugins)) > 0) {
        if (c == 'h') {
            fputs(usage_plugins, stdout);
            free(paths);
            return 0;
        }
        if (c == 'p')
            paths[n_paths++] = optarg;
        else
            markdown = 1;
    }
    if (c < 0 || optind < argc) {
        free(paths);
        return c < 0 ? 2 : usage_error(usage_plugins, "unexpected argument '%s'", argv[optind]);
    }
    bsc_registry *r = NULL;
    bsc_status s = bsc_registry_new(&r);
    if (s == BSC_OK)
        s = bsc_registry_load_default(r);
    for (size_t i = 0; s == BSC_OK && i < n_paths; i++)
        s = bsc_registry_load_path(r, paths[i], "--plugin");
    if (s == BSC_OK && markdown)
        bsc_registry_print_markdown(r, stdout);
    else if (s == BSC_OK)
        bsc_registry_print(r, stdout);
    bsc_registry_free(r);
    free(paths);
    return s == BSC_OK ? 0 : fail(s);
}

/* Options of run (allow_run_opts) and check. Returns -1 to go on, else the
 * exit status (help printed, or a usage error). */
static int parse_run_args(int argc, char **argv, const char *usage, int allow_run_opts,
                          bsc_run_options *o, const char ***overrides)
{
    static const struct option run_opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"set", required_argument, NULL, 's'},
        {"device", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'},
        {"resume", required_argument, NULL, 'r'},
        {"gemm", required_argument, NULL, 'g'},
        {"quiet", no_argument, NULL, 'q'},
        {"mpi-timeout", required_argument, NULL, 'T'},
        {"shared-out", required_argument, NULL, 'S'},
        {0}};
    static const struct option check_opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"set", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {0}};
    int c;
    *overrides = calloc((size_t)argc + 1, sizeof **overrides);
    if (!*overrides)
        return fail(bsc_fail(BSC_ERR_NOMEM, "out of memory"));
    reset_getopt();
    while ((c = next_opt(argc, argv, allow_run_opts ? ":hs:d:o:q" : ":hs:o:",
                         allow_run_opts ? run_opts : check_opts, usage)) > 0) {
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 's': (*overrides)[o->n_overrides++] = optarg; break;
        case 'd': o->device = optarg; break;
        case 'o': o->out_dir = optarg; break;
        case 'r': o->resume_dir = optarg; break;
        case 'g': o->gemm = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'T': {
            char *end;
            o->mpi_timeout = strtod(optarg, &end);
            if (*end || !(o->mpi_timeout > 0))
                return usage_error(usage, "--mpi-timeout takes seconds > 0, not '%s'", optarg);
            break;
        }
        case 'S':
            if (!strcmp(optarg, "auto"))
                o->shared_out = BSC_SHARED_OUT_AUTO;
            else if (!strcmp(optarg, "yes"))
                o->shared_out = BSC_SHARED_OUT_YES;
            else if (!strcmp(optarg, "no"))
                o->shared_out = BSC_SHARED_OUT_NO;
            else
                return usage_error(usage, "--shared-out takes auto, yes or no, not '%s'", optarg);
            break;
        default: break;
        }
    }
    if (c < 0)
        return 2;
    if (optind < argc)
        o->pipeline_path = argv[optind++];
    if (optind < argc)
        return usage_error(usage, "unexpected argument '%s'", argv[optind]);
    o->overrides = *overrides;
    if (!o->pipeline_path && !o->resume_dir)
        return usage_error(usage, "%s", allow_run_opts ? "missing PIPELINE.yaml (or --resume OUT)"
                                                       : "missing PIPELINE.yaml");
    return -1;
}

static int cmd_run(int argc, char **argv)
{
    bsc_run_options o = {0};
    const char **overrides = NULL;
    int rc = parse_run_args(argc, argv, usage_run, 1, &o, &overrides);
    if (rc < 0) {
        /* From the start: a Ctrl-C while data loads or kernels build must
         * still end in an "interrupted" manifest (exit 130). A failure once
         * the study has run is BSC_ERR_PARTIAL, exit 1, whatever its kind. */
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
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"quiet", no_argument, NULL, 'q'},
        {0}};
    int quiet = 0, c;
    reset_getopt();
    while ((c = next_opt(argc, argv, ":hq", longopts, usage_report)) > 0) {
        if (c == 'h') {
            fputs(usage_report, stdout);
            return 0;
        }
        quiet = 1;
    }
    if (c < 0)
        return 2;
    if (optind >= argc)
        return usage_error(usage_report, "%s", "missing OUT (a results directory)");
    const char *out = argv[optind++];
    if (optind < argc)
        return usage_error(usage_report, "unexpected argument '%s'", argv[optind]);
    cli_catch_abort();
    bsc_status s = bsc_study_report(out, quiet ? NULL : stdout);
    return s == BSC_OK ? 0 : fail(s);
}

/* `batchscope --version`: every version a result depends on, the driver's
 * of the device `selector` picks when there is one. */
static int print_version(const char *selector)
{
    bsc_versions v;
    bsc_versions_get(&v);
    printf("batchscope %s (plugin ABI %s)\n", v.batchscope, v.plugin_abi);
    printf("  git commit         %s\n", v.git_commit);
    printf("  CLBlast            %s\n", v.clblast);
    printf("  libyaml            %s\n", v.libyaml);
    printf("  jansson            %s\n", v.jansson);
    printf("  OpenCL ICD loader  %s\n", v.opencl_icd_loader);
    bsc_device_info *list = NULL;
    int n = 0, idx = 0;
    bsc_status s = bsc_device_list(&list, &n);
    if (s == BSC_OK)
        s = bsc_device_select(list, n, selector, &idx);
    if (s == BSC_OK)
        printf("  driver             %s (device %d: %s / %s)\n", list[idx].driver_version,
               list[idx].index, list[idx].platform_name, list[idx].name);
    else if (!selector && s == BSC_ERR_NO_PLATFORM)
        printf("  driver             none (no OpenCL device)\n");
    free(list);
    if (s != BSC_OK && (selector || s != BSC_ERR_NO_PLATFORM))
        return fail(s);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"device", required_argument, NULL, 'd'},
        {0}};
    int version = 0, c;
    const char *device = NULL;
    cli_catch_crashes();
    reset_getopt();
    /* '+': stop at the command; its options are its own. */
    while ((c = next_opt(argc, argv, "+:hVd:", longopts, usage_main)) > 0) {
        if (c == 'h') {
            fputs(usage_main, stdout);
            return 0;
        }
        if (c == 'V')
            version = 1;
        else
            device = optarg;
    }
    if (c < 0)
        return 2;
    if (version)
        return optind < argc ? usage_error(usage_main, "unexpected argument '%s'", argv[optind])
                             : print_version(device);
    if (device)
        return usage_error(usage_main, "%s", "-d/--device goes after the command "
                           "(batchscope run PIPELINE.yaml -d SEL), or with --version");
    if (optind >= argc) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    if (!strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "devices"))
        return cmd_devices(sub_argc, sub_argv);
    if (!strcmp(cmd, "plugins"))
        return cmd_plugins(sub_argc, sub_argv);
    if (!strcmp(cmd, "run"))
        return cmd_run(sub_argc, sub_argv);
    if (!strcmp(cmd, "check"))
        return cmd_check(sub_argc, sub_argv);
    if (!strcmp(cmd, "report"))
        return cmd_report(sub_argc, sub_argv);
    return usage_error(usage_main, "unknown command '%s'", cmd);
}
