/* scorer_logprob.c — the logprob:MODEL scorer kind (include/tinyalign/score.h): the
 * log-probability of each response under a model, forward only, batched by
 * score_model_rows. For a row [BOS] prompt response [EOS] of L tokens whose kept prompt
 * (BOS included) is P tokens, with logp[t] = log p(seq[t+1] | seq[0..t]):
 *   logprob      = sum over t in [P-1, L-1) of logp[t]   (the loss_mask positions: every
 *                  response token and the EOS; objective_sequence_logps' S, in double)
 *   tokens       = L - P
 *   logprob_full = sum over t in [0, L-1) of logp[t]     (every target: the prompt after
 *                  BOS too), tokens_full = L - 1
 * and the means. score = logprob. PyTorch equivalent, per row:
 *   lp = log_softmax(model(seq[:-1]), -1).gather(-1, seq[1:, None])[:, 0]
 *   logprob = lp[P-1:].sum(); logprob_full = lp.sum()
 * Not here: per-token output, gradients.
 */
#include <stdlib.h>
#include <string.h>

#include "score_impl.h"

typedef struct {
    ScoreModel m; /* first: scorer_open_model / scorer_close_model */
} LogprobState;

static int logprob_open(Scorer *s, TaError *err) {
    return scorer_open_model(s, sizeof(LogprobState), err);
}

typedef struct {
    ScoreResult *out;
    const uint8_t *truncated;
} Ctx;

static int on_rows(void *ctx, const ScoreModel *m, const Batch *b, const size_t *ids, int n,
                   TaError *err) {
    (void)err;
    Ctx *c = ctx;
    const float *logp = m->model.acts.logp;
    for (int r = 0; r < n; r++) {
        double s_resp = 0, s_full = 0;
        int n_resp = 0, n_full = 0;
        for (int t = 0; t < b->T; t++) {
            size_t i = (size_t)r * b->T + (size_t)t;
            if (b->targets[i] < 0) continue;
            s_full += logp[i], n_full++;
            if (b->loss_mask[i]) s_resp += logp[i], n_resp++;
        }
        ScoreResult *o = &c->out[ids[r]];
        o->score = s_resp;
        score_result_add_number(o, "logprob", s_resp);
        score_result_add_number(o, "logprob_mean", n_resp ? s_resp / n_resp : 0.0);
        score_result_add_number(o, "tokens", n_resp);
        score_result_add_number(o, "logprob_full", s_full);
        score_result_add_number(o, "logprob_full_mean", n_full ? s_full / n_full : 0.0);
        score_result_add_number(o, "tokens_full", n_full);
        score_result_add_bool(o, "truncated", c->truncated[ids[r]]);
    }
    return TA_OK;
}

static int logprob_score(Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out,
                         TaError *err) {
    LogprobState *st = s->impl;
    Ctx c = {.out = out};
    return scorer_run_model_rows(s, &st->m, req, n, 0, on_rows, &c, &c.truncated, err);
}

const ScorerOps score_logprob_ops = {.name = "logprob", .dedupe = 1, .default_batch = 0,
                                     .open = logprob_open, .score = logprob_score,
                                     .close = scorer_close_model};
