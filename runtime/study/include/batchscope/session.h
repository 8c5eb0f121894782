/* batchscope: a study assembled, ready to train.
 *
 * The one path from a pipeline file to a model bound on a device that
 * `batchscope run`, `batchscope check` and the benchmarks share: the
 * pipeline loaded with its overrides, the plugins loaded (default path and
 * the pipeline's `plugins:`), every type and option checked, observers,
 * analyses and the report created, the dataset read and uploaded, the model
 * built and bound for the largest batch, the evaluator, optimizer and
 * training buffers allocated. A program measuring training (tools/bench)
 * opens a session and drives steps itself; `batchscope run` does the rest
 * of the data flow (study.h).
 */
#ifndef BATCHSCOPE_SESSION_H
#define BATCHSCOPE_SESSION_H

#include <stddef.h>
#include "batchscope/api.h"
#include "batchscope/dataset.h"
#include "batchscope/evaluator.h"
#include "batchscope/model.h"
#include "batchscope/pipeline.h"
#include "batchscope/study.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_session bsc_session;

/* Opens a session for o's pipeline, overrides and device (out_dir, when
 * set, is where components would write; nothing is written here). */
BSC_API bsc_status bsc_session_open(const bsc_run_options *o, bsc_session **out);
BSC_API void bsc_session_free(bsc_session *s);

BSC_API const bsc_pipeline *bsc_session_pipeline(const bsc_session *s);
BSC_API bsc_context *bsc_session_context(const bsc_session *s);
BSC_API bsc_model *bsc_session_model(const bsc_session *s);
BSC_API bsc_evaluator *bsc_session_evaluator(const bsc_session *s);
BSC_API const bsc_device_dataset *bsc_session_data(const bsc_session *s);

/* Starts run `run` (an index into training.runs) as `batchscope run` would:
 * its initial weights in the model, the optimizer reset, epoch 1's shuffle
 * of the training split on the device. */
BSC_API bsc_status bsc_session_start_run(bsc_session *s, size_t run);

/* Enqueues training step k (0-based) of epoch 1 of the started run with
 * learning rate lr: gather, forward, backward, optimizer update, step loss.
 * Enqueue only (bsc_finish waits). */
BSC_API bsc_status bsc_session_step(bsc_session *s, size_t k, float lr);

#ifdef __cplusplus
}
#endif
#endif
