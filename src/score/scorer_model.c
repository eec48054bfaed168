/* scorer_model.c — the model:MODEL scorer kind (include/tinyalign/score.h): a reward model
 * trained by tinyalign (objective.type reward; GPT-2 + the scalar head score.weight (1, C),
 * Hugging Face's GPT2ForSequenceClassification with one label) scores every response,
 * forward only, batched by score_model_rows. A row [BOS] prompt response [EOS] of L tokens
 * goes in WITH its last token as an input (data.h's ROWS_SCORE layout), and
 *   score = h[L-1] . score.weight       h = the final LayerNorm's output at the last token
 * (the EOS; the last response token when the row was cut), exactly what the reward
 * objective trained (gpt2_score_forward). The LM head is never computed: the model is
 * opened hidden-only, so no (B,T,V) logits are even allocated. Field: truncated (the
 * prompt or the response was cut to fit max_seq_len).
 * PyTorch equivalent, per row: r = (ln_f(trunk(seq))[-1] * w).sum().
 * A directory without a reward head (a language model) is refused at open (TA_EINPUT).
 * Not here: training the model (objective reward), gradients.
 */
#include <stdlib.h>
#include <string.h>

#include "score_impl.h"

typedef struct {
    ScoreModel m;   /* first: scorer_open_model / scorer_close_model */
    float *rewards; /* (batch) one forward's rewards */
    int cap;
} RewardState;

static void model_close(Scorer *s) {
    RewardState *st = s->impl;
    if (st) free(st->rewards);
    scorer_close_model(s);
}

static int model_open(Scorer *s, TaError *err) {
    int rc = scorer_open_model(s, sizeof(RewardState), err);
    if (rc != TA_OK) return rc;
    RewardState *st = s->impl;
    if (!st->m.model.config.score_head) {
        rc = ta_err(err, TA_EINPUT,
                    "scorer %s: %s is not a reward model: it has no scalar head (score.weight; "
                    "config.json \"architectures\": [\"GPT2ForSequenceClassification\"]); "
                    "train one with objective.type \"reward\", or use logprob: for a "
                    "language model", s->spec.text, st->m.dir);
        model_close(s);
        return rc;
    }
    st->m.model.hidden_only = 1; /* before any activations exist: no LM head buffers */
    return TA_OK;
}

typedef struct {
    RewardState *st;
    ScoreResult *out;
    const uint8_t *truncated;
} Ctx;

static int on_rows(void *ctx, const ScoreModel *m, const Batch *b, const size_t *ids, int n,
                   TaError *err) {
    (void)err;
    Ctx *c = ctx;
    if (n > c->st->cap) {
        free(c->st->rewards);
        c->st->rewards = ta_malloc(sizeof(float) * (size_t)n, "rewards");
        c->st->cap = n;
    }
    /* ROWS_SCORE: row r's last token sits at position b->lengths[r] */
    gpt2_score_forward(&m->model, b->lengths, c->st->rewards);
    for (int r = 0; r < n; r++) {
        ScoreResult *o = &c->out[ids[r]];
        o->score = c->st->rewards[r];
        score_result_add_bool(o, "truncated", c->truncated[ids[r]]);
    }
    return TA_OK;
}

static int model_score(Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out,
                       TaError *err) {
    Ctx c = {.st = s->impl, .out = out};
    return scorer_run_model_rows(s, &c.st->m, req, n, 1, on_rows, &c, &c.truncated, err);
}

const ScorerOps score_model_ops = {.name = "model", .dedupe = 1, .default_batch = 0,
                                   .open = model_open, .score = model_score,
                                   .close = model_close};
