/* scorer_model.c — the model:MODEL scorer kind (a reward model: GPT-2 + scalar head
 * score.weight (1,C) read at the last real token of [BOS] prompt response [EOS]).
 * Reserved in this build: opening it is a clear error. The reward-model work replaces
 * this file (see score_impl.h for the ops; score_model_open / score_model_rows with
 * eos_input = 1 give the hidden state at the EOS).
 */
#include "score_impl.h"

static int model_open(Scorer *s, TaError *err) {
    return ta_err(err, TA_EINPUT,
                  "scorer spec \"%s\": model: (reward-model) scorers are not available in this "
                  "build yet; use cmd:, logprob: or banned:", s->spec.text);
}

static int model_score(Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out,
                       TaError *err) {
    (void)req, (void)n, (void)out;
    return ta_err(err, TA_ERUNTIME, "%s: not available", s->spec.text);
}

const ScorerOps score_model_ops = {.name = "model", .dedupe = 1, .default_batch = 16,
                                   .open = model_open, .score = model_score, .close = NULL};
