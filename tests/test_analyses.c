/* The analyses plugin (plugins/analyses) on cases known on paper.
 *
 * The math cores take callbacks, so they are tested on a quadratic
 * f = 1/2 sum_i h_i (x_i - c_i)^2 with known diagonal H, on the host:
 * L-BFGS-B's box maximum has a closed form (each coordinate goes to the
 * bound farthest from c_i when h_i > 0, to c_i clipped into the box when
 * h_i < 0) and no evaluated point leaves the box; grid coordinates have
 * exact endpoints; filter normalization is checked filter by filter (the
 * curvature cores are in test_curvature); a surface interrupted and
 * resumed gives the same grid. On the
 * device: the interpolation kernel along a line gives the parabola of a
 * quadratic with exact endpoints. End to end: a linear softmax model
 * trained by a real study, whose interpolation, surface, sharpness f0 and
 * Hessian eigenvalues are recomputed here in double (its Hessian is known
 * in closed form: mean over examples of (diag p - p p^T) (x) [x;1][x;1]^T).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "analyses.h"
#include "batchscope/fsutil.h"
#include "batchscope/rng.h"
#include "batchscope/safetensors.h"
#include "batchscope/study.h"
#include "batchscope/table.h"

static void near(double got, double want, double rtol, double atol, const char *what, int i)
{
    double tol = atol + rtol * fabs(want);
    if (!(fabs(got - want) <= tol))
        fail_msg("%s[%d]: got %.12g, want %.12g (tolerance %.3g)", what, i, got, want, tol);
}


/* ------------------------------------------------------ the quadratic */

typedef struct quad {
    size_t n;
    const double *h, *c;
    const double *lo, *hi;   /* the box every evaluation must respect */
    int sign;                /* +1: f; -1: -f (maximization) */
    int evals;
    int outside;
} quad;

static bsc_status quad_fg(void *user, const double *x, double *f, double *g)
{
    quad *q = user;
    double s = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (q->lo && (x[i] < q->lo[i] || x[i] > q->hi[i]))
            q->outside++;
        double d = x[i] - q->c[i];
        s += 0.5 * q->h[i] * d * d;
        g[i] = q->sign * q->h[i] * d;
    }
    *f = q->sign * s;
    q->evals++;
    return BSC_OK;
}

#define QN 40

static void quad_setup(double *h, double *c, double *b, int mixed)
{
    for (int i = 0; i < QN; i++) {
        h[i] = 0.5 + i * 0.25;
        if (mixed && i % 3 == 2)
            h[i] = -h[i];
        /* c never 0 (a zero gradient at the start would leave a coordinate
         * on a saddle); some c inside the box, some outside */
        c[i] = (i % 2 ? 1 : -1) * (0.1 + 0.05 * (i % 7));
        b[i] = 0.2 + 0.01 * i;
    }
}

static void test_lbfgsb_box_maximum(void **state)
{
    (void)state;
    double h[QN], c[QN], b[QN], lo[QN], hi[QN], x[QN];
    quad_setup(h, c, b, 1);
    double want = 0;
    for (int i = 0; i < QN; i++) {
        lo[i] = -b[i];
        hi[i] = b[i];
        x[i] = 0;
        double z = h[i] > 0 ? (c[i] > 0 ? -b[i] : b[i]) : fmin(fmax(c[i], -b[i]), b[i]);
        want += 0.5 * h[i] * (z - c[i]) * (z - c[i]);
    }
    quad q = {QN, h, c, lo, hi, -1, 0, 0};
    ana_lbfgsb_opts o = {10, 100, 0, 10.0, 0.0, NULL};
    ana_lbfgsb_result r;
    CHECK(ana_lbfgsb_minimize(QN, x, lo, hi, &o, quad_fg, &q, &r));
    assert_int_equal(q.outside, 0);
    near(-r.f, want, 1e-9, 0, "box maximum", 0);
    assert_int_equal(r.evaluations, q.evals);
    for (int i = 0; i < QN; i++)
        assert_true(x[i] >= lo[i] && x[i] <= hi[i]);
}

static void test_lbfgsb_clipped_minimum(void **state)
{
    (void)state;
    double h[QN], c[QN], b[QN], lo[QN], hi[QN], x[QN];
    quad_setup(h, c, b, 0);
    for (int i = 0; i < QN; i++) {
        lo[i] = -0.5 * b[i];
        hi[i] = 0.5 * b[i];
        x[i] = hi[i];
    }
    quad q = {QN, h, c, lo, hi, +1, 0, 0};
    ana_lbfgsb_opts o = {10, 200, 0, 10.0, 1e-12, NULL};
    ana_lbfgsb_result r;
    CHECK(ana_lbfgsb_minimize(QN, x, lo, hi, &o, quad_fg, &q, &r));
    assert_int_equal(q.outside, 0);
    for (int i = 0; i < QN; i++)
        near(x[i], fmin(fmax(c[i], lo[i]), hi[i]), 0, 1e-7, "clipped minimizer", i);
}

/* An unbounded-below linear f with huge gradients: every step wants to
 * leave the box; the iteration limit holds. */
static bsc_status linear_fg(void *user, const double *x, double *f, double *g)
{
    quad *q = user;
    double s = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (x[i] < q->lo[i] || x[i] > q->hi[i])
            q->outside++;
        g[i] = 1e6 * q->c[i];
        s += g[i] * x[i];
    }
    *f = s;
    q->evals++;
    return BSC_OK;
}

static void test_lbfgsb_never_leaves_box(void **state)
{
    (void)state;
    double h[QN], c[QN], b[QN], lo[QN], hi[QN], x[QN];
    quad_setup(h, c, b, 1);
    for (int i = 0; i < QN; i++) {
        lo[i] = -b[i];
        hi[i] = b[i];
        /* a random start in the box */
        x[i] = (2.0 * bsc_rng_uniform(3, BSC_RNG_SHARPNESS, 1, (uint64_t)i) - 1.0) * b[i];
    }
    quad q = {QN, h, c, lo, hi, +1, 0, 0};
    ana_lbfgsb_opts o = {5, 3, 0, 0.0, 0.0, NULL};
    ana_lbfgsb_result r;
    CHECK(ana_lbfgsb_minimize(QN, x, lo, hi, &o, linear_fg, &q, &r));
    assert_int_equal(q.outside, 0);
    assert_true(r.iterations <= 3);
    /* the minimum of a linear function over a box: the corner against g */
    double want = 0;
    for (int i = 0; i < QN; i++)
        want += 1e6 * c[i] * (c[i] > 0 ? lo[i] : hi[i]);
    near(r.f, want, 1e-9, 0, "corner", 0);
    /* evaluation limit */
    quad q2 = {QN, h, c, lo, hi, -1, 0, 0};
    ana_lbfgsb_opts o2 = {10, 100, 2, 10.0, 0.0, NULL};
    for (int i = 0; i < QN; i++)
        x[i] = 0;
    CHECK(ana_lbfgsb_minimize(QN, x, lo, hi, &o2, quad_fg, &q2, &r));
    assert_int_equal(r.evaluations, 2);
    assert_int_equal(q2.evals, 2);
}

/* ------------------------------------------------------- grid coordinates */

static void test_linspace(void **state)
{
    (void)state;
    near(ana_linspace(-1, 2, 31, 0), -1, 0, 0, "linspace", 0);
    near(ana_linspace(-1, 2, 31, 30), 2, 0, 0, "linspace", 30);
    near(ana_linspace(-1, 2, 31, 10), 0, 0, 1e-15, "linspace", 10);
    near(ana_linspace(3, 3, 1, 0), 3, 0, 0, "linspace", 0);
}

/* ------------------------------------------------ filter normalization */

static bsc_model_tensor tensor(const char *name, bsc_param_role role, int ndim,
                               const int64_t *dim, int axis, size_t offset)
{
    bsc_model_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.spec.role = role;
    t.spec.shape = bsc_shape_make(ndim, dim);
    t.spec.filter_axis = axis;
    t.offset = offset;
    t.numel = bsc_shape_numel(&t.spec.shape);
    return t;
}

static void check_filters(const bsc_model_tensor *t, const float *w, const float *d)
{
    const bsc_shape *s = &t->spec.shape;
    int ax = t->spec.filter_axis;
    size_t outer = 1, F = (size_t)s->dim[ax], inner = 1;
    for (int k = 0; k < ax; k++)
        outer *= (size_t)s->dim[k];
    for (int k = ax + 1; k < s->ndim; k++)
        inner *= (size_t)s->dim[k];
    for (size_t f = 0; f < F; f++) {
        double wn = 0, dn = 0;
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < inner; i++) {
                size_t e = t->offset + (o * F + f) * inner + i;
                wn += (double)w[e] * w[e];
                dn += (double)d[e] * d[e];
            }
        near(sqrt(dn), sqrt(wn), 1e-6, 0, t->name, (int)f);
    }
}

static void test_filter_normalization(void **state)
{
    (void)state;
    const int64_t dense[2] = {5, 7}, conv[4] = {4, 3, 2, 2}, bias[1] = {5}, odd[3] = {2, 3, 4};
    bsc_model_tensor ts[5] = {
        tensor("0.weight", BSC_ROLE_WEIGHT, 2, dense, 0, 0),
        tensor("0.bias", BSC_ROLE_BIAS, 1, bias, -1, 35),
        tensor("2.weight", BSC_ROLE_WEIGHT, 4, conv, 0, 40),
        tensor("3.weight", BSC_ROLE_WEIGHT, 3, odd, 1, 88),  /* filters along axis 1 */
        tensor("4.gamma", BSC_ROLE_NORM, 1, bias, -1, 112),
    };
    enum { N = 117 };
    float w[N], d[N], d0[N], d2[N];
    bsc_rng_fill_normal(1, BSC_RNG_INIT, 0, w, N, 0.0f, 0.3f);
    bsc_rng_fill_normal(1, BSC_RNG_DIRECTIONS, 0, d0, N, 0.0f, 1.0f);
    w[3] = 0.0f;   /* not a whole filter; fine */
    memcpy(d, d0, sizeof d);
    memcpy(d2, d0, sizeof d2);
    for (int i = 0; i < 5; i++) {
        ana_filter_normalize(&ts[i], w, d, ANA_IGNORE_BIASBN);
        ana_filter_normalize(&ts[i], w, d2, ANA_IGNORE_NONE);
    }
    check_filters(&ts[0], w, d);
    check_filters(&ts[2], w, d);
    check_filters(&ts[3], w, d);
    /* direction along a filter keeps its shape: d_f = d0_f * ||w_f|| / ||d0_f|| */
    double wn = 0, dn = 0;
    for (int j = 0; j < 7; j++) {
        wn += (double)w[7 + j] * w[7 + j];
        dn += (double)d0[7 + j] * d0[7 + j];
    }
    for (int j = 0; j < 7; j++)
        near(d[7 + j], d0[7 + j] * sqrt(wn) / sqrt(dn), 1e-6, 1e-7, "filter 1 of 0.weight", j);
    for (int i = 0; i < 5; i++) {
        near(d[35 + i], 0, 0, 0, "bias (biasbn)", i);
        near(d[112 + i], 0, 0, 0, "norm (biasbn)", i);
        near(d2[35 + i], w[35 + i], 0, 0, "bias (none)", i);
        near(d2[112 + i], w[112 + i], 0, 0, "norm (none)", i);
    }
    for (int i = 0; i < 35; i++)
        near(d2[i], d[i], 0, 0, "weights unaffected by ignore", i);
}

/* ------------------------------------ the lincomb kernel: a parabola */

/* The failure policy of the run-by-run analyses (ana_for_each_run): a
 * diverged run and a selector whose run did not finish are recorded as
 * skipped; a run whose computation fails is recorded as failed and the
 * others are still computed; the result is the first failure. */
typedef struct fe_log {
    char seen[256];
    char skipped[512];
} fe_log;

static bsc_status fe_each(void *user, const bsc_run_result *r)
{
    fe_log *l = user;
    strcat(l->seen, r->name);
    strcat(l->seen, " ");
    if (strcmp(r->name, "bad") == 0)
        return bsc_fail(BSC_ERR_INTERNAL, "power iteration: v.Hv is nan");
    return BSC_OK;
}

static bsc_status fe_skip(void *user, const char *run, size_t bs, const char *why)
{
    fe_log *l = user;
    char line[200];
    snprintf(line, sizeof line, "%s/%zu=%s|", run, bs, why);
    strcat(l->skipped, line);
    return BSC_OK;
}

static void test_for_each_run_policy(void **state)
{
    (void)state;
    bsc_run_result a = {"bs8", 8, "d", "completed", NULL, NULL, NULL};
    bsc_run_result bad = {"bad", 16, "d", "completed", NULL, NULL, NULL};
    bsc_run_result div = {"big", 64, "d", "diverged", NULL, NULL, NULL};
    bsc_run_result c = {"bs48", 48, "d", "completed", NULL, NULL, NULL};
    const bsc_run_result *runs[] = {&a, &bad, &div, &c};
    bsc_study st = {.runs = runs, .n_runs = 4};
    fe_log l = {"", ""};
    bsc_status s = ana_for_each_run(&st, NULL, 0, "hessian", fe_each, fe_skip, &l);
    assert_int_equal(s, BSC_ERR_INTERNAL);
    assert_string_equal(bsc_last_error(), "hessian of run bad: power iteration: v.Hv is nan");
    assert_string_equal(l.seen, "bs8 bad bs48 ");
    assert_string_equal(l.skipped, "bad/16=failed: hessian of run bad: power iteration: v.Hv "
                                   "is nan|big/64=skipped: diverged|");
    /* by selector: a run that did not finish (not among the finished) */
    bsc_node *sel = NULL;
    assert_int_equal(bsc_node_parse_string("sel.yaml", "[8, 512, big]", &sel), BSC_OK);
    const bsc_node *sels[] = {sel->items[0], sel->items[1], sel->items[2]};
    fe_log m = {"", ""};
    assert_int_equal(ana_for_each_run(&st, sels, 3, "sharpness", fe_each, fe_skip, &m), BSC_OK);
    assert_string_equal(m.seen, "bs8 ");
    assert_string_equal(m.skipped, "512/512=skipped: run 512 did not finish|"
                                   "big/64=skipped: diverged|");
    bsc_node_free(sel);
}

/* A table packed and unpacked: numbers bit for bit (CSV keeps %.9g),
 * strings, empty cells and NaN apart; columns matched by name. */
static void test_table_pack_round_trip(void **state)
{
    (void)state;
    bsc_table *a = NULL, *b = NULL;
    bsc_metrics_row row;
    void *bytes = NULL;
    size_t len = 0, used = 0;
    assert_int_equal(bsc_table_new(&a), BSC_OK);
    assert_int_equal(bsc_table_add_row(a, &row), BSC_OK);
    assert_int_equal(bsc_metrics_set(&row, "x", 0.1 + 0.2), BSC_OK);
    assert_int_equal(bsc_metrics_set_str(&row, "s", "ok, fine"), BSC_OK);
    assert_int_equal(bsc_table_add_row(a, &row), BSC_OK);
    assert_int_equal(bsc_metrics_set(&row, "x", NAN), BSC_OK);   /* s empty */
    assert_int_equal(bsc_table_pack(a, 0, &bytes, &len), BSC_OK);
    assert_int_equal(bsc_table_new(&b), BSC_OK);
    assert_int_equal(bsc_table_column(b, "s"), BSC_OK);          /* another order */
    assert_int_equal(bsc_table_unpack(b, bytes, len, &used), BSC_OK);
    assert_int_equal(used, len);
    assert_int_equal(bsc_table_n_rows(b), 2);
    assert_true(bsc_table_get(b, 0, 1) == 0.1 + 0.2);
    assert_string_equal(bsc_table_get_str(b, 0, 0), "ok, fine");
    assert_true(isnan(bsc_table_get(b, 1, 1)));
    assert_null(bsc_table_get_str(b, 1, 0));
    /* Truncated bytes are an error, not rows made up. */
    bsc_table *c = NULL;
    assert_int_equal(bsc_table_new(&c), BSC_OK);
    assert_int_equal(bsc_table_unpack(c, bytes, len - 3, NULL), BSC_ERR_DATA);
    assert_int_equal(bsc_table_unpack(c, bytes, 3, NULL), BSC_ERR_DATA);
    free(bytes);
    bsc_table_free(a);
    bsc_table_free(b);
    bsc_table_free(c);
}

/* Units of rows (rows.c): items computed in any order and merged give the
 * table in the plan's order, a skipped item's row in its place, and an item
 * that failed recorded as failed while the others are kept; the result is
 * the first failure. */
static bsc_status rows_fn(void *user, const ana_slot *it, bsc_table *const *t)
{
    (void)user;
    if (!strcmp(it->name, "bad"))
        return bsc_fail(BSC_ERR_INTERNAL, "v.Hv is nan");
    bsc_metrics_row row;
    bsc_status s;
    if ((s = bsc_table_add_row(t[0], &row)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_RUN, it->name)) != BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_EPS, (double)it->a / 3)) != BSC_OK)
        return s;
    return bsc_metrics_set_str(&row, BSC_COL_STATUS, BSC_ROW_OK);
}

static void test_rows_units(void **state)
{
    (void)state;
    ana_rows p = {.n_tables = 1};
    assert_int_equal(ana_rows_add(&p, "bs8", 8, "sharpness of run bs8", NULL, 1, 0), BSC_OK);
    assert_int_equal(ana_rows_add(&p, "bs8", 8, "sharpness of run bs8", NULL, 2, 0), BSC_OK);
    assert_int_equal(ana_rows_skip(&p, "big", 64, "skipped: diverged", BSC_OK), BSC_OK);
    assert_int_equal(ana_rows_add(&p, "bad", 16, "sharpness of run bad", NULL, 1, 0), BSC_OK);
    assert_int_equal(ana_rows_add(&p, "bs48", 48, "sharpness of run bs48", NULL, 1, 0), BSC_OK);
    assert_int_equal(p.n_units, 4);
    /* run in reverse, merged in order (as rank 0 does) */
    void *data[4];
    size_t len[4];
    for (size_t u = 4; u-- > 0;)
        assert_int_equal(ana_rows_run(&p, u, rows_fn, NULL, &data[u], &len[u]), BSC_OK);
    for (size_t u = 0; u < 4; u++) {
        assert_int_equal(ana_rows_merge(&p, u, data[u], len[u]), BSC_OK);
        free(data[u]);
    }
    bsc_table *t = NULL;
    bsc_status failure;
    char *msg = NULL;
    assert_int_equal(bsc_table_new(&t), BSC_OK);
    assert_int_equal(ana_rows_finish(&p, &t, &failure, &msg), BSC_OK);
    assert_int_equal(failure, BSC_ERR_INTERNAL);
    assert_string_equal(msg, "sharpness of run bad: v.Hv is nan");
    assert_int_equal(bsc_table_n_rows(t), 5);
    long run = bsc_table_find(t, BSC_COL_RUN), st = bsc_table_find(t, BSC_COL_STATUS),
         eps = bsc_table_find(t, BSC_COL_EPS), bs = bsc_table_find(t, BSC_COL_BATCH_SIZE);
    static const char *const runs[] = {"bs8", "bs8", "big", "bad", "bs48"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(bsc_table_get_str(t, i, (size_t)run), runs[i]);
    assert_true(bsc_table_get(t, 1, (size_t)eps) == 2.0 / 3);
    assert_string_equal(bsc_table_get_str(t, 2, (size_t)st), "skipped: diverged");
    assert_true(bsc_table_get(t, 2, (size_t)bs) == 64);
    assert_string_equal(bsc_table_get_str(t, 3, (size_t)st),
                        "failed: sharpness of run bad: v.Hv is nan");
    assert_string_equal(bsc_table_get_str(t, 4, (size_t)st), BSC_ROW_OK);
    /* A unit not merged is the host's error, not a table with a hole. */
    ana_rows q = {.n_tables = 1};
    assert_int_equal(ana_rows_add(&q, "bs8", 8, "hessian of run bs8", NULL, 0, 0), BSC_OK);
    bsc_table *u = NULL;
    free(msg);
    assert_int_equal(bsc_table_new(&u), BSC_OK);
    assert_int_equal(ana_rows_finish(&q, &u, &failure, &msg), BSC_ERR_INTERNAL);
    free(msg);
    bsc_table_free(t);
    bsc_table_free(u);
    ana_rows_clear(&p);
    ana_rows_clear(&q);
}

static void test_interpolation_parabola(void **state)
{
    (void)state;
    bsc_context *ctx = NULL;
    if (tu_context_open(&ctx) != BSC_OK)
        fail_msg("no OpenCL device: %s", bsc_last_error());
    enum { N = 1000 };
    static float a[N], b[N], th[N];
    double h[N];
    for (int i = 0; i < N; i++) {
        a[i] = (float)sin(0.37 * i);
        b[i] = (float)cos(0.11 * i) * 0.5f;
        h[i] = 0.1 + (i % 13) * 0.3;
    }
    bsc_tensor ta, tb, tt;
    CHECK(ana_vec_alloc(ctx, N, &ta));
    CHECK(ana_vec_alloc(ctx, N, &tb));
    CHECK(ana_vec_alloc(ctx, N, &tt));
    CHECK(bsc_tensor_write(ctx, &ta, a));
    CHECK(bsc_tensor_write(ctx, &tb, b));
    /* q(alpha) = 1/2 (A + alpha D)^T H (A + alpha D) = q0 + q1 alpha + q2 alpha^2 */
    double q0 = 0, q1 = 0, q2 = 0;
    for (int i = 0; i < N; i++) {
        double dd = (double)b[i] - a[i];
        q0 += 0.5 * h[i] * a[i] * a[i];
        q1 += h[i] * a[i] * dd;
        q2 += 0.5 * h[i] * dd * dd;
    }
    for (int k = 0; k <= 12; k++) {
        double alpha = ana_linspace(-1, 2, 13, k);
        CHECK(bsc_tensor_combine(ctx, N, (float)(1 - alpha), &ta, (float)alpha, &tb, 0, NULL,
                                 &tt));
        CHECK(bsc_tensor_read(ctx, &tt, th));
        double q = 0;
        for (int i = 0; i < N; i++)
            q += 0.5 * h[i] * th[i] * th[i];
        near(q, q0 + q1 * alpha + q2 * alpha * alpha, 1e-6, 0, "parabola", k);
        if (k == 4)
            assert_memory_equal(th, a, sizeof a);   /* alpha = 0: A exactly */
        if (k == 8)
            assert_memory_equal(th, b, sizeof b);   /* alpha = 1: B exactly */
    }
    bsc_tensor_free(&ta);
    bsc_tensor_free(&tb);
    bsc_tensor_free(&tt);
    bsc_context_free(ctx);
}

/* ------------------------------------- end to end: linear softmax */

enum { NX = 48, F = 4, K = 3, NP = K * F + K };

static uint8_t pix[NX * F], lab[NX];

static void write_dataset(const char *dir)
{
    uint64_t st = 99;
    for (int n = 0; n < NX; n++) {
        lab[n] = (uint8_t)(n % K);
        for (int j = 0; j < F; j++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            /* class-dependent means plus noise: learnable, not separable */
            int v = (int)((st >> 33) % 120) + (j == lab[n] ? 100 : 20);
            pix[n * F + j] = (uint8_t)v;
        }
    }
    char *pi = bsc_strdup_printf("%s/img", dir), *pl = bsc_strdup_printf("%s/lbl", dir);
    tu_write_idx(pi, pl, NX, 2, 2, pix, lab);
    free(pi);
    free(pl);
}

static double xval(int n, int j)
{
    return j < F ? (double)((float)pix[n * F + j] / 255.0f) : 1.0;
}

/* theta = [W (K x F row-major), b (K)] as the model lays it out. */
static double host_loss(const double *th, double *acc)
{
    double L = 0;
    int right = 0;
    for (int n = 0; n < NX; n++) {
        double z[K], m = -INFINITY, s = 0;
        int arg = 0;
        for (int k = 0; k < K; k++) {
            z[k] = th[K * F + k];
            for (int j = 0; j < F; j++)
                z[k] += th[k * F + j] * xval(n, j);
            if (z[k] > m)
                m = z[k], arg = k;
        }
        for (int k = 0; k < K; k++)
            s += exp(z[k] - m);
        L += m + log(s) - z[lab[n]];
        right += arg == lab[n];
    }
    if (acc)
        *acc = (double)right / NX;
    return L / NX;
}

static void host_hessian(const double *th, double H[NP][NP])
{
    memset(H, 0, sizeof(double) * NP * NP);
    for (int n = 0; n < NX; n++) {
        double z[K], p[K], m = -INFINITY, s = 0;
        for (int k = 0; k < K; k++) {
            z[k] = th[K * F + k];
            for (int j = 0; j < F; j++)
                z[k] += th[k * F + j] * xval(n, j);
            m = fmax(m, z[k]);
        }
        for (int k = 0; k < K; k++)
            s += (p[k] = exp(z[k] - m));
        for (int k = 0; k < K; k++)
            p[k] /= s;
        /* parameter (k, j): j < F weight k*F+j, j == F bias K*F+k */
        for (int k = 0; k < K; k++)
            for (int j = 0; j <= F; j++)
                for (int k2 = 0; k2 < K; k2++)
                    for (int j2 = 0; j2 <= F; j2++) {
                        int a = j < F ? k * F + j : K * F + k;
                        int b = j2 < F ? k2 * F + j2 : K * F + k2;
                        double c = (k == k2 ? p[k] : 0.0) - p[k] * p[k2];
                        H[a][b] += c * xval(n, j) * xval(n, j2) / NX;
                    }
    }
}

/* Eigenvalues of a symmetric matrix by cyclic Jacobi rotations, sorted by
 * decreasing magnitude. */
static void jacobi_eigen(double A[NP][NP], double *ev)
{
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < NP; i++)
            for (int j = i + 1; j < NP; j++)
                off += A[i][j] * A[i][j];
        if (off < 1e-30)
            break;
        for (int p = 0; p < NP; p++)
            for (int q = p + 1; q < NP; q++) {
                if (fabs(A[p][q]) < 1e-300)
                    continue;
                double theta = (A[q][q] - A[p][p]) / (2 * A[p][q]);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < NP; k++) {
                    double akp = A[k][p], akq = A[k][q];
                    A[k][p] = c * akp - s * akq;
                    A[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < NP; k++) {
                    double apk = A[p][k], aqk = A[q][k];
                    A[p][k] = c * apk - s * aqk;
                    A[q][k] = s * apk + c * aqk;
                }
            }
    }
    for (int i = 0; i < NP; i++)
        ev[i] = A[i][i];
    for (int i = 0; i < NP; i++)
        for (int j = i + 1; j < NP; j++)
            if (fabs(ev[j]) > fabs(ev[i])) {
                double t = ev[i];
                ev[i] = ev[j];
                ev[j] = t;
            }
}

static void read_params(const char *path, double *th)
{
    bsc_safetensors *f = NULL;
    float w[K * F], b[K];
    CHECK(bsc_safetensors_open(path, &f));
    CHECK(bsc_safetensors_read(f, "1.weight", w, K * F));
    CHECK(bsc_safetensors_read(f, "1.bias", b, K));
    bsc_safetensors_close(f);
    for (int i = 0; i < K * F; i++)
        th[i] = w[i];
    for (int k = 0; k < K; k++)
        th[K * F + k] = b[k];
}

static bsc_table *csv(const char *out, const char *name)
{
    char *p = bsc_strdup_printf("%s/analyses/%s", out, name);
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

static const char *PIPELINE =
    "version: 1\nname: ana\nseed: 5\n"
    "dataset:\n  format: idx\n  train: {images: img, labels: lbl}\n"
    "  test: {images: img, labels: lbl}\n  normalize: false\n  n_classes: 3\n"
    "model:\n  - {type: flatten}\n  - {type: dense, units: 3}\n"
    "loss: softmax_cross_entropy\n"
    "training:\n  epochs: 4\n  batch_sizes: [8, 48]\n"
    "  optimizer: {type: sgd, lr: 0.5}\n  eval_batch_size: 48\n"
    "analyses:\n"
    "  - {type: interpolate, points: 7}\n"
    "  - {type: interpolate, points: 7, output: paths.csv,\n"
    "     from_path: out/runs/bs8/final.safetensors, to_path: out/runs/bs48/final.safetensors}\n"
    "  - {type: surface, x: [-1, 1, 3], y: [-0.5, 0.5, 3], orthogonalize: true}\n"
    "  - {type: surface, dims: 1, x: [-1, 1, 5], ignore: none, runs: [48]}\n"
    "  - {type: sharpness, eps: [1e-3, 1e-2], p: 5}\n"
    "  - {type: hessian, top_k: 2, tol: 1e-9, max_iter: 500, trace_samples: 6}\n"
    "  - {type: surface, plane: [8, 48, init], x: [0, 1, 2], y: [0, 1, 2]}\n";

static void test_linear_softmax_end_to_end(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("ana");
    write_dataset(dir);
    char *yaml = bsc_strdup_printf("%s/ana.yaml", dir), *out = bsc_strdup_printf("%s/out", dir);
    CHECK(bsc_write_file_atomic(yaml, PIPELINE, strlen(PIPELINE)));
    FILE *devnull = fopen("/dev/null", "w");
    bsc_run_options o = {0};
    o.device = tu_device();
    o.pipeline_path = yaml;
    o.out_dir = out;
    o.quiet = 1;
    o.log = devnull;
    bsc_status s = bsc_study_run(&o);
    fclose(devnull);
    if (s != BSC_OK)
        fail_msg("study: %s: %s", bsc_status_name(s), bsc_last_error());

    double A[NP], B[NP], th[NP], acc;
    char *pa = bsc_strdup_printf("%s/runs/bs8/final.safetensors", out);
    char *pb = bsc_strdup_printf("%s/runs/bs48/final.safetensors", out);
    read_params(pa, A);
    read_params(pb, B);

    /* interpolation: CE of (1-a)A + aB recomputed in double */
    bsc_table *t = csv(out, "interpolate_bs8_bs48.csv");
    assert_int_equal(bsc_table_n_rows(t), 7);
    for (size_t r = 0; r < 7; r++) {
        double alpha = cell(t, r, "alpha");
        near(alpha, -1 + 0.5 * (double)r, 0, 1e-12, "alpha", (int)r);
        for (int i = 0; i < NP; i++)
            th[i] = (double)(float)((float)(1 - alpha) * (float)A[i] + (float)alpha * (float)B[i]);
        double L = host_loss(th, &acc);
        near(cell(t, r, "train_loss"), L, 2e-5, 1e-6, "interpolated train loss", (int)r);
        near(cell(t, r, "test_loss"), L, 2e-5, 1e-6, "interpolated test loss", (int)r);
        near(cell(t, r, "train_acc"), acc, 0, 1e-9, "interpolated accuracy", (int)r);
    }
    /* between the same two checkpoints given by path: the same numbers */
    bsc_table *tp = csv(out, "paths.csv");
    assert_int_equal(bsc_table_n_rows(tp), 7);
    for (size_t r = 0; r < 7; r++)
        for (size_t c = 0; c < bsc_table_n_cols(t); c++)
            near(bsc_table_get(tp, r, c), bsc_table_get(t, r, c), 0, 0, "by path", (int)r);
    bsc_table_free(tp);
    bsc_table_free(t);

    /* surface: the saved directions are filter-normalized against B's rows,
     * zero on the bias, d2 orthogonal to d1; the grid is theta* + x d1 + y d2 */
    char *px = bsc_strdup_printf("%s/analyses/surface_bs48_x.safetensors", out);
    char *py = bsc_strdup_printf("%s/analyses/surface_bs48_y.safetensors", out);
    double dx[NP], dy[NP];
    read_params(px, dx);
    read_params(py, dy);
    double dot = 0, n1 = 0;
    for (int k = 0; k < K; k++) {
        double wn = 0, dn = 0;
        for (int j = 0; j < F; j++) {
            wn += B[k * F + j] * B[k * F + j];
            dn += dx[k * F + j] * dx[k * F + j];
        }
        near(sqrt(dn), sqrt(wn), 1e-5, 0, "surface direction row norm", k);
        near(dx[K * F + k], 0, 0, 0, "surface direction bias", k);
        near(dy[K * F + k], 0, 0, 0, "surface direction bias", k);
    }
    for (int i = 0; i < NP; i++) {
        dot += dx[i] * dy[i];
        n1 += dx[i] * dx[i];
    }
    near(dot / n1, 0, 0, 1e-6, "orthogonalized", 0);
    t = csv(out, "surface_bs48.csv");
    assert_int_equal(bsc_table_n_rows(t), 9);
    for (size_t r = 0; r < 9; r++) {
        double x = cell(t, r, "x"), y = cell(t, r, "y");
        near(x, -1 + (double)(r % 3), 0, 1e-12, "x", (int)r);
        near(y, -0.5 + 0.5 * (double)(r / 3), 0, 1e-12, "y", (int)r);
        for (int i = 0; i < NP; i++)
            th[i] = B[i] + x * dx[i] + y * dy[i];
        double L = host_loss(th, &acc);
        near(cell(t, r, "loss"), L, 2e-5, 1e-6, "surface loss", (int)r);
    }
    bsc_table_free(t);
    /* 1-D with ignore: none: the bias direction is the bias itself */
    free(px);
    px = bsc_strdup_printf("%s/analyses/surface1d_bs48_x.safetensors", out);
    read_params(px, dx);
    for (int k = 0; k < K; k++)
        near(dx[K * F + k], B[K * F + k], 0, 0, "ignore none bias", k);
    t = csv(out, "surface1d_bs48.csv");
    assert_int_equal(bsc_table_n_rows(t), 5);
    assert_true(bsc_table_find(t, "y") < 0);
    for (size_t r = 0; r < 5; r++) {
        double x = cell(t, r, "x");
        for (int i = 0; i < NP; i++)
            th[i] = B[i] + x * dx[i];
        near(cell(t, r, "loss"), host_loss(th, NULL), 2e-5, 1e-6, "1-D loss", (int)r);
    }
    bsc_table_free(t);

    /* sharpness: f0 is the loss at the minimizer, the max is no lower, and
     * no higher than the box allows: f(x+z) <= f0 + |g.z| + 1/2 lmax |z|^2 */
    t = csv(out, "sharpness.csv");
    assert_int_equal(bsc_table_n_rows(t), 8);   /* 2 runs x 2 eps x 2 variants */
    for (size_t r = 0; r < 8; r++) {
        const double *X = cell(t, r, "batch_size") == 8 ? A : B;
        double f0 = host_loss(X, NULL), eps = cell(t, r, "eps");
        near(cell(t, r, "f0"), f0, 2e-5, 1e-6, "f0", (int)r);
        double fmax = cell(t, r, "fmax");
        assert_true(fmax >= cell(t, r, "f0") - 1e-7);
        near(cell(t, r, "sharpness"), 100 * (fmax - cell(t, r, "f0")) / (1 + cell(t, r, "f0")),
             1e-6, 1e-5, "phi", (int)r);
        if (strcmp(bsc_table_get_str(t, r, (size_t)bsc_table_find(t, "variant")), "full") == 0) {
            double box2 = 0;
            for (int i = 0; i < NP; i++)
                box2 += pow(eps * (fabs(X[i]) + 1), 2);
            /* |g| <= 1 + max|x| per logit, generously: f moves by at most
             * sqrt(NP) * 2 * |z| + |z|^2 */
            assert_true(fmax <= f0 + 2 * sqrt(NP) * sqrt(box2) + box2 + 1e-6);
            assert_true(cell(t, r, "iterations") <= 10);
        }
    }
    bsc_table_free(t);

    /* hessian: top-2 eigenvalues and the trace of the closed-form Hessian */
    t = csv(out, "hessian.csv");
    assert_int_equal(bsc_table_n_rows(t), 6);
    for (size_t r = 0; r < 6; r++) {
        const double *X = cell(t, r, "batch_size") == 8 ? A : B;
        double H[NP][NP], ev[NP], tr = 0;
        host_hessian(X, H);
        for (int i = 0; i < NP; i++)
            tr += H[i][i];
        jacobi_eigen(H, ev);
        const char *q = bsc_table_get_str(t, r, (size_t)bsc_table_find(t, "quantity"));
        /* dense and the loss have the R-operator: exact products, so the
         * Lanczos values agree with the closed form to float rounding */
        assert_string_equal(bsc_table_get_str(t, r, (size_t)bsc_table_find(t, "method")),
                            "exact");
        assert_string_equal(bsc_table_get_str(t, r, (size_t)bsc_table_find(t, "block")), "all");
        if (strcmp(q, "eigenvalue") == 0) {
            int k = (int)cell(t, r, "k");
            near(cell(t, r, "value"), ev[k - 1], 1e-4, 1e-6, "eigenvalue", k);
            assert_true(cell(t, r, "hv_products") <= NP);
        } else {
            double se = cell(t, r, "std_err");
            assert_true(se > 0);
            assert_true(fabs(cell(t, r, "value") - tr) <= 3 * se + 1e-5 * tr);
        }
    }
    bsc_table_free(t);
    /* the spectral density: a grid per run that integrates to one */
    t = csv(out, "hessian_density.csv");
    assert_int_equal(bsc_table_n_rows(t), 2 * 10000);
    double integral = 0;
    for (size_t r = 1; r < 10000; r++)
        integral += cell(t, r, "density") * (cell(t, r, "lambda") - cell(t, r - 1, "lambda"));
    near(integral, 1.0, 0, 1e-3, "density integral", 0);
    bsc_table_free(t);

    /* plane through bs8, bs48 and init: the points file puts them at
     * (0,0), (1,0), (c, h); the grid's (0,0) and (1,0) are the two minimizers */
    t = csv(out, "surface_plane_bs8_bs48_init_points.csv");
    assert_int_equal(bsc_table_n_rows(t), 3);
    near(cell(t, 1, "x"), 1, 0, 0, "plane P2 x", 0);
    bsc_table_free(t);
    t = csv(out, "surface_plane_bs8_bs48_init.csv");
    assert_int_equal(bsc_table_n_rows(t), 4);
    near(cell(t, 0, "loss"), host_loss(A, NULL), 2e-5, 1e-6, "plane at P1", 0);
    near(cell(t, 1, "loss"), host_loss(B, NULL), 2e-5, 1e-6, "plane at P2", 0);
    bsc_table_free(t);

    free(pa);
    free(pb);
    free(px);
    free(py);
    free(yaml);
    free(out);
    tu_rm_rf(dir);
    free(dir);
}

/* Named runs (training.runs): options select runs by batch size (unquoted
 * 48: the run bs48) or by name (b48-fast, or "48" quoted: the run named
 * 48, whatever its batch size); files are named by run and per-run rows
 * carry the name. */
static const char *NAMED_PIPELINE =
    "version: 1\nname: named\nseed: 5\n"
    "dataset:\n  format: idx\n  train: {images: img, labels: lbl}\n"
    "  test: {images: img, labels: lbl}\n  normalize: false\n  n_classes: 3\n"
    "model:\n  - {type: flatten}\n  - {type: dense, units: 3}\n"
    "loss: softmax_cross_entropy\n"
    "training:\n  epochs: 2\n  batch_sizes: [48]\n"
    "  optimizer: {type: sgd, lr: 0.5}\n  eval_batch_size: 48\n"
    "  runs:\n"
    "    - {name: b48-fast, batch_size: 48, lr: 1.0}\n"
    "    - {name: \"48\", batch_size: 8}\n"
    "analyses:\n"
    "  - {type: interpolate, to: b48-fast, points: 3, range: [0, 1]}\n"
    "  - {type: interpolate, from: b48-fast, to: \"48\", points: 3, range: [0, 1]}\n"
    "  - {type: surface, runs: [b48-fast], x: [-1, 1, 3], y: [-1, 1, 3]}\n"
    "  - {type: surface, dims: 1, runs: 48, x: [-1, 1, 3]}\n"
    "  - {type: sharpness, runs: [b48-fast, 48, \"48\"], variants: [full], max_iter: 1}\n"
    "  - {type: hessian, top_k: 1, max_iter: 5, trace_samples: 0, method: fd}\n"
    "  - {type: surface, plane: [48, b48-fast, init], x: [0, 1, 2], y: [0, 1, 2]}\n";

/* The run column of a row: a name, or a name of digits read back as a number. */
static void run_is(const bsc_table *t, size_t row, const char *name)
{
    long c = bsc_table_find(t, "run");
    if (c < 0)
        fail_msg("no run column");
    const char *v = bsc_table_get_str(t, row, (size_t)c);
    char buf[32];
    if (!v) {
        snprintf(buf, sizeof buf, "%.0f", bsc_table_get(t, row, (size_t)c));
        v = buf;
    }
    if (strcmp(v, name) != 0)
        fail_msg("row %zu: run '%s', expected '%s'", row, v, name);
}

static char *run_named_study(const char *dir, const char *text, bsc_status *st)
{
    char *yaml = bsc_strdup_printf("%s/named.yaml", dir), *out = bsc_strdup_printf("%s/out", dir);
    CHECK(bsc_write_file_atomic(yaml, text, strlen(text)));
    FILE *devnull = fopen("/dev/null", "w");
    bsc_run_options o = {0};
    o.device = tu_device();
    o.pipeline_path = yaml;
    o.out_dir = out;
    o.quiet = 1;
    o.log = devnull;
    *st = bsc_study_run(&o);
    fclose(devnull);
    free(yaml);
    return out;
}

/* A model whose first layer is shared by surfaces and interpolation (dense
 * before a ReLU, which the combine applies, and a second dense), evaluated
 * in three batches: every analysis' numbers with the first layer's
 * products computed once equal those of the plain evaluation at every
 * point, to 1e-5 relative, and the log says which path each took. On the
 * host BLAS both run on host row blocks (host_rows.c): each is also run
 * with blocks of 7 rows (three to a batch of 20, the last one short; the
 * evaluator's own full-set losses too) and with the path turned off, and
 * every variant is compared with the plain evaluation on the kernels. */
static const char *SHARED_PIPELINE =
    "version: 1\nname: shared\nseed: 7\n"
    "dataset:\n  format: idx\n  train: {images: img, labels: lbl}\n"
    "  test: {images: img, labels: lbl}\n  normalize: false\n  n_classes: 3\n"
    "model:\n  - {type: flatten}\n  - {type: dense, units: 8}\n  - {type: relu}\n"
    "  - {type: dense, units: 3}\n"
    "loss: softmax_cross_entropy\n"
    "training:\n  epochs: 3\n  batch_sizes: [8, 48]\n"
    "  optimizer: {type: sgd, lr: 0.05}\n  eval_batch_size: 20\n"
    "analyses:\n"
    "  - {type: interpolate, points: 7}\n"
    "  - {type: surface, x: [-1, 1, 3], y: [-0.5, 0.5, 3]}\n"
    "  - {type: surface, dims: 1, x: [-1, 1, 5], runs: [48]}\n"
    "  - {type: surface, plane: [8, 48, init], x: [0, 1, 2], y: [0, 1, 2]}\n";

static char *run_logged(const char *dir, const char *out_name, char **log)
{
    char *yaml = bsc_strdup_printf("%s/shared.yaml", dir);
    char *out = bsc_strdup_printf("%s/%s", dir, out_name);
    char *logp = bsc_strdup_printf("%s/%s.log", dir, out_name);
    CHECK(bsc_write_file_atomic(yaml, SHARED_PIPELINE, strlen(SHARED_PIPELINE)));
    FILE *lf = fopen(logp, "w");
    assert_non_null(lf);
    bsc_run_options o = {0};
    o.device = tu_device();
    o.pipeline_path = yaml;
    o.out_dir = out;
    o.log = lf;
    bsc_status s = bsc_study_run(&o);
    fclose(lf);
    if (s != BSC_OK)
        fail_msg("study: %s", bsc_last_error());
    *log = tu_read(logp, NULL);
    free(yaml);
    free(logp);
    return out;
}

/* A study run with $BATCHSCOPE_SHARED_LAYER_BYTES and $BATCHSCOPE_HOST_ROWS
 * set for it (NULL: unset). */
static char *run_variant(const char *dir, const char *out_name, const char *shared_bytes,
                         const char *host_rows, char **log)
{
    if (shared_bytes)
        setenv("BATCHSCOPE_SHARED_LAYER_BYTES", shared_bytes, 1);
    if (host_rows)
        setenv("BATCHSCOPE_HOST_ROWS", host_rows, 1);
    char *out = run_logged(dir, out_name, log);
    unsetenv("BATCHSCOPE_SHARED_LAYER_BYTES");
    unsetenv("BATCHSCOPE_HOST_ROWS");
    return out;
}

static void test_shared_first_layer_equals_plain(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("shared");
    write_dataset(dir);
    bsc_context *ctx = NULL;
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    int rows = bsc_gemm_active(ctx) == BSC_GEMM_HOST;
    bsc_context_free(ctx);
    enum { SHARED, SHARED_7, SHARED_KERNELS, PLAIN, PLAIN_7, PLAIN_KERNELS, N_VARIANTS };
    static const char *const names[] = {"shared", "shared7", "shared_kernels", "plain",
                                        "plain7", "plain_kernels"};
    static const char *const bytes[] = {NULL, NULL, NULL, "1", "1", "1"};
    static const char *const host_rows[] = {NULL, "7", "0", NULL, "7", "0"};
    char *out[N_VARIANTS], *log[N_VARIANTS];
    for (int v = 0; v < N_VARIANTS; v++)
        out[v] = run_variant(dir, names[v], bytes[v], host_rows[v], &log[v]);
    for (int v = SHARED; v <= SHARED_KERNELS; v++) {
        assert_non_null(strstr(log[v], "surface_bs48: shared first layer"));
        assert_non_null(strstr(log[v], "the ReLU after it in the same pass"));
        assert_non_null(strstr(log[v], "interpolate_bs8_bs48.csv: shared first layer"));
        assert_null(strstr(log[v], "plain evaluation"));
        /* The blocks' size is the family's: 7 rows when told, else all of
         * a 20-row batch in one. */
        const char *blocks = v == SHARED_7 ? "the rest in blocks of 7 rows on the host threads"
                                           : "the rest in blocks of";
        if (rows && v != SHARED_KERNELS)
            assert_non_null(strstr(log[v], blocks));
        else
            assert_null(strstr(log[v], "the rest in blocks of"));
    }
    for (int v = PLAIN; v <= PLAIN_KERNELS; v++) {
        assert_non_null(strstr(log[v], "surface_bs48: plain evaluation at every point: its "
                                       "products need"));
        assert_null(strstr(log[v], "shared first layer"));
    }
    const char *files[] = {"interpolate_bs8_bs48.csv", "surface_bs48.csv", "surface_bs8.csv",
                           "surface1d_bs48.csv", "surface_plane_bs8_bs48_init.csv"};
    const char *cols[] = {"train_loss", "test_loss", "loss", "accuracy", "train_acc"};
    for (int v = 0; v < PLAIN_KERNELS; v++)
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            bsc_table *a = csv(out[v], files[i]), *b = csv(out[PLAIN_KERNELS], files[i]);
            assert_int_equal(bsc_table_n_rows(a), bsc_table_n_rows(b));
            int compared = 0;
            for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) {
                long ca = bsc_table_find(a, cols[c]);
                if (ca < 0)
                    continue;
                compared++;
                char what[160];
                snprintf(what, sizeof what, "%s %s", names[v], files[i]);
                for (size_t r = 0; r < bsc_table_n_rows(a); r++)
                    near(bsc_table_get(a, r, (size_t)ca), cell(b, r, cols[c]), 1e-5, 1e-7,
                         what, (int)r);
            }
            assert_true(compared >= 2);
            bsc_table_free(a);
            bsc_table_free(b);
        }
    for (int v = 0; v < N_VARIANTS; v++)
        free(log[v]), free(out[v]);
    tu_rm_rf(dir);
    free(dir);
}

static void test_named_runs(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("ana");
    write_dataset(dir);
    bsc_status s;
    char *out = run_named_study(dir, NAMED_PIPELINE, &s);
    if (s != BSC_OK)
        fail_msg("study: %s: %s", bsc_status_name(s), bsc_last_error());
    double P48[NP], Pfast[NP], Pq[NP];
    static const char *const finals[] = {"bs48", "b48-fast", "48"};
    double *ps[] = {P48, Pfast, Pq};
    for (int i = 0; i < 3; i++) {
        char *p = bsc_strdup_printf("%s/runs/%s/final.safetensors", out, finals[i]);
        read_params(p, ps[i]);
        free(p);
    }
    /* default A: the first run of the smallest batch size, the run "48" */
    bsc_table *t = csv(out, "interpolate_48_b48-fast.csv");
    assert_int_equal(bsc_table_n_rows(t), 3);
    near(cell(t, 1, "alpha"), 0.5, 0, 1e-12, "alpha", 1);
    near(cell(t, 0, "train_loss"), host_loss(Pq, NULL), 2e-5, 1e-6, "A end", 0);
    near(cell(t, 2, "train_loss"), host_loss(Pfast, NULL), 2e-5, 1e-6, "B end", 0);
    bsc_table_free(t);
    t = csv(out, "interpolate_b48-fast_48.csv");
    near(cell(t, 0, "train_loss"), host_loss(Pfast, NULL), 2e-5, 1e-6, "A end", 1);
    near(cell(t, 2, "train_loss"), host_loss(Pq, NULL), 2e-5, 1e-6, "B end", 1);
    bsc_table_free(t);
    /* surfaces by run name; the centre of the grid is the run's minimizer */
    t = csv(out, "surface_b48-fast.csv");
    assert_int_equal(bsc_table_n_rows(t), 9);
    near(cell(t, 4, "loss"), host_loss(Pfast, NULL), 2e-5, 1e-6, "surface centre", 0);
    bsc_table_free(t);
    static const char *const files[] = {"surface_b48-fast_x.safetensors",
                                        "surface_b48-fast_y.safetensors", "surface1d_bs48.csv",
                                        "surface_plane_bs48_b48-fast_init.csv",
                                        "surface_plane_bs48_b48-fast_init_points.csv"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *p = bsc_strdup_printf("%s/analyses/%s", out, files[i]);
        if (!bsc_path_exists(p))
            fail_msg("%s missing", files[i]);
        free(p);
    }
    t = csv(out, "surface1d_bs48.csv");
    near(cell(t, 1, "loss"), host_loss(P48, NULL), 2e-5, 1e-6, "1-D centre", 0);
    bsc_table_free(t);
    t = csv(out, "surface_plane_bs48_b48-fast_init.csv");
    near(cell(t, 0, "loss"), host_loss(P48, NULL), 2e-5, 1e-6, "plane at P1", 0);
    near(cell(t, 1, "loss"), host_loss(Pfast, NULL), 2e-5, 1e-6, "plane at P2", 0);
    bsc_table_free(t);
    /* rows per run: in the order asked for, named, with their batch sizes */
    t = csv(out, "sharpness.csv");
    assert_string_equal(bsc_table_col_name(t, 0), "run");
    assert_int_equal(bsc_table_n_rows(t), 3);
    run_is(t, 0, "b48-fast");
    run_is(t, 1, "bs48");
    run_is(t, 2, "48");
    near(cell(t, 2, "batch_size"), 8, 0, 0, "batch size", 2);
    near(cell(t, 0, "f0"), host_loss(Pfast, NULL), 2e-5, 1e-6, "f0", 0);
    near(cell(t, 2, "f0"), host_loss(Pq, NULL), 2e-5, 1e-6, "f0", 2);
    bsc_table_free(t);
    t = csv(out, "hessian.csv");
    assert_string_equal(bsc_table_col_name(t, 0), "run");
    assert_int_equal(bsc_table_n_rows(t), 3);   /* every run, in study order */
    run_is(t, 0, "bs48");
    run_is(t, 1, "b48-fast");
    run_is(t, 2, "48");
    near(cell(t, 1, "batch_size"), 48, 0, 0, "batch size", 1);
    /* method: fd asked for finite differences; each row says so */
    for (size_t r = 0; r < 3; r++)
        assert_string_equal(bsc_table_get_str(t, r, (size_t)bsc_table_find(t, "method")), "fd");
    bsc_table_free(t);
    free(out);
    tu_rm_rf(dir);
    free(dir);

    /* a name the study does not have: an error at the name, before training */
    dir = tu_tmpdir("ana");
    write_dataset(dir);
    char *bad = strdup(NAMED_PIPELINE);
    char *at = strstr(bad, "to: b48-fast");
    memcpy(at, "to: b48-slow", 12);
    out = run_named_study(dir, bad, &s);
    assert_int_equal(s, BSC_ERR_INVALID);
    if (!strstr(bsc_last_error(), "named.yaml:23:29: to: no run b48-slow in this study"))
        fail_msg("unexpected error: %s", bsc_last_error());
    assert_false(bsc_path_exists(out));
    free(bad);
    free(out);
    tu_rm_rf(dir);
    free(dir);
}

/* A surface interrupted by Ctrl-C in the middle of its grid and resumed
 * with `batchscope run --resume` equals the same surface computed in one go,
 * through the real command: SIGINT is sent once the partial file holds some
 * points. */
static const char *RESUME_PIPELINE =
    "version: 1\nname: resume\nseed: 5\n"
    "dataset:\n  format: idx\n  train: {images: img, labels: lbl}\n"
    "  test: {images: img, labels: lbl}\n  normalize: false\n  n_classes: 3\n"
    "model:\n  - {type: flatten}\n  - {type: dense, units: 3}\n"
    "loss: softmax_cross_entropy\n"
    "training:\n  epochs: 1\n  batch_sizes: [48]\n"
    "  optimizer: {type: sgd, lr: 0.5}\n  eval_batch_size: 48\n"
    "analyses:\n"
    "  - {type: surface, x: [-1, 1, 81], y: [-1, 1, 81]}\n";

/* Entries of a directory (0 when it does not exist yet). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* The command on yaml; with watch, SIGINT once that directory holds more
 * than interrupt_after entries. */
static int run_cli(const char *yaml, const char *flag, const char *out, const char *watch,
                   int interrupt_after)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(BSC_CLI, BSC_CLI, "run", yaml, flag, out, "-d", tu_device(), (char *)NULL);
        _exit(127);
    }
    int sent = 0;
    while (interrupt_after > 0 && !sent) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (count_entries(watch) > interrupt_after) {
            kill(pid, SIGINT);
            sent = 1;
        } else {
            usleep(2000);
        }
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Issue 12: a dataset without a test split gave NaN test metrics with no
 * word; now the study says so (even when quiet). A batch larger than the
 * training split is the whole split, not a failed allocation. */
static void test_no_test_split_warned(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("ana");
    write_dataset(dir);
    static const char *text =
        "version: 1\nname: notest\nseed: 5\n"
        "dataset:\n  format: idx\n  train: {images: img, labels: lbl}\n"
        "  test: {images: img0, labels: lbl0}\n  normalize: false\n  n_classes: 3\n"
        "model:\n  - {type: flatten}\n  - {type: dense, units: 3}\n"
        "training:\n  epochs: 1\n  batch_sizes: [1000000000]\n  eval_batch_size: 48\n";
    /* IDX files of no examples: the test split is empty */
    const uint8_t img0[16] = {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2};
    const uint8_t lbl0[8] = {0, 0, 8, 1, 0, 0, 0, 0};
    char *p0 = bsc_strdup_printf("%s/img0", dir), *p1 = bsc_strdup_printf("%s/lbl0", dir);
    CHECK(bsc_write_file_atomic(p0, img0, sizeof img0));
    CHECK(bsc_write_file_atomic(p1, lbl0, sizeof lbl0));
    free(p0);
    free(p1);
    char *yaml = bsc_strdup_printf("%s/notest.yaml", dir), *out = bsc_strdup_printf("%s/o", dir);
    CHECK(bsc_write_file_atomic(yaml, text, strlen(text)));
    FILE *log = tmpfile();
    bsc_run_options o = {0};
    o.device = tu_device();
    o.pipeline_path = yaml;
    o.out_dir = out;
    o.quiet = 1;
    o.log = log;
    bsc_status s = bsc_study_run(&o);
    if (s != BSC_OK)
        fail_msg("%s", bsc_last_error());
    rewind(log);
    char buf[4096] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, log);
    buf[n] = '\0';
    fclose(log);
    if (!strstr(buf, "warning: dataset idx has no test examples"))
        fail_msg("log: %s", buf);
    free(yaml);
    free(out);
    tu_rm_rf(dir);
    free(dir);
}

static void test_surface_interrupted_and_resumed(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("ana");
    write_dataset(dir);
    char *yaml = bsc_strdup_printf("%s/resume.yaml", dir);
    char *one = bsc_strdup_printf("%s/one", dir), *two = bsc_strdup_printf("%s/two", dir);
    /* The grid's units (rows) leave a completion record each as they end. */
    char *records = bsc_strdup_printf("%s/units/a1-surface", two);
    CHECK(bsc_write_file_atomic(yaml, RESUME_PIPELINE, strlen(RESUME_PIPELINE)));
    assert_int_equal(run_cli(yaml, "--out", one, NULL, 0), 0);
    int rc = run_cli(yaml, "--out", two, records, 2);
    /* interrupted: a nonzero exit, the finished rows kept, no CSV yet */
    assert_int_not_equal(rc, 0);
    int kept = count_entries(records);
    assert_true(kept >= 3 && kept < 81);
    char *csv2 = bsc_strdup_printf("%s/analyses/surface_bs48.csv", two);
    assert_false(bsc_path_exists(csv2));
    assert_int_equal(run_cli(yaml, "--resume", two, NULL, 0), 0);
    assert_int_equal(count_entries(records), 81);
    char *csv1 = bsc_strdup_printf("%s/analyses/surface_bs48.csv", one);
    char *a = NULL, *b = NULL;
    size_t la, lb;
    CHECK(bsc_read_file(csv1, &a, &la));
    CHECK(bsc_read_file(csv2, &b, &lb));
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    free(csv1);
    free(csv2);
    free(records);
    free(one);
    free(two);
    free(yaml);
    tu_rm_rf(dir);
    free(dir);
}

ANA_TYPES(BSC_DECLARE_TYPE_)

/* An option error names the file, line and column. */
static void test_option_errors(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"{type: interpolate, pionts: 3}", "unknown key 'pionts'"},
        {"{type: surface, x: [1, -1, 5]}", "x must be"},
        {"{type: sharpness, variants: [ful]}", "unknown variant 'ful'"},
        {"{type: hessian, top_k: 0, trace_samples: 0}", "nothing to compute"},
        {"{type: surface, plane: [8, 48]}", "three points"},
        {"{type: sharpness, runs: [8, a/b]}", "'a/b' is neither a batch size nor a run name"},
        {"{type: interpolate, from: [8]}", "a run is a batch size"},
        {"{type: hessian, runs: [0]}", "batch size 0 is not positive"},
        {"{type: surface, plane: [8, x y, init]}", "'x y' is neither"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text = bsc_strdup_printf("%s\n", bad[i][0]);
        bsc_node *n = NULL;
        CHECK(bsc_node_parse_string("opts.yaml", text, &n));
        const bsc_type *t = strstr(bad[i][0], "interpolate") ? &ana_interpolate_type
                            : strstr(bad[i][0], "surface")   ? &ana_surface_type
                            : strstr(bad[i][0], "sharpness") ? &ana_sharpness_type
                                                             : &ana_hessian_type;
        const bsc_analysis_ops *ops = t->ops;
        bsc_component_config cfg = {n, "/tmp", 1, NULL, 0};
        void *self = NULL;
        /* As the host does: the declared options first, then create(). */
        bsc_status s = bsc_type_check_options(t, n);
        if (s == BSC_OK)
            s = ops->create(&cfg, &self);
        assert_int_not_equal(s, BSC_OK);
        assert_null(self);
        if (!strstr(bsc_last_error(), bad[i][1]) || !strstr(bsc_last_error(), "opts.yaml:1:"))
            fail_msg("case %zu: message '%s' lacks '%s' or a location", i, bsc_last_error(),
                     bad[i][1]);
        bsc_node_free(n);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lbfgsb_box_maximum),
        cmocka_unit_test(test_lbfgsb_clipped_minimum),
        cmocka_unit_test(test_lbfgsb_never_leaves_box),
        cmocka_unit_test(test_linspace),
        cmocka_unit_test(test_filter_normalization),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_for_each_run_policy),
        cmocka_unit_test(test_table_pack_round_trip),
        cmocka_unit_test(test_rows_units),
        cmocka_unit_test(test_interpolation_parabola),
        cmocka_unit_test(test_linear_softmax_end_to_end),
        cmocka_unit_test(test_named_runs),
        cmocka_unit_test(test_shared_first_layer_equals_plain),
        cmocka_unit_test(test_surface_interrupted_and_resumed),
        cmocka_unit_test(test_no_test_split_warned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
