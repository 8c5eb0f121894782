/* batchscope: a small JSON writer for manifests and reports.
 * Keys are passed with each value (NULL inside arrays); commas, escaping
 * and nesting are tracked here. An allocation failure is remembered and
 * reported by bsc_json_finish(). */
#ifndef BATCHSCOPE_JSON_H
#define BATCHSCOPE_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BSC_JSON_MAX_DEPTH 32

typedef struct bsc_json {
    char *buf;
    size_t len, cap;
    int depth;
    int count[BSC_JSON_MAX_DEPTH];
    char closer[BSC_JSON_MAX_DEPTH];
    int failed;
} bsc_json;

void bsc_json_init(bsc_json *j);
void bsc_json_object(bsc_json *j, const char *key);   /* opens { */
void bsc_json_array(bsc_json *j, const char *key);    /* opens [ */
void bsc_json_end(bsc_json *j);                       /* closes the innermost */
void bsc_json_string(bsc_json *j, const char *key, const char *value); /* NULL -> null */
void bsc_json_number(bsc_json *j, const char *key, double value);     /* NaN/Inf -> null */
void bsc_json_int(bsc_json *j, const char *key, int64_t value);
void bsc_json_bool(bsc_json *j, const char *key, int value);
/* Returns the text (owned by j until bsc_json_free) or an error. */
bsc_status bsc_json_finish(bsc_json *j, const char **text, size_t *len);
void bsc_json_free(bsc_json *j);
/* bsc_json_finish, then writes the text to path atomically. */
bsc_status bsc_json_write_file(bsc_json *j, const char *path);

#ifdef __cplusplus
}
#endif
#endif
