/* sample.h — generation: the token samplers and batched generation of n responses per
 * prompt over a KV cache (model.h, GPT2Decode).
 *
 * Sampler pipeline, applied to one row of logits in this order (Hugging Face's order):
 *   0. while fewer than min_new_tokens tokens have been generated, EOS gets logit -inf
 *      (HF's MinNewTokensLengthLogitsProcessor);
 *   1. repetition penalty r (CTRL / HF): for every distinct token already in the sequence
 *      (prompt included), logit > 0 -> logit / r, else logit * r;
 *   2. presence penalty a (OpenAI / vLLM): logit -= a once for every distinct token already
 *      present in the generated text (the prompt does not count);
 *   3. greedy (temperature == 0): the argmax, lowest id on ties; steps 4-8 are skipped;
 *   4. temperature T: logit / T;
 *   5. top-k: keep the k largest logits; ties at the boundary go to the LOWER token id, so
 *      exactly k tokens are kept;
 *   6. top-p: with the kept tokens sorted by probability (descending, lower id first on
 *      ties), keep the smallest prefix whose cumulative probability is >= p (HF: a token is
 *      dropped when the tokens strictly before it already sum to >= p);
 *   7. min-p: keep the tokens whose probability is >= min_p * the largest probability;
 *   8. sample from the kept tokens renormalised: one uniform u in [0, 1) (53-bit double),
 *      walk the kept tokens in ascending id order, take the first whose cumulative
 *      probability exceeds u * total (the last kept one if rounding leaves none).
 * Probabilities are computed in double from the float logits. Only the real vocabulary
 * is considered (padded logits never); a NaN logit is never chosen.
 *
 * Randomness: every sequence has its own TaRng seeded from (seed, prompt index, sample
 * index) (sample_seq_seed), and a sequence's logits have the same bits whatever the other
 * sequences decoded with it (gpt2_decode_step, up to 16 at a time) and the thread count,
 * so a response does not depend on --batch (<= 16), on the other prompts or on threads.
 *
 * Stopping: on the EOS id (not part of the text; counted in num_tokens), after
 * max_new_tokens, when the sequence reaches the model's max_seq_len ("length"), or when
 * the decoded text contains a stop string ("stop": the text is cut before the earliest
 * match). Text = decode(generated ids): the completion on its own, as the JSONL datasets
 * encode a completion; invalid UTF-8 (possible with byte-fallback pieces) becomes U+FFFD.
 *
 * Prompts are [BOS] + encode(prompt), the row convention's generation prompt
 * (row_encode_generation_prompt in data.h). A prompt of max_seq_len tokens or more is an
 * error (TA_EINPUT), not cut. A prompt template (below) fills a prompt from a row's fields
 * before it is encoded.
 */
#ifndef TINYALIGN_SAMPLE_H
#define TINYALIGN_SAMPLE_H
#include <stddef.h>
#include <stdint.h>

#include "tinyalign/common.h"
#include "tinyalign/data.h"
#include "tinyalign/model.h"

typedef struct Tokenizer Tokenizer;

#define SAMPLE_MAX_STOP 16

typedef struct {
    int n;                     /* responses per prompt, >= 1 (default 1) */
    int max_new_tokens;        /* >= 1 (default 128) */
    int min_new_tokens;        /* >= 0: EOS is suppressed before this many (default 0) */
    double temperature;        /* >= 0; 0 = greedy (default 1) */
    int top_k;                 /* >= 0; 0 = off (default) */
    double top_p;              /* (0, 1]; 1 = off (default) */
    double min_p;              /* [0, 1); 0 = off (default) */
    double repetition_penalty; /* > 0; 1 = off (default) */
    double presence_penalty;   /* finite; 0 = off (default) */
    const char *stop[SAMPLE_MAX_STOP]; /* stop strings (non-empty, not owned) */
    int n_stop;
    uint64_t seed;             /* default 0 */
    int batch;                 /* sequences decoded together, >= 1 (default 8) */
    int eos_id;                /* stop token; -1 = none. sample_gen_init takes the
                                * tokenizer's when a tokenizer is given */
} SampleOptions;

/* The defaults above. */
void sample_options_default(SampleOptions *o);
/* Checks every field; TA_EINPUT with a message naming the option ("top_p must be in
 * (0, 1], got 1.5"). */
int sample_options_check(const SampleOptions *o, TaError *err);

/* ---- one row of logits -------------------------------------------------------------- */

/* A candidate token while filtering. */
typedef struct {
    double p;    /* unnormalised probability exp((logit - max) / T) */
    float logit; /* after penalties (the order of top-k and top-p) */
    int id;
} SampleCand;

/* Per-sequence scratch, sized for V tokens once; nothing is allocated per token. */
typedef struct {
    int V;
    float *logits;    /* (V) working copy with the penalties applied */
    SampleCand *cand; /* (V) candidates */
    int *ids;         /* (V) kept ids, ascending (sample_filter's answer) */
    double *probs;    /* (V) their probabilities, summing to 1 */
    uint8_t *seen;    /* (V) bit 0: in the sequence (prompt or generated); bit 1: generated */
    int n_gen;        /* tokens generated so far (sample_work_add calls) */
} SampleWork;

void sample_work_init(SampleWork *w, int V);
void sample_work_free(SampleWork *w); /* safe on a zeroed struct */
/* Starts a sequence: marks the prompt's tokens (ids >= V are ignored), n_gen = 0. */
void sample_work_start(SampleWork *w, const int *prompt, int n);
/* Marks a generated token (n_gen + 1). */
void sample_work_add(SampleWork *w, int token);

/* Steps 1-2 in place on logits (V), from the marks in seen. */
void sample_apply_penalties(float *logits, int V, const uint8_t *seen, double repetition,
                            double presence);
/* Steps 4-7 on logits (V, penalties already applied; temperature > 0): fills w->ids with
 * the kept token ids in ascending order and w->probs with their probabilities
 * renormalised to sum 1. Returns how many are kept (0 only when no logit is a number). */
int sample_filter(SampleWork *w, const float *logits, const SampleOptions *o);
/* The whole pipeline on the raw logits of one sequence (V of them; w's marks and n_gen say
 * what the sequence holds; o->eos_id is the EOS that min_new_tokens suppresses). Returns
 * the token, or -1 when no logit is a number. Draws exactly one value from rng unless
 * greedy. logits are not modified. */
int sample_next(SampleWork *w, const float *logits, const SampleOptions *o, TaRng *rng);
/* Argmax of x (n), lowest index on ties, NaN never chosen; -1 when all are NaN. */
int sample_argmax(const float *x, int n);
/* The RNG seed of sample j of prompt i. */
uint64_t sample_seq_seed(uint64_t seed, uint64_t prompt_index, uint64_t sample_index);

/* ---- generation ------------------------------------------------------------------------ */

typedef enum { SAMPLE_EOS = 0, SAMPLE_LENGTH, SAMPLE_STOP } SampleFinish;
const char *sample_finish_name(SampleFinish f); /* "eos", "length", "stop" */

typedef struct {
    int *ids;          /* (num_tokens) generated ids, the EOS included when finish == eos */
    int num_tokens;
    SampleFinish finish;
    char *text;        /* decoded completion (valid UTF-8), NULL without a tokenizer */
} SampleResult;
void sample_result_free(SampleResult *r); /* frees ids and text; safe on a zeroed struct */

typedef struct SampleGen SampleGen; /* opaque: decode state + per-slot sampler state */

/* Called after every decode step with the totals so far (finished sequences, generated
 * tokens) of the current sample_gen_run. */
typedef void (*SampleProgressFn)(void *ctx, long seqs_done, long seqs_total, long tokens);

/* Builds a generator for model (borrowed: its parameters are read in place, never
 * copied or written; it must outlive the generator) and tok (may be NULL: ids only, no
 * stop strings; when not NULL its EOS id replaces opt->eos_id and its vocabulary must not
 * exceed the model's, and sampling is restricted to the tokenizer's ids).
 * max_prompt_len (>= 1) sizes the cache: min(max_seq_len, max_prompt_len +
 * max_new_tokens) positions for opt->batch sequences. opt is copied (the stop strings
 * are not: they must outlive the generator). TA_EINPUT on bad options.
 * On success *out is freed with sample_gen_free. */
int sample_gen_init(SampleGen **out, const GPT2 *model, const Tokenizer *tok,
                    const SampleOptions *opt, int max_prompt_len, TaError *err);
void sample_gen_free(SampleGen *g); /* NULL allowed */
void sample_gen_set_progress(SampleGen *g, SampleProgressFn fn, void *ctx);
/* Bytes the generator allocated (KV cache, buffers, sampler scratch). */
size_t sample_gen_bytes(const SampleGen *g);

/* Generates opt->n responses for each of n_prompts prompts (token ids, BOS included;
 * prompts[i] has lens[i] >= 1 tokens, at most max_prompt_len and < max_seq_len). Prompt i
 * has the global index first_index + i for the RNG streams. out (n_prompts * n) receives
 * response j of prompt i at out[i * n + j] (free each with sample_result_free).
 * Sequences are decoded up to opt->batch at a time; a finished one's slot is refilled at
 * once (continuous batching); the n samples of a prompt started together share one
 * prefill. Returns TA_OK, TA_EINPUT (a prompt too long or with an id outside the
 * vocabulary; out untouched) or TA_ERUNTIME (the model produced no finite logit).
 * *decode_s (may be NULL) receives the seconds spent in decode steps and sampling
 * (prefill excluded), for the tokens/s line. */
int sample_gen_run(SampleGen *g, const int *const *prompts, const int *lens, int n_prompts,
                   long first_index, SampleResult *out, double *decode_s, TaError *err);

/* For the trainer (train.sample_every): generates opt->n completions for each of n
 * prompt strings with the policy's current weights, read in place (a forward-only decode
 * state is built over policy->params_memory for this call and freed before it returns;
 * the policy's activations, gradients and weights are not touched). out_texts
 * (n * opt->n) receives malloc'd completion texts (prompt-major; caller frees each).
 * Returns TA_OK, TA_EINPUT (bad options, a prompt of max_seq_len tokens or more: nothing
 * written) or TA_ERUNTIME. */
int sample_texts(const GPT2 *policy, const Tokenizer *tok, const char *const *prompts, int n,
                 const SampleOptions *opt, char **out_texts, TaError *err);

/* ---- prompt templates with row fields (src/sample/template.c) ----------------------------
 * A template is text with placeholders filled from a prompt row before it is encoded:
 *   {prompt}   the row's prompt
 *   {NAME}     the row's own field NAME (data.h's kept fields): a string's content, a number
 *              as written in the file ("2.50" stays "2.50"), true / false; an object, an
 *              array or null is an error (nested values are not filled)
 *   {{  }}     a literal '{' / '}'
 * NAME is any text without braces (not empty). A '{' without its '}', a lone '}', "{}" or a
 * '{' inside a name is a syntax error (TA_EINPUT naming the character position); a field the
 * row lacks is TA_EINPUT 'template field "NAME": the row has no such field' (callers prefix
 * FILE:LINE). Python's str.format has the same syntax for these cases. */
typedef struct {
    char *text;   /* the template (owned) */
    int n_parts;
    struct {
        int is_field; /* 0: literal text; 1: a placeholder */
        char *s;      /* the literal (escapes resolved) or the field name; owned */
    } *parts;
} SampleTemplate;

/* Parses text (copied). TA_EINPUT naming the character (1-based) on a syntax error. */
int sample_template_parse(SampleTemplate *t, const char *text, TaError *err);
/* --template FILE|TEXT: the content of FILE when such a file exists (one trailing newline
 * dropped: editors add it), else TEXT itself, which must then contain a placeholder (a
 * mistyped file name is not taken for a template). Errors name "--template". */
int sample_template_load(SampleTemplate *t, const char *arg, TaError *err);
void sample_template_free(SampleTemplate *t); /* safe on a zeroed struct */
/* Fills t for one row: *out malloc'd (caller frees). fields may be NULL (no fields). */
int sample_template_fill(const SampleTemplate *t, const char *prompt, const DataFields *fields,
                         char **out, TaError *err);

#endif
