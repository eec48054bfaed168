/* checkpoint.h — training checkpoints: save atomically, find, verify, load.
 *
 * Layout: <out_dir>/checkpoints/step-%08d/ holding
 *   model.safetensors   weights under Hugging Face GPT-2 names (model_io.h)
 *   optim.safetensors   AdamW m, v and step
 *   config.json         HF-style model dimensions, so the directory is a model directory
 *   state.sum           the checksum of state.json, value by value (see "State integrity")
 *   state.json          format/version, engine version, TrainState (step, data cursor — one
 *                       per file of a training mixture: "epoch"/"pos" of the first file and,
 *                       for several, "sources": [{"epoch", "pos"}, ...] of every file —, RNG,
 *                       early-stopping state, the CRC32 of each fixed auxiliary model by
 *                       role: "aux_crc32": {"reference": "...", "guide": "..."}; files of
 *                       older engines with "ref_crc32" still load), the full resolved run
 *                       config, and the size and CRC32 of every other file
 *   tokenizer.model     a copy of the run's tokenizer, when it has one
 *   ref.safetensors     the reference model, when it drifts (TR-DPO sync), so a resumed run
 *                       continues bit-exactly
 * and <out_dir>/checkpoints/latest, a text file naming the newest complete checkpoint,
 * written last; <out_dir>/checkpoints/best names the best one when early stopping keeps it.
 * Every file is fsynced by its writer, which also returns its size and CRC32 for
 * state.json, so nothing is read back after writing.
 *
 * Atomicity: everything is written into step-%08d.tmp/, each file fsynced, the directory
 * renamed to its final name, the parent fsynced, and only then `latest` replaced (write
 * to latest.tmp, fsync, rename). A crash (even kill -9) at any point leaves `latest`
 * naming an intact checkpoint; leftover *.tmp directories are removed on the next save.
 * Re-saving an existing step moves the old directory to step-N.old first; if a crash
 * lands between the two renames, checkpoint_resolve and the next save put step-N.old
 * back.
 * A resume verifies the checkpoint once (checkpoint_load_state); reading only the run
 * config (checkpoint_read_config) does not verify.
 *
 * State integrity. Every file but state.json has its size and CRC32 in state.json; state.json
 * has its own in state.sum, written beside it in the same step-N.tmp directory (so it
 * appears with the directory's rename, atomically), with one CRC32 per value so that a
 * mismatch names the value that changed ("the value of train_state.pos changed",
 * "config.optim.lr"), and a last line covering state.sum itself. A step directory alone is
 * therefore verifiable (`latest` may name a newer one, and stays a bare name so that
 * scripts reading it keep working). What this catches: any accidental damage (flipped or
 * lost bytes, truncation, a file missing) and any casual edit of state.json, which cannot
 * also fix state.sum. What it does not: someone who deliberately recomputes the CRC32s
 * (or deletes state.sum and turns state.json back into format 1); CRC32 is no
 * signature and there is no secret key. Against that, and against the checkpoints of
 * earlier builds (format 1, no state.sum: loaded with *verified = 0), every value is
 * still checked on load (state_from_json: types and ranges) and against the resumed run
 * (checkpoint_check_state), so no state can make the trainer read out of bounds, abort on
 * an assertion or overflow; a forged state can only describe another well-defined run.
 *
 * Fault-injection hooks for tests: when the environment variable TINYALIGN_CKPT_DELAY_MS
 * is set, checkpoint_save sleeps that long after writing each file, so a test can
 * kill -9 the process in the middle of a write; TINYALIGN_FAULT (common.h) makes a chosen
 * file's write fail (disk full, read-only).
 */
#ifndef TINYALIGN_CHECKPOINT_H
#define TINYALIGN_CHECKPOINT_H
#include <stdint.h>

#include "tinyalign/common.h"
#include "tinyalign/data.h"
#include "tinyalign/model.h"
#include "tinyalign/optim.h"

/* 2: state.sum beside state.json; 1 (earlier builds, still read): no state.sum */
#define CHECKPOINT_FORMAT_VERSION 2

/* The CRC32 of one fixed auxiliary model's weights ("reference", "guide", ...). */
#define CHECKPOINT_MAX_AUX 4
typedef struct {
    char role[16];
    uint32_t crc;
} AuxCrc;

/* Everything besides weights and optimizer moments that a bit-exact resume needs. */
typedef struct {
    long step;               /* optimizer updates done */
    DataCursor cursor;       /* next training example / window (of the first file) */
    DataCursor more_cursors[DATA_MAX_SOURCES - 1]; /* files 1.. of a training mixture */
    int n_more_cursors;      /* files in the mixture - 1 (0: one file) */
    TaRng rng;               /* trainer RNG (sampling during training) */
    double best_val;         /* best validation loss so far (INFINITY when none) */
    long best_step;          /* step of best_val (-1 when none) */
    int evals_since_best;    /* early-stopping patience counter */
    int bad_steps;           /* consecutive skipped (non-finite) steps */
    uint64_t tokens_seen;    /* training tokens consumed */
    long ref_syncs;          /* TR-DPO reference syncs done */
    AuxCrc aux_crc[CHECKPOINT_MAX_AUX]; /* fixed auxiliary models' weights, checked on resume */
    int n_aux_crc;
    uint64_t train_examples; /* training examples (or windows) of the run's data; 0: not
                              * recorded (format 1) */
} TrainState;

/* What a resumed run allows its state to hold (checkpoint_check_state). */
typedef struct {
    long max_steps;                /* train.max_steps */
    uint64_t examples;             /* training examples (windows) the data has now; 0: skip
                                      the cursor checks (a mixture's cursors are the
                                      trainer's to check: one per file) */
    uint64_t per_step;             /* examples one step draws: batch_size * grad_accum */
    uint64_t max_tokens_per_step;  /* rows * T * grad_accum: tokens_seen grows at most this */
    int same_order;                /* same data size, batch_size and grad_accum as the run that
                                      wrote the state: the cursor must be exactly where `step`
                                      steps put it */
} StateLimits;

/* What to put in a checkpoint. ref and tokenizer_path may be NULL. */
typedef struct {
    const GPT2 *model;
    const AdamW *optim;
    const TrainState *state;
    const char *config_json;    /* the resolved run config (JSON text) */
    const char *tokenizer_path; /* copied as tokenizer.model */
    const GPT2 *ref;            /* saved as ref.safetensors */
} CheckpointContents;

/* Writes <out_dir>/checkpoints/step-%08d/ atomically and points `latest` at it; each
 * file's size and CRC32 are computed while it is written. is_best: also points `best` at
 * it (before pruning). keep_last_n > 0: afterwards keeps the newest keep_last_n step-*
 * directories, plus the one named by `best` when it is older (it never takes one of the
 * keep_last_n places; a best that is among the newest is not kept twice).
 * path_out (may be NULL) receives the directory. Returns TA_OK or TA_ERUNTIME (err names
 * the path; the previous checkpoint is intact). */
int checkpoint_save(const char *out_dir, const CheckpointContents *c, int keep_last_n,
                    int is_best, char *path_out, size_t cap, TaError *err);

/* What checkpoint_resolve accepts: for messages, and in lines for --help texts. */
#define CHECKPOINT_MODEL_FORMS                                                               \
    "a run directory or its checkpoints/ (the latest checkpoint), the file "                \
    "RUN/checkpoints/latest or RUN/checkpoints/best, a checkpoint directory "               \
    "(RUN/checkpoints/step-N) or a model directory (config.json + model.safetensors)"
#define CHECKPOINT_MODEL_HELP                                                                \
    "a run directory (its latest checkpoint), RUN/checkpoints/latest\n"                     \
    "or best, a checkpoint directory, or a model directory\n"                               \
    "(config.json + model.safetensors, e.g. a `convert` output)"

/* The one resolver of "a path the user gave -> a model or checkpoint directory", used by
 * every command and config key that takes a model. Accepts, in this order:
 *   a file holding one line "step-N" (RUN/checkpoints/latest or best) -> the directory
 *     it names, beside it;
 *   a directory with model.safetensors or state.json (a checkpoint, or a plain model
 *     directory such as a `convert --from hf` output) -> itself;
 *   a run directory (RUN/checkpoints/latest) or its checkpoints/ directory (latest) ->
 *     the checkpoint `latest` names (a step-N.old left by a crash is put back first);
 *   a directory with config.json but no checkpoints/ -> itself (loading then says which
 *     file is missing).
 * Writes the directory into out. TA_EINPUT otherwise, with one message naming path and
 * listing CHECKPOINT_MODEL_FORMS, or "RUN/checkpoints/latest names step-N, which does not
 * exist". */
int checkpoint_resolve(const char *path, char *out, size_t cap, TaError *err);

/* Reads dir/state.json (format and engine version checked) and returns the run config it
 * holds in *config_json (malloc'd JSON text; caller frees). Does not read or verify the
 * other files: checkpoint_load_state does, once, when the run resumes. TA_EINPUT naming
 * the file when it is missing, malformed, of another version or holds no config. */
int checkpoint_read_config(const char *dir, char **config_json, TaError *err);

/* Reads and verifies dir/state.json: its checksum (state.sum), format version, engine
 * version, every listed file's size and CRC32 (names must be plain file names beside it),
 * and every value of train_state (types and ranges; a step directory's name must be its
 * step). Fills state, *config_json (if not NULL; malloc'd; caller frees) and *verified (if
 * not NULL: 1 when state.sum verified state.json, 0 for a format-1 checkpoint of an
 * earlier build, which has none). TA_EINPUT with one message naming the file and what is
 * wrong (flipped byte -> checksum mismatch; an edited value -> "edited or damaged: the
 * value of train_state.pos changed"; out of range -> "train_state.pos is -1, expected
 * ..."; missing file; other engine version; a model directory without state.json). */
int checkpoint_load_state(const char *dir, TrainState *state, char **config_json,
                          int *verified, TaError *err);

/* Checks a loaded state against the run that resumes it: step <= max_steps; pos within
 * the data; epoch reachable in `step` steps; with same_order the cursor exactly where
 * `step` steps put it; tokens_seen at most step * max_tokens_per_step. file names
 * state.json in messages. TA_OK or TA_EINPUT ("FILE: train_state.pos is 41, but after 10
 * steps of 8 examples the data cursor is at epoch 0, example 80"). */
int checkpoint_check_state(const TrainState *s, const StateLimits *lim, const char *file,
                           TaError *err);

/* Loads weights (and, when optim is not NULL, AdamW state; when ref is not NULL,
 * ref.safetensors if present, else the model weights) from a verified checkpoint into
 * already initialised structs of the right shape. */
int checkpoint_load_weights(const char *dir, GPT2 *model, AdamW *optim, GPT2 *ref,
                            TaError *err);

#endif
