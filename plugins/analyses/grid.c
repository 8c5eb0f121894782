/* A grid of loss evaluations that survives interruption: every finished
 * point goes to a partial file at once, and a restart reads them back. */
#include "analyses.h"

#include "batchscope/fsutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double ana_linspace(double a, double b, int n, int i)
{
    if (n <= 1)
        return a;
    /* Endpoints exact; interior points a + i*step in one rounding. */
    if (i == n - 1)
        return b;
    return a + (b - a) * (double)i / (double)(n - 1);
}

/* Reads the points of a partial file with this signature into loss/acc and
 * marks them in done[]. A different signature or a missing file yields no
 * points; a torn last line (a crash mid-write) is ignored. */
static bsc_status read_partial(const char *path, const char *signature, size_t npts,
                               double *loss, double *acc, unsigned char *done, int *keep)
{
    *keep = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? BSC_OK : bsc_fail(BSC_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = strlen(signature) + 512;
    char *line = malloc(cap);
    if (!line) {
        fclose(f);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    }
    if (fgets(line, (int)cap, f) && strcspn(line, "\n") == strlen(signature) &&
        strncmp(line, signature, strlen(signature)) == 0) {
        *keep = 1;
        while (fgets(line, (int)cap, f)) {
            if (!strchr(line, '\n'))
                break;   /* torn: written up to a crash */
            unsigned long idx;
            double l, a;
            char tail;
            if (sscanf(line, "%lu %lf %lf%c", &idx, &l, &a, &tail) != 4 || tail != '\n' ||
                idx >= npts)
                break;
            loss[idx] = l;
            acc[idx] = a;
            done[idx] = 1;
        }
    }
    free(line);
    fclose(f);
    return BSC_OK;
}

bsc_status ana_grid_run(const ana_grid *g, const char *partial_path, const char *signature,
                        ana_point_fn point, void *user, double *loss, double *acc,
                        size_t *computed)
{
    if (computed)
        *computed = 0;
    if (g->nx < 1 || g->ny < 1)
        return bsc_fail(BSC_ERR_INVALID, "grid of %d x %d points", g->nx, g->ny);
    size_t npts = (size_t)g->nx * (size_t)g->ny;
    unsigned char *done = calloc(npts, 1);
    if (!done)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    int keep = 0;
    FILE *f = NULL;
    bsc_status s = read_partial(partial_path, signature, npts, loss, acc, done, &keep);
    if (s != BSC_OK)
        goto cleanup;
    /* Rewrite what we kept clean (dropping a torn tail line or a stale
     * file) through a temporary and rename, so a crash now cannot lose the
     * points already there; then append. */
    bsc_afile af;
    if ((s = bsc_afile_open(&af, partial_path)) != BSC_OK)
        goto cleanup;
    fprintf(af.f, "%s\n", signature);
    for (size_t i = 0; keep && i < npts; i++)
        if (done[i])
            fprintf(af.f, "%zu %.17g %.17g\n", i, loss[i], acc[i]);
    if ((s = bsc_afile_commit(&af)) != BSC_OK)
        goto cleanup;
    f = fopen(partial_path, "a");
    if (!f) {
        s = bsc_fail(BSC_ERR_IO, "%s: %s", partial_path, strerror(errno));
        goto cleanup;
    }
    size_t n_done = 0;
    for (size_t i = 0; i < npts; i++)
        n_done += done[i];
    bsc_study_progress(g->st, g->label, "points", n_done, npts);
    for (int j = 0; j < g->ny; j++) {
        double y = ana_linspace(g->y0, g->y1, g->ny, j);
        for (int i = 0; i < g->nx; i++) {
            size_t idx = (size_t)j * (size_t)g->nx + (size_t)i;
            if (done[idx])
                continue;
            double x = ana_linspace(g->x0, g->x1, g->nx, i);
            if ((s = point(user, x, y, &loss[idx], &acc[idx])) != BSC_OK)
                goto cleanup;
            /* %.17g round-trips a double, so a resumed grid is bit-identical
             * to one computed in one go. */
            if (fprintf(f, "%zu %.17g %.17g\n", idx, loss[idx], acc[idx]) < 0 || fflush(f) != 0) {
                s = bsc_fail(BSC_ERR_IO, "%s: %s", partial_path, strerror(errno));
                goto cleanup;
            }
            done[idx] = 1;
            if (computed)
                (*computed)++;
            bsc_study_progress(g->st, g->label, "points", ++n_done, npts);
        }
    }
cleanup:
    if (f && fclose(f) != 0 && s == BSC_OK)
        s = bsc_fail(BSC_ERR_IO, "%s: %s", partial_path, strerror(errno));
    free(done);
    return s;
}
