/* batchscope: image classification datasets (IDX / MNIST-like, CIFAR-10).
 *
 * Three steps: the pipeline's `dataset:` node becomes a bsc_dataset_config
 * (config errors at file:line:col, missing files named with where to get
 * them); the config is loaded into host arrays (pixels scaled to [0, 1], then
 * (x - mean) / std per channel; data errors name the path and byte offset);
 * the splits are uploaded once to the device, from where bsc_dataset_gather
 * assembles each batch by index without touching the host.
 *
 * The `dataset:` node is either a shortcut scalar
 *
 *     dataset: fashion-mnist   # $BATCHSCOPE_DATA/fashion-mnist/, then
 *                              # /usr/share/datasets/fashion-mnist/ (Debian's
 *                              # dataset-fashion-mnist package)
 *     dataset: mnist           # $BATCHSCOPE_DATA/mnist/, then $BATCHSCOPE_DATA/
 *     dataset: cifar10         # $BATCHSCOPE_DATA/cifar-10-batches-bin/
 *
 * (IDX files may be gzipped: "train-images-idx3-ubyte" or ".gz"), or a mapping:
 *
 *     dataset:
 *       name: mnist              # a shortcut, or instead:
 *       dir: /data/mnist         # with name: look here instead of the default
 *                                # places; with format cifar10: the batches dir
 *       format: idx              # idx | cifar10 (not with name)
 *       train: {images: a.gz, labels: b.gz}   # idx; relative to the pipeline
 *       test:  {images: c.gz, labels: d.gz}
 *       normalize: {mean: 0.5, std: 0.25}     # or per channel lists; or false
 *       n_classes: 10            # labels must be < n_classes (1..256)
 *       validation: 5000         # hold out the LAST 5000 training examples
 *       subset: 10000            # then keep the first 10000 of the rest
 *       test_subset: 2000        # first 2000 test examples
 *
 * Normalization defaults: fashion-mnist 0.2860 / 0.3530, mnist 0.1307 /
 * 0.3081, CIFAR-10 (shortcut or format cifar10) per channel
 * (0.4914, 0.4822, 0.4465) / (0.2470, 0.2435, 0.2616), custom idx none
 * (mean 0, std 1). `normalize: false` turns it off.
 *
 * The validation split is taken from the end of the full training file before
 * `subset` applies, so it stays the same examples whatever subset is chosen;
 * it is a separate split (never mixed into train or reported as test).
 */
#ifndef BATCHSCOPE_DATASET_H
#define BATCHSCOPE_DATASET_H

#include "batchscope/api.h"
#include <stddef.h>
#include <stdint.h>
#include "batchscope/imagefiles.h"
#include "batchscope/node.h"
#include "batchscope/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BSC_DATASET_PATH_MAX 4096
#define BSC_DATASET_MAX_CHANNELS 3
#define BSC_CIFAR_TRAIN_FILES 5

typedef enum bsc_data_format { BSC_DATA_IDX, BSC_DATA_CIFAR10 } bsc_data_format;

typedef struct bsc_dataset_config {
    char name[32];              /* "mnist", "fashion-mnist", "cifar10", "idx" */
    bsc_data_format format;
    /* idx: resolved paths of the four files (existence checked at parse) */
    char train_images[BSC_DATASET_PATH_MAX];
    char train_labels[BSC_DATASET_PATH_MAX];
    char test_images[BSC_DATASET_PATH_MAX];
    char test_labels[BSC_DATASET_PATH_MAX];
    /* cifar10: directory holding data_batch_1..5.bin and test_batch.bin */
    char dir[BSC_DATASET_PATH_MAX];
    int channels;               /* 1 for idx, 3 for cifar10 */
    float mean[BSC_DATASET_MAX_CHANNELS];   /* per channel */
    float std[BSC_DATASET_MAX_CHANNELS];
    int n_classes;
    long subset;                /* 0: all remaining training examples */
    long test_subset;           /* 0: all test examples */
    long validation;            /* 0: no validation split */
    char where[256];            /* "file:line:col" of the dataset node, for
                                   load-time errors about subset sizes */
} bsc_dataset_config;

/* Fills *out from the `dataset:` node (scalar or mapping, see above).
 * Relative paths resolve against pipeline_dir (NULL: the current directory).
 * Errors: BSC_ERR_INVALID / BSC_ERR_PARSE at the offending node's
 * file:line:col (unknown keys with a closest-name hint, bad values, wrong
 * number of mean/std entries); BSC_ERR_NOT_FOUND when a file is missing,
 * naming it and, for shortcuts, the places searched and how to provide it. */
BSC_API bsc_status bsc_dataset_config_parse(const bsc_node *node, const char *pipeline_dir,
                                    bsc_dataset_config *out);

/* One split on the host. */
typedef struct bsc_split {
    size_t n;                   /* examples */
    float *images;              /* [n, C, H, W], normalized; NULL when n == 0 */
    int32_t *labels;            /* [n], each in [0, n_classes) */
} bsc_split;

typedef struct bsc_dataset {
    char name[32];
    bsc_shape sample;           /* [C, H, W]; C = 1 for idx */
    size_t row_len;             /* C * H * W */
    int n_classes;
    bsc_split train, test, validation;   /* validation.n == 0 when none */
} bsc_dataset;

/* Reads and normalizes every split the config names. The train and test
 * files must agree on the sample shape; subset/validation sizes beyond what
 * the files hold are BSC_ERR_INVALID at the config's `where`. File errors are
 * BSC_ERR_DATA or BSC_ERR_IO naming the path and the byte offset.
 * *out is allocated; free it with bsc_dataset_free. */
BSC_API bsc_status bsc_dataset_load(const bsc_dataset_config *cfg, bsc_dataset **out);
BSC_API void bsc_dataset_free(bsc_dataset *ds);

/* ---- on the device */

typedef struct bsc_device_split {
    size_t n;
    size_t row_len;             /* C * H * W */
    bsc_tensor images;          /* F32 [n, C, H, W]; empty when n == 0 */
    bsc_tensor labels;          /* I32 [n] */
} bsc_device_split;

typedef struct bsc_device_dataset {
    bsc_shape sample;
    size_t row_len;
    int n_classes;
    bsc_device_split train, test, validation;
} bsc_device_dataset;

/* Copies each split once to the device (blocking writes). On failure nothing
 * stays allocated. Free with bsc_device_dataset_free. */
BSC_API bsc_status bsc_dataset_upload(bsc_context *ctx, const bsc_dataset *ds,
                              bsc_device_dataset *out);
BSC_API void bsc_device_dataset_free(bsc_device_dataset *d);

/* Enqueues (does not wait for) the batch of examples perm[start ..
 * start+count) of `split`: x gets their images as [count, row_len] rows, y
 * their labels. perm is an I32 tensor of indices into the split (e.g. a
 * bsc_rng_permutation uploaded once per epoch); an index >= split->n yields a
 * zero row and label -1 rather than a read out of bounds. x must be F32 and
 * y I32 with at least count * row_len and count elements. */
BSC_API bsc_status bsc_dataset_gather(bsc_context *ctx, const bsc_device_split *split,
                              const bsc_tensor *perm, size_t start, size_t count,
                              bsc_tensor *x, bsc_tensor *y);

#ifdef __cplusplus
}
#endif
#endif
