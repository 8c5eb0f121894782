/* placeholder until the command lands */
#include "batchscope/batchscope.h"
#include <stdio.h>
int main(void) { printf("batchscope %s\n", bsc_version()); return 0; }
