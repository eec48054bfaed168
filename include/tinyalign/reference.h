/* reference.h — the frozen reference policy that DPO-style objectives compare against,
 * as per-row sequence log-probs S_ref = sum over completion tokens (loss_mask) of
 * log p_ref(target) (objective_sequence_logps).
 *
 * Modes (objective.reference.mode):
 *   snapshot  a forward-only copy of the initial policy (or of reference.path): no gradient,
 *             no activation-gradient and no AdamW memory; its activations BORROW the
 *             policy's buffers (the reference runs before the policy on each micro-batch),
 *             so it costs one parameter copy and nothing else.
 *   cached    S_ref of every example computed once and stored on disk next to the data
 *             (or in reference.cache_dir), keyed by a hash of the tokenized data, the
 *             tokenization settings and the reference weights; reused across runs and
 *             resumes; a stale or damaged cache is detected and rebuilt. No model is kept
 *             in memory during training.
 *   sync      TR-DPO: a snapshot that drifts: every sync_steps updates,
 *             ref <- alpha * policy + (1 - alpha) * ref. The drifted reference is saved in
 *             checkpoints (ref.safetensors) so a resumed run stays bit-exact.
 */
#ifndef TINYALIGN_REFERENCE_H
#define TINYALIGN_REFERENCE_H
#include "tinyalign/common.h"
#include "tinyalign/config.h"
#include "tinyalign/data.h"
#include "tinyalign/model.h"

typedef struct {
    const CfgReference *cfg;
    GPT2 *policy;          /* initial policy (weights copied now; activations borrowed) */
    const Dataset *train;  /* for `cached`: the datasets whose examples get cached */
    const Dataset *val;    /* may be NULL */
    const char *data_path; /* for `cached`: where the cache goes when cache_dir is "" */
    const char *val_path;
    int max_rows, max_T;   /* batch geometry, for computing the cache */
} ReferenceSetup;

typedef struct {
    CfgRefMode mode;
    int sync_steps;
    double sync_alpha;
    GPT2 model;        /* snapshot / sync weights (forward-only); unused for cached */
    int have_model;
    uint32_t init_crc; /* CRC32 of the reference weights as built (resume checks it) */
    GPT2 *policy;      /* whose activation buffers the reference borrows */
    /* cached: per dataset, rows_per_example floats per example */
    const Dataset *cache_ds[2];
    float *cache[2];
    size_t cache_n[2];
    int cache_rows[2];
} Reference;

/* Builds the reference (and, for `cached`, loads or computes the cache). Returns TA_OK,
 * TA_EINPUT (reference.path whose shapes differ from the policy, unreadable cache dir)
 * or TA_ERUNTIME. */
int reference_init(Reference *r, const ReferenceSetup *s, TaError *err);
void reference_free(Reference *r); /* safe on a zeroed struct */

/* out (b->B): S_ref of each row of b. ds: the dataset b was filled from (cached mode
 * looks rows up by example id; the other modes run a forward pass). Overwrites the
 * policy's activations (call before the policy's forward). */
int reference_logps(Reference *r, const Dataset *ds, const Batch *b, float *out, TaError *err);

/* After optimizer update `step` (1-based): TR-DPO sync when due. */
void reference_after_step(Reference *r, const GPT2 *policy, long step, long *syncs);

/* True when the reference weights change during training (sync): checkpoints save them. */
int reference_drifts(const Reference *r);
GPT2 *reference_model(Reference *r);

#endif
