/* bench_allreduce.c — what the rank-ordered gradient sum of dist.h costs next to the
 * library's own reductions, on the gradient sizes of the model shapes (built and run by
 * tools/bench_mpi.sh under mpirun; a benchmark, never a test):
 *   allreduce      MPI_Allreduce(MPI_SUM): the library's order (not deterministic by
 *                  contract: it may change with the algorithm the library picks)
 *   reduce+bcast   MPI_Reduce(MPI_SUM) to rank 0, MPI_Bcast: the library's order again
 *   gather+bcast   MPI_Gather to rank 0, rank 0 adds in rank order, MPI_Bcast: rank order,
 *                  but rank 0 receives and adds everything
 *   ordered (ours) dist_sum: MPI_Alltoallv, each rank adds its chunk in rank order,
 *                  MPI_Allgatherv (src/train/dist_mpi.c)
 * Every rank's vector is a fixed function of (rank, index), so rank 0 also checks each
 * result against the left-to-right sum in rank order, bit for bit.
 * Usage: mpirun -np N bench_allreduce [REPEATS] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/dist.h"

typedef struct {
    const char *name;
    int L, C, V, T; /* GPT-2 shape: layers, width, vocabulary, positions */
} Shape;

/* Parameters of a GPT-2 (= gradient floats): wte (Vp,C), wpe (T,C), L blocks of
 * 12 C^2 + 13 C (qkv, attention projection, MLP, two LayerNorms), final LayerNorm 2C. */
static size_t gpt2_params(const Shape *s) {
    size_t C = (size_t)s->C, Vp = ((size_t)s->V + 63) / 64 * 64;
    return Vp * C + (size_t)s->T * C + (size_t)s->L * (12 * C * C + 13 * C) + 2 * C;
}

static float value(int rank, size_t i) {
    return (float)((double)((i * 2654435761u + (size_t)rank * 40503u) % 1000003u) * 1e-6 - 0.5) *
           (rank % 3 == 2 ? 1e-3f : 1.0f);
}

static void fill(float *v, size_t n, int rank) {
    for (size_t i = 0; i < n; i++) v[i] = value(rank, i);
}

/* The left-to-right sum in rank order, the answer dist.h promises. */
static void expected(float *v, size_t n, int P) {
    for (size_t i = 0; i < n; i++) {
        float s = value(0, i);
        for (int q = 1; q < P; q++) s += value(q, i);
        v[i] = s;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    Dist *d = NULL;
    TaError err = {0};
    if (dist_init(&d, "bench_allreduce", &err) != TA_OK) {
        fprintf(stderr, "bench_allreduce: %s\n", err.msg);
        return 2;
    }
    const int P = dist_size(d), r = dist_rank(d);
    const int repeats = argc > 1 ? atoi(argv[1]) : 10;
    const Shape shapes[] = {{"tiny (L4 C128 V8192 T256)", 4, 128, 8192, 256},
                            {"small (L6 C384 V8192 T256)", 6, 384, 8192, 256},
                            {"gpt2-124m (L12 C768 V50257 T1024)", 12, 768, 50257, 1024}};
    const char *methods[] = {"allreduce", "reduce+bcast", "gather+bcast", "ordered (ours)"};
    if (r == 0)
        printf("%d ranks; median of %d; bytes: fp32 gradients + 16 doubles of step sums; "
               "bus = 2(N-1)/N x bytes / time\n",
               P, repeats);
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const size_t n = gpt2_params(&shapes[si]);
        float *v = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
        float *all = r == 0 ? malloc(n * (size_t)P * sizeof(float)) : NULL;
        double sums[16];
        if (r == 0) {
            expected(want, n, P);
            printf("%-34s %zu params, %.1f MiB per step\n", shapes[si].name, n,
                   ((double)n * 4 + sizeof sums) / 1048576.0);
        }
        for (int m = 0; m < 4; m++) {
            double *t = malloc(sizeof(double) * (size_t)repeats);
            int exact = 1;
            for (int k = 0; k < repeats; k++) {
                fill(v, n, r);
                for (int j = 0; j < 16; j++) sums[j] = r + j;
                MPI_Barrier(MPI_COMM_WORLD);
                double t0 = MPI_Wtime();
                if (m == 0) {
                    MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                    MPI_Allreduce(MPI_IN_PLACE, sums, 16, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
                } else if (m == 1) {
                    MPI_Reduce(r == 0 ? MPI_IN_PLACE : v, v, (int)n, MPI_FLOAT, MPI_SUM, 0,
                               MPI_COMM_WORLD);
                    MPI_Bcast(v, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
                    MPI_Allreduce(MPI_IN_PLACE, sums, 16, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
                } else if (m == 2) {
                    MPI_Gather(v, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
                    if (r == 0)
#pragma omp parallel for schedule(static)
                        for (size_t i = 0; i < n; i++) {
                            float s = all[i];
                            for (int q = 1; q < P; q++) s += all[(size_t)q * n + i];
                            v[i] = s;
                        }
                    MPI_Bcast(v, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
                    MPI_Allreduce(MPI_IN_PLACE, sums, 16, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
                } else {
                    dist_sum(d, v, n, sums, 16, &err);
                }
                t[k] = MPI_Wtime() - t0;
                if (r == 0 && memcmp(v, want, n * sizeof(float))) exact = 0;
            }
            qsort(t, (size_t)repeats, sizeof *t, cmp_double);
            double med = t[repeats / 2];
            if (r == 0)
                printf("  %-16s %9.2f ms  bus %6.2f GB/s  rank-order sum: %s\n", methods[m],
                       med * 1e3, 2.0 * (P - 1) / P * (double)n * 4 / med / 1e9,
                       exact ? "bit-exact" : "differs");
            free(t);
        }
        free(v);
        free(want);
        free(all);
    }
    fflush(stdout);
    return dist_finish(d, 0, &err);
}
