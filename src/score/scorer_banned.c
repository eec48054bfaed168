/* scorer_banned.c — the banned: scorer kind (include/tinyalign/score.h). */
#include "score_impl.h"

static int k_open(Scorer *s, TaError *err) {
    return ta_err(err, TA_EINPUT, "scorer spec \"%s\": not implemented yet", s->spec.text);
}

static int k_score(Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out,
                   TaError *err) {
    (void)req, (void)n, (void)out;
    return ta_err(err, TA_ERUNTIME, "%s: not available", s->spec.text);
}

const ScorerOps score_banned_ops = {.name = "banned", .dedupe = 1, .default_batch = 16,
                                  .open = k_open, .score = k_score, .close = NULL};
