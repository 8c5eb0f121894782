/* Shared between safetensors.c (file handle, validation, reads) and
 * safetensors_header.c (the strict JSON header parser). Not public. */
#ifndef BATCHSCOPE_SAFETENSORS_INTERNAL_H
#define BATCHSCOPE_SAFETENSORS_INTERNAL_H

#include <stdio.h>
#include "batchscope/safetensors.h"

#define ST_METADATA "__metadata__"

typedef struct st_tensor {
    bsc_st_info info;           /* first: bsc_safetensors_at returns &info */
    char *name;
    char *dtype;
    size_t where;               /* file offset of its data_offsets, for messages */
} st_tensor;

struct bsc_safetensors {
    char *path;
    FILE *file;
    uint64_t data_start;        /* 8 + header length */
    uint64_t data_size;
    st_tensor *tensors;
    size_t n, cap;
    char **meta_keys, **meta_values;
    size_t n_meta, cap_meta;
};

/* Parses the len header bytes (which start at file offset 8) into f's
 * tensors (name, dtype, elem_size, shape, begin/end, where) and metadata.
 * Syntax and shape errors: BSC_ERR_DATA "path: offset X: ...". Sizes and
 * offsets are checked afterwards by the caller. */
bsc_status bsc_st_parse_header(const char *hdr, size_t len, const char *path,
                               bsc_safetensors *f);

#endif
