/* Filter normalization (Li et al. 2018, "Visualizing the Loss Landscape of
 * Neural Nets"): a random direction is made comparable to the weights filter
 * by filter, so that the scale invariance of ReLU networks does not distort
 * the picture. Works from the model's tensor table, so any layer that
 * declares its filter axis takes part. */
#include "analyses.h"

#include <math.h>
#include <stdlib.h>

void ana_filter_normalize(const bsc_model_tensor *t, const float *w, float *d, ana_ignore ig)
{
    const bsc_param_spec *sp = &t->spec;
    if (sp->role == BSC_ROLE_STATE)
        return;
    w += t->offset;
    d += t->offset;
    if (sp->role == BSC_ROLE_BIAS || sp->role == BSC_ROLE_NORM) {
        for (size_t i = 0; i < t->numel; i++)
            d[i] = ig == ANA_IGNORE_NONE ? w[i] : 0.0f;
        return;
    }
    /* Slices along the filter axis: element (o, f, i) of the tensor viewed
     * as [outer, F, inner] is filter f. A weight without a filter axis is
     * one filter. */
    size_t outer = 1, F = 1, inner = 1;
    int ax = sp->filter_axis;
    if (ax >= 0 && ax < sp->shape.ndim) {
        for (int k = 0; k < ax; k++)
            outer *= (size_t)sp->shape.dim[k];
        F = (size_t)sp->shape.dim[ax];
        for (int k = ax + 1; k < sp->shape.ndim; k++)
            inner *= (size_t)sp->shape.dim[k];
    } else {
        inner = t->numel;
    }
    for (size_t f = 0; f < F; f++) {
        double wn = 0, dn = 0;
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < inner; i++) {
                size_t e = (o * F + f) * inner + i;
                wn += (double)w[e] * w[e];
                dn += (double)d[e] * d[e];
            }
        /* The reference adds 1e-10 to the direction's norm; same here so
         * that an all-zero draw cannot divide by zero. */
        double scale = sqrt(wn) / (sqrt(dn) + 1e-10);
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < inner; i++) {
                size_t e = (o * F + f) * inner + i;
                d[e] = (float)(d[e] * scale);
            }
    }
}
