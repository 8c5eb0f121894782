/* The report plugin: report type "report", figures and OUT/report.html.
 *
 * Options (the pipeline's `report:` mapping, or the entry under
 * `analyses:`; all optional):
 *
 *   report:
 *     enabled: true          # false: `batchscope run` draws nothing
 *     formats: [png, svg]    # files kept under OUT/figures
 *     html: true             # OUT/report.html (inlines the SVGs)
 *     title: My study        # page title (default: the study's name)
 *
 * post() reads only the files under study->out_dir; ctx, model and eval
 * may be NULL (that is how `batchscope report OUT` calls it).
 */
#include "report.h"

#include "batchscope/fsutil.h"
#include "batchscope/node.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

typedef struct report_opts {
    int enabled, png, svg, html;
    char *title;
} report_opts;

static bsc_status parse_formats(const bsc_node *n, report_opts *o)
{
    static const char *const choices[] = {"png", "svg"};
    o->png = o->svg = 0;
    size_t count = n->kind == BSC_NODE_SEQ ? n->n : 1;
    for (size_t i = 0; i < count; i++) {
        const bsc_node *it = n->kind == BSC_NODE_SEQ ? n->items[i] : n;
        const char *v;
        bsc_status s = bsc_node_to_string(it, &v);
        if (s != BSC_OK)
            return s;
        if (!strcmp(v, "png"))
            o->png = 1;
        else if (!strcmp(v, "svg"))
            o->svg = 1;
        else {
            const char *near = bsc_closest_name(v, choices, 2);
            return bsc_node_fail(it, BSC_ERR_INVALID, "unknown figure format '%s'%s%s%s "
                                 "(formats: png, svg)", v, near ? " (did you mean '" : "",
                                 near ? near : "", near ? "'?)" : "");
        }
    }
    return BSC_OK;
}

static bsc_status report_create(const bsc_component_config *cfg, void **self)
{
    report_opts *o = calloc(1, sizeof *o);
    if (!o)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    o->enabled = o->png = o->svg = o->html = 1;
    const bsc_node *n = cfg->options;
    bsc_status s = BSC_OK;
    const char *title = NULL;
    if (n && !(n->kind == BSC_NODE_SCALAR && (!n->value || !n->value[0]))) {
        if ((s = bsc_opt_bool(n, "enabled", 1, &o->enabled)) == BSC_OK &&
            (s = bsc_opt_bool(n, "html", 1, &o->html)) == BSC_OK &&
            (s = bsc_opt_string(n, "title", NULL, NULL, &title)) == BSC_OK &&
            bsc_node_get(n, "formats"))
            s = parse_formats(bsc_node_get(n, "formats"), o);
    }
    if (s == BSC_OK && title && !(o->title = strdup(title)))
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s != BSC_OK) {
        free(o->title);
        free(o);
        return s;
    }
    *self = o;
    return BSC_OK;
}

static void report_destroy(void *self)
{
    report_opts *o = self;
    if (o)
        free(o->title);
    free(o);
}

/* ------------------------------------------------------------ figures */

typedef bsc_status (*fig_fn)(rep *r, rep_fig *f);

static const struct {
    const char *name, *title, *what;
    fig_fn fn;
} figures[] = {
    {"curves", "Loss and accuracy during training", "Look for where the large batch's test "
     "curve (dashed) levels off below the small batch's while its train curve (solid) keeps "
     "up: that difference is the generalization gap.", rep_fig_curves},
    {"generalization_gap", "Generalization gap against batch size", "Look for the gap "
     "(final train minus test accuracy) growing with batch size, and for whether a scaled "
     "learning rate brings it back down.", rep_fig_gap},
    {"distance_from_init", "Distance from the initial weights", "Look for how far each "
     "batch size moves from w#d0#u: per epoch the small batch, taking many more steps, "
     "usually travels farther; per step the ordering can flip.", rep_fig_distance},
    {"epoch_distance", "Distance travelled in each epoch", "Look for the per-epoch distance "
     "shrinking as training settles, and for which batch size keeps moving.",
     rep_fig_epoch_distance},
    {"epoch_distance_ratio", "Ratio of epoch distances, small batch over large batch",
     "Look for a ratio above 1 that grows over the epochs: the small batch keeps exploring "
     "while the large one settles.", rep_fig_distance_ratio},
    {"update_norms", "Distribution of the per-step update norms", "Look for the medians "
     "(dashed lines): larger batches take shorter steps than their averaged gradient's "
     "size suggests, because per-example gradients partly cancel in the sum.",
     rep_fig_update_norms},
    {"gradient_diversity", "Gradient diversity over training", "Look for a norm ratio well "
     "below 1: per-example gradients point in different directions, so by the triangle "
     "inequality a larger batch's averaged gradient is shorter.", rep_fig_diversity},
    {"gradient_diversity_common", "Gradient diversity of the minimizers at one batch size",
     "Look for the norm ratio of each run's final weights, all measured on the same batches: "
     "a lower ratio means more diverse per-example gradients at that minimizer.",
     rep_fig_diversity_common},
    {"noise_scale", "Gradient noise scale over training", "Look for the level of B#dsimple#u, "
     "an estimate of the critical batch size: batches well above it gain little per "
     "example, and it tends to grow as training proceeds.", rep_fig_noise_scale},
    {NULL, NULL, NULL, NULL},  /* interpolation figures go here (one per file) */
    {"sharpness", "Sharpness against batch size", "Look for sharpness rising with batch "
     "size: large batches tend to end in sharper minimizers (Keskar et al.).",
     rep_fig_sharpness},
    {"hessian", "Curvature against batch size", "Look for the top Hessian eigenvalue, the "
     "curvature along the sharpest direction, rising with batch size.", rep_fig_hessian},
    {"hessian_density", "Hessian eigenvalue density", "Look for the few large outliers to "
     "the right of the bulk near zero: they sit farther out for a sharper minimizer, while "
     "most directions stay nearly flat.", rep_fig_density},
    {"surfaces", "Filter-normalized loss surfaces", "Look for the width of the low-loss "
     "basin around each minimizer (+) on the shared color scale: a wider, flatter basin "
     "goes with better generalization (Li et al.).", rep_fig_surfaces},
    {"surface_cuts", "Loss along the two surface directions", "Look for how steeply the "
     "loss rises on both sides of 0: a narrower valley is a sharper minimizer.",
     rep_fig_surface_cuts},
};

static const char *interp_what =
    "Look for the shape of the loss between the two minimizers (dotted lines at α = 0 and 1): "
    "a wide, flat basin around the small-batch minimizer against a narrow, sharp one around "
    "the large-batch minimizer, and whether a barrier separates them.";

static rep_fig *next_fig(rep *r, const char *name, const char *title, const char *what)
{
    if (r->n_figs == REP_MAX_FIGS)
        return NULL;
    rep_fig *f = &r->figs[r->n_figs++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->title, sizeof f->title, "%s", title);
    f->what = what;
    return f;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Figure 4: one per interpolate_*.csv (pairs of runs or checkpoints). */
static bsc_status interpolation_figures(rep *r)
{
    const size_t lp = sizeof BSC_PREFIX_INTERPOLATE - 1;
    char *dir = rep_path(r, BSC_ANALYSES_DIR);
    if (!dir)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    char *names[REP_MAX_FIGS];
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 8) {
        size_t len = strlen(e->d_name);
        if (!strncmp(e->d_name, BSC_PREFIX_INTERPOLATE, lp) && len > lp + 4 &&
            !strcmp(e->d_name + len - 4, ".csv") && (names[n] = strdup(e->d_name)))
            n++;
    }
    if (d)
        closedir(d);
    free(dir);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    bsc_status s = BSC_OK;
    if (n == 0) {
        rep_fig *f = next_fig(r, "interpolation", "Linear interpolation between minimizers",
                              interp_what);
        if (f)
            s = rep_skip(f, "no %s*.csv (the interpolate analysis was not run)",
                         BSC_IN_ANALYSES(BSC_PREFIX_INTERPOLATE));
    }
    for (size_t i = 0; i < n; i++) {
        long a, b;
        const rep_run *ra, *rb;
        char stem[160], title[320];
        snprintf(stem, sizeof stem, "%.*s", (int)(strlen(names[i]) - 4), names[i]);
        if (rep_split_pair(r, stem + lp, &ra, &rb, &a, &b) && ra && rb)
            snprintf(title, sizeof title, "Linear interpolation from %s (α = 0) to %s (α = 1)",
                     ra->label, rb->label);
        else if (a > 0)
            snprintf(title, sizeof title, "Linear interpolation from B = %ld (α = 0) to B = "
                     "%ld (α = 1)", a, b);
        else
            snprintf(title, sizeof title, "Linear interpolation (%s)", names[i]);
        rep_fig *f = next_fig(r, stem, title, interp_what);
        if (s == BSC_OK && f)
            s = rep_fig_interpolation(r, f, names[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return s;
}

static bsc_status report_post(void *self, const bsc_study *study)
{
    const report_opts *o = self;
    if (!o->enabled)
        return BSC_OK;
    rep r;
    memset(&r, 0, sizeof r);
    r.out = study->out_dir;
    r.png = o->png;
    r.svg = o->svg;
    r.html = o->html;
    r.title = o->title;
    r.fig_dir = rep_path(&r, BSC_FIGURES_DIR);
    r.reads = calloc(1, sizeof *r.reads);
    bsc_status s = r.fig_dir && r.reads ? bsc_mkdir_p(r.fig_dir)
                                        : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        s = rep_load_runs(&r);
    if (s == BSC_OK && r.n_runs == 0)
        s = bsc_fail(BSC_ERR_NOT_FOUND, "%s/" BSC_RUNS_DIR ": no run directories to report "
                     "on (a run has a " BSC_FILE_RUN_RECORD " with its batch size, or is named "
                     "bs<B>)", r.out);
    for (size_t i = 0; s == BSC_OK && i < sizeof figures / sizeof *figures; i++) {
        if (!figures[i].fn) {
            s = interpolation_figures(&r);
            continue;
        }
        rep_fig *f = next_fig(&r, figures[i].name, figures[i].title, figures[i].what);
        if (f)
            s = figures[i].fn(&r, f);
    }
    if (s == BSC_OK && r.html)
        s = rep_write_html(&r);
    rep_free(&r);
    return s;
}

BSC_REPORT_TYPE(rep_report, "report",
                "figures (PNG, SVG) and a self-contained OUT/report.html from the result files",
                BSC_OPTIONS(BSC_OPT("enabled", BSC_OPT_BOOL, "true",
                                    "false: `batchscope run` draws nothing"),
                            BSC_OPT("formats", BSC_OPT_LIST, "[png, svg]",
                                    "figure files kept under OUT/figures"),
                            BSC_OPT("html", BSC_OPT_BOOL, "true",
                                    "OUT/report.html (inlines the SVGs)"),
                            BSC_OPT("title", BSC_OPT_STRING, "",
                                    "page title (default: the study's name)")),
                .create = report_create, .draw = report_post, .destroy = report_destroy);

#define REPORT_TYPES(X) X(rep_report)
BSC_PLUGIN("report", "0.2.0", REPORT_TYPES)
