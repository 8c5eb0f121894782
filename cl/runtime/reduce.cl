/* Deterministic reductions: one work-group, each item sums a strided slice in
 * order, then a fixed tree in local memory. Same device, same result. */

__kernel void sum_scaled(__global const float *x, const uint xoff, const uint n,
                         __global float *dst, const uint doff, const float scale,
                         __local float *tmp)
{
    const uint lid = get_local_id(0);
    const uint lsz = get_local_size(0);
    float acc = 0.0f;
    for (uint i = lid; i < n; i += lsz)
        acc += x[xoff + i];
    tmp[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = lsz / 2; s > 0; s >>= 1) {
        if (lid < s)
            tmp[lid] += tmp[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        dst[doff] = scale * tmp[0];
}
