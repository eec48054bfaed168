/* jsonl_dataset.c — TRL-format JSONL datasets (SFT, preference, multi-response) and prompt
 * files: read, validate, keep the user's own fields (multi, prompts), tokenize with the row
 * convention of row.c, hold in memory, and fill Batches (include/tinyalign/data.h).
 *
 * Formats, one JSON object per line (blank lines skipped):
 *   SFT         {"prompt": str, "completion": str, "weight"?: number >= 0}
 *                                                                    unknown fields ignored
 *   preference  {"prompt": str, "chosen": str, "rejected": str, "weight"?: number >= 0,
 *                "margin"?: number}
 *   multi       {"prompt": str, "responses": [{"text": str, "score"?: number,
 *                                              "embedding"?: [number, ...], ...}, ...], ...}
 *   prompts     {"prompt": str, ...}
 * Multi and prompt rows keep every other member as written: jsonl_scan_object finds where
 * each member lies in the line, and the member's text ("name":value) is stored byte for
 * byte, so numbers, escapes and nesting survive a read -> write unchanged.
 * Bad input is TA_EINPUT with one message "FILE:LINE[:COL]: ..." naming the field. A
 * failed load frees everything, so nothing is undone line by line.
 * Storage: every row's tokens in one int array and a Row table (offset, length, prompt
 * length); per-example weights, margins and lines; multi / prompt text in one char arena,
 * kept fields in another, embeddings in a float arena. Several files of one kind (a
 * training mixture) are read in order into the same arrays: a file is a contiguous range
 * of examples (and of prompts).
 * Not here: the row convention itself (row.c), conversational (list-of-messages) prompts
 * or chat templates, packing several examples into one row, streaming datasets larger than
 * memory, the token-shard loader (token_data.c), printing (the library returns counts).
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
    int64_t text_off;    /* into text */
    int64_t first_resp;  /* into resps */
    int64_t first_field; /* into frec */
    long line;
    int32_t n_resp, n_fields, n_before;
} MultiPrompt;

typedef struct {
    int64_t text_off;    /* into text */
    int64_t emb_off;     /* into emb */
    int64_t first_field; /* into frec */
    double score;
    int32_t emb_dim;     /* 0: none */
    int32_t has_score, n_fields;
} MultiResp;

typedef struct {
    int64_t key_off, json_off, value_off; /* into raw */
} FieldRec;

struct Dataset {
    DatasetKind kind;
    DatasetOptions opt;
    const char *path;          /* the file being read (messages); paths[0] afterwards */
    char *paths[DATA_MAX_SOURCES];
    int n_paths;
    size_t src_first[DATA_MAX_SOURCES + 1];    /* first example of each file, then the end */
    size_t src_prompt[DATA_MAX_SOURCES + 1];   /* first prompt (multi, prompts) of each file */
    uint8_t src_feeds[DATA_MAX_SOURCES];       /* RowFeeds of each file's rows */
    int tokenized;             /* rows exist (0: multi loaded without a tokenizer, prompts) */
    int bos, eos, pad, vocab;  /* bos -1 when the tokenizer has none */
    size_t n_examples, n_truncated;
    size_t n_weighted; /* preference / sft lines with a "weight" field */
    size_t n_margined; /* preference lines with a "margin" field */
    uint64_t hash;
    /* token rows: example i is row i (SFT, multi) or rows 2i, 2i+1 (preference) */
    int *tokens;     /* (n_tokens) every row's seq back to back */
    size_t n_tokens, cap_tokens;
    Row *rows;       /* (n_rows) */
    size_t n_rows, cap_rows;
    float *weights;  /* (n_examples) preference and sft, else NULL */
    float *margins;  /* (n_examples) preference only, else NULL */
    long *lines;     /* (n_examples) source line of each example */
    size_t cap_weights, cap_margins, cap_lines;
    /* multi-response / prompt content */
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
    /* kept fields: key and JSON text of each, NUL-terminated, in raw */
    char *raw;
    size_t n_raw, cap_raw;
    FieldRec *frec;
    size_t n_frec, cap_frec;
    DataField *fields; /* (n_frec) pointers into raw, built once the file is read */
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
    const RowFormat *fmt; /* NULL: not tokenized while reading */
    long line;
    const char *raw;      /* the line's text (not NUL-terminated) */
    size_t raw_len;
} Loader;

static const char *kind_name(DatasetKind k) {
    return k == DS_SFT ? "sft" : k == DS_PREFERENCE ? "preference" : k == DS_MULTI ? "multi"
                                                                                    : "prompts";
}

static const char *kind_shape(DatasetKind k) {
    return k == DS_SFT ? "{\"prompt\": ..., \"completion\": ...}"
           : k == DS_PREFERENCE ? "{\"prompt\": ..., \"chosen\": ..., \"rejected\": ...}"
           : k == DS_MULTI ? "{\"prompt\": ..., \"responses\": [{\"text\": ...}, ...]}"
                           : "{\"prompt\": ...}";
}

/* A hint when the object looks like another format's example. */
static void format_hint(const Loader *L, const cJSON *obj, char *out, size_t cap) {
    int k = -1;
    if (cJSON_GetObjectItemCaseSensitive(obj, "chosen")) k = DS_PREFERENCE;
    else if (cJSON_GetObjectItemCaseSensitive(obj, "responses")) k = DS_MULTI;
    else if (cJSON_GetObjectItemCaseSensitive(obj, "completion")) k = DS_SFT;
    if (k >= 0 && k != (int)L->d->kind && L->d->kind != DS_PROMPTS)
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

/* A required string: present, a string, non-empty unless allow_empty (its UTF-8 was checked
 * with the whole line by jsonl_parse_object). name is the field's path in messages
 * ("prompt", "responses[2].text"). */
static int get_text(const Loader *L, const cJSON *obj, const cJSON *v, const char *name,
                    int allow_empty, const char **out, TaError *err) {
    if (!v) return missing(L, obj, name, err);
    if (!cJSON_IsString(v) || !v->valuestring)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" must be a string, found %s",
                      L->d->path, L->line, name, jsonl_type_name(v));
    const char *s = v->valuestring;
    if (!*s && !allow_empty)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" is empty", L->d->path, L->line,
                      name);
    *out = s;
    return TA_OK;
}

static const cJSON *item(const cJSON *obj, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(obj, key);
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

/* A vector field v of response j: a non-empty array of finite float numbers, of length
 * want when want > 0 (the first vector's, from line want_line). *out malloc'd. */
static int read_vector(const char *path, long line, int j, const char *key, const cJSON *v,
                       int want, long want_line, float **out, int *dim, TaError *err) {
    *out = NULL;
    if (!cJSON_IsArray(v))
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"responses[%d].%s\" must be an array of "
                      "numbers, found %s", path, line, j, key, jsonl_type_name(v));
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"responses[%d].%s\" is empty", path, line,
                      j, key);
    if (want && n != want)
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: field \"responses[%d].%s\" has %d numbers, but the first one (line "
                      "%ld) has %d; every \"%s\" in a file has the same length",
                      path, line, j, key, n, want_line, want, key);
    float *e = ta_malloc(sizeof(float) * (size_t)n, "vector");
    int k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, v) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || fabs(x->valuedouble) > 3.4e38) {
            free(e);
            return ta_err(err, TA_EINPUT,
                          "%s:%ld: field \"responses[%d].%s[%d]\" must be a finite number, found %s",
                          path, line, j, key, k,
                          cJSON_IsNumber(x) ? "an out-of-range number" : jsonl_type_name(x));
        }
        e[k++] = (float)x->valuedouble;
    }
    *out = e;
    *dim = n;
    return TA_OK;
}

/* ---- rows -------------------------------------------------------------------------------- */
/* Appends one row [BOS] prompt response [EOS] (row_encode); *cut when the response was cut. */
static int add_row(Dataset *d, const RowFormat *f, const RowPrompt *p, const char *response,
                   const char *field, long line, int *cut, TaError *err) {
    d->tokens = grow(d->tokens, d->n_tokens, &d->cap_tokens, d->n_tokens + (size_t)f->opt.max_len,
                     sizeof(int), "dataset tokens");
    d->rows = grow(d->rows, d->n_rows, &d->cap_rows, d->n_rows + 1, sizeof(Row), "dataset rows");
    TaError e = {0};
    int len;
    int rc = row_encode(f, p, response, field, d->tokens + d->n_tokens, &len, cut, &e);
    if (rc) return ta_err(err, rc, "%s:%ld: %s", d->path, line, e.msg);
    d->rows[d->n_rows++] = (Row){.off = (int64_t)d->n_tokens, .len = len, .prompt_len = p->len};
    d->n_tokens += (size_t)len;
    return TA_OK;
}

static int encode_prompt(Dataset *d, const RowFormat *f, const char *prompt, long line,
                         RowPrompt *p, TaError *err) {
    TaError e = {0};
    int rc = row_prompt_encode(f, prompt, p, &e);
    if (rc) return ta_err(err, rc, "%s:%ld: %s", d->path, line, e.msg);
    return TA_OK;
}

/* Records one example's line (and weight for preference and sft, margin for preference). */
static void add_example(Dataset *d, long line, float weight, float margin, int truncated) {
    d->lines = grow(d->lines, d->n_examples, &d->cap_lines, d->n_examples + 1, sizeof(long),
                    "dataset lines");
    if (d->kind == DS_PREFERENCE || d->kind == DS_SFT) {
        d->weights = grow(d->weights, d->n_examples, &d->cap_weights, d->n_examples + 1,
                          sizeof(float), "dataset weights");
        d->weights[d->n_examples] = weight;
    }
    if (d->kind == DS_PREFERENCE) {
        d->margins = grow(d->margins, d->n_examples, &d->cap_margins, d->n_examples + 1,
                          sizeof(float), "dataset margins");
        d->margins[d->n_examples] = margin;
    }
    d->lines[d->n_examples++] = line;
    d->n_truncated += truncated != 0;
}

/* ---- SFT and preference ----------------------------------------------------------------- */
/* The optional "weight": a finite number >= 0 that fits a float (1 when absent). */
static int get_weight(const Loader *L, const cJSON *obj, double *w, int *has, TaError *err) {
    *w = 1.0;
    const cJSON *wv = item(obj, "weight");
    if (wv && !cJSON_IsNumber(wv))
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"weight\" must be a number >= 0, found %s",
                      L->d->path, L->line, jsonl_type_name(wv));
    int rc = get_number(L, wv, "weight", w, has, err);
    if (rc) return rc;
    if (!(*w >= 0.0))
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"weight\" must be a number >= 0, found %g",
                      L->d->path, L->line, *w);
    if (*w > 3.4e38)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"weight\" = %g does not fit a float",
                      L->d->path, L->line, *w);
    return TA_OK;
}

static int load_sft(const Loader *L, const cJSON *obj, TaError *err) {
    const char *prompt = NULL, *completion = NULL;
    double w;
    int rc, has_w;
    if ((rc = get_text(L, obj, item(obj, "prompt"), "prompt", 0, &prompt, err)) ||
        (rc = get_text(L, obj, item(obj, "completion"), "completion", 1, &completion, err)) ||
        (rc = get_weight(L, obj, &w, &has_w, err)))
        return rc;
    RowPrompt p;
    int cut = 0;
    if ((rc = encode_prompt(L->d, L->fmt, prompt, L->line, &p, err))) return rc;
    rc = add_row(L->d, L->fmt, &p, completion, "completion", L->line, &cut, err);
    if (!rc) {
        add_example(L->d, L->line, (float)w, 0.0f, p.len < p.full_len || cut);
        L->d->n_weighted += has_w != 0;
    }
    row_prompt_free(&p);
    return rc;
}

static int load_preference(const Loader *L, const cJSON *obj, TaError *err) {
    const char *prompt = NULL, *chosen = NULL, *rejected = NULL;
    int rc;
    if ((rc = get_text(L, obj, item(obj, "prompt"), "prompt", 0, &prompt, err)) ||
        (rc = get_text(L, obj, item(obj, "chosen"), "chosen", 1, &chosen, err)) ||
        (rc = get_text(L, obj, item(obj, "rejected"), "rejected", 1, &rejected, err)))
        return rc;
    if (!strcmp(chosen, rejected))
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: fields \"chosen\" and \"rejected\" are identical (a pair must "
                      "differ)", L->d->path, L->line);
    double w, margin = 0.0;
    int has_w, has_m;
    if ((rc = get_weight(L, obj, &w, &has_w, err)) ||
        (rc = get_number(L, item(obj, "margin"), "margin", &margin, &has_m, err)))
        return rc;
    if (fabs(margin) > 3.4e38)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"margin\" = %g does not fit a float",
                      L->d->path, L->line, margin);
    RowPrompt p;
    int cut_c = 0, cut_r = 0;
    if ((rc = encode_prompt(L->d, L->fmt, prompt, L->line, &p, err))) return rc;
    /* both rows share the prompt's cut */
    if (!(rc = add_row(L->d, L->fmt, &p, chosen, "chosen", L->line, &cut_c, err)) &&
        !(rc = add_row(L->d, L->fmt, &p, rejected, "rejected", L->line, &cut_r, err))) {
        add_example(L->d, L->line, (float)w, (float)margin, p.len < p.full_len || cut_c || cut_r);
        L->d->n_weighted += has_w != 0;
        L->d->n_margined += has_m != 0;
    }
    row_prompt_free(&p);
    return rc;
}

/* ---- multi-response and prompt rows ----------------------------------------------------- */
/* Appends a NUL-terminated copy of s[0..n) to an arena; returns its offset. */
static int64_t arena_add(char **a, size_t *used, size_t *cap, const char *s, size_t n) {
    *a = grow(*a, *used, cap, *used + n + 1, 1, "dataset text");
    memcpy(*a + *used, s, n);
    (*a)[*used + n] = '\0';
    *used += n + 1;
    return (int64_t)(*used - n - 1);
}

static int64_t add_text(Dataset *d, const char *s) {
    return arena_add(&d->text, &d->n_text, &d->cap_text, s, strlen(s));
}

/* Keeps the members of the object obj (whose text starts at L->raw[at]) other than the
 * keys skip1 and skip2: *first / *n index frec. *n_before counts those before the first
 * skip2 member, whose value offset goes to *skip2_value (both may be NULL). */
static int keep_fields(const Loader *L, const cJSON *obj, size_t at, const char *skip1,
                       const char *skip2, int64_t *first, int32_t *n, int32_t *n_before,
                       size_t *skip2_value, TaError *err) {
    Dataset *d = L->d;
    int count = cJSON_GetArraySize(obj);
    JsonlMember *m = ta_malloc(sizeof(JsonlMember) * (size_t)(count ? count : 1), "fields");
    int got = jsonl_scan_object(L->raw, L->raw_len, at, m, count, NULL);
    if (got != count) {
        free(m);
        return ta_err(err, TA_EINPUT, "%s:%ld: cannot locate the object's members in the line",
                      d->path, L->line);
    }
    *first = (int64_t)d->n_frec;
    *n = 0;
    if (n_before) *n_before = -1;
    int k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, obj) {
        const JsonlMember *mk = &m[k++];
        const char *key = c->string ? c->string : "";
        if (skip2 && !strcmp(key, skip2) && n_before && *n_before < 0) {
            *n_before = *n;
            if (skip2_value) *skip2_value = mk->value;
        }
        if (!strcmp(key, skip1) || (skip2 && !strcmp(key, skip2))) continue;
        d->frec = grow(d->frec, d->n_frec, &d->cap_frec, d->n_frec + 1, sizeof(FieldRec),
                       "dataset fields");
        FieldRec *r = &d->frec[d->n_frec++];
        r->key_off = arena_add(&d->raw, &d->n_raw, &d->cap_raw, key, strlen(key));
        /* "name":value — the name literal and the value as written */
        size_t kl = mk->key_end - mk->key, vl = mk->value_end - mk->value;
        r->json_off = arena_add(&d->raw, &d->n_raw, &d->cap_raw, L->raw + mk->key, kl + 1 + vl);
        d->raw[r->json_off + (int64_t)kl] = ':';
        r->value_off = r->json_off + (int64_t)kl + 1;
        memcpy(d->raw + r->json_off + (int64_t)kl + 1, L->raw + mk->value, vl);
        (*n)++;
    }
    if (n_before && *n_before < 0) *n_before = *n;
    free(m);
    return TA_OK;
}

/* One response object of a multi row, whose text starts at L->raw[at]: validates it and
 * stores text, score, embedding and the other fields. */
static int load_response(const Loader *L, const cJSON *it, int j, size_t at, TaError *err) {
    Dataset *d = L->d;
    char name[64], fname[96];
    snprintf(name, sizeof name, "responses[%d]", j);
    if (!cJSON_IsObject(it))
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: field \"%s\" must be an object with a \"text\" string, found %s",
                      d->path, L->line, name, jsonl_type_name(it));
    snprintf(fname, sizeof fname, "%s.text", name);
    const char *text = NULL;
    int rc, has = 0;
    /* "" is a valid response: `sample` writes one when EOS comes first */
    if ((rc = get_text(L, it, item(it, "text"), fname, 1, &text, err))) return rc;
    MultiResp r = {0};
    snprintf(fname, sizeof fname, "%s.score", name);
    if ((rc = get_number(L, item(it, "score"), fname, &r.score, &has, err))) return rc;
    r.has_score = has;
    const cJSON *e = item(it, "embedding");
    if (e) {
        float *v;
        int dim;
        if ((rc = read_vector(d->path, L->line, j, "embedding", e, d->emb_dim, d->emb_line, &v,
                              &dim, err)))
            return rc;
        d->emb = grow(d->emb, d->n_emb, &d->cap_emb, d->n_emb + (size_t)dim, sizeof(float),
                      "dataset embeddings");
        memcpy(d->emb + d->n_emb, v, sizeof(float) * (size_t)dim);
        free(v);
        if (!d->emb_dim) d->emb_dim = dim, d->emb_line = L->line;
        r.emb_off = (int64_t)d->n_emb;
        r.emb_dim = dim;
        d->n_emb += (size_t)dim;
    }
    if ((rc = keep_fields(L, it, at, "text", NULL, &r.first_field, &r.n_fields, NULL, NULL, err)))
        return rc;
    r.text_off = add_text(d, text);
    d->resps = grow(d->resps, d->n_resps, &d->cap_resps, d->n_resps + 1, sizeof(MultiResp),
                    "dataset responses");
    d->resps[d->n_resps++] = r;
    add_example(d, L->line, 1.0f, 0.0f, 0);
    return TA_OK;
}

/* A multi row ({"prompt", "responses": [...]}) or a prompt row ({"prompt"}). */
static int load_multi(const Loader *L, const cJSON *obj, TaError *err) {
    Dataset *d = L->d;
    const int prompts_only = d->kind == DS_PROMPTS;
    const char *prompt = NULL;
    int rc = get_text(L, obj, item(obj, "prompt"), "prompt", prompts_only, &prompt, err);
    if (rc) return rc;
    MultiPrompt mp = {.first_resp = (int64_t)d->n_resps, .line = L->line};
    size_t rs_at = 0;
    if ((rc = keep_fields(L, obj, 0, "prompt", prompts_only ? NULL : "responses", &mp.first_field,
                          &mp.n_fields, &mp.n_before, &rs_at, err)))
        return rc;
    mp.text_off = add_text(d, prompt);
    if (prompts_only) {
        add_example(d, L->line, 1.0f, 0.0f, 0);
    } else {
        const cJSON *rs = item(obj, "responses");
        if (!rs) return missing(L, obj, "responses", err);
        if (!cJSON_IsArray(rs))
            return ta_err(err, TA_EINPUT,
                          "%s:%ld: field \"responses\" must be an array of objects, found %s",
                          d->path, L->line, jsonl_type_name(rs));
        int n = cJSON_GetArraySize(rs);
        if (n < 1)
            return ta_err(err, TA_EINPUT, "%s:%ld: field \"responses\" is empty (need >= 1 item)",
                          d->path, L->line);
        size_t *at = ta_malloc(sizeof(size_t) * (size_t)n, "responses");
        if (jsonl_scan_array(L->raw, L->raw_len, rs_at, at, n) != n)
            rc = ta_err(err, TA_EINPUT, "%s:%ld: cannot locate the responses in the line",
                        d->path, L->line);
        int j = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, rs) {
            if (rc || (rc = load_response(L, it, j, at[j], err))) break;
            j++;
        }
        free(at);
        if (rc) return rc;
        mp.n_resp = n;
    }
    d->prompts = grow(d->prompts, d->n_prompts, &d->cap_prompts, d->n_prompts + 1,
                      sizeof(MultiPrompt), "dataset prompts");
    d->prompts[d->n_prompts++] = mp;
    return TA_OK;
}

/* ---- hash: FNV-1a 64 (ta_fnv1a) over explicit little-endian bytes (same on every machine) */
static uint64_t fnv_u64(uint64_t h, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    return ta_fnv1a(h, b, 8);
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
    uint64_t h = ta_fnv1a(TA_FNV1A_INIT, tag, sizeof tag - 1);
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
    /* sft weights only when a line has one: unweighted files keep the keys they had */
    if (d->weights && (d->kind == DS_PREFERENCE || d->n_weighted))
        for (size_t i = 0; i < d->n_examples; i++) h = fnv_f32(h, d->weights[i]);
    if (d->margins && d->n_margined) /* files without margins keep their old keys */
        for (size_t i = 0; i < d->n_examples; i++) h = fnv_f32(h, d->margins[i]);
    if (d->kind == DS_MULTI) {
        h = fnv_u64(h, d->n_prompts);
        h = ta_fnv1a(h, d->text, d->n_text);
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
static int set_format(Dataset *d, RowFormat *f, const Tokenizer *tok, const DatasetOptions *opt,
                      TaError *err) {
    if (!opt) return ta_err(err, TA_EINPUT, "%s: dataset options missing", d->path);
    TaError e = {0};
    int rc = row_format_init(f, tok, opt, &e);
    if (rc) return ta_err(err, rc, "%s: %s", d->path, e.msg);
    d->opt = *opt;
    d->bos = f->bos;
    d->eos = f->eos;
    d->pad = f->pad;
    d->vocab = tokenizer_vocab_size(tok);
    return TA_OK;
}

int dataset_tokenize(Dataset *d, const Tokenizer *tok, const DatasetOptions *opt, TaError *err) {
    TA_ASSERT(d->kind == DS_MULTI);
    RowFormat f;
    int rc = set_format(d, &f, tok, opt, err);
    if (rc) return rc;
    d->n_tokens = d->n_rows = d->n_truncated = 0;
    d->tokenized = 0;
    int src = 0;
    for (size_t i = 0; i < d->n_prompts && !rc; i++) {
        const MultiPrompt *mp = &d->prompts[i];
        while (src + 1 < d->n_paths && i >= d->src_prompt[src + 1]) src++;
        d->path = d->paths[src]; /* messages name the prompt's file */
        RowPrompt p;
        if ((rc = encode_prompt(d, &f, d->text + mp->text_off, mp->line, &p, err))) break;
        for (int j = 0; j < mp->n_resp && !rc; j++) {
            char name[64];
            snprintf(name, sizeof name, "responses[%d].text", j);
            int cut = 0;
            rc = add_row(d, &f, &p, d->text + d->resps[mp->first_resp + j].text_off, name,
                         mp->line, &cut, err);
            d->n_truncated += p.len < p.full_len || cut;
        }
        row_prompt_free(&p);
    }
    d->path = d->paths[0];
    if (rc) {
        d->n_tokens = d->n_rows = d->n_truncated = 0;
        return rc;
    }
    d->tokenized = 1;
    d->hash = compute_hash(d);
    return TA_OK;
}

/* Reads one file's lines into d (which may already hold other files). */
static int read_file(Dataset *d, Loader *L, const char *path, TaError *err) {
    JsonlReader rd;
    int rc = jsonl_open(&rd, path, err);
    if (rc) return rc;
    const char *line;
    size_t len;
    int got;
    const size_t before = d->n_examples;
    while ((got = jsonl_next(&rd, &line, &len, err)) == 1) {
        L->line = rd.lineno;
        L->raw = line;
        L->raw_len = len;
        cJSON *obj;
        if ((rc = jsonl_parse_object(path, rd.lineno, line, len, &obj, err))) break;
        rc = d->kind == DS_SFT ? load_sft(L, obj, err)
             : d->kind == DS_PREFERENCE ? load_preference(L, obj, err)
                                        : load_multi(L, obj, err);
        cJSON_Delete(obj);
        if (rc) break;
    }
    jsonl_close(&rd);
    if (!rc && got < 0) rc = TA_EINPUT;
    if (!rc && d->n_examples == before)
        rc = ta_err(err, TA_EINPUT, "%s: no %s (the file is empty or only blank lines)", path,
                    d->kind == DS_PROMPTS ? "prompts" : "examples");
    return rc;
}

int dataset_load_files(Dataset **out, const char *const *paths, int n_paths, DatasetKind kind,
                       const Tokenizer *tok, const DatasetOptions *opt, TaError *err) {
    *out = NULL;
    TA_ASSERT(n_paths >= 1 && n_paths <= DATA_MAX_SOURCES);
    if (kind != DS_SFT && kind != DS_PREFERENCE && kind != DS_MULTI && kind != DS_PROMPTS)
        return ta_err(err, TA_EINPUT, "%s: unknown dataset kind %d", paths[0], (int)kind);
    if (!tok && (kind == DS_SFT || kind == DS_PREFERENCE))
        return ta_err(err, TA_EINPUT, "%s: a %s dataset needs a tokenizer", paths[0],
                      kind_name(kind));
    TA_ASSERT(!(tok && kind == DS_PROMPTS));
    Dataset *d = ta_calloc(sizeof *d, "dataset");
    d->kind = kind;
    for (int s = 0; s < n_paths; s++) d->paths[s] = ta_strdup(paths[s], "dataset path");
    d->n_paths = n_paths;
    d->path = d->paths[0];
    d->bos = d->eos = d->pad = -1;
    RowFormat fmt;
    int rc = TA_OK;
    if (tok && (rc = set_format(d, &fmt, tok, opt, err))) goto fail;
    Loader L = {.d = d, .fmt = tok && kind != DS_MULTI ? &fmt : NULL};
    for (int s = 0; s < n_paths && !rc; s++) {
        d->src_first[s] = d->n_examples;
        d->src_prompt[s] = d->n_prompts;
        d->path = d->paths[s];
        rc = read_file(d, &L, d->paths[s], err);
    }
    d->src_first[n_paths] = d->n_examples;
    d->src_prompt[n_paths] = d->n_prompts;
    d->path = d->paths[0];
    if (rc) goto fail;
    d->tokenized = L.fmt != NULL;
    d->fields = ta_malloc(sizeof(DataField) * (d->n_frec + 1), "dataset fields");
    for (size_t k = 0; k < d->n_frec; k++)
        d->fields[k] = (DataField){.key = d->raw + d->frec[k].key_off,
                                   .json = d->raw + d->frec[k].json_off,
                                   .value = d->raw + d->frec[k].value_off};
    if (tok && kind == DS_MULTI && (rc = dataset_tokenize(d, tok, opt, err))) goto fail;
    d->hash = compute_hash(d);
    *out = d;
    return TA_OK;
fail:
    dataset_free(d);
    return rc;
}

int dataset_load(Dataset **out, const char *path, DatasetKind kind, const Tokenizer *tok,
                 const DatasetOptions *opt, TaError *err) {
    return dataset_load_files(out, &path, 1, kind, tok, opt, err);
}

void dataset_free(Dataset *d) {
    if (!d) return;
    for (int s = 0; s < d->n_paths; s++) free(d->paths[s]);
    free(d->tokens);
    free(d->rows);
    free(d->weights);
    free(d->margins);
    free(d->lines);
    free(d->text);
    free(d->prompts);
    free(d->resps);
    free(d->emb);
    free(d->raw);
    free(d->frec);
    free(d->fields);
    free(d);
}

size_t dataset_size(const Dataset *d) { return d->n_examples; }
const char *dataset_path(const Dataset *d) { return d->path; }
size_t dataset_num_truncated(const Dataset *d) { return d->n_truncated; }
size_t dataset_num_weighted(const Dataset *d) { return d->n_weighted; }

float dataset_weight(const Dataset *d, size_t i) {
    TA_ASSERT(i < d->n_examples);
    return d->weights ? d->weights[i] : 1.0f;
}

float dataset_margin(const Dataset *d, size_t i) {
    TA_ASSERT(i < d->n_examples);
    return d->margins ? d->margins[i] : 0.0f;
}
size_t dataset_num_margins(const Dataset *d) { return d->n_margined; }

int dataset_num_sources(const Dataset *d) { return d->n_paths; }
size_t dataset_source_first(const Dataset *d, int s) {
    TA_ASSERT(s >= 0 && s < d->n_paths);
    return d->src_first[s];
}
size_t dataset_source_size(const Dataset *d, int s) {
    TA_ASSERT(s >= 0 && s < d->n_paths);
    return d->src_first[s + 1] - d->src_first[s];
}
const char *dataset_source_path(const Dataset *d, int s) {
    TA_ASSERT(s >= 0 && s < d->n_paths);
    return d->paths[s];
}
int dataset_example_source(const Dataset *d, size_t i) {
    TA_ASSERT(i < d->n_examples);
    int s = 0;
    while (s + 1 < d->n_paths && i >= d->src_first[s + 1]) s++;
    return s;
}
void dataset_set_source_feeds(Dataset *d, int s, RowFeeds feeds) {
    TA_ASSERT(s >= 0 && s < d->n_paths);
    d->src_feeds[s] = (uint8_t)feeds;
}
int dataset_rows_per_example(const Dataset *d) { return d->kind == DS_PREFERENCE ? 2 : 1; }
uint64_t dataset_hash(const Dataset *d) { return d->hash; }
DatasetKind dataset_kind(const Dataset *d) { return d->kind; }

long dataset_line(const Dataset *d, size_t i) {
    TA_ASSERT(i < d->n_examples);
    return d->lines[i];
}

int dataset_example_len(const Dataset *d, size_t i) {
    TA_ASSERT(d->tokenized && i < d->n_examples);
    return d->rows[i * (size_t)dataset_rows_per_example(d)].len;
}

void dataset_fill(const Dataset *d, const uint32_t *ids, int n, Batch *b) {
    TA_ASSERT(d->tokenized); /* multi loaded without a tokenizer, prompts: no rows */
    TA_ASSERT(n > 0);
    int rpe = dataset_rows_per_example(d);
    int B = n * rpe;
    TA_ASSERT(B <= b->max_rows);
    int T = 1, extra = b->layout == ROWS_SCORE; /* ROWS_SCORE: the last token too */
    for (int i = 0; i < n; i++) {
        TA_ASSERT(ids[i] < d->n_examples);
        for (int k = 0; k < rpe; k++) {
            int len = d->rows[(size_t)ids[i] * rpe + k].len - 1 + extra;
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
        float mg = d->margins ? d->margins[ex] : 0.0f;
        uint8_t feeds = d->src_feeds[dataset_example_source(d, ex)];
        for (int k = 0; k < rpe; k++) {
            int row = k * n + i; /* preference: chosen rows [0, n), rejected [n, 2n) */
            const Row *r = &d->rows[ex * rpe + k];
            batch_set_row(b, row, d->tokens + r->off, r->len, r->prompt_len, d->pad);
            b->weights[row] = w;
            b->margins[row] = mg;
            b->example_ids[row] = (int64_t)ex;
            b->feeds[row] = feeds;
            b->labels[row] = d->kind == DS_MULTI && d->resps[ex].has_score
                                 ? (float)d->resps[ex].score : NAN;
        }
    }
}

/* ---- rows with their own fields ------------------------------------------------------------ */
size_t dataset_num_rows(const Dataset *d) {
    TA_ASSERT(d->kind == DS_MULTI || d->kind == DS_PROMPTS);
    return d->n_prompts;
}

void dataset_row(const Dataset *d, size_t i, DataRow *out) {
    TA_ASSERT((d->kind == DS_MULTI || d->kind == DS_PROMPTS) && i < d->n_prompts);
    const MultiPrompt *p = &d->prompts[i];
    *out = (DataRow){.prompt = d->text + p->text_off, .line = p->line,
                     .first = (size_t)p->first_resp, .n_responses = p->n_resp,
                     .extra = {d->fields + p->first_field, p->n_fields}, .n_before = p->n_before};
}

void dataset_response(const Dataset *d, size_t r, DataResponse *out) {
    TA_ASSERT(d->kind == DS_MULTI && r < d->n_resps);
    const MultiResp *x = &d->resps[r];
    *out = (DataResponse){.text = d->text + x->text_off, .score = x->has_score ? x->score : 0.0,
                          .has_score = x->has_score,
                          .embedding = x->emb_dim ? d->emb + x->emb_off : NULL,
                          .embedding_dim = x->emb_dim,
                          .extra = {d->fields + x->first_field, x->n_fields}};
}

int dataset_vectors(const Dataset *d, const char *key, float **out, int *dim, TaError *err) {
    TA_ASSERT(d->kind == DS_MULTI);
    *out = NULL;
    *dim = 0;
    const int is_emb = !strcmp(key, "embedding"); /* read at load already */
    float *e = NULL;
    int D = is_emb ? d->emb_dim : 0;
    long first_line = d->emb_line;
    if (D) e = ta_malloc(sizeof(float) * d->n_resps * (size_t)D, "vectors");
    for (size_t i = 0; i < d->n_prompts; i++) {
        const MultiPrompt *mp = &d->prompts[i];
        for (int j = 0; j < mp->n_resp; j++) {
            size_t r = (size_t)mp->first_resp + (size_t)j;
            DataResponse x;
            dataset_response(d, r, &x);
            const DataField *f = data_fields_find(&x.extra, key);
            if (!f) {
                free(e);
                return ta_err(err, TA_EINPUT, "%s:%ld: responses[%d] has no field \"%s\"",
                              d->path, mp->line, j, key);
            }
            if (is_emb) {
                memcpy(e + r * (size_t)D, x.embedding, sizeof(float) * (size_t)D);
                continue;
            }
            cJSON *val = cJSON_Parse(f->value);
            float *vec;
            int n, rc = read_vector(d->path, mp->line, j, key, val, D, first_line, &vec, &n, err);
            cJSON_Delete(val);
            if (rc) {
                free(e);
                return rc;
            }
            if (!D) {
                D = n;
                first_line = mp->line;
                e = ta_malloc(sizeof(float) * d->n_resps * (size_t)D, "vectors");
            }
            memcpy(e + r * (size_t)D, vec, sizeof(float) * (size_t)D);
            free(vec);
        }
    }
    *out = e;
    *dim = D;
    return TA_OK;
}
