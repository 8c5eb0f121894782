/* OUT/report.html: one self-contained page -- no network, no scripts; the
 * figures are inlined as SVG, so the file can be mailed or archived alone. */
#include "report.h"

#include "batchscope/fsutil.h"
#include "batchscope/node.h"
#include "batchscope/records.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rep_esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* PLplot's text escapes (#u, #d, #dX#u, ##) made plain for the page. */
static void esc_plplot(FILE *f, const char *s)
{
    char buf[512];
    size_t n = 0;
    for (; s && *s && n < sizeof buf - 1; s++) {
        if (s[0] == '#' && (s[1] == 'u' || s[1] == 'd')) {
            s++;
            continue;
        }
        if (s[0] == '#' && s[1] == '#')
            s++;
        buf[n++] = *s;
    }
    buf[n] = '\0';
    rep_esc(f, buf);
}

static const char *style =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "max-width:1100px;margin:2em auto;padding:0 1em;color:#1b1b1b;line-height:1.45}"
    "h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse;margin:1em 0;font-size:.92em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
    "th{background:#f3f3f3}td.l,th.l{text-align:left}"
    "figure{margin:.5em 0 1.5em}figure svg{width:100%;height:auto;display:block}"
    ".what{margin:.2em 0}.note{color:#8a4b00;background:#fff6e5;padding:.4em .8em;"
    "border-left:4px solid #e69f00}.files{color:#666;font-size:.85em}"
    "pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:.85em}"
    "span.sw{display:inline-block;width:.9em;height:.9em;border-radius:2px;"
    "margin-right:.4em;vertical-align:-.1em}";

/* ------------------------------------------------------ summary table */

enum { C_STATUS_DUMMY = -1, C_EPOCHS, C_STEPS, C_TRL, C_TEL, C_TRA, C_TEA, C_GAP, C_DIST,
       C_UPD, C_SHARP, C_HESS, C_SEC, NC };

static const struct {
    const char *head, *fmt;
} cols[NC] = {
    {"epochs", "%.0f"},
    {"steps", "%.0f"},
    {"train loss", "%.4f"},
    {"test loss", "%.4f"},
    {"train acc. (%)", "%.2f"},
    {"test acc. (%)", "%.2f"},
    {"gap (pp)", "%.2f"},
    {"‖w − w<sub>0</sub>‖", "%.4g"},
    {"median ‖Δw‖", "%.3g"},
    {"sharpness φ (%)", "%.3g"},
    {"λ<sub>max</sub>", "%.4g"},
    {"seconds", "%.1f"},
};


static double metric_at(const rep_run *run, const char *name, size_t row)
{
    long c = bsc_table_find(run->metrics, name);
    return c < 0 ? NAN : bsc_table_get(run->metrics, row, (size_t)c);
}

/* Values from one analyses/<file> table: for each row's run (its `run`
 * column, else its batch_size), column `col` into v[run][k] (first row per
 * run, or the largest when take_max). Of the hessian's rows (a `quantity`
 * column) only eigenvalues count. */
static bsc_status from_table(const rep *r, const char *file, const char *const *names,
                             int k, int take_max, const char *only_variant, double (*v)[NC])
{
    char *path = rep_path(r, file);
    bsc_table *t = NULL;
    bsc_status s = path ? rep_csv(r, path, &t) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t cb;
    long c = -1;
    if (s == BSC_OK && t && (s = rep_col(t, path, BSC_COL_BATCH_SIZE, &cb)) == BSC_OK)
        c = rep_col_any(t, names);
    long cv = t ? bsc_table_find(t, BSC_COL_VARIANT) : -1;
    long crun = t ? bsc_table_find(t, BSC_COL_RUN) : -1;
    long cq = t ? bsc_table_find(t, BSC_COL_QUANTITY) : -1;
    for (size_t i = 0; s == BSC_OK && c >= 0 && i < bsc_table_n_rows(t); i++) {
        double bs, x;
        if (!rep_row_ok(t, i))
            continue;
        if ((s = rep_num(t, path, i, cb, &bs)) != BSC_OK ||
            (s = rep_num(t, path, i, (size_t)c, &x)) != BSC_OK)
            break;
        const char *variant = cv >= 0 ? bsc_table_get_str(t, i, (size_t)cv) : NULL;
        if (only_variant && variant && strcmp(variant, only_variant) != 0)
            continue;
        const char *q = cq >= 0 ? bsc_table_get_str(t, i, (size_t)cq) : NULL;
        if (q && strcmp(q, BSC_QUANTITY_EIGENVALUE) != 0)
            continue;
        const rep_run *run = rep_row_run(r, t, crun, i, bs);
        if (!run)
            continue;
        size_t ri = (size_t)(run - r->runs);
        if (isnan(v[ri][k]) || (take_max && x > v[ri][k]))
            v[ri][k] = x;
    }
    bsc_table_free(t);
    free(path);
    return s;
}

static bsc_status write_summary(FILE *f, const rep *r)
{
    double (*v)[NC] = malloc((r->n_runs ? r->n_runs : 1) * sizeof *v);
    if (!v)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_runs; i++) {
        const rep_run *run = &r->runs[i];
        for (int k = 0; k < NC; k++)
            v[i][k] = NAN;
        if (!run->metrics)
            continue;
        /* the last row that was evaluated: the run's final state */
        long tc = bsc_table_find(run->metrics, BSC_COL_TEST_ACC);
        size_t n = bsc_table_n_rows(run->metrics), row = n ? n - 1 : 0;
        for (size_t j = n; tc >= 0 && j-- > 0;)
            if (isfinite(bsc_table_get(run->metrics, j, (size_t)tc))) {
                row = j;
                break;
            }
        if (!n)
            continue;
        v[i][C_EPOCHS] = metric_at(run, BSC_COL_EPOCH, row);
        v[i][C_STEPS] = metric_at(run, BSC_COL_STEP, row);
        v[i][C_TRL] = metric_at(run, BSC_COL_TRAIN_LOSS, row);
        v[i][C_TEL] = metric_at(run, BSC_COL_TEST_LOSS, row);
        v[i][C_TRA] = 100 * metric_at(run, BSC_COL_TRAIN_ACC, row);
        v[i][C_TEA] = 100 * metric_at(run, BSC_COL_TEST_ACC, row);
        v[i][C_GAP] = v[i][C_TRA] - v[i][C_TEA];
        v[i][C_DIST] = metric_at(run, BSC_COL_DISTANCE_FROM_INIT, row);
        v[i][C_SEC] = metric_at(run, BSC_COL_SECONDS, row);
    }
    static const char *const upd[] = {BSC_COL_UPDATE_NORM_MEDIAN, NULL};
    static const char *const sec[] = {BSC_COL_SECONDS, NULL};
    static const char *const sharp[] = {BSC_COL_SHARPNESS, NULL};
    /* the hessian analysis' value column last: older files had their own */
    static const char *const eig[] = {"top_eigenvalue", "eigenvalue", "lambda_max", "lambda",
                                      BSC_COL_VALUE, NULL};
    static const char summary[] = BSC_IN_ANALYSES(BSC_FILE_SUMMARY);
    bsc_status s = from_table(r, summary, upd, C_UPD, 0, NULL, v);
    if (s == BSC_OK) {
        /* the summary's seconds include evaluation; prefer them */
        for (size_t i = 0; i < r->n_runs; i++)
            v[i][C_SEC] = NAN;
        s = from_table(r, summary, sec, C_SEC, 0, NULL, v);
        for (size_t i = 0; s == BSC_OK && i < r->n_runs; i++)
            if (isnan(v[i][C_SEC]) && r->runs[i].metrics) {
                size_t n = bsc_table_n_rows(r->runs[i].metrics);
                v[i][C_SEC] = n ? metric_at(&r->runs[i], BSC_COL_SECONDS, n - 1) : NAN;
            }
    }
    if (s == BSC_OK)
        s = from_table(r, BSC_IN_ANALYSES(BSC_FILE_SHARPNESS), sharp, C_SHARP, 0,
                       BSC_VARIANT_FULL, v);
    if (s == BSC_OK)
        s = from_table(r, BSC_IN_ANALYSES(BSC_FILE_HESSIAN), eig, C_HESS, 1, NULL, v);
    if (s != BSC_OK) {
        free(v);
        return s;
    }
    int shown[NC];
    for (int k = 0; k < NC; k++) {
        shown[k] = 0;
        for (size_t i = 0; i < r->n_runs; i++)
            shown[k] |= !isnan(v[i][k]);
    }
    /* Runs beyond the batch-size sweep (training.runs) need their names. */
    fputs("<table><tr>", f);
    if (r->named)
        fputs("<th class=\"l\">run</th>", f);
    fputs("<th class=\"l\">batch size</th><th class=\"l\">status</th>", f);
    for (int k = 0; k < NC; k++)
        if (shown[k])
            fprintf(f, "<th>%s</th>", cols[k].head);
    fputs("</tr>\n", f);
    for (size_t i = 0; i < r->n_runs; i++) {
        char hex[16];
        rep_color_hex(r->runs[i].color, hex, sizeof hex);
        /* the color swatch goes with the first column, the run's key */
        fprintf(f, "<tr><td class=\"l\"><span class=\"sw\" style=\"background:%s\"></span>",
                hex);
        if (r->named) {
            rep_esc(f, r->runs[i].name);
            fputs("</td><td class=\"l\">", f);
        }
        fprintf(f, "%ld</td><td class=\"l\">", r->runs[i].bs);
        rep_esc(f, r->runs[i].status);
        fputs("</td>", f);
        for (int k = 0; k < NC; k++) {
            if (!shown[k])
                continue;
            if (isnan(v[i][k]))
                fputs("<td>–</td>", f);
            else {
                fputs("<td>", f);
                fprintf(f, cols[k].fmt, v[i][k]);
                fputs("</td>", f);
            }
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    /* The caption explains the columns shown, and only those. */
    fputs("<p class=\"files\">Final epoch", f);
    if (shown[C_GAP])
        fputs("; gap = train − test accuracy in percentage points", f);
    if (shown[C_SHARP])
        fputs("; sharpness for the full-space variant at the first ε", f);
    if (shown[C_HESS])
        fputs("; λ<sub>max</sub> the top Hessian eigenvalue", f);
    fputs(".</p>\n", f);
    free(v);
    return BSC_OK;
}

/* ------------------------------------------------- manifest and pipeline */

/* A manifest scalar as a reader wants it: durations in seconds to 0.1 s,
 * byte counts in GiB/MiB (with the bytes), other reals to 6 digits; text
 * and integers as they are (a version "2.0" stays one). */
static void manifest_value(FILE *f, const char *key, const char *text)
{
    char *end;
    double v = strtod(text, &end);
    int number = *text && *end == '\0' && isfinite(v);
    size_t kl = strlen(key);
    char buf[96];
    if (number && kl >= 7 && !strcmp(key + kl - 7, "seconds"))
        snprintf(buf, sizeof buf, "%.1f s", v);
    else if (number && (!strcmp(key, "global_mem") || (kl >= 4 && !strcmp(key + kl - 4, "_mem"))))
        snprintf(buf, sizeof buf, v >= 1073741824.0 ? "%.1f GiB (%s bytes)" : "%.0f MiB (%s bytes)",
                 v >= 1073741824.0 ? v / 1073741824.0 : v / 1048576.0, text);
    else if (number && strpbrk(text, ".eE") && strlen(text) > 8)   /* not "2.0" */
        snprintf(buf, sizeof buf, "%.6g", v);
    else {
        rep_esc(f, text);
        return;
    }
    rep_esc(f, buf);
}

/* Scalars of the manifest as "key.sub: value" rows; lists of {name,
 * version} maps (the plugins) as one row; the runs are in the summary. */
static void manifest_rows(FILE *f, const bsc_node *n, const char *prefix)
{
    for (size_t i = 0; n->kind == BSC_NODE_MAP && i < n->n; i++) {
        const char *key = n->keys[i]->value;
        const bsc_node *v = n->items[i];
        char full[128];
        snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", key);
        if (!strcmp(full, "runs"))
            continue;
        if (v->kind == BSC_NODE_SCALAR) {
            fputs("<tr><th class=\"l\">", f);
            rep_esc(f, full);
            fputs("</th><td class=\"l\">", f);
            manifest_value(f, key, v->value);
            fputs("</td></tr>\n", f);
        } else if (v->kind == BSC_NODE_MAP) {
            manifest_rows(f, v, full);
        } else {
            fputs("<tr><th class=\"l\">", f);
            rep_esc(f, full);
            fputs("</th><td class=\"l\">", f);
            for (size_t j = 0; j < v->n; j++) {
                const bsc_node *it = v->items[j];
                const bsc_node *nm = bsc_node_get(it, "name"), *ver = bsc_node_get(it, "version");
                if (j)
                    fputs(", ", f);
                if (it->kind == BSC_NODE_SCALAR)
                    rep_esc(f, it->value);
                else if (nm && nm->value) {
                    rep_esc(f, nm->value);
                    if (ver && ver->value) {
                        fputc(' ', f);
                        rep_esc(f, ver->value);
                    }
                }
            }
            fputs("</td></tr>\n", f);
        }
    }
}

static bsc_status write_manifest(FILE *f, const rep *r)
{
    char *path = rep_path(r, BSC_FILE_MANIFEST);
    bsc_node *root = NULL;
    bsc_status s = path ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    fputs("<h2 id=\"device\">Device and versions</h2>\n", f);
    if (s == BSC_OK && !bsc_path_exists(path))
        fputs("<p class=\"note\">No " BSC_FILE_MANIFEST " in the results directory.</p>\n", f);
    /* JSON is YAML's flow style: the pipeline's YAML reader parses the
     * manifest and reports a damaged one at file:line:col. */
    else if (s == BSC_OK && (s = bsc_node_parse_file(path, &root)) == BSC_OK) {
        fputs("<table>\n", f);
        manifest_rows(f, root, "");
        fputs("</table>\n", f);
    }
    bsc_node_free(root);
    free(path);
    return s;
}

static bsc_status write_pipeline(FILE *f, const rep *r)
{
    char *path = rep_path(r, BSC_FILE_PIPELINE);
    char *text = NULL;
    bsc_status s = path ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    fputs("<h2 id=\"pipeline\">Pipeline</h2>\n", f);
    if (s == BSC_OK && !bsc_path_exists(path))
        fputs("<p class=\"note\">No " BSC_FILE_PIPELINE " in the results directory.</p>\n", f);
    else if (s == BSC_OK && (s = bsc_read_file(path, &text, NULL)) == BSC_OK) {
        fputs("<p class=\"files\">" BSC_FILE_PIPELINE ", as resolved (overrides applied):</p>"
              "<pre>", f);
        rep_esc(f, text);
        fputs("</pre>\n", f);
    }
    free(text);
    free(path);
    return s;
}

/* The study's failure policy, on the page: which runs the analyses and
 * the figures of final results leave out, and why -- the runs found that
 * diverged (details from their run.json) and the runs the manifest says
 * failed (they may have left no run directory). */
static void left_out_item(FILE *f, int *any, const char *name, const char *why)
{
    fputs(*any ? "; " : "<p class=\"note\">Left out of the analyses and of the figures of "
                        "final results: ", f);
    *any = 1;
    rep_esc(f, name);
    fputs(" (", f);
    rep_esc(f, why);
    fputs(")", f);
}

static void write_left_out(FILE *f, const rep *r, const bsc_manifest *man)
{
    int any = 0;
    for (size_t i = 0; i < r->n_runs; i++) {
        const rep_run *run = &r->runs[i];
        if (rep_run_healthy(run))
            continue;
        char why[160], *json = bsc_strdup_printf("%s/%s", run->dir, BSC_FILE_RUN_RECORD);
        bsc_run_record *rec = NULL;
        snprintf(why, sizeof why, "%s", run->status);
        if (json && bsc_run_record_read(json, &rec) == BSC_OK && rec->diverged_epoch > 0)
            snprintf(why, sizeof why, "diverged at epoch %d, step %ld: its curves end where "
                     "the loss stopped being finite", rec->diverged_epoch, rec->diverged_step);
        bsc_clear_error();
        bsc_run_record_free(rec);
        free(json);
        left_out_item(f, &any, run->name, why);
    }
    for (size_t i = 0; i < (man ? man->n_runs : 0); i++) {
        const bsc_run_record *rr = man->runs[i];
        const rep_run *found = rr->name ? rep_find_run_name(r, rr->name) : NULL;
        if (rr->status && !strcmp(rr->status, "failed") && rr->name &&
            (!found || rep_run_healthy(found)))
            left_out_item(f, &any, rr->name, "failed: see the study's error");
    }
    if (any)
        fputs(".</p>\n", f);
    if (man && man->status && strcmp(man->status, "completed") != 0) {
        fputs("<p class=\"note\">The study ", f);
        rep_esc(f, man->status);
        if (man->error) {
            fputs(": ", f);
            rep_esc(f, man->error);
        }
        fputs(".</p>\n", f);
    }
}

/* ------------------------------------------------------------ figures */

static void write_figure(FILE *f, const rep *r, const rep_fig *g, int number)
{
    fprintf(f, "<section id=\"fig-%s\">\n<h3>Figure %d. ", g->name, number);
    esc_plplot(f, g->title);
    fputs("</h3>\n", f);
    if (!g->made) {
        fputs("<p class=\"note\">Skipped: ", f);
        rep_esc(f, g->note ? g->note : "no data");
        fputs(".</p>\n</section>\n", f);
        return;
    }
    fputs("<p class=\"what\">", f);
    esc_plplot(f, g->what);
    fputs("</p>\n", f);
    if (g->note) {
        /* drawn, but not from everything there was */
        fputs("<p class=\"note\">Note: ", f);
        rep_esc(f, g->note);
        fputs(".</p>\n", f);
    }
    fputs("<figure>\n", f);
    const char *svg = g->svg ? strstr(g->svg, "<svg") : NULL;
    if (svg)
        fputs(svg, f);
    fputs("</figure>\n<p class=\"files\">", f);
    if (r->png)
        fprintf(f, "<a href=\"" BSC_FIGURES_DIR "/%s.png\">" BSC_FIGURES_DIR "/%s.png</a> ",
                g->name, g->name);
    if (r->svg)
        fprintf(f, "<a href=\"" BSC_FIGURES_DIR "/%s.svg\">" BSC_FIGURES_DIR "/%s.svg</a>",
                g->name, g->name);
    fputs("</p>\n</section>\n", f);
}

bsc_status rep_write_html(rep *r)
{
    char *path = rep_path(r, BSC_FILE_REPORT_HTML);
    if (!path)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    bsc_afile a;
    bsc_status s = bsc_afile_open(&a, path);
    free(path);
    if (s != BSC_OK)
        return s;
    FILE *f = a.f;
    const char *title = r->title;
    bsc_manifest *man = NULL;
    char *mpath = rep_path(r, BSC_FILE_MANIFEST);
    /* the study's name, for the title, from the manifest when there is one;
     * also the runs that failed, which have no run.json */
    if (mpath && bsc_path_exists(mpath) && (s = bsc_manifest_read(mpath, &man)) != BSC_OK) {
        if (!title) {
            free(mpath);
            bsc_afile_abort(&a);
            return s;
        }
        s = BSC_OK;
    }
    free(mpath);
    if (!title)
        title = man ? man->name : r->out;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>"
          "batchscope: ", f);
    rep_esc(f, title);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>batchscope: ", style);
    rep_esc(f, title);
    fputs("</h1>\n<p class=\"files\">How batch size shapes training: every figure below is "
          "drawn from the result files in this directory (<code>batchscope report DIR</code> "
          "redraws them).</p>\n", f);
    int made = 0;
    for (size_t i = 0; i < r->n_figs; i++)
        made += r->figs[i].made;
    fprintf(f, "<p>%zu runs; %d of %zu figures drawn. <a href=\"#summary\">Summary</a> · "
            "<a href=\"#figures\">Figures</a> · <a href=\"#other\">Other result files</a> · "
            "<a href=\"#device\">Device and versions</a> · <a href=\"#pipeline\">Pipeline</a>"
            "</p>\n", r->n_runs, made, r->n_figs);
    write_left_out(f, r, man);
    fprintf(f, "<h2 id=\"summary\">Summary per %s</h2>\n", r->named ? "run" : "batch size");
    s = write_summary(f, r);
    if (s == BSC_OK) {
        fputs("<h2 id=\"figures\">Figures</h2>\n", f);
        for (size_t i = 0; i < r->n_figs; i++)
            write_figure(f, r, &r->figs[i], (int)i + 1);
        /* after the summary and the figures: everything they read is known */
        s = rep_write_other_files(f, r);
    }
    if (s == BSC_OK)
        s = write_manifest(f, r);
    if (s == BSC_OK)
        s = write_pipeline(f, r);
    fputs("</body>\n</html>\n", f);
    bsc_manifest_free(man);
    if (s != BSC_OK) {
        bsc_afile_abort(&a);
        return s;
    }
    return bsc_afile_commit(&a);
}
