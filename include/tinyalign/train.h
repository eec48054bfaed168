/* train.h — the training loop: one resolved Config drives a run (pretraining on token
 * shards, SFT / preference objectives on JSONL), with gradient accumulation, LR schedule,
 * clipping, logging, evaluation, early stopping, checkpoints, signals and bit-exact
 * resume. The CLI (cmd_train.c) parses arguments and calls train_run.
 *
 * Step anatomy (the order every guarantee relies on):
 *   fill K micro-batches -> objective normalisers over all K ->
 *   for each: forward -> [reference log-probs] -> loss head (dlogp) -> dlogits -> backward
 *   -> [gradient all-reduce would go here] -> global norm -> non-finite? skip : clip + AdamW
 *   -> step++ -> log / eval / save / stop checks.
 * Signals (SIGINT, SIGTERM) are only acted on between steps: the step finishes, a
 * checkpoint is saved, and the run exits 130 / 143. A second SIGINT exits at once.
 */
#ifndef TINYALIGN_TRAIN_H
#define TINYALIGN_TRAIN_H
#include "tinyalign/common.h"
#include "tinyalign/config.h"

typedef struct {
    int resume;      /* continue from <out_dir>/checkpoints/latest */
    long stop_after; /* save and exit 0 once this many steps are done (-1: off) */
    int force;       /* resume even when math-relevant config keys changed */
    int quiet;       /* no resolved-config dump at start */
    const char *resume_from; /* resume: a run or checkpoint directory (NULL: run.out_dir) */
} TrainOptions;

/* Runs (or resumes) the training described by cfg. Returns the process exit status:
 * 0 done (or stopped by --stop-after / early stopping, after saving), 1 runtime failure
 * (e.g. too many non-finite steps), 2 bad input (message in err), 130/143 after a clean
 * save on SIGINT/SIGTERM. */
int train_run(const Config *cfg, const TrainOptions *opt, TaError *err);

/* Evaluates the objective of cfg on its validation data (or, without any, its training
 * data), at most max_batches batches of train.batch_size (<= 0: train.eval_batches).
 * The model is built as cfg says (so the reference, when the objective has one, is the
 * config's initial policy or reference.path); checkpoint (NULL: none) then replaces the
 * policy weights. *json_out: one JSON object of metrics with TRL's names (caller frees).
 * Writes nothing to disk except a reference cache. Returns TA_OK / TA_EINPUT / TA_ERUNTIME. */
int train_eval(const Config *cfg, const char *checkpoint, int max_batches, char **json_out,
               TaError *err);

/* Installs the SIGINT/SIGTERM handlers (first: request a stop; second SIGINT: exit 130
 * immediately) and reports what was requested: 0 nothing, else the signal number. */
void train_signals_install(void);
int train_signal_pending(void);

#endif
