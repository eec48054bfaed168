/* dist_mpi.c — the MPI transport of dist.h (Open MPI 4; any MPI-3 library): joining the job,
 * the rank-ordered sum, the agreements, quiet output on ranks other than 0, and the end of
 * the job. Linked instead of dist_single.c by `make MPI=1` and into build/tinyalign-mpi.
 *
 * The ordered sum. For a vector v of m floats and N ranks, chunk c is the elements
 * [floor(c m / N), floor((c+1) m / N)). MPI_Alltoallv sends chunk c of every rank's v to
 * rank c; rank c adds the N copies in rank order, s = v_0 + v_1 + ... + v_{N-1} (left to
 * right, in float, the order fixed by the code and not by the network); MPI_Allgatherv
 * gives every rank every summed chunk. Each rank sends and receives 2 (N-1)/N of the vector,
 * as a ring all-reduce does, and adds 1/N of it, so the order costs nothing in bandwidth.
 * Vectors are summed in segments of SEGMENT floats: the scratch buffer stays bounded and
 * MPI's int counts never overflow. The objective's sums (a few doubles) are gathered whole
 * (MPI_Allgather) and added in rank order on every rank.
 *
 * Failures: the communicators return MPI errors (MPI_ERRORS_RETURN) and any MPI error
 * prints which call failed on which rank and aborts the job (MPI_Abort): with a peer gone,
 * nothing sensible remains to do. mpirun reports a rank that dies and stops the others.
 * Not here: the rules themselves (dist.c), what is summed (train/step.c).
 */
#define _GNU_SOURCE /* fopencookie (the rank prefix of stderr), sched_getaffinity */
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tinyalign/dist.h"

enum { SEGMENT = 1 << 24 }; /* floats per collective: 64 MiB of scratch at most */

struct Dist {
    int rank, size;
    int mpi;         /* MPI_Init was called (started by a launcher), also for N = 1 */
    MPI_Comm comm;   /* sums and agreements of the run */
    MPI_Comm ctl;    /* dist_finish only: it can never match a collective of a step */
    const char *prog;
    uint64_t binary; /* hash of the executable */
    int timeout_s;   /* dist_finish: how long to wait for the other ranks */
    float *fbuf;     /* (N x chunk) the copies of this rank's chunk */
    size_t fcap;
    double *dbuf;    /* (N x nx) every rank's doubles */
    size_t dcap;
    int *counts, *displs, *rcounts, *rdispls; /* (N) each */
    double t_start;
    double sum_seconds, grad_seconds, grad_bytes;
    long sum_calls, grad_calls;
};

/* ---- errors ------------------------------------------------------------------------------ */

static void mpi_check(const Dist *d, int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, s, &len);
    fprintf(stderr, "%s: MPI %s failed on rank %d of %d: %s (another rank died or lost its "
                    "connection?); stopping the job\n", d->prog, what, d->rank, d->size, s);
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
}

/* ---- quiet ranks: stdout to /dev/null, stderr filtered and prefixed ----------------------- */

/* stderr of a rank other than 0: a line is shown (prefixed "[rank r] ") when it begins with
 * "tinyalign", as every error message of the engine does; other lines (progress, notes,
 * warnings: the same on every rank) are dropped. Decided per line from its first bytes. */
typedef struct {
    int fd;           /* the real standard error */
    char prefix[32];
    char head[9];     /* the first bytes of the current line */
    size_t n_head;
    int state;        /* 0: deciding, 1: showing, 2: dropping the rest of the line */
} RankStderr;

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static ssize_t rank_stderr_write(void *cookie, const char *buf, size_t len) {
    RankStderr *e = cookie;
    static const char SHOWN[] = "tinyalign";
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (e->state == 0) {
            e->head[e->n_head++] = c;
            if (c != '\n' && e->n_head < sizeof e->head) continue;
            int show = e->n_head == sizeof e->head && !memcmp(e->head, SHOWN, sizeof e->head);
            if (show) {
                write_all(e->fd, e->prefix, strlen(e->prefix));
                write_all(e->fd, e->head, e->n_head);
            }
            e->n_head = 0;
            e->state = c == '\n' ? 0 : show ? 1 : 2;
        } else {
            size_t j = i;
            while (j < len && buf[j] != '\n') j++;
            int eol = j < len;
            if (e->state == 1) write_all(e->fd, buf + i, j - i + (size_t)eol);
            if (eol) e->state = 0;
            i = j;
        }
    }
    return (ssize_t)len;
}

static void quiet_outputs(const Dist *d) {
    fflush(stdout);
    fflush(stderr);
    if (!freopen("/dev/null", "w", stdout)) return;
    RankStderr *e = ta_calloc(sizeof *e, "stderr filter"); /* lives as long as the process */
    e->fd = dup(STDERR_FILENO);
    snprintf(e->prefix, sizeof e->prefix, "[rank %d] ", d->rank);
    cookie_io_functions_t io = {.write = rank_stderr_write};
    FILE *f = fopencookie(e, "w", io);
    if (!f || e->fd < 0) return;
    setvbuf(f, NULL, _IONBF, 0);
    stderr = f; /* glibc: stderr is an assignable variable */
}

/* ---- threads: the ranks on one node share its cores ------------------------------------- */

static void split_threads(const Dist *d) {
    if (getenv("OMP_NUM_THREADS")) return;
    MPI_Comm node;
    if (MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS)
        return;
    int local = 1;
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
    /* bound by the launcher to some cores: use them; else a share of the node */
    int n = mine < online ? mine : (int)(online / local);
    ta_set_threads(n >= 1 ? n : 1);
}

/* ---- the transport ------------------------------------------------------------------------ */

int dist_init(Dist **out, const char *prog, TaError *err) {
    Dist *d = ta_calloc(sizeof *d, "dist");
    *out = d;
    d->size = 1;
    d->prog = prog;
    d->t_start = ta_now();
    if (dist_launcher_size() == 0) return TA_OK; /* a plain process: MPI stays untouched */
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return ta_err(err, TA_ERUNTIME, "MPI_Init failed");
    d->mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    mpi_check(d, MPI_Comm_dup(MPI_COMM_WORLD, &d->comm), "Comm_dup");
    mpi_check(d, MPI_Comm_dup(MPI_COMM_WORLD, &d->ctl), "Comm_dup");
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(d->ctl, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    const size_t P = (size_t)d->size;
    d->counts = ta_calloc(4 * P * sizeof(int), "dist counts");
    d->displs = d->counts + P;
    d->rcounts = d->counts + 2 * P;
    d->rdispls = d->counts + 3 * P;
    const char *t = getenv("TINYALIGN_DIST_TIMEOUT");
    d->timeout_s = t && atoi(t) > 0 ? atoi(t) : 30;
    d->binary = dist_binary_hash();
    if (d->size > 1 && d->rank > 0) quiet_outputs(d);
    if (d->size > 1) split_threads(d);
    return TA_OK;
}

int dist_rank(const Dist *d) { return d ? d->rank : 0; }
int dist_size(const Dist *d) { return d ? d->size : 1; }

/* One segment of m floats (see the top of the file). */
static void sum_floats(Dist *d, float *v, int m) {
    const int P = d->size, r = d->rank;
    for (int c = 0; c < P; c++) {
        int lo, hi;
        dist_part_range(m, c, P, &lo, &hi);
        d->counts[c] = hi - lo;
        d->displs[c] = lo;
    }
    const int k = d->counts[r];
    for (int s = 0; s < P; s++) {
        d->rcounts[s] = k;
        d->rdispls[s] = s * k;
    }
    if ((size_t)P * (size_t)k > d->fcap) { /* once, at the first step */
        free(d->fbuf);
        d->fcap = (size_t)P * (size_t)k;
        d->fbuf = ta_malloc(d->fcap * sizeof(float), "all-reduce buffer");
    }
    mpi_check(d, MPI_Alltoallv(v, d->counts, d->displs, MPI_FLOAT, d->fbuf, d->rcounts,
                               d->rdispls, MPI_FLOAT, d->comm), "Alltoallv (gradient sum)");
    float *own = v + d->displs[r];
    const float *in = d->fbuf;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < k; i++) {
        float s = in[i];
        for (int q = 1; q < P; q++) s += in[(size_t)q * (size_t)k + (size_t)i];
        own[i] = s;
    }
    mpi_check(d, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, d->counts, d->displs,
                                MPI_FLOAT, d->comm), "Allgatherv (gradient sum)");
}

static void sum_doubles(Dist *d, double *x, int nx) {
    const int P = d->size;
    if ((size_t)P * (size_t)nx > d->dcap) {
        free(d->dbuf);
        d->dcap = (size_t)P * (size_t)nx;
        d->dbuf = ta_malloc(d->dcap * sizeof(double), "all-reduce buffer");
    }
    mpi_check(d, MPI_Allgather(x, nx, MPI_DOUBLE, d->dbuf, nx, MPI_DOUBLE, d->comm),
              "Allgather (step sums)");
    for (int i = 0; i < nx; i++) {
        double s = d->dbuf[i];
        for (int q = 1; q < P; q++) s += d->dbuf[(size_t)q * (size_t)nx + (size_t)i];
        x[i] = s;
    }
}

int dist_sum(Dist *d, float *f, size_t nf, double *x, size_t nx, TaError *err) {
    (void)err; /* MPI failures abort the job (mpi_check) */
    if (!d || d->size == 1) return TA_OK;
    TA_ASSERT(nx <= (size_t)1 << 20);
    double t0 = ta_now();
    for (size_t off = 0; off < nf; off += SEGMENT)
        sum_floats(d, f + off, (int)(nf - off < SEGMENT ? nf - off : SEGMENT));
    if (nx > 0) sum_doubles(d, x, (int)nx);
    double dt = ta_now() - t0;
    d->sum_seconds += dt;
    d->sum_calls++;
    if (nf > 0 && nx > 0) { /* a step's gradients and sums (StepAllReduce GRADS) */
        d->grad_seconds += dt;
        d->grad_bytes = (double)nf * sizeof(float) + (double)nx * sizeof(double);
        d->grad_calls++;
    }
    return TA_OK;
}

int dist_max(Dist *d, int v) {
    if (!d || d->size == 1) return v;
    int out = v;
    mpi_check(d, MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, d->comm), "Allreduce (max)");
    return out;
}

int dist_count(Dist *d, int flag) {
    int v = flag != 0, out = v;
    if (!d || d->size == 1) return v;
    mpi_check(d, MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_SUM, d->comm), "Allreduce (count)");
    return out;
}

int dist_agree(Dist *d, int status, const DistKey *keys, int n_keys, TaError *err) {
    if (!d || d->size == 1) return status;
    TA_ASSERT(n_keys >= 0 && n_keys < DIST_MAX_KEYS);
    DistKey ks[DIST_MAX_KEYS];
    ks[0] = (DistKey){"binary", d->binary, NULL,
                      "run one build of tinyalign on every node (the same file, or a copy of "
                      "it; -march=native builds differ between CPUs)"};
    for (int k = 0; k < n_keys; k++) ks[k + 1] = keys[k];
    DistRecord mine;
    memset(&mine, 0, sizeof mine);
    mine.status = status;
    mine.n_keys = n_keys + 1;
    for (int k = 0; k <= n_keys; k++) mine.hash[k] = ks[k].hash;
    if (status != TA_OK) snprintf(mine.msg, sizeof mine.msg, "%s", err->msg);
    DistRecord *all = ta_malloc(sizeof *all * (size_t)d->size, "agreement");
    mpi_check(d, MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, d->comm),
              "Allgather (agreement)");
    int r, k;
    int rc = dist_verdict(all, d->size, ks, n_keys + 1, NULL, &r, &k, err);
    if (k >= 0 && ks[k].text) { /* quote the first line that differs (rank r -> rank 0) */
        enum { TAG = 1 };
        if (d->rank == r) {
            unsigned long len = (unsigned long)strlen(ks[k].text) + 1;
            mpi_check(d, MPI_Send(&len, 1, MPI_UNSIGNED_LONG, 0, TAG, d->comm), "Send");
            mpi_check(d, MPI_Send(ks[k].text, (int)len, MPI_CHAR, 0, TAG, d->comm), "Send");
        } else if (d->rank == 0) {
            unsigned long len;
            mpi_check(d, MPI_Recv(&len, 1, MPI_UNSIGNED_LONG, r, TAG, d->comm, MPI_STATUS_IGNORE),
                      "Recv");
            char *other = ta_malloc(len, "agreement text");
            mpi_check(d, MPI_Recv(other, (int)len, MPI_CHAR, r, TAG, d->comm, MPI_STATUS_IGNORE),
                      "Recv");
            char detail[512];
            dist_text_difference(ks[k].text, other, r, detail, sizeof detail);
            rc = dist_verdict(all, d->size, ks, n_keys + 1, detail, &r, &k, err);
            free(other);
        }
    }
    free(all);
    return rc;
}

/* A rank whose peers never arrived at the end: they wait in a step for it. */
static void abort_alone(const Dist *d, int status, const TaError *err) {
    if ((status == TA_ERUNTIME || status == TA_EINPUT) && err->msg[0])
        fprintf(stderr, "%s: %s\n", d->prog, err->msg);
    fprintf(stderr, "%s: rank %d of %d stopped (status %d) but the other ranks did not reach the "
                    "end within %d s (TINYALIGN_DIST_TIMEOUT): stopping the job\n",
            d->prog, d->rank, d->size, status, d->timeout_s);
    MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
    _exit(status ? status : 1);
}

/* Waits for a collective of dist_finish; aborts the job when this rank's peers do not all
 * arrive within the timeout. */
static void wait_or_abort(const Dist *d, MPI_Request *req, int status, const TaError *err) {
    const double deadline = ta_now() + d->timeout_s;
    for (int done = 0; !done;) {
        mpi_check(d, MPI_Test(req, &done, MPI_STATUS_IGNORE), "Test (end)");
        if (done) break;
        if (ta_now() > deadline) abort_alone(d, status, err);
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
}

static void report_comm(const Dist *d) {
    if (d->rank != 0 || d->grad_calls == 0) return;
    double wall = ta_now() - d->t_start;
    fprintf(stderr, "data parallel: %d ranks; gradient all-reduce of %.2f MiB, %.1f ms on "
                    "average over %ld steps (all sums: %.1f%% of %.1fs)\n",
            d->size, d->grad_bytes / 1048576.0, 1e3 * d->grad_seconds / (double)d->grad_calls,
            d->grad_calls, 100.0 * d->sum_seconds / (wall > 0 ? wall : 1), wall);
}

int dist_finish(Dist *d, int status, TaError *err) {
    if (!d) return status;
    int job = status;
    if (d->mpi && d->size > 1) {
        fflush(stdout);
        DistRecord mine, *all = ta_malloc(sizeof *all * (size_t)d->size, "end records");
        memset(&mine, 0, sizeof mine);
        mine.status = status;
        if (status == TA_ERUNTIME || status == TA_EINPUT)
            snprintf(mine.msg, sizeof mine.msg, "%s", err->msg);
        MPI_Request req;
        mpi_check(d, MPI_Iallgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE,
                                    d->ctl, &req), "Iallgather (end)");
        wait_or_abort(d, &req, status, err);
        /* the job's status: the first non-zero one in rank order; its message: the first
         * failing rank's that has one (after an agreement only the failing rank has it) */
        int first = -1, says = -1;
        for (int r = 0; r < d->size; r++) {
            if (all[r].status != 0 && first < 0) first = r;
            if (all[r].status != 0 && all[r].msg[0] && says < 0) says = r;
        }
        job = first < 0 ? 0 : all[first].status;
        if (d->rank != 0) err->msg[0] = '\0';
        else if (says > 0)
            ta_err(err, job, "rank %d of %d: %s", says, d->size, all[says].msg);
        if (job == 0 || job > TA_EINPUT) report_comm(d);
        free(all);
        /* Rank 0 prints the job's error before any rank leaves: mpirun stops the whole job
         * at the first non-zero exit, which could otherwise kill rank 0 before it spoke. */
        if (d->rank == 0 && (job == TA_ERUNTIME || job == TA_EINPUT) && err->msg[0]) {
            fprintf(stderr, "%s: %s\n", d->prog, err->msg);
            fflush(stderr);
        }
        err->msg[0] = '\0';
        mpi_check(d, MPI_Ibarrier(d->ctl, &req), "Ibarrier (end)");
        wait_or_abort(d, &req, job, err);
    }
    if (d->mpi) {
        MPI_Comm_free(&d->comm);
        MPI_Comm_free(&d->ctl);
        MPI_Finalize();
    }
    free(d->counts);
    free(d->fbuf);
    free(d->dbuf);
    free(d);
    return job;
}

void dist_info(char *buf, size_t cap) {
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    char *cut = strpbrk(v, ",\n"); /* "Open MPI v4.1.4, package: ..." */
    if (cut) *cut = '\0';
    snprintf(buf, cap, "MPI: %s (mpirun -np N runs data parallel)", v);
}

void dist_stats(const Dist *d, double *seconds, double *bytes, long *calls) {
    *seconds = d ? d->grad_seconds : 0.0;
    *bytes = d ? d->grad_bytes : 0.0;
    *calls = d ? d->grad_calls : 0;
}
