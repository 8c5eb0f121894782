/* batchscope: the library's version. */
#ifndef BATCHSCOPE_VERSION_H
#define BATCHSCOPE_VERSION_H

#include "batchscope/api.h"
#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "0.1.0". */
BSC_API const char *bsc_version(void);

/* The git commit the build was configured from ("1a2b3c4d5e6f", with
 * "-dirty" when the tree had uncommitted changes then), or "unknown"
 * outside a git checkout. Configure-time: rerun cmake to refresh it. */
BSC_API const char *bsc_git_commit(void);

#ifdef __cplusplus
}
#endif
#endif
