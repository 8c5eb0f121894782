/* batchscope: everything a plugin or a program using libbatchscope includes. */
#ifndef BATCHSCOPE_H
#define BATCHSCOPE_H

#include "batchscope/status.h"
#include "batchscope/version.h"
#include "batchscope/device.h"
#include "batchscope/tensor.h"
#include "batchscope/blas.h"
#include "batchscope/node.h"
#include "batchscope/plugin.h"
#include "batchscope/registry.h"
#include "batchscope/pipeline.h"
#include "batchscope/results.h"
#include "batchscope/runs.h"
#include "batchscope/records.h"


#endif
