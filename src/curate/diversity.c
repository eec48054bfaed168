/* diversity.c — diversity metrics per prompt and overall (include/tinyalign/diversity.h):
 * mean pairwise embedding distance per source, distinct-n, n-gram diversity, compression
 * ratio (zlib), and the report's JSON.
 * Not here: embeddings (deviation.c, model_features.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "curate_impl.h"
#include "tinyalign/diversity.h"

/* ---- whitespace tokens and n-gram sets ----------------------------------------------------- */
typedef struct {
    const char *s;
    size_t n;
} Tok;

typedef struct {
    Tok *t;
    size_t n, cap;
} Toks;

static int is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static void toks_add_text(Toks *k, const char *text) {
    size_t n = strlen(text);
    for (size_t i = 0; i < n;) {
        while (i < n && is_ws((unsigned char)text[i])) i++;
        if (i >= n) break;
        size_t s = i;
        while (i < n && !is_ws((unsigned char)text[i])) i++;
        if (k->n == k->cap) {
            k->cap = k->cap ? 2 * k->cap : 256;
            k->t = ta_realloc(k->t, k->cap * sizeof(Tok), "n-gram tokens");
        }
        k->t[k->n].s = text + s;
        k->t[k->n].n = i - s;
        k->n++;
    }
}

static uint64_t tok_hash(const Tok *t, int order) {
    uint64_t h = TA_FNV1A_INIT;
    for (int a = 0; a < order; a++) {
        h = ta_fnv1a(h, t[a].s, t[a].n);
        h = ta_fnv1a(h, &t[a].n, sizeof t[a].n); /* token boundaries matter */
    }
    return h;
}

static int tok_equal(const Tok *a, const Tok *b, int order) {
    for (int i = 0; i < order; i++)
        if (a[i].n != b[i].n || memcmp(a[i].s, b[i].s, a[i].n)) return 0;
    return 1;
}

/* Counts distinct n-grams among the n-grams starting at starts[0..m) of tokens t (exact:
 * hashes only pick the slot, equality compares the tokens). */
static size_t count_unique(const Tok *t, const size_t *starts, size_t m, int order) {
    if (m == 0) return 0;
    size_t cap = 16;
    while (cap < 2 * m) cap *= 2;
    size_t *slot = ta_malloc(cap * sizeof(size_t), "n-gram set");
    for (size_t i = 0; i < cap; i++) slot[i] = (size_t)-1;
    size_t uniq = 0;
    for (size_t g = 0; g < m; g++) {
        size_t p = (size_t)tok_hash(t + starts[g], order) & (cap - 1);
        for (;;) {
            if (slot[p] == (size_t)-1) {
                slot[p] = starts[g];
                uniq++;
                break;
            }
            if (tok_equal(t + slot[p], t + starts[g], order)) break;
            p = (p + 1) & (cap - 1);
        }
    }
    free(slot);
    return uniq;
}

/* unique / total n-grams of the given order; n-grams never cross a boundary in bounds
 * (token index where each text starts; nb entries plus the end). */
static double unique_ratio(const Toks *k, const size_t *bounds, int nb, int order) {
    size_t *starts = ta_malloc((k->n + 1) * sizeof(size_t), "n-grams");
    size_t m = 0;
    for (int b = 0; b < nb; b++)
        for (size_t i = bounds[b]; i + (size_t)order <= bounds[b + 1]; i++) starts[m++] = i;
    double r = m ? (double)count_unique(k->t, starts, m, order) / (double)m : 0.0;
    free(starts);
    return r;
}

double diversity_distinct_n(const char *const *texts, int n, int order) {
    TA_ASSERT(order >= 1);
    Toks k = {0};
    size_t *bounds = ta_malloc(((size_t)n + 1) * sizeof(size_t), "n-grams");
    for (int i = 0; i < n; i++) {
        bounds[i] = k.n;
        toks_add_text(&k, texts[i]);
    }
    bounds[n] = k.n;
    double r = unique_ratio(&k, bounds, n, order);
    free(bounds);
    free(k.t);
    return r;
}

/* Tokens of the texts joined by " " = the concatenation of each text's tokens. */
double diversity_ngram_diversity(const char *const *texts, int n) {
    Toks k = {0};
    for (int i = 0; i < n; i++) toks_add_text(&k, texts[i]);
    size_t bounds[2] = {0, k.n};
    double sum = 0;
    for (int order = 1; order <= DIVERSITY_MAX_N; order++) sum += unique_ratio(&k, bounds, 1, order);
    free(k.t);
    return sum;
}

static char *join_space(const char *const *texts, int n, size_t *len) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(texts[i]) + 1;
    char *s = ta_malloc(total + 1, "joined texts");
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i) s[o++] = ' ';
        size_t l = strlen(texts[i]);
        memcpy(s + o, texts[i], l);
        o += l;
    }
    s[o] = '\0';
    *len = o;
    return s;
}

unsigned char *diversity_gzip(const void *data, size_t len, size_t *out_len) {
    /* windowBits 15 + 16 = a gzip wrapper; zlib writes mtime 0, XFL 2 (level 9), OS 3 */
    z_stream z;
    memset(&z, 0, sizeof z);
    TA_ASSERT(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    uLong cap = deflateBound(&z, (uLong)len);
    unsigned char *out = ta_malloc(cap, "gzip output");
    z.next_in = (Bytef *)data;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    TA_ASSERT(len <= UINT32_MAX && cap <= UINT32_MAX);
    z.avail_in = (uInt)len;
    TA_ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

double diversity_compression_ratio(const char *const *texts, int n) {
    size_t len, glen;
    char *s = join_space(texts, n, &len);
    unsigned char *g = diversity_gzip(s, len, &glen);
    double r = glen ? (double)len / (double)glen : 0.0;
    free(s);
    free(g);
    return r;
}

/* Whether every response carries an "embedding" (then it is a default source; a bad one is
 * an error rather than silently left out). */
static int every_response_has_embedding(const Dataset *d) {
    for (size_t r = 0; r < dataset_size(d); r++) {
        DataResponse x;
        dataset_response(d, r, &x);
        if (!x.embedding) return 0;
    }
    return 1;
}

/* ---- the report ---------------------------------------------------------------------------- */
int diversity_metrics(Dataset *d, const DiversityOptions *opt, DiversityReport *out,
                      TaError *err) {
    memset(out, 0, sizeof *out);
    int K = opt ? opt->n_sources : 0;
    if (K > CURATE_MAX_SOURCES)
        return ta_err(err, TA_EINPUT, "at most %d sources", CURATE_MAX_SOURCES);
    if (K > 0) {
        memcpy(out->sources, opt->sources, (size_t)K * sizeof(CurateSource));
    } else {
        /* default: lexical, plus field:embedding when every response has one */
        curate_source_parse(&out->sources[K++], "lexical", err);
        if (every_response_has_embedding(d))
            curate_source_parse(&out->sources[K++], "field:embedding", err);
    }
    out->n_sources = K;
    float *emb[CURATE_MAX_SOURCES] = {0};
    int dim[CURATE_MAX_SOURCES] = {0};
    int rc = TA_OK;
    for (int k = 0; k < K; k++) {
        for (int q = 0; q < k; q++)
            if (!strcmp(out->sources[q].spec, out->sources[k].spec)) {
                rc = ta_err(err, TA_EINPUT, "--source %s is given twice", out->sources[k].spec);
                goto end;
            }
        if ((rc = curate_embed(d, &out->sources[k], opt ? opt->tokenizer : NULL, &emb[k],
                               &dim[k], err)))
            goto end;
    }
    const size_t np = dataset_num_rows(d);
    out->n_prompts = np;
    out->per_prompt = ta_calloc((np ? np : 1) * sizeof(DiversityPrompt), "diversity report");
    int maxn = 2;
    for (size_t i = 0; i < np; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        if (row.n_responses > maxn) maxn = row.n_responses;
    }
    int *idx = ta_malloc((size_t)maxn * sizeof(int), "diversity");
    double *dev = ta_malloc((size_t)maxn * sizeof(double), "diversity");
    const char **texts = ta_malloc((size_t)maxn * sizeof(char *), "diversity");
    for (size_t i = 0; i < np; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        int n = row.n_responses;
        if (n < 2) {
            out->skipped_single++;
            continue;
        }
        for (int a = 0; a < n; a++) {
            DataResponse x;
            dataset_response(d, row.first + (size_t)a, &x);
            texts[a] = x.text;
            idx[a] = (int)(row.first + (size_t)a);
        }
        DiversityPrompt *p = &out->per_prompt[out->n_scored++];
        p->index = i;
        p->line = row.line;
        p->n_responses = n;
        out->n_responses += (size_t)n;
        for (int o = 1; o <= DIVERSITY_MAX_N; o++)
            p->distinct[o - 1] = diversity_distinct_n(texts, n, o);
        p->ngram_diversity = diversity_ngram_diversity(texts, n);
        p->compression_ratio = diversity_compression_ratio(texts, n);
        for (int k = 0; k < K; k++) {
            curate_deviation(dev, emb[k], dim[k], idx, n);
            double sum = 0;
            for (int a = 0; a < n; a++) sum += dev[a];
            p->emb_distance[k] = sum / n;
        }
    }
    free(texts);
    free(idx);
    free(dev);
    /* overall: means over the scored prompts */
    DiversityPrompt *o = &out->overall;
    for (size_t i = 0; i < out->n_scored; i++) {
        const DiversityPrompt *p = &out->per_prompt[i];
        for (int a = 0; a < DIVERSITY_MAX_N; a++) o->distinct[a] += p->distinct[a];
        o->ngram_diversity += p->ngram_diversity;
        o->compression_ratio += p->compression_ratio;
        for (int k = 0; k < K; k++) o->emb_distance[k] += p->emb_distance[k];
    }
    if (out->n_scored) {
        double inv = 1.0 / (double)out->n_scored;
        for (int a = 0; a < DIVERSITY_MAX_N; a++) o->distinct[a] *= inv;
        o->ngram_diversity *= inv;
        o->compression_ratio *= inv;
        for (int k = 0; k < K; k++) o->emb_distance[k] *= inv;
    }
    o->n_responses = (int)out->n_responses;
end:
    for (int k = 0; k < K; k++) free(emb[k]);
    if (rc) diversity_report_free(out);
    return rc;
}

void diversity_report_free(DiversityReport *r) {
    free(r->per_prompt);
    memset(r, 0, sizeof *r);
}

/* %.9g numbers (cJSON would print 17 digits) */
static void add_num(cJSON *o, const char *k, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", isfinite(v) ? v : 0.0);
    cJSON_AddItemToObject(o, k, cJSON_CreateRaw(buf));
}

static void add_metrics(cJSON *o, const DiversityReport *r, const DiversityPrompt *p) {
    for (int a = 0; a < DIVERSITY_MAX_N; a++) {
        char k[32];
        snprintf(k, sizeof k, "distinct_%d", a + 1);
        add_num(o, k, p->distinct[a]);
    }
    add_num(o, "ngram_diversity", p->ngram_diversity);
    add_num(o, "compression_ratio", p->compression_ratio);
    for (int k = 0; k < r->n_sources; k++) {
        char key[700];
        snprintf(key, sizeof key, "embedding_distance/%s", r->sources[k].spec);
        add_num(o, key, p->emb_distance[k]);
    }
}

char *diversity_report_json(const DiversityReport *r, int with_per_prompt) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompts", (double)r->n_prompts);
    cJSON_AddNumberToObject(o, "scored_prompts", (double)r->n_scored);
    cJSON_AddNumberToObject(o, "responses", (double)r->n_responses);
    cJSON_AddNumberToObject(o, "skipped_single_response", (double)r->skipped_single);
    cJSON *src = cJSON_AddArrayToObject(o, "sources");
    for (int k = 0; k < r->n_sources; k++)
        cJSON_AddItemToArray(src, cJSON_CreateString(r->sources[k].spec));
    cJSON *ov = cJSON_AddObjectToObject(o, "overall");
    add_metrics(ov, r, &r->overall);
    if (with_per_prompt) {
        cJSON *arr = cJSON_AddArrayToObject(o, "per_prompt");
        for (size_t i = 0; i < r->n_scored; i++) {
            const DiversityPrompt *p = &r->per_prompt[i];
            cJSON *q = cJSON_CreateObject();
            cJSON_AddNumberToObject(q, "index", (double)p->index);
            cJSON_AddNumberToObject(q, "line", (double)p->line);
            cJSON_AddNumberToObject(q, "n_responses", p->n_responses);
            add_metrics(q, r, p);
            cJSON_AddItemToArray(arr, q);
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    TA_ASSERT(s != NULL);
    return s;
}
