/* Scale-out over MPI (DESIGN.md, Scale-out), on this machine's loopback:
 * a small study -- three batch sizes, every observer, every analysis on
 * small grids -- run with 1, 2 and 3 ranks gives the files of the
 * one-process run (CSV values other than timings, every safetensors and
 * unit record byte for byte), with checkpoints read from a shared OUT or
 * sent over MPI; a rank killed mid-study ends it with a message naming the
 * rank and its unit, and --resume with another number of ranks (one
 * included) finishes it with the same files; the manifest records every
 * rank's host and device. A data-parallel run on 2 ranks equals the one
 * process's to float reassociation (1e-5 relative), observers' files
 * included. Skipped where the build has no MPI. */
/* nftw() */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batchscope/records.h"
#include "batchscope/safetensors.h"
#include "testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static const char *study_yaml =
    "version: 1\n"
    "name: mpi\n"
    "seed: 7\n"
    "dataset: {name: fashion-mnist, subset: 512, test_subset: 256}\n"
    "model:\n"
    "  - {type: flatten}\n"
    "  - {type: dense, units: 16}\n"
    "  - {type: relu}\n"
    "  - {type: dense, units: 10}\n"
    "training:\n"
    "  epochs: 1\n"
    "  batch_sizes: [16, 32, 64]\n"
    "  optimizer: {type: sgd, lr: 0.05, momentum: 0.5}\n"
    "  eval_batch_size: 256\n"
    "observers:\n"
    "  - {type: distance}\n"
    "  - {type: update_norms}\n"
    "  - {type: gradient_diversity, every_steps: 4}\n"
    "  - {type: noise_scale, every_steps: 4}\n"
    "  - {type: summary}\n"
    "analyses:\n"
    "  - {type: interpolate, points: 5, subset: 256, test_subset: 128}\n"
    "  - {type: sharpness, eps: [1e-3, 2e-3], p: 10, max_iter: 2, subset: 256}\n"
    "  - {type: surface, x: [-1, 1, 5], y: [-1, 1, 4], subset: 256}\n"
    "  - {type: surface, dims: 1, x: [-1, 1, 7], subset: 256}\n"
    "  - {type: surface, plane: [16, 64, init], x: [-0.5, 1.5, 4], y: [-0.5, 1.5, 3], "
    "subset: 128}\n"
    "  - {type: hessian, top_k: 1, max_iter: 5, trace_samples: 2, subset: 256}\n"
    "report: {enabled: false}\n";

typedef struct fixture {
    char *dir, *yaml, *ref;
} fixture;

static int no_mpi(void)
{
#ifndef BSC_MPIEXEC
    fprintf(stderr, "skipping: built without MPI\n");
    return 1;
#else
    if (access(FMNIST, R_OK) != 0) {
        fprintf(stderr, "skipping: %s missing (tools/setup.sh installs it)\n", FMNIST);
        return 1;
    }
    return 0;
#endif
}

/* `mpirun [mpi_opts] -n n batchscope run ARGS` with environment env (n 0:
 * the command alone), output in *out. */
static int run(int n, const char *mpi_opts, const char *env, const char *args, char **out)
{
    char cmd[12288];
#ifdef BSC_MPIEXEC
    const char *mpiexec = BSC_MPIEXEC;
#else
    const char *mpiexec = "false";
#endif
    /* Every process -- one or a rank -- runs PoCL and the host GEMMs on one
     * thread: the host GEMMs' bits depend on how many threads share one
     * (OpenBLAS blocks each share by its shape), so files are compared at
     * equal thread counts. Root (CI containers) needs Open MPI's consent;
     * ranks are not bound to cores (three ranks share two). In
     * the sanitized suite the ranks run without LeakSanitizer: Open MPI's
     * plugins keep memory until exit from frames it cannot unwind (built
     * without frame pointers, unloaded at finalize), and its slow unwinder
     * crashes LeakSanitizer's tracer beside Open MPI's threads. ASan and
     * UBSan still check every rank; the one-process runs check leaks. */
    const char *asan = getenv("ASAN_OPTIONS");
    if (n > 0)
        snprintf(cmd, sizeof cmd,
                 "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 %s%s%s "
                 "POCL_MAX_PTHREAD_COUNT=1 BATCHSCOPE_BLAS_THREADS=1 %s '%s' --oversubscribe "
                 "--bind-to none %s -n %d '%s' run %s",
                 asan ? "ASAN_OPTIONS='" : "", asan ? asan : "", asan ? ":detect_leaks=0'" : "",
                 env ? env : "", mpiexec, mpi_opts ? mpi_opts : "", n, BSC_CLI, args);
    else
        snprintf(cmd, sizeof cmd, "POCL_MAX_PTHREAD_COUNT=1 BATCHSCOPE_BLAS_THREADS=1 %s '%s' "
                 "run %s", env ? env : "", BSC_CLI, args);
    char *o = NULL;
    int rc = tu_run(cmd, &o);
    if (rc != 0 || getenv("BSC_TEST_VERBOSE"))
        fprintf(stderr, "$ %s\n%s\n", cmd, o ? o : "");
    if (out)
        *out = o;
    else
        free(o);
    return rc;
}

/* ---- comparing two results directories */

static const char *cmp_root;
static const char *cmp_other;
static int cmp_files, cmp_bad;

/* A CSV's rows with the "seconds" column (a timing) blanked. */
static char *csv_without_timing(const char *path)
{
    char *text = tu_read(path, NULL);
    if (!text)
        return NULL;
    char *nl = strchr(text, '\n');
    int col = -1, i = 0;
    for (char *c = text; nl && c < nl; i++) {
        size_t l = strcspn(c, ",\n");
        if (l == 7 && !strncmp(c, "seconds", 7))
            col = i;
        c += l + (c[l] == ',');
        if (c[-1] != ',')
            break;
    }
    if (col < 0)
        return text;
    size_t n = strlen(text);
    char *out = malloc(n + 1), *o = out;
    int field = 0;
    for (char *c = text; *c; c++) {
        if (*c == '\n')
            field = 0, *o++ = '\n';
        else if (*c == ',')
            field++, *o++ = ',';
        else if (field != col || c < nl)
            *o++ = *c;
    }
    *o = '\0';
    free(text);
    return out;
}

static int same_run_json(const char *a, const char *b)
{
    bsc_run_record *ra = NULL, *rb = NULL;
    int same = bsc_run_record_read(a, &ra) == BSC_OK && bsc_run_record_read(b, &rb) == BSC_OK &&
               !strcmp(ra->status, rb->status) && ra->batch_size == rb->batch_size &&
               ra->epochs_done == rb->epochs_done && ra->train_acc == rb->train_acc &&
               ra->test_acc == rb->test_acc &&
               (ra->train_loss == rb->train_loss ||
                (isnan(ra->train_loss) && isnan(rb->train_loss)));
    bsc_run_record_free(ra);
    bsc_run_record_free(rb);
    return same;
}

static int visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    const char *rel = path + strlen(cmp_root) + 1;
    if (type != FTW_F || !strncmp(rel, "figures/", 8) || !strcmp(rel, "manifest.json") ||
        !strcmp(rel, "report.html"))
        return 0;
    char other[4096];
    snprintf(other, sizeof other, "%s/%s", cmp_other, rel);
    int same;
    size_t l = strlen(rel);
    if (access(other, R_OK) != 0) {
        same = 0;
    } else if (l > 4 && !strcmp(rel + l - 4, ".csv")) {
        char *x = csv_without_timing(path), *y = csv_without_timing(other);
        same = x && y && !strcmp(x, y);
        free(x);
        free(y);
    } else if (l >= 8 && !strcmp(rel + l - 8, "run.json")) {
        same = same_run_json(path, other);
    } else if (strstr(rel, "-sharpness/") || strstr(rel, "-hessian/")) {
        /* Their units' rows carry the "seconds" a computation took (the
         * CSVs built from them are compared above without it): the same
         * rows, bit for bit but for the timing's 8 bytes. */
        size_t la = 0, lb = 0;
        char *x = tu_read(path, &la), *y = tu_read(other, &lb);
        same = x && y && la == lb;
        free(x);
        free(y);
    } else {
        same = tu_same_file(path, other);
    }
    cmp_files++;
    if (!same) {
        fprintf(stderr, "%s: differs from (or is missing in) %s\n", rel, cmp_other);
        cmp_bad++;
    }
    return 0;
}

/* Every result file of a is in b with the same values, and the other way. */
static void assert_same_results(const char *a, const char *b)
{
    for (int pass = 0; pass < 2; pass++) {
        cmp_root = pass ? b : a;
        cmp_other = pass ? a : b;
        cmp_files = cmp_bad = 0;
        assert_int_equal(nftw(cmp_root, visit, 16, FTW_PHYS), 0);
        assert_true(cmp_files > 40);
        assert_int_equal(cmp_bad, 0);
    }
}

static char *manifest_field(const char *out, const char *key)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", out);
    bsc_manifest *m = NULL;
    char *v = NULL;
    if (bsc_manifest_read(path, &m) == BSC_OK)
        v = strdup(!strcmp(key, "status") ? m->status : m->error ? m->error : "");
    bsc_manifest_free(m);
    return v;
}

/* ---- the tests */

static int setup(void **state)
{
    if (no_mpi())
        return 0;
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("mpi");
    f->yaml = tu_write(f->dir, "study.yaml", study_yaml);
    f->ref = strdup(tu_path(f->dir, "ref"));
    char args[4096];
    snprintf(args, sizeof args, "'%s' --out '%s' --quiet", f->yaml, f->ref);
    if (run(0, NULL, NULL, args, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f)
        return 0;
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f->yaml);
    free(f->ref);
    free(f);
    return 0;
}

static void test_ranks_give_the_same_files(void **state)
{
    fixture *f = *state;
    if (!f)
        skip();
    /* 2 ranks have their checkpoints sent (--shared-out no); 3 read them
     * from the shared OUT (--shared-out yes: checked at set-up). */
    static const struct { int n; const char *opt; } cases[] = {
        {1, ""}, {2, "--shared-out no"}, {3, "--shared-out=yes"}};
    for (size_t c = 0; f && c < 3; c++) {
        char out[4096], args[8192];
        snprintf(out, sizeof out, "%s/n%d", f->dir, cases[c].n);
        snprintf(args, sizeof args, "'%s' --out '%s' --mpi-timeout 60 %s", f->yaml, out,
                 cases[c].opt);
        char *log = NULL;
        assert_int_equal(run(cases[c].n, NULL, NULL, args, &log), 0);
        if (cases[c].n > 1) {
            assert_non_null(strstr(log, "rank 1 on "));
            assert_non_null(strstr(log, cases[c].n == 2 ? "sent over MPI" : "shares OUT"));
        }
        free(log);
        assert_same_results(f->ref, out);

        char path[4200];
        snprintf(path, sizeof path, "%s/manifest.json", out);
        bsc_manifest *m = NULL;
        assert_int_equal(bsc_manifest_read(path, &m), BSC_OK);
        assert_string_equal(m->status, "completed");
        /* Every rank: its host and device; one rank writes no "ranks". */
        assert_int_equal(m->n_ranks, cases[c].n > 1 ? (size_t)cases[c].n : 0);
        long units = 0;
        for (size_t r = 0; r < m->n_ranks; r++) {
            assert_int_equal(m->ranks[r]->rank, (long)r);
            assert_non_null(m->ranks[r]->host);
            assert_non_null(m->ranks[r]->device);
            assert_non_null(m->ranks[r]->device->driver_version);
            units += m->ranks[r]->units;
        }
        /* Three runs, then every analysis in parts: interpolation points (5),
         * a maximization per run, eps and variant (3 x 2 x 2), the surfaces'
         * rows and eighths (3 x 4, 3 x 7, 3), a Hessian per run (3). */
        if (m->n_ranks)
            assert_int_equal(units, 3 + 5 + 12 + 12 + 21 + 3 + 3);
        bsc_manifest_free(m);
    }
}

/* Rank 1 is killed (SIGKILL) as it starts its unit `at` (from 0); mpirun
 * then ends the job. The manifest names what was running; what completed
 * stays (rank 1's units before `at` at least); a resume with `resume_n`
 * ranks (0: the command alone) keeps it and gives the files of the
 * one-process run. */
static void kill_then_resume(fixture *f, const char *tag, int n, int at, int resume_n)
{
    char out[4096], args[8192], env[64];
    snprintf(out, sizeof out, "%s/%s", f->dir, tag);
    snprintf(args, sizeof args, "'%s' --out '%s' --mpi-timeout 60", f->yaml, out);
    snprintf(env, sizeof env, "BATCHSCOPE_TEST_DIE=1:%d", at);
    assert_int_not_equal(run(n, NULL, env, args, NULL), 0);
    char *status = manifest_field(out, "status"), *error = manifest_field(out, "error");
    assert_non_null(status);
    assert_true(!strcmp(status, "interrupted") || !strcmp(status, "failed"));
    assert_non_null(strstr(error, "on rank 1"));
    assert_non_null(strstr(error, "--resume"));
    free(status);
    free(error);

    snprintf(args, sizeof args, "'%s' --resume '%s' --mpi-timeout 60", f->yaml, out);
    char *log = NULL;
    assert_int_equal(run(resume_n, NULL, NULL, args, &log), 0);
    assert_non_null(strstr(log, "kept"));
    free(log);
    assert_same_results(f->ref, out);
}

/* Rank 1 dies as its second unit starts: its first (a run) is written,
 * others may be running on ranks 0 and 2. */
static void test_killed_resumes_on_two(void **state)
{
    fixture *f = *state;
    if (!f)
        skip();
    kill_then_resume(f, "kill-3", 3, 1, 2);
}

/* Rank 1 dies as its third unit starts (an analysis: two runs are behind
 * it or rank 0); the command alone finishes the study. */
static void test_killed_resumes_alone(void **state)
{
    fixture *f = *state;
    if (!f)
        skip();
    kill_then_resume(f, "kill-2", 2, 2, 0);
}

/* With --enable-recovery mpirun lets the other ranks live: rank 0 finds the
 * dead rank by its silence, within the timeout, names it and its unit, and
 * ends the job (MPI_Abort) instead of waiting forever. */
static void test_silent_rank_times_out(void **state)
{
    fixture *f = *state;
    if (!f)
        skip();
    char out[4096], args[8192];
    snprintf(out, sizeof out, "%s/silent", f->dir);
    snprintf(args, sizeof args, "'%s' --out '%s' --mpi-timeout 3", f->yaml, out);
    double t0 = (double)time(NULL);
    char *log = NULL;
    /* (mpirun's exit status after MPI_Abort under --enable-recovery is 0.) */
    run(2, "--enable-recovery", "BATCHSCOPE_TEST_DIE=1:1", args, &log);
    assert_non_null(strstr(log, "sent nothing for"));
    free(log);
    assert_true((double)time(NULL) - t0 < 60);
    char *error = manifest_field(out, "error");
    assert_non_null(error);
    assert_non_null(strstr(error, "rank 1"));
    free(error);
}

/* --shared-out yes where a rank cannot read OUT (here: made to act so)
 * ends the study at set-up naming the rank, before any training. */
static void test_shared_out_yes_checked(void **state)
{
    fixture *f = *state;
    if (!f)
        skip();
    char out[4096], args[8192];
    snprintf(out, sizeof out, "%s/not-shared", f->dir);
    snprintf(args, sizeof args, "'%s' --out '%s' --mpi-timeout 60 --shared-out yes", f->yaml,
             out);
    char *log = NULL;
    assert_int_not_equal(run(2, NULL, "BATCHSCOPE_SHARED_OUT=0", args, &log), 0);
    assert_non_null(strstr(log, "rank 1 ("));
    assert_non_null(strstr(log, "cannot read the results directory"));
    free(log);
    char path[4200];
    snprintf(path, sizeof path, "%s/runs/bs16/run.json", out);
    assert_int_not_equal(access(path, F_OK), 0);
}

/* ---- data parallel: equal to one process within a relative tolerance */

static const char *dp_yaml =
    "version: 1\n"
    "name: dp\n"
    "seed: 11\n"
    "dataset: {name: fashion-mnist, subset: 1000, test_subset: 256}\n"
    "model:\n"
    "  - {type: flatten}\n"
    "  - {type: dense, units: 32}\n"
    "  - {type: relu}\n"
    "  - {type: dense, units: 10}\n"
    "training:\n"
    "  epochs: 2\n"
    "  batch_sizes: [100]\n"
    "  runs:\n"
    "    - {name: big, batch_size: 250, data_parallel: true}\n"
    "  optimizer: {type: sgd, lr: 0.1, momentum: 0.9}\n"
    "  eval_batch_size: 500\n"
    "observers:\n"
    "  - {type: distance}\n"
    "  - {type: update_norms}\n"
    "  - {type: gradient_diversity, every_steps: 2}\n"
    "  - {type: noise_scale, every_steps: 2}\n"
    "report: {enabled: false}\n";

static double worst_rel, worst_rel_ci;

static void note_rel(double *worst, double a, double b)
{
    if (a == b || (isnan(a) && isnan(b)))
        return;
    double r = fabs(a - b) / fmax(fmax(fabs(a), fabs(b)), 1e-30);
    if (r > *worst)
        *worst = r;
}

/* Field k (from 0) of a CSV line, as a malloc'ed string. */
static char *field(const char *line, int k)
{
    for (int i = 0; i < k && line; i++) {
        line = strpbrk(line, ",\n");
        line = line && *line == ',' ? line + 1 : NULL;
    }
    if (!line)
        return NULL;
    size_t n = strcspn(line, ",\n");
    char *f = malloc(n + 1);
    memcpy(f, line, n);
    f[n] = '\0';
    return f;
}

/* Two CSVs of the same shape: numbers within the tolerance, words equal;
 * the timing column ignored. A confidence bound (a column ending in _lo or
 * _hi: a ratio whose denominator may be near zero) amplifies the inputs'
 * differences and is held to its own, looser, bound (worst_rel_ci). */
static void compare_csv(const char *a, const char *b)
{
    char *x = csv_without_timing(a), *y = csv_without_timing(b);
    assert_non_null(x);
    assert_non_null(y);
    size_t cells = 0;
    const char *lx = x, *ly = y;
    int cols = 0;
    for (const char *c = x; *c && *c != '\n'; c++)
        cols += *c == ',';
    cols++;
    for (int row = 0; *lx && *ly; row++) {
        for (int k = 0; row > 0 && k < cols; k++) {
            char *name = field(x, k), *fx = field(lx, k), *fy = field(ly, k);
            assert_non_null(fx);
            assert_non_null(fy);
            size_t nl = strlen(name);
            int ci = nl > 3 && (!strcmp(name + nl - 3, "_lo") || !strcmp(name + nl - 3, "_hi"));
            char *ex, *ey;
            double dx = strtod(fx, &ex), dy = strtod(fy, &ey);
            if (*ex || *ey || !*fx)
                assert_string_equal(fx, fy);
            else
                note_rel(ci ? &worst_rel_ci : &worst_rel, dx, dy);
            cells++;
            free(name);
            free(fx);
            free(fy);
        }
        lx = strchr(lx, '\n');
        ly = strchr(ly, '\n');
        assert_true((lx == NULL) == (ly == NULL));
        if (!lx)
            break;
        lx++, ly++;
    }
    assert_true(cells > 10);
    free(x);
    free(y);
}

/* Every tensor, relative to its largest magnitude. */
static void compare_safetensors(const char *a, const char *b)
{
    bsc_safetensors *fa = NULL, *fb = NULL;
    assert_int_equal(bsc_safetensors_open(a, &fa), BSC_OK);
    assert_int_equal(bsc_safetensors_open(b, &fb), BSC_OK);
    assert_int_equal(bsc_safetensors_count(fa), bsc_safetensors_count(fb));
    for (size_t i = 0; i < bsc_safetensors_count(fa); i++) {
        const bsc_st_info *t = bsc_safetensors_at(fa, i);
        float *va = malloc(t->numel * sizeof *va), *vb = malloc(t->numel * sizeof *vb);
        assert_int_equal(bsc_safetensors_read(fa, t->name, va, t->numel), BSC_OK);
        assert_int_equal(bsc_safetensors_read(fb, t->name, vb, t->numel), BSC_OK);
        double scale = 0, diff = 0;
        for (size_t k = 0; k < t->numel; k++) {
            scale = fmax(scale, fabs(va[k]));
            diff = fmax(diff, fabs((double)va[k] - vb[k]));
        }
        if (scale > 0 && diff / scale > worst_rel)
            worst_rel = diff / scale;
        free(va);
        free(vb);
    }
    bsc_safetensors_close(fa);
    bsc_safetensors_close(fb);
}

static void test_data_parallel_equals_one_process(void **state)
{
    fixture *f = *state;
    if (!f)
        skip();
    char *yaml = tu_write(f->dir, "dp.yaml", dp_yaml);
    char one[4096], two[4096], args[8400];
    snprintf(one, sizeof one, "%s/dp1", f->dir);
    snprintf(two, sizeof two, "%s/dp2", f->dir);
    snprintf(args, sizeof args, "'%s' --out '%s' --quiet", yaml, one);
    assert_int_equal(run(0, NULL, NULL, args, NULL), 0);
    snprintf(args, sizeof args, "'%s' --out '%s' --mpi-timeout 60", yaml, two);
    char *log = NULL;
    assert_int_equal(run(2, NULL, NULL, args, &log), 0);
    assert_non_null(strstr(log, "run big data parallel over 2 ranks"));
    free(log);
    static const char *const csvs[] = {"metrics.csv", "update_norms.csv",
                                       "update_norms_layers.csv", "layer_distance.csv",
                                       "gradient_diversity.csv", "noise_scale.csv"};
    worst_rel = worst_rel_ci = 0;
    for (size_t i = 0; i < sizeof csvs / sizeof *csvs; i++) {
        char a[4200], b[4200];
        snprintf(a, sizeof a, "%s/runs/big/%s", one, csvs[i]);
        snprintf(b, sizeof b, "%s/runs/big/%s", two, csvs[i]);
        compare_csv(a, b);
    }
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/runs/big/final.safetensors", one);
    snprintf(b, sizeof b, "%s/runs/big/final.safetensors", two);
    compare_safetensors(a, b);
    fprintf(stderr, "data parallel vs one process: worst relative difference %.2g (%.2g "
            "in confidence bounds)\n", worst_rel, worst_rel_ci);
    assert_true(worst_rel < 1e-5);
    assert_true(worst_rel_ci < 1e-3);
    /* Split differently, a batch sums in another order: not bit for bit,
     * or the test would not show that the shares were summed. */
    assert_true(worst_rel > 0);
    /* The run that is not data parallel is the one process's, bit for bit. */
    snprintf(a, sizeof a, "%s/runs/bs100/final.safetensors", one);
    snprintf(b, sizeof b, "%s/runs/bs100/final.safetensors", two);
    assert_true(tu_same_file(a, b));
    free(yaml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranks_give_the_same_files),
        cmocka_unit_test(test_killed_resumes_on_two),
        cmocka_unit_test(test_killed_resumes_alone),
        cmocka_unit_test(test_silent_rank_times_out),
        cmocka_unit_test(test_shared_out_yes_checked),
        cmocka_unit_test(test_data_parallel_equals_one_process),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
