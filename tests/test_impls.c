/* The same experiments on any OpenCL implementation.
 *
 * - test_pocl_vs_rusticl: a small study -- every layer type, every
 *   observer, every analysis on tiny grids -- run by the command on PoCL and
 *   on Mesa's rusticl (llvmpipe, another compiler and runtime) gives the
 *   same result files: every number agrees to 1e-5 relative to the largest
 *   of its column (compare_csv says why per column). Each run sees
 *   only its own implementation (OCL_ICD_VENDORS names a directory holding
 *   just its .icd), so the system's ICD set is left alone. Skipped where
 *   either implementation is not installed (tools/setup.sh installs both).
 * - test_micro_under_oclgrind: the same study, smaller, under Oclgrind,
 *   which simulates a device and checks every memory access, data race and
 *   API call of our kernels (OCLGRIND_CHECK_API, OCLGRIND_DATA_RACES), with
 *   a maximum work-group size of 128 so that a launch assuming a larger
 *   group fails here rather than on a GPU. It must finish and Oclgrind must
 *   report nothing. It takes minutes, so it runs only when
 *   BATCHSCOPE_TEST_OCLGRIND=1 (tools/ci-impls.sh sets it).
 *
 * `test_impls PATTERN` runs only the tests whose names match (cmocka's
 * filter: * and ? wildcards). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batchscope/fsutil.h"
#include "batchscope/table.h"
#include "testutil.h"

#define VENDORS "/etc/OpenCL/vendors"
#define OCLGRIND_ICD "/usr/lib/oclgrind/liboclgrind-rt-icd.so"
#define REL_TOL 1e-5

/* ------------------------------------------------------------ the study */

/* IDX images and labels of examples [first, first + n): side x side
 * pixels, with a bright pixel that moves with the class so there is
 * something to learn. */
static void write_idx(const char *dir, const char *name, int n, int first, int side)
{
    unsigned char *pix = malloc((size_t)(n * side * side)), *lab = malloc((size_t)n);
    assert_true(pix && lab);
    for (int i = 0; i < n; i++) {
        int e = first + i;
        lab[i] = (unsigned char)(e % 10);
        for (int k = 0; k < side * side; k++)
            pix[i * side * side + k] = (unsigned char)((e * 29 + k * 13) % 97 +
                                                       (k % (side * side / 2) == e % 10 ? 150 : 0));
    }
    char img[1024], lbl[1024];
    snprintf(img, sizeof img, "%s/%s-images", dir, name);
    snprintf(lbl, sizeof lbl, "%s/%s-labels", dir, name);
    tu_write_idx(img, lbl, (size_t)n, side, side, pix, lab);
    free(pix);
    free(lab);
}

/* Every layer type (conv2d, both poolings with padding, batchnorm over
 * [C, H, W] and over features, dropout, each activation), every observer
 * (the microbatch methods too) and every analysis, on `side` x `side`
 * images. Returns the pipeline's path (malloc'ed).
 *
 * Two analyses take differences that float rounding would dominate.
 * Implementations round differently by design (their compilers contract
 * and order operations as they may; batchnorm's sums run in groups of
 * another size where a device allows fewer items), and a difference of two
 * nearly equal numbers turns 1e-7 relative rounding into far more:
 * - the Hessian's products are central differences of gradients, rounding
 *   divided by the step: the step here is 0.5, so the products are set by
 *   the math both implementations do, not by where their rounding falls;
 * - the sharpness is 100 (fmax - f0) / (1 + f0): f0 and fmax are compared to
 *   1e-5 like everything else, and the sharpness to what that allows it
 *   (sharpness_tolerance). */
static char *write_study(const char *dir, int side, int n_train, int n_test, int bs1, int bs2)
{
    write_idx(dir, "train", n_train, 0, side);
    write_idx(dir, "test", n_test, n_train, side);
    char text[4096];
    snprintf(text, sizeof text,
             "version: 1\nname: micro\nseed: 5\n"
             "dataset:\n  format: idx\n  train: {images: train-images, labels: train-labels}\n"
             "  test: {images: test-images, labels: test-labels}\n  n_classes: 10\n"
             "model:\n"
             "  - {type: conv2d, filters: 2, kernel_size: 3, padding: 1}\n"
             "  - {type: batchnorm}\n  - {type: leaky_relu}\n"
             "  - {type: maxpool2d, kernel_size: 2, padding: 1}\n  - {type: tanh}\n"
             "  - {type: avgpool2d, kernel_size: 2, stride: 1}\n  - {type: sigmoid}\n"
             "  - {type: flatten}\n  - {type: batchnorm}\n  - {type: relu}\n"
             "  - {type: dropout, p: 0.25}\n  - {type: dense, units: 10}\n"
             "loss: softmax_cross_entropy\n"
             "training:\n  epochs: 1\n  batch_sizes: [%d, %d]\n"
             "  optimizer: {type: sgd, lr: 0.1, momentum: 0.9}\n  eval_batch_size: %d\n"
             "observers:\n"
             "  - {type: distance, every_steps: 2}\n  - {type: update_norms}\n"
             "  - {type: gradient_diversity, every_steps: 2}\n"
             "  - {type: gradient_diversity, every_steps: 3, method: microbatch}\n"
             "  - {type: noise_scale, every_steps: 2}\n"
             "  - {type: noise_scale, every_steps: 3, method: microbatch}\n"
             "  - {type: summary}\n"
             "analyses:\n"
             "  - {type: interpolate, points: 2}\n"
             "  - {type: sharpness, max_iter: 1, p: 2, eps: [5e-2]}\n"
             "  - {type: surface, x: [-1, 1, 2], y: [-1, 1, 2], orthogonalize: true}\n"
             "  - {type: surface, dims: 1, x: [-1, 1, 2], ignore: none}\n"
             "  - {type: surface, plane: [%d, %d, init], x: [0, 1, 2], y: [0, 1, 2]}\n"
             "  - {type: hessian, top_k: 1, max_iter: 2, trace_samples: 1, fd_step: 0.5}\n"
             "report: {enabled: false}\n",
             bs1, bs2, n_train, bs1, bs2);
    return tu_write(dir, "micro.yaml", text);
}

/* Runs `env batchscope run yaml -o out -q -d device`; the output in *log. */
static int run_study(const char *env, const char *yaml, const char *out, const char *device,
                     char **log)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s '%s' run '%s' -o '%s' -q -d '%s'", env, BSC_CLI, yaml, out,
             device);
    return tu_run(cmd, log);
}

/* A directory holding only the named ICD file, or NULL (skip) when the
 * implementation is not installed. */
static char *icd_dir(const char *icd)
{
    char src[512], dst[1024];
    snprintf(src, sizeof src, VENDORS "/%s", icd);
    if (access(src, R_OK) != 0) {
        fprintf(stderr, "skipping: %s missing (tools/setup.sh installs it)\n", src);
        return NULL;
    }
    char *dir = tu_tmpdir("icd");
    snprintf(dst, sizeof dst, "%s/%s", dir, icd);
    assert_int_equal(symlink(src, dst), 0);
    return dir;
}

/* ---------------------------------------------------------- comparison */

typedef struct cmp {
    int files, cells;
    double worst;            /* largest relative difference seen (held to REL_TOL) */
    char worst_at[1024];
    int failures;
} cmp;

/* The sharpness 100 (fmax - f0) / (1 + f0) of a row whose f0 and fmax
 * agree to REL_TOL may differ by 100 REL_TOL (|fmax| + |f0|) / (1 + f0):
 * as a relative tolerance on the sharpness s, that over |s|. */
static double sharpness_tolerance(const bsc_table *t, size_t row, double s)
{
    long c0 = bsc_table_find(t, "f0"), c1 = bsc_table_find(t, "fmax");
    if (c0 < 0 || c1 < 0 || !(fabs(s) > 0))
        return REL_TOL;
    double f0 = bsc_table_get(t, row, (size_t)c0), f1 = bsc_table_get(t, row, (size_t)c1);
    double abs_tol = 100.0 * REL_TOL * (fabs(f1) + fabs(f0)) / (1.0 + f0);
    return fmax(REL_TOL, abs_tol / fabs(s));   /* the caller divides by about |s| */
}

/* Columns that measure the machine, not the numbers. */
static int is_timing(const char *col)
{
    size_t n = strlen(col);
    return !strcmp(col, "seconds") || (n > 8 && !strcmp(col + n - 8, "_seconds"));
}

static void compare_csv(const char *a_path, const char *b_path, const char *rel, cmp *c)
{
    bsc_table *a = NULL, *b = NULL;
    if (bsc_table_read_csv(a_path, &a) != BSC_OK || bsc_table_read_csv(b_path, &b) != BSC_OK)
        fail_msg("%s: %s", rel, bsc_last_error());
    c->files++;
    if (bsc_table_n_rows(a) != bsc_table_n_rows(b) || bsc_table_n_cols(a) != bsc_table_n_cols(b))
        fail_msg("%s: %zu x %zu on PoCL, %zu x %zu on rusticl", rel, bsc_table_n_rows(a),
                 bsc_table_n_cols(a), bsc_table_n_rows(b), bsc_table_n_cols(b));
    for (size_t j = 0; j < bsc_table_n_cols(a); j++) {
        const char *col = bsc_table_col_name(a, j);
        assert_string_equal(col, bsc_table_col_name(b, j));
        if (is_timing(col))
            continue;
        /* Normwise, per column: the difference against the column's largest
         * magnitude. A small entry (the update of a layer of four
         * parameters, a distance early in training) carries the rounding of
         * a computation on numbers the size of the column's: two weight
         * vectors agreeing to 1e-7 relative make a difference of them that
         * agrees to 1e-7 of the weights, not of the difference. */
        double colmax = 0;
        for (size_t i = 0; i < bsc_table_n_rows(a); i++) {
            double x = fabs(bsc_table_get(a, i, j)), y = fabs(bsc_table_get(b, i, j));
            if (isfinite(x) && x > colmax)
                colmax = x;
            if (isfinite(y) && y > colmax)
                colmax = y;
        }
        for (size_t i = 0; i < bsc_table_n_rows(a); i++) {
            const char *sa = bsc_table_get_str(a, i, j), *sb = bsc_table_get_str(b, i, j);
            double x = bsc_table_get(a, i, j), y = bsc_table_get(b, i, j);
            c->cells++;
            if (sa || sb) {
                if (!sa || !sb || strcmp(sa, sb) != 0)
                    fail_msg("%s:%zu %s: '%s' on PoCL, '%s' on rusticl", rel, i + 2, col,
                             sa ? sa : "(number)", sb ? sb : "(number)");
                continue;
            }
            if (isnan(x) && isnan(y))
                continue;
            double scale = fmax(colmax, fmax(fabs(x), fabs(y)));   /* inf: to the check */
            double d = scale > 0 ? fabs(x - y) / scale : 0;
            /* the sharpness row by row: its rows differ in size by design */
            int sharp = strstr(rel, "sharpness") && !strcmp(col, "sharpness");
            if (sharp)
                d = scale > 0 ? fabs(x - y) / fmax(fabs(x), fabs(y)) : 0;
            double tol = sharp ? sharpness_tolerance(a, i, x) : REL_TOL;
            if (tol == REL_TOL && (!(d <= c->worst) || isnan(d))) {
                c->worst = isnan(d) ? INFINITY : d;
                snprintf(c->worst_at, sizeof c->worst_at, "%s:%zu %s: %.9g vs %.9g", rel, i + 2,
                         col, x, y);
            }
            if (!(d <= tol)) {
                if (c->failures++ < 20)
                    fprintf(stderr, "  %s:%zu %s: %.9g on PoCL, %.9g on rusticl (%.2g of the "
                            "column's largest)\n",
                            rel, i + 2, col, x, y, d);
            }
        }
    }
    bsc_table_free(a);
    bsc_table_free(b);
}

/* Every CSV under a/<sub> against b/<sub>, one level of directories down
 * (OUT/runs/<name>/, OUT/analyses/). */
static void compare_dir(const char *a, const char *b, const char *sub, int depth, cmp *c)
{
    char pa[1024], pb[1024], rel[512];
    snprintf(pa, sizeof pa, "%s/%s", a, sub);
    DIR *d = opendir(pa);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(rel, sizeof rel, "%s/%s", sub, e->d_name) >= (int)sizeof rel)
            fail_msg("%s/%s: path too long", sub, e->d_name);
        snprintf(pa, sizeof pa, "%s/%s", a, rel);
        snprintf(pb, sizeof pb, "%s/%s", b, rel);
        struct stat sb;
        assert_int_equal(stat(pa, &sb), 0);
        if (S_ISDIR(sb.st_mode) && depth > 0) {
            compare_dir(a, b, rel, depth - 1, c);
        } else if (strlen(e->d_name) > 4 && !strcmp(e->d_name + strlen(e->d_name) - 4, ".csv")) {
            if (access(pb, R_OK) != 0)
                fail_msg("%s: on PoCL, not on rusticl", rel);
            compare_csv(pa, pb, rel, c);
        }
    }
    closedir(d);
}

static void test_pocl_vs_rusticl(void **state)
{
    (void)state;
    char *pocl = icd_dir("pocl.icd"), *rusticl = icd_dir("rusticl.icd");
    if (!pocl || !rusticl) {
        free(pocl);
        free(rusticl);
        skip();
    }
    char *dir = tu_tmpdir("impls");
    char *yaml = write_study(dir, 8, 32, 16, 8, 16);
    char env[1024], a[1024], b[1024];
    snprintf(a, sizeof a, "%s/pocl", dir);
    snprintf(b, sizeof b, "%s/rusticl", dir);
    char *log = NULL;
    snprintf(env, sizeof env, "OCL_ICD_VENDORS='%s'", pocl);
    if (run_study(env, yaml, a, "pocl", &log) != 0)
        fail_msg("the study on PoCL failed:\n%s", log);
    free(log);
    snprintf(env, sizeof env, "OCL_ICD_VENDORS='%s' RUSTICL_ENABLE=llvmpipe", rusticl);
    if (run_study(env, yaml, b, "rusticl", &log) != 0)
        fail_msg("the study on rusticl failed:\n%s", log);
    free(log);
    cmp c = {0};
    compare_dir(a, b, "runs", 1, &c);
    compare_dir(a, b, "analyses", 0, &c);
    fprintf(stderr, "  %d files, %d cells; largest difference %.2g of its column's largest "
            "value (%s)\n", c.files, c.cells, c.worst, c.worst_at);
    assert_true(c.files >= 15);
    if (c.failures)
        fail_msg("%d numbers differ by more than %g (relative to their column) between PoCL "
                 "and rusticl", c.failures, REL_TOL);
    tu_rm_rf(dir);
    tu_rm_rf(pocl);
    tu_rm_rf(rusticl);
    free(yaml);
    free(dir);
    free(pocl);
    free(rusticl);
}

/* ------------------------------------------------------------ Oclgrind */

static void test_micro_under_oclgrind(void **state)
{
    (void)state;
    const char *want = getenv("BATCHSCOPE_TEST_OCLGRIND");
    if (!want || strcmp(want, "1") != 0) {
        fprintf(stderr, "skipping: the Oclgrind check takes minutes; "
                        "BATCHSCOPE_TEST_OCLGRIND=1 runs it (tools/ci-impls.sh)\n");
        skip();
    }
    if (access(OCLGRIND_ICD, R_OK) != 0)
        fail_msg("%s missing: install oclgrind (tools/setup.sh)", OCLGRIND_ICD);
    char *dir = tu_tmpdir("grind");
    char *yaml = write_study(dir, 4, 8, 4, 2, 4);
    char env[2048], out[1024], logpath[1024];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(logpath, sizeof logpath, "%s/oclgrind.log", dir);
    /* A work-group limit of 128, below the 256 that GPUs commonly allow a
     * kernel: a launch that assumes 256 instead of asking fails here.
     * (CLBlast's own generic kernels need more than 64.) */
    snprintf(env, sizeof env,
             "OCL_ICD_VENDORS=%s OCLGRIND_CHECK_API=1 OCLGRIND_DATA_RACES=1 "
             "OCLGRIND_MAX_WGSIZE=128 OCLGRIND_LOG='%s' BATCHSCOPE_PROGRESS_INTERVAL=60",
             OCLGRIND_ICD, logpath);
    char *log = NULL;
    int rc = run_study(env, yaml, out, "oclgrind", &log);
    char *grind = tu_read(logpath, NULL);
    if (rc != 0 || (grind && grind[0]))
        fail_msg("under Oclgrind: exit %d\n%s\nOclgrind reported:\n%s", rc, log ? log : "",
                 grind ? grind : "(nothing)");
    free(grind);
    free(log);
    tu_rm_rf(dir);
    free(yaml);
    free(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pocl_vs_rusticl),
        cmocka_unit_test(test_micro_under_oclgrind),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
