/* Observers (plugins/observers, cl/observers/observers.cl) on cases known on paper.
 *
 * Each test writes a tiny IDX dataset and a pipeline into a temporary
 * directory, runs the whole study with bsc_study_run, and checks the result
 * files against values computed here in double: a linear softmax model whose
 * SGD trajectory is replayed on the host from the run's own initial weights
 * (update norms, distances, epoch distances); a batch of identical examples
 * (gradient diversity 1/B, norm ratio 1, noise trace 0); two examples with
 * orthogonal gradients (diversity 1, norm ratio sqrt(a^2+b^2)/(a+b)); a batch
 * whose per-example gradients differ only through their labels, so the
 * gradient variance is known in closed form; and the training trajectory
 * with every observer on, which must be bitwise the one without them.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "batchscope/fsutil.h"
#include "batchscope/safetensors.h"
#include "batchscope/study.h"
#include "batchscope/table.h"

/* Device values are float32 sums of a few hundred terms at most. */
#define RTOL 2e-4

static void assert_close(double got, double want, double rtol, double atol, const char *what,
                         int i)
{
    double tol = atol + rtol * fabs(want);
    if (!(fabs(got - want) <= tol))
        fail_msg("%s[%d]: got %.9g, want %.9g (tolerance %.3g)", what, i, got, want, tol);
}

/* ------------------------------------------------------------ files */

static char *path2(const char *a, const char *b)
{
    char *p = bsc_strdup_printf("%s/%s", a, b);
    assert_non_null(p);
    return p;
}

/* <dir>/<prefix>-img and <prefix>-lbl: n images of rows x cols bytes. */
static void write_idx(const char *dir, const char *prefix, size_t n, int rows, int cols,
                      const uint8_t *pix, const uint8_t *labels)
{
    char img[64], lbl[64];
    snprintf(img, sizeof img, "%s-img", prefix);
    snprintf(lbl, sizeof lbl, "%s-lbl", prefix);
    char *pi = path2(dir, img), *pl = path2(dir, lbl);
    tu_write_idx(pi, pl, n, rows, cols, pix, labels);
    free(pi);
    free(pl);
}

/* The dataset block every pipeline here uses (train and test from the same
 * files: the tests look at training only). */
static const char *DATASET =
    "dataset:\n"
    "  format: idx\n"
    "  train: {images: train-img, labels: train-lbl}\n"
    "  test: {images: train-img, labels: train-lbl}\n"
    "  normalize: false\n";

/* Writes <dir>/<name>.yaml from the parts and runs it into <dir>/<name>. */
static char *run_study(const char *dir, const char *name, int n_classes, const char *model,
                       const char *training, const char *observers)
{
    char *yaml = bsc_strdup_printf("version: 1\nname: %s\nseed: 7\n%s  n_classes: %d\n"
                                   "model:\n%sloss: softmax_cross_entropy\ntraining:\n%s"
                                   "observers:\n%s",
                                   name, DATASET, n_classes, model, training, observers);
    char *file = bsc_strdup_printf("%s/%s.yaml", dir, name);
    char *out = bsc_strdup_printf("%s/%s", dir, name);
    assert_non_null(yaml);
    CHECK(bsc_write_file_atomic(file, yaml, strlen(yaml)));
    FILE *devnull = fopen("/dev/null", "w");
    bsc_run_options o = {0};
    o.device = tu_device();
    o.pipeline_path = file;
    o.out_dir = out;
    o.quiet = 1;
    o.log = devnull;
    bsc_status s = bsc_study_run(&o);
    fclose(devnull);
    if (s != BSC_OK)
        fail_msg("study %s: %s: %s", name, bsc_status_name(s), bsc_last_error());
    free(yaml);
    free(file);
    return out;
}

static bsc_table *read_csv(const char *out, const char *rel)
{
    char *p = path2(out, rel);
    bsc_table *t = NULL;
    CHECK(bsc_table_read_csv(p, &t));
    free(p);
    return t;
}

static double cell(const bsc_table *t, size_t row, const char *col)
{
    long c = bsc_table_find(t, col);
    if (c < 0)
        fail_msg("no column %s", col);
    assert_true(row < bsc_table_n_rows(t));
    return bsc_table_get(t, row, (size_t)c);
}

static void read_tensor(const char *out, const char *file, const char *name, float *v,
                        size_t n)
{
    char *p = path2(out, file);
    bsc_safetensors *f = NULL;
    CHECK(bsc_safetensors_open(p, &f));
    CHECK(bsc_safetensors_read(f, name, v, n));
    bsc_safetensors_close(f);
    free(p);
}

/* ------------------------------------------------ the linear model on the host */

#define MAXF 2304   /* 48 x 48: the weight spans two kernel chunks */
#define MAXK 4

typedef struct linear {
    int F, K, bias;
    double W[MAXK][MAXF], b[MAXK];
} linear;

static double pixel(uint8_t v)
{
    return (double)((float)v / 255.0f);
}

static void load_linear(linear *L, const char *out, const char *file)
{
    float w[MAXK * MAXF], b[MAXK];
    read_tensor(out, file, "1.weight", w, (size_t)(L->K * L->F));
    if (L->bias)
        read_tensor(out, file, "1.bias", b, (size_t)L->K);
    for (int k = 0; k < L->K; k++) {
        for (int j = 0; j < L->F; j++)
            L->W[k][j] = w[k * L->F + j];
        L->b[k] = L->bias ? b[k] : 0.0;
    }
}

/* Gradient of example (x, y)'s own loss: gW = (p - e_y) x^T, gb = p - e_y. */
static void example_grad(const linear *L, const uint8_t *x, int y, double gW[MAXK][MAXF],
                         double gb[MAXK])
{
    double z[MAXK], m = -INFINITY, s = 0;
    for (int k = 0; k < L->K; k++) {
        z[k] = L->b[k];
        for (int j = 0; j < L->F; j++)
            z[k] += L->W[k][j] * pixel(x[j]);
        m = fmax(m, z[k]);
    }
    for (int k = 0; k < L->K; k++)
        s += exp(z[k] - m);
    for (int k = 0; k < L->K; k++) {
        double d = exp(z[k] - m) / s - (k == y ? 1.0 : 0.0);
        gb[k] = L->bias ? d : 0.0;
        for (int j = 0; j < L->F; j++)
            gW[k][j] = d * pixel(x[j]);
    }
}

static double grad_sqnorm(const linear *L, double gW[MAXK][MAXF], const double gb[MAXK])
{
    double s = 0;
    for (int k = 0; k < L->K; k++) {
        s += gb[k] * gb[k];
        for (int j = 0; j < L->F; j++)
            s += gW[k][j] * gW[k][j];
    }
    return s;
}

/* ||a - b||^2 over the parameters of two models. */
static double dist2(const linear *a, const linear *b)
{
    double s = 0;
    for (int k = 0; k < a->K; k++) {
        s += (a->b[k] - b->b[k]) * (a->b[k] - b->b[k]);
        for (int j = 0; j < a->F; j++)
            s += (a->W[k][j] - b->W[k][j]) * (a->W[k][j] - b->W[k][j]);
    }
    return s;
}

/* ------------------------------------------------------------ the tests */

/* Update norm, distance from init, epoch distance and weight norm of plain
 * SGD on a linear softmax model, replayed on the host; and the per-example
 * gradient norms of gradient_diversity, which must be those at the weights
 * each step starts from (the step's own gradients), by the dense layer's
 * hook or by micro-batches (microbatch). */
static void linear_case(int bias, int side, int microbatch)
{
    enum { N = 8, B = 4, EPOCHS = 2, K = 3 };
    static const uint8_t small[N * 4] = {
        10, 200, 30, 90,   250, 0, 60, 15,   35, 35, 180, 220,  5, 140, 75, 25,
        120, 60, 0, 255,   90, 170, 210, 40, 15, 80, 100, 130,  230, 20, 45, 160};
    static const uint8_t lab[N] = {0, 2, 1, 1, 0, 2, 2, 0};
    static uint8_t pix[N * MAXF];
    const int F = side * side;
    const double lr = side > 2 ? 0.05 : 0.5;
    uint32_t r = 99u;
    for (int i = 0; i < N * F; i++) {
        r = r * 1664525u + 1013904223u;
        pix[i] = side == 2 ? small[i] : (uint8_t)(r >> 24);
    }
    char *dir = tu_tmpdir("obs");
    write_idx(dir, "train", N, side, side, pix, lab);
    char model[128];
    snprintf(model, sizeof model, "  - {type: flatten}\n  - {type: dense, units: 3, bias: %s}\n",
             bias ? "true" : "false");
    char training[256];
    snprintf(training, sizeof training, "  epochs: 2\n  batch_sizes: [4]\n  shuffle: false\n"
             "  optimizer: {type: sgd, lr: %g, momentum: 0}\n  eval_batch_size: 8\n", lr);
    char obs[256];
    snprintf(obs, sizeof obs,
             "  - {type: distance, every_steps: 1}\n  - {type: update_norms}\n"
             "  - {type: gradient_diversity, every_steps: 1, method: %s, common_batch: 0}\n",
             microbatch ? "microbatch" : "auto");
    char *out = run_study(dir, "lin", K, model, training, obs);
    char *run = path2(out, "runs/bs4");
    static linear w0, w, start, prev, fin, zero;
    w0 = (linear){F, K, bias, {{0}}, {0}};
    zero = w0;
    load_linear(&w0, run, "init.safetensors");
    w = w0;
    bsc_table *un = read_csv(run, "update_norms.csv");
    bsc_table *unl = read_csv(run, "update_norms_layers.csv");
    bsc_table *ds = read_csv(run, "distance_steps.csv");
    bsc_table *mt = read_csv(run, "metrics.csv");
    bsc_table *ld = read_csv(run, "layer_distance.csv");
    bsc_table *gd = read_csv(run, "gradient_diversity.csv");
    assert_int_equal(bsc_table_n_rows(un), EPOCHS * N / B);
    assert_int_equal(bsc_table_n_rows(gd), EPOCHS * N / B);
    /* The rate in both files as written: the shortest text of the float the
     * step used ("0.05", not "0.0500000007"). */
    char want[32];
    snprintf(want, sizeof want, ",%g,", lr);
    const char *files[] = {"update_norms.csv", "metrics.csv"};
    for (int i = 0; i < 2; i++) {
        char *p = path2(run, files[i]), *text = tu_read(p, NULL);
        assert_non_null(text);
        if (!strstr(text, want))
            fail_msg("%s lacks %s:\n%s", files[i], want, text);
        free(text);
        free(p);
    }
    assert_int_equal(bsc_table_n_rows(ds), EPOCHS * N / B);
    assert_int_equal(bsc_table_n_rows(mt), EPOCHS + 1);
    assert_int_equal(bsc_table_n_rows(ld), EPOCHS + 1);   /* one layer with parameters */
    assert_close(cell(mt, 0, "distance_from_init"), 0, 0, 0, "distance at epoch 0", 0);
    assert_close(cell(mt, 0, "weight_norm"), sqrt(dist2(&w0, &zero)), RTOL, 0,
                 "weight norm at epoch 0", 0);
    int step = 0;
    for (int e = 1; e <= EPOCHS; e++) {
        start = w;
        for (int k = 0; k < N / B; k++, step++) {
            static double gW[MAXK][MAXF], eW[MAXK][MAXF];
            double gb[MAXK] = {0}, eb[MAXK], sum_sq = 0, sum_norm = 0;
            memset(gW, 0, sizeof gW);
            for (int i = k * B; i < (k + 1) * B; i++) {
                example_grad(&w, pix + i * F, lab[i], eW, eb);
                double n2 = grad_sqnorm(&w, eW, eb);
                sum_sq += n2;
                sum_norm += sqrt(n2);
                for (int a = 0; a < K; a++) {
                    gb[a] += eb[a] / B;
                    for (int j = 0; j < F; j++)
                        gW[a][j] += eW[a][j] / B;
                }
            }
            /* ||sum g_i|| = B ||mean g_i||, at the weights before the update */
            double of_sum = B * sqrt(grad_sqnorm(&w, gW, gb));
            assert_close(cell(gd, (size_t)step, "step"), step + 1, 0, 0, "gd step", step);
            assert_close(cell(gd, (size_t)step, "sum_sqnorm"), sum_sq, RTOL, 1e-9,
                         "sum of squared example norms", step);
            assert_close(cell(gd, (size_t)step, "sum_norm"), sum_norm, RTOL, 1e-9,
                         "sum of example norms", step);
            assert_close(cell(gd, (size_t)step, "norm_of_sum"), of_sum, RTOL, 1e-9,
                         "norm of the sum", step);
            prev = w;
            for (int a = 0; a < K; a++) {
                w.b[a] -= lr * gb[a];
                for (int j = 0; j < F; j++)
                    w.W[a][j] -= lr * gW[a][j];
            }
            double upd = sqrt(dist2(&w, &prev));
            assert_close(cell(un, (size_t)step, "step"), step + 1, 0, 0, "step", step);
            assert_close(cell(un, (size_t)step, "epoch"), e, 0, 0, "epoch", step);
            assert_close(cell(un, (size_t)step, "norm"), upd, RTOL, 1e-9, "update norm", step);
            assert_close(cell(unl, (size_t)step, "norm"), upd, RTOL, 1e-9, "layer update", step);
            assert_close(cell(unl, (size_t)step, "layer"), 1, 0, 0, "layer index", step);
            assert_close(cell(ds, (size_t)step, "distance_from_init"), sqrt(dist2(&w, &w0)), RTOL,
                         1e-9, "distance every step", step);
            assert_close(cell(ds, (size_t)step, "epoch_distance"), sqrt(dist2(&w, &start)), RTOL,
                         1e-9, "epoch distance so far", step);
        }
        assert_close(cell(mt, (size_t)e, "distance_from_init"), sqrt(dist2(&w, &w0)), RTOL, 1e-9,
                     "distance from init", e);
        assert_close(cell(mt, (size_t)e, "epoch_distance"), sqrt(dist2(&w, &start)), RTOL, 1e-9,
                     "epoch distance", e);
        assert_close(cell(mt, (size_t)e, "weight_norm"), sqrt(dist2(&w, &zero)), RTOL, 1e-9,
                     "weight norm", e);
        assert_close(cell(ld, (size_t)e, "epoch_distance"), sqrt(dist2(&w, &start)), RTOL, 1e-9,
                     "layer epoch distance", e);
    }
    /* The replay is the trajectory the device took (to float32 rounding of
     * the logits' sums, relative to the distance travelled). */
    fin = zero;
    load_linear(&fin, run, "final.safetensors");
    assert_close(sqrt(dist2(&fin, &w)), 0, 0, 1e-4 * sqrt(dist2(&w, &w0)),
                 "final vs replay", 0);
    bsc_table_free(un);
    bsc_table_free(unl);
    bsc_table_free(ds);
    bsc_table_free(mt);
    bsc_table_free(ld);
    bsc_table_free(gd);
    free(run);
    free(out);
    tu_rm_rf(dir);
    free(dir);
}

static void test_linear_no_bias(void **state)
{
    (void)state;
    linear_case(0, 2, 0);
}

static void test_linear_bias(void **state)
{
    (void)state;
    linear_case(1, 2, 1);
}

/* 3 x 2304 weights: the kernels' partial sums of two chunks per layer. */
static void test_linear_chunks(void **state)
{
    (void)state;
    linear_case(1, 48, 0);
}

/* The windowed noise scale of every row recomputed from the rows' own g2
 * and trace: the ratio of the last `window` means, and Fieller's 95%
 * interval -- the rho with |mean(tr) - rho mean(g2)| <= 1.96 se -- whose
 * ends solve (mt - rho mg)^2 = z^2 (vt - 2 rho c + rho^2 vg); unbounded
 * (NaN ends, not significant) unless mean(g2) > 1.96 se(g2). */
static void check_window(const bsc_table *ns, int window)
{
    size_t n = bsc_table_n_rows(ns);
    for (size_t r = 0; r < n; r++) {
        int m = (int)(r + 1 < (size_t)window ? r + 1 : (size_t)window);
        double mt = 0, mg = 0, vt = 0, vg = 0, c = 0;
        for (int i = 0; i < m; i++) {
            mt += cell(ns, r - i, "trace") / m;
            mg += cell(ns, r - i, "g2") / m;
        }
        for (int i = 0; i < m; i++) {
            double dt = cell(ns, r - i, "trace") - mt, dg = cell(ns, r - i, "g2") - mg;
            vt += dt * dt, vg += dg * dg, c += dt * dg;
        }
        double k = m > 1 ? 1.0 / ((m - 1.0) * m) : NAN, z2 = 1.959964 * 1.959964;
        vt *= k, vg *= k, c *= k;
        assert_close(cell(ns, r, "b_simple_window"), mt / mg, 1e-5, 0, "window ratio", (int)r);
        int sig = m > 1 && mg > 0 && mg * mg > z2 * vg;
        assert_int_equal((int)cell(ns, r, "g2_significant"), sig);
        double lo = cell(ns, r, "b_simple_lo"), hi = cell(ns, r, "b_simple_hi");
        if (!sig) {
            assert_true(isnan(lo) && isnan(hi));
            continue;
        }
        for (int e = 0; e < 2; e++) {
            double rho = e ? hi : lo;
            double lhs = (mt - rho * mg) * (mt - rho * mg);
            double rhs = z2 * (vt - 2 * rho * c + rho * rho * vg);
            assert_close(lhs, rhs, 1e-3, 1e-12 * (mt * mt + 1), "Fieller end", (int)r);
        }
        assert_true(lo <= mt / mg && mt / mg <= hi);
    }
}

/* A batch of B identical examples: every g_i is the same g, so
 * sum ||g_i||^2 / ||sum g_i||^2 = B ||g||^2 / (B^2 ||g||^2) = 1/B,
 * ||sum g_i|| / sum ||g_i|| = 1, and the gradient variance is zero. Through
 * a hidden layer, by the dense hook (auto) and by micro-batches. */
static void test_identical_examples(void **state)
{
    (void)state;
    enum { N = 8, F = 4 };
    uint8_t pix[N * F], lab[N];
    for (int i = 0; i < N; i++) {
        const uint8_t x[F] = {40, 220, 130, 10};
        memcpy(pix + i * F, x, F);
        lab[i] = 1;
    }
    char *dir = tu_tmpdir("obs");
    write_idx(dir, "train", N, 2, 2, pix, lab);
    const char *model = "  - {type: flatten}\n  - {type: dense, units: 5}\n  - {type: relu}\n"
                        "  - {type: dense, units: 3}\n";
    const char *training = "  epochs: 2\n  batch_sizes: [4]\n"
                           "  optimizer: {type: sgd, lr: 0.3, momentum: 0.9}\n"
                           "  eval_batch_size: 8\n";
    for (int method = 0; method < 2; method++) {
        char obs[256];
        snprintf(obs, sizeof obs,
                 "  - {type: gradient_diversity, every_steps: 1, method: %s, common_batch: 4}\n"
                 "  - {type: noise_scale, every_steps: 1, method: %s, window: 3}\n",
                 method ? "microbatch" : "auto", method ? "microbatch" : "auto");
        char *out = run_study(dir, method ? "same-mb" : "same", 3, model, training, obs);
        char *run = path2(out, "runs/bs4");
        bsc_table *gd = read_csv(run, "gradient_diversity.csv");
        bsc_table *ns = read_csv(run, "noise_scale.csv");
        assert_int_equal(bsc_table_n_rows(gd), 4);
        assert_int_equal(bsc_table_n_rows(ns), 4);
        for (size_t r = 0; r < 4; r++) {
            assert_close(cell(gd, r, "batch"), 4, 0, 0, "batch", (int)r);
            assert_close(cell(gd, r, "diversity"), 0.25, 1e-4, 0, "diversity", (int)r);
            assert_close(cell(gd, r, "norm_ratio"), 1.0, 1e-4, 0, "norm ratio", (int)r);
            double g2 = cell(ns, r, "g2");
            assert_true(g2 > 0);
            assert_close(cell(ns, r, "trace"), 0, 0, 1e-4 * g2, "trace", (int)r);
            assert_close(cell(ns, r, "samples"), r + 1 < 3 ? (double)r + 1 : 3, 0, 0,
                         "window samples", (int)r);
        }
        check_window(ns, 3);
        bsc_table_free(gd);
        bsc_table_free(ns);
        /* at the common batch of 4 on the final weights: two batches of
         * identical examples, ratios 1 and 1/4 with no spread */
        bsc_table *gc = read_csv(out, "analyses/gradient_diversity_common.csv");
        assert_int_equal(bsc_table_n_rows(gc), 1);
        assert_close(cell(gc, 0, "common_batch"), 4, 0, 0, "common batch", method);
        assert_close(cell(gc, 0, "samples"), 2, 0, 0, "samples", method);
        assert_close(cell(gc, 0, "norm_ratio_median"), 1.0, 1e-4, 0, "common ratio", method);
        assert_close(cell(gc, 0, "diversity_median"), 0.25, 1e-4, 0, "common div", method);
        assert_close(cell(gc, 0, "norm_ratio_se"), 0, 0, 1e-4, "common ratio se", method);
        bsc_table_free(gc);
        free(run);
        free(out);
    }
    tu_rm_rf(dir);
    free(dir);
}

/* Two examples on disjoint pixels through a dense layer without bias: their
 * gradients (p_i - e_yi) x_i^T are orthogonal, so sum ||g_i||^2 =
 * ||g_1 + g_2||^2 (diversity 1) and the norm ratio is sqrt(a^2 + b^2)/(a + b)
 * with a, b the two norms, computed here from the initial weights (lr 1e-30
 * moves no float32 weight). */
static void test_orthogonal_examples(void **state)
{
    (void)state;
    enum { N = 2, F = 4, K = 3 };
    static const uint8_t pix[N * F] = {200, 100, 0, 0, 0, 0, 50, 250};
    static const uint8_t lab[N] = {0, 2};
    char *dir = tu_tmpdir("obs");
    write_idx(dir, "train", N, 2, 2, pix, lab);
    const char *model = "  - {type: flatten}\n  - {type: dense, units: 3, bias: false}\n";
    const char *training = "  epochs: 1\n  batch_sizes: [2]\n"
                           "  optimizer: {type: sgd, lr: 1e-30}\n  eval_batch_size: 2\n";
    for (int method = 0; method < 2; method++) {
        char obs[128];
        snprintf(obs, sizeof obs, "  - {type: gradient_diversity, every_steps: 1, method: %s}\n",
                 method ? "microbatch" : "auto");
        char *out = run_study(dir, method ? "orth-mb" : "orth", K, model, training, obs);
        char *run = path2(out, "runs/bs2");
        linear w = {F, K, 0, {{0}}, {0}};
        load_linear(&w, run, "init.safetensors");
        double g[N][MAXK][MAXF], gb[MAXK], n2[N];
        for (int i = 0; i < N; i++) {
            example_grad(&w, pix + i * F, lab[i], g[i], gb);
            n2[i] = grad_sqnorm(&w, g[i], (double[MAXK]){0});
        }
        bsc_table *gd = read_csv(run, "gradient_diversity.csv");
        assert_int_equal(bsc_table_n_rows(gd), 1);
        double a = sqrt(n2[0]), b = sqrt(n2[1]);
        assert_close(cell(gd, 0, "sum_sqnorm"), n2[0] + n2[1], RTOL, 0, "sum sqnorm", method);
        assert_close(cell(gd, 0, "sum_norm"), a + b, RTOL, 0, "sum norm", method);
        assert_close(cell(gd, 0, "diversity"), 1.0, RTOL, 0, "diversity", method);
        assert_close(cell(gd, 0, "norm_ratio"), sqrt(n2[0] + n2[1]) / (a + b), RTOL, 0,
                     "norm ratio", method);
        bsc_table_free(gd);
        free(run);
        free(out);
    }
    tu_rm_rf(dir);
    free(dir);
}

/* Noise scale where the gradient variance is known on paper: every example
 * has the same image x and two classes alternate, so g_i = (p - e_yi) x^T
 * with the same p. Each g_i - mean(g) = (mean(e) - e_yi) x^T has squared norm
 * ||x||^2 / 2, so the unbiased trace estimate of a batch of B is
 * B/(B-1) * ||x||^2 / 2 whatever the weights; |G|^2 estimates
 * ||mean g||^2 - tr/B = ||x||^2 (2 (p_0 - 1/2)^2 - 1/(2(B-1))). */
static void test_noise_scale_known_variance(void **state)
{
    (void)state;
    enum { N = 16, B = 8, F = 4, K = 2 };
    static const uint8_t x[F] = {120, 30, 200, 60};
    uint8_t pix[N * F], lab[N];
    for (int i = 0; i < N; i++) {
        memcpy(pix + i * F, x, F);
        lab[i] = (uint8_t)(i % 2);
    }
    char *dir = tu_tmpdir("obs");
    write_idx(dir, "train", N, 2, 2, pix, lab);
    char *out = run_study(dir, "noise", K,
                          "  - {type: flatten}\n  - {type: dense, units: 2, bias: false}\n",
                          "  epochs: 2\n  batch_sizes: [8]\n  shuffle: false\n"
                          "  optimizer: {type: sgd, lr: 1e-30}\n  eval_batch_size: 16\n",
                          "  - {type: noise_scale, every_steps: 1, ema: 0.5}\n");
    char *run = path2(out, "runs/bs8");
    linear w = {F, K, 0, {{0}}, {0}};
    load_linear(&w, run, "init.safetensors");
    double gW[MAXK][MAXF], gb[MAXK];
    example_grad(&w, x, 1, gW, gb);    /* row 0 is p - e_1 = (p_0, p_0 - 1) times x */
    double p0 = gW[0][2] / pixel(x[2]);
    double xx = 0;
    for (int j = 0; j < F; j++)
        xx += pixel(x[j]) * pixel(x[j]);
    double trace = (double)B / (B - 1) * xx / 2;
    double g2 = xx * (2 * (p0 - 0.5) * (p0 - 0.5) - 1.0 / (2.0 * (B - 1)));
    bsc_table *ns = read_csv(run, "noise_scale.csv");
    assert_int_equal(bsc_table_n_rows(ns), 4);
    for (size_t r = 0; r < 4; r++) {
        assert_close(cell(ns, r, "trace"), trace, RTOL, 0, "trace", (int)r);
        assert_close(cell(ns, r, "g2"), g2, 0, 1e-4 * trace, "g2", (int)r);
        assert_close(cell(ns, r, "b_simple"), cell(ns, r, "trace") / cell(ns, r, "g2"), 1e-6, 0,
                     "b_simple", (int)r);
        /* The same value every time: the bias-corrected averages are it too,
         * and the window's ratio of means is the samples' ratio; |G|^2 has
         * no spread, so it is significant exactly when it is positive, and
         * then the interval closes on the value. */
        assert_close(cell(ns, r, "trace_ema"), cell(ns, r, "trace"), 1e-5, 0, "trace ema",
                     (int)r);
        assert_close(cell(ns, r, "b_simple_window"), cell(ns, r, "b_simple"), 1e-4, 0,
                     "b_simple window", (int)r);
    }
    check_window(ns, 10);
    bsc_table_free(ns);
    free(run);
    free(out);
    tu_rm_rf(dir);
    free(dir);
}

static int same_file(const char *a, const char *b)
{
    char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    CHECK(bsc_read_file(a, &da, &la));
    CHECK(bsc_read_file(b, &db, &lb));
    int same = la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return same;
}

/* Every observer on (batch norm, dropout and momentum included, so the
 * running statistics, the dropout masks and the optimizer state are all in
 * play) must leave final.safetensors byte for byte as without them, and the
 * two per-example observers write what each writes alone; the
 * study-level tables come out with one row per batch size and per epoch. */
static void test_trajectory_unchanged(void **state)
{
    (void)state;
    enum { N = 64, F = 16 };
    uint8_t pix[N * F], lab[N];
    uint32_t r = 12345u;
    for (int i = 0; i < N * F; i++) {
        r = r * 1664525u + 1013904223u;
        pix[i] = (uint8_t)(r >> 24);
    }
    for (int i = 0; i < N; i++)
        lab[i] = (uint8_t)((pix[i * F] + pix[i * F + 5]) % 3);
    char *dir = tu_tmpdir("obs");
    write_idx(dir, "train", N, 4, 4, pix, lab);
    const char *model = "  - {type: flatten}\n  - {type: dense, units: 8}\n"
                        "  - {type: batchnorm}\n  - {type: relu}\n  - {type: dropout, p: 0.25}\n"
                        "  - {type: dense, units: 3}\n";
    const char *training = "  epochs: 2\n  batch_sizes: [8, 16]\n"
                           "  optimizer: {type: sgd, lr: 0.1, momentum: 0.9}\n"
                           "  eval_batch_size: 64\n";
    char *plain = run_study(dir, "plain", 3, model, training, "  []\n");
    char *obs = run_study(dir, "observed", 3, model, training,
                          "  - {type: distance, every_steps: 2}\n  - {type: update_norms}\n"
                          "  - {type: gradient_diversity, every_steps: 3}\n"
                          "  - {type: noise_scale, every_steps: 3}\n  - {type: summary}\n");
    static const char *const files[] = {"runs/bs8/final.safetensors",
                                        "runs/bs16/final.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *a = path2(plain, files[i]), *b = path2(obs, files[i]);
        if (!same_file(a, b))
            fail_msg("%s differs with observers on", files[i]);
        free(a);
        free(b);
    }
    for (int i = 0; i < 2; i++) {
        bsc_table *ns = read_csv(obs, i ? "runs/bs16/noise_scale.csv" : "runs/bs8/noise_scale.csv");
        check_window(ns, 10);
        bsc_table_free(ns);
    }
    /* gradient_diversity and noise_scale sampling the same steps share one
     * extra pass (pegrad.c): each one's file is byte for byte what it writes
     * alone. */
    char *gd = run_study(dir, "gd_alone", 3, model, training,
                         "  - {type: gradient_diversity, every_steps: 3}\n");
    char *ns = run_study(dir, "ns_alone", 3, model, training,
                         "  - {type: noise_scale, every_steps: 3}\n");
    static const char *const shared[] = {
        "runs/bs8/gradient_diversity.csv", "runs/bs16/gradient_diversity.csv",
        "runs/bs8/noise_scale.csv", "runs/bs16/noise_scale.csv"};
    for (int i = 0; i < 4; i++) {
        char *a = path2(obs, shared[i]), *b = path2(i < 2 ? gd : ns, shared[i]);
        if (!same_file(a, b))
            fail_msg("%s differs between the observer alone and the two together", shared[i]);
        free(a);
        free(b);
    }
    free(gd);
    free(ns);
    bsc_table *sum = read_csv(obs, "analyses/summary.csv");
    bsc_table *ratio = read_csv(obs, "analyses/epoch_distance_ratio.csv");
    bsc_table *m8 = read_csv(obs, "runs/bs8/metrics.csv");
    bsc_table *m16 = read_csv(obs, "runs/bs16/metrics.csv");
    assert_int_equal(bsc_table_n_rows(sum), 2);
    assert_close(cell(sum, 0, "batch_size"), 8, 0, 0, "batch size", 0);
    assert_string_equal(bsc_table_col_name(sum, 0), "run");
    assert_string_equal(bsc_table_get_str(sum, 1, 0), "bs16");
    /* every gradient-diversity median with its quartile range, and the
     * last window's noise scale with its significance flag */
    for (size_t r = 0; r < 2; r++) {
        double q25 = cell(sum, r, "norm_ratio_q25"), q50 = cell(sum, r, "norm_ratio_median");
        assert_true(q25 > 0 && q25 <= q50 && q50 <= cell(sum, r, "norm_ratio_q75"));
        double sig = cell(sum, r, "g2_significant");
        assert_true(sig == 0 || sig == 1);
        assert_false(isnan(cell(sum, r, "b_simple_window")));
    }
    assert_close(cell(sum, 0, "steps"), 16, 0, 0, "steps", 0);
    assert_close(cell(sum, 1, "steps"), 8, 0, 0, "steps", 1);
    assert_close(cell(sum, 0, "generalization_gap"),
                 cell(sum, 0, "train_acc") - cell(sum, 0, "test_acc"), 1e-12, 0, "gap", 0);
    assert_close(cell(sum, 1, "distance_from_init"), cell(m16, 2, "distance_from_init"), 0, 0,
                 "distance", 1);
    assert_true(cell(sum, 0, "update_norm_q25") <= cell(sum, 0, "update_norm_median"));
    assert_true(cell(sum, 0, "update_norm_median") <= cell(sum, 0, "update_norm_q75"));
    assert_int_equal(bsc_table_n_rows(ratio), 2);
    for (size_t e = 0; e < 2; e++) {
        assert_close(cell(ratio, e, "small"), 8, 0, 0, "small", (int)e);
        assert_close(cell(ratio, e, "large"), 16, 0, 0, "large", (int)e);
        assert_close(cell(ratio, e, "ratio"),
                     cell(m8, e + 1, "epoch_distance") / cell(m16, e + 1, "epoch_distance"),
                     1e-8, 0, "ratio", (int)e);
    }
    bsc_table_free(sum);
    bsc_table_free(ratio);
    bsc_table_free(m8);
    bsc_table_free(m16);
    free(plain);
    free(obs);
    tu_rm_rf(dir);
    free(dir);
}

/* The string in (row, col), failing the test when there is none. */
static const char *text_cell(const bsc_table *t, size_t row, const char *col)
{
    long c = bsc_table_find(t, col);
    if (c < 0)
        fail_msg("no column %s", col);
    const char *v = bsc_table_get_str(t, row, (size_t)c);
    if (!v)
        fail_msg("row %zu, column %s: no text", row, col);
    return v;
}

/* Named runs (training.runs) in the study's tables: one summary row per
 * run with its name first, pairs by batch size or by name, and the
 * batch_sizes runs exactly what they are in a study without named runs. */
static void test_summary_named_runs(void **state)
{
    (void)state;
    enum { N = 48, F = 9 };
    uint8_t pix[N * F], lab[N];
    uint32_t r = 777u;
    for (int i = 0; i < N * F; i++) {
        r = r * 1664525u + 1013904223u;
        pix[i] = (uint8_t)(r >> 24);
    }
    for (int i = 0; i < N; i++)
        lab[i] = (uint8_t)(pix[i * F + 4] % 2);
    char *dir = tu_tmpdir("obs");
    write_idx(dir, "train", N, 3, 3, pix, lab);
    const char *model = "  - {type: flatten}\n  - {type: dense, units: 2}\n";
    const char *base = "  epochs: 2\n  batch_sizes: [8, 16]\n"
                       "  optimizer: {type: sgd, lr: 0.1, momentum: 0.9}\n"
                       "  eval_batch_size: 48\n";
    char *training = bsc_strdup_printf("%s  runs:\n    - {name: bs16-fast, batch_size: 16, "
                                       "lr: 0.4, lr_scaling: linear, warmup_epochs: 1}\n",
                                       base);
    char *plain = run_study(dir, "plain", 2, model, base,
                            "  - {type: distance}\n  - {type: summary}\n");
    char *named = run_study(dir, "named", 2, model, training,
                            "  - {type: distance}\n  - {type: update_norms}\n"
                            "  - {type: summary, pairs: [[8, 16], [bs8, bs16-fast]]}\n");
    /* adding a run changes none of the others */
    static const char *const files[] = {"runs/bs8/final.safetensors",
                                        "runs/bs16/final.safetensors",
                                        "runs/bs16/init.safetensors"};
    for (int i = 0; i < 3; i++) {
        char *a = path2(plain, files[i]), *b = path2(named, files[i]);
        if (!same_file(a, b))
            fail_msg("%s differs when a named run is added", files[i]);
        free(a);
        free(b);
    }
    bsc_table *sum = read_csv(named, "analyses/summary.csv");
    bsc_table *ratio = read_csv(named, "analyses/epoch_distance_ratio.csv");
    bsc_table *mf = read_csv(named, "runs/bs16-fast/metrics.csv");
    bsc_table *m16 = read_csv(named, "runs/bs16/metrics.csv");
    assert_string_equal(bsc_table_col_name(sum, 0), "run");
    assert_int_equal(bsc_table_n_rows(sum), 3);
    static const char *const names[] = {"bs8", "bs16", "bs16-fast"};
    static const double bs[] = {8, 16, 16};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(text_cell(sum, i, "run"), names[i]);
        assert_close(cell(sum, i, "batch_size"), bs[i], 0, 0, "batch size", (int)i);
    }
    assert_string_equal(text_cell(sum, 2, "status"), "completed");
    assert_close(cell(sum, 2, "steps"), 6, 0, 0, "steps", 2);
    assert_close(cell(sum, 2, "test_acc"), cell(mf, 2, "test_acc"), 0, 0, "test_acc", 2);
    /* its own rate: lr 0.4 * 16/8 after the warm-up epoch */
    assert_close(cell(mf, 2, "lr"), 0.8, 1e-6, 0, "lr", 2);
    assert_close(cell(m16, 2, "lr"), 0.1, 1e-6, 0, "lr", 2);
    /* two pairs, two epochs each: [8, 16] is bs8 / bs16, then bs8 / bs16-fast */
    assert_int_equal(bsc_table_n_rows(ratio), 4);
    for (size_t e = 0; e < 4; e++) {
        const bsc_table *big = e < 2 ? m16 : mf;
        assert_string_equal(text_cell(ratio, e, "small_run"), "bs8");
        assert_string_equal(text_cell(ratio, e, "large_run"), e < 2 ? "bs16" : "bs16-fast");
        assert_close(cell(ratio, e, "small"), 8, 0, 0, "small", (int)e);
        assert_close(cell(ratio, e, "large"), 16, 0, 0, "large", (int)e);
        assert_close(cell(ratio, e, "large_epoch_distance"),
                     cell(big, e % 2 + 1, "epoch_distance"), 0, 0, "large distance", (int)e);
    }
    bsc_table_free(sum);
    bsc_table_free(ratio);
    bsc_table_free(mf);
    bsc_table_free(m16);
    free(plain);
    free(named);
    free(training);
    tu_rm_rf(dir);
    free(dir);
}

/* A study of 2x2 images (n of them, pixel i = i * mul) training a dense
 * layer by `body` (training: and observers:) must fail before any result
 * with an error holding `where` and `what`. */
static void expect_study_error(int n, int mul, const char *name, const char *body,
                               const char *where, const char *what)
{
    uint8_t pix[16 * 4], lab[16];
    assert_true(n <= 16);
    for (int i = 0; i < n * 4; i++)
        pix[i] = (uint8_t)(i * mul);
    for (int i = 0; i < n; i++)
        lab[i] = (uint8_t)(i % 2);
    char *dir = tu_tmpdir("obs");
    write_idx(dir, "train", (size_t)n, 2, 2, pix, lab);
    char *yaml = bsc_strdup_printf("version: 1\nname: %s\n%s  n_classes: 2\nmodel:\n"
                                   "  - {type: flatten}\n  - {type: dense, units: 2}\n%s",
                                   name, DATASET, body);
    char *base = bsc_strdup_printf("%s.yaml", name);
    char *file = path2(dir, base);
    CHECK(bsc_write_file_atomic(file, yaml, strlen(yaml)));
    FILE *devnull = fopen("/dev/null", "w");
    char *out = path2(dir, name);
    bsc_run_options o = {0};
    o.device = tu_device();
    o.pipeline_path = file;
    o.out_dir = out;
    o.quiet = 1;
    o.log = devnull;
    assert_int_not_equal(bsc_study_run(&o), BSC_OK);
    fclose(devnull);
    if (!strstr(bsc_last_error(), where) || !strstr(bsc_last_error(), what))
        fail_msg("unexpected error: %s", bsc_last_error());
    free(yaml);
    free(base);
    free(file);
    free(out);
    tu_rm_rf(dir);
    free(dir);
}

/* A pair naming a run the study does not have is an error at the name. */
static void test_summary_unknown_run(void **state)
{
    (void)state;
    expect_study_error(16, 53, "pair",
                       "training:\n  epochs: 1\n  batch_sizes: [4, 8]\n"
                       "observers:\n  - {type: summary, pairs: [[bs4, bs8-x]]}\n",
                       "pair.yaml:16:35:", "no run bs8-x in this study");
}

/* A misspelt observer option is an error at its file:line:col, with the
 * closest name, before any training. */
static void test_option_error(void **state)
{
    (void)state;
    expect_study_error(8, 37, "bad",
                       "training:\n  epochs: 1\n  batch_sizes: [4]\n"
                       "observers:\n  - {type: update_norms, per_layr: false}\n",
                       "bad.yaml:16:26:", "per_layer");
}

/* The answers known on paper. */
#define KNOWN_CASES                                                            \
    cmocka_unit_test(test_linear_no_bias), cmocka_unit_test(test_linear_bias), \
        cmocka_unit_test(test_linear_chunks),                                  \
        cmocka_unit_test(test_identical_examples),                             \
        cmocka_unit_test(test_orthogonal_examples),                            \
        cmocka_unit_test(test_noise_scale_known_variance)

int main(void)
{
    const struct CMUnitTest tests[] = {
        KNOWN_CASES,
        cmocka_unit_test(test_trajectory_unchanged),
        cmocka_unit_test(test_summary_named_runs),
        cmocka_unit_test(test_summary_unknown_run),
        cmocka_unit_test(test_option_error),
    };
    /* Where the step's work runs on host tasks (host_task.h:
     * bsc_host_elementwise) the per-example pass's reductions do too; the
     * known cases run on the kernels as well. */
    const struct CMUnitTest kernels[] = {KNOWN_CASES};
    setenv("BATCHSCOPE_HOST_ELEMENTWISE", "1", 1);
    int failed = cmocka_run_group_tests_name("observers", tests, NULL, NULL);
    setenv("BATCHSCOPE_HOST_ELEMENTWISE", "0", 1);
    failed += cmocka_run_group_tests_name("observers (kernels)", kernels, NULL, NULL);
    return failed;
}
