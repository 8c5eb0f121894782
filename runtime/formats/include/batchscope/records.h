/* batchscope: the study's JSON records -- OUT/runs/<name>/run.json (one
 * finished run) and OUT/manifest.json (the study: versions, device, plugins,
 * status, and its runs so far). This module is their one reader and writer.
 *
 * Files are written atomically (a temporary file renamed over the path), with
 * two-space indentation, keys in the order below and 17 significant digits
 * for reals, so they stay readable, diffable and exact. A real that is NaN
 * or infinite ("not measured": no test split, a diverged loss) is written
 * as null and reads back as NaN.
 *
 * Reading checks every field: a file that is not JSON fails with
 * "PATH:LINE:COL: <parser message>" (BSC_ERR_PARSE); a required key that is
 * missing, or any key of the wrong type or range, fails with an error naming
 * the file and the key ("PATH: runs[1]: missing key \"status\"",
 * BSC_ERR_DATA). Keys this version does not know are ignored, so newer files
 * still read. Optional fields are marked below, with the value they get when
 * absent.
 *
 * ABI (plugins call this module): every struct here is allocated and freed
 * by the library -- *_new, *_read, the bsc_manifest_add/set functions, and
 * *_free -- never by the caller, so a struct may grow at its end without
 * overrunning a plugin built against the older, smaller one. Lists are
 * arrays of pointers.
 *
 * Strings are `const char *`. In a record the library read they point into
 * storage the record owns (valid until its *_free). In a record a caller
 * fills for writing they are the caller's: borrowed for the write, never
 * freed by the library.
 */
#ifndef BATCHSCOPE_RECORDS_H
#define BATCHSCOPE_RECORDS_H

#include "batchscope/api.h"
#include <stddef.h>
#include <stdint.h>
#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of jansson, the JSON library records are read and written
 * with ("2.14"). */
BSC_API const char *bsc_json_library_version(void);

/* ---------------------------------------------------------------- run.json */

/* One run's outcome: OUT/runs/<name>/run.json, and an entry of the
 * manifest's "runs" (which carries no losses). */
typedef struct bsc_run_record {
    const char *name;       /* optional: NULL in files written before runs had
                               names (the directory's name stands in) */
    long batch_size;        /* >= 1 */
    const char *status;     /* "completed" or "diverged" in run.json; the
                               manifest also has "interrupted" and "failed" */
    int epochs_done;
    int diverged_epoch;     /* optional: 0 when the run did not diverge */
    long diverged_step;     /* optional: 0 when the run did not diverge; the
                               first step (from 1) with a non-finite loss */
    double seconds;         /* wall-clock time of the run */
    double train_loss;      /* run.json only: NaN in a manifest's runs */
    double train_acc;
    double test_loss;       /* run.json only: NaN in a manifest's runs */
    double test_acc;
} bsc_run_record;

/* A new record with every field unset: strings NULL, integers 0, reals NaN.
 * The caller fills it and writes it. Free with bsc_run_record_free. */
BSC_API bsc_status bsc_run_record_new(bsc_run_record **out);

/* Reads run.json at path into a new record (*out NULL on failure). Every
 * field is required except those marked optional; a real may be null
 * (NaN). BSC_ERR_IO when the file cannot be read, BSC_ERR_PARSE and
 * BSC_ERR_DATA as above. Free with bsc_run_record_free. */
BSC_API bsc_status bsc_run_record_read(const char *path, bsc_run_record **out);

/* Writes r to path atomically. name and the diverged fields are left out
 * when unset (NULL, 0); status must be set, batch_size >= 1 and no integer
 * negative (BSC_ERR_INVALID otherwise, nothing written); BSC_ERR_IO when
 * the file cannot be written (no temporary is left behind). */
BSC_API bsc_status bsc_run_record_write(const char *path, const bsc_run_record *r);

/* Frees a record from bsc_run_record_new or _read; NULL is fine. Not for
 * the runs of a manifest, which the manifest owns. */
BSC_API void bsc_run_record_free(bsc_run_record *r);

/* ----------------------------------------------------------- manifest.json */

/* The device the study ran on ("device"): every field optional (NULL, or
 * -1 for numbers, when absent). */
typedef struct bsc_manifest_device {
    long index;             /* flat index, as `batchscope devices` shows */
    const char *platform;
    const char *vendor;
    const char *name;
    const char *type;       /* "cpu", "gpu", ... */
    const char *driver_version;
    const char *device_version;
    const char *opencl_c_version;
    long compute_units;
    int64_t global_mem;     /* bytes */
    const char *gemm;       /* the GEMM backend the study ran: "clblast", "host" */
    const char *platform_vendor;
} bsc_manifest_device;

/* A loaded plugin module (an entry of "plugins"): every field optional (NULL). */
typedef struct bsc_manifest_plugin {
    const char *name;
    const char *version;
    const char *path;
} bsc_manifest_plugin;

/* What the study ran with ("versions"): every field optional (NULL). */
typedef struct bsc_manifest_versions {
    const char *batchscope;         /* "0.1.0" */
    const char *git_commit;         /* of the build, at configure time */
    const char *plugin_abi;         /* "MAJOR.MINOR" */
    const char *clblast;
    const char *libyaml;
    const char *jansson;
    const char *opencl_icd_loader;  /* "OCL-ICD 2.3.1, OpenCL 3.0" */
    const char *driver;             /* the device's driver version */
} bsc_manifest_versions;

/* The dataset as loaded ("dataset"): every field optional (NULL, -1). */
typedef struct bsc_manifest_dataset {
    const char *name;
    int64_t train, test, validation;   /* examples per split */
} bsc_manifest_dataset;

/* One rank of a study run over MPI (an entry of "ranks"): where it ran
 * and how much it did. rank is required; the rest optional (NULL, -1, NaN). */
typedef struct bsc_manifest_rank {
    long rank;              /* 0 schedules and writes the files */
    const char *host;
    long local_rank;        /* among the ranks on its host: picks its device */
    bsc_manifest_device *device;
    long units;             /* units of work it finished in this session */
    double busy_seconds;    /* time it spent on them */
    /* Rank 0 only (NaN, -1 elsewhere): the seconds it spent serving the
     * other ranks (taking in a result, writing it, handing out the next
     * unit), and the bytes of the results they sent -- what the scaling
     * model (tools/bench/mpi_model.py) takes per unit. */
    double serve_seconds;
    int64_t result_bytes;
} bsc_manifest_rank;

/* OUT/manifest.json. Required: name, seed, status and runs (what a resume,
 * the report and a reproduction need); everything else describes the study
 * and is optional (NULL, NaN or -1 when absent, as marked). */
typedef struct bsc_manifest {
    const char *batchscope_version;  /* optional */
    const char *plugin_abi;          /* optional: "MAJOR.MINOR" */
    const char *pipeline;            /* optional: the pipeline file's path */
    const char *name;                /* the study's name */
    uint64_t seed;                   /* stored as a JSON integer: seeds above
                                        2^63 - 1 appear negative in the file
                                        and read back exactly */
    const char *status;              /* "running", "completed", "interrupted",
                                        "failed", "crashed" */
    const char *error;               /* optional: why it failed or stopped */
    const char *started, *updated;   /* optional: UTC, "2026-11-25T01:02:03Z" */
    double seconds;                  /* optional (NaN): since the start */
    bsc_manifest_device *device;     /* optional: NULL before a device opened */
    bsc_manifest_plugin **plugins;   /* optional: none when absent */
    size_t n_plugins;
    int64_t parameters, state;       /* optional (-1): model sizes, floats */
    bsc_manifest_dataset *dataset;   /* optional: NULL before data loaded */
    bsc_run_record **runs;           /* the runs so far, in study order */
    size_t n_runs;
    bsc_manifest_versions *versions; /* optional: NULL in older files */
    /* optional: the --set overrides the study was started with, in order
     * ("training.epochs=2"); `batchscope run --resume OUT` applies them
     * again. Absent in older files (no overrides). */
    const char **overrides;
    size_t n_overrides;
    bsc_manifest_rank **ranks;       /* optional: a study over MPI ranks, one per
                                        rank; left out of the file when empty */
    size_t n_ranks;
} bsc_manifest;

/* A new manifest with every field unset: strings NULL, seed 0, sizes -1,
 * seconds NaN, no device, dataset, plugins or runs. Free with
 * bsc_manifest_free. */
BSC_API bsc_status bsc_manifest_new(bsc_manifest **out);

/* Appends a new, unset plugin / run to m's list and returns it in *out
 * (owned by m). */
BSC_API bsc_status bsc_manifest_add_plugin(bsc_manifest *m, bsc_manifest_plugin **out);
BSC_API bsc_status bsc_manifest_add_run(bsc_manifest *m, bsc_run_record **out);

/* Appends a new, unset rank to m's "ranks" (owned by m); gives rank r of
 * m a new, unset device (replacing any, owned by m). */
BSC_API bsc_status bsc_manifest_add_rank(bsc_manifest *m, bsc_manifest_rank **out);
BSC_API bsc_status bsc_manifest_rank_set_device(bsc_manifest *m, bsc_manifest_rank *r,
                                                bsc_manifest_device **out);

/* Gives m a new, unset device / dataset / versions (replacing any) and
 * returns it in *out (owned by m). */
BSC_API bsc_status bsc_manifest_set_device(bsc_manifest *m, bsc_manifest_device **out);
BSC_API bsc_status bsc_manifest_set_dataset(bsc_manifest *m, bsc_manifest_dataset **out);
BSC_API bsc_status bsc_manifest_set_versions(bsc_manifest *m, bsc_manifest_versions **out);

/* Appends an override to m's list; the text is borrowed, as strings are. */
BSC_API bsc_status bsc_manifest_add_override(bsc_manifest *m, const char *text);

/* Reads manifest.json at path into a new manifest (*out NULL on failure),
 * with the errors of bsc_run_record_read. Free with bsc_manifest_free. */
BSC_API bsc_status bsc_manifest_read(const char *path, bsc_manifest **out);

/* Writes m to path atomically. Unset optional fields are left out (a NaN
 * real is written as null; "plugins" and "runs" are written even when
 * empty); name, status and every run's status must be set, as for
 * bsc_run_record_write (BSC_ERR_INVALID otherwise, nothing written). */
BSC_API bsc_status bsc_manifest_write(const char *path, const bsc_manifest *m);

/* The text bsc_manifest_write would write, in a malloc'ed string (for a
 * caller that must write it later without allocating: a crash handler). */
BSC_API bsc_status bsc_manifest_render(const bsc_manifest *m, char **text);

/* Frees a manifest and everything it owns; NULL is fine. */
BSC_API void bsc_manifest_free(bsc_manifest *m);

#ifdef __cplusplus
}
#endif
#endif
