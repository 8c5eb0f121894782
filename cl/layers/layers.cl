/* batchscope layers plugin: elementwise and small reduction kernels.
 *
 * Tensors arrive as (buffer, element offset) pairs because layers see their
 * parameters as views into one flat buffer. Every kernel guards its index:
 * launches may round the global size up. Reductions run in a fixed order
 * (no atomics), so results are bitwise reproducible on a device.
 */

/* s[c] = sum over b, then p, of x[b, c, p] for x laid out [B, C, P]: the bias
 * gradient of dense (P = 1) and conv2d layers. One work item per channel
 * walks its channel in a fixed order. */
__kernel void channel_sum(__global const float *x, const int xo,
                          const int B, const int C, const int P,
                          __global float *s, const int so)
{
    int c = get_global_id(0);
    if (c >= C)
        return;
    float acc = 0.0f;
    for (int b = 0; b < B; b++) {
        __global const float *row = x + xo + ((size_t)b * C + c) * P;
        for (int p = 0; p < P; p++)
            acc += row[p];
    }
    s[so + c] = acc;
}

/* acc[i] += ||dout_i||^2 * (||in_i||^2 + bias): the squared norm of row i's
 * dense gradient dout_i (x) [in_i, 1], without forming the outer product. */
__kernel void dense_sqnorm(__global const float *x, const int xo,
                           __global const float *dy, const int dyo,
                           const int rows, const int nin, const int nout, const int bias,
                           __global float *acc, const int ao)
{
    int i = get_global_id(0);
    if (i >= rows)
        return;
    float sx = bias ? 1.0f : 0.0f;
    for (int k = 0; k < nin; k++) {
        float v = x[xo + i * nin + k];
        sx += v * v;
    }
    float sy = 0.0f;
    for (int k = 0; k < nout; k++) {
        float v = dy[dyo + i * nout + k];
        sy += v * v;
    }
    acc[ao + i] += sx * sy;
}

/* Activation modes: -D options from the plugin's one enum (layers.h). */
#if !defined(ACT_RELU) || !defined(ACT_LEAKY) || !defined(ACT_TANH) || !defined(ACT_SIGMOID)
#error "build with the activation modes as -D options (plugins/layers/common.c)"
#endif

__kernel void activation_forward(__global const float *x, const int xo,
                                 __global float *y, const int yo,
                                 const int n, const int mode, const float slope)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float v = x[xo + i], r;
    switch (mode) {
    case ACT_RELU: r = v > 0.0f ? v : 0.0f; break;
    case ACT_LEAKY: r = v > 0.0f ? v : slope * v; break;
    case ACT_TANH: r = tanh(v); break;
    default: r = 1.0f / (1.0f + exp(-v)); break;
    }
    y[yo + i] = r;
}

/* ReLU-like modes read the input (the kink is at x = 0); tanh and sigmoid
 * read their output, whose derivative is cheaper and exactly what forward
 * produced. */
__kernel void activation_backward(__global const float *x, const int xo,
                                  __global const float *y, const int yo,
                                  __global const float *dy, const int dyo,
                                  __global float *dx, const int dxo,
                                  const int n, const int mode, const float slope)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float g = dy[dyo + i], r;
    switch (mode) {
    case ACT_RELU: r = x[xo + i] > 0.0f ? g : 0.0f; break;
    case ACT_LEAKY: r = x[xo + i] > 0.0f ? g : slope * g; break;
    case ACT_TANH: { float t = y[yo + i]; r = g * (1.0f - t * t); break; }
    default: { float s = y[yo + i]; r = g * s * (1.0f - s); break; }
    }
    dx[dxo + i] = r;
}

/* The R-operator (plugin.h): ry = f'(x) rx, the directional derivative of
 * the activation's output. */
__kernel void activation_rforward(__global const float *x, const int xo,
                                  __global const float *y, const int yo,
                                  __global const float *rx, const int rxo,
                                  __global float *ry, const int ryo,
                                  const int n, const int mode, const float slope)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float r = rx[rxo + i], d;
    switch (mode) {
    case ACT_RELU: d = x[xo + i] > 0.0f ? 1.0f : 0.0f; break;
    case ACT_LEAKY: d = x[xo + i] > 0.0f ? 1.0f : slope; break;
    case ACT_TANH: { float t = y[yo + i]; d = 1.0f - t * t; break; }
    default: { float s = y[yo + i]; d = s * (1.0f - s); break; }
    }
    ry[ryo + i] = d * r;
}

/* Backward and its R-operator in one sweep: dx = f'(x) dy and
 * rdx = f'(x) rdy + R{f'(x)} dy, where R{f'(x)} = f''(x) rx is written
 * through the output: tanh' = 1 - y^2 gives R = -2 y ry, sigmoid' =
 * y (1 - y) gives R = (1 - 2y) ry, and relu'' = leaky'' = 0 (autograd's
 * convention at the kink). has_dx / has_rdx: which outputs to write. */
__kernel void activation_rbackward(__global const float *x, const int xo,
                                   __global const float *y, const int yo,
                                   __global const float *ry, const int ryo,
                                   __global const float *dy, const int dyo,
                                   __global const float *rdy, const int rdyo,
                                   __global float *dx, const int dxo, const int has_dx,
                                   __global float *rdx, const int rdxo, const int has_rdx,
                                   const int n, const int mode, const float slope)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float d, rd;
    switch (mode) {
    case ACT_RELU: d = x[xo + i] > 0.0f ? 1.0f : 0.0f; rd = 0.0f; break;
    case ACT_LEAKY: d = x[xo + i] > 0.0f ? 1.0f : slope; rd = 0.0f; break;
    case ACT_TANH: {
        float t = y[yo + i];
        d = 1.0f - t * t;
        rd = -2.0f * t * ry[ryo + i];
        break;
    }
    default: {
        float s = y[yo + i];
        d = s * (1.0f - s);
        rd = (1.0f - 2.0f * s) * ry[ryo + i];
        break;
    }
    }
    /* relu and leaky_relu may come without dy (r_hints): rd = 0 there and
     * dy is read only when it counts. */
    if (has_dx)
        dx[dxo + i] = d * dy[dyo + i];
    if (has_rdx)
        rdx[rdxo + i] = d * rdy[rdyo + i] + (rd != 0.0f ? rd * dy[dyo + i] : 0.0f);
}
