/* bench_conv: conv2d forward, ours (im2col_t + one CLBlast GEMM + the NCHW
 * layout kernel with the bias) against CLBlast's CLBlastSconvgemm plus a bias
 * add, on the two convolutions of pipelines/cnn.yaml.
 *
 *   bench_conv [--device SEL] [--plugin PATH/bsc_layers.so] [--batch B] [--reps R]
 *
 * Our forward is the conv2d layer of the layers plugin, dlopen'ed from the
 * build tree (default: ../plugins/bsc_layers.so next to this executable) and
 * driven through its bsc_layer_ops. Both run on the same input, weights
 * ([F, C, KH, KW], PyTorch's layout) and bias in one process. Each is warmed
 * up first (kernel builds never count), then the R repetitions interleave the
 * two, alternating which goes first, each timed to clFinish. The machine may
 * be shared: the load average is printed before and after, and the ratio of
 * medians is the number to read, not the absolute times.
 *
 * Correctness: convgemm's output (NCHW [B, F, OH, OW]) is compared with ours
 * element by element, and both with a double-precision host convolution of
 * the first and last sample. */
#include "batchscope/batchscope.h"

#include <clblast_c.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct conv_case {
    const char *name;
    const char *yaml;
    int C, H, W, F, K, pad;
} conv_case;

static const conv_case cases[] = {
    {"conv1 1->32 5x5 p2 on 28x28", "{type: conv2d, filters: 32, kernel_size: 5, padding: 2}",
     1, 28, 28, 32, 5, 2},
    {"conv2 32->64 5x5 p2 on 14x14", "{type: conv2d, filters: 64, kernel_size: 5, padding: 2}",
     32, 14, 14, 64, 5, 2},
};

/* y[b, f, :] += bias[f], one item per (b, f) row of P. */
static const char *bias_src =
    "__kernel void add_bias(__global float *y, const int BF, const int F, const int P,\n"
    "                       __global const float *bias, const int bo)\n"
    "{\n"
    "    int i = get_global_id(0);\n"
    "    if (i >= BF)\n"
    "        return;\n"
    "    float a = bias[bo + i % F];\n"
    "    __global float *r = y + (size_t)i * P;\n"
    "    for (int p = 0; p < P; p++)\n"
    "        r[p] += a;\n"
    "}\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void loadavg(char *buf, size_t len)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)len, f))
            buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* Uniform in [-s, s) from a 64-bit LCG: fixed, so runs compare. */
static float urand(float s)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return s * (2.0f * (float)((rng_state >> 40) * (1.0 / 16777216.0)) - 1.0f);
}

static bsc_status alloc_f32(bsc_context *ctx, size_t n, bsc_tensor *t)
{
    int64_t d = (int64_t)n;
    bsc_shape s = bsc_shape_make(1, &d);
    return bsc_tensor_alloc(ctx, BSC_F32, &s, t);
}

static bsc_status clblast_status(CLBlastStatusCode s)
{
    if (s == CLBlastSuccess)
        return BSC_OK;
    return bsc_fail(BSC_ERR_CLBLAST, "CLBlastSconvgemm: %s (%d)", bsc_clblast_error_name(s),
                    (int)s);
}

typedef struct bench {
    const conv_case *cc;
    const bsc_layer_ops *ops;
    void *self;
    bsc_node *opts;
    size_t B, in_n, out_n, P, Q;
    int OH, OW;
    bsc_tensor params, grads, ws, in, out_a, out_b;
    bsc_tensor pv[2], gv[2];
    cl_kernel k_bias;
} bench;

/* (b): CLBlastSconvgemm into out_b, then the bias add. */
static bsc_status run_b(bsc_context *ctx, bench *t)
{
    const conv_case *c = t->cc;
    CLBlastStatusCode s = CLBlastSconvgemm(
        CLBlastKernelModeCrossCorrelation, (size_t)c->C, (size_t)c->H, (size_t)c->W,
        (size_t)c->K, (size_t)c->K, (size_t)c->pad, (size_t)c->pad, 1, 1, 1, 1, (size_t)c->F,
        t->B, t->in.mem, t->in.offset, t->pv[0].mem, t->pv[0].offset, t->out_b.mem,
        t->out_b.offset, &ctx->queue, NULL);
    bsc_status st = clblast_status(s);
    if (st != BSC_OK)
        return st;
    cl_int BF = (cl_int)(t->B * (size_t)c->F), F = c->F, P = (cl_int)t->P,
           bo = (cl_int)t->pv[1].offset;
    bsc_karg a[] = {BSC_ARG(t->out_b.mem), BSC_ARG(BF), BSC_ARG(F), BSC_ARG(P),
                    BSC_ARG(t->pv[1].mem), BSC_ARG(bo)};
    size_t global = (size_t)BF;
    return bsc_launch(ctx, t->k_bias, 6, a, 1, &global, NULL);
}

/* (a): the layer's own forward into out_a. */
static bsc_status run_a(bench *t)
{
    bsc_pass p = {.batch = t->B, .training = 1, .seed = 1, .step = 0};
    return t->ops->forward(t->self, &p, &t->in, &t->out_a);
}

static bsc_status setup(bsc_context *ctx, const bsc_plugin_desc *desc, const conv_case *cc,
                        size_t B, bench *t)
{
    memset(t, 0, sizeof *t);
    t->cc = cc;
    t->B = B;
    for (size_t i = 0; desc->types[i]; i++)
        if (desc->types[i]->kind == BSC_KIND_LAYER && !strcmp(desc->types[i]->name, "conv2d"))
            t->ops = desc->types[i]->ops;
    if (!t->ops)
        return bsc_fail(BSC_ERR_INVALID, "bench_conv: the plugin has no conv2d");
    bsc_status st = bsc_node_parse_string("bench_conv", cc->yaml, &t->opts);
    if (st != BSC_OK)
        return st;
    int64_t dim[3] = {cc->C, cc->H, cc->W};
    bsc_layer_config cfg = {t->opts, bsc_shape_make(3, dim), 0};
    if ((st = t->ops->create(&cfg, &t->self)) != BSC_OK)
        return st;
    bsc_shape os;
    if ((st = t->ops->output_shape(t->self, &os)) != BSC_OK)
        return st;
    t->OH = (int)os.dim[1];
    t->OW = (int)os.dim[2];
    t->P = (size_t)t->OH * (size_t)t->OW;
    t->Q = (size_t)cc->C * (size_t)cc->K * (size_t)cc->K;
    t->in_n = (size_t)cc->C * (size_t)cc->H * (size_t)cc->W;
    t->out_n = (size_t)cc->F * t->P;
    if (t->ops->n_params(t->self) != 2)
        return bsc_fail(BSC_ERR_INVALID, "bench_conv: expected weight and bias");
    size_t wn = (size_t)cc->F * t->Q, n = wn + (size_t)cc->F;
    if ((st = alloc_f32(ctx, n, &t->params)) != BSC_OK ||
        (st = alloc_f32(ctx, n, &t->grads)) != BSC_OK ||
        (st = alloc_f32(ctx, t->ops->workspace_size(t->self, B) + 1, &t->ws)) != BSC_OK ||
        (st = alloc_f32(ctx, B * t->in_n, &t->in)) != BSC_OK ||
        (st = alloc_f32(ctx, B * t->out_n, &t->out_a)) != BSC_OK ||
        (st = alloc_f32(ctx, B * t->out_n, &t->out_b)) != BSC_OK)
        return st;
    int64_t wd = (int64_t)wn, bd = cc->F;
    bsc_shape ws_ = bsc_shape_make(1, &wd), bs_ = bsc_shape_make(1, &bd);
    t->pv[0] = bsc_tensor_view(&t->params, 0, &ws_);
    t->gv[0] = bsc_tensor_view(&t->grads, 0, &ws_);
    /* One flat buffer, weight then bias, as the model lays them out. */
    t->pv[1] = bsc_tensor_view(&t->params, wn, &bs_);
    t->gv[1] = bsc_tensor_view(&t->grads, wn, &bs_);

    float *h = malloc(sizeof(float) * (n > B * t->in_n ? n : B * t->in_n));
    if (!h)
        return bsc_fail(BSC_ERR_NOMEM, "bench_conv: out of memory");
    float ws_scale = 1.0f / sqrtf((float)t->Q);
    for (size_t i = 0; i < wn; i++)
        h[i] = urand(ws_scale);
    for (size_t i = wn; i < n; i++)
        h[i] = urand(0.5f);
    st = bsc_tensor_write(ctx, &t->params, h);
    for (size_t i = 0; st == BSC_OK && i < B * t->in_n; i++)
        h[i] = urand(1.0f);
    if (st == BSC_OK)
        st = bsc_tensor_write(ctx, &t->in, h);
    free(h);
    if (st != BSC_OK)
        return st;

    const bsc_tensor *pp[2] = {&t->pv[0], &t->pv[1]}, *gp[2] = {&t->gv[0], &t->gv[1]};
    bsc_tensor wsv = bsc_tensor_view(&t->ws, 0, &t->ws.shape);
    bsc_layer_binding b = {ctx, B, pp, gp, &wsv};
    if ((st = t->ops->bind(t->self, &b)) != BSC_OK)
        return st;
    return bsc_kernel_from_source(ctx, "bench_conv_bias", bias_src, "", "add_bias",
                                  &t->k_bias);
}

/* Double-precision cross-correlation of sample b, compared with both. */
static void host_check(const bench *t, const float *x, const float *w, const float *bias,
                       const float *ya, const float *yb, size_t b, double *ea, double *eb,
                       double *ymax)
{
    const conv_case *c = t->cc;
    for (int f = 0; f < c->F; f++)
        for (int oy = 0; oy < t->OH; oy++)
            for (int ox = 0; ox < t->OW; ox++) {
                double acc = bias[f];
                for (int ch = 0; ch < c->C; ch++)
                    for (int ki = 0; ki < c->K; ki++)
                        for (int kj = 0; kj < c->K; kj++) {
                            int yy = oy - c->pad + ki, xx = ox - c->pad + kj;
                            if (yy < 0 || yy >= c->H || xx < 0 || xx >= c->W)
                                continue;
                            acc += (double)w[((f * c->C + ch) * c->K + ki) * c->K + kj] *
                                   x[((b * c->C + ch) * c->H + yy) * c->W + xx];
                        }
                size_t o = (b * c->F + f) * t->P + (size_t)oy * t->OW + ox;
                if (fabs(acc) > *ymax)
                    *ymax = fabs(acc);
                if (fabs(ya[o] - acc) > *ea)
                    *ea = fabs(ya[o] - acc);
                if (fabs(yb[o] - acc) > *eb)
                    *eb = fabs(yb[o] - acc);
            }
}

static bsc_status verify(bsc_context *ctx, bench *t)
{
    const conv_case *c = t->cc;
    size_t on = t->B * t->out_n, xn = t->B * t->in_n, wn = (size_t)c->F * t->Q;
    float *ya = malloc(on * sizeof(float)), *yb = malloc(on * sizeof(float));
    float *x = malloc(xn * sizeof(float)), *p = malloc((wn + (size_t)c->F) * sizeof(float));
    bsc_status st = BSC_OK;
    if (!ya || !yb || !x || !p)
        st = bsc_fail(BSC_ERR_NOMEM, "bench_conv: out of memory");
    if (st == BSC_OK && (st = run_a(t)) == BSC_OK && (st = run_b(ctx, t)) == BSC_OK &&
        (st = bsc_finish(ctx)) == BSC_OK && (st = bsc_tensor_read(ctx, &t->out_a, ya)) == BSC_OK &&
        (st = bsc_tensor_read(ctx, &t->out_b, yb)) == BSC_OK &&
        (st = bsc_tensor_read(ctx, &t->in, x)) == BSC_OK)
        st = bsc_tensor_read(ctx, &t->params, p);
    if (st == BSC_OK) {
        double dmax = 0, ymax = 0, ea = 0, eb = 0;
        size_t ndiff = 0;
        for (size_t i = 0; i < on; i++) {
            double d = fabs((double)ya[i] - yb[i]);
            ndiff += ya[i] != yb[i];
            if (d > dmax)
                dmax = d;
        }
        host_check(t, x, p, p + wn, ya, yb, 0, &ea, &eb, &ymax);
        host_check(t, x, p, p + wn, ya, yb, t->B - 1, &ea, &eb, &ymax);
        printf("  check: ours vs convgemm max |diff| %.3g (%zu of %zu elements differ "
               "bitwise); vs host double (samples 0 and %zu, max |y| %.3g): ours %.3g, "
               "convgemm %.3g\n",
               dmax, ndiff, on, t->B - 1, ymax, ea, eb);
        if (dmax > 1e-4 * (ymax > 1 ? ymax : 1) || ea > 1e-4 * ymax || eb > 1e-4 * ymax)
            st = bsc_fail(BSC_ERR_DATA, "bench_conv: %s: outputs disagree", c->name);
    }
    free(ya);
    free(yb);
    free(x);
    free(p);
    return st;
}

static bsc_status timed(bsc_context *ctx, bench *t, int which, double *ms)
{
    double t0 = now_s();
    bsc_status st = which == 0 ? run_a(t) : run_b(ctx, t);
    if (st == BSC_OK)
        st = bsc_finish(ctx);
    *ms = (now_s() - t0) * 1e3;
    return st;
}

static bsc_status bench_case(bsc_context *ctx, const bsc_plugin_desc *desc,
                             const conv_case *cc, size_t B, int reps)
{
    bench t;
    bsc_status st = setup(ctx, desc, cc, B, &t);
    double *ta = calloc((size_t)reps, sizeof(double)), *tb = calloc((size_t)reps, sizeof(double));
    double *r = calloc((size_t)reps, sizeof(double));
    if (st == BSC_OK && (!ta || !tb || !r))
        st = bsc_fail(BSC_ERR_NOMEM, "bench_conv: out of memory");
    printf("%s, batch %zu: GEMM %zu x %zu x %zu (%.2f GFLOP)\n", cc->name, B, (size_t)cc->F,
           B * t.P, t.Q, 2e-9 * (double)cc->F * (double)(B * t.P) * (double)t.Q);
    /* Warm-up: builds every kernel, lets CLBlast compile and cache its own. */
    for (int i = 0; st == BSC_OK && i < 2; i++) {
        double ms;
        if ((st = timed(ctx, &t, 0, &ms)) == BSC_OK)
            st = timed(ctx, &t, 1, &ms);
    }
    if (st == BSC_OK)
        st = verify(ctx, &t);
    char la0[128], la1[128];
    loadavg(la0, sizeof la0);
    for (int i = 0; st == BSC_OK && i < reps; i++) {
        int first = i & 1;   /* alternate which goes first */
        double *slot[2] = {&ta[i], &tb[i]};
        if ((st = timed(ctx, &t, first, slot[first])) == BSC_OK)
            st = timed(ctx, &t, !first, slot[!first]);
        if (st == BSC_OK)
            r[i] = tb[i] / ta[i];
    }
    loadavg(la1, sizeof la1);
    if (st == BSC_OK) {
        double mina = ta[0], minb = tb[0];
        for (int i = 1; i < reps; i++) {
            mina = ta[i] < mina ? ta[i] : mina;
            minb = tb[i] < minb ? tb[i] : minb;
        }
        double ma = median(ta, reps), mb = median(tb, reps), mr = median(r, reps);
        printf("  (a) ours im2col+GEMM+layout: median %8.2f ms  min %8.2f ms\n", ma, mina);
        printf("  (b) CLBlastSconvgemm+bias:   median %8.2f ms  min %8.2f ms\n", mb, minb);
        printf("  b/a: ratio of medians %.3f, median of paired ratios %.3f (%d pairs; "
               "> 1: ours faster)\n",
               mb / ma, mr, reps);
        printf("  loadavg before: %s\n  loadavg after:  %s\n", la0, la1);
    } else {
        fprintf(stderr, "bench_conv: %s: %s\n", cc->name, bsc_last_error());
    }
    fflush(stdout);
    free(ta);
    free(tb);
    free(r);
    if (t.self)
        t.ops->destroy(t.self);
    bsc_node_free(t.opts);
    bsc_tensor_free(&t.params);
    bsc_tensor_free(&t.grads);
    bsc_tensor_free(&t.ws);
    bsc_tensor_free(&t.in);
    bsc_tensor_free(&t.out_a);
    bsc_tensor_free(&t.out_b);
    return st;
}

static const bsc_plugin_desc *load_plugin(const char *path)
{
    char def[PATH_MAX];
    if (!path) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            return NULL;
        exe[n] = 0;
        snprintf(def, sizeof def, "%s/../plugins/bsc_layers.so", dirname(exe));
        path = def;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "bench_conv: dlopen %s: %s\n", path, dlerror());
        return NULL;
    }
    bsc_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, BSC_PLUGIN_ENTRY_SYMBOL);
    const bsc_plugin_desc *d = entry ? entry() : NULL;
    if (!d)
        fprintf(stderr, "bench_conv: %s: no entry point\n", path);
    return d;   /* stays loaded until exit (plugin.h) */
}

int main(int argc, char **argv)
{
    const char *sel = NULL, *plugin = NULL;
    size_t B = 256;
    int reps = 10;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--device"))
            sel = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--plugin"))
            plugin = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--batch"))
            B = (size_t)strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--reps"))
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_conv [--device SEL] [--plugin PATH] [--batch B] "
                            "[--reps R]\n");
            return 2;
        }
    }
    if (B == 0 || reps < 1) {
        fprintf(stderr, "bench_conv: batch and reps must be positive\n");
        return 2;
    }
    const bsc_plugin_desc *desc = load_plugin(plugin);
    if (!desc)
        return 1;
    bsc_context *ctx = NULL;
    bsc_status st = bsc_context_open(sel, &ctx);
    if (st != BSC_OK) {
        fprintf(stderr, "bench_conv: %s\n", bsc_last_error());
        return bsc_status_exit_code(st);
    }
    char d[512];
    bsc_context_describe(ctx, d, sizeof d);
    printf("# %s; %ld online CPUs\n", d, sysconf(_SC_NPROCESSORS_ONLN));
    for (size_t i = 0; st == BSC_OK && i < sizeof cases / sizeof cases[0]; i++)
        st = bench_case(ctx, desc, &cases[i], B, reps);
    bsc_context_free(ctx);
    return bsc_status_exit_code(st);
}
