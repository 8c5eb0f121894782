#include "batchscope/version.h"

const char *bsc_version(void)
{
    return BSC_VERSION;
}

const char *bsc_git_commit(void)
{
#ifdef BSC_GIT_COMMIT
    return BSC_GIT_COMMIT[0] ? BSC_GIT_COMMIT : "unknown";
#else
    return "unknown";
#endif
}
