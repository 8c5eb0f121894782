/* Shared by the pieces of the YAML layer (node.c: trees and parsing,
 * node_write.c, node_access.c: typed accessors) and by the pipeline
 * (pipeline.c, pipeline_override.c), which words its errors the same way.
 * Not a public header: these symbols are not exported from libbatchscope. */
#ifndef BATCHSCOPE_NODE_INTERNAL_H
#define BATCHSCOPE_NODE_INTERNAL_H

#include <stddef.h>
#include "batchscope/node.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

/* "a mapping", "a list" or "a scalar", for messages. */
BSC_INTERNAL const char *bsc_node_kind_word(const bsc_node *n);

/* YAML null: an unquoted scalar that is empty (`key:` with nothing after
 * it), "~" or "null". */
BSC_INTERNAL int bsc_node_is_null(const bsc_node *n);

/* BSC_ERR_INVALID at n: "<label> must be <what>, got ..." naming what n is
 * (a kind, a quoted string, or its text); a NULL label says "value". */
BSC_INTERNAL bsc_status bsc_node_bad_value(const bsc_node *n, const char *label,
                                           const char *what);

/* The entries of a NULL-terminated name list (0 for a NULL list). */
BSC_INTERNAL size_t bsc_names_count(const char *const *names);

/* "a, b, c" into buf, truncated with "..." when it does not fit. */
BSC_INTERNAL void bsc_names_join(const char *const *names, char *buf, size_t len);

#endif
