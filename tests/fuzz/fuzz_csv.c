/* Fuzz target: the CSV table reader (every result table and the report's
 * input), and a round trip through the writer: what it writes reads back
 * with the same shape. */
#include "fuzz_input.h"

#include "batchscope/table.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bsc_table *t = NULL;
    if (bsc_table_read_csv(fuzz_file(0, data, size), &t) != BSC_OK)
        return 0;
    size_t rows = bsc_table_n_rows(t), cols = bsc_table_n_cols(t);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            volatile double v = bsc_table_get(t, r, c);
            (void)v;
            (void)bsc_table_get_str(t, r, c);
        }
    for (size_t c = 0; c < cols; c++)
        if (bsc_table_find(t, bsc_table_col_name(t, c)) != (long)c)
            abort();
    const char *out = fuzz_tmp_path("table.csv");
    bsc_table *back = NULL;
    if (bsc_table_write_csv(t, out) == BSC_OK && bsc_table_read_csv(out, &back) == BSC_OK &&
        rows > 0 && (bsc_table_n_rows(back) != rows || bsc_table_n_cols(back) != cols))
        abort();
    bsc_table_free(back);
    bsc_table_free(t);
    return 0;
}
