/* dsweight.c — `curate dsweight` (include/tinyalign/curate.h): the distribution-shift
 * filter of IWSI (Jiang et al., AAAI 2025, arXiv 2408.09849) as the authors' code runs it
 * (record_loss.py, record_weights.py, filter_data.py mode "K-Mixed"), and the filters it is
 * compared with, over the output of `curate vote`.
 *
 * Losses: a loss model M_v (the model fine-tuned on a small labelled valid set D_v) scores
 * every sample and every D_v row with the score module's logprob: scorer (one forward-only
 * pass, batched, identical rows scored once). The per-example loss is the mean token
 * cross-entropy
 *   scope full (default, as the authors' code): l = -logprob_full_mean, every predicted
 *     token of [BOS] prompt response [EOS] (the prompt's tokens after BOS included);
 *   scope response:                             l = -logprob_mean, the response and EOS.
 *   L_v = mean over D_v of l (same scope).
 * Importance ratio and distribution-shift extent (record_weights.py, filter_data.py):
 *   w  = clip(L_v / l, 0, 2), and w = 0 when l <= 0 or L_v <= 0;
 *   DS = w            if w > 1      (the sample is easier for M_v than D_v is: DS in (1, 2])
 *      = min(1/w, 5)  otherwise     (harder: DS in [1, 5]; w = 0 -> 5, the limit)
 * so DS >= 1 and DS = 1 means no shift.
 * Keep rule (--filter ds): the population is the majority-consistent samples with w > 0
 * (the authors' code multiplies the vote mark by w and ranks the positive products, so a
 * consistent sample with w = 0 is dropped without being ranked). With their DS sorted
 * ascending as s[0..n), threshold = s[floor(k n)] and a sample is kept iff DS < threshold
 * (strictly: samples tied at the threshold are all dropped, e.g. a block of w clipped at 2).
 * k = 1 keeps the whole population (the authors' index would run past the end).
 * The comparison filters (filter_data.py): vote (every consistent sample, LMSI),
 * groundtruth (every sample whose answer equals the gold one: an upper bound), entropy
 * (the consistent samples of prompts whose normalised vote entropy is <= the maximum; a
 * prompt with one parsed answer has none and is dropped, as theirs), random (floor(k n)
 * consistent samples drawn without replacement, seeded: a data-size control).
 *
 * Not here: the vote (vote.c), training (an SFT config reads the rows and their "weight").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/curate.h"
#include "tinyalign/score.h"

/* ---- the math --------------------------------------------------------------------------- */
double curate_ds_iw(double mean_valid_loss, double loss) {
    if (!(loss > 0) || !(mean_valid_loss > 0)) return 0.0;
    double w = mean_valid_loss / loss;
    return w > 2 ? 2.0 : w;
}

double curate_ds_extent(double w) {
    if (w > 1) return w;
    if (!(w > 0)) return 5.0; /* the limit of min(1/w, 5) */
    double r = 1.0 / w;
    return r < 5 ? r : 5.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double curate_ds_threshold(const double *ds, size_t n, double k) {
    if (n == 0 || k >= 1) return INFINITY;
    double *s = ta_malloc(sizeof(double) * n, "ds threshold");
    memcpy(s, ds, sizeof(double) * n);
    qsort(s, n, sizeof(double), cmp_double);
    size_t at = (size_t)floor((double)n * k); /* Python's int(len * k) */
    double t = s[at < n ? at : n - 1];
    free(s);
    return t;
}

size_t curate_random_keep(uint8_t *keep, size_t n, double k, uint64_t seed) {
    size_t m = k >= 1 ? n : (size_t)floor((double)n * k);
    uint32_t *idx = ta_malloc(sizeof(uint32_t) * (n ? n : 1), "random keep");
    for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i, keep[i] = 0;
    TaRng rng;
    ta_rng_seed(&rng, seed);
    for (size_t t = 0; t < m; t++) { /* partial Fisher-Yates: idx[0..m) is a uniform m-subset */
        size_t j = t + (size_t)ta_rng_below(&rng, n - t);
        uint32_t tmp = idx[t];
        idx[t] = idx[j], idx[j] = tmp;
        keep[idx[t]] = 1;
    }
    free(idx);
    return m;
}

const char *curate_filter_name(CurateFilter f) {
    static const char *names[] = {"ds", "vote", "groundtruth", "entropy", "random"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "?";
}

void curate_dsweight_defaults(CurateDsweightOptions *o) {
    memset(o, 0, sizeof *o);
    o->filter = CURATE_FILTER_DS;
    o->keep = 0.79;
    o->max_entropy = NAN;
    o->seed = 42;
}

/* ---- reading the vote's marks ------------------------------------------------------------ */
/* A boolean field: 1 / 0, or -1 when absent; TA_EINPUT when present but not a boolean. */
static int bool_field(const DataFields *f, const char *key, int *out, const char *where,
                      int j, TaError *err) {
    const DataField *x = data_fields_find(f, key);
    *out = -1;
    if (!x) return TA_OK;
    if (!strcmp(x->value, "true")) *out = 1;
    else if (!strcmp(x->value, "false")) *out = 0;
    else return ta_err(err, TA_EINPUT, "%s responses[%d]: \"%s\" must be true or false, found %.40s",
                       where, j, key, x->value);
    return TA_OK;
}

/* ---- the loss model ---------------------------------------------------------------------- */
/* The tokenizer the data was made with (--tokenizer) must be the loss model's own. */
static int check_tokenizer(const char *model, const char *tokenizer, TaError *err) {
    char dir[4096], path[4200];
    TaError e = {0};
    if (checkpoint_resolve(model, dir, sizeof dir, &e) != TA_OK)
        return ta_err(err, TA_EINPUT, "--model: %s", e.msg);
    ta_pathf(path, sizeof path, "%s/tokenizer.model", dir);
    struct stat st;
    if (stat(path, &st) != 0) return TA_OK; /* the model has none: --tokenizer is used */
    size_t na, nb;
    char *a = ta_read_file(tokenizer, &na, &e);
    if (!a) return ta_err(err, TA_EINPUT, "--tokenizer: %s", e.msg);
    char *b = ta_read_file(path, &nb, &e);
    int same = b && na == nb && !memcmp(a, b, na);
    free(a);
    free(b);
    if (!same)
        return ta_err(err, TA_EINPUT, "--tokenizer %s differs from the loss model's tokenizer %s: "
                      "the loss model must read the data with the tokenizer it was made with "
                      "(fine-tune it from the sampling model)", tokenizer, path);
    return TA_OK;
}

/* Mean token loss of n requests under the scorer, per the scope. */
static int request_losses(Scorer *sc, const ScoreRequest *req, size_t n, CurateLossScope scope,
                          double *loss, size_t *truncated, TaError *err) {
    ScoreResult *res = ta_calloc(sizeof(ScoreResult) * (n ? n : 1), "dsweight losses");
    int rc = scorer_score(sc, req, n, res, err);
    const char *key = scope == CURATE_LOSS_RESPONSE ? "logprob_mean" : "logprob_full_mean";
    for (size_t i = 0; i < n && rc == TA_OK; i++) {
        const ScoreField *f = score_result_field(&res[i], key);
        const ScoreField *t = score_result_field(&res[i], "truncated");
        TA_ASSERT(f); /* the logprob: kind always sets it */
        loss[i] = -strtod(f->value, NULL);
        *truncated += t && !strcmp(t->value, "true");
    }
    for (size_t i = 0; i < n; i++) score_result_free(&res[i]);
    free(res);
    return rc;
}

/* L_v over the valid set: SFT rows {"prompt", "completion", ...}. */
static int valid_loss(Scorer *sc, const CurateDsweightOptions *o, double *mean, size_t *rows,
                      size_t *truncated, TaError *err) {
    Dataset *v = NULL;
    int rc = dataset_load(&v, o->valid, DS_PROMPTS, NULL, NULL, err);
    if (rc != TA_OK) return rc;
    size_t n = dataset_num_rows(v);
    ScoreRequest *req = ta_calloc(sizeof(ScoreRequest) * (n ? n : 1), "valid set");
    char **text = ta_calloc(sizeof(char *) * (n ? n : 1), "valid set");
    char **where = ta_calloc(sizeof(char *) * (n ? n : 1), "valid set");
    for (size_t i = 0; i < n && rc == TA_OK; i++) {
        DataRow row;
        dataset_row(v, i, &row);
        const DataField *c = data_fields_find(&row.extra, "completion");
        if (!c || c->value[0] != '"' || !strcmp(c->value, "\"\"")) {
            rc = ta_err(err, TA_EINPUT, "%s:%ld: --valid rows are SFT rows {\"prompt\", "
                        "\"completion\"}: %s", o->valid, row.line,
                        c ? "\"completion\" must be a non-empty string" : "no \"completion\"");
            break;
        }
        if (!row.prompt[0]) {
            rc = ta_err(err, TA_EINPUT, "%s:%ld: field \"prompt\" is empty", o->valid, row.line);
            break;
        }
        text[i] = data_field_text(c);
        size_t cap = strlen(o->valid) + 32;
        where[i] = ta_malloc(cap, "valid set");
        snprintf(where[i], cap, "%s:%ld", o->valid, row.line);
        req[i] = (ScoreRequest){.prompt = row.prompt, .response = text[i], .where = where[i]};
    }
    double *l = ta_malloc(sizeof(double) * (n ? n : 1), "valid set");
    if (rc == TA_OK) rc = request_losses(sc, req, n, o->scope, l, truncated, err);
    if (rc == TA_OK) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += l[i];
        *mean = s / (double)n;
        *rows = n;
    }
    for (size_t i = 0; i < n; i++) free(text[i]), free(where[i]);
    free(text);
    free(where);
    free(req);
    free(l);
    dataset_free(v);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------ */
typedef struct {
    int consistent, correct; /* correct -1: no gold */
    double loss, w, ds;
    uint8_t keep;
} Sample;

static const char *const ROW_SKIP[] = {"prompt", "completion", "weight", "loss", "iw", "ds",
                                       "extracted", "consistent", "correct", NULL};

static void put_sft_row(TaBuf *b, const DataRow *row, const DataResponse *x, const Sample *s,
                        int with_ds) {
    ta_buf_puts(b, "{\"prompt\":");
    jsonl_put_string(b, row->prompt);
    ta_buf_puts(b, ",\"completion\":");
    jsonl_put_string(b, x->text);
    ta_buf_printf(b, ",\"weight\":%d", s->keep ? 1 : 0);
    if (with_ds) {
        ta_buf_puts(b, ",\"loss\":");
        jsonl_put_number(b, s->loss);
        ta_buf_puts(b, ",\"iw\":");
        jsonl_put_number(b, s->w);
        ta_buf_puts(b, ",\"ds\":");
        jsonl_put_number(b, s->ds);
    }
    const DataField *a = data_fields_find(&x->extra, "answer");
    ta_buf_puts(b, ",\"extracted\":");
    ta_buf_puts(b, a ? a->value : "null");
    ta_buf_printf(b, ",\"consistent\":%s", s->consistent ? "true" : "false");
    if (s->correct >= 0) ta_buf_printf(b, ",\"correct\":%s", s->correct ? "true" : "false");
    jsonl_put_fields(b, &row->extra, ROW_SKIP);
    ta_buf_puts(b, "}\n");
}

/* The distribution of DS over the population, and the clip bounds' counts. */
static void log_ds(FILE *log, const Sample *s, size_t n, const CurateDsweightStats *st) {
    double *v = ta_malloc(sizeof(double) * (n ? n : 1), "ds summary");
    size_t m = 0, at2 = 0, at5 = 0, zero = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].consistent) continue;
        v[m++] = s[i].ds;
        at2 += s[i].w == 2;
        at5 += s[i].ds == 5;
        zero += s[i].w == 0;
    }
    if (m) {
        qsort(v, m, sizeof(double), cmp_double);
        static const double q[] = {0, 0.1, 0.25, 0.5, 0.75, 0.9, 1};
        fprintf(log, "  DS of the %zu consistent samples: min", m);
        for (int i = 0; i < 7; i++)
            fprintf(log, "%s %.4g", i == 0 ? "" : i == 6 ? " max" : i == 3 ? " median" : "",
                    v[(size_t)floor(q[i] * (double)(m - 1) + 0.5)]);
        fprintf(log, " (quantiles 0/10/25/50/75/90/100%%)\n");
        fprintf(log, "  w clipped at 2 (DS 2) %zu, DS capped at 5 %zu, w = 0 %zu\n", at2, at5, zero);
    }
    (void)st;
    free(v);
}

int curate_dsweight_run(const CurateDsweightOptions *o, CurateDsweightStats *st, TaError *err) {
    CurateDsweightStats z;
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    const int need_keep = o->filter == CURATE_FILTER_DS || o->filter == CURATE_FILTER_RANDOM;
    if (need_keep && !(o->keep > 0 && o->keep <= 1))
        return ta_err(err, TA_EINPUT, "--keep must be in (0, 1], got %g", o->keep);
    if (o->filter == CURATE_FILTER_ENTROPY && !(o->max_entropy >= 0))
        return ta_err(err, TA_EINPUT, "--filter entropy needs --max-entropy H >= 0 (the vote "
                      "entropy divided by ln(answers parsed), in [0, 1])");
    if (o->filter == CURATE_FILTER_DS && (!o->model || !o->valid))
        return ta_err(err, TA_EINPUT, "--filter ds needs --model M_V and --valid VALID.jsonl");
    if (!o->model != !o->valid)
        return ta_err(err, TA_EINPUT, "--model and --valid go together (the loss model and the "
                      "valid set its mean loss is taken over)");
    const int with_ds = o->model != NULL;
    Dataset *d = NULL;
    Scorer *sc = NULL;
    Sample *s = NULL;
    ScoreRequest *req = NULL;
    double *loss = NULL;
    char **where = NULL;
    TaBuf out = {0};
    int rc = dataset_load(&d, o->in, DS_MULTI, NULL, NULL, err);
    if (rc != TA_OK) return rc;
    const size_t R = dataset_size(d), P = dataset_num_rows(d);
    st->prompts = P, st->responses = R;
    s = ta_calloc(sizeof(Sample) * (R ? R : 1), "dsweight");
    /* 1. the vote's marks */
    for (size_t i = 0; i < P && rc == TA_OK; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        char w[4200];
        snprintf(w, sizeof w, "%s:%ld", o->in, row.line);
        int ent_ok = 1;
        if (o->filter == CURATE_FILTER_ENTROPY) {
            const DataField *h = data_fields_find(&row.extra, "vote_entropy_norm");
            double hv = 0;
            TaError e = {0};
            if (!h) {
                rc = ta_err(err, TA_EINPUT, "%s: no \"vote_entropy_norm\" (run curate vote first)", w);
                break;
            }
            if (strcmp(h->value, "null") && data_field_number(h, &hv, &e) != TA_OK) {
                rc = ta_err(err, TA_EINPUT, "%s: %s", w, e.msg);
                break;
            }
            ent_ok = strcmp(h->value, "null") && hv <= o->max_entropy;
            st->entropy_dropped_prompts += !ent_ok;
        }
        for (int j = 0; j < row.n_responses && rc == TA_OK; j++) {
            DataResponse x;
            Sample *q = &s[row.first + (size_t)j];
            dataset_response(d, row.first + (size_t)j, &x);
            if ((rc = bool_field(&x.extra, "consistent", &q->consistent, w, j, err)) != TA_OK ||
                (rc = bool_field(&x.extra, "correct", &q->correct, w, j, err)) != TA_OK)
                break;
            if (q->consistent < 0) {
                rc = ta_err(err, TA_EINPUT, "%s responses[%d]: no \"consistent\" mark (run "
                            "curate vote first)", w, j);
                break;
            }
            if (o->filter == CURATE_FILTER_GROUNDTRUTH && q->correct < 0) {
                rc = ta_err(err, TA_EINPUT, "%s responses[%d]: no \"correct\" mark: --filter "
                            "groundtruth needs a gold \"answer\" on every row before curate vote", w, j);
                break;
            }
            st->consistent += q->consistent == 1;
            q->keep = o->filter == CURATE_FILTER_ENTROPY ? (q->consistent && ent_ok) : 0;
        }
    }
    if (rc != TA_OK) goto end;
    /* 2. losses under M_v, w and DS */
    if (with_ds) {
        if (o->tokenizer && (rc = check_tokenizer(o->model, o->tokenizer, err)) != TA_OK) goto end;
        ScorerOptions so;
        scorer_options_default(&so);
        so.tokenizer = o->tokenizer;
        so.batch_size = o->batch_size;
        char spec[SCORER_SPEC_MAX];
        snprintf(spec, sizeof spec, "logprob:%s", o->model);
        if ((rc = scorer_open(&sc, spec, &so, err)) != TA_OK) goto end;
        if ((rc = valid_loss(sc, o, &st->mean_valid_loss, &st->valid_rows, &st->truncated, err)) !=
            TA_OK)
            goto end;
        req = ta_calloc(sizeof(ScoreRequest) * (R ? R : 1), "dsweight");
        where = ta_calloc(sizeof(char *) * (R ? R : 1), "dsweight");
        for (size_t i = 0; i < P; i++) {
            DataRow row;
            dataset_row(d, i, &row);
            for (int j = 0; j < row.n_responses; j++) {
                size_t r = row.first + (size_t)j, cap = strlen(o->in) + 64;
                DataResponse x;
                dataset_response(d, r, &x);
                where[r] = ta_malloc(cap, "dsweight");
                snprintf(where[r], cap, "%s:%ld responses[%d]", o->in, row.line, j);
                req[r] = (ScoreRequest){.prompt = row.prompt, .response = x.text, .where = where[r]};
            }
        }
        loss = ta_malloc(sizeof(double) * (R ? R : 1), "dsweight");
        if ((rc = request_losses(sc, req, R, o->scope, loss, &st->truncated, err)) != TA_OK) goto end;
        for (size_t r = 0; r < R; r++) {
            s[r].loss = loss[r];
            s[r].w = curate_ds_iw(st->mean_valid_loss, loss[r]);
            s[r].ds = curate_ds_extent(s[r].w);
        }
    }
    /* 3. the filter */
    if (o->filter == CURATE_FILTER_DS) {
        double *pop = ta_malloc(sizeof(double) * (R ? R : 1), "dsweight");
        size_t n = 0;
        for (size_t r = 0; r < R; r++)
            if (s[r].consistent && s[r].w > 0) pop[n++] = s[r].ds;
        st->ranked = n;
        st->zero_w = st->consistent - n;
        st->threshold = curate_ds_threshold(pop, n, o->keep);
        for (size_t r = 0; r < R; r++)
            s[r].keep = s[r].consistent && s[r].w > 0 && s[r].ds < st->threshold;
        free(pop);
    } else if (o->filter == CURATE_FILTER_RANDOM) {
        uint8_t *k = ta_malloc(st->consistent ? st->consistent : 1, "dsweight");
        st->ranked = st->consistent;
        curate_random_keep(k, st->consistent, o->keep, o->seed);
        for (size_t r = 0, c = 0; r < R; r++)
            if (s[r].consistent) s[r].keep = k[c++];
        free(k);
    } else if (o->filter == CURATE_FILTER_VOTE) {
        for (size_t r = 0; r < R; r++) s[r].keep = s[r].consistent == 1;
    } else if (o->filter == CURATE_FILTER_GROUNDTRUTH) {
        for (size_t r = 0; r < R; r++) s[r].keep = s[r].correct == 1;
    }
    /* 4. the rows */
    for (size_t i = 0; i < P; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        for (int j = 0; j < row.n_responses; j++) {
            size_t r = row.first + (size_t)j;
            st->kept += s[r].keep;
            st->kept_correct += s[r].keep && s[r].correct == 1;
            st->with_gold += s[r].keep && s[r].correct >= 0;
            if (!s[r].keep && !o->write_all) continue;
            DataResponse x;
            dataset_response(d, r, &x);
            put_sft_row(&out, &row, &x, &s[r], with_ds);
        }
    }
    if (st->kept == 0 && !o->write_all)
        rc = ta_err(err, TA_EINPUT, "%s: --filter %s kept no sample (%zu responses, %zu "
                    "consistent); nothing written to %s", o->in, curate_filter_name(o->filter),
                    R, st->consistent, o->out);
    if (rc == TA_OK) rc = ta_write_file_atomic(o->out, out.p ? out.p : "", out.n, err);
    if (rc == TA_OK && o->log) {
        fprintf(o->log, "curate dsweight: %zu prompts, %zu responses (%zu consistent) -> %s\n", P,
                R, st->consistent, o->out);
        if (with_ds) {
            fprintf(o->log, "  loss model %s, scope %s: L_v = %.6g over %zu valid rows\n",
                    o->model, o->scope == CURATE_LOSS_RESPONSE ? "response" : "full",
                    st->mean_valid_loss, st->valid_rows);
            if (st->truncated)
                fprintf(o->log, "  %zu rows truncated to the loss model's max_seq_len\n",
                        st->truncated);
            log_ds(o->log, s, R, st);
        }
        if (o->filter == CURATE_FILTER_DS)
            fprintf(o->log, "  filter ds, keep %g: threshold DS %.6g at rank floor(%g * %zu); "
                    "kept %zu, dropped %zu of the consistent (%zu with w = 0 unranked)\n",
                    o->keep, st->threshold, o->keep, st->ranked, st->kept,
                    st->consistent - st->kept, st->zero_w);
        else if (o->filter == CURATE_FILTER_ENTROPY)
            fprintf(o->log, "  filter entropy <= %g: %zu prompts dropped; kept %zu, dropped %zu of "
                    "the consistent\n", o->max_entropy, st->entropy_dropped_prompts, st->kept,
                    st->consistent - st->kept);
        else
            fprintf(o->log, "  filter %s%s: kept %zu, dropped %zu of the %zu responses\n",
                    curate_filter_name(o->filter), o->filter == CURATE_FILTER_RANDOM ? " (seeded)" : "",
                    st->kept, R - st->kept, R);
        if (st->with_gold)
            fprintf(o->log, "  kept samples correct: %zu of %zu (%.4f)\n", st->kept_correct,
                    st->with_gold, (double)st->kept_correct / (double)st->with_gold);
        fprintf(o->log, "  wrote %zu SFT rows%s\n", o->write_all ? R : st->kept,
                o->write_all ? " (all, weight 1 kept / 0 dropped)" : " (kept, weight 1)");
    }
end:
    if (where)
        for (size_t r = 0; r < R; r++) free(where[r]);
    free(where);
    free(req);
    free(loss);
    free(s);
    free(out.p);
    scorer_close(sc);
    dataset_free(d);
    return rc;
}
