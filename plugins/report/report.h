/* batchscope report plugin: what its files share.
 *
 * The report reads nothing but the result files under OUT (it must work for
 * `batchscope report OUT`, where there is no device, model or evaluator), so
 * the plugin is three layers:
 *
 *  - data.c: the runs found under OUT/runs (every run directory, by name:
 *    bs<B> for a batch_sizes entry, or a training.runs name), and checked
 *    access to the result CSVs (every error names the file and the line);
 *  - plot.c: a thin layer over PLplot's C API (one page per figure, rendered
 *    once per output format, PLplot's exit()ing error path turned into a
 *    status), the fixed color of each run, axes, series, legends;
 *  - fig_*.c: one function per figure, and html.c: OUT/report.html;
 *    files.c: the files under OUT/analyses and OUT/runs that nothing on
 *    the page read (a custom observer's or analysis' results), listed so
 *    that they are not silently left out.
 *
 * A figure whose data is absent (its observer or analysis was not run) is
 * recorded as skipped with a note; malformed data is an error. The names of
 * the files and columns come from batchscope/results.h, which the writers
 * use too.
 */
#ifndef BSC_REPORT_H
#define BSC_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "batchscope/plugin.h"
#include "batchscope/results.h"
#include "batchscope/table.h"

/* One training run, OUT/runs/<name>. */
typedef struct rep_run {
    long bs;
    char *name;             /* run.json's name, else the directory's */
    /* What legends and titles call it: "B = 256" for the run bs256, and
     * "bs256-sqrt (B = 256)" for a named one, whose batch size alone would
     * not tell it from the others at 256. */
    char label[96];
    int is_default;         /* named bs<B>: a training.batch_sizes run */
    /* Against batch size, the runs of one B would fall on one x: each is
     * shifted by xoff (log2 units), and lines join only the `main` run of
     * each B (the bs<B> run, else the first by name). */
    double xoff;
    int main;
    int shared;             /* another run has this batch size */
    char *dir;
    char *metrics_path;
    bsc_table *metrics;     /* NULL when the run has no metrics.csv */
    char status[32];        /* run.json's status; "incomplete" without one */
    int color;              /* cmap0 index, fixed for this run */
    int style;              /* line style: changes only past the palette's size */
    double steps_per_epoch; /* from metrics.csv (NaN when unknown) */
} rep_run;

/* Paths relative to OUT (files.c). */
typedef struct rep_paths {
    char **rel;
    size_t n, cap;
} rep_paths;

/* One figure of the report: produced, or skipped with a note. */
typedef struct rep_fig {
    char name[160];         /* file stem under OUT/figures */
    char title[320];
    const char *what;       /* one sentence: what to look for */
    char *note;             /* malloc'ed: why it was skipped, or (made) what
                               it leaves out */
    int made;
    char *svg;              /* the SVG text for the page (malloc'ed) */
} rep_fig;

#define REP_MAX_FIGS 32

typedef struct rep {
    const char *out;        /* OUT */
    char *fig_dir;          /* OUT/figures */
    int png, svg;           /* keep these formats under OUT/figures */
    int html;               /* write OUT/report.html */
    const char *title;
    rep_run *runs;          /* sorted by batch size, then name */
    size_t n_runs;
    int named;              /* some run is not a bs<B> one (training.runs) */
    rep_fig figs[REP_MAX_FIGS];
    size_t n_figs;
    /* Every file a figure or table read. Behind a pointer because the
     * readers take a const rep: what they read is a record kept on the
     * side, not a change to the report's inputs. */
    rep_paths *reads;
} rep;

/* ------------------------------------------------------------- data.c */

/* Finds the run directories under OUT/runs (bsc_runs_scan: name and batch
 * size from run.json, else a bs<B> directory name), reads their
 * metrics.csv and assigns each run its color, label and offset. */
bsc_status rep_load_runs(rep *r);
void rep_free(rep *r);

/* 0 for a run whose end is no minimizer -- it diverged or failed -- which
 * the figures over final results (gap, sharpness, curvature) leave out; a
 * run without run.json ("incomplete": an interrupted study) is drawn as far
 * as it got. */
int rep_run_healthy(const rep_run *run);

/* Sets f's note to "left out: <run> (<status>), ..." naming the runs that
 * are not healthy, when there are any. */
bsc_status rep_note_left_out(const rep *r, rep_fig *f);

/* The run of batch size bs (the run bs<B> first, else the first of that
 * size), or NULL. */
const rep_run *rep_find_run(const rep *r, long bs);
/* The run with this name, or NULL. */
const rep_run *rep_find_run_name(const rep *r, const char *name);

/* The run a result row is about: by its `run` column (name) when the table
 * has one (run_col >= 0; NULL for a name not among the runs), else by the
 * batch size bs. */
const rep_run *rep_row_run(const rep *r, const bsc_table *t, long run_col, size_t row,
                           double bs);

/* The runs a file name is about: stem "<A>_<B>" of interpolate_<A>_<B>.csv
 * split into two run names (names may hold '_': every split is tried), else
 * read as "bs<A>_bs<B>" batch sizes. 0 when neither fits. */
int rep_split_pair(const rep *r, const char *stem, const rep_run **a, const rep_run **b,
                   long *bs_a, long *bs_b);

/* OUT/<rel> (malloc'ed) or NULL on out of memory. */
char *rep_path(const rep *r, const char *rel);

/* Reads a result CSV (a path under r->out) and notes it as read. A missing
 * file is not an error: *t = NULL. A file that does not end in a newline
 * was cut short (writers always end lines) and is an error naming its last
 * line, as is any row with the wrong field count. */
bsc_status rep_csv(const rep *r, const char *path, bsc_table **t);

/* Column `name` of t (read from path), which must exist: otherwise an error
 * at path:1 listing the columns there are. */
bsc_status rep_col(const bsc_table *t, const char *path, const char *name, size_t *col);
/* The first of the NULL-terminated names that t has, or -1. */
long rep_col_any(const bsc_table *t, const char *const *names);

/* The number in (row, col); empty cells and "nan" give NaN. Text where a
 * number belongs is an error at path:line (line = row + 2: the header is
 * line 1 and the writers emit no blank lines). */
bsc_status rep_num(const bsc_table *t, const char *path, size_t row, size_t col, double *v);

/* 0 when the row is about a run an analysis left out or failed on: its
 * `status` column (when the table has one) says "skipped: ..." or
 * "failed: ...". */
int rep_row_ok(const bsc_table *t, size_t row);

/* A whole numeric column, malloc'ed (n = number of rows). */
bsc_status rep_column(const bsc_table *t, const char *path, size_t col, double **v);

/* 1 when the row is a total, not one layer's value: tables with a `layer`
 * column mark totals with an empty cell, "total" or "all". */
int rep_row_is_total(const bsc_table *t, long layer_col, size_t row);

/* One run's columns as arrays. */
typedef struct rep_series {
    const rep_run *run;
    size_t n;
    double *x;
    double *y[4];
} rep_series;

/* For every run (the array has r->n_runs entries): metrics.csv's column
 * xname and up to 4 columns ynames. A run without metrics.csv, or without
 * one of the columns when !required, gets n = 0; when required, a missing
 * column is an error at the file's header. *found counts runs with data. */
bsc_status rep_metrics_series(const rep *r, const char *xname, const char *const *ynames,
                              int ny, int required, rep_series **out, size_t *found);
void rep_series_free(rep_series *s, size_t n);

/* Quantile q of v[0..n) (sorted in place; NaNs dropped first, n updated). */
double rep_quantile(double *v, size_t *n, double q);

/* Sets the figure's skip note (printf-style). */
bsc_status rep_skip(rep_fig *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------- plot.c */

/* Named cmap0 entries (the runs' colors come after REP_COL_BS0). */
enum {
    REP_COL_BG = 0, REP_COL_FG, REP_COL_GRID, REP_COL_MUTED, REP_COL_LOSS, REP_COL_ACC,
    REP_COL_BS0, REP_N_BS_COLORS = 8, REP_N_COLORS = REP_COL_BS0 + REP_N_BS_COLORS
};

/* Draws the current figure; data is what the figure function prepared.
 * Runs between plinit and plend, once per output format. */
typedef void (*rep_draw_fn)(const rep *r, const void *data);

/* Renders the figure to OUT/figures/<name>.png and .svg (each written to a
 * temporary name and renamed), keeps the SVG text in f->svg for the page,
 * and marks f made. width/height in pixels of the PNG (points of the SVG).
 * A PLplot error becomes BSC_ERR_PLUGIN naming the figure. */
bsc_status rep_render(rep *r, rep_fig *f, int width, int height, rep_draw_fn draw,
                      const void *data);

/* "#RRGGBB" of a cmap0 entry (runs; black otherwise), for the page. */
void rep_color_hex(int color, char *buf, size_t len);

/* Page geometry of the figure being drawn. */
int rep_page_width(void);
int rep_page_height(void);

/* Sets the viewport from pixel margins of the page box [x0, x1] x [y0, y1]
 * (fractions of the page, y up). */
void rep_viewport(double x0, double x1, double y0, double y1);

/* The viewport of panel (col, row) of a ncols x nrows grid (row 0 on top),
 * leaving right_px pixels on the right for an outside legend or colorbar. */
void rep_panel(int col, int row, int ncols, int nrows, int right_px);

/* Axis kinds for rep_axes. */
enum { REP_AX_LIN = 0, REP_AX_LOG10 = 1, REP_AX_LOG2 = 2 };

/* Window, light grid, black frame with ticks, labels and title. Log axes
 * take log10 / log2 of the data already (rep_tx does it). */
void rep_axes(double xmin, double xmax, int xkind, double ymin, double ymax, int ykind,
              const char *xlabel, const char *ylabel, const char *title);
/* Right-hand axis for a second quantity over the same viewport. */
void rep_axis_right(double ymin, double ymax, const char *label, int color);

/* Coordinate for an axis kind (log of the value; NaN when not positive). */
double rep_tx(double v, int kind);

/* A polyline in color/style/width that breaks at NaN points. */
void rep_line(size_t n, const double *x, const double *y, int color, int style, double width);
/* A translucent band in color between lo and hi along x: an error band,
 * one piece per stretch of points where all three are finite. */
void rep_band(size_t n, const double *x, const double *lo, const double *hi, int color);
/* Markers at each finite point: 0 small dot, 1 circle, 2 square, 3 triangle,
 * 4 diamond, 5 triangle down; scale 1 is about 14 pixels across. */
void rep_points(size_t n, const double *x, const double *y, int color, int symbol,
                double scale);

/* Makes [lo, hi] a range PLplot can draw: finite, increasing, not empty
 * ([0, 1] when nothing is finite; a span around a single value). */
void rep_sane_range(double *lo, double *hi);

/* The data range of finite values (ymin > ymax when there are none); pads by
 * frac of the span on each side (log kinds: in log units). */
void rep_range(size_t n, const double *v, double *lo, double *hi);
void rep_pad(double *lo, double *hi, double frac);

/* A legend of up to 16 lines at the upper right, inside or outside the
 * viewport. Entries with color < 0 are headers (text only). */
typedef struct rep_legend {
    int n;
    const char *text[16];
    int color[16];
    int style[16];
    int symbol[16];        /* 0: none */
    char own[16][128];     /* texts the legend made itself */
} rep_legend;
void rep_legend_add(rep_legend *l, const char *text, int color, int style, int symbol);
/* Draws the legend; one outside the panel that would not fit in the space
 * right of it is drawn with smaller text rather than cut off. */
void rep_legend_draw(const rep_legend *l, int outside);  /* 2: clear of a right axis */

/* The legend entries for every run (one line per run, its label). A run
 * that has no line or point in the figure drawn so far is listed as text,
 * "<label>: no data", rather than with a line the figure does not have:
 * call it after the data is drawn. */
void rep_legend_runs(const rep *r, rep_legend *l);
/* Pixels to leave right of the panels for an outside legend of the runs:
 * base, or more when a run's label is longer than base allows. */
int rep_legend_px(const rep *r, int base);
/* The same for a legend line of this text (a note under the runs). */
int rep_legend_text_px(const char *text);

/* Height in pixels of the current panel (after rep_panel). */
int rep_panel_height_px(void);

/* World x / y units of px pixels in the current panel (to offset labels). */
double rep_px_x(double px);
double rep_px_y(double px);

/* While on, custom-labelled ('o') axes show 10^v (log10 data) instead of
 * 2^v (the batch-size axes). */
void rep_label_pow10(int on);

/* Text at world coordinates (PLplot escapes apply). */
void rep_text(double x, double y, double just, int color, double scale, const char *text);
/* Text written upward from (x, y), centred on x: labels of points that sit
 * side by side. */
void rep_text_up(double x, double y, int color, double scale, const char *text);

/* ------------------------------------------------------------ figures */

bsc_status rep_fig_curves(rep *r, rep_fig *f);        /* 1: accuracy and loss per epoch */
bsc_status rep_fig_gap(rep *r, rep_fig *f);           /* 1: generalization gap vs B */
bsc_status rep_fig_distance(rep *r, rep_fig *f);      /* 2: distance from init */
bsc_status rep_fig_epoch_distance(rep *r, rep_fig *f);/* 2: epoch distance */
bsc_status rep_fig_distance_ratio(rep *r, rep_fig *f);/* 2: ratio small / large */
bsc_status rep_fig_update_norms(rep *r, rep_fig *f);  /* 3: histograms */
bsc_status rep_fig_diversity(rep *r, rep_fig *f);     /* 3: gradient diversity */
bsc_status rep_fig_noise_scale(rep *r, rep_fig *f);   /* 3: noise scale */
bsc_status rep_fig_diversity_common(rep *r, rep_fig *f); /* 3: at one batch size (fig_minima.c) */
bsc_status rep_fig_interpolation(rep *r, rep_fig *f, const char *csv); /* 4 */
bsc_status rep_fig_sharpness(rep *r, rep_fig *f);     /* 5 */
bsc_status rep_fig_hessian(rep *r, rep_fig *f);       /* 5 */
bsc_status rep_fig_density(rep *r, rep_fig *f);       /* 5: spectral density (fig_density.c) */
bsc_status rep_fig_surfaces(rep *r, rep_fig *f);      /* 6: contours */
bsc_status rep_fig_surface_cuts(rep *r, rep_fig *f);  /* 6: 1D cuts */

/* Fraction of training (epochs) at a step of this run; step itself when the
 * run's steps per epoch are unknown. */
double rep_epoch_of_step(const rep_run *run, double step);

/* ------------------------------------------------------------- html.c */

/* Writes OUT/report.html from the figures drawn and the result files. */
bsc_status rep_write_html(rep *r);

/* s as HTML text (<, >, & and " escaped); NULL writes nothing. */
void rep_esc(FILE *f, const char *s);

/* ------------------------------------------------------------ files.c */

/* Notes that the report read path (a path under r->out, which need not
 * exist); reading the same file again notes nothing new. */
bsc_status rep_note_read(const rep *r, const char *path);
void rep_paths_free(rep_paths *l);

/* The page's section of the other result files: every regular file under
 * OUT/analyses and OUT/runs that no figure or table read (hidden names
 * left out), sorted by path, each with a link, its size and, for a CSV,
 * its columns and row count. A file that cannot be read is listed without
 * them: one custom file must not cost the whole report. Call it after all
 * the figures and tables have read their files. */
bsc_status rep_write_other_files(FILE *f, const rep *r);

#endif
