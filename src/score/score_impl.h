/* score_impl.h — internal to src/score: how a scorer kind plugs in. Not a public header.
 *
 * A kind is a ScorerOps (one file per kind, src/score/scorer_<kind>.c) listed in the kind
 * table of scorer.c, indexed by ScorerKind. scorer_open parses the spec, fills a Scorer
 * (spec, options) and calls ops->open, which checks the argument, loads what it needs and
 * keeps it in s->impl. scorer_score hands ops->score the requests (the unique ones when
 * ops->dedupe), checks every returned score is finite (naming the request otherwise), copies
 * results to identical requests, and keeps the stats. ops->close frees s->impl.
 *
 * To plug in a kind (e.g. model:): write ops with
 *   open   (Scorer *s, TaError *err)                       s->spec.arg, s->opt; set s->impl
 *   score  (Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out, TaError *err)
 *          fill out[0..n) (zeroed on entry; the caller frees them on error); count
 *          s->calls / s->tokens; call scorer_report_progress after each batch
 *   close  (Scorer *s)                                       free s->impl (may be NULL)
 * and set its entry in KINDS (scorer.c). Model kinds use score_model_open / score_model_rows
 * (score.h) for loading and batching, as logprob: does.
 */
#ifndef TINYALIGN_SCORE_IMPL_H
#define TINYALIGN_SCORE_IMPL_H
#include "tinyalign/score.h"

struct Scorer;

typedef struct {
    const char *name;   /* the kind's name in specs */
    int dedupe;         /* 1: deterministic and a function of (prompt, response) only:
                         * identical requests are scored once */
    int default_batch;  /* ScorerOptions.batch_size when 0 */
    int (*open)(struct Scorer *s, TaError *err);
    int (*score)(struct Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out,
                 TaError *err);
    void (*close)(struct Scorer *s);
} ScorerOps;

struct Scorer {
    ScorerSpec spec;
    ScorerOptions opt;   /* batch_size resolved (> 0) */
    const ScorerOps *ops;
    void *impl;          /* the kind's state */
    long calls;          /* the kind counts program runs / forwards */
    uint64_t tokens;     /* model kinds: real tokens forwarded */
    size_t requests, unique;
    double seconds;
    size_t progress_base, progress_total; /* scorer_report_progress's offset and total */
};

/* Progress of the current scorer_score call: done of the n requests handed to ops->score. */
void scorer_report_progress(struct Scorer *s, size_t done);

/* The model kinds (logprob:, model:) keep a state struct whose FIRST member is their
 * ScoreModel. scorer_open_model allocates state_size zeroed bytes as s->impl and
 * score_model_open's s->spec.arg into its ScoreModel with the scorer's tokenizer option
 * (messages say "scorer SPEC"); on error nothing stays allocated and s->impl is untouched.
 * scorer_close_model closes that model and frees s->impl (NULL-safe; a kind frees its own
 * extra buffers first). scorer_run_model_rows: score_model_rows over the requests with the
 * scorer's batch size, counters (s->calls, s->tokens) and progress. While fn runs,
 * *truncated points at the (n) per-request flags (1: the prompt or the response was cut);
 * NULL after. */
int scorer_open_model(struct Scorer *s, size_t state_size, TaError *err);
void scorer_close_model(struct Scorer *s);
int scorer_run_model_rows(struct Scorer *s, ScoreModel *m, const ScoreRequest *req, size_t n,
                          int eos_input, ScoreRowsFn fn, void *ctx, const uint8_t **truncated,
                          TaError *err);

/* A number (cJSON's format, as jsonl_put_number) or a boolean as a field of r. */
void score_result_add_number(ScoreResult *r, const char *key, double v);
void score_result_add_bool(ScoreResult *r, const char *key, int v);

/* "where" of request i, for messages ("FILE:LINE responses[J]" or "request I+1"). */
const char *scorer_where(const ScoreRequest *req, size_t i, char *buf, size_t cap);

extern const ScorerOps score_cmd_ops;
extern const ScorerOps score_logprob_ops;
extern const ScorerOps score_banned_ops;
extern const ScorerOps score_model_ops;

#endif
