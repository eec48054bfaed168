/* model_io.c — our GPT-2 parameter slab <-> Hugging Face GPT-2 tensors (safetensors),
 * HF-style config.json <-> GPT2Config, model directories, and AdamW state files.
 * See include/tinyalign/model_io.h for the name table and file layouts.
 *
 * The one piece of math here is the Conv1D transpose: HF's Conv1D computes
 * y = x @ W + b with W stored (in, out), while our matmul_forward computes
 * y = x @ W^T + b with W stored (out, in) (nn.Linear's layout). So
 *   ours.qkvw[l]    (3C, C) = hf.h.l.attn.c_attn.weight (C, 3C) ^T
 *   ours.attprojw[l] (C, C) = hf.h.l.attn.c_proj.weight (C, C)  ^T
 *   ours.fcw[l]     (4C, C) = hf.h.l.mlp.c_fc.weight    (C, 4C) ^T
 *   ours.fcprojw[l] (C, 4C) = hf.h.l.mlp.c_proj.weight  (4C, C) ^T
 * and everything else is copied as is (q, k, v are concatenated in the same order in both).
 * A reward model's scalar head is HF GPT2ForSequenceClassification's "score.weight" (1, C),
 * a top-level name (no "transformer." prefix), our score (C) as is; config.json then says
 * "architectures": ["GPT2ForSequenceClassification"] with one label.
 * Not handled here: checkpoint directories as a whole (state.json, checksums, the
 * <dir>.tmp rename), llm.c .bin files, sharded HF checkpoints.
 */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/model_io.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tinyalign/safetensors.h"

/* One HF tensor and where it lives in our slab. */
typedef struct {
    char name[96];    /* HF name without the "transformer." prefix */
    int ndim;
    int64_t shape[2]; /* HF shape */
    float *data;      /* our memory (for wte: the first V of Vp rows) */
    int transpose;    /* 1: HF tensor (shape[0], shape[1]) = ours (shape[1], shape[0])^T */
    int toplevel;     /* 1: a name outside the transformer ("score.weight"): never prefixed */
} MapEntry;

static const char PREFIX[] = "transformer.";
static const char SCORE_NAME[] = "score.weight";

/* Number of HF tensors: wte, wpe, 12 per layer, ln_f weight and bias, and score.weight of a
 * reward model. */
static int map_count(const GPT2Config *c) { return 4 + 12 * c->n_layer + (c->score_head ? 1 : 0); }

/* The name of e in a file: "transformer." + name, or the top-level name as is. */
static void full_name(const MapEntry *e, char *out, size_t cap) {
    snprintf(out, cap, "%s%s", e->toplevel ? "" : PREFIX, e->name);
}

static void map_set(MapEntry *e, const char *name, int64_t d0, int64_t d1, float *data,
                    int transpose) {
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ndim = d1 > 0 ? 2 : 1;
    e->shape[0] = d0;
    e->shape[1] = d1 > 0 ? d1 : 0;
    e->data = data;
    e->transpose = transpose;
    e->toplevel = 0;
}

/* Fills out[map_count(L)] for m's parameter slab, in file order. */
static void build_map(const GPT2 *m, MapEntry *out) {
    const GPT2Config *c = &m->config;
    const int64_t C = c->d_model, V = c->vocab_size, T = c->max_seq_len;
    const ParamTensors *p = &m->params;
    int k = 0;
    char nm[96];
    map_set(&out[k++], "wte.weight", V, C, p->wte, 0);
    map_set(&out[k++], "wpe.weight", T, C, p->wpe, 0);
    for (int l = 0; l < c->n_layer; l++) {
        const size_t L = (size_t)l, Cz = (size_t)C;
#define LAYER(suffix, d0, d1, ptr, tr)                                                  \
    do {                                                                                \
        snprintf(nm, sizeof nm, "h.%d.%s", l, suffix);                                  \
        map_set(&out[k++], nm, d0, d1, ptr, tr);                                        \
    } while (0)
        LAYER("ln_1.weight", C, 0, p->ln1w + L * Cz, 0);
        LAYER("ln_1.bias", C, 0, p->ln1b + L * Cz, 0);
        LAYER("attn.c_attn.weight", C, 3 * C, p->qkvw + L * 3 * Cz * Cz, 1);
        LAYER("attn.c_attn.bias", 3 * C, 0, p->qkvb + L * 3 * Cz, 0);
        LAYER("attn.c_proj.weight", C, C, p->attprojw + L * Cz * Cz, 1);
        LAYER("attn.c_proj.bias", C, 0, p->attprojb + L * Cz, 0);
        LAYER("ln_2.weight", C, 0, p->ln2w + L * Cz, 0);
        LAYER("ln_2.bias", C, 0, p->ln2b + L * Cz, 0);
        LAYER("mlp.c_fc.weight", C, 4 * C, p->fcw + L * 4 * Cz * Cz, 1);
        LAYER("mlp.c_fc.bias", 4 * C, 0, p->fcb + L * 4 * Cz, 0);
        LAYER("mlp.c_proj.weight", 4 * C, C, p->fcprojw + L * 4 * Cz * Cz, 1);
        LAYER("mlp.c_proj.bias", C, 0, p->fcprojb + L * Cz, 0);
#undef LAYER
    }
    map_set(&out[k++], "ln_f.weight", C, 0, p->lnfw, 0);
    map_set(&out[k++], "ln_f.bias", C, 0, p->lnfb, 0);
    if (c->score_head) {
        map_set(&out[k], SCORE_NAME, 1, C, p->score, 0);
        out[k++].toplevel = 1;
    }
    TA_ASSERT(k == map_count(c));
}

static void describe_config(const GPT2Config *c, char *buf, size_t cap) {
    snprintf(buf, cap, "n_layer=%d, n_head=%d, n_embd=%d, vocab_size=%d, n_positions=%d",
             c->n_layer, c->n_head, c->d_model, c->vocab_size, c->max_seq_len);
}

int model_save_safetensors(const GPT2 *m, const char *path, TaDigest *digest, TaError *err) {
    TA_ASSERT(m->params_memory);
    int n = map_count(&m->config);
    MapEntry *map = ta_malloc((size_t)n * sizeof *map, "tensor map");
    build_map(m, map);
    SafeWriter w;
    safetensors_writer_init(&w);
    safetensors_writer_meta(&w, "format", "pt");
    safetensors_writer_meta(&w, "tinyalign_version", TA_VERSION);
    for (int i = 0; i < n; i++) {
        char full[128];
        full_name(&map[i], full, sizeof full);
        if (map[i].transpose)
            safetensors_writer_add_transposed(&w, full, map[i].shape[0], map[i].shape[1],
                                              map[i].data);
        else
            safetensors_writer_add(&w, full, map[i].shape, map[i].ndim, map[i].data);
    }
    int rc = safetensors_writer_write(&w, path, digest, err);
    safetensors_writer_free(&w);
    free(map);
    return rc;
}

/* h.<digits>.attn.bias / h.<digits>.attn.masked_bias: HF's causal-mask buffers. */
static int is_mask_buffer(const char *name) {
    if (strncmp(name, "h.", 2) != 0) return 0;
    const char *p = name + 2;
    if (!isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p)) p++;
    return !strcmp(p, ".attn.bias") || !strcmp(p, ".attn.masked_bias");
}

static int same_shape(const SafeTensorInfo *t, const int64_t *shape, int ndim) {
    if (t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}

int model_load_safetensors(GPT2 *m, const char *path, TaError *err) {
    TA_ASSERT(m->params_memory);
    const GPT2Config *c = &m->config;
    const size_t C = (size_t)c->d_model;
    int n = map_count(c);
    MapEntry *map = ta_malloc((size_t)n * sizeof *map, "tensor map");
    build_map(m, map);
    SafeTensors st;
    char *used = NULL;
    float *tmp = NULL;
    char *gap = NULL; /* reported after the names: a deleted entry leaves a gap */
    int rc = safetensors_open_gaps(&st, path, &gap, err);
    if (rc != TA_OK) goto end;
    char cfgdesc[160], want[64], got[64];
    describe_config(c, cfgdesc, sizeof cfgdesc);
    used = ta_calloc((size_t)(st.n ? st.n : 1), "tensor flags");

    /* Naming style: "transformer.h.0..." (save_pretrained) or "h.0..." (the Hub's gpt2). */
    int prefixed = 0;
    for (int i = 0; i < st.n; i++)
        if (!strncmp(st.tensors[i].name, PREFIX, sizeof PREFIX - 1)) prefixed = 1;

    /* Pass 1: every expected tensor present once with the expected shape. */
    const SafeTensorInfo **found = ta_calloc((size_t)n * sizeof *found, "tensor lookup");
    for (int i = 0; i < n && rc == TA_OK; i++) {
        char full[128];
        full_name(&map[i], full, sizeof full);
        const SafeTensorInfo *a = safetensors_find(&st, full);
        const SafeTensorInfo *b = map[i].toplevel ? NULL : safetensors_find(&st, map[i].name);
        if (a && b) {
            rc = ta_err(err, TA_EINPUT, "%s: tensor \"%s\" appears both as \"%s\" and \"%s\"",
                        path, map[i].name, full, map[i].name);
            break;
        }
        const SafeTensorInfo *t = a ? a : b;
        if (!t && map[i].toplevel) {
            rc = ta_err(err, TA_EINPUT,
                        "%s: no reward head: tensor \"%s\" (shape %s) is missing, but config.json "
                        "says GPT2ForSequenceClassification", path, SCORE_NAME,
                        safetensors_shape_str(want, sizeof want, map[i].shape, map[i].ndim));
            break;
        }
        if (!t) {
            rc = ta_err(err, TA_EINPUT,
                        "%s: missing tensor \"%s\" (expected shape %s for a model with %s)",
                        path, prefixed ? full : map[i].name,
                        safetensors_shape_str(want, sizeof want, map[i].shape, map[i].ndim),
                        cfgdesc);
            break;
        }
        if (!same_shape(t, map[i].shape, map[i].ndim)) {
            rc = ta_err(err, TA_EINPUT,
                        "%s: tensor \"%s\" has shape %s, expected %s (model: %s)", path,
                        t->name, safetensors_shape_str(got, sizeof got, t->shape, t->ndim),
                        safetensors_shape_str(want, sizeof want, map[i].shape, map[i].ndim),
                        cfgdesc);
            break;
        }
        used[t - st.tensors] = 1;
        found[i] = t;
    }

    if (rc == TA_OK && gap) rc = ta_err(err, TA_EINPUT, "%s", gap);

    /* Pass 2: nothing unexpected (mask buffers and a tied lm_head are fine). */
    const SafeTensorInfo *lm_head = NULL;
    if (rc == TA_OK) {
        char list[512] = "";
        int extra = 0;
        for (int i = 0; i < st.n; i++) {
            const char *nm = st.tensors[i].name;
            const char *bare = strncmp(nm, PREFIX, sizeof PREFIX - 1) ? nm : nm + sizeof PREFIX - 1;
            if (used[i] || is_mask_buffer(bare)) continue;
            if (!strcmp(nm, "lm_head.weight")) {
                lm_head = &st.tensors[i];
                continue;
            }
            if (!strcmp(nm, SCORE_NAME)) {
                rc = ta_err(err, TA_EINPUT,
                            "%s: has a reward head (\"%s\") but config.json describes a plain "
                            "GPT-2 language model (set \"architectures\": "
                            "[\"GPT2ForSequenceClassification\"] and \"num_labels\": 1)",
                            path, SCORE_NAME);
                break;
            }
            if (extra < 4) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof list - len, "%s\"%s\"", extra ? ", " : "", nm);
            }
            extra++;
        }
        if (extra && rc == TA_OK) {
            rc = ta_err(err, TA_EINPUT,
                        "%s: %d unexpected tensor%s: %s%s (model: %s; does config.json match "
                        "the weights?)", path, extra, extra > 1 ? "s" : "", list,
                        extra > 4 ? ", ..." : "", cfgdesc);
        }
    }

    /* Pass 3: copy, transposing Conv1D weights into our (out, in) layout. */
    for (int i = 0; i < n && rc == TA_OK; i++) {
        const SafeTensorInfo *t = found[i];
        if (!map[i].transpose) {
            rc = safetensors_read_f32(&st, t, map[i].data, err);
            continue;
        }
        size_t rows = (size_t)map[i].shape[0], cols = (size_t)map[i].shape[1];
        if (!tmp) tmp = ta_malloc(4 * C * C * sizeof(float), "transpose buffer");
        TA_ASSERT(rows * cols <= 4 * C * C);
        if ((rc = safetensors_read_f32(&st, t, tmp, err)) != TA_OK) break;
        /* ours (cols, rows) [o][i] = hf (rows, cols) [i][o] */
        float *dst = map[i].data;
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < cols; k++) dst[k * rows + r] = tmp[r * cols + k];
    }
    free(found);
    if (rc != TA_OK) goto end;
    /* Padded vocabulary rows stay zero: they must never affect the loss or sampling. */
    memset(m->params.wte + (size_t)c->vocab_size * C, 0,
           (size_t)(c->padded_vocab_size - c->vocab_size) * C * sizeof(float));

    if (lm_head) {
        int64_t shape[2] = {c->vocab_size, (int64_t)C};
        if (!same_shape(lm_head, shape, 2)) {
            rc = ta_err(err, TA_EINPUT, "%s: tensor \"lm_head.weight\" has shape %s, expected %s",
                        path, safetensors_shape_str(got, sizeof got, lm_head->shape, lm_head->ndim),
                        safetensors_shape_str(want, sizeof want, shape, 2));
            goto end;
        }
        size_t cnt = (size_t)c->vocab_size * C;
        float *head = ta_malloc(cnt * sizeof(float), "lm_head");
        rc = safetensors_read_f32(&st, lm_head, head, err);
        double worst = 0.0;
        for (size_t i = 0; i < cnt && rc == TA_OK; i++) {
            double d = fabs((double)head[i] - (double)m->params.wte[i]);
            if (!(d <= worst)) worst = d;
        }
        free(head);
        if (rc == TA_OK && worst != 0.0)
            rc = ta_err(err, TA_EINPUT,
                        "%s: \"lm_head.weight\" differs from wte.weight (max |diff| %.3g): an "
                        "untied LM head, which GPT-2 (and tinyalign) do not have", path, worst);
    }
end:
    gpt2_params_changed(m); /* a bf16 model re-derives its bf16 weights (also after a
                             * partial load, so the copy always matches the parameters) */
    free(gap);
    free(tmp);
    free(used);
    free(map);
    safetensors_close(&st);
    return rc;
}

/* ---- config.json ---------------------------------------------------------------------- */

/* The first present key among names (NULL-terminated), or NULL. */
static const cJSON *get_any(const cJSON *root, const char *const *names, const char **which) {
    for (; *names; names++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, *names);
        if (j && !cJSON_IsNull(j)) {
            *which = *names;
            return j;
        }
    }
    return NULL;
}

static int read_pos_int(const cJSON *root, const char *const *names, int *out,
                        const char *path, TaError *err) {
    const char *key = names[0];
    const cJSON *j = get_any(root, names, &key);
    if (!j) return ta_err(err, TA_EINPUT, "%s: missing key \"%s\" (a positive integer)", path, names[0]);
    double d = cJSON_IsNumber(j) ? j->valuedouble : -1.0;
    if (!cJSON_IsNumber(j) || !(d >= 1.0) || d > (double)INT_MAX || floor(d) != d) {
        char *s = cJSON_PrintUnformatted(j);
        int rc = ta_err(err, TA_EINPUT, "%s: \"%s\" must be a positive integer, found %s", path,
                        key, s ? s : "?");
        free(s);
        return rc;
    }
    *out = (int)d;
    return TA_OK;
}

/* A reward model: "architectures" holds "GPT2ForSequenceClassification". It must have one
 * label ("num_labels": 1, or an "id2label" of one entry; HF's default is 2 labels, which
 * is a classifier, not a reward model). */
static int read_score_head(const cJSON *root, int *out, const char *path, TaError *err) {
    *out = 0;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures"), *x;
    if (cJSON_IsArray(a))
        cJSON_ArrayForEach(x, a) {
            if (cJSON_IsString(x) && !strcmp(x->valuestring, "GPT2ForSequenceClassification"))
                *out = 1;
        }
    if (!*out) return TA_OK;
    const cJSON *nl = cJSON_GetObjectItemCaseSensitive(root, "num_labels");
    const cJSON *il = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    int labels = 2; /* HF's default: a two-class classifier */
    if (nl) labels = cJSON_IsNumber(nl) ? (int)nl->valuedouble : -1;
    else if (cJSON_IsObject(il)) labels = cJSON_GetArraySize(il);
    if (labels != 1)
        return ta_err(err, TA_EINPUT,
                      "%s: GPT2ForSequenceClassification with %s; a reward model has one label "
                      "(\"num_labels\": 1)", path,
                      labels < 0 ? "a non-numeric \"num_labels\""
                      : !nl && !il ? "no \"num_labels\" (HF's default is 2 labels)"
                                   : "several labels");
    return TA_OK;
}

int model_config_read(GPT2Config *cfg, const char *path, TaError *err) {
    memset(cfg, 0, sizeof *cfg);
    size_t len = 0;
    char *text = ta_read_file(path, &len, err);
    if (!text) return TA_EINPUT;
    int rc = TA_OK;
    const char *endp = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &endp, 0);
    if (!root || !cJSON_IsObject(root)) {
        rc = ta_err(err, TA_EINPUT, "%s: not a JSON object%s (error near byte %zu)", path,
                    root ? "" : ": invalid JSON", endp ? (size_t)(endp - text) : (size_t)0);
        goto end;
    }
    static const char *const K_V[] = {"vocab_size", NULL};
    static const char *const K_T[] = {"n_positions", "n_ctx", "max_position_embeddings", NULL};
    static const char *const K_L[] = {"n_layer", "num_hidden_layers", NULL};
    static const char *const K_H[] = {"n_head", "num_attention_heads", NULL};
    static const char *const K_C[] = {"n_embd", "hidden_size", NULL};
    if ((rc = read_pos_int(root, K_V, &cfg->vocab_size, path, err)) ||
        (rc = read_pos_int(root, K_T, &cfg->max_seq_len, path, err)) ||
        (rc = read_pos_int(root, K_L, &cfg->n_layer, path, err)) ||
        (rc = read_pos_int(root, K_H, &cfg->n_head, path, err)) ||
        (rc = read_pos_int(root, K_C, &cfg->d_model, path, err)))
        goto end;

    if (cfg->d_model % cfg->n_head != 0) {
        rc = ta_err(err, TA_EINPUT, "%s: \"n_embd\" (%d) must be a multiple of \"n_head\" (%d)",
                    path, cfg->d_model, cfg->n_head);
        goto end;
    }
    if ((rc = read_score_head(root, &cfg->score_head, path, err)) != TA_OK) goto end;
    /* Settings our GPT-2 cannot represent: refuse rather than compute something else. */
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (j && !(cJSON_IsString(j) && !strcmp(j->valuestring, "gpt2"))) {
        rc = ta_err(err, TA_EINPUT, "%s: \"model_type\" is %s, expected \"gpt2\"", path,
                    cJSON_IsString(j) ? j->valuestring : "not a string");
        goto end;
    }
    j = cJSON_GetObjectItemCaseSensitive(root, "n_inner");
    if (j && !cJSON_IsNull(j) &&
        !(cJSON_IsNumber(j) && j->valuedouble == 4.0 * cfg->d_model)) {
        rc = ta_err(err, TA_EINPUT, "%s: \"n_inner\" must be null or 4 * n_embd = %d (the MLP "
                    "width tinyalign's GPT-2 uses)", path, 4 * cfg->d_model);
        goto end;
    }
    j = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    if (j && !(cJSON_IsString(j) && (!strcmp(j->valuestring, "gelu_new") ||
                                      !strcmp(j->valuestring, "gelu_pytorch_tanh")))) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: \"activation_function\" is %s, expected \"gelu_new\" (GELU, tanh "
                    "approximation)", path, cJSON_IsString(j) ? j->valuestring : "not a string");
        goto end;
    }
    j = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
    if (j && !(cJSON_IsNumber(j) && fabs(j->valuedouble - 1e-5) <= 1e-12)) {
        rc = ta_err(err, TA_EINPUT, "%s: \"layer_norm_epsilon\" must be 1e-5", path);
        goto end;
    }
    static const struct {
        const char *key;
        int want;
    } FLAGS[] = {{"tie_word_embeddings", 1},
                 {"scale_attn_weights", 1},
                 {"add_cross_attention", 0},
                 {"scale_attn_by_inverse_layer_idx", 0}};
    for (size_t i = 0; i < sizeof FLAGS / sizeof FLAGS[0]; i++) {
        j = cJSON_GetObjectItemCaseSensitive(root, FLAGS[i].key);
        if (j && !(cJSON_IsBool(j) && cJSON_IsTrue(j) == FLAGS[i].want)) {
            rc = ta_err(err, TA_EINPUT, "%s: \"%s\" must be %s (tinyalign's GPT-2 supports no "
                        "other)", path, FLAGS[i].key, FLAGS[i].want ? "true" : "false");
            goto end;
        }
    }
end:
    cJSON_Delete(root);
    free(text);
    return rc;
}

int model_config_read_ids(const char *path, ModelTokenIds *ids, TaError *err) {
    *ids = (ModelTokenIds){-1, -1, -1};
    GPT2Config cfg;
    int rc = model_config_read(&cfg, path, err);
    if (rc != TA_OK) return rc;
    size_t len = 0;
    char *text = ta_read_file(path, &len, err);
    if (!text) return TA_EINPUT;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    static const char *const KEYS[3] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    int *dst[3] = {&ids->bos, &ids->eos, &ids->pad};
    for (int i = 0; i < 3 && rc == TA_OK; i++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, KEYS[i]);
        if (!j || cJSON_IsNull(j)) continue;
        double d = cJSON_IsNumber(j) ? j->valuedouble : -1.0;
        if (!(d >= 0 && d < cfg.vocab_size && floor(d) == d))
            rc = ta_err(err, TA_EINPUT, "%s: \"%s\" must be a token id in [0, %d) (vocab_size) "
                        "or null", path, KEYS[i], cfg.vocab_size);
        else
            *dst[i] = (int)d;
    }
    cJSON_Delete(root);
    return rc;
}

int model_config_write(const GPT2Config *cfg, const char *path, TaDigest *digest, TaError *err) {
    return model_config_write_ids(cfg, NULL, path, digest, err);
}

int model_config_write_ids(const GPT2Config *cfg, const ModelTokenIds *ids, const char *path,
                           TaDigest *digest, TaError *err) {
    cJSON *root = cJSON_CreateObject();
    const char *arch = cfg->score_head ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel";
    cJSON_AddItemToObject(root, "architectures", cJSON_CreateStringArray(&arch, 1));
    if (cfg->score_head) { /* one label: a scalar reward */
        cJSON_AddNumberToObject(root, "num_labels", 1);
        cJSON_AddItemToObject(cJSON_AddObjectToObject(root, "id2label"), "0",
                              cJSON_CreateString("LABEL_0"));
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(root, "label2id"), "LABEL_0", 0);
    }
    cJSON_AddStringToObject(root, "model_type", "gpt2");
    cJSON_AddNumberToObject(root, "vocab_size", cfg->vocab_size);
    cJSON_AddNumberToObject(root, "n_positions", cfg->max_seq_len);
    cJSON_AddNumberToObject(root, "n_ctx", cfg->max_seq_len);
    cJSON_AddNumberToObject(root, "n_embd", cfg->d_model);
    cJSON_AddNumberToObject(root, "n_layer", cfg->n_layer);
    cJSON_AddNumberToObject(root, "n_head", cfg->n_head);
    cJSON_AddNullToObject(root, "n_inner");
    cJSON_AddStringToObject(root, "activation_function", "gelu_new");
    cJSON_AddNumberToObject(root, "layer_norm_epsilon", 1e-5);
    cJSON_AddBoolToObject(root, "tie_word_embeddings", 1);
    if (ids && ids->bos >= 0) cJSON_AddNumberToObject(root, "bos_token_id", ids->bos);
    if (ids && ids->eos >= 0) cJSON_AddNumberToObject(root, "eos_token_id", ids->eos);
    if (ids && ids->pad >= 0) cJSON_AddNumberToObject(root, "pad_token_id", ids->pad);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    cJSON_AddStringToObject(root, "tinyalign_version", TA_VERSION);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    TA_ASSERT(text);
    size_t n = strlen(text);
    text = ta_realloc(text, n + 2, "config.json");
    text[n++] = '\n';
    int rc = ta_write_file_atomic(path, text, n, err);
    if (digest) *digest = (TaDigest){.bytes = n, .crc = ta_crc32(0, text, n)};
    free(text);
    return rc;
}

/* ---- model directories ------------------------------------------------------------------ */

static int join(char *out, size_t cap, const char *dir, const char *file, TaError *err) {
    if ((size_t)snprintf(out, cap, "%s/%s", dir, file) >= cap)
        return ta_err(err, TA_EINPUT, "%s: path too long", dir);
    return TA_OK;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int model_load_dir(GPT2 *m, const char *dir, int with_grads, TaError *err) {
    char cpath[4096], wpath[4096];
    GPT2Config cfg;
    memset(m, 0, sizeof *m);
    int rc;
    if ((rc = join(cpath, sizeof cpath, dir, "config.json", err)) ||
        (rc = join(wpath, sizeof wpath, dir, "model.safetensors", err)))
        return rc;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ta_err(err, TA_EINPUT, "%s: not a directory (expected a model directory with "
                      "config.json and model.safetensors)", dir);
    if ((rc = model_config_read(&cfg, cpath, err)) != TA_OK) return rc;
    TaError e2 = {0};
    if (gpt2_config_check(&cfg, &e2) != TA_OK)
        return ta_err(err, TA_EINPUT, "%s: %s", cpath, e2.msg);
    if (!file_exists(wpath)) {
        char bin[4096];
        join(bin, sizeof bin, dir, "pytorch_model.bin", NULL);
        if (file_exists(bin))
            return ta_err(err, TA_EINPUT,
                          "%s: not found (the directory has pytorch_model.bin: convert it "
                          "first with `python3 tools/hf_gpt2.py bin2st --model %s`)", wpath, dir);
    }
    gpt2_init(m, &cfg, with_grads);
    if ((rc = model_load_safetensors(m, wpath, err)) != TA_OK) gpt2_free(m);
    return rc;
}

int model_load_reward_dir(GPT2 *m, const char *dir, int with_grads, TaError *err) {
    int rc = model_load_dir(m, dir, with_grads, err);
    if (rc == TA_OK && !m->config.score_head) {
        gpt2_free(m);
        return ta_err(err, TA_EINPUT,
                      "%s is not a reward model: it has no scalar head (score.weight; config.json "
                      "\"architectures\": [\"GPT2ForSequenceClassification\"]); train one with "
                      "objective.type \"reward\"", dir);
    }
    return rc;
}

int model_save_dir(const GPT2 *m, const char *dir, TaError *err) {
    return model_save_dir_ids(m, NULL, dir, err);
}

int model_save_dir_ids(const GPT2 *m, const ModelTokenIds *ids, const char *dir, TaError *err) {
    char cpath[4096], wpath[4096];
    int rc;
    if ((rc = join(cpath, sizeof cpath, dir, "config.json", err)) ||
        (rc = join(wpath, sizeof wpath, dir, "model.safetensors", err)) ||
        (rc = ta_mkdirs(dir, err)) || (rc = model_save_safetensors(m, wpath, NULL, err)))
        return rc;
    return model_config_write_ids(&m->config, ids, cpath, NULL, err);
}

/* ---- AdamW state ------------------------------------------------------------------------- */

static void config_key(const GPT2Config *c, char *buf, size_t cap) {
    snprintf(buf, cap, "n_layer=%d n_head=%d n_embd=%d vocab_size=%d padded_vocab_size=%d "
             "n_positions=%d%s", c->n_layer, c->n_head, c->d_model, c->vocab_size,
             c->padded_vocab_size, c->max_seq_len, c->score_head ? " score_head=1" : "");
}

int optim_save_safetensors(const AdamW *o, const GPT2 *m, const char *path, TaDigest *digest,
                           TaError *err) {
    TA_ASSERT(o->n == m->num_params && o->m && o->v);
    char step[32], np[32], cfg[256];
    snprintf(step, sizeof step, "%ld", o->step);
    snprintf(np, sizeof np, "%zu", o->n);
    config_key(&m->config, cfg, sizeof cfg);
    SafeWriter w;
    safetensors_writer_init(&w);
    safetensors_writer_meta(&w, "format", "tinyalign-adamw");
    safetensors_writer_meta(&w, "version", "1");
    safetensors_writer_meta(&w, "step", step);
    safetensors_writer_meta(&w, "num_params", np);
    safetensors_writer_meta(&w, "config", cfg);
    int64_t shape[1] = {(int64_t)o->n};
    safetensors_writer_add(&w, "m", shape, 1, o->m);
    safetensors_writer_add(&w, "v", shape, 1, o->v);
    int rc = safetensors_writer_write(&w, path, digest, err);
    safetensors_writer_free(&w);
    return rc;
}

int optim_load_safetensors(AdamW *o, const GPT2 *m, const char *path, TaError *err) {
    TA_ASSERT(o->n == m->num_params && o->m && o->v);
    SafeTensors st;
    char *gap = NULL; /* reported after m and v are found: a deleted entry leaves a gap */
    int rc = safetensors_open_gaps(&st, path, &gap, err);
    if (rc != TA_OK) return rc;
    const char *fmt = safetensors_meta(&st, "format");
    const char *ver = safetensors_meta(&st, "version");
    const char *cfg = safetensors_meta(&st, "config");
    const char *step = safetensors_meta(&st, "step");
    char want[256];
    config_key(&m->config, want, sizeof want);
    char *endp = NULL;
    long s = 0;
    if (step) {
        errno = 0;
        s = strtol(step, &endp, 10);
    }
    int64_t shape[1] = {(int64_t)o->n};
    if (!fmt || strcmp(fmt, "tinyalign-adamw") != 0) {
        rc = ta_err(err, TA_EINPUT, "%s: not an AdamW state file (metadata \"format\" is %s%s%s, "
                    "expected \"tinyalign-adamw\")", path, fmt ? "\"" : "", fmt ? fmt : "missing",
                    fmt ? "\"" : "");
    } else if (!ver || strcmp(ver, "1") != 0) {
        rc = ta_err(err, TA_EINPUT, "%s: AdamW state version %s, this build reads version 1",
                    path, ver ? ver : "(missing)");
    } else if (!cfg || strcmp(cfg, want) != 0) {
        rc = ta_err(err, TA_EINPUT, "%s: AdamW state was written for a model with %s, but this "
                    "model has %s", path, cfg ? cfg : "(unknown dimensions)", want);
    } else if (!step || errno || *endp || endp == step || s < 0) {
        rc = ta_err(err, TA_EINPUT, "%s: metadata \"step\" is %s, expected a non-negative "
                    "integer", path, step ? step : "missing");
    } else if ((rc = safetensors_get_f32(&st, "m", shape, 1, o->m, err)) == TA_OK &&
               (rc = safetensors_get_f32(&st, "v", shape, 1, o->v, err)) == TA_OK) {
        if (gap) rc = ta_err(err, TA_EINPUT, "%s", gap);
        else o->step = s;
    }
    free(gap);
    safetensors_close(&st);
    return rc;
}

int model_load_llmc(GPT2 *m, const char *path, int with_grads, TaError *err) {
    memset(m, 0, sizeof *m);
    size_t len;
    char *buf = ta_read_file(path, &len, err);
    if (!buf) return TA_EINPUT;
    int32_t h[256];
    int rc = TA_OK;
    if (len < sizeof h) {
        rc = ta_err(err, TA_EINPUT, "%s: %zu bytes, too short for llm.c's 1024-byte header", path, len);
        goto end;
    }
    memcpy(h, buf, sizeof h);
    if (h[0] != 20240326 || (h[1] != 1 && h[1] != 3)) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: not an llm.c model file (magic %d, version %d; expected 20240326 and "
                    "version 1 or 3)", path, h[0], h[1]);
        goto end;
    }
    GPT2Config cfg = {.max_seq_len = h[2], .vocab_size = h[3], .n_layer = h[4], .n_head = h[5],
                      .d_model = h[6]};
    int vp_file = h[1] == 3 ? h[7] : h[3];
    if ((rc = gpt2_config_check(&cfg, err)) != TA_OK) {
        char inner[1024];
        snprintf(inner, sizeof inner, "%s", err->msg);
        rc = ta_err(err, TA_EINPUT, "%s: header: %s", path, inner);
        goto end;
    }
    if (vp_file < cfg.vocab_size) {
        rc = ta_err(err, TA_EINPUT, "%s: padded vocab %d < vocab %d", path, vp_file, cfg.vocab_size);
        goto end;
    }
    gpt2_init(m, &cfg, with_grads);
    const size_t C = (size_t)cfg.d_model;
    const size_t wte_ours = m->param_sizes[P_WTE], wte_file = (size_t)vp_file * C;
    const size_t rest = m->num_params - wte_ours;
    const size_t want = sizeof h + (wte_file + rest) * sizeof(float);
    if (len != want) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: %zu bytes, but the header (L=%d NH=%d C=%d V=%d Vp=%d maxT=%d) needs "
                    "exactly %zu", path, len, cfg.n_layer, cfg.n_head, cfg.d_model,
                    cfg.vocab_size, vp_file, cfg.max_seq_len, want);
        gpt2_free(m);
        goto end;
    }
    const float *src = (const float *)(buf + sizeof h);
    /* wte: the V real rows; our padding rows stay zero */
    memcpy(m->params.wte, src, (size_t)cfg.vocab_size * C * sizeof(float));
    /* everything after wte is in the same order and layout as our slab */
    memcpy(m->params.wte + wte_ours, src + wte_file, rest * sizeof(float));
end:
    free(buf);
    return rc;
}
