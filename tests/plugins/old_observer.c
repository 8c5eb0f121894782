/* Test plugin "old_observer": an observer whose ops table has the ABI 2.1
 * layout (it ends at study_end, before 2.2's after_backward), followed in
 * memory by a pointer that is not NULL. The host must copy only what the
 * table's struct_size says, so after_backward reads as NULL and is never
 * called, while the older hooks keep working. */
#include <stdlib.h>

#include "batchscope/plugin.h"

static bsc_status o_create(const bsc_component_config *cfg, void **self)
{
    (void)cfg;
    *self = NULL;
    return BSC_OK;
}

static bsc_status o_after_step(void *self, const bsc_run_info *run, const bsc_step_info *s)
{
    (void)self;
    (void)run;
    (void)s;
    return BSC_OK;
}

/* bsc_observer_ops as ABI 2.0 and 2.1 had it. */
typedef struct observer_ops_2_1 {
    size_t struct_size;
    bsc_status (*create)(const bsc_component_config *cfg, void **self);
    void (*destroy)(void *self);
    bsc_status (*run_start)(void *self, const bsc_run_info *run);
    bsc_status (*after_step)(void *self, const bsc_run_info *run, const bsc_step_info *s);
    bsc_status (*epoch_end)(void *self, const bsc_run_info *run, const bsc_epoch_info *e);
    bsc_status (*run_end)(void *self, const bsc_run_info *run);
    bsc_status (*study_end)(void *self, const bsc_study *study);
} observer_ops_2_1;

static const struct {
    observer_ops_2_1 ops;
    bsc_status (*after)(void *, const bsc_run_info *, const bsc_step_info *);
} table = {{sizeof(observer_ops_2_1), o_create, NULL, NULL, o_after_step, NULL, NULL, NULL},
           o_after_step};

const bsc_type tp_old_observer_type = {sizeof(bsc_type), BSC_KIND_OBSERVER, "tp_old_observer",
                                       "an ABI 2.1 observer table", NULL, &table.ops};

#define TYPES(X) X(tp_old_observer)
BSC_PLUGIN("old_observer", "0.0.1", TYPES)
