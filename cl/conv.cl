/* batchscope layers plugin: convolution and pooling over NCHW images.
 *
 * conv2d lowers to one GEMM over the whole batch: im2col writes one row per
 * output pixel, col[(b*P + p), q] with P = OH*OW pixels and q = (c*KH + ki)*KW
 * + kj, so out^T = col W^T. Backward inverts each step by gathering: every
 * input pixel sums the columns that read it (col2im) and every pooled input
 * cell sums the windows that chose it, so no two work items write the same
 * element and no atomics are needed. */

__kernel void im2col(__global const float *x, const int xo,
                     const int B, const int C, const int H, const int W,
                     const int KH, const int KW, const int SH, const int SW,
                     const int PH, const int PW, const int OH, const int OW,
                     __global float *col, const int colo)
{
    int i = get_global_id(0);
    int Q = C * KH * KW, P = OH * OW;
    if (i >= B * P * Q)
        return;
    int q = i % Q, r = i / Q;
    int p = r % P, b = r / P;
    int ox = p % OW, oy = p / OW;
    int kj = q % KW, t = q / KW;
    int ki = t % KH, c = t / KH;
    int yy = oy * SH - PH + ki, xx = ox * SW - PW + kj;
    float v = 0.0f;
    if (yy >= 0 && yy < H && xx >= 0 && xx < W)
        v = x[xo + ((b * C + c) * H + yy) * W + xx];
    col[colo + i] = v;
}

/* dx[b, c, y, x] = sum of the dcol entries im2col copied x[b, c, y, x] into,
 * in (ki, kj) order. */
__kernel void col2im(__global const float *col, const int colo,
                     const int B, const int C, const int H, const int W,
                     const int KH, const int KW, const int SH, const int SW,
                     const int PH, const int PW, const int OH, const int OW,
                     __global float *dx, const int dxo)
{
    int i = get_global_id(0);
    if (i >= B * C * H * W)
        return;
    int xx = i % W, t = i / W;
    int yy = t % H, bc = t / H;
    int c = bc % C, b = bc / C;
    int Q = C * KH * KW, P = OH * OW;
    float acc = 0.0f;
    for (int ki = 0; ki < KH; ki++) {
        int ty = yy + PH - ki;
        if (ty < 0 || ty % SH != 0 || ty / SH >= OH)
            continue;
        int oy = ty / SH;
        for (int kj = 0; kj < KW; kj++) {
            int tx = xx + PW - kj;
            if (tx < 0 || tx % SW != 0 || tx / SW >= OW)
                continue;
            int ox = tx / SW;
            acc += col[colo + (b * P + oy * OW + ox) * Q + (c * KH + ki) * KW + kj];
        }
    }
    dx[dxo + i] = acc;
}

/* y[b, f, p] = t[b*P + p, f] + bias[f]: the GEMM's pixel-major result back to
 * NCHW. */
__kernel void pixels_to_nchw_bias(__global const float *t, const int to,
                                  const int B, const int F, const int P,
                                  __global const float *bias, const int bo, const int has_bias,
                                  __global float *y, const int yo)
{
    int i = get_global_id(0);
    if (i >= B * F * P)
        return;
    int p = i % P, r = i / P;
    int f = r % F, b = r / F;
    float v = t[to + (b * P + p) * F + f];
    if (has_bias)
        v += bias[bo + f];
    y[yo + i] = v;
}

/* t[b*P + p, f] = y[b, f, p]: dout in the GEMM's pixel-major layout. */
__kernel void nchw_to_pixels(__global const float *y, const int yo,
                             const int B, const int F, const int P,
                             __global float *t, const int to)
{
    int i = get_global_id(0);
    if (i >= B * F * P)
        return;
    int f = i % F, r = i / F;
    int p = r % P, b = r / P;
    t[to + i] = y[yo + (b * F + f) * P + p];
}

/* One work item per pooled output. The window scans row-major and a later
 * cell wins only when strictly greater, so ties go to the first cell (as
 * PyTorch's). arg holds the winner's index within its H*W plane. */
__kernel void maxpool_forward(__global const float *x, const int xo,
                              const int BC, const int H, const int W,
                              const int KH, const int KW, const int SH, const int SW,
                              const int PH, const int PW, const int OH, const int OW,
                              __global float *y, const int yo,
                              __global int *arg, const int ao)
{
    int i = get_global_id(0);
    if (i >= BC * OH * OW)
        return;
    int ox = i % OW, t = i / OW;
    int oy = t % OH, plane = t / OH;
    __global const float *src = x + xo + plane * H * W;
    float best = -INFINITY;
    int where = -1;
    for (int ki = 0; ki < KH; ki++) {
        int yy = oy * SH - PH + ki;
        if (yy < 0 || yy >= H)
            continue;
        for (int kj = 0; kj < KW; kj++) {
            int xx = ox * SW - PW + kj;
            if (xx < 0 || xx >= W)
                continue;
            float v = src[yy * W + xx];
            if (where < 0 || v > best) {
                best = v;
                where = yy * W + xx;
            }
        }
    }
    y[yo + i] = best;
    arg[ao + i] = where;
}

__kernel void maxpool_backward(__global const float *dy, const int dyo,
                               __global const int *arg, const int ao,
                               const int BC, const int H, const int W,
                               const int KH, const int KW, const int SH, const int SW,
                               const int PH, const int PW, const int OH, const int OW,
                               __global float *dx, const int dxo)
{
    int i = get_global_id(0);
    if (i >= BC * H * W)
        return;
    int xx = i % W, t = i / W;
    int yy = t % H, plane = t / H;
    int me = yy * W + xx, base = plane * OH * OW;
    float acc = 0.0f;
    for (int ki = 0; ki < KH; ki++) {
        int ty = yy + PH - ki;
        if (ty < 0 || ty % SH != 0 || ty / SH >= OH)
            continue;
        for (int kj = 0; kj < KW; kj++) {
            int tx = xx + PW - kj;
            if (tx < 0 || tx % SW != 0 || tx / SW >= OW)
                continue;
            int o = base + (ty / SH) * OW + tx / SW;
            if (arg[ao + o] == me)
                acc += dy[dyo + o];
        }
    }
    dx[dxo + i] = acc;
}

/* Average over the KH*KW window, padding counted as zeros (PyTorch's
 * count_include_pad=True default). */
__kernel void avgpool_forward(__global const float *x, const int xo,
                              const int BC, const int H, const int W,
                              const int KH, const int KW, const int SH, const int SW,
                              const int PH, const int PW, const int OH, const int OW,
                              __global float *y, const int yo)
{
    int i = get_global_id(0);
    if (i >= BC * OH * OW)
        return;
    int ox = i % OW, t = i / OW;
    int oy = t % OH, plane = t / OH;
    __global const float *src = x + xo + plane * H * W;
    float acc = 0.0f;
    for (int ki = 0; ki < KH; ki++) {
        int yy = oy * SH - PH + ki;
        if (yy < 0 || yy >= H)
            continue;
        for (int kj = 0; kj < KW; kj++) {
            int xx = ox * SW - PW + kj;
            if (xx >= 0 && xx < W)
                acc += src[yy * W + xx];
        }
    }
    y[yo + i] = acc / (float)(KH * KW);
}

__kernel void avgpool_backward(__global const float *dy, const int dyo,
                               const int BC, const int H, const int W,
                               const int KH, const int KW, const int SH, const int SW,
                               const int PH, const int PW, const int OH, const int OW,
                               __global float *dx, const int dxo)
{
    int i = get_global_id(0);
    if (i >= BC * H * W)
        return;
    int xx = i % W, t = i / W;
    int yy = t % H, plane = t / H;
    int base = plane * OH * OW;
    float acc = 0.0f;
    for (int ki = 0; ki < KH; ki++) {
        int ty = yy + PH - ki;
        if (ty < 0 || ty % SH != 0 || ty / SH >= OH)
            continue;
        for (int kj = 0; kj < KW; kj++) {
            int tx = xx + PW - kj;
            if (tx < 0 || tx % SW != 0 || tx / SW >= OW)
                continue;
            acc += dy[dyo + base + (ty / SH) * OW + tx / SW];
        }
    }
    dx[dxo + i] = acc / (float)(KH * KW);
}
