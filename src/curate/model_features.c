/* model_features.c — the model: embedding source and the log-probability DivPO criterion
 * (include/tinyalign/curate.h): every response of a multi-response Dataset is run through a
 * frozen GPT-2 from a model directory.
 *
 * Rows are data.h's row convention, [BOS] prompt response [EOS], with max_len = maxT + 1,
 * max_prompt_len = maxT / 2 and keep_end (dataset_tokenize with the model's tokenizer);
 * they go through gpt2_forward as Batches (dataset_fill), up to 8 rows at a time (fewer
 * when the activations would pass 256 MB). For a row of L tokens whose prompt part is P:
 *   embedding = mean over t in [P, L-1) of ln_f(h_t) (the positions whose INPUT is a response
 *               token; the prompt and the EOS are left out), or t = L-2 if that is empty;
 *   S(y)      = objective_sequence_logps: the sum of log p over the loss_mask positions
 *               [P-1, L-1) (every response target, the EOS included), as every loss uses.
 * Identical (prompt, response) rows are computed once and copied: a row's floats depend on
 * which rows share its batch (GEMM blocking follows the batch shape), so two copies of one
 * response computed in different batches would differ in the last bits, and a tie that
 * decides a selection (DivPO's ordering by S) would be broken by rounding noise.
 * Not here: gradients, sampling, KV caches.
 */
#include <stdlib.h>
#include <string.h>

#include "curate_impl.h"
#include "tinyalign/checkpoint.h"
#include "tinyalign/objective.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/tokenizer.h"

/* Identical rows: rep[r] = the first response with the same (prompt, text). */
typedef struct {
    const char *prompt, *text;
    size_t r;
} Key;

static int cmp_key(const void *a, const void *b) {
    const Key *x = a, *y = b;
    int c = strcmp(x->prompt, y->prompt);
    if (!c) c = strcmp(x->text, y->text);
    return c ? c : (x->r > y->r) - (x->r < y->r);
}

static size_t *find_copies(const Dataset *d, size_t R) {
    Key *k = ta_malloc(sizeof(Key) * (R ? R : 1), "model rows");
    for (size_t i = 0, r = 0; i < dataset_num_rows(d); i++) {
        DataRow row;
        dataset_row(d, i, &row);
        for (int j = 0; j < row.n_responses; j++, r++) {
            DataResponse x;
            dataset_response(d, r, &x);
            k[r] = (Key){row.prompt, x.text, r};
        }
    }
    qsort(k, R, sizeof(Key), cmp_key);
    size_t *rep = ta_malloc(sizeof(size_t) * (R ? R : 1), "model rows");
    for (size_t a = 0; a < R; a++) { /* sorted: the first of a run has the lowest index */
        int same = a > 0 && !strcmp(k[a].prompt, k[a - 1].prompt) &&
                   !strcmp(k[a].text, k[a - 1].text);
        rep[k[a].r] = same ? rep[k[a - 1].r] : k[a].r;
    }
    free(k);
    return rep;
}

int curate_model_features(Dataset *d, const char *model_dir, const char *tokenizer, float **emb,
                          int *dim, double **logp, TaError *err) {
    GPT2 m;
    memset(&m, 0, sizeof m);
    Tokenizer *tok = NULL;
    Batch b = {0};
    size_t *rep = NULL;
    uint32_t *ids = NULL;
    float *E = NULL, *S = NULL;
    double *LP = NULL, *acc = NULL;
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
    const int maxT = cfg->max_seq_len;
    const DatasetOptions o = {.max_len = maxT + 1, .max_prompt_len = maxT / 2 > 1 ? maxT / 2 : 1,
                              .truncation_mode = TRUNC_KEEP_END};
    if ((rc = dataset_tokenize(d, tok, &o, &e)) != TA_OK) {
        rc = ta_err(err, rc, "%s (model:%s)", e.msg, model_dir);
        goto end;
    }
    const size_t R = dataset_size(d);
    rep = find_copies(d, R);
    int Tmax = 1;
    for (size_t r = 0; r < R; r++)
        if (dataset_example_len(d, r) - 1 > Tmax) Tmax = dataset_example_len(d, r) - 1;
    /* batch size: up to 8 rows, activations kept under ~256 MB */
    const size_t C = (size_t)cfg->d_model, Lyr = (size_t)cfg->n_layer, NH = (size_t)cfg->n_head;
    size_t per_row = 4 * ((size_t)Tmax * ((size_t)Tmax * NH * Lyr + C * Lyr * 20 +
                                          (size_t)cfg->padded_vocab_size + 8));
    int B = per_row ? (int)(((size_t)256 << 20) / per_row) : 8;
    if (B > 8) B = 8;
    if (B < 1) B = 1;
    gpt2_alloc_acts(&m, B, Tmax);
    batch_alloc(&b, B, Tmax);
    ids = ta_malloc(sizeof(uint32_t) * (size_t)B, "model batch");
    S = ta_malloc(sizeof(float) * (size_t)B, "model batch");
    if (emb) E = ta_calloc((R ? R : 1) * C * sizeof(float), "model embeddings");
    if (logp) LP = ta_calloc((R ? R : 1) * sizeof(double), "model log-probs");
    acc = ta_malloc(C * sizeof(double), "model embeddings");
    for (size_t r = 0; r < R;) {
        int n = 0;
        for (; r < R && n < B; r++)
            if (rep[r] == r) ids[n++] = (uint32_t)r; /* copies are filled in below */
        if (n == 0) break;
        dataset_fill(d, ids, n, &b);
        if ((rc = gpt2_forward(&m, b.tokens, b.targets, b.B, b.T, &e)) != TA_OK) {
            rc = ta_err(err, rc, "%s:%ld: model:%s: %s", dataset_path(d),
                        dataset_line(d, ids[0]), model_dir, e.msg);
            goto end;
        }
        const int T = b.T;
        if (LP) {
            objective_sequence_logps(S, &b, m.acts.logp);
            for (int k = 0; k < n; k++) LP[ids[k]] = S[k];
        }
        for (int k = 0; k < n && E; k++) {
            const int last = b.lengths[k]; /* positions 0 .. last-1 have targets */
            int lo = 0;
            while (!b.loss_mask[(size_t)k * T + lo]) lo++;
            lo++; /* the first response position is P - 1; its input is the prompt's end */
            int hi = last;
            if (lo >= hi) lo = last - 1, hi = last;
            for (size_t c = 0; c < C; c++) acc[c] = 0;
            for (int t = lo; t < hi; t++) {
                const float *h = m.acts.lnf + ((size_t)k * T + t) * C;
                for (size_t c = 0; c < C; c++) acc[c] += h[c];
            }
            for (size_t c = 0; c < C; c++) E[ids[k] * C + c] = (float)(acc[c] / (double)(hi - lo));
        }
    }
    for (size_t r = 0; r < R; r++) {
        if (rep[r] == r) continue;
        if (LP) LP[r] = LP[rep[r]];
        if (E) memcpy(E + r * C, E + rep[r] * C, C * sizeof(float));
    }
    if (emb) *emb = E, *dim = (int)C, E = NULL;
    if (logp) *logp = LP, LP = NULL;
    rc = TA_OK;
end:
    batch_free(&b);
    free(rep);
    free(ids);
    free(S);
    free(acc);
    free(E);
    free(LP);
    tokenizer_free(tok);
    gpt2_free(&m);
    return rc;
}
