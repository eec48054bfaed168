/* reference.c — snapshot / cached / sync reference log-probs (see reference.h). */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/reference.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/model_io.h"
#include "tinyalign/checkpoint.h"
#include "tinyalign/objective.h"

#define CACHE_MAGIC "TAREFLP1"
#define CACHE_VERSION 2u
#define CACHE_HEADER 40 /* magic 8, version 4, rows 4, key 8, count 8, crc32 4, pad 4 */

static int forward_logps(Reference *r, const Batch *b, float *out, TaError *err) {
    int rc = gpt2_forward(&r->model, b->tokens, b->targets, b->B, b->T, err);
    if (rc != TA_OK) return rc;
    objective_sequence_logps(out, b, r->model.acts.logp);
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

static int cache_build(Reference *r, int slot, const Dataset *ds, const char *data_path,
                       const ReferenceSetup *s, TaError *err) {
    const int rows = dataset_rows_per_example(ds);
    const size_t n = dataset_size(ds);
    /* key: data + tokenization (dataset_hash) + reference weights */
    uint64_t dh = dataset_hash(ds);
    uint64_t key = ta_fnv1a(TA_FNV1A_INIT, &dh, sizeof dh);
    uint32_t wcrc = ta_crc32(0, r->model.params_memory, r->model.num_params * sizeof(float));
    key = ta_fnv1a(key, &wcrc, sizeof wcrc);
    /* + how the log-probs were computed, unless it is the original fp32 OpenBLAS (whose
     * caches keep their keys) */
    int how[2] = {(int)backend_kind(r->model.be), (int)r->model.precision};
    if (how[0] != BACKEND_OPENBLAS || how[1] != PRECISION_FP32) key = ta_fnv1a(key, how, sizeof how);
    char path[4096];
    cache_path(path, sizeof path, data_path, s->cfg->cache_dir, key);
    float *vals = ta_malloc(n * (size_t)rows * sizeof(float) + 1, "reference cache");
    r->cache_ds[slot] = ds;
    r->cache[slot] = vals;
    r->cache_n[slot] = n;
    r->cache_rows[slot] = rows;
    if (cache_read(path, key, n, rows, vals)) {
        fprintf(stderr, "reference: cached log-probs %s (%zu examples)\n", path, n);
        return TA_OK;
    }
    /* compute in file order, batch by batch */
    const int per = s->max_rows / rows;
    Batch b;
    batch_alloc(&b, s->max_rows, s->max_T);
    uint32_t *ids = ta_malloc(sizeof(uint32_t) * (size_t)per, "ids");
    float *out = ta_malloc(sizeof(float) * (size_t)s->max_rows, "logps");
    double t0 = ta_now();
    int rc = TA_OK;
    for (size_t i = 0; i < n && rc == TA_OK; i += (size_t)per) {
        int m = (int)(n - i < (size_t)per ? n - i : (size_t)per);
        for (int j = 0; j < m; j++) ids[j] = (uint32_t)(i + (size_t)j);
        dataset_fill(ds, ids, m, &b);
        rc = forward_logps(r, &b, out, err);
        /* batch rows -> per-example slots: preference rows [0,P) chosen, [P,2P) rejected */
        for (int j = 0; j < m && rc == TA_OK; j++)
            for (int q = 0; q < rows; q++) vals[(i + (size_t)j) * rows + q] = out[q * m + j];
    }
    batch_free(&b);
    free(ids);
    free(out);
    if (rc != TA_OK) return rc;
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
    rc = ta_write_file_atomic(path, buf, bytes, err);
    free(buf);
    if (rc != TA_OK) return rc;
    fprintf(stderr, "reference: computed log-probs of %zu examples in %.1fs -> %s\n", n,
            ta_now() - t0, path);
    return TA_OK;
}

int reference_init(Reference *r, const ReferenceSetup *s, TaError *err) {
    memset(r, 0, sizeof *r);
    r->mode = s->cfg->mode;
    r->sync_steps = s->cfg->sync_steps;
    r->sync_alpha = s->cfg->sync_alpha;
    r->policy = s->policy;
    int rc;
    /* the reference weights: initial policy, or reference.path */
    gpt2_init(&r->model, &s->policy->config, 0);
    r->have_model = 1; /* reference_free releases it on every error path below */
    /* the reference computes like the policy (it borrows the policy's activations, whose
     * layout depends on the precision, and its log-probs must match the policy's bits
     * while the two have the same weights) */
    if ((rc = gpt2_set_compute(&r->model, backend_kind(s->policy->be), s->policy->precision,
                               err)) != TA_OK)
        return rc;
    if (s->cfg->path && *s->cfg->path) {
        char dir[4096];
        if ((rc = checkpoint_resolve(s->cfg->path, dir, sizeof dir, err)) != TA_OK) return rc;
        GPT2Config rc_cfg;
        char cj[4200];
        ta_pathf(cj, sizeof cj, "%s/config.json", dir);
        if ((rc = model_config_read(&rc_cfg, cj, err)) != TA_OK) return rc;
        const GPT2Config *pc = &s->policy->config;
        if (rc_cfg.n_layer != pc->n_layer || rc_cfg.n_head != pc->n_head ||
            rc_cfg.d_model != pc->d_model || rc_cfg.vocab_size != pc->vocab_size ||
            rc_cfg.max_seq_len != pc->max_seq_len)
            return ta_err(err, TA_EINPUT,
                          "objective.reference.path %s: model shape (L=%d NH=%d C=%d V=%d T=%d) "
                          "differs from the policy (L=%d NH=%d C=%d V=%d T=%d)",
                          dir, rc_cfg.n_layer, rc_cfg.n_head, rc_cfg.d_model, rc_cfg.vocab_size,
                          rc_cfg.max_seq_len, pc->n_layer, pc->n_head, pc->d_model, pc->vocab_size,
                          pc->max_seq_len);
        char mp[4200];
        ta_pathf(mp, sizeof mp, "%s/model.safetensors", dir);
        if ((rc = model_load_safetensors(&r->model, mp, err)) != TA_OK) return rc;
    } else {
        memcpy(r->model.params_memory, s->policy->params_memory,
               s->policy->num_params * sizeof(float));
        gpt2_params_changed(&r->model);
    }
    r->init_crc = ta_crc32(0, r->model.params_memory, r->model.num_params * sizeof(float));
    gpt2_borrow_acts(&r->model, s->policy);
    if (r->mode == CFG_REF_CACHED) {
        if (s->cfg->cache_dir && *s->cfg->cache_dir && ta_mkdirs(s->cfg->cache_dir, NULL) != TA_OK)
            return ta_err(err, TA_EINPUT,
                          "objective.reference.cache_dir \"%s\": cannot create this directory",
                          s->cfg->cache_dir);
        if (!s->train)
            return ta_err(err, TA_EINPUT,
                          "objective.reference.mode \"cached\" needs a JSONL dataset (data.format "
                          "preference/sft)");
        if ((rc = cache_build(r, 0, s->train, s->data_path, s, err)) != TA_OK) return rc;
        if (s->val && (rc = cache_build(r, 1, s->val, s->val_path, s, err)) != TA_OK) return rc;
        /* the cache is all training needs: drop the weights */
        gpt2_free(&r->model);
        r->have_model = 0;
    }
    return TA_OK;
}

void reference_free(Reference *r) {
    if (r->have_model) gpt2_free(&r->model);
    free(r->cache[0]);
    free(r->cache[1]);
    memset(r, 0, sizeof *r);
}

int reference_logps(Reference *r, const Dataset *ds, const Batch *b, float *out, TaError *err) {
    if (r->mode != CFG_REF_CACHED) return forward_logps(r, b, out, err);
    int slot = ds == r->cache_ds[0] ? 0 : ds == r->cache_ds[1] ? 1 : -1;
    if (slot < 0 || !ds)
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

void reference_after_step(Reference *r, const GPT2 *policy, long step, long *syncs) {
    if (r->mode != CFG_REF_SYNC || step % r->sync_steps != 0) return;
    const float a = (float)r->sync_alpha, b = (float)(1.0 - r->sync_alpha);
    float *ref = r->model.params_memory;
    const float *pol = policy->params_memory;
    const size_t n = r->model.num_params;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) ref[i] = a * pol[i] + b * ref[i];
    gpt2_params_changed(&r->model);
    (*syncs)++;
}

int reference_drifts(const Reference *r) { return r->have_model && r->mode == CFG_REF_SYNC; }
GPT2 *reference_model(Reference *r) { return &r->model; }
