/* Assembling a study: the one path from a pipeline file to a model bound on
 * a device that `batchscope run`, `batchscope check` and the benchmarks
 * share (bsc_session_*), so that what a benchmark measures is what a study
 * runs. */
#include "batchscope/session.h"

#include "batchscope/blas.h"
#include "batchscope/fsutil.h"
#include "batchscope/plugin_call.h"
#include "batchscope/rng.h"
#include "batchscope/version.h"
#include "study_internal.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The runs the study will train, as analyses' create() sees them. */
static bsc_status plan_runs(study *st)
{
    const bsc_training_cfg *tc = &st->p->training;
    if (!st->p->has_training || st->planned)
        return BSC_OK;
    st->planned = calloc(tc->n_runs ? tc->n_runs : 1, sizeof *st->planned);
    st->planned_ptrs = calloc(tc->n_runs ? tc->n_runs : 1, sizeof *st->planned_ptrs);
    if (!st->planned || !st->planned_ptrs)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < tc->n_runs; i++) {
        st->planned[i].batch_size = (size_t)tc->runs[i].batch_size;
        st->planned[i].name = tc->runs[i].name;
        st->planned_ptrs[i] = &st->planned[i];
    }
    st->n_planned = tc->n_runs;
    return BSC_OK;
}

/* Resolves the type of one `observers:` or `analyses:` entry (a type under
 * the wrong key is an error that says where it belongs), checks its options
 * against the declared ones and creates it. */
static bsc_status create_component(study *st, const bsc_component *c, bsc_kind kind,
                                   bsc_observer *out)
{
    const bsc_type *t;
    bsc_status s = bsc_registry_resolve(st->reg, kind, bsc_node_get(c->node, "type"), c->type,
                                        &t);
    if (s == BSC_OK)
        s = bsc_type_check_options(t, c->node);
    if (s != BSC_OK)
        return s;
    bsc_component_config cfg = {c->node, st->out, st->p->seed, st->planned_ptrs, st->n_planned};
    const bsc_observer_ops *oo = kind == BSC_KIND_OBSERVER ? t->ops : NULL;
    const bsc_analysis_ops *ao = kind == BSC_KIND_ANALYSIS ? t->ops : NULL;
    BSC_PLUGIN_CALL(t, "create",
                    s = oo ? oo->create(&cfg, &out->self) : ao->create(&cfg, &out->self));
    if (s == BSC_OK) {
        out->type = t;
        out->ops = oo;
    }
    return s;
}

static bsc_status create_components(study *st)
{
    const bsc_pipeline *p = st->p;
    bsc_status s = plan_runs(st);
    if (s != BSC_OK)
        return s;
    st->obs = calloc(p->n_observers ? p->n_observers : 1, sizeof *st->obs);
    st->ana = calloc(p->n_analyses ? p->n_analyses : 1, sizeof *st->ana);
    st->ana_ops = calloc(p->n_analyses ? p->n_analyses : 1, sizeof *st->ana_ops);
    if (!st->obs || !st->ana || !st->ana_ops)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n_observers; i++) {
        if ((s = create_component(st, &p->observers[i], BSC_KIND_OBSERVER, &st->obs[i])) != BSC_OK)
            return s;
        st->n_obs = i + 1;
    }
    for (size_t i = 0; i < p->n_analyses; i++) {
        if ((s = create_component(st, &p->analyses[i], BSC_KIND_ANALYSIS, &st->ana[i])) != BSC_OK)
            return s;
        st->ana_ops[i] = st->ana[i].type->ops;
        st->n_ana = i + 1;
    }
    return BSC_OK;
}

/* The analyses' own checks (bsc_analysis_ops.check: the files their
 * options name), on the host-side model, before anything is trained. */
static bsc_status check_analyses(study *st)
{
    bsc_study sv = {NULL, st->model, (const bsc_run_result *const *)st->planned_ptrs,
                    st->n_planned, st->out_known ? st->out : NULL, st->p->seed, NULL, NULL,
                    NULL, NULL, NULL, NULL, NULL};
    bsc_status s = BSC_OK;
    for (size_t i = 0; s == BSC_OK && i < st->n_ana; i++) {
        if (!st->ana_ops[i]->check)
            continue;
        BSC_PLUGIN_CALL(st->ana[i].type, "check",
                        s = st->ana_ops[i]->check(st->ana[i].self, &sv));
        if (s != BSC_OK)
            bsc_fail_context(s, "analysis %s", st->ana[i].type->name);
    }
    return s;
}

static bsc_status create_report(study *st)
{
    bsc_status ps = plan_runs(st);
    if (ps != BSC_OK)
        return ps;
    return bsc_report_create(st->reg, st->p->report, st->out, st->p->seed,
                             st->planned_ptrs, st->n_planned, &st->report, &st->report_self);
}

/* Host-side preparation, before anything is written or a device opened:
 * every option of every component is checked here (layers by their plugin
 * through create(), shapes inferred), and the dataset files are read. */
bsc_status bsc_session_prepare(study *st)
{
    const bsc_pipeline *p = st->p;
    bsc_status s = bsc_registry_new(&st->reg);
    if (s == BSC_OK)
        s = bsc_registry_load_default(st->reg);
    for (size_t i = 0; s == BSC_OK && i < p->n_plugins; i++)
        s = bsc_registry_load_path(st->reg, p->plugins[i], "pipeline");
    if (s == BSC_OK)
        s = bsc_pipeline_check_types(p, st->reg);
    if (s == BSC_OK && p->dataset) {
        char *dup = strdup(p->path);
        s = dup ? bsc_dataset_config_parse(p->dataset, dirname(dup), &st->dcfg)
                : bsc_fail(BSC_ERR_NOMEM, "out of memory");
        free(dup);
    }
    if (s == BSC_OK && p->n_layers && !p->dataset)
        s = bsc_fail(BSC_ERR_INVALID, "%s: a pipeline with a model needs a `dataset:`", p->path);
    if (s != BSC_OK || !p->n_layers)
        return s;
    if ((s = bsc_dataset_load(&st->dcfg, &st->host)) != BSC_OK ||
        (s = bsc_model_create(st->reg, p->layers, p->n_layers, &p->loss, &st->host->sample,
                              st->host->n_classes, &st->model)) != BSC_OK ||
        (s = create_components(st)) != BSC_OK ||
        (s = check_analyses(st)) != BSC_OK)
        return s;
    return create_report(st);
}

uint64_t bsc_session_run_seed(const bsc_pipeline *p, const bsc_run_cfg *rc)
{
    if (p->training.same_init)
        return p->seed;
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a */
    for (const char *c = rc->name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    return p->seed ^ h;
}

static bsc_status bind_training(study *st)
{
    const bsc_pipeline *p = st->p;
    const bsc_training_cfg *tc = &p->training;
    bsc_status s = bsc_dataset_upload(st->ctx, st->host, &st->data);
    bsc_dataset_free(st->host);
    st->host = NULL;
    if (s != BSC_OK)
        return s;
    st->have_data = 1;

    long max_bs = 0;
    for (size_t i = 0; i < tc->n_runs; i++)
        if (tc->runs[i].batch_size > max_bs)
            max_bs = tc->runs[i].batch_size;
    /* A batch larger than the training split is the whole split (one step
     * per epoch): buffers for more rows than there are would only fail to
     * allocate, naming a tensor instead of the batch size. */
    if (st->data.train.n && (size_t)max_bs > st->data.train.n)
        max_bs = (long)st->data.train.n;
    size_t max_batch = (size_t)(max_bs > tc->eval_batch_size ? max_bs : tc->eval_batch_size);
    if ((s = bsc_model_bind(st->model, st->ctx, max_batch)) != BSC_OK ||
        (s = bsc_evaluator_create(st->model, &st->data, (size_t)tc->eval_batch_size,
                                  &st->eval)) != BSC_OK ||
        (s = bsc_optimizer_create(st->ctx, &tc->optimizer, bsc_model_n_params(st->model),
                                  &st->opt_)) != BSC_OK)
        return s;
    size_t np = bsc_model_n_params(st->model), ns = bsc_model_n_state(st->model);
    st->init_params = malloc((np ? np : 1) * sizeof(float));
    st->init_state = malloc((ns ? ns : 1) * sizeof(float));
    st->outcomes = calloc(tc->n_runs, sizeof *st->outcomes);
    st->results = calloc(tc->n_runs, sizeof *st->results);
    st->done = calloc(tc->n_runs ? tc->n_runs : 1, sizeof *st->done);
    st->finals = calloc(2 * tc->n_runs, sizeof *st->finals);
    if (!st->init_params || !st->init_state || !st->outcomes || !st->results || !st->done ||
        !st->finals)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (!st->opt->quiet)
        fprintf(st->log, "batchscope: model %zu parameters, %s: %zu train / %zu test examples\n",
                np, st->dcfg.name, st->data.train.n, st->data.test.n);
    /* Said even when quiet: every test column of every table will be NaN. */
    if (!st->data.test.n)
        fprintf(st->log, "batchscope: warning: dataset %s has no test examples: test loss and "
                "accuracy are not measured (NaN in metrics.csv)\n", st->dcfg.name);

    bsc_trainer *t = &st->tr;
    t->ctx = st->ctx;
    t->pipeline = p;
    t->model = st->model;
    t->data = &st->data;
    t->eval = st->eval;
    t->opt = st->opt_;
    t->observers = st->obs;
    t->n_observers = st->n_obs;
    t->init_params = st->init_params;
    t->init_state = st->init_state;
    t->log = st->log;
    t->quiet = st->opt->quiet;
    t->tty = isatty(fileno(st->log));
    t->stop_requested = st->opt->stop_requested;
    t->stop_user = st->opt->stop_user;
    if ((s = bsc_trainer_prepare(t, max_bs)) != BSC_OK)
        return s;
    return BSC_OK;
}

bsc_status bsc_session_begin(const bsc_run_options *o, study **out)
{
    study *st = calloc(1, sizeof *st);
    *out = NULL;
    if (!st)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    st->lock.fd = -1;
    st->opt = o;
    st->log = o->log ? o->log : stderr;
    st->progress.log = st->log;
    st->progress.tty = isatty(fileno(st->log));
    st->progress.quiet = o->quiet;
    st->t0 = bsc_now();
    bsc_utc_timestamp(st->started, sizeof st->started);
    bsc_gemm_backend gemm;
    bsc_status s = BSC_OK;
    if (o->gemm && (s = bsc_gemm_backend_parse(o->gemm, &gemm)) != BSC_OK)
        bsc_fail_context(s, "--gemm");
    if (s == BSC_OK)
        s = bsc_pipeline_load(o->pipeline_path, o->overrides, o->n_overrides, &st->p);
    if (s != BSC_OK) {
        free(st);
        return s;
    }
    *out = st;
    return BSC_OK;
}

/* --gemm beats `gemm:`, which beats $BATCHSCOPE_GEMM (bsc_context_open
 * applied it): an explicit choice anywhere is kept. */
static bsc_status choose_gemm(study *st)
{
    const bsc_run_options *o = st->opt;
    bsc_gemm_backend want = st->p->gemm;
    bsc_status s;
    if (o->gemm && (s = bsc_gemm_backend_parse(o->gemm, &want)) != BSC_OK)
        return bsc_fail_context(s, "--gemm");
    const char *env = getenv("BATCHSCOPE_GEMM");
    if (o->gemm || want != BSC_GEMM_AUTO || !env || !*env) {
        if ((s = bsc_gemm_use(st->ctx, want)) != BSC_OK)
            return s;
    }
    if (!o->quiet) {
        char why[300] = "";
        if (bsc_gemm_active(st->ctx) == BSC_GEMM_HOST)
            fprintf(st->log, "gemm: host (the host's BLAS as native kernels in the queue)\n");
        else if (!bsc_gemm_host_supported(st->ctx, why, sizeof why))
            fprintf(st->log, "gemm: clblast (host: %s)\n", why);
        else
            fprintf(st->log, "gemm: clblast\n");
    }
    return BSC_OK;
}

bsc_status bsc_session_open_device(study *st)
{
    const bsc_run_options *o = st->opt;
    bsc_status s = bsc_context_open_local(o->device ? o->device : st->p->device,
                                          st->local_rank, st->local_size, &st->ctx);
    if (s == BSC_OK && !o->quiet) {
        char desc[512];
        bsc_context_describe(st->ctx, desc, sizeof desc);
        fprintf(st->log, "batchscope %s: %s on %s\n", bsc_version(), st->p->name, desc);
    }
    if (s == BSC_OK)
        s = bsc_blas_tune(st->ctx);
    if (s == BSC_OK)
        s = choose_gemm(st);
    if (s == BSC_OK && st->p->n_layers)
        s = bind_training(st);
    return s;
}

void bsc_session_free(bsc_session *st)
{
    if (!st)
        return;
    if (st->report && st->report_self)
        BSC_PLUGIN_CALL(st->report, "destroy",
                        ((const bsc_report_ops *)st->report->ops)->destroy(st->report_self));
    for (size_t i = 0; i < st->n_obs; i++)
        BSC_PLUGIN_CALL(st->obs[i].type, "destroy", st->obs[i].ops->destroy(st->obs[i].self));
    for (size_t i = 0; i < st->n_ana; i++)
        BSC_PLUGIN_CALL(st->ana[i].type, "destroy", st->ana_ops[i]->destroy(st->ana[i].self));
    free(st->obs);
    free(st->ana);
    free(st->ana_ops);
    free(st->done);
    free(st->planned_ptrs);
    bsc_trainer_release(&st->tr);
    if (st->finals)
        for (size_t i = 0; i < 2 * st->p->training.n_runs; i++)
            bsc_tensor_free(&st->finals[i]);
    free(st->finals);
    if (st->results)
        for (size_t i = 0; i < st->p->training.n_runs; i++)
            free((char *)st->results[i].dir);
    free(st->results);
    free(st->planned);
    free(st->outcomes);
    free(st->init_params);
    free(st->init_state);
    bsc_optimizer_free(st->opt_);
    bsc_evaluator_free(st->eval);
    bsc_model_free(st->model);
    if (st->have_data)
        bsc_device_dataset_free(&st->data);
    bsc_dataset_free(st->host);
    bsc_context_free(st->ctx);
    bsc_registry_free(st->reg);
    bsc_pipeline_free(st->p);
    bsc_dir_lock_release(&st->lock);
    free(st->failures);
    free(st->out);
    free(st->pipeline_abs);
    free(st);
}

bsc_status bsc_session_open(const bsc_run_options *o, bsc_session **out)
{
    study *st = NULL;
    bsc_status s = bsc_session_begin(o, &st);
    if (s == BSC_OK && !(st->out = strdup(o->out_dir ? o->out_dir : ".")))
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        s = bsc_session_prepare(st);
    if (s == BSC_OK)
        s = bsc_session_open_device(st);
    if (s != BSC_OK) {
        bsc_session_free(st);
        st = NULL;
    }
    *out = st;
    return s;
}

const bsc_pipeline *bsc_session_pipeline(const bsc_session *s) { return s->p; }
bsc_context *bsc_session_context(const bsc_session *s) { return s->ctx; }
bsc_model *bsc_session_model(const bsc_session *s) { return s->model; }
bsc_evaluator *bsc_session_evaluator(const bsc_session *s) { return s->eval; }
const bsc_device_dataset *bsc_session_data(const bsc_session *s) { return &s->data; }

bsc_status bsc_session_start_run(bsc_session *st, size_t run)
{
    const bsc_training_cfg *tc = &st->p->training;
    if (!st->model || !st->ctx || run >= tc->n_runs)
        return bsc_fail(BSC_ERR_USAGE, "bsc_session_start_run: run %zu of %zu, model %s", run,
                        tc->n_runs, st->model ? "bound" : "absent");
    const bsc_run_cfg *rc = &tc->runs[run];
    size_t n = st->data.train.n, ns = bsc_model_n_state(st->model);
    uint32_t *perm = malloc((n ? n : 1) * sizeof *perm);
    bsc_status s = perm ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        s = bsc_model_init_host(st->model, bsc_session_run_seed(st->p, rc), tc->init,
                                st->init_params, st->init_state);
    if (s == BSC_OK)
        s = bsc_tensor_write(st->ctx, bsc_model_params(st->model), st->init_params);
    if (s == BSC_OK && ns)
        s = bsc_tensor_write(st->ctx, bsc_model_state(st->model), st->init_state);
    if (s == BSC_OK)
        s = bsc_optimizer_reset(st->opt_);
    if (s == BSC_OK)
        s = bsc_rng_permutation(st->p->seed, BSC_RNG_SHUFFLE, 1, perm, n);
    if (s == BSC_OK)
        s = bsc_tensor_write(st->ctx, &st->tr.perm, perm);
    if (s == BSC_OK)
        st->step_batch = (size_t)rc->batch_size;
    free(perm);
    return s;
}

bsc_status bsc_session_step(bsc_session *st, size_t k, float lr)
{
    size_t B = st->step_batch, n = st->data.train.n;
    if (!B || k * B >= n)
        return bsc_fail(BSC_ERR_USAGE, "bsc_session_step: step %zu of a run of %zu examples "
                        "in batches of %zu (bsc_session_start_run first)", k, n, B);
    size_t count = n - k * B < B ? n - k * B : B;
    return bsc_train_step(&st->tr, k * B, count, (uint64_t)k + 1, lr, k);
}
