/* The learning rate at a given step: batch-size scaling, schedule, warm-up.
 * The formulas are documented with bsc_lr_at in batchscope/optim.h. */
#include "batchscope/optim.h"

#include <math.h>

/* Not every libc defines M_PI in strict C11. */
static const double PI = 3.14159265358979323846;

static double scaled_base(const bsc_lr_cfg *t, long batch_size)
{
    double lr = t->lr;
    double ratio;

    /* A missing base batch size means "the runs' own rate": scaling against
     * nothing would divide by zero. */
    if (t->base_batch_size <= 0 || batch_size <= 0)
        return lr;
    ratio = (double)batch_size / (double)t->base_batch_size;
    switch (t->scaling) {
    case BSC_LR_LINEAR: return lr * ratio;
    case BSC_LR_SQRT:   return lr * sqrt(ratio);
    case BSC_LR_NONE:   break;
    }
    return lr;
}

double bsc_lr_at(const bsc_lr_cfg *t, long batch_size, int epoch,
                 size_t step_in_epoch, size_t steps_per_epoch)
{
    const bsc_schedule_cfg *s = &t->schedule;
    double base = scaled_base(t, batch_size);
    double lr = base;
    int e0 = epoch > 0 ? epoch - 1 : 0;   /* 0-based epoch */
    /* Steps are counted in double: progress and warm-up are ratios anyway,
     * and this keeps epochs * steps from overflowing an int. */
    double step = (double)e0 * (double)steps_per_epoch + (double)step_in_epoch;

    switch (s->kind) {
    case BSC_SCHED_CONSTANT:
        break;
    case BSC_SCHED_STEP:
        if (s->step_epochs > 0)
            lr = base * pow(s->gamma, (double)(e0 / s->step_epochs));
        break;
    case BSC_SCHED_COSINE: {
        double total = (double)(t->epochs > 0 ? t->epochs : 0) * (double)steps_per_epoch;
        double p = total > 0.0 ? step / total : 0.0;
        if (p > 1.0)
            p = 1.0;
        lr = s->min_lr + (base - s->min_lr) * (1.0 + cos(PI * p)) / 2.0;
        break;
    }
    }

    if (s->warmup_epochs > 0.0) {
        double w = s->warmup_epochs * (double)steps_per_epoch;
        /* A warm-up shorter than one step must not scale the rate above 1. */
        if (step < w) {
            double f = (step + 1.0) / w;
            lr *= f < 1.0 ? f : 1.0;
        }
    }
    return lr;
}
