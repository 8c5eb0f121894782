/* Host RNG: the documented Philox layout, value ranges and moments, element
 * independence, permutations; and the device's Philox (cl/runtime/philox.cl,
 * the file plugins include) against the same known answers and the host. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <Random123/philox.h>

#include "batchscope/device.h"
#include "batchscope/rng.h"
#include "batchscope/tensor.h"
#include "testutil.h"

/* Random123's known-answer test: Philox4x32-10 of a zero counter and key. */
static void test_known_answer(void **state)
{
    uint32_t w[4];
    (void)state;
    /* seed 0, purpose 0 (not an enum value, but the layout allows it). */
    bsc_rng_block(0, (bsc_rng_purpose)0, 0, 0, w);
    assert_int_equal(w[0], 0x6627e8d5u);
    assert_int_equal(w[1], 0xe169c58du);
    assert_int_equal(w[2], 0xbc57ac4cu);
    assert_int_equal(w[3], 0x9b00dbd8u);
}

/* The key/counter layout documented in rng.h, against philox4x32 directly. */
static void test_layout_matches_random123(void **state)
{
    const uint64_t seeds[] = {0, 42, 0x0123456789abcdefull};
    const uint64_t blocks[] = {0, 1, 7, 0x100000003ull};
    const uint32_t streams[] = {0, 3, 0xffffffffu};
    (void)state;
    for (size_t s = 0; s < 3; s++)
        for (size_t b = 0; b < 4; b++)
            for (size_t t = 0; t < 3; t++) {
                philox4x32_key_t key = {{(uint32_t)seeds[s], (uint32_t)(seeds[s] >> 32)}};
                philox4x32_ctr_t ctr = {{(uint32_t)blocks[b], (uint32_t)(blocks[b] >> 32),
                                         streams[t], (uint32_t)BSC_RNG_SHUFFLE}};
                philox4x32_ctr_t r = philox4x32(ctr, key);
                uint32_t w[4];
                bsc_rng_block(seeds[s], BSC_RNG_SHUFFLE, streams[t], blocks[b], w);
                for (int i = 0; i < 4; i++) {
                    assert_int_equal(w[i], r.v[i]);
                    assert_int_equal(bsc_rng_u32(seeds[s], BSC_RNG_SHUFFLE, streams[t],
                                                 blocks[b] * 4 + (uint64_t)i),
                                     r.v[i]);
                }
            }
}

/* philox.cl built as a plugin builds it: Random123's kat_vectors for
 * philox4x32_10, then blocks of host streams in rng.h's layout (which the
 * dropout kernel uses), word for word. */
static void test_device_philox(void **state)
{
    static const char src[] =
        "#include \"philox.cl\"\n"
        "__kernel void block(const uint c0, const uint c1, const uint c2, const uint c3,\n"
        "                    const uint k0, const uint k1, __global uint *out)\n"
        "{\n"
        "    uint4 r = philox4x32_10((uint4)(c0, c1, c2, c3), (uint2)(k0, k1));\n"
        "    out[0] = r.x; out[1] = r.y; out[2] = r.z; out[3] = r.w;\n"
        "}\n";
    static const cl_uint in[5][6] = {
        {0, 0, 0, 0, 0, 0},
        {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
        {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u},
        {7, 3, 11, BSC_RNG_DROPOUT, 0x89abcdefu, 0x01234567u},
        {0, 0, 0xffffffffu, BSC_RNG_DIRECTIONS, 42, 0},
    };
    uint32_t want[5][4] = {
        {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
        {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
        {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u},
    };
    bsc_rng_block(0x0123456789abcdefull, BSC_RNG_DROPOUT, 11, 7 + (3ull << 32), want[3]);
    bsc_rng_block(42, BSC_RNG_DIRECTIONS, 0xffffffffu, 0, want[4]);

    bsc_context *ctx = NULL;
    cl_kernel k;
    bsc_tensor out;
    int64_t four = 4;
    bsc_shape s = bsc_shape_make(1, &four);
    (void)state;
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    assert_int_equal(bsc_kernel_from_source(ctx, "test/philox.cl", src, NULL, "block", &k),
                     BSC_OK);
    assert_int_equal(bsc_tensor_alloc(ctx, BSC_I32, &s, &out), BSC_OK);
    for (int v = 0; v < 5; v++) {
        bsc_karg a[7];
        for (int j = 0; j < 6; j++)
            a[j] = BSC_ARG(in[v][j]);
        a[6] = BSC_ARG(out.mem);
        size_t g = 1;
        cl_uint got[4];
        assert_int_equal(bsc_launch(ctx, k, 7, a, 1, &g, NULL), BSC_OK);
        assert_int_equal(bsc_tensor_read(ctx, &out, got), BSC_OK);
        for (int j = 0; j < 4; j++)
            if (got[j] != want[v][j])
                fail_msg("philox vector %d word %d: got %08x want %08x", v, j, got[j],
                         want[v][j]);
    }
    bsc_tensor_free(&out);
    bsc_context_free(ctx);
}

static void test_purposes_differ(void **state)
{
    (void)state;
    uint32_t a = bsc_rng_u32(1, BSC_RNG_INIT, 0, 0);
    assert_int_not_equal(a, bsc_rng_u32(1, BSC_RNG_SHUFFLE, 0, 0));
    assert_int_not_equal(a, bsc_rng_u32(1, BSC_RNG_DROPOUT, 0, 0));
    assert_int_not_equal(a, bsc_rng_u32(2, BSC_RNG_INIT, 0, 0));
    assert_int_not_equal(a, bsc_rng_u32(1, BSC_RNG_INIT, 1, 0));
}

#define N_SAMPLES 200000

static void test_uniform(void **state)
{
    float *u = malloc(N_SAMPLES * sizeof *u);
    double sum = 0, sq = 0;
    (void)state;
    assert_non_null(u);
    bsc_rng_fill_uniform(7, BSC_RNG_INIT, 2, u, N_SAMPLES, -0.5f, 1.5f);
    for (size_t i = 0; i < N_SAMPLES; i++) {
        assert_true(u[i] >= -0.5f && u[i] < 1.5f);
        sum += u[i];
        sq += (double)u[i] * u[i];
    }
    double mean = sum / N_SAMPLES, var = sq / N_SAMPLES - mean * mean;
    assert_true(fabs(mean - 0.5) < 0.01);
    assert_true(fabs(var - 4.0 / 12.0) < 0.01);
    /* Any element alone equals the fill's. */
    for (size_t i = 0; i < 37; i++) {
        size_t k = (i * 7919) % N_SAMPLES;
        float v = -0.5f + 2.0f * bsc_rng_uniform(7, BSC_RNG_INIT, 2, k);
        assert_true(v == u[k]);
    }
    /* Unit range never reaches 1, even for the largest word. */
    float one[1];
    bsc_rng_fill_uniform(7, BSC_RNG_INIT, 2, one, 1, 0.0f, 1.0f);
    assert_true(one[0] < 1.0f);
    assert_true((float)(0xffffffffu >> 8) * (1.0f / 16777216.0f) < 1.0f);
    free(u);
}

static void test_normal(void **state)
{
    float *z = malloc(N_SAMPLES * sizeof *z);
    double sum = 0, sq = 0;
    size_t beyond3 = 0;
    (void)state;
    assert_non_null(z);
    bsc_rng_fill_normal(11, BSC_RNG_DIRECTIONS, 0, z, N_SAMPLES, 2.0f, 3.0f);
    for (size_t i = 0; i < N_SAMPLES; i++) {
        double x = (z[i] - 2.0) / 3.0;
        assert_true(isfinite(z[i]));
        sum += x;
        sq += x * x;
        beyond3 += fabs(x) > 3.0;
    }
    double mean = sum / N_SAMPLES, var = sq / N_SAMPLES - mean * mean;
    assert_true(fabs(mean) < 0.01);
    assert_true(fabs(var - 1.0) < 0.02);
    /* P(|z| > 3) = 0.0027 */
    assert_true(beyond3 > N_SAMPLES * 0.0015 && beyond3 < N_SAMPLES * 0.004);
    for (size_t k = 0; k < 11; k++) {
        float v = 2.0f + 3.0f * bsc_rng_normal(11, BSC_RNG_DIRECTIONS, 0, k);
        assert_true(fabsf(v - z[k]) <= 1e-6f * fabsf(z[k]) + 1e-6f);
    }
    /* An odd length ends mid-block without touching past n. */
    float small[6] = {0, 0, 0, 0, 0, 123.0f};
    bsc_rng_fill_normal(11, BSC_RNG_DIRECTIONS, 0, small, 5, 2.0f, 3.0f);
    assert_true(small[5] == 123.0f);
    assert_true(small[4] == z[4]);
    free(z);
}

static int is_permutation(const uint32_t *p, size_t n)
{
    unsigned char *seen = calloc(n ? n : 1, 1);
    int ok = seen != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        if (p[i] >= n || seen[p[i]])
            ok = 0;
        else
            seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_permutation(void **state)
{
    const size_t n = 60000;
    uint32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(bsc_rng_permutation(5, BSC_RNG_SHUFFLE, 0, a, n), BSC_OK);
    assert_true(is_permutation(a, n));
    assert_int_equal(bsc_rng_permutation(5, BSC_RNG_SHUFFLE, 0, b, n), BSC_OK);
    assert_memory_equal(a, b, n * sizeof *a);
    /* Next epoch (stream), another seed, another purpose: different orders. */
    assert_int_equal(bsc_rng_permutation(5, BSC_RNG_SHUFFLE, 1, b, n), BSC_OK);
    assert_true(is_permutation(b, n));
    assert_true(memcmp(a, b, n * sizeof *a) != 0);
    assert_int_equal(bsc_rng_permutation(6, BSC_RNG_SHUFFLE, 0, b, n), BSC_OK);
    assert_true(memcmp(a, b, n * sizeof *a) != 0);
    assert_int_equal(bsc_rng_permutation(5, BSC_RNG_SUBSET, 0, b, n), BSC_OK);
    assert_true(memcmp(a, b, n * sizeof *a) != 0);
    /* Not the identity, and few fixed points (expected about 1). */
    size_t fixed = 0;
    for (size_t i = 0; i < n; i++)
        fixed += a[i] == i;
    assert_true(fixed < 10);
    /* Edge sizes. */
    assert_int_equal(bsc_rng_permutation(5, BSC_RNG_SHUFFLE, 0, a, 0), BSC_OK);
    assert_int_equal(bsc_rng_permutation(5, BSC_RNG_SHUFFLE, 0, a, 1), BSC_OK);
    assert_int_equal(a[0], 0);
    free(a);
    free(b);
}

/* Every one of the 6 orders of 3 elements shows up about equally often
 * (a biased bounded integer would skew this). */
static void test_permutation_uniform(void **state)
{
    size_t counts[6] = {0};
    const size_t trials = 60000;
    (void)state;
    for (uint32_t s = 0; s < trials; s++) {
        uint32_t p[3];
        assert_int_equal(bsc_rng_permutation(9, BSC_RNG_SHUFFLE, s, p, 3), BSC_OK);
        counts[p[0] * 2 + (p[1] > p[2])]++;
    }
    for (int i = 0; i < 6; i++)
        assert_true(fabs((double)counts[i] - trials / 6.0) < 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_layout_matches_random123),
        cmocka_unit_test(test_device_philox),
        cmocka_unit_test(test_purposes_differ),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_normal),
        cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_permutation_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
