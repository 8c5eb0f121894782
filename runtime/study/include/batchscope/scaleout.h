/* batchscope: the end of a process that may be one rank of
 * `mpirun -n N batchscope run` (DESIGN.md, Scale-out).
 *
 * bsc_study_run() starts MPI by itself when an MPI launcher started the
 * process (and the build has MPI); with N ranks, rank 0 schedules the
 * study's units and writes every file, the others run units and return
 * BSC_OK once rank 0 has ended the study (rank 0 reports its outcome). A
 * program that calls bsc_study_run() ends with bsc_scaleout_end(). */
#ifndef BATCHSCOPE_SCALEOUT_H
#define BATCHSCOPE_SCALEOUT_H

#include "batchscope/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Ends this process's part in MPI and returns exit_code: MPI_Finalize
 * after a study every rank ended; when this process lost a rank (one died,
 * hung or fell silent past the timeout), MPI_Abort instead -- a finalize
 * could wait for it forever -- which ends every rank of the job with
 * exit_code and does not return. Without MPI (one process) it only
 * returns exit_code. Call it once, after the last bsc_study_run(). */
BSC_API int bsc_scaleout_end(int exit_code);

/* This process's rank (0 for one process, before MPI starts, or without
 * MPI): a program prints the study's outcome on rank 0 only. */
BSC_API int bsc_scaleout_rank(void);

#ifdef __cplusplus
}
#endif
#endif
