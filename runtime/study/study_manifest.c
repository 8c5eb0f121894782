/* OUT/manifest.json as the study goes, and the same text prepared for a
 * crash: a SIGSEGV handler may not allocate, format or call jansson, so
 * every time the manifest is written its "crashed" variant is rendered too
 * and kept in two parts around the place the reason goes; the handler
 * (bsc_study_mark_crashed) only escapes the reason and writes. */
#include "batchscope/study.h"

#include "batchscope/fsutil.h"
#include "batchscope/records.h"
#include "batchscope/results.h"
#include "batchscope/version.h"
#include "scaleout_internal.h"
#include "study_internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The manifest's parts that exist so far (no device before it opens, ...). */
static bsc_status fill_manifest(const study *st, bsc_manifest *m)
{
    bsc_status s = BSC_OK;
    if (st->ctx) {
        const bsc_device_info *d = &st->ctx->info;
        bsc_manifest_device *md;
        if ((s = bsc_manifest_set_device(m, &md)) != BSC_OK)
            return s;
        md->index = d->index;
        md->platform = d->platform_name;
        md->vendor = d->vendor;
        md->name = d->name;
        md->type = bsc_device_type_name(d->type);
        md->driver_version = d->driver_version;
        md->device_version = d->device_version;
        md->opencl_c_version = d->opencl_c_version;
        md->compute_units = (long)d->compute_units;
        md->global_mem = (int64_t)d->global_mem;
        md->gemm = bsc_gemm_backend_name(bsc_gemm_active(st->ctx));
        md->platform_vendor = d->platform_vendor;
    }
    bsc_manifest_versions *mv;
    if ((s = bsc_manifest_set_versions(m, &mv)) != BSC_OK)
        return s;
    mv->batchscope = st->versions.batchscope;
    mv->git_commit = st->versions.git_commit;
    mv->plugin_abi = st->versions.plugin_abi;
    mv->clblast = st->versions.clblast;
    mv->libyaml = st->versions.libyaml;
    mv->jansson = st->versions.jansson;
    mv->opencl_icd_loader = st->versions.opencl_icd_loader;
    mv->driver = st->ctx ? st->ctx->info.driver_version : NULL;
    /* what `batchscope run --resume OUT` alone applies again */
    for (size_t i = 0; i < st->opt->n_overrides; i++)
        if ((s = bsc_manifest_add_override(m, st->opt->overrides[i])) != BSC_OK)
            return s;
    for (size_t i = 0; st->reg && i < bsc_registry_n_plugins(st->reg); i++) {
        const bsc_plugin_info *pi = bsc_registry_plugin(st->reg, i);
        bsc_manifest_plugin *mp;
        if ((s = bsc_manifest_add_plugin(m, &mp)) != BSC_OK)
            return s;
        mp->name = pi->desc->name;
        mp->version = pi->desc->version;
        mp->path = pi->path;
    }
    if (st->model) {
        m->parameters = (int64_t)bsc_model_n_params(st->model);
        m->state = (int64_t)bsc_model_n_state(st->model);
    }
    if (st->have_data) {
        bsc_manifest_dataset *ds;
        if ((s = bsc_manifest_set_dataset(m, &ds)) != BSC_OK)
            return s;
        ds->name = st->dcfg.name;
        ds->train = (int64_t)st->data.train.n;
        ds->test = (int64_t)st->data.test.n;
        ds->validation = (int64_t)st->data.validation.n;
    }
    for (size_t i = 0; i < st->n_outcomes; i++) {
        bsc_run_record *r;
        /* A run training on rank 0 while others' results arrive is not
         * over: it is not in the manifest yet. */
        if (!st->outcomes[i].status || (st->so && st->so->in_flight && st->so->in_flight[i]))
            continue;
        if ((s = bsc_manifest_add_run(m, &r)) != BSC_OK)
            return s;
        bsc_run_outcome_record(&st->outcomes[i], r);
    }
    if (s == BSC_OK && st->so)
        s = bsc_scaleout_fill_manifest(st, m);
    return s;
}

/* ------------------------------------------------------ the crash text */

#define REASON_MARK "@@batchscope-crash-reason@@"

typedef struct crash_text {
    char *path, *tmp;      /* OUT/manifest.json and its temporary */
    char *head, *tail;     /* the crashed manifest around its error text */
} crash_text;

/* Two slots: the next text is prepared in the one not in use and then
 * published, so a handler never sees one half rewritten. */
static crash_text slots[2];
static volatile sig_atomic_t active = -1;

static void crash_text_clear(crash_text *c)
{
    free(c->path);
    free(c->tmp);
    free(c->head);
    free(c->tail);
    memset(c, 0, sizeof *c);
}

/* Renders m as it would read after a crash into the free slot. Failing to
 * prepare it only costs the crash record, so errors are swallowed. */
static void prepare_crash_text(bsc_manifest *m, const char *path)
{
    int next = active == 0 ? 1 : 0;
    crash_text *c = &slots[next];
    char *text = NULL;
    const char *status = m->status, *error = m->error;
    m->status = "crashed";
    m->error = REASON_MARK;
    bsc_status s = bsc_manifest_render(m, &text);
    m->status = status;
    m->error = error;
    char *at = s == BSC_OK ? strstr(text, REASON_MARK) : NULL;
    if (!at) {
        free(text);
        return;
    }
    crash_text_clear(c);
    c->path = strdup(path);
    c->tmp = bsc_strdup_printf("%s.tmp.%ld", path, (long)getpid());
    c->tail = strdup(at + strlen(REASON_MARK));
    *at = '\0';
    c->head = text;
    if (!c->path || !c->tmp || !c->tail) {
        crash_text_clear(c);
        return;
    }
    active = next;
}

void bsc_study_crash_text_drop(void)
{
    active = -1;
    crash_text_clear(&slots[0]);
    crash_text_clear(&slots[1]);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int bsc_study_mark_crashed(const char *reason)
{
    int i = active;
    if (i < 0)
        return 0;
    const crash_text *c = &slots[i];
    int fd = open(c->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return 0;
    /* The reason as a JSON string body: quotes and backslashes escaped,
     * control characters dropped. */
    char buf[512];
    size_t n = 0;
    for (const char *p = reason ? reason : "crashed"; *p && n + 2 < sizeof buf; p++) {
        if (*p == '"' || *p == '\\')
            buf[n++] = '\\';
        if ((unsigned char)*p >= 0x20)
            buf[n++] = *p;
    }
    int bad = write_all(fd, c->head, strlen(c->head)) || write_all(fd, buf, n) ||
              write_all(fd, c->tail, strlen(c->tail));
    if (close(fd) != 0 || bad || rename(c->tmp, c->path) != 0) {
        unlink(c->tmp);
        return 0;
    }
    return 1;
}

/* ----------------------------------------------------------- the manifest */

bsc_status bsc_study_write_manifest(study *st, const char *status, const char *error)
{
    bsc_manifest *m = NULL;
    char abi[32], now[32];
    char *path = bsc_strdup_printf("%s/" BSC_FILE_MANIFEST, st->out);
    bsc_status s = path ? bsc_manifest_new(&m) : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s != BSC_OK)
        goto cleanup;
    snprintf(abi, sizeof abi, "%d.%d", BSC_ABI_MAJOR, BSC_ABI_MINOR);
    bsc_utc_timestamp(now, sizeof now);
    m->batchscope_version = bsc_version();
    m->plugin_abi = abi;
    m->pipeline = st->pipeline_abs ? st->pipeline_abs : st->p->path;
    m->name = st->p->name;
    m->seed = st->p->seed;
    m->status = status;
    m->error = error;
    m->started = st->started;
    m->updated = now;
    m->seconds = bsc_now() - st->t0;
    if ((s = fill_manifest(st, m)) == BSC_OK)
        s = bsc_manifest_write(path, m);
    /* Until bsc_study_run returns (the report is drawn after the final
     * manifest), a crash turns this manifest into a crashed one. */
    if (s == BSC_OK)
        prepare_crash_text(m, path);
cleanup:
    bsc_manifest_free(m);
    free(path);
    return s;
}
