/* batchscope: the YAML document as a tree of located nodes.
 *
 * The pipeline file is parsed with libyaml into bsc_node trees that remember
 * where each node came from (file, line, column, byte offset), so that any
 * consumer -- the pipeline validator, or a plugin checking its own options --
 * reports errors as "file:line:col: message". Plugins read their options only
 * through the accessors below.
 */
#ifndef BATCHSCOPE_NODE_H
#define BATCHSCOPE_NODE_H

#include "batchscope/api.h"
#include <stddef.h>
#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bsc_node_kind { BSC_NODE_SCALAR, BSC_NODE_MAP, BSC_NODE_SEQ } bsc_node_kind;

typedef struct bsc_node {
    bsc_node_kind kind;
    char *value;          /* scalars: the text; NULL otherwise */
    int quoted;           /* scalars: written quoted (so "12" is a string) */
    size_t n;             /* entries of a map or items of a sequence */
    struct bsc_node **keys;   /* maps: n key scalars (with their own marks) */
    struct bsc_node **items;  /* maps: n values; sequences: n items */
    const char *file;     /* shared, owned by the document */
    int line, col;        /* 1-based */
    size_t offset;        /* byte offset in the file */
} bsc_node;

/* Parses a YAML file (one document) into a tree. Syntax errors return
 * BSC_ERR_PARSE as "file:line:col: problem". Anchors/aliases are rejected. */
BSC_API bsc_status bsc_node_parse_file(const char *path, bsc_node **root);
/* Parses YAML text; `name` is used as the file name in marks and messages. */
BSC_API bsc_status bsc_node_parse_string(const char *name, const char *text, bsc_node **root);
BSC_API void bsc_node_free(bsc_node *root);
/* The version of the libyaml the library runs with ("0.2.5"). */
BSC_API const char *bsc_yaml_library_version(void);
/* A deep copy (marks kept). */
BSC_API bsc_status bsc_node_clone(const bsc_node *n, bsc_node **out);
/* Writes the tree as block-style YAML to path via a temporary file and rename. */
BSC_API bsc_status bsc_node_write_file(const bsc_node *root, const char *path);

/* Compares two trees by content: kinds, scalar texts, map keys (in any
 * order) and list items (in order). Returns 0 when they agree; otherwise 1
 * with the first difference, in a's order: its key path in `path`
 * ("training.epochs", "training.batch_sizes[1]") and the differing nodes
 * in *da and *db (NULL for a key that only the other tree has). */
BSC_API int bsc_node_diff(const bsc_node *a, const bsc_node *b, char *path, size_t len,
                          const bsc_node **da, const bsc_node **db);
/* n on one line in flow style ("5", "[32, 256]", "{type: sgd, lr: 0.1}"),
 * truncated with "..." to fit; "(absent)" for NULL. */
BSC_API void bsc_node_flow(const bsc_node *n, char *buf, size_t len);

/* The value of `key` in a map, or NULL (also NULL when map is not a map). */
BSC_API const bsc_node *bsc_node_get(const bsc_node *map, const char *key);
/* The key node of `key` in a map, or NULL. */
BSC_API const bsc_node *bsc_node_key(const bsc_node *map, const char *key);

/* bsc_fail(s, "file:line:col: <fmt>") at the node's mark. */
BSC_API bsc_status bsc_node_fail(const bsc_node *n, bsc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Every key of `map` must be one of the NULL-terminated `allowed`; otherwise
 * BSC_ERR_INVALID at the key: "unknown key 'lerning_rate' (did you mean
 * 'learning_rate'?)". A node that is not a map is an error too. */
BSC_API bsc_status bsc_node_check_keys(const bsc_node *map, const char *const *allowed);

/* Scalar conversions with range checks; errors at the node's mark. */
BSC_API bsc_status bsc_node_to_long(const bsc_node *n, long min, long max, long *out);
BSC_API bsc_status bsc_node_to_double(const bsc_node *n, double min, double max, double *out);
BSC_API bsc_status bsc_node_to_bool(const bsc_node *n, int *out);   /* true/false/yes/no/on/off */
BSC_API bsc_status bsc_node_to_string(const bsc_node *n, const char **out);

/* Optional keys of a map: when absent *out = def and BSC_OK. */
BSC_API bsc_status bsc_opt_long(const bsc_node *map, const char *key, long def, long min, long max,
                        long *out);
BSC_API bsc_status bsc_opt_double(const bsc_node *map, const char *key, double def, double min,
                          double max, double *out);
BSC_API bsc_status bsc_opt_bool(const bsc_node *map, const char *key, int def, int *out);
/* `choices` (NULL-terminated) restricts the value, with a closest-name hint. */
BSC_API bsc_status bsc_opt_string(const bsc_node *map, const char *key, const char *def,
                          const char *const *choices, const char **out);
/* Required variants: a missing key is an error at the map's mark. */
BSC_API bsc_status bsc_req_long(const bsc_node *map, const char *key, long min, long max, long *out);
BSC_API bsc_status bsc_req_double(const bsc_node *map, const char *key, double min, double max,
                          double *out);
BSC_API bsc_status bsc_req_string(const bsc_node *map, const char *key, const char *const *choices,
                          const char **out);
/* A scalar or a sequence of numbers ("1e-3" or "[1e-3, 5e-4]"); *out malloc'ed. */
BSC_API bsc_status bsc_opt_double_list(const bsc_node *map, const char *key, const double *def,
                               size_t ndef, double min, double max, double **out, size_t *n);
BSC_API bsc_status bsc_opt_long_list(const bsc_node *map, const char *key, const long *def,
                             size_t ndef, long min, long max, long **out, size_t *n);

/* The candidate closest to `name` by edit distance, or NULL when none is
 * close enough to be a plausible typo. */
BSC_API const char *bsc_closest_name(const char *name, const char *const *candidates, size_t n);

/* ---- helpers the pipeline and plugins word their errors with */

/* "a mapping", "a list" or "a scalar", for messages. */
BSC_API const char *bsc_node_kind_word(const bsc_node *n);

/* YAML null: an unquoted scalar that is empty (`key:` with nothing after
 * it), "~" or "null". */
BSC_API int bsc_node_is_null(const bsc_node *n);

/* BSC_ERR_INVALID at n: "<label> must be <what>, got ..." naming what n is
 * (a kind, a quoted string, or its text); a NULL label says "value". */
BSC_API bsc_status bsc_node_bad_value(const bsc_node *n, const char *label,
                                      const char *what);

/* The entries of a NULL-terminated name list (0 for a NULL list). */
BSC_API size_t bsc_names_count(const char *const *names);

/* "a, b, c" into buf, truncated with "..." when it does not fit. */
BSC_API void bsc_names_join(const char *const *names, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
