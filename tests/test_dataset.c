/* Datasets: IDX and CIFAR-10 readers (good files and every kind of bad one),
 * the `dataset:` config, loading with splits and normalization, the
 * fashion-mnist shortcut, and batch gathering on the device. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batchscope/dataset.h"
#include "batchscope/rng.h"
#include "testutil.h"

static int setup(void **state)
{
    (void)state;
    return tu_scratch_setup("dataset");
}

static const char *write_bytes(const char *name, const uint8_t *data, size_t len)
{
    const char *path = tu_scratch_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static uint32_t crc32_of(const uint8_t *d, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= d[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* A gzip file of `data` built by hand from stored (uncompressed) deflate
 * blocks, so the test needs no zlib of its own; zlib reads it like any .gz. */
static const char *write_gz(const char *name, const uint8_t *data, size_t len)
{
    size_t blocks = len / 65535 + 1, cap = 10 + len + blocks * 5 + 8, at = 0;
    uint8_t *b = malloc(cap);
    static const uint8_t hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    assert_non_null(b);
    memcpy(b, hdr, 10);
    at = 10;
    size_t done = 0;
    do {
        size_t m = len - done < 65535 ? len - done : 65535;
        b[at++] = done + m == len ? 1 : 0;      /* BFINAL, BTYPE 00 */
        b[at++] = (uint8_t)m;
        b[at++] = (uint8_t)(m >> 8);
        b[at++] = (uint8_t)~m;
        b[at++] = (uint8_t)(~m >> 8);
        memcpy(b + at, data + done, m);
        at += m;
        done += m;
    } while (done < len);
    uint32_t crc = crc32_of(data, len);
    for (int i = 0; i < 4; i++)
        b[at++] = (uint8_t)(crc >> (8 * i));
    for (int i = 0; i < 4; i++)
        b[at++] = (uint8_t)((uint32_t)len >> (8 * i));
    const char *p = write_bytes(name, b, at);
    free(b);
    return p;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX image file image of n rows x cols images; pixel (i, k) = (i * 31 +
 * k) & 255. *len gets its size; the buffer is malloc'ed. */
static uint8_t *idx_images(uint32_t n, uint32_t rows, uint32_t cols, size_t *len)
{
    size_t body = (size_t)n * rows * cols;
    uint8_t *b = malloc(16 + body);
    assert_non_null(b);
    put_be32(b, 0x00000803);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < (size_t)rows * cols; k++)
            b[16 + i * rows * cols + k] = (uint8_t)((i * 31 + k) & 255);
    *len = 16 + body;
    return b;
}

/* Labels i % 10. */
static uint8_t *idx_labels(uint32_t n, size_t *len)
{
    uint8_t *b = malloc(8 + n);
    assert_non_null(b);
    put_be32(b, 0x00000801);
    put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++)
        b[8 + i] = (uint8_t)(i % 10);
    *len = 8 + n;
    return b;
}

/* The call failed with `code` and a message holding every given fragment. */
static void assert_error(bsc_status st, bsc_status code, const char *frag1, const char *frag2)
{
    const char *msg = bsc_last_error();
    if (st != code)
        fail_msg("expected %s, got %s: %s", bsc_status_name(code), bsc_status_name(st), msg);
    if (frag1 && !strstr(msg, frag1))
        fail_msg("message lacks '%s': %s", frag1, msg);
    if (frag2 && !strstr(msg, frag2))
        fail_msg("message lacks '%s': %s", frag2, msg);
}

/* ---- IDX */

static void test_idx_good_plain_and_gz(void **state)
{
    size_t len;
    uint8_t *img = idx_images(5, 3, 4, &len);
    (void)state;
    const char *paths[2] = {write_bytes("good-images", img, len),
                            write_gz("good-images.gz", img, len)};
    for (int i = 0; i < 2; i++) {
        bsc_raw_images r;
        assert_int_equal(bsc_idx_read_images(paths[i], &r), BSC_OK);
        assert_int_equal(r.n, 5);
        assert_int_equal(r.channels, 1);
        assert_int_equal(r.rows, 3);
        assert_int_equal(r.cols, 4);
        assert_memory_equal(r.pixels, img + 16, 60);
        bsc_raw_images_free(&r);
    }
    free(img);

    uint8_t *lab = idx_labels(5, &len);
    const char *lp = write_gz("good-labels.gz", lab, len);
    int32_t *labels = NULL;
    size_t n = 0;
    assert_int_equal(bsc_idx_read_labels(lp, 10, &labels, &n), BSC_OK);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(labels[i], i % 10);
    free(labels);
    free(lab);
}

static void test_idx_wrong_magic(void **state)
{
    size_t len;
    uint8_t *lab = idx_labels(4, &len);
    bsc_raw_images r;
    (void)state;
    /* A label file where images are expected. */
    const char *p = write_bytes("labels-as-images", lab, len);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p, "wrong magic 0x00000801 at offset 0");
    int32_t *labels = NULL;
    size_t n;
    uint8_t junk[16] = {0x12, 0x34, 0x56, 0x78};
    p = write_gz("junk.gz", junk, sizeof junk);
    assert_error(bsc_idx_read_labels(p, 10, &labels, &n), BSC_ERR_DATA, p, "offset 0");
    assert_null(labels);
    free(lab);
}

static void test_idx_truncated_header(void **state)
{
    uint8_t hdr[8];
    bsc_raw_images r;
    (void)state;
    put_be32(hdr, 0x00000803);
    put_be32(hdr + 4, 10);
    const char *p = write_bytes("short-header", hdr, 8);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p,
                 "expected 12 bytes at offset 4, file ends at 8");
    p = write_bytes("tiny", hdr, 2);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p,
                 "expected 4 bytes at offset 0, file ends at 2");
    p = write_bytes("empty", hdr, 0);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p, "file ends at 0");
}

static void test_idx_truncated_data(void **state)
{
    size_t len;
    uint8_t *img = idx_images(3, 2, 2, &len);
    bsc_raw_images r;
    (void)state;
    const char *p = write_bytes("short-data", img, 16 + 7);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p,
                 "expected 12 bytes at offset 16, file ends at 23");
    p = write_gz("short-data.gz", img, 16 + 7);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p,
                 "expected 12 bytes at offset 16, file ends at 23");
    uint8_t *lab = idx_labels(9, &len);
    int32_t *labels = NULL;
    size_t n;
    p = write_bytes("short-labels", lab, len - 2);
    assert_error(bsc_idx_read_labels(p, 10, &labels, &n), BSC_ERR_DATA, p,
                 "expected 9 bytes at offset 8, file ends at 15");
    /* Extra bytes after the data are as wrong as missing ones. */
    uint8_t *longer = malloc(len + 3);
    memcpy(longer, lab, len);
    memset(longer + len, 0, 3);
    p = write_bytes("long-labels", longer, len + 3);
    assert_error(bsc_idx_read_labels(p, 10, &labels, &n), BSC_ERR_DATA, p,
                 "unexpected data at offset 17");
    free(longer);
    free(lab);
    free(img);
}

/* A header claiming 2^32-1 images of 28x28 is refused before any allocation,
 * and one claiming a plausible but untrue count fails at the truncation. */
static void test_idx_absurd_dims(void **state)
{
    uint8_t hdr[16];
    bsc_raw_images r;
    (void)state;
    put_be32(hdr, 0x00000803);
    put_be32(hdr + 4, 0xffffffffu);
    put_be32(hdr + 8, 28);
    put_be32(hdr + 12, 28);
    const char *p = write_bytes("huge", hdr, 16);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p, "offset 4");
    put_be32(hdr + 4, 60000);
    put_be32(hdr + 8, 0xffffffffu);
    put_be32(hdr + 12, 0xffffffffu);
    p = write_bytes("overflow", hdr, 16);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p, "2^31");
    put_be32(hdr + 8, 0);
    p = write_bytes("zero-rows", hdr, 16);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p, "offset 8");
    put_be32(hdr + 4, 2000000);
    put_be32(hdr + 8, 32);
    put_be32(hdr + 12, 32);
    p = write_bytes("liar", hdr, 16);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p, "file ends at 16");
}

static void test_idx_label_out_of_range(void **state)
{
    size_t len;
    uint8_t *lab = idx_labels(6, &len);
    int32_t *labels = NULL;
    size_t n;
    (void)state;
    lab[8 + 3] = 12;
    const char *p = write_gz("bad-label.gz", lab, len);
    assert_error(bsc_idx_read_labels(p, 10, &labels, &n), BSC_ERR_DATA, p,
                 "label 12 at offset 11");
    assert_null(labels);
    /* With n_classes 3, label 4 at index 4 (offset 12) is the first too big. */
    lab[8 + 3] = 0;
    p = write_bytes("few-classes", lab, len);
    assert_error(bsc_idx_read_labels(p, 3, &labels, &n), BSC_ERR_DATA, p,
                 "label 4 at offset 12");
    free(lab);
}

static void test_idx_corrupt_gzip(void **state)
{
    size_t len, glen;
    uint8_t *img = idx_images(50, 8, 8, &len);
    bsc_raw_images r;
    (void)state;
    const char *good = write_gz("src.gz", img, len);
    uint8_t *gz = (uint8_t *)tu_read(good, &glen);
    assert_non_null(gz);
    /* Wrong CRC in the trailer: the data decompresses, the check fails. */
    gz[glen - 8] ^= 0xff;
    const char *p = write_bytes("crc.gz", gz, glen);
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_DATA, p, "gzip error at byte");
    /* Issue 12: the path once (zlib prefixes its own message with it) and
     * where the damage is in the file -- the trailer, not "offset 0". */
    const char *first = strstr(bsc_last_error(), p);
    assert_non_null(first);
    assert_null(strstr(first + 1, p));
    long byte = -1;
    const char *b = strstr(bsc_last_error(), "gzip error at byte ");
    if (b)
        byte = strtol(b + 19, NULL, 10);
    if (!(byte > (long)glen / 2 && byte <= (long)glen))
        fail_msg("%s (the file has %zu bytes)", bsc_last_error(), glen);
    gz[glen - 8] ^= 0xff;
    /* Cut in the middle of the compressed stream. */
    p = write_bytes("cut.gz", gz, glen / 2);
    bsc_status st = bsc_idx_read_images(p, &r);
    assert_int_equal(st, BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), p));
    assert_non_null(strstr(bsc_last_error(), "gzip error at byte"));
    /* Garbage after a valid gzip magic. */
    memset(gz + 10, 0xff, glen - 10);
    p = write_bytes("garbage.gz", gz, glen);
    st = bsc_idx_read_images(p, &r);
    assert_int_equal(st, BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), p));
    assert_non_null(strstr(bsc_last_error(), "gzip error at byte"));
    free(gz);
    free(img);
}

static void test_idx_missing_file(void **state)
{
    bsc_raw_images r;
    (void)state;
    const char *p = tu_scratch_path("nope");
    assert_error(bsc_idx_read_images(p, &r), BSC_ERR_NOT_FOUND, p, NULL);
}

/* ---- CIFAR-10 */

/* A batch of n records; record i has label (i + first) % 10 and pixel k =
 * (i + k) & 255. */
static const char *write_cifar(const char *name, size_t n, size_t first, size_t extra)
{
    size_t len = n * 3073 + extra;
    uint8_t *b = calloc(len ? len : 1, 1);
    for (size_t i = 0; i < n; i++) {
        b[i * 3073] = (uint8_t)((i + first) % 10);
        for (size_t k = 0; k < 3072; k++)
            b[i * 3073 + 1 + k] = (uint8_t)((i + first + k) & 255);
    }
    const char *p = write_bytes(name, b, len);
    free(b);
    return p;
}

static void test_cifar_reader(void **state)
{
    bsc_raw_images r;
    int32_t *labels = NULL;
    (void)state;
    const char *paths[2] = {write_cifar("c1.bin", 2, 0, 0), write_cifar("c2.bin", 3, 2, 0)};
    assert_int_equal(bsc_cifar_read(paths, 2, 10, &r, &labels), BSC_OK);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.channels, 3);
    assert_int_equal(r.rows, 32);
    assert_int_equal(labels[4], 4);
    assert_int_equal(r.pixels[3 * 3072 + 5], (1 + 2 + 5) & 255);
    bsc_raw_images_free(&r);
    free(labels);

    const char *bad = write_cifar("odd.bin", 2, 0, 5);
    assert_error(bsc_cifar_read(&bad, 1, 10, &r, &labels), BSC_ERR_DATA, bad, "size 6151");
    bad = write_cifar("empty.bin", 0, 0, 0);
    assert_error(bsc_cifar_read(&bad, 1, 10, &r, &labels), BSC_ERR_DATA, bad, "size 0");
    /* Record 1 has label 1 >= n_classes 1: offset 3073. */
    bad = write_cifar("label.bin", 2, 0, 0);
    assert_error(bsc_cifar_read(&bad, 1, 1, &r, &labels), BSC_ERR_DATA, bad,
                 "label 1 at offset 3073");
    assert_null(labels);
}

/* ---- config */

static const char *write_text(const char *name, const char *text)
{
    return write_bytes(name, (const uint8_t *)text, strlen(text));
}

/* Parses `yaml` (whose top level has a `dataset:` key) through a file. */
static bsc_status parse_cfg(const char *yaml, bsc_dataset_config *cfg, bsc_node **root)
{
    const char *path = write_text("pipeline.yaml", yaml);
    bsc_status st = bsc_node_parse_file(path, root);
    if (st != BSC_OK)
        fail_msg("YAML parse failed: %s", bsc_last_error());
    return bsc_dataset_config_parse(bsc_node_get(*root, "dataset"), tu_scratch, cfg);
}

static void cfg_fails(const char *yaml, bsc_status code, const char *where, const char *frag)
{
    bsc_dataset_config cfg;
    bsc_node *root = NULL;
    char expect[600];
    snprintf(expect, sizeof expect, "%s:%s", tu_scratch_path("pipeline.yaml"), where);
    assert_error(parse_cfg(yaml, &cfg, &root), code, expect, frag);
    bsc_node_free(root);
}

/* Small custom IDX set: 10 train examples of 2x3, 4 test. */
static void write_small_idx(void)
{
    size_t len;
    uint8_t *b = idx_images(10, 2, 3, &len);
    write_gz("tr-img.gz", b, len);
    free(b);
    b = idx_labels(10, &len);
    write_bytes("tr-lab", b, len);
    free(b);
    b = idx_images(4, 2, 3, &len);
    write_bytes("te-img", b, len);
    free(b);
    b = idx_labels(4, &len);
    write_bytes("te-lab", b, len);
    free(b);
    b = idx_labels(9, &len);
    write_bytes("te-lab9", b, len);
    free(b);
}

static void test_config_errors(void **state)
{
    (void)state;
    write_small_idx();
    setenv("BATCHSCOPE_DATA", tu_scratch, 1);
    cfg_fails("dataset: fashoin-mnist\n", BSC_ERR_INVALID, "1:10:", "fashion-mnist");
    cfg_fails("dataset:\n  format: idx\n  trian: {}\n", BSC_ERR_INVALID, "3:3:", "trian");
    cfg_fails("dataset:\n  format: csv\n", BSC_ERR_INVALID, "2:11:", NULL);
    cfg_fails("dataset:\n  name: mnist\n  format: idx\n", BSC_ERR_INVALID, "3:3:", "not both");
    cfg_fails("dataset:\n  format: idx\n  train: {images: tr-img.gz, labels: tr-lab}\n"
              "  test: {images: missing, labels: te-lab}\n",
              BSC_ERR_NOT_FOUND, "4:18:", "missing");
    cfg_fails("dataset:\n  format: idx\n  train: {images: tr-img.gz, labels: tr-lab}\n",
              BSC_ERR_INVALID, "2:3:", "test");
    cfg_fails("dataset:\n  format: idx\n  train: {images: tr-img.gz, labels: tr-lab}\n"
              "  test: {images: te-img, labels: te-lab}\n  normalize: {mean: [0.1, 0.2]}\n",
              BSC_ERR_INVALID, "5:21:", "2 values for 1 channel");
    cfg_fails("dataset:\n  format: idx\n  train: {images: tr-img.gz, labels: tr-lab}\n"
              "  test: {images: te-img, labels: te-lab}\n  normalize: {std: 0}\n",
              BSC_ERR_INVALID, "5:", NULL);
    cfg_fails("dataset:\n  format: idx\n  train: {images: tr-img.gz, labels: tr-lab}\n"
              "  test: {images: te-img, labels: te-lab}\n  n_classes: 300\n",
              BSC_ERR_INVALID, "5:14:", NULL);
    cfg_fails("dataset:\n  format: cifar10\n", BSC_ERR_INVALID, "2:3:", "dir");
    /* Shortcuts name the files and the fix. */
    cfg_fails("dataset: mnist\n", BSC_ERR_NOT_FOUND, "1:10:", "BATCHSCOPE_DATA");
    cfg_fails("dataset: mnist\n", BSC_ERR_NOT_FOUND, "1:10:", "train-images-idx3-ubyte");
    cfg_fails("dataset: cifar10\n", BSC_ERR_NOT_FOUND, "1:10:", "data_batch_1.bin");
    unsetenv("BATCHSCOPE_DATA");
    cfg_fails("dataset: cifar10\n", BSC_ERR_NOT_FOUND, "1:10:", "set BATCHSCOPE_DATA");
}

static const char *SMALL_IDX =
    "dataset:\n  format: idx\n  train: {images: tr-img.gz, labels: tr-lab}\n"
    "  test: {images: te-img, labels: te-lab}\n";

static void test_load_custom_idx(void **state)
{
    char yaml[1024];
    bsc_dataset_config cfg;
    bsc_dataset *ds = NULL;
    bsc_node *root = NULL;
    (void)state;
    write_small_idx();
    snprintf(yaml, sizeof yaml, "%s  normalize: {mean: 0.5, std: 0.25}\n"
             "  validation: 3\n  subset: 4\n  test_subset: 2\n", SMALL_IDX);
    if (parse_cfg(yaml, &cfg, &root) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    assert_int_equal(bsc_dataset_load(&cfg, &ds), BSC_OK);
    assert_int_equal(ds->sample.ndim, 3);
    assert_int_equal(ds->sample.dim[0], 1);
    assert_int_equal(ds->sample.dim[1], 2);
    assert_int_equal(ds->sample.dim[2], 3);
    assert_int_equal(ds->row_len, 6);
    assert_int_equal(ds->train.n, 4);
    assert_int_equal(ds->validation.n, 3);
    assert_int_equal(ds->test.n, 2);
    /* Validation is the last 3 of the file: examples 7, 8, 9. */
    assert_int_equal(ds->validation.labels[0], 7);
    assert_int_equal(ds->train.labels[3], 3);
    /* Example 8, pixel 5: (8*31+5)&255 = 253. */
    float want = (253.0f / 255.0f - 0.5f) / 0.25f;
    assert_true(fabsf(ds->validation.images[1 * 6 + 5] - want) < 1e-6f);
    bsc_dataset_free(ds);
    bsc_node_free(root);

    /* Subsets bigger than the data: error at the dataset node. */
    snprintf(yaml, sizeof yaml, "%s  validation: 3\n  subset: 8\n", SMALL_IDX);
    assert_int_equal(parse_cfg(yaml, &cfg, &root), BSC_OK);
    assert_error(bsc_dataset_load(&cfg, &ds), BSC_ERR_INVALID, "pipeline.yaml:2:3", "subset");
    assert_null(ds);
    bsc_node_free(root);

    /* Defaults: no normalization for a custom IDX set. */
    assert_int_equal(parse_cfg(SMALL_IDX, &cfg, &root), BSC_OK);
    assert_int_equal(bsc_dataset_load(&cfg, &ds), BSC_OK);
    assert_int_equal(ds->train.n, 10);
    assert_int_equal(ds->validation.n, 0);
    assert_true(ds->train.images[1] == 1.0f / 255.0f);
    bsc_dataset_free(ds);
    bsc_node_free(root);
}

static void test_load_count_mismatch(void **state)
{
    bsc_dataset_config cfg;
    bsc_dataset *ds = NULL;
    bsc_node *root = NULL;
    (void)state;
    write_small_idx();
    assert_int_equal(parse_cfg("dataset:\n  format: idx\n"
                               "  train: {images: tr-img.gz, labels: tr-lab}\n"
                               "  test: {images: te-img, labels: te-lab9}\n",
                               &cfg, &root),
                     BSC_OK);
    assert_error(bsc_dataset_load(&cfg, &ds), BSC_ERR_DATA, tu_scratch_path("te-lab9"),
                 "offset 4");
    assert_non_null(strstr(bsc_last_error(), tu_scratch_path("te-img")));
    assert_non_null(strstr(bsc_last_error(), "4 images"));
    bsc_node_free(root);
}

static void test_load_cifar(void **state)
{
    char dir[512], yaml[1024], name[64];
    bsc_dataset_config cfg;
    bsc_dataset *ds = NULL;
    bsc_node *root = NULL;
    (void)state;
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", tu_scratch);
    mkdir(dir, 0777);
    for (int i = 1; i <= 5; i++) {
        snprintf(name, sizeof name, "cifar-10-batches-bin/data_batch_%d.bin", i);
        write_cifar(name, 2, (size_t)(i - 1) * 2, 0);
    }
    write_cifar("cifar-10-batches-bin/test_batch.bin", 3, 0, 0);
    setenv("BATCHSCOPE_DATA", tu_scratch, 1);
    snprintf(yaml, sizeof yaml, "dataset: cifar10\n");
    if (parse_cfg(yaml, &cfg, &root) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    unsetenv("BATCHSCOPE_DATA");
    assert_int_equal(bsc_dataset_load(&cfg, &ds), BSC_OK);
    assert_int_equal(ds->train.n, 10);
    assert_int_equal(ds->test.n, 3);
    assert_int_equal(ds->sample.dim[0], 3);
    assert_int_equal(ds->row_len, 3072);
    assert_int_equal(ds->train.labels[9], 9);
    /* Example 7 (file 4, record 1), channel 2 (B), pixel 0: k = 2048. */
    float v = (float)((7 + 2048) & 255);
    float want = (v / 255.0f - 0.4465f) / 0.2616f;
    assert_true(fabsf(ds->train.images[7 * 3072 + 2048] - want) < 1e-5f);
    bsc_dataset_free(ds);
    bsc_node_free(root);

    /* The same through format + dir, with per-channel normalization given. */
    snprintf(yaml, sizeof yaml,
             "dataset:\n  format: cifar10\n  dir: cifar-10-batches-bin\n"
             "  normalize: {mean: [0, 0, 0], std: [1, 1, 0.5]}\n");
    assert_int_equal(parse_cfg(yaml, &cfg, &root), BSC_OK);
    assert_int_equal(bsc_dataset_load(&cfg, &ds), BSC_OK);
    assert_true(fabsf(ds->train.images[7 * 3072 + 2048] - 2.0f * v / 255.0f) < 1e-6f);
    bsc_dataset_free(ds);
    bsc_node_free(root);
}

static void test_fashion_mnist_shortcut(void **state)
{
    bsc_dataset_config cfg;
    bsc_dataset *ds = NULL;
    bsc_node *root = NULL;
    (void)state;
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0)
        skip();
    unsetenv("BATCHSCOPE_DATA");
    if (parse_cfg("dataset: fashion-mnist\n", &cfg, &root) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    if (bsc_dataset_load(&cfg, &ds) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    assert_int_equal(ds->train.n, 60000);
    assert_int_equal(ds->test.n, 10000);
    assert_int_equal(ds->sample.dim[0], 1);
    assert_int_equal(ds->sample.dim[1], 28);
    assert_int_equal(ds->sample.dim[2], 28);
    /* The default normalization leaves the training pixels near mean 0, std 1. */
    double sum = 0, sq = 0;
    size_t n = ds->train.n * ds->row_len;
    for (size_t i = 0; i < n; i++) {
        sum += ds->train.images[i];
        sq += (double)ds->train.images[i] * ds->train.images[i];
    }
    assert_true(fabs(sum / n) < 0.01);
    assert_true(fabs(sqrt(sq / n - (sum / n) * (sum / n)) - 1.0) < 0.01);
    bsc_dataset_free(ds);
    bsc_node_free(root);
}

/* ---- device */

static void test_gather_on_device(void **state)
{
    bsc_context *ctx = NULL;
    bsc_dataset_config cfg;
    bsc_dataset *ds = NULL;
    bsc_device_dataset dd;
    bsc_node *root = NULL;
    bsc_tensor perm_t = {0}, x = {0}, y = {0};
    uint32_t perm[10];
    (void)state;
    bsc_status st = tu_context_open(&ctx);
    if (st == BSC_ERR_NO_PLATFORM)
        skip();
    if (st != BSC_OK)
        fail_msg("%s", bsc_last_error());
    write_small_idx();
    assert_int_equal(parse_cfg(SMALL_IDX, &cfg, &root), BSC_OK);
    assert_int_equal(bsc_dataset_load(&cfg, &ds), BSC_OK);
    if (bsc_dataset_upload(ctx, ds, &dd) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    assert_int_equal(dd.train.n, 10);
    assert_int_equal(dd.row_len, 6);

    assert_int_equal(bsc_rng_permutation(3, BSC_RNG_SHUFFLE, 0, perm, 10), BSC_OK);
    perm[9] = 1000;     /* out of range: zero row, label -1 */
    int64_t pn = 10, xd[2] = {5, 6}, yn = 5;
    bsc_shape ps = bsc_shape_make(1, &pn), xs = bsc_shape_make(2, xd), ys = bsc_shape_make(1, &yn);
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_I32, &ps, &perm_t), BSC_OK);
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &xs, &x), BSC_OK);
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_I32, &ys, &y), BSC_OK);
    assert_int_equal(bsc_tensor_write(ctx, &perm_t, perm), BSC_OK);

    /* Both paths where the GEMMs run on the host BLAS (host_task.h:
     * bsc_host_elementwise): the host task, then the kernel. */
    for (size_t run = 0; run < 4; run++) {
        size_t start = run % 2 ? 5 : 0;
        setenv("BATCHSCOPE_HOST_ELEMENTWISE", run < 2 ? "1" : "0", 1);
        float hx[30];
        int32_t hy[5];
        st = bsc_dataset_gather(ctx, &dd.train, &perm_t, start, 5, &x, &y);
        if (st != BSC_OK)
            fail_msg("%s", bsc_last_error());
        assert_int_equal(bsc_tensor_read(ctx, &x, hx), BSC_OK);
        assert_int_equal(bsc_tensor_read(ctx, &y, hy), BSC_OK);
        for (size_t r = 0; r < 5; r++) {
            uint32_t src = perm[start + r];
            if (src >= 10) {
                assert_int_equal(hy[r], -1);
                for (int k = 0; k < 6; k++)
                    assert_true(hx[r * 6 + k] == 0.0f);
                continue;
            }
            assert_int_equal(hy[r], ds->train.labels[src]);
            assert_memory_equal(&hx[r * 6], &ds->train.images[src * 6], 6 * sizeof(float));
        }
    }
    /* 6001 rows, some past the split: enough for the host task to split
     * them unevenly over the host threads; both paths give the same bytes
     * as the examples themselves. */
    {
        enum { BIG = 6001 };
        static uint32_t bp[BIG];
        static float bx[2][BIG * 6];
        static int32_t by[2][BIG];
        for (size_t i = 0; i < BIG; i++)
            bp[i] = (uint32_t)((i * 7) % 11);   /* 10: past the split */
        int64_t bn = BIG, bxd[2] = {BIG, 6};
        bsc_shape bps = bsc_shape_make(1, &bn), bxs = bsc_shape_make(2, bxd);
        bsc_tensor bpt, bxt, byt;
        assert_int_equal(bsc_tensor_alloc(ctx, BSC_I32, &bps, &bpt), BSC_OK);
        assert_int_equal(bsc_tensor_alloc(ctx, BSC_F32, &bxs, &bxt), BSC_OK);
        assert_int_equal(bsc_tensor_alloc(ctx, BSC_I32, &bps, &byt), BSC_OK);
        assert_int_equal(bsc_tensor_write(ctx, &bpt, bp), BSC_OK);
        for (int k = 0; k < 2; k++) {
            setenv("BATCHSCOPE_HOST_ELEMENTWISE", k ? "0" : "1", 1);
            if (bsc_dataset_gather(ctx, &dd.train, &bpt, 0, BIG, &bxt, &byt) != BSC_OK)
                fail_msg("%s", bsc_last_error());
            assert_int_equal(bsc_tensor_read(ctx, &bxt, bx[k]), BSC_OK);
            assert_int_equal(bsc_tensor_read(ctx, &byt, by[k]), BSC_OK);
        }
        for (size_t r = 0; r < BIG; r++) {
            if (bp[r] >= 10) {
                assert_int_equal(by[0][r], -1);
                for (int c = 0; c < 6; c++)
                    assert_true(bx[0][r * 6 + c] == 0.0f);
            } else {
                assert_int_equal(by[0][r], ds->train.labels[bp[r]]);
                assert_memory_equal(&bx[0][r * 6], &ds->train.images[bp[r] * 6],
                                    6 * sizeof(float));
            }
        }
        assert_memory_equal(bx[0], bx[1], sizeof bx[0]);
        assert_memory_equal(by[0], by[1], sizeof by[0]);
        bsc_tensor_free(&bpt);
        bsc_tensor_free(&bxt);
        bsc_tensor_free(&byt);
    }
    unsetenv("BATCHSCOPE_HOST_ELEMENTWISE");
    /* Asking past the end of perm is a usage error, not a launch. */
    assert_int_equal(bsc_dataset_gather(ctx, &dd.train, &perm_t, 8, 5, &x, &y), BSC_ERR_USAGE);

    bsc_tensor_free(&perm_t);
    bsc_tensor_free(&x);
    bsc_tensor_free(&y);
    bsc_device_dataset_free(&dd);
    bsc_dataset_free(ds);
    bsc_node_free(root);
    bsc_context_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_good_plain_and_gz),
        cmocka_unit_test(test_idx_wrong_magic),
        cmocka_unit_test(test_idx_truncated_header),
        cmocka_unit_test(test_idx_truncated_data),
        cmocka_unit_test(test_idx_absurd_dims),
        cmocka_unit_test(test_idx_label_out_of_range),
        cmocka_unit_test(test_idx_corrupt_gzip),
        cmocka_unit_test(test_idx_missing_file),
        cmocka_unit_test(test_cifar_reader),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_load_custom_idx),
        cmocka_unit_test(test_load_count_mismatch),
        cmocka_unit_test(test_load_cifar),
        cmocka_unit_test(test_fashion_mnist_shortcut),
        cmocka_unit_test(test_gather_on_device),
    };
    return cmocka_run_group_tests(tests, setup, tu_scratch_teardown);
}
