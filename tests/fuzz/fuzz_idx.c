/* Fuzz target: the IDX readers (plain or gzip), images and labels, on the
 * same input. */
#include "fuzz_input.h"

#include "batchscope/imagefiles.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    bsc_raw_images im = {0};
    if (bsc_idx_read_images(path, &im) == BSC_OK) {
        /* every pixel the header promises is there */
        volatile unsigned sum = 0;
        size_t total = im.n * (size_t)im.channels * (size_t)im.rows * (size_t)im.cols;
        for (size_t i = 0; i < total; i++)
            sum += im.pixels[i];
        (void)sum;
        bsc_raw_images_free(&im);
    }
    int32_t *labels = NULL;
    size_t n = 0;
    if (bsc_idx_read_labels(path, 10, &labels, &n) == BSC_OK) {
        for (size_t i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= 10)
                abort();
        free(labels);
    }
    return 0;
}
