/* Shared by pipeline.c (loading and validation), pipeline_training.c (the
 * training section), pipeline_values.c (typed values of the pipeline's own
 * keys) and pipeline_override.c (`--set` overrides). Not a public header:
 * not exported from libbatchscope. */
#ifndef BATCHSCOPE_PIPELINE_INTERNAL_H
#define BATCHSCOPE_PIPELINE_INTERNAL_H

#include "batchscope/node.h"
#include "batchscope/pipeline.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

/* Applies one override "a.b.c=value" to the tree under root: a missing key
 * is created, an existing value replaced, a numeric component indexes a list
 * and a null value becomes a mapping when set inside. `index` is the
 * override's 1-based position on the command line; the nodes it creates are
 * marked "--set:<index>:<col>". Errors are BSC_ERR_USAGE naming the override. */
BSC_INTERNAL bsc_status bsc_pipeline_apply_override(bsc_node *root, const char *ov, int index);

/* ---- typed values (pipeline_values.c). `where` is the path of the mapping
 * ("training.optimizer", "" for the top); errors name where.key at the
 * value's file:line:col. An absent key gives the default. */

/* 1 when s is one of the NULL-terminated names. */
BSC_INTERNAL int bsc_pl_in_list(const char *s, const char *const *names);
/* "training" + "epochs" -> "training.epochs" in buf. */
BSC_INTERNAL const char *bsc_pl_qualify(const char *where, const char *key, char *buf, size_t len);
/* Every key of map must be in `allowed`; one of other_keys (those of the
 * other `type_word` than `type`) is a wrong combination, anything else an
 * unknown key with the closest allowed name. */
BSC_INTERNAL bsc_status bsc_pl_check_keys(const bsc_node *map, const char *where,
                                          const char *const *allowed,
                                          const char *const *other_keys, const char *type_word,
                                          const char *type);
BSC_INTERNAL bsc_status bsc_pl_get_long(const bsc_node *map, const char *where, const char *key,
                                        int required, long def, long min, long max, long *out);
/* Bounds of bsc_pl_get_double: closed unless marked open. */
enum { BSC_PL_CLOSED = 0, BSC_PL_LO_OPEN = 1, BSC_PL_HI_OPEN = 2 };
/* A finite number in the range. */
BSC_INTERNAL bsc_status bsc_pl_get_double(const bsc_node *map, const char *where, const char *key,
                                          double def, double min, double max, int open,
                                          double *out);
BSC_INTERNAL bsc_status bsc_pl_get_bool(const bsc_node *map, const char *where, const char *key,
                                        int def, int *out);
/* A string scalar that must be one of `choices`; *index gets its position. */
BSC_INTERNAL bsc_status bsc_pl_choice_value(const bsc_node *v, const char *name,
                                            const char *const *choices, int *index);
BSC_INTERNAL bsc_status bsc_pl_get_choice(const bsc_node *map, const char *where,
                                          const char *key, int def, const char *const *choices,
                                          int *index);
/* A non-empty string scalar, or NULL when absent. */
BSC_INTERNAL bsc_status bsc_pl_get_string(const bsc_node *map, const char *key, const char **out);
/* v must be a mapping ("NAME must be a mapping, got ..."). */
BSC_INTERNAL bsc_status bsc_pl_expect_map(const bsc_node *v, const char *name);

/* ---- the training section (pipeline_training.c) into t. */
BSC_INTERNAL bsc_status bsc_pl_parse_training(const bsc_node *training, bsc_training_cfg *t);

#endif
