/* deviation.c — the per-prompt deviation math of Chung et al. 2025 (arXiv 2503.17126;
 * include/tinyalign/curate.h):
 * embedding sources (parsing, the built-in lexical embedding, curate_embed: the vectors of
 * a field, of the lexical features or of a model), mean cosine distance over a multiset of
 * responses, and the min-max / geometric-mean / sum-to-N weights.
 * Not here: the model's features (model_features.c), pairing (select.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "curate_impl.h"

int curate_source_parse(CurateSource *s, const char *spec, TaError *err) {
    memset(s, 0, sizeof *s);
    static const char *forms = "expected field:NAME (vectors in the data), model:DIR (a "
                               "tinyalign model directory) or lexical";
    if (strlen(spec) >= sizeof s->spec)
        return ta_err(err, TA_EINPUT, "--source \"%.40s...\" is too long", spec);
    snprintf(s->spec, sizeof s->spec, "%s", spec);
    if (!strcmp(spec, "lexical")) {
        s->kind = CURATE_SRC_LEXICAL;
        return TA_OK;
    }
    const char *arg = NULL;
    if (!strncmp(spec, "field:", 6)) s->kind = CURATE_SRC_FIELD, arg = spec + 6;
    else if (!strncmp(spec, "model:", 6)) s->kind = CURATE_SRC_MODEL, arg = spec + 6;
    if (!arg) return ta_err(err, TA_EINPUT, "--source \"%s\": %s", spec, forms);
    if (!*arg)
        return ta_err(err, TA_EINPUT, "--source \"%s\": the %s is empty (%s)", spec,
                      s->kind == CURATE_SRC_FIELD ? "field name" : "model directory", forms);
    snprintf(s->arg, sizeof s->arg, "%s", arg);
    return TA_OK;
}

/* ---- lexical embedding ---------------------------------------------------------------- */
static int is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Adds one feature (tag byte + bytes) to the group vector g. */
static void add_feature(double *g, char tag, const char *a, size_t na, const char *b,
                        size_t nb) {
    uint64_t h = ta_fnv1a(TA_FNV1A_INIT, &tag, 1);
    h = ta_fnv1a(h, a, na);
    if (b) {
        const char sep = 0x1F;
        h = ta_fnv1a(h, &sep, 1);
        h = ta_fnv1a(h, b, nb);
    }
    g[h % CURATE_LEXICAL_DIM] += 1.0;
}

/* Length in bytes of the UTF-8 sequence starting with byte c (1 for a stray byte). */
static int utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

static void add_normalised(double *acc, const double *g) {
    double ss = 0;
    for (int i = 0; i < CURATE_LEXICAL_DIM; i++) ss += g[i] * g[i];
    if (ss == 0) return;
    double inv = 1.0 / sqrt(ss);
    for (int i = 0; i < CURATE_LEXICAL_DIM; i++) acc[i] += g[i] * inv;
}

void curate_lexical_embed(float *out, const char *text) {
    size_t n = strlen(text);
    double *g = ta_calloc(CURATE_LEXICAL_DIM * sizeof(double), "lexical features");
    double *acc = ta_calloc(CURATE_LEXICAL_DIM * sizeof(double), "lexical features");
    /* character 3-grams of " " + text + " ": code point starts in the padded string */
    size_t np = n + 2;
    char *pad = ta_malloc(np + 1, "lexical features");
    pad[0] = ' ';
    memcpy(pad + 1, text, n);
    pad[np - 1] = ' ';
    pad[np] = '\0';
    size_t *cp = ta_malloc((np + 1) * sizeof(size_t), "lexical features");
    size_t ncp = 0;
    for (size_t i = 0; i < np;) {
        cp[ncp++] = i;
        size_t l = (size_t)utf8_len((unsigned char)pad[i]);
        i += (i + l <= np) ? l : 1;
    }
    cp[ncp] = np;
    for (size_t i = 0; i + 3 <= ncp; i++)
        add_feature(g, 'c', pad + cp[i], cp[i + 3] - cp[i], NULL, 0);
    /* "" (padded "  ": no 3-gram, no word) is its own point: identical for every empty
     * response, distance 1 from any other text */
    if (ncp < 3) add_feature(g, 'c', pad, np, NULL, 0);
    add_normalised(acc, g);
    /* words and bigrams */
    memset(g, 0, CURATE_LEXICAL_DIM * sizeof(double));
    double *gb = ta_calloc(CURATE_LEXICAL_DIM * sizeof(double), "lexical features");
    const char *prev = NULL;
    size_t prev_n = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && is_ws((unsigned char)text[i])) i++;
        if (i >= n) break;
        size_t s = i;
        while (i < n && !is_ws((unsigned char)text[i])) i++;
        add_feature(g, 'w', text + s, i - s, NULL, 0);
        if (prev) add_feature(gb, 'b', prev, prev_n, text + s, i - s);
        prev = text + s, prev_n = i - s;
    }
    add_normalised(acc, g);
    add_normalised(acc, gb);
    double ss = 0;
    for (int i = 0; i < CURATE_LEXICAL_DIM; i++) ss += acc[i] * acc[i];
    TA_ASSERT(ss > 0); /* the 3-gram group is never empty */
    double inv = 1.0 / sqrt(ss);
    for (int i = 0; i < CURATE_LEXICAL_DIM; i++) out[i] = (float)(acc[i] * inv);
    free(g);
    free(gb);
    free(acc);
    free(pad);
    free(cp);
}

/* ---- deviation and weights ---------------------------------------------------------------- */
/* ---- curate_embed ---------------------------------------------------------------------- */
static int nonzero(const float *v, int dim) {
    for (int c = 0; c < dim; c++)
        if (v[c] != 0.0f) return 1;
    return 0;
}

int curate_embed(Dataset *d, const CurateSource *src, const char *tokenizer, float **emb,
                 int *dim, TaError *err) {
    *emb = NULL;
    *dim = 0;
    const size_t R = dataset_size(d);
    int rc = TA_OK;
    if (src->kind == CURATE_SRC_LEXICAL) {
        float *e = ta_malloc((R ? R : 1) * CURATE_LEXICAL_DIM * sizeof(float), "embeddings");
        for (size_t r = 0; r < R; r++) {
            DataResponse x;
            dataset_response(d, r, &x);
            curate_lexical_embed(e + r * CURATE_LEXICAL_DIM, x.text); /* never all zero */
        }
        *emb = e;
        *dim = CURATE_LEXICAL_DIM;
        return TA_OK;
    }
    if (src->kind == CURATE_SRC_FIELD) {
        if ((rc = dataset_vectors(d, src->arg, emb, dim, err))) {
            size_t len = strlen(err->msg);
            snprintf(err->msg + len, sizeof err->msg - len, " (source %s)", src->spec);
            return rc;
        }
    } else if ((rc = curate_model_features(d, src->arg, tokenizer, emb, dim, NULL, err))) {
        return rc;
    }
    /* a zero vector has no direction, so no cosine distance */
    for (size_t i = 0; i < dataset_num_rows(d); i++) {
        DataRow row;
        dataset_row(d, i, &row);
        for (int j = 0; j < row.n_responses; j++) {
            if (nonzero(*emb + (row.first + (size_t)j) * (size_t)*dim, *dim)) continue;
            free(*emb);
            *emb = NULL;
            if (src->kind == CURATE_SRC_FIELD)
                return ta_err(err, TA_EINPUT, "%s:%ld: field \"responses[%d].%s\" is a zero "
                              "vector (no direction, so no cosine distance)", dataset_path(d),
                              row.line, j, src->arg);
            return ta_err(err, TA_EINPUT, "%s:%ld: responses[%d]: %s gives a zero vector (no "
                          "cosine distance)", dataset_path(d), row.line, j, src->spec);
        }
    }
    return TA_OK;
}

int curate_logprobs(Dataset *d, const char *model_dir, const char *tokenizer, double **logp,
                    TaError *err) {
    return curate_model_features(d, model_dir, tokenizer, NULL, NULL, logp, err);
}

/* ---- deviation and weights --------------------------------------------------------------- */
void curate_deviation(double *dev, const float *emb, int dim, const int *idx, int n) {
    TA_ASSERT(n >= 2 && dim > 0);
    /* e_a = emb[idx[a]] / |emb[idx[a]]| in double, then cos = e_a . e_b */
    double *e = ta_malloc((size_t)n * (size_t)dim * sizeof(double), "deviation vectors");
    for (int a = 0; a < n; a++) {
        const float *v = emb + (size_t)idx[a] * (size_t)dim;
        double ss = 0;
        for (int c = 0; c < dim; c++) ss += (double)v[c] * v[c];
        TA_ASSERT(ss > 0);
        double inv = 1.0 / sqrt(ss);
        for (int c = 0; c < dim; c++) e[(size_t)a * dim + c] = v[c] * inv;
    }
    /* dev[a] accumulates dist(a, b) in the order b = 0, 1, ..., n-1 (a skipped), each
     * distance computed once; identical rows are exactly 0 apart. So two copies of the same
     * response get bitwise-equal deviations (they tie, rather than differ by rounding). */
    for (int a = 0; a < n; a++) dev[a] = 0;
    for (int a = 0; a < n; a++) {
        const double *ea = e + (size_t)a * dim;
        const float *va = emb + (size_t)idx[a] * (size_t)dim;
        for (int b = a + 1; b < n; b++) {
            const double *eb = e + (size_t)b * dim;
            const float *vb = emb + (size_t)idx[b] * (size_t)dim;
            double dist = 0;
            if (idx[a] != idx[b] && memcmp(va, vb, (size_t)dim * sizeof(float))) {
                double dot = 0;
                for (int c = 0; c < dim; c++) dot += ea[c] * eb[c];
                dist = 1.0 - dot;
            }
            dev[a] += dist;
            dev[b] += dist;
        }
    }
    /* rounded to a 1e-12 grid: deviations that are equal in exact arithmetic but differ by
     * rounding noise (symmetric configurations) tie exactly, so rankings do not depend on
     * summation order (tools/ref_curate.py does the same) */
    for (int a = 0; a < n; a++) dev[a] = floor(dev[a] / (double)(n - 1) * 1e12 + 0.5) / 1e12;
    free(e);
}

int curate_weights(double *w, double *u, const double *dev, int K, int n) {
    TA_ASSERT(K >= 1 && n >= 1);
    double *uu = u ? u : ta_malloc((size_t)n * sizeof(double), "weights");
    for (int i = 0; i < n; i++) uu[i] = 1.0;
    for (int k = 0; k < K; k++) {
        const double *d = dev + (size_t)k * n;
        double lo = d[0], hi = d[0];
        for (int i = 1; i < n; i++) lo = fmin(lo, d[i]), hi = fmax(hi, d[i]);
        for (int i = 0; i < n; i++) {
            /* per-prompt min-max to [-1, 1]; 0 when every deviation ties */
            double s = hi - lo <= CURATE_TIE_EPS ? 0.0 : 2.0 * (d[i] - lo) / (hi - lo) - 1.0;
            uu[i] *= pow((s + 1.0) / 2.0, 1.0 / K); /* geometric mean over sources */
        }
    }
    /* s_i = 2u_i - 1; score_i = (N s_i - sum s) / (N + sum s) unless all s_i are equal;
     * weight = score + 1 (= N u_i / sum u) */
    double sum = 0;
    int all_equal = 1;
    for (int i = 0; i < n; i++) {
        double s = 2.0 * uu[i] - 1.0;
        sum += s;
        if (s != 2.0 * uu[0] - 1.0) all_equal = 0;
    }
    int degenerate = K >= 2;
    for (int i = 0; i < n; i++) {
        double s = 2.0 * uu[i] - 1.0;
        double score = all_equal ? s : ((double)n * s - sum) / ((double)n + sum);
        w[i] = score + 1.0;
        if (uu[i] != 0.0) degenerate = 0;
    }
    if (!u) free(uu);
    return degenerate;
}

uint64_t curate_prompt_seed(uint64_t seed, size_t prompt) {
    return seed + 0x9E3779B97F4A7C15ull * ((uint64_t)prompt + 1);
}
