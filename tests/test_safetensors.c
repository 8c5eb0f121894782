/* safetensors: round trips, metadata, files laid out by hand as other
 * writers do, and corrupt headers that must fail cleanly with an offset. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batchscope/safetensors.h"
#include "testutil.h"

static int setup(void **state)
{
    (void)state;
    return tu_scratch_setup("safetensors");
}

/* A file with header length `hlen` (as stored), header text `json` and
 * `data_len` data bytes where byte i is i & 255. */
static const char *write_raw(const char *name, uint64_t hlen, const char *json, size_t data_len)
{
    const char *path = tu_scratch_path(name);
    FILE *f = fopen(path, "wb");
    uint8_t len8[8];
    assert_non_null(f);
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)(hlen >> (8 * i));
    assert_int_equal(fwrite(len8, 1, 8, f), 8);
    assert_int_equal(fwrite(json, 1, strlen(json), f), strlen(json));
    for (size_t i = 0; i < data_len; i++)
        fputc((int)(i & 255), f);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *write_st(const char *name, const char *json, size_t data_len)
{
    return write_raw(name, strlen(json), json, data_len);
}

static void test_round_trip(void **state)
{
    float w[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    float b[3] = {7.0f, 8.0f, 9.0f};
    float s = 42.0f;
    bsc_st_entry t[4] = {
        {"0.weight", bsc_shape_make(2, (const int64_t[]){3, 2}), w},
        {"0.bias", bsc_shape_make(1, (const int64_t[]){3}), b},
        {"step", bsc_shape_make(0, NULL), &s},
        {"empty", bsc_shape_make(2, (const int64_t[]){0, 4}), NULL},
    };
    const char *mk[2] = {"format", "note \"quoted\"\n"};
    const char *mv[2] = {"pt", "caf\xc3\xa9 \\ tab\t"};
    const char *path = tu_scratch_path("rt.safetensors");
    bsc_safetensors *f = NULL;
    (void)state;

    if (bsc_safetensors_write(path, t, 4, mk, mv, 2) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    size_t len;
    uint8_t *raw = (uint8_t *)tu_read(path, &len);
    assert_non_null(raw);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | raw[i];
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(raw[8], '{');
    assert_int_equal(len, 8 + hlen + (6 + 3 + 1) * 4);
    /* Little-endian 1.5f = 0x3fc00000 is the first data word. */
    assert_int_equal(raw[8 + hlen + 3], 0x3f);
    assert_int_equal(raw[8 + hlen + 2], 0xc0);
    free(raw);

    if (bsc_safetensors_open(path, &f) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    assert_int_equal(bsc_safetensors_count(f), 4);
    const bsc_st_info *i0 = bsc_safetensors_at(f, 0);
    assert_string_equal(i0->name, "0.weight");
    assert_string_equal(i0->dtype, "F32");
    assert_int_equal(i0->shape.ndim, 2);
    assert_int_equal(i0->shape.dim[0], 3);
    assert_int_equal(i0->shape.dim[1], 2);
    assert_int_equal(i0->numel, 6);
    assert_null(bsc_safetensors_at(f, 4));
    assert_int_equal(bsc_safetensors_find(f, "step")->shape.ndim, 0);
    assert_int_equal(bsc_safetensors_find(f, "empty")->numel, 0);

    float got[6];
    assert_int_equal(bsc_safetensors_read(f, "0.weight", got, 6), BSC_OK);
    assert_memory_equal(got, w, sizeof w);
    assert_int_equal(bsc_safetensors_read(f, "0.bias", got, 6), BSC_OK);
    assert_memory_equal(got, b, sizeof b);
    assert_int_equal(bsc_safetensors_read(f, "step", got, 1), BSC_OK);
    assert_true(got[0] == 42.0f);
    assert_int_equal(bsc_safetensors_read(f, "empty", got, 0), BSC_OK);
    assert_int_equal(bsc_safetensors_read(f, "0.weight", got, 5), BSC_ERR_INVALID);
    assert_int_equal(bsc_safetensors_read(f, "nope", got, 6), BSC_ERR_NOT_FOUND);
    assert_non_null(strstr(bsc_last_error(), "nope"));

    assert_int_equal(bsc_safetensors_meta_count(f), 2);
    assert_string_equal(bsc_safetensors_meta(f, "format"), "pt");
    assert_string_equal(bsc_safetensors_meta(f, "note \"quoted\"\n"), mv[1]);
    assert_null(bsc_safetensors_meta(f, "missing"));
    const char *k, *v;
    bsc_safetensors_meta_at(f, 1, &k, &v);
    assert_string_equal(k, mk[1]);
    bsc_safetensors_close(f);

    /* No metadata, no tensors: still a valid file. */
    assert_int_equal(bsc_safetensors_write(path, NULL, 0, NULL, NULL, 0), BSC_OK);
    assert_int_equal(bsc_safetensors_open(path, &f), BSC_OK);
    assert_int_equal(bsc_safetensors_count(f), 0);
    assert_int_equal(bsc_safetensors_meta_count(f), 0);
    bsc_safetensors_close(f);
}

/* A failed write leaves the old file alone and no temporary behind. */
static void test_write_failures(void **state)
{
    float x = 1.0f;
    bsc_st_entry dup[2] = {{"a", bsc_shape_make(0, NULL), &x},
                           {"a", bsc_shape_make(0, NULL), &x}};
    bsc_st_entry meta[1] = {{"__metadata__", bsc_shape_make(0, NULL), &x}};
    const char *path = tu_scratch_path("keep.safetensors");
    bsc_safetensors *f = NULL;
    (void)state;
    assert_int_equal(bsc_safetensors_write(path, dup, 1, NULL, NULL, 0), BSC_OK);
    assert_int_equal(bsc_safetensors_write(path, dup, 2, NULL, NULL, 0), BSC_ERR_INVALID);
    assert_non_null(strstr(bsc_last_error(), "twice"));
    assert_int_equal(bsc_safetensors_write(path, meta, 1, NULL, NULL, 0), BSC_ERR_INVALID);
    assert_int_equal(bsc_safetensors_open(path, &f), BSC_OK);
    assert_int_equal(bsc_safetensors_count(f), 1);
    bsc_safetensors_close(f);
    assert_int_not_equal(bsc_safetensors_write(tu_scratch_path("no/such/dir/x.safetensors"), dup, 1,
                                               NULL, NULL, 0),
                         BSC_OK);
    /* No temporary file was left behind. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | grep -c tmp) -eq 0", tu_scratch);
    assert_int_equal(system(cmd), 0);
}

/* Laid out by hand the way other writers do it: metadata first, offsets not
 * in header order, escapes and white space, a dtype we only validate. */
static void test_foreign_layout(void **state)
{
    const char *json =
        "{\n  \"__metadata__\": {\"format\": \"pt\", \"k\\u00e9y\": \"v\\ud83d\\ude00\"},\n"
        "  \"b\\\"q\": {\"shape\": [1, 2], \"dtype\": \"F32\", \"data_offsets\": [16, 24]},\n"
        "  \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]},\n"
        "  \"ids\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}\n}   ";
    const char *path = write_st("foreign.safetensors", json, 24);
    bsc_safetensors *f = NULL;
    float got[2];
    (void)state;
    if (bsc_safetensors_open(path, &f) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    assert_int_equal(bsc_safetensors_count(f), 3);
    assert_string_equal(bsc_safetensors_at(f, 0)->name, "b\"q");
    assert_string_equal(bsc_safetensors_meta(f, "k\xc3\xa9y"), "v\xf0\x9f\x98\x80");
    assert_int_equal(bsc_safetensors_read(f, "a", got, 2), BSC_OK);
    /* Bytes 8..15 are 8, 9, ... 15 as little-endian words. */
    uint32_t w0 = 8 | 9u << 8 | 10u << 16 | 11u << 24, bits;
    memcpy(&bits, &got[0], 4);
    assert_int_equal(bits, w0);
    assert_int_equal(bsc_safetensors_read(f, "ids", got, 2), BSC_ERR_UNSUPPORTED);
    assert_non_null(strstr(bsc_last_error(), "'ids'"));
    assert_non_null(strstr(bsc_last_error(), "I64"));
    bsc_safetensors_close(f);
}

/* Opening must fail with BSC_ERR_DATA and a message naming the path, the
 * offset fragment and the problem fragment. */
static void open_fails(const char *path, const char *frag1, const char *frag2)
{
    bsc_safetensors *f = NULL;
    bsc_status st = bsc_safetensors_open(path, &f);
    const char *msg = bsc_last_error();
    if (st != BSC_ERR_DATA)
        fail_msg("%s: expected ERR_DATA, got %s: %s", path, bsc_status_name(st), msg);
    assert_null(f);
    if (!strstr(msg, path))
        fail_msg("message lacks the path: %s", msg);
    if (frag1 && !strstr(msg, frag1))
        fail_msg("message lacks '%s': %s", frag1, msg);
    if (frag2 && !strstr(msg, frag2))
        fail_msg("message lacks '%s': %s", frag2, msg);
}

#define T(name, off) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" off "}"

static void test_corrupt_headers(void **state)
{
    (void)state;
    /* The length prefix itself. */
    const char *five = tu_scratch_path("five");
    FILE *ff = fopen(five, "wb");
    assert_int_equal(fwrite("\x02\0\0\0\0", 1, 5, ff), 5);
    fclose(ff);
    open_fails(five, "offset 0", "too short");
    open_fails(write_raw("zero", 0, "", 0), "offset 0", "header length 0");
    open_fails(write_raw("beyond", 1000, "{}", 8), "offset 0", "header length 1000");
    open_fails(write_raw("huge", UINT64_MAX, "{}", 8), "offset 0", "header length");
    /* JSON syntax, with the offset of the fault (header starts at 8). */
    open_fails(write_st("notobj", "[]", 0), "offset 8", "expected the header object");
    open_fails(write_st("open", "{ ", 0), "offset 10", "header ends");
    open_fails(write_st("trailing", "{} x", 0), "offset 11", "after the header");
    open_fails(write_st("comma", "{" T("a", "[0,8]") ",}", 8), "offset", NULL);
    open_fails(write_st("unterm", "{\"abc", 0), "offset 9", "unterminated");
    open_fails(write_st("escape", "{\"a\\x\":{}}", 0), "offset 11", "invalid escape");
    open_fails(write_st("surrogate", "{\"\\ud800\":{}}", 0), "offset 10", "surrogate");
    open_fails(write_st("nul", "{\"\\u0000\":{}}", 0), "offset 10", "\\u0000");
    open_fails(write_st("ctrl", "{\"a\tb\":{}}", 0), "offset 11", "control");
    open_fails(write_st("float",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8),
               "offset 37", "fraction");
    open_fails(write_st("neg",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8),
               "offset 37", "non-negative");
    open_fails(write_st("zero",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8),
               "offset 37", "leading zero");
    open_fails(write_st("big",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
                        "\"data_offsets\":[0,8]}}", 8),
               "offset 37", "too large");
    open_fails(write_st("unknownkey",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
                        "\"x\":1}}", 8),
               "offset", "unknown key");
    open_fails(write_st("dupkey",
                        "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],"
                        "\"data_offsets\":[0,8]}}", 8),
               "offset 28", "duplicate");
    open_fails(write_st("missing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8),
               "offset 9", "missing data_offsets");
    open_fails(write_st("dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],"
                                  "\"data_offsets\":[0,8]}}", 8),
               "offset 22", "unknown dtype 'F33'");
    open_fails(write_st("dupname", "{" T("a", "[0,8]") "," T("a", "[8,16]") "}", 16),
               "offset", "twice");
    open_fails(write_st("metaval", "{\"__metadata__\":{\"k\":1}}", 0), "offset 29",
               "must be a string");
    open_fails(write_st("threeoff", "{" T("a", "[0,8,8]") "}", 8), "offset", "more than 2");
    open_fails(write_st("rank7", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],"
                                  "\"data_offsets\":[0,4]}}", 4),
               "offset", "more than 6");
    /* Offsets: out of range, reversed, wrong size, overlap, hole, leftovers. */
    open_fails(write_st("range", "{" T("a", "[0,8]") "}", 4), "offset 55", "out of range");
    open_fails(write_st("reversed", "{" T("a", "[8,0]") "}", 8), "offset 55", "out of range");
    open_fails(write_st("size", "{" T("a", "[0,12]") "}", 12), "offset 55",
               "span 12 bytes but F32 2 elements need 8");
    open_fails(write_st("overlap", "{" T("a", "[0,8]") "," T("b", "[4,12]") "}", 12),
               "offset", "overlap");
    open_fails(write_st("hole", "{" T("a", "[0,8]") "," T("b", "[12,20]") "}", 20),
               "offset", "hole");
    open_fails(write_st("leftover", "{" T("a", "[0,8]") "}", 12), "offset", "cover 8");
    open_fails(write_st("notzero", "{" T("a", "[4,12]") "}", 12), "offset", "hole");

    bsc_safetensors *f = NULL;
    assert_int_equal(bsc_safetensors_open(tu_scratch_path("does-not-exist"), &f), BSC_ERR_NOT_FOUND);
}

/* Every prefix of a valid file fails cleanly (no crash, no success). */
static void test_every_truncation(void **state)
{
    float w[4] = {1, 2, 3, 4};
    bsc_st_entry t[2] = {{"w", bsc_shape_make(2, (const int64_t[]){2, 1}), w},
                         {"v", bsc_shape_make(1, (const int64_t[]){2}), w + 2}};
    const char *mk[1] = {"m"}, *mv[1] = {"x"};
    const char *path = tu_scratch_path("full.safetensors");
    size_t len;
    (void)state;
    assert_int_equal(bsc_safetensors_write(path, t, 2, mk, mv, 1), BSC_OK);
    uint8_t *raw = (uint8_t *)tu_read(path, &len);
    assert_non_null(raw);
    const char *cut = tu_scratch_path("cut.safetensors");
    for (size_t n = 0; n < len; n++) {
        FILE *f = fopen(cut, "wb");
        bsc_safetensors *h = NULL;
        assert_int_equal(fwrite(raw, 1, n, f), n);
        fclose(f);
        assert_int_equal(bsc_safetensors_open(cut, &h), BSC_ERR_DATA);
        assert_null(h);
    }
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_write_failures),
        cmocka_unit_test(test_foreign_layout),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_every_truncation),
    };
    return cmocka_run_group_tests(tests, setup, tu_scratch_teardown);
}
