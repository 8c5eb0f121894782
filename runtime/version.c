#include "batchscope/batchscope.h"

const char *bsc_version(void)
{
    return BSC_VERSION;
}
