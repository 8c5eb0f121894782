/* batchscope layers plugin: inverted dropout.
 *
 * The mask comes from Philox4x32-10 in the host RNG's layout
 * (runtime/include/batchscope/rng.h): key = the 64-bit study seed, counter =
 * {block lo, block hi, stream, purpose} with purpose BSC_RNG_DROPOUT (3),
 * stream = the optimizer step (low 32 bits) and block = g + (layer << 32).
 * So element e of layer L at step s keeps iff
 *     bsc_rng_uniform(seed, BSC_RNG_DROPOUT, s, 4 * (e / 4 + (L << 32)) + e % 4) >= p,
 * the same on any device, any launch shape, and on the host. Each work item
 * draws one block of four words for elements 4g .. 4g+3. The mask (0 or
 * 1/(1-p)) is stored for backward. */
#include "philox.cl"

__kernel void dropout_forward(__global const float *x, const int xo,
                              __global float *y, const int yo,
                              __global float *mask, const int mo,
                              const int n, const float p, const float scale,
                              const uint key0, const uint key1, const uint layer,
                              const uint stream, const uint purpose)
{
    int g = get_global_id(0);
    if (g >= (n + 3) / 4)
        return;
    uint4 r = philox4x32_10((uint4)((uint)g, layer, stream, purpose),
                            (uint2)(key0, key1));
    uint w[4] = {r.x, r.y, r.z, r.w};
    for (int j = 0; j < 4; j++) {
        int e = 4 * g + j;
        if (e >= n)
            break;
        float m = philox_uniform(w[j]) >= p ? scale : 0.0f;
        mask[mo + e] = m;
        y[yo + e] = x[xo + e] * m;
    }
}

/* dx = dy * mask (elementwise; also usable as a generic masked product). */
__kernel void dropout_backward(__global const float *dy, const int dyo,
                               __global const float *mask, const int mo,
                               __global float *dx, const int dxo, const int n)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    dx[dxo + i] = dy[dyo + i] * mask[mo + i];
}
