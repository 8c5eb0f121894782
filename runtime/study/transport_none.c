/* The transport of a build without MPI (transport.h): every process is rank
 * 0 of 1, so the scheduler never sends or receives. */
#ifndef BSC_HAVE_MPI
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bsc_status bsc_tp_start(bsc_tp_info *out)
{
    memset(out, 0, sizeof *out);
    out->size = out->local_size = 1;
    /* Under `mpirun -n N` (N > 1) each of the N processes would run the
     * whole study into the same OUT: say why instead. Open MPI's and
     * PMI's job sizes; BATCHSCOPE_MPI=0 lets it run anyway. */
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    const char *off = getenv("BATCHSCOPE_MPI");
    for (size_t i = 0; !(off && !strcmp(off, "0")) && i < sizeof sizes / sizeof *sizes; i++) {
        const char *v = getenv(sizes[i]);
        if (v && atoi(v) > 1)
            return bsc_fail(BSC_ERR_UNSUPPORTED, "launched as one of %s processes (%s), but "
                            "this batchscope was built without MPI (-DBATCHSCOPE_MPI=OFF, or "
                            "no libopenmpi-dev at configure time): run it without mpirun, or "
                            "rebuild with MPI", v, sizes[i]);
    }
    if (gethostname(out->host, sizeof out->host - 1) != 0)
        snprintf(out->host, sizeof out->host, "localhost");
    return BSC_OK;
}

bsc_status bsc_tp_send(int dest, int tag, const void *data, size_t len, double timeout)
{
    (void)tag, (void)data, (void)len, (void)timeout;
    return bsc_fail(BSC_ERR_UNSUPPORTED, "sending to rank %d: built without MPI", dest);
}

bsc_status bsc_tp_recv(int src, int tag, double timeout, bsc_tp_msg *m)
{
    (void)src, (void)tag, (void)timeout;
    memset(m, 0, sizeof *m);
    return BSC_ERR_NOT_FOUND;
}

int bsc_tp_wait(double timeout)
{
    (void)timeout;
    return 0;
}

bsc_status bsc_tp_heartbeat(const int *to, int n, double period, double stall)
{
    (void)to, (void)n, (void)period, (void)stall;
    return BSC_OK;
}

void bsc_tp_progress(void)
{
}

void bsc_tp_end(int abort_job, int exit_code)
{
    (void)abort_job, (void)exit_code;
}
#endif
