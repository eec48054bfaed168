/* commands.c — `curate deviation`, `curate pairs` and `curate divpo` as library calls
 * (include/tinyalign/curate.h): load the multi-response file (data.h's reader, which keeps
 * every field the user wrote), embed it with the sources, run the per-prompt math of
 * deviation.c / select.c, write JSONL atomically (data.h's writers splice the kept fields
 * back), summarise on a FILE.
 * Not here: argument parsing (src/cli/cmd_curate.c), diversity metrics (diversity.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "curate_impl.h"

static int load(Dataset **d, const char *path, TaError *err) {
    return dataset_load(d, path, DS_MULTI, NULL, NULL, err);
}

static int write_out(const char *path, const TaBuf *b, TaError *err) {
    return ta_write_file_atomic(path, b->p ? b->p : "", b->n, err);
}

/* The largest number of responses of a prompt (at least lo). */
static int max_responses(const Dataset *d, int lo) {
    for (size_t i = 0; i < dataset_num_rows(d); i++) {
        DataRow row;
        dataset_row(d, i, &row);
        if (row.n_responses > lo) lo = row.n_responses;
    }
    return lo;
}

/* texts and scores of the n responses of a row, into caller arrays (room for n). */
static void row_responses(const Dataset *d, const DataRow *row, const char **texts,
                          double *scores) {
    for (int a = 0; a < row->n_responses; a++) {
        DataResponse x;
        dataset_response(d, row->first + (size_t)a, &x);
        if (texts) texts[a] = x.text;
        if (scores) scores[a] = x.score;
    }
}

/* ---- shared steps ------------------------------------------------------------------------ */
typedef struct {
    int K;
    const CurateSource *src[CURATE_MAX_SOURCES];
    float *emb[CURATE_MAX_SOURCES]; /* (n_resps, dim[k]) */
    int dim[CURATE_MAX_SOURCES];
} Embeddings;

static void embeddings_free(Embeddings *e) {
    for (int k = 0; k < e->K; k++) free(e->emb[k]);
    memset(e, 0, sizeof *e);
}

static int embeddings_load(Embeddings *e, Dataset *d, const CurateSource *src, int n,
                           const char *tokenizer, TaError *err) {
    memset(e, 0, sizeof *e);
    for (int k = 0; k < n; k++) {
        for (int q = 0; q < k; q++)
            if (!strcmp(src[q].spec, src[k].spec))
                return ta_err(err, TA_EINPUT, "--source %s is given twice", src[k].spec);
        int rc = curate_embed(d, &src[k], tokenizer, &e->emb[k], &e->dim[k], err);
        if (rc) {
            embeddings_free(e);
            return rc;
        }
        e->src[k] = &src[k];
        e->K = k + 1;
    }
    return TA_OK;
}

/* The command's sources: the n given ones, or when n is 0 the default field:embedding
 * (parsed into *def). *K = their count. */
static const CurateSource *sources_or_default(const CurateSource *given, int n,
                                              CurateSource *def, int *K) {
    *K = n;
    if (n > 0) return given;
    TaError e;
    curate_source_parse(def, "field:embedding", &e); /* a constant spec: cannot fail */
    *K = 1;
    return def;
}

/* Loads the sources; when the default field:embedding was used and fails, the message
 * says how to pick another source. */
static int embeddings_load_hint(Embeddings *e, Dataset *d, const CurateSource *src, int n,
                                const char *tokenizer, int is_default, const char *extra,
                                TaError *err) {
    int rc = embeddings_load(e, d, src, n, tokenizer, err);
    if (rc && is_default) {
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof err->msg - len,
                 " (no --source given: the default is field:embedding; pass --source lexical, "
                 "--source model:DIR or another field:NAME%s)", extra);
    }
    return rc;
}

/* dev (K, n) over the multiset of global response indices idx[0..n), n >= 2. */
static void multiset_deviation(double *dev, const Embeddings *e, const int *idx, int n) {
    for (int k = 0; k < e->K; k++)
        curate_deviation(dev + (size_t)k * n, e->emb[k], e->dim[k], idx, n);
}

/* Every response of a prompt with >= 2 responses must have a score (pairs, divpo); lo and
 * hi (may be NULL) receive the range of those scores. */
static int require_scores(const Dataset *d, const char *cmd, double *lo, double *hi,
                          TaError *err) {
    double a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < dataset_num_rows(d); i++) {
        DataRow row;
        dataset_row(d, i, &row);
        for (int j = 0; j < row.n_responses && row.n_responses >= 2; j++) {
            DataResponse x;
            dataset_response(d, row.first + (size_t)j, &x);
            if (!x.has_score)
                return ta_err(err, TA_EINPUT,
                              "%s:%ld: responses[%d] has no \"score\"; curate %s needs a score "
                              "on every response of a prompt it pairs",
                              dataset_path(d), row.line, j, cmd);
            a = fmin(a, x.score), b = fmax(b, x.score);
        }
    }
    if (lo) *lo = a;
    if (hi) *hi = b;
    return TA_OK;
}

static void source_list(char *out, size_t cap, const CurateSource *src, int n) {
    out[0] = '\0';
    size_t len = 0;
    for (int k = 0; k < n && len < cap; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", k ? ", " : "", src[k].spec);
}

static const char *plural(size_t n, const char *one, const char *many) {
    return n == 1 ? one : many;
}

/* ---- curate deviation -------------------------------------------------------------------- */
/* The response fields curate deviation sets (earlier values are replaced). */
static const char *const DEVIATION_FIELDS[] = {"deviation", "deviation/*", "weight", NULL};

/* Row i with every field kept; with dev != NULL (K, n) and w (n), each response gets
 * "deviation" (K == 1) or "deviation/<spec>" per source, and "weight". */
static void put_deviation_row(TaBuf *out, const Dataset *d, const DataRow *row,
                              const CurateSource *src, int K, const double *dev,
                              const double *w) {
    const int n = row->n_responses;
    jsonl_put_row_start(out, row, NULL);
    for (int a = 0; a < n; a++) {
        DataResponse x;
        dataset_response(d, row->first + (size_t)a, &x);
        if (a) ta_buf_puts(out, ",");
        jsonl_put_response_start(out, &x, dev ? DEVIATION_FIELDS : NULL);
        for (int k = 0; dev && k < K; k++) {
            char key[700];
            if (K == 1) snprintf(key, sizeof key, "deviation");
            else snprintf(key, sizeof key, "deviation/%s", src[k].spec);
            ta_buf_puts(out, ",");
            jsonl_put_string(out, key);
            ta_buf_puts(out, ":");
            jsonl_put_number(out, dev[(size_t)k * n + a]);
        }
        if (dev) {
            ta_buf_puts(out, ",\"weight\":");
            jsonl_put_number(out, w[a]);
        }
        ta_buf_puts(out, "}");
    }
    jsonl_put_row_end(out, row, NULL);
}

int curate_deviation_run(const CurateDeviationOptions *opt, CurateDeviationStats *st,
                         TaError *err) {
    CurateDeviationStats z = {0};
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    CurateSource def;
    int K;
    const CurateSource *src = sources_or_default(opt->sources, opt->n_sources, &def, &K);
    Dataset *d = NULL;
    Embeddings e = {0};
    TaBuf out = {0};
    double *dev = NULL, *w = NULL;
    int *idx = NULL;
    int rc = load(&d, opt->in, err);
    if (rc) goto end;
    if ((rc = embeddings_load_hint(&e, d, src, K, opt->tokenizer, opt->n_sources == 0, "", err)))
        goto end;
    int maxn = max_responses(d, 1);
    dev = ta_malloc((size_t)K * maxn * sizeof(double), "deviation");
    w = ta_malloc((size_t)maxn * sizeof(double), "deviation");
    idx = ta_malloc((size_t)maxn * sizeof(int), "deviation");
    st->prompts = dataset_num_rows(d);
    st->responses = dataset_size(d);
    for (size_t i = 0; i < st->prompts; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        int n = row.n_responses;
        if (n < 2) {
            st->skipped_single++;
            put_deviation_row(&out, d, &row, src, K, NULL, NULL);
            continue;
        }
        for (int a = 0; a < n; a++) idx[a] = (int)(row.first + (size_t)a);
        multiset_deviation(dev, &e, idx, n);
        st->degenerate += (size_t)curate_weights(w, NULL, dev, K, n);
        put_deviation_row(&out, d, &row, src, K, dev, w);
    }
    if ((rc = write_out(opt->out, &out, err))) goto end;
    if (opt->log) {
        char sl[2048];
        source_list(sl, sizeof sl, src, K);
        fprintf(opt->log, "curate deviation: %zu %s, %zu responses, sources: %s -> %s\n",
                st->prompts, plural(st->prompts, "prompt", "prompts"), st->responses, sl, opt->out);
        if (st->skipped_single)
            fprintf(opt->log, "  skipped %zu %s with a single response (written unchanged)\n",
                    st->skipped_single, plural(st->skipped_single, "prompt", "prompts"));
        if (st->degenerate)
            fprintf(opt->log,
                    "  %zu %s degenerate: every response is the least deviating in some "
                    "source, so every weight is 0\n",
                    st->degenerate, plural(st->degenerate, "prompt is", "prompts are"));
    }
end:
    free(dev);
    free(w);
    free(idx);
    free(out.p);
    embeddings_free(&e);
    dataset_free(d);
    return rc;
}

/* ---- curate pairs ------------------------------------------------------------------------ */
void curate_pairs_defaults(CuratePairsOptions *o) {
    memset(o, 0, sizeof *o);
    o->gap = CURATE_GAP_AUTO;
    o->seed = 42;
    o->min_weight = -1;
}

/* Pairs-per-prompt bins and chosen-weight bins of the summary. */
static const char *const PAIR_BINS[] = {"0", "1", "2", "3", "4", "5", "6-10", "11-20",
                                        "21-50", "51-100"};
enum { N_PAIR_BINS = 10, N_WEIGHT_BINS = 8 };
static int pair_bin(int n) {
    return n <= 5 ? n : n <= 10 ? 6 : n <= 20 ? 7 : n <= 50 ? 8 : 9;
}
static const char *const WEIGHT_BINS[] = {"0",   "(0,0.5)", "[0.5,1)", "1",
                                          "(1,1.5)", "[1.5,2)", "[2,4)",   ">=4"};
static int weight_bin(double w) {
    if (w == 0) return 0;
    if (w < 0.5) return 1;
    if (w < 1) return 2;
    if (w == 1) return 3;
    if (w < 1.5) return 4;
    if (w < 2) return 5;
    if (w < 4) return 6;
    return 7;
}

static void print_hist(FILE *f, const char *title, const char *const *names, const size_t *h,
                       int n) {
    fprintf(f, "  %s:", title);
    int any = 0;
    for (int b = 0; b < n; b++)
        if (h[b]) fprintf(f, "%s %s: %zu", any++ ? " |" : "", names[b], h[b]);
    if (!any) fprintf(f, " (none)");
    fputc('\n', f);
}

/* descending chosen score, ties by draw order */
typedef struct {
    CuratePair p;
    double key;
    int order;
} SortPair;
static int cmp_sortpair(const void *a, const void *b) {
    const SortPair *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

/* The preference line writer every pair-making command shares (curate_impl.h). */
void curate_pair_begin(TaBuf *b, const DataRow *row, const char *chosen, const char *rejected,
                       int with_weight, double weight, double cs, double rs) {
    ta_buf_puts(b, "{\"prompt\":");
    jsonl_put_string(b, row->prompt);
    ta_buf_puts(b, ",\"chosen\":");
    jsonl_put_string(b, chosen);
    ta_buf_puts(b, ",\"rejected\":");
    jsonl_put_string(b, rejected);
    if (with_weight) {
        ta_buf_puts(b, ",\"weight\":");
        jsonl_put_number(b, weight);
    }
    ta_buf_puts(b, ",\"chosen_score\":");
    jsonl_put_number(b, cs);
    ta_buf_puts(b, ",\"rejected_score\":");
    jsonl_put_number(b, rs);
}

void curate_pair_end(TaBuf *b, const DataRow *row, const char *const *more) {
    enum { MAX_SKIP = 32 };
    const char *skip[MAX_SKIP] = {"chosen", "rejected", "weight", "chosen_score", "rejected_score"};
    int n = 5;
    for (; more && *more; more++) {
        TA_ASSERT(n < MAX_SKIP - 1);
        skip[n++] = *more;
    }
    skip[n] = NULL;
    jsonl_put_fields(b, &row->extra, skip);
    ta_buf_puts(b, "}\n");
}

/* One preference row {"prompt", "chosen", "rejected", "weight"?, "chosen_score",
 * "rejected_score", <the prompt row's own fields>}. */
static void put_pair(TaBuf *b, const DataRow *row, const char *chosen, const char *rejected,
                     int with_weight, double weight, double cs, double rs) {
    curate_pair_begin(b, row, chosen, rejected, with_weight, weight, cs, rs);
    curate_pair_end(b, row, NULL);
}

/* A response's own "weight" field (mode 1): a finite number >= 0. */
static int response_weight(const Dataset *d, size_t r, double *w) {
    DataResponse x;
    dataset_response(d, r, &x);
    const DataField *f = data_fields_find(&x.extra, "weight");
    return f && data_field_number(f, w, NULL) == TA_OK && *w >= 0;
}

int curate_pairs_run(const CuratePairsOptions *opt, CuratePairsStats *st, TaError *err) {
    CuratePairsStats z = {0};
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    if (!(opt->gap >= 0 || opt->gap == -1 || opt->gap == CURATE_GAP_AUTO))
        return ta_err(err, TA_EINPUT, "--gap must be auto, a number >= 0, or -1 for all pairs; "
                      "got %g", opt->gap);
    if (opt->max_pairs_per_prompt < 0)
        return ta_err(err, TA_EINPUT, "--max-pairs-per-prompt must be >= 0 (0 = no cap)");
    Dataset *d = NULL;
    Embeddings e = {0};
    TaBuf out = {0};
    double *scores = NULL, *dev = NULL, *w = NULL;
    const char **texts = NULL;
    int *idx = NULL;
    SortPair *sp = NULL;
    CuratePair *pairs = NULL;
    CurateSource def;
    const CurateSource *src = opt->sources;
    int K = opt->n_sources;
    int rc = load(&d, opt->in, err);
    if (rc) goto end;
    /* the score range of the prompts paired: --gap auto is a fraction of it */
    if ((rc = require_scores(d, "pairs", &st->score_min, &st->score_max, err))) goto end;
    st->gap = opt->gap;
    if (opt->gap == CURATE_GAP_AUTO)
        st->gap = st->score_max > st->score_min
                      ? CURATE_GAP_AUTO_FRACTION * (st->score_max - st->score_min) : 0.0;
    /* where the weights come from */
    if (opt->no_weights) {
        st->weights_from = 2;
    } else if (K > 0) {
        st->weights_from = 0;
    } else {
        int all = 1;
        double tmp;
        for (size_t i = 0; i < dataset_num_rows(d) && all; i++) {
            DataRow row;
            dataset_row(d, i, &row);
            for (int j = 0; j < row.n_responses && all && row.n_responses >= 2; j++)
                all = response_weight(d, row.first + (size_t)j, &tmp);
        }
        st->weights_from = all ? 1 : 0;
        if (!all) src = sources_or_default(src, K, &def, &K); /* K is 0 here */
    }
    if (st->weights_from == 0 &&
        (rc = embeddings_load_hint(&e, d, src, K, opt->tokenizer, opt->n_sources == 0,
                                   ", or --source none for unweighted pairs", err)))
        goto end;
    int maxn = max_responses(d, 2);
    int maxp = st->gap == -1 ? CURATE_ALL_PAIRS_MAX : maxn / 2;
    scores = ta_malloc((size_t)maxn * sizeof(double), "pairs");
    texts = ta_malloc((size_t)maxn * sizeof(char *), "pairs");
    pairs = ta_malloc((size_t)maxp * sizeof(CuratePair), "pairs");
    sp = ta_malloc((size_t)maxp * sizeof(SortPair), "pairs");
    idx = ta_malloc((size_t)2 * maxp * sizeof(int), "pairs");
    dev = ta_malloc((size_t)(K ? K : 1) * 2 * maxp * sizeof(double), "pairs");
    w = ta_malloc((size_t)2 * maxp * sizeof(double), "pairs");
    size_t hist_pairs[N_PAIR_BINS] = {0}, hist_w[N_WEIGHT_BINS] = {0};
    PairWeightStats wstats = {0};
    st->prompts = dataset_num_rows(d);
    for (size_t i = 0; i < st->prompts; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        int n = row.n_responses;
        size_t f = row.first;
        if (n < 2) {
            st->skipped_single++;
            hist_pairs[0]++;
            continue;
        }
        row_responses(d, &row, texts, scores);
        TaRng rng;
        ta_rng_seed(&rng, curate_prompt_seed(opt->seed, i));
        int fb = 0;
        int np = curate_sample_pairs(pairs, scores, texts, n, st->gap, &rng, &fb);
        if (np == 0) {
            st->skipped_no_pair++;
            hist_pairs[0]++;
            continue;
        }
        st->fallback_prompts += (size_t)fb;
        if (opt->max_pairs_per_prompt > 0 && np > opt->max_pairs_per_prompt) {
            if (opt->sort_with_score) {
                for (int t = 0; t < np; t++)
                    sp[t].p = pairs[t], sp[t].key = scores[pairs[t].chosen], sp[t].order = t;
                qsort(sp, (size_t)np, sizeof(SortPair), cmp_sortpair);
                for (int t = 0; t < np; t++) pairs[t] = sp[t].p;
            }
            np = opt->max_pairs_per_prompt;
            st->capped_prompts++;
        }
        /* chosen weights: over the multiset of the responses in this prompt's pairs */
        if (st->weights_from == 0) {
            for (int t = 0; t < np; t++)
                idx[2 * t] = (int)f + pairs[t].chosen, idx[2 * t + 1] = (int)f + pairs[t].rejected;
            multiset_deviation(dev, &e, idx, 2 * np);
            st->degenerate += (size_t)curate_weights(w, NULL, dev, K, 2 * np);
        }
        for (int t = 0; t < np; t++) {
            double wc = 1.0;
            if (st->weights_from == 0) wc = w[2 * t];
            else if (st->weights_from == 1) response_weight(d, f + (size_t)pairs[t].chosen, &wc);
            if (opt->min_weight >= 0 && wc < opt->min_weight) wc = opt->min_weight, st->floored++;
            hist_w[weight_bin(wc)]++;
            pair_weights_add(&wstats, wc);
            put_pair(&out, &row, texts[pairs[t].chosen], texts[pairs[t].rejected],
                          st->weights_from != 2, wc, scores[pairs[t].chosen],
                          scores[pairs[t].rejected]);
        }
        st->pairs += (size_t)np;
        hist_pairs[pair_bin(np)]++;
    }
    if (st->pairs == 0) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: no pairs: %zu %s with a single response, %zu without two responses "
                    "whose scores (and texts) differ; nothing written to %s",
                    dataset_path(d), st->skipped_single,
                    plural(st->skipped_single, "prompt", "prompts"), st->skipped_no_pair, opt->out);
        goto end;
    }
    if ((rc = write_out(opt->out, &out, err))) goto end;
    if (opt->log) {
        FILE *L = opt->log;
        char gap[160], sl[2048];
        if (opt->gap == -1) snprintf(gap, sizeof gap, "all pairs (at most %d per prompt)",
                                     CURATE_ALL_PAIRS_MAX);
        else if (opt->gap == CURATE_GAP_AUTO)
            snprintf(gap, sizeof gap, "gap auto = %g x score range [%g, %g] = %g",
                     CURATE_GAP_AUTO_FRACTION, st->score_min, st->score_max, st->gap);
        else snprintf(gap, sizeof gap, "gap %g", opt->gap);
        fprintf(L, "curate pairs: %zu %s -> %zu %s (%s, seed %llu) -> %s\n", st->prompts,
                plural(st->prompts, "prompt", "prompts"), st->pairs,
                plural(st->pairs, "pair", "pairs"), gap, (unsigned long long)opt->seed, opt->out);
        source_list(sl, sizeof sl, src, K);
        if (st->weights_from == 0)
            fprintf(L, "  weights: chosen's deviation weight over each prompt's paired "
                       "responses, sources: %s\n", sl);
        else if (st->weights_from == 1)
            fprintf(L, "  weights: the responses' own \"weight\" fields (computed over ALL of a "
                       "prompt's responses, e.g. by curate deviation); pass --source to compute "
                       "them over the paired responses as Chung et al. 2025 do\n");
        else
            fprintf(L, "  weights: none (--source none: plain DPO pairs)\n");
        print_hist(L, "pairs per prompt", PAIR_BINS, hist_pairs, N_PAIR_BINS);
        if (st->weights_from != 2) {
            print_hist(L, "chosen weight", WEIGHT_BINS, hist_w, N_WEIGHT_BINS);
            char wl[256];
            pair_weights_describe(&wstats, wl, sizeof wl);
            fprintf(L, "  %s\n", wl);
        }
        if (st->skipped_single || st->skipped_no_pair)
            fprintf(L, "  skipped: %zu %s with a single response, %zu with no two responses "
                       "whose scores (and texts) differ\n",
                    st->skipped_single, plural(st->skipped_single, "prompt", "prompts"),
                    st->skipped_no_pair);
        size_t paired = st->prompts - st->skipped_single - st->skipped_no_pair;
        if (st->fallback_prompts && st->gap != -1)
            fprintf(L, "  gap fallback: %zu of %zu paired %s (%.0f%%) had pairs closer than the "
                       "gap %g (drawn among any different scores)%s\n",
                    st->fallback_prompts, paired, plural(paired, "prompt", "prompts"),
                    100.0 * (double)st->fallback_prompts / (double)(paired ? paired : 1), st->gap,
                    2 * st->fallback_prompts > paired
                        ? "; most prompts fell back: the gap may be too large for these "
                          "scores (--gap auto scales it to the score range)"
                        : "");
        if (st->capped_prompts)
            fprintf(L, "  %zu %s capped at %d pairs%s\n", st->capped_prompts,
                    plural(st->capped_prompts, "prompt", "prompts"), opt->max_pairs_per_prompt,
                    opt->sort_with_score ? " (highest chosen scores kept)" : "");
        if (st->degenerate)
            fprintf(L, "  %zu degenerate %s: every weight 0 (each response least deviating in "
                       "some source)\n",
                    st->degenerate, plural(st->degenerate, "prompt", "prompts"));
        if (opt->min_weight >= 0)
            fprintf(L, "  %zu chosen %s floored at %g\n", st->floored,
                    plural(st->floored, "weight", "weights"), opt->min_weight);
    }
end:
    free(scores);
    free(texts);
    free(pairs);
    free(sp);
    free(idx);
    free(dev);
    free(w);
    free(out.p);
    embeddings_free(&e);
    dataset_free(d);
    return rc;
}

/* ---- curate divpo ------------------------------------------------------------------------ */
void curate_divpo_defaults(CurateDivpoOptions *o) {
    memset(o, 0, sizeof *o);
    o->rho = 25;
    o->max_pairs = 2;
    o->seed = 42;
}

typedef struct {
    const Embeddings *e;
    const double *logp; /* criterion logprob */
    size_t first;       /* the prompt's first global response */
    double *dev, *w;    /* scratch (K, maxn), (maxn) */
    int *gidx;          /* scratch (maxn) */
} DivCtx;

/* criterion deviation: u_i of the pool (min-max + geometric mean, Chung et al. 2025) */
static int div_deviation(double *d, const int *idx, int n, void *ctx, TaError *err) {
    (void)err;
    DivCtx *c = ctx;
    if (n < 2) {
        for (int a = 0; a < n; a++) d[a] = 0;
        return TA_OK;
    }
    for (int a = 0; a < n; a++) c->gidx[a] = (int)c->first + idx[a];
    multiset_deviation(c->dev, c->e, c->gidx, n);
    curate_weights(c->w, d, c->dev, c->e->K, n);
    return TA_OK;
}

/* criterion logprob: D(y) = -S(y) */
static int div_logprob(double *d, const int *idx, int n, void *ctx, TaError *err) {
    (void)err;
    DivCtx *c = ctx;
    for (int a = 0; a < n; a++) d[a] = -c->logp[c->first + (size_t)idx[a]];
    return TA_OK;
}

int curate_divpo_run(const CurateDivpoOptions *opt, CurateDivpoStats *st, TaError *err) {
    CurateDivpoStats z = {0};
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    if (!(opt->rho > 0 && opt->rho <= 100))
        return ta_err(err, TA_EINPUT, "--rho must be a percentage in (0, 100], got %g", opt->rho);
    if (opt->max_pairs < 1)
        return ta_err(err, TA_EINPUT, "--max-pairs must be >= 1, got %d", opt->max_pairs);
    if (opt->criterion == CURATE_DIVPO_LOGPROB && (!opt->model || !*opt->model))
        return ta_err(err, TA_EINPUT, "--criterion logprob needs --model DIR");
    Dataset *d = NULL;
    Embeddings e = {0};
    TaBuf out = {0};
    double *logp = NULL, *scores = NULL;
    const char **texts = NULL;
    CuratePair *pairs = NULL;
    DivCtx c = {0};
    CurateSource def;
    int K;
    const CurateSource *src = sources_or_default(opt->sources, opt->n_sources, &def, &K);
    int rc = load(&d, opt->in, err);
    if (rc) goto end;
    if ((rc = require_scores(d, "divpo", NULL, NULL, err))) goto end;
    if (opt->criterion == CURATE_DIVPO_DEVIATION) {
        if ((rc = embeddings_load_hint(&e, d, src, K, opt->tokenizer, opt->n_sources == 0, "",
                                       err)))
            goto end;
    } else if ((rc = curate_logprobs(d, opt->model, opt->tokenizer, &logp, err))) {
        goto end;
    }
    int maxn = max_responses(d, 2);
    scores = ta_malloc((size_t)maxn * sizeof(double), "divpo");
    texts = ta_malloc((size_t)maxn * sizeof(char *), "divpo");
    pairs = ta_malloc((size_t)opt->max_pairs * sizeof(CuratePair), "divpo");
    c.e = &e;
    c.logp = logp;
    c.dev = ta_malloc((size_t)K * maxn * sizeof(double), "divpo");
    c.w = ta_malloc((size_t)maxn * sizeof(double), "divpo");
    c.gidx = ta_malloc((size_t)maxn * sizeof(int), "divpo");
    CurateDiversityFn fn = opt->criterion == CURATE_DIVPO_DEVIATION ? div_deviation : div_logprob;
    st->prompts = dataset_num_rows(d);
    for (size_t i = 0; i < st->prompts; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        int n = row.n_responses;
        if (n < 2) {
            st->skipped_single++;
            continue;
        }
        row_responses(d, &row, texts, scores);
        TaRng rng;
        ta_rng_seed(&rng, curate_prompt_seed(opt->seed, i));
        c.first = row.first;
        int m = curate_divpo_select(pairs, scores, n, opt->rho, opt->max_pairs, fn, &c, &rng, err);
        if (m < 0) {
            rc = TA_EINPUT;
            goto end;
        }
        for (int t = 0; t < m; t++) {
            int ch = pairs[t].chosen, rj = pairs[t].rejected;
            if (scores[ch] == scores[rj]) {
                st->dropped_equal_score++;
                continue;
            }
            if (!strcmp(texts[ch], texts[rj])) {
                st->dropped_identical++;
                continue;
            }
            put_pair(&out, &row, texts[ch], texts[rj], 0, 1.0, scores[ch], scores[rj]);
            st->pairs++;
        }
    }
    if (st->pairs == 0) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: no pairs: %zu %s with a single response, %zu pairs dropped for equal "
                    "scores, %zu for identical texts; nothing written to %s",
                    dataset_path(d), st->skipped_single,
                    plural(st->skipped_single, "prompt", "prompts"), st->dropped_equal_score,
                    st->dropped_identical, opt->out);
        goto end;
    }
    if ((rc = write_out(opt->out, &out, err))) goto end;
    if (opt->log) {
        char sl[2048];
        if (opt->criterion == CURATE_DIVPO_DEVIATION) source_list(sl, sizeof sl, src, K);
        else snprintf(sl, sizeof sl, "-log p(y|x) under %s", opt->model);
        fprintf(opt->log,
                "curate divpo: %zu %s -> %zu %s (rho %g%%, max %d pairs per prompt, "
                "criterion %s: %s, seed %llu) -> %s\n",
                st->prompts, plural(st->prompts, "prompt", "prompts"), st->pairs,
                plural(st->pairs, "pair", "pairs"), opt->rho, opt->max_pairs,
                opt->criterion == CURATE_DIVPO_DEVIATION ? "deviation" : "logprob", sl,
                (unsigned long long)opt->seed, opt->out);
        if (st->skipped_single)
            fprintf(opt->log, "  skipped %zu %s with a single response\n", st->skipped_single,
                    plural(st->skipped_single, "prompt", "prompts"));
        if (st->dropped_equal_score || st->dropped_identical)
            fprintf(opt->log, "  dropped %zu pairs with equal scores, %zu with identical texts\n",
                    st->dropped_equal_score, st->dropped_identical);
    }
end:
    free(logp);
    free(scores);
    free(texts);
    free(pairs);
    free(c.dev);
    free(c.w);
    free(c.gidx);
    free(out.p);
    embeddings_free(&e);
    dataset_free(d);
    return rc;
}
