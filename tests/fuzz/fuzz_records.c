/* Fuzz target: the study's JSON records, run.json and manifest.json, read
 * from the same input; what reads is written back and must read again. */
#include "fuzz_input.h"

#include "batchscope/records.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    bsc_run_record *r = NULL, *r2 = NULL;
    if (bsc_run_record_read(path, &r) == BSC_OK) {
        const char *out = fuzz_tmp_path("run.json");
        if (bsc_run_record_write(out, r) == BSC_OK && bsc_run_record_read(out, &r2) != BSC_OK)
            abort();
        bsc_run_record_free(r2);
        bsc_run_record_free(r);
    }
    bsc_manifest *m = NULL, *m2 = NULL;
    if (bsc_manifest_read(path, &m) == BSC_OK) {
        const char *out = fuzz_tmp_path("manifest.json");
        char *text = NULL;
        if (bsc_manifest_write(out, m) == BSC_OK && bsc_manifest_read(out, &m2) != BSC_OK)
            abort();
        if (bsc_manifest_render(m, &text) == BSC_OK && !text)
            abort();
        free(text);
        bsc_manifest_free(m2);
        bsc_manifest_free(m);
    }
    return 0;
}
