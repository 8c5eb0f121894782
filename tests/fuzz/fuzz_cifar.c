/* Fuzz target: the CIFAR-10 binary reader, one or two batch files (the
 * input split in two at its first byte's value, when that fits). */
#include "fuzz_input.h"

#include "batchscope/imagefiles.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cut = size;
    if (size > 1)
        cut = 1 + (size_t)data[0] * 13 % (size - 1);
    const char *paths[2] = {fuzz_file(0, data, cut), fuzz_file(1, data + cut, size - cut)};
    for (size_t files = 1; files <= 2; files++) {
        bsc_raw_images im = {0};
        int32_t *labels = NULL;
        if (bsc_cifar_read(paths, files, 10, &im, &labels) != BSC_OK)
            continue;
        if (im.channels != 3 || im.rows != 32 || im.cols != 32)
            abort();
        for (size_t i = 0; i < im.n; i++)
            if (labels[i] < 0 || labels[i] >= 10)
                abort();
        bsc_raw_images_free(&im);
        free(labels);
    }
    return 0;
}
