/* surface: the training loss around a minimizer along filter-normalized
 * random directions (Li et al. 2018), on a line or a plane, or on the plane
 * through three points (two minimizers and a third).
 *
 *   - type: surface
 *     runs: [32, bs256-sqrt]  # batch sizes or run names (default: every run)
 *     dims: 2               # 1: theta* + x d1; 2: theta* + x d1 + y d2
 *     x: [-1, 1, 51]        # from, to, points
 *     y: [-1, 1, 51]
 *     ignore: biasbn        # zero direction on bias/norm tensors; none: keep them
 *     orthogonalize: false  # d2 -= (d2.d1 / d1.d1) d1 after normalization
 *     subset: 0             # training examples evaluated (0: all)
 *     directions: [dx.safetensors, dy.safetensors]  # reuse saved directions
 *     plane: [32, 256, init]  # instead: the plane through these three points
 *                             # (batch sizes, run names, or `init`, the
 *                             # initial weights)
 *
 * Outputs in OUT/analyses, by run name: surface_<run>.csv (x, y, loss,
 * accuracy; surface_bs256.csv for batch size 256) with its directions
 * surface_<run>_x.safetensors / _y.safetensors (the weights' tensor names,
 * so the surface can be recomputed elsewhere), or surface1d_<run>.csv (x,
 * loss, accuracy); for a plane surface_plane_<P1>_<P2>_<P3>.csv (each a
 * run name or init) and ..._points.csv (where the three
 * points lie: theta = P1 + x u + y v, u = P2 - P1, v the part of P3 - P1
 * orthogonal to u scaled to |u|, so P1 = (0,0), P2 = (1,0)).
 *
 * A run that diverged or did not finish gets no surface (and a plane
 * through one is not drawn); a run whose directions cannot be made does not
 * stop the others (the analysis then fails naming it).
 *
 * The grids are computed in units (plugin.h, the analysis unit ops): a
 * unit is a row of a 2-D grid, or an eighth of a line, of one run's surface
 * (or of the plane). The host runs them on any rank of `mpirun`, keeps each
 * for --resume, and merges them here; the directions are drawn from the
 * study's seed on every rank that plans, so every rank evaluates the same
 * points. run() is the units in order, in this process.
 */
#include "analyses.h"

#include "batchscope/fsutil.h"
#include "batchscope/rng.h"
#include "batchscope/safetensors.h"
#include "batchscope/table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One grid the analysis computes: a run's surface, or the plane. */
typedef struct target {
    const bsc_run_result *r;    /* NULL: the plane */
    char *stem;                 /* surface_<run>, surface1d_<run>, surface_plane_... */
    char run_name[72];
    ana_grid g;
    size_t first, n_units;      /* its units */
    size_t chunk;               /* grid points per unit (row-major order) */
    float *d[2];                /* a run's directions (host) */
    double *loss, *acc;         /* merged (rank 0) */
} target;

typedef struct surface {
    const bsc_node *node;
    const bsc_node **runs;      /* selectors; NULL: every run */
    size_t n_runs;
    int dims;
    double x[3], y[3];
    int x_given, y_given;
    ana_ignore ignore;
    int orthogonalize;
    size_t subset;
    char *dir_path[2];
    int plane;
    const bsc_node *plane_at[3];   /* run selectors; NULL: init */
    char plane_pt[3][72];       /* as written: "32", "bs256-sqrt" or "init" */
    /* What plan() prepared for the units. */
    target *tg;
    size_t n_tg, n_units;
    long loaded;                /* the run target whose directions are in dt, or -1 */
    bsc_tensor dt[2];           /* directions on the device */
    bsc_tensor pp[3], pq[3];    /* the plane's three points: params and states */
    double pc, ps, py;          /* plane geometry: P3 at (pc, py); a = x - y*ps*pc */
    bsc_status plan_status;     /* a run plan() left out because it failed */
    char *plan_error;
} surface;

static void free_plan(surface *sf)
{
    for (size_t i = 0; i < sf->n_tg; i++) {
        target *t = &sf->tg[i];
        free(t->stem);
        free(t->d[0]);
        free(t->d[1]);
        free(t->loss);
        free(t->acc);
    }
    free(sf->tg);
    sf->tg = NULL;
    sf->n_tg = sf->n_units = 0;
    free(sf->plan_error);
    sf->plan_error = NULL;
    sf->plan_status = BSC_OK;
    sf->loaded = -1;
    for (int k = 0; k < 3; k++) {
        if (k < 2)
            bsc_tensor_free(&sf->dt[k]);
        bsc_tensor_free(&sf->pp[k]);
        bsc_tensor_free(&sf->pq[k]);
    }
}

static void destroy(void *self)
{
    surface *sf = self;
    if (!sf)
        return;
    free_plan(sf);
    free(sf->runs);
    free(sf->dir_path[0]);
    free(sf->dir_path[1]);
    free(sf);
}

static bsc_status opt_axis(const bsc_node *o, const char *key, double *ax, int *given)
{
    const bsc_node *n = bsc_node_get(o, key);
    *given = n != NULL;
    if (!n)
        return BSC_OK;
    double *v = NULL;
    size_t k = 0;
    bsc_status s = bsc_opt_double_list(o, key, NULL, 0, -1e6, 1e6, &v, &k);
    if (s != BSC_OK)
        return s;
    if (k != 3 || !(v[0] <= v[1]) || v[2] < 1 || v[2] > 100000 || v[2] != floor(v[2]) ||
        (v[2] == 1) != (v[0] == v[1]))
        s = bsc_node_fail(n, BSC_ERR_INVALID,
                          "%s must be [from, to, points] with from < to and points >= 2 "
                          "(or from == to and 1 point)", key);
    else
        memcpy(ax, v, 3 * sizeof *v);
    free(v);
    return s;
}

static bsc_status create(const bsc_component_config *cfg, void **self)
{
    *self = NULL;
    const bsc_node *o = cfg->options;
    bsc_status s;
    surface *sf = calloc(1, sizeof *sf);
    if (!sf)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    sf->loaded = -1;
    sf->node = o;
    long dims;
    const char *ignore;
    static const char *const ignores[] = {"biasbn", "none", NULL};
    sf->x[0] = sf->y[0] = -1;
    sf->x[1] = sf->y[1] = 1;
    sf->x[2] = sf->y[2] = 51;
    if ((s = ana_opt_runs(cfg, o, "runs", &sf->runs, &sf->n_runs)) != BSC_OK ||
        (s = bsc_opt_long(o, "dims", 2, 1, 2, &dims)) != BSC_OK ||
        (s = opt_axis(o, "x", sf->x, &sf->x_given)) != BSC_OK ||
        (s = opt_axis(o, "y", sf->y, &sf->y_given)) != BSC_OK ||
        (s = bsc_opt_string(o, "ignore", "biasbn", ignores, &ignore)) != BSC_OK ||
        (s = bsc_opt_bool(o, "orthogonalize", 0, &sf->orthogonalize)) != BSC_OK ||
        (s = ana_opt_subset(o, "subset", &sf->subset)) != BSC_OK)
        goto fail;
    sf->dims = (int)dims;
    sf->ignore = strcmp(ignore, "none") == 0 ? ANA_IGNORE_NONE : ANA_IGNORE_BIASBN;
    if (sf->dims == 1 && sf->y_given) {
        s = bsc_node_fail(bsc_node_get(o, "y"), BSC_ERR_INVALID, "y is for dims: 2");
        goto fail;
    }
    const bsc_node *dn = bsc_node_get(o, "directions");
    if (dn) {
        if (dn->kind != BSC_NODE_SEQ || dn->n != (size_t)sf->dims) {
            s = bsc_node_fail(dn, BSC_ERR_INVALID, "directions: a list of %d safetensors "
                              "file(s), one per axis", sf->dims);
            goto fail;
        }
        for (size_t i = 0; i < dn->n; i++)
            if ((s = ana_node_path(dn->items[i], &sf->dir_path[i])) != BSC_OK)
                goto fail;
    }
    const bsc_node *pn = bsc_node_get(o, "plane");
    if (pn) {
        if (pn->kind != BSC_NODE_SEQ || pn->n != 3) {
            s = bsc_node_fail(pn, BSC_ERR_INVALID, "plane: three points, batch sizes, run "
                              "names or init (e.g. [32, 256, init])");
            goto fail;
        }
        for (size_t i = 0; i < 3; i++) {
            const char *v;
            if ((s = bsc_node_to_string(pn->items[i], &v)) != BSC_OK)
                goto fail;
            if (strcmp(v, "init") != 0) {
                if ((s = bsc_run_selector_check(cfg, pn->items[i], "plane")) != BSC_OK)
                    goto fail;
                sf->plane_at[i] = pn->items[i];
            }
            snprintf(sf->plane_pt[i], sizeof sf->plane_pt[i], "%s", v);
        }
        if (dn || sf->n_runs || bsc_node_get(o, "dims") || bsc_node_get(o, "ignore") ||
            bsc_node_get(o, "orthogonalize")) {
            s = bsc_node_fail(pn, BSC_ERR_INVALID, "plane takes x, y and subset only (not "
                              "runs, dims, directions, ignore or orthogonalize)");
            goto fail;
        }
        sf->plane = 1;
        sf->dims = 2;
    }
    *self = sf;
    return BSC_OK;
fail:
    destroy(sf);
    return s;
}

/* What a grid point evaluates: params = c[0] p[0] + c[1] p[1] + c[2] p[2]
 * with (c0, c1, c2) from (x, y) by the mode; state likewise for a plane.
 * The evaluator's family of these points shares the first layer's work
 * between them where the model allows (bsc_eval_family_create). */
typedef struct point_ctx {
    const bsc_study *st;
    size_t subset;
    int plane;
    const bsc_tensor *p[3], *q[3];   /* params (and states, plane) */
    double pc, ps;                   /* plane: a = x - y*ps*pc, b = y*ps */
    bsc_eval_family *fam;
} point_ctx;

static bsc_status eval_point(void *user, double x, double y, double *loss, double *acc)
{
    point_ctx *pc = user;
    bsc_status s = ana_interrupted(pc->st);
    if (s != BSC_OK)
        return s;
    float c[3] = {1.0f, (float)x, (float)y};
    if (pc->plane) {
        double a = x - y * pc->ps * pc->pc, b = y * pc->ps;
        c[0] = (float)(1.0 - a - b), c[1] = (float)a, c[2] = (float)b;
    }
    return bsc_eval_family_loss(pc->fam, c, loss, acc);
}

/* The family of the grid's points, its path said in the study's log when
 * `say`. */
static bsc_status open_family(const bsc_study *st, const char *stem, point_ctx *pc, int say)
{
    size_t nb = pc->p[2] ? 3 : 2;
    int states = pc->plane && bsc_model_n_state(st->model);
    bsc_status s = bsc_eval_family_create(st->eval, nb, pc->p, states ? pc->q : NULL,
                                          BSC_SPLIT_TRAIN, pc->subset, &pc->fam);
    if (s == BSC_OK && say) {
        char line[300];
        snprintf(line, sizeof line, "%s: %s", stem, bsc_eval_family_mode(pc->fam));
        bsc_study_log(st, line);
    }
    return s;
}

/* OUT/analyses/<stem>.csv from a finished grid. */
static bsc_status write_grid(const surface *sf, const bsc_study *st, const target *t)
{
    const ana_grid *g = &t->g;
    char *csv = NULL, *name = bsc_strdup_printf("%s.csv", t->stem);
    bsc_table *tb = NULL;
    bsc_status s = name ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        s = ana_out_path(st, name, &csv);
    if (s == BSC_OK)
        s = bsc_table_new(&tb);
    for (int j = 0; s == BSC_OK && j < g->ny; j++)
        for (int i = 0; s == BSC_OK && i < g->nx; i++) {
            size_t idx = (size_t)j * (size_t)g->nx + (size_t)i;
            bsc_metrics_row row;
            if ((s = bsc_table_add_row(tb, &row)) != BSC_OK ||
                (s = bsc_metrics_set(&row, BSC_COL_X, ana_linspace(g->x0, g->x1, g->nx, i))) !=
                    BSC_OK)
                break;
            if (sf->dims == 2 &&
                (s = bsc_metrics_set(&row, BSC_COL_Y, ana_linspace(g->y0, g->y1, g->ny, j))) !=
                    BSC_OK)
                break;
            if ((s = bsc_metrics_set(&row, BSC_COL_LOSS, t->loss[idx])) != BSC_OK ||
                (s = bsc_metrics_set(&row, "accuracy", t->acc[idx])) != BSC_OK)
                break;
        }
    if (s == BSC_OK)
        s = bsc_table_write_csv(tb, csv);
    bsc_table_free(tb);
    free(csv);
    free(name);
    return s;
}

static void make_grid(const surface *sf, ana_grid *g)
{
    g->x0 = sf->x[0], g->x1 = sf->x[1], g->nx = (int)sf->x[2];
    if (sf->dims == 2)
        g->y0 = sf->y[0], g->y1 = sf->y[1], g->ny = (int)sf->y[2];
    else
        g->y0 = g->y1 = 0, g->ny = 1;
}

/* Filter-normalized directions for the weights w (host), or the saved ones. */
static bsc_status make_directions(const surface *sf, const bsc_study *st, const float *w,
                                  float *d[2])
{
    bsc_model *m = st->model;
    size_t np = bsc_model_n_params(m);
    for (int k = 0; k < sf->dims; k++) {
        if (sf->dir_path[k]) {
            bsc_status s = ana_read_params(m, sf->dir_path[k], d[k]);
            if (s != BSC_OK)
                return s;
            continue;
        }
        bsc_rng_fill_normal(st->seed, BSC_RNG_DIRECTIONS, (uint32_t)k, d[k], np, 0.0f, 1.0f);
        for (size_t i = 0; i < bsc_model_n_tensors(m); i++)
            ana_filter_normalize(bsc_model_tensor_at(m, i), w, d[k], sf->ignore);
    }
    if (sf->dims == 2 && sf->orthogonalize && !sf->dir_path[0]) {
        double d01 = 0, d00 = 0;
        for (size_t i = 0; i < np; i++) {
            d01 += (double)d[0][i] * d[1][i];
            d00 += (double)d[0][i] * d[0][i];
        }
        double c = d00 > 0 ? d01 / d00 : 0;
        for (size_t i = 0; i < np; i++)
            d[1][i] = (float)(d[1][i] - c * d[0][i]);
    }
    return BSC_OK;
}

/* Adds target t with its grid split into units: a row of a 2-D grid, an
 * eighth of a line. */
static bsc_status add_target(surface *sf, const bsc_run_result *r, char *stem)
{
    target *tg = realloc(sf->tg, (sf->n_tg + 1) * sizeof *tg);
    if (!tg) {
        free(stem);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    sf->tg = tg;
    target *t = &tg[sf->n_tg++];
    memset(t, 0, sizeof *t);
    t->r = r;
    t->stem = stem;
    make_grid(sf, &t->g);
    size_t npts = (size_t)t->g.nx * (size_t)t->g.ny;
    t->chunk = t->g.ny > 1 ? (size_t)t->g.nx : ((size_t)t->g.nx + 7) / 8;
    t->first = sf->n_units;
    t->n_units = (npts + t->chunk - 1) / t->chunk;
    sf->n_units += t->n_units;
    t->loss = calloc(npts, sizeof *t->loss);
    t->acc = calloc(npts, sizeof *t->acc);
    return t->loss && t->acc ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
}

/* Takes back the last target (its run failed before any unit). */
static void drop_last_target(surface *sf)
{
    target *t = &sf->tg[--sf->n_tg];
    sf->n_units -= t->n_units;
    free(t->stem);
    free(t->d[0]);
    free(t->d[1]);
    free(t->loss);
    free(t->acc);
}

/* A run's surface: its directions, drawn (or read) from the run's final
 * weights. */
static bsc_status plan_run(surface *sf, const bsc_study *st, const bsc_run_result *r)
{
    size_t np = bsc_model_n_params(st->model);
    float *w = malloc(np * sizeof *w);
    char nb[32];
    const char *run_name = bsc_run_result_name(r, nb, sizeof nb);
    char *stem = bsc_strdup_printf(sf->dims == 2 ? BSC_PREFIX_SURFACE "%s"
                                                 : BSC_PREFIX_SURFACE_1D "%s", run_name);
    bsc_status s = w && stem ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        s = add_target(sf, r, stem);
    else
        free(stem);
    target *t = s == BSC_OK ? &sf->tg[sf->n_tg - 1] : NULL;
    if (t) {
        snprintf(t->run_name, sizeof t->run_name, "%s", run_name);
        t->d[0] = calloc(np, sizeof(float));
        t->d[1] = calloc(np, sizeof(float));
        if (!t->d[0] || !t->d[1])
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    if (s == BSC_OK)
        s = bsc_tensor_read(st->ctx, r->final_params, w);
    if (s == BSC_OK)
        s = make_directions(sf, st, w, t->d);
    free(w);
    if (s != BSC_OK && t)
        drop_last_target(sf);
    return s;
}

/* A run's direction files, surface_<run>_x/_y.safetensors. */
static bsc_status save_directions(const surface *sf, const bsc_study *st, const target *t)
{
    static const char *const axis[2] = {"x", "y"};
    bsc_status s = BSC_OK;
    for (int k = 0; s == BSC_OK && k < sf->dims; k++) {
        char bs[32], *path = NULL;
        snprintf(bs, sizeof bs, "%zu", t->r->batch_size);
        const char *mk[] = {"kind", "axis", "batch_size", "ignore", "normalization", "run"};
        const char *mv[] = {"direction", axis[k], bs,
                            sf->ignore == ANA_IGNORE_NONE ? "none" : "biasbn",
                            sf->dir_path[k] ? "given" : "filter", t->run_name};
        char *name = bsc_strdup_printf("%s_%s.safetensors", t->stem, axis[k]);
        s = name ? ana_out_path(st, name, &path) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
        free(name);
        if (s == BSC_OK)
            s = ana_save_params(st->model, path, t->d[k], mk, mv, 6);
        free(path);
    }
    return s;
}

/* ------------------------------------------------------------------ plane */

/* Params and state of plane point k: a run's final weights, or the initial
 * weights (init.safetensors of the first run: the runs share them when
 * training.same_init holds, and the first run's otherwise). name (>= 72
 * bytes) gets what the point is called in file names: the run's name or
 * "init". */
static bsc_status plane_point(const surface *sf, const bsc_study *st, int k, bsc_tensor *p,
                              bsc_tensor *q, char *name)
{
    size_t np = bsc_model_n_params(st->model), ns = bsc_model_n_state(st->model);
    const bsc_run_result *r = NULL;
    char *path = NULL;
    if (!sf->plane_at[k]) {
        if (st->n_runs == 0)
            return bsc_node_fail(bsc_node_get(sf->node, "plane"), BSC_ERR_INVALID,
                                 "plane: no run to take the initial weights from");
        path = bsc_strdup_printf("%s/" BSC_FILE_INIT_CHECKPOINT, st->runs[0]->dir);
        snprintf(name, 72, "init");
    } else {
        char nb[32];
        bsc_status s = ana_pick_run(st, sf->plane_at[k], &r);
        if (s != BSC_OK)
            return bsc_fail_context(s, "plane");
        snprintf(name, 72, "%s", bsc_run_result_name(r, nb, sizeof nb));
    }
    bsc_status s = ana_vec_alloc(st->ctx, np, p);
    if (s == BSC_OK)
        s = ana_vec_alloc(st->ctx, ns, q);
    if (s == BSC_OK && r) {
        s = bsc_tensor_copy(st->ctx, r->final_params, p);
        if (s == BSC_OK && ns)
            s = bsc_tensor_copy(st->ctx, r->final_state, q);
    } else if (s == BSC_OK) {
        float *hp = malloc(np * sizeof *hp), *hs = calloc(ns ? ns : 1, sizeof *hs);
        s = hp && hs && path ? bsc_checkpoint_load(st->model, path, hp, hs)
                             : bsc_fail(BSC_ERR_NOMEM, "out of memory");
        if (s == BSC_OK)
            s = bsc_tensor_write(st->ctx, p, hp);
        if (s == BSC_OK && ns)
            s = bsc_tensor_write(st->ctx, q, hs);
        free(hp);
        free(hs);
    }
    free(path);
    return s;
}

/* A plane through a run that diverged or did not finish has no point to
 * stand on: why (in buf), or NULL when every point is usable (init, the
 * first run's initial weights, is usable whatever became of that run). */
static const char *plane_unusable(const surface *sf, const bsc_study *st, char *buf, size_t len)
{
    for (int k = 0; k < 3; k++) {
        const bsc_run_result *r;
        const char *why = NULL;
        if (sf->plane_at[k])
            ana_pick_usable(st, sf->plane_at[k], &r, &why, buf, len);
        if (why)
            return why;
    }
    return NULL;
}

/* The plane through the three points: u = P2 - P1, w = P3 - P1,
 * c = w.u / u.u, v = (w - c u) * |u| / |w - c u|; its default ranges take
 * in every point with half a unit of margin. */
static bsc_status plan_plane(surface *sf, const bsc_study *st)
{
    bsc_context *ctx = st->ctx;
    size_t np = bsc_model_n_params(st->model);
    float *h[3] = {malloc(np * sizeof(float)), malloc(np * sizeof(float)),
                   malloc(np * sizeof(float))};
    char pt_name[3][72];
    char why[160];
    bsc_status s = h[0] && h[1] && h[2] ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && plane_unusable(sf, st, why, sizeof why)) {
        for (int k = 0; k < 3; k++)
            free(h[k]);
        return BSC_OK;   /* no plane, no units */
    }
    for (int k = 0; s == BSC_OK && k < 3; k++)
        if ((s = plane_point(sf, st, k, &sf->pp[k], &sf->pq[k], pt_name[k])) == BSC_OK)
            s = bsc_tensor_read(ctx, &sf->pp[k], h[k]);
    double uu = 0, wu = 0, ww = 0;
    for (size_t i = 0; s == BSC_OK && i < np; i++) {
        double u = (double)h[1][i] - h[0][i], w = (double)h[2][i] - h[0][i];
        uu += u * u;
        wu += w * u;
        ww += w * w;
    }
    double c = uu > 0 ? wu / uu : 0, perp2 = ww - c * wu;
    if (s == BSC_OK && (!(uu > 0) || !(perp2 > 1e-12 * ww)))
        s = bsc_node_fail(bsc_node_get(sf->node, "plane"), BSC_ERR_INVALID,
                          "plane: the three points are (nearly) on one line");
    if (s == BSC_OK) {
        double scale = sqrt(uu) / sqrt(perp2);
        sf->pc = c;
        sf->ps = scale;
        sf->py = 1.0 / scale;
        if (!sf->x_given) {
            sf->x[0] = (c < 0 ? c : 0) - 0.5;
            sf->x[1] = (c > 1 ? c : 1) + 0.5;
        }
        if (!sf->y_given) {
            sf->y[0] = -0.5 * sf->py;
            sf->y[1] = 1.5 * sf->py;
        }
        char *stem = bsc_strdup_printf(BSC_PREFIX_SURFACE_PLANE "%s_%s_%s", pt_name[0],
                                       pt_name[1], pt_name[2]);
        s = stem ? add_target(sf, NULL, stem) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < 3; k++)
        free(h[k]);
    return s;
}

/* surface_plane_..._points.csv: where the three points lie. */
static bsc_status save_plane_points(const surface *sf, const bsc_study *st, const target *t)
{
    char *pname = bsc_strdup_printf("%s" BSC_SUFFIX_PLANE_POINTS, t->stem), *ppath = NULL;
    bsc_table *tb = NULL;
    bsc_status s = pname ? ana_out_path(st, pname, &ppath)
                         : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    const double px[3] = {0, 1, sf->pc}, pyv[3] = {0, 0, sf->py};
    if (s == BSC_OK)
        s = bsc_table_new(&tb);
    for (int k = 0; s == BSC_OK && k < 3; k++) {
        bsc_metrics_row row;
        if ((s = bsc_table_add_row(tb, &row)) == BSC_OK &&
            (s = bsc_metrics_set_str(&row, "point", sf->plane_pt[k])) == BSC_OK &&
            (s = bsc_metrics_set(&row, BSC_COL_X, px[k])) == BSC_OK)
            s = bsc_metrics_set(&row, BSC_COL_Y, pyv[k]);
    }
    if (s == BSC_OK)
        s = bsc_table_write_csv(tb, ppath);
    bsc_table_free(tb);
    free(pname);
    free(ppath);
    return s;
}

/* ------------------------------------------------------------------ units */

typedef struct plan_job {
    surface *sf;
    const bsc_study *st;
} plan_job;

static bsc_status plan_one(void *user, const bsc_run_result *r)
{
    plan_job *j = user;
    return plan_run(j->sf, j->st, r);
}

static bsc_status plan(void *self, const bsc_study *st, size_t *n_units)
{
    surface *sf = self;
    bsc_status s = BSC_OK;
    size_t np = bsc_model_n_params(st->model);
    free_plan(sf);
    *n_units = 0;
    if (sf->plane) {
        s = plan_plane(sf, st);
    } else {
        /* One grid per usable run; a run whose directions fail does not
         * stop the others, and finish() then says so. */
        plan_job job = {sf, st};
        bsc_status ps = ana_for_each_run(st, sf->runs, sf->n_runs, "surface", plan_one, NULL,
                                         &job);
        if (ps == BSC_ERR_INTERRUPTED)
            return ps;
        if (ps != BSC_OK && !(sf->plan_error = strdup(bsc_last_error())))
            s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        sf->plan_status = ps;
        for (int k = 0; s == BSC_OK && k < sf->dims && sf->n_tg; k++)
            if ((s = ana_vec_alloc(st->ctx, np, &sf->dt[k])) != BSC_OK)
                break;
    }
    if (s == BSC_OK)
        *n_units = sf->n_units;
    return s;
}

static target *unit_target(const surface *sf, size_t unit)
{
    for (size_t i = 0; i < sf->n_tg; i++)
        if (unit >= sf->tg[i].first && unit < sf->tg[i].first + sf->tg[i].n_units)
            return &sf->tg[i];
    return NULL;
}

/* The grid points of a unit: [*from, *from + *count) in row-major order. */
static void unit_points(const target *t, size_t unit, size_t *from, size_t *count)
{
    size_t npts = (size_t)t->g.nx * (size_t)t->g.ny;
    *from = (unit - t->first) * t->chunk;
    *count = npts - *from < t->chunk ? npts - *from : t->chunk;
}

/* The result of a unit: loss and accuracy of each of its points, as
 * doubles (bit for bit), in point order. */
static bsc_status run_unit(void *self, const bsc_study *st, size_t unit, void **result,
                           size_t *len)
{
    surface *sf = self;
    target *t = unit_target(sf, unit);
    size_t ns = bsc_model_n_state(st->model);
    size_t from, count;
    *result = NULL;
    *len = 0;
    if (!t)
        return bsc_fail(BSC_ERR_INVALID, "surface: unit %zu of %zu", unit, sf->n_units);
    unit_points(t, unit, &from, &count);
    double *out = malloc(2 * count * sizeof *out);
    bsc_status s = out ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    /* A plane point mixes three points' params and states; a run's point is
     * its minimizer moved along the directions. */
    point_ctx pc = {st, sf->subset, 1, {&sf->pp[0], &sf->pp[1], &sf->pp[2]},
                    {&sf->pq[0], &sf->pq[1], &sf->pq[2]}, sf->pc, sf->ps, NULL};
    if (t->r) {
        long ti = (long)(t - sf->tg);
        for (int k = 0; s == BSC_OK && sf->loaded != ti && k < sf->dims; k++)
            s = bsc_tensor_write(st->ctx, &sf->dt[k], t->d[k]);
        if (s == BSC_OK)
            sf->loaded = ti;
        /* The state (running statistics) stays the minimizer's along the grid. */
        if (s == BSC_OK && ns)
            s = bsc_tensor_copy(st->ctx, t->r->final_state, bsc_model_state(st->model));
        pc.plane = 0;
        pc.p[0] = t->r->final_params;
        pc.p[1] = &sf->dt[0];
        pc.p[2] = sf->dims == 2 ? &sf->dt[1] : NULL;
    }
    /* The unit's points share the first layer's work (one family per unit:
     * a point's value does not depend on the others in it). */
    if (s == BSC_OK)
        s = open_family(st, t->stem, &pc, unit == t->first);
    for (size_t k = 0; s == BSC_OK && k < count; k++) {
        size_t idx = from + k;
        int i = (int)(idx % (size_t)t->g.nx), j = (int)(idx / (size_t)t->g.nx);
        s = eval_point(&pc, ana_linspace(t->g.x0, t->g.x1, t->g.nx, i),
                       ana_linspace(t->g.y0, t->g.y1, t->g.ny, j), &out[2 * k],
                       &out[2 * k + 1]);
    }
    bsc_eval_family_free(pc.fam);
    if (s == BSC_OK)
        bsc_study_progress(st, t->stem, "points", from + count,
                           (size_t)t->g.nx * (size_t)t->g.ny);
    if (s != BSC_OK) {
        free(out);
        return s;
    }
    *result = out;
    *len = 2 * count * sizeof *out;
    return BSC_OK;
}

static bsc_status merge(void *self, const bsc_study *st, size_t unit, const void *result,
                        size_t len)
{
    (void)st;
    surface *sf = self;
    target *t = unit_target(sf, unit);
    size_t from, count;
    if (!t)
        return bsc_fail(BSC_ERR_INVALID, "surface: unit %zu of %zu", unit, sf->n_units);
    unit_points(t, unit, &from, &count);
    if (len != 2 * count * sizeof(double))
        return bsc_fail(BSC_ERR_DATA, "surface %s: unit %zu has %zu bytes, not the %zu of "
                        "%zu points", t->stem, unit, len, 2 * count * sizeof(double), count);
    const double *v = result;
    for (size_t k = 0; k < count; k++) {
        t->loss[from + k] = v[2 * k];
        t->acc[from + k] = v[2 * k + 1];
    }
    return BSC_OK;
}

static bsc_status finish(void *self, const bsc_study *st)
{
    surface *sf = self;
    bsc_status s = BSC_OK;
    for (size_t i = 0; s == BSC_OK && i < sf->n_tg; i++) {
        const target *t = &sf->tg[i];
        if (t->r)
            s = save_directions(sf, st, t);
        else
            s = save_plane_points(sf, st, t);
        if (s == BSC_OK)
            s = write_grid(sf, st, t);
    }
    if (s == BSC_OK && sf->plan_status != BSC_OK)
        s = bsc_fail(sf->plan_status, "%s", sf->plan_error ? sf->plan_error : "surface failed");
    return s;
}

/* The saved directions, before training. */
static bsc_status check(void *self, const bsc_study *st)
{
    const surface *sf = self;
    bsc_status s = BSC_OK;
    for (int k = 0; s == BSC_OK && k < 2; k++)
        if (sf->dir_path[k])
            s = ana_check_file(st, sf->dir_path[k], 1, "surface.directions");
    return s;
}

static bsc_status post(void *self, const bsc_study *st)
{
    static const bsc_analysis_ops ops = {.plan = plan, .run_unit = run_unit, .merge = merge,
                                         .finish = finish};
    return ana_run_units(&ops, self, st);
}

BSC_ANALYSIS_TYPE(ana_surface, "surface",
               "Li et al. filter-normalized loss surface, 1-D or 2-D, or the plane through three points",
               BSC_OPTIONS(BSC_OPT("runs", BSC_OPT_LIST, "", "batch sizes or run names (default: every run)"),
                           BSC_OPT("dims", BSC_OPT_INT, "2", "1: theta + x d1; 2: theta + x d1 + y d2"),
                           BSC_OPT("x", BSC_OPT_LIST, "[-1, 1, 51]", "from, to, points"),
                           BSC_OPT("y", BSC_OPT_LIST, "[-1, 1, 51]", "from, to, points"),
                           BSC_OPT("ignore", BSC_OPT_STRING, "biasbn", "biasbn: zero direction on bias/norm tensors; none: keep"),
                           BSC_OPT("orthogonalize", BSC_OPT_BOOL, "false", "d2 -= (d2.d1 / d1.d1) d1"),
                           BSC_OPT("subset", BSC_OPT_INT, "0", "training examples evaluated (0: all)"),
                           BSC_OPT("directions", BSC_OPT_LIST, "", "saved directions to reuse: [dx.safetensors, dy.safetensors]"),
                           BSC_OPT("plane", BSC_OPT_LIST, "", "instead: the plane through three points (runs or init)")),
               .create = create,
               .run = post,
               .destroy = destroy,
               .check = check,
               .plan = plan,
               .run_unit = run_unit,
               .merge = merge,
               .finish = finish);
