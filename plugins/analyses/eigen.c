/* Curvature from Hessian-vector products alone: power iteration with
 * deflation for the top eigenvalues, Hutchinson's estimator for the trace.
 * Host vectors in double; the operator is a callback (the hessian analysis
 * wires it to finite differences of device gradients, the tests to a
 * diagonal matrix). */
#include "analyses.h"

#include "batchscope/rng.h"

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

/* v -= sum_i (u_i . v) u_i over the first k unit vectors of us. */
static void project_out(size_t n, const double *us, int k, double *v)
{
    for (int i = 0; i < k; i++) {
        const double *u = us + (size_t)i * n;
        double c = dot(n, u, v);
        for (size_t e = 0; e < n; e++)
            v[e] -= c * u[e];
    }
}

static int normalize(size_t n, double *v)
{
    double nr = sqrt(dot(n, v, v));
    if (!(nr > 0) || !isfinite(nr))
        return 0;
    for (size_t e = 0; e < n; e++)
        v[e] /= nr;
    return 1;
}

bsc_status ana_power_topk(size_t n, const ana_eig_opts *o, ana_hv_fn hv, void *user,
                          double *lambda, int *iters, double *vecs)
{
    if (o->k < 1 || (size_t)o->k > n)
        return bsc_fail(BSC_ERR_INVALID, "power iteration: k = %d for %zu dimensions", o->k, n);
    double *us = malloc((size_t)o->k * n * sizeof *us);
    double *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w);
    bsc_status s = BSC_OK;
    if (!us || !v || !w) {
        s = bsc_fail(BSC_ERR_NOMEM, "power iteration: out of memory for %zu dimensions", n);
        goto cleanup;
    }
    for (int j = 0; j < o->k; j++) {
        for (size_t e = 0; e < n; e++)
            v[e] = bsc_rng_normal(o->seed, BSC_RNG_DIRECTIONS, 100u + (uint32_t)j, e);
        project_out(n, us, j, v);
        if (!normalize(n, v)) {
            s = bsc_fail(BSC_ERR_INTERNAL, "power iteration: degenerate start vector %d", j);
            goto cleanup;
        }
        double lam = 0, prev = NAN;
        int t = 0;
        while (t < o->max_iter) {
            if ((s = hv(user, v, w)) != BSC_OK)
                goto cleanup;
            t++;
            lam = dot(n, v, w);
            if (!isfinite(lam)) {
                s = bsc_fail(BSC_ERR_DIVERGED, "power iteration: v.Hv is %g at step %d", lam, t);
                goto cleanup;
            }
            if (t > 1 && fabs(lam - prev) <= o->tol * fabs(lam))
                break;
            /* Deflation: iterating on the complement of the eigenvectors
             * found so far is power iteration on H restricted to it, so the
             * j-th run converges to the j-th largest |eigenvalue|. */
            project_out(n, us, j, w);
            if (!normalize(n, w))
                break;   /* H v = 0 on the complement: lambda = 0 is exact */
            memcpy(v, w, n * sizeof *v);
            prev = lam;
        }
        memcpy(us + (size_t)j * n, v, n * sizeof *v);
        lambda[j] = lam;
        if (iters)
            iters[j] = t;
    }
    if (vecs)
        memcpy(vecs, us, (size_t)o->k * n * sizeof *us);
cleanup:
    free(us);
    free(v);
    free(w);
    return s;
}

bsc_status ana_hutchinson(size_t n, int samples, uint64_t seed, ana_hv_fn hv, void *user,
                          double *trace, double *std_err)
{
    if (samples < 1)
        return bsc_fail(BSC_ERR_INVALID, "Hutchinson: %d samples", samples);
    double *z = malloc(n * sizeof *z), *hz = malloc(n * sizeof *hz);
    double *q = malloc((size_t)samples * sizeof *q);
    bsc_status s = BSC_OK;
    if (!z || !hz || !q) {
        s = bsc_fail(BSC_ERR_NOMEM, "Hutchinson: out of memory for %zu dimensions", n);
        goto cleanup;
    }
    for (int k = 0; k < samples; k++) {
        for (size_t e = 0; e < n; e++)
            z[e] = (bsc_rng_u32(seed, BSC_RNG_DIRECTIONS, 200u + (uint32_t)k, e) >> 31) ? 1.0
                                                                                        : -1.0;
        if ((s = hv(user, z, hz)) != BSC_OK)
            goto cleanup;
        q[k] = dot(n, z, hz);
    }
    /* Two passes: the samples can agree to many digits (exactly, for a
     * diagonal H), where sum-of-squares cancellation would invent a spread. */
    double mean = 0, var = 0;
    for (int k = 0; k < samples; k++)
        mean += q[k];
    mean /= samples;
    for (int k = 0; k < samples; k++)
        var += (q[k] - mean) * (q[k] - mean);
    *trace = mean;
    if (std_err)
        *std_err = samples > 1 ? sqrt(var / (samples - 1) / samples) : 0;
cleanup:
    free(z);
    free(hz);
    free(q);
    return s;
}
