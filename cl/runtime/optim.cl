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
