/* checkpoint.h — training checkpoints: save atomically, find, verify, load.
 *
 * Layout: <out_dir>/checkpoints/step-%08d/ holding
 *   model.safetensors   weights under Hugging Face GPT-2 names (model_io.h)
 *   optim.safetensors   AdamW m, v and step
 *   config.json         HF-style model dimensions, so the directory is a model directory
 *   state.json          format/version, engine version, TrainState (step, data cursor, RNG,
 *                       early-stopping state, the CRC32 of each fixed auxiliary model by
 *                       role: "aux_crc32": {"reference": "...", "guide": "..."}; files of
 *                       older engines with "ref_crc32" still load), the full resolved run
 *                       config, and the size and CRC32 of every other file
 *   tokenizer.model     a copy of the run's tokenizer, when it has one
 *   ref.safetensors     the reference model, when it drifts (TR-DPO sync), so a resumed run
 *                       continues bit-exactly
 * and <out_dir>/checkpoints/latest, a text file naming the newest complete checkpoint,
 * written last; <out_dir>/checkpoints/best names the best one when early stopping keeps it.
 *
 * Atomicity: everything is written into step-%08d.tmp/, each file fsynced, the directory
 * renamed to its final name, the parent fsynced, and only then `latest` replaced (write
 * to latest.tmp, fsync, rename). A crash (even kill -9) at any point leaves `latest`
 * naming an intact checkpoint; leftover *.tmp directories are removed on the next save.
 * Re-saving an existing step moves the old directory to step-N.old first; if a crash
 * lands between the two renames, checkpoint_resolve and the next save put step-N.old
 * back.
 *
 * Fault-injection hook for tests: when the environment variable TINYALIGN_CKPT_DELAY_MS
 * is set, checkpoint_save sleeps that long after writing each file, so a test can
 * kill -9 the process in the middle of a write.
 */
#ifndef TINYALIGN_CHECKPOINT_H
#define TINYALIGN_CHECKPOINT_H
#include <stdint.h>

#include "tinyalign/common.h"
#include "tinyalign/data.h"
#include "tinyalign/model.h"
#include "tinyalign/optim.h"

#define CHECKPOINT_FORMAT_VERSION 1

/* The CRC32 of one fixed auxiliary model's weights ("reference", "guide", ...). */
#define CHECKPOINT_MAX_AUX 4
typedef struct {
    char role[16];
    uint32_t crc;
} AuxCrc;

/* Everything besides weights and optimizer moments that a bit-exact resume needs. */
typedef struct {
    long step;               /* optimizer updates done */
    DataCursor cursor;       /* next training example / window */
    TaRng rng;               /* trainer RNG (sampling during training) */
    double best_val;         /* best validation loss so far (INFINITY when none) */
    long best_step;          /* step of best_val (-1 when none) */
    int evals_since_best;    /* early-stopping patience counter */
    int bad_steps;           /* consecutive skipped (non-finite) steps */
    uint64_t tokens_seen;    /* training tokens consumed */
    long ref_syncs;          /* TR-DPO reference syncs done */
    AuxCrc aux_crc[CHECKPOINT_MAX_AUX]; /* fixed auxiliary models' weights, checked on resume */
    int n_aux_crc;
} TrainState;

/* What to put in a checkpoint. ref and tokenizer_path may be NULL. */
typedef struct {
    const GPT2 *model;
    const AdamW *optim;
    const TrainState *state;
    const char *config_json;    /* the resolved run config (JSON text) */
    const char *tokenizer_path; /* copied as tokenizer.model */
    const GPT2 *ref;            /* saved as ref.safetensors */
} CheckpointContents;

/* Writes <out_dir>/checkpoints/step-%08d/ atomically and points `latest` at it.
 * keep_last_n > 0: afterwards keeps the newest keep_last_n step-* directories, plus the
 * one named by `best` (which does not count against keep_last_n). path_out (may be NULL) receives the directory.
 * Returns TA_OK or TA_ERUNTIME (err names the path; the previous checkpoint is intact). */
int checkpoint_save(const char *out_dir, const CheckpointContents *c, int keep_last_n,
                    char *path_out, size_t cap, TaError *err);

/* Marks dir (a step-* directory under out_dir/checkpoints) as the best: writes `best`. */
int checkpoint_mark_best(const char *out_dir, const char *dir, TaError *err);

/* Resolves what a user passed to a checkpoint: a run directory (uses checkpoints/latest),
 * a checkpoints/ directory (uses latest), or a step directory. Writes the step directory
 * into out. TA_EINPUT when there is none ("no checkpoint in runs/x: ..."). */
int checkpoint_resolve(const char *path, char *out, size_t cap, TaError *err);

/* Reads and verifies dir/state.json: format version, engine version, every listed file's
 * size and CRC32. Fills state and (if not NULL) *config_json (malloc'd; caller frees).
 * TA_EINPUT with a message naming the file and what is wrong (flipped byte -> checksum
 * mismatch; missing file; other engine version). */
int checkpoint_load_state(const char *dir, TrainState *state, char **config_json,
                          TaError *err);

/* Loads weights (and, when optim is not NULL, AdamW state; when ref is not NULL,
 * ref.safetensors if present, else the model weights) from a verified checkpoint into
 * already initialised structs of the right shape. */
int checkpoint_load_weights(const char *dir, GPT2 *model, AdamW *optim, GPT2 *ref,
                            TaError *err);

#endif
