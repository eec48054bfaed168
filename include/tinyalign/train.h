/* train.h — training: one training step (src/train/step.c), which `train`, `bench` and
 * the model tests all call, and the run around it (src/train/train*.c): one resolved Config
 * drives a run (pretraining on token shards, SFT / preference objectives on JSONL) with
 * the LR schedule, logging, evaluation, early stopping, checkpoints, signals and
 * bit-exact resume. The CLI (cmd_train.c) parses arguments and calls train_run.
 *
 * Step anatomy (train_step; the order every guarantee relies on):
 *   1. fill the K micro-batches (StepSource.fill: datasets, synthetic tokens, fixed test
 *      batches); data parallel: keep this rank's part of each (dist.h)
 *   2. objective normalisers over all K (objective_norm_add)      -> all-reduce hook NORM
 *   3. zero the gradients; for each micro-batch:
 *        auxiliary (frozen) models' forwards: the DPO reference's sequence log-probs, the
 *        guide's and the base model's logits (reference module)
 *        -> policy forward (logits, lse, per-token log-probs)
 *        -> loss head over log-probs (objective_forward_backward: dL/dlogp)
 *        -> logit head (objective_logits_forward_backward: dlogits in place, + KL terms)
 *        -> policy backward (gradients accumulate)
 *      or, for a reward model (objective_uses_score_head; batches in ROWS_SCORE):
 *        forward to the final LayerNorm -> score head at each row's last token (rewards)
 *        -> objective_scores_forward_backward (dL/dreward) -> gpt2_score_backward
 *      a non-finite loss stops the micro-batch loop and marks the step
 *   4. all-reduce hook GRADS (gradient slab + the step's sums)
 *   5. global gradient norm; non-finite loss or norm: no update (the step is reported
 *      `nonfinite`); else clip and AdamW with lr_at_step(step)
 *   6. TR-DPO reference sync when due.
 * Everything a step allocates is allocated at train_step_init.
 * Signals (SIGINT, SIGTERM) are only acted on between steps: the step finishes, a
 * checkpoint is saved, and the run exits 130 / 143. A second SIGINT exits at once.
 */
#ifndef TINYALIGN_TRAIN_H
#define TINYALIGN_TRAIN_H
#include "tinyalign/common.h"
#include "tinyalign/config.h"
#include "tinyalign/data.h"
#include "tinyalign/dist.h"
#include "tinyalign/model.h"
#include "tinyalign/objective.h"
#include "tinyalign/optim.h"
#include "tinyalign/reference.h"

/* ---- one training step (src/train/step.c) ---------------------------------------------- */

/* Where the rows of a step (or of an evaluation) come from. */
typedef struct {
    /* Fills b (allocated for the step's rows x T) with micro-batch k of the step (0..K-1),
     * or with evaluation batch k. Returns TA_OK or an error (err filled). */
    int (*fill)(void *ctx, int k, Batch *b, TaError *err);
    void *ctx;
    const void *set; /* the RefExampleSet id the rows come from (cached reference); or NULL */
} StepSource;

/* Data-parallel hook points. */
typedef enum {
    STEP_SYNC_NORM = 0, /* after every micro-batch is counted: sums = the ObjectiveNorm */
    STEP_SYNC_GRADS,    /* after the last backward: grads = the gradient slab (NULL in an
                         * evaluation), sums = ObjectiveStats + tokens + nonfinite flag */
} StepSyncPoint;

/* Sums every rank's `grads` (n_grads floats, may be NULL) and `sums` (n_sums doubles) in
 * place (MPI_Allreduce, MPI_SUM). NULL hook = one process. Returns TA_OK or an error. */
typedef int (*StepAllReduce)(void *ctx, StepSyncPoint point, float *grads, size_t n_grads,
                             double *sums, size_t n_sums, TaError *err);

typedef struct {
    GPT2 *model;                 /* the policy, with gradients */
    AdamW *optim;                /* NULL: forward + backward + norm only (no clip, no update) */
    const CfgObjective *objective;
    AuxModels *aux;              /* the frozen auxiliary models (NULL or empty: none) */
    int K;                       /* micro-batches per step (gradient accumulation) */
    int rows, T;                 /* the largest micro-batch (all ranks' rows) */
    StepAllReduce allreduce;     /* NULL: single process */
    void *allreduce_ctx;
    int part, parts;             /* data parallel: this process runs part `part` of `parts`
                                  * of every micro-batch (dist_shard_batch, dist.h) after
                                  * filling all of it; parts <= 1: all of it */
} StepSetup;

typedef struct {
    StepSetup s;
    Batch *micro;      /* (K) micro-batches of a step, (rows, T) each */
    float *ref_logp;   /* (rows) the reference's sequence log-probs of one micro-batch */
    float *scores;     /* (rows) a reward model's rewards of one micro-batch */
    float *dscores;    /* (rows) dL/dreward */
} TrainStep;

typedef struct {
    double loss;        /* the step's objective value; NAN when nonfinite */
    double grad_norm;   /* global L2 norm before clipping; NAN when nonfinite */
    double lr;          /* learning rate of this update (0 without an optimizer) */
    uint64_t tokens;    /* B*T positions of the micro-batches run (padding included) */
    int nonfinite;      /* 1: non-finite loss or gradient, the update was skipped */
    char why[256];      /* nonfinite: the loss head's message ("" for a non-finite norm) */
    int ref_synced;     /* 1: TR-DPO synced the reference after this update */
    ObjectiveMetrics metrics;
    double seconds_norm;   /* time in the gradient norm + clip */
    double seconds_update; /* time in AdamW */
} StepResult;

/* Allocates the micro-batches and scratch, and the policy's activations for (rows, T).
 * Build the auxiliary models after this (they borrow the policy's activations). For a
 * reward objective the model must have its score head and hidden_only set, and T counts
 * the last token of each row (ROWS_SCORE micro-batches). */
void train_step_init(TrainStep *t, const StepSetup *s);
void train_step_free(TrainStep *t); /* safe on a zeroed struct */

/* One optimizer step: update number `step` (0-based, for the LR schedule). Returns TA_OK
 * (also for a skipped non-finite step: res->nonfinite), or an error from the data, the
 * auxiliary models or the hook (TA_EINPUT: bad data). */
int train_step(TrainStep *t, const StepSource *src, long step, StepResult *res, TaError *err);

/* Forward-only evaluation through the same path: n batches (StepSource.fill with
 * k = 0..n-1, each called twice: normalisers first, then the losses) into *out. */
int train_step_eval(TrainStep *t, const StepSource *src, int n, ObjectiveMetrics *out,
                    TaError *err);

/* AdamW for a GPT-2: weight decay on the 2-D matmul weights only (not biases, LayerNorms,
 * embeddings), as PyTorch param groups usually do. */
void train_optim_init(AdamW *o, const AdamWConfig *cfg, const GPT2 *m);

/* ---- the run (src/train/train.c) ------------------------------------------------------- */

typedef struct {
    int resume;      /* continue from <out_dir>/checkpoints/latest */
    long stop_after; /* save and exit 0 once this many steps are done (-1: off) */
    int force;       /* resume even when math-relevant config keys changed */
    int quiet;       /* no resolved-config dump at start */
    const char *resume_from; /* resume: a run or checkpoint directory (NULL: run.out_dir) */
    Dist *dist;      /* data parallel: this process's place in an MPI job (NULL: alone).
                      * Every rank runs train_run / train_eval with the same config; rank 0
                      * writes the run directory (dist.h) */
} TrainOptions;

/* Runs (or resumes) the training described by cfg. Returns the process exit status:
 * 0 done (or stopped by --stop-after / early stopping, after saving), 1 runtime failure
 * (e.g. too many non-finite steps), 2 bad input (message in err), 130/143 after a clean
 * save on SIGINT/SIGTERM. */
int train_run(const Config *cfg, const TrainOptions *opt, TaError *err);

/* Evaluates the objective of cfg on its validation data (or, without any, its training
 * data): all of it, or the first max_batches batches of train.batch_size (max_batches > 0;
 * train.eval_batches is only the training loop's periodic evaluation).
 * The model is built as cfg says (so the reference, when the objective has one, is the
 * config's initial policy or reference.path); checkpoint (NULL: none) then replaces the
 * policy weights. *json_out: one JSON object of metrics with TRL's names (caller frees).
 * Writes nothing to disk except a reference cache. Returns TA_OK / TA_EINPUT / TA_ERUNTIME. */
int train_eval(const Config *cfg, const char *checkpoint, int max_batches, Dist *dist,
               char **json_out, TaError *err);

/* Data parallel, collective: every rank calls it right after loading its config (rc: how
 * that went; cfg is read only when rc is TA_OK). The ranks agree that all of them run the
 * same binary with the same resolved config and the same options (the command's options
 * that change what runs, as text, one per line: "stop_after 20\n..."); a difference is
 * reported with the first line that differs. Returns the same status on every rank, err
 * as dist_agree fills it. d NULL or one rank: returns rc. */
int train_agree_config(Dist *d, int rc, const Config *cfg, const char *options, TaError *err);

/* Installs the SIGINT/SIGTERM handlers (first: request a stop; second SIGINT: exit 130
 * immediately) and reports what was requested: 0 nothing, else the signal number. */
void train_signals_install(void);
int train_signal_pending(void);

#endif
