/* Test support: the R-operator of one layer (plugin.h: r_forward,
 * r_backward) against central finite differences formed in double on the
 * host. For a layer y = f(x, theta) with backward (dx, dtheta) = J^T dy,
 * a direction (rx, v) and R{dy}:
 *   R{y}      = d/dh f(x + h rx, theta + h v)
 *   R{dx}     = d/dh J^T(x + h rx, theta + h v) dy  +  J^T R{dy}
 *   R{dtheta} = the same for the parameter rows,
 * which is what rop_check differences: the first term by central
 * differences of the layer's own backward, the second by one more backward
 * with dout = R{dy}. */
#ifndef BSC_TEST_ROPCHECK_H
#define BSC_TEST_ROPCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "layerh.h"

/* Finite-difference step and bound. The device computes in float32: a
 * gradient of order one carries ~1e-6 of rounding, which the quotient
 * divides by 2h = 2e-2, and the O(h^2) truncation of smooth layers is
 * ~1e-5; a missing or wrong term of the R-operator is O(1). The error is
 * measured against the largest expected entry (entries near zero have no
 * relative error worth the name). */
#define ROP_STEP 1e-2
#define ROP_TOL 2e-3

/* The direction, R{dy} and the op's outputs of one check. */
typedef struct rop {
    bsc_tensor rin, rout, rdout, rdin, V, HV;
    bsc_tensor v[MAXP], hv[MAXP];
    const bsc_tensor *vp[MAXP + 1], *hp[MAXP + 1];
    float *hrin, *hvd, *hrdout;
    float *hrout, *hrdin, *hdin, *hvout;
} rop;

/* calloc'ed floats (at least one), failing the test when out of memory. */
float *rop_fzalloc(size_t n);
/* Buffers for layer t and a random direction, R{in} and R{dy} from seed. */
void rop_open(rop *r, lt *t, uint64_t seed);
void rop_close(rop *r);
/* Runs forward, then the layer's r_forward and r_backward (R{in} NULL when
 * !with_rin), and reads R{out}, din, R{din} and H v back. */
bsc_status rop_run(lt *t, rop *r, int with_rin);
/* Fails the test when max |got - want| exceeds tol times max |want| (or
 * when want is all zero: nothing would be checked). */
void rop_expect_close(const float *got, const double *want, size_t n, double tol,
                      const char *what, const char *part);
/* The layer's R-operator against finite differences (see the top). */
void rop_check(lt *t, const char *what, int with_rin, uint64_t seed);

#endif
