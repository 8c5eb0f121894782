/* Batch assembly from a dataset resident on the device.
 *
 * gather_rows: one work item per row r of x [count, row_len], which it fills
 * with example perm[perm_offset + start + r] of the split, label included.
 * A row per item makes each item's loop a contiguous copy; one item per
 * element had to find its row and column by division, which on PoCL cost
 * more than the copy. An index past the split (n_rows) gives a zero row and
 * label -1 instead of reading out of bounds. Offsets are in elements
 * (tensors are views into larger buffers).
 */
__kernel void gather_rows(__global const float *images, ulong images_offset,
                          __global const int *labels, ulong labels_offset,
                          uint n_rows,
                          __global const uint *perm, ulong perm_offset,
                          uint count, uint row_len,
                          __global float *x, ulong x_offset,
                          __global int *y, ulong y_offset)
{
    uint r = (uint)get_global_id(0);
    if (r >= count)
        return;
    uint src = perm[perm_offset + r];
    __global float *dst = x + x_offset + (ulong)r * row_len;
    if (src < n_rows) {
        __global const float *from = images + images_offset + (ulong)src * row_len;
        for (uint c = 0; c < row_len; c++)
            dst[c] = from[c];
        y[y_offset + r] = labels[labels_offset + src];
    } else {
        for (uint c = 0; c < row_len; c++)
            dst[c] = 0.0f;
        y[y_offset + r] = -1;
    }
}
