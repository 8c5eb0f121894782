/* batchscope: the image dataset file formats (IDX, CIFAR-10 binary), read
 * into plain host arrays; bsc_dataset_load (dataset.h) builds on them. */
#ifndef BATCHSCOPE_IMAGEFILES_H
#define BATCHSCOPE_IMAGEFILES_H

#include "batchscope/api.h"
#include <stddef.h>
#include <stdint.h>
#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_raw_images {
    uint8_t *pixels;            /* [n, channels, rows, cols], malloc'ed */
    size_t n;
    int channels, rows, cols;
} bsc_raw_images;

/* An IDX image file (magic 0x00000803: unsigned bytes, [N, rows, cols],
 * big-endian header), plain or gzip. Wrong magic, a truncated header or body,
 * trailing bytes, rows or cols of 0, more than 2^31 elements in total, and
 * zlib errors are reported with path and byte offset (of the uncompressed
 * stream). Memory grows with the data actually read, so a lying header
 * cannot make it allocate more than the file holds. */
BSC_API bsc_status bsc_idx_read_images(const char *path, bsc_raw_images *out);

/* An IDX label file (magic 0x00000801, [N]); every label must be
 * < n_classes, else BSC_ERR_DATA naming the value and its byte offset.
 * *labels is malloc'ed. */
BSC_API bsc_status bsc_idx_read_labels(const char *path, int n_classes, int32_t **labels,
                               size_t *n);

/* CIFAR-10 binary batches (records of 1 label byte + 3072 pixel bytes, CHW,
 * 32x32x3), the files concatenated in order into *images (channels 3) and
 * *labels. A file whose size is not a multiple of 3073 is BSC_ERR_DATA naming
 * the path and size; a label >= n_classes names its value and offset. */
BSC_API bsc_status bsc_cifar_read(const char *const *paths, size_t npaths, int n_classes,
                          bsc_raw_images *images, int32_t **labels);

BSC_API void bsc_raw_images_free(bsc_raw_images *r);

#ifdef __cplusplus
}
#endif
#endif
