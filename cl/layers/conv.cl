/* batchscope layers plugin: convolution and pooling over NCHW images.
 *
 * conv2d lowers to GEMMs over the whole batch (plugins/layers/conv2d.c says
 * which): with P = OH*OW output pixels, N = B*P and q = (c*KH + ki)*KW + kj,
 * im2col_t writes colT[q, n] and im2col_pm col[n, q]. Backward never lets two
 * work items write the same element: col2im_t and maxpool_backward give each
 * item its own (b, c) plane, so no atomics are needed and sums run in a fixed
 * order. */

/* Each kernel below gives one work item a whole contiguous run of its output
 * (a plane, a row, a strip) and decodes its coordinates once: on a CPU
 * (PoCL) the integer divisions of a per-element decode cost more than the
 * copy itself. Outputs are written in address order. */

/* colT[q, b*P + p] (row q at colo + q*ld) = the input pixel that output pixel
 * p of sample b reads through weight q, 0 in the padding. One item per
 * (q, b): a P-long run, read along input rows. Rows q in [Q, rows) are
 * zero-filled. */
__kernel void im2col_t(__global const float *x, const int xo,
                       const int B, const int C, const int H, const int W,
                       const int KH, const int KW, const int SH, const int SW,
                       const int PH, const int PW, const int OH, const int OW,
                       __global float *col, const int colo, const int ld, const int rows)
{
    int i = get_global_id(0);
    if (i >= rows * B)
        return;
    int b = i % B, q = i / B;
    int P = OH * OW;
    __global float *dst = col + colo + (size_t)q * ld + (size_t)b * P;
    if (q >= C * KH * KW) {
        for (int p = 0; p < P; p++)
            dst[p] = 0.0f;
        return;
    }
    int kj = q % KW, t = q / KW;
    int ki = t % KH, c = t / KH;
    __global const float *src = x + xo + (size_t)(b * C + c) * H * W;
    for (int oy = 0; oy < OH; oy++) {
        int yy = oy * SH - PH + ki;
        __global float *row = dst + oy * OW;
        if (yy < 0 || yy >= H) {
            for (int ox = 0; ox < OW; ox++)
                row[ox] = 0.0f;
            continue;
        }
        __global const float *srow = src + yy * W;
        for (int ox = 0; ox < OW; ox++) {
            int xx = ox * SW - PW + kj;
            row[ox] = (xx >= 0 && xx < W) ? srow[xx] : 0.0f;
        }
    }
}

/* col[b*P + p, q] (row length ld >= Q, columns past Q zeroed): the
 * pixel-major im2col the weight gradient contracts over. One item per output
 * pixel writes its ld-long row. */
__kernel void im2col_pm(__global const float *x, const int xo,
                        const int B, const int C, const int H, const int W,
                        const int KH, const int KW, const int SH, const int SW,
                        const int PH, const int PW, const int OH, const int OW,
                        __global float *col, const int colo, const int ld)
{
    int i = get_global_id(0);
    int P = OH * OW;
    if (i >= B * P)
        return;
    int p = i % P, b = i / P;
    int ox = p % OW, oy = p / OW;
    int y0 = oy * SH - PH, x0 = ox * SW - PW;
    __global float *dst = col + colo + (size_t)i * ld;
    __global const float *src = x + xo + (size_t)b * C * H * W;
    int q = 0;
    for (int c = 0; c < C; c++) {
        __global const float *plane = src + (size_t)c * H * W;
        for (int ki = 0; ki < KH; ki++) {
            int yy = y0 + ki;
            int rowok = yy >= 0 && yy < H;
            for (int kj = 0; kj < KW; kj++, q++) {
                int xx = x0 + kj;
                dst[q] = (rowok && xx >= 0 && xx < W) ? plane[yy * W + xx] : 0.0f;
            }
        }
    }
    for (; q < ld; q++)
        dst[q] = 0.0f;
}

/* dx[b, c] = the sum of the dcolT entries im2col_t copied each of its cells
 * into. One item per (b, c) plane scatters into its own plane only, in
 * (ki, kj) order for every cell -- the order of a gather, so no atomics and
 * a fixed summation order. */
__kernel void col2im_t(__global const float *col, const int colo, const int ld,
                       const int B, const int C, const int H, const int W,
                       const int KH, const int KW, const int SH, const int SW,
                       const int PH, const int PW, const int OH, const int OW,
                       __global float *dx, const int dxo)
{
    int i = get_global_id(0);
    if (i >= B * C)
        return;
    int c = i % C, b = i / C;
    int P = OH * OW;
    __global float *dst = dx + dxo + (size_t)i * H * W;
    for (int k = 0; k < H * W; k++)
        dst[k] = 0.0f;
    for (int ki = 0; ki < KH; ki++)
        for (int kj = 0; kj < KW; kj++) {
            int q = (c * KH + ki) * KW + kj;
            __global const float *src = col + colo + (size_t)q * ld + (size_t)b * P;
            for (int oy = 0; oy < OH; oy++) {
                int yy = oy * SH - PH + ki;
                if (yy < 0 || yy >= H)
                    continue;
                __global float *drow = dst + yy * W;
                __global const float *srow = src + oy * OW;
                for (int ox = 0; ox < OW; ox++) {
                    int xx = ox * SW - PW + kj;
                    if (xx >= 0 && xx < W)
                        drow[xx] += srow[ox];
                }
            }
        }
}

/* y[b, f, :] = ft[f, b*P : b*P + P] + bias[f]: the GEMM's filter-major
 * result [F, B*P] back to NCHW. One item per (b, f) row of P. */
__kernel void ft_to_nchw_bias(__global const float *ft, const int fto, const int ld,
                              const int B, const int F, const int P,
                              __global const float *bias, const int bo, const int has_bias,
                              __global float *y, const int yo)
{
    int i = get_global_id(0);
    if (i >= B * F)
        return;
    int f = i % F, b = i / F;
    float add = has_bias ? bias[bo + f] : 0.0f;
    __global const float *src = ft + fto + (size_t)f * ld + (size_t)b * P;
    __global float *dst = y + yo + (size_t)i * P;
    for (int p = 0; p < P; p++)
        dst[p] = src[p] + add;
}

/* ft[f, b*P + p] = y[b, f, p]: dout filter-major, the input-gradient GEMM's
 * operand. One item per (f, b) row of P; rows f in [F, rows) are zeroed. */
__kernel void nchw_to_ft(__global const float *y, const int yo,
                         const int B, const int F, const int P,
                         __global float *ft, const int fto, const int ld, const int rows)
{
    int i = get_global_id(0);
    if (i >= rows * B)
        return;
    int b = i % B, f = i / B;
    __global float *dst = ft + fto + (size_t)f * ld + (size_t)b * P;
    if (f >= F) {
        for (int p = 0; p < P; p++)
            dst[p] = 0.0f;
        return;
    }
    __global const float *src = y + yo + ((size_t)b * F + f) * P;
    for (int p = 0; p < P; p++)
        dst[p] = src[p];
}

/* t[b*P + p, f] = y[b, f, p] (row length ld >= F, the rest zeroed): dout
 * pixel-major, the weight-gradient GEMM's operand. One item per pixel row;
 * its reads stride by P but stay within one sample's block. */
__kernel void nchw_to_pm(__global const float *y, const int yo,
                         const int B, const int F, const int P,
                         __global float *t, const int to, const int ld)
{
    int i = get_global_id(0);
    if (i >= B * P)
        return;
    int p = i % P, b = i / P;
    __global const float *src = y + yo + (size_t)b * F * P + p;
    __global float *dst = t + to + (size_t)i * ld;
    int f = 0;
    for (; f < F; f++)
        dst[f] = src[(size_t)f * P];
    for (; f < ld; f++)
        dst[f] = 0.0f;
}

/* dst[r, c] = src[r, c] (row length sld) for r < srows, c < ncopy, else 0,
 * over dst [drows, dcols]: pads or crops a small weight-shaped matrix. */
__kernel void copy_cols(__global const float *src, const int so, const int sld,
                        const int srows, const int ncopy, const int drows, const int dcols,
                        __global float *dst, const int dso)
{
    int i = get_global_id(0);
    if (i >= drows * dcols)
        return;
    int c = i % dcols, r = i / dcols;
    dst[dso + i] = (r < srows && c < ncopy) ? src[so + r * sld + c] : 0.0f;
}

/* One work item per row of pooled outputs (a plane and an output row):
 * finding the row takes the item's only divisions, which per output cost
 * more than the window on PoCL. The window scans row-major and a later cell
 * wins only when strictly greater, so ties go to the first cell (as
 * PyTorch's). arg holds the winner's index within its H*W plane. */
__kernel void maxpool_forward(__global const float *x, const int xo,
                              const int BC, const int H, const int W,
                              const int KH, const int KW, const int SH, const int SW,
                              const int PH, const int PW, const int OH, const int OW,
                              __global float *y, const int yo,
                              __global int *arg, const int ao)
{
    int r = get_global_id(0);
    if (r >= BC * OH)
        return;
    int oy = r % OH, plane = r / OH;
    __global const float *src = x + xo + plane * H * W;
    for (int ox = 0; ox < OW; ox++) {
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
        y[yo + r * OW + ox] = best;
        arg[ao + r * OW + ox] = where;
    }
}

/* dx = dy routed to each window's recorded winner. One item per (b, c)
 * plane zeroes its plane and adds every window's gradient to its winner in
 * window order: the plane is private to the item (no atomics), overlapping
 * windows that share a winner sum in a fixed order, and nothing is decoded
 * per input cell. */
__kernel void maxpool_backward(__global const float *dy, const int dyo,
                               __global const int *arg, const int ao,
                               const int BC, const int H, const int W,
                               const int KH, const int KW, const int SH, const int SW,
                               const int PH, const int PW, const int OH, const int OW,
                               __global float *dx, const int dxo)
{
    int i = get_global_id(0);
    if (i >= BC)
        return;
    __global float *dst = dx + dxo + (size_t)i * H * W;
    __global const float *g = dy + dyo + (size_t)i * OH * OW;
    __global const int *win = arg + ao + (size_t)i * OH * OW;
    for (int k = 0; k < H * W; k++)
        dst[k] = 0.0f;
    for (int o = 0; o < OH * OW; o++)
        if (win[o] >= 0)   /* a window wholly in the padding has no winner */
            dst[win[o]] += g[o];
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

/* The R-operator of max pooling: the winners stay where forward found them
 * (a tie or a kink moves them only on a set of measure zero), so R{y} is
 * R{x} at each window's recorded winner, 0 for a window in the padding. */
__kernel void maxpool_rforward(__global const float *rx, const int rxo,
                               __global const int *arg, const int ao,
                               const int n, const int HW, const int OHW,
                               __global float *ry, const int ryo)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    int where = arg[ao + i];
    ry[ryo + i] = where >= 0 ? rx[rxo + (size_t)(i / OHW) * HW + where] : 0.0f;
}
