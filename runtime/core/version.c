#include "batchscope/version.h"

const char *bsc_version(void)
{
    return BSC_VERSION;
}
