/* curate_set.c — multi-response data for the curate commands (include/tinyalign/curate.h):
 * a JSONL reader that keeps every line's parsed JSON (so outputs carry the user's fields),
 * a view over a loaded DS_MULTI Dataset, and the field: / lexical embedding sources.
 * Lines are read with src/data's JSONL reader (same line numbering, BOM / CRLF / blank-line
 * rules and error wording as the dataset loader).
 * Not here: model: sources (model_features.c), the commands (commands.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tinyalign/jsonl.h"
#include "curate_impl.h"

/* Grows p from old to n bytes; never returns NULL (ta_malloc prints the size and exits). */
static void *xrealloc(void *p, size_t old, size_t n, const char *what) {
    void *q = ta_malloc(n, what);
    if (old) memcpy(q, p, old);
    free(p);
    return q;
}

/* Room for `need` responses / prompts in every per-response / per-prompt array. */
static void ensure_resps(CurateSet *s, size_t need) {
    if (need <= s->cap_resps) return;
    size_t c = s->cap_resps ? s->cap_resps : 64;
    while (c < need) c *= 2;
    size_t o = s->n_resps;
    s->text = xrealloc(s->text, o * sizeof(char *), c * sizeof(char *), "curate responses");
    s->score = xrealloc(s->score, o * sizeof(double), c * sizeof(double), "curate responses");
    s->has_score = xrealloc(s->has_score, o, c, "curate responses");
    s->resp_obj = xrealloc(s->resp_obj, o * sizeof(cJSON *), c * sizeof(cJSON *), "curate responses");
    s->cap_resps = c;
}

static void ensure_prompts(CurateSet *s, size_t need) {
    if (need <= s->cap_prompts) return;
    size_t c = s->cap_prompts ? s->cap_prompts : 64;
    while (c < need) c *= 2;
    size_t o = s->n_prompts;
    s->prompt = xrealloc(s->prompt, o * sizeof(char *), c * sizeof(char *), "curate prompts");
    s->line = xrealloc(s->line, o * sizeof(long), c * sizeof(long), "curate prompts");
    s->first = xrealloc(s->first, o * sizeof(size_t), c * sizeof(size_t), "curate prompts");
    s->count = xrealloc(s->count, o * sizeof(int), c * sizeof(int), "curate prompts");
    s->obj = xrealloc(s->obj, o * sizeof(cJSON *), c * sizeof(cJSON *), "curate prompts");
    s->cap_prompts = c;
}

static int check_text(const char *path, long line, const cJSON *v, const char *name,
                      const char **out, TaError *err) {
    if (!v) return ta_err(err, TA_EINPUT, "%s:%ld: missing field \"%s\"", path, line, name);
    if (!cJSON_IsString(v) || !v->valuestring)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" must be a string, found %s", path,
                      line, name, jsonl_type_name(v));
    const char *s = v->valuestring;
    if (!*s) return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" is empty", path, line, name);
    long bad = jsonl_utf8_invalid_at(s, strlen(s));
    if (bad >= 0)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"%s\" is not valid UTF-8 (byte %ld: 0x%02X)",
                      path, line, name, bad + 1, (unsigned)(unsigned char)s[bad]);
    *out = s;
    return TA_OK;
}

/* Validates one line's object and appends its prompt and responses. */
static int add_line(CurateSet *s, cJSON *obj, long line, TaError *err) {
    const char *prompt;
    int rc = check_text(s->path, line, cJSON_GetObjectItemCaseSensitive(obj, "prompt"), "prompt",
                        &prompt, err);
    if (rc) return rc;
    cJSON *rs = cJSON_GetObjectItemCaseSensitive(obj, "responses");
    if (!rs)
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: missing field \"responses\" (expected {\"prompt\": ..., "
                      "\"responses\": [{\"text\": ..., \"score\": ...}, ...]})",
                      s->path, line);
    if (!cJSON_IsArray(rs))
        return ta_err(err, TA_EINPUT,
                      "%s:%ld: field \"responses\" must be an array of objects, found %s",
                      s->path, line, jsonl_type_name(rs));
    int n = cJSON_GetArraySize(rs);
    if (n < 1)
        return ta_err(err, TA_EINPUT, "%s:%ld: field \"responses\" is empty (need >= 1 item)",
                      s->path, line);
    size_t r0 = s->n_resps;
    ensure_resps(s, r0 + (size_t)n);
    int j = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, rs) {
        char name[64];
        snprintf(name, sizeof name, "responses[%d].text", j);
        if (!cJSON_IsObject(item))
            return ta_err(err, TA_EINPUT,
                          "%s:%ld: field \"responses[%d]\" must be an object with a \"text\" "
                          "string, found %s", s->path, line, j, jsonl_type_name(item));
        const char *text;
        if ((rc = check_text(s->path, line, cJSON_GetObjectItemCaseSensitive(item, "text"), name,
                             &text, err)))
            return rc;
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(item, "score");
        size_t r = r0 + (size_t)j;
        s->has_score[r] = 0;
        s->score[r] = 0;
        if (sc) {
            if (!cJSON_IsNumber(sc) || !isfinite(sc->valuedouble))
                return ta_err(err, TA_EINPUT,
                              "%s:%ld: field \"responses[%d].score\" must be a finite number, "
                              "found %s", s->path, line, j,
                              cJSON_IsNumber(sc) ? "an out-of-range number" : jsonl_type_name(sc));
            s->score[r] = sc->valuedouble;
            s->has_score[r] = 1;
        }
        s->text[r] = text;
        s->resp_obj[r] = item;
        j++;
    }
    size_t p = s->n_prompts;
    ensure_prompts(s, p + 1);
    s->prompt[p] = prompt;
    s->line[p] = line;
    s->first[p] = r0;
    s->count[p] = n;
    s->obj[p] = obj;
    s->n_prompts++;
    s->n_resps += (size_t)n;
    return TA_OK;
}

int curate_set_load(CurateSet **out, const char *path, TaError *err) {
    *out = NULL;
    CurateSet *s = ta_calloc(sizeof *s, "curate set");
    s->path = ta_strdup(path, "path");
    JsonlReader rd;
    int rc = jsonl_open(&rd, path, err);
    if (rc) goto fail;
    const char *ln;
    size_t len;
    int got;
    while ((got = jsonl_next(&rd, &ln, &len, err)) == 1) {
        cJSON *obj = NULL;
        if ((rc = jsonl_parse_object(path, rd.lineno, ln, len, &obj, err))) break;
        rc = add_line(s, obj, rd.lineno, err);
        if (rc) {
            cJSON_Delete(obj);
            break;
        }
    }
    if (got < 0) rc = TA_EINPUT;
    jsonl_close(&rd);
    if (rc) goto fail;
    if (s->n_prompts == 0) {
        rc = ta_err(err, TA_EINPUT, "%s: no examples (the file is empty or only blank lines)",
                    path);
        goto fail;
    }
    *out = s;
    return TA_OK;
fail:
    curate_set_free(s);
    return rc;
}

int curate_set_from_dataset(CurateSet **out, const Dataset *d, TaError *err) {
    *out = NULL;
    if (dataset_kind(d) != DS_MULTI)
        return ta_err(err, TA_EINPUT, "diversity metrics need a multi-response dataset "
                                      "({\"prompt\": ..., \"responses\": [...]})");
    CurateSet *s = ta_calloc(sizeof *s, "curate set");
    s->path = ta_strdup("dataset", "path");
    s->ds = d;
    size_t np = dataset_multi_num_prompts(d), nr = 0;
    for (size_t i = 0; i < np; i++) nr += (size_t)dataset_multi_num_responses(d, i);
    s->n_prompts = np;
    s->n_resps = nr;
    s->prompt = ta_malloc((np + 1) * sizeof(char *), "curate prompts");
    s->line = ta_malloc((np + 1) * sizeof(long), "curate prompts");
    s->first = ta_malloc((np + 1) * sizeof(size_t), "curate prompts");
    s->count = ta_malloc((np + 1) * sizeof(int), "curate prompts");
    s->text = ta_malloc((nr + 1) * sizeof(char *), "curate responses");
    s->score = ta_malloc((nr + 1) * sizeof(double), "curate responses");
    s->has_score = ta_malloc(nr + 1, "curate responses");
    size_t r = 0;
    for (size_t i = 0; i < np; i++) {
        int n = dataset_multi_num_responses(d, i);
        s->prompt[i] = dataset_multi_prompt(d, i);
        s->line[i] = n > 0 ? dataset_line(d, dataset_multi_example(d, i, 0)) : 0;
        s->first[i] = r;
        s->count[i] = n;
        for (int j = 0; j < n; j++, r++) {
            int has;
            dataset_multi_response(d, i, j, &s->text[r], &s->score[r], &has, NULL, NULL);
            s->has_score[r] = (uint8_t)has;
        }
    }
    if (np == 0) {
        curate_set_free(s);
        return ta_err(err, TA_EINPUT, "the dataset has no prompts");
    }
    *out = s;
    return TA_OK;
}

void curate_set_free(CurateSet *s) {
    if (!s) return;
    if (s->obj)
        for (size_t i = 0; i < s->n_prompts; i++) cJSON_Delete(s->obj[i]);
    free(s->obj);
    free(s->path);
    free(s->prompt);
    free(s->line);
    free(s->first);
    free(s->count);
    free(s->text);
    free(s->score);
    free(s->has_score);
    free(s->resp_obj);
    free(s);
}

const char *curate_set_path(const CurateSet *s) { return s->path; }
size_t curate_set_num_prompts(const CurateSet *s) { return s->n_prompts; }
size_t curate_set_num_responses(const CurateSet *s) { return s->n_resps; }
const char *curate_set_prompt(const CurateSet *s, size_t i) {
    TA_ASSERT(i < s->n_prompts);
    return s->prompt[i];
}
long curate_set_line(const CurateSet *s, size_t i) {
    TA_ASSERT(i < s->n_prompts);
    return s->line[i];
}
size_t curate_set_first(const CurateSet *s, size_t i) {
    TA_ASSERT(i < s->n_prompts);
    return s->first[i];
}
int curate_set_count(const CurateSet *s, size_t i) {
    TA_ASSERT(i < s->n_prompts);
    return s->count[i];
}
const char *curate_set_text(const CurateSet *s, size_t r) {
    TA_ASSERT(r < s->n_resps);
    return s->text[r];
}
int curate_set_score(const CurateSet *s, size_t r, double *score) {
    TA_ASSERT(r < s->n_resps);
    if (score) *score = s->score[r];
    return s->has_score[r];
}

/* Prompt index and in-prompt index of global response r (binary search over first). */
void curate_set_locate(const CurateSet *s, size_t r, size_t *prompt, int *j) {
    size_t lo = 0, hi = s->n_prompts;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (s->first[mid] <= r) lo = mid;
        else hi = mid;
    }
    *prompt = lo;
    *j = (int)(r - s->first[lo]);
}

/* ---- embeddings ------------------------------------------------------------------------- */
/* Checks a vector is not all zeros; the message names the place. */
static int nonzero(const float *v, int dim) {
    for (int c = 0; c < dim; c++)
        if (v[c] != 0.0f) return 1;
    return 0;
}

static int embed_field_json(const CurateSet *s, const char *name, float **emb, int *dim,
                            TaError *err) {
    float *e = NULL;
    int D = 0;
    long first_line = 0;
    size_t first_r = 0;
    for (size_t i = 0; i < s->n_prompts; i++) {
        for (int j = 0; j < s->count[i]; j++) {
            size_t r = s->first[i] + (size_t)j;
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->resp_obj[r], name);
            int rc = TA_OK;
            if (!v) {
                rc = ta_err(err, TA_EINPUT,
                            "%s:%ld: responses[%d] has no field \"%s\" (source field:%s)",
                            s->path, s->line[i], j, name, name);
            } else if (!cJSON_IsArray(v)) {
                rc = ta_err(err, TA_EINPUT,
                            "%s:%ld: field \"responses[%d].%s\" must be an array of numbers, "
                            "found %s", s->path, s->line[i], j, name, jsonl_type_name(v));
            } else if (cJSON_GetArraySize(v) == 0) {
                rc = ta_err(err, TA_EINPUT, "%s:%ld: field \"responses[%d].%s\" is empty",
                            s->path, s->line[i], j, name);
            } else if (D && cJSON_GetArraySize(v) != D) {
                size_t fp;
                int fj;
                curate_set_locate(s, first_r, &fp, &fj);
                rc = ta_err(err, TA_EINPUT,
                            "%s:%ld: field \"responses[%d].%s\" has %d numbers, but the first "
                            "one (line %ld, responses[%d]) has %d; every vector of a source "
                            "must have the same length",
                            s->path, s->line[i], j, name, cJSON_GetArraySize(v), first_line, fj,
                            D);
            }
            if (rc) {
                free(e);
                return rc;
            }
            if (!D) {
                D = cJSON_GetArraySize(v);
                first_line = s->line[i];
                first_r = r;
                e = ta_malloc(s->n_resps * (size_t)D * sizeof(float), "embeddings");
            }
            float *row = e + r * (size_t)D;
            int c = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, v) {
                if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) ||
                    fabs(x->valuedouble) > 3.4e38) {
                    free(e);
                    return ta_err(err, TA_EINPUT,
                                  "%s:%ld: field \"responses[%d].%s[%d]\" must be a finite "
                                  "number, found %s",
                                  s->path, s->line[i], j, name, c,
                                  cJSON_IsNumber(x) ? "an out-of-range number"
                                                    : jsonl_type_name(x));
                }
                row[c++] = (float)x->valuedouble;
            }
            if (!nonzero(row, D)) {
                free(e);
                return ta_err(err, TA_EINPUT,
                              "%s:%ld: field \"responses[%d].%s\" is a zero vector (no "
                              "direction, so no cosine distance)",
                              s->path, s->line[i], j, name);
            }
        }
    }
    *emb = e;
    *dim = D;
    return TA_OK;
}

static int embed_field_dataset(const CurateSet *s, const char *name, float **emb, int *dim,
                               TaError *err) {
    if (strcmp(name, "embedding"))
        return ta_err(err, TA_EINPUT,
                      "source field:%s: a loaded dataset keeps only the \"embedding\" field "
                      "(use field:embedding, lexical or model:DIR)", name);
    int D = dataset_multi_embedding_dim(s->ds);
    if (D <= 0)
        return ta_err(err, TA_EINPUT,
                      "source field:embedding: the dataset's responses have no \"embedding\" "
                      "(line %ld)", s->line[0]);
    float *e = ta_malloc(s->n_resps * (size_t)D * sizeof(float), "embeddings");
    for (size_t i = 0; i < s->n_prompts; i++) {
        for (int j = 0; j < s->count[i]; j++) {
            const float *v;
            int d;
            dataset_multi_response(s->ds, i, j, NULL, NULL, NULL, &v, &d);
            long line = dataset_line(s->ds, dataset_multi_example(s->ds, i, j));
            if (!v || d != D || !nonzero(v, D)) {
                free(e);
                return ta_err(err, TA_EINPUT,
                              !v ? "line %ld: responses[%d] has no \"embedding\" (source "
                                   "field:embedding)"
                                 : "line %ld: responses[%d].embedding is a zero vector or has "
                                   "the wrong length (no cosine distance)",
                              line, j);
            }
            memcpy(e + (s->first[i] + (size_t)j) * (size_t)D, v, (size_t)D * sizeof(float));
        }
    }
    *emb = e;
    *dim = D;
    return TA_OK;
}

int curate_set_embed(const CurateSet *s, const CurateSource *src, const char *tokenizer,
                     float **emb, int *dim, TaError *err) {
    *emb = NULL;
    *dim = 0;
    switch (src->kind) {
    case CURATE_SRC_FIELD:
        return s->ds ? embed_field_dataset(s, src->arg, emb, dim, err)
                     : embed_field_json(s, src->arg, emb, dim, err);
    case CURATE_SRC_LEXICAL: {
        float *e = ta_malloc(s->n_resps * CURATE_LEXICAL_DIM * sizeof(float), "embeddings");
        for (size_t r = 0; r < s->n_resps; r++)
            curate_lexical_embed(e + r * CURATE_LEXICAL_DIM, s->text[r]);
        *emb = e;
        *dim = CURATE_LEXICAL_DIM;
        return TA_OK;
    }
    case CURATE_SRC_MODEL: {
        int rc = curate_model_features(s, src->arg, tokenizer, emb, dim, NULL, err);
        if (rc) return rc;
        for (size_t r = 0; r < s->n_resps; r++)
            if (!nonzero(*emb + r * (size_t)*dim, *dim)) {
                size_t p;
                int j;
                curate_set_locate(s, r, &p, &j);
                free(*emb);
                *emb = NULL;
                return ta_err(err, TA_EINPUT, "%s:%ld: responses[%d]: model:%s gives a zero "
                              "vector (no cosine distance)", s->path, s->line[p], j, src->arg);
            }
        return TA_OK;
    }
    }
    return ta_err(err, TA_EINPUT, "unknown source kind");
}

int curate_set_logprobs(const CurateSet *s, const char *model_dir, const char *tokenizer,
                        double **logp, TaError *err) {
    return curate_model_features(s, model_dir, tokenizer, NULL, NULL, logp, err);
}
