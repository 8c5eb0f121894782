/* Internal: the message transport between the ranks of a study (DESIGN.md,
 * Scale-out). transport_mpi.c implements it over MPI and is the only file
 * that includes mpi.h; transport_none.c is the build without MPI, where
 * every process is rank 0 of 1. The scheduler (scheduler.c, worker.c) sees
 * only this: numbered ranks, tagged byte messages, timeouts, heartbeats.
 *
 * Every call returns; none waits longer than its timeout. The transport is
 * process-wide (MPI can be started once per process): bsc_tp_get() starts
 * it on first use and bsc_tp_end() ends it. */
#ifndef BATCHSCOPE_TRANSPORT_H
#define BATCHSCOPE_TRANSPORT_H

#include <stddef.h>
#include "batchscope/status.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

/* Tags of the study's messages (scheduler.c documents the protocol). */
enum {
    BSC_TAG_HEARTBEAT = 1,   /* empty: "still alive" */
    BSC_TAG_SETUP = 2,       /* 0 -> w: the results directory, shared-FS probe */
    BSC_TAG_HELLO = 3,       /* w -> 0: host, device, ready (or why not) */
    BSC_TAG_UNIT = 4,        /* 0 -> w: a unit to run */
    BSC_TAG_RESULT = 5,      /* w -> 0: a unit's result (and a request for more) */
    BSC_TAG_STOP = 6,        /* 0 -> w: no more units (or the study failed) */
    BSC_TAG_REDUCE = 7,      /* a data-parallel step's gradients: w -> 0, the sum 0 -> w */
    BSC_TAG_COUNT = 8
};

typedef struct bsc_tp_info {
    int rank, size;           /* in the study's communicator */
    int local_rank, local_size;   /* among the ranks on this node */
    char host[256];
    int mpi;                  /* 1: started by an MPI launcher */
} bsc_tp_info;

typedef struct bsc_tp_msg {
    int src, tag;
    void *data;               /* malloc'ed (NULL when len is 0); the caller frees */
    size_t len;
} bsc_tp_msg;

/* This process's place: rank 0 of 1 without a launcher (the environment
 * of mpirun/srun/hydra is what tells), without MPI in the build, or with
 * BATCHSCOPE_MPI=0 in the environment. Starts MPI on the first call. */
BSC_INTERNAL bsc_status bsc_tp_start(bsc_tp_info *out);

/* Sends len bytes to rank dest. Returns once the buffer may be reused, or
 * BSC_ERR_IO after timeout seconds (the peer is not receiving). */
BSC_INTERNAL bsc_status bsc_tp_send(int dest, int tag, const void *data, size_t len,
                                    double timeout);

/* The next message from src (-1: any rank) with tag (-1: any tag): BSC_OK
 * with *m filled, or BSC_ERR_NOT_FOUND when none arrived within timeout
 * seconds (0: just look). Messages from one rank with one tag arrive in the
 * order sent; others wait, in order, for a receive that takes them. */
BSC_INTERNAL bsc_status bsc_tp_recv(int src, int tag, double timeout, bsc_tp_msg *m);

/* Waits up to timeout seconds for any message to arrive (without taking
 * it): 1 when one is there, 0 when none came. An idle rank 0 waits here
 * between its rounds instead of sleeping blind. */
BSC_INTERNAL int bsc_tp_wait(double timeout);

/* A thread that sends BSC_TAG_HEARTBEAT to every rank in to[0..n) each
 * period seconds until bsc_tp_end(), as long as the main thread has called
 * bsc_tp_progress() within the last `stall` seconds: a rank that died, hangs
 * or lost its network falls silent, while one busy in a long kernel, a
 * kernel build or a file write still shows it lives. */
BSC_INTERNAL bsc_status bsc_tp_heartbeat(const int *to, int n, double period, double stall);

/* The main thread is making progress (called between steps, evaluations
 * and messages). Cheap: one atomic store. */
BSC_INTERNAL void bsc_tp_progress(void);

/* Ends the transport: MPI_Finalize, or, when abort_job is set (a rank was
 * lost or hangs, so a collective finalize could wait forever), MPI_Abort
 * with exit_code, which ends every rank of the job and does not return.
 * A no-op for one process. */
BSC_INTERNAL void bsc_tp_end(int abort_job, int exit_code);

#endif
