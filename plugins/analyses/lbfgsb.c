/* A driver over the reference L-BFGS-B (Fortran 77, version 3.0, Debian's
 * liblbfgsb): reverse communication through setulb, with f and g from a
 * callback. Used by the sharpness analysis and tested on quadratics. */
#include "analyses.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* setulb as gfortran compiles it: every argument by reference, the two
 * CHARACTER*60 arguments' lengths appended by value (size_t since gfortran 8),
 * LOGICAL as a 4-byte int. */
extern void setulb_(int *n, int *m, double *x, double *l, double *u, int *nbd, double *f,
                    double *g, double *factr, double *pgtol, double *wa, int *iwa,
                    char *task, int *iprint, char *csave, int *lsave, int *isave,
                    double *dsave, size_t task_len, size_t csave_len);

#define TASK_LEN 60

static void set_task(char *task, const char *text)
{
    size_t n = strlen(text);
    memset(task, ' ', TASK_LEN);
    memcpy(task, text, n < TASK_LEN ? n : TASK_LEN);
}

static int task_is(const char *task, const char *prefix)
{
    return strncmp(task, prefix, strlen(prefix)) == 0;
}

bsc_status ana_lbfgsb_minimize(size_t n, double *x, const double *lo, const double *hi,
                               const ana_lbfgsb_opts *o, ana_fg_fn fg, void *user,
                               ana_lbfgsb_result *r)
{
    memset(r, 0, sizeof *r);
    r->f = r->f_min = NAN;
    if (n == 0 || n > INT_MAX / 4)
        return bsc_fail(BSC_ERR_INVALID, "L-BFGS-B: %zu variables (1 to %d supported)", n,
                        INT_MAX / 4);
    int nn = (int)n, m = o->memory > 0 ? o->memory : 10, iprint = -1;
    /* The workspace setulb 3.0 documents: 2mn + 5n + 11m^2 + 8m doubles. */
    size_t wa_len = 2 * (size_t)m * n + 5 * n + 11 * (size_t)m * m + 8 * (size_t)m;
    double *wa = malloc(wa_len * sizeof *wa);
    double *l = malloc(n * sizeof *l), *u = malloc(n * sizeof *u), *g = calloc(n, sizeof *g);
    double *best = malloc(n * sizeof *best);
    int *iwa = malloc(3 * n * sizeof *iwa), *nbd = malloc(n * sizeof *nbd);
    bsc_status s = BSC_OK;
    if (!wa || !l || !u || !g || !best || !iwa || !nbd) {
        s = bsc_fail(BSC_ERR_NOMEM, "L-BFGS-B: out of memory for %zu variables", n);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        l[i] = lo[i];
        u[i] = hi[i];
        nbd[i] = 2;   /* both bounds */
    }
    double f = 0, factr = o->factr, pgtol = o->pgtol;
    char task[TASK_LEN + 1], csave[TASK_LEN + 1];
    int lsave[4], isave[44];
    double dsave[29];
    memset(csave, ' ', TASK_LEN);
    task[TASK_LEN] = csave[TASK_LEN] = '\0';
    set_task(task, "START");
    /* A stop in the middle of a line search leaves in x a trial point that
     * was never evaluated; what we return instead is the best point that
     * was, kept in `best` (for a maximization that is the highest loss
     * found, whatever iterate L-BFGS-B would have accepted). */
    for (;;) {
        setulb_(&nn, &m, x, l, u, nbd, &f, g, &factr, &pgtol, wa, iwa, task, &iprint, csave,
                lsave, isave, dsave, TASK_LEN, TASK_LEN);
        if (task_is(task, "FG")) {
            if (o->max_eval > 0 && r->evaluations >= o->max_eval) {
                set_task(task, "STOP: evaluation limit");
                break;
            }
            s = fg(user, x, &f, g);
            if (s != BSC_OK)
                goto cleanup;
            r->evaluations++;
            if (r->evaluations == 1 || f < r->f_min) {
                r->f_min = f;
                memcpy(best, x, n * sizeof *x);
            }
            continue;
        }
        if (task_is(task, "NEW_X")) {
            r->iterations++;
            if (o->on_iteration)
                o->on_iteration(user, r->iterations);
            if (o->max_iter > 0 && r->iterations >= o->max_iter) {
                set_task(task, "STOP: iteration limit");
                break;
            }
            continue;
        }
        break;   /* CONVERGENCE, ABNORMAL_TERMINATION_IN_LNSRCH, ERROR, WARNING */
    }
    if (task_is(task, "ERROR"))
        s = bsc_fail(BSC_ERR_INVALID, "L-BFGS-B: %.*s", TASK_LEN, task);
    if (r->evaluations > 0) {
        memcpy(x, best, n * sizeof *x);
        r->f = r->f_min;
    }
    memcpy(r->task, task, TASK_LEN);
    r->task[TASK_LEN] = '\0';
    for (int i = TASK_LEN - 1; i >= 0 && r->task[i] == ' '; i--)
        r->task[i] = '\0';
cleanup:
    free(wa);
    free(l);
    free(u);
    free(g);
    free(best);
    free(iwa);
    free(nbd);
    return s;
}
