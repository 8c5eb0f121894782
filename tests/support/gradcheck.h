/* Test support: central finite differences against analytic gradients.
 *
 * The caller keeps the parameters of f in a host float array and provides
 * f(user) -> double that evaluates the scalar under test from that array's
 * current contents (typically: upload it, run forward on the device, read the
 * output back, return sum(out * R) accumulated in double). gc_check perturbs
 * one float at a time by +-h and compares (f(x+h) - f(x-h)) / 2h with the
 * analytic gradient. */
#ifndef BSC_TEST_GRADCHECK_H
#define BSC_TEST_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

typedef int (*gc_fn)(void *user, double *value);   /* 0 on success */

typedef struct gc_result {
    size_t checked;      /* coordinates compared */
    size_t failed;       /* coordinates over the bound */
    double worst;        /* largest relative error seen */
    size_t worst_index;
    double worst_fd, worst_an;
    int error;           /* f returned nonzero */
} gc_result;

/* Relative error |fd - an| / max(|fd|, |an|, floor). */
double gc_rel_err(double fd, double an, double floor);

/* Checks up to max_coords coordinates of x (all when n <= max_coords,
 * otherwise a sample drawn from `seed`) against analytic[]; x is restored.
 * A coordinate fails when its relative error (floor 1e-3) exceeds tol. */
gc_result gc_check(float *x, size_t n, const float *analytic, double h, double tol,
                   size_t max_coords, uint64_t seed, gc_fn f, void *user);

/* A small deterministic generator for test data (splitmix64). */
uint64_t gc_next(uint64_t *state);
/* Uniform in [lo, hi). */
float gc_uniform(uint64_t *state, float lo, float hi);
/* n uniforms in [lo, hi) whose magnitude is at least `gap` (keeps inputs
 * away from kinks such as relu's at 0). */
void gc_fill(uint64_t *state, float *x, size_t n, float lo, float hi, float gap);

#endif
