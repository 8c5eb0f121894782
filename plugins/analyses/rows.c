/* Analyses whose results are table rows, one item (a run, an eps, a
 * variant) per unit of work: the unit computes its rows into tables of its
 * own and returns them packed (bsc_table_pack: numbers bit for bit); rank 0
 * appends them in the plan's order, with the rows of the items that were
 * left out in their places, so that one process and many write the same
 * tables. */
#include "analyses.h"

#include "batchscope/table.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void ana_rows_clear(ana_rows *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->slot[i].name);
        free(p->slot[i].why);
        free(p->slot[i].context);
        free(p->slot[i].data);
    }
    free(p->slot);
    p->slot = NULL;
    p->n = p->n_units = 0;
}

static bsc_status add_slot(ana_rows *p, const char *name, double batch_size, ana_slot **out)
{
    ana_slot *sl = realloc(p->slot, (p->n + 1) * sizeof *sl);
    if (!sl)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    p->slot = sl;
    *out = &sl[p->n++];
    memset(*out, 0, sizeof **out);
    (*out)->unit = -1;
    (*out)->batch_size = batch_size;
    (*out)->name = strdup(name);
    return (*out)->name ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
}

bsc_status ana_rows_skip(ana_rows *p, const char *name, double batch_size, const char *why,
                         bsc_status failed)
{
    ana_slot *sl = NULL;
    bsc_status s = add_slot(p, name, batch_size, &sl);
    if (!sl)
        return s;
    if (s == BSC_OK && !(sl->why = strdup(why)))
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    sl->failed = failed;
    return s;
}

bsc_status ana_rows_add(ana_rows *p, const char *name, double batch_size, const char *context,
                        const bsc_run_result *r, size_t a, size_t b)
{
    ana_slot *sl = NULL;
    bsc_status s = add_slot(p, name, batch_size, &sl);
    if (!sl)
        return s;
    if (s == BSC_OK && !(sl->context = strdup(context)))
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    sl->r = r;
    sl->a = a;
    sl->b = b;
    sl->unit = (long)p->n_units++;
    return s;
}

ana_slot *ana_rows_unit(const ana_rows *p, size_t unit)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->slot[i].unit == (long)unit)
            return &p->slot[i];
    return NULL;
}

static void put(unsigned char **at, const void *v, size_t n)
{
    memcpy(*at, v, n);
    *at += n;
}

bsc_status ana_rows_run(const ana_rows *p, size_t unit, ana_rows_fn fn, void *user,
                        void **result, size_t *len)
{
    *result = NULL;
    *len = 0;
    ana_slot *sl = ana_rows_unit(p, unit);
    if (!sl)
        return bsc_fail(BSC_ERR_INVALID, "unit %zu of %zu", unit, p->n_units);
    bsc_table *t[ANA_ROWS_MAX_TABLES] = {NULL};
    void *packed[ANA_ROWS_MAX_TABLES] = {NULL};
    size_t plen[ANA_ROWS_MAX_TABLES] = {0}, total = 0;
    bsc_status s = BSC_OK, us;
    for (size_t k = 0; s == BSC_OK && k < p->n_tables; k++)
        s = bsc_table_new(&t[k]);
    if (s != BSC_OK)
        goto cleanup;
    /* The item's own failure travels in its bytes, as its row will say
     * (the failure policy of ana_for_each_run); an interruption does not. */
    us = fn(user, sl, t);
    if (us == BSC_ERR_INTERRUPTED) {
        s = us;
        goto cleanup;
    }
    const char *msg = "";
    if (us != BSC_OK) {
        bsc_fail_context(us, "%s", sl->context);
        msg = bsc_last_error();
    }
    for (size_t k = 0; us == BSC_OK && s == BSC_OK && k < p->n_tables; k++)
        if ((s = bsc_table_pack(t[k], 0, &packed[k], &plen[k])) == BSC_OK)
            total += plen[k];
    uint32_t st32 = (uint32_t)us, mlen = (uint32_t)strlen(msg);
    unsigned char *b = s == BSC_OK ? malloc(8 + mlen + total) : NULL, *at = b;
    if (s == BSC_OK && !b)
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s != BSC_OK)
        goto cleanup;
    put(&at, &st32, 4);
    put(&at, &mlen, 4);
    put(&at, msg, mlen);
    for (size_t k = 0; us == BSC_OK && k < p->n_tables; k++)
        put(&at, packed[k], plen[k]);
    *result = b;
    *len = (size_t)(at - b);
cleanup:
    for (size_t k = 0; k < p->n_tables; k++) {
        bsc_table_free(t[k]);
        free(packed[k]);
    }
    return s;
}

bsc_status ana_rows_merge(ana_rows *p, size_t unit, const void *data, size_t len)
{
    ana_slot *sl = ana_rows_unit(p, unit);
    if (!sl)
        return bsc_fail(BSC_ERR_INVALID, "unit %zu of %zu", unit, p->n_units);
    if (len < 8)
        return bsc_fail(BSC_ERR_DATA, "%s: a unit result of %zu bytes", sl->context, len);
    free(sl->data);
    if (!(sl->data = malloc(len)))
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    memcpy(sl->data, data, len);
    sl->len = len;
    return BSC_OK;
}

/* A row of table 0 saying why an item has no others. */
static bsc_status why_row(bsc_table *t, const ana_slot *sl, const char *why)
{
    bsc_metrics_row row;
    bsc_status s;
    if ((s = bsc_table_add_row(t, &row)) != BSC_OK ||
        (s = bsc_metrics_set_str(&row, BSC_COL_RUN, sl->name)) != BSC_OK ||
        (s = bsc_metrics_set(&row, BSC_COL_BATCH_SIZE, sl->batch_size)) != BSC_OK)
        return s;
    return bsc_metrics_set_str(&row, BSC_COL_STATUS, why);
}

bsc_status ana_rows_finish(const ana_rows *p, bsc_table *const *tables, bsc_status *failure,
                           char **failure_msg)
{
    bsc_status s = BSC_OK;
    size_t n_failed = 0;
    char *first = NULL;
    *failure = BSC_OK;
    *failure_msg = NULL;
    for (size_t i = 0; s == BSC_OK && i < p->n; i++) {
        const ana_slot *sl = &p->slot[i];
        const char *msg = sl->why;
        char *owned = NULL;
        bsc_status fs = sl->failed;
        if (sl->unit >= 0) {
            uint32_t st32, mlen;
            if (!sl->data)
                return bsc_fail(BSC_ERR_INTERNAL, "%s: unit %ld was not merged", sl->context,
                                sl->unit);
            memcpy(&st32, sl->data, 4);
            memcpy(&mlen, (const char *)sl->data + 4, 4);
            if ((size_t)mlen > sl->len - 8)
                return bsc_fail(BSC_ERR_DATA, "%s: a malformed unit result", sl->context);
            fs = (bsc_status)st32;
            if (fs != BSC_OK) {
                owned = bsc_strdup_printf("failed: %.*s", (int)mlen, (const char *)sl->data + 8);
                if (!owned)
                    return bsc_fail(BSC_ERR_NOMEM, "out of memory");
                msg = owned;
            }
            size_t at = 8 + mlen, used = 0;
            for (size_t k = 0; fs == BSC_OK && s == BSC_OK && k < p->n_tables; k++, at += used)
                s = bsc_table_unpack(tables[k], (const char *)sl->data + at, sl->len - at,
                                     &used);
            if (s == BSC_OK && fs == BSC_OK && at != sl->len)
                s = bsc_fail(BSC_ERR_DATA, "%s: %zu bytes past the tables", sl->context,
                             sl->len - at);
            if (s != BSC_OK)
                s = bsc_fail_context(s, "%s", sl->context);
        }
        if (s == BSC_OK && msg)
            s = why_row(tables[0], sl, msg);
        if (s == BSC_OK && fs != BSC_OK && !n_failed++) {
            *failure = fs;
            /* The message without the row's "failed: ". */
            first = strdup(strncmp(msg, "failed: ", 8) ? msg : msg + 8);
        }
        free(owned);
    }
    if (s == BSC_OK && n_failed)
        *failure_msg = bsc_strdup_printf("%s%s", first ? first : bsc_status_str(*failure),
                                         n_failed > 1 ? " (and more runs failed: see the table)"
                                                      : "");
    free(first);
    return s;
}
