/* Curvature from Hessian-vector products alone: Lanczos with full
 * reorthogonalization for the extreme eigenvalues, and the Lanczos
 * recurrence that stochastic Lanczos quadrature (slq.c) runs from each
 * probe. Host vectors in double; the operator is a callback (the hessian
 * analysis wires it to exact or finite-difference products on the device,
 * the tests to a diagonal matrix).
 *
 * Why Lanczos and not power iteration with deflation: power iteration
 * converges at the rate lambda_2 / lambda_1 per product, each deflated
 * eigenvalue starts over, and it finds the largest MAGNITUDES (a negative
 * eigenvalue of a saddle can pass for the top one). Lanczos builds one
 * Krylov space for all of them, converges at both ends of the spectrum at
 * once with the rate of a Chebyshev polynomial, and its Ritz residual
 * |beta_m s_mj| bounds the error of each Ritz value: |theta_j - lambda| <=
 * residual for some eigenvalue lambda of H.
 *
 * Full reorthogonalization (every new vector against all earlier ones,
 * twice: "twice is enough") keeps the basis orthonormal, so no ghost copies
 * of converged eigenvalues appear. The basis is the memory bound of the
 * method (n x m numbers): it is kept in double up to
 * ANA_LANCZOS_DOUBLE_BYTES and in float32 beyond, where it limits the
 * Ritz values to ~1e-7 relative -- below the float32 rounding of the
 * device's products themselves. Coefficients are always double. */
#include "analyses.h"

#include "batchscope/rng.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double dot(size_t n, const double *a, const double *b)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Basis vector i of L: q_i . w, w -= c q_i, and storing q_i (float32 or
 * double, ana_lanczos_open decides). */
static double qdot(const ana_lanczos *L, int i, const double *w)
{
    double s = 0;
    size_t n = L->n;
    if (L->Qd) {
        const double *q = L->Qd + (size_t)i * n;
        for (size_t e = 0; e < n; e++)
            s += q[e] * w[e];
    } else {
        const float *q = L->Qf + (size_t)i * n;
        for (size_t e = 0; e < n; e++)
            s += (double)q[e] * w[e];
    }
    return s;
}

static void qaxpy(const ana_lanczos *L, int i, double c, double *w)
{
    size_t n = L->n;
    if (L->Qd) {
        const double *q = L->Qd + (size_t)i * n;
        for (size_t e = 0; e < n; e++)
            w[e] -= c * q[e];
    } else {
        const float *q = L->Qf + (size_t)i * n;
        for (size_t e = 0; e < n; e++)
            w[e] -= c * q[e];
    }
}

static void qstore(ana_lanczos *L, int i, const double *q)
{
    size_t n = L->n;
    if (L->Qd)
        memcpy(L->Qd + (size_t)i * n, q, n * sizeof *q);
    else
        for (size_t e = 0; e < n; e++)
            L->Qf[(size_t)i * n + e] = (float)q[e];
}

/* ---------------------------------------------------- tridiagonal eigen */

/* Implicit QL with Wilkinson shifts (EISPACK tql2; Numerical Recipes' tqli)
 * on d (diagonal) and e (e[i] couples i and i + 1; e[m-1] is scratch);
 * z (m x m row-major, the identity on entry) accumulates the rotations, so
 * column j ends as the eigenvector of d[j]. Returns 0 when an eigenvalue
 * did not converge in 60 sweeps (never seen on symmetric input). */
static int tql2(int m, double *d, double *e, double *z)
{
    e[m - 1] = 0.0;
    for (int l = 0; l < m; l++) {
        int iter = 0, k;
        do {
            for (k = l; k < m - 1; k++) {
                double dd = fabs(d[k]) + fabs(d[k + 1]);
                if (fabs(e[k]) <= DBL_EPSILON * dd)
                    break;
            }
            if (k == l)
                break;
            if (iter++ == 60)
                return 0;
            double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            double r = hypot(g, 1.0);
            g = d[k] - d[l] + e[l] / (g + (g >= 0 ? fabs(r) : -fabs(r)));
            double s = 1.0, c = 1.0, p = 0.0;
            int i;
            for (i = k - 1; i >= l; i--) {
                double f = s * e[i], b = c * e[i];
                e[i + 1] = (r = hypot(f, g));
                if (r == 0.0) {
                    d[i + 1] -= p;
                    e[k] = 0.0;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                d[i + 1] = g + (p = s * r);
                g = c * r - b;
                for (int q = 0; q < m; q++) {
                    f = z[q * m + i + 1];
                    z[q * m + i + 1] = s * z[q * m + i] + c * f;
                    z[q * m + i] = c * z[q * m + i] - s * f;
                }
            }
            if (r == 0.0 && i >= l)
                continue;
            d[l] -= p;
            e[l] = g;
            e[k] = 0.0;
        } while (1);
    }
    return 1;
}

bsc_status ana_tridiag_eig(int m, const double *alpha, const double *beta, double *theta,
                           double *s)
{
    if (m < 1)
        return bsc_fail(BSC_ERR_INVALID, "tridiagonal eigenproblem of order %d", m);
    double *e = malloc((size_t)m * sizeof *e), *z = calloc((size_t)m * (size_t)m, sizeof *z);
    if (!e || !z) {
        free(e);
        free(z);
        return bsc_fail(BSC_ERR_NOMEM, "tridiagonal eigenproblem of order %d: out of memory", m);
    }
    memcpy(theta, alpha, (size_t)m * sizeof *theta);
    for (int i = 0; i < m; i++) {
        e[i] = i + 1 < m ? beta[i] : 0.0;
        z[i * m + i] = 1.0;
    }
    int ok = tql2(m, theta, e, z);
    free(e);
    if (!ok) {
        free(z);
        return bsc_fail(BSC_ERR_DIVERGED, "tridiagonal eigenproblem of order %d: QL did not "
                        "converge", m);
    }
    /* Ascending, eigenvectors along (selection sort: m is small). */
    for (int i = 0; i < m; i++) {
        int lo = i;
        for (int j = i + 1; j < m; j++)
            if (theta[j] < theta[lo])
                lo = j;
        if (lo != i) {
            double t = theta[i];
            theta[i] = theta[lo];
            theta[lo] = t;
            for (int q = 0; q < m; q++) {
                t = z[q * m + i];
                z[q * m + i] = z[q * m + lo];
                z[q * m + lo] = t;
            }
        }
    }
    if (s)
        memcpy(s, z, (size_t)m * (size_t)m * sizeof *s);
    free(z);
    return BSC_OK;
}

/* ------------------------------------------------------------- Lanczos */

static double double_limit = ANA_LANCZOS_DOUBLE_BYTES;

void ana_lanczos_set_double_limit(double bytes)
{
    double_limit = bytes < 0 ? ANA_LANCZOS_DOUBLE_BYTES : bytes;
}

bsc_status ana_lanczos_open(ana_lanczos *L, size_t n, int max_steps)
{
    memset(L, 0, sizeof *L);
    if (max_steps < 1 || n == 0)
        return bsc_fail(BSC_ERR_INVALID, "Lanczos: %d steps in %zu dimensions", max_steps, n);
    if ((size_t)max_steps > n)
        max_steps = (int)n;
    L->n = n;
    L->max_steps = max_steps;
    double vecs = (double)max_steps * (double)n;
    /* The basis in double while it fits the limit, in float32 beyond (the
     * 670k weights of the landscape MLP at 100 steps: 268 MB). */
    int dbl = vecs * sizeof(double) <= double_limit;
    if (dbl)
        L->Qd = malloc((size_t)max_steps * n * sizeof *L->Qd);
    else
        L->Qf = malloc((size_t)max_steps * n * sizeof *L->Qf);
    L->w = malloc(n * sizeof *L->w);
    L->q = malloc(n * sizeof *L->q);
    L->alpha = malloc((size_t)max_steps * sizeof *L->alpha);
    L->beta = malloc((size_t)max_steps * sizeof *L->beta);
    if ((!L->Qd && !L->Qf) || !L->w || !L->q || !L->alpha || !L->beta) {
        ana_lanczos_close(L);
        return bsc_fail(BSC_ERR_NOMEM, "Lanczos: out of memory for a basis of %d vectors of "
                        "%zu parameters (%.0f MB; lower max_iter)", max_steps, n,
                        vecs * (dbl ? 8 : 4) / 1e6);
    }
    return BSC_OK;
}

void ana_lanczos_close(ana_lanczos *L)
{
    free(L->Qd);
    free(L->Qf);
    free(L->w);
    free(L->q);
    free(L->alpha);
    free(L->beta);
    memset(L, 0, sizeof *L);
}

bsc_status ana_lanczos_start(ana_lanczos *L, const double *v0)
{
    double nr = sqrt(dot(L->n, v0, v0));
    if (!(nr > 0) || !isfinite(nr))
        return bsc_fail(BSC_ERR_INVALID, "Lanczos: start vector of norm %g", nr);
    for (size_t i = 0; i < L->n; i++)
        L->q[i] = v0[i] / nr;
    qstore(L, 0, L->q);
    L->m = 0;
    L->done = 0;
    return BSC_OK;
}

bsc_status ana_lanczos_step(ana_lanczos *L, ana_hv_fn hv, void *user)
{
    size_t n = L->n;
    int j = L->m;
    if (L->done || j >= L->max_steps)
        return bsc_fail(BSC_ERR_INTERNAL, "Lanczos: step %d past the end", j + 1);
    bsc_status s = hv(user, L->q, L->w);
    if (s != BSC_OK)
        return s;
    double a = dot(n, L->q, L->w);
    if (!isfinite(a))
        return bsc_fail(BSC_ERR_DIVERGED, "Lanczos: q.Hq is %g at step %d", a, j + 1);
    L->alpha[j] = a;
    L->m = j + 1;
    /* w -= alpha q_j + beta_{j-1} q_{j-1}, then against every q_i twice. */
    for (size_t e = 0; e < n; e++)
        L->w[e] -= a * L->q[e];
    if (j > 0)
        qaxpy(L, j - 1, L->beta[j - 1], L->w);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i <= j; i++)
            qaxpy(L, i, qdot(L, i, L->w), L->w);
    double b = sqrt(dot(n, L->w, L->w));
    L->beta[j] = b;
    /* An invariant subspace (b ~ 0 against the operator's scale, to the
     * precision the basis is stored in) ends the recurrence: its Ritz
     * values are eigenvalues. */
    double scale = 0;
    for (int i = 0; i <= j; i++)
        scale = fmax(scale, fabs(L->alpha[i]) + (i ? L->beta[i - 1] : 0));
    if (!(b > (L->Qd ? 1e-12 : 1e-6) * scale) || L->m == L->max_steps) {
        L->done = 1;
        return BSC_OK;
    }
    for (size_t e = 0; e < n; e++)
        L->q[e] = L->w[e] / b;
    qstore(L, L->m, L->q);
    return BSC_OK;
}

bsc_status ana_lanczos_extremes(size_t n, const ana_lanczos_opts *o, ana_hv_fn hv, void *user,
                                ana_lanczos_result *r)
{
    memset(r, 0, sizeof *r);
    for (int k = 0; k < ANA_MAX_EIGS; k++)
        r->top[k] = r->top_res[k] = r->bottom[k] = r->bottom_res[k] = NAN;
    int want = o->top_k + o->bottom_k;
    if (o->top_k < 0 || o->bottom_k < 0 || o->top_k > ANA_MAX_EIGS ||
        o->bottom_k > ANA_MAX_EIGS || want < 1 || (size_t)want > n)
        return bsc_fail(BSC_ERR_INVALID, "Lanczos: top %d and bottom %d eigenvalues of %zu",
                        o->top_k, o->bottom_k, n);
    ana_lanczos L;
    double *v0 = malloc(n * sizeof *v0), *theta = NULL, *S = NULL;
    bsc_status s = v0 ? ana_lanczos_open(&L, n, o->max_iter)
                      : bsc_fail(BSC_ERR_NOMEM, "Lanczos: out of memory");
    if (s != BSC_OK) {
        free(v0);
        return s;
    }
    theta = malloc((size_t)L.max_steps * sizeof *theta);
    S = malloc((size_t)L.max_steps * (size_t)L.max_steps * sizeof *S);
    if (!theta || !S) {
        s = bsc_fail(BSC_ERR_NOMEM, "Lanczos: out of memory");
        goto cleanup;
    }
    for (size_t e = 0; e < n; e++)
        v0[e] = bsc_rng_normal(o->seed, BSC_RNG_DIRECTIONS, o->stream, e);
    if ((s = ana_lanczos_start(&L, v0)) != BSC_OK)
        goto cleanup;
    while (!L.done) {
        if ((s = ana_lanczos_step(&L, hv, user)) != BSC_OK)
            goto cleanup;
        int m = L.m;
        if (m < want && !L.done)
            continue;
        if ((s = ana_tridiag_eig(m, L.alpha, L.beta, theta, S)) != BSC_OK)
            goto cleanup;
        /* Ritz residual of pair j: |beta_m| |last component of s_j|. Wanted
         * values near zero (a flat bottom) are held to the operator's scale
         * instead of their own, which they could never reach. */
        double norm = fmax(fabs(theta[0]), fabs(theta[m - 1]));
        int conv = 1;
        for (int k = 0; k < want && k < m; k++) {
            int j = k < o->top_k ? m - 1 - k : k - o->top_k;
            double res = fabs(L.beta[m - 1] * S[(size_t)(m - 1) * (size_t)m + (size_t)j]);
            double ref = fmax(fabs(theta[j]), 1e-3 * norm);
            if (!(res <= o->tol * ref))
                conv = 0;
            if (k < o->top_k) {
                r->top[k] = theta[j];
                r->top_res[k] = res;
            } else {
                r->bottom[k - o->top_k] = theta[j];
                r->bottom_res[k - o->top_k] = res;
            }
        }
        r->found = m < want ? m : want;
        r->products = m;
        r->converged = conv && m >= want;
        if (r->converged)
            break;
    }
cleanup:
    ana_lanczos_close(&L);
    free(v0);
    free(theta);
    free(S);
    return s;
}
