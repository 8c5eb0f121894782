/* batchscope: counter-based random numbers on the host (Philox4x32-10).
 *
 * Every random number batchscope draws on the host is a pure function of
 * (seed, purpose, stream, index): nothing is stateful, so any element can be
 * regenerated alone, in any order, on any thread, and two uses that must not
 * share numbers (weight init and shuffling, say) can never collide.
 *
 * Layout of one Philox4x32-10 call (Random123's philox4x32(ctr, key)):
 *
 *     key = { seed & 0xffffffff, seed >> 32 }
 *     ctr = { block & 0xffffffff, block >> 32, stream, purpose }
 *
 * The full 64-bit seed lives in the key; the purpose sits in the counter's
 * top word rather than in the key so that no seed bits are traded for it.
 * One call yields four 32-bit words w[0..3] for one block.
 *
 *   raw word i        block = i / 4, word w[i % 4]
 *   uniform i         from raw word i: (w >> 8) * 2^-24, in [0, 1)
 *   normal i          block = i / 4; pair p = (i % 4) / 2 is (w[2p], w[2p+1]);
 *                     u1 = ((w[2p] >> 8) + 1) * 2^-24 in (0, 1],
 *                     u2 = (w[2p+1] >> 8) * 2^-24,
 *                     r = sqrt(-2 ln u1); even i: r cos(2 pi u2), odd i:
 *                     r sin(2 pi u2)  (Box-Muller, computed in double)
 *
 * cl/runtime/philox.cl is the same generator in OpenCL C, shared with
 * plugins (device.h): a kernel that builds key and counter this way draws
 * these very words. The dropout layer does, for purpose BSC_RNG_DROPOUT,
 * stream = step and block = element / 4 + (layer << 32).
 */
#ifndef BATCHSCOPE_RNG_H
#define BATCHSCOPE_RNG_H

#include "batchscope/api.h"
#include <stddef.h>
#include <stdint.h>
#include "batchscope/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the numbers are for. Values are part of the stream layout above:
 * never renumber, only append. */
typedef enum bsc_rng_purpose {
    BSC_RNG_INIT = 1,        /* initial weights */
    BSC_RNG_SHUFFLE = 2,     /* per-epoch example order (stream = epoch) */
    BSC_RNG_DROPOUT = 3,     /* host-side dropout masks, if any */
    BSC_RNG_DIRECTIONS = 4,  /* loss-surface / subspace directions */
    BSC_RNG_SUBSET = 5,      /* random subsets of examples */
    BSC_RNG_SHARPNESS = 6    /* sharpness: starting points, random subspace */
} bsc_rng_purpose;

/* The four words of block `block` (the raw Philox output). */
BSC_API void bsc_rng_block(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                   uint64_t block, uint32_t out[4]);

/* Raw word `index` of the stream: word index % 4 of block index / 4. */
BSC_API uint32_t bsc_rng_u32(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                     uint64_t index);

/* Uniform float in [0, 1) with 24 random bits (never 1.0). */
BSC_API float bsc_rng_uniform(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                      uint64_t index);

/* Standard normal (mean 0, variance 1) number `index` of the stream. */
BSC_API float bsc_rng_normal(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                     uint64_t index);

/* out[k] = lo + (hi - lo) * uniform k, for k in [0, n): the same numbers as
 * bsc_rng_uniform(seed, purpose, stream, k). Results stay in [lo, hi) when
 * lo < hi (a value that rounds up to hi is replaced by the float below hi). */
BSC_API void bsc_rng_fill_uniform(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                          float *out, size_t n, float lo, float hi);

/* out[k] = mean + std * normal k, for k in [0, n) (bsc_rng_normal's numbers). */
BSC_API void bsc_rng_fill_normal(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                         float *out, size_t n, float mean, float std);

/* A uniformly random permutation of 0..n-1 in perm[0..n): Fisher-Yates
 * (from the top down) whose swaps use unbiased bounded integers (Lemire's
 * multiply-and-reject) drawn in order from the raw words of
 * (seed, purpose, stream). Same arguments, same permutation; another stream
 * (e.g. the next epoch) gives an unrelated one. n > UINT32_MAX returns
 * BSC_ERR_INVALID; n == 0 is a no-op. */
BSC_API bsc_status bsc_rng_permutation(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                               uint32_t *perm, size_t n);

#ifdef __cplusplus
}
#endif
#endif
