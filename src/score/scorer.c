/* scorer.c — the scorer layer of include/tinyalign/score.h: spec parsing, the kind table,
 * opening and closing, and scorer_score around a kind's ops (identical requests scored
 * once, every score checked finite, stats); results and summaries.
 * Not here: the kinds themselves (scorer_<kind>.c), files (score_file.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "score_impl.h"

/* Indexed by ScorerKind. */
static const ScorerOps *const KINDS[SCORER_NUM_KINDS] = {
    [SCORER_CMD] = &score_cmd_ops,
    [SCORER_LOGPROB] = &score_logprob_ops,
    [SCORER_BANNED] = &score_banned_ops,
    [SCORER_MODEL] = &score_model_ops,
};

const char *scorer_kind_name(ScorerKind k) {
    return k >= 0 && k < SCORER_NUM_KINDS ? KINDS[k]->name : "?";
}

static const char *trim(const char *s, size_t *len) {
    size_t n = strlen(s);
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    *len = n;
    return s;
}

int scorer_spec_parse(ScorerSpec *s, const char *text, TaError *err) {
    memset(s, 0, sizeof *s);
    static const char *KNOWN = "cmd:PROGRAM [ARGS], logprob:MODEL, banned:FILE or model:MODEL";
    if (!text || !*text)
        return ta_err(err, TA_EINPUT, "empty scorer spec; expected %s", KNOWN);
    if (strlen(text) >= SCORER_SPEC_MAX)
        return ta_err(err, TA_EINPUT, "scorer spec is %zu bytes long (at most %d)", strlen(text),
                      SCORER_SPEC_MAX - 1);
    snprintf(s->text, sizeof s->text, "%s", text);
    const char *colon = strchr(text, ':');
    size_t klen = colon ? (size_t)(colon - text) : strlen(text);
    char kind[64];
    snprintf(kind, sizeof kind, "%.*s", (int)(klen < 63 ? klen : 63), text);
    const char *names[SCORER_NUM_KINDS];
    int k = -1;
    for (int i = 0; i < SCORER_NUM_KINDS; i++) {
        names[i] = KINDS[i]->name;
        if (klen == strlen(names[i]) && !strncmp(text, names[i], klen)) k = i;
    }
    if (k < 0) {
        const char *best = ta_suggest(kind, names, SCORER_NUM_KINDS);
        if (!colon)
            return ta_err(err, TA_EINPUT, "scorer spec \"%s\": expected KIND:ARG, one of %s",
                          text, KNOWN);
        if (best)
            return ta_err(err, TA_EINPUT,
                          "scorer spec \"%s\": unknown kind \"%s\"; did you mean \"%s\"? (kinds: "
                          "%s)", text, kind, best, KNOWN);
        return ta_err(err, TA_EINPUT, "scorer spec \"%s\": unknown kind \"%s\" (kinds: %s)", text,
                      kind, KNOWN);
    }
    if (!colon)
        return ta_err(err, TA_EINPUT, "scorer spec \"%s\": expected %s:%s", text, names[k],
                      k == SCORER_CMD ? "PROGRAM [ARGS]" : k == SCORER_BANNED ? "FILE" : "MODEL");
    size_t alen;
    const char *arg = trim(colon + 1, &alen);
    if (alen == 0)
        return ta_err(err, TA_EINPUT, "scorer spec \"%s\": nothing after \"%s:\" (expected %s)",
                      text, names[k],
                      k == SCORER_CMD ? "a program" : k == SCORER_BANNED ? "a word-list file"
                                                                          : "a model directory");
    s->kind = (ScorerKind)k;
    memcpy(s->arg, arg, alen);
    s->arg[alen] = '\0';
    return TA_OK;
}

void scorer_options_default(ScorerOptions *o) {
    memset(o, 0, sizeof *o);
    o->timeout_s = 600;
}

/* ---- results ----------------------------------------------------------------------------- */
void score_result_free(ScoreResult *r) {
    for (int i = 0; i < r->n_fields; i++) {
        free(r->fields[i].key);
        free(r->fields[i].value);
    }
    free(r->fields);
    memset(r, 0, sizeof *r);
}

void score_result_add(ScoreResult *r, const char *key, const char *value_json) {
    r->fields = ta_realloc(r->fields, sizeof(ScoreField) * (size_t)(r->n_fields + 1), "score fields");
    r->fields[r->n_fields].key = ta_strdup(key, "score field");
    r->fields[r->n_fields].value = ta_strdup(value_json, "score field");
    r->n_fields++;
}

void score_result_add_number(ScoreResult *r, const char *key, double v) {
    TaBuf b = {0};
    jsonl_put_number(&b, v);
    score_result_add(r, key, b.p);
    free(b.p);
}

void score_result_add_bool(ScoreResult *r, const char *key, int v) {
    score_result_add(r, key, v ? "true" : "false");
}

const ScoreField *score_result_field(const ScoreResult *r, const char *key) {
    for (int i = 0; i < r->n_fields; i++)
        if (!strcmp(r->fields[i].key, key)) return &r->fields[i];
    return NULL;
}

void score_result_copy(ScoreResult *dst, const ScoreResult *src) {
    memset(dst, 0, sizeof *dst);
    dst->score = src->score;
    for (int i = 0; i < src->n_fields; i++)
        score_result_add(dst, src->fields[i].key, src->fields[i].value);
}

/* ---- open / score / close ---------------------------------------------------------------- */
int scorer_open(Scorer **out, const char *spec, const ScorerOptions *opt, TaError *err) {
    *out = NULL;
    Scorer *s = ta_calloc(sizeof *s, "scorer");
    int rc = scorer_spec_parse(&s->spec, spec, err);
    if (rc != TA_OK) {
        free(s);
        return rc;
    }
    if (opt) s->opt = *opt;
    else scorer_options_default(&s->opt);
    s->ops = KINDS[s->spec.kind];
    if (s->opt.batch_size <= 0) s->opt.batch_size = s->ops->default_batch;
    if ((rc = s->ops->open(s, err)) != TA_OK) {
        scorer_close(s);
        return rc;
    }
    *out = s;
    return TA_OK;
}

void scorer_close(Scorer *s) {
    if (!s) return;
    if (s->ops && s->ops->close) s->ops->close(s);
    free(s);
}

const ScorerSpec *scorer_spec(const Scorer *s) { return &s->spec; }

void scorer_stats(const Scorer *s, ScorerStats *out) {
    *out = (ScorerStats){.calls = s->calls, .requests = s->requests, .unique = s->unique,
                         .tokens = s->tokens, .seconds = s->seconds};
}

void scorer_report_progress(Scorer *s, size_t done) {
    if (s->opt.progress) s->opt.progress(s->opt.progress_ctx, s->progress_base + done, s->progress_total);
}

int scorer_open_model(Scorer *s, size_t state_size, TaError *err) {
    char what[SCORER_SPEC_MAX + 16];
    snprintf(what, sizeof what, "scorer %s", s->spec.text);
    ScoreModel *m = ta_calloc(state_size, what); /* the state starts with its ScoreModel */
    int rc = score_model_open(m, s->spec.arg, s->opt.tokenizer, what, err);
    if (rc != TA_OK) {
        free(m);
        return rc;
    }
    s->impl = m;
    return TA_OK;
}

void scorer_close_model(Scorer *s) {
    ScoreModel *m = s->impl;
    if (!m) return;
    score_model_close(m);
    free(m);
    s->impl = NULL;
}

static void rows_progress(void *ctx, size_t done, size_t total) {
    (void)total;
    scorer_report_progress(ctx, done);
}

int scorer_run_model_rows(Scorer *s, ScoreModel *m, const ScoreRequest *req, size_t n,
                          int eos_input, ScoreRowsFn fn, void *ctx, const uint8_t **truncated,
                          TaError *err) {
    uint8_t *trunc = ta_calloc(n ? n : 1, "scorer rows");
    *truncated = trunc; /* filled while encoding, before the first fn call */
    ScoreRowsOptions ro = {.batch_size = s->opt.batch_size, .eos_input = eos_input,
                           .truncated = trunc, .tokens = &s->tokens, .calls = &s->calls,
                           .progress = rows_progress, .progress_ctx = s};
    int rc = score_model_rows(m, req, n, &ro, fn, ctx, err);
    *truncated = NULL;
    free(trunc);
    return rc;
}

const char *scorer_where(const ScoreRequest *req, size_t i, char *buf, size_t cap) {
    if (req[i].where) return req[i].where;
    snprintf(buf, cap, "request %zu", i + 1);
    return buf;
}

/* Identical requests: rep[i] = the first request with the same (prompt, response). */
typedef struct {
    const char *prompt, *response;
    size_t i;
} Key;

static int cmp_key(const void *a, const void *b) {
    const Key *x = a, *y = b;
    int c = strcmp(x->prompt, y->prompt);
    if (!c) c = strcmp(x->response, y->response);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

size_t *score_request_copies(const ScoreRequest *req, size_t n) {
    Key *k = ta_malloc(sizeof(Key) * (n ? n : 1), "scorer requests");
    for (size_t i = 0; i < n; i++) k[i] = (Key){req[i].prompt, req[i].response, i};
    qsort(k, n, sizeof(Key), cmp_key);
    size_t *rep = ta_malloc(sizeof(size_t) * (n ? n : 1), "scorer requests");
    for (size_t a = 0; a < n; a++) { /* sorted: the first of a run has the lowest index */
        int same = a > 0 && !strcmp(k[a].prompt, k[a - 1].prompt) &&
                   !strcmp(k[a].response, k[a - 1].response);
        rep[k[a].i] = same ? rep[k[a - 1].i] : k[a].i;
    }
    free(k);
    return rep;
}

int scorer_score(Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out, TaError *err) {
    memset(out, 0, sizeof *out * n);
    if (n == 0) return TA_OK;
    double t0 = ta_now();
    size_t *rep = NULL, *uniq = NULL;
    ScoreRequest *ureq = NULL;
    ScoreResult *uout = NULL;
    size_t nu = n;
    const ScoreRequest *q = req;
    ScoreResult *o = out;
    if (s->ops->dedupe) {
        rep = score_request_copies(req, n);
        uniq = ta_malloc(sizeof(size_t) * n, "scorer requests");
        nu = 0;
        for (size_t i = 0; i < n; i++)
            if (rep[i] == i) uniq[nu++] = i;
        if (nu < n) {
            ureq = ta_malloc(sizeof(ScoreRequest) * nu, "scorer requests");
            uout = ta_calloc(sizeof(ScoreResult) * nu, "scorer results");
            for (size_t u = 0; u < nu; u++) ureq[u] = req[uniq[u]];
            q = ureq;
            o = uout;
        }
    }
    s->progress_base = 0;
    s->progress_total = nu;
    int rc = s->ops->score(s, q, nu, o, err);
    for (size_t i = 0; i < nu && rc == TA_OK; i++)
        if (!isfinite(o[i].score)) {
            char buf[64];
            rc = ta_err(err, TA_EINPUT, "%s: %s: the score is not finite (%g)", s->spec.text,
                        scorer_where(q, i, buf, sizeof buf), o[i].score);
        }
    if (rc == TA_OK && o != out) { /* spread: unique results to their slots, copies after */
        for (size_t u = 0; u < nu; u++) out[uniq[u]] = o[u], memset(&o[u], 0, sizeof o[u]);
        for (size_t i = 0; i < n; i++)
            if (rep[i] != i) score_result_copy(&out[i], &out[rep[i]]);
    }
    if (rc != TA_OK) {
        for (size_t i = 0; i < nu; i++) score_result_free(&o[i]);
        for (size_t i = 0; i < n; i++) score_result_free(&out[i]);
    } else {
        s->requests += n;
        s->unique += nu;
    }
    free(rep);
    free(uniq);
    free(ureq);
    free(uout);
    s->seconds += ta_now() - t0;
    return rc;
}

/* ---- summaries ------------------------------------------------------------------------- */
void score_summary_add(ScoreSummary *s, const ScoreResult *r) {
    if (s->n == 0 || r->score < s->min) s->min = r->score;
    if (s->n == 0 || r->score > s->max) s->max = r->score;
    s->n++;
    s->sum += r->score;
    for (int i = 0; i < r->n_fields; i++) {
        const char *v = r->fields[i].value;
        int t = !strcmp(v, "true");
        if (!t && strcmp(v, "false")) continue;
        int k = 0;
        while (k < s->n_bools && strncmp(s->bools[k].key, r->fields[i].key, sizeof s->bools[k].key - 1))
            k++;
        if (k == s->n_bools) {
            if (k == SCORE_SUMMARY_MAX_FIELDS) continue;
            snprintf(s->bools[k].key, sizeof s->bools[k].key, "%s", r->fields[i].key);
            s->n_bools++;
        }
        s->bools[k].n_seen++;
        s->bools[k].n_true += (size_t)t;
    }
}

void score_summary_describe(const ScoreSummary *s, const char *score_name, char *buf, size_t cap) {
    TaBuf b = {0};
    ta_buf_printf(&b, "%zu %s", s->n, s->n == 1 ? "response" : "responses");
    if (s->n)
        ta_buf_printf(&b, " | %s mean %.6g min %.6g max %.6g", score_name, s->sum / (double)s->n,
                      s->min, s->max);
    for (int k = 0; k < s->n_bools; k++) {
        ta_buf_printf(&b, " | %s %.4f", s->bools[k].key,
                      (double)s->bools[k].n_true / (double)s->bools[k].n_seen);
        if (s->bools[k].n_seen != s->n) ta_buf_printf(&b, " (of %zu)", s->bools[k].n_seen);
    }
    snprintf(buf, cap, "%s", b.p ? b.p : "");
    free(b.p);
}
