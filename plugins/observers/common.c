/* batchscope observers plugin: layer segments, buffers and small helpers
 * shared by the observer files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/fsutil.h"
#include "observers.h"

/* cl/observers, embedded by batchscope_embed_cl (CMakeLists.txt). */
const char *obs_cl_text(const char *file);

bsc_status obs_kernel(bsc_context *ctx, const char *file, const char *kernel, cl_kernel *out)
{
    char name[128];
    const char *text = obs_cl_text(file);
    if (!text)
        return bsc_fail(BSC_ERR_NOT_FOUND, "observers plugin: no OpenCL source %s embedded",
                        file);
    snprintf(name, sizeof name, "observers/%s", file);
    return bsc_kernel_from_source(ctx, name, text, NULL, kernel, out);
}

bsc_status obs_alloc(bsc_context *ctx, bsc_dtype dt, size_t n, bsc_tensor *t)
{
    int64_t d = (int64_t)(n ? n : 1);
    bsc_shape s = bsc_shape_make(1, &d);
    return bsc_tensor_alloc(ctx, dt, &s, t);
}

bsc_status obs_read(bsc_context *ctx, const bsc_tensor *t, size_t n, float *host)
{
    if (n == 0)
        return BSC_OK;
    if (n > t->numel)
        return bsc_fail(BSC_ERR_INTERNAL, "observers: reading %zu floats of a buffer of %zu",
                        n, t->numel);
    cl_int err = clEnqueueReadBuffer(ctx->queue, t->mem, CL_TRUE, t->offset * sizeof(float),
                                     n * sizeof(float), host, 0, NULL, NULL);
    return err == CL_SUCCESS ? BSC_OK : bsc_cl_fail(err, "observers: reading results");
}

bsc_status obs_segments_build(bsc_context *ctx, bsc_model *m, obs_segments *out)
{
    memset(out, 0, sizeof *out);
    size_t nl = bsc_model_n_layers(m), nt = bsc_model_n_tensors(m), np = bsc_model_n_params(m);
    if (np > UINT32_MAX)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "observers: %zu parameters exceed the 2^32 "
                        "element index of the observer kernels", np);
    /* Tensors come in layer order; a layer's trainable tensors are
     * consecutive, so a segment is [first offset, last offset + numel). */
    size_t *lo = calloc(nl + 1, sizeof *lo), *hi = calloc(nl + 1, sizeof *hi);
    out->layer = calloc(nl ? nl : 1, sizeof *out->layer);
    bsc_status s = BSC_OK;
    if (!lo || !hi || !out->layer) {
        s = bsc_fail(BSC_ERR_NOMEM, "observers: out of memory");
        goto cleanup;
    }
    size_t n = 0;
    for (size_t i = 0; i < nt; i++) {
        const bsc_model_tensor *t = bsc_model_tensor_at(m, i);
        if (t->spec.role == BSC_ROLE_STATE || t->numel == 0)
            continue;
        if (n == 0 || out->layer[n - 1] != t->layer) {
            out->layer[n] = t->layer;
            lo[n] = t->offset;
            n++;
        } else if (hi[n - 1] != t->offset) {
            s = bsc_fail(BSC_ERR_INTERNAL, "observers: tensor %s is not contiguous with the "
                         "rest of layer %d", t->name, t->layer);
            goto cleanup;
        }
        hi[n - 1] = t->offset + t->numel;
    }
    out->n = n;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++)
        nc += (hi[i] - lo[i] + OBS_CHUNK - 1) / OBS_CHUNK;
    out->bounds = calloc(nc + 1, sizeof *out->bounds);
    out->chunk_seg = calloc(nc ? nc : 1, sizeof *out->chunk_seg);
    if (!out->bounds || !out->chunk_seg) {
        s = bsc_fail(BSC_ERR_NOMEM, "observers: out of memory");
        goto cleanup;
    }
    /* Chunks share their bounds, so the segments must tile the buffer; they
     * do in every model the engine builds (model.h), and this checks it. */
    for (size_t i = 0; i + 1 < n; i++)
        if (hi[i] != lo[i + 1]) {
            s = bsc_fail(BSC_ERR_INTERNAL, "observers: a gap in the parameter buffer after "
                         "layer %d", out->layer[i]);
            goto cleanup;
        }
    nc = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t o = lo[i]; o < hi[i]; o += OBS_CHUNK) {
            out->bounds[nc] = (uint32_t)o;
            out->chunk_seg[nc++] = i;
        }
    out->bounds[nc] = n ? (uint32_t)hi[n - 1] : 0;
    out->n_chunks = nc;
    if ((s = obs_alloc(ctx, BSC_I32, nc + 1, &out->dev)) == BSC_OK)
        s = bsc_tensor_write(ctx, &out->dev, out->bounds);
cleanup:
    free(lo);
    free(hi);
    return s;
}

void obs_segments_free(obs_segments *s)
{
    free(s->layer);
    free(s->bounds);
    free(s->chunk_seg);
    bsc_tensor_free(&s->dev);
    memset(s, 0, sizeof *s);
}

void obs_segments_sum(const obs_segments *s, const float *v, size_t width, double *out)
{
    for (size_t i = 0; i < s->n * width; i++)
        out[i] = 0;
    for (size_t c = 0; c < s->n_chunks; c++)
        for (size_t k = 0; k < width; k++)
            out[s->chunk_seg[c] * width + k] += v[c * width + k];
}

bsc_status obs_local_size(bsc_context *ctx, cl_kernel k, size_t *local)
{
    return bsc_local_size(ctx, k, OBS_LOCAL, local);
}

char *obs_run_path(const bsc_run_info *run, const char *name)
{
    return bsc_strdup_printf("%s/%s", run->run_dir, name);
}

bsc_status obs_write_run_table(const bsc_run_info *run, const bsc_table *t, const char *name,
                               bsc_csv_mark *mark)
{
    char *path = obs_run_path(run, name);
    if (!path)
        return bsc_fail(BSC_ERR_NOMEM, "observers: out of memory");
    bsc_status s = bsc_table_write_csv_more(t, path, mark);
    free(path);
    return s;
}

double obs_sqrt(double v)
{
    /* A float sum of squares is never negative; NaN (a diverged run) stays NaN. */
    if (isnan(v))
        return v;
    return v > 0 ? sqrt(v) : 0.0;
}

bsc_status obs_parse_method(const bsc_node *options, int *force_microbatch)
{
    static const char *const methods[] = {"auto", "microbatch", NULL};
    const char *m;
    bsc_status s = bsc_opt_string(options, "method", "auto", methods, &m);
    if (s == BSC_OK)
        *force_microbatch = strcmp(m, "microbatch") == 0;
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double order_stat(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    double f = pos - (double)lo;
    return v[lo] + f * (v[hi] - v[lo]);
}

void obs_quartiles(double *v, size_t n, double *q25, double *q50, double *q75)
{
    if (n == 0) {
        *q25 = *q50 = *q75 = NAN;
        return;
    }
    qsort(v, n, sizeof *v, cmp_double);
    *q25 = order_stat(v, n, 0.25);
    *q50 = order_stat(v, n, 0.50);
    *q75 = order_stat(v, n, 0.75);
}
