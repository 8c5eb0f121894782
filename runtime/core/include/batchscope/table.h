/* batchscope: tidy result tables written as CSV.
 *
 * A table has named columns (in order of first use) and rows of cells that
 * are numbers or short strings. Observers add their columns to the current
 * epoch's row with bsc_metrics_set(); the engine writes the table to CSV
 * atomically (temporary file + rename) after each epoch, and the observers
 * their growing logs with bsc_table_write_csv_more.
 * Numbers are written with %.9g (enough to round-trip float32); NaN as "nan".
 */
#ifndef BATCHSCOPE_TABLE_H
#define BATCHSCOPE_TABLE_H

#include "batchscope/api.h"
#include <stddef.h>
#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_table bsc_table;

typedef struct bsc_metrics_row {
    bsc_table *table;
    size_t row;
} bsc_metrics_row;

BSC_API bsc_status bsc_table_new(bsc_table **out);
BSC_API void bsc_table_free(bsc_table *t);
/* Declares a column (keeps the order even before any value is set). */
BSC_API bsc_status bsc_table_column(bsc_table *t, const char *name);
/* Appends an empty row. */
BSC_API bsc_status bsc_table_add_row(bsc_table *t, bsc_metrics_row *row);
BSC_API size_t bsc_table_n_rows(const bsc_table *t);
BSC_API size_t bsc_table_n_cols(const bsc_table *t);
BSC_API const char *bsc_table_col_name(const bsc_table *t, size_t c);
/* Index of a column, or -1. */
BSC_API long bsc_table_find(const bsc_table *t, const char *name);
/* Cell value as a number (NaN when empty or a string). */
BSC_API double bsc_table_get(const bsc_table *t, size_t row, size_t col);
BSC_API const char *bsc_table_get_str(const bsc_table *t, size_t row, size_t col);

/* Sets a cell of the row, adding the column when new. */
BSC_API bsc_status bsc_metrics_set(bsc_metrics_row *row, const char *column, double value);
/* The same for a float (a value the device used, such as a step's learning
 * rate): written as the shortest decimal that reads back as that float, so
 * 0.01f is "0.01" as the double 0.01 is, not "0.00999999978". */
BSC_API bsc_status bsc_metrics_set_float(bsc_metrics_row *row, const char *column, float value);
BSC_API bsc_status bsc_metrics_set_str(bsc_metrics_row *row, const char *column, const char *value);

/* Writes the table as CSV to path atomically; empty cells stay empty. */
BSC_API bsc_status bsc_table_write_csv(const bsc_table *t, const char *path);
/* What a file written by bsc_table_write_csv_more holds: the table's rows
 * and columns then, and its size in bytes. Zeroed before the first call. */
typedef struct bsc_csv_mark {
    size_t rows, cols;
    long long bytes;
} bsc_csv_mark;
/* Writes the table to path as bsc_table_write_csv does (atomically), for a
 * table that grows by rows and is written again and again (an observer's,
 * after every epoch): when path still holds what *mark says (its size),
 * and the table has the same columns and at least those rows, the file's
 * bytes are copied as they are and only the new rows formatted; otherwise
 * the whole table is formatted. Either way *mark then describes the file.
 * A mark belongs to one table and one path, and the rows it counts must
 * not change afterwards (a table that only grows by rows, or by columns,
 * which rewrite the whole).
 * Formatting whole tables every epoch made an epoch's end grow with the
 * epochs: about 0.5 us a row, 75000 rows after 10 epochs of update_norms
 * at batch 32 on Fashion-MNIST. */
BSC_API bsc_status bsc_table_write_csv_more(const bsc_table *t, const char *path,
                                            bsc_csv_mark *mark);
/* Reads a CSV written by this module (header + rows; numbers or strings).
 * A row with the wrong number of fields, or a header naming a column twice,
 * is BSC_ERR_DATA naming path:line. Linear in the file's size. */
BSC_API bsc_status bsc_table_read_csv(const char *path, bsc_table **out);

/* Rows [from, n_rows) of t as bytes, to rebuild them elsewhere
 * (bsc_table_unpack): the column names once, then each cell's kind and its
 * number (the double's 8 bytes, in this machine's byte order) or string, so
 * that numbers come back bit for bit (CSV keeps only %.9g). What an
 * analysis' unit of work returns to the process that writes its files.
 * *out malloc'ed. */
BSC_API bsc_status bsc_table_pack(const bsc_table *t, size_t from, void **out, size_t *len);
/* Appends the rows packed in data[0..len) to t, each cell under its
 * column's name (columns t lacks are added at its end). *used: the bytes
 * read (several packed tables may follow one another; NULL: they must fill
 * len). Truncated or malformed bytes: BSC_ERR_DATA at their offset, t
 * unchanged but for rows already appended. */
BSC_API bsc_status bsc_table_unpack(bsc_table *t, const void *data, size_t len, size_t *used);

#ifdef __cplusplus
}
#endif
#endif
