/* The host tasks' threads (host_task.h), shared by the host GEMM backend.
 *
 * OpenBLAS's own threads spin (sched_yield in a loop, about 2^28 cycles)
 * after every call before they sleep. Between two GEMMs of a training step
 * PoCL runs the step's other kernels on its worker threads, and the spinning
 * BLAS threads took the cores from them: on 2 cores the MLP trained 1.5-2x
 * slower with OpenBLAS at 2 threads than at 1 (bench_train, interleaved
 * runs). So OpenBLAS runs single-threaded here and a GEMM large enough to
 * gain is split into column or row blocks run on this pool, whose helpers
 * sleep on a condition variable as soon as their part is done. Each element
 * of C is still one OpenBLAS call's, summed over k in its order, and the
 * split depends only on the shape (blas_host.c), never on which thread runs
 * a part or how many threads there are: results are the same from run to
 * run, whatever BATCHSCOPE_BLAS_THREADS says.
 *
 * Sleeping at once cost a wake-up per job, in a VM an inter-processor
 * interrupt each: inside the MLP's training step at batch 256 the GEMMs ran
 * at about 140 GFLOP/s on 2 cores against 190 for the same parts run back
 * to back. So a helper first spins for up to POOL_SPIN_US (a pause loop,
 * no sched_yield) for the next job, and the caller for the helpers' last
 * parts; measured on 2 cores (bench_train, alternating): MLP batch 256
 * 37.3-38.3k samples/s without the spin, 39.3-41.2k with 300 us,
 * 40.2-44.4k with 1 ms; batch 32 21.0-22.5k against 23.5-29.8k; the CNN
 * 2236-2373 against 2470-2523. Bounded, so an idle process still sleeps. */
#include "batchscope/host_task.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef BSC_HAVE_CBLAS
#include <cblas.h>
#endif

#define POOL_MAX_THREADS 16

static struct {
    pthread_once_t once;
    pthread_mutex_t run;      /* one job at a time (two contexts, two threads) */
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    atomic_ulong gen;
    int threads, parts, next;
    atomic_int done;
    void (*fn)(void *arg, int part, int parts);
    void *arg;
} pool = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
          PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 1, 0, 0, 0, NULL, NULL};

/* The calling thread's index among the pool's threads while it runs a part
 * (bsc_host_worker): 0 for the caller of bsc_host_parallel, 1.. for the
 * helpers. */
static _Thread_local int worker_index;

int bsc_host_worker(void)
{
    return worker_index;
}

/* Takes parts of the current job until none is left; called with mu held. */
static void take_parts(void)
{
    while (pool.next < pool.parts) {
        int p = pool.next++;
        pthread_mutex_unlock(&pool.mu);
        pool.fn(pool.arg, p, pool.parts);
        pthread_mutex_lock(&pool.mu);
        if (++pool.done == pool.parts)
            pthread_cond_signal(&pool.idle);
    }
}

/* How long a thread spins for the next job (a helper) or for the helpers'
 * last parts (the caller) before it sleeps: $BATCHSCOPE_HOST_SPIN_US, in
 * microseconds, default POOL_SPIN_US, at most POOL_SPIN_US_MAX; 0 sleeps at
 * once. */
#define POOL_SPIN_US 1000
#define POOL_SPIN_US_MAX 1000000
static int64_t spin_ns;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *helper(void *index)
{
    worker_index = (int)(intptr_t)index;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        if (atomic_load(&pool.gen) == seen && spin_ns > 0) {
            pthread_mutex_unlock(&pool.mu);
            int64_t until = now_ns() + spin_ns;
            while (atomic_load_explicit(&pool.gen, memory_order_relaxed) == seen &&
                   now_ns() < until)
                spin_pause();
            pthread_mutex_lock(&pool.mu);
        }
        while (pool.gen == seen)
            pthread_cond_wait(&pool.wake, &pool.mu);
        seen = pool.gen;
        take_parts();
    }
    return NULL;
}

static void pool_start(void)
{
    long n = 0;
    const char *env = getenv("BATCHSCOPE_BLAS_THREADS");
    if (env && *env)
        n = strtol(env, NULL, 10);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > POOL_MAX_THREADS)
        n = POOL_MAX_THREADS;
    const char *spin = getenv("BATCHSCOPE_HOST_SPIN_US");
    long us = spin && *spin ? strtol(spin, NULL, 10) : POOL_SPIN_US;
    if (us > POOL_SPIN_US_MAX)
        us = POOL_SPIN_US_MAX;
    spin_ns = us > 0 ? (int64_t)us * 1000 : 0;
#ifdef BSC_HAVE_CBLAS
    openblas_set_num_threads(1);
#endif
    int started = 1;
    for (long i = 1; i < n; i++) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, helper, (void *)(intptr_t)started) == 0)
            started++;
        pthread_attr_destroy(&at);
    }
    pool.threads = started;
}

int bsc_host_threads(void)
{
    pthread_once(&pool.once, pool_start);
    return pool.threads;
}

void bsc_host_parallel(int parts, void (*fn)(void *arg, int part, int parts), void *arg)
{
    pthread_once(&pool.once, pool_start);
    worker_index = 0;
    if (parts <= 1 || pool.threads <= 1) {
        for (int p = 0; p < parts; p++)
            fn(arg, p, parts);
        return;
    }
    pthread_mutex_lock(&pool.run);
    pthread_mutex_lock(&pool.mu);
    pool.fn = fn;
    pool.arg = arg;
    pool.parts = parts;
    pool.next = 0;
    pool.done = 0;
    pool.gen++;
    pthread_cond_broadcast(&pool.wake);
    take_parts();
    if (pool.done < pool.parts && spin_ns > 0) {
        pthread_mutex_unlock(&pool.mu);
        int64_t until = now_ns() + spin_ns;
        while (atomic_load_explicit(&pool.done, memory_order_relaxed) < pool.parts &&
               now_ns() < until)
            spin_pause();
        pthread_mutex_lock(&pool.mu);
    }
    while (pool.done < pool.parts)
        pthread_cond_wait(&pool.idle, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&pool.run);
}
