/* bench_gemm: SGEMM throughput through bsc_gemm on one device.
 *
 *   bench_gemm [--device SEL] [MxNxK[:TT] ...]
 *
 * Each shape is warmed up (CLBlast compiles its kernels on first use) and then
 * timed over enough repetitions to last about a second. Run it twice, with
 * BATCHSCOPE_CLBLAST_TUNE=0 and without, to compare CLBlast's defaults with
 * the tuned parameters bsc_blas_tune applies: the override is process-wide,
 * so one process measures one parameter set. */
#include "batchscope/batchscope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct shape {
    size_t m, n, k;
    int ta, tb;
} shape;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_shape(const char *s, shape *out)
{
    char t[3] = "NN";
    unsigned long m, n, k;
    int got = sscanf(s, "%lux%lux%lu:%2[NTnt]", &m, &n, &k, t);
    if (got < 3 || m == 0 || n == 0 || k == 0)
        return 0;
    out->m = m;
    out->n = n;
    out->k = k;
    out->ta = t[0] == 'T' || t[0] == 't';
    out->tb = t[1] == 'T' || t[1] == 't';
    return 1;
}

static bsc_status alloc_filled(bsc_context *ctx, size_t numel, float v, bsc_tensor *t)
{
    int64_t d = (int64_t)numel;
    bsc_shape s = bsc_shape_make(1, &d);
    bsc_status st = bsc_tensor_alloc(ctx, BSC_F32, &s, t);
    if (st == BSC_OK)
        st = bsc_tensor_fill(ctx, t, v);
    return st;
}

static bsc_status bench_one(bsc_context *ctx, const shape *sh, double *gflops)
{
    bsc_tensor a = {0}, b = {0}, c = {0};
    /* Row-major: op(A) is m x k, so A is stored k x m when transposed. */
    size_t lda = sh->ta ? sh->m : sh->k;
    size_t ldb = sh->tb ? sh->k : sh->n;
    bsc_status st = alloc_filled(ctx, sh->m * sh->k, 0.5f, &a);
    if (st == BSC_OK)
        st = alloc_filled(ctx, sh->k * sh->n, 0.25f, &b);
    if (st == BSC_OK)
        st = alloc_filled(ctx, sh->m * sh->n, 0.0f, &c);
    for (int i = 0; st == BSC_OK && i < 3; i++)
        st = bsc_gemm(ctx, sh->ta, sh->tb, sh->m, sh->n, sh->k, 1.0f, &a, lda, &b, ldb, 0.0f,
                      &c, sh->n);
    if (st == BSC_OK)
        st = bsc_finish(ctx);

    int reps = 0;
    double t0 = now_s(), t1 = t0;
    while (st == BSC_OK && (t1 - t0 < 1.0 || reps < 3)) {
        st = bsc_gemm(ctx, sh->ta, sh->tb, sh->m, sh->n, sh->k, 1.0f, &a, lda, &b, ldb, 0.0f,
                      &c, sh->n);
        if (st == BSC_OK)
            st = bsc_finish(ctx);
        reps++;
        t1 = now_s();
    }
    if (st == BSC_OK)
        *gflops = 2.0 * (double)sh->m * (double)sh->n * (double)sh->k * reps / (t1 - t0) * 1e-9;
    bsc_tensor_free(&a);
    bsc_tensor_free(&b);
    bsc_tensor_free(&c);
    return st;
}

int main(int argc, char **argv)
{
    const char *sel = NULL;
    static const char *defaults[] = {"1024x1024x1024", "256x512x784", "256x784x512",
                                     "512x784x256:TN", "32x512x784", "128x128x128"};
    const char **shapes = defaults;
    int nshapes = (int)(sizeof defaults / sizeof defaults[0]);
    bsc_context *ctx = NULL;
    char desc[512];

    if (argc > 2 && strcmp(argv[1], "--device") == 0) {
        sel = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc > 1) {
        shapes = (const char **)(argv + 1);
        nshapes = argc - 1;
    }
    bsc_status st = bsc_context_open(sel, &ctx);
    if (st != BSC_OK) {
        fprintf(stderr, "bench_gemm: %s\n", bsc_last_error());
        return bsc_status_exit_code(st);
    }
    bsc_context_describe(ctx, desc, sizeof desc);
    const char *tune = getenv("BATCHSCOPE_CLBLAST_TUNE");
    printf("# %s; BATCHSCOPE_CLBLAST_TUNE=%s\n", desc, tune ? tune : "(unset)");
    printf("%-20s %10s\n", "shape", "GFLOP/s");
    for (int i = 0; i < nshapes && st == BSC_OK; i++) {
        shape sh;
        double g = 0;
        if (!parse_shape(shapes[i], &sh)) {
            fprintf(stderr, "bench_gemm: bad shape '%s' (want MxNxK or MxNxK:TN)\n", shapes[i]);
            st = BSC_ERR_USAGE;
            break;
        }
        st = bench_one(ctx, &sh, &g);
        if (st == BSC_OK)
            printf("%-20s %10.1f\n", shapes[i], g);
        else
            fprintf(stderr, "bench_gemm: %s: %s\n", shapes[i], bsc_last_error());
        fflush(stdout);
    }
    bsc_context_free(ctx);
    return bsc_status_exit_code(st);
}
