/* Benchmark: the evaluator the analyses stand on -- forward-only loss
 * evaluations of a pipeline's model over its full training set, and the
 * cost of one loss-surface point (theta* + x d1 + y d2 written by the
 * analyses' lincomb kernel, then the loss over a subset), from which the
 * time of a whole surface follows. Kernels are built in a warm-up first
 * (compile time is never counted).
 *
 *   bench_eval PIPELINE.yaml [--reps N] [--subset N] [--grid N] [--batch N]
 *              [--device SEL]
 *
 * Defaults: 5 full-set evaluations, a 10000-example subset, a 51 x 51 grid,
 * the pipeline's eval_batch_size. Prints
 *   "batchscope <name> evals/s=<e> samples/s=<s> n=<train> batch=<b>"
 *   "batchscope surface <g>x<g> subset=<n> s/point=<t> estimate_s=<T>"
 * (the surface estimate is g*g points at the measured cost of 20 points). */
#include "batchscope/batchscope.h"
#include "batchscope/fsutil.h"
#include "batchscope/rng.h"
#include "batchscope/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(bsc_status s)
{
    fprintf(stderr, "bench_eval: %s\n", bsc_last_error());
    return bsc_status_exit_code(s) ? bsc_status_exit_code(s) : 1;
}

/* cl/analyses/analyses.cl, embedded into this program by batchscope_embed_cl
 * (CMakeLists.txt). */
const char *bench_eval_cl_text(const char *file);

/* params = 1*c + x*d1 + y*d2 with the analyses' own kernel, built from the
 * copy embedded here so that the bench needs no plugin's internals. */
static bsc_status lincomb(bsc_context *ctx, size_t n, float x, const bsc_tensor *c,
                          const bsc_tensor *d1, float y, const bsc_tensor *d2, bsc_tensor *out)
{
    cl_kernel k;
    bsc_status s = bsc_kernel_from_source(ctx, "bench_eval/analyses.cl",
                                          bench_eval_cl_text("analyses.cl"), NULL, "lincomb3",
                                          &k);
    if (s != BSC_OK)
        return s;
    cl_ulong nn = n, co = c->offset, o1 = d1->offset, o2 = d2->offset, oo = out->offset;
    float one = 1.0f;
    bsc_karg args[] = {BSC_ARG(nn), BSC_ARG(one), BSC_ARG(c->mem), BSC_ARG(co),
                       BSC_ARG(x), BSC_ARG(d1->mem), BSC_ARG(o1),
                       BSC_ARG(y), BSC_ARG(d2->mem), BSC_ARG(o2),
                       BSC_ARG(out->mem), BSC_ARG(oo)};
    size_t g = n, l = 256;
    return bsc_launch(ctx, k, 12, args, 1, &g, &l);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_eval PIPELINE.yaml [--reps N] [--subset N] [--grid N] "
                        "[--batch N] [--device SEL]\n");
        return 2;
    }
    const char *device = NULL;
    long reps = 5, subset = 10000, grid = 51, batch = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device"))
            device = argv[i + 1];
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
    char eb[64];
    if (batch > 0)
        snprintf(eb, sizeof eb, "training.eval_batch_size=%ld", batch);
    const char *sets[] = {"training.runs=[]", "observers=[]", "analyses=[]",
                          "report={enabled: false}", eb};
    bsc_run_options o = {0};
    o.pipeline_path = argv[1];
    o.device = device;
    o.overrides = sets;
    o.n_overrides = batch > 0 ? 5 : 4;
    o.quiet = 1;
    bsc_session *ss = NULL;
    bsc_status s;
    if ((s = bsc_session_open(&o, &ss)) != BSC_OK || (s = bsc_session_start_run(ss, 0)) != BSC_OK)
        return die(s);
    const bsc_pipeline *p = bsc_session_pipeline(ss);
    bsc_context *ctx = bsc_session_context(ss);
    bsc_model *m = bsc_session_model(ss);
    bsc_evaluator *ev = bsc_session_evaluator(ss);
    if (batch <= 0)
        batch = p->training.eval_batch_size;
    size_t np = bsc_model_n_params(m);
    float *params = malloc(np * sizeof(float));
    float *dir1 = malloc(np * sizeof(float));
    int64_t d = (int64_t)np;
    bsc_shape vs = bsc_shape_make(1, &d);
    bsc_tensor center = {0}, d1 = {0};
    /* The run's initial weights are the center. */
    if ((s = bsc_tensor_read(ctx, bsc_model_params(m), params)) != BSC_OK ||
        (s = bsc_tensor_alloc(ctx, BSC_F32, &vs, &center)) != BSC_OK ||
        (s = bsc_tensor_alloc(ctx, BSC_F32, &vs, &d1)) != BSC_OK ||
        (s = bsc_tensor_write(ctx, &center, params)) != BSC_OK)
        return die(s);
    bsc_rng_fill_normal(p->seed, BSC_RNG_DIRECTIONS, 0, dir1, np, 0.0f, 0.01f);
    if ((s = bsc_tensor_write(ctx, &d1, dir1)) != BSC_OK)
        return die(s);

    /* Warm-up: every kernel of the forward pass and the lincomb. */
    double loss, acc;
    if ((s = lincomb(ctx, np, 0.1f, &center, &d1, 0.0f, &d1, bsc_model_params(m))) != BSC_OK ||
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
        if ((s = lincomb(ctx, np, x, &center, &d1, -x, &d1, bsc_model_params(m))) != BSC_OK ||
            (s = bsc_eval_loss(ev, BSC_SPLIT_TRAIN, (size_t)subset, &loss, &acc)) != BSC_OK)
            return die(s);
    }
    el = (bsc_now() - t0) / (double)points;
    printf("batchscope surface %ldx%ld subset=%ld s/point=%.4f estimate_s=%.0f\n", grid, grid,
           subset, el, el * (double)(grid * grid));

    bsc_tensor_free(&center);
    bsc_tensor_free(&d1);
    bsc_session_free(ss);
    free(params), free(dir1);
    return 0;
}
