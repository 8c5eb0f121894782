/* A set of borrowed byte strings: open addressing with linear probing,
 * kept at most half full, so a lookup touches a couple of slots. */
#include "batchscope/hashset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    const void *key;     /* NULL: empty */
    size_t len;
    size_t value;
    uint64_t hash;
} slot;

struct bsc_hashset {
    slot *slots;
    size_t cap;          /* a power of two */
    size_t n;
};

/* FNV-1a with a final avalanche (murmur3's fmix64): FNV alone leaves
 * keys that differ in their last byte in neighbouring slots, which linear
 * probing turns into long runs. */
static uint64_t hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static slot *probe(slot *slots, size_t cap, const void *key, size_t len, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    for (;;) {
        slot *s = &slots[i];
        if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
            return s;
        i = (i + 1) & (cap - 1);
    }
}

static bsc_status resize(bsc_hashset *h, size_t cap)
{
    slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory growing a hash set to %zu slots", cap);
    for (size_t i = 0; i < h->cap; i++)
        if (h->slots[i].key)
            *probe(slots, cap, h->slots[i].key, h->slots[i].len, h->slots[i].hash) = h->slots[i];
    free(h->slots);
    h->slots = slots;
    h->cap = cap;
    return BSC_OK;
}

bsc_status bsc_hashset_new(size_t expected, bsc_hashset **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    size_t cap = 16;
    while (cap < 2 * expected && cap < ((size_t)1 << (sizeof(size_t) * 8 - 2)))
        cap *= 2;
    bsc_status s = resize(*out, cap);
    if (s != BSC_OK) {
        free(*out);
        *out = NULL;
    }
    return s;
}

void bsc_hashset_free(bsc_hashset *h)
{
    if (!h)
        return;
    free(h->slots);
    free(h);
}

bsc_status bsc_hashset_add(bsc_hashset *h, const void *key, size_t len, size_t value,
                           size_t *prev)
{
    /* An empty key still needs a non-NULL pointer: NULL marks empty slots. */
    static const char empty = 0;
    if (!key)
        key = &empty;
    uint64_t hv = hash_bytes(key, len);
    slot *s = probe(h->slots, h->cap, key, len, hv);
    if (s->key) {
        if (prev)
            *prev = s->value;
        return BSC_OK;
    }
    if (2 * (h->n + 1) > h->cap) {
        bsc_status st = resize(h, 2 * h->cap);
        if (st != BSC_OK)
            return st;
        s = probe(h->slots, h->cap, key, len, hv);
    }
    s->key = key;
    s->len = len;
    s->value = value;
    s->hash = hv;
    h->n++;
    if (prev)
        *prev = BSC_HASHSET_NEW;
    return BSC_OK;
}

size_t bsc_hashset_find(const bsc_hashset *h, const void *key, size_t len)
{
    static const char empty = 0;
    if (!key)
        key = &empty;
    const slot *s = probe(h->slots, h->cap, key, len, hash_bytes(key, len));
    return s->key ? s->value : BSC_HASHSET_NEW;
}

size_t bsc_hashset_count(const bsc_hashset *h)
{
    return h->n;
}
