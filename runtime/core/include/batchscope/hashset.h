/* batchscope: a set of byte strings, for duplicate checks in linear time.
 *
 * A YAML mapping of 200k keys, or a list of 200k batch sizes, must be
 * checked for duplicates without comparing every entry with every other:
 * each entry is added once and an equal one already there is found in
 * expected constant time. Keys are borrowed (the set stores pointers into
 * the caller's memory, which must outlive it); each carries a value, the
 * caller's index of where it came from, so that an error can name the first
 * occurrence.
 */
#ifndef BATCHSCOPE_HASHSET_H
#define BATCHSCOPE_HASHSET_H

#include "batchscope/api.h"
#include <stddef.h>
#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bsc_hashset bsc_hashset;

/* An empty set sized for about `expected` keys (it grows as needed). */
BSC_API bsc_status bsc_hashset_new(size_t expected, bsc_hashset **out);
/* NULL is fine. */
BSC_API void bsc_hashset_free(bsc_hashset *h);

/* Adds key[0..len) with `value` unless an equal key is present. *prev (may
 * be NULL) gets the value stored with the equal key -- nothing is added
 * then -- or BSC_HASHSET_NEW when the key was added. BSC_ERR_NOMEM when the
 * set cannot grow. */
#define BSC_HASHSET_NEW ((size_t)-1)
BSC_API bsc_status bsc_hashset_add(bsc_hashset *h, const void *key, size_t len, size_t value,
                                   size_t *prev);

/* The value stored with key[0..len), or BSC_HASHSET_NEW when absent. */
BSC_API size_t bsc_hashset_find(const bsc_hashset *h, const void *key, size_t len);

/* The number of keys. */
BSC_API size_t bsc_hashset_count(const bsc_hashset *h);

#ifdef __cplusplus
}
#endif
#endif
