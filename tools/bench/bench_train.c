/* Benchmark: training throughput (samples/s) of a pipeline's model at one
 * batch size -- gather, forward, backward, optimizer step, step loss -- over
 * one epoch of the pipeline's training set, after a warm-up that builds every
 * kernel (compile time is never counted).
 *
 *   bench_train PIPELINE.yaml BATCH [STEPS] [--device SEL] [--gemm auto|clblast|host]
 *
 * Prints one line: "batchscope <name> bs=<B> samples/s=<x> steps=<n> s=<t> gemm=<backend>". */
#include "batchscope/batchscope.h"
#include "batchscope/fsutil.h"
#include "batchscope/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(bsc_status s)
{
    fprintf(stderr, "bench_train: %s\n", bsc_last_error());
    return bsc_status_exit_code(s) ? bsc_status_exit_code(s) : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_train PIPELINE.yaml BATCH [STEPS] [--device SEL] "
                        "[--gemm auto|clblast|host]\n");
        return 2;
    }
    const char *device = NULL, *gemm = NULL;
    long steps_limit = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--gemm") && i + 1 < argc)
            gemm = argv[++i];
        else
            steps_limit = atol(argv[i]);
    }
    long B = atol(argv[2]);
    char bs[64];
    snprintf(bs, sizeof bs, "training.batch_sizes=[%ld]", B);
    /* Training alone, one run at batch B: the study's own assembly
     * (bsc_session_open), without observers, analyses or report. */
    const char *sets[] = {bs, "training.runs=[]", "observers=[]", "analyses=[]",
                          "report={enabled: false}"};
    bsc_run_options o = {0};
    o.pipeline_path = argv[1];
    o.device = device;
    o.gemm = gemm;
    o.overrides = sets;
    o.n_overrides = sizeof sets / sizeof *sets;
    o.quiet = 1;
    bsc_session *ss = NULL;
    bsc_status s;
    if ((s = bsc_session_open(&o, &ss)) != BSC_OK || (s = bsc_session_start_run(ss, 0)) != BSC_OK)
        return die(s);
    bsc_context *ctx = bsc_session_context(ss);
    const bsc_pipeline *p = bsc_session_pipeline(ss);
    size_t steps = bsc_session_data(ss)->train.n / (size_t)B;
    if (steps_limit > 0 && (size_t)steps_limit < steps)
        steps = (size_t)steps_limit;
    /* Warm-up: builds every kernel and lets CLBlast pick its paths. */
    for (size_t k = 0; k < 3 && k < steps; k++)
        if ((s = bsc_session_step(ss, k, 0.01f)) != BSC_OK)
            return die(s);
    if ((s = bsc_finish(ctx)) != BSC_OK)
        return die(s);
    double t0 = bsc_now();
    for (size_t k = 0; k < steps; k++)
        if ((s = bsc_session_step(ss, k, 0.01f)) != BSC_OK)
            return die(s);
    if ((s = bsc_finish(ctx)) != BSC_OK)
        return die(s);
    double el = bsc_now() - t0;
    printf("batchscope %s bs=%ld samples/s=%.0f steps=%zu s=%.3f gemm=%s\n", p->name, B,
           (double)steps * (double)B / el, steps, el,
           bsc_gemm_backend_name(bsc_gemm_active(ctx)));
    bsc_session_free(ss);
    return 0;
}
