/* dist_single.c — the one-process transport of dist.h, linked when the build has no MPI:
 * rank 0 of 1, sums are the identity, every agreement is the caller's own status. It
 * refuses a start by mpirun with N > 1: N copies of one run would write one run directory.
 * The MPI transport is dist_mpi.c (make MPI=1, or build/tinyalign-mpi). */
#include <stdio.h>
#include <stdlib.h>

#include "tinyalign/dist.h"

struct Dist {
    int unused;
};

int dist_init(Dist **out, const char *prog, TaError *err) {
    (void)prog;
    *out = ta_calloc(sizeof **out, "dist");
    int n = dist_launcher_size();
    if ((n > 1 || n < 0) && dist_launcher_rank() != 0) return TA_EINPUT; /* rank 0 says it */
    if (n > 1 || n < 0)
        return ta_err(err, TA_EINPUT,
                      "this tinyalign was built without MPI but was started by an MPI launcher "
                      "(%s processes): use build/tinyalign-mpi, or build with `make MPI=1` "
                      "(needs libopenmpi-dev)", n > 1 ? "several" : "an unknown number of");
    return TA_OK;
}

int dist_rank(const Dist *d) {
    (void)d;
    return 0;
}

int dist_size(const Dist *d) {
    (void)d;
    return 1;
}

int dist_sum(Dist *d, float *f, size_t nf, double *x, size_t nx, TaError *err) {
    (void)d, (void)f, (void)nf, (void)x, (void)nx, (void)err;
    return TA_OK;
}

int dist_max(Dist *d, int v) {
    (void)d;
    return v;
}

int dist_count(Dist *d, int flag) {
    (void)d;
    return flag != 0;
}

int dist_agree(Dist *d, int status, const DistKey *keys, int n_keys, TaError *err) {
    (void)d, (void)keys, (void)n_keys, (void)err;
    return status;
}

int dist_finish(Dist *d, int status, TaError *err) {
    (void)err;
    free(d);
    return status;
}

void dist_info(char *buf, size_t cap) {
    snprintf(buf, cap, "MPI: not built in (make MPI=1, or build/tinyalign-mpi, for mpirun)");
}

void dist_stats(const Dist *d, double *seconds, double *bytes, long *calls) {
    (void)d;
    *seconds = 0.0;
    *bytes = 0.0;
    *calls = 0;
}
