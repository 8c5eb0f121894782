/* batchscope: everything a plugin or a program using libbatchscope includes.
 *
 * One include for the whole public API, so that an out-of-tree plugin built
 * against the installed SDK sees what the built-in plugins see; the headers
 * below stay includable one by one. Bottom layer first (see CMakeLists.txt). */
#ifndef BATCHSCOPE_H
#define BATCHSCOPE_H

/* core */
#include "batchscope/api.h"
#include "batchscope/status.h"
#include "batchscope/version.h"
#include "batchscope/shape.h"
#include "batchscope/fsutil.h"
#include "batchscope/hashset.h"
#include "batchscope/table.h"
#include "batchscope/rng.h"
/* yaml */
#include "batchscope/node.h"
/* formats */
#include "batchscope/safetensors.h"
#include "batchscope/imagefiles.h"
#include "batchscope/records.h"
/* device */
#include "batchscope/device.h"
#include "batchscope/tensor.h"
#include "batchscope/blas.h"
#include "batchscope/host_task.h"
#include "batchscope/reduce.h"
/* data */
#include "batchscope/dataset.h"
/* plugin, and the gradient check for plugin authors */
#include "batchscope/plugin.h"
#include "batchscope/registry.h"
#include "batchscope/plugin_call.h"
#include "batchscope/gradcheck.h"
/* model */
#include "batchscope/model.h"
#include "batchscope/evaluator.h"
#include "batchscope/optim.h"
/* study */
#include "batchscope/pipeline.h"
#include "batchscope/results.h"
#include "batchscope/runs.h"
#include "batchscope/session.h"
#include "batchscope/study.h"
#include "batchscope/scaleout.h"

#endif
