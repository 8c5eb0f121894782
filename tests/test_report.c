/* The report plugin: every figure from a synthetic results directory (valid,
 * non-blank PNG and SVG), the page in headless Chromium, `batchscope report`
 * on a directory with only some analyses, bad result files reported at
 * file:line, and the files no figure read listed on the page. No device is
 * needed: the report reads files only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "batchscope/batchscope.h"
#include "batchscope/fsutil.h"
#include "batchscope/study.h"
#include "testutil.h"

#define REPORT_SO BSC_PLUGIN_BUILD_DIR "/bsc_report.so"

/* ------------------------------------------------ synthetic results */

static void put(const char *dir, const char *rel, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes dir/rel (directories made) from a printf format. */
static void put(const char *dir, const char *rel, const char *fmt, ...)
{
    char *path = bsc_strdup_printf("%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    assert_int_equal(bsc_mkdir_p(path), BSC_OK);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    free(path);
}

/* Appends to dir/rel. */
static FILE *open_rel(const char *dir, const char *rel, const char *mode)
{
    char *path = bsc_strdup_printf("%s/%s", dir, rel);
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    free(path);
    return f;
}

static const long sizes[3] = {32, 256, 1024};

static void write_common(const char *dir)
{
    put(dir, "manifest.json",
        "{\n  \"batchscope_version\": \"0.1.0\",\n  \"name\": \"synthetic\",\n"
        "  \"seed\": 42,\n  \"status\": \"completed\",\n  \"device\": {\n"
        "    \"platform\": \"Portable Computing Language\",\n    \"name\": \"cpu \\\"x\\\"\",\n"
        "    \"driver_version\": \"3.1\"\n  },\n  \"plugins\": [\n"
        "    {\"name\": \"layers\", \"version\": \"0.1.0\", \"path\": \"/x/bsc_layers.so\"}\n"
        "  ],\n  \"runs\": [{\"name\": \"bs32\", \"batch_size\": 32, \"status\": \"completed\", "
        "\"epochs_done\": 8, \"seconds\": 40.5, \"train_acc\": 0.98, \"test_acc\": 0.9}]\n}\n");
    put(dir, "pipeline.yaml", "version: 1\nname: synthetic\nseed: 42\nreport:\n"
        "  formats: [png, svg]\n");
}

/* metrics.csv (with the distance observer's columns) and run.json of the
 * run OUT/runs/<name>; run.json names it unless name is a bs<B> one. */
static void write_run(const char *dir, const char *name, long bs, int with_distance)
{
    char rel[160];
    snprintf(rel, sizeof rel, "runs/%s/metrics.csv", name);
    put(dir, rel, "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,batch_loss,seconds,"
        "status%s\n", with_distance ? ",distance_from_init,epoch_distance,weight_norm" : "");
    FILE *f = open_rel(dir, rel, "a");
    double steps = 10000.0 / (double)bs, k = log2((double)bs) - 4;
    for (int e = 0; e <= 8; e++) {
        double tl = 0.3 + 2.0 * exp(-e * 0.9 / k), al = 1 - 0.9 * exp(-e * 0.8 / k);
        fprintf(f, "%d,%.0f,0.05,%.6f,%.6f,%.6f,%.6f,%s,%.3f,ok", e, e * steps, tl * 0.9,
                al, tl * (1.1 + 0.02 * k), al - 0.01 * k, e ? "0.5" : "nan", e * 1.5);
        if (with_distance)
            fprintf(f, ",%.6f,%s,%.6f", 4.0 * sqrt(e) * (1.5 - 0.2 * k),
                    e ? "1.2" : "nan", 20 + e * 0.3);
        fputc('\n', f);
    }
    fclose(f);
    /* run.json as train.c writes it; a bs<B> run's without a name, as the
     * first version wrote it */
    char named[160] = "";
    if (strncmp(name, "bs", 2) != 0 || atol(name + 2) != bs)
        snprintf(named, sizeof named, "\"name\": \"%s\",\n  ", name);
    snprintf(rel, sizeof rel, "runs/%s/run.json", name);
    put(dir, rel, "{\n  %s\"batch_size\": %ld,\n  \"status\": \"completed\",\n"
        "  \"epochs_done\": 8,\n  \"seconds\": %g,\n  \"train_loss\": 0.3,\n"
        "  \"train_acc\": 0.97,\n  \"test_loss\": null,\n  \"test_acc\": 0.9\n}\n", named,
        bs, 4.0 + (double)bs / 64.0);
}

static void write_metrics(const char *dir, long bs, int with_distance)
{
    char name[32];
    snprintf(name, sizeof name, "bs%ld", bs);
    write_run(dir, name, bs, with_distance);
}

static void write_run_observers(const char *dir, const char *name, long bs)
{
    char rel[160];
    double steps = 10000.0 / (double)bs, k = log2((double)bs);
    snprintf(rel, sizeof rel, "runs/%s/update_norms.csv", name);
    put(dir, rel, "step,epoch,lr,norm\n");
    FILE *f = open_rel(dir, rel, "a");
    for (int s = 1; s <= (int)(8 * steps); s++)
        fprintf(f, "%d,%d,0.05,%.6g\n", s, 1 + (int)((s - 1) / steps),
                5e-3 / sqrt(k) * exp(0.4 * sin(s * 12.9898) + 0.2 * cos(s * 0.37)));
    fclose(f);
    snprintf(rel, sizeof rel, "runs/%s/gradient_diversity.csv", name);
    put(dir, rel, "step,epoch,batch,sum_sqnorm,sum_norm,norm_of_sum,diversity,norm_ratio\n");
    f = open_rel(dir, rel, "a");
    for (int s = 10; s <= (int)(8 * steps); s += 10) {
        double ratio = 0.6 / sqrt(k) * (1 - 0.3 * s / (8 * steps));
        fprintf(f, "%d,%d,%ld,1,1,1,%.6g,%.6g\n", s, 1 + (int)((s - 1) / steps), bs,
                1 / (ratio * ratio * (double)bs), ratio);
    }
    fclose(f);
    snprintf(rel, sizeof rel, "runs/%s/noise_scale.csv", name);
    put(dir, rel, "step,epoch,batch,g2,trace,b_simple,g2_ema,trace_ema,b_simple_ema,samples,"
        "g2_window,trace_window,b_simple_window,b_simple_lo,b_simple_hi,g2_significant\n");
    f = open_rel(dir, rel, "a");
    for (int s = 10, i = 0; s <= (int)(8 * steps); s += 10, i++) {
        double b = 100 + 400.0 * s / (8 * steps);
        int sig = i % 7 != 6;   /* now and then |G|^2 is not significantly positive */
        fprintf(f, "%d,%d,%ld,1,1,%.6g,1,1,%.6g,10,1,1,%.6g,%.6g,%.6g,%d\n", s,
                1 + (int)((s - 1) / steps), bs, b * exp(0.5 * sin(s * 7.1)), b,
                sig ? b : -b, sig ? 0.7 * b : NAN, sig ? 1.4 * b : NAN, sig);
    }
    fclose(f);
}

static void write_observers(const char *dir, long bs)
{
    char name[32];
    snprintf(name, sizeof name, "bs%ld", bs);
    write_run_observers(dir, name, bs);
}

/* analyses/gradient_diversity_common.csv as the gradient_diversity observer
 * writes it after all runs: one row per run. */
static void put_common(const char *dir, const char *const *names, const long *bs, int n)
{
    FILE *f = open_rel(dir, "analyses/gradient_diversity_common.csv", "w");
    fprintf(f, "run,batch_size,common_batch,samples");
    static const char *const q[] = {"mean", "se", "q25", "median", "q75"};
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 5; k++)
            fprintf(f, ",%s_%s", p ? "diversity" : "norm_ratio", q[k]);
    fprintf(f, "\n");
    for (int r = 0; r < n; r++) {
        double v = 0.5 - 0.05 * r;
        fprintf(f, "%s,%ld,32,20,%g,0.01,%g,%g,%g,%g,0.02,%g,%g,%g\n", names[r], bs[r], v,
                v - 0.05, v, v + 0.04, 1 / (v * v * 32), 0.8 / (v * v * 32), 1 / (v * v * 32),
                1.3 / (v * v * 32));
    }
    fclose(f);
}

/* analyses/hessian_density.csv as the hessian analysis writes it: per run
 * (names, or batch sizes alone when names is NULL) a bulk near zero and an
 * outlier, with standard errors; the density spans orders of magnitude. */
static void put_density(const char *dir, const char *const *names, const long *bs, int n)
{
    FILE *f = open_rel(dir, "analyses/hessian_density.csv", "w");
    fprintf(f, "%sbatch_size,lambda,density,std_err,method\n", names ? "run," : "");
    for (int r = 0; r < n; r++)
        for (int i = 0; i < 400; i++) {
            double top = 10.0 * (r + 1), x = -1 + (top + 2) * i / 399.0;
            double y = 0.9 * exp(-x * x / 0.02) / sqrt(0.02 * M_PI) +
                       0.1 * exp(-(x - top) * (x - top) / 0.5) / sqrt(0.5 * M_PI);
            if (names)
                fprintf(f, "%s,", names[r]);
            fprintf(f, "%ld,%.6g,%.6g,%.6g,%s\n", bs[r], x, y, 0.1 * y,
                    r == 1 ? "fd" : "exact");
        }
    fclose(f);
}

static void write_analyses(const char *dir)
{
    put(dir, "analyses/summary.csv", "batch_size,status,epochs,steps,seconds,train_loss,"
        "train_acc,test_loss,test_acc,generalization_gap,distance_from_init,update_norm_q25,"
        "update_norm_median,update_norm_q75\n"
        "32,completed,8,2500,40.5,0.3,0.98,0.4,0.9,0.08,9.1,0.002,0.0033,0.004\n"
        "256,completed,8,312,12.25,0.3,0.97,0.5,0.86,0.11,5.5,0.001,0.0015,0.002\n"
        "1024,completed,8,78,8,0.31,0.96,0.55,0.84,0.12,3.5,0.0005,0.0008,0.001\n");
    put(dir, "analyses/epoch_distance_ratio.csv",
        "epoch,small,large,small_epoch_distance,large_epoch_distance,ratio\n"
        "1,32,256,3,2,1.5\n2,32,256,2.5,1.5,1.667\n3,32,256,2,1,2\n4,32,256,1.8,0.8,2.25\n");
    FILE *f = open_rel(dir, "analyses/interpolate_bs32_bs256.csv", "w");
    fprintf(f, "alpha,train_loss,train_acc,test_loss,test_acc\n");
    for (int i = 0; i <= 30; i++) {
        double a = -1 + 3.0 * i / 30;
        double l = 0.2 + 0.5 * a * a * (1 - a) * (1 - a) + 3 * fmax(0, -a) * fmax(0, -a) +
                   8 * fmax(0, a - 1) * fmax(0, a - 1);
        fprintf(f, "%.6g,%.6g,%.6g,%.6g,%.6g\n", a, l, 1 / (1 + l * l), l * 1.2,
                0.95 / (1 + l * l));
    }
    fclose(f);
    put(dir, "analyses/sharpness.csv",
        "batch_size,eps,variant,f0,fmax,sharpness,iterations,evaluations,seconds\n"
        "32,0.001,full,0.3,0.31,0.77,10,12,1.5\n256,0.001,full,0.3,0.35,3.8,10,12,1.2\n"
        "1024,0.001,full,0.3,0.5,15.4,10,13,1.0\n32,0.001,subspace,0.3,0.305,0.38,10,11,0.5\n"
        "256,0.001,subspace,0.3,0.32,1.5,10,11,0.5\n1024,0.001,subspace,0.3,0.4,7.7,10,11,0.4\n");
    put(dir, "analyses/hessian.csv", "batch_size,k,eigenvalue,iterations,trace\n"
        "32,1,12.5,20,150\n32,2,8.1,20,150\n256,1,48.0,20,420\n256,2,30.5,20,420\n"
        "1024,1,120.0,20,900\n1024,2,60,20,900\n");
    put_density(dir, NULL, sizes, 3);
    static const char *const cnames[] = {"bs32", "bs256", "bs1024"};
    put_common(dir, cnames, sizes, 3);
    for (int r = 0; r < 2; r++) {
        char rel[64];
        snprintf(rel, sizeof rel, "analyses/surface_bs%ld.csv", sizes[r]);
        f = open_rel(dir, rel, "w");
        fprintf(f, "x,y,loss,accuracy\n");
        double c = r ? 4.0 : 1.5;
        for (int j = 0; j < 21; j++)
            for (int i = 0; i < 21; i++) {
                double x = -1 + i / 10.0, y = -1 + j / 10.0;
                double l = 0.25 + c * (x * x + 0.6 * y * y) + 0.3 * c * x * x * x * x;
                fprintf(f, "%.6g,%.6g,%.6g,%.6g\n", x, y, l, 1 / (1 + l));
            }
        fclose(f);
    }
    f = open_rel(dir, "analyses/surface1d_bs1024.csv", "w");
    fprintf(f, "x,loss,accuracy\n");
    for (int i = 0; i < 21; i++) {
        double x = -1 + i / 10.0;
        fprintf(f, "%.6g,%.6g,%.6g\n", x, 0.3 + 9 * x * x, 0.9);
    }
    fclose(f);
}

static char *full_results(const char *tag)
{
    char *dir = tu_tmpdir(tag);
    write_common(dir);
    for (int r = 0; r < 3; r++) {
        write_metrics(dir, sizes[r], 1);
        write_observers(dir, sizes[r]);
    }
    write_analyses(dir);
    return dir;
}

/* ------------------------------------------------- running the report */

static const bsc_type *report_type(bsc_registry **reg)
{
    if (!bsc_path_exists(REPORT_SO))
        return NULL;
    assert_int_equal(bsc_registry_new(reg), BSC_OK);
    bsc_status s = bsc_registry_load_path(*reg, REPORT_SO, "test");
    if (s != BSC_OK)
        fail_msg("%s", bsc_last_error());
    return bsc_registry_find(*reg, BSC_KIND_REPORT, "report", NULL);
}

/* Runs the report over dir with options (YAML text, may be NULL). */
static bsc_status run_report(const char *dir, const char *options_yaml)
{
    bsc_registry *reg = NULL;
    const bsc_type *t = report_type(&reg);
    assert_non_null(t);
    const bsc_report_ops *ops = t->ops;
    bsc_node *opts = NULL;
    if (options_yaml)
        assert_int_equal(bsc_node_parse_string("opts.yaml", options_yaml, &opts), BSC_OK);
    bsc_component_config cfg = {opts, dir, 42, NULL, 0};
    void *self = NULL;
    /* As the host does: the declared options first, then create(). */
    bsc_status s = bsc_type_check_options(t, opts);
    if (s == BSC_OK)
        s = ops->create(&cfg, &self);
    if (s == BSC_OK) {
        /* as `batchscope report` calls it: no device, model or evaluator */
        bsc_study st = {.out_dir = dir, .seed = 42};
        s = ops->draw(self, &st);
        ops->destroy(self);
    }
    bsc_node_free(opts);
    bsc_registry_free(reg);
    return s;
}

static int have_plugin(void)
{
    if (bsc_path_exists(REPORT_SO))
        return 1;
    print_message("  (skipped: %s not built; it needs PLplot)\n", REPORT_SO);
    return 0;
}

/* ------------------------------------------------- checking the files */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Decodes an 8-bit RGB/RGBA PNG and counts its distinct colors (up to 64):
 * a blank figure has one. Also checks the signature and the size. */
static int png_colors(const char *path, int *width, int *height)
{
    size_t len;
    unsigned char *data = (unsigned char *)tu_read(path, &len);
    assert_non_null(data);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_true(len > 8 && memcmp(data, sig, 8) == 0);
    size_t pos = 8, idat_len = 0;
    unsigned char *idat = malloc(len);
    int w = 0, h = 0, ctype = -1, depth = 0;
    while (pos + 12 <= len) {
        uint32_t n = be32(data + pos);
        const unsigned char *type = data + pos + 4, *body = data + pos + 8;
        assert_true(pos + 12 + n <= len);
        if (!memcmp(type, "IHDR", 4)) {
            w = (int)be32(body);
            h = (int)be32(body + 4);
            depth = body[8];
            ctype = body[9];
        } else if (!memcmp(type, "IDAT", 4)) {
            memcpy(idat + idat_len, body, n);
            idat_len += n;
        }
        pos += 12 + n;
    }
    assert_int_equal(depth, 8);
    assert_true(ctype == 2 || ctype == 6);
    int bpp = ctype == 6 ? 4 : 3;
    size_t stride = (size_t)w * bpp, raw_len = (size_t)h * (stride + 1);
    unsigned char *raw = malloc(raw_len);
    uLongf out_len = raw_len;
    assert_int_equal(uncompress(raw, &out_len, idat, idat_len), Z_OK);
    assert_int_equal(out_len, raw_len);
    /* undo the per-row filters in place */
    for (int y = 0; y < h; y++) {
        unsigned char *row = raw + (size_t)y * (stride + 1) + 1;
        const unsigned char *up = y ? row - (stride + 1) : NULL;
        int ft = row[-1];
        for (size_t i = 0; i < stride; i++) {
            int a = i >= (size_t)bpp ? row[i - bpp] : 0, b = up ? up[i] : 0;
            int c = up && i >= (size_t)bpp ? up[i - bpp] : 0;
            int pred = ft == 1 ? a : ft == 2 ? b : ft == 3 ? (a + b) / 2 : ft == 4 ? paeth(a, b, c) : 0;
            row[i] = (unsigned char)(row[i] + pred);
        }
    }
    uint32_t seen[64];
    int n_seen = 0;
    for (int y = 0; y < h && n_seen < 64; y++)
        for (int x = 0; x < w && n_seen < 64; x++) {
            const unsigned char *p = raw + (size_t)y * (stride + 1) + 1 + (size_t)x * bpp;
            uint32_t c = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
            int k = 0;
            while (k < n_seen && seen[k] != c)
                k++;
            if (k == n_seen)
                seen[n_seen++] = c;
        }
    free(raw);
    free(idat);
    free(data);
    *width = w;
    *height = h;
    return n_seen;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void check_figure(const char *dir, const char *name)
{
    char *png = bsc_strdup_printf("%s/figures/%s.png", dir, name);
    char *svg = bsc_strdup_printf("%s/figures/%s.svg", dir, name);
    if (!bsc_path_exists(png))
        fail_msg("figure %s: %s missing", name, png);
    int w, h;
    int colors = png_colors(png, &w, &h);
    if (colors < 4)
        fail_msg("figure %s: PNG looks blank (%d colors)", name, colors);
    assert_true(w >= 800 && h >= 500);
    char *text = tu_read(svg, NULL);
    if (!text)
        fail_msg("figure %s: %s missing", name, svg);
    const char *root = strstr(text, "<svg");
    assert_non_null(root);
    assert_non_null(strstr(root, "viewBox"));
    assert_non_null(strstr(text, "</svg>"));
    int drawn = count(text, "<polyline") + count(text, "<path") + count(text, "<polygon");
    if (drawn < 20 || count(text, "<text") < 5)
        fail_msg("figure %s: SVG has %d drawing and %d text elements", name, drawn,
                 count(text, "<text"));
    free(text);
    free(png);
    free(svg);
}

static const char *const all_figures[] = {
    "curves", "generalization_gap", "distance_from_init", "epoch_distance",
    "epoch_distance_ratio", "update_norms", "gradient_diversity", "gradient_diversity_common",
    "noise_scale",
    "interpolate_bs32_bs256", "sharpness", "hessian", "hessian_density", "surfaces",
    "surface_cuts"};
#define N_FIGURES (sizeof all_figures / sizeof *all_figures)

/* ----------------------------------------------------------------- tests */

static void test_every_figure(void **state)
{
    (void)state;
    if (!have_plugin())
        return;
    char *dir = full_results("report-full");
    bsc_status s = run_report(dir, NULL);
    if (s != BSC_OK)
        fail_msg("%s", bsc_last_error());
    for (size_t i = 0; i < N_FIGURES; i++)
        check_figure(dir, all_figures[i]);
    char *html_path = bsc_strdup_printf("%s/report.html", dir);
    char *html = tu_read(html_path, NULL);
    assert_non_null(html);
    /* every figure inlined, none skipped, nothing fetched from elsewhere */
    assert_int_equal(count(html, "<svg"), (int)N_FIGURES);
    assert_null(strstr(html, "Skipped"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http://www.w3.org/Graphics"));   /* no DOCTYPE inside */
    assert_null(strstr(html, "src=\"http"));
    assert_null(strstr(html, "<?xml"));
    /* the summary, device and pipeline */
    assert_non_null(strstr(html, "<td>0.0033</td>"));
    assert_non_null(strstr(html, "Portable Computing Language"));
    assert_non_null(strstr(html, "cpu &quot;x&quot;"));
    assert_non_null(strstr(html, "layers 0.1.0"));
    assert_non_null(strstr(html, "formats: [png, svg]"));
    free(html);
    free(html_path);
    free(dir);
}

static const char *chromium(void)
{
    static const char *const candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser",
                                             "/usr/bin/google-chrome"};
    for (size_t i = 0; i < 3; i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return NULL;
}

static void test_page_in_chromium(void **state)
{
    (void)state;
    if (!have_plugin())
        return;
    const char *browser = chromium();
    if (!browser) {
        print_message("  (skipped: chromium is not installed)\n");
        return;
    }
    char *dir = full_results("report-chromium");
    if (run_report(dir, NULL) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    /* Network off (a page that needs it fails to show), a private profile,
     * and the DOM after load: every inline SVG must have become an element. */
    char *cmd = bsc_strdup_printf(
        "HOME='%s' timeout 120 '%s' --headless --disable-gpu --no-sandbox --no-first-run "
        "--user-data-dir='%s/chromium-profile' --proxy-server=127.0.0.1:9 "
        "--dump-dom 'file://%s/report.html' 2>'%s/chromium.err'",
        dir, browser, dir, dir, dir);
    char *dom = NULL;
    int rc = tu_run(cmd, &dom);
    char *err_path = bsc_strdup_printf("%s/chromium.err", dir);
    char *err = tu_read(err_path, NULL);
    if (rc != 0 || !dom)
        fail_msg("chromium exit %d: %s", rc, err ? err : "");
    assert_non_null(strstr(dom, "</html>"));
    int svgs = count(dom, "<svg");
    if (svgs != (int)N_FIGURES)
        fail_msg("chromium shows %d of %zu figures", svgs, N_FIGURES);
    /* each figure's drawing survived parsing as SVG (text and lines) */
    assert_true(count(dom, "<polyline") > 100);
    if (err && (strstr(err, "net::ERR") || strstr(err, "Uncaught")))
        fail_msg("chromium reported: %s", err);
    free(err);
    free(err_path);
    free(dom);
    free(cmd);
    free(dir);
}

static void test_cli_some_analyses(void **state)
{
    (void)state;
    if (!have_plugin())
        return;
    char *dir = tu_tmpdir("report-partial");
    write_common(dir);
    write_metrics(dir, 32, 0);
    write_metrics(dir, 256, 1);
    write_observers(dir, 256);
    put(dir, "analyses/sharpness.csv",
        "batch_size,eps,variant,f0,fmax,sharpness,iterations,evaluations,seconds\n"
        "32,0.001,full,0.3,0.31,0.77,10,12,1.5\n256,0.001,full,0.3,0.35,3.8,10,12,1.2\n");
    char *cmd = bsc_strdup_printf("'%s' report '%s'", BSC_CLI, dir);
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    if (rc != 0)
        fail_msg("batchscope report: exit %d: %s", rc, out ? out : "");
    assert_non_null(strstr(out, "report.html"));
    check_figure(dir, "curves");
    check_figure(dir, "update_norms");
    check_figure(dir, "sharpness");
    char *p = bsc_strdup_printf("%s/figures/hessian.png", dir);
    assert_false(bsc_path_exists(p));
    free(p);
    p = bsc_strdup_printf("%s/report.html", dir);
    char *html = tu_read(p, NULL);
    assert_non_null(html);
    assert_non_null(strstr(html, "Skipped: no analyses/hessian.csv"));
    assert_non_null(strstr(html, "Skipped: no analyses/hessian_density.csv"));
    assert_non_null(strstr(html, "Skipped: no analyses/surface_bs"));
    assert_non_null(strstr(html, "Skipped: no analyses/interpolate_"));
    free(html);
    free(p);
    free(out);
    free(cmd);
    free(dir);
}

static void test_bad_files(void **state)
{
    (void)state;
    if (!have_plugin())
        return;
    char *dir = tu_tmpdir("report-bad");
    write_common(dir);
    write_metrics(dir, 32, 1);
    write_metrics(dir, 256, 1);

    /* a metrics.csv cut in the middle of its last row */
    char *path = bsc_strdup_printf("%s/runs/bs256/metrics.csv", dir);
    size_t len;
    char *text = tu_read(path, &len);
    FILE *f = fopen(path, "w");
    fwrite(text, 1, len - 30, f);
    fclose(f);
    assert_int_not_equal(run_report(dir, NULL), BSC_OK);
    char *want = bsc_strdup_printf("%s:10:", path);
    if (!strstr(bsc_last_error(), want))
        fail_msg("error '%s' does not name %s", bsc_last_error(), want);
    free(want);

    /* the same file cut exactly at a field boundary (fewer fields) */
    const char *cut = strrchr(text, ',');
    f = fopen(path, "w");
    fwrite(text, 1, (size_t)(cut - text), f);
    fputc('\n', f);
    fclose(f);
    assert_int_not_equal(run_report(dir, NULL), BSC_OK);
    assert_non_null(strstr(bsc_last_error(), "metrics.csv:10"));
    f = fopen(path, "w");
    fwrite(text, 1, len, f);
    fclose(f);
    free(text);
    free(path);

    /* a missing column names the header line */
    put(dir, "analyses/sharpness.csv", "batch_size,eps,variant,f0\n32,0.001,full,0.3\n");
    assert_int_not_equal(run_report(dir, NULL), BSC_OK);
    assert_non_null(strstr(bsc_last_error(), "sharpness.csv:1: missing column 'sharpness'"));

    /* text where a number belongs names its line */
    put(dir, "analyses/sharpness.csv",
        "batch_size,eps,variant,f0,fmax,sharpness,iterations,evaluations,seconds\n"
        "32,0.001,full,0.3,0.31,0.77,10,12,1.5\n256,0.001,full,0.3,0.35,oops,10,12,1.2\n");
    assert_int_not_equal(run_report(dir, NULL), BSC_OK);
    assert_non_null(strstr(bsc_last_error(), "sharpness.csv:3: column 'sharpness': 'oops'"));

    /* an incomplete surface grid */
    put(dir, "analyses/sharpness.csv",
        "batch_size,eps,variant,f0,fmax,sharpness,iterations,evaluations,seconds\n");
    put(dir, "analyses/surface_bs32.csv", "x,y,loss,accuracy\n0,0,1,1\n1,0,2,1\n0,1,2,1\n");
    assert_int_not_equal(run_report(dir, NULL), BSC_OK);
    assert_non_null(strstr(bsc_last_error(), "surface_bs32.csv: 3 points do not fill"));
    free(dir);
}

static void test_options(void **state)
{
    (void)state;
    if (!have_plugin())
        return;
    char *dir = tu_tmpdir("report-opts");
    write_common(dir);
    write_metrics(dir, 32, 0);
    /* a bad format is an error at its place in the YAML */
    assert_int_equal(run_report(dir, "formats: [png, jpg]\n"), BSC_ERR_INVALID);
    assert_non_null(strstr(bsc_last_error(), "opts.yaml:1:"));
    assert_non_null(strstr(bsc_last_error(), "jpg"));
    assert_int_equal(run_report(dir, "formts: [png]\n"), BSC_ERR_INVALID);
    /* disabled: nothing drawn */
    assert_int_equal(run_report(dir, "enabled: false\n"), BSC_OK);
    char *p = bsc_strdup_printf("%s/report.html", dir);
    assert_false(bsc_path_exists(p));
    /* PNG only: the page still inlines the SVG, which is not kept */
    assert_int_equal(run_report(dir, "formats: png\ntitle: A <b>title</b>\n"), BSC_OK);
    char *html = tu_read(p, NULL);
    assert_non_null(html);
    assert_non_null(strstr(html, "A &lt;b&gt;title&lt;/b&gt;"));
    /* its one run's metrics.csv and run.json were read: no other files */
    assert_non_null(strstr(html, "None: the figures and tables above read every file"));
    assert_int_equal(count(html, "<svg"), 2);
    char *svg = bsc_strdup_printf("%s/figures/curves.svg", dir);
    assert_false(bsc_path_exists(svg));
    free(svg);
    free(html);
    free(p);
    /* no runs at all is an error, not an empty report */
    char *empty = tu_tmpdir("report-empty");
    assert_int_not_equal(run_report(empty, NULL), BSC_OK);
    assert_non_null(strstr(bsc_last_error(), "runs"));
    free(empty);
    free(dir);
}

/* The page's section of other result files (from its heading to the next),
 * malloc'ed. */
static char *other_section(const char *html)
{
    const char *start = strstr(html, "<h2 id=\"other\">");
    assert_non_null(start);
    const char *end = strstr(start + 1, "<h2");
    assert_non_null(end);
    char *sec = malloc((size_t)(end - start) + 1);
    memcpy(sec, start, (size_t)(end - start));
    sec[end - start] = '\0';
    return sec;
}

/* The table row of the section that links to rel, malloc'ed; NULL when
 * the file is not listed. */
static char *other_row(const char *sec, const char *href, const char *rel)
{
    char *link = bsc_strdup_printf("<a href=\"%s\">%s</a>", href, rel);
    const char *at = strstr(sec, link);
    free(link);
    if (!at)
        return NULL;
    const char *start = at, *end = strstr(at, "</tr>");
    while (start > sec && strncmp(start, "<tr>", 4) != 0)
        start--;
    assert_non_null(end);
    return bsc_strdup_printf("%.*s", (int)(end - start), start);
}

/* A custom analysis' and observer's files, which no figure reads, are
 * listed with a link, their size and a CSV's columns and rows; every file a
 * figure or table read is left out. */
static void test_other_files(void **state)
{
    (void)state;
    if (!have_plugin())
        return;
    char *dir = full_results("report-other");
    put(dir, "analyses/custom_metric.csv",
        "epoch,value,\"note, quoted\"\n1,0.5,a\n2,0.25,\"b,\nc\"\n\n3,0.125,d");
    put(dir, "runs/bs32/custom_run.txt", "hello\n");
    put(dir, "analyses/my result#1.csv", "%s", "");
    put(dir, "analyses/.scratch.csv", "x\n1\n");
    FILE *f = open_rel(dir, "runs/bs256/wide.csv", "w");
    for (int c = 0; c < 35; c++)
        fprintf(f, "%sc%d", c ? "," : "", c);
    fputs("\n1\n2\n", f);
    fclose(f);
    if (run_report(dir, NULL) != BSC_OK)
        fail_msg("%s", bsc_last_error());
    char *p = bsc_strdup_printf("%s/report.html", dir);
    char *html = tu_read(p, NULL);
    assert_non_null(html);
    assert_non_null(strstr(html, "<a href=\"#other\">"));
    char *sec = other_section(html);

    char *row = other_row(sec, "analyses/custom_metric.csv", "analyses/custom_metric.csv");
    if (!row)
        fail_msg("custom_metric.csv not listed: %s", sec);
    /* a quoted line end is no record, a blank line none, a last line
     * without its end is one */
    assert_non_null(strstr(row, "<td>59 B</td><td>3</td>"));
    assert_non_null(strstr(row, "<td class=\"l\"><code>epoch</code> <code>value</code> "
                                "<code>note, quoted</code></td>"));
    free(row);
    row = other_row(sec, "runs/bs32/custom_run.txt", "runs/bs32/custom_run.txt");
    if (!row)
        fail_msg("custom_run.txt not listed: %s", sec);
    assert_non_null(strstr(row, "<td>6 B</td><td>–</td><td class=\"l\">–</td>"));
    free(row);
    /* a name that needs escaping still links to its file */
    row = other_row(sec, "analyses/my%20result%231.csv", "analyses/my result#1.csv");
    assert_non_null(row);
    assert_non_null(strstr(row, "<td>0 B</td><td>0</td><td class=\"l\">(empty file)</td>"));
    free(row);
    /* a wide header is cut short, with its full count */
    row = other_row(sec, "runs/bs256/wide.csv", "runs/bs256/wide.csv");
    assert_non_null(row);
    assert_non_null(strstr(row, "<td>2</td>"));
    assert_non_null(strstr(row, "<code>c29</code> … (35 columns)</td>"));
    assert_null(strstr(row, "<code>c30</code>"));
    free(row);
    assert_null(strstr(sec, "scratch"));
    /* nothing the figures and tables read: exactly the four files above */
    assert_int_equal(count(sec, "<tr><td"), 4);
    static const char *const used[] = {"metrics.csv", "run.json", "update_norms.csv",
                                       "gradient_diversity.csv", "noise_scale.csv",
                                       "summary.csv", "epoch_distance_ratio.csv",
                                       "interpolate_", "sharpness.csv", "hessian.csv",
                                       "surface_bs", "surface1d_"};
    for (size_t i = 0; i < sizeof used / sizeof *used; i++)
        if (strstr(sec, used[i]))
            fail_msg("%s is listed as not drawn", used[i]);
    free(sec);
    free(html);
    free(p);
    tu_rm_rf(dir);
    free(dir);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_report: the report did not finish (a loop?)\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(1);
}

/* Issue 12: an all-NaN column made PLplot loop forever on an (inf, -inf)
 * axis, a NaN surface failed the report (exit 2, and `batchscope report`
 * could never succeed), and a killed report left figures/<x>.png.tmp.<pid>
 * behind. Now: figures over what is drawable, notes for the rest, a
 * diverged run named as left out, and the temporaries swept. The alarm
 * turns a loop into a failure instead of a hung suite. */
static void test_nan_results_never_sink_the_report(void **state)
{
    (void)state;
    if (!have_plugin())
        return;
    char *dir = tu_tmpdir("report-nan");
    write_common(dir);
    write_metrics(dir, 32, 1);
    write_metrics(dir, 256, 1);
    put(dir, "runs/bs256/run.json", "{\n  \"batch_size\": 256,\n  \"status\": \"diverged\",\n"
        "  \"epochs_done\": 8,\n  \"diverged_epoch\": 8,\n  \"diverged_step\": 300,\n"
        "  \"seconds\": 1,\n  \"train_loss\": null,\n  \"train_acc\": 0.1,\n"
        "  \"test_loss\": null,\n  \"test_acc\": 0.1\n}\n");
    /* the columns axes are scaled by: all NaN */
    put(dir, "analyses/sharpness.csv", "run,batch_size,eps,variant,sharpness\n"
        "bs32,nan,0.001,full,nan\nbs256,nan,nan,full,nan\n");
    put(dir, "analyses/hessian.csv", "run,batch_size,quantity,k,value,status\n"
        "bs32,32,eigenvalue,1,nan,ok\nbs256,256,,,,skipped: diverged\n");
    /* a surface of NaN (the diverged run's), one with a NaN corner */
    FILE *f = open_rel(dir, "analyses/surface_bs256.csv", "w");
    FILE *g = open_rel(dir, "analyses/surface_bs32.csv", "w");
    fprintf(f, "x,y,loss,accuracy\n");
    fprintf(g, "x,y,loss,accuracy\n");
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) {
            fprintf(f, "%d,%d,nan,nan\n", i - 1, j - 1);
            if (i == 2 && j == 2)
                fprintf(g, "%d,%d,inf,0.1\n", i - 1, j - 1);
            else
                fprintf(g, "%d,%d,%g,0.5\n", i - 1, j - 1, 1.0 + i + j);
        }
    fclose(f);
    fclose(g);
    put(dir, "figures/surfaces.png.tmp.4242", "half a figure");
    signal(SIGALRM, on_alarm);
    alarm(300);
    FILE *devnull = fopen("/dev/null", "w");
    bsc_status s = bsc_study_report(dir, devnull);
    fclose(devnull);
    alarm(0);
    if (s != BSC_OK)
        fail_msg("%s", bsc_last_error());
    char *tmp = bsc_strdup_printf("%s/figures/surfaces.png.tmp.4242", dir);
    assert_false(bsc_path_exists(tmp));
    free(tmp);
    char *p = bsc_strdup_printf("%s/report.html", dir);
    char *html = tu_read(p, NULL);
    assert_non_null(html);
    assert_non_null(strstr(html, "Left out of the analyses and of the figures of final results: "
                                 "bs256 (diverged at epoch 8, step 300"));
    assert_non_null(strstr(html, "left out, no finite loss in: surface_bs256.csv"));
    assert_non_null(strstr(html, "non-finite losses drawn at the top of the scale in: "
                                 "surface_bs32.csv (1 of 9 points)"));
    assert_non_null(strstr(html, "Note: left out: bs256 (diverged)"));
    char *fig = bsc_strdup_printf("%s/figures/sharpness.png", dir);
    assert_true(bsc_path_exists(fig));
    free(fig);
    free(html);
    free(p);
    tu_rm_rf(dir);
    free(dir);
}

/* The temporaries under OUT/figures and OUT (a figure or the page half
 * written). */
static int count_temporaries(const char *dir)
{
    int n = 0;
    const char *sub[] = {"", "/figures"};
    for (int k = 0; k < 2; k++) {
        char *d = bsc_strdup_printf("%s%s", dir, sub[k]);
        DIR *h = opendir(d);
        struct dirent *e;
        while (h && (e = readdir(h)))
            n += strstr(e->d_name, ".tmp.") != NULL;
        if (h)
            closedir(h);
        free(d);
    }
    return n;
}

/* Issue 12: `batchscope report` killed while it drew left
 * figures/<x>.png.tmp.<pid> behind. SIGTERM, SIGINT and SIGHUP remove the
 * file being written before the process ends; killed at several moments,
 * no temporary may remain. */
static void test_killed_report_leaves_no_temporary(void **state)
{
    (void)state;
    if (!have_plugin())
        return;
    char *dir = full_results("report-kill");
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (int k = 0; k < 9; k++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 1);
            dup2(fd, 2);
            execl(BSC_CLI, BSC_CLI, "report", dir, (char *)NULL);
            _exit(127);
        }
        usleep((useconds_t)(150000 + 120000 * k));
        kill(pid, sigs[k % 3]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (count_temporaries(dir))
            fail_msg("a temporary was left after signal %d at %d ms", sigs[k % 3],
                     150 + 120 * k);
    }
    tu_rm_rf(dir);
    free(dir);
}

/* s as PLplot's SVG writes text: every character a hex entity. */
static char *svg_text(const char *s)
{
    char *out = malloc(strlen(s) * 8 + 1), *o = out;
    for (; *s; s++)
        o += sprintf(o, "&#x%x;", (unsigned char)*s);
    *o = '\0';
    return out;
}

static int figure_says(const char *dir, const char *name, const char *text)
{
    char *path = bsc_strdup_printf("%s/figures/%s.svg", dir, name);
    char *svg = tu_read(path, NULL), *want = svg_text(text);
    int found = svg && strstr(svg, want);
    free(svg);
    free(want);
    free(path);
    return found;
}

/* Runs named by training.runs beside the batch_sizes ones: every run
 * directory is found (name and batch size from run.json, or bs<B>), the
 * legends and the table name them, analyses' rows and file names are
 * matched to runs by name, and a directory that is no run is skipped. */
static void test_named_runs(void **state)
{
    (void)state;
    if (!have_plugin())
        return;
    char *dir = full_results("report-named");
    write_run(dir, "bs256-sqrt", 256, 1);
    write_run_observers(dir, "bs256-sqrt", 256);
    write_run(dir, "lr.2_warm", 1024, 1);
    /* not runs: no run.json and no bs<B> name, a hidden directory, a file */
    put(dir, "runs/notes/readme.txt", "scratch\n");
    put(dir, "runs/.partial/run.json", "{\"batch_size\": 64}\n");
    put(dir, "runs/stray.txt", "x\n");
    put(dir, "analyses/summary.csv", "run,batch_size,status,epochs,steps,seconds,train_loss,"
        "train_acc,test_loss,test_acc,generalization_gap,distance_from_init,update_norm_q25,"
        "update_norm_median,update_norm_q75\n"
        "bs32,32,completed,8,2500,40.5,0.3,0.98,0.4,0.9,0.08,9.1,0.002,0.0033,0.004\n"
        "bs256,256,completed,8,312,12.25,0.3,0.97,0.5,0.86,0.11,5.5,0.001,0.0015,0.002\n"
        "bs256-sqrt,256,completed,8,312,12.5,0.3,0.975,0.45,0.89,0.085,7.5,0.002,0.0027,0.003\n"
        "bs1024,1024,completed,8,78,8,0.31,0.96,0.55,0.84,0.12,3.5,0.0005,0.0008,0.001\n"
        "lr.2_warm,1024,completed,8,78,8.5,0.31,0.96,0.5,0.85,0.11,4.5,0.0005,0.0009,0.001\n");
    put(dir, "analyses/epoch_distance_ratio.csv",
        "epoch,small,large,small_run,large_run,small_epoch_distance,large_epoch_distance,ratio\n"
        "1,32,256,bs32,bs256,3,2,1.5\n2,32,256,bs32,bs256,2.5,1.5,1.667\n"
        "1,32,256,bs32,bs256-sqrt,3,2.5,1.2\n2,32,256,bs32,bs256-sqrt,2.5,2,1.25\n");
    FILE *f = open_rel(dir, "analyses/interpolate_bs32_bs256-sqrt.csv", "w");
    fprintf(f, "alpha,train_loss,train_acc,test_loss,test_acc\n");
    for (int i = 0; i <= 20; i++) {
        double a = -1 + 3.0 * i / 20, l = 0.2 + (a - 0.5) * (a - 0.5);
        fprintf(f, "%.6g,%.6g,%.6g,%.6g,%.6g\n", a, l, 1 / (1 + l), l * 1.1, 0.9 / (1 + l));
    }
    fclose(f);
    put(dir, "analyses/sharpness.csv",
        "run,batch_size,eps,variant,f0,fmax,sharpness,iterations,evaluations,seconds,stop\n"
        "bs32,32,0.001,full,0.3,0.31,0.77,10,12,1.5,STOP\n"
        "bs256,256,0.001,full,0.3,0.35,3.8,10,12,1.2,STOP\n"
        "bs256-sqrt,256,0.001,full,0.3,0.33,2.75,10,12,1.2,STOP\n"
        "lr.2_warm,1024,0.001,full,0.3,0.4,9.25,10,12,1.2,STOP\n");
    /* the hessian analysis' own format: one quantity per row; rows of a
     * tensor's block are not the model's (the figure leaves them out) */
    put(dir, "analyses/hessian.csv",
        "run,batch_size,block,quantity,k,value,std_err,residual,converged,method,"
        "hv_products,seconds\n"
        "bs32,32,all,eigenvalue,1,12.5,,1e-6,1,exact,20,1\n"
        "bs32,32,all,trace,0,150,3,,,exact,10,1\n"
        "bs32,32,1.weight,trace,0,149000,3,,,exact,10,1\n"
        "bs256,256,all,eigenvalue,1,48,,1e-6,1,exact,20,1\n"
        "bs256,256,all,trace,0,420,3,,,exact,10,1\n"
        "bs256-sqrt,256,all,eigenvalue,1,31.5,,1e-6,1,exact,20,1\n"
        "bs256-sqrt,256,all,eigenvalue,2,20,,1e-6,1,exact,20,1\n"
        "bs256-sqrt,256,all,bottom_eigenvalue,1,-900,,1e-6,1,exact,20,1\n"
        "bs256-sqrt,256,all,trace,0,333,3,,,exact,10,1\n");
    static const char *const dnames[] = {"bs32", "bs256-sqrt"};
    static const long dbs[] = {32, 256};
    put_density(dir, dnames, dbs, 2);
    put_common(dir, dnames, dbs, 2);
    f = open_rel(dir, "analyses/surface_bs256-sqrt.csv", "w");
    fprintf(f, "x,y,loss,accuracy\n");
    for (int j = 0; j < 11; j++)
        for (int i = 0; i < 11; i++) {
            double x = -1 + i / 5.0, y = -1 + j / 5.0, l = 0.25 + 2 * (x * x + y * y);
            fprintf(f, "%.6g,%.6g,%.6g,%.6g\n", x, y, l, 1 / (1 + l));
        }
    fclose(f);

    /* the enumeration the report and `batchscope report` share */
    bsc_run_result **runs = NULL;
    size_t n = 0;
    assert_int_equal(bsc_runs_scan(dir, &runs, &n), BSC_OK);
    static const char *const names[] = {"bs32", "bs256", "bs256-sqrt", "bs1024", "lr.2_warm"};
    static const size_t bs[] = {32, 256, 256, 1024, 1024};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(runs[i]->name, names[i]);
        assert_int_equal(runs[i]->batch_size, bs[i]);
        assert_string_equal(runs[i]->status, "completed");
    }
    bsc_runs_free(runs, n);

    char *cmd = bsc_strdup_printf("'%s' report --quiet '%s'", BSC_CLI, dir);
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    if (rc != 0)
        fail_msg("batchscope report: exit %d: %s", rc, out ? out : "");
    static const char *const figs[] = {"curves", "generalization_gap", "epoch_distance_ratio",
                                       "update_norms", "interpolate_bs32_bs256-sqrt",
                                       "interpolate_bs32_bs256", "sharpness", "hessian",
                                       "hessian_density", "gradient_diversity_common",
                                       "surfaces", "surface_cuts"};
    for (size_t i = 0; i < sizeof figs / sizeof *figs; i++)
        check_figure(dir, figs[i]);
    /* bs<B> runs keep "B = 256"; the others show their names */
    assert_true(figure_says(dir, "curves", "B = 256"));
    assert_true(figure_says(dir, "curves", "bs256-sqrt (B = 256)"));
    assert_true(figure_says(dir, "curves", "lr.2_warm (B = 1024)"));
    assert_true(figure_says(dir, "generalization_gap", "bs256-sqrt"));
    assert_true(figure_says(dir, "epoch_distance_ratio", "B = 32 / B = 256"));
    assert_true(figure_says(dir, "epoch_distance_ratio", "bs32 / bs256-sqrt"));
    assert_true(figure_says(dir, "update_norms", "bs256-sqrt (B = 256)"));
    assert_true(figure_says(dir, "surfaces", "bs256-sqrt (B = 256)"));
    assert_true(figure_says(dir, "sharpness", "lr.2_warm (B = 1024)"));
    assert_true(figure_says(dir, "hessian_density", "bs256-sqrt (B = 256) (fd)"));
    assert_true(figure_says(dir, "hessian", "2 s.e."));
    char *p = bsc_strdup_printf("%s/report.html", dir);
    char *html = tu_read(p, NULL);
    assert_non_null(html);
    assert_null(strstr(html, "Skipped"));
    assert_non_null(strstr(html, "<th class=\"l\">run</th>"));
    assert_non_null(strstr(html, "bs256-sqrt</td><td class=\"l\">256</td>"));
    assert_non_null(strstr(html, "lr.2_warm</td><td class=\"l\">1024</td>"));
    assert_null(strstr(html, "notes</td>"));
    /* what is under runs/ but no run is listed among the other files */
    char *sec = other_section(html);
    assert_non_null(strstr(sec, ">runs/notes/readme.txt</a>"));
    assert_non_null(strstr(sec, ">runs/stray.txt</a>"));
    assert_null(strstr(sec, ".partial"));
    assert_int_equal(count(sec, "<tr><td"), 2);
    free(sec);
    /* rows matched by run name: bs256-sqrt's sharpness and update norm, its
     * largest eigenvalue (not its trace) */
    assert_non_null(strstr(html, "<td>2.75</td>"));
    assert_non_null(strstr(html, "<td>0.0027</td>"));
    assert_non_null(strstr(html, "<td>31.5</td>"));
    assert_null(strstr(html, "<td>333</td>"));
    assert_non_null(strstr(html, "Linear interpolation from B = 32 (α = 0) to bs256-sqrt "
                                 "(B = 256) (α = 1)"));
    free(html);
    free(p);
    free(out);
    free(cmd);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_figure),
        cmocka_unit_test(test_page_in_chromium),
        cmocka_unit_test(test_cli_some_analyses),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_named_runs),
        cmocka_unit_test(test_other_files),
        cmocka_unit_test(test_nan_results_never_sink_the_report),
        cmocka_unit_test(test_killed_report_leaves_no_temporary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
