/* bench_observers: the extra time of a training epoch with the pipeline's
 * own observers on (the quick start's five: distance, update_norms,
 * gradient_diversity, noise_scale, summary), versus none, on its model.
 *
 *   bench_observers [pipeline.yaml] [epochs] [repeats] [batch] [observers]
 *
 * observers, a YAML flow list (e.g. '[{type: update_norms}]'), replaces the
 * pipeline's own for the "on" runs: one observer's share, or a control.
 * Defaults: pipelines/quickstart.yaml (from the source tree), 4 epochs, 5
 * repeats, batch 32 (the smallest batch has the most steps per epoch, so the
 * per-step kernels of the observers weigh most there). A pipeline without
 * observers gets distance and update_norms. Runs alternate off/on, in the
 * order off-on, on-off, off-on, ..., so that drift of the machine hits both
 * alike, and each pair's ratio is taken: on
 * a shared machine the median of the pairs' ratios is the number to read.
 * The first epoch of every run is left out (program builds and caches warm
 * up there); the time per epoch is the engine's training time (metrics.csv
 * `seconds`: the steps and the once-per-epoch read-back, evaluation
 * excluded), and the wall time of the whole run (evaluation and the
 * observers' end-of-run work included) is shown beside it. Each run's
 * fastest epoch is kept too: interference only adds time, so the ratio of
 * the fastest epochs (over all runs, and the median over the pairs) is a
 * view that interference hardly reaches; the lower quartile of all the
 * epochs of a side (hundreds with 40 repeats) is the same view, less
 * noisy than one extreme. The target is a ratio under 1.05.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchscope/fsutil.h"
#include "batchscope/study.h"
#include "batchscope/table.h"

#ifndef BSC_SOURCE_DIR
#define BSC_SOURCE_DIR "."
#endif

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Nonzero when the pipeline lists observers of its own. */
static int has_observers(const char *pipeline)
{
    char *text = NULL;
    if (bsc_read_file(pipeline, &text, NULL) != BSC_OK)
        return 0;
    int yes = text && strstr(text, "\nobservers:") && !strstr(text, "\nobservers: []");
    free(text);
    return yes;
}

static int run_once(const char *pipeline, const char *out, int epochs, long batch, int on,
                    int own, const char *list, double *per_epoch, double *fastest,
                    double *each, double *wall)
{
    char s_epochs[64], s_batch[64];
    char *s_list = list ? bsc_strdup_printf("observers=%s", list) : NULL;
    snprintf(s_epochs, sizeof s_epochs, "training.epochs=%d", epochs);
    snprintf(s_batch, sizeof s_batch, "training.batch_sizes=[%ld]", batch);
    /* Training alone: the pipeline's analyses and report are switched off. */
    const char *sets[] = {s_epochs, s_batch, "analyses=[]", "report={enabled: false}",
                          !on ? "observers=[]"
                          : s_list ? s_list
                                   : "observers=[{type: distance}, {type: update_norms}]"};
    bsc_run_options o = {0};
    o.pipeline_path = pipeline;
    o.out_dir = out;
    o.overrides = sets;
    /* With the pipeline's own observers on, the last override is left out. */
    o.n_overrides = sizeof sets / sizeof *sets - (on && own && !list ? 1 : 0);
    o.quiet = 1;
    double t0 = bsc_now();
    bsc_status s = bsc_study_run(&o);
    *wall = bsc_now() - t0;
    free(s_list);
    if (s != BSC_OK) {
        fprintf(stderr, "bench_observers: %s\n", bsc_last_error());
        return -1;
    }
    char *path = bsc_strdup_printf("%s/runs/bs%ld/metrics.csv", out, batch);
    bsc_table *t = NULL;
    s = path ? bsc_table_read_csv(path, &t) : BSC_ERR_NOMEM;
    free(path);
    if (s != BSC_OK) {
        fprintf(stderr, "bench_observers: %s\n", bsc_last_error());
        return -1;
    }
    long c = bsc_table_find(t, "seconds");
    size_t n = bsc_table_n_rows(t);
    /* Rows: epoch 0 (before training), 1, ..., epochs; seconds is cumulative. */
    *per_epoch = c >= 0 && n >= 3 ? (bsc_table_get(t, n - 1, (size_t)c) -
                                     bsc_table_get(t, 1, (size_t)c)) / (double)(n - 2)
                                  : NAN;
    *fastest = INFINITY;
    for (size_t i = 2; c >= 0 && i < n; i++) {
        double d = bsc_table_get(t, i, (size_t)c) - bsc_table_get(t, i - 1, (size_t)c);
        if (d < *fastest)
            *fastest = d;
        each[i - 2] = d;
    }
    bsc_table_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    const char *pipeline = argc > 1 ? argv[1] : BSC_SOURCE_DIR "/pipelines/quickstart.yaml";
    int epochs = argc > 2 ? atoi(argv[2]) : 4;
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    long batch = argc > 4 ? atol(argv[4]) : 32;
    const char *list = argc > 5 ? argv[5] : NULL;
    if (epochs < 2 || repeats < 1 || batch < 1) {
        fprintf(stderr, "usage: bench_observers [pipeline.yaml] [epochs >= 2] [repeats] "
                        "[batch] [observers]\n");
        return 2;
    }
    char tmpl[] = "/tmp/bench-observers-XXXXXX";
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    int own = has_observers(pipeline);
    printf("observers on: %s\n", list  ? list
                                  : own ? "the pipeline's own"
                                        : "distance, update_norms");
    double sum[2] = {0, 0}, best[2] = {INFINITY, INFINITY}, wall_sum[2] = {0, 0};
    double *ratio = calloc((size_t)repeats, sizeof *ratio);
    double *wall_ratio = calloc((size_t)repeats, sizeof *wall_ratio);
    double *fast_ratio = calloc((size_t)repeats, sizeof *fast_ratio);
    double fastest_all[2] = {INFINITY, INFINITY};
    /* every measured epoch of every run, per side */
    size_t per_run = (size_t)epochs - 1;
    double *epochs_of[2] = {calloc((size_t)repeats * per_run, sizeof(double)),
                            calloc((size_t)repeats * per_run, sizeof(double))};
    if (!ratio || !wall_ratio || !fast_ratio || !epochs_of[0] || !epochs_of[1])
        return 1;
    printf("%-4s %-4s %14s %10s\n", "rep", "obs", "s/epoch", "wall s");
    for (int r = 0; r < repeats; r++) {
        double pe[2], wall[2], fast[2];
        /* Off first in even pairs, on first in odd ones: a drift over the
         * process's life (or the second run of a pair finding the machine
         * warmer) then favours neither side. */
        for (int j = 0; j < 2; j++) {
            int on = j ^ (r & 1);
            char *out = bsc_strdup_printf("%s/r%d-%s", tmpl, r, on ? "on" : "off");
            if (!out || run_once(pipeline, out, epochs, batch, on, own, list, &pe[on], &fast[on],
                                    epochs_of[on] + (size_t)r * per_run, &wall[on]) != 0)
                return 1;
            printf("%-4d %-4s %14.4f %10.2f\n", r, on ? "on" : "off", pe[on], wall[on]);
            fflush(stdout);
            sum[on] += pe[on];
            wall_sum[on] += wall[on];
            if (pe[on] < best[on])
                best[on] = pe[on];
            if (fast[on] < fastest_all[on])
                fastest_all[on] = fast[on];
            free(out);
        }
        ratio[r] = pe[1] / pe[0];
        wall_ratio[r] = wall[1] / wall[0];
        fast_ratio[r] = fast[1] / fast[0];
    }
    printf("batch %ld, %d epochs (first left out), %d repeats\n", batch, epochs, repeats);
    printf("mean s/epoch  off %.4f  on %.4f  ratio %.4f\n", sum[0] / repeats, sum[1] / repeats,
           sum[1] / sum[0]);
    printf("best s/epoch  off %.4f  on %.4f  ratio %.4f\n", best[0], best[1], best[1] / best[0]);
    printf("wall per run  off %.2f  on %.2f  ratio %.4f\n", wall_sum[0] / repeats,
           wall_sum[1] / repeats, wall_sum[1] / wall_sum[0]);
    /* Interference on a shared machine only ever adds time, and the
     * observers' work is the same every epoch: the fastest epochs are the
     * least disturbed view of it. */
    printf("fastest epoch off %.4f  on %.4f  ratio %.4f\n", fastest_all[0], fastest_all[1],
           fastest_all[1] / fastest_all[0]);
    int n_ep = repeats * (int)per_run;
    double med_off = median(epochs_of[0], n_ep), med_on = median(epochs_of[1], n_ep);
    printf("median epoch  off %.4f  on %.4f  ratio %.4f  (%d epochs each)\n", med_off, med_on,
           med_on / med_off, n_ep);
    /* The lower quartile of all epochs (sorted by median above): like the
     * fastest epoch, what interference leaves alone, but the 25th
     * percentile of hundreds of epochs moves far less than one extreme. */
    double q_off = epochs_of[0][n_ep / 4], q_on = epochs_of[1][n_ep / 4];
    printf("lower quartile epoch  off %.4f  on %.4f  ratio %.4f\n", q_off, q_on, q_on / q_off);
    printf("median of the pairs' ratios  s/epoch %.4f  wall %.4f  fastest epoch %.4f\n",
           median(ratio, repeats), median(wall_ratio, repeats), median(fast_ratio, repeats));
    free(epochs_of[0]);
    free(epochs_of[1]);
    free(fast_ratio);
    free(ratio);
    free(wall_ratio);
    char *cmd = bsc_strdup_printf("rm -rf '%s'", tmpl);
    if (cmd && system(cmd) != 0)
        fprintf(stderr, "bench_observers: could not remove %s\n", tmpl);
    free(cmd);
    return 0;
}
