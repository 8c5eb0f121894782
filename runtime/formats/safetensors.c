/* safetensors reader: the file handle, offset validation, F32 reads and
 * metadata lookup (see safetensors.h; the header parser is in
 * safetensors_header.c, the writer in safetensors_write.c). */
#include "safetensors_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The reference implementation refuses headers above 100 MB; so do we, so a
 * corrupt length cannot ask for a huge allocation. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)
#define ST_CHUNK 4096

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Sizes against dtype and shape, then the offsets: inside the data section,
 * covering it exactly, in some order, without overlap. */
static int by_begin(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->info.begin != y->info.begin)
        return x->info.begin < y->info.begin ? -1 : 1;
    return x->info.end < y->info.end ? -1 : x->info.end > y->info.end;
}

static bsc_status validate(bsc_safetensors *f)
{
    st_tensor **order = NULL;
    uint64_t at = 0;
    bsc_status st = BSC_OK;
    for (size_t i = 0; i < f->n; i++) {
        st_tensor *t = &f->tensors[i];
        uint64_t numel = 1;
        for (int d = 0; d < t->info.shape.ndim; d++) {
            uint64_t dim = (uint64_t)t->info.shape.dim[d];
            if (dim && numel > UINT64_MAX / 16 / dim)
                return bsc_fail(BSC_ERR_DATA, "%s: offset %zu: tensor '%s': shape too large",
                                f->path, t->where, t->name);
            numel *= dim;
        }
        t->info.name = t->name;
        t->info.dtype = t->dtype;
        t->info.numel = (size_t)numel;
        if (t->info.begin > t->info.end || t->info.end > f->data_size)
            return bsc_fail(BSC_ERR_DATA,
                            "%s: offset %zu: tensor '%s': data_offsets [%llu, %llu] out of "
                            "range (data section is %llu bytes)",
                            f->path, t->where, t->name, (unsigned long long)t->info.begin,
                            (unsigned long long)t->info.end,
                            (unsigned long long)f->data_size);
        if (t->info.end - t->info.begin != numel * t->info.elem_size)
            return bsc_fail(BSC_ERR_DATA,
                            "%s: offset %zu: tensor '%s': data_offsets span %llu bytes but "
                            "%s %llu elements need %llu",
                            f->path, t->where, t->name,
                            (unsigned long long)(t->info.end - t->info.begin), t->dtype,
                            (unsigned long long)numel,
                            (unsigned long long)(numel * t->info.elem_size));
    }
    order = malloc((f->n ? f->n : 1) * sizeof *order);
    if (!order)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory checking %s", f->path);
    for (size_t i = 0; i < f->n; i++)
        order[i] = &f->tensors[i];
    qsort(order, f->n, sizeof *order, by_begin);
    for (size_t i = 0; i < f->n; i++) {
        const st_tensor *t = order[i];
        if (t->info.begin != at) {
            st = bsc_fail(BSC_ERR_DATA,
                          "%s: offset %zu: tensor '%s' starts at data byte %llu, but the "
                          "previous tensor ends at %llu (%s)",
                          f->path, t->where, t->name, (unsigned long long)t->info.begin,
                          (unsigned long long)at,
                          t->info.begin < at ? "overlap" : "hole in the data section");
            goto cleanup;
        }
        at = t->info.end;
    }
    if (at != f->data_size)
        st = bsc_fail(BSC_ERR_DATA,
                      "%s: offset %llu: the data section has %llu bytes but the tensors "
                      "cover %llu",
                      f->path, (unsigned long long)(f->data_start + at),
                      (unsigned long long)f->data_size, (unsigned long long)at);
cleanup:
    free(order);
    return st;
}

void bsc_safetensors_close(bsc_safetensors *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].dtype);
    }
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    if (f->file)
        fclose(f->file);
    free(f->path);
    free(f);
}

bsc_status bsc_safetensors_open(const char *path, bsc_safetensors **out)
{
    bsc_safetensors *f = calloc(1, sizeof *f);
    uint8_t len8[8];
    char *hdr = NULL;
    struct stat sb;
    uint64_t hlen, size;
    bsc_status st = BSC_OK;

    *out = NULL;
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return bsc_fail(BSC_ERR_NOMEM, "out of memory opening %s", path);
    }
    f->file = fopen(path, "rb");
    if (!f->file) {
        st = bsc_fail(errno == ENOENT ? BSC_ERR_NOT_FOUND : BSC_ERR_IO, "%s: cannot open: %s",
                      path, strerror(errno));
        goto cleanup;
    }
    if (fstat(fileno(f->file), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = bsc_fail(BSC_ERR_IO, "%s: not a regular file", path);
        goto cleanup;
    }
    size = (uint64_t)sb.st_size;
    if (size < 8 || fread(len8, 1, 8, f->file) != 8) {
        st = bsc_fail(BSC_ERR_DATA,
                      "%s: offset 0: file is %llu bytes, too short for the 8-byte header "
                      "length",
                      path, (unsigned long long)size);
        goto cleanup;
    }
    hlen = get_le64(len8);
    if (hlen > size - 8 || hlen > ST_MAX_HEADER || hlen < 2) {
        st = bsc_fail(BSC_ERR_DATA,
                      "%s: offset 0: header length %llu is impossible (file is %llu bytes, "
                      "limit %u)",
                      path, (unsigned long long)hlen, (unsigned long long)size,
                      ST_MAX_HEADER);
        goto cleanup;
    }
    hdr = malloc((size_t)hlen);
    if (!hdr) {
        st = bsc_fail(BSC_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path,
                      (unsigned long long)hlen);
        goto cleanup;
    }
    if (fread(hdr, 1, (size_t)hlen, f->file) != hlen) {
        st = bsc_fail(BSC_ERR_IO, "%s: offset 8: cannot read the %llu-byte header", path,
                      (unsigned long long)hlen);
        goto cleanup;
    }
    f->data_start = 8 + hlen;
    f->data_size = size - f->data_start;
    if ((st = bsc_st_parse_header(hdr, (size_t)hlen, path, f)) != BSC_OK ||
        (st = validate(f)) != BSC_OK)
        goto cleanup;
    *out = f;
    f = NULL;
cleanup:
    free(hdr);
    bsc_safetensors_close(f);
    return st;
}

size_t bsc_safetensors_count(const bsc_safetensors *f)
{
    return f->n;
}

const bsc_st_info *bsc_safetensors_at(const bsc_safetensors *f, size_t i)
{
    return i < f->n ? &f->tensors[i].info : NULL;
}

const bsc_st_info *bsc_safetensors_find(const bsc_safetensors *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i].info;
    return NULL;
}

bsc_status bsc_safetensors_read(bsc_safetensors *f, const char *name, float *out,
                                size_t capacity)
{
    const bsc_st_info *t = bsc_safetensors_find(f, name);
    uint8_t chunk[ST_CHUNK * 4];
    if (!t)
        return bsc_fail(BSC_ERR_NOT_FOUND, "%s: no tensor named '%s'", f->path, name);
    if (strcmp(t->dtype, "F32") != 0)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; only F32 is "
                        "supported", f->path, name, t->dtype);
    if (capacity < t->numel)
        return bsc_fail(BSC_ERR_INVALID, "%s: tensor '%s' has %zu elements, buffer holds %zu",
                        f->path, name, t->numel, capacity);
    if (fseeko(f->file, (off_t)(f->data_start + t->begin), SEEK_SET) != 0)
        return bsc_fail(BSC_ERR_IO, "%s: seek to offset %llu: %s", f->path,
                        (unsigned long long)(f->data_start + t->begin), strerror(errno));
    for (size_t k = 0; k < t->numel; k += ST_CHUNK) {
        size_t m = t->numel - k < ST_CHUNK ? t->numel - k : ST_CHUNK;
        if (fread(chunk, 4, m, f->file) != m)
            return bsc_fail(BSC_ERR_IO, "%s: offset %llu: short read of tensor '%s'",
                            f->path, (unsigned long long)(f->data_start + t->begin + 4 * k),
                            name);
        for (size_t j = 0; j < m; j++) {
            const uint8_t *b = chunk + 4 * j;
            uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                            (uint32_t)b[3] << 24;
            memcpy(&out[k + j], &bits, 4);
        }
    }
    return BSC_OK;
}

const char *bsc_safetensors_meta(const bsc_safetensors *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}

size_t bsc_safetensors_meta_count(const bsc_safetensors *f)
{
    return f->n_meta;
}

void bsc_safetensors_meta_at(const bsc_safetensors *f, size_t i, const char **key,
                             const char **value)
{
    *key = i < f->n_meta ? f->meta_keys[i] : NULL;
    *value = i < f->n_meta ? f->meta_values[i] : NULL;
}
