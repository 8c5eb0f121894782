/* Counter-based host RNG: Philox4x32-10 from Random123, laid out as rng.h says. */
#include "batchscope/rng.h"

#include <math.h>
#include <Random123/philox.h>

#define TWO_PI 6.283185307179586476925286766559
#define INV_2_24 (1.0f / 16777216.0f)

void bsc_rng_block(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                   uint64_t block, uint32_t out[4])
{
    philox4x32_key_t key = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    philox4x32_ctr_t ctr = {{(uint32_t)block, (uint32_t)(block >> 32), stream,
                             (uint32_t)purpose}};
    philox4x32_ctr_t r = philox4x32(ctr, key);
    out[0] = r.v[0];
    out[1] = r.v[1];
    out[2] = r.v[2];
    out[3] = r.v[3];
}

uint32_t bsc_rng_u32(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                     uint64_t index)
{
    uint32_t w[4];
    bsc_rng_block(seed, purpose, stream, index / 4, w);
    return w[index % 4];
}

/* The top 24 bits fit a float's mantissa exactly, so the result is exact
 * and strictly below 1. */
static float word_to_unit(uint32_t w)
{
    return (float)(w >> 8) * INV_2_24;
}

/* One Box-Muller pair from two words; u1 is shifted into (0, 1] so the log
 * is finite. */
static void box_muller(uint32_t a, uint32_t b, double *z0, double *z1)
{
    double u1 = ((double)(a >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(b >> 8) / 16777216.0;
    double r = sqrt(-2.0 * log(u1));
    *z0 = r * cos(TWO_PI * u2);
    *z1 = r * sin(TWO_PI * u2);
}

float bsc_rng_uniform(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                      uint64_t index)
{
    return word_to_unit(bsc_rng_u32(seed, purpose, stream, index));
}

float bsc_rng_normal(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                     uint64_t index)
{
    uint32_t w[4];
    double z0, z1;
    unsigned p = (unsigned)(index % 4) / 2;
    bsc_rng_block(seed, purpose, stream, index / 4, w);
    box_muller(w[2 * p], w[2 * p + 1], &z0, &z1);
    return (float)(index % 2 == 0 ? z0 : z1);
}

static float scale_uniform(float u, float lo, float hi)
{
    float v = lo + (hi - lo) * u;
    /* Rounding can land exactly on hi; the contract is a half-open range. */
    if (lo < hi && v >= hi)
        v = nextafterf(hi, lo);
    return v;
}

void bsc_rng_fill_uniform(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                          float *out, size_t n, float lo, float hi)
{
    uint32_t w[4];
    for (size_t base = 0; base < n; base += 4) {
        bsc_rng_block(seed, purpose, stream, base / 4, w);
        for (size_t j = 0; j < 4 && base + j < n; j++)
            out[base + j] = scale_uniform(word_to_unit(w[j]), lo, hi);
    }
}

void bsc_rng_fill_normal(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                         float *out, size_t n, float mean, float std)
{
    uint32_t w[4];
    double z[4];
    for (size_t base = 0; base < n; base += 4) {
        bsc_rng_block(seed, purpose, stream, base / 4, w);
        box_muller(w[0], w[1], &z[0], &z[1]);
        box_muller(w[2], w[3], &z[2], &z[3]);
        for (size_t j = 0; j < 4 && base + j < n; j++)
            out[base + j] = (float)((double)mean + (double)std * z[j]);
    }
}

/* Sequential reader over the raw words of one stream, one Philox call per
 * four words. */
typedef struct word_stream {
    uint64_t seed;
    bsc_rng_purpose purpose;
    uint32_t stream;
    uint64_t index;
    uint32_t buf[4];
} word_stream;

static uint32_t next_word(word_stream *s)
{
    if (s->index % 4 == 0)
        bsc_rng_block(s->seed, s->purpose, s->stream, s->index / 4, s->buf);
    return s->buf[s->index++ % 4];
}

/* Uniform integer in [0, range), range >= 1, without modulo bias: Lemire's
 * method rejects the few low products that would over-represent some values. */
static uint32_t bounded(word_stream *s, uint32_t range)
{
    uint64_t m = (uint64_t)next_word(s) * range;
    uint32_t low = (uint32_t)m;
    if (low < range) {
        uint32_t threshold = (uint32_t)(-range) % range;
        while (low < threshold) {
            m = (uint64_t)next_word(s) * range;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

bsc_status bsc_rng_permutation(uint64_t seed, bsc_rng_purpose purpose, uint32_t stream,
                               uint32_t *perm, size_t n)
{
    word_stream s = {seed, purpose, stream, 0, {0, 0, 0, 0}};
    if (n > UINT32_MAX)
        return bsc_fail(BSC_ERR_INVALID,
                        "permutation of %zu elements: at most %u are supported", n,
                        (unsigned)UINT32_MAX);
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        uint32_t j = bounded(&s, (uint32_t)i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    return BSC_OK;
}
