/* score_eval.c — task metrics during training (score.h: score_eval_*, the engine of
 * train.eval_generate): a fixed set of prompt rows, sampled with the policy's current
 * weights (sample_texts: greedy and / or n samples at a temperature), scored in one scorer
 * call per kind of sample, reduced to metrics (mean score, best of n, boolean fields as
 * rates).
 * Not here: when it runs (the trainer's schedule), writing metrics (log module).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "score_impl.h"
#include "tinyalign/sample.h"
#include "tinyalign/tokenizer.h"

enum { EVAL_MAX_METRICS = 4 + 2 * SCORE_SUMMARY_MAX_FIELDS, EVAL_NAME = 96 };

struct ScoreEval {
    ScoreEvalConfig c;
    Dataset *ds;
    const Tokenizer *tok;
    Scorer *scorer;
    int P;               /* prompts */
    char **filled;       /* (P) what is encoded: the template's fill, or the prompt */
    DataRow *rows;       /* (P) */
    DataFields *fields;  /* (P) each row's fields but "responses" */
    DataField *fbuf;
    char **where;        /* (P) "FILE:LINE" */
    char names[EVAL_MAX_METRICS][EVAL_NAME];
};

void score_eval_close(ScoreEval *e) {
    if (!e) return;
    for (int i = 0; i < e->P; i++) {
        if (e->filled) free(e->filled[i]);
        if (e->where) free(e->where[i]);
    }
    free(e->filled);
    free(e->where);
    free(e->rows);
    free(e->fields);
    free(e->fbuf);
    scorer_close(e->scorer);
    dataset_free(e->ds);
    free(e);
}

int score_eval_open(ScoreEval **out, const ScoreEvalConfig *c, const Tokenizer *tok,
                    int max_seq_len, TaError *err) {
    *out = NULL;
    ScoreEval *e = ta_calloc(sizeof *e, "eval_generate");
    e->c = *c;
    e->tok = tok;
    const char *key = c->key ? c->key : "eval_generate";
    SampleTemplate tmpl = {0};
    TaError x = {0};
    int rc = dataset_load(&e->ds, c->prompts, DS_PROMPTS, NULL, NULL, err);
    if (rc != TA_OK) goto end;
    size_t rows = dataset_num_rows(e->ds);
    if (c->first_row >= rows) {
        rc = ta_err(err, TA_EINPUT, "%s.prompts: %s has %zu rows, none after row %zu", key,
                    c->prompts, rows, c->first_row);
        goto end;
    }
    size_t P = rows - c->first_row;
    if (c->max_prompts > 0 && P > (size_t)c->max_prompts) P = (size_t)c->max_prompts;
    e->P = (int)P;
    e->filled = ta_calloc(sizeof(char *) * P, "eval_generate");
    e->where = ta_calloc(sizeof(char *) * P, "eval_generate");
    e->rows = ta_calloc(sizeof(DataRow) * P, "eval_generate");
    e->fields = ta_calloc(sizeof(DataFields) * P, "eval_generate");
    size_t nf = 0;
    for (size_t i = 0; i < P; i++) {
        dataset_row(e->ds, c->first_row + i, &e->rows[i]);
        nf += (size_t)e->rows[i].extra.n;
    }
    e->fbuf = ta_malloc(sizeof(DataField) * (nf + 1), "eval_generate");
    const int has_tmpl = c->template_text && *c->template_text;
    if (has_tmpl && (rc = sample_template_load(&tmpl, c->template_text, &x)) != TA_OK) {
        rc = ta_err(err, rc, "%s.template: %s", key, x.msg);
        goto end;
    }
    nf = 0;
    for (size_t i = 0; i < P && rc == TA_OK; i++) {
        const DataRow *r = &e->rows[i];
        size_t cap = strlen(c->prompts) + 32;
        e->where[i] = ta_malloc(cap, "eval_generate");
        snprintf(e->where[i], cap, "%s:%ld", c->prompts, r->line);
        e->fields[i].f = e->fbuf + nf;
        for (int k = 0; k < r->extra.n; k++) /* a multi file's responses are not a field */
            if (strcmp(r->extra.f[k].key, "responses")) e->fbuf[nf++] = r->extra.f[k];
        e->fields[i].n = (int)(e->fbuf + nf - e->fields[i].f);
        if (has_tmpl)
            rc = sample_template_fill(&tmpl, r->prompt, &e->fields[i], &e->filled[i], &x);
        else
            e->filled[i] = ta_strdup(r->prompt, "eval_generate");
        int *ids = NULL, len = 0;
        if (rc == TA_OK)
            rc = row_encode_generation_prompt(tok, e->filled[i], max_seq_len, &ids, &len, &x);
        free(ids);
        if (rc != TA_OK) rc = ta_err(err, rc, "%s (%s): %s", e->where[i], key, x.msg);
    }
    if (rc != TA_OK) goto end;
    ScorerOptions so;
    scorer_options_default(&so);
    if ((rc = scorer_open(&e->scorer, c->scorer, &so, &x)) != TA_OK) {
        rc = ta_err(err, rc, "%s.scorer: %s", key, x.msg);
        goto end;
    }
end:
    sample_template_free(&tmpl);
    if (rc != TA_OK) {
        score_eval_close(e);
        return rc;
    }
    *out = e;
    return TA_OK;
}

/* Samples k responses per prompt (temperature 0: greedy) and scores them: res (P * k). */
static int sample_and_score(ScoreEval *e, const GPT2 *policy, uint64_t seed, int k,
                            double temperature, ScoreResult *res, TaError *err) {
    SampleOptions so;
    sample_options_default(&so);
    so.n = k;
    so.temperature = temperature;
    so.max_new_tokens = e->c.max_new_tokens;
    so.seed = seed;
    const size_t m = (size_t)e->P * (size_t)k;
    char **texts = ta_calloc(sizeof(char *) * m, "eval_generate");
    ScoreRequest *req = ta_malloc(sizeof(ScoreRequest) * m, "eval_generate");
    int rc = sample_texts(policy, e->tok, (const char *const *)e->filled, e->P, &so, texts, err);
    if (rc == TA_OK) {
        for (size_t i = 0; i < m; i++) {
            size_t p = i / (size_t)k;
            req[i] = (ScoreRequest){.prompt = e->rows[p].prompt, .response = texts[i],
                                    .fields = &e->fields[p], .where = e->where[p]};
        }
        rc = scorer_score(e->scorer, req, m, res, err);
    }
    for (size_t i = 0; i < m; i++) free(texts[i]);
    free(texts);
    free(req);
    return rc;
}

/* Appends one metric named prefix + name. */
static void add_metric(ScoreEval *e, MetricKV *kv, int cap, int *n, const char *prefix,
                       const char *name, double v) {
    if (*n >= cap || *n >= EVAL_MAX_METRICS) return;
    snprintf(e->names[*n], EVAL_NAME, "%s%s", prefix, name);
    kv[*n] = (MetricKV){e->names[*n], v};
    (*n)++;
}

static void add_rates(ScoreEval *e, MetricKV *kv, int cap, int *n, const char *prefix,
                      const ScoreSummary *s, TaBuf *line, const char *tag) {
    for (int b = 0; b < s->n_bools; b++) {
        double rate = (double)s->bools[b].n_true / (double)s->bools[b].n_seen;
        add_metric(e, kv, cap, n, prefix, s->bools[b].key, rate);
        ta_buf_printf(line, " | %s%s %.4f", tag, s->bools[b].key, rate);
    }
}

int score_eval_run(ScoreEval *e, const GPT2 *policy, uint64_t seed, MetricKV *kv, int cap,
                   int *n_kv, char *line, size_t line_cap, TaError *err) {
    *n_kv = 0;
    double t0 = ta_now();
    TaBuf lb = {0};
    ta_buf_printf(&lb, "%d prompts", e->P);
    int rc = TA_OK;
    const int k = e->c.n;
    if (k > 0) {
        const size_t m = (size_t)e->P * (size_t)k;
        ScoreResult *res = ta_calloc(sizeof(ScoreResult) * m, "eval_generate");
        rc = sample_and_score(e, policy, seed, k, e->c.temperature, res, err);
        if (rc == TA_OK) {
            ScoreSummary s = {0};
            double best_sum = 0;
            for (int p = 0; p < e->P; p++) {
                double best = -INFINITY;
                for (int j = 0; j < k; j++) {
                    const ScoreResult *r = &res[(size_t)p * k + (size_t)j];
                    score_summary_add(&s, r);
                    if (r->score > best) best = r->score;
                }
                best_sum += best;
            }
            char name[32];
            snprintf(name, sizeof name, "score_max@%d", k);
            add_metric(e, kv, cap, n_kv, "eval/", "score_mean", s.sum / (double)s.n);
            add_metric(e, kv, cap, n_kv, "eval/", name, best_sum / e->P);
            ta_buf_printf(&lb, " x %d at T=%g | score_mean %.4f | %s %.4f", k, e->c.temperature,
                          s.sum / (double)s.n, name, best_sum / e->P);
            add_rates(e, kv, cap, n_kv, "eval/", &s, &lb, "");
        }
        for (size_t i = 0; i < m; i++) score_result_free(&res[i]);
        free(res);
    }
    if (rc == TA_OK && e->c.greedy) {
        ScoreResult *res = ta_calloc(sizeof(ScoreResult) * (size_t)e->P, "eval_generate");
        rc = sample_and_score(e, policy, seed, 1, 0.0, res, err);
        if (rc == TA_OK) {
            ScoreSummary s = {0};
            for (int p = 0; p < e->P; p++) score_summary_add(&s, &res[p]);
            add_metric(e, kv, cap, n_kv, "eval/greedy/", "score_mean", s.sum / (double)s.n);
            ta_buf_printf(&lb, " | greedy score_mean %.4f", s.sum / (double)s.n);
            add_rates(e, kv, cap, n_kv, "eval/greedy/", &s, &lb, "greedy ");
        }
        for (int p = 0; p < e->P; p++) score_result_free(&res[p]);
        free(res);
    }
    ta_buf_printf(&lb, " (%.1fs)", ta_now() - t0);
    snprintf(line, line_cap, "%s", lb.p);
    free(lb.p);
    return rc;
}
