/* Internal: one study over the ranks of `mpirun -n N batchscope run`
 * (DESIGN.md, Scale-out). study.c calls these few functions; what they do
 * lives in scaleout.c (ranks, devices, connecting, the manifest's ranks),
 * scheduler.c (rank 0: units handed out as ranks ask, results written),
 * worker.c (the other ranks: units run in a private scratch directory and
 * shipped to rank 0) and units.c (what a unit is and its completion
 * record, shared by every rank count, one included).
 *
 * With one process -- no launcher, a build without MPI, `mpirun -n 1` --
 * none of this sends anything: the study runs as it always has, and only
 * the analyses go through units.c, so that a study resumes with any
 * number of ranks. */
#ifndef BATCHSCOPE_SCALEOUT_INTERNAL_H
#define BATCHSCOPE_SCALEOUT_INTERNAL_H

#include "study_internal.h"
#include "transport.h"
#include "wire.h"

/* A rank's state as rank 0 sees it. */
typedef struct so_rank {
    char host[256];
    long local_rank;
    char dev_platform[128], dev_vendor[128], dev_name[256], dev_type[32], dev_driver[128];
    long dev_index;
    int ready;             /* its HELLO came, and it is set up */
    int shared;            /* it reads rank 0's results directory (shared file system) */
    int has_view;          /* it holds the finished runs (the analysis phase's study) */
    long unit;             /* the unit it runs, or -1 */
    double unit_t0;
    double last_seen;      /* bsc_now() of its last message */
    long units;            /* units it finished */
    double busy;           /* seconds it spent on them */
    double serve;          /* rank 0: seconds serving the others' units */
    int64_t result_bytes;  /* rank 0: bytes of the results they sent */
} so_rank;

struct bsc_scaleout {
    bsc_tp_info tp;
    double timeout;        /* seconds of silence after which a rank is lost */
    char *out_abs;         /* rank 0's results directory, absolute */
    char *scratch;         /* rank > 0: its private directory (removed at the end) */
    so_rank *ranks;        /* rank 0: one per rank (entry 0 is rank 0 itself) */
    int stopped;           /* rank 0: STOP sent to every rank */
    bsc_run_options quiet_opt;  /* rank > 0: the options, quiet (rank 0 speaks) */
    unsigned char *in_flight;  /* rank 0, per run: training now, not yet in the manifest */
    int shared_fs;         /* rank > 0: OUT is readable here */
};

/* Default of bsc_run_options.mpi_timeout (0 there). */
#define BSC_MPI_TIMEOUT_DEFAULT 300.0

/* The first step of every rank: where this process stands (st->so). A
 * rank > 0 gets a private scratch directory as st->out: whatever its
 * components write lands there, never in rank 0's results. */
BSC_INTERNAL bsc_status bsc_scaleout_begin(study *st);
/* 1 on ranks > 0 of a study over several ranks. */
BSC_INTERNAL int bsc_scaleout_is_worker(const study *st);
/* The number of ranks (1 for one process). */
BSC_INTERNAL int bsc_scaleout_size(const study *st);

/* Rank 0, after OUT exists: tells every rank where the results go, waits
 * (with the timeout) until each says it is ready -- its host, device and
 * driver -- logs them, and fails naming the rank that could not set up. */
BSC_INTERNAL bsc_status bsc_scaleout_connect(study *st);

/* Rank 0: the study's units over every rank (scheduler.c): the training
 * runs, then the observers' study_end, then the analyses; files written by
 * rank 0 alone. Returns like train_all + post_analyses. */
BSC_INTERNAL bsc_status bsc_scaleout_schedule(study *st);

/* Ranks > 0 (worker.c): prepares the session, opens this rank's device,
 * says hello and runs units until rank 0 says stop. BSC_OK when rank 0
 * ended it (rank 0 reports the study's outcome), an error when this rank
 * could not reach rank 0. */
BSC_INTERNAL bsc_status bsc_scaleout_work(study *st);

/* The manifest's "ranks" (nothing for one process). */
BSC_INTERNAL bsc_status bsc_scaleout_fill_manifest(const study *st, bsc_manifest *m);

/* Rank 0 once the study's work has ended, whatever its outcome: tells
 * every rank still waiting to stop (st may be NULL). */
BSC_INTERNAL void bsc_scaleout_release(study *st);
/* Frees st->so and a rank's scratch directory (st may be NULL). */
BSC_INTERNAL void bsc_scaleout_free(study *st);

/* Marks that this process lost a peer: bsc_scaleout_end() then ends the
 * job with MPI_Abort, since a collective finalize could wait forever. */
BSC_INTERNAL void bsc_scaleout_lost_peer(void);

/* ---- messages both sides compose (scaleout.c) */

/* Sends a message to rank dest with the study's timeout. */
BSC_INTERNAL bsc_status bsc_so_send(const study *st, int dest, int tag, const bsc_wbuf *b);

/* ---- data-parallel runs (dp.c) */

/* The run can be split across ranks (no batchnorm or dropout layer). */
BSC_INTERNAL bsc_status bsc_dp_check(const study *st, size_t run);
/* The trainer splits its batches across the ranks until bsc_dp_end, with
 * reduce(user, v, n) summing over them (one of the two below, wrapped). */
BSC_INTERNAL bsc_status bsc_dp_begin(study *st, bsc_status (*reduce)(void *, float *, size_t),
                                     void *user);
BSC_INTERNAL void bsc_dp_end(study *st);
/* The sum of v over the ranks, in rank order, on rank 0 / another rank;
 * between waits poll(user) is called and nonzero gives up (a fault, STOP). */
BSC_INTERNAL bsc_status bsc_dp_reduce_root(const study *st, float *v, size_t n,
                                           int (*poll)(void *), void *user);
BSC_INTERNAL bsc_status bsc_dp_reduce_rank(const study *st, float *v, size_t n,
                                           int (*poll)(void *), void *user);
/* Rank 0: tells a rank waiting in a step that the run has ended. */
BSC_INTERNAL void bsc_dp_abort(const study *st, int rank);

/* ---- units (units.c) */

typedef enum unit_kind {
    UNIT_TRAIN = 1,
    UNIT_ANALYSIS = 2,
    UNIT_PART = 3,
    UNIT_DP = 4            /* rank `part`'s share of data-parallel run `index` */
} unit_kind;

typedef struct bsc_unit {
    unit_kind kind;
    size_t index;          /* the run (TRAIN) or the analysis */
    size_t part;           /* PART: the analysis' unit */
} bsc_unit;

/* "run bs32", "analysis 2 (surface)", "analysis 2 (surface) unit 7/25". */
BSC_INTERNAL void bsc_unit_name(const study *st, const bsc_unit *u, size_t n_parts, char *buf,
                                size_t len);

/* The signature of the finished runs (names and statuses, in order): a
 * unit record from other runs is stale. malloc'ed. */
BSC_INTERNAL char *bsc_units_runs_signature(const study *st, const bsc_study *sv);

/* Unit records, OUT/units/...: BSC_OK and 1 in *have when analysis k's
 * record (whole: part == (size_t)-1) matches sig; with data (may be NULL)
 * the part's result bytes, malloc'ed. */
BSC_INTERNAL bsc_status bsc_units_record_read(const study *st, size_t k, size_t part,
                                              size_t n_parts, const char *sig, int *have,
                                              void **data, size_t *len);
/* Writes one atomically: the completion record of a whole analysis (data
 * NULL: its files are in place) or a part's result bytes. */
BSC_INTERNAL bsc_status bsc_units_record_write(const study *st, size_t k, size_t part,
                                               size_t n_parts, const char *sig,
                                               const void *data, size_t len);

/* The analyses' unit ops, NULL when an analysis has none (or a plugin
 * built before them). */
BSC_INTERNAL const bsc_analysis_ops *bsc_units_ops(const study *st, size_t k);

/* Analysis unit u (UNIT_ANALYSIS or UNIT_PART of n_parts) run in this
 * process by rank 0 (or the one process): run() or run_unit(), and its
 * completion record written (a whole analysis' files land in st->out). */
BSC_INTERNAL bsc_status bsc_units_run_one(study *st, const bsc_unit *u, size_t n_parts,
                                          const bsc_study *sv, const char *sig);

/* Analysis k run in this process (one process, or rank 0 for itself):
 * through its units and their records when it has unit ops, else whole,
 * with a completion record; on --resume what is recorded is kept. */
BSC_INTERNAL bsc_status bsc_units_analysis(study *st, size_t k, const bsc_study *sv);

/* Merges every recorded part of analysis k (n_parts of them, in order) and
 * finishes it: rank 0, once all are recorded. */
BSC_INTERNAL bsc_status bsc_units_merge_finish(study *st, size_t k, const bsc_study *sv,
                                               size_t n_parts, const char *sig);

#endif
