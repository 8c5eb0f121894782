/* test_embed_cl fixture: includes a file embedded with it, twice, and the
 * runtime's philox.cl, which the embed step must leave alone. */
#include "helper.cl"
#include "philox.cl"
  #  include "helper.cl"

__kernel void fill(__global float *x, const ulong n)
{
    size_t i = get_global_id(0);
    if (i >= n)
        return;
    float u = philox_uniform(philox4x32_10((uint4)((uint)i, 0, 0, 0), (uint2)(0, 0)).x);
    x[i] = helper_value() + (float)i + (u < 1.0f ? 0.0f : 1.0f);
}
