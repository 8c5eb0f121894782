/* Kernels of the analyses plugin. Offsets are in elements (views into the
 * flat parameter/state buffers); launches round up, so every kernel guards
 * i < n. */

/* out = a*x + b*y + c*z. A zero coefficient skips its term (the branch is
 * uniform across the launch), so that out = 1*x is x bit for bit -- the
 * interpolation at alpha = 0 and 1 reproduces the endpoints exactly -- and
 * an unused operand is never read. */
__kernel void lincomb3(const ulong n, const float a, __global const float *x, const ulong xoff,
                       const float b, __global const float *y, const ulong yoff,
                       const float c, __global const float *z, const ulong zoff,
                       __global float *out, const ulong ooff)
{
    size_t i = get_global_id(0);
    if (i >= n)
        return;
    float v = a * x[xoff + i];
    if (b != 0.0f)
        v += b * y[yoff + i];
    if (c != 0.0f)
        v += c * z[zoff + i];
    out[ooff + i] = v;
}
