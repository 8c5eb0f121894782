/* Datasets: loading into normalized host splits, upload, on-device batching. */
#include "batchscope/dataset.h"
#include "batchscope/host_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void split_free(bsc_split *s)
{
    free(s->images);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

void bsc_dataset_free(bsc_dataset *ds)
{
    if (!ds)
        return;
    split_free(&ds->train);
    split_free(&ds->test);
    split_free(&ds->validation);
    free(ds);
}

/* Images and labels of one file pair (or CIFAR file set), counts checked. */
typedef struct raw_split {
    bsc_raw_images images;
    int32_t *labels;
} raw_split;

static void raw_split_free(raw_split *r)
{
    bsc_raw_images_free(&r->images);
    free(r->labels);
    r->labels = NULL;
}

static bsc_status read_idx_pair(const char *images_path, const char *labels_path,
                                int n_classes, raw_split *out)
{
    size_t nl = 0;
    bsc_status st = bsc_idx_read_images(images_path, &out->images);
    if (st != BSC_OK)
        return st;
    st = bsc_idx_read_labels(labels_path, n_classes, &out->labels, &nl);
    if (st != BSC_OK)
        return st;
    if (nl != out->images.n)
        return bsc_fail(BSC_ERR_DATA,
                        "image/label count mismatch: %s has %zu images (count at offset 4), "
                        "%s has %zu labels (count at offset 4)",
                        images_path, out->images.n, labels_path, nl);
    return BSC_OK;
}

static bsc_status read_cifar(const char *dir, int train, int n_classes, raw_split *out)
{
    char paths[BSC_CIFAR_TRAIN_FILES][BSC_DATASET_PATH_MAX];
    const char *ptrs[BSC_CIFAR_TRAIN_FILES];
    size_t n = train ? BSC_CIFAR_TRAIN_FILES : 1;
    for (size_t i = 0; i < n; i++) {
        int len = train ? snprintf(paths[i], sizeof paths[i], "%s/data_batch_%zu.bin", dir,
                                   i + 1)
                        : snprintf(paths[i], sizeof paths[i], "%s/test_batch.bin", dir);
        if (len < 0 || len >= (int)sizeof paths[i])
            return bsc_fail(BSC_ERR_INVALID, "%s: path too long", dir);
        ptrs[i] = paths[i];
    }
    return bsc_cifar_read(ptrs, n, n_classes, &out->images, &out->labels);
}

/* Copies examples [first, first + n) of raw into split, as (p/255 - mean)/std
 * per channel. A 256-entry table per channel makes the conversion one load
 * per pixel and identical for every example. */
static bsc_status make_split(const raw_split *raw, size_t first, size_t n,
                             const bsc_dataset_config *cfg, bsc_split *out)
{
    const bsc_raw_images *r = &raw->images;
    size_t plane = (size_t)r->rows * (size_t)r->cols;
    size_t row_len = plane * (size_t)r->channels;
    float table[BSC_DATASET_MAX_CHANNELS][256];

    out->n = n;
    if (n == 0)
        return BSC_OK;
    for (int c = 0; c < r->channels; c++)
        for (int v = 0; v < 256; v++)
            table[c][v] = ((float)v / 255.0f - cfg->mean[c]) / cfg->std[c];
    out->images = malloc(n * row_len * sizeof *out->images);
    out->labels = malloc(n * sizeof *out->labels);
    if (!out->images || !out->labels)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory for %zu examples of %zu values", n,
                        row_len);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *src = r->pixels + (first + i) * row_len;
        float *dst = out->images + i * row_len;
        for (int c = 0; c < r->channels; c++)
            for (size_t k = 0; k < plane; k++)
                dst[c * plane + k] = table[c][src[c * plane + k]];
        out->labels[i] = raw->labels[first + i];
    }
    return BSC_OK;
}

static bsc_status check_count(const bsc_dataset_config *cfg, const char *key, long want,
                              size_t have, const char *what)
{
    if (want > 0 && (size_t)want > have)
        return bsc_fail(BSC_ERR_INVALID, "%s: dataset '%s': %s: %ld is more than the %zu %s",
                        cfg->where, cfg->name, key, want, have, what);
    return BSC_OK;
}

bsc_status bsc_dataset_load(const bsc_dataset_config *cfg, bsc_dataset **out)
{
    raw_split train = {{0}, NULL}, test = {{0}, NULL};
    bsc_dataset *ds = NULL;
    size_t n_val, n_rest, n_train, n_test;
    bsc_status st;

    *out = NULL;
    if (cfg->channels < 1 || cfg->channels > BSC_DATASET_MAX_CHANNELS)
        return bsc_fail(BSC_ERR_USAGE, "dataset config not parsed (channels %d)",
                        cfg->channels);
    if (cfg->format == BSC_DATA_CIFAR10) {
        st = read_cifar(cfg->dir, 1, cfg->n_classes, &train);
        if (st == BSC_OK)
            st = read_cifar(cfg->dir, 0, cfg->n_classes, &test);
    } else {
        st = read_idx_pair(cfg->train_images, cfg->train_labels, cfg->n_classes, &train);
        if (st == BSC_OK)
            st = read_idx_pair(cfg->test_images, cfg->test_labels, cfg->n_classes, &test);
    }
    if (st != BSC_OK)
        goto cleanup;
    if (train.images.channels != cfg->channels ||
        test.images.rows != train.images.rows || test.images.cols != train.images.cols) {
        st = bsc_fail(BSC_ERR_DATA,
                      "dataset '%s': train images are %dx%dx%d but test images %dx%dx%d",
                      cfg->name, train.images.channels, train.images.rows,
                      train.images.cols, test.images.channels, test.images.rows,
                      test.images.cols);
        goto cleanup;
    }
    if (train.images.n == 0) {
        st = bsc_fail(BSC_ERR_DATA, "dataset '%s': the training split is empty", cfg->name);
        goto cleanup;
    }
    /* Validation comes off the end of the full file first, so it does not
     * move when `subset` changes. */
    if (cfg->validation > 0 && (size_t)cfg->validation >= train.images.n) {
        st = bsc_fail(BSC_ERR_INVALID,
                      "%s: dataset '%s': validation: %ld leaves no training examples "
                      "(there are %zu)",
                      cfg->where, cfg->name, cfg->validation, train.images.n);
        goto cleanup;
    }
    n_val = cfg->validation > 0 ? (size_t)cfg->validation : 0;
    n_rest = train.images.n - n_val;
    if ((st = check_count(cfg, "subset", cfg->subset, n_rest,
                          "training examples left after validation")) != BSC_OK ||
        (st = check_count(cfg, "test_subset", cfg->test_subset, test.images.n,
                          "test examples")) != BSC_OK)
        goto cleanup;
    n_train = cfg->subset > 0 ? (size_t)cfg->subset : n_rest;
    n_test = cfg->test_subset > 0 ? (size_t)cfg->test_subset : test.images.n;

    ds = calloc(1, sizeof *ds);
    if (!ds) {
        st = bsc_fail(BSC_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    snprintf(ds->name, sizeof ds->name, "%s", cfg->name);
    ds->sample = bsc_shape_make(3, (const int64_t[]){train.images.channels,
                                                     train.images.rows, train.images.cols});
    ds->row_len = (size_t)train.images.channels * (size_t)train.images.rows *
                  (size_t)train.images.cols;
    ds->n_classes = cfg->n_classes;
    if ((st = make_split(&train, 0, n_train, cfg, &ds->train)) != BSC_OK ||
        (st = make_split(&train, n_rest, n_val, cfg, &ds->validation)) != BSC_OK ||
        (st = make_split(&test, 0, n_test, cfg, &ds->test)) != BSC_OK)
        goto cleanup;
    *out = ds;
    ds = NULL;
cleanup:
    bsc_dataset_free(ds);
    raw_split_free(&train);
    raw_split_free(&test);
    return st;
}

static bsc_status upload_split(bsc_context *ctx, const bsc_split *s, const bsc_shape *sample,
                               size_t row_len, bsc_device_split *out)
{
    int64_t dims[4] = {(int64_t)s->n, sample->dim[0], sample->dim[1], sample->dim[2]};
    bsc_shape ishape = bsc_shape_make(4, dims);
    bsc_shape lshape = bsc_shape_make(1, dims);
    bsc_status st;
    out->n = s->n;
    out->row_len = row_len;
    /* OpenCL has no zero-sized buffers: an empty split stays empty tensors. */
    if (s->n == 0)
        return BSC_OK;
    st = bsc_tensor_alloc(ctx, BSC_F32, &ishape, &out->images);
    if (st == BSC_OK)
        st = bsc_tensor_alloc(ctx, BSC_I32, &lshape, &out->labels);
    if (st == BSC_OK)
        st = bsc_tensor_write(ctx, &out->images, s->images);
    if (st == BSC_OK)
        st = bsc_tensor_write(ctx, &out->labels, s->labels);
    return st;
}

static void device_split_free(bsc_device_split *s)
{
    bsc_tensor_free(&s->images);
    bsc_tensor_free(&s->labels);
    memset(s, 0, sizeof *s);
}

void bsc_device_dataset_free(bsc_device_dataset *d)
{
    if (!d)
        return;
    device_split_free(&d->train);
    device_split_free(&d->test);
    device_split_free(&d->validation);
}

bsc_status bsc_dataset_upload(bsc_context *ctx, const bsc_dataset *ds,
                              bsc_device_dataset *out)
{
    bsc_status st;
    memset(out, 0, sizeof *out);
    out->sample = ds->sample;
    out->row_len = ds->row_len;
    out->n_classes = ds->n_classes;
    if ((st = upload_split(ctx, &ds->train, &ds->sample, ds->row_len, &out->train)) != BSC_OK ||
        (st = upload_split(ctx, &ds->test, &ds->sample, ds->row_len, &out->test)) != BSC_OK ||
        (st = upload_split(ctx, &ds->validation, &ds->sample, ds->row_len,
                           &out->validation)) != BSC_OK) {
        bsc_device_dataset_free(out);
        return bsc_fail_context(st, "uploading dataset '%s'", ds->name);
    }
    return BSC_OK;
}

/* The gather as a host task (host_task.h: bsc_host_elementwise), rows
 * split over the host threads, with gather_rows' rules (cl/runtime/data.cl). */
typedef struct gather_job {
    size_t n_rows, row_len, count;
    float *const *data;   /* images, labels, perm, x, y */
} gather_job;

static void gather_range(void *p, size_t lo, size_t hi)
{
    const gather_job *j = p;
    const float *images = j->data[0];
    const int32_t *labels = (const int32_t *)j->data[1];
    const uint32_t *perm = (const uint32_t *)j->data[2];
    float *x = j->data[3];
    int32_t *y = (int32_t *)j->data[4];
    for (size_t r = lo; r < hi; r++) {
        size_t src = perm[r];
        float *dst = x + r * j->row_len;
        if (src < j->n_rows) {
            memcpy(dst, images + src * j->row_len, j->row_len * sizeof *dst);
            y[r] = labels[src];
        } else {
            memset(dst, 0, j->row_len * sizeof *dst);
            y[r] = -1;
        }
    }
}

static void gather_task(void *args, float *const *data)
{
    gather_job *j = args;
    j->data = data;
    bsc_host_for(j->count, 16384 / j->row_len + 1, gather_range, j);
}

static bsc_status gather_host(bsc_context *ctx, const bsc_device_split *split,
                              const bsc_tensor *perm, size_t start, size_t count,
                              const bsc_tensor *x, const bsc_tensor *y)
{
    bsc_tensor v[5] = {split->images, split->labels, *perm, *x, *y};
    v[0].numel = split->n * split->row_len;
    v[1].numel = split->n;
    v[2].offset += start;
    v[2].numel = count;
    v[3].numel = count * split->row_len;
    v[4].numel = count;
    const bsc_tensor *t[5] = {&v[0], &v[1], &v[2], &v[3], &v[4]};
    gather_job j = {split->n, split->row_len, count, NULL};
    return bsc_enqueue_host(ctx, gather_task, &j, sizeof j, 5, t);
}

bsc_status bsc_dataset_gather(bsc_context *ctx, const bsc_device_split *split,
                              const bsc_tensor *perm, size_t start, size_t count,
                              bsc_tensor *x, bsc_tensor *y)
{
    cl_kernel k = NULL;
    cl_ulong img_off, lab_off, perm_off, x_off, y_off;
    cl_uint n_rows, cnt, row_len;
    bsc_status st;

    if (count == 0)
        return BSC_OK;
    if (perm->dtype != BSC_I32 || x->dtype != BSC_F32 || y->dtype != BSC_I32)
        return bsc_fail(BSC_ERR_USAGE, "dataset gather: perm and y must be I32, x F32");
    if (start > perm->numel || count > perm->numel - start)
        return bsc_fail(BSC_ERR_USAGE,
                        "dataset gather: examples [%zu, %zu) beyond the %zu indices of perm",
                        start, start + count, perm->numel);
    if (split->n == 0 || split->row_len == 0)
        return bsc_fail(BSC_ERR_USAGE, "dataset gather: the split is empty");
    if (x->numel / split->row_len < count || y->numel < count)
        return bsc_fail(BSC_ERR_USAGE,
                        "dataset gather: %zu examples of %zu values do not fit x (%zu) or "
                        "y (%zu)",
                        count, split->row_len, x->numel, y->numel);
    if (split->n > UINT32_MAX || count > UINT32_MAX || split->row_len > UINT32_MAX)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "dataset gather: sizes beyond 32 bits");
    if (bsc_host_elementwise(ctx))
        return gather_host(ctx, split, perm, start, count, x, y);
    st = bsc_kernel(ctx, "data.cl", "gather_rows", &k);
    if (st != BSC_OK)
        return st;
    img_off = split->images.offset;
    lab_off = split->labels.offset;
    perm_off = perm->offset + start;
    x_off = x->offset;
    y_off = y->offset;
    n_rows = (cl_uint)split->n;
    cnt = (cl_uint)count;
    row_len = (cl_uint)split->row_len;
    bsc_karg args[] = {
        BSC_ARG(split->images.mem), BSC_ARG(img_off), BSC_ARG(split->labels.mem),
        BSC_ARG(lab_off), BSC_ARG(n_rows), BSC_ARG(perm->mem), BSC_ARG(perm_off),
        BSC_ARG(cnt), BSC_ARG(row_len), BSC_ARG(x->mem), BSC_ARG(x_off),
        BSC_ARG(y->mem), BSC_ARG(y_off)};
    size_t global = count;
    return bsc_launch(ctx, k, (int)(sizeof args / sizeof args[0]), args, 1, &global, NULL);
}
