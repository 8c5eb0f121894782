/* Units of a study and their completion records (scaleout_internal.h).
 *
 * A training run's record is its run.json, written last. An analysis'
 * records live in OUT/units/:
 *   a<k>-<type>.done          analysis k ran whole and its files are in
 *                             place (the file lists them)
 *   a<k>-<type>/<u>.unit      part u of analysis k (unit ops): its result
 *                             bytes, merged on rank 0 once all are there
 * Each begins with the signature of the finished runs the analysis saw, so
 * that a record from other runs (one that failed then, say) is stale and
 * its unit runs again. A unit either has its record or runs again: no
 * value in a result file stands for "not computed". Records are written
 * atomically by rank 0 (or the one process), so --resume continues a study
 * with any number of ranks. */
#include "scaleout_internal.h"

#include "batchscope/fsutil.h"
#include "batchscope/plugin_call.h"
#include "batchscope/results.h"

#include <stdlib.h>
#include <string.h>

#define UNITS_DIR "units"
#define RECORD_MAGIC "batchscope unit record 1"

void bsc_unit_name(const study *st, const bsc_unit *u, size_t n_parts, char *buf, size_t len)
{
    switch (u->kind) {
    case UNIT_TRAIN:
        snprintf(buf, len, "run %s", st->p->training.runs[u->index].name);
        break;
    case UNIT_DP:
        snprintf(buf, len, "run %s (data parallel)", st->p->training.runs[u->index].name);
        break;
    case UNIT_ANALYSIS:
        snprintf(buf, len, "analysis %zu (%s)", u->index + 1, st->ana[u->index].type->name);
        break;
    default:
        snprintf(buf, len, "analysis %zu (%s) unit %zu/%zu", u->index + 1,
                 st->ana[u->index].type->name, u->part + 1, n_parts);
        break;
    }
}

const bsc_analysis_ops *bsc_units_ops(const study *st, size_t k)
{
    const bsc_analysis_ops *a = st->ana_ops[k];
    /* The registry's copy is full size: ops a plugin lacks read as NULL. */
    return a->plan && a->run_unit && a->merge && a->finish ? a : NULL;
}

char *bsc_units_runs_signature(const study *st, const bsc_study *sv)
{
    (void)st;
    size_t len = 8;
    for (size_t i = 0; i < sv->n_runs; i++)
        len += strlen(sv->runs[i]->name) + strlen(sv->runs[i]->status) + 2;
    char *sig = malloc(len);
    if (!sig)
        return NULL;
    strcpy(sig, "runs");
    for (size_t i = 0; i < sv->n_runs; i++) {
        strcat(sig, i ? "," : " ");
        strcat(sig, sv->runs[i]->name);
        strcat(sig, ":");
        strcat(sig, sv->runs[i]->status);
    }
    return sig;
}

static char *record_path(const study *st, size_t k, size_t part)
{
    const char *type = st->ana[k].type->name;
    if (part == (size_t)-1)
        return bsc_strdup_printf("%s/" UNITS_DIR "/a%zu-%s.done", st->out, k + 1, type);
    return bsc_strdup_printf("%s/" UNITS_DIR "/a%zu-%s/%zu.unit", st->out, k + 1, type, part);
}

bsc_status bsc_units_record_read(const study *st, size_t k, size_t part, size_t n_parts,
                                 const char *sig, int *have, void **data, size_t *len)
{
    char *path = record_path(st, k, part), *text = NULL;
    size_t n = 0;
    *have = 0;
    if (data)
        *data = NULL;
    if (!path)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (!bsc_path_exists(path) || bsc_read_file(path, &text, &n) != BSC_OK) {
        free(path);
        return BSC_OK;
    }
    bsc_rbuf r = {(const unsigned char *)text, n, 0, 0};
    const char *magic = bsc_get_str(&r), *rsig = bsc_get_str(&r);
    uint64_t rparts = bsc_get_u64(&r), rpart = bsc_get_u64(&r);
    size_t blen = 0;
    const void *blob = bsc_get_bytes(&r, &blen);
    bsc_status s = BSC_OK;
    /* A record of another version, other runs or another plan is not this
     * unit's: it runs again and its record is replaced. */
    if (!r.bad && !strcmp(magic, RECORD_MAGIC) && !strcmp(rsig, sig) &&
        rparts == (uint64_t)n_parts && rpart == (uint64_t)part) {
        *have = 1;
        if (data) {
            *data = malloc(blen ? blen : 1);
            if (!*data)
                s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
            else
                memcpy(*data, blob, blen);
            *len = blen;
        }
    }
    free(text);
    free(path);
    return s;
}

bsc_status bsc_units_record_write(const study *st, size_t k, size_t part, size_t n_parts,
                                  const char *sig, const void *data, size_t len)
{
    char *path = record_path(st, k, part);
    char *dir = path ? strdup(path) : NULL;
    bsc_wbuf b = {0};
    bsc_status s = dir ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK) {
        *strrchr(dir, '/') = '\0';
        s = bsc_mkdir_p(dir);
    }
    bsc_put_str(&b, RECORD_MAGIC);
    bsc_put_str(&b, sig);
    bsc_put_u64(&b, n_parts);
    bsc_put_u64(&b, part);
    bsc_put_bytes(&b, data, data ? len : 0);
    if (s == BSC_OK && (s = bsc_wbuf_status(&b)) == BSC_OK)
        s = bsc_write_file_atomic(path, b.data, b.len);
    bsc_wbuf_free(&b);
    free(path);
    free(dir);
    return s;
}

bsc_status bsc_units_merge_finish(study *st, size_t k, const bsc_study *sv, size_t n_parts,
                                  const char *sig)
{
    const bsc_analysis_ops *a = bsc_units_ops(st, k);
    const bsc_type *t = st->ana[k].type;
    void *self = st->ana[k].self;
    bsc_status s = BSC_OK;
    for (size_t u = 0; s == BSC_OK && u < n_parts; u++) {
        void *data = NULL;
        size_t len = 0;
        int have = 0;
        s = bsc_units_record_read(st, k, u, n_parts, sig, &have, &data, &len);
        if (s == BSC_OK && !have)
            s = bsc_fail(BSC_ERR_INTERNAL, "analysis %s: unit %zu of %zu has no record",
                         t->name, u + 1, n_parts);
        if (s == BSC_OK)
            BSC_PLUGIN_CALL(t, "merge", s = a->merge(self, sv, u, data, len));
        free(data);
    }
    if (s == BSC_OK)
        BSC_PLUGIN_CALL(t, "finish", s = a->finish(self, sv));
    return s;
}

bsc_status bsc_units_run_one(study *st, const bsc_unit *u, size_t n_parts, const bsc_study *sv,
                             const char *sig)
{
    size_t k = u->index;
    const bsc_type *t = st->ana[k].type;
    void *self = st->ana[k].self;
    bsc_status s;
    if (u->kind == UNIT_ANALYSIS) {
        BSC_PLUGIN_CALL(t, "run", s = st->ana_ops[k]->run(self, sv));
        if (s == BSC_OK)
            s = bsc_units_record_write(st, k, (size_t)-1, 0, sig, NULL, 0);
        return s;
    }
    const bsc_analysis_ops *a = bsc_units_ops(st, k);
    void *data = NULL;
    size_t len = 0;
    BSC_PLUGIN_CALL(t, "run_unit", s = a->run_unit(self, sv, u->part, &data, &len));
    if (s == BSC_OK)
        s = bsc_units_record_write(st, k, u->part, n_parts, sig, data, len);
    free(data);
    return s;
}

bsc_status bsc_units_analysis(study *st, size_t k, const bsc_study *sv)
{
    const bsc_analysis_ops *a = bsc_units_ops(st, k);
    char *sig = bsc_units_runs_signature(st, sv);
    int resume = st->opt->resume_dir != NULL, have = 0;
    size_t n = 0, kept = 0;
    bsc_status s = sig ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && !a) {
        bsc_unit whole = {UNIT_ANALYSIS, k, 0};
        if (resume && (s = bsc_units_record_read(st, k, (size_t)-1, 0, sig, &have, NULL,
                                                 NULL)) == BSC_OK && have) {
            if (!st->opt->quiet)
                fprintf(st->log, "  already done: kept\n");
        } else if (s == BSC_OK) {
            s = bsc_units_run_one(st, &whole, 0, sv, sig);
        }
        free(sig);
        return s;
    }
    if (s == BSC_OK)
        BSC_PLUGIN_CALL(st->ana[k].type, "plan", s = a->plan(st->ana[k].self, sv, &n));
    for (size_t u = 0; s == BSC_OK && u < n; u++) {
        bsc_unit part = {UNIT_PART, k, u};
        if (resume && (s = bsc_units_record_read(st, k, u, n, sig, &have, NULL, NULL)) ==
                          BSC_OK && have) {
            kept++;
            continue;
        }
        if (s == BSC_OK)
            s = bsc_units_run_one(st, &part, n, sv, sig);
    }
    if (s == BSC_OK && kept && !st->opt->quiet)
        fprintf(st->log, "  %zu of %zu units already done: kept\n", kept, n);
    if (s == BSC_OK)
        s = bsc_units_merge_finish(st, k, sv, n, sig);
    free(sig);
    return s;
}
