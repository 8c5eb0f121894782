/* batchscope: checkpoints in the safetensors format.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 *
 *     {"1.weight": {"dtype": "F32", "shape": [64, 784], "data_offsets": [0, 200704]},
 *      ..., "__metadata__": {"key": "value", ...}}
 *
 * padded with spaces to a multiple of 8, then the tensors' raw little-endian
 * bytes; data_offsets are relative to the end of the header. The files load
 * with safetensors.torch.load_file and numpy alike.
 *
 * Only F32 data is written and read; other dtypes are parsed and validated
 * (so a mixed file opens) but fetching one is BSC_ERR_UNSUPPORTED naming it.
 */
#ifndef BATCHSCOPE_SAFETENSORS_H
#define BATCHSCOPE_SAFETENSORS_H

#include "batchscope/api.h"
#include <stddef.h>
#include <stdint.h>
#include "batchscope/status.h"
#include "batchscope/shape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One tensor to write: numel(shape) floats at data (host memory). */
typedef struct bsc_st_entry {
    const char *name;
    bsc_shape shape;
    const float *data;
} bsc_st_entry;

/* Writes the n tensors in the given order (data laid out in that order) and
 * n_meta metadata pairs (meta_keys[i] -> meta_values[i]; n_meta may be 0 and
 * the arrays NULL) to path through a temporary file and rename, so path is
 * either the old file or the complete new one. Names must be non-empty,
 * unique and not "__metadata__" (BSC_ERR_INVALID). */
BSC_API bsc_status bsc_safetensors_write(const char *path, const bsc_st_entry *tensors, size_t n,
                                 const char *const *meta_keys,
                                 const char *const *meta_values, size_t n_meta);

/* What the header says about one tensor. */
typedef struct bsc_st_info {
    const char *name;           /* owned by the file handle */
    const char *dtype;          /* "F32", "F16", ... */
    size_t elem_size;           /* bytes per element of dtype */
    bsc_shape shape;            /* rank <= BSC_MAX_DIMS (higher is rejected) */
    size_t numel;
    uint64_t begin, end;        /* data_offsets, relative to the data section */
} bsc_st_info;

typedef struct bsc_safetensors bsc_safetensors;

/* Opens path and validates the whole header: JSON syntax (strict: strings
 * with escapes, non-negative integers, arrays, objects; no duplicate keys),
 * exactly the keys dtype/shape/data_offsets per tensor, known dtypes,
 * end - begin == numel * elem_size, offsets inside the data section and
 * covering it exactly without overlap or holes. Failures are BSC_ERR_DATA
 * "path: offset X: problem" (X a byte offset in the file), BSC_ERR_IO or
 * BSC_ERR_NOT_FOUND for the file itself. Free with bsc_safetensors_close. */
BSC_API bsc_status bsc_safetensors_open(const char *path, bsc_safetensors **out);
BSC_API void bsc_safetensors_close(bsc_safetensors *f);

/* Tensors in header order. */
BSC_API size_t bsc_safetensors_count(const bsc_safetensors *f);
BSC_API const bsc_st_info *bsc_safetensors_at(const bsc_safetensors *f, size_t i);
/* The tensor called name, or NULL. */
BSC_API const bsc_st_info *bsc_safetensors_find(const bsc_safetensors *f, const char *name);

/* Reads tensor `name` (F32 only) into out, which holds `capacity` floats.
 * BSC_ERR_NOT_FOUND for an unknown name, BSC_ERR_UNSUPPORTED for another
 * dtype, BSC_ERR_INVALID when capacity < numel. */
BSC_API bsc_status bsc_safetensors_read(bsc_safetensors *f, const char *name, float *out,
                                size_t capacity);

/* The metadata value for key, or NULL. */
BSC_API const char *bsc_safetensors_meta(const bsc_safetensors *f, const char *key);
/* Metadata pairs in header order (for listing). */
BSC_API size_t bsc_safetensors_meta_count(const bsc_safetensors *f);
BSC_API void bsc_safetensors_meta_at(const bsc_safetensors *f, size_t i, const char **key,
                             const char **value);

#ifdef __cplusplus
}
#endif
#endif
