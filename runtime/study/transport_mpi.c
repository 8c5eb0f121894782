/* The transport over MPI (transport.h): the only file that includes mpi.h.
 *
 * MPI starts only when an MPI launcher started this process (its
 * environment says so), so the same binary run by hand is one process and
 * never touches MPI. Every MPI call goes through one mutex (the heartbeat
 * thread sends while the main thread works), and only nonblocking calls are
 * made, polled with a deadline: no receive and no send waits forever. The
 * study's own communicator returns errors instead of aborting, so a lost
 * peer becomes a message that names it. */
#ifdef BSC_HAVE_MPI
#include "transport.h"

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batchscope/fsutil.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int started, use_mpi;
static bsc_tp_info info;
static MPI_Comm comm = MPI_COMM_NULL;

static pthread_t hb_thread;
static int hb_running, hb_stop;
static pthread_cond_t hb_cond = PTHREAD_COND_INITIALIZER;
static int *hb_to, hb_n;
static double hb_period, hb_stall;
/* bsc_now() of the main thread's last progress, in microseconds. */
static _Atomic long long progress_us;

void bsc_tp_progress(void)
{
    atomic_store(&progress_us, (long long)(bsc_now() * 1e6));
}

/* Launchers that start MPI processes leave these in their environment:
 * Open MPI's mpirun, PMIx (Open MPI 4+, srun --mpi=pmix), PMI-1/2 (MPICH's
 * hydra, srun --mpi=pmi2). */
static int launched_by_mpi(void)
{
    const char *off = getenv("BATCHSCOPE_MPI");
    if (off && strcmp(off, "0") == 0)
        return 0;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

static bsc_status mpi_fail(int err, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", err);
    return bsc_fail(BSC_ERR_IO, "rank %d (%s): %s: %s", info.rank, info.host, what, text);
}

static void nap(double *sec)
{
    struct timespec ts = {0, (long)(*sec * 1e9)};
    nanosleep(&ts, NULL);
    /* Poll fast while messages flow, back off to 1 ms when idle: a unit's
     * round trip (result in, next unit out) costs about two of these. */
    if (*sec < 1e-3)
        *sec *= 2;
}

bsc_status bsc_tp_start(bsc_tp_info *out)
{
    if (started) {
        *out = info;
        return BSC_OK;
    }
    memset(&info, 0, sizeof info);
    info.size = info.local_size = 1;
    if (gethostname(info.host, sizeof info.host - 1) != 0)
        snprintf(info.host, sizeof info.host, "localhost");
    started = 1;
    if (!launched_by_mpi()) {
        *out = info;
        return BSC_OK;
    }
    int provided = 0, err = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    if (err != MPI_SUCCESS)
        return mpi_fail(err, "MPI_Init_thread");
    use_mpi = 1;
    info.mpi = 1;
    if (provided < MPI_THREAD_SERIALIZED)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "this MPI library offers thread level %d; "
                        "batchscope needs MPI_THREAD_SERIALIZED or better (its heartbeat "
                        "thread sends while the main thread works)", provided);
    MPI_Comm node = MPI_COMM_NULL;
    int name_len = 0;
    char name[MPI_MAX_PROCESSOR_NAME];
    if ((err = MPI_Comm_dup(MPI_COMM_WORLD, &comm)) != MPI_SUCCESS ||
        (err = MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN)) != MPI_SUCCESS ||
        (err = MPI_Comm_rank(comm, &info.rank)) != MPI_SUCCESS ||
        (err = MPI_Comm_size(comm, &info.size)) != MPI_SUCCESS ||
        (err = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, info.rank, MPI_INFO_NULL,
                                   &node)) != MPI_SUCCESS ||
        (err = MPI_Comm_rank(node, &info.local_rank)) != MPI_SUCCESS ||
        (err = MPI_Comm_size(node, &info.local_size)) != MPI_SUCCESS)
        return mpi_fail(err, "setting up the study's communicator");
    MPI_Comm_free(&node);
    if (MPI_Get_processor_name(name, &name_len) == MPI_SUCCESS && name_len > 0)
        snprintf(info.host, sizeof info.host, "%s", name);
    *out = info;
    return BSC_OK;
}

bsc_status bsc_tp_send(int dest, int tag, const void *data, size_t len, double timeout)
{
    if (!use_mpi)
        return bsc_fail(BSC_ERR_INTERNAL, "bsc_tp_send without MPI");
    if (len > INT32_MAX)
        return bsc_fail(BSC_ERR_UNSUPPORTED, "rank %d: a message of %zu bytes to rank %d "
                        "(at most 2 GiB)", info.rank, len, dest);
    MPI_Request req;
    pthread_mutex_lock(&lock);
    int err = MPI_Isend(data, (int)len, MPI_BYTE, dest, tag, comm, &req);
    pthread_mutex_unlock(&lock);
    if (err != MPI_SUCCESS)
        return mpi_fail(err, "MPI_Isend");
    double t0 = bsc_now(), wait = 5e-5;
    for (;;) {
        int done = 0;
        pthread_mutex_lock(&lock);
        err = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        pthread_mutex_unlock(&lock);
        if (err != MPI_SUCCESS)
            return mpi_fail(err, "MPI_Test");
        if (done)
            return BSC_OK;
        if (bsc_now() - t0 > timeout) {
            pthread_mutex_lock(&lock);
            MPI_Cancel(&req);
            MPI_Request_free(&req);
            pthread_mutex_unlock(&lock);
            return bsc_fail(BSC_ERR_IO, "rank %d (%s): rank %d took no message in %.0f s",
                            info.rank, info.host, dest, timeout);
        }
        nap(&wait);
    }
}

bsc_status bsc_tp_recv(int src, int tag, double timeout, bsc_tp_msg *m)
{
    memset(m, 0, sizeof *m);
    if (!use_mpi)
        return bsc_fail(BSC_ERR_INTERNAL, "bsc_tp_recv without MPI");
    double t0 = bsc_now(), wait = 5e-5;
    for (;;) {
        int flag = 0, count = 0, err;
        MPI_Message msg;
        MPI_Status st;
        pthread_mutex_lock(&lock);
        err = MPI_Improbe(src < 0 ? MPI_ANY_SOURCE : src, tag < 0 ? MPI_ANY_TAG : tag, comm, &flag,
                          &msg, &st);
        if (err == MPI_SUCCESS && flag) {
            MPI_Get_count(&st, MPI_BYTE, &count);
            m->data = count > 0 ? malloc((size_t)count) : NULL;
            err = count > 0 && !m->data
                      ? MPI_ERR_NO_MEM
                      : MPI_Mrecv(m->data, count, MPI_BYTE, &msg, &st);
        }
        pthread_mutex_unlock(&lock);
        if (err != MPI_SUCCESS) {
            free(m->data);
            m->data = NULL;
            return mpi_fail(err, "receiving");
        }
        if (flag) {
            m->src = st.MPI_SOURCE;
            m->tag = st.MPI_TAG;
            m->len = (size_t)count;
            return BSC_OK;
        }
        if (bsc_now() - t0 >= timeout)
            return BSC_ERR_NOT_FOUND;
        nap(&wait);
    }
}

int bsc_tp_wait(double timeout)
{
    if (!use_mpi)
        return 0;
    double t0 = bsc_now(), wait = 5e-5;
    for (;;) {
        int flag = 0;
        pthread_mutex_lock(&lock);
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, MPI_STATUS_IGNORE);
        pthread_mutex_unlock(&lock);
        if (flag)
            return 1;
        if (bsc_now() - t0 >= timeout)
            return 0;
        nap(&wait);
    }
}

static void *heartbeat_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!hb_stop) {
        double idle = bsc_now() - (double)atomic_load(&progress_us) * 1e-6;
        for (int i = 0; idle < hb_stall && i < hb_n; i++) {
            MPI_Request req;
            if (MPI_Isend(NULL, 0, MPI_BYTE, hb_to[i], BSC_TAG_HEARTBEAT, comm, &req) ==
                MPI_SUCCESS)
                MPI_Request_free(&req);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = ts.tv_nsec + (long long)(hb_period * 1e9);
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        /* Waiting releases the lock: the main thread's calls go on. */
        pthread_cond_timedwait(&hb_cond, &lock, &ts);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

bsc_status bsc_tp_heartbeat(const int *to, int n, double period, double stall)
{
    if (!use_mpi || hb_running || n <= 0)
        return BSC_OK;
    hb_to = malloc((size_t)n * sizeof *hb_to);
    if (!hb_to)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    memcpy(hb_to, to, (size_t)n * sizeof *hb_to);
    hb_n = n;
    hb_period = period > 0.05 ? period : 0.05;
    hb_stall = stall;
    hb_stop = 0;
    bsc_tp_progress();
    if (pthread_create(&hb_thread, NULL, heartbeat_main, NULL) != 0) {
        free(hb_to);
        hb_to = NULL;
        return bsc_fail(BSC_ERR_INTERNAL, "rank %d: cannot start the heartbeat thread",
                        info.rank);
    }
    hb_running = 1;
    return BSC_OK;
}

void bsc_tp_end(int abort_job, int exit_code)
{
    if (!use_mpi)
        return;
    if (hb_running) {
        pthread_mutex_lock(&lock);
        hb_stop = 1;
        pthread_cond_signal(&hb_cond);
        pthread_mutex_unlock(&lock);
        pthread_join(hb_thread, NULL);
        hb_running = 0;
        free(hb_to);
        hb_to = NULL;
    }
    if (abort_job)
        MPI_Abort(comm != MPI_COMM_NULL ? comm : MPI_COMM_WORLD, exit_code ? exit_code : 1);
    if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
    MPI_Finalize();
    use_mpi = 0;
}
#endif
