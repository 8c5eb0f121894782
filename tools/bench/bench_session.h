/* What the model benchmarks (bench_eval, bench_hvp) share: the study's own
 * assembly (bsc_session_open) of a pipeline's model alone -- no runs,
 * observers, analyses or report -- with its first run started, evaluating
 * in batches of `batch` (<= 0: the pipeline's eval_batch_size). Header
 * only: each benchmark is one executable built from one .c file. */
#ifndef BATCHSCOPE_BENCH_SESSION_H
#define BATCHSCOPE_BENCH_SESSION_H

#include <stdio.h>

#include "batchscope/batchscope.h"
#include "batchscope/session.h"

static bsc_status bench_open_model(const char *pipeline, const char *device, const char *gemm,
                                   long batch, bsc_session **ss)
{
    char eb[64];
    if (batch > 0)
        snprintf(eb, sizeof eb, "training.eval_batch_size=%ld", batch);
    const char *sets[] = {"training.runs=[]", "observers=[]", "analyses=[]",
                          "report={enabled: false}", eb};
    bsc_run_options o = {0};
    o.pipeline_path = pipeline;
    o.device = device;
    o.gemm = gemm;
    o.overrides = sets;
    o.n_overrides = batch > 0 ? 5 : 4;
    o.quiet = 1;
    bsc_status s = bsc_session_open(&o, ss);
    return s == BSC_OK ? bsc_session_start_run(*ss, 0) : s;
}

/* The benchmark's exit status for a failure, after printing its error. */
static int bench_die(const char *name, bsc_status s)
{
    fprintf(stderr, "%s: %s\n", name, bsc_last_error());
    return bsc_status_exit_code(s) ? bsc_status_exit_code(s) : 1;
}

#endif
