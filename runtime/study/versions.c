/* The versions of what a study runs with, from each layer's own query:
 * `batchscope --version` prints them and manifest.json records them. */
#include "batchscope/study.h"

#include "batchscope/device.h"
#include "batchscope/node.h"
#include "batchscope/plugin.h"
#include "batchscope/records.h"
#include "batchscope/version.h"

#include <stdio.h>
#include <string.h>

void bsc_versions_get(bsc_versions *v)
{
    memset(v, 0, sizeof *v);
    v->batchscope = bsc_version();
    v->git_commit = bsc_git_commit();
    snprintf(v->plugin_abi, sizeof v->plugin_abi, "%d.%d", BSC_ABI_MAJOR, BSC_ABI_MINOR);
    v->clblast = bsc_clblast_version();
    v->libyaml = bsc_yaml_library_version();
    v->jansson = bsc_json_library_version();
    bsc_opencl_loader_version(v->opencl_icd_loader, sizeof v->opencl_icd_loader);
}
