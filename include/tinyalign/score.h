/* score.h — scorers: a spec string names a way to give every (prompt, response) a number
 * and, optionally, more fields (a correctness flag, a critique, log-probs), applied to a
 * set of requests at once. `tinyalign score` runs one over a multi-response file,
 * train.eval_generate over samples of the validation prompts, and later commands (PRS,
 * anchors, DS weights) over what they generate.
 *
 * Spec kinds (scorer_spec_parse; "KIND:ARG", the kind name is case-sensitive):
 *   cmd:PROGRAM [ARGS]  an external program in any language, run with /bin/sh -c, ONCE per
 *                       batch of requests (ScorerOptions.batch_size). Protocol: stdin gets
 *                       one JSON object per request,
 *                         {"prompt": P, "response": R, <the row's own fields>}
 *                       (a row field named "prompt" or "response" is left out: ours win);
 *                       stdout must give exactly one JSON object per request, in order,
 *                         {"score": <finite number>, <any other fields>}
 *                       (blank lines are skipped). The other fields are kept on the result
 *                       in the program's order. The program's stderr is collected and its
 *                       tail shown when a call fails. A call fails (TA_EINPUT, one message
 *                       naming the program, the output line and the request's place) when
 *                       the program exits non-zero or by a signal, runs past the timeout
 *                       (its process group is killed), prints fewer or more objects than
 *                       requests, a line that is not a JSON object, or an object whose
 *                       "score" is missing, not a number or not finite.
 *   logprob:MODEL       log-probabilities under a tinyalign model (a run, checkpoint or
 *                       model directory), forward only, batched. Rows follow data.h's row
 *                       convention [BOS] prompt response [EOS] with max_len = maxT + 1,
 *                       max_prompt_len = maxT / 2, keep_end (the same rows as curate's
 *                       model: sources). score = "logprob"; fields:
 *                         logprob            S = sum of log p over the response tokens and
 *                                            the EOS (objective_sequence_logps: the S of
 *                                            every loss)
 *                         logprob_mean       S / tokens
 *                         tokens             response tokens + EOS scored (the loss_mask)
 *                         logprob_full       sum of log p over every predicted token:
 *                                            prompt tokens after BOS, response, EOS
 *                         logprob_full_mean  logprob_full / tokens_full (minus the mean
 *                                            token loss of the whole sequence)
 *                         tokens_full        tokens predicted (len(row) - 1)
 *                         truncated          true when the prompt or the response was cut
 *   banned:FILE         built-in oracle (no program): score 1 when no listed word appears
 *                       in the response, else 0; field "banned_count" = occurrences. FILE:
 *                       one word or phrase per line (surrounding blanks trimmed; blank lines
 *                       and lines starting with '#' skipped). A match is a whole word:
 *                       compared ASCII-case-insensitively, and the characters just before
 *                       and after it (if any) are not word characters (ASCII letters,
 *                       digits, '_', or any byte >= 0x80, so a UTF-8 letter counts as part
 *                       of a word).
 *   model:MODEL         a reward model trained by tinyalign (objective.type reward: GPT-2 +
 *                       the scalar head score.weight (1,C), Hugging Face's
 *                       GPT2ForSequenceClassification with one label): score = the head at
 *                       the last real token of [BOS] prompt response [EOS] (the EOS),
 *                       forward only (no LM head), batched; field truncated. A directory
 *                       without the head is refused (TA_EINPUT naming it).
 *
 * Batches and identical requests: the whole request set is handed to the scorer at once
 * (scorer_score); cmd: cuts it into calls of batch_size requests in order; the model kinds
 * sort rows by length and run batch_size rows per forward. For the deterministic kinds
 * (logprob, banned, model) identical (prompt, response) requests are scored once and the
 * result copied, so ties stay exact ties; cmd: programs see every request (a judge may be
 * stochastic).
 *
 * Adding a kind: see src/score/score_impl.h (ScorerOps: open / score / close, and one line
 * in the kind table of src/score/scorer.c).
 *
 * Not here: what a command does with the scores (score_file_run below, curate), sampling.
 */
#ifndef TINYALIGN_SCORE_H
#define TINYALIGN_SCORE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tinyalign/common.h"
#include "tinyalign/data.h"
#include "tinyalign/log.h"
#include "tinyalign/model.h"

typedef struct Tokenizer Tokenizer;

/* ---- specs ------------------------------------------------------------------------------ */
typedef enum {
    SCORER_CMD = 0,
    SCORER_LOGPROB,
    SCORER_BANNED,
    SCORER_MODEL,
    SCORER_NUM_KINDS
} ScorerKind;

#define SCORER_SPEC_MAX 4096

typedef struct {
    ScorerKind kind;
    char text[SCORER_SPEC_MAX]; /* the spec as written */
    char arg[SCORER_SPEC_MAX];  /* what follows "KIND:", blanks around it trimmed */
} ScorerSpec;

/* Parses "KIND:ARG". TA_EINPUT with one message naming the spec and listing the kinds when
 * the kind is unknown (with a "did you mean"), the ':' is missing or ARG is empty. */
int scorer_spec_parse(ScorerSpec *s, const char *text, TaError *err);
const char *scorer_kind_name(ScorerKind k); /* "cmd", "logprob", "banned", "model" */

/* The kinds, for the --help of every command that takes a scorer. */
#define SCORER_SPEC_HELP                                                                   \
    "scorer spec:\n"                                                                       \
    "  cmd:PROGRAM [ARGS]  external program, JSONL requests on stdin\n"                    \
    "                      ({\"prompt\", \"response\", <row fields>}), one\n"              \
    "                      {\"score\": x, ...} per line on stdout; once per batch\n"       \
    "  logprob:MODEL       log p of the response under a model (sum, mean,\n"              \
    "                      tokens; full-sequence variants)\n"                             \
    "  banned:FILE         1 if no word listed in FILE appears (whole words,\n"            \
    "                      ASCII case-insensitive), else 0\n"                              \
    "  model:MODEL         a reward model's reward (objective.type reward:\n"            \
    "                      GPT-2 + score.weight at the row's last token)"

/* ---- requests and results ---------------------------------------------------------------- */
typedef struct {
    const char *prompt;       /* the row's prompt as in the file (not a template fill) */
    const char *response;     /* the response text */
    const DataFields *fields; /* the row's own fields (answer, label, ...); NULL = none */
    const char *where;        /* where the request comes from, for messages: "FILE:LINE
                               * responses[J]"; NULL = "request K" */
} ScoreRequest;

typedef struct {
    char *key;   /* malloc'd */
    char *value; /* the value as JSON text (a number, string literal, true, an object...),
                  * malloc'd */
} ScoreField;

typedef struct {
    double score;       /* finite */
    ScoreField *fields; /* (n_fields) the scorer's other fields, in its order; malloc'd */
    int n_fields;
} ScoreResult;

/* Frees the fields; leaves *r zeroed. Safe on a zeroed struct. */
void score_result_free(ScoreResult *r);
/* Appends a copy of (key, value JSON text) to r. */
void score_result_add(ScoreResult *r, const char *key, const char *value_json);
/* The field named key, or NULL. */
const ScoreField *score_result_field(const ScoreResult *r, const char *key);
/* Deep copy (dst overwritten without freeing). */
void score_result_copy(ScoreResult *dst, const ScoreResult *src);

/* Identical requests: rep[i] = the index of the first request with the same (prompt,
 * response) (rep[i] == i for the first of each). malloc'd (n), caller frees. */
size_t *score_request_copies(const ScoreRequest *req, size_t n);

/* ---- scorers ---------------------------------------------------------------------------- */
typedef void (*ScoreProgressFn)(void *ctx, size_t done, size_t total);

typedef struct {
    int batch_size;        /* requests per program call (cmd:), rows per forward (model
                            * kinds); 0 = the kind's default (cmd: 256, model kinds: 16,
                            * fewer when the activations would pass 512 MiB) */
    double timeout_s;      /* cmd: seconds one program call may take; <= 0: no limit
                            * (default 600) */
    const char *tokenizer; /* model kinds: a SentencePiece model; NULL = MODEL/tokenizer.model */
    ScoreProgressFn progress; /* called after each call / forward batch (may be NULL) */
    void *progress_ctx;
} ScorerOptions;

void scorer_options_default(ScorerOptions *o);

typedef struct Scorer Scorer;

/* Parses spec and opens the scorer (loads a model, reads a word list, checks the spec).
 * TA_EINPUT with one message naming the spec (a bad spec, a model directory that cannot be
 * loaded, a missing tokenizer, an unreadable or empty word list); TA_ERUNTIME. On success
 * *out is closed with scorer_close. */
int scorer_open(Scorer **out, const char *spec, const ScorerOptions *opt, TaError *err);
void scorer_close(Scorer *s); /* NULL allowed */
const ScorerSpec *scorer_spec(const Scorer *s);

/* Scores n requests: out (n) receives one result each (free each with score_result_free).
 * Every score is finite. On error nothing is left in out (all zeroed) and err names the
 * request (its `where`) when one is to blame. */
int scorer_score(Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out, TaError *err);

typedef struct {
    long calls;        /* program runs (cmd:) or forward batches (model kinds) */
    size_t requests;   /* requests scored */
    size_t unique;     /* of which scored (not copied from an identical one) */
    uint64_t tokens;   /* model kinds: real tokens forwarded (padding excluded) */
    double seconds;    /* wall time inside scorer_score */
} ScorerStats;

/* Totals since scorer_open. */
void scorer_stats(const Scorer *s, ScorerStats *out);

/* ---- summaries ------------------------------------------------------------------------- */
#define SCORE_SUMMARY_MAX_FIELDS 32

/* mean / min / max of the scores, and every boolean field as a rate (true / seen). */
typedef struct {
    size_t n;
    double sum, min, max;
    int n_bools;
    struct {
        char key[64];
        size_t n_true, n_seen;
    } bools[SCORE_SUMMARY_MAX_FIELDS];
} ScoreSummary;

void score_summary_add(ScoreSummary *s, const ScoreResult *r); /* from a zeroed struct */
/* "N responses | score mean M min A max B | correct 0.62 (N) | ..." */
void score_summary_describe(const ScoreSummary *s, const char *score_name, char *buf, size_t cap);

/* ---- `tinyalign score`: a multi-response file ------------------------------------------- */
typedef struct {
    const char *in, *out; /* DS_MULTI JSONL in; out written atomically (OUT.tmp, rename) */
    const char *spec;
    const char *field;    /* the key the score is stored under (default "score") */
    ScorerOptions scorer;
    FILE *log;            /* summary and progress (NULL = silent) */
    int progress;         /* 1: a progress line on log */
} ScoreFileOptions;

/* Scores every response of in and writes out: every line and every field as it was, each
 * response getting `field` = its score and the scorer's other fields (replacing earlier
 * members of those names). A scorer field named "text" or like `field` is an error.
 * TA_EINPUT (bad spec, bad file naming FILE:LINE, scorer failure naming the request) /
 * TA_ERUNTIME; never a partial output file. sum (may be NULL) receives the summary. */
int score_file_run(const ScoreFileOptions *o, ScoreSummary *sum, TaError *err);

/* ---- task metrics during training (train.eval_generate) ----------------------------------
 * Samples a fixed set of prompts with a policy's current weights and scores the responses.
 * The prompts are rows of a prompt JSONL file (data.h's DS_PROMPTS reader: an SFT or
 * preference file works, its "completion" / "chosen" ... become fields the scorer sees;
 * "responses" is left out), optionally filled into a template (sample.h); the scorer sees
 * the row's original prompt and fields. Metrics (names owned by the ScoreEval):
 *   n > 0:   eval/score_mean      mean score of the n samples of every prompt
 *            eval/score_max@N     mean over prompts of the best of its N samples
 *            eval/FIELD           rate of every boolean field of the scorer (e.g. correct)
 *   greedy:  eval/greedy/score_mean, eval/greedy/FIELD   one greedy sample per prompt
 * Sampling uses its own seed (the caller passes one derived from (run seed, step)) and
 * reads the policy's weights in place (sample_texts): the training state is untouched. */
typedef struct {
    const char *scorer;         /* spec */
    const char *prompts;        /* prompt JSONL */
    size_t first_row;           /* use rows [first_row, ...) (a held-out tail of a file) */
    int max_prompts;            /* at most this many (0 = all) */
    int n;                      /* samples per prompt at temperature (>= 0) */
    double temperature;         /* > 0 */
    int greedy;                 /* also one greedy sample per prompt */
    int max_new_tokens;
    const char *template_text;  /* FILE|TEXT (sample_template_load); NULL or "" = none */
    const char *key;            /* config key prefix for messages ("train.eval_generate") */
} ScoreEvalConfig;

typedef struct ScoreEval ScoreEval;

/* Reads the prompts, fills the template, checks every prompt fits in max_seq_len, opens the
 * scorer. TA_EINPUT naming the key, FILE:LINE or the spec. */
int score_eval_open(ScoreEval **out, const ScoreEvalConfig *c, const Tokenizer *tok,
                    int max_seq_len, TaError *err);
void score_eval_close(ScoreEval *e); /* NULL allowed */
/* Samples and scores once: up to cap metrics into kv (*n_kv of them), and a one-line
 * summary into line. TA_OK, or the sampler's / scorer's error. */
int score_eval_run(ScoreEval *e, const GPT2 *policy, uint64_t seed, MetricKV *kv, int cap,
                   int *n_kv, char *line, size_t line_cap, TaError *err);

/* ---- forward-only model over request rows (the model kinds; curate's model: sources) -----
 * A model directory opened forward-only with its tokenizer and the row format above
 * (max_len = maxT + 1, max_prompt_len = maxT / 2, keep_end). */
typedef struct {
    GPT2 model;
    Tokenizer *tok;
    RowFormat fmt;
    char dir[4096]; /* the resolved directory */
    int opened;
} ScoreModel;

/* what: the prefix of messages ("logprob:runs/x", "model:DIR"). tokenizer: NULL = DIR's
 * tokenizer.model (a directory without one: a message suggesting --tokenizer). The
 * tokenizer's vocabulary must not exceed the model's. TA_EINPUT / TA_ERUNTIME. */
int score_model_open(ScoreModel *m, const char *path, const char *tokenizer, const char *what,
                     TaError *err);
void score_model_close(ScoreModel *m); /* safe on a zeroed struct */

/* Called after each forward: b holds rows for requests ids[0..n) (row k <-> request
 * ids[k]), m->model.acts the forward's activations (logits, logp, lnf ...) for b.
 * eos_input: see score_model_rows. Returns TA_OK or an error (stops the loop). */
typedef int (*ScoreRowsFn)(void *ctx, const ScoreModel *m, const Batch *b, const size_t *ids,
                           int n, TaError *err);

typedef struct {
    int batch_size;  /* rows per forward; <= 0: 16 (fewer when activations pass 512 MiB) */
    int eos_input;   /* 0: rows as data.h fills them (ROWS_LM: tokens = seq[0 .. L-2], the
                      * last token is only a target). 1: data.h's ROWS_SCORE layout, tokens
                      * = seq[0 .. L-1], so the hidden state AT the last real token (the
                      * EOS) exists (a reward head reads it) at position b->lengths = L-1;
                      * targets and loss_mask as ROWS_LM, so log-prob sums are those of
                      * eos_input 0. A hidden-only model (GPT2.hidden_only, a reward
                      * model) is run to its final LayerNorm only (no logits). */
    uint8_t *truncated; /* out (may be NULL): (n) 1 when request i's prompt or response was cut */
    uint64_t *tokens; /* out (may be NULL): += real tokens forwarded */
    long *calls;      /* out (may be NULL): += forwards */
    ScoreProgressFn progress;
    void *progress_ctx;
} ScoreRowsOptions;

/* Encodes every request's row (errors name the request's `where`), sorts them by length
 * (ties in request order) and runs them through the model in batches, calling fn after each
 * forward. Every request is forwarded (no de-duplication here). */
int score_model_rows(ScoreModel *m, const ScoreRequest *req, size_t n,
                     const ScoreRowsOptions *opt, ScoreRowsFn fn, void *ctx, TaError *err);

#endif
