/* reference.h — frozen auxiliary models: forward-only GPT-2s that run beside the policy on
 * the same rows (the DPO reference, the objective.attribute guide; later a reward or a loss
 * model). One mechanism, AuxModel, and the set a run holds, AuxModels.
 *
 * An AuxModel has a role ("reference", "guide") naming it in messages and in the checkpoint
 * state, where the CRC32 of its weights as built is kept and checked on resume. Its weights
 * come from a model directory (run / checkpoints / step / model dir) or are a snapshot of
 * the policy's; it has no gradients and no AdamW state. It runs strictly before the
 * policy on each micro-batch, so with the policy's dimensions it BORROWS the policy's
 * activations (the policy's forward then overwrites them): the DPO reference costs one
 * parameter copy, its per-row log-prob sums taken right after its forward. A model whose
 * logits must outlive the policy's forward (AUX_LOGITS: the guide, read by the logit head
 * beside the policy's logits) owns just a (B,T,Vp) logits buffer; one of other dimensions
 * owns forward-only activations. A reward model's scalar head (score.weight (1,C) at each
 * row's last real token) would be one more AuxOutput reduced right after the forward, as
 * the reference's sums are.
 *
 * The DPO reference (objective.reference.mode): snapshot (an AuxModel of the initial
 * policy or of reference.path); cached (S_ref of every example computed once, stored next
 * to the data or in cache_dir, keyed by the tokenized data, the tokenization settings and
 * the reference weights; a stale or damaged cache is rebuilt; the weights are then
 * dropped); sync (TR-DPO: every sync_steps, ref <- alpha policy + (1 - alpha) ref; the
 * drifted weights go into checkpoints as ref.safetensors, so a resume stays bit-exact).
 * S_ref = sum over completion tokens (loss_mask) of log p_ref (objective_sequence_logps).
 * The guide (objective.attribute.guide) must share the policy's vocab_size and
 * max_seq_len; its other dimensions may differ.
 */
#ifndef TINYALIGN_REFERENCE_H
#define TINYALIGN_REFERENCE_H
#include "tinyalign/common.h"
#include "tinyalign/config.h"
#include "tinyalign/data.h"
#include "tinyalign/model.h"

/* ---- one frozen auxiliary model -------------------------------------------------------- */

typedef enum {
    AUX_ROW_REDUCTIONS = 0, /* only per-row / per-token reductions of its forward are kept */
    AUX_LOGITS,             /* its logits (B,T,Vp) must outlive the policy's forward */
} AuxOutput;

typedef struct {
    const char *role;   /* "reference", "guide", ...: messages and checkpoint state */
    const char *key;    /* the config key naming its weights, for messages */
    const char *path;   /* model / checkpoint / run directory; NULL or "": snapshot the policy */
    AuxOutput output;
    int same_dims;      /* 1: must have the policy's dimensions exactly (DPO reference);
                         * 0: only vocab_size and max_seq_len must match */
} AuxSpec;

typedef struct {
    char role[16];
    AuxOutput output;
    GPT2 model;       /* forward-only weights; activations borrowed or own */
    int loaded;       /* model holds weights */
    uint32_t crc;     /* CRC32 of the weights as built */
    float *logits;    /* AUX_LOGITS with borrowed activations: own (B,T,Vp); else NULL */
} AuxModel;

/* Builds a from spec next to policy, whose activations must be allocated (gpt2_alloc_acts)
 * for the largest micro-batch. Returns TA_OK, or TA_EINPUT naming spec->key (unreadable
 * directory, dimensions that differ from the policy's) / TA_ERUNTIME. */
int aux_model_init(AuxModel *a, const AuxSpec *spec, GPT2 *policy, TaError *err);
/* Forward over micro-batch b (call before the policy's forward on b). Afterwards
 * a->model.acts.logp / lse (and logits) hold its per-token outputs until the policy's
 * forward; with AUX_LOGITS its logits survive until its next forward. TA_OK or TA_EINPUT. */
int aux_model_forward(AuxModel *a, const Batch *b, TaError *err);
void aux_model_free(AuxModel *a); /* safe on a zeroed struct */

/* ---- the example sets of the cached reference ------------------------------------------ */

/* A set of examples whose reference values are cached: the training or validation dataset,
 * or the synthetic rows of `tinyalign bench`. Batches drawn from it name it (StepSource.set
 * in train.h) so that the cache is looked up by example id. */
typedef struct {
    const void *id;    /* identity of the set (e.g. the Dataset pointer) */
    size_t n;          /* examples */
    int rows;          /* batch rows per example: 1, or 2 for a preference pair */
    uint64_t hash;     /* content + tokenization hash: part of the cache key */
    const char *path;  /* the data file the cache file goes next to; NULL: memory only */
    /* fills b with examples ids[0..n) in the data module's layout (pairs: chosen rows
     * first), example_ids set */
    void (*fill)(const void *id, const uint32_t *ids, int n, Batch *b);
} RefExampleSet;

/* A dataset as an example set (path: its file, for the cache location). */
RefExampleSet ref_example_set_dataset(const Dataset *ds, const char *path);

/* ---- the DPO reference ------------------------------------------------------------------ */

typedef struct {
    CfgRefMode mode;
    int sync_steps;
    double sync_alpha;
    AuxModel aux;      /* snapshot / sync weights; released once a cache is built */
    uint32_t crc;      /* CRC32 of the reference weights as built */
    /* cached: per example set, rows floats per example */
    int n_cache;
    const void *cache_id[2];
    float *cache[2];
    size_t cache_n[2];
    int cache_rows[2];
} Reference;

/* ---- the auxiliary models of a run ------------------------------------------------------ */

typedef struct {
    const CfgObjective *cfg;
    const char *policy_path;    /* the policy's model.path, for messages ("" when scratch) */
    GPT2 *policy;               /* activations allocated for (max_rows, max_T) */
    const RefExampleSet *sets;  /* cached reference: the sets to cache (train, val) */
    int n_sets;                 /* 0..2 */
    int max_rows, max_T;        /* batch geometry, for computing the cache */
} AuxSetup;

/* The identity of a fixed auxiliary model (its weights never change during the run), for
 * the checkpoint state: role, CRC32, and where it came from (messages). */
typedef struct {
    const char *role;
    uint32_t crc;
    const char *key;  /* config key */
    const char *path; /* what the key says (the config's string) */
} AuxIdentity;

typedef struct {
    Reference ref;   /* the DPO reference (has_ref) */
    int has_ref;
    AuxModel guide;  /* objective.attribute.guide (has_guide) */
    int has_guide;
    AuxIdentity ref_id, guide_id;
} AuxModels;

/* Builds every auxiliary model the objective needs (a reference for dpo / ddpo, a guide
 * for objective.attribute; the cached reference computes or loads its cache). A zeroed
 * AuxModels is an empty set. TA_OK / TA_EINPUT (message names the key) / TA_ERUNTIME. */
int aux_models_init(AuxModels *m, const AuxSetup *s, TaError *err);
void aux_models_free(AuxModels *m); /* safe on a zeroed struct */

/* Before the policy's forward on micro-batch b (drawn from example set `set`, NULL when
 * none): the reference's S_ref per row into ref_seq_logp (b->B; untouched without a
 * reference), the guide's forward (its logits: aux_models_guide_logits). */
int aux_models_forward(AuxModels *m, const Batch *b, const void *set, float *ref_seq_logp,
                       TaError *err);
/* (B,T,Vp) guide logits of the last aux_models_forward, or NULL without a guide. */
const float *aux_models_guide_logits(const AuxModels *m);

/* After optimizer update number `step` (1-based): TR-DPO sync when due; returns 1 if the
 * reference moved. */
int aux_models_after_update(AuxModels *m, const GPT2 *policy, long step);
/* The weights checkpoints must carry because they drift (TR-DPO sync), or NULL. */
GPT2 *aux_models_drifting(AuxModels *m);
/* The fixed auxiliary models (role, CRC, origin), at most cap; returns the count. */
int aux_models_identities(const AuxModels *m, AuxIdentity *out, int cap);

#endif
