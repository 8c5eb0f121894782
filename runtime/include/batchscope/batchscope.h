/* batchscope: everything a plugin or a program using libbatchscope includes.
 *
 * One include for the whole public API, so that an out-of-tree plugin built
 * against the installed SDK sees what the built-in plugins see; the headers
 * below stay includable one by one. */
#ifndef BATCHSCOPE_H
#define BATCHSCOPE_H

/* core */
#include "batchscope/status.h"
#include "batchscope/fsutil.h"
#include "batchscope/table.h"
#include "batchscope/rng.h"
/* YAML nodes, data files */
#include "batchscope/node.h"
#include "batchscope/safetensors.h"
#include "batchscope/imagefiles.h"
/* device */
#include "batchscope/device.h"
#include "batchscope/tensor.h"
#include "batchscope/blas.h"
#include "batchscope/reduce.h"
/* plugins */
#include "batchscope/plugin.h"
#include "batchscope/registry.h"
/* pipeline, data, model, study */
#include "batchscope/pipeline.h"
#include "batchscope/dataset.h"
#include "batchscope/model.h"
#include "batchscope/evaluator.h"
#include "batchscope/optim.h"
#include "batchscope/runs.h"
#include "batchscope/records.h"
#include "batchscope/study.h"
/* testing plugins */
#include "batchscope/gradcheck.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "0.1.0". */
const char *bsc_version(void);

#ifdef __cplusplus
}
#endif
#endif
