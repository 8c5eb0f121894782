/* Fuzz target: the safetensors reader -- header validation, lookups, the
 * metadata and reading every F32 tensor. */
#include "fuzz_input.h"

#include "batchscope/safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bsc_safetensors *f = NULL;
    if (bsc_safetensors_open(fuzz_file(0, data, size), &f) != BSC_OK)
        return 0;
    for (size_t i = 0; i < bsc_safetensors_count(f); i++) {
        const bsc_st_info *t = bsc_safetensors_at(f, i);
        if (bsc_safetensors_find(f, t->name) != t)
            abort();
        /* the header was checked against the file: numel elements fit in it */
        if (strcmp(t->dtype, "F32") != 0 || t->numel > size / 4 + 1)
            continue;
        float *v = malloc((t->numel ? t->numel : 1) * sizeof *v);
        if (v && bsc_safetensors_read(f, t->name, v, t->numel) == BSC_OK) {
            volatile float sum = 0;
            for (size_t k = 0; k < t->numel; k++)
                sum += v[k];
            (void)sum;
        }
        free(v);
    }
    for (size_t i = 0; i < bsc_safetensors_meta_count(f); i++) {
        const char *k, *v;
        bsc_safetensors_meta_at(f, i, &k, &v);
        if (bsc_safetensors_meta(f, k) == NULL)
            abort();
    }
    bsc_safetensors_close(f);
    return 0;
}
