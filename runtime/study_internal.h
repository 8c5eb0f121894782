/* Shared by study.c (`batchscope run`) and study_report.c (the report, also
 * `batchscope report`). Not a public header. */
#ifndef BATCHSCOPE_STUDY_INTERNAL_H
#define BATCHSCOPE_STUDY_INTERNAL_H

#include <stdio.h>
#include "batchscope/registry.h"

#ifndef BSC_INTERNAL
#define BSC_INTERNAL __attribute__((visibility("hidden")))
#endif

/* The report type the pipeline's `report:` mapping (may be NULL) asks for,
 * created with its options checked: `type:` names one, else the only report
 * type loaded (or the one named "report" among several). *type NULL and
 * BSC_OK when there is none and none was asked for, or `enabled: false`. */
BSC_INTERNAL bsc_status bsc_report_create(const bsc_registry *r, const bsc_node *opts,
                                          const char *out_dir, uint64_t seed,
                                          const bsc_run_result *const *planned,
                                          size_t n_planned, const bsc_type **type, void **self);

/* Draws it; logs "report in OUT/report.html" to log (NULL: quiet). */
BSC_INTERNAL bsc_status bsc_report_draw(const bsc_type *type, void *self, const bsc_study *sv,
                                        FILE *log);

#endif
