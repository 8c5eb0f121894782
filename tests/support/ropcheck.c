/* Test support: a layer's R-operator against finite differences of its
 * forward and gradient (ropcheck.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "layerh.h"
#include "ropcheck.h"


float *rop_fzalloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

void rop_open(rop *r, lt *t, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    size_t nin = t->batch * t->in_n, nout = t->batch * t->out_n;
    lh_alloc_f32(&r->rin, nin);
    lh_alloc_f32(&r->rdin, nin);
    lh_alloc_f32(&r->rout, nout);
    lh_alloc_f32(&r->rdout, nout);
    lh_alloc_f32(&r->V, t->n_train);
    lh_alloc_f32(&r->HV, t->n_train);
    for (int i = 0; i < t->np; i++) {
        if (t->spec[i].role != BSC_ROLE_STATE) {
            r->v[i] = bsc_tensor_view(&r->V, t->off[i], &t->spec[i].shape);
            r->hv[i] = bsc_tensor_view(&r->HV, t->off[i], &t->spec[i].shape);
        }
        r->vp[i] = &r->v[i];
        r->hp[i] = &r->hv[i];
    }
    r->hrin = rop_fzalloc(nin);
    r->hvd = rop_fzalloc(t->n_train);
    r->hrdout = rop_fzalloc(nout);
    r->hrout = rop_fzalloc(nout);
    r->hrdin = rop_fzalloc(nin);
    r->hdin = rop_fzalloc(nin);
    r->hvout = rop_fzalloc(t->n_train);
    uint64_t rng = seed * 7919 + 17;
    gc_fill(&rng, r->hrin, nin, -1.0f, 1.0f, 0.0f);
    gc_fill(&rng, r->hvd, t->n_train, -1.0f, 1.0f, 0.0f);
    gc_fill(&rng, r->hrdout, nout, -1.0f, 1.0f, 0.0f);
}

void rop_close(rop *r)
{
    bsc_tensor *ts[] = {&r->rin, &r->rout, &r->rdout, &r->rdin, &r->V, &r->HV};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        bsc_tensor_free(ts[i]);
    free(r->hrin);
    free(r->hvd);
    free(r->hrdout);
    free(r->hrout);
    free(r->hrdin);
    free(r->hdin);
    free(r->hvout);
}

/* The layer's own R-operator at the harness' input and parameters. */
bsc_status rop_run(lt *t, rop *r, int with_rin)
{
    bsc_status st;
    if ((st = lt_forward(t)) != BSC_OK)
        return st;
    if (t->n_train)
        CHECK(bsc_tensor_write(lh_ctx, &r->V, r->hvd));
    CHECK(bsc_tensor_write(lh_ctx, &r->rin, r->hrin));
    CHECK(bsc_tensor_write(lh_ctx, &r->rdout, r->hrdout));
    CHECK(bsc_tensor_write(lh_ctx, &t->dout, t->R));
    if ((st = t->ops->r_forward(t->self, &t->pass, &t->in, with_rin ? &r->rin : NULL, r->vp,
                                &t->out, &r->rout)) != BSC_OK ||
        (st = t->ops->r_backward(t->self, &t->pass, &t->in, with_rin ? &r->rin : NULL, r->vp,
                                 &t->out, &r->rout, &t->dout, &r->rdout, r->hp, &t->din,
                                 &r->rdin)) != BSC_OK)
        return st;
    CHECK(bsc_tensor_read(lh_ctx, &r->rout, r->hrout));
    CHECK(bsc_tensor_read(lh_ctx, &t->din, r->hdin));
    CHECK(bsc_tensor_read(lh_ctx, &r->rdin, r->hrdin));
    if (t->n_train)
        CHECK(bsc_tensor_read(lh_ctx, &r->HV, r->hvout));
    return BSC_OK;
}

/* max |got - want| / max |want|; fails the test past tol. */
void rop_expect_close(const float *got, const double *want, size_t n, double tol,
                         const char *what, const char *part)
{
    double scale = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= worst)) {
            worst = e;
            at = i;
        }
    }
    if (n && !(scale > 0))
        fail_msg("%s: %s is all zero: nothing is checked", what, part);
    if (n && !(worst <= tol * scale))
        fail_msg("%s: %s off by %.3g of its largest entry %.4g (at %zu: got %.7g, want %.7g)",
                 what, part, worst / scale, scale, at, got[at], want[at]);
}

/* Forward and backward (dout = R) at x + s*h*rin, theta + s*h*v. */
static void shifted(lt *t, rop *r, int with_rin, double sh, float *x0, float *p0, double *out,
                    double *din, double *g)
{
    size_t nin = t->batch * t->in_n, nout = t->batch * t->out_n;
    for (size_t i = 0; i < nin; i++)
        t->hin[i] = (float)(x0[i] + (with_rin ? sh * r->hrin[i] : 0.0));
    for (size_t i = 0; i < t->n_train; i++)
        t->hp[i] = (float)(p0[i] + sh * r->hvd[i]);
    CHECK(lt_forward(t));
    lt_backward(t);
    for (size_t i = 0; i < nout; i++)
        out[i] = t->hout[i];
    for (size_t i = 0; i < nin; i++)
        din[i] = t->hdin[i];
    for (size_t i = 0; i < t->n_train; i++)
        g[i] = t->hg[i];
    memcpy(t->hin, x0, nin * sizeof(float));
    memcpy(t->hp, p0, t->n_train * sizeof(float));
}

/* What the layer's r_hints promise: without dout (and din) -- rdin too
 * for BSC_R_DOUT_ONLY_FOR_DIN_AT_FIRST, where rin is NULL -- R{din} and
 * H v come out the same as with it. rop_run's results are in r. */
static void rop_check_hints(lt *t, rop *r, int with_rin, const char *label)
{
    unsigned h = t->ops->r_hints;
    int only = (h & BSC_R_DOUT_ONLY_FOR_DIN) != 0;
    int first = (h & BSC_R_DOUT_ONLY_FOR_DIN_AT_FIRST) && !with_rin;
    if (!only && !first)
        return;
    size_t nin = t->batch * t->in_n;
    float *rdin = rop_fzalloc(nin), *hv = rop_fzalloc(t->n_train);
    CHECK(bsc_tensor_fill(lh_ctx, &r->rdin, 0.0f));
    if (t->n_train)
        CHECK(bsc_tensor_fill(lh_ctx, &r->HV, 0.0f));
    CHECK(t->ops->r_backward(t->self, &t->pass, &t->in, with_rin ? &r->rin : NULL, r->vp,
                             &t->out, &r->rout, NULL, &r->rdout, r->hp, NULL,
                             only ? &r->rdin : NULL));
    CHECK(bsc_tensor_read(lh_ctx, &r->rdin, rdin));
    if (t->n_train)
        CHECK(bsc_tensor_read(lh_ctx, &r->HV, hv));
    if (only && memcmp(rdin, r->hrdin, nin * sizeof(float)) != 0)
        fail_msg("%s: R{din} without dout differs from R{din} with it", label);
    if (memcmp(hv, r->hvout, t->n_train * sizeof(float)) != 0)
        fail_msg("%s: H v without dout differs from H v with it", label);
    free(rdin);
    free(hv);
}

/* The layer's R-operator against finite differences (module comment). */
void rop_check(lt *t, const char *what, int with_rin, uint64_t seed)
{
    char label[160];
    snprintf(label, sizeof label, "%s%s", what, with_rin ? "" : " (rin = NULL)");
    rop r;
    rop_open(&r, t, seed);
    size_t nin = t->batch * t->in_n, nout = t->batch * t->out_n, np = t->n_train;
    bsc_status st = rop_run(t, &r, with_rin);
    if (st != BSC_OK)
        fail_msg("%s: R-operator: %s", label, bsc_last_error());
    rop_check_hints(t, &r, with_rin, label);
    float *x0 = rop_fzalloc(nin), *p0 = rop_fzalloc(np);
    memcpy(x0, t->hin, nin * sizeof(float));
    memcpy(p0, t->hp, np * sizeof(float));
    double *op = calloc(nout, sizeof(double)), *om = calloc(nout, sizeof(double));
    double *dp = calloc(nin, sizeof(double)), *dm = calloc(nin, sizeof(double));
    double *gp = calloc(np + 1, sizeof(double)), *gm = calloc(np + 1, sizeof(double));
    double *d0 = calloc(nin, sizeof(double)), *g0 = calloc(np + 1, sizeof(double));
    double *jr = calloc(nin, sizeof(double)), *gr = calloc(np + 1, sizeof(double));
    double *o0 = calloc(nout, sizeof(double));
    /* The plain backward at x (din must match r_backward's), then J^T R{dy}. */
    shifted(t, &r, with_rin, 0.0, x0, p0, o0, d0, g0);
    float *Rsave = rop_fzalloc(nout);
    memcpy(Rsave, t->R, nout * sizeof(float));
    memcpy(t->R, r.hrdout, nout * sizeof(float));
    shifted(t, &r, with_rin, 0.0, x0, p0, o0, jr, gr);
    memcpy(t->R, Rsave, nout * sizeof(float));
    shifted(t, &r, with_rin, ROP_STEP, x0, p0, op, dp, gp);
    shifted(t, &r, with_rin, -ROP_STEP, x0, p0, om, dm, gm);
    for (size_t i = 0; i < nout; i++)
        op[i] = (op[i] - om[i]) / (2 * ROP_STEP);
    for (size_t i = 0; i < nin; i++)
        dp[i] = (dp[i] - dm[i]) / (2 * ROP_STEP) + jr[i];
    for (size_t i = 0; i < np; i++)
        gp[i] = (gp[i] - gm[i]) / (2 * ROP_STEP) + gr[i];
    rop_expect_close(r.hrout, op, nout, ROP_TOL, label, "R{out}");
    rop_expect_close(r.hdin, d0, nin, 1e-6, label, "din");
    rop_expect_close(r.hrdin, dp, nin, ROP_TOL, label, "R{din}");
    if (np)
        rop_expect_close(r.hvout, gp, np, ROP_TOL, label, "R{dtheta}");
    double *ps[] = {op, om, dp, dm, gp, gm, d0, g0, jr, gr, o0};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        free(ps[i]);
    free(x0);
    free(p0);
    free(Rsave);
    rop_close(&r);
}

