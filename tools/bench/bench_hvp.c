/* Benchmark: one exact Hessian-vector product (the R-operator pass,
 * bsc_eval_hvp) against one full-batch gradient (bsc_eval_grad) and
 * against the finite-difference product the hessian analysis used before
 * (two gradients), on a pipeline's model over the first N training
 * examples, at the run's initial weights along a fixed random direction.
 * Kernels are built in a warm-up first; each timing is the fastest of
 * --reps calls (the least disturbed by other processes on a shared
 * machine; the medians are printed too), the three kinds interleaved so
 * that a noisy neighbour hits them alike.
 *
 *   bench_hvp PIPELINE.yaml [--subset N] [--reps N] [--batch N] [--device SEL]
 *             [--save DIR]
 *
 * --save DIR writes the weights, the direction and the exact product as raw
 * float32 (DIR/x.f32, v.f32, hv.f32) for tools/bench/torch_hvp.py --check,
 * which recomputes the product with autograd in float64.
 *
 * Defaults: 10000 examples, 7 repetitions, the pipeline's eval_batch_size.
 * Prints
 *   "batchscope <name> grad s=<g> hvp s=<h> fd s=<f> hvp/grad=<r> n=<N> params=<P> ..."
 *   "batchscope <name> median grad s=... hvp s=... fd s=... hvp/grad=...""
 * and the relative difference between the exact and the finite-difference
 * product (|hv_exact - hv_fd| / |hv_exact|), a sanity check for smooth
 * models only: with ReLUs the two gradients straddle kinks, whose jumps
 * divided by the step swamp the difference (quickstart.yaml: ~4; with its
 * ReLUs made tanh: 9e-5). run_hvp.sh checks against autograd instead. */
#include "batchscope/batchscope.h"
#include "batchscope/fsutil.h"
#include "batchscope/rng.h"
#include "batchscope/session.h"
#include "bench_session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(bsc_status s)
{
    return bench_die("bench_hvp", s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, long n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* params = x + t v, on the host (the bench needs no plugin's kernels). */
static bsc_status shift(bsc_context *ctx, bsc_model *m, const float *x, const float *v, double t,
                        float *tmp, size_t np)
{
    for (size_t i = 0; i < np; i++)
        tmp[i] = (float)(x[i] + t * v[i]);
    return bsc_tensor_write(ctx, bsc_model_params(m), tmp);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_hvp PIPELINE.yaml [--subset N] [--reps N] [--batch N] "
                        "[--device SEL] [--save DIR]\n");
        return 2;
    }
    const char *device = NULL, *save = NULL;
    long reps = 7, subset = 10000, batch = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device"))
            device = argv[i + 1];
        else if (!strcmp(argv[i], "--reps"))
            reps = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--subset"))
            subset = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--save"))
            save = argv[i + 1];
        else {
            fprintf(stderr, "bench_hvp: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1)
        reps = 1;
    bsc_session *ss = NULL;
    bsc_status s;
    if ((s = bench_open_model(argv[1], device, NULL, batch, &ss)) != BSC_OK)
        return die(s);
    const bsc_pipeline *p = bsc_session_pipeline(ss);
    bsc_context *ctx = bsc_session_context(ss);
    bsc_model *m = bsc_session_model(ss);
    bsc_evaluator *ev = bsc_session_evaluator(ss);
    char why[160];
    if (!bsc_model_has_hvp(m, why, sizeof why)) {
        fprintf(stderr, "bench_hvp: %s\n", why);
        return 1;
    }
    size_t np = bsc_model_n_params(m);
    float *x = malloc(np * sizeof *x), *v = malloc(np * sizeof *v), *tmp = malloc(np * sizeof *tmp);
    float *he = malloc(np * sizeof *he), *hp = malloc(np * sizeof *hp), *hm = malloc(np * sizeof *hm);
    double *tg = malloc((size_t)reps * sizeof *tg), *th = malloc((size_t)reps * sizeof *th),
           *tf = malloc((size_t)reps * sizeof *tf);
    int64_t d = (int64_t)np;
    bsc_shape vs = bsc_shape_make(1, &d);
    bsc_tensor tv = {0}, out = {0}, g2 = {0};
    if ((s = bsc_tensor_read(ctx, bsc_model_params(m), x)) != BSC_OK ||
        (s = bsc_tensor_alloc(ctx, BSC_F32, &vs, &tv)) != BSC_OK ||
        (s = bsc_tensor_alloc(ctx, BSC_F32, &vs, &out)) != BSC_OK ||
        (s = bsc_tensor_alloc(ctx, BSC_F32, &vs, &g2)) != BSC_OK)
        return die(s);
    bsc_rng_fill_normal(p->seed, BSC_RNG_DIRECTIONS, 7, v, np, 0.0f, 1.0f);
    double nv = 0;
    for (size_t i = 0; i < np; i++)
        nv += (double)v[i] * v[i];
    nv = sqrt(nv);
    if ((s = bsc_tensor_write(ctx, &tv, v)) != BSC_OK)
        return die(s);
    size_t n = (size_t)subset;
    /* Warm-up: every kernel of the gradient and of the R-operator pass. */
    if ((s = bsc_eval_grad(ev, BSC_SPLIT_TRAIN, n, &out, NULL)) != BSC_OK ||
        (s = bsc_eval_hvp(ev, BSC_SPLIT_TRAIN, n, &tv, &out, NULL)) != BSC_OK)
        return die(s);
    const double t = 1e-2 / nv;   /* the hessian analysis' fd_step */
    for (long r = 0; r < reps; r++) {
        double t0 = bsc_now();
        if ((s = bsc_eval_grad(ev, BSC_SPLIT_TRAIN, n, &out, NULL)) != BSC_OK ||
            (s = bsc_tensor_read(ctx, &out, tmp)) != BSC_OK)
            return die(s);
        tg[r] = bsc_now() - t0;
        t0 = bsc_now();
        if ((s = bsc_eval_hvp(ev, BSC_SPLIT_TRAIN, n, &tv, &out, NULL)) != BSC_OK ||
            (s = bsc_tensor_read(ctx, &out, he)) != BSC_OK)
            return die(s);
        th[r] = bsc_now() - t0;
        t0 = bsc_now();
        if ((s = shift(ctx, m, x, v, t, tmp, np)) != BSC_OK ||
            (s = bsc_eval_grad(ev, BSC_SPLIT_TRAIN, n, &out, NULL)) != BSC_OK ||
            (s = shift(ctx, m, x, v, -t, tmp, np)) != BSC_OK ||
            (s = bsc_eval_grad(ev, BSC_SPLIT_TRAIN, n, &g2, NULL)) != BSC_OK ||
            (s = bsc_tensor_read(ctx, &out, hp)) != BSC_OK ||
            (s = bsc_tensor_read(ctx, &g2, hm)) != BSC_OK)
            return die(s);
        tf[r] = bsc_now() - t0;
        if ((s = bsc_tensor_write(ctx, bsc_model_params(m), x)) != BSC_OK)
            return die(s);
    }
    double dd = 0, ne = 0;
    for (size_t i = 0; i < np; i++) {
        double f = ((double)hp[i] - hm[i]) / (2 * t);
        dd += (f - he[i]) * (f - he[i]);
        ne += (double)he[i] * he[i];
    }
    double g = median(tg, reps), h = median(th, reps), f = median(tf, reps);
    /* median() sorted them: element 0 is the fastest. */
    printf("batchscope %s grad s=%.4f hvp s=%.4f fd s=%.4f hvp/grad=%.2f n=%zu params=%zu "
           "batch=%ld\n", p->name, tg[0], th[0], tf[0], th[0] / tg[0], n, np,
           batch > 0 ? batch : (long)p->training.eval_batch_size);
    printf("batchscope %s median grad s=%.4f hvp s=%.4f fd s=%.4f hvp/grad=%.2f\n", p->name, g,
           h, f, h / g);
    printf("batchscope %s |hv_exact - hv_fd| / |hv_exact| = %.3g (fd_step 1e-2)\n", p->name,
           sqrt(dd / ne));
    if (save) {
        const float *arrays[3] = {x, v, he};
        static const char *const names[3] = {"x.f32", "v.f32", "hv.f32"};
        for (int k = 0; k < 3; k++) {
            char *path = bsc_strdup_printf("%s/%s", save, names[k]);
            s = path ? bsc_write_file_atomic(path, arrays[k], np * sizeof(float))
                     : bsc_fail(BSC_ERR_NOMEM, "out of memory");
            free(path);
            if (s != BSC_OK)
                return die(s);
        }
    }
    bsc_tensor_free(&tv);
    bsc_tensor_free(&out);
    bsc_tensor_free(&g2);
    bsc_session_free(ss);
    free(x), free(v), free(tmp), free(he), free(hp), free(hm), free(tg), free(th), free(tf);
    return 0;
}
