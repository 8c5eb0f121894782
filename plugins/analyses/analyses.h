/* batchscope analyses plugin: what its files share.
 *
 * The plugin is split in two layers so that the mathematics can be tested on
 * cases known on paper without a device:
 *
 *  - math cores that see only host vectors and a callback (the L-BFGS-B
 *    driver, Lanczos, Hutchinson's trace and stochastic Lanczos quadrature,
 *    grid coordinates, filter normalization of one tensor);
 *  - the four analyses (interpolate, sharpness, surface, hessian), which wire
 *    those callbacks to the evaluator and the model's flat buffers.
 *
 * Random numbers: every draw is bsc_rng (Philox) keyed by the study seed and
 * a purpose; the streams used here are fixed so that files can be
 * regenerated elsewhere:
 *   BSC_RNG_DIRECTIONS stream 0 / 1      surface directions x / y
 *   BSC_RNG_DIRECTIONS stream 100        Lanczos start vector (whole model)
 *   BSC_RNG_DIRECTIONS stream 2^20 + b   Lanczos start vector of tensor block b
 *   BSC_RNG_DIRECTIONS stream 200 + s    Hutchinson / quadrature probe s (Rademacher)
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
#include "batchscope/table.h"

/* The types (one file each; the hessian's helpers are in hvp.c, eigen.c
 * and slq.c); plugin.c lists them. */
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
    /* Optional: called after each iteration with the count so far (progress). */
    void (*on_iteration)(void *user, int iterations);
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

/* The eigenvalues theta (ascending) of the symmetric tridiagonal matrix
 * with diagonal alpha[0..m) and off-diagonal beta[0..m-1), and (s, m x m
 * row-major, optional) its unit eigenvectors as columns: s[i*m + j] is
 * component i of the vector of theta[j]. Implicit QL (EISPACK tql2). */
bsc_status ana_tridiag_eig(int m, const double *alpha, const double *beta, double *theta,
                           double *s);

/* The Lanczos recurrence with full reorthogonalization (eigen.c): q_1 =
 * v0 / |v0|, then each step one product w = H q_j, alpha_j = q_j.w, w
 * orthogonalized against every earlier q (twice), beta_j = |w|, q_{j+1} =
 * w / beta_j. T_m = tridiag(beta, alpha, beta) is H's projection on the
 * Krylov space; its eigenvalues are the Ritz values. The basis takes
 * 8 n max_steps bytes up to ANA_LANCZOS_DOUBLE_BYTES, 4 n max_steps (float32)
 * beyond. done: max_steps reached, or an invariant
 * subspace (beta ~ 0), whose Ritz values are eigenvalues of H. */
typedef struct ana_lanczos {
    size_t n;
    int max_steps, m, done;
    double *Qd;          /* q_1 .. q_{m+1}, n each: in double while the basis */
    float *Qf;           /* fits ANA_LANCZOS_DOUBLE_BYTES, else in float32 */
    double *q, *w;       /* the current q_{m+1}, scratch */
    double *alpha, *beta;
} ana_lanczos;

#define ANA_LANCZOS_DOUBLE_BYTES (256.0 * 1024 * 1024)
/* Overrides that limit (bytes; < 0 restores it): lets the tests run the
 * float32 basis on small operators. */
void ana_lanczos_set_double_limit(double bytes);

bsc_status ana_lanczos_open(ana_lanczos *L, size_t n, int max_steps);
void ana_lanczos_close(ana_lanczos *L);
/* Starts over from v0 (any nonzero vector). */
bsc_status ana_lanczos_start(ana_lanczos *L, const double *v0);
/* One step: one product. After it L->q (before the next step: q_{m+1})
 * holds the next vector unless done. */
bsc_status ana_lanczos_step(ana_lanczos *L, ana_hv_fn hv, void *user);

#define ANA_MAX_EIGS 64

typedef struct ana_lanczos_opts {
    int top_k;           /* largest eigenvalues wanted */
    int bottom_k;        /* smallest eigenvalues wanted (0: none) */
    int max_iter;        /* products at most (the basis size) */
    double tol;          /* converged when every wanted Ritz residual is at most
                            tol * max(|theta|, 1e-3 * |T|) */
    uint64_t seed;       /* start vector: Gaussian, BSC_RNG_DIRECTIONS `stream` */
    uint32_t stream;
} ana_lanczos_opts;

typedef struct ana_lanczos_result {
    double top[ANA_MAX_EIGS];        /* descending: top[0] the largest */
    double top_res[ANA_MAX_EIGS];    /* Ritz residuals: |theta - lambda| <= res */
    double bottom[ANA_MAX_EIGS];     /* ascending: bottom[0] the smallest */
    double bottom_res[ANA_MAX_EIGS];
    int found;           /* wanted values the Krylov space holds (NaN past it) */
    int products;        /* Hessian-vector products used */
    int converged;       /* every wanted residual within tol */
} ana_lanczos_result;

/* The extreme eigenvalues of H by Lanczos: the Ritz values are checked
 * after every step once there are enough, and it stops when all wanted
 * residuals are within tol, at max_iter products, or when the Krylov space
 * is invariant (then they are exact). Not converging within max_iter is no
 * error: r->converged says it and the residuals say how far. */
bsc_status ana_lanczos_extremes(size_t n, const ana_lanczos_opts *o, ana_hv_fn hv, void *user,
                                ana_lanczos_result *r);

/* Stochastic trace and spectral density (slq.c). Probe s is the
 * Rademacher vector z_s (entries +-1, BSC_RNG_DIRECTIONS stream 200 + s);
 * z.Hz is an unbiased sample of tr(H) (Hutchinson), and for a block b of
 * coordinates z_b.(Hz)_b is one of tr(H_bb). The first `slq_probes`
 * probes also run `slq_steps` Lanczos steps from z (whose first product is
 * Hz, so their trace samples cost nothing extra): T's eigenvalues are the
 * nodes and the squared first components of its eigenvectors the weights
 * of a Gauss quadrature of the spectral measure seen from z, which
 * averages to H's eigenvalue density (Ghorbani et al. 2019; PyHessian). */
typedef struct ana_probe_opts {
    int samples;         /* Hutchinson probes (>= 1) */
    int slq_probes;      /* of those, how many run Lanczos quadrature */
    int slq_steps;       /* Lanczos steps (nodes) per quadrature */
    uint64_t seed;
} ana_probe_opts;

/* Called for every probe with z and Hz (n doubles). */
typedef void (*ana_probe_fn)(void *user, int s, const double *z, const double *hz);

typedef struct ana_probe_result {
    double *samples;     /* [samples] z.Hz */
    double *nodes;       /* [slq_probes * slq_steps], probe-major */
    double *weights;     /* the same layout; each probe's sum to 1 */
    int *n_nodes;        /* [slq_probes] nodes of each (fewer on an invariant space) */
    int products;
} ana_probe_result;

/* Rademacher probe s over n coordinates. */
void ana_rademacher(uint64_t seed, int s, size_t n, double *z);

/* Runs the probes; r's arrays are malloc'ed (ana_probe_free). */
bsc_status ana_probes(size_t n, const ana_probe_opts *o, ana_hv_fn hv, void *user,
                      ana_probe_fn each, void *each_user, ana_probe_result *r);
void ana_probe_free(ana_probe_result *r);

/* Mean and standard error of the mean (two passes; 0 for one value). */
void ana_mean_se(const double *x, int n, double *mean, double *se);

/* The spectral density from quadratures as PyHessian draws it: each
 * probe's nodes smoothed by Gaussians of variance sigma2 * max(1, width),
 * on `bins` points from the mean of the probes' smallest node minus
 * `overhead` to the mean of their largest plus it; the probes' densities
 * averaged and normalized to integrate to one over the grid. se[i]: the
 * standard error over probes at grid point i (same normalization; 0 for
 * one probe). grid, density, se: `bins` doubles each. */
bsc_status ana_slq_density(const ana_probe_result *r, int probes, int steps, int bins,
                           double sigma2, double overhead, double *grid, double *density,
                           double *se);

/* Hessian-vector products of the training loss on the device (hvp.c):
 * an ana_hv_fn (ana_hvp_apply) over the whole flat parameter vector, or
 * over one block of it (ana_hvp_block: the diagonal block of coordinates
 * [off, off + len)). exact: the R-operator (bsc_eval_hvp); else central
 * differences of gradients with a perturbation of norm fd_step. */
typedef struct ana_hvp {
    const bsc_study *st;
    int exact;
    double fd_step;
    size_t subset;
    const bsc_tensor *x;     /* the weights H is taken at (device) */
    size_t np, off, len;
    bsc_tensor v, a, b;      /* device: direction, product or gradients */
    float *host;             /* np floats */
    double *full, *out;      /* np doubles: a block's vector in the full space */
    long products;
    /* progress (bsc_study_progress) of the products, under `label`, of at
     * most `total`; the analysis sets both after ana_hvp_open */
    char label[96];
    long total;
} ana_hvp;

/* Copies x into the model's parameters (the model's state must already
 * hold the run's); the analysis keeps x alive while the operator is used. */
bsc_status ana_hvp_open(ana_hvp *c, const bsc_study *st, const bsc_tensor *x, int exact,
                        double fd_step, size_t subset);
void ana_hvp_close(ana_hvp *c);
/* Restricts the operator to [off, off + len) (0, np: the whole). */
void ana_hvp_block(ana_hvp *c, size_t off, size_t len);
bsc_status ana_hvp_apply(void *user, const double *v, double *hv);

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

/* ------------------------------------------- units of table rows (rows.c)
 *
 * For an analysis whose results are rows per item (sharpness: a run, an
 * eps and a variant; hessian: a run or a checkpoint): plan() lists the
 * items in table order -- ana_rows_add for one that is computed (a unit),
 * ana_rows_skip for one left out, whose row says why -- run_unit() computes
 * an item's rows into fresh tables through ana_rows_run, merge() keeps
 * its bytes (ana_rows_merge) and finish() rebuilds the tables in the plan's
 * order (ana_rows_finish). An item whose computation fails is recorded in
 * its bytes as a "failed: <message>" row; the others are still computed,
 * and the analysis' result is the first failure (ana_for_each_run's
 * policy). */

#define ANA_ROWS_MAX_TABLES 4

typedef struct ana_slot {
    char *name;                /* the run's (or checkpoint's) name */
    double batch_size;         /* NaN: not known */
    char *why;                 /* left out: its row's status; no unit */
    bsc_status failed;         /* why is a failure (BSC_OK: a skip) */
    char *context;             /* a unit's messages: "sharpness of run bs32" */
    long unit;                 /* -1: none */
    const bsc_run_result *r;   /* what the unit computes, the analysis' own */
    size_t a, b;
    void *data;                /* its merged bytes (rank 0) */
    size_t len;
} ana_slot;

typedef struct ana_rows {
    ana_slot *slot;
    size_t n, n_units;
    size_t n_tables;           /* tables each unit fills (<= ANA_ROWS_MAX_TABLES) */
} ana_rows;

/* Forgets every item (n_tables stays). */
void ana_rows_clear(ana_rows *p);
/* An item left out, its row in table 0: run, batch_size, status = why.
 * failed != BSC_OK: a failure finish reports. */
bsc_status ana_rows_skip(ana_rows *p, const char *name, double batch_size, const char *why,
                         bsc_status failed);
/* An item computed by a unit (the next unit number). */
bsc_status ana_rows_add(ana_rows *p, const char *name, double batch_size, const char *context,
                        const bsc_run_result *r, size_t a, size_t b);
/* The item of a unit, or NULL. */
ana_slot *ana_rows_unit(const ana_rows *p, size_t unit);
/* fills tables[0..n_tables) with the item's rows. */
typedef bsc_status (*ana_rows_fn)(void *user, const ana_slot *item, bsc_table *const *tables);
/* A unit's result: fn's rows packed, or its failure (not an interruption,
 * which is returned). */
bsc_status ana_rows_run(const ana_rows *p, size_t unit, ana_rows_fn fn, void *user,
                        void **result, size_t *len);
bsc_status ana_rows_merge(ana_rows *p, size_t unit, const void *data, size_t len);
/* Appends every item's rows to tables[0..n_tables) in plan order. *failure
 * and *failure_msg (malloc'ed): the first item that failed, if any; the
 * result is an error only when the bytes are not a unit's. */
bsc_status ana_rows_finish(const ana_rows *p, bsc_table *const *tables, bsc_status *failure,
                           char **failure_msg);

/* An owning F32 device vector of n elements. */
bsc_status ana_vec_alloc(bsc_context *ctx, size_t n, bsc_tensor *out);

/* `key` as a list of runs, batch sizes or names (one scalar is a list of
 * one), each checked for its form; absent: *n = 0. *out (malloc'ed) points
 * into the options tree, which outlives the analysis. */
bsc_status ana_opt_runs(const bsc_component_config *cfg, const bsc_node *map, const char *key,
                        const bsc_node ***out, size_t *n);

/* A path option (a scalar node) resolved against the directory of the
 * file it was written in; n NULL: *out = NULL. */
bsc_status ana_node_path(const bsc_node *n, char **out);

/* Device copies (owning, F32) of a checkpoint's params and state. */
bsc_status ana_upload_checkpoint(const bsc_study *st, const char *path, bsc_tensor *p,
                                 bsc_tensor *q);

/* The interpretation of a `subset:` option: 0 = the whole split. */
bsc_status ana_opt_subset(const bsc_node *map, const char *key, size_t *out);

#endif
