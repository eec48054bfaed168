/* dist.h — data parallelism across processes: `mpirun -np N tinyalign train CONFIG` computes
 * what one process computes with the same config, each of the N ranks running 1/N of every
 * micro-batch. Every rank holds the whole model, its AdamW state and its frozen auxiliary
 * models; only gradients, the objective's sums and a few flags travel between ranks.
 *
 * The rules (the README's "Several machines" section says the same to users):
 *  - Sharding (dist_part_range, dist_shard_batch): every rank fills the WHOLE micro-batch
 *    from the global data order, so the data cursor advances identically on every rank
 *    whatever the source of the rows is; then it keeps its part. With U units in the
 *    micro-batch (rows; for preference batches pairs, whose chosen and rejected rows stay
 *    together), rank r keeps units [floor(r U / N), floor((r+1) U / N)). Training needs
 *    train.batch_size % N == 0, so every rank does the same work; an evaluation batch may
 *    split unevenly (a rank may get none). Filling the rows a rank then drops costs a copy
 *    of token ids, nothing next to a forward pass.
 *  - Reduction (dist_sum): every element of the gradient and of the step's sums is added
 *    in rank order, ((x_0 + x_1) + x_2) + ..., whatever the network does: an ordered
 *    reduce-scatter (rank r receives every rank's copy of chunk r and adds them in rank
 *    order) and an all-gather of the summed chunks. MPI_Allreduce is not used for values:
 *    its order is the library's choice. Every rank ends with the same bits, so every rank
 *    computes the same gradient norm and applies the same AdamW update. N = 1 sums nothing.
 *  - Agreement (dist_agree): at start the ranks compare a status and named hashes (the
 *    binary, the resolved config, the data, the initial weights), so that a rank that
 *    failed, or runs another config, binary or file, stops the whole job with one message
 *    from rank 0 before the first step.
 *  - Output: rank 0 writes checkpoints, metrics.jsonl and the progress. On the other ranks
 *    dist_init sends stdout to /dev/null and filters stderr: only lines that begin with
 *    "tinyalign" (every error message of the engine: "tinyalign: ...", "tinyalign train:
 *    ...") are shown, prefixed "[rank r] "; their progress, warnings and notes (the same
 *    as rank 0's) are dropped.
 *  - Exit (dist_finish): the ranks agree on the outcome and rank 0 reports it. A rank that
 *    fails alone (the others wait in a step) waits TINYALIGN_DIST_TIMEOUT seconds (default
 *    30), prints its error and aborts the job (MPI_Abort); a rank that dies is reported by
 *    mpirun, which then stops the others.
 *
 * Two transports implement the functions marked [transport]: dist_mpi.c (make MPI=1, or
 * build/tinyalign-mpi) and dist_single.c (one process; it refuses a launch by mpirun with
 * N > 1 instead of running N copies of the same run). Every function accepts d == NULL as
 * one process. Not here: where a micro-batch's rows come from (train_order.c), the training step
 * (step.c calls the sharding; its StepAllReduce hook calls dist_sum).
 */
#ifndef TINYALIGN_DIST_H
#define TINYALIGN_DIST_H
#include <stddef.h>
#include <stdint.h>

#include "tinyalign/common.h"
#include "tinyalign/data.h"

typedef struct Dist Dist;

/* [transport] Joins the job when started by an MPI launcher (mpirun, srun), else runs as
 * one process without touching MPI. prog ("tinyalign train") prefixes the errors this
 * module prints. When run.threads is 0 and OMP_NUM_THREADS is unset, the ranks that share
 * a node split its cores (a rank bound to cores by the launcher keeps its binding). *out
 * is always set (free it with dist_finish). Returns TA_OK, or TA_EINPUT when a build
 * without MPI is started by mpirun with N > 1 (the message on the launcher's rank 0 only,
 * the others' err empty, so the job prints it once). */
int dist_init(Dist **out, const char *prog, TaError *err);

int dist_rank(const Dist *d); /* 0..N-1 */
int dist_size(const Dist *d); /* N */

/* [transport] Collective. Adds every rank's f (nf floats) and x (nx doubles) in place, in
 * rank order (see above); either array may be empty. TA_OK, or TA_ERUNTIME when MPI fails
 * (message says which rank; the job is then aborted by the caller's exit path). */
int dist_sum(Dist *d, float *f, size_t nf, double *x, size_t nx, TaError *err);

/* [transport] Collective. The largest v over the ranks (e.g. a pending signal number). */
int dist_max(Dist *d, int v);
/* [transport] Collective. How many ranks pass flag != 0. */
int dist_count(Dist *d, int flag);

/* A value every rank must hold identically, compared by hash. */
typedef struct {
    const char *what; /* names it in the message: "config", "training data" */
    uint64_t hash;
    const char *text; /* optional (NULL): the value as text, one item per line; the first
                       * line that differs is quoted in the message */
    const char *hint; /* what the user should do about a difference */
} DistKey;
#define DIST_MAX_KEYS 6

/* [transport] Collective. Every rank passes its status so far (TA_OK, or an error with err
 * filled) and its keys (the same whats in the same order on every rank, at most
 * DIST_MAX_KEYS - 1; the hash of the running binary is compared first). Every rank
 * returns the same verdict: TA_OK when all succeeded and agree; else the status of the
 * first failing rank (TA_EINPUT when the keys differ), with err naming the rank and what
 * differs (complete on rank 0, which reports it). */
int dist_agree(Dist *d, int status, const DistKey *keys, int n_keys, TaError *err);

/* [transport] Ends the process's part in the job and frees d: the ranks agree on the
 * outcome (see above). Returns the job's status (the first non-zero status in rank order).
 * One process: err keeps the message for the caller to print. N > 1: rank 0 prints the
 * job's message ("prog: message") itself before any rank returns (mpirun stops the job at
 * the first non-zero exit), and err is left empty on every rank. Never returns when this
 * rank's peers do not all arrive within the timeout (prints its own error, aborts the
 * job). */
int dist_finish(Dist *d, int status, TaError *err);

/* [transport] One line about the MPI library, or that the build has none. */
void dist_info(char *buf, size_t cap);
/* [transport] Time spent in dist_sum and bytes it summed so far (rank-local). */
void dist_stats(const Dist *d, double *seconds, double *bytes, long *calls);

/* ---- the sharding rule (no communication) ------------------------------------------- */

/* Units [*lo, *hi) of `units` that part `part` of `parts` takes: floor(part*units/parts) to
 * floor((part+1)*units/parts). Contiguous, disjoint, covering, sizes differ by <= 1. */
void dist_part_range(int units, int part, int parts, int *lo, int *hi);

/* The most rows one part of a micro-batch of `rows` rows holds (pairwise: rows = 2 P,
 * pairs are the units). Sizes the activations of a rank. */
int dist_part_rows(int rows, int pairwise, int parts);

/* Keeps part `part` of `parts` of b in place (b->n_pairs > 0: pairs as units, the result
 * in the pair layout with its own P; else rows). T, the padded length, is unchanged, so a
 * row is computed with the same shapes as in the whole batch. parts <= 1: no change. */
void dist_shard_batch(Batch *b, int part, int parts);

/* ---- helpers of the transports (no communication) ------------------------------------ */

/* How many processes the launcher started (OMPI_COMM_WORLD_SIZE, PMI_SIZE, ...): 0 when
 * not started by an MPI launcher, -1 when started by one that does not say. */
int dist_launcher_size(void);
/* The rank the launcher gave this process (0 when it says none). */
int dist_launcher_rank(void);

/* FNV-1a of the running executable (/proc/self/exe); 0 when unreadable. */
uint64_t dist_binary_hash(void);

/* What one rank reports at an agreement. */
typedef struct {
    int32_t status;
    int32_t n_keys;
    uint64_t hash[DIST_MAX_KEYS];
    char msg[sizeof(((TaError *)0)->msg)]; /* the status message (TaError.msg) */
} DistRecord;

/* The verdict over n ranks' records (keys[0..n_keys) name record hashes [0..n_keys), the
 * same on every rank): TA_OK, or the agreed status with err filled. *rank_out, *key_out:
 * for a key difference, the first rank whose key differs from rank 0's, and which key
 * (else -1); detail (NULL: none) is put after the key's name in that message, e.g. the
 * dist_text_difference of the two ranks' texts. */
int dist_verdict(const DistRecord *recs, int n, const DistKey *keys, int n_keys,
                 const char *detail, int *rank_out, int *key_out, TaError *err);

/* The first line where a and b differ, as " (line L: rank 0 has `...`, rank R has `...`)"
 * into buf. */
void dist_text_difference(const char *a, const char *b, int rank_b, char *buf, size_t cap);

#endif
