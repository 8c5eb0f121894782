/* Stochastic estimates from Rademacher probes: Hutchinson's trace (and the
 * traces of diagonal blocks, from the same products), and stochastic
 * Lanczos quadrature for the spectral density (Ghorbani, Krishnan and Xiao
 * 2019, "An investigation into neural net optimization via Hessian
 * eigenvalue density"; drawn as PyHessian's density_generate does).
 *
 * Quadrature from probe z: m Lanczos steps from q_1 = z / |z| give T_m;
 * with T_m = S diag(theta) S^T, z^T f(H) z / |z|^2 ~ sum_j tau_j f(theta_j)
 * with tau_j = S_1j^2, exact for polynomials f of degree < 2m. For f = id
 * that is alpha_1 = q_1.Hq_1, so n alpha_1 is the probe's Hutchinson sample
 * z.Hz (|z|^2 = n): the quadrature's first product is the trace probe. */
#include "analyses.h"

#include "batchscope/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ana_rademacher(uint64_t seed, int s, size_t n, double *z)
{
    for (size_t e = 0; e < n; e++)
        z[e] = (bsc_rng_u32(seed, BSC_RNG_DIRECTIONS, 200u + (uint32_t)s, e) >> 31) ? 1.0
                                                                                   : -1.0;
}

void ana_mean_se(const double *x, int n, double *mean, double *se)
{
    /* Two passes: samples can agree to many digits (exactly, for a diagonal
     * H and Rademacher probes), where sum-of-squares cancellation would
     * invent a spread. */
    double m = 0, v = 0;
    for (int i = 0; i < n; i++)
        m += x[i];
    m = n > 0 ? m / n : NAN;
    for (int i = 0; i < n; i++)
        v += (x[i] - m) * (x[i] - m);
    *mean = m;
    if (se)
        *se = n > 1 ? sqrt(v / (n - 1) / n) : 0.0;
}

void ana_probe_free(ana_probe_result *r)
{
    free(r->samples);
    free(r->nodes);
    free(r->weights);
    free(r->n_nodes);
    memset(r, 0, sizeof *r);
}

/* Wraps the operator to keep the first product of a quadrature: Hq_1, so
 * that Hz = |z| Hq_1 feeds the trace and the caller's blocks. */
typedef struct first_hv {
    ana_hv_fn hv;
    void *user;
    double *keep;        /* NULL once kept */
    size_t n;
    int *products;
} first_hv;

static bsc_status hv_keep_first(void *user, const double *v, double *out)
{
    first_hv *f = user;
    bsc_status s = f->hv(f->user, v, out);
    if (s != BSC_OK)
        return s;
    ++*f->products;
    if (f->keep) {
        memcpy(f->keep, out, f->n * sizeof *out);
        f->keep = NULL;
    }
    return BSC_OK;
}

/* m Lanczos steps from z: nodes and weights (m_out of them), Hz in hz. */
static bsc_status quadrature(ana_lanczos *L, const double *z, int steps, first_hv *f,
                             double *hz, double *nodes, double *weights, int *m_out)
{
    bsc_status s = ana_lanczos_start(L, z);
    if (s != BSC_OK)
        return s;
    f->keep = hz;
    while (!L->done && L->m < steps)
        if ((s = ana_lanczos_step(L, hv_keep_first, f)) != BSC_OK)
            return s;
    int m = L->m;
    double *S = malloc((size_t)m * (size_t)m * sizeof *S);
    if (!S)
        return bsc_fail(BSC_ERR_NOMEM, "quadrature: out of memory");
    s = ana_tridiag_eig(m, L->alpha, L->beta, nodes, S);
    for (int j = 0; s == BSC_OK && j < m; j++)
        weights[j] = S[j] * S[j];   /* row 0: first components */
    free(S);
    /* Hq_1 -> Hz */
    double nz = sqrt((double)L->n);
    for (size_t e = 0; e < L->n; e++)
        hz[e] *= nz;
    *m_out = m;
    return s;
}

bsc_status ana_probes(size_t n, const ana_probe_opts *o, ana_hv_fn hv, void *user,
                      ana_probe_fn each, void *each_user, ana_probe_result *r)
{
    memset(r, 0, sizeof *r);
    int slq = o->slq_probes < o->samples ? o->slq_probes : o->samples;
    if (o->samples < 1 || slq < 0 || (slq > 0 && o->slq_steps < 1))
        return bsc_fail(BSC_ERR_INVALID, "probes: %d samples, %d quadratures of %d steps",
                        o->samples, o->slq_probes, o->slq_steps);
    size_t nq = (size_t)(slq ? slq : 1) * (size_t)(o->slq_steps > 0 ? o->slq_steps : 1);
    double *z = malloc(n * sizeof *z), *hz = malloc(n * sizeof *hz);
    r->samples = calloc((size_t)o->samples, sizeof *r->samples);
    r->nodes = calloc(nq, sizeof *r->nodes);
    r->weights = calloc(nq, sizeof *r->weights);
    r->n_nodes = calloc((size_t)(slq ? slq : 1), sizeof *r->n_nodes);
    ana_lanczos L = {0};
    bsc_status s = BSC_OK;
    if (!z || !hz || !r->samples || !r->nodes || !r->weights || !r->n_nodes)
        s = bsc_fail(BSC_ERR_NOMEM, "probes: out of memory for %zu dimensions", n);
    else if (slq)
        s = ana_lanczos_open(&L, n, o->slq_steps);
    first_hv f = {hv, user, NULL, n, &r->products};
    for (int k = 0; s == BSC_OK && k < o->samples; k++) {
        ana_rademacher(o->seed, k, n, z);
        if (k < slq) {
            size_t at = (size_t)k * (size_t)o->slq_steps;
            s = quadrature(&L, z, o->slq_steps, &f, hz, r->nodes + at, r->weights + at,
                           &r->n_nodes[k]);
        } else {
            s = hv_keep_first(&f, z, hz);
        }
        if (s != BSC_OK)
            break;
        double q = 0;
        for (size_t e = 0; e < n; e++)
            q += z[e] * hz[e];
        r->samples[k] = q;
        if (each)
            each(each_user, k, z, hz);
    }
    if (slq)
        ana_lanczos_close(&L);
    free(z);
    free(hz);
    if (s != BSC_OK)
        ana_probe_free(r);
    return s;
}

bsc_status ana_slq_density(const ana_probe_result *r, int probes, int steps, int bins,
                           double sigma2, double overhead, double *grid, double *density,
                           double *se)
{
    if (probes < 1 || bins < 2)
        return bsc_fail(BSC_ERR_INVALID, "density: %d quadratures on %d bins", probes, bins);
    double lo = 0, hi = 0;
    for (int k = 0; k < probes; k++) {
        const double *nd = r->nodes + (size_t)k * (size_t)steps;
        int m = r->n_nodes[k];
        if (m < 1)
            return bsc_fail(BSC_ERR_INVALID, "density: quadrature %d has no nodes", k);
        lo += nd[0];        /* ascending */
        hi += nd[m - 1];
    }
    lo = lo / probes - overhead;
    hi = hi / probes + overhead;
    /* PyHessian: variance sigma_squared * max(1, lambda_max - lambda_min). */
    double var = sigma2 * fmax(1.0, hi - lo);
    double *each = malloc(((size_t)probes * (size_t)bins + (size_t)probes) * sizeof *each);
    if (!each)
        return bsc_fail(BSC_ERR_NOMEM, "density: out of memory");
    for (int i = 0; i < bins; i++)
        grid[i] = lo + (hi - lo) * i / (bins - 1);
    double c = 1.0 / sqrt(2.0 * M_PI * var);
    for (int k = 0; k < probes; k++) {
        const double *nd = r->nodes + (size_t)k * (size_t)steps;
        const double *wt = r->weights + (size_t)k * (size_t)steps;
        for (int i = 0; i < bins; i++) {
            double d = 0;
            for (int j = 0; j < r->n_nodes[k]; j++) {
                double u = grid[i] - nd[j];
                d += wt[j] * c * exp(-u * u / (2.0 * var));
            }
            each[(size_t)k * (size_t)bins + (size_t)i] = d;
        }
    }
    double total = 0, *col = each + (size_t)probes * (size_t)bins;
    for (int i = 0; i < bins; i++) {
        for (int k = 0; k < probes; k++)
            col[k] = each[(size_t)k * (size_t)bins + (size_t)i];
        ana_mean_se(col, probes, &density[i], &se[i]);
        total += density[i];
    }
    double norm = total * (grid[1] - grid[0]);
    for (int i = 0; i < bins; i++) {
        density[i] = norm > 0 ? density[i] / norm : NAN;
        se[i] = norm > 0 ? se[i] / norm : NAN;
    }
    free(each);
    return BSC_OK;
}
