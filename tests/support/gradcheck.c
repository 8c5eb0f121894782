/* Test support: finite-difference gradient checks (see gradcheck.h). */
#include <math.h>
#include "gradcheck.h"

uint64_t gc_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float gc_uniform(uint64_t *state, float lo, float hi)
{
    double u = (double)(gc_next(state) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

void gc_fill(uint64_t *state, float *x, size_t n, float lo, float hi, float gap)
{
    for (size_t i = 0; i < n; i++) {
        float v;
        do
            v = gc_uniform(state, lo, hi);
        while (fabsf(v) < gap);
        x[i] = v;
    }
}

double gc_rel_err(double fd, double an, double floor)
{
    double m = fabs(fd);
    if (fabs(an) > m)
        m = fabs(an);
    if (floor > m)
        m = floor;
    return fabs(fd - an) / m;
}

gc_result gc_check(float *x, size_t n, const float *analytic, double h, double tol,
                   size_t max_coords, uint64_t seed, gc_fn f, void *user)
{
    gc_result r = {0};
    uint64_t rng = seed;
    size_t count = n <= max_coords ? n : max_coords;
    for (size_t c = 0; c < count; c++) {
        size_t j = n <= max_coords ? c : (size_t)(gc_next(&rng) % n);
        float save = x[j];
        double plus, minus;
        x[j] = (float)(save + h);
        /* The step actually taken, after rounding to float. */
        double hp = (double)x[j] - save;
        if (f(user, &plus)) {
            r.error = 1;
            x[j] = save;
            return r;
        }
        x[j] = (float)(save - h);
        double hm = save - (double)x[j];
        if (f(user, &minus)) {
            r.error = 1;
            x[j] = save;
            return r;
        }
        x[j] = save;
        double fd = (plus - minus) / (hp + hm);
        double e = gc_rel_err(fd, analytic[j], 1e-3);
        r.checked++;
        if (e > tol)
            r.failed++;
        if (e > r.worst || r.checked == 1) {
            r.worst = e;
            r.worst_index = j;
            r.worst_fd = fd;
            r.worst_an = analytic[j];
        }
    }
    return r;
}
