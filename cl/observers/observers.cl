/* Observers: norms of segments of flat vectors (one segment per layer), in a
 * fixed order so that the same run gives bitwise the same numbers.
 *
 * Most kernels run one work-group per segment (or one in all); each work
 * item walks its strided slice of the segment in order and the group then
 * adds the partial sums in a fixed tree in local memory. No atomics. The
 * local size must be a power of two. Segment s is [seg[s], seg[s+1]) in
 * elements, relative to the vectors' offsets. obs_seg_diff_sqnorm instead
 * gives each chunk to one work item (no local memory, no barriers). */

static void tree_sum(__local float *tmp, const uint lid, const uint lsz)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = lsz / 2; s > 0; s >>= 1) {
        if (lid < s)
            tmp[lid] += tmp[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* out[oo + c] = ||a - b||^2 over chunk c (c < nc), one work item per chunk
 * and no local memory or barriers: the work item walks its chunk in order
 * with float4 loads into two float4 accumulators, adds their lanes in a
 * fixed order and then the scalar tail, so the result does not depend on
 * the local size. When copy is set, b = a afterwards (each element is read
 * before it is overwritten by the same work item), so that one pass
 * measures an update and stores the new point. */
__kernel void obs_seg_diff_sqnorm(__global const float *a, const uint ao,
                                  __global float *b, const uint bo,
                                  __global const uint *seg, const uint nc,
                                  __global float *out, const uint oo, const int copy)
{
    const uint c = get_global_id(0);
    if (c >= nc)
        return;
    const uint lo = seg[c], hi = seg[c + 1];
    __global const float *pa = a + ao + lo;
    __global float *pb = b + bo + lo;
    const uint n = hi - lo, n8 = n & ~7u;
    float4 s0 = (float4)(0.0f), s1 = (float4)(0.0f);
    if (copy) {
        for (uint i = 0; i < n8; i += 8) {
            float4 v0 = vload4(0, pa + i), v1 = vload4(1, pa + i);
            float4 d0 = v0 - vload4(0, pb + i), d1 = v1 - vload4(1, pb + i);
            s0 += d0 * d0;
            s1 += d1 * d1;
            vstore4(v0, 0, pb + i);
            vstore4(v1, 1, pb + i);
        }
    } else {
        for (uint i = 0; i < n8; i += 8) {
            float4 d0 = vload4(0, pa + i) - vload4(0, pb + i);
            float4 d1 = vload4(1, pa + i) - vload4(1, pb + i);
            s0 += d0 * d0;
            s1 += d1 * d1;
        }
    }
    float4 s = s0 + s1;
    float acc = (s.x + s.y) + (s.z + s.w);
    for (uint i = n8; i < n; i++) {
        float v = pa[i];
        float d = v - pb[i];
        acc += d * d;
        if (copy)
            pb[i] = v;
    }
    out[oo + c] = acc;
}

/* For segment s: out[oo + 3s] = ||w - w0||^2, out[oo + 3s + 1] = ||w - ws||^2,
 * out[oo + 3s + 2] = ||w||^2; with copy, ws = w afterwards (the epoch's start
 * point for the next epoch). tmp holds 3 * local size floats. */
__kernel void obs_seg_distance(__global const float *w, const uint wo,
                               __global const float *w0, const uint w0o,
                               __global float *ws, const uint wso,
                               __global const uint *seg, __global float *out,
                               const uint oo, const int copy, __local float *tmp)
{
    const uint g = get_group_id(0);
    const uint lid = get_local_id(0);
    const uint lsz = get_local_size(0);
    const uint lo = seg[g], hi = seg[g + 1];
    float d0 = 0.0f, de = 0.0f, nw = 0.0f;
    for (uint i = lo + lid; i < hi; i += lsz) {
        float v = w[wo + i];
        float a = v - w0[w0o + i];
        float b = v - ws[wso + i];
        d0 += a * a;
        de += b * b;
        nw += v * v;
        if (copy)
            ws[wso + i] = v;
    }
    __local float *t0 = tmp, *t1 = tmp + lsz, *t2 = tmp + 2 * lsz;
    t0[lid] = d0;
    t1[lid] = de;
    t2[lid] = nw;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = lsz / 2; s > 0; s >>= 1) {
        if (lid < s) {
            t0[lid] += t0[lid + s];
            t1[lid] += t1[lid + s];
            t2[lid] += t2[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        out[oo + 3 * g] = t0[0];
        out[oo + 3 * g + 1] = t1[0];
        out[oo + 3 * g + 2] = t2[0];
    }
}

/* One work-group: out[oo] (+)= sum of x^2 over the nranges ranges
 * [ranges[2r], ranges[2r+1]), in range order. Used for ||sum_i g_i||^2 over
 * the whole gradient and, in the micro-batch fallback, for one example's
 * gradient over the layers that have no per-example hook. */
__kernel void obs_ranges_sqnorm(__global const float *x, const uint xo,
                                __global const uint *ranges, const uint nranges,
                                __global float *out, const uint oo, const int accumulate,
                                __local float *tmp)
{
    const uint lid = get_local_id(0);
    const uint lsz = get_local_size(0);
    float acc = 0.0f;
    for (uint r = 0; r < nranges; r++)
        for (uint i = ranges[2 * r] + lid; i < ranges[2 * r + 1]; i += lsz) {
            float v = x[xo + i];
            acc += v * v;
        }
    tmp[lid] = acc;
    tree_sum(tmp, lid, lsz);
    if (lid == 0)
        out[oo] = (accumulate ? out[oo] : 0.0f) + tmp[0];
}

/* One work-group over the per-example squared gradient norms q[0..n):
 * out[oo] = sum_i q_i, out[oo + 1] = sum_i sqrt(q_i). tmp: 2 * local size. */
__kernel void obs_pe_reduce(__global const float *q, const uint qo, const uint n,
                            __global float *out, const uint oo, __local float *tmp)
{
    const uint lid = get_local_id(0);
    const uint lsz = get_local_size(0);
    float s2 = 0.0f, s1 = 0.0f;
    for (uint i = lid; i < n; i += lsz) {
        float v = q[qo + i];
        s2 += v;
        s1 += sqrt(fmax(v, 0.0f));
    }
    __local float *t2 = tmp, *t1 = tmp + lsz;
    t2[lid] = s2;
    t1[lid] = s1;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = lsz / 2; s > 0; s >>= 1) {
        if (lid < s) {
            t2[lid] += t2[lid + s];
            t1[lid] += t1[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        out[oo] = t2[0];
        out[oo + 1] = t1[0];
    }
}
