/* reference.c — frozen auxiliary models (see reference.h): loading or snapshotting their
 * weights, borrowed or own activations, the DPO reference's three modes (snapshot, cached
 * log-probs on disk, TR-DPO sync), the guide of objective.attribute and the base model
 * (nado, q_base base).
 * Not here: what the objectives do with their outputs (objective module), the order of a
 * step (train/step.c). */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/reference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/model_io.h"
#include "tinyalign/objective.h"

#define CACHE_MAGIC "TAREFLP1"
#define CACHE_VERSION 2u
#define CACHE_HEADER 40 /* magic 8, version 4, rows 4, key 8, count 8, crc32 4, pad 4 */

/* ---- AuxModel ---------------------------------------------------------------------------- */

/* Prefixes err's message with the config key, so a bad directory names where it came from. */
static int err_with_key(TaError *err, int rc, const char *key) {
    if (!err) return rc;
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return ta_err(err, rc, "%s: %s", key, msg);
}

/* Weights from spec->path (a run, checkpoints/, step or model directory), dimensions
 * checked against the policy's. */
static int load_weights(AuxModel *a, const AuxSpec *spec, const GPT2 *policy, TaError *err) {
    char dir[4096], p[4200];
    int rc = checkpoint_resolve(spec->path, dir, sizeof dir, err);
    if (rc != TA_OK) return err_with_key(err, rc, spec->key);
    GPT2Config c;
    ta_pathf(p, sizeof p, "%s/config.json", dir);
    if ((rc = model_config_read(&c, p, err)) != TA_OK) return err_with_key(err, rc, spec->key);
    const GPT2Config *pc = &policy->config;
    if (spec->same_dims && (c.n_layer != pc->n_layer || c.n_head != pc->n_head ||
                            c.d_model != pc->d_model || c.vocab_size != pc->vocab_size ||
                            c.max_seq_len != pc->max_seq_len))
        return ta_err(err, TA_EINPUT,
                      "%s %s: model shape (L=%d NH=%d C=%d V=%d T=%d) differs from the policy "
                      "(L=%d NH=%d C=%d V=%d T=%d)",
                      spec->key, dir, c.n_layer, c.n_head, c.d_model, c.vocab_size, c.max_seq_len,
                      pc->n_layer, pc->n_head, pc->d_model, pc->vocab_size, pc->max_seq_len);
    if (c.vocab_size != pc->vocab_size || c.max_seq_len != pc->max_seq_len)
        return ta_err(err, TA_EINPUT,
                      "%s %s: the %s model has vocab_size %d and max_seq_len %d, the policy %d "
                      "and %d; they must be equal (it reads the policy's tokens and positions)",
                      spec->key, dir, spec->role, c.vocab_size, c.max_seq_len, pc->vocab_size,
                      pc->max_seq_len);
    if ((rc = gpt2_config_check(&c, err)) != TA_OK) return err_with_key(err, rc, spec->key);
    gpt2_init(&a->model, &c, 0);
    a->loaded = 1; /* aux_model_free releases it on every error path below */
    ta_pathf(p, sizeof p, "%s/model.safetensors", dir);
    if ((rc = model_load_safetensors(&a->model, p, err)) != TA_OK)
        return err_with_key(err, rc, spec->key);
    return TA_OK;
}

int aux_model_init(AuxModel *a, const AuxSpec *spec, GPT2 *policy, TaError *err) {
    memset(a, 0, sizeof *a);
    snprintf(a->role, sizeof a->role, "%s", spec->role);
    a->output = spec->output;
    TA_ASSERT(policy->acts_memory != NULL);
    int rc;
    if (spec->path && *spec->path) {
        if ((rc = load_weights(a, spec, policy, err)) != TA_OK) return rc;
    } else { /* a snapshot of the policy's current weights */
        gpt2_init(&a->model, &policy->config, 0);
        a->loaded = 1;
        memcpy(a->model.params_memory, policy->params_memory, policy->num_params * sizeof(float));
    }
    a->crc = ta_crc32(0, a->model.params_memory, a->model.num_params * sizeof(float));
    /* an auxiliary model computes like the policy (the precision decides the layout of the
     * activations it borrows, and a snapshot's log-probs must match the policy's bits
     * while the two have the same weights); bf16 derives its bf16 weights here */
    if ((rc = gpt2_set_compute(&a->model, backend_kind(policy->be), policy->precision, err)) !=
        TA_OK)
        return rc;
    const GPT2Config *c = &a->model.config, *pc = &policy->config;
    if (c->d_model == pc->d_model && c->n_layer == pc->n_layer && c->n_head == pc->n_head) {
        /* runs strictly before the policy: its activations can be the policy's */
        gpt2_borrow_acts(&a->model, policy);
        if (a->output == AUX_LOGITS) {
            size_t n = (size_t)policy->B * policy->T * pc->padded_vocab_size;
            a->logits = ta_aligned_alloc(n * sizeof(float), "guide logits");
            a->model.acts.logits = a->logits;
            a->model.lm_chunk = 0; /* the logit head reads any chunk of rows of these */
        }
    } else {
        gpt2_alloc_acts(&a->model, policy->B, policy->T);
    }
    return TA_OK;
}

int aux_model_forward(AuxModel *a, const Batch *b, TaError *err) {
    return gpt2_forward(&a->model, b->tokens, b->targets, b->B, b->T, err);
}

void aux_model_free(AuxModel *a) {
    if (a->loaded) gpt2_free(&a->model);
    free(a->logits);
    memset(a, 0, sizeof *a);
}

/* ---- example sets ------------------------------------------------------------------------- */

static void fill_dataset(const void *id, const uint32_t *ids, int n, Batch *b) {
    dataset_fill((const Dataset *)id, ids, n, b);
}

RefExampleSet ref_example_set_dataset(const Dataset *ds, const char *path) {
    return (RefExampleSet){.id = ds, .n = dataset_size(ds), .rows = dataset_rows_per_example(ds),
                           .hash = dataset_hash(ds), .path = path, .fill = fill_dataset};
}

/* ---- the DPO reference: cached log-probs ------------------------------------------------ */

static int forward_logps(AuxModel *a, const Batch *b, float *out, TaError *err) {
    int rc = aux_model_forward(a, b, err);
    if (rc != TA_OK) return rc;
    objective_sequence_logps(out, b, a->model.acts.logp);
    return TA_OK;
}

static void cache_path(char *out, size_t cap, const char *data_path, const char *cache_dir,
                       uint64_t key) {
    const char *base = strrchr(data_path, '/');
    base = base ? base + 1 : data_path;
    if (cache_dir && *cache_dir) {
        ta_pathf(out, cap, "%s/%s.reflogp-%016llx.bin", cache_dir, base, (unsigned long long)key);
    } else {
        char dir[4096];
        ta_pathf(dir, sizeof dir, "%s", data_path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else ta_pathf(dir, sizeof dir, ".");
        ta_pathf(out, cap, "%s/%s.reflogp-%016llx.bin", dir, base, (unsigned long long)key);
    }
}

/* Loads a cache file when it exists and matches key, size and checksum; 1 on success. */
static int cache_read(const char *path, uint64_t key, size_t n, int rows, float *dst) {
    size_t len;
    char *buf = ta_read_file(path, &len, NULL);
    if (!buf) return 0;
    size_t payload = n * (size_t)rows * sizeof(float);
    int ok = len == CACHE_HEADER + payload && !memcmp(buf, CACHE_MAGIC, 8);
    if (ok) {
        uint32_t ver, rpe, crc;
        uint64_t k, cnt;
        memcpy(&ver, buf + 8, 4);
        memcpy(&rpe, buf + 12, 4);
        memcpy(&k, buf + 16, 8);
        memcpy(&cnt, buf + 24, 8);
        memcpy(&crc, buf + 32, 4);
        ok = ver == CACHE_VERSION && rpe == (uint32_t)rows && k == key && cnt == n &&
             crc == ta_crc32(0, buf + CACHE_HEADER, payload);
        if (ok) memcpy(dst, buf + CACHE_HEADER, payload);
    }
    if (!ok) fprintf(stderr, "reference cache %s is damaged or does not match its data; rebuilding\n", path);
    free(buf);
    return ok;
}

static int cache_write(const char *path, uint64_t key, size_t n, int rows, const float *vals,
                       TaError *err) {
    size_t payload = n * (size_t)rows * sizeof(float);
    size_t bytes = CACHE_HEADER + payload;
    char *buf = ta_calloc(bytes, "cache file");
    uint32_t ver = CACHE_VERSION, rpe = (uint32_t)rows, crc = ta_crc32(0, vals, payload);
    uint64_t cnt = n;
    memcpy(buf, CACHE_MAGIC, 8);
    memcpy(buf + 8, &ver, 4);
    memcpy(buf + 12, &rpe, 4);
    memcpy(buf + 16, &key, 8);
    memcpy(buf + 24, &cnt, 8);
    memcpy(buf + 32, &crc, 4);
    memcpy(buf + CACHE_HEADER, vals, payload);
    int rc = ta_write_file_atomic(path, buf, bytes, err);
    free(buf);
    return rc;
}

/* Opens the cache slot of set: its key (data + tokenization: the set's hash; the reference
 * weights) and its file (none when the set has no path). */
static int cache_open(Reference *r, const RefExampleSet *set, const CfgReference *cfg) {
    uint64_t key = ta_fnv1a(TA_FNV1A_INIT, &set->hash, sizeof set->hash);
    key = ta_fnv1a(key, &r->crc, sizeof r->crc);
    /* + how the log-probs are computed, unless it is the original fp32 OpenBLAS (whose
     * caches keep their keys) */
    const GPT2 *rm = &r->aux.model;
    int how[2] = {(int)backend_kind(rm->be), (int)rm->precision};
    if (how[0] != BACKEND_OPENBLAS || how[1] != PRECISION_FP32) key = ta_fnv1a(key, how, sizeof how);
    int slot = r->n_cache++;
    r->cache_id[slot] = set->id;
    r->cache[slot] = ta_calloc(set->n * (size_t)set->rows * sizeof(float) + 1, "reference cache");
    r->cache_n[slot] = set->n;
    r->cache_rows[slot] = set->rows;
    r->cache_set[slot] = *set;
    r->cache_key[slot] = key;
    r->cache_path[slot][0] = '\0';
    if (set->path)
        cache_path(r->cache_path[slot], sizeof r->cache_path[slot], set->path, cfg->cache_dir, key);
    return slot;
}

/* S_ref of examples [lo, hi) of the slot's set into its cache, batch by batch of the
 * largest micro-batch (file order). */
static int cache_compute(Reference *r, int slot, size_t lo, size_t hi, TaError *err) {
    const RefExampleSet *set = &r->cache_set[slot];
    const int rows = set->rows, per = r->max_rows / rows;
    float *vals = r->cache[slot];
    Batch b;
    batch_alloc(&b, r->max_rows, r->max_T);
    uint32_t *ids = ta_malloc(sizeof(uint32_t) * (size_t)per, "ids");
    float *out = ta_malloc(sizeof(float) * (size_t)r->max_rows, "logps");
    int rc = TA_OK;
    for (size_t i = lo; i < hi && rc == TA_OK; i += (size_t)per) {
        int m = (int)(hi - i < (size_t)per ? hi - i : (size_t)per);
        for (int j = 0; j < m; j++) ids[j] = (uint32_t)(i + (size_t)j);
        set->fill(set->id, ids, m, &b);
        rc = forward_logps(&r->aux, &b, out, err);
        /* batch rows -> per-example slots: preference rows [0,P) chosen, [P,2P) rejected */
        for (int j = 0; j < m && rc == TA_OK; j++)
            for (int q = 0; q < rows; q++) vals[(i + (size_t)j) * rows + q] = out[q * m + j];
    }
    batch_free(&b);
    free(ids);
    free(out);
    return rc;
}

/* One process: S_ref of every example of the slot's set, loaded from or saved to the cache
 * file when the set has a path. */
static int cache_build(Reference *r, int slot, TaError *err) {
    const char *path = r->cache_path[slot];
    const size_t n = r->cache_n[slot];
    const int rows = r->cache_rows[slot];
    if (*path && cache_read(path, r->cache_key[slot], n, rows, r->cache[slot])) {
        fprintf(stderr, "reference: cached log-probs %s (%zu examples)\n", path, n);
        return TA_OK;
    }
    double t0 = ta_now();
    int rc = cache_compute(r, slot, 0, n, err);
    if (rc != TA_OK || !*path) return rc;
    if ((rc = cache_write(path, r->cache_key[slot], n, rows, r->cache[slot], err)) != TA_OK)
        return rc;
    fprintf(stderr, "reference: computed log-probs of %zu examples in %.1fs -> %s\n", n,
            ta_now() - t0, path);
    return TA_OK;
}

/* Data parallel: every part learns whether any part failed (a flag summed over the parts),
 * so that no part waits in a sum the others never reach. */
static int agree_ok(int rc, AuxAllSum allsum, void *ctx, TaError *err) {
    float bad = rc != TA_OK;
    int src = allsum(ctx, &bad, 1, err);
    if (src != TA_OK) return src;
    if (rc != TA_OK) return rc;
    return bad > 0 ? ta_err(err, TA_ERUNTIME, "reference cache: another rank failed (it reports why)")
                   : TA_OK;
}

/* Data parallel, one slot (see aux_models_share). Each value is summed with zeros from
 * every part but the one that computed or read it, and x + 0 == x exactly. */
static int cache_share(Reference *r, int slot, AuxAllSum allsum, void *ctx, TaError *err) {
    const char *path = r->cache_path[slot];
    const size_t n = r->cache_n[slot], count = n * (size_t)r->cache_rows[slot];
    float *vals = r->cache[slot];
    float hit = r->part == 0 && *path && cache_read(path, r->cache_key[slot], n,
                                                     r->cache_rows[slot], vals);
    int rc = allsum(ctx, &hit, 1, err);
    if (rc != TA_OK) return rc;
    if (hit > 0) { /* part 0 read the file: the others receive it */
        if (r->part != 0) memset(vals, 0, count * sizeof(float));
        if ((rc = allsum(ctx, vals, count, err)) == TA_OK)
            fprintf(stderr, "reference: cached log-probs %s (%zu examples)\n", path, n);
        return rc;
    }
    double t0 = ta_now();
    memset(vals, 0, count * sizeof(float));
    size_t lo = (size_t)r->part * n / (size_t)r->parts;          /* dist.h's sharding rule */
    size_t hi = (size_t)(r->part + 1) * n / (size_t)r->parts;
    rc = agree_ok(cache_compute(r, slot, lo, hi, err), allsum, ctx, err);
    if (rc == TA_OK) rc = allsum(ctx, vals, count, err);
    if (rc != TA_OK || !*path) return rc;
    rc = r->part == 0 ? cache_write(path, r->cache_key[slot], n, r->cache_rows[slot], vals, err)
                      : TA_OK;
    if ((rc = agree_ok(rc, allsum, ctx, err)) != TA_OK) return rc;
    fprintf(stderr, "reference: computed log-probs of %zu examples on %d ranks in %.1fs -> %s\n",
            n, r->parts, ta_now() - t0, path);
    return TA_OK;
}

static int cache_lookup(const Reference *r, const void *set, const Batch *b, float *out,
                        TaError *err) {
    int slot = -1;
    for (int i = 0; i < r->n_cache; i++)
        if (set && set == r->cache_id[i]) slot = i;
    if (slot < 0)
        return ta_err(err, TA_ERUNTIME, "reference cache: batch from a dataset without a cache");
    const int rows = r->cache_rows[slot];
    const int m = rows == 2 ? b->n_pairs : b->B;
    for (int q = 0; q < rows; q++)
        for (int j = 0; j < m; j++) {
            int row = q * m + j;
            size_t ex = (size_t)b->example_ids[row];
            TA_ASSERT(ex < r->cache_n[slot]);
            out[row] = r->cache[slot][ex * rows + q];
        }
    return TA_OK;
}

static int reference_init(Reference *r, const AuxSetup *s, TaError *err) {
    const CfgReference *cfg = &s->cfg->reference;
    r->mode = cfg->mode;
    r->sync_steps = cfg->sync_steps;
    r->sync_alpha = cfg->sync_alpha;
    AuxSpec spec = {.role = "reference", .key = "objective.reference.path", .path = cfg->path,
                    .output = AUX_ROW_REDUCTIONS, .same_dims = 1};
    int rc = aux_model_init(&r->aux, &spec, s->policy, err);
    if (rc != TA_OK) return rc;
    r->crc = r->aux.crc;
    if (r->mode != CFG_REF_CACHED) return TA_OK;
    if (cfg->cache_dir && *cfg->cache_dir && ta_mkdirs(cfg->cache_dir, NULL) != TA_OK)
        return ta_err(err, TA_EINPUT,
                      "objective.reference.cache_dir \"%s\": cannot create this directory",
                      cfg->cache_dir);
    if (s->n_sets == 0)
        return ta_err(err, TA_EINPUT,
                      "objective.reference.mode \"cached\" needs a JSONL dataset (data.format "
                      "preference/sft)");
    r->max_rows = s->max_rows;
    r->max_T = s->max_T;
    r->part = s->part;
    r->parts = s->parts > 1 ? s->parts : 1;
    for (int i = 0; i < s->n_sets && i < 2; i++) cache_open(r, &s->sets[i], cfg);
    if (r->parts > 1) return TA_OK; /* built together: aux_models_share */
    for (int i = 0; i < r->n_cache; i++)
        if ((rc = cache_build(r, i, err)) != TA_OK) return rc;
    aux_model_free(&r->aux); /* the cache is all training needs */
    return TA_OK;
}

int aux_models_share(AuxModels *m, AuxAllSum allsum, void *ctx, TaError *err) {
    Reference *r = &m->ref;
    if (!m->has_ref || r->mode != CFG_REF_CACHED || r->parts <= 1) return TA_OK;
    int rc = TA_OK;
    for (int i = 0; i < r->n_cache && rc == TA_OK; i++) rc = cache_share(r, i, allsum, ctx, err);
    if (rc == TA_OK) aux_model_free(&r->aux);
    return rc;
}

static void reference_free(Reference *r) {
    aux_model_free(&r->aux);
    for (int i = 0; i < r->n_cache; i++) free(r->cache[i]);
    memset(r, 0, sizeof *r);
}

/* ---- AuxModels ---------------------------------------------------------------------------- */

int aux_models_init(AuxModels *m, const AuxSetup *s, TaError *err) {
    memset(m, 0, sizeof *m);
    int rc;
    if (objective_needs_reference(s->cfg)) {
        m->has_ref = 1;
        if ((rc = reference_init(&m->ref, s, err)) != TA_OK) return rc;
        const char *rp = s->cfg->reference.path;
        m->ref_id = rp && *rp ? (AuxIdentity){"reference", m->ref.crc, "objective.reference.path", rp}
                              : (AuxIdentity){"reference", m->ref.crc, "model.path",
                                              s->policy_path ? s->policy_path : ""};
    }
    if (objective_needs_guide(s->cfg)) {
        m->has_guide = 1;
        AuxSpec spec = {.role = "guide", .key = "objective.attribute.guide",
                        .path = s->cfg->attribute.guide, .output = AUX_LOGITS};
        if ((rc = aux_model_init(&m->guide, &spec, s->policy, err)) != TA_OK) return rc;
        m->guide_id = (AuxIdentity){"guide", m->guide.crc, spec.key, spec.path};
    }
    if (objective_needs_base(s->cfg)) {
        m->has_base = 1;
        int nado = s->cfg->type == CFG_OBJ_NADO;
        AuxSpec spec = {.role = "base",
                        .key = nado ? "objective.nado.base" : "objective.attribute.base",
                        .path = nado ? s->cfg->nado.base : s->cfg->attribute.base,
                        .output = AUX_LOGITS};
        if ((rc = aux_model_init(&m->base, &spec, s->policy, err)) != TA_OK) return rc;
        /* "" = the initial policy: named by model.path in the checkpoint state, as the
         * snapshot reference is */
        m->base_id = spec.path && *spec.path
                         ? (AuxIdentity){"base", m->base.crc, spec.key, spec.path}
                         : (AuxIdentity){"base", m->base.crc, "model.path",
                                         s->policy_path ? s->policy_path : ""};
    }
    return TA_OK;
}

void aux_models_free(AuxModels *m) {
    reference_free(&m->ref);
    aux_model_free(&m->guide);
    aux_model_free(&m->base);
    memset(m, 0, sizeof *m);
}

int aux_models_forward(AuxModels *m, const Batch *b, const void *set, float *ref_seq_logp,
                       TaError *err) {
    int rc = TA_OK;
    if (m->has_ref)
        rc = m->ref.mode == CFG_REF_CACHED ? cache_lookup(&m->ref, set, b, ref_seq_logp, err)
                                           : forward_logps(&m->ref.aux, b, ref_seq_logp, err);
    if (rc == TA_OK && m->has_guide) rc = aux_model_forward(&m->guide, b, err);
    if (rc == TA_OK && m->has_base) rc = aux_model_forward(&m->base, b, err);
    return rc;
}

const float *aux_models_guide_logits(const AuxModels *m) {
    return m->has_guide ? m->guide.model.acts.logits : NULL;
}

const float *aux_models_base_logits(const AuxModels *m) {
    return m->has_base ? m->base.model.acts.logits : NULL;
}

int aux_models_after_update(AuxModels *m, const GPT2 *policy, long step) {
    Reference *r = &m->ref;
    if (!m->has_ref || r->mode != CFG_REF_SYNC || step % r->sync_steps != 0) return 0;
    const float a = (float)r->sync_alpha, b = (float)(1.0 - r->sync_alpha);
    float *ref = r->aux.model.params_memory;
    const float *pol = policy->params_memory;
    const size_t n = r->aux.model.num_params;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) ref[i] = a * pol[i] + b * ref[i];
    gpt2_params_changed(&r->aux.model);
    return 1;
}

GPT2 *aux_models_drifting(AuxModels *m) {
    return m->has_ref && m->ref.mode == CFG_REF_SYNC ? &m->ref.aux.model : NULL;
}

int aux_models_identities(const AuxModels *m, AuxIdentity *out, int cap) {
    int n = 0;
    if (m->has_ref && m->ref.mode != CFG_REF_SYNC && n < cap)
        out[n++] = m->ref_id;
    if (m->has_guide && n < cap) out[n++] = m->guide_id;
    if (m->has_base && n < cap) out[n++] = m->base_id;
    return n;
}
