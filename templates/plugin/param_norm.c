/* Analysis `param_norm`: for every finished run, the norm of its initial and
 * final weights and the distance between them, ||w_final - w_init||, into
 * OUT/analyses/<output> (run, batch_size, n_params, init_norm, final_norm,
 * distance).
 *
 * Analyses run once, after every run has finished, on the runs' flat
 * parameter vectors (device tensors); reading them back to the host is fine
 * here, outside training. Sums are in double. */
#define _POSIX_C_SOURCE 200809L  /* strdup */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/batchscope.h"

typedef struct param_norm {
    char *output;
} param_norm;

static void param_norm_destroy(void *self)
{
    param_norm *a = self;
    if (a)
        free(a->output);
    free(a);
}

static bsc_status param_norm_create(const bsc_component_config *cfg, void **self)
{
    const char *output;
    bsc_status st = bsc_opt_string(cfg->options, "output", "param_norm.csv", NULL, &output);
    if (st != BSC_OK)
        return st;
    if (!output[0] || strchr(output, '/'))
        return bsc_node_fail(bsc_node_get(cfg->options, "output"), BSC_ERR_INVALID,
                             "output is a file name inside OUT/analyses, without '/'");
    param_norm *a = calloc(1, sizeof *a);
    if (!a || !(a->output = strdup(output))) {
        free(a);
        return bsc_fail(BSC_ERR_NOMEM, "param_norm: out of memory");
    }
    *self = a;
    return BSC_OK;
}

/* One row of the table for run r; host scratch w0, w of n floats. */
static bsc_status add_run(bsc_context *ctx, const bsc_run_result *r, float *w0, float *w,
                          bsc_table *t)
{
    char name[32];
    bsc_metrics_row row;
    bsc_status st;
    size_t n = r->final_params->numel;
    double init = 0.0, fin = 0.0, dist = 0.0;

    if ((st = bsc_tensor_read(ctx, r->init_params, w0)) != BSC_OK ||
        (st = bsc_tensor_read(ctx, r->final_params, w)) != BSC_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        double d = (double)w[i] - w0[i];
        init += (double)w0[i] * w0[i];
        fin += (double)w[i] * w[i];
        dist += d * d;
    }
    if ((st = bsc_table_add_row(t, &row)) != BSC_OK ||
        (st = bsc_metrics_set_str(&row, "run", bsc_run_result_name(r, name, sizeof name))) !=
            BSC_OK ||
        (st = bsc_metrics_set(&row, "batch_size", (double)r->batch_size)) != BSC_OK ||
        (st = bsc_metrics_set(&row, "n_params", (double)n)) != BSC_OK ||
        (st = bsc_metrics_set(&row, "init_norm", sqrt(init))) != BSC_OK ||
        (st = bsc_metrics_set(&row, "final_norm", sqrt(fin))) != BSC_OK ||
        (st = bsc_metrics_set(&row, "distance", sqrt(dist))) != BSC_OK)
        return st;
    return BSC_OK;
}

static bsc_status param_norm_run(void *self, const bsc_study *study)
{
    param_norm *a = self;
    bsc_table *t = NULL;
    float *w0 = NULL, *w = NULL;
    char *dir = NULL, *path = NULL;
    bsc_status st;

    if (!study->ctx)
        return bsc_fail(BSC_ERR_USAGE, "param_norm needs the study's device");
    if ((st = bsc_table_new(&t)) != BSC_OK)
        goto cleanup;
    for (size_t i = 0; i < study->n_runs; i++) {
        const bsc_run_result *r = study->runs[i];
        /* Ctrl-C: stop between runs; what is finished is simply not written. */
        if (bsc_study_stop_requested(study)) {
            st = bsc_fail(BSC_ERR_INTERRUPTED, "param_norm: interrupted");
            goto cleanup;
        }
        if (!r->init_params || !r->final_params)
            continue;
        size_t n = r->final_params->numel;
        free(w0);
        free(w);
        w0 = malloc((n ? n : 1) * sizeof *w0);
        w = malloc((n ? n : 1) * sizeof *w);
        if (!w0 || !w) {
            st = bsc_fail(BSC_ERR_NOMEM, "param_norm: out of memory for %zu parameters", n);
            goto cleanup;
        }
        if ((st = add_run(study->ctx, r, w0, w, t)) != BSC_OK)
            goto cleanup;
    }
    if (!(dir = bsc_strdup_printf("%s/analyses", study->out_dir)) ||
        !(path = bsc_strdup_printf("%s/%s", dir, a->output))) {
        st = bsc_fail(BSC_ERR_NOMEM, "param_norm: out of memory");
        goto cleanup;
    }
    if ((st = bsc_mkdir_p(dir)) != BSC_OK)
        goto cleanup;
    st = bsc_table_write_csv(t, path);

cleanup:
    bsc_table_free(t);
    free(w0);
    free(w);
    free(dir);
    free(path);
    return st;
}

BSC_ANALYSIS_TYPE(example_param_norm, "param_norm",
                  "norms of each run's initial and final weights and the distance between them",
                  BSC_OPTIONS(BSC_OPT("output", BSC_OPT_STRING, "param_norm.csv",
                                      "file name in OUT/analyses/")),
                  .create = param_norm_create, .destroy = param_norm_destroy,
                  .run = param_norm_run);
