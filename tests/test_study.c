/* End-to-end training through bsc_study_run on a tiny Fashion-MNIST subset:
 * the loss falls, runs are bitwise reproducible, divergence is recorded and
 * the other runs go on, and --resume keeps finished runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batchscope/batchscope.h"
#include "batchscope/runs.h"
#include "batchscope/safetensors.h"
#include "batchscope/study.h"
#include "batchscope/table.h"
#include "testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static const char *tiny =
    "version: 1\n"
    "name: tiny\n"
    "seed: 3\n"
    "dataset: {name: fashion-mnist, subset: 512, test_subset: 256}\n"
    "model:\n"
    "  - {type: flatten}\n"
    "  - {type: dense, units: 16}\n"
    "  - {type: relu}\n"
    "  - {type: dense, units: 10}\n"
    "training:\n"
    "  epochs: 2\n"
    "  batch_sizes: [16, 64]\n"
    "  optimizer: {type: sgd, lr: 0.05, momentum: 0.5}\n"
    "  eval_batch_size: 256\n"
    "  checkpoint_every: 1\n";

static int skip_without_data(void)
{
    if (access(FMNIST, R_OK) != 0) {
        fprintf(stderr, "skipping: %s missing (tools/setup.sh installs it)\n", FMNIST);
        return 1;
    }
    return 0;
}

static bsc_status run(const char *yaml, const char *out, const char *const *sets, size_t n,
                      int resume)
{
    FILE *devnull = fopen("/dev/null", "w");
    bsc_run_options o = {0};
    o.device = tu_device();
    o.pipeline_path = yaml;
    o.out_dir = resume ? NULL : out;
    o.resume_dir = resume ? out : NULL;
    o.overrides = sets;
    o.n_overrides = n;
    o.quiet = 1;
    o.log = devnull;
    bsc_status s = bsc_study_run(&o);
    fclose(devnull);
    return s;
}

static char *path2(const char *a, const char *b)
{
    char *p = malloc(strlen(a) + strlen(b) + 2);
    sprintf(p, "%s/%s", a, b);
    return p;
}

static void test_loss_falls_and_files(void **state)
{
    (void)state;
    if (skip_without_data())
        skip();
    char *dir = tu_tmpdir("study");
    char *yaml = tu_write(dir, "tiny.yaml", tiny);
    char *out = path2(dir, "out");
    bsc_status s = run(yaml, out, NULL, 0, 0);
    if (s != BSC_OK)
        fail_msg("%s", bsc_last_error());
    const char *files[] = {"manifest.json", "pipeline.yaml", "runs/bs16/metrics.csv",
                           "runs/bs16/init.safetensors", "runs/bs16/final.safetensors",
                           "runs/bs16/epoch001.safetensors", "runs/bs64/run.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *p = path2(out, files[i]);
        assert_true(access(p, R_OK) == 0);
        free(p);
    }
    char *m = path2(out, "runs/bs16/metrics.csv");
    bsc_table *t = NULL;
    assert_int_equal(bsc_table_read_csv(m, &t), BSC_OK);
    assert_int_equal(bsc_table_n_rows(t), 3);
    long c = bsc_table_find(t, "train_loss");
    assert_true(c >= 0);
    double l0 = bsc_table_get(t, 0, (size_t)c), l2 = bsc_table_get(t, 2, (size_t)c);
    assert_true(l0 > 2.0 && l0 < 2.6); /* ~ln 10 at PyTorch's default init */
    assert_true(l2 < 0.8 * l0);
    long a = bsc_table_find(t, "test_acc");
    assert_true(bsc_table_get(t, 2, (size_t)a) > 0.5);
    bsc_table_free(t);
    free(m);
    /* Checkpoints are named like torch.nn.Sequential's state_dict. */
    char *ck = path2(out, "runs/bs16/final.safetensors");
    bsc_safetensors *f = NULL;
    assert_int_equal(bsc_safetensors_open(ck, &f), BSC_OK);
    const bsc_st_info *w = bsc_safetensors_find(f, "1.weight");
    assert_non_null(w);
    assert_int_equal(w->shape.dim[0], 16);
    assert_int_equal(w->shape.dim[1], 784);
    assert_non_null(bsc_safetensors_find(f, "3.bias"));
    bsc_safetensors_close(f);
    free(ck);
    /* Same initial weights for every batch size (same_init). */
    char *i16 = path2(out, "runs/bs16/init.safetensors");
    char *i64 = path2(out, "runs/bs64/init.safetensors");
    bsc_safetensors *a16 = NULL, *a64 = NULL;
    assert_int_equal(bsc_safetensors_open(i16, &a16), BSC_OK);
    assert_int_equal(bsc_safetensors_open(i64, &a64), BSC_OK);
    float x[16 * 784], y[16 * 784];
    assert_int_equal(bsc_safetensors_read(a16, "1.weight", x, 16 * 784), BSC_OK);
    assert_int_equal(bsc_safetensors_read(a64, "1.weight", y, 16 * 784), BSC_OK);
    assert_memory_equal(x, y, sizeof x);
    float bound = 1.0f / sqrtf(784.0f);
    for (size_t i = 0; i < 16 * 784; i++)
        assert_true(fabsf(x[i]) <= bound);
    bsc_safetensors_close(a16);
    bsc_safetensors_close(a64);
    free(i16);
    free(i64);
    free(out);
    free(yaml);
    free(dir);
}

/* metrics.csv without its wall-clock column. */
static char *metrics_without_seconds(const char *path)
{
    bsc_table *t = NULL;
    assert_int_equal(bsc_table_read_csv(path, &t), BSC_OK);
    long sc = bsc_table_find(t, "seconds");
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(cap, 1);
    for (size_t r = 0; r < bsc_table_n_rows(t); r++)
        for (size_t c = 0; c < bsc_table_n_cols(t); c++)
            if ((long)c != sc && len + 64 < cap)
                len += (size_t)snprintf(buf + len, cap - len, "%.9g,", bsc_table_get(t, r, c));
    bsc_table_free(t);
    return buf;
}

/* The final training loss of a run directory's metrics.csv. */
static double final_train_loss(const char *run_dir)
{
    char *m = path2(run_dir, "metrics.csv");
    bsc_table *t = NULL;
    assert_int_equal(bsc_table_read_csv(m, &t), BSC_OK);
    long c = bsc_table_find(t, "train_loss");
    assert_true(c >= 0);
    double v = bsc_table_get(t, bsc_table_n_rows(t) - 1, (size_t)c);
    bsc_table_free(t);
    free(m);
    return v;
}

/* Per GEMM backend: two runs give bitwise the same checkpoints and metrics,
 * and the manifest names the backend. Across backends the sums are taken
 * in another order, so the runs agree closely but not bitwise. */
static void test_bitwise_reproducible(void **state)
{
    (void)state;
    if (skip_without_data())
        skip();
    char *dir = tu_tmpdir("repro");
    char *yaml = tu_write(dir, "tiny.yaml", tiny);
    bsc_context *ctx = NULL;
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    int backends = bsc_gemm_host_supported(ctx, NULL, 0) ? 2 : 1;
    bsc_context_free(ctx);
    const char *gemm[] = {"gemm=clblast", "gemm=host"};
    const char *runs[] = {"runs/bs16", "runs/bs64"};
    double loss[2][2] = {{0}};
    for (int g = 0; g < backends; g++) {
        char *o1 = path2(dir, g ? "host-a" : "clblast-a");
        char *o2 = path2(dir, g ? "host-b" : "clblast-b");
        assert_int_equal(run(yaml, o1, &gemm[g], 1, 0), BSC_OK);
        assert_int_equal(run(yaml, o2, &gemm[g], 1, 0), BSC_OK);
        for (int i = 0; i < 2; i++) {
            char *a = path2(o1, runs[i]), *b = path2(o2, runs[i]);
            char *fa = path2(a, "final.safetensors"), *fb = path2(b, "final.safetensors");
            assert_true(tu_same_file(fa, fb));
            char *ma = path2(a, "metrics.csv"), *mb = path2(b, "metrics.csv");
            char *ta = metrics_without_seconds(ma), *tb = metrics_without_seconds(mb);
            assert_string_equal(ta, tb);
            loss[g][i] = final_train_loss(a);
            free(ta), free(tb), free(ma), free(mb), free(fa), free(fb), free(a), free(b);
        }
        char *mf = path2(o1, "manifest.json");
        char *m = tu_read(mf, NULL);
        assert_non_null(m);
        assert_non_null(strstr(m, g ? "\"gemm\": \"host\"" : "\"gemm\": \"clblast\""));
        free(m), free(mf), free(o1), free(o2);
    }
    for (int i = 0; backends == 2 && i < 2; i++)
        if (fabs(loss[0][i] - loss[1][i]) > 1e-3 * fabs(loss[0][i]))
            fail_msg("%s: final train loss %.9g on clblast, %.9g on host", runs[i], loss[0][i],
                     loss[1][i]);
    free(yaml), free(dir);
}

/* With the host GEMMs, the bits do not depend on how many host threads
 * run them (BATCHSCOPE_BLAS_THREADS, read once per process, hence the
 * command): the GEMMs and conv2d's batch are cut into parts by shape
 * alone. The model is large enough that its GEMMs are split (64 x 512 x 784
 * multiply-adds, conv2d's weight gradient summed over parts of the batch);
 * its first conv2d runs on im2col, its second (8 channels in) by Winograd,
 * whose weight gradient is summed over parts too. Then an MLP with a
 * surface, whose evaluations run on host row blocks (host_rows.c) of 16
 * rows, eight to a batch, any thread taking any block: its metrics and
 * its surface do not change either. */
static void test_same_bits_any_thread_count(void **state)
{
    (void)state;
    if (skip_without_data())
        skip();
    bsc_context *ctx = NULL;
    assert_int_equal(tu_context_open(&ctx), BSC_OK);
    int host = bsc_gemm_host_supported(ctx, NULL, 0);
    bsc_context_free(ctx);
    if (!host)
        skip();
    static const char *yaml_text =
        "version: 1\n"
        "name: threads\n"
        "seed: 3\n"
        "dataset: {name: fashion-mnist, subset: 256, test_subset: 128}\n"
        "model:\n"
        "  - {type: conv2d, filters: 8, kernel_size: 5, padding: 2}\n"
        "  - {type: relu}\n"
        "  - {type: maxpool2d, kernel_size: 2}\n"
        "  - {type: conv2d, filters: 4, kernel_size: 3, padding: 1}\n"
        "  - {type: relu}\n"
        "  - {type: flatten}\n"
        "  - {type: dense, units: 512}\n"
        "  - {type: relu}\n"
        "  - {type: dense, units: 10}\n"
        "training:\n"
        "  epochs: 1\n"
        "  batch_sizes: [64]\n"
        "  optimizer: {type: sgd, lr: 0.05, momentum: 0.5}\n"
        "  eval_batch_size: 128\n";
    char *dir = tu_tmpdir("threads");
    char *yaml = tu_write(dir, "threads.yaml", yaml_text);
    const char *threads[] = {"1", "2", "3"};
    char *final[3], *metrics[3];
    for (int i = 0; i < 3; i++) {
        char out[64], cmd[4096], *log = NULL;
        snprintf(out, sizeof out, "t%s", threads[i]);
        snprintf(cmd, sizeof cmd, "BATCHSCOPE_BLAS_THREADS=%s '%s' run '%s' -o '%s/%s' -q "
                 "-d '%s' --gemm host", threads[i], BSC_CLI, yaml, dir, out, tu_device());
        int rc = tu_run(cmd, &log);
        if (rc != 0)
            fail_msg("%s: exit %d\n%s", cmd, rc, log ? log : "");
        free(log);
        char *o = path2(dir, out), *r = path2(o, "runs/bs64");
        final[i] = path2(r, "final.safetensors");
        char *m = path2(r, "metrics.csv");
        metrics[i] = metrics_without_seconds(m);
        free(m), free(r), free(o);
    }
    for (int i = 1; i < 3; i++) {
        if (!tu_same_file(final[0], final[i]))
            fail_msg("weights after training differ with %s and %s host threads", threads[0],
                     threads[i]);
        assert_string_equal(metrics[0], metrics[i]);
    }
    for (int i = 0; i < 3; i++)
        free(final[i]), free(metrics[i]);
    static const char *mlp_text =
        "version: 1\n"
        "name: rows\n"
        "seed: 3\n"
        "dataset: {name: fashion-mnist, subset: 256, test_subset: 128}\n"
        "model:\n"
        "  - {type: flatten}\n"
        "  - {type: dense, units: 64}\n"
        "  - {type: relu}\n"
        "  - {type: dense, units: 32}\n"
        "  - {type: tanh}\n"
        "  - {type: dense, units: 10}\n"
        "training:\n"
        "  epochs: 1\n"
        "  batch_sizes: [64]\n"
        "  optimizer: {type: sgd, lr: 0.05}\n"
        "  eval_batch_size: 128\n"
        "analyses:\n"
        "  - {type: surface, x: [-1, 1, 3], y: [-1, 1, 3]}\n"
        "report: {enabled: false}\n";
    char *mlp = tu_write(dir, "rows.yaml", mlp_text);
    char *surface[3];
    for (int i = 0; i < 3; i++) {
        char out[64], cmd[4096], *log = NULL;
        snprintf(out, sizeof out, "r%s", threads[i]);
        snprintf(cmd, sizeof cmd, "BATCHSCOPE_HOST_ROWS=16 BATCHSCOPE_BLAS_THREADS=%s '%s' run "
                 "'%s' -o '%s/%s' -d '%s' --gemm host", threads[i], BSC_CLI, mlp, dir, out,
                 tu_device());
        int rc = tu_run(cmd, &log);
        if (rc != 0)
            fail_msg("%s: exit %d\n%s", cmd, rc, log ? log : "");
        assert_non_null(strstr(log, "the rest in blocks of 16 rows on the host threads"));
        free(log);
        char *o = path2(dir, out), *r = path2(o, "runs/bs64"), *m = path2(r, "metrics.csv");
        metrics[i] = metrics_without_seconds(m);
        surface[i] = path2(o, "analyses/surface_bs64.csv");
        free(m), free(r), free(o);
    }
    for (int i = 1; i < 3; i++) {
        assert_string_equal(metrics[0], metrics[i]);
        if (!tu_same_file(surface[0], surface[i]))
            fail_msg("the surface differs with %s and %s host threads", threads[0], threads[i]);
    }
    for (int i = 0; i < 3; i++)
        free(surface[i]), free(metrics[i]);
    free(mlp);
    tu_rm_rf(dir);
    free(yaml), free(dir);
}

/* conv2d's `algorithm: winograd` runs on the host BLAS only: with CLBlast's
 * GEMMs the study stops before training, saying why. */
static void test_winograd_needs_host_blas(void **state)
{
    (void)state;
    if (skip_without_data())
        skip();
    static const char *yaml_text =
        "version: 1\n"
        "name: wino\n"
        "dataset: {name: fashion-mnist, subset: 64, test_subset: 64}\n"
        "model:\n"
        "  - {type: conv2d, filters: 2, kernel_size: 3, algorithm: winograd}\n"
        "  - {type: flatten}\n"
        "  - {type: dense, units: 10}\n"
        "training: {epochs: 1, batch_sizes: [32]}\n";
    char *dir = tu_tmpdir("wino");
    char *yaml = tu_write(dir, "wino.yaml", yaml_text);
    char *out = path2(dir, "out");
    const char *sets[] = {"gemm=clblast"};
    assert_int_not_equal(run(yaml, out, sets, 1, 0), BSC_OK);
    if (!strstr(bsc_last_error(), "algorithm winograd runs on the host BLAS only"))
        fail_msg("unexpected error: %s", bsc_last_error());
    tu_rm_rf(dir);
    free(out), free(yaml), free(dir);
}

static void test_divergence_recorded(void **state)
{
    (void)state;
    if (skip_without_data())
        skip();
    char *dir = tu_tmpdir("diverge");
    char *yaml = tu_write(dir, "tiny.yaml", tiny);
    char *out = path2(dir, "out");
    /* A learning rate this large overflows the weights within an epoch. */
    const char *sets[] = {"training.optimizer.lr=1e30", "training.batch_sizes=[64,16]"};
    assert_int_equal(run(yaml, out, sets, 2, 0), BSC_OK);
    char *mf = path2(out, "manifest.json");
    char *m = tu_read(mf, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "\"status\": \"completed\""));
    assert_non_null(strstr(m, "\"status\": \"diverged\""));
    assert_non_null(strstr(m, "\"diverged_step\""));
    /* Both runs were attempted: the first diverging did not stop the study. */
    assert_non_null(strstr(m, "\"batch_size\": 64"));
    assert_non_null(strstr(m, "\"batch_size\": 16"));
    free(m);
    char *met = path2(out, "runs/bs16/metrics.csv");
    char *text = tu_read(met, NULL);
    assert_non_null(strstr(text, "diverged"));
    free(text), free(met), free(mf), free(out), free(yaml), free(dir);
}

static void test_resume(void **state)
{
    (void)state;
    if (skip_without_data())
        skip();
    char *dir = tu_tmpdir("resume");
    char *yaml = tu_write(dir, "tiny.yaml", tiny);
    char *out = path2(dir, "out");
    assert_int_equal(run(yaml, out, NULL, 0, 0), BSC_OK);
    /* Simulate a crash during the second run: its run.json (written last)
     * and final checkpoint are missing. */
    char *done = path2(out, "runs/bs64/run.json");
    char *fin = path2(out, "runs/bs64/final.safetensors");
    char *keep = path2(dir, "final64.safetensors");
    assert_int_equal(rename(fin, keep), 0);
    assert_int_equal(unlink(done), 0);
    char *f16 = path2(out, "runs/bs16/final.safetensors");
    struct stat before, after;
    assert_int_equal(stat(f16, &before), 0);
    /* Resuming with another pipeline is refused. */
    const char *other[] = {"training.epochs=3"};
    assert_int_equal(run(yaml, out, other, 1, 1), BSC_ERR_USAGE);
    assert_non_null(strstr(bsc_last_error(), "differs"));
    assert_int_equal(run(yaml, out, NULL, 0, 1), BSC_OK);
    assert_int_equal(stat(f16, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_mtime, after.st_mtime);
    assert_true(access(done, R_OK) == 0);
    assert_true(tu_same_file(fin, keep));
    free(f16), free(keep), free(fin), free(done), free(out), free(yaml), free(dir);
}

/* Issue 12, the failure policy: a run that diverges beside healthy ones is
 * a result. The analyses skip it (their tables say so), the others are
 * analysed, the report is drawn from the healthy runs and names the one
 * left out, and the study succeeds. */
static const char *policy =
    "observers:\n  - {type: summary}\n  - {type: update_norms}\n"
    "analyses:\n"
    "  - {type: interpolate, points: 3, subset: 64, test_subset: 64}\n"
    "  - {type: surface, x: [-1, 1, 2], y: [-1, 1, 2], subset: 64}\n"
    "  - {type: sharpness, eps: 1e-3, p: 3, max_iter: 1, variants: [full], subset: 64}\n"
    "  - {type: hessian, top_k: 1, max_iter: 3, trace_samples: 0, subset: 64}\n";

static char *csv_text(const char *out, const char *rel)
{
    char *p = path2(out, rel);
    char *t = tu_read(p, NULL);
    free(p);
    return t;
}

static void test_diverged_run_is_a_result(void **state)
{
    (void)state;
    if (skip_without_data())
        skip();
    char *dir = tu_tmpdir("policy");
    char text[4096];
    snprintf(text, sizeof text, "%s  runs: [{name: big, batch_size: 64, lr: 1e30}]\n%s", tiny,
             policy);
    char *yaml = tu_write(dir, "p.yaml", text);
    char *out = path2(dir, "out");
    const char *sets[] = {"training.epochs=1"};
    bsc_status s = run(yaml, out, sets, 1, 0);
    if (s != BSC_OK)
        fail_msg("%s: %s", bsc_status_name(s), bsc_last_error());
    char *m = csv_text(out, "manifest.json");
    assert_non_null(strstr(m, "\"status\": \"completed\""));
    assert_non_null(strstr(m, "\"status\": \"diverged\""));
    free(m);
    const char *tables[] = {"analyses/hessian.csv", "analyses/sharpness.csv"};
    for (int k = 0; k < 2; k++) {
        char *t = csv_text(out, tables[k]);
        assert_non_null(t);
        if (!strstr(t, "bs16,16,") || !strstr(t, "bs64,64,") ||
            !strstr(t, "big,64,") || !strstr(t, ",skipped: diverged\n") || !strstr(t, ",ok\n"))
            fail_msg("%s:\n%s", tables[k], t);
        free(t);
    }
    char *sb = path2(out, "analyses/surface_bs16.csv"), *sbig = path2(out, "analyses/surface_big.csv");
    char *ip = path2(out, "analyses/interpolate_bs16_bs64.csv");
    assert_true(access(sb, R_OK) == 0);
    assert_true(access(sbig, R_OK) != 0);
    assert_true(access(ip, R_OK) == 0);
    free(sb), free(sbig), free(ip);
    char *html = csv_text(out, "report.html");
    assert_non_null(html);
    assert_non_null(strstr(html, "Left out of the analyses"));
    assert_non_null(strstr(html, "big (diverged at epoch 1"));
    free(html);
    /* and `batchscope report` redraws it */
    FILE *devnull = fopen("/dev/null", "w");
    s = bsc_study_report(out, devnull);
    fclose(devnull);
    if (s != BSC_OK)
        fail_msg("report: %s", bsc_last_error());
    free(out), free(yaml);
    tu_rm_rf(dir);
    free(dir);
}

/* An analysis that fails does not stop the ones after it nor the report:
 * the study ends BSC_ERR_PARTIAL (exit 1) with the manifest naming it.
 * (The checkpoint is under OUT, so the check before training leaves it to
 * the run, where it never appears.) */
static void test_failed_analysis_is_recorded(void **state)
{
    (void)state;
    if (skip_without_data())
        skip();
    char *dir = tu_tmpdir("policy");
    char *out = path2(dir, "out");
    char text[4096];
    snprintf(text, sizeof text, "%sanalyses:\n"
             "  - {type: interpolate, points: 3, from_path: out/runs/bs16/epoch009.safetensors,\n"
             "     to_path: out/runs/bs64/final.safetensors}\n"
             "  - {type: hessian, top_k: 1, max_iter: 2, trace_samples: 0, subset: 64}\n", tiny);
    char *yaml = tu_write(dir, "p.yaml", text);
    const char *sets[] = {"training.epochs=1"};
    bsc_status s = run(yaml, out, sets, 1, 0);
    assert_int_equal(s, BSC_ERR_PARTIAL);
    assert_non_null(strstr(bsc_last_error(), "analysis interpolate"));
    assert_non_null(strstr(bsc_last_error(), "epoch009.safetensors"));
    char *m = csv_text(out, "manifest.json");
    assert_non_null(strstr(m, "\"status\": \"failed\""));
    assert_non_null(strstr(m, "analysis interpolate"));
    free(m);
    char *h = csv_text(out, "analyses/hessian.csv");
    assert_non_null(h);
    assert_non_null(strstr(h, "bs64,64,all,eigenvalue"));
    free(h);
    char *html = csv_text(out, "report.html");
    assert_non_null(html);
    assert_non_null(strstr(html, "The study failed: analysis interpolate"));
    free(html);
    free(out), free(yaml);
    tu_rm_rf(dir);
    free(dir);
}

/* Issue 12: a finished run whose metrics.csv is garbled gave a summary row
 * of NaN on --resume, and exit 0. Now the resume stops before training,
 * naming the file; bsc_run_metrics_read is the check. */
static void test_garbled_metrics_refused(void **state)
{
    (void)state;
    if (skip_without_data())
        skip();
    char *dir = tu_tmpdir("garbled");
    char *yaml = tu_write(dir, "tiny.yaml", tiny);
    char *out = path2(dir, "out");
    const char *sets[] = {"training.epochs=1"};
    assert_int_equal(run(yaml, out, sets, 1, 0), BSC_OK);
    char *runs = path2(out, "runs");
    char *bs16 = path2(runs, "bs16");
    bsc_table *t = NULL;
    assert_int_equal(bsc_run_metrics_read(bs16, 1, &t), BSC_OK);
    bsc_table_free(t);
    /* short: a row missing */
    assert_int_equal(bsc_run_metrics_read(bs16, 2, &t), BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), "bs16/metrics.csv: 2 rows, but the run finished 2"));
    /* garbled: bytes that are no table of epochs */
    free(tu_write(bs16, "metrics.csv", "\x01\x7f garbage \xff\n\x02\x03\n"));
    assert_int_equal(bsc_run_metrics_read(bs16, 1, &t), BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), "bs16/metrics.csv:1: not a metrics table"));
    free(tu_write(bs16, "metrics.csv", "epoch,train_loss\n0,1\n1,2,3\n"));
    assert_int_equal(bsc_run_metrics_read(bs16, 1, &t), BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), "metrics.csv:3: expected 2 fields"));
    free(tu_write(bs16, "metrics.csv", "epoch,train_loss\n0,1\nx,2\n"));
    assert_int_equal(bsc_run_metrics_read(bs16, 1, &t), BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), "metrics.csv:3: epoch 'x' where epoch 1 belongs"));
    /* the resume refuses it, naming the run and the file */
    assert_int_equal(run(yaml, out, sets, 1, 1), BSC_ERR_DATA);
    assert_non_null(strstr(bsc_last_error(), "run bs16 finished but cannot be kept"));
    assert_non_null(strstr(bsc_last_error(), "bs16/metrics.csv:3"));
    free(bs16), free(runs), free(out), free(yaml);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_falls_and_files),
        cmocka_unit_test(test_bitwise_reproducible),
        cmocka_unit_test(test_same_bits_any_thread_count),
        cmocka_unit_test(test_winograd_needs_host_blas),
        cmocka_unit_test(test_divergence_recorded),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_diverged_run_is_a_result),
        cmocka_unit_test(test_failed_analysis_is_recorded),
        cmocka_unit_test(test_garbled_metrics_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
