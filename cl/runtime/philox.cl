/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC'11): a counter-based generator, so any work item can draw the
 * numbers for its own (key, counter) without shared state, and the host can
 * reproduce them exactly. #include this file; it defines no kernels. */
#ifndef BSC_PHILOX_CL
#define BSC_PHILOX_CL

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint4 philox4x32_round(uint4 c, uint2 k)
{
    uint hi0 = mul_hi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
    uint hi1 = mul_hi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
    return (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
}

/* Four 32-bit random words for counter c under key k. */
static inline uint4 philox4x32_10(uint4 c, uint2 k)
{
    for (int r = 0; r < 10; r++) {
        if (r > 0)
            k += (uint2)(PHILOX_W0, PHILOX_W1);
        c = philox4x32_round(c, k);
    }
    return c;
}

/* A uniform float in [0, 1) from the top 24 bits (all a float holds). */
static inline float philox_uniform(uint r)
{
    return (float)(r >> 8) * (1.0f / 16777216.0f);
}

#endif
