/* model_features.c — the model: embedding source and the log-probability DivPO criterion
 * (include/tinyalign/curate.h): every response of a CurateSet is run through a frozen GPT-2
 * from a model directory.
 *
 * Sequence of one response (data.h's convention, max_len = maxT + 1, max_prompt_len =
 * maxT / 2, keep_end):
 *   seq = [BOS] prompt_ids[kept] resp_ids [EOS]      BOS / EOS only when the tokenizer has them
 *   the prompt keeps its last max_prompt_len - |BOS| tokens; then the row is cut to max_len
 *   tokens at the response's end (the EOS goes first). P = |[BOS] + kept prompt|, L = |seq|.
 *   tokens = seq[0 .. L-1), targets = seq[1 .. L)   (T = L - 1 <= maxT)
 *   embedding = mean over t in [P, L-1) of ln_f(h_t) (the positions whose INPUT is a response
 *               token; the prompt and the EOS are left out), or t = L-2 if that is empty;
 *   S(y)      = sum over t in [P-1, L-1) of log p(seq[t+1] | seq[..t]) (every response
 *               target, the EOS included: the tokens data.h's loss_mask covers).
 * Rows go through gpt2_forward in batches of up to 8 (fewer when the activations would pass
 * 256 MB); padding sits after each row's end, so causal attention keeps rows exact.
 * Not here: gradients, sampling, KV caches.
 */
#include <stdlib.h>
#include <string.h>

#include "curate_impl.h"
#include "tinyalign/checkpoint.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/tokenizer.h"

typedef struct {
    int *seq; /* (len) */
    int len, P;
} Row;

static int encode(const Tokenizer *tok, const char *text, int **ids, int *n, const char *path,
                  long line, const char *what, TaError *err) {
    TaError e = {0};
    if (tokenizer_encode(tok, text, strlen(text), ids, n, &e) != TA_OK)
        return ta_err(err, TA_EINPUT, "%s:%ld: %s: %s", path, line, what, e.msg);
    return TA_OK;
}

int curate_model_features(const CurateSet *s, const char *model_dir, const char *tokenizer,
                          float **emb, int *dim, double **logp, TaError *err) {
    GPT2 m;
    memset(&m, 0, sizeof m);
    Tokenizer *tok = NULL;
    Row *rows = NULL;
    int *tokens = NULL, *targets = NULL;
    float *E = NULL;
    double *LP = NULL;
    TaError e = {0};
    int rc;
    if (emb) *emb = NULL;
    if (logp) *logp = NULL;
    char dir[4096];
    if ((rc = checkpoint_resolve(model_dir, dir, sizeof dir, &e)) != TA_OK ||
        (rc = model_load_dir(&m, dir, 0, &e)) != TA_OK) {
        rc = ta_err(err, rc, "model:%s: %s", model_dir, e.msg);
        goto end;
    }
    const char *tpath = tokenizer ? tokenizer : dir;
    if ((rc = tokenizer_load(&tok, tpath, &e)) != TA_OK) {
        rc = ta_err(err, rc, "model:%s: %s%s", model_dir, e.msg,
                    tokenizer ? "" : " (a model directory without tokenizer.model needs "
                                     "--tokenizer MODEL)");
        goto end;
    }
    const GPT2Config *cfg = &m.config;
    if (tokenizer_vocab_size(tok) > cfg->vocab_size) {
        rc = ta_err(err, TA_EINPUT,
                    "model:%s: the tokenizer %s has %d pieces but the model's vocabulary is %d",
                    model_dir, tokenizer_path(tok), tokenizer_vocab_size(tok), cfg->vocab_size);
        goto end;
    }
    const int bos = tokenizer_bos_id(tok), eos = tokenizer_eos_id(tok);
    if (logp && eos < 0) {
        rc = ta_err(err, TA_EINPUT,
                    "model:%s: the tokenizer %s has no EOS id (log-probabilities cover the EOS)",
                    model_dir, tokenizer_path(tok));
        goto end;
    }
    const int maxT = cfg->max_seq_len, max_len = maxT + 1;
    const int max_prompt = maxT / 2 > 1 ? maxT / 2 : 1;
    const int nb = bos >= 0 ? 1 : 0, ne = eos >= 0 ? 1 : 0;
    const size_t R = s->n_resps;
    rows = ta_calloc((R ? R : 1) * sizeof(Row), "model rows");
    int Tmax = 1;
    for (size_t i = 0; i < s->n_prompts; i++) {
        int *p = NULL, np = 0;
        if ((rc = encode(tok, s->prompt[i], &p, &np, s->path, s->line[i], "prompt", err)))
            goto end;
        int keep = np, start = 0;
        if (nb + np > max_prompt) keep = max_prompt - nb, start = np - keep;
        if (keep < 0) keep = 0, start = np;
        for (int j = 0; j < s->count[i]; j++) {
            size_t r = s->first[i] + (size_t)j;
            int *q = NULL, nq = 0;
            char what[64];
            snprintf(what, sizeof what, "responses[%d].text", j);
            if ((rc = encode(tok, s->text[r], &q, &nq, s->path, s->line[i], what, err))) {
                free(p);
                goto end;
            }
            Row *w = &rows[r];
            w->P = nb + keep;
            int L = w->P + nq + ne;
            w->seq = ta_malloc((size_t)(L > 2 ? L : 2) * sizeof(int), "model rows");
            int t = 0;
            if (nb) w->seq[t++] = bos;
            memcpy(w->seq + t, p + start, (size_t)keep * sizeof(int));
            t += keep;
            memcpy(w->seq + t, q, (size_t)nq * sizeof(int));
            t += nq;
            if (ne) w->seq[t++] = eos;
            w->len = L > max_len ? max_len : L;
            if (w->len < 2) { /* a single token has no position with a target */
                w->seq[1] = ne ? eos : w->seq[0];
                w->len = 2;
            }
            if (w->len - 1 > Tmax) Tmax = w->len - 1;
            free(q);
        }
        free(p);
    }
    /* batch size: up to 8 rows, activations kept under ~256 MB */
    const size_t C = (size_t)cfg->d_model, Lyr = (size_t)cfg->n_layer, NH = (size_t)cfg->n_head;
    size_t per_row = 4 * ((size_t)Tmax * ((size_t)Tmax * NH * Lyr + C * Lyr * 20 +
                                          (size_t)cfg->padded_vocab_size + 8));
    int B = per_row ? (int)(((size_t)256 << 20) / per_row) : 8;
    if (B > 8) B = 8;
    if (B < 1) B = 1;
    gpt2_alloc_acts(&m, B, Tmax);
    tokens = ta_malloc((size_t)B * (size_t)Tmax * sizeof(int), "model batch");
    targets = ta_malloc((size_t)B * (size_t)Tmax * sizeof(int), "model batch");
    if (emb) E = ta_calloc((R ? R : 1) * C * sizeof(float), "model embeddings");
    if (logp) LP = ta_calloc((R ? R : 1) * sizeof(double), "model log-probs");
    double *acc = ta_malloc(C * sizeof(double), "model embeddings");
    for (size_t r0 = 0; r0 < R; r0 += (size_t)B) {
        int b = (int)(R - r0 < (size_t)B ? R - r0 : (size_t)B), T = 1;
        for (int k = 0; k < b; k++)
            if (rows[r0 + k].len - 1 > T) T = rows[r0 + k].len - 1;
        for (int k = 0; k < b; k++) {
            const Row *w = &rows[r0 + k];
            for (int t = 0; t < T; t++) {
                int in = t < w->len - 1;
                tokens[k * T + t] = in ? w->seq[t] : w->seq[w->len - 1];
                targets[k * T + t] = in ? w->seq[t + 1] : -1;
            }
        }
        if ((rc = gpt2_forward(&m, tokens, targets, b, T, &e)) != TA_OK) {
            size_t p;
            int j;
            curate_set_locate(s, r0, &p, &j);
            rc = ta_err(err, rc, "%s:%ld: model:%s: %s", s->path, s->line[p], model_dir, e.msg);
            free(acc);
            goto end;
        }
        for (int k = 0; k < b; k++) {
            const Row *w = &rows[r0 + k];
            const int last = w->len - 1; /* positions 0 .. last-1 have targets */
            if (E) {
                int lo = w->P, hi = last;
                if (lo >= hi) lo = last - 1, hi = last;
                for (size_t c = 0; c < C; c++) acc[c] = 0;
                for (int t = lo; t < hi; t++) {
                    const float *h = m.acts.lnf + ((size_t)k * T + t) * C;
                    for (size_t c = 0; c < C; c++) acc[c] += h[c];
                }
                for (size_t c = 0; c < C; c++)
                    E[(r0 + k) * C + c] = (float)(acc[c] / (double)(hi - lo));
            }
            if (LP) {
                double sum = 0;
                for (int t = w->P > 0 ? w->P - 1 : 0; t < last; t++)
                    sum += m.acts.logp[(size_t)k * T + t];
                LP[r0 + k] = sum;
            }
        }
    }
    free(acc);
    if (emb) *emb = E, *dim = (int)C, E = NULL;
    if (logp) *logp = LP, LP = NULL;
    rc = TA_OK;
end:
    if (rows)
        for (size_t r = 0; r < s->n_resps; r++) free(rows[r].seq);
    free(rows);
    free(tokens);
    free(targets);
    free(E);
    free(LP);
    tokenizer_free(tok);
    gpt2_free(&m);
    return rc;
}
