/* train_impl.h — what the files of the training run share. Private to src/train/.
 *
 * The run (train_run, train_eval in train.c) is a Trainer: the resolved config, the data,
 * the model, AdamW, the auxiliary models, the step and the checkpoint state. Its parts live
 * in one file each:
 *   train_setup.c  building a Trainer: data, model, tokenizer, auxiliary models, AdamW, the
 *                  step, resume from a checkpoint (and its checks), train.eval_generate;
 *                  freeing it
 *   train_order.c  the data order (one file or a mixture), the training and eval batches
 *   train_loop.c   the step schedule: logging, eval, early stopping, keep-best, samples,
 *                  eval_generate, checkpoints, --stop-after, signals; the run summary
 *   train_dist.c   data parallel (dist.h): the ranks' agreements and shared verdicts
 * Not here: the step itself (step.c, train.h), the public API (include/tinyalign/train.h).
 */
#ifndef TINYALIGN_TRAIN_IMPL_H
#define TINYALIGN_TRAIN_IMPL_H

#include <stdio.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/data.h"
#include "tinyalign/dist.h"
#include "tinyalign/log.h"
#include "tinyalign/model.h"
#include "tinyalign/objective.h"
#include "tinyalign/optim.h"
#include "tinyalign/reference.h"
#include "tinyalign/score.h"
#include "tinyalign/tokenizer.h"
#include "tinyalign/train.h"

/* Where examples come from: token-shard windows or a JSONL dataset. */
typedef struct {
    TokenData *td; /* windows of split td_split */
    int td_split;
    Dataset *ds;
    size_t n;             /* examples */
    int rows_per_example; /* 1, or 2 for preference pairs */
} Source;

/* One file of the training mixture: its training examples are dataset ids
 * [first, first + n), drawn in its own permutations. */
typedef struct {
    size_t first, n;
    double ratio;        /* the mixing weight */
    uint64_t seed;       /* its shuffling seed */
    uint32_t *perm;      /* (n) the order of epoch perm_epoch */
    int64_t perm_epoch;  /* -1: none yet */
} MixSource;

typedef struct {
    Config cfg;
    TrainOptions opt;
    char *config_json;
    Tokenizer *tok;
    char tokenizer_path[4096];
    TokenData *td_train, *td_val;
    Dataset *ds_train, *ds_val;
    Source train, val;
    int have_val;
    GPT2 model;
    AdamW optim;
    AuxModels aux;  /* frozen auxiliary models: DPO reference, attribute guide */
    RefExampleSet sets[2]; /* the datasets a cached reference caches (train, val) */
    TrainStep step;
    int K;          /* grad accumulation */
    int rows;       /* rows per micro-batch */
    int T;          /* max sequence length of a batch */
    uint32_t *ids;  /* (batch_size) example ids of one micro-batch */
    MixSource mix[DATA_MAX_SOURCES]; /* the training files (1 for a plain data.train) */
    int n_mix;
    uint32_t *val_ids; /* (val.n) dataset ids of the held-out examples (data.val_fraction) */
    size_t n_zero_weight; /* sft examples of weight 0 */
    ScoreEval *egen; /* train.eval_generate, or NULL */
    TrainState st;
    char last_ckpt[4096]; /* the newest checkpoint this run wrote or resumed from ("" none) */
    Logger log;
    FILE *info; /* where setup reports (stdout for train, stderr for eval) */
    /* this session, for the run summary */
    double t_session;        /* ta_now() when the loop started */
    double wall_before;      /* st.wall_seconds when the loop started */
    long start_step;         /* st.step when the loop started */
    uint64_t start_tokens;   /* st.tokens_seen when the loop started */
    const char *stop_reason; /* why the loop ended (RunSummary.exit_reason) */
    int stop_signal;         /* SIGINT / SIGTERM when a signal ended it */
} Trainer;

/* ---- train_setup.c ------------------------------------------------------------------- */

/* Builds the run from t->cfg and t->opt (t->info says where it reports): data, model,
 * tokenizer, AdamW, the step, the auxiliary models, and on t->opt.resume the checkpoint
 * state with its checks. TA_EINPUT with a message on bad input; trainer_free cleans up
 * whatever was built. */
int trainer_setup(Trainer *t, TaError *err);
/* train.eval_generate (the score module's ScoreEval in t->egen), or nothing when unset. */
int trainer_open_eval_generate(Trainer *t, TaError *err);
/* Frees everything a (possibly partial) setup built; safe on a zeroed Trainer. */
void trainer_free(Trainer *t);

/* ---- train_order.c ------------------------------------------------------------------- */

/* A resumed mixture's cursors against the order after `used` draws; TA_EINPUT naming the
 * first that differs (file: the state file, for the message). */
int trainer_check_mix_cursors(Trainer *t, uint64_t used, const char *file, TaError *err);
/* Training progress in epochs. */
double trainer_epochs_done(Trainer *t);
/* StepSource.fill of training (ctx: the Trainer): the next examples of the data order. */
int trainer_fill_train(void *ctx, int k, Batch *b, TaError *err);
/* How many validation examples an evaluation reads (train.eval_batches batches at most). */
size_t trainer_eval_examples(const Trainer *t);
/* One evaluation over the first trainer_eval_examples validation examples. */
int trainer_evaluate(Trainer *t, ObjectiveMetrics *out, TaError *err);

/* ---- train_loop.c -------------------------------------------------------------------- */

/* The schedule until max_steps, a stop or an error: the process exit status (0, 2 for
 * TA_EINPUT, 1 other errors, 128 + signal). */
int trainer_loop(Trainer *t, TaError *err);
/* Prints and writes <out_dir>/summary.json (rank 0 only). */
void trainer_summary(Trainer *t, int status);

/* ---- train_dist.c -------------------------------------------------------------------- */

/* The step's StepAllReduce under data parallelism (ctx: the Dist). */
int trainer_step_allreduce(void *ctx, StepSyncPoint p, float *grads, size_t n_grads,
                           double *sums, size_t n_sums, TaError *err);
/* Collective after setup (rc: this rank's setup status): the same status on every rank. */
int trainer_dist_setup(Trainer *t, int rc, TaError *err);
/* Collective in the schedule: a failure only rank 0 can have stops every rank. */
int trainer_dist_status(Trainer *t, int rc, TaError *err);
/* Collective after rank 0 created run.out_dir (rc: how that went on rank 0). */
int trainer_dist_run_dir(Trainer *t, int rc, TaError *err);

#endif
