/* Small generic kernels: fills and scaling over a range of a float buffer.
 * Offsets are in elements (views into one flat buffer); every kernel guards
 * i < n because launches round the range up to the work-group size. */

__kernel void fill_f32(__global float *x, const ulong off, const ulong n, const float value)
{
    size_t i = get_global_id(0);
    if (i < n)
        x[off + i] = value;
}

/* x[i] *= alpha */
__kernel void scale_f32(__global float *x, const ulong off, const ulong n, const float alpha)
{
    size_t i = get_global_id(0);
    if (i < n)
        x[off + i] *= alpha;
}

/* y[i] = alpha * x[i] + beta * y[i] */
__kernel void axpby_f32(const ulong n, const float alpha, __global const float *x,
                        const ulong xoff, const float beta, __global float *y, const ulong yoff)
{
    size_t i = get_global_id(0);
    if (i < n)
        y[yoff + i] = alpha * x[xoff + i] + beta * y[yoff + i];
}

/* out = a*x + b*y + c*z. A zero coefficient skips its term (uniform across
 * the launch), so that out = 1*x is x bit for bit and an unused operand is
 * never read: the evaluator's points of a line or plane in parameter space,
 * and their first layer's output formed from products computed once
 * (eval_family.c). */
__kernel void combine3_f32(const ulong n, const float a, __global const float *x,
                           const ulong xoff, const float b, __global const float *y,
                           const ulong yoff, const float c, __global const float *z,
                           const ulong zoff, __global float *out, const ulong ooff,
                           const int relu)
{
    size_t i = get_global_id(0);
    if (i >= n)
        return;
    float v = a * x[xoff + i];
    if (b != 0.0f)
        v += b * y[yoff + i];
    if (c != 0.0f)
        v += c * z[zoff + i];
    /* relu: a family's first-layer output where a ReLU follows (layers.cl's
     * v > 0 ? v : 0), in the same pass. */
    out[ooff + i] = relu && !(v > 0.0f) ? 0.0f : v;
}


/* c[r * ldc + j] += b[j] over a row-major [rows, n] matrix, on a 2-D range
 * (j, r): bsc_gemm_bias's bias after a CLBlast product (an integer modulo
 * per element on a 1-D range cost more than the add on PoCL). */
__kernel void add_row_f32(const ulong rows, const ulong n, __global float *c, const ulong coff,
                          const ulong ldc, __global const float *b, const ulong boff)
{
    size_t j = get_global_id(0), r = get_global_id(1);
    if (j >= n || r >= rows)
        return;
    c[coff + r * ldc + j] += b[boff + j];
}
