/* IDX files (the MNIST family): a big-endian header, then unsigned bytes.
 *
 * Everything goes through zlib's gzread, which reads gzip and plain files
 * alike, so "foo-ubyte" and "foo-ubyte.gz" are the same to the caller.
 * Offsets in messages are offsets into the uncompressed stream, which is what
 * the IDX header describes.
 */
#include "batchscope/imagefiles.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
/* More elements than this is not a dataset we can index with the int32
 * offsets the kernels use. */
#define IDX_MAX_ELEMENTS (1ull << 31)
/* gzread takes an unsigned int; stay far below it. */
#define IDX_CHUNK (1u << 24)

typedef struct idx_reader {
    gzFile f;
    const char *path;
    uint64_t offset;            /* bytes of the uncompressed stream consumed */
} idx_reader;

static bsc_status reader_open(idx_reader *r, const char *path)
{
    r->path = path;
    r->offset = 0;
    errno = 0;
    r->f = gzopen(path, "rb");
    if (!r->f)
        return bsc_fail(errno == ENOENT ? BSC_ERR_NOT_FOUND : BSC_ERR_IO,
                        "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory in zlib");
    return BSC_OK;
}

static void reader_close(idx_reader *r)
{
    if (r->f)
        gzclose(r->f);
    r->f = NULL;
}

/* zlib's own words for the failure, or the system's when it was an I/O error. */
static bsc_status gz_fail(idx_reader *r)
{
    int err = Z_OK;
    const char *msg = gzerror(r->f, &err);
    if (err == Z_ERRNO)
        return bsc_fail(BSC_ERR_IO, "%s: read error at offset %llu: %s", r->path,
                        (unsigned long long)r->offset, strerror(errno));
    /* zlib puts the path in front of its message: once is enough. */
    size_t pl = strlen(r->path);
    if (msg && strncmp(msg, r->path, pl) == 0 && msg[pl] == ':' && msg[pl + 1] == ' ')
        msg += pl + 2;
    /* zlib inflates ahead of what a read returns, so the data offset only
     * bounds the damage from below; where it stopped in the file is the
     * position that locates it. */
    return bsc_fail(BSC_ERR_DATA, "%s: gzip error at byte %lld of the file (after %llu bytes "
                    "of data): %s", r->path, (long long)gzoffset(r->f),
                    (unsigned long long)r->offset, msg ? msg : "unknown");
}

/* Reads up to len bytes; *got < len only at the end of the data. A damaged
 * or cut-off gzip stream is an error, not an early end. */
static bsc_status read_some(idx_reader *r, uint8_t *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        int n;
        if (want > IDX_CHUNK)
            want = IDX_CHUNK;
        n = gzread(r->f, buf + *got, (unsigned)want);
        if (n < 0)
            return gz_fail(r);
        if (n == 0) {
            int err = Z_OK;
            gzerror(r->f, &err);
            /* Z_BUF_ERROR: the compressed stream ended mid-way (truncated .gz). */
            if (err != Z_OK && err != Z_STREAM_END)
                return gz_fail(r);
            break;
        }
        *got += (size_t)n;
        r->offset += (uint64_t)n;
    }
    return BSC_OK;
}

static bsc_status read_exact(idx_reader *r, uint8_t *buf, size_t len, const char *what)
{
    uint64_t at = r->offset;
    size_t got = 0;
    bsc_status st = read_some(r, buf, len, &got);
    if (st != BSC_OK)
        return st;
    if (got < len)
        return bsc_fail(BSC_ERR_DATA,
                        "%s: truncated %s: expected %zu bytes at offset %llu, file ends at %llu",
                        r->path, what, len, (unsigned long long)at,
                        (unsigned long long)r->offset);
    return BSC_OK;
}

/* Reads `len` bytes into a buffer that grows with what actually arrives, so
 * a header that claims gigabytes on a small file fails at the truncation
 * instead of at a giant allocation. */
static bsc_status read_body(idx_reader *r, size_t len, const char *what, uint8_t **out)
{
    uint64_t at = r->offset;
    size_t cap = len < IDX_CHUNK ? len : IDX_CHUNK;
    size_t have = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    bsc_status st = BSC_OK;
    if (!buf)
        return bsc_fail(BSC_ERR_NOMEM, "%s: out of memory for %zu bytes", r->path, cap);
    while (have < len) {
        size_t got = 0;
        if (have == cap) {
            size_t ncap = cap * 2 < len ? cap * 2 : len;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                st = bsc_fail(BSC_ERR_NOMEM, "%s: out of memory for %zu bytes", r->path,
                              ncap);
                goto cleanup;
            }
            buf = nb;
            cap = ncap;
        }
        st = read_some(r, buf + have, cap - have, &got);
        if (st != BSC_OK)
            goto cleanup;
        /* A short read means the data ended before the header's count. */
        if (got < cap - have) {
            st = bsc_fail(BSC_ERR_DATA,
                          "%s: truncated %s: expected %zu bytes at offset %llu, "
                          "file ends at %llu",
                          r->path, what, len, (unsigned long long)at,
                          (unsigned long long)r->offset);
            goto cleanup;
        }
        have += got;
    }
    *out = buf;
    buf = NULL;
cleanup:
    free(buf);
    return st;
}

/* The data must end where the header says; extra bytes mean the header and
 * the file disagree (or the file is not what its name claims). Reading the
 * end also makes zlib check the gzip trailer's CRC. */
static bsc_status expect_end(idx_reader *r, const char *what)
{
    uint8_t extra;
    size_t got = 0;
    uint64_t at = r->offset;
    bsc_status st = read_some(r, &extra, 1, &got);
    if (st != BSC_OK)
        return st;
    if (got)
        return bsc_fail(BSC_ERR_DATA,
                        "%s: unexpected data at offset %llu: the header's %s end there",
                        r->path, (unsigned long long)at, what);
    return BSC_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *magic_hint(uint32_t magic)
{
    if (magic == IDX_IMAGES_MAGIC)
        return " (an IDX image file)";
    if (magic == IDX_LABELS_MAGIC)
        return " (an IDX label file)";
    if ((magic >> 16) == 0x1f8b)
        return " (gzip data inside gzip?)";
    return "";
}

static bsc_status check_magic(idx_reader *r, const uint8_t *hdr, uint32_t want,
                              const char *kind)
{
    uint32_t magic = be32(hdr);
    if (magic != want)
        return bsc_fail(BSC_ERR_DATA,
                        "%s: wrong magic 0x%08x at offset 0%s: expected 0x%08x (IDX %s)",
                        r->path, magic, magic_hint(magic), want, kind);
    return BSC_OK;
}

bsc_status bsc_idx_read_images(const char *path, bsc_raw_images *out)
{
    idx_reader r = {NULL, path, 0};
    uint8_t hdr[16];
    uint32_t n, rows, cols;
    uint64_t total;
    uint8_t *pixels = NULL;
    bsc_status st;

    memset(out, 0, sizeof *out);
    st = reader_open(&r, path);
    if (st != BSC_OK)
        return st;
    st = read_exact(&r, hdr, 4, "header");
    if (st != BSC_OK)
        goto cleanup;
    st = check_magic(&r, hdr, IDX_IMAGES_MAGIC, "images of unsigned bytes, 3 dimensions");
    if (st != BSC_OK)
        goto cleanup;
    st = read_exact(&r, hdr + 4, 12, "header");
    if (st != BSC_OK)
        goto cleanup;
    n = be32(hdr + 4);
    rows = be32(hdr + 8);
    cols = be32(hdr + 12);
    if (rows == 0 || cols == 0) {
        st = bsc_fail(BSC_ERR_DATA, "%s: image size %ux%u at offset 8 has a zero dimension",
                      path, rows, cols);
        goto cleanup;
    }
    /* rows * cols < 2^64 always; the check before multiplying by n keeps the
     * product from wrapping. */
    total = (uint64_t)rows * cols;
    if (total > IDX_MAX_ELEMENTS || (n && total * n > IDX_MAX_ELEMENTS)) {
        st = bsc_fail(BSC_ERR_DATA,
                      "%s: header at offset 4 claims %u images of %ux%u, more than "
                      "2^31 pixels in all",
                      path, n, rows, cols);
        goto cleanup;
    }
    total *= n;
    st = read_body(&r, (size_t)total, "image data", &pixels);
    if (st != BSC_OK)
        goto cleanup;
    st = expect_end(&r, "images");
    if (st != BSC_OK)
        goto cleanup;
    out->pixels = pixels;
    out->n = n;
    out->channels = 1;
    out->rows = (int)rows;
    out->cols = (int)cols;
    pixels = NULL;
cleanup:
    free(pixels);
    reader_close(&r);
    return st;
}

bsc_status bsc_idx_read_labels(const char *path, int n_classes, int32_t **labels, size_t *n)
{
    idx_reader r = {NULL, path, 0};
    uint8_t hdr[8];
    uint32_t count;
    uint8_t *raw = NULL;
    int32_t *lab = NULL;
    bsc_status st;

    *labels = NULL;
    *n = 0;
    st = reader_open(&r, path);
    if (st != BSC_OK)
        return st;
    st = read_exact(&r, hdr, 4, "header");
    if (st != BSC_OK)
        goto cleanup;
    st = check_magic(&r, hdr, IDX_LABELS_MAGIC, "labels of unsigned bytes, 1 dimension");
    if (st != BSC_OK)
        goto cleanup;
    st = read_exact(&r, hdr + 4, 4, "header");
    if (st != BSC_OK)
        goto cleanup;
    count = be32(hdr + 4);
    if ((uint64_t)count > IDX_MAX_ELEMENTS) {
        st = bsc_fail(BSC_ERR_DATA, "%s: header at offset 4 claims %u labels, more than 2^31",
                      path, count);
        goto cleanup;
    }
    st = read_body(&r, count, "label data", &raw);
    if (st != BSC_OK)
        goto cleanup;
    st = expect_end(&r, "labels");
    if (st != BSC_OK)
        goto cleanup;
    lab = malloc((count ? count : 1) * sizeof *lab);
    if (!lab) {
        st = bsc_fail(BSC_ERR_NOMEM, "%s: out of memory for %u labels", path, count);
        goto cleanup;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (raw[i] >= n_classes) {
            st = bsc_fail(BSC_ERR_DATA,
                          "%s: label %u at offset %llu is out of range (n_classes %d)", path,
                          raw[i], 8ull + i, n_classes);
            goto cleanup;
        }
        lab[i] = raw[i];
    }
    *labels = lab;
    *n = count;
    lab = NULL;
cleanup:
    free(raw);
    free(lab);
    reader_close(&r);
    return st;
}
