/* Tidy tables (runtime/core/table.c): cells kept in one block, row after
 * row, through growth in both directions -- rows past every doubling and
 * columns added after rows exist (the block is laid out again) -- the
 * CSV and packed forms of what was stored, and the CSV of a table that
 * grows, written again and again (bsc_table_write_csv_more). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "batchscope/fsutil.h"
#include "batchscope/table.h"

/* Row r's value in column c of the table below. */
static double value(size_t r, size_t c)
{
    return (double)r * 100.0 + (double)c + 0.25;
}

/* `rows` rows of column c0 first; then 40 more columns (the block is
 * widened twice past its 16 cells a row) filled for every row; every
 * 7th row also gets a string in "note". */
static bsc_table *build(size_t rows)
{
    bsc_table *t = NULL;
    CHECK(bsc_table_new(&t));
    for (size_t r = 0; r < rows; r++) {
        bsc_metrics_row row;
        CHECK(bsc_table_add_row(t, &row));
        CHECK(bsc_metrics_set(&row, "c0", value(r, 0)));
    }
    char name[32];
    for (size_t c = 1; c <= 40; c++) {
        snprintf(name, sizeof name, "c%zu", c);
        for (size_t r = 0; r < rows; r++) {
            bsc_metrics_row row = {t, r};
            CHECK(bsc_metrics_set(&row, name, value(r, c)));
        }
    }
    for (size_t r = 0; r < rows; r += 7) {
        bsc_metrics_row row = {t, r};
        snprintf(name, sizeof name, "n%zu", r);
        CHECK(bsc_metrics_set_str(&row, "note", name));
    }
    /* the same columns where no row set them (no rows): declared alone */
    for (size_t c = 0; c <= 40; c++) {
        snprintf(name, sizeof name, "c%zu", c);
        CHECK(bsc_table_column(t, name));
    }
    CHECK(bsc_table_column(t, "note"));
    return t;
}

static void check(const bsc_table *t, size_t rows, const char *what)
{
    assert_int_equal(bsc_table_n_rows(t), rows);
    assert_int_equal(bsc_table_n_cols(t), 42);
    long note = bsc_table_find(t, "note");
    assert_int_equal(note, 41);
    char want[32];
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c <= 40; c++)
            if (bsc_table_get(t, r, c) != value(r, c))
                fail_msg("%s: row %zu column %zu: %g, want %g", what, r, c,
                         bsc_table_get(t, r, c), value(r, c));
        const char *s = bsc_table_get_str(t, r, (size_t)note);
        if (r % 7) {
            assert_null(s);
            assert_true(isnan(bsc_table_get(t, r, (size_t)note)));
        } else {
            snprintf(want, sizeof want, "n%zu", r);
            assert_non_null(s);
            assert_string_equal(s, want);
        }
    }
}

static void test_growth(void **state)
{
    (void)state;
    /* a long table, then smaller ones in the memory it leaves (so a new
     * row that is not cleared shows what was there): past a doubling, on
     * it, one row short of it, 1 and 0 rows */
    static const size_t sizes[] = {20001, 1000, 17, 16, 15, 1, 0, 20001, 300};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        bsc_table *t = build(sizes[i]);
        check(t, sizes[i], "built");
        bsc_table_free(t);
    }
}

static void test_csv_and_pack(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("table");
    char *path = bsc_strdup_printf("%s/t.csv", dir);
    bsc_table *t = build(300), *back = NULL, *unpacked = NULL;
    CHECK(bsc_table_write_csv(t, path));
    CHECK(bsc_table_read_csv(path, &back));
    check(back, 300, "read back");
    void *bytes = NULL;
    size_t len = 0;
    CHECK(bsc_table_pack(t, 0, &bytes, &len));
    CHECK(bsc_table_new(&unpacked));
    CHECK(bsc_table_unpack(unpacked, bytes, len, NULL));
    check(unpacked, 300, "unpacked");
    free(bytes);
    bsc_table_free(t);
    bsc_table_free(back);
    bsc_table_free(unpacked);
    tu_rm_rf(dir);
    free(path);
    free(dir);
}

/* The rows r0 <= r < r1 of a growing log: a step, a number that needs
 * %.9g, a string now and then. */
static void log_rows(bsc_table *t, size_t r0, size_t r1)
{
    for (size_t r = r0; r < r1; r++) {
        bsc_metrics_row row;
        CHECK(bsc_table_add_row(t, &row));
        CHECK(bsc_metrics_set(&row, "step", (double)r));
        CHECK(bsc_metrics_set(&row, "norm", 1.0 / (double)(r + 3)));
        if (r % 5 == 0)
            CHECK(bsc_metrics_set_str(&row, "note", "a,\"b\""));
    }
}

/* path holds exactly what bsc_table_write_csv writes for t. */
static void same_as_whole(const bsc_table *t, const char *path, const char *dir,
                          const char *what)
{
    char *want_path = bsc_strdup_printf("%s/whole.csv", dir);
    CHECK(bsc_table_write_csv(t, want_path));
    size_t n_got = 0, n_want = 0;
    char *got = tu_read(path, &n_got), *want = tu_read(want_path, &n_want);
    if (n_got != n_want || memcmp(got, want, n_got) != 0)
        fail_msg("%s: the file (%zu bytes) is not the whole table's CSV (%zu bytes)", what,
                 n_got, n_want);
    free(got);
    free(want);
    free(want_path);
}

/* bsc_table_write_csv_more: a growing table written again and again
 * appends its new rows, and the file is always what one whole write
 * gives; new columns, another table, a file changed by someone else and a
 * file that cannot be appended to fall back to (or fail like) the whole
 * write, never leaving a file that differs from the table. */
static void test_csv_more(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("table-more");
    char *path = bsc_strdup_printf("%s/log.csv", dir);
    bsc_table *t = NULL;
    CHECK(bsc_table_new(&t));
    CHECK(bsc_table_column(t, "step"));
    CHECK(bsc_table_column(t, "norm"));
    CHECK(bsc_table_column(t, "note"));
    bsc_csv_mark mark = {0};
    /* no rows yet: the header alone */
    CHECK(bsc_table_write_csv_more(t, path, &mark));
    same_as_whole(t, path, dir, "empty");
    size_t rows = 0;
    for (int epoch = 0; epoch < 4; epoch++) {
        log_rows(t, rows, rows + 313);
        rows += 313;
        long long before = mark.bytes;
        CHECK(bsc_table_write_csv_more(t, path, &mark));
        same_as_whole(t, path, dir, "appended");
        assert_int_equal(mark.rows, rows);
        assert_true(mark.bytes > before);
    }
    /* written again with nothing new: unchanged */
    long long size = mark.bytes;
    CHECK(bsc_table_write_csv_more(t, path, &mark));
    assert_int_equal(mark.bytes, size);
    same_as_whole(t, path, dir, "nothing new");
    /* appended, not rewritten: a byte changed in place in the file's
     * first row (same size) stays */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)strlen("step,norm,note\n"), SEEK_SET), 0);
    assert_int_equal(fputc('9', f), '9');
    assert_int_equal(fclose(f), 0);
    log_rows(t, rows, rows + 2);
    rows += 2;
    CHECK(bsc_table_write_csv_more(t, path, &mark));
    size_t n = 0;
    char *text = tu_read(path, &n);
    assert_int_equal(text[strlen("step,norm,note\n")], '9');
    free(text);
    /* a file of another size (someone appended, or truncated it): the
     * whole table again */
    f = fopen(path, "ab");
    assert_non_null(f);
    fputs("junk\n", f);
    fclose(f);
    log_rows(t, rows, rows + 3);
    rows += 3;
    CHECK(bsc_table_write_csv_more(t, path, &mark));
    same_as_whole(t, path, dir, "after someone else's write");
    assert_int_equal(truncate(path, (off_t)(mark.bytes / 2)), 0);
    log_rows(t, rows, rows + 3);
    rows += 3;
    CHECK(bsc_table_write_csv_more(t, path, &mark));
    same_as_whole(t, path, dir, "after someone cut the file short");
    /* a new column: the whole table (a new header) */
    log_rows(t, rows, rows + 1);
    bsc_metrics_row last = {t, rows};
    rows += 1;
    CHECK(bsc_metrics_set(&last, "extra", 7.0));
    CHECK(bsc_table_write_csv_more(t, path, &mark));
    same_as_whole(t, path, dir, "new column");
    assert_int_equal(mark.cols, 4);
    /* another, shorter table with the same mark: the whole of it */
    bsc_table *other = build(20);
    CHECK(bsc_table_write_csv_more(other, path, &mark));
    same_as_whole(other, path, dir, "another table");
    bsc_table_free(other);
    /* the file replaced by a directory: an error that names it, and the
     * next write with a file back in place is whole again */
    assert_int_equal(remove(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    log_rows(t, rows, rows + 1);
    rows += 1;
    bsc_status s = bsc_table_write_csv_more(t, path, &mark);
    assert_int_not_equal(s, BSC_OK);
    assert_non_null(strstr(bsc_last_error(), "log.csv"));
    assert_int_equal(rmdir(path), 0);
    CHECK(bsc_table_write_csv_more(t, path, &mark));
    same_as_whole(t, path, dir, "after a failed write");
    bsc_table *back = NULL;
    CHECK(bsc_table_read_csv(path, &back));
    assert_int_equal(bsc_table_n_rows(back), rows);
    bsc_table_free(back);
    bsc_table_free(t);
    tu_rm_rf(dir);
    free(path);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_csv_and_pack),
        cmocka_unit_test(test_csv_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
