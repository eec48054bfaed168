/* dist.c — the parts of data parallelism that need no communication (see
 * include/tinyalign/dist.h): the sharding rule and the batch surgery that applies it, the
 * launcher detection, the binary's hash, and the verdict of an agreement from the ranks'
 * records. Both transports (dist_mpi.c, dist_single.c) link it; the unit tests test it
 * without MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/dist.h"

/* ---- the sharding rule ------------------------------------------------------------------ */

void dist_part_range(int units, int part, int parts, int *lo, int *hi) {
    TA_ASSERT(units >= 0 && parts >= 1 && part >= 0 && part < parts);
    *lo = (int)((int64_t)part * units / parts);
    *hi = (int)((int64_t)(part + 1) * units / parts);
}

int dist_part_rows(int rows, int pairwise, int parts) {
    if (parts <= 1) return rows;
    /* floor splits: the largest part has ceil(units / parts) units */
    if (pairwise) return 2 * ((rows / 2 + parts - 1) / parts);
    return (rows + parts - 1) / parts;
}

/* Moves row `from` of b to row `to` (to <= from: a forward compaction never overwrites a
 * row it still has to read). */
static void move_row(Batch *b, int to, int from) {
    if (to == from) return;
    const size_t T = (size_t)b->T;
    memmove(b->tokens + (size_t)to * T, b->tokens + (size_t)from * T, T * sizeof *b->tokens);
    memmove(b->targets + (size_t)to * T, b->targets + (size_t)from * T, T * sizeof *b->targets);
    memmove(b->loss_mask + (size_t)to * T, b->loss_mask + (size_t)from * T, T);
    b->lengths[to] = b->lengths[from];
    b->weights[to] = b->weights[from];
    b->margins[to] = b->margins[from];
    b->example_ids[to] = b->example_ids[from];
    b->feeds[to] = b->feeds[from];
}

void dist_shard_batch(Batch *b, int part, int parts) {
    if (parts <= 1) return;
    int lo, hi;
    if (b->n_pairs > 0) {
        /* pair layout: rows [0,P) chosen, [P,2P) rejected; pair i = rows i and P+i. The
         * part's pairs [lo,hi) become rows [0,m) and [m,2m). Destinations never pass their
         * sources (j <= lo+j, m+j <= P+lo+j), so the copies run forward in place. */
        const int P = b->n_pairs;
        TA_ASSERT(b->B == 2 * P);
        dist_part_range(P, part, parts, &lo, &hi);
        const int m = hi - lo;
        for (int j = 0; j < m; j++) move_row(b, j, lo + j);
        for (int j = 0; j < m; j++) move_row(b, m + j, P + lo + j);
        b->n_pairs = m;
        b->B = 2 * m;
    } else {
        dist_part_range(b->B, part, parts, &lo, &hi);
        for (int j = 0; j < hi - lo; j++) move_row(b, j, lo + j);
        b->B = hi - lo;
    }
}

/* ---- launcher, binary --------------------------------------------------------------------- */

int dist_launcher_size(void) {
    /* Open MPI's mpirun, MPICH / Intel MPI (hydra), Slurm's srun with PMI or PMIx */
    static const char *const SIZE_VARS[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                            "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof SIZE_VARS / sizeof *SIZE_VARS; i++) {
        const char *v = getenv(SIZE_VARS[i]);
        if (v && *v) return atoi(v) > 0 ? atoi(v) : -1;
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? -1 : 0;
}

int dist_launcher_rank(void) {
    static const char *const RANK_VARS[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof RANK_VARS / sizeof *RANK_VARS; i++) {
        const char *v = getenv(RANK_VARS[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

uint64_t dist_binary_hash(void) {
    size_t len;
    char *bytes = ta_read_file("/proc/self/exe", &len, NULL);
    if (!bytes) return 0;
    uint64_t h = ta_fnv1a(TA_FNV1A_INIT, bytes, len);
    free(bytes);
    return h;
}

/* ---- agreement verdict -------------------------------------------------------------------- */

int dist_verdict(const DistRecord *recs, int n, const DistKey *keys, int n_keys,
                 const char *detail, int *rank_out, int *key_out, TaError *err) {
    *rank_out = -1;
    *key_out = -1;
    /* 1. a failure: the first failing rank speaks; when every rank failed the same way it
     * is the message a single process would print */
    int first = -1, failed = 0, same = 1;
    for (int r = 0; r < n; r++) {
        if (recs[r].status == TA_OK) continue;
        failed++;
        if (first < 0) first = r;
        else if (strcmp(recs[r].msg, recs[first].msg)) same = 0;
    }
    if (first >= 0) {
        const DistRecord *f = &recs[first];
        if (failed == n && same) return ta_err(err, f->status, "%s", f->msg);
        if (failed == n)
            return ta_err(err, f->status, "rank %d of %d: %s (the ranks failed differently)",
                          first, n, f->msg);
        return ta_err(err, f->status,
                      "rank %d of %d: %s (%d of %d ranks did not fail here: every node must see "
                      "the same files at the same paths: the data, the models, and run.out_dir "
                      "for a resume, e.g. on a shared filesystem)",
                      first, n, f->msg, n - failed, n);
    }
    /* 2. the keys, in order: the first one some rank holds differently from rank 0 */
    for (int k = 0; k < n_keys; k++)
        for (int r = 1; r < n; r++)
            if (recs[r].hash[k] != recs[0].hash[k]) {
                *rank_out = r;
                *key_out = k;
                return ta_err(err, TA_EINPUT, "rank %d of %d differs from rank 0 in its %s%s: %s",
                              r, n, keys[k].what, detail ? detail : "", keys[k].hint);
            }
    return TA_OK;
}

/* Copies line `line` of s (without its newline, cut at cap-1 and trimmed) into out. */
static void line_of(const char *s, int line, char *out, size_t cap) {
    for (int l = 1; l < line && s; l++) {
        s = strchr(s, '\n');
        if (s) s++;
    }
    size_t n = 0;
    if (s) {
        while (*s == ' ') s++;
        while (s[n] && s[n] != '\n') n++;
    }
    if (n >= cap) n = cap - 1;
    memcpy(out, s ? s : "", n);
    out[n] = '\0';
}

void dist_text_difference(const char *a, const char *b, int rank_b, char *buf, size_t cap) {
    int line = 1;
    size_t i = 0;
    for (; a[i] && a[i] == b[i]; i++)
        if (a[i] == '\n') line++;
    char la[160], lb[160];
    line_of(a, line, la, sizeof la);
    line_of(b, line, lb, sizeof lb);
    snprintf(buf, cap, " (line %d: rank 0 has `%s`, rank %d has `%s`)", line, la, rank_b, lb);
}
