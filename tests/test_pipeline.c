/* The pipeline: struct values and defaults, errors at the right line:col,
 * overrides, plugin paths, type checks and the resolved copy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "batchscope/pipeline.h"
#include "batchscope/registry.h"
#include "testutil.h"

static int setup(void **state)
{
    (void)state;
    return tu_scratch_setup("pipeline");
}

static bsc_pipeline *load_ok(const char *name, const char *text, const char *const *ov,
                             size_t n_ov)
{
    bsc_pipeline *p = NULL;
    bsc_status st = bsc_pipeline_load(tu_scratch_write(name, text), ov, n_ov, &p);
    if (st != BSC_OK)
        fail_msg("load failed: %s", bsc_last_error());
    assert_non_null(p);
    return p;
}

/* Loading must fail with `code` and the message "<tu_scratch>/<name>:<rest>";
 * a `rest` that starts with '!' is compared verbatim (no file prefix). */
static void load_fails(const char *name, const char *text, const char *const *ov, size_t n_ov,
                       bsc_status code, const char *rest)
{
    char want[1024];
    bsc_pipeline *p = (bsc_pipeline *)1;
    bsc_status st = bsc_pipeline_load(tu_scratch_write(name, text), ov, n_ov, &p);
    if (st != code)
        fail_msg("expected %s, got %s: %s", bsc_status_name(code), bsc_status_name(st),
                 bsc_last_error());
    assert_null(p);
    if (rest[0] == '!')
        snprintf(want, sizeof want, "%s", rest + 1);
    else
        snprintf(want, sizeof want, "%s/%s:%s", tu_scratch, name, rest);
    assert_string_equal(bsc_last_error(), want);
}

static const char full_text[] =
    "version: 1\n"                                   /* 1 */
    "name: reference\n"                              /* 2 */
    "seed: 42\n"                                     /* 3 */
    "device: pocl\n"                                 /* 4 */
    "plugins: [extra/my.so, /abs/other.so]\n"        /* 5 */
    "dataset:\n"                                     /* 6 */
    "  type: mnist\n"                                /* 7 */
    "  dir: data\n"                                  /* 8 */
    "model:\n"                                       /* 9 */
    "  - type: flatten\n"                            /* 10 */
    "  - type: dense\n"                              /* 11 */
    "    units: 128\n"                               /* 12 */
    "  - {type: relu}\n"                             /* 13 */
    "loss: softmax_cross_entropy\n"                  /* 14 */
    "training:\n"                                    /* 15 */
    "  epochs: 20\n"                                 /* 16 */
    "  batch_sizes: [256, 32, 1024]\n"               /* 17 */
    "  optimizer:\n"                                 /* 18 */
    "    type: sgd\n"                                /* 19 */
    "    lr: 0.05\n"                                 /* 20 */
    "    momentum: 0.9\n"                            /* 21 */
    "    nesterov: true\n"                           /* 22 */
    "    weight_decay: 5e-4\n"                       /* 23 */
    "  schedule:\n"                                  /* 24 */
    "    type: step\n"                               /* 25 */
    "    step_epochs: 5\n"                           /* 26 */
    "    gamma: 0.5\n"                               /* 27 */
    "    warmup_epochs: 0.5\n"                       /* 28 */
    "  lr_scaling: sqrt\n"                           /* 29 */
    "  base_batch_size: 128\n"                       /* 30 */
    "  same_init: no\n"                              /* 31 */
    "  drop_last: yes\n"                             /* 32 */
    "  shuffle: off\n"                               /* 33 */
    "  eval_batch_size: 500\n"                       /* 34 */
    "  checkpoint_every: 5\n"                        /* 35 */
    "  init: he_normal\n"                            /* 36 */
    "observers:\n"                                   /* 37 */
    "  - type: distance\n"                           /* 38 */
    "analyses:\n"                                    /* 39 */
    "  - type: interpolation\n"                      /* 40 */
    "    alpha: [-1, 2]\n"                           /* 41 */
    "  - type: sharpness\n"                          /* 42 */
    "report:\n"                                      /* 43 */
    "  formats: [png]\n";                            /* 44 */

static void test_full_pipeline(void **state)
{
    (void)state;
    bsc_pipeline *p = load_ok("full.yaml", full_text, NULL, 0);
    char want[512];

    assert_int_equal(p->version, 1);
    assert_string_equal(p->name, "reference");
    assert_int_equal(p->seed, 42);
    assert_string_equal(p->device, "pocl");
    assert_int_equal(p->n_plugins, 2);
    snprintf(want, sizeof want, "%s/extra/my.so", tu_scratch);
    assert_string_equal(p->plugins[0], want);
    assert_string_equal(p->plugins[1], "/abs/other.so");
    assert_non_null(p->dataset);
    assert_string_equal(bsc_node_get(p->dataset, "type")->value, "mnist");
    assert_int_equal(p->dataset->line, 7);

    assert_int_equal(p->n_layers, 3);
    assert_string_equal(p->layers[0].type, "flatten");
    assert_string_equal(p->layers[1].type, "dense");
    assert_string_equal(bsc_node_get(p->layers[1].node, "units")->value, "128");
    assert_string_equal(p->layers[2].type, "relu");
    assert_string_equal(p->loss.type, "softmax_cross_entropy");
    assert_int_equal(p->loss.node->kind, BSC_NODE_SCALAR);

    const bsc_training_cfg *t = &p->training;
    assert_int_equal(p->has_training, 1);
    assert_int_equal(t->epochs, 20);
    assert_int_equal(t->n_batch_sizes, 3);
    assert_int_equal(t->batch_sizes[0], 256);
    assert_int_equal(t->batch_sizes[1], 32);
    assert_int_equal(t->batch_sizes[2], 1024);
    assert_int_equal(t->optimizer.kind, BSC_OPTIMIZER_SGD);
    assert_true(t->optimizer.lr == 0.05);
    assert_true(t->optimizer.momentum == 0.9);
    assert_int_equal(t->optimizer.nesterov, 1);
    assert_true(t->optimizer.weight_decay == 5e-4);
    assert_int_equal(t->schedule.kind, BSC_SCHED_STEP);
    assert_int_equal(t->schedule.step_epochs, 5);
    assert_true(t->schedule.gamma == 0.5);
    assert_true(t->schedule.warmup_epochs == 0.5);
    assert_int_equal(t->lr_scaling, BSC_LR_SQRT);
    assert_int_equal(t->base_batch_size, 128);
    assert_int_equal(t->same_init, 0);
    assert_int_equal(t->drop_last, 1);
    assert_int_equal(t->shuffle, 0);
    assert_int_equal(t->eval_batch_size, 500);
    assert_int_equal(t->checkpoint_every, 5);
    assert_string_equal(t->init, "he_normal");

    assert_int_equal(p->n_observers, 1);
    assert_string_equal(p->observers[0].type, "distance");
    assert_int_equal(p->n_analyses, 2);
    assert_string_equal(p->analyses[0].type, "interpolation");
    assert_int_equal(bsc_node_get(p->analyses[0].node, "alpha")->n, 2);
    assert_string_equal(p->analyses[1].type, "sharpness");
    assert_non_null(p->report);
    assert_int_equal(p->report->kind, BSC_NODE_MAP);
    bsc_pipeline_free(p);
}

static void test_defaults(void **state)
{
    (void)state;
    bsc_pipeline *p = load_ok("my_study.yml",
                              "version: 1\n"
                              "model: [{type: dense, units: 10}]\n"
                              "loss: {type: mse}\n"
                              "training:\n"
                              "  epochs: 1\n"
                              "  batch_sizes: [512, 64]\n",
                              NULL, 0);
    const bsc_training_cfg *t = &p->training;
    assert_string_equal(p->name, "my_study");
    assert_int_equal(p->gemm, BSC_GEMM_AUTO);
    assert_int_equal(p->seed, 0);
    assert_null(p->device);
    assert_int_equal(p->n_plugins, 0);
    assert_null(p->dataset);
    assert_null(p->report);
    assert_int_equal(p->n_observers, 0);
    assert_int_equal(p->n_analyses, 0);
    assert_string_equal(p->loss.type, "mse");
    assert_int_equal(p->loss.node->kind, BSC_NODE_MAP);
    assert_int_equal(t->optimizer.kind, BSC_OPTIMIZER_SGD);
    assert_true(t->optimizer.lr == 0.01);
    assert_true(t->optimizer.momentum == 0);
    assert_int_equal(t->optimizer.nesterov, 0);
    assert_true(t->optimizer.weight_decay == 0);
    assert_int_equal(t->schedule.kind, BSC_SCHED_CONSTANT);
    assert_int_equal(t->schedule.step_epochs, 1);
    assert_true(t->schedule.gamma == 0.1);
    assert_true(t->schedule.min_lr == 0);
    assert_true(t->schedule.warmup_epochs == 0);
    assert_int_equal(t->lr_scaling, BSC_LR_NONE);
    assert_int_equal(t->base_batch_size, 64);
    assert_int_equal(t->same_init, 1);
    assert_int_equal(t->drop_last, 0);
    assert_int_equal(t->shuffle, 1);
    assert_int_equal(t->eval_batch_size, 1000);
    assert_int_equal(t->checkpoint_every, 0);
    assert_string_equal(t->init, "torch");
    bsc_pipeline_free(p);

    /* Adam by name alone gets Adam's defaults. */
    p = load_ok("adam.yaml",
                "version: 1\n"
                "training:\n"
                "  epochs: 1\n"
                "  batch_sizes: 8\n"
                "  optimizer: adam\n"
                "  schedule: {type: cosine, min_lr: 1e-5}\n",
                NULL, 0);
    t = &p->training;
    assert_int_equal(t->optimizer.kind, BSC_OPTIMIZER_ADAM);
    assert_true(t->optimizer.lr == 0.001);
    assert_true(t->optimizer.beta1 == 0.9);
    assert_true(t->optimizer.beta2 == 0.999);
    assert_true(t->optimizer.eps == 1e-8);
    assert_int_equal(t->schedule.kind, BSC_SCHED_COSINE);
    assert_true(t->schedule.min_lr == 1e-5);
    bsc_pipeline_free(p);
}

static void test_minimal_without_model(void **state)
{
    (void)state;
    bsc_pipeline *p = load_ok("devices_only.yaml", "version: 1\nname: probe\n", NULL, 0);
    assert_string_equal(p->name, "probe");
    assert_int_equal(p->n_layers, 0);
    assert_int_equal(p->has_training, 0);
    assert_null(p->loss.type);
    bsc_pipeline_free(p);

    load_fails("model_no_training.yaml", "version: 1\nmodel:\n  - type: dense\n", NULL, 0,
               BSC_ERR_INVALID, "2:1: a pipeline with a model needs a 'training' section");
    load_fails("no_version.yaml", "name: x\n", NULL, 0, BSC_ERR_INVALID,
               "1:1: missing required key 'version' (this batchscope reads pipeline version 1)");
    load_fails("version2.yaml", "version: 2\n", NULL, 0, BSC_ERR_INVALID,
               "1:10: unsupported pipeline version '2' (this batchscope reads version 1)");
    load_fails("empty_model.yaml", "version: 1\nmodel: []\n", NULL, 0, BSC_ERR_INVALID,
               "2:8: model must list at least one entry");
    load_fails("null_model.yaml", "version: 1\nmodel:\ntraining: {epochs: 1, batch_sizes: 1}\n",
               NULL, 0, BSC_ERR_INVALID, "2:7: model must list at least one entry");
    load_fails("scalar_analyses.yaml", "version: 1\nanalyses: surface\n", NULL, 0,
               BSC_ERR_INVALID, "2:11: analyses must be a list of mappings, got a scalar");
    /* An empty `analyses:` or `observers:` (every entry commented out) is
     * an empty list, not an error. */
    p = load_ok("empty_lists.yaml", "version: 1\nobservers:\n#  - {type: distance}\n"
                "analyses:\n", NULL, 0);
    assert_int_equal(p->n_observers, 0);
    assert_int_equal(p->n_analyses, 0);
    bsc_pipeline_free(p);
    p = load_ok("tilde.yaml", "version: 1\nanalyses: ~\nobservers: []\n", NULL, 0);
    assert_int_equal(p->n_analyses, 0);
    bsc_pipeline_free(p);
    load_fails("untyped.yaml",
               "version: 1\nmodel:\n  - type: dense\n  - units: 3\ntraining: {epochs: 1, "
               "batch_sizes: 1}\n",
               NULL, 0, BSC_ERR_INVALID, "4:5: model.1 has no 'type'");
    load_fails("scalar.yaml", "just text\n", NULL, 0, BSC_ERR_INVALID,
               "1:1: a pipeline must be a mapping, got a scalar");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    load_fails("top.yaml", "version: 1\ntrainig:\n  epochs: 1\n", NULL, 0, BSC_ERR_INVALID,
               "2:1: unknown key 'trainig' in the pipeline (did you mean 'training'?)");
    load_fails("top2.yaml", "version: 1\nzzz: 1\n", NULL, 0, BSC_ERR_INVALID,
               "2:1: unknown key 'zzz' in the pipeline (expected one of: version, name, seed, "
               "device, gemm, plugins, dataset, model, loss, training, observers, analyses, report)");
    load_fails("opt_typo.yaml",
               "version: 1\n"
               "training:\n"
               "  epochs: 1\n"
               "  batch_sizes: [1]\n"
               "  optimizer:\n"
               "    type: adam\n"
               "    beta_1: 0.8\n",
               NULL, 0, BSC_ERR_INVALID,
               "7:5: unknown key 'beta_1' in training.optimizer (did you mean 'beta1'?)");
    load_fails("opt_wrong_type.yaml",
               "version: 1\n"
               "training:\n"
               "  epochs: 1\n"
               "  batch_sizes: [1]\n"
               "  optimizer: {type: adam, momentum: 0.9}\n",
               NULL, 0, BSC_ERR_INVALID,
               "5:27: 'momentum' does not apply to optimizer 'adam' (training.optimizer takes: "
               "type, lr, weight_decay, beta1, beta2, eps)");
    load_fails("sched.yaml",
               "version: 1\n"
               "training:\n"
               "  epochs: 1\n"
               "  batch_sizes: [1]\n"
               "  schedule: {type: cosine, gamma: 0.1}\n",
               NULL, 0, BSC_ERR_INVALID,
               "5:28: 'gamma' does not apply to schedule 'cosine' (training.schedule takes: "
               "type, min_lr, warmup_epochs)");
    load_fails("opt_kind.yaml",
               "version: 1\n"
               "training:\n"
               "  epochs: 1\n"
               "  batch_sizes: [1]\n"
               "  optimizer: adma\n",
               NULL, 0, BSC_ERR_INVALID,
               "5:14: training.optimizer must be one of sgd, adam, got 'adma'");
}

static void test_wrong_types_and_ranges(void **state)
{
    (void)state;
    load_fails("gemm.yaml", "version: 1\ngemm: cublas\n", NULL, 0, BSC_ERR_INVALID,
               "2:7: gemm must be auto, clblast or host, got 'cublas'");
    const char *host[] = {"gemm=host"};
    bsc_pipeline *p = load_ok("gemm_ok.yaml", "version: 1\ngemm: clblast\n", NULL, 0);
    assert_int_equal(p->gemm, BSC_GEMM_CLBLAST);
    bsc_pipeline_free(p);
    p = load_ok("gemm_ok.yaml", "version: 1\ngemm: clblast\n", host, 1);
    assert_int_equal(p->gemm, BSC_GEMM_HOST);
    bsc_pipeline_free(p);
    load_fails("epochs.yaml",
               "version: 1\n"
               "training:\n"
               "  epochs:    abc\n"
               "  batch_sizes: [1]\n",
               NULL, 0, BSC_ERR_INVALID,
               "3:14: training.epochs must be an integer in [1, 100000], got 'abc'");
    load_fails("epochs_float.yaml",
               "version: 1\ntraining:\n  epochs: 1.5\n  batch_sizes: [1]\n", NULL, 0,
               BSC_ERR_INVALID,
               "3:11: training.epochs must be an integer in [1, 100000], got '1.5'");
    load_fails("no_epochs.yaml", "version: 1\ntraining:\n  batch_sizes: [1]\n", NULL, 0,
               BSC_ERR_INVALID, "3:3: training.epochs is required");
    load_fails("momentum.yaml",
               "version: 1\n"
               "training:\n"
               "  epochs: 1\n"
               "  batch_sizes: [1]\n"
               "  optimizer:\n"
               "    momentum: 1.0\n",
               NULL, 0, BSC_ERR_INVALID,
               "6:15: training.optimizer.momentum must be a number in [0, 1), got '1.0'");
    load_fails("lr.yaml",
               "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [1]\n  optimizer: {lr: 0}\n",
               NULL, 0, BSC_ERR_INVALID,
               "5:19: training.optimizer.lr must be a finite number > 0, got '0'");
    load_fails("nesterov.yaml",
               "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [1]\n"
               "  optimizer: {nesterov: true}\n",
               NULL, 0, BSC_ERR_INVALID,
               "5:25: training.optimizer.nesterov requires momentum > 0");
    load_fails("seed.yaml", "version: 1\nseed: -1\n", NULL, 0, BSC_ERR_INVALID,
               "2:7: seed must be an integer >= 0, got '-1'");
    load_fails("scaling.yaml",
               "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [1]\n  lr_scaling: linar\n",
               NULL, 0, BSC_ERR_INVALID,
               "5:15: training.lr_scaling must be one of none, linear, sqrt, got 'linar' "
               "(did you mean 'linear'?)");
    load_fails("bool.yaml",
               "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [1]\n  shuffle: 2\n", NULL,
               0, BSC_ERR_INVALID, "5:12: training.shuffle must be true or false, got '2'");
    load_fails("bs_zero.yaml", "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [32, 0]\n",
               NULL, 0, BSC_ERR_INVALID,
               "4:21: training.batch_sizes must be a list of integers >= 1, got '0'");
    load_fails("bs_dup.yaml",
               "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [32, 64, 32]\n", NULL, 0,
               BSC_ERR_INVALID,
               "4:25: training.batch_sizes lists 32 twice (first at line 4, column 17)");
    load_fails("bs_empty.yaml", "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: []\n", NULL,
               0, BSC_ERR_INVALID, "4:16: training.batch_sizes must not be empty");
    load_fails("report.yaml", "version: 1\nreport: [a]\n", NULL, 0, BSC_ERR_INVALID,
               "2:9: report must be a mapping, got a list");
}

static void test_single_batch_size(void **state)
{
    (void)state;
    bsc_pipeline *p = load_ok("single.yaml",
                              "version: 1\ntraining:\n  epochs: 3\n  batch_sizes: 128\n", NULL, 0);
    assert_int_equal(p->training.n_batch_sizes, 1);
    assert_int_equal(p->training.batch_sizes[0], 128);
    assert_int_equal(p->training.base_batch_size, 128);
    bsc_pipeline_free(p);
}

/* training.runs: runs beside batch_sizes, named, inheriting the block's
 * rate, scaling and warm-up unless they set their own. */
static void test_named_runs(void **state)
{
    (void)state;
    bsc_pipeline *p = load_ok("runs.yaml",
                              "version: 1\n"
                              "training:\n"
                              "  epochs: 1\n"
                              "  batch_sizes: [32, 256]\n"
                              "  optimizer: {type: sgd, lr: 0.01, momentum: 0.9}\n"
                              "  lr_scaling: sqrt\n"
                              "  schedule: {type: constant, warmup_epochs: 0.5}\n"
                              "  runs:\n"
                              "    - {name: bs256-linear, batch_size: 256, lr_scaling: linear,"
                              " warmup_epochs: 1}\n"
                              "    - {name: big_lr.2, batch_size: 64, lr: 0.05}\n",
                              NULL, 0);
    const bsc_training_cfg *t = &p->training;
    assert_int_equal(t->n_batch_sizes, 2);
    assert_int_equal(t->n_runs, 4);
    /* the batch_sizes runs first, named bs<B>, with the block's values */
    static const char *const names[] = {"bs32", "bs256", "bs256-linear", "big_lr.2"};
    static const long bs[] = {32, 256, 256, 64};
    static const double lr[] = {0.01, 0.01, 0.01, 0.05};
    static const bsc_lr_scaling scaling[] = {BSC_LR_SQRT, BSC_LR_SQRT, BSC_LR_LINEAR,
                                             BSC_LR_SQRT};
    static const double warmup[] = {0.5, 0.5, 1.0, 0.5};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(t->runs[i].name, names[i]);
        assert_int_equal(t->runs[i].batch_size, bs[i]);
        assert_true(t->runs[i].lr == lr[i]);
        assert_int_equal(t->runs[i].lr_scaling, scaling[i]);
        assert_true(t->runs[i].warmup_epochs == warmup[i]);
    }
    /* the named runs count for the default base batch size */
    assert_int_equal(t->base_batch_size, 32);
    bsc_pipeline_free(p);

    /* without runs: one run per batch size, named bs<B> */
    p = load_ok("noruns.yaml", "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [8, 16]\n",
                NULL, 0);
    assert_int_equal(p->training.n_runs, 2);
    assert_string_equal(p->training.runs[0].name, "bs8");
    assert_string_equal(p->training.runs[1].name, "bs16");
    assert_int_equal(p->training.runs[1].batch_size, 16);
    assert_false(p->training.runs[0].data_parallel);
    bsc_pipeline_free(p);

    /* data_parallel: the block's value is every run's default */
    p = load_ok("dp.yaml", "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [8]\n"
                "  data_parallel: true\n  runs:\n    - {name: a, batch_size: 4}\n"
                "    - {name: b, batch_size: 4, data_parallel: false}\n", NULL, 0);
    assert_true(p->training.runs[0].data_parallel);
    assert_true(p->training.runs[1].data_parallel);
    assert_false(p->training.runs[2].data_parallel);
    bsc_pipeline_free(p);
}

static void test_named_run_errors(void **state)
{
    (void)state;
#define RUNS_HEAD "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [32]\n  runs:\n"
    load_fails("run_dup_bs.yaml", RUNS_HEAD "    - {name: bs32, batch_size: 32}\n", NULL, 0,
               BSC_ERR_INVALID,
               "6:14: training.runs.0.name 'bs32' is already a run of this study (from "
               "training.batch_sizes)");
    load_fails("run_dup.yaml",
               RUNS_HEAD "    - {name: a, batch_size: 64}\n    - {name: a, batch_size: 128}\n",
               NULL, 0, BSC_ERR_INVALID,
               "7:14: training.runs.1.name 'a' is already a run of this study");
    load_fails("run_chars.yaml", RUNS_HEAD "    - {name: a/b, batch_size: 64}\n", NULL, 0,
               BSC_ERR_INVALID,
               "6:14: training.runs.0.name 'a/b' must be 1-64 letters, digits, '-', '_' or "
               "'.', not starting with '.'");
    load_fails("run_dot.yaml", RUNS_HEAD "    - {name: .hidden, batch_size: 64}\n", NULL, 0,
               BSC_ERR_INVALID,
               "6:14: training.runs.0.name '.hidden' must be 1-64 letters, digits, '-', '_' or "
               "'.', not starting with '.'");
    load_fails("run_no_bs.yaml", RUNS_HEAD "    - {name: x, lr: 0.1}\n", NULL, 0,
               BSC_ERR_INVALID, "6:7: training.runs.0.batch_size is required");
    load_fails("run_no_name.yaml", RUNS_HEAD "    - {batch_size: 64}\n", NULL, 0,
               BSC_ERR_INVALID,
               "6:7: training.runs.0.name is required (it names the run's directory "
               "OUT/runs/<name>)");
    load_fails("run_key.yaml", RUNS_HEAD "    - {name: x, batch_size: 64, lr_scale: sqrt}\n",
               NULL, 0, BSC_ERR_INVALID,
               "6:33: unknown key 'lr_scale' in training.runs.0 (expected one of: name, "
               "batch_size, lr, lr_scaling, warmup_epochs, data_parallel)");
    load_fails("run_scaling.yaml",
               RUNS_HEAD "    - {name: x, batch_size: 64, lr_scaling: cube}\n", NULL, 0,
               BSC_ERR_INVALID,
               "6:45: training.runs.0.lr_scaling must be one of none, linear, sqrt, got 'cube'");
    load_fails("run_list.yaml", RUNS_HEAD "    x: 1\n", NULL, 0, BSC_ERR_INVALID,
               "6:5: training.runs must be a list of mappings, got a mapping");
#undef RUNS_HEAD
}

static const char ov_text[] = "version: 1\n"
                              "model:\n"
                              "  - type: flatten\n"
                              "  - type: dense\n"
                              "    units: 128\n"
                              "training:\n"
                              "  epochs: 20\n"
                              "  batch_sizes: [64]\n"
                              "report:\n";

static void test_overrides(void **state)
{
    (void)state;
    const char *const ov[] = {
        "training.epochs=2",
        "training.batch_sizes=[32, 256]",
        "training.schedule.type=cosine",
        "model.1.units=64",
        "name=\"007\"",
        "report.formats=[svg]",
    };
    bsc_pipeline *p = load_ok("ov.yaml", ov_text, ov, 6);
    const bsc_node *units, *type;
    assert_int_equal(p->training.epochs, 2);
    assert_int_equal(p->training.n_batch_sizes, 2);
    assert_int_equal(p->training.batch_sizes[0], 32);
    assert_int_equal(p->training.batch_sizes[1], 256);
    assert_int_equal(p->training.schedule.kind, BSC_SCHED_COSINE);
    assert_string_equal(p->name, "007");
    units = bsc_node_get(p->layers[1].node, "units");
    assert_string_equal(units->value, "64");
    /* Overridden nodes point at the override: 4th override, column 15. */
    assert_string_equal(units->file, "--set");
    assert_int_equal(units->line, 4);
    assert_int_equal(units->col, 15);
    type = bsc_node_get(bsc_node_get(bsc_node_get(p->root, "training"), "schedule"), "type");
    assert_string_equal(type->file, "--set");
    assert_int_equal(type->col, 24);
    assert_int_equal(bsc_node_key(bsc_node_get(bsc_node_get(p->root, "training"), "schedule"),
                                  "type")->col, 19);
    /* The null `report:` became a mapping. */
    assert_int_equal(p->report->kind, BSC_NODE_MAP);
    assert_string_equal(bsc_node_get(p->report, "formats")->items[0]->value, "svg");
    bsc_pipeline_free(p);
}

static void test_override_before_validation(void **state)
{
    (void)state;
    const char *const bad_epochs[] = {"training.epochs=abc"};
    const char *const bad_item[] = {"seed=1", "training.batch_sizes=[32, x]"};
    const char *const fixes[] = {"training.epochs=3"};
    load_fails("ov_bad.yaml", ov_text, bad_epochs, 1, BSC_ERR_INVALID,
               "!--set:1:17: training.epochs must be an integer in [1, 100000], got 'abc'");
    load_fails("ov_bad2.yaml", ov_text, bad_item, 2, BSC_ERR_INVALID,
               "!--set:2:27: training.batch_sizes must be a list of integers >= 1, got 'x'");
    /* An invalid file value that an override replaces is never seen. */
    bsc_pipeline *p = load_ok("ov_fixed.yaml",
                              "version: 1\ntraining:\n  epochs: lots\n  batch_sizes: [1]\n",
                              fixes, 1);
    assert_int_equal(p->training.epochs, 3);
    bsc_pipeline_free(p);
}

static void test_malformed_overrides(void **state)
{
    (void)state;
    const char *const no_eq[] = {"training.epochs"};
    const char *const empty_path[] = {"=3"};
    const char *const empty_key[] = {"training..epochs=3"};
    const char *const into_scalar[] = {"training.epochs.x=3"};
    const char *const out_of_range[] = {"model.5.units=3"};
    const char *const not_index[] = {"model.first.units=3"};
    const char *const bad_yaml[] = {"training.epochs=a: b: c"};
    const char *const no_value[] = {"training.epochs="};
    char want[512];

    load_fails("m1.yaml", ov_text, no_eq, 1, BSC_ERR_USAGE,
               "!override 'training.epochs' has no '=' (expected key.path=value)");
    load_fails("m2.yaml", ov_text, empty_path, 1, BSC_ERR_USAGE,
               "!override '=3' has an empty key path");
    load_fails("m3.yaml", ov_text, empty_key, 1, BSC_ERR_USAGE,
               "!override 'training..epochs=3' has an empty key at column 10");
    snprintf(want, sizeof want,
             "!override 'training.epochs.x=3': 'training.epochs' is a scalar (at %s/m4.yaml:7:11), "
             "cannot set 'x' inside it",
             tu_scratch);
    load_fails("m4.yaml", ov_text, into_scalar, 1, BSC_ERR_USAGE, want);
    snprintf(want, sizeof want,
             "!override 'model.5.units=3': index 5 is out of range (the list at %s/m5.yaml:3:3 "
             "has 2 items)",
             tu_scratch);
    load_fails("m5.yaml", ov_text, out_of_range, 1, BSC_ERR_USAGE, want);
    load_fails("m6.yaml", ov_text, not_index, 1, BSC_ERR_USAGE,
               "!override 'model.first.units=3': 'first' must be a list index (at column 7)");
    load_fails("m7.yaml", ov_text, bad_yaml, 1, BSC_ERR_USAGE,
               "!override 'training.epochs=a: b: c': --set:1:21: mapping values are not allowed "
               "in this context");
    load_fails("m8.yaml", ov_text, no_value, 1, BSC_ERR_USAGE,
               "!override 'training.epochs=' has no value");
}

static void test_plugin_paths(void **state)
{
    (void)state;
    char want[512];
    bsc_pipeline *p = load_ok("plugins.yaml",
                              "version: 1\nplugins:\n  - ../lib/a.so\n  - b\n  - /opt/c.so\n",
                              NULL, 0);
    assert_int_equal(p->n_plugins, 3);
    snprintf(want, sizeof want, "%s/../lib/a.so", tu_scratch);
    assert_string_equal(p->plugins[0], want);
    snprintf(want, sizeof want, "%s/b", tu_scratch);
    assert_string_equal(p->plugins[1], want);
    assert_string_equal(p->plugins[2], "/opt/c.so");
    bsc_pipeline_free(p);
    load_fails("plugins_bad.yaml", "version: 1\nplugins: {a: b}\n", NULL, 0, BSC_ERR_INVALID,
               "2:10: plugins must be a list of paths, got a mapping");
}

static void test_write_resolved(void **state)
{
    (void)state;
    const char *const ov[] = {"training.epochs=2", "model.1.units=\"64\""};
    bsc_pipeline *p = load_ok("resolved_src.yaml", ov_text, ov, 2), *again = NULL;
    char out[512];
    snprintf(out, sizeof out, "%s/pipeline.yaml", tu_scratch);
    assert_int_equal(bsc_pipeline_write(p, out), BSC_OK);
    assert_int_equal(bsc_pipeline_load(out, NULL, 0, &again), BSC_OK);
    assert_int_equal(again->training.epochs, 2);
    assert_int_equal(again->n_layers, 2);
    /* Quoting survives: "64" stays a string for the plugin to judge. */
    const bsc_node *units = bsc_node_get(again->layers[1].node, "units");
    assert_string_equal(units->value, "64");
    assert_int_equal(units->quoted, 1);
    assert_string_equal(again->name, "pipeline");
    bsc_pipeline_free(again);
    bsc_pipeline_free(p);
}

static void test_check_types(void **state)
{
    (void)state;
    bsc_registry *r = NULL;
    bsc_pipeline *p = load_ok("types.yaml",
                              "version: 1\n"
                              "model:\n"
                              "  - type: nosuchlayer\n"
                              "training: {epochs: 1, batch_sizes: 1}\n",
                              NULL, 0);
    char prefix[512];
    assert_int_equal(bsc_registry_new(&r), BSC_OK);
    /* An empty registry knows no type: the error points at the `type:` value. */
    assert_int_not_equal(bsc_pipeline_check_types(p, r), BSC_OK);
    snprintf(prefix, sizeof prefix, "%s/types.yaml:3:11: ", tu_scratch);
    assert_memory_equal(bsc_last_error(), prefix, strlen(prefix));
    assert_non_null(strstr(bsc_last_error(), "nosuchlayer"));
    bsc_pipeline_free(p);

    p = load_ok("notypes.yaml", "version: 1\n", NULL, 0);
    assert_int_equal(bsc_pipeline_check_types(p, r), BSC_OK);
    bsc_pipeline_free(p);
    bsc_registry_free(r);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Issue 12: the duplicate checks compared every entry with every earlier
 * one (80k keys 14 s; 200k batch sizes 12 s and 323 MB). With a hash set
 * 400k load in well under a second; quadratic time would take about a
 * minute, so the bound leaves room for a slow or sanitized build either
 * way. */
static void test_long_lists_linear(void **state)
{
    (void)state;
    enum { N = 400000 };
    size_t cap = (size_t)N * 12 + 256;
    char *text = malloc(cap);
    size_t n = (size_t)snprintf(text, cap, "version: 1\ntraining:\n  epochs: 1\n  batch_sizes: [");
    for (long i = 1; i <= N; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s%ld", i > 1 ? "," : "", i);
    snprintf(text + n, cap - n, "]\n");
    long rss0 = max_rss_kb();
    double t0 = now();
    bsc_pipeline *p = load_ok("long.yaml", text, NULL, 0);
    double secs = now() - t0;
    assert_int_equal(p->training.n_runs, N);
    assert_string_equal(p->training.runs[N - 1].name, "bs400000");
    bsc_pipeline_free(p);
    fprintf(stderr, "400k batch sizes: %.2f s\n", secs);
    if (secs > 20)
        fail_msg("400k batch sizes took %.1f s to load", secs);
#ifndef __SANITIZE_ADDRESS__
    /* (AddressSanitizer's redzones and quarantine would blur this) */
    long grown_mb = (max_rss_kb() - rss0) / 1024;
    fprintf(stderr, "400k batch sizes: %ld MB\n", grown_mb);
    if (grown_mb > 300)
        fail_msg("400k batch sizes took %ld MB to load", grown_mb);
#else
    (void)rss0;
#endif
    /* the duplicate is still found, naming the first occurrence */
    snprintf(text + n, cap - n, ",7]\n");
    /* "  batch_sizes: [" is 16 columns: 1 is at column 17, 7 at 29 */
    bsc_pipeline *q = (bsc_pipeline *)1;
    assert_int_equal(bsc_pipeline_load(tu_scratch_write("dup.yaml", text), NULL, 0, &q),
                     BSC_ERR_INVALID);
    if (!strstr(bsc_last_error(), "lists 7 twice (first at line 4, column 29)"))
        fail_msg("%s", bsc_last_error());
    free(text);
}

/* Issue 12: the study's name is a directory (results/<name>-<time>): the
 * rules of run names, with the error where the value was written. */
static void test_study_name_checked(void **state)
{
    (void)state;
    const char *ov[] = {"name=../../x"};
    load_fails("name.yaml", "version: 1\nname: ok\n", ov, 1, BSC_ERR_INVALID,
               "!--set:1:6: name '../../x' must be 1-64 letters, digits, '-', '_' or '.', not "
               "starting with '.' (it names the results directory)");
    load_fails("slash.yaml", "version: 1\nname: a/b\n", NULL, 0, BSC_ERR_INVALID,
               "2:7: name 'a/b' must be 1-64 letters, digits, '-', '_' or '.', not starting "
               "with '.' (it names the results directory)");
    bsc_pipeline *p = load_ok("fine.yaml", "version: 1\nname: my-study_2.b\n", NULL, 0);
    assert_string_equal(p->name, "my-study_2.b");
    bsc_pipeline_free(p);
    const char *big[] = {"training.batch_sizes=[32, 2000000000]"};
    load_fails("huge.yaml", "version: 1\ntraining: {epochs: 1, batch_sizes: 1}\n", big, 1,
               BSC_ERR_INVALID, "!--set:1:27: training.batch_sizes: 2000000000 is larger than "
               "any batch batchscope trains (at most 1073741824)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_pipeline),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_minimal_without_model),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types_and_ranges),
        cmocka_unit_test(test_single_batch_size),
        cmocka_unit_test(test_named_runs),
        cmocka_unit_test(test_named_run_errors),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_override_before_validation),
        cmocka_unit_test(test_malformed_overrides),
        cmocka_unit_test(test_plugin_paths),
        cmocka_unit_test(test_write_resolved),
        cmocka_unit_test(test_check_types),
        cmocka_unit_test(test_long_lists_linear),
        cmocka_unit_test(test_study_name_checked),
    };
    return cmocka_run_group_tests(tests, setup, tu_scratch_teardown);
}
