/* Benchmark: the evaluator the analyses stand on -- forward-only loss
 * evaluations of a pipeline's model over its full training set, and the
 * cost of one loss-surface point (theta* + x d1 + y d2, then the loss over a
 * subset), from which the time of a whole surface follows: first the plain
 * way (bsc_tensor_combine, then bsc_eval_loss), then through the
 * evaluator's family of points as the surface analysis runs them, with the
 * first layer's products computed once where the model allows (the time
 * to compute them is reported apart and amortized over the grid in the
 * estimate). Kernels are built in a warm-up first (compile time is never
 * counted).
 *
 *   bench_eval PIPELINE.yaml [--reps N] [--subset N] [--grid N] [--batch N]
 *              [--device SEL] [--gemm auto|clblast|host]
 *
 * Defaults: 5 full-set evaluations, a 10000-example subset, a 51 x 51 grid,
 * the pipeline's eval_batch_size. Prints
 *   "batchscope <name> evals/s=<e> samples/s=<s> n=<train> batch=<b>"
 *   "batchscope surface-plain <g>x<g> subset=<n> s/point=<t> estimate_s=<T>"
 *   "batchscope surface <g>x<g> subset=<n> s/point=<t> estimate_s=<T> setup_s=<u> mode=..."
 * (the surface estimate is g*g points at the measured cost of 20 points). */
#include "batchscope/batchscope.h"
#include "batchscope/fsutil.h"
#include "batchscope/rng.h"
#include "batchscope/session.h"
#include "bench_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(bsc_status s)
{
    return bench_die("bench_eval", s);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_eval PIPELINE.yaml [--reps N] [--subset N] [--grid N] "
                        "[--batch N] [--device SEL] [--gemm auto|clblast|host]\n");
        return 2;
    }
    const char *device = NULL, *gemm = NULL;
    long reps = 5, subset = 10000, grid = 51, batch = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device"))
            device = argv[i + 1];
        else if (!strcmp(argv[i], "--gemm"))
            gemm = argv[i + 1];
        else if (!strcmp(argv[i], "--reps"))
            reps = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--subset"))
            subset = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--grid"))
            grid = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atol(argv[i + 1]);
        else {
            fprintf(stderr, "bench_eval: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    /* The study's own assembly (bsc_session_open) with one run and nothing
     * but the model: the evaluator evaluates in batches of `batch`. */
    bsc_session *ss = NULL;
    bsc_status s;
    if ((s = bench_open_model(argv[1], device, gemm, batch, &ss)) != BSC_OK)
        return die(s);
    const bsc_pipeline *p = bsc_session_pipeline(ss);
    bsc_context *ctx = bsc_session_context(ss);
    bsc_model *m = bsc_session_model(ss);
    bsc_evaluator *ev = bsc_session_evaluator(ss);
    if (batch <= 0)
        batch = p->training.eval_batch_size;
    size_t np = bsc_model_n_params(m);
    float *params = malloc(np * sizeof(float));
    float *dir1 = malloc(np * sizeof(float)), *dir2 = malloc(np * sizeof(float));
    int64_t d = (int64_t)np;
    bsc_shape vs = bsc_shape_make(1, &d);
    bsc_tensor center = {0}, d1 = {0}, d2 = {0};
    /* The run's initial weights are the center. */
    if ((s = bsc_tensor_read(ctx, bsc_model_params(m), params)) != BSC_OK ||
        (s = bsc_tensor_alloc(ctx, BSC_F32, &vs, &center)) != BSC_OK ||
        (s = bsc_tensor_alloc(ctx, BSC_F32, &vs, &d1)) != BSC_OK ||
        (s = bsc_tensor_alloc(ctx, BSC_F32, &vs, &d2)) != BSC_OK ||
        (s = bsc_tensor_write(ctx, &center, params)) != BSC_OK)
        return die(s);
    bsc_rng_fill_normal(p->seed, BSC_RNG_DIRECTIONS, 0, dir1, np, 0.0f, 0.01f);
    bsc_rng_fill_normal(p->seed, BSC_RNG_DIRECTIONS, 1, dir2, np, 0.0f, 0.01f);
    if ((s = bsc_tensor_write(ctx, &d1, dir1)) != BSC_OK ||
        (s = bsc_tensor_write(ctx, &d2, dir2)) != BSC_OK)
        return die(s);

    /* Warm-up: every kernel of the forward pass and the lincomb. */
    double loss, acc;
    if ((s = bsc_tensor_combine(ctx, np, 1.0f, &center, 0.1f, &d1, 0.0f, NULL, bsc_model_params(m))) != BSC_OK ||
        (s = bsc_eval_loss(ev, BSC_SPLIT_TRAIN, (size_t)batch, &loss, &acc)) != BSC_OK)
        return die(s);

    size_t n = bsc_eval_split_size(ev, BSC_SPLIT_TRAIN);
    double t0 = bsc_now();
    for (long k = 0; k < reps; k++)
        if ((s = bsc_eval_loss(ev, BSC_SPLIT_TRAIN, 0, &loss, &acc)) != BSC_OK)
            return die(s);
    double el = bsc_now() - t0;
    printf("batchscope %s evals/s=%.3f samples/s=%.0f n=%zu batch=%ld loss=%.6f\n", p->name,
           (double)reps / el, (double)reps * (double)n / el, n, batch, loss);

    const long points = 20;
    t0 = bsc_now();
    for (long k = 0; k < points; k++) {
        float x = -1.0f + 2.0f * (float)k / (float)(points - 1);
        if ((s = bsc_tensor_combine(ctx, np, 1.0f, &center, x, &d1, -x, &d2, bsc_model_params(m))) != BSC_OK ||
            (s = bsc_eval_loss(ev, BSC_SPLIT_TRAIN, (size_t)subset, &loss, &acc)) != BSC_OK)
            return die(s);
    }
    el = (bsc_now() - t0) / (double)points;
    printf("batchscope surface-plain %ldx%ld subset=%ld s/point=%.4f estimate_s=%.0f\n", grid,
           grid, subset, el, el * (double)(grid * grid));

    /* The surface analysis' path: a family over (theta*, d1, d2). */
    const bsc_tensor *basis[3] = {&center, &d1, &d2};
    bsc_eval_family *fam = NULL;
    t0 = bsc_now();
    if ((s = bsc_eval_family_create(ev, 3, basis, NULL, BSC_SPLIT_TRAIN, (size_t)subset,
                                    &fam)) != BSC_OK ||
        (s = bsc_finish(ctx)) != BSC_OK)
        return die(s);
    double setup = bsc_now() - t0;
    float c0[3] = {1.0f, 0.1f, 0.0f};
    if ((s = bsc_eval_family_loss(fam, c0, &loss, &acc)) != BSC_OK)   /* warm-up */
        return die(s);
    t0 = bsc_now();
    for (long k = 0; k < points; k++) {
        float x = -1.0f + 2.0f * (float)k / (float)(points - 1);
        float c[3] = {1.0f, x, -x};
        if ((s = bsc_eval_family_loss(fam, c, &loss, &acc)) != BSC_OK)
            return die(s);
    }
    el = (bsc_now() - t0) / (double)points;
    printf("batchscope surface %ldx%ld subset=%ld s/point=%.4f estimate_s=%.0f setup_s=%.3f "
           "mode=%s\n", grid, grid, subset, el, el * (double)(grid * grid) + setup, setup,
           bsc_eval_family_mode(fam));
    bsc_eval_family_free(fam);

    bsc_tensor_free(&center);
    bsc_tensor_free(&d1);
    bsc_tensor_free(&d2);
    bsc_session_free(ss);
    free(params), free(dir1), free(dir2);
    return 0;
}
