/* CIFAR-10 binary batches: fixed 3073-byte records (label, then 32x32x3 CHW). */
#include "batchscope/imagefiles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_MAX_RECORDS ((1ull << 31) / CIFAR_PIXELS)

/* The number of records in `path`, from its size: a size that is not a
 * whole number of records means this is not a CIFAR-10 batch. */
static bsc_status count_records(const char *path, size_t *records)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return bsc_fail(errno == ENOENT ? BSC_ERR_NOT_FOUND : BSC_ERR_IO,
                        "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return bsc_fail(BSC_ERR_DATA, "%s: not a regular file", path);
    if (sb.st_size == 0 || sb.st_size % CIFAR_RECORD != 0)
        return bsc_fail(BSC_ERR_DATA,
                        "%s: size %lld bytes is not a positive multiple of %d "
                        "(1 label byte + %d pixel bytes per CIFAR-10 record)",
                        path, (long long)sb.st_size, CIFAR_RECORD, CIFAR_PIXELS);
    *records = (size_t)(sb.st_size / CIFAR_RECORD);
    return BSC_OK;
}

/* Reads `records` records of `path` into pixels/labels starting at record 0
 * of those arrays. The size was checked before; a short read here means the
 * file changed underneath us, still reported with its offset. */
static bsc_status read_file(const char *path, size_t records, int n_classes,
                            uint8_t *pixels, int32_t *labels)
{
    uint8_t rec[CIFAR_RECORD];
    bsc_status st = BSC_OK;
    FILE *f = fopen(path, "rb");
    if (!f)
        return bsc_fail(BSC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    for (size_t i = 0; i < records; i++) {
        unsigned long long at = (unsigned long long)i * CIFAR_RECORD;
        size_t got = fread(rec, 1, sizeof rec, f);
        if (got != sizeof rec) {
            if (ferror(f))
                st = bsc_fail(BSC_ERR_IO, "%s: read error at offset %llu: %s", path,
                              at + got, strerror(errno));
            else
                st = bsc_fail(BSC_ERR_DATA,
                              "%s: truncated record: expected %d bytes at offset %llu, "
                              "file ends at %llu",
                              path, CIFAR_RECORD, at, at + got);
            goto cleanup;
        }
        if (rec[0] >= n_classes) {
            st = bsc_fail(BSC_ERR_DATA,
                          "%s: label %u at offset %llu is out of range (n_classes %d)", path,
                          rec[0], at, n_classes);
            goto cleanup;
        }
        labels[i] = rec[0];
        memcpy(pixels + i * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
    }
cleanup:
    fclose(f);
    return st;
}

bsc_status bsc_cifar_read(const char *const *paths, size_t npaths, int n_classes,
                          bsc_raw_images *images, int32_t **labels)
{
    size_t total = 0, done = 0;
    uint8_t *pixels = NULL;
    int32_t *lab = NULL;
    bsc_status st = BSC_OK;

    memset(images, 0, sizeof *images);
    *labels = NULL;
    for (size_t i = 0; i < npaths; i++) {
        size_t records = 0;
        st = count_records(paths[i], &records);
        if (st != BSC_OK)
            return st;
        total += records;
        if (total > CIFAR_MAX_RECORDS)
            return bsc_fail(BSC_ERR_DATA, "%s: more than %llu CIFAR records in all",
                            paths[i], (unsigned long long)CIFAR_MAX_RECORDS);
    }
    pixels = malloc(total ? total * CIFAR_PIXELS : 1);
    lab = malloc(total ? total * sizeof *lab : 1);
    if (!pixels || !lab) {
        st = bsc_fail(BSC_ERR_NOMEM, "out of memory for %zu CIFAR-10 records", total);
        goto cleanup;
    }
    for (size_t i = 0; i < npaths; i++) {
        size_t records = 0;
        /* Counted again so a file that grew since is read only as far as the
         * buffer sized above allows. */
        st = count_records(paths[i], &records);
        if (st != BSC_OK)
            goto cleanup;
        if (records > total - done) {
            st = bsc_fail(BSC_ERR_IO, "%s: file changed while reading", paths[i]);
            goto cleanup;
        }
        st = read_file(paths[i], records, n_classes, pixels + done * CIFAR_PIXELS,
                       lab + done);
        if (st != BSC_OK)
            goto cleanup;
        done += records;
    }
    images->pixels = pixels;
    images->n = done;
    images->channels = 3;
    images->rows = CIFAR_SIDE;
    images->cols = CIFAR_SIDE;
    *labels = lab;
    pixels = NULL;
    lab = NULL;
cleanup:
    free(pixels);
    free(lab);
    return st;
}

void bsc_raw_images_free(bsc_raw_images *r)
{
    if (!r)
        return;
    free(r->pixels);
    memset(r, 0, sizeof *r);
}
