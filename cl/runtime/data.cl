/* Batch assembly from a dataset resident on the device.
 *
 * gather_rows: one work item per output element of x [count, row_len], on a
 * 2-D range (column, row) -- a 64-bit division per element to find them
 * took most of the gather's time on PoCL; row r
 * of the batch is example perm[perm_offset + start + r] of the split. The
 * first item of each row also copies the label. An index past the split
 * (n_rows) gives a zero row and label -1 instead of reading out of bounds.
 * Offsets are in elements (tensors are views into larger buffers).
 */
__kernel void gather_rows(__global const float *images, ulong images_offset,
                          __global const int *labels, ulong labels_offset,
                          uint n_rows,
                          __global const uint *perm, ulong perm_offset,
                          uint count, uint row_len,
                          __global float *x, ulong x_offset,
                          __global int *y, ulong y_offset)
{
    uint c = (uint)get_global_id(0), r = (uint)get_global_id(1);
    if (c >= row_len || r >= count)
        return;
    ulong gid = (ulong)r * row_len + c;
    uint src = perm[perm_offset + r];
    if (src < n_rows) {
        x[x_offset + gid] = images[images_offset + (ulong)src * row_len + c];
        if (c == 0)
            y[y_offset + r] = labels[labels_offset + src];
    } else {
        x[x_offset + gid] = 0.0f;
        if (c == 0)
            y[y_offset + r] = -1;
    }
}
