/* Between the evaluator (evaluator.c) and its families of points
 * (eval_family.c). */
#ifndef BATCHSCOPE_EVALUATOR_INTERNAL_H
#define BATCHSCOPE_EVALUATOR_INTERNAL_H

#include "batchscope/evaluator.h"
#include "model_internal.h"

struct bsc_evaluator {
    bsc_model *model;
    const bsc_device_dataset *data;
    size_t batch;
    size_t max_chunks;
    bsc_tensor sums;      /* [2 * max_chunks]: per-batch loss sum, correct sum */
    float *host_sums;
    bsc_tensor hv_chunk;  /* one batch's H v (bsc_eval_hvp; allocated on first use) */
    bsc_host_rows *rows;  /* the whole model on host rows (host_rows.c), made on first use */
    int rows_tried;
};


/* The split and the number of its examples an evaluation of `subset`
 * covers; a missing or empty split is BSC_ERR_INVALID. */
bsc_status bsc_eval_resolve(bsc_evaluator *e, bsc_split_id split, size_t subset,
                            const bsc_device_split **sp, size_t *n);
/* Views of rows [start, start+count) of a split. */
void bsc_eval_rows(const bsc_device_split *sp, size_t start, size_t count, bsc_tensor *x,
                   bsc_tensor *y);
/* Enqueues the sums of the model's row loss and row correct over `count`
 * rows into chunk `chunk`'s slots. */
bsc_status bsc_eval_sum_chunk(bsc_evaluator *e, size_t count, size_t chunk);
/* Reads the first `chunks` chunks' sums back (blocking) and gives the means
 * over n examples, added in chunk order in double. */
bsc_status bsc_eval_read_sums(bsc_evaluator *e, size_t chunks, size_t n, double *loss,
                              double *acc);

#endif
