/* batchscope layers plugin: batch normalization over x[B, C, S] (S = 1 for
 * BatchNorm1d, H*W for BatchNorm2d).
 *
 * Per-channel sums use one work-group of LOCAL_N items per channel: each item
 * walks a fixed stride of the channel, then a fixed tree combines the items,
 * so the order of additions never depends on scheduling (bitwise
 * reproducible) and no atomics are needed. The workspace `save` holds, per
 * channel: mean, invstd, and in backward sum(dy), sum(dy * xhat). */

/* The plugin passes LOCAL_N as a build option: the group size it launches
 * these kernels with (LAYERS_REDUCE_LOCAL in layers.h, or the largest power
 * of two below it that the device allows them). */
#ifndef LOCAL_N
#error "LOCAL_N comes from the layers plugin's build options (layers_kernel)"
#endif

/* Tree-sums red[0..LOCAL_N) into red[0]; every item must call it. */
static float tree_sum(__local float *red, float v)
{
    int l = get_local_id(0);
    red[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LOCAL_N / 2; s > 0; s >>= 1) {
        if (l < s)
            red[l] += red[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);   /* red is reused by the next call */
    return r;
}

/* Training: batch mean and biased variance (two passes, for accuracy);
 * saves mean and 1/sqrt(var + eps); when `update`, moves the running stats
 * toward the batch's with the UNBIASED variance, as PyTorch does. */
__kernel __attribute__((reqd_work_group_size(LOCAL_N, 1, 1)))
void bn_stats_train(__global const float *x, const int xo, const int B, const int C,
                    const int S, __global float *rmean, const int rmo,
                    __global float *rvar, const int rvo, __global float *save, const int so,
                    const float momentum, const float eps, const int update)
{
    __local float red[LOCAL_N];
    int c = get_group_id(0), l = get_local_id(0);
    int n = B * S;
    float acc = 0.0f;
    for (int j = l; j < n; j += LOCAL_N) {
        int b = j / S, s = j - b * S;
        acc += x[xo + (b * C + c) * S + s];
    }
    float mean = tree_sum(red, acc) / (float)n;
    acc = 0.0f;
    for (int j = l; j < n; j += LOCAL_N) {
        int b = j / S, s = j - b * S;
        float d = x[xo + (b * C + c) * S + s] - mean;
        acc += d * d;
    }
    float var = tree_sum(red, acc) / (float)n;
    if (l == 0) {
        save[so + c] = mean;
        save[so + C + c] = 1.0f / sqrt(var + eps);
        if (update) {
            float unbiased = n > 1 ? var * ((float)n / (float)(n - 1)) : var;
            rmean[rmo + c] = (1.0f - momentum) * rmean[rmo + c] + momentum * mean;
            rvar[rvo + c] = (1.0f - momentum) * rvar[rvo + c] + momentum * unbiased;
        }
    }
}

/* Eval: the running statistics stand in for the batch's. */
__kernel void bn_stats_eval(__global const float *rmean, const int rmo,
                            __global const float *rvar, const int rvo, const int C,
                            __global float *save, const int so, const float eps)
{
    int c = get_global_id(0);
    if (c >= C)
        return;
    save[so + c] = rmean[rmo + c];
    save[so + C + c] = 1.0f / sqrt(rvar[rvo + c] + eps);
}

__kernel void bn_apply(__global const float *x, const int xo, const int n, const int C,
                       const int S, __global const float *save, const int so,
                       __global const float *gamma, const int go,
                       __global const float *beta, const int bo,
                       __global float *y, const int yo)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    int c = (i / S) % C;
    float xhat = (x[xo + i] - save[so + c]) * save[so + C + c];
    y[yo + i] = xhat * gamma[go + c] + beta[bo + c];
}

/* dbeta = sum g, dgamma = sum g * xhat per channel, with g = dy; kept in
 * `save` too for bn_backward_input when keep. The R-operator (below) runs
 * it with g = R{dy} and the extra term sum dy2 * R{x} * invstd of
 * R{dgamma} (has_rx; dy2 = dy). */
__kernel __attribute__((reqd_work_group_size(LOCAL_N, 1, 1)))
void bn_backward_reduce(__global const float *x, const int xo,
                        __global const float *dy, const int dyo,
                        const int B, const int C, const int S,
                        __global float *save, const int so, const int keep,
                        __global float *dgamma, const int dgo,
                        __global float *dbeta, const int dbo,
                        __global const float *dy2, const int dy2o,
                        __global const float *rx, const int rxo, const int has_rx)
{
    __local float red[LOCAL_N];
    int c = get_group_id(0), l = get_local_id(0);
    int n = B * S;
    float mean = save[so + c], invstd = save[so + C + c];
    float a1 = 0.0f, a2 = 0.0f;
    for (int j = l; j < n; j += LOCAL_N) {
        int b = j / S, s = j - b * S;
        int k = (b * C + c) * S + s;
        float g = dy[dyo + k];
        a1 += g;
        a2 += g * (x[xo + k] - mean) * invstd;
        if (has_rx)
            a2 += dy2[dy2o + k] * rx[rxo + k] * invstd;
    }
    float sdy = tree_sum(red, a1);
    float sdyx = tree_sum(red, a2);
    if (l == 0) {
        if (keep) {
            save[so + 2 * C + c] = sdy;
            save[so + 3 * C + c] = sdyx;
        }
        dbeta[dbo + c] = sdy;
        dgamma[dgo + c] = sdyx;
    }
}

/* Training: dx = gamma*invstd * (dy - mean(dy) - xhat * mean(dy*xhat)), the
 * batch statistics' own dependence on x included. Eval: the statistics are
 * constants, so dx = gamma*invstd*dy. */
__kernel void bn_backward_input(__global const float *x, const int xo,
                                __global const float *dy, const int dyo,
                                const int B, const int C, const int S,
                                __global const float *save, const int so,
                                __global const float *gamma, const int go,
                                const int training, __global float *dx, const int dxo)
{
    int i = get_global_id(0);
    int total = B * C * S;
    if (i >= total)
        return;
    int c = (i / S) % C;
    float invstd = save[so + C + c], k = gamma[go + c] * invstd;
    float g = dy[dyo + i];
    if (training) {
        float n = (float)(B * S);
        float xhat = (x[xo + i] - save[so + c]) * invstd;
        g = g - save[so + 2 * C + c] / n - xhat * (save[so + 3 * C + c] / n);
    }
    dx[dxo + i] = k * g;
}

/* ---- The R-operator in eval mode. With the running statistics the layer
 * is y = (x - mean) * invstd * gamma + beta, mean and invstd constants
 * (saved in `save` by bn_stats_eval), so with direction (vgamma, vbeta):
 *   R{y}   = R{x} invstd gamma + xhat vgamma + vbeta
 *   R{dx}  = invstd (gamma R{dy} + vgamma dy)
 *   R{dgamma} = sum R{dy} xhat + dy R{x} invstd,   R{dbeta} = sum R{dy}
 * (the last two by bn_backward_reduce). has_rx = 0: R{x} is zero (the
 * first trained layer). */
__kernel void bn_rforward_eval(__global const float *x, const int xo,
                               __global const float *rx, const int rxo, const int has_rx,
                               const int n, const int C, const int S,
                               __global const float *save, const int so,
                               __global const float *gamma, const int go,
                               __global const float *vgamma, const int vgo,
                               __global const float *vbeta, const int vbo,
                               __global float *ry, const int ryo)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    int c = (i / S) % C;
    float invstd = save[so + C + c];
    float xhat = (x[xo + i] - save[so + c]) * invstd;
    float r = xhat * vgamma[vgo + c] + vbeta[vbo + c];
    if (has_rx)
        r += rx[rxo + i] * invstd * gamma[go + c];
    ry[ryo + i] = r;
}

__kernel void bn_rbackward_input(__global const float *dy, const int dyo,
                                 __global const float *rdy, const int rdyo,
                                 const int n, const int C, const int S,
                                 __global const float *save, const int so,
                                 __global const float *gamma, const int go,
                                 __global const float *vgamma, const int vgo,
                                 __global float *rdx, const int rdxo)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    int c = (i / S) % C;
    rdx[rdxo + i] = save[so + C + c] * (gamma[go + c] * rdy[rdyo + i] + vgamma[vgo + c] * dy[dyo + i]);
}
