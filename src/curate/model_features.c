/* model_features.c — the model: embedding source and the log-probability DivPO criterion
 * (include/tinyalign/curate.h): every response of a multi-response Dataset is run through a
 * frozen GPT-2 from a model directory, by the score module's forward-only row runner
 * (score_model_open / score_model_rows: the model, its tokenizer, data.h's row convention
 * [BOS] prompt response [EOS] with max_len = maxT + 1, max_prompt_len = maxT / 2, keep_end,
 * rows batched by length). For a row of L tokens whose prompt part is P:
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
#include "tinyalign/objective.h"
#include "tinyalign/score.h"

typedef struct {
    float *E;    /* (R, C) or NULL */
    double *LP;  /* (R) or NULL */
    float *S;    /* (cap_S) scratch: a batch's S values */
    int cap_S;
    double *acc; /* (C) scratch */
    size_t C;
    size_t *uniq; /* unique request -> response index */
} Ctx;

static int on_rows(void *ctx, const ScoreModel *m, const Batch *b, const size_t *ids, int n,
                   TaError *err) {
    (void)err;
    Ctx *c = ctx;
    const int T = b->T;
    if (c->LP) {
        if (n > c->cap_S) c->S = ta_realloc(c->S, sizeof(float) * (size_t)n, "model batch"), c->cap_S = n;
        objective_sequence_logps(c->S, b, m->model.acts.logp);
        for (int k = 0; k < n; k++) c->LP[c->uniq[ids[k]]] = c->S[k];
    }
    for (int k = 0; k < n && c->E; k++) {
        const int last = b->lengths[k]; /* positions 0 .. last-1 have targets */
        int lo = 0;
        while (!b->loss_mask[(size_t)k * T + lo]) lo++;
        lo++; /* the first response position is P - 1; its input is the prompt's end */
        int hi = last;
        if (lo >= hi) lo = last - 1, hi = last;
        for (size_t j = 0; j < c->C; j++) c->acc[j] = 0;
        for (int t = lo; t < hi; t++) {
            const float *h = m->model.acts.lnf + ((size_t)k * T + t) * c->C;
            for (size_t j = 0; j < c->C; j++) c->acc[j] += h[j];
        }
        float *e = c->E + c->uniq[ids[k]] * c->C;
        for (size_t j = 0; j < c->C; j++) e[j] = (float)(c->acc[j] / (double)(hi - lo));
    }
    return TA_OK;
}

int curate_model_features(Dataset *d, const char *model_dir, const char *tokenizer, float **emb,
                          int *dim, double **logp, TaError *err) {
    if (emb) *emb = NULL;
    if (logp) *logp = NULL;
    const size_t R = dataset_size(d);
    char what[4200];
    snprintf(what, sizeof what, "model:%s", model_dir);
    ScoreModel m;
    int rc = score_model_open(&m, model_dir, tokenizer, what, err);
    if (rc != TA_OK) return rc;
    /* every response as a request; identical ones forwarded once */
    ScoreRequest *req = ta_malloc(sizeof(ScoreRequest) * (R ? R : 1), "model rows");
    char **where = ta_calloc(sizeof(char *) * (R ? R : 1), "model rows");
    for (size_t i = 0; i < dataset_num_rows(d); i++) {
        DataRow row;
        dataset_row(d, i, &row);
        for (int j = 0; j < row.n_responses; j++) {
            size_t r = row.first + (size_t)j, cap = strlen(dataset_path(d)) + 64;
            DataResponse x;
            dataset_response(d, r, &x);
            where[r] = ta_malloc(cap, "model rows");
            snprintf(where[r], cap, "%s:%ld responses[%d]", dataset_path(d), row.line, j);
            req[r] = (ScoreRequest){.prompt = row.prompt, .response = x.text, .where = where[r]};
        }
    }
    size_t *rep = score_request_copies(req, R);
    Ctx c = {.C = (size_t)m.model.config.d_model};
    c.uniq = ta_malloc(sizeof(size_t) * (R ? R : 1), "model rows");
    ScoreRequest *ureq = ta_malloc(sizeof(ScoreRequest) * (R ? R : 1), "model rows");
    size_t nu = 0;
    for (size_t r = 0; r < R; r++)
        if (rep[r] == r) c.uniq[nu] = r, ureq[nu++] = req[r];
    if (emb) c.E = ta_calloc((R ? R : 1) * c.C * sizeof(float), "model embeddings");
    if (logp) c.LP = ta_calloc((R ? R : 1) * sizeof(double), "model log-probs");
    c.acc = ta_malloc(c.C * sizeof(double), "model embeddings");
    ScoreRowsOptions ro = {.batch_size = 0}; /* 16 rows, fewer for long rows of a wide model */
    rc = score_model_rows(&m, ureq, nu, &ro, on_rows, &c, err);
    if (rc == TA_OK) {
        for (size_t r = 0; r < R; r++) {
            if (rep[r] == r) continue;
            if (c.LP) c.LP[r] = c.LP[rep[r]];
            if (c.E) memcpy(c.E + r * c.C, c.E + rep[r] * c.C, c.C * sizeof(float));
        }
        if (emb) *emb = c.E, *dim = (int)c.C, c.E = NULL;
        if (logp) *logp = c.LP, c.LP = NULL;
    }
    for (size_t r = 0; r < R; r++) free(where[r]);
    free(where);
    free(req);
    free(ureq);
    free(rep);
    free(c.uniq);
    free(c.E);
    free(c.LP);
    free(c.S);
    free(c.acc);
    score_model_close(&m);
    return rc;
}
