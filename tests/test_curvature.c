/* The hessian analysis' math cores (plugins/analyses/eigen.c, slq.c) on
 * operators known on paper, on the host: the tridiagonal eigensolver on
 * tridiag(-1, 2, -1), whose spectrum is 2 - 2 cos(k pi / (m + 1)); Lanczos
 * on diagonal matrices (the top and bottom eigenvalues with their
 * residuals, the product budget, an invariant Krylov space); Hutchinson's
 * trace and block traces, exact for a diagonal H with Rademacher probes;
 * the quadrature's moments (exact for polynomials of degree < 2m) and the
 * density it smooths.
 *
 * End to end (test_reference_*): the hessian analysis at two small models'
 * checkpoints against PyTorch's exact Hessian there. CI has no PyTorch, so
 * the reference values are files committed beside the checkpoints,
 * tests/data/hessian/<model>.csv, written by
 *     tools/hessian_reference.py tests/data/hessian/<model>.yaml \
 *         tests/data/hessian/<model>.safetensors --bottom 2 --out <model>.csv
 * (dense float64 Hessian by double backward; regenerate them whenever the
 * checkpoints or the models change). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "analyses.h"
#include "batchscope/fsutil.h"
#include "batchscope/study.h"
#include "batchscope/table.h"

static void near(double got, double want, double rtol, double atol, const char *what, int i)
{
    double tol = atol + rtol * fabs(want);
    if (!(fabs(got - want) <= tol))
        fail_msg("%s[%d]: got %.12g, want %.12g (tolerance %.3g)", what, i, got, want, tol);
}

/* ---------------------------------------------------- tridiagonal */

static void test_tridiag_eig(void **state)
{
    (void)state;
    enum { M = 12 };
    double a[M], b[M], theta[M], S[M * M];
    for (int i = 0; i < M; i++) {
        a[i] = 2.0;
        b[i] = -1.0;
    }
    CHECK(ana_tridiag_eig(M, a, b, theta, S));
    for (int k = 0; k < M; k++) {
        near(theta[k], 2.0 - 2.0 * cos((k + 1) * M_PI / (M + 1)), 0, 1e-13, "theta", k);
        /* T s_k = theta_k s_k, |s_k| = 1 */
        double nrm = 0;
        for (int i = 0; i < M; i++) {
            double ts = a[i] * S[i * M + k];
            if (i > 0)
                ts += b[i - 1] * S[(i - 1) * M + k];
            if (i + 1 < M)
                ts += b[i] * S[(i + 1) * M + k];
            near(ts, theta[k] * S[i * M + k], 0, 1e-12, "T s", i);
            nrm += S[i * M + k] * S[i * M + k];
        }
        near(nrm, 1.0, 0, 1e-12, "|s|", k);
    }
    /* order one: the value itself */
    double one = 3.5, t1, s1;
    CHECK(ana_tridiag_eig(1, &one, b, &t1, &s1));
    near(t1, 3.5, 0, 0, "1x1", 0);
    near(s1, 1.0, 0, 0, "1x1 vector", 0);
}

/* ------------------------------------------------------- Lanczos */

typedef struct diag {
    size_t n;
    const double *d;
    int products;
} diag;

static bsc_status diag_hv(void *user, const double *v, double *hv)
{
    diag *D = user;
    for (size_t i = 0; i < D->n; i++)
        hv[i] = D->d[i] * v[i];
    D->products++;
    return BSC_OK;
}

#define DN 400

/* A bulk in [0, 2), outliers 10, 6, 3.5 on top and -4, -2.5 below. */
static void spectrum(double *d)
{
    for (int i = 0; i < DN; i++)
        d[i] = 0.005 * ((i * 37) % DN);
    d[17] = 10.0;
    d[101] = 6.0;
    d[230] = 3.5;
    d[150] = -4.0;
    d[333] = -2.5;
}

static void test_lanczos_extremes(void **state)
{
    (void)state;
    double d[DN];
    spectrum(d);
    diag D = {DN, d, 0};
    ana_lanczos_opts o = {3, 2, 200, 1e-10, 42, 100};
    ana_lanczos_result r;
    CHECK(ana_lanczos_extremes(DN, &o, diag_hv, &D, &r));
    assert_true(r.converged);
    assert_int_equal(r.found, 5);
    const double top[3] = {10.0, 6.0, 3.5}, bottom[2] = {-4.0, -2.5};
    for (int k = 0; k < 3; k++) {
        near(r.top[k], top[k], 1e-9, 0, "top", k);
        assert_true(r.top_res[k] <= 1e-10 * fabs(top[k]) * 1.0001);
    }
    for (int k = 0; k < 2; k++)
        near(r.bottom[k], bottom[k], 1e-9, 0, "bottom", k);
    assert_int_equal(r.products, D.products);
    /* The outliers are far from the bulk: far fewer products than
     * dimensions (power iteration with deflation needed hundreds here). */
    assert_true(r.products < 80);
    /* The budget is honoured, and a run cut short says so. */
    D.products = 0;
    ana_lanczos_opts o2 = {3, 0, 5, 1e-10, 42, 100};
    CHECK(ana_lanczos_extremes(DN, &o2, diag_hv, &D, &r));
    assert_int_equal(r.products, 5);
    assert_int_equal(D.products, 5);
    assert_false(r.converged);
    assert_true(r.top_res[0] > 0);
    /* |Ritz value - eigenvalue| <= residual: the bound holds even when cut short. */
    assert_true(fabs(r.top[0] - 10.0) <= r.top_res[0] * 1.0001);
    /* A basis in float32 (what a large model gets): the same values to the
     * ~1e-7 its rounding allows. */
    ana_lanczos_set_double_limit(0);
    D.products = 0;
    ana_lanczos_opts o3 = {3, 2, 200, 1e-6, 42, 100};
    bsc_status st = ana_lanczos_extremes(DN, &o3, diag_hv, &D, &r);
    ana_lanczos_set_double_limit(-1);
    CHECK(st);
    assert_true(r.converged);
    for (int k = 0; k < 3; k++)
        near(r.top[k], top[k], 1e-6, 0, "top (float32 basis)", k);
    for (int k = 0; k < 2; k++)
        near(r.bottom[k], bottom[k], 1e-6, 0, "bottom (float32 basis)", k);
}

/* Three distinct eigenvalues: the Krylov space is invariant after three
 * products, and its Ritz values are the eigenvalues, exactly. */
static void test_lanczos_invariant_space(void **state)
{
    (void)state;
    double d[DN];
    for (int i = 0; i < DN; i++)
        d[i] = i % 3 == 0 ? 5.0 : i % 3 == 1 ? -1.0 : 0.25;
    diag D = {DN, d, 0};
    ana_lanczos_opts o = {2, 1, 100, 1e-12, 7, 100};
    ana_lanczos_result r;
    CHECK(ana_lanczos_extremes(DN, &o, diag_hv, &D, &r));
    assert_int_equal(r.products, 3);
    assert_true(r.converged);
    near(r.top[0], 5.0, 1e-12, 0, "top", 0);
    near(r.top[1], 0.25, 1e-12, 0, "top", 1);
    near(r.bottom[0], -1.0, 1e-12, 0, "bottom", 0);
    /* More wanted than the space holds: the rest are NaN, not made up. */
    ana_lanczos_opts o2 = {4, 0, 100, 1e-12, 7, 100};
    CHECK(ana_lanczos_extremes(DN, &o2, diag_hv, &D, &r));
    assert_int_equal(r.found, 3);
    assert_true(isnan(r.top[3]));
}

/* ------------------------------------------- probes and quadrature */

typedef struct blocks {
    double part[3][8];   /* z.Hz over thirds of the coordinates, per probe */
} blocks;

static void thirds(void *user, int s, const double *z, const double *hz)
{
    blocks *b = user;
    for (int k = 0; k < 3; k++) {
        double q = 0;
        for (int i = k * DN / 3; i < (k + 1) * DN / 3; i++)
            q += z[i] * hz[i];
        b->part[k][s] = q;
    }
}

static void test_probes_trace_and_moments(void **state)
{
    (void)state;
    double d[DN], want = 0, bw[3] = {0};
    spectrum(d);
    for (int i = 0; i < DN; i++)
        want += d[i];
    for (int k = 0; k < 3; k++)
        for (int i = k * DN / 3; i < (k + 1) * DN / 3; i++)
            bw[k] += d[i];
    diag D = {DN, d, 0};
    blocks b;
    ana_probe_opts o = {8, 2, 12, 11};
    ana_probe_result r;
    CHECK(ana_probes(DN, &o, diag_hv, &D, thirds, &b, &r));
    /* A diagonal H: z.Hz = sum d_i z_i^2 = tr(H) for every Rademacher z, and
     * the same per block. */
    for (int s = 0; s < 8; s++) {
        near(r.samples[s], want, 1e-12, 1e-12, "z.Hz", s);
        for (int k = 0; k < 3; k++)
            near(b.part[k][s], bw[k], 1e-12, 1e-12, "block z.Hz", k);
    }
    double tr, se;
    ana_mean_se(r.samples, 8, &tr, &se);
    near(tr, want, 1e-12, 0, "trace", 0);
    near(se, 0, 0, 1e-9, "std_err", 0);
    /* Quadratures cost their steps, the other probes one product each. */
    assert_int_equal(r.products, 2 * 12 + 6);
    assert_int_equal(D.products, r.products);
    /* Gauss quadrature: sum tau theta^p = z^T H^p z / n = mean(d^p) for
     * p < 2m; the weights sum to one. */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(r.n_nodes[k], 12);
        const double *nd = r.nodes + k * 12, *wt = r.weights + k * 12;
        for (int p = 0; p <= 6; p++) {
            double q = 0, m = 0;
            for (int j = 0; j < 12; j++)
                q += wt[j] * pow(nd[j], p);
            for (int i = 0; i < DN; i++)
                m += pow(d[i], p) / DN;
            near(q, m, 1e-9, 1e-12, "moment", p);
        }
    }
    ana_probe_free(&r);
}

static void test_density_of_three_values(void **state)
{
    (void)state;
    /* Eigenvalues 4 (a quarter), 1 (half), -2 (a quarter): the quadrature
     * recovers them exactly as nodes with those weights (z_i^2 = 1). */
    double d[DN];
    for (int i = 0; i < DN; i++)
        d[i] = i % 4 == 0 ? 4.0 : i % 4 == 3 ? -2.0 : 1.0;
    diag D = {DN, d, 0};
    ana_probe_opts o = {3, 3, 10, 5};
    ana_probe_result r;
    CHECK(ana_probes(DN, &o, diag_hv, &D, NULL, NULL, &r));
    for (int k = 0; k < 3; k++) {
        assert_int_equal(r.n_nodes[k], 3);
        near(r.nodes[k * 10 + 0], -2.0, 0, 1e-12, "node", 0);
        near(r.nodes[k * 10 + 1], 1.0, 0, 1e-12, "node", 1);
        near(r.nodes[k * 10 + 2], 4.0, 0, 1e-12, "node", 2);
        near(r.weights[k * 10 + 0], 0.25, 0, 1e-12, "weight", 0);
        near(r.weights[k * 10 + 1], 0.5, 0, 1e-12, "weight", 1);
        near(r.weights[k * 10 + 2], 0.25, 0, 1e-12, "weight", 2);
    }
    enum { BINS = 6001 };
    double *g = malloc(3 * BINS * sizeof *g), *dens = g + BINS, *se = dens + BINS;
    CHECK(ana_slq_density(&r, 3, 10, BINS, 1e-3, 0.5, g, dens, se));
    near(g[0], -2.5, 0, 1e-12, "grid start", 0);
    near(g[BINS - 1], 4.5, 0, 1e-12, "grid end", 0);
    double integral = 0, mass_near_1 = 0, h = g[1] - g[0];
    for (int i = 0; i < BINS; i++) {
        integral += dens[i] * h;
        if (fabs(g[i] - 1.0) < 0.5)
            mass_near_1 += dens[i] * h;
        near(se[i], 0, 0, 1e-12, "std_err (identical probes)", i);
    }
    near(integral, 1.0, 0, 1e-12, "integral", 0);
    near(mass_near_1, 0.5, 1e-6, 0, "mass at 1", 0);
    /* The peak at 1 is twice the others' height (to the grid's offset from
     * the nodes: half a step of 7/6000 against sigma = 0.084). */
    int i1 = (int)lround((1.0 - g[0]) / h), i4 = (int)lround((4.0 - g[0]) / h);
    near(dens[i1] / dens[i4], 2.0, 1e-4, 0, "peak ratio", 0);
    free(g);
    ana_probe_free(&r);
}

/* ------------------------------------------- against PyTorch's Hessian */

static double ref_value(const bsc_table *ref, const char *block, const char *q, int k)
{
    long cb = bsc_table_find(ref, "block"), cq = bsc_table_find(ref, "quantity"),
         ck = bsc_table_find(ref, "k"), cv = bsc_table_find(ref, "value");
    assert_true(cb >= 0 && cq >= 0 && ck >= 0 && cv >= 0);
    for (size_t r = 0; r < bsc_table_n_rows(ref); r++)
        if (!strcmp(bsc_table_get_str(ref, r, (size_t)cb), block) &&
            !strcmp(bsc_table_get_str(ref, r, (size_t)cq), q) &&
            bsc_table_get(ref, r, (size_t)ck) == k)
            return bsc_table_get(ref, r, (size_t)cv);
    fail_msg("reference has no %s %s %d", block, q, k);
    return NAN;
}

/* Trains one epoch (a study needs a run), then takes the Hessian at the
 * committed checkpoint of tests/data/hessian/<model> and compares every
 * row of hessian.csv with the committed reference: eigenvalues (top 3,
 * bottom 2, and each block's top one with blocks) to 1e-4 relative, traces
 * within 3 standard errors; the block traces add up to the whole one. */
static void reference_check(const char *model, int blocks)
{
    char *dir = tu_tmpdir("curv");
    char *src = bsc_strdup_printf("%s/tests/data/hessian/%s.yaml", BSC_SOURCE_DIR, model);
    char *text = tu_read(src, NULL);
    assert_non_null(text);
    char *at = strstr(text, "epochs: 20");
    assert_non_null(at);
    memcpy(at, "epochs: 1 ", 10);
    char *yaml = bsc_strdup_printf(
        "%sanalyses:\n  - {type: hessian, checkpoints: [%s/tests/data/hessian/%s.safetensors],\n"
        "     top_k: 3, bottom_k: 2, tol: 1e-7, max_iter: 300, trace_samples: 60,\n"
        "     density_probes: 2, density_bins: 500, subset: 1000, blocks: %s}\n",
        text, BSC_SOURCE_DIR, model, blocks ? "true" : "false");
    char *path = tu_write(dir, "pipeline.yaml", yaml), *out = bsc_strdup_printf("%s/out", dir);
    FILE *devnull = fopen("/dev/null", "w");
    bsc_run_options o = {0};
    o.pipeline_path = path;
    o.out_dir = out;
    o.quiet = 1;
    o.log = devnull;
    bsc_status s = bsc_study_run(&o);
    fclose(devnull);
    if (s != BSC_OK)
        fail_msg("study: %s: %s", bsc_status_name(s), bsc_last_error());
    char *csv = bsc_strdup_printf("%s/analyses/hessian.csv", out);
    char *refp = bsc_strdup_printf("%s/tests/data/hessian/%s.csv", BSC_SOURCE_DIR, model);
    bsc_table *t = NULL, *ref = NULL;
    CHECK(bsc_table_read_csv(csv, &t));
    CHECK(bsc_table_read_csv(refp, &ref));
    long cb = bsc_table_find(t, "block"), cq = bsc_table_find(t, "quantity"),
         ck = bsc_table_find(t, "k"), cv = bsc_table_find(t, "value"),
         cs = bsc_table_find(t, "std_err"), cm = bsc_table_find(t, "method");
    size_t eigs = 0, traces = 0;
    double whole = NAN, parts = 0;
    for (size_t r = 0; r < bsc_table_n_rows(t); r++) {
        const char *block = bsc_table_get_str(t, r, (size_t)cb);
        const char *q = bsc_table_get_str(t, r, (size_t)cq);
        int k = (int)bsc_table_get(t, r, (size_t)ck);
        double v = bsc_table_get(t, r, (size_t)cv), want = ref_value(ref, block, q, k);
        assert_string_equal(bsc_table_get_str(t, r, (size_t)cm), "exact");
        if (!strcmp(q, "trace")) {
            double se = bsc_table_get(t, r, (size_t)cs);
            if (!(se > 0 && fabs(v - want) <= 3 * se))
                fail_msg("%s %s trace %.6g +- %.3g, PyTorch %.6g", model, block, v, se, want);
            if (!strcmp(block, "all"))
                whole = v;
            else
                parts += v;
            traces++;
        } else {
            near(v, want, 1e-4, 0, q, k);
            eigs++;
        }
    }
    /* top 3 and bottom 2, and the top one of every tensor's block */
    size_t ref_blocks = 0;
    for (size_t r = 0; r < bsc_table_n_rows(ref); r++)
        ref_blocks += strcmp(bsc_table_get_str(ref, r, 0), "all") != 0 &&
                      !strcmp(bsc_table_get_str(ref, r, 1), "eigenvalue");
    assert_int_equal(eigs, 5 + (blocks ? ref_blocks : 0));
    assert_true(traces >= 1);
    if (blocks)
        near(parts, whole, 1e-6, 1e-9, "block traces add up", 0);
    bsc_table_free(t);
    bsc_table_free(ref);
    tu_rm_rf(dir);
    free(dir), free(src), free(text), free(yaml), free(path), free(out), free(csv), free(refp);
}

/* The MLP 784-8-10 of issue 13 (relu; the exact products see no kink). */
static void test_reference_mlp(void **state)
{
    (void)state;
    reference_check("mlp", 0);
}

/* Every built-in layer type in the trained part, with per-tensor blocks. */
static void test_reference_cnn(void **state)
{
    (void)state;
    reference_check("cnn", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tridiag_eig),
        cmocka_unit_test(test_lanczos_extremes),
        cmocka_unit_test(test_lanczos_invariant_space),
        cmocka_unit_test(test_probes_trace_and_moments),
        cmocka_unit_test(test_density_of_three_values),
        cmocka_unit_test(test_reference_mlp),
        cmocka_unit_test(test_reference_cnn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
