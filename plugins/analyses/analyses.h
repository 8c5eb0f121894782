/* batchscope analyses plugin: what its files share.
 *
 * The plugin is split in two layers so that the mathematics can be tested on
 * cases known on paper without a device:
 *
 *  - math cores that see only host vectors and a callback (the L-BFGS-B
 *    driver, power iteration with deflation, Hutchinson's trace, grid
 *    coordinates, filter normalization of one tensor);
 *  - the four analyses (interpolate, sharpness, surface, hessian), which wire
 *    those callbacks to the evaluator and the model's flat buffers.
 *
 * Random numbers: every draw is bsc_rng (Philox) keyed by the study seed and
 * a purpose; the streams used here are fixed so that files can be
 * regenerated elsewhere:
 *   BSC_RNG_DIRECTIONS stream 0 / 1      surface directions x / y
 *   BSC_RNG_DIRECTIONS stream 100 + j    power iteration start vector j
 *   BSC_RNG_DIRECTIONS stream 200 + s    Hutchinson probe s (Rademacher)
 *   BSC_RNG_SHARPNESS  stream 0          the subspace matrix A (n x p)
 *   BSC_RNG_SHARPNESS  stream 1          random start points in the box
 */
#ifndef BSC_ANALYSES_H
#define BSC_ANALYSES_H

#include <stddef.h>
#include <stdint.h>

#include "batchscope/batchscope.h"
#include "batchscope/evaluator.h"
#include "batchscope/model.h"

/* The types, one per file; plugin.c lists them. */
#define ANA_TYPES(X) X(ana_interpolate) X(ana_sharpness) X(ana_surface) X(ana_hessian)

/* ------------------------------------------------------------ L-BFGS-B */

/* f and its gradient at x (n doubles). Returns BSC_OK or a failure that
 * stops the optimizer. */
typedef bsc_status (*ana_fg_fn)(void *user, const double *x, double *f, double *g);

typedef struct ana_lbfgsb_opts {
    int memory;          /* m, corrections kept (10) */
    int max_iter;        /* iterations (NEW_X reports); 0 = no limit */
    int max_eval;        /* f/g evaluations; 0 = no limit */
    double factr;        /* setulb's relative-decrease test, in units of eps */
    double pgtol;        /* setulb's projected-gradient test */
} ana_lbfgsb_opts;

typedef struct ana_lbfgsb_result {
    double f;            /* f at the returned x: the smallest f evaluated */
    double f_min;        /* the same (kept for clarity at call sites) */
    int iterations;
    int evaluations;
    char task[61];       /* setulb's last task ("CONVERGENCE: ...", "STOP") */
} ana_lbfgsb_result;

/* Minimizes f over the box lo <= x <= hi with the reference L-BFGS-B
 * (Byrd, Lu, Nocedal, Zhu; version 3.0, setulb), starting from x (projected
 * into the box), and leaves in x the evaluated point with the smallest f.
 * Every point f is evaluated at lies in the box (setulb projects). Stops at
 * max_iter iterations, max_eval evaluations, convergence or an abnormal line
 * search (not an error: the best point so far is kept). */
bsc_status ana_lbfgsb_minimize(size_t n, double *x, const double *lo, const double *hi,
                               const ana_lbfgsb_opts *o, ana_fg_fn fg, void *user,
                               ana_lbfgsb_result *r);

/* ------------------------------------------------ eigenvalues and trace */

/* hv = H v for a symmetric operator H (n doubles each). */
typedef bsc_status (*ana_hv_fn)(void *user, const double *v, double *hv);

typedef struct ana_eig_opts {
    int k;               /* eigenpairs wanted */
    int max_iter;        /* Hessian-vector products per eigenpair, at most */
    double tol;          /* stop when |lambda_t - lambda_{t-1}| <= tol * |lambda_t| */
    uint64_t seed;
} ana_eig_opts;

/* The k eigenvalues of largest magnitude by power iteration, each run on the
 * orthogonal complement of the eigenvectors already found (deflation by
 * projection: exact for a symmetric H). lambda[j] is the Rayleigh quotient
 * v.Hv of the last iterate; iters[j] the products it took; vecs (optional,
 * n*k doubles) receives the unit eigenvectors. Start vectors are Gaussian
 * (BSC_RNG_DIRECTIONS stream 100 + j). */
bsc_status ana_power_topk(size_t n, const ana_eig_opts *o, ana_hv_fn hv, void *user,
                          double *lambda, int *iters, double *vecs);

/* Hutchinson's estimate of tr(H): the mean of z.Hz over `samples`
 * Rademacher vectors z (BSC_RNG_DIRECTIONS stream 200 + s); *std_err is the
 * standard error of that mean (0 for one sample). Exact for diagonal H. */
bsc_status ana_hutchinson(size_t n, int samples, uint64_t seed, ana_hv_fn hv, void *user,
                          double *trace, double *std_err);

/* -------------------------------------------------------------- grids */

typedef struct ana_grid {
    double x0, x1, y0, y1;
    int nx, ny;          /* points per axis; ny == 1 with y0 == y1 for a line */
} ana_grid;

/* Coordinate i of n evenly spaced points over [a, b] (a when n == 1). A
 * grid is resumable through the host's unit records (plugin.h), not here. */
double ana_linspace(double a, double b, int n, int i);

/* --------------------------------------------------- filter normalization */

typedef enum ana_ignore { ANA_IGNORE_BIASBN = 0, ANA_IGNORE_NONE = 1 } ana_ignore;

/* Li et al.'s filter normalization of direction d for one model tensor t
 * (params-buffer arrays w and d, indexed by t->offset): each slice along
 * spec.filter_axis (a neuron of a dense weight, an output channel of a conv)
 * is rescaled to the Euclidean norm of the same slice of w; a weight without
 * a filter axis is scaled as a whole. Bias and norm tensors become zero with
 * ANA_IGNORE_BIASBN, and a copy of w with ANA_IGNORE_NONE (what the
 * reference code does for 1-D tensors). State tensors are not touched. */
void ana_filter_normalize(const bsc_model_tensor *t, const float *w, float *d, ana_ignore ig);

/* ----------------------------------------------------- shared plumbing */

/* The kernel `kernel` of `file`, one of the plugin's own OpenCL sources
 * (cl/analyses, embedded into the module), built through the runtime's
 * program cache; owned by the context. A file not embedded is
 * BSC_ERR_NOT_FOUND. */
bsc_status ana_kernel(bsc_context *ctx, const char *file, const char *kernel, cl_kernel *out);

/* Enqueues out = a*x + b*y + c*z over n elements. The y and z terms are
 * skipped when their coefficient is zero (y, z may then be NULL), so that
 * 1*x is x bit for bit. */
bsc_status ana_lincomb(bsc_context *ctx, size_t n, float a, const bsc_tensor *x, float b,
                       const bsc_tensor *y, float c, const bsc_tensor *z, bsc_tensor *out);

/* BSC_ERR_INTERRUPTED once the study was asked to stop (Ctrl-C; polled
 * between evaluations, so that a long analysis stops with its partial
 * results on disk), else BSC_OK. */
bsc_status ana_interrupted(const bsc_study *st);

/* The run a selector picks (a batch size B: the run bs<B>, else the first
 * run of that size; otherwise a run's name -- see runs.h), or an error at
 * the selector's file:line:col naming what was asked for. */
bsc_status ana_pick_run(const bsc_study *st, const bsc_node *sel, const bsc_run_result **out);

/* The failure policy (plugin.h, study.h) for analyses that go run by run.
 *
 * ana_for_each_run calls each(user, r) for every run the analysis covers --
 * those its selectors name (sel[0..n_sel)), else every finished run of the
 * study -- and leaves out, through skip(user, name, batch_size, why), a run
 * that diverged ("skipped: diverged") or that a selector names but that did
 * not finish ("skipped: run did not finish"). A run whose computation
 * fails is recorded the same way ("failed: <message>") and the others still
 * run; the result is then that failure (the first message, and how many
 * runs failed). An interruption stops at once. skip may be NULL (nothing
 * to record: the analysis writes a file per run). `what` names the
 * analysis in messages ("hessian"). */
typedef bsc_status (*ana_run_fn)(void *user, const bsc_run_result *r);
typedef bsc_status (*ana_skip_fn)(void *user, const char *run, size_t batch_size,
                                  const char *why);
bsc_status ana_for_each_run(const bsc_study *st, const bsc_node *const *sel, size_t n_sel,
                            const char *what, ana_run_fn each, ana_skip_fn skip, void *user);

/* The run a selector picks among the finished runs (ana_pick_run), or why
 * it cannot be used: *why "skipped: diverged" for a run that diverged,
 * "skipped: run <sel> did not finish" (in buf) for one that is not among
 * them; NULL when *out is usable. */
bsc_status ana_pick_usable(const bsc_study *st, const bsc_node *sel, const bsc_run_result **out,
                           const char **why, char *buf, size_t len);

/* For an analysis' check op: a file an option names, opened and read as
 * a checkpoint of the model (bsc_checkpoint_load: every tensor present,
 * shapes the model's) -- or, with params_only, as saved directions (no
 * state tensors). A file that does not exist yet under the study's out_dir
 * will be written by the study: BSC_OK. `what` names the option in errors
 * ("interpolate.from_path"). */
bsc_status ana_check_file(const bsc_study *st, const char *path, int params_only,
                          const char *what);

/* Reads a params-shaped vector (directions saved by ana_save_params, or any
 * checkpoint of the model: state tensors are not read) from path into d
 * (n_params floats). */
bsc_status ana_read_params(const bsc_model *m, const char *path, float *d);

/* OUT/analyses/<name> (the directory is created); malloc'ed. */
bsc_status ana_out_path(const bsc_study *st, const char *name, char **path);


/* Saves a params-shaped host vector with the weights' tensor names. */
bsc_status ana_save_params(const bsc_model *m, const char *path, const float *v,
                           const char *const *meta_keys, const char *const *meta_values,
                           size_t n_meta);

/* An analysis' run() through its own unit ops (plugin.h), in this process:
 * plan, every unit in order, merged as it comes, then finish -- the same
 * files the host writes when it runs the units itself. */
bsc_status ana_run_units(const bsc_analysis_ops *ops, void *self, const bsc_study *st);

/* An owning F32 device vector of n elements. */
bsc_status ana_vec_alloc(bsc_context *ctx, size_t n, bsc_tensor *out);

/* `key` as a list of runs, batch sizes or names (one scalar is a list of
 * one), each checked for its form; absent: *n = 0. *out (malloc'ed) points
 * into the options tree, which outlives the analysis. */
bsc_status ana_opt_runs(const bsc_component_config *cfg, const bsc_node *map, const char *key,
                        const bsc_node ***out, size_t *n);

/* The interpretation of a `subset:` option: 0 = the whole split. */
bsc_status ana_opt_subset(const bsc_node *map, const char *key, size_t *out);

#endif
