/* Benchmark: training throughput (samples/s) of a pipeline's model at one
 * batch size -- gather, forward, backward, optimizer step, step loss -- over
 * one epoch of the pipeline's training set, after a warm-up that builds every
 * kernel (compile time is never counted).
 *
 *   bench_train PIPELINE.yaml BATCH [STEPS] [--device SEL]
 *
 * Prints one line: "batchscope <name> bs=<B> samples/s=<x> steps=<n> s=<t>". */
#include "batchscope/batchscope.h"
#include "batchscope/dataset.h"
#include "batchscope/fsutil.h"
#include "batchscope/model.h"
#include "batchscope/optim.h"
#include "batchscope/rng.h"
#include "train.h"

#include <libgen.h>
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
        fprintf(stderr, "usage: bench_train PIPELINE.yaml BATCH [STEPS] [--device SEL]\n");
        return 2;
    }
    const char *device = NULL;
    long steps_limit = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else
            steps_limit = atol(argv[i]);
    }
    long B = atol(argv[2]);
    char bs[64];
    snprintf(bs, sizeof bs, "training.batch_sizes=[%ld]", B);
    const char *sets[] = {bs};
    bsc_pipeline *p = NULL;
    bsc_registry *r = NULL;
    bsc_context *ctx = NULL;
    bsc_dataset_config dc;
    bsc_dataset *host = NULL;
    bsc_device_dataset data;
    bsc_model *m = NULL;
    bsc_optimizer *opt = NULL;
    bsc_status s;
    if ((s = bsc_pipeline_load(argv[1], sets, 1, &p)) != BSC_OK ||
        (s = bsc_registry_new(&r)) != BSC_OK || (s = bsc_registry_load_default(r)) != BSC_OK)
        return die(s);
    char *dir = strdup(p->path);
    if ((s = bsc_dataset_config_parse(p->dataset, dirname(dir), &dc)) != BSC_OK ||
        (s = bsc_dataset_load(&dc, &host)) != BSC_OK ||
        (s = bsc_context_open(device ? device : p->device, &ctx)) != BSC_OK ||
        (s = bsc_blas_tune(ctx)) != BSC_OK ||
        (s = bsc_dataset_upload(ctx, host, &data)) != BSC_OK ||
        (s = bsc_model_create(r, p->layers, p->n_layers, &p->loss, &host->sample,
                              host->n_classes, &m)) != BSC_OK ||
        (s = bsc_model_bind(m, ctx, (size_t)B)) != BSC_OK ||
        (s = bsc_optimizer_create(ctx, &p->training.optimizer, bsc_model_n_params(m), &opt)) !=
            BSC_OK)
        return die(s);
    size_t np = bsc_model_n_params(m), ns = bsc_model_n_state(m);
    float *params = malloc(np * sizeof(float)), *state = malloc((ns ? ns : 1) * sizeof(float));
    uint32_t *perm = malloc(data.train.n * sizeof *perm);
    bsc_trainer t;
    memset(&t, 0, sizeof t);
    t.ctx = ctx;
    t.pipeline = p;
    t.model = m;
    t.data = &data;
    t.opt = opt;
    if ((s = bsc_model_init_host(m, p->seed, p->training.init, params, state)) != BSC_OK ||
        (s = bsc_tensor_write(ctx, bsc_model_params(m), params)) != BSC_OK ||
        (ns && (s = bsc_tensor_write(ctx, bsc_model_state(m), state)) != BSC_OK) ||
        (s = bsc_trainer_prepare(&t, B)) != BSC_OK ||
        (s = bsc_rng_permutation(p->seed, BSC_RNG_SHUFFLE, 1, perm, data.train.n)) != BSC_OK ||
        (s = bsc_tensor_write(ctx, &t.perm, perm)) != BSC_OK)
        return die(s);
    size_t steps = data.train.n / (size_t)B;
    if (steps_limit > 0 && (size_t)steps_limit < steps)
        steps = (size_t)steps_limit;
    /* Warm-up: builds every kernel and lets CLBlast pick its paths. */
    for (size_t k = 0; k < 3 && k < steps; k++)
        if ((s = bsc_train_step(&t, k * (size_t)B, (size_t)B, k + 1, 0.01f, k)) != BSC_OK)
            return die(s);
    if ((s = bsc_finish(ctx)) != BSC_OK)
        return die(s);
    double t0 = bsc_now();
    for (size_t k = 0; k < steps; k++)
        if ((s = bsc_train_step(&t, k * (size_t)B, (size_t)B, k + 4, 0.01f, k)) != BSC_OK)
            return die(s);
    if ((s = bsc_finish(ctx)) != BSC_OK)
        return die(s);
    double el = bsc_now() - t0;
    printf("batchscope %s bs=%ld samples/s=%.0f steps=%zu s=%.3f\n", p->name, B,
           (double)steps * (double)B / el, steps, el);
    bsc_trainer_release(&t);
    bsc_optimizer_free(opt);
    bsc_model_free(m);
    bsc_device_dataset_free(&data);
    bsc_dataset_free(host);
    bsc_context_free(ctx);
    bsc_registry_free(r);
    bsc_pipeline_free(p);
    free(params), free(state), free(perm), free(dir);
    return 0;
}
