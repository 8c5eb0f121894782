/* batchscope: the library's version. */
#ifndef BATCHSCOPE_VERSION_H
#define BATCHSCOPE_VERSION_H

#include "batchscope/api.h"
#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "0.1.0". */
BSC_API const char *bsc_version(void);

#ifdef __cplusplus
}
#endif
#endif
