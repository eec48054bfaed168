/* model_rows.c — forward-only model over request rows (score.h). */
#include <string.h>

#include "score_impl.h"

int score_model_open(ScoreModel *m, const char *path, const char *tokenizer, const char *what,
                     TaError *err) {
    memset(m, 0, sizeof *m);
    (void)path, (void)tokenizer;
    return ta_err(err, TA_ERUNTIME, "%s: not implemented yet", what);
}

void score_model_close(ScoreModel *m) { memset(m, 0, sizeof *m); }

int score_model_rows(ScoreModel *m, const ScoreRequest *req, size_t n,
                     const ScoreRowsOptions *opt, ScoreRowsFn fn, void *ctx, TaError *err) {
    (void)m, (void)req, (void)n, (void)opt, (void)fn, (void)ctx;
    return ta_err(err, TA_ERUNTIME, "not implemented yet");
}
