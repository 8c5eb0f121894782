/* The pipeline's `dataset:` node -> bsc_dataset_config (see dataset.h). */
#include "batchscope/dataset.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEBIAN_FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define CIFAR_SUBDIR "cifar-10-batches-bin"

static const char *const SHORTCUTS[] = {"fashion-mnist", "mnist", "cifar10", NULL};
static const char *const FORMATS[] = {"idx", "cifar10", NULL};
static const char *const MAP_KEYS[] = {"name", "format", "train", "test", "dir",
                                       "normalize", "subset", "test_subset",
                                       "validation", "n_classes", NULL};
static const char *const SPLIT_KEYS[] = {"images", "labels", NULL};
static const char *const NORM_KEYS[] = {"mean", "std", NULL};

/* The four IDX files of the MNIST family, in config order. */
static const char *const IDX_NAMES[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

static const char *const CIFAR_NAMES[] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
    "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin", NULL};

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Why path is no data file, for a message: NULL for a regular file;
 * "not found", "a directory" or "not a regular file (a device, FIFO or
 * socket)" -- a data reader would read /dev/zero forever or block on a
 * FIFO, so those are refused up front (issue 12). */
static const char *file_problem(const char *path, bsc_status *code)
{
    struct stat sb;
    *code = BSC_ERR_INVALID;
    if (stat(path, &sb) != 0) {
        *code = BSC_ERR_NOT_FOUND;
        return "not found";
    }
    if (S_ISDIR(sb.st_mode))
        return "a directory, not a data file";
    return S_ISREG(sb.st_mode) ? NULL : "not a regular file (a device, FIFO or socket)";
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* dir/base or dir/base.gz into out; 1 when one of them is a file. */
static int find_idx_file(const char *dir, const char *base, char *out)
{
    int n = snprintf(out, BSC_DATASET_PATH_MAX, "%s/%s", dir, base);
    if (n > 0 && n < BSC_DATASET_PATH_MAX && is_file(out))
        return 1;
    n = snprintf(out, BSC_DATASET_PATH_MAX, "%s/%s.gz", dir, base);
    return n > 0 && n < BSC_DATASET_PATH_MAX && is_file(out);
}

/* Resolves a config path against the pipeline's directory. */
static bsc_status resolve_path(const bsc_node *n, const char *pipeline_dir, const char *path,
                               char *out)
{
    int len;
    if (path[0] == '/' || !pipeline_dir || !pipeline_dir[0])
        len = snprintf(out, BSC_DATASET_PATH_MAX, "%s", path);
    else
        len = snprintf(out, BSC_DATASET_PATH_MAX, "%s/%s", pipeline_dir, path);
    if (len < 0 || len >= BSC_DATASET_PATH_MAX)
        return bsc_node_fail(n, BSC_ERR_INVALID, "path '%s' is too long", path);
    return BSC_OK;
}

static void set_norm(bsc_dataset_config *c, const float *mean, const float *std)
{
    for (int i = 0; i < c->channels; i++) {
        c->mean[i] = mean[c->channels == 1 ? 0 : i];
        c->std[i] = std[c->channels == 1 ? 0 : i];
    }
}

/* Fills the four IDX paths from the first candidate directory that holds
 * all of them; otherwise says what was looked for, where, and how to fix it. */
static bsc_status find_idx_set(const bsc_node *at, bsc_dataset_config *c,
                               const char *const *dirs, size_t ndirs, const char *hint)
{
    char *paths[4] = {c->train_images, c->train_labels, c->test_images, c->test_labels};
    const char *missing = IDX_NAMES[0];
    char searched[1024] = "";
    size_t used = 0;
    for (size_t d = 0; d < ndirs; d++) {
        int all = 1;
        for (int i = 0; i < 4 && all; i++) {
            if (!find_idx_file(dirs[d], IDX_NAMES[i], paths[i])) {
                all = 0;
                if (d == 0)
                    missing = IDX_NAMES[i];
            }
        }
        if (all)
            return BSC_OK;
        int w = snprintf(searched + used, sizeof searched - used, "%s%s", d ? ", " : "",
                         dirs[d]);
        if (w > 0 && (size_t)w < sizeof searched - used)
            used += (size_t)w;
    }
    return bsc_node_fail(at, BSC_ERR_NOT_FOUND,
                         "dataset '%s': %s[.gz] not found (searched: %s); %s; expected "
                         "files %s, %s, %s, %s (each optionally .gz)",
                         c->name, missing,
                         ndirs ? searched : "nowhere: BATCHSCOPE_DATA is not set", hint,
                         IDX_NAMES[0], IDX_NAMES[1], IDX_NAMES[2], IDX_NAMES[3]);
}

static bsc_status check_cifar_dir(const bsc_node *at, bsc_dataset_config *c, const char *hint)
{
    char path[BSC_DATASET_PATH_MAX];
    for (int i = 0; CIFAR_NAMES[i]; i++) {
        int n = snprintf(path, sizeof path, "%s/%s", c->dir, CIFAR_NAMES[i]);
        if (n < 0 || n >= (int)sizeof path || !is_file(path))
            return bsc_node_fail(at, BSC_ERR_NOT_FOUND,
                                 "dataset '%s': %s not found in %s; %s; expected files "
                                 "data_batch_1.bin .. data_batch_5.bin and test_batch.bin "
                                 "(the CIFAR-10 binary version)",
                                 c->name, CIFAR_NAMES[i], c->dir, hint);
    }
    return BSC_OK;
}

/* Shortcut names: default locations, default normalization. `dir` (may be
 * NULL) replaces the default search places. */
static bsc_status apply_shortcut(const bsc_node *at, const char *name, const char *dir,
                                 bsc_dataset_config *c)
{
    static const float fm_mean[] = {0.2860f}, fm_std[] = {0.3530f};
    static const float mn_mean[] = {0.1307f}, mn_std[] = {0.3081f};
    static const float cf_mean[] = {0.4914f, 0.4822f, 0.4465f};
    static const float cf_std[] = {0.2470f, 0.2435f, 0.2616f};
    const char *data = getenv("BATCHSCOPE_DATA");
    char d1[BSC_DATASET_PATH_MAX], d2[BSC_DATASET_PATH_MAX];
    const char *dirs[2];
    size_t nd = 0;

    if (data && !data[0])
        data = NULL;
    snprintf(c->name, sizeof c->name, "%s", name);
    if (strcmp(name, "cifar10") == 0) {
        c->format = BSC_DATA_CIFAR10;
        c->channels = 3;
        set_norm(c, cf_mean, cf_std);
        if (dir)
            snprintf(c->dir, sizeof c->dir, "%s", dir);
        else if (data)
            snprintf(c->dir, sizeof c->dir, "%s/" CIFAR_SUBDIR, data);
        else
            return bsc_node_fail(at, BSC_ERR_NOT_FOUND,
                                 "dataset 'cifar10': BATCHSCOPE_DATA is not set; set "
                                 "BATCHSCOPE_DATA to the directory that holds "
                                 CIFAR_SUBDIR "/ (data_batch_1.bin .. data_batch_5.bin, "
                                 "test_batch.bin; see the README for the download)");
        return check_cifar_dir(at, c,
                               dir ? "check `dir`"
                                   : "set BATCHSCOPE_DATA to the directory holding "
                                     CIFAR_SUBDIR "/ (see the README for the download)");
    }
    c->format = BSC_DATA_IDX;
    c->channels = 1;
    if (strcmp(name, "fashion-mnist") == 0) {
        set_norm(c, fm_mean, fm_std);
        if (dir) {
            dirs[nd++] = dir;
        } else {
            if (data) {
                snprintf(d1, sizeof d1, "%s/fashion-mnist", data);
                dirs[nd++] = d1;
            }
            dirs[nd++] = DEBIAN_FASHION_DIR;
        }
        return find_idx_set(at, c, dirs, nd,
                            dir ? "check `dir`"
                                : "install Debian's dataset-fashion-mnist package or put "
                                  "the files in $BATCHSCOPE_DATA/fashion-mnist");
    }
    set_norm(c, mn_mean, mn_std);
    if (dir) {
        dirs[nd++] = dir;
    } else if (data) {
        snprintf(d1, sizeof d1, "%s/mnist", data);
        snprintf(d2, sizeof d2, "%s", data);
        dirs[nd++] = d1;
        dirs[nd++] = d2;
    }
    return find_idx_set(at, c, dirs, nd,
                        dir ? "check `dir`"
                            : "set BATCHSCOPE_DATA to the directory holding the MNIST "
                              "files or a mnist/ subdirectory of it (see the README for "
                              "the download)");
}

/* train: / test: {images, labels} of a custom IDX dataset. */
static bsc_status parse_idx_split(const bsc_node *map, const char *key, const char *base,
                                  char *images, char *labels)
{
    const bsc_node *split = bsc_node_get(map, key);
    const char *const which[2] = {"images", "labels"};
    char *outs[2] = {images, labels};
    bsc_status st;
    if (!split)
        return bsc_node_fail(map, BSC_ERR_INVALID,
                             "format idx needs `%s: {images: PATH, labels: PATH}`", key);
    st = bsc_node_check_keys(split, SPLIT_KEYS);
    if (st != BSC_OK)
        return st;
    for (int i = 0; i < 2; i++) {
        const char *p = NULL;
        st = bsc_req_string(split, which[i], NULL, &p);
        if (st != BSC_OK)
            return st;
        st = resolve_path(bsc_node_get(split, which[i]), base, p, outs[i]);
        if (st != BSC_OK)
            return st;
        bsc_status code;
        const char *why = file_problem(outs[i], &code);
        if (why)
            return bsc_node_fail(bsc_node_get(split, which[i]), code, "%s.%s: '%s': %s", key,
                                 which[i], outs[i], why);
    }
    return BSC_OK;
}

/* One of mean/std: a number or a list of 1 or `channels` numbers. */
static bsc_status parse_norm_list(const bsc_node *norm, const char *key, double min,
                                  bsc_dataset_config *c, float *dst)
{
    double def[BSC_DATASET_MAX_CHANNELS];
    double *vals = NULL;
    size_t n = 0;
    bsc_status st;
    for (int i = 0; i < c->channels; i++)
        def[i] = dst[i];
    st = bsc_opt_double_list(norm, key, def, (size_t)c->channels, min, 1e6, &vals, &n);
    if (st != BSC_OK)
        return st;
    if (n != 1 && n != (size_t)c->channels) {
        free(vals);
        if (c->channels == 1)
            return bsc_node_fail(bsc_node_get(norm, key), BSC_ERR_INVALID,
                                 "normalize.%s: %zu values for 1 channel (give 1)", key, n);
        return bsc_node_fail(bsc_node_get(norm, key), BSC_ERR_INVALID,
                             "normalize.%s: %zu values for %d channels (give 1 or %d)", key,
                             n, c->channels, c->channels);
    }
    for (int i = 0; i < c->channels; i++)
        dst[i] = (float)vals[n == 1 ? 0 : i];
    free(vals);
    return BSC_OK;
}

static bsc_status parse_normalize(const bsc_node *map, bsc_dataset_config *c)
{
    const bsc_node *norm = bsc_node_get(map, "normalize");
    bsc_status st;
    if (!norm)
        return BSC_OK;
    if (norm->kind == BSC_NODE_SCALAR) {
        int on = 1;
        st = bsc_node_to_bool(norm, &on);
        if (st != BSC_OK)
            return st;
        if (!on) {
            for (int i = 0; i < c->channels; i++) {
                c->mean[i] = 0.0f;
                c->std[i] = 1.0f;
            }
        }
        return BSC_OK;
    }
    st = bsc_node_check_keys(norm, NORM_KEYS);
    if (st != BSC_OK)
        return st;
    st = parse_norm_list(norm, "mean", -1e6, c, c->mean);
    if (st != BSC_OK)
        return st;
    return parse_norm_list(norm, "std", 1e-12, c, c->std);
}

static bsc_status parse_map(const bsc_node *node, const char *pipeline_dir,
                            bsc_dataset_config *c)
{
    static const float zero[] = {0.0f, 0.0f, 0.0f}, one[] = {1.0f, 1.0f, 1.0f};
    const bsc_node *name_node = bsc_node_get(node, "name");
    const bsc_node *format_node = bsc_node_get(node, "format");
    const bsc_node *dir_node = bsc_node_get(node, "dir");
    char dir[BSC_DATASET_PATH_MAX];
    const char *s = NULL;
    bsc_status st = bsc_node_check_keys(node, MAP_KEYS);
    if (st != BSC_OK)
        return st;
    if (dir_node) {
        st = bsc_node_to_string(dir_node, &s);
        if (st != BSC_OK)
            return st;
        st = resolve_path(dir_node, pipeline_dir, s, dir);
        if (st != BSC_OK)
            return st;
        if (!is_dir(dir))
            return bsc_node_fail(dir_node, BSC_ERR_NOT_FOUND, "dir: '%s' is not a directory",
                                 dir);
    }
    if (name_node && format_node)
        return bsc_node_fail(bsc_node_key(node, "format"), BSC_ERR_INVALID,
                             "give either `name` (a known dataset) or `format`, not both");
    if (name_node) {
        const char *bad = bsc_node_get(node, "train") ? "train" :
                          bsc_node_get(node, "test") ? "test" : NULL;
        if (bad)
            return bsc_node_fail(bsc_node_key(node, bad), BSC_ERR_INVALID,
                                 "`%s` goes with `format: idx`, not with `name`", bad);
        st = bsc_req_string(node, "name", SHORTCUTS, &s);
        if (st != BSC_OK)
            return st;
        st = apply_shortcut(name_node, s, dir_node ? dir : NULL, c);
    } else if (format_node) {
        st = bsc_req_string(node, "format", FORMATS, &s);
        if (st != BSC_OK)
            return st;
        if (strcmp(s, "cifar10") == 0) {
            if (!dir_node)
                return bsc_node_fail(node, BSC_ERR_INVALID,
                                     "format cifar10 needs `dir:` (the directory of "
                                     "data_batch_1.bin .. test_batch.bin)");
            st = apply_shortcut(format_node, "cifar10", dir, c);
        } else {
            if (dir_node)
                return bsc_node_fail(bsc_node_key(node, "dir"), BSC_ERR_INVALID,
                                     "`dir` is not used with format idx (give train: and "
                                     "test: paths)");
            snprintf(c->name, sizeof c->name, "idx");
            c->format = BSC_DATA_IDX;
            c->channels = 1;
            set_norm(c, zero, one);
            st = parse_idx_split(node, "train", pipeline_dir, c->train_images,
                                 c->train_labels);
            if (st == BSC_OK)
                st = parse_idx_split(node, "test", pipeline_dir, c->test_images,
                                     c->test_labels);
        }
    } else {
        return bsc_node_fail(node, BSC_ERR_INVALID,
                             "dataset needs `name` (fashion-mnist, mnist, cifar10) or "
                             "`format` (idx, cifar10)");
    }
    if (st != BSC_OK)
        return st;
    if ((st = parse_normalize(node, c)) != BSC_OK ||
        /* 0: all, as the analyses' subset options and the README have it */
        (st = bsc_opt_long(node, "subset", 0, 0, LONG_MAX, &c->subset)) != BSC_OK ||
        (st = bsc_opt_long(node, "test_subset", 0, 0, LONG_MAX, &c->test_subset)) != BSC_OK ||
        (st = bsc_opt_long(node, "validation", 0, 1, LONG_MAX, &c->validation)) != BSC_OK)
        return st;
    long nc = 10;
    st = bsc_opt_long(node, "n_classes", 10, 1, 256, &nc);
    c->n_classes = (int)nc;
    return st;
}

bsc_status bsc_dataset_config_parse(const bsc_node *node, const char *pipeline_dir,
                                    bsc_dataset_config *out)
{
    memset(out, 0, sizeof *out);
    out->n_classes = 10;
    if (!node)
        return bsc_fail(BSC_ERR_INVALID, "the pipeline has no `dataset:`");
    snprintf(out->where, sizeof out->where, "%s:%d:%d", node->file ? node->file : "?",
             node->line, node->col);
    if (node->kind == BSC_NODE_SCALAR) {
        const char *name = NULL;
        bsc_status st = bsc_node_to_string(node, &name);
        if (st != BSC_OK)
            return st;
        for (int i = 0; SHORTCUTS[i]; i++)
            if (strcmp(name, SHORTCUTS[i]) == 0)
                return apply_shortcut(node, name, NULL, out);
        const char *close = bsc_closest_name(name, SHORTCUTS, 3);
        if (close)
            return bsc_node_fail(node, BSC_ERR_INVALID,
                                 "unknown dataset '%s' (did you mean '%s'?)", name, close);
        return bsc_node_fail(node, BSC_ERR_INVALID,
                             "unknown dataset '%s' (known: fashion-mnist, mnist, cifar10; or "
                             "a mapping with format: idx|cifar10)",
                             name);
    }
    if (node->kind == BSC_NODE_MAP)
        return parse_map(node, pipeline_dir, out);
    return bsc_node_fail(node, BSC_ERR_INVALID,
                         "dataset must be a name (fashion-mnist, mnist, cifar10) or a mapping");
}
