/* Shared by cl_source.c (where OpenCL C text comes from, #include inlining)
 * and program_cache.c (which keys, builds and caches the result). Not a
 * public header: these symbols are not exported from libbatchscope. */
#ifndef BATCHSCOPE_CL_SOURCE_INTERNAL_H
#define BATCHSCOPE_CL_SOURCE_INTERNAL_H

#include <stddef.h>
#include "batchscope/status.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

/* Reads a whole regular file of at most 1 GiB into *out (malloc'ed, with a
 * terminating NUL for text use that *len excludes). A missing file is
 * BSC_ERR_NOT_FOUND, anything else unreadable BSC_ERR_IO, both "path: why". */
BSC_INTERNAL bsc_status bsc_cl_read_file(const char *path, char **out, size_t *len);

/* What an #include line may name. */
typedef enum bsc_cl_include_scope {
    BSC_CL_INCLUDE_RUNTIME, /* any runtime cl/ file: the runtime's own programs */
    BSC_CL_INCLUDE_PLUGIN   /* only the files device.h lists as shared with plugins */
} bsc_cl_include_scope;

/* The full source of `program` (whose text is `text`) with every
 * `#include "x.cl"` replaced by x.cl's own expanded text (found with
 * bsc_cl_source), each file at most once, with #line directives that keep
 * build-log line numbers true (an existing `#line N "f"` in the text moves
 * our count along with it); *out malloc'ed. A name outside `scope` fails
 * with BSC_ERR_NOT_FOUND naming the file, its includer and the line. */
BSC_INTERNAL bsc_status bsc_cl_preprocess(const char *program, const char *text,
                                          bsc_cl_include_scope scope, char **out);

#endif
