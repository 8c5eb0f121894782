/* The study's JSON records: the fields of run.json and manifest.json, in
 * their files' order, and the public API over the binding in records_json.c. */
#include "records_internal.h"

#include <string.h>

#define N(a) (sizeof(a) / sizeof *(a))
/* Designated, so that the members a row leaves out are zero without a warning. */
#define FIELD(k, t, fl, o) .key = (k), .kind = (t), .flags = (fl), .off = (o)

#define RUN(m) offsetof(bsc_run_record, m)
static const rec_field run_fields[] = {
    {FIELD("name", K_STR, F_OPT, RUN(name))},
    {FIELD("batch_size", K_LONG, 0, RUN(batch_size)), .min = 1},
    {FIELD("status", K_STR, 0, RUN(status))},
    {FIELD("epochs_done", K_INT, 0, RUN(epochs_done))},
    {FIELD("diverged_epoch", K_INT, F_OPT, RUN(diverged_epoch))},
    {FIELD("diverged_step", K_LONG, F_OPT, RUN(diverged_step))},
    {FIELD("seconds", K_REAL, 0, RUN(seconds))},
    {FIELD("train_loss", K_REAL, F_RUNFILE, RUN(train_loss))},
    {FIELD("train_acc", K_REAL, 0, RUN(train_acc))},
    {FIELD("test_loss", K_REAL, F_RUNFILE, RUN(test_loss))},
    {FIELD("test_acc", K_REAL, 0, RUN(test_acc))},
};
static const rec_schema run_schema = {run_fields, N(run_fields), sizeof(bsc_run_record), 0};
/* The manifest's runs: the same record without the losses. */
static const rec_schema manifest_run_schema = {run_fields, N(run_fields),
                                               sizeof(bsc_run_record), F_RUNFILE};

#define DEV(m) offsetof(bsc_manifest_device, m)
static const rec_field device_fields[] = {
    {FIELD("index", K_LONG, F_OPT, DEV(index)), .absent = -1},
    {FIELD("platform", K_STR, F_OPT, DEV(platform))},
    {FIELD("vendor", K_STR, F_OPT, DEV(vendor))},
    {FIELD("name", K_STR, F_OPT, DEV(name))},
    {FIELD("type", K_STR, F_OPT, DEV(type))},
    {FIELD("driver_version", K_STR, F_OPT, DEV(driver_version))},
    {FIELD("device_version", K_STR, F_OPT, DEV(device_version))},
    {FIELD("opencl_c_version", K_STR, F_OPT, DEV(opencl_c_version))},
    {FIELD("compute_units", K_LONG, F_OPT, DEV(compute_units)), .absent = -1},
    {FIELD("global_mem", K_I64, F_OPT, DEV(global_mem)), .absent = -1},
    {FIELD("gemm", K_STR, F_OPT, DEV(gemm))},
    {FIELD("platform_vendor", K_STR, F_OPT, DEV(platform_vendor))},
};
static const rec_schema device_schema = {device_fields, N(device_fields),
                                         sizeof(bsc_manifest_device), 0};

#define PLUG(m) offsetof(bsc_manifest_plugin, m)
static const rec_field plugin_fields[] = {
    {FIELD("name", K_STR, F_OPT, PLUG(name))},
    {FIELD("version", K_STR, F_OPT, PLUG(version))},
    {FIELD("path", K_STR, F_OPT, PLUG(path))},
};
static const rec_schema plugin_schema = {plugin_fields, N(plugin_fields),
                                         sizeof(bsc_manifest_plugin), 0};

#define VER(m) offsetof(bsc_manifest_versions, m)
static const rec_field versions_fields[] = {
    {FIELD("batchscope", K_STR, F_OPT, VER(batchscope))},
    {FIELD("git_commit", K_STR, F_OPT, VER(git_commit))},
    {FIELD("plugin_abi", K_STR, F_OPT, VER(plugin_abi))},
    {FIELD("clblast", K_STR, F_OPT, VER(clblast))},
    {FIELD("libyaml", K_STR, F_OPT, VER(libyaml))},
    {FIELD("jansson", K_STR, F_OPT, VER(jansson))},
    {FIELD("opencl_icd_loader", K_STR, F_OPT, VER(opencl_icd_loader))},
    {FIELD("driver", K_STR, F_OPT, VER(driver))},
};
static const rec_schema versions_schema = {versions_fields, N(versions_fields),
                                           sizeof(bsc_manifest_versions), 0};

#define DATA(m) offsetof(bsc_manifest_dataset, m)
static const rec_field dataset_fields[] = {
    {FIELD("name", K_STR, F_OPT, DATA(name))},
    {FIELD("train", K_I64, F_OPT, DATA(train)), .absent = -1},
    {FIELD("test", K_I64, F_OPT, DATA(test)), .absent = -1},
    {FIELD("validation", K_I64, F_OPT, DATA(validation)), .absent = -1},
};
static const rec_schema dataset_schema = {dataset_fields, N(dataset_fields),
                                          sizeof(bsc_manifest_dataset), 0};

#define RANK(m) offsetof(bsc_manifest_rank, m)
static const rec_field rank_fields[] = {
    {FIELD("rank", K_LONG, 0, RANK(rank))},
    {FIELD("host", K_STR, F_OPT, RANK(host))},
    {FIELD("local_rank", K_LONG, F_OPT, RANK(local_rank)), .absent = -1},
    {FIELD("device", K_OBJ, F_OPT, RANK(device)), .sub = &device_schema},
    {FIELD("units", K_LONG, F_OPT, RANK(units)), .absent = -1},
    {FIELD("busy_seconds", K_REAL, F_OPT, RANK(busy_seconds))},
    {FIELD("serve_seconds", K_REAL, F_OPT, RANK(serve_seconds))},
    {FIELD("result_bytes", K_I64, F_OPT, RANK(result_bytes)), .absent = -1},
};
static const rec_schema rank_schema = {rank_fields, N(rank_fields), sizeof(bsc_manifest_rank),
                                       0};

#define MAN(m) offsetof(bsc_manifest, m)
static const rec_field manifest_fields[] = {
    {FIELD("batchscope_version", K_STR, F_OPT, MAN(batchscope_version))},
    {FIELD("plugin_abi", K_STR, F_OPT, MAN(plugin_abi))},
    {FIELD("versions", K_OBJ, F_OPT, MAN(versions)), .sub = &versions_schema},
    {FIELD("pipeline", K_STR, F_OPT, MAN(pipeline))},
    {FIELD("overrides", K_STRLIST, F_OPT, MAN(overrides)), .n_off = MAN(n_overrides)},
    {FIELD("name", K_STR, 0, MAN(name))},
    {FIELD("seed", K_U64, 0, MAN(seed))},
    {FIELD("status", K_STR, 0, MAN(status))},
    {FIELD("error", K_STR, F_OPT, MAN(error))},
    {FIELD("started", K_STR, F_OPT, MAN(started))},
    {FIELD("updated", K_STR, F_OPT, MAN(updated))},
    {FIELD("seconds", K_REAL, F_OPT, MAN(seconds))},
    {FIELD("device", K_OBJ, F_OPT, MAN(device)), .sub = &device_schema},
    {FIELD("plugins", K_LIST, F_OPT, MAN(plugins)), .sub = &plugin_schema, .n_off = MAN(n_plugins)},
    {FIELD("parameters", K_I64, F_OPT, MAN(parameters)), .absent = -1},
    {FIELD("state", K_I64, F_OPT, MAN(state)), .absent = -1},
    {FIELD("dataset", K_OBJ, F_OPT, MAN(dataset)), .sub = &dataset_schema},
    {FIELD("runs", K_LIST, 0, MAN(runs)), .sub = &manifest_run_schema, .n_off = MAN(n_runs)},
    {FIELD("ranks", K_LIST, F_OPT | F_NONEMPTY, MAN(ranks)), .sub = &rank_schema,
     .n_off = MAN(n_ranks)},
};
static const rec_schema manifest_schema = {manifest_fields, N(manifest_fields),
                                           sizeof(bsc_manifest), 0};

/* ------------------------------------------------------------ run.json */

bsc_status bsc_run_record_new(bsc_run_record **out)
{
    return bsc_rec_new(&run_schema, out);
}

bsc_status bsc_run_record_read(const char *path, bsc_run_record **out)
{
    return bsc_rec_read(path, &run_schema, out);
}

bsc_status bsc_run_record_write(const char *path, const bsc_run_record *r)
{
    return bsc_rec_write(path, &run_schema, r);
}

void bsc_run_record_free(bsc_run_record *r)
{
    bsc_rec_free(&run_schema, r);
}

/* -------------------------------------------------------- manifest.json */

static const rec_field *schema_field(const rec_schema *sc, const char *key)
{
    for (size_t i = 0; i < sc->n; i++)
        if (strcmp(sc->fields[i].key, key) == 0)
            return &sc->fields[i];
    return NULL;
}

static const rec_field *manifest_field(const char *key)
{
    return schema_field(&manifest_schema, key);
}

bsc_status bsc_manifest_new(bsc_manifest **out)
{
    return bsc_rec_new(&manifest_schema, out);
}

bsc_status bsc_manifest_add_plugin(bsc_manifest *m, bsc_manifest_plugin **out)
{
    return bsc_rec_list_add(m, manifest_field("plugins"), out);
}

bsc_status bsc_manifest_add_run(bsc_manifest *m, bsc_run_record **out)
{
    return bsc_rec_list_add(m, manifest_field("runs"), out);
}

bsc_status bsc_manifest_add_rank(bsc_manifest *m, bsc_manifest_rank **out)
{
    return bsc_rec_list_add(m, manifest_field("ranks"), out);
}

bsc_status bsc_manifest_rank_set_device(bsc_manifest *m, bsc_manifest_rank *r,
                                        bsc_manifest_device **out)
{
    (void)m;
    return bsc_rec_set_object(r, schema_field(&rank_schema, "device"), out);
}

bsc_status bsc_manifest_set_device(bsc_manifest *m, bsc_manifest_device **out)
{
    return bsc_rec_set_object(m, manifest_field("device"), out);
}

bsc_status bsc_manifest_set_dataset(bsc_manifest *m, bsc_manifest_dataset **out)
{
    return bsc_rec_set_object(m, manifest_field("dataset"), out);
}

bsc_status bsc_manifest_set_versions(bsc_manifest *m, bsc_manifest_versions **out)
{
    return bsc_rec_set_object(m, manifest_field("versions"), out);
}

bsc_status bsc_manifest_add_override(bsc_manifest *m, const char *text)
{
    return bsc_rec_strlist_add(m, manifest_field("overrides"), text);
}

bsc_status bsc_manifest_read(const char *path, bsc_manifest **out)
{
    return bsc_rec_read(path, &manifest_schema, out);
}

bsc_status bsc_manifest_write(const char *path, const bsc_manifest *m)
{
    return bsc_rec_write(path, &manifest_schema, m);
}

bsc_status bsc_manifest_render(const bsc_manifest *m, char **text)
{
    return bsc_rec_render("manifest.json", &manifest_schema, m, text);
}

void bsc_manifest_free(bsc_manifest *m)
{
    bsc_rec_free(&manifest_schema, m);
}
