/* prs.h — preference-guided reflective sampling (PRS; Ye & Ng, EMNLP 2024, arXiv
 * 2408.12163): best-of-N where the N samples form a tree instead of N i.i.d. draws.
 *
 *   layer 0:   N0 samples of p(. | q),  q = QUERY(x, z)            (x prompt, z preference)
 *              every sample scored by the reward R; y* = the best so far
 *   layer l:   f = one sample of p(. | FEEDBACK(q, y*, z))      (or a critic program, or none)
 *   (l >= 1)   N_l samples of p(. | REVISE(q, y*, z, f)), scored; y* = the best over all layers
 *   budget:    N0 + N_1 + ... + N_{D-1} = N responses (feedback texts are not responses);
 *              N_1..N_{D-1} split N - N0 as evenly as possible, earlier layers first.
 * The baselines at the same budget: rand (N samples of p(. | q)) and rand-no-pref (N
 * samples of p(. | x)). Ties between scores go to the earlier response (file order).
 *
 * Batching: every layer is one generation over all prompts (sample.h's continuous
 * batching), one scorer call over all of that layer's responses, and (feedback from the
 * model) one generation of one feedback per prompt, or (a critic program) one program call.
 *
 * Randomness: layer 0 uses sample.h's streams with the seed itself, so layer 0 of a run
 * (and the whole of --mode rand) is what `tinyalign sample --seed S` gives on the same
 * query prompts; layer l's refinements and feedbacks use the seeds
 * sample_seq_seed(S, PRS_SEED_REVISE, l) and sample_seq_seed(S, PRS_SEED_FEEDBACK, l).
 * Nothing depends on the batch size (<= 16) or the thread count.
 */
#ifndef TINYALIGN_PRS_H
#define TINYALIGN_PRS_H
#include <stdio.h>

#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/sample.h"
#include "tinyalign/score.h"

typedef struct Tokenizer Tokenizer;

typedef enum { PRS_MODE_TREE = 0, PRS_MODE_RAND, PRS_MODE_RAND_NO_PREF } PrsMode;
typedef enum { PRS_FEEDBACK_MODEL = 0, PRS_FEEDBACK_CMD, PRS_FEEDBACK_NONE } PrsFeedback;

#define PRS_MAX_DEPTH 64
#define PRS_SEED_REVISE 0x5052535245ull   /* "PRSRE" */
#define PRS_SEED_FEEDBACK 0x5052534642ull /* "PRSFB" */

/* The default templates, paraphrasing the paper's prompts (the policy judges its own answer
 * against the preference and lists improvements; the revision sees the question, the
 * answer, the preference and the feedback and writes only the improved answer).
 * Placeholders: {prompt} (x), {preference} (z), {question} (the filled query q), {answer}
 * (the current best y*), {feedback} (f), and any field of the prompt row. */
extern const char PRS_QUERY_TEMPLATE[];       /* "{prompt}\n\n{preference}" */
extern const char PRS_FEEDBACK_TEMPLATE[];
extern const char PRS_REVISE_TEMPLATE[];      /* with {feedback} */
extern const char PRS_REVISE_NOFB_TEMPLATE[]; /* --feedback none: without it */

/* The responses of each layer for (mode, n, n0, depth): sizes[0..*layers). TA_EINPUT naming
 * the flag: n < 2, n0 outside [1, n - 1], depth < 2 or > PRS_MAX_DEPTH, fewer than one
 * refinement per layer (n - n0 < depth - 1). Rand modes: one layer of n. */
int prs_layer_sizes(PrsMode mode, int n, int n0, int depth, int *sizes, int *layers,
                    TaError *err);

/* The index of the best score among s[0..n) (the first on ties; NaN never); -1 if n == 0. */
int prs_best(const double *s, int n);

/* Checks that a template has the placeholders its role needs (TA_EINPUT naming the flag
 * and the missing placeholder): query: {prompt}; feedback: {question} and {answer};
 * revise: {question}, {answer} and {feedback} when with_feedback, and no {feedback}
 * otherwise. */
int prs_template_check(const SampleTemplate *t, const char *flag, const char *role,
                       int with_feedback, TaError *err);

typedef struct {
    const char *prompts;     /* DS_PROMPTS JSONL */
    const char *out;         /* multi-response JSONL with the tree fields (atomic) */
    const char *summary;     /* JSON summary (atomic); NULL = none */
    const char *scorer;      /* spec (score.h) */
    ScorerOptions scorer_opt;
    const char *preference;  /* z for rows without a "preference" field; NULL = "" */
    const char *query_template, *feedback_template, *revise_template; /* FILE|TEXT; NULL = default */
    PrsMode mode;
    int n, n0, depth;        /* n0 < 0: n / 2 (the default) */
    PrsFeedback feedback;
    const char *critic;      /* PRS_FEEDBACK_CMD: "cmd:PROGRAM" */
    int feedback_max_new_tokens; /* <= 0: sample.max_new_tokens */
    SampleOptions sample;    /* n is ignored (the layer sizes decide) */
    FILE *log;               /* progress and the per-prompt summary (NULL = silent) */
    int show_prompts;        /* per-prompt lines on log for at most this many prompts */
    int keep_prompts;        /* 1: every response also gets "input" (the text it was generated
                              * from) and, in layers >= 1 with model feedback,
                              * "feedback_input" (the feedback prompt) */
} PrsOptions;

void prs_options_default(PrsOptions *o); /* the paper's sampling defaults, n0 = -1, depth 2 */

/* Totals of a run (also in the summary file). */
typedef struct {
    int prompts, layers;
    int sizes[PRS_MAX_DEPTH];
    double mean_best;                   /* mean over prompts of the best score */
    double mean_best_after[PRS_MAX_DEPTH]; /* ... of the best over layers 0..l */
    double mean_score;                  /* mean over every response */
    long responses, feedbacks;          /* sequences generated: responses, feedback texts */
    long tokens;                        /* generated tokens (responses + feedbacks) */
    double gen_seconds;                 /* in generation */
    long scorer_calls, critic_calls;
} PrsStats;

/* Runs PRS (or a baseline) over every prompt of o->prompts with model (borrowed) and tok;
 * writes o->out and o->summary. Bad input (options, templates, a prompt row, a prompt that
 * leaves no room for feedback and revision in max_seq_len, a scorer or critic failure):
 * TA_EINPUT with one message naming the flag or FILE:LINE; nothing written. */
int prs_run(const GPT2 *model, const Tokenizer *tok, const PrsOptions *o, PrsStats *st,
            TaError *err);

#endif
