/* test_dist.c — the data-parallel rules of include/tinyalign/dist.h that need no MPI, with
 * exact answers: the sharding rule (parts cover the units once, sizes differ by <= 1, the
 * largest part fits dist_part_rows); dist_shard_batch keeps exactly the part's rows (pairs
 * together, in the pair layout); the objective over the parts, with the whole step's
 * normalisers, adds up to the objective of the whole batch (DPO on pairs, SFT on rows:
 * what makes N ranks compute one process's step); the agreement verdicts and their
 * messages; launcher detection and the one-process transport (which refuses mpirun -np 2).
 * The transport over MPI is tested end to end by tests/cli/mpi.sh. */
#define _POSIX_C_SOURCE 200809L
#include "testhelp.h"
#include "tinyalign/dist.h"
#include "tinyalign/objective.h"

static void test_part_range(void) {
    for (int units = 0; units <= 23; units++)
        for (int parts = 1; parts <= 6; parts++) {
            int next = 0, smallest = units, largest = 0;
            for (int p = 0; p < parts; p++) {
                int lo, hi;
                dist_part_range(units, p, parts, &lo, &hi);
                T_CHECK(lo == next && hi >= lo, "units %d parts %d part %d: [%d,%d) after %d",
                        units, parts, p, lo, hi, next);
                next = hi;
                smallest = hi - lo < smallest ? hi - lo : smallest;
                largest = hi - lo > largest ? hi - lo : largest;
            }
            T_CHECK(next == units, "units %d parts %d: covered %d", units, parts, next);
            T_CHECK(largest - smallest <= 1, "units %d parts %d: sizes %d..%d", units, parts,
                    smallest, largest);
            T_CHECK(largest <= dist_part_rows(units, 0, parts), "rows");
            T_CHECK(2 * largest <= dist_part_rows(2 * units, 1, parts), "pair rows");
        }
    T_CHECK(dist_part_rows(16, 1, 1) == 16 && dist_part_rows(16, 0, 0) == 16, "one part");
    T_CHECK(dist_part_rows(6, 1, 2) == 4, "3 pairs over 2 ranks: 2 pairs = 4 rows");
}

enum { T = 5 };

/* A batch whose every cell names its row: tokens = 100 row + t, etc. */
static void fill_rows(Batch *b, int rows, int pairs) {
    b->B = rows;
    b->T = T;
    b->n_pairs = pairs;
    for (int r = 0; r < rows; r++) {
        for (int t = 0; t < T; t++) {
            b->tokens[r * T + t] = 100 * r + t;
            b->targets[r * T + t] = t < T - 1 - r % 2 ? 1000 * r + t : -1;
            b->loss_mask[r * T + t] = t >= 1 && t < T - 1 - r % 2;
        }
        b->lengths[r] = T - r % 2;
        b->weights[r] = pairs ? 1.0f + (float)(r % pairs) : 1.0f;
        b->example_ids[r] = pairs ? r % pairs : r;
    }
}

/* Row `row` of sharded b holds original row `orig`. */
static int row_is(const Batch *b, int row, int orig) {
    for (int t = 0; t < T; t++)
        if (b->tokens[row * T + t] != 100 * orig + t ||
            b->targets[row * T + t] != (t < T - 1 - orig % 2 ? 1000 * orig + t : -1) ||
            b->loss_mask[row * T + t] != (t >= 1 && t < T - 1 - orig % 2))
            return 0;
    return b->lengths[row] == T - orig % 2;
}

static void test_shard_rows(void) {
    Batch b;
    batch_alloc(&b, 7, T);
    for (int parts = 1; parts <= 4; parts++)
        for (int p = 0; p < parts; p++) {
            fill_rows(&b, 7, 0);
            int lo, hi;
            dist_part_range(7, p, parts, &lo, &hi);
            dist_shard_batch(&b, p, parts);
            T_CHECK(b.B == hi - lo && b.T == T && b.n_pairs == 0, "parts %d part %d: B %d", parts,
                    p, b.B);
            for (int j = 0; j < b.B; j++)
                T_CHECK(row_is(&b, j, lo + j) && b.example_ids[j] == lo + j,
                        "parts %d part %d: row %d is not row %d", parts, p, j, lo + j);
        }
    batch_free(&b);
}

static void test_shard_pairs(void) {
    Batch b;
    const int P = 5;
    batch_alloc(&b, 2 * P, T);
    for (int parts = 1; parts <= 6; parts++)
        for (int p = 0; p < parts; p++) {
            fill_rows(&b, 2 * P, P);
            int lo, hi;
            dist_part_range(P, p, parts, &lo, &hi);
            const int m = hi - lo;
            dist_shard_batch(&b, p, parts);
            T_CHECK(b.n_pairs == m && b.B == 2 * m, "parts %d part %d: %d pairs, B %d", parts, p,
                    b.n_pairs, b.B);
            for (int j = 0; j < m; j++) {
                T_CHECK(row_is(&b, j, lo + j), "parts %d part %d: chosen %d", parts, p, j);
                T_CHECK(row_is(&b, m + j, P + lo + j), "parts %d part %d: rejected %d", parts, p, j);
                T_CHECK(b.example_ids[j] == lo + j && b.example_ids[m + j] == lo + j &&
                            b.weights[j] == b.weights[m + j],
                        "parts %d part %d: pair %d split", parts, p, j);
            }
        }
    batch_free(&b);
}

/* logp of original row `orig` at position t: any fixed negative numbers */
static float logp_of(int orig, int t) { return -0.1f - 0.37f * (float)((orig * 7 + t * 3) % 11); }

/* The loss head over each part's rows, with the whole batch's normalisers summed over the
 * parts (as the NORM hook does), equals the loss head over the whole batch. */
static void parts_match_whole(const CfgObjective *o, int rows, int pairs, const char *name) {
    Batch b;
    batch_alloc(&b, rows, T);
    float logp[64 * T], ref[64], dlogp[64 * T];
    ObjectiveNorm whole_norm = {0};
    ObjectiveStats whole = {0};
    fill_rows(&b, rows, pairs);
    for (int r = 0; r < rows; r++) {
        ref[r] = -2.0f - 0.5f * (float)(r % 3);
        for (int t = 0; t < T; t++) logp[r * T + t] = logp_of(r, t);
    }
    TaError err = {0};
    int rc = objective_norm_add(&whole_norm, o, &b, &err);
    if (rc == TA_OK) rc = objective_forward_backward(o, &b, logp, ref, &whole_norm, dlogp, &whole, &err);
    T_CHECK(rc == TA_OK, "%s whole: %s", name, err.msg);
    for (int parts = 2; parts <= 4; parts++) {
        ObjectiveNorm norm[4] = {{0}}, sum_norm = {0};
        ObjectiveStats st = {0};
        for (int p = 0; p < parts; p++) { /* 1. every part counts its rows: NORM hook sums */
            fill_rows(&b, rows, pairs);
            dist_shard_batch(&b, p, parts);
            if (b.B > 0) T_CHECK(objective_norm_add(&norm[p], o, &b, &err) == TA_OK, "%s", err.msg);
            const double *a = (const double *)&norm[p];
            double *s = (double *)&sum_norm;
            for (size_t i = 0; i < sizeof sum_norm / sizeof(double); i++) s[i] += a[i];
        }
        T_CHECK(!memcmp(&sum_norm, &whole_norm, sizeof sum_norm), "%s parts %d: normalisers differ",
                name, parts);
        for (int p = 0; p < parts; p++) { /* 2. the loss head on each part, the sums added */
            fill_rows(&b, rows, pairs);
            int lo, hi, m;
            dist_part_range(pairs ? pairs : rows, p, parts, &lo, &hi);
            dist_shard_batch(&b, p, parts);
            m = hi - lo;
            if (b.B == 0) continue;
            float plogp[64 * T], pref[64];
            for (int j = 0; j < b.B; j++) {
                int orig = !pairs ? lo + j : j < m ? lo + j : pairs + lo + (j - m);
                pref[j] = ref[orig];
                for (int t = 0; t < T; t++) plogp[j * T + t] = logp_of(orig, t);
            }
            T_CHECK(objective_forward_backward(o, &b, plogp, pref, &sum_norm, dlogp, &st, &err) ==
                        TA_OK, "%s", err.msg);
        }
        const double *a = (const double *)&st, *w = (const double *)&whole;
        for (size_t i = 0; i < sizeof st / sizeof(double); i++)
            T_CHECK(fabs(a[i] - w[i]) <= 1e-12 * fmax(1.0, fabs(w[i])),
                    "%s parts %d: stat %zu %.17g vs whole %.17g", name, parts, i, a[i], w[i]);
    }
    batch_free(&b);
}

static void test_parts_add_up(void) {
    CfgObjective dpo = {.type = CFG_OBJ_DPO, .beta = 0.1, .loss_type = CFG_LOSS_SIGMOID};
    parts_match_whole(&dpo, 14, 7, "dpo");
    if (t_case_failed) return;
    CfgObjective sft = {.type = CFG_OBJ_SFT};
    parts_match_whole(&sft, 9, 0, "sft");
}

static void test_verdict(void) {
    DistRecord r[3];
    memset(r, 0, sizeof r);
    DistKey keys[2] = {{"binary", 0, NULL, "same build"}, {"config", 0, NULL, "same config"}};
    for (int i = 0; i < 3; i++) r[i].hash[0] = r[i].hash[1] = 42;
    TaError err = {0};
    int rank, key;
    T_CHECK(dist_verdict(r, 3, keys, 2, NULL, &rank, &key, &err) == TA_OK && rank < 0 && key < 0,
            "all agree");
    r[2].hash[1] = 7;
    int rc = dist_verdict(r, 3, keys, 2, " (line 3: x)", &rank, &key, &err);
    T_CHECK(rc == TA_EINPUT && rank == 2 && key == 1, "config differs: rc %d rank %d key %d", rc,
            rank, key);
    T_CHECK(strstr(err.msg, "rank 2 of 3 differs from rank 0 in its config (line 3: x): same config"),
            "%s", err.msg);
    r[1].hash[0] = 8; /* the binary is compared first */
    dist_verdict(r, 3, keys, 2, NULL, &rank, &key, &err);
    T_CHECK(rank == 1 && key == 0 && strstr(err.msg, "in its binary"), "%s", err.msg);
    /* a failure beats a difference; one rank alone: said so */
    r[1].status = TA_EINPUT;
    snprintf(r[1].msg, sizeof r[1].msg, "data.jsonl: no such file");
    rc = dist_verdict(r, 3, keys, 2, NULL, &rank, &key, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "rank 1 of 3: data.jsonl: no such file (2 of 3 ranks "
                                                "did not fail here"), "%s", err.msg);
    /* every rank failed the same way: the message a single process prints */
    for (int i = 0; i < 3; i++) r[i] = r[1];
    rc = dist_verdict(r, 3, keys, 2, NULL, &rank, &key, &err);
    T_CHECK(rc == TA_EINPUT && !strcmp(err.msg, "data.jsonl: no such file"), "%s", err.msg);
    r[0].status = TA_ERUNTIME;
    snprintf(r[0].msg, sizeof r[0].msg, "out of disk");
    rc = dist_verdict(r, 3, keys, 2, NULL, &rank, &key, &err);
    T_CHECK(rc == TA_ERUNTIME && strstr(err.msg, "rank 0 of 3: out of disk (the ranks failed "
                                                 "differently)"), "%s", err.msg);
}

static void test_text_difference(void) {
    char buf[256];
    dist_text_difference("{\n  \"lr\": 0.001,\n  \"seed\": 1\n}", "{\n  \"lr\": 0.002,\n}", 3, buf,
                         sizeof buf);
    T_CHECK(!strcmp(buf, " (line 2: rank 0 has `\"lr\": 0.001,`, rank 3 has `\"lr\": 0.002,`)"),
            "%s", buf);
    dist_text_difference("a\nb\n", "a\nb\nc\n", 1, buf, sizeof buf);
    T_CHECK(!strcmp(buf, " (line 3: rank 0 has ``, rank 1 has `c`)"), "%s", buf);
}

static void test_launcher_and_single(void) {
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_SIZE");
    unsetenv("MPI_LOCALNRANKS");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    T_CHECK(dist_launcher_size() == 0, "no launcher");
    Dist *d = NULL;
    TaError err = {0};
    T_CHECK(dist_init(&d, "test", &err) == TA_OK && d && dist_rank(d) == 0 && dist_size(d) == 1,
            "one process");
    float g[3] = {1, 2, 3};
    double x[2] = {4, 5};
    T_CHECK(dist_sum(d, g, 3, x, 2, &err) == TA_OK && g[2] == 3 && x[1] == 5, "sum of one");
    T_CHECK(dist_max(d, 15) == 15 && dist_count(d, 7) == 1, "max, count");
    T_CHECK(dist_agree(d, TA_EINPUT, NULL, 0, &err) == TA_EINPUT, "agree: own status");
    T_CHECK(dist_finish(d, 130, &err) == 130, "finish: own status");
    T_CHECK(dist_rank(NULL) == 0 && dist_size(NULL) == 1, "NULL is one process");
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    T_CHECK(dist_launcher_size() == 4, "mpirun -np 4");
    d = NULL;
    int rc = dist_init(&d, "test", &err);
    dist_finish(d, rc, &err);
    /* this binary has no MPI (libtinyalign.a links dist_single.c): it must refuse */
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "built without MPI") && strstr(err.msg, "MPI=1"),
            "rc %d: %s", rc, err.msg);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    setenv("PMIX_RANK", "0", 1);
    T_CHECK(dist_launcher_size() == -1, "a launcher that does not say how many");
    unsetenv("PMIX_RANK");
    uint64_t h = dist_binary_hash();
    T_CHECK(h != 0 && h == dist_binary_hash(), "binary hash");
}

int main(void) {
    t_run("dist_part_range_covers_balanced", test_part_range);
    t_run("dist_shard_batch_rows", test_shard_rows);
    t_run("dist_shard_batch_pairs_stay_together", test_shard_pairs);
    t_run("dist_parts_add_up_to_the_whole_step", test_parts_add_up);
    t_run("dist_verdict_messages", test_verdict);
    t_run("dist_text_difference", test_text_difference);
    t_run("dist_launcher_and_one_process_transport", test_launcher_and_single);
    return t_done();
}
