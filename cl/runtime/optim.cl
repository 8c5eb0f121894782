/* Optimizer updates over the flat parameter vector (see runtime/optim.c and
 * batchscope/optim.h for the rules, which follow torch.optim).
 *
 * One work item per element; each kernel is the whole update for one step, so
 * parameters, gradients and state are read and written once. Offsets are in
 * elements because parameter views need not be aligned as sub-buffers must.
 * Every kernel guards i < n: the launch may round the range up.
 */

/* Plain SGD: no state. */
__kernel void sgd_step(__global float *p, ulong p_off,
                       __global const float *g, ulong g_off,
                       ulong n, float lr, float wd)
{
    size_t i = get_global_id(0);
    if (i >= n)
        return;
    float w = p[p_off + i];
    float d = g[g_off + i] + wd * w;
    p[p_off + i] = w - lr * d;
}

/* SGD with momentum (dampening 0). `first` is nonzero at the first step after
 * a reset, where torch initialises the buffer with the gradient instead of
 * decaying a zero buffer (the same value, but it keeps 0 * garbage out). */
__kernel void sgd_momentum_step(__global float *p, ulong p_off,
                                __global const float *g, ulong g_off,
                                __global float *buf,
                                ulong n, float lr, float wd, float momentum,
                                int nesterov, int first)
{
    size_t i = get_global_id(0);
    if (i >= n)
        return;
    float w = p[p_off + i];
    float d = g[g_off + i] + wd * w;
    float b = first ? d : momentum * buf[i] + d;
    buf[i] = b;
    d = nesterov ? d + momentum * b : b;
    p[p_off + i] = w - lr * d;
}

/* Adam (L2 weight decay added to the gradient, as torch.optim.Adam does).
 * step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) come from
 * the host, computed in double; the arrangement
 *     p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
 * is torch's, and equals lr * m_hat / (sqrt(v_hat) + eps). 1 - beta also
 * comes from the host: 1.0f - 0.9f in float is off by 2.4e-7 relative. */
__kernel void adam_step(__global float *p, ulong p_off,
                        __global const float *g, ulong g_off,
                        __global float *m, __global float *v,
                        ulong n, float wd, float beta1, float one_minus_beta1,
                        float beta2, float one_minus_beta2, float eps,
                        float step_size, float bc2_sqrt)
{
    size_t i = get_global_id(0);
    if (i >= n)
        return;
    float w = p[p_off + i];
    float d = g[g_off + i] + wd * w;
    float mi = beta1 * m[i] + one_minus_beta1 * d;
    float vi = beta2 * v[i] + one_minus_beta2 * d * d;
    m[i] = mi;
    v[i] = vi;
    p[p_off + i] = w - step_size * mi / (sqrt(vi) / bc2_sqrt + eps);
}

/* ---- the same updates, measuring them: one work item per chunk c < nc of
 * the vector (elements [seg[c], seg[c+1])), walking it in order, applying
 * the element's update exactly as the kernels above do and adding up
 * (w_new - w_old)^2 -- the update norm the update_norms observer reports --
 * into out[oo + c]: eight elements at a time in float8 (a work item
 * walks a chunk alone, so its own vector width is all the vectorizing it
 * gets), the lanes' sums combined in a fixed order, then the scalar tail
 * (so the result does not depend on the launch). UPDATE is written once
 * for both widths: T the type, LD(a) reads a[i..], ST(x, a) writes it. This saves the observer its own
 * pass over the parameters (two reads and a write per element each step);
 * it is used on CPU devices, where a few dozen work items keep the cores
 * busy (bsc_optimizer_track_updates). */

#define TRACK_LOOP(UPDATE)                                                   \
    const uint c = get_global_id(0);                                         \
    if (c >= nc)                                                             \
        return;                                                              \
    const uint lo = seg[c], hi = seg[c + 1];                                 \
    uint i = lo;                                                             \
    float8 acc = (float8)(0.0f);                                             \
    for (; i + 8 <= hi; i += 8) {                                            \
        TRACK_ELEMS(float8, TRACK_LD8, TRACK_ST8, UPDATE)                    \
        acc += u * u;                                                        \
    }                                                                        \
    float4 a4 = acc.lo + acc.hi;                                             \
    float sum = (a4.x + a4.y) + (a4.z + a4.w);                               \
    for (; i < hi; i++) {                                                    \
        TRACK_ELEMS(float, TRACK_LD1, TRACK_ST1, UPDATE)                     \
        sum += u * u;                                                        \
    }                                                                        \
    out[oo + c] = sum;

#define TRACK_LD8(a) vload8(0, (a) + i)
#define TRACK_ST8(x, a) vstore8((x), 0, (a) + i)
#define TRACK_LD1(a) (a)[i]
#define TRACK_ST1(x, a) ((a)[i] = (x))
#define TRACK_ELEMS(T, LD, ST, UPDATE)                                       \
    T w = LD(p + p_off);                                                     \
    T d = LD(g + g_off) + wd * w;                                            \
    T w1;                                                                    \
    UPDATE(T, LD, ST)                                                        \
    ST(w1, p + p_off);                                                       \
    T u = w1 - w;

#define SGD_UPDATE(T, LD, ST) w1 = w - lr * d;
__kernel void sgd_step_tracked(__global float *p, ulong p_off,
                               __global const float *g, ulong g_off,
                               ulong n, float lr, float wd,
                               __global const uint *seg, const uint nc,
                               __global float *out, const ulong oo)
{
    TRACK_LOOP(SGD_UPDATE)
}

#define MOMENTUM_UPDATE(T, LD, ST)                                           \
    T b = first ? d : momentum * LD(buf) + d;                                \
    ST(b, buf);                                                              \
    d = nesterov ? d + momentum * b : b;                                     \
    w1 = w - lr * d;
__kernel void sgd_momentum_step_tracked(__global float *p, ulong p_off,
                                        __global const float *g, ulong g_off,
                                        __global float *buf,
                                        ulong n, float lr, float wd, float momentum,
                                        int nesterov, int first,
                                        __global const uint *seg, const uint nc,
                                        __global float *out, const ulong oo)
{
    TRACK_LOOP(MOMENTUM_UPDATE)
}

#define ADAM_UPDATE(T, LD, ST)                                               \
    T mi = beta1 * LD(m) + one_minus_beta1 * d;                              \
    T vi = beta2 * LD(v) + one_minus_beta2 * d * d;                          \
    ST(mi, m);                                                               \
    ST(vi, v);                                                               \
    w1 = w - step_size * mi / (sqrt(vi) / bc2_sqrt + eps);
__kernel void adam_step_tracked(__global float *p, ulong p_off,
                                __global const float *g, ulong g_off,
                                __global float *m, __global float *v,
                                ulong n, float wd, float beta1, float one_minus_beta1,
                                float beta2, float one_minus_beta2, float eps,
                                float step_size, float bc2_sqrt,
                                __global const uint *seg, const uint nc,
                                __global float *out, const ulong oo)
{
    TRACK_LOOP(ADAM_UPDATE)
}
