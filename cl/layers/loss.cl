/* batchscope layers plugin: softmax cross-entropy over rows of logits.
 *
 * One work item per row: rows are short (the class count) and a fixed,
 * serial order keeps the result bitwise reproducible. The log-sum-exp
 * subtracts the row maximum, so logits of 1000 neither overflow nor lose the
 * answer. A label outside [0, K) reads nothing: its loss is NaN (so the
 * host's divergence check reports the bad data instead of training on it),
 * it is never counted correct, and its gradient has no one-hot term. */

__kernel void softmax_ce_forward(__global const float *z, const int zo,
                                 __global const int *labels, const int lo,
                                 const int B, const int K,
                                 __global float *loss, const int losso,
                                 __global float *correct, const int co, const int has_correct)
{
    int i = get_global_id(0);
    if (i >= B)
        return;
    __global const float *row = z + zo + (size_t)i * K;
    float m = row[0];
    int am = 0;
    for (int k = 1; k < K; k++)
        if (row[k] > m) {   /* strict: ties keep the first maximum */
            m = row[k];
            am = k;
        }
    float s = 0.0f;
    for (int k = 0; k < K; k++)
        s += exp(row[k] - m);
    float lse = m + log(s);
    int y = labels[lo + i];
    int ok = y >= 0 && y < K;
    loss[losso + i] = ok ? lse - row[ok ? y : 0] : NAN;
    if (has_correct)
        correct[co + i] = (ok && am == y) ? 1.0f : 0.0f;
}

__kernel void softmax_ce_backward(__global const float *z, const int zo,
                                  __global const int *labels, const int lo,
                                  const int B, const int K, const float scale,
                                  __global float *dz, const int dzo)
{
    int i = get_global_id(0);
    if (i >= B)
        return;
    __global const float *row = z + zo + (size_t)i * K;
    __global float *drow = dz + dzo + (size_t)i * K;
    float m = row[0];
    for (int k = 1; k < K; k++)
        m = fmax(m, row[k]);
    float s = 0.0f;
    for (int k = 0; k < K; k++)
        s += exp(row[k] - m);
    float inv = 1.0f / s;
    int y = labels[lo + i];
    for (int k = 0; k < K; k++) {
        float p = exp(row[k] - m) * inv;
        drow[k] = scale * (p - (k == y ? 1.0f : 0.0f));
    }
}

/* The R-operator of softmax cross-entropy: d^2 loss_i / d z_i^2 = diag(p) -
 * p p^T, so rdz = scale * p * (rz - p.rz) row by row. The label does not
 * enter (the one-hot term of the gradient is constant in z). */
__kernel void softmax_ce_rbackward(__global const float *z, const int zo,
                                   __global const float *rz, const int rzo,
                                   const int B, const int K, const float scale,
                                   __global float *rdz, const int rdzo)
{
    int i = get_global_id(0);
    if (i >= B)
        return;
    __global const float *row = z + zo + (size_t)i * K;
    __global const float *rrow = rz + rzo + (size_t)i * K;
    __global float *drow = rdz + rdzo + (size_t)i * K;
    float m = row[0];
    for (int k = 1; k < K; k++)
        m = fmax(m, row[k]);
    float s = 0.0f, pr = 0.0f;
    for (int k = 0; k < K; k++) {
        float e = exp(row[k] - m);
        s += e;
        pr += e * rrow[k];
    }
    float inv = 1.0f / s;
    pr *= inv;
    for (int k = 0; k < K; k++)
        drow[k] = scale * exp(row[k] - m) * inv * (rrow[k] - pr);
}
