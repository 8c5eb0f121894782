/* The fuzz targets' shared plumbing. The readers under test take a path,
 * as the study gives them one: each input is written to an in-memory file
 * (memfd) that the reader opens as /proc/self/fd/N, so no disk is touched
 * per input. Writers that must rename (round trips) use one temporary
 * directory per process, removed at exit. */
#ifndef BSC_FUZZ_INPUT_H
#define BSC_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* The path of an in-memory file holding data[0..size); slot (0..3) picks
 * one of several files, for targets that need more than one at once. The
 * path stays valid until the next call with the same slot. */
const char *fuzz_file(int slot, const uint8_t *data, size_t size);

/* dir/name in this process's temporary directory (created on first use). */
const char *fuzz_tmp_path(const char *name);

/* The libFuzzer entry point each target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
