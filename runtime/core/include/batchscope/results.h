/* batchscope: the result files of the built-in types, and the columns the
 * report reads from them.
 *
 * The writers (the training loop, the observers, the analyses) and the
 * report meet only in these files. Both sides spell every name through
 * this one list, so a writer and the report cannot drift apart silently
 * and a rename is one edit here. Renaming a file or a column still breaks
 * the results directories already written: the report keeps reading older
 * spellings where it has met them (see plugins/report).
 *
 * Every name is a string literal, so names join at compile time:
 * BSC_IN_ANALYSES(BSC_FILE_SHARPNESS) is "analyses/sharpness.csv". File
 * names are relative to the results directory OUT, or, under "In each
 * run's directory", to OUT/runs/<run>. CSV files are tidy (a header, one
 * observation per row, no units in cells).
 *
 * Only the columns the report reads are listed; a file may have more. One
 * name serves every file that has a column of that meaning (epoch, step,
 * run, ...). A custom observer or analysis needs nothing here: the report
 * lists every file under OUT/analyses and OUT/runs/<run> that none of its
 * figures or tables read, with its columns and row count.
 */
#ifndef BATCHSCOPE_RESULTS_H
#define BATCHSCOPE_RESULTS_H

/* ------------------------------------------------------------ directories */

#define BSC_RUNS_DIR "runs"             /* OUT/runs/<run>: one per training run */
#define BSC_ANALYSES_DIR "analyses"     /* OUT/analyses: study-wide tables */
#define BSC_FIGURES_DIR "figures"       /* OUT/figures: the report's PNG and SVG */

/* "analyses/<name>": a file of OUT/analyses as a path relative to OUT. */
#define BSC_IN_ANALYSES(name) BSC_ANALYSES_DIR "/" name

/* ------------------------------------------------------------- OUT itself */

#define BSC_FILE_PIPELINE "pipeline.yaml"   /* the pipeline as resolved */
#define BSC_FILE_MANIFEST "manifest.json"   /* device, versions, seed, status */
#define BSC_FILE_REPORT_HTML "report.html"  /* the report plugin's page */

/* -------------------------------------------- in each run's directory */

/* The run's record (records/runs: name, batch size, status). */
#define BSC_FILE_RUN_RECORD "run.json"
/* The training loop, one row per epoch (epoch 0: before the first step);
 * observers add their columns to the same row. */
#define BSC_FILE_METRICS "metrics.csv"
/* The weights before the first step and after the last (safetensors). */
#define BSC_FILE_INIT_CHECKPOINT "init.safetensors"
#define BSC_FILE_FINAL_CHECKPOINT "final.safetensors"
/* Every training.checkpoint_every epochs: epoch<E>.safetensors, E in three
 * digits at least (epoch005.safetensors). */
#define BSC_PREFIX_EPOCH_CHECKPOINT "epoch"
/* Observer update_norms: the total update norm per step; per layer. */
#define BSC_FILE_UPDATE_NORMS "update_norms.csv"
#define BSC_FILE_UPDATE_NORMS_LAYERS "update_norms_layers.csv"
/* Observer distance: per layer and epoch; totals every K steps. */
#define BSC_FILE_LAYER_DISTANCE "layer_distance.csv"
#define BSC_FILE_DISTANCE_STEPS "distance_steps.csv"
/* Observers gradient_diversity and noise_scale: every K steps. */
#define BSC_FILE_GRADIENT_DIVERSITY "gradient_diversity.csv"
#define BSC_FILE_NOISE_SCALE "noise_scale.csv"

/* ------------------------------------------------------ in OUT/analyses */

/* Observer summary, after all runs: one row per run; the ratio of the
 * epoch distances of run pairs, one row per pair and epoch. */
#define BSC_FILE_SUMMARY "summary.csv"
#define BSC_FILE_EPOCH_DISTANCE_RATIO "epoch_distance_ratio.csv"
/* Analysis sharpness: one row per run, epsilon and variant. */
#define BSC_FILE_SHARPNESS "sharpness.csv"
/* Analysis hessian: one row per run, block and quantity; the eigenvalue
 * density on a grid, one row per run and point; the quadratures it is
 * smoothed from, one row per run, probe and node. */
#define BSC_FILE_HESSIAN "hessian.csv"
#define BSC_FILE_HESSIAN_DENSITY "hessian_density.csv"
#define BSC_FILE_HESSIAN_SLQ "hessian_slq.csv"
/* Observer gradient_diversity, after all runs: the ratios at one common
 * batch size on every run's final weights, one row per run. */
#define BSC_FILE_GRADIENT_DIVERSITY_COMMON "gradient_diversity_common.csv"
/* Analysis interpolate: interpolate_<A>_<B>.csv between the runs A and B
 * (by name), interpolate_checkpoints.csv between two checkpoint files. */
#define BSC_PREFIX_INTERPOLATE "interpolate_"
#define BSC_FILE_INTERPOLATE_CHECKPOINTS BSC_PREFIX_INTERPOLATE "checkpoints.csv"
/* Analysis surface: surface_<run>.csv (2D grid), surface1d_<run>.csv (1D),
 * surface_plane_<P1>_<P2>_<P3>.csv through three points, with the points
 * in <that stem>_points.csv. */
#define BSC_PREFIX_SURFACE "surface_"
#define BSC_PREFIX_SURFACE_1D "surface1d_"
#define BSC_PREFIX_SURFACE_PLANE "surface_plane_"
#define BSC_SUFFIX_PLANE_POINTS "_points.csv"

/* ---------------------------------------------------------------- columns */

/* Position in training: metrics.csv, the per-step observer files,
 * epoch_distance_ratio.csv. */
#define BSC_COL_EPOCH "epoch"
#define BSC_COL_STEP "step"
/* Which run a row of an analyses table is about: its name, and its batch
 * size (the only key in files from before runs had names). */
#define BSC_COL_RUN "run"
#define BSC_COL_BATCH_SIZE "batch_size"
/* Wall-clock seconds: metrics.csv (training so far), summary.csv (the run,
 * evaluation included). */
#define BSC_COL_SECONDS "seconds"

/* Losses (nats) and accuracies (fractions): metrics.csv, summary.csv and
 * the interpolation files. */
#define BSC_COL_TRAIN_LOSS "train_loss"
#define BSC_COL_TEST_LOSS "test_loss"
#define BSC_COL_TRAIN_ACC "train_acc"
#define BSC_COL_TEST_ACC "test_acc"

/* Distance observer: metrics.csv, summary.csv (distance_from_init), and
 * its own files. */
#define BSC_COL_DISTANCE_FROM_INIT "distance_from_init"
#define BSC_COL_EPOCH_DISTANCE "epoch_distance"
/* The model's layer index (as in the checkpoint's "1.weight") in the
 * per-layer files. */
#define BSC_COL_LAYER "layer"

/* update_norms.csv: the L2 norm of the step's update. */
#define BSC_COL_NORM "norm"
/* gradient_diversity.csv: ||sum g_i|| / sum ||g_i||, and sum ||g_i||^2 /
 * ||sum g_i||^2. */
#define BSC_COL_NORM_RATIO "norm_ratio"
#define BSC_COL_DIVERSITY "diversity"
/* noise_scale.csv: B_simple = tr(Sigma) / |G|^2, raw and smoothed; from
 * the sums over a window, with its 95% interval and whether |G|^2 is
 * significantly positive there (0 or 1; the interval is NaN when not).
 * summary.csv has the last window's. */
#define BSC_COL_B_SIMPLE "b_simple"
#define BSC_COL_B_SIMPLE_EMA "b_simple_ema"
#define BSC_COL_B_SIMPLE_WINDOW "b_simple_window"
#define BSC_COL_B_SIMPLE_LO "b_simple_lo"
#define BSC_COL_B_SIMPLE_HI "b_simple_hi"
#define BSC_COL_G2_SIGNIFICANT "g2_significant"

/* gradient_diversity_common.csv: the common batch size, and per ratio
 * (BSC_COL_NORM_RATIO, BSC_COL_DIVERSITY) "<ratio>_" these statistics over
 * the batches: mean, its standard error, quartiles. summary.csv has the
 * norm ratio's quartiles over the run's samples the same way. */
#define BSC_COL_COMMON_BATCH "common_batch"
#define BSC_STAT_MEAN "mean"
#define BSC_STAT_SE "se"
#define BSC_STAT_Q25 "q25"
#define BSC_STAT_MEDIAN "median"
#define BSC_STAT_Q75 "q75"

/* summary.csv: the median of the run's per-step update norms. */
#define BSC_COL_UPDATE_NORM_MEDIAN "update_norm_median"

/* epoch_distance_ratio.csv: the pair's batch sizes and run names, and
 * small / large epoch distance. */
#define BSC_COL_SMALL "small"
#define BSC_COL_LARGE "large"
#define BSC_COL_SMALL_RUN "small_run"
#define BSC_COL_LARGE_RUN "large_run"
#define BSC_COL_RATIO "ratio"

/* Interpolation files: the mixing weight (0: first minimizer, 1: second). */
#define BSC_COL_ALPHA "alpha"

/* sharpness.csv: the box size, the variant (one of the values below) and
 * Keskar's sharpness in percent. */
#define BSC_COL_EPS "eps"
#define BSC_COL_VARIANT "variant"
#define BSC_COL_SHARPNESS "sharpness"
#define BSC_VARIANT_FULL "full"
#define BSC_VARIANT_SUBSPACE "subspace"

/* hessian.csv: which block of the Hessian (BSC_BLOCK_ALL, or a parameter
 * tensor's name such as "1.weight" for its diagonal block), what the row
 * holds (one of the values below), the rank k (1: the largest, or for
 * bottom eigenvalues the smallest; 0 for the trace), its value and the
 * value's standard error (stochastic estimates). */
#define BSC_COL_BLOCK "block"
#define BSC_BLOCK_ALL "all"
#define BSC_COL_QUANTITY "quantity"
#define BSC_COL_K "k"
#define BSC_COL_VALUE "value"
#define BSC_COL_STD_ERR "std_err"
#define BSC_QUANTITY_EIGENVALUE "eigenvalue"
#define BSC_QUANTITY_BOTTOM_EIGENVALUE "bottom_eigenvalue"
#define BSC_QUANTITY_TRACE "trace"
/* How the products were formed (hessian.csv, hessian_density.csv). */
#define BSC_COL_METHOD "method"
#define BSC_METHOD_EXACT "exact"
#define BSC_METHOD_FD "fd"
/* hessian_density.csv: the eigenvalue, the density there and its standard
 * error (BSC_COL_STD_ERR). */
#define BSC_COL_LAMBDA "lambda"
#define BSC_COL_DENSITY "density"

/* The analyses' tables with a row per run (sharpness.csv, hessian.csv):
 * the row's verdict, "ok", or for a run left out "skipped: <why>"
 * ("skipped: diverged", "skipped: run bs512 did not finish") or "failed:
 * <message>" -- the study's failure policy (study.h). The report leaves out
 * rows whose status starts with one of the two prefixes. summary.csv's
 * column of the same name is the run's status ("completed", "diverged"). */
#define BSC_COL_STATUS "status"
#define BSC_ROW_OK "ok"
#define BSC_ROW_SKIPPED "skipped"
#define BSC_ROW_FAILED "failed"

/* Surface files: grid coordinates along the directions, and the training
 * loss there. */
#define BSC_COL_X "x"
#define BSC_COL_Y "y"
#define BSC_COL_LOSS "loss"

#endif
