/* jsonl_dataset.c — TRL-format JSONL datasets (SFT, preference, multi-response): read,
 * validate, tokenize, truncate, hold in memory, and fill Batches (include/tinyalign/data.h).
 *
 * Formats, one JSON object per line (blank lines skipped, unknown fields ignored):
 *   SFT         {"prompt": str, "completion": str}
 *   preference  {"prompt": str, "chosen": str, "rejected": str, "weight"?: number >= 0}
 *   multi       {"prompt": str, "responses": [{"text": str, "score"?: number,
 *                                              "embedding"?: [number, ...]}, ...]}
 *
 * Sequence of one (prompt, response) row:
 *   prompt_ids = encode(prompt), resp_ids = encode(response), each encoded on its own
 *   (the tokenizer adds no specials), then  seq = [BOS] prompt_ids resp_ids [EOS]
 *   with BOS only when the tokenizer has one; the tokenizer must have an EOS.
 * Truncation, in this order:
 *   1. prompt: when len([BOS] + prompt_ids) > max_prompt_len, prompt_ids is cut to
 *      max_prompt_len - (1 if BOS) tokens: keep_end keeps its last tokens (those next to
 *      the response), keep_start its first ones. BOS always stays in front. (TRL cuts the
 *      BOS away with the prompt's start in keep_end mode; we do not.) The chosen and the
 *      rejected row of a pair, and all responses of a multi prompt, share the cut.
 *   2. response: when the whole row still exceeds max_len, resp_ids + [EOS] is cut at its
 *      end so the row is exactly max_len tokens; the EOS is then absent (the model is not
 *      taught to stop at a point where the text did not stop).
 *   It is an error (naming file:line) when not one response token fits after step 1,
 *   which can only happen when max_prompt_len >= max_len.
 *   An example counts as truncated (dataset_num_truncated) when step 1 or 2 cut any of
 *   its rows.
 * Batch rows (dataset_fill), for a row of L = len(seq) tokens and P = len([BOS] + prompt):
 *   tokens[t] = seq[t], targets[t] = seq[t+1] for t < L-1; tokens = pad id (tokenizer pad,
 *   else EOS) and targets = -1 for t >= L-1; loss_mask[t] = 1 iff P-1 <= t < L-1 (the
 *   target is a response token or the EOS); lengths = L-1; T = max over rows of L-1.
 *   Preference: rows [0, n) chosen, [n, 2n) rejected, weights = the pair's weight on
 *   both. Multi: every (prompt, response) pair is one SFT example.
 * Bad input is TA_EINPUT with one message "FILE:LINE[:COL]: ..." naming the field.
 * Storage: every row's tokens in one int array, a Row table (offset, length, prompt
 * length), per-example weights and lines; multi text in one char arena, embeddings in one
 * float arena.
 * Not here: conversational (list-of-messages) prompts or chat templates, packing several
 * examples into one row, streaming datasets larger than memory, the token-shard loader
 * (token_data.c), printing (the library returns counts; the CLI prints).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/jsonl.h"
#include "tinyalign/data.h"
#include "tinyalign/tokenizer.h"

typedef struct {
    int64_t off;        /* into tokens */
    int32_t len;        /* L = len(seq) */
    int32_t prompt_len; /* P = len([BOS] + kept prompt) */
} Row;

typedef struct {
    int64_t text_off;   /* into text */
    int64_t first_resp; /* into resps */
    int32_t n_resp;
    int32_t unused;
} MultiPrompt;

typedef struct {
    int64_t text_off; /* into text */
    int64_t emb_off;  /* into emb */
    double score;
    int32_t emb_dim;  /* 0: none */
    int32_t has_score;
} MultiResp;

struct Dataset {
    DatasetKind kind;
    DatasetOptions opt;
    char *path;
    int tokenized;             /* 0: DS_MULTI loaded without a tokenizer */
    int bos, eos, pad, vocab;  /* bos -1 when the tokenizer has none */
    size_t n_examples, n_truncated;
    size_t n_weighted; /* preference lines with a "weight" field */
    uint64_t hash;
    /* token rows: example i is row i (SFT, multi) or rows 2i, 2i+1 (preference) */
    int *tokens;     /* (n_tokens) every row's seq back to back */
    size_t n_tokens, cap_tokens;
    Row *rows;       /* (n_rows) */
    size_t n_rows, cap_rows;
    float *weights;  /* (n_examples) preference only, else NULL */
    long *lines;     /* (n_examples) source line of each example */
    size_t cap_weights, cap_lines;
    /* multi-response content */
    char *text;      /* (n_text) NUL-terminated strings back to back */
    size_t n_text, cap_text;
    MultiPrompt *prompts;
    size_t n_prompts, cap_prompts;
    MultiResp *resps;
    size_t n_resps, cap_resps;
    float *emb;      /* (n_emb) embeddings back to back */
    size_t n_emb, cap_emb;
    int emb_dim;     /* shared embedding length, 0 until the first one */
    long emb_line;   /* line of the first embedding */
};

/* Grows an array of elem-byte items holding `used` items so it has room for `need`. */
static void *grow(void *p, size_t used, size_t *cap, size_t need, size_t elem, const char *what) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = ta_malloc(c * elem, what);
    if (used) memcpy(q, p, used * elem);
    free(p);
    *cap = c;
    return q;
}

/* ---- per-line context and field access ----------------------------------------------- */
typedef struct {
    Dataset *d;
    const Tokenizer *tok;
    long line;
} Loader;

static const char *kind_name(DatasetKind k) {
    return k == DS_SFT ? "sft" : k == DS_PREFERENCE ? "preference" : "multi";
}

static const char *kind_shape(DatasetKind k) {
    return k == DS_SFT ? "{\"prompt\": ..., \"completion\": ...}"
           : k == DS_PREFERENCE ? "{\"prompt\": ..., \"chosen\": ..., \"rejected\": ...}"
                                : "{\"prompt\": ..., \"responses\": [{\"text\": ...}, ...]}";
}

/* A hint when the object looks like another format's example. */
static void format_hint(const Loader *L, const cJSON *obj, char *out, size_t cap) {
    int k = -1;
    if (cJSON_GetObjectItemCaseSensitive(obj, "chosen")) k = DS_PREFERENCE;
    else if (cJSON_GetObjectItemCaseSensitive(obj, "responses")) k = DS_MULTI;
    else if (cJSON_GetObjectItemCaseSensitive(obj, "completion")) k = DS_SFT;
    if (k >= 0 && k != (int)L->d->kind)
        snprintf(out, cap, "; this looks like a %s example: is data.format right?",
                 kind_name((DatasetKind)k));
    else
        out[0] = '\0';
}

static int missing(const Loader *L, const cJSON *obj, const char *name, TaError *err) {
    char hint[128];
    format_hint(L, obj, hint, sizeof hint);
    return ta_err(err, TA_EINPUT, "%s:%ld: missing field \"%s\" (%s examples are %s)%s",
                  L->d->path, L->line, name, kind_name(L->d->kind), kind_shape(L->d->kind),
                  hint);
}

/* A required string: present, a string, non-empty, valid UTF-8. name is the field's path
 * in messages ("prompt", "responses[2].text"). */
static int get_text(const Loader *L, const cJSON *obj, const cJSON *v, const char *name,
                    const char **out, TaError *err) {
    if (!v) return missing(L, obj, name, err);
    if (!cJSON_IsString(v) || !v->valuestring)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" must be a string, found %s",
                      L->d->path, L->line, name, jsonl_type_name(v));
    const char *s = v->valuestring;
    if (!*s)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" is empty", L->d->path, L->line,
                      name);
    long bad = jsonl_utf8_invalid_at(s, strlen(s));
    if (bad >= 0)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" is not valid UTF-8 (byte %ld: 0x%02X)",
                      L->d->path, L->line, name, bad + 1, (unsigned)(unsigned char)s[bad]);
    *out = s;
    return TA_OK;
}

/* An optional finite number; *present = 0 when the field is absent. */
static int get_number(const Loader *L, const cJSON *v, const char *name, double *out,
                      int *present, TaError *err) {
    *present = 0;
    if (!v) return TA_OK;
    if (!cJSON_IsNumber(v))
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" must be a number, found %s",
                      L->d->path, L->line, name, jsonl_type_name(v));
    if (!isfinite(v->valuedouble))
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" must be a finite number",
                      L->d->path, L->line, name);
    *out = v->valuedouble;
    *present = 1;
    return TA_OK;
}

/* ---- tokenization and truncation -------------------------------------------------------- */
static int encode(const Loader *L, const char *name, const char *s, int **ids, int *n,
                  TaError *err) {
    TaError e = {0};
    int rc = tokenizer_encode(L->tok, s, strlen(s), ids, n, &e);
    if (rc != TA_OK)
        return ta_err(err, rc, "%s:%ld: field \"%s\": %s", L->d->path, L->line, name, e.msg);
    return TA_OK;
}

/* Step 1 of the truncation: which prompt tokens [*start, *start + *count) are kept. */
static int cut_prompt(const Dataset *d, int n_prompt, int *start, int *count) {
    int room = d->opt.max_prompt_len - (d->bos >= 0); /* >= 0: max_prompt_len >= 1 */
    if (n_prompt <= room) {
        *start = 0;
        *count = n_prompt;
        return 0;
    }
    *count = room;
    *start = d->opt.truncation_mode == TRUNC_KEEP_END ? n_prompt - room : 0;
    return 1;
}

/* Appends one row [BOS] prompt resp [EOS] (step 2 of the truncation applied); sets *cut
 * when the response was cut. name is the response field for messages. */
static int add_row(const Loader *L, const int *prompt, int n_prompt, int n_prompt_total,
                   const int *resp, int n_resp, const char *name, int *cut, TaError *err) {
    Dataset *d = L->d;
    int has_bos = d->bos >= 0;
    int P = has_bos + n_prompt;
    int budget = d->opt.max_len - P; /* room for response tokens + EOS */
    if (budget < 1)
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: response \"%s\" does not fit in max_len=%d after the prompt is "
                      "cut to %d tokens (the prompt has %d, max_prompt_len=%d; max_prompt_len "
                      "must be < max_len)",
                      d->path, L->line, name, d->opt.max_len, P, n_prompt_total + has_bos,
                      d->opt.max_prompt_len);
    int keep = n_resp + 1 <= budget ? n_resp + 1 : budget;
    *cut = n_resp + 1 > budget;
    int len = P + keep;
    if (len < 2)
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: \"prompt\" and \"%s\" encode to %d token in all: nothing to "
                      "predict", d->path, L->line, name, len);
    d->tokens = grow(d->tokens, d->n_tokens, &d->cap_tokens, d->n_tokens + (size_t)len,
                     sizeof(int), "dataset tokens");
    d->rows = grow(d->rows, d->n_rows, &d->cap_rows, d->n_rows + 1, sizeof(Row), "dataset rows");
    int *s = d->tokens + d->n_tokens;
    int k = 0;
    if (has_bos) s[k++] = d->bos;
    memcpy(s + k, prompt, (size_t)n_prompt * sizeof(int));
    k += n_prompt;
    int nr = keep < n_resp ? keep : n_resp;
    memcpy(s + k, resp, (size_t)nr * sizeof(int));
    k += nr;
    if (keep == n_resp + 1) s[k++] = d->eos;
    TA_ASSERT(k == len);
    d->rows[d->n_rows++] = (Row){.off = (int64_t)d->n_tokens, .len = len, .prompt_len = P};
    d->n_tokens += (size_t)len;
    return TA_OK;
}

/* Records one example's line (and weight for preference). */
static void add_example(const Loader *L, float weight, int truncated) {
    Dataset *d = L->d;
    d->lines = grow(d->lines, d->n_examples, &d->cap_lines, d->n_examples + 1, sizeof(long),
                    "dataset lines");
    if (d->kind == DS_PREFERENCE) {
        d->weights = grow(d->weights, d->n_examples, &d->cap_weights, d->n_examples + 1,
                          sizeof(float), "dataset weights");
        d->weights[d->n_examples] = weight;
    }
    d->lines[d->n_examples++] = L->line;
    d->n_truncated += truncated != 0;
}

/* ---- the three formats --------------------------------------------------------------------- */
static int load_sft(const Loader *L, const cJSON *obj, TaError *err) {
    const char *prompt = NULL, *completion = NULL;
    int rc;
    if ((rc = get_text(L, obj, cJSON_GetObjectItemCaseSensitive(obj, "prompt"), "prompt",
                       &prompt, err)) ||
        (rc = get_text(L, obj, cJSON_GetObjectItemCaseSensitive(obj, "completion"),
                       "completion", &completion, err)))
        return rc;
    int *p = NULL, *c = NULL, np = 0, nc = 0;
    if ((rc = encode(L, "prompt", prompt, &p, &np, err))) goto end;
    if ((rc = encode(L, "completion", completion, &c, &nc, err))) goto end;
    int start, count, cut = 0;
    int pcut = cut_prompt(L->d, np, &start, &count);
    if ((rc = add_row(L, p + start, count, np, c, nc, "completion", &cut, err))) goto end;
    add_example(L, 1.0f, pcut || cut);
end:
    free(p);
    free(c);
    return rc;
}

static int load_preference(const Loader *L, const cJSON *obj, TaError *err) {
    const char *prompt = NULL, *chosen = NULL, *rejected = NULL;
    int rc;
    if ((rc = get_text(L, obj, cJSON_GetObjectItemCaseSensitive(obj, "prompt"), "prompt",
                       &prompt, err)) ||
        (rc = get_text(L, obj, cJSON_GetObjectItemCaseSensitive(obj, "chosen"), "chosen",
                       &chosen, err)) ||
        (rc = get_text(L, obj, cJSON_GetObjectItemCaseSensitive(obj, "rejected"), "rejected",
                       &rejected, err)))
        return rc;
    if (!strcmp(chosen, rejected))
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: fields \"chosen\" and \"rejected\" are identical (a pair must "
                      "differ)", L->d->path, L->line);
    double w = 1.0;
    int has_w;
    const cJSON *wv = cJSON_GetObjectItemCaseSensitive(obj, "weight");
    if (wv && !cJSON_IsNumber(wv))
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"weight\" must be a number >= 0, found %s",
                      L->d->path, L->line, jsonl_type_name(wv));
    if ((rc = get_number(L, wv, "weight", &w, &has_w, err))) return rc;
    if (!(w >= 0.0))
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"weight\" must be a number >= 0, found %g",
                      L->d->path, L->line, w);
    if (w > 3.4e38)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"weight\" = %g does not fit a float",
                      L->d->path, L->line, w);
    int *p = NULL, *c = NULL, *r = NULL, np = 0, nc = 0, nr = 0;
    if ((rc = encode(L, "prompt", prompt, &p, &np, err))) goto end;
    if ((rc = encode(L, "chosen", chosen, &c, &nc, err))) goto end;
    if ((rc = encode(L, "rejected", rejected, &r, &nr, err))) goto end;
    int start, count, cut_c = 0, cut_r = 0;
    int pcut = cut_prompt(L->d, np, &start, &count);
    if ((rc = add_row(L, p + start, count, np, c, nc, "chosen", &cut_c, err))) goto end;
    if ((rc = add_row(L, p + start, count, np, r, nr, "rejected", &cut_r, err))) {
        L->d->n_rows--; /* drop the chosen row: the pair is not loaded */
        L->d->n_tokens = (size_t)L->d->rows[L->d->n_rows].off;
        goto end;
    }
    add_example(L, (float)w, pcut || cut_c || cut_r);
    L->d->n_weighted += has_w != 0;
end:
    free(p);
    free(c);
    free(r);
    return rc;
}

/* Appends a NUL-terminated copy of s to the text arena; returns its offset. */
static int64_t add_text(Dataset *d, const char *s) {
    size_t n = strlen(s) + 1;
    d->text = grow(d->text, d->n_text, &d->cap_text, d->n_text + n, 1, "dataset text");
    memcpy(d->text + d->n_text, s, n);
    d->n_text += n;
    return (int64_t)(d->n_text - n);
}

/* One response object of a multi example: validates it and stores text, score, embedding. */
static int load_response(const Loader *L, const cJSON *item, int j, const char **text,
                         TaError *err) {
    Dataset *d = L->d;
    char name[64];
    snprintf(name, sizeof name, "responses[%d]", j);
    if (!cJSON_IsObject(item))
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: field \"%s\" must be an object with a \"text\" string, found %s",
                      d->path, L->line, name, jsonl_type_name(item));
    char fname[96];
    snprintf(fname, sizeof fname, "%s.text", name);
    int rc;
    if ((rc = get_text(L, item, cJSON_GetObjectItemCaseSensitive(item, "text"), fname, text,
                       err)))
        return rc;
    MultiResp r = {0};
    int has = 0;
    snprintf(fname, sizeof fname, "%s.score", name);
    if ((rc = get_number(L, cJSON_GetObjectItemCaseSensitive(item, "score"), fname, &r.score,
                         &has, err)))
        return rc;
    r.has_score = has;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(item, "embedding");
    snprintf(fname, sizeof fname, "%s.embedding", name);
    if (e) {
        if (!cJSON_IsArray(e))
            return ta_err(err, TA_EINPUT,
                          "%s:%ld: field \"%s\" must be an array of numbers, found %s", d->path,
                          L->line, fname, jsonl_type_name(e));
        int dim = cJSON_GetArraySize(e);
        if (dim == 0)
            return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" is empty", d->path, L->line,
                          fname);
        if (d->emb_dim && dim != d->emb_dim)
            return ta_err(err, TA_EINPUT,
                          "%s:%ld: field \"%s\" has %d numbers, but the first embedding "
                          "(line %ld) has %d; every embedding in a file has the same length",
                          d->path, L->line, fname, dim, d->emb_line, d->emb_dim);
        d->emb = grow(d->emb, d->n_emb, &d->cap_emb, d->n_emb + (size_t)dim, sizeof(float),
                      "dataset embeddings");
        int k = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, e) {
            if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || fabs(x->valuedouble) > 3.4e38)
                return ta_err(err, TA_EINPUT,
                              "%s:%ld: field \"%s[%d]\" must be a finite number, found %s",
                              d->path, L->line, fname, k,
                              cJSON_IsNumber(x) ? "an out-of-range number" : jsonl_type_name(x));
            d->emb[d->n_emb + (size_t)k++] = (float)x->valuedouble;
        }
        if (!d->emb_dim) d->emb_dim = dim, d->emb_line = L->line;
        r.emb_off = (int64_t)d->n_emb;
        r.emb_dim = dim;
        d->n_emb += (size_t)dim;
    }
    r.text_off = add_text(d, *text);
    d->resps = grow(d->resps, d->n_resps, &d->cap_resps, d->n_resps + 1, sizeof(MultiResp),
                    "dataset responses");
    d->resps[d->n_resps++] = r;
    return TA_OK;
}

static int load_multi(const Loader *L, const cJSON *obj, TaError *err) {
    Dataset *d = L->d;
    const char *prompt = NULL;
    int rc;
    if ((rc = get_text(L, obj, cJSON_GetObjectItemCaseSensitive(obj, "prompt"), "prompt",
                       &prompt, err)))
        return rc;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(obj, "responses");
    if (!rs) return missing(L, obj, "responses", err);
    if (!cJSON_IsArray(rs))
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: field \"responses\" must be an array of objects, found %s",
                      d->path, L->line, jsonl_type_name(rs));
    int n = cJSON_GetArraySize(rs);
    if (n < 1)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"responses\" is empty (need >= 1 item)",
                      d->path, L->line);
    /* Undo state for a failure half-way through the line. */
    size_t n_text0 = d->n_text, n_resps0 = d->n_resps, n_emb0 = d->n_emb, n_rows0 = d->n_rows;
    size_t n_tokens0 = d->n_tokens, n_ex0 = d->n_examples, n_trunc0 = d->n_truncated;
    int emb_dim0 = d->emb_dim;
    int *p = NULL, np = 0, start = 0, count = 0, pcut = 0;
    MultiPrompt mp = {.text_off = add_text(d, prompt), .first_resp = (int64_t)d->n_resps,
                      .n_resp = n};
    if (L->tok) {
        if ((rc = encode(L, "prompt", prompt, &p, &np, err))) goto end;
        pcut = cut_prompt(d, np, &start, &count);
    }
    int j = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, rs) {
        const char *text = NULL;
        if ((rc = load_response(L, item, j, &text, err))) goto end;
        int cut = 0;
        if (L->tok) {
            char name[64];
            snprintf(name, sizeof name, "responses[%d].text", j);
            int *r = NULL, nr = 0;
            if ((rc = encode(L, name, text, &r, &nr, err))) goto end;
            rc = add_row(L, p + start, count, np, r, nr, name, &cut, err);
            free(r);
            if (rc) goto end;
        }
        add_example(L, 1.0f, pcut || cut);
        j++;
    }
    d->prompts = grow(d->prompts, d->n_prompts, &d->cap_prompts, d->n_prompts + 1,
                      sizeof(MultiPrompt), "dataset prompts");
    d->prompts[d->n_prompts++] = mp;
end:
    if (rc) {
        d->n_text = n_text0, d->n_resps = n_resps0, d->n_emb = n_emb0, d->n_rows = n_rows0;
        d->n_tokens = n_tokens0, d->n_examples = n_ex0, d->n_truncated = n_trunc0;
        d->emb_dim = emb_dim0;
    }
    free(p);
    return rc;
}

/* ---- hash: FNV-1a 64 over explicit little-endian bytes (same on every machine) ------- */
static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}
static uint64_t fnv_u64(uint64_t h, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    return fnv_bytes(h, b, 8);
}
static uint64_t fnv_f32(uint64_t h, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return fnv_u64(h, u);
}

/* Covers the format, options, special ids and vocabulary size, then every row's length,
 * prompt length (which fixes the loss mask) and tokens, every weight, and for multi
 * datasets the text, scores and embeddings. */
static uint64_t compute_hash(const Dataset *d) {
    static const char tag[] = "tinyalign-jsonl-dataset-v1";
    uint64_t h = fnv_bytes(0xCBF29CE484222325ull, tag, sizeof tag - 1);
    h = fnv_u64(h, (uint64_t)d->kind);
    h = fnv_u64(h, (uint64_t)d->tokenized);
    if (d->tokenized) {
        h = fnv_u64(h, (uint64_t)(int64_t)d->opt.max_len);
        h = fnv_u64(h, (uint64_t)(int64_t)d->opt.max_prompt_len);
        h = fnv_u64(h, (uint64_t)d->opt.truncation_mode);
        h = fnv_u64(h, (uint64_t)(int64_t)d->bos);
        h = fnv_u64(h, (uint64_t)(int64_t)d->eos);
        h = fnv_u64(h, (uint64_t)(int64_t)d->pad);
        h = fnv_u64(h, (uint64_t)(int64_t)d->vocab);
    }
    h = fnv_u64(h, d->n_examples);
    h = fnv_u64(h, d->n_rows);
    for (size_t r = 0; r < d->n_rows; r++) {
        const Row *row = &d->rows[r];
        h = fnv_u64(h, (uint64_t)row->len);
        h = fnv_u64(h, (uint64_t)row->prompt_len);
        for (int t = 0; t < row->len; t++)
            h = fnv_u64(h, (uint64_t)(uint32_t)d->tokens[row->off + t]);
    }
    if (d->weights)
        for (size_t i = 0; i < d->n_examples; i++) h = fnv_f32(h, d->weights[i]);
    if (d->kind == DS_MULTI) {
        h = fnv_u64(h, d->n_prompts);
        h = fnv_bytes(h, d->text, d->n_text);
        for (size_t i = 0; i < d->n_prompts; i++) h = fnv_u64(h, (uint64_t)d->prompts[i].n_resp);
        for (size_t i = 0; i < d->n_resps; i++) {
            const MultiResp *r = &d->resps[i];
            uint64_t sb;
            memcpy(&sb, &r->score, 8);
            h = fnv_u64(h, (uint64_t)r->has_score);
            h = fnv_u64(h, r->has_score ? sb : 0);
            h = fnv_u64(h, (uint64_t)r->emb_dim);
            for (int k = 0; k < r->emb_dim; k++) h = fnv_f32(h, d->emb[r->emb_off + k]);
        }
    }
    return h;
}

/* ---- public API ---------------------------------------------------------------------------- */
int dataset_load(Dataset **out, const char *path, DatasetKind kind, const Tokenizer *tok,
                 const DatasetOptions *opt, TaError *err) {
    *out = NULL;
    if (kind != DS_SFT && kind != DS_PREFERENCE && kind != DS_MULTI)
        return ta_err(err, TA_EINPUT, "%s: unknown dataset kind %d", path, (int)kind);
    if (!tok && kind != DS_MULTI)
        return ta_err(err, TA_EINPUT, "%s: a %s dataset needs a tokenizer", path,
                      kind_name(kind));
    if (tok) {
        if (!opt) return ta_err(err, TA_EINPUT, "%s: dataset options missing", path);
        if (opt->max_len < 2)
            return ta_err(err, TA_EINPUT, "%s: max_len=%d, expected >= 2", path, opt->max_len);
        if (opt->max_prompt_len < 1)
            return ta_err(err, TA_EINPUT, "%s: max_prompt_len=%d, expected >= 1", path,
                          opt->max_prompt_len);
        if (opt->truncation_mode != TRUNC_KEEP_END && opt->truncation_mode != TRUNC_KEEP_START)
            return ta_err(err, TA_EINPUT, "%s: unknown truncation mode %d", path,
                          (int)opt->truncation_mode);
        if (tokenizer_eos_id(tok) < 0)
            return ta_err(err, TA_EINPUT,
                          "%s: the tokenizer %s has no EOS piece; JSONL datasets end every "
                          "response with EOS", path, tokenizer_path(tok));
    }
    Dataset *d = ta_calloc(sizeof *d, "dataset");
    d->kind = kind;
    d->path = ta_malloc(strlen(path) + 1, "dataset path");
    memcpy(d->path, path, strlen(path) + 1);
    d->tokenized = tok != NULL;
    d->bos = d->eos = d->pad = -1;
    if (tok) {
        d->opt = *opt;
        d->bos = tokenizer_bos_id(tok);
        d->eos = tokenizer_eos_id(tok);
        d->pad = tokenizer_pad_id(tok) >= 0 ? tokenizer_pad_id(tok) : d->eos;
        d->vocab = tokenizer_vocab_size(tok);
    }
    JsonlReader rd;
    int rc = jsonl_open(&rd, path, err);
    if (rc) goto fail;
    Loader L = {.d = d, .tok = tok};
    const char *line;
    size_t len;
    int got;
    while ((got = jsonl_next(&rd, &line, &len, err)) == 1) {
        L.line = rd.lineno;
        cJSON *obj;
        if ((rc = jsonl_parse_object(path, rd.lineno, line, len, &obj, err))) break;
        rc = kind == DS_SFT ? load_sft(&L, obj, err)
             : kind == DS_PREFERENCE ? load_preference(&L, obj, err)
                                     : load_multi(&L, obj, err);
        cJSON_Delete(obj);
        if (rc) break;
    }
    jsonl_close(&rd);
    if (!rc && got < 0) rc = TA_EINPUT;
    if (rc) goto fail;
    if (d->n_examples == 0) {
        rc = ta_err(err, TA_EINPUT, "%s: no examples", path);
        goto fail;
    }
    d->hash = compute_hash(d);
    *out = d;
    return TA_OK;
fail:
    dataset_free(d);
    return rc;
}

void dataset_free(Dataset *d) {
    if (!d) return;
    free(d->path);
    free(d->tokens);
    free(d->rows);
    free(d->weights);
    free(d->lines);
    free(d->text);
    free(d->prompts);
    free(d->resps);
    free(d->emb);
    free(d);
}

size_t dataset_size(const Dataset *d) { return d->n_examples; }
size_t dataset_num_truncated(const Dataset *d) { return d->n_truncated; }
size_t dataset_num_weighted(const Dataset *d) { return d->n_weighted; }

float dataset_weight(const Dataset *d, size_t i) {
    TA_ASSERT(i < d->n_examples);
    return d->weights ? d->weights[i] : 1.0f;
}
int dataset_rows_per_example(const Dataset *d) { return d->kind == DS_PREFERENCE ? 2 : 1; }
uint64_t dataset_hash(const Dataset *d) { return d->hash; }
DatasetKind dataset_kind(const Dataset *d) { return d->kind; }

long dataset_line(const Dataset *d, size_t i) {
    TA_ASSERT(i < d->n_examples);
    return d->lines[i];
}

/* Writes row r of the dataset into batch row b_row, padded to b->T (set by the caller). */
static void fill_row(const Dataset *d, const Row *r, Batch *b, int b_row) {
    int T = b->T;
    int *tok = b->tokens + (size_t)b_row * T;
    int *tgt = b->targets + (size_t)b_row * T;
    uint8_t *m = b->loss_mask + (size_t)b_row * T;
    const int *s = d->tokens + r->off;
    int n = r->len - 1; /* positions with a target */
    for (int t = 0; t < n; t++) {
        tok[t] = s[t];
        tgt[t] = s[t + 1];
        m[t] = t + 1 >= r->prompt_len; /* target seq[t+1] is a response token or EOS */
    }
    for (int t = n; t < T; t++) {
        tok[t] = d->pad;
        tgt[t] = -1;
        m[t] = 0;
    }
    b->lengths[b_row] = n;
}

void dataset_fill(const Dataset *d, const uint32_t *ids, int n, Batch *b) {
    TA_ASSERT(d->tokenized); /* DS_MULTI loaded without a tokenizer has no rows */
    TA_ASSERT(n > 0);
    int rpe = dataset_rows_per_example(d);
    int B = n * rpe;
    TA_ASSERT(B <= b->max_rows);
    int T = 1;
    for (int i = 0; i < n; i++) {
        TA_ASSERT(ids[i] < d->n_examples);
        for (int k = 0; k < rpe; k++) {
            int len = d->rows[(size_t)ids[i] * rpe + k].len - 1;
            if (len > T) T = len;
        }
    }
    TA_ASSERT(T <= b->max_T);
    b->B = B;
    b->T = T;
    b->n_pairs = d->kind == DS_PREFERENCE ? n : 0;
    for (int i = 0; i < n; i++) {
        size_t ex = ids[i];
        float w = d->weights ? d->weights[ex] : 1.0f;
        for (int k = 0; k < rpe; k++) {
            int row = k * n + i; /* preference: chosen rows [0, n), rejected [n, 2n) */
            fill_row(d, &d->rows[ex * rpe + k], b, row);
            b->weights[row] = w;
            b->example_ids[row] = (int64_t)ex;
        }
    }
}

/* ---- multi-response accessors ------------------------------------------------------------- */
size_t dataset_multi_num_prompts(const Dataset *d) {
    TA_ASSERT(d->kind == DS_MULTI);
    return d->n_prompts;
}

const char *dataset_multi_prompt(const Dataset *d, size_t i) {
    TA_ASSERT(d->kind == DS_MULTI && i < d->n_prompts);
    return d->text + d->prompts[i].text_off;
}

int dataset_multi_num_responses(const Dataset *d, size_t i) {
    TA_ASSERT(d->kind == DS_MULTI && i < d->n_prompts);
    return d->prompts[i].n_resp;
}

void dataset_multi_response(const Dataset *d, size_t i, int j, const char **text,
                            double *score, int *has_score, const float **emb, int *emb_dim) {
    TA_ASSERT(d->kind == DS_MULTI && i < d->n_prompts && j >= 0 && j < d->prompts[i].n_resp);
    const MultiResp *r = &d->resps[d->prompts[i].first_resp + j];
    if (text) *text = d->text + r->text_off;
    if (score) *score = r->has_score ? r->score : 0.0;
    if (has_score) *has_score = r->has_score;
    if (emb) *emb = r->emb_dim ? d->emb + r->emb_off : NULL;
    if (emb_dim) *emb_dim = r->emb_dim;
}

size_t dataset_multi_example(const Dataset *d, size_t i, int j) {
    TA_ASSERT(d->kind == DS_MULTI && i < d->n_prompts && j >= 0 && j < d->prompts[i].n_resp);
    return (size_t)d->prompts[i].first_resp + (size_t)j;
}

int dataset_multi_embedding_dim(const Dataset *d) {
    TA_ASSERT(d->kind == DS_MULTI);
    return d->emb_dim;
}
