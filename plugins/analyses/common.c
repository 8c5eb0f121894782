/* Plumbing the four analyses share: the lincomb kernel, run selection,
 * result paths, checkpoints by tensor name, option helpers. */
#include "analyses.h"

#include "batchscope/fsutil.h"
#include "batchscope/runs.h"
#include "batchscope/safetensors.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bsc_status ana_pick_run(const bsc_study *st, const bsc_node *sel, const bsc_run_result **out)
{
    long bs;
    *out = bsc_run_select(st->runs, st->n_runs, sel);
    if (*out)
        return BSC_OK;
    if (bsc_run_selector_batch_size(sel, &bs))
        return bsc_node_fail(sel, BSC_ERR_INVALID, "no completed run with batch size %ld", bs);
    return bsc_node_fail(sel, BSC_ERR_INVALID, "no completed run named '%s'",
                         sel && sel->value ? sel->value : "");
}

bsc_status ana_pick_usable(const bsc_study *st, const bsc_node *sel, const bsc_run_result **out,
                           const char **why, char *buf, size_t len)
{
    *why = NULL;
    *out = bsc_run_select(st->runs, st->n_runs, sel);
    if (!*out) {
        /* create() checked the selector against the planned runs: one that
         * picks none of the finished ones is a run that failed. */
        snprintf(buf, len, "skipped: run %s did not finish", sel && sel->value ? sel->value : "?");
        *why = buf;
    } else if (!bsc_run_usable(*out)) {
        snprintf(buf, len, "skipped: %s", (*out)->status);
        *why = buf;
    }
    return BSC_OK;
}

bsc_status ana_for_each_run(const bsc_study *st, const bsc_node *const *sel, size_t n_sel,
                            const char *what, ana_run_fn each, ana_skip_fn skip, void *user)
{
    bsc_status first = BSC_OK;
    char *first_msg = NULL;
    size_t n_failed = 0;
    size_t n = n_sel ? n_sel : st->n_runs;
    for (size_t i = 0; i < n; i++) {
        const bsc_run_result *r = n_sel ? NULL : st->runs[i];
        const char *why = NULL;
        char buf[160], nb[32];
        if (n_sel)
            ana_pick_usable(st, sel[i], &r, &why, buf, sizeof buf);
        else if (!bsc_run_usable(r))
            snprintf(buf, sizeof buf, "skipped: %s", r->status), why = buf;
        const char *name = r ? bsc_run_result_name(r, nb, sizeof nb)
                             : sel[i]->value ? sel[i]->value : "?";
        size_t bs = r ? r->batch_size : 0;
        long sel_bs;
        if (!r && bsc_run_selector_batch_size(sel[i], &sel_bs) && sel_bs > 0)
            bs = (size_t)sel_bs;
        bsc_status s = BSC_OK;
        if (!why) {
            s = each(user, r);
            if (s == BSC_ERR_INTERRUPTED) {
                free(first_msg);
                return s;
            }
            if (s != BSC_OK) {
                bsc_fail_context(s, "%s of run %s", what, name);
                if (!n_failed++) {
                    first = s;
                    first_msg = strdup(bsc_last_error());
                }
                snprintf(buf, sizeof buf, "failed: %s", bsc_last_error());
                why = buf;
            }
        }
        if (why && skip && (s = skip(user, name, bs, why)) != BSC_OK) {
            free(first_msg);
            return s;
        }
    }
    if (n_failed) {
        bsc_fail(first, "%s%s", first_msg ? first_msg : bsc_status_str(first),
                 n_failed > 1 ? " (and more runs failed: see the table)" : "");
        free(first_msg);
        return first;
    }
    return BSC_OK;
}

bsc_status ana_out_path(const bsc_study *st, const char *name, char **path)
{
    *path = NULL;
    char *dir = bsc_strdup_printf("%s/" BSC_ANALYSES_DIR, st->out_dir);
    if (!dir)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    bsc_status s = bsc_mkdir_p(dir);
    if (s == BSC_OK) {
        *path = bsc_strdup_printf("%s/%s", dir, name);
        if (!*path)
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    free(dir);
    return s;
}

bsc_status ana_save_params(const bsc_model *m, const char *path, const float *v,
                           const char *const *meta_keys, const char *const *meta_values,
                           size_t n_meta)
{
    size_t nt = bsc_model_n_tensors(m), k = 0;
    bsc_st_entry *e = calloc(nt ? nt : 1, sizeof *e);
    if (!e)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nt; i++) {
        const bsc_model_tensor *t = bsc_model_tensor_at(m, i);
        if (t->spec.role == BSC_ROLE_STATE)
            continue;
        e[k].name = t->name;
        e[k].shape = t->spec.shape;
        e[k].data = v + t->offset;
        k++;
    }
    bsc_status s = bsc_safetensors_write(path, e, k, meta_keys, meta_values, n_meta);
    free(e);
    return s;
}

bsc_status ana_vec_alloc(bsc_context *ctx, size_t n, bsc_tensor *out)
{
    int64_t d = (int64_t)(n ? n : 1);
    bsc_shape sh = bsc_shape_make(1, &d);
    return bsc_tensor_alloc(ctx, BSC_F32, &sh, out);
}

bsc_status ana_opt_runs(const bsc_component_config *cfg, const bsc_node *map, const char *key,
                        const bsc_node ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const bsc_node *v = bsc_node_get(map, key);
    if (!v)
        return BSC_OK;
    size_t m = v->kind == BSC_NODE_SEQ ? v->n : 1;
    if (!(*out = calloc(m ? m : 1, sizeof **out)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m; i++) {
        const bsc_node *it = v->kind == BSC_NODE_SEQ ? v->items[i] : v;
        bsc_status s = bsc_run_selector_check(cfg, it, key);
        if (s != BSC_OK) {
            free(*out);
            *out = NULL;
            return s;
        }
        (*out)[i] = it;
    }
    *n = m;
    return BSC_OK;
}

bsc_status ana_opt_subset(const bsc_node *map, const char *key, size_t *out)
{
    long v;
    bsc_status s = bsc_opt_long(map, key, 0, 0, 1L << 40, &v);
    *out = (size_t)v;
    return s;
}

bsc_status ana_interrupted(const bsc_study *st)
{
    return bsc_study_stop_requested(st) ? bsc_fail(BSC_ERR_INTERRUPTED, "interrupted") : BSC_OK;
}

bsc_status ana_node_path(const bsc_node *n, char **out)
{
    *out = NULL;
    if (!n)
        return BSC_OK;
    const char *v;
    bsc_status s = bsc_node_to_string(n, &v);
    if (s != BSC_OK)
        return s;
    if (v[0] == '/' || !n->file) {
        *out = strdup(v);
    } else {
        char *dup = strdup(n->file);
        *out = dup ? bsc_strdup_printf("%s/%s", dirname(dup), v) : NULL;
        free(dup);
    }
    return *out ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
}

bsc_status ana_upload_checkpoint(const bsc_study *st, const char *path, bsc_tensor *p,
                                 bsc_tensor *q)
{
    size_t np = bsc_model_n_params(st->model), ns = bsc_model_n_state(st->model);
    float *hp = malloc((np ? np : 1) * sizeof *hp), *hs = calloc(ns ? ns : 1, sizeof *hs);
    bsc_status s = hp && hs ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        s = bsc_checkpoint_load(st->model, path, hp, hs);
    if (s == BSC_OK && (s = ana_vec_alloc(st->ctx, np, p)) == BSC_OK)
        s = bsc_tensor_write(st->ctx, p, hp);
    if (s == BSC_OK && (s = ana_vec_alloc(st->ctx, ns, q)) == BSC_OK && ns)
        s = bsc_tensor_write(st->ctx, q, hs);
    free(hp);
    free(hs);
    return s;
}

bsc_status ana_read_params(const bsc_model *m, const char *path, float *d)
{
    /* A direction file has no state tensors: read tensor by tensor. */
    bsc_safetensors *f = NULL;
    bsc_status s = bsc_safetensors_open(path, &f);
    for (size_t i = 0; s == BSC_OK && i < bsc_model_n_tensors(m); i++) {
        const bsc_model_tensor *t = bsc_model_tensor_at(m, i);
        if (t->spec.role == BSC_ROLE_STATE)
            continue;
        const bsc_st_info *info = bsc_safetensors_find(f, t->name);
        if (!info || !bsc_shape_equal(&info->shape, &t->spec.shape))
            s = bsc_fail(BSC_ERR_DATA, "%s: tensor '%s' %s", path, t->name,
                         info ? "has another shape than the model's" : "is missing");
        else
            s = bsc_safetensors_read(f, t->name, d + t->offset, t->numel);
    }
    bsc_safetensors_close(f);
    return s;
}

bsc_status ana_check_file(const bsc_study *st, const char *path, int params_only,
                          const char *what)
{
    if (!bsc_path_exists(path) && st->out_dir && bsc_path_within(st->out_dir, path))
        return BSC_OK;
    const bsc_model *m = st->model;
    size_t np = m ? bsc_model_n_params(m) : 0, ns = m ? bsc_model_n_state(m) : 0;
    float *p = malloc((np ? np : 1) * sizeof *p), *q = malloc((ns ? ns : 1) * sizeof *q);
    bsc_status s = p && q ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && !m) {
        /* No model to compare with (a pipeline without one): the file must
         * still be a readable safetensors file. */
        bsc_safetensors *f = NULL;
        if ((s = bsc_safetensors_open(path, &f)) == BSC_OK)
            bsc_safetensors_close(f);
    } else if (s == BSC_OK) {
        s = params_only ? ana_read_params(m, path, p) : bsc_checkpoint_load(m, path, p, q);
    }
    free(p);
    free(q);
    return s == BSC_OK ? s : bsc_fail_context(s, "%s", what);
}

bsc_status ana_run_units(const bsc_analysis_ops *ops, void *self, const bsc_study *st)
{
    size_t n = 0;
    bsc_status s = ops->plan(self, st, &n);
    for (size_t u = 0; s == BSC_OK && u < n; u++) {
        void *data = NULL;
        size_t len = 0;
        if ((s = ops->run_unit(self, st, u, &data, &len)) == BSC_OK)
            s = ops->merge(self, st, u, data, len);
        free(data);
    }
    if (s == BSC_OK)
        s = ops->finish(self, st);
    return s;
}
