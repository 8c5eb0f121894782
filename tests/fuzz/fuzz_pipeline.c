/* Fuzz target: the pipeline loader -- YAML parsing, --set overrides,
 * validation, and writing the resolved pipeline back and reading it again.
 * Input: the pipeline's text, then optionally a line "%%" followed by one
 * override ("key.path=value") per line. */
#include "fuzz_input.h"

#include "batchscope/pipeline.h"

#include <stdlib.h>
#include <string.h>

#define MAX_OVERRIDES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *overrides[MAX_OVERRIDES];
    size_t n = 0, yaml_len = size;
    char *sep = strstr(text, "\n%%\n");
    if (sep) {
        yaml_len = (size_t)(sep - text) + 1;
        for (char *line = sep + 4; *line && n < MAX_OVERRIDES;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            overrides[n++] = line;
            if (!nl)
                break;
            line = nl + 1;
        }
    }
    const char *path = fuzz_file(0, (const uint8_t *)text, yaml_len);
    bsc_pipeline *p = NULL;
    if (bsc_pipeline_load(path, overrides, n, &p) == BSC_OK) {
        /* what a study writes as OUT/pipeline.yaml must load again */
        const char *out = fuzz_tmp_path("pipeline.yaml");
        bsc_pipeline *again = NULL;
        if (bsc_pipeline_write(p, out) == BSC_OK &&
            bsc_pipeline_load(out, NULL, 0, &again) != BSC_OK)
            abort();
        bsc_pipeline_free(again);
        bsc_pipeline_free(p);
    }
    free(text);
    return 0;
}
