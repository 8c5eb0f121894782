/* Internal: rank 0's scheduler, shared by scheduler.c (the unit list,
 * handing out, results, the loop) and scheduler_phases.c (what the study's
 * phases put on the list: training runs, data-parallel runs, analyses). */
#ifndef BATCHSCOPE_SCHEDULER_INTERNAL_H
#define BATCHSCOPE_SCHEDULER_INTERNAL_H

#include "scaleout_internal.h"

typedef enum { U_TODO, U_RUNNING, U_DONE, U_FAILED } ustate;

typedef struct sunit {
    bsc_unit u;
    ustate state;
    int rank;
} sunit;

typedef struct sched {
    study *st;
    sunit *units;
    size_t n, cap;
    size_t *n_parts;       /* per analysis: its parts, or (size_t)-1: run whole */
    int *finished;         /* per analysis: its files are written */
    int *final_loaded;     /* per run: its final weights are on rank 0's device */
    char *sig;             /* the finished runs the analyses see (units.c) */
    bsc_study sv;          /* what the analyses see on rank 0 (no progress hook: a
                              plugin's own counts would cover rank 0's units only) */
    bsc_study progress_sv; /* the same with the hook: the parts of all ranks */
    int analyses_planned;  /* phase 2: n_parts and sig are set */
    int works;             /* rank 0 runs units too */
    unsigned char *dp;     /* per run: to train data-parallel (all ranks at once) */
    char *dp_error;        /* why a rank's share of a data-parallel run failed */
    bsc_status fatal;      /* not BSC_OK: the study ends (message in fatal_msg) */
    char *fatal_msg;
} sched;

/* The study ends (the first fault wins): s with bsc_last_error(). */
BSC_INTERNAL void bsc_sched_fatal(sched *sc, bsc_status s);
/* Appends a unit to hand out (U_TODO). */
BSC_INTERNAL bsc_status bsc_sched_add(sched *sc, unit_kind kind, size_t index, size_t part);
/* Hands unit id to rank r (idle); a failure to send is fatal. */
BSC_INTERNAL void bsc_sched_give(sched *sc, int r, size_t id);
/* Reads what arrived, writes results, hands out units, watches the ranks
 * and the stop hook; never touches the device (it runs inside rank 0's
 * own units). */
BSC_INTERNAL void bsc_sched_serve(sched *sc);
/* The stop hook of rank 0's units: serves, stops on a fault. */
BSC_INTERNAL int bsc_sched_stop(void *user);
/* Runs the units listed so far to their end (or the study's). */
BSC_INTERNAL void bsc_sched_drive(sched *sc);
/* Run `run` is training now (kept out of the manifest until it ends). */
BSC_INTERNAL void bsc_sched_in_flight(sched *sc, int run, int on);
/* OUT/runs/<name>, malloc'ed. */
BSC_INTERNAL char *bsc_sched_run_dir(const study *st, size_t i);

#endif
