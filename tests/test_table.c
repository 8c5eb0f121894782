/* Tidy tables (runtime/core/table.c): cells kept in one block, row after
 * row, through growth in both directions -- rows past every doubling and
 * columns added after rows exist (the block is laid out again) -- and the
 * CSV and packed forms of what was stored. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_csv_and_pack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
