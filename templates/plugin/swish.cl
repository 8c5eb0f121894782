/* The swish layer's kernels (swish.c builds them from the copy embedded in
 * the module): y = x * s with s = sigmoid(beta * x), elementwise over the
 * batch. Offsets are in elements: the host hands out views into larger
 * buffers. */

__kernel void swish_forward(__global const float *x, int xo, __global float *y, int yo, int n,
                            float beta)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float v = x[xo + i];
    float s = 1.0f / (1.0f + exp(-beta * v));
    y[yo + i] = v * s;
}

/* dy/dx = s + beta * x * s * (1 - s); recomputed from x rather than saved by
 * forward, so the layer needs no workspace. */
__kernel void swish_backward(__global const float *x, int xo, __global const float *dy, int dyo,
                             __global float *dx, int dxo, int n, float beta)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float v = x[xo + i];
    float s = 1.0f / (1.0f + exp(-beta * v));
    dx[dxo + i] = dy[dyo + i] * (s + beta * v * s * (1.0f - s));
}
