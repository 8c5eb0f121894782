/* The report: which report type a study uses, and drawing it, for
 * `batchscope run` (after training) and `batchscope report OUT` (from the
 * result files alone) alike. */
#include "batchscope/study.h"

#include "batchscope/batchscope.h"
#include "batchscope/fsutil.h"
#include "batchscope/plugin_call.h"
#include "study_internal.h"

#include <stdlib.h>
#include <string.h>

/* The report type to use when `report:` names none. */
static bsc_status default_report(const bsc_registry *r, const bsc_node *opts,
                                 const bsc_type **out)
{
    size_t n = bsc_registry_count(r, BSC_KIND_REPORT);
    *out = NULL;
    if (n == 1) {
        *out = bsc_registry_type(r, BSC_KIND_REPORT, 0);
        return BSC_OK;
    }
    if (n > 1) {
        if ((*out = bsc_registry_find(r, BSC_KIND_REPORT, "report", NULL)))
            return BSC_OK;
        char names[256] = "";
        for (size_t i = 0; i < n && strlen(names) < 200; i++) {
            strcat(names, i ? ", " : "");
            strncat(names, bsc_registry_type(r, BSC_KIND_REPORT, i)->name, 40);
        }
        return opts ? bsc_node_fail(opts, BSC_ERR_INVALID, "several report types are loaded "
                                    "(%s): choose one with `report: {type: NAME}`", names)
                    : bsc_fail(BSC_ERR_INVALID, "several report types are loaded (%s): choose "
                               "one with `report: {type: NAME}`", names);
    }
    if (opts)
        return bsc_node_fail(opts, BSC_ERR_NOT_FOUND, "`report:` asks for a report, but no "
                             "plugin provides a report type (bsc_report is built only with "
                             "PLplot: libplplot-dev)");
    return BSC_OK;
}

bsc_status bsc_report_create(const bsc_registry *r, const bsc_node *opts, const char *out_dir,
                             uint64_t seed, const bsc_run_result *const *planned,
                             size_t n_planned, const bsc_type **type, void **self)
{
    int enabled = 1;
    const char *name = NULL;
    const bsc_type *t = NULL;
    *type = NULL;
    *self = NULL;
    if (opts && opts->kind == BSC_NODE_SCALAR && (!opts->value || !opts->value[0]))
        opts = NULL;   /* `report:` with nothing after it: the defaults */
    if (opts && opts->kind != BSC_NODE_MAP)
        return bsc_node_fail(opts, BSC_ERR_INVALID, "`report:` must be a mapping, e.g. "
                             "{type: report, formats: [png]}");
    bsc_status s = opts ? bsc_opt_bool(opts, "enabled", 1, &enabled) : BSC_OK;
    if (s == BSC_OK && opts)
        s = bsc_opt_string(opts, "type", NULL, NULL, &name);
    if (s != BSC_OK || !enabled)
        return s;
    s = name ? bsc_registry_resolve(r, BSC_KIND_REPORT, bsc_node_get(opts, "type"), name, &t)
             : default_report(r, opts, &t);
    if (s != BSC_OK || !t)
        return s;
    if ((s = bsc_type_check_options(t, opts)) != BSC_OK)
        return s;
    bsc_component_config cfg = {opts, out_dir, seed, planned, n_planned};
    BSC_PLUGIN_CALL(t, "create", s = ((const bsc_report_ops *)t->ops)->create(&cfg, self));
    if (s == BSC_OK)
        *type = t;
    return s;
}

bsc_status bsc_report_draw(const bsc_type *type, void *self, const bsc_study *sv, FILE *log)
{
    if (log)
        fprintf(log, "batchscope: report\n");
    bsc_status s;
    BSC_PLUGIN_CALL(type, "draw", s = ((const bsc_report_ops *)type->ops)->draw(self, sv));
    if (s != BSC_OK)
        return bsc_fail_context(s, "report %s", type->name);
    char *html = bsc_strdup_printf("%s/" BSC_FILE_REPORT_HTML, sv->out_dir);
    if (html && log && bsc_path_exists(html))
        fprintf(log, "batchscope: report in %s\n", html);
    free(html);
    return BSC_OK;
}

bsc_status bsc_study_report(const char *out_dir, FILE *log)
{
    bsc_pipeline *p = NULL;
    bsc_registry *reg = NULL;
    bsc_run_result **runs = NULL;
    size_t n_runs = 0;
    const bsc_type *t = NULL;
    void *self = NULL;
    bsc_dir_lock lock = {-1, NULL};
    char *yaml = bsc_strdup_printf("%s/" BSC_FILE_PIPELINE, out_dir);
    char *figs = bsc_strdup_printf("%s/" BSC_FIGURES_DIR, out_dir);
    bsc_status s = yaml && figs ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    /* Not while a study writes there (its files are half there), and with
     * the lock held, figures a killed report left half drawn are swept. */
    if (s == BSC_OK && bsc_path_exists(out_dir) &&
        (s = bsc_dir_lock_acquire(&lock, out_dir, NULL)) == BSC_OK)
        s = bsc_remove_stale_temporaries(figs, NULL);
    if (s == BSC_OK && bsc_path_exists(yaml))
        s = bsc_pipeline_load(yaml, NULL, 0, &p);
    if (s == BSC_OK)
        s = bsc_runs_scan(out_dir, &runs, &n_runs);
    if (s == BSC_OK && (s = bsc_registry_new(&reg)) == BSC_OK)
        s = bsc_registry_load_default(reg);
    for (size_t i = 0; s == BSC_OK && p && i < p->n_plugins; i++)
        s = bsc_registry_load_path(reg, p->plugins[i], "pipeline");
    if (s == BSC_OK)
        s = bsc_report_create(reg, p ? p->report : NULL, out_dir, p ? p->seed : 0, NULL, 0, &t,
                              &self);
    if (s == BSC_OK && !t)
        s = bsc_fail(BSC_ERR_NOT_FOUND, "no report to draw: %s", p && p->report ?
                     "the pipeline's `report:` has enabled: false" :
                     "no plugin provides a report type (was bsc_report built? it needs "
                     "PLplot: libplplot-dev)");
    if (s == BSC_OK) {
        bsc_study sv = {NULL, NULL, (const bsc_run_result *const *)runs, n_runs, out_dir,
                        p ? p->seed : 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        s = bsc_report_draw(t, self, &sv, log);
    }
    if (t && self)
        BSC_PLUGIN_CALL(t, "destroy", ((const bsc_report_ops *)t->ops)->destroy(self));
    bsc_runs_free(runs, n_runs);
    bsc_registry_free(reg);
    bsc_pipeline_free(p);
    bsc_dir_lock_release(&lock);
    free(yaml);
    free(figs);
    return s;
}
